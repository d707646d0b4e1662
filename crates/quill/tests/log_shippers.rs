//! Log shippers that produce to Kafka, as operators run them: rsyslog with omkafka (Debian's
//! rsyslog-kafka, on librdkafka) receives lines on a local syslog socket and ships them to
//! Quill, also across a broker restart; the quill CLI reads them back. `scripts/install-test-deps.sh` installs the shippers;
//! a missing one fails the test with that instruction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cli_support::{quill, run_with_timeout, COMMAND_TIMEOUT};
use common::{wait_until, BrokerProcess};

const INSTALL_HINT: &str = "run ./scripts/install-test-deps.sh (./scripts/test.sh does it)";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A log shipper process, killed on drop (even when the test fails).
struct Shipper {
    child: Child,
    name: &'static str,
    log: std::path::PathBuf,
}

impl Shipper {
    fn start(name: &'static str, command: &mut Command, log: &Path) -> Shipper {
        let output = std::fs::File::create(log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {name}: {error}: {INSTALL_HINT}"));
        Shipper {
            child,
            name,
            log: log.to_path_buf(),
        }
    }

    /// Its own output, for failure messages.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}):\n{}", self.name, self.output());
        }
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `lines` to the syslog socket at `socket`, one message each, tagged `tag`.
fn log_lines(socket: &Path, tag: &str, lines: &[String]) {
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    run_with_timeout(
        "logger",
        &["-u", socket.to_str().unwrap(), "-t", tag],
        &[],
        Some(&input),
        COMMAND_TIMEOUT,
    )
    .ok();
}

/// Reads `count` records of `topic` from the beginning with the quill CLI (it waits for them,
/// bounded by the command timeout): `(partition, offset, key, value)` in partition order.
fn read_back(broker: &str, topic: &str, count: usize) -> Vec<(String, String, String, String)> {
    let count = count.to_string();
    let run = quill(
        broker,
        &[
            "consume",
            topic,
            "--from-beginning",
            "-n",
            &count,
            "-f",
            "%p\t%o\t%k\t%s\n",
        ],
        None,
    )
    .ok();
    run.stdout
        .lines()
        .map(|line| {
            let mut fields = line.splitn(4, '\t').map(str::to_string);
            let mut next = || fields.next().unwrap_or_default();
            (next(), next(), next(), next())
        })
        .collect()
}

#[test]
fn rsyslog_omkafka_ships_log_lines_the_cli_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let address = broker.address();
    let topic = "syslog";
    quill(&address, &["topic", "create", topic, "-p", "3"], None).ok();

    let work = dir.path().join("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let socket = work.join("log.sock");
    let errors = work.join("omkafka-errors.json");
    // imuxsock on a socket of our own (not /dev/log); omkafka with a static key, acks=all.
    let config = format!(
        r#"global(workDirectory="{work}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{socket}")
module(load="omkafka")
template(name="line" type="string" string="%programname% %msg:2:$%")
action(type="omkafka" broker=["{address}"] topic="{topic}" key="rsyslog-test" template="line"
       topicConfParam=["acks=all"] confParam=["linger.ms=5"] errorFile="{errors}")
"#,
        work = work.display(),
        socket = socket.display(),
        errors = errors.display(),
    );
    let config_path = work.join("rsyslog.conf");
    std::fs::write(&config_path, config).unwrap();
    let mut rsyslog = Shipper::start(
        "rsyslogd",
        Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&config_path)
            .arg("-i")
            .arg(work.join("rsyslogd.pid")),
        &work.join("rsyslogd.out"),
    );
    wait_until("rsyslogd's socket", STARTUP_TIMEOUT, || {
        rsyslog.assert_running();
        socket.exists()
    });

    let lines: Vec<String> = (0..20)
        .map(|index| format!("line {index}: GET /upload?id={index} 200 {}ms", index * 7))
        .collect();
    log_lines(&socket, "quill-app", &lines);

    let records = read_back(&address, topic, lines.len());
    rsyslog.assert_running();
    assert!(
        !errors.exists(),
        "omkafka reported failures:\n{}",
        std::fs::read_to_string(&errors).unwrap_or_default()
    );
    let values: Vec<&str> = records
        .iter()
        .map(|(_, _, _, value)| value.as_str())
        .collect();
    let expected: Vec<String> = lines
        .iter()
        .map(|line| format!("quill-app {line}"))
        .collect();
    assert_eq!(values, expected, "rsyslogd output:\n{}", rsyslog.output());
    // One key: one partition (librdkafka's partitioner is key-stable), dense offsets, in order.
    let partitions: Vec<&str> = records.iter().map(|(p, _, _, _)| p.as_str()).collect();
    assert!(
        partitions.iter().all(|p| *p == partitions[0]),
        "{partitions:?}"
    );
    let offsets: Vec<String> = records.iter().map(|(_, o, _, _)| o.clone()).collect();
    let dense: Vec<String> = (0..lines.len()).map(|o| o.to_string()).collect();
    assert_eq!(offsets, dense);
    assert!(records.iter().all(|(_, _, key, _)| key == "rsyslog-test"));

    // Lines logged while the broker is down wait in omkafka (librdkafka's queue) and arrive,
    // in order, once it is back on the same port.
    assert_eq!(broker.stop_with("TERM"), Some(0));
    let later: Vec<String> = (20..30)
        .map(|index| format!("line {index}: logged while the broker was down"))
        .collect();
    log_lines(&socket, "quill-app", &later);
    broker.restart();
    let records = read_back(&address, topic, lines.len() + later.len());
    rsyslog.assert_running();
    let values: Vec<&str> = records
        .iter()
        .map(|(_, _, _, value)| value.as_str())
        .collect();
    let expected: Vec<String> = lines
        .iter()
        .chain(&later)
        .map(|line| format!("quill-app {line}"))
        .collect();
    assert_eq!(values, expected, "rsyslogd output:\n{}", rsyslog.output());
}
