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

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::dispatch::{self, Handled, PendingReply, Reply};
use crate::protocol::{self, ParsedFrame};
use crate::state::BrokerState;

/// Frames up to this size are read into one buffer at once; bigger declared lengths grow the
/// buffer as bytes actually arrive, so a peer cannot make us allocate memory it never sends.
const INITIAL_FRAME_BUFFER_BYTES: usize = 64 * 1024;

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

/// Reads one length-prefixed frame. `Ok(None)` is a clean end of stream between frames.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit_bytes: i32,
) -> Result<Bytes, FrameReadError> {
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
    let mut buffer = BytesMut::with_capacity(length_bytes.min(INITIAL_FRAME_BUFFER_BYTES));
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
    Ok(buffer.freeze())
}

/// Accepts connections until `shutdown` flips to true, then waits (bounded by
/// `shutdown.timeout.ms`) for connections to finish their in-flight requests.
pub async fn serve(
    listeners: Vec<TcpListener>,
    state: Arc<BrokerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let open_connections = Arc::new(AtomicUsize::new(0));
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
                    tracing::warn!(%peer, limit = max_connections, "max.connections reached; closing new connection");
                    continue;
                };
                let state = state.clone();
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    run_connection(stream, peer, state, shutdown).await;
                    drop(slot);
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
                tracing::warn!(%error, "accept failed");
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
    shutdown: watch::Receiver<bool>,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
    }
    let (read_half, mut write_half) = stream.into_split();
    let queue_limit = usize::try_from(state.config.queued_max_requests)
        .unwrap_or(1)
        .max(1);
    let (queue_tx, mut queue_rx) = mpsc::channel::<ParsedFrame>(queue_limit);
    let (replies_tx, mut replies_rx) = mpsc::channel::<PendingReply>(queue_limit);
    // Requests read but not yet answered; a connection waiting on them is not idle.
    let in_flight = Arc::new(AtomicUsize::new(0));

    let reader = read_requests(
        read_half,
        peer,
        state.clone(),
        shutdown,
        queue_tx,
        in_flight.clone(),
    );
    let handler = async move {
        while let Some(parsed) = queue_rx.recv().await {
            let pending = match handle_frame(state.clone(), peer, parsed).await {
                Handled::Ready(reply) => Box::pin(std::future::ready(reply)),
                Handled::Pending(reply) => reply,
            };
            if replies_tx.send(pending).await.is_err() {
                return;
            }
        }
    };
    let writer = async move {
        while let Some(pending) = replies_rx.recv().await {
            let reply = pending.await;
            in_flight.fetch_sub(1, Ordering::AcqRel);
            match reply {
                Reply::Send(bytes) => {
                    if let Err(error) = write_half.write_all(&bytes).await {
                        tracing::debug!(%peer, %error, "write failed; closing connection");
                        return;
                    }
                }
                Reply::Nothing => {}
                Reply::Close => return,
            }
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
    mut shutdown: watch::Receiver<bool>,
    queue: mpsc::Sender<ParsedFrame>,
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
        let read = read_frame(&mut reader, limit_bytes);
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
        let frame = match frame {
            Err(FrameReadError::Closed) => return,
            Err(error) => {
                tracing::warn!(%peer, %error, "closing connection");
                return;
            }
            Ok(frame) => frame,
        };
        let parsed = match protocol::parse_frame(frame) {
            Ok(parsed) => parsed,
            Err(error) => {
                tracing::warn!(%peer, %error, "closing connection");
                return;
            }
        };
        in_flight.fetch_add(1, Ordering::AcqRel);
        if queue.send(parsed).await.is_err() {
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
        let mut input: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 9, b'x'];
        let frame = read_frame(&mut input, 100).await.unwrap();
        assert_eq!(&frame[..], b"abc");
        assert!(matches!(
            read_frame(&mut input, 100).await,
            Err(FrameReadError::Truncated { .. })
        ));
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut negative, 100).await,
            Err(FrameReadError::BadLength { .. })
        ));
        let mut too_big: &[u8] = &[0, 0, 1, 0];
        assert!(matches!(
            read_frame(&mut too_big, 100).await,
            Err(FrameReadError::BadLength { .. })
        ));
        let mut empty: &[u8] = &[];
        assert!(matches!(
            read_frame(&mut empty, 100).await,
            Err(FrameReadError::Closed)
        ));
    }
}
