use crate::{MetaError, MetadataImage};

/// Kafka's limit (`Topic.MAX_NAME_LENGTH`): 255 minus room for a partition suffix in file names.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Kafka's topic name rules (`org.apache.kafka.common.internals.Topic.validate`), with its messages.
pub fn validate_topic_name(name: &str) -> Result<(), MetaError> {
    if name.is_empty() {
        return Err(MetaError::InvalidTopic(
            "Topic name is illegal, it can't be empty".to_string(),
        ));
    }
    if name == "." || name == ".." {
        return Err(MetaError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".to_string(),
        ));
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return Err(MetaError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, topic name: {name}"
        )));
    }
    if !name.bytes().all(is_legal_topic_byte) {
        return Err(MetaError::InvalidTopic(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

fn is_legal_topic_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')
}

/// '.' and '_' map to the same metric name in Kafka, so topics differing only there collide.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

fn collide(left: &str, right: &str) -> bool {
    let normalize = |byte: u8| if byte == b'.' { b'_' } else { byte };
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .all(|(l, r)| normalize(l) == normalize(r))
}

/// Rejects a new topic whose name collides with an existing one (other than itself).
pub fn check_topic_collision(image: &MetadataImage, name: &str) -> Result<(), MetaError> {
    // Only names containing '.' or '_' can collide. The scan is linear, without allocation.
    if !name.contains(['.', '_']) {
        return Ok(());
    }
    match image
        .topics
        .keys()
        .find(|existing| existing.as_str() != name && collide(existing, name))
    {
        Some(existing) => Err(MetaError::InvalidTopic(format!(
            "Topic '{name}' collides with existing topic: {existing}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<(), MetaError>) -> String {
        match result {
            Err(error @ MetaError::InvalidTopic(_)) => error.to_string(),
            other => panic!("expected InvalidTopic, got {other:?}"),
        }
    }

    #[test]
    fn accepts_legal_names() {
        for name in ["a", "orders", "A-b_c.d", "0", "...", "_", &"x".repeat(249)] {
            assert!(validate_topic_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(
            message(validate_topic_name("")),
            "Topic name is illegal, it can't be empty"
        );
    }

    #[test]
    fn rejects_dot_and_dot_dot() {
        assert!(message(validate_topic_name(".")).contains("cannot be"));
        assert!(message(validate_topic_name("..")).contains("cannot be"));
    }

    #[test]
    fn rejects_too_long() {
        assert!(message(validate_topic_name(&"x".repeat(250))).contains("longer than 249"));
    }

    #[test]
    fn rejects_illegal_characters() {
        for name in ["a b", "a/b", "é", "a:b", "a\0", "topic*"] {
            assert!(
                message(validate_topic_name(name)).contains("illegal"),
                "{name}"
            );
        }
    }

    #[test]
    fn detects_dot_underscore_collisions() {
        let mut image = MetadataImage::empty("c");
        image.topics.insert(
            "a.b".into(),
            std::sync::Arc::new(crate::TopicInfo {
                name: "a.b".into(),
                topic_id: uuid::Uuid::from_u128(1),
                partitions: vec![],
                configs: Default::default(),
            }),
        );
        assert_eq!(
            message(check_topic_collision(&image, "a_b")),
            "Topic 'a_b' collides with existing topic: a.b"
        );
        assert!(check_topic_collision(&image, "a.b").is_ok());
        assert!(check_topic_collision(&image, "a-b").is_ok());
        assert!(check_topic_collision(&image, "ab").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn legal_alphabet_and_length_is_exactly_what_is_accepted(name in "[a-zA-Z0-9._-]{1,260}") {
            let expected_ok = name.len() <= MAX_TOPIC_NAME_LENGTH && name != "." && name != "..";
            proptest::prop_assert_eq!(validate_topic_name(&name).is_ok(), expected_ok);
        }

        #[test]
        fn any_other_character_is_rejected(prefix in "[a-z]{0,5}", bad in "[^a-zA-Z0-9._-]", suffix in "[a-z]{0,5}") {
            let name = format!("{prefix}{bad}{suffix}");
            proptest::prop_assert!(validate_topic_name(&name).is_err());
        }
    }
}
