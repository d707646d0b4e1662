//! Broker settings that change at runtime besides the broker defaults of topic configs.
//!
//! - [`RUNTIME_SETTINGS`]: Quill settings Kafka changes at runtime and Quill applies from the
//!   metadata image (`max.connections`, `producer.id.expiration.ms`, `background.threads`).
//! - [`STORED_ONLY`]: Kafka's per-broker dynamic SASL settings, which Quill accepts, validates,
//!   stores (metadata records) and describes, but which change nothing — truthfully so: in
//!   Kafka too they act only on SASL listeners (Kerberos re-login, OAuth token refresh), and
//!   Quill, like a Kafka broker with only PLAINTEXT listeners, has none. Kafka 4.0 accepts them
//!   at runtime (`DynamicListenerConfig.ReconfigurableConfigs`), per broker only, and clients
//!   rely on that (librdkafka's `0081_admin` alters `sasl.kerberos.min.time.before.relogin`).
//!
//! Every other broker setting that Kafka can change at runtime but Quill cannot apply is
//! refused with INVALID_CONFIG and a message saying so.

use quill_meta::topic_config::{parse_value, ConfigType, ConfigValue};
use quill_meta::MetaError;

pub struct StoredOnlySetting {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// Kafka's default (`None`: null).
    pub default: Option<&'static str>,
    /// Inclusive bounds for numbers, as Kafka's validators.
    pub range: Option<(f64, f64)>,
}

const fn setting(
    name: &'static str,
    config_type: ConfigType,
    default: Option<&'static str>,
    range: Option<(f64, f64)>,
) -> StoredOnlySetting {
    StoredOnlySetting {
        name,
        config_type,
        default,
        range,
    }
}

/// Sorted by name.
pub static STORED_ONLY: &[StoredOnlySetting] = &[
    setting(
        "sasl.enabled.mechanisms",
        ConfigType::List,
        Some("GSSAPI"),
        None,
    ),
    setting(
        "sasl.kerberos.kinit.cmd",
        ConfigType::String,
        Some("/usr/bin/kinit"),
        None,
    ),
    setting(
        "sasl.kerberos.min.time.before.relogin",
        ConfigType::Long,
        Some("60000"),
        None,
    ),
    setting(
        "sasl.kerberos.principal.to.local.rules",
        ConfigType::List,
        Some("DEFAULT"),
        None,
    ),
    setting("sasl.kerberos.service.name", ConfigType::String, None, None),
    setting(
        "sasl.kerberos.ticket.renew.jitter",
        ConfigType::Double,
        Some("0.05"),
        None,
    ),
    setting(
        "sasl.kerberos.ticket.renew.window.factor",
        ConfigType::Double,
        Some("0.8"),
        None,
    ),
    setting(
        "sasl.login.refresh.buffer.seconds",
        ConfigType::Int,
        Some("300"),
        Some((0.0, 3600.0)),
    ),
    setting(
        "sasl.login.refresh.min.period.seconds",
        ConfigType::Int,
        Some("60"),
        Some((0.0, 900.0)),
    ),
    setting(
        "sasl.login.refresh.window.factor",
        ConfigType::Double,
        Some("0.8"),
        Some((0.5, 1.0)),
    ),
    setting(
        "sasl.login.refresh.window.jitter",
        ConfigType::Double,
        Some("0.05"),
        Some((0.0, 0.25)),
    ),
    setting(
        "sasl.mechanism.inter.broker.protocol",
        ConfigType::String,
        Some("GSSAPI"),
        None,
    ),
];

/// Quill settings (besides the broker defaults of topic configs) that Kafka changes at runtime
/// and Quill applies from the metadata image, per broker or cluster-wide: (name, type,
/// minimum).
pub static RUNTIME_SETTINGS: &[(&str, ConfigType, i64)] = &[
    // Read by every maintenance pass: how many threads share it (Kafka: DynamicThreadPool).
    ("background.threads", ConfigType::Int, 1),
    // Read at every accepted connection (Kafka: a cluster-level listener config).
    ("max.connections", ConfigType::Int, 0),
    // Read by every maintenance pass (Kafka: DynamicProducerStateManagerConfig).
    ("producer.id.expiration.ms", ConfigType::Int, 1),
];

pub fn is_runtime_setting(name: &str) -> bool {
    RUNTIME_SETTINGS
        .iter()
        .any(|(runtime, ..)| *runtime == name)
}

/// The value in force of a runtime setting: this broker's dynamic value, else the cluster
/// default, else `static_value`.
pub fn runtime_value(
    image: &quill_meta::MetadataImage,
    node_id: i32,
    name: &str,
    static_value: i64,
) -> i64 {
    [Some(node_id), None]
        .into_iter()
        .filter_map(|target| image.dynamic_broker_configs(target))
        .find_map(|configs| configs.get(name))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(static_value)
}

/// What DescribeConfigs says about each of them.
pub const DOCUMENTATION: &str = "Stored only: it configures SASL listeners, and Quill (like a \
Kafka broker with only PLAINTEXT listeners) has none, so it has no effect.";

pub fn lookup(name: &str) -> Option<&'static StoredOnlySetting> {
    STORED_ONLY.iter().find(|setting| setting.name == name)
}

/// The default of a LIST-typed stored-only setting (for APPEND/SUBTRACT).
pub fn list_default(name: &str) -> Option<&'static str> {
    lookup(name)
        .filter(|setting| setting.config_type == ConfigType::List)
        .map(|setting| setting.default.unwrap_or(""))
}

fn invalid(name: &str, message: String) -> MetaError {
    MetaError::InvalidConfig {
        name: name.to_string(),
        message,
    }
}

/// Validates a value with Kafka's type and range.
pub fn validate(name: &str, value: &str) -> Result<(), MetaError> {
    if let Some((_, config_type, min)) = RUNTIME_SETTINGS
        .iter()
        .find(|(runtime, ..)| *runtime == name)
    {
        let number = match parse_value(name, *config_type, value)? {
            ConfigValue::Int(number) => i64::from(number),
            ConfigValue::Long(number) => number,
            _ => return Ok(()),
        };
        if number < *min {
            return Err(invalid(
                name,
                format!(
                    "Invalid value {value} for configuration {name}: Value must be at least {min}"
                ),
            ));
        }
        return Ok(());
    }
    let Some(setting) = lookup(name) else {
        return Ok(());
    };
    let number = match parse_value(name, setting.config_type, value)? {
        ConfigValue::Int(number) => Some(f64::from(number)),
        // i64 → f64 may round, which cannot move a value across these small bounds.
        ConfigValue::Long(number) => Some(number as f64),
        ConfigValue::Double(number) => Some(number),
        _ => None,
    };
    if let (Some(number), Some((min, max))) = (number, setting.range) {
        if number < min {
            return Err(invalid(
                name,
                format!(
                    "Invalid value {value} for configuration {name}: Value must be at least {min}"
                ),
            ));
        }
        if number > max {
            return Err(invalid(
                name,
                format!("Invalid value {value} for configuration {name}: Value must be no more than {max}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_defaults_valid_and_ranges_enforced() {
        for pair in STORED_ONLY.windows(2) {
            assert!(pair[0].name < pair[1].name);
        }
        for setting in STORED_ONLY {
            if let Some(default) = setting.default {
                validate(setting.name, default).unwrap();
            }
        }
        validate("sasl.kerberos.min.time.before.relogin", "58000").unwrap();
        assert!(validate("sasl.kerberos.min.time.before.relogin", "soon").is_err());
        assert!(validate("sasl.login.refresh.window.factor", "0.4").is_err());
        assert!(validate("sasl.login.refresh.buffer.seconds", "3601").is_err());
        assert_eq!(list_default("sasl.enabled.mechanisms"), Some("GSSAPI"));
        assert_eq!(list_default("sasl.kerberos.kinit.cmd"), None);
        validate("producer.id.expiration.ms", "1").unwrap();
        assert!(validate("producer.id.expiration.ms", "0").is_err());
        assert!(validate("producer.id.expiration.ms", "soon").is_err());
        validate("max.connections", "0").unwrap();
        assert!(validate("max.connections", "4294967296").is_err(), "an INT");

        let image = quill_meta::MetadataImage::empty("c");
        assert_eq!(runtime_value(&image, 1, "producer.id.expiration.ms", 7), 7);
        let set = |node_id, value: &str| quill_meta::MetadataRecord::AlterBrokerConfigs {
            node_id,
            set: [("producer.id.expiration.ms".to_string(), value.to_string())].into(),
            delete: Vec::new(),
        };
        let image = quill_meta::apply(&image, &set(None, "5")).unwrap();
        assert_eq!(runtime_value(&image, 1, "producer.id.expiration.ms", 7), 5);
        let image = quill_meta::apply(&image, &set(Some(1), "3")).unwrap();
        assert_eq!(runtime_value(&image, 1, "producer.id.expiration.ms", 7), 3);
    }
}
