//! Just enough of the consumer protocol (`ConsumerProtocolSubscription`) to learn which topics
//! a group of protocol type "consumer" subscribes to: OffsetDelete refuses topics in use, and
//! offset expiry spares them.

use std::collections::BTreeSet;

pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The topics in a subscription, read with the v0 layout that prefixes every version (int16
/// version, then an array of int16-length strings), as Kafka's ClassicGroup does. `None` when the
/// bytes do not follow the schema.
pub fn subscribed_topics(metadata: &[u8]) -> Option<BTreeSet<String>> {
    let version = i16::from_be_bytes(metadata.get(..2)?.try_into().ok()?);
    if version < 0 {
        return None;
    }
    let count = i32::from_be_bytes(metadata.get(2..6)?.try_into().ok()?);
    let mut rest = metadata.get(6..)?;
    let mut topics = BTreeSet::new();
    for _ in 0..count.max(0) {
        let length = i16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
        let length = usize::try_from(length).ok()?;
        let name = rest.get(2..2 + length)?;
        topics.insert(std::str::from_utf8(name).ok()?.to_owned());
        rest = rest.get(2 + length..)?;
    }
    Some(topics)
}

/// Encodes a v0 subscription (for tests and tools).
pub fn encode_subscription(topics: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for topic in topics {
        out.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        out.extend_from_slice(topic.as_bytes());
    }
    out.extend_from_slice(&(-1i32).to_be_bytes()); // null user data
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_topics_of_any_version_and_rejects_garbage() {
        let mut v3 = encode_subscription(&["a", "bc"]);
        v3[1] = 3; // later versions append fields after the v0 prefix
        v3.extend_from_slice(&[0, 0, 0, 0]);
        let topics = subscribed_topics(&v3).unwrap();
        assert_eq!(topics.into_iter().collect::<Vec<_>>(), ["a", "bc"]);
        assert_eq!(subscribed_topics(&[0, 0, 0, 0, 0, 5, 0, 1]), None);
        assert_eq!(subscribed_topics(&[0xff, 0xff]), None);
        assert_eq!(subscribed_topics(&[]), None);
    }
}
