//! Transactions at the protocol level: the Kafka error codes for bad input, KIP-890's refusal of
//! transactional writes to partitions outside the transaction, read_committed Fetch and
//! ListOffsets at the last stable offset with the aborted-transactions list, and the admin views
//! (DescribeTransactions, ListTransactions, DescribeProducers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const TOPIC: &str = "txn-topic";

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn txn_id(value: &str) -> TransactionalId {
    TransactionalId(text(value))
}

/// A transactional v2 batch of `values` from `producer_id`/`epoch` starting at `sequence`.
fn transactional_batch(producer_id: i64, epoch: i16, sequence: i32, values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(index, value)| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            sequence: sequence + index as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(value.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buffer = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buffer.freeze()
}

fn init(client: &mut TestClient, id: Option<&str>) -> InitProducerIdResponse {
    client.call(
        &InitProducerIdRequest::default()
            .with_transactional_id(id.map(txn_id))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
        4,
    )
}

fn add_partition(
    client: &mut TestClient,
    id: &str,
    producer_id: i64,
    epoch: i16,
    version: i16,
) -> i16 {
    let response = client.call(
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id(id))
            .with_v3_and_below_producer_id(ProducerId(producer_id))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partitions(vec![0])]),
        version,
    );
    response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

fn end_txn(client: &mut TestClient, id: &str, producer_id: i64, epoch: i16, commit: bool) -> i16 {
    client
        .call(
            &EndTxnRequest::default()
                .with_transactional_id(txn_id(id))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch)
                .with_committed(commit),
            3,
        )
        .error_code
}

fn produce_transactional(client: &mut TestClient, id: &str, batch: Bytes) -> i16 {
    let request = produce_request(TOPIC, 0, batch, -1).with_transactional_id(Some(txn_id(id)));
    client.call(&request, 9).responses[0].partition_responses[0].error_code
}

fn fetch_committed(client: &mut TestClient) -> fetch_response::PartitionData {
    let request = fetch_request(TOPIC, 0, 0, 0).with_isolation_level(1);
    let response = client.call(&request, 11);
    response.responses[0].partitions[0].clone()
}

fn latest(client: &mut TestClient, isolation_level: i8) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(TOPIC))
            .with_partitions(vec![
                ListOffsetsPartition::default().with_timestamp(-1)
            ])]);
    client.call(&request, 5).topics[0].partitions[0].offset
}

fn describe(client: &mut TestClient, id: &str) -> describe_transactions_response::TransactionState {
    client
        .call(
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(id)]),
            0,
        )
        .transaction_states[0]
        .clone()
}

#[test]
fn bad_input_gets_kafkas_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    client.create_topic(TOPIC, 1);

    let first = init(&mut client, None);
    let second = init(&mut client, None);
    assert_eq!((first.error_code, first.producer_epoch), (0, 0));
    assert_ne!(first.producer_id, second.producer_id);

    // Transactional calls before InitProducerId: INVALID_PRODUCER_ID_MAPPING (49).
    assert_eq!(add_partition(&mut client, "nobody", 1, 0, 3), 49);
    assert_eq!(end_txn(&mut client, "nobody", 1, 0, true), 49);
    // A transactional id longer than transactional.id.max.bytes: INVALID_REQUEST (42).
    let long_id = "x".repeat(2000);
    assert_eq!(init(&mut client, Some(&long_id)).error_code, 42);
    // Timeout above transaction.max.timeout.ms: INVALID_TRANSACTION_TIMEOUT (50).
    let too_long = client.call(
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id("tx")))
            .with_transaction_timeout_ms(900_001)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
        4,
    );
    assert_eq!(too_long.error_code, 50);

    let ids = init(&mut client, Some("tx"));
    assert_eq!(ids.error_code, 0);
    let (producer_id, epoch) = (ids.producer_id.0, ids.producer_epoch);
    // Wrong producer id / epoch: INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (90), and
    // INVALID_PRODUCER_EPOCH (47) for clients older than KIP-588.
    assert_eq!(
        add_partition(&mut client, "tx", producer_id + 1, epoch, 3),
        49
    );
    assert_eq!(
        add_partition(&mut client, "tx", producer_id, epoch + 1, 3),
        90
    );
    assert_eq!(
        add_partition(&mut client, "tx", producer_id, epoch + 1, 1),
        47
    );
    // EndTxn with no transaction ongoing: INVALID_TXN_STATE (48).
    assert_eq!(end_txn(&mut client, "tx", producer_id, epoch, true), 48);
    // KIP-890: a transactional write to a partition not in the transaction: INVALID_TXN_STATE.
    let batch = transactional_batch(producer_id, epoch, 0, &["early"]);
    assert_eq!(produce_transactional(&mut client, "tx", batch), 48);
    // A transactional id with non-transactional records: INVALID_RECORD (87).
    let plain = record_batch(&["plain"], 1_700_000_000_000);
    assert_eq!(produce_transactional(&mut client, "tx", plain), 87);
    // Nothing of the refused writes is in the log.
    assert_eq!(latest(&mut client, 0), 0);
    assert_eq!(
        describe(&mut client, "tx").transaction_state.as_str(),
        "Empty"
    );
    assert_eq!(describe(&mut client, "unknown").error_code, 105);
}

#[test]
fn read_committed_stops_at_the_open_transaction_and_lists_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    client.create_topic(TOPIC, 1);
    let ids = init(&mut client, Some("tx"));
    let (producer_id, epoch) = (ids.producer_id.0, ids.producer_epoch);

    assert_eq!(add_partition(&mut client, "tx", producer_id, epoch, 3), 0);
    let batch = transactional_batch(producer_id, epoch, 0, &["a", "b"]);
    assert_eq!(produce_transactional(&mut client, "tx", batch.clone()), 0);
    // A retry of the same batch is a duplicate: the original offset comes back.
    let retried = client.call(
        &produce_request(TOPIC, 0, batch, -1).with_transactional_id(Some(txn_id("tx"))),
        9,
    );
    let answer = &retried.responses[0].partition_responses[0];
    assert_eq!((answer.error_code, answer.base_offset), (0, 0));
    assert_eq!(
        client.produce(TOPIC, 0, &["plain"]).responses[0].partition_responses[0].error_code,
        0
    );

    // The open transaction holds read_committed consumers at its first offset.
    let open = fetch_committed(&mut client);
    assert_eq!((open.high_watermark, open.last_stable_offset), (3, 0));
    assert!(open.records.as_ref().is_none_or(Bytes::is_empty));
    assert_eq!(latest(&mut client, 1), 0);
    assert_eq!(latest(&mut client, 0), 3);

    let described = describe(&mut client, "tx");
    assert_eq!(described.transaction_state.as_str(), "Ongoing");
    assert_eq!(described.topics[0].partitions, vec![0]);
    let listed = client.call(
        &ListTransactionsRequest::default()
            .with_state_filters(vec![text("Ongoing"), text("Bogus")]),
        1,
    );
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(listed.unknown_state_filters, vec![text("Bogus")]);
    let producers = client.call(
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(topic_name(TOPIC))
            .with_partition_indexes(vec![0])]),
        0,
    );
    let active = &producers.topics[0].partitions[0].active_producers;
    let ours = active
        .iter()
        .find(|p| p.producer_id.0 == producer_id)
        .expect("our producer");
    assert_eq!((ours.current_txn_start_offset, ours.last_sequence), (0, 1));

    assert_eq!(end_txn(&mut client, "tx", producer_id, epoch, false), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while describe(&mut client, "tx").transaction_state.as_str() != "CompleteAbort" {
        assert!(Instant::now() < deadline, "the abort did not complete");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The ABORT marker is at offset 3: everything is stable now, and the aborted transaction
    // is listed so clients drop its records.
    let stable = fetch_committed(&mut client);
    assert_eq!((stable.high_watermark, stable.last_stable_offset), (4, 4));
    let aborted = stable
        .aborted_transactions
        .expect("aborted list under read_committed");
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (aborted[0].producer_id.0, aborted[0].first_offset),
        (producer_id, 0)
    );
    assert_eq!(latest(&mut client, 1), 4);
    // read_uncommitted gets no aborted list (null), as Kafka answers.
    let uncommitted = client.call(&fetch_request(TOPIC, 0, 0, 0), 11);
    assert!(uncommitted.responses[0].partitions[0]
        .aborted_transactions
        .is_none());
}

fn fetch_stable_offset(client: &mut TestClient, group: &str) -> (i64, i16) {
    let response = client.call(
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(topic_name(TOPIC))
                    .with_partition_indexes(vec![0]),
            ]))
            .with_require_stable(true),
        7,
    );
    // A group-level error (e.g. COORDINATOR_LOAD_IN_PROGRESS while the group's partition loads
    // after a restart) comes with no topics.
    let Some(partition) = response.topics.first().and_then(|t| t.partitions.first()) else {
        assert_ne!(response.error_code, 0, "no partitions and no error");
        return (-1, response.error_code);
    };
    (partition.committed_offset, partition.error_code)
}

#[test]
fn transactional_offsets_survive_a_kill_before_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    client.create_topic(TOPIC, 1);
    let ids = init(&mut client, Some("tx"));
    let (producer_id, epoch) = (ids.producer_id.0, ids.producer_epoch);
    let added = client.call(
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn_id("tx"))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(text("g"))),
        1,
    );
    assert_eq!(added.error_code, 0);
    let committed = client.call(
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(txn_id("tx"))
            .with_group_id(GroupId(text("g")))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(topic_name(TOPIC))
                    .with_partitions(vec![
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(42)
                            .with_committed_leader_epoch(-1),
                    ]),
            ]),
        3,
    );
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    // Pending: require_stable answers UNSTABLE_OFFSET_COMMIT (88).
    assert_eq!(fetch_stable_offset(&mut client, "g"), (-1, 88));

    drop(client);
    broker.stop_with("KILL");
    broker.restart();
    let mut client = broker.connect();
    // Still pending after the restart: the offsets are in __consumer_offsets as the producer's
    // open transaction (the group partition loads in the background: retry while it does).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = fetch_stable_offset(&mut client, "g");
        if answer != (-1, 14) && answer != (-1, 15) {
            assert_eq!(answer, (-1, 88));
            break;
        }
        assert!(Instant::now() < deadline, "group partition did not load");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let code = end_txn(&mut client, "tx", producer_id, epoch, true);
        if code == 0 {
            break;
        }
        assert!(matches!(code, 14 | 15 | 51), "EndTxn answered {code}");
        assert!(Instant::now() < deadline, "EndTxn kept failing");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while fetch_stable_offset(&mut client, "g") != (42, 0) {
        assert!(
            Instant::now() < deadline,
            "the committed offset did not appear"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // And it stays committed across another restart (now from the commit marker in the log).
    drop(client);
    broker.stop_with("KILL");
    broker.restart();
    let mut client = broker.connect();
    let deadline = Instant::now() + Duration::from_secs(15);
    while fetch_stable_offset(&mut client, "g") != (42, 0) {
        assert!(
            Instant::now() < deadline,
            "the committed offset was lost in the restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
