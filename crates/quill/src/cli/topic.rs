//! `quill topic …`: what kafka-topics.sh and kafka-configs.sh do for topics.

use clap::{Args, Subcommand};
use quill_client::admin::{is_unknown_topic, NewTopic, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use quill_client::client::TopicMetadata;
use quill_client::{Admin, TopicPartition};
use serde_json::json;

use super::broker_metrics::{self, CleanerState, MetricsArgs, MetricsUrl};
use super::output::{join_ids, render_table, OutputFormat};
use super::{parse_key_value, ConnectionArgs};

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    #[command(after_help = "Examples:
  quill topic create orders -p 3 -r 1
  quill topic create audit -p 1 -c retention.ms=604800000 -c cleanup.policy=delete
  quill topic create orders --if-not-exists")]
    Create(CreateArgs),
    /// List topics.
    #[command(after_help = "Examples:
  quill topic list
  quill topic list --output json | jq -r '.[].name'")]
    List(ListArgs),
    /// Show partitions (leader, replicas, ISR, offsets) and configs with their sources; for a
    /// compacted topic also the log cleaner's position and dirty ratio (from the broker's
    /// metrics endpoint, given with --metrics).
    #[command(after_help = "Examples:
  quill topic describe orders
  quill topic describe orders --output json
  quill topic describe users --metrics 127.0.0.1:9404   # the broker's metrics.listen

For a compacted topic (cleanup.policy includes compact) the table adds FIRST-DIRTY (the
cleaner's position: records below it are cleaned) and DIRTY-RATIO (dirty bytes over the
cleanable range, compared with min.cleanable.dirty.ratio). No Kafka response carries them, so
they are read from the metrics endpoint of the broker that hosts the partitions (--metrics or
QUILL_METRICS); without it, or when it cannot be read, they show `-` and one line on stderr
says why.")]
    Describe(DescribeArgs),
    /// Delete one or more topics.
    #[command(after_help = "Examples:
  quill topic delete orders
  quill topic delete a b c --if-exists")]
    Delete(DeleteArgs),
    /// Set or remove (revert to default) topic configs.
    #[command(after_help = "Examples:
  quill topic alter-config orders --set retention.ms=86400000
  quill topic alter-config orders --delete retention.ms")]
    AlterConfig(AlterConfigArgs),
    /// Grow a topic to N partitions (partitions can only be added).
    #[command(after_help = "Examples:
  quill topic add-partitions orders -n 6")]
    AddPartitions(AddPartitionsArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Topic name
    name: String,
    /// Number of partitions [default: the broker's num.partitions]
    #[arg(short = 'p', long, value_name = "N")]
    partitions: Option<i32>,
    /// Replication factor [default: the broker's default.replication.factor]
    #[arg(short = 'r', long, value_name = "N")]
    replication_factor: Option<i16>,
    /// Topic config, e.g. -c retention.ms=3600000 (repeatable)
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    configs: Vec<(String, String)>,
    /// Succeed if the topic already exists
    #[arg(long)]
    if_not_exists: bool,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Include internal topics (e.g. __consumer_offsets)
    #[arg(long)]
    internal: bool,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// Topic name
    name: String,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Topic names
    #[arg(required = true)]
    names: Vec<String>,
    /// Succeed if a topic does not exist
    #[arg(long)]
    if_exists: bool,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Args, Debug)]
pub struct AlterConfigArgs {
    /// Topic name
    name: String,
    /// Set a config (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    set: Vec<(String, String)>,
    /// Remove a topic-level config so the default applies again (repeatable)
    #[arg(long = "delete", value_name = "KEY")]
    delete: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Args, Debug)]
pub struct AddPartitionsArgs {
    /// Topic name
    name: String,
    /// The new total number of partitions
    #[arg(short = 'n', long = "partitions", value_name = "N")]
    total: i32,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

pub async fn run(command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create(args) => create(args).await,
        TopicCommand::List(args) => list(args).await,
        TopicCommand::Describe(args) => describe(args).await,
        TopicCommand::Delete(args) => delete(args).await,
        TopicCommand::AlterConfig(args) => alter_config(args).await,
        TopicCommand::AddPartitions(args) => add_partitions(args).await,
    }
}

async fn admin(connection: &ConnectionArgs) -> anyhow::Result<Admin> {
    Ok(Admin::new(connection.connect().await?))
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let admin = admin(&args.connection).await?;
    let topic = NewTopic {
        name: args.name.clone(),
        partitions: args.partitions.unwrap_or(-1),
        replication_factor: args.replication_factor.unwrap_or(-1),
        configs: args.configs,
    };
    let created = match admin.create_topics(&[topic]).await {
        Ok(()) => true,
        Err(error)
            if args.if_not_exists
                && error.kafka_error() == Some(quill_client::ResponseError::TopicAlreadyExists) =>
        {
            false
        }
        Err(error) => return Err(error.into()),
    };
    match (args.output, created) {
        (OutputFormat::Json, _) => out!("{}", json!({"topic": args.name, "created": created})),
        (OutputFormat::Table, true) => out!("Created topic {}.", args.name),
        (OutputFormat::Table, false) => out!("Topic {} already exists.", args.name),
    }
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let admin = admin(&args.connection).await?;
    let topics: Vec<TopicMetadata> = admin
        .list_topics()
        .await?
        .into_iter()
        .filter(|topic| args.internal || !topic.is_internal)
        .collect();
    match args.output {
        OutputFormat::Json => {
            let documents: Vec<_> = topics
                .iter()
                .map(|topic| {
                    json!({
                        "name": topic.name,
                        "topic_id": topic.topic_id,
                        "partitions": topic.partitions.len(),
                        "replication_factor": replication_factor(topic),
                        "internal": topic.is_internal,
                    })
                })
                .collect();
            out!("{}", serde_json::to_string_pretty(&documents)?);
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = topics
                .iter()
                .map(|topic| {
                    vec![
                        topic.name.clone(),
                        topic.partitions.len().to_string(),
                        replication_factor(topic).to_string(),
                    ]
                })
                .collect();
            out_raw!(
                "{}",
                render_table(&["TOPIC", "PARTITIONS", "REPLICAS"], &rows)
            );
        }
    }
    Ok(())
}

fn replication_factor(topic: &TopicMetadata) -> usize {
    topic
        .partitions
        .first()
        .map_or(0, |partition| partition.replicas.len())
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = admin(&args.connection).await?;
    let topic = admin.describe_topic(&args.name).await?;
    let partitions: Vec<TopicPartition> = topic
        .partitions
        .iter()
        .map(|partition| TopicPartition::new(&topic.name, partition.partition))
        .collect();
    let starts = admin.list_offsets(&partitions, EARLIEST_TIMESTAMP).await?;
    let ends = admin.list_offsets(&partitions, LATEST_TIMESTAMP).await?;
    let configs = admin.describe_topic_configs(&args.name).await?;
    let cleaner = if is_compacted(&configs) {
        Some(CleanerView::read(&args.metrics, &topic).await)
    } else {
        None
    };
    if let Some(note) = cleaner.as_ref().and_then(|view| view.note.as_ref()) {
        eprintln!("quill: {note}");
    }
    let offset_of = |offsets: &std::collections::BTreeMap<
        TopicPartition,
        quill_client::admin::OffsetAndTimestamp,
    >,
                     partition: i32| {
        offsets
            .get(&TopicPartition::new(&topic.name, partition))
            .map_or(-1, |answer| answer.offset)
    };
    let cleaner_state = |partition: i32| {
        cleaner
            .as_ref()
            .and_then(|view| view.states.get(&partition).copied())
    };
    if args.output == OutputFormat::Json {
        let document = json!({
            "name": topic.name,
            "topic_id": topic.topic_id,
            "internal": topic.is_internal,
            "compacted": cleaner.is_some(),
            "cleaner_source": cleaner.as_ref().and_then(|view| view.source.as_ref().map(ToString::to_string)),
            "cleaner_note": cleaner.as_ref().and_then(|view| view.note.clone()),
            "partitions": topic.partitions.iter().map(|partition| json!({
                "partition": partition.partition,
                "leader": partition.leader,
                "leader_epoch": partition.leader_epoch,
                "replicas": partition.replicas,
                "isr": partition.isr,
                "offline_replicas": partition.offline_replicas,
                "start_offset": offset_of(&starts, partition.partition),
                "end_offset": offset_of(&ends, partition.partition),
                "cleaner": cleaner_state(partition.partition).map(|state| json!({
                    "first_dirty_offset": state.first_dirty_offset,
                    "dirty_ratio": state.dirty_ratio,
                })),
            })).collect::<Vec<_>>(),
            "configs": configs.iter().map(|config| json!({
                "name": config.name,
                "value": if config.sensitive { None } else { config.value.clone() },
                "source": config.source.as_str(),
                "read_only": config.read_only,
                "sensitive": config.sensitive,
            })).collect::<Vec<_>>(),
        });
        out!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    out!(
        "Topic: {}  Id: {}  Partitions: {}  Replication factor: {}",
        topic.name,
        topic.topic_id,
        topic.partitions.len(),
        replication_factor(&topic)
    );
    out!();
    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|partition| {
            let start = offset_of(&starts, partition.partition);
            let end = offset_of(&ends, partition.partition);
            let mut row = vec![
                partition.partition.to_string(),
                partition.leader.to_string(),
                partition.leader_epoch.to_string(),
                join_ids(&partition.replicas),
                join_ids(&partition.isr),
                start.to_string(),
                end.to_string(),
                (end - start).max(0).to_string(),
            ];
            if cleaner.is_some() {
                let state = cleaner_state(partition.partition);
                row.push(state.map_or("-".into(), |s| s.first_dirty_offset.to_string()));
                row.push(state.map_or("-".into(), |s| format!("{:.2}", s.dirty_ratio)));
            }
            row
        })
        .collect();
    let mut header = vec![
        "PARTITION",
        "LEADER",
        "EPOCH",
        "REPLICAS",
        "ISR",
        "START",
        "END",
        "RECORDS",
    ];
    if cleaner.is_some() {
        header.extend(["FIRST-DIRTY", "DIRTY-RATIO"]);
    }
    out_raw!("{}", render_table(&header, &rows));
    out!();
    let rows: Vec<Vec<String>> = configs
        .iter()
        .map(|config| {
            let value = if config.sensitive {
                "(sensitive)".to_string()
            } else {
                config.value.clone().unwrap_or_else(|| "(null)".into())
            };
            vec![
                config.name.clone(),
                value,
                config.source.as_str().to_string(),
            ]
        })
        .collect();
    out_raw!("{}", render_table(&["CONFIG", "VALUE", "SOURCE"], &rows));
    Ok(())
}

/// Whether the topic's `cleanup.policy` (as described, whatever its source) includes `compact`.
fn is_compacted(configs: &[quill_client::admin::ConfigEntry]) -> bool {
    configs
        .iter()
        .find(|config| config.name == "cleanup.policy")
        .and_then(|config| config.value.as_deref())
        .is_some_and(|policy| policy.split(',').any(|part| part.trim() == "compact"))
}

/// The log cleaner's view of a compacted topic's partitions, from a broker's metrics endpoint.
struct CleanerView {
    /// The endpoint read, when one was given and is well formed.
    source: Option<MetricsUrl>,
    states: std::collections::BTreeMap<i32, CleanerState>,
    /// Why some or all partitions have no state; `None` when every partition has one.
    note: Option<String>,
}

impl CleanerView {
    async fn read(metrics: &MetricsArgs, topic: &TopicMetadata) -> CleanerView {
        let mut view = CleanerView {
            source: None,
            states: Default::default(),
            note: None,
        };
        let Some(address) = metrics.metrics.as_deref() else {
            view.note = Some(
                "the cleaner's position and dirty ratio are on the broker's metrics endpoint: \
                 pass --metrics HOST:PORT (its metrics.listen) or set QUILL_METRICS to show them"
                    .into(),
            );
            return view;
        };
        let url = match MetricsUrl::parse(address) {
            Ok(url) => url,
            Err(error) => {
                view.note = Some(format!("{error:#}"));
                return view;
            }
        };
        match broker_metrics::scrape(&url).await {
            Ok(text) => view.states = broker_metrics::cleaner_states(&text, &topic.name),
            Err(error) => {
                view.note = Some(format!(
                    "cannot read the cleaner state from {url}: {error:#}"
                ));
                view.source = Some(url);
                return view;
            }
        }
        let missing: Vec<i32> = topic
            .partitions
            .iter()
            .map(|partition| partition.partition)
            .filter(|partition| !view.states.contains_key(partition))
            .collect();
        if !missing.is_empty() {
            view.note = Some(format!(
                "{url} reports no cleaner state for partition(s) {} of {} \
                 (that broker does not host them, or it is not a Quill broker)",
                join_ids(&missing),
                topic.name
            ));
        }
        view.source = Some(url);
        view
    }
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let admin = admin(&args.connection).await?;
    let mut results = Vec::new();
    for name in &args.names {
        let deleted = match admin.delete_topics(std::slice::from_ref(name)).await {
            Ok(()) => true,
            Err(error) if args.if_exists && is_unknown_topic(&error) => false,
            Err(error) => return Err(error.into()),
        };
        match (args.output, deleted) {
            (OutputFormat::Json, _) => results.push(json!({"topic": name, "deleted": deleted})),
            (OutputFormat::Table, true) => out!("Deleted topic {name}."),
            (OutputFormat::Table, false) => out!("Topic {name} does not exist."),
        }
    }
    if args.output == OutputFormat::Json {
        out!("{}", serde_json::Value::Array(results));
    }
    Ok(())
}

async fn alter_config(args: AlterConfigArgs) -> anyhow::Result<()> {
    if args.set.is_empty() && args.delete.is_empty() {
        anyhow::bail!("nothing to change: give --set KEY=VALUE and/or --delete KEY");
    }
    let admin = admin(&args.connection).await?;
    admin
        .alter_topic_configs(&args.name, &args.set, &args.delete)
        .await?;
    match args.output {
        OutputFormat::Json => {
            let set: serde_json::Map<String, serde_json::Value> = args
                .set
                .iter()
                .map(|(key, value)| (key.clone(), value.clone().into()))
                .collect();
            out!(
                "{}",
                json!({"topic": args.name, "set": set, "deleted": args.delete})
            );
        }
        OutputFormat::Table => out!("Updated configs of topic {}.", args.name),
    }
    Ok(())
}

async fn add_partitions(args: AddPartitionsArgs) -> anyhow::Result<()> {
    let admin = admin(&args.connection).await?;
    admin.create_partitions(&args.name, args.total).await?;
    match args.output {
        OutputFormat::Json => out!("{}", json!({"topic": args.name, "partitions": args.total})),
        OutputFormat::Table => out!("Topic {} now has {} partitions.", args.name, args.total),
    }
    Ok(())
}
