//! One transactional id's state and Kafka's pure rules about it (`TransactionMetadata`).

use std::collections::BTreeSet;

use crate::error::TxnError;
use crate::records::{TopicPartitions, TxnLogValue};

/// Kafka's transaction states, with the ids stored in `TransactionLogValue.TransactionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    /// In memory only: an ongoing transaction is being aborted because a new producer with the
    /// same transactional id called InitProducerId (Kafka never writes it).
    PrepareEpochFence,
}

impl TxnState {
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The names DescribeTransactions and ListTransactions use (Kafka's `TransactionState.name`).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        (0..8)
            .filter_map(TxnState::from_id)
            .find(|state| state.name() == name)
    }

    /// States in which a new transaction may begin (AddPartitionsToTxn from here starts one).
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// What the coordinator knows about one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last InitProducerId bump: a retried InitProducerId (KIP-360) that
    /// names it gets the current epoch back instead of PRODUCER_FENCED. In memory only.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    /// When the ongoing transaction began (its first AddPartitionsToTxn); -1 when none.
    pub start_timestamp_ms: i64,
    pub last_update_timestamp_ms: i64,
}

/// The highest epoch handed out before a new producer id is needed (Kafka: `Short.MaxValue - 1`,
/// keeping `Short.MaxValue` for fencing bumps).
pub const MAX_PRODUCER_EPOCH: i16 = i16::MAX - 1;

impl TxnMetadata {
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_timestamp_ms: -1,
            last_update_timestamp_ms: now_ms,
        }
    }

    pub fn from_stored(transactional_id: &str, value: &TxnLogValue) -> TxnMetadata {
        let partitions = value
            .partitions
            .iter()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|partition| (topic.topic.clone(), *partition))
            })
            .collect();
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id: value.producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch: -1,
            timeout_ms: value.timeout_ms,
            state: value.state,
            partitions,
            start_timestamp_ms: value.start_timestamp_ms,
            last_update_timestamp_ms: value.last_update_timestamp_ms,
        }
    }

    pub fn to_stored(&self) -> TxnLogValue {
        let mut partitions: Vec<TopicPartitions> = Vec::new();
        for (topic, partition) in &self.partitions {
            match partitions.last_mut() {
                Some(last) if &last.topic == topic => last.partitions.push(*partition),
                _ => partitions.push(TopicPartitions {
                    topic: topic.clone(),
                    partitions: vec![*partition],
                }),
            }
        }
        TxnLogValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_timestamp_ms: self.last_update_timestamp_ms,
            start_timestamp_ms: self.start_timestamp_ms,
        }
    }

    /// The producer id and epoch a transactional request names must be the current ones.
    pub fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if producer_epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the state after adding `added`; `None` when every
    /// partition is already in the ongoing transaction (nothing to write).
    pub fn add_partitions(
        &self,
        added: &[(String, i32)],
        max_partitions: usize,
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Dead => return Err(TxnError::InvalidProducerIdMapping),
            TxnState::Ongoing if added.iter().all(|tp| self.partitions.contains(tp)) => {
                return Ok(None)
            }
            _ => {}
        }
        let mut next = self.clone();
        if self.state.is_idle() {
            next.partitions.clear();
            next.start_timestamp_ms = now_ms;
        }
        next.partitions.extend(added.iter().cloned());
        if next.partitions.len() > max_partitions {
            return Err(TxnError::LimitExceeded(format!(
                "more than {max_partitions} partitions in one transaction (transaction.max.partitions)"
            )));
        }
        next.state = TxnState::Ongoing;
        next.last_update_timestamp_ms = now_ms;
        Ok(Some(next))
    }

    /// EndTxn: `Ok(Some(prepared))` to write PrepareCommit/PrepareAbort, `Ok(None)` when it is a
    /// retry of an end that already completed.
    pub fn end(&self, commit: bool, now_ms: i64) -> Result<Option<TxnMetadata>, TxnError> {
        let wrong = |what: &str| {
            Err(TxnError::InvalidTxnState(format!(
                "EndTxn({}) in state {} ({what})",
                if commit { "commit" } else { "abort" },
                self.state.name()
            )))
        };
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = self.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                next.last_update_timestamp_ms = now_ms;
                Ok(Some(next))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(TxnError::ConcurrentTransactions)
            }
            // A commit that a timeout already turned into an abort: the producer was fenced
            // (its epoch was bumped), so the epoch check answers first; this is what remains.
            (TxnState::PrepareEpochFence, _) => Err(TxnError::ConcurrentTransactions),
            (TxnState::Empty, _) => wrong("no transaction is ongoing"),
            _ => wrong("the transaction already ended the other way"),
        }
    }

    /// After the markers are written: CompleteCommit/CompleteAbort with no partitions.
    pub fn completed(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            _ => TxnState::CompleteAbort,
        };
        next.partitions.clear();
        next.last_update_timestamp_ms = now_ms;
        next
    }

    /// The same producer id with the next epoch, or `None` when the epoch is exhausted and a new
    /// producer id is needed.
    pub fn bumped_epoch(&self) -> Option<i16> {
        (self.producer_epoch < MAX_PRODUCER_EPOCH).then(|| self.producer_epoch + 1)
    }

    pub fn has_timed_out(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing
            && self.start_timestamp_ms >= 0
            && now_ms
                > self
                    .start_timestamp_ms
                    .saturating_add(i64::from(self.timeout_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ongoing() -> TxnMetadata {
        let idle = TxnMetadata::new("t", 7, 60_000, 100);
        idle.add_partitions(&[("a".into(), 0)], 10, 200)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn state_ids_round_trip() {
        for id in 0..8 {
            let state = TxnState::from_id(id).unwrap();
            assert_eq!(state.id(), id);
            assert_eq!(TxnState::from_name(state.name()), Some(state));
        }
        assert_eq!(TxnState::from_id(8), None);
    }

    #[test]
    fn adding_partitions_begins_and_extends_a_transaction() {
        let txn = ongoing();
        assert_eq!(txn.state, TxnState::Ongoing);
        assert_eq!(txn.start_timestamp_ms, 200);
        assert_eq!(txn.add_partitions(&[("a".into(), 0)], 10, 300), Ok(None));
        let more = txn
            .add_partitions(&[("b".into(), 1)], 10, 300)
            .unwrap()
            .unwrap();
        assert_eq!(more.partitions.len(), 2);
        assert_eq!(more.start_timestamp_ms, 200);
        assert!(matches!(
            more.add_partitions(&[("c".into(), 1)], 2, 300),
            Err(TxnError::LimitExceeded(_))
        ));
    }

    #[test]
    fn end_rules_follow_kafka() {
        let txn = ongoing();
        let prepared = txn.end(true, 300).unwrap().unwrap();
        assert_eq!(prepared.state, TxnState::PrepareCommit);
        assert_eq!(
            prepared.end(true, 301),
            Err(TxnError::ConcurrentTransactions)
        );
        assert!(matches!(
            prepared.end(false, 301),
            Err(TxnError::InvalidTxnState(_))
        ));
        let done = prepared.completed(400);
        assert_eq!(done.state, TxnState::CompleteCommit);
        assert!(done.partitions.is_empty());
        assert_eq!(done.end(true, 500), Ok(None));
        assert!(matches!(
            done.end(false, 500),
            Err(TxnError::InvalidTxnState(_))
        ));
        let idle = TxnMetadata::new("t", 7, 60_000, 100);
        assert!(matches!(
            idle.end(true, 500),
            Err(TxnError::InvalidTxnState(_))
        ));
        assert_eq!(
            prepared.add_partitions(&[("a".into(), 1)], 10, 300),
            Err(TxnError::ConcurrentTransactions)
        );
    }

    #[test]
    fn producer_checks() {
        let txn = ongoing();
        assert_eq!(txn.check_producer(7, 0), Ok(()));
        assert_eq!(
            txn.check_producer(8, 0),
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert_eq!(txn.check_producer(7, 1), Err(TxnError::ProducerFenced));
    }

    #[test]
    fn stored_form_groups_partitions_by_topic() {
        let txn = ongoing()
            .add_partitions(&[("a".into(), 3), ("b".into(), 0)], 10, 250)
            .unwrap()
            .unwrap();
        let stored = txn.to_stored();
        assert_eq!(stored.partitions.len(), 2);
        assert_eq!(stored.partitions[0].partitions, vec![0, 3]);
        let back = TxnMetadata::from_stored("t", &stored);
        assert_eq!(back.partitions, txn.partitions);
        assert!(back.has_timed_out(200 + 60_001));
        assert!(!back.has_timed_out(200 + 60_000));
    }
}
