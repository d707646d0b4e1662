//! Routes a parsed request to its handler and encodes the handler's response.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use crate::handlers;
use crate::protocol::{self, RequestFrame, UnsupportedApiVersions};
use crate::state::BrokerState;

/// What the connection writes back for one request.
#[derive(Debug)]
pub enum Reply {
    /// A complete, length-prefixed response frame.
    Send(Bytes),
    /// No response on the wire (Produce with acks=0).
    #[allow(dead_code)] // until Produce lands
    Nothing,
    /// Close the connection (undecodable request, as Kafka does).
    Close,
}

pub async fn handle(state: Arc<BrokerState>, peer: SocketAddr, request: RequestFrame) -> Reply {
    let _ = &state;
    match request.api_key {
        ApiKey::ApiVersions => {
            respond(&request, peer, |body: ApiVersionsRequest| async move {
                handlers::api_versions::handle(&body, request.api_version)
            })
            .await
        }
        other => {
            // parse_frame only lets through keys listed in SUPPORTED_APIS, so this is a bug.
            tracing::error!(%peer, api = ?other, "no handler for an advertised API; closing connection");
            Reply::Close
        }
    }
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
            tracing::warn!(%peer, api = ?request.api_key, version = request.api_version, %reason, "undecodable request; closing connection");
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
            tracing::error!(%peer, api = ?request.api_key, version = request.api_version, %error, "closing connection");
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
