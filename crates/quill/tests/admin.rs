//! Admin APIs against the real broker binary: configs (describe, alter, incremental alter) for
//! topic and broker resources, CreatePartitions, DeleteRecords, DescribeCluster, DescribeLogDirs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
    CreatePartitionsRequest, DeleteRecordsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    DescribeConfigsResponse, DescribeLogDirsRequest, IncrementalAlterConfigsRequest,
    MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_DEFAULT: i8 = 3;
const SOURCE_STATIC: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn start(extra_args: &[&str]) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), extra_args);
    (dir, broker)
}

fn describe(client: &mut TestClient, resource_type: i8, name: &str) -> DescribeConfigsResponse {
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(text(name))
            .with_configuration_keys(None)])
        .with_include_synonyms(true);
    client.call(&request, 4)
}

fn config_value(response: &DescribeConfigsResponse, name: &str) -> (String, i8) {
    let entry = response.results[0]
        .configs
        .iter()
        .find(|entry| entry.name.as_str() == name)
        .unwrap_or_else(|| panic!("{name} not described"));
    (
        entry.value.as_ref().unwrap().to_string(),
        entry.config_source,
    )
}

#[test]
fn topic_configs_are_described_with_sources_and_altered() {
    let (_dir, broker) = start(&["--set", "log.retention.ms=3600000"]);
    let mut client = broker.connect();
    let create = create_topic_request("conf", 1, 1, &[("cleanup.policy", "compact")]);
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);

    let described = describe(&mut client, TOPIC, "conf");
    assert_eq!(described.results[0].error_code, 0);
    assert_eq!(
        config_value(&described, "cleanup.policy"),
        ("compact".into(), SOURCE_TOPIC)
    );
    assert_eq!(
        config_value(&described, "retention.ms"),
        ("3600000".into(), SOURCE_STATIC)
    );
    assert_eq!(
        config_value(&described, "segment.bytes"),
        ("1073741824".into(), SOURCE_DEFAULT)
    );

    // Incremental: set one, delete another.
    let incremental = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(text("conf"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(text("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(text("1000"))),
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(text("cleanup.policy"))
                    .with_config_operation(1),
            ]),
    ]);
    let response = client.call(&incremental, 1);
    assert_eq!(response.responses[0].error_code, 0, "{response:?}");
    let described = describe(&mut client, TOPIC, "conf");
    assert_eq!(
        config_value(&described, "retention.ms"),
        ("1000".into(), SOURCE_TOPIC)
    );
    assert_eq!(
        config_value(&described, "cleanup.policy"),
        ("delete".into(), SOURCE_DEFAULT)
    );

    // Legacy AlterConfigs replaces the whole set.
    let legacy = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(text("conf"))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(text("segment.ms"))
                .with_value(Some(text("60000")))]),
    ]);
    assert_eq!(client.call(&legacy, 1).responses[0].error_code, 0);
    let described = describe(&mut client, TOPIC, "conf");
    assert_eq!(
        config_value(&described, "segment.ms"),
        ("60000".into(), SOURCE_TOPIC)
    );
    assert_eq!(
        config_value(&described, "retention.ms"),
        ("3600000".into(), SOURCE_STATIC)
    );
}

#[test]
fn invalid_config_changes_are_rejected_with_a_message() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("strict", 1);
    let bad = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(text("strict"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(text("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(text("forever"))),
            ]),
    ]);
    let response = client.call(&bad, 1);
    let result = &response.responses[0];
    assert_eq!(result.error_code, 40, "INVALID_CONFIG: {result:?}");
    assert!(result
        .error_message
        .as_ref()
        .unwrap()
        .contains("retention.ms"));

    let missing = describe(&mut client, TOPIC, "missing");
    assert_eq!(missing.results[0].error_code, 3);
}

#[test]
fn broker_configs_are_described_and_dynamic_defaults_flow_to_topics() {
    let (_dir, broker) = start(&["--set", "num.partitions=2"]);
    let mut client = broker.connect();
    let described = describe(&mut client, BROKER, "1");
    assert_eq!(described.results[0].error_code, 0);
    assert_eq!(
        config_value(&described, "num.partitions"),
        ("2".into(), SOURCE_STATIC)
    );
    assert_eq!(
        config_value(&described, "message.max.bytes"),
        ("1048588".into(), SOURCE_DEFAULT)
    );

    let set_default = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(text(""))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(text("log.retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(text("120000"))),
            ]),
    ]);
    assert_eq!(client.call(&set_default, 1).responses[0].error_code, 0);
    client.create_topic("inherits", 1);
    let topic = describe(&mut client, TOPIC, "inherits");
    assert_eq!(
        config_value(&topic, "retention.ms"),
        ("120000".into(), SOURCE_DYNAMIC_DEFAULT)
    );

    let read_only = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(text("1"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(text("listeners"))
                    .with_config_operation(0)
                    .with_value(Some(text("PLAINTEXT://x:1"))),
            ]),
    ]);
    assert_eq!(client.call(&read_only, 1).responses[0].error_code, 40);
}

#[test]
fn create_partitions_grows_a_topic() {
    let (dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("growing", 1);
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name("growing"))
            .with_count(3)]);
    assert_eq!(client.call(&request, 3).results[0].error_code, 0);
    assert!(dir.path().join("growing-2").exists());
    let response = client.produce("growing", 2, &["new partition"]);
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    let shrink =
        CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name("growing"))
            .with_count(2)]);
    assert_eq!(
        client.call(&shrink, 3).results[0].error_code,
        37,
        "INVALID_PARTITIONS"
    );
}

#[test]
fn delete_records_moves_the_log_start_offset() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("trimmed", 1);
    for round in 0..4 {
        client.produce("trimmed", 0, &[&format!("r{round}")]);
    }
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name("trimmed"))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(2)])]);
    let response = client.call(&request, 2);
    let partition = &response.topics[0].partitions[0];
    assert_eq!((partition.error_code, partition.low_watermark), (0, 2));
    let fetched = client.fetch("trimmed", 0, 0);
    assert_eq!(
        fetched.responses[0].partitions[0].error_code, 1,
        "OFFSET_OUT_OF_RANGE below start"
    );
    let fetched = client.fetch("trimmed", 0, 2);
    let data = &fetched.responses[0].partitions[0];
    assert_eq!(data.log_start_offset, 2);
    let values = decode_values(data.records.as_ref().unwrap());
    assert_eq!(values.first().map(|(offset, _)| *offset), Some(2));
}

#[test]
fn describe_cluster_and_log_dirs() {
    let (dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("sized", 1);
    client.produce("sized", 0, &["some bytes"]);
    let cluster = client.call(&DescribeClusterRequest::default().with_endpoint_type(1), 1);
    assert_eq!(cluster.error_code, 0);
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].port, i32::from(broker.port));
    let metadata = client.call(&MetadataRequest::default().with_topics(None), 9);
    assert_eq!(Some(cluster.cluster_id.clone()), metadata.cluster_id);

    let dirs = client.call(&DescribeLogDirsRequest::default().with_topics(None), 4);
    let result = &dirs.results[0];
    assert_eq!(result.error_code, 0);
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(result.log_dir.as_str(), canonical.display().to_string());
    let sized = result
        .topics
        .iter()
        .find(|t| t.name.0.as_str() == "sized")
        .unwrap();
    assert!(sized.partitions[0].partition_size > 0);
}

/// Every advertised version of the admin APIs encodes and decodes.
#[test]
fn every_advertised_admin_version_round_trips() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    client.create_topic("matrix", 1);
    client.produce("matrix", 0, &["a", "b"]);
    for version in 1..=4 {
        let response = describe_at(&mut client, TOPIC, "matrix", version);
        assert_eq!(
            response.results[0].error_code, 0,
            "DescribeConfigs v{version}"
        );
        assert!(!response.results[0].configs.is_empty());
        let response = describe_at(&mut client, BROKER, "1", version);
        assert_eq!(
            response.results[0].error_code, 0,
            "DescribeConfigs broker v{version}"
        );
    }
    for version in 0..=2 {
        let legacy = AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(text("matrix"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(text("retention.ms"))
                    .with_value(Some(text("100000")))]),
        ]);
        assert_eq!(
            client.call(&legacy, version).responses[0].error_code,
            0,
            "AlterConfigs v{version}"
        );
    }
    for version in 0..=1 {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(text("matrix"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(text("retention.ms"))
                        .with_config_operation(0)
                        .with_value(Some(text("200000"))),
                ]),
        ]);
        let response = client.call(&request, version);
        assert_eq!(
            response.responses[0].error_code, 0,
            "IncrementalAlterConfigs v{version}"
        );
    }
    for version in 0..=2 {
        let request =
            DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name("matrix"))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(0)])]);
        let response = client.call(&request, version);
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "DeleteRecords v{version}"
        );
    }
    for version in 0..=2 {
        let response = client.call(
            &DescribeClusterRequest::default().with_endpoint_type(1),
            version,
        );
        assert_eq!(response.error_code, 0, "DescribeCluster v{version}");
    }
    for version in 1..=4 {
        let response = client.call(
            &DescribeLogDirsRequest::default().with_topics(None),
            version,
        );
        assert_eq!(
            response.results[0].error_code, 0,
            "DescribeLogDirs v{version}"
        );
    }
    for version in 0..=3 {
        let name = format!("grow-v{version}");
        client.create_topic(&name, 1);
        let request =
            CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(&name))
                .with_count(2)
                .with_assignments(None)]);
        assert_eq!(
            client.call(&request, version).results[0].error_code,
            0,
            "CreatePartitions v{version}"
        );
    }
    for version in 1..=6 {
        let name = format!("gone-v{version}");
        client.create_topic(&name, 1);
        let request = if version >= 6 {
            kafka_protocol::messages::DeleteTopicsRequest::default().with_topics(vec![
                kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(topic_name(&name))),
            ])
        } else {
            kafka_protocol::messages::DeleteTopicsRequest::default()
                .with_topic_names(vec![topic_name(&name)])
        };
        let response = client.call(&request, version);
        assert_eq!(
            response.responses[0].error_code, 0,
            "DeleteTopics v{version}"
        );
    }
}

fn describe_at(
    client: &mut TestClient,
    resource_type: i8,
    name: &str,
    version: i16,
) -> DescribeConfigsResponse {
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(text(name))
            .with_configuration_keys(None)])
        .with_include_synonyms(version >= 1)
        .with_include_documentation(version >= 3);
    client.call(&request, version)
}

#[test]
fn kafka_broker_names_for_topic_defaults_flow_to_topics() {
    let (_dir, broker) = start(&[
        "--set",
        "log.retention.hours=2",
        "--set",
        "log.cleanup.policy=compact",
    ]);
    let mut client = broker.connect();
    client.create_topic("defaults", 1);
    let described = describe(&mut client, TOPIC, "defaults");
    assert_eq!(
        config_value(&described, "retention.ms"),
        ("7200000".into(), SOURCE_STATIC)
    );
    assert_eq!(
        config_value(&described, "cleanup.policy"),
        ("compact".into(), SOURCE_STATIC)
    );
}

/// The maintenance loop applies retention every `log.retention.check.interval.ms`.
#[test]
fn retention_deletes_old_segments_in_the_background() {
    let (_dir, broker) = start(&["--set", "log.retention.check.interval.ms=100"]);
    let mut client = broker.connect();
    let create = create_topic_request(
        "expiring",
        1,
        1,
        &[("retention.ms", "1000"), ("segment.bytes", "1048576")],
    );
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);
    let value = "r".repeat(400_000);
    for _ in 0..6 {
        // Timestamps from 2023: far older than retention.ms.
        client.produce("expiring", 0, &[value.as_str()]);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let fetched = client.fetch("expiring", 0, 5);
        let start = fetched.responses[0].partitions[0].log_start_offset;
        if start > 0 {
            assert!(start <= 5, "the active segment is kept: {start}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "retention never ran");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

const GROUP: i8 = 32;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_GROUP: i8 = 8;

fn incremental(
    client: &mut TestClient,
    resource_type: i8,
    name: &str,
    operations: &[(&str, i8, Option<&str>)],
) -> (i16, String) {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(text(name))
            .with_configs(
                operations
                    .iter()
                    .map(|(config, operation, value)| {
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(text(config))
                            .with_config_operation(*operation)
                            .with_value(value.map(text))
                    })
                    .collect(),
            ),
    ]);
    let response = client.call(&request, 1);
    let result = &response.responses[0];
    (
        result.error_code,
        result
            .error_message
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    )
}

/// APPEND/SUBTRACT on a LIST broker config start from the broker's own value, else the
/// default (Kafka's KRaft semantics), and reach topics that default from it.
#[test]
fn append_and_subtract_on_list_broker_configs() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    let append = [("log.cleanup.policy", 2, Some("compact"))];
    assert_eq!(incremental(&mut client, BROKER, "1", &append).0, 0);
    let described = describe(&mut client, BROKER, "1");
    assert_eq!(
        config_value(&described, "log.cleanup.policy"),
        ("delete,compact".into(), SOURCE_DYNAMIC_BROKER)
    );
    client.create_topic("follows-broker", 1);
    assert_eq!(
        config_value(
            &describe(&mut client, TOPIC, "follows-broker"),
            "cleanup.policy"
        ),
        ("delete,compact".into(), SOURCE_DYNAMIC_BROKER)
    );
    let subtract = [("log.cleanup.policy", 3, Some("compact"))];
    assert_eq!(incremental(&mut client, BROKER, "1", &subtract).0, 0);
    assert_eq!(
        config_value(&describe(&mut client, BROKER, "1"), "log.cleanup.policy"),
        ("delete".into(), SOURCE_DYNAMIC_BROKER)
    );
    // Not a LIST: refused as Kafka (KRaft) does.
    let (code, message) = incremental(
        &mut client,
        BROKER,
        "1",
        &[("log.retention.ms", 2, Some("1"))],
    );
    assert_eq!(code, 40);
    assert_eq!(
        message,
        "Can't APPEND to key log.retention.ms because its type is not LIST."
    );
    // Topic list configs too, from the topic default.
    let topic_append = [("cleanup.policy", 2, Some("compact"))];
    assert_eq!(
        incremental(&mut client, TOPIC, "follows-broker", &topic_append).0,
        0
    );
    assert_eq!(
        config_value(
            &describe(&mut client, TOPIC, "follows-broker"),
            "cleanup.policy"
        ),
        ("delete,compact".into(), SOURCE_TOPIC)
    );
}

/// Kafka's per-broker SASL settings are accepted, validated and stored (no effect: there is no
/// SASL listener, as on a PLAINTEXT-only Kafka broker); settings Kafka could change at
/// runtime but Quill cannot apply are refused with a message saying so.
#[test]
fn dynamic_broker_settings_as_kafka_accepts_them() {
    let (_dir, broker) = start(&[]);
    let mut client = broker.connect();
    let relogin = [("sasl.kerberos.min.time.before.relogin", 0, Some("58000"))];
    assert_eq!(
        incremental(&mut client, BROKER, "1", &relogin),
        (0, String::new())
    );
    let described = describe(&mut client, BROKER, "1");
    assert_eq!(
        config_value(&described, "sasl.kerberos.min.time.before.relogin"),
        ("58000".into(), SOURCE_DYNAMIC_BROKER)
    );
    assert_eq!(
        config_value(&described, "sasl.login.refresh.buffer.seconds"),
        ("300".into(), SOURCE_DEFAULT)
    );
    // Broker defaults of topic configs are described even when not set.
    assert_eq!(
        config_value(&described, "log.segment.delete.delay.ms"),
        ("60000".into(), SOURCE_DEFAULT)
    );
    assert_eq!(
        config_value(&described, "log.preallocate"),
        ("false".into(), SOURCE_DEFAULT)
    );
    // Per broker only, with Kafka's types and ranges.
    let (code, message) = incremental(&mut client, BROKER, "", &relogin);
    assert_eq!(code, 40);
    assert!(message.contains("broker id must be specified"), "{message}");
    let bad = [("sasl.login.refresh.window.factor", 0, Some("0.1"))];
    assert_eq!(incremental(&mut client, BROKER, "1", &bad).0, 40);
    let append = [("sasl.enabled.mechanisms", 2, Some("PLAIN"))];
    assert_eq!(incremental(&mut client, BROKER, "1", &append).0, 0);
    assert_eq!(
        config_value(
            &describe(&mut client, BROKER, "1"),
            "sasl.enabled.mechanisms"
        ),
        ("GSSAPI,PLAIN".into(), SOURCE_DYNAMIC_BROKER)
    );

    // Kafka's thread pool sizes change at runtime; Quill's maintenance pool does too
    // (librdkafka's 0081_admin sets it).
    let threads = [("background.threads", 0, Some("9"))];
    assert_eq!(incremental(&mut client, BROKER, "1", &threads).0, 0);
    assert_eq!(
        config_value(&describe(&mut client, BROKER, "1"), "background.threads"),
        ("9".into(), SOURCE_DYNAMIC_BROKER)
    );
    let none = [("background.threads", 0, Some("0"))];
    assert_eq!(incremental(&mut client, BROKER, "1", &none).0, 40);
    let (code, message) = incremental(
        &mut client,
        BROKER,
        "1",
        &[("num.io.threads", 0, Some("9"))],
    );
    assert_eq!(code, 40);
    assert_eq!(
        message,
        "Quill does not support the broker config num.io.threads yet"
    );
    let (code, message) = incremental(
        &mut client,
        BROKER,
        "1",
        &[("num.partitions", 0, Some("3"))],
    );
    assert_eq!(code, 40);
    assert!(
        message.contains("Quill reads num.partitions only at start-up"),
        "{message}"
    );
}

/// GROUP config resources (type 32): all of Kafka 4.0's group configs are described, set and
/// deleted through metadata records, validated as Kafka validates them.
#[test]
fn group_configs_are_described_and_altered() {
    let (_dir, mut broker) = start(&[]);
    let mut client = broker.connect();
    let described = describe(&mut client, GROUP, "any-group");
    assert_eq!(described.results[0].error_code, 0);
    let names: Vec<String> = described.results[0]
        .configs
        .iter()
        .map(|entry| entry.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "consumer.heartbeat.interval.ms",
            "consumer.session.timeout.ms",
            "share.auto.offset.reset",
            "share.heartbeat.interval.ms",
            "share.record.lock.duration.ms",
            "share.session.timeout.ms"
        ]
    );
    assert_eq!(
        config_value(&described, "consumer.session.timeout.ms"),
        ("45000".into(), SOURCE_DEFAULT)
    );

    let set = [
        ("consumer.session.timeout.ms", 0, Some("50000")),
        ("consumer.heartbeat.interval.ms", 0, Some("6000")),
    ];
    assert_eq!(
        incremental(&mut client, GROUP, "any-group", &set),
        (0, String::new())
    );
    let described = describe(&mut client, GROUP, "any-group");
    assert_eq!(
        config_value(&described, "consumer.session.timeout.ms"),
        ("50000".into(), SOURCE_GROUP)
    );
    let entry = described.results[0]
        .configs
        .iter()
        .find(|entry| entry.name.as_str() == "consumer.session.timeout.ms")
        .unwrap();
    assert_eq!(entry.synonyms.len(), 2);
    assert_eq!(
        entry.synonyms[1].name.as_str(),
        "group.consumer.session.timeout.ms"
    );

    // Kafka's rules: the broker's bounds, and the session above the heartbeat.
    let (code, message) = incremental(
        &mut client,
        GROUP,
        "any-group",
        &[("consumer.session.timeout.ms", 0, Some("1000"))],
    );
    assert_eq!(code, 40);
    assert!(
        message.contains("group.consumer.min.session.timeout.ms"),
        "{message}"
    );
    let (code, message) = incremental(&mut client, GROUP, "any-group", &[("nope", 0, Some("1"))]);
    assert_eq!(
        (code, message.as_str()),
        (40, "Unknown group config name: nope")
    );
    let (code, _) = incremental(
        &mut client,
        GROUP,
        "any-group",
        &[("share.auto.offset.reset", 2, Some("earliest"))],
    );
    assert_eq!(code, 40, "no LIST group configs: APPEND is refused");
    assert_eq!(describe(&mut client, GROUP, "").results[0].error_code, 42);

    // Stored in the metadata log: survives a restart; DELETE goes back to the default.
    assert_eq!(broker.stop_with("TERM"), Some(0));
    broker.restart();
    let mut client = broker.connect();
    assert_eq!(
        config_value(
            &describe(&mut client, GROUP, "any-group"),
            "consumer.heartbeat.interval.ms"
        ),
        ("6000".into(), SOURCE_GROUP)
    );
    let delete = [("consumer.heartbeat.interval.ms", 1, None)];
    assert_eq!(incremental(&mut client, GROUP, "any-group", &delete).0, 0);
    assert_eq!(
        config_value(
            &describe(&mut client, GROUP, "any-group"),
            "consumer.heartbeat.interval.ms"
        ),
        ("5000".into(), SOURCE_DEFAULT)
    );
}

/// An idempotent (non-transactional) batch of one record stamped `timestamp_ms`.
fn idempotent_batch(producer_id: i64, timestamp_ms: i64) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch: 0,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: timestamp_ms,
        key: None,
        value: Some(bytes::Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut buffer = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buffer.freeze()
}

/// `producer.id.expiration.ms` changes at runtime, as in Kafka: the next maintenance pass
/// forgets idle producers under the new value.
#[test]
fn producer_id_expiration_ms_changes_at_runtime() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{DescribeProducersRequest, InitProducerIdRequest, ProducerId};

    let (_dir, broker) = start(&["--set", "log.retention.check.interval.ms=50"]);
    let mut client = broker.connect();
    client.create_topic("idempotent", 1);
    let init = client.call(
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
        4,
    );
    assert_eq!(init.error_code, 0);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let batch = idempotent_batch(init.producer_id.0, now_ms);
    let produced = client.call(&produce_request("idempotent", 0, batch, -1), 7);
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let producers = |client: &mut TestClient| {
        let response = client.call(
            &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
                .with_name(topic_name("idempotent"))
                .with_partition_indexes(vec![0])]),
            0,
        );
        response.topics[0].partitions[0].active_producers.len()
    };
    assert_eq!(producers(&mut client), 1, "kept under the default (1 day)");

    let expire_fast = [("producer.id.expiration.ms", 0, Some("1"))];
    assert_eq!(incremental(&mut client, BROKER, "", &expire_fast).0, 0);
    assert_eq!(
        config_value(
            &describe(&mut client, BROKER, "1"),
            "producer.id.expiration.ms"
        ),
        ("1".into(), SOURCE_DYNAMIC_DEFAULT)
    );
    common::wait_until(
        "the producer to expire",
        std::time::Duration::from_secs(20),
        || producers(&mut client) == 0,
    );
    let zero = [("producer.id.expiration.ms", 0, Some("0"))];
    assert_eq!(incremental(&mut client, BROKER, "1", &zero).0, 40);
}
