//! Network partitions for the cluster tests (`cluster_partitions.rs`), made with Linux network
//! namespaces: each node runs (`ip netns exec`) in a namespace of its own whose one interface,
//! `eth0`, is a veth pair's end; the other ends are ports of one bridge in a hub namespace. The
//! test process reaches every node from the root namespace over one more veth pair into the
//! bridge. Addresses are private (10.a.b.0/24, chosen per network so that no route of the
//! machine overlaps it), the node namespaces have no route but their /24 and the root namespace
//! only gains that /24 on the test's own link: no packet leaves the machine.
//!
//! Faults act on each node's egress (a `clsact` qdisc on its `eth0`), one filter per directed
//! link: a cut drops every IPv4 packet the node sends to one peer address, loss drops a random
//! share of them, a slow link queues them behind an HTB class of a small rate. Dropping by
//! destination address on one bridge was chosen over one veth pair per node pair because every
//! node keeps a single address (the one in `controller.quorum.voters`, which all peers and the
//! clients use), a cut is exact and one-directional if wanted, and healing removes one filter.
//!
//! The kernel this runs on lacks netem and the gact (`drop`) action, so the drop is done with
//! what it has: a classic-BPF `cls_bpf` program (IPv4 to that address, and for loss the
//! kernel's per-packet random number below a threshold) whose action redirects the packet to
//! a sink veth pair in the node's namespace, where it is discarded (addressed to another
//! host's MAC). Delay is what a slow link makes: queueing behind a rate-limited class.
//!
//! Every network is removed on drop (also when the test panics): its namespaces are deleted,
//! which destroys their veth pairs, the root namespace's end included. Namespaces left behind
//! by an earlier test process that was killed (their names carry its pid) are removed when
//! the first network of a process is created.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};

use crate::cluster::Placement;

/// Every namespace a test makes is named `quill-net-<pid>-<n>-…`.
pub const NAMESPACE_PREFIX: &str = "quill-net-";
/// The ports a node listens on inside its namespace (each namespace has its own port space).
pub const CLIENT_PORT: u16 = 9092;
pub const CONTROLLER_PORT: u16 = 9093;
/// The peer id of the test process (the root namespace) in fault calls.
pub const CLIENT: i32 = 0;
/// The rate of a node's unthrottled traffic once an HTB root exists on its link.
const UNTHROTTLED_RATE: &str = "10gbit";

static NEXT_NETWORK: AtomicU32 = AtomicU32::new(0);
static REMOVE_LEFTOVERS: Once = Once::new();

/// One network of namespaces for one test; removed on drop.
pub struct Network {
    /// `quill-net-<pid>-<n>`: the prefix of its namespaces.
    name: String,
    /// 10.a.b.0/24.
    subnet: (u8, u8),
    node_ids: Vec<i32>,
    /// The root namespace's end of the test process's veth pair.
    client_link: String,
    faults: Mutex<Faults>,
}

/// The faults in place, per directed link (from, to); `CLIENT` stands for the test process.
#[derive(Default, Debug, Clone)]
struct Faults {
    /// Percent of IPv4 packets dropped (100: cut).
    drop_percent: BTreeMap<(i32, i32), u32>,
    /// Rate limit in kbit/s.
    rate_kbit: BTreeMap<(i32, i32), u32>,
}

impl Network {
    /// Creates a namespace per node and the bridge joining them. Fails the test with a clear
    /// message if namespaces cannot be made (the tests need root, as CI has).
    pub fn create(node_ids: &[i32]) -> Network {
        REMOVE_LEFTOVERS.call_once(remove_leftover_namespaces);
        let pid = std::process::id();
        let sequence = NEXT_NETWORK.fetch_add(1, Ordering::Relaxed);
        let network = Network {
            name: format!("{NAMESPACE_PREFIX}{pid}-{sequence}"),
            subnet: free_subnet(pid, sequence),
            node_ids: node_ids.to_vec(),
            // Interface names are at most 15 bytes: "qn" + pid in hex (≤ 6) + "c" + sequence.
            client_link: format!("qn{pid:x}c{sequence}"),
            faults: Mutex::new(Faults::default()),
        };
        // From here on, whatever was made is removed by `drop` if a step fails.
        network.create_hub();
        for node_id in node_ids {
            network.create_node(*node_id);
        }
        network.connect_client();
        network
    }

    pub fn namespace(&self, node_id: i32) -> String {
        format!("{}-n{node_id}", self.name)
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.name)
    }

    /// The address of `peer` (a node id, or `CLIENT`).
    pub fn address(&self, peer: i32) -> String {
        let (a, b) = self.subnet;
        let host = if peer == CLIENT { 1 } else { 10 + peer };
        format!("10.{a}.{b}.{host}")
    }

    pub fn subnet(&self) -> String {
        let (a, b) = self.subnet;
        format!("10.{a}.{b}.0/24")
    }

    /// Where a cluster node runs: in its namespace, listening on its address.
    pub fn placement(&self, node_id: i32) -> Placement {
        Placement {
            launcher: ["ip", "netns", "exec"]
                .iter()
                .map(|part| part.to_string())
                .chain([self.namespace(node_id)])
                .collect(),
            host: self.address(node_id),
            client_port: CLIENT_PORT,
            controller_port: CONTROLLER_PORT,
        }
    }

    fn create_hub(&self) {
        let hub = self.hub();
        ip_root(&["netns", "add", &hub]);
        ip_in(&hub, &["link", "set", "lo", "up"]);
        ip_in(&hub, &["link", "add", "br0", "type", "bridge"]);
        ip_in(&hub, &["link", "set", "br0", "up"]);
    }

    fn create_node(&self, node_id: i32) {
        let (hub, namespace) = (self.hub(), self.namespace(node_id));
        let port = format!("n{node_id}");
        let address = format!("{}/24", self.address(node_id));
        ip_root(&["netns", "add", &namespace]);
        ip_in(&namespace, &["link", "set", "lo", "up"]);
        ip_in(
            &hub,
            &[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &namespace,
            ],
        );
        ip_in(&hub, &["link", "set", &port, "master", "br0", "up"]);
        ip_in(&namespace, &["addr", "add", &address, "dev", "eth0"]);
        ip_in(&namespace, &["link", "set", "eth0", "up"]);
        // The sink: dropped packets are redirected into `sink` and arrive at `sink-peer`
        // addressed to another host's MAC, where the kernel discards them.
        ip_in(
            &namespace,
            &[
                "link",
                "add",
                "sink",
                "type",
                "veth",
                "peer",
                "name",
                "sink-peer",
            ],
        );
        ip_in(&namespace, &["link", "set", "sink", "up"]);
        ip_in(&namespace, &["link", "set", "sink-peer", "up"]);
        tc_in(&namespace, &["qdisc", "add", "dev", "eth0", "clsact"]);
    }

    fn connect_client(&self) {
        let hub = self.hub();
        let link = &self.client_link;
        let address = format!("{}/24", self.address(CLIENT));
        ip_root(&[
            "link", "add", link, "type", "veth", "peer", "name", "client", "netns", &hub,
        ]);
        ip_in(&hub, &["link", "set", "client", "master", "br0", "up"]);
        ip_root(&["addr", "add", &address, "dev", link]);
        ip_root(&["link", "set", link, "up"]);
    }

    // ---- faults ----

    /// Cuts the link between nodes `a` and `b` in both directions (each still reaches the
    /// others and the test process).
    pub fn cut(&self, a: i32, b: i32) {
        self.drop_share(a, b, 100);
        self.drop_share(b, a, 100);
    }

    /// Drops everything `from` sends to `to` (`to` may be `CLIENT`); the other way still flows.
    pub fn cut_one_way(&self, from: i32, to: i32) {
        self.drop_share(from, to, 100);
    }

    /// Cuts `node` from every other node; the test process still reaches it, as a client on
    /// its side of the partition would.
    pub fn isolate(&self, node: i32) {
        for other in self.node_ids.clone() {
            if other != node {
                self.cut(node, other);
            }
        }
    }

    /// Splits the nodes into `side` and the rest: no link between the two sides.
    pub fn split(&self, side: &[i32]) {
        for a in side {
            for b in self.node_ids.iter().filter(|id| !side.contains(id)) {
                self.cut(*a, *b);
            }
        }
    }

    /// Drops `percent` of the packets between `a` and `b`, each direction on its own.
    pub fn lossy(&self, a: i32, b: i32, percent: u32) {
        self.drop_share(a, b, percent);
        self.drop_share(b, a, percent);
    }

    /// Limits the link between `a` and `b` to `rate_kbit` each way: packets queue (delay)
    /// and, past the queue's length, are dropped.
    pub fn slow(&self, a: i32, b: i32, rate_kbit: u32) {
        self.limit_rate(a, b, rate_kbit);
        self.limit_rate(b, a, rate_kbit);
    }

    /// Removes every fault between `a` and `b`.
    pub fn heal_link(&self, a: i32, b: i32) {
        for (from, to) in [(a, b), (b, a)] {
            self.drop_share(from, to, 0);
            self.limit_rate(from, to, 0);
        }
    }

    /// Removes every fault.
    pub fn heal(&self) {
        let faults = self.faults.lock().unwrap().clone();
        for (from, to) in faults.drop_percent.keys() {
            self.drop_share(*from, *to, 0);
        }
        for (from, to) in faults.rate_kbit.keys() {
            self.limit_rate(*from, *to, 0);
        }
    }

    /// The faults in place, for failure messages.
    pub fn describe_faults(&self) -> String {
        let faults = self.faults.lock().unwrap();
        let name = |peer: i32| {
            if peer == CLIENT {
                "client".to_string()
            } else {
                format!("node {peer}")
            }
        };
        let mut lines: Vec<String> = faults
            .drop_percent
            .iter()
            .map(|((from, to), percent)| {
                format!("{} -> {}: {percent}% dropped", name(*from), name(*to))
            })
            .collect();
        lines.extend(
            faults.rate_kbit.iter().map(|((from, to), rate)| {
                format!("{} -> {}: {rate} kbit/s", name(*from), name(*to))
            }),
        );
        if lines.is_empty() {
            "no faults".to_string()
        } else {
            lines.join("; ")
        }
    }

    /// Packets of `from` to `to` dropped through the sink, as counted by the filter (whether
    /// the fault is really in the data path, not only in this bookkeeping).
    pub fn dropped_packets(&self, from: i32, to: i32) -> u64 {
        let output = tc_in_output(
            &self.namespace(from),
            &[
                "-s",
                "filter",
                "show",
                "dev",
                "eth0",
                "egress",
                "prio",
                &filter_priority(to).to_string(),
            ],
        );
        sent_packets(&output)
    }

    /// The filters and qdiscs on every node's link, as `tc` lists them.
    pub fn kernel_state(&self) -> String {
        self.node_ids
            .iter()
            .map(|id| {
                let namespace = self.namespace(*id);
                let filters =
                    tc_in_output(&namespace, &["filter", "show", "dev", "eth0", "egress"]);
                let qdiscs = tc_in_output(&namespace, &["qdisc", "show", "dev", "eth0"]);
                format!("node {id} tc:\n{filters}{qdiscs}")
            })
            .collect()
    }

    /// Packets of `from` to `to` that went through the slow link's rate-limited class.
    pub fn throttled_packets(&self, from: i32, to: i32) -> u64 {
        let class = format!("1:{}", filter_priority(to));
        let output = tc_in_output(
            &self.namespace(from),
            &["-s", "class", "show", "dev", "eth0", "classid", &class],
        );
        sent_packets(&output)
    }

    /// Sets the share of `from`'s packets to `to` that are dropped (0 removes the fault).
    fn drop_share(&self, from: i32, to: i32, percent: u32) {
        assert!(from != CLIENT, "faults act on a node's egress");
        assert!(percent <= 100);
        let mut faults = self.faults.lock().unwrap();
        let namespace = self.namespace(from);
        let priority = filter_priority(to).to_string();
        if faults.drop_percent.remove(&(from, to)).is_some() {
            tc_in(
                &namespace,
                &["filter", "del", "dev", "eth0", "egress", "prio", &priority],
            );
        }
        if percent == 0 {
            return;
        }
        let program = drop_program(&self.address(to), percent);
        tc_in(
            &namespace,
            &[
                "filter", "add", "dev", "eth0", "egress", "prio", &priority, "bpf", "bytecode",
                &program, "action", "mirred", "egress", "redirect", "dev", "sink",
            ],
        );
        faults.drop_percent.insert((from, to), percent);
    }

    /// Limits `from`'s traffic to `to` to `rate_kbit` (0 removes the limit).
    fn limit_rate(&self, from: i32, to: i32, rate_kbit: u32) {
        assert!(from != CLIENT, "faults act on a node's egress");
        let mut faults = self.faults.lock().unwrap();
        let namespace = self.namespace(from);
        let priority = filter_priority(to).to_string();
        let class = format!("1:{priority}");
        let had_root = faults.rate_kbit.keys().any(|(node, _)| *node == from);
        if faults.rate_kbit.remove(&(from, to)).is_some() {
            tc_in(
                &namespace,
                &[
                    "filter", "del", "dev", "eth0", "parent", "1:", "prio", &priority,
                ],
            );
            tc_in(
                &namespace,
                &["class", "del", "dev", "eth0", "classid", &class],
            );
        }
        if rate_kbit == 0 {
            let has_root = faults.rate_kbit.keys().any(|(node, _)| *node == from);
            if had_root && !has_root {
                tc_in(&namespace, &["qdisc", "del", "dev", "eth0", "root"]);
            }
            return;
        }
        if !had_root {
            tc_in(
                &namespace,
                &[
                    "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "1",
                ],
            );
            tc_in(
                &namespace,
                &[
                    "class",
                    "add",
                    "dev",
                    "eth0",
                    "parent",
                    "1:",
                    "classid",
                    "1:1",
                    "htb",
                    "rate",
                    UNTHROTTLED_RATE,
                ],
            );
        }
        let rate = format!("{rate_kbit}kbit");
        tc_in(
            &namespace,
            &[
                "class", "add", "dev", "eth0", "parent", "1:", "classid", &class, "htb", "rate",
                &rate, "ceil", &rate,
            ],
        );
        let destination = format!("{}/32", self.address(to));
        tc_in(
            &namespace,
            &[
                "filter",
                "add",
                "dev",
                "eth0",
                "parent",
                "1:",
                "protocol",
                "ip",
                "prio",
                &priority,
                "u32",
                "match",
                "ip",
                "dst",
                &destination,
                "flowid",
                &class,
            ],
        );
        faults.rate_kbit.insert((from, to), rate_kbit);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace destroys its veth pairs, and with the hub's the root
        // namespace's end; processes still inside (none once the cluster was dropped) are
        // killed first so that nothing keeps a namespace alive.
        let mut namespaces: Vec<String> =
            self.node_ids.iter().map(|id| self.namespace(*id)).collect();
        namespaces.push(self.hub());
        for namespace in namespaces {
            remove_namespace(&namespace);
        }
        // Only if the hub could not be deleted (or was never made) is the link still there.
        let _ = Command::new("ip")
            .args(["link", "del", &self.client_link])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The first "Sent <bytes> bytes <packets> pkt" count of `tc -s` output (the mirred action's
/// for a drop filter, the class's for a slow link).
fn sent_packets(output: &str) -> u64 {
    output
        .split("Sent ")
        .nth(1)
        .and_then(|rest| rest.split(" bytes ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|packets| packets.parse().ok())
        .unwrap_or(0)
}

/// The filter priority (and HTB class minor) of traffic to `peer`.
fn filter_priority(peer: i32) -> u32 {
    100 + u32::try_from(peer).unwrap()
}

/// A classic BPF program (for `tc … bpf bytecode`) matching IPv4 packets to `destination`,
/// all of them at 100 percent, else a random `percent` (the kernel's per-packet random number
/// below a threshold). Offsets count from the Ethernet header.
fn drop_program(destination: &str, percent: u32) -> String {
    let address: std::net::Ipv4Addr = destination.parse().unwrap();
    let address = u32::from(address);
    const LOAD_HALF: u32 = 0x28; // ldh [k]
    const LOAD_WORD: u32 = 0x20; // ld [k]
    const JUMP_EQUAL: u32 = 0x15; // jeq #k
    const JUMP_AT_LEAST: u32 = 0x35; // jge #k
    const RETURN: u32 = 0x06; // ret #k
    const ETHER_TYPE_OFFSET: u32 = 12;
    const IPV4_DESTINATION_OFFSET: u32 = 14 + 16;
    const IPV4: u32 = 0x0800;
    // SKF_AD_OFF + SKF_AD_RANDOM: "ld rand".
    const RANDOM: u32 = 0xffff_f000 + 56;
    const MATCH: u32 = u32::MAX;
    const NO_MATCH: u32 = 0;
    let instructions: Vec<(u32, u32, u32, u32)> = if percent >= 100 {
        vec![
            (LOAD_HALF, 0, 0, ETHER_TYPE_OFFSET),
            (JUMP_EQUAL, 0, 3, IPV4),
            (LOAD_WORD, 0, 0, IPV4_DESTINATION_OFFSET),
            (JUMP_EQUAL, 0, 1, address),
            (RETURN, 0, 0, MATCH),
            (RETURN, 0, 0, NO_MATCH),
        ]
    } else {
        let threshold = u32::try_from(u64::from(percent) * (1u64 << 32) / 100).unwrap();
        vec![
            (LOAD_HALF, 0, 0, ETHER_TYPE_OFFSET),
            (JUMP_EQUAL, 0, 5, IPV4),
            (LOAD_WORD, 0, 0, IPV4_DESTINATION_OFFSET),
            (JUMP_EQUAL, 0, 3, address),
            (LOAD_WORD, 0, 0, RANDOM),
            (JUMP_AT_LEAST, 1, 0, threshold),
            (RETURN, 0, 0, MATCH),
            (RETURN, 0, 0, NO_MATCH),
        ]
    };
    let mut program = instructions.len().to_string();
    for (code, jump_true, jump_false, k) in instructions {
        program.push_str(&format!(",{code} {jump_true} {jump_false} {k}"));
    }
    program
}

/// A 10.a.b.0/24 that no route of the root namespace overlaps (the default route aside),
/// starting from one derived from the process and the network's sequence number.
fn free_subnet(pid: u32, sequence: u32) -> (u8, u8) {
    let routes = run_output("ip", &["-4", "route", "show"]);
    let taken: Vec<(u32, u32)> = routes
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|prefix| *prefix != "default")
        .filter_map(parse_cidr)
        .collect();
    let start = (pid % 64) * 256 + sequence % 256;
    (0..64 * 256)
        .map(|offset| (start + offset) % (64 * 256))
        .map(|index| (160 + (index / 256) as u8, (index % 256) as u8))
        .find(|(a, b)| {
            let candidate = u32::from_be_bytes([10, *a, *b, 0]);
            taken.iter().all(|(network, mask)| {
                let common = mask & 0xffff_ff00;
                candidate & common != network & common
            })
        })
        .expect("a free 10.x.y.0/24 for the test network")
}

/// "a.b.c.d/n" or "a.b.c.d" as (network, mask).
fn parse_cidr(text: &str) -> Option<(u32, u32)> {
    let (address, length) = text.split_once('/').unwrap_or((text, "32"));
    let address: std::net::Ipv4Addr = address.parse().ok()?;
    let length: u32 = length.parse().ok()?;
    let mask = if length == 0 {
        0
    } else {
        u32::MAX << (32 - length.min(32))
    };
    Some((u32::from(address) & mask, mask))
}

/// Removes namespaces named after a test process that no longer runs (killed before its
/// networks' drop ran), with the processes it left inside them.
fn remove_leftover_namespaces() {
    let listed = run_output("ip", &["netns", "list"]);
    for namespace in listed
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        let Some(rest) = namespace.strip_prefix(NAMESPACE_PREFIX) else {
            continue;
        };
        let Some(pid) = rest
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            remove_namespace(namespace);
        }
    }
}

/// Kills the processes inside `namespace` (ours: brokers a test started in it) and deletes it.
fn remove_namespace(namespace: &str) {
    let pids = Command::new("ip")
        .args(["netns", "pids", namespace])
        .stderr(Stdio::null())
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill")
            .args(["-KILL", pid])
            .stderr(Stdio::null())
            .status();
    }
    let _ = Command::new("ip")
        .args(["netns", "del", namespace])
        .stderr(Stdio::null())
        .status();
}

fn ip_root(args: &[&str]) {
    run("ip", args);
}

fn ip_in(namespace: &str, args: &[&str]) {
    let mut full = vec!["-n", namespace];
    full.extend_from_slice(args);
    run("ip", &full);
}

fn tc_in(namespace: &str, args: &[&str]) {
    let mut full = vec!["-n", namespace];
    full.extend_from_slice(args);
    run("tc", &full);
}

fn tc_in_output(namespace: &str, args: &[&str]) -> String {
    let mut full = vec!["-n", namespace];
    full.extend_from_slice(args);
    run_output("tc", &full)
}

fn run(program: &str, args: &[&str]) {
    run_output(program, args);
}

/// Runs an iproute2 command; fails the test saying what could not be set up, and why.
fn run_output(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run `{program}` ({error}): the partition tests need iproute2 (ip, tc) \
                 and root, as CI has"
            )
        });
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}the partition tests create network namespaces, veth pairs \
         and tc filters, which needs root (CI runs as root)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A cluster whose nodes each run in a namespace of `network`; the processes stop before the
/// network is removed (fields drop in order).
pub struct NetCluster {
    pub cluster: crate::cluster::Cluster,
    pub network: Network,
}

impl NetCluster {
    pub fn start(size: i32, extra_args: &[&str]) -> NetCluster {
        let node_ids: Vec<i32> = (1..=size).collect();
        let network = Network::create(&node_ids);
        let cluster =
            crate::cluster::Cluster::start_placed(size, extra_args, |id| network.placement(id));
        NetCluster { cluster, network }
    }

    pub fn bootstrap(&self, node_id: i32) -> String {
        self.cluster.bootstrap(node_id)
    }

    /// Every node's log, its view of the quorum, and the faults in place (as bookkept and
    /// as the kernel has them), for failure messages.
    pub fn explain(&self) -> String {
        let quorum: String = self
            .cluster
            .nodes
            .keys()
            .map(|id| format!("node {id}: {}\n", quorum_view(&self.bootstrap(*id))))
            .collect();
        format!(
            "faults: {}\n{}{quorum}{}",
            self.network.describe_faults(),
            self.network.kernel_state(),
            self.cluster.logs()
        )
    }
}

/// A node's DescribeQuorum answer in one line (or why there is none).
fn quorum_view(address: &str) -> String {
    use kafka_protocol::messages::{
        describe_quorum_request, DescribeQuorumRequest, DescribeQuorumResponse, ResponseHeader,
    };
    use kafka_protocol::protocol::{Decodable, HeaderVersion};
    const VERSION: i16 = 1;
    let request = DescribeQuorumRequest::default().with_topics(vec![
        describe_quorum_request::TopicData::default()
            .with_topic_name(crate::common::topic_name("__cluster_metadata"))
            .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
    ]);
    let mut client = crate::common::TestClient::connect(address);
    let answer_timeout = std::time::Duration::from_secs(5);
    client
        .stream
        .set_read_timeout(Some(answer_timeout))
        .unwrap();
    client.send(&request, VERSION);
    let Ok(mut frame) = client.receive_frame() else {
        return "DescribeQuorum: no answer".to_string();
    };
    let header_version = DescribeQuorumResponse::header_version(VERSION);
    let decoded = ResponseHeader::decode(&mut frame, header_version)
        .and_then(|_| DescribeQuorumResponse::decode(&mut frame, VERSION));
    let Ok(response) = decoded else {
        return "DescribeQuorum: undecodable".to_string();
    };
    match response.topics.first().and_then(|t| t.partitions.first()) {
        Some(p) => format!(
            "DescribeQuorum error {} leader {} epoch {} high watermark {} voters' log ends {:?}",
            p.error_code,
            p.leader_id.0,
            p.leader_epoch,
            p.high_watermark,
            p.current_voters
                .iter()
                .map(|v| (v.replica_id.0, v.log_end_offset))
                .collect::<Vec<_>>()
        ),
        None => format!("DescribeQuorum error {}", response.error_code),
    }
}
