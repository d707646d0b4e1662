//! What a Quill broker exposes only on its metrics endpoint (`metrics.listen`), read by the CLI.
//!
//! The log cleaner's position and dirty ratio have no field in any Kafka response, and the CLI
//! speaks only Kafka's protocol to brokers, so `quill topic describe` reads them from the same
//! Prometheus text a monitoring system scrapes (`quill_log_cleaner_first_dirty_offset`,
//! `quill_log_cleaner_dirty_ratio`), when it is told where that endpoint is. Against a broker
//! without one (Apache Kafka, or Quill without `metrics.listen`) it says so instead.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::HOST;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The whole scrape (connect, request, body) must finish within this, as Prometheus' default
/// scrape timeout.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// A scrape larger than this is refused rather than buffered (the broker caps its series at
/// 10,000 partitions and 10,000 lag rows, far below it).
const MAX_SCRAPE_BYTES: usize = 64 * 1024 * 1024;

pub const FIRST_DIRTY_OFFSET: &str = "quill_log_cleaner_first_dirty_offset";
pub const DIRTY_RATIO: &str = "quill_log_cleaner_dirty_ratio";

/// Where a broker's metrics endpoint is; shared by commands that show broker-side state.
#[derive(Args, Debug, Clone)]
pub struct MetricsArgs {
    /// The broker's metrics endpoint (its `metrics.listen`), to show what only it exposes:
    /// the log cleaner's position and dirty ratio of compacted partitions.
    /// HOST:PORT or http://HOST:PORT[/metrics]
    #[arg(long = "metrics", env = "QUILL_METRICS", value_name = "HOST:PORT")]
    pub metrics: Option<String>,
}

/// An `http://host:port/path` the CLI can scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsUrl {
    pub authority: String,
    pub path: String,
}

impl std::fmt::Display for MetricsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

impl MetricsUrl {
    /// `HOST:PORT`, `http://HOST:PORT` or `http://HOST:PORT/PATH` (the path defaults to
    /// `/metrics`, where the broker serves it).
    pub fn parse(text: &str) -> anyhow::Result<MetricsUrl> {
        let text = text.trim();
        let rest = match text.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => bail!(
                "metrics address `{text}`: only http:// is supported (the broker serves plain HTTP), not {scheme}://"
            ),
            None => text,
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        let path = if path.is_empty() || path == "/" {
            "/metrics"
        } else {
            path
        };
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !has_port {
            bail!("metrics address `{text}`: expected HOST:PORT (the broker's metrics.listen)");
        }
        Ok(MetricsUrl {
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// GETs the exposition text, bounded in time and size.
pub async fn scrape(url: &MetricsUrl) -> anyhow::Result<String> {
    tokio::time::timeout(SCRAPE_TIMEOUT, scrape_unbounded(url))
        .await
        .with_context(|| format!("no answer within {}s", SCRAPE_TIMEOUT.as_secs()))?
}

async fn scrape_unbounded(url: &MetricsUrl) -> anyhow::Result<String> {
    let stream = TcpStream::connect(&url.authority)
        .await
        .context("cannot connect")?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake failed")?;
    // The connection task ends when the response is read and `sender` is dropped.
    let driver = tokio::spawn(connection);
    let request = Request::get(url.path.as_str())
        .header(HOST, url.authority.as_str())
        .body(Empty::<Bytes>::new())
        .context("bad metrics URL")?;
    let response = sender
        .send_request(request)
        .await
        .context("HTTP request failed")?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_SCRAPE_BYTES)
        .collect()
        .await
        .map_err(|error| anyhow::anyhow!("reading the response failed: {error}"))?
        .to_bytes();
    drop(sender);
    driver.abort();
    if status != StatusCode::OK {
        bail!("HTTP status {status}");
    }
    String::from_utf8(body.to_vec()).context("the response is not UTF-8 text")
}

/// The cleaner's view of one compacted partition, as the broker reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanerState {
    /// Records below it have been cleaned; the cleaner resumes here.
    pub first_dirty_offset: i64,
    /// Dirty bytes over the bytes of the cleanable range (compared with
    /// `min.cleanable.dirty.ratio`).
    pub dirty_ratio: f64,
}

/// The cleaner state of every partition of `topic` in a scrape. A partition appears only when
/// both of its samples do (the broker writes them together, for the compacted partitions it
/// hosts).
pub fn cleaner_states(exposition: &str, topic: &str) -> BTreeMap<i32, CleanerState> {
    let mut first_dirty: BTreeMap<i32, i64> = BTreeMap::new();
    let mut ratio: BTreeMap<i32, f64> = BTreeMap::new();
    for sample in exposition.lines().filter_map(parse_sample) {
        if sample.label("topic") != Some(topic) {
            continue;
        }
        let Some(partition) = sample
            .label("partition")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        match sample.name {
            FIRST_DIRTY_OFFSET => {
                // Offsets are exact integers in the text (the broker writes them as such).
                if let Ok(offset) = sample.value.parse::<i64>() {
                    first_dirty.insert(partition, offset);
                }
            }
            DIRTY_RATIO => {
                if let Ok(value) = sample.value.parse::<f64>() {
                    if value.is_finite() {
                        ratio.insert(partition, value);
                    }
                }
            }
            _ => {}
        }
    }
    first_dirty
        .into_iter()
        .filter_map(|(partition, first_dirty_offset)| {
            let dirty_ratio = *ratio.get(&partition)?;
            Some((
                partition,
                CleanerState {
                    first_dirty_offset,
                    dirty_ratio,
                },
            ))
        })
        .collect()
}

/// One sample line of the Prometheus text format: `name{label="value",…} value [timestamp]`.
#[derive(Debug, PartialEq)]
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: &'a str,
}

impl Sample<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| *label == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses a sample line; comments, blank and malformed lines give `None`.
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    if name.is_empty() {
        return None;
    }
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, after_labels) = parse_labels(after_brace)?;
        labels = parsed;
        rest = after_labels;
    }
    let value = rest.split_ascii_whitespace().next()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `label="value",…}` (escapes `\\`, `\"`, `\n`); returns the labels and what follows
/// the closing brace.
fn parse_labels(mut text: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after_name) = text.split_once('=')?;
        let name = name.trim();
        let mut chars = after_name.trim_start().strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (index, '"') => break index,
                (_, '\\') => match chars.next()? {
                    (_, 'n') => value.push('\n'),
                    (_, other) => value.push(other),
                },
                (_, other) => value.push(other),
            }
        };
        labels.push((name, value));
        let after_value = &after_name.trim_start()[1 + end + 1..];
        text = after_value.trim_start();
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_the_metrics_path() {
        let url = MetricsUrl::parse("127.0.0.1:9404").unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:9404/metrics");
        assert_eq!(
            MetricsUrl::parse("http://broker-1:9404/").unwrap().path,
            "/metrics"
        );
        assert_eq!(
            MetricsUrl::parse("http://[::1]:9404/custom")
                .unwrap()
                .to_string(),
            "http://[::1]:9404/custom"
        );
        assert!(MetricsUrl::parse("https://broker:9404").is_err());
        assert!(MetricsUrl::parse("broker").is_err());
        assert!(MetricsUrl::parse(":9404").is_err());
        assert!(MetricsUrl::parse("broker:port").is_err());
    }

    #[test]
    fn samples_with_escaped_labels_parse() {
        let sample =
            parse_sample(r#"m{topic="a\"b\\c\nd",partition="3"} 0.25 1700000000000"#).unwrap();
        assert_eq!(sample.name, "m");
        assert_eq!(sample.label("topic"), Some("a\"b\\c\nd"));
        assert_eq!(sample.label("partition"), Some("3"));
        assert_eq!(sample.value, "0.25");
        let bare = parse_sample("up 1").unwrap();
        assert_eq!((bare.name, bare.value), ("up", "1"));
        assert!(bare.labels.is_empty());
        assert_eq!(parse_sample("# HELP m text"), None);
        assert_eq!(parse_sample(""), None);
        assert_eq!(parse_sample(r#"m{topic="unterminated} 1"#), None);
        assert_eq!(parse_sample(r#"m{topic} 1"#), None);
        assert_eq!(parse_sample("m{}"), None);
    }

    #[test]
    fn cleaner_states_pair_both_samples_of_the_topic() {
        let text = "\
# HELP quill_log_cleaner_first_dirty_offset …
# TYPE quill_log_cleaner_first_dirty_offset gauge
quill_log_cleaner_first_dirty_offset{topic=\"users\",partition=\"0\"} 120
quill_log_cleaner_first_dirty_offset{topic=\"users\",partition=\"1\"} 7
quill_log_cleaner_first_dirty_offset{topic=\"users-2\",partition=\"0\"} 99
quill_log_cleaner_dirty_ratio{topic=\"users\",partition=\"0\"} 0.125
quill_log_cleaner_dirty_ratio{topic=\"users-2\",partition=\"0\"} 0.5
quill_log_size{topic=\"users\",partition=\"0\"} 4096
";
        let states = cleaner_states(text, "users");
        assert_eq!(
            states,
            BTreeMap::from([(
                0,
                CleanerState {
                    first_dirty_offset: 120,
                    dirty_ratio: 0.125
                }
            )])
        );
        assert!(cleaner_states(text, "other").is_empty());
    }
}
