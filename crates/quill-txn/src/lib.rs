//! Quill's transaction coordinator (KIP-98): Kafka's transaction state machine, the mapping of
//! transactional ids to producer ids and epochs, InitProducerId (with KIP-360 epoch bumps),
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, timeouts, DescribeTransactions and
//! ListTransactions, durable in `__transaction_state` in Kafka's record format.
//!
//! Like `quill-group`, it knows nothing of sockets, the wire protocol or logs: the broker
//! implements [`TxnStore`] (the `__transaction_state` logs), [`TxnMarkers`] (COMMIT/ABORT
//! control batches in data partitions and `__consumer_offsets`) and [`ProducerIdSource`]
//! (producer id blocks through quill-meta), and translates requests.
//!
//! ```text
//!   Empty ──AddPartitions──▶ Ongoing ──EndTxn(commit)──▶ PrepareCommit ──markers──▶ CompleteCommit
//!     ▲                        │ │   ──EndTxn(abort) / timeout / InitProducerId fence──▶ PrepareAbort ──markers──▶ CompleteAbort
//!     └──InitProducerId (epoch+1)── Complete* ◀───────────────────────────────────────────────┘
//! ```
//!
//! Map:
//! - [`coordinator`]: the async API, loading, markers and completion, timers.
//! - [`state`]: one transactional id's state and the pure rules.
//! - [`records`]: `TransactionLogKey` / `TransactionLogValue`, byte-exact with Kafka.
//! - [`store`]: the seams (store, markers, producer ids) and in-memory implementations.
//! - [`partitioner`]: transactional id → `__transaction_state` partition.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod coordinator;
pub mod error;
pub mod partitioner;
pub mod records;
pub mod state;
pub mod store;

pub use config::TxnConfig;
pub use coordinator::{
    InitProducerIdRequest, ProducerIdAndEpoch, TransactionCoordinator, TxnDescription, TxnListing,
    COORDINATOR_EPOCH,
};
pub use error::{MarkerError, StoreError, TxnError};
pub use partitioner::{
    java_string_hash_partition, CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC,
};
pub use state::{TxnMetadata, TxnState};
pub use store::{
    BoxFuture, MarkerRequest, MarkerResults, MemoryMarkers, MemoryProducerIds, MemoryTxnStore,
    ProducerIdSource, TxnMarkers, TxnRecord, TxnResult, TxnStore,
};
