//! Rate-limited warnings: a condition a peer or the environment can repeat at will (malformed
//! requests, failed accepts, a log that cannot be created) logs at most one line per interval,
//! and that line says how many were suppressed since the previous one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often each kind of repeated warning may be logged.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// One kind of repeated warning.
#[derive(Debug)]
pub struct WarnLimiter {
    interval: Duration,
    state: Mutex<LimiterState>,
}

#[derive(Debug)]
struct LimiterState {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl WarnLimiter {
    pub const fn new(interval: Duration) -> WarnLimiter {
        WarnLimiter {
            interval,
            state: Mutex::new(LimiterState {
                last_logged: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some(suppressed)` when a line may be logged now (with the number of occurrences
    /// suppressed since the last logged one); `None` when this occurrence is only counted.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = state
            .last_logged
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            state.last_logged = Some(now);
            Some(std::mem::take(&mut state.suppressed))
        } else {
            state.suppressed = state.suppressed.saturating_add(1);
            None
        }
    }
}

/// `tracing::warn!` through a [`WarnLimiter`]: logs with a `suppressed` field, or counts.
#[macro_export]
macro_rules! warn_limited {
    ($limiter:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limiter.admit() {
            tracing::warn!(suppressed, $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_of_suppressed_ones() {
        let limiter = WarnLimiter::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(limiter.admit_at(start), Some(0));
        for second in 1..10 {
            assert_eq!(limiter.admit_at(start + Duration::from_secs(second)), None);
        }
        assert_eq!(limiter.admit_at(start + Duration::from_secs(10)), Some(9));
        assert_eq!(limiter.admit_at(start + Duration::from_secs(11)), None);
        assert_eq!(limiter.admit_at(start + Duration::from_secs(25)), Some(1));
    }
}
