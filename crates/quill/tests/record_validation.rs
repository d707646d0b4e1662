//! Record-level validation of produced batches, over the wire against the real broker binary
//! (issue 10): poison batches in every codec get Kafka's error code, `error_message` and
//! `record_errors`, nothing of them is written, and real consumers (confluent-kafka,
//! kafka-python, kafkajs) then read the partitions end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use quill_log::records::{encode_batch, encode_record};
use quill_log::{BatchEncoder, BatchFields, Compression, CompressionLevels};

const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TIMESTAMP: i16 = 32;
const INVALID_RECORD: i16 = 87;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `count` keyed records with values `v-<first + i>` (the offsets they must land at).
fn good_batch(codec: Compression, first: usize, count: usize) -> Bytes {
    let now = now_ms();
    let mut encoder = BatchEncoder::new(BatchFields::producer(now, now));
    for i in 0..count {
        let key = format!("k-{}", first + i);
        let value = format!("v-{}", first + i);
        encoder.push_fields(
            0,
            0,
            i as i32,
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &[],
        );
    }
    Bytes::from(encoder.finish(codec, CompressionLevels::default()).unwrap())
}

/// A batch around a hand-made (uncompressed) records section, valid CRC.
fn batch_with_section(codec: Compression, count: i32, section: &[u8]) -> Bytes {
    let now = now_ms();
    let fields = BatchFields::producer(now, now);
    Bytes::from(encode_batch(&fields, count, section, codec, CompressionLevels::default()).unwrap())
}

fn records_section(deltas: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &delta in deltas {
        encode_record(&mut out, 0, delta, Some(b"k"), Some(b"poison"), &[]);
    }
    out
}

/// A compressed batch whose payload is not valid for its codec, with a correct CRC.
fn garbage_payload(codec: Compression) -> Bytes {
    let garbage: Vec<u8> = (0..300u32).map(|i| (i * 131 % 251) as u8).collect();
    let mut batch = batch_with_section(Compression::None, 3, &garbage).to_vec();
    batch[22] = codec.id() as u8; // low byte of the attributes
    let crc = crc32c_of(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

fn crc32c_of(bytes: &[u8]) -> u32 {
    // CRC-32C (Castagnoli), bitwise: the test does not trust the code under test for it.
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Every poison batch of one codec with the error code Kafka answers.
/// (name, batch, error code, a fragment of the error message).
type Poison = (&'static str, Bytes, i16, &'static str);

fn poison_batches(codec: Compression) -> Vec<Poison> {
    let mut truncated = records_section(&[0, 1]);
    encode_record(&mut truncated, 0, 2, Some(b"k"), Some(b"poison"), &[]);
    truncated.truncate(truncated.len() - 4);
    let mut trailing = records_section(&[0, 1]);
    trailing.extend_from_slice(&[7, 7, 7]);
    let mut cases = vec![
        (
            "count 3 in the header, 1 record inside",
            batch_with_section(codec, 3, &records_section(&[0])),
            INVALID_RECORD,
            "Incorrect declared batch size, premature EOF reached",
        ),
        (
            "offset deltas 0,0,7",
            batch_with_section(codec, 3, &records_section(&[0, 0, 7])),
            INVALID_RECORD,
            "Record 1 has offset delta 0 but must have 1",
        ),
        (
            "truncated inner record",
            batch_with_section(codec, 3, &truncated),
            INVALID_RECORD,
            "premature EOF",
        ),
        (
            "trailing bytes after the records",
            batch_with_section(codec, 2, &trailing),
            INVALID_RECORD,
            "records still remaining",
        ),
    ];
    if codec != Compression::None {
        cases.push((
            "garbage compressed payload, valid CRC",
            garbage_payload(codec),
            CORRUPT_MESSAGE,
            "Failed to decompress record stream",
        ));
        // One record of 65 MiB of zeros: past MAX_DECOMPRESSED_BATCH_BYTES (64 MiB), a few
        // hundred KiB (at most ~3 MiB for snappy) on the wire.
        let mut bomb = Vec::new();
        let zeros = vec![0u8; 65 << 20];
        encode_record(&mut bomb, 0, 0, Some(b"k"), Some(&zeros), &[]);
        cases.push((
            "decompression bomb (65 MiB inside)",
            batch_with_section(codec, 1, &bomb),
            MESSAGE_TOO_LARGE,
            "MAX_DECOMPRESSED_BATCH_BYTES",
        ));
    }
    cases
}

fn produce(
    client: &mut TestClient,
    topic: &str,
    batch: Bytes,
    version: i16,
) -> PartitionProduceResponse {
    let response = client.call(&produce_request(topic, 0, batch, -1), version);
    response.responses[0].partition_responses[0].clone()
}

fn high_watermark(client: &mut TestClient, topic: &str) -> i64 {
    let fetched = client.fetch(topic, 0, 0);
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    partition.high_watermark
}

fn topic_of(codec: Compression) -> String {
    format!("poison-{}", codec.name())
}

fn run_reader(label: &str, command: &mut Command) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{label}: cannot run: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{label}:\n{stdout}");
    assert!(
        output.status.success(),
        "{label} failed:\n{stdout}\n{stderr}"
    );
}

fn python() -> PathBuf {
    std::env::var_os("QUILL_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/compat-venv/bin/python"))
}

#[test]
fn poison_batches_are_refused_and_real_consumers_read_every_partition_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    for codec in CODECS {
        // Room for the snappy bomb (~3 MiB on the wire): the limit under test is the
        // decompressed size, not max.message.bytes.
        let create =
            create_topic_request(&topic_of(codec), 1, 1, &[("max.message.bytes", "8388608")]);
        assert_eq!(client.call(&create, 5).topics[0].error_code, 0);
    }
    for codec in CODECS {
        let topic = topic_of(codec);
        let first = produce(&mut client, &topic, good_batch(codec, 0, 3), 9);
        assert_eq!(
            (first.error_code, first.base_offset),
            (0, 0),
            "{codec:?}: {first:?}"
        );
        for (name, batch, expected_code, fragment) in poison_batches(codec) {
            let answer = produce(&mut client, &topic, batch, 9);
            assert_eq!(
                answer.error_code, expected_code,
                "{codec:?} {name}: {answer:?}"
            );
            assert_eq!(answer.base_offset, -1, "{codec:?} {name}");
            // Structural failures are not per-record errors (Kafka throws them before any
            // record is judged), so no record_errors; the message says what was wrong.
            assert!(
                answer.record_errors.is_empty(),
                "{codec:?} {name}: {answer:?}"
            );
            assert!(
                answer
                    .error_message
                    .as_ref()
                    .is_some_and(|message| message.contains(fragment)),
                "{codec:?} {name}: {answer:?}"
            );
            assert_eq!(
                high_watermark(&mut client, &topic),
                3,
                "{codec:?} {name} wrote data"
            );
        }
        let second = produce(&mut client, &topic, good_batch(codec, 3, 3), 9);
        assert_eq!(
            (second.error_code, second.base_offset),
            (0, 3),
            "{codec:?}: {second:?}"
        );
        assert_eq!(high_watermark(&mut client, &topic), 6);
        let values = decode_values(
            client.fetch(&topic, 0, 0).responses[0].partitions[0]
                .records
                .as_ref()
                .unwrap(),
        );
        let expected: Vec<(i64, String)> = (0..6).map(|i| (i, format!("v-{i}"))).collect();
        assert_eq!(values, expected, "{codec:?}");
    }

    let address = broker.address();
    let all: Vec<String> = CODECS
        .iter()
        .map(|c| format!("{}=6", topic_of(*c)))
        .collect();
    let script = workspace_root().join("tests/compat/validation/read_all.py");
    for client in ["confluent", "kafka-python"] {
        run_reader(
            client,
            Command::new(python())
                .arg(&script)
                .arg(&address)
                .arg(client)
                .args(&all),
        );
    }
    // kafkajs has no zstd codec (none is installed with it), so it reads the other four.
    let without_zstd: Vec<String> = CODECS
        .iter()
        .filter(|codec| **codec != Compression::Zstd)
        .map(|codec| format!("{}=6", topic_of(*codec)))
        .collect();
    let node_dir = workspace_root().join("tests/compat/node");
    run_reader(
        "kafkajs",
        Command::new("node")
            .current_dir(&node_dir)
            .arg("validation_read_all.js")
            .arg(&address)
            .args(&without_zstd)
            .env("KAFKAJS_NO_PARTITIONER_WARNING", "1"),
    );
}

#[test]
fn keyless_records_to_a_compacted_topic_get_per_record_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    let create = create_topic_request("compacted", 1, 1, &[("cleanup.policy", "compact")]);
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);
    let create = create_topic_request(
        "librdkafka-compacted",
        1,
        1,
        &[("cleanup.policy", "compact,delete")],
    );
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);

    for codec in CODECS {
        let mut section = Vec::new();
        encode_record(&mut section, 0, 0, Some(b"k"), Some(b"v"), &[]);
        encode_record(&mut section, 0, 1, None, Some(b"v"), &[]);
        encode_record(&mut section, 0, 2, None, Some(b"v"), &[]);
        let batch = batch_with_section(codec, 3, &section);
        let answer = produce(&mut client, "compacted", batch.clone(), 9);
        assert_eq!(answer.error_code, INVALID_RECORD, "{codec:?}: {answer:?}");
        let errors: Vec<(i32, String)> = answer
            .record_errors
            .iter()
            .map(|e| {
                (
                    e.batch_index,
                    e.batch_index_error_message.as_ref().unwrap().to_string(),
                )
            })
            .collect();
        let message = "Compacted topic cannot accept message without key in topic partition \
                       compacted-0";
        assert_eq!(
            errors,
            vec![(1, message.to_string()), (2, message.to_string())]
        );
        assert_eq!(
            answer.error_message.as_deref(),
            Some(
                format!(
                    "One or more records have been rejected due to 2 record errors in total, and \
                     only showing the first three errors at most: [RecordError(batchIndex=1, \
                     message='{message}'), RecordError(batchIndex=2, message='{message}')]"
                )
                .as_str()
            )
        );
        // Produce v7 has no record_errors: the code alone.
        let old = produce(&mut client, "compacted", batch, 7);
        assert_eq!(old.error_code, INVALID_RECORD);
        assert_eq!(high_watermark(&mut client, "compacted"), 0);
    }
    let keyed = produce(
        &mut client,
        "compacted",
        good_batch(Compression::Lz4, 0, 2),
        9,
    );
    assert_eq!((keyed.error_code, keyed.base_offset), (0, 0));

    let script = workspace_root().join("tests/compat/validation/keyless_compacted.py");
    run_reader(
        "confluent-kafka keyless to compacted",
        Command::new(python())
            .arg(&script)
            .arg(broker.address())
            .arg("librdkafka-compacted"),
    );
    assert_eq!(high_watermark(&mut client, "librdkafka-compacted"), 3);
}

#[test]
fn timestamps_outside_the_topic_bounds_are_invalid_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    let create = create_topic_request(
        "clocked",
        1,
        1,
        &[
            ("message.timestamp.before.max.ms", "60000"),
            ("message.timestamp.after.max.ms", "60000"),
        ],
    );
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);
    let now = now_ms();
    for (name, base_timestamp) in [
        ("an hour ahead", now + 3_600_000),
        ("an hour behind", now - 3_600_000),
    ] {
        let mut section = Vec::new();
        encode_record(&mut section, 0, 0, Some(b"k"), Some(b"v"), &[]);
        let fields = BatchFields::producer(base_timestamp, base_timestamp);
        let batch = encode_batch(
            &fields,
            1,
            &section,
            Compression::Gzip,
            CompressionLevels::default(),
        )
        .unwrap();
        let answer = produce(&mut client, "clocked", Bytes::from(batch), 9);
        assert_eq!(answer.error_code, INVALID_TIMESTAMP, "{name}: {answer:?}");
        assert_eq!(
            answer.error_message.as_deref(),
            Some("One or more records have been rejected due to invalid timestamp")
        );
        assert_eq!(answer.record_errors.len(), 1);
        assert_eq!(answer.record_errors[0].batch_index, 0);
        let message = answer.record_errors[0]
            .batch_index_error_message
            .as_ref()
            .unwrap();
        assert!(
            message.starts_with(&format!(
                "Timestamp {base_timestamp} of message with offset 0 is out of range"
            )),
            "{message}"
        );
    }
    assert_eq!(high_watermark(&mut client, "clocked"), 0);
    let fine = produce(
        &mut client,
        "clocked",
        good_batch(Compression::Zstd, 0, 1),
        9,
    );
    assert_eq!(fine.error_code, 0);
}

/// Codec ids of every batch of a partition, with the decoded values.
fn stored_codecs(client: &mut TestClient, topic: &str) -> (Vec<i16>, Vec<(i64, String)>) {
    let fetched = client.fetch(topic, 0, 0);
    let records = fetched.responses[0].partitions[0].records.clone().unwrap();
    let mut codecs = Vec::new();
    let mut position = 0;
    while position + 61 <= records.len() {
        let length = i32::from_be_bytes(records[position + 8..position + 12].try_into().unwrap());
        codecs.push(
            i16::from_be_bytes(records[position + 21..position + 23].try_into().unwrap()) & 7,
        );
        position += 12 + length as usize;
    }
    (codecs, decode_values(&records))
}

#[test]
fn compression_type_re_encodes_batches_and_real_consumers_read_them() {
    let dir = tempfile::tempdir().unwrap();
    // The broker default applies to topics without their own compression.type.
    let broker = BrokerProcess::start(dir.path(), &["--set", "compression.type=lz4"]);
    let mut client = broker.connect();
    // (topic, its configs, codec ids of the two stored batches: gzip then snappy were sent)
    type TopicCase<'a> = (&'a str, &'a [(&'a str, &'a str)], [i16; 2]);
    let topics: [TopicCase<'_>; 6] = [
        ("ct-broker-default", &[], [3, 3]),
        ("ct-producer", &[("compression.type", "producer")], [1, 2]),
        (
            "ct-uncompressed",
            &[("compression.type", "uncompressed")],
            [0, 0],
        ),
        (
            "ct-gzip",
            &[
                ("compression.type", "gzip"),
                ("compression.gzip.level", "1"),
            ],
            [1, 1],
        ),
        ("ct-snappy", &[("compression.type", "snappy")], [2, 2]),
        (
            "ct-zstd",
            &[
                ("compression.type", "zstd"),
                ("compression.zstd.level", "10"),
            ],
            [4, 4],
        ),
    ];
    for (topic, configs, expected) in &topics {
        let create = create_topic_request(topic, 1, 1, configs);
        assert_eq!(client.call(&create, 5).topics[0].error_code, 0, "{topic}");
        let first = produce(&mut client, topic, good_batch(Compression::Gzip, 0, 3), 9);
        assert_eq!((first.error_code, first.base_offset), (0, 0), "{topic}");
        let second = produce(&mut client, topic, good_batch(Compression::Snappy, 3, 3), 9);
        assert_eq!((second.error_code, second.base_offset), (0, 3), "{topic}");
        let (codecs, values) = stored_codecs(&mut client, topic);
        assert_eq!(codecs, expected.to_vec(), "{topic}");
        let want: Vec<(i64, String)> = (0..6).map(|i| (i, format!("v-{i}"))).collect();
        assert_eq!(values, want, "{topic}");
    }
    // An altered topic config takes effect for the next batch.
    let alter =
        kafka_protocol::messages::IncrementalAlterConfigsRequest::default().with_resources(vec![
        kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource::default(
        )
        .with_resource_type(2)
        .with_resource_name(kafka_protocol::protocol::StrBytes::from_static_str(
            "ct-producer",
        ))
        .with_configs(vec![
            kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig::default()
                .with_name(kafka_protocol::protocol::StrBytes::from_static_str(
                    "compression.type",
                ))
                .with_config_operation(0)
                .with_value(Some(kafka_protocol::protocol::StrBytes::from_static_str(
                    "zstd",
                ))),
        ]),
    ]);
    let altered = client.call(&alter, 1);
    assert_eq!(altered.responses[0].error_code, 0, "{altered:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // The broker applies metadata asynchronously: retry until the new setting is in force.
        let (codecs_before, _) = stored_codecs(&mut client, "ct-producer");
        let next = codecs_before.len();
        let value = format!("v-{next}");
        let mut encoder = BatchEncoder::new(BatchFields::producer(now_ms(), now_ms()));
        encoder.push_fields(0, 0, 0, Some(b"k"), Some(value.as_bytes()), &[]);
        let batch = Bytes::from(
            encoder
                .finish(Compression::Gzip, CompressionLevels::default())
                .unwrap(),
        );
        assert_eq!(produce(&mut client, "ct-producer", batch, 9).error_code, 0);
        let (codecs, _) = stored_codecs(&mut client, "ct-producer");
        if codecs.last() == Some(&4) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "compression.type=zstd never took effect: {codecs:?}"
        );
    }

    let address = broker.address();
    let specs: Vec<String> = topics
        .iter()
        .filter(|(topic, _, _)| *topic != "ct-producer")
        .map(|(topic, _, _)| format!("{topic}=6"))
        .collect();
    let script = workspace_root().join("tests/compat/validation/read_all.py");
    for client in ["confluent", "kafka-python"] {
        run_reader(
            client,
            Command::new(python())
                .arg(&script)
                .arg(&address)
                .arg(client)
                .args(&specs),
        );
    }
    let node_specs: Vec<String> = specs
        .iter()
        .filter(|spec| !spec.starts_with("ct-zstd"))
        .cloned()
        .collect();
    run_reader(
        "kafkajs",
        Command::new("node")
            .current_dir(workspace_root().join("tests/compat/node"))
            .arg("validation_read_all.js")
            .arg(&address)
            .args(&node_specs)
            .env("KAFKAJS_NO_PARTITIONER_WARNING", "1"),
    );
}

/// KIP-110, as Kafka enforces it: a zstd batch needs Produce v7 (older versions get
/// UNSUPPORTED_COMPRESSION_TYPE and nothing is written; sarama before 1.23 sends zstd in v3),
/// and a topic whose `compression.type` is zstd cannot be read with Fetch below v10. Under
/// `compression.type=producer` zstd batches are returned to any Fetch version, as written.
#[test]
fn zstd_needs_produce_v7_and_fetch_v10_as_in_kafka() {
    const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    for (topic, configs) in [
        ("zstd-producer", &[][..]),
        ("zstd-config", &[("compression.type", "zstd")][..]),
    ] {
        let create = create_topic_request(topic, 1, 1, configs);
        assert_eq!(client.call(&create, 5).topics[0].error_code, 0, "{topic}");
    }

    for version in [3, 6] {
        let refused = produce(
            &mut client,
            "zstd-producer",
            good_batch(Compression::Zstd, 0, 2),
            version,
        );
        // (error_message exists only from Produce v8 on.)
        assert_eq!(
            refused.error_code, UNSUPPORTED_COMPRESSION_TYPE,
            "v{version}"
        );
    }
    assert_eq!(high_watermark(&mut client, "zstd-producer"), 0);
    let gzip_in_v3 = produce(
        &mut client,
        "zstd-producer",
        good_batch(Compression::Gzip, 0, 2),
        3,
    );
    assert_eq!((gzip_in_v3.error_code, gzip_in_v3.base_offset), (0, 0));
    let zstd_in_v7 = produce(
        &mut client,
        "zstd-producer",
        good_batch(Compression::Zstd, 2, 2),
        7,
    );
    assert_eq!((zstd_in_v7.error_code, zstd_in_v7.base_offset), (0, 2));
    // gzip re-encoded in zstd by the topic's compression.type: any Produce version may send it.
    let into_zstd_topic = produce(
        &mut client,
        "zstd-config",
        good_batch(Compression::Gzip, 0, 2),
        3,
    );
    assert_eq!(into_zstd_topic.error_code, 0);

    let fetch = |client: &mut TestClient, topic: &str, version: i16| {
        let response = client.call(&fetch_request(topic, 0, 0, 0), version);
        response.responses[0].partitions[0].clone()
    };
    for version in [4, 9] {
        let refused = fetch(&mut client, "zstd-config", version);
        assert_eq!(
            refused.error_code, UNSUPPORTED_COMPRESSION_TYPE,
            "v{version}"
        );
        assert!(refused
            .records
            .as_ref()
            .is_none_or(|records| records.is_empty()));
        let as_written = fetch(&mut client, "zstd-producer", version);
        assert_eq!(as_written.error_code, 0, "v{version}");
        let values = decode_values(as_written.records.as_ref().unwrap());
        assert_eq!(values.len(), 4, "v{version}: {values:?}");
    }
    let read = fetch(&mut client, "zstd-config", 10);
    assert_eq!(read.error_code, 0);
    let values = decode_values(read.records.as_ref().unwrap());
    assert_eq!(values, vec![(0, "v-0".to_string()), (1, "v-1".to_string())]);
}

/// Kafka's other checks of a Produce records section: from v3 on exactly one batch per
/// partition, and a client batch's base offset 0; both INVALID_RECORD, nothing written.
#[test]
fn a_produce_partition_carries_one_batch_at_base_offset_zero() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    let create = create_topic_request("one-batch", 1, 1, &[]);
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);

    let two = [
        good_batch(Compression::None, 0, 2),
        good_batch(Compression::None, 2, 2),
    ]
    .concat();
    let refused = produce(&mut client, "one-batch", Bytes::from(two), 9);
    assert_eq!(refused.error_code, INVALID_RECORD, "{refused:?}");
    assert!(
        refused
            .error_message
            .as_deref()
            .is_some_and(|message| message.contains("exactly one record batch")),
        "{refused:?}"
    );

    let mut moved = good_batch(Compression::Gzip, 0, 2).to_vec();
    moved[..8].copy_from_slice(&42i64.to_be_bytes()); // base offset: outside the CRC
    let refused = produce(&mut client, "one-batch", Bytes::from(moved), 9);
    assert_eq!(refused.error_code, INVALID_RECORD, "{refused:?}");
    assert!(
        refused
            .error_message
            .as_deref()
            .is_some_and(|message| message.contains("should be 0, but it is 42")),
        "{refused:?}"
    );
    assert_eq!(high_watermark(&mut client, "one-batch"), 0);

    let accepted = produce(
        &mut client,
        "one-batch",
        good_batch(Compression::None, 0, 2),
        9,
    );
    assert_eq!((accepted.error_code, accepted.base_offset), (0, 0));
}
