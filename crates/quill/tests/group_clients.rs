//! Consumer groups with real clients (issue 4's behaviours 4–7 and the join latency): kafkajs
//! and librdkafka (confluent-kafka) members run as separate processes, the programs under
//! `tests/compat/groups/`, against the real `quill` binary.
//!
//! - `member.py` / `member.js` are one group member each and print what the client reports
//!   (`ASSIGN`, `REVOKE`, `LOST`, `MSG <partition> <offset> <value>`, `JOINED_MS`); a member
//!   is stopped by `leave` on stdin (a clean leave) or SIGKILL (a crash, no LeaveGroup).
//! - `admin.py` / `admin.js` read the admin views of a group through each client's admin API.
//! - Clients are installed by `./scripts/install-test-deps.sh`; a missing one fails the test.
//! - `cargo test -p quill --test group_clients -- --nocapture` prints the measured timings
//!   (join latency, session-timeout takeover).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BrokerProcess, TestClient};
use kafka_protocol::messages::{DescribeGroupsRequest, GroupId};
use kafka_protocol::protocol::StrBytes;

/// Bound on every wait for a client to reach a state.
const WAIT: Duration = Duration::from_secs(40);
/// Session timeout of the members of the crash and static tests (the broker accepts ≥ 1 s).
const SESSION_MS: u64 = 3000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Kafkajs,
    Librdkafka,
}

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

fn program(kind: Kind, stem: &str) -> Command {
    let dir = root().join("tests/compat/groups");
    let node_modules = root().join("tests/compat/node/node_modules/kafkajs");
    match kind {
        Kind::Librdkafka => {
            let mut command = Command::new(python());
            command.arg(dir.join(format!("{stem}.py")));
            command
        }
        Kind::Kafkajs => {
            assert!(
                node_modules.exists(),
                "kafkajs missing: run ./scripts/install-test-deps.sh"
            );
            let mut command = Command::new("node");
            command.arg(dir.join(format!("{stem}.js")));
            command
        }
    }
}

fn start_broker(extra: &[&str]) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), extra);
    (dir, broker)
}

/// Broker settings of the tests that crash members: short sessions are accepted.
const FAST_GROUPS: [&str; 2] = ["--set", "group.min.session.timeout.ms=1000"];

fn parse_partitions(text: &str) -> BTreeSet<i32> {
    if text == "-" {
        return BTreeSet::new();
    }
    text.split(',').map(|p| p.parse().unwrap()).collect()
}

/// One member process and everything it printed.
struct Member {
    label: String,
    kind: Kind,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Member {
    /// `settings`: librdkafka `key=value` pairs, or the kafkajs consumer options as JSON.
    fn spawn(
        kind: Kind,
        label: &str,
        broker: &BrokerProcess,
        topic: &str,
        group: &str,
        settings: &[&str],
    ) -> Member {
        let mut command = program(kind, "member");
        command
            .arg(broker.address())
            .arg(topic)
            .arg(group)
            .args(settings)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("spawn member");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let name = label.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !line.starts_with("MSG ") {
                    println!("[{name}] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        Member {
            label: label.to_string(),
            kind,
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn mark(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// The partitions the member owns according to its callbacks: librdkafka reports
    /// increments (eager: revoke all, assign all), kafkajs the whole assignment.
    fn owned(&self) -> BTreeSet<i32> {
        let mut owned = BTreeSet::new();
        for line in self.lines() {
            let mut words = line.split(' ');
            let (event, arg) = (words.next().unwrap(), words.next().unwrap_or("-"));
            match (event, self.kind) {
                ("ASSIGN", Kind::Kafkajs) => owned = parse_partitions(arg),
                ("ASSIGN", Kind::Librdkafka) => owned.extend(parse_partitions(arg)),
                ("REVOKE" | "LOST", _) => {
                    for p in parse_partitions(arg) {
                        owned.remove(&p);
                    }
                }
                _ => {}
            }
        }
        owned
    }

    /// Partitions named by `event` lines printed after `mark`.
    fn events_since(&self, mark: usize, event: &str) -> BTreeSet<i32> {
        self.lines()[mark..]
            .iter()
            .filter_map(|line| line.strip_prefix(&format!("{event} ")))
            .flat_map(parse_partitions)
            .collect()
    }

    fn check_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited early ({status}): {:?}", self.label, self.lines());
        }
        if let Some(error) = self.lines().iter().find(|l| l.starts_with("ERROR")) {
            panic!("{} reported {error}", self.label);
        }
    }

    fn joined_ms(&self) -> Option<f64> {
        self.lines()
            .iter()
            .find_map(|l| l.strip_prefix("JOINED_MS ").map(|ms| ms.parse().unwrap()))
    }

    /// Consumed (partition, offset, value) in print order, split into the member's
    /// assignment epochs (a new epoch at every ASSIGN/REVOKE/LOST).
    fn epochs(&self) -> Vec<Vec<(i32, i64, u64)>> {
        let mut epochs = vec![Vec::new()];
        for line in self.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            match words[0] {
                "MSG" => epochs.last_mut().unwrap().push((
                    words[1].parse().unwrap(),
                    words[2].parse().unwrap(),
                    words[3].parse().unwrap(),
                )),
                "ASSIGN" | "REVOKE" | "LOST" => epochs.push(Vec::new()),
                _ => {}
            }
        }
        epochs
    }

    /// Clean leave: `leave` on stdin, bounded wait for the exit.
    fn leave(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"leave\n");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.label);
                return;
            }
            assert!(Instant::now() < deadline, "{} did not leave", self.label);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Crash: SIGKILL, no LeaveGroup.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(members: &mut [&mut Member], what: &str, condition: impl Fn(&[&mut Member]) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition(members) {
        for member in members.iter_mut() {
            member.check_alive();
        }
        if Instant::now() > deadline {
            let state: Vec<String> = members
                .iter()
                .map(|m| format!("{} owns {:?}", m.label, m.owned()))
                .collect();
            panic!("timed out waiting for {what}: {state:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when the members' assignments are disjoint, cover `0..partitions` and each member
/// owns between `min` and `max` partitions.
fn balanced(members: &[&mut Member], partitions: i32, min: usize, max: usize) -> bool {
    let mut all = Vec::new();
    for member in members {
        let owned = member.owned();
        if owned.len() < min || owned.len() > max {
            return false;
        }
        all.extend(owned);
    }
    all.sort_unstable();
    all == (0..partitions).collect::<Vec<_>>()
}

/// Writes numbered values (`i` to partition `i % partitions`, one record per request, acks
/// all) until stopped; returns how many were acknowledged.
struct NumberedProducer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl NumberedProducer {
    fn start(broker: &BrokerProcess, topic: &str, partitions: i32) -> NumberedProducer {
        let stop = Arc::new(AtomicBool::new(false));
        let mut client = broker.connect();
        let (topic, flag) = (topic.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut next = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let partition = (next % partitions as u64) as i32;
                let response = client.produce(&topic, partition, &[&next.to_string()]);
                let code = response.responses[0].partition_responses[0].error_code;
                assert_eq!(code, 0, "produce {next}");
                next += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            next
        });
        NumberedProducer { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// No message skipped: every produced value was consumed by some member; within one
/// assignment epoch of one member each partition's offsets are consecutive (order kept,
/// nothing skipped); a value is on the partition it was produced to.
fn check_nothing_skipped(members: &[&Member], produced: u64, partitions: i32) {
    let mut consumed = BTreeSet::new();
    let mut duplicates = 0usize;
    for member in members {
        for epoch in member.epochs() {
            let mut last: BTreeMap<i32, i64> = BTreeMap::new();
            for (partition, offset, value) in epoch {
                assert_eq!(
                    (value % partitions as u64) as i32,
                    partition,
                    "{}: value {value} on partition {partition}",
                    member.label
                );
                if let Some(previous) = last.insert(partition, offset) {
                    assert_eq!(
                        offset,
                        previous + 1,
                        "{}: partition {partition} jumped from offset {previous} to {offset}",
                        member.label
                    );
                }
                if !consumed.insert(value) {
                    duplicates += 1;
                }
            }
        }
    }
    let missing: Vec<(u64, u64)> = (0..produced)
        .filter(|v| !consumed.contains(v))
        .map(|v| (v % partitions as u64, v))
        .collect();
    assert!(
        missing.is_empty(),
        "never consumed (partition, value): {missing:?}"
    );
    println!("{produced} produced, all consumed, {duplicates} redelivered around rebalances");
}

fn all_consumed(members: &[&Member], produced: u64) -> bool {
    let mut consumed = BTreeSet::new();
    for member in members {
        for line in member.lines() {
            if let Some(rest) = line.strip_prefix("MSG ") {
                consumed.insert(rest.split(' ').nth(2).unwrap().parse::<u64>().unwrap());
            }
        }
    }
    (0..produced).all(|v| consumed.contains(&v))
}

/// Behaviour 4: a third member joins (partitions redistributed across three), a member is
/// SIGKILLed (after its session timeout its partitions move to the others), while a producer
/// keeps writing numbered messages; nothing is skipped.
fn join_and_crash(kind: Kind) {
    const PARTITIONS: i32 = 6;
    let (_dir, broker) = start_broker(&FAST_GROUPS);
    let topic = format!("crash-{kind:?}").to_lowercase();
    broker.connect().create_topic(&topic, PARTITIONS);
    let group = format!("{topic}-group");
    let session = SESSION_MS.to_string();
    let rdkafka = [
        "auto.offset.reset=earliest".to_string(),
        format!("session.timeout.ms={session}"),
        "heartbeat.interval.ms=300".to_string(),
        "auto.commit.interval.ms=200".to_string(),
        "enable.auto.offset.store=false".to_string(),
        "fetch.wait.max.ms=100".to_string(),
    ];
    let js = format!(
        r#"{{"fromBeginning":true,"sessionTimeout":{session},"heartbeatInterval":300,"rebalanceTimeout":10000,"maxWaitTimeInMs":100}}"#
    );
    let settings: Vec<&str> = match kind {
        Kind::Librdkafka => rdkafka.iter().map(String::as_str).collect(),
        Kind::Kafkajs => vec![js.as_str()],
    };
    let spawn = |label: &str| Member::spawn(kind, label, &broker, &topic, &group, &settings);

    let producer = NumberedProducer::start(&broker, &topic, PARTITIONS);
    let mut m1 = spawn("m1");
    let mut m2 = spawn("m2");
    wait_until(
        &mut [&mut m1, &mut m2],
        "two members splitting 6 partitions",
        |m| balanced(m, PARTITIONS, 3, 3),
    );

    let mut m3 = spawn("m3");
    wait_until(
        &mut [&mut m1, &mut m2, &mut m3],
        "three members with 2 partitions each",
        |m| balanced(m, PARTITIONS, 2, 2),
    );
    let mark = m3.mark();
    wait_until(&mut [&mut m3], "m3 consuming its partitions", |m| {
        m[0].lines()[mark..].iter().any(|l| l.starts_with("MSG "))
    });

    let victim_partitions = m2.owned();
    m2.kill();
    let killed = Instant::now();
    wait_until(
        &mut [&mut m1, &mut m3],
        "m1 and m3 taking over m2's partitions",
        |m| balanced(m, PARTITIONS, 3, 3),
    );
    let takeover = killed.elapsed();
    println!("{kind:?}: m2's partitions {victim_partitions:?} moved {takeover:?} after SIGKILL");
    assert!(
        takeover >= Duration::from_millis(SESSION_MS / 2),
        "moved before the session timeout could expire: {takeover:?}"
    );
    let mark = (m1.mark(), m3.mark());
    wait_until(
        &mut [&mut m1, &mut m3],
        "consumption after the takeover",
        |m| {
            m[0].lines()[mark.0..].iter().any(|l| l.starts_with("MSG "))
                && m[1].lines()[mark.1..].iter().any(|l| l.starts_with("MSG "))
        },
    );

    let produced = producer.stop();
    let deadline = Instant::now() + WAIT;
    // m2's lines count too: what it consumed and committed before the crash is not redelivered.
    while !all_consumed(&[&m1, &m2, &m3], produced) && Instant::now() < deadline {
        m1.check_alive();
        m3.check_alive();
        std::thread::sleep(Duration::from_millis(50));
    }
    m1.leave();
    m3.leave();
    check_nothing_skipped(&[&m1, &m2, &m3], produced, PARTITIONS);
}

#[test]
fn kafkajs_third_member_joins_and_crashed_member_expires() {
    join_and_crash(Kind::Kafkajs);
}

#[test]
fn librdkafka_third_member_joins_and_crashed_member_expires() {
    join_and_crash(Kind::Librdkafka);
}

/// (group.instance.id, member id, assignment bytes) of every member, and the group state.
fn describe(client: &mut TestClient, group: &str) -> (String, BTreeMap<String, (String, Vec<u8>)>) {
    let request = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]);
    let response = client.call(&request, 5);
    let described = &response.groups[0];
    assert_eq!(described.error_code, 0, "{described:?}");
    let members = described
        .members
        .iter()
        .map(|m| {
            let instance = m.group_instance_id.as_ref().map(|i| i.to_string());
            (
                instance.unwrap_or_default(),
                (m.member_id.to_string(), m.member_assignment.to_vec()),
            )
        })
        .collect();
    (described.group_state.to_string(), members)
}

fn completed_rounds(broker: &BrokerProcess, group: &str) -> usize {
    broker
        .log_text()
        .lines()
        .filter(|l| l.contains("rebalance completed join phase") && l.contains(group))
        .count()
}

/// Behaviour 5 (librdkafka; kafkajs has no group.instance.id): a static member SIGKILLed and
/// restarted with the same group.instance.id within its session timeout gets its partitions
/// back without a rebalance: the other member sees no callback, DescribeGroups shows the same
/// assignments and the other member's id, and the broker completes no new join round.
/// Then a duplicate of the live s2 takes its place and the old s2 is fenced (FENCED_INSTANCE_ID).
#[test]
fn librdkafka_static_member_restart_keeps_assignment_without_rebalance() {
    const PARTITIONS: i32 = 4;
    let (_dir, broker) = start_broker(&FAST_GROUPS);
    let topic = "static";
    broker.connect().create_topic(topic, PARTITIONS);
    let group = "static-group";
    let settings = |instance: &'static str| {
        [
            format!("group.instance.id={instance}"),
            "session.timeout.ms=10000".to_string(),
            "heartbeat.interval.ms=300".to_string(),
            "auto.offset.reset=earliest".to_string(),
        ]
    };
    let s1_settings = settings("s1");
    let s2_settings = settings("s2");
    let s1_args: Vec<&str> = s1_settings.iter().map(String::as_str).collect();
    let s2_args: Vec<&str> = s2_settings.iter().map(String::as_str).collect();
    let member = |label: &str, args: &[&str]| {
        Member::spawn(Kind::Librdkafka, label, &broker, topic, group, args)
    };
    let mut s1 = member("s1", &s1_args);
    let mut s2 = member("s2", &s2_args);
    wait_until(
        &mut [&mut s1, &mut s2],
        "two static members splitting",
        |m| balanced(m, PARTITIONS, 2, 2),
    );
    // Let both settle (a late second round would be a rebalance, not a restart effect).
    std::thread::sleep(Duration::from_millis(1000));
    let mut client = broker.connect();
    let (state, before) = describe(&mut client, group);
    assert_eq!(state, "Stable");
    let rounds = completed_rounds(&broker, group);
    assert!(rounds > 0, "the broker logs its join rounds");
    let s1_partitions = s1.owned();
    let s2_mark = s2.mark();
    let before_s2_partitions = s2.owned();

    s1.kill();
    let killed = Instant::now();
    let mut s1 = member("s1-restarted", &s1_args);
    wait_until(
        &mut [&mut s1],
        "the restarted s1 getting an assignment",
        |m| !m[0].owned().is_empty(),
    );
    let back = killed.elapsed();
    println!("static s1 restarted and had its partitions back {back:?} after SIGKILL");
    assert_eq!(
        s1.owned(),
        s1_partitions,
        "s1's partitions after the restart"
    );
    assert!(back < Duration::from_secs(10), "within the session timeout");
    std::thread::sleep(Duration::from_millis(1000));

    let s2_events: Vec<String> = s2.lines()[s2_mark..]
        .iter()
        .filter(|l| !l.starts_with("MSG "))
        .cloned()
        .collect();
    assert!(s2_events.is_empty(), "s2 saw a rebalance: {s2_events:?}");
    let (state, after) = describe(&mut client, group);
    assert_eq!(state, "Stable");
    assert_eq!(after["s2"], before["s2"], "s2's member id and assignment");
    assert_eq!(after["s1"].1, before["s1"].1, "s1's assignment bytes");
    assert_ne!(
        after["s1"].0, before["s1"].0,
        "the restarted s1 has a new member id"
    );
    assert_eq!(
        completed_rounds(&broker, group),
        rounds,
        "no join round (generation unchanged)"
    );

    // A duplicate of a live static member (KIP-345): the newcomer takes over s2's place and
    // assignment, the old s2 is fenced (FENCED_INSTANCE_ID, fatal for librdkafka).
    let s2_mark = s2.mark();
    let mut duplicate = member("s2-duplicate", &s2_args);
    wait_until(
        &mut [&mut duplicate],
        "the duplicate s2 getting s2's partitions",
        |m| m[0].owned() == before_s2_partitions,
    );
    let deadline = Instant::now() + WAIT;
    let fenced = loop {
        let fenced = s2.lines()[s2_mark..]
            .iter()
            .find(|l| l.starts_with("ERROR") && l.to_lowercase().contains("fenced"))
            .cloned();
        if let Some(line) = fenced {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "s2 never fenced: {:?}",
            s2.lines()[s2_mark..]
                .iter()
                .filter(|l| !l.starts_with("MSG"))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("the old s2: {fenced}");
    s1.check_alive();
    s1.leave();
    duplicate.leave();
}

/// Behaviour 6: librdkafka cooperative-sticky; a member joins, then one leaves. A member
/// keeping a partition is never asked to revoke it: each survivor's revocations are exactly
/// the partitions that moved away from it, and nothing is lost.
#[test]
fn librdkafka_cooperative_sticky_never_revokes_partitions_that_stay() {
    const PARTITIONS: i32 = 6;
    let (_dir, broker) = start_broker(&FAST_GROUPS);
    let topic = "cooperative";
    broker.connect().create_topic(topic, PARTITIONS);
    let group = "cooperative-group";
    let args = [
        "partition.assignment.strategy=cooperative-sticky",
        "session.timeout.ms=6000",
        "heartbeat.interval.ms=300",
    ];
    let member = |label: &str| Member::spawn(Kind::Librdkafka, label, &broker, topic, group, &args);
    let mut m1 = member("m1");
    let mut m2 = member("m2");
    wait_until(&mut [&mut m1, &mut m2], "two members with 3 each", |m| {
        balanced(m, PARTITIONS, 3, 3)
    });
    std::thread::sleep(Duration::from_millis(500));
    let before = [m1.owned(), m2.owned()];
    let marks = [m1.mark(), m2.mark()];

    let mut m3 = member("m3");
    wait_until(
        &mut [&mut m1, &mut m2, &mut m3],
        "three members with 2 each",
        |m| balanced(m, PARTITIONS, 2, 2),
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = [m1.owned(), m2.owned(), m3.owned()];
    for (index, survivor) in [&m1, &m2].into_iter().enumerate() {
        let moved: BTreeSet<i32> = before[index].difference(&after[index]).copied().collect();
        assert_eq!(
            survivor.events_since(marks[index], "REVOKE"),
            moved,
            "{} revoked",
            survivor.label
        );
        assert!(survivor.events_since(marks[index], "LOST").is_empty());
        assert!(
            after[index].is_subset(&before[index]),
            "{} gained while m3 joined",
            survivor.label
        );
    }
    assert!(m3.events_since(0, "REVOKE").is_empty());

    let marks = [m2.mark(), m3.mark()];
    m1.leave();
    wait_until(&mut [&mut m2, &mut m3], "m2 and m3 with 3 each", |m| {
        balanced(m, PARTITIONS, 3, 3)
    });
    std::thread::sleep(Duration::from_millis(500));
    for (index, (survivor, had)) in [(&m2, &after[1]), (&m3, &after[2])].into_iter().enumerate() {
        assert!(
            survivor.events_since(marks[index], "REVOKE").is_empty(),
            "{} revoked a partition it kept",
            survivor.label
        );
        assert!(survivor.events_since(marks[index], "LOST").is_empty());
        let gained = survivor.events_since(marks[index], "ASSIGN");
        assert_eq!(
            gained,
            survivor.owned().difference(had).copied().collect(),
            "{} got only m1's partitions",
            survivor.label
        );
    }
    m2.leave();
    m3.leave();
}

/// Behaviour 7: the admin views through each client's admin API, checked against what the
/// test produced and committed.
fn admin_views(kind: Kind) {
    const PARTITIONS: i32 = 3;
    let (_dir, broker) = start_broker(&[]);
    let topic = format!("admin-{kind:?}").to_lowercase();
    let mut client = broker.connect();
    client.create_topic(&topic, PARTITIONS);
    for partition in 0..PARTITIONS {
        let values: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        client.produce(&topic, partition, &values);
    }
    // An idle group next to ours, to check the listing.
    let other = format!("{topic}-other");
    let commit = kafka_protocol::messages::OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(other.clone())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic::default()
            .with_name(common::topic_name(&topic))
            .with_partitions(vec![
                kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1),
            ])]);
    // As a client does: FindCoordinator first (it creates __consumer_offsets); the group's
    // partition may still be loading (COORDINATOR_LOAD_IN_PROGRESS): retry, bounded.
    let find = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(other.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        client.call(&find, 1);
        let code = client.call(&commit, 8).topics[0].partitions[0].error_code;
        if code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "simple commit: error {code}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let group = format!("{topic}-group");
    let output = program(kind, "admin")
        .arg(broker.address())
        .arg(&topic)
        .arg(&group)
        .arg("0:3,1:7,2:10")
        .stderr(Stdio::inherit())
        .output()
        .expect("run admin program");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    println!("{kind:?} admin views:\n{text}");
    assert!(output.status.success(), "admin program failed: {text}");
    let lines: Vec<&str> = text.lines().collect();
    let has = |line: &str| lines.contains(&line);
    let (member_client, state_line) = match kind {
        Kind::Librdkafka => ("quill-admin-ck", "STATE STABLE"),
        Kind::Kafkajs => ("quill-admin-js", "STATE Stable"),
    };
    assert!(has(state_line), "state");
    match kind {
        Kind::Librdkafka => {
            assert!(has(&format!("GROUP {group} STABLE")));
            assert!(has(&format!("GROUP {other} EMPTY")));
            assert!(has("ASSIGNOR range"));
        }
        Kind::Kafkajs => {
            assert!(has(&format!("GROUP {group} consumer")));
            assert!(has(&format!("GROUP {other} ")) || has(&format!("GROUP {other}")));
            assert!(has("ASSIGNOR RoundRobinAssigner"));
        }
    }
    let members: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("MEMBER "))
        .collect();
    assert_eq!(members.len(), 1, "{members:?}");
    let fields: Vec<&str> = members[0].split(' ').collect();
    assert_eq!(fields[1], member_client, "client id");
    assert!(
        fields[2].starts_with(member_client),
        "member id {}",
        fields[2]
    );
    assert!(fields[3].contains("127.0.0.1"), "host {}", fields[3]);
    assert_eq!(fields[4], "0,1,2", "assignment");
    for (partition, committed) in [(0, 3), (1, 7), (2, 10)] {
        assert!(
            has(&format!("COMMITTED {partition} {committed}")),
            "committed {partition}"
        );
        assert!(
            has(&format!("LAG {partition} {}", 10 - committed)),
            "lag {partition}"
        );
    }
}

#[test]
fn kafkajs_admin_views() {
    admin_views(Kind::Kafkajs);
}

#[test]
fn librdkafka_admin_views() {
    admin_views(Kind::Librdkafka);
}

/// The join latency of a fresh single consumer with the broker's defaults and the client's
/// defaults (only bootstrap and group set): from subscribe to the first assignment.
#[test]
fn fresh_consumer_joins_in_well_under_a_second() {
    const RUNS: usize = 3;
    let (_dir, broker) = start_broker(&[]);
    broker.connect().create_topic("latency", 3);
    for (kind, settings) in [(Kind::Librdkafka, vec![]), (Kind::Kafkajs, vec!["{}"])] {
        let mut measured = Vec::new();
        for run in 0..RUNS {
            let group = format!("latency-{kind:?}-{run}");
            let mut member = Member::spawn(kind, "fresh", &broker, "latency", &group, &settings);
            wait_until(&mut [&mut member], "the first assignment", |m| {
                m[0].joined_ms().is_some()
            });
            measured.push(member.joined_ms().unwrap());
            member.leave();
        }
        measured.sort_by(f64::total_cmp);
        println!(
            "{kind:?} join latency (subscribe → first assignment): {measured:?} ms, median {} ms",
            measured[RUNS / 2]
        );
        for ms in measured {
            assert!(ms < 3000.0, "{kind:?} joined in {ms} ms");
        }
    }
}
