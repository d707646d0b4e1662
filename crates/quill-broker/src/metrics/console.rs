//! The read-only web console (`console.enabled`), served with the metrics on `metrics.listen`:
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

use quill_meta::MetadataImage;

use super::collect::{self, Gathered, PartitionRow};
use crate::state::BrokerState;

/// What a console request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Page<'a> {
    Overview,
    Topic(&'a str),
    Groups,
}

impl<'a> Page<'a> {
    /// The page of a request path, if it is a console path.
    pub fn from_path(path: &'a str) -> Option<Page<'a>> {
        match path {
            "/console" | "/console/" => Some(Page::Overview),
            "/console/groups" => Some(Page::Groups),
            _ => path
                .strip_prefix("/console/topics/")
                .filter(|name| !name.is_empty())
                .map(Page::Topic),
        }
    }
}

/// A rendered page: whether the thing it shows exists, and its HTML.
pub struct Rendered {
    pub found: bool,
    pub html: String,
}

/// Renders `page`; the logs and the group coordinator are read on the blocking pool.
pub async fn render(state: Arc<BrokerState>, page: Page<'_>) -> Rendered {
    let image = state.image();
    let node_id = state.config.node_id;
    let gathering = state.clone();
    let gathered = match tokio::task::spawn_blocking(move || collect::gather(&gathering)).await {
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
            html: overview(&image, node_id, &gathered),
        },
        Page::Topic(name) => topic(&image, name, &gathered),
        Page::Groups => Rendered {
            found: true,
            html: groups(&gathered),
        },
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
fn path_segment(text: &str) -> String {
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
th{background:#f2f4f8}.muted{color:#667}code{background:#f2f4f8;padding:1px 4px}";

/// The page frame; `title` and `body` must already be escaped where they hold client text.
fn layout(title: &str, body: &str) -> String {
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
fn table(headers: &[&str], numeric: &[bool], rows: &[Vec<String>], id: &str) -> String {
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

fn overview(image: &MetadataImage, node_id: i32, gathered: &Gathered) -> String {
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
    layout("Overview", &body)
}

fn topic(image: &MetadataImage, name: &str, gathered: &Gathered) -> Rendered {
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
        "Replicas",
        "ISR",
        "Log start",
        "High watermark",
        "Log end",
        "Offsets",
        "Size",
        "Segments",
    ];
    let mut numeric = vec![true, true, false, false, true, true, true, true, true, true];
    if compacted {
        headers.extend(["Cleaned to", "Dirty ratio"]);
        numeric.extend([true, true]);
    }
    let table_rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|partition| {
            let mut row = vec![
                partition.partition.to_string(),
                partition.leader.to_string(),
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
                None => row.extend(std::iter::repeat_n("".to_string(), headers.len() - 4)),
            }
            row
        })
        .collect();
    body.push_str(&table(&headers, &numeric, &table_rows, "partitions"));
    if !topic.configs.is_empty() {
        body.push_str("<h2>Configs set on the topic</h2>");
        let configs: Vec<Vec<String>> = topic
            .configs
            .iter()
            .map(|(name, value)| vec![escape(name), escape(value)])
            .collect();
        body.push_str(&table(&["Config", "Value"], &[], &configs, "configs"));
    }
    Rendered {
        found: true,
        html: layout(&escape(&topic.name), &body),
    }
}

fn groups(gathered: &Gathered) -> String {
    let mut body = String::from("<h1>Consumer groups</h1>");
    let groups: Vec<Vec<String>> = gathered
        .groups
        .iter()
        .map(|group| vec![escape(&group.group), escape(group.state)])
        .collect();
    body.push_str(&table(&["Group", "State"], &[], &groups, "groups"));
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
        assert_eq!(Page::from_path("/console"), Some(Page::Overview));
        assert_eq!(Page::from_path("/console/"), Some(Page::Overview));
        assert_eq!(Page::from_path("/console/groups"), Some(Page::Groups));
        assert_eq!(
            Page::from_path("/console/topics/orders"),
            Some(Page::Topic("orders"))
        );
        assert_eq!(Page::from_path("/console/topics/"), None);
        assert_eq!(Page::from_path("/consoles"), None);
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
        };
        let html = groups(&gathered);
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("<td class=\"n\">7</td><td class=\"n\">4</td>"));
        assert!(html.contains("2 committed offsets left out"));
    }
}
