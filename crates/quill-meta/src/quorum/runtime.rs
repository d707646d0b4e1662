//! openraft's async runtime for the quorum: tokio, except for where randomness and blocking
//! file work come from, so the deterministic simulation (`simulation.rs`) can replay a run.
//!
//! openraft draws one random number per member: its election timeout, in `Raft::new`, from
//! `AsyncRuntime::thread_rng()`. In production that generator is seeded from the OS; a
//! simulation seeds it per thread ([`seed_election_timeouts`], tests only), so the members'
//! timeouts follow from the run's seed. Likewise file work goes to tokio's blocking pool in
//! production ([`run_blocking`]), and runs inline in a simulation, where a blocking thread's
//! real timing would otherwise decide the order of events.

#[cfg(test)]
use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use openraft::async_runtime::TokioOneShotSender;
use openraft::{AsyncRuntime, OptionalSend, TokioInstant, TokioRuntime};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// tokio, with the election timeouts' generator and blocking work as the module doc says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct QuorumRuntime;

/// Tests: from now on, members started on this thread draw their election timeouts from
/// generators seeded by `seed` (each member the next seed of a fixed sequence), and blocking
/// file work runs inline. `None` restores production behaviour.
#[cfg(test)]
pub(crate) fn seed_election_timeouts(seed: Option<u64>) {
    simulated::NEXT_SEED.with(|next| next.set(seed));
    simulated::INLINE_BLOCKING.with(|inline| inline.set(seed.is_some()));
}

fn election_timeout_rng() -> StdRng {
    #[cfg(test)]
    if let Some(seed) = simulated::NEXT_SEED.with(Cell::get) {
        simulated::NEXT_SEED.with(|next| next.set(Some(seed.wrapping_add(0x9E37_79B9_7F4A_7C15))));
        return StdRng::seed_from_u64(seed);
    }
    StdRng::from_entropy()
}

/// Runs blocking file work on tokio's blocking pool (inline in a simulation), so no runtime
/// worker — which also carries heartbeats and elections — waits for the disk. `Err` if the
/// work panicked.
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    #[cfg(test)]
    if simulated::INLINE_BLOCKING.with(Cell::get) {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| error.to_string())
}

impl AsyncRuntime for QuorumRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> =
        <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = StdRng;
    type OneshotSender<T: OptionalSend> = TokioOneShotSender<T>;
    type OneshotReceiverError = <TokioRuntime as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> = <TokioRuntime as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        election_timeout_rng()
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        TokioRuntime::oneshot()
    }
}

#[cfg(test)]
mod simulated {
    use std::cell::Cell;

    thread_local! {
        /// The next seed of an election-timeout generator on this thread, when simulated.
        pub(super) static NEXT_SEED: Cell<Option<u64>> = const { Cell::new(None) };
        /// Whether blocking file work runs inline on this thread.
        pub(super) static INLINE_BLOCKING: Cell<bool> = const { Cell::new(false) };
    }
}
