//! Recent broker-wide throughput for the console's sparklines: the `all_topics` counters
//! (bytes in, bytes out, records in) sampled every [`SAMPLE_INTERVAL`] into a ring of
//! [`MAX_SAMPLES`] samples (five minutes), so memory is fixed whatever the traffic.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use super::{BrokerMetrics, TopicStats};

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

/// Samples `metrics.all_topics` into `metrics.history` every [`SAMPLE_INTERVAL`] until
/// `shutdown` flips to true (run while the console is served).
pub async fn run_sampler(
    metrics: std::sync::Arc<BrokerMetrics>,
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
                metrics.history.record(crate::clock::now_ms(), &metrics.all_topics);
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
