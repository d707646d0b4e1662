//! Produce: validate every record, then append producer batches as sent (zero-copy `Bytes` from
//! the request frame; re-encoded only when the topic's `compression.type` asks), then
//! wait for durability when acks = -1.
//!
//! The two phases are separate so the connection can run the appends in request order (which
//! clients rely on for per-partition order) while the durability waits of pipelined requests
//! overlap and share group-committed fsyncs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use quill_log::{AppendInfo, BatchHeader, Compression, LogError};
use quill_txn::TxnError;

use super::txn::VerifyFailure;
use crate::clock;
use crate::partitions::{Partition, PartitionError};
use crate::state::BrokerState;

/// What the connection does with the response (acks=0 gets none).
pub enum ProduceOutcome {
    Respond(ProduceResponse),
    /// acks=0: no response; `any_error` makes the connection close, which is how Kafka tells
    /// an acks=0 producer that something went wrong.
    NoResponse {
        any_error: bool,
    },
}

/// A Produce whose appends are done: what is left is waiting for durability and answering.
pub struct AppendedProduce {
    acks: i16,
    deadline: tokio::time::Instant,
    topics: Vec<AppendedTopic>,
}

struct AppendedTopic {
    name: TopicName,
    topic_id: quill_meta::Uuid,
    topic: String,
    results: Vec<Result<Appended, PartitionProduceResponse>>,
}

/// Phase 1, in the connection's request order: validates and appends every partition.
/// `api_version` is the request's (see [`check_records_section`]).
pub async fn append(
    state: &BrokerState,
    api_version: i16,
    request: ProduceRequest,
) -> AppendedProduce {
    let acks = request.acks;
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms.max(0)).unwrap_or(0));
    let mut topics = Vec::with_capacity(request.topic_data.len());
    let transactional_id = request.transactional_id.as_ref().map(|id| id.0.to_string());
    let verified = match &transactional_id {
        Some(id) => verify_transactional_batches(state, id, &request).await,
        None => HashMap::new(),
    };
    // Guarded appends that found no open transaction: verified together after the loop.
    let mut unverified: Vec<Unverified> = Vec::new();
    for topic_data in request.topic_data {
        let topic = topic_data.name.0.to_string();
        let mut results = Vec::with_capacity(topic_data.partition_data.len());
        for partition_data in topic_data.partition_data {
            let result = if !matches!(acks, -1..=1) {
                Err(partition_error(
                    partition_data.index,
                    ResponseError::InvalidRequiredAcks.code(),
                    None,
                ))
            } else if let Err(refused) = check_records_section(api_version, &topic, &partition_data)
            {
                Err(partition_error(
                    partition_data.index,
                    refused.0,
                    Some(&refused.1),
                ))
            } else {
                match check_transaction(
                    transactional_id.as_deref(),
                    &verified,
                    &topic,
                    &partition_data,
                ) {
                    Err(refused) => Err(partition_error(
                        partition_data.index,
                        refused.0,
                        Some(&refused.1),
                    )),
                    Ok(TxnWrite::Verified) => {
                        append_partition(state, &topic, partition_data, acks, false)
                            .await
                            .map_err(Refused::into_response)
                    }
                    Ok(TxnWrite::Guarded) => {
                        let retry = partition_data.clone();
                        match append_partition(state, &topic, partition_data, acks, true).await {
                            Err(Refused::TransactionNotOpen) => {
                                unverified.push(Unverified {
                                    topic_position: topics.len(),
                                    result_position: results.len(),
                                    topic: topic.clone(),
                                    data: retry,
                                });
                                // Replaced once verified (below).
                                Err(partition_error(
                                    index_of(&unverified),
                                    ResponseError::NotEnoughReplicas.code(),
                                    None,
                                ))
                            }
                            other => other.map_err(Refused::into_response),
                        }
                    }
                }
            };
            results.push(result);
        }
        topics.push(AppendedTopic {
            name: topic_data.name,
            topic_id: topic_data.topic_id,
            topic,
            results,
        });
    }
    if let Some(id) = &transactional_id {
        append_after_verification(state, id, acks, unverified, &mut topics).await;
    }
    AppendedProduce {
        acks,
        deadline: tokio::time::Instant::now() + timeout,
        topics,
    }
}

impl AppendedProduce {
    /// Phase 2, which may overlap with the connection's later requests: with acks=-1 waits until
    /// every appended partition is durable per its flush policy (acks=1 answers once appended,
    /// as in Kafka), then builds the response.
    pub async fn finish(self) -> ProduceOutcome {
        let mut any_error = false;
        let mut topic_responses = Vec::with_capacity(self.topics.len());
        for appended_topic in self.topics {
            let mut partition_responses = Vec::with_capacity(appended_topic.results.len());
            for result in appended_topic.results {
                let response = match result {
                    Err(response) => response,
                    Ok(appended) if self.acks != -1 => {
                        success(appended.partition.partition, &appended.info)
                    }
                    Ok(appended) => {
                        await_durable(&appended_topic.topic, appended, self.deadline).await
                    }
                };
                any_error |= response.error_code != 0;
                partition_responses.push(response);
            }
            topic_responses.push(
                TopicProduceResponse::default()
                    .with_name(appended_topic.name)
                    .with_topic_id(appended_topic.topic_id)
                    .with_partition_responses(partition_responses),
            );
        }
        if self.acks == 0 {
            return ProduceOutcome::NoResponse { any_error };
        }
        ProduceOutcome::Respond(ProduceResponse::default().with_responses(topic_responses))
    }
}

/// The first Produce version that may carry zstd batches (KIP-110).
const FIRST_ZSTD_PRODUCE_VERSION: i16 = 7;

/// Kafka's checks of a partition's records section before any log work
/// (`ProduceRequest.validateRecords`, and the base-offset rule of the log's analysis of client
/// appends): from Produce v3 on a partition carries exactly one batch; a zstd batch needs v7
/// (KIP-110: an older version cannot promise the client reads zstd back; sarama before 1.23
/// sends zstd in v3): UNSUPPORTED_COMPRESSION_TYPE; a client batch's base offset is 0.
/// Sections whose first batch cannot be parsed are left to the log's validation.
fn check_records_section(
    api_version: i16,
    topic: &str,
    data: &PartitionProduceData,
) -> Result<(), (i16, String)> {
    let Some(records) = data.records.as_ref() else {
        return Ok(()); // answered by append_partition
    };
    let Ok(header) = BatchHeader::parse(records) else {
        return Ok(());
    };
    if api_version < FIRST_ZSTD_PRODUCE_VERSION
        && header.compression_codec() == Compression::Zstd.id()
    {
        return Err((
            ResponseError::UnsupportedCompressionType.code(),
            format!(
                "Produce requests with version {api_version} are not allowed to use ZStandard compression"
            ),
        ));
    }
    // A second batch counts once it is whole (Kafka's batch iterator stops at a partial one).
    let rest = records.get(header.size_bytes..).unwrap_or_default();
    if BatchHeader::parse(rest).is_ok_and(|second| second.size_bytes <= rest.len()) {
        return Err((
            ResponseError::InvalidRecord.code(),
            format!(
                "Produce requests with version {api_version} are only allowed to contain exactly one record batch per partition"
            ),
        ));
    }
    if header.base_offset != 0 {
        return Err((
            ResponseError::InvalidRecord.code(),
            format!(
                "The baseOffset of the record batch in the append to {topic}-{} should be 0, but it is {}",
                data.index, header.base_offset
            ),
        ));
    }
    Ok(())
}

/// What verification said about each transactional batch's partition, keyed by partition.
type Verified = HashMap<(String, i32), Result<TxnWrite, VerifyFailure>>;

/// How a partition's batch may be appended as far as its transaction is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnWrite {
    /// Verified (or not transactional): append as usual.
    Verified,
    /// The coordinator is another broker: append only if the batch continues its producer's
    /// open transaction here (the log checks under its lock); otherwise verify, then append.
    /// Kafka's leader skips verification the same way, sparing a round trip per Produce.
    Guarded,
}

/// A guarded append that found no open transaction, waiting for verification.
struct Unverified {
    topic_position: usize,
    result_position: usize,
    topic: String,
    data: PartitionProduceData,
}

fn index_of(unverified: &[Unverified]) -> i32 {
    unverified.last().map_or(0, |pending| pending.data.index)
}

/// Verifies the guarded appends that found no open transaction (one AddPartitionsToTxn
/// `verify_only` for all of them: one producer per request) and appends those in the
/// transaction, replacing their placeholder results.
async fn append_after_verification(
    state: &BrokerState,
    transactional_id: &str,
    acks: i16,
    unverified: Vec<Unverified>,
    topics: &mut [AppendedTopic],
) {
    let Some(header) = unverified.first().and_then(|pending| {
        pending
            .data
            .records
            .as_ref()
            .and_then(|records| BatchHeader::parse(records).ok())
    }) else {
        return;
    };
    let partitions: Vec<(String, i32)> = unverified
        .iter()
        .map(|pending| (pending.topic.clone(), pending.data.index))
        .collect();
    let verified: HashMap<(String, i32), Result<(), VerifyFailure>> =
        super::txn::verify_transaction(
            state,
            transactional_id,
            header.producer_id,
            header.producer_epoch,
            &partitions,
        )
        .await
        .into_iter()
        .collect();
    for pending in unverified {
        let index = pending.data.index;
        let result = match verified.get(&(pending.topic.clone(), index)) {
            Some(Ok(())) => append_partition(state, &pending.topic, pending.data, acks, false)
                .await
                .map_err(Refused::into_response),
            Some(Err(failure)) => {
                let (code, message) = produce_verification_error(failure);
                Err(partition_error(index, code, Some(&message)))
            }
            None => Err(partition_error(
                index,
                ResponseError::NotEnoughReplicas.code(),
                Some("the partition's transaction could not be verified"),
            )),
        };
        if let Some(slot) = topics
            .get_mut(pending.topic_position)
            .and_then(|topic| topic.results.get_mut(pending.result_position))
        {
            *slot = result;
        }
    }
}

/// KIP-890 part 1: asks the transaction coordinator (here or on another broker), once per
/// request, whether each hosted partition with a transactional batch is in its producer's
/// ongoing transaction. Batches of more than one producer id/epoch: INVALID_PRODUCER_ID_MAPPING.
async fn verify_transactional_batches(
    state: &BrokerState,
    transactional_id: &str,
    request: &ProduceRequest,
) -> Verified {
    let mut by_producer: HashMap<(i64, i16), Vec<(String, i32)>> = HashMap::new();
    let mut verified = HashMap::new();
    for topic_data in &request.topic_data {
        for data in &topic_data.partition_data {
            let name = topic_data.name.0.to_string();
            if state.partitions.get(&name, data.index).is_none() {
                // Not hosted here: the append answers NOT_LEADER_OR_FOLLOWER or
                // UNKNOWN_TOPIC_OR_PARTITION; asking the coordinator about it would only spoil
                // the answer for the request's other partitions.
                verified.insert((name, data.index), Ok(TxnWrite::Verified));
                continue;
            }
            let Some(header) = data
                .records
                .as_ref()
                .and_then(|records| BatchHeader::parse(records).ok())
            else {
                continue;
            };
            if header.is_transactional() {
                by_producer
                    .entry((header.producer_id, header.producer_epoch))
                    .or_default()
                    .push((name, data.index));
            }
        }
    }
    if by_producer.len() > 1 {
        // Kafka's ReplicaManager refuses such a request outright (one producer per
        // transactional id), so a request asks the coordinator at most once.
        let refusal = VerifyFailure::Local(TxnError::InvalidProducerIdMapping);
        for partition in by_producer.into_values().flatten() {
            verified.insert(partition, Err(refusal.clone()));
        }
        return verified;
    }
    if super::txn::coordinated_elsewhere(state, transactional_id) {
        for partition in by_producer.into_values().flatten() {
            verified.insert(partition, Ok(TxnWrite::Guarded));
        }
        return verified;
    }
    for ((producer_id, producer_epoch), partitions) in by_producer {
        verified.extend(
            super::txn::verify_transaction(
                state,
                transactional_id,
                producer_id,
                producer_epoch,
                &partitions,
            )
            .await
            .into_iter()
            .map(|(partition, result)| (partition, result.map(|()| TxnWrite::Verified))),
        );
    }
    verified
}

/// Kafka's rules for the transactional part of a Produce request: a request with a
/// transactional id carries only transactional batches and vice versa, and (KIP-890 part 1) a
/// transactional batch goes only to a partition already added to the producer's ongoing
/// transaction, with the current epoch — so a late or zombie write cannot slip into a later
/// transaction. Idempotence checks (sequence, epoch vs. the partition) stay with the log.
fn check_transaction(
    transactional_id: Option<&str>,
    verified: &Verified,
    topic: &str,
    data: &PartitionProduceData,
) -> Result<TxnWrite, (i16, String)> {
    let Some(records) = data.records.as_ref() else {
        return Ok(TxnWrite::Verified); // answered by append_partition
    };
    let Ok(header) = BatchHeader::parse(records) else {
        return Ok(TxnWrite::Verified); // the log's validation answers CORRUPT_MESSAGE
    };
    let refuse = |code: i16, message: &str| Err((code, message.to_string()));
    match (transactional_id, header.is_transactional()) {
        (None, false) => Ok(TxnWrite::Verified),
        (None, true) => refuse(
            ResponseError::InvalidRecord.code(),
            "transactional records need the request's transactional id",
        ),
        (Some(_), false) => refuse(
            ResponseError::InvalidRecord.code(),
            "a request with a transactional id must carry only transactional records",
        ),
        (Some(_), true) => match verified.get(&(topic.to_string(), data.index)) {
            Some(Ok(write)) => Ok(*write),
            Some(Err(failure)) => {
                let (code, message) = produce_verification_error(failure);
                refuse(code, &message)
            }
            // Every transactional batch was verified above; should one have been missed it is
            // refused (retriable), never let through unverified.
            None => refuse(
                ResponseError::NotEnoughReplicas.code(),
                "the partition's transaction could not be verified",
            ),
        },
    }
}

/// How a Produce answers a failed verification (Kafka's `AddPartitionsToTxnManager` mapping):
/// a fenced producer INVALID_PRODUCER_EPOCH, a partition not in the transaction or an unknown
/// producer as such, a coordinator that cannot answer now NOT_ENOUGH_REPLICAS (retriable for
/// every client).
fn produce_verification_error(failure: &VerifyFailure) -> (i16, String) {
    match failure {
        VerifyFailure::Local(error) => {
            let code = match error {
                TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch.code(),
                TxnError::InvalidTxnState(_) | TxnError::InvalidProducerIdMapping => {
                    error.kafka_error_code()
                }
                _ => ResponseError::NotEnoughReplicas.code(),
            };
            (code, error.to_string())
        }
        VerifyFailure::Remote(code) => {
            let passed_on = [
                ResponseError::InvalidTxnState.code(),
                ResponseError::InvalidProducerIdMapping.code(),
                ResponseError::InvalidProducerEpoch.code(),
            ];
            let code = if *code == ResponseError::ProducerFenced.code() {
                ResponseError::InvalidProducerEpoch.code()
            } else if passed_on.contains(code) {
                *code
            } else {
                ResponseError::NotEnoughReplicas.code()
            };
            (
                code,
                format!("the transaction coordinator answered error code {code}"),
            )
        }
    }
}

struct Appended {
    partition: Arc<Partition>,
    info: AppendInfo,
    /// The leader epoch the records were appended in: acks=all waits only while it lasts.
    leader_epoch: i32,
}

/// Why [`append_partition`] wrote nothing.
enum Refused {
    Response(PartitionProduceResponse),
    /// A guarded append found no open transaction of its producer: verify, then append.
    TransactionNotOpen,
}

impl Refused {
    fn into_response(self) -> PartitionProduceResponse {
        match self {
            Refused::Response(response) => response,
            // Only guarded appends get this, and they are verified instead of answered.
            Refused::TransactionNotOpen => partition_error(
                -1,
                ResponseError::NotEnoughReplicas.code(),
                Some("the partition's transaction could not be verified"),
            ),
        }
    }
}

impl From<PartitionProduceResponse> for Refused {
    fn from(response: PartitionProduceResponse) -> Refused {
        Refused::Response(response)
    }
}

async fn append_partition(
    state: &BrokerState,
    topic: &str,
    data: PartitionProduceData,
    acks: i16,
    continuing_transaction_only: bool,
) -> Result<Appended, Refused> {
    if topic == crate::offsets_store::OFFSETS_TOPIC || topic == quill_txn::TRANSACTION_STATE_TOPIC {
        // Only the coordinators write there (Kafka refuses clients the same way).
        return Err(partition_error(
            data.index,
            ResponseError::InvalidTopicException.code(),
            Some(&format!("cannot produce to the internal topic {topic}")),
        )
        .into());
    }
    let partition = match super::led_partition(state, &state.image(), topic, data.index) {
        Ok(partition) => partition,
        Err(code) => return Err(partition_error(data.index, code, None).into()),
    };
    let Some(records) = data.records else {
        return Err(partition_error(
            data.index,
            ResponseError::InvalidRecord.code(),
            Some("no records"),
        )
        .into());
    };
    let image = state.image();
    let info = image
        .topic(topic)
        .and_then(|info| info.partition(data.index));
    let leader_epoch = info.map_or(0, |info| info.leader_epoch);
    // Kafka checks min.insync.replicas before anything is appended, for acks=-1 only.
    let isr_size = info.map_or(0, |info| info.isr.len());
    let min_insync_replicas = partition.min_insync_replicas();
    if acks == -1 && i32::try_from(isr_size).unwrap_or(i32::MAX) < min_insync_replicas {
        return Err(partition_error(
            data.index,
            ResponseError::NotEnoughReplicas.code(),
            Some(&format!(
                "The size of the current ISR {isr_size} is insufficient to satisfy the min.isr requirement of {min_insync_replicas} for partition {topic}-{}",
                data.index
            )),
        ).into());
    }
    match partition
        .append_as(
            records,
            clock::now_ms(),
            leader_epoch,
            continuing_transaction_only,
        )
        .await
    {
        Ok(info) => {
            if !info.duplicate {
                state
                    .metrics
                    .record_produced(topic, info.bytes, u64::from(info.record_count));
            }
            Ok(Appended {
                partition,
                info,
                leader_epoch,
            })
        }
        Err(PartitionError::Log(LogError::TransactionNotOpen { .. })) => {
            Err(Refused::TransactionNotOpen)
        }
        Err(error) => Err(append_failed(topic, data.index, &error).into()),
    }
}

/// acks=all: waits, within the request's timeout, until the records are durable here (which
/// reports a failed fsync) and then until the high watermark passes them (every member of
/// the ISR has them durably), then checks `min.insync.replicas` against the ISR they reached
/// (Kafka's DelayedProduce: NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank meanwhile).
async fn await_durable(
    topic: &str,
    appended: Appended,
    deadline: tokio::time::Instant,
) -> PartitionProduceResponse {
    let index = appended.partition.partition;
    let through_offset = appended.info.last_offset + 1;
    let durable =
        tokio::time::timeout_at(deadline, appended.partition.wait_durable(through_offset));
    match durable.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return append_failed(topic, index, &error),
        Err(_elapsed) => {
            return partition_error(index, ResponseError::RequestTimedOut.code(), None)
        }
    }
    let replicated = tokio::time::timeout_at(
        deadline,
        appended
            .partition
            .wait_replicated(through_offset, appended.leader_epoch),
    );
    let isr_size = match replicated.await {
        Ok(Ok(isr_size)) => isr_size,
        Ok(Err(crate::partitions::NotLeader)) => {
            return partition_error(index, ResponseError::NotLeaderOrFollower.code(), None)
        }
        Err(_elapsed) => {
            return partition_error(index, ResponseError::RequestTimedOut.code(), None)
        }
    };
    let min_insync_replicas = appended.partition.min_insync_replicas();
    if i32::try_from(isr_size).unwrap_or(i32::MAX) < min_insync_replicas {
        return partition_error(
            index,
            ResponseError::NotEnoughReplicasAfterAppend.code(),
            Some(&format!(
                "The size of the current ISR {isr_size} is insufficient to satisfy the min.isr requirement of {min_insync_replicas} for partition {topic}-{index}"
            )),
        );
    }
    success(index, &appended.info)
}

fn append_failed(topic: &str, partition: i32, error: &PartitionError) -> PartitionProduceResponse {
    tracing::debug!(topic, partition, %error, "produce rejected");
    let response = partition_error(
        partition,
        error.kafka_error_code(),
        Some(&error.to_string()),
    );
    match error {
        // Kafka's RecordValidationException: each refused record's index and message (v8+;
        // older versions drop the field when encoding).
        PartitionError::Log(LogError::RecordErrors { record_errors, .. }) => response
            .with_record_errors(
                record_errors
                    .iter()
                    .map(|record_error| {
                        BatchIndexAndErrorMessage::default()
                            .with_batch_index(record_error.batch_index)
                            .with_batch_index_error_message(Some(StrBytes::from_string(
                                record_error.message.clone(),
                            )))
                    })
                    .collect(),
            ),
        _ => response,
    }
}

fn success(partition: i32, appended: &AppendInfo) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(partition)
        .with_base_offset(appended.base_offset)
        .with_log_append_time_ms(appended.log_append_time_ms)
        .with_log_start_offset(appended.log_start_offset)
}

fn partition_error(
    partition: i32,
    error_code: i16,
    message: Option<&str>,
) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(partition)
        .with_error_code(error_code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(|text| StrBytes::from_string(text.to_string())))
}

/// Produce v10+ (KIP-951): partitions answered NOT_LEADER_OR_FOLLOWER name their current
/// leader and epoch, and the response carries those leaders' endpoints.
pub fn add_leader_hints(
    hints: &super::LeaderHints,
    api_version: i16,
    response: &mut ProduceResponse,
) {
    const FIRST_VERSION_WITH_LEADER_HINTS: i16 = 10;
    if api_version < FIRST_VERSION_WITH_LEADER_HINTS {
        return;
    }
    let mut leaders = std::collections::BTreeSet::new();
    for topic in &mut response.responses {
        for partition in &mut topic.partition_responses {
            if !super::wants_leader_hint(partition.error_code) {
                continue;
            }
            if let Some((leader, epoch)) = hints.leader(topic.name.0.as_str(), partition.index) {
                partition.current_leader =
                    kafka_protocol::messages::produce_response::LeaderIdAndEpoch::default()
                        .with_leader_id(kafka_protocol::messages::BrokerId(leader))
                        .with_leader_epoch(epoch);
                leaders.insert(leader);
            }
        }
    }
    response.node_endpoints = hints.endpoints(leaders, |node_id, host, port, rack| {
        kafka_protocol::messages::produce_response::NodeEndpoint::default()
            .with_node_id(node_id)
            .with_host(host)
            .with_port(port)
            .with_rack(rack)
    });
}
