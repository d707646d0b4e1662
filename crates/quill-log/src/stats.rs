//! Counters the group-commit thread keeps about itself, for the broker's metrics endpoint.
//!
//! Plain atomics with fixed bucket bounds: quill-log knows nothing of metrics formats or
//! networking; the broker reads a [`HistogramSnapshot`] and renders it.

use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram of `u64` observations over fixed, ascending upper bounds (the last bucket,
/// `+Inf`, is implied). Recording is two or three relaxed atomic adds, no lock.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One count per bound, plus one for observations above the last bound.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

/// A histogram's counts at one moment (cumulative per bound, as Prometheus wants them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations <= bound)` for each finite bound, ascending.
    pub cumulative: Vec<(u64, u64)>,
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    pub sum: u64,
}

impl Histogram {
    /// `bounds` must be ascending.
    pub fn new(bounds: &'static [u64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|pair| pair[0] < pair[1]));
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    pub fn record(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0u64;
        let mut cumulative = Vec::with_capacity(self.bounds.len());
        for (bound, count) in self.bounds.iter().zip(self.counts.iter()) {
            running = running.saturating_add(count.load(Ordering::Relaxed));
            cumulative.push((*bound, running));
        }
        let above = self
            .counts
            .last()
            .map_or(0, |count| count.load(Ordering::Relaxed));
        HistogramSnapshot {
            cumulative,
            count: running.saturating_add(above),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// fdatasync latency bounds in microseconds: 50 µs (page cache on tmpfs) to 2.5 s (a stalled
/// disk).
pub const FSYNC_MICROS_BOUNDS: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

/// Group-commit batch bounds: durability requests served by one round.
pub const BATCH_SIZE_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/// What the group-commit thread has done since it started.
#[derive(Debug)]
pub struct CommitStats {
    /// Latency of each log's sync in a round (one observation per log synced), in µs.
    pub fsync_micros: Histogram,
    /// Durability requests served per round (one observation per round).
    pub batch_requests: Histogram,
    /// Syncs that failed (the log went offline).
    pub fsync_failures: AtomicU64,
}

impl Default for CommitStats {
    fn default() -> Self {
        CommitStats {
            fsync_micros: Histogram::new(FSYNC_MICROS_BOUNDS),
            batch_requests: Histogram::new(BATCH_SIZE_BOUNDS),
            fsync_failures: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let histogram = Histogram::new(&[1, 10, 100]);
        for value in [0, 1, 2, 10, 11, 1000] {
            histogram.record(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.cumulative, vec![(1, 2), (10, 4), (100, 5)]);
        assert_eq!(snapshot.count, 6);
        assert_eq!(snapshot.sum, 1024);
    }
}
