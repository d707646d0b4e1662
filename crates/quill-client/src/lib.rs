//! `quill-client`: an async Kafka client that speaks only the wire protocol (via the
//! `kafka-protocol` crate), so it works against Quill and Apache Kafka alike.
//!
//! - [`Client`]: bootstrap, metadata cache, one pipelined [`Connection`] per broker with
//!   ApiVersions negotiation.
//! - [`Admin`]: topics, configs, partitions, offsets.
//! - [`Producer`]: batching (`linger.ms`, `batch.size`), compression, acks, retries, the Java
//!   client's partitioners.
//! - [`Consumer`]: assigned partitions, fetch pipelining per broker, seek by offset/timestamp.
//! - [`group`]: consumer groups (membership, committed offsets, group admin calls) and
//!   [`assignor`]: the partition assignors as pure functions plus the consumer protocol codec.

pub mod admin;
pub mod assignor;
pub mod client;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod group;
pub mod partitioner;
pub mod producer;
pub mod records;

pub use admin::Admin;
pub use client::{Client, ClientConfig};
pub use connection::Connection;
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetSpec};
pub use error::{ClientError, Result};
pub use group::{GroupConsumer, GroupConsumerConfig};
pub use kafka_protocol::error::ResponseError;
pub use kafka_protocol::messages::ApiKey;
pub use kafka_protocol::records::{Compression, TimestampType};
pub use producer::{Acks, Producer, ProducerConfig, ProducerRecord, RecordMetadata};

/// A topic name and partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
