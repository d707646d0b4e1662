//! Kafka 4.0's dynamic group configs (`ConfigResource` type GROUP): names, types, defaults,
//! Kafka's validation, and DescribeConfigs resolution.
//!
//! What is in force: these configs govern KIP-848 consumer groups (`consumer.*`) and KIP-932
//! share groups (`share.*`). Quill runs only the classic group protocol, whose members bring
//! their own `session.timeout.ms` / heartbeat settings in JoinGroup — and Kafka ignores these
//! configs for classic groups too. So Quill stores and describes them exactly as Kafka 4.0
//! does for a classic group; the documentation of each entry says so.

use std::collections::BTreeMap;

use crate::topic_config::{
    parse_value, ConfigSource, ConfigSynonym, ConfigType, ConfigValue, DescribedConfig,
};
use crate::MetaError;

/// Groups that may carry dynamic configs at once (the map is keyed by client input).
pub const MAX_CONFIGURED_GROUPS: usize = 10_000;
/// Longest group id accepted as a config resource name.
pub const MAX_GROUP_ID_BYTES: usize = 32_767;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupConfigDef {
    pub name: &'static str,
    pub config_type: ConfigType,
    pub default: &'static str,
    /// Kafka's `ConfigDef` validator: at least this (INT configs).
    pub at_least: Option<i64>,
    /// Allowed values (STRING configs).
    pub one_of: &'static [&'static str],
    /// The broker config the default comes from (`group.` + name), if Kafka has one.
    pub broker_synonym: Option<&'static str>,
    pub documentation: &'static str,
}

const CLASSIC_NOTE: &str = " Stored and described as Kafka 4.0 does; it has no effect on \
classic-protocol groups (the only kind Quill runs: their members send session.timeout.ms and \
heartbeat.interval.ms in JoinGroup), as in Kafka.";

/// Every group config of Kafka 4.0, sorted by name.
pub static GROUP_CONFIGS: &[GroupConfigDef] = &[
    GroupConfigDef {
        name: "consumer.heartbeat.interval.ms",
        config_type: ConfigType::Int,
        default: "5000",
        at_least: Some(1),
        one_of: &[],
        broker_synonym: Some("group.consumer.heartbeat.interval.ms"),
        documentation: "The heartbeat interval given to the members of a KIP-848 consumer group.",
    },
    GroupConfigDef {
        name: "consumer.session.timeout.ms",
        config_type: ConfigType::Int,
        default: "45000",
        at_least: Some(1),
        one_of: &[],
        broker_synonym: Some("group.consumer.session.timeout.ms"),
        documentation: "The session timeout of the members of a KIP-848 consumer group.",
    },
    GroupConfigDef {
        name: "share.auto.offset.reset",
        config_type: ConfigType::String,
        default: "latest",
        at_least: None,
        one_of: &["latest", "earliest"],
        broker_synonym: None,
        documentation: "Where a share group (KIP-932) starts reading a partition.",
    },
    GroupConfigDef {
        name: "share.heartbeat.interval.ms",
        config_type: ConfigType::Int,
        default: "5000",
        at_least: Some(1),
        one_of: &[],
        broker_synonym: Some("group.share.heartbeat.interval.ms"),
        documentation: "The heartbeat interval given to the members of a share group (KIP-932).",
    },
    GroupConfigDef {
        name: "share.record.lock.duration.ms",
        config_type: ConfigType::Int,
        default: "30000",
        at_least: Some(1000),
        one_of: &[],
        broker_synonym: Some("group.share.record.lock.duration.ms"),
        documentation: "How long a share group (KIP-932) member holds a record lock.",
    },
    GroupConfigDef {
        name: "share.session.timeout.ms",
        config_type: ConfigType::Int,
        default: "45000",
        at_least: Some(1),
        one_of: &[],
        broker_synonym: Some("group.share.session.timeout.ms"),
        documentation: "The session timeout of the members of a share group (KIP-932).",
    },
];

/// Kafka's broker-side bounds (`group.consumer.min.session.timeout.ms` … at their defaults):
/// (config, min, min name, max, max name).
const BOUNDS: &[(&str, i64, &str, i64, &str)] = &[
    (
        "consumer.heartbeat.interval.ms",
        5000,
        "group.consumer.min.heartbeat.interval.ms",
        15000,
        "group.consumer.max.heartbeat.interval.ms",
    ),
    (
        "consumer.session.timeout.ms",
        45000,
        "group.consumer.min.session.timeout.ms",
        60000,
        "group.consumer.max.session.timeout.ms",
    ),
    (
        "share.heartbeat.interval.ms",
        5000,
        "group.share.min.heartbeat.interval.ms",
        15000,
        "group.share.max.heartbeat.interval.ms",
    ),
    (
        "share.session.timeout.ms",
        45000,
        "group.share.min.session.timeout.ms",
        60000,
        "group.share.max.session.timeout.ms",
    ),
    (
        "share.record.lock.duration.ms",
        15000,
        "group.share.min.record.lock.duration.ms",
        60000,
        "group.share.max.record.lock.duration.ms",
    ),
];

pub fn lookup(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|def| def.name == name)
}

fn invalid(name: &str, message: impl Into<String>) -> MetaError {
    MetaError::InvalidConfig {
        name: name.to_string(),
        message: message.into(),
    }
}

/// Checks a group id used as a config resource name.
pub fn validate_group_id(group_id: &str) -> Result<(), MetaError> {
    if group_id.is_empty() {
        return Err(MetaError::InvalidRequest(
            "Group name must not be empty".to_string(),
        ));
    }
    if group_id.len() > MAX_GROUP_ID_BYTES {
        return Err(MetaError::InvalidRequest(format!(
            "Group name is longer than {MAX_GROUP_ID_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The value of every group config for a group's explicit configs (defaults filled in).
fn effective_numbers(configs: &BTreeMap<String, String>) -> BTreeMap<&'static str, i64> {
    GROUP_CONFIGS
        .iter()
        .filter(|def| def.config_type == ConfigType::Int)
        .filter_map(|def| {
            let raw = configs.get(def.name).map_or(def.default, String::as_str);
            raw.trim().parse().ok().map(|number| (def.name, number))
        })
        .collect()
}

/// Validates a group's full set of explicit configs as Kafka's `GroupConfig.validate` does:
/// known names, types and validators, the broker's min/max bounds, and each session timeout
/// above its heartbeat interval.
pub fn validate_group_configs(configs: &BTreeMap<String, String>) -> Result<(), MetaError> {
    for (name, value) in configs {
        let def = lookup(name)
            .ok_or_else(|| invalid(name, format!("Unknown group config name: {name}")))?;
        let parsed = parse_value(name, def.config_type, value)?;
        match parsed {
            ConfigValue::Int(number) => {
                if let Some(min) = def.at_least.filter(|min| i64::from(number) < *min) {
                    return Err(invalid(
                        name,
                        format!(
                            "Invalid value {value} for configuration {name}: Value must be at least {min}"
                        ),
                    ));
                }
            }
            ConfigValue::String(text) if !def.one_of.contains(&text.as_str()) => {
                return Err(invalid(
                    name,
                    format!(
                        "Invalid value {value} for configuration {name}: String must be one of: {}",
                        def.one_of.join(", ")
                    ),
                ));
            }
            _ => {}
        }
    }
    let numbers = effective_numbers(configs);
    for (name, min, min_name, max, max_name) in BOUNDS {
        let Some(value) = numbers.get(name) else {
            continue;
        };
        if value < min {
            return Err(invalid(
                name,
                format!("{name} must be greater than or equal to {min_name}"),
            ));
        }
        if value > max {
            return Err(invalid(
                name,
                format!("{name} must be less than or equal to {max_name}"),
            ));
        }
    }
    for (session, heartbeat) in [
        (
            "consumer.session.timeout.ms",
            "consumer.heartbeat.interval.ms",
        ),
        ("share.session.timeout.ms", "share.heartbeat.interval.ms"),
    ] {
        if let (Some(session_ms), Some(heartbeat_ms)) =
            (numbers.get(session), numbers.get(heartbeat))
        {
            if session_ms <= heartbeat_ms {
                return Err(invalid(
                    session,
                    format!("{session} must be greater than {heartbeat}"),
                ));
            }
        }
    }
    Ok(())
}

/// Describes every group config of one group, as Kafka's `ConfigHelper` does: the group's own
/// value (source GROUP_CONFIG) else the broker default (`group.*`, DEFAULT_CONFIG).
pub fn describe_group_configs(configs: Option<&BTreeMap<String, String>>) -> Vec<DescribedConfig> {
    GROUP_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(value) = configs.and_then(|configs| configs.get(def.name)) {
                synonyms.push(ConfigSynonym {
                    name: def.name.to_string(),
                    value: value.trim().to_string(),
                    source: ConfigSource::GroupConfig,
                });
            }
            synonyms.push(ConfigSynonym {
                name: def.broker_synonym.unwrap_or(def.name).to_string(),
                value: def.default.to_string(),
                source: ConfigSource::DefaultConfig,
            });
            let (value, source) = synonyms
                .first()
                .map(|first| (first.value.clone(), first.source))
                .unwrap_or((def.default.to_string(), ConfigSource::DefaultConfig));
            DescribedConfig {
                name: def.name,
                value,
                source,
                config_type: def.config_type,
                read_only: false,
                is_sensitive: false,
                synonyms,
                documentation: def.documentation,
            }
        })
        .collect()
}

/// The note every group config's DescribeConfigs documentation ends with.
pub fn in_force_note() -> &'static str {
    CLASSIC_NOTE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn message(result: Result<(), MetaError>) -> String {
        match result {
            Err(error @ MetaError::InvalidConfig { .. }) => error.to_string(),
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn table_is_sorted_and_defaults_are_valid() {
        for pair in GROUP_CONFIGS.windows(2) {
            assert!(pair[0].name < pair[1].name);
        }
        let defaults: BTreeMap<String, String> = GROUP_CONFIGS
            .iter()
            .map(|def| (def.name.to_string(), def.default.to_string()))
            .collect();
        validate_group_configs(&defaults).unwrap();
    }

    #[test]
    fn kafka_validation_rules() {
        validate_group_configs(&map(&[("consumer.session.timeout.ms", "50000")])).unwrap();
        assert_eq!(
            message(validate_group_configs(&map(&[("consumer.session.timeout.ms", "1000")]))),
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"
        );
        assert_eq!(
            message(validate_group_configs(&map(&[("consumer.session.timeout.ms", "70000")]))),
            "consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms"
        );
        assert!(message(validate_group_configs(&map(&[("nope", "1")])))
            .contains("Unknown group config name: nope"));
        assert!(message(validate_group_configs(&map(&[(
            "consumer.heartbeat.interval.ms",
            "x"
        )])))
        .contains("Not a number of type INT"));
        assert!(message(validate_group_configs(&map(&[(
            "share.auto.offset.reset",
            "middle"
        )])))
        .contains("String must be one of: latest, earliest"));
        assert!(message(validate_group_configs(&map(&[(
            "share.record.lock.duration.ms",
            "999"
        )])))
        .contains("Value must be at least 1000"));
        validate_group_configs(&map(&[
            ("consumer.heartbeat.interval.ms", "15000"),
            ("consumer.session.timeout.ms", "45000"),
        ]))
        .unwrap();
        assert!(validate_group_id("").is_err());
    }

    #[test]
    fn describe_sources() {
        let described =
            describe_group_configs(Some(&map(&[("consumer.session.timeout.ms", "50000")])));
        assert_eq!(described.len(), GROUP_CONFIGS.len());
        let session = described
            .iter()
            .find(|entry| entry.name == "consumer.session.timeout.ms")
            .unwrap();
        assert_eq!(
            (session.value.as_str(), session.source),
            ("50000", ConfigSource::GroupConfig)
        );
        assert_eq!(
            session.synonyms[1].name,
            "group.consumer.session.timeout.ms"
        );
        let heartbeat = described
            .iter()
            .find(|entry| entry.name == "consumer.heartbeat.interval.ms")
            .unwrap();
        assert_eq!(
            (heartbeat.value.as_str(), heartbeat.source),
            ("5000", ConfigSource::DefaultConfig)
        );
    }
}
