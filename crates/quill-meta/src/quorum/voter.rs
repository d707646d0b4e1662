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
        mut config: QuorumConfig,
        network: N,
    ) -> Result<RaftQuorum, QuorumError>
    where
        N: RaftNetworkFactory<MetaRaftConfig>,
    {
        let options = StoreOptions {
            cluster_id: Some(config.cluster_id.clone()),
            ..StoreOptions::default()
        };
        let previous = MetadataStore::open_in(fs, dir, options)?;
        let stored_cluster_id = previous.cluster_id().to_string();
        let previous_offset = previous.image().offset;
        drop(previous);
        if stored_cluster_id != config.cluster_id {
            return Err(QuorumError::Config(format!(
                "{} belongs to cluster {stored_cluster_id}, but cluster.id is {}",
                dir.display(),
                config.cluster_id
            )));
        }
        if previous_offset > 0 && log_store::is_unused(fs, dir)? {
            return Err(QuorumError::Config(format!(
                "{} holds the metadata of a single-node broker; it cannot join a multi-voter quorum (start it without controller.quorum.voters)",
                dir.display()
            )));
        }
        config.cluster_id = stored_cluster_id;
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
}
