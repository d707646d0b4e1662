//! Durability across restarts: everything acknowledged with acks=-1 is readable at the same
//! offsets after SIGTERM (clean shutdown) and after SIGKILL (crash), and topics (with their
//! ids) survive in the metadata log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kafka_protocol::messages::MetadataRequest;
use uuid::Uuid;

fn produce_acknowledged(broker: &BrokerProcess) -> (Vec<(i64, String)>, Uuid) {
    let mut client = broker.connect();
    let created = client.create_topic("durable", 2);
    let topic_id = created.topics[0].topic_id;
    let mut acknowledged = Vec::new();
    for round in 0..20 {
        let values: Vec<String> = (0..3).map(|index| format!("r{round}-{index}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let response = client.produce("durable", 1, &refs);
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0);
        for (index, value) in values.into_iter().enumerate() {
            acknowledged.push((partition.base_offset + index as i64, value));
        }
    }
    (acknowledged, topic_id)
}

fn read_all(broker: &BrokerProcess) -> Vec<(i64, String)> {
    let mut client = broker.connect();
    let mut values = Vec::new();
    let mut offset = 0;
    loop {
        let response = client.fetch("durable", 1, offset);
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "{data:?}");
        let batch = decode_values(data.records.as_ref().unwrap());
        let Some(last) = batch.last() else { break };
        offset = last.0 + 1;
        let already_read = values.len() as i64;
        values.extend(batch.into_iter().filter(|(o, _)| *o >= already_read));
        if offset >= data.high_watermark {
            break;
        }
    }
    values
}

fn topic_id_after_restart(broker: &BrokerProcess) -> Uuid {
    let mut client = broker.connect();
    let metadata = client.call(&MetadataRequest::default().with_topics(None), 12);
    let topic = metadata
        .topics
        .iter()
        .find(|topic| topic.name.as_ref().map(|n| n.0.as_str()) == Some("durable"))
        .expect("topic survived the restart");
    assert_eq!(topic.partitions.len(), 2);
    topic.topic_id
}

fn restart_keeps_acknowledged_data(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let (acknowledged, topic_id) = produce_acknowledged(&broker);
    let exit_code = broker.stop_with(signal);
    if signal == "TERM" {
        assert_eq!(exit_code, Some(0));
    }
    broker.restart();
    assert_eq!(topic_id_after_restart(&broker), topic_id);
    assert_eq!(read_all(&broker), acknowledged);
    // The log continues at the next offset.
    let mut client = broker.connect();
    let response = client.produce("durable", 1, &["after restart"]);
    assert_eq!(
        response.responses[0].partition_responses[0].base_offset,
        acknowledged.len() as i64
    );
}

#[test]
fn sigterm_restart_keeps_acknowledged_data() {
    restart_keeps_acknowledged_data("TERM");
}

#[test]
fn sigkill_restart_keeps_acknowledged_data() {
    restart_keeps_acknowledged_data("KILL");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A directory left behind by a deleted topic (e.g. a crash between the metadata append and the
/// directory removal) is never adopted by a new topic of the same name.
#[test]
fn a_recreated_topic_never_serves_a_deleted_topics_records() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    client.create_topic("phoenix", 1);
    client.produce("phoenix", 0, &["old life"]);
    copy_dir(&dir.path().join("phoenix-0"), backup.path());
    let delete = kafka_protocol::messages::DeleteTopicsRequest::default()
        .with_topic_names(vec![topic_name("phoenix")]);
    assert_eq!(client.call(&delete, 4).responses[0].error_code, 0);

    // Left behind while running: the new topic replaces it.
    copy_dir(backup.path(), &dir.path().join("phoenix-0"));
    client.create_topic("phoenix", 1);
    let fetched = client.fetch("phoenix", 0, 0);
    assert_eq!(fetched.responses[0].partitions[0].high_watermark, 0);
    assert!(decode_values(fetched.responses[0].partitions[0].records.as_ref().unwrap()).is_empty());

    // Left behind across a restart: removed at start-up.
    assert_eq!(client.call(&delete, 4).responses[0].error_code, 0);
    drop(client);
    broker.stop_with("TERM");
    copy_dir(backup.path(), &dir.path().join("phoenix-0"));
    broker.restart();
    assert!(
        !dir.path().join("phoenix-0").exists(),
        "orphaned directory kept"
    );
}
