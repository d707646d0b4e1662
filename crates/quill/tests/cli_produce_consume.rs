//! `quill produce` / `quill consume` against the real broker binary: lines round-trip, keys land
//! in the Java client's murmur2 partition, every compression codec reads back, JSON in and out,
//! and kcat (librdkafka) reads what quill wrote and the other way round.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;
mod common;

use cli_support::{kcat, quill};
use common::BrokerProcess;

fn start_broker() -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    (dir, broker)
}

fn consume_all(address: &str, topic: &str, format: &str) -> Vec<String> {
    let run = quill(
        address,
        &[
            "consume",
            topic,
            "--from-beginning",
            "--until-end",
            "-f",
            format,
        ],
        None,
    )
    .ok();
    run.stdout.lines().map(str::to_string).collect()
}

#[test]
fn lines_produced_come_back_in_order() {
    let (_dir, broker) = start_broker();
    let address = broker.address();
    quill(&address, &["topic", "create", "lines", "-p", "1"], None).ok();
    let input: String = (0..500).map(|i| format!("line {i}\n")).collect();
    let run = quill(&address, &["produce", "lines"], Some(&input)).ok();
    assert!(
        run.stderr.contains("Produced 500 records"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("offsets 0..=499"), "{}", run.stderr);
    let run = quill(
        &address,
        &["consume", "lines", "--from-beginning", "--until-end"],
        None,
    )
    .ok();
    let expected: Vec<String> = (0..500).map(|i| format!("line {i}")).collect();
    assert_eq!(run.stdout_lines(), expected);
    assert!(
        run.stderr.contains("Consumed 500 records"),
        "{}",
        run.stderr
    );

    // -o -N: the last N; -n: at most N; -o N: from offset N.
    let run = quill(
        &address,
        &["consume", "lines", "-o", "-2", "--until-end"],
        None,
    )
    .ok();
    assert_eq!(run.stdout_lines(), ["line 498", "line 499"]);
    let run = quill(
        &address,
        &["consume", "lines", "-o", "start", "-n", "3"],
        None,
    )
    .ok();
    assert_eq!(run.stdout_lines(), ["line 0", "line 1", "line 2"]);
    let run = quill(
        &address,
        &["consume", "lines", "-o", "250", "-n", "1", "-f", "%o:%s\\n"],
        None,
    )
    .ok();
    assert_eq!(run.stdout_lines(), ["250:line 250"]);
    let run = quill(
        &address,
        &[
            "consume",
            "lines",
            "--read-committed",
            "--from-beginning",
            "-n",
            "2",
        ],
        None,
    )
    .ok();
    assert_eq!(run.stdout_lines(), ["line 0", "line 1"]);
    // From the end with --until-end: nothing, and it exits.
    let run = quill(&address, &["consume", "lines", "--until-end"], None).ok();
    assert_eq!(run.stdout, "");
}

/// murmur2 of each key per the Java client (librdkafka's `java_murmur2_results`).
const KEYED: &[(&str, u32)] = &[
    ("kafka", 0xd067_cf64),
    ("giberish123456789", 0x8f55_2b0c),
    ("1234", 0x9fc9_7b14),
    ("234", 0xe7c0_09ca),
    ("34", 0x8739_30da),
    ("4", 0x5a4b_5ca1),
    ("PreAmbleWillBeRemoved,ThePrePartThatIs", 0x7842_4f1c),
];

fn java_partition(hash: u32, partitions: u32) -> u32 {
    (hash & 0x7fff_ffff) % partitions
}

#[test]
fn keyed_records_land_in_the_java_clients_partition() {
    let (_dir, broker) = start_broker();
    let address = broker.address();
    quill(&address, &["topic", "create", "keyed", "-p", "6"], None).ok();
    let input: String = KEYED
        .iter()
        .map(|(key, _)| format!("{key}|value-of-{key}\n"))
        .collect();
    quill(
        &address,
        &["produce", "keyed", "--key-separator", "|"],
        Some(&input),
    )
    .ok();
    let lines = consume_all(&address, "keyed", "%k %p %s\\n");
    assert_eq!(lines.len(), KEYED.len());
    for (key, hash) in KEYED {
        let expected = format!("{key} {} value-of-{key}", java_partition(*hash, 6));
        assert!(lines.contains(&expected), "{expected} not in {lines:?}");
    }
    // --print-keys: key, tab, value.
    let run = quill(
        &address,
        &[
            "consume",
            "keyed",
            "-p",
            "0",
            "--from-beginning",
            "--until-end",
            "--print-keys",
        ],
        None,
    )
    .ok();
    for line in run.stdout_lines() {
        let (key, value) = line.split_once('\t').unwrap();
        assert_eq!(value, format!("value-of-{key}"));
    }
}

#[test]
fn every_compression_codec_reads_back() {
    let (_dir, broker) = start_broker();
    let address = broker.address();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        quill(&address, &["topic", "create", &topic, "-p", "1"], None).ok();
        let input: String = (0..100).map(|i| format!("{codec} record {i}\n")).collect();
        quill(
            &address,
            &["produce", &topic, "--compression", codec, "--acks", "1"],
            Some(&input),
        )
        .ok();
        // acks=1 answers once the batch is appended; it becomes readable (the high watermark
        // is the durable end) only after its fsync, so `--until-end` could stop short. Wait for
        // the 100 records instead (bounded by the command timeout).
        let run = quill(
            &address,
            &[
                "consume",
                &topic,
                "--from-beginning",
                "-n",
                "100",
                "-f",
                "%s\\n",
            ],
            None,
        )
        .ok();
        let lines: Vec<String> = run.stdout.lines().map(str::to_string).collect();
        let expected: Vec<String> = (0..100).map(|i| format!("{codec} record {i}")).collect();
        assert_eq!(lines, expected, "{codec}");
    }
}

#[test]
fn json_in_json_out_with_headers_and_partitions() {
    let (_dir, broker) = start_broker();
    let address = broker.address();
    quill(&address, &["topic", "create", "docs", "-p", "3"], None).ok();
    let input = concat!(
        r#"{"key":"k1","value":"v1","headers":{"trace":"abc"},"partition":2}"#,
        "\n",
        r#"{"value":{"nested":true},"partition":0}"#,
        "\n",
    );
    let run = quill(
        &address,
        &["produce", "docs", "--format", "json", "-H", "source=test"],
        Some(input),
    )
    .ok();
    assert!(run.stderr.contains("Produced 2 records"), "{}", run.stderr);
    let run = quill(
        &address,
        &[
            "consume",
            "docs",
            "--from-beginning",
            "--until-end",
            "--format",
            "json",
        ],
        None,
    )
    .ok();
    let mut documents: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    documents.sort_by_key(|document| document["partition"].as_i64());
    assert_eq!(documents.len(), 2);
    assert_eq!(documents[0]["partition"], 0);
    assert!(documents[0]["key"].is_null());
    assert_eq!(documents[0]["value"], r#"{"nested":true}"#);
    assert_eq!(documents[0]["headers"]["source"], "test");
    assert_eq!(documents[1]["partition"], 2);
    assert_eq!(documents[1]["offset"], 0);
    assert_eq!(documents[1]["key"], "k1");
    assert_eq!(documents[1]["headers"]["trace"], "abc");
    assert!(documents[1]["timestamp"].as_i64().unwrap() > 1_600_000_000_000);

    let run = quill(
        &address,
        &["produce", "docs", "--format", "json"],
        Some("{broken\n"),
    );
    cli_support::assert_one_line_error(&run, "line 1");
    let run = quill(
        &address,
        &["produce", "docs", "--partition", "7"],
        Some("x\n"),
    );
    cli_support::assert_one_line_error(&run, "partition 7");
    let run = quill(
        &address,
        &["produce", "docs", "--idempotent"],
        Some("once\n"),
    )
    .ok();
    assert!(run.stderr.contains("Produced 1 records"), "{}", run.stderr);
    let run = quill(
        &address,
        &["produce", "docs", "--idempotent", "--acks", "1"],
        Some("x\n"),
    );
    cli_support::assert_one_line_error(&run, "idempotence needs acks=all");
}

#[test]
fn kcat_reads_what_quill_wrote_and_quill_reads_what_kcat_wrote() {
    let (_dir, broker) = start_broker();
    let address = broker.address();
    quill(&address, &["topic", "create", "interop", "-p", "4"], None).ok();

    let input: String = KEYED
        .iter()
        .map(|(key, _)| format!("{key}:from-quill-{key}\n"))
        .collect();
    quill(
        &address,
        &[
            "produce",
            "interop",
            "-K",
            ":",
            "--compression",
            "lz4",
            "-H",
            "via=quill",
        ],
        Some(&input),
    )
    .ok();
    let run = kcat(
        &[
            "-b",
            &address,
            "-t",
            "interop",
            "-C",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k %p %s %h\\n",
        ],
        None,
    )
    .ok();
    let mut lines = run.stdout_lines();
    lines.sort();
    assert_eq!(lines.len(), KEYED.len(), "{}", run.stdout);
    for (key, hash) in KEYED {
        let expected = format!(
            "{key} {} from-quill-{key} via=quill",
            java_partition(*hash, 4)
        );
        assert!(
            lines.contains(&expected.as_str()),
            "{expected} not in {lines:?}"
        );
    }

    // kcat with librdkafka's Java-compatible partitioner agrees with quill on every key.
    quill(&address, &["topic", "create", "from-kcat", "-p", "4"], None).ok();
    let input: String = KEYED
        .iter()
        .map(|(key, _)| format!("{key}:from-kcat-{key}\n"))
        .collect();
    kcat(
        &[
            "-b",
            &address,
            "-t",
            "from-kcat",
            "-P",
            "-K",
            ":",
            "-X",
            "partitioner=murmur2_random",
            "-z",
            "snappy",
        ],
        Some(&input),
    )
    .ok();
    let lines = consume_all(&address, "from-kcat", "%k %p %s\\n");
    assert_eq!(lines.len(), KEYED.len(), "{lines:?}");
    for (key, hash) in KEYED {
        let expected = format!("{key} {} from-kcat-{key}", java_partition(*hash, 4));
        assert!(lines.contains(&expected), "{expected} not in {lines:?}");
    }
}

#[test]
fn bench_produce_then_consume_reports_numbers() {
    let (_dir, broker) = start_broker();
    let address = broker.address();
    let run = quill(
        &address,
        &[
            "bench",
            "produce",
            "--topic",
            "bench",
            "--records",
            "2000",
            "--record-size",
            "100",
            "--partitions",
            "2",
            "--producers",
            "2",
            // acks=all: the bench consumers below read up to the end offsets (the durable
            // end) they see when they start; with the bench's default acks=1 the last fsync
            // may still be running then, and they would stop short of 2000 on a loaded machine.
            "--acks",
            "all",
            "--json",
        ],
        None,
    )
    .ok();
    let summary: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(summary["records"], 2000);
    assert_eq!(summary["errors"], 0);
    assert!(summary["records_per_s"].as_f64().unwrap() > 0.0);
    let latency = &summary["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() <= latency["p99"].as_f64().unwrap());
    assert!(latency["p99"].as_f64().unwrap() <= latency["max"].as_f64().unwrap());

    let run = quill(
        &address,
        &["bench", "consume", "--topic", "bench", "--json"],
        None,
    )
    .ok();
    let summary: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(summary["records"], 2000);
    assert_eq!(summary["bytes"], 200_000);
    let run = quill(
        &address,
        &[
            "bench",
            "consume",
            "--topic",
            "bench",
            "--consumers",
            "2",
            "--json",
        ],
        None,
    )
    .ok();
    let summary: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(summary["records"], 2000);
    let run = quill(
        &address,
        &[
            "bench",
            "produce",
            "--topic",
            "bench",
            "--records",
            "100",
            "--throughput",
            "500",
        ],
        None,
    )
    .ok();
    assert!(run.stdout.contains("100 records sent"), "{}", run.stdout);
    assert!(run.stdout.contains("p99.9"), "{}", run.stdout);

    let run = quill(
        &address,
        &[
            "bench",
            "e2e",
            "--topic",
            "e2e",
            "--records",
            "300",
            "--throughput",
            "1000",
            "--json",
        ],
        None,
    )
    .ok();
    let summary: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(summary["records_received"], 300);
    let latency = &summary["end_to_end_latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() <= latency["max"].as_f64().unwrap());
}

#[test]
fn ctrl_c_ends_a_consume_with_its_summary() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let (_dir, broker) = start_broker();
    let address = broker.address();
    quill(&address, &["topic", "create", "live", "-p", "1"], None).ok();
    quill(&address, &["produce", "live"], Some("a\nb\nc\n")).ok();
    let mut child = Command::new(env!("CARGO_BIN_EXE_quill"))
        .args(["consume", "live", "--from-beginning", "-b", &address])
        .env_remove("QUILL_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for _ in 0..3 {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            lines.push(line.trim_end().to_string());
        }
        let _ = sender.send(lines);
    });
    let lines = receiver
        .recv_timeout(cli_support::COMMAND_TIMEOUT)
        .expect("records before Ctrl-C");
    assert_eq!(lines, ["a", "b", "c"]);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = receiver
        .recv_timeout(cli_support::COMMAND_TIMEOUT)
        .expect("consume exits after SIGINT")
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "Consumed 3 records."
    );
}

#[test]
fn ctrl_c_ends_a_bench_with_its_summary() {
    use std::process::{Command, Stdio};
    let (_dir, broker) = start_broker();
    let address = broker.address();
    let child = Command::new(env!("CARGO_BIN_EXE_quill"))
        .args([
            "bench",
            "produce",
            "--topic",
            "endless",
            "--records",
            "100000000",
            "--throughput",
            "2000",
            "-b",
            &address,
        ])
        .env_remove("QUILL_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = receiver
        .recv_timeout(cli_support::COMMAND_TIMEOUT)
        .expect("bench exits after SIGINT")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("records sent in"), "{stdout}");
    assert!(stdout.contains("0 errors"), "{stdout}");
}

#[test]
fn produce_waits_out_a_broker_restart() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let (_dir, mut broker) = start_broker();
    let address = broker.address();
    quill(&address, &["topic", "create", "durable", "-p", "1"], None).ok();
    let mut child = Command::new(env!("CARGO_BIN_EXE_quill"))
        .args(["produce", "durable", "-b", &address])
        .env_remove("QUILL_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"before\n").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    broker.stop_with("TERM");
    stdin.write_all(b"during\n").unwrap();
    stdin.flush().unwrap();
    // Down for longer than a handful of quick retries would cover.
    std::thread::sleep(std::time::Duration::from_secs(4));
    broker.restart();
    stdin.write_all(b"after\n").unwrap();
    drop(stdin);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = receiver
        .recv_timeout(cli_support::COMMAND_TIMEOUT)
        .expect("produce finishes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Produced 3 records"), "{stderr}");
    let run = quill(
        &address,
        &["consume", "durable", "--from-beginning", "--until-end"],
        None,
    )
    .ok();
    assert_eq!(run.stdout_lines(), ["before", "during", "after"]);
}

/// A librdkafka (confluent-kafka) transactional producer aborts one transaction and commits
/// another; `quill consume --read-committed` shows only the committed record. Needs the
/// compat venv that `scripts/test.sh` installs.
#[test]
fn read_committed_hides_an_aborted_transaction() {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/compat-venv/bin/python");
    if !python.exists() {
        eprintln!(
            "skipped: no {} (scripts/test.sh installs it)",
            python.display()
        );
        return;
    }
    let (_dir, broker) = start_broker();
    let address = broker.address();
    quill(&address, &["topic", "create", "tx", "-p", "1"], None).ok();
    let script = r#"
import sys
from confluent_kafka import Producer
p = Producer({'bootstrap.servers': sys.argv[1], 'transactional.id': 'quill-cli-test'})
p.init_transactions(20)
p.begin_transaction()
p.produce('tx', b'aborted-1', partition=0)
p.produce('tx', b'aborted-2', partition=0)
p.flush(20)
p.abort_transaction(20)
p.begin_transaction()
p.produce('tx', b'committed', partition=0)
p.commit_transaction(20)
"#;
    cli_support::run_with_timeout(
        python.to_str().unwrap(),
        &["-c", script, &address],
        &[],
        None,
        cli_support::COMMAND_TIMEOUT,
    )
    .ok();
    let run = quill(
        &address,
        &["consume", "tx", "--from-beginning", "--until-end"],
        None,
    )
    .ok();
    assert_eq!(run.stdout_lines(), ["aborted-1", "aborted-2", "committed"]);
    let run = quill(
        &address,
        &[
            "consume",
            "tx",
            "--from-beginning",
            "--until-end",
            "--read-committed",
        ],
        None,
    )
    .ok();
    assert_eq!(run.stdout_lines(), ["committed"]);
}
