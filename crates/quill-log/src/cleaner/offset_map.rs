//! The cleaner's key → latest offset map, in a fixed amount of memory (Kafka's
//! `SkimpyOffsetMap`, sized by `log.cleaner.dedupe.buffer.size`).
//!
//! Keys are not stored: each slot holds a 128-bit keyed hash of the key and the offset. Two
//! SipHash instances with random per-process keys give the 128 bits, so colliding keys cannot be
//! crafted by a client and accidental collisions are negligible (a collision would make the
//! cleaner treat two keys as one). Open addressing with linear probing; the map is "full" at
//! `load_factor` of its slots, after which the caller cleans what it has mapped and comes back
//! for the rest in another pass.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Bytes per slot: two 64-bit hash halves and the offset.
pub const SLOT_BYTES: u64 = 24;

#[derive(Clone, Copy)]
struct Slot {
    hash: [u64; 2],
    /// -1 marks an empty slot (offsets are never negative).
    offset: i64,
}

const EMPTY: Slot = Slot {
    hash: [0, 0],
    offset: -1,
};

pub struct OffsetMap {
    slots: Vec<Slot>,
    /// How many slots may be used before the map reports itself full.
    capacity: usize,
    used: usize,
    /// The last offset the map covers: every keyed record at or below it (in the section being
    /// mapped) is in the map.
    latest_offset: i64,
    hashers: [RandomState; 2],
    lookups: u64,
    probes: u64,
}

impl std::fmt::Debug for OffsetMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetMap")
            .field("slots", &self.slots.len())
            .field("used", &self.used)
            .field("latest_offset", &self.latest_offset)
            .finish()
    }
}

impl OffsetMap {
    /// A map using at most `memory_bytes` (at least one slot), full at `load_factor`.
    pub fn new(memory_bytes: u64, load_factor: f64) -> OffsetMap {
        let slot_count = usize::try_from((memory_bytes / SLOT_BYTES).max(2)).unwrap_or(usize::MAX);
        let load_factor = if load_factor.is_finite() {
            load_factor.clamp(0.01, 0.99)
        } else {
            0.9
        };
        let capacity = ((slot_count as f64 * load_factor) as usize).clamp(1, slot_count - 1);
        OffsetMap {
            slots: vec![EMPTY; slot_count],
            capacity,
            used: 0,
            latest_offset: -1,
            hashers: [RandomState::new(), RandomState::new()],
            lookups: 0,
            probes: 0,
        }
    }

    pub fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.used = 0;
        self.latest_offset = -1;
        self.lookups = 0;
        self.probes = 0;
    }

    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    pub fn is_full(&self) -> bool {
        self.used >= self.capacity
    }

    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The fraction of slots in use.
    pub fn utilization(&self) -> f64 {
        self.used as f64 / self.slots.len() as f64
    }

    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Raises the covered offset (never lowers it).
    pub fn update_latest_offset(&mut self, offset: i64) {
        self.latest_offset = self.latest_offset.max(offset);
    }

    fn hash(&self, key: &[u8]) -> [u64; 2] {
        [self.hashers[0].hash_one(key), self.hashers[1].hash_one(key)]
    }

    /// The slot holding `hash`, or the empty slot where it would go.
    fn find_slot(&mut self, hash: [u64; 2]) -> usize {
        let count = self.slots.len();
        let mut index = (hash[0] % count as u64) as usize;
        self.lookups += 1;
        loop {
            let slot = &self.slots[index];
            if slot.offset < 0 || slot.hash == hash {
                return index;
            }
            self.probes += 1;
            index += 1;
            if index == count {
                index = 0;
            }
        }
    }

    /// Records `offset` as the latest offset of `key`. Returns false (and changes nothing) when
    /// the key is new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        debug_assert!(offset >= 0);
        let hash = self.hash(key);
        let index = self.find_slot(hash);
        let slot = &mut self.slots[index];
        if slot.offset < 0 {
            if self.used >= self.capacity {
                return false;
            }
            self.used += 1;
            slot.hash = hash;
        }
        slot.offset = slot.offset.max(offset);
        self.latest_offset = self.latest_offset.max(offset);
        true
    }

    /// The latest offset recorded for `key`, if any.
    pub fn get(&mut self, key: &[u8]) -> Option<i64> {
        let hash = self.hash(key);
        let index = self.find_slot(hash);
        let slot = self.slots[index];
        (slot.offset >= 0).then_some(slot.offset)
    }

    /// Average extra probes per lookup (a health number for logs).
    pub fn collision_rate(&self) -> f64 {
        if self.lookups == 0 {
            0.0
        } else {
            self.probes as f64 / self.lookups as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_per_key() {
        let mut map = OffsetMap::new(24 * 100, 0.9);
        assert!(map.put(b"a", 1));
        assert!(map.put(b"b", 2));
        assert!(map.put(b"a", 5));
        assert_eq!(map.get(b"a"), Some(5));
        assert_eq!(map.get(b"b"), Some(2));
        assert_eq!(map.get(b"c"), None);
        assert_eq!(map.len(), 2);
        assert_eq!(map.latest_offset(), 5);
        map.clear();
        assert_eq!(map.get(b"a"), None);
        assert_eq!(map.latest_offset(), -1);
    }

    #[test]
    fn refuses_new_keys_when_full_but_updates_known_ones() {
        let mut map = OffsetMap::new(24 * 10, 0.5);
        let mut inserted = 0;
        for i in 0..100u32 {
            if map.put(&i.to_be_bytes(), i64::from(i)) {
                inserted += 1;
            } else {
                break;
            }
        }
        assert_eq!(inserted, 5);
        assert!(map.is_full());
        assert!(map.put(&0u32.to_be_bytes(), 1000));
        assert_eq!(map.get(&0u32.to_be_bytes()), Some(1000));
        assert!(!map.put(&999u32.to_be_bytes(), 1001));
        assert_eq!(map.get(&999u32.to_be_bytes()), None);
    }

    #[test]
    fn many_keys_round_trip() {
        let mut map = OffsetMap::new(24 * 20_000, 0.9);
        for i in 0..15_000u32 {
            assert!(map.put(format!("key-{i}").as_bytes(), i64::from(i)));
        }
        for i in 0..15_000u32 {
            assert_eq!(map.get(format!("key-{i}").as_bytes()), Some(i64::from(i)));
        }
        assert!(map.get(b"missing").is_none());
    }
}
