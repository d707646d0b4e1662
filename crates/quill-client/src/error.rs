//! The client's error type. Every variant reads as one sentence naming what failed and where,
//! so a command-line tool can print it as is.

use std::time::Duration;

use kafka_protocol::error::ResponseError;

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("connecting to {address} timed out after {} ms", timeout.as_millis())]
    ConnectTimeout { address: String, timeout: Duration },
    #[error("no broker answered (tried {addresses}); last error: {last}")]
    NoBrokerReachable {
        addresses: String,
        last: Box<ClientError>,
    },
    #[error("connection to {address} failed: {source}")]
    Io {
        address: String,
        source: std::io::Error,
    },
    #[error("connection to {address} was closed")]
    ConnectionClosed { address: String },
    #[error("{api} request to {address} got no response within {} ms", timeout.as_millis())]
    RequestTimeout {
        api: &'static str,
        address: String,
        timeout: Duration,
    },
    #[error("cannot encode a {api} request: {message}")]
    Encode { api: &'static str, message: String },
    #[error("malformed {api} response from {address}: {message}")]
    Decode {
        api: &'static str,
        address: String,
        message: String,
    },
    #[error("{address} sent a response frame of {length} bytes (limit {limit})")]
    FrameTooLarge {
        address: String,
        length: i64,
        limit: usize,
    },
    #[error("broker {address} does not support {api} at a version this client speaks")]
    UnsupportedVersion { api: &'static str, address: String },
    #[error("{context}: {}", describe_broker_error(*error, message.as_deref()))]
    Broker {
        context: String,
        error: ResponseError,
        message: Option<String>,
    },
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    #[error("topic `{topic}` has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("no leader is known for partition {topic}-{partition}")]
    NoLeader { topic: String, partition: i32 },
    #[error("broker {0} is not in the cluster metadata")]
    UnknownBroker(i32),
    #[error("invalid record batch in {topic}-{partition}: {message}")]
    CorruptBatch {
        topic: String,
        partition: i32,
        message: String,
    },
    #[error("record of {size_bytes} bytes exceeds the request size limit of {limit_bytes} bytes")]
    RecordTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("invalid client setting: {0}")]
    InvalidConfig(String),
    #[error("delivery to {partition} failed: {reason}")]
    DeliveryFailed {
        partition: String,
        reason: String,
        kafka_error: Option<ResponseError>,
        retriable: bool,
    },
    #[error("the producer is closed")]
    ProducerClosed,
    #[error("not acknowledged within {} ms (delivery.timeout.ms): {last}", timeout.as_millis())]
    DeliveryTimeout {
        timeout: Duration,
        last: Box<ClientError>,
    },
    /// KIP-345: another consumer joined the group with this member's `group.instance.id`, so
    /// the coordinator fenced this one. Retrying would only fence the other in turn.
    #[error(
        "group `{group}`: another consumer joined with group.instance.id `{instance_id}`, so \
         this one was fenced (FENCED_INSTANCE_ID); each instance id must be used by one \
         consumer at a time"
    )]
    FencedInstance { group: String, instance_id: String },
    #[error("group `{group}`: the background join ended abnormally: {reason}")]
    GroupTaskFailed { group: String, reason: String },
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        attempts: u32,
        last: Box<ClientError>,
    },
}

impl ClientError {
    pub fn broker(
        context: impl Into<String>,
        error: ResponseError,
        message: Option<String>,
    ) -> Self {
        ClientError::Broker {
            context: context.into(),
            error,
            message,
        }
    }

    /// Whether the same request may succeed if sent again (after a metadata refresh and a
    /// backoff): transport failures and the errors Kafka marks retriable.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::ConnectTimeout { .. }
            | ClientError::Io { .. }
            | ClientError::ConnectionClosed { .. }
            | ClientError::RequestTimeout { .. }
            | ClientError::NoLeader { .. }
            | ClientError::UnknownBroker(_) => true,
            ClientError::Broker { error, .. } => error.is_retriable(),
            ClientError::DeliveryFailed { retriable, .. } => *retriable,
            _ => false,
        }
    }

    /// The Kafka error code behind this error, if a broker sent one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            ClientError::Broker { error, .. } => Some(*error),
            ClientError::RetriesExhausted { last, .. }
            | ClientError::DeliveryTimeout { last, .. } => last.kafka_error(),
            ClientError::DeliveryFailed { kafka_error, .. } => *kafka_error,
            ClientError::FencedInstance { .. } => Some(ResponseError::FencedInstanceId),
            _ => None,
        }
    }
}

/// "TopicAlreadyExists" becomes "topic already exists"; the broker's own message, when it sent
/// one, is more specific and wins.
fn describe_broker_error(error: ResponseError, message: Option<&str>) -> String {
    let name = format!("{error:?}");
    let words = split_camel_case(&name);
    match message {
        Some(message) if !message.is_empty() => format!("{message} ({words})"),
        _ => words,
    }
}

fn split_camel_case(name: &str) -> String {
    let mut words = String::with_capacity(name.len() + 8);
    for (index, character) in name.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            words.push(' ');
        }
        words.push(character.to_ascii_lowercase());
    }
    words
}

/// Turns a non-zero Kafka error code into an error with `context`.
pub(crate) fn check_code(
    code: i16,
    context: impl FnOnce() -> String,
    message: Option<&str>,
) -> Result<()> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => Err(ClientError::broker(
            context(),
            error,
            message.map(str::to_string),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_errors_read_as_words() {
        let error =
            ClientError::broker("create topic `a`", ResponseError::TopicAlreadyExists, None);
        assert_eq!(error.to_string(), "create topic `a`: topic already exists");
        let error = ClientError::broker(
            "create topic `a`",
            ResponseError::InvalidConfig,
            Some("unknown setting foo".into()),
        );
        assert_eq!(
            error.to_string(),
            "create topic `a`: unknown setting foo (invalid config)"
        );
    }

    #[test]
    fn retriable_follows_kafka_and_transport() {
        assert!(ClientError::broker("x", ResponseError::NotLeaderOrFollower, None).is_retriable());
        assert!(
            !ClientError::broker("x", ResponseError::InvalidTopicException, None).is_retriable()
        );
        assert!(ClientError::ConnectionClosed {
            address: "a".into()
        }
        .is_retriable());
        assert!(!ClientError::UnknownTopic("t".into()).is_retriable());
    }
}
