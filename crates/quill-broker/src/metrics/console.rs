//! The web console (`console.enabled`), served with the metrics on `metrics.listen`:
//! plain server-rendered HTML, no script, no external resource, everything in the binary.
//!
//! Pages: `/console` (cluster, brokers, topics with partitions, records and sizes),
//! `/console/topics/<name>` (partitions: leader, replicas, ISR, offsets, size, segments, and
//! the cleaner's position and dirty ratio on compacted topics), `/console/groups` (consumer
//! groups, their state, committed offsets and lag per partition). The data is what the
//! Prometheus scrape reads ([`collect::gather`]: the same logs, high watermarks and committed
//! offsets, with the same bounds), so the console and the metrics never disagree.
//!
//! Everything a client chose (topic names, group ids, config values) is HTML-escaped, and the
//! pages are sent with a Content-Security-Policy that allows no script at all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use quill_group::api::DescribedGroup;
use quill_meta::topic_config::{self, BrokerConfigLayers, ConfigSource};
use quill_meta::MetadataImage;

use super::browse::{self, Shown};
use super::collect::{self, Gathered, PartitionRow};
use crate::state::BrokerState;

/// What a console request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Page<'a> {
    Overview,
    Topic(&'a str),
    /// A topic's message browser, with the request's query string.
    Messages(&'a str, Option<&'a str>),
    Groups,
    /// The dry run of a consumer-group offset reset, with the request's query string.
    ResetDryRun(Option<&'a str>),
}

impl<'a> Page<'a> {
    /// The page of a request path (and query), if it is a console path.
    pub fn from_path(path: &'a str, query: Option<&'a str>) -> Option<Page<'a>> {
        match path {
            "/console" | "/console/" => Some(Page::Overview),
            "/console/groups" => Some(Page::Groups),
            "/console/groups/reset" => Some(Page::ResetDryRun(query)),
            _ => {
                let rest = path
                    .strip_prefix("/console/topics/")
                    .filter(|rest| !rest.is_empty())?;
                match rest.split_once('/') {
                    None => Some(Page::Topic(rest)),
                    Some((name, "messages")) if !name.is_empty() => {
                        Some(Page::Messages(name, query))
                    }
                    Some(_) => None,
                }
            }
        }
    }
}

/// A rendered page: whether the thing it shows exists, and its HTML.
pub struct Rendered {
    pub found: bool,
    pub html: String,
}

/// Groups whose members the groups page describes (each takes the group's lock briefly).
pub const MAX_DESCRIBED_GROUPS: usize = 1000;

/// Renders `page`; the logs and the group coordinator are read on the blocking pool.
pub async fn render(state: Arc<BrokerState>, page: Page<'_>, token: &str) -> Rendered {
    let image = state.image();
    let node_id = state.config.node_id;
    if let Page::Messages(name, query) = page {
        return messages(&state, &image, name, query, token).await;
    }
    if let Page::ResetDryRun(query) = page {
        return Rendered {
            found: true,
            html: super::reset::dry_run(&state, query, token).await,
        };
    }
    let describe_groups = page == Page::Groups;
    let gathering = state.clone();
    let gathered = tokio::task::spawn_blocking(move || {
        let gathered = collect::gather(&gathering);
        let described: Vec<DescribedGroup> = if describe_groups {
            gathered
                .groups
                .iter()
                .take(MAX_DESCRIBED_GROUPS)
                .map(|group| gathering.groups.describe_group(&group.group))
                .collect()
        } else {
            Vec::new()
        };
        (gathered, described)
    })
    .await;
    let (gathered, described) = match gathered {
        Ok(gathered) => gathered,
        Err(error) => {
            tracing::warn!(%error, "console could not read the logs");
            return Rendered {
                found: false,
                html: layout("Error", "<p>The broker could not read its logs.</p>"),
            };
        }
    };
    match page {
        Page::Overview => Rendered {
            found: true,
            html: overview(&image, node_id, &gathered, token),
        },
        Page::Topic(name) => topic(&state, &image, name, &gathered, token),
        Page::Groups => {
            let lag_series: Vec<(String, Vec<i64>)> = gathered
                .groups
                .iter()
                .map(|group| {
                    (
                        group.group.clone(),
                        state.metrics.lag_history.series(&group.group),
                    )
                })
                .collect();
            Rendered {
                found: true,
                html: groups(&image, &gathered, &described, &lag_series),
            }
        }
        Page::Messages(..) | Page::ResetDryRun(_) => unreachable_page(),
    }
}

/// Messages pages return before the logs are gathered; kept total rather than panicking.
fn unreachable_page() -> Rendered {
    Rendered {
        found: false,
        html: layout("Not found", "<p>No such page.</p>"),
    }
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A path segment for a topic link: topic names are `[A-Za-z0-9._-]`, anything else (an
/// older Quill, a bug) is percent-encoded rather than trusted.
pub fn path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// Parses an `application/x-www-form-urlencoded` body (`+` is a space, `%XX` a byte; values
/// must be UTF-8). `None` when malformed.
pub fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let decode = |text: &[u8]| -> Option<String> {
        let mut bytes = Vec::with_capacity(text.len());
        let mut index = 0;
        while let Some(&byte) = text.get(index) {
            match byte {
                b'+' => bytes.push(b' '),
                b'%' => {
                    let hex = std::str::from_utf8(text.get(index + 1..index + 3)?).ok()?;
                    bytes.push(u8::from_str_radix(hex, 16).ok()?);
                    index += 2;
                }
                other => bytes.push(other),
            }
            index += 1;
        }
        String::from_utf8(bytes).ok()
    };
    body.split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |&byte| byte == b'=');
            let name = decode(parts.next().unwrap_or_default())?;
            let value = decode(parts.next().unwrap_or_default())?;
            Some((name, value))
        })
        .collect()
}

/// Bytes in binary units, one decimal (`1.5 MiB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330}\
nav{background:#1d2330;padding:10px 20px}nav a{color:#fff;margin-right:18px;text-decoration:none}\
nav b{color:#9cc4ff;margin-right:28px}main{padding:8px 20px 24px}\
table{border-collapse:collapse;margin:8px 0 20px}\
th,td{border-bottom:1px solid #dde;padding:4px 12px;text-align:left}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
th{background:#f2f4f8}.muted{color:#667}code{background:#f2f4f8;padding:1px 4px}\
td{vertical-align:top}pre{margin:0;white-space:pre-wrap;word-break:break-all;max-width:60em}\
.header{display:flex;gap:8px}svg.spark{background:#f7f9fc}.header pre:first-child{font-weight:600}form{margin:12px 0}#error{color:#b00020}";

/// The page frame; `title` and `body` must already be escaped where they hold client text.
pub(super) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title} · Quill</title><style>{STYLE}</style></head>\
<body><nav><b>Quill</b><a href=\"/console\">Overview</a>\
<a href=\"/console/groups\">Consumer groups</a><a href=\"/metrics\">Metrics</a></nav>\
<main>{body}</main></body></html>\n"
    )
}

/// A table; cells are already-escaped HTML, `numeric[i]` right-aligns column i.
pub(super) fn table(headers: &[&str], numeric: &[bool], rows: &[Vec<String>], id: &str) -> String {
    let mut html = format!("<table id=\"{id}\"><thead><tr>");
    for (index, header) in headers.iter().enumerate() {
        let class = if numeric.get(index) == Some(&true) {
            " class=\"n\""
        } else {
            ""
        };
        let _ = write!(html, "<th{class}>{header}</th>");
    }
    html.push_str("</tr></thead><tbody>");
    for row in rows {
        html.push_str("<tr>");
        for (index, cell) in row.iter().enumerate() {
            let class = if numeric.get(index) == Some(&true) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(html, "<td{class}>{cell}</td>");
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn omitted_note(count: usize, what: &str) -> String {
    if count == 0 {
        String::new()
    } else {
        format!(
            "<p class=\"muted\">{count} {what} left out (the console shows at most as many as the metrics do).</p>"
        )
    }
}

fn overview(image: &MetadataImage, node_id: i32, gathered: &Gathered, token: &str) -> String {
    let mut body = String::from("<h1>Overview</h1>");
    let _ = write!(
        body,
        "<p>Cluster <code id=\"cluster-id\">{}</code>, served by broker {node_id}.</p>",
        escape(&image.cluster_id)
    );
    body.push_str("<h2>Brokers</h2>");
    let brokers: Vec<Vec<String>> = image
        .brokers
        .values()
        .map(|broker| {
            vec![
                broker.node_id.to_string(),
                escape(&format!("{}:{}", broker.host, broker.port)),
                escape(broker.rack.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    body.push_str(&table(
        &["Id", "Address", "Rack"],
        &[true],
        &brokers,
        "brokers",
    ));

    let partitions: Vec<&quill_meta::PartitionInfo> = image
        .topics
        .values()
        .flat_map(|topic| topic.partitions.iter())
        .collect();
    let offline = partitions.iter().filter(|p| p.leader < 0).count();
    let under_replicated = partitions
        .iter()
        .filter(|p| p.isr.len() < p.replicas.len())
        .count();
    body.push_str(&throughput(&gathered.throughput));
    body.push_str("<h2>Partitions</h2>");
    body.push_str(&table(
        &["Partitions", "Offline", "Under-replicated"],
        &[true, true, true],
        &[vec![
            partitions.len().to_string(),
            offline.to_string(),
            under_replicated.to_string(),
        ]],
        "partition-health",
    ));
    // This broker's share, as its ReplicaManager gauges count it.
    let replication = &gathered.replication;
    let _ = write!(
        body,
        "<p>Broker {node_id} hosts {} partition replicas and leads {}; of those it leads, {} \
         are under min ISR and {} at min ISR; {} offline replicas here.</p>",
        replication.partition_count,
        replication.leader_count,
        replication.under_min_isr,
        replication.at_min_isr,
        replication.offline_replicas
    );

    body.push_str("<h2>Topics</h2>");
    // Size, records and whether the cleaner tracks it (compacted), per hosted topic.
    let mut totals: BTreeMap<&str, (u64, i64, bool)> = BTreeMap::new();
    for row in &gathered.partitions {
        let entry = totals.entry(row.topic.as_str()).or_default();
        entry.0 += row.size_bytes;
        entry.1 += (row.high_watermark - row.log_start_offset).max(0);
        entry.2 |= row.cleaner.is_some();
    }
    let topics: Vec<Vec<String>> = image
        .topics
        .values()
        .map(|topic| {
            let (size, records, compacted) =
                totals.get(topic.name.as_str()).copied().unwrap_or_default();
            let kind = if topic.name.starts_with("__") {
                "internal"
            } else if compacted {
                "compacted"
            } else {
                ""
            };
            vec![
                format!(
                    "<a href=\"/console/topics/{}\">{}</a>",
                    path_segment(&topic.name),
                    escape(&topic.name)
                ),
                topic.partitions.len().to_string(),
                records.to_string(),
                human_bytes(size),
                kind.to_string(),
            ]
        })
        .collect();
    body.push_str(&table(
        &["Topic", "Partitions", "Offsets", "Size", ""],
        &[false, true, true, true, false],
        &topics,
        "topics",
    ));
    body.push_str(&omitted_note(gathered.partitions_omitted, "partitions"));

    body.push_str("<h2>Consumer groups</h2>");
    let states: Vec<Vec<String>> = gathered
        .groups_by_state
        .iter()
        .map(|(state, count)| vec![escape(state), count.to_string()])
        .collect();
    body.push_str(&table(
        &["State", "Groups"],
        &[false, true],
        &states,
        "group-states",
    ));
    body.push_str(&create_topic_form(token, "", "", ""));
    layout("Overview", &body)
}

/// The create-topic form: a POST carrying the console's anti-forgery token.
fn create_topic_form(token: &str, name: &str, partitions: &str, configs: &str) -> String {
    format!(
        "<h2>Create a topic</h2><form id=\"create-topic\" method=\"post\" action=\"/console/topics\">\
<input type=\"hidden\" name=\"token\" value=\"{}\">\
<label>Name <input id=\"new-name\" name=\"name\" size=\"30\" value=\"{}\"></label> \
<label>Partitions <input id=\"new-partitions\" name=\"partitions\" size=\"4\" value=\"{}\"></label> \
<span class=\"muted\">(empty: the broker's num.partitions)</span><br>\
<label>Configs, one <code>name=value</code> a line<br>\
<textarea id=\"new-configs\" name=\"configs\" rows=\"3\" cols=\"50\">{}</textarea></label><br>\
<button id=\"create\" type=\"submit\">Create topic</button></form>",
        escape(token),
        escape(name),
        escape(partitions),
        escape(configs)
    )
}

/// What a create-topic form submission did.
pub enum Created {
    /// The topic exists now: its name, for the redirect to its page.
    Topic(String),
    /// Refused (by the form's own checks or by the CreateTopics path): the page to show.
    Refused(String),
}

/// Creates a topic from the form's fields through the broker's CreateTopics handler (the same
/// validation, planning and answer as a Kafka client gets).
pub async fn create_topic(
    state: &Arc<BrokerState>,
    form: &[(String, String)],
    token: &str,
) -> Created {
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    };
    let name = field("name").trim().to_string();
    let partitions_text = field("partitions").trim().to_string();
    let configs_text = field("configs").to_string();
    let refuse = |reason: String| {
        let body = format!(
            "<h1>Topic not created</h1><p id=\"error\">{}</p>{}",
            escape(&reason),
            create_topic_form(token, &name, &partitions_text, &configs_text)
        );
        Created::Refused(layout("Topic not created", &body))
    };
    let partitions = if partitions_text.is_empty() {
        -1
    } else {
        match partitions_text.parse::<i32>() {
            Ok(partitions) => partitions,
            Err(_) => return refuse("Partitions must be a whole number.".to_string()),
        }
    };
    let mut configs = Vec::new();
    for line in configs_text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        let Some((key, value)) = line.split_once('=') else {
            return refuse(format!("Config line `{line}` is not name=value."));
        };
        configs.push(
            kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default()
                .with_name(kafka_protocol::protocol::StrBytes::from_string(
                    key.trim().to_string(),
                ))
                .with_value(Some(kafka_protocol::protocol::StrBytes::from_string(
                    value.trim().to_string(),
                ))),
        );
    }
    let request = kafka_protocol::messages::CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(kafka_protocol::messages::TopicName(
                    kafka_protocol::protocol::StrBytes::from_string(name.clone()),
                ))
                .with_num_partitions(partitions)
                .with_replication_factor(-1)
                .with_configs(configs),
        ]);
    let response = crate::handlers::topics::create_topics(state, request).await;
    match response.topics.first() {
        Some(result) if result.error_code == 0 => Created::Topic(name),
        Some(result) => refuse(result.error_message.as_ref().map_or_else(
            || format!("error code {}", result.error_code),
            ToString::to_string,
        )),
        None => refuse("The broker gave no answer.".to_string()),
    }
}

/// Kafka's names of config sources (DescribeConfigs' `ConfigSource` enum).
fn source_name(source: ConfigSource) -> &'static str {
    match source {
        ConfigSource::TopicConfig => "DYNAMIC_TOPIC_CONFIG",
        ConfigSource::DynamicBrokerConfig => "DYNAMIC_BROKER_CONFIG",
        ConfigSource::DynamicDefaultBrokerConfig => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ConfigSource::StaticBrokerConfig => "STATIC_BROKER_CONFIG",
        ConfigSource::DefaultConfig => "DEFAULT_CONFIG",
        ConfigSource::GroupConfig => "GROUP_CONFIG",
    }
}

/// The throughput table: latest and highest rate of the last five minutes, and a sparkline.
fn throughput(rates: &[super::history::Rates]) -> String {
    let mut body = String::from("<h2>Throughput</h2>");
    if rates.is_empty() {
        let _ = write!(
            body,
            "<p id=\"throughput-pending\" class=\"muted\">Collecting: a sample every {} s.</p>",
            super::history::SAMPLE_INTERVAL.as_secs()
        );
        return body;
    }
    type Read = fn(&super::history::Rates) -> f64;
    let series: [(&str, Read, bool); 3] = [
        ("Bytes in", |r| r.bytes_in, true),
        ("Bytes out", |r| r.bytes_out, true),
        ("Records in", |r| r.messages_in, false),
    ];
    let rows: Vec<Vec<String>> = series
        .iter()
        .map(|(name, read, bytes)| {
            let values: Vec<f64> = rates.iter().map(read).collect();
            let latest = values.last().copied().unwrap_or(0.0);
            let max = values.iter().copied().fold(0.0, f64::max);
            let format = |value: f64| {
                if *bytes {
                    format!("{}/s", human_bytes(value.round() as u64))
                } else {
                    format!("{value:.1}/s")
                }
            };
            vec![
                name.to_string(),
                format(latest),
                format(max),
                super::history::sparkline(&values, name),
            ]
        })
        .collect();
    body.push_str(&table(
        &["", "Now", "Highest", "Last 5 minutes"],
        &[false, true, true, false],
        &rows,
        "throughput",
    ));
    body
}

fn topic(
    state: &BrokerState,
    image: &MetadataImage,
    name: &str,
    gathered: &Gathered,
    token: &str,
) -> Rendered {
    let Some(topic) = image.topics.get(name) else {
        return Rendered {
            found: false,
            html: layout(
                "Unknown topic",
                &format!("<h1>No topic {}</h1>", escape(name)),
            ),
        };
    };
    let rows: BTreeMap<i32, &PartitionRow> = gathered
        .partitions
        .iter()
        .filter(|row| row.topic == topic.name)
        .map(|row| (row.partition, row))
        .collect();
    let compacted = rows.values().any(|row| row.cleaner.is_some());
    let mut body = format!("<h1>Topic {}</h1>", escape(&topic.name));
    let _ = write!(
        body,
        "<p>Id <code>{}</code>, {} partition{}. Offsets: high watermark − log start \
         (compaction removes records but keeps their offsets).</p>",
        topic.topic_id,
        topic.partitions.len(),
        if topic.partitions.len() == 1 { "" } else { "s" }
    );
    let mut headers = vec![
        "Partition",
        "Leader",
        "Leader epoch",
        "Replicas",
        "ISR",
        "Log start",
        "High watermark",
        "Log end",
        "Offsets",
        "Size",
        "Segments",
    ];
    let mut numeric = vec![
        true, true, true, false, false, true, true, true, true, true, true,
    ];
    if compacted {
        headers.extend(["Cleaned to", "Dirty ratio"]);
        numeric.extend([true, true]);
    }
    headers.push("");
    numeric.push(false);
    let table_rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|partition| {
            let mut row = vec![
                partition.partition.to_string(),
                partition.leader.to_string(),
                partition.leader_epoch.to_string(),
                join_ids(&partition.replicas),
                join_ids(&partition.isr),
            ];
            match rows.get(&partition.partition) {
                Some(log) => {
                    row.extend([
                        log.log_start_offset.to_string(),
                        log.high_watermark.to_string(),
                        log.log_end_offset.to_string(),
                        (log.high_watermark - log.log_start_offset)
                            .max(0)
                            .to_string(),
                        human_bytes(log.size_bytes),
                        log.segments.to_string(),
                    ]);
                    if compacted {
                        match &log.cleaner {
                            Some(cleaner) => row.extend([
                                cleaner.first_dirty_offset.to_string(),
                                format!("{:.2}", cleaner.dirty_ratio),
                            ]),
                            None => row.extend(["".to_string(), "".to_string()]),
                        }
                    }
                }
                // Not hosted here (another broker leads it, or it is left out).
                None => row.extend(std::iter::repeat_n("".to_string(), headers.len() - 6)),
            }
            row.push(format!(
                "<a href=\"/console/topics/{}/messages?partition={}\">Browse</a>",
                path_segment(&topic.name),
                partition.partition
            ));
            row
        })
        .collect();
    body.push_str(&table(&headers, &numeric, &table_rows, "partitions"));
    // What DescribeConfigs answers: every config in force and where its value comes from.
    let static_settings = state.config.static_settings();
    let layers = BrokerConfigLayers::from_image(image, state.config.node_id, &static_settings);
    body.push_str("<h2>Configs</h2>");
    let configs: Vec<Vec<String>> = topic_config::describe_topic_configs(&topic.configs, &layers)
        .iter()
        .map(|config| {
            vec![
                escape(config.name),
                escape(&config.value),
                source_name(config.source).to_string(),
            ]
        })
        .collect();
    body.push_str(&table(
        &["Config", "Value", "Source"],
        &[],
        &configs,
        "configs",
    ));
    let _ = write!(
        body,
        "<h2>Change a config</h2><form id=\"alter\" method=\"post\" action=\"/console/topics/{}/configs\">\
<input type=\"hidden\" name=\"token\" value=\"{}\">\
<label>Config <input id=\"alter-name\" name=\"name\" size=\"30\"></label> \
<label>Value <input id=\"alter-value\" name=\"value\" size=\"20\"></label> \
<button id=\"alter-set\" type=\"submit\" name=\"operation\" value=\"set\">Set</button> \
<button id=\"alter-delete\" type=\"submit\" name=\"operation\" value=\"delete\">Remove (back to the default)</button></form>",
        path_segment(&topic.name),
        escape(token)
    );
    if !topic.name.starts_with("__") {
        let _ = write!(
            body,
            "<h2>Delete this topic</h2><form id=\"delete\" method=\"post\" action=\"/console/topics/{}/delete\">\
<input type=\"hidden\" name=\"token\" value=\"{}\">\
<label>Type the topic's name to confirm <input id=\"delete-confirm\" name=\"confirm\" size=\"30\"></label> \
<button id=\"delete-button\" type=\"submit\">Delete topic and all its records</button></form>",
            path_segment(&topic.name),
            escape(token)
        );
    }
    Rendered {
        found: true,
        html: layout(&escape(&topic.name), &body),
    }
}

/// A key, value or header value: text when it is UTF-8 (JSON pretty-printed), else hex; always
/// escaped, and marked when only its first bytes are kept.
fn show(field: Option<&Shown>) -> String {
    let Some(field) = field else {
        return "<span class=\"muted\">null</span>".to_string();
    };
    let complete = field.bytes.len() == field.full_len;
    let mut html = match std::str::from_utf8(&field.bytes) {
        Ok(text) => {
            let is_json_document = complete
                && serde_json::from_str::<serde_json::Value>(text)
                    .is_ok_and(|value| value.is_object() || value.is_array());
            let pretty = is_json_document.then(|| indent_json(text));
            match pretty {
                Some(json) => format!("<pre class=\"json\">{}</pre>", escape(&json)),
                None => format!("<pre>{}</pre>", escape(text)),
            }
        }
        Err(_) => {
            let hex: Vec<String> = field
                .bytes
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            format!("<pre class=\"hex\">{}</pre>", hex.join(" "))
        }
    };
    if !complete {
        let _ = write!(
            html,
            "<span class=\"muted\">first {} of {} bytes</span>",
            field.bytes.len(),
            field.full_len
        );
    }
    html
}

/// Re-indents a valid JSON document (two spaces), keeping its keys' order and every token as
/// written (a parse-and-print would sort keys and rewrite numbers).
fn indent_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // An empty object or array stays on one line.
                while chars.peek().is_some_and(|next| next.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    continue;
                }
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                if !matches!(out.chars().last(), Some('{' | '[')) {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

async fn messages(
    state: &BrokerState,
    image: &MetadataImage,
    name: &str,
    query: Option<&str>,
    token: &str,
) -> Rendered {
    let Some(topic) = image.topics.get(name) else {
        return Rendered {
            found: false,
            html: layout(
                "Unknown topic",
                &format!("<h1>No topic {}</h1>", escape(name)),
            ),
        };
    };
    let title = format!("Messages of {}", escape(&topic.name));
    let topic_link = format!(
        "<p><a href=\"/console/topics/{}\">Topic {}</a></p>",
        path_segment(&topic.name),
        escape(&topic.name)
    );
    let query = match browse::parse_query(query) {
        Ok(query) => query,
        Err(reason) => {
            return Rendered {
                found: true,
                html: layout(
                    &title,
                    &format!(
                        "<h1>{title}</h1>{topic_link}<p id=\"error\">{}</p>",
                        escape(&reason)
                    ),
                ),
            }
        }
    };
    let mut body = format!("<h1>{title}</h1>{topic_link}");
    body.push_str(&browse_form(topic, &query));
    let Some(partition) = state.partitions.get(&topic.name, query.partition) else {
        let _ = write!(
            body,
            "<p id=\"error\">Partition {} is not hosted by this broker.</p>",
            query.partition
        );
        return Rendered {
            found: true,
            html: layout(&title, &body),
        };
    };
    let browsed = match browse::browse(&partition, &query).await {
        Ok(browsed) => browsed,
        Err(reason) => {
            let _ = write!(body, "<p id=\"error\">{}</p>", escape(&reason));
            return Rendered {
                found: true,
                html: layout(&title, &body),
            };
        }
    };
    let _ = write!(
        body,
        "<p>Partition {}: offsets {} (log start) to {} (high watermark). Showing {} record{} from offset {}.</p>",
        query.partition,
        browsed.log_start_offset,
        browsed.high_watermark,
        browsed.messages.len(),
        if browsed.messages.len() == 1 { "" } else { "s" },
        browsed.start_offset
    );
    let rows: Vec<Vec<String>> = browsed
        .messages
        .iter()
        .map(|message| {
            let headers: Vec<String> = message
                .headers
                .iter()
                .map(|(key, value)| {
                    format!(
                        "<div class=\"header\">{}{}</div>",
                        show(Some(key)),
                        show(value.as_ref())
                    )
                })
                .collect();
            vec![
                message.offset.to_string(),
                browse::utc_timestamp(message.timestamp_ms),
                show(message.key.as_ref()),
                show(message.value.as_ref()),
                headers.join(""),
            ]
        })
        .collect();
    body.push_str(&table(
        &["Offset", "Timestamp", "Key", "Value", "Headers"],
        &[true],
        &rows,
        "messages",
    ));
    let produce_form = produce_form(topic, token, query.partition, &ProduceFields::default());
    if browsed.next_offset < browsed.high_watermark {
        let _ = write!(
            body,
            "<p><a id=\"next\" href=\"/console/topics/{}/messages?partition={}&amp;offset={}&amp;limit={}\">Next records</a></p>",
            path_segment(&topic.name),
            query.partition,
            browsed.next_offset,
            query.limit
        );
    }
    body.push_str(&produce_form);
    Rendered {
        found: true,
        html: layout(&title, &body),
    }
}

/// What the produce form holds (kept to re-show it after a refusal).
#[derive(Default)]
struct ProduceFields {
    key: String,
    value: String,
    null_value: bool,
    headers: String,
}

/// The produce-a-test-message form of a topic's message browser.
fn produce_form(
    topic: &quill_meta::TopicInfo,
    token: &str,
    partition: i32,
    fields: &ProduceFields,
) -> String {
    let mut options = String::new();
    for candidate in &topic.partitions {
        let selected = if candidate.partition == partition {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            "<option value=\"{0}\"{selected}>{0}</option>",
            candidate.partition
        );
    }
    format!(
        "<h2>Produce a message</h2><form id=\"produce\" method=\"post\" action=\"/console/topics/{}/messages\">\
<input type=\"hidden\" name=\"token\" value=\"{}\">\
<label>Partition <select id=\"produce-partition\" name=\"partition\">{options}</select></label> \
<label>Key <input id=\"produce-key\" name=\"key\" size=\"30\" value=\"{}\"></label> \
<span class=\"muted\">(empty: no key)</span><br>\
<label>Value<br><textarea id=\"produce-value\" name=\"value\" rows=\"4\" cols=\"60\">{}</textarea></label><br>\
<label><input id=\"produce-null\" type=\"checkbox\" name=\"null_value\" value=\"1\"{}> null value (a tombstone)</label><br>\
<label>Headers, one <code>name=value</code> a line<br>\
<textarea id=\"produce-headers\" name=\"headers\" rows=\"2\" cols=\"60\">{}</textarea></label><br>\
<button id=\"produce-send\" type=\"submit\">Produce</button></form>",
        path_segment(&topic.name),
        escape(token),
        escape(&fields.key),
        escape(&fields.value),
        if fields.null_value { " checked" } else { "" },
        escape(&fields.headers)
    )
}

/// Sets or removes one topic config through the broker's IncrementalAlterConfigs handler (the
/// same checks and messages as `kafka-configs.sh --alter`). `Ok(())` when done, else the page
/// saying why not.
pub async fn alter_topic_config(
    state: &BrokerState,
    topic: &str,
    form: &[(String, String)],
) -> Result<(), String> {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    };
    let page = |reason: &str| {
        layout(
            "Config not changed",
            &format!(
                "<h1>Config not changed</h1><p id=\"error\">{}</p><p><a href=\"/console/topics/{}\">Back to the topic</a></p>",
                escape(reason),
                path_segment(topic)
            ),
        )
    };
    let name = field("name").trim();
    if name.is_empty() {
        return Err(page("Name the config to change."));
    }
    // Kafka's AlterConfigOp: 0 SET, 1 DELETE.
    let (operation, value) = match field("operation") {
        "set" => (0i8, Some(field("value").trim().to_string())),
        "delete" => (1i8, None),
        _ => return Err(page("Choose Set or Remove.")),
    };
    let request = kafka_protocol::messages::IncrementalAlterConfigsRequest::default()
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2) // TOPIC
            .with_resource_name(kafka_protocol::protocol::StrBytes::from_string(
                topic.to_string(),
            ))
            .with_configs(vec![AlterableConfig::default()
                .with_name(kafka_protocol::protocol::StrBytes::from_string(
                    name.to_string(),
                ))
                .with_config_operation(operation)
                .with_value(
                    value.map(kafka_protocol::protocol::StrBytes::from_string),
                )])]);
    let response = crate::handlers::configs::incremental_alter_configs(state, request).await;
    match response.responses.first() {
        Some(result) if result.error_code == 0 => Ok(()),
        Some(result) => Err(page(&result.error_message.as_ref().map_or_else(
            || format!("error code {}", result.error_code),
            ToString::to_string,
        ))),
        None => Err(page("The broker gave no answer.")),
    }
}

/// Deletes a topic through the broker's DeleteTopics handler once the form's confirmation
/// repeats its name. `Ok(())` when deleted, else the page saying why not.
pub async fn delete_topic(
    state: &BrokerState,
    name: &str,
    form: &[(String, String)],
) -> Result<(), String> {
    let page = |reason: &str| {
        layout(
            "Topic not deleted",
            &format!(
                "<h1>Topic not deleted</h1><p id=\"error\">{}</p><p><a href=\"/console/topics/{}\">Back to the topic</a></p>",
                escape(reason),
                path_segment(name)
            ),
        )
    };
    let confirm = form
        .iter()
        .find(|(key, _)| key == "confirm")
        .map_or("", |(_, value)| value.as_str());
    if confirm != name {
        return Err(page("The confirmation does not match the topic's name."));
    }
    if name.starts_with("__") {
        return Err(page("Internal topics are not deleted from the console."));
    }
    let request = kafka_protocol::messages::DeleteTopicsRequest::default()
        .with_topic_names(vec![kafka_protocol::messages::TopicName(
            kafka_protocol::protocol::StrBytes::from_string(name.to_string()),
        )])
        .with_timeout_ms(30_000);
    // Version 5: topics named in `topic_names`.
    let response = crate::handlers::topics::delete_topics(state, request, 5).await;
    match response.responses.first() {
        Some(result) if result.error_code == 0 => Ok(()),
        Some(result) => Err(page(&result.error_message.as_ref().map_or_else(
            || format!("error code {}", result.error_code),
            ToString::to_string,
        ))),
        None => Err(page("The broker gave no answer.")),
    }
}

/// What a produce form submission did.
pub enum Produced {
    /// Appended and durable (acks=all): the partition and the record's offset.
    At(i32, i64),
    /// Refused (by the form's checks or by the Produce path): the page to show.
    Refused(String),
}

/// Produces one record from the form through the broker's Produce handler (acks=all), so the
/// record is validated and appended exactly as a client's would be.
pub async fn produce_message(
    state: &BrokerState,
    topic_name: &str,
    form: &[(String, String)],
    token: &str,
) -> Produced {
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    };
    // Browsers send textarea line breaks as CRLF.
    let fields = ProduceFields {
        key: field("key").to_string(),
        value: field("value").replace("\r\n", "\n"),
        null_value: !field("null_value").is_empty(),
        headers: field("headers").to_string(),
    };
    let image = state.image();
    let Some(topic) = image.topics.get(topic_name) else {
        return Produced::Refused(layout(
            "Unknown topic",
            &format!("<h1>No topic {}</h1>", escape(topic_name)),
        ));
    };
    let partition = field("partition").trim().parse::<i32>().unwrap_or(0);
    let refuse = |reason: String| {
        let body = format!(
            "<h1>Message not produced</h1><p id=\"error\">{}</p>{}",
            escape(&reason),
            produce_form(topic, token, partition, &fields)
        );
        Produced::Refused(layout("Message not produced", &body))
    };
    let mut headers = Vec::new();
    for line in fields
        .headers
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let Some((name, value)) = line.split_once('=') else {
            return refuse(format!("Header line `{line}` is not name=value."));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let now = crate::clock::now_ms();
    let header_views: Vec<quill_log::RecordHeader<'_>> = headers
        .iter()
        .map(|(name, value)| quill_log::RecordHeader {
            key: name.as_bytes(),
            value: Some(value.as_bytes()),
        })
        .collect();
    let mut section = Vec::new();
    quill_log::records::encode_record(
        &mut section,
        0,
        0,
        (!fields.key.is_empty()).then_some(fields.key.as_bytes()),
        (!fields.null_value).then_some(fields.value.as_bytes()),
        &header_views,
    );
    let batch = match quill_log::records::encode_batch(
        &quill_log::BatchFields::producer(now, now),
        1,
        &section,
        quill_log::Compression::None,
        quill_log::CompressionLevels::default(),
    ) {
        Ok(batch) => batch,
        Err(error) => return refuse(error.to_string()),
    };
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let request = kafka_protocol::messages::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(kafka_protocol::messages::TopicName(
                kafka_protocol::protocol::StrBytes::from_string(topic.name.clone()),
            ))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(bytes::Bytes::from(batch)))])]);
    // As a current client would: the newest Produce version (zstd needs v7+).
    let version = crate::protocol::supported_range(kafka_protocol::messages::ApiKey::Produce)
        .map_or(12, |api| api.max_version);
    let outcome = crate::handlers::produce::append(state, version, request)
        .await
        .finish()
        .await;
    let crate::handlers::produce::ProduceOutcome::Respond(response) = outcome else {
        return refuse("The broker gave no answer.".to_string());
    };
    let Some(answer) = response
        .responses
        .first()
        .and_then(|topic| topic.partition_responses.first())
    else {
        return refuse("The broker gave no answer.".to_string());
    };
    if answer.error_code == 0 {
        return Produced::At(partition, answer.base_offset);
    }
    let mut reason = answer.error_message.as_ref().map_or_else(
        || format!("error code {}", answer.error_code),
        ToString::to_string,
    );
    for record_error in &answer.record_errors {
        if let Some(message) = &record_error.batch_index_error_message {
            let _ = write!(reason, " {message}");
        }
    }
    refuse(reason)
}

/// The browser's form: a plain GET form (no script), prefilled with the current query.
fn browse_form(topic: &quill_meta::TopicInfo, query: &browse::BrowseQuery) -> String {
    let mut options = String::new();
    for partition in &topic.partitions {
        let selected = if partition.partition == query.partition {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            "<option value=\"{0}\"{selected}>{0}</option>",
            partition.partition
        );
    }
    let (offset, timestamp) = match query.start {
        browse::Start::Offset(offset) => (offset.to_string(), String::new()),
        browse::Start::Timestamp(timestamp) => (String::new(), timestamp.to_string()),
        browse::Start::Latest => (String::new(), String::new()),
    };
    format!(
        "<form id=\"browse\" method=\"get\" action=\"/console/topics/{}/messages\">\
<label>Partition <select id=\"partition\" name=\"partition\">{options}</select></label> \
<label>From offset <input id=\"offset\" name=\"offset\" size=\"10\" value=\"{offset}\"></label> \
<label>or timestamp (ms) <input id=\"timestamp\" name=\"timestamp\" size=\"14\" value=\"{timestamp}\"></label> \
<label>at most <input id=\"limit\" name=\"limit\" size=\"4\" value=\"{}\"></label> records \
<button id=\"show\" type=\"submit\">Show</button> \
<span class=\"muted\">(no offset or timestamp: the latest)</span></form>",
        path_segment(&topic.name),
        query.limit
    )
}

/// The reset form: a GET to the dry run (nothing changes until its page's "Apply").
fn reset_form(image: &MetadataImage, gathered: &Gathered) -> String {
    let mut groups = String::new();
    for group in &gathered.groups {
        let _ = write!(
            groups,
            "<option value=\"{0}\">{0}</option>",
            escape(&group.group)
        );
    }
    let mut topics = String::new();
    for name in image.topics.keys() {
        let _ = write!(topics, "<option value=\"{0}\">{0}</option>", escape(name));
    }
    format!(
        "<h2>Reset offsets</h2><form id=\"reset\" method=\"get\" action=\"/console/groups/reset\">\
<label>Group <select id=\"reset-group\" name=\"group\">{groups}</select></label> \
<label>Topic <select id=\"reset-topic\" name=\"topic\">{topics}</select></label> \
<label>To <select id=\"reset-to\" name=\"to\"><option value=\"earliest\">earliest</option>\
<option value=\"latest\">latest</option><option value=\"offset\">offset</option>\
<option value=\"timestamp\">timestamp (ms)</option></select></label> \
<input id=\"reset-value\" name=\"value\" size=\"14\"> \
<button id=\"reset-preview\" type=\"submit\">Dry run</button> \
<span class=\"muted\">(only groups without members can be reset, as with kafka-consumer-groups)</span></form>"
    )
}

/// The partitions of a consumer-protocol assignment (`ConsumerProtocolAssignment`: int16
/// version, then topics as (string, int32 array); every version starts so), as `topic-p`
/// strings; `None` when the bytes do not follow the schema. Counts are bounded by the bytes.
pub fn assigned_partitions(assignment: &[u8]) -> Option<Vec<String>> {
    let read_i16 = |bytes: &[u8], at: usize| -> Option<i16> {
        Some(i16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
    };
    let read_i32 = |bytes: &[u8], at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    if read_i16(assignment, 0)? < 0 {
        return None;
    }
    let topics = usize::try_from(read_i32(assignment, 2)?).ok()?;
    let mut at = 6;
    let mut out = Vec::new();
    for _ in 0..topics {
        let length = usize::try_from(read_i16(assignment, at)?).ok()?;
        let name = std::str::from_utf8(assignment.get(at + 2..at + 2 + length)?).ok()?;
        at += 2 + length;
        let count = usize::try_from(read_i32(assignment, at)?).ok()?;
        at += 4;
        for _ in 0..count {
            out.push(format!("{name}-{}", read_i32(assignment, at)?));
            at += 4;
        }
    }
    Some(out)
}

fn groups(
    image: &MetadataImage,
    gathered: &Gathered,
    described: &[DescribedGroup],
    lag_series: &[(String, Vec<i64>)],
) -> String {
    let mut body = String::from("<h1>Consumer groups</h1>");
    let groups: Vec<Vec<String>> = gathered
        .groups
        .iter()
        .map(|group| vec![escape(&group.group), escape(group.state)])
        .collect();
    body.push_str(&table(&["Group", "State"], &[], &groups, "groups"));
    body.push_str("<h2>Members</h2>");
    let members: Vec<Vec<String>> = described
        .iter()
        .flat_map(|group| {
            group.members.iter().map(move |member| {
                let assigned = if member.assignment.is_empty() {
                    String::new()
                } else if group.protocol_type
                    == quill_group::consumer_protocol::CONSUMER_PROTOCOL_TYPE
                {
                    assigned_partitions(&member.assignment)
                        .map_or_else(|| "(unreadable)".to_string(), |parts| parts.join(", "))
                } else {
                    format!("({} bytes)", member.assignment.len())
                };
                vec![
                    escape(&group.group_id),
                    escape(&member.member_id),
                    escape(member.group_instance_id.as_deref().unwrap_or("")),
                    escape(&member.client_id),
                    escape(&member.client_host),
                    escape(&assigned),
                ]
            })
        })
        .collect();
    body.push_str(&table(
        &["Group", "Member", "Instance", "Client", "Host", "Assigned"],
        &[],
        &members,
        "members",
    ));
    body.push_str(&omitted_note(
        gathered.groups.len().saturating_sub(MAX_DESCRIBED_GROUPS),
        "groups' members",
    ));
    body.push_str("<h2>Lag over time</h2>");
    let history_rows: Vec<Vec<String>> = lag_series
        .iter()
        .filter(|(_, series)| !series.is_empty())
        .map(|(group, series)| {
            let values: Vec<f64> = series.iter().map(|lag| *lag as f64).collect();
            vec![
                escape(group),
                series.last().copied().unwrap_or(0).to_string(),
                series.iter().copied().max().unwrap_or(0).to_string(),
                super::history::sparkline(&values, "total lag"),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "Group",
            "Total lag (last sample)",
            "Highest",
            "Last 5 minutes",
        ],
        &[false, true, true, false],
        &history_rows,
        "lag-history",
    ));
    body.push_str("<h2>Lag per partition</h2>");
    let lags: Vec<Vec<String>> = gathered
        .lags
        .iter()
        .map(|row| {
            let (end, lag) = match row.lag {
                Some(lag) => ((row.committed + lag).to_string(), lag.to_string()),
                None => ("".to_string(), "not hosted".to_string()),
            };
            vec![
                escape(&row.group),
                format!(
                    "<a href=\"/console/topics/{}\">{}</a>",
                    path_segment(&row.topic),
                    escape(&row.topic)
                ),
                row.partition.to_string(),
                row.committed.to_string(),
                end,
                lag,
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "Group",
            "Topic",
            "Partition",
            "Committed",
            "High watermark",
            "Lag",
        ],
        &[false, false, true, true, true, true],
        &lags,
        "lag",
    ));
    body.push_str(&omitted_note(gathered.lags_omitted, "committed offsets"));
    body.push_str(&reset_form(image, gathered));
    layout("Consumer groups", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
        assert_eq!(path_segment("a.b_c-1"), "a.b_c-1");
        assert_eq!(path_segment("a/b\"<"), "a%2Fb%22%3C");
    }

    #[test]
    fn console_paths() {
        assert_eq!(Page::from_path("/console", None), Some(Page::Overview));
        assert_eq!(Page::from_path("/console/", None), Some(Page::Overview));
        assert_eq!(Page::from_path("/console/groups", None), Some(Page::Groups));
        assert_eq!(
            Page::from_path("/console/topics/orders", None),
            Some(Page::Topic("orders"))
        );
        assert_eq!(
            Page::from_path("/console/topics/orders/messages", Some("offset=3")),
            Some(Page::Messages("orders", Some("offset=3")))
        );
        assert_eq!(Page::from_path("/console/topics/orders/other", None), None);
        assert_eq!(Page::from_path("/console/topics//messages", None), None);
        assert_eq!(Page::from_path("/console/topics/", None), None);
        assert_eq!(Page::from_path("/consoles", None), None);
        assert_eq!(
            Page::from_path("/console/groups/reset", Some("group=g")),
            Some(Page::ResetDryRun(Some("group=g")))
        );
    }

    #[test]
    fn fields_show_as_escaped_text_pretty_json_or_hex() {
        let shown = |bytes: &[u8]| Shown {
            bytes: bytes.to_vec(),
            full_len: bytes.len(),
        };
        assert_eq!(
            show(Some(&shown(b"<script>alert(1)</script>"))),
            "<pre>&lt;script&gt;alert(1)&lt;/script&gt;</pre>"
        );
        assert_eq!(
            show(Some(&shown(br#"{"a":"<b>"}"#))),
            "<pre class=\"json\">{\n  &quot;a&quot;: &quot;&lt;b&gt;&quot;\n}</pre>"
        );
        assert_eq!(show(Some(&shown(b"42"))), "<pre>42</pre>");
        assert_eq!(
            indent_json(r#"{"z":1.50,"a":[],"b":{"c":[1, "x\\\",]"]},"d":{}}"#),
            "{\n  \"z\": 1.50,\n  \"a\": [],\n  \"b\": {\n    \"c\": [\n      1,\n      \"x\\\\\\\",]\"\n    ]\n  },\n  \"d\": {}\n}"
        );
        assert_eq!(
            show(Some(&shown(&[0xff, 0x00, 0x41]))),
            "<pre class=\"hex\">ff 00 41</pre>"
        );
        assert_eq!(show(None), "<span class=\"muted\">null</span>");
        let cut = Shown {
            bytes: b"{\"a\":".to_vec(),
            full_len: 9000,
        };
        assert!(show(Some(&cut)).ends_with("first 5 of 9000 bytes</span>"));
    }

    #[test]
    fn assignments_decode_or_are_refused() {
        let mut assignment = Vec::new();
        assignment.extend_from_slice(&1i16.to_be_bytes());
        assignment.extend_from_slice(&1i32.to_be_bytes());
        assignment.extend_from_slice(&6i16.to_be_bytes());
        assignment.extend_from_slice(b"orders");
        assignment.extend_from_slice(&2i32.to_be_bytes());
        assignment.extend_from_slice(&0i32.to_be_bytes());
        assignment.extend_from_slice(&2i32.to_be_bytes());
        assignment.extend_from_slice(&(-1i32).to_be_bytes()); // null user data
        assert_eq!(
            assigned_partitions(&assignment),
            Some(vec!["orders-0".to_string(), "orders-2".to_string()])
        );
        assert_eq!(assigned_partitions(&assignment[..20]), None);
        let mut huge = assignment.clone();
        huge[2..6].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(assigned_partitions(&huge), None);
        assert_eq!(assigned_partitions(&[0xff, 0xff]), None);
    }

    #[test]
    fn forms_decode_or_are_refused() {
        assert_eq!(
            parse_form(b"name=a+b%2Fc&configs=retention.ms%3D5%0D%0Ax%3Dy&empty="),
            Some(vec![
                ("name".to_string(), "a b/c".to_string()),
                ("configs".to_string(), "retention.ms=5\r\nx=y".to_string()),
                ("empty".to_string(), String::new()),
            ])
        );
        assert_eq!(parse_form(b""), Some(vec![]));
        assert_eq!(parse_form(b"a=%zz"), None);
        assert_eq!(parse_form(b"a=%4"), None);
        assert_eq!(parse_form(b"a=%ff"), None, "not UTF-8");
    }

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn group_ids_render_as_text() {
        let gathered = Gathered {
            replication: Default::default(),
            replica_lags: Vec::new(),
            replica_lags_omitted: 0,
            partitions: Vec::new(),
            partitions_omitted: 0,
            groups_by_state: BTreeMap::new(),
            groups: vec![collect::GroupRow {
                group: "<img src=x onerror=alert(1)>".to_string(),
                state: "Empty",
            }],
            lags: vec![collect::LagRow {
                group: "<img src=x onerror=alert(1)>".to_string(),
                topic: "t".to_string(),
                partition: 0,
                committed: 3,
                lag: Some(4),
            }],
            lags_omitted: 2,
            process: Default::default(),
            throughput: Vec::new(),
        };
        let html = groups(&MetadataImage::empty("c"), &gathered, &[], &[]);
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("<td class=\"n\">7</td><td class=\"n\">4</td>"));
        assert!(html.contains("2 committed offsets left out"));
    }
}
