//! Broker settings, named as in Apache Kafka so users and Kafka tools recognise them.
//!
//! Settings arrive as `name = value` pairs (from a TOML file, environment variables or CLI
//! flags — the binary decides precedence) and are validated one by one: an unknown name or an
//! invalid value is an error that names the setting.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// A setting that was rejected at start-up (or by AlterConfigs on a broker resource).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown setting `{name}`")]
    UnknownSetting { name: String },
    #[error("invalid value `{value}` for setting `{name}`: {reason}")]
    InvalidValue {
        name: String,
        value: String,
        reason: String,
    },
    #[error("could not read the config file: {0}")]
    File(String),
}

/// Timestamp semantics for topics that do not override `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampTypeSetting {
    CreateTime,
    LogAppendTime,
}

/// The log cleaner's broker settings (`log.cleaner.*`), Kafka's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerSettings {
    /// `log.cleaner.enable`: false leaves compacted topics uncompacted (they grow forever).
    pub enable: bool,
    /// `log.cleaner.threads`
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: offset-map memory shared by all cleaner threads.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.max.bytes.per.second`: reads plus writes of all cleaner threads.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: how long a cleaner thread sleeps when nothing is dirty enough.
    pub backoff_ms: u64,
}

impl Default for CleanerSettings {
    fn default() -> Self {
        CleanerSettings {
            enable: true,
            threads: 1,
            dedupe_buffer_size: 128 * 1024 * 1024,
            io_max_bytes_per_second: f64::MAX,
            backoff_ms: 15_000,
        }
    }
}

/// The most cleaner threads a broker runs (each holds its share of the dedupe buffer).
pub const MAX_CLEANER_THREADS: usize = 64;
/// Each cleaner thread's offset map gets at least this much (Kafka refuses maps that cannot make
/// progress; a few thousand keys per pass is the practical floor).
pub const MIN_DEDUPE_BUFFER_PER_THREAD: u64 = 64 * 1024;

/// All broker-level settings with Kafka's defaults (Quill's where Quill differs, documented).
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub data_dir: PathBuf,
    /// `host:port` to bind.
    pub listen: String,
    /// `host:port` clients are told to connect to; `None` means "same as listen".
    pub advertise: Option<String>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    /// `offsets.topic.replication.factor` (3): replicas of `__consumer_offsets`, capped at its
    /// creation to the active brokers (see `BrokerState::create_internal_topic`).
    pub offsets_topic_replication_factor: i16,
    /// `transaction.state.log.replication.factor` (3): the same for `__transaction_state`.
    pub transaction_state_log_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub message_max_bytes: i32,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_segment_bytes: i32,
    pub log_roll_ms: i64,
    pub log_retention_check_interval_ms: i64,
    pub log_message_timestamp_type: TimestampTypeSetting,
    /// `log.flush.interval.messages`: default `flush.messages` of topics. Quill's default is 1
    /// (fsync before acknowledging, group-committed); Kafka's is `i64::MAX`.
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms`: default `flush.ms` of topics; unset falls back to
    /// `log.flush.scheduler.interval.ms`, as in Kafka.
    pub log_flush_interval_ms: Option<i64>,
    /// `log.flush.scheduler.interval.ms`: how often `flush.ms` is checked (Kafka's default
    /// `i64::MAX` never checks; Quill then checks every second so `flush.ms` is never ignored).
    pub log_flush_scheduler_interval_ms: i64,
    pub min_insync_replicas: i32,
    pub socket_request_max_bytes: i32,
    /// Upper bound on one Fetch response, whatever the client asks for.
    pub fetch_max_bytes: i32,
    /// `background.threads` (10): threads that run log maintenance (retention, producer
    /// expiry, recovery-point checkpoints) over the hosted partitions in parallel.
    pub background_threads: i32,
    pub max_connections: i32,
    /// `max.connections.per.ip`: open connections from one client address.
    pub max_connections_per_ip: i32,
    pub connections_max_idle_ms: i64,
    /// `queued.max.request.bytes`: request bytes read but not yet handled, broker-wide; while
    /// spent, connections stop reading (see `budget.rs`).
    pub queued_max_request_bytes: i32,
    /// `queued.max.response.bytes` (Quill's): response bytes built but not yet written,
    /// broker-wide; while spent, handlers wait before queuing more.
    pub queued_max_response_bytes: i32,
    /// Requests read ahead from one connection but not yet answered (Kafka bounds this per
    /// broker); they are handled one at a time, in order.
    pub queued_max_requests: i32,
    /// How long shutdown waits for in-flight requests before closing connections anyway.
    pub shutdown_timeout_ms: i64,
    /// `metrics.listen` (Quill's): `host:port` of the Prometheus endpoint; `None` = off.
    pub metrics_listen: Option<String>,
    /// `console.enabled` (Quill's): the web console on the metrics endpoint. `None`
    /// (unset): on when `metrics.listen` binds a loopback address, off otherwise.
    pub console_enabled: Option<bool>,
    /// Group coordinator settings (`offsets.topic.num.partitions`, `group.*`, `offsets.*`).
    pub group: quill_group::GroupConfig,
    /// Transaction coordinator settings (`transaction.*`, `transactional.id.*`).
    pub txn: quill_txn::TxnConfig,
    /// `producer.id.expiration.ms` (86400000): partitions forget idle idempotent producers.
    pub producer_id_expiration_ms: i64,
    /// `log.cleaner.*`
    pub cleaner: CleanerSettings,
    /// Broker-level defaults of topic configs Quill has no dedicated field for (e.g.
    /// `log.cleanup.policy`, `log.retention.hours`, `compression.type`), by Kafka name. They
    /// feed topic config defaults through the static broker config layer.
    pub topic_defaults: std::collections::BTreeMap<String, String>,
    /// Names of the settings that were set explicitly (not defaults), for DescribeConfigs.
    pub explicitly_set: BTreeSet<String>,
    /// The metadata quorum and this node's place in the cluster (`controller.*`, `broker.rack`).
    pub cluster: ClusterSettings,
}

/// Kafka's KRaft settings. Every Quill node is broker and controller at once (combined mode).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    /// `controller.quorum.voters`: node id → controller address. `None` (the default): a
    /// one-voter quorum inside this process, with no controller listener.
    pub voters: Option<std::collections::BTreeMap<i32, String>>,
    /// `controller.listener.names` (one name, default CONTROLLER).
    pub controller_listener_name: String,
    /// Listeners of `listeners` other than the client's PLAINTEXT one, by name.
    pub named_listeners: std::collections::BTreeMap<String, String>,
    /// `broker.rack`, registered with this broker and shown to clients.
    pub rack: Option<String>,
    /// `cluster.id` (Quill's, like `kafka-storage.sh format --cluster-id`): the id a fresh
    /// metadata directory is formatted with; an existing one must match.
    pub cluster_id: Option<String>,
    /// `controller.quorum.election.timeout.ms` (1000).
    pub election_timeout_ms: u64,
    /// `process.roles=broker`: a broker that is not a voter (an observer of the metadata log).
    pub broker_only: bool,
    /// `process.roles=controller`: a voter that serves only its controller listener — no
    /// client listener, no partitions, never registered as a broker.
    pub controller_only: bool,
    /// Whether `listeners` (or `--listen`) named a client (PLAINTEXT) listener.
    pub client_listener: ClientListener,
    /// `broker.session.timeout.ms` (9000): a broker not heard from this long is fenced.
    pub session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms` (2000): how often a broker heartbeats to the controller.
    pub heartbeat_interval_ms: u64,
    /// `replica.lag.time.max.ms` (30000): a follower not caught up with its leader's log end
    /// for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            voters: None,
            controller_listener_name: "CONTROLLER".to_string(),
            named_listeners: std::collections::BTreeMap::new(),
            rack: None,
            cluster_id: None,
            election_timeout_ms: 1000,
            broker_only: false,
            controller_only: false,
            client_listener: ClientListener::Default,
            session_timeout_ms: 9000,
            heartbeat_interval_ms: 2000,
            replica_lag_time_max_ms: 30_000,
        }
    }
}

/// Where the client (PLAINTEXT) listener comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientListener {
    /// Not configured: the default `localhost:9092`.
    Default,
    /// Named by `listeners` or `--listen`.
    Configured,
    /// `listeners` was set with no client listener (only named ones such as CONTROLLER).
    Omitted,
}

impl ClusterSettings {
    /// Kafka's checks of a controller-only node (`process.roles=controller`), and that every
    /// node with the broker role has a client listener. One sentence per refusal.
    pub fn check_roles(&self, node_id: i32, advertised: bool) -> Result<(), String> {
        if !self.controller_only {
            if self.client_listener == ClientListener::Omitted {
                return Err(
                    "listeners must include a PLAINTEXT listener for clients when process.roles includes broker"
                        .to_string(),
                );
            }
            return Ok(());
        }
        let Some(voters) = &self.voters else {
            return Err(
                "process.roles=controller needs controller.quorum.voters (the quorum this node is a voter of)"
                    .to_string(),
            );
        };
        if !voters.contains_key(&node_id) {
            return Err(format!(
                "If process.roles contains just the 'controller' role, the node id {node_id} must be included in the set of voters controller.quorum.voters={:?}",
                voters.keys().collect::<Vec<_>>()
            ));
        }
        if self.client_listener == ClientListener::Configured {
            return Err(
                "The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller"
                    .to_string(),
            );
        }
        if advertised {
            return Err(
                "The advertised.listeners config must be empty when process.roles=controller"
                    .to_string(),
            );
        }
        if !self
            .named_listeners
            .contains_key(&self.controller_listener_name)
        {
            return Err(
                "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role"
                    .to_string(),
            );
        }
        Ok(())
    }

    /// The address the controller listener binds: the `listeners` entry named by
    /// `controller.listener.names`, else this node's `controller.quorum.voters` entry.
    /// `None` for a one-voter quorum in process.
    pub fn controller_listen(&self, node_id: i32) -> Result<Option<String>, String> {
        if self.heartbeat_interval_ms >= self.session_timeout_ms {
            return Err(format!(
                "broker.heartbeat.interval.ms ({}) must be below broker.session.timeout.ms ({})",
                self.heartbeat_interval_ms, self.session_timeout_ms
            ));
        }
        if let Some(unknown) = self
            .named_listeners
            .keys()
            .find(|name| **name != self.controller_listener_name)
        {
            return Err(format!(
                "listener {unknown} is neither PLAINTEXT nor the controller listener ({})",
                self.controller_listener_name
            ));
        }
        let Some(voters) = &self.voters else {
            if self.broker_only {
                return Err(
                    "process.roles=broker needs controller.quorum.voters (the quorum it observes)"
                        .to_string(),
                );
            }
            if self.named_listeners.is_empty() {
                return Ok(None);
            }
            return Err(format!(
                "the {} listener needs controller.quorum.voters",
                self.controller_listener_name
            ));
        };
        let named = self.named_listeners.get(&self.controller_listener_name);
        if self.broker_only {
            if voters.contains_key(&node_id) {
                return Err(format!(
                    "node.id {node_id} is a voter in controller.quorum.voters, so process.roles must include controller"
                ));
            }
            // openraft pushes the metadata log to observers: a broker-only node listens for it.
            return named.cloned().map(Some).ok_or_else(|| {
                format!(
                    "a broker-only node needs a {}://host:port entry in listeners: the active controller sends it the metadata log there",
                    self.controller_listener_name
                )
            });
        }
        match (named, voters.get(&node_id)) {
            (_, None) => Err(format!(
                "node.id {node_id} is not in controller.quorum.voters (every Quill node is a controller)"
            )),
            (Some(listen), Some(_)) => Ok(Some(listen.clone())),
            (None, Some(voter_address)) => Ok(Some(voter_address.clone())),
        }
    }
}

/// `max.connections.per.ip` by default (Kafka: unlimited). One address is often many clients:
/// a busy application host, a Kubernetes node, every client behind a NAT gateway. A
/// librdkafka transactional producer holds three connections to a one-broker cluster
/// (bootstrap, broker, coordinator), a Java client one or two, so 800 admits about 260 such
/// producers from one address, while keeping 200 of the default `max.connections` (1000) for
/// every other address (admin tools, monitoring, other hosts) when one address misbehaves.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: i32 = 800;

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            data_dir: PathBuf::from("./quill-data"),
            listen: "localhost:9092".to_string(),
            advertise: None,
            num_partitions: 1,
            default_replication_factor: 1,
            offsets_topic_replication_factor: 3,
            transaction_state_log_replication_factor: 3,
            auto_create_topics_enable: true,
            message_max_bytes: 1_048_588,
            log_retention_ms: 7 * 24 * 60 * 60 * 1000,
            log_retention_bytes: -1,
            log_segment_bytes: 1024 * 1024 * 1024,
            log_roll_ms: 7 * 24 * 60 * 60 * 1000,
            log_retention_check_interval_ms: 5 * 60 * 1000,
            log_message_timestamp_type: TimestampTypeSetting::CreateTime,
            log_flush_interval_messages: 1,
            log_flush_interval_ms: None,
            log_flush_scheduler_interval_ms: i64::MAX,
            min_insync_replicas: 1,
            socket_request_max_bytes: 100 * 1024 * 1024,
            fetch_max_bytes: 55 * 1024 * 1024,
            background_threads: 10,
            // Kafka defaults both to unlimited; a few file descriptors and a little memory per
            // connection make these the sane defaults of a single broker.
            max_connections: 1000,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            connections_max_idle_ms: 10 * 60 * 1000,
            // Kafka's default is unlimited; 100 MiB admits one request of the maximum size
            // (socket.request.max.bytes) and one response of fetch.max.bytes.
            queued_max_request_bytes: 100 * 1024 * 1024,
            queued_max_response_bytes: 100 * 1024 * 1024,
            queued_max_requests: 500,
            shutdown_timeout_ms: 10_000,
            metrics_listen: None,
            console_enabled: None,
            group: quill_group::GroupConfig::default(),
            txn: quill_txn::TxnConfig::default(),
            producer_id_expiration_ms: 86_400_000,
            cleaner: CleanerSettings::default(),
            topic_defaults: std::collections::BTreeMap::new(),
            explicitly_set: BTreeSet::new(),
            cluster: ClusterSettings::default(),
        }
    }
}

/// One documented setting: its Kafka name and a one-line description (for `--help` and docs).
pub struct SettingDoc {
    pub name: &'static str,
    pub description: &'static str,
}

/// Every setting the broker accepts, in the order they are documented.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc { name: "node.id", description: "this broker's id (default 1)" },
    SettingDoc { name: "log.dirs", description: "data directory (default ./quill-data); `log.dir` is accepted too" },
    SettingDoc { name: "listeners", description: "host:port to listen on, optionally PLAINTEXT://host:port, plus CONTROLLER://host:port for the quorum (default localhost:9092)" },
    SettingDoc { name: "advertised.listeners", description: "host:port clients connect to (default: the listen address)" },
    SettingDoc { name: "process.roles", description: "broker,controller (default: a voter of the metadata quorum), broker (an observer: needs controller.quorum.voters without it and a CONTROLLER listener) or controller (a voter serving only its CONTROLLER listener: no clients, no partitions)" },
    SettingDoc { name: "controller.quorum.voters", description: "id@host:port,... of the metadata quorum's voters (default: unset, a one-voter quorum in this process)" },
    SettingDoc { name: "controller.listener.names", description: "name of the controller listener in listeners (default CONTROLLER; binds the voter's address when listeners has none)" },
    SettingDoc { name: "controller.quorum.election.timeout.ms", description: "Longest a voter waits without word from the leader before it starts an election (3/4 to all of it, randomized per voter); heartbeats every tenth (default 1000)" },
    SettingDoc { name: "broker.session.timeout.ms", description: "the active controller fences a broker it has not heard from for this long: it leaves Metadata and its partitions lose their leader until it heartbeats again (default 9000)" },
    SettingDoc { name: "replica.lag.time.max.ms", description: "a follower that has not caught up with its leader's log end for this long leaves the partition's ISR; it rejoins once it reaches the high watermark (default 30000)" },
    SettingDoc { name: "broker.heartbeat.interval.ms", description: "how often each broker heartbeats to the active controller; below broker.session.timeout.ms (default 2000)" },
    SettingDoc { name: "cluster.id", description: "cluster id a fresh metadata directory is formatted with, the same on every voter (default: random, as kafka-storage.sh format); an existing directory must match" },
    SettingDoc { name: "broker.rack", description: "rack of this broker, shown in Metadata and DescribeCluster (default: none)" },
    SettingDoc { name: "num.partitions", description: "partitions of auto-created topics and CreateTopics with -1 (default 1)" },
    SettingDoc { name: "default.replication.factor", description: "replication factor for -1 (default 1)" },
    SettingDoc { name: "auto.create.topics.enable", description: "create unknown topics on Metadata/Produce (default true)" },
    SettingDoc { name: "message.max.bytes", description: "largest record batch accepted (default 1048588)" },
    SettingDoc { name: "log.retention.ms", description: "default retention.ms of topics (default 7 days, -1 = forever)" },
    SettingDoc { name: "log.retention.bytes", description: "default retention.bytes of topics (default -1 = unlimited)" },
    SettingDoc { name: "log.segment.bytes", description: "default segment.bytes of topics (default 1 GiB)" },
    SettingDoc { name: "log.roll.ms", description: "default segment.ms of topics (default 7 days)" },
    SettingDoc { name: "log.retention.check.interval.ms", description: "how often retention runs (default 5 min)" },
    SettingDoc { name: "log.message.timestamp.type", description: "CreateTime or LogAppendTime (default CreateTime)" },
    SettingDoc { name: "log.flush.interval.messages", description: "default flush.messages of topics: fsync after this many records (default 1: fsync before acknowledging acks=1/-1, group commit; Kafka's default 9223372036854775807 leaves flushing to the OS)" },
    SettingDoc { name: "log.flush.interval.ms", description: "default flush.ms of topics: fsync when this many ms passed since the last one (default: log.flush.scheduler.interval.ms)" },
    SettingDoc { name: "log.flush.scheduler.interval.ms", description: "how often flush.ms is checked, and flush.ms's last fallback (default 9223372036854775807: flush.ms off; checked every 1000 ms then)" },
    SettingDoc { name: "min.insync.replicas", description: "default min.insync.replicas of topics (default 1)" },
    SettingDoc { name: "socket.request.max.bytes", description: "largest request frame; bigger closes the connection (default 104857600)" },
    SettingDoc { name: "background.threads", description: "threads running log maintenance (retention, producer expiry, checkpoints) in parallel; changeable at runtime (default 10)" },
    SettingDoc { name: "fetch.max.bytes", description: "largest Fetch response, whatever the client asks (default 57671680)" },
    SettingDoc { name: "max.connections", description: "open client connections allowed (default 1000; Kafka: unlimited)" },
    SettingDoc { name: "max.connections.per.ip", description: "open connections from one client address (default 800, at most max.connections; Kafka: unlimited)" },
    SettingDoc { name: "queued.max.request.bytes", description: "request bytes read but not yet handled, broker-wide; sockets are not read while spent (default 104857600; Kafka: unlimited)" },
    SettingDoc { name: "queued.max.response.bytes", description: "response bytes waiting to be written, broker-wide; requests wait while spent (default 104857600; Quill's own)" },
    SettingDoc { name: "connections.max.idle.ms", description: "close connections idle this long (default 600000)" },
    SettingDoc { name: "queued.max.requests", description: "requests read ahead per connection, answered one at a time in order (default 500)" },
    SettingDoc { name: "offsets.topic.num.partitions", description: "partitions of __consumer_offsets, fixed once created (default 50)" },
    SettingDoc { name: "offsets.topic.replication.factor", description: "replicas of __consumer_offsets, capped to the active brokers when it is created (default 3; Kafka refuses to create it until that many brokers are up)" },
    SettingDoc { name: "group.initial.rebalance.delay.ms", description: "wait for more members before the first rebalance (default 250; Kafka 3000)" },
    SettingDoc { name: "group.min.session.timeout.ms", description: "smallest consumer session timeout accepted (default 6000)" },
    SettingDoc { name: "group.max.session.timeout.ms", description: "largest consumer session timeout accepted (default 1800000)" },
    SettingDoc { name: "group.max.size", description: "members per consumer group (default 1000)" },
    SettingDoc { name: "offsets.retention.minutes", description: "keep committed offsets of empty groups this long (default 10080)" },
    SettingDoc { name: "offsets.retention.check.interval.ms", description: "how often expired offsets are removed (default 600000)" },
    SettingDoc { name: "offset.metadata.max.bytes", description: "largest commit metadata string (default 4096)" },
    SettingDoc { name: "transaction.state.log.num.partitions", description: "partitions of __transaction_state, fixed once created (default 50)" },
    SettingDoc { name: "transaction.state.log.replication.factor", description: "replicas of __transaction_state, capped to the active brokers when it is created (default 3; Kafka refuses to create it until that many brokers are up)" },
    SettingDoc { name: "transaction.max.timeout.ms", description: "largest transaction.timeout.ms a producer may ask for (default 900000)" },
    SettingDoc { name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", description: "how often timed-out transactions are aborted (default 1000; Kafka 10000)" },
    SettingDoc { name: "transactional.id.expiration.ms", description: "forget transactional ids idle this long (default 604800000)" },
    SettingDoc { name: "producer.id.expiration.ms", description: "partitions forget idle idempotent producers after this long (default 86400000)" },
    SettingDoc { name: "log.cleaner.enable", description: "compact topics with cleanup.policy=compact (default true)" },
    SettingDoc { name: "log.cleaner.threads", description: "background compaction threads (default 1, at most 64)" },
    SettingDoc { name: "log.cleaner.dedupe.buffer.size", description: "key map memory shared by the cleaner threads; fuller maps clean in more passes (default 134217728)" },
    SettingDoc { name: "log.cleaner.io.max.bytes.per.second", description: "cap on the cleaner threads' reads plus writes (default unlimited)" },
    SettingDoc { name: "log.cleaner.backoff.ms", description: "cleaner sleep when no log is dirty enough (default 15000)" },
    SettingDoc { name: "shutdown.timeout.ms", description: "how long SIGTERM waits for in-flight requests (default 10000)" },
    SettingDoc { name: "metrics.listen", description: "host:port for Prometheus metrics (GET /metrics, /healthz); unset (default): off. Binds exactly this address, so loopback unless you name another" },
    SettingDoc { name: "console.enabled", description: "web console at /console on metrics.listen; unset (default): on when metrics.listen is a loopback address, off otherwise" },
];

/// Broker-level names of topic config defaults that are accepted besides [`SETTINGS`]
/// (`log.cleanup.policy`, `log.retention.hours`, `compression.type`, …), sorted.
pub fn topic_default_setting_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = quill_meta::topic_config::TOPIC_CONFIGS
        .iter()
        .flat_map(|def| def.broker_synonyms.iter().map(|synonym| synonym.name))
        .filter(|name| !SETTINGS.iter().any(|setting| setting.name == *name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

impl BrokerConfig {
    /// `--listen`: replaces the client (PLAINTEXT) listener only, keeping a CONTROLLER listener
    /// that `listeners` may also name.
    pub fn set_client_listener(&mut self, value: &str) -> Result<(), ConfigError> {
        let named = std::mem::take(&mut self.cluster.named_listeners);
        let set = self.set("listeners", value);
        if self.cluster.named_listeners.is_empty() {
            self.cluster.named_listeners = named;
        }
        set
    }

    /// Applies one `name = value` setting, validating it. Records the name as explicitly set.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let value = value.trim();
        let invalid = |reason: &str| ConfigError::InvalidValue {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let canonical_name = match name {
            "log.dir" => "log.dirs",
            other => other,
        };
        match canonical_name {
            "node.id" => self.node_id = parse_int_at_least(value, 0).map_err(|r| invalid(&r))?,
            "log.dirs" => self.data_dir = parse_single_dir(value).map_err(|r| invalid(&r))?,
            "listeners" => {
                let (client, named) = parse_listeners(value).map_err(|r| invalid(&r))?;
                self.cluster.client_listener = match client {
                    Some(client) => {
                        self.listen = client;
                        ClientListener::Configured
                    }
                    None => ClientListener::Omitted,
                };
                self.cluster.named_listeners = named;
            }
            "controller.quorum.voters" => {
                let voters = quill_meta::quorum::parse_voters(value)
                    .map_err(|error| invalid(&error.to_string()))?;
                self.cluster.voters = Some(voters);
            }
            "controller.listener.names" => {
                if value.is_empty() || value.contains(',') || !is_listener_name(value) {
                    return Err(invalid(
                        "expected one listener name (Quill has one controller listener)",
                    ));
                }
                self.cluster.controller_listener_name = value.to_string();
            }
            "process.roles" => {
                let roles: BTreeSet<&str> = value.split(',').map(str::trim).collect();
                let (broker_only, controller_only) =
                    if roles == BTreeSet::from(["broker", "controller"]) {
                        (false, false)
                    } else if roles == BTreeSet::from(["broker"]) {
                        (true, false)
                    } else if roles == BTreeSet::from(["controller"]) {
                        (false, true)
                    } else {
                        return Err(invalid(
                            "process.roles must be broker,controller, broker or controller",
                        ));
                    };
                self.cluster.broker_only = broker_only;
                self.cluster.controller_only = controller_only;
            }
            "broker.rack" => {
                self.cluster.rack = (!value.is_empty()).then(|| value.to_string());
            }
            "cluster.id" => {
                if value.is_empty()
                    || value.len() > 64
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(invalid(
                        "expected 1-64 characters of A-Z, a-z, 0-9, '-' and '_' (Kafka's ids are base64url UUIDs)",
                    ));
                }
                self.cluster.cluster_id = Some(value.to_string());
            }
            "broker.session.timeout.ms" => {
                let timeout_ms: i64 = parse_int_at_least(value, 10).map_err(|r| invalid(&r))?;
                self.cluster.session_timeout_ms =
                    u64::try_from(timeout_ms).map_err(|_| invalid("out of range"))?;
            }
            "replica.lag.time.max.ms" => {
                let lag_ms: i64 = parse_int_at_least(value, 10).map_err(|r| invalid(&r))?;
                self.cluster.replica_lag_time_max_ms =
                    u64::try_from(lag_ms).map_err(|_| invalid("out of range"))?;
            }
            "broker.heartbeat.interval.ms" => {
                let interval_ms: i64 = parse_int_at_least(value, 10).map_err(|r| invalid(&r))?;
                self.cluster.heartbeat_interval_ms =
                    u64::try_from(interval_ms).map_err(|_| invalid("out of range"))?;
            }
            "controller.quorum.election.timeout.ms" => {
                let timeout_ms: i64 = parse_int_at_least(value, 10).map_err(|r| invalid(&r))?;
                self.cluster.election_timeout_ms =
                    u64::try_from(timeout_ms).map_err(|_| invalid("out of range"))?;
            }
            "advertised.listeners" => {
                self.advertise = Some(parse_listener(value).map_err(|r| invalid(&r))?)
            }
            "num.partitions" => {
                self.num_partitions = parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "default.replication.factor" => {
                let factor: i32 = parse_int_at_least(value, 1).map_err(|r| invalid(&r))?;
                self.default_replication_factor =
                    i16::try_from(factor).map_err(|_| invalid("must fit in 16 bits"))?;
            }
            "offsets.topic.replication.factor" => {
                let factor: i32 = parse_int_at_least(value, 1).map_err(|r| invalid(&r))?;
                self.offsets_topic_replication_factor =
                    i16::try_from(factor).map_err(|_| invalid("must fit in 16 bits"))?;
            }
            "transaction.state.log.replication.factor" => {
                let factor: i32 = parse_int_at_least(value, 1).map_err(|r| invalid(&r))?;
                self.transaction_state_log_replication_factor =
                    i16::try_from(factor).map_err(|_| invalid("must fit in 16 bits"))?;
            }
            "auto.create.topics.enable" => {
                self.auto_create_topics_enable = parse_bool(value).map_err(|r| invalid(&r))?
            }
            "message.max.bytes" => {
                self.message_max_bytes = parse_int_at_least(value, 0).map_err(|r| invalid(&r))?
            }
            "log.retention.ms" => {
                self.log_retention_ms = parse_int_at_least(value, -1).map_err(|r| invalid(&r))?
            }
            "log.retention.bytes" => {
                self.log_retention_bytes = parse_int_at_least(value, -1).map_err(|r| invalid(&r))?
            }
            "log.segment.bytes" => {
                self.log_segment_bytes = parse_int_at_least(value, 14).map_err(|r| invalid(&r))?
            }
            "log.roll.ms" => {
                self.log_roll_ms = parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "log.retention.check.interval.ms" => {
                self.log_retention_check_interval_ms =
                    parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "log.message.timestamp.type" => {
                self.log_message_timestamp_type = match value {
                    "CreateTime" => TimestampTypeSetting::CreateTime,
                    "LogAppendTime" => TimestampTypeSetting::LogAppendTime,
                    _ => return Err(invalid("must be CreateTime or LogAppendTime")),
                }
            }
            "log.flush.interval.messages" => {
                self.log_flush_interval_messages =
                    parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "log.flush.interval.ms" => {
                self.log_flush_interval_ms =
                    Some(parse_int_at_least(value, 0).map_err(|r| invalid(&r))?)
            }
            "log.flush.scheduler.interval.ms" => {
                self.log_flush_scheduler_interval_ms =
                    parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "min.insync.replicas" => {
                self.min_insync_replicas = parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes =
                    parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "fetch.max.bytes" => {
                self.fetch_max_bytes = parse_int_at_least(value, 1024).map_err(|r| invalid(&r))?
            }
            "background.threads" => {
                self.background_threads = parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "max.connections" => {
                self.max_connections = parse_int_at_least(value, 0).map_err(|r| invalid(&r))?
            }
            "max.connections.per.ip" => {
                self.max_connections_per_ip =
                    parse_int_at_least(value, 0).map_err(|r| invalid(&r))?
            }
            "queued.max.request.bytes" => {
                self.queued_max_request_bytes =
                    parse_int_at_least(value, 1024).map_err(|r| invalid(&r))?
            }
            "queued.max.response.bytes" => {
                self.queued_max_response_bytes =
                    parse_int_at_least(value, 1024).map_err(|r| invalid(&r))?
            }
            "connections.max.idle.ms" => {
                self.connections_max_idle_ms =
                    parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "queued.max.requests" => {
                self.queued_max_requests = parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "shutdown.timeout.ms" => {
                self.shutdown_timeout_ms = parse_int_at_least(value, 0).map_err(|r| invalid(&r))?
            }
            "metrics.listen" => {
                self.metrics_listen = Some(parse_http_listener(value).map_err(|r| invalid(&r))?)
            }
            "console.enabled" => {
                self.console_enabled = Some(parse_bool(value).map_err(|r| invalid(&r))?)
            }
            "offsets.topic.num.partitions" => {
                self.group.offsets_topic_partitions =
                    parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "group.initial.rebalance.delay.ms" => {
                self.group.initial_rebalance_delay_ms =
                    parse_int_at_least(value, 0u64).map_err(|r| invalid(&r))?
            }
            "group.min.session.timeout.ms" => {
                self.group.min_session_timeout_ms =
                    parse_int_at_least(value, 0).map_err(|r| invalid(&r))?
            }
            "group.max.session.timeout.ms" => {
                self.group.max_session_timeout_ms =
                    parse_int_at_least(value, 0).map_err(|r| invalid(&r))?
            }
            "group.max.size" => {
                self.group.group_max_size =
                    parse_int_at_least(value, 1usize).map_err(|r| invalid(&r))?
            }
            "offsets.retention.minutes" => {
                let minutes: i64 = parse_int_at_least(value, 1).map_err(|r| invalid(&r))?;
                self.group.offsets_retention_ms = minutes
                    .checked_mul(60_000)
                    .ok_or_else(|| invalid("too large"))?;
            }
            "offsets.retention.check.interval.ms" => {
                self.group.offsets_retention_check_interval_ms =
                    parse_int_at_least(value, 1u64).map_err(|r| invalid(&r))?
            }
            "offset.metadata.max.bytes" => {
                self.group.offset_metadata_max_bytes =
                    parse_int_at_least(value, 0usize).map_err(|r| invalid(&r))?
            }
            "transaction.state.log.num.partitions" => {
                self.txn.transaction_state_partitions =
                    parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "transaction.max.timeout.ms" => {
                self.txn.transaction_max_timeout_ms =
                    parse_int_at_least(value, 1).map_err(|r| invalid(&r))?
            }
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                self.txn.abort_timed_out_transaction_cleanup_interval_ms =
                    parse_int_at_least(value, 1u64).map_err(|r| invalid(&r))?
            }
            "transactional.id.expiration.ms" => {
                self.txn.transactional_id_expiration_ms =
                    parse_int_at_least(value, 1i64).map_err(|r| invalid(&r))?
            }
            "producer.id.expiration.ms" => {
                self.producer_id_expiration_ms =
                    parse_int_at_least(value, 1i64).map_err(|r| invalid(&r))?
            }
            "log.cleaner.enable" => {
                self.cleaner.enable = parse_bool(value).map_err(|r| invalid(&r))?
            }
            "log.cleaner.threads" => {
                let threads: usize = parse_int_at_least(value, 0usize).map_err(|r| invalid(&r))?;
                if threads > MAX_CLEANER_THREADS {
                    return Err(invalid(&format!("at most {MAX_CLEANER_THREADS}")));
                }
                self.cleaner.threads = threads;
            }
            "log.cleaner.dedupe.buffer.size" => {
                self.cleaner.dedupe_buffer_size =
                    parse_int_at_least(value, MIN_DEDUPE_BUFFER_PER_THREAD)
                        .map_err(|r| invalid(&r))?
            }
            "log.cleaner.io.max.bytes.per.second" => {
                let rate: f64 = value
                    .parse()
                    .map_err(|_| invalid("must be a number of bytes per second"))?;
                if rate.is_nan() || rate <= 0.0 {
                    return Err(invalid("must be greater than 0"));
                }
                self.cleaner.io_max_bytes_per_second = rate;
            }
            "log.cleaner.backoff.ms" => {
                self.cleaner.backoff_ms =
                    parse_int_at_least(value, 0u64).map_err(|r| invalid(&r))?
            }
            other if quill_meta::topic_config::topic_config_for_broker_synonym(other).is_some() => {
                quill_meta::topic_config::validate_broker_config(other, value)
                    .and_then(|()| {
                        quill_meta::topic_config::check_supported_broker_config(other, value)
                    })
                    .map_err(|error| invalid(&error.to_string()))?;
                self.topic_defaults
                    .insert(other.to_string(), value.to_string());
            }
            _ => {
                return Err(ConfigError::UnknownSetting {
                    name: name.to_string(),
                })
            }
        }
        self.explicitly_set.insert(canonical_name.to_string());
        Ok(())
    }

    /// Applies every `name = value` of a TOML document (flat keys, e.g. `"num.partitions" = 3`
    /// or nested tables `[log] retention.ms = 1` which flatten to `log.retention.ms`).
    pub fn apply_toml(&mut self, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| ConfigError::File(error.to_string()))?;
        let mut settings = Vec::new();
        flatten_toml("", &table, &mut settings)?;
        for (name, value) in settings {
            self.set(&name, &value)?;
        }
        Ok(())
    }

    /// Explicitly set settings by Kafka name (the "static broker config" layer of
    /// DescribeConfigs and of topic config defaults).
    pub fn static_settings(&self) -> std::collections::BTreeMap<String, String> {
        self.describe()
            .into_iter()
            .filter(|(name, _)| self.explicitly_set.contains(name))
            .filter_map(|(name, value)| value.map(|value| (name, value)))
            .collect()
    }

    /// The address clients are told to connect to.
    pub fn advertised_address(&self) -> &str {
        self.advertise.as_deref().unwrap_or(&self.listen)
    }

    fn describe_listeners(&self) -> String {
        let mut listeners = Vec::new();
        if self.cluster.client_listener != ClientListener::Omitted {
            listeners.push(format!("PLAINTEXT://{}", self.listen));
        }
        listeners.extend(
            self.cluster
                .named_listeners
                .iter()
                .map(|(name, address)| format!("{name}://{address}")),
        );
        listeners.join(",")
    }

    /// Current value of every documented setting as Kafka would print it (for DescribeConfigs).
    pub fn describe(&self) -> Vec<(String, Option<String>)> {
        let timestamp_type = match self.log_message_timestamp_type {
            TimestampTypeSetting::CreateTime => "CreateTime",
            TimestampTypeSetting::LogAppendTime => "LogAppendTime",
        };
        let fixed: Vec<(&str, Option<String>)> = vec![
            ("node.id", Some(self.node_id.to_string())),
            ("log.dirs", Some(self.data_dir.display().to_string())),
            ("listeners", Some(self.describe_listeners())),
            (
                "process.roles",
                Some(
                    if self.cluster.broker_only {
                        "broker"
                    } else if self.cluster.controller_only {
                        "controller"
                    } else {
                        "broker,controller"
                    }
                    .to_string(),
                ),
            ),
            (
                "controller.quorum.voters",
                self.cluster.voters.as_ref().map(|voters| {
                    voters
                        .iter()
                        .map(|(id, address)| format!("{id}@{address}"))
                        .collect::<Vec<_>>()
                        .join(",")
                }),
            ),
            (
                "controller.listener.names",
                Some(self.cluster.controller_listener_name.clone()),
            ),
            (
                "controller.quorum.election.timeout.ms",
                Some(self.cluster.election_timeout_ms.to_string()),
            ),
            ("cluster.id", self.cluster.cluster_id.clone()),
            (
                "broker.session.timeout.ms",
                Some(self.cluster.session_timeout_ms.to_string()),
            ),
            (
                "broker.heartbeat.interval.ms",
                Some(self.cluster.heartbeat_interval_ms.to_string()),
            ),
            (
                "replica.lag.time.max.ms",
                Some(self.cluster.replica_lag_time_max_ms.to_string()),
            ),
            ("broker.rack", self.cluster.rack.clone()),
            (
                "advertised.listeners",
                Some(format!("PLAINTEXT://{}", self.advertised_address())),
            ),
            ("num.partitions", Some(self.num_partitions.to_string())),
            (
                "default.replication.factor",
                Some(self.default_replication_factor.to_string()),
            ),
            (
                "auto.create.topics.enable",
                Some(self.auto_create_topics_enable.to_string()),
            ),
            (
                "message.max.bytes",
                Some(self.message_max_bytes.to_string()),
            ),
            ("log.retention.ms", Some(self.log_retention_ms.to_string())),
            (
                "log.retention.bytes",
                Some(self.log_retention_bytes.to_string()),
            ),
            (
                "log.segment.bytes",
                Some(self.log_segment_bytes.to_string()),
            ),
            ("log.roll.ms", Some(self.log_roll_ms.to_string())),
            (
                "log.retention.check.interval.ms",
                Some(self.log_retention_check_interval_ms.to_string()),
            ),
            (
                "log.message.timestamp.type",
                Some(timestamp_type.to_string()),
            ),
            (
                "log.flush.interval.messages",
                Some(self.log_flush_interval_messages.to_string()),
            ),
            (
                "log.flush.interval.ms",
                self.log_flush_interval_ms.map(|ms| ms.to_string()),
            ),
            (
                "log.flush.scheduler.interval.ms",
                Some(self.log_flush_scheduler_interval_ms.to_string()),
            ),
            (
                "min.insync.replicas",
                Some(self.min_insync_replicas.to_string()),
            ),
            (
                "socket.request.max.bytes",
                Some(self.socket_request_max_bytes.to_string()),
            ),
            ("fetch.max.bytes", Some(self.fetch_max_bytes.to_string())),
            (
                "background.threads",
                Some(self.background_threads.to_string()),
            ),
            ("max.connections", Some(self.max_connections.to_string())),
            (
                "max.connections.per.ip",
                Some(self.max_connections_per_ip.to_string()),
            ),
            (
                "queued.max.request.bytes",
                Some(self.queued_max_request_bytes.to_string()),
            ),
            (
                "queued.max.response.bytes",
                Some(self.queued_max_response_bytes.to_string()),
            ),
            (
                "connections.max.idle.ms",
                Some(self.connections_max_idle_ms.to_string()),
            ),
            (
                "queued.max.requests",
                Some(self.queued_max_requests.to_string()),
            ),
            (
                "shutdown.timeout.ms",
                Some(self.shutdown_timeout_ms.to_string()),
            ),
            ("metrics.listen", self.metrics_listen.clone()),
            (
                "console.enabled",
                self.console_enabled.map(|enabled| enabled.to_string()),
            ),
            (
                "offsets.topic.num.partitions",
                Some(self.group.offsets_topic_partitions.to_string()),
            ),
            (
                "offsets.topic.replication.factor",
                Some(self.offsets_topic_replication_factor.to_string()),
            ),
            (
                "transaction.state.log.replication.factor",
                Some(self.transaction_state_log_replication_factor.to_string()),
            ),
            (
                "group.initial.rebalance.delay.ms",
                Some(self.group.initial_rebalance_delay_ms.to_string()),
            ),
            (
                "group.min.session.timeout.ms",
                Some(self.group.min_session_timeout_ms.to_string()),
            ),
            (
                "group.max.session.timeout.ms",
                Some(self.group.max_session_timeout_ms.to_string()),
            ),
            (
                "group.max.size",
                Some(self.group.group_max_size.to_string()),
            ),
            (
                "offsets.retention.minutes",
                Some((self.group.offsets_retention_ms / 60_000).to_string()),
            ),
            (
                "offsets.retention.check.interval.ms",
                Some(self.group.offsets_retention_check_interval_ms.to_string()),
            ),
            (
                "offset.metadata.max.bytes",
                Some(self.group.offset_metadata_max_bytes.to_string()),
            ),
            (
                "transaction.state.log.num.partitions",
                Some(self.txn.transaction_state_partitions.to_string()),
            ),
            (
                "transaction.max.timeout.ms",
                Some(self.txn.transaction_max_timeout_ms.to_string()),
            ),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                Some(
                    self.txn
                        .abort_timed_out_transaction_cleanup_interval_ms
                        .to_string(),
                ),
            ),
            (
                "transactional.id.expiration.ms",
                Some(self.txn.transactional_id_expiration_ms.to_string()),
            ),
            (
                "producer.id.expiration.ms",
                Some(self.producer_id_expiration_ms.to_string()),
            ),
            ("log.cleaner.enable", Some(self.cleaner.enable.to_string())),
            (
                "log.cleaner.threads",
                Some(self.cleaner.threads.to_string()),
            ),
            (
                "log.cleaner.dedupe.buffer.size",
                Some(self.cleaner.dedupe_buffer_size.to_string()),
            ),
            (
                "log.cleaner.io.max.bytes.per.second",
                Some(format!("{:?}", self.cleaner.io_max_bytes_per_second)),
            ),
            (
                "log.cleaner.backoff.ms",
                Some(self.cleaner.backoff_ms.to_string()),
            ),
        ];
        let mut described: Vec<(String, Option<String>)> = fixed
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        described.extend(
            self.topic_defaults
                .iter()
                .map(|(name, value)| (name.clone(), Some(value.clone()))),
        );
        described
    }
}

fn flatten_toml(
    prefix: &str,
    table: &toml::Table,
    out: &mut Vec<(String, String)>,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let text = match value {
            toml::Value::Table(nested) => {
                flatten_toml(&name, nested, out)?;
                continue;
            }
            toml::Value::String(text) => text.clone(),
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(text) => parts.push(text.clone()),
                        other => parts.push(other.to_string()),
                    }
                }
                parts.join(",")
            }
            toml::Value::Datetime(datetime) => datetime.to_string(),
        };
        out.push((name, text));
    }
    Ok(())
}

fn parse_int_at_least<T>(value: &str, minimum: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let number: T = value
        .parse()
        .map_err(|_| "not an integer in range".to_string())?;
    if number < minimum {
        return Err(format!("must be at least {minimum}"));
    }
    Ok(number)
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".to_string()),
    }
}

fn parse_single_dir(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("must not be empty".to_string());
    }
    if value.contains(',') {
        return Err("Quill uses a single data directory".to_string());
    }
    Ok(PathBuf::from(value))
}

/// Accepts `host:port` or `PLAINTEXT://host:port` (one listener; TLS/SASL come later).
/// `host:port` of an HTTP endpoint (no protocol prefix, one address).
fn parse_http_listener(value: &str) -> Result<String, String> {
    if value.contains("://") || value.contains(',') {
        return Err("expected one host:port (no protocol prefix)".to_string());
    }
    parse_listener(value)
}

/// Kafka's listener names: letters, digits and underscores.
fn is_listener_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `listeners`: one client listener (`host:port` or `PLAINTEXT://host:port`) plus, optionally,
/// named ones such as `CONTROLLER://host:port` (checked against `controller.listener.names`
/// at start-up). Returns the client address and the named listeners.
fn parse_listeners(
    value: &str,
) -> Result<(Option<String>, std::collections::BTreeMap<String, String>), String> {
    const SECURED: [&str; 3] = ["SSL", "SASL_PLAINTEXT", "SASL_SSL"];
    let mut client = None;
    let mut named = std::collections::BTreeMap::new();
    for listener in value.split(',').map(str::trim) {
        match listener.split_once("://") {
            Some((name, address)) if name != "PLAINTEXT" => {
                if SECURED.contains(&name) || !is_listener_name(name) {
                    return Err(format!(
                        "listener protocol {name} is not supported (only PLAINTEXT)"
                    ));
                }
                let address = parse_listener(address)?;
                if named.insert(name.to_string(), address).is_some() {
                    return Err(format!("listener {name} appears more than once"));
                }
            }
            _ => {
                if client.replace(parse_listener(listener)?).is_some() {
                    return Err("only one PLAINTEXT listener is supported".to_string());
                }
            }
        }
    }
    if client.is_none() && named.is_empty() {
        return Err("expected at least one listener".to_string());
    }
    Ok((client, named))
}

pub fn parse_listener(value: &str) -> Result<String, String> {
    let address = match value.split_once("://") {
        Some(("PLAINTEXT", address)) => address,
        Some((protocol, _)) => {
            return Err(format!(
                "listener protocol {protocol} is not supported (only PLAINTEXT)"
            ))
        }
        None => value,
    };
    if address.contains(',') {
        return Err("only one listener is supported".to_string());
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("expected host:port".to_string());
    };
    if host.is_empty() {
        return Err("expected host:port with a host".to_string());
    }
    port.parse::<u16>()
        .map_err(|_| "port must be a number 0-65535".to_string())?;
    Ok(address.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metrics_listen_is_off_by_default_and_takes_one_host_port() {
        let mut config = BrokerConfig::default();
        assert_eq!(config.metrics_listen, None);
        config.set("metrics.listen", "127.0.0.1:9404").unwrap();
        assert_eq!(config.metrics_listen.as_deref(), Some("127.0.0.1:9404"));
        assert!(config.set("metrics.listen", "http://0.0.0.0:9404").is_err());
        assert!(config.set("metrics.listen", "9404").is_err());
    }

    #[test]
    fn one_address_gets_most_but_not_all_of_the_default_connections() {
        let config = BrokerConfig::default();
        // ~85 librdkafka transactional producers (3 connections each) hit the old 256.
        assert!(config.max_connections_per_ip >= 3 * 250);
        assert!(config.max_connections_per_ip < config.max_connections);
    }

    #[test]
    fn console_follows_the_metrics_address_unless_set() {
        let mut config = BrokerConfig::default();
        assert_eq!(config.console_enabled, None);
        config.set("console.enabled", "false").unwrap();
        assert_eq!(config.console_enabled, Some(false));
        assert!(config.set("console.enabled", "sometimes").is_err());
    }

    #[test]
    fn unknown_setting_is_named() {
        let mut config = BrokerConfig::default();
        let error = config.set("num.partitons", "3").unwrap_err();
        assert!(error.to_string().contains("num.partitons"));
    }

    #[test]
    fn invalid_value_names_setting_and_value() {
        let mut config = BrokerConfig::default();
        let error = config.set("num.partitions", "zero").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("num.partitions"), "{message}");
        assert!(message.contains("zero"), "{message}");
        assert!(config.set("num.partitions", "0").is_err());
    }

    #[test]
    fn toml_values_of_any_scalar_type_apply() {
        let mut config = BrokerConfig::default();
        config
            .apply_toml(
                "\"num.partitions\" = 3\n\"auto.create.topics.enable\" = false\n\
                 [log.retention]\nms = \"1000\"\n",
            )
            .unwrap();
        assert_eq!(config.num_partitions, 3);
        assert!(!config.auto_create_topics_enable);
        assert_eq!(config.log_retention_ms, 1000);
        assert!(config.explicitly_set.contains("log.retention.ms"));
    }

    #[test]
    fn kafka_topic_default_names_are_accepted_and_validated() {
        let mut config = BrokerConfig::default();
        config.set("log.cleanup.policy", "compact").unwrap();
        config.set("log.retention.hours", "24").unwrap();
        assert_eq!(
            config
                .static_settings()
                .get("log.retention.hours")
                .map(String::as_str),
            Some("24")
        );
        let error = config.set("log.cleanup.policy", "sometimes").unwrap_err();
        assert!(error.to_string().contains("log.cleanup.policy"), "{error}");
    }

    #[test]
    fn log_cleaner_settings_are_validated_and_described() {
        let mut config = BrokerConfig::default();
        assert_eq!(config.cleaner, CleanerSettings::default());
        config.set("log.cleaner.threads", "2").unwrap();
        config
            .set("log.cleaner.dedupe.buffer.size", "1048576")
            .unwrap();
        config
            .set("log.cleaner.io.max.bytes.per.second", "5e6")
            .unwrap();
        config.set("log.cleaner.backoff.ms", "0").unwrap();
        config.set("log.cleaner.enable", "false").unwrap();
        assert_eq!(
            config.cleaner,
            CleanerSettings {
                enable: false,
                threads: 2,
                dedupe_buffer_size: 1_048_576,
                io_max_bytes_per_second: 5e6,
                backoff_ms: 0,
            }
        );
        for (name, value) in [
            ("log.cleaner.threads", "65"),
            ("log.cleaner.threads", "-1"),
            ("log.cleaner.dedupe.buffer.size", "1024"),
            ("log.cleaner.io.max.bytes.per.second", "0"),
            ("log.cleaner.io.max.bytes.per.second", "NaN"),
            ("log.cleaner.backoff.ms", "-5"),
            ("log.cleaner.enable", "maybe"),
        ] {
            let error = config.set(name, value).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
        let described: std::collections::BTreeMap<String, Option<String>> =
            config.describe().into_iter().collect();
        assert_eq!(
            described.get("log.cleaner.threads"),
            Some(&Some("2".to_string()))
        );
        assert!(SETTINGS
            .iter()
            .any(|s| s.name == "log.cleaner.dedupe.buffer.size"));
    }

    #[test]
    fn listener_forms() {
        assert_eq!(parse_listener("PLAINTEXT://h:1").unwrap(), "h:1");
        assert_eq!(parse_listener("[::1]:9092").unwrap(), "[::1]:9092");
        assert!(parse_listener("SSL://h:1").is_err());
        assert!(parse_listener("h").is_err());
        assert!(parse_listener("h:99999").is_err());
    }
}
