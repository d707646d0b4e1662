//! Consumer groups: FindCoordinator and the group APIs, each a thin translation between
//! kafka-protocol messages and `quill_group`'s coordinator through `quill_group::wire`.

use std::net::SocketAddr;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use quill_group::wire;

use crate::state::BrokerState;

/// A coordinator topic that cannot be created or loaded: asked for by every client retry.
static UNAVAILABLE_WARNINGS: crate::rate_limit::WarnLimiter =
    crate::rate_limit::WarnLimiter::new(crate::rate_limit::WARNING_INTERVAL);

/// FindCoordinator v4 batches keys (`coordinator_keys` / `coordinators`).
const FIRST_VERSION_WITH_KEY_BATCHES: i16 = 4;
/// Key types: 0 = consumer group, 1 = transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;

fn text(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

/// Kafka's form of the client host in group descriptions.
fn client_host(peer: SocketAddr) -> String {
    format!("/{}", peer.ip())
}

pub async fn find_coordinator(
    state: &BrokerState,
    request: FindCoordinatorRequest,
    api_version: i16,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if api_version >= FIRST_VERSION_WITH_KEY_BATCHES {
        request.coordinator_keys
    } else {
        vec![request.key]
    };
    // The internal topic must exist (created on first use, as Kafka does) before a key can
    // have a coordinator.
    let ensured = if request.key_type == KEY_TYPE_TRANSACTION {
        state.ensure_transaction_topic().await
    } else {
        state.ensure_offsets_topic().await
    };
    let outcome = ensured.map_err(|error| {
        crate::warn_limited!(UNAVAILABLE_WARNINGS, %error, "coordinator topic unavailable");
        (
            ResponseError::CoordinatorNotAvailable.code(),
            error.to_string(),
        )
    });
    let image = state.image();
    let transactional = request.key_type == KEY_TYPE_TRANSACTION;
    let topic = if transactional {
        quill_txn::TRANSACTION_STATE_TOPIC
    } else {
        crate::offsets_store::OFFSETS_TOPIC
    };
    let partition_for = |key: &str| {
        if transactional {
            state.txn.partition_for(key)
        } else {
            state.groups.partition_for(key)
        }
    };
    // The coordinator of a key is the leader of its partition of the internal topic.
    let coordinator_of = |key: &str| -> Result<(i32, String, i32), (i16, String)> {
        outcome.clone()?;
        let partition = partition_for(key);
        image
            .topic(topic)
            .and_then(|info| info.partition(partition))
            .and_then(|info| image.broker(info.leader))
            .map(|broker| (broker.node_id, broker.host.clone(), i32::from(broker.port)))
            .ok_or_else(|| {
                (
                    ResponseError::CoordinatorNotAvailable.code(),
                    format!("{topic} partition {partition} has no live leader"),
                )
            })
    };
    if api_version >= FIRST_VERSION_WITH_KEY_BATCHES {
        let coordinators = keys
            .into_iter()
            .map(|key| {
                let found = coordinator_of(&key);
                let coordinator = Coordinator::default().with_key(key);
                match found {
                    Ok((node_id, host, port)) => coordinator
                        .with_node_id(BrokerId(node_id))
                        .with_host(text(host))
                        .with_port(port),
                    Err((code, message)) => coordinator
                        .with_node_id(BrokerId(-1))
                        .with_error_code(code)
                        .with_error_message(Some(text(message))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let outcome = keys
        .first()
        .map_or_else(|| coordinator_of(""), |key| coordinator_of(key));
    let response = FindCoordinatorResponse::default();
    match outcome {
        Ok((node_id, host, port)) => response
            .with_node_id(BrokerId(node_id))
            .with_host(text(host))
            .with_port(port),
        Err((code, message)) => {
            let response = response.with_node_id(BrokerId(-1)).with_error_code(code);
            if api_version >= 1 {
                response.with_error_message(Some(text(message)))
            } else {
                response
            }
        }
    }
}

pub async fn join_group(
    state: &BrokerState,
    request: JoinGroupRequest,
    api_version: i16,
    client_id: &str,
    peer: SocketAddr,
) -> JoinGroupResponse {
    let call = wire::join_group_request(&request, api_version, client_id, &client_host(peer));
    let response = state.groups.join_group(call).await;
    wire::join_group_response(response, api_version)
}

pub async fn sync_group(
    state: &BrokerState,
    request: SyncGroupRequest,
    api_version: i16,
) -> SyncGroupResponse {
    let response = state
        .groups
        .sync_group(wire::sync_group_request(&request))
        .await;
    wire::sync_group_response(response, api_version)
}

pub fn heartbeat(state: &BrokerState, request: HeartbeatRequest) -> HeartbeatResponse {
    wire::heartbeat_response(state.groups.heartbeat(wire::heartbeat_request(&request)))
}

pub fn leave_group(
    state: &BrokerState,
    request: LeaveGroupRequest,
    api_version: i16,
) -> LeaveGroupResponse {
    let (group_id, members) = wire::leave_group_request(&request, api_version);
    let response = state.groups.leave_group(&group_id, members);
    wire::leave_group_response(response, api_version)
}

pub async fn offset_commit(
    state: &BrokerState,
    request: OffsetCommitRequest,
    api_version: i16,
) -> OffsetCommitResponse {
    let mut call = wire::offset_commit_request(&request, api_version);
    let image = state.image();
    // Kafka checks topics against its metadata before the coordinator sees the commit.
    let mut results = call.take_unknown_partitions(|topic, partition| {
        image
            .topic(topic)
            .and_then(|info| info.partition(partition))
            .is_some()
    });
    results.extend(state.groups.commit_offsets(call).await);
    wire::offset_commit_response(results)
}

pub fn offset_fetch(
    state: &BrokerState,
    request: OffsetFetchRequest,
    api_version: i16,
) -> OffsetFetchResponse {
    let (groups, require_stable) = wire::offset_fetch_request(&request, api_version);
    let results = groups
        .into_iter()
        .map(|group| {
            let fetched = state.groups.fetch_offsets(
                &group.group_id,
                group.partitions.clone(),
                require_stable,
            );
            (group, fetched)
        })
        .collect();
    wire::offset_fetch_response(results, api_version)
}

pub async fn offset_delete(
    state: &BrokerState,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let (group_id, partitions) = wire::offset_delete_request(&request);
    let result = state.groups.delete_offsets(&group_id, partitions).await;
    wire::offset_delete_response(result)
}

pub fn list_groups(
    state: &BrokerState,
    request: ListGroupsRequest,
    api_version: i16,
) -> ListGroupsResponse {
    let (states, types) = wire::list_groups_request(&request, api_version);
    wire::list_groups_response(state.groups.list_groups(&states, &types), api_version)
}

pub fn describe_groups(
    state: &BrokerState,
    request: DescribeGroupsRequest,
    api_version: i16,
) -> DescribeGroupsResponse {
    let groups = wire::describe_groups_request(&request)
        .iter()
        .map(|group_id| state.groups.describe_group(group_id))
        .collect();
    wire::describe_groups_response(groups, api_version)
}

pub async fn delete_groups(
    state: &BrokerState,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let results = state
        .groups
        .delete_groups(wire::delete_groups_request(&request))
        .await;
    wire::delete_groups_response(results)
}
