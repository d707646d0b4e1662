//! The metadata service: the only path by which cluster metadata changes.
//!
//! Architecture invariant: handlers read an immutable `Arc<MetadataImage>`; every change is a
//! batch of `MetadataRecord`s proposed through [`MetadataService::propose`] to the metadata
//! quorum (quill-meta's openraft-backed Raft log: today a one-voter quorum, so this node is
//! the active controller), which commits it durably and applies it with quill-meta's state
//! machine on every member. The caller ([`crate::state::BrokerState::change_metadata`]) then
//! reconciles the partition logs with the new image — in that order, one change at a time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quill_meta::quorum::supervisor::{Forwarding, StartMember, SupervisedQuorum};
use quill_meta::quorum::tcp::{
    Heartbeats, RaftServer, ServedMember, TcpNetworkFactory, DEFAULT_MAX_FRAME_BYTES,
};
use quill_meta::quorum::{MetadataQuorum, QuorumConfig, QuorumError, QuorumStatus, RaftQuorum};
use quill_meta::{MetaError, MetadataImage, MetadataRecord};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::BrokerConfig;

/// How long start-up waits for this node's quorum member to be ready (a one-voter quorum elects
/// itself at once unless its disk is full; start-up then goes on read-only for metadata).
const STARTUP_READY_WAIT: Duration = Duration::from_secs(10);
/// How long a proposal waits for a leader after its member restarted.
const PROPOSAL_LEADER_WAIT: Duration = Duration::from_secs(5);

/// How long asking the active controller for its view of the quorum may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a proposal forwarded to the active controller may take (commit + apply here).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the metadata service could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetadataOpenError {
    #[error("invalid cluster settings: {0}")]
    Settings(String),
    #[error("cannot listen on the controller address {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl From<QuorumError> for MetadataOpenError {
    fn from(error: QuorumError) -> Self {
        match error {
            QuorumError::Config(message) => MetadataOpenError::Settings(message),
            other => MetadataOpenError::Meta(other.into()),
        }
    }
}

/// The metadata log under the quorum, restarted in-process after storage errors.
pub struct MetadataService {
    quorum: SupervisedQuorum,
    /// The controller listener of a multi-voter quorum.
    server: Option<RaftServer>,
    node_id: i32,
    cluster_id: String,
    /// Brokers' heartbeats, recorded while this node is the active controller.
    heartbeats: Heartbeats,
    /// This broker's heartbeats to the active controller.
    heartbeat_sender: tokio::sync::Mutex<quill_meta::quorum::tcp::HeartbeatSender>,
    /// This process's incarnation id (a cluster's broker; `None` for a single node).
    incarnation_id: Option<uuid::Uuid>,
    /// Set at the start of a controlled shutdown; sent with every heartbeat from then on.
    want_shut_down: std::sync::atomic::AtomicBool,
}

impl MetadataService {
    /// Opens this node's metadata log as `config` says: a one-voter quorum in process unless
    /// `controller.quorum.voters` is set, else a voter of that quorum serving its controller
    /// listener. A voter does not wait for the quorum to have a leader (the other voters may
    /// not run yet); proposals wait, boundedly, for one.
    pub async fn open_for(config: &BrokerConfig) -> Result<MetadataService, MetadataOpenError> {
        let dir = config.data_dir.join(crate::broker::METADATA_DIR_NAME);
        let controller_listen = config
            .cluster
            .controller_listen(config.node_id)
            .map_err(MetadataOpenError::Settings)?;
        match (&config.cluster.voters, controller_listen) {
            (Some(voters), Some(listen)) => {
                MetadataService::open_member(config, &dir, voters.clone(), &listen).await
            }
            _ => Ok(MetadataService::open(&dir, config.node_id).await?),
        }
    }

    /// A voter (`process.roles=broker,controller`) or an observer (`process.roles=broker`) of a
    /// multi-node quorum, serving its controller listener.
    async fn open_member(
        config: &BrokerConfig,
        dir: &Path,
        voters: std::collections::BTreeMap<i32, String>,
        listen: &str,
    ) -> Result<MetadataService, MetadataOpenError> {
        let observer = config.cluster.broker_only;
        let fs = quill_log::Fs::default();
        let cluster_id = cluster_id_for(&fs, dir, config.cluster.cluster_id.as_deref())?;
        let listener =
            TcpListener::bind(listen)
                .await
                .map_err(|source| MetadataOpenError::Bind {
                    address: listen.to_string(),
                    source,
                })?;
        let node_id = config.node_id;
        let quorum_config = QuorumConfig {
            voters: voters.clone(),
            election_timeout_ms: config.cluster.election_timeout_ms,
            ..QuorumConfig::single_node(node_id, cluster_id.clone(), String::new())
        };
        let served = ServedMember::default();
        let start_member: StartMember = {
            let served = served.clone();
            let dir = dir.to_path_buf();
            Box::new(move || {
                let fs = fs.clone();
                let dir = dir.clone();
                let config = quorum_config.clone();
                let served = served.clone();
                Box::pin(async move {
                    let network = TcpNetworkFactory::new(
                        &config.cluster_id,
                        config.node_id,
                        DEFAULT_MAX_FRAME_BYTES,
                    );
                    let member = if observer {
                        RaftQuorum::start_cluster_observer(&fs, &dir, config, network).await?
                    } else {
                        RaftQuorum::start_cluster_voter(&fs, &dir, config, network).await?
                    };
                    served.set(&member);
                    Ok(member)
                })
            })
        };
        let heartbeats = Heartbeats::default();
        let forwarding = Forwarding {
            cluster_id: cluster_id.clone(),
            node_id,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            timeout: FORWARD_TIMEOUT,
        };
        let quorum =
            SupervisedQuorum::start(start_member, PROPOSAL_LEADER_WAIT, Some(forwarding)).await?;
        let server = RaftServer::serve_member(
            listener,
            served,
            heartbeats.clone(),
            node_id,
            &cluster_id,
            DEFAULT_MAX_FRAME_BYTES,
        )
        .map_err(|source| MetadataOpenError::Bind {
            address: listen.to_string(),
            source,
        })?;
        tracing::info!(
            controller_listener = %server.local_addr(),
            cluster_id,
            role = if observer { "observer" } else { "voter" },
            "metadata quorum member started"
        );
        if observer {
            tokio::spawn(join_as_observer(
                cluster_id.clone(),
                node_id,
                voters,
                listen.to_string(),
                quorum.clone(),
            ));
        }
        Ok(MetadataService {
            quorum,
            server: Some(server),
            node_id,
            cluster_id,
            heartbeats,
            heartbeat_sender: tokio::sync::Mutex::default(),
            incarnation_id: Some(uuid::Uuid::new_v4()),
            want_shut_down: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// True when this node is one of several voters (not a one-voter quorum in process).
    pub fn is_clustered(&self) -> bool {
        self.server.is_some()
    }

    /// The bound controller listener of a multi-voter quorum.
    pub fn controller_address(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().map(RaftServer::local_addr)
    }

    /// The active controller as this node knows it.
    pub fn leader(&self) -> Option<i32> {
        self.quorum.leader()
    }

    /// This process's incarnation id, registered with the broker (cluster only).
    pub fn incarnation_id(&self) -> Option<uuid::Uuid> {
        self.incarnation_id
    }

    /// The controller id clients are told (Metadata, DescribeCluster): the active controller
    /// when it is a live broker, else this broker. Clients send admin requests to that id and
    /// cannot reach a controller-only node (Kafka's brokers answer with a live broker too);
    /// Quill's brokers forward such changes to the active controller.
    pub fn controller_id_for_clients(&self) -> i32 {
        let image = self.image();
        match self.leader() {
            Some(leader) if image.brokers.get(&leader).is_some_and(|b| !b.fenced) => leader,
            _ => self.node_id,
        }
    }

    /// True while this node is the active controller.
    pub fn is_active_controller(&self) -> bool {
        self.quorum.leader() == Some(self.node_id)
    }

    /// Heartbeats recorded while this node is the active controller.
    pub fn heartbeats(&self) -> &Heartbeats {
        &self.heartbeats
    }

    /// From now on this broker's heartbeats ask the controller to move its leaderships away
    /// (Kafka's `WantShutDown`, the start of a controlled shutdown).
    pub fn begin_shut_down(&self) {
        self.want_shut_down
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Sends this broker's heartbeat to the active controller (recorded directly when that is
    /// this node); true if the controller recorded it.
    pub async fn send_heartbeat(&self, timeout: Duration) -> bool {
        let want_shut_down = self
            .want_shut_down
            .load(std::sync::atomic::Ordering::Acquire);
        match self.quorum.leader() {
            Some(leader) if leader == self.node_id => {
                let registered = self
                    .image()
                    .broker(self.node_id)
                    .is_some_and(|broker| broker.incarnation_id == self.incarnation_id);
                if registered {
                    self.heartbeats.record(self.node_id, want_shut_down);
                }
                registered
            }
            Some(leader) => match self.quorum.voter_address(leader) {
                Some(address) => {
                    self.heartbeat_sender
                        .lock()
                        .await
                        .send(
                            &self.cluster_id,
                            quill_meta::quorum::tcp::BrokerHeartbeat {
                                node_id: self.node_id,
                                incarnation_id: self.incarnation_id,
                                want_shut_down,
                            },
                            leader,
                            &address,
                            timeout,
                        )
                        .await
                }
                None => false,
            },
            None => false,
        }
    }

    /// Waits (bounded) until a leader is known; false if none in time.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        self.quorum.wait_ready(timeout).await
    }

    /// Opens (or creates) the metadata log under `dir` as a one-voter quorum led by `node_id`,
    /// migrating a directory written by releases before the quorum, and replays it.
    pub async fn open(dir: &Path, node_id: i32) -> Result<MetadataService, MetaError> {
        let fs = quill_log::Fs::default();
        let dir = dir.to_path_buf();
        let start_member: StartMember = Box::new(move || {
            let fs = fs.clone();
            let dir = dir.clone();
            Box::pin(async move { RaftQuorum::start_single_voter(&fs, &dir, node_id).await })
        });
        let quorum = SupervisedQuorum::start(start_member, PROPOSAL_LEADER_WAIT, None).await?;
        if !quorum.wait_ready(STARTUP_READY_WAIT).await {
            tracing::warn!(
                reason = quorum.unavailable_reason().unwrap_or_default(),
                "the metadata log cannot take changes yet (retrying in the background); serving the last applied metadata"
            );
        }
        let cluster_id = quorum.image().cluster_id.clone();
        Ok(MetadataService {
            quorum,
            server: None,
            node_id,
            cluster_id,
            heartbeats: Heartbeats::default(),
            heartbeat_sender: tokio::sync::Mutex::default(),
            incarnation_id: None,
            want_shut_down: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The current image (cheap: clones an `Arc`); everything in it is committed.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// Follows applied images.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.quorum.subscribe()
    }

    /// Commits one entry (validated again by the state machine when applied) and returns the
    /// image that includes it.
    pub async fn propose(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, MetaError> {
        let index = self.quorum.propose(records).await?;
        let image = self.image();
        debug_assert!(image.offset >= index, "proposals return once applied");
        Ok(image)
    }

    /// Commits a decision this node made as the active controller, only while it still
    /// leads (see `SupervisedQuorum::propose_as_leader`); NOT_CONTROLLER otherwise.
    pub async fn propose_as_controller(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<Arc<MetadataImage>, MetaError> {
        let index = self.quorum.propose_as_leader(records).await?;
        let image = self.image();
        debug_assert!(image.offset >= index, "proposals return once applied");
        Ok(image)
    }

    /// The quorum as this node sees it.
    pub fn describe(&self) -> QuorumStatus {
        self.quorum.describe()
    }

    /// The quorum as its leader sees it (DescribeQuorum): this node's view if it leads, else
    /// the leader's, asked over the controller listener as a Kafka broker forwards
    /// DescribeQuorum to the active controller.
    pub async fn describe_at_leader(&self) -> Result<QuorumStatus, QuorumError> {
        self.quorum.describe_at_leader(DESCRIBE_TIMEOUT).await
    }

    /// Stops the quorum member and the controller listener (at shutdown, after the last change).
    pub async fn shutdown(&self) {
        if let Some(server) = &self.server {
            server.shutdown();
        }
        self.quorum.shutdown().await;
    }
}

/// Backoff between attempts of a broker-only node to join the quorum as an observer.
const JOIN_RETRY_FIRST: Duration = Duration::from_millis(100);
const JOIN_RETRY_MAX: Duration = Duration::from_secs(2);

/// A broker-only node asks the voters, until the leader agrees, to make it an observer (the
/// leader then replicates the metadata log to `own_address`). Already an observer (after a
/// restart): the first answer says so. Ends once joined.
async fn join_as_observer(
    cluster_id: String,
    node_id: i32,
    voters: std::collections::BTreeMap<i32, String>,
    own_address: String,
    quorum: SupervisedQuorum,
) {
    let mut backoff = JOIN_RETRY_FIRST;
    let mut next: Option<i32> = None;
    loop {
        let candidates: Vec<(i32, String)> = match next
            .take()
            .and_then(|id| voters.get(&id).map(|a| (id, a.clone())))
        {
            Some(leader) => vec![leader],
            None => voters
                .iter()
                .map(|(id, address)| (*id, address.clone()))
                .collect(),
        };
        for (voter, address) in candidates {
            let asked = quill_meta::quorum::tcp::request_join(
                &cluster_id,
                node_id,
                voter,
                &address,
                &own_address,
                FORWARD_TIMEOUT,
            )
            .await;
            match asked {
                Ok(()) => {
                    tracing::info!(node_id, "joined the metadata quorum as an observer");
                    return;
                }
                Err(QuorumError::NotLeader {
                    leader: Some(leader),
                }) => {
                    next = Some(leader);
                    break;
                }
                Err(QuorumError::Config(message)) => {
                    tracing::error!(%message, "cannot join the metadata quorum as an observer");
                    return;
                }
                Err(error) => tracing::debug!(%error, voter, "join not accepted yet"),
            }
        }
        if quorum.leader().is_some() && quorum.voter_address(node_id).is_some() {
            return; // replicated to already (joined before a restart)
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(JOIN_RETRY_MAX);
    }
}

/// The cluster id of a voter: `cluster.id` formats a fresh directory and must match an existing
/// one; an existing directory needs no setting.
fn cluster_id_for(
    fs: &quill_log::Fs,
    dir: &Path,
    configured: Option<&str>,
) -> Result<String, MetadataOpenError> {
    let properties = dir.join(quill_meta::storage::PROPERTIES_FILE);
    if fs.exists(&properties) {
        let stored = quill_meta::storage::properties::MetaProperties::read(fs, &properties)?;
        return match configured {
            Some(configured) if configured != stored.cluster_id => {
                Err(MetadataOpenError::Settings(format!(
                    "{} belongs to cluster {}, but cluster.id is {configured}",
                    dir.display(),
                    stored.cluster_id
                )))
            }
            _ => Ok(stored.cluster_id),
        };
    }
    configured.map(str::to_string).ok_or_else(|| {
        MetadataOpenError::Settings(
            "a new node of a multi-voter quorum needs cluster.id, the same on every voter (any id, e.g. from `quill cluster new-id`)".to_string(),
        )
    })
}
