//! One TCP connection to one broker. Requests are pipelined: any number may be in flight, each
//! tagged with a fresh correlation id; a reader task routes every response frame to the caller
//! waiting on that id. The ApiVersions handshake runs once, at connect, and every later request
//! is sent at the highest version both sides speak (capped by the caller).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::error::{ClientError, Result};

/// Largest response frame accepted; a bigger length prefix means a broken peer, not data.
pub const MAX_RESPONSE_FRAME_BYTES: usize = 256 * 1024 * 1024;

/// ApiVersions is sent at this version first; a broker that does not know it answers in v0
/// format with UNSUPPORTED_VERSION (KIP-511) and the handshake steps down to v0.
const API_VERSIONS_FIRST_VERSION: i16 = 3;

type ResponseSender = oneshot::Sender<Result<Bytes>>;

/// Callers waiting for a response, by correlation id. `closed` is set once the reader stops,
/// so no caller can register after the last one was failed.
#[derive(Default)]
struct Pending {
    waiting: HashMap<i32, ResponseSender>,
    closed: bool,
}

pub struct Connection {
    address: String,
    client_id: StrBytes,
    request_timeout: Duration,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Arc<Mutex<Pending>>,
    next_correlation_id: AtomicI32,
    closed: Arc<AtomicBool>,
    /// Broker version range per API key, from the ApiVersions handshake.
    versions: HashMap<i16, (i16, i16)>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects (bounded by `connect_timeout`) and negotiates API versions.
    pub async fn connect(
        address: &str,
        client_id: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Connection> {
        tracing::trace!(%address, "connecting");
        let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(address)).await
        {
            Err(_) => {
                return Err(ClientError::ConnectTimeout {
                    address: address.to_string(),
                    timeout: connect_timeout,
                })
            }
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    address: address.to_string(),
                    source,
                })
            }
            Ok(Ok(stream)) => stream,
        };
        tracing::trace!(%address, "connected");
        // Small requests (metadata, acks) must not wait for Nagle's timer.
        let _ = stream.set_nodelay(true);
        let (read_half, write_half) = stream.into_split();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let closed = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_responses(
            read_half,
            address.to_string(),
            pending.clone(),
            closed.clone(),
        ));
        let mut connection = Connection {
            address: address.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            request_timeout,
            writer: tokio::sync::Mutex::new(write_half),
            pending,
            next_correlation_id: AtomicI32::new(1),
            closed,
            versions: HashMap::new(),
            reader,
        };
        let handshake = tokio::time::timeout(connect_timeout, connection.negotiate_versions());
        match handshake.await {
            Ok(result) => connection.versions = result?,
            Err(_) => {
                return Err(ClientError::ConnectTimeout {
                    address: address.to_string(),
                    timeout: connect_timeout,
                })
            }
        }
        Ok(connection)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The broker's supported version range for `api_key`, if it supports the API at all.
    pub fn broker_versions(&self, api_key: ApiKey) -> Option<(i16, i16)> {
        self.versions.get(&(api_key as i16)).copied()
    }

    /// Every API the broker advertised in ApiVersions: api key → (min, max) version.
    pub fn api_versions(&self) -> std::collections::BTreeMap<i16, (i16, i16)> {
        self.versions
            .iter()
            .map(|(&key, &range)| (key, range))
            .collect()
    }

    /// The highest version of `R` that this crate, the caller (`max_version`) and the broker
    /// all speak.
    pub fn version_for<R: Request>(&self, max_version: i16) -> Result<i16> {
        let unsupported = || ClientError::UnsupportedVersion {
            api: api_name::<R>(),
            address: self.address.clone(),
        };
        let (broker_min, broker_max) = self
            .versions
            .get(&R::KEY)
            .copied()
            .ok_or_else(unsupported)?;
        let highest = broker_max.min(max_version).min(R::VERSIONS.max);
        let lowest = broker_min.max(R::VERSIONS.min);
        if highest < lowest {
            return Err(unsupported());
        }
        Ok(highest)
    }

    /// Sends `request` at the negotiated version (at most `max_version`) and waits, bounded by
    /// the request timeout (plus `extra_wait`, for long polls), for its response.
    pub async fn call<R: Request>(
        &self,
        request: &R,
        max_version: i16,
        extra_wait: Duration,
    ) -> Result<(i16, R::Response)> {
        let version = self.version_for::<R>(max_version)?;
        let response = self.call_at(request, version, extra_wait).await?;
        Ok((version, response))
    }

    /// Sends `request` at exactly `version` and waits for its response.
    pub async fn call_at<R: Request>(
        &self,
        request: &R,
        version: i16,
        extra_wait: Duration,
    ) -> Result<R::Response> {
        self.start_call(request, version)
            .await?
            .wait(extra_wait)
            .await
    }

    /// Writes `request` and returns once it is on the wire; the response is awaited separately,
    /// so a caller can keep several requests in flight and still fix their order on the wire.
    pub async fn start_call<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<PendingResponse<R>> {
        let (correlation_id, receiver) = self.register()?;
        let frame = match self.encode(request, version, correlation_id) {
            Ok(frame) => frame,
            Err(error) => {
                self.unregister(correlation_id);
                return Err(error);
            }
        };
        if let Err(error) = self.write_frame(&frame).await {
            self.unregister(correlation_id);
            return Err(error);
        }
        tracing::trace!(address = %self.address, api = api_name::<R>(), version, correlation_id, "request sent");
        Ok(PendingResponse {
            address: self.address.clone(),
            request_timeout: self.request_timeout,
            pending: self.pending.clone(),
            correlation_id,
            version,
            receiver,
            request: std::marker::PhantomData,
        })
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub async fn send_without_response<R: Request>(
        &self,
        request: &R,
        max_version: i16,
    ) -> Result<()> {
        let version = self.version_for::<R>(max_version)?;
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(request, version, correlation_id)?;
        self.write_frame(&frame).await
    }

    fn register(&self) -> Result<(i32, oneshot::Receiver<Result<Bytes>>)> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        let mut pending = lock(&self.pending);
        if pending.closed {
            return Err(ClientError::ConnectionClosed {
                address: self.address.clone(),
            });
        }
        pending.waiting.insert(correlation_id, sender);
        Ok((correlation_id, receiver))
    }

    fn unregister(&self, correlation_id: i32) {
        lock(&self.pending).waiting.remove(&correlation_id);
    }

    fn encode<R: Request>(&self, request: &R, version: i16, correlation_id: i32) -> Result<Bytes> {
        let encode_error = |message: String| ClientError::Encode {
            api: api_name::<R>(),
            message,
        };
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let header_size = header
            .compute_size(R::header_version(version))
            .map_err(|error| encode_error(error.to_string()))?;
        let body_size = request
            .compute_size(version)
            .map_err(|error| encode_error(error.to_string()))?;
        let size = header_size + body_size;
        let Ok(size_prefix) = i32::try_from(size) else {
            return Err(encode_error(format!(
                "request of {size} bytes is too large"
            )));
        };
        let mut frame = BytesMut::with_capacity(4 + size);
        frame.put_i32(size_prefix);
        header
            .encode(&mut frame, R::header_version(version))
            .map_err(|error| encode_error(error.to_string()))?;
        request
            .encode(&mut frame, version)
            .map_err(|error| encode_error(error.to_string()))?;
        Ok(frame.freeze())
    }

    async fn write_frame(&self, frame: &[u8]) -> Result<()> {
        let mut writer = self.writer.lock().await;
        writer.write_all(frame).await.map_err(|source| {
            self.closed.store(true, Ordering::Release);
            ClientError::Io {
                address: self.address.clone(),
                source,
            }
        })
    }

    async fn negotiate_versions(&self) -> Result<HashMap<i16, (i16, i16)>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("quill-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let first = self
            .call_at(&request, API_VERSIONS_FIRST_VERSION, Duration::ZERO)
            .await;
        let response = match first {
            Ok(response) if response.error_code == 0 => response,
            // UNSUPPORTED_VERSION comes back in v0 format, which may not parse as v3.
            Ok(_) | Err(ClientError::Decode { .. }) => {
                self.call_at(&ApiVersionsRequest::default(), 0, Duration::ZERO)
                    .await?
            }
            Err(error) => return Err(error),
        };
        versions_of(&response, &self.address)
    }
}

/// A request on the wire whose response has not been read yet.
pub struct PendingResponse<R: Request> {
    address: String,
    request_timeout: Duration,
    pending: Arc<Mutex<Pending>>,
    correlation_id: i32,
    version: i16,
    receiver: oneshot::Receiver<Result<Bytes>>,
    request: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> PendingResponse<R> {
    /// Waits for the response, bounded by the request timeout plus `extra_wait`.
    pub async fn wait(self, extra_wait: Duration) -> Result<R::Response> {
        let timeout = self.request_timeout + extra_wait;
        let mut body = match tokio::time::timeout(timeout, self.receiver).await {
            Err(_) => {
                lock(&self.pending).waiting.remove(&self.correlation_id);
                return Err(ClientError::RequestTimeout {
                    api: api_name::<R>(),
                    address: self.address,
                    timeout,
                });
            }
            Ok(Err(_)) => {
                return Err(ClientError::ConnectionClosed {
                    address: self.address,
                })
            }
            Ok(Ok(result)) => result?,
        };
        decode_response::<R>(&mut body, self.version, &self.address)
    }
}

fn decode_response<R: Request>(
    body: &mut Bytes,
    version: i16,
    address: &str,
) -> Result<R::Response> {
    let decode_error = |message: String| ClientError::Decode {
        api: api_name::<R>(),
        address: address.to_string(),
        message,
    };
    ResponseHeader::decode(body, R::Response::header_version(version))
        .map_err(|error| decode_error(error.to_string()))?;
    R::Response::decode(body, version).map_err(|error| decode_error(error.to_string()))
}

fn versions_of(response: &ApiVersionsResponse, address: &str) -> Result<HashMap<i16, (i16, i16)>> {
    crate::error::check_code(
        response.error_code,
        || format!("ApiVersions handshake with {address}"),
        None,
    )?;
    Ok(response
        .api_keys
        .iter()
        .map(|api| (api.api_key, (api.min_version, api.max_version)))
        .collect())
}

/// Reads frames until the connection ends, handing each to the caller waiting on its
/// correlation id; then fails every caller still waiting.
async fn read_responses(
    mut reader: OwnedReadHalf,
    address: String,
    pending: Arc<Mutex<Pending>>,
    closed: Arc<AtomicBool>,
) {
    let failure = loop {
        let body = match read_frame(&mut reader, &address).await {
            Ok(body) => body,
            Err(error) => break error,
        };
        if body.len() < 4 {
            break ClientError::Decode {
                api: "response",
                address: address.clone(),
                message: format!("frame of {} bytes has no correlation id", body.len()),
            };
        }
        let correlation_id = (&body[..4]).get_i32();
        let waiter = lock(&pending).waiting.remove(&correlation_id);
        tracing::trace!(%address, correlation_id, bytes = body.len(), "response received");
        match waiter {
            Some(sender) => {
                let _ = sender.send(Ok(body));
            }
            // The caller gave up (timeout); the late response is dropped.
            None => tracing::debug!(%address, correlation_id, "response for nobody"),
        }
    };
    closed.store(true, Ordering::Release);
    let waiting = {
        let mut pending = lock(&pending);
        pending.closed = true;
        std::mem::take(&mut pending.waiting)
    };
    tracing::debug!(%address, error = %failure, "connection reader stopped");
    for (_, sender) in waiting {
        let _ = sender.send(Err(ClientError::ConnectionClosed {
            address: address.clone(),
        }));
    }
}

async fn read_frame(reader: &mut OwnedReadHalf, address: &str) -> Result<Bytes> {
    let io_error = |source| ClientError::Io {
        address: address.to_string(),
        source,
    };
    let length = match reader.read_i32().await {
        Ok(length) => length,
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(ClientError::ConnectionClosed {
                address: address.to_string(),
            })
        }
        Err(error) => return Err(io_error(error)),
    };
    if length < 0 || length as usize > MAX_RESPONSE_FRAME_BYTES {
        return Err(ClientError::FrameTooLarge {
            address: address.to_string(),
            length: length.into(),
            limit: MAX_RESPONSE_FRAME_BYTES,
        });
    }
    let mut body = BytesMut::zeroed(length as usize);
    reader.read_exact(&mut body).await.map_err(io_error)?;
    Ok(body.freeze())
}

/// A poisoned lock only means another task panicked mid-update of a plain map; the map is
/// still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn api_name<R: Request>() -> &'static str {
    match ApiKey::try_from(R::KEY) {
        Ok(key) => api_key_name(key),
        Err(_) => "unknown API",
    }
}

fn api_key_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DescribeCluster => "DescribeCluster",
        _ => "Kafka",
    }
}
