//! `quill consume --group` and `quill group …` against the real broker: committed positions
//! resume where the last member stopped, describe shows lag, reset-offsets rewinds, delete
//! removes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;
mod common;

use std::collections::BTreeSet;

use cli_support::{assert_one_line_error, quill};
use common::BrokerProcess;

fn lines_as_numbers(stdout: &str) -> Vec<u32> {
    stdout.lines().map(|line| line.parse().unwrap()).collect()
}

#[test]
fn group_consumption_resumes_and_offsets_can_be_described_reset_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let address = broker.address();
    let address = address.as_str();
    quill(address, &["topic", "create", "events", "-p", "3"], None).ok();
    let input: String = (0..30).map(|i| format!("{i}\n")).collect();
    quill(
        address,
        &[
            "produce",
            "events",
            "--linger-ms",
            "0",
            "--batch-size",
            "10",
        ],
        Some(&input),
    )
    .ok();

    // Ten records, then the rest: together each record exactly once.
    let first = quill(
        address,
        &[
            "consume",
            "events",
            "--group",
            "readers",
            "--from-beginning",
            "-n",
            "10",
        ],
        None,
    )
    .ok();
    let first = lines_as_numbers(&first.stdout);
    assert_eq!(first.len(), 10);
    let rest = quill(
        address,
        &["consume", "events", "-g", "readers", "--until-end"],
        None,
    )
    .ok();
    let rest = lines_as_numbers(&rest.stdout);
    assert_eq!(rest.len(), 20, "{rest:?}");
    let all: BTreeSet<u32> = first.iter().chain(&rest).copied().collect();
    assert_eq!(all, (0..30).collect());

    let run = quill(address, &["group", "list"], None).ok();
    assert!(
        run.stdout
            .lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>()
                == ["readers", "consumer", "Empty"]),
        "{}",
        run.stdout
    );

    let run = quill(
        address,
        &["group", "describe", "readers", "--output", "json"],
        None,
    )
    .ok();
    let description: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(description["state"], "Empty");
    let partitions = description["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    let total_lag: i64 = partitions.iter().map(|p| p["lag"].as_i64().unwrap()).sum();
    assert_eq!(total_lag, 0);
    let run = quill(address, &["group", "describe", "readers"], None).ok();
    assert!(
        run.stdout.contains("CURRENT-OFFSET  LOG-END-OFFSET  LAG"),
        "{}",
        run.stdout
    );

    // Rewind: a dry run changes nothing; the real one makes everything pending again.
    let run = quill(
        address,
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "events",
            "--to-earliest",
            "--dry-run",
        ],
        None,
    )
    .ok();
    assert!(run.stdout.contains("NEW-OFFSET"), "{}", run.stdout);
    let run = quill(
        address,
        &["group", "describe", "readers", "--output", "json"],
        None,
    )
    .ok();
    let description: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(description["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["lag"] == 0));
    quill(
        address,
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "events",
            "--to-earliest",
        ],
        None,
    )
    .ok();
    let run = quill(
        address,
        &["group", "describe", "readers", "--output", "json"],
        None,
    )
    .ok();
    let description: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let total_lag: i64 = description["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(total_lag, 30);
    let again = quill(
        address,
        &["consume", "events", "--group", "readers", "--until-end"],
        None,
    )
    .ok();
    assert_eq!(lines_as_numbers(&again.stdout).len(), 30);

    // Shift back by 2 on one partition only.
    let run = quill(
        address,
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "events",
            "-p",
            "0",
            "--shift-by",
            "-2",
            "--output",
            "json",
        ],
        None,
    )
    .ok();
    let reset: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let row = &reset["offsets"][0];
    assert_eq!(row["partition"], 0);
    assert_eq!(
        row["new_offset"].as_i64().unwrap(),
        row["previous_offset"].as_i64().unwrap() - 2
    );

    quill(address, &["group", "delete", "readers"], None).ok();
    let run = quill(address, &["group", "list", "--output", "json"], None).ok();
    assert_eq!(run.stdout.trim(), "[]");
    let run = quill(address, &["group", "describe", "readers"], None);
    assert_one_line_error(&run, "does not exist");
    let run = quill(
        address,
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "nope",
            "--to-latest",
        ],
        None,
    );
    assert_one_line_error(&run, "nope");
}

/// Kills the child on drop, so a failed assertion leaves no process behind.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn background(program: &str, args: &[&str]) -> Background {
    let child = std::process::Command::new(program)
        .args(args)
        .env_remove("QUILL_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Background(child)
}

/// Waits (bounded) until `quill group describe` satisfies `done`.
fn wait_for_description(
    address: &str,
    group: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    loop {
        let run = quill(
            address,
            &["group", "describe", group, "--output", "json"],
            None,
        );
        if run.success() {
            let description: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            if done(&description) {
                return description;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "group never got there: {}",
            run.stdout
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[test]
fn quill_and_kcat_share_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let address = broker.address();
    quill(&address, &["topic", "create", "mixed", "-p", "4"], None).ok();
    let _kcat = background(
        "kcat",
        &["-b", &address, "-G", "mixed-group", "mixed", "-q"],
    );
    wait_for_description(&address, "mixed-group", |d| {
        d["state"] == "Stable" && d["members"].as_array().is_some_and(|m| m.len() == 1)
    });
    let _quill = background(
        env!("CARGO_BIN_EXE_quill"),
        &["consume", "mixed", "--group", "mixed-group", "-b", &address],
    );
    let description = wait_for_description(&address, "mixed-group", |d| {
        let members = d["members"].as_array().cloned().unwrap_or_default();
        d["state"] == "Stable"
            && members.len() == 2
            && members
                .iter()
                .all(|m| m["assignment"].as_array().is_some_and(|a| a.len() == 2))
    });
    // librdkafka and quill agreed on a common assignor and split the four partitions.
    assert_eq!(description["assignor"], "range");
    let clients: BTreeSet<String> = description["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["client_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        clients,
        BTreeSet::from(["quill-cli".to_string(), "rdkafka".to_string()])
    );
    let assigned: BTreeSet<String> = description["members"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m["assignment"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(assigned, (0..4).map(|p| format!("mixed-{p}")).collect());
}
