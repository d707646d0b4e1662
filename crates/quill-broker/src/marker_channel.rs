//! Markers for partitions other brokers lead, as Kafka's `TransactionMarkerChannelManager`
//! sends them: one queue and one sender task per destination broker; each send drains what is
//! queued for that broker into one WriteTxnMarkers request (transactions ending together share
//! it), and each transaction gets its partitions' outcomes back. Retrying is the coordinator's
//! (quill-txn re-asks for the partitions that failed, with backoff, re-resolving leaders).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use quill_meta::MetadataImage;
use quill_txn::{MarkerError, MarkerRequest, MarkerResults, TxnResult};
use tokio::sync::{mpsc, oneshot};

use crate::inter_broker::InterBrokerClient;
use crate::state::BrokerState;

/// At most this many transactions' markers in one WriteTxnMarkers request; more wait for the
/// next one.
const MAX_MARKERS_PER_REQUEST: usize = 1000;
/// WriteTxnMarkers v0 and v1 (flexible) mean the same; Quill serves v1, Kafka both.
const WRITE_TXN_MARKERS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=1;

struct QueuedMarker {
    request: MarkerRequest,
    reply: oneshot::Sender<MarkerResults>,
}

/// The per-broker queues. A queue holds at most one entry per ending transaction (its
/// completion task waits for the reply before asking again), so its length is bounded by the
/// transactions this coordinator has in PrepareCommit/PrepareAbort; it is keyed by the image's
/// node ids only.
///
/// The channels have connections of their own (as Kafka's marker channel has its own network
/// client): the receiving broker handles one request per connection at a time, so a
/// transactional Produce's verification must not queue behind a marker write's fsync.
#[derive(Default)]
pub struct MarkerChannels {
    state: OnceLock<Weak<BrokerState>>,
    queues: Mutex<HashMap<i32, mpsc::UnboundedSender<QueuedMarker>>>,
    connections: Arc<InterBrokerClient>,
}

impl MarkerChannels {
    pub fn attach(&self, state: &Arc<BrokerState>) {
        let _ = self.state.set(Arc::downgrade(state));
    }

    /// Queues `request` (all of whose partitions `leader` leads) for `leader`; the returned
    /// future gives each partition's outcome.
    pub fn send(
        &self,
        leader: i32,
        request: MarkerRequest,
    ) -> impl std::future::Future<Output = MarkerResults> + Send + 'static {
        let partitions = request.partitions.clone();
        let (reply, answer) = oneshot::channel();
        let queued = QueuedMarker { request, reply };
        let refused = {
            let mut queues = lock(&self.queues);
            let sender = queues.entry(leader).or_insert_with(|| {
                let (sender, receiver) = mpsc::unbounded_channel();
                let state = self.state.get().cloned().unwrap_or_default();
                let connections = self.connections.clone();
                tokio::spawn(run_channel(state, connections, leader, receiver));
                sender
            });
            sender.send(queued).is_err()
        };
        if refused {
            lock(&self.queues).remove(&leader);
        }
        async move {
            match answer.await {
                Ok(results) => results,
                Err(_) => all_failed(&partitions, "marker channel stopped"),
            }
        }
    }
}

async fn run_channel(
    state: Weak<BrokerState>,
    connections: Arc<InterBrokerClient>,
    leader: i32,
    mut receiver: mpsc::UnboundedReceiver<QueuedMarker>,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_MARKERS_PER_REQUEST {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let Some(state) = state.upgrade() else {
            for queued in batch {
                let results = all_failed(&queued.request.partitions, "broker stopping");
                let _ = queued.reply.send(results);
            }
            return;
        };
        let image = state.image();
        drop(state);
        send_batch(&connections, &image, leader, batch).await;
    }
}

async fn send_batch(
    connections: &InterBrokerClient,
    image: &MetadataImage,
    leader: i32,
    batch: Vec<QueuedMarker>,
) {
    let request = WriteTxnMarkersRequest::default().with_markers(
        batch
            .iter()
            .map(|queued| writable_marker(&queued.request))
            .collect(),
    );
    let response = connections
        .call(image, leader, &request, WRITE_TXN_MARKERS_VERSIONS)
        .await;
    for (position, queued) in batch.into_iter().enumerate() {
        let results = match &response {
            Err(error) => {
                tracing::debug!(%error, leader, "WriteTxnMarkers failed; the coordinator retries");
                all_failed(&queued.request.partitions, &error.to_string())
            }
            Ok(response) => marker_results(response, position, &queued.request),
        };
        let _ = queued.reply.send(results);
    }
}

fn writable_marker(request: &MarkerRequest) -> WritableTxnMarker {
    let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
    for (topic, index) in &request.partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(existing) => existing.partition_indexes.push(*index),
            None => topics.push(
                WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partition_indexes(vec![*index]),
            ),
        }
    }
    WritableTxnMarker::default()
        .with_producer_id(ProducerId(request.producer_id))
        .with_producer_epoch(request.producer_epoch)
        .with_transaction_result(request.result == TxnResult::Commit)
        .with_coordinator_epoch(request.coordinator_epoch)
        .with_topics(topics)
}

/// The outcome of each partition of the `position`th marker of a request. Kafka matches
/// results by producer id; the position is tried first (a producer has one ending transaction
/// at a time, so both agree for a well-behaved peer).
fn marker_results(
    response: &WriteTxnMarkersResponse,
    position: usize,
    request: &MarkerRequest,
) -> MarkerResults {
    let result = response
        .markers
        .get(position)
        .filter(|result| result.producer_id.0 == request.producer_id)
        .or_else(|| {
            response
                .markers
                .iter()
                .find(|result| result.producer_id.0 == request.producer_id)
        });
    request
        .partitions
        .iter()
        .map(|(topic, index)| {
            let code = result.and_then(|result| {
                result
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition_index == *index)
                    .map(|p| p.error_code)
            });
            ((topic.clone(), *index), outcome(code))
        })
        .collect()
}

/// Kafka's `TransactionMarkerRequestCompletionHandler`: a stale marker is final, everything
/// else (not the leader, unknown yet, storage trouble, no answer) is retried.
fn outcome(code: Option<i16>) -> Result<(), MarkerError> {
    match code {
        Some(0) => Ok(()),
        None => Err(MarkerError::Retriable(
            "the leader's answer did not name the partition".into(),
        )),
        Some(code) if code == ResponseError::InvalidProducerEpoch.code() => {
            Err(MarkerError::Stale {
                coordinator_fenced: false,
                reason: "the leader refused the marker's producer epoch".into(),
            })
        }
        Some(code) if code == ResponseError::TransactionCoordinatorFenced.code() => {
            Err(MarkerError::Stale {
                coordinator_fenced: true,
                reason: "the leader refused the marker's coordinator epoch".into(),
            })
        }
        Some(code) => Err(MarkerError::Retriable(format!(
            "the leader answered error code {code}"
        ))),
    }
}

fn all_failed(partitions: &[(String, i32)], reason: &str) -> MarkerResults {
    partitions
        .iter()
        .map(|tp| (tp.clone(), Err(MarkerError::Retriable(reason.to_string()))))
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };

    use super::*;

    fn request(producer_id: i64, partitions: &[(&str, i32)]) -> MarkerRequest {
        MarkerRequest {
            producer_id,
            producer_epoch: 3,
            coordinator_epoch: 0,
            result: TxnResult::Commit,
            partitions: partitions
                .iter()
                .map(|(topic, index)| (topic.to_string(), *index))
                .collect(),
        }
    }

    fn answer(producer_id: i64, topic: &str, codes: &[(i32, i16)]) -> WritableTxnMarkerResult {
        WritableTxnMarkerResult::default()
            .with_producer_id(ProducerId(producer_id))
            .with_topics(vec![WritableTxnMarkerTopicResult::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(
                    codes
                        .iter()
                        .map(|(index, code)| {
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(*index)
                                .with_error_code(*code)
                        })
                        .collect(),
                )])
    }

    #[test]
    fn a_request_groups_partitions_by_topic_and_carries_the_decision() {
        let marker = writable_marker(&request(7, &[("a", 0), ("b", 1), ("a", 2)]));
        assert_eq!(marker.producer_id.0, 7);
        assert_eq!(marker.producer_epoch, 3);
        assert!(marker.transaction_result);
        let topics: Vec<(String, Vec<i32>)> = marker
            .topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect();
        assert_eq!(
            topics,
            vec![("a".to_string(), vec![0, 2]), ("b".to_string(), vec![1])]
        );
    }

    #[test]
    fn answers_are_matched_by_producer_id_and_mapped_as_kafka_does() {
        let response = WriteTxnMarkersResponse::default().with_markers(vec![
            answer(9, "t", &[(0, 0)]),
            answer(
                7,
                "t",
                &[
                    (0, 0),
                    (1, ResponseError::NotLeaderOrFollower.code()),
                    (2, ResponseError::InvalidProducerEpoch.code()),
                    (3, ResponseError::TransactionCoordinatorFenced.code()),
                ],
            ),
        ]);
        // Position 0 holds another producer's answer: found by producer id instead.
        let results = marker_results(
            &response,
            0,
            &request(7, &[("t", 0), ("t", 1), ("t", 2), ("t", 3), ("t", 4)]),
        );
        let outcomes: Vec<_> = results.into_iter().map(|(_, result)| result).collect();
        assert_eq!(outcomes[0], Ok(()));
        assert!(matches!(outcomes[1], Err(MarkerError::Retriable(_))));
        assert!(matches!(
            outcomes[2],
            Err(MarkerError::Stale {
                coordinator_fenced: false,
                ..
            })
        ));
        assert!(matches!(
            outcomes[3],
            Err(MarkerError::Stale {
                coordinator_fenced: true,
                ..
            })
        ));
        // A partition the answer does not name is retried, never taken as written.
        assert!(matches!(outcomes[4], Err(MarkerError::Retriable(_))));
    }
}
