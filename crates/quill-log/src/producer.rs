//! Per-partition producer state (KIP-98): for each producer id, its epoch, the sequence ranges
//! and offsets of its last five batches (to recognise retries), and its open transaction; plus
//! the partition's aborted transactions (for `read_committed` fetches).
//!
//! The state is a pure function of the batches in the log: `apply_*` is called for every batch
//! appended and again, in order, when the log is replayed from a snapshot on open.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::batch::BatchHeader;
use crate::error::LogError;

/// Kafka keeps this many batches per producer for duplicate detection; clients keep at most
/// five requests in flight when idempotent, so a retry is always among them.
pub const BATCHES_KEPT_PER_PRODUCER: usize = 5;
pub const NO_SEQUENCE: i32 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlMarker {
    Abort,
    Commit,
}

impl ControlMarker {
    pub fn type_id(self) -> i16 {
        match self {
            ControlMarker::Abort => 0,
            ControlMarker::Commit => 1,
        }
    }

    pub fn from_type_id(type_id: i16) -> Option<ControlMarker> {
        match type_id {
            0 => Some(ControlMarker::Abort),
            1 => Some(ControlMarker::Commit),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub coordinator_epoch: i32,
    pub last_timestamp_ms: i64,
    pub batches: VecDeque<BatchMetadata>,
    pub transaction_first_offset: Option<i64>,
}

/// An aborted transaction on this partition: its data lies in [first_offset, last_offset],
/// `last_offset` being the ABORT marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedEntry {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What `check_batch` decided for a producer batch.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchCheck {
    /// A retry of a batch already in the log.
    Duplicate { first_offset: i64, last_offset: i64 },
    /// New: append it, then `apply_data_batch`.
    Append,
}

/// For DescribeProducers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerSnapshot {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    pub coordinator_epoch: i32,
    /// -1 when the producer has no transaction open here.
    pub current_transaction_start_offset: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerState {
    pub(crate) producers: HashMap<i64, ProducerEntry>,
    /// Open transactions by first offset, for the first unstable offset.
    pub(crate) open_transactions: BTreeMap<i64, i64>,
    /// In marker (offset) order.
    pub(crate) aborted: Vec<AbortedEntry>,
}

fn in_sequence(last_sequence: i32, next_sequence: i32) -> bool {
    i64::from(next_sequence) == i64::from(last_sequence) + 1
        || (next_sequence == 0 && last_sequence == i32::MAX)
}

/// The last sequence of a batch, wrapping at i32::MAX as Kafka does.
fn last_sequence_of(header: &BatchHeader) -> i32 {
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

impl ProducerState {
    /// Whether `producer_id` has a transaction open on this partition at exactly
    /// `producer_epoch` (a marker with a bumped epoch, or any marker, ends it).
    pub fn continues_open_transaction(&self, producer_id: i64, producer_epoch: i16) -> bool {
        self.producers.get(&producer_id).is_some_and(|entry| {
            entry.epoch == producer_epoch && entry.transaction_first_offset.is_some()
        })
    }

    /// Kafka's checks for a producer batch (`ProducerStateManager` / `ProducerAppendInfo`):
    /// fencing by epoch, duplicate detection, sequence continuity, transactional consistency.
    pub fn check_batch(&self, header: &BatchHeader) -> Result<BatchCheck, LogError> {
        let producer_id = header.producer_id;
        let Some(entry) = self.producers.get(&producer_id) else {
            // Unknown producer (new, or its state expired or was removed by retention): any
            // sequence is accepted, as in Kafka since KIP-360.
            return Ok(BatchCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch(format!(
                "producer {producer_id} epoch {} is older than the current epoch {}",
                header.producer_epoch, entry.epoch
            )));
        }
        let last_sequence = last_sequence_of(header);
        if header.producer_epoch == entry.epoch {
            if let Some(original) = entry.batches.iter().find(|b| {
                b.first_sequence == header.base_sequence && b.last_sequence == last_sequence
            }) {
                return Ok(BatchCheck::Duplicate {
                    first_offset: original.first_offset,
                    last_offset: original.last_offset,
                });
            }
            let current_last = entry
                .batches
                .back()
                .map_or(NO_SEQUENCE, |b| b.last_sequence);
            if !in_sequence(current_last, header.base_sequence) {
                return Err(LogError::OutOfOrderSequence(format!(
                    "producer {producer_id} epoch {}: sequence {} does not follow {current_last}",
                    header.producer_epoch, header.base_sequence
                )));
            }
        } else if header.base_sequence != 0 {
            return Err(LogError::OutOfOrderSequence(format!(
                "producer {producer_id}: a new epoch {} must start at sequence 0, not {}",
                header.producer_epoch, header.base_sequence
            )));
        }
        if !header.is_transactional() && entry.transaction_first_offset.is_some() {
            return Err(LogError::InvalidTxnState(format!(
                "producer {producer_id} wrote a non-transactional batch while its transaction is open"
            )));
        }
        Ok(BatchCheck::Append)
    }

    /// Records a data batch that is now in the log at [first_offset, last_offset].
    pub fn apply_data_batch(
        &mut self,
        header: &BatchHeader,
        first_offset: i64,
        last_offset: i64,
        timestamp_ms: i64,
    ) {
        let producer_id = header.producer_id;
        if producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(producer_id).or_insert(ProducerEntry {
            epoch: header.producer_epoch,
            coordinator_epoch: -1,
            last_timestamp_ms: timestamp_ms,
            batches: VecDeque::new(),
            transaction_first_offset: None,
        });
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(timestamp_ms);
        if header.base_sequence >= 0 {
            if entry.batches.len() == BATCHES_KEPT_PER_PRODUCER {
                entry.batches.pop_front();
            }
            entry.batches.push_back(BatchMetadata {
                first_sequence: header.base_sequence,
                last_sequence: last_sequence_of(header),
                first_offset,
                last_offset,
            });
        }
        if header.is_transactional() && entry.transaction_first_offset.is_none() {
            entry.transaction_first_offset = Some(first_offset);
            self.open_transactions.insert(first_offset, producer_id);
        }
    }

    /// Checks a transaction marker before it is written: an older producer epoch or coordinator
    /// epoch means a fenced (zombie) coordinator or producer.
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), LogError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch(format!(
                "marker for producer {producer_id} has epoch {producer_epoch}, current is {}",
                entry.epoch
            )));
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(LogError::CoordinatorFenced(format!(
                "marker for producer {producer_id} comes from coordinator epoch {coordinator_epoch}, newer is {}",
                entry.coordinator_epoch
            )));
        }
        Ok(())
    }

    /// Records a COMMIT/ABORT marker written at `offset`: the producer's open transaction on this
    /// partition ends (an abort is remembered for `read_committed` readers).
    pub fn apply_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlMarker,
        coordinator_epoch: i32,
        offset: i64,
        timestamp_ms: i64,
    ) {
        let entry = self.producers.entry(producer_id).or_insert(ProducerEntry {
            epoch: producer_epoch,
            coordinator_epoch,
            last_timestamp_ms: timestamp_ms,
            batches: VecDeque::new(),
            transaction_first_offset: None,
        });
        if producer_epoch != entry.epoch {
            entry.epoch = producer_epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = entry.coordinator_epoch.max(coordinator_epoch);
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(timestamp_ms);
        let Some(first_offset) = entry.transaction_first_offset.take() else {
            return;
        };
        self.open_transactions.remove(&first_offset);
        if marker == ControlMarker::Abort {
            self.aborted.push(AbortedEntry {
                producer_id,
                first_offset,
                last_offset: offset,
            });
        }
    }

    /// Applies one batch as it stands in the log (replay on open, or a follower's append of the
    /// leader's batches): data batches as `apply_data_batch`, COMMIT/ABORT markers as
    /// `apply_marker` with the marker's (type, coordinator epoch) from `control`. Nothing is
    /// checked: the batch is already part of the log.
    pub fn apply_logged_batch(&mut self, header: &BatchHeader, control: Option<(i16, i32)>) {
        if header.producer_id < 0 {
            return;
        }
        match control.map(|(kind, epoch)| (ControlMarker::from_type_id(kind), epoch)) {
            Some((Some(marker), coordinator_epoch)) => self.apply_marker(
                header.producer_id,
                header.producer_epoch,
                marker,
                coordinator_epoch,
                header.base_offset,
                header.max_timestamp_ms,
            ),
            // An unknown control type, or a control batch without a readable marker record.
            Some((None, _)) => {}
            None if header.is_control() => {}
            None => self.apply_data_batch(
                header,
                header.base_offset,
                header.last_offset(),
                header.max_timestamp_ms,
            ),
        }
    }

    /// The first offset of the oldest open transaction, if any.
    pub fn first_open_transaction_offset(&self) -> Option<i64> {
        self.open_transactions.keys().next().copied()
    }

    /// Aborted transactions whose data overlaps [from_offset, upper_bound).
    pub fn aborted_overlapping(&self, from_offset: i64, upper_bound: i64) -> Vec<AbortedEntry> {
        let start = self
            .aborted
            .partition_point(|a| a.last_offset < from_offset);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < upper_bound)
            .copied()
            .collect()
    }

    pub fn snapshots(&self) -> Vec<ProducerSnapshot> {
        let mut out: Vec<ProducerSnapshot> = self
            .producers
            .iter()
            .map(|(&producer_id, entry)| ProducerSnapshot {
                producer_id,
                producer_epoch: entry.epoch,
                last_sequence: entry
                    .batches
                    .back()
                    .map_or(NO_SEQUENCE, |b| b.last_sequence),
                last_timestamp_ms: entry.last_timestamp_ms,
                coordinator_epoch: entry.coordinator_epoch,
                current_transaction_start_offset: entry.transaction_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|s| s.producer_id);
        out
    }

    /// Forgets producers idle for longer than `expiration_ms` that have no open transaction.
    /// Idle time is measured on the broker's clock: a producer's last timestamp comes from its
    /// batches (the client's clock, as in Kafka), so one in the future is first brought back to
    /// `now_ms`; otherwise a producer id chosen by a client with far-future timestamps would
    /// never expire (a map keyed by client input must be bounded).
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.last_timestamp_ms = entry.last_timestamp_ms.min(now_ms);
            entry.transaction_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp_ms) <= expiration_ms
        });
        before - self.producers.len()
    }

    /// After the log start moved: aborted transactions wholly below it are no longer needed.
    pub fn log_start_advanced(&mut self, log_start_offset: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start_offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{testing::build_simple_batch, BatchHeader, TRANSACTIONAL_FLAG};

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, count: usize) -> BatchHeader {
        let mut header = BatchHeader::parse(&build_simple_batch(0, count, 1)).unwrap();
        header.producer_id = producer_id;
        header.producer_epoch = epoch;
        header.base_sequence = base_sequence;
        header
    }

    fn transactional(mut header: BatchHeader) -> BatchHeader {
        header.attributes |= TRANSACTIONAL_FLAG;
        header
    }

    #[test]
    fn sequences_must_continue_and_retries_are_duplicates() {
        let mut state = ProducerState::default();
        let first = header(7, 0, 0, 3);
        assert_eq!(state.check_batch(&first).unwrap(), BatchCheck::Append);
        state.apply_data_batch(&first, 100, 102, 1);
        assert_eq!(
            state.check_batch(&first).unwrap(),
            BatchCheck::Duplicate {
                first_offset: 100,
                last_offset: 102
            }
        );
        let gap = header(7, 0, 5, 1);
        assert!(matches!(
            state.check_batch(&gap),
            Err(LogError::OutOfOrderSequence(_))
        ));
        assert_eq!(state.check_batch(&gap).unwrap_err().kafka_error_code(), 45);
        let next = header(7, 0, 3, 2);
        assert_eq!(state.check_batch(&next).unwrap(), BatchCheck::Append);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut state = ProducerState::default();
        for i in 0..6 {
            let batch = header(1, 0, i, 1);
            state.apply_data_batch(&batch, i64::from(i), i64::from(i), 0);
        }
        // Sequence 0 fell out of the window: no longer a duplicate, and out of order.
        assert!(state.check_batch(&header(1, 0, 0, 1)).is_err());
        assert!(matches!(
            state.check_batch(&header(1, 0, 1, 1)).unwrap(),
            BatchCheck::Duplicate {
                first_offset: 1,
                ..
            }
        ));
    }

    #[test]
    fn older_epochs_are_fenced_and_new_epochs_start_at_zero() {
        let mut state = ProducerState::default();
        state.apply_data_batch(&header(3, 2, 0, 1), 0, 0, 0);
        let zombie = state.check_batch(&header(3, 1, 1, 1)).unwrap_err();
        assert!(matches!(zombie, LogError::InvalidProducerEpoch(_)));
        assert_eq!(zombie.kafka_error_code(), 47);
        assert!(matches!(
            state.check_batch(&header(3, 3, 4, 1)),
            Err(LogError::OutOfOrderSequence(_))
        ));
        assert_eq!(
            state.check_batch(&header(3, 3, 0, 1)).unwrap(),
            BatchCheck::Append
        );
        // An unknown producer may start anywhere (its state may have expired).
        assert_eq!(
            state.check_batch(&header(9, 0, 42, 1)).unwrap(),
            BatchCheck::Append
        );
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut state = ProducerState::default();
        state.apply_data_batch(&header(1, 0, i32::MAX - 1, 2), 0, 1, 0);
        assert_eq!(
            state.check_batch(&header(1, 0, 0, 1)).unwrap(),
            BatchCheck::Append
        );
    }

    #[test]
    fn transactions_open_and_close_with_markers() {
        let mut state = ProducerState::default();
        let batch = transactional(header(5, 0, 0, 2));
        state.apply_data_batch(&batch, 10, 11, 0);
        state.apply_data_batch(&transactional(header(6, 0, 0, 1)), 12, 12, 0);
        assert_eq!(state.first_open_transaction_offset(), Some(10));
        // Non-transactional write while the transaction is open.
        let error = state.check_batch(&header(5, 0, 2, 1)).unwrap_err();
        assert_eq!(error.kafka_error_code(), 48);
        state.apply_marker(5, 0, ControlMarker::Abort, 1, 13, 0);
        assert_eq!(state.first_open_transaction_offset(), Some(12));
        state.apply_marker(6, 0, ControlMarker::Commit, 1, 14, 0);
        assert_eq!(state.first_open_transaction_offset(), None);
        let aborted = state.aborted_overlapping(0, 100);
        assert_eq!(
            aborted,
            vec![AbortedEntry {
                producer_id: 5,
                first_offset: 10,
                last_offset: 13
            }]
        );
        assert!(state.aborted_overlapping(14, 100).is_empty());
        assert!(state.aborted_overlapping(0, 10).is_empty());
        // Markers from an older coordinator epoch are fenced.
        assert_eq!(
            state.check_marker(5, 0, 0).unwrap_err().kafka_error_code(),
            52
        );
        assert_eq!(
            state.check_marker(5, -1, 5).unwrap_err().kafka_error_code(),
            47
        );
    }

    #[test]
    fn expiry_keeps_producers_with_open_transactions() {
        let mut state = ProducerState::default();
        state.apply_data_batch(&header(1, 0, 0, 1), 0, 0, 1_000);
        state.apply_data_batch(&transactional(header(2, 0, 0, 1)), 1, 1, 1_000);
        assert_eq!(state.expire(10_000, 5_000), 1);
        assert_eq!(state.snapshots().len(), 1);
        assert_eq!(state.snapshots()[0].current_transaction_start_offset, 1);
    }

    #[test]
    fn a_producer_with_future_timestamps_expires_on_the_brokers_clock() {
        const HOUR_MS: i64 = 3_600_000;
        let mut state = ProducerState::default();
        // A client-chosen producer id whose batch claims a timestamp far in the future.
        state.apply_data_batch(&header(42, 0, 0, 1), 0, 0, i64::MAX / 2);
        let now_ms = 1_000 * HOUR_MS;
        assert_eq!(state.expire(now_ms, HOUR_MS), 0);
        assert_eq!(state.expire(now_ms + HOUR_MS, HOUR_MS), 0);
        assert_eq!(state.expire(now_ms + HOUR_MS + 1, HOUR_MS), 1);
        assert!(state.producers.is_empty());
    }
}
