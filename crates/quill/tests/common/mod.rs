//! Test harness: start the real `quill` binary on an ephemeral loopback port with a temp data
//! dir, and a tiny blocking Kafka client built on kafka-protocol. Every wait is bounded and the
//! broker process is killed when the guard drops.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A free port on `host` for a listener that a test may stop and start again on the same port,
/// chosen **below the kernel's ephemeral range**. A port from that range (what binding port 0
/// gives) can be taken while its broker is down by a client that keeps reconnecting to it: the
/// kernel may pick the very port as the client's own local port and TCP connects the socket to
/// itself (simultaneous open), so the restarted broker finds its address in use — seen with
/// librdkafka reconnecting during a broker restart. Ports are never handed out twice by one
/// test process.
pub fn reusable_port(host: &str) -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let ephemeral_min = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = 10_000u16.min(ephemeral_min / 2);
    let span = u64::from(ephemeral_min - low);
    // A per-process, per-call start so concurrent test processes probe different ports first.
    let mut state = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for _ in 0..span {
        // xorshift64: enough to spread the probes; no cryptographic need.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = low + u16::try_from(state % span).unwrap();
        if handed_out.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind((host, port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free port on {host} below the ephemeral range ({low}..{ephemeral_min})");
}
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A running broker process; killed on drop.
pub struct BrokerProcess {
    child: Option<Child>,
    /// The host its client listener is bound to (127.0.0.1 unless started elsewhere).
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: Arc<Mutex<String>>,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
    /// A command the broker runs under (e.g. `ip netns exec <namespace>`), empty for none.
    launcher: Vec<String>,
    /// False for a controller-only node (`process.roles=controller`): `port` is its controller
    /// listener and it gets no `--listen`.
    client_listener: bool,
}

impl BrokerProcess {
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> BrokerProcess {
        Self::start_with_env(data_dir, extra_args, &[])
    }

    pub fn start_with_env(
        data_dir: &Path,
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> BrokerProcess {
        let extra_args: Vec<String> = extra_args.iter().map(|arg| arg.to_string()).collect();
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let port = reusable_port("127.0.0.1");
        Self::start_under(&[], "127.0.0.1", port, data_dir, &extra_args, &envs)
    }

    /// Starts the broker under `launcher` (a command prefix such as `ip netns exec <ns>`), its
    /// client listener on `host:port` (0: a free port).
    pub fn start_under(
        launcher: &[String],
        host: &str,
        port: u16,
        data_dir: &Path,
        extra_args: &[String],
        envs: &[(String, String)],
    ) -> BrokerProcess {
        let listen = format!("{host}:{port}");
        let (child, port, log) = spawn_broker(launcher, data_dir, extra_args, envs, Some(&listen));
        BrokerProcess {
            child: Some(child),
            host: host.to_string(),
            port,
            data_dir: data_dir.to_path_buf(),
            log,
            extra_args: extra_args.to_vec(),
            envs: envs.to_vec(),
            launcher: launcher.to_vec(),
            client_listener: true,
        }
    }

    /// A controller-only node: `extra_args` must set `process.roles=controller` and its
    /// CONTROLLER listener; `port` is that listener's.
    pub fn start_controller(data_dir: &Path, extra_args: &[&str]) -> BrokerProcess {
        let extra_args: Vec<String> = extra_args.iter().map(|arg| arg.to_string()).collect();
        let (child, port, log) = spawn_broker(&[], data_dir, &extra_args, &[], None);
        BrokerProcess {
            child: Some(child),
            host: "127.0.0.1".to_string(),
            port,
            data_dir: data_dir.to_path_buf(),
            log,
            extra_args,
            envs: Vec::new(),
            launcher: Vec::new(),
            client_listener: false,
        }
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The address a broker started with `metrics.listen=127.0.0.1:0` reports for that endpoint.
    pub fn metrics_address(&self) -> String {
        let mut address = None;
        wait_until(
            "the broker to report its metrics address",
            STARTUP_TIMEOUT,
            || {
                address = self
                    .log_text()
                    .split("metrics on http://")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .map(str::to_string);
                address.is_some()
            },
        );
        address.expect("wait_until returned, so it was found")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Sends `signal` (e.g. "TERM", "KILL") and waits (bounded) for the exit status code.
    pub fn stop_with(&mut self, signal: &str) -> Option<i32> {
        let mut child = self.child.take()?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
        match wait_for_exit(&mut child, STARTUP_TIMEOUT) {
            Some(status) => status.code(),
            None => panic!("broker did not exit after SIG{signal}"),
        }
    }

    /// Starts the broker again on the same port and data dir.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker first");
        let listen = self.address();
        let listen = self.client_listener.then_some(listen.as_str());
        let (child, port, log) = spawn_broker(
            &self.launcher,
            &self.data_dir,
            &self.extra_args,
            &self.envs,
            listen,
        );
        self.child = Some(child);
        self.port = port;
        self.log = log;
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn connect(&self) -> TestClient {
        TestClient::connect(&self.address())
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_broker(
    launcher: &[String],
    data_dir: &Path,
    extra_args: &[String],
    envs: &[(String, String)],
    listen: Option<&str>,
) -> (Child, u16, Arc<Mutex<String>>) {
    let quill = env!("CARGO_BIN_EXE_quill");
    let mut command = match launcher.split_first() {
        // The launcher execs the broker (`ip netns exec` does), so the child is the broker.
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(quill);
            command
        }
        None => Command::new(quill),
    };
    // A controller-only node (no client listener) announces its controller listener.
    let host = listen
        .and_then(|listen| listen.rsplit_once(':'))
        .map_or("127.0.0.1", |(host, _)| host);
    let listen_args = listen.map(|listen| ["--listen", listen]);
    let announced = format!("listening on {host}:");
    let mut child = command
        .arg("broker")
        .arg("--data-dir")
        .arg(data_dir)
        .args(listen_args.iter().flatten())
        .args(extra_args)
        .env_remove("QUILL_LOG")
        .envs(envs.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quill");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (port_tx, port_rx) = mpsc::channel();
    let log_for_thread = log.clone();
    std::thread::spawn(move || {
        let mut port_tx = Some(port_tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            log_for_thread
                .lock()
                .unwrap()
                .push_str(&format!("{line}\n"));
            if let Some(port) = parse_listening_port(&line, &announced) {
                if let Some(sender) = port_tx.take() {
                    let _ = sender.send(port);
                }
            }
        }
    });
    match port_rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok(port) => (child, port, log),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "broker did not report listening; log:\n{}",
                log.lock().unwrap()
            );
        }
    }
}

fn parse_listening_port(line: &str, announced: &str) -> Option<u16> {
    let rest = line.split(announced).nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A blocking Kafka protocol client for tests.
pub struct TestClient {
    pub stream: TcpStream,
    next_correlation_id: i32,
}

impl TestClient {
    pub fn connect(address: &str) -> TestClient {
        let stream = TcpStream::connect(address).expect("connect to broker");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        TestClient {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Encodes a request frame (length prefix included) without sending it.
    pub fn encode_request<R: Request>(&mut self, request: &R, version: i16) -> (i32, Bytes) {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("quill-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.put_slice(&body);
        (correlation_id, frame.freeze())
    }

    pub fn send<R: Request>(&mut self, request: &R, version: i16) -> i32 {
        let (correlation_id, frame) = self.encode_request(request, version);
        self.stream.write_all(&frame).unwrap();
        correlation_id
    }

    pub fn receive_frame(&mut self) -> std::io::Result<Bytes> {
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length)?;
        let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    pub fn receive<R: Request>(&mut self, version: i16, correlation_id: i32) -> R::Response {
        let mut frame = self.receive_frame().expect("response frame");
        let header =
            ResponseHeader::decode(&mut frame, R::Response::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, correlation_id);
        let response = R::Response::decode(&mut frame, version).unwrap();
        assert_eq!(frame.remaining(), 0, "trailing bytes in response");
        response
    }

    pub fn call<R: Request>(&mut self, request: &R, version: i16) -> R::Response {
        let correlation_id = self.send(request, version);
        self.receive::<R>(version, correlation_id)
    }

    /// True if the broker closed the connection (EOF or reset) within the timeout.
    pub fn is_closed_by_broker(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => matches!(
                error.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
        }
    }
}

pub fn api_key_of<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).unwrap()
}

// ---- record batches and request builders shared by the protocol tests ----

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// One uncompressed v2 batch holding `values` (keys `k0`, `k1`, …).
pub fn record_batch(values: &[&str], timestamp_ms: i64) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(index, value)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            // kafka-protocol's encoder starts a new batch whenever offset − sequence changes:
            // kept constant, the records form one batch, whose base sequence stays −1 (the
            // first record's). One batch per partition is all Kafka accepts from Produce v3 on.
            sequence: index as i32 - 1,
            timestamp: timestamp_ms + index as i64,
            key: Some(Bytes::from(format!("k{index}"))),
            value: Some(Bytes::from(value.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buffer = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buffer.freeze()
}

/// Values of every record in `bytes` (whole v2 batches), with their offsets.
pub fn decode_values(bytes: &Bytes) -> Vec<(i64, String)> {
    let mut buffer = bytes.clone();
    let mut values = Vec::new();
    while buffer.has_remaining() {
        let set = RecordBatchDecoder::decode(&mut buffer).unwrap();
        for record in set.records {
            let value = record
                .value
                .map(|v| String::from_utf8_lossy(&v).to_string());
            values.push((record.offset, value.unwrap_or_default()));
        }
    }
    values
}

pub fn produce_request(topic: &str, partition: i32, batch: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])])
}

pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1024 * 1024)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1024 * 1024)])])
}

pub fn create_topic_request(
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(&str, &str)],
) -> CreateTopicsRequest {
    // As long as a test waits for any answer (IO_TIMEOUT): the broker answers REQUEST_TIMED_OUT
    // once a change has not committed within the request's timeout.
    CreateTopicsRequest::default()
        .with_timeout_ms(i32::try_from(IO_TIMEOUT.as_millis()).unwrap_or(i32::MAX))
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(name, value)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(name.to_string()))
                            .with_value(Some(StrBytes::from_string(value.to_string())))
                    })
                    .collect(),
            )])
}

impl TestClient {
    pub fn create_topic(&mut self, name: &str, partitions: i32) -> CreateTopicsResponse {
        let response = self.call(&create_topic_request(name, partitions, 1, &[]), 7);
        assert_eq!(response.topics[0].error_code, 0, "{response:?}");
        response
    }

    pub fn produce(&mut self, topic: &str, partition: i32, values: &[&str]) -> ProduceResponse {
        let batch = record_batch(values, 1_700_000_000_000);
        self.call(&produce_request(topic, partition, batch, -1), 7)
    }

    pub fn fetch(&mut self, topic: &str, partition: i32, offset: i64) -> FetchResponse {
        self.call(&fetch_request(topic, partition, offset, 0), 11)
    }
}

/// How often [`wait_until`] re-checks. The conditions it waits for live in another process
/// (the broker's log, a metric, a file) with nothing to notify this one, so polling is the only
/// way to observe them; the interval sets latency, never correctness.
pub const CONDITION_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Waits until `condition` holds, re-checking every [`CONDITION_POLL_INTERVAL`]; fails the
/// test naming `what` if it does not hold within `timeout`.
#[allow(dead_code)] // not every test binary that includes `common` waits for something
pub fn wait_until(what: &str, timeout: Duration, condition: impl FnMut() -> bool) {
    wait_until_explained(timeout, condition, || {
        format!("timed out waiting for {what}")
    });
}

/// [`wait_until`] whose failure message is built when the time is up (logs, last state).
#[allow(dead_code)]
pub fn wait_until_explained(
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
    explain: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() >= deadline {
            panic!("{}", explain());
        }
        std::thread::sleep(CONDITION_POLL_INTERVAL);
    }
}

/// Waits (bounded) for `child` to exit: `None` if it did not within `timeout`, after killing
/// it. A child process notifies nobody in-process of its exit, so this polls too.
#[allow(dead_code)]
pub fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let mut status = None;
    let exited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until("a child process to exit", timeout, || {
            status = child.try_wait().expect("wait for a child process");
            status.is_some()
        })
    }));
    if exited.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    status
}

/// How long a third-party client program may run in a test.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The Python with the compatibility suite's clients (`QUILL_COMPAT_PYTHON`, else the venv
/// scripts/install-test-deps.sh makes).
pub fn compat_python() -> PathBuf {
    std::env::var_os("QUILL_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/compat-venv/bin/python"))
}

/// Runs a client program (bounded by `CLIENT_TIMEOUT`, killed past it), feeding it `stdin`;
/// fails the test with its output unless it exits 0.
pub fn run_bounded(label: &str, command: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{label}: cannot run: {error}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let exited = wait_for_exit(&mut child, CLIENT_TIMEOUT).is_some();
    let output = child.wait_with_output().unwrap();
    assert!(
        exited,
        "{label} timed out:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{label} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A client program driven line by line: its stdout is read on a thread, the test answers on
/// its stdin (the transactional `hold` scripts say `ready`, are told `commit`, say
/// `committed`). Killed on drop if still running.
pub struct LineDriven {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl LineDriven {
    pub fn spawn(command: &mut Command) -> LineDriven {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the client program");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineDriven { child, lines }
    }

    /// The program's next line, waited for at most `timeout`.
    pub fn next_line(&self, what: &str, timeout: Duration) -> String {
        self.lines
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("the client program never said {what}"))
    }

    /// Writes `line` to the program's stdin and closes it.
    pub fn send_last(&mut self, line: &str) {
        let mut stdin = self.child.stdin.take().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to the client program");
    }

    /// Waits for the program to exit; true if it succeeded.
    pub fn wait_success(&mut self) -> bool {
        self.child
            .wait()
            .expect("wait for the client program")
            .success()
    }
}

impl Drop for LineDriven {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
