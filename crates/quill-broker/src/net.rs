//! The network layer: accept connections, frame requests, handle them and write the responses.
//!
//! Architecture invariant: the requests of one connection take effect one after another, in the
//! order they arrived, as in Kafka (which mutes a connection until its response is sent).
//! Clients pipeline (librdkafka and the Java client keep up to 5 Produce requests in flight) and
//! rely on this for per-partition order: two pipelined Produce requests are appended in request
//! order. Only a Produce's wait for durability may overlap with the next requests (its appends
//! are already done), so pipelined acks=-1 requests share group-committed fsyncs. Replies are
//! written strictly in request order. Frames are read ahead up to `queued.max.requests`.
//!
//! Architecture invariant: a misbehaving peer (garbage, truncated frame, absurd length, unknown
//! API) only ever closes its own connection; nothing it sends reaches another connection or
//! the data on disk.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::budget::{MemoryBudget, Reservation, ResponseReservation};
use crate::dispatch::{self, Handled, PendingReply, Reply};
use crate::metrics::RequestTimer;
use crate::protocol::{self, ParsedFrame};
use crate::rate_limit::{WarnLimiter, WARNING_INTERVAL};
use crate::state::BrokerState;
use crate::warn_limited;

/// Why a connection stopped reading.
#[derive(Debug, thiserror::Error)]
enum FrameReadError {
    #[error("peer closed the connection")]
    Closed,
    #[error(
        "frame length {length_bytes} is negative or above socket.request.max.bytes ({limit_bytes})"
    )]
    BadLength { length_bytes: i32, limit_bytes: i32 },
    #[error(
        "connection closed in the middle of a frame ({received_bytes} of {length_bytes} bytes)"
    )]
    Truncated {
        received_bytes: usize,
        length_bytes: usize,
    },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one length-prefixed frame. The frame's declared length is reserved from `budget`
/// before its body is read, so while the budget is spent this connection reads nothing more
/// (backpressure); the reservation is returned with the frame and held until it is handled.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit_bytes: i32,
    budget: &MemoryBudget,
) -> Result<(Bytes, Reservation), FrameReadError> {
    let mut length_prefix = [0u8; 4];
    match reader.read_exact(&mut length_prefix).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameReadError::Closed)
        }
        Err(error) => return Err(FrameReadError::Io(error)),
    }
    let declared_length = i32::from_be_bytes(length_prefix);
    if declared_length < 0 || declared_length > limit_bytes {
        return Err(FrameReadError::BadLength {
            length_bytes: declared_length,
            limit_bytes,
        });
    }
    let length_bytes = declared_length.unsigned_abs() as usize;
    let reservation = budget
        .reserve_request(length_bytes)
        .await
        .ok_or(FrameReadError::Closed)?;
    // Reserved, so allocating the declared length is within the budget; pages are touched
    // only as bytes arrive.
    let mut buffer = BytesMut::with_capacity(length_bytes);
    while buffer.len() < length_bytes {
        let wanted = (length_bytes - buffer.len()) as u64;
        let read_bytes = (&mut *reader).take(wanted).read_buf(&mut buffer).await?;
        if read_bytes == 0 {
            return Err(FrameReadError::Truncated {
                received_bytes: buffer.len(),
                length_bytes,
            });
        }
    }
    Ok((buffer.freeze(), reservation))
}

/// Open connections per client address, for `max.connections.per.ip`. An address is in the
/// map only while it has a connection, so the map is bounded by `max.connections`.
#[derive(Default)]
struct ConnectionsPerIp {
    counts: Mutex<HashMap<IpAddr, u32>>,
}

/// One counted connection of an address; uncounted when dropped.
struct IpSlot {
    registry: Arc<ConnectionsPerIp>,
    ip: IpAddr,
}

impl ConnectionsPerIp {
    fn try_take(self: &Arc<Self>, ip: IpAddr, limit: u32) -> Option<IpSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            registry: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self
            .registry
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

static CONNECTION_LIMIT_WARNINGS: WarnLimiter = WarnLimiter::new(WARNING_INTERVAL);
static ACCEPT_WARNINGS: WarnLimiter = WarnLimiter::new(WARNING_INTERVAL);
static MALFORMED_WARNINGS: WarnLimiter = WarnLimiter::new(WARNING_INTERVAL);

/// Accepts connections until `shutdown` flips to true, then waits (bounded by
/// `shutdown.timeout.ms`) for connections to finish their in-flight requests.
pub async fn serve(
    listeners: Vec<TcpListener>,
    state: Arc<BrokerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let open_connections = Arc::new(AtomicUsize::new(0));
    let max_connections_per_ip = u32::try_from(state.config.max_connections_per_ip).unwrap_or(0);
    let per_ip = Arc::new(ConnectionsPerIp::default());
    let budget = MemoryBudget::new(
        state.config.queued_max_request_bytes,
        state.config.queued_max_response_bytes,
    );
    let (accepted_tx, mut accepted_rx) = mpsc::channel::<(TcpStream, SocketAddr)>(64);
    let mut acceptors = JoinSet::new();
    for listener in listeners {
        let accepted_tx = accepted_tx.clone();
        acceptors.spawn(accept_loop(listener, accepted_tx));
    }
    drop(accepted_tx);

    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            accepted = accepted_rx.recv() => {
                let Some((stream, peer)) = accepted else { break };
                // max.connections may change at runtime (as in Kafka): the value in force now
                // applies to this connection; open ones are never closed by a lower limit.
                let max_connections = crate::dynamic_broker_settings::runtime_value(
                    &state.image(),
                    state.config.node_id,
                    "max.connections",
                    i64::from(state.config.max_connections),
                );
                let max_connections = usize::try_from(max_connections).unwrap_or(0);
                let Some(slot) = ConnectionSlot::take(&open_connections, max_connections) else {
                    warn_limited!(CONNECTION_LIMIT_WARNINGS, %peer, limit = max_connections, "max.connections reached; closing new connection");
                    continue;
                };
                let Some(ip_slot) = per_ip.try_take(peer.ip(), max_connections_per_ip) else {
                    warn_limited!(CONNECTION_LIMIT_WARNINGS, %peer, limit = max_connections_per_ip, "max.connections.per.ip reached; closing new connection");
                    continue;
                };
                let state = state.clone();
                let shutdown = shutdown.clone();
                let budget = budget.clone();
                connections.spawn(async move {
                    run_connection(stream, peer, state, budget, shutdown).await;
                    drop((slot, ip_slot));
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    acceptors.abort_all();
    let drain_timeout = Duration::from_millis(state.config.shutdown_timeout_ms.unsigned_abs());
    let drained = tokio::time::timeout(drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "shutdown.timeout.ms elapsed; closing connections with requests still in flight"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// One of the `max.connections` open connections; frees its place when dropped (also when the
/// connection task is aborted).
struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionSlot {
    fn take(open: &Arc<AtomicUsize>, limit: usize) -> Option<ConnectionSlot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
            (count < limit).then_some(count + 1)
        })
        .ok()
        .map(|_| ConnectionSlot(Arc::clone(open)))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept_loop(listener: TcpListener, accepted: mpsc::Sender<(TcpStream, SocketAddr)>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if accepted.send((stream, peer)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                // Typically EMFILE: back off briefly instead of spinning on the error.
                warn_limited!(ACCEPT_WARNINGS, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One connection: a reader loop that parses frames ahead, a handler loop that handles them in
/// order (leaving only Produce durability waits pending), and a writer loop that writes the
/// replies in order.
async fn run_connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<BrokerState>,
    budget: MemoryBudget,
    shutdown: watch::Receiver<bool>,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
    }
    let (read_half, mut write_half) = stream.into_split();
    let queue_limit = usize::try_from(state.config.queued_max_requests)
        .unwrap_or(1)
        .max(1);
    let (queue_tx, mut queue_rx) =
        mpsc::channel::<(ParsedFrame, Reservation, RequestTimer)>(queue_limit);
    let (replies_tx, mut replies_rx) =
        mpsc::channel::<(PendingReply, Option<ResponseReservation>, RequestTimer)>(queue_limit);
    // Requests read but not yet answered; a connection waiting on them is not idle.
    let in_flight = Arc::new(AtomicUsize::new(0));
    let write_timeout = Duration::from_millis(state.config.connections_max_idle_ms.unsigned_abs());

    let metrics = state.metrics.clone();
    let reader = read_requests(
        read_half,
        peer,
        state.clone(),
        budget.clone(),
        shutdown,
        queue_tx,
        in_flight.clone(),
    );
    let handler = async move {
        let connection_responses = budget.connection_responses();
        while let Some((parsed, request_bytes, timer)) = queue_rx.recv().await {
            state.metrics.request_dequeued(&timer);
            let handled = handle_frame(state.clone(), peer, parsed).await;
            // Handled: the request's bytes are no longer needed (a Produce's records are
            // appended), so its reservation goes back before this waits for response bytes.
            drop(request_bytes);
            let queued = match handled {
                Handled::Ready(reply) => {
                    let response_bytes = match &reply {
                        Reply::Send(bytes) => {
                            budget
                                .reserve_response(&connection_responses, bytes.len())
                                .await
                        }
                        Reply::Nothing | Reply::Close => None,
                    };
                    let ready: PendingReply = Box::pin(std::future::ready(reply));
                    (ready, response_bytes, timer)
                }
                // Only Produce waits for durability; its response is a few bytes per partition.
                Handled::Pending(reply) => (reply, None, timer),
            };
            if replies_tx.send(queued).await.is_err() {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((pending, response_bytes, timer)) = replies_rx.recv().await {
            let reply = pending.await;
            in_flight.fetch_sub(1, Ordering::AcqRel);
            match reply {
                Reply::Send(bytes) => {
                    // A client that reads nothing for connections.max.idle.ms is closed, so it
                    // cannot hold its queued responses (and their budget) forever.
                    match tokio::time::timeout(write_timeout, write_half.write_all(&bytes)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "write failed; closing connection");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "client read nothing for connections.max.idle.ms; closing connection");
                            return;
                        }
                    }
                    metrics.request_completed(&timer);
                }
                Reply::Nothing => metrics.request_completed(&timer),
                Reply::Close => return,
            }
            drop(response_bytes);
        }
        if let Err(error) = write_half.shutdown().await {
            tracing::debug!(%peer, %error, "shutdown of write half failed");
        }
    };
    // The writer finishing first (write error or Close) drops its queue, which stops the
    // handler and then the reader; the reader stopping first lets the handler and the writer
    // finish every request already read.
    tokio::join!(reader, handler, writer);
}

async fn handle_frame(state: Arc<BrokerState>, peer: SocketAddr, parsed: ParsedFrame) -> Handled {
    match parsed {
        ParsedFrame::Request(request) => dispatch::handle_in_order(state, peer, request).await,
        ParsedFrame::UnsupportedApiVersions(request) => {
            tracing::info!(%peer, version = request.api_version, "ApiVersions at an unsupported version; answering per KIP-511");
            Handled::Ready(dispatch::unsupported_api_versions(&request))
        }
    }
}

async fn read_requests(
    read_half: tokio::net::tcp::OwnedReadHalf,
    peer: SocketAddr,
    state: Arc<BrokerState>,
    budget: MemoryBudget,
    mut shutdown: watch::Receiver<bool>,
    queue: mpsc::Sender<(ParsedFrame, Reservation, RequestTimer)>,
    in_flight: Arc<AtomicUsize>,
) {
    let mut reader = BufReader::new(read_half);
    let idle_timeout = Duration::from_millis(state.config.connections_max_idle_ms.unsigned_abs());
    let limit_bytes = state.config.socket_request_max_bytes;
    loop {
        if *shutdown.borrow() {
            return;
        }
        // The frame future lives across idle checks, so a check never loses a partial frame.
        let read = read_frame(&mut reader, limit_bytes, &budget);
        tokio::pin!(read);
        let frame = loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = queue.closed() => return,
                result = &mut read => break result,
                () = tokio::time::sleep(idle_timeout) => {
                    if in_flight.load(Ordering::Acquire) == 0 {
                        tracing::info!(%peer, "closing connection idle longer than connections.max.idle.ms");
                        return;
                    }
                }
            }
        };
        let received = std::time::Instant::now();
        let (frame, reservation) = match frame {
            Err(FrameReadError::Closed) => return,
            Err(error) => {
                warn_limited!(MALFORMED_WARNINGS, %peer, %error, "closing connection");
                return;
            }
            Ok(read) => read,
        };
        let parsed = match protocol::parse_frame(frame) {
            Ok(parsed) => parsed,
            Err(error) => {
                warn_limited!(MALFORMED_WARNINGS, %peer, %error, "closing connection");
                return;
            }
        };
        in_flight.fetch_add(1, Ordering::AcqRel);
        let api_key = match &parsed {
            ParsedFrame::Request(request) => request.api_key,
            ParsedFrame::UnsupportedApiVersions(_) => kafka_protocol::messages::ApiKey::ApiVersions,
        };
        let timer = RequestTimer::start(api_key, received);
        if queue.send((parsed, reservation, timer)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_read_and_bad_lengths_rejected() {
        let budget = MemoryBudget::new(1000, 1000);
        let mut input: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 9, b'x'];
        let (frame, _reservation) = read_frame(&mut input, 100, &budget).await.unwrap();
        assert_eq!(&frame[..], b"abc");
        assert!(matches!(
            read_frame(&mut input, 100, &budget).await,
            Err(FrameReadError::Truncated { .. })
        ));
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut negative, 100, &budget).await,
            Err(FrameReadError::BadLength { .. })
        ));
        let mut too_big: &[u8] = &[0, 0, 1, 0];
        assert!(matches!(
            read_frame(&mut too_big, 100, &budget).await,
            Err(FrameReadError::BadLength { .. })
        ));
        let mut empty: &[u8] = &[];
        assert!(matches!(
            read_frame(&mut empty, 100, &budget).await,
            Err(FrameReadError::Closed)
        ));
    }
}
