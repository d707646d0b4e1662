//! The guard must accept exactly what the decoder accepts structurally: for every API and
//! version Quill advertises, a populated request encoded by kafka-protocol is walked to the same
//! end position the decoder reaches; impossible counts are rejected; mutated bodies that pass
//! the guard decode without aborting.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::*;
use crate::protocol::SUPPORTED_APIS;

fn name(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic(text: &str) -> TopicName {
    TopicName(name(text))
}

/// Encodes `request` at `version` (None if this version cannot carry a field that is set),
/// then checks guard and decoder agree on where the body ends.
fn check_agreement<T: Encodable + Decodable>(api_key: ApiKey, version: i16, request: &T) -> bool {
    let mut buffer = BytesMut::new();
    if request.encode(&mut buffer, version).is_err() {
        return false;
    }
    let body = buffer.freeze();
    let guard_end = consumed(api_key, version, &body).unwrap_or_else(|error| {
        panic!("{api_key:?} v{version}: guard rejected a valid body: {error}")
    });
    let mut decoder_input = body.clone();
    T::decode(&mut decoder_input, version)
        .unwrap_or_else(|error| panic!("{api_key:?} v{version}: decode failed: {error}"));
    let decoder_end = body.len() - decoder_input.len();
    assert_eq!(guard_end, decoder_end, "{api_key:?} v{version}");
    true
}

/// Checks the default request and a populated one (every array non-empty); returns whether the
/// populated one was encodable at this version.
fn check_api(api_key: ApiKey, version: i16) -> bool {
    let advertised = SUPPORTED_APIS
        .iter()
        .any(|api| api.key == api_key && (api.min_version..=api.max_version).contains(&version));
    macro_rules! both {
        ($default:expr, $populated:expr) => {{
            if !check_agreement(api_key, version, &$default) {
                // Versions beyond what we advertise may need fields a default lacks.
                assert!(
                    !advertised,
                    "{api_key:?} v{version}: default request does not encode"
                );
                return false;
            }
            check_agreement(api_key, version, &$populated)
        }};
    }
    match api_key {
        ApiKey::Produce => both!(
            ProduceRequest::default(),
            ProduceRequest::default().with_topic_data(vec![TopicProduceData::default()
                .with_name(topic("t"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_records(Some(Bytes::from_static(b"records")))])])
        ),
        ApiKey::Fetch => {
            let partitions = vec![FetchPartition::default().with_fetch_offset(5)];
            let by_name = FetchTopic::default()
                .with_topic(topic("t"))
                .with_partitions(partitions.clone());
            let by_id = FetchTopic::default()
                .with_topic_id(quill_meta::Uuid::from_u128(7))
                .with_partitions(partitions);
            let topics = if version >= 13 {
                vec![by_id]
            } else {
                vec![by_name]
            };
            let forgotten = if version >= 13 {
                ForgottenTopic::default().with_topic_id(quill_meta::Uuid::from_u128(8))
            } else {
                ForgottenTopic::default().with_topic(topic("f"))
            }
            .with_partitions(vec![1, 2]);
            let mut request = FetchRequest::default().with_topics(topics);
            if version >= 7 {
                request = request.with_forgotten_topics_data(vec![forgotten]);
            }
            if version >= 11 {
                request = request.with_rack_id(name("rack"));
            }
            if version >= 12 {
                request = request.with_cluster_id(Some(name("cluster")));
            }
            both!(FetchRequest::default(), request)
        }
        ApiKey::ListOffsets => both!(
            ListOffsetsRequest::default(),
            ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)])])
        ),
        ApiKey::OffsetForLeaderEpoch => both!(
            OffsetForLeaderEpochRequest::default(),
            OffsetForLeaderEpochRequest::default().with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(topic("t"))
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(1)
                        .with_current_leader_epoch(2)
                        .with_leader_epoch(1)])
            ])
        ),
        ApiKey::Metadata => both!(
            MetadataRequest::default(),
            MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic("t")))
            ]))
        ),
        ApiKey::ApiVersions => both!(
            ApiVersionsRequest::default(),
            ApiVersionsRequest::default()
                .with_client_software_name(name("quill"))
                .with_client_software_version(name("1.0"))
        ),
        ApiKey::CreateTopics => both!(
            CreateTopicsRequest::default(),
            CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                .with_name(topic("t"))
                .with_assignments(vec![
                    CreatableReplicaAssignment::default().with_broker_ids(vec![BrokerId(1)])
                ])
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(name("retention.ms"))
                    .with_value(Some(name("1")))])])
        ),
        ApiKey::DeleteTopics => {
            let request = if version >= 6 {
                DeleteTopicsRequest::default()
                    .with_topics(vec![DeleteTopicState::default().with_name(Some(topic("t")))])
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![topic("t")])
            };
            both!(DeleteTopicsRequest::default(), request)
        }
        ApiKey::DeleteRecords => both!(
            DeleteRecordsRequest::default(),
            DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![DeleteRecordsPartition::default().with_offset(3)])])
        ),
        ApiKey::DescribeConfigs => both!(
            DescribeConfigsRequest::default(),
            DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_name(name("t"))
                    .with_configuration_keys(Some(vec![name("retention.ms")]))
            ])
        ),
        ApiKey::AlterConfigs => both!(
            AlterConfigsRequest::default(),
            AlterConfigsRequest::default().with_resources(vec![
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_name(name("t"))
                    .with_configs(vec![alter_configs_request::AlterableConfig::default()
                        .with_name(name("retention.ms"))
                        .with_value(Some(name("1")))])
            ])
        ),
        ApiKey::DescribeLogDirs => both!(
            DescribeLogDirsRequest::default(),
            DescribeLogDirsRequest::default().with_topics(Some(vec![
                DescribableLogDirTopic::default()
                    .with_topic(topic("t"))
                    .with_partitions(vec![0, 1])
            ]))
        ),
        ApiKey::CreatePartitions => both!(
            CreatePartitionsRequest::default(),
            CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic("t"))
                .with_count(3)
                .with_assignments(Some(vec![
                    CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1)])
                ]))])
        ),
        ApiKey::IncrementalAlterConfigs => both!(
            IncrementalAlterConfigsRequest::default(),
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_name(name("t"))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(name("retention.ms"))
                            .with_value(Some(name("1")))
                    ])
            ])
        ),
        ApiKey::DescribeQuorum => both!(
            DescribeQuorumRequest::default(),
            DescribeQuorumRequest::default().with_topics(vec![
                describe_quorum_request::TopicData::default()
                    .with_topic_name(topic("__cluster_metadata"))
                    .with_partitions(vec![
                        describe_quorum_request::PartitionData::default().with_partition_index(0)
                    ])
            ])
        ),
        ApiKey::DescribeCluster => both!(
            DescribeClusterRequest::default(),
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(true)
        ),
        ApiKey::DescribeTopicPartitions => both!(
            DescribeTopicPartitionsRequest::default(),
            DescribeTopicPartitionsRequest::default()
                .with_topics(vec![
                    describe_topic_partitions_request::TopicRequest::default()
                        .with_name(topic("t"))
                ])
                .with_cursor(Some(
                    describe_topic_partitions_request::Cursor::default()
                        .with_topic_name(topic("t"))
                        .with_partition_index(3)
                ))
        ),
        ApiKey::UpdateFeatures => both!(
            UpdateFeaturesRequest::default(),
            UpdateFeaturesRequest::default()
                .with_feature_updates(vec![update_features_request::FeatureUpdateKey::default()
                    .with_feature(name("metadata.version"))
                    .with_max_version_level(25)
                    .with_allow_downgrade(version == 0)
                    .with_upgrade_type(if version >= 1 { 2 } else { 1 })])
                .with_validate_only(version >= 1)
        ),
        ApiKey::FindCoordinator => both!(
            FindCoordinatorRequest::default(),
            if version >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![name("g")])
            } else {
                FindCoordinatorRequest::default().with_key(name("g"))
            }
        ),
        ApiKey::JoinGroup => both!(
            JoinGroupRequest::default(),
            JoinGroupRequest::default()
                .with_group_id(GroupId(name("g")))
                .with_protocol_type(name("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(name("range"))
                .with_metadata(Bytes::from_static(b"meta"))])
        ),
        ApiKey::SyncGroup => both!(
            SyncGroupRequest::default(),
            SyncGroupRequest::default()
                .with_group_id(GroupId(name("g")))
                .with_assignments(vec![
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(name("m"))
                        .with_assignment(Bytes::from_static(b"assignment"))
                ])
        ),
        ApiKey::Heartbeat => both!(
            HeartbeatRequest::default(),
            HeartbeatRequest::default().with_group_id(GroupId(name("g")))
        ),
        ApiKey::LeaveGroup => {
            let request = if version >= 3 {
                LeaveGroupRequest::default()
                    .with_group_id(GroupId(name("g")))
                    .with_members(vec![
                        leave_group_request::MemberIdentity::default().with_member_id(name("m"))
                    ])
            } else {
                LeaveGroupRequest::default().with_group_id(GroupId(name("g")))
            };
            both!(LeaveGroupRequest::default(), request)
        }
        ApiKey::OffsetCommit => both!(
            OffsetCommitRequest::default(),
            OffsetCommitRequest::default()
                .with_group_id(GroupId(name("g")))
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic("t"))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_committed_offset(5)
                                .with_committed_metadata(Some(name("meta")))
                        ])
                ])
        ),
        ApiKey::OffsetFetch => {
            let request = if version >= 8 {
                OffsetFetchRequest::default().with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(name("g")))
                        .with_topics(Some(vec![
                            offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(topic("t"))
                                .with_partition_indexes(vec![0, 1]),
                        ])),
                ])
            } else {
                OffsetFetchRequest::default()
                    .with_group_id(GroupId(name("g")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(topic("t"))
                            .with_partition_indexes(vec![0, 1]),
                    ]))
            };
            both!(OffsetFetchRequest::default(), request)
        }
        ApiKey::OffsetDelete => both!(
            OffsetDeleteRequest::default(),
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(name("g")))
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(topic("t"))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default()
                        ])
                ])
        ),
        ApiKey::ListGroups => both!(ListGroupsRequest::default(), ListGroupsRequest::default()),
        ApiKey::DescribeGroups => both!(
            DescribeGroupsRequest::default(),
            DescribeGroupsRequest::default().with_groups(vec![GroupId(name("g"))])
        ),
        ApiKey::DeleteGroups => both!(
            DeleteGroupsRequest::default(),
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(name("g"))])
        ),
        ApiKey::InitProducerId => both!(
            InitProducerIdRequest::default(),
            InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(name("tx"))))
                .with_transaction_timeout_ms(60_000)
        ),
        ApiKey::AddPartitionsToTxn => {
            let topics = vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![0, 1]),
            ];
            let populated = if version >= 4 {
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(TransactionalId(name("tx")))
                        .with_topics(topics),
                ])
            } else {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(name("tx")))
                    .with_v3_and_below_topics(topics)
            };
            both!(AddPartitionsToTxnRequest::default(), populated)
        }
        ApiKey::AddOffsetsToTxn => both!(
            AddOffsetsToTxnRequest::default(),
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(name("tx")))
                .with_group_id(GroupId(name("g")))
        ),
        ApiKey::EndTxn => both!(
            EndTxnRequest::default(),
            EndTxnRequest::default()
                .with_transactional_id(TransactionalId(name("tx")))
                .with_committed(true)
        ),
        ApiKey::TxnOffsetCommit => both!(
            TxnOffsetCommitRequest::default(),
            TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(name("tx")))
                .with_group_id(GroupId(name("g")))
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(topic("t"))
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_committed_offset(5)
                                .with_committed_metadata(Some(name("meta")))
                        ])
                ])
        ),
        ApiKey::WriteTxnMarkers => both!(
            WriteTxnMarkersRequest::default(),
            WriteTxnMarkersRequest::default().with_markers(vec![
                write_txn_markers_request::WritableTxnMarker::default().with_topics(vec![
                    write_txn_markers_request::WritableTxnMarkerTopic::default()
                        .with_name(topic("t"))
                        .with_partition_indexes(vec![0])
                ])
            ])
        ),
        ApiKey::DescribeTransactions => both!(
            DescribeTransactionsRequest::default(),
            DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(name("tx"))])
        ),
        ApiKey::ListTransactions => both!(
            ListTransactionsRequest::default(),
            ListTransactionsRequest::default()
                .with_state_filters(vec![name("Ongoing")])
                .with_producer_id_filters(vec![ProducerId(5)])
        ),
        ApiKey::DescribeProducers => both!(
            DescribeProducersRequest::default(),
            DescribeProducersRequest::default().with_topics(vec![
                describe_producers_request::TopicRequest::default()
                    .with_name(topic("t"))
                    .with_partition_indexes(vec![0])
            ])
        ),
        other => panic!("no test request for {other:?}"),
    }
}

#[test]
fn guard_and_decoder_agree_for_every_advertised_api_and_version() {
    let guarded = [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::OffsetForLeaderEpoch,
        ApiKey::Metadata,
        ApiKey::ApiVersions,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::DeleteRecords,
        ApiKey::DescribeConfigs,
        ApiKey::AlterConfigs,
        ApiKey::DescribeLogDirs,
        ApiKey::CreatePartitions,
        ApiKey::IncrementalAlterConfigs,
        ApiKey::DescribeCluster,
        ApiKey::DescribeTopicPartitions,
        ApiKey::DescribeQuorum,
        ApiKey::UpdateFeatures,
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::OffsetDelete,
        ApiKey::ListGroups,
        ApiKey::DescribeGroups,
        ApiKey::DeleteGroups,
        ApiKey::InitProducerId,
        ApiKey::AddPartitionsToTxn,
        ApiKey::AddOffsetsToTxn,
        ApiKey::EndTxn,
        ApiKey::TxnOffsetCommit,
        ApiKey::WriteTxnMarkers,
        ApiKey::DescribeTransactions,
        ApiKey::ListTransactions,
        ApiKey::DescribeProducers,
    ];
    for api in SUPPORTED_APIS {
        assert!(
            guarded.contains(&api.key),
            "{:?} is advertised but has no guard test",
            api.key
        );
    }
    for key in guarded {
        let codec = key.valid_versions();
        let mut populated_versions = 0;
        for version in codec.min..=codec.max {
            if check_api(key, version) {
                populated_versions += 1;
            }
        }
        assert!(
            populated_versions > 0,
            "{key:?}: no populated request encoded"
        );
    }
}

#[test]
fn impossible_array_counts_are_rejected_before_decoding() {
    // Metadata v1: topics array claiming i32::MAX entries in a 4-byte body.
    let body = [0x7f, 0xff, 0xff, 0xff];
    assert!(matches!(
        check(ApiKey::Metadata, 1, &body),
        Err(GuardError::ImpossibleCount { .. })
    ));
    // Fetch v12 (flexible): a compact array count of 2^28 in a tiny body.
    let mut body = vec![0u8; 4 + 4 + 4 + 4 + 1 + 4 + 4];
    body.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x01]);
    assert!(matches!(
        check(ApiKey::Fetch, 12, &body),
        Err(GuardError::ImpossibleCount { .. })
    ));
    assert_eq!(
        check(ApiKey::Metadata, 1, &[0, 0]),
        Err(GuardError::Truncated)
    );
}

/// Deterministic mutation fuzzing: whatever passes the guard must not abort the decoder.
#[test]
fn mutated_bodies_that_pass_the_guard_decode_safely() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds: Vec<(ApiKey, i16, Bytes)> = [
        (ApiKey::Metadata, 9_i16),
        (ApiKey::Fetch, 11),
        (ApiKey::Fetch, 15),
        (ApiKey::Produce, 9),
        (ApiKey::CreateTopics, 5),
    ]
    .into_iter()
    .map(|(key, version)| {
        let mut buffer = BytesMut::new();
        let populated = match key {
            ApiKey::Metadata => MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic("abc")))
                ]))
                .encode(&mut buffer, version),
            ApiKey::Fetch => FetchRequest::default()
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic("abc"))
                    .with_partitions(vec![FetchPartition::default()])])
                .encode(&mut buffer, version.min(12)),
            ApiKey::Produce => ProduceRequest::default()
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic("abc"))
                    .with_partition_data(vec![PartitionProduceData::default()])])
                .encode(&mut buffer, version),
            _ => CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default().with_name(topic("abc"))])
                .encode(&mut buffer, version),
        };
        populated.unwrap();
        (
            key,
            version.min(if key == ApiKey::Fetch { 12 } else { version }),
            buffer.freeze(),
        )
    })
    .collect();
    for (key, version, seed) in seeds {
        for _ in 0..2000 {
            let mut body = seed.to_vec();
            for _ in 0..(1 + next() % 4) {
                let index = (next() as usize) % body.len();
                body[index] = (next() & 0xff) as u8;
            }
            if check(key, version, &body).is_err() {
                continue;
            }
            let mut input = Bytes::from(body);
            let _ = match key {
                ApiKey::Metadata => MetadataRequest::decode(&mut input, version).map(|_| ()),
                ApiKey::Fetch => FetchRequest::decode(&mut input, version).map(|_| ()),
                ApiKey::Produce => ProduceRequest::decode(&mut input, version).map(|_| ()),
                _ => CreateTopicsRequest::decode(&mut input, version).map(|_| ()),
            };
        }
    }
}

/// The generated minimum sizes are what the shortest element really takes: a default element
/// (empty strings, arrays, bytes, no tagged fields) encodes to exactly that many bytes.
#[test]
fn minimum_element_sizes_match_the_shortest_encoding() {
    fn encoded_size<T: Encodable>(value: &T, version: i16) -> Option<usize> {
        let mut buffer = BytesMut::new();
        value.encode(&mut buffer, version).ok()?;
        Some(buffer.len())
    }
    for version in 4..=12 {
        assert_eq!(
            encoded_size(&FetchPartition::default(), version),
            Some(schema::fetch_request::min_bytes_fetch_partition(version)),
            "FetchPartition v{version}"
        );
        assert_eq!(
            encoded_size(&FetchTopic::default(), version),
            Some(schema::fetch_request::min_bytes_fetch_topic(version)),
            "FetchTopic v{version}"
        );
    }
    for version in 3..=11 {
        assert_eq!(
            encoded_size(&TopicProduceData::default(), version),
            Some(schema::produce_request::min_bytes_topic_produce_data(
                version
            )),
            "TopicProduceData v{version}"
        );
        assert_eq!(
            encoded_size(&PartitionProduceData::default(), version),
            Some(schema::produce_request::min_bytes_partition_produce_data(
                version
            )),
            "PartitionProduceData v{version}"
        );
    }
    for version in 2..=7 {
        assert_eq!(
            encoded_size(&CreatableTopicConfig::default(), version),
            Some(schema::create_topics_request::min_bytes_creatable_topic_config(version)),
            "CreatableTopicConfig v{version}"
        );
    }
}

/// A count is checked against the bytes its elements need, not one byte per element: 100
/// Fetch topics cannot fit in 100 bytes (each takes at least a name and a partition array).
#[test]
fn counts_are_bounded_by_the_elements_minimum_size() {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
    body.extend_from_slice(&0i32.to_be_bytes()); // max wait
    body.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    body.extend_from_slice(&0i32.to_be_bytes()); // max bytes (v3+)
    body.push(0); // isolation level (v4+)
    body.extend_from_slice(&100i32.to_be_bytes()); // topics: 100 declared
    body.extend_from_slice(&[0u8; 100]); // ... and 100 bytes follow
    assert_eq!(
        check(ApiKey::Fetch, 4, &body),
        Err(GuardError::ImpossibleCount {
            count: 100,
            min_element_bytes: schema::fetch_request::min_bytes_fetch_topic(4),
            remaining_bytes: 100,
        })
    );
}
