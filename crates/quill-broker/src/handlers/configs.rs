//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topic, broker and group
//! resources.
//!
//! Topic configs, dynamic broker configs and group configs live in the metadata image (changed
//! only through metadata records, planned by quill-meta's planner); static broker settings come
//! from the broker's start-up configuration. Effective values and their sources are resolved by
//! quill-meta's `topic_config` / `group_config`, so what DescribeConfigs reports is exactly what
//! is in force.

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
use quill_meta::topic_config::{self, BrokerConfigLayers, ConfigSource, DescribedConfig};
use quill_meta::{group_config, AlterConfigOp, MetaError, MetadataImage, MetadataRecord};

use crate::dynamic_broker_settings;
use crate::state::BrokerState;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka 4.0 `ConfigResource.Type.GROUP` (KIP-848 group configs).
const RESOURCE_GROUP: i8 = 32;

const OPERATION_SET: i8 = 0;

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
                RESOURCE_GROUP => describe_group(&image, &name),
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

fn described_entry(described: DescribedConfig, documentation: String) -> ConfigEntry {
    ConfigEntry {
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
        documentation: Some(documentation),
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
        .map(|described| {
            let documentation = described.documentation.to_string();
            described_entry(described, documentation)
        })
        .collect())
}

/// Every group config of one group, whether or not the group exists (as Kafka answers).
fn describe_group(
    image: &MetadataImage,
    group_id: &str,
) -> Result<Vec<ConfigEntry>, ResourceError> {
    group_config::validate_group_id(group_id)?;
    Ok(
        group_config::describe_group_configs(image.group_configs(group_id))
            .into_iter()
            .map(|described| {
                let documentation = format!(
                    "{}{}",
                    described.documentation,
                    group_config::in_force_note()
                );
                described_entry(described, documentation)
            })
            .collect(),
    )
}

/// Kafka's `config_type` ids for broker settings (BOOLEAN=1, STRING=2, INT=3, LONG=5, LIST=7).
fn broker_setting_type(name: &str) -> i8 {
    if let Some(setting) = dynamic_broker_settings::lookup(name) {
        return setting.config_type.describe_configs_id();
    }
    if let Some((def, synonym)) = topic_config::topic_config_for_broker_synonym(name) {
        if synonym.to_topic_unit_factor == 1 {
            return def.config_type.describe_configs_id();
        }
    }
    match name {
        "auto.create.topics.enable" => 1,
        "log.dirs" | "listeners" | "advertised.listeners" => 7,
        "log.message.timestamp.type" | "metrics.listen" => 2,
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

/// Settings that can be changed at runtime: those topic configs default from, and the SASL
/// settings Kafka accepts per broker (stored only, see `dynamic_broker_settings`).
fn is_dynamic_broker_setting(name: &str) -> bool {
    topic_config::topic_config_for_broker_synonym(name).is_some()
        || dynamic_broker_settings::lookup(name).is_some()
        || dynamic_broker_settings::is_runtime_setting(name)
}

/// The refusal of a broker setting that cannot change at runtime, saying why.
fn not_dynamic(name: &str) -> ResourceError {
    let is_static_setting = crate::config::SETTINGS
        .iter()
        .any(|setting| setting.name == name);
    let message = if is_static_setting {
        format!("Cannot update these configs dynamically: Set({name}): Quill reads {name} only at start-up")
    } else {
        format!("Quill does not support the broker config {name} yet")
    };
    ResourceError::from(MetaError::InvalidConfig {
        name: name.to_string(),
        message,
    })
}

/// Kafka's rules for a dynamic broker change, before it is planned: only dynamic settings,
/// and the per-broker-only SASL settings never at the cluster-default level.
fn check_broker_names<'a>(
    node_id: Option<i32>,
    names: impl Iterator<Item = &'a String>,
) -> Result<(), ResourceError> {
    for name in names {
        if !is_dynamic_broker_setting(name) {
            return Err(not_dynamic(name));
        }
        if node_id.is_none() && dynamic_broker_settings::lookup(name).is_some() {
            return Err(ResourceError::from(MetaError::InvalidConfig {
                name: name.clone(),
                message: format!("Cannot update these configs at default cluster level, broker id must be specified: Set({name})"),
            }));
        }
    }
    Ok(())
}

/// Values of a planned dynamic broker change: Kafka's types and ranges, and nothing Quill
/// cannot put in force.
fn check_broker_values(
    set: &std::collections::BTreeMap<String, String>,
) -> Result<(), ResourceError> {
    for (name, value) in set {
        topic_config::validate_broker_config(name, value)?;
        topic_config::check_supported_broker_config(name, value)?;
        dynamic_broker_settings::validate(name, value)?;
    }
    Ok(())
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
    // Broker defaults of topic configs (log.preallocate, log.segment.delete.delay.ms, ...) that
    // were not set: their built-in default is what is in force.
    for def in topic_config::TOPIC_CONFIGS {
        for synonym in def.broker_synonyms {
            let Some(default) = synonym.broker_default else {
                continue;
            };
            if entries.contains_key(synonym.name) {
                continue;
            }
            let entry = broker_entry(
                synonym.name,
                Some(default.to_string()),
                ConfigSource::DefaultConfig,
                dynamic_broker,
                dynamic_default,
            );
            entries.insert(synonym.name.to_string(), entry);
        }
    }
    // The SASL settings Kafka lets change at runtime, at their Kafka defaults unless stored.
    for setting in dynamic_broker_settings::STORED_ONLY {
        let entry = broker_entry(
            setting.name,
            setting.default.map(str::to_string),
            ConfigSource::DefaultConfig,
            dynamic_broker,
            None,
        );
        entries.insert(setting.name.to_string(), entry);
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
            .map(|setting| setting.description.to_string())
            .or_else(|| {
                dynamic_broker_settings::lookup(name)
                    .map(|_| dynamic_broker_settings::DOCUMENTATION.to_string())
            }),
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
                topic_config::check_supported(name, value)?;
            }
            Ok(MetadataRecord::AlterTopicConfigs {
                topic_id: topic.topic_id,
                set: change.set,
                delete: change.delete,
            })
        }
        RESOURCE_BROKER => {
            let node_id = broker_target(state, resource_name)?;
            check_broker_names(node_id, change.set.keys().chain(change.delete.iter()))?;
            check_broker_values(&change.set)?;
            Ok(MetadataRecord::AlterBrokerConfigs {
                node_id,
                set: change.set,
                delete: change.delete,
            })
        }
        RESOURCE_GROUP => Ok(quill_meta::plan_replace_group_configs(
            image,
            resource_name,
            change.set,
        )?),
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
    apply_record(state, &image, record, validate_only).await
}

async fn apply_record(
    state: &BrokerState,
    image: &MetadataImage,
    record: MetadataRecord,
    validate_only: bool,
) -> Result<(), ResourceError> {
    if validate_only {
        quill_meta::apply(image, &record)?;
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
        // The group planner computes what to delete itself.
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

/// Plans one resource's IncrementalAlterConfigs with quill-meta's planner (Kafka's KRaft
/// semantics: APPEND/SUBTRACT only on LIST configs, starting from the resource's own value or
/// else the config's default).
fn incremental_record(
    state: &BrokerState,
    image: &MetadataImage,
    resource_type: i8,
    resource_name: &str,
    configs: Vec<(String, i8, Option<String>)>,
) -> Result<MetadataRecord, ResourceError> {
    let mut operations = Vec::with_capacity(configs.len());
    for (name, operation, value) in configs {
        if operation == OPERATION_SET && value.is_none() {
            return Err(ResourceError::from(MetaError::InvalidConfig {
                message: format!("Null value not supported for : {name}"),
                name,
            }));
        }
        let operation = AlterConfigOp::from_kafka(operation, value)?;
        operations.push((name, operation));
    }
    match resource_type {
        RESOURCE_TOPIC => Ok(quill_meta::plan_incremental_alter_topic_configs(
            image,
            resource_name,
            &operations,
        )?),
        RESOURCE_BROKER => {
            let node_id = broker_target(state, resource_name)?;
            check_broker_names(node_id, operations.iter().map(|(name, _)| name))?;
            let record = quill_meta::plan_incremental_alter_broker_configs_with(
                image,
                node_id,
                &operations,
                dynamic_broker_settings::list_default,
            )?;
            if let MetadataRecord::AlterBrokerConfigs { set, .. } = &record {
                check_broker_values(set)?;
            }
            Ok(record)
        }
        RESOURCE_GROUP => Ok(quill_meta::plan_incremental_alter_group_configs(
            image,
            resource_name,
            &operations,
        )?),
        other => Err(invalid_request(format!(
            "Unsupported resource type {other}"
        ))),
    }
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
        let image = state.image();
        let record = incremental_record(state, &image, resource.resource_type, &name, configs);
        let outcome = match record {
            Ok(record) => apply_record(state, &image, record, request.validate_only).await,
            Err(error) => Err(error),
        };
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
