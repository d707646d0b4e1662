//! `quill-client` incremental cooperative rebalancing (KIP-429) and static membership (KIP-345)
//! against the real broker: only the partitions that move are revoked, a static member that
//! restarts in time gets its partitions back without a rebalance, a duplicate static member is
//! fenced, and a librdkafka cooperative-sticky consumer shares a group with a quill-client one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::BrokerProcess;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::{GroupId, LeaveGroupRequest};
use kafka_protocol::protocol::StrBytes;
use quill_client::admin::NewTopic;
use quill_client::consumer::OffsetReset;
use quill_client::group::{self, GroupConsumer, GroupConsumerConfig, RebalanceEvent};
use quill_client::{
    assignor, Admin, Client, ClientConfig, ClientError, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};

/// Bound on every wait for a group to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(40);
/// Session timeout of the test members: a restart must come back within it.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
const TOPIC: &str = "coop";
const PARTITIONS: i32 = 4;
/// Records in the topic of the hand-over test: each must be consumed exactly once.
const RECORDS: usize = 400;

async fn setup() -> (tempfile::TempDir, BrokerProcess) {
    setup_with_records(0).await
}

/// A broker with the test topic, `records` values spread over its partitions.
async fn setup_with_records(records: usize) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    // No initial rebalance delay: the tests time rebalances, not the coordinator's patience.
    let broker = BrokerProcess::start(dir.path(), &["--set", "group.initial.rebalance.delay.ms=0"]);
    let client = Client::connect(ClientConfig::new([broker.address()]))
        .await
        .unwrap();
    let topic = NewTopic {
        name: TOPIC.into(),
        partitions: PARTITIONS,
        replication_factor: 1,
        configs: Vec::new(),
    };
    Admin::new(client.clone())
        .create_topics(&[topic])
        .await
        .unwrap();
    let producer = Producer::new(client, ProducerConfig::default()).unwrap();
    for index in 0..records {
        let record = ProducerRecord {
            topic: TOPIC.into(),
            partition: Some(index as i32 % PARTITIONS),
            value: Some(Bytes::from(index.to_string())),
            ..ProducerRecord::default()
        };
        producer.send(record).await.unwrap().await.unwrap();
    }
    producer.close().await;
    (dir, broker)
}

fn cooperative_config(group: &str, instance: Option<&str>) -> GroupConsumerConfig {
    let mut config = GroupConsumerConfig::new(group);
    config.assignors = vec![assignor::COOPERATIVE_STICKY.to_string()];
    config.group_instance_id = instance.map(str::to_string);
    config.consumer.offset_reset = OffsetReset::Earliest;
    config.heartbeat_interval = Duration::from_millis(200);
    config.session_timeout = SESSION_TIMEOUT;
    config.rebalance_timeout = Duration::from_secs(10);
    config.auto_commit_interval = Duration::from_millis(200);
    config
}

#[derive(Debug, Default, Clone)]
struct MemberState {
    member_id: String,
    generation: Option<i32>,
    owned: BTreeSet<TopicPartition>,
    events: Vec<RebalanceEvent>,
    /// (partition, offset) of every record `poll` returned.
    consumed: Vec<(i32, i64)>,
    /// The error `poll` ended with, and whether it was the fencing error.
    error: Option<(String, bool)>,
}

/// A member polling on its own task (with its own client, as a separate application), its
/// rebalance callbacks recorded.
struct Member {
    stop: Arc<AtomicBool>,
    /// While set, the application stops calling `poll` (a slow member).
    paused: Arc<AtomicBool>,
    state: Arc<Mutex<MemberState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Member {
    async fn start(address: &str, config: GroupConsumerConfig) -> Member {
        let client = Client::connect(ClientConfig::new([address.to_string()]))
            .await
            .unwrap();
        let state: Arc<Mutex<MemberState>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let mut member = GroupConsumer::new(client, config, vec![TOPIC.to_string()]);
        let recorder = state.clone();
        member.set_rebalance_listener(Arc::new(move |event| {
            recorder.lock().unwrap().events.push(event.clone());
        }));
        let published = state.clone();
        let stopping = stop.clone();
        let pausing = paused.clone();
        let task = tokio::spawn(async move {
            while !stopping.load(Ordering::Acquire) {
                if pausing.load(Ordering::Acquire) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let records = match member.poll(Duration::from_millis(100)).await {
                    Ok(records) => records,
                    Err(error) => {
                        let fenced = matches!(error, ClientError::FencedInstance { .. });
                        published.lock().unwrap().error = Some((error.to_string(), fenced));
                        return;
                    }
                };
                let mut state = published.lock().unwrap();
                state.consumed.extend(
                    records
                        .iter()
                        .map(|record| (record.partition, record.offset)),
                );
                state.generation = member.generation();
                state.member_id = member.member_id().to_string();
                state.owned = member.assignment().iter().cloned().collect();
            }
            member.close().await.unwrap();
        });
        Member {
            stop,
            paused,
            state,
            task,
        }
    }

    fn state(&self) -> MemberState {
        self.state.lock().unwrap().clone()
    }

    async fn stop(self) -> MemberState {
        self.stop.store(true, Ordering::Release);
        tokio::time::timeout(SETTLE_TIMEOUT, self.task)
            .await
            .expect("member did not stop in time")
            .unwrap();
        self.state.lock().unwrap().clone()
    }
}

fn all_partitions() -> BTreeSet<TopicPartition> {
    (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect()
}

/// Every member in the same generation, owning disjoint shares that differ by at most one
/// and together cover the topic.
fn settled(states: &[MemberState]) -> bool {
    let Some(generation) = states.first().and_then(|state| state.generation) else {
        return false;
    };
    if states
        .iter()
        .any(|state| state.generation != Some(generation))
    {
        return false;
    }
    let total: usize = states.iter().map(|state| state.owned.len()).sum();
    let union: BTreeSet<TopicPartition> = states
        .iter()
        .flat_map(|state| state.owned.clone())
        .collect();
    let sizes = states.iter().map(|state| state.owned.len());
    let spread = sizes.clone().max().unwrap_or(0) - sizes.min().unwrap_or(0);
    total == union.len() && union == all_partitions() && spread <= 1
}

async fn wait_settled(members: &[&Member]) -> Vec<MemberState> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let states: Vec<MemberState> = members.iter().map(|member| member.state()).collect();
        if settled(&states) {
            return states;
        }
        assert!(
            Instant::now() < deadline,
            "group did not settle: {states:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The partitions named by `Revoked` (or `Lost`) events recorded after the first `skip`.
fn taken_away(state: &MemberState, skip: usize) -> BTreeSet<TopicPartition> {
    state
        .events
        .iter()
        .skip(skip)
        .flat_map(|event| match event {
            RebalanceEvent::Revoked { partitions, .. } | RebalanceEvent::Lost { partitions } => {
                partitions.clone()
            }
            RebalanceEvent::Assigned { .. } => Vec::new(),
        })
        .collect()
}

fn lost_any(state: &MemberState, skip: usize) -> bool {
    state
        .events
        .iter()
        .skip(skip)
        .any(|event| matches!(event, RebalanceEvent::Lost { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_partitions_that_move_are_revoked() {
    let (_dir, broker) = setup_with_records(RECORDS).await;
    let address = broker.address();
    // No periodic auto-commit within the test: only the commits a rebalance makes.
    let config = || {
        let mut config = cooperative_config("coop", None);
        config.auto_commit_interval = Duration::from_secs(600);
        config
    };
    let a = Member::start(&address, config()).await;
    let b = Member::start(&address, config()).await;
    let before = wait_settled(&[&a, &b]).await;
    let marks: Vec<usize> = before.iter().map(|state| state.events.len()).collect();

    // A third member: one partition moves to it, the other three stay where they are.
    let c = Member::start(&address, config()).await;
    let after = wait_settled(&[&a, &b, &c]).await;
    let moved: BTreeSet<TopicPartition> = after[2].owned.clone();
    assert_eq!(moved.len(), 1, "{after:#?}");
    for (index, (old, new)) in before.iter().zip(&after).enumerate() {
        assert!(
            new.owned.is_subset(&old.owned),
            "{index}: {before:#?} {after:#?}"
        );
        let revoked = taken_away(new, marks[index]);
        assert!(
            revoked.is_subset(&moved),
            "{index} revoked {revoked:?}, moved {moved:?}"
        );
        assert_eq!(
            revoked,
            &old.owned - &new.owned,
            "{index}: {:#?}",
            new.events
        );
        assert!(!lost_any(new, marks[index]));
    }
    assert!(
        after[0].generation.unwrap() >= before[0].generation.unwrap() + 2,
        "a hand-over takes a revoking rebalance and a follow-up: {before:#?} {after:#?}"
    );
    let client = Client::connect(ClientConfig::new([address.clone()]))
        .await
        .unwrap();
    let description = group::describe_group(&client, "coop").await.unwrap();
    assert_eq!(description.protocol, "cooperative-sticky");
    assert_eq!(description.members.len(), 3);

    // The third leaves: its partition goes to one of the others, nobody gives anything up.
    let marks: Vec<usize> = after.iter().map(|state| state.events.len()).collect();
    let c_final = c.stop().await;
    let last = wait_settled(&[&a, &b]).await;
    for (index, state) in last.iter().enumerate() {
        assert!(
            taken_away(state, marks[index]).is_empty(),
            "{:#?}",
            state.events
        );
        assert!(state.owned.is_superset(&after[index].owned));
    }
    let owners_of_moved: Vec<usize> = (0..2)
        .filter(|&index| last[index].owned.is_superset(&moved))
        .collect();
    assert_eq!(owners_of_moved.len(), 1, "{last:#?}");
    // Revoked partitions were committed before they moved: across the three members every
    // record was consumed exactly once.
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while a.state().consumed.len() + b.state().consumed.len() + c_final.consumed.len() < RECORDS {
        assert!(Instant::now() < deadline, "not every record was consumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let finals = [a.stop().await, b.stop().await, c_final];
    let mut consumed: Vec<(i32, i64)> = finals
        .iter()
        .flat_map(|state| state.consumed.clone())
        .collect();
    let total = consumed.len();
    consumed.sort();
    consumed.dedup();
    assert_eq!(consumed.len(), total, "some records were consumed twice");
    assert_eq!(total, RECORDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_keeps_consuming_its_partitions_while_a_rebalance_waits() {
    let (_dir, broker) = setup().await;
    let address = broker.address();
    let a = Member::start(&address, cooperative_config("busy", None)).await;
    wait_settled(&[&a]).await;
    let b = Member::start(&address, cooperative_config("busy", None)).await;
    let settled = wait_settled(&[&a, &b]).await;
    let kept: Vec<TopicPartition> = settled[0].owned.iter().cloned().collect();

    // `b` stops polling, then `c` joins: the rebalance waits for `b` (up to the rebalance
    // timeout), and meanwhile `a` goes on reading the partitions it owns.
    b.paused.store(true, Ordering::Release);
    let c = Member::start(&address, cooperative_config("busy", None)).await;
    let client = Client::connect(ClientConfig::new([address.clone()]))
        .await
        .unwrap();
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while group::describe_group(&client, "busy").await.unwrap().state != "PreparingRebalance" {
        assert!(Instant::now() < deadline, "no rebalance started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = a.state().consumed.len();
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    for partition in &kept {
        let record = ProducerRecord {
            topic: TOPIC.into(),
            partition: Some(partition.partition),
            value: Some(Bytes::from_static(b"during")),
            ..ProducerRecord::default()
        };
        producer.send(record).await.unwrap().await.unwrap();
    }
    producer.close().await;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while a.state().consumed.len() < before + kept.len() {
        assert!(
            Instant::now() < deadline,
            "`a` stopped consuming during the rebalance"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let description = group::describe_group(&client, "busy").await.unwrap();
    assert_eq!(
        description.state, "PreparingRebalance",
        "the rebalance was not waiting"
    );
    assert!(a.state().generation.is_none(), "`a` is rejoining");

    b.paused.store(false, Ordering::Release);
    wait_settled(&[&a, &b, &c]).await;
    c.stop().await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_the_coordinator_forgets_loses_its_partitions_and_rejoins() {
    let (_dir, broker) = setup().await;
    let address = broker.address();
    let member = Member::start(&address, cooperative_config("forgotten", None)).await;
    let before = wait_settled(&[&member]).await.remove(0);

    // Removed behind its back (as a session expiry would): the next heartbeat hears
    // UNKNOWN_MEMBER_ID, so the partitions are lost, not revoked, and a new member id joins.
    let client = Client::connect(ClientConfig::new([address.clone()]))
        .await
        .unwrap();
    let coordinator = group::find_coordinator(&client, "forgotten").await.unwrap();
    let connection = client.coordinator_connection(coordinator).await.unwrap();
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("forgotten")))
        .with_members(vec![MemberIdentity::default()
            .with_member_id(StrBytes::from_string(before.member_id.clone()))]);
    let (_, response) = connection.call(&leave, 5, Duration::ZERO).await.unwrap();
    assert_eq!(response.error_code, 0);

    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let after = loop {
        let state = member.state();
        if state.member_id != before.member_id && settled(std::slice::from_ref(&state)) {
            break state;
        }
        assert!(Instant::now() < deadline, "{state:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lost: Vec<&RebalanceEvent> = after
        .events
        .iter()
        .skip(before.events.len())
        .filter(|event| matches!(event, RebalanceEvent::Lost { .. }))
        .collect();
    assert_eq!(
        lost,
        [&RebalanceEvent::Lost {
            partitions: all_partitions().into_iter().collect()
        }]
    );
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarting_in_time_gets_its_partitions_back_without_a_rebalance() {
    let (_dir, broker) = setup().await;
    let address = broker.address();
    // The static member joins first, so it leads: its restart takes the KIP-814 path (a
    // returning leader of a stable group must not reassign).
    let first = Member::start(&address, cooperative_config("static", Some("worker-1"))).await;
    wait_settled(&[&first]).await;
    let dynamic = Member::start(&address, cooperative_config("static", None)).await;
    let before = wait_settled(&[&dynamic, &first]).await;
    let generation = before[0].generation;
    let dynamic_mark = before[0].events.len();

    // Closing a static member sends no LeaveGroup: it stays in the group, its partitions wait.
    first.stop().await;
    let client = Client::connect(ClientConfig::new([address.clone()]))
        .await
        .unwrap();
    let description = group::describe_group(&client, "static").await.unwrap();
    assert_eq!(description.members.len(), 2, "{description:?}");
    assert_eq!(description.state, "Stable");

    let restarted = Member::start(&address, cooperative_config("static", Some("worker-1"))).await;
    let after = wait_settled(&[&dynamic, &restarted]).await;
    assert_eq!(after[1].generation, generation, "{before:#?} {after:#?}");
    assert_eq!(after[1].owned, before[1].owned);
    // Still no rebalance a moment later, and the other member never noticed.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let later = [dynamic.state(), restarted.state()];
    assert_eq!(later[0].generation, generation);
    assert_eq!(later[1].generation, generation);
    assert_eq!(
        later[0].events.len(),
        dynamic_mark,
        "{:#?}",
        later[0].events
    );
    restarted.stop().await;
    dynamic.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_static_member_fences_the_first() {
    let (_dir, broker) = setup().await;
    let address = broker.address();
    let first = Member::start(&address, cooperative_config("dup", Some("worker-1"))).await;
    wait_settled(&[&first]).await;
    let second = Member::start(&address, cooperative_config("dup", Some("worker-1"))).await;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let (message, fenced) = loop {
        if let Some(error) = first.state().error {
            break error;
        }
        assert!(Instant::now() < deadline, "the first member was not fenced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(fenced, "{message}");
    assert!(
        message.contains("group.instance.id `worker-1`"),
        "{message}"
    );
    assert!(message.contains("fenced"), "{message}");
    tokio::time::timeout(SETTLE_TIMEOUT, first.task)
        .await
        .unwrap()
        .unwrap();
    let state = wait_settled(&[&second]).await;
    assert_eq!(state[0].owned, all_partitions());
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_picks_a_protocol_every_member_supports() {
    let (_dir, broker) = setup().await;
    let address = broker.address();
    // KIP-429's rolling upgrade: an eager member that also offers cooperative-sticky and a
    // cooperative-only member agree on cooperative-sticky.
    let mut upgrading = cooperative_config("upgrade", None);
    upgrading.assignors = vec![
        assignor::RANGE.to_string(),
        assignor::COOPERATIVE_STICKY.to_string(),
    ];
    assert_eq!(
        upgrading.rebalance_protocol(),
        group::RebalanceProtocol::Eager
    );
    let eager = Member::start(&address, upgrading).await;
    wait_settled(&[&eager]).await;
    let cooperative = Member::start(&address, cooperative_config("upgrade", None)).await;
    wait_settled(&[&eager, &cooperative]).await;
    let client = Client::connect(ClientConfig::new([address.clone()]))
        .await
        .unwrap();
    let description = group::describe_group(&client, "upgrade").await.unwrap();
    assert_eq!(description.protocol, "cooperative-sticky");

    // A member with no protocol in common is refused, and the group carries on.
    let mut range_only = cooperative_config("upgrade", None);
    range_only.assignors = vec![assignor::ROUND_ROBIN.to_string()];
    let refused = Member::start(&address, range_only).await;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let message = loop {
        if let Some((message, _)) = refused.state().error {
            break message;
        }
        assert!(Instant::now() < deadline, "the odd member was not refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(message.contains("inconsistent group protocol"), "{message}");
    wait_settled(&[&eager, &cooperative]).await;
    cooperative.stop().await;
    eager.stop().await;
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn python() -> Option<PathBuf> {
    let python = std::env::var_os("QUILL_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/compat-venv/bin/python"));
    python.exists().then_some(python)
}

/// The librdkafka member: its output lines on a channel; killed on drop.
struct LibrdkafkaMember {
    child: Child,
    lines: mpsc::Receiver<String>,
    stop_file: PathBuf,
    owned: BTreeSet<TopicPartition>,
    revoked: Vec<BTreeSet<TopicPartition>>,
}

impl Drop for LibrdkafkaMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Partitions as the script prints them: `coop-0,coop-3` (empty for none).
fn parse_partitions(list: &str) -> BTreeSet<TopicPartition> {
    list.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| {
            let (topic, partition) = name.rsplit_once('-').unwrap();
            TopicPartition::new(topic, partition.parse().unwrap())
        })
        .collect()
}

impl LibrdkafkaMember {
    fn start(python: &Path, address: &str, group: &str, dir: &Path) -> LibrdkafkaMember {
        let stop_file = dir.join(format!("stop-{group}"));
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cooperative/librdkafka_member.py");
        let mut child = Command::new(python)
            .arg(script)
            .args([address, group, TOPIC])
            .arg(&stop_file)
            .arg("90")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        LibrdkafkaMember {
            child,
            lines,
            stop_file,
            owned: BTreeSet::new(),
            revoked: Vec::new(),
        }
    }

    /// Reads what the script printed so far.
    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            if let Some(list) = line.strip_prefix("OWNED ") {
                self.owned = parse_partitions(list);
            } else if let Some(list) = line.strip_prefix("REVOKED ") {
                self.revoked.push(parse_partitions(list));
            } else if line == "OWNED" {
                self.owned.clear();
            } else {
                assert!(
                    !line.starts_with("ERROR") && !line.starts_with("LOST"),
                    "{line}"
                );
            }
        }
    }

    fn stop(self) {
        std::fs::write(&self.stop_file, b"").unwrap();
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line == "CLOSED" => return,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            assert!(
                Instant::now() < deadline,
                "the librdkafka member did not close"
            );
        }
    }
}

/// Waits until the librdkafka member and the quill-client member split the topic 2/2.
async fn wait_split(librdkafka: &mut LibrdkafkaMember, quill: &Member) -> MemberState {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        librdkafka.drain();
        let state = quill.state();
        let union: BTreeSet<TopicPartition> =
            state.owned.union(&librdkafka.owned).cloned().collect();
        if state.owned.len() == 2 && librdkafka.owned.len() == 2 && union == all_partitions() {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "no 2/2 split: librdkafka {:?}, quill {state:#?}",
            librdkafka.owned
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_owns_all(quill: &Member) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while quill.state().owned != all_partitions() {
        assert!(Instant::now() < deadline, "{:#?}", quill.state());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_librdkafka_owns_all(librdkafka: &mut LibrdkafkaMember) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        librdkafka.drain();
        if librdkafka.owned == all_partitions() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "librdkafka owns {:?}",
            librdkafka.owned
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_and_quill_client_share_a_cooperative_group() {
    let Some(python) = python() else {
        eprintln!("skipped: no Python with confluent-kafka (run scripts/install-test-deps.sh)");
        return;
    };
    let (dir, broker) = setup().await;
    let address = broker.address();
    let client = Client::connect(ClientConfig::new([address.clone()]))
        .await
        .unwrap();

    // librdkafka leads: it reads our subscription (owned partitions included) and we read its
    // assignment.
    let mut librdkafka = LibrdkafkaMember::start(&python, &address, "mixed-l", dir.path());
    wait_librdkafka_owns_all(&mut librdkafka).await;
    let quill = Member::start(&address, cooperative_config("mixed-l", None)).await;
    let quill_state = wait_split(&mut librdkafka, &quill).await;
    let description = group::describe_group(&client, "mixed-l").await.unwrap();
    assert_eq!(description.protocol, "cooperative-sticky");
    for revoked in &librdkafka.revoked {
        assert!(revoked.is_subset(&quill_state.owned), "{revoked:?}");
    }
    quill.stop().await;
    wait_librdkafka_owns_all(&mut librdkafka).await;
    librdkafka.stop();

    // quill-client leads: librdkafka reads our assignment, we read its owned partitions.
    let quill = Member::start(&address, cooperative_config("mixed-q", None)).await;
    wait_owns_all(&quill).await;
    let mark = quill.state().events.len();
    let mut librdkafka = LibrdkafkaMember::start(&python, &address, "mixed-q", dir.path());
    let quill_state = wait_split(&mut librdkafka, &quill).await;
    assert_eq!(taken_away(&quill_state, mark), librdkafka.owned);
    let description = group::describe_group(&client, "mixed-q").await.unwrap();
    assert_eq!(description.protocol, "cooperative-sticky");
    assert_eq!(description.members.len(), 2);
    librdkafka.stop();
    wait_owns_all(&quill).await;
    quill.stop().await;
}
