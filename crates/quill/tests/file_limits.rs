//! Issue 11: with few file descriptors, topic creation fails cleanly (an error, nothing
//! created) and quietly (no line per missing log per request), and succeeds again once
//! descriptors are available, without a restart; repeated peer faults (malformed requests)
//! log one warning per interval with a count of the suppressed ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Sets the broker's soft descriptor limit (the hard one stays, so it can be raised again)
/// with util-linux `prlimit`; false if the tool or the permission is missing.
fn set_descriptor_limit(pid: u32, limit: usize) -> bool {
    Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:"))
        .status()
        .is_ok_and(|status| status.success())
}

/// The broker's hard descriptor limit, from `/proc/<pid>/limits`.
fn hard_descriptor_limit(pid: u32) -> usize {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace()
        .nth(4)
        .and_then(|hard| hard.parse().ok())
        .unwrap_or(usize::MAX)
}

fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|line| line.contains(needle)).count()
}

fn topic_exists(client: &mut TestClient, name: &str) -> bool {
    let metadata = client.call(
        &kafka_protocol::messages::MetadataRequest::default().with_topics(None),
        9,
    );
    metadata
        .topics
        .iter()
        .any(|topic| topic.name.as_ref().is_some_and(|n| n.0.as_str() == name))
}

#[test]
fn topic_creation_under_a_descriptor_limit_fails_cleanly_and_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    client.create_topic("first", 1);
    let pid = broker.pid();
    let in_use = open_descriptors(pid);
    if !set_descriptor_limit(pid, in_use + 8) {
        eprintln!("skipping: cannot change the broker's descriptor limit (needs prlimit)");
        return;
    }
    // 20 partitions need far more than 8 descriptors: refused, and nothing is left behind.
    let mut refused = 0;
    for attempt in 0..30 {
        let name = format!("wide-{attempt}");
        let created = client.call(&create_topic_request(&name, 20, 1, &[]), 5);
        let code = created.topics[0].error_code;
        assert_ne!(code, 0, "20 partitions created with 8 spare descriptors");
        refused += 1;
        assert!(!topic_exists(&mut client, &name), "{name} half-created");
        assert!(!dir.path().join(format!("{name}-0")).exists());
    }
    assert_eq!(refused, 30);
    // The existing topic keeps working.
    let produced = client.produce("first", 0, &["still here"]);
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    // Quiet: one warning per 10 s for the failed opens, not one per partition per attempt.
    let log = broker.log_text();
    let warnings = count_lines(&log, "could not open partition log");
    assert!(warnings <= 3, "{warnings} lines:\n{log}");

    // Descriptors return: creation works again without a restart.
    assert!(set_descriptor_limit(
        pid,
        (in_use + 1000).min(hard_descriptor_limit(pid))
    ));
    let created = client.call(&create_topic_request("wide-again", 20, 1, &[]), 5);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    assert!(topic_exists(&mut client, "wide-again"));
}

#[test]
fn repeated_malformed_requests_log_one_warning_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    // 50 connections, each sending a frame with a negative length (closed by the broker).
    for _ in 0..50 {
        let mut stream = TcpStream::connect(broker.address()).unwrap();
        stream.write_all(&(-5i32).to_be_bytes()).unwrap();
    }
    // The broker is still healthy, and it has seen the garbage: wait (bounded) until the
    // first warning is in the log.
    let mut client = broker.connect();
    client.create_topic("ok", 1);
    common::wait_until("the first warning", Duration::from_secs(20), || {
        count_lines(&broker.log_text(), "closing connection") > 0
    });
    let log = broker.log_text();
    let warnings = count_lines(&log, "closing connection");
    assert!(warnings <= 2, "{warnings} lines:\n{log}");
    assert!(log.contains("suppressed=0"), "{log}");
}
