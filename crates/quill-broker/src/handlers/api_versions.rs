//! ApiVersions: the first request of every client; tells it which APIs and versions we speak.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::protocol::SUPPORTED_APIS;
use crate::state::BrokerState;

/// The full list of APIs and version ranges we advertise.
fn advertised_api_versions() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.min_version)
                .with_max_version(api.max_version)
        })
        .collect()
}

/// Kafka rejects client software names/versions that are not `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn is_valid_client_software_field(value: &str) -> bool {
    let bytes = value.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-' || *byte == b'.')
}

/// ApiVersions v3 added client software fields (validated) and the feature tags.
const FIRST_FLEXIBLE_VERSION: i16 = 3;

pub fn handle(
    state: &BrokerState,
    request: &ApiVersionsRequest,
    api_version: i16,
) -> ApiVersionsResponse {
    let response = answer_without_features(request, api_version);
    if api_version < FIRST_FLEXIBLE_VERSION || response.error_code != 0 {
        return response;
    }
    // Supported and finalized features as a KRaft broker reports them. zk_migration_ready
    // stays at its default (omitted): a KRaft-only cluster has no migration.
    crate::handlers::features::with_features(response, &state.image(), api_version)
}

/// The API list, or INVALID_REQUEST for bad client software fields (v3+), without features.
fn answer_without_features(request: &ApiVersionsRequest, api_version: i16) -> ApiVersionsResponse {
    let response = ApiVersionsResponse::default().with_api_keys(advertised_api_versions());
    if api_version >= FIRST_FLEXIBLE_VERSION
        && !(is_valid_client_software_field(request.client_software_name.as_str())
            && is_valid_client_software_field(request.client_software_version.as_str()))
    {
        return response.with_error_code(ResponseError::InvalidRequest.code());
    }
    response
}

/// KIP-511: the answer to an ApiVersions request at a version we do not speak. It is encoded
/// as v0 (which every client can parse) and lists only our ApiVersions range so the client
/// retries at a version we support.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    let api_versions_range = SUPPORTED_APIS
        .iter()
        .filter(|api| api.key == ApiKey::ApiVersions)
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.min_version)
                .with_max_version(api.max_version)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_versions_range)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn v3_response_without_features_has_no_optional_tagged_fields() {
        let response = answer_without_features(&ApiVersionsRequest::default(), 0);
        let mut buffer = BytesMut::new();
        response.encode(&mut buffer, 3).unwrap();
        // error(2) + compact array len(1) + entries(7 each: 3 int16 + empty tags) + throttle(4)
        // + top-level tagged field count (1, zero).
        let expected = 2 + 1 + 7 * SUPPORTED_APIS.len() + 4 + 1;
        assert_eq!(buffer.len(), expected);
        assert_eq!(buffer.last(), Some(&0));
    }

    #[test]
    fn client_software_fields_are_validated_from_v3() {
        let bad = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("-bad"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        assert_eq!(answer_without_features(&bad, 3).error_code, 35 + 7); // INVALID_REQUEST = 42
        assert_eq!(answer_without_features(&bad, 2).error_code, 0);
        let good = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kcat"))
            .with_client_software_version(StrBytes::from_static_str("2.0.2"));
        assert_eq!(answer_without_features(&good, 3).error_code, 0);
    }
}
