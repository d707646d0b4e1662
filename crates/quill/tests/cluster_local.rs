//! Issue 13: `quill cluster local` starts N combined nodes on loopback in the foreground, real
//! clients (kcat, confluent-kafka) use them from the printed bootstrap string, SIGTERM stops
//! every node, and the next run on the same data directory restarts the same cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{compat_python, run_bounded, wait_until, workspace_root};

/// Three nodes elect, register and report ready on a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Every node's controlled shutdown after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const NODES: u16 = 3;

/// A base port with the `2 * count` ports from it free on loopback (checked by binding them;
/// another process could take one before the cluster binds it, which would fail the start
/// loudly, not silently).
fn free_port_range(count: u16) -> u16 {
    for _ in 0..100 {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base > u16::MAX - count * 2 {
            continue;
        }
        let all_free = (base..base + count * 2)
            .map(|port| TcpListener::bind(("127.0.0.1", port)))
            .collect::<Result<Vec<_>, _>>()
            .is_ok();
        if all_free {
            return base;
        }
    }
    panic!("no free range of {count} port pairs");
}

/// `quill cluster local` in the foreground; its output is collected as it comes. On drop it is
/// killed, and so is every node it printed (a kill -9 of the parent does not stop them).
struct LocalCluster {
    child: Option<Child>,
    output: Arc<Mutex<String>>,
}

impl LocalCluster {
    fn start(data_dir: &Path, base_port: u16) -> LocalCluster {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quill"))
            .args(["cluster", "local", "--nodes", &NODES.to_string()])
            .args(["--base-port", &base_port.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--set", "controller.quorum.election.timeout.ms=1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut output = output.lock().unwrap();
                    output.push_str(&line);
                    output.push('\n');
                }
            });
        }
        let cluster = LocalCluster {
            child: Some(child),
            output,
        };
        common::wait_until_explained(
            START_TIMEOUT,
            || cluster.text().contains("Ctrl-C stops every node."),
            || format!("cluster local not ready:\n{}", cluster.text()),
        );
        cluster
    }

    fn text(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn line_starting(&self, prefix: &str) -> String {
        self.text()
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line:\n{}", self.text()))
            .trim()
            .to_string()
    }

    fn bootstrap(&self) -> String {
        self.line_starting("Bootstrap:")
    }

    /// The node pids from the table (NODE PID CLIENT CONTROLLER LOG).
    fn node_pids(&self) -> Vec<u32> {
        self.text()
            .lines()
            .skip_while(|line| !line.starts_with("NODE"))
            .skip(1)
            .take(usize::from(NODES))
            .map(|line| line.split_whitespace().nth(1).unwrap().parse().unwrap())
            .collect()
    }

    /// SIGTERM to `quill cluster local` only; returns its exit code.
    fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        match common::wait_for_exit(&mut child, STOP_TIMEOUT) {
            Some(status) => status.code(),
            None => panic!("cluster local did not stop:\n{}", self.text()),
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let pids = if self.child.is_some() {
            self.node_pids_if_known()
        } else {
            Vec::new()
        };
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

impl LocalCluster {
    fn node_pids_if_known(&self) -> Vec<u32> {
        if self.text().contains("Bootstrap:") {
            self.node_pids()
        } else {
            Vec::new()
        }
    }
}

fn is_running(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie (exited, not yet reaped) is not running.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn cluster_local_serves_real_clients_stops_on_sigterm_and_restarts_the_same_cluster() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("quill-cluster");
    let base_port = free_port_range(NODES);
    let mut cluster = LocalCluster::start(&data_dir, base_port);
    let bootstrap = cluster.bootstrap();
    let addresses: Vec<String> = (0..NODES)
        .map(|index| format!("127.0.0.1:{}", base_port + 2 * index))
        .collect();
    assert_eq!(bootstrap, addresses.join(","));
    for index in 0..NODES {
        let controller = format!("127.0.0.1:{}", base_port + 2 * index + 1);
        assert!(cluster.text().contains(&controller), "{}", cluster.text());
    }
    let pids = cluster.node_pids();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|pid| is_running(*pid)));
    let cluster_id = std::fs::read_to_string(data_dir.join("cluster.id")).unwrap();
    assert!(cluster.text().contains(cluster_id.trim()));

    // kcat writes through the printed bootstrap string and reads everything back.
    let create = run_bounded(
        "quill topic create",
        Command::new(env!("CARGO_BIN_EXE_quill")).args([
            "topic",
            "create",
            "local-events",
            "--partitions",
            "3",
            "-b",
            &bootstrap,
        ]),
        None,
    );
    assert!(create.status.success());
    let input: String = (0..30).map(|n| format!("k{}:v{n}\n", n % 5)).collect();
    run_bounded(
        "kcat produce",
        Command::new("kcat").args(["-b", &bootstrap, "-t", "local-events", "-P", "-K:"]),
        Some(&input),
    );
    let count_values = |bootstrap: &str| {
        let consumed = run_bounded(
            "kcat consume",
            Command::new("kcat").args([
                "-b",
                bootstrap,
                "-t",
                "local-events",
                "-C",
                "-e",
                "-q",
                "-f",
                "%s\n",
            ]),
            None,
        );
        String::from_utf8_lossy(&consumed.stdout)
            .lines()
            .filter(|line| line.starts_with('v'))
            .count()
    };
    assert_eq!(count_values(&bootstrap), 30);
    // confluent-kafka: an idempotent producer and a consumer group, from one node's address.
    let created = run_bounded(
        "quill topic create",
        Command::new(env!("CARGO_BIN_EXE_quill")).args([
            "topic",
            "create",
            "local-grouped",
            "--partitions",
            "3",
            "-b",
            &addresses[1],
        ]),
        None,
    );
    assert!(created.status.success());
    let clients = workspace_root().join("tests/compat/cluster/clients.py");
    run_bounded(
        "confluent-kafka produce",
        Command::new(compat_python()).arg(&clients).args([
            "produce",
            &addresses[2],
            "local-grouped",
            "6",
            "10",
        ]),
        None,
    );
    run_bounded(
        "confluent-kafka group",
        Command::new(compat_python()).arg(&clients).args([
            "consume",
            &addresses[0],
            "local-group",
            "local-grouped",
            "6",
            "10",
        ]),
        None,
    );

    // SIGTERM to `quill cluster local` stops every node, and it exits 0.
    assert_eq!(cluster.terminate(), Some(0), "{}", cluster.text());
    for pid in &pids {
        assert!(!is_running(*pid), "node pid {pid} still runs");
    }
    assert!(
        cluster.text().contains("All nodes stopped"),
        "{}",
        cluster.text()
    );
    let mut nodes_stopped_cleanly = 0;
    for node in 1..=NODES {
        let log = std::fs::read_to_string(data_dir.join(format!("node-{node}.log"))).unwrap();
        if log.contains("SIGTERM received") {
            nodes_stopped_cleanly += 1;
        }
    }
    assert_eq!(nodes_stopped_cleanly, NODES);

    // The next run restarts the same cluster: same id, the data is still there.
    let mut again = LocalCluster::start(&data_dir, base_port);
    assert!(again.text().contains(cluster_id.trim()), "{}", again.text());
    wait_until("the topic's data after the restart", START_TIMEOUT, || {
        count_values(&again.bootstrap()) == 30
    });
    assert_eq!(again.terminate(), Some(0), "{}", again.text());

    // Other ports would leave the nodes registered, and looking for each other, at the old
    // ones: a rerun with another layout is refused before any node starts.
    let refused = Command::new(env!("CARGO_BIN_EXE_quill"))
        .args([
            "cluster",
            "local",
            "--base-port",
            &(base_port + 100).to_string(),
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&format!("formed with nodes=3, base.port={base_port}")),
        "{stderr}"
    );
}
