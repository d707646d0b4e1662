//! Transactions (KIP-98): InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! TxnOffsetCommit, WriteTxnMarkers, DescribeTransactions, ListTransactions, DescribeProducers.
//! Thin: translate to `quill_txn` / `quill_group` calls and back; the per-version rules (which
//! error a pre-KIP-588 client gets for a fenced producer, v3- vs v4+ AddPartitionsToTxn) live
//! here.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    list_transactions_response, AddOffsetsToTxnRequest, AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, DescribeProducersRequest,
    DescribeProducersResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use quill_txn::{MarkerError, MarkerRequest, TxnError, TxnResult, TxnState};

use crate::state::BrokerState;
use crate::txn_store;

/// A coordinator topic that cannot be created or loaded: asked for by every client retry.
static UNAVAILABLE_WARNINGS: crate::rate_limit::WarnLimiter =
    crate::rate_limit::WarnLimiter::new(crate::rate_limit::WARNING_INTERVAL);

fn text(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

/// KIP-588: PRODUCER_FENCED exists from these versions on; older clients get
/// INVALID_PRODUCER_EPOCH for the same condition.
fn knows_producer_fenced(api: kafka_protocol::messages::ApiKey, version: i16) -> bool {
    use kafka_protocol::messages::ApiKey;
    match api {
        ApiKey::InitProducerId => version >= 4,
        ApiKey::TxnOffsetCommit => version >= 3,
        _ => version >= 2,
    }
}

/// Makes sure the coordinator is loaded; a failure is a retriable COORDINATOR_NOT_AVAILABLE.
async fn ready(state: &BrokerState) -> Result<(), TxnError> {
    state.ensure_transaction_topic().await.map_err(|error| {
        crate::warn_limited!(UNAVAILABLE_WARNINGS, %error, "transaction state topic unavailable");
        TxnError::CoordinatorNotAvailable
    })
}

/// Why verification (KIP-890 part 1) refused a transactional write: the local coordinator's
/// error, or the error code the coordinator on another broker answered.
#[derive(Debug, Clone)]
pub enum VerifyFailure {
    Local(TxnError),
    Remote(i16),
}

/// The broker coordinating `transactional_id`: the leader of its `__transaction_state`
/// partition (`None` while that topic does not exist yet: the local coordinator answers).
fn transaction_coordinator_node(state: &BrokerState, transactional_id: &str) -> Option<i32> {
    let image = state.image();
    let partition = state.txn.partition_for(transactional_id);
    image
        .topic(quill_txn::TRANSACTION_STATE_TOPIC)
        .and_then(|topic| topic.partition(partition))
        .map(|info| info.leader)
}

/// Whether another broker coordinates `transactional_id` (as far as this broker's image says).
pub fn coordinated_elsewhere(state: &BrokerState, transactional_id: &str) -> bool {
    transaction_coordinator_node(state, transactional_id)
        .is_some_and(|node| node != state.config.node_id)
}

/// Checks that each partition is in the producer's ongoing transaction, with its current epoch
/// (before a transactional Produce or TxnOffsetCommit). Asked of the local coordinator, or, when
/// another broker coordinates the id, of that broker with one AddPartitionsToTxn `verify_only`
/// request (as Kafka's `AddPartitionsToTxnManager`).
pub async fn verify_transaction(
    state: &BrokerState,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
) -> Vec<((String, i32), Result<(), VerifyFailure>)> {
    let coordinator = transaction_coordinator_node(state, transactional_id);
    let local = coordinator.is_none_or(|node| node == state.config.node_id);
    if local {
        return partitions
            .iter()
            .map(|tp| {
                let verified = state
                    .txn
                    .verify_partitions(
                        transactional_id,
                        producer_id,
                        producer_epoch,
                        std::slice::from_ref(tp),
                    )
                    .map_err(VerifyFailure::Local);
                (tp.clone(), verified)
            })
            .collect();
    }
    let node = coordinator.unwrap_or(quill_meta::NO_LEADER);
    let codes = if node == quill_meta::NO_LEADER {
        Err(ResponseError::CoordinatorNotAvailable.code())
    } else {
        remote_verification(
            state,
            node,
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
        )
        .await
    };
    partitions
        .iter()
        .map(|tp| {
            let code = match &codes {
                Err(code) => *code,
                Ok(codes) => codes
                    .get(tp)
                    .copied()
                    .unwrap_or(ResponseError::CoordinatorNotAvailable.code()),
            };
            let verified = if code == 0 {
                Ok(())
            } else {
                Err(VerifyFailure::Remote(code))
            };
            (tp.clone(), verified)
        })
        .collect()
}

/// Each partition's error code from the coordinator on `node`, or one code for all of them when
/// the request failed as a whole (unreachable: COORDINATOR_NOT_AVAILABLE, retriable).
async fn remote_verification(
    state: &BrokerState,
    node: i32,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
) -> Result<std::collections::HashMap<(String, i32), i16>, i16> {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (topic, index) in partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(existing) => existing.partitions.push(*index),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(text(topic.clone())))
                    .with_partitions(vec![*index]),
            ),
        }
    }
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(text(transactional_id)))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(true)
            .with_topics(topics),
    ]);
    let image = state.image();
    let response = state
        .inter_broker
        .call(&image, node, &request, VERIFY_VERSIONS)
        .await
        .map_err(|error| {
            tracing::debug!(%error, node, "transaction verification failed");
            ResponseError::CoordinatorNotAvailable.code()
        })?;
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    let mut codes = std::collections::HashMap::new();
    for transaction in &response.results_by_transaction {
        if transaction.transactional_id.0.as_str() != transactional_id {
            continue;
        }
        for topic in &transaction.topic_results {
            for partition in &topic.results_by_partition {
                codes.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.partition_error_code,
                );
            }
        }
    }
    Ok(codes)
}

/// AddPartitionsToTxn v4 is the first with `verify_only` (the broker-to-broker form); v5 is the
/// same request.
const VERIFY_VERSIONS: std::ops::RangeInclusive<i16> = 4..=5;

pub async fn init_producer_id(
    state: &BrokerState,
    request: InitProducerIdRequest,
    api_version: i16,
) -> InitProducerIdResponse {
    let transactional_id = request.transactional_id.map(|id| id.0.to_string());
    let logged_id = transactional_id.clone().unwrap_or_default();
    let result = async {
        if transactional_id.is_some() {
            ready(state).await?;
        }
        state
            .txn
            .init_producer_id(quill_txn::InitProducerIdRequest {
                transactional_id,
                transaction_timeout_ms: request.transaction_timeout_ms,
                producer_id: request.producer_id.0,
                producer_epoch: request.producer_epoch,
            })
            .await
    }
    .await;
    let response = InitProducerIdResponse::default();
    match result {
        Ok(ids) => response
            .with_producer_id(ProducerId(ids.producer_id))
            .with_producer_epoch(ids.producer_epoch),
        Err(error) => {
            tracing::debug!(%error, transactional_id = %logged_id, "InitProducerId refused");
            let fenced_known = knows_producer_fenced(
                kafka_protocol::messages::ApiKey::InitProducerId,
                api_version,
            );
            response
                .with_error_code(error.kafka_error_code_for(fenced_known))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

/// The partitions of one AddPartitionsToTxn transaction: (topic, partition) pairs, or the
/// per-partition errors when some name unknown topics (the others: OPERATION_NOT_ATTEMPTED).
fn known_partitions(
    state: &BrokerState,
    topics: &[AddPartitionsToTxnTopic],
) -> Result<Vec<(String, i32)>, Vec<AddPartitionsToTxnTopicResult>> {
    let image = state.image();
    let mut partitions = Vec::new();
    let mut any_unknown = false;
    for topic in topics {
        for partition in &topic.partitions {
            let name = topic.name.0.to_string();
            any_unknown |= image
                .topic(&name)
                .and_then(|info| info.partition(*partition))
                .is_none();
            partitions.push((name, *partition));
        }
    }
    if !any_unknown {
        return Ok(partitions);
    }
    Err(topics
        .iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let results = topic
                .partitions
                .iter()
                .map(|partition| {
                    let known = image
                        .topic(&name)
                        .and_then(|i| i.partition(*partition))
                        .is_some();
                    let code = if known {
                        ResponseError::OperationNotAttempted.code()
                    } else {
                        ResponseError::UnknownTopicOrPartition.code()
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*partition)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(results)
        })
        .collect())
}

fn same_code_for_all(
    topics: &[AddPartitionsToTxnTopic],
    code: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|topic| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(
                    topic
                        .partitions
                        .iter()
                        .map(|partition| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*partition)
                                .with_partition_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect()
}

async fn add_one_transaction(
    state: &BrokerState,
    transactional_id: &TransactionalId,
    producer_id: i64,
    producer_epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    fenced_known: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let partitions = match known_partitions(state, topics) {
        Ok(partitions) => partitions,
        Err(results) => return results,
    };
    let id = transactional_id.0.as_str();
    let result = match ready(state).await {
        Err(error) => Err(error),
        Ok(()) if verify_only => {
            state
                .txn
                .verify_partitions(id, producer_id, producer_epoch, &partitions)
        }
        Ok(()) => {
            state
                .txn
                .add_partitions(id, producer_id, producer_epoch, &partitions)
                .await
        }
    };
    let code = result.map_or_else(|error| error.kafka_error_code_for(fenced_known), |()| 0);
    same_code_for_all(topics, code)
}

pub async fn add_partitions_to_txn(
    state: &BrokerState,
    request: AddPartitionsToTxnRequest,
    api_version: i16,
) -> AddPartitionsToTxnResponse {
    let fenced_known = api_version >= 2;
    if api_version <= 3 {
        let results = add_one_transaction(
            state,
            &request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &request.v3_and_below_topics,
            false,
            fenced_known,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    let mut by_transaction = Vec::with_capacity(request.transactions.len());
    for transaction in &request.transactions {
        let results = add_one_transaction(
            state,
            &transaction.transactional_id,
            transaction.producer_id.0,
            transaction.producer_epoch,
            &transaction.topics,
            transaction.verify_only,
            fenced_known,
        )
        .await;
        by_transaction.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id.clone())
                .with_topic_results(results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(by_transaction)
}

pub async fn add_offsets_to_txn(
    state: &BrokerState,
    request: AddOffsetsToTxnRequest,
    api_version: i16,
) -> AddOffsetsToTxnResponse {
    let result = match ready(state).await {
        Err(error) => Err(error),
        Ok(()) => {
            state
                .txn
                .add_offsets(
                    request.transactional_id.0.as_str(),
                    request.producer_id.0,
                    request.producer_epoch,
                    request.group_id.0.as_str(),
                )
                .await
        }
    };
    let code = result.map_or_else(|error| error.kafka_error_code_for(api_version >= 2), |()| 0);
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

pub async fn end_txn(
    state: &BrokerState,
    request: EndTxnRequest,
    api_version: i16,
) -> EndTxnResponse {
    let result = match ready(state).await {
        Err(error) => Err(error),
        Ok(()) => {
            state
                .txn
                .end_txn(
                    request.transactional_id.0.as_str(),
                    request.producer_id.0,
                    request.producer_epoch,
                    request.committed,
                )
                .await
        }
    };
    if let Err(error) = &result {
        tracing::debug!(%error, transactional_id = %request.transactional_id.0, "EndTxn refused");
    }
    let code = result.map_or_else(|error| error.kafka_error_code_for(api_version >= 2), |()| 0);
    EndTxnResponse::default().with_error_code(code)
}

pub async fn txn_offset_commit(
    state: &BrokerState,
    request: TxnOffsetCommitRequest,
    api_version: i16,
) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let image = state.image();
    // KIP-890: the group's __consumer_offsets partition must be in the producer's transaction
    // (AddOffsetsToTxn came first), with the current epoch.
    let offsets_partition = state.groups.partition_for(&group_id);
    // The transaction coordinator may be another broker than this group coordinator.
    let transactional_id = request.transactional_id.0.as_str();
    let verified = if transaction_coordinator_node(state, transactional_id)
        .is_none_or(|node| node == state.config.node_id)
    {
        ready(state).await.map_err(VerifyFailure::Local)
    } else {
        Ok(())
    };
    let verified = match verified {
        Err(failure) => Err(failure),
        Ok(()) => verify_transaction(
            state,
            transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            &[(
                quill_txn::CONSUMER_OFFSETS_TOPIC.to_string(),
                offsets_partition,
            )],
        )
        .await
        .into_iter()
        .map(|(_, verified)| verified)
        .find(Result::is_err)
        .unwrap_or(Ok(())),
    };
    let fenced_known = api_version >= 3;
    let txn_error_code = verified.err().map(|failure| match failure {
        VerifyFailure::Local(error) => error.kafka_error_code_for(fenced_known),
        VerifyFailure::Remote(code) => txn_offset_commit_code(code, fenced_known),
    });
    let mut commits = Vec::new();
    let mut unknown = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        for partition in &topic.partitions {
            let known = image
                .topic(&name)
                .and_then(|info| info.partition(partition.partition_index))
                .is_some();
            if !known {
                unknown.push((name.clone(), partition.partition_index));
                continue;
            }
            commits.push(quill_group::PartitionCommit {
                topic: name.clone(),
                partition: partition.partition_index,
                offset: partition.committed_offset,
                leader_epoch: partition.committed_leader_epoch,
                metadata: partition.committed_metadata.as_ref().map(|m| m.to_string()),
            });
        }
    }
    let mut codes: Vec<(String, i32, i16)> = unknown
        .into_iter()
        .map(|(topic, partition)| {
            (
                topic,
                partition,
                ResponseError::UnknownTopicOrPartition.code(),
            )
        })
        .collect();
    match txn_error_code {
        Some(code) => codes.extend(commits.into_iter().map(|c| (c.topic, c.partition, code))),
        None => {
            let results = state
                .groups
                .txn_commit_offsets(quill_group::TxnOffsetCommitRequest {
                    group_id,
                    producer_id: request.producer_id.0,
                    producer_epoch: request.producer_epoch,
                    generation_id: request.generation_id,
                    member_id: request.member_id.to_string(),
                    group_instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
                    partitions: commits,
                })
                .await;
            codes.extend(
                results
                    .into_iter()
                    .map(|r| (r.topic, r.partition, quill_group::error_code(&r.error))),
            );
        }
    }
    let mut topics: Vec<TxnOffsetCommitResponseTopic> = Vec::new();
    for (topic, partition, code) in codes {
        let result = TxnOffsetCommitResponsePartition::default()
            .with_partition_index(partition)
            .with_error_code(code);
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(existing) => existing.partitions.push(result),
            None => topics.push(
                TxnOffsetCommitResponseTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partitions(vec![result]),
            ),
        }
    }
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// A remote coordinator's verification error as TxnOffsetCommit answers it: PRODUCER_FENCED
/// only for clients that know it (KIP-588), and a coordinator that cannot answer (moved,
/// loading, unreachable) as COORDINATOR_NOT_AVAILABLE, which every client retries (Kafka's
/// group coordinator maps its append failures the same way).
fn txn_offset_commit_code(code: i16, fenced_known: bool) -> i16 {
    let unavailable = [
        ResponseError::NotCoordinator.code(),
        ResponseError::CoordinatorLoadInProgress.code(),
        ResponseError::NotEnoughReplicas.code(),
        ResponseError::RequestTimedOut.code(),
    ];
    if code == ResponseError::ProducerFenced.code() && !fenced_known {
        ResponseError::InvalidProducerEpoch.code()
    } else if unavailable.contains(&code) {
        ResponseError::CoordinatorNotAvailable.code()
    } else {
        code
    }
}

/// WriteTxnMarkers (coordinator → partition leader): how a transaction coordinator on another
/// broker ends the transaction in the partitions this broker leads. Each marker is durable
/// before it is acknowledged; for a `__consumer_offsets` partition the group coordinator then
/// publishes (commit) or drops (abort) the producer's pending offsets. A partition this broker
/// does not lead answers NOT_LEADER_OR_FOLLOWER (the coordinator re-resolves and retries).
pub async fn write_txn_markers(
    state: &BrokerState,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let calls: Vec<MarkerRequest> = request
        .markers
        .iter()
        .map(|marker| MarkerRequest {
            producer_id: marker.producer_id.0,
            producer_epoch: marker.producer_epoch,
            coordinator_epoch: marker.coordinator_epoch,
            result: if marker.transaction_result {
                TxnResult::Commit
            } else {
                TxnResult::Abort
            },
            partitions: Vec::new(),
        })
        .collect();
    let writes = request
        .markers
        .iter()
        .zip(&calls)
        .flat_map(|(marker, call)| {
            marker.topics.iter().flat_map(move |topic| {
                topic
                    .partition_indexes
                    .iter()
                    .map(move |index| (call, (topic.name.0.to_string(), *index)))
            })
        })
        .collect();
    // Same order as the request: the i-th result is the i-th (marker, topic, partition).
    let mut results = txn_store::write_markers_locally(&state.partitions, &state.groups, writes)
        .await
        .into_iter();
    let image = state.image();
    let mut markers = Vec::with_capacity(request.markers.len());
    for marker in request.markers {
        let mut topics = Vec::with_capacity(marker.topics.len());
        for topic in marker.topics {
            let name = topic.name.0.to_string();
            let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
            for index in topic.partition_indexes {
                let result = results
                    .next()
                    .map_or(Err(MarkerError::Retriable("no result".into())), |(_, r)| r);
                let code = match result {
                    Ok(()) => 0,
                    Err(MarkerError::UnknownPartition) => {
                        super::unhosted_partition_error(&image, state.config.node_id, &name, index)
                    }
                    Err(MarkerError::Stale {
                        coordinator_fenced: false,
                        ..
                    }) => ResponseError::InvalidProducerEpoch.code(),
                    Err(MarkerError::Stale {
                        coordinator_fenced: true,
                        ..
                    }) => ResponseError::TransactionCoordinatorFenced.code(),
                    Err(MarkerError::Retriable(_)) => ResponseError::KafkaStorageError.code(),
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}

fn transaction_topic_exists(state: &BrokerState) -> bool {
    state
        .image()
        .topic(quill_txn::TRANSACTION_STATE_TOPIC)
        .is_some()
}

pub async fn describe_transactions(
    state: &BrokerState,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let loaded = if transaction_topic_exists(state) {
        ready(state).await
    } else {
        Err(TxnError::TransactionalIdNotFound)
    };
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let described = loaded
                .clone()
                .and_then(|()| state.txn.describe(id.0.as_str()));
            let response = TransactionState::default().with_transactional_id(id);
            match described {
                Err(error) => response
                    .with_error_code(error.kafka_error_code())
                    .with_transaction_state(text(""))
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_transaction_start_time_ms(-1),
                Ok(txn) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    for (topic, partition) in txn.partitions {
                        match topics.iter_mut().find(|t| t.topic.0.as_str() == topic) {
                            Some(existing) => existing.partitions.push(partition),
                            None => topics.push(
                                TopicData::default()
                                    .with_topic(TopicName(text(topic)))
                                    .with_partitions(vec![partition]),
                            ),
                        }
                    }
                    response
                        .with_transaction_state(text(txn.state.name()))
                        .with_transaction_timeout_ms(txn.timeout_ms)
                        .with_transaction_start_time_ms(txn.start_timestamp_ms)
                        .with_producer_id(ProducerId(txn.producer_id))
                        .with_producer_epoch(txn.producer_epoch)
                        .with_topics(topics)
                }
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

pub async fn list_transactions(
    state: &BrokerState,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut known_states = Vec::new();
    let mut unknown_states = Vec::new();
    for name in request.state_filters {
        match TxnState::from_name(name.as_str()) {
            Some(known) => known_states.push(known),
            None => unknown_states.push(name),
        }
    }
    let response = ListTransactionsResponse::default();
    // Only unknown state names: nothing can match them (Kafka answers the same).
    if known_states.is_empty() && !unknown_states.is_empty() {
        return response.with_unknown_state_filters(unknown_states);
    }
    if transaction_topic_exists(state) {
        if let Err(error) = ready(state).await {
            return response.with_error_code(error.kafka_error_code());
        }
    }
    let producer_ids: Vec<i64> = request.producer_id_filters.iter().map(|id| id.0).collect();
    let listed = state
        .txn
        .list(&known_states, &producer_ids, request.duration_filter)
        .into_iter()
        .map(|txn| {
            list_transactions_response::TransactionState::default()
                .with_transactional_id(TransactionalId(text(txn.transactional_id)))
                .with_producer_id(ProducerId(txn.producer_id))
                .with_transaction_state(text(txn.state.name()))
        })
        .collect();
    response
        .with_unknown_state_filters(unknown_states)
        .with_transaction_states(listed)
}

pub async fn describe_producers(
    state: &BrokerState,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
        for index in topic.partition_indexes {
            let response = PartitionResponse::default().with_partition_index(index);
            let Some(partition) = state.partitions.get(&name, index) else {
                partitions
                    .push(response.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            match partition.producers().await {
                Ok(producers) => partitions.push(
                    response.with_active_producers(
                        producers
                            .into_iter()
                            .map(|p| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(p.producer_id))
                                    .with_producer_epoch(i32::from(p.producer_epoch))
                                    .with_last_sequence(p.last_sequence)
                                    .with_last_timestamp(p.last_timestamp_ms)
                                    .with_coordinator_epoch(p.coordinator_epoch)
                                    .with_current_txn_start_offset(
                                        p.current_transaction_start_offset,
                                    )
                            })
                            .collect(),
                    ),
                ),
                Err(error) => partitions.push(
                    response
                        .with_error_code(error.kafka_error_code())
                        .with_error_message(Some(text(error.to_string()))),
                ),
            }
        }
        topics.push(
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DescribeProducersResponse::default().with_topics(topics)
}
