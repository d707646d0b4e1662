//! Routes a parsed request to its handler and encodes the handler's response.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeProducersRequest,
    DescribeTransactionsRequest, EndTxnRequest, InitProducerIdRequest, ListTransactionsRequest,
    TxnOffsetCommitRequest, WriteTxnMarkersRequest,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeClusterRequest,
    DescribeConfigsRequest, DescribeLogDirsRequest, DescribeQuorumRequest,
    DescribeTopicPartitionsRequest, FetchRequest, IncrementalAlterConfigsRequest,
    ListOffsetsRequest, MetadataRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    UpdateFeaturesRequest,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetDeleteRequest, OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use crate::handlers;
use crate::protocol::{self, RequestFrame, UnsupportedApiVersions};
use crate::state::BrokerState;

/// Requests a peer sent that cannot be decoded: one warning per interval, with a count.
static MALFORMED_REQUEST_WARNINGS: crate::rate_limit::WarnLimiter =
    crate::rate_limit::WarnLimiter::new(crate::rate_limit::WARNING_INTERVAL);

/// What the connection writes back for one request.
#[derive(Debug)]
pub enum Reply {
    /// A complete, length-prefixed response frame.
    Send(Bytes),
    /// No response on the wire (Produce with acks=0).
    Nothing,
    /// Close the connection (undecodable request, as Kafka does).
    Close,
}

pub async fn handle(state: Arc<BrokerState>, peer: SocketAddr, request: RequestFrame) -> Reply {
    let version = request.api_version;
    let shared_state = state;
    let state = &*shared_state;
    tracing::debug!(%peer, api = crate::metrics::api_name(request.api_key), version, correlation_id = request.correlation_id, "request");
    match request.api_key {
        ApiKey::ApiVersions => {
            respond(&request, peer, |body: ApiVersionsRequest| async move {
                handlers::api_versions::handle(state, &body, version)
            })
            .await
        }
        ApiKey::Metadata => {
            respond(&request, peer, |body: MetadataRequest| {
                handlers::metadata::handle(state, body, version)
            })
            .await
        }
        ApiKey::Produce => match produce(state, peer, request).await {
            Handled::Ready(reply) => reply,
            Handled::Pending(reply) => reply.await,
        },
        ApiKey::Fetch => {
            respond(&request, peer, |body: FetchRequest| {
                handlers::fetch::handle(state, body, version)
            })
            .await
        }
        ApiKey::OffsetForLeaderEpoch => {
            respond(&request, peer, |body: OffsetForLeaderEpochRequest| {
                handlers::leader_epochs::handle(state, body)
            })
            .await
        }
        ApiKey::ListOffsets => {
            respond(&request, peer, |body: ListOffsetsRequest| {
                handlers::list_offsets::handle(state, body, version)
            })
            .await
        }
        ApiKey::CreateTopics => {
            respond(&request, peer, |body: CreateTopicsRequest| {
                handlers::topics::create_topics(&shared_state, body)
            })
            .await
        }
        ApiKey::DeleteTopics => {
            respond(&request, peer, |body: DeleteTopicsRequest| {
                handlers::topics::delete_topics(state, body, version)
            })
            .await
        }
        ApiKey::CreatePartitions => {
            respond(&request, peer, |body: CreatePartitionsRequest| {
                handlers::topics::create_partitions(state, body)
            })
            .await
        }
        ApiKey::DescribeConfigs => {
            respond(&request, peer, |body: DescribeConfigsRequest| async move {
                handlers::configs::describe_configs(state, body, version)
            })
            .await
        }
        ApiKey::AlterConfigs => {
            respond(&request, peer, |body: AlterConfigsRequest| {
                handlers::configs::alter_configs(state, body)
            })
            .await
        }
        ApiKey::IncrementalAlterConfigs => {
            respond(&request, peer, |body: IncrementalAlterConfigsRequest| {
                handlers::configs::incremental_alter_configs(state, body)
            })
            .await
        }
        ApiKey::DeleteRecords => {
            respond(&request, peer, |body: DeleteRecordsRequest| {
                handlers::records::delete_records(state, body)
            })
            .await
        }
        ApiKey::DescribeCluster => {
            respond(&request, peer, |body: DescribeClusterRequest| async move {
                handlers::cluster::describe_cluster(state, body, version)
            })
            .await
        }
        ApiKey::UpdateFeatures => {
            respond(&request, peer, |body: UpdateFeaturesRequest| {
                handlers::features::update_features(state, body, version)
            })
            .await
        }
        ApiKey::DescribeTopicPartitions => {
            respond(
                &request,
                peer,
                |body: DescribeTopicPartitionsRequest| async move {
                    handlers::describe_topic_partitions::handle(state, body)
                },
            )
            .await
        }
        ApiKey::DescribeQuorum => {
            respond(&request, peer, |body: DescribeQuorumRequest| {
                handlers::quorum::describe_quorum(state, body, version)
            })
            .await
        }
        ApiKey::DescribeLogDirs => {
            respond(&request, peer, |body: DescribeLogDirsRequest| {
                handlers::cluster::describe_log_dirs(state, body)
            })
            .await
        }
        ApiKey::FindCoordinator => {
            respond(&request, peer, |body: FindCoordinatorRequest| {
                handlers::groups::find_coordinator(state, body, version)
            })
            .await
        }
        ApiKey::JoinGroup => {
            let client_id = request.client_id.clone().unwrap_or_default();
            respond(&request, peer, |body: JoinGroupRequest| async move {
                handlers::groups::join_group(state, body, version, &client_id, peer).await
            })
            .await
        }
        ApiKey::SyncGroup => {
            respond(&request, peer, |body: SyncGroupRequest| {
                handlers::groups::sync_group(state, body, version)
            })
            .await
        }
        ApiKey::Heartbeat => {
            respond(&request, peer, |body: HeartbeatRequest| async move {
                handlers::groups::heartbeat(state, body)
            })
            .await
        }
        ApiKey::LeaveGroup => {
            respond(&request, peer, |body: LeaveGroupRequest| async move {
                handlers::groups::leave_group(state, body, version)
            })
            .await
        }
        ApiKey::OffsetCommit => {
            respond(&request, peer, |body: OffsetCommitRequest| {
                handlers::groups::offset_commit(state, body, version)
            })
            .await
        }
        ApiKey::OffsetFetch => {
            respond(&request, peer, |body: OffsetFetchRequest| async move {
                handlers::groups::offset_fetch(state, body, version)
            })
            .await
        }
        ApiKey::OffsetDelete => {
            respond(&request, peer, |body: OffsetDeleteRequest| {
                handlers::groups::offset_delete(state, body)
            })
            .await
        }
        ApiKey::ListGroups => {
            respond(&request, peer, |body: ListGroupsRequest| async move {
                handlers::groups::list_groups(state, body, version)
            })
            .await
        }
        ApiKey::DescribeGroups => {
            respond(&request, peer, |body: DescribeGroupsRequest| async move {
                handlers::groups::describe_groups(state, body, version)
            })
            .await
        }
        ApiKey::DeleteGroups => {
            respond(&request, peer, |body: DeleteGroupsRequest| {
                handlers::groups::delete_groups(state, body)
            })
            .await
        }
        ApiKey::InitProducerId => {
            respond(&request, peer, |body: InitProducerIdRequest| {
                handlers::txn::init_producer_id(state, body, version)
            })
            .await
        }
        ApiKey::AddPartitionsToTxn => {
            respond(&request, peer, |body: AddPartitionsToTxnRequest| {
                handlers::txn::add_partitions_to_txn(state, body, version)
            })
            .await
        }
        ApiKey::AddOffsetsToTxn => {
            respond(&request, peer, |body: AddOffsetsToTxnRequest| {
                handlers::txn::add_offsets_to_txn(state, body, version)
            })
            .await
        }
        ApiKey::EndTxn => {
            respond(&request, peer, |body: EndTxnRequest| {
                handlers::txn::end_txn(state, body, version)
            })
            .await
        }
        ApiKey::TxnOffsetCommit => {
            respond(&request, peer, |body: TxnOffsetCommitRequest| {
                handlers::txn::txn_offset_commit(state, body, version)
            })
            .await
        }
        ApiKey::WriteTxnMarkers => {
            respond(&request, peer, |body: WriteTxnMarkersRequest| {
                handlers::txn::write_txn_markers(state, body)
            })
            .await
        }
        ApiKey::DescribeTransactions => {
            respond(&request, peer, |body: DescribeTransactionsRequest| {
                handlers::txn::describe_transactions(state, body)
            })
            .await
        }
        ApiKey::ListTransactions => {
            respond(&request, peer, |body: ListTransactionsRequest| {
                handlers::txn::list_transactions(state, body)
            })
            .await
        }
        ApiKey::DescribeProducers => {
            respond(&request, peer, |body: DescribeProducersRequest| {
                handlers::txn::describe_producers(state, body)
            })
            .await
        }
        other => {
            // parse_frame only lets through keys listed in SUPPORTED_APIS, so this is a bug.
            tracing::error!(%peer, api = crate::metrics::api_name(other), "no handler for an advertised API; closing connection");
            Reply::Close
        }
    }
}

/// A reply that is ready, or one that finishes later while the connection goes on to its next
/// request (replies are still written in request order).
pub enum Handled {
    Ready(Reply),
    Pending(PendingReply),
}

pub type PendingReply = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Handles a request up to the point where its effects are ordered: everything for most
/// APIs; for Produce, the appends, leaving the durability wait pending.
pub async fn handle_in_order(
    state: Arc<BrokerState>,
    peer: SocketAddr,
    request: RequestFrame,
) -> Handled {
    if request.api_key == ApiKey::Produce {
        return produce(&state, peer, request).await;
    }
    Handled::Ready(handle(state, peer, request).await)
}

/// Produce differs from other APIs in that acks=0 has no response, and in that its
/// durability wait may overlap with later requests.
async fn produce(state: &BrokerState, peer: SocketAddr, request: RequestFrame) -> Handled {
    let body = match protocol::decode_body::<ProduceRequest>(&request) {
        Ok(body) => body,
        Err(reason) => {
            crate::warn_limited!(MALFORMED_REQUEST_WARNINGS, %peer, version = request.api_version, %reason, "undecodable Produce request; closing connection");
            return Handled::Ready(Reply::Close);
        }
    };
    let appended = handlers::produce::append(state, request.api_version, body).await;
    let waiting = state.metrics.waiting(crate::metrics::Waiting::Produce);
    let hints = handlers::LeaderHints::new(state.image());
    Handled::Pending(Box::pin(async move {
        let outcome = appended.finish().await;
        drop(waiting);
        match outcome {
            handlers::produce::ProduceOutcome::Respond(mut response) => {
                handlers::produce::add_leader_hints(&hints, request.api_version, &mut response);
                encode(&request, peer, &response)
            }
            handlers::produce::ProduceOutcome::NoResponse { any_error: false } => Reply::Nothing,
            handlers::produce::ProduceOutcome::NoResponse { any_error: true } => {
                tracing::info!(%peer, "acks=0 produce failed; closing the connection to tell the producer");
                Reply::Close
            }
        }
    }))
}

/// Decodes the body as `Req`, runs `handler`, encodes its response for the request's version.
async fn respond<Req, Resp, Fut>(
    request: &RequestFrame,
    peer: SocketAddr,
    handler: impl FnOnce(Req) -> Fut,
) -> Reply
where
    Req: Decodable,
    Resp: Encodable + HeaderVersion,
    Fut: Future<Output = Resp>,
{
    let body = match protocol::decode_body::<Req>(request) {
        Ok(body) => body,
        Err(reason) => {
            crate::warn_limited!(MALFORMED_REQUEST_WARNINGS, %peer, api = crate::metrics::api_name(request.api_key), version = request.api_version, %reason, "undecodable request; closing connection");
            return Reply::Close;
        }
    };
    let response = handler(body).await;
    encode(request, peer, &response)
}

fn encode<Resp: Encodable + HeaderVersion>(
    request: &RequestFrame,
    peer: SocketAddr,
    response: &Resp,
) -> Reply {
    match protocol::encode_response(request.correlation_id, request.api_version, response) {
        Ok(bytes) => Reply::Send(bytes),
        Err(error) => {
            tracing::error!(%peer, api = crate::metrics::api_name(request.api_key), version = request.api_version, %error, "closing connection");
            Reply::Close
        }
    }
}

/// KIP-511 answer: v0 body, v0 header, UNSUPPORTED_VERSION and our ApiVersions range.
pub fn unsupported_api_versions(request: &UnsupportedApiVersions) -> Reply {
    let response: ApiVersionsResponse = handlers::api_versions::unsupported_version_response();
    match protocol::encode_response_with_header_version(request.correlation_id, 0, 0, &response) {
        Ok(bytes) => Reply::Send(bytes),
        Err(error) => {
            tracing::error!(%error, "could not encode the KIP-511 ApiVersions response");
            Reply::Close
        }
    }
}
