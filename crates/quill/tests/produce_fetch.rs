//! Produce, Fetch, ListOffsets and topic administration against the real broker binary,
//! including every bad-input case of the broker issue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, DeleteTopicsRequest, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest,
};
use uuid::Uuid;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_CONFIG: i16 = 40;

fn start(extra_args: &[&str]) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), extra_args);
    (dir, broker)
}

#[test]
fn produce_then_fetch_returns_the_same_records_at_dense_offsets() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("orders", 2);
    let first = client.produce("orders", 1, &["a", "b", "c"]);
    let partition = &first.responses[0].partition_responses[0];
    assert_eq!((partition.error_code, partition.base_offset), (0, 0));
    let second = client.produce("orders", 1, &["d"]);
    assert_eq!(second.responses[0].partition_responses[0].base_offset, 3);

    let fetched = client.fetch("orders", 1, 0);
    let data = &fetched.responses[0].partitions[0];
    assert_eq!(data.error_code, 0);
    assert_eq!(data.high_watermark, 4);
    assert_eq!(data.log_start_offset, 0);
    let values = decode_values(data.records.as_ref().unwrap());
    let expected: Vec<(i64, String)> = ["a", "b", "c", "d"]
        .iter()
        .enumerate()
        .map(|(offset, value)| (offset as i64, value.to_string()))
        .collect();
    assert_eq!(values, expected);
}

#[test]
fn fetch_long_poll_is_woken_by_an_append() {
    let (_dir, broker) = start(&[]);
    let mut setup = broker.connect();
    setup.create_topic("events", 1);
    let mut consumer = broker.connect();
    let started = Instant::now();
    let correlation_id = consumer.send(&fetch_request("events", 0, 0, 20_000), 11);
    std::thread::sleep(Duration::from_millis(300));
    setup.produce("events", 0, &["wake up"]);
    let response = consumer.receive::<kafka_protocol::messages::FetchRequest>(11, correlation_id);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "long poll not woken: {elapsed:?}"
    );
    let values = decode_values(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap(),
    );
    assert_eq!(values, vec![(0, "wake up".to_string())]);
}

#[test]
fn fetch_long_poll_waits_for_max_wait_when_nothing_arrives() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("quiet", 1);
    let started = Instant::now();
    let response = client.call(&fetch_request("quiet", 0, 0, 400), 11);
    assert!(started.elapsed() >= Duration::from_millis(350));
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
}

#[test]
fn fetch_outside_the_log_is_offset_out_of_range() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("small", 1);
    client.produce("small", 0, &["x"]);
    for offset in [5, -7] {
        let response = client.fetch("small", 0, offset);
        assert_eq!(
            response.responses[0].partitions[0].error_code,
            OFFSET_OUT_OF_RANGE
        );
    }
}

#[test]
fn produce_to_missing_topic_with_auto_create_off_is_unknown_topic() {
    let (_dir, broker) = start(&["--set", "auto.create.topics.enable=false"]);
    let mut client = broker.connect();
    let response = client.produce("nope", 0, &["x"]);
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    let metadata = client.call(
        &MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name("nope")))
            ]))
            .with_allow_auto_topic_creation(true),
        9,
    );
    assert_eq!(metadata.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn metadata_auto_creates_topics_when_allowed() {
    let (_dir, broker) = start(&["--set", "num.partitions=3"]);
    let mut client = broker.connect();
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name("auto")))
        ]))
        .with_allow_auto_topic_creation(true);
    let response = client.call(&request, 9);
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(response.topics[0].partitions.len(), 3);
    assert_eq!(response.brokers[0].port, i32::from(broker.port));
    assert_eq!(response.controller_id.0, 1);
}

#[test]
fn corrupt_and_oversized_batches_are_rejected() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    let create = create_topic_request("strict", 1, 1, &[("max.message.bytes", "200")]);
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);

    let mut corrupt = record_batch(&["payload"], 1).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff; // flips a record byte, so the CRC no longer matches
    let response = client.call(&produce_request("strict", 0, corrupt.into(), -1), 7);
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        CORRUPT_MESSAGE
    );

    let big_value = "v".repeat(1000);
    let oversized = record_batch(&[big_value.as_str()], 1);
    let response = client.call(&produce_request("strict", 0, oversized, -1), 7);
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        MESSAGE_TOO_LARGE
    );

    // The partition is untouched and still readable.
    client.produce("strict", 0, &["ok"]);
    let fetched = client.fetch("strict", 0, 0);
    let values = decode_values(fetched.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(values, vec![(0, "ok".to_string())]);
}

#[test]
fn create_topics_rejects_bad_requests_with_kafka_error_codes() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    let long_name = "x".repeat(250);
    let invalid_names = ["", ".", "..", long_name.as_str(), "bad/name", "spaces here"];
    for name in invalid_names {
        let response = client.call(&create_topic_request(name, 1, 1, &[]), 5);
        assert_eq!(
            response.topics[0].error_code, INVALID_TOPIC_EXCEPTION,
            "name {name:?}"
        );
    }
    client.create_topic("exists", 1);
    let cases = [
        (
            create_topic_request("exists", 1, 1, &[]),
            TOPIC_ALREADY_EXISTS,
        ),
        (create_topic_request("zero", 0, 1, &[]), INVALID_PARTITIONS),
        (
            create_topic_request("negative", -5, 1, &[]),
            INVALID_PARTITIONS,
        ),
        (
            create_topic_request("replicated", 1, 2, &[]),
            INVALID_REPLICATION_FACTOR,
        ),
        (
            create_topic_request("configured", 1, 1, &[("retention.ms", "soon")]),
            INVALID_CONFIG,
        ),
        (
            create_topic_request("configured", 1, 1, &[("no.such.config", "1")]),
            INVALID_CONFIG,
        ),
    ];
    for (request, expected) in cases {
        let response = client.call(&request, 5);
        let result = &response.topics[0];
        assert_eq!(result.error_code, expected, "{result:?}");
        let message = result
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        assert!(!message.is_empty(), "no message for {result:?}");
    }
}

#[test]
fn create_topics_defaults_and_validate_only() {
    let (_dir, broker) = start(&["--set", "num.partitions=4"]);
    let mut client = broker.connect();
    let validate = create_topic_request("dry", 2, 1, &[]).with_validate_only(true);
    assert_eq!(client.call(&validate, 5).topics[0].error_code, 0);
    let metadata = client.call(&MetadataRequest::default().with_topics(None), 9);
    assert!(metadata.topics.is_empty(), "validate_only created a topic");

    let defaults = client.call(&create_topic_request("defaults", -1, -1, &[]), 7);
    let result = &defaults.topics[0];
    assert_eq!(result.error_code, 0);
    assert_eq!(result.num_partitions, 4);
    assert_eq!(result.replication_factor, 1);
    assert!(!result.topic_id.is_nil());
}

#[test]
fn delete_topics_by_name_and_by_id_removes_data() {
    let (dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("doomed", 1);
    let kept = client.create_topic("by-id", 1);
    client.produce("doomed", 0, &["x"]);
    assert!(dir.path().join("doomed-0").exists());

    let by_name = DeleteTopicsRequest::default()
        .with_topic_names(vec![topic_name("doomed")])
        .with_timeout_ms(10_000);
    let response = client.call(&by_name, 4);
    assert_eq!(response.responses[0].error_code, 0);
    assert!(
        !dir.path().join("doomed-0").exists(),
        "data dir not removed"
    );

    let by_id = DeleteTopicsRequest::default()
        .with_topics(vec![
            DeleteTopicState::default().with_topic_id(kept.topics[0].topic_id)
        ])
        .with_timeout_ms(10_000);
    let response = client.call(&by_id, 6);
    assert_eq!(response.responses[0].error_code, 0, "{response:?}");
    assert!(!dir.path().join("by-id-0").exists());

    let again = client.call(&by_name, 4);
    assert_eq!(again.responses[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    // A fetch of the deleted topic is answered, not hung.
    let fetched = client.fetch("doomed", 0, 0);
    assert_eq!(
        fetched.responses[0].partitions[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
}

fn list_offset(client: &mut TestClient, topic: &str, timestamp: i64) -> (i64, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = client.call(&request, 7);
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0, "{partition:?}");
    (partition.offset, partition.timestamp)
}

#[test]
fn list_offsets_earliest_latest_by_time_and_max_timestamp() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("timeline", 1);
    let batch = record_batch(&["t100", "t101"], 100);
    client.call(&produce_request("timeline", 0, batch, -1), 7);
    let batch = record_batch(&["t500"], 500);
    client.call(&produce_request("timeline", 0, batch, -1), 7);

    assert_eq!(list_offset(&mut client, "timeline", -2).0, 0);
    assert_eq!(list_offset(&mut client, "timeline", -1).0, 3);
    assert_eq!(list_offset(&mut client, "timeline", 101), (1, 101));
    assert_eq!(list_offset(&mut client, "timeline", 200), (2, 500));
    assert_eq!(list_offset(&mut client, "timeline", 9_999).0, -1);
    assert_eq!(list_offset(&mut client, "timeline", -3), (2, 500));
}

#[test]
fn acks_zero_produce_has_no_response() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("fire", 1);
    client.send(&produce_request("fire", 0, record_batch(&["x"], 1), 0), 7);
    // The next response on the wire belongs to the next request.
    let response = client.call(&ApiVersionsRequest::default(), 2);
    assert_eq!(response.error_code, 0);
    // The high watermark moves once the group commit's fsync is done: long-poll for it.
    let fetched: kafka_protocol::messages::FetchResponse =
        client.call(&fetch_request("fire", 0, 0, 10_000), 11);
    assert_eq!(fetched.responses[0].partitions[0].high_watermark, 1);
}

/// Every advertised version of the data-plane APIs encodes and decodes (catches fields that a
/// version cannot carry).
#[test]
fn every_advertised_version_round_trips() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("matrix", 1);
    client.produce("matrix", 0, &["m"]);
    for version in 0..=12 {
        let request =
            MetadataRequest::default().with_topics(if version == 0 { Some(vec![]) } else { None });
        let response = client.call(&request, version);
        assert_eq!(response.topics.len(), 1, "Metadata v{version}");
    }
    for version in 3..=12 {
        let response = client.call(
            &produce_request("matrix", 0, record_batch(&["p"], 1), -1),
            version,
        );
        assert_eq!(
            response.responses[0].partition_responses[0].error_code, 0,
            "Produce v{version}"
        );
    }
    for version in 4..=12 {
        let response = client.call(&fetch_request("matrix", 0, 0, 0), version);
        assert_eq!(
            response.responses[0].partitions[0].error_code, 0,
            "Fetch v{version}"
        );
    }
    for version in 1..=9 {
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name("matrix"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        let response = client.call(&request, version);
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "ListOffsets v{version}"
        );
    }
    for version in 2..=7 {
        let name = format!("created-v{version}");
        let response = client.call(&create_topic_request(&name, 1, 1, &[]), version);
        assert_eq!(response.topics[0].error_code, 0, "CreateTopics v{version}");
    }
}

#[test]
fn fetch_responses_are_capped_by_fetch_max_bytes() {
    let (_dir, broker) = start(&["--set", "fetch.max.bytes=1024"]);
    let mut client = broker.connect();
    client.create_topic("capped", 1);
    let value = "v".repeat(600);
    for _ in 0..3 {
        client.produce("capped", 0, &[value.as_str()]);
    }
    let fetched = client.fetch("capped", 0, 0);
    let records = fetched.responses[0].partitions[0].records.clone().unwrap();
    let values = decode_values(&records);
    // The first batch always comes back (KIP-74); the cap stops the rest.
    assert_eq!(values.len(), 1, "{} bytes returned", records.len());
}

/// Fetch v13+ names topics by id (what the Java client sends); unknown ids get UNKNOWN_TOPIC_ID.
#[test]
fn fetch_by_topic_id_for_v13_and_later() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    let created = client.create_topic("by-id", 1);
    let topic_id = created.topics[0].topic_id;
    client.produce("by-id", 0, &["one", "two"]);
    for version in 13..=17 {
        let mut request = fetch_request("by-id", 0, 0, 0);
        request.topics[0].topic = Default::default();
        request.topics[0].topic_id = topic_id;
        let response = client.call(&request, version);
        let topic = &response.responses[0];
        assert_eq!(topic.topic_id, topic_id, "v{version}");
        let data = &topic.partitions[0];
        assert_eq!(data.error_code, 0, "v{version}");
        assert_eq!(
            decode_values(data.records.as_ref().unwrap()).len(),
            2,
            "v{version}"
        );

        let mut unknown = fetch_request("by-id", 0, 0, 0);
        unknown.topics[0].topic = Default::default();
        unknown.topics[0].topic_id = Uuid::from_u128(42);
        let response = client.call(&unknown, version);
        assert_eq!(
            response.responses[0].partitions[0].error_code, 100,
            "UNKNOWN_TOPIC_ID"
        );
    }
}

/// Clients that ask for authorized operations decode every bit; INT32_MIN ("not requested")
/// would read as operation 31 (kafka-python's admin fails on it).
#[test]
fn metadata_reports_authorized_operations_when_asked() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("ops", 1);
    for version in 8..=12 {
        let request = MetadataRequest::default()
            .with_topics(None)
            .with_include_topic_authorized_operations(true)
            .with_include_cluster_authorized_operations(version <= 10);
        let response = client.call(&request, version);
        let operations = response.topics[0].topic_authorized_operations;
        assert!(operations > 0, "v{version}: {operations}");
        assert_ne!(operations & (1 << 3), 0, "READ");
        if version <= 10 {
            assert!(response.cluster_authorized_operations > 0, "v{version}");
        }
        let unasked = client.call(&MetadataRequest::default().with_topics(None), version);
        assert_eq!(unasked.topics[0].topic_authorized_operations, i32::MIN);
    }
}
