//! The broker's memory stays within its budget under three attacks from issue 11: 200
//! connections each sending 8 MiB of a declared 100 MiB request, a client that pipelines
//! Fetch requests and never reads the responses, and many connections sending small gzip and
//! zstd batches that each decompress to tens of MiB. RSS is read from `/proc/<pid>/status`
//! (`VmHWM`, the peak resident set, so a transient spike counts too).
//!
//! The bound is generous and documented: growth over the idle broker's RSS must stay below
//! `queued.max.request.bytes` + `queued.max.response.bytes` (100 MiB each by default) plus
//! `SLACK_BYTES` (64 MiB: allocator fragmentation, per-connection tasks and 8 KiB read
//! buffers, one response being built while its handler waits for budget). Without the budget
//! the first attack peaked near 1.7 GB and the second near 800 MB. Decoding produce batches has
//! its own pool, `DECODE_MEMORY_BYTES` (96 MiB), added to the bound of the third attack; before
//! it (four decodes at once, each holding a whole record) the third attack peaked at 509 MiB
//! (85 MiB over idle with it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::ProduceRequest;
use quill_log::records::{encode_batch, encode_record};
use quill_log::{BatchFields, Compression, CompressionLevels};

const MIB: u64 = 1024 * 1024;
const REQUEST_BUDGET_BYTES: u64 = 100 * MIB;
const RESPONSE_BUDGET_BYTES: u64 = 100 * MIB;
const SLACK_BYTES: u64 = 64 * MIB;
/// The broker's pool for decompressing produce batches (`budget::DECODE_MEMORY_BYTES`).
const DECODE_BUDGET_BYTES: u64 = 96 * MIB;

/// A field of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .unwrap();
    kib * 1024
}

/// Waits (at most `limit`) until the broker's peak RSS has not grown for `quiet`, and returns
/// it: the broker has then done all it will do with what it was sent.
fn settled_peak_rss(pid: u32, quiet: Duration, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    let mut peak = status_bytes(pid, "VmHWM");
    let mut unchanged_since = Instant::now();
    while Instant::now() < deadline && unchanged_since.elapsed() < quiet {
        std::thread::sleep(Duration::from_millis(50));
        let now = status_bytes(pid, "VmHWM");
        if now != peak {
            peak = now;
            unchanged_since = Instant::now();
        }
    }
    peak
}

fn assert_within_budget(base: u64, peak: u64, what: &str) {
    assert_within(
        base,
        peak,
        REQUEST_BUDGET_BYTES + RESPONSE_BUDGET_BYTES + SLACK_BYTES,
        what,
    );
}

fn assert_within(base: u64, peak: u64, budget: u64, what: &str) {
    let limit = base + budget;
    eprintln!(
        "{what}: idle RSS {} MiB, peak {} MiB, limit {} MiB",
        base / MIB,
        peak / MIB,
        limit / MIB
    );
    assert!(
        peak <= limit,
        "{what}: peak RSS {} MiB exceeds the budget bound {} MiB (idle {} MiB)",
        peak / MIB,
        limit / MIB,
        base / MIB
    );
}

#[test]
fn partial_huge_requests_on_many_connections_stay_within_the_request_budget() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    client.create_topic("warm", 1);
    let base = status_bytes(broker.pid(), "VmRSS");

    const CONNECTIONS: usize = 200;
    const SENT_BYTES: usize = 8 * 1024 * 1024;
    const DECLARED_BYTES: i32 = 100 * 1024 * 1024;
    let mut streams: Vec<(TcpStream, usize)> = (0..CONNECTIONS)
        .map(|_| {
            let mut stream = TcpStream::connect(broker.address()).unwrap();
            stream.write_all(&DECLARED_BYTES.to_be_bytes()).unwrap();
            stream.set_nonblocking(true).unwrap();
            (stream, 0)
        })
        .collect();
    // Pump bytes into every connection until each has sent 8 MiB or the broker stopped
    // reading from all of them (no progress for 3 s: backpressure), at most 60 s.
    let chunk = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_progress = Instant::now();
    while Instant::now() < deadline && last_progress.elapsed() < Duration::from_secs(3) {
        let mut progressed = false;
        for (stream, sent) in &mut streams {
            while *sent < SENT_BYTES {
                let wanted = (SENT_BYTES - *sent).min(chunk.len());
                match stream.write(&chunk[..wanted]) {
                    Ok(written) if written > 0 => {
                        *sent += written;
                        progressed = true;
                    }
                    Ok(_) => break,
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) => panic!("write failed: {error}"),
                }
            }
        }
        if streams.iter().all(|(_, sent)| *sent >= SENT_BYTES) {
            break;
        }
        if progressed {
            last_progress = Instant::now();
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let peak = settled_peak_rss(
        broker.pid(),
        Duration::from_secs(2),
        Duration::from_secs(30),
    );
    assert_within_budget(base, peak, "200 x 8 MiB of a declared 100 MiB request");

    // The broker still serves other clients (the budget blocks only the connections that
    // hold or wait for it), and frees the budget when the attackers leave.
    drop(streams);
    let metadata = client.call(
        &kafka_protocol::messages::MetadataRequest::default().with_topics(None),
        9,
    );
    assert_eq!(metadata.topics.len(), 1);
    assert_eq!(
        client.produce("warm", 0, &["after"]).responses[0].partition_responses[0].error_code,
        0
    );
}

#[test]
fn a_client_that_never_reads_its_responses_stays_within_the_response_budget() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    client.create_topic("big", 1);
    // About 7 MiB in the partition: each Fetch from offset 0 answers all of it.
    let value = "v".repeat(900 * 1024);
    for _ in 0..8 {
        let produced = client.produce("big", 0, &[value.as_str()]);
        assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    }
    let base = status_bytes(broker.pid(), "VmRSS");

    let mut reader_that_never_reads = broker.connect();
    let fetch = fetch_request("big", 0, 0, 0)
        .with_max_bytes(50 * 1024 * 1024)
        .with_topics(vec![
            kafka_protocol::messages::fetch_request::FetchTopic::default()
                .with_topic(topic_name("big"))
                .with_partitions(vec![
                    kafka_protocol::messages::fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(50 * 1024 * 1024),
                ]),
        ]);
    // 100 pipelined Fetch requests (about 700 MiB of responses), none of them read.
    for _ in 0..100 {
        reader_that_never_reads.send(&fetch, 11);
    }
    let peak = settled_peak_rss(
        broker.pid(),
        Duration::from_secs(2),
        Duration::from_secs(30),
    );
    assert_within_budget(base, peak, "100 unread 7 MiB Fetch responses");

    // Other clients are still served meanwhile.
    let fetched = client.fetch("big", 0, 7);
    assert_eq!(fetched.responses[0].partitions[0].error_code, 0);
    drop(reader_that_never_reads);
}

#[test]
fn connections_beyond_max_connections_per_ip_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--set", "max.connections.per.ip=2"]);
    let mut first = broker.connect();
    let mut second = broker.connect();
    let mut third = broker.connect();
    assert!(third.is_closed_by_broker());
    let metadata = kafka_protocol::messages::MetadataRequest::default().with_topics(None);
    first.call(&metadata, 9);
    second.call(&metadata, 9);
    // A slot frees when a connection closes (the broker notices the close asynchronously, so
    // retry the connect until it is admitted, within a bound).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut again = broker.connect();
        again
            .stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let correlation_id = again.send(&metadata, 9);
        if let Ok(mut frame) = again.receive_frame() {
            use kafka_protocol::protocol::Decodable;
            let header = kafka_protocol::messages::ResponseHeader::decode(&mut frame, 0).unwrap();
            assert_eq!(header.correlation_id, correlation_id);
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The records section of one batch holding one record of `value_bytes` zeros.
fn zeros_section(value_bytes: usize) -> Vec<u8> {
    let mut section = Vec::new();
    encode_record(
        &mut section,
        0,
        0,
        Some(b"k"),
        Some(&vec![0u8; value_bytes]),
        &[],
    );
    section
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One batch holding one record of `value_bytes` zeros: a few KiB to a few tens of KiB on the
/// wire, `value_bytes` once decompressed.
fn expanding_batch(codec: Compression, value_bytes: usize) -> Bytes {
    let fields = BatchFields::producer(now_ms(), now_ms());
    let section = zeros_section(value_bytes);
    let batch = encode_batch(&fields, 1, &section, codec, CompressionLevels::default()).unwrap();
    assert!(batch.len() < 256 * 1024, "{codec:?}: {} bytes", batch.len());
    Bytes::from(batch)
}

/// A batch around an already compressed records section (codec bits and CRC set).
fn batch_around(codec: Compression, compressed_section: &[u8]) -> Bytes {
    let fields = BatchFields::producer(now_ms(), now_ms());
    let mut batch = encode_batch(
        &fields,
        1,
        compressed_section,
        Compression::None,
        CompressionLevels::default(),
    )
    .unwrap();
    batch[22] |= codec.id() as u8; // low byte of the attributes
    quill_log::testing::fix_crc(&mut batch);
    Bytes::from(batch)
}

/// The costliest batches to decode: librdkafka's raw snappy (no streaming form: the whole
/// section is held) and a zstd frame asking for a 64 MiB window without declaring its size.
fn worst_case_batches(value_bytes: usize) -> [Bytes; 2] {
    let section = zeros_section(value_bytes);
    let snappy = snap::raw::Encoder::new().compress_vec(&section).unwrap();
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.window_log(26).unwrap();
    encoder.include_contentsize(false).unwrap();
    std::io::Write::write_all(&mut encoder, &section).unwrap();
    let zstd = encoder.finish().unwrap();
    [
        batch_around(Compression::Snappy, &snappy),
        batch_around(Compression::Zstd, &zstd),
    ]
}

#[test]
fn compressed_batches_that_expand_to_tens_of_mib_stay_within_the_decode_budget() {
    // Small request and response budgets, so what decoding holds dominates the bound; raw
    // snappy of 60 MiB is ~3 MiB on the wire, past the default message.max.bytes.
    const SMALL_BUDGET_BYTES: u64 = 16 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let small_budget = SMALL_BUDGET_BYTES.to_string();
    let broker = BrokerProcess::start(
        dir.path(),
        &[
            "--set",
            &format!("queued.max.request.bytes={small_budget}"),
            "--set",
            &format!("queued.max.response.bytes={small_budget}"),
            "--set",
            "message.max.bytes=8388608",
        ],
    );
    let mut client = broker.connect();
    client.create_topic("bombs", 1);
    const EXPANDED_BYTES: usize = 60 * 1024 * 1024;
    let [raw_snappy, wide_zstd] = worst_case_batches(EXPANDED_BYTES);
    // (batch, the answer it must get): 60 MiB inside is accepted; 65 MiB is past
    // MAX_DECOMPRESSED_BATCH_BYTES (64 MiB), refused as Kafka's MESSAGE_TOO_LARGE (10).
    let requests: Vec<(ProduceRequest, i16)> = vec![
        (expanding_batch(Compression::Gzip, EXPANDED_BYTES), 0),
        (expanding_batch(Compression::Zstd, EXPANDED_BYTES), 0),
        (raw_snappy, 0),
        (wide_zstd, 0),
        (expanding_batch(Compression::Zstd, 65 * 1024 * 1024), 10),
    ]
    .into_iter()
    .map(|(batch, expected)| (produce_request("bombs", 0, batch, -1), expected))
    .collect();
    let accepted_per_connection = requests.iter().filter(|(_, code)| *code == 0).count();
    let base = status_bytes(broker.pid(), "VmRSS");

    const CONNECTIONS: usize = 12;
    std::thread::scope(|scope| {
        for _ in 0..CONNECTIONS {
            let address = broker.address();
            let requests = &requests;
            scope.spawn(move || {
                let mut connection = TestClient::connect(&address);
                // Decoding is slow in a debug build on a loaded machine: the answers may take a
                // while, but every one must come.
                connection
                    .stream
                    .set_read_timeout(Some(Duration::from_secs(300)))
                    .unwrap();
                let sent: Vec<(i32, i16)> = requests
                    .iter()
                    .map(|(request, expected)| (connection.send(request, 9), *expected))
                    .collect();
                for (correlation_id, expected) in sent {
                    let response = connection.receive::<ProduceRequest>(9, correlation_id);
                    let partition = &response.responses[0].partition_responses[0];
                    assert_eq!(partition.error_code, expected, "{partition:?}");
                }
            });
        }
    });
    let peak = settled_peak_rss(
        broker.pid(),
        Duration::from_secs(2),
        Duration::from_secs(30),
    );
    assert_within(
        base,
        peak,
        2 * SMALL_BUDGET_BYTES + DECODE_BUDGET_BYTES + SLACK_BYTES,
        "12 connections x 5 batches that decompress to 60-65 MiB",
    );
    let fetched = client.fetch("bombs", 0, 0);
    assert_eq!(fetched.responses[0].partitions[0].error_code, 0);
    assert_eq!(
        fetched.responses[0].partitions[0].high_watermark,
        (accepted_per_connection * CONNECTIONS) as i64
    );
}

/// The default `max.connections.per.ip` (800) admits what a busy host opens: the old default
/// (256) refused the 86th librdkafka transactional producer of one host (3 connections each).
#[test]
fn the_default_per_ip_limit_admits_a_busy_host() {
    const CONNECTIONS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let metadata = kafka_protocol::messages::MetadataRequest::default().with_topics(None);
    let mut clients: Vec<TestClient> = (0..CONNECTIONS).map(|_| broker.connect()).collect();
    let pending: Vec<i32> = clients
        .iter_mut()
        .map(|client| client.send(&metadata, 9))
        .collect();
    for (client, correlation_id) in clients.iter_mut().zip(pending) {
        let response =
            client.receive::<kafka_protocol::messages::MetadataRequest>(9, correlation_id);
        assert_eq!(response.brokers.len(), 1);
    }
}
