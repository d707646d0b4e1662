#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Random sequences of append / read / roll / retention / delete-records / timestamp lookups /
//! clean and unclean reopen, checked against a plain in-memory model of the log.

use std::path::Path;

use proptest::prelude::*;
use quill_log::testing::build_simple_batch;
use quill_log::{AppendContext, BatchHeader, GroupCommitter, Log, LogConfig};

#[derive(Clone, Debug)]
enum Op {
    Append {
        batches: Vec<(usize, usize)>,
        base_timestamp_ms: i64,
    },
    Read {
        offset_fraction: f64,
        max_bytes: usize,
        bound_fraction: f64,
    },
    Roll,
    DeleteRecords {
        offset_fraction: f64,
    },
    RetainBytes {
        retention_bytes: i64,
    },
    Timestamp {
        timestamp_ms: i64,
    },
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec((1usize..6, 0usize..200), 1..4), 0i64..10_000)
            .prop_map(|(batches, base_timestamp_ms)| Op::Append { batches, base_timestamp_ms }),
        5 => (0.0f64..1.0, 0usize..3000, 0.0f64..1.2)
            .prop_map(|(offset_fraction, max_bytes, bound_fraction)| Op::Read { offset_fraction, max_bytes, bound_fraction }),
        1 => Just(Op::Roll),
        1 => (0.0f64..1.0).prop_map(|offset_fraction| Op::DeleteRecords { offset_fraction }),
        1 => (1000i64..20_000).prop_map(|retention_bytes| Op::RetainBytes { retention_bytes }),
        2 => (0i64..10_500).prop_map(|timestamp_ms| Op::Timestamp { timestamp_ms }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

/// One batch as the model knows it.
#[derive(Clone, Debug)]
struct ModelBatch {
    base_offset: i64,
    records: i64,
    base_timestamp_ms: i64,
    /// The input bytes from offset 16 on (everything the broker does not own, given CreateTime).
    tail: Vec<u8>,
}

#[derive(Default)]
struct Model {
    batches: Vec<ModelBatch>,
    log_start_offset: i64,
}

impl Model {
    fn end(&self) -> i64 {
        self.batches.last().map_or(0, |b| b.base_offset + b.records)
    }

    fn index_containing(&self, offset: i64) -> Option<usize> {
        self.batches
            .iter()
            .position(|b| b.base_offset <= offset && offset < b.base_offset + b.records)
    }

    /// First offset ≥ log start whose record timestamp ≥ target (record j of a batch has
    /// timestamp base + j).
    fn offset_for_timestamp(&self, target: i64) -> Option<(i64, i64)> {
        self.batches.iter().find_map(|b| {
            (0..b.records).find_map(|j| {
                let offset = b.base_offset + j;
                let ts = b.base_timestamp_ms + j;
                (offset >= self.log_start_offset && ts >= target).then_some((offset, ts))
            })
        })
    }
}

fn config(retention_bytes: i64) -> LogConfig {
    LogConfig {
        segment_bytes: 6000,
        index_interval_bytes: 400,
        retention_bytes,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, committer: &GroupCommitter) -> Log {
    Log::open(dir, config(-1), committer.clone()).unwrap()
}

fn check_read(log: &Log, model: &Model, offset: i64, max_bytes: usize, upper_bound: i64) {
    let result = log.read(offset, max_bytes, upper_bound);
    if offset < model.log_start_offset || offset > model.end() {
        assert!(
            result.is_err(),
            "read at {offset} outside [{}, {}] succeeded",
            model.log_start_offset,
            model.end()
        );
        return;
    }
    let read = result.unwrap();
    let upper = upper_bound.min(model.end());
    let Some(first_index) = model.index_containing(offset) else {
        assert!(read.bytes.is_empty());
        return;
    };
    let first = &model.batches[first_index];
    if first.base_offset + first.records > upper {
        assert!(
            read.bytes.is_empty(),
            "returned data at or above the bound {upper}"
        );
        return;
    }
    assert!(
        !read.bytes.is_empty(),
        "nothing returned at {offset} below {upper}"
    );
    let mut position = 0;
    let mut expected_index = first_index;
    while position < read.bytes.len() {
        let header = BatchHeader::parse(&read.bytes[position..]).unwrap();
        let expected = &model.batches[expected_index];
        assert_eq!(header.base_offset, expected.base_offset);
        assert!(header.last_offset() < upper);
        assert_eq!(
            &read.bytes[position + 16..position + header.size_bytes],
            &expected.tail[..]
        );
        position += header.size_bytes;
        expected_index += 1;
    }
    let returned_batches = expected_index - first_index;
    assert!(
        returned_batches == 1 || read.bytes.len() <= max_bytes,
        "{} bytes returned for max_bytes {max_bytes}",
        read.bytes.len()
    );
    let last = &model.batches[expected_index - 1];
    assert_eq!(read.next_offset, last.base_offset + last.records);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn log_agrees_with_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let committer = GroupCommitter::start().unwrap();
        let mut log = open(dir.path(), &committer);
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Append { batches, base_timestamp_ms } => {
                    let mut input = Vec::new();
                    let mut pending = Vec::new();
                    let mut next = model.end();
                    for (records, value_bytes) in batches {
                        let batch = build_simple_batch(base_timestamp_ms, records, value_bytes);
                        pending.push(ModelBatch {
                            base_offset: next,
                            records: records as i64,
                            base_timestamp_ms,
                            tail: batch[16..].to_vec(),
                        });
                        next += records as i64;
                        input.extend_from_slice(&batch);
                    }
                    let context = AppendContext { now_ms: 0, leader_epoch: 1 };
                    let info = log.append(&input, context).unwrap();
                    prop_assert_eq!(info.base_offset, model.end());
                    prop_assert_eq!(info.last_offset, next - 1);
                    model.batches.extend(pending);
                }
                Op::Read { offset_fraction, max_bytes, bound_fraction } => {
                    let span = (model.end() + 2) as f64;
                    let offset = (span * offset_fraction) as i64 - 1;
                    let upper_bound = (span * bound_fraction) as i64;
                    check_read(&log, &model, offset, max_bytes, upper_bound);
                }
                Op::Roll => log.roll().unwrap(),
                Op::DeleteRecords { offset_fraction } => {
                    let target = model.log_start_offset
                        + ((model.end() - model.log_start_offset) as f64 * offset_fraction) as i64;
                    let start = log.delete_records_before(target).unwrap();
                    model.log_start_offset = model.log_start_offset.max(target);
                    prop_assert_eq!(start, model.log_start_offset);
                }
                Op::RetainBytes { retention_bytes } => {
                    log.set_config(config(retention_bytes));
                    log.apply_retention(0).unwrap();
                    log.set_config(config(-1));
                    // Whole segments went: the model's start moves to the log's.
                    prop_assert!(log.log_start_offset() >= model.log_start_offset);
                    prop_assert!(log.size_bytes() as i64 >= 0);
                    model.log_start_offset = log.log_start_offset();
                    let first_kept = model.index_containing(model.log_start_offset);
                    if let Some(index) = first_kept {
                        prop_assert!(model.batches[index].base_offset <= model.log_start_offset);
                    }
                }
                Op::Timestamp { timestamp_ms } => {
                    let found = log.offset_for_timestamp(timestamp_ms).unwrap();
                    let expected = model.offset_for_timestamp(timestamp_ms);
                    prop_assert_eq!(found.map(|f| (f.offset, f.timestamp_ms)), expected);
                }
                Op::Reopen { clean } => {
                    if clean {
                        log.close().unwrap();
                    } else {
                        drop(log);
                    }
                    log = open(dir.path(), &committer);
                }
            }
            prop_assert_eq!(log.log_end_offset(), model.end());
            prop_assert_eq!(log.log_start_offset(), model.log_start_offset);
        }
        // Every offset still in the log reads back.
        for offset in model.log_start_offset..model.end() {
            check_read(&log, &model, offset, 1, i64::MAX);
        }
    }
}
