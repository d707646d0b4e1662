//! `quill cluster local`: N combined nodes (broker + controller) on loopback, in the foreground.
//!
//! Each node is a child process of this same binary (`quill broker …`), not a task of this
//! process: a node is then exactly what a user deploys (its own process-wide limits, metrics,
//! signal handling and data directory), and one can be stopped with `kill -9 <pid>` to watch
//! the others fail over, which is the point of a local cluster. This process only starts them,
//! says where they are, and stops them all on Ctrl-C or SIGTERM.
//!
//! Node `i` (1-based) listens for clients on `base_port + 2(i-1)` and for the quorum on the port
//! after it; its data lives in `<data-dir>/node-<i>` and its log in `<data-dir>/node-<i>.log`.
//! The cluster id is kept in `<data-dir>/cluster.id`, so the next run with the same data
//! directory restarts the same cluster; `<data-dir>/cluster.layout` keeps the node count and
//! base port, which a rerun must repeat (the voter set is fixed at formation).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use quill_client::{Client, ClientConfig};
use tokio::process::{Child, Command};

use super::output::render_table;

/// Start-up of every node (a fresh quorum elects, every broker registers) on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const READY_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// A node's controlled shutdown after SIGTERM; past it the node is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const CLUSTER_ID_FILE: &str = "cluster.id";
/// The `--nodes` and `--base-port` the cluster was formed with: its voter set.
const LAYOUT_FILE: &str = "cluster.layout";
const LOOPBACK: &str = "127.0.0.1";
/// More voters than this only slow the quorum down; Kafka recommends 3 or 5.
const MAX_NODES: u16 = 9;

#[derive(Args, Debug)]
pub struct LocalArgs {
    /// How many nodes (each a broker and a controller, 1 to 9)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_NODES)))]
    nodes: u16,
    /// Node 1's client port; node i listens for clients on BASE+2(i-1) and for the quorum on
    /// the port after it
    #[arg(long, default_value_t = 9092, value_name = "PORT")]
    base_port: u16,
    /// Where the nodes keep their data (node-1, node-2, …), their logs and the cluster id;
    /// reused by the next run
    #[arg(long, default_value = "./quill-cluster", value_name = "DIR")]
    data_dir: PathBuf,
    /// A broker setting for every node by its Kafka name (repeatable), e.g.
    /// --set controller.quorum.election.timeout.ms=500
    #[arg(long = "set", value_name = "NAME=VALUE")]
    settings: Vec<String>,
}

/// Where one node listens and keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeLayout {
    node_id: i32,
    client_port: u16,
    controller_port: u16,
    data_dir: PathBuf,
    log_file: PathBuf,
}

impl NodeLayout {
    fn client_address(&self) -> String {
        format!("{LOOPBACK}:{}", self.client_port)
    }

    fn controller_address(&self) -> String {
        format!("{LOOPBACK}:{}", self.controller_port)
    }
}

fn layout(nodes: u16, base_port: u16, data_dir: &Path) -> anyhow::Result<Vec<NodeLayout>> {
    (0..nodes)
        .map(|index| {
            let client_port = u32::from(base_port) + 2 * u32::from(index);
            let controller_port = client_port + 1;
            let (Ok(client_port), Ok(controller_port)) =
                (u16::try_from(client_port), u16::try_from(controller_port))
            else {
                bail!("--base-port {base_port} leaves no room for {nodes} nodes (two ports each)");
            };
            let node_id = i32::from(index) + 1;
            Ok(NodeLayout {
                node_id,
                client_port,
                controller_port,
                data_dir: data_dir.join(format!("node-{node_id}")),
                log_file: data_dir.join(format!("node-{node_id}.log")),
            })
        })
        .collect()
}

/// The cluster id of `data_dir`: the stored one, else a new one, stored.
fn cluster_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(CLUSTER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(stored) if !stored.trim().is_empty() => return Ok(stored.trim().to_string()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
    let id = quill_broker::new_cluster_id();
    std::fs::write(&path, format!("{id}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

/// Refuses a rerun with another node count or base port than the cluster was formed with: the
/// voter set (ids and controller addresses) is fixed at formation, and nodes started on other
/// ports would register and look for each other at the old ones.
fn check_layout(data_dir: &Path, nodes: u16, base_port: u16) -> anyhow::Result<()> {
    let path = data_dir.join(LAYOUT_FILE);
    let layout = format!("nodes={nodes}\nbase.port={base_port}\n");
    match std::fs::read_to_string(&path) {
        Ok(stored) if stored == layout => Ok(()),
        Ok(stored) => {
            let formed = stored.lines().collect::<Vec<_>>().join(", ");
            bail!(
                "{} holds a cluster formed with {formed}; its voter set is fixed, so run with those (or another --data-dir)",
                data_dir.display()
            )
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => std::fs::write(&path, layout)
            .with_context(|| format!("cannot write {}", path.display())),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

struct RunningNode {
    layout: NodeLayout,
    child: Child,
    /// Set once the node has exited (reported once).
    exited: bool,
}

pub async fn run(args: LocalArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let layouts = layout(args.nodes, args.base_port, &args.data_dir)?;
    check_layout(&args.data_dir, args.nodes, args.base_port)?;
    let cluster_id = cluster_id(&args.data_dir)?;
    let voters = layouts
        .iter()
        .map(|node| format!("{}@{}", node.node_id, node.controller_address()))
        .collect::<Vec<_>>()
        .join(",");
    let mut shutdown = shutdown_signal()?;
    out!(
        "Starting {} nodes (logs: {}/node-<i>.log)…",
        layouts.len(),
        args.data_dir.display()
    );
    let mut nodes = Vec::new();
    for layout in layouts {
        match spawn_node(&layout, &voters, &cluster_id, &args.settings) {
            Ok(child) => nodes.push(RunningNode {
                layout,
                child,
                exited: false,
            }),
            Err(error) => {
                stop_all(&mut nodes).await;
                return Err(error);
            }
        }
    }
    let ready = tokio::select! {
        ready = wait_ready(&mut nodes) => ready,
        () = &mut shutdown => Ok(false),
    };
    match ready {
        Ok(true) => {}
        Ok(false) => {
            stop_all(&mut nodes).await;
            return Ok(());
        }
        Err(error) => {
            stop_all(&mut nodes).await;
            return Err(error);
        }
    }
    print_nodes(&nodes, &cluster_id, &args.data_dir);
    tokio::select! {
        () = &mut shutdown => {}
        () = report_exits(&mut nodes) => {
            bail!("every node has exited (their logs say why)");
        }
    }
    let running = nodes.iter().filter(|node| !node.exited).count();
    out!("Stopping {running} nodes…");
    stop_all(&mut nodes).await;
    out!(
        "All nodes stopped; the next run with --data-dir {} restarts this cluster.",
        args.data_dir.display()
    );
    Ok(())
}

fn spawn_node(
    layout: &NodeLayout,
    voters: &str,
    cluster_id: &str,
    settings: &[String],
) -> anyhow::Result<Child> {
    let executable = std::env::current_exe().context("cannot find the quill executable")?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&layout.log_file)
        .with_context(|| format!("cannot open {}", layout.log_file.display()))?;
    let log_err = log
        .try_clone()
        .with_context(|| format!("cannot open {}", layout.log_file.display()))?;
    let mut command = Command::new(executable);
    command
        .arg("broker")
        .args(["--node-id", &layout.node_id.to_string()])
        .args(["--listen", &layout.client_address()])
        .arg("--data-dir")
        .arg(&layout.data_dir)
        .args(["--set", &format!("controller.quorum.voters={voters}")])
        .args(["--set", &format!("cluster.id={cluster_id}")]);
    for setting in settings {
        command.args(["--set", setting]);
    }
    command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Dropped without stop_all (an error path): do not leave the node running.
        .kill_on_drop(true);
    command
        .spawn()
        .with_context(|| format!("cannot start node {}", layout.node_id))
}

/// Waits until every node lists every broker; Err if a node exits first or time runs out.
async fn wait_ready(nodes: &mut [RunningNode]) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let expected = nodes.len();
    let mut ready = vec![false; nodes.len()];
    loop {
        for (node, is_ready) in nodes.iter_mut().zip(ready.iter_mut()) {
            if let Some(status) = node.child.try_wait().context("cannot watch a node")? {
                bail!(
                    "node {} exited during start-up ({status}); its log, {}, ends with:\n{}",
                    node.layout.node_id,
                    node.layout.log_file.display(),
                    log_tail(&node.layout.log_file)
                );
            }
            if !*is_ready {
                *is_ready = lists_brokers(&node.layout.client_address(), expected).await;
            }
        }
        if ready.iter().all(|ready| *ready) {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            let waiting: Vec<String> = nodes
                .iter()
                .zip(&ready)
                .filter(|(_, ready)| !**ready)
                .map(|(node, _)| {
                    format!(
                        "node {} (log: {})",
                        node.layout.node_id,
                        node.layout.log_file.display()
                    )
                })
                .collect();
            bail!(
                "the cluster was not ready within {} s; waiting for {}",
                READY_TIMEOUT.as_secs(),
                waiting.join(", ")
            );
        }
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
}

async fn lists_brokers(address: &str, expected: usize) -> bool {
    let mut config = ClientConfig::new([address.to_string()]);
    config.connect_timeout = READY_POLL_INTERVAL * 5;
    config.request_timeout = READY_POLL_INTERVAL * 10;
    let Ok(client) = Client::connect(config).await else {
        return false;
    };
    client
        .refresh_metadata(Some(&[]), false)
        .await
        .is_ok_and(|metadata| metadata.brokers.len() == expected)
}

fn log_tail(path: &Path) -> String {
    const TAIL_LINES: usize = 10;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

fn print_nodes(nodes: &[RunningNode], cluster_id: &str, data_dir: &Path) {
    out!(
        "Quill local cluster {cluster_id}: {} nodes, each a broker and a controller (data in {})",
        nodes.len(),
        data_dir.display()
    );
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|node| {
            vec![
                node.layout.node_id.to_string(),
                node.child
                    .id()
                    .map(|pid| pid.to_string())
                    .unwrap_or_default(),
                node.layout.client_address(),
                node.layout.controller_address(),
                node.layout.log_file.display().to_string(),
            ]
        })
        .collect();
    out_raw!(
        "{}",
        render_table(&["NODE", "PID", "CLIENT", "CONTROLLER", "LOG"], &rows)
    );
    let bootstrap: Vec<String> = nodes
        .iter()
        .map(|node| node.layout.client_address())
        .collect();
    out!("Bootstrap: {}", bootstrap.join(","));
    out!("Try: quill cluster info -b {}", bootstrap.join(","));
    out!("Ctrl-C stops every node.");
}

/// Reports each node that exits (e.g. killed to try failover); returns once every node has.
async fn report_exits(nodes: &mut [RunningNode]) {
    loop {
        for node in nodes.iter_mut().filter(|node| !node.exited) {
            if let Ok(Some(status)) = node.child.try_wait() {
                node.exited = true;
                out!(
                    "Node {} exited ({status}); the others go on. Its log: {}",
                    node.layout.node_id,
                    node.layout.log_file.display()
                );
            }
        }
        if nodes.iter().all(|node| node.exited) {
            return;
        }
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
}

/// SIGTERM to every running node (each shuts down in a controlled way), then waits; a node
/// still running after STOP_TIMEOUT is killed.
async fn stop_all(nodes: &mut [RunningNode]) {
    for node in nodes.iter_mut() {
        if matches!(node.child.try_wait(), Ok(None)) {
            terminate(&node.child);
        }
    }
    for node in nodes.iter_mut() {
        match tokio::time::timeout(STOP_TIMEOUT, node.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!(
                    "node {} did not stop within {} s; killing it",
                    node.layout.node_id,
                    STOP_TIMEOUT.as_secs()
                );
                let _ = node.child.kill().await;
            }
        }
    }
}

#[cfg(unix)]
fn terminate(child: &Child) {
    use rustix::process::{kill_process, Pid, Signal};
    let pid = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(Pid::from_raw);
    if let Some(pid) = pid {
        // The node may have exited meanwhile; then there is nothing to stop.
        let _ = kill_process(pid, Signal::TERM);
    }
}

#[cfg(not(unix))]
fn terminate(_child: &Child) {
    // No SIGTERM: stop_all kills the node after its timeout.
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM; installed before any node starts.
fn shutdown_signal(
) -> anyhow::Result<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        Ok(Box::pin(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }))
    }
    #[cfg(not(unix))]
    {
        Ok(Box::pin(async {
            let _ = tokio::signal::ctrl_c().await;
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_take_two_ports_each_from_the_base() {
        let nodes = layout(3, 9092, Path::new("d")).unwrap();
        let ports: Vec<(i32, u16, u16)> = nodes
            .iter()
            .map(|node| (node.node_id, node.client_port, node.controller_port))
            .collect();
        assert_eq!(
            ports,
            vec![(1, 9092, 9093), (2, 9094, 9095), (3, 9096, 9097)]
        );
        assert_eq!(nodes[2].data_dir, Path::new("d/node-3"));
        assert_eq!(nodes[2].log_file, Path::new("d/node-3.log"));
        assert!(layout(3, 65_532, Path::new("d")).is_err());
    }

    #[test]
    fn a_rerun_must_keep_the_node_count_and_base_port() {
        let dir = tempfile::tempdir().unwrap();
        check_layout(dir.path(), 3, 9092).unwrap();
        check_layout(dir.path(), 3, 9092).unwrap();
        let error = check_layout(dir.path(), 3, 19092).unwrap_err().to_string();
        assert!(error.contains("nodes=3, base.port=9092"), "{error}");
        assert!(check_layout(dir.path(), 5, 9092).is_err());
    }

    #[test]
    fn the_cluster_id_is_kept_for_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let first = cluster_id(dir.path()).unwrap();
        assert_eq!(cluster_id(dir.path()).unwrap(), first);
        assert!(!first.is_empty());
    }
}
