//! `quill group …`: what kafka-consumer-groups.sh does — list, describe with lag, delete,
//! reset offsets.

use std::collections::{BTreeMap, BTreeSet};

use clap::{Args, Subcommand};
use quill_client::admin::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use quill_client::group::{self, GroupDescription};
use quill_client::{Admin, Client, TopicPartition};
use serde_json::json;

use super::output::{render_table, OutputFormat};
use super::ConnectionArgs;

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups.
    #[command(after_help = "Examples:
  quill group list
  quill group list --output json")]
    List(ListArgs),
    /// Per partition: committed offset, log end, lag; members and their assignment.
    #[command(after_help = "Examples:
  quill group describe billing
  quill group describe billing --output json | jq '[.partitions[].lag] | add'")]
    Describe(DescribeArgs),
    /// Delete groups with no active members (and their committed offsets).
    #[command(after_help = "Examples:
  quill group delete billing
  quill group delete old-a old-b")]
    Delete(DeleteArgs),
    /// Move a group's committed offsets (the group must have no active members).
    #[command(after_help = "Examples:
  quill group reset-offsets billing --topic orders --to-earliest
  quill group reset-offsets billing --topic orders --to-datetime 2026-11-21T00:00:00Z --dry-run
  quill group reset-offsets billing --topic orders --partition 0 --to-offset 42
  quill group reset-offsets billing --topic orders --shift-by -100")]
    ResetOffsets(ResetArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// Group id
    group: String,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Group ids
    #[arg(required = true)]
    groups: Vec<String>,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
pub struct ResetArgs {
    /// Group id
    group: String,
    /// Topic whose offsets move
    #[arg(long)]
    topic: String,
    /// Only these partitions (repeatable) [default: all]
    #[arg(short = 'p', long = "partition", value_name = "N")]
    partitions: Vec<i32>,
    /// To the first offset of each partition
    #[arg(long)]
    to_earliest: bool,
    /// To the end of each partition
    #[arg(long)]
    to_latest: bool,
    /// To this offset (clamped to the partition's range)
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// To the first record at or after this time (milliseconds or a date-time)
    #[arg(long, value_name = "MS|DATETIME", value_parser = super::consume::parse_timestamp)]
    to_datetime: Option<i64>,
    /// Move the committed offset by N (negative: back), clamped to the partition's range
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Show the new offsets without committing them
    #[arg(long)]
    dry_run: bool,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

pub async fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List(args) => list(args).await,
        GroupCommand::Describe(args) => describe(args).await,
        GroupCommand::Delete(args) => delete(args).await,
        GroupCommand::ResetOffsets(args) => reset_offsets(args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let groups = group::list_groups(&client).await?;
    if args.output == OutputFormat::Json {
        let documents: Vec<_> = groups
            .iter()
            .map(|g| json!({"group": g.group_id, "protocol_type": g.protocol_type, "state": g.state}))
            .collect();
        out!("{}", serde_json::to_string_pretty(&documents)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| vec![g.group_id.clone(), g.protocol_type.clone(), g.state.clone()])
        .collect();
    out_raw!("{}", render_table(&["GROUP", "TYPE", "STATE"], &rows));
    Ok(())
}

/// One row of `group describe`.
struct PartitionLag {
    partition: TopicPartition,
    committed: Option<i64>,
    log_end: i64,
    owner: Option<(String, String, String)>,
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let description = group::describe_group(&client, &args.group).await?;
    let committed = committed_offsets(&client, &args.group).await?;
    if description.state == "Dead" && committed.is_empty() {
        anyhow::bail!("group `{}` does not exist", args.group);
    }
    let rows = lag_rows(&client, &description, &committed).await?;
    if args.output == OutputFormat::Json {
        print_describe_json(&description, &rows)?;
        return Ok(());
    }
    out!(
        "Group: {}  State: {}  Assignor: {}  Members: {}  Coordinator: {}",
        description.group_id,
        description.state,
        if description.protocol.is_empty() {
            "-"
        } else {
            &description.protocol
        },
        description.members.len(),
        description.coordinator
    );
    out!();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let (member, client_id, host) = row
                .owner
                .clone()
                .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
            vec![
                row.partition.topic.clone(),
                row.partition.partition.to_string(),
                row.committed
                    .map_or("-".into(), |offset| offset.to_string()),
                row.log_end.to_string(),
                row.committed.map_or("-".into(), |offset| {
                    (row.log_end - offset).max(0).to_string()
                }),
                member,
                client_id,
                host,
            ]
        })
        .collect();
    out_raw!(
        "{}",
        render_table(
            &[
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "CLIENT-ID",
                "HOST"
            ],
            &table
        )
    );
    Ok(())
}

async fn committed_offsets(
    client: &Client,
    group_id: &str,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let coordinator = group::find_coordinator(client, group_id).await?;
    let connection = client.coordinator_connection(coordinator).await?;
    let offsets = group::fetch_committed_offsets(&connection, group_id, None).await?;
    Ok(offsets
        .into_iter()
        .filter(|(_, offset)| *offset >= 0)
        .collect())
}

/// Every partition the group has an offset for or a member owns, with its log end and owner.
async fn lag_rows(
    client: &Client,
    description: &GroupDescription,
    committed: &BTreeMap<TopicPartition, i64>,
) -> anyhow::Result<Vec<PartitionLag>> {
    let mut owners = BTreeMap::new();
    for member in &description.members {
        for partition in &member.assignment {
            let owner = (
                member.member_id.clone(),
                member.client_id.clone(),
                member.client_host.clone(),
            );
            owners.insert(partition.clone(), owner);
        }
    }
    let partitions: BTreeSet<TopicPartition> =
        committed.keys().chain(owners.keys()).cloned().collect();
    let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
    let ends = Admin::new(client.clone())
        .list_offsets(&partitions, LATEST_TIMESTAMP)
        .await?;
    Ok(partitions
        .into_iter()
        .map(|partition| PartitionLag {
            committed: committed.get(&partition).copied(),
            log_end: ends.get(&partition).map_or(-1, |answer| answer.offset),
            owner: owners.get(&partition).cloned(),
            partition,
        })
        .collect())
}

fn print_describe_json(
    description: &GroupDescription,
    rows: &[PartitionLag],
) -> anyhow::Result<()> {
    let document = json!({
        "group": description.group_id,
        "state": description.state,
        "assignor": description.protocol,
        "coordinator": description.coordinator,
        "members": description.members.iter().map(|member| json!({
            "member_id": member.member_id,
            "group_instance_id": member.group_instance_id,
            "client_id": member.client_id,
            "host": member.client_host,
            "assignment": member.assignment.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "partitions": rows.iter().map(|row| json!({
            "topic": row.partition.topic,
            "partition": row.partition.partition,
            "committed_offset": row.committed,
            "log_end_offset": row.log_end,
            "lag": row.committed.map(|offset| (row.log_end - offset).max(0)),
            "member_id": row.owner.as_ref().map(|owner| owner.0.clone()),
        })).collect::<Vec<_>>(),
    });
    out!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    for group_id in &args.groups {
        group::delete_groups(&client, std::slice::from_ref(group_id)).await?;
        out!("Deleted group {group_id}.");
    }
    Ok(())
}

async fn reset_offsets(args: ResetArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let description = group::describe_group(&client, &args.group).await?;
    if !description.members.is_empty() {
        anyhow::bail!(
            "group `{}` has {} active member(s); stop them before resetting its offsets",
            args.group,
            description.members.len()
        );
    }
    let topic = client.topic_metadata(&args.topic, false).await?;
    let partitions: Vec<TopicPartition> = topic
        .partitions
        .iter()
        .map(|partition| TopicPartition::new(&args.topic, partition.partition))
        .filter(|partition| {
            args.partitions.is_empty() || args.partitions.contains(&partition.partition)
        })
        .collect();
    if let Some(missing) = args
        .partitions
        .iter()
        .find(|p| !partitions.iter().any(|c| c.partition == **p))
    {
        anyhow::bail!("topic `{}` has no partition {missing}", args.topic);
    }
    let admin = Admin::new(client.clone());
    let starts = offsets_at(&admin, &partitions, EARLIEST_TIMESTAMP).await?;
    let ends = offsets_at(&admin, &partitions, LATEST_TIMESTAMP).await?;
    let committed = committed_offsets(&client, &args.group).await?;
    let mut new_offsets = BTreeMap::new();
    for partition in &partitions {
        let (start, end) = (starts[partition], ends[partition]);
        let target = match (&args.to_offset, &args.to_datetime, &args.shift_by) {
            _ if args.to_earliest => start,
            _ if args.to_latest => end,
            (Some(offset), _, _) => *offset,
            (_, Some(timestamp_ms), _) => {
                let found = admin
                    .list_offsets(std::slice::from_ref(partition), *timestamp_ms)
                    .await?;
                found
                    .get(partition)
                    .map(|answer| answer.offset)
                    .filter(|o| *o >= 0)
                    .unwrap_or(end)
            }
            (_, _, Some(shift)) => committed
                .get(partition)
                .copied()
                .unwrap_or(start)
                .saturating_add(*shift),
            _ => anyhow::bail!(
                "give one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by"
            ),
        };
        new_offsets.insert(partition.clone(), target.clamp(start, end));
    }
    print_reset(&args, &committed, &new_offsets)?;
    if args.dry_run {
        return Ok(());
    }
    let coordinator = group::find_coordinator(&client, &args.group).await?;
    let connection = client.coordinator_connection(coordinator).await?;
    group::commit_offsets(&connection, &args.group, -1, "", &new_offsets).await?;
    if args.output == OutputFormat::Table {
        out!(
            "Committed {} offsets for group {}.",
            new_offsets.len(),
            args.group
        );
    }
    Ok(())
}

async fn offsets_at(
    admin: &Admin,
    partitions: &[TopicPartition],
    timestamp_ms: i64,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let answers = admin.list_offsets(partitions, timestamp_ms).await?;
    let offsets: BTreeMap<TopicPartition, i64> =
        answers.into_iter().map(|(p, a)| (p, a.offset)).collect();
    if let Some(missing) = partitions.iter().find(|p| !offsets.contains_key(*p)) {
        anyhow::bail!("the broker returned no offset for {missing}");
    }
    Ok(offsets)
}

fn print_reset(
    args: &ResetArgs,
    committed: &BTreeMap<TopicPartition, i64>,
    new_offsets: &BTreeMap<TopicPartition, i64>,
) -> anyhow::Result<()> {
    if args.output == OutputFormat::Json {
        let rows: Vec<_> = new_offsets
            .iter()
            .map(|(partition, offset)| {
                json!({
                    "topic": partition.topic,
                    "partition": partition.partition,
                    "previous_offset": committed.get(partition),
                    "new_offset": offset,
                })
            })
            .collect();
        out!(
            "{}",
            json!({"group": args.group, "dry_run": args.dry_run, "offsets": rows})
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = new_offsets
        .iter()
        .map(|(partition, offset)| {
            vec![
                partition.topic.clone(),
                partition.partition.to_string(),
                committed
                    .get(partition)
                    .map_or("-".into(), ToString::to_string),
                offset.to_string(),
            ]
        })
        .collect();
    out_raw!(
        "{}",
        render_table(
            &["TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET"],
            &rows
        )
    );
    Ok(())
}
