#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A model of compaction: random keyed writes and tombstones (in every codec, some from an
//! idempotent producer), rolls, clock advances, reopens and cleaning rounds at random points.
//! After every step, reading the log from the beginning yields exactly what the model says:
//! below the cleaned point the last record of each key (tombstones until `delete.retention.ms`
//! after the round that first kept them), everything above it, in offset order, at the offsets
//! they were written at. The log end offset and the producer state never change by cleaning.

mod common;

use std::sync::RwLock;

use common::*;
use proptest::prelude::*;
use quill_log::records::Compression;
use quill_log::testing::with_producer;
use quill_log::Log;

const RETENTION_MS: i64 = 100;
const START_MS: i64 = 1_000_000;

#[derive(Clone, Debug)]
enum Op {
    /// Records (key index, value or tombstone) in one batch.
    Write {
        records: Vec<(u8, Option<u8>)>,
        codec: u8,
        idempotent: bool,
    },
    Roll,
    Advance(i64),
    Clean,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let record = (0u8..6, prop::option::weighted(0.8, any::<u8>()));
    prop_oneof![
        6 => (prop::collection::vec(record, 1..4), 0u8..5, any::<bool>())
            .prop_map(|(records, codec, idempotent)| Op::Write { records, codec, idempotent }),
        1 => Just(Op::Roll),
        2 => (1i64..150).prop_map(Op::Advance),
        2 => Just(Op::Clean),
        1 => Just(Op::Reopen),
    ]
}

fn codec(id: u8) -> Compression {
    match id {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
    }
}

#[derive(Clone, Debug)]
struct ModelRecord {
    offset: i64,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    batch: usize,
}

#[derive(Default, Debug)]
struct Model {
    /// Every record still in the log, in offset order.
    records: Vec<ModelRecord>,
    /// Per batch (by index of writing): its delete horizon once a round kept a tombstone in it.
    horizons: Vec<Option<i64>>,
}

impl Model {
    /// One round over everything below `end` at time `now` (the map holds every dirty key).
    fn clean(&mut self, end: i64, now: i64) {
        let below: Vec<ModelRecord> = self
            .records
            .iter()
            .filter(|r| r.offset < end)
            .cloned()
            .collect();
        let newest = |r: &ModelRecord| {
            !below
                .iter()
                .any(|later| later.key == r.key && later.offset > r.offset)
        };
        let mut kept_tombstone_batches = Vec::new();
        let horizons = &self.horizons;
        self.records.retain(|r| {
            if r.offset >= end {
                return true;
            }
            let retain_tombstones = horizons[r.batch].is_none_or(|h| now < h);
            let keep = newest(r) && (r.value.is_some() || retain_tombstones);
            if keep && r.value.is_none() {
                kept_tombstone_batches.push(r.batch);
            }
            keep
        });
        for batch in kept_tombstone_batches {
            self.horizons[batch].get_or_insert(now + RETENTION_MS);
        }
    }
}

fn check(log: &Log, model: &Model) -> Result<(), TestCaseError> {
    let (_, records) = read_all(log);
    let actual: Vec<(i64, Vec<u8>, Option<Vec<u8>>)> = records
        .into_iter()
        .map(|r| (r.offset, r.key.unwrap(), r.value))
        .collect();
    let expected: Vec<(i64, Vec<u8>, Option<Vec<u8>>)> = model
        .records
        .iter()
        .map(|r| (r.offset, r.key.clone(), r.value.clone()))
        .collect();
    prop_assert_eq!(actual, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cleaning_agrees_with_the_model(ops in prop::collection::vec(op(), 1..100)) {
        let dir = tempfile::tempdir().unwrap();
        let config = compact_config(700, RETENTION_MS);
        let mut handle = RwLock::new(open(dir.path(), config.clone()));
        let mut cleaner = cleaner(1 << 20);
        let mut model = Model::default();
        let mut now = START_MS;
        let mut next_sequence = 0;
        for op in ops {
            match op {
                Op::Write { records, codec: codec_id, idempotent } => {
                    let written: Vec<KeyedRecord> = records
                        .iter()
                        .map(|(key, value)| KeyedRecord {
                            key: vec![b'k', *key],
                            value: value.map(|v| vec![v]),
                        })
                        .collect();
                    let mut batch = keyed_batch(&written, now, codec(codec_id));
                    if idempotent {
                        batch = with_producer(batch, 9, 0, next_sequence, false);
                        next_sequence += written.len() as i32;
                    }
                    let log = handle.get_mut().unwrap();
                    let info = log.append(&batch, context(now)).unwrap();
                    let batch_index = model.horizons.len();
                    model.horizons.push(None);
                    for (delta, record) in written.into_iter().enumerate() {
                        model.records.push(ModelRecord {
                            offset: info.base_offset + delta as i64,
                            key: record.key,
                            value: record.value,
                            batch: batch_index,
                        });
                    }
                    log.flush().unwrap();
                }
                Op::Roll => handle.get_mut().unwrap().roll().unwrap(),
                Op::Advance(ms) => now += ms,
                Op::Clean => {
                    let (end_before, producers_before) = {
                        let log = handle.get_mut().unwrap();
                        (log.log_end_offset(), log.producers())
                    };
                    if let Some(stats) = cleaner.clean(&handle, now).unwrap() {
                        model.clean(stats.end_offset, now);
                    }
                    let log = handle.get_mut().unwrap();
                    prop_assert_eq!(log.log_end_offset(), end_before);
                    prop_assert_eq!(log.producers(), producers_before);
                }
                Op::Reopen => {
                    let log = std::mem::replace(
                        &mut handle,
                        RwLock::new(open(&dir.path().join("scratch"), config.clone())),
                    );
                    log.into_inner().unwrap().close().unwrap();
                    let scratch = handle.into_inner().unwrap();
                    scratch.delete().unwrap();
                    handle = RwLock::new(open(dir.path(), config.clone()));
                }
            }
            check(handle.get_mut().unwrap(), &model)?;
        }
    }
}
