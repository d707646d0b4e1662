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
    RaftServer, ServedMember, TcpNetworkFactory, DEFAULT_MAX_FRAME_BYTES,
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
                MetadataService::open_voter(config, &dir, voters.clone(), &listen).await
            }
            _ => Ok(MetadataService::open(&dir, config.node_id).await?),
        }
    }

    async fn open_voter(
        config: &BrokerConfig,
        dir: &Path,
        voters: std::collections::BTreeMap<i32, String>,
        listen: &str,
    ) -> Result<MetadataService, MetadataOpenError> {
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
            voters,
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
                    let member =
                        RaftQuorum::start_cluster_voter(&fs, &dir, config, network).await?;
                    served.set(&member);
                    Ok(member)
                })
            })
        };
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
            "metadata quorum voter started"
        );
        Ok(MetadataService {
            quorum,
            server: Some(server),
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
        Ok(MetadataService {
            quorum,
            server: None,
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
