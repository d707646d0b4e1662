//! Log compaction against the real broker binary with real clients (issue 12):
//! confluent-kafka (librdkafka) and kafkajs produce updates and tombstones to compacted topics,
//! the broker's cleaner runs (short `segment.ms`, low dirty ratio), and consumers of both
//! clients reading from the beginning see only the latest value of each key; a group's
//! committed offsets survive the cleaning of `__consumer_offsets` and a broker restart; a
//! transactional id still loads (and commits) after `__transaction_state` was cleaned and the
//! broker restarted.
//!
//! Waits are conditions with deadlines: the test keeps appending a record (which rolls the
//! active segment once `segment.ms` has passed, as in Kafka) until the condition holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use common::*;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, GroupId, OffsetCommitRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

const KEYS: usize = 20;
const ROUNDS: usize = 5;
const CONDITION_DEADLINE: Duration = Duration::from_secs(60);
/// How often a condition is re-checked (each check appends one record).
const POLL_INTERVAL: Duration = Duration::from_millis(100);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn python() -> PathBuf {
    std::env::var_os("QUILL_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/compat-venv/bin/python"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn run(label: &str, mut command: Command) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{label}: cannot run: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{label}:\n{stdout}");
    assert!(
        output.status.success(),
        "{label} failed:\n{stdout}\n{stderr}"
    );
}

fn confluent(args: &[&str]) -> Command {
    let mut command = Command::new(python());
    command
        .arg(workspace_root().join("tests/compat/compaction/compaction.py"))
        .args(args);
    command
}

fn kafkajs(args: &[&str]) -> Command {
    let mut command = Command::new("node");
    command
        .current_dir(workspace_root().join("tests/compat/node"))
        .arg("compaction.js")
        .args(args)
        .env("KAFKAJS_NO_PARTITIONER_WARNING", "1");
    command
}

/// Every (offset, key) of one partition, from the log start to the high watermark.
fn keys_in(client: &mut TestClient, topic: &str, partition: i32) -> Vec<(i64, Option<Bytes>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let fetched = client.fetch(topic, partition, offset);
        let partition = &fetched.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0, "{partition:?}");
        let Some(mut bytes) = partition.records.clone().filter(|b| !b.is_empty()) else {
            return out;
        };
        let mut next = offset;
        while bytes.has_remaining() {
            let batch = RecordBatchDecoder::decode(&mut bytes).unwrap();
            for record in batch.records {
                next = next.max(record.offset + 1);
                if !record.control {
                    out.push((record.offset, record.key));
                }
            }
        }
        if next <= offset || next >= partition.high_watermark {
            return out;
        }
        offset = next;
    }
}

/// Appends one keyed record (rolling the active segment once `segment.ms` has passed).
fn append_filler(client: &mut TestClient, topic: &str) {
    let batch = record_batch(&["filler"], now_ms());
    let response = client.call(&produce_request(topic, 0, batch, -1), 7);
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 0, "{partition:?}");
}

/// Waits (bounded) until no `key-*` record of `topic` has a later duplicate.
fn wait_until_compacted(client: &mut TestClient, topic: &str) {
    let deadline = Instant::now() + CONDITION_DEADLINE;
    loop {
        append_filler(client, topic);
        let mut counts: HashMap<Bytes, usize> = HashMap::new();
        for (_, key) in keys_in(client, topic, 0) {
            if let Some(key) = key.filter(|k| k.starts_with(b"key-")) {
                *counts.entry(key).or_default() += 1;
            }
        }
        if counts.len() == KEYS && counts.values().all(|&count| count == 1) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} was not compacted in time: {counts:?}"
        );
        // Paces the writes of this bounded loop: a segment rolls (becomes cleanable) only once
        // log.roll.ms has passed, so time passing between rounds is part of what is driven.
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// DescribeLogDirs' size of partition 0 of `topic`.
fn described_size(client: &mut TestClient, topic: &str) -> i64 {
    let response = client.call(&DescribeLogDirsRequest::default().with_topics(None), 1);
    response.results[0]
        .topics
        .iter()
        .find(|t| t.name.0.as_str() == topic)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0))
        .map(|p| p.partition_size)
        .unwrap()
}

/// The bytes of the `.log` files of a partition directory.
fn segment_bytes_on_disk(partition_dir: &Path) -> i64 {
    std::fs::read_dir(partition_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len() as i64)
        .sum()
}

fn create_compacted(client: &mut TestClient, topic: &str) {
    let create = create_topic_request(
        topic,
        1,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);
}

#[test]
fn real_clients_read_only_the_latest_value_per_key_after_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--set", "log.cleaner.backoff.ms=50"]);
    let address = broker.address();
    let mut client = broker.connect();
    let keys = KEYS.to_string();
    let rounds = ROUNDS.to_string();
    for topic in ["by-confluent", "by-kafkajs"] {
        create_compacted(&mut client, topic);
    }
    run(
        "confluent-kafka produce",
        confluent(&["produce", &address, "by-confluent", &keys, &rounds]),
    );
    run(
        "kafkajs produce",
        kafkajs(&[&address, "by-kafkajs", "produce", &keys, &rounds]),
    );
    for topic in ["by-confluent", "by-kafkajs"] {
        let size_before = described_size(&mut client, topic);
        wait_until_compacted(&mut client, topic);
        // DescribeLogDirs reports the cleaned size (what the segment files hold). The cleaner may
        // swap again between the two reads, so compare with the files right after asking.
        let size_after = described_size(&mut client, topic);
        let on_disk = segment_bytes_on_disk(&dir.path().join(format!("{topic}-0")));
        assert!(
            size_after < size_before + 4096,
            "{topic}: {size_before} -> {size_after}"
        );
        assert!(
            (size_after - on_disk).abs() < 4096,
            "{topic}: DescribeLogDirs says {size_after}, the segment files hold {on_disk}"
        );
        run(
            &format!("confluent-kafka verify {topic}"),
            confluent(&["verify", &address, topic, &keys, &rounds]),
        );
        run(
            &format!("kafkajs verify {topic}"),
            kafkajs(&[&address, topic, "verify", &keys, &rounds]),
        );
    }
}

/// Kafka's key → internal topic partition (`__consumer_offsets` by group id,
/// `__transaction_state` by transactional id): `Utils.abs(javaHashCode(key)) % partitions`,
/// `abs` being `& 0x7fffffff`.
fn internal_partition(key: &str, partitions: i32) -> i32 {
    let hash = key.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    (hash & 0x7fff_ffff) % partitions
}

fn commit_offset(client: &mut TestClient, group: &str, topic: &str, offset: i64) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    let response = client.call(&request, 2);
    assert_eq!(
        response.topics[0].partitions[0].error_code, 0,
        "{response:?}"
    );
}

/// The first dirty offset the cleaner recorded for a partition directory, if any.
fn cleaner_position(partition_dir: &Path) -> Option<i64> {
    let bytes = std::fs::read(partition_dir.join("cleaner.checkpoint")).ok()?;
    let position: [u8; 8] = bytes.get(6..14)?.try_into().ok()?;
    Some(i64::from_be_bytes(position))
}

#[test]
fn committed_offsets_survive_cleaning_of_consumer_offsets_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(
        dir.path(),
        &[
            "--set",
            "log.cleaner.backoff.ms=50",
            "--set",
            "log.roll.ms=100",
            "--set",
            "log.cleaner.min.cleanable.ratio=0.01",
            "--set",
            "offsets.topic.num.partitions=5",
        ],
    );
    let address = broker.address();
    let mut client = broker.connect();
    client.create_topic("data", 1);
    // A real client commits 200 times (each commit a record in __consumer_offsets).
    run(
        "confluent-kafka commit",
        confluent(&["commit", &address, "g", "data", "200"]),
    );
    let partition = internal_partition("g", 5);
    let partition_dir = dir.path().join(format!("__consumer_offsets-{partition}"));
    let deadline = Instant::now() + CONDITION_DEADLINE;
    let mut last_committed = 200;
    loop {
        // Each commit appends, which rolls the segment once log.roll.ms has passed.
        last_committed += 1;
        commit_offset(&mut client, "g", "data", last_committed);
        if cleaner_position(&partition_dir).is_some_and(|position| position > 150) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "__consumer_offsets-{partition} was never cleaned"
        );
        // Paces the writes of this bounded loop: a segment rolls (becomes cleanable) only once
        // log.roll.ms has passed, so time passing between rounds is part of what is driven.
        std::thread::sleep(POLL_INTERVAL);
    }
    let records = keys_in(&mut client, "__consumer_offsets", partition);
    assert!(
        records.len() < 100,
        "{} records after {last_committed} commits: __consumer_offsets was not compacted",
        records.len()
    );
    let expected = last_committed.to_string();
    run(
        "confluent-kafka committed (before restart)",
        confluent(&["committed", &address, "g", "data", &expected]),
    );
    assert_eq!(broker.stop_with("TERM"), Some(0));
    broker.restart();
    run(
        "confluent-kafka committed (after restart)",
        confluent(&["committed", &broker.address(), "g", "data", &expected]),
    );
}

#[test]
fn transactions_still_load_after_cleaning_of_transaction_state_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(
        dir.path(),
        &[
            "--set",
            "log.cleaner.backoff.ms=50",
            "--set",
            "log.roll.ms=100",
            "--set",
            "log.cleaner.min.cleanable.ratio=0.01",
            "--set",
            "offsets.topic.num.partitions=5",
            "--set",
            "transaction.state.log.num.partitions=5",
        ],
    );
    let address = broker.address();
    let mut client = broker.connect();
    client.create_topic("txn-data", 1);
    let partition = internal_partition("compaction-txn", 5);
    let partition_dir = dir.path().join(format!("__transaction_state-{partition}"));
    let deadline = Instant::now() + CONDITION_DEADLINE;
    loop {
        // Each transaction appends Ongoing / PrepareCommit / CompleteCommit records, which roll
        // the segment once log.roll.ms has passed.
        run(
            "confluent-kafka transactions",
            confluent(&["transactions", &address, "compaction-txn", "txn-data", "5"]),
        );
        if cleaner_position(&partition_dir).is_some_and(|position| position > 0) {
            break;
        }
        if Instant::now() >= deadline {
            let listing: Vec<String> = (0..5)
                .map(|p| {
                    let dir = dir.path().join(format!("__transaction_state-{p}"));
                    let files: Vec<String> = std::fs::read_dir(&dir)
                        .map(|entries| {
                            entries
                                .flatten()
                                .map(|e| e.file_name().to_string_lossy().to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    format!("{p}: {files:?}")
                })
                .collect();
            let log = broker.log_text();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!("__transaction_state-{partition} was never cleaned: {listing:#?}\n{tail:#?}");
        }
        // Paces the writes of this bounded loop: a segment rolls (becomes cleanable) only once
        // log.roll.ms has passed, so time passing between rounds is part of what is driven.
        std::thread::sleep(POLL_INTERVAL);
    }
    assert_eq!(broker.stop_with("TERM"), Some(0));
    broker.restart();
    // The coordinator loads the cleaned partition: the id is known (its epoch is bumped) and
    // new transactions commit.
    run(
        "confluent-kafka transactions after restart",
        confluent(&[
            "transactions",
            &broker.address(),
            "compaction-txn",
            "txn-data",
            "2",
        ]),
    );
}

/// How long librdkafka's runner may take for 0077 in quick mode (it waits a fixed 20 s for the
/// cleaner itself, and fails on its own after 81 s).
const LIBRDKAFKA_RUNNER_DEADLINE: Duration = Duration::from_secs(180);

/// librdkafka's own `0077_compaction` test, unchanged, against the broker: its test runner
/// (built by scripts/install-test-deps.sh from Debian's source package of the installed
/// librdkafka 2.0.2, see tests/compat/librdkafka/) creates a compacted topic through
/// `KAFKA_PATH/bin/kafka-topics.sh` (our shim over `quill topic create`), produces keyed
/// updates, tombstones and unique keys with the C client, waits 20 s, and checks that a
/// consumer from the beginning gets exactly the last record of each repeated key and every
/// unique one, at their original offsets. Quick mode (`-Q`): the first of its five rounds
/// (uncompressed, 40 records); the full run (1000 and 10000 records per key, snappy, zstd,
/// gzip) takes about 4 minutes and passes too (see tests/compat/README.md).
#[test]
fn librdkafka_0077_compaction_passes() {
    let runner = std::env::var_os("QUILL_LIBRDKAFKA_TEST_RUNNER")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/librdkafka-tests/test-runner"));
    assert!(
        runner.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        runner.display()
    );
    let data = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(data.path(), &["--set", "log.cleaner.backoff.ms=100"]);
    // The runner writes its stats and report files into its working directory.
    let work = tempfile::tempdir().unwrap();
    let conf = work.path().join("test.conf");
    std::fs::write(
        &conf,
        format!("metadata.broker.list={}\n", broker.address()),
    )
    .unwrap();
    let output_path = work.path().join("runner.out");
    let output = std::fs::File::create(&output_path).unwrap();
    let mut child = Command::new(&runner)
        .arg("-Q")
        .current_dir(work.path())
        .env("RDKAFKA_TEST_CONF", &conf)
        .env("TESTS", "0077")
        .env("TEST_KAFKA_VERSION", "4.0.0")
        .env(
            "KAFKA_PATH",
            workspace_root().join("tests/compat/librdkafka/kafka-path"),
        )
        .env("BROKERS", broker.address())
        .env("QUILL_BIN", env!("CARGO_BIN_EXE_quill"))
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", runner.display()));
    let mut status = None;
    wait_until(
        "librdkafka's 0077_compaction runner to finish",
        LIBRDKAFKA_RUNNER_DEADLINE,
        || {
            status = child.try_wait().unwrap();
            status.is_some()
        },
    );
    let text = std::fs::read_to_string(&output_path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(40).collect::<Vec<_>>();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let status = status.expect("wait_until returned, so it exited");
    assert!(
        status.success() && text.contains("Test 0077_compaction PASSED"),
        "librdkafka 0077_compaction: {status}\n{}",
        tail.join("\n")
    );
}
