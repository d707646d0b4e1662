//! Which `__consumer_offsets` partition holds a group: Kafka's
//! `Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`, where `Utils.abs(n)` is
//! `n & 0x7fffffff` and `hashCode` is Java's `String.hashCode` over UTF-16 code units.

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` in wrapping 32-bit arithmetic over
/// UTF-16 code units (so characters outside the BMP count as two surrogates, as in Java).
pub fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition of `group_id`. `partitions` must be positive; 0 or less
/// maps everything to partition 0 rather than dividing by zero.
pub fn partition_for_group(group_id: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (java_string_hash(group_id) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_java_hash_codes() {
        // Values computed with Java's String.hashCode.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("console-consumer-12345"), 158_455_506);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // U+1F600 is the surrogate pair D83D DE00: 0xD83D * 31 + 0xDE00.
        assert_eq!(java_string_hash("\u{1F600}"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn partition_uses_kafkas_abs() {
        assert_eq!(partition_for_group("console-consumer-12345", 50), 6);
        // A negative hash: "polygenelubricants" hashes to i32::MIN, which Kafka's abs maps to 0.
        assert_eq!(partition_for_group("polygenelubricants", 50), 0);
        assert_eq!(partition_for_group("hello", 50), 22);
        assert_eq!(partition_for_group("anything", 0), 0);
        // i32::MIN hash: abs via mask gives 0, not a negative partition.
        for group in ["a", "zz", "my-group", "\u{1F600}x"] {
            assert!((0..50).contains(&partition_for_group(group, 50)));
        }
    }
}
