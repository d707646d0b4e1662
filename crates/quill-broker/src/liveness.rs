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
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::BrokerState;

/// How long a controlled shutdown waits for its fencing to commit.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Heartbeats, and on the active controller the fencing decisions, until shutdown.
pub async fn run(state: Arc<BrokerState>) {
    let settings = &state.config.cluster;
    let interval = Duration::from_millis(settings.heartbeat_interval_ms);
    let session = Duration::from_millis(settings.session_timeout_ms);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = state.shutdown.clone();
    // When this node last became the active controller (`None` while it is not).
    let mut leading_since: Option<Instant> = None;
    // When this controller first saw each fenced broker fenced: only a heartbeat after that
    // unfences it (one sent just before a controlled shutdown must not).
    let mut fenced_seen: HashMap<i32, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        state.metadata.send_heartbeat(interval).await;
        if !state.metadata.is_active_controller() {
            leading_since = None;
            fenced_seen.clear();
            continue;
        }
        let since = *leading_since.get_or_insert_with(|| {
            // Heartbeats recorded under an earlier term say nothing about now.
            state.metadata.heartbeats().reset([]);
            Instant::now()
        });
        // This node's own heartbeat was recorded by `send_heartbeat` above, and only if the
        // registration is this process's: restarted as the controller, its previous
        // incarnation's registration must still expire before this one can register.
        check_sessions(&state, since, session, &mut fenced_seen).await;
    }
}

/// On the active controller: fences brokers whose session expired, unfences those heard from.
async fn check_sessions(
    state: &BrokerState,
    leading_since: Instant,
    session: Duration,
    fenced_seen: &mut HashMap<i32, Instant>,
) {
    let image = state.metadata.image();
    fenced_seen.retain(|node_id, _| image.brokers.get(node_id).is_some_and(|b| b.fenced));
    let heartbeats = state.metadata.heartbeats();
    for broker in image.brokers.values() {
        let last_heard = heartbeats.last(broker.node_id);
        let records = if broker.fenced {
            let seen = *fenced_seen
                .entry(broker.node_id)
                .or_insert_with(Instant::now);
            if last_heard.is_none_or(|heard| heard <= seen) {
                continue;
            }
            quill_meta::plan_unfence_broker(&image, broker.node_id)
        } else {
            let session_start = last_heard.map_or(leading_since, |heard| heard.max(leading_since));
            if session_start.elapsed() < session {
                continue;
            }
            quill_meta::plan_fence_broker(&image, broker.node_id)
        };
        if records.is_empty() {
            continue;
        }
        let fencing = !broker.fenced;
        // Committed only while this node still leads: a controller cut off from the others
        // sees every session expire, and its decision must not survive its term.
        match state.change_metadata_as_controller(records).await {
            Ok(_) if fencing => tracing::warn!(
                node_id = broker.node_id,
                session_timeout_ms = session.as_millis(),
                "fenced a broker not heard from within its session"
            ),
            Ok(_) => tracing::info!(
                node_id = broker.node_id,
                "unfenced a broker heard from again"
            ),
            Err(error) => {
                tracing::debug!(%error, node_id = broker.node_id, "fencing change not committed")
            }
        }
        // One change per round: the next round plans from the image this one produced.
        return;
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
