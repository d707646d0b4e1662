//! A cluster of `quill` processes on loopback for the cluster tests (`cluster.rs`,
//! `cluster_transactions.rs`): each node a voter of one metadata quorum, on free ports, with
//! its own data directory; every process is killed on drop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use kafka_protocol::messages::{CreateTopicsResponse, MetadataRequest, MetadataResponse};

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

impl Cluster {
    pub fn start(size: i32, extra_args: &[&str]) -> Cluster {
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
                // Kafka's default: an election 0.75–1 s after the leader goes silent, with
                // room for the stalls of debug builds on a loaded machine.
                "--set",
                "controller.quorum.election.timeout.ms=1000",
            ];
            args.extend_from_slice(extra_args);
            let data_dir = root.path().join(format!("node-{node_id}"));
            nodes.insert(node_id, BrokerProcess::start(&data_dir, &args));
        }
        let controller_ports = (1..=size).zip(ports).collect();
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

pub fn create_topic(address: &str, name: &str, partitions: i32) -> CreateTopicsResponse {
    let mut client = TestClient::connect(address);
    client.call(&create_topic_request(name, partitions, 1, &[]), 5)
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
