//! Protocol-level tests against the real broker binary: ApiVersions, KIP-511, bad frames.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;

use bytes::{BufMut, BytesMut};
use common::BrokerProcess;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, StrBytes};

fn start_broker() -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    (dir, broker)
}

fn named_api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("quill-test"))
        .with_client_software_version(StrBytes::from_static_str("1.0"))
}

#[test]
fn api_versions_v3_rejects_invalid_client_software_name() {
    let (_dir, broker) = start_broker();
    let mut client = broker.connect();
    let response = client.call(&ApiVersionsRequest::default(), 3);
    assert_eq!(response.error_code, 42, "INVALID_REQUEST");
}

fn advertised(response: &ApiVersionsResponse, key: ApiKey) -> Option<(i16, i16)> {
    response
        .api_keys
        .iter()
        .find(|api| api.api_key == key as i16)
        .map(|api| (api.min_version, api.max_version))
}

#[test]
fn api_versions_every_version_lists_our_apis() {
    let (_dir, broker) = start_broker();
    let mut client = broker.connect();
    for version in 0..=4 {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("quill-test"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let response = client.call(&request, version);
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(advertised(&response, ApiKey::ApiVersions), Some((0, 4)));
    }
}

#[test]
fn api_versions_at_unknown_version_gets_kip511_v0_answer() {
    let (_dir, broker) = start_broker();
    let mut client = broker.connect();
    let mut frame = BytesMut::new();
    let mut body = BytesMut::new();
    body.put_i16(ApiKey::ApiVersions as i16);
    body.put_i16(99); // a version from the future
    body.put_i32(1234);
    body.put_i16(-1); // null client id
    body.put_u8(0); // empty tagged fields (flexible header)
    body.put_slice(&[0, 0, 0]); // opaque future body
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    client.stream.write_all(&frame).unwrap();
    let mut response = client.receive_frame().unwrap();
    let correlation_id = i32::from_be_bytes([response[0], response[1], response[2], response[3]]);
    assert_eq!(correlation_id, 1234);
    let _ = bytes::Buf::get_i32(&mut response);
    let decoded = ApiVersionsResponse::decode(&mut response, 0).unwrap();
    assert_eq!(decoded.error_code, 35, "UNSUPPORTED_VERSION");
    assert_eq!(advertised(&decoded, ApiKey::ApiVersions), Some((0, 4)));
    // The connection stays usable: the client retries at a supported version.
    let retry = client.call(&ApiVersionsRequest::default(), 0);
    assert_eq!(retry.error_code, 0);
}

/// Each bad frame closes only its own connection; a healthy connection keeps working.
#[test]
fn bad_frames_close_only_their_connection() {
    let (_dir, broker) = start_broker();
    let mut healthy = broker.connect();
    assert_eq!(
        healthy.call(&ApiVersionsRequest::default(), 2).error_code,
        0
    );

    let bad_inputs: Vec<(&str, Vec<u8>)> = vec![
        ("garbage header", {
            let mut frame = vec![0, 0, 0, 12];
            frame.extend_from_slice(b"not a kafka!");
            frame
        }),
        ("absurd length", vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3]),
        ("negative length", vec![0xff, 0xff, 0xff, 0xfe]),
        ("too short for a header", vec![0, 0, 0, 3, 0, 18, 0]),
        (
            "unknown api key",
            vec![0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff],
        ),
        (
            "unsupported version",
            vec![0, 0, 0, 10, 0, 3, 0x7f, 0, 0, 0, 0, 1, 0xff, 0xff],
        ),
        ("impossible array count (would allocate 150 GB)", {
            // Metadata v1 whose topic array claims i32::MAX entries.
            vec![
                0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
            ]
        }),
        ("undecodable body", {
            // Metadata v1 whose topic array claims more entries than bytes present.
            let mut frame = vec![0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff];
            frame.extend_from_slice(&[0, 0, 0, 5]);
            frame
        }),
    ];
    for (name, bytes) in bad_inputs {
        let mut client = broker.connect();
        client.stream.write_all(&bytes).unwrap();
        assert!(
            client.is_closed_by_broker(),
            "{name}: connection not closed"
        );
        assert_eq!(
            healthy.call(&ApiVersionsRequest::default(), 2).error_code,
            0,
            "{name}: healthy connection broken"
        );
    }

    // A truncated frame: the peer goes away mid-frame; the broker just drops that connection.
    let mut truncated = broker.connect();
    truncated.stream.write_all(&[0, 0, 0, 100, 0, 18]).unwrap();
    drop(truncated);
    assert_eq!(healthy.call(&named_api_versions_request(), 3).error_code, 0);
    let log = broker.log_text();
    assert!(log.contains("closing connection"), "no log line: {log}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_dir, broker) = start_broker();
    let mut client = broker.connect();
    let mut expected = Vec::new();
    let mut batch = BytesMut::new();
    for index in 0..50 {
        let version = index % 4;
        let (correlation_id, frame) = client.encode_request(&named_api_versions_request(), version);
        batch.put_slice(&frame);
        expected.push((correlation_id, version));
    }
    client.stream.write_all(&batch).unwrap();
    for (correlation_id, version) in expected {
        let response = client.receive::<ApiVersionsRequest>(version, correlation_id);
        assert_eq!(response.error_code, 0);
    }
}

#[test]
fn startup_logs_one_line_with_address_and_data_dir() {
    let (dir, broker) = start_broker();
    let log = broker.log_text();
    let line = log
        .lines()
        .find(|line| line.contains("listening on"))
        .unwrap();
    assert!(line.contains(&broker.address()), "{line}");
    assert!(line.contains(&dir.path().display().to_string()), "{line}");
    assert_eq!(
        log.lines().count(),
        1,
        "start-up should log one line:\n{log}"
    );
}

#[test]
fn frames_above_socket_request_max_bytes_close_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--set", "socket.request.max.bytes=1000"]);
    let mut client = broker.connect();
    client.stream.write_all(&[0, 0, 0x10, 0]).unwrap(); // 4096 > 1000
    assert!(client.is_closed_by_broker());
    let mut healthy = broker.connect();
    assert_eq!(
        healthy.call(&ApiVersionsRequest::default(), 2).error_code,
        0
    );
}

#[test]
fn connections_beyond_max_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--set", "max.connections=2"]);
    let mut first = broker.connect();
    let mut second = broker.connect();
    assert_eq!(first.call(&ApiVersionsRequest::default(), 2).error_code, 0);
    assert_eq!(second.call(&ApiVersionsRequest::default(), 2).error_code, 0);
    let mut third = broker.connect();
    assert!(third.is_closed_by_broker(), "third connection accepted");
    drop(first);
    // The slot frees once the broker notices the close; retry briefly (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut retry = broker.connect();
        retry.send(&ApiVersionsRequest::default(), 2);
        if retry.receive_frame().is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slot never freed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `max.connections` changes at runtime, as in Kafka: the new limit applies to new
/// connections.
#[test]
fn max_connections_changes_at_runtime() {
    use kafka_protocol::messages::{
        incremental_alter_configs_request, IncrementalAlterConfigsRequest,
    };
    use kafka_protocol::protocol::StrBytes;

    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut admin = broker.connect();
    let mut set_limit = |limit: &str| {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str(""))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("max.connections"))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_string(limit.to_string()))),
                ]),
        ]);
        admin.call(&request, 1).responses[0].error_code
    };
    assert_eq!(set_limit("2"), 0);
    let mut second = broker.connect();
    assert_eq!(second.call(&ApiVersionsRequest::default(), 2).error_code, 0);
    let mut third = broker.connect();
    assert!(
        third.is_closed_by_broker(),
        "third connection accepted at max.connections=2"
    );
    assert_eq!(set_limit("3"), 0);
    let mut fourth = broker.connect();
    assert_eq!(fourth.call(&ApiVersionsRequest::default(), 2).error_code, 0);
}

#[test]
fn idle_connections_are_closed_after_connections_max_idle_ms() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--set", "connections.max.idle.ms=300"]);
    let mut client = broker.connect();
    assert_eq!(client.call(&ApiVersionsRequest::default(), 2).error_code, 0);
    let started = std::time::Instant::now();
    assert!(client.is_closed_by_broker());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn shutdown_answers_a_pending_long_poll_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    client.create_topic("waiting", 1);
    let correlation_id = client.send(&common::fetch_request("waiting", 0, 0, 60_000), 11);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert_eq!(broker.stop_with("TERM"), Some(0));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let response = client.receive::<kafka_protocol::messages::FetchRequest>(11, correlation_id);
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
}

#[test]
fn a_long_poll_longer_than_the_idle_timeout_is_not_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--set", "connections.max.idle.ms=200"]);
    let mut client = broker.connect();
    client.create_topic("patient", 1);
    let started = std::time::Instant::now();
    let response = client.call(&common::fetch_request("patient", 0, 0, 800), 11);
    assert!(started.elapsed() >= std::time::Duration::from_millis(700));
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
}
