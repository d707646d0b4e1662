//! Request handlers, one module per API family. Handlers are thin: validate the request, call
//! a service (metadata store, partition manager), shape the response.

pub mod api_versions;
pub mod cluster;
pub mod configs;
pub mod describe_topic_partitions;
pub mod features;
pub mod fetch;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod records;
pub mod topics;
pub mod txn;
