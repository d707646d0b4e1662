//! ApiVersions: the first request of every client; tells it which APIs and versions we speak.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::protocol::SUPPORTED_APIS;

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

pub fn handle(request: &ApiVersionsRequest, api_version: i16) -> ApiVersionsResponse {
    // Tagged fields (supported/finalized features, zk_migration_ready) stay at their defaults,
    // which the codec omits from the wire: librdkafka 2.0.2 mis-parses them otherwise.
    let response = ApiVersionsResponse::default().with_api_keys(advertised_api_versions());
    if api_version >= 3
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
    fn v3_response_has_no_optional_tagged_fields() {
        let response = handle(&ApiVersionsRequest::default(), 0);
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
        assert_eq!(handle(&bad, 3).error_code, 35 + 7); // INVALID_REQUEST = 42
        assert_eq!(handle(&bad, 2).error_code, 0);
        let good = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kcat"))
            .with_client_software_version(StrBytes::from_static_str("2.0.2"));
        assert_eq!(handle(&good, 3).error_code, 0);
    }
}
