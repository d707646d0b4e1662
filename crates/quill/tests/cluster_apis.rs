//! Protocol-level tests of the cluster-facing APIs that answer from the metadata image:
//! DescribeTopicPartitions (API 75) against the real broker binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{topic_name, BrokerProcess};
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse,
};
use kafka_protocol::protocol::StrBytes;

fn start_broker() -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    (dir, broker)
}

fn describe_request(
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|name| TopicRequest::default().with_name(topic_name(name)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(topic, partition)| {
            Cursor::default()
                .with_topic_name(topic_name(topic))
                .with_partition_index(partition)
        }))
}

/// (topic, error code, partition indexes) per topic and the next cursor.
type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

fn summary(response: &DescribeTopicPartitionsResponse) -> Page {
    (
        response
            .topics
            .iter()
            .map(|topic| {
                (
                    topic.name.as_ref().unwrap().0.to_string(),
                    topic.error_code,
                    topic.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect(),
        response
            .next_cursor
            .as_ref()
            .map(|cursor| (cursor.topic_name.0.to_string(), cursor.partition_index)),
    )
}

fn entry(name: &str, error_code: i16, partitions: &[i32]) -> (String, i16, Vec<i32>) {
    (name.to_string(), error_code, partitions.to_vec())
}

#[test]
fn describe_topic_partitions_is_advertised_and_pages_through_every_partition() {
    let (_dir, broker) = start_broker();
    let mut client = broker.connect();
    let versions = client.call(
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("quill-test"))
            .with_client_software_version(StrBytes::from_static_str("1.0")),
        3,
    );
    let advertised = versions
        .api_keys
        .iter()
        .find(|api| api.api_key == ApiKey::DescribeTopicPartitions as i16)
        .map(|api| (api.min_version, api.max_version));
    assert_eq!(advertised, Some((0, 0)));

    client.create_topic("orders", 3);
    client.create_topic("clicks", 2);

    // All topics, three partitions a page: clicks 0-1 + orders 0, then orders 1-2.
    let first = client.call(&describe_request(&[], 3, None), 0);
    assert_eq!(
        summary(&first),
        (
            vec![entry("clicks", 0, &[0, 1]), entry("orders", 0, &[0])],
            Some(("orders".into(), 1))
        )
    );
    let second = client.call(&describe_request(&[], 3, Some(("orders", 1))), 0);
    assert_eq!(summary(&second), (vec![entry("orders", 0, &[1, 2])], None));

    let partition = &second.topics[0].partitions[0];
    assert_eq!(partition.leader_id, BrokerId(1));
    assert_eq!(partition.leader_epoch, 0);
    assert_eq!(partition.replica_nodes, vec![BrokerId(1)]);
    assert_eq!(partition.isr_nodes, vec![BrokerId(1)]);
    assert_eq!(partition.eligible_leader_replicas, Some(vec![]));
    assert_eq!(partition.last_known_elr, Some(vec![]));
    assert!(partition.offline_replicas.is_empty());
    assert!(!second.topics[0].topic_id.is_nil());
    assert!(!second.topics[0].is_internal);
    // READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    assert_eq!(
        second.topics[0].topic_authorized_operations,
        0b1101_1111_1000
    );
}

#[test]
fn describe_topic_partitions_reports_unknown_topics_and_checks_the_cursor() {
    let (_dir, broker) = start_broker();
    let mut client = broker.connect();
    client.create_topic("known", 1);

    let named = client.call(
        &describe_request(&["nope", "known", "known"], 2000, None),
        0,
    );
    assert_eq!(
        summary(&named),
        (vec![entry("known", 0, &[0]), entry("nope", 3, &[])], None)
    );
    assert!(named.topics[1].topic_id.is_nil());

    // The cursor's topic must be one of the named topics (Kafka: INVALID_REQUEST for each).
    let bad_cursor = client.call(&describe_request(&["known"], 2000, Some(("other", 0))), 0);
    assert_eq!(summary(&bad_cursor), (vec![entry("known", 42, &[])], None));

    // The connection stays usable after the error answer.
    let again = client.call(&describe_request(&["known"], 2000, None), 0);
    assert_eq!(summary(&again), (vec![entry("known", 0, &[0])], None));
}
