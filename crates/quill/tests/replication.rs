//! Partition replication on a 3-node loopback cluster (issue 14): followers fetch from the
//! leader with Kafka's replica Fetch, the high watermark waits for every ISR member's durable
//! end, acks=all waits for it, and failover loses nothing acknowledged. Judged by real clients
//! (confluent-kafka's producer and consumer in tests/compat/replication/replication.py, kcat)
//! and by comparing the replicas' segment files byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use cluster::{metadata, Cluster, CLUSTER_TIMEOUT};
use common::{
    compat_python, create_topic_request, record_batch, run_bounded, wait_until,
    wait_until_explained, workspace_root, BrokerProcess,
};
use kafka_protocol::messages::CreateTopicsResponse;

const TOPIC_CONFIGS: &[(&str, &str)] = &[("min.insync.replicas", "2")];

fn replication_client(args: &[&str]) -> Command {
    let mut command = Command::new(compat_python());
    command
        .arg(workspace_root().join("tests/compat/replication/replication.py"))
        .args(args);
    command
}

fn create_replicated_topic(address: &str, name: &str) {
    let mut client = common::TestClient::connect(address);
    let response: CreateTopicsResponse =
        client.call(&create_topic_request(name, 1, 3, TOPIC_CONFIGS), 5);
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}

/// (leader, ISR) of partition 0 of `topic` as `address` reports it.
fn partition_state(address: &str, topic: &str) -> (i32, Vec<i32>) {
    let response = metadata(address, &[topic]);
    let Some(partition) = response
        .topics
        .first()
        .and_then(|topic| topic.partitions.first())
    else {
        return (-1, Vec::new()); // not applied on that broker yet
    };
    let mut isr: Vec<i32> = partition.isr_nodes.iter().map(|id| id.0).collect();
    isr.sort_unstable();
    (partition.leader_id.0, isr)
}

/// The concatenated segment files of `<topic>-0` in a node's data directory.
fn segment_bytes(data_dir: &Path, topic: &str) -> Vec<u8> {
    let dir = data_dir.join(format!("{topic}-0"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .flat_map(|path| std::fs::read(path).unwrap_or_default())
        .collect()
}

/// Waits until every node's copy of `<topic>-0` holds the same bytes, at least `min_bytes`.
fn wait_for_identical_replicas(cluster: &Cluster, topic: &str, min_bytes: usize) {
    wait_until_explained(
        CLUSTER_TIMEOUT,
        || {
            let copies: Vec<Vec<u8>> = cluster
                .nodes
                .values()
                .map(|node| segment_bytes(&node.data_dir, topic))
                .collect();
            copies[0].len() >= min_bytes && copies.iter().all(|copy| *copy == copies[0])
        },
        || {
            let sizes: Vec<usize> = cluster
                .nodes
                .values()
                .map(|node| segment_bytes(&node.data_dir, topic).len())
                .collect();
            format!(
                "replicas never converged: sizes {sizes:?}\n{}",
                cluster.logs()
            )
        },
    );
}

fn check_acknowledged(bootstrap: &str, topic: &str, acks: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let acks_file = dir.path().join("acks.txt");
    std::fs::write(&acks_file, acks).unwrap();
    let output = run_bounded(
        "replication check",
        &mut replication_client(&["check", bootstrap, topic, acks_file.to_str().unwrap()]),
        None,
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn bootstrap_all(cluster: &Cluster) -> String {
    cluster
        .nodes
        .values()
        .map(BrokerProcess::address)
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn acks_all_records_are_on_every_replica_byte_for_byte() {
    let cluster = Cluster::start(3, &[]);
    let bootstrap = bootstrap_all(&cluster);
    create_replicated_topic(&cluster.bootstrap(1), "replicated");
    wait_until("every replica in the ISR", CLUSTER_TIMEOUT, || {
        partition_state(&cluster.bootstrap(1), "replicated").1 == vec![1, 2, 3]
    });
    let produced = run_bounded(
        "acks=all producer",
        &mut replication_client(&["produce", &bootstrap, "replicated", "2000"]),
        None,
    );
    let acks = String::from_utf8_lossy(&produced.stdout).to_string();
    assert_eq!(
        acks.lines().filter(|line| line.starts_with("ack ")).count(),
        2000
    );
    let summary = check_acknowledged(&bootstrap, "replicated", &acks);
    assert!(summary.contains("\"lost\": 0"), "{summary}");
    wait_for_identical_replicas(&cluster, "replicated", 2000);
    // kcat reads the same 2000 values in order.
    let kcat = run_bounded(
        "kcat",
        Command::new("kcat").args([
            "-C",
            "-b",
            &bootstrap,
            "-t",
            "replicated",
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%s\n",
        ]),
        None,
    );
    let values: Vec<String> = String::from_utf8_lossy(&kcat.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = (0..2000).map(|n| n.to_string()).collect();
    assert_eq!(values, expected);
    // So does kafkajs, as a group member (its group lives in the replicated
    // __consumer_offsets, whose writes wait for the ISR too).
    run_bounded(
        "kafkajs",
        Command::new("node")
            .current_dir(workspace_root().join("tests/compat/node"))
            .args(["replication_read.js", &bootstrap, "replicated", "2000"])
            .env("KAFKAJS_NO_PARTITIONER_WARNING", "1"),
        None,
    );
}

/// A producer process streaming `count` records, its output going to `output` (a file, not a
/// pipe nobody reads while it runs: thousands of lines would fill it and stall the producer).
fn start_producer(bootstrap: &str, topic: &str, count: usize, output: &Path) -> Child {
    replication_client(&["produce", bootstrap, topic, &count.to_string(), "50"])
        .stdout(std::fs::File::create(output).unwrap())
        .stderr(std::fs::File::create(output.with_extension("err")).unwrap())
        .spawn()
        .unwrap()
}

fn latest_offset(address: &str, topic: &str) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
    let mut client = common::TestClient::connect(address);
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(common::topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = client.call(&request, 7);
    let partition = &response.topics[0].partitions[0];
    if partition.error_code == 0 {
        partition.offset
    } else {
        -1
    }
}

#[test]
fn killing_the_leader_mid_stream_loses_no_acknowledged_record() {
    // Short sessions so the dead leader is fenced (and another ISR member elected) quickly.
    let mut cluster = Cluster::start(
        3,
        &[
            "--set",
            "broker.session.timeout.ms=3000",
            "--set",
            "broker.heartbeat.interval.ms=500",
        ],
    );
    let bootstrap = bootstrap_all(&cluster);
    create_replicated_topic(&cluster.bootstrap(1), "failover");
    wait_until("every replica in the ISR", CLUSTER_TIMEOUT, || {
        partition_state(&cluster.bootstrap(1), "failover").1 == vec![1, 2, 3]
    });
    let (leader, _) = partition_state(&cluster.bootstrap(1), "failover");
    let producer_output = cluster.root.path().join("producer.txt");
    let mut producer = start_producer(&bootstrap, "failover", 6000, &producer_output);
    let leader_address = cluster.bootstrap(leader);
    wait_until(
        "a third of the stream acknowledged",
        CLUSTER_TIMEOUT,
        || latest_offset(&leader_address, "failover") >= 2000,
    );
    cluster.node_mut(leader).stop_with("KILL");
    let survivor = (1..=3).find(|id| *id != leader).unwrap();
    wait_until_explained(
        CLUSTER_TIMEOUT,
        || {
            let (new_leader, _) = partition_state(&cluster.bootstrap(survivor), "failover");
            new_leader > 0 && new_leader != leader
        },
        || format!("no new leader was elected:\n{}", cluster.logs()),
    );
    let exited = common::wait_for_exit(&mut producer, common::CLIENT_TIMEOUT);
    let acks = std::fs::read_to_string(&producer_output).unwrap();
    let errors = std::fs::read_to_string(producer_output.with_extension("err")).unwrap();
    let last_lines: Vec<&str> = acks.lines().rev().take(5).collect();
    assert!(
        exited.is_some_and(|status| status.success()),
        "producer failed ({} acknowledged, last lines {last_lines:?}): {}\n{}",
        acks.lines().filter(|line| line.starts_with("ack ")).count(),
        errors,
        cluster.logs()
    );
    let survivors: String = (1..=3)
        .filter(|id| *id != leader)
        .map(|id| cluster.bootstrap(id))
        .collect::<Vec<_>>()
        .join(",");
    let summary = check_acknowledged(&survivors, "failover", &acks);
    assert!(summary.contains("\"lost\": 0"), "{summary}");
    // The old leader returns as a follower, truncates what the others never had, and ends
    // up with the same bytes.
    cluster.node_mut(leader).restart();
    wait_for_identical_replicas(&cluster, "failover", 6000);
}

fn signal(node: &BrokerProcess, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(node.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// One acks=all record through the raw protocol; the partition's error code.
fn produce_acks_all(address: &str, topic: &str) -> i16 {
    let mut client = common::TestClient::connect(address);
    let request = common::produce_request(topic, 0, record_batch(&["x"], 1_700_000_000_000), -1)
        .with_timeout_ms(20_000);
    let response = client.call(&request, 7);
    response.responses[0].partition_responses[0].error_code
}

/// Five nodes, so that the metadata quorum keeps a majority (and can commit ISR changes) with
/// two of the partition's three replicas stopped.
#[test]
fn a_stopped_follower_leaves_the_isr_and_rejoins_when_resumed() {
    let cluster = Cluster::start(5, &["--set", "replica.lag.time.max.ms=2000"]);
    create_replicated_topic(&cluster.bootstrap(1), "lagging");
    let (leader, replicas) = partition_state(&cluster.bootstrap(1), "lagging");
    assert_eq!(replicas.len(), 3);
    let leader_address = cluster.bootstrap(leader);
    wait_until("the leader to serve the topic", CLUSTER_TIMEOUT, || {
        partition_state(&leader_address, "lagging").1 == replicas
    });
    assert_eq!(produce_acks_all(&leader_address, "lagging"), 0);
    let followers: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|id| *id != leader)
        .collect();

    signal(cluster.node(followers[0]), "STOP");
    wait_until_explained(
        CLUSTER_TIMEOUT,
        || partition_state(&leader_address, "lagging").1.len() == 2,
        || format!("the ISR never shrank:\n{}", cluster.logs()),
    );
    // Two in sync meet min.insync.replicas=2.
    assert_eq!(produce_acks_all(&leader_address, "lagging"), 0);

    signal(cluster.node(followers[1]), "STOP");
    wait_until_explained(
        CLUSTER_TIMEOUT,
        || partition_state(&leader_address, "lagging").1 == vec![leader],
        || format!("the ISR never shrank to the leader:\n{}", cluster.logs()),
    );
    assert_eq!(
        produce_acks_all(&leader_address, "lagging"),
        19,
        "NOT_ENOUGH_REPLICAS"
    );

    signal(cluster.node(followers[0]), "CONT");
    signal(cluster.node(followers[1]), "CONT");
    wait_until_explained(
        CLUSTER_TIMEOUT,
        || partition_state(&leader_address, "lagging").1 == replicas,
        || format!("the followers never rejoined the ISR:\n{}", cluster.logs()),
    );
    assert_eq!(produce_acks_all(&leader_address, "lagging"), 0);
}

/// acks=all produce rate and latency, RF=3 vs RF=1, on 3 loopback nodes (BENCHMARKS.md):
/// `cargo test --release -p quill --test replication -- --ignored --nocapture measure`
/// Each round creates a fresh one-partition topic per factor and runs `quill bench produce`
/// (100 000 records of 1 KiB, acks=all) against the cluster; rounds alternate the factors.
#[test]
#[ignore]
fn measure_acks_all_rf3_against_rf1() {
    let cluster = Cluster::start(3, &[]);
    let bootstrap = bootstrap_all(&cluster);
    let quill = env!("CARGO_BIN_EXE_quill");
    let rounds: usize = std::env::var("QUILL_BENCH_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(3);
    for round in 0..rounds {
        for factor in ["1", "3"] {
            let topic = format!("bench-rf{factor}-{round}");
            let min_insync = if factor == "3" {
                "min.insync.replicas=2"
            } else {
                "min.insync.replicas=1"
            };
            let created = Command::new(quill)
                .args([
                    "topic", "create", "-b", &bootstrap, &topic, "-p", "1", "-r", factor, "-c",
                    min_insync,
                ])
                .output()
                .unwrap();
            assert!(created.status.success(), "{created:?}");
            let output = Command::new(quill)
                .args([
                    "bench",
                    "produce",
                    "-b",
                    &bootstrap,
                    "--topic",
                    &topic,
                    "--records",
                    "100000",
                    "--record-size",
                    "1024",
                    "--acks",
                    "all",
                    "--json",
                ])
                .output()
                .unwrap();
            assert!(output.status.success(), "{output:?}");
            println!(
                "round {round} RF={factor}: {}",
                String::from_utf8_lossy(&output.stdout).trim()
            );
        }
    }
}

/// OffsetForLeaderEpoch for partition 0 of `topic`: (error, epoch, end offset).
fn offset_for_leader_epoch(
    address: &str,
    topic: &str,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> (i16, i32, i64) {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::OffsetForLeaderEpochRequest;
    let mut client = common::TestClient::connect(address);
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(common::topic_name(topic))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(current_leader_epoch)
                .with_leader_epoch(leader_epoch)])]);
    let response = client.call(&request, 4);
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.leader_epoch, answer.end_offset)
}

/// A replica Fetch (v12: topics by name, the follower's id in `replica_id`) of partition 0 of
/// `topic` claiming to come from broker `replica_id`.
fn replica_fetch_error(address: &str, topic: &str, replica_id: i32, leader_epoch: i32) -> i16 {
    let mut client = common::TestClient::connect(address);
    let mut request = common::fetch_request(topic, 0, 0, 0).with_replica_id(replica_id.into());
    request.topics[0].partitions[0].current_leader_epoch = leader_epoch;
    let response = client.call(&request, 12);
    response.responses[0].partitions[0].error_code
}

/// Kafka's answers on the leader-epoch and replica paths: OffsetForLeaderEpoch from the
/// leader only, with FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for a stale or future epoch;
/// replica Fetch only from a replica of the partition.
#[test]
fn leader_epoch_requests_and_replica_fetches_get_kafkas_answers() {
    let cluster = Cluster::start(3, &[]);
    create_replicated_topic(&cluster.bootstrap(1), "epochs");
    let (leader, _) = partition_state(&cluster.bootstrap(1), "epochs");
    let leader_address = cluster.bootstrap(leader);
    wait_until("the leader to serve the topic", CLUSTER_TIMEOUT, || {
        partition_state(&leader_address, "epochs").1 == vec![1, 2, 3]
    });
    assert_eq!(produce_acks_all(&leader_address, "epochs"), 0);
    assert_eq!(produce_acks_all(&leader_address, "epochs"), 0);
    // Epoch 0 is the latest: it ends at the log end.
    assert_eq!(
        offset_for_leader_epoch(&leader_address, "epochs", 0, 0),
        (0, 0, 2)
    );
    // An epoch above the latest: UNDEFINED (-1, -1), as Kafka.
    assert_eq!(
        offset_for_leader_epoch(&leader_address, "epochs", -1, 5),
        (0, -1, -1)
    );
    assert_eq!(
        offset_for_leader_epoch(&leader_address, "epochs", 3, 0).0,
        75,
        "UNKNOWN_LEADER_EPOCH"
    );
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    assert_eq!(
        offset_for_leader_epoch(&cluster.bootstrap(follower), "epochs", 0, 0).0,
        6,
        "NOT_LEADER_OR_FOLLOWER"
    );
    // A replica Fetch from a broker that is no replica (id 9), and from a real one.
    assert_eq!(replica_fetch_error(&leader_address, "epochs", 9, 0), 6);
    assert_eq!(
        replica_fetch_error(&leader_address, "epochs", follower, 0),
        0
    );
    assert_eq!(
        replica_fetch_error(&leader_address, "epochs", follower, 1),
        75,
        "UNKNOWN_LEADER_EPOCH"
    );
}
