#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The log's append path with record-level validation: what it accepts decodes into exactly
//! `count` records with dense offsets, poison is refused with nothing written, the header's max
//! timestamp is the records' own, and `compression.type` re-encodes batches.

use std::path::Path;

use proptest::prelude::*;
use quill_log::records::{encode_batch, encode_record, for_each_record};
use quill_log::{
    AppendContext, BatchEncoder, BatchFields, BatchHeader, CleanupPolicy, Compression,
    CompressionLevels, GroupCommitter, Log, LogConfig, LogError, MAX_DECOMPRESSED_BATCH_BYTES,
};

const NOW_MS: i64 = 1_700_000_000_000;
const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn context() -> AppendContext {
    AppendContext {
        now_ms: NOW_MS,
        leader_epoch: 1,
    }
}

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, config, GroupCommitter::start().unwrap()).unwrap()
}

fn batch(codec: Compression, values: &[&str], max_timestamp_ms: i64) -> Vec<u8> {
    let mut encoder = BatchEncoder::new(BatchFields::producer(NOW_MS, max_timestamp_ms));
    for (i, value) in values.iter().enumerate() {
        encoder.push_fields(
            0,
            i as i64,
            i as i32,
            Some(b"key"),
            Some(value.as_bytes()),
            &[],
        );
    }
    encoder.finish(codec, CompressionLevels::default()).unwrap()
}

/// Every batch in a read: (header, [(offset, value)]).
fn read_all(log: &Log) -> Vec<(BatchHeader, Vec<(i64, String)>)> {
    let bytes = log.read(0, 1 << 24, i64::MAX).unwrap().bytes;
    let mut out = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let header = BatchHeader::parse(&bytes[position..]).unwrap();
        let whole = &bytes[position..position + header.size_bytes];
        let mut records = Vec::new();
        for_each_record(whole, &header, MAX_DECOMPRESSED_BATCH_BYTES, |_, record| {
            records.push((
                header.base_offset + i64::from(record.offset_delta),
                String::from_utf8_lossy(record.value.unwrap_or_default()).into_owned(),
            ));
            Ok(())
        })
        .unwrap();
        out.push((header, records));
        position += header.size_bytes;
    }
    out
}

#[test]
fn poison_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append(&batch(Compression::Gzip, &["a"], NOW_MS), context())
        .unwrap();
    let mut section = Vec::new();
    encode_record(&mut section, 0, 0, Some(b"k"), Some(b"v"), &[]);
    encode_record(&mut section, 0, 0, Some(b"k"), Some(b"v"), &[]);
    encode_record(&mut section, 0, 7, Some(b"k"), Some(b"v"), &[]);
    for codec in CODECS {
        let fields = BatchFields::producer(NOW_MS, NOW_MS);
        let poison =
            encode_batch(&fields, 3, &section, codec, CompressionLevels::default()).unwrap();
        let error = log.append(&poison, context()).unwrap_err();
        assert!(
            matches!(error, LogError::InvalidRecord(_)),
            "{codec:?}: {error}"
        );
        assert!(error.to_string().contains("in topic partition"), "{error}");
    }
    assert_eq!(log.log_end_offset(), 1);
    let size = log.size_bytes();
    log.append(
        &batch(Compression::Zstd, &["b", "c"], NOW_MS + 1),
        context(),
    )
    .unwrap();
    assert!(log.size_bytes() > size);
    let values: Vec<_> = read_all(&log).into_iter().flat_map(|(_, r)| r).collect();
    assert_eq!(
        values,
        vec![(0, "a".into()), (1, "b".into()), (2, "c".into())]
    );
}

#[test]
fn keyless_records_need_a_key_only_on_compacted_topics() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT_DELETE,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let mut section = Vec::new();
    encode_record(&mut section, 0, 0, None, Some(b"v"), &[]);
    let keyless = encode_batch(
        &BatchFields::producer(NOW_MS, NOW_MS),
        1,
        &section,
        Compression::Snappy,
        CompressionLevels::default(),
    )
    .unwrap();
    let error = log.append(&keyless, context()).unwrap_err();
    assert_eq!(error.kafka_error_code(), 87);
    assert_eq!(log.log_end_offset(), 0);
    let mut config = log.config().clone();
    config.cleanup_policy = CleanupPolicy::DELETE;
    log.set_config(config);
    log.append(&keyless, context()).unwrap();
}

#[test]
fn create_time_max_timestamp_in_the_header_is_the_records_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    // Records at NOW_MS..NOW_MS+2; the producer's header claims NOW_MS + 500.
    log.append(
        &batch(Compression::Lz4, &["a", "b", "c"], NOW_MS + 500),
        context(),
    )
    .unwrap();
    let stored = read_all(&log);
    assert_eq!(stored[0].0.max_timestamp_ms, NOW_MS + 2);
    assert!(!stored[0].0.is_log_append_time());
    // The rewritten header carries a valid CRC (fixing it up changes nothing).
    let bytes = log.read(0, 1 << 20, i64::MAX).unwrap().bytes.to_vec();
    let mut fixed = bytes.clone();
    quill_log::testing::fix_crc(&mut fixed);
    assert_eq!(fixed, bytes);
    let max = log.max_timestamp_offset().unwrap().unwrap();
    assert_eq!(max.timestamp_ms, NOW_MS + 2);
}

#[test]
fn compression_type_re_encodes_other_codecs_and_keeps_matching_ones() {
    for target in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            compression_type: Some(target),
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        for source in CODECS {
            log.append(&batch(source, &["x", "y"], NOW_MS + 1), context())
                .unwrap();
        }
        let stored = read_all(&log);
        assert_eq!(stored.len(), CODECS.len());
        for (index, (header, records)) in stored.iter().enumerate() {
            assert_eq!(header.compression_codec(), target.id(), "{target:?}");
            let first = index as i64 * 2;
            assert_eq!(
                records,
                &vec![(first, "x".to_string()), (first + 1, "y".to_string())]
            );
            assert_eq!(header.max_timestamp_ms, NOW_MS + 1);
        }
    }
    // `producer`: the producer's codec and record bytes are kept as sent.
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let sent = batch(Compression::Gzip, &["x"], NOW_MS);
    log.append(&sent, context()).unwrap();
    let stored = log.read(0, 1 << 20, i64::MAX).unwrap().bytes;
    assert_eq!(&stored[61..], &sent[61..]);
}

#[test]
fn re_encoded_batches_must_fit_max_message_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        compression_type: Some(Compression::None),
        max_message_bytes: 2000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let big = "z".repeat(5000);
    let compressed = batch(Compression::Zstd, &[&big], NOW_MS);
    assert!(compressed.len() < 2000);
    let error = log.append(&compressed, context()).unwrap_err();
    assert!(matches!(error, LogError::RecordTooLarge { .. }), "{error}");
    assert_eq!(log.log_end_offset(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any append the log accepts stores batches that decode into exactly `count` records at
    /// dense offsets, whatever byte of the producer's batch was changed (CRC fixed up).
    #[test]
    fn accepted_appends_decode_into_count_dense_records(
        values in proptest::collection::vec("[a-z]{0,40}", 1..12),
        codec_index in 0usize..5,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), LogConfig::default());
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let mut bytes = batch(CODECS[codec_index], &refs, NOW_MS);
        for (at, mask) in flips {
            // Mutate only the records section (the header is covered by batch.rs's own tests).
            let at = 61 + at % (bytes.len() - 61);
            bytes[at] ^= mask;
        }
        quill_log::testing::fix_crc(&mut bytes);
        let accepted = log.append(&bytes, context()).is_ok();
        let stored = read_all(&log);
        if accepted {
            prop_assert_eq!(stored.len(), 1);
            let (header, records) = &stored[0];
            prop_assert_eq!(records.len() as i32, header.records_count);
            let offsets: Vec<i64> = records.iter().map(|(offset, _)| *offset).collect();
            let expected: Vec<i64> = (0..i64::from(header.records_count)).collect();
            prop_assert_eq!(offsets, expected);
            prop_assert_eq!(log.log_end_offset(), i64::from(header.records_count));
        } else {
            prop_assert!(stored.is_empty());
            prop_assert_eq!(log.log_end_offset(), 0);
        }
    }
}

#[test]
fn idempotent_batches_need_a_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let fields = BatchFields {
        producer_id: 7,
        producer_epoch: 0,
        base_sequence: -1,
        ..BatchFields::producer(NOW_MS, NOW_MS)
    };
    let mut encoder = BatchEncoder::new(fields);
    encoder.push_fields(0, 0, 0, Some(b"k"), Some(b"v"), &[]);
    let batch = encoder
        .finish(Compression::None, CompressionLevels::default())
        .unwrap();
    let error = log.append(&batch, context()).unwrap_err();
    assert_eq!(error.kafka_error_code(), 87, "{error}");
    assert!(error.to_string().contains("Invalid sequence number -1"));
}
