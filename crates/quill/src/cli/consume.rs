//! `quill consume TOPIC…`: kafka-console-consumer.sh with kcat's output templates. Records go to
//! stdout; the count goes to stderr at the end (also after Ctrl-C).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use clap::Args;
use quill_client::consumer::OffsetReset;
use quill_client::{
    Consumer, ConsumerConfig, ConsumerRecord, GroupConsumer, GroupConsumerConfig, OffsetSpec,
    TopicPartition,
};

use super::ConnectionArgs;

pub const EXAMPLES: &str = "Examples:
  quill consume orders --from-beginning --until-end
  quill consume orders -o -10 -n 10                 # the last 10 records
  quill consume orders --timestamp 2026-11-21T09:30:00Z   # from a point in time
  quill consume orders --timestamp 1700000000000          # (or milliseconds)
  quill consume orders -p 0 -o 42 --print-keys
  quill consume orders -f '%p:%o %k=%s\\n'          # kcat-style template
  quill consume orders a b --format json --until-end | jq .value
  quill consume orders --group billing              # share partitions, commit positions
  quill consume orders --group billing --from-beginning --until-end  # (start: earliest if no commit)
  quill consume orders --group billing --group-instance-id billing-1  # static member (KIP-345)
  quill consume orders --group billing --assignment-strategy cooperative-sticky  # KIP-429

Template tokens: %t topic, %p partition, %o offset, %k key, %s value, %K key length,
%S value length, %T timestamp (ms), %h headers (k=v,…), %% a percent sign; \\n \\t escapes.";

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// Topics to read
    #[arg(required = true)]
    topics: Vec<String>,
    /// Start at the first record (same as --offset start)
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    from_beginning: bool,
    /// Where to start: start, end, an offset N, or -N (N before the end) [default: end]
    #[arg(short = 'o', long, value_name = "start|end|N|-N", value_parser = parse_offset, allow_hyphen_values = true, conflicts_with = "timestamp")]
    offset: Option<OffsetSpec>,
    /// Start at the first record with a timestamp at or after this time: milliseconds since the
    /// epoch, or a date-time like 2026-11-21T09:30:00Z (UTC unless an offset is given)
    #[arg(long, value_name = "MS|DATETIME", value_parser = parse_timestamp)]
    timestamp: Option<i64>,
    /// Only these partitions (repeatable) [default: all]
    #[arg(short = 'p', long = "partition", value_name = "N")]
    partitions: Vec<i32>,
    /// Stop after N records
    #[arg(short = 'n', long = "num", value_name = "N")]
    max_records: Option<u64>,
    /// Stop at the end of every partition, as it was when consuming started
    #[arg(short = 'e', long)]
    until_end: bool,
    /// Only records of committed transactions, up to the last stable offset (isolation.level
    /// read_committed)
    #[arg(long)]
    read_committed: bool,
    /// Consume as a member of this consumer group: partitions are shared with the group's other
    /// members, and positions are committed (and resumed from) in the group
    #[arg(short = 'g', long, value_name = "GROUP", conflicts_with_all = ["offset", "timestamp", "partitions"])]
    group: Option<String>,
    /// With --group: join as a static member with this `group.instance.id` (KIP-345). A
    /// restart within the session timeout gets the same partitions back without a rebalance;
    /// a second consumer with the same id fences this one
    #[arg(long, value_name = "ID", requires = "group")]
    group_instance_id: Option<String>,
    /// With --group: partition.assignment.strategy, preferred first [default: range,
    /// cooperative-sticky]. `cooperative-sticky` alone rebalances cooperatively (KIP-429):
    /// partitions that stay are kept while the group rebalances
    #[arg(long, value_name = "NAME,…", value_delimiter = ',', requires = "group",
          value_parser = ["range", "roundrobin", "cooperative-sticky"])]
    assignment_strategy: Vec<String>,
    /// Output: `json`, or a template like kcat's -f (see below) [default: '%s\n']
    #[arg(short = 'f', long = "format", value_name = "TEMPLATE|json")]
    format: Option<String>,
    /// Print the key, then --key-separator, then the value
    #[arg(short = 'K', long)]
    print_keys: bool,
    /// Separator used by --print-keys
    #[arg(long, default_value = "\t", value_name = "SEP")]
    key_separator: String,
    #[command(flatten)]
    connection: ConnectionArgs,
}

fn parse_offset(text: &str) -> Result<OffsetSpec, String> {
    match text {
        "start" | "beginning" | "earliest" => return Ok(OffsetSpec::Earliest),
        "end" | "latest" => return Ok(OffsetSpec::Latest),
        _ => {}
    }
    let number: i64 = text
        .parse()
        .map_err(|_| format!("expected start, end, N or -N, got `{text}`"))?;
    Ok(if number < 0 {
        OffsetSpec::FromEnd(-number)
    } else {
        OffsetSpec::Offset(number)
    })
}

/// Milliseconds since the epoch, or `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH:MM]` (UTC when no
/// offset is given).
pub(super) fn parse_timestamp(text: &str) -> Result<i64, String> {
    if let Ok(milliseconds) = text.parse::<i64>() {
        return Ok(milliseconds);
    }
    parse_datetime(text.trim()).ok_or_else(|| {
        format!("expected milliseconds since the epoch or a date-time like 2026-11-21T09:30:00Z, got `{text}`")
    })
}

fn parse_datetime(text: &str) -> Option<i64> {
    let (date, rest) = text.split_at(text.len().min(10));
    let mut fields = date.split('-');
    let year: i64 = fields.next()?.parse().ok()?;
    let month: i64 = fields.next()?.parse().ok()?;
    let day: i64 = fields.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || fields.next().is_some() {
        return None;
    }
    let rest = rest.strip_prefix(['T', ' ']).unwrap_or(rest);
    let (time, offset_ms) = split_zone(rest)?;
    let mut time_fields = time.split(':');
    let hours: i64 = time_fields
        .next()
        .filter(|t| !t.is_empty())
        .map_or(Some(0), |t| t.parse().ok())?;
    let minutes: i64 = time_fields.next().map_or(Some(0), |t| t.parse().ok())?;
    let (seconds, millis) = match time_fields.next() {
        None => (0, 0),
        Some(field) => {
            let (whole, fraction) = field.split_once('.').unwrap_or((field, ""));
            let millis = format!("{fraction:0<3}").get(..3)?.parse::<i64>().ok()?;
            (whole.parse::<i64>().ok()?, millis)
        }
    };
    if hours > 23 || minutes > 59 || seconds > 60 || time_fields.next().is_some() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds_of_day = hours * 3600 + minutes * 60 + seconds;
    Some((days * 86_400 + seconds_of_day) * 1000 + millis - offset_ms)
}

/// Splits a trailing `Z` or `±HH:MM` off a time, returning the offset in milliseconds.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(time) = time.strip_suffix('Z') {
        return Some((time, 0));
    }
    let Some(sign_at) = time.rfind(['+', '-']) else {
        return Some((time, 0));
    };
    let (time, zone) = time.split_at(sign_at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (hours, minutes) = zone
        .get(1..)?
        .split_once(':')
        .unwrap_or((zone.get(1..)?, "0"));
    let offset_minutes = hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?;
    Some((time, sign * offset_minutes * 60_000))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// How records are printed.
enum Printer {
    Json,
    Template(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    KeyLength,
    ValueLength,
    Timestamp,
    Headers,
}

fn parse_template(template: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let mut characters = template.chars();
    while let Some(character) = characters.next() {
        let token = match (character, characters.clone().next()) {
            ('%', Some(next)) => match next {
                't' => Some(Token::Topic),
                'p' => Some(Token::Partition),
                'o' => Some(Token::Offset),
                'k' => Some(Token::Key),
                's' => Some(Token::Value),
                'K' => Some(Token::KeyLength),
                'S' => Some(Token::ValueLength),
                'T' => Some(Token::Timestamp),
                'h' => Some(Token::Headers),
                '%' => Some(Token::Literal("%".into())),
                _ => None,
            },
            ('\\', Some(next)) => match next {
                'n' => Some(Token::Literal("\n".into())),
                't' => Some(Token::Literal("\t".into())),
                '\\' => Some(Token::Literal("\\".into())),
                _ => None,
            },
            _ => None,
        };
        match token {
            Some(token) => {
                characters.next();
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(token);
            }
            None => literal.push(character),
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    tokens
}

impl Printer {
    fn from_args(args: &ConsumeArgs) -> Printer {
        match args.format.as_deref() {
            Some("json") => Printer::Json,
            Some(template) => Printer::Template(parse_template(template)),
            None if args.print_keys => Printer::Template(vec![
                Token::Key,
                Token::Literal(args.key_separator.clone()),
                Token::Value,
                Token::Literal("\n".into()),
            ]),
            None => Printer::Template(vec![Token::Value, Token::Literal("\n".into())]),
        }
    }

    fn write(&self, out: &mut impl Write, record: &ConsumerRecord) -> std::io::Result<()> {
        match self {
            Printer::Json => {
                let headers: serde_json::Map<String, serde_json::Value> = record
                    .headers
                    .iter()
                    .map(|(name, value)| (name.clone(), value.as_deref().map(lossy).into()))
                    .collect();
                let document = serde_json::json!({
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "timestamp": record.timestamp_ms,
                    "key": record.key.as_deref().map(lossy),
                    "value": record.value.as_deref().map(lossy),
                    "headers": headers,
                });
                writeln!(out, "{document}")
            }
            Printer::Template(tokens) => {
                for token in tokens {
                    write_token(out, token, record)?;
                }
                Ok(())
            }
        }
    }
}

fn write_token(
    out: &mut impl Write,
    token: &Token,
    record: &ConsumerRecord,
) -> std::io::Result<()> {
    match token {
        Token::Literal(text) => out.write_all(text.as_bytes()),
        Token::Topic => out.write_all(record.topic.as_bytes()),
        Token::Partition => write!(out, "{}", record.partition),
        Token::Offset => write!(out, "{}", record.offset),
        Token::Key => out.write_all(record.key.as_deref().unwrap_or_default()),
        Token::Value => out.write_all(record.value.as_deref().unwrap_or_default()),
        Token::KeyLength => write!(
            out,
            "{}",
            record.key.as_ref().map_or(-1, |k| k.len() as i64)
        ),
        Token::ValueLength => write!(
            out,
            "{}",
            record.value.as_ref().map_or(-1, |v| v.len() as i64)
        ),
        Token::Timestamp => write!(out, "{}", record.timestamp_ms),
        Token::Headers => {
            for (index, (name, value)) in record.headers.iter().enumerate() {
                if index > 0 {
                    out.write_all(b",")?;
                }
                out.write_all(name.as_bytes())?;
                out.write_all(b"=")?;
                out.write_all(value.as_deref().unwrap_or_default())?;
            }
            Ok(())
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let consumer_config = ConsumerConfig {
        max_wait: Duration::from_millis(500),
        // With a group, --from-beginning means: where the group has no committed offset.
        offset_reset: if args.from_beginning {
            OffsetReset::Earliest
        } else {
            OffsetReset::Latest
        },
        isolation_level: i8::from(args.read_committed),
        ..ConsumerConfig::default()
    };
    let mut source = match &args.group {
        Some(group) => {
            for topic in &args.topics {
                client.topic_metadata(topic, false).await?;
            }
            let mut config = GroupConsumerConfig::new(group.clone());
            config.consumer = consumer_config;
            config.group_instance_id = args.group_instance_id.clone();
            if !args.assignment_strategy.is_empty() {
                config.assignors = args.assignment_strategy.clone();
            }
            let consumer = Box::new(GroupConsumer::new(client, config, args.topics.clone()));
            Source::Group {
                consumer,
                ends: BTreeMap::new(),
                ends_generation: None,
            }
        }
        None => {
            let mut consumer = Consumer::new(client, consumer_config);
            let partitions = chosen_partitions(&consumer, &args).await?;
            let start = match (args.from_beginning, args.offset, args.timestamp) {
                (true, _, _) => OffsetSpec::Earliest,
                (_, Some(spec), _) => spec,
                (_, _, Some(timestamp_ms)) => OffsetSpec::Timestamp(timestamp_ms),
                _ => OffsetSpec::Latest,
            };
            let starts = partitions
                .iter()
                .map(|partition| (partition.clone(), start));
            consumer.assign(starts.collect()).await?;
            let ends = if args.until_end {
                consumer.end_offsets(&partitions).await?
            } else {
                BTreeMap::new()
            };
            Source::Assigned { consumer, ends }
        }
    };
    let printer = Printer::from_args(&args);
    let consumed = consume_loop(&mut source, &args, &printer).await?;
    source.finish().await?;
    eprintln!("Consumed {consumed} records.");
    Ok(())
}

/// Where records come from: explicitly assigned partitions, or a group's share of them.
enum Source {
    Assigned {
        consumer: Consumer,
        ends: BTreeMap<TopicPartition, i64>,
    },
    Group {
        consumer: Box<GroupConsumer>,
        /// End offsets of the current assignment, for --until-end.
        ends: BTreeMap<TopicPartition, i64>,
        ends_generation: Option<i32>,
    },
}

impl Source {
    async fn poll(&mut self, timeout: Duration) -> quill_client::Result<Vec<ConsumerRecord>> {
        match self {
            Source::Assigned { consumer, .. } => consumer.poll(timeout).await,
            Source::Group { consumer, .. } => consumer.poll(timeout).await,
        }
    }

    fn end_of(&self, partition: &TopicPartition) -> Option<i64> {
        match self {
            Source::Assigned { ends, .. } | Source::Group { ends, .. } => {
                ends.get(partition).copied()
            }
        }
    }

    /// Whether every partition read is at the end it had when reading started (for a group:
    /// when the current assignment started).
    async fn reached_end(&mut self) -> anyhow::Result<bool> {
        match self {
            Source::Assigned { consumer, ends } => Ok(all_at_end(consumer.positions(), ends)),
            Source::Group {
                consumer,
                ends,
                ends_generation,
            } => {
                if consumer.generation().is_none() || consumer.assignment().is_empty() {
                    return Ok(false);
                }
                if *ends_generation != consumer.generation() {
                    *ends = consumer
                        .consumer()
                        .end_offsets(consumer.assignment())
                        .await?;
                    *ends_generation = consumer.generation();
                }
                Ok(all_at_end(consumer.positions(), ends))
            }
        }
    }

    /// Moves partitions back to records that were fetched but not printed, so a group does not
    /// commit past them.
    async fn rewind(&mut self, unprinted: BTreeMap<TopicPartition, i64>) -> anyhow::Result<()> {
        if let Source::Group { consumer, .. } = self {
            for (partition, offset) in unprinted {
                consumer
                    .seek(&partition, OffsetSpec::Offset(offset))
                    .await?;
            }
        }
        Ok(())
    }

    /// A group member commits and leaves.
    async fn finish(self) -> anyhow::Result<()> {
        if let Source::Group { consumer, .. } = self {
            consumer.close().await?;
        }
        Ok(())
    }
}

fn all_at_end(
    positions: &BTreeMap<TopicPartition, i64>,
    ends: &BTreeMap<TopicPartition, i64>,
) -> bool {
    ends.iter().all(|(partition, end)| {
        positions
            .get(partition)
            .is_some_and(|position| position >= end)
    })
}

async fn chosen_partitions(
    consumer: &Consumer,
    args: &ConsumeArgs,
) -> anyhow::Result<Vec<TopicPartition>> {
    let mut chosen = Vec::new();
    for topic in &args.topics {
        let all = consumer.partitions_of(topic).await?;
        if args.partitions.is_empty() {
            chosen.extend(all);
            continue;
        }
        for &partition in &args.partitions {
            let wanted = TopicPartition::new(topic, partition);
            if !all.contains(&wanted) {
                anyhow::bail!(
                    "topic `{topic}` has no partition {partition} (it has {})",
                    all.len()
                );
            }
            chosen.push(wanted);
        }
    }
    Ok(chosen)
}

async fn consume_loop(
    source: &mut Source,
    args: &ConsumeArgs,
    printer: &Printer,
) -> anyhow::Result<u64> {
    let limit = args.max_records.unwrap_or(u64::MAX);
    let mut consumed = 0u64;
    let stdout = std::io::stdout();
    let mut interrupt = super::interrupt::Interrupt::listen()?;
    while consumed < limit && !(args.until_end && source.reached_end().await?) {
        let records = tokio::select! {
            () = interrupt.received() => break,
            polled = source.poll(Duration::from_secs(1)) => polled?,
        };
        let mut unprinted: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for record in &records {
            let partition = TopicPartition::new(&record.topic, record.partition);
            if consumed >= limit {
                unprinted.entry(partition).or_insert(record.offset);
                continue;
            }
            if args.until_end
                && source
                    .end_of(&partition)
                    .is_some_and(|end| record.offset >= end)
            {
                continue;
            }
            match printer.write(&mut out, record) {
                Ok(()) => consumed += 1,
                // The reader went away (`| head`): stop quietly, like cat.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(consumed)
                }
                Err(error) => return Err(error.into()),
            }
        }
        match out.flush() {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(consumed),
            other => other?,
        }
        drop(out);
        source.rewind(unprinted).await?;
    }
    Ok(consumed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp_ms: 1000,
            timestamp_type: quill_client::TimestampType::Creation,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                ("a".into(), Some(Bytes::from_static(b"1"))),
                ("b".into(), None),
            ],
        }
    }

    fn render(printer: &Printer) -> String {
        let mut out = Vec::new();
        printer.write(&mut out, &record()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn templates_follow_kcat_tokens() {
        let printer = Printer::Template(parse_template("%t/%p@%o %k=%s %K %S %T [%h] 100%%\\n"));
        assert_eq!(render(&printer), "t/2@7 k=v 1 1 1000 [a=1,b=] 100%\n");
        let printer = Printer::Template(parse_template("%x\\q"));
        assert_eq!(render(&printer), "%x\\q");
    }

    #[test]
    fn json_output_has_every_field() {
        let line = render(&Printer::Json);
        let document: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(document["key"], "k");
        assert_eq!(document["value"], "v");
        assert_eq!(document["partition"], 2);
        assert_eq!(document["offset"], 7);
        assert_eq!(document["headers"]["a"], "1");
        assert!(document["headers"]["b"].is_null());
    }

    #[test]
    fn timestamps_parse_as_milliseconds_or_date_times() {
        assert_eq!(parse_timestamp("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_timestamp("1970-01-01"), Ok(0));
        // 2023-11-14T22:13:20Z is 1 700 000 000 s after the epoch.
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-14 22:13:20.5"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(
            parse_timestamp("2023-11-15T00:13:20+02:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T21:13:20-01:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(parse_timestamp("2000-03-01T00:00"), Ok(951_868_800_000));
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("2023-13-01").is_err());
        assert!(parse_timestamp("2023-11-14T25:00").is_err());
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("start"), Ok(OffsetSpec::Earliest));
        assert_eq!(parse_offset("end"), Ok(OffsetSpec::Latest));
        assert_eq!(parse_offset("42"), Ok(OffsetSpec::Offset(42)));
        assert_eq!(parse_offset("-10"), Ok(OffsetSpec::FromEnd(10)));
        assert!(parse_offset("soon").is_err());
    }
}
