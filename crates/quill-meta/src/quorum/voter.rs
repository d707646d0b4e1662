//! A member of a multi-voter quorum (`controller.quorum.voters` lists several nodes), opened
//! over this node's metadata directory.
//!
//! Every voter of a new cluster must be formatted with the same cluster id (Kafka's
//! `kafka-storage.sh format --cluster-id`; Quill's `cluster.id` setting, used only for a fresh
//! directory) and initializes the same membership; a directory of another cluster, one written
//! as a single node, or one whose membership differs from the configured voters refuses to
//! start (changing the voter set, KIP-853, is not supported yet).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use openraft::RaftNetworkFactory;
use quill_fs::Fs;

use super::{log_store, MetaRaftConfig, MetadataQuorum, QuorumConfig, QuorumError, RaftQuorum};
use crate::{MetadataStore, StoreOptions};

/// How long a fresh member waits for its initial membership to show in its own state.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(5);

impl RaftQuorum {
    /// Starts this node's member of the quorum `config.voters` (`config.cluster_id` is the
    /// cluster id a fresh directory is formatted with; an existing one must match it).
    pub async fn start_cluster_voter<N>(
        fs: &Fs,
        dir: &Path,
        config: QuorumConfig,
        network: N,
    ) -> Result<RaftQuorum, QuorumError>
    where
        N: RaftNetworkFactory<MetaRaftConfig>,
    {
        check_cluster_dir(fs, dir, &config.cluster_id).await?;
        let expected: BTreeSet<i32> = config.voters.keys().copied().collect();
        let quorum = RaftQuorum::start(config, fs, dir, network).await?;
        let mut metrics = quorum.raft().metrics();
        let _ = tokio::time::timeout(
            MEMBERSHIP_WAIT,
            metrics
                .wait_for(|metrics| metrics.membership_config.membership().voter_ids().count() > 0),
        )
        .await;
        let actual: BTreeSet<i32> = quorum.voters().into_iter().collect();
        if actual != expected {
            let _ = quorum.shutdown().await;
            return Err(QuorumError::Config(format!(
                "the metadata log's voters are {actual:?} but controller.quorum.voters lists {expected:?}; changing the voter set is not supported yet"
            )));
        }
        Ok(quorum)
    }

    /// Starts this node as an observer (Raft learner) of the quorum `config.voters`, which it
    /// is not part of: a broker-only node (`process.roles=broker`). It applies the metadata log
    /// the leader replicates to it once it has joined ([`RaftQuorum::add_observer`] on the
    /// leader, asked by the caller); it never votes or initializes a membership.
    pub async fn start_cluster_observer<N>(
        fs: &Fs,
        dir: &Path,
        config: QuorumConfig,
        network: N,
    ) -> Result<RaftQuorum, QuorumError>
    where
        N: RaftNetworkFactory<MetaRaftConfig>,
    {
        if config.voters.contains_key(&config.node_id) {
            return Err(QuorumError::Config(format!(
                "node.id {} is a voter in controller.quorum.voters: its process.roles must include controller",
                config.node_id
            )));
        }
        config.validate_settings()?;
        check_cluster_dir(fs, dir, &config.cluster_id).await?;
        RaftQuorum::start_member(&config, fs, dir, network).await
    }

    /// On the leader: makes `node_id` (at controller address `address`) an observer of the
    /// metadata log. Already a member: nothing to do; a voter id: refused.
    pub async fn add_observer(&self, node_id: i32, address: &str) -> Result<(), QuorumError> {
        if self.voters().contains(&node_id) {
            return Err(QuorumError::Config(format!(
                "node {node_id} is a voter; it cannot join as an observer"
            )));
        }
        match self.voter_address(node_id) {
            Some(existing) if existing == address => return Ok(()),
            // Another process claiming this id (or a moved observer): the log keeps going to
            // the address the observer joined with.
            Some(existing) => {
                return Err(QuorumError::Config(format!(
                    "node {node_id} is already an observer at {existing}; an observer's controller address cannot change yet"
                )))
            }
            None => {}
        }
        let added = self
            .raft()
            .add_learner(
                super::to_node_id(node_id),
                openraft::BasicNode::new(address),
                false,
            )
            .await;
        match added {
            Ok(_) => Ok(()),
            Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(forward),
            )) => Err(QuorumError::NotLeader {
                leader: forward.leader_id.map(super::from_node_id),
            }),
            Err(error) => Err(QuorumError::Unknown(error.to_string())),
        }
    }
}

/// Formats a fresh metadata directory with `cluster_id`, or checks that an existing one belongs
/// to it and was not written as a single node (that log cannot join a quorum); file work, so on
/// the blocking pool.
async fn check_cluster_dir(fs: &Fs, dir: &Path, cluster_id: &str) -> Result<(), QuorumError> {
    let (fs, dir, cluster_id) = (fs.clone(), dir.to_path_buf(), cluster_id.to_string());
    super::on_blocking_pool(move || check_cluster_dir_now(&fs, &dir, &cluster_id)).await?
}

fn check_cluster_dir_now(fs: &Fs, dir: &Path, cluster_id: &str) -> Result<(), QuorumError> {
    let options = StoreOptions {
        cluster_id: Some(cluster_id.to_string()),
        ..StoreOptions::default()
    };
    let previous = MetadataStore::open_in(fs, dir, options)?;
    let stored_cluster_id = previous.cluster_id().to_string();
    let previous_offset = previous.image().offset;
    drop(previous);
    if stored_cluster_id != cluster_id {
        return Err(QuorumError::Config(format!(
            "{} belongs to cluster {stored_cluster_id}, but cluster.id is {cluster_id}",
            dir.display()
        )));
    }
    if previous_offset > 0 && log_store::is_unused(fs, dir)? {
        return Err(QuorumError::Config(format!(
            "{} holds the metadata of a single-node broker; it cannot join a multi-voter quorum (start it without controller.quorum.voters)",
            dir.display()
        )));
    }
    Ok(())
}
