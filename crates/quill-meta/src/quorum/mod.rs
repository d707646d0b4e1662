//! The metadata log under a Raft quorum (KRaft's design, openraft's implementation).
//!
//! The broker talks to [`MetadataQuorum`] only and never sees openraft types:
//! `propose(records)` returns once the entry is committed by a majority of the voters and applied
//! locally; `subscribe()` follows the applied images; `leader()` is the active controller.
//!
//! - [`log_store`]: openraft's `RaftLogStorage` — entries (term + index), the vote, the purge
//!   point, all durable through `quill_fs::Fs`.
//! - [`machine`]: openraft's `RaftStateMachine` — applies committed entries with the pure
//!   [`crate::apply_entry`]; snapshots in the existing image snapshot format.
//! - [`mem_network`]: an in-process network (tests, simulations with loss and partitions).
//! - [`tcp`]: the controller-to-controller network over TCP.
//!
//! Why openraft (0.9): a maintained Raft used in production (Databend's meta service) with the
//! pieces KRaft needs (elections, joint-consensus membership changes, snapshot install, log
//! purge behind a retained suffix), whose storage and network are traits we implement: the
//! durability stays in our `Fs` seam, so the power-loss simulator can test it.

pub mod log_store;
pub mod machine;
pub mod mem_network;
pub mod runtime;
#[cfg(test)]
mod simulation;
pub mod single;
pub mod supervisor;
pub mod tcp;
pub mod voter;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft, RaftNetworkFactory};
use quill_fs::Fs;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{apply_entry, MetaError, MetadataImage, MetadataRecord};

pub use crate::error_code::{NOT_CONTROLLER, REQUEST_TIMED_OUT};

/// One metadata log entry's payload: records applied all-or-nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataEntry {
    pub records: Vec<MetadataRecord>,
}

impl std::fmt::Display for MetadataEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "metadata entry of {} records", self.records.len())
    }
}

/// What applying a committed entry did. A committed entry that fails validation is applied as a
/// no-op on every node alike (`apply_entry` is deterministic), and the proposer gets the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    Applied,
    Rejected { error_code: i16, message: String },
}

openraft::declare_raft_types!(
    /// openraft's type configuration for the metadata quorum. Node ids are Kafka `node.id`s
    /// (non-negative i32) widened to u64; a node's address is its controller listener.
    pub MetaRaftConfig:
        D = MetadataEntry,
        R = ApplyOutcome,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<MetaRaftConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = runtime::QuorumRuntime,
);

pub type MetaRaft = Raft<MetaRaftConfig>;
pub type NodeId = u64;

/// Errors of the quorum API; `kafka_error_code` maps them to Kafka's answers.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// Rejected before proposing: invalid against the leader's latest applied image.
    #[error(transparent)]
    Invalid(#[from] MetaError),
    /// Committed, and then refused by the state machine on every node alike (a concurrent change
    /// won the race, for example two CreateTopics for one name).
    #[error("{message}")]
    Rejected { error_code: i16, message: String },
    #[error("this node is not the active controller (leader: {leader:?})")]
    NotLeader { leader: Option<i32> },
    /// The change may or may not commit later (leadership lost while it was in flight).
    #[error("metadata change outcome unknown: {0}")]
    Unknown(String),
    #[error("metadata quorum stopped: {0}")]
    Stopped(String),
    #[error("invalid quorum configuration: {0}")]
    Config(String),
}

impl QuorumError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            QuorumError::Invalid(error) => error.kafka_error_code(),
            QuorumError::Rejected { error_code, .. } => *error_code,
            QuorumError::NotLeader { .. } => NOT_CONTROLLER,
            QuorumError::Unknown(_) => REQUEST_TIMED_OUT,
            QuorumError::Stopped(_) | QuorumError::Config(_) => {
                crate::error_code::KAFKA_STORAGE_ERROR
            }
        }
    }
}

impl From<QuorumError> for MetaError {
    fn from(error: QuorumError) -> MetaError {
        match error {
            QuorumError::Invalid(error) => error,
            QuorumError::Rejected {
                error_code,
                message,
            } => MetaError::Rejected {
                error_code,
                message,
            },
            error @ QuorumError::NotLeader { .. } => MetaError::NotController(error.to_string()),
            QuorumError::Unknown(message) => MetaError::OutcomeUnknown(message),
            QuorumError::Stopped(message) | QuorumError::Config(message) => {
                MetaError::Unavailable(message)
            }
        }
    }
}

/// The metadata log as the broker sees it: propose records, follow applied images, know the
/// active controller and the voters.
pub trait MetadataQuorum: Send + Sync {
    /// Appends `records` as one entry; resolves with the entry's log index once a majority of the
    /// voters has it durably and this node has applied it (so `image().offset >= index`).
    fn propose(
        &self,
        records: Vec<MetadataRecord>,
    ) -> impl Future<Output = Result<u64, QuorumError>> + Send;
    /// The active controller (Raft leader) as this node knows it.
    fn leader(&self) -> Option<i32>;
    /// The voters of the current membership (KRaft's `controller.quorum.voters`).
    fn voters(&self) -> Vec<i32>;
    /// The latest applied image.
    fn image(&self) -> Arc<MetadataImage>;
    /// Follows applied images; every published image is committed.
    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>>;
    /// What KRaft's DescribeQuorum reports, as this node knows it.
    fn describe(&self) -> QuorumStatus;
}

/// The leader a member knows, and the Raft term it knows it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderView {
    pub leader: Option<i32>,
    pub term: u64,
}

/// The quorum as one member sees it (DescribeQuorum; it crosses the controller listener when
/// a member that does not lead asks the leader for its view).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumStatus {
    pub leader_id: Option<i32>,
    /// The Raft term: KRaft's leader epoch.
    pub leader_epoch: u64,
    /// Index of the last entry applied here; on the leader every applied entry is committed,
    /// so it trails the high watermark only by entries committed but not yet applied.
    pub applied_index: u64,
    pub voters: Vec<ReplicaStatus>,
    /// Learners (KRaft's observers).
    pub observers: Vec<ReplicaStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub replica_id: i32,
    /// The last index the leader knows this replica holds; `None` unless this node leads (or
    /// before the replica's first acknowledgement).
    pub matched_index: Option<u64>,
}

/// Settings of one quorum member (Kafka names in the docs of each field).
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    /// `node.id`.
    pub node_id: i32,
    /// The cluster id every voter must share (`meta.properties`' `cluster.id`).
    pub cluster_id: String,
    /// `controller.quorum.voters`: node id → controller listener address `host:port`.
    pub voters: BTreeMap<i32, String>,
    /// `controller.quorum.election.timeout.ms`: as in Kafka, the longest a voter waits
    /// without word from the leader before it starts an election (see
    /// [`QuorumConfig::raft_config`] for how it maps onto openraft's timers).
    pub election_timeout_ms: u64,
    /// Entries applied between snapshots.
    pub snapshot_interval_entries: u64,
    /// Entries kept in the log behind a snapshot, so lagging followers catch up by replay
    /// instead of a snapshot install.
    pub retained_log_entries: u64,
    /// Largest encoded entry a proposal may produce.
    pub max_entry_bytes: usize,
}

impl QuorumConfig {
    /// A one-voter quorum: today's single-node broker.
    pub fn single_node(node_id: i32, cluster_id: impl Into<String>, address: String) -> Self {
        QuorumConfig {
            node_id,
            cluster_id: cluster_id.into(),
            voters: BTreeMap::from([(node_id, address)]),
            election_timeout_ms: 1000,
            snapshot_interval_entries: crate::store::DEFAULT_SNAPSHOT_INTERVAL_ENTRIES,
            retained_log_entries: 100,
            max_entry_bytes: crate::store::DEFAULT_MAX_ENTRY_BYTES,
        }
    }

    fn validate(&self) -> Result<(), QuorumError> {
        self.validate_settings()?;
        if !self.voters.contains_key(&self.node_id) {
            return Err(QuorumError::Config(format!(
                "node.id {} is not in controller.quorum.voters",
                self.node_id
            )));
        }
        Ok(())
    }

    /// Checks that hold for voters and observers alike.
    fn validate_settings(&self) -> Result<(), QuorumError> {
        if self.node_id < 0 {
            return Err(QuorumError::Config(format!(
                "node.id must be non-negative, got {}",
                self.node_id
            )));
        }
        if let Some(bad) = self.voters.keys().find(|id| **id < 0) {
            return Err(QuorumError::Config(format!(
                "controller.quorum.voters has a negative node id {bad}"
            )));
        }
        if self.election_timeout_ms < 10 {
            return Err(QuorumError::Config(
                "controller.quorum.election.timeout.ms must be at least 10".to_string(),
            ));
        }
        Ok(())
    }

    /// openraft's timers for `election_timeout_ms` (T). In openraft 0.9 a voter that follows a
    /// leader starts an election only after `election_timeout_max` (its *leader lease*) plus
    /// its own election timeout (drawn once per member from `[min, max)`) pass without word
    /// from the leader, and refuses to vote while its lease runs. With max = T/2 and
    /// min = T/4 an election starts 3/4 T to T after the leader's last heartbeat — Kafka's
    /// meaning of the setting — and a voter ignores candidates for T/2 after hearing from a
    /// live leader. Heartbeats stay at T/10: openraft also bounds each AppendEntries (which
    /// includes the follower's fsync) by the heartbeat interval, and sends them on its tick
    /// (1.5 intervals), so a lease spans three heartbeats and an election needs five missed.
    /// Nothing in Quill reads under the lease (see ARCHITECTURE.md), so its length is a
    /// matter of availability, not of safety.
    fn raft_config(&self) -> Result<openraft::Config, QuorumError> {
        let config = openraft::Config {
            cluster_name: self.cluster_id.clone(),
            heartbeat_interval: (self.election_timeout_ms / 10).max(1),
            election_timeout_min: self.election_timeout_ms / 4,
            election_timeout_max: self.election_timeout_ms / 2,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(
                self.snapshot_interval_entries.max(1),
            ),
            max_in_snapshot_log_to_keep: self.retained_log_entries,
            // Chunks travel as JSON byte arrays (up to 4x); keep frames well under the limit.
            snapshot_max_chunk_size: 1024 * 1024,
            ..openraft::Config::default()
        };
        config
            .validate()
            .map_err(|error| QuorumError::Config(error.to_string()))
    }
}

/// Parses Kafka's `controller.quorum.voters`: a comma-separated list of `{id}@{host}:{port}`
/// (IPv6 hosts in brackets). Ids are non-negative and distinct; a host of `0.0.0.0` is refused
/// as not routable, as Kafka does. Returns node id -> `host:port`.
pub fn parse_voters(value: &str) -> Result<BTreeMap<i32, String>, QuorumError> {
    const NAME: &str = "controller.quorum.voters";
    let invalid = |message: String| QuorumError::Config(format!("{NAME}: {message}"));
    let mut voters = BTreeMap::new();
    for entry in value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let form = || {
            invalid(format!(
                "failed to parse {entry}; each entry should be in the form {{id}}@{{host}}:{{port}}"
            ))
        };
        let (id, endpoint) = entry.split_once('@').ok_or_else(form)?;
        let id: i32 = id.parse().ok().filter(|id| *id >= 0).ok_or_else(|| {
            invalid(format!(
                "failed to parse voter ID as a non-negative integer from {id}"
            ))
        })?;
        let (host, port) = endpoint.rsplit_once(':').ok_or_else(form)?;
        let bracketed = host.starts_with('[') && host.ends_with(']');
        if host.is_empty() || (host.contains(':') && !bracketed) {
            return Err(form());
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(form)?;
        if host == "0.0.0.0" {
            return Err(invalid(format!("host string ({host}) is not routeable")));
        }
        if voters.insert(id, format!("{host}:{port}")).is_some() {
            return Err(invalid(format!("voter id {id} appears more than once")));
        }
    }
    if voters.is_empty() {
        return Err(invalid("no voters".to_string()));
    }
    Ok(voters)
}

/// Runs blocking file work (opening the quorum's files, snapshots) on tokio's blocking pool, so
/// no runtime worker — which also carries heartbeats and elections — waits for the disk.
pub(crate) async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, QuorumError> {
    runtime::run_blocking(work)
        .await
        .map_err(|error| QuorumError::Stopped(format!("metadata file work failed: {error}")))
}

fn to_node_id(id: i32) -> NodeId {
    u64::try_from(id).unwrap_or_default()
}

fn from_node_id(id: NodeId) -> i32 {
    i32::try_from(id).unwrap_or(-1)
}

/// A running quorum member: openraft plus our storage, state machine and a network.
#[derive(Clone)]
pub struct RaftQuorum {
    raft: MetaRaft,
    node_id: i32,
    images: watch::Receiver<Arc<MetadataImage>>,
    max_entry_bytes: usize,
}

impl RaftQuorum {
    /// Opens (or creates) this member's durable state in `dir` and starts Raft. A fresh member
    /// initializes the membership to the configured voters (every voter may do so: the
    /// initial entry is identical on all of them); a member with state keeps its log's.
    pub async fn start<N>(
        config: QuorumConfig,
        fs: &Fs,
        dir: &Path,
        network: N,
    ) -> Result<RaftQuorum, QuorumError>
    where
        N: RaftNetworkFactory<MetaRaftConfig>,
    {
        config.validate()?;
        let quorum = RaftQuorum::start_member(&config, fs, dir, network).await?;
        quorum.initialize_if_fresh(&config.voters).await?;
        Ok(quorum)
    }

    /// A member that waits to be added (as a learner) by the leader instead of initializing
    /// the membership itself; tests use it to exercise snapshot installation.
    #[cfg(test)]
    pub(crate) async fn start_learner<N>(
        config: QuorumConfig,
        fs: &Fs,
        dir: &Path,
        network: N,
    ) -> Result<RaftQuorum, QuorumError>
    where
        N: RaftNetworkFactory<MetaRaftConfig>,
    {
        RaftQuorum::start_member(&config, fs, dir, network).await
    }

    async fn start_member<N>(
        config: &QuorumConfig,
        fs: &Fs,
        dir: &Path,
        network: N,
    ) -> Result<RaftQuorum, QuorumError>
    where
        N: RaftNetworkFactory<MetaRaftConfig>,
    {
        let raft_config = Arc::new(config.raft_config()?);
        // A sole voter's log is all committed (no other log can overwrite it), which lets a
        // restart on a full disk apply every entry before the election that cannot happen.
        let sole_voter = config.voters.len() == 1 && config.voters.contains_key(&config.node_id);
        let (log_store, machine) = {
            let (fs, dir) = (fs.clone(), dir.to_path_buf());
            let (cluster_id, max_entry_bytes) = (config.cluster_id.clone(), config.max_entry_bytes);
            on_blocking_pool(move || -> Result<_, QuorumError> {
                let machine = machine::StateMachine::open(&fs, &dir, &cluster_id)?;
                let log_store = log_store::LogStore::open(&fs, &dir, max_entry_bytes, sole_voter)?
                    .guarded_by(machine.durable_snapshot());
                Ok((log_store, machine))
            })
            .await??
        };
        let images = machine.subscribe();
        let raft = Raft::new(
            to_node_id(config.node_id),
            raft_config,
            network,
            log_store,
            machine,
        )
        .await
        .map_err(|fatal| QuorumError::Stopped(fatal.to_string()))?;
        Ok(RaftQuorum {
            raft,
            node_id: config.node_id,
            images,
            max_entry_bytes: config.max_entry_bytes,
        })
    }

    async fn initialize_if_fresh(&self, voters: &BTreeMap<i32, String>) -> Result<(), QuorumError> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|fatal| QuorumError::Stopped(fatal.to_string()))?;
        if initialized {
            return Ok(());
        }
        let members: BTreeMap<NodeId, BasicNode> = voters
            .iter()
            .map(|(id, address)| (to_node_id(*id), BasicNode::new(address)))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another voter's initial entry (identical) or a leader's log reached us first.
            Err(RaftError::APIError(error)) => {
                tracing::debug!(%error, "metadata quorum already initialized");
                Ok(())
            }
            Err(RaftError::Fatal(fatal)) => Err(QuorumError::Stopped(fatal.to_string())),
        }
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// True once openraft stopped this member for good (a storage error is fatal to it); its
    /// files stay valid and a new member can be started over them.
    pub fn is_stopped(&self) -> bool {
        self.raft.metrics().borrow().running_state.is_err()
    }

    /// Waits until openraft stops this member (or it is shut down).
    pub async fn wait_stopped(&self) {
        let mut metrics = self.raft.metrics();
        let _ = metrics
            .wait_for(|metrics| metrics.running_state.is_err())
            .await;
    }

    /// Waits (up to `timeout`) until a leader is known and, if this member leads, it has
    /// applied its whole log; returns the leader, or `None` (no leader in time, or stopped).
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<i32> {
        let mut metrics = self.raft.metrics();
        let me = to_node_id(self.node_id);
        // `wait_for` returns a read guard of the metrics channel, dropped at the end of this
        // statement: reading the channel again while holding it waits behind any pending
        // write, which waits for the guard (a deadlock seen at start-up).
        let reached = matches!(
            tokio::time::timeout(
                timeout,
                metrics.wait_for(|metrics| {
                    metrics.running_state.is_err()
                        || match metrics.current_leader {
                            Some(leader) if leader == me => {
                                metrics.state.is_leader()
                                    && metrics.last_applied.map(|id| id.index)
                                        >= metrics.last_log_index
                            }
                            Some(_) => true,
                            None => false,
                        }
                }),
            )
            .await,
            Ok(Ok(_))
        );
        if !reached || self.is_stopped() {
            return None;
        }
        self.leader()
    }

    /// True if `node_id` is a voter or an observer of the current membership.
    pub fn is_member(&self, node_id: i32) -> bool {
        self.voter_address(node_id).is_some()
    }

    /// The controller address recorded in the membership for voter `node_id`.
    pub fn voter_address(&self, node_id: i32) -> Option<String> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics
            .membership_config
            .membership()
            .get_node(&to_node_id(node_id))
            .map(|node| node.addr.clone())
    }

    /// The leader this member knows and the term it knows it in: what a proposal attempt was
    /// made under (see [`RaftQuorum::wait_leader_change`]).
    pub fn leader_view(&self) -> LeaderView {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        LeaderView {
            leader: metrics.current_leader.map(from_node_id),
            term: metrics.current_term,
        }
    }

    /// Waits (up to `timeout`) until a leader other than `since` is known: another node, or
    /// the same node re-elected in a later term (a leader that lost its leadership and won it
    /// back refused the attempt made under the old term; waiting for another id would wait out
    /// the whole timeout). Returns the leader then known.
    pub async fn wait_leader_change(&self, since: LeaderView, timeout: Duration) -> Option<i32> {
        let mut metrics = self.raft.metrics();
        let previous = since.leader.map(to_node_id);
        let _ = tokio::time::timeout(
            timeout,
            metrics.wait_for(|metrics| {
                metrics.running_state.is_err()
                    || (metrics.current_leader.is_some()
                        && (metrics.current_leader != previous
                            || metrics.current_term > since.term))
            }),
        )
        .await;
        self.leader()
    }

    /// Why openraft stopped this member, if it did.
    pub fn stop_reason(&self) -> Option<String> {
        match &self.raft.metrics().borrow().running_state {
            Ok(()) => None,
            Err(fatal) => Some(fatal.to_string()),
        }
    }

    /// Stops Raft (tests kill a member with this; its files stay for a restart).
    pub async fn shutdown(&self) -> Result<(), QuorumError> {
        self.raft
            .shutdown()
            .await
            .map_err(|error| QuorumError::Stopped(error.to_string()))
    }

    /// Waits until this node has applied at least `index`, or `timeout` passes.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), QuorumError> {
        let mut images = self.images.clone();
        let reached =
            tokio::time::timeout(timeout, images.wait_for(|image| image.offset >= index)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(QuorumError::Stopped("state machine gone".to_string())),
            Err(_) => Err(QuorumError::Unknown(format!(
                "index {index} not applied within {timeout:?}"
            ))),
        }
    }

    /// The underlying openraft handle, for the network server and tests inside this crate.
    pub(crate) fn raft(&self) -> &MetaRaft {
        &self.raft
    }

    fn check_size(&self, records: &[MetadataRecord]) -> Result<(), QuorumError> {
        let encoded = crate::storage::entry::encode_entry(0, records)?;
        if encoded.len() > self.max_entry_bytes {
            return Err(QuorumError::Invalid(MetaError::EntryTooLarge {
                size_bytes: encoded.len(),
                limit_bytes: self.max_entry_bytes,
            }));
        }
        Ok(())
    }
}

impl MetadataQuorum for RaftQuorum {
    async fn propose(&self, records: Vec<MetadataRecord>) -> Result<u64, QuorumError> {
        if records.is_empty() {
            return Ok(self.image().offset);
        }
        // Fail fast on what is already invalid; the state machine re-checks at apply time
        // against the image the entry really follows.
        let latest = self.image();
        apply_entry(&latest, latest.offset + 1, &records)?;
        self.check_size(&records)?;
        let written = self.raft.client_write(MetadataEntry { records }).await;
        let response = match written {
            Ok(response) => response,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                return Err(QuorumError::NotLeader {
                    leader: forward.leader_id.map(from_node_id),
                })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(error))) => {
                return Err(QuorumError::Unknown(error.to_string()))
            }
            // The member stopped (a storage error is fatal to it) while the entry was in
            // flight: it may be on disk and commit after a restart, so the outcome is unknown.
            Err(RaftError::Fatal(fatal)) => {
                return Err(QuorumError::Unknown(format!(
                    "metadata quorum stopped: {fatal}"
                )))
            }
        };
        let index = response.log_id.index;
        match response.data {
            ApplyOutcome::Applied => Ok(index),
            ApplyOutcome::Rejected {
                error_code,
                message,
            } => Err(QuorumError::Rejected {
                error_code,
                message,
            }),
        }
    }

    fn leader(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .map(from_node_id)
    }

    fn voters(&self) -> Vec<i32> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let voters: BTreeSet<i32> = metrics
            .membership_config
            .membership()
            .voter_ids()
            .map(from_node_id)
            .collect();
        voters.into_iter().collect()
    }

    fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.images.borrow())
    }

    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.clone()
    }

    fn describe(&self) -> QuorumStatus {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let matched = |id: NodeId| -> Option<u64> {
            if id == metrics.id && metrics.state.is_leader() {
                return metrics.last_log_index;
            }
            metrics
                .replication
                .as_ref()
                .and_then(|replication| replication.get(&id).copied().flatten())
                .map(|log_id| log_id.index)
        };
        let status = |id: NodeId| ReplicaStatus {
            replica_id: from_node_id(id),
            matched_index: matched(id),
        };
        QuorumStatus {
            leader_id: metrics.current_leader.map(from_node_id),
            leader_epoch: metrics.current_term,
            // The published image, not openraft's metrics (updated after the apply returns).
            applied_index: self.images.borrow().offset,
            voters: membership.voter_ids().map(status).collect(),
            observers: membership.learner_ids().map(status).collect(),
        }
    }
}

#[cfg(test)]
mod tests;
