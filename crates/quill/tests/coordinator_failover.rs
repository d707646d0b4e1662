//! Issue 14: the group and transaction coordinators follow the leadership of their replicated
//! `__consumer_offsets` / `__transaction_state` partitions (Kafka's onElection/onResignation).
//! On a 3-node cluster with the internal topics at replication factor 3, kill -9 the broker
//! FindCoordinator names: another broker takes over, with the committed offsets and the
//! transaction state replayed from its replica of the log. Judged by confluent-kafka
//! (tests/compat/cluster/coordinator_failover.py and transactions.py).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::process::Command;
use std::time::Duration;

use cluster::{Cluster, CLUSTER_TIMEOUT};
use common::{
    compat_python, create_topic_request, run_bounded, wait_until, workspace_root, LineDriven,
    TestClient,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    CreateTopicsResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, OffsetFetchRequest,
    OffsetFetchResponse, ProducerId, TransactionalId, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;
/// Kafka's TRANSACTION_COORDINATOR_FENCED.
const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
/// Kafka's NOT_COORDINATOR.
const NOT_COORDINATOR: i16 = 16;

fn failover_client(args: &[&str]) -> Command {
    let mut command = Command::new(compat_python());
    command
        .arg(workspace_root().join("tests/compat/cluster/coordinator_failover.py"))
        .args(args);
    command
}

fn transactions_client(args: &[&str]) -> Command {
    let mut command = Command::new(compat_python());
    command
        .arg(workspace_root().join("tests/compat/cluster/transactions.py"))
        .args(args);
    command
}

/// The coordinator `address` names for `key`, or `None` while it answers an error.
fn find_coordinator(address: &str, key_type: i8, key: &str) -> Option<i32> {
    let mut client = TestClient::connect(address);
    let request = FindCoordinatorRequest::default()
        .with_key_type(key_type)
        .with_coordinator_keys(vec![StrBytes::from_string(key.to_string())]);
    let response: FindCoordinatorResponse = client.call(&request, 4);
    let coordinator = &response.coordinators[0];
    (coordinator.error_code == 0).then_some(coordinator.node_id.0)
}

/// Waits until every live node names the same coordinator for `key`, other than `not`.
fn wait_for_coordinator(cluster: &Cluster, key_type: i8, key: &str, not: Option<i32>) -> i32 {
    let mut found = -1;
    wait_until("a coordinator to be named", CLUSTER_TIMEOUT, || {
        let named: Vec<Option<i32>> = cluster
            .nodes
            .iter()
            .filter(|(id, _)| Some(**id) != not)
            .map(|(_, node)| find_coordinator(&node.address(), key_type, key))
            .collect();
        match named.first() {
            Some(Some(first))
                if Some(*first) != not && named.iter().all(|id| *id == Some(*first)) =>
            {
                found = *first;
                true
            }
            _ => false,
        }
    });
    found
}

fn started_cluster_with_topic(topic: &str, partitions: i32) -> Cluster {
    started_cluster_with_topic_and(topic, partitions, &[])
}

fn started_cluster_with_topic_and(topic: &str, partitions: i32, extra_args: &[&str]) -> Cluster {
    // Internal topics keep their default replication factor (3).
    let cluster = Cluster::start(3, extra_args);
    let mut client = TestClient::connect(&cluster.bootstrap(1));
    let response: CreateTopicsResponse = client.call(
        &create_topic_request(topic, partitions, 3, &[("min.insync.replicas", "2")]),
        5,
    );
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
    for node_id in 1..=3 {
        wait_until("every broker to see the topic", CLUSTER_TIMEOUT, || {
            cluster::metadata(&cluster.bootstrap(node_id), &[topic]).topics[0].error_code == 0
        });
    }
    cluster
}

/// The (offset, value) pairs a `consume` run printed.
fn read_records(output: &std::process::Output) -> Vec<(i64, String)> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("read ")?.split(' ');
            Some((words.next()?.parse().ok()?, words.next()?.to_string()))
        })
        .collect()
}

#[test]
fn a_group_continues_on_another_broker_when_its_coordinator_is_killed() {
    const TOPIC: &str = "failover-group";
    const GROUP: &str = "failover-group-members";
    let mut cluster = started_cluster_with_topic(TOPIC, 1);
    run_bounded(
        "produce 0..20",
        &mut failover_client(&["produce", &cluster.bootstrap(1), TOPIC, "0", "20"]),
        None,
    );
    let coordinator = wait_for_coordinator(&cluster, GROUP_KEY, GROUP, None);
    let survivor = if coordinator == 1 { 2 } else { 1 };
    let first = run_bounded(
        "consume 8 and commit",
        &mut failover_client(&["consume", &cluster.bootstrap(survivor), TOPIC, GROUP, "8"]),
        None,
    );
    let first = read_records(&first);
    assert_eq!(
        first,
        (0..8).map(|n| (n, n.to_string())).collect::<Vec<_>>()
    );

    cluster.node_mut(coordinator).stop_with("KILL");
    let successor = wait_for_coordinator(&cluster, GROUP_KEY, GROUP, Some(coordinator));
    assert_ne!(successor, coordinator);

    // The group resumes after its last committed offset (8), on the new coordinator.
    let rest = run_bounded(
        "consume the remaining 12",
        &mut failover_client(&["consume", &cluster.bootstrap(survivor), TOPIC, GROUP, "12"]),
        None,
    );
    assert_eq!(
        read_records(&rest),
        (8..20).map(|n| (n, n.to_string())).collect::<Vec<_>>(),
        "the group must resume at its committed offset"
    );

    // The old coordinator returns as a follower: the group stays where it is.
    cluster.node_mut(coordinator).restart();
    run_bounded(
        "produce 20..25",
        &mut failover_client(&["produce", &cluster.bootstrap(survivor), TOPIC, "20", "5"]),
        None,
    );
    let after_return = run_bounded(
        "consume after the old coordinator returned",
        &mut failover_client(&["consume", &cluster.bootstrap(survivor), TOPIC, GROUP, "5"]),
        None,
    );
    assert_eq!(
        read_records(&after_return),
        (20..25).map(|n| (n, n.to_string())).collect::<Vec<_>>()
    );
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// The group-level error OffsetFetch (v5, every partition) answers at `address`.
fn offset_fetch_error(address: &str, group: &str) -> i16 {
    let mut client = TestClient::connect(address);
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(None);
    let response: OffsetFetchResponse = client.call(&request, 5);
    response.error_code
}

#[test]
fn a_paused_group_coordinator_gives_up_its_groups_once_it_resumes_as_a_follower() {
    const TOPIC: &str = "failover-pause";
    const GROUP: &str = "paused-coordinator-group";
    let cluster = started_cluster_with_topic_and(
        TOPIC,
        1,
        &[
            "--set",
            "broker.session.timeout.ms=3000",
            "--set",
            "broker.heartbeat.interval.ms=300",
        ],
    );
    run_bounded(
        "produce 0..10",
        &mut failover_client(&["produce", &cluster.bootstrap(1), TOPIC, "0", "10"]),
        None,
    );
    let coordinator = wait_for_coordinator(&cluster, GROUP_KEY, GROUP, None);
    let survivor = if coordinator == 1 { 2 } else { 1 };
    let consume = |cluster: &Cluster, count: &str| {
        read_records(&run_bounded(
            "consume and commit",
            &mut failover_client(&["consume", &cluster.bootstrap(survivor), TOPIC, GROUP, count]),
            None,
        ))
    };
    assert_eq!(
        consume(&cluster, "4"),
        (0..4).map(|n| (n, n.to_string())).collect::<Vec<_>>()
    );

    // SIGSTOP: the coordinator neither answers nor knows it was fenced and replaced.
    let paused = cluster.node(coordinator).pid();
    signal(paused, "STOP");
    let successor = wait_for_coordinator(&cluster, GROUP_KEY, GROUP, Some(coordinator));
    assert_ne!(successor, coordinator);
    let during = consume(&cluster, "3");
    signal(paused, "CONT");
    assert_eq!(
        during,
        (4..7).map(|n| (n, n.to_string())).collect::<Vec<_>>()
    );

    // Resumed, it learns it no longer leads the group's partition and unloads it: it answers
    // NOT_COORDINATOR instead of the offsets it held when it stopped.
    wait_until(
        "the resumed broker to give up the group",
        CLUSTER_TIMEOUT,
        || offset_fetch_error(&cluster.bootstrap(coordinator), GROUP) == NOT_COORDINATOR,
    );
    assert_eq!(
        find_coordinator(&cluster.bootstrap(coordinator), GROUP_KEY, GROUP),
        Some(successor)
    );
    assert_eq!(
        consume(&cluster, "3"),
        (7..10).map(|n| (n, n.to_string())).collect::<Vec<_>>()
    );
}

fn transaction_state(address: &str, transactional_id: &str) -> Option<String> {
    let mut client = TestClient::connect(address);
    let request =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
            StrBytes::from_string(transactional_id.to_string()),
        )]);
    let response: DescribeTransactionsResponse = client.call(&request, 0);
    let state = &response.transaction_states[0];
    (state.error_code == 0).then(|| state.transaction_state.to_string())
}

#[test]
fn transactions_continue_through_a_new_coordinator_when_theirs_is_killed() {
    const TOPIC: &str = "failover-txn";
    const TRANSACTIONAL_ID: &str = "failover-producer";
    const GROUP: &str = "failover-txn-group";
    let mut cluster = started_cluster_with_topic(TOPIC, 3);
    let coordinator = wait_for_coordinator(&cluster, TRANSACTION_KEY, TRANSACTIONAL_ID, None);
    let survivor = if coordinator == 1 { 2 } else { 1 };
    let bootstrap = cluster.bootstrap(survivor);
    // Rounds 0 and 2 commit, round 1 aborts.
    run_bounded(
        "transactional rounds before the kill",
        &mut transactions_client(&["run", &bootstrap, TRANSACTIONAL_ID, TOPIC, GROUP, "0", "3"]),
        None,
    );

    // Round 3 is open (written to every partition, offsets sent) when its coordinator dies.
    let mut holder = LineDriven::spawn(&mut transactions_client(&[
        "hold",
        &bootstrap,
        TRANSACTIONAL_ID,
        TOPIC,
        GROUP,
        "3",
    ]));
    assert_eq!(holder.next_line("ready", Duration::from_secs(120)), "ready");
    cluster.node_mut(coordinator).stop_with("KILL");
    let successor = wait_for_coordinator(
        &cluster,
        TRANSACTION_KEY,
        TRANSACTIONAL_ID,
        Some(coordinator),
    );
    assert_ne!(successor, coordinator);
    // The new coordinator replayed the open transaction from its replica of the log.
    wait_until("the new coordinator to load", CLUSTER_TIMEOUT, || {
        transaction_state(&cluster.bootstrap(successor), TRANSACTIONAL_ID).as_deref()
            == Some("Ongoing")
    });
    // The producer commits the open transaction through the new coordinator.
    holder.send_last("commit");
    assert_eq!(
        holder.next_line("committed", Duration::from_secs(120)),
        "committed"
    );
    assert!(holder.wait_success());
    wait_until("the commit to complete", CLUSTER_TIMEOUT, || {
        transaction_state(&cluster.bootstrap(successor), TRANSACTIONAL_ID).as_deref()
            == Some("CompleteCommit")
    });
    // The next transactions (4 aborts, 5 commits) go through the new coordinator too.
    run_bounded(
        "transactional rounds after the kill",
        &mut transactions_client(&["run", &bootstrap, TRANSACTIONAL_ID, TOPIC, GROUP, "4", "2"]),
        None,
    );
    wait_until("the last commit to complete", CLUSTER_TIMEOUT, || {
        transaction_state(&cluster.bootstrap(successor), TRANSACTIONAL_ID).as_deref()
            == Some("CompleteCommit")
    });
    // A read_committed consumer sees exactly the committed rounds, each once; the group's
    // transactional offset is the last committed round's.
    run_bounded(
        "read_committed check",
        &mut transactions_client(&["verify", &bootstrap, TOPIC, GROUP, "0,2,3,5", "6"]),
        None,
    );
    // The old coordinator's epoch is fenced: the new one's markers carried its higher leader
    // epoch, so a marker from the killed coordinator (epoch 0, the partition's first leader
    // epoch) is refused by the partition leaders.
    let mut describer = TestClient::connect(&cluster.bootstrap(successor));
    let described: DescribeTransactionsResponse = describer.call(
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
            StrBytes::from_static_str(TRANSACTIONAL_ID),
        )]),
        0,
    );
    let producer = &described.transaction_states[0];
    let leader = cluster::leaders(&cluster.bootstrap(successor), TOPIC)[0];
    let mut leader_client = TestClient::connect(&cluster.bootstrap(leader));
    let zombie: WriteTxnMarkersResponse = leader_client.call(
        &WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer.producer_id.0))
            .with_producer_epoch(producer.producer_epoch)
            .with_transaction_result(false)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(common::topic_name(TOPIC))
                .with_partition_indexes(vec![0])])]),
        1,
    );
    assert_eq!(
        zombie.markers[0].topics[0].partitions[0].error_code, TRANSACTION_COORDINATOR_FENCED,
        "{zombie:?}"
    );
}
