//! Turns admin requests (CreateTopics, CreatePartitions) into records. Planning may use
//! randomness (topic ids); the resulting records are then validated and applied deterministically.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::placement::{place_partitions, PlacementRng};
use crate::record::{MetadataRecord, PartitionAssignment};
use crate::state_machine::MAX_PARTITIONS_PER_TOPIC;
use crate::{topic_config, topic_name, MetaError, MetadataImage};

/// A fresh random (v4) topic id, never nil and not used by any topic in `image`.
pub fn new_topic_id(image: &MetadataImage) -> Uuid {
    loop {
        let candidate = Uuid::new_v4();
        if !candidate.is_nil() && !image.topics_by_id.contains_key(&candidate) {
            return candidate;
        }
    }
}

/// Kafka's striped placement (see [`crate::placement`]) of `partition_count` new partitions
/// numbered from `first_partition`, over the active brokers, continuing after the topic's
/// `previous` replica lists.
pub fn assign_replicas(
    image: &MetadataImage,
    previous: &[Vec<i32>],
    first_partition: i32,
    partition_count: i32,
    replication_factor: i16,
) -> Result<Vec<PartitionAssignment>, MetaError> {
    check_partition_count(first_partition, partition_count)?;
    place_partitions(
        image,
        previous,
        first_partition,
        partition_count,
        replication_factor,
        &mut PlacementRng::random(),
    )
}

/// A manual assignment may name only active brokers: Quill starts every replica in the ISR, so
/// a fenced or shutting-down replica would be "in sync" without receiving anything. (Kafka
/// accepts them and leaves them out of the ISR; it refuses only when every replica of a
/// partition is inactive.)
fn check_manual_replicas_active(
    image: &MetadataImage,
    partitions: &[PartitionAssignment],
) -> Result<(), MetaError> {
    for assignment in partitions {
        if assignment
            .replicas
            .iter()
            .all(|id| !image.is_active_broker(*id))
            && assignment
                .replicas
                .iter()
                .all(|id| image.brokers.contains_key(id))
        {
            return Err(MetaError::InvalidReplicaAssignment(format!(
                "All brokers specified in the manual partition assignment for partition {} are fenced or in controlled shutdown.",
                assignment.partition
            )));
        }
        if let Some(inactive) = assignment
            .replicas
            .iter()
            .find(|id| image.brokers.contains_key(id) && !image.is_active_broker(**id))
        {
            return Err(MetaError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {inactive}, which is {}; Quill places replicas only on active brokers.",
                crate::state_machine::ineligibility(image, *inactive)
            )));
        }
    }
    Ok(())
}

fn check_partition_count(first_partition: i32, partition_count: i32) -> Result<(), MetaError> {
    if partition_count <= 0 {
        return Err(MetaError::InvalidPartitions(
            "Number of partitions was set to an invalid non-positive value.".to_string(),
        ));
    }
    let total = i64::from(first_partition) + i64::from(partition_count);
    if usize::try_from(total).map_or(true, |total| total > MAX_PARTITIONS_PER_TOPIC) {
        return Err(MetaError::InvalidPartitions(format!(
            "Number of partitions {total} exceeds the limit of {MAX_PARTITIONS_PER_TOPIC} per topic."
        )));
    }
    Ok(())
}

/// How the partitions of a new topic are placed.
#[derive(Clone, Debug)]
pub enum Placement {
    /// Number of partitions and replication factor, both already defaulted by the broker
    /// (`num.partitions`, `default.replication.factor` when the request says -1).
    Automatic {
        partition_count: i32,
        replication_factor: i16,
    },
    /// Replica lists for partitions 0, 1, ... as given in the request.
    Manual(Vec<Vec<i32>>),
}

/// Plans a CreateTopic record and validates it against `image` (a validate-only CreateTopics
/// can stop here). Error precedence follows Kafka: name, existence, collision, placement, configs.
pub fn plan_create_topic(
    image: &MetadataImage,
    name: &str,
    placement: Placement,
    configs: BTreeMap<String, String>,
) -> Result<MetadataRecord, MetaError> {
    topic_name::validate_topic_name(name)?;
    if image.topics.contains_key(name) {
        return Err(MetaError::TopicAlreadyExists(name.to_string()));
    }
    topic_name::check_topic_collision(image, name)?;
    let partitions = match placement {
        Placement::Automatic {
            partition_count,
            replication_factor,
        } => assign_replicas(image, &[], 0, partition_count, replication_factor)?,
        Placement::Manual(replica_lists) => numbered(0, replica_lists)?,
    };
    topic_config::validate_topic_configs(&configs)?;
    topic_config::check_supported_topic_configs(&configs)?;
    let record = MetadataRecord::CreateTopic {
        name: name.to_string(),
        topic_id: new_topic_id(image),
        partitions,
        configs,
    };
    crate::apply(image, &record)?;
    if let MetadataRecord::CreateTopic { partitions, .. } = &record {
        check_manual_replicas_active(image, partitions)?;
    }
    Ok(record)
}

/// Plans a CreatePartitions record growing topic `name` to `new_total_count` partitions, with
/// Kafka's messages when the count does not grow.
pub fn plan_create_partitions(
    image: &MetadataImage,
    name: &str,
    new_total_count: i32,
    manual_assignment: Option<Vec<Vec<i32>>>,
) -> Result<MetadataRecord, MetaError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| MetaError::UnknownTopic(name.to_string()))?;
    let current_count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    if new_total_count < current_count {
        return Err(MetaError::InvalidPartitions(format!(
            "Topic currently has {current_count} partitions, which is higher than the requested {new_total_count}."
        )));
    }
    if new_total_count == current_count {
        return Err(MetaError::InvalidPartitions(format!(
            "Topic already has {current_count} partitions."
        )));
    }
    let added = new_total_count - current_count;
    let new_partitions = match manual_assignment {
        Some(replica_lists) => {
            if i32::try_from(replica_lists.len()).ok() != Some(added) {
                return Err(MetaError::InvalidReplicaAssignment(format!(
                    "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
                    replica_lists.len()
                )));
            }
            let new_partitions = numbered(current_count, replica_lists)?;
            check_manual_replicas_active(image, &new_partitions)?;
            new_partitions
        }
        None => {
            let factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
            let factor = i16::try_from(factor).unwrap_or(i16::MAX);
            let previous: Vec<Vec<i32>> = topic
                .partitions
                .iter()
                .map(|partition| partition.replicas.clone())
                .collect();
            assign_replicas(image, &previous, current_count, added, factor)?
        }
    };
    let record = MetadataRecord::CreatePartitions {
        topic_id: topic.topic_id,
        new_partitions,
    };
    crate::apply(image, &record)?;
    Ok(record)
}

fn numbered(
    first_partition: i32,
    replica_lists: Vec<Vec<i32>>,
) -> Result<Vec<PartitionAssignment>, MetaError> {
    let count = i32::try_from(replica_lists.len()).unwrap_or(i32::MAX);
    check_partition_count(first_partition, count)?;
    Ok((first_partition..)
        .zip(replica_lists)
        .map(|(partition, replicas)| PartitionAssignment {
            partition,
            replicas,
        })
        .collect())
}

/// Producer ids a broker reserves per metadata entry (Kafka's `PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Plans the reservation of the next block of producer ids for `node_id`; the block is usable
/// only after the record is durably appended.
pub fn plan_allocate_producer_ids(
    image: &MetadataImage,
    node_id: i32,
) -> Result<(MetadataRecord, std::ops::Range<i64>), MetaError> {
    let first = image.next_producer_id;
    let next = first
        .checked_add(PRODUCER_ID_BLOCK_SIZE)
        .ok_or_else(|| MetaError::InvalidRequest("Producer ids are exhausted".to_string()))?;
    let record = MetadataRecord::AllocateProducerIds {
        node_id,
        next_producer_id: next,
    };
    crate::apply(image, &record)?;
    Ok((record, first..next))
}

/// One operation of IncrementalAlterConfigs (KIP-339).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set(String),
    Delete,
    /// Adds comma-separated items missing from a LIST config.
    Append(String),
    /// Removes comma-separated items from a LIST config.
    Subtract(String),
}

impl AlterConfigOp {
    /// From the wire: `config_operation` 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
    pub fn from_kafka(operation: i8, value: Option<String>) -> Result<AlterConfigOp, MetaError> {
        let value = || value.clone().unwrap_or_default();
        match operation {
            0 => Ok(AlterConfigOp::Set(value())),
            1 => Ok(AlterConfigOp::Delete),
            2 => Ok(AlterConfigOp::Append(value())),
            3 => Ok(AlterConfigOp::Subtract(value())),
            other => Err(MetaError::InvalidRequest(format!(
                "Unknown config operation {other}"
            ))),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            AlterConfigOp::Set(_) => "SET",
            AlterConfigOp::Delete => "DELETE",
            AlterConfigOp::Append(_) => "APPEND",
            AlterConfigOp::Subtract(_) => "SUBTRACT",
        }
    }
}

/// Plans an AlterTopicConfigs record for an IncrementalAlterConfigs request on a topic, with
/// Kafka's (KRaft) semantics: APPEND/SUBTRACT only on LIST configs, starting from the topic's
/// value or else the config's default. The record is validated against `image`.
pub fn plan_incremental_alter_topic_configs(
    image: &MetadataImage,
    topic: &str,
    operations: &[(String, AlterConfigOp)],
) -> Result<MetadataRecord, MetaError> {
    let info = image
        .topic(topic)
        .ok_or_else(|| MetaError::UnknownTopic(topic.to_string()))?;
    let (set, delete) = resolve_operations(operations, |name| {
        let def = topic_config::lookup(name).ok_or_else(|| {
            MetaError::invalid_config(name, format!("Unknown topic config name: {name}"))
        })?;
        let current = info.configs.get(name).map_or(def.default, String::as_str);
        Ok((
            def.config_type == topic_config::ConfigType::List,
            current.to_string(),
        ))
    })?;
    let record = MetadataRecord::AlterTopicConfigs {
        topic_id: info.topic_id,
        set,
        delete,
    };
    crate::apply(image, &record)?;
    if let MetadataRecord::AlterTopicConfigs { set, .. } = &record {
        topic_config::check_supported_topic_configs(set)?;
    }
    Ok(record)
}

/// Plans an AlterTopicConfigs record for the legacy (non-incremental) AlterConfigs request:
/// the given configs replace all of the topic's explicit configs.
pub fn plan_replace_topic_configs(
    image: &MetadataImage,
    topic: &str,
    configs: BTreeMap<String, String>,
) -> Result<MetadataRecord, MetaError> {
    let info = image
        .topic(topic)
        .ok_or_else(|| MetaError::UnknownTopic(topic.to_string()))?;
    let delete = info
        .configs
        .keys()
        .filter(|name| !configs.contains_key(name.as_str()))
        .cloned()
        .collect();
    let record = MetadataRecord::AlterTopicConfigs {
        topic_id: info.topic_id,
        set: configs,
        delete,
    };
    crate::apply(image, &record)?;
    if let MetadataRecord::AlterTopicConfigs { set, .. } = &record {
        topic_config::check_supported_topic_configs(set)?;
    }
    Ok(record)
}

/// Plans an AlterBrokerConfigs record for IncrementalAlterConfigs on a broker (`Some(id)`) or
/// the cluster default (`None`). APPEND/SUBTRACT work on broker configs a LIST topic config
/// defaults from (`log.cleanup.policy`); other broker configs are opaque here.
pub fn plan_incremental_alter_broker_configs(
    image: &MetadataImage,
    node_id: Option<i32>,
    operations: &[(String, AlterConfigOp)],
) -> Result<MetadataRecord, MetaError> {
    plan_incremental_alter_broker_configs_with(image, node_id, operations, |_| None)
}

/// [`plan_incremental_alter_broker_configs`] where the broker knows more LIST configs than the
/// topic-default ones: `other_list_default(name)` gives such a config's default.
pub fn plan_incremental_alter_broker_configs_with(
    image: &MetadataImage,
    node_id: Option<i32>,
    operations: &[(String, AlterConfigOp)],
    other_list_default: impl Fn(&str) -> Option<&'static str>,
) -> Result<MetadataRecord, MetaError> {
    let current_configs = image.dynamic_broker_configs(node_id);
    let (set, delete) = resolve_operations(operations, |name| {
        let synonym = topic_config::topic_config_for_broker_synonym(name);
        let other_list = other_list_default(name);
        let is_list = other_list.is_some()
            || synonym.is_some_and(|(def, _)| def.config_type == topic_config::ConfigType::List);
        let default = synonym
            .and_then(|(_, synonym)| synonym.broker_default)
            .or(other_list)
            .unwrap_or("");
        let current = current_configs
            .and_then(|configs| configs.get(name))
            .map_or(default, String::as_str);
        Ok((is_list, current.to_string()))
    })?;
    for (name, value) in &set {
        topic_config::check_supported_broker_config(name, value)?;
    }
    let record = MetadataRecord::AlterBrokerConfigs {
        node_id,
        set,
        delete,
    };
    crate::apply(image, &record)?;
    Ok(record)
}

/// Plans an AlterGroupConfigs record for IncrementalAlterConfigs on a GROUP resource (group
/// configs have no LIST type, so APPEND/SUBTRACT are refused as in Kafka).
pub fn plan_incremental_alter_group_configs(
    image: &MetadataImage,
    group_id: &str,
    operations: &[(String, AlterConfigOp)],
) -> Result<MetadataRecord, MetaError> {
    crate::group_config::validate_group_id(group_id)?;
    let (set, delete) = resolve_operations(operations, |name| {
        crate::group_config::lookup(name)
            .map(|def| (false, def.default.to_string()))
            .ok_or_else(|| {
                MetaError::invalid_config(name, format!("Unknown group config name: {name}"))
            })
    })?;
    let record = MetadataRecord::AlterGroupConfigs {
        group_id: group_id.to_string(),
        set,
        delete,
    };
    crate::apply(image, &record)?;
    Ok(record)
}

/// Plans an AlterGroupConfigs record for the legacy AlterConfigs request: the given configs
/// replace all of the group's explicit configs.
pub fn plan_replace_group_configs(
    image: &MetadataImage,
    group_id: &str,
    configs: BTreeMap<String, String>,
) -> Result<MetadataRecord, MetaError> {
    crate::group_config::validate_group_id(group_id)?;
    let delete = image
        .group_configs(group_id)
        .map(|current| {
            current
                .keys()
                .filter(|name| !configs.contains_key(name.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let record = MetadataRecord::AlterGroupConfigs {
        group_id: group_id.to_string(),
        set: configs,
        delete,
    };
    crate::apply(image, &record)?;
    Ok(record)
}

type SetAndDelete = (BTreeMap<String, String>, Vec<String>);

/// Turns operations into set/delete lists. `describe(name)` says whether the config is a LIST
/// and gives its current (or default) value for APPEND/SUBTRACT.
fn resolve_operations(
    operations: &[(String, AlterConfigOp)],
    describe: impl Fn(&str) -> Result<(bool, String), MetaError>,
) -> Result<SetAndDelete, MetaError> {
    let mut set = BTreeMap::new();
    let mut delete = Vec::new();
    for (position, (name, operation)) in operations.iter().enumerate() {
        if operations[..position]
            .iter()
            .any(|(earlier, _)| earlier == name)
        {
            return Err(MetaError::InvalidRequest(format!(
                "Error due to duplicate config keys: {name}"
            )));
        }
        match operation {
            AlterConfigOp::Set(value) => {
                set.insert(name.clone(), value.clone());
            }
            AlterConfigOp::Delete => delete.push(name.clone()),
            AlterConfigOp::Append(items) | AlterConfigOp::Subtract(items) => {
                let (is_list, current) = describe(name)?;
                if !is_list {
                    return Err(MetaError::invalid_config(
                        name,
                        format!(
                            "Can't {} to key {name} because its type is not LIST.",
                            operation.name()
                        ),
                    ));
                }
                let mut parts = list_parts(&current);
                for item in list_parts(items) {
                    match operation {
                        AlterConfigOp::Append(_) if !parts.contains(&item) => parts.push(item),
                        AlterConfigOp::Subtract(_) => parts.retain(|part| part != &item),
                        _ => {}
                    }
                }
                set.insert(name.clone(), parts.join(","));
            }
        }
    }
    Ok((set, delete))
}

fn list_parts(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with_brokers(count: i32) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        for node_id in 0..count {
            image = crate::apply(
                &image,
                &MetadataRecord::RegisterBroker {
                    node_id: node_id + 1,
                    host: "h".into(),
                    port: 9092,
                    rack: None,
                    incarnation_id: None,
                },
            )
            .unwrap();
        }
        image
    }

    #[test]
    fn striped_assignment_spreads_leaders() {
        let image = image_with_brokers(3);
        let assignments = assign_replicas(&image, &[], 0, 6, 2).unwrap();
        let mut led = BTreeMap::new();
        for assignment in &assignments {
            assert_eq!(assignment.replicas.len(), 2);
            assert_ne!(assignment.replicas[0], assignment.replicas[1]);
            *led.entry(assignment.replicas[0]).or_insert(0) += 1;
        }
        assert_eq!(led, BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
        assert_eq!(assignments[3].partition, 3);
    }

    #[test]
    fn replication_factor_errors() {
        let image = image_with_brokers(1);
        let too_many = assign_replicas(&image, &[], 0, 1, 3).unwrap_err();
        assert_eq!(too_many.kafka_error_code(), 38);
        assert!(too_many
            .to_string()
            .contains("The target replication factor of 3 cannot be reached because only 1 broker(s) are registered."));
        assert_eq!(
            assign_replicas(&image, &[], 0, 1, 0)
                .unwrap_err()
                .kafka_error_code(),
            38
        );
        assert_eq!(
            assign_replicas(&image, &[], 0, 1, -1)
                .unwrap_err()
                .kafka_error_code(),
            38
        );
    }

    #[test]
    fn partition_count_errors() {
        let image = image_with_brokers(1);
        assert_eq!(
            assign_replicas(&image, &[], 0, 0, 1)
                .unwrap_err()
                .kafka_error_code(),
            37
        );
        assert_eq!(
            assign_replicas(&image, &[], 0, -3, 1)
                .unwrap_err()
                .kafka_error_code(),
            37
        );
        assert_eq!(
            assign_replicas(&image, &[], 0, i32::MAX, 1)
                .unwrap_err()
                .kafka_error_code(),
            37
        );
    }

    #[test]
    fn plan_create_topic_validates_everything() {
        let image = image_with_brokers(1);
        let automatic = Placement::Automatic {
            partition_count: 2,
            replication_factor: 1,
        };
        let record =
            plan_create_topic(&image, "orders", automatic.clone(), BTreeMap::new()).unwrap();
        let image = crate::apply(&image, &record).unwrap();
        assert_eq!(image.topic("orders").unwrap().partitions.len(), 2);

        let code = |name: &str, placement: Placement, configs: &[(&str, &str)]| {
            let configs = configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            plan_create_topic(&image, name, placement, configs)
                .unwrap_err()
                .kafka_error_code()
        };
        assert_eq!(code("orders", automatic.clone(), &[]), 36);
        assert_eq!(code("bad name", automatic.clone(), &[]), 17);
        assert_eq!(code("x", automatic.clone(), &[("retention.ms", "x")]), 40);
        assert_eq!(code("x", automatic.clone(), &[("nope", "1")]), 40);
        assert_eq!(code("x", Placement::Manual(vec![vec![9]]), &[]), 39);
        assert_eq!(code("x", Placement::Manual(vec![vec![1, 1]]), &[]), 39);
        assert_eq!(code("x", Placement::Manual(vec![]), &[]), 37);
        let manual = plan_create_topic(
            &image,
            "x",
            Placement::Manual(vec![vec![1]]),
            BTreeMap::new(),
        );
        assert!(manual.is_ok());
    }

    #[test]
    fn plan_create_partitions_messages() {
        let image = image_with_brokers(2);
        let record = plan_create_topic(
            &image,
            "t",
            Placement::Automatic {
                partition_count: 2,
                replication_factor: 1,
            },
            BTreeMap::new(),
        )
        .unwrap();
        let image = crate::apply(&image, &record).unwrap();

        let error = plan_create_partitions(&image, "t", 1, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Topic currently has 2 partitions, which is higher than the requested 1."
        );
        let error = plan_create_partitions(&image, "t", 2, None).unwrap_err();
        assert_eq!(error.to_string(), "Topic already has 2 partitions.");
        assert_eq!(error.kafka_error_code(), 37);
        assert_eq!(
            plan_create_partitions(&image, "nope", 3, None)
                .unwrap_err()
                .kafka_error_code(),
            3
        );
        assert_eq!(
            plan_create_partitions(&image, "t", 4, Some(vec![vec![1, 2]]))
                .unwrap_err()
                .kafka_error_code(),
            39
        );
        assert_eq!(
            plan_create_partitions(&image, "t", 3, Some(vec![vec![1, 2]]))
                .unwrap_err()
                .kafka_error_code(),
            39,
            "replication factor must match the topic's"
        );

        let record = plan_create_partitions(&image, "t", 5, None).unwrap();
        let image = crate::apply(&image, &record).unwrap();
        let topic = image.topic("t").unwrap();
        assert_eq!(topic.partitions.len(), 5);
        assert!(topic.partitions.iter().all(|p| p.replicas.len() == 1));
        image.check_invariants().unwrap();
    }

    #[test]
    fn replicated_topics_start_fully_in_sync() {
        let image = image_with_brokers(3);
        let three_replicas = Placement::Automatic {
            partition_count: 3,
            replication_factor: 3,
        };
        let record = plan_create_topic(&image, "t", three_replicas, BTreeMap::new()).unwrap();
        let created = crate::apply(&image, &record).unwrap();
        created.check_invariants().unwrap();
        let topic = created.topic("t").unwrap();
        let mut leaders: Vec<i32> = topic.partitions.iter().map(|p| p.leader).collect();
        leaders.sort_unstable();
        assert_eq!(leaders, vec![1, 2, 3], "leaders spread over the brokers");
        for partition in &topic.partitions {
            assert_eq!(partition.isr, partition.replicas);
            assert_eq!(partition.leader, partition.replicas[0]);
            assert_eq!((partition.leader_epoch, partition.partition_epoch), (0, 0));
        }
        let four = Placement::Automatic {
            partition_count: 1,
            replication_factor: 4,
        };
        let refused = plan_create_topic(&image, "u", four, BTreeMap::new()).unwrap_err();
        assert_eq!(refused.kafka_error_code(), 38, "{refused}");

        // Manual assignments: registered, distinct and active brokers only.
        let manual = |lists: Vec<Vec<i32>>| {
            plan_create_topic(&image, "m", Placement::Manual(lists), BTreeMap::new())
        };
        assert!(manual(vec![vec![3, 1], vec![2, 3]]).is_ok());
        assert_eq!(manual(vec![vec![1, 1]]).unwrap_err().kafka_error_code(), 39);
        assert_eq!(manual(vec![vec![1, 7]]).unwrap_err().kafka_error_code(), 39);
        let fenced = crate::apply(&image, &MetadataRecord::FenceBroker { node_id: 2 }).unwrap();
        let error = plan_create_topic(
            &fenced,
            "m",
            Placement::Manual(vec![vec![1, 2]]),
            BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(error.kafka_error_code(), 39, "{error}");
        let error = plan_create_topic(
            &fenced,
            "m",
            Placement::Manual(vec![vec![2]]),
            BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled shutdown."
        );
        // Automatic placement skips the fenced broker.
        let record = plan_create_topic(
            &fenced,
            "auto",
            Placement::Automatic {
                partition_count: 4,
                replication_factor: 2,
            },
            BTreeMap::new(),
        )
        .unwrap();
        let placed = crate::apply(&fenced, &record).unwrap();
        assert!(placed
            .topic("auto")
            .unwrap()
            .partitions
            .iter()
            .all(|p| !p.replicas.contains(&2)));
    }

    #[test]
    fn topic_ids_are_fresh() {
        let image = MetadataImage::empty("c");
        let first = new_topic_id(&image);
        assert!(!first.is_nil());
        assert_ne!(first, new_topic_id(&image));
    }

    fn image_with_topic() -> MetadataImage {
        let image = image_with_brokers(1);
        let record = plan_create_topic(
            &image,
            "t",
            Placement::Automatic {
                partition_count: 1,
                replication_factor: 1,
            },
            BTreeMap::from([("retention.ms".to_string(), "5".to_string())]),
        )
        .unwrap();
        crate::apply(&image, &record).unwrap()
    }

    fn ops(list: &[(&str, AlterConfigOp)]) -> Vec<(String, AlterConfigOp)> {
        list.iter()
            .map(|(name, op)| (name.to_string(), op.clone()))
            .collect()
    }

    fn topic_configs_after(
        image: &MetadataImage,
        operations: &[(&str, AlterConfigOp)],
    ) -> Result<BTreeMap<String, String>, MetaError> {
        let record = plan_incremental_alter_topic_configs(image, "t", &ops(operations))?;
        Ok(crate::apply(image, &record)
            .unwrap()
            .topic("t")
            .unwrap()
            .configs
            .clone())
    }

    #[test]
    fn incremental_alter_topic_configs() {
        let image = image_with_topic();
        use AlterConfigOp::*;
        let configs = topic_configs_after(
            &image,
            &[("segment.ms", Set("9".into())), ("retention.ms", Delete)],
        )
        .unwrap();
        assert_eq!(
            configs,
            BTreeMap::from([("segment.ms".to_string(), "9".to_string())])
        );

        // APPEND starts from the default ("delete") when the topic has no value.
        let configs =
            topic_configs_after(&image, &[("cleanup.policy", Append("compact".into()))]).unwrap();
        assert_eq!(configs["cleanup.policy"], "delete,compact");
        let configs =
            topic_configs_after(&image, &[("cleanup.policy", Subtract("delete".into()))]).unwrap();
        assert_eq!(configs["cleanup.policy"], "");
        let configs =
            topic_configs_after(&image, &[("cleanup.policy", Append("delete".into()))]).unwrap();
        assert_eq!(configs["cleanup.policy"], "delete");

        let code = |operations: &[(&str, AlterConfigOp)]| {
            topic_configs_after(&image, operations).unwrap_err()
        };
        let error = code(&[("retention.ms", Append("1".into()))]);
        assert_eq!(
            error.to_string(),
            "Can't APPEND to key retention.ms because its type is not LIST."
        );
        assert_eq!(error.kafka_error_code(), 40);
        assert_eq!(code(&[("nope", Append("1".into()))]).kafka_error_code(), 40);
        assert_eq!(code(&[("nope", Set("1".into()))]).kafka_error_code(), 40);
        assert_eq!(
            code(&[("retention.ms", Set("x".into()))]).kafka_error_code(),
            40
        );
        assert_eq!(
            code(&[("retention.ms", Set("1".into())), ("retention.ms", Delete)]).kafka_error_code(),
            42
        );
        assert_eq!(
            plan_incremental_alter_topic_configs(&image, "missing", &[])
                .unwrap_err()
                .kafka_error_code(),
            3
        );
        assert_eq!(
            AlterConfigOp::from_kafka(2, Some("a".into())).unwrap(),
            Append("a".into())
        );
        assert_eq!(AlterConfigOp::from_kafka(1, None).unwrap(), Delete);
        assert_eq!(
            AlterConfigOp::from_kafka(4, None)
                .unwrap_err()
                .kafka_error_code(),
            42
        );
    }

    #[test]
    fn producer_id_blocks_never_overlap() {
        let image = image_with_brokers(1);
        let (record, first_block) = plan_allocate_producer_ids(&image, 1).unwrap();
        assert_eq!(first_block, 0..PRODUCER_ID_BLOCK_SIZE);
        let image = crate::apply(&image, &record).unwrap();
        let (_, second_block) = plan_allocate_producer_ids(&image, 1).unwrap();
        assert_eq!(second_block.start, first_block.end);
        assert_eq!(
            crate::apply(&image, &record)
                .unwrap_err()
                .kafka_error_code(),
            42,
            "replayed allocation is rejected"
        );
        let mut exhausted = image.clone();
        exhausted.next_producer_id = i64::MAX - 1;
        assert_eq!(
            plan_allocate_producer_ids(&exhausted, 1)
                .unwrap_err()
                .kafka_error_code(),
            42
        );
        let negative_node = MetadataRecord::AllocateProducerIds {
            node_id: -1,
            next_producer_id: 5000,
        };
        assert_eq!(
            crate::apply(&image, &negative_node)
                .unwrap_err()
                .kafka_error_code(),
            42
        );
    }

    #[test]
    fn replace_topic_configs() {
        let image = image_with_topic();
        let record = plan_replace_topic_configs(
            &image,
            "t",
            BTreeMap::from([("segment.ms".to_string(), "7".to_string())]),
        )
        .unwrap();
        let image = crate::apply(&image, &record).unwrap();
        assert_eq!(
            image.topic("t").unwrap().configs,
            BTreeMap::from([("segment.ms".to_string(), "7".to_string())])
        );
        assert_eq!(
            plan_replace_topic_configs(
                &image,
                "t",
                BTreeMap::from([("x".to_string(), "1".to_string())])
            )
            .unwrap_err()
            .kafka_error_code(),
            40
        );
    }

    #[test]
    fn incremental_alter_broker_configs() {
        use AlterConfigOp::*;
        let image = image_with_brokers(1);
        let record = plan_incremental_alter_broker_configs(
            &image,
            None,
            &ops(&[
                ("log.cleanup.policy", Append("compact".into())),
                ("num.io.threads", Set("4".into())),
            ]),
        )
        .unwrap();
        let image = crate::apply(&image, &record).unwrap();
        let defaults = image.dynamic_broker_configs(None).unwrap();
        assert_eq!(defaults["log.cleanup.policy"], "delete,compact");
        assert_eq!(defaults["num.io.threads"], "4");
        let error = plan_incremental_alter_broker_configs(
            &image,
            Some(1),
            &ops(&[("num.io.threads", Append("5".into()))]),
        )
        .unwrap_err();
        assert_eq!(error.kafka_error_code(), 40);
        let error = plan_incremental_alter_broker_configs(
            &image,
            Some(1),
            &ops(&[("log.retention.hours", Set("x".into()))]),
        )
        .unwrap_err();
        assert_eq!(error.kafka_error_code(), 40);
    }
}
