//! Partitioners matching the Java client, so a key lands in the same partition whichever client
//! wrote it: `murmur2(key) & 0x7fffffff % partitions` for keyed records, and a sticky partition
//! for keyless ones (all keyless records go to one partition until its batch is closed, then
//! another partition is picked at random), as in KIP-480.

use std::collections::HashMap;

/// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed 0x9747b28c, little-endian words.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut hash = SEED ^ (length as u32);
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        hash = hash.wrapping_mul(M);
        hash ^= k;
    }
    let tail = words.remainder();
    if tail.len() >= 3 {
        hash ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        hash ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        hash ^= u32::from(tail[0]);
        hash = hash.wrapping_mul(M);
    }
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(M);
    hash ^= hash >> 15;
    hash as i32
}

/// The partition the Java client's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], partition_count: i32) -> i32 {
    if partition_count <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partition_count
}

/// Sticky choice for keyless records, per topic.
#[derive(Debug)]
pub struct StickyPartitioner {
    current: HashMap<String, i32>,
    random_state: u64,
}

impl Default for StickyPartitioner {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0x2545_f491_4f6c_dd1d);
        StickyPartitioner::with_seed(seed)
    }
}

impl StickyPartitioner {
    pub fn with_seed(seed: u64) -> StickyPartitioner {
        StickyPartitioner {
            current: HashMap::new(),
            // xorshift must not start at zero.
            random_state: seed | 1,
        }
    }

    /// The partition keyless records of `topic` go to now.
    pub fn partition(&mut self, topic: &str, partition_count: i32) -> i32 {
        if let Some(&partition) = self.current.get(topic) {
            if partition < partition_count {
                return partition;
            }
        }
        let partition = self.random_below(partition_count);
        self.current.insert(topic.to_string(), partition);
        partition
    }

    /// Called when the batch of `topic`-`closed_partition` is closed: later keyless records
    /// move to another partition (a different one when there is more than one).
    pub fn on_batch_closed(&mut self, topic: &str, closed_partition: i32, partition_count: i32) {
        if self.current.get(topic) != Some(&closed_partition) {
            return;
        }
        let mut next = self.random_below(partition_count);
        if partition_count > 1 && next == closed_partition {
            next = (next + 1) % partition_count;
        }
        self.current.insert(topic.to_string(), next);
    }

    fn random_below(&mut self, bound: i32) -> i32 {
        if bound <= 1 {
            return 0;
        }
        let mut x = self.random_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random_state = x;
        (x % bound as u64) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference hashes of the Java client's `Utils.murmur2`, as published in librdkafka's
    /// `src/rdmurmur2.c` unit test (`java_murmur2_results`), which checks its own murmur2
    /// against them.
    #[test]
    fn murmur2_matches_java_reference_values() {
        let cases: &[(&str, u32)] = &[
            ("kafka", 0xd067_cf64),
            ("giberish123456789", 0x8f55_2b0c),
            ("1234", 0x9fc9_7b14),
            ("234", 0xe7c0_09ca),
            ("34", 0x8739_30da),
            ("4", 0x5a4b_5ca1),
            ("PreAmbleWillBeRemoved,ThePrePartThatIs", 0x7842_4f1c),
            ("reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62_b377),
            ("eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4_e09e),
            ("AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8_b43f),
            ("", 0x106e_08d9),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), *expected as i32, "key {key:?}");
        }
    }

    /// Values from Akka's Murmur2Spec, which were taken from Kafka's `Utils.murmur2`.
    #[test]
    fn murmur2_matches_akka_kafka_values() {
        let cases: &[(&str, i32)] = &[
            ("1", -1_993_445_489),
            ("12", 126_087_238),
            ("123", -267_702_483),
            ("1234", -1_614_185_708),
            ("12345", -1_188_365_604),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), *expected, "key {key:?}");
        }
    }

    #[test]
    fn keyed_partition_clears_the_sign_bit_then_takes_the_remainder() {
        // murmur2("kafka") = 0xd067cf64: sign bit cleared = 0x5067cf64 = 1348980580.
        assert_eq!(partition_for_key(b"kafka", 1), 0);
        assert_eq!(partition_for_key(b"kafka", 7), 1_348_980_580 % 7);
        assert_eq!(partition_for_key(b"kafka", 100), 80);
        // murmur2("") = 0x106e08d9 = 275646681 (already positive).
        assert_eq!(partition_for_key(b"", 6), 275_646_681 % 6);
    }

    #[test]
    fn sticky_stays_until_its_batch_closes_then_moves() {
        let mut sticky = StickyPartitioner::with_seed(42);
        let first = sticky.partition("t", 4);
        for _ in 0..100 {
            assert_eq!(sticky.partition("t", 4), first);
        }
        sticky.on_batch_closed("t", first, 4);
        let second = sticky.partition("t", 4);
        assert_ne!(second, first);
        // Closing some other partition's batch does not move it.
        sticky.on_batch_closed("t", (second + 1) % 4, 4);
        assert_eq!(sticky.partition("t", 4), second);
    }

    #[test]
    fn sticky_single_partition_is_zero() {
        let mut sticky = StickyPartitioner::with_seed(7);
        assert_eq!(sticky.partition("t", 1), 0);
        sticky.on_batch_closed("t", 0, 1);
        assert_eq!(sticky.partition("t", 1), 0);
    }
}
