//! `quill produce TOPIC`: one record per stdin line (kafka-console-producer.sh), or one JSON
//! object per line with `--format json`. A summary goes to stderr at the end; stdout stays
//! empty so the command composes in pipelines.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use quill_client::{Acks, Compression, Producer, ProducerConfig, ProducerRecord};
use tokio::io::AsyncBufReadExt;

use super::{parse_acks, parse_compression, parse_key_value, ConnectionArgs};

pub const EXAMPLES: &str = "Examples:
  echo hello | quill produce greetings
  printf 'user1:login\\nuser2:logout\\n' | quill produce events --key-separator :
  quill produce events --header source=cli --compression zstd --acks all < events.txt
  echo '{\"key\":\"u1\",\"value\":\"hi\",\"headers\":{\"h\":\"v\"},\"partition\":0}' | quill produce events --format json";

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Each line is a value (or KEY<sep>VALUE with --key-separator)
    Text,
    /// Each line is an object: {"key", "value", "headers": {..}, "partition"} (all optional)
    Json,
}

#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// Topic to write to
    topic: String,
    /// Split each line at the first SEP into key and value (lines without SEP have no key)
    #[arg(short = 'K', long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Header added to every record (repeatable)
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// Write every record to this partition [default: murmur2 of the key, sticky without key]
    #[arg(short = 'p', long, value_name = "N")]
    partition: Option<i32>,
    /// none, gzip, snappy, lz4 or zstd
    #[arg(short = 'z', long, default_value = "none", value_parser = parse_compression)]
    compression: Compression,
    /// 0, 1 or all (-1)
    #[arg(short = 'a', long, default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    #[arg(long, value_enum, default_value = "text")]
    format: InputFormat,
    /// linger.ms: how long a batch waits for more records
    #[arg(long, default_value_t = 5, value_name = "MS")]
    linger_ms: u64,
    /// batch.size in bytes
    #[arg(long, default_value_t = 16384, value_name = "BYTES")]
    batch_size: usize,
    /// Produce requests in flight per broker (each partition's records still keep their order:
    /// the broker handles a connection's requests in order)
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_in_flight: usize,
    /// Give up on a record not acknowledged this long after it was read (retriable errors such
    /// as a restarting broker are retried until then), like the Java client's delivery.timeout.ms
    #[arg(long, default_value_t = 120_000, value_name = "MS")]
    delivery_timeout_ms: u64,
    /// Idempotent producer (enable.idempotence): resends never duplicate or reorder records;
    /// needs --acks all
    #[arg(long)]
    idempotent: bool,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// What was delivered, for the summary.
#[derive(Default)]
struct Summary {
    records: u64,
    bytes: u64,
    /// Partition → (records, first offset, last offset).
    partitions: BTreeMap<i32, (u64, i64, i64)>,
    failed: u64,
    first_error: Option<String>,
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let config = ProducerConfig {
        acks: args.acks,
        compression: args.compression,
        linger: Duration::from_millis(args.linger_ms),
        batch_size_bytes: args.batch_size.max(1),
        max_in_flight_per_broker: args.max_in_flight.max(1),
        delivery_timeout: Duration::from_millis(args.delivery_timeout_ms),
        idempotent: args.idempotent,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client, config)?;
    let summary = Arc::new(Mutex::new(Summary::default()));
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    let mut line_number = 0u64;
    loop {
        line.clear();
        if stdin.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        line_number += 1;
        let text = trim_line_end(&line);
        if text.is_empty() {
            continue;
        }
        let record = match args.format {
            InputFormat::Text => text_record(&args, text),
            InputFormat::Json => json_record(&args, text)
                .map_err(|error| anyhow::anyhow!("line {line_number}: {error}"))?,
        };
        let size_bytes =
            record.value.as_ref().map_or(0, Bytes::len) + record.key.as_ref().map_or(0, Bytes::len);
        let summary_for_callback = summary.clone();
        producer
            .send_with_callback(record, move |result| {
                let mut summary = summary_for_callback
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                match result {
                    Ok(metadata) => {
                        summary.records += 1;
                        summary.bytes += size_bytes as u64;
                        let entry = summary.partitions.entry(metadata.partition).or_insert((
                            0,
                            metadata.offset,
                            metadata.offset,
                        ));
                        entry.0 += 1;
                        entry.1 = entry.1.min(metadata.offset);
                        entry.2 = entry.2.max(metadata.offset);
                    }
                    Err(error) => {
                        summary.failed += 1;
                        summary.first_error.get_or_insert_with(|| error.to_string());
                    }
                }
            })
            .await?;
    }
    producer.close().await;
    let summary = summary.lock().unwrap_or_else(|p| p.into_inner());
    eprintln!("{}", describe_summary(&args.topic, &summary));
    if summary.failed > 0 {
        anyhow::bail!(
            "{} of {} records were not delivered: {}",
            summary.failed,
            summary.failed + summary.records,
            summary.first_error.as_deref().unwrap_or("unknown error")
        );
    }
    Ok(())
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn text_record(args: &ProduceArgs, line: &[u8]) -> ProducerRecord {
    let (key, value) = match args.key_separator.as_deref().map(str::as_bytes) {
        Some(separator) if !separator.is_empty() => match find(line, separator) {
            Some(at) => (
                Some(Bytes::copy_from_slice(&line[..at])),
                &line[at + separator.len()..],
            ),
            None => (None, line),
        },
        _ => (None, line),
    };
    ProducerRecord {
        topic: args.topic.clone(),
        partition: args.partition,
        key,
        value: Some(Bytes::copy_from_slice(value)),
        headers: fixed_headers(args),
        timestamp_ms: None,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn fixed_headers(args: &ProduceArgs) -> Vec<(String, Option<Bytes>)> {
    args.headers
        .iter()
        .map(|(key, value)| (key.clone(), Some(Bytes::from(value.clone()))))
        .collect()
}

fn json_record(args: &ProduceArgs, line: &[u8]) -> Result<ProducerRecord, String> {
    let document: serde_json::Value =
        serde_json::from_slice(line).map_err(|error| format!("invalid JSON: {error}"))?;
    let object = document.as_object().ok_or("expected a JSON object")?;
    let mut headers = fixed_headers(args);
    match object.get("headers") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(map)) => {
            headers.extend(
                map.iter()
                    .map(|(key, value)| (key.clone(), json_bytes(value))),
            );
        }
        Some(_) => return Err("\"headers\" must be an object of name: value".into()),
    }
    let partition = match object.get("partition") {
        None | Some(serde_json::Value::Null) => args.partition,
        Some(value) => Some(
            value
                .as_i64()
                .and_then(|number| i32::try_from(number).ok())
                .ok_or("\"partition\" must be an integer")?,
        ),
    };
    Ok(ProducerRecord {
        topic: args.topic.clone(),
        partition,
        key: object.get("key").and_then(json_bytes),
        value: object.get("value").and_then(json_bytes),
        headers,
        timestamp_ms: object.get("timestamp").and_then(serde_json::Value::as_i64),
    })
}

/// Strings are taken as they are; other JSON values as their compact JSON text; null is none.
fn json_bytes(value: &serde_json::Value) -> Option<Bytes> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(Bytes::from(text.clone())),
        other => Some(Bytes::from(other.to_string())),
    }
}

fn describe_summary(topic: &str, summary: &Summary) -> String {
    let partitions: Vec<String> = summary
        .partitions
        .iter()
        .map(|(partition, (records, first, last))| {
            if *first < 0 {
                format!("partition {partition}: {records} records")
            } else {
                format!("partition {partition}: {records} records at offsets {first}..={last}")
            }
        })
        .collect();
    let mut text = format!(
        "Produced {} records ({} bytes) to {topic}",
        summary.records, summary.bytes
    );
    if !partitions.is_empty() {
        text.push_str(&format!(" ({})", partitions.join("; ")));
    }
    text.push('.');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ProduceArgs,
    }

    fn args(extra: &[&str]) -> ProduceArgs {
        let mut argv = vec!["produce", "t"];
        argv.extend_from_slice(extra);
        Wrapper::parse_from(argv).args
    }

    #[test]
    fn key_separator_splits_at_the_first_occurrence() {
        let record = text_record(&args(&["-K", ":"]), b"k:v:w");
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(record.value.as_deref(), Some(&b"v:w"[..]));
        let record = text_record(&args(&["-K", ":"]), b"novalue");
        assert_eq!(record.key, None);
    }

    #[test]
    fn json_lines_carry_key_value_headers_partition() {
        let record = json_record(
            &args(&["-H", "fixed=1"]),
            br#"{"key":"k","value":{"a":1},"headers":{"h":"v"},"partition":2}"#,
        )
        .unwrap();
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(record.value.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(record.partition, Some(2));
        assert_eq!(record.headers.len(), 2);
        assert!(json_record(&args(&[]), b"[1]").is_err());
        assert!(json_record(&args(&[]), b"{nope").is_err());
    }
}
