use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Fenced by the active controller: not offered to clients, leads nothing.
    pub fenced: bool,
    /// The registered process (see `MetadataRecord::RegisterBroker`).
    pub incarnation_id: Option<uuid::Uuid>,
    /// In controlled shutdown (`MetadataRecord::BeginControlledShutdown`): still registered and
    /// unfenced while it hands its leaderships over, but no longer eligible to lead, to join an
    /// ISR or to receive new replicas. Cleared when it is fenced.
    pub in_controlled_shutdown: bool,
}

impl BrokerInfo {
    /// Whether the broker may lead, join an ISR or receive new replicas: registered, unfenced
    /// and not shutting down (Kafka's "active" broker).
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    /// `record::NO_LEADER` (-1) when offline.
    pub leader: i32,
    /// Bumped on every leader change (KIP-101/279: followers and clients tell leaders apart).
    pub leader_epoch: i32,
    /// Kafka's partition epoch: bumped on every change of the partition (leader, ISR), so a
    /// conditional change (`MetadataRecord::PartitionChange`, AlterPartition) planned against
    /// an older state is refused. 0 at creation; partitions created before it existed count
    /// their changes from their first change after the upgrade.
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub topic_id: Uuid,
    /// Indexed by partition number: `partitions[p].partition == p`.
    pub partitions: Vec<PartitionInfo>,
    /// Only explicitly set topic configs; see `topic_config::describe_topic_configs` for
    /// effective values.
    pub configs: BTreeMap<String, String>,
}

impl TopicInfo {
    pub fn partition(&self, partition: i32) -> Option<&PartitionInfo> {
        usize::try_from(partition)
            .ok()
            .and_then(|index| self.partitions.get(index))
    }
}

/// An immutable view of all cluster metadata after applying every entry up to `offset`.
///
/// Handed out as `Arc<MetadataImage>`; request handlers read it and never mutate it. Invariants
/// (kept by `state_machine`, checked by `check_invariants` in tests):
/// - `topics_by_id` is exactly the inverse of `topics` (name ↔ id), ids are never nil;
/// - partitions of a topic are numbered 0..n without gaps;
/// - every replica is a registered broker, replicas are distinct, the ISR is a subset of the
///   replicas and the leader is in the ISR (or is -1);
/// - no two topic names collide after mapping '.' to '_'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataImage {
    pub cluster_id: String,
    /// Index of the last applied metadata log entry (an entry is a batch of records applied
    /// atomically); 0 for an empty log.
    pub offset: u64,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Values are shared between successive images: applying a record clones only the topics it
    /// changes, so an append costs O(topic count) pointer copies, not a deep copy.
    pub topics: BTreeMap<String, Arc<TopicInfo>>,
    pub topics_by_id: BTreeMap<Uuid, String>,
    /// Dynamic broker configs: `Some(node_id)` per broker, `None` for the cluster default.
    pub broker_configs: BTreeMap<Option<i32>, BTreeMap<String, String>>,
    /// Dynamic group configs by group id (never an empty map), at most
    /// `group_config::MAX_CONFIGURED_GROUPS` groups.
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Producer ids below this are allocated; never decreases.
    pub next_producer_id: i64,
    /// Finalized feature levels (KIP-584), never 0 (level 0 removes a feature), at most
    /// `features::MAX_FINALIZED_FEATURES`. Empty only before the first start finalizes
    /// metadata.version (data directories written before features existed included).
    pub features: BTreeMap<String, i16>,
}

impl MetadataImage {
    pub fn empty(cluster_id: impl Into<String>) -> MetadataImage {
        MetadataImage {
            cluster_id: cluster_id.into(),
            offset: 0,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            topics_by_id: BTreeMap::new(),
            broker_configs: BTreeMap::new(),
            group_configs: BTreeMap::new(),
            next_producer_id: 0,
            features: BTreeMap::new(),
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name).map(Arc::as_ref)
    }

    pub fn topic_by_id(&self, topic_id: &Uuid) -> Option<&TopicInfo> {
        self.topics_by_id
            .get(topic_id)
            .and_then(|name| self.topic(name))
    }

    pub fn broker(&self, node_id: i32) -> Option<&BrokerInfo> {
        self.brokers.get(&node_id)
    }

    /// Whether `node_id` is registered, unfenced and not shutting down.
    pub fn is_active_broker(&self, node_id: i32) -> bool {
        self.brokers
            .get(&node_id)
            .is_some_and(BrokerInfo::is_active)
    }

    /// Dynamic configs set for one broker (`Some(id)`) or for the cluster default (`None`).
    pub fn dynamic_broker_configs(
        &self,
        node_id: Option<i32>,
    ) -> Option<&BTreeMap<String, String>> {
        self.broker_configs.get(&node_id)
    }

    /// The finalized level of a feature; 0 when it is not finalized.
    pub fn finalized_level(&self, name: &str) -> i16 {
        self.features.get(name).copied().unwrap_or(0)
    }

    /// Dynamic configs set for a group.
    pub fn group_configs(&self, group_id: &str) -> Option<&BTreeMap<String, String>> {
        self.group_configs.get(group_id)
    }

    /// Checks the invariants listed on the type. Used by tests and after replay from disk.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.next_producer_id < 0 {
            return Err(format!(
                "negative next_producer_id {}",
                self.next_producer_id
            ));
        }
        if let Some((name, level)) = self.features.iter().find(|(_, level)| **level <= 0) {
            return Err(format!("feature {name} finalized at level {level}"));
        }
        if self.topics.len() != self.topics_by_id.len() {
            return Err(format!(
                "{} topics but {} topic ids",
                self.topics.len(),
                self.topics_by_id.len()
            ));
        }
        let mut collision_keys = BTreeMap::new();
        for (name, topic) in &self.topics {
            if name != &topic.name {
                return Err(format!("topic {} stored under name {name}", topic.name));
            }
            if topic.topic_id.is_nil() {
                return Err(format!("topic {name} has a nil id"));
            }
            if self.topics_by_id.get(&topic.topic_id) != Some(name) {
                return Err(format!("topic {name} missing from topics_by_id"));
            }
            if let Some(other) = collision_keys.insert(name.replace('.', "_"), name) {
                return Err(format!("topics {name} and {other} collide"));
            }
            self.check_partitions(topic)?;
        }
        Ok(())
    }

    fn check_partitions(&self, topic: &TopicInfo) -> Result<(), String> {
        if topic.partitions.is_empty() {
            return Err(format!("topic {} has no partitions", topic.name));
        }
        for (index, partition) in topic.partitions.iter().enumerate() {
            let where_ = format!("{}-{}", topic.name, partition.partition);
            if usize::try_from(partition.partition).ok() != Some(index) {
                return Err(format!("{where_} stored at index {index}"));
            }
            if partition.replicas.is_empty() {
                return Err(format!("{where_} has no replicas"));
            }
            for (position, replica) in partition.replicas.iter().enumerate() {
                if partition.replicas[..position].contains(replica) {
                    return Err(format!("{where_} lists replica {replica} twice"));
                }
                if !self.brokers.contains_key(replica) {
                    return Err(format!("{where_} replica {replica} is not registered"));
                }
            }
            if let Some(stray) = partition
                .isr
                .iter()
                .find(|id| !partition.replicas.contains(id))
            {
                return Err(format!("{where_} ISR member {stray} is not a replica"));
            }
            if partition.leader != crate::NO_LEADER && !partition.isr.contains(&partition.leader) {
                return Err(format!("{where_} leader is not in the ISR"));
            }
            if partition.leader_epoch < 0 || partition.partition_epoch < 0 {
                return Err(format!("{where_} has a negative epoch"));
            }
        }
        Ok(())
    }
}
