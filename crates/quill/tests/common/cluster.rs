//! A cluster of `quill` processes on loopback for the cluster tests (`cluster.rs`,
//! `cluster_transactions.rs`): each node a voter of one metadata quorum, on free ports, with
//! its own data directory; every process is killed on drop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
use kafka_protocol::messages::{BrokerId, CreateTopicsResponse, MetadataRequest, MetadataResponse};

use crate::common::{self, create_topic_request, BrokerProcess, TestClient};

pub const CLUSTER_ID: &str = "quill-cluster-test";
/// Elections, registrations and forwarded changes on a loaded 2-core machine.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(60);

/// A cluster of `quill` processes on loopback; every process is killed on drop.
pub struct Cluster {
    pub nodes: BTreeMap<i32, BrokerProcess>,
    /// `controller.quorum.voters` of the cluster.
    pub voters: String,
    /// Each node's controller listener port (its `controller.quorum.voters` entry).
    pub controller_ports: BTreeMap<i32, u16>,
    pub root: tempfile::TempDir,
}

/// Free loopback ports for the controller listeners (they must be known before any node starts,
/// because every node's `controller.quorum.voters` lists them all).
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}

/// Where one node runs: the command it runs under and the addresses its listeners bind.
pub struct Placement {
    /// A command prefix such as `ip netns exec <namespace>`; empty to run the broker directly.
    pub launcher: Vec<String>,
    pub host: String,
    /// The client listener's port (0: a free one).
    pub client_port: u16,
    /// The controller listener's port (its `controller.quorum.voters` entry).
    pub controller_port: u16,
}

impl Cluster {
    /// `size` nodes on loopback, on free ports.
    pub fn start(size: i32, extra_args: &[&str]) -> Cluster {
        let ports = free_ports(usize::try_from(size).unwrap());
        Cluster::start_placed(size, extra_args, |node_id| Placement {
            launcher: Vec::new(),
            host: "127.0.0.1".to_string(),
            client_port: 0,
            controller_port: ports[usize::try_from(node_id - 1).unwrap()],
        })
    }

    /// `size` nodes, each where `place` says (for example each in a network namespace).
    pub fn start_placed(
        size: i32,
        extra_args: &[&str],
        place: impl Fn(i32) -> Placement,
    ) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let placements: BTreeMap<i32, Placement> = (1..=size)
            .map(|node_id| (node_id, place(node_id)))
            .collect();
        let voters = placements
            .iter()
            .map(|(id, placement)| format!("{id}@{}:{}", placement.host, placement.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = BTreeMap::new();
        for (node_id, placement) in &placements {
            let mut args: Vec<String> = [
                "--node-id".to_string(),
                node_id.to_string(),
                "--set".to_string(),
                format!("controller.quorum.voters={voters}"),
                "--set".to_string(),
                format!("cluster.id={CLUSTER_ID}"),
                // Kafka's default: an election 0.75–1 s after the leader goes silent, with
                // room for the stalls of debug builds on a loaded machine.
                "--set".to_string(),
                "controller.quorum.election.timeout.ms=1000".to_string(),
            ]
            .into();
            args.extend(extra_args.iter().map(|arg| arg.to_string()));
            let data_dir = root.path().join(format!("node-{node_id}"));
            // QUILL_TEST_NODE_LOG=<filter> gives the nodes that log filter (QUILL_LOG), to
            // see what a failing cluster test's nodes did (e.g. `info,openraft=info`).
            let envs: Vec<(String, String)> = std::env::var("QUILL_TEST_NODE_LOG")
                .map(|filter| vec![("QUILL_LOG".to_string(), filter)])
                .unwrap_or_default();
            let node = BrokerProcess::start_under(
                &placement.launcher,
                &placement.host,
                placement.client_port,
                &data_dir,
                &args,
                &envs,
            );
            nodes.insert(*node_id, node);
        }
        let controller_ports = placements
            .iter()
            .map(|(id, placement)| (*id, placement.controller_port))
            .collect();
        let cluster = Cluster {
            nodes,
            voters,
            controller_ports,
            root,
        };
        cluster.wait_for_brokers(size as usize);
        cluster
    }

    pub fn node(&self, node_id: i32) -> &BrokerProcess {
        &self.nodes[&node_id]
    }

    pub fn node_mut(&mut self, node_id: i32) -> &mut BrokerProcess {
        self.nodes.get_mut(&node_id).unwrap()
    }

    pub fn bootstrap(&self, node_id: i32) -> String {
        self.node(node_id).address()
    }

    /// Every node lists `count` registered brokers.
    pub fn wait_for_brokers(&self, count: usize) {
        for (node_id, node) in &self.nodes {
            common::wait_until_explained(
                CLUSTER_TIMEOUT,
                || metadata(&node.address(), &[]).brokers.len() == count,
                || {
                    format!(
                        "node {node_id} never listed {count} brokers:\n{}",
                        self.logs()
                    )
                },
            );
        }
    }

    pub fn controller(&self, asked: i32) -> i32 {
        metadata(&self.bootstrap(asked), &[]).controller_id.0
    }

    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|(id, node)| format!("--- node {id} ---\n{}", node.log_text()))
            .collect()
    }
}

pub fn metadata(address: &str, topics: &[&str]) -> MetadataResponse {
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

/// Creates a one-replica topic laid out round-robin over the brokers `address` lists (partition
/// `p` on the `p % n`-th broker by id) with a manual assignment, so tests know who leads what.
/// Automatic (striped, randomly started) placement: [`create_placed_topic`].
pub fn create_topic(address: &str, name: &str, partitions: i32) -> CreateTopicsResponse {
    let mut brokers: Vec<i32> = metadata(address, &[])
        .brokers
        .iter()
        .map(|broker| broker.node_id.0)
        .collect();
    brokers.sort_unstable();
    let assignments = (0..partitions)
        .map(|partition| {
            let broker = brokers[usize::try_from(partition).unwrap() % brokers.len()];
            CreatableReplicaAssignment::default()
                .with_partition_index(partition)
                .with_broker_ids(vec![BrokerId(broker)])
        })
        .collect();
    let mut request = create_topic_request(name, -1, -1, &[]);
    request.topics[0].assignments = assignments;
    let mut client = TestClient::connect(address);
    client.call(&request, 5)
}

/// Creates a topic placed by the controller (Kafka's striped placement).
pub fn create_placed_topic(
    address: &str,
    name: &str,
    partitions: i32,
    replication_factor: i16,
) -> CreateTopicsResponse {
    let mut client = TestClient::connect(address);
    client.call(
        &create_topic_request(name, partitions, replication_factor, &[]),
        5,
    )
}

pub fn leaders(address: &str, topic: &str) -> Vec<i32> {
    let response = metadata(address, &[topic]);
    let mut partitions: Vec<(i32, i32)> = response.topics[0]
        .partitions
        .iter()
        .map(|partition| (partition.partition_index, partition.leader_id.0))
        .collect();
    partitions.sort();
    partitions.into_iter().map(|(_, leader)| leader).collect()
}
