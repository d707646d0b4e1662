//! Randomized runs against the coordinator: a few clients issue arbitrary (often wrong) group
//! requests, abandon them mid-flight and crash, while the clock jumps. Checked after every
//! step: the state invariants DescribeGroups exposes, and that every answer is a protocol error
//! a client can act on. Then a liveness phase: the surviving clients follow the protocol and the
//! group must become Stable with exactly them, each holding the assignment its leader gave it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use quill_group::*;
use tokio::task::JoinHandle;

const CLIENTS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Sync(usize),
    Heartbeat(usize),
    Leave(usize),
    Commit(usize),
    /// The client disconnects: its in-flight request is dropped.
    Abandon(usize),
    /// The client process dies: it forgets its member id and stops.
    Crash(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS;
    prop_oneof![
        3 => client.clone().prop_map(Op::Join),
        2 => client.clone().prop_map(Op::Sync),
        2 => client.clone().prop_map(Op::Heartbeat),
        1 => client.clone().prop_map(Op::Leave),
        1 => client.clone().prop_map(Op::Commit),
        1 => client.clone().prop_map(Op::Abandon),
        1 => client.prop_map(Op::Crash),
        2 => (0u64..20_000).prop_map(Op::Advance),
    ]
}

#[derive(Default)]
struct Client {
    member_id: String,
    generation: i32,
    last_join: Option<JoinGroupResponse>,
    crashed: bool,
    in_flight: Option<JoinHandle<()>>,
}

type Shared = Arc<Mutex<Vec<Client>>>;

fn request_for(index: usize, member_id: &str) -> JoinGroupRequest {
    let mut request = join_request(GROUP, member_id);
    request.client_id = format!("client{index}");
    if index == 0 {
        request.group_instance_id = Some("static-0".into());
    }
    request
}

/// Errors a well-behaved client can get from a racing, misbehaving group: all retriable or
/// "rejoin" signals. Anything else (UNKNOWN_SERVER_ERROR, INVALID_REQUEST, …) is a bug here.
fn acceptable(error: &Option<GroupError>) -> bool {
    matches!(
        error,
        None | Some(
            GroupError::MemberIdRequired
                | GroupError::UnknownMemberId
                | GroupError::IllegalGeneration
                | GroupError::RebalanceInProgress
                | GroupError::FencedInstanceId
                | GroupError::NotCoordinator
                | GroupError::CoordinatorNotAvailable
        )
    )
}

fn apply_join(clients: &Shared, index: usize, response: &JoinGroupResponse) {
    assert!(acceptable(&response.error), "join: {response:?}");
    let mut clients = clients.lock().unwrap();
    let client = &mut clients[index];
    match &response.error {
        Some(GroupError::MemberIdRequired) => client.member_id = response.member_id.clone(),
        Some(GroupError::UnknownMemberId) | Some(GroupError::FencedInstanceId) => {
            client.member_id.clear()
        }
        Some(_) => {}
        None => {
            if !response.members.is_empty() {
                assert_eq!(
                    response.leader, response.member_id,
                    "only the leader gets members"
                );
                assert!(response
                    .members
                    .iter()
                    .any(|m| m.member_id == response.leader));
            }
            client.member_id = response.member_id.clone();
            client.generation = response.generation_id;
            client.last_join = Some(response.clone());
        }
    }
}

fn check_invariants(c: &GroupCoordinator) {
    let described = c.describe_group(GROUP);
    let members = described.members.len();
    match described.state {
        GroupState::Empty => assert_eq!(members, 0, "{described:?}"),
        GroupState::CompletingRebalance | GroupState::Stable => {
            assert!(members > 0, "{described:?}")
        }
        GroupState::PreparingRebalance | GroupState::Dead => {}
    }
    let ids: BTreeSet<&str> = described
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert_eq!(ids.len(), members, "member ids are unique");
    let statics = described
        .members
        .iter()
        .filter(|m| m.group_instance_id.as_deref() == Some("static-0"))
        .count();
    assert!(statics <= 1, "one member per group.instance.id");
}

fn spawn_op(c: &GroupCoordinator, clients: &Shared, op: &Op) {
    let index = match op {
        Op::Join(i) | Op::Sync(i) | Op::Heartbeat(i) | Op::Leave(i) | Op::Commit(i) => *i,
        _ => return,
    };
    let (member_id, generation, last_join) = {
        let mut all = clients.lock().unwrap();
        let client = &mut all[index];
        if client.crashed || client.in_flight.as_ref().is_some_and(|t| !t.is_finished()) {
            return; // one request at a time per client, as Kafka clients do per coordinator
        }
        (
            client.member_id.clone(),
            client.generation,
            client.last_join.clone(),
        )
    };
    let c = c.clone();
    let shared = clients.clone();
    let op = op.clone();
    let task = tokio::spawn(async move {
        match op {
            Op::Join(_) => {
                let response = c.join_group(request_for(index, &member_id)).await;
                apply_join(&shared, index, &response);
            }
            Op::Sync(_) => {
                let mut request = sync_request(GROUP, &member_id, generation);
                if index == 0 {
                    request.group_instance_id = Some("static-0".into());
                }
                if let Some(join) = last_join.filter(|j| j.leader == j.member_id) {
                    request.assignments = join
                        .members
                        .iter()
                        .map(|m| (m.member_id.clone(), assignment_for(&m.member_id)))
                        .collect();
                }
                let response = c.sync_group(request).await;
                assert!(acceptable(&response.error), "sync: {response:?}");
                if response.error.is_none() {
                    assert_eq!(
                        response.assignment,
                        assignment_for(&member_id),
                        "exactly the leader's bytes"
                    );
                }
            }
            Op::Heartbeat(_) => {
                let mut request = heartbeat(GROUP, &member_id, generation);
                if index == 0 {
                    request.group_instance_id = Some("static-0".into());
                }
                let result = c.heartbeat(request);
                assert!(acceptable(&result.err()));
            }
            Op::Leave(_) => {
                let response = c.leave_group(
                    GROUP,
                    vec![LeavingMember {
                        member_id: member_id.clone(),
                        group_instance_id: (index == 0).then(|| "static-0".into()),
                    }],
                );
                assert!(acceptable(&response.error));
                assert!(response.members.iter().all(|m| acceptable(&m.error)));
                shared.lock().unwrap()[index].member_id.clear();
            }
            Op::Commit(_) => {
                let mut request = commit(GROUP, &member_id, generation, &[("t", index as i32, 1)]);
                if index == 0 {
                    request.group_instance_id = Some("static-0".into());
                }
                for result in c.commit_offsets(request).await {
                    assert!(acceptable(&result.error), "commit: {result:?}");
                }
            }
            _ => {}
        }
    });
    clients.lock().unwrap()[index].in_flight = Some(task);
}

/// A client that follows the protocol: join (with the handshake), sync, heartbeat every second,
/// rejoin when told to.
async fn well_behaved(c: GroupCoordinator, index: usize, clients: Shared) {
    loop {
        let member_id = clients.lock().unwrap()[index].member_id.clone();
        let response = c.join_group(request_for(index, &member_id)).await;
        apply_join(&clients, index, &response);
        if response.error.is_some() {
            continue;
        }
        let mut sync = sync_request(GROUP, &response.member_id, response.generation_id);
        if index == 0 {
            sync.group_instance_id = Some("static-0".into());
        }
        if response.leader == response.member_id {
            sync.assignments = response
                .members
                .iter()
                .map(|m| (m.member_id.clone(), assignment_for(&m.member_id)))
                .collect();
        }
        let synced = c.sync_group(sync).await;
        assert!(acceptable(&synced.error), "{synced:?}");
        if synced.error.is_some() {
            continue;
        }
        assert_eq!(synced.assignment, assignment_for(&response.member_id));
        loop {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let mut request = heartbeat(GROUP, &response.member_id, response.generation_id);
            if index == 0 {
                request.group_instance_id = Some("static-0".into());
            }
            if c.heartbeat(request).is_err() {
                break;
            }
        }
    }
}

fn run(ops: Vec<Op>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let h = test_harness().await;
        let c = h.coordinator.clone();
        let clients: Shared = Arc::new(Mutex::new(
            (0..CLIENTS).map(|_| Client::default()).collect(),
        ));
        for op in &ops {
            match op {
                Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                Op::Abandon(i) => {
                    if let Some(task) = clients.lock().unwrap()[*i].in_flight.take() {
                        task.abort();
                    }
                }
                Op::Crash(i) => {
                    let mut all = clients.lock().unwrap();
                    if let Some(task) = all[*i].in_flight.take() {
                        task.abort();
                    }
                    all[*i] = Client {
                        crashed: true,
                        ..Client::default()
                    };
                }
                other => spawn_op(&c, &clients, other),
            }
            settle().await;
            check_invariants(&c);
        }
        // Liveness: stop the chaos; survivors (crashed clients restart, as processes do) behave.
        let in_flight: Vec<JoinHandle<()>> = clients
            .lock()
            .unwrap()
            .iter_mut()
            .filter_map(|cl| cl.in_flight.take())
            .collect();
        for task in in_flight {
            task.abort();
        }
        let behaving: Vec<JoinHandle<()>> = (0..CLIENTS)
            .map(|i| tokio::spawn(well_behaved(c.clone(), i, clients.clone())))
            .collect();
        tokio::time::sleep(Duration::from_secs(300)).await;
        let described = c.describe_group(GROUP);
        assert_eq!(described.state, GroupState::Stable, "{described:?}");
        let in_group: BTreeSet<String> = described
            .members
            .iter()
            .map(|m| m.member_id.clone())
            .collect();
        let expected: BTreeSet<String> = clients
            .lock()
            .unwrap()
            .iter()
            .map(|cl| cl.member_id.clone())
            .collect();
        assert_eq!(in_group, expected);
        for member in &described.members {
            assert_eq!(member.assignment, assignment_for(&member.member_id));
        }
        for task in behaving {
            task.abort();
        }
        let _ = Bytes::new();
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_clients_never_break_the_group(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
