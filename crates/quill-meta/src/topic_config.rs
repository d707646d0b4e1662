//! The topic-level configs Quill supports: Kafka's names, types, defaults, validators and the
//! broker-level configs ("synonyms") each one falls back to, plus DescribeConfigs resolution.
//!
//! Resolution order (as in Kafka's `ConfigHelper`): the topic's own value, then for each source
//! in turn — dynamic per-broker, dynamic cluster default, static broker file, built-in broker
//! default — each synonym in table order; finally the topic default. Unit synonyms
//! (`log.retention.hours`) are converted to the topic's unit (ms).

use std::collections::BTreeMap;

use crate::{MetaError, MetadataImage};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    Int,
    Long,
    Double,
    String,
    List,
}

impl ConfigType {
    /// Kafka's name of the type, as used in its validation messages.
    pub fn kafka_name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::String => "STRING",
            ConfigType::List => "LIST",
        }
    }

    /// `config_type` field of DescribeConfigs v3+.
    pub fn describe_configs_id(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Validator {
    None,
    AtLeast(i64),
    Between(i64, i64),
    DoubleBetween(f64, f64),
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    /// gzip: 1..=9 or -1 (zlib's default level).
    GzipLevel,
    /// `*` or `partition:broker` pairs.
    ThrottledReplicas,
    /// Accepted only as `false`: the feature exists in Kafka but not in Quill.
    UnsupportedWhenTrue(&'static str),
}

/// A broker-level config a topic config defaults from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BrokerSynonym {
    pub name: &'static str,
    /// Multiply the broker value by this to get the topic value (3_600_000 for `*.hours`).
    pub to_topic_unit_factor: i64,
    /// The broker's built-in default, if the broker config has one (Kafka reports it with source
    /// DEFAULT_CONFIG among the synonyms).
    pub broker_default: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub config_type: ConfigType,
    pub default: &'static str,
    pub validator: Validator,
    pub broker_synonyms: &'static [BrokerSynonym],
    pub documentation: &'static str,
}

const fn same_unit(name: &'static str, broker_default: Option<&'static str>) -> BrokerSynonym {
    BrokerSynonym {
        name,
        to_topic_unit_factor: 1,
        broker_default,
    }
}

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;
const LONG_MAX: &str = "9223372036854775807";
const MIB: i64 = 1024 * 1024;

/// Kafka 4.0's internal topic config (`LogConfig.INTERNAL_SEGMENT_BYTES_CONFIG`): when set it
/// replaces `segment.bytes` and is exempt from its 1 MiB minimum (KIP-1030), for tests that
/// need small segments (e.g. librdkafka's compaction test). Like every internal config it is
/// accepted by name and described only when the topic sets it.
pub const INTERNAL_SEGMENT_BYTES: &str = "internal.segment.bytes";

/// Topic configs Kafka defines with `defineInternal`: settable, described only when set.
pub fn is_internal(name: &str) -> bool {
    name == INTERNAL_SEGMENT_BYTES
}

pub const CLEANUP_POLICY_COMPACT: &str = "compact";
pub const CLEANUP_POLICY_DELETE: &str = "delete";
const CLEANUP_POLICIES: &[&str] = &[CLEANUP_POLICY_COMPACT, CLEANUP_POLICY_DELETE];
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Every topic config Quill accepts, sorted by name.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        config_type: ConfigType::List,
        default: "delete",
        validator: Validator::ListOf(CLEANUP_POLICIES),
        broker_synonyms: &[same_unit("log.cleanup.policy", Some("delete"))],
        documentation: "Retention policy for old log segments: delete, compact, or both.",
    },
    TopicConfigDef {
        name: "compression.gzip.level",
        config_type: ConfigType::Int,
        default: "-1",
        validator: Validator::GzipLevel,
        broker_synonyms: &[same_unit("compression.gzip.level", Some("-1"))],
        documentation: "Compression level when compression.type is gzip.",
    },
    TopicConfigDef {
        name: "compression.lz4.level",
        config_type: ConfigType::Int,
        default: "9",
        validator: Validator::Between(1, 17),
        broker_synonyms: &[same_unit("compression.lz4.level", Some("9"))],
        documentation: "Compression level when compression.type is lz4.",
    },
    TopicConfigDef {
        name: "compression.type",
        config_type: ConfigType::String,
        default: "producer",
        validator: Validator::OneOf(COMPRESSION_TYPES),
        broker_synonyms: &[same_unit("compression.type", Some("producer"))],
        documentation:
            "Final compression of the topic's data; producer keeps the producer's codec.",
    },
    TopicConfigDef {
        name: "compression.zstd.level",
        config_type: ConfigType::Int,
        default: "3",
        validator: Validator::Between(-131_072, 22),
        broker_synonyms: &[same_unit("compression.zstd.level", Some("3"))],
        documentation: "Compression level when compression.type is zstd.",
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        config_type: ConfigType::Long,
        default: "86400000",
        validator: Validator::AtLeast(0),
        broker_synonyms: &[same_unit(
            "log.cleaner.delete.retention.ms",
            Some("86400000"),
        )],
        documentation: "How long delete tombstones are kept on compacted topics.",
    },
    TopicConfigDef {
        name: "file.delete.delay.ms",
        config_type: ConfigType::Long,
        default: "60000",
        validator: Validator::AtLeast(0),
        broker_synonyms: &[same_unit("log.segment.delete.delay.ms", Some("60000"))],
        documentation: "Time to wait before deleting a file from the filesystem.",
    },
    TopicConfigDef {
        name: "flush.messages",
        config_type: ConfigType::Long,
        // Quill's default (Kafka's is LONG_MAX): every record is fsynced before it is
        // acknowledged, the syncs of concurrent appends shared (group commit).
        default: "1",
        validator: Validator::AtLeast(1),
        broker_synonyms: &[same_unit("log.flush.interval.messages", Some("1"))],
        documentation: "Number of messages between forced fsyncs of the log (Quill's default 1: fsync before acknowledging).",
    },
    TopicConfigDef {
        name: "flush.ms",
        config_type: ConfigType::Long,
        default: LONG_MAX,
        validator: Validator::AtLeast(0),
        broker_synonyms: &[
            same_unit("log.flush.interval.ms", None),
            same_unit("log.flush.scheduler.interval.ms", Some(LONG_MAX)),
        ],
        documentation: "Time between forced fsyncs of the log.",
    },
    TopicConfigDef {
        name: "follower.replication.throttled.replicas",
        config_type: ConfigType::List,
        default: "",
        validator: Validator::ThrottledReplicas,
        broker_synonyms: &[],
        documentation: "Replicas whose log replication is throttled on the follower side.",
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        config_type: ConfigType::Int,
        default: "4096",
        validator: Validator::AtLeast(0),
        broker_synonyms: &[same_unit("log.index.interval.bytes", Some("4096"))],
        documentation: "Bytes of log between offset index entries.",
    },
    TopicConfigDef {
        name: INTERNAL_SEGMENT_BYTES,
        config_type: ConfigType::Int,
        // Kafka's default is null (unset: segment.bytes applies); an internal config is
        // described only when a topic sets it, so this is never reported.
        default: "",
        // Kafka has no validator; a negative value acts as 0 (every batch is too large).
        validator: Validator::None,
        broker_synonyms: &[],
        documentation: "The maximum size of a single log file, overriding segment.bytes without its 1 MiB minimum. This should be used for testing only.",
    },
    TopicConfigDef {
        name: "leader.replication.throttled.replicas",
        config_type: ConfigType::List,
        default: "",
        validator: Validator::ThrottledReplicas,
        broker_synonyms: &[],
        documentation: "Replicas whose log replication is throttled on the leader side.",
    },
    TopicConfigDef {
        name: "local.retention.bytes",
        config_type: ConfigType::Long,
        default: "-2",
        validator: Validator::AtLeast(-2),
        broker_synonyms: &[same_unit("log.local.retention.bytes", Some("-2"))],
        documentation: "Local log size retained with tiered storage; -2 means retention.bytes.",
    },
    TopicConfigDef {
        name: "local.retention.ms",
        config_type: ConfigType::Long,
        default: "-2",
        validator: Validator::AtLeast(-2),
        broker_synonyms: &[same_unit("log.local.retention.ms", Some("-2"))],
        documentation: "Local log time retained with tiered storage; -2 means retention.ms.",
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        config_type: ConfigType::Long,
        default: LONG_MAX,
        validator: Validator::AtLeast(1),
        broker_synonyms: &[same_unit(
            "log.cleaner.max.compaction.lag.ms",
            Some(LONG_MAX),
        )],
        documentation: "Maximum time a message remains ineligible for compaction.",
    },
    TopicConfigDef {
        name: "max.message.bytes",
        config_type: ConfigType::Int,
        default: "1048588",
        validator: Validator::AtLeast(0),
        broker_synonyms: &[same_unit("message.max.bytes", Some("1048588"))],
        documentation: "Largest record batch size allowed by the topic.",
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        config_type: ConfigType::Long,
        default: "3600000",
        validator: Validator::AtLeast(0),
        broker_synonyms: &[same_unit(
            "log.message.timestamp.after.max.ms",
            Some("3600000"),
        )],
        documentation: "How far a CreateTime timestamp may be ahead of the broker's clock.",
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        config_type: ConfigType::Long,
        default: LONG_MAX,
        validator: Validator::AtLeast(0),
        broker_synonyms: &[same_unit(
            "log.message.timestamp.before.max.ms",
            Some(LONG_MAX),
        )],
        documentation: "How far a CreateTime timestamp may be behind the broker's clock.",
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        config_type: ConfigType::String,
        default: "CreateTime",
        validator: Validator::OneOf(TIMESTAMP_TYPES),
        broker_synonyms: &[same_unit("log.message.timestamp.type", Some("CreateTime"))],
        documentation: "Whether record timestamps are the producer's (CreateTime) or the broker's.",
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        config_type: ConfigType::Double,
        default: "0.5",
        validator: Validator::DoubleBetween(0.0, 1.0),
        broker_synonyms: &[same_unit("log.cleaner.min.cleanable.ratio", Some("0.5"))],
        documentation: "Minimum dirty fraction of the log before it is compacted.",
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        config_type: ConfigType::Long,
        default: "0",
        validator: Validator::AtLeast(0),
        broker_synonyms: &[same_unit("log.cleaner.min.compaction.lag.ms", Some("0"))],
        documentation: "Minimum time a message remains uncompacted.",
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        config_type: ConfigType::Int,
        default: "1",
        validator: Validator::AtLeast(1),
        broker_synonyms: &[same_unit("min.insync.replicas", Some("1"))],
        documentation: "Minimum ISR size for an acks=all produce to succeed.",
    },
    TopicConfigDef {
        name: "preallocate",
        config_type: ConfigType::Boolean,
        default: "false",
        validator: Validator::None,
        broker_synonyms: &[same_unit("log.preallocate", Some("false"))],
        documentation: "Preallocate segment files on disk when rolling.",
    },
    TopicConfigDef {
        name: "remote.log.copy.disable",
        config_type: ConfigType::Boolean,
        default: "false",
        validator: Validator::None,
        broker_synonyms: &[],
        documentation: "Stop copying segments to tiered storage (Quill has none; must be false).",
    },
    TopicConfigDef {
        name: "remote.log.delete.on.disable",
        config_type: ConfigType::Boolean,
        default: "false",
        validator: Validator::None,
        broker_synonyms: &[],
        documentation:
            "Delete tiered data when tiering is disabled (Quill has none; must be false).",
    },
    TopicConfigDef {
        name: "remote.storage.enable",
        config_type: ConfigType::Boolean,
        default: "false",
        validator: Validator::UnsupportedWhenTrue(
            "Quill does not support remote.storage.enable yet (Quill has no tiered storage)",
        ),
        broker_synonyms: &[],
        documentation: "Tiered storage (not supported by Quill; must be false).",
    },
    TopicConfigDef {
        name: "retention.bytes",
        config_type: ConfigType::Long,
        default: "-1",
        validator: Validator::None,
        broker_synonyms: &[same_unit("log.retention.bytes", Some("-1"))],
        documentation: "Maximum partition size before old segments are deleted; -1 is unlimited.",
    },
    TopicConfigDef {
        name: "retention.ms",
        config_type: ConfigType::Long,
        default: "604800000",
        validator: Validator::AtLeast(-1),
        broker_synonyms: &[
            same_unit("log.retention.ms", None),
            BrokerSynonym {
                name: "log.retention.minutes",
                to_topic_unit_factor: MS_PER_MINUTE,
                broker_default: None,
            },
            BrokerSynonym {
                name: "log.retention.hours",
                to_topic_unit_factor: MS_PER_HOUR,
                broker_default: Some("168"),
            },
        ],
        documentation: "Maximum age of a segment before it is deleted; -1 is unlimited.",
    },
    TopicConfigDef {
        name: "segment.bytes",
        config_type: ConfigType::Int,
        default: "1073741824",
        validator: Validator::AtLeast(MIB),
        broker_synonyms: &[same_unit("log.segment.bytes", Some("1073741824"))],
        documentation: "Segment file size.",
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        config_type: ConfigType::Int,
        default: "10485760",
        validator: Validator::AtLeast(4),
        broker_synonyms: &[same_unit("log.index.size.max.bytes", Some("10485760"))],
        documentation: "Size of the offset and time indexes of a segment.",
    },
    TopicConfigDef {
        name: "segment.jitter.ms",
        config_type: ConfigType::Long,
        default: "0",
        validator: Validator::AtLeast(0),
        broker_synonyms: &[
            same_unit("log.roll.jitter.ms", None),
            BrokerSynonym {
                name: "log.roll.jitter.hours",
                to_topic_unit_factor: MS_PER_HOUR,
                broker_default: Some("0"),
            },
        ],
        documentation: "Maximum random jitter subtracted from segment.ms.",
    },
    TopicConfigDef {
        name: "segment.ms",
        config_type: ConfigType::Long,
        default: "604800000",
        validator: Validator::AtLeast(1),
        broker_synonyms: &[
            same_unit("log.roll.ms", None),
            BrokerSynonym {
                name: "log.roll.hours",
                to_topic_unit_factor: MS_PER_HOUR,
                broker_default: Some("168"),
            },
        ],
        documentation: "Time after which a segment is rolled even if not full.",
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        config_type: ConfigType::Boolean,
        default: "false",
        validator: Validator::None,
        broker_synonyms: &[same_unit("unclean.leader.election.enable", Some("false"))],
        documentation: "Allow replicas outside the ISR to become leader, at the risk of data loss.",
    },
];

/// Whether a topic config's value is in force in Quill. No setting is accepted and ignored:
/// a config whose feature Quill lacks accepts only its default (which is what Quill does), and
/// any other value is refused with INVALID_CONFIG saying so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Every valid value takes effect.
    InForce,
    /// Only the default is in force; the text says what Quill lacks.
    DefaultOnly(&'static str),
}

const NO_REPLICATION: &str = "Quill does not replicate partitions yet";
const NO_TIERED_STORAGE: &str = "Quill has no tiered storage";

/// The decision for every topic config (`None` for names not in [`TOPIC_CONFIGS`]). A new
/// config must be added here too: the table test fails otherwise.
pub fn support(name: &str) -> Option<Support> {
    let decision = match name {
        "cleanup.policy"
        | "compression.gzip.level"
        | "compression.lz4.level"
        | "compression.type"
        | "compression.zstd.level"
        | "delete.retention.ms"
        | "file.delete.delay.ms"
        | "flush.messages"
        | "flush.ms"
        | "index.interval.bytes"
        | INTERNAL_SEGMENT_BYTES
        | "max.compaction.lag.ms"
        | "max.message.bytes"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.type"
        | "min.cleanable.dirty.ratio"
        | "min.compaction.lag.ms"
        | "min.insync.replicas"
        | "unclean.leader.election.enable"
        | "retention.bytes"
        | "retention.ms"
        | "segment.bytes"
        | "segment.index.bytes"
        | "segment.jitter.ms"
        | "segment.ms" => Support::InForce,
        "follower.replication.throttled.replicas" | "leader.replication.throttled.replicas" => {
            Support::DefaultOnly(NO_REPLICATION)
        }
        "local.retention.bytes"
        | "local.retention.ms"
        | "remote.log.copy.disable"
        | "remote.log.delete.on.disable"
        | "remote.storage.enable" => Support::DefaultOnly(NO_TIERED_STORAGE),
        "preallocate" => Support::DefaultOnly("segment files grow as data is appended"),
        _ => return None,
    };
    Some(decision)
}

/// Whether `value` is the config's default (after parsing, so `FALSE` and ` false` count).
fn is_default_value(def: &TopicConfigDef, value: &str) -> bool {
    let parsed = parse_value(def.name, def.config_type, value);
    let default = parse_value(def.name, def.config_type, def.default);
    matches!((parsed, default), (Ok(parsed), Ok(default)) if parsed == default)
}

/// Whether a (valid) value of topic config `name` would take effect. Unknown names are `true`:
/// validation answers them.
pub fn is_supported_value(name: &str, value: &str) -> bool {
    let Some(def) = lookup(name) else {
        return true;
    };
    match support(name) {
        Some(Support::InForce) => true,
        Some(Support::DefaultOnly(_)) | None => is_default_value(def, value),
    }
}

/// Refuses a topic config value Quill cannot put in force. Called where requests are planned
/// (CreateTopics, AlterConfigs, IncrementalAlterConfigs, the static broker file), never while
/// applying metadata records: values already stored in an old metadata log still replay (they
/// are then described and used as the default, which is what is in force).
pub fn check_supported(name: &str, value: &str) -> Result<(), MetaError> {
    check_supported_as(name, name, value)
}

fn check_supported_as(reported_name: &str, name: &str, value: &str) -> Result<(), MetaError> {
    if is_supported_value(name, value) {
        return Ok(());
    }
    let reason = match support(name) {
        Some(Support::DefaultOnly(reason)) => reason,
        _ => "no decision recorded",
    };
    let default = lookup(name).map_or("", |def| def.default);
    Err(invalid_value(
        reported_name,
        value,
        format!("Quill does not support {name} yet ({reason}); only the default ({default}) is accepted"),
    ))
}

/// [`check_supported`] for every explicit config of a topic.
pub fn check_supported_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), MetaError> {
    configs
        .iter()
        .try_for_each(|(name, value)| check_supported(name, value))
}

/// [`check_supported`] for a broker config that a topic config defaults from
/// (`log.preallocate`, `unclean.leader.election.enable`, …); other names pass.
pub fn check_supported_broker_config(name: &str, value: &str) -> Result<(), MetaError> {
    let Some((def, synonym)) = topic_config_for_broker_synonym(name) else {
        return Ok(());
    };
    if synonym.to_topic_unit_factor != 1 {
        // Unit synonyms (`*.hours`) belong only to configs that are in force.
        return Ok(());
    }
    check_supported_as(name, def.name, value)
}

pub fn lookup(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// A parsed config value.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    Boolean(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    String(String),
    List(Vec<String>),
}

/// Validates one topic config, with Kafka's message ("Invalid value abc for configuration
/// retention.ms: Not a number of type LONG").
pub fn validate_topic_config(name: &str, value: &str) -> Result<ConfigValue, MetaError> {
    let def = lookup(name).ok_or_else(|| {
        MetaError::invalid_config(name, format!("Unknown topic config name: {name}"))
    })?;
    parse_and_validate(name, def.config_type, def.validator, value)
}

/// Validates a full set of explicit topic configs, including rules across configs.
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), MetaError> {
    for (name, value) in configs {
        validate_topic_config(name, value)?;
    }
    check_compaction_lag_order(configs)
}

fn check_compaction_lag_order(configs: &BTreeMap<String, String>) -> Result<(), MetaError> {
    const MIN: &str = "min.compaction.lag.ms";
    const MAX: &str = "max.compaction.lag.ms";
    if !configs.contains_key(MIN) && !configs.contains_key(MAX) {
        return Ok(());
    }
    let min_ms = explicit_or_default_long(configs, MIN);
    let max_ms = explicit_or_default_long(configs, MAX);
    if min_ms > max_ms {
        return Err(MetaError::invalid_config(
            MIN,
            format!("conflict topic config setting {MIN} ({min_ms}) > {MAX} ({max_ms})"),
        ));
    }
    Ok(())
}

fn explicit_or_default_long(configs: &BTreeMap<String, String>, name: &str) -> i64 {
    let default = lookup(name).map_or("0", |def| def.default);
    let raw = configs.get(name).map_or(default, String::as_str);
    raw.trim().parse().unwrap_or(0)
}

/// Validates a dynamic broker config. Broker configs that a topic config defaults from are
/// checked against that topic config's type (and validator when the unit is the same); other
/// names belong to the broker crate and are accepted as is.
pub fn validate_broker_config(name: &str, value: &str) -> Result<(), MetaError> {
    if name.is_empty() {
        return Err(MetaError::invalid_config(
            name,
            "Broker config name must not be empty",
        ));
    }
    let Some((def, synonym)) = topic_config_for_broker_synonym(name) else {
        return Ok(());
    };
    if synonym.to_topic_unit_factor == 1 {
        parse_and_validate(name, def.config_type, def.validator, value)?;
    } else {
        parse_and_validate(name, ConfigType::Int, Validator::None, value)?;
    }
    Ok(())
}

pub fn topic_config_for_broker_synonym(
    broker_name: &str,
) -> Option<(&'static TopicConfigDef, &'static BrokerSynonym)> {
    TOPIC_CONFIGS.iter().find_map(|def| {
        def.broker_synonyms
            .iter()
            .find(|synonym| synonym.name == broker_name)
            .map(|synonym| (def, synonym))
    })
}

fn invalid_value(name: &str, value: &str, detail: impl std::fmt::Display) -> MetaError {
    MetaError::invalid_config(
        name,
        format!("Invalid value {value} for configuration {name}: {detail}"),
    )
}

fn parse_and_validate(
    name: &str,
    config_type: ConfigType,
    validator: Validator,
    value: &str,
) -> Result<ConfigValue, MetaError> {
    let parsed = parse_value(name, config_type, value)?;
    check_validator(name, value, &parsed, validator)?;
    Ok(parsed)
}

/// Parses like Kafka's `ConfigDef.parseType`: surrounding whitespace is ignored.
pub fn parse_value(
    name: &str,
    config_type: ConfigType,
    value: &str,
) -> Result<ConfigValue, MetaError> {
    let trimmed = value.trim();
    let not_a_number = || {
        invalid_value(
            name,
            value,
            format!("Not a number of type {}", config_type.kafka_name()),
        )
    };
    match config_type {
        ConfigType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Ok(ConfigValue::Boolean(true)),
            "false" => Ok(ConfigValue::Boolean(false)),
            _ => Err(invalid_value(
                name,
                value,
                "Expected value to be either true or false",
            )),
        },
        ConfigType::Int => trimmed
            .parse()
            .map(ConfigValue::Int)
            .map_err(|_| not_a_number()),
        ConfigType::Long => trimmed
            .parse()
            .map(ConfigValue::Long)
            .map_err(|_| not_a_number()),
        ConfigType::Double => match trimmed.parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(ConfigValue::Double(number)),
            _ => Err(not_a_number()),
        },
        ConfigType::String => Ok(ConfigValue::String(trimmed.to_string())),
        ConfigType::List => Ok(ConfigValue::List(parse_list(trimmed))),
    }
}

fn parse_list(trimmed: &str) -> Vec<String> {
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split(',')
        .map(|item| item.trim().to_string())
        .collect()
}

fn check_validator(
    name: &str,
    value: &str,
    parsed: &ConfigValue,
    validator: Validator,
) -> Result<(), MetaError> {
    let integer = match parsed {
        ConfigValue::Int(number) => Some(i64::from(*number)),
        ConfigValue::Long(number) => Some(*number),
        _ => None,
    };
    match (validator, parsed) {
        (Validator::None, _) => Ok(()),
        (Validator::AtLeast(min), _) => check_range(name, value, integer, Some(min), None),
        (Validator::Between(min, max), _) => {
            check_range(name, value, integer, Some(min), Some(max))
        }
        (Validator::DoubleBetween(min, max), ConfigValue::Double(number)) => {
            if *number < min {
                return Err(invalid_value(
                    name,
                    value,
                    format!("Value must be at least {min}"),
                ));
            }
            if *number > max {
                return Err(invalid_value(
                    name,
                    value,
                    format!("Value must be no more than {max}"),
                ));
            }
            Ok(())
        }
        (Validator::OneOf(allowed), ConfigValue::String(text)) => check_one_of(name, text, allowed),
        (Validator::ListOf(allowed), ConfigValue::List(items)) => items
            .iter()
            .try_for_each(|item| check_one_of(name, item, allowed)),
        (Validator::GzipLevel, ConfigValue::Int(level)) => {
            if *level == -1 || (1..=9).contains(level) {
                return Ok(());
            }
            Err(invalid_value(
                name,
                value,
                "Value must be between 1 and 9, or -1",
            ))
        }
        (Validator::ThrottledReplicas, ConfigValue::List(items)) => {
            check_throttled_replicas(name, value, items)
        }
        (Validator::UnsupportedWhenTrue(reason), ConfigValue::Boolean(enabled)) => {
            if *enabled {
                return Err(invalid_value(name, value, reason));
            }
            Ok(())
        }
        // A table entry pairing a validator with the wrong type is a bug in TOPIC_CONFIGS; the
        // table test catches it, and accepting is the safe choice at runtime.
        _ => Ok(()),
    }
}

fn check_range(
    name: &str,
    value: &str,
    number: Option<i64>,
    min: Option<i64>,
    max: Option<i64>,
) -> Result<(), MetaError> {
    let Some(number) = number else {
        return Ok(());
    };
    if let Some(min) = min.filter(|min| number < *min) {
        return Err(invalid_value(
            name,
            value,
            format!("Value must be at least {min}"),
        ));
    }
    if let Some(max) = max.filter(|max| number > *max) {
        return Err(invalid_value(
            name,
            value,
            format!("Value must be no more than {max}"),
        ));
    }
    Ok(())
}

fn check_one_of(name: &str, item: &str, allowed: &[&str]) -> Result<(), MetaError> {
    if allowed.contains(&item) {
        return Ok(());
    }
    Err(invalid_value(
        name,
        item,
        format!("String must be one of: {}", allowed.join(", ")),
    ))
}

fn check_throttled_replicas(name: &str, value: &str, items: &[String]) -> Result<(), MetaError> {
    let is_wildcard = items.len() == 1 && items.first().is_some_and(|item| item == "*");
    let all_pairs = items.iter().all(|item| {
        item.split_once(':').is_some_and(|(partition, broker)| {
            partition.trim().parse::<i32>().is_ok() && broker.trim().parse::<i32>().is_ok()
        })
    });
    if is_wildcard || all_pairs {
        return Ok(());
    }
    Err(invalid_value(
        name,
        value,
        format!("{name} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."),
    ))
}

/// DescribeConfigs `config_source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i8)]
pub enum ConfigSource {
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
    GroupConfig = 8,
}

impl ConfigSource {
    pub fn id(self) -> i8 {
        self as i8
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
}

/// One entry of a DescribeConfigs response for a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedConfig {
    pub name: &'static str,
    /// The effective value, in the topic config's unit.
    pub value: String,
    pub source: ConfigSource,
    pub config_type: ConfigType,
    pub read_only: bool,
    pub is_sensitive: bool,
    /// Highest precedence first; the first one is where `value` comes from (empty when the value
    /// is the topic config's own default).
    pub synonyms: Vec<ConfigSynonym>,
    pub documentation: &'static str,
}

/// The broker-level config sources a topic config can default from, highest precedence first.
#[derive(Clone, Copy, Debug)]
pub struct BrokerConfigLayers<'a> {
    /// Dynamic configs of this broker (`AlterBrokerConfigs { node_id: Some(id) }`).
    pub dynamic_broker: Option<&'a BTreeMap<String, String>>,
    /// Dynamic cluster default (`AlterBrokerConfigs { node_id: None }`).
    pub dynamic_default: Option<&'a BTreeMap<String, String>>,
    /// The broker's static config file.
    pub static_broker: Option<&'a BTreeMap<String, String>>,
}

impl<'a> BrokerConfigLayers<'a> {
    pub fn from_image(
        image: &'a MetadataImage,
        node_id: i32,
        static_broker: &'a BTreeMap<String, String>,
    ) -> BrokerConfigLayers<'a> {
        BrokerConfigLayers {
            dynamic_broker: image.dynamic_broker_configs(Some(node_id)),
            dynamic_default: image.dynamic_broker_configs(None),
            static_broker: Some(static_broker),
        }
    }

    fn sources(&self) -> [(Option<&'a BTreeMap<String, String>>, ConfigSource); 3] {
        [
            (self.dynamic_broker, ConfigSource::DynamicBrokerConfig),
            (
                self.dynamic_default,
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
            (self.static_broker, ConfigSource::StaticBrokerConfig),
        ]
    }

    /// Where a broker config's value comes from: dynamic per-broker, dynamic default, static.
    pub fn resolve_broker_config(&self, name: &str) -> Option<(String, ConfigSource)> {
        self.sources().into_iter().find_map(|(layer, source)| {
            layer
                .and_then(|configs| configs.get(name))
                .map(|value| (value.clone(), source))
        })
    }
}

/// Describes one topic config: effective value, its source, and the synonym chain.
pub fn describe_topic_config(
    def: &'static TopicConfigDef,
    topic_configs: &BTreeMap<String, String>,
    layers: &BrokerConfigLayers<'_>,
) -> DescribedConfig {
    let mut synonyms = Vec::new();
    // A value that is not in force (stored by an older Quill that accepted it) is not
    // described: the answer is what the partitions really do.
    let in_force = |value: &String| is_supported_value(def.name, value);
    if let Some(value) = topic_configs.get(def.name).filter(|value| in_force(value)) {
        synonyms.push(ConfigSynonym {
            name: def.name.to_string(),
            value: value.clone(),
            source: ConfigSource::TopicConfig,
        });
    }
    for (layer, source) in layers.sources() {
        for synonym in def.broker_synonyms {
            let value = layer.and_then(|configs| configs.get(synonym.name));
            let value = value.filter(|value| synonym.to_topic_unit_factor != 1 || in_force(value));
            if let Some(value) = value {
                synonyms.push(ConfigSynonym {
                    name: synonym.name.to_string(),
                    value: value.clone(),
                    source,
                });
            }
        }
    }
    for synonym in def.broker_synonyms {
        if let Some(value) = synonym.broker_default {
            synonyms.push(ConfigSynonym {
                name: synonym.name.to_string(),
                value: value.to_string(),
                source: ConfigSource::DefaultConfig,
            });
        }
    }
    // A broker value that does not convert (bad static file) is skipped, not fatal: describing
    // must always answer, and the broker validates its static file at startup.
    let effective = synonyms
        .iter()
        .find_map(|synonym| to_topic_value(def, synonym).map(|value| (value, synonym.source)));
    let (value, source) =
        effective.unwrap_or_else(|| (def.default.to_string(), ConfigSource::DefaultConfig));
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
}

fn to_topic_value(def: &TopicConfigDef, synonym: &ConfigSynonym) -> Option<String> {
    let factor = if synonym.source == ConfigSource::TopicConfig {
        1
    } else {
        def.broker_synonyms
            .iter()
            .find(|candidate| candidate.name == synonym.name)
            .map_or(1, |candidate| candidate.to_topic_unit_factor)
    };
    if parse_value(def.name, def.config_type, &synonym.value).is_err() && factor == 1 {
        return None;
    }
    if factor == 1 {
        return Some(synonym.value.trim().to_string());
    }
    let units: i64 = synonym.value.trim().parse().ok()?;
    // Kafka turns any negative retention into -1 (unlimited).
    let converted = units.checked_mul(factor).map_or(-1, |ms| ms.max(-1));
    Some(converted.to_string())
}

/// Describes every supported topic config, sorted by name; internal ones only when the topic
/// sets them (as Kafka's `resolveEffectiveTopicConfigs`).
pub fn describe_topic_configs(
    topic_configs: &BTreeMap<String, String>,
    layers: &BrokerConfigLayers<'_>,
) -> Vec<DescribedConfig> {
    TOPIC_CONFIGS
        .iter()
        .filter(|def| !is_internal(def.name) || topic_configs.contains_key(def.name))
        .map(|def| describe_topic_config(def, topic_configs, layers))
        .collect()
}

/// Effective values of every supported topic config, by name (for building a log config).
pub fn effective_topic_configs(
    topic_configs: &BTreeMap<String, String>,
    layers: &BrokerConfigLayers<'_>,
) -> BTreeMap<&'static str, String> {
    describe_topic_configs(topic_configs, layers)
        .into_iter()
        .map(|described| (described.name, described.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_message(result: Result<impl std::fmt::Debug, MetaError>) -> String {
        match result {
            Err(error @ MetaError::InvalidConfig { .. }) => {
                assert_eq!(error.kafka_error_code(), 40);
                error.to_string()
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn table_is_sorted_unique_and_defaults_are_valid() {
        for pair in TOPIC_CONFIGS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} {}",
                pair[0].name,
                pair[1].name
            );
        }
        for def in TOPIC_CONFIGS.iter().filter(|def| !is_internal(def.name)) {
            validate_topic_config(def.name, def.default)
                .unwrap_or_else(|error| panic!("default of {}: {error}", def.name));
            for synonym in def.broker_synonyms {
                if let Some(default) = synonym.broker_default {
                    validate_broker_config(synonym.name, default).unwrap();
                }
            }
        }
    }

    /// Every config has a decision: in force (each has an effect test in
    /// crates/quill/tests/topic_config_effects.rs) or default-only (any other value refused).
    #[test]
    fn every_config_is_in_force_or_refused_when_not_default() {
        for def in TOPIC_CONFIGS {
            let decision =
                support(def.name).unwrap_or_else(|| panic!("{} has no support decision", def.name));
            check_supported(def.name, def.default).unwrap();
            if let Support::DefaultOnly(reason) = decision {
                let other = match def.config_type {
                    ConfigType::Boolean => "true",
                    ConfigType::List => "0:1",
                    _ => "12345",
                };
                let message = config_message(check_supported(def.name, other));
                assert!(
                    message.contains("does not support") && message.contains(reason),
                    "{message}"
                );
                assert!(!is_supported_value(def.name, other));
            }
        }
        assert_eq!(support("no.such.config"), None);
        check_supported("preallocate", " FALSE ").unwrap();
        check_supported("local.retention.ms", "-2").unwrap();
        check_supported("leader.replication.throttled.replicas", "").unwrap();
        assert_eq!(
            config_message(check_supported("preallocate", "true")),
            "Invalid value true for configuration preallocate: Quill does not support preallocate yet (segment files grow as data is appended); only the default (false) is accepted"
        );
        assert!(
            config_message(check_supported_broker_config("log.preallocate", "true"))
                .starts_with("Invalid value true for configuration log.preallocate:")
        );
        check_supported_broker_config("log.preallocate", "false").unwrap();
        check_supported_broker_config("log.retention.hours", "5").unwrap();
        check_supported_broker_config("num.io.threads", "5").unwrap();
    }

    #[test]
    fn values_not_in_force_are_described_as_the_default() {
        // An older Quill accepted (and stored) preallocate=true: it still replays, but is
        // described as what is in force.
        let topic = map(&[("preallocate", "true"), ("retention.ms", "5")]);
        let static_broker = map(&[("unclean.leader.election.enable", "true")]);
        let layers = BrokerConfigLayers {
            dynamic_broker: None,
            dynamic_default: None,
            static_broker: Some(&static_broker),
        };
        let preallocate = describe("preallocate", &topic, &layers);
        assert_eq!(
            (preallocate.value.as_str(), preallocate.source),
            ("false", ConfigSource::DefaultConfig)
        );
        // In force (the controller's elections): the static broker default shows.
        let unclean = describe("unclean.leader.election.enable", &topic, &layers);
        assert_eq!(unclean.value, "true");
        assert_eq!(describe("retention.ms", &topic, &layers).value, "5");
    }

    #[test]
    fn validator_matches_type() {
        for def in TOPIC_CONFIGS {
            let consistent = match def.validator {
                Validator::None => true,
                Validator::AtLeast(_) | Validator::Between(..) | Validator::GzipLevel => {
                    matches!(def.config_type, ConfigType::Int | ConfigType::Long)
                }
                Validator::DoubleBetween(..) => def.config_type == ConfigType::Double,
                Validator::OneOf(_) => def.config_type == ConfigType::String,
                Validator::ListOf(_) | Validator::ThrottledReplicas => {
                    def.config_type == ConfigType::List
                }
                Validator::UnsupportedWhenTrue(_) => def.config_type == ConfigType::Boolean,
            };
            assert!(consistent, "{}", def.name);
        }
    }

    #[test]
    fn unknown_name_is_invalid_config() {
        assert_eq!(
            config_message(validate_topic_config("retention.mss", "1")),
            "Unknown topic config name: retention.mss"
        );
    }

    #[test]
    fn not_a_number_messages() {
        assert_eq!(
            config_message(validate_topic_config("retention.ms", "abc")),
            "Invalid value abc for configuration retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            config_message(validate_topic_config("segment.bytes", "1e9")),
            "Invalid value 1e9 for configuration segment.bytes: Not a number of type INT"
        );
        assert_eq!(
            config_message(validate_topic_config("segment.bytes", "4294967296")),
            "Invalid value 4294967296 for configuration segment.bytes: Not a number of type INT"
        );
        assert!(
            config_message(validate_topic_config("min.cleanable.dirty.ratio", "NaN"))
                .contains("Not a number of type DOUBLE")
        );
    }

    #[test]
    fn range_messages() {
        assert_eq!(
            config_message(validate_topic_config("retention.ms", "-2")),
            "Invalid value -2 for configuration retention.ms: Value must be at least -1"
        );
        assert_eq!(
            config_message(validate_topic_config("segment.bytes", "1000")),
            "Invalid value 1000 for configuration segment.bytes: Value must be at least 1048576"
        );
        assert!(
            config_message(validate_topic_config("compression.lz4.level", "18"))
                .ends_with("Value must be no more than 17")
        );
        assert!(
            config_message(validate_topic_config("min.cleanable.dirty.ratio", "1.5"))
                .ends_with("Value must be no more than 1")
        );
        assert!(
            config_message(validate_topic_config("min.cleanable.dirty.ratio", "-0.1"))
                .ends_with("Value must be at least 0")
        );
        assert!(
            config_message(validate_topic_config("compression.gzip.level", "0"))
                .ends_with("Value must be between 1 and 9, or -1")
        );
        validate_topic_config("compression.gzip.level", "-1").unwrap();
        validate_topic_config("retention.ms", " -1 ").unwrap();
        validate_topic_config("retention.bytes", "-12345").unwrap();
    }

    #[test]
    fn string_and_list_messages() {
        assert_eq!(
            config_message(validate_topic_config("message.timestamp.type", "Now")),
            "Invalid value Now for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"
        );
        assert_eq!(
            config_message(validate_topic_config("cleanup.policy", "compact,remove")),
            "Invalid value remove for configuration cleanup.policy: String must be one of: compact, delete"
        );
        validate_topic_config("cleanup.policy", "compact, delete").unwrap();
        assert!(
            config_message(validate_topic_config("compression.type", "brotli"))
                .contains("String must be one of")
        );
    }

    #[test]
    fn boolean_messages() {
        assert_eq!(
            config_message(validate_topic_config("preallocate", "yes")),
            "Invalid value yes for configuration preallocate: Expected value to be either true or false"
        );
        validate_topic_config("preallocate", "TRUE").unwrap();
        assert!(
            config_message(validate_topic_config("remote.storage.enable", "true"))
                .contains("does not support")
        );
        validate_topic_config("remote.storage.enable", "false").unwrap();
    }

    #[test]
    fn throttled_replicas() {
        validate_topic_config("leader.replication.throttled.replicas", "*").unwrap();
        validate_topic_config("leader.replication.throttled.replicas", "0:1, 1:2").unwrap();
        validate_topic_config("leader.replication.throttled.replicas", "").unwrap();
        assert!(config_message(validate_topic_config(
            "follower.replication.throttled.replicas",
            "0-1"
        ))
        .contains("must be the literal '*'"));
    }

    #[test]
    fn compaction_lag_order() {
        validate_topic_configs(&map(&[
            ("min.compaction.lag.ms", "10"),
            ("max.compaction.lag.ms", "10"),
        ]))
        .unwrap();
        assert_eq!(
            config_message(validate_topic_configs(&map(&[
                ("min.compaction.lag.ms", "11"),
                ("max.compaction.lag.ms", "10")
            ]))),
            "conflict topic config setting min.compaction.lag.ms (11) > max.compaction.lag.ms (10)"
        );
        validate_topic_configs(&map(&[("min.compaction.lag.ms", "1000000")])).unwrap();
    }

    #[test]
    fn broker_config_validation() {
        validate_broker_config("log.retention.hours", "24").unwrap();
        validate_broker_config("log.retention.ms", "-1").unwrap();
        validate_broker_config("num.io.threads", "anything").unwrap();
        assert_eq!(
            config_message(validate_broker_config("log.retention.hours", "x")),
            "Invalid value x for configuration log.retention.hours: Not a number of type INT"
        );
        assert!(
            config_message(validate_broker_config("log.segment.bytes", "10"))
                .contains("log.segment.bytes: Value must be at least 1048576")
        );
        assert!(config_message(validate_broker_config("", "1")).contains("empty"));
    }

    fn describe(
        name: &str,
        topic: &BTreeMap<String, String>,
        layers: &BrokerConfigLayers<'_>,
    ) -> DescribedConfig {
        describe_topic_config(lookup(name).unwrap(), topic, layers)
    }

    #[test]
    fn describe_uses_default_when_nothing_is_set() {
        let none = BrokerConfigLayers {
            dynamic_broker: None,
            dynamic_default: None,
            static_broker: None,
        };
        let described = describe("retention.ms", &BTreeMap::new(), &none);
        assert_eq!(described.value, "604800000");
        assert_eq!(described.source, ConfigSource::DefaultConfig);
        assert_eq!(
            described.synonyms,
            vec![ConfigSynonym {
                name: "log.retention.hours".into(),
                value: "168".into(),
                source: ConfigSource::DefaultConfig
            }]
        );
        let throttled = describe(
            "leader.replication.throttled.replicas",
            &BTreeMap::new(),
            &none,
        );
        assert_eq!(throttled.value, "");
        assert_eq!(throttled.source, ConfigSource::DefaultConfig);
        assert!(throttled.synonyms.is_empty());
    }

    #[test]
    fn describe_precedence_topic_dynamic_default_static() {
        let topic = map(&[("retention.ms", "1000")]);
        let dynamic_broker = map(&[("log.retention.minutes", "2")]);
        let dynamic_default = map(&[("log.retention.ms", "3000")]);
        let static_broker = map(&[("log.retention.hours", "4")]);
        let all = BrokerConfigLayers {
            dynamic_broker: Some(&dynamic_broker),
            dynamic_default: Some(&dynamic_default),
            static_broker: Some(&static_broker),
        };
        let with_topic = describe("retention.ms", &topic, &all);
        assert_eq!(
            (with_topic.value.as_str(), with_topic.source),
            ("1000", ConfigSource::TopicConfig)
        );
        let sources: Vec<_> = with_topic.synonyms.iter().map(|s| s.source).collect();
        assert_eq!(
            sources,
            vec![
                ConfigSource::TopicConfig,
                ConfigSource::DynamicBrokerConfig,
                ConfigSource::DynamicDefaultBrokerConfig,
                ConfigSource::StaticBrokerConfig,
                ConfigSource::DefaultConfig
            ]
        );

        let dynamic = describe("retention.ms", &BTreeMap::new(), &all);
        assert_eq!(
            (dynamic.value.as_str(), dynamic.source),
            ("120000", ConfigSource::DynamicBrokerConfig)
        );

        let without_broker = BrokerConfigLayers {
            dynamic_broker: None,
            ..all
        };
        let default = describe("retention.ms", &BTreeMap::new(), &without_broker);
        assert_eq!(
            (default.value.as_str(), default.source),
            ("3000", ConfigSource::DynamicDefaultBrokerConfig)
        );

        let static_only = BrokerConfigLayers {
            dynamic_broker: None,
            dynamic_default: None,
            ..all
        };
        let from_file = describe("retention.ms", &BTreeMap::new(), &static_only);
        assert_eq!(
            (from_file.value.as_str(), from_file.source),
            ("14400000", ConfigSource::StaticBrokerConfig)
        );
    }

    #[test]
    fn describe_within_a_source_prefers_the_first_synonym() {
        let static_broker = map(&[("log.retention.hours", "1"), ("log.retention.ms", "5")]);
        let layers = BrokerConfigLayers {
            dynamic_broker: None,
            dynamic_default: None,
            static_broker: Some(&static_broker),
        };
        let described = describe("retention.ms", &BTreeMap::new(), &layers);
        assert_eq!(described.value, "5");
        assert_eq!(described.synonyms[0].name, "log.retention.ms");
    }

    #[test]
    fn describe_negative_hours_means_unlimited_and_bad_static_is_skipped() {
        let static_broker = map(&[("log.retention.hours", "-5"), ("log.segment.bytes", "junk")]);
        let layers = BrokerConfigLayers {
            dynamic_broker: None,
            dynamic_default: None,
            static_broker: Some(&static_broker),
        };
        assert_eq!(
            describe("retention.ms", &BTreeMap::new(), &layers).value,
            "-1"
        );
        let segment = describe("segment.bytes", &BTreeMap::new(), &layers);
        assert_eq!(
            (segment.value.as_str(), segment.source),
            ("1073741824", ConfigSource::DefaultConfig)
        );
    }

    #[test]
    fn describe_all_and_effective_cover_every_config() {
        let image = MetadataImage::empty("c");
        let static_broker = BTreeMap::new();
        let layers = BrokerConfigLayers::from_image(&image, 1, &static_broker);
        let all = describe_topic_configs(&BTreeMap::new(), &layers);
        let internal = TOPIC_CONFIGS.iter().filter(|def| is_internal(def.name));
        assert_eq!(all.len(), TOPIC_CONFIGS.len() - internal.count());
        let effective = effective_topic_configs(&map(&[("segment.ms", "5")]), &layers);
        assert_eq!(effective["segment.ms"], "5");
        assert_eq!(effective["max.message.bytes"], "1048588");
        assert_eq!(ConfigSource::StaticBrokerConfig.id(), 4);
    }

    #[test]
    fn internal_segment_bytes_is_described_only_when_set_and_has_no_minimum() {
        let image = MetadataImage::empty("c");
        let static_broker = BTreeMap::new();
        let layers = BrokerConfigLayers::from_image(&image, 1, &static_broker);
        let unset = describe_topic_configs(&BTreeMap::new(), &layers);
        assert!(unset
            .iter()
            .all(|config| config.name != INTERNAL_SEGMENT_BYTES));
        assert!(!effective_topic_configs(&BTreeMap::new(), &layers)
            .contains_key(INTERNAL_SEGMENT_BYTES));

        let topic = map(&[(INTERNAL_SEGMENT_BYTES, "10000")]);
        validate_topic_configs(&topic).unwrap();
        check_supported_topic_configs(&topic).unwrap();
        let described = describe(INTERNAL_SEGMENT_BYTES, &topic, &layers);
        assert_eq!(
            (described.value.as_str(), described.source),
            ("10000", ConfigSource::TopicConfig)
        );
        let effective = effective_topic_configs(&topic, &layers);
        assert_eq!(effective[INTERNAL_SEGMENT_BYTES], "10000");
        assert_eq!(effective["segment.bytes"], "1073741824");
        assert_eq!(
            config_message(validate_topic_config(INTERNAL_SEGMENT_BYTES, "big")),
            "Invalid value big for configuration internal.segment.bytes: Not a number of type INT"
        );
    }

    #[test]
    fn resolve_broker_config_precedence() {
        let dynamic_default = map(&[("a", "2")]);
        let static_broker = map(&[("a", "3"), ("b", "4")]);
        let layers = BrokerConfigLayers {
            dynamic_broker: None,
            dynamic_default: Some(&dynamic_default),
            static_broker: Some(&static_broker),
        };
        assert_eq!(
            layers.resolve_broker_config("a"),
            Some(("2".into(), ConfigSource::DynamicDefaultBrokerConfig))
        );
        assert_eq!(
            layers.resolve_broker_config("b"),
            Some(("4".into(), ConfigSource::StaticBrokerConfig))
        );
        assert_eq!(layers.resolve_broker_config("c"), None);
    }
}
