//! `quill topic …` and `quill cluster info` against the real broker binary: table and JSON
//! output, and bad input (unknown topic, bad config, unreachable broker) failing with one
//! sentence and a non-zero exit within a bounded time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;
mod common;

use std::time::{Duration, Instant};

use cli_support::{assert_one_line_error, quill};
use common::BrokerProcess;

fn start_broker() -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    (dir, broker)
}

fn describe_json(broker: &str, topic: &str) -> serde_json::Value {
    let run = quill(
        broker,
        &["topic", "describe", topic, "--output", "json"],
        None,
    )
    .ok();
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn topic_lifecycle_create_list_describe_alter_grow_delete() {
    let (_dir, broker) = start_broker();
    let address = broker.address();
    let address = address.as_str();

    let run = quill(
        address,
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "3",
            "-r",
            "1",
            "-c",
            "retention.ms=3600000",
        ],
        None,
    )
    .ok();
    assert_eq!(run.stdout.trim(), "Created topic orders.");

    let run = quill(address, &["topic", "list"], None).ok();
    let lines = run.stdout_lines();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TOPIC", "PARTITIONS", "REPLICAS"]
    );
    assert!(
        lines
            .iter()
            .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["orders", "3", "1"]),
        "{}",
        run.stdout
    );
    let run = quill(address, &["topic", "list", "--output", "json"], None).ok();
    let topics: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let orders = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "orders")
        .unwrap();
    assert_eq!(orders["partitions"], 3);

    let run = quill(address, &["topic", "describe", "orders"], None).ok();
    assert!(run.stdout.starts_with("Topic: orders"), "{}", run.stdout);
    assert!(run.stdout.contains("PARTITION  LEADER"), "{}", run.stdout);
    let retention = run
        .stdout
        .lines()
        .find(|line| line.starts_with("retention.ms "))
        .unwrap();
    assert_eq!(
        retention.split_whitespace().collect::<Vec<_>>(),
        ["retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG"]
    );

    let document = describe_json(address, "orders");
    let partitions = document["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    for (index, partition) in partitions.iter().enumerate() {
        assert_eq!(partition["partition"], index);
        assert_eq!(partition["leader"], 1);
        assert_eq!(partition["replicas"], serde_json::json!([1]));
        assert_eq!(partition["isr"], serde_json::json!([1]));
        assert_eq!(partition["start_offset"], 0);
        assert_eq!(partition["end_offset"], 0);
    }

    quill(
        address,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "segment.bytes=1048576",
            "--delete",
            "retention.ms",
        ],
        None,
    )
    .ok();
    let document = describe_json(address, "orders");
    let config = |name: &str| {
        document["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(config("segment.bytes")["value"], "1048576");
    assert_eq!(config("segment.bytes")["source"], "DYNAMIC_TOPIC_CONFIG");
    assert_eq!(config("retention.ms")["source"], "DEFAULT_CONFIG");

    let run = quill(
        address,
        &["topic", "add-partitions", "orders", "-n", "5"],
        None,
    )
    .ok();
    assert_eq!(run.stdout.trim(), "Topic orders now has 5 partitions.");
    assert_eq!(
        describe_json(address, "orders")["partitions"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    quill(address, &["topic", "create", "second", "-p", "1"], None).ok();
    let run = quill(address, &["topic", "delete", "orders", "second"], None).ok();
    assert_eq!(
        run.stdout_lines(),
        ["Deleted topic orders.", "Deleted topic second."]
    );
    let run = quill(address, &["topic", "list", "--output", "json"], None).ok();
    assert_eq!(run.stdout.trim(), "[]");
}

#[test]
fn existing_and_missing_topics_fail_unless_told_otherwise() {
    let (_dir, broker) = start_broker();
    let address = broker.address();
    let address = address.as_str();
    quill(address, &["topic", "create", "t", "-p", "1"], None).ok();
    let run = quill(address, &["topic", "create", "t", "-p", "1"], None);
    assert_one_line_error(&run, "already exists");
    quill(
        address,
        &["topic", "create", "t", "-p", "1", "--if-not-exists"],
        None,
    )
    .ok();

    for args in [
        vec!["topic", "describe", "missing"],
        vec!["topic", "delete", "missing"],
        vec!["consume", "missing", "--from-beginning"],
        vec!["topic", "add-partitions", "missing", "-n", "3"],
    ] {
        let run = quill(address, &args, None);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stderr);
        assert_eq!(
            run.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("missing"), "{args:?}: {}", run.stderr);
    }
    quill(
        address,
        &["topic", "delete", "missing", "--if-exists"],
        None,
    )
    .ok();

    // The same answers as JSON.
    let json_of = |args: &[&str]| quill(address, args, None).ok().stdout.trim().to_string();
    assert_eq!(
        json_of(&[
            "topic",
            "create",
            "t",
            "--if-not-exists",
            "--output",
            "json"
        ]),
        r#"{"created":false,"topic":"t"}"#
    );
    assert_eq!(
        json_of(&[
            "topic",
            "add-partitions",
            "t",
            "-n",
            "2",
            "--output",
            "json"
        ]),
        r#"{"partitions":2,"topic":"t"}"#
    );
    assert_eq!(
        json_of(&[
            "topic",
            "alter-config",
            "t",
            "--set",
            "retention.ms=1000",
            "--output",
            "json"
        ]),
        r#"{"deleted":[],"set":{"retention.ms":"1000"},"topic":"t"}"#
    );
    assert_eq!(
        json_of(&[
            "topic",
            "delete",
            "t",
            "missing",
            "--if-exists",
            "--output",
            "json"
        ]),
        r#"[{"deleted":true,"topic":"t"},{"deleted":false,"topic":"missing"}]"#
    );
}

#[test]
fn bad_configs_fail_with_one_sentence_naming_them() {
    let (_dir, broker) = start_broker();
    let address = broker.address();
    let address = address.as_str();
    let run = quill(
        address,
        &["topic", "create", "t", "-c", "no.such.setting=1"],
        None,
    );
    assert_one_line_error(&run, "no.such.setting");
    let run = quill(
        address,
        &["topic", "create", "t", "-c", "retention.ms=soon"],
        None,
    );
    assert_one_line_error(&run, "retention.ms");
    // Not KEY=VALUE at all: a usage error from the argument parser (exit 2).
    let run = quill(
        address,
        &["topic", "create", "t", "-c", "retention.ms"],
        None,
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("KEY=VALUE"), "{}", run.stderr);
    let run = quill(address, &["topic", "alter-config", "t"], None);
    assert_one_line_error(&run, "nothing to change");
}

#[test]
fn an_unreachable_broker_fails_fast_with_its_address() {
    // A port nobody listens on: bind, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    for args in [
        vec!["topic", "list"],
        vec!["consume", "t"],
        vec!["bench", "consume", "--topic", "t"],
    ] {
        let started = Instant::now();
        let run = quill(&address, &args, Some(""));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert_one_line_error(&run, &address);
    }
    let started = Instant::now();
    let run = quill(&address, &["produce", "t"], Some("a\n"));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_one_line_error(&run, &address);
}

#[test]
fn brokers_come_from_the_environment_too() {
    let (_dir, broker) = start_broker();
    let run = cli_support::run_with_timeout(
        env!("CARGO_BIN_EXE_quill"),
        &["cluster", "info", "--output", "json"],
        &[("QUILL_BROKERS", &broker.address())],
        None,
        cli_support::COMMAND_TIMEOUT,
    )
    .ok();
    let document: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(document["brokers"][0]["port"], broker.port);
    assert_eq!(document["controller_id"], 1);
    // A single node is a one-voter quorum that it leads, with no controller listener.
    let quorum = &document["quorum"];
    assert_eq!(quorum["leader_id"], 1, "{quorum}");
    assert_eq!(quorum["voters"][0]["node_id"], 1, "{quorum}");
    assert_eq!(quorum["voters"][0]["lag"], 0, "{quorum}");
    assert_eq!(
        quorum["voters"][0]["endpoints"],
        serde_json::json!([]),
        "{quorum}"
    );
    // No product version on the wire: the API ranges and what they imply, nothing invented.
    let versions = &document["broker_versions"];
    assert!(versions["software"].is_null());
    let apis = versions["apis"].as_array().unwrap();
    let fetch = apis.iter().find(|api| api["api"] == "Fetch").unwrap();
    assert!(fetch["max_version"].as_i64().unwrap() >= 13, "{fetch}");
    let features = versions["features"].as_array().unwrap();
    assert!(features.iter().any(|feature| feature["feature"]
        .as_str()
        .unwrap()
        .contains("KIP-345")
        && feature["supported"] == true));
}

#[test]
fn cluster_info_table_has_a_version_line() {
    let (_dir, broker) = start_broker();
    let address = broker.address();
    let run = quill(&address, &["cluster", "info"], None).ok();
    assert!(
        run.stdout.contains("Version:    not reported"),
        "{}",
        run.stdout
    );
    let apis = run
        .stdout
        .lines()
        .find(|line| line.starts_with("APIs:"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        apis.contains("Produce v") && apis.contains("Fetch v"),
        "{apis}"
    );
    assert!(apis.contains(&address), "{apis}");
    assert!(
        run.stdout.contains("Features:   transactions (KIP-98)"),
        "{}",
        run.stdout
    );
}

#[test]
fn every_command_has_help_with_examples() {
    for args in [
        vec!["topic", "create", "--help"],
        vec!["topic", "list", "--help"],
        vec!["topic", "describe", "--help"],
        vec!["topic", "delete", "--help"],
        vec!["topic", "alter-config", "--help"],
        vec!["topic", "add-partitions", "--help"],
        vec!["produce", "--help"],
        vec!["consume", "--help"],
        vec!["bench", "produce", "--help"],
        vec!["bench", "consume", "--help"],
        vec!["bench", "e2e", "--help"],
        vec!["group", "list", "--help"],
        vec!["group", "describe", "--help"],
        vec!["group", "delete", "--help"],
        vec!["group", "reset-offsets", "--help"],
        vec!["cluster", "info", "--help"],
    ] {
        let run = cli_support::run_with_timeout(
            env!("CARGO_BIN_EXE_quill"),
            &args,
            &[],
            None,
            cli_support::COMMAND_TIMEOUT,
        )
        .ok();
        assert!(run.stdout.contains("Examples:"), "{args:?}");
        assert!(run.stdout.contains("--brokers"), "{args:?}");
    }
}

/// The cleaner's position recorded in a partition directory's `cleaner.checkpoint` (what the
/// broker's cleaner wrote, read independently of the metrics endpoint).
fn checkpointed_position(partition_dir: &std::path::Path) -> Option<i64> {
    let bytes = std::fs::read(partition_dir.join("cleaner.checkpoint")).ok()?;
    let position: [u8; 8] = bytes.get(6..14)?.try_into().ok()?;
    Some(i64::from_be_bytes(position))
}

/// `(FIRST-DIRTY, DIRTY-RATIO)` of partition 0 in `quill topic describe`'s table.
fn cleaner_columns(stdout: &str) -> (String, String) {
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines
        .iter()
        .position(|line| line.starts_with("PARTITION"))
        .unwrap();
    let titles: Vec<&str> = lines[header].split_whitespace().collect();
    assert_eq!(
        titles[titles.len() - 2..],
        ["FIRST-DIRTY", "DIRTY-RATIO"],
        "{stdout}"
    );
    let cells: Vec<&str> = lines[header + 1].split_whitespace().collect();
    assert_eq!(cells.len(), titles.len(), "{stdout}");
    (
        cells[cells.len() - 2].to_string(),
        cells[cells.len() - 1].to_string(),
    )
}

/// Issue 12: `quill topic describe --metrics` shows the log cleaner's position and dirty ratio
/// of a compacted topic's partitions, read from the broker's metrics endpoint (no Kafka
/// response carries them); a delete-policy topic shows none; without the endpoint, or when it
/// cannot be read, the columns say `-` and one stderr line says why.
#[test]
fn describe_shows_the_cleaner_position_and_dirty_ratio_of_compacted_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        dir.path(),
        &[
            "--set",
            "metrics.listen=127.0.0.1:0",
            "--set",
            "log.cleaner.backoff.ms=50",
        ],
    );
    let address = broker.address();
    let address = address.as_str();
    let metrics = broker.metrics_address();
    let segment_rolls = ["-c", "segment.ms=100"];
    for (topic, configs) in [
        // Cleaned as soon as a segment rolls.
        (
            "users",
            ["cleanup.policy=compact", "min.cleanable.dirty.ratio=0.01"],
        ),
        // Never dirty enough to clean (the ratio must exceed 1): its ratio stays 1.
        (
            "pending",
            ["cleanup.policy=compact", "min.cleanable.dirty.ratio=1"],
        ),
        ("events", ["cleanup.policy=delete", "retention.ms=3600000"]),
    ] {
        let mut args = vec!["topic", "create", topic, "-p", "1"];
        for config in configs {
            args.extend(["-c", config]);
        }
        args.extend(segment_rolls);
        quill(address, &args, None).ok();
    }
    let mut client = broker.connect();
    for topic in ["users", "pending"] {
        for round in 0..4 {
            let value = format!("v{round}");
            let response = client.produce(topic, 0, &[&value, &value, &value]);
            assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        }
    }

    // The cleaner compacts `users` once its first segment rolls (each check appends a record,
    // which rolls the active segment once segment.ms has passed); the position shown is the
    // one the cleaner checkpointed, and nothing is left dirty.
    let users_dir = dir.path().join("users-0");
    let mut document = serde_json::Value::Null;
    common::wait_until(
        "describe to show the cleaner's checkpointed position of users",
        Duration::from_secs(60),
        || {
            client.produce("users", 0, &["filler"]);
            document = describe_json_with_metrics(address, "users", &metrics);
            let shown = document["partitions"][0]["cleaner"]["first_dirty_offset"].as_i64();
            shown.is_some_and(|position| position > 0) && shown == checkpointed_position(&users_dir)
        },
    );
    assert_eq!(document["compacted"], true);
    assert_eq!(document["cleaner_note"], serde_json::Value::Null);
    assert_eq!(
        document["cleaner_source"],
        format!("http://{metrics}/metrics")
    );
    let partition = &document["partitions"][0];
    let position = partition["cleaner"]["first_dirty_offset"].as_i64().unwrap();
    assert!(position <= partition["end_offset"].as_i64().unwrap());
    let ratio = partition["cleaner"]["dirty_ratio"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ratio), "{partition}");

    // The table shows the same position (it can only move forward between the two reads).
    let run = quill(
        address,
        &["topic", "describe", "users", "--metrics", &metrics],
        None,
    )
    .ok();
    let (first_dirty, dirty_ratio) = cleaner_columns(&run.stdout);
    assert!(
        first_dirty.parse::<i64>().unwrap() >= position,
        "{}",
        run.stdout
    );
    let shown_ratio: f64 = dirty_ratio.parse().unwrap();
    assert!((0.0..=1.0).contains(&shown_ratio), "{}", run.stdout);
    assert_eq!(run.stderr, "", "nothing to explain");

    // `pending` is never cleaned: position 0, and once its first segment rolled every byte of
    // the cleanable range is dirty (ratio 1). QUILL_METRICS works as the flag does.
    common::wait_until(
        "pending's first segment to roll",
        Duration::from_secs(60),
        || {
            client.produce("pending", 0, &["filler"]);
            let run = cli_support::run_with_timeout(
                env!("CARGO_BIN_EXE_quill"),
                &["topic", "describe", "pending", "-b", address],
                &[("QUILL_METRICS", &format!("http://{metrics}"))],
                None,
                cli_support::COMMAND_TIMEOUT,
            )
            .ok();
            cleaner_columns(&run.stdout) == ("0".to_string(), "1.00".to_string())
        },
    );

    // A delete-policy topic has no cleaner columns and nothing to explain.
    let run = quill(
        address,
        &["topic", "describe", "events", "--metrics", &metrics],
        None,
    )
    .ok();
    assert!(!run.stdout.contains("FIRST-DIRTY"), "{}", run.stdout);
    assert_eq!(run.stderr, "");
    let document = describe_json_with_metrics(address, "events", &metrics);
    assert_eq!(document["compacted"], false);
    assert_eq!(
        document["partitions"][0]["cleaner"],
        serde_json::Value::Null
    );

    // Without the endpoint the columns say `-` and stderr says where the values come from.
    let run = quill(address, &["topic", "describe", "users"], None).ok();
    assert_eq!(
        cleaner_columns(&run.stdout),
        ("-".to_string(), "-".to_string())
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("--metrics HOST:PORT"), "{}", run.stderr);

    // An endpoint that does not answer: the Kafka part is still shown, and stderr says why
    // the cleaner part is not.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("127.0.0.1:{closed_port}");
    let run = quill(
        address,
        &[
            "topic",
            "describe",
            "users",
            "--output",
            "json",
            "--metrics",
            &closed,
        ],
        None,
    )
    .ok();
    let document: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        document["partitions"][0]["cleaner"],
        serde_json::Value::Null
    );
    let note = document["cleaner_note"].as_str().unwrap();
    assert!(
        note.contains("cannot read the cleaner state from"),
        "{note}"
    );
    assert!(run.stderr.contains(&closed), "{}", run.stderr);

    // An address that is not an HTTP endpoint (here the Kafka listener) fails the same way,
    // bounded.
    let run = quill(
        address,
        &["topic", "describe", "users", "--metrics", address],
        None,
    )
    .ok();
    assert_eq!(
        cleaner_columns(&run.stdout),
        ("-".to_string(), "-".to_string())
    );
    assert!(
        run.stderr.contains("cannot read the cleaner state"),
        "{}",
        run.stderr
    );

    // The metrics endpoint of a broker that does not host the partitions: it is read, and
    // stderr names the partitions it has no state for.
    let other_dir = tempfile::tempdir().unwrap();
    let other = BrokerProcess::start(other_dir.path(), &["--set", "metrics.listen=127.0.0.1:0"]);
    let other_metrics = other.metrics_address();
    let run = quill(
        address,
        &["topic", "describe", "users", "--metrics", &other_metrics],
        None,
    )
    .ok();
    assert_eq!(
        cleaner_columns(&run.stdout),
        ("-".to_string(), "-".to_string())
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("reports no cleaner state for partition(s) 0 of users"),
        "{}",
        run.stderr
    );

    // A malformed address is a usage problem of the cleaner part only.
    let run = quill(
        address,
        &["topic", "describe", "users", "--metrics", "https://x:1"],
        None,
    )
    .ok();
    assert!(run.stderr.contains("only http://"), "{}", run.stderr);
}

fn describe_json_with_metrics(broker: &str, topic: &str, metrics: &str) -> serde_json::Value {
    let run = quill(
        broker,
        &[
            "topic",
            "describe",
            topic,
            "--output",
            "json",
            "--metrics",
            metrics,
        ],
        None,
    )
    .ok();
    serde_json::from_str(&run.stdout).unwrap()
}

/// `quill … | head -1`: once the reader has gone, the command stops quietly with status 0 (as
/// `cat` does) instead of panicking on the broken pipe.
#[test]
fn output_to_a_reader_that_goes_away_ends_quietly() {
    use std::process::{Command, Stdio};
    let (_dir, broker) = start_broker();
    let address = broker.address();
    cli_support::quill(&address, &["topic", "create", "piped"], None).ok();
    let mut child = Command::new(env!("CARGO_BIN_EXE_quill"))
        .args(["topic", "describe", "piped", "-b", &address])
        .env_remove("QUILL_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is written (the command must first ask the broker),
    // so every line of the description meets a closed pipe.
    drop(child.stdout.take());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = receiver
        .recv_timeout(cli_support::COMMAND_TIMEOUT)
        .expect("the command ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
