//! `log.cleaner.io.max.bytes.per.second`: the cleaner threads share one throttler that keeps
//! the sum of their reads and writes at or below the rate, measured over short windows (Kafka's
//! `Throttler`). Throttling means the cleaner thread sleeps; nothing else ever waits on it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the observed rate is compared with the limit.
const CHECK_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Throttler {
    bytes_per_second: f64,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    bytes: f64,
}

impl Throttler {
    /// `bytes_per_second` of `f64::MAX` (Kafka's default), infinity, or ≤ 0 means unlimited.
    pub fn new(bytes_per_second: f64) -> Throttler {
        Throttler {
            bytes_per_second,
            window: Mutex::new(Window {
                start: Instant::now(),
                bytes: 0.0,
            }),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        !(self.bytes_per_second.is_finite() && self.bytes_per_second > 0.0)
            || self.bytes_per_second >= f64::MAX / 2.0
    }

    /// Accounts `bytes` of I/O and sleeps if the rate over the current window is above the
    /// limit, long enough to bring it back down.
    pub fn maybe_throttle(&self, bytes: u64) {
        if self.is_unlimited() {
            return;
        }
        let sleep_for = {
            let mut window = self
                .window
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            window.bytes += bytes as f64;
            let elapsed = window.start.elapsed();
            let allowed_seconds = window.bytes / self.bytes_per_second;
            let behind = Duration::try_from_secs_f64(allowed_seconds)
                .unwrap_or(Duration::MAX)
                .saturating_sub(elapsed);
            if elapsed < CHECK_INTERVAL && behind < CHECK_INTERVAL {
                return;
            }
            window.start = Instant::now() + behind;
            window.bytes = 0.0;
            behind
        };
        if !sleep_for.is_zero() {
            std::thread::sleep(sleep_for);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_by_default_values() {
        assert!(Throttler::new(f64::MAX).is_unlimited());
        assert!(Throttler::new(0.0).is_unlimited());
        assert!(Throttler::new(f64::INFINITY).is_unlimited());
        assert!(!Throttler::new(1e6).is_unlimited());
    }

    #[test]
    fn limited_rate_takes_at_least_the_allowed_time() {
        // 3 MB at 10 MB/s: 300 ms allowed; the throttler may run at most one check window
        // ahead of the limit.
        let throttler = Throttler::new(10e6);
        let started = Instant::now();
        for _ in 0..300 {
            throttler.maybe_throttle(10_000);
        }
        assert!(started.elapsed() >= Duration::from_millis(300) - CHECK_INTERVAL);
    }
}
