//! Kafka wire framing and request headers: which APIs and versions Quill speaks, how a frame's
//! header is parsed, and how a response is framed.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

/// One API Quill implements and the version range it advertises (Kafka 4.x ranges, minus the
/// versions whose features Quill does not have yet).
#[derive(Debug, Clone, Copy)]
pub struct SupportedApi {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

const fn api(key: ApiKey, min_version: i16, max_version: i16) -> SupportedApi {
    SupportedApi {
        key,
        min_version,
        max_version,
    }
}

/// Every API the broker answers. An API missing here is answered by closing the connection,
/// as Kafka does for keys it does not know.
///
/// Produce stops at v12 and Fetch at v17: v13/v18 address topics by id only (KIP-516), which
/// old clients never use and new clients negotiate down from.
pub const SUPPORTED_APIS: &[SupportedApi] = &[
    api(ApiKey::Produce, 3, 12),
    api(ApiKey::Fetch, 4, 17),
    api(ApiKey::ListOffsets, 1, 9),
    // Where a leader epoch ends (KIP-101/279 followers, KIP-320 consumers); v0-1 were
    // removed in Kafka 4.0 and are not in the codec.
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::DescribeLogDirs, 1, 4),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::DescribeTopicPartitions, 0, 0),
    // KRaft's DescribeQuorum (`kafka-metadata-quorum.sh describe`), answered from this
    // node's view of the metadata quorum (crate::handlers::quorum).
    api(ApiKey::DescribeQuorum, 0, 2),
    // Feature versions (KIP-584): UpdateFeatures changes the finalized levels ApiVersions v3+
    // reports (crate::handlers::features).
    api(ApiKey::UpdateFeatures, 0, 2),
    // Consumer groups. OffsetCommit/OffsetFetch stop at v8: v9+ belong to the KIP-848
    // consumer protocol; FindCoordinator v6 adds share groups.
    api(ApiKey::FindCoordinator, 0, 5),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 8),
    api(ApiKey::OffsetFetch, 1, 8),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::DeleteGroups, 0, 2),
    // Idempotence and transactions (KIP-98). The top versions that belong to KIP-890 part 2
    // ("transaction version 2": EndTxn v5, TxnOffsetCommit v5, AddPartitionsToTxn v5) are not
    // advertised, and no `transaction.version` feature is finalized, so clients keep the
    // classic protocol (AddPartitionsToTxn before producing, one epoch per producer session).
    // AddPartitionsToTxn v4 is the broker-to-broker batched/verify form, answered for tools.
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::AddPartitionsToTxn, 0, 4),
    api(ApiKey::AddOffsetsToTxn, 0, 4),
    api(ApiKey::EndTxn, 0, 4),
    api(ApiKey::TxnOffsetCommit, 0, 4),
    api(ApiKey::WriteTxnMarkers, 1, 1),
    api(ApiKey::DescribeTransactions, 0, 0),
    api(ApiKey::ListTransactions, 0, 1),
    api(ApiKey::DescribeProducers, 0, 0),
];

/// The advertised range for `key`, if Quill implements it.
pub fn supported_range(key: ApiKey) -> Option<SupportedApi> {
    SUPPORTED_APIS.iter().copied().find(|api| api.key == key)
}

/// Why a frame could not be turned into a request. Each one closes the connection (Kafka
/// behaviour), except `UnsupportedApiVersionsVersion` which gets the KIP-511 answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("frame of {length_bytes} bytes is too short for a request header")]
    TooShort { length_bytes: usize },
    #[error("unknown API key {api_key}")]
    UnknownApiKey { api_key: i16 },
    #[error("API {api_key:?} version {api_version} is not supported")]
    UnsupportedVersion { api_key: ApiKey, api_version: i16 },
    #[error("malformed request header for {api_key:?} v{api_version}: {reason}")]
    MalformedHeader {
        api_key: ApiKey,
        api_version: i16,
        reason: String,
    },
}

/// The header of a request plus its undecoded body (a zero-copy slice of the frame).
#[derive(Debug)]
pub struct RequestFrame {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub body: Bytes,
}

/// What the connection should do with an ApiVersions request at a version we do not speak.
#[derive(Debug)]
pub struct UnsupportedApiVersions {
    pub correlation_id: i32,
    pub api_version: i16,
}

/// Outcome of parsing one frame.
#[derive(Debug)]
pub enum ParsedFrame {
    Request(RequestFrame),
    /// KIP-511: answer in v0 format with UNSUPPORTED_VERSION and our ApiVersions range.
    UnsupportedApiVersions(UnsupportedApiVersions),
}

/// Parses the request header of one frame (the frame excludes the 4-byte length prefix).
pub fn parse_frame(mut frame: Bytes) -> Result<ParsedFrame, RequestError> {
    const FIXED_PREFIX_BYTES: usize = 8; // api key, api version, correlation id
    if frame.len() < FIXED_PREFIX_BYTES {
        return Err(RequestError::TooShort {
            length_bytes: frame.len(),
        });
    }
    let raw_api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(raw_api_key).map_err(|_| RequestError::UnknownApiKey {
        api_key: raw_api_key,
    })?;
    let Some(supported) = supported_range(api_key) else {
        return Err(RequestError::UnknownApiKey {
            api_key: raw_api_key,
        });
    };
    if api_version < supported.min_version || api_version > supported.max_version {
        if api_key == ApiKey::ApiVersions {
            return Ok(ParsedFrame::UnsupportedApiVersions(
                UnsupportedApiVersions {
                    correlation_id,
                    api_version,
                },
            ));
        }
        return Err(RequestError::UnsupportedVersion {
            api_key,
            api_version,
        });
    }
    let header_version = api_key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(|error| {
        RequestError::MalformedHeader {
            api_key,
            api_version,
            reason: error.to_string(),
        }
    })?;
    Ok(ParsedFrame::Request(RequestFrame {
        api_key,
        api_version,
        correlation_id,
        client_id: header.client_id.map(|id| id.to_string()),
        body: frame,
    }))
}

/// A response could not be encoded (a bug or a value the requested version cannot carry).
#[derive(Debug, thiserror::Error)]
#[error("could not encode response: {0}")]
pub struct EncodeError(pub String);

/// Encodes `length prefix + response header + body` for `api_version` of the request.
pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    api_version: i16,
    response: &R,
) -> Result<Bytes, EncodeError> {
    let header_version = R::header_version(api_version);
    encode_response_with_header_version(correlation_id, header_version, api_version, response)
}

/// Like [`encode_response`] with an explicit header version (KIP-511 answers use v0 headers).
pub fn encode_response_with_header_version<R: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body_version: i16,
    response: &R,
) -> Result<Bytes, EncodeError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buffer = BytesMut::with_capacity(64);
    buffer.put_i32(0); // length, patched below
    header
        .encode(&mut buffer, header_version)
        .map_err(|error| EncodeError(error.to_string()))?;
    response
        .encode(&mut buffer, body_version)
        .map_err(|error| EncodeError(error.to_string()))?;
    let body_length = i32::try_from(buffer.len() - 4)
        .map_err(|_| EncodeError("response larger than 2 GiB".to_string()))?;
    buffer[0..4].copy_from_slice(&body_length.to_be_bytes());
    Ok(buffer.freeze())
}

/// Decodes a request body of the frame's version; trailing bytes are tolerated as Kafka does
/// for forward compatibility.
pub fn decode_body<T: Decodable>(frame: &RequestFrame) -> Result<T, String> {
    crate::request_guard::check(frame.api_key, frame.api_version, &frame.body)
        .map_err(|error| format!("rejected before decoding: {error}"))?;
    let mut body = frame.body.clone();
    let decoded = T::decode(&mut body, frame.api_version).map_err(|error| error.to_string())?;
    if body.has_remaining() {
        tracing::debug!(
            api = crate::metrics::api_name(frame.api_key),
            trailing_bytes = body.remaining(),
            "request body has trailing bytes"
        );
    }
    Ok(decoded)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    fn frame_with(api_key: i16, api_version: i16, correlation_id: i32) -> Bytes {
        let mut buffer = BytesMut::new();
        buffer.put_i16(api_key);
        buffer.put_i16(api_version);
        buffer.put_i32(correlation_id);
        buffer.put_i16(-1); // null client id
        buffer.freeze()
    }

    #[test]
    fn every_advertised_range_is_within_what_the_codec_supports() {
        for supported in SUPPORTED_APIS {
            let codec = supported.key.valid_versions();
            assert!(supported.min_version >= codec.min, "{:?}", supported.key);
            assert!(supported.max_version <= codec.max, "{:?}", supported.key);
        }
    }

    #[test]
    fn short_frames_and_unknown_keys_are_errors() {
        assert!(matches!(
            parse_frame(Bytes::from_static(&[0, 18, 0])),
            Err(RequestError::TooShort { .. })
        ));
        assert!(matches!(
            parse_frame(frame_with(999, 0, 1)),
            Err(RequestError::UnknownApiKey { api_key: 999 })
        ));
        assert!(matches!(
            parse_frame(frame_with(ApiKey::Metadata as i16, 99, 1)),
            Err(RequestError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn api_versions_at_unknown_version_is_kip511() {
        let parsed = parse_frame(frame_with(ApiKey::ApiVersions as i16, 77, 42)).unwrap();
        match parsed {
            ParsedFrame::UnsupportedApiVersions(request) => {
                assert_eq!(request.correlation_id, 42);
                assert_eq!(request.api_version, 77);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn header_is_parsed_and_body_is_left() {
        let mut buffer = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(1)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("me")));
        header.encode(&mut buffer, 1).unwrap();
        buffer.put_slice(b"BODY");
        let ParsedFrame::Request(frame) = parse_frame(buffer.freeze()).unwrap() else {
            panic!("expected a request");
        };
        assert_eq!(frame.correlation_id, 7);
        assert_eq!(frame.client_id.as_deref(), Some("me"));
        assert_eq!(&frame.body[..], b"BODY");
    }
}
