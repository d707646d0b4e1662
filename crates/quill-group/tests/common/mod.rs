//! Shared helpers for the coordinator's tests: a coordinator over a `MemoryStore`, request
//! builders, and a few multi-step flows (fresh join, a whole stable group).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quill_group::*;
use tokio::task::JoinHandle;

pub const GROUP: &str = "g";
pub const SESSION_TIMEOUT_MS: i32 = 10_000;
pub const REBALANCE_TIMEOUT_MS: i32 = 30_000;

pub struct Harness {
    pub coordinator: GroupCoordinator,
    pub store: MemoryStore,
}

pub async fn harness(config: GroupConfig) -> Harness {
    let store = MemoryStore::new();
    let coordinator = GroupCoordinator::new(config, Arc::new(store.clone()));
    coordinator.load_all_partitions().await.unwrap();
    Harness { coordinator, store }
}

pub async fn test_harness() -> Harness {
    harness(GroupConfig::for_tests()).await
}

pub fn protocols(entries: &[(&str, &[u8])]) -> Vec<JoinProtocol> {
    entries
        .iter()
        .map(|(name, metadata)| JoinProtocol {
            name: (*name).to_owned(),
            metadata: Bytes::copy_from_slice(metadata),
        })
        .collect()
}

pub fn join_request(group: &str, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.to_owned(),
        member_id: member_id.to_owned(),
        group_instance_id: None,
        client_id: "client".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        protocol_type: "consumer".to_owned(),
        protocols: protocols(&[("range", b"meta")]),
        session_timeout_ms: SESSION_TIMEOUT_MS,
        rebalance_timeout_ms: REBALANCE_TIMEOUT_MS,
        require_known_member_id: true,
        supports_skip_assignment: false,
    }
}

pub fn sync_request(group: &str, member_id: &str, generation_id: i32) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.to_owned(),
        generation_id,
        member_id: member_id.to_owned(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: Vec::new(),
    }
}

pub fn heartbeat(group: &str, member_id: &str, generation_id: i32) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: group.to_owned(),
        generation_id,
        member_id: member_id.to_owned(),
        group_instance_id: None,
    }
}

pub fn spawn_join(
    coordinator: &GroupCoordinator,
    request: JoinGroupRequest,
) -> JoinHandle<JoinGroupResponse> {
    let coordinator = coordinator.clone();
    tokio::spawn(async move { coordinator.join_group(request).await })
}

pub fn spawn_sync(
    coordinator: &GroupCoordinator,
    request: SyncGroupRequest,
) -> JoinHandle<SyncGroupResponse> {
    let coordinator = coordinator.clone();
    tokio::spawn(async move { coordinator.sync_group(request).await })
}

/// Lets spawned tasks run (under paused time, sleeping auto-advances once everything is idle).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// The KIP-394 first step: an empty member id gets MEMBER_ID_REQUIRED and an id.
pub async fn member_id_for(coordinator: &GroupCoordinator, request: &JoinGroupRequest) -> String {
    let mut first = request.clone();
    first.member_id = String::new();
    let response = coordinator.join_group(first).await;
    assert_eq!(response.error, Some(GroupError::MemberIdRequired));
    assert!(response
        .member_id
        .starts_with(&format!("{}-", request.client_id)));
    response.member_id
}

pub fn assignment_for(member_id: &str) -> Bytes {
    Bytes::from(format!("assignment-of-{member_id}"))
}

/// Joins `count` dynamic members concurrently and completes the sync; returns the member ids
/// (leader first) and the generation.
pub async fn stable_group(
    coordinator: &GroupCoordinator,
    group: &str,
    count: usize,
) -> (Vec<String>, i32) {
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(member_id_for(coordinator, &join_request(group, "")).await);
    }
    let joins: Vec<_> = ids
        .iter()
        .map(|id| spawn_join(coordinator, join_request(group, id)))
        .collect();
    let mut responses = Vec::new();
    for join in joins {
        responses.push(join.await.unwrap());
    }
    complete_sync(coordinator, group, responses).await
}

/// Given every member's JoinGroup response, syncs them all (the leader assigning
/// `assignment_for(member)`) and returns the ids (leader first) and generation.
pub async fn complete_sync(
    coordinator: &GroupCoordinator,
    group: &str,
    responses: Vec<JoinGroupResponse>,
) -> (Vec<String>, i32) {
    let generation = responses[0].generation_id;
    for response in &responses {
        assert_eq!(response.error, None, "{response:?}");
        assert_eq!(response.generation_id, generation);
    }
    let leader = responses
        .iter()
        .find(|r| r.member_id == r.leader)
        .expect("one member leads");
    let mut ids = vec![leader.member_id.clone()];
    ids.extend(
        responses
            .iter()
            .filter(|r| r.member_id != leader.member_id)
            .map(|r| r.member_id.clone()),
    );
    let followers: Vec<_> = ids[1..]
        .iter()
        .map(|id| spawn_sync(coordinator, sync_request(group, id, generation)))
        .collect();
    let mut leader_sync = sync_request(group, &ids[0], generation);
    leader_sync.assignments = leader
        .members
        .iter()
        .map(|m| (m.member_id.clone(), assignment_for(&m.member_id)))
        .collect();
    let response = coordinator.sync_group(leader_sync).await;
    assert_eq!(response.error, None);
    assert_eq!(response.assignment, assignment_for(&ids[0]));
    for (follower, id) in followers.into_iter().zip(&ids[1..]) {
        let response = follower.await.unwrap();
        assert_eq!(response.error, None);
        assert_eq!(response.assignment, assignment_for(id));
    }
    (ids, generation)
}

pub fn state(coordinator: &GroupCoordinator, group: &str) -> GroupState {
    coordinator.describe_group(group).state
}

pub fn commit(
    group: &str,
    member_id: &str,
    generation_id: i32,
    entries: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.to_owned(),
        generation_id,
        member_id: member_id.to_owned(),
        group_instance_id: None,
        retention_time_ms: None,
        partitions: entries
            .iter()
            .map(|(topic, partition, offset)| PartitionCommit {
                topic: (*topic).to_owned(),
                partition: *partition,
                offset: *offset,
                leader_epoch: 3,
                metadata: Some(format!("meta-{offset}")),
            })
            .collect(),
    }
}

pub fn all_ok(results: &[PartitionResult]) -> bool {
    results.iter().all(|r| r.error.is_none())
}
