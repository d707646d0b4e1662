//! Quill's group coordinator: Kafka's classic consumer-group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, static membership), committed offsets (OffsetCommit, OffsetFetch,
//! OffsetDelete), the admin views (ListGroups, DescribeGroups, DeleteGroups), and durability in
//! Kafka's own `__consumer_offsets` record format.
//!
//! The crate knows nothing about sockets or the wire protocol's versions: the broker's handlers
//! translate requests to [`api`] types, call [`GroupCoordinator`], and translate back. Storage
//! is the broker's [`OffsetsStore`] (one log per `__consumer_offsets` partition); [`batch`]
//! turns records into v2 record batches and back.
//!
//! Why the coordinator has its own request/response types rather than kafka-protocol's: the
//! same request means different things per version (v0 JoinGroup has no rebalance timeout,
//! LeaveGroup v0–v2 carries one member, OffsetFetch v8 batches groups, fields vanish in old
//! versions), so a version-free core keeps those rules out of the state machine and puts them in
//! one tested place ([`wire`]); the core's tests read as the protocol, not as builder chains; and
//! the coordinator does not change when the wire library does.
//!
//! Map:
//! - [`coordinator`]: the async API, timers (session, rebalance, sync, initial delay), loading.
//! - `group`: one group's state and the pure protocol rules (protocol vote, transitions).
//! - [`records`]: `__consumer_offsets` keys and values, byte-exact with Kafka.
//! - [`batch`]: v2 record batches of those records.
//! - [`partitioner`]: group id → `__consumer_offsets` partition, Kafka's hash.
//! - [`store`]: the storage trait and an in-memory implementation.
//! - [`consumer_protocol`]: subscribed topics from "consumer" protocol metadata.
//! - [`wire`]: kafka-protocol messages ↔ [`api`] types, with the per-version rules.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod batch;
pub mod config;
pub mod consumer_protocol;
pub mod coordinator;
pub mod error;
mod group;
pub mod partitioner;
pub mod records;
pub mod store;
pub mod wire;

pub use api::*;
pub use config::GroupConfig;
pub use coordinator::GroupCoordinator;
pub use error::{error_code, GroupError, StoreError};
pub use group::GroupState;
pub use partitioner::partition_for_group;
pub use store::{BoxFuture, LoadedRecords, MemoryStore, OffsetsStore, StoredRecord};
