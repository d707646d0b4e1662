//! Which partition of an internal topic holds a key: Kafka's
//! `Utils.abs(key.hashCode()) % partitions` (`abs` being `n & 0x7fffffff`), with Java's
//! `String.hashCode` over UTF-16 code units. Used for `__transaction_state` (transactional id)
//! and `__consumer_offsets` (group id, for AddOffsetsToTxn).

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

pub fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// `partitions <= 0` maps everything to 0 rather than dividing by zero.
pub fn java_string_hash_partition(key: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (java_string_hash(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kafka() {
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash_partition("hello", 50), 22);
        assert_eq!(java_string_hash_partition("polygenelubricants", 50), 0);
        assert_eq!(java_string_hash_partition("x", 0), 0);
    }
}
