//! Transaction state while the cleaner walks the log (Kafka's `CleanedTransactionMetadata`):
//! which data batches belong to aborted transactions (removable), and which COMMIT/ABORT markers
//! are no longer needed because no batch of their transaction is left before them.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::batch::BatchHeader;
use crate::producer::{AbortedEntry, ControlMarker};

#[derive(Debug)]
struct OngoingAbort {
    /// A data batch of this aborted transaction was seen in this walk: its marker must stay
    /// until a later walk finds no batch of the transaction left.
    saw_batch: bool,
}

#[derive(Debug, Default)]
pub struct CleanedTransactions {
    /// Aborted transactions not yet reached, by first offset.
    pending: VecDeque<AbortedEntry>,
    ongoing_aborted: HashMap<i64, OngoingAbort>,
    ongoing_committed: HashSet<i64>,
}

impl CleanedTransactions {
    pub fn new(mut aborted: Vec<AbortedEntry>) -> CleanedTransactions {
        aborted.sort_by_key(|a| a.first_offset);
        CleanedTransactions {
            pending: aborted.into(),
            ..CleanedTransactions::default()
        }
    }

    fn reach(&mut self, offset: i64) {
        while self
            .pending
            .front()
            .is_some_and(|a| a.first_offset <= offset)
        {
            if let Some(aborted) = self.pending.pop_front() {
                self.ongoing_aborted
                    .entry(aborted.producer_id)
                    .or_insert(OngoingAbort { saw_batch: false });
            }
        }
    }

    /// A data batch was read; true if it belongs to an aborted transaction (removable).
    pub fn on_data_batch(&mut self, header: &BatchHeader) -> bool {
        self.reach(header.last_offset());
        if !header.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&header.producer_id) {
            Some(ongoing) => {
                ongoing.saw_batch = true;
                true
            }
            None => {
                self.ongoing_committed.insert(header.producer_id);
                false
            }
        }
    }

    /// A control batch was read (`marker` is `None` for an emptied or unknown one); true if it
    /// may be removed (once its delete horizon has passed).
    pub fn on_control_batch(
        &mut self,
        header: &BatchHeader,
        marker: Option<ControlMarker>,
    ) -> bool {
        self.reach(header.last_offset());
        match marker {
            Some(ControlMarker::Abort) => match self.ongoing_aborted.remove(&header.producer_id) {
                Some(ongoing) => !ongoing.saw_batch,
                None => true,
            },
            Some(ControlMarker::Commit) => !self.ongoing_committed.remove(&header.producer_id),
            None => header.records_count == 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{testing::build_simple_batch, TRANSACTIONAL_FLAG};

    fn header(producer_id: i64, base_offset: i64, transactional: bool) -> BatchHeader {
        let mut header = BatchHeader::parse(&build_simple_batch(0, 1, 1)).unwrap();
        header.producer_id = producer_id;
        header.base_offset = base_offset;
        if transactional {
            header.attributes |= TRANSACTIONAL_FLAG;
        }
        header
    }

    #[test]
    fn aborted_data_is_removable_and_its_marker_stays_while_data_was_seen() {
        let aborted = vec![AbortedEntry {
            producer_id: 7,
            first_offset: 10,
            last_offset: 12,
        }];
        let mut walk = CleanedTransactions::new(aborted.clone());
        assert!(!walk.on_data_batch(&header(7, 5, true)));
        assert!(!walk.on_control_batch(&header(7, 6, true), Some(ControlMarker::Commit)));
        assert!(walk.on_data_batch(&header(7, 10, true)));
        assert!(!walk.on_data_batch(&header(8, 11, false)));
        assert!(!walk.on_control_batch(&header(7, 12, true), Some(ControlMarker::Abort)));
        // Next walk: the data is gone, so the marker may go.
        let mut next = CleanedTransactions::new(aborted);
        assert!(next.on_control_batch(&header(7, 12, true), Some(ControlMarker::Abort)));
    }

    #[test]
    fn a_commit_marker_without_data_before_it_is_removable() {
        let mut walk = CleanedTransactions::new(Vec::new());
        assert!(walk.on_control_batch(&header(3, 4, true), Some(ControlMarker::Commit)));
    }
}
