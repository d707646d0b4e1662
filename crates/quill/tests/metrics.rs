//! The Prometheus endpoint (`metrics.listen`) against the real binary: a known produce moves
//! the byte and record counters by exactly its size, a fetch moves bytes out by exactly what
//! it returned, a confluent-kafka (librdkafka) group commits an offset and the broker's lag
//! gauge equals the high watermark minus that offset. Every scrape is parsed by Prometheus'
//! own Python parser (prometheus_client), so the output is checked as Prometheus reads it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{record_batch, BrokerProcess};

/// Bound on one client program (each bounds its own waits well below this).
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on waiting for a condition the broker reaches asynchronously.
const CONDITION_TIMEOUT: Duration = Duration::from_secs(20);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let python = std::env::var_os("QUILL_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/compat-venv/bin/python"));
    assert!(
        python.exists(),
        "{} missing: run ./scripts/install-test-deps.sh",
        python.display()
    );
    python
}

/// Runs `tests/compat/metrics/<script>` with `stdin`, bounded; panics unless it exits 0.
fn run_python(script: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(python())
        .arg(root().join("tests/compat/metrics").join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    // Read both pipes while the program runs: a scrape's JSON is larger than a pipe buffer.
    let mut stdout_pipe = child.stdout.take().unwrap();
    let stdout_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout_pipe.read_to_string(&mut text);
        text
    });
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let status = common::wait_for_exit(&mut child, PROGRAM_TIMEOUT);
    writer.join().unwrap();
    let stdout = stdout_reader.join().unwrap();
    let stderr = stderr_reader.join().unwrap();
    assert!(
        status.is_some_and(|status| status.success()),
        "{script} failed ({status:?})\nstdout:\n{}\nstderr:\n{stderr}",
        stdout.chars().take(4000).collect::<String>()
    );
    stdout
}

/// One GET over a fresh connection: (status code, content type, body).
fn http_get(address: &str, path: &str) -> (u16, String, String) {
    http_request(address, "GET", path)
}

fn http_request(address: &str, method: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// A scrape as Prometheus' parser read it.
struct Scrape {
    samples: Vec<serde_json::Value>,
    /// Families declared (`# TYPE`), with samples or not (a broker without followers declares
    /// the replica lag family and has no series of it).
    declared: std::collections::BTreeSet<String>,
}

impl Scrape {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|sample| {
                sample["name"] == name
                    && sample["labels"].as_object().is_some_and(|actual| {
                        actual.len() == labels.len()
                            && labels.iter().all(|(key, value)| {
                                actual.get(*key).and_then(|v| v.as_str()) == Some(*value)
                            })
                    })
            })
            .and_then(|sample| sample["value"].as_f64())
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }
}

struct MetricsEndpoint {
    address: String,
}

impl MetricsEndpoint {
    /// The address the broker reports for `metrics.listen=127.0.0.1:0`.
    fn of(broker: &BrokerProcess) -> MetricsEndpoint {
        MetricsEndpoint {
            address: broker.metrics_address(),
        }
    }

    fn scrape(&self) -> Scrape {
        let (status, content_type, body) = http_get(&self.address, "/metrics");
        assert_eq!(status, 200, "{body}");
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let parsed = run_python("parse_exposition.py", &[], &body);
        Scrape {
            samples: serde_json::from_str(&parsed).expect("parser output"),
            declared: body
                .lines()
                .filter_map(|line| line.strip_prefix("# TYPE "))
                .filter_map(|rest| rest.split_whitespace().next())
                .map(str::to_string)
                .collect(),
        }
    }

    /// Scrapes until `done` holds (the broker counts a request after writing its response, so
    /// a client may see the response first), bounded.
    fn scrape_until(&self, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
        self.scrape_within(what, CONDITION_TIMEOUT, done)
    }

    fn scrape_within(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        let mut last = None;
        common::wait_until(what, timeout, || {
            let scrape = self.scrape();
            let holds = done(&scrape);
            last = Some(scrape);
            holds
        });
        last.expect("wait_until checks at least once")
    }
}

const TOPIC: &str = "metrics-orders";
const GROUP: &str = "metrics-billing";

#[test]
fn counters_and_broker_computed_lag_match_what_clients_did() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--set", "metrics.listen=127.0.0.1:0"]);
    let endpoint = MetricsEndpoint::of(&broker);

    let (status, _, body) = http_get(&endpoint.address, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(http_get(&endpoint.address, "/nope").0, 404);
    assert_eq!(http_request(&endpoint.address, "POST", "/metrics").0, 405);

    let mut client = broker.connect();
    client.create_topic(TOPIC, 1);
    let topic = [("topic", TOPIC)];
    let before = endpoint.scrape();
    assert_eq!(
        before.value("kafka_server_brokertopicmetrics_bytesin_total", &topic),
        None
    );
    let produce_requests = [("request", "Produce")];
    let produces_before = before.get(
        "kafka_network_requestmetrics_requests_total",
        &produce_requests,
    );

    // One Produce of a known batch: bytes in move by exactly its size, records by its count.
    let values: Vec<String> = (0..10).map(|i| format!("order-{i:04}")).collect();
    let value_refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let batch = record_batch(&value_refs, 1_700_000_000_000);
    let batch_bytes = batch.len() as f64;
    let response = client.call(&common::produce_request(TOPIC, 0, batch, -1), 7);
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    // The group-commit thread records an fsync's latency after the sync has answered the
    // waiting produce, so the flush histogram may trail the response briefly.
    let after_produce = endpoint.scrape_until("the Produce to be counted", |scrape| {
        scrape.get(
            "kafka_network_requestmetrics_requests_total",
            &produce_requests,
        ) == produces_before + 1.0
            && scrape.get("kafka_log_logflushstats_logflush_seconds_count", &[]) >= 1.0
    });
    assert_eq!(
        after_produce.get("kafka_server_brokertopicmetrics_bytesin_total", &topic),
        batch_bytes
    );
    assert_eq!(
        after_produce.get("kafka_server_brokertopicmetrics_messagesin_total", &topic),
        10.0
    );
    assert_eq!(
        after_produce.get("kafka_server_brokertopicmetrics_bytesin_total", &[])
            - before.get("kafka_server_brokertopicmetrics_bytesin_total", &[]),
        batch_bytes
    );
    // The latency histogram counted the same request, in its +Inf bucket and _count.
    assert_eq!(
        after_produce.get(
            "kafka_network_requestmetrics_totaltime_seconds_count",
            &produce_requests
        ),
        produces_before + 1.0
    );
    assert_eq!(
        after_produce.get(
            "kafka_network_requestmetrics_totaltime_seconds_bucket",
            &[("request", "Produce"), ("le", "+Inf")]
        ),
        produces_before + 1.0
    );
    // acks=-1 went through the group commit: at least one fsync and one round were observed.
    assert!(after_produce.get("kafka_log_logflushstats_logflush_seconds_count", &[]) >= 1.0);
    assert!(after_produce.get("quill_log_group_commit_batch_requests_count", &[]) >= 1.0);
    let partition0 = [("topic", TOPIC), ("partition", "0")];
    assert_eq!(
        after_produce.get("kafka_log_log_size", &partition0),
        batch_bytes
    );
    assert_eq!(
        after_produce.get("kafka_log_log_numlogsegments", &partition0),
        1.0
    );

    // A real client (librdkafka) produces 30 more records, then a group reads all 40 and
    // commits offset 25: the broker's lag for the group is 40 - 25.
    let python_records = 30;
    let total_records = 10 + python_records;
    let committed_offset = 25;
    let stdout = run_python(
        "produce_consume_commit.py",
        &[
            &broker.address(),
            TOPIC,
            GROUP,
            &python_records.to_string(),
            "100",
            &total_records.to_string(),
            &committed_offset.to_string(),
        ],
        "",
    );
    assert!(
        stdout.contains(&format!("\"consumed\": {total_records}")),
        "{stdout}"
    );
    let group_partition = [
        ("consumergroup", GROUP),
        ("topic", TOPIC),
        ("partition", "0"),
    ];
    let after_group =
        endpoint.scrape_until("the group to be Empty after its member left", |scrape| {
            scrape.value(
                "kafka_coordinator_group_groupmetadatamanager_numgroups",
                &[("state", "Empty")],
            ) == Some(1.0)
        });
    assert_eq!(
        after_group.get("kafka_server_brokertopicmetrics_messagesin_total", &topic),
        f64::from(total_records)
    );
    // Everything appended to the topic is in its one log: bytes in equals the log size.
    assert_eq!(
        after_group.get("kafka_server_brokertopicmetrics_bytesin_total", &topic),
        after_group.get("kafka_log_log_size", &partition0)
    );
    let high_watermark = after_group.get("kafka_cluster_partition_highwatermark", &partition0);
    assert_eq!(high_watermark, f64::from(total_records));
    assert_eq!(
        after_group.get("kafka_consumergroup_current_offset", &group_partition),
        f64::from(committed_offset)
    );
    assert_eq!(
        after_group.get("kafka_consumergroup_lag", &group_partition),
        high_watermark - f64::from(committed_offset)
    );
    assert_eq!(
        after_group.get(
            "kafka_coordinator_group_groupmetadatamanager_numgroups",
            &[("state", "Stable")]
        ),
        0.0
    );

    // One Fetch from offset 0 with nobody else fetching: bytes out move by exactly the record
    // bytes it returned.
    let bytes_out_before =
        after_group.get("kafka_server_brokertopicmetrics_bytesout_total", &topic);
    let fetch_requests = [("request", "Fetch")];
    let fetches_before = after_group.get(
        "kafka_network_requestmetrics_requests_total",
        &fetch_requests,
    );
    let fetched = client.fetch(TOPIC, 0, 0);
    let returned = fetched.responses[0].partitions[0]
        .records
        .as_ref()
        .map_or(0, |records| records.len()) as f64;
    assert!(returned > 0.0);
    // At least this Fetch: the librdkafka consumer that just exited may have left a long-poll
    // Fetch parked at the log end (fetch.wait.max.ms), answered and counted later, with no
    // records, so it can add to the count but never to the bytes out.
    let after_fetch = endpoint.scrape_until("the Fetch to be counted", |scrape| {
        scrape.get(
            "kafka_network_requestmetrics_requests_total",
            &fetch_requests,
        ) >= fetches_before + 1.0
    });
    assert_eq!(
        after_fetch.get("kafka_server_brokertopicmetrics_bytesout_total", &topic)
            - bytes_out_before,
        returned
    );

    // Producing more raises the lag by exactly as many records.
    client.produce(TOPIC, 0, &["late-1", "late-2", "late-3"]);
    let after_more = endpoint.scrape_until("the lag to include the new records", |scrape| {
        scrape.value("kafka_cluster_partition_highwatermark", &partition0)
            == Some(f64::from(total_records + 3))
    });
    assert_eq!(
        after_more.get("kafka_consumergroup_lag", &group_partition),
        f64::from(total_records + 3 - committed_offset)
    );

    // Nothing is waiting once every request is answered; process metrics are present.
    assert_eq!(
        after_more.get(
            "kafka_server_delayedoperationpurgatory_purgatorysize",
            &[("delayed_operation", "Produce")]
        ),
        0.0
    );
    assert!(after_more.get("process_resident_memory_bytes", &[]) > 0.0);
    assert!(after_more.get("process_open_fds", &[]) > 0.0);
    assert!(after_more.value("process_cpu_seconds_total", &[]).is_some());

    // The Grafana dashboard queries only metrics the broker exposes, and docs/metrics.md
    // documents every family it exposes.
    let exposed: std::collections::BTreeSet<&str> = after_more
        .samples
        .iter()
        .filter_map(|sample| sample["name"].as_str())
        .chain(after_more.declared.iter().map(String::as_str))
        .collect();
    let dashboard = std::fs::read_to_string(root().join("docs/grafana/quill.json")).unwrap();
    let queried = metric_names_in(&dashboard);
    assert!(queried.len() >= 10, "{queried:?}");
    for name in &queried {
        assert!(
            exposed.contains(name.as_str()),
            "the dashboard queries {name}, which is not exposed"
        );
    }
    let documentation = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    for family in &after_more.declared {
        assert!(
            documentation.contains(family.as_str()),
            "docs/metrics.md does not mention {family}"
        );
    }
}

/// Every `kafka_…`, `quill_…` or `process_…` identifier in `text`.
fn metric_names_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for prefix in ["kafka_", "quill_", "process_"] {
        for (start, _) in text.match_indices(prefix) {
            let preceded_by_identifier = text[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if preceded_by_identifier {
                continue;
            }
            let name: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

#[test]
fn json_logs_are_one_object_per_line_without_debug_formatting() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--log-format", "json"]);
    let mut client = broker.connect();
    client.create_topic("json-logs", 1);
    let log = broker.log_text();
    let lines: Vec<&str> = log.lines().filter(|line| !line.is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"));
        assert!(object["message"].is_string(), "{line}");
        assert!(object["level"].is_string(), "{line}");
        assert!(!line.contains("Some("), "{line}");
    }
    assert!(
        lines.iter().any(|line| line.contains("listening on")),
        "{log}"
    );
}

/// The log cleaner's state of a compacted partition is visible (issue 12): the cleaner's
/// position moves past the superseded records once it has run, the dirty ratio is a fraction,
/// and a topic that is not compacted has no cleaner series.
#[test]
fn compacted_partitions_show_the_cleaners_position_and_dirty_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        dir.path(),
        &[
            "--set",
            "metrics.listen=127.0.0.1:0",
            "--set",
            "log.cleaner.backoff.ms=50",
        ],
    );
    let endpoint = MetricsEndpoint::of(&broker);
    let mut client = broker.connect();
    let create = common::create_topic_request(
        "compacted",
        1,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    assert_eq!(client.call(&create, 5).topics[0].error_code, 0);
    client.create_topic("not-compacted", 1);
    let labels = [("topic", "compacted"), ("partition", "0")];
    common::wait_until("the cleaner to move", Duration::from_secs(60), || {
        // The same keys every time; an append after segment.ms rolls the active segment, which
        // makes the earlier ones cleanable.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let batch = record_batch(&["a", "b", "c"], now_ms);
        let produced = client.call(&common::produce_request("compacted", 0, batch, -1), 7);
        assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
        let scrape = endpoint.scrape();
        let ratio = scrape.get("quill_log_cleaner_dirty_ratio", &labels);
        assert!((0.0..=1.0).contains(&ratio), "dirty ratio {ratio}");
        let max_percent = scrape.get("kafka_log_logcleanermanager_max_dirty_percent", &[]);
        assert!(
            max_percent >= ratio * 100.0 - 1e-9,
            "{max_percent} < {ratio}"
        );
        assert_eq!(
            scrape.value(
                "quill_log_cleaner_first_dirty_offset",
                &[("topic", "not-compacted"), ("partition", "0")]
            ),
            None
        );
        scrape.get("quill_log_cleaner_first_dirty_offset", &labels) > 0.0
    });
}

/// The replication gauges of a single node: it is the active controller, leads every
/// partition, and no partition is under-replicated, under min ISR or offline. With one replica
/// and `min.insync.replicas=1` every partition is exactly at min ISR (as Kafka counts it).
#[test]
fn a_single_node_leads_everything_and_nothing_is_under_replicated() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--set", "metrics.listen=127.0.0.1:0"]);
    let endpoint = MetricsEndpoint::of(&broker);
    let mut client = broker.connect();
    client.create_topic("replication-gauges", 3);
    let scrape = endpoint.scrape_until("the three partitions to be led", |scrape| {
        scrape.value("kafka_server_replicamanager_leadercount", &[]) == Some(3.0)
    });
    for (name, expected) in [
        ("kafka_server_replicamanager_partitioncount", 3.0),
        ("kafka_server_replicamanager_underreplicatedpartitions", 0.0),
        ("kafka_server_replicamanager_underminisrpartitioncount", 0.0),
        ("kafka_server_replicamanager_atminisrpartitioncount", 3.0),
        ("kafka_server_replicamanager_offlinereplicacount", 0.0),
        ("kafka_server_replicamanager_isrshrinks_total", 0.0),
        ("kafka_server_replicamanager_isrexpands_total", 0.0),
        ("kafka_server_replicamanager_failedisrupdates_total", 0.0),
        (
            "kafka_controller_kafkacontroller_activecontrollercount",
            1.0,
        ),
        (
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            0.0,
        ),
        ("kafka_controller_kafkacontroller_globaltopiccount", 1.0),
        ("kafka_controller_kafkacontroller_globalpartitioncount", 3.0),
        ("kafka_controller_kafkacontroller_activebrokercount", 1.0),
        ("kafka_controller_kafkacontroller_fencedbrokercount", 0.0),
    ] {
        assert_eq!(scrape.get(name, &[]), expected, "{name}");
    }
    // No followers, so no replica lag series.
    assert!(!scrape
        .samples
        .iter()
        .any(|sample| sample["name"] == "kafka_server_fetcherlagmetrics_consumerlag"));
}

/// Sends `kill -<signal>` to a process.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Resumes a SIGSTOPped broker when dropped, so a failing test still stops it (a stopped
/// process ignores nothing but SIGKILL and SIGCONT; the cluster kills it after this).
struct Stopped(u32);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.0.to_string())
            .status();
    }
}

/// Produces `count` records with acks=1 (needs only the leader) to partition 0 of `topic`,
/// retrying (bounded) while the leader has not applied the topic yet (UNKNOWN_TOPIC_OR_PARTITION
/// and NOT_LEADER_OR_FOLLOWER append nothing, so a retry cannot duplicate).
fn produce_acks_1(address: &str, topic: &str, count: usize) {
    let values: Vec<String> = (0..count).map(|i| format!("value-{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let batch = record_batch(&refs, 1_700_000_000_000);
    let mut client = common::TestClient::connect(address);
    common::wait_until(
        "the leader to accept records",
        cluster::CLUSTER_TIMEOUT,
        || {
            let response = client.call(&common::produce_request(topic, 0, batch.clone(), 1), 7);
            let error_code = response.responses[0].partition_responses[0].error_code;
            assert!(
                [0, 3, 6].contains(&error_code),
                "produce failed with error {error_code}"
            );
            error_code == 0
        },
    );
}

/// A follower of an RF=3 partition that stops fetching (SIGSTOP) leaves the ISR after
/// `replica.lag.time.max.ms`: the leader's scrape shows the partition under-replicated (and at
/// min ISR), one ISR shrink, and the follower's lag growing with what was produced meanwhile.
/// Resumed (SIGCONT), it catches up and rejoins: back to 0 under-replicated, one expand.
#[test]
fn a_stopped_follower_shows_as_under_replicated_and_an_isr_shrink_then_an_expand() {
    const TOPIC: &str = "watched";
    let cluster = cluster::Cluster::start(
        3,
        &[
            "--set",
            "metrics.listen=127.0.0.1:0",
            "--set",
            "replica.lag.time.max.ms=1500",
            // Longer than the follower stays stopped: resumed, it must not call an election
            // (its election timer ran out while it was stopped), which would delay the ISR
            // expansion this test waits for behind the metadata quorum's re-election.
            "--set",
            "controller.quorum.election.timeout.ms=5000",
        ],
    );
    let endpoints: std::collections::BTreeMap<i32, MetricsEndpoint> = cluster
        .nodes
        .iter()
        .map(|(id, node)| (*id, MetricsEndpoint::of(node)))
        .collect();
    let mut client = common::TestClient::connect(&cluster.bootstrap(1));
    let response: kafka_protocol::messages::CreateTopicsResponse = client.call(
        &common::create_topic_request(TOPIC, 1, 3, &[("min.insync.replicas", "2")]),
        5,
    );
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
    let mut leader = -1;
    common::wait_until("every replica in the ISR", cluster::CLUSTER_TIMEOUT, || {
        let response = cluster::metadata(&cluster.bootstrap(1), &[TOPIC]);
        let Some(partition) = response.topics.first().and_then(|t| t.partitions.first()) else {
            return false;
        };
        leader = partition.leader_id.0;
        leader >= 0 && partition.isr_nodes.len() == 3
    });
    let leader_metrics = &endpoints[&leader];
    produce_acks_1(&cluster.bootstrap(leader), TOPIC, 5);

    // Exactly one node reports itself as the active controller.
    let mut controllers = Vec::new();
    common::wait_until("one active controller", cluster::CLUSTER_TIMEOUT, || {
        controllers = endpoints
            .iter()
            .filter(|(_, endpoint)| {
                endpoint.scrape().get(
                    "kafka_controller_kafkacontroller_activecontrollercount",
                    &[],
                ) == 1.0
            })
            .map(|(id, _)| *id)
            .collect();
        controllers.len() == 1
    });
    // Stop a follower that is not the controller (the quorum keeps its leader).
    let follower = (1..=3)
        .find(|id| *id != leader && *id != controllers[0])
        .unwrap();
    let follower_label = follower.to_string();
    let lag_labels = [
        ("topic", TOPIC),
        ("partition", "0"),
        ("replica", follower_label.as_str()),
    ];
    // A loaded machine may stall a follower past the short lag bound: wait for the ISR to be
    // whole again as well.
    let healthy = leader_metrics.scrape_within(
        "the followers to catch up",
        cluster::CLUSTER_TIMEOUT,
        |scrape| {
            scrape.value("kafka_server_fetcherlagmetrics_consumerlag", &lag_labels) == Some(0.0)
                && scrape.get("kafka_server_replicamanager_underreplicatedpartitions", &[]) == 0.0
        },
    );
    assert_eq!(
        healthy.get("kafka_server_replicamanager_atminisrpartitioncount", &[]),
        0.0
    );
    assert!(healthy.get("kafka_server_replicamanager_leadercount", &[]) >= 1.0);
    let shrinks_before = healthy.get("kafka_server_replicamanager_isrshrinks_total", &[]);
    let expands_before = healthy.get("kafka_server_replicamanager_isrexpands_total", &[]);

    signal(cluster.node(follower).pid(), "STOP");
    let stopped = Stopped(cluster.node(follower).pid());
    produce_acks_1(&cluster.bootstrap(leader), TOPIC, 7);
    // The stopped follower out, the ISR {leader, the other follower} is exactly
    // min.insync.replicas=2.
    let shrunk = leader_metrics.scrape_within(
        "the stopped follower to leave the ISR",
        cluster::CLUSTER_TIMEOUT,
        |scrape| {
            scrape.get("kafka_server_replicamanager_underreplicatedpartitions", &[]) == 1.0
                && scrape.get("kafka_server_replicamanager_atminisrpartitioncount", &[]) == 1.0
                && scrape.get("kafka_server_replicamanager_isrshrinks_total", &[]) > shrinks_before
        },
    );
    assert_eq!(
        shrunk.get("kafka_server_replicamanager_underminisrpartitioncount", &[]),
        0.0
    );
    // It stopped after fetching the first 5 records: 7 behind.
    assert_eq!(
        shrunk.get("kafka_server_fetcherlagmetrics_consumerlag", &lag_labels),
        7.0
    );

    drop(stopped); // SIGCONT
    let recovered = leader_metrics.scrape_within(
        "the resumed follower to rejoin the ISR",
        cluster::CLUSTER_TIMEOUT,
        |scrape| {
            scrape.get("kafka_server_replicamanager_underreplicatedpartitions", &[]) == 0.0
                && scrape.get("kafka_server_replicamanager_isrexpands_total", &[]) > expands_before
                && scrape.value("kafka_server_fetcherlagmetrics_consumerlag", &lag_labels)
                    == Some(0.0)
        },
    );
    assert_eq!(
        recovered.get("kafka_server_replicamanager_underminisrpartitioncount", &[]),
        0.0
    );
    assert_eq!(
        recovered.get(
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            &[]
        ),
        0.0
    );
}
