//! The broker-wide memory budget for request and response bytes (Kafka's
//! `queued.max.request.bytes` memory pool, extended to responses).
//!
//! A connection reserves a request's declared length *before* reading its body and keeps the
//! reservation until the request has been handled; while the budget is spent, connections stop
//! reading from their sockets (TCP backpressure reaches the clients). A response built by a
//! handler is charged before it is queued for writing and released once written, so clients
//! that stop reading hold at most the response budget, not `queued.max.requests` responses
//! each. Requests and responses have separate pools: a handler waiting for response bytes
//! never waits on bytes held by requests that are waiting for handlers (no cycle, no deadlock).
//!
//! Decoding produce batches has a third pool, [`DECODE_MEMORY_BYTES`]: decompressing (and
//! re-encoding, under `compression.type`) holds memory beyond the request's bytes, up to what
//! `quill_log::decode_memory_bytes` says, reserved here while the decode and its append run.
//! It cannot share the request pool: a handler holding its request's bytes would wait there for
//! bytes held by queued requests whose handlers wait in turn.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// Bytes held from the budget; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

/// Unsent response bytes one connection may queue before its next response waits for the
/// earlier ones to be written. Small responses pipeline freely; a bigger one waits until the
/// connection's queue is empty (like Kafka, which mutes a connection until its response is
/// sent), so a client that stops reading holds at most this plus one response of the broker's
/// pool, and cannot take all of it from the other clients.
const CONNECTION_QUEUED_RESPONSE_BYTES: i32 = 1024 * 1024;

/// A response's bytes held in the connection's share and the broker-wide pool.
#[derive(Debug)]
pub struct ResponseReservation {
    _connection: Reservation,
    _broker: Reservation,
}

/// One connection's share of the response budget.
#[derive(Debug)]
pub struct ConnectionResponses {
    queued: Pool,
}

/// One pool of bytes.
#[derive(Debug, Clone)]
struct Pool {
    semaphore: Arc<Semaphore>,
    /// The pool's size; a single reservation never asks for more (one request or response
    /// bigger than the whole pool runs alone).
    capacity_bytes: u32,
}

impl Pool {
    fn new(capacity_bytes: i32) -> Pool {
        let capacity_bytes = u32::try_from(capacity_bytes.max(1)).unwrap_or(1);
        Pool {
            semaphore: Arc::new(Semaphore::new(capacity_bytes as usize)),
            capacity_bytes,
        }
    }

    /// `None` only if the pool was closed, which never happens (callers close the connection).
    async fn reserve(&self, bytes: usize) -> Option<Reservation> {
        let wanted = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity_bytes);
        let permit = self
            .semaphore
            .clone()
            .acquire_many_owned(wanted)
            .await
            .ok()?;
        debug_assert!(permit.num_permits() <= self.capacity_bytes as usize);
        Some(Reservation { _permit: permit })
    }

    #[cfg(test)]
    fn available_bytes(&self) -> usize {
        self.semaphore.available_permits()
    }
}

/// The most memory decoding produce batches holds at once, broker-wide: room for one batch of
/// `quill_log::MAX_DECOMPRESSED_BATCH_BYTES` being validated or one request of
/// `quill_log::MAX_REENCODED_BATCH_BYTES` being re-encoded (73 MiB each), or several ordinary
/// ones. Appends that would pass it wait (on their blocking thread).
pub const DECODE_MEMORY_BYTES: usize = 96 * 1024 * 1024;
static DECODE_MEMORY: Semaphore = Semaphore::const_new(DECODE_MEMORY_BYTES);

/// Bytes held from the decode pool; released when dropped.
#[derive(Debug)]
pub struct DecodeReservation {
    _permit: SemaphorePermit<'static>,
}

/// Blocking (call it on the blocking pool, never on a runtime worker): waits until `bytes`
/// (capped at the pool) are free in the decode pool. `None` outside a tokio runtime.
pub fn reserve_decode_memory_blocking(bytes: usize) -> Option<DecodeReservation> {
    debug_assert!(bytes <= DECODE_MEMORY_BYTES, "a decode must fit the pool");
    let wanted = u32::try_from(bytes.clamp(1, DECODE_MEMORY_BYTES)).unwrap_or(u32::MAX);
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let permit = runtime.block_on(DECODE_MEMORY.acquire_many(wanted)).ok()?;
    Some(DecodeReservation { _permit: permit })
}

/// The broker's memory budget (shared by every connection).
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    requests: Pool,
    responses: Pool,
}

impl MemoryBudget {
    /// `queued.max.request.bytes` and `queued.max.response.bytes`.
    pub fn new(request_bytes: i32, response_bytes: i32) -> MemoryBudget {
        MemoryBudget {
            requests: Pool::new(request_bytes),
            responses: Pool::new(response_bytes),
        }
    }

    /// Waits until a request of `bytes` may be read (capped at the pool size).
    pub async fn reserve_request(&self, bytes: usize) -> Option<Reservation> {
        self.requests.reserve(bytes).await
    }

    /// A connection's own share of the response budget (see [`ConnectionResponses`]).
    pub fn connection_responses(&self) -> ConnectionResponses {
        ConnectionResponses {
            queued: Pool::new(CONNECTION_QUEUED_RESPONSE_BYTES),
        }
    }

    /// Waits until a response of `bytes` may be queued on `connection`: first within the
    /// connection's own share, then within the broker-wide pool (both capped at their size).
    pub async fn reserve_response(
        &self,
        connection: &ConnectionResponses,
        bytes: usize,
    ) -> Option<ResponseReservation> {
        let connection_bytes = connection.queued.reserve(bytes).await?;
        let broker_bytes = self.responses.reserve(bytes).await?;
        Some(ResponseReservation {
            _connection: connection_bytes,
            _broker: broker_bytes,
        })
    }

    /// Request bytes not reserved right now.
    #[cfg(test)]
    pub fn available_request_bytes(&self) -> usize {
        self.requests.available_bytes()
    }

    /// Response bytes not reserved right now.
    #[cfg(test)]
    pub fn available_response_bytes(&self) -> usize {
        self.responses.available_bytes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_until_bytes_are_released() {
        let budget = MemoryBudget::new(100, 10);
        let first = budget.reserve_request(60).await.unwrap();
        assert_eq!(budget.available_request_bytes(), 40);
        let second = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve_request(60).await.unwrap() }
        });
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        drop(first);
        let second = second.await.unwrap();
        assert_eq!(budget.available_request_bytes(), 40);
        drop(second);
        // Bigger than the pool: takes all of it, and runs alone.
        let huge = budget.reserve_request(1 << 30).await.unwrap();
        assert_eq!(budget.available_request_bytes(), 0);
        drop(huge);
        // Responses have their own pool.
        let connection = budget.connection_responses();
        let _response = budget.reserve_response(&connection, 1000).await.unwrap();
        assert_eq!(budget.available_response_bytes(), 0);
        assert_eq!(budget.available_request_bytes(), 100);
    }
}
