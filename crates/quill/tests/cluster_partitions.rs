//! Issue 13: network partitions between the nodes of a cluster. Every node runs in a network
//! namespace of its own (tests/common/netns.rs), the test process reaches all of them from the
//! root namespace, and faults are made and healed while it watches: the active controller cut
//! off, one link cut (a partial partition), a flapping and lossy link, a broker isolated, a
//! minority and then a majority of five nodes cut off.
//!
//! A checker records the outcome of every CreateTopics the test sends (acknowledged, refused,
//! or unknown: timed out, or an error that leaves the change possibly committed) and, once the
//! network is healed and every node reports the same image, fails on anything acknowledged
//! that is missing, anything refused that exists, a topic nobody asked for, or a topic whose
//! partitions differ from the request; nodes that never converge fail the wait.
//!
//! These tests need root (network namespaces), as CI has; without it they fail saying so.
//! `QUILL_NEMESIS_SECONDS=600 cargo test -p quill --test cluster_partitions -- --ignored
//! --nocapture nemesis` runs the randomized run (`QUILL_NEMESIS_SEED` replays one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/netns.rs"]
mod netns;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cluster::CLUSTER_TIMEOUT;
use common::{
    compat_python, create_topic_request, run_bounded, wait_until, wait_until_explained,
    workspace_root, TestClient,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};
use netns::NetCluster;

/// Short sessions, so that fencing happens within the test's patience.
const FAST_SESSIONS: [&str; 4] = [
    "--set",
    "broker.session.timeout.ms=1500",
    "--set",
    "broker.heartbeat.interval.ms=200",
];
/// How long a change asked of a node that cannot reach a majority is waited for before its
/// outcome is called unknown (it must not be acknowledged meanwhile).
const STRANDED_WAIT: Duration = Duration::from_secs(3);
const LEADER_NOT_AVAILABLE: i16 = 5;

// ---- what the nodes say ----

/// One node's image as Metadata (v12, with topic ids) reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NodeView {
    controller: i32,
    brokers: Vec<i32>,
    topics: BTreeMap<String, TopicView>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct TopicView {
    id: uuid::Uuid,
    /// (leader, leader epoch) by partition index.
    partitions: Vec<(i32, i32)>,
}

impl NodeView {
    fn partition(&self, topic: &str, index: usize) -> (i32, i32) {
        self.topics[topic].partitions[index]
    }

    /// The first partition of `topic` that `node` leads (placement decides which).
    fn led_by(&self, topic: &str, node: i32) -> usize {
        let partitions = &self.topics[topic].partitions;
        partitions
            .iter()
            .position(|(leader, _)| *leader == node)
            .unwrap_or_else(|| panic!("node {node} leads no partition of {topic}: {self:?}"))
    }
}

/// Sends `request` and waits at most `timeout` for its answer: `None` if none came.
fn call_within<R: Request>(
    address: &str,
    request: &R,
    version: i16,
    timeout: Duration,
) -> Option<R::Response> {
    let mut client = TestClient::connect(address);
    client.stream.set_read_timeout(Some(timeout)).unwrap();
    let correlation_id = client.send(request, version);
    let mut frame = client.receive_frame().ok()?;
    let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version)).unwrap();
    assert_eq!(header.correlation_id, correlation_id);
    Some(R::Response::decode(&mut frame, version).unwrap())
}

fn view(address: &str) -> NodeView {
    let request = MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false);
    let response: MetadataResponse = TestClient::connect(address).call(&request, 12);
    let mut brokers: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
    brokers.sort();
    let topics = response
        .topics
        .iter()
        .map(|topic| {
            let mut partitions: Vec<(i32, i32, i32)> = topic
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0, p.leader_epoch))
                .collect();
            partitions.sort();
            let name = topic.name.as_ref().map(|n| n.0.to_string()).unwrap();
            let partitions = partitions.into_iter().map(|(_, l, e)| (l, e)).collect();
            (
                name,
                TopicView {
                    id: topic.topic_id,
                    partitions,
                },
            )
        })
        .collect();
    NodeView {
        controller: response.controller_id.0,
        brokers,
        topics,
    }
}

/// Waits until every node reports the same image listing `brokers` and returns it.
fn converged(net: &NetCluster, brokers: &[i32]) -> NodeView {
    let nodes: Vec<i32> = net.cluster.nodes.keys().copied().collect();
    let views = std::cell::RefCell::new(Vec::new());
    wait_until_explained(
        CLUSTER_TIMEOUT,
        || {
            let seen: Vec<NodeView> = nodes.iter().map(|id| view(&net.bootstrap(*id))).collect();
            let same = seen[0].brokers == brokers && seen.windows(2).all(|pair| pair[0] == pair[1]);
            *views.borrow_mut() = seen;
            same
        },
        || {
            format!(
                "the nodes never converged: {:#?}\n{}",
                views.borrow(),
                net.explain()
            )
        },
    );
    views.into_inner().swap_remove(0)
}

// ---- the checker ----

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Acknowledged,
    /// A definite refusal: the topic must not exist.
    Refused(i16),
    /// No answer, or an answer that leaves the change possibly committed.
    Unknown(String),
}

/// Every CreateTopics the test sent, with its outcome.
#[derive(Default)]
struct Checker {
    requests: Mutex<BTreeMap<String, (i32, Outcome)>>,
}

impl Checker {
    /// Creates `name` through `address`, waiting at most `timeout`, and records the outcome.
    fn create(&self, address: &str, name: &str, partitions: i32, timeout: Duration) -> Outcome {
        let request = create_topic_request(name, partitions, 1, &[]);
        let outcome = match call_within(address, &request, 5, timeout) {
            None => Outcome::Unknown("no answer".to_string()),
            Some(response) => classify(response.topics[0].error_code),
        };
        self.record(name, partitions, outcome.clone());
        outcome
    }

    fn record(&self, name: &str, partitions: i32, outcome: Outcome) {
        let previous = self
            .requests
            .lock()
            .unwrap()
            .insert(name.to_string(), (partitions, outcome));
        assert!(previous.is_none(), "{name} asked for twice");
    }

    fn count(&self, wanted: impl Fn(&Outcome) -> bool) -> usize {
        let requests = self.requests.lock().unwrap();
        requests.values().filter(|(_, o)| wanted(o)).count()
    }

    /// Compares every recorded outcome with the converged image.
    fn verify(&self, image: &NodeView) {
        let requests = self.requests.lock().unwrap();
        let mut problems = Vec::new();
        for (name, (partitions, outcome)) in requests.iter() {
            let found = image.topics.get(name);
            match (outcome, found) {
                (Outcome::Acknowledged, None) => {
                    problems.push(format!("{name}: acknowledged, lost"))
                }
                (Outcome::Refused(code), Some(_)) => {
                    problems.push(format!("{name}: refused ({code}) yet created"))
                }
                (_, Some(topic)) if topic.partitions.len() != *partitions as usize => problems
                    .push(format!(
                        "{name}: {} partitions, asked for {partitions}",
                        topic.partitions.len()
                    )),
                _ => {}
            }
        }
        for name in image.topics.keys() {
            if !name.starts_with("__") && !requests.contains_key(name) {
                problems.push(format!("{name}: exists, nobody asked for it"));
            }
        }
        assert!(
            problems.is_empty(),
            "{problems:#?}\noutcomes: {requests:#?}\nimage: {image:#?}"
        );
    }
}

fn classify(error_code: i16) -> Outcome {
    match error_code {
        0 => Outcome::Acknowledged,
        // REQUEST_TIMED_OUT, NOT_CONTROLLER and KAFKA_STORAGE_ERROR leave the entry possibly
        // committed; TOPIC_ALREADY_EXISTS for a name asked for once is this very request's
        // entry, committed by a leader that then changed before answering (the retried copy
        // is refused by the state machine), as a Kafka client retrying after a timeout sees.
        7 | 41 | 56 | 36 => Outcome::Unknown(format!("error {error_code}")),
        code => Outcome::Refused(code),
    }
}

/// What a real admin client reports for a CreateTopics through `bootstrap`
/// (tests/compat/cluster/partition_admin.py).
fn admin_create(client: &str, bootstrap: &str, topic: &str, timeout: Duration) -> String {
    let output = run_bounded(
        &format!("{client} CreateTopics"),
        Command::new(compat_python())
            .arg(workspace_root().join("tests/compat/cluster/partition_admin.py"))
            .args([client, bootstrap, topic, &timeout.as_secs_f64().to_string()]),
        None,
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn others(nodes: impl IntoIterator<Item = i32>, but: &[i32]) -> Vec<i32> {
    nodes.into_iter().filter(|id| !but.contains(id)).collect()
}

// ---- the tests ----

#[test]
fn an_isolated_controller_is_replaced_commits_nothing_and_rejoins_without_diverging() {
    let net = NetCluster::start(3, &FAST_SESSIONS);
    let checker = Checker::default();
    let outcome = checker.create(&net.bootstrap(1), "before", 3, CLUSTER_TIMEOUT);
    assert_eq!(outcome, Outcome::Acknowledged, "{}", net.explain());
    let old = net.cluster.controller(1);
    let majority = others(1..=3, &[old]);
    let before_index = converged(&net, &[1, 2, 3]).led_by("before", old);

    net.network.isolate(old);
    // The majority elects a leader among itself and commits, through either of its nodes.
    for (node, name) in majority.iter().zip(["during-1", "during-2"]) {
        let outcome = checker.create(&net.bootstrap(*node), name, 2, CLUSTER_TIMEOUT);
        assert_eq!(outcome, Outcome::Acknowledged, "{}", net.explain());
    }
    let new = net.cluster.controller(majority[0]);
    assert!(majority.contains(&new), "controller {new}");
    // It fences the broker it cannot hear: that broker's partition has no leader for it.
    wait_until(
        "the majority to fence the isolated broker",
        CLUSTER_TIMEOUT,
        || {
            let seen = view(&net.bootstrap(new));
            !seen.brokers.contains(&old) && seen.partition("before", before_index).0 == -1
        },
    );
    let majority_view = view(&net.bootstrap(new));

    // The isolated node still believes it leads; a change asked of it is never acknowledged.
    let stranded = checker.create(&net.bootstrap(old), "stranded", 1, STRANDED_WAIT);
    assert_ne!(stranded, Outcome::Acknowledged);
    // What real admin clients report (their request times out), bootstrapped from it.
    for client in ["confluent", "kafka-python"] {
        let topic = format!("stranded-{client}");
        let said = admin_create(client, &net.bootstrap(old), &topic, STRANDED_WAIT);
        assert!(said.starts_with("error"), "{client}: {said}");
        checker.record(&topic, 1, Outcome::Unknown(said));
    }
    assert!(!view(&net.bootstrap(old)).topics.contains_key("during-1"));

    net.network.heal();
    // The old controller learns of the newer term and follows; every node converges on the
    // majority's history, the returned broker unfenced.
    let image = converged(&net, &[1, 2, 3]);
    assert_ne!(image.controller, old, "{}", net.explain());
    checker.verify(&image);
    // Nothing the deposed controller decided while cut off was committed after the heal: the
    // brokers that stayed with the majority were never fenced, so their partitions keep
    // their leader and epoch.
    for (name, topic) in &majority_view.topics {
        for (index, (leader, epoch)) in topic.partitions.iter().enumerate() {
            if majority.contains(leader) {
                assert_eq!(
                    image.partition(name, index),
                    (*leader, *epoch),
                    "{name}-{index}\n{}",
                    net.explain()
                );
            }
        }
    }
    // The returned broker leads its partition again, one epoch past its fencing.
    let (leader, epoch) = image.partition("before", before_index);
    assert_eq!(leader, old);
    assert_eq!(epoch, majority_view.partition("before", before_index).1 + 1);
}

#[test]
fn a_partial_partition_and_a_flapping_link_lose_no_acknowledged_change() {
    let net = NetCluster::start(3, &FAST_SESSIONS);
    let checker = Checker::default();
    let controller = net.cluster.controller(1);
    let followers = others(1..=3, &[controller]);
    let (cut_off, bridge) = (followers[0], followers[1]);
    let next_name = std::sync::atomic::AtomicU32::new(0);
    // Changes asked of every node in turn while `faults` runs; returns when it does.
    let run_writes_during = |label: &str, faults: &dyn Fn()| {
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut node = 1;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let n = next_name.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let name = format!("{label}-{n}");
                    checker.create(&net.bootstrap(node), &name, 1, STRANDED_WAIT);
                    node = node % 3 + 1;
                }
            });
            let _stop_writes = StopOnDrop(&done);
            faults();
        });
    };

    // Partial partition: the controller and one follower cannot talk, both reach the third.
    // (The fault schedule is timed: what is tested is what happens while time passes.)
    let counted_packets = std::sync::atomic::AtomicU64::new(0);
    run_writes_during("partial", &|| {
        net.network.cut(controller, cut_off);
        std::thread::sleep(Duration::from_secs(5));
        // The follower between them reaches whichever node leads: its changes commit.
        let outcome = checker.create(
            &net.bootstrap(bridge),
            "partial-bridged",
            1,
            CLUSTER_TIMEOUT,
        );
        assert_eq!(outcome, Outcome::Acknowledged, "{}", net.explain());
        let counted = net.network.dropped_packets(controller, cut_off);
        counted_packets.store(counted, std::sync::atomic::Ordering::Relaxed);
        net.network.heal();
    });
    // The cut was in the data path: the controller kept sending to the follower.
    assert!(
        counted_packets.swap(0, std::sync::atomic::Ordering::Relaxed) > 0,
        "{}",
        net.explain()
    );
    let acknowledged = checker.count(|o| *o == Outcome::Acknowledged);

    // A flapping link: the cut comes and goes every few hundred milliseconds while the
    // controller's other link loses a fifth of its packets and is slow.
    run_writes_during("flapping", &|| {
        net.network.lossy(controller, bridge, 20);
        net.network.slow(controller, bridge, 256);
        for round in 0..12u64 {
            net.network.cut(controller, cut_off);
            std::thread::sleep(Duration::from_millis(200 + 50 * (round % 4)));
            net.network.heal_link(controller, cut_off);
            std::thread::sleep(Duration::from_millis(150 + 70 * (round % 3)));
        }
        let slowed = net.network.throttled_packets(controller, bridge);
        counted_packets.store(slowed, std::sync::atomic::Ordering::Relaxed);
        net.network.heal();
    });
    // The slow link carried the controller's traffic to the bridge.
    assert!(counted_packets.into_inner() > 0, "{}", net.explain());

    let image = converged(&net, &[1, 2, 3]);
    checker.verify(&image);
    // Changes kept being committed through the flapping.
    assert!(
        checker.count(|o| *o == Outcome::Acknowledged) > acknowledged,
        "nothing acknowledged while the link flapped\n{}",
        net.explain()
    );
    // After the heal, a change through any node commits.
    for node in 1..=3 {
        let outcome = checker.create(
            &net.bootstrap(node),
            &format!("after-{node}"),
            1,
            CLUSTER_TIMEOUT,
        );
        assert_eq!(outcome, Outcome::Acknowledged, "{}", net.explain());
    }
    checker.verify(&converged(&net, &[1, 2, 3]));
}

#[test]
fn an_isolated_broker_is_fenced_and_serves_again_after_the_heal() {
    let net = NetCluster::start(3, &FAST_SESSIONS);
    let controller = net.cluster.controller(1);
    let checker = Checker::default();
    let outcome = checker.create(&net.bootstrap(1), "spread", 3, CLUSTER_TIMEOUT);
    assert_eq!(outcome, Outcome::Acknowledged);
    let victim = others(1..=3, &[controller])[0];
    let before = converged(&net, &[1, 2, 3]);
    let index = before.led_by("spread", victim);
    let partition = i32::try_from(index).unwrap();
    let (leader, epoch_before) = before.partition("spread", index);
    assert_eq!(leader, victim);
    let mut client = net.cluster.node(victim).connect();
    let produced = client.produce("spread", partition, &["before"]);
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);

    net.network.isolate(victim);
    // After broker.session.timeout.ms the controller fences it: the other nodes leave it out
    // of Metadata and its partition has no leader.
    let survivors = others(1..=3, &[victim]);
    for node in &survivors {
        wait_until("the isolated broker to be fenced", CLUSTER_TIMEOUT, || {
            let seen = view(&net.bootstrap(*node));
            !seen.brokers.contains(&victim) && seen.partition("spread", index).0 == -1
        });
        let response = cluster::metadata(&net.bootstrap(*node), &["spread"]);
        let state = response.topics[0]
            .partitions
            .iter()
            .find(|p| p.partition_index == partition)
            .unwrap();
        assert_eq!(state.error_code, LEADER_NOT_AVAILABLE);
    }
    // The quorum works on without it.
    let outcome = checker.create(&net.bootstrap(survivors[0]), "without", 2, CLUSTER_TIMEOUT);
    assert_eq!(outcome, Outcome::Acknowledged, "{}", net.explain());
    // Its one-replica partition is only on it: what it takes meanwhile is kept, as on Kafka.
    let produced = client.produce("spread", partition, &["while cut off"]);
    let isolated_code = produced.responses[0].partition_responses[0].error_code;

    net.network.heal();
    // Heard again, it is unfenced and leads its partition at a newer epoch; it serves it.
    let image = converged(&net, &[1, 2, 3]);
    checker.verify(&image);
    let (leader, epoch_after) = image.partition("spread", index);
    assert_eq!(leader, victim);
    assert_eq!(epoch_after, epoch_before + 2, "fenced, then led again");
    wait_until(
        "the returned broker to serve its partition",
        CLUSTER_TIMEOUT,
        || {
            client.produce("spread", partition, &["after"]).responses[0].partition_responses[0]
                .error_code
                == 0
        },
    );
    let fetched = client.fetch("spread", partition, 0);
    let records = fetched.responses[0].partitions[0].records.clone().unwrap();
    let values: Vec<String> = common::decode_values(&records)
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    let mut expected = vec!["before".to_string()];
    if isolated_code == 0 {
        expected.push("while cut off".to_string());
    }
    expected.push("after".to_string());
    assert_eq!(
        values, expected,
        "isolated produce answered {isolated_code}"
    );
}

#[test]
fn five_nodes_keep_working_without_a_minority_and_commit_nothing_without_a_majority() {
    let net = NetCluster::start(5, &FAST_SESSIONS);
    let checker = Checker::default();
    let outcome = checker.create(&net.bootstrap(1), "five", 5, CLUSTER_TIMEOUT);
    assert_eq!(outcome, Outcome::Acknowledged, "{}", net.explain());
    let controller = net.cluster.controller(1);
    let minority = vec![controller, others(1..=5, &[controller])[0]];
    let majority = others(1..=5, &minority);

    // A minority (with the controller) cut off: the three elect and commit through each.
    net.network.split(&minority);
    for node in &majority {
        let name = format!("majority-{node}");
        let outcome = checker.create(&net.bootstrap(*node), &name, 1, CLUSTER_TIMEOUT);
        assert_eq!(outcome, Outcome::Acknowledged, "{}", net.explain());
    }
    for node in &minority {
        let name = format!("minority-{node}");
        let outcome = checker.create(&net.bootstrap(*node), &name, 1, STRANDED_WAIT);
        assert_ne!(
            outcome,
            Outcome::Acknowledged,
            "through minority node {node}"
        );
    }
    net.network.heal();
    let image = converged(&net, &[1, 2, 3, 4, 5]);
    checker.verify(&image);

    // No majority anywhere: three nodes alone, two together. Nothing commits on any node.
    let alone: Vec<i32> = vec![1, 3, 5];
    for node in &alone {
        net.network.isolate(*node);
    }
    let topics_before: Vec<String> = image.topics.keys().cloned().collect();
    std::thread::scope(|scope| {
        for node in 1..=5 {
            let (checker, address) = (&checker, net.bootstrap(node));
            scope.spawn(move || {
                let outcome =
                    checker.create(&address, &format!("no-majority-{node}"), 1, STRANDED_WAIT);
                assert_ne!(outcome, Outcome::Acknowledged, "through node {node}");
            });
        }
    });
    for node in 1..=5 {
        let seen: Vec<String> = view(&net.bootstrap(node)).topics.into_keys().collect();
        assert_eq!(
            seen, topics_before,
            "node {node} committed without a majority"
        );
    }

    net.network.heal();
    let outcome = checker.create(&net.bootstrap(2), "healed", 1, CLUSTER_TIMEOUT);
    assert_eq!(outcome, Outcome::Acknowledged, "{}", net.explain());
    checker.verify(&converged(&net, &[1, 2, 3, 4, 5]));
}

/// Tells writer threads to stop when dropped, also when the thread faulting the network panics
/// (a scope waits for its threads before the panic goes on).
struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A small deterministic generator (xorshift64*), so that a seed replays a nemesis run.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

/// Random partitions and heals on five nodes for `QUILL_NEMESIS_SECONDS` (default 120) while
/// two writers create topics through random nodes; then everything is healed and the checker
/// compares every outcome with the converged image.
#[test]
#[ignore = "long randomized run; see the module doc"]
fn nemesis_random_partitions_never_lose_or_diverge() {
    let seconds: u64 = std::env::var("QUILL_NEMESIS_SECONDS")
        .ok()
        .map_or(120, |value| value.parse().unwrap());
    let seed: u64 = std::env::var("QUILL_NEMESIS_SEED").ok().map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        },
        |value| value.parse().unwrap(),
    );
    // Kafka's default election timeout unless QUILL_NEMESIS_ELECTION_TIMEOUT_MS says otherwise:
    // openraft's AppendEntries deadline is a tenth of it, and at the other tests' 500 ms
    // (50 ms) a loaded machine has been seen to leave the quorum without a working leader for
    // over a minute after the heal (seed 1796471899414528093, 180 s; README's test section).
    let election_timeout_ms: u64 = std::env::var("QUILL_NEMESIS_ELECTION_TIMEOUT_MS")
        .ok()
        .map_or(1000, |value| value.parse().unwrap());
    let settings = [
        format!("controller.quorum.election.timeout.ms={election_timeout_ms}"),
        format!("broker.session.timeout.ms={}", 3 * election_timeout_ms),
        format!(
            "broker.heartbeat.interval.ms={}",
            2 * election_timeout_ms / 5
        ),
    ];
    println!(
        "nemesis: {seconds} s, QUILL_NEMESIS_SEED={seed}, QUILL_NEMESIS_ELECTION_TIMEOUT_MS={election_timeout_ms}"
    );
    let args: Vec<&str> = settings
        .iter()
        .flat_map(|s| ["--set", s.as_str()])
        .collect();
    let net = NetCluster::start(5, &args);
    let checker = Checker::default();
    let done = std::sync::atomic::AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    std::thread::scope(|scope| {
        for writer in 0..2u64 {
            let (checker, net, done) = (&checker, &net, &done);
            scope.spawn(move || {
                let mut random = Random(seed ^ (writer + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let mut n = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let node = i32::try_from(random.below(5)).unwrap() + 1;
                    let partitions = i32::try_from(random.below(3)).unwrap() + 1;
                    let name = format!("w{writer}-{n}");
                    checker.create(&net.bootstrap(node), &name, partitions, STRANDED_WAIT);
                    n += 1;
                }
            });
        }
        let _stop_writes = StopOnDrop(&done);
        let mut random = Random(seed);
        let mut faults = 0;
        while Instant::now() < deadline {
            let node = |random: &mut Random| i32::try_from(random.below(5)).unwrap() + 1;
            match random.below(7) {
                0 => net.network.isolate(node(&mut random)),
                1 => {
                    let (a, b) = (node(&mut random), node(&mut random));
                    net.network.split(&[a, b]);
                }
                2 | 3 => {
                    let (a, b) = (node(&mut random), node(&mut random));
                    if a != b {
                        net.network.cut(a, b);
                    }
                }
                4 => {
                    let (a, b) = (node(&mut random), node(&mut random));
                    if a != b {
                        net.network.heal_link(a, b);
                        net.network
                            .lossy(a, b, 10 + u32::try_from(random.below(50)).unwrap());
                    }
                }
                5 => {
                    let (a, b) = (node(&mut random), node(&mut random));
                    if a != b {
                        net.network.heal_link(a, b);
                        net.network
                            .slow(a, b, 64 + u32::try_from(random.below(512)).unwrap());
                    }
                }
                _ => net.network.heal(),
            }
            faults += 1;
            // The fault schedule: each state holds for a random while.
            std::thread::sleep(Duration::from_millis(200 + random.below(2800)));
        }
        net.network.heal();
        println!("nemesis: {faults} fault changes");
    });
    let image = converged(&net, &[1, 2, 3, 4, 5]);
    checker.verify(&image);
    println!(
        "nemesis: {} acknowledged, {} unknown, {} refused; {} topics in the converged image",
        checker.count(|o| *o == Outcome::Acknowledged),
        checker.count(|o| matches!(o, Outcome::Unknown(_))),
        checker.count(|o| matches!(o, Outcome::Refused(_))),
        image.topics.len()
    );
}
