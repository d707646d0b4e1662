//! Replica placement for new partitions, after Kafka's `StripedReplicaPlacer`.
//!
//! Brokers are grouped by `broker.rack` (brokers without one form one rack of their own). Each
//! partition takes its first replica (its leader) from the next rack in turn and the following
//! replicas from the racks after it, so a partition's replicas sit on distinct racks whenever
//! there are enough racks, and leaders rotate over racks and, within a rack, over its brokers.
//! Start offsets are random (a topic's partition 0 is not always led by the same broker) and the
//! lists are reshuffled once every broker has led one partition, as Kafka does, so successive
//! topics do not all stack their leaders the same way. New partitions of an existing topic
//! continue from where its last partition left off.
//!
//! Unlike Kafka, which also places non-leader replicas on fenced brokers (and leaves them out of
//! the ISR), Quill places replicas only on *active* brokers (registered, unfenced, not in
//! controlled shutdown): a partition starts with every replica in sync.

use std::collections::BTreeMap;

use crate::record::PartitionAssignment;
use crate::state_machine::MAX_REPLICATION_FACTOR;
use crate::{MetaError, MetadataImage};

/// A small deterministic pseudo-random generator (splitmix64): placement needs a few shuffles,
/// not cryptographic quality, and tests need a seed.
#[derive(Clone, Debug)]
pub struct PlacementRng(u64);

impl PlacementRng {
    pub fn seeded(seed: u64) -> PlacementRng {
        PlacementRng(seed)
    }

    /// Seeded from a fresh v4 uuid (the OS's randomness, through a crate already in use).
    pub fn random() -> PlacementRng {
        let bits = uuid::Uuid::new_v4().as_u128();
        PlacementRng((bits as u64) ^ ((bits >> 64) as u64))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: usize) -> usize {
        let bound = u64::try_from(bound.max(1)).unwrap_or(u64::MAX);
        usize::try_from(self.next_u64() % bound).unwrap_or(0)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for last in (1..items.len()).rev() {
            let other = self.below(last + 1);
            items.swap(last, other);
        }
    }
}

/// One rack's brokers, iterated once per "epoch" (one partition) from a rotating offset.
#[derive(Debug)]
struct BrokerList {
    brokers: Vec<i32>,
    /// Brokers handed out in the current epoch.
    index: usize,
    offset: usize,
    epoch: usize,
}

impl BrokerList {
    fn new(mut brokers: Vec<i32>, offset: usize) -> BrokerList {
        brokers.sort_unstable();
        let offset = offset % brokers.len().max(1);
        BrokerList {
            brokers,
            index: 0,
            offset,
            epoch: 0,
        }
    }

    /// The next broker of this epoch; `None` once every broker was handed out in it.
    fn next(&mut self, epoch: usize) -> Option<i32> {
        let len = self.brokers.len();
        if len == 0 {
            return None;
        }
        if self.epoch != epoch {
            self.epoch = epoch;
            self.index = 0;
            self.offset = (self.offset + 1) % len;
        }
        if self.index >= len {
            return None;
        }
        let broker = self.brokers.get((self.index + self.offset) % len).copied();
        self.index += 1;
        broker
    }
}

/// Every active broker, grouped by rack, and the striping state.
#[derive(Debug)]
struct RackList {
    racks: BTreeMap<Option<String>, BrokerList>,
    /// Rack names in iteration order (sorted, reshuffled after each full round).
    names: Vec<Option<String>>,
    broker_count: usize,
    epoch: usize,
    offset: usize,
}

impl RackList {
    fn new(image: &MetadataImage, previous: &[Vec<i32>], rng: &mut PlacementRng) -> RackList {
        let mut by_rack: BTreeMap<Option<String>, Vec<i32>> = BTreeMap::new();
        for broker in image.brokers.values().filter(|broker| broker.is_active()) {
            by_rack
                .entry(broker.rack.clone())
                .or_default()
                .push(broker.node_id);
        }
        let broker_count = by_rack.values().map(Vec::len).sum();
        let rack_of = |node_id: i32| image.broker(node_id).map(|broker| broker.rack.clone());
        let racks: BTreeMap<Option<String>, BrokerList> = by_rack
            .into_iter()
            .map(|(rack, mut brokers)| {
                brokers.sort_unstable();
                // Continue after the last broker of this rack the topic used, else at random.
                let continued = previous.iter().rev().find_map(|replicas| {
                    replicas
                        .iter()
                        .find(|id| rack_of(**id).as_ref() == Some(&rack))
                        .and_then(|id| brokers.iter().position(|b| b == id))
                });
                let offset = match continued {
                    Some(position) => position + 1,
                    None => rng.below(brokers.len()),
                };
                (rack, BrokerList::new(brokers, offset))
            })
            .collect();
        let names: Vec<Option<String>> = racks.keys().cloned().collect();
        let last_leader_rack = previous
            .last()
            .and_then(|replicas| replicas.first())
            .and_then(|leader| rack_of(*leader));
        let offset = match last_leader_rack.and_then(|rack| names.iter().position(|n| *n == rack)) {
            Some(position) => (position + 1) % names.len().max(1),
            None => rng.below(names.len()),
        };
        RackList {
            racks,
            names,
            broker_count,
            epoch: 0,
            offset,
        }
    }

    fn next_in_rack(&mut self, rack_index: usize) -> Option<i32> {
        let name = self.names.get(rack_index)?;
        self.racks.get_mut(name)?.next(self.epoch)
    }

    /// The replicas of one partition (`factor` ≤ `broker_count`, checked by the caller).
    fn place(&mut self, factor: usize, rng: &mut PlacementRng) -> Vec<i32> {
        let rack_count = self.names.len();
        if rack_count == 0 || factor == 0 {
            return Vec::new();
        }
        if self.epoch == self.broker_count && self.broker_count > 1 {
            // Every broker led once this round: reshuffle so the next round differs.
            rng.shuffle(&mut self.names);
            for rack in self.racks.values_mut() {
                rng.shuffle(&mut rack.brokers);
            }
            self.epoch = 0;
        }
        if self.offset >= rack_count {
            self.offset = 0;
        }
        let mut replicas = Vec::with_capacity(factor);
        // The leader: the first rack from `offset` with a broker left in this epoch.
        let mut first_rack = None;
        for step in 0..rack_count {
            let rack_index = (self.offset + step) % rack_count;
            if let Some(broker) = self.next_in_rack(rack_index) {
                replicas.push(broker);
                first_rack = Some(rack_index);
                break;
            }
        }
        // The followers: the racks from `offset` on, skipping the leader's rack in the first
        // pass, so replicas land on distinct racks while there are racks to spare. Each
        // broker is handed out at most once per epoch, so replicas are distinct; the pass
        // count is bounded by the brokers there are.
        let mut rack_index = self.offset;
        let mut skip = first_rack;
        let mut attempts = 0usize;
        let max_attempts = rack_count.saturating_mul(self.broker_count + 2);
        while replicas.len() < factor && attempts < max_attempts {
            attempts += 1;
            if skip == Some(rack_index) {
                skip = None;
            } else if let Some(broker) = self.next_in_rack(rack_index) {
                replicas.push(broker);
            }
            rack_index = (rack_index + 1) % rack_count;
        }
        self.epoch += 1;
        self.offset += 1;
        replicas
    }
}

/// Places `count` new partitions (numbered from `first_partition`) of `factor` replicas each
/// over the active brokers, continuing after `previous` (the topic's existing replica lists,
/// in partition order). INVALID_REPLICATION_FACTOR, with Kafka's message, when `factor` is not
/// positive or exceeds the active brokers.
pub fn place_partitions(
    image: &MetadataImage,
    previous: &[Vec<i32>],
    first_partition: i32,
    count: i32,
    factor: i16,
    rng: &mut PlacementRng,
) -> Result<Vec<PartitionAssignment>, MetaError> {
    let factor = usize::try_from(factor)
        .ok()
        .filter(|factor| *factor > 0)
        .ok_or_else(|| {
            MetaError::InvalidReplicationFactor(
                "Replication factor must be larger than 0, or -1 to use the default value."
                    .to_string(),
            )
        })?;
    let mut racks = RackList::new(image, previous, rng);
    if racks.broker_count == 0 {
        return Err(MetaError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {factor} time(s): All brokers are currently fenced."
        )));
    }
    if factor > racks.broker_count || factor > MAX_REPLICATION_FACTOR {
        return Err(MetaError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {factor} time(s): The target replication factor of {factor} cannot be reached because only {} broker(s) are registered.",
            racks.broker_count
        )));
    }
    let mut assignments = Vec::new();
    for partition in first_partition..first_partition.saturating_add(count) {
        let replicas = racks.place(factor, rng);
        debug_assert_eq!(replicas.len(), factor, "enough brokers were checked");
        assignments.push(PartitionAssignment {
            partition,
            replicas,
        });
    }
    Ok(assignments)
}

/// The number of active brokers (those placement may use).
pub fn active_broker_count(image: &MetadataImage) -> usize {
    image
        .brokers
        .values()
        .filter(|broker| broker.is_active())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetadataRecord;
    use std::collections::{BTreeMap, BTreeSet};

    fn image_with(brokers: &[(i32, Option<&str>)]) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        for (node_id, rack) in brokers {
            image = crate::apply(
                &image,
                &MetadataRecord::RegisterBroker {
                    node_id: *node_id,
                    host: "h".into(),
                    port: 9092,
                    rack: rack.map(str::to_string),
                    incarnation_id: None,
                },
            )
            .unwrap();
        }
        image
    }

    fn place(image: &MetadataImage, count: i32, factor: i16, seed: u64) -> Vec<Vec<i32>> {
        place_partitions(
            image,
            &[],
            0,
            count,
            factor,
            &mut PlacementRng::seeded(seed),
        )
        .unwrap()
        .into_iter()
        .map(|assignment| assignment.replicas)
        .collect()
    }

    fn leader_counts(placed: &[Vec<i32>]) -> BTreeMap<i32, usize> {
        let mut counts = BTreeMap::new();
        for replicas in placed {
            *counts.entry(replicas[0]).or_default() += 1;
        }
        counts
    }

    #[test]
    fn leaders_spread_evenly_and_replicas_are_distinct() {
        let image = image_with(&[(1, None), (2, None), (3, None), (4, None)]);
        for seed in 0..20 {
            let placed = place(&image, 12, 3, seed);
            for replicas in &placed {
                assert_eq!(replicas.len(), 3);
                assert_eq!(
                    replicas.iter().collect::<BTreeSet<_>>().len(),
                    3,
                    "{placed:?}"
                );
            }
            let counts = leader_counts(&placed);
            assert_eq!(counts.len(), 4, "{placed:?}");
            assert!(counts.values().all(|count| *count == 3), "{counts:?}");
            // Every broker holds the same number of replicas too (12 × 3 / 4).
            let mut replica_counts: BTreeMap<i32, usize> = BTreeMap::new();
            for id in placed.iter().flatten() {
                *replica_counts.entry(*id).or_default() += 1;
            }
            assert!(
                replica_counts.values().all(|n| *n == 9),
                "{replica_counts:?}"
            );
        }
    }

    #[test]
    fn start_offsets_vary() {
        let image = image_with(&[(1, None), (2, None), (3, None)]);
        let first_leaders: BTreeSet<i32> = (0..30)
            .map(|seed| place(&image, 1, 1, seed)[0][0])
            .collect();
        assert_eq!(
            first_leaders.len(),
            3,
            "partition 0's leader depends on the draw"
        );
    }

    #[test]
    fn replicas_of_a_partition_sit_on_distinct_racks() {
        let image = image_with(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ]);
        let rack = |id: i32| image.broker(id).unwrap().rack.clone();
        for seed in 0..20 {
            let placed = place(&image, 12, 3, seed);
            for replicas in &placed {
                let racks: BTreeSet<_> = replicas.iter().map(|id| rack(*id)).collect();
                assert_eq!(racks.len(), 3, "{placed:?}");
            }
            let counts = leader_counts(&placed);
            assert!(counts.values().all(|count| *count == 2), "{counts:?}");
        }
        // More replicas than racks: every rack is used before any repeats.
        let placed = place(&image, 6, 4, 7);
        for replicas in &placed {
            let racks: BTreeSet<_> = replicas.iter().map(|id| rack(*id)).collect();
            assert_eq!(racks.len(), 3, "{placed:?}");
        }
    }

    #[test]
    fn fenced_and_shutting_down_brokers_get_nothing() {
        let image = image_with(&[(1, None), (2, None), (3, None), (4, None)]);
        let image = crate::apply(&image, &MetadataRecord::FenceBroker { node_id: 2 }).unwrap();
        let image = crate::apply(
            &image,
            &MetadataRecord::BeginControlledShutdown { node_id: 3 },
        )
        .unwrap();
        let placed = place(&image, 5, 2, 1);
        assert!(
            placed.iter().flatten().all(|id| *id == 1 || *id == 4),
            "{placed:?}"
        );
        let error =
            place_partitions(&image, &[], 0, 1, 3, &mut PlacementRng::seeded(1)).unwrap_err();
        assert_eq!(error.kafka_error_code(), 38);
        assert_eq!(
            error.to_string(),
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 2 broker(s) are registered."
        );
        let all_fenced = crate::apply_entry(
            &image,
            image.offset + 1,
            &[
                MetadataRecord::FenceBroker { node_id: 1 },
                MetadataRecord::FenceBroker { node_id: 4 },
            ],
        )
        .unwrap();
        let error =
            place_partitions(&all_fenced, &[], 0, 1, 1, &mut PlacementRng::seeded(1)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Unable to replicate the partition 1 time(s): All brokers are currently fenced."
        );
    }

    #[test]
    fn new_partitions_continue_after_the_last_one() {
        let image = image_with(&[(1, None), (2, None), (3, None)]);
        let first = place(&image, 3, 2, 5);
        let more =
            place_partitions(&image, &first, 3, 3, 2, &mut PlacementRng::seeded(99)).unwrap();
        let all: Vec<Vec<i32>> = first
            .iter()
            .cloned()
            .chain(more.into_iter().map(|a| a.replicas))
            .collect();
        assert!(leader_counts(&all).values().all(|n| *n == 2), "{all:?}");
    }
}
