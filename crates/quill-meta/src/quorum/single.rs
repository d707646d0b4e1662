//! Today's single-node broker as a one-voter quorum, opened over a metadata directory that the
//! previous release (the plain [`MetadataStore`]) may have written.
//!
//! Migration: the first time the quorum opens a directory whose `metadata.log` /
//! `metadata.snapshot` hold entries, their replayed image becomes the quorum's first snapshot
//! (`quorum.snapshot` at the same index, membership = this voter) and the log is marked purged
//! up to it. The old files are left as they were and never written again (a later downgrade
//! would not see newer changes). A crash during migration redoes it: until this voter has voted
//! (`quorum.vote`, written before it can append anything) nothing but the migration itself has
//! been written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use openraft::error::{NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{
    BasicNode, CommittedLeaderId, LogId, Membership, RaftNetwork, RaftNetworkFactory, SnapshotMeta,
    StoredMembership,
};
use quill_fs::Fs;

use super::{log_store, machine, to_node_id, MetaRaftConfig, NodeId, QuorumConfig, QuorumError};
use super::{MetadataQuorum, RaftQuorum};
use crate::{MetadataStore, StoreOptions};

/// The address recorded for a voter that has no controller listener (a one-voter quorum).
pub const IN_PROCESS_ADDRESS: &str = "in-process";

#[derive(Debug, thiserror::Error)]
#[error("this metadata quorum has no other voters")]
struct NoPeersError;

/// The network of a one-voter quorum: there is no one to talk to. Raft never calls it while
/// the membership is this voter alone; if it did, every message fails as unreachable.
pub struct NoPeers;

impl RaftNetworkFactory<MetaRaftConfig> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: NodeId, _node: &BasicNode) -> NoPeers {
        NoPeers
    }
}

impl RaftNetwork<MetaRaftConfig> for NoPeers {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<MetaRaftConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(RPCError::Unreachable(Unreachable::new(&NoPeersError)))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<MetaRaftConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, openraft::error::InstallSnapshotError>>,
    > {
        Err(RPCError::Network(NetworkError::new(&NoPeersError)))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(RPCError::Unreachable(Unreachable::new(&NoPeersError)))
    }
}

impl RaftQuorum {
    /// Opens `dir` as a one-voter quorum led by `node_id`, migrating a directory written by the
    /// plain `MetadataStore` (see the module doc), and waits (up to `ready_timeout`) until this
    /// voter leads, so proposals can be made at once.
    pub async fn open_single_voter(
        fs: &Fs,
        dir: &Path,
        node_id: i32,
        ready_timeout: Duration,
    ) -> Result<RaftQuorum, QuorumError> {
        let quorum = RaftQuorum::start_single_voter(fs, dir, node_id).await?;
        if !quorum.wait_leading(ready_timeout).await {
            let _ = quorum.shutdown().await;
            return Err(QuorumError::Stopped(format!(
                "the one-voter metadata quorum did not elect node {node_id} within {ready_timeout:?}"
            )));
        }
        Ok(quorum)
    }

    /// Opens `dir` as a one-voter quorum (migrating as [`Self::open_single_voter`] does) and
    /// asks it to elect itself, without waiting for the election: on a full disk the vote
    /// cannot be written and the member stops, while its image (every entry in the log: a sole
    /// voter's log is all committed) stays readable.
    pub async fn start_single_voter(
        fs: &Fs,
        dir: &Path,
        node_id: i32,
    ) -> Result<RaftQuorum, QuorumError> {
        let (cluster_id, previous_image) = {
            let (fs, dir) = (fs.clone(), dir.to_path_buf());
            super::on_blocking_pool(move || prepare_single_voter_dir(&fs, &dir, node_id)).await??
        };
        let config = QuorumConfig::single_node(node_id, cluster_id, IN_PROCESS_ADDRESS.to_string());
        let quorum = RaftQuorum::start(config, fs, dir, NoPeers).await?;
        // A one-voter quorum has no election to wait for: ask for it now.
        quorum
            .raft
            .trigger()
            .elect()
            .await
            .map_err(|fatal| QuorumError::Stopped(fatal.to_string()))?;
        debug_assert!(quorum.image().offset >= previous_image.offset);
        Ok(quorum)
    }

    /// Waits (up to `timeout`) until this member leads and has applied its whole log; false if
    /// it did not (or stopped).
    pub async fn wait_leading(&self, timeout: Duration) -> bool {
        self.wait_for_leader(timeout).await == Some(self.node_id)
    }
}

/// Opens `dir` for a one-voter quorum (blocking file work): creates meta.properties (the
/// cluster id) on a fresh directory, repairs a torn tail of an old log, replays what the
/// previous release wrote and migrates it if the quorum has not started yet. Returns the
/// cluster id and the previous release's image.
fn prepare_single_voter_dir(
    fs: &Fs,
    dir: &Path,
    node_id: i32,
) -> Result<(String, std::sync::Arc<crate::MetadataImage>), QuorumError> {
    let previous = MetadataStore::open_in(fs, dir, StoreOptions::default())?;
    let cluster_id = previous.cluster_id().to_string();
    let previous_image = previous.image();
    drop(previous);
    QuorumConfig::single_node(node_id, cluster_id.clone(), IN_PROCESS_ADDRESS.to_string())
        .validate()?;
    if previous_image.offset > 0 && log_store::is_unused(fs, dir)? {
        migrate(fs, dir, node_id, &previous_image)?;
    }
    Ok((cluster_id, previous_image))
}

/// Makes the previous release's replayed image the quorum's first snapshot (see the module doc).
fn migrate(
    fs: &Fs,
    dir: &Path,
    node_id: i32,
    previous_image: &crate::MetadataImage,
) -> Result<(), QuorumError> {
    let voters = BTreeMap::from([(to_node_id(node_id), BasicNode::new(IN_PROCESS_ADDRESS))]);
    let log_id = LogId::new(
        CommittedLeaderId::new(0, to_node_id(node_id)),
        previous_image.offset,
    );
    let membership = Membership::new(
        vec![voters.keys().copied().collect::<BTreeSet<_>>()],
        voters,
    );
    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: StoredMembership::new(Some(log_id), membership),
        snapshot_id: format!("migrated-{}", previous_image.offset),
    };
    machine::write_snapshot(fs, dir, meta, previous_image)?;
    log_store::write_purged(fs, dir, &log_id)?;
    tracing::info!(
        dir = %dir.display(),
        offset = previous_image.offset,
        "metadata log migrated to a one-voter quorum"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetadataRecord;

    const READY: Duration = Duration::from_secs(30);

    fn register(node_id: i32) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            node_id,
            host: format!("h{node_id}"),
            port: 9092,
            rack: None,
            incarnation_id: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_directory_of_the_previous_release_opens_without_loss() {
        let temp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let mut store = MetadataStore::open(temp.path()).unwrap();
        store.append(vec![register(1)]).unwrap();
        store.snapshot().unwrap();
        store.append(vec![register(2)]).unwrap();
        let old_image = store.image();
        drop(store);

        let quorum = RaftQuorum::open_single_voter(&fs, temp.path(), 1, READY)
            .await
            .unwrap();
        let image = quorum.image();
        assert_eq!(image.brokers, old_image.brokers);
        assert_eq!(image.cluster_id, old_image.cluster_id);
        assert!(
            image.offset > old_image.offset,
            "the new term's entry follows the migrated ones"
        );
        assert_eq!(quorum.voters(), vec![1]);
        assert_eq!(quorum.leader(), Some(1));
        let index = quorum.propose(vec![register(3)]).await.unwrap();
        quorum.shutdown().await.unwrap();

        // Reopening uses the quorum's files, not a second migration.
        let quorum = RaftQuorum::open_single_voter(&fs, temp.path(), 1, READY)
            .await
            .unwrap();
        let image = quorum.image();
        assert!(image.offset >= index);
        assert_eq!(
            image.brokers.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        quorum.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fresh_directory_is_a_one_voter_quorum() {
        let temp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let quorum = RaftQuorum::open_single_voter(&fs, temp.path(), 0, READY)
            .await
            .unwrap();
        let index = quorum.propose(vec![register(0)]).await.unwrap();
        assert_eq!(quorum.image().offset, index);
        let cluster_id = quorum.image().cluster_id.clone();
        quorum.shutdown().await.unwrap();
        let quorum = RaftQuorum::open_single_voter(&fs, temp.path(), 0, READY)
            .await
            .unwrap();
        assert_eq!(quorum.image().cluster_id, cluster_id);
        assert!(quorum.image().brokers.contains_key(&0));
        quorum.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migration_interrupted_by_power_loss_is_redone() {
        use quill_fs::sim::{CrashMode, SimDisk};
        let dir = Path::new("/data/__cluster_metadata");
        for crash_after in 0..8u64 {
            let disk = SimDisk::new();
            let fs = disk.mount();
            // The data dir exists durably (MetadataStore syncs only the directory it creates in).
            fs.create_dir_all(Path::new("/data")).unwrap();
            fs.sync_dir(Path::new("/")).unwrap();
            let mut store = MetadataStore::open_in(&fs, dir, StoreOptions::default()).unwrap();
            store.append(vec![register(1)]).unwrap();
            store.append(vec![register(2)]).unwrap();
            drop(store);
            disk.power_loss_after(crash_after, CrashMode::Partial { seed: crash_after });
            if let Ok(quorum) = RaftQuorum::open_single_voter(&fs, dir, 1, READY).await {
                let _ = quorum.shutdown().await;
            }
            if disk.crash_pending() {
                disk.power_loss(CrashMode::Partial { seed: crash_after });
            }
            disk.kill_process();
            let fs = disk.mount();
            let quorum = RaftQuorum::open_single_voter(&fs, dir, 1, READY)
                .await
                .unwrap();
            let brokers: Vec<i32> = quorum.image().brokers.keys().copied().collect();
            assert_eq!(
                brokers,
                vec![1, 2],
                "crash after {crash_after} mutating calls"
            );
            quorum.shutdown().await.unwrap();
        }
    }
}
