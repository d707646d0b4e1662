//! Quill cluster metadata.
//!
//! All cluster metadata (brokers, topics, partitions, leaders, configs) changes only by appending
//! [`MetadataRecord`]s to an ordered metadata log and applying them with the deterministic state
//! machine [`apply_entry`]. Request handlers read an immutable [`MetadataImage`] (as
//! `Arc<MetadataImage>`) and never mutate it.
//!
//! - [`record`]: the records, the only way metadata changes.
//! - [`state_machine`]: validation + application, pure and deterministic.
//! - [`image`]: the read model.
//! - [`topic_name`], [`topic_config`]: Kafka's naming and topic config rules.
//! - [`features`]: feature versions (metadata.version) and Kafka's rules for changing them.
//! - [`group_config`]: Kafka 4.0's dynamic group configs (resource type GROUP).
//! - [`planner`]: turns admin requests into records (random topic ids, elections).
//! - [`placement`]: Kafka's striped, rack-aware replica placement.
//! - [`partition_change`]: leaders' ISR changes (AlterPartition) and the controller's elections.
//! - [`store`]: the durable single-node log ([`MetadataStore`]); [`storage`]: its file formats.

// Tests may unwrap; production code may not (workspace lints).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod error;
pub mod features;
pub mod group_config;
pub mod image;
pub mod partition_change;
pub mod placement;
pub mod planner;
pub mod quorum;
pub mod record;
pub mod state_machine;
pub mod storage;
pub mod store;
pub mod topic_config;
pub mod topic_name;

pub use error::{error_code, MetaError};
pub use image::{BrokerInfo, MetadataImage, PartitionInfo, TopicInfo};
pub use partition_change::{
    plan_alter_partition, plan_controlled_shutdown, plan_fence_broker, plan_unfence_broker,
    AlterPartitionError,
};
pub use planner::{
    assign_replicas, new_topic_id, plan_allocate_producer_ids, plan_create_partitions,
    plan_create_topic, plan_incremental_alter_broker_configs,
    plan_incremental_alter_broker_configs_with, plan_incremental_alter_group_configs,
    plan_incremental_alter_topic_configs, plan_replace_group_configs, plan_replace_topic_configs,
    AlterConfigOp, Placement,
};
pub use quorum::{MetadataQuorum, QuorumConfig, QuorumError, RaftQuorum};
pub use record::{MetadataRecord, PartitionAssignment, NO_LEADER};
pub use state_machine::{apply, apply_entry};
pub use store::{ImageReader, MetadataStore, RecoveryReport, StoreOptions};
pub use topic_name::validate_topic_name;
pub use uuid::Uuid;
