//! Issue 13: several `quill` processes on loopback form one cluster through the Raft metadata
//! quorum (every node broker + controller). Partitions spread over the brokers, any broker
//! answers Metadata for the whole cluster and forwards metadata changes to the active
//! controller, real clients (kcat, confluent-kafka) use it from one bootstrap address, and
//! killing the active controller elects another while changes continue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    compat_python, create_topic_request, run_bounded, wait_until, workspace_root, BrokerProcess,
    TestClient,
};
use kafka_protocol::messages::{CreateTopicsResponse, MetadataRequest, MetadataResponse};

const CLUSTER_ID: &str = "quill-cluster-test";
/// Elections, registrations and forwarded changes on a loaded 2-core machine.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(60);

/// A cluster of `quill` processes on loopback; every process is killed on drop.
struct Cluster {
    nodes: BTreeMap<i32, BrokerProcess>,
    /// `controller.quorum.voters` of the cluster.
    voters: String,
    _root: tempfile::TempDir,
}

/// Free loopback ports for the controller listeners (they must be known before any node starts,
/// because every node's `controller.quorum.voters` lists them all).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}

impl Cluster {
    fn start(size: i32, extra_args: &[&str]) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let ports = free_ports(usize::try_from(size).unwrap());
        let voters = (1..=size)
            .zip(&ports)
            .map(|(id, port)| format!("{id}@127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = BTreeMap::new();
        for node_id in 1..=size {
            let node_id_text = node_id.to_string();
            let voters_setting = format!("controller.quorum.voters={voters}");
            let cluster_setting = format!("cluster.id={CLUSTER_ID}");
            let mut args = vec![
                "--node-id",
                &node_id_text,
                "--set",
                &voters_setting,
                "--set",
                &cluster_setting,
                "--set",
                "controller.quorum.election.timeout.ms=500",
            ];
            args.extend_from_slice(extra_args);
            let data_dir = root.path().join(format!("node-{node_id}"));
            nodes.insert(node_id, BrokerProcess::start(&data_dir, &args));
        }
        let cluster = Cluster {
            nodes,
            voters,
            _root: root,
        };
        cluster.wait_for_brokers(size as usize);
        cluster
    }

    fn node(&self, node_id: i32) -> &BrokerProcess {
        &self.nodes[&node_id]
    }

    fn node_mut(&mut self, node_id: i32) -> &mut BrokerProcess {
        self.nodes.get_mut(&node_id).unwrap()
    }

    fn bootstrap(&self, node_id: i32) -> String {
        self.node(node_id).address()
    }

    /// Every node lists `count` registered brokers.
    fn wait_for_brokers(&self, count: usize) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        for (node_id, node) in &self.nodes {
            while metadata(&node.address(), &[]).brokers.len() != count {
                assert!(
                    Instant::now() < deadline,
                    "node {node_id} never listed {count} brokers:\n{}",
                    self.logs()
                );
                std::thread::sleep(common::CONDITION_POLL_INTERVAL);
            }
        }
    }

    fn controller(&self, asked: i32) -> i32 {
        metadata(&self.bootstrap(asked), &[]).controller_id.0
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|(id, node)| format!("--- node {id} ---\n{}", node.log_text()))
            .collect()
    }
}

fn metadata(address: &str, topics: &[&str]) -> MetadataResponse {
    let mut client = TestClient::connect(address);
    let request = if topics.is_empty() {
        MetadataRequest::default().with_topics(None)
    } else {
        MetadataRequest::default().with_topics(Some(
            topics
                .iter()
                .map(|name| {
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(common::topic_name(name)))
                })
                .collect(),
        ))
    }
    .with_allow_auto_topic_creation(false);
    client.call(&request, 9)
}

fn create_topic(address: &str, name: &str, partitions: i32) -> CreateTopicsResponse {
    let mut client = TestClient::connect(address);
    client.call(&create_topic_request(name, partitions, 1, &[]), 5)
}

fn leaders(address: &str, topic: &str) -> Vec<i32> {
    let response = metadata(address, &[topic]);
    let mut partitions: Vec<(i32, i32)> = response.topics[0]
        .partitions
        .iter()
        .map(|partition| (partition.partition_index, partition.leader_id.0))
        .collect();
    partitions.sort();
    partitions.into_iter().map(|(_, leader)| leader).collect()
}

fn cluster_client(args: &[&str]) -> Command {
    let mut command = Command::new(compat_python());
    command
        .arg(workspace_root().join("tests/compat/cluster/clients.py"))
        .args(args);
    command
}

#[test]
fn three_brokers_share_partitions_and_clients_use_them_from_one_address() {
    let cluster = Cluster::start(3, &[]);
    // CreateTopics on a broker that may not be the controller: forwarded to it.
    let follower = (1..=3).find(|id| *id != cluster.controller(1)).unwrap();
    let created = create_topic(&cluster.bootstrap(follower), "spread", 6);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    // Round-robin placement over the three brokers; every broker answers alike at once (the
    // forwarded change returns only once applied on the broker that forwarded it).
    assert_eq!(
        leaders(&cluster.bootstrap(follower), "spread"),
        vec![1, 2, 3, 1, 2, 3]
    );
    for node_id in 1..=3 {
        wait_until("every broker to see the topic", CLUSTER_TIMEOUT, || {
            leaders(&cluster.bootstrap(node_id), "spread") == vec![1, 2, 3, 1, 2, 3]
        });
    }
    // A broker that does not lead a partition says so, so clients refresh and go to the leader.
    let mut client = cluster.node(2).connect();
    let produced = client.produce("spread", 0, &["misdirected"]);
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code, 6,
        "NOT_LEADER_OR_FOLLOWER"
    );
    assert_eq!(
        client.produce("spread", 1, &["led here"]).responses[0].partition_responses[0].error_code,
        0
    );
    // KIP-951: Produce v10+ names the current leader and carries its endpoint.
    let misdirected = common::produce_request("spread", 0, common::record_batch(&["x"], 0), -1);
    let answered = client.call(&misdirected, 10);
    let partition = &answered.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 6);
    assert_eq!(partition.current_leader.leader_id.0, 1, "{answered:?}");
    assert_eq!(answered.node_endpoints.len(), 1, "{answered:?}");
    assert_eq!(
        answered.node_endpoints[0].port,
        i32::from(cluster.node(1).port)
    );
    // A Fetch with a stale or a future leader epoch is refused as Kafka does.
    let epoch = metadata(&cluster.bootstrap(2), &["spread"]).topics[0]
        .partitions
        .iter()
        .find(|p| p.partition_index == 1)
        .unwrap()
        .leader_epoch;
    for (requested, expected) in [(epoch + 1, 75), (epoch, 0)] {
        let mut fetch = common::fetch_request("spread", 1, 0, 0);
        fetch.topics[0].partitions[0].current_leader_epoch = requested;
        let fetched = client.call(&fetch, 12);
        assert_eq!(
            fetched.responses[0].partitions[0].error_code, expected,
            "epoch {requested} against {epoch}"
        );
    }
    // Replication needs the replication issue: more than one replica is refused, clearly.
    let refused = {
        let mut client = cluster.node(1).connect();
        client.call(&create_topic_request("replicated", 3, 2, &[]), 5)
    };
    assert_eq!(refused.topics[0].error_code, 38, "{refused:?}");

    // Real clients, bootstrapped from one broker, reach every partition's leader.
    let input: String = (0..60).map(|n| format!("k{}:v{n}\n", n % 10)).collect();
    run_bounded(
        "kcat produce",
        Command::new("kcat").args(["-b", &cluster.bootstrap(3), "-t", "spread", "-P", "-K:"]),
        Some(&input),
    );
    let consumed = run_bounded(
        "kcat consume",
        Command::new("kcat").args([
            "-b",
            &cluster.bootstrap(1),
            "-t",
            "spread",
            "-C",
            "-e",
            "-q",
            "-f",
            "%s\n",
        ]),
        None,
    );
    let values = String::from_utf8_lossy(&consumed.stdout);
    assert_eq!(
        values.lines().filter(|line| line.starts_with('v')).count(),
        60,
        "{values}"
    );

    let created = create_topic(&cluster.bootstrap(1), "grouped", 6);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    run_bounded(
        "confluent-kafka produce",
        &mut cluster_client(&["produce", &cluster.bootstrap(2), "grouped", "12", "25"]),
        None,
    );
    run_bounded(
        "confluent-kafka group",
        &mut cluster_client(&[
            "consume",
            &cluster.bootstrap(3),
            "cluster-group",
            "grouped",
            "12",
            "25",
        ]),
        None,
    );
    // The group's offsets live where its __consumer_offsets partition's leader is: on every
    // broker, by the placement, for 50 partitions over 3 brokers.
    let offsets_leaders = leaders(&cluster.bootstrap(1), "__consumer_offsets");
    for node_id in 1..=3 {
        assert!(offsets_leaders.contains(&node_id), "{offsets_leaders:?}");
    }
}

#[test]
fn killing_the_active_controller_elects_another_and_changes_continue() {
    let mut cluster = Cluster::start(
        3,
        &[
            "--set",
            "broker.session.timeout.ms=1500",
            "--set",
            "broker.heartbeat.interval.ms=200",
        ],
    );
    let created = create_topic(&cluster.bootstrap(1), "before", 3);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let controller = cluster.controller(1);
    cluster.node_mut(controller).stop_with("KILL");
    let survivor = (1..=3).find(|id| *id != controller).unwrap();

    // Asked while the quorum elects: the change waits for the new controller, then commits.
    let created = create_topic(&cluster.bootstrap(survivor), "after", 3);
    assert_eq!(
        created.topics[0].error_code,
        0,
        "{created:?}\n{}",
        cluster.logs()
    );
    let new_controller = cluster.controller(survivor);
    assert_ne!(new_controller, controller);
    for node_id in (1..=3).filter(|id| *id != controller) {
        wait_until("survivors to see the new topic", CLUSTER_TIMEOUT, || {
            metadata(&cluster.bootstrap(node_id), &["after"]).topics[0].error_code == 0
        });
    }

    // The killed node comes back, catches up from the quorum and serves what it missed.
    cluster.node_mut(controller).restart();
    wait_until("the restarted node to catch up", CLUSTER_TIMEOUT, || {
        let response = metadata(&cluster.bootstrap(controller), &["after"]);
        response.topics[0].error_code == 0 && response.brokers.len() == 3
    });
    // (If its session expired meanwhile, it was fenced and leads again once unfenced.)
    wait_until(
        "the restarted node to lead its partition",
        CLUSTER_TIMEOUT,
        || leaders(&cluster.bootstrap(controller), "before") == vec![1, 2, 3],
    );
    let leaders = leaders(&cluster.bootstrap(controller), "before");
    // Its partitions of the earlier topic are served again (their logs survived the kill).
    let partition = leaders
        .iter()
        .position(|leader| *leader == controller)
        .unwrap();
    // Restarted as a new process (a new incarnation), it serves once its registration is
    // accepted: after its previous incarnation's session expired and it was fenced.
    let mut client = cluster.node(controller).connect();
    wait_until(
        "the restarted node to serve its partition",
        CLUSTER_TIMEOUT,
        || {
            let produced = client.produce("before", i32::try_from(partition).unwrap(), &["again"]);
            produced.responses[0].partition_responses[0].error_code == 0
        },
    );
}

#[test]
fn concurrent_creations_of_one_name_on_different_brokers_let_exactly_one_win() {
    let cluster = Cluster::start(3, &[]);
    for round in 0..3 {
        let name = format!("race-{round}");
        let codes: Vec<i16> = std::thread::scope(|scope| {
            let racers: Vec<_> = (1..=3)
                .map(|node_id| {
                    let address = cluster.bootstrap(node_id);
                    let name = name.clone();
                    scope.spawn(move || create_topic(&address, &name, 2).topics[0].error_code)
                })
                .collect();
            racers
                .into_iter()
                .map(|racer| racer.join().unwrap())
                .collect()
        });
        let mut sorted = codes.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 36, 36], "round {round}: {codes:?}");
    }
}

#[test]
fn misconfigured_nodes_refuse_to_start_with_one_clear_sentence() {
    let root = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let voters = format!(
        "controller.quorum.voters=1@127.0.0.1:{},2@127.0.0.1:{}",
        ports[0], ports[1]
    );
    let refuse = |args: &[&str], expected: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_quill"))
            .args(["broker", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(root.path().join("refused"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} started");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    };
    refuse(
        &["--node-id", "3", "--set", &voters, "--set", "cluster.id=c"],
        "node.id 3 is not in controller.quorum.voters",
    );
    refuse(&["--node-id", "1", "--set", &voters], "needs cluster.id");
    refuse(
        &["--set", "process.roles=controller"],
        "controller-only nodes are not supported yet",
    );
    refuse(
        &["--set", "process.roles=broker"],
        "process.roles=broker needs controller.quorum.voters",
    );
    refuse(
        &[
            "--node-id",
            "3",
            "--set",
            "process.roles=broker",
            "--set",
            &voters,
            "--set",
            "cluster.id=c",
        ],
        "needs a CONTROLLER://host:port entry in listeners",
    );
    refuse(
        &["--set", "controller.quorum.voters=1@0.0.0.0:9093"],
        "not routeable",
    );

    // A single node's data directory cannot silently become one voter of a new cluster.
    let single = root.path().join("single");
    let mut broker = BrokerProcess::start(&single, &[]);
    broker.connect().create_topic("kept", 1);
    assert_eq!(broker.stop_with("TERM"), Some(0));
    let output = Command::new(env!("CARGO_BIN_EXE_quill"))
        .args(["broker", "--listen", "127.0.0.1:0", "--node-id", "1"])
        .arg("--data-dir")
        .arg(&single)
        .args(["--set", &voters])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("changing the voter set is not supported yet"),
        "{stderr}"
    );
}

fn partition_state(address: &str, topic: &str, partition: usize) -> (i16, i32, i32) {
    let response = metadata(address, &[topic]);
    let mut partitions = response.topics[0].partitions.clone();
    partitions.sort_by_key(|p| p.partition_index);
    let state = &partitions[partition];
    (state.error_code, state.leader_id.0, state.leader_epoch)
}

fn listed_brokers(address: &str) -> Vec<i32> {
    let mut brokers: Vec<i32> = metadata(address, &[])
        .brokers
        .iter()
        .map(|broker| broker.node_id.0)
        .collect();
    brokers.sort();
    brokers
}

#[test]
fn a_broker_that_stops_is_fenced_and_leads_again_when_it_returns() {
    let mut cluster = Cluster::start(
        3,
        &[
            "--set",
            "broker.session.timeout.ms=1500",
            "--set",
            "broker.heartbeat.interval.ms=200",
        ],
    );
    let created = create_topic(&cluster.bootstrap(1), "fenced", 3);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let controller = cluster.controller(1);
    wait_until("the controller to serve the topic", CLUSTER_TIMEOUT, || {
        metadata(&cluster.bootstrap(controller), &["fenced"]).topics[0]
            .partitions
            .len()
            == 3
    });
    let mut others = (1..=3).filter(|id| *id != controller);
    let (victim, graceful) = (others.next().unwrap(), others.next().unwrap());
    let victim_partition = usize::try_from(victim - 1).unwrap();
    let (_, leader, epoch_before) =
        partition_state(&cluster.bootstrap(controller), "fenced", victim_partition);
    assert_eq!(leader, victim);

    // kill -9: its session expires, it leaves Metadata and its partition has no leader.
    cluster.node_mut(victim).stop_with("KILL");
    let asked = cluster.bootstrap(controller);
    wait_until("the killed broker to be fenced", CLUSTER_TIMEOUT, || {
        !listed_brokers(&asked).contains(&victim)
            && partition_state(&asked, "fenced", victim_partition).1 == -1
    });
    let (code, _, _) = partition_state(&asked, "fenced", victim_partition);
    assert_eq!(code, 5, "LEADER_NOT_AVAILABLE");

    // It returns: heartbeats unfence it and it leads its partition again, at a newer epoch.
    cluster.node_mut(victim).restart();
    wait_until(
        "the restarted broker to lead again",
        CLUSTER_TIMEOUT,
        || {
            listed_brokers(&asked).contains(&victim)
                && partition_state(&asked, "fenced", victim_partition).1 == victim
        },
    );
    let (_, _, epoch_after) = partition_state(&asked, "fenced", victim_partition);
    assert_eq!(epoch_after, epoch_before + 2, "fenced, then led again");
    let mut client = cluster.node(victim).connect();
    wait_until(
        "the returned broker to serve its partition",
        CLUSTER_TIMEOUT,
        || {
            client
                .produce(
                    "fenced",
                    i32::try_from(victim_partition).unwrap(),
                    &["back"],
                )
                .responses[0]
                .partition_responses[0]
                .error_code
                == 0
        },
    );

    // A client still holding the epoch from before the fencing is told its metadata is stale
    // (once the returned broker itself has applied the new epoch).
    wait_until(
        "the returned broker to apply its new epoch",
        CLUSTER_TIMEOUT,
        || partition_state(&cluster.bootstrap(victim), "fenced", victim_partition).2 == epoch_after,
    );
    let mut stale = common::fetch_request("fenced", i32::try_from(victim_partition).unwrap(), 0, 0);
    stale.topics[0].partitions[0].current_leader_epoch = epoch_before;
    let fetched = client.call(&stale, 12);
    assert_eq!(
        fetched.responses[0].partitions[0].error_code, 74,
        "FENCED_LEADER_EPOCH"
    );

    // SIGTERM: a controlled shutdown fences the broker before it exits.
    assert_eq!(cluster.node_mut(graceful).stop_with("TERM"), Some(0));
    assert!(
        cluster
            .node(graceful)
            .log_text()
            .contains("controlled shutdown: this broker is fenced"),
        "{}",
        cluster.node(graceful).log_text()
    );
    wait_until(
        "the stopped broker to leave Metadata",
        CLUSTER_TIMEOUT,
        || !listed_brokers(&asked).contains(&graceful),
    );
}

fn signal(node: &BrokerProcess, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(node.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Every node's view of the topics and their leaders, as Metadata reports it.
fn topic_view(address: &str) -> Vec<(String, Vec<i32>)> {
    let mut topics: Vec<(String, Vec<i32>)> = metadata(address, &[])
        .topics
        .iter()
        .map(|topic| {
            let mut leaders: Vec<(i32, i32)> = topic
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0))
                .collect();
            leaders.sort();
            (
                topic
                    .name
                    .as_ref()
                    .map(|name| name.0.to_string())
                    .unwrap_or_default(),
                leaders.into_iter().map(|(_, leader)| leader).collect(),
            )
        })
        .collect();
    topics.sort();
    topics
}

#[test]
fn a_paused_controller_is_replaced_and_rejoins_without_diverging() {
    let cluster = Cluster::start(3, &[]);
    let created = create_topic(&cluster.bootstrap(1), "before-pause", 3);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let paused = cluster.controller(1);
    let survivor = (1..=3).find(|id| *id != paused).unwrap();

    // SIGSTOP: the controller neither answers nor knows it stopped leading.
    signal(cluster.node(paused), "STOP");
    let created = create_topic(&cluster.bootstrap(survivor), "during-pause", 3);
    signal(cluster.node(paused), "CONT");
    assert_eq!(
        created.topics[0].error_code,
        0,
        "{created:?}\n{}",
        cluster.logs()
    );
    assert_ne!(cluster.controller(survivor), paused);

    // Resumed, the old controller learns of the new term, follows, and every node converges
    // on the same topics and leaders; a change made through it commits once.
    let created = create_topic(&cluster.bootstrap(paused), "after-pause", 3);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let expected = topic_view(&cluster.bootstrap(survivor));
    for node_id in 1..=3 {
        wait_until(
            &format!("node {node_id} to converge"),
            CLUSTER_TIMEOUT,
            || {
                let view = topic_view(&cluster.bootstrap(node_id));
                view.iter().any(|(name, _)| name == "after-pause")
                    && view
                        .iter()
                        .filter(|(name, _)| name != "after-pause")
                        .eq(expected.iter().filter(|(name, _)| name != "after-pause"))
            },
        );
    }
    let views: Vec<_> = (1..=3)
        .map(|id| topic_view(&cluster.bootstrap(id)))
        .collect();
    assert!(views.windows(2).all(|pair| pair[0] == pair[1]), "{views:?}");
}

#[test]
fn a_broker_only_node_observes_the_quorum_and_takes_partitions() {
    const SESSION: &str = "broker.session.timeout.ms=1500";
    const HEARTBEAT: &str = "broker.heartbeat.interval.ms=200";
    let cluster = Cluster::start(3, &["--set", SESSION, "--set", HEARTBEAT]);
    // Node 4 is no voter: it joins as an observer through its CONTROLLER listener.
    let voters = cluster.voters.clone();
    let observer_port = free_ports(1)[0];
    let listeners =
        format!("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{observer_port}");
    let observer_dir = cluster._root.path().join("node-4");
    let voters_setting = format!("controller.quorum.voters={voters}");
    let cluster_setting = format!("cluster.id={CLUSTER_ID}");
    let observer = BrokerProcess::start(
        &observer_dir,
        &[
            "--node-id",
            "4",
            "--set",
            "process.roles=broker",
            "--set",
            &listeners,
            "--set",
            &voters_setting,
            "--set",
            &cluster_setting,
            "--set",
            SESSION,
            "--set",
            HEARTBEAT,
        ],
    );
    for address in [cluster.bootstrap(1), observer.address()] {
        wait_until("four brokers", CLUSTER_TIMEOUT, || {
            listed_brokers(&address) == vec![1, 2, 3, 4]
        });
    }
    // Forwarded from the observer; placement includes it; it serves its partition.
    let created = create_topic(&observer.address(), "with-observer", 4);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    assert_eq!(
        leaders(&observer.address(), "with-observer"),
        vec![1, 2, 3, 4]
    );
    let mut client = observer.connect();
    let produced = client.produce("with-observer", 3, &["on the observer"]);
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code, 0,
        "{produced:?}"
    );
    // Its heartbeats count like a voter's: after more than a session it is still unfenced.
    // (A fixed wait on purpose: what is tested is that nothing happens while time passes.)
    std::thread::sleep(Duration::from_millis(3 * 1500));
    assert!(listed_brokers(&cluster.bootstrap(1)).contains(&4));
    assert_eq!(
        leaders(&cluster.bootstrap(1), "with-observer"),
        vec![1, 2, 3, 4]
    );
    // It does not vote: the voters still elect among themselves.
    assert!((1..=3).contains(&cluster.controller(1)));
}
