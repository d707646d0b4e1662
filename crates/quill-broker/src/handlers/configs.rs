//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topic and broker resources.
//!
//! Topic configs and dynamic broker configs live in the metadata image (changed only through
//! metadata records); static broker settings come from the broker's start-up configuration.
//! Effective values and their sources are resolved by quill-meta's `topic_config`, so what
//! DescribeConfigs reports is exactly what the partition logs are configured with.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use quill_meta::topic_config::{self, BrokerConfigLayers, ConfigSource};
use quill_meta::{MetaError, MetadataImage, MetadataRecord};

use crate::state::BrokerState;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

const OPERATION_SET: i8 = 0;
const OPERATION_DELETE: i8 = 1;
const OPERATION_APPEND: i8 = 2;
const OPERATION_SUBTRACT: i8 = 3;

/// DescribeConfigs v3 is the first version with `config_type` and documentation.
const FIRST_VERSION_WITH_TYPES: i16 = 3;

fn text(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

/// A resource-level failure: Kafka error code plus a message for the client.
struct ResourceError {
    code: i16,
    message: String,
}

impl From<MetaError> for ResourceError {
    fn from(error: MetaError) -> Self {
        ResourceError {
            code: error.kafka_error_code(),
            message: error.to_string(),
        }
    }
}

fn invalid_request(message: impl Into<String>) -> ResourceError {
    ResourceError {
        code: ResponseError::InvalidRequest.code(),
        message: message.into(),
    }
}

/// Broker resources are named by node id; the empty name is the cluster-wide default.
fn broker_target(state: &BrokerState, resource_name: &str) -> Result<Option<i32>, ResourceError> {
    if resource_name.is_empty() {
        return Ok(None);
    }
    let node_id: i32 = resource_name
        .parse()
        .map_err(|_| invalid_request(format!("Invalid broker id {resource_name}")))?;
    if node_id != state.config.node_id {
        return Err(invalid_request(format!(
            "Unexpected broker id, expected {} but received {node_id}",
            state.config.node_id
        )));
    }
    Ok(Some(node_id))
}

// ---- DescribeConfigs ----

pub fn describe_configs(
    state: &BrokerState,
    request: DescribeConfigsRequest,
    api_version: i16,
) -> DescribeConfigsResponse {
    let image = state.image();
    let static_settings = state.config.static_settings();
    let layers = BrokerConfigLayers::from_image(&image, state.config.node_id, &static_settings);
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let keys: Option<Vec<String>> = resource
                .configuration_keys
                .map(|keys| keys.iter().map(ToString::to_string).collect());
            let name = resource.resource_name.to_string();
            let described = match resource.resource_type {
                RESOURCE_TOPIC => describe_topic(&image, &layers, &name),
                RESOURCE_BROKER => describe_broker(state, &image, &name),
                other => Err(invalid_request(format!(
                    "Unsupported resource type {other}"
                ))),
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name);
            match described {
                Ok(entries) => result.with_configs(
                    entries
                        .into_iter()
                        .filter(|entry| match &keys {
                            None => true,
                            Some(keys) => keys.contains(&entry.name),
                        })
                        .map(|entry| {
                            entry.into_response(
                                api_version,
                                request.include_synonyms,
                                request.include_documentation,
                            )
                        })
                        .collect(),
                ),
                Err(error) => result
                    .with_error_code(error.code)
                    .with_error_message(Some(text(error.message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// One described config, independent of the response version.
struct ConfigEntry {
    name: String,
    value: Option<String>,
    source: i8,
    read_only: bool,
    config_type: i8,
    synonyms: Vec<(String, String, i8)>,
    documentation: Option<String>,
}

impl ConfigEntry {
    fn into_response(
        self,
        api_version: i16,
        include_synonyms: bool,
        include_documentation: bool,
    ) -> DescribeConfigsResourceResult {
        let synonyms = if include_synonyms {
            self.synonyms
                .into_iter()
                .map(|(name, value, source)| {
                    DescribeConfigsSynonym::default()
                        .with_name(text(name))
                        .with_value(Some(text(value)))
                        .with_source(source)
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut result = DescribeConfigsResourceResult::default()
            .with_name(text(self.name))
            .with_value(self.value.map(text))
            .with_read_only(self.read_only)
            .with_config_source(self.source)
            .with_synonyms(synonyms);
        if api_version >= FIRST_VERSION_WITH_TYPES {
            result = result.with_config_type(self.config_type);
            if include_documentation {
                result = result.with_documentation(self.documentation.map(text));
            }
        }
        result
    }
}

fn describe_topic(
    image: &MetadataImage,
    layers: &BrokerConfigLayers<'_>,
    name: &str,
) -> Result<Vec<ConfigEntry>, ResourceError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| ResourceError::from(MetaError::UnknownTopic(name.to_string())))?;
    Ok(topic_config::describe_topic_configs(&topic.configs, layers)
        .into_iter()
        .map(|described| ConfigEntry {
            name: described.name.to_string(),
            value: Some(described.value),
            source: described.source.id(),
            read_only: described.read_only,
            config_type: described.config_type.describe_configs_id(),
            synonyms: described
                .synonyms
                .into_iter()
                .map(|synonym| (synonym.name, synonym.value, synonym.source.id()))
                .collect(),
            documentation: Some(described.documentation.to_string()),
        })
        .collect())
}

/// Kafka's `config_type` ids for broker settings (BOOLEAN=1, STRING=2, INT=3, LONG=5, LIST=7).
fn broker_setting_type(name: &str) -> i8 {
    match name {
        "auto.create.topics.enable" => 1,
        "log.dirs" | "listeners" | "advertised.listeners" => 7,
        "log.message.timestamp.type" => 2,
        "log.retention.ms"
        | "log.retention.bytes"
        | "log.roll.ms"
        | "log.flush.interval.messages"
        | "log.flush.interval.ms"
        | "log.flush.scheduler.interval.ms"
        | "log.retention.check.interval.ms"
        | "connections.max.idle.ms"
        | "shutdown.timeout.ms" => 5,
        _ => 3,
    }
}

/// Settings that can be changed at runtime: those topic configs default from.
fn is_dynamic_broker_setting(name: &str) -> bool {
    topic_config::topic_config_for_broker_synonym(name).is_some()
}

fn describe_broker(
    state: &BrokerState,
    image: &MetadataImage,
    resource_name: &str,
) -> Result<Vec<ConfigEntry>, ResourceError> {
    let target = broker_target(state, resource_name)?;
    let dynamic_default = image.dynamic_broker_configs(None);
    let empty = BTreeMap::new();
    let Some(node_id) = target else {
        // The cluster-default resource lists only dynamic defaults, as Kafka does.
        return Ok(dynamic_default
            .unwrap_or(&empty)
            .iter()
            .map(|(name, value)| ConfigEntry {
                name: name.clone(),
                value: Some(value.clone()),
                source: ConfigSource::DynamicDefaultBrokerConfig.id(),
                read_only: false,
                config_type: broker_setting_type(name),
                synonyms: vec![(
                    name.clone(),
                    value.clone(),
                    ConfigSource::DynamicDefaultBrokerConfig.id(),
                )],
                documentation: None,
            })
            .collect());
    };
    let dynamic_broker = image.dynamic_broker_configs(Some(node_id));
    let mut entries: BTreeMap<String, ConfigEntry> = BTreeMap::new();
    for (name, value) in state.config.describe() {
        let name = name.as_str();
        let static_source = if state.config.explicitly_set.contains(name) {
            ConfigSource::StaticBrokerConfig
        } else {
            ConfigSource::DefaultConfig
        };
        entries.insert(
            name.to_string(),
            broker_entry(name, value, static_source, dynamic_broker, dynamic_default),
        );
    }
    // Dynamic settings Quill has no static field for (e.g. log.cleanup.policy).
    for layer in [dynamic_broker, dynamic_default].into_iter().flatten() {
        for name in layer.keys() {
            if !entries.contains_key(name) {
                let entry = broker_entry(
                    name,
                    None,
                    ConfigSource::DefaultConfig,
                    dynamic_broker,
                    dynamic_default,
                );
                entries.insert(name.clone(), entry);
            }
        }
    }
    Ok(entries.into_values().collect())
}

/// One broker setting: the dynamic per-broker value wins over the dynamic default, which wins
/// over the static value.
fn broker_entry(
    name: &str,
    static_value: Option<String>,
    static_source: ConfigSource,
    dynamic_broker: Option<&BTreeMap<String, String>>,
    dynamic_default: Option<&BTreeMap<String, String>>,
) -> ConfigEntry {
    let mut synonyms = Vec::new();
    if let Some(value) = dynamic_broker.and_then(|configs| configs.get(name)) {
        synonyms.push((
            name.to_string(),
            value.clone(),
            ConfigSource::DynamicBrokerConfig.id(),
        ));
    }
    if let Some(value) = dynamic_default.and_then(|configs| configs.get(name)) {
        synonyms.push((
            name.to_string(),
            value.clone(),
            ConfigSource::DynamicDefaultBrokerConfig.id(),
        ));
    }
    if let Some(value) = &static_value {
        synonyms.push((name.to_string(), value.clone(), static_source.id()));
    }
    let (value, source) = synonyms
        .first()
        .map_or((static_value, static_source.id()), |(_, value, source)| {
            (Some(value.clone()), *source)
        });
    ConfigEntry {
        name: name.to_string(),
        value,
        source,
        read_only: !is_dynamic_broker_setting(name),
        config_type: broker_setting_type(name),
        synonyms,
        documentation: crate::config::SETTINGS
            .iter()
            .find(|setting| setting.name == name)
            .map(|setting| setting.description.to_string()),
    }
}

// ---- AlterConfigs / IncrementalAlterConfigs ----

/// A requested change to one resource, after resolving the operation semantics.
struct ConfigChange {
    set: BTreeMap<String, String>,
    delete: Vec<String>,
}

/// Turns a change into the metadata record that performs it (validated by the state machine).
fn change_record(
    state: &BrokerState,
    image: &MetadataImage,
    resource_type: i8,
    resource_name: &str,
    change: ConfigChange,
) -> Result<MetadataRecord, ResourceError> {
    match resource_type {
        RESOURCE_TOPIC => {
            let topic = image.topic(resource_name).ok_or_else(|| {
                ResourceError::from(MetaError::UnknownTopic(resource_name.to_string()))
            })?;
            for (name, value) in &change.set {
                topic_config::validate_topic_config(name, value)?;
            }
            Ok(MetadataRecord::AlterTopicConfigs {
                topic_id: topic.topic_id,
                set: change.set,
                delete: change.delete,
            })
        }
        RESOURCE_BROKER => {
            let node_id = broker_target(state, resource_name)?;
            for name in change.set.keys().chain(change.delete.iter()) {
                if !is_dynamic_broker_setting(name) {
                    return Err(ResourceError::from(MetaError::InvalidConfig {
                        name: name.clone(),
                        message: format!("Cannot update these configs dynamically: Set({name})"),
                    }));
                }
            }
            for (name, value) in &change.set {
                topic_config::validate_broker_config(name, value)?;
            }
            Ok(MetadataRecord::AlterBrokerConfigs {
                node_id,
                set: change.set,
                delete: change.delete,
            })
        }
        other => Err(invalid_request(format!(
            "Unsupported resource type {other}"
        ))),
    }
}

/// Validates (and unless `validate_only`, appends) one resource's change.
async fn apply_change(
    state: &BrokerState,
    resource_type: i8,
    resource_name: &str,
    change: Result<ConfigChange, ResourceError>,
    validate_only: bool,
) -> Result<(), ResourceError> {
    let image = state.image();
    let record = change_record(state, &image, resource_type, resource_name, change?)?;
    if validate_only {
        quill_meta::apply(&image, &record)?;
        return Ok(());
    }
    state.change_metadata(vec![record]).await?;
    Ok(())
}

/// Legacy AlterConfigs replaces the whole set of explicit configs of a resource.
fn full_replacement(
    state: &BrokerState,
    resource_type: i8,
    resource_name: &str,
    configs: Vec<(String, Option<String>)>,
) -> Result<ConfigChange, ResourceError> {
    let image = state.image();
    let mut set = BTreeMap::new();
    for (name, value) in configs {
        let value = value.ok_or_else(|| {
            ResourceError::from(MetaError::InvalidConfig {
                message: format!("Null value not supported for : {name}"),
                name: name.clone(),
            })
        })?;
        set.insert(name, value);
    }
    let existing: Vec<String> = match resource_type {
        RESOURCE_TOPIC => image
            .topic(resource_name)
            .map(|topic| topic.configs.keys().cloned().collect())
            .unwrap_or_default(),
        RESOURCE_BROKER => {
            let node_id = broker_target(state, resource_name)?;
            image
                .dynamic_broker_configs(node_id)
                .map(|configs| configs.keys().cloned().collect())
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let delete = existing
        .into_iter()
        .filter(|name| !set.contains_key(name))
        .collect();
    Ok(ConfigChange { set, delete })
}

pub async fn alter_configs(
    state: &BrokerState,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let configs = resource
            .configs
            .into_iter()
            .map(|config| (config.name.to_string(), config.value.map(|v| v.to_string())))
            .collect();
        let change = full_replacement(state, resource.resource_type, &name, configs);
        let outcome = apply_change(
            state,
            resource.resource_type,
            &name,
            change,
            request.validate_only,
        )
        .await;
        let response = alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err(error) => response
                .with_error_code(error.code)
                .with_error_message(Some(text(error.message))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// The value APPEND/SUBTRACT start from: the explicit value, else the effective one.
fn current_list_value(
    state: &BrokerState,
    resource_type: i8,
    resource: &str,
    name: &str,
) -> Vec<String> {
    let image = state.image();
    let static_settings = state.config.static_settings();
    let layers = BrokerConfigLayers::from_image(&image, state.config.node_id, &static_settings);
    let value = match resource_type {
        RESOURCE_TOPIC => image.topic(resource).and_then(|topic| {
            topic_config::lookup(name)
                .map(|def| topic_config::describe_topic_config(def, &topic.configs, &layers).value)
        }),
        _ => layers.resolve_broker_config(name).map(|(value, _)| value),
    };
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

fn incremental_change(
    state: &BrokerState,
    resource_type: i8,
    resource_name: &str,
    configs: Vec<(String, i8, Option<String>)>,
) -> Result<ConfigChange, ResourceError> {
    let mut change = ConfigChange {
        set: BTreeMap::new(),
        delete: Vec::new(),
    };
    let mut seen = std::collections::BTreeSet::new();
    for (name, operation, value) in configs {
        if !seen.insert(name.clone()) {
            return Err(invalid_request(format!(
                "Error due to duplicate config keys: {name}"
            )));
        }
        match operation {
            OPERATION_SET => {
                let value = value.ok_or_else(|| {
                    ResourceError::from(MetaError::InvalidConfig {
                        message: format!("Null value not supported for : {name}"),
                        name: name.clone(),
                    })
                })?;
                change.set.insert(name, value);
            }
            OPERATION_DELETE => change.delete.push(name),
            OPERATION_APPEND | OPERATION_SUBTRACT => {
                let is_list = topic_config::lookup(&name)
                    .is_some_and(|def| def.config_type == topic_config::ConfigType::List);
                if !is_list {
                    return Err(invalid_request(format!(
                        "Config value append is not allowed for config key: {name}"
                    )));
                }
                let items: Vec<String> = value
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_string)
                    .collect();
                let mut current = current_list_value(state, resource_type, resource_name, &name);
                if operation == OPERATION_APPEND {
                    for item in items {
                        if !current.contains(&item) {
                            current.push(item);
                        }
                    }
                } else {
                    current.retain(|item| !items.contains(item));
                }
                change.set.insert(name, current.join(","));
            }
            other => return Err(invalid_request(format!("Unknown config operation {other}"))),
        }
    }
    Ok(change)
}

pub async fn incremental_alter_configs(
    state: &BrokerState,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let configs = resource
            .configs
            .into_iter()
            .map(|config| {
                (
                    config.name.to_string(),
                    config.config_operation,
                    config.value.map(|value| value.to_string()),
                )
            })
            .collect();
        let change = incremental_change(state, resource.resource_type, &name, configs);
        let outcome = apply_change(
            state,
            resource.resource_type,
            &name,
            change,
            request.validate_only,
        )
        .await;
        let response = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err(error) => response
                .with_error_code(error.code)
                .with_error_message(Some(text(error.message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
