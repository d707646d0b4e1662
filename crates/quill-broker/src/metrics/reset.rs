//! The console's consumer-group offset reset, as `kafka-consumer-groups.sh --reset-offsets`:
//! a dry run (`GET /console/groups/reset?…`) shows each partition's committed and new offset;
//! applying it (`POST`, from that page's form) commits the new offsets through the broker's
//! OffsetCommit handler, and only for a group without members (Kafka's tool refuses others).

use std::fmt::Write as _;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use quill_group::GroupState;

use super::console::{escape, layout, parse_form, table};
use crate::state::BrokerState;

/// The OffsetCommit version the console speaks (member id "", generation -1: a commit for a
/// group without members, as the admin tools send).
const OFFSET_COMMIT_VERSION: i16 = 8;

/// Where to move a group's committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Earliest,
    Latest,
    /// Clamped into [log start, high watermark], as the Kafka tool does.
    Offset(i64),
    /// The first offset at or after the timestamp (the high watermark when none).
    Timestamp(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    pub group: String,
    pub topic: String,
    pub target: Target,
}

/// Parses `group=…&topic=…&to=earliest|latest|offset|timestamp&value=N` (form or query).
pub fn parse_reset(fields: &[(String, String)]) -> Result<ResetRequest, String> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    };
    let group = field("group").to_string();
    let topic = field("topic").trim().to_string();
    if group.is_empty() || topic.is_empty() {
        return Err("Choose a group and a topic.".to_string());
    }
    let value = || -> Result<i64, String> {
        field("value")
            .trim()
            .parse::<i64>()
            .map_err(|_| "The offset or timestamp must be a whole number.".to_string())
    };
    let target = match field("to") {
        "earliest" => Target::Earliest,
        "latest" => Target::Latest,
        "offset" => Target::Offset(value()?),
        "timestamp" => Target::Timestamp(value()?),
        other => return Err(format!("Unknown reset target `{other}`.")),
    };
    Ok(ResetRequest {
        group,
        topic,
        target,
    })
}

/// One partition of a planned reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPartition {
    pub partition: i32,
    pub committed: Option<i64>,
    pub new_offset: i64,
}

/// Computes the new offset of every hosted partition of the topic, and the group's state.
pub async fn plan(
    state: &BrokerState,
    request: &ResetRequest,
) -> Result<(Vec<PlannedPartition>, GroupState), String> {
    let image = state.image();
    let topic = image
        .topics
        .get(&request.topic)
        .ok_or_else(|| format!("No topic {}.", request.topic))?;
    let described = state.groups.describe_group(&request.group);
    let committed = state
        .groups
        .snapshot_groups(super::MAX_LAG_SERIES)
        .groups
        .into_iter()
        .find(|group| group.group_id == request.group)
        .map(|group| group.offsets)
        .unwrap_or_default();
    let mut planned = Vec::new();
    for info in &topic.partitions {
        let Some(partition) = state.partitions.get(&topic.name, info.partition) else {
            continue;
        };
        let offsets = partition.offsets();
        let new_offset = match request.target {
            Target::Earliest => offsets.log_start_offset,
            Target::Latest => offsets.high_watermark,
            Target::Offset(offset) => {
                offset.clamp(offsets.log_start_offset, offsets.high_watermark)
            }
            Target::Timestamp(timestamp) => partition
                .offset_for_timestamp(timestamp)
                .await
                .map_err(|error| format!("cannot look up the timestamp: {error}"))?
                .map_or(offsets.high_watermark, |found| found.offset),
        };
        planned.push(PlannedPartition {
            partition: info.partition,
            committed: committed
                .iter()
                .find(|(tp, _)| tp.topic == topic.name && tp.partition == info.partition)
                .map(|(_, offset)| *offset),
            new_offset,
        });
    }
    Ok((planned, described.state))
}

/// Kafka's tool resets only groups without members.
fn inactive(state: GroupState) -> bool {
    matches!(state, GroupState::Empty | GroupState::Dead)
}

fn inactive_message(group: &str, state: GroupState) -> String {
    format!(
        "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
        state.as_str()
    )
}

/// The dry-run page, with the form that applies it.
pub async fn dry_run(state: &BrokerState, query: Option<&str>, token: &str) -> String {
    let title = "Reset offsets";
    let fields = parse_form(query.unwrap_or("").as_bytes()).unwrap_or_default();
    let request = match parse_reset(&fields) {
        Ok(request) => request,
        Err(reason) => {
            return layout(
                title,
                &format!("<h1>{title}</h1><p id=\"error\">{}</p>", escape(&reason)),
            )
        }
    };
    let (planned, group_state) = match plan(state, &request).await {
        Ok(planned) => planned,
        Err(reason) => {
            return layout(
                title,
                &format!("<h1>{title}</h1><p id=\"error\">{}</p>", escape(&reason)),
            )
        }
    };
    let mut body = format!(
        "<h1>{title}</h1><p>Dry run for group <code id=\"reset-group-name\">{}</code> on topic {}: nothing changes until you apply it.</p>",
        escape(&request.group),
        escape(&request.topic)
    );
    let rows: Vec<Vec<String>> = planned
        .iter()
        .map(|partition| {
            vec![
                partition.partition.to_string(),
                partition
                    .committed
                    .map_or_else(|| "none".to_string(), |offset| offset.to_string()),
                partition.new_offset.to_string(),
            ]
        })
        .collect();
    body.push_str(&table(
        &["Partition", "Committed", "New offset"],
        &[true, true, true],
        &rows,
        "reset-plan",
    ));
    if !inactive(group_state) {
        let _ = write!(
            body,
            "<p id=\"error\">{}</p>",
            escape(&inactive_message(&request.group, group_state))
        );
        return layout(title, &body);
    }
    let (to, value) = match request.target {
        Target::Earliest => ("earliest", String::new()),
        Target::Latest => ("latest", String::new()),
        Target::Offset(offset) => ("offset", offset.to_string()),
        Target::Timestamp(timestamp) => ("timestamp", timestamp.to_string()),
    };
    let _ = write!(
        body,
        "<form id=\"reset-apply\" method=\"post\" action=\"/console/groups/reset\">\
<input type=\"hidden\" name=\"token\" value=\"{}\">\
<input type=\"hidden\" name=\"group\" value=\"{}\">\
<input type=\"hidden\" name=\"topic\" value=\"{}\">\
<input type=\"hidden\" name=\"to\" value=\"{to}\">\
<input type=\"hidden\" name=\"value\" value=\"{}\">\
<button id=\"reset-apply-button\" type=\"submit\">Apply: commit these offsets</button></form>",
        escape(token),
        escape(&request.group),
        escape(&request.topic),
        escape(&value)
    );
    layout(title, &body)
}

/// Applies a reset from the dry-run page's form: `Ok(())` once every partition's new offset is
/// committed, else the page explaining what was refused.
pub async fn apply(state: &BrokerState, form: &[(String, String)]) -> Result<(), String> {
    let title = "Offsets not reset";
    let page = |reason: &str| {
        layout(
            title,
            &format!("<h1>{title}</h1><p id=\"error\">{}</p>", escape(reason)),
        )
    };
    let request = parse_reset(form).map_err(|reason| page(&reason))?;
    let (planned, group_state) = plan(state, &request)
        .await
        .map_err(|reason| page(&reason))?;
    if !inactive(group_state) {
        return Err(page(&inactive_message(&request.group, group_state)));
    }
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(request.group.clone())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(request.topic.clone())))
            .with_partitions(
                planned
                    .iter()
                    .map(|partition| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(partition.partition)
                            .with_committed_offset(partition.new_offset)
                    })
                    .collect(),
            )]);
    let response =
        crate::handlers::groups::offset_commit(state, commit, OFFSET_COMMIT_VERSION).await;
    let failures: Vec<String> = response
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .filter(|partition| partition.error_code != 0)
        .map(|partition| {
            let name = kafka_protocol::error::ResponseError::try_from_code(partition.error_code)
                .map_or_else(
                    || partition.error_code.to_string(),
                    |error| format!("{error:?}"),
                );
            format!("partition {}: {name}", partition.partition_index)
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(page(&format!(
            "The commit was refused: {}.",
            failures.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn reset_requests_parse_or_say_why_not() {
        assert_eq!(
            parse_reset(&fields(&[
                ("group", "g"),
                ("topic", "t"),
                ("to", "earliest")
            ])),
            Ok(ResetRequest {
                group: "g".to_string(),
                topic: "t".to_string(),
                target: Target::Earliest
            })
        );
        assert_eq!(
            parse_reset(&fields(&[
                ("group", "g"),
                ("topic", "t"),
                ("to", "offset"),
                ("value", "12")
            ]))
            .map(|request| request.target),
            Ok(Target::Offset(12))
        );
        assert!(parse_reset(&fields(&[("group", "g"), ("topic", "t"), ("to", "offset")])).is_err());
        assert!(parse_reset(&fields(&[("group", "g"), ("topic", "t"), ("to", "later")])).is_err());
        assert!(parse_reset(&fields(&[("topic", "t"), ("to", "latest")])).is_err());
        assert_eq!(
            inactive_message("g", GroupState::Stable),
            "Assignments can only be reset if the group 'g' is inactive, but the current state is Stable."
        );
    }
}
