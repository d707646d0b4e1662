//! Requests this broker sends to other brokers — transaction markers (WriteTxnMarkers) and
//! transaction verification (AddPartitionsToTxn `verify_only`) — over the client listener each
//! broker advertises in the metadata image, through quill-client's `Connection` (the Kafka wire
//! protocol, nothing of this broker's internals).

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::protocol::Request;
use quill_client::{ClientError, Connection};
use quill_meta::MetadataImage;

/// Kafka's inter-broker `request.timeout.ms` default; a connect gets less (the peer is local or
/// down, and a marker or verification is retried anyway).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CLIENT_ID: &str = "quill-inter-broker";

#[derive(Debug, thiserror::Error)]
pub enum InterBrokerError {
    #[error("broker {0} is not registered in the metadata image")]
    UnknownBroker(i32),
    #[error("request to broker {node_id} failed: {source}")]
    Request { node_id: i32, source: ClientError },
    #[error("broker {node_id} speaks API {api_key} only up to version {version}, too old")]
    Unsupported {
        node_id: i32,
        api_key: i16,
        version: i16,
    },
}

/// One connection per destination broker, opened on first use and replaced when it closes or
/// the broker's advertised address changes. Keyed by node ids of the image (never client
/// input), so the map is bounded by the cluster's size.
#[derive(Default)]
pub struct InterBrokerClient {
    connections: Mutex<HashMap<i32, Arc<Connection>>>,
}

impl InterBrokerClient {
    /// Sends `request` to broker `node_id` at the highest version both sides speak within
    /// `versions` and waits for the response. A broker whose versions end below the range is
    /// an error, never asked at a version with other semantics (AddPartitionsToTxn below v4
    /// would add partitions instead of verifying them).
    pub async fn call<R: Request>(
        &self,
        image: &MetadataImage,
        node_id: i32,
        request: &R,
        versions: RangeInclusive<i16>,
    ) -> Result<R::Response, InterBrokerError> {
        let connection = self.connection(image, node_id).await?;
        let version = connection
            .version_for::<R>(*versions.end())
            .map_err(|source| InterBrokerError::Request { node_id, source })?;
        if version < *versions.start() {
            return Err(InterBrokerError::Unsupported {
                node_id,
                api_key: R::KEY,
                version,
            });
        }
        match connection.call_at(request, version, Duration::ZERO).await {
            Ok(response) => Ok(response),
            Err(source) => {
                // A timed-out or broken connection is not reused: the next call reconnects.
                self.forget(node_id, &connection);
                Err(InterBrokerError::Request { node_id, source })
            }
        }
    }

    async fn connection(
        &self,
        image: &MetadataImage,
        node_id: i32,
    ) -> Result<Arc<Connection>, InterBrokerError> {
        let broker = image
            .brokers
            .get(&node_id)
            .ok_or(InterBrokerError::UnknownBroker(node_id))?;
        let address = format!("{}:{}", broker.host, broker.port);
        let cached = lock(&self.connections).get(&node_id).cloned();
        if let Some(connection) = cached {
            if !connection.is_closed() && connection.address() == address {
                return Ok(connection);
            }
        }
        // Not under the lock: a slow connect to one broker must not hold up the others. Two
        // racing connects both succeed and the later one is kept.
        let connection = Connection::connect(&address, CLIENT_ID, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
            .await
            .map_err(|source| InterBrokerError::Request { node_id, source })?;
        let connection = Arc::new(connection);
        lock(&self.connections).insert(node_id, connection.clone());
        Ok(connection)
    }

    fn forget(&self, node_id: i32, connection: &Arc<Connection>) {
        let mut connections = lock(&self.connections);
        if connections
            .get(&node_id)
            .is_some_and(|cached| Arc::ptr_eq(cached, connection))
        {
            connections.remove(&node_id);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
