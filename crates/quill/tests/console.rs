//! The broker's web console (issue 17) in a real browser: Debian's chromium, headless, driven
//! by playwright-core (`tests/compat/node/console.js`, installed by
//! scripts/install-test-deps.sh), against the real broker binary. The browser opens the
//! overview, follows a topic link and the "Consumer groups" link; what it read must be the
//! broker's state (partitions, offsets, sizes, committed offsets and lag), a group id made of
//! markup must show as text (no dialog, no image, no script error), and every page carries a
//! script-forbidding Content-Security-Policy. Screenshots of each page are kept under
//! `target/console-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;

/// A group id that is markup: rendered as text, it must never run or load anything.
const HOSTILE_GROUP: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";
const BROWSER_DEADLINE: Duration = Duration::from_secs(90);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `GET path` over HTTP/1.1: (status, body).
fn http_get(address: &str, path: &str) -> (u16, String) {
    http_request(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
    )
}

/// Sends `request` (a whole HTTP/1.1 request) and reads the answer: (status, body).
fn http_request(address: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// OffsetCommit of a group without members; retried (bounded) while `__consumer_offsets`
/// is created and loaded by the first group request.
fn commit_offset(client: &mut TestClient, group: &str, topic: &str, partition: i32, offset: i64) {
    // As a client does: FindCoordinator first, which creates `__consumer_offsets`.
    let find = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()));
    client.call(&find, 1);
    let mut code = -1;
    wait_until(
        "the group coordinator to accept a commit",
        Duration::from_secs(30),
        || {
            code = try_commit_offset(client, group, topic, partition, offset);
            code == 0
        },
    );
}

fn try_commit_offset(
    client: &mut TestClient,
    group: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)])]);
    let code = client.call(&request, 2).topics[0].partitions[0].error_code;
    // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR: not yet.
    assert!(
        matches!(code, 0 | 14 | 15 | 16),
        "OffsetCommit error {code}"
    );
    code
}

/// A group member process, killed when dropped.
struct MemberProcess(std::process::Child);

impl MemberProcess {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the browser program; returns what it read.
fn browse(base: &str, topic: &str, screenshots: &Path, messages_topic: &str) -> Value {
    let node_dir = workspace_root().join("tests/compat/node");
    assert!(
        node_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/install-test-deps.sh"
    );
    let mut child = Command::new("node")
        .current_dir(&node_dir)
        .arg("console.js")
        .arg(base)
        .arg(topic)
        .arg(screenshots)
        .arg(messages_topic)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let mut status = None;
    wait_until("the browser program to finish", BROWSER_DEADLINE, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.unwrap().success(),
        "console.js failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

/// The rows of table `id` on a page the browser read, as text cells.
fn rows(page: &Value, id: &str) -> Vec<Vec<String>> {
    page["tables"][id]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no table {id} in {page}"))
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|cell| cell.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

fn headers(page: &Value, id: &str) -> Vec<String> {
    page["tables"][id]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| cell.as_str().unwrap().to_string())
        .collect()
}

/// One batch of six records: markup in key, value and header; JSON; binary; three plain ones.
fn events_batch() -> bytes::Bytes {
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let record = |offset: i64, key: Option<&[u8]>, value: &[u8], header: Option<(&str, &str)>| {
        let mut headers = IndexMap::new();
        if let Some((name, value)) = header {
            headers.insert(
                StrBytes::from_string(name.to_string()),
                Some(bytes::Bytes::from(value.to_string())),
            );
        }
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // Constant offset − sequence keeps kafka-protocol's encoder to one batch (all that
            // Kafka accepts per partition), as `common::record_batch` does.
            sequence: offset as i32 - 1,
            timestamp: now,
            key: key.map(bytes::Bytes::copy_from_slice),
            value: Some(bytes::Bytes::copy_from_slice(value)),
            headers,
        }
    };
    let records = vec![
        record(
            0,
            Some(b"<b>key</b>"),
            b"<script>alert(3)</script>",
            Some(("trace", "<img src=x onerror=alert(4)>")),
        ),
        record(1, None, br#"{"user":"ada","n":1}"#, None),
        record(2, Some(b"bin"), &[0xff, 0x00, 0x41], None),
        record(3, None, b"plain-3", None),
        record(4, None, b"plain-4", None),
        record(5, None, b"plain-5", None),
    ];
    let mut buffer = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::Gzip,
        },
    )
    .unwrap();
    buffer.freeze()
}

#[test]
fn the_console_shows_brokers_topics_partitions_and_group_lag_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--set", "metrics.listen=127.0.0.1:0"]);
    let metrics = broker.metrics_address();
    let mut client = broker.connect();
    client.create_topic("orders", 3);
    // Records per partition: 5, 2, 0.
    for (partition, count) in [(0, 5), (1, 2)] {
        for round in 0..count {
            let value = format!("order-{partition}-{round}");
            let response = client.produce("orders", partition, &[&value]);
            assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        }
    }
    let create = create_topic_request("users", 1, 1, &[("cleanup.policy", "compact")]);
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);
    // The group consumed 2 of partition 0 (lag 3) and all of partition 1 (lag 0).
    commit_offset(&mut client, HOSTILE_GROUP, "orders", 0, 2);
    commit_offset(&mut client, HOSTILE_GROUP, "orders", 1, 2);

    let screenshots = workspace_root().join("target/console-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    // The message browser's topic: markup, JSON, binary and header values, then plain ones.
    client.create_topic("events", 1);
    let produced = client.call(&produce_request("events", 0, events_batch(), -1), 7);
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);

    // A live member (our CLI's consumer) in group "live": the groups page lists it with its
    // assignment once it is Stable.
    let mut member = MemberProcess(
        Command::new(env!("CARGO_BIN_EXE_quill"))
            .args(["consume", "orders", "--group", "live", "-b"])
            .arg(broker.address())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(
        "the live member to be Stable",
        Duration::from_secs(60),
        || {
            let (_, body) = http_get(&metrics, "/console/groups");
            body.contains("<td>live</td><td>Stable</td>")
        },
    );

    // The throughput sparklines need two samples (every 5 s) around the records produced.
    wait_until(
        "the overview to show a records-in rate",
        Duration::from_secs(30),
        || {
            let (_, body) = http_get(&metrics, "/console");
            body.split("<td>Records in</td>")
                .nth(1)
                .and_then(|rest| rest.split("</td>").nth(1))
                .is_some_and(|highest| !highest.ends_with(">0.0/s"))
        },
    );

    // And a lag sample taken after the commits (the "Lag over time" row of the group).
    let escaped_group = HOSTILE_GROUP.replace('<', "&lt;").replace('>', "&gt;");
    wait_until("a lag sample of the group", Duration::from_secs(30), || {
        let (_, body) = http_get(&metrics, "/console/groups");
        body.split("id=\"lag-history\"")
            .nth(1)
            .and_then(|rest| rest.split("</table>").next())
            .is_some_and(|table| table.contains(&format!("<td>{escaped_group}</td>")))
    });

    let seen = browse(
        &format!("http://{metrics}"),
        "orders",
        &screenshots,
        "events",
    );
    member.stop();

    assert_eq!(seen["dialogs"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["overviewStatus"], 200);
    let csp = seen["csp"].as_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");

    let overview = &seen["overview"];
    assert_eq!(overview["heading"], "Overview");
    assert_eq!(
        rows(overview, "brokers"),
        vec![vec!["1".to_string(), broker.address(), String::new()]]
    );
    let topics = rows(overview, "topics");
    let orders = topics.iter().find(|row| row[0] == "orders").unwrap();
    assert_eq!(
        orders[1..3],
        ["3".to_string(), "7".to_string()],
        "{topics:?}"
    );
    assert!(
        orders[3].ends_with(" B") || orders[3].ends_with("KiB"),
        "{orders:?}"
    );
    let users = topics.iter().find(|row| row[0] == "users").unwrap();
    assert_eq!(users[4], "compacted");
    let throughput = rows(overview, "throughput");
    let names: Vec<&str> = throughput.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(names, ["Bytes in", "Bytes out", "Records in"]);
    let highest_records: f64 = throughput[2][2].trim_end_matches("/s").parse().unwrap();
    assert!(highest_records > 0.0, "{throughput:?}");
    let sparklines = overview["sparklines"].as_array().unwrap();
    assert_eq!(sparklines.len(), 3);
    assert!(sparklines
        .iter()
        .all(|points| points.as_u64().unwrap() >= 2));
    let partition_count: usize = topics
        .iter()
        .map(|row| row[1].parse::<usize>().unwrap())
        .sum();
    assert_eq!(
        rows(overview, "partition-health"),
        vec![vec![
            partition_count.to_string(),
            "0".to_string(),
            "0".to_string()
        ]]
    );

    // The topic page, reached by clicking its link.
    let topic = &seen["topic"];
    assert_eq!(topic["heading"], "Topic orders");
    assert!(topic["url"]
        .as_str()
        .unwrap()
        .ends_with("/console/topics/orders"));
    assert_eq!(
        headers(topic, "partitions")[..9],
        [
            "Partition",
            "Leader",
            "Leader epoch",
            "Replicas",
            "ISR",
            "Log start",
            "High watermark",
            "Log end",
            "Offsets"
        ]
    );
    let partitions = rows(topic, "partitions");
    let offsets: Vec<(&str, &str, &str)> = partitions
        .iter()
        .map(|row| (row[0].as_str(), row[6].as_str(), row[8].as_str()))
        .collect();
    assert_eq!(offsets, [("0", "5", "5"), ("1", "2", "2"), ("2", "0", "0")]);
    for row in &partitions {
        // Leader 1 in its first epoch; replicas and ISR: broker 1.
        assert_eq!(row[1..5], ["1", "0", "1", "1"], "{row:?}");
        assert_eq!(row[10], "1", "one segment: {row:?}");
        assert_eq!(row[11], "Browse", "{row:?}");
    }
    // Configs as DescribeConfigs answers them, with their sources.
    let configs = rows(topic, "configs");
    assert!(
        configs.contains(&vec![
            "cleanup.policy".to_string(),
            "delete".to_string(),
            "DEFAULT_CONFIG".to_string()
        ]),
        "{configs:?}"
    );
    assert!(
        configs.contains(&vec![
            "max.message.bytes".to_string(),
            "1048588".to_string(),
            "DEFAULT_CONFIG".to_string()
        ]),
        "{configs:?}"
    );

    // A config changed from the topic page (IncrementalAlterConfigs path), a refused one with
    // Quill's message, and the removal back to the default.
    let config_row = |page: &Value, name: &str| -> Vec<String> {
        rows(page, "configs")
            .into_iter()
            .find(|row| row[0] == name)
            .unwrap_or_else(|| panic!("no {name} in {page}"))
    };
    assert_eq!(
        config_row(&seen["altered"], "retention.ms"),
        ["retention.ms", "123456", "DYNAMIC_TOPIC_CONFIG"]
    );
    assert_eq!(seen["alterRefusedStatus"], 400);
    let refusal = seen["alterRefused"].as_str().unwrap();
    assert!(
        refusal.contains("Quill does not support preallocate"),
        "{refusal}"
    );
    assert_eq!(
        config_row(&seen["restored"], "retention.ms"),
        ["retention.ms", "604800000", "DEFAULT_CONFIG"]
    );

    // The groups page, reached from the navigation: the hostile id is text, lag is the
    // broker's (high watermark - committed).
    let groups = &seen["groups"];
    assert_eq!(groups["heading"], "Consumer groups");
    assert_eq!(
        groups["images"], 0,
        "markup in a group id became an element"
    );
    assert_eq!(
        rows(groups, "groups"),
        vec![
            vec![HOSTILE_GROUP.to_string(), "Empty".to_string()],
            vec!["live".to_string(), "Stable".to_string()]
        ]
    );
    // Lag over time: sampled every 5 s (waited for above), the group's total is 3.
    let history = rows(groups, "lag-history");
    let hostile = history
        .iter()
        .find(|row| row[0] == HOSTILE_GROUP)
        .unwrap_or_else(|| panic!("{history:?}"));
    assert_eq!(hostile[1], "3", "{history:?}");
    assert_eq!(hostile[2], "3", "{history:?}");
    let members = rows(groups, "members");
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0][0], "live");
    assert_eq!(members[0][3], "quill-cli");
    assert_eq!(members[0][5], "orders-0, orders-1, orders-2");
    let lag: Vec<Vec<String>> = rows(groups, "lag")
        .into_iter()
        .filter(|row| row[0] == HOSTILE_GROUP)
        .collect();
    let expected: Vec<Vec<String>> = [("0", "2", "5", "3"), ("1", "2", "2", "0")]
        .iter()
        .map(|(partition, committed, end, lag)| {
            [HOSTILE_GROUP, "orders", partition, committed, end, lag]
                .iter()
                .map(|cell| cell.to_string())
                .collect()
        })
        .collect();
    assert_eq!(lag, expected);

    // Offsets reset from the groups page: the dry run shows committed and new offsets, applying
    // commits them (lag is back to everything); a group with a member is refused.
    let plan = &seen["resetPlan"];
    assert_eq!(plan["group"], HOSTILE_GROUP);
    assert_eq!(
        rows(plan, "reset-plan"),
        [["0", "2", "0"], ["1", "2", "0"], ["2", "none", "0"]]
            .iter()
            .map(|row| row.iter().map(|cell| cell.to_string()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    let after: Vec<Vec<String>> = rows(&seen["afterReset"], "lag")
        .into_iter()
        .filter(|row| row[0] == HOSTILE_GROUP)
        .collect();
    let after: Vec<(&str, &str, &str)> = after
        .iter()
        .map(|row| (row[2].as_str(), row[3].as_str(), row[5].as_str()))
        .collect();
    assert_eq!(after, [("0", "0", "5"), ("1", "0", "2"), ("2", "0", "0")]);
    let live = &seen["resetLive"];
    assert_eq!(
        live["error"],
        "Assignments can only be reset if the group 'live' is inactive, but the current state is Stable."
    );
    assert_eq!(live["applyButtons"], 0);

    // The message browser: the latest records (all 6), as text, pretty JSON and hex.
    let latest = &seen["latest"];
    assert_eq!(latest["heading"], "Messages of events");
    assert_eq!(latest["images"], 0);
    assert_eq!(latest["scripts"], 0);
    let messages = rows(latest, "messages");
    let offsets: Vec<&str> = messages.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(offsets, ["0", "1", "2", "3", "4", "5"]);
    assert_eq!(messages[0][2], "<b>key</b>");
    assert_eq!(messages[0][3], "<script>alert(3)</script>");
    assert_eq!(messages[0][4], "trace<img src=x onerror=alert(4)>");
    assert!(messages[0][1].ends_with(" UTC"), "{:?}", messages[0]);
    assert_eq!(messages[1][2], "null");
    assert_eq!(messages[1][3], "{\n  \"user\": \"ada\",\n  \"n\": 1\n}");
    assert_eq!(messages[2][3], "ff 00 41");
    assert_eq!(messages[5][3], "plain-5");
    // The form: from offset 1, at most 2; then "Next records".
    let from_offset = rows(&seen["fromOffset"], "messages");
    let offsets: Vec<&str> = from_offset.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(offsets, ["1", "2"]);
    let next = rows(&seen["next"], "messages");
    let offsets: Vec<&str> = next.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(offsets, ["3", "4"]);

    // A message produced with the browser's form, through the Produce path (acks=all): the
    // browser lands on it; a keyless record to a compacted topic is refused with Kafka's error.
    let produced = rows(&seen["produced"], "messages");
    assert_eq!(produced.len(), 1, "{produced:?}");
    assert_eq!(produced[0][0], "6");
    assert_eq!(produced[0][2], "from-browser");
    assert_eq!(produced[0][3], "{\n  \"hello\": \"world\"\n}");
    assert_eq!(produced[0][4], "sourceconsole");
    let fetched = client.fetch("events", 0, 6);
    let values = decode_values(fetched.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(values, vec![(6, "{\"hello\":\"world\"}".to_string())]);
    assert_eq!(seen["produceRefusedStatus"], 400);
    let refusal = seen["produceRefused"].as_str().unwrap();
    assert!(
        refusal.contains("Compacted topic cannot accept message without key"),
        "{refusal}"
    );

    // A topic created with the overview's form (through the CreateTopics path), and a refusal
    // with Kafka's message.
    let created = &seen["created"];
    assert_eq!(created["heading"], "Topic made-in-browser");
    assert_eq!(rows(created, "partitions").len(), 2);
    let configs = rows(created, "configs");
    for (name, value) in [("retention.ms", "60000"), ("cleanup.policy", "compact")] {
        assert!(
            configs.contains(&vec![
                name.to_string(),
                value.to_string(),
                "DYNAMIC_TOPIC_CONFIG".to_string()
            ]),
            "{configs:?}"
        );
    }
    // Deleted from its page (DeleteTopics path) once the confirmation matches.
    assert_eq!(seen["deleteRefusedStatus"], 400);
    assert_eq!(
        seen["deleteRefused"],
        "The confirmation does not match the topic's name."
    );
    assert_eq!(seen["afterDelete"]["heading"], "Overview");
    assert!(!rows(&seen["afterDelete"], "topics")
        .iter()
        .any(|row| row[0] == "made-in-browser"));
    assert_eq!(seen["refusedStatus"], 400);
    let refusal = seen["refused"]["error"].as_str().unwrap();
    assert!(refusal.contains("bad name!"), "{refusal}");
    assert!(refusal.contains("illegal"), "{refusal}");
    // Deleted for real: Metadata no longer lists it.
    let mut admin = broker.connect();
    let metadata = admin.call(
        &kafka_protocol::messages::MetadataRequest::default().with_topics(None),
        9,
    );
    assert!(!metadata.topics.iter().any(|topic| topic
        .name
        .as_ref()
        .is_some_and(|name| name.0.as_str() == "made-in-browser")));

    // Forms are refused unless they come from the console's own page (its token, same origin).
    let (_, overview_html) = http_get(&metrics, "/console");
    let token = overview_html
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let forged = |extra_headers: &str, token: &str| {
        let body = format!("token={token}&name=forged&partitions=1");
        http_request(
            &metrics,
            &format!(
                "POST /console/topics HTTP/1.1\r\nHost: {metrics}\r\nConnection: close\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n{extra_headers}\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
        .0
    };
    assert_eq!(forged("", "wrong"), 403);
    assert_eq!(forged("Origin: http://evil.example\r\n", &token), 403);
    assert_eq!(forged("Sec-Fetch-Site: cross-site\r\n", &token), 403);
    let metadata = admin.call(
        &kafka_protocol::messages::MetadataRequest::default().with_topics(None),
        9,
    );
    assert!(!metadata.topics.iter().any(|topic| topic
        .name
        .as_ref()
        .is_some_and(|name| name.0.as_str() == "forged")));

    // From a timestamp (the first record at or after it), and refused queries.
    let page = |query: &str| {
        http_get(
            &metrics,
            &format!("/console/topics/events/messages?{query}"),
        )
    };
    let (status, body) = page("timestamp=0");
    assert_eq!(status, 200);
    assert!(body.contains("Showing 7 records from offset 0."), "{body}");
    let (_, body) = page("timestamp=99999999999999&limit=3");
    assert!(body.contains("Showing 0 records from offset 7."), "{body}");
    let (_, body) = page("offset=1&timestamp=2");
    assert!(
        body.contains("give an offset or a timestamp, not both"),
        "{body}"
    );
    let (_, body) = page("limit=1000");
    assert!(body.contains("limit must be between 1 and 100"), "{body}");
    let (_, body) = page("partition=7");
    assert!(
        body.contains("Partition 7 is not hosted by this broker."),
        "{body}"
    );

    assert_eq!(seen["missingStatus"], 404);
    assert_eq!(seen["missing"]["heading"], "No topic no-such-topic");

    // The same numbers as the Prometheus scrape (one source of truth): after the reset the
    // group's lag on partition 0 is all 5 records.
    let (status, scrape) = http_get(&metrics, "/metrics");
    assert_eq!(status, 200);
    assert!(
        scrape
            .lines()
            .any(|line| line.starts_with("kafka_consumergroup_lag{")
                && line.contains(&format!("consumergroup=\"{HOSTILE_GROUP}\""))
                && line.contains("topic=\"orders\",partition=\"0\"")
                && line.ends_with(" 5")),
        "{scrape}"
    );
    for name in [
        "altered-config",
        "restored-config",
        "after-delete",
        "reset-dry-run",
        "after-reset",
        "produced",
        "created-topic",
        "refused-topic",
        "overview",
        "topic",
        "groups",
        "messages-latest",
        "messages-from-offset",
        "messages-next",
        "missing-topic",
    ] {
        assert!(screenshots.join(format!("{name}.png")).exists());
    }
}

#[test]
fn the_console_is_off_when_disabled_and_the_metrics_stay() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        dir.path(),
        &[
            "--set",
            "metrics.listen=127.0.0.1:0",
            "--set",
            "console.enabled=false",
        ],
    );
    let metrics = broker.metrics_address();
    assert!(!broker.log_text().contains("console on http://"));
    for path in ["/console", "/console/groups", "/console/topics/x"] {
        assert_eq!(http_get(&metrics, path).0, 404, "{path}");
    }
    assert_eq!(http_get(&metrics, "/metrics").0, 200);
    assert_eq!(http_get(&metrics, "/healthz").0, 200);
}
