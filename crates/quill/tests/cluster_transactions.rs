//! Issue 13: transactions across the brokers of a cluster. A transaction's partitions, and its
//! group's `__consumer_offsets` partition, are led by other brokers than its coordinator: the
//! coordinator sends them their markers with WriteTxnMarkers (retried until acknowledged), and
//! their leaders verify transactional writes with the coordinator (AddPartitionsToTxn
//! `verify_only`). Driven by confluent-kafka (tests/compat/cluster/transactions.py).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::process::Command;
use std::time::Duration;

use cluster::{create_topic, leaders, Cluster, CLUSTER_TIMEOUT};
use common::{compat_python, run_bounded, wait_until, workspace_root, LineDriven, TestClient};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

const TOPIC: &str = "txn-spread";
/// Kafka's defaults, which the broker uses too.
const TRANSACTION_STATE_PARTITIONS: i32 = 50;
const OFFSETS_PARTITIONS: i32 = 50;

/// Java's `String.hashCode` (UTF-16 code units), as Kafka hashes transactional ids and groups.
fn java_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__transaction_state` partition of a transactional id: `abs(hashCode) % n`.
fn transaction_partition(transactional_id: &str) -> usize {
    let hash = java_hash(transactional_id);
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    usize::try_from(positive % TRANSACTION_STATE_PARTITIONS).unwrap()
}

/// The `__consumer_offsets` partition of a group: `(hashCode & 0x7fffffff) % n`.
fn offsets_partition(group: &str) -> usize {
    usize::try_from((java_hash(group) & 0x7fff_ffff) % OFFSETS_PARTITIONS).unwrap()
}

/// Makes the broker create both coordinator topics (as a client's first FindCoordinator does)
/// and waits until each answers for a key.
fn create_coordinator_topics(cluster: &Cluster) {
    for key_type in [0i8, 1] {
        wait_until("a coordinator to be found", CLUSTER_TIMEOUT, || {
            let mut client = TestClient::connect(&cluster.bootstrap(1));
            let request = FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![StrBytes::from_static_str("probe")]);
            let response: FindCoordinatorResponse = client.call(&request, 4);
            response.coordinators[0].error_code == 0
        });
    }
    for node_id in 1..=3 {
        wait_until(
            "every broker to see the coordinator topics",
            CLUSTER_TIMEOUT,
            || {
                cluster::metadata(
                    &cluster.bootstrap(node_id),
                    &["__transaction_state", "__consumer_offsets"],
                )
                .topics
                .iter()
                .all(|topic| topic.error_code == 0)
            },
        );
    }
}

/// A transactional id coordinated by `node` and a group coordinated by `group_node`.
fn ids_coordinated_by(cluster: &Cluster, node: i32, group_node: i32) -> (String, String) {
    let txn_leaders = leaders(&cluster.bootstrap(1), "__transaction_state");
    let group_leaders = leaders(&cluster.bootstrap(1), "__consumer_offsets");
    let transactional_id = (0..)
        .map(|n| format!("txn-{n}"))
        .find(|id| txn_leaders[transaction_partition(id)] == node)
        .unwrap();
    let group = (0..)
        .map(|n| format!("group-{n}"))
        .find(|group| group_leaders[offsets_partition(group)] == group_node)
        .unwrap();
    (transactional_id, group)
}

fn transaction_state(cluster: &Cluster, coordinator: i32, transactional_id: &str) -> String {
    let mut client = TestClient::connect(&cluster.bootstrap(coordinator));
    let request =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
            StrBytes::from_string(transactional_id.to_string()),
        )]);
    let response: DescribeTransactionsResponse = client.call(&request, 0);
    let state = &response.transaction_states[0];
    assert_eq!(state.error_code, 0, "{response:?}");
    state.transaction_state.to_string()
}

fn script(args: &[&str]) -> Command {
    let mut command = Command::new(compat_python());
    command
        .arg(workspace_root().join("tests/compat/cluster/transactions.py"))
        .args(args);
    command
}

/// A 3-node cluster with a 6-partition topic led by every broker, and the coordinator topics
/// (replication factor 3: a killed coordinator's partitions move to another broker, which
/// takes over its groups and transactional ids).
fn cluster_with_topic() -> Cluster {
    let cluster = Cluster::start(3, &[]);
    let created = create_topic(&cluster.bootstrap(1), TOPIC, 6);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    for node_id in 1..=3 {
        wait_until("every broker to see the topic", CLUSTER_TIMEOUT, || {
            leaders(&cluster.bootstrap(node_id), TOPIC) == vec![1, 2, 3, 1, 2, 3]
        });
    }
    create_coordinator_topics(&cluster);
    cluster
}

#[test]
fn transactions_spanning_three_brokers_commit_and_abort_exactly() {
    let cluster = cluster_with_topic();
    // Coordinator on 1, group offsets on 2, partitions on 1, 2 and 3.
    let (transactional_id, group) = ids_coordinated_by(&cluster, 1, 2);
    run_bounded(
        "transactional rounds",
        &mut script(&[
            "run",
            &cluster.bootstrap(3),
            &transactional_id,
            TOPIC,
            &group,
            "0",
            "6",
        ]),
        None,
    );
    // Round 5 committed last; its markers (on all three brokers) complete the transaction.
    wait_until("the last commit to complete", CLUSTER_TIMEOUT, || {
        transaction_state(&cluster, 1, &transactional_id) == "CompleteCommit"
    });
    run_bounded(
        "read_committed check",
        &mut script(&[
            "verify",
            &cluster.bootstrap(2),
            TOPIC,
            &group,
            "0,2,3,5",
            "6",
        ]),
        None,
    );
}

#[test]
fn markers_for_a_killed_broker_are_retried_until_it_returns() {
    // Broker 3 coordinates nothing of this transaction but leads two of its partitions.
    commit_while_a_broker_is_down(3);
}

#[test]
fn a_killed_group_coordinators_partition_moves_and_the_offsets_are_published() {
    // Broker 2 leads the group's __consumer_offsets partition (the transaction's offsets are
    // pending there) and two of the data partitions. Killed, its group partition moves to a
    // follower, which loads the pending offsets from its replica and receives the marker; the
    // data partitions (one replica) wait for broker 2 to return.
    commit_while_a_broker_is_down(2);
}

/// Transaction coordinator on broker 1, the group's offsets on broker 2; `victim` (2 or 3) is
/// killed with the transaction open on all three brokers, the transaction committed, and the
/// victim restarted.
fn commit_while_a_broker_is_down(victim: i32) {
    let mut cluster = cluster_with_topic();
    let (transactional_id, group) = ids_coordinated_by(&cluster, 1, 2);
    let bootstrap = cluster.bootstrap(1);
    run_bounded(
        "transactional rounds before the kill",
        &mut script(&[
            "run",
            &bootstrap,
            &transactional_id,
            TOPIC,
            &group,
            "0",
            "3",
        ]),
        None,
    );

    let mut holder = LineDriven::spawn(&mut script(&[
        "hold",
        &bootstrap,
        &transactional_id,
        TOPIC,
        &group,
        "3",
    ]));
    assert_eq!(holder.next_line("ready", Duration::from_secs(90)), "ready");
    // The transaction is open on all three brokers.
    cluster.node_mut(victim).stop_with("KILL");
    holder.send_last("commit");
    assert_eq!(
        holder.next_line("committed", Duration::from_secs(90)),
        "committed"
    );
    assert!(holder.wait_success());
    // The decision is final, but the victim cannot acknowledge its markers while it is down.
    assert_eq!(
        transaction_state(&cluster, 1, &transactional_id),
        "PrepareCommit"
    );

    cluster.node_mut(victim).restart();
    wait_until(
        "the retried markers to complete the commit",
        CLUSTER_TIMEOUT,
        || transaction_state(&cluster, 1, &transactional_id) == "CompleteCommit",
    );
    run_bounded(
        "read_committed check after the restart",
        &mut script(&[
            "verify",
            &cluster.bootstrap(victim),
            TOPIC,
            &group,
            "0,2,3",
            "4",
        ]),
        None,
    );
    // Transactions go on as before (round 4 aborts, round 5 commits).
    run_bounded(
        "transactional rounds after the restart",
        &mut script(&[
            "run",
            &bootstrap,
            &transactional_id,
            TOPIC,
            &group,
            "4",
            "2",
        ]),
        None,
    );
    wait_until("the last commit to complete", CLUSTER_TIMEOUT, || {
        transaction_state(&cluster, 1, &transactional_id) == "CompleteCommit"
    });
    run_bounded(
        "read_committed check at the end",
        &mut script(&["verify", &bootstrap, TOPIC, &group, "0,2,3,5", "6"]),
        None,
    );
}

/// A transactional v2 batch of one record from `producer_id`/`epoch` at `sequence`.
fn transactional_batch(producer_id: i64, epoch: i16, sequence: i32, value: &str) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let record = Record {
        transactional: true,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(bytes::Bytes::from(value.to_string())),
        headers: Default::default(),
    };
    let mut buffer = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buffer.freeze()
}

/// A transactional Produce of one batch per `(partition, batch)` to `TOPIC`; each partition's
/// error code, by partition.
fn produce_transactional(
    client: &mut TestClient,
    transactional_id: &str,
    batches: Vec<(i32, bytes::Bytes)>,
) -> Vec<(i32, i16)> {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::ProduceRequest;
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
            transactional_id.to_string(),
        ))))
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(common::topic_name(TOPIC))
            .with_partition_data(
                batches
                    .into_iter()
                    .map(|(index, batch)| {
                        PartitionProduceData::default()
                            .with_index(index)
                            .with_records(Some(batch))
                    })
                    .collect(),
            )]);
    let response = client.call(&request, 9);
    let mut codes: Vec<(i32, i16)> = response.responses[0]
        .partition_responses
        .iter()
        .map(|p| (p.index, p.error_code))
        .collect();
    codes.sort();
    codes
}

#[test]
fn the_coordinator_checks_partitions_against_the_cluster_and_leaders_mark_only_their_own() {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    use kafka_protocol::messages::{
        AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse,
        InitProducerIdRequest, InitProducerIdResponse, ProducerId, WriteTxnMarkersRequest,
        WriteTxnMarkersResponse,
    };

    let cluster = cluster_with_topic();
    let (transactional_id, _) = ids_coordinated_by(&cluster, 1, 2);
    let id = TransactionalId(StrBytes::from_string(transactional_id.clone()));
    let mut coordinator = cluster.node(1).connect();
    let init: InitProducerIdResponse = coordinator.call(
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(id.clone()))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
        3,
    );
    assert_eq!(init.error_code, 0, "{init:?}");
    let add = |coordinator: &mut TestClient, partitions: Vec<i32>| {
        let response: AddPartitionsToTxnResponse = coordinator.call(
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(id.clone())
                .with_v3_and_below_producer_id(init.producer_id)
                .with_v3_and_below_producer_epoch(init.producer_epoch)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(common::topic_name(TOPIC))
                    .with_partitions(partitions)]),
            3,
        );
        response.results_by_topic_v3_and_below[0]
            .results_by_partition
            .iter()
            .map(|result| (result.partition_index, result.partition_error_code))
            .collect::<Vec<_>>()
    };
    // Partitions 1 and 2 are led by brokers 2 and 3 (no log here): known to the cluster. 7 does
    // not exist anywhere: UNKNOWN_TOPIC_OR_PARTITION, the others OPERATION_NOT_ATTEMPTED.
    assert_eq!(
        add(&mut coordinator, vec![1, 2, 7]),
        vec![(1, 55), (2, 55), (7, 3)]
    );
    assert_eq!(add(&mut coordinator, vec![1, 2]), vec![(1, 0), (2, 0)]);

    // Transactional writes on brokers 2 and 3 are verified with the coordinator on broker 1.
    let (producer_id, epoch) = (init.producer_id.0, init.producer_epoch);
    let mut broker_2 = cluster.node(2).connect();
    let mut broker_3 = cluster.node(3).connect();
    assert_eq!(
        produce_transactional(
            &mut broker_2,
            &transactional_id,
            vec![
                (1, transactional_batch(producer_id, epoch, 0, "in")),
                // Led by broker 1: answered by the append, without spoiling partition 1.
                (0, transactional_batch(producer_id, epoch, 0, "misdirected")),
            ]
        ),
        vec![(0, 6), (1, 0)]
    );
    assert_eq!(
        produce_transactional(
            &mut broker_3,
            &transactional_id,
            vec![(5, transactional_batch(producer_id, epoch, 0, "not added"))]
        ),
        vec![(5, 48)],
        "INVALID_TXN_STATE: partition 5 is not in the transaction"
    );
    assert_eq!(
        produce_transactional(
            &mut broker_3,
            &transactional_id,
            vec![(
                2,
                transactional_batch(producer_id, epoch + 1, 0, "future epoch")
            )]
        ),
        vec![(2, 47)],
        "INVALID_PRODUCER_EPOCH (the coordinator's PRODUCER_FENCED)"
    );
    assert_eq!(
        produce_transactional(
            &mut broker_3,
            &transactional_id,
            vec![
                (
                    2,
                    transactional_batch(producer_id, epoch, 0, "one producer")
                ),
                (5, transactional_batch(producer_id + 1, epoch, 0, "another")),
            ]
        ),
        vec![(2, 49), (5, 49)],
        "INVALID_PRODUCER_ID_MAPPING: one request, two producers"
    );

    // A leader writes markers only for the partitions it leads.
    let marked: WriteTxnMarkersResponse = broker_2.call(
        &WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(init.producer_id.0 + 1000))
            .with_producer_epoch(0)
            .with_transaction_result(false)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(common::topic_name(TOPIC))
                .with_partition_indexes(vec![0, 1])])]),
        1,
    );
    let codes: Vec<(i32, i16)> = marked.markers[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![(0, 6), (1, 0)],
        "NOT_LEADER_OR_FOLLOWER, then written"
    );

    // Aborting sends markers to brokers 2 and 3 and completes.
    let ended: EndTxnResponse = coordinator.call(
        &EndTxnRequest::default()
            .with_transactional_id(id.clone())
            .with_producer_id(init.producer_id)
            .with_producer_epoch(init.producer_epoch)
            .with_committed(false),
        3,
    );
    assert_eq!(ended.error_code, 0, "{ended:?}");
    wait_until("the abort to complete", CLUSTER_TIMEOUT, || {
        transaction_state(&cluster, 1, &transactional_id) == "CompleteAbort"
    });

    // A leader verifies only a transaction's first write to a partition: later batches that
    // continue the producer's open transaction there need no coordinator (Kafka's leader skips
    // verification the same way). Shown by stopping the coordinator mid-transaction.
    assert_eq!(add(&mut coordinator, vec![1, 4]), vec![(1, 0), (4, 0)]);
    assert_eq!(
        produce_transactional(
            &mut broker_2,
            &transactional_id,
            vec![(1, transactional_batch(producer_id, epoch, 1, "first"))]
        ),
        vec![(1, 0)]
    );
    drop(coordinator);
    let mut cluster = cluster;
    cluster.node_mut(1).stop_with("KILL");
    assert_eq!(
        produce_transactional(
            &mut broker_2,
            &transactional_id,
            vec![(1, transactional_batch(producer_id, epoch, 2, "continued"))]
        ),
        vec![(1, 0)],
        "continues the open transaction without asking the coordinator"
    );
    assert_eq!(
        produce_transactional(
            &mut broker_2,
            &transactional_id,
            vec![(4, transactional_batch(producer_id, epoch, 0, "first here"))]
        ),
        vec![(4, 19)],
        "a first write needs the (stopped) coordinator: NOT_ENOUGH_REPLICAS, retriable"
    );
}

/// The single-broker transaction scenarios (tests/compat/txn, run by transactions.rs) pass
/// unchanged against a cluster, where their topics, coordinators and groups spread over three
/// brokers: confluent-kafka's consume-transform-produce loop with a fenced zombie, and
/// kafkajs's sendOffsets / consume-transform-produce.
#[test]
fn the_single_broker_transaction_scenarios_pass_on_a_cluster() {
    let cluster = Cluster::start(
        3,
        &[
            "--set",
            "group.initial.rebalance.delay.ms=0",
            "--set",
            "transaction.abort.timed.out.transaction.cleanup.interval.ms=500",
        ],
    );
    let scenarios: [(&str, &str); 3] = [
        ("python", "confluent_txn.py"),
        ("node", "kafkajs_eos.js"),
        ("node", "kafkajs_consume_transform_produce.js"),
    ];
    for (index, (runtime, name)) in scenarios.into_iter().enumerate() {
        let mut command = if runtime == "python" {
            Command::new(compat_python())
        } else {
            let mut node = Command::new("node");
            node.env("KAFKAJS_NO_PARTITIONER_WARNING", "1");
            node
        };
        let bootstrap = cluster.bootstrap(i32::try_from(index % 3).unwrap() + 1);
        command
            .arg(workspace_root().join("tests/compat/txn").join(name))
            .arg(&bootstrap)
            .arg(format!("cluster-{index}"))
            .env("QUILL_SCENARIO_TIMEOUT_MS", "200000");
        let output = run_bounded(name, &mut command, None);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.lines().any(|line| line.trim() == "OK"),
            "{name}: {stdout}"
        );
    }
}
