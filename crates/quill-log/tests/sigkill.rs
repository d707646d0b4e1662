#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A writer process killed with SIGKILL loses nothing it was told is durable.
//!
//! In a test binary of its own: spawning a child duplicates every open descriptor of this
//! process until the child's `exec` closes them, so a log another test opened and closed in a
//! parallel thread meanwhile would still be `flock`ed by the child's copy, and that test's
//! reopen would fail with `Locked`. Alone here, only this test opens logs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod crash_support;

use crash_support::{all_batches, config, context, open};
use quill_log::testing::build_simple_batch;
use quill_log::{BatchHeader, GroupCommitter, Log};

/// The child half of `sigkill_loses_nothing_reported_durable`: appends forever, printing each
/// offset range once `on_durable` confirmed it.
#[test]
fn sigkill_child_writer() {
    let Ok(dir) = std::env::var("QUILL_LOG_CRASH_CHILD_DIR") else {
        return;
    };
    let mut log = Log::open(Path::new(&dir), config(), GroupCommitter::start().unwrap()).unwrap();
    let mut i = 0usize;
    loop {
        let info = log
            .append(&build_simple_batch(i as i64, i % 3 + 1, 100), context())
            .unwrap();
        log.wait_durable(info.last_offset + 1).unwrap();
        println!("durable {} {}", info.base_offset, info.last_offset);
        i += 1;
    }
}

#[test]
fn sigkill_loses_nothing_reported_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("QUILL_LOG_CRASH_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut durable_end = 0i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while durable_end < 400 && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.strip_prefix("durable ") {
            let last: i64 = rest.split(' ').nth(1).unwrap().parse().unwrap();
            durable_end = last + 1;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        durable_end >= 400,
        "child made too little progress: {durable_end}"
    );
    let log = open(dir.path());
    assert!(
        log.log_end_offset() >= durable_end,
        "lost acknowledged data: end {} < durable {durable_end}",
        log.log_end_offset()
    );
    // Dense, readable from the start.
    let batches = all_batches(&log);
    let mut expected = 0;
    for (base, bytes) in &batches {
        assert_eq!(*base, expected);
        expected = base + BatchHeader::parse(bytes).unwrap().last_offset_delta as i64 + 1;
    }
    assert_eq!(expected, log.log_end_offset());
}
