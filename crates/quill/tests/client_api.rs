//! `quill-client` as a library against the real broker binary: producer (keyed partitioning,
//! dense offsets, acks=0, many batches and requests), consumer (seek by offset and timestamp,
//! mid-batch starts, out-of-range resets) and admin offsets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::BrokerProcess;
use quill_client::admin::{NewTopic, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use quill_client::consumer::OffsetReset;
use quill_client::partitioner::partition_for_key;
use quill_client::{
    Acks, Admin, Client, ClientConfig, ClientError, Compression, Consumer, ConsumerConfig,
    ConsumerRecord, OffsetSpec, Producer, ProducerConfig, ProducerRecord, ResponseError,
    TopicPartition,
};

const TEST_DEADLINE: Duration = Duration::from_secs(30);

fn start_broker(extra: &[&str]) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), extra);
    (dir, broker)
}

async fn client(broker: &BrokerProcess) -> Client {
    Client::connect(ClientConfig::new([broker.address()]))
        .await
        .unwrap()
}

async fn create_topic(client: &Client, name: &str, partitions: i32) {
    let topic = NewTopic {
        name: name.into(),
        partitions,
        replication_factor: 1,
        configs: Vec::new(),
    };
    Admin::new(client.clone())
        .create_topics(&[topic])
        .await
        .unwrap();
}

fn record(topic: &str, key: Option<&str>, value: &str) -> ProducerRecord {
    ProducerRecord {
        topic: topic.into(),
        key: key.map(|key| Bytes::from(key.to_string())),
        value: Some(Bytes::from(value.to_string())),
        ..ProducerRecord::default()
    }
}

/// Polls until `count` records arrived (bounded by the test deadline).
async fn consume_exactly(consumer: &mut Consumer, count: usize) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + TEST_DEADLINE;
    let mut records = Vec::new();
    while records.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} records arrived",
            records.len()
        );
        records.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    assert_eq!(records.len(), count, "more records than produced");
    records
}

async fn consumer_from(
    client: &Client,
    topic: &str,
    partitions: i32,
    spec: OffsetSpec,
) -> Consumer {
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    let assignment = (0..partitions)
        .map(|p| (TopicPartition::new(topic, p), spec))
        .collect();
    consumer.assign(assignment).await.unwrap();
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_get_dense_offsets_in_their_murmur2_partition() {
    let (_dir, broker) = start_broker(&[]);
    let client = client(&broker).await;
    create_topic(&client, "keyed", 3).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::new();
    for index in 0..300 {
        let key = format!("user-{}", index % 17);
        deliveries.push((
            key.clone(),
            producer
                .send(record("keyed", Some(&key), &index.to_string()))
                .await
                .unwrap(),
        ));
    }
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (key, delivery) in deliveries {
        let metadata = delivery.await.unwrap();
        assert_eq!(
            metadata.partition,
            partition_for_key(key.as_bytes(), 3),
            "{key}"
        );
        offsets
            .entry(metadata.partition)
            .or_default()
            .push(metadata.offset);
    }
    for partition_offsets in offsets.values() {
        let expected: Vec<i64> = (0..partition_offsets.len() as i64).collect();
        assert_eq!(partition_offsets, &expected);
    }
    producer.close().await;

    let mut consumer = consumer_from(&client, "keyed", 3, OffsetSpec::Earliest).await;
    let records = consume_exactly(&mut consumer, 300).await;
    let mut last_value_per_key: BTreeMap<Bytes, i64> = BTreeMap::new();
    for record in &records {
        let key = record.key.clone().unwrap();
        assert_eq!(record.partition, partition_for_key(&key, 3));
        let value: i64 = std::str::from_utf8(record.value.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        // Per key (hence per partition) order is the send order.
        if let Some(previous) = last_value_per_key.insert(key, value) {
            assert!(previous < value);
        }
    }
}

/// Produces 5000 records of 500 bytes alternating over two partitions in 4 KiB batches and
/// 64 KiB requests, and checks every record arrives once, in order per partition.
async fn many_batches_arrive_in_order(max_in_flight_per_broker: usize) {
    let (_dir, broker) = start_broker(&[]);
    let client = client(&broker).await;
    create_topic(&client, "volume", 2).await;
    let config = ProducerConfig {
        acks: Acks::Leader,
        compression: Compression::Lz4,
        batch_size_bytes: 4096,
        max_request_size_bytes: 64 * 1024,
        max_in_flight_per_broker,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client.clone(), config).unwrap();
    let payload = "x".repeat(500);
    for index in 0..5000 {
        let mut outgoing = record("volume", None, &format!("{index}:{payload}"));
        outgoing.partition = Some(index % 2);
        producer
            .send_with_callback(outgoing, |result| assert!(result.is_ok(), "{result:?}"))
            .await
            .unwrap();
    }
    producer.close().await;
    let mut consumer = consumer_from(&client, "volume", 2, OffsetSpec::Earliest).await;
    let records = consume_exactly(&mut consumer, 5000).await;
    for partition in 0..2 {
        let indexes: Vec<i32> = records
            .iter()
            .filter(|record| record.partition == partition)
            .map(|record| {
                let value = std::str::from_utf8(record.value.as_deref().unwrap()).unwrap();
                value.split(':').next().unwrap().parse().unwrap()
            })
            .collect();
        let expected: Vec<i32> = (0..5000).filter(|index| index % 2 == partition).collect();
        let first_difference = indexes
            .iter()
            .zip(&expected)
            .position(|(got, want)| got != want);
        assert_eq!(indexes.len(), expected.len(), "partition {partition}");
        assert_eq!(
            first_difference, None,
            "partition {partition} out of order at position {first_difference:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_batches_and_requests_arrive_complete_and_in_order() {
    many_batches_arrive_in_order(1).await;
}

/// Kafka handles the requests of one connection one at a time, so a producer may keep several
/// Produce requests in flight and still get its batches appended in order (Quill's broker does
/// the same: crates/quill-broker/src/net.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_produce_requests_keep_partition_order() {
    many_batches_arrive_in_order(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_by_timestamp_offset_and_from_end() {
    let (_dir, broker) = start_broker(&[]);
    let client = client(&broker).await;
    create_topic(&client, "times", 1).await;
    // Uncompressed: the broker answers a timestamp lookup inside a compressed batch with the
    // batch's base offset (Kafka decompresses to find the exact record).
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    for index in 0..10i64 {
        let mut outgoing = record("times", None, &index.to_string());
        outgoing.partition = Some(0);
        outgoing.timestamp_ms = Some(1_700_000_000_000 + index * 1000);
        producer.send_with_callback(outgoing, |_| {}).await.unwrap();
    }
    producer.close().await;
    let values = |records: &[ConsumerRecord]| -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned())
            .collect()
    };

    let mut consumer = consumer_from(
        &client,
        "times",
        1,
        OffsetSpec::Timestamp(1_700_000_004_500),
    )
    .await;
    let records = consume_exactly(&mut consumer, 5).await;
    assert_eq!(values(&records), ["5", "6", "7", "8", "9"]);
    assert_eq!(records[0].timestamp_ms, 1_700_000_005_000);

    // A start inside a batch skips the batch's earlier records.
    let partition = TopicPartition::new("times", 0);
    consumer
        .seek(&partition, OffsetSpec::Offset(7))
        .await
        .unwrap();
    assert_eq!(
        values(&consume_exactly(&mut consumer, 3).await),
        ["7", "8", "9"]
    );
    consumer
        .seek(&partition, OffsetSpec::FromEnd(2))
        .await
        .unwrap();
    assert_eq!(values(&consume_exactly(&mut consumer, 2).await), ["8", "9"]);
    // Past the last timestamp: the end.
    consumer
        .seek(&partition, OffsetSpec::Timestamp(1_800_000_000_000))
        .await
        .unwrap();
    assert_eq!(consumer.positions()[&partition], 10);

    let admin = Admin::new(client.clone());
    let earliest = admin
        .list_offsets(std::slice::from_ref(&partition), EARLIEST_TIMESTAMP)
        .await
        .unwrap();
    let latest = admin
        .list_offsets(std::slice::from_ref(&partition), LATEST_TIMESTAMP)
        .await
        .unwrap();
    assert_eq!(earliest[&partition].offset, 0);
    assert_eq!(latest[&partition].offset, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_sends_without_waiting_for_offsets() {
    let (_dir, broker) = start_broker(&[]);
    let client = client(&broker).await;
    create_topic(&client, "fire", 1).await;
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            acks: Acks::None,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    let delivery = producer
        .send(record("fire", None, "and forget"))
        .await
        .unwrap();
    producer.flush().await;
    assert_eq!(delivery.await.unwrap().offset, -1);
    producer.close().await;
    let mut consumer = consumer_from(&client, "fire", 1, OffsetSpec::Earliest).await;
    let records = consume_exactly(&mut consumer, 1).await;
    assert_eq!(records[0].value.as_deref(), Some(&b"and forget"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_positions_reset_or_fail_per_policy() {
    let (_dir, broker) = start_broker(&[]);
    let client = client(&broker).await;
    create_topic(&client, "range", 1).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    producer
        .send(record("range", None, "only"))
        .await
        .unwrap()
        .await
        .unwrap();
    producer.close().await;

    let partition = TopicPartition::new("range", 0);
    let config = ConsumerConfig {
        offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(client.clone(), config);
    consumer
        .assign(vec![(partition.clone(), OffsetSpec::Offset(1000))])
        .await
        .unwrap();
    assert_eq!(consume_exactly(&mut consumer, 1).await[0].offset, 0);

    let config = ConsumerConfig {
        offset_reset: OffsetReset::Fail,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(client.clone(), config);
    consumer
        .assign(vec![(partition, OffsetSpec::Offset(1000))])
        .await
        .unwrap();
    let error = tokio::time::timeout(TEST_DEADLINE, async {
        loop {
            if let Err(error) = consumer.poll(Duration::from_millis(200)).await {
                return error;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        error.kafka_error(),
        Some(ResponseError::OffsetOutOfRange),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_fails_fast_when_auto_creation_is_off() {
    let (_dir, broker) = start_broker(&["--set", "auto.create.topics.enable=false"]);
    let client = client(&broker).await;
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            retries: 2,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let error = producer
        .send(record("nowhere", None, "x"))
        .await
        .err()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, ClientError::UnknownTopic(ref topic) if topic == "nowhere"),
        "{error}"
    );
    let error = Admin::new(client)
        .describe_topic("nowhere")
        .await
        .err()
        .unwrap();
    assert_eq!(error.to_string(), "topic `nowhere` does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_retries_through_a_broker_restart() {
    let (_dir, mut broker) = start_broker(&[]);
    let client = client(&broker).await;
    create_topic(&client, "restart", 1).await;
    let config = ProducerConfig {
        retries: 10,
        retry_backoff: Duration::from_millis(50),
        max_in_flight_per_broker: 1,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client.clone(), config).unwrap();
    let first = producer
        .send(record("restart", None, "before"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(first.offset, 0);

    tokio::task::block_in_place(|| broker.stop_with("TERM"));
    let mut deliveries = Vec::new();
    for index in 0..10 {
        deliveries.push(
            producer
                .send(record("restart", None, &format!("during {index}")))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| broker.restart());

    let mut offsets = Vec::new();
    for delivery in deliveries {
        let metadata = tokio::time::timeout(TEST_DEADLINE, delivery)
            .await
            .unwrap()
            .unwrap();
        offsets.push(metadata.offset);
    }
    assert_eq!(offsets, (1..=10).collect::<Vec<i64>>());
    producer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_numbers_batches_and_survives_a_restart() {
    let (_dir, mut broker) = start_broker(&[]);
    let client = client(&broker).await;
    create_topic(&client, "exactly", 2).await;
    let config = ProducerConfig {
        idempotent: true,
        batch_size_bytes: 2048,
        retry_backoff: Duration::from_millis(50),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client.clone(), config).unwrap();
    let send_range = |range: std::ops::Range<i32>| {
        let producer = &producer;
        async move {
            let mut deliveries = Vec::new();
            for index in range {
                let mut outgoing = record("exactly", None, &format!("{index}"));
                outgoing.partition = Some(index % 2);
                deliveries.push(producer.send(outgoing).await.unwrap());
            }
            deliveries
        }
    };
    for delivery in send_range(0..500).await {
        delivery.await.unwrap();
    }
    tokio::task::block_in_place(|| broker.stop_with("TERM"));
    let during = send_range(500..1000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| broker.restart());
    for delivery in during {
        tokio::time::timeout(TEST_DEADLINE, delivery)
            .await
            .unwrap()
            .unwrap();
    }
    producer.close().await;

    // Every batch carries the producer id and per-partition sequence numbers from 0.
    let mut raw = broker.connect();
    for partition in 0..2 {
        let response = raw.fetch("exactly", partition, 0);
        let mut records = response.responses[0].partitions[0].records.clone().unwrap();
        let batches =
            kafka_protocol::records::RecordBatchDecoder::decode_batch_info(&mut records).unwrap();
        assert!(
            batches.iter().all(|batch| batch.producer_id >= 0),
            "{batches:?}"
        );
        assert_eq!(batches[0].base_sequence, 0);
        let mut expected_sequence = 0;
        for batch in &batches {
            assert_eq!(batch.base_sequence, expected_sequence);
            expected_sequence += batch.record_count;
        }
    }
    let mut consumer = consumer_from(&client, "exactly", 2, OffsetSpec::Earliest).await;
    let records = consume_exactly(&mut consumer, 1000).await;
    for partition in 0..2 {
        let values: Vec<i32> = records
            .iter()
            .filter(|record| record.partition == partition)
            .map(|record| {
                std::str::from_utf8(record.value.as_deref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        let expected: Vec<i32> = (0..1000).filter(|index| index % 2 == partition).collect();
        assert_eq!(values, expected, "partition {partition}");
    }
}
