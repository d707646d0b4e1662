//! No silently ignored topic config: every config the broker describes either takes effect
//! (proven here, against the real broker binary, or in the test named in [`DECISIONS`]) or is
//! refused with INVALID_CONFIG when set to anything but its default.
//!
//! [`DECISIONS`] is the one table: a topic config added to quill-meta without an entry here
//! fails `every_described_topic_config_has_a_decision`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    incremental_alter_configs_request, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const INVALID_CONFIG: i16 = 40;
const MESSAGE_TOO_LARGE: i16 = 10;
const NOT_ENOUGH_REPLICAS: i16 = 19;

enum Decision {
    /// In force; the text names the test proving the effect.
    Effect(&'static str),
    /// Only the default is accepted; this valid non-default value must be refused.
    Refused(&'static str),
}
use Decision::{Effect, Refused};

const OWNED_BY_COMPACTION: &str = "compaction branch (issue 10 part: cleaner)";
const OWNED_BY_VALIDATION: &str = "validation branch (issue 10 part: record validation)";
const OWNED_BY_POWERLOSS: &str = "powerloss branch (issue 10 part: flush policy)";

#[rustfmt::skip]
const DECISIONS: &[(&str, Decision)] = &[
    ("cleanup.policy", Effect(OWNED_BY_COMPACTION)),
    ("compression.gzip.level", Effect(OWNED_BY_VALIDATION)),
    ("compression.lz4.level", Effect(OWNED_BY_VALIDATION)),
    ("compression.type", Effect(OWNED_BY_VALIDATION)),
    ("compression.zstd.level", Effect(OWNED_BY_VALIDATION)),
    ("delete.retention.ms", Effect(OWNED_BY_COMPACTION)),
    ("file.delete.delay.ms", Effect("retention_and_file_delete_delay_take_effect; quill-log removed_segments_wait_out_file_delete_delay_ms")),
    ("flush.messages", Effect(OWNED_BY_POWERLOSS)),
    ("flush.ms", Effect(OWNED_BY_POWERLOSS)),
    ("follower.replication.throttled.replicas", Refused("0:1")),
    ("index.interval.bytes", Effect("index_configs_take_effect")),
    ("leader.replication.throttled.replicas", Refused("*")),
    ("local.retention.bytes", Refused("1000")),
    ("local.retention.ms", Refused("1000")),
    ("max.compaction.lag.ms", Effect(OWNED_BY_COMPACTION)),
    ("max.message.bytes", Effect("max_message_bytes_and_timestamp_type_take_effect")),
    ("message.timestamp.after.max.ms", Effect(OWNED_BY_VALIDATION)),
    ("message.timestamp.before.max.ms", Effect(OWNED_BY_VALIDATION)),
    ("message.timestamp.type", Effect("max_message_bytes_and_timestamp_type_take_effect")),
    ("min.cleanable.dirty.ratio", Effect(OWNED_BY_COMPACTION)),
    ("min.compaction.lag.ms", Effect(OWNED_BY_COMPACTION)),
    ("min.insync.replicas", Effect("min_insync_replicas_refuses_acks_all_above_the_isr")),
    ("preallocate", Refused("true")),
    ("remote.log.copy.disable", Refused("true")),
    ("remote.log.delete.on.disable", Refused("true")),
    ("remote.storage.enable", Refused("true")),
    ("retention.bytes", Effect("retention_and_file_delete_delay_take_effect")),
    ("retention.ms", Effect("admin.rs retention_deletes_old_segments_in_the_background")),
    ("segment.bytes", Effect("segment_rolling_configs_take_effect")),
    ("segment.index.bytes", Effect("index_configs_take_effect")),
    ("segment.jitter.ms", Effect("quill-log segment_jitter_ms_rolls_each_segment_early_by_its_draw; quill-broker log_config_carries_every_log_setting")),
    ("segment.ms", Effect("segment_rolling_configs_take_effect")),
    ("unclean.leader.election.enable", Effect("quill-meta partition_change::tests::unclean_elections_only_when_enabled (the controller's elections)")),
];

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn start(extra_args: &[&str]) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), extra_args);
    (dir, broker)
}

fn create(client: &mut TestClient, name: &str, configs: &[(&str, &str)]) -> (i16, String) {
    let response = client.call(&create_topic_request(name, 1, 1, configs), 5);
    let topic = &response.topics[0];
    (
        topic.error_code,
        topic
            .error_message
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    )
}

fn set_config(
    client: &mut TestClient,
    resource_type: i8,
    resource: &str,
    name: &str,
    value: &str,
) -> (i16, String) {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(text(resource))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(text(name))
                    .with_config_operation(0)
                    .with_value(Some(text(value))),
            ]),
    ]);
    let response = client.call(&request, 1);
    let result = &response.responses[0];
    (
        result.error_code,
        result
            .error_message
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    )
}

fn files_of(dir: &Path, topic: &str, suffix: &str) -> Vec<(String, u64)> {
    let partition_dir = dir.join(format!("{topic}-0"));
    let mut files: Vec<(String, u64)> = std::fs::read_dir(partition_dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().into_string().unwrap(),
                entry.metadata().unwrap().len(),
            )
        })
        .filter(|(name, _)| name.ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// Waits (bounded, 20 s) until `condition` holds.
fn wait_until(what: &str, condition: impl FnMut() -> bool) {
    common::wait_until(what, Duration::from_secs(20), condition);
}

#[test]
fn every_described_topic_config_has_a_decision() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("decisions", 1);
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(text("decisions"))
            .with_configuration_keys(None)]);
    let described: BTreeSet<String> = client.call(&request, 4).results[0]
        .configs
        .iter()
        .map(|entry| entry.name.to_string())
        .collect();
    let decided: BTreeSet<String> = DECISIONS.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(
        described, decided,
        "a topic config without a decision in DECISIONS"
    );

    for (index, (name, decision)) in DECISIONS.iter().enumerate() {
        let value = match decision {
            Effect(proof) => {
                assert!(
                    !proof.is_empty(),
                    "{name}: name the test proving its effect"
                );
                continue;
            }
            Refused(value) => value,
        };
        let topic = format!("refused-{index}");
        let (code, message) = create(&mut client, &topic, &[(name, value)]);
        assert_eq!(
            code, INVALID_CONFIG,
            "CreateTopics {name}={value}: {message}"
        );
        assert!(message.contains("Quill does not support"), "{message}");
        // The default is accepted (and is what is in force).
        let default = request_default(&mut client, name);
        assert_eq!(
            create(&mut client, &topic, &[(name, &default)]).0,
            0,
            "{name}={default}"
        );
        let (code, message) = set_config(&mut client, TOPIC, &topic, name, value);
        assert_eq!(
            code, INVALID_CONFIG,
            "IncrementalAlterConfigs {name}={value}: {message}"
        );
        assert!(message.contains("Quill does not support"), "{message}");
    }
    // Broker-level defaults of refused topic configs are refused too, dynamically (every
    // synonym DescribeConfigs names) and in the static configuration.
    let mut broker_synonyms = BTreeSet::new();
    for (name, decision) in DECISIONS {
        let Refused(value) = decision else { continue };
        for synonym in described_with_synonyms(&mut client, name).1 {
            broker_synonyms.insert(synonym.clone());
            let (code, message) = set_config(&mut client, BROKER, "1", &synonym, value);
            assert_eq!(code, INVALID_CONFIG, "{synonym}={value}: {message}");
            assert!(message.contains("Quill does not support"), "{message}");
        }
    }
    for expected in [
        "log.preallocate",
        "log.local.retention.ms",
        "log.local.retention.bytes",
    ] {
        assert!(
            broker_synonyms.contains(expected),
            "{expected} not checked: {broker_synonyms:?}"
        );
    }
    let (code, message) = set_config(&mut client, BROKER, "1", "log.preallocate", "true");
    assert_eq!(code, INVALID_CONFIG, "{message}");
    assert!(message.contains("Quill does not support"), "{message}");
    // In force: the controller's elections read the cluster-wide default.
    let (code, message) = set_config(
        &mut client,
        BROKER,
        "",
        "unclean.leader.election.enable",
        "true",
    );
    assert_eq!(code, 0, "{message}");
    let data_dir = tempfile::tempdir().unwrap();
    let mut refused_start = std::process::Command::new(env!("CARGO_BIN_EXE_quill"))
        .args([
            "broker",
            "--listen",
            "127.0.0.1:0",
            "--set",
            "log.preallocate=true",
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused_start.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = refused_start.kill();
            panic!("the broker started with log.preallocate=true");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = refused_start.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Quill does not support preallocate"),
        "{stderr}"
    );
}

fn request_default(client: &mut TestClient, name: &str) -> String {
    described_with_synonyms(client, name).0
}

/// A config of the `decisions` topic: its value and the names of its broker synonyms.
fn described_with_synonyms(client: &mut TestClient, name: &str) -> (String, Vec<String>) {
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(text("decisions"))
            .with_configuration_keys(Some(vec![text(name)]))])
        .with_include_synonyms(true);
    let response = client.call(&request, 4);
    let entry = &response.results[0].configs[0];
    let synonyms = entry
        .synonyms
        .iter()
        // The topic sets nothing: every synonym is a broker config.
        .map(|synonym| synonym.name.to_string())
        .collect();
    (entry.value.as_ref().unwrap().to_string(), synonyms)
}

#[test]
fn segment_rolling_configs_take_effect() {
    let (dir, broker) = start(&[]);
    let mut client = broker.connect();
    assert_eq!(
        create(&mut client, "by-size", &[("segment.bytes", "1048576")]).0,
        0
    );
    assert_eq!(create(&mut client, "by-default", &[]).0, 0);
    let value = "s".repeat(400_000);
    for topic in ["by-size", "by-default"] {
        for _ in 0..4 {
            let response = client.produce(topic, 0, &[value.as_str()]);
            assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        }
    }
    assert!(files_of(dir.path(), "by-size", ".log").len() >= 2);
    assert_eq!(files_of(dir.path(), "by-default", ".log").len(), 1);

    // Kafka 4's internal.segment.bytes (for tests) replaces segment.bytes without its 1 MiB
    // minimum, and is described only on the topic that sets it.
    assert_eq!(
        create(
            &mut client,
            "by-internal-size",
            &[("segment.bytes", "10000")]
        )
        .0,
        INVALID_CONFIG
    );
    assert_eq!(
        create(
            &mut client,
            "by-internal-size",
            &[("internal.segment.bytes", "10000")]
        )
        .0,
        0
    );
    let small = "s".repeat(4000);
    for _ in 0..6 {
        let response = client.produce("by-internal-size", 0, &[small.as_str()]);
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
    assert!(files_of(dir.path(), "by-internal-size", ".log").len() >= 3);
    let described = |client: &mut TestClient, topic: &str| -> Vec<(String, String)> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(text(topic))
                .with_configuration_keys(None),
        ]);
        client.call(&request, 4).results[0]
            .configs
            .iter()
            .map(|entry| {
                let value = entry.value.as_ref().map(|v| v.to_string());
                (entry.name.to_string(), value.unwrap_or_default())
            })
            .collect()
    };
    assert!(described(&mut client, "by-internal-size")
        .contains(&("internal.segment.bytes".to_string(), "10000".to_string())));
    assert!(!described(&mut client, "by-size")
        .iter()
        .any(|(name, _)| name == "internal.segment.bytes"));

    // segment.ms: appends 1 ms apart roll a new segment.
    assert_eq!(create(&mut client, "by-age", &[("segment.ms", "1")]).0, 0);
    wait_until("a time-based roll", || {
        client.produce("by-age", 0, &["x"]);
        files_of(dir.path(), "by-age", ".log").len() >= 2
    });
}

#[test]
fn index_configs_take_effect() {
    let (dir, mut broker) = start(&[]);
    let mut client = broker.connect();
    assert_eq!(
        create(&mut client, "dense-index", &[("index.interval.bytes", "0")]).0,
        0
    );
    assert_eq!(create(&mut client, "sparse-index", &[]).0, 0);
    // segment.index.bytes=32: four offset-index entries fill it, so the segment rolls.
    let small_index = [("index.interval.bytes", "0"), ("segment.index.bytes", "32")];
    assert_eq!(create(&mut client, "small-index", &small_index).0, 0);
    for topic in ["dense-index", "sparse-index", "small-index"] {
        for _ in 0..10 {
            client.produce(topic, 0, &["value"]);
        }
    }
    assert!(files_of(dir.path(), "small-index", ".log").len() >= 2);
    assert_eq!(files_of(dir.path(), "dense-index", ".log").len(), 1);
    // A clean stop writes the indexes: one 8-byte entry per batch with interval 0, at most
    // the first with the default 4096 for ten small batches.
    assert_eq!(broker.stop_with("TERM"), Some(0));
    let dense = files_of(dir.path(), "dense-index", ".index");
    let sparse = files_of(dir.path(), "sparse-index", ".index");
    assert!(dense[0].1 >= 8 * 10, "{dense:?}");
    assert!(sparse[0].1 <= 8, "{sparse:?}");
}

#[test]
fn max_message_bytes_and_timestamp_type_take_effect() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    assert_eq!(
        create(
            &mut client,
            "small-batches",
            &[("max.message.bytes", "1000")]
        )
        .0,
        0
    );
    let big = "b".repeat(2000);
    let response = client.produce("small-batches", 0, &[big.as_str()]);
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        MESSAGE_TOO_LARGE
    );
    let response = client.produce("small-batches", 0, &["small"]);
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);

    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let log_append = [("message.timestamp.type", "LogAppendTime")];
    assert_eq!(create(&mut client, "broker-time", &log_append).0, 0);
    assert_eq!(create(&mut client, "producer-time", &[]).0, 0);
    for topic in ["broker-time", "producer-time"] {
        client.produce(topic, 0, &["t"]);
    }
    let timestamp = |client: &mut TestClient, topic: &str| {
        let fetched = client.fetch(topic, 0, 0);
        let records = fetched.responses[0].partitions[0].records.clone().unwrap();
        // The batch's max timestamp (bytes 35..43) is what LogAppendTime rewrites.
        let max_timestamp = i64::from_be_bytes(records[35..43].try_into().unwrap());
        let set = RecordBatchDecoder::decode(&mut records.clone()).unwrap();
        (set.records[0].timestamp_type, max_timestamp)
    };
    let (kind, at) = timestamp(&mut client, "broker-time");
    assert_eq!(kind, TimestampType::LogAppend);
    assert!(at >= before_ms, "{at} < {before_ms}");
    // record_batch stamps 1_700_000_000_000 (2023): kept under CreateTime.
    assert_eq!(
        timestamp(&mut client, "producer-time"),
        (TimestampType::Creation, 1_700_000_000_000)
    );
}

#[test]
fn min_insync_replicas_refuses_acks_all_above_the_isr() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    assert_eq!(
        create(&mut client, "needs-two", &[("min.insync.replicas", "2")]).0,
        0
    );
    let batch = record_batch(&["v"], 1_700_000_000_000);
    // Produce v8+ carries the error message.
    let all = client.call(&produce_request("needs-two", 0, batch.clone(), -1), 8);
    let refused = &all.responses[0].partition_responses[0];
    assert_eq!(refused.error_code, NOT_ENOUGH_REPLICAS, "{refused:?}");
    assert!(refused
        .error_message
        .as_ref()
        .unwrap()
        .contains("min.isr requirement of 2"));
    // acks=1 does not wait for the ISR, as in Kafka; nothing of the refused batch was written.
    let one = client.call(&produce_request("needs-two", 0, batch.clone(), 1), 7);
    assert_eq!(one.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(one.responses[0].partition_responses[0].base_offset, 0);
    // Back to 1: acks=all succeeds.
    assert_eq!(
        set_config(&mut client, TOPIC, "needs-two", "min.insync.replicas", "1").0,
        0
    );
    let all = client.call(&produce_request("needs-two", 0, batch, -1), 7);
    assert_eq!(all.responses[0].partition_responses[0].error_code, 0);
}

#[test]
fn retention_and_file_delete_delay_take_effect() {
    let (dir, broker) = start(&["--set", "log.retention.check.interval.ms=100"]);
    let mut client = broker.connect();
    let common = [
        ("retention.bytes", "1048576"),
        ("retention.ms", "-1"),
        ("segment.bytes", "1048576"),
    ];
    let immediate = [common.as_slice(), &[("file.delete.delay.ms", "0")]].concat();
    let delayed = [common.as_slice(), &[("file.delete.delay.ms", "3600000")]].concat();
    assert_eq!(create(&mut client, "deletes-now", &immediate).0, 0);
    assert_eq!(create(&mut client, "deletes-later", &delayed).0, 0);
    let value = "r".repeat(400_000);
    for topic in ["deletes-now", "deletes-later"] {
        for _ in 0..8 {
            client.produce(topic, 0, &[value.as_str()]);
        }
    }
    // retention.bytes removes the oldest segments (the timestamps are recent enough for no
    // retention.ms to matter: it is -1).
    for topic in ["deletes-now", "deletes-later"] {
        wait_until("retention.bytes", || {
            client.fetch(topic, 0, 7).responses[0].partitions[0].log_start_offset > 0
        });
    }
    assert!(files_of(dir.path(), "deletes-now", ".deleted").is_empty());
    let waiting = files_of(dir.path(), "deletes-later", ".deleted");
    assert!(
        waiting
            .iter()
            .any(|(name, _)| name == "00000000000000000000.log.deleted"),
        "{waiting:?}"
    );
}
