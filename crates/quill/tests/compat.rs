//! The real-client compatibility suite: third-party Kafka clients (kafkajs, confluent-kafka
//! with a recent librdkafka, kafka-python, Debian's kcat with librdkafka 2.0.2, Debian's Go
//! sarama, kafka-go and confluent-kafka-go) run the
//! scenario programs under `tests/compat/` against the real `quill` binary, one line per
//! client × scenario, and regenerate `docs/compatibility.md`.
//!
//! - Clients are installed by `./scripts/install-test-deps.sh` (run by `./scripts/test.sh`); a
//!   missing client fails this test with that instruction, never a silent skip.
//! - A scenario program takes `<bootstrap> <topic-prefix>`, prints `STEP <name>` as it goes and
//!   exits 0 on success, non-zero with the client's own error otherwise.
//! - [`NOT_YET`] is the one list of (client, scenario) pairs whose broker feature is missing.
//!   They still run and are reported; each may fail only at its declared step (an earlier
//!   failure is a regression), and one that passes fails the suite until it is removed.
//! - Scenarios 5 and 8 get a broker of their own: the program prints `RESTART-BROKER <n>`, the runner
//!   stops the broker (SIGTERM the first time, SIGKILL the second), restarts it on the same port
//!   and data dir and writes `restarted` to the program's stdin.
//! - Scenario 10 runs last: each reader decodes the compressed topics the other clients wrote
//!   in scenario 4 (listed in `QUILL_INTEROP_TOPICS`).
//! - `cargo test -p quill --test compat -- --nocapture` shows the per-pair lines of a passing
//!   run; `QUILL_COMPAT_ONLY` / `QUILL_COMPAT_SHOW_OUTPUT` narrow and widen it (see [`selected`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{create_topic_request, BrokerProcess, TestClient};
use kafka_protocol::messages::CreateTopicsRequest;

/// Bound on one scenario program (the programs bound themselves at 90 s).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(150);
/// Client programs run at once against the shared broker.
const PARALLELISM: usize = 4;
const BROKER_LOG_TAIL_LINES: usize = 40;
/// Scenarios that get a broker of their own, which they may ask the runner to restart.
const RESTART_SCENARIOS: [u8; 2] = [5, 8];
/// How long a restart keeps the broker stopped before restarting it: a realistic restart,
/// long enough that a client must really retry (not just reconnect).
const BROKER_DOWN_TIME: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Client {
    Kafkajs,
    ConfluentKafka,
    KafkaPython,
    Kcat,
    Sarama,
    KafkaGo,
    ConfluentKafkaGo,
    QuillCli,
}

const CLIENTS: [Client; 8] = [
    Client::Kafkajs,
    Client::ConfluentKafka,
    Client::KafkaPython,
    Client::Kcat,
    Client::Sarama,
    Client::KafkaGo,
    Client::ConfluentKafkaGo,
    Client::QuillCli,
];

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Kafkajs => "kafkajs",
            Client::ConfluentKafka => "confluent-kafka",
            Client::KafkaPython => "kafka-python",
            Client::Kcat => "kcat",
            Client::Sarama => "sarama",
            Client::KafkaGo => "kafka-go",
            Client::ConfluentKafkaGo => "confluent-kafka-go",
            Client::QuillCli => "quill-cli",
        }
    }
}

/// (number, file stem, title) of every scenario in the matrix.
#[rustfmt::skip]
const SCENARIOS: [(u8, &str, &str); 10] = [
    (1, "admin", "Admin: create, list, describe, add partitions, create again, configs, delete records, delete, recreate"),
    (2, "keyed_json", "Keyed JSON from the beginning: Java murmur2 partitions, explicit partition, order; acks=0; auto-create; tail; pipelined order"),
    (3, "records", "Headers, null key/value, empty value, timestamps, LogAppendTime, max.message.bytes, fetch limits"),
    (4, "compression", "Compression: gzip, snappy, lz4, zstd, mixed in one partition"),
    (5, "groups", "Consumer groups: split, fan-out, rebalance on leave, commits survive leaving and broker restarts"),
    (6, "replay", "Replay: seek to offset, offsets by time, group reset to earliest"),
    (7, "batch", "kafkajs eachBatch (resolveOffset, heartbeat, commit) and pause/resume"),
    (8, "restart", "Broker restarted mid-stream (SIGTERM, then SIGKILL): nothing acknowledged lost"),
    (9, "exactly_once", "From the tutorials: idempotent producer, transactions, read_committed"),
    (10, "interop", "Interop: read the compressed batches every other client wrote in scenario 4"),
];

/// Scenario 10 runs after all the others and reads what each writer produced in scenario 4:
/// (writer, values in its compression topic).
const INTEROP_WRITERS: [(Client, usize); 7] = [
    (Client::Kafkajs, 100),
    (Client::ConfluentKafka, 125),
    (Client::KafkaPython, 125),
    (Client::Kcat, 125),
    (Client::Sarama, 100),
    (Client::ConfluentKafkaGo, 125),
    (Client::QuillCli, 125),
];
const INTEROP_SCENARIO: u8 = 10;

/// Pairs whose broker feature does not exist yet: (client, scenario, the step at which the
/// program is expected to fail, why). Keep it short and honest: remove an entry as soon as the
/// feature lands (the suite fails until you do).
#[rustfmt::skip]
const NOT_YET: &[(Client, u8, &str, &str)] = &[
];

/// Pairs that do not apply to a client, with the reason shown in the matrix.
#[rustfmt::skip]
const NOT_APPLICABLE: &[(Client, u8, &str)] = &[
    (Client::ConfluentKafka, 7, "eachBatch and pause/resume are kafkajs APIs"),
    (Client::KafkaPython, 7, "eachBatch and pause/resume are kafkajs APIs"),
    (Client::Kcat, 7, "eachBatch and pause/resume are kafkajs APIs"),
    (Client::Kcat, 8, "kcat -P exits when all broker connections are down \
                       (`All broker connections are down: terminating`): it cannot ride a restart"),
    (Client::Kafkajs, 10, "kafkajs cannot decode the zstd batches the other clients write"),
    (Client::QuillCli, 7, "eachBatch and pause/resume are kafkajs APIs"),
    (Client::Sarama, 7, "eachBatch and pause/resume are kafkajs APIs"),
    (Client::KafkaGo, 2, KAFKA_GO_V1_FORMAT),
    (Client::KafkaGo, 3, KAFKA_GO_V1_FORMAT),
    (Client::KafkaGo, 4, KAFKA_GO_V1_FORMAT),
    (Client::KafkaGo, 5, KAFKA_GO_V1_FORMAT),
    (Client::KafkaGo, 6, KAFKA_GO_V1_FORMAT),
    (Client::KafkaGo, 7, "eachBatch and pause/resume are kafkajs APIs"),
    (Client::ConfluentKafkaGo, 7, "eachBatch and pause/resume are kafkajs APIs"),
    (Client::KafkaGo, 8, KAFKA_GO_V1_FORMAT),
    (Client::KafkaGo, 9, KAFKA_GO_V1_FORMAT),
    (Client::KafkaGo, 10, KAFKA_GO_V1_FORMAT),
];

/// Why kafka-go 0.2.1 (Debian bookworm's) has only scenario 1.
const KAFKA_GO_V1_FORMAT: &str = "kafka-go 0.2.1 produces and fetches only with Produce v2 / \
    Fetch v2 (message format v1), which Kafka 4.0 removed (KIP-896), as Quill does: checked \
    refused in scenario 1";

/// What a client covers in a scenario, when it is less (or more) than the title says.
#[rustfmt::skip]
const COVERAGE_NOTES: &[(Client, u8, &str)] = &[
    (Client::Kcat, 1, "metadata only (list/describe): kcat has no admin API"),
    (Client::Kafkajs, 2, "also the LegacyPartitioner of the tutorials (same key, same partition); \
                          no pipelined-order step: kafkajs does not order concurrent send() calls"),
    (Client::ConfluentKafka, 2, "murmur2_random = Java; default consistent_random: key-stable"),
    (Client::Kcat, 2, "murmur2_random = Java; default consistent_random: key-stable"),
    (Client::KafkaPython, 2, "no acks=0 step: kafka-python 2.3.3 never sends acks=0 Produce requests"),
    (Client::Kcat, 3, "no client timestamps (kcat cannot set them)"),
    (Client::Kafkajs, 4, "no zstd: kafkajs has no zstd codec without a native build"),
    (Client::Kcat, 5, "balanced consumer (-G); no broker restart step (a one-shot CLI)"),
    (Client::Kcat, 6, "no group reset (kcat has no group offsets API)"),
    (Client::Kafkajs, 9, "also `transaction.sendOffsets` of the tutorials"),
    (Client::Kcat, 9, "idempotent producer only (kcat has no transactions API)"),
    (Client::QuillCli, 2, "pipelined-order with --max-in-flight 5 (the CLI's default is 1)"),
    (Client::QuillCli, 3, "no client timestamps (the CLI cannot set them); headers given as a \
                           --format json object are sent in key order"),
    (Client::QuillCli, 9, "idempotent producer and read_committed consumer; no transactions in the CLI"),
    (Client::Sarama, 1, "ClusterAdmin.ListTopics and DescribeConfig send DescribeConfigs v0, which Kafka 4.0 \
                         removed (KIP-896): checked refused (connection closed); topics listed from Metadata, \
                         configs described with sarama's DescribeConfigsRequest v1; AlterConfigs (no \
                         incremental API in sarama 1.22.1)"),
    (Client::Sarama, 2, "default NewHashPartitioner: FNV-1a, not Java's murmur2 (5 of the 10 test keys \
                         land elsewhere on 3 partitions); murmur2 = Java with NewCustomPartitioner(WithAbsFirst(), \
                         WithCustomHashFunction(a murmur2 hash.Hash32)): sarama ships no murmur2; \
                         NewReferenceHashPartitioner: FNV-1a with Java's sign rule"),
    (Client::Sarama, 4, "no zstd: sarama 1.22.1 sends zstd batches in Produce v3, refused with \
                         UNSUPPORTED_COMPRESSION_TYPE as by Kafka (checked), and its Fetch v4 of a \
                         compression.type=zstd topic likewise"),
    (Client::Sarama, 5, "ConsumerGroup with range and round-robin (sticky came in sarama 1.24), and \
                         ClusterAdmin's views of each group (ListGroups, DescribeGroups, OffsetFetch); a \
                         member offering only the other strategy refused (INCONSISTENT_GROUP_PROTOCOL); \
                         Consumer.Offsets.Retention set: with the default sarama 1.22.1 commits with \
                         OffsetCommit v1, which Kafka 4.0 removed (the broker closes the connection)"),
    (Client::Sarama, 8, "an idempotent producer (Idempotent, one request in flight): also no message \
                         written twice"),
    (Client::Sarama, 9, "idempotent producer and read_committed consumer; no transactions in sarama 1.22.1"),
    (Client::KafkaGo, 1, "metadata (Metadata v1; ReadPartitions() without topics gets none, as from \
                          Kafka), ListOffsets v1, DeleteTopics v1; CreateTopics v0, Produce v2 and \
                          Fetch v2 checked refused (connection closed, nothing created or written) \
                          as by Kafka 4.0 (KIP-896); topics created by the runner"),
    (Client::ConfluentKafkaGo, 1, "no delete-records step: confluent-kafka-go 0.11.6 has no DeleteRecords; \
                                   AlterConfigs (no incremental API)"),
    (Client::ConfluentKafkaGo, 2, "murmur2_random = Java; default consistent_random: key-stable"),
    (Client::ConfluentKafkaGo, 9, "idempotent producer and read_committed consumer; no transactions in \
                                   confluent-kafka-go 0.11.6 (they came in 1.4)"),
];

fn not_yet(client: Client, scenario: u8) -> Option<(&'static str, &'static str)> {
    NOT_YET
        .iter()
        .find(|(c, s, _, _)| *c == client && *s == scenario)
        .map(|(_, _, step, reason)| (*step, *reason))
}

fn not_applicable(client: Client, scenario: u8) -> Option<&'static str> {
    NOT_APPLICABLE
        .iter()
        .find(|(c, s, _)| *c == client && *s == scenario)
        .map(|(_, _, reason)| *reason)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

const INSTALL_HINT: &str = "run ./scripts/install-test-deps.sh (./scripts/test.sh does it)";

struct Toolchain {
    root: PathBuf,
    python: PathBuf,
    /// The sarama scenario programs, one binary (`tests/compat/go/sarama`).
    sarama: PathBuf,
    /// The kafka-go scenario programs, one binary (`tests/compat/go/kafkago`).
    kafka_go: PathBuf,
    /// The confluent-kafka-go scenario programs, one binary (`tests/compat/go/confluentgo`).
    confluent_kafka_go: PathBuf,
    versions: BTreeMap<Client, String>,
}

fn run_capture(command: &mut Command) -> Option<String> {
    let output = command.stdin(Stdio::null()).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).to_string())
}

/// Finds every client and its version; panics with the install instruction if one is missing.
fn toolchain() -> Toolchain {
    let root = workspace_root();
    let python = std::env::var_os("QUILL_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/compat-venv/bin/python"));
    let mut versions = BTreeMap::new();

    let package = root.join("tests/compat/node/node_modules/kafkajs/package.json");
    let kafkajs = std::fs::read_to_string(&package)
        .ok()
        .and_then(|text| json_string_field(&text, "version"))
        .unwrap_or_else(|| {
            panic!(
                "kafkajs is not installed ({}): {INSTALL_HINT}",
                package.display()
            )
        });
    run_capture(Command::new("node").arg("--version"))
        .unwrap_or_else(|| panic!("node is not installed: {INSTALL_HINT}"));
    versions.insert(Client::Kafkajs, kafkajs);

    let probe = "import confluent_kafka, kafka\n\
                 print(confluent_kafka.__version__, confluent_kafka.libversion()[0])\n\
                 print(kafka.__version__)";
    let python_versions =
        run_capture(Command::new(&python).arg("-c").arg(probe)).unwrap_or_else(|| {
            panic!(
                "confluent-kafka / kafka-python not importable with {}: {INSTALL_HINT}",
                python.display()
            )
        });
    let mut lines = python_versions.lines();
    let (confluent, librdkafka) = lines
        .next()
        .and_then(|line| line.split_once(' '))
        .unwrap_or(("?", "?"));
    versions.insert(
        Client::ConfluentKafka,
        format!("{confluent} (librdkafka {librdkafka})"),
    );
    versions.insert(
        Client::KafkaPython,
        lines.next().unwrap_or("?").trim().to_string(),
    );

    let kcat = run_capture(Command::new("kcat").arg("-V"))
        .unwrap_or_else(|| panic!("kcat is not installed: {INSTALL_HINT}"));
    let version = kcat
        .split("Version ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?");
    let librdkafka = kcat
        .split("librdkafka ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?");
    versions.insert(Client::Kcat, format!("{version} (librdkafka {librdkafka})"));
    let go = run_capture(Command::new("go").arg("version"))
        .unwrap_or_else(|| panic!("go is not installed: {INSTALL_HINT}"));
    let go = go.split_whitespace().nth(2).unwrap_or("?").to_string();
    let sarama = build_go_scenarios(&root, "sarama");
    versions.insert(
        Client::Sarama,
        format!(
            "{} (Debian golang-github-shopify-sarama-dev, {go})",
            debian_version("golang-github-shopify-sarama-dev")
        ),
    );
    let kafka_go = build_go_scenarios(&root, "kafkago");
    versions.insert(
        Client::KafkaGo,
        format!(
            "{} (Debian golang-github-segmentio-kafka-go-dev, {go})",
            debian_version("golang-github-segmentio-kafka-go-dev")
        ),
    );
    let confluent_kafka_go = build_go_scenarios(&root, "confluentgo");
    let librdkafka = run_capture(Command::new("pkg-config").args(["--modversion", "rdkafka"]))
        .unwrap_or_default();
    versions.insert(
        Client::ConfluentKafkaGo,
        format!(
            "{} (Debian golang-github-confluentinc-confluent-kafka-go-dev, librdkafka {}, {go})",
            debian_version("golang-github-confluentinc-confluent-kafka-go-dev"),
            librdkafka.trim()
        ),
    );
    let quill =
        run_capture(Command::new(env!("CARGO_BIN_EXE_quill")).arg("--version")).unwrap_or_default();
    versions.insert(
        Client::QuillCli,
        format!("{} (this workspace)", quill.trim()),
    );
    Toolchain {
        root,
        python,
        sarama,
        kafka_go,
        confluent_kafka_go,
        versions,
    }
}

/// The upstream part of an installed Debian package's version (`1.22.1` of `1.22.1-1`).
fn debian_version(package: &str) -> String {
    run_capture(
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Version}"])
            .arg(package),
    )
    .map(|version| {
        let version = version.trim();
        let upstream = version
            .rsplit_once('-')
            .map_or(version, |(upstream, _)| upstream);
        upstream.to_string()
    })
    .unwrap_or_else(|| panic!("{package} is not installed: {INSTALL_HINT}"))
}

/// Builds the Go scenario programs of `tests/compat/go/<library>` into one binary, offline:
/// GOPATH mode over Debian's packaged sources in /usr/share/gocode (no module download, no
/// toolchain switch), with a build cache under target/ so that a rebuild of unchanged programs
/// takes well under a second.
fn build_go_scenarios(root: &Path, library: &str) -> PathBuf {
    let out_dir = root.join("target/compat-go");
    let binary = out_dir.join(format!("{library}-scenarios"));
    let output = Command::new("go")
        .current_dir(root)
        .args(["build", "-o"])
        .arg(&binary)
        .arg(format!("./tests/compat/go/{library}"))
        // No user go.env file: only these settings apply.
        .env("GOENV", "off")
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", out_dir.join("cache"))
        // Debian's DataDog/zstd calls a zstd function deprecated in the packaged libzstd.
        .env("CGO_CFLAGS", "-O2 -g -Wno-deprecated-declarations")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("running go build: {error}: {INSTALL_HINT}"));
    assert!(
        output.status.success(),
        "building the {library} scenario programs failed ({INSTALL_HINT}):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

/// The value of `"field": "value"` in a small JSON document (package.json).
fn json_string_field(text: &str, field: &str) -> Option<String> {
    let after = text.split(&format!("\"{field}\"")).nth(1)?;
    let value = after.split('"').nth(1)?;
    Some(value.to_string())
}

/// The topic prefix of a (client, scenario): unique per pair, so all can share one broker.
fn case_prefix(client: Client, scenario: u8) -> String {
    format!(
        "compat-{}-{}",
        client.name(),
        SCENARIOS[usize::from(scenario) - 1].1.replace('_', "-")
    )
}

#[derive(Clone)]
struct Case {
    client: Client,
    scenario: u8,
    program: PathBuf,
}

impl Case {
    fn label(&self) -> String {
        format!("{} × {}", self.client.name(), self.scenario)
    }

    fn command(&self, tools: &Toolchain, bootstrap: &str, prefix: &str) -> Command {
        let mut command = match self.client {
            Client::Kafkajs => {
                let mut command = Command::new("node");
                command.arg(&self.program);
                command.env("KAFKAJS_NO_PARTITIONER_WARNING", "1");
                command
            }
            Client::ConfluentKafka | Client::KafkaPython => {
                let mut command = Command::new(&tools.python);
                command.arg(&self.program).env("PYTHONUNBUFFERED", "1");
                command
            }
            Client::Kcat => {
                let mut command = Command::new("bash");
                command.arg(&self.program);
                command
            }
            Client::QuillCli => {
                let mut command = Command::new("bash");
                command
                    .arg(&self.program)
                    .env("QUILL_BIN", env!("CARGO_BIN_EXE_quill"));
                command
            }
            Client::Sarama | Client::KafkaGo | Client::ConfluentKafkaGo => {
                // One binary holds every scenario: it runs the one named after the file.
                let binary = match self.client {
                    Client::Sarama => &tools.sarama,
                    Client::KafkaGo => &tools.kafka_go,
                    _ => &tools.confluent_kafka_go,
                };
                let mut command = Command::new(binary);
                command.arg(self.program.file_stem().unwrap());
                command
            }
        };
        command
            .current_dir(self.program.parent().unwrap())
            .arg(bootstrap)
            .arg(prefix)
            .env("QUILL_SCENARIO_TIMEOUT_MS", "90000");
        if self.scenario == INTEROP_SCENARIO {
            let topics: Vec<String> = INTEROP_WRITERS
                .iter()
                .filter(|(writer, _)| *writer != self.client)
                .map(|(writer, count)| format!("{}-compression={count}", case_prefix(*writer, 4)))
                .collect();
            command.env("QUILL_INTEROP_TOPICS", topics.join(","));
        }
        command
    }
}

/// The program of each (client, scenario) that has one.
fn cases(tools: &Toolchain) -> Vec<Case> {
    let dir = tools.root.join("tests/compat");
    let mut cases = Vec::new();
    for client in CLIENTS {
        for (number, stem, _) in SCENARIOS {
            let program = match client {
                Client::Kafkajs => dir.join(format!("node/{number}_{stem}.js")),
                Client::ConfluentKafka => dir.join(format!("python/confluent_{number}_{stem}.py")),
                Client::KafkaPython => dir.join(format!("python/kafkapython_{number}_{stem}.py")),
                Client::Kcat => dir.join(format!("kcat/{number}_{stem}.sh")),
                Client::QuillCli => dir.join(format!("quill/{number}_{stem}.sh")),
                Client::Sarama => dir.join(format!("go/sarama/{number}_{stem}.go")),
                Client::KafkaGo => dir.join(format!("go/kafkago/{number}_{stem}.go")),
                Client::ConfluentKafkaGo => dir.join(format!("go/confluentgo/{number}_{stem}.go")),
            };
            let applicable = not_applicable(client, number).is_none();
            assert_eq!(
                program.exists(),
                applicable,
                "{}: a program exists for a not-applicable pair, or is missing for an applicable one",
                program.display()
            );
            if applicable {
                cases.push(Case {
                    client,
                    scenario: number,
                    program,
                });
            }
        }
    }
    cases
}

struct Outcome {
    passed: bool,
    last_step: Option<String>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    broker_log: String,
    note: String,
}

/// Runs one client program with a bound, calling `on_line` for each stdout line (it may write
/// to the program's stdin).
fn run_program(
    mut command: Command,
    mut on_line: impl FnMut(&str, &mut ChildStdin) -> Result<(), String>,
) -> (bool, String, String, String) {
    let started = Instant::now();
    let mut child: Child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client program");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (line_tx, line_rx) = mpsc::channel::<String>();
    let stdout_thread = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr_thread = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut out = String::new();
    let mut note = String::new();
    let mut failure = None;
    let status = loop {
        match line_rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
                if let Err(error) = on_line(&line, &mut stdin) {
                    failure = Some(error);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) | Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if failure.is_some() {
            let _ = child.kill();
            break child.wait().ok();
        }
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SCENARIO_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            note = format!("killed after {SCENARIO_TIMEOUT:?}");
            break None;
        }
    };
    drop(stdin);
    let _ = stdout_thread.join();
    // Lines printed right before exit.
    while let Ok(line) = line_rx.try_recv() {
        out.push_str(&line);
        out.push('\n');
    }
    let err = stderr_thread.join().unwrap_or_default();
    if let Some(error) = failure {
        note = error;
    }
    let passed = note.is_empty() && status.is_some_and(|status| status.success());
    (passed, out, err, note)
}

fn last_step(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("STEP "))
        .map(|step| step.trim().to_string())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// kcat has no admin API, and kafka-go 0.2.1 none Kafka 4.0 still speaks: creates the topics
/// a program declares on its `# quill-compat-topics:` (or `// quill-compat-topics:`) line
/// (`suffix=partitions[:name=value,...]`).
fn precreate_topics(program: &Path, address: &str, prefix: &str) {
    let text = std::fs::read_to_string(program).unwrap();
    let Some(line) = text.lines().find_map(|line| {
        line.strip_prefix("# quill-compat-topics:")
            .or_else(|| line.strip_prefix("// quill-compat-topics:"))
    }) else {
        return;
    };
    let mut client = TestClient::connect(address);
    for spec in line.split_whitespace() {
        let (suffix, rest) = spec.split_once('=').expect("suffix=partitions");
        let (partitions, configs) = rest.split_once(':').unwrap_or((rest, ""));
        let configs: Vec<(&str, &str)> = configs
            .split(',')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').expect("name=value"))
            .collect();
        let name = format!("{prefix}-{suffix}");
        let request: CreateTopicsRequest =
            create_topic_request(&name, partitions.parse().unwrap(), 1, &configs);
        let response = client.call(&request, 7);
        assert_eq!(
            response.topics[0].error_code, 0,
            "creating {name}: {response:?}"
        );
    }
}

fn run_case(case: &Case, tools: &Toolchain, shared: &BrokerProcess) -> Outcome {
    let started = Instant::now();
    let prefix = format!(
        "compat-{}-{}",
        case.client.name(),
        SCENARIOS[usize::from(case.scenario) - 1]
            .1
            .replace('_', "-")
    );
    if RESTART_SCENARIOS.contains(&case.scenario) {
        return run_restart_case(case, tools, &prefix, started);
    }
    if matches!(case.client, Client::Kcat | Client::KafkaGo) {
        precreate_topics(&case.program, &shared.address(), &prefix);
    }
    let command = case.command(tools, &shared.address(), &prefix);
    let (passed, stdout, stderr, note) = run_program(command, |_, _| Ok(()));
    Outcome {
        passed,
        last_step: last_step(&stdout),
        stdout,
        stderr,
        elapsed: started.elapsed(),
        broker_log: tail(&shared.log_text(), BROKER_LOG_TAIL_LINES),
        note,
    }
}

/// Scenarios 5 and 8, on a broker of their own: stopped with SIGTERM at the first `RESTART-BROKER`, with
/// SIGKILL at the second, restarted each time on the same port and data dir.
fn run_restart_case(case: &Case, tools: &Toolchain, prefix: &str, started: Instant) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let broker = Arc::new(Mutex::new(BrokerProcess::start(dir.path(), &[])));
    let address = broker.lock().unwrap().address();
    if matches!(case.client, Client::Kcat | Client::KafkaGo) {
        precreate_topics(&case.program, &address, prefix);
    }
    let command = case.command(tools, &address, prefix);
    let log = Arc::new(Mutex::new(String::new()));
    let (passed, stdout, stderr, note) = run_program(command, |line, stdin| {
        let Some(phase) = line.strip_prefix("RESTART-BROKER ") else {
            return Ok(());
        };
        let signal = if phase.trim() == "1" { "TERM" } else { "KILL" };
        let mut broker = broker.lock().unwrap();
        let stopping = Instant::now();
        let code = broker.stop_with(signal);
        let stopped_after = stopping.elapsed();
        // The log of the process that just stopped (restart() starts a new one).
        let mut log = log.lock().unwrap();
        log.push_str(&broker.log_text());
        if signal == "TERM" && code != Some(0) {
            return Err(format!("broker exited with {code:?} after SIGTERM"));
        }
        // Stay down long enough for the clients to see refused connections and retry.
        std::thread::sleep(BROKER_DOWN_TIME);
        let starting = Instant::now();
        broker.restart();
        log.push_str(&format!(
            "(runner: SIG{signal} stopped the broker in {stopped_after:.1?} (exit {code:?}), \
             down {BROKER_DOWN_TIME:?}, restarted in {:.1?})\n",
            starting.elapsed()
        ));
        // One write: a reader with a timeout (bash `read -t`) must not see half a line.
        stdin
            .write_all(b"restarted\n")
            .map_err(|error| format!("writing to the client: {error}"))
    });
    let mut full_log = log.lock().unwrap().clone();
    full_log.push_str(&broker.lock().unwrap().log_text());
    Outcome {
        passed,
        last_step: last_step(&stdout),
        stdout,
        stderr,
        elapsed: started.elapsed(),
        broker_log: tail(&full_log, BROKER_LOG_TAIL_LINES),
        note,
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Verdict {
    Pass,
    NotYet,
    Fail,
}

/// Judges an outcome against the expectations; `Err` carries why the suite must fail.
fn judge(case: &Case, outcome: &Outcome) -> (Verdict, Result<(), String>) {
    judge_pair(
        case.client,
        case.scenario,
        not_yet(case.client, case.scenario).map(|(step, _)| step),
        outcome.passed,
        outcome.last_step.as_deref(),
    )
}

/// The rule behind [`NOT_YET`]: `not_yet_step` is the step a listed pair must fail at.
fn judge_pair(
    client: Client,
    scenario: u8,
    not_yet_step: Option<&str>,
    passed: bool,
    last_step: Option<&str>,
) -> (Verdict, Result<(), String>) {
    let label = format!("{} × {scenario}", client.name());
    let step = last_step.unwrap_or("(none)");
    match (not_yet_step, passed) {
        (None, true) => (Verdict::Pass, Ok(())),
        (None, false) => (Verdict::Fail, Err(format!("{label} failed at step {step}"))),
        (Some(_), true) => (
            Verdict::Pass,
            Err(format!(
                "{label} passes now: remove ({client:?}, {scenario}) from the not-yet list \
                 (NOT_YET in {})",
                file!()
            )),
        ),
        (Some(expected), false) if expected == step => (Verdict::NotYet, Ok(())),
        (Some(expected), false) => (
            Verdict::Fail,
            Err(format!(
                "{label} failed at step {step}, not at its not-yet step {expected}: a regression"
            )),
        ),
    }
}

fn render_matrix(tools: &Toolchain, results: &BTreeMap<(Client, u8), Verdict>) -> String {
    let mut doc = String::new();
    doc.push_str(
        "# Client compatibility\n\n\
         Generated by `crates/quill/tests/compat.rs` (run by `./scripts/test.sh`, or\n\
         `cargo test -p quill --test compat`): each third-party client runs each scenario program\n\
         of `tests/compat/` against the real `quill` binary. Do not edit by hand.\n\n",
    );
    doc.push_str("| client | version |\n|---|---|\n");
    for client in CLIENTS {
        let _ = writeln!(doc, "| {} | {} |", client.name(), tools.versions[&client]);
    }
    doc.push('\n');
    doc.push_str("| scenario |");
    for client in CLIENTS {
        let _ = write!(doc, " {} |", client.name());
    }
    doc.push_str("\n|---|");
    for _ in CLIENTS {
        doc.push_str("---|");
    }
    doc.push('\n');
    let mut footnotes: Vec<String> = Vec::new();
    let mut footnote = |text: String| {
        let index = match footnotes.iter().position(|existing| *existing == text) {
            Some(index) => index,
            None => {
                footnotes.push(text);
                footnotes.len() - 1
            }
        };
        format!("<sup>[{}](#n{})</sup>", index + 1, index + 1)
    };
    for (number, _, title) in SCENARIOS {
        let _ = write!(doc, "| {number}. {title} |");
        for client in CLIENTS {
            let mut cell = match results.get(&(client, number)) {
                Some(Verdict::Pass) => "pass".to_string(),
                Some(Verdict::Fail) => "**FAIL**".to_string(),
                Some(Verdict::NotYet) => {
                    let (step, reason) = not_yet(client, number).unwrap();
                    let mark = footnote(format!("fails at step `{step}`: {reason}"));
                    format!("not yet {mark}")
                }
                None => {
                    let reason = not_applicable(client, number).unwrap_or("not run");
                    format!("n/a {}", footnote(reason.to_string()))
                }
            };
            if let Some((_, _, text)) = COVERAGE_NOTES
                .iter()
                .find(|(c, s, _)| *c == client && *s == number)
            {
                let _ = write!(cell, " {}", footnote(text.to_string()));
            }
            let _ = write!(doc, " {cell} |");
        }
        doc.push('\n');
    }
    doc.push_str(
        "\n**pass**: every step of the scenario passed. **not yet**: the broker feature is \
         missing; the program still runs and fails at the step named in the note, and the suite \
         fails if it passes (so this table cannot go stale). **n/a**: the scenario does not apply \
         to the client.\n\n",
    );
    for (index, text) in footnotes.iter().enumerate() {
        let _ = writeln!(
            doc,
            "<a id=\"n{}\"></a>{}. {}  ",
            index + 1,
            index + 1,
            text
        );
    }
    doc
}

/// Writes straight to the process's stderr, past libtest's capture, so that the per-pair lines
/// show in every run, passing or not (failure details are printed, and shown, on failure).
fn say(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Prints the line of one client × scenario, and its output and the broker's log tail if it
/// failed (or if asked to).
fn report(
    case: &Case,
    outcome: &Outcome,
    verdict: Verdict,
    judged: &Result<(), String>,
    show_output: bool,
) {
    let shown = match (verdict, judged) {
        (_, Err(_)) | (Verdict::Fail, _) => "FAIL",
        (Verdict::Pass, _) => "pass",
        (Verdict::NotYet, _) => "not yet",
    };
    let line = format!(
        "compat {:<16} scenario {:<2} {:<8} {:>5.1}s  last step: {}{}\n",
        case.client.name(),
        case.scenario,
        shown,
        outcome.elapsed.as_secs_f64(),
        outcome.last_step.as_deref().unwrap_or("-"),
        if outcome.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", outcome.note)
        }
    );
    say(&line);
    if show_output || judged.is_err() {
        let reason = judged.as_ref().err().cloned().unwrap_or_default();
        println!(
            "---- {reason}\n---- {label} stdout:\n{}\n---- {label} stderr:\n{}\n---- broker log tail:\n{}\n----",
            tail(&outcome.stdout, 60),
            tail(&outcome.stderr, 60),
            outcome.broker_log,
            label = case.label(),
        );
    }
}

/// `QUILL_COMPAT_ONLY=kafkajs,kcat:3` runs only those clients / client:scenario pairs (and then
/// leaves docs/compatibility.md alone); `QUILL_COMPAT_SHOW_OUTPUT=1` prints every program's
/// output, not only failures'.
fn selected(case: &Case, only: &str) -> bool {
    only.split(',').map(str::trim).any(|item| {
        item == case.client.name() || item == format!("{}:{}", case.client.name(), case.scenario)
    })
}

#[test]
fn real_clients_against_the_real_broker() {
    let tools = Arc::new(toolchain());
    let only = std::env::var("QUILL_COMPAT_ONLY").ok();
    let show_output = std::env::var_os("QUILL_COMPAT_SHOW_OUTPUT").is_some();
    let mut cases = cases(&tools);
    if let Some(only) = &only {
        let interop = cases
            .iter()
            .any(|case| case.scenario == INTEROP_SCENARIO && selected(case, only));
        // Scenario 10 reads the topics of scenario 4: keep their writers.
        cases.retain(|case| selected(case, only) || (interop && case.scenario == 4));
        assert!(
            !cases.is_empty(),
            "QUILL_COMPAT_ONLY={only} selects nothing"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(BrokerProcess::start(dir.path(), &[]));
    say(&format!(
        "compat: broker at {}; {} client × scenario programs, {PARALLELISM} at a time\n",
        shared.address(),
        cases.len()
    ));

    let mut results = BTreeMap::new();
    let mut failures = Vec::new();
    // Scenario 10 reads what scenario 4 wrote, so it runs in a second phase.
    let (second, first): (Vec<Case>, Vec<Case>) = cases
        .into_iter()
        .partition(|case| case.scenario == INTEROP_SCENARIO);
    for phase in [first, second] {
        let queue = Arc::new(Mutex::new(phase.into_iter().collect::<VecDeque<_>>()));
        let (result_tx, result_rx) = mpsc::channel();
        let workers: Vec<_> = (0..PARALLELISM)
            .map(|_| {
                let queue = queue.clone();
                let tools = tools.clone();
                let shared = shared.clone();
                let result_tx = result_tx.clone();
                std::thread::spawn(move || loop {
                    let Some(case) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let outcome = run_case(&case, &tools, &shared);
                    if result_tx.send((case, outcome)).is_err() {
                        break;
                    }
                })
            })
            .collect();
        drop(result_tx);
        for (case, outcome) in result_rx {
            let (verdict, judged) = judge(&case, &outcome);
            report(&case, &outcome, verdict, &judged, show_output);
            if let Err(reason) = judged {
                failures.push(reason);
            }
            results.insert((case.client, case.scenario), verdict);
        }
        for worker in workers {
            worker.join().expect("a scenario worker panicked");
        }
    }

    let matrix = render_matrix(&tools, &results);
    let path = tools.root.join("docs/compatibility.md");
    if only.is_none() && std::fs::read_to_string(&path).ok().as_deref() != Some(matrix.as_str()) {
        std::fs::write(&path, &matrix).unwrap();
        say(&format!("compat: updated {}\n", path.display()));
    }
    assert!(
        failures.is_empty(),
        "{} compatibility failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_not_yet_pair_can_neither_pass_nor_fail_elsewhere() {
    let judge = |expected, passed, step| judge_pair(Client::Kcat, 3, expected, passed, step);
    assert!(matches!(
        judge(None, true, Some("x")),
        (Verdict::Pass, Ok(()))
    ));
    assert!(matches!(
        judge(None, false, Some("x")),
        (Verdict::Fail, Err(_))
    ));
    assert!(matches!(
        judge(Some("consume"), false, Some("consume")),
        (Verdict::NotYet, Ok(()))
    ));
    let (verdict, passes_now) = judge(Some("consume"), true, Some("consume"));
    assert!(verdict == Verdict::Pass && passes_now.unwrap_err().contains("remove (Kcat, 3)"));
    let (verdict, regression) = judge(Some("consume"), false, Some("produce"));
    assert!(verdict == Verdict::Fail && regression.unwrap_err().contains("a regression"));
    assert!(matches!(
        judge(Some("consume"), false, None),
        (Verdict::Fail, Err(_))
    ));
}

#[test]
fn not_yet_and_not_applicable_lists_are_consistent() {
    for (client, scenario, step, _) in NOT_YET {
        assert!(
            not_applicable(*client, *scenario).is_none(),
            "{client:?} × {scenario} is both not-yet and n/a"
        );
        assert!(!step.is_empty());
        assert_eq!(
            NOT_YET
                .iter()
                .filter(|(c, s, _, _)| c == client && s == scenario)
                .count(),
            1,
            "{client:?} × {scenario} listed twice"
        );
    }
}
