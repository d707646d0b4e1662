//! DescribeTopicPartitions (API 75, KIP-966): topics and their partitions, paginated by a
//! partition budget and a cursor. Kafka 4.0's `kafka-topics.sh --describe` and recent admin
//! clients use it instead of Metadata.
//!
//! Everything is answered from the metadata image (never from "this node"), so any broker of a
//! cluster gives the same answer. Pagination follows Kafka's `DescribeTopicPartitionsRequestHandler`
//! and `KRaftMetadataCache.getTopicMetadataForDescribeTopicResponse`: topics at or after the
//! cursor's topic, in name order; the cursor's partition index applies to its own topic only;
//! a topic that would exceed the budget is cut and `next_cursor` names the first partition left
//! out; when the budget is spent exactly, `next_cursor` names the next topic at partition 0.

use std::cmp::Ordering;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use quill_meta::{MetadataImage, PartitionInfo, TopicInfo, NO_LEADER};

use crate::handlers::metadata::{is_internal, TOPIC_AUTHORIZED_OPERATIONS};
use crate::state::BrokerState;

/// Kafka's `max.request.partition.size.limit` (default 2000): the most partitions one response
/// carries, whatever `response_partition_limit` the client asks for.
pub const MAX_REQUEST_PARTITION_SIZE_LIMIT: i32 = 2000;

pub fn handle(
    state: &BrokerState,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    describe(&state.image(), &request, MAX_REQUEST_PARTITION_SIZE_LIMIT)
}

/// The answer to `request` from `image`, with at most `max_partitions_limit` partitions.
pub fn describe(
    image: &MetadataImage,
    request: &DescribeTopicPartitionsRequest,
    max_partitions_limit: i32,
) -> DescribeTopicPartitionsResponse {
    let fetch_all_topics = request.topics.is_empty();
    let cursor = request.cursor.as_ref();
    let cursor_topic = cursor.map_or("", |cursor| cursor.topic_name.0.as_str());
    let at_or_after_cursor = |name: &str| java_string_order(name, cursor_topic) != Ordering::Less;
    let mut names: Vec<&str> = if fetch_all_topics {
        image
            .topics
            .keys()
            .map(String::as_str)
            .filter(|name| at_or_after_cursor(name))
            .collect()
    } else {
        let requested: Vec<&str> = request
            .topics
            .iter()
            .map(|topic| topic.name.0.as_str())
            .filter(|name| at_or_after_cursor(name))
            .collect();
        if cursor.is_some() && !requested.contains(&cursor_topic) {
            // Kafka throws InvalidRequestException: the cursor's topic must be in the list.
            return invalid_request(request);
        }
        requested
    };
    names.sort_by(|a, b| java_string_order(a, b));
    names.dedup();

    // Kafka guards against a budget below 1 (the client would loop on an empty page forever).
    let mut remaining = max_partitions_limit
        .min(request.response_partition_limit)
        .max(1);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            // Every earlier topic is complete: the next page starts at this topic.
            response.next_cursor = Some(cursor_at(name, 0));
            break;
        }
        let Some(topic) = image.topic(name) else {
            if !fetch_all_topics {
                response.topics.push(unknown_topic(image, name));
            }
            continue;
        };
        let first_partition = match cursor {
            Some(cursor) if name == cursor_topic => cursor.partition_index,
            _ => 0,
        };
        let (partitions, next_partition) =
            describe_partitions(image, topic, first_partition, remaining);
        let described = partitions.len();
        response.topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
                .with_topic_id(topic.topic_id)
                .with_is_internal(is_internal(name))
                .with_partitions(partitions),
        );
        if let Some(next_partition) = next_partition {
            response.next_cursor = Some(cursor_at(name, next_partition));
            break;
        }
        remaining = remaining.saturating_sub(i32::try_from(described).unwrap_or(i32::MAX));
    }
    // Without an authorizer Kafka reports every topic operation, error topics included.
    for topic in &mut response.topics {
        topic.topic_authorized_operations = TOPIC_AUTHORIZED_OPERATIONS;
    }
    response
}

/// Partitions `first_partition..` of `topic`, at most `max_count`, and the index of the first
/// partition left out (None when the topic ends within the budget).
fn describe_partitions(
    image: &MetadataImage,
    topic: &TopicInfo,
    first_partition: i32,
    max_count: i32,
) -> (Vec<DescribeTopicPartitionsResponsePartition>, Option<i32>) {
    let partition_count = i64::try_from(topic.partitions.len()).unwrap_or(i64::MAX);
    let upper_index = partition_count.min(i64::from(first_partition) + i64::from(max_count));
    // A negative start (a client's cursor) names partitions that do not exist: Kafka skips them.
    let partitions = (i64::from(first_partition)..upper_index)
        .filter_map(|index| i32::try_from(index).ok())
        .filter_map(|index| topic.partition(index))
        .map(|partition| describe_partition(image, partition))
        .collect();
    let next_partition = (upper_index < partition_count)
        .then(|| i32::try_from(upper_index).ok())
        .flatten();
    (partitions, next_partition)
}

fn describe_partition(
    image: &MetadataImage,
    partition: &PartitionInfo,
) -> DescribeTopicPartitionsResponsePartition {
    // Kafka reports a leader only if its broker is registered; fenced leaders are still named.
    let leader = if image.broker(partition.leader).is_some() {
        partition.leader
    } else {
        NO_LEADER
    };
    let brokers = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
    DescribeTopicPartitionsResponsePartition::default()
        .with_partition_index(partition.partition)
        .with_leader_id(BrokerId(leader))
        .with_leader_epoch(partition.leader_epoch)
        .with_replica_nodes(brokers(&partition.replicas))
        .with_isr_nodes(brokers(&partition.isr))
        // Quill has no eligible leader replicas (KIP-966) yet: both lists are empty, as Kafka
        // reports them for a partition without ELR.
        .with_eligible_leader_replicas(Some(Vec::new()))
        .with_last_known_elr(Some(Vec::new()))
        .with_offline_replicas(brokers(&offline_replicas(image, partition)))
}

/// Replicas whose broker cannot serve them: fenced or not registered (Kafka also counts
/// offline log directories, which Quill does not track). Metadata (API 3) lists the same.
pub(crate) fn offline_replicas(image: &MetadataImage, partition: &PartitionInfo) -> Vec<i32> {
    partition
        .replicas
        .iter()
        .copied()
        // Kafka counts a fenced broker's replicas as offline.
        .filter(|replica| image.broker(*replica).is_none_or(|broker| broker.fenced))
        .collect()
}

fn unknown_topic(image: &MetadataImage, name: &str) -> DescribeTopicPartitionsResponseTopic {
    let error = if quill_meta::validate_topic_name(name).is_ok() {
        ResponseError::UnknownTopicOrPartition
    } else {
        ResponseError::InvalidTopicException
    };
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(error.code())
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
        .with_topic_id(
            image
                .topic(name)
                .map(|topic| topic.topic_id)
                .unwrap_or_default(),
        )
        .with_is_internal(is_internal(name))
}

/// Kafka's error response (`DescribeTopicPartitionsRequest.getErrorResponse`): every requested
/// topic, in request order, with the error and no partitions.
fn invalid_request(request: &DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_name(Some(topic.name.clone()))
        })
        .collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}

fn cursor_at(topic: &str, partition_index: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_index(partition_index)
}

/// Java's `String.compareTo`: UTF-16 code units, which differs from Rust's byte order only
/// for characters above U+FFFF against U+E000..U+FFFF.
fn java_string_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_topic_partitions_request::{
        Cursor as RequestCursor, TopicRequest,
    };
    use quill_meta::{MetadataRecord, PartitionAssignment, Uuid};

    fn image_with(topics: &[(&str, i32)]) -> MetadataImage {
        let mut records = vec![MetadataRecord::RegisterBroker {
            node_id: 1,
            host: "localhost".into(),
            port: 9092,
            rack: None,
            incarnation_id: None,
        }];
        for (index, (name, partitions)) in topics.iter().enumerate() {
            records.push(MetadataRecord::CreateTopic {
                name: name.to_string(),
                topic_id: Uuid::from_u128(index as u128 + 1),
                partitions: (0..*partitions)
                    .map(|partition| PartitionAssignment {
                        partition,
                        replicas: vec![1],
                    })
                    .collect(),
                configs: Default::default(),
            });
        }
        quill_meta::apply_entry(&MetadataImage::empty("c"), 1, &records).unwrap()
    }

    fn request(
        topics: &[&str],
        limit: i32,
        cursor: Option<(&str, i32)>,
    ) -> DescribeTopicPartitionsRequest {
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|name| {
                        TopicRequest::default()
                            .with_name(TopicName(StrBytes::from_string(name.to_string())))
                    })
                    .collect(),
            )
            .with_response_partition_limit(limit)
            .with_cursor(cursor.map(|(topic, partition)| {
                RequestCursor::default()
                    .with_topic_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_index(partition)
            }))
    }

    /// (topic, error, partition indexes) per topic, and the next cursor.
    type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

    fn page(response: &DescribeTopicPartitionsResponse) -> Page {
        let topics = response
            .topics
            .iter()
            .map(|topic| {
                (
                    topic.name.as_ref().unwrap().0.to_string(),
                    topic.error_code,
                    topic.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect();
        let cursor = response
            .next_cursor
            .as_ref()
            .map(|cursor| (cursor.topic_name.0.to_string(), cursor.partition_index));
        (topics, cursor)
    }

    fn entry(name: &str, error: i16, partitions: &[i32]) -> (String, i16, Vec<i32>) {
        (name.to_string(), error, partitions.to_vec())
    }

    #[test]
    fn all_topics_in_name_order_with_every_field() {
        let image = image_with(&[("b", 2), ("a", 1)]);
        let response = describe(&image, &request(&[], 2000, None), 2000);
        assert_eq!(
            page(&response),
            (vec![entry("a", 0, &[0]), entry("b", 0, &[0, 1])], None)
        );
        let partition = &response.topics[1].partitions[1];
        assert_eq!(partition.leader_id, BrokerId(1));
        assert_eq!(partition.leader_epoch, 0);
        assert_eq!(partition.replica_nodes, vec![BrokerId(1)]);
        assert_eq!(partition.isr_nodes, vec![BrokerId(1)]);
        assert_eq!(partition.eligible_leader_replicas, Some(vec![]));
        assert_eq!(partition.last_known_elr, Some(vec![]));
        assert!(partition.offline_replicas.is_empty());
        assert_eq!(response.topics[1].topic_id, Uuid::from_u128(1));
        assert_eq!(
            response.topics[0].topic_authorized_operations,
            TOPIC_AUTHORIZED_OPERATIONS
        );
    }

    #[test]
    fn a_topic_cut_by_the_budget_gets_a_cursor_at_its_first_missing_partition() {
        let image = image_with(&[("a", 3), ("b", 2), ("c", 1)]);
        let first = describe(&image, &request(&[], 4, None), 2000);
        assert_eq!(
            page(&first),
            (
                vec![entry("a", 0, &[0, 1, 2]), entry("b", 0, &[0])],
                Some(("b".into(), 1))
            )
        );
        let second = describe(&image, &request(&[], 4, Some(("b", 1))), 2000);
        assert_eq!(
            page(&second),
            (vec![entry("b", 0, &[1]), entry("c", 0, &[0])], None)
        );
    }

    #[test]
    fn a_budget_spent_exactly_points_the_cursor_at_the_next_topic() {
        let image = image_with(&[("a", 2), ("b", 1)]);
        let response = describe(&image, &request(&[], 2, None), 2000);
        assert_eq!(
            page(&response),
            (vec![entry("a", 0, &[0, 1])], Some(("b".into(), 0)))
        );
    }

    #[test]
    fn the_broker_limit_caps_the_client_limit_and_zero_means_one() {
        let image = image_with(&[("a", 5)]);
        let capped = describe(&image, &request(&[], 2000, None), 3);
        assert_eq!(page(&capped).1, Some(("a".into(), 3)));
        let zero = describe(&image, &request(&[], 0, None), 2000);
        assert_eq!(
            page(&zero),
            (vec![entry("a", 0, &[0])], Some(("a".into(), 1)))
        );
    }

    #[test]
    fn named_topics_are_sorted_deduplicated_and_unknown_ones_reported() {
        let image = image_with(&[("a", 1), ("b", 1)]);
        let response = describe(
            &image,
            &request(&["missing", "b", "a", "b", "bad/name"], 2000, None),
            2000,
        );
        assert_eq!(
            page(&response),
            (
                vec![
                    entry("a", 0, &[0]),
                    entry("b", 0, &[0]),
                    entry("bad/name", 17, &[]),
                    entry("missing", 3, &[]),
                ],
                None
            )
        );
        // Unknown topics carry no id and still get the authorized operations.
        assert!(response.topics[3].topic_id.is_nil());
        assert_eq!(
            response.topics[3].topic_authorized_operations,
            TOPIC_AUTHORIZED_OPERATIONS
        );
    }

    #[test]
    fn topics_before_the_cursor_are_skipped_and_the_cursor_topic_must_be_listed() {
        let image = image_with(&[("a", 1), ("b", 2), ("c", 1)]);
        let response = describe(
            &image,
            &request(&["a", "b", "c"], 2000, Some(("b", 1))),
            2000,
        );
        assert_eq!(
            page(&response),
            (vec![entry("b", 0, &[1]), entry("c", 0, &[0])], None)
        );
        let invalid = describe(&image, &request(&["c", "a"], 2000, Some(("b", 0))), 2000);
        assert_eq!(
            page(&invalid),
            (vec![entry("c", 42, &[]), entry("a", 42, &[])], None)
        );
        assert_eq!(invalid.topics[0].topic_authorized_operations, i32::MIN);
    }

    #[test]
    fn a_cursor_past_the_end_or_negative_describes_only_existing_partitions() {
        let image = image_with(&[("a", 2), ("b", 1)]);
        let past_end = describe(&image, &request(&[], 10, Some(("a", 7))), 2000);
        assert_eq!(
            page(&past_end),
            (vec![entry("a", 0, &[]), entry("b", 0, &[0])], None)
        );
        // Partition -1 does not exist but counts towards the range, as in Kafka.
        let negative = describe(&image, &request(&[], 2, Some(("a", -1))), 2000);
        assert_eq!(
            page(&negative),
            (vec![entry("a", 0, &[0])], Some(("a".into(), 1)))
        );
        let huge = describe(&image, &request(&[], 2000, Some(("a", i32::MAX))), 2000);
        assert_eq!(page(&huge).0[0], entry("a", 0, &[]));
    }

    #[test]
    fn topic_order_is_javas_utf16_order() {
        assert_eq!(java_string_order("a", "b"), Ordering::Less);
        // U+FFFD sorts after a surrogate pair in UTF-16, before it in UTF-8.
        assert_eq!(
            java_string_order("\u{FFFD}", "\u{1F600}"),
            Ordering::Greater
        );
    }
}
