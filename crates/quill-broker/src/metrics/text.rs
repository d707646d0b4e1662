//! Prometheus text exposition format 0.0.4, written by hand: the metric and label names are
//! our own constants, so the only input that needs care is label values (topic and group
//! names, which clients choose), escaped as the format requires (`\\`, `\"`, `\n`).

use std::fmt::Write as _;

use quill_log::stats::HistogramSnapshot;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Builds one exposition. Call [`TextEncoder::family`] once per metric name, then its samples.
#[derive(Default)]
pub struct TextEncoder {
    out: String,
}

pub type Labels<'a> = &'a [(&'a str, &'a str)];

impl TextEncoder {
    pub fn new() -> TextEncoder {
        TextEncoder::default()
    }

    pub fn finish(self) -> String {
        self.out
    }

    /// `# HELP` and `# TYPE` lines. `name` is the family name (for counters including
    /// `_total`, as Prometheus' own clients write it in this format).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        debug_assert!(is_valid_name(name), "{name}");
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_into(&mut self.out, help, false);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    pub fn sample_u64(&mut self, name: &str, labels: Labels<'_>, value: u64) {
        self.sample_prefix(name, labels);
        let _ = writeln!(self.out, "{value}");
    }

    pub fn sample_i64(&mut self, name: &str, labels: Labels<'_>, value: i64) {
        self.sample_prefix(name, labels);
        let _ = writeln!(self.out, "{value}");
    }

    pub fn sample_f64(&mut self, name: &str, labels: Labels<'_>, value: f64) {
        self.sample_prefix(name, labels);
        write_float(&mut self.out, value);
        self.out.push('\n');
    }

    /// `_bucket` (with `le`), `_sum` and `_count` samples. `unit_divisor` converts the recorded
    /// integers to the exposed unit (1e6 for microseconds exposed as seconds, 1.0 for counts);
    /// dividing by an exact power of ten prints bounds such as 0.0001 exactly.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: Labels<'_>,
        snapshot: &HistogramSnapshot,
        unit_divisor: f64,
    ) {
        let bucket_name = format!("{name}_bucket");
        for (bound, cumulative) in &snapshot.cumulative {
            let mut le = String::new();
            write_float(&mut le, *bound as f64 / unit_divisor);
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample_u64(&bucket_name, &with_le, *cumulative);
        }
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample_u64(&bucket_name, &with_le, snapshot.count);
        self.sample_f64(
            &format!("{name}_sum"),
            labels,
            snapshot.sum as f64 / unit_divisor,
        );
        self.sample_u64(&format!("{name}_count"), labels, snapshot.count);
    }

    fn sample_prefix(&mut self, name: &str, labels: Labels<'_>) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (index, (label, value)) in labels.iter().enumerate() {
                debug_assert!(is_valid_name(label), "{label}");
                if index > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_into(&mut self.out, value, true);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
    }
}

/// Label values escape backslash, double quote and newline; HELP text backslash and newline.
fn escape_into(out: &mut String, text: &str, escape_quote: bool) {
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if escape_quote => out.push_str("\\\""),
            other => out.push(other),
        }
    }
}

fn write_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*` (our names are constants; checked in debug builds).
fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut encoder = TextEncoder::new();
        encoder.family("x_total", Kind::Counter, "a \\ b\nc");
        encoder.sample_u64("x_total", &[("topic", "a\"b\\c\nd")], 3);
        assert_eq!(
            encoder.finish(),
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\nx_total{topic=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
    }

    #[test]
    fn histograms_have_cumulative_buckets_sum_and_count() {
        let snapshot = HistogramSnapshot {
            cumulative: vec![(1000, 2), (5000, 3)],
            count: 4,
            sum: 9000,
        };
        let mut encoder = TextEncoder::new();
        encoder.histogram("h_seconds", &[("request", "Fetch")], &snapshot, 1e6);
        let text = encoder.finish();
        assert!(text.contains("h_seconds_bucket{request=\"Fetch\",le=\"0.001\"} 2\n"));
        assert!(text.contains("h_seconds_bucket{request=\"Fetch\",le=\"0.005\"} 3\n"));
        assert!(text.contains("h_seconds_bucket{request=\"Fetch\",le=\"+Inf\"} 4\n"));
        assert!(text.contains("h_seconds_sum{request=\"Fetch\"} 0.009\n"));
        assert!(text.contains("h_seconds_count{request=\"Fetch\"} 4\n"));
    }
}
