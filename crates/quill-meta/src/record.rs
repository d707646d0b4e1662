use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One change to cluster metadata. Records are the only way metadata changes: they are appended
/// to the metadata log and applied by [`crate::apply`].
///
/// Serialized with serde's externally tagged representation (`{"CreateTopic": {...}}`), inside a
/// versioned envelope ([`crate::storage::entry`]). Evolution rule: a new field must be
/// `#[serde(default)]`; a changed meaning needs a new variant, never a reinterpretation, because
/// old logs are replayed by new code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// Registers a broker, or updates the endpoint of an already registered one.
    RegisterBroker {
        node_id: i32,
        host: String,
        port: u16,
        rack: Option<String>,
        /// The registering process's random id (KRaft's incarnation id): while a broker is
        /// registered and not fenced, a registration with another incarnation is refused
        /// (DUPLICATE_BROKER_REGISTRATION), so two processes cannot share a node.id. `None`
        /// for a single node (and entries written before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incarnation_id: Option<Uuid>,
    },
    CreateTopic {
        name: String,
        topic_id: Uuid,
        partitions: Vec<PartitionAssignment>,
        /// Only explicitly set configs; defaults are resolved at read time.
        configs: BTreeMap<String, String>,
    },
    /// Adds partitions to the end of a topic; `new_partitions` continue the numbering.
    CreatePartitions {
        topic_id: Uuid,
        new_partitions: Vec<PartitionAssignment>,
    },
    DeleteTopic {
        topic_id: Uuid,
    },
    AlterTopicConfigs {
        topic_id: Uuid,
        set: BTreeMap<String, String>,
        /// Deleting a config that is not set is a no-op, as in Kafka.
        delete: Vec<String>,
    },
    AlterBrokerConfigs {
        /// `None` is the cluster-wide default (`--entity-default`).
        node_id: Option<i32>,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
    /// Dynamic configs of a consumer group (Kafka 4.0 `ConfigResource` type GROUP).
    AlterGroupConfigs {
        group_id: String,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
    SetPartitionLeader {
        topic_id: Uuid,
        partition: i32,
        /// `NO_LEADER` (-1) when the partition is offline.
        leader: i32,
        isr: Vec<i32>,
        leader_epoch: i32,
        /// The partition epoch to set, at least the current one (snapshots rebuild the state
        /// exactly with it). `None` — every entry written before partition epochs existed —
        /// bumps it by one, as every partition change does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partition_epoch: Option<i32>,
    },
    /// Kafka's PartitionChangeRecord, conditional: applied only while the partition's leader
    /// epoch and partition epoch are still `expected_*`, so a change planned against an older
    /// state (a stale AlterPartition, an election racing another) never wins a race. Sets the
    /// leader and ISR, bumps the partition epoch, and bumps the leader epoch when the leader
    /// changes. Brokers added to the ISR and a new leader must be active (registered, unfenced,
    /// not shutting down): INELIGIBLE_REPLICA otherwise.
    PartitionChange {
        topic_id: Uuid,
        partition: i32,
        expected_leader_epoch: i32,
        expected_partition_epoch: i32,
        /// The leader after the change (the current one for an ISR change; `NO_LEADER` when no
        /// replica can lead).
        leader: i32,
        isr: Vec<i32>,
    },
    /// A partition leader's ISR change (Kafka's AlterPartition, KIP-497, with KIP-903's
    /// eligibility rule), conditional like `PartitionChange`: applied only if `leader` still
    /// leads at `leader_epoch` and the partition is still at `partition_epoch`. Never changes
    /// the leader; bumps the partition epoch. Refused, with Kafka's errors, when stale
    /// (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION), from a non-leader
    /// (NOT_LEADER_OR_FOLLOWER), with an ISR that lacks the leader or is not a subset of the
    /// replicas (INVALID_REQUEST), or naming a broker that is not active (INELIGIBLE_REPLICA).
    AlterPartition {
        topic_id: Uuid,
        partition: i32,
        /// The requesting broker, which must be the partition's leader.
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    /// Kafka's BrokerRegistrationChangeRecord with `InControlledShutdown`: the broker asked to
    /// shut down (its heartbeat's `want_shut_down`). It stays registered and unfenced while its
    /// leaderships move (the `PartitionChange`s of the same entry), but may no longer lead, join
    /// an ISR or receive replicas. Fencing ends it.
    BeginControlledShutdown {
        node_id: i32,
    },
    /// Reserves the producer ids below `next_producer_id` (idempotent/transactional producers):
    /// the requesting broker hands out `[previous next_producer_id, next_producer_id)`.
    /// `node_id` records who asked; the image keeps only the high-water mark.
    AllocateProducerIds {
        node_id: i32,
        next_producer_id: i64,
    },
    /// The active controller stopped hearing from the broker (`broker.session.timeout.ms`), or
    /// the broker is shutting down: it leaves the brokers clients are told about.
    FenceBroker {
        node_id: i32,
    },
    /// A fenced broker heartbeats again: it is offered to clients again.
    UnfenceBroker {
        node_id: i32,
    },
    /// Kafka's FeatureLevelRecord: finalizes feature `name` at `level`; level 0 removes it
    /// (never metadata.version). See [`crate::features`].
    FeatureLevel {
        name: String,
        level: i16,
    },
}

/// Leader id meaning "no leader" in Kafka's protocol.
pub const NO_LEADER: i32 = -1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionAssignment {
    pub partition: i32,
    /// Replica broker ids; the first is the preferred leader.
    pub replicas: Vec<i32>,
}

impl MetadataRecord {
    /// Short name for logs and error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            MetadataRecord::RegisterBroker { .. } => "RegisterBroker",
            MetadataRecord::CreateTopic { .. } => "CreateTopic",
            MetadataRecord::CreatePartitions { .. } => "CreatePartitions",
            MetadataRecord::DeleteTopic { .. } => "DeleteTopic",
            MetadataRecord::AlterTopicConfigs { .. } => "AlterTopicConfigs",
            MetadataRecord::AlterBrokerConfigs { .. } => "AlterBrokerConfigs",
            MetadataRecord::AlterGroupConfigs { .. } => "AlterGroupConfigs",
            MetadataRecord::SetPartitionLeader { .. } => "SetPartitionLeader",
            MetadataRecord::PartitionChange { .. } => "PartitionChange",
            MetadataRecord::AlterPartition { .. } => "AlterPartition",
            MetadataRecord::BeginControlledShutdown { .. } => "BeginControlledShutdown",
            MetadataRecord::AllocateProducerIds { .. } => "AllocateProducerIds",
            MetadataRecord::FenceBroker { .. } => "FenceBroker",
            MetadataRecord::UnfenceBroker { .. } => "UnfenceBroker",
            MetadataRecord::FeatureLevel { .. } => "FeatureLevel",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json() {
        let records = vec![
            MetadataRecord::RegisterBroker {
                node_id: 1,
                host: "localhost".into(),
                port: 9092,
                rack: Some("r1".into()),
                incarnation_id: None,
            },
            MetadataRecord::CreateTopic {
                name: "orders".into(),
                topic_id: Uuid::from_u128(7),
                partitions: vec![PartitionAssignment {
                    partition: 0,
                    replicas: vec![1],
                }],
                configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
            },
            MetadataRecord::AlterBrokerConfigs {
                node_id: None,
                set: BTreeMap::new(),
                delete: vec!["log.retention.ms".into()],
            },
        ];
        let json = serde_json::to_string(&records).unwrap();
        let decoded: Vec<MetadataRecord> = serde_json::from_str(&json).unwrap();
        assert_eq!(decoded, records);
    }

    #[test]
    fn feature_level_wire_shape() {
        let record = MetadataRecord::FeatureLevel {
            name: "metadata.version".into(),
            level: 25,
        };
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"FeatureLevel":{"name":"metadata.version","level":25}}"#
        );
    }

    #[test]
    fn wire_shape_is_stable() {
        // Old logs must keep decoding: pin the JSON shape of a record.
        let record = MetadataRecord::DeleteTopic {
            topic_id: Uuid::from_u128(1),
        };
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"DeleteTopic":{"topic_id":"00000000-0000-0000-0000-000000000001"}}"#
        );
    }
}
