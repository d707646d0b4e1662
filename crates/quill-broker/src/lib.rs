//! Quill's broker: the Kafka wire-protocol server.
//!
//! Layers, outside in: [`net`] (sockets, framing, pipelining) → [`protocol`] (headers, version
//! table) → `dispatch` (routing) → `handlers` (one module per API family) → services (metadata
//! store, partition manager). See `ARCHITECTURE.md` for the invariants.

pub mod broker;
mod budget;
mod cleaner;
mod clock;
pub mod config;
pub mod controller_node;
mod coordinator_leadership;
mod dispatch;
mod dynamic_broker_settings;
mod handlers;
mod inter_broker;
mod isr;
mod liveness;
mod marker_channel;
mod metadata;
pub mod metrics;
pub mod net;
mod offsets_store;
mod partition_marker;
mod partitions;
pub mod protocol;
mod rate_limit;
mod replica_fetcher;
mod replication;
mod request_guard;
mod state;
mod txn_store;

pub use broker::{Broker, BrokerError};
pub use config::{BrokerConfig, ConfigError};
/// A fresh cluster id (a base64url UUID, as `kafka-storage.sh random-uuid` prints) for `cluster.id`.
pub use quill_meta::storage::properties::new_cluster_id;
