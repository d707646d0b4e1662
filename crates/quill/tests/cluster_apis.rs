//! Protocol-level tests of the cluster-facing APIs that answer from the metadata image, against
//! the real broker binary: DescribeTopicPartitions (API 75), and feature versions (ApiVersions
//! v3+ supported/finalized features, UpdateFeatures).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{topic_name, BrokerProcess};
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse, MetadataRequest, UpdateFeaturesRequest,
    UpdateFeaturesResponse,
};
use kafka_protocol::protocol::StrBytes;

fn start_broker() -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    (dir, broker)
}

fn describe_request(
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|name| TopicRequest::default().with_name(topic_name(name)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(topic, partition)| {
            Cursor::default()
                .with_topic_name(topic_name(topic))
                .with_partition_index(partition)
        }))
}

/// (topic, error code, partition indexes) per topic and the next cursor.
type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

fn summary(response: &DescribeTopicPartitionsResponse) -> Page {
    (
        response
            .topics
            .iter()
            .map(|topic| {
                (
                    topic.name.as_ref().unwrap().0.to_string(),
                    topic.error_code,
                    topic.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect(),
        response
            .next_cursor
            .as_ref()
            .map(|cursor| (cursor.topic_name.0.to_string(), cursor.partition_index)),
    )
}

fn entry(name: &str, error_code: i16, partitions: &[i32]) -> (String, i16, Vec<i32>) {
    (name.to_string(), error_code, partitions.to_vec())
}

#[test]
fn describe_topic_partitions_is_advertised_and_pages_through_every_partition() {
    let (_dir, broker) = start_broker();
    let mut client = broker.connect();
    let versions = client.call(
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("quill-test"))
            .with_client_software_version(StrBytes::from_static_str("1.0")),
        3,
    );
    let advertised = versions
        .api_keys
        .iter()
        .find(|api| api.api_key == ApiKey::DescribeTopicPartitions as i16)
        .map(|api| (api.min_version, api.max_version));
    assert_eq!(advertised, Some((0, 0)));

    client.create_topic("orders", 3);
    client.create_topic("clicks", 2);

    // All topics, three partitions a page: clicks 0-1 + orders 0, then orders 1-2.
    let first = client.call(&describe_request(&[], 3, None), 0);
    assert_eq!(
        summary(&first),
        (
            vec![entry("clicks", 0, &[0, 1]), entry("orders", 0, &[0])],
            Some(("orders".into(), 1))
        )
    );
    let second = client.call(&describe_request(&[], 3, Some(("orders", 1))), 0);
    assert_eq!(summary(&second), (vec![entry("orders", 0, &[1, 2])], None));

    let partition = &second.topics[0].partitions[0];
    assert_eq!(partition.leader_id, BrokerId(1));
    assert_eq!(partition.leader_epoch, 0);
    assert_eq!(partition.replica_nodes, vec![BrokerId(1)]);
    assert_eq!(partition.isr_nodes, vec![BrokerId(1)]);
    assert_eq!(partition.eligible_leader_replicas, Some(vec![]));
    assert_eq!(partition.last_known_elr, Some(vec![]));
    assert!(partition.offline_replicas.is_empty());
    assert!(!second.topics[0].topic_id.is_nil());
    assert!(!second.topics[0].is_internal);
    // READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    assert_eq!(
        second.topics[0].topic_authorized_operations,
        0b1101_1111_1000
    );
}

#[test]
fn describe_topic_partitions_reports_unknown_topics_and_checks_the_cursor() {
    let (_dir, broker) = start_broker();
    let mut client = broker.connect();
    client.create_topic("known", 1);

    let named = client.call(
        &describe_request(&["nope", "known", "known"], 2000, None),
        0,
    );
    assert_eq!(
        summary(&named),
        (vec![entry("known", 0, &[0]), entry("nope", 3, &[])], None)
    );
    assert!(named.topics[1].topic_id.is_nil());

    // The cursor's topic must be one of the named topics (Kafka: INVALID_REQUEST for each).
    let bad_cursor = client.call(&describe_request(&["known"], 2000, Some(("other", 0))), 0);
    assert_eq!(summary(&bad_cursor), (vec![entry("known", 42, &[])], None));

    // The connection stays usable after the error answer.
    let again = client.call(&describe_request(&["known"], 2000, None), 0);
    assert_eq!(summary(&again), (vec![entry("known", 0, &[0])], None));
}

fn api_versions(client: &mut common::TestClient, version: i16) -> ApiVersionsResponse {
    let response = client.call(
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("quill-test"))
            .with_client_software_version(StrBytes::from_static_str("1.0")),
        version,
    );
    assert_eq!(response.error_code, 0);
    response
}

/// (name, min, max) of the supported features, (name, level) of the finalized ones, epoch.
type Features = (Vec<(String, i16, i16)>, Vec<(String, i16)>, i64);

fn features(response: &ApiVersionsResponse) -> Features {
    (
        response
            .supported_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version, f.max_version))
            .collect(),
        response
            .finalized_features
            .iter()
            .map(|f| {
                assert_eq!(f.min_version_level, f.max_version_level);
                (f.name.to_string(), f.max_version_level)
            })
            .collect(),
        response.finalized_features_epoch,
    )
}

fn metadata_version_update(level: i16, upgrade_type: i8) -> FeatureUpdateKey {
    FeatureUpdateKey::default()
        .with_feature(StrBytes::from_static_str("metadata.version"))
        .with_max_version_level(level)
        .with_upgrade_type(upgrade_type)
}

fn update(
    client: &mut common::TestClient,
    version: i16,
    updates: Vec<FeatureUpdateKey>,
    validate_only: bool,
) -> UpdateFeaturesResponse {
    client.call(
        &UpdateFeaturesRequest::default()
            .with_timeout_ms(30_000)
            .with_feature_updates(updates)
            .with_validate_only(validate_only),
        version,
    )
}

fn error_of(response: &UpdateFeaturesResponse) -> (i16, String) {
    (
        response.error_code,
        response
            .error_message
            .as_ref()
            .map(|message| message.to_string())
            .unwrap_or_default(),
    )
}

#[test]
fn api_versions_reports_metadata_version_finalized_in_the_metadata_log() {
    let (_dir, mut broker) = start_broker();
    let mut client = broker.connect();
    let (supported, finalized, epoch) = features(&api_versions(&mut client, 3));
    assert_eq!(supported, vec![("metadata.version".to_string(), 25, 25)]);
    assert_eq!(finalized, vec![("metadata.version".to_string(), 25)]);
    assert!(epoch > 0, "the epoch is the metadata offset: {epoch}");
    assert_eq!(features(&api_versions(&mut client, 4)).1, finalized);
    // v0-v2 have no feature fields.
    assert!(api_versions(&mut client, 2).supported_features.is_empty());

    // Finalized levels are metadata: they survive a restart without being written again.
    broker.stop_with("TERM");
    broker.restart();
    let mut client = broker.connect();
    let after = features(&api_versions(&mut client, 3));
    assert_eq!(after.1, finalized);
    assert_eq!(after.2, epoch);
}

#[test]
fn update_features_follows_kafkas_rules_and_changes_go_through_the_metadata_log() {
    let (_dir, broker) = start_broker();
    let mut client = broker.connect();
    let epoch = |client: &mut common::TestClient| features(&api_versions(client, 3)).2;
    let start = epoch(&mut client);

    // validate_only: the answer of a real update, nothing written.
    let validated = update(&mut client, 1, vec![metadata_version_update(25, 1)], true);
    assert_eq!(error_of(&validated), (0, String::new()));
    assert_eq!(validated.results.len(), 1);
    assert_eq!(validated.results[0].feature.as_str(), "metadata.version");
    assert_eq!(epoch(&mut client), start);

    // Setting the current level is valid and is a metadata change (Kafka writes the record).
    let same = update(&mut client, 2, vec![metadata_version_update(25, 1)], false);
    assert_eq!(error_of(&same), (0, String::new()));
    assert!(same.results.is_empty(), "v2 lists no results on success");
    assert_eq!(epoch(&mut client), start + 1);

    let downgrade = update(&mut client, 2, vec![metadata_version_update(24, 2)], false);
    assert_eq!(
        error_of(&downgrade),
        (
            95,
            "Invalid update version 24 for feature metadata.version. Local controller 1 only \
             supports versions 25"
                .to_string()
        )
    );
    let unknown_type = update(&mut client, 1, vec![metadata_version_update(25, 9)], false);
    assert_eq!(
        error_of(&unknown_type).1,
        "Invalid update version 25 for feature metadata.version. The controller does not \
         support the given upgrade type."
    );
    assert!(
        unknown_type.results.is_empty(),
        "no results with a top-level error"
    );
    let unsupported = update(
        &mut client,
        0,
        vec![FeatureUpdateKey::default()
            .with_feature(StrBytes::from_static_str("transaction.version"))
            .with_max_version_level(2)],
        false,
    );
    assert_eq!(
        error_of(&unsupported),
        (
            95,
            "Invalid update version 2 for feature transaction.version. Local controller 1 does \
             not support this feature."
                .to_string()
        )
    );
    // One bad update fails the whole request: the valid one is not applied either.
    let mixed = update(
        &mut client,
        1,
        vec![
            metadata_version_update(25, 1),
            FeatureUpdateKey::default()
                .with_feature(StrBytes::from_static_str("no.such.feature"))
                .with_max_version_level(0)
                .with_upgrade_type(1),
        ],
        false,
    );
    assert_eq!(
        error_of(&mixed),
        (
            95,
            "Invalid update version 0 for feature no.such.feature. Feature no.such.feature not \
             found."
                .to_string()
        )
    );
    assert_eq!(epoch(&mut client), start + 1);
}

#[test]
fn a_data_directory_written_before_features_existed_opens_and_gets_metadata_version() {
    let dir = tempfile::tempdir().unwrap();
    let metadata_dir = dir.path().join("__cluster_metadata");
    let cluster_id = {
        // What an earlier release left: records, no FeatureLevel.
        let mut store = quill_meta::MetadataStore::open(&metadata_dir).unwrap();
        let image = store
            .append(vec![quill_meta::MetadataRecord::RegisterBroker {
                node_id: 7,
                host: "old-host".into(),
                port: 9092,
                rack: None,
                incarnation_id: None,
            }])
            .unwrap();
        assert!(image.features.is_empty());
        image.cluster_id.clone()
    };
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut client = broker.connect();
    let versions = api_versions(&mut client, 3);
    assert_eq!(
        features(&versions).1,
        vec![("metadata.version".to_string(), 25)]
    );
    // The earlier records are still there: same cluster, broker 7 still registered.
    let metadata = client.call(&MetadataRequest::default().with_topics(Some(vec![])), 12);
    assert_eq!(
        metadata.cluster_id.as_ref().map(|id| id.to_string()),
        Some(cluster_id)
    );
    let brokers: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    assert_eq!(brokers, vec![1, 7]);
}

/// The bound on one client program's run.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(60);

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var_os("QUILL_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/compat-venv/bin/python"));
    assert!(
        python.exists(),
        "{} missing: run ./scripts/install-test-deps.sh",
        python.display()
    );
    python
}

/// Runs a Python program under tests/compat/features to completion (bounded); its stdout.
fn run_python(script: &str, args: &[&str]) -> String {
    run_python_with_path(script, args, None)
}

/// kafka-python 3 (tests/compat/features/requirements.txt), installed apart from the compat
/// suite's kafka-python 2.3 by scripts/install-test-deps.sh.
fn kafka_python3_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/compat-kafka-python3");
    assert!(
        dir.join("kafka").exists(),
        "{} missing: run ./scripts/install-test-deps.sh",
        dir.display()
    );
    dir
}

fn run_python_with_path(script: &str, args: &[&str], python_path: Option<PathBuf>) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut command = Command::new(python());
    if let Some(path) = python_path {
        command.env("PYTHONPATH", path);
    }
    let mut child = command
        .arg(root.join("tests/compat/features").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    common::wait_for_exit(&mut child, PROGRAM_TIMEOUT);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{script} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn kafka_python_decodes_the_feature_fields_of_api_versions() {
    let (_dir, broker) = start_broker();
    let mut client = broker.connect();
    let epoch = features(&api_versions(&mut client, 3)).2;
    let port = broker.address().rsplit_once(':').unwrap().1.to_string();
    let output = run_python("api_versions_features.py", &["127.0.0.1", &port]);
    let expected: Vec<String> = [3, 4]
        .iter()
        .map(|version| {
            format!(
                r#"{{"version": {version}, "error_code": 0, "tags": [0, 1, 2], "supported": [["metadata.version", 25, 25]], "epoch": {epoch}, "finalized": [["metadata.version", 25, 25]]}}"#
            )
        })
        .collect();
    assert_eq!(output.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn kafka_python3_admin_describes_and_updates_features_and_pages_topic_partitions() {
    let (_dir, broker) = start_broker();
    let output = run_python_with_path(
        "kafka_python3_admin.py",
        &[&broker.address(), "kp3"],
        Some(kafka_python3_dir()),
    );
    assert!(output.ends_with("OK\n"), "{output}");
}
