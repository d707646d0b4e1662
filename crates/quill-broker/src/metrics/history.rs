//! Recent history for the console's sparklines, sampled every [`SAMPLE_INTERVAL`] into rings of
//! [`MAX_SAMPLES`] samples (five minutes): the broker-wide `all_topics` counters (bytes in,
//! bytes out, records in), and each consumer group's total lag (at most
//! [`MAX_LAG_HISTORY_GROUPS`] groups a sample), so memory is fixed whatever the traffic.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use super::TopicStats;

pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
pub const MAX_SAMPLES: usize = 61;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sample {
    at_ms: i64,
    bytes_in: u64,
    bytes_out: u64,
    messages_in: u64,
}

/// Per-second rates over one interval between two samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    pub bytes_in: f64,
    pub bytes_out: f64,
    pub messages_in: f64,
}

#[derive(Debug, Default)]
pub struct ThroughputHistory {
    samples: Mutex<VecDeque<Sample>>,
}

impl ThroughputHistory {
    /// Records the counters as of `now_ms`, dropping the oldest sample beyond [`MAX_SAMPLES`].
    pub fn record(&self, now_ms: i64, totals: &TopicStats) {
        let sample = Sample {
            at_ms: now_ms,
            bytes_in: totals.bytes_in.load(Ordering::Relaxed),
            bytes_out: totals.bytes_out.load(Ordering::Relaxed),
            messages_in: totals.messages_in.load(Ordering::Relaxed),
        };
        let mut samples = match self.samples.lock() {
            Ok(samples) => samples,
            Err(poisoned) => poisoned.into_inner(),
        };
        if samples.len() == MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The rates of each interval, oldest first (one fewer than the samples).
    pub fn rates(&self) -> Vec<Rates> {
        let samples = match self.samples.lock() {
            Ok(samples) => samples.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        samples
            .iter()
            .zip(samples.iter().skip(1))
            .filter_map(|(before, after)| {
                let seconds = (after.at_ms - before.at_ms) as f64 / 1000.0;
                if seconds <= 0.0 {
                    return None;
                }
                let per_second = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds;
                Some(Rates {
                    bytes_in: per_second(before.bytes_in, after.bytes_in),
                    bytes_out: per_second(before.bytes_out, after.bytes_out),
                    messages_in: per_second(before.messages_in, after.messages_in),
                })
            })
            .collect()
    }
}

/// Groups whose total lag one sample keeps (the first by group id).
pub const MAX_LAG_HISTORY_GROUPS: usize = 200;

/// Each group's total lag (high watermark − committed, summed over its committed partitions)
/// over the last samples.
#[derive(Debug, Default)]
pub struct LagHistory {
    samples: Mutex<VecDeque<BTreeMap<String, i64>>>,
}

impl LagHistory {
    pub fn record(&self, mut totals: BTreeMap<String, i64>) {
        while totals.len() > MAX_LAG_HISTORY_GROUPS {
            totals.pop_last();
        }
        let mut samples = match self.samples.lock() {
            Ok(samples) => samples,
            Err(poisoned) => poisoned.into_inner(),
        };
        if samples.len() == MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(totals);
    }

    /// A group's total lag in each sample that has it, oldest first.
    pub fn series(&self, group: &str) -> Vec<i64> {
        let samples = match self.samples.lock() {
            Ok(samples) => samples,
            Err(poisoned) => poisoned.into_inner(),
        };
        samples
            .iter()
            .filter_map(|sample| sample.get(group).copied())
            .collect()
    }
}

/// Each loaded group's total lag now, from the coordinator's committed offsets and the hosted
/// partitions' high watermarks (bounded by `MAX_LAG_SERIES` offsets, like a scrape).
fn group_lags(state: &crate::state::BrokerState) -> BTreeMap<String, i64> {
    let mut totals = BTreeMap::new();
    for group in state.groups.snapshot_groups(super::MAX_LAG_SERIES).groups {
        let total = group
            .offsets
            .iter()
            .filter_map(|(tp, committed)| {
                let partition = state.partitions.get(&tp.topic, tp.partition)?;
                Some((partition.offsets().high_watermark - committed).max(0))
            })
            .sum();
        totals.insert(group.group_id, total);
    }
    totals
}

/// Samples the throughput counters and the groups' lag every [`SAMPLE_INTERVAL`] until
/// `shutdown` flips to true (run while the console is served).
pub async fn run_sampler(
    state: std::sync::Arc<crate::state::BrokerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
            _ = ticks.tick() => {
                let metrics = &state.metrics;
                metrics.history.record(crate::clock::now_ms(), &metrics.all_topics);
                // Group locks are taken briefly; kept off the async workers all the same.
                let sampling = state.clone();
                if let Ok(lags) = tokio::task::spawn_blocking(move || group_lags(&sampling)).await {
                    state.metrics.lag_history.record(lags);
                }
            }
        }
    }
}

/// An inline SVG polyline of `values` (oldest left), scaled to their maximum; no script, no
/// external resource.
pub fn sparkline(values: &[f64], label: &str) -> String {
    const WIDTH: f64 = 240.0;
    const HEIGHT: f64 = 36.0;
    // One interval is drawn as a level line across the width.
    let single;
    let values = if let [only] = values {
        single = [*only, *only];
        &single[..]
    } else {
        values
    };
    let max = values.iter().copied().fold(0.0, f64::max);
    let mut points = String::new();
    let step = if values.len() > 1 {
        WIDTH / (values.len() - 1) as f64
    } else {
        0.0
    };
    for (index, value) in values.iter().enumerate() {
        let y = if max > 0.0 {
            HEIGHT - 2.0 - (value / max) * (HEIGHT - 4.0)
        } else {
            HEIGHT - 2.0
        };
        let _ = write!(points, "{:.1},{:.1} ", index as f64 * step, y);
    }
    format!(
        "<svg class=\"spark\" role=\"img\" aria-label=\"{label}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\"><polyline fill=\"none\" stroke=\"#2b6cb0\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        points.trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_between_samples_and_the_ring_is_bounded() {
        let history = ThroughputHistory::default();
        let totals = TopicStats::default();
        history.record(0, &totals);
        totals.bytes_in.store(10_000, Ordering::Relaxed);
        totals.messages_in.store(50, Ordering::Relaxed);
        history.record(5_000, &totals);
        totals.bytes_out.store(2_500, Ordering::Relaxed);
        history.record(10_000, &totals);
        assert_eq!(
            history.rates(),
            vec![
                Rates {
                    bytes_in: 2000.0,
                    bytes_out: 0.0,
                    messages_in: 10.0
                },
                Rates {
                    bytes_in: 0.0,
                    bytes_out: 500.0,
                    messages_in: 0.0
                }
            ]
        );
        for second in 0..200 {
            history.record(20_000 + second * 5_000, &totals);
        }
        assert_eq!(history.rates().len(), MAX_SAMPLES - 1);
    }

    #[test]
    fn lag_history_keeps_each_groups_series_bounded() {
        let history = LagHistory::default();
        history.record(BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 1)]));
        history.record(BTreeMap::from([("a".to_string(), 5)]));
        assert_eq!(history.series("a"), vec![3, 5]);
        assert_eq!(history.series("b"), vec![1]);
        assert!(history.series("c").is_empty());
        let many: BTreeMap<String, i64> = (0..MAX_LAG_HISTORY_GROUPS + 5)
            .map(|index| (format!("g{index:04}"), 1))
            .collect();
        for _ in 0..MAX_SAMPLES + 3 {
            history.record(many.clone());
        }
        assert_eq!(history.series("g0000").len(), MAX_SAMPLES);
        assert!(history
            .series(&format!("g{:04}", MAX_LAG_HISTORY_GROUPS))
            .is_empty());
        assert!(history.series("a").is_empty(), "old samples dropped");
    }

    #[test]
    fn sparklines_scale_to_their_maximum() {
        let svg = sparkline(&[0.0, 5.0, 10.0], "bytes in");
        assert!(
            svg.contains("points=\"0.0,34.0 120.0,18.0 240.0,2.0\""),
            "{svg}"
        );
        assert!(sparkline(&[], "x").contains("points=\"\""));
        assert!(sparkline(&[0.0, 0.0], "x").contains("0.0,34.0 240.0,34.0"));
        assert!(sparkline(&[3.0], "x").contains("points=\"0.0,2.0 240.0,2.0\""));
    }
}
