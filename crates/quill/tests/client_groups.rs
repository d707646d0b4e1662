//! `quill-client` consumer groups against the real broker: members share partitions, committed
//! offsets survive a member leaving, and the group admin calls see it all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::BrokerProcess;
use kafka_protocol::messages::ApiKey;
use quill_client::admin::NewTopic;
use quill_client::consumer::OffsetReset;
use quill_client::group::{self, GroupConsumer, GroupConsumerConfig};
use quill_client::{
    Admin, Client, ClientConfig, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

const TEST_DEADLINE: Duration = Duration::from_secs(60);

async fn setup(
    topic: &str,
    partitions: i32,
    records: usize,
) -> Option<(tempfile::TempDir, BrokerProcess, Client)> {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let client = Client::connect(ClientConfig::new([broker.address()]))
        .await
        .unwrap();
    let connection = client.any_connection().await.unwrap();
    if connection.broker_versions(ApiKey::JoinGroup).is_none() {
        eprintln!("skipped: this broker build has no group coordinator");
        return None;
    }
    let topic_spec = NewTopic {
        name: topic.into(),
        partitions,
        replication_factor: 1,
        configs: Vec::new(),
    };
    Admin::new(client.clone())
        .create_topics(&[topic_spec])
        .await
        .unwrap();
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    for index in 0..records {
        let record = ProducerRecord {
            topic: topic.into(),
            partition: Some((index % partitions as usize) as i32),
            value: Some(Bytes::from(index.to_string())),
            ..ProducerRecord::default()
        };
        producer
            .send_with_callback(record, |result| assert!(result.is_ok()))
            .await
            .unwrap();
    }
    producer.close().await;
    Some((dir, broker, client))
}

fn config(group: &str) -> GroupConsumerConfig {
    let mut config = GroupConsumerConfig::new(group);
    config.consumer.offset_reset = OffsetReset::Earliest;
    config.heartbeat_interval = Duration::from_millis(200);
    config.session_timeout = Duration::from_secs(10);
    config.rebalance_timeout = Duration::from_secs(10);
    config.auto_commit_interval = Duration::from_millis(200);
    config
}

fn values(records: &[quill_client::ConsumerRecord]) -> Vec<i64> {
    records
        .iter()
        .map(|record| {
            std::str::from_utf8(record.value.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_reads_everything_and_a_successor_resumes_at_the_commit() {
    let Some((_dir, _broker, client)) = setup("orders", 3, 30).await else {
        return;
    };
    let mut first = GroupConsumer::new(client.clone(), config("readers"), vec!["orders".into()]);
    let deadline = Instant::now() + TEST_DEADLINE;
    let mut seen = Vec::new();
    while seen.len() < 30 {
        assert!(Instant::now() < deadline, "only {} records", seen.len());
        seen.extend(values(
            &first.poll(Duration::from_millis(300)).await.unwrap(),
        ));
    }
    assert_eq!(
        seen.iter().copied().collect::<BTreeSet<_>>(),
        (0..30).collect()
    );
    assert_eq!(first.assignment().len(), 3);
    first.close().await.unwrap();

    let connection = client
        .connection_to_broker(group::find_coordinator(&client, "readers").await.unwrap())
        .await
        .unwrap();
    let committed = group::fetch_committed_offsets(&connection, "readers", None)
        .await
        .unwrap();
    for partition in 0..3 {
        assert_eq!(committed[&TopicPartition::new("orders", partition)], 10);
    }
    let listed = group::list_groups(&client).await.unwrap();
    assert!(
        listed.iter().any(|listed| listed.group_id == "readers"),
        "{listed:?}"
    );

    // A new member of the same group starts at the commit: nothing old, only what comes next.
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let record = ProducerRecord {
        topic: "orders".into(),
        partition: Some(1),
        value: Some(Bytes::from_static(b"30")),
        ..ProducerRecord::default()
    };
    producer.send(record).await.unwrap().await.unwrap();
    producer.close().await;
    let mut second = GroupConsumer::new(client.clone(), config("readers"), vec!["orders".into()]);
    let mut seen = Vec::new();
    while seen.is_empty() {
        assert!(Instant::now() < deadline, "nothing arrived");
        seen.extend(values(
            &second.poll(Duration::from_millis(300)).await.unwrap(),
        ));
    }
    assert_eq!(seen, [30]);
    second.close().await.unwrap();
}

/// What a member task last saw: its generation and assignment.
type Seen = std::sync::Arc<std::sync::Mutex<(Option<i32>, Vec<TopicPartition>)>>;

/// Polls in a loop, as an application would (a rebalance needs every member to poll), until
/// `stop` is set; then leaves the group.
fn run_member(
    client: Client,
    group: &str,
    topic: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Default::default();
    let mut member = GroupConsumer::new(client, config(group), vec![topic.to_string()]);
    let published = seen.clone();
    let task = tokio::spawn(async move {
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            member.poll(Duration::from_millis(100)).await.unwrap();
            *published.lock().unwrap() = (member.generation(), member.assignment().to_vec());
        }
        member.close().await.unwrap();
    });
    (seen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_the_partitions() {
    let Some((_dir, _broker, client)) = setup("shared", 4, 0).await else {
        return;
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Separate clients, as separate applications would have.
    let client_b = Client::connect(ClientConfig::new([_broker.address()]))
        .await
        .unwrap();
    let (seen_a, task_a) = run_member(client.clone(), "pair", "shared", stop.clone());
    let (seen_b, task_b) = run_member(client_b, "pair", "shared", stop.clone());
    let deadline = Instant::now() + TEST_DEADLINE;
    let union = loop {
        let a = seen_a.lock().unwrap().clone();
        let b = seen_b.lock().unwrap().clone();
        if a.0.is_some() && a.0 == b.0 && a.1.len() == 2 && b.1.len() == 2 {
            break a
                .1
                .into_iter()
                .chain(b.1)
                .collect::<BTreeSet<TopicPartition>>();
        }
        assert!(
            Instant::now() < deadline,
            "no balanced assignment: {a:?} / {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(union.len(), 4);

    let description = group::describe_group(&client, "pair").await.unwrap();
    assert_eq!(description.state, "Stable");
    assert_eq!(description.members.len(), 2);
    let described: BTreeSet<TopicPartition> = description
        .members
        .iter()
        .flat_map(|m| m.assignment.clone())
        .collect();
    assert_eq!(described, union);
    stop.store(true, std::sync::atomic::Ordering::Release);
    task_a.await.unwrap();
    task_b.await.unwrap();
}
