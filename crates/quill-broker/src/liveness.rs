//! Broker liveness in a cluster, as KRaft does it: every broker heartbeats to the active
//! controller every `broker.heartbeat.interval.ms`; the active controller fences a broker it has
//! not heard from for `broker.session.timeout.ms` (it leaves Metadata, and the partitions it
//! leads lose their leader — with one replica there is nobody else to elect) and unfences it
//! when it heartbeats again (its partitions get their leader back). A broker shutting down
//! cleanly fences itself first (Kafka's controlled shutdown), so clients stop using it at once.
//!
//! Fencing is a metadata change like any other (`FenceBroker` / `UnfenceBroker` plus
//! `SetPartitionLeader` records, planned by quill-meta): every broker learns it from the log.
//! A new active controller starts every broker's session afresh, so a change of controller never
//! fences a live broker.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quill_meta::{MetaError, MetadataImage, MetadataRecord};

use crate::config::ClusterSettings;
use crate::metadata::MetadataService;
use crate::state::BrokerState;

/// How long a controlled shutdown waits for its fencing to commit.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Heartbeats, and on the active controller the fencing decisions, until shutdown.
pub async fn run(state: Arc<BrokerState>) {
    let settings = &state.config.cluster;
    let interval = Duration::from_millis(settings.heartbeat_interval_ms);
    let mut sessions = Sessions::new(Duration::from_millis(settings.session_timeout_ms));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        // This node's own heartbeat is recorded by `send_heartbeat` when it is the active
        // controller, and only if the registration is this process's: restarted as the
        // controller, its previous incarnation's registration must still expire before this
        // one can register.
        state.metadata.send_heartbeat(interval).await;
        sessions
            .round(&state.metadata, |records| state.change_metadata(records))
            .await;
    }
}

/// A controller-only node's part (`process.roles=controller`): it is no broker and sends no
/// heartbeat, but while it is the active controller it fences and unfences the brokers.
pub async fn run_controller(
    metadata: Arc<MetadataService>,
    settings: ClusterSettings,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut sessions = Sessions::new(Duration::from_millis(settings.session_timeout_ms));
    let mut ticker = tokio::time::interval(Duration::from_millis(settings.heartbeat_interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        // Fencing records create no partitions: proposed as they are.
        sessions
            .round(&metadata, |records| metadata.propose(records))
            .await;
    }
}

/// The active controller's view of the brokers' sessions.
struct Sessions {
    session: Duration,
    /// When this node last became the active controller (`None` while it is not).
    leading_since: Option<Instant>,
    /// When this controller first saw each fenced broker fenced: only a heartbeat after that
    /// unfences it (one sent just before a controlled shutdown must not).
    fenced_seen: HashMap<i32, Instant>,
}

impl Sessions {
    fn new(session: Duration) -> Sessions {
        Sessions {
            session,
            leading_since: None,
            fenced_seen: HashMap::new(),
        }
    }

    /// One round: nothing unless this node is the active controller; then at most one fencing
    /// change, made with `change`.
    async fn round<F, Fut>(&mut self, metadata: &MetadataService, change: F)
    where
        F: FnOnce(Vec<MetadataRecord>) -> Fut,
        Fut: Future<Output = Result<Arc<MetadataImage>, MetaError>>,
    {
        if !metadata.is_active_controller() {
            self.leading_since = None;
            self.fenced_seen.clear();
            return;
        }
        let since = *self.leading_since.get_or_insert_with(|| {
            // Heartbeats recorded under an earlier term say nothing about now.
            metadata.heartbeats().reset([]);
            Instant::now()
        });
        let Some((records, node_id, fencing)) = self.next_change(metadata, since) else {
            return;
        };
        match change(records).await {
            Ok(_) if fencing => tracing::warn!(
                node_id,
                session_timeout_ms = self.session.as_millis(),
                "fenced a broker not heard from within its session"
            ),
            Ok(_) => tracing::info!(node_id, "unfenced a broker heard from again"),
            Err(error) => tracing::debug!(%error, node_id, "fencing change not committed"),
        }
    }

    /// The first fencing change due: (records, broker, whether it fences). One change per
    /// round: the next round plans from the image this one produced.
    fn next_change(
        &mut self,
        metadata: &MetadataService,
        leading_since: Instant,
    ) -> Option<(Vec<MetadataRecord>, i32, bool)> {
        let image = metadata.image();
        self.fenced_seen
            .retain(|node_id, _| image.brokers.get(node_id).is_some_and(|b| b.fenced));
        let heartbeats = metadata.heartbeats();
        for broker in image.brokers.values() {
            let last_heard = heartbeats.last(broker.node_id);
            let records = if broker.fenced {
                let seen = *self
                    .fenced_seen
                    .entry(broker.node_id)
                    .or_insert_with(Instant::now);
                if last_heard.is_none_or(|heard| heard <= seen) {
                    continue;
                }
                quill_meta::plan_unfence_broker(&image, broker.node_id)
            } else {
                let session_start =
                    last_heard.map_or(leading_since, |heard| heard.max(leading_since));
                if session_start.elapsed() < self.session {
                    continue;
                }
                quill_meta::plan_fence_broker(&image, broker.node_id)
            };
            if !records.is_empty() {
                return Some((records, broker.node_id, !broker.fenced));
            }
        }
        None
    }
}

/// Kafka's controlled shutdown, for a broker of a cluster: fence this broker before it stops
/// serving, so clients learn at once that its partitions have no leader. Bounded: a broker
/// that cannot reach the quorum shuts down anyway (its session then expires).
pub async fn controlled_shutdown(state: &BrokerState) {
    let records = quill_meta::plan_fence_broker(&state.metadata.image(), state.config.node_id);
    if records.is_empty() {
        return;
    }
    match tokio::time::timeout(CONTROLLED_SHUTDOWN_TIMEOUT, state.change_metadata(records)).await {
        Ok(Ok(_)) => tracing::info!("controlled shutdown: this broker is fenced"),
        Ok(Err(error)) => tracing::warn!(%error, "controlled shutdown could not fence this broker"),
        Err(_) => tracing::warn!("controlled shutdown timed out; the broker's session will expire"),
    }
}
