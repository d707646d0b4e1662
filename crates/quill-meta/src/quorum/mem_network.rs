//! An in-process network between quorum members, with faults: isolated nodes (partitions),
//! message loss (before or after the receiver handled it) and delay, drawn from a seeded
//! generator. Every failure looks like a host that does not answer: the call waits out the
//! RPC's timeout, then fails as a network error (openraft retries on its next heartbeat). On a
//! multi-threaded runtime the interleaving still varies between runs; the simulation
//! (`simulation.rs`) runs it on one thread with a paused clock, where a seed replays a run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};

use super::{MetaRaft, MetaRaftConfig, NodeId};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct LinkDown(String);

/// What happens to one message.
enum Fate {
    Deliver {
        delay: Duration,
    },
    /// Lost before the receiver saw it.
    DropRequest,
    /// The receiver handled it, and the answer was lost.
    DropResponse,
}

#[derive(Default)]
struct RouterState {
    nodes: BTreeMap<NodeId, MetaRaft>,
    isolated: BTreeSet<NodeId>,
    loss_per_mille: u64,
    max_delay_ms: u64,
    rng_state: u64,
}

impl RouterState {
    /// xorshift64*: tiny, seeded, good enough to scatter faults.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng_state.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng_state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fate(&mut self) -> Fate {
        if self.loss_per_mille > 0 && self.next_random() % 1000 < self.loss_per_mille {
            return if self.next_random().is_multiple_of(2) {
                Fate::DropRequest
            } else {
                Fate::DropResponse
            };
        }
        let delay_ms = match self.max_delay_ms {
            0 => 0,
            max => self.next_random() % (max + 1),
        };
        Fate::Deliver {
            delay: Duration::from_millis(delay_ms),
        }
    }
}

/// The shared "wire": members register their Raft handle; tests cut and heal links.
#[derive(Clone, Default)]
pub struct MemRouter {
    state: Arc<Mutex<RouterState>>,
}

impl MemRouter {
    pub fn new() -> MemRouter {
        MemRouter::default()
    }

    fn lock(&self) -> MutexGuard<'_, RouterState> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The network factory for member `source`.
    pub fn network_for(&self, source: i32) -> MemNetworkFactory {
        MemNetworkFactory {
            router: self.clone(),
            source: super::to_node_id(source),
        }
    }

    pub fn register(&self, node_id: i32, raft: MetaRaft) {
        self.lock().nodes.insert(super::to_node_id(node_id), raft);
    }

    /// The member is gone (killed): every message to it fails.
    pub fn unregister(&self, node_id: i32) {
        self.lock().nodes.remove(&super::to_node_id(node_id));
    }

    /// Cuts every link to and from `node_id`.
    pub fn isolate(&self, node_id: i32) {
        self.lock().isolated.insert(super::to_node_id(node_id));
    }

    pub fn heal_all(&self) {
        self.lock().isolated.clear();
    }

    /// Loses `loss_per_mille`/1000 of messages and delays the rest by up to `max_delay_ms`,
    /// drawing from a generator seeded with `seed`.
    pub fn set_faults(&self, seed: u64, loss_per_mille: u64, max_delay_ms: u64) {
        let mut state = self.lock();
        state.rng_state = seed;
        state.loss_per_mille = loss_per_mille.min(1000);
        state.max_delay_ms = max_delay_ms;
    }

    fn route(&self, source: NodeId, target: NodeId) -> Result<(MetaRaft, Fate), LinkDown> {
        let mut state = self.lock();
        if state.isolated.contains(&source) || state.isolated.contains(&target) {
            return Err(LinkDown(format!("link {source} -> {target} is cut")));
        }
        let Some(raft) = state.nodes.get(&target).cloned() else {
            return Err(LinkDown(format!("node {target} is down")));
        };
        Ok((raft, state.fate()))
    }

    /// Routes one call through the fault model: delay, loss of the request or of the answer.
    async fn call<T, E, F, Fut>(
        &self,
        source: NodeId,
        target: NodeId,
        option: &RPCOption,
        handle: F,
    ) -> Result<T, RPCError<NodeId, BasicNode, E>>
    where
        E: std::error::Error,
        F: FnOnce(MetaRaft) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        // No answer: the caller waits out its timeout.
        let unanswered = |down: LinkDown| async move {
            tokio::time::sleep(option.hard_ttl()).await;
            Err(RPCError::Network(NetworkError::new(&down)))
        };
        let (raft, fate) = match self.route(source, target) {
            Ok(routed) => routed,
            Err(down) => return unanswered(down).await,
        };
        let lost = || LinkDown(format!("message {source} -> {target} lost"));
        match fate {
            Fate::DropRequest => unanswered(lost()).await,
            Fate::DropResponse => {
                let _ = handle(raft).await;
                unanswered(lost()).await
            }
            Fate::Deliver { delay } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                handle(raft)
                    .await
                    .map_err(|error| RPCError::RemoteError(RemoteError::new(target, error)))
            }
        }
    }
}

pub struct MemNetworkFactory {
    router: MemRouter,
    source: NodeId,
}

impl RaftNetworkFactory<MetaRaftConfig> for MemNetworkFactory {
    type Network = MemNetwork;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> MemNetwork {
        MemNetwork {
            router: self.router.clone(),
            source: self.source,
            target,
        }
    }
}

pub struct MemNetwork {
    router: MemRouter,
    source: NodeId,
    target: NodeId,
}

impl RaftNetwork<MetaRaftConfig> for MemNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<MetaRaftConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.router
            .call(self.source, self.target, &option, |raft| async move {
                raft.append_entries(rpc).await
            })
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<MetaRaftConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.router
            .call(self.source, self.target, &option, |raft| async move {
                raft.install_snapshot(rpc).await
            })
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.router
            .call(self.source, self.target, &option, |raft| async move {
                raft.vote(rpc).await
            })
            .await
    }
}
