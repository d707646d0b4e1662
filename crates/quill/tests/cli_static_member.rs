//! `quill consume --group G --group-instance-id ID` against the real broker: a static member
//! stays in the group after the command exits (no LeaveGroup), and a rerun with the same id
//! takes its place and resumes at the committed offsets. `--assignment-strategy` picks the
//! group's assignor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;
mod common;

use cli_support::quill;
use common::BrokerProcess;
use quill_client::{group, Client, ClientConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_consumer_stays_in_the_group_and_its_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--set", "group.initial.rebalance.delay.ms=0"]);
    let address = broker.address();
    quill(&address, &["topic", "create", "jobs", "-p", "2"], None).ok();
    let input: String = (0..10).map(|i| format!("{i}\n")).collect();
    quill(&address, &["produce", "jobs"], Some(&input)).ok();
    let consume = [
        "consume",
        "jobs",
        "--group",
        "workers",
        "--group-instance-id",
        "worker-1",
        "--assignment-strategy",
        "cooperative-sticky",
        "--from-beginning",
        "--until-end",
    ];
    let first = quill(&address, &consume, None).ok();
    assert_eq!(first.stdout.lines().count(), 10, "{}", first.stdout);

    let client = Client::connect(ClientConfig::new([address.clone()]))
        .await
        .unwrap();
    let description = group::describe_group(&client, "workers").await.unwrap();
    assert_eq!(description.members.len(), 1, "{description:?}");
    assert_eq!(description.protocol, "cooperative-sticky");
    assert_eq!(
        description.members[0].group_instance_id.as_deref(),
        Some("worker-1")
    );

    let described = quill(
        &address,
        &["group", "describe", "workers", "--output", "json"],
        None,
    )
    .ok();
    let document: serde_json::Value = serde_json::from_str(&described.stdout).unwrap();
    assert_eq!(document["members"][0]["group_instance_id"], "worker-1");

    quill(&address, &["produce", "jobs"], Some("10\n")).ok();
    let second = quill(&address, &consume, None).ok();
    assert_eq!(second.stdout.trim(), "10", "{}", second.stdout);
    let description = group::describe_group(&client, "workers").await.unwrap();
    assert_eq!(description.members.len(), 1, "{description:?}");

    let usage = quill(
        &address,
        &["consume", "jobs", "--group-instance-id", "x"],
        None,
    );
    assert!(!usage.success());
    assert!(usage.stderr.contains("--group"), "{}", usage.stderr);
    let usage = quill(
        &address,
        &[
            "consume",
            "jobs",
            "-g",
            "w",
            "--assignment-strategy",
            "sticky",
        ],
        None,
    );
    assert!(!usage.success());
    assert!(
        usage.stderr.contains("cooperative-sticky"),
        "{}",
        usage.stderr
    );
}
