//! JoinGroup / SyncGroup / Heartbeat / LeaveGroup through the public API, under tokio's paused
//! clock so session, rebalance and initial-delay timeouts run instantly and deterministically.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use quill_group::*;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn fresh_member_handshake_join_and_sync() {
    let h = harness(GroupConfig::default()).await;
    let c = &h.coordinator;
    let started = Instant::now();
    let id = member_id_for(c, &join_request(GROUP, "")).await;
    assert_eq!(
        state(c, GROUP),
        GroupState::Empty,
        "a pending member is not a member yet"
    );
    let response = c.join_group(join_request(GROUP, &id)).await;
    // Only the default initial delay (250 ms) separates a lone consumer from its generation.
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(response.error, None);
    assert_eq!(response.generation_id, 1);
    assert_eq!(response.leader, id);
    assert_eq!(response.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(response.protocol_name.as_deref(), Some("range"));
    assert_eq!(response.members.len(), 1);
    assert_eq!(response.members[0].metadata, Bytes::from_static(b"meta"));
    assert_eq!(state(c, GROUP), GroupState::CompletingRebalance);

    let mut sync = sync_request(GROUP, &id, 1);
    sync.protocol_type = Some("consumer".into());
    sync.protocol_name = Some("range".into());
    sync.assignments = vec![(id.clone(), Bytes::from_static(&[0, 1, 2, 255]))];
    let synced = c.sync_group(sync).await;
    assert_eq!(synced.error, None);
    assert_eq!(synced.assignment, Bytes::from_static(&[0, 1, 2, 255]));
    assert_eq!(state(c, GROUP), GroupState::Stable);
    assert_eq!(c.heartbeat(heartbeat(GROUP, &id, 1)), Ok(()));
    // The group was stored once stable: one GroupMetadata record in the group's partition.
    assert_eq!(h.store.records(c.partition_for(GROUP)).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn pre_v4_join_gets_an_id_without_the_handshake() {
    let h = test_harness().await;
    let mut request = join_request(GROUP, "");
    request.require_known_member_id = false;
    request.client_id = "old-client".into();
    let response = h.coordinator.join_group(request).await;
    assert_eq!(response.error, None);
    assert!(response.member_id.starts_with("old-client-"));
    assert_eq!(response.generation_id, 1);
}

#[tokio::test(start_paused = true)]
async fn initial_delay_waits_and_extends_for_members_arriving_together() {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 3000,
        ..GroupConfig::for_tests()
    };
    let h = harness(config).await;
    let c = &h.coordinator;
    let a = member_id_for(c, &join_request(GROUP, "")).await;
    let b = member_id_for(c, &join_request(GROUP, "")).await;
    let started = Instant::now();
    let join_a = spawn_join(c, join_request(GROUP, &a));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    let join_b = spawn_join(c, join_request(GROUP, &b));
    let (ra, rb) = (join_a.await.unwrap(), join_b.await.unwrap());
    // b arrived within the first delay, so the group waited one more delay: 6 s in total.
    assert_eq!(started.elapsed(), Duration::from_millis(6000));
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.leader, a);
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty(), "followers get no member list");
}

#[tokio::test(start_paused = true)]
async fn second_member_triggers_rebalance_and_followers_wait_for_the_leader() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 1).await;
    let a = ids[0].clone();
    let b = member_id_for(c, &join_request(GROUP, "")).await;
    let join_b = spawn_join(c, join_request(GROUP, &b));
    settle().await;
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    assert!(
        !join_b.is_finished(),
        "the rebalance waits for the known member a"
    );
    assert_eq!(
        c.heartbeat(heartbeat(GROUP, &a, generation)),
        Err(GroupError::RebalanceInProgress)
    );
    let mut rejoin = join_request(GROUP, &a);
    rejoin.protocols = protocols(&[("range", b"a-meta")]);
    let ra = c.join_group(rejoin).await;
    let rb = join_b.await.unwrap();
    assert_eq!(ra.generation_id, generation + 1);
    assert_eq!(ra.leader, a, "the leader stays the leader");
    let metadata: Vec<(String, Bytes)> = ra
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.metadata.clone()))
        .collect();
    assert_eq!(
        metadata,
        vec![
            (a.clone(), Bytes::from_static(b"a-meta")),
            (b.clone(), Bytes::from_static(b"meta"))
        ]
    );
    // b syncs first and waits; a's assignment then reaches it byte for byte.
    let sync_b = spawn_sync(c, sync_request(GROUP, &b, ra.generation_id));
    settle().await;
    assert!(!sync_b.is_finished());
    let mut leader_sync = sync_request(GROUP, &a, ra.generation_id);
    leader_sync.assignments = vec![
        (b.clone(), Bytes::from_static(b"\x00\x01b")),
        (a.clone(), Bytes::from_static(b"a")),
    ];
    assert_eq!(
        c.sync_group(leader_sync).await.assignment,
        Bytes::from_static(b"a")
    );
    assert_eq!(
        sync_b.await.unwrap().assignment,
        Bytes::from_static(b"\x00\x01b")
    );
    assert_eq!(rb.generation_id, ra.generation_id);
    assert_eq!(state(c, GROUP), GroupState::Stable);
}

#[tokio::test(start_paused = true)]
async fn members_that_do_not_rejoin_are_evicted_after_the_rebalance_timeout() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 2).await;
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let started = Instant::now();
    // a rejoins (a leader's JoinGroup forces a rebalance); b keeps heartbeating but never rejoins.
    let join_a = spawn_join(c, join_request(GROUP, &a));
    settle().await;
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    while !join_a.is_finished() {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        let _ = c.heartbeat(heartbeat(GROUP, &b, generation));
    }
    let ra = join_a.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(REBALANCE_TIMEOUT_MS as u64));
    assert!(started.elapsed() <= Duration::from_millis(REBALANCE_TIMEOUT_MS as u64 + 3000));
    assert_eq!(ra.generation_id, generation + 1);
    assert_eq!(ra.members.len(), 1);
    assert_eq!(
        c.heartbeat(heartbeat(GROUP, &b, generation)),
        Err(GroupError::UnknownMemberId)
    );
}

#[tokio::test(start_paused = true)]
async fn session_timeout_evicts_a_silent_member_and_rebalances_the_rest() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 2).await;
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let started = Instant::now();
    // a heartbeats every 3 s; b is silent.
    loop {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        match c.heartbeat(heartbeat(GROUP, &a, generation)) {
            Ok(()) => continue,
            Err(error) => {
                assert_eq!(error, GroupError::RebalanceInProgress);
                break;
            }
        }
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(SESSION_TIMEOUT_MS as u64)
            && waited <= Duration::from_millis(13_000)
    );
    let ra = c.join_group(join_request(GROUP, &a)).await;
    assert_eq!(ra.generation_id, generation + 1);
    assert_eq!(ra.members.len(), 1);
    let described = c.describe_group(GROUP);
    assert!(described.members.iter().all(|m| m.member_id != b));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_member_alive_beyond_its_session_timeout() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 1).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert_eq!(c.heartbeat(heartbeat(GROUP, &ids[0], generation)), Ok(()));
    }
    assert_eq!(state(c, GROUP), GroupState::Stable);
}

#[tokio::test(start_paused = true)]
async fn last_member_leaving_empties_the_group() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 1).await;
    let response = c.leave_group(
        GROUP,
        vec![LeavingMember {
            member_id: ids[0].clone(),
            group_instance_id: None,
        }],
    );
    assert_eq!(response.error, None);
    assert_eq!(response.members[0].error, None);
    settle().await;
    let described = c.describe_group(GROUP);
    assert_eq!(described.state, GroupState::Empty);
    assert!(described.members.is_empty());
    // Stable → PreparingRebalance → Empty bumps the generation, as in Kafka.
    assert_eq!(
        c.heartbeat(heartbeat(GROUP, &ids[0], generation)),
        Err(GroupError::UnknownMemberId)
    );
}

#[tokio::test(start_paused = true)]
async fn leave_group_batch_by_member_and_instance_id() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let mut static_join = join_request(GROUP, "");
    static_join.group_instance_id = Some("instance-1".into());
    let a = member_id_for(c, &join_request(GROUP, "")).await;
    let join_a = spawn_join(c, join_request(GROUP, &a));
    let join_s = spawn_join(c, static_join);
    let responses = vec![join_a.await.unwrap(), join_s.await.unwrap()];
    let s = responses[1].member_id.clone();
    assert!(
        s.starts_with("instance-1-"),
        "static member ids start with the instance id"
    );
    complete_sync(c, GROUP, responses).await;
    let response = c.leave_group(
        GROUP,
        vec![
            LeavingMember {
                member_id: String::new(),
                group_instance_id: Some("instance-1".into()),
            },
            LeavingMember {
                member_id: "nobody".into(),
                group_instance_id: None,
            },
            LeavingMember {
                member_id: String::new(),
                group_instance_id: Some("unknown-instance".into()),
            },
            LeavingMember {
                member_id: a.clone(),
                group_instance_id: None,
            },
        ],
    );
    let errors: Vec<Option<GroupError>> =
        response.members.iter().map(|m| m.error.clone()).collect();
    assert_eq!(
        errors,
        vec![
            None,
            Some(GroupError::UnknownMemberId),
            Some(GroupError::UnknownMemberId),
            None
        ]
    );
    settle().await;
    assert_eq!(state(c, GROUP), GroupState::Empty);
    // Unknown group: every member UNKNOWN_MEMBER_ID, no group-level error.
    let response = c.leave_group(
        "nope",
        vec![LeavingMember {
            member_id: "x".into(),
            group_instance_id: None,
        }],
    );
    assert_eq!(response.error, None);
    assert_eq!(response.members[0].error, Some(GroupError::UnknownMemberId));
}

#[tokio::test(start_paused = true)]
async fn leader_leaving_mid_rebalance_hands_leadership_to_a_joined_member() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, _) = stable_group(c, GROUP, 2).await;
    let (a, b) = (ids[0].clone(), ids[1].clone());
    // A follower's rejoin with changed metadata (e.g. a new subscription) starts a rebalance.
    let mut changed = join_request(GROUP, &b);
    changed.protocols = protocols(&[("range", b"new-subscription")]);
    let join_b = spawn_join(c, changed);
    settle().await;
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    c.leave_group(
        GROUP,
        vec![LeavingMember {
            member_id: a,
            group_instance_id: None,
        }],
    );
    let rb = join_b.await.unwrap();
    assert_eq!(rb.leader, b);
    assert_eq!(rb.members.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn protocol_is_chosen_by_vote_and_incompatible_members_are_refused() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let mut requests = Vec::new();
    for preferences in [
        &["range", "roundrobin"][..],
        &["roundrobin", "range"],
        &["roundrobin", "range"],
    ] {
        let mut request = join_request(GROUP, "");
        request.protocols = preferences
            .iter()
            .map(|p| JoinProtocol {
                name: (*p).into(),
                metadata: Bytes::from(p.to_string()),
            })
            .collect();
        request.member_id = member_id_for(c, &request).await;
        requests.push(request);
    }
    let joins: Vec<_> = requests.iter().map(|r| spawn_join(c, r.clone())).collect();
    let mut responses = Vec::new();
    for join in joins {
        responses.push(join.await.unwrap());
    }
    assert!(responses
        .iter()
        .all(|r| r.protocol_name.as_deref() == Some("roundrobin")));
    let leader = responses.iter().find(|r| !r.members.is_empty()).unwrap();
    assert!(leader
        .members
        .iter()
        .all(|m| m.metadata == Bytes::from_static(b"roundrobin")));

    let mut other = join_request(GROUP, "");
    other.protocols = protocols(&[("sticky", b"")]);
    assert_eq!(
        c.join_group(other).await.error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    let mut connect = join_request(GROUP, "");
    connect.protocol_type = "connect".into();
    assert_eq!(
        c.join_group(connect).await.error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    let mut none = join_request("fresh", "");
    none.protocols.clear();
    assert_eq!(
        c.join_group(none).await.error,
        Some(GroupError::InconsistentGroupProtocol)
    );
}

#[tokio::test(start_paused = true)]
async fn request_validation_errors() {
    let config = GroupConfig {
        group_max_size: 2,
        max_group_id_bytes: 8,
        max_member_metadata_bytes: 16,
        ..GroupConfig::for_tests()
    };
    let h = harness(config).await;
    let c = &h.coordinator;
    let with = |f: &dyn Fn(&mut JoinGroupRequest)| {
        let mut request = join_request(GROUP, "");
        f(&mut request);
        request
    };
    let error = |response: JoinGroupResponse| response.error.map(|e| e.kafka_error_code());
    assert_eq!(
        error(c.join_group(with(&|r| r.group_id.clear())).await),
        Some(24)
    );
    assert_eq!(
        error(
            c.join_group(with(&|r| r.group_id = "123456789".into()))
                .await
        ),
        Some(24)
    );
    assert_eq!(
        error(c.join_group(with(&|r| r.session_timeout_ms = 999)).await),
        Some(26)
    );
    assert_eq!(
        error(
            c.join_group(with(&|r| r.session_timeout_ms = 1_800_001))
                .await
        ),
        Some(26)
    );
    assert_eq!(
        error(
            c.join_group(with(&|r| r.protocols = protocols(&[("range", &[0u8; 17])])))
                .await
        ),
        Some(42)
    );
    assert_eq!(
        error(c.join_group(with(&|r| r.member_id = "ghost".into())).await),
        Some(25)
    );
    // group.max.size = 2: pending members count, the third is refused.
    member_id_for(c, &join_request(GROUP, "")).await;
    member_id_for(c, &join_request(GROUP, "")).await;
    let refused = c.join_group(join_request(GROUP, "")).await;
    assert_eq!(refused.error, Some(GroupError::GroupMaxSizeReached(2)));
    assert_eq!(refused.error.unwrap().kafka_error_code(), 81);
    // Sync and heartbeat for unknown groups/members.
    assert_eq!(
        c.sync_group(sync_request("other", "m", 1)).await.error,
        Some(GroupError::UnknownMemberId)
    );
    assert_eq!(
        c.heartbeat(heartbeat("other", "m", 1)),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        c.heartbeat(heartbeat("", "m", 1))
            .unwrap_err()
            .kafka_error_code(),
        24
    );
}

#[tokio::test(start_paused = true)]
async fn stale_generations_and_members_and_protocol_checks() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 2).await;
    let a = ids[0].clone();
    assert_eq!(
        c.heartbeat(heartbeat(GROUP, &a, generation - 1)),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        c.sync_group(sync_request(GROUP, &a, generation + 1))
            .await
            .error,
        Some(GroupError::IllegalGeneration)
    );
    assert_eq!(
        c.sync_group(sync_request(GROUP, "stranger", generation))
            .await
            .error,
        Some(GroupError::UnknownMemberId)
    );
    let mut wrong_type = sync_request(GROUP, &a, generation);
    wrong_type.protocol_type = Some("connect".into());
    assert_eq!(
        c.sync_group(wrong_type).await.error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    let mut wrong_name = sync_request(GROUP, &a, generation);
    wrong_name.protocol_name = Some("roundrobin".into());
    assert_eq!(
        c.sync_group(wrong_name).await.error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    // In Stable, SyncGroup returns the member's current assignment again.
    assert_eq!(
        c.sync_group(sync_request(GROUP, &a, generation))
            .await
            .assignment,
        assignment_for(&a)
    );
    // Once a rebalance starts, SyncGroup of the old generation is told to rejoin.
    let join_a = spawn_join(c, join_request(GROUP, &a));
    settle().await;
    assert_eq!(
        c.sync_group(sync_request(GROUP, &ids[1], generation))
            .await
            .error,
        Some(GroupError::RebalanceInProgress)
    );
    drop(join_a);
}

#[tokio::test(start_paused = true)]
async fn a_rejoin_during_completing_rebalance_with_same_metadata_returns_the_same_generation() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let a = member_id_for(c, &join_request(GROUP, "")).await;
    let first = c.join_group(join_request(GROUP, &a)).await;
    assert_eq!(state(c, GROUP), GroupState::CompletingRebalance);
    // The client lost the response and retries: same answer, no new rebalance.
    let again = c.join_group(join_request(GROUP, &a)).await;
    assert_eq!(again, first);
    // With different metadata it is a new rebalance.
    let mut changed = join_request(GROUP, &a);
    changed.protocols = protocols(&[("range", b"new")]);
    let third = c.join_group(changed).await;
    assert_eq!(third.generation_id, first.generation_id + 1);
}

#[tokio::test(start_paused = true)]
async fn a_follower_rejoin_in_stable_without_changes_does_not_rebalance() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 2).await;
    let response = c.join_group(join_request(GROUP, &ids[1])).await;
    assert_eq!(response.generation_id, generation);
    assert_eq!(response.leader, ids[0]);
    assert_eq!(state(c, GROUP), GroupState::Stable);
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_never_syncs_is_removed_and_followers_are_told_to_rejoin() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let a = member_id_for(c, &join_request(GROUP, "")).await;
    let b = member_id_for(c, &join_request(GROUP, "")).await;
    let (ja, jb) = (
        spawn_join(c, join_request(GROUP, &a)),
        spawn_join(c, join_request(GROUP, &b)),
    );
    let (ra, _rb) = (ja.await.unwrap(), jb.await.unwrap());
    let leader = ra.leader.clone();
    let follower = if leader == a { b.clone() } else { a.clone() };
    let started = Instant::now();
    let sync = spawn_sync(c, sync_request(GROUP, &follower, ra.generation_id));
    // The leader stays alive (heartbeats are valid in CompletingRebalance) but never syncs:
    // only the pending-sync deadline (the rebalance timeout) can unblock the follower.
    while !sync.is_finished() {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        let _ = c.heartbeat(heartbeat(GROUP, &leader, ra.generation_id));
    }
    assert_eq!(
        sync.await.unwrap().error,
        Some(GroupError::RebalanceInProgress)
    );
    assert!(started.elapsed() >= Duration::from_millis(REBALANCE_TIMEOUT_MS as u64));
    assert!(started.elapsed() <= Duration::from_millis(REBALANCE_TIMEOUT_MS as u64 + 3000));
    let rejoined = c.join_group(join_request(GROUP, &follower)).await;
    assert_eq!(rejoined.leader, follower);
    assert_eq!(rejoined.members.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_pending_member_that_never_rejoins_expires_and_unblocks_the_rebalance() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 1).await;
    let _pending = member_id_for(c, &join_request(GROUP, "")).await;
    let started = Instant::now();
    let ra = c.join_group(join_request(GROUP, &ids[0])).await;
    // The rebalance waited for the pending member until its session timeout removed it.
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(SESSION_TIMEOUT_MS as u64)
    );
    assert_eq!(ra.generation_id, generation + 1);
    assert_eq!(ra.members.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_leader_rejoin_in_stable_starts_a_rebalance() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 1).await;
    let response = c.join_group(join_request(GROUP, &ids[0])).await;
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(state(c, GROUP), GroupState::CompletingRebalance);
}

/// Cooperative rebalancing (KIP-429) is two ordinary rebalances: after the first, members
/// revoke what moves and the leader rejoins at once; the server needs nothing special, but the
/// sequence must flow without stalls or stale-generation errors.
#[tokio::test(start_paused = true)]
async fn cooperative_two_phase_rebalance() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 2).await;
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let cooperative = |id: &str, owned: &'static [u8]| {
        let mut request = join_request(GROUP, id);
        request.protocols = protocols(&[("cooperative-sticky", owned), ("range", owned)]);
        request
    };
    // Members switch to cooperative-sticky (a rolling upgrade): one rebalance.
    let (ja, jb) = (
        spawn_join(c, cooperative(&a, b"a:0,1")),
        spawn_join(c, cooperative(&b, b"b:2,3")),
    );
    let (ra, rb) = (ja.await.unwrap(), jb.await.unwrap());
    assert_eq!(ra.protocol_name.as_deref(), Some("cooperative-sticky"));
    let (_, gen2) = complete_sync(c, GROUP, vec![ra, rb]).await;
    assert_eq!(gen2, generation + 1);
    // Phase 1: c joins; a and b rejoin owning their partitions.
    let mut cj = cooperative("", b"c:");
    cj.member_id = member_id_for(c, &cj).await;
    let new_member = cj.member_id.clone();
    let jc = spawn_join(c, cj);
    settle().await;
    let (ja, jb) = (
        spawn_join(c, cooperative(&a, b"a:0,1")),
        spawn_join(c, cooperative(&b, b"b:2,3")),
    );
    let phase1 = vec![ja.await.unwrap(), jb.await.unwrap(), jc.await.unwrap()];
    let (_, gen3) = complete_sync(c, GROUP, phase1).await;
    assert_eq!(gen3, gen2 + 1);
    // Members keep consuming what they did not revoke (heartbeats succeed) …
    assert_eq!(c.heartbeat(heartbeat(GROUP, &b, gen3)), Ok(()));
    // Phase 2: a revoked partition 1 and rejoins at once with its new ownership.
    let ja = spawn_join(c, cooperative(&a, b"a:0"));
    settle().await;
    assert_eq!(
        c.heartbeat(heartbeat(GROUP, &b, gen3)),
        Err(GroupError::RebalanceInProgress)
    );
    let (jb, jc) = (
        spawn_join(c, cooperative(&b, b"b:2,3")),
        spawn_join(c, cooperative(&new_member, b"c:")),
    );
    let phase2 = vec![ja.await.unwrap(), jb.await.unwrap(), jc.await.unwrap()];
    let leader = phase2.iter().find(|r| !r.members.is_empty()).unwrap();
    let owned: Vec<Bytes> = leader.members.iter().map(|m| m.metadata.clone()).collect();
    assert!(
        owned.contains(&Bytes::from_static(b"a:0")),
        "the leader sees the revocation"
    );
    let (_, gen4) = complete_sync(c, GROUP, phase2).await;
    assert_eq!(gen4, gen3 + 1);
    assert_eq!(state(c, GROUP), GroupState::Stable);
}

#[tokio::test(start_paused = true)]
async fn describe_shows_metadata_and_assignment_only_when_stable() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, _) = stable_group(c, GROUP, 2).await;
    let described = c.describe_group(GROUP);
    assert_eq!(
        (described.state, described.exists, described.error.clone()),
        (GroupState::Stable, true, None)
    );
    assert_eq!(described.protocol_type, "consumer");
    assert_eq!(described.protocol_data, "range");
    assert_eq!(described.members.len(), 2);
    for member in &described.members {
        assert_eq!(member.client_id, "client");
        assert_eq!(member.client_host, "/127.0.0.1");
        assert_eq!(member.metadata, Bytes::from_static(b"meta"));
        assert_eq!(member.assignment, assignment_for(&member.member_id));
    }
    let _rejoin = spawn_join(c, join_request(GROUP, &ids[0]));
    settle().await;
    let described = c.describe_group(GROUP);
    assert_eq!(described.state, GroupState::PreparingRebalance);
    assert_eq!(described.protocol_data, "");
    assert!(described
        .members
        .iter()
        .all(|m| m.metadata.is_empty() && m.assignment.is_empty()));
    let unknown = c.describe_group("nope");
    assert_eq!(
        (unknown.state, unknown.exists, unknown.error),
        (GroupState::Dead, false, None)
    );
}

#[tokio::test(start_paused = true)]
async fn a_group_record_above_its_limit_fails_the_sync_and_rebalances() {
    let config = GroupConfig {
        max_group_metadata_bytes: 200,
        ..GroupConfig::for_tests()
    };
    let h = harness(config).await;
    let c = &h.coordinator;
    let a = member_id_for(c, &join_request(GROUP, "")).await;
    let joined = c.join_group(join_request(GROUP, &a)).await;
    let mut sync = sync_request(GROUP, &a, joined.generation_id);
    sync.assignments = vec![(a.clone(), Bytes::from(vec![1u8; 300]))];
    let response = c.sync_group(sync).await;
    assert_eq!(response.error.map(|e| e.kafka_error_code()), Some(-1));
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    assert!(
        h.store.records(c.partition_for(GROUP)).is_empty(),
        "nothing written"
    );
}

/// Every edge of the state diagram, in one walk, observed through DescribeGroups.
#[tokio::test(start_paused = true)]
async fn state_machine_walk_through_every_transition() {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 100,
        ..GroupConfig::for_tests()
    };
    let h = harness(config).await;
    let c = &h.coordinator;
    let a = member_id_for(c, &join_request(GROUP, "")).await;
    assert_eq!(state(c, GROUP), GroupState::Empty);
    // Empty → PreparingRebalance: a member joins (the initial delay holds it there).
    let join_a = spawn_join(c, join_request(GROUP, &a));
    settle().await;
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    // PreparingRebalance → CompletingRebalance: the join phase ends.
    let ra = join_a.await.unwrap();
    assert_eq!(state(c, GROUP), GroupState::CompletingRebalance);
    // CompletingRebalance → PreparingRebalance: a new member arrives before the sync.
    let b = member_id_for(c, &join_request(GROUP, "")).await;
    let join_b = spawn_join(c, join_request(GROUP, &b));
    settle().await;
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    assert_eq!(
        c.sync_group(sync_request(GROUP, &a, ra.generation_id))
            .await
            .error,
        Some(GroupError::RebalanceInProgress)
    );
    let join_a = spawn_join(c, join_request(GROUP, &a));
    let responses = vec![join_a.await.unwrap(), join_b.await.unwrap()];
    assert_eq!(state(c, GROUP), GroupState::CompletingRebalance);
    // CompletingRebalance → Stable: the leader's assignment is stored.
    let (ids, generation) = complete_sync(c, GROUP, responses).await;
    assert_eq!(state(c, GROUP), GroupState::Stable);
    // Stable → PreparingRebalance: a member leaves.
    c.leave_group(
        GROUP,
        vec![LeavingMember {
            member_id: ids[1].clone(),
            group_instance_id: None,
        }],
    );
    assert_eq!(state(c, GROUP), GroupState::PreparingRebalance);
    let rejoined = c.join_group(join_request(GROUP, &ids[0])).await;
    assert_eq!(rejoined.generation_id, generation + 1);
    // CompletingRebalance → PreparingRebalance → Empty: the last member leaves, and the
    // rebalance it starts completes at once with nobody (a new, empty generation).
    assert_eq!(state(c, GROUP), GroupState::CompletingRebalance);
    c.leave_group(
        GROUP,
        vec![LeavingMember {
            member_id: ids[0].clone(),
            group_instance_id: None,
        }],
    );
    assert_eq!(state(c, GROUP), GroupState::Empty);
    let stored = h.store.records(c.partition_for(GROUP));
    let last =
        records::decode_group_metadata_value(stored.last().unwrap().value.as_deref().unwrap())
            .unwrap();
    assert_eq!((last.generation, last.members.len()), (generation + 2, 0));
    // Empty → Dead: DeleteGroups.
    assert_eq!(c.delete_groups(vec![GROUP.into()]).await[0].1, None);
    assert_eq!(state(c, GROUP), GroupState::Dead);
    assert!(!c.describe_group(GROUP).exists);
}

#[tokio::test(start_paused = true)]
async fn a_new_member_stuck_in_a_long_rebalance_is_dropped_after_five_minutes() {
    let h = test_harness().await;
    let c = &h.coordinator;
    let (ids, generation) = stable_group(c, GROUP, 1).await;
    let mut slow = join_request(GROUP, "");
    slow.rebalance_timeout_ms = 600_000;
    slow.member_id = member_id_for(c, &slow).await;
    let started = Instant::now();
    let newcomer = spawn_join(c, slow);
    // The old member keeps heartbeating but never rejoins; the rebalance waits for it.
    while !newcomer.is_finished() {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        let _ = c.heartbeat(heartbeat(GROUP, &ids[0], generation));
    }
    let response = newcomer.await.unwrap();
    assert_eq!(response.error, Some(GroupError::UnknownMemberId));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300_000) && waited <= Duration::from_millis(303_000),
        "{waited:?}"
    );
}
