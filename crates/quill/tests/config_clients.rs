//! Config APIs and Fetch limits with a real client: confluent-kafka (librdkafka) programs under
//! `tests/compat/configs/` run against the real `quill` binary.
//!
//! - `admin_configs.py`: DescribeConfigs / (Incremental)AlterConfigs on TOPIC, BROKER and GROUP
//!   resources, APPEND/SUBTRACT, a per-broker SASL setting, refusals.
//! - `fetch_max_bytes.py`: librdkafka's `0082_fetch_max_bytes` — a consumer with
//!   fetch.max.bytes = 1 MB (and receive.message.max.bytes just above) reads several
//!   partitions of 300 KB batches without ever receiving an oversized response.
//! - The client is installed by `./scripts/install-test-deps.sh`; a missing one fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::BrokerProcess;

/// Bound on one client program (each bounds its own waits well below this).
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let python = std::env::var_os("QUILL_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/compat-venv/bin/python"));
    assert!(
        python.exists(),
        "{} missing: run ./scripts/install-test-deps.sh",
        python.display()
    );
    python
}

/// Runs a program to completion (bounded); panics with its output unless it exits 0.
fn run_program(script: &str, args: &[&str]) -> String {
    let mut child = Command::new(python())
        .arg(root().join("tests/compat/configs").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let deadline = Instant::now() + PROGRAM_TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

#[test]
fn confluent_admin_describes_and_alters_topic_broker_and_group_configs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let stdout = run_program("admin_configs.py", &[&broker.address(), "ck", "1"]);
    assert!(stdout.contains("DONE"), "{stdout}");
    assert!(
        stdout.contains("Quill does not support preallocate yet"),
        "{stdout}"
    );
}

#[test]
fn librdkafka_consumer_never_gets_a_fetch_response_over_fetch_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    client.create_topic("big-batches", 4);
    let stdout = run_program(
        "fetch_max_bytes.py",
        &[&broker.address(), "big-batches", "4"],
    );
    assert!(stdout.contains("RECEIVED 12"), "{stdout}");
}
