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
