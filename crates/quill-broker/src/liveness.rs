//! Broker liveness in a cluster, as KRaft does it: every broker heartbeats to the active
//! controller every `broker.heartbeat.interval.ms`; the active controller fences a broker it has
//! not heard from for `broker.session.timeout.ms` (it leaves Metadata; every partition it leads
//! elects a new leader from the rest of its ISR, and it leaves the ISRs — except where it is the
//! last member, which then has no leader until it returns) and unfences it when it heartbeats
//! again (it leads the leaderless partitions whose ISR holds it).
//!
//! Controlled shutdown (SIGTERM): the broker's heartbeats ask for it (`want_shut_down`); the
//! controller marks it shutting down and moves its leaderships to other ISR members in one
//! entry; the broker waits, at most `broker.session.timeout.ms`, until it leads no partition
//! that another live ISR member could lead, then fences itself, so clients stop using it.
//!
//! Every step is a metadata change planned by quill-meta (`partition_change`) and validated by
//! its state machine; elections honour `unclean.leader.election.enable` (the topic's, else the
//! cluster-wide dynamic default, else the controller's static setting). A new active
//! controller starts every broker's session afresh, so a change of controller never fences a
//! live broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quill_meta::{MetadataImage, NO_LEADER};

use crate::state::BrokerState;

/// How long a controlled shutdown waits for its fencing to commit.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The controller's static `unclean.leader.election.enable` (false unless set).
fn static_unclean_election(state: &BrokerState) -> bool {
    state
        .config
        .topic_defaults
        .get(quill_meta::partition_change::UNCLEAN_LEADER_ELECTION_ENABLE)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

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
    let unclean = static_unclean_election(state);
    for broker in image.brokers.values() {
        let node_id = broker.node_id;
        let last_heard = heartbeats.last(node_id);
        let wants_shut_down = heartbeats.wants_shut_down(node_id);
        // `expired`: the broker's session ran out (worth a warning, unlike the other changes).
        let (records, what, expired) = if broker.fenced {
            let seen = *fenced_seen.entry(node_id).or_insert_with(Instant::now);
            // A heartbeat of a broker that is shutting down never unfences it.
            if wants_shut_down || last_heard.is_none_or(|heard| heard <= seen) {
                continue;
            }
            (
                quill_meta::plan_unfence_broker(&image, node_id, unclean),
                "unfenced a broker heard from again",
                false,
            )
        } else {
            let session_start = last_heard.map_or(leading_since, |heard| heard.max(leading_since));
            if session_start.elapsed() >= session {
                (
                    quill_meta::plan_fence_broker(&image, node_id, unclean),
                    "fenced a broker not heard from within its session",
                    true,
                )
            } else if wants_shut_down && !broker.in_controlled_shutdown {
                (
                    quill_meta::plan_controlled_shutdown(&image, node_id, unclean),
                    "a broker shuts down: its leaderships moved to other ISR members",
                    false,
                )
            } else {
                continue;
            }
        };
        if records.is_empty() {
            continue;
        }
        // Committed only while this node still leads: a controller cut off from the others
        // sees every session expire, and its decision must not survive its term.
        match state.change_metadata_as_controller(records).await {
            Ok(_) if expired => {
                tracing::warn!(node_id, session_timeout_ms = session.as_millis(), "{what}")
            }
            Ok(_) => tracing::info!(node_id, "{what}"),
            Err(error) => {
                tracing::debug!(%error, node_id, "liveness change not committed")
            }
        }
        // One change per round: the next round plans from the image this one produced.
        return;
    }
}

/// Kafka's controlled shutdown, for a broker of a cluster: ask the controller (through the
/// heartbeats' `want_shut_down`) to move this broker's leaderships to other ISR members, wait
/// until it leads no partition another live ISR member could lead (at most
/// `broker.session.timeout.ms`: a controller that cannot act sooner would fence it by then
/// anyway), then fence itself, so clients stop using it at once. Partitions whose only ISR
/// member it is stay led by nobody until it returns, as when it is fenced. Bounded throughout:
/// a broker that cannot reach the quorum shuts down anyway (its session then expires).
pub async fn controlled_shutdown(state: &BrokerState) {
    let node_id = state.config.node_id;
    let settings = &state.config.cluster;
    let interval = Duration::from_millis(settings.heartbeat_interval_ms);
    let deadline = Instant::now() + Duration::from_millis(settings.session_timeout_ms);
    state.metadata.begin_shut_down();
    let mut images = state.metadata.subscribe();
    loop {
        if leaderships_moved(&state.metadata.image(), node_id) {
            break;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            tracing::warn!(
                "controlled shutdown: leaderships not moved within broker.session.timeout.ms; fencing anyway"
            );
            break;
        }
        state.metadata.send_heartbeat(interval.min(remaining)).await;
        // Woken by the next applied change (the controller's answer) or the next heartbeat.
        let wait = interval.min(deadline.saturating_duration_since(Instant::now()));
        if let Ok(Err(_)) = tokio::time::timeout(wait, images.changed()).await {
            tokio::time::sleep(wait).await; // the quorum stopped: no change will come
        }
    }
    let image = state.metadata.image();
    let records = quill_meta::plan_fence_broker(&image, node_id, static_unclean_election(state));
    if records.is_empty() {
        return;
    }
    match tokio::time::timeout(CONTROLLED_SHUTDOWN_TIMEOUT, state.change_metadata(records)).await {
        Ok(Ok(_)) => tracing::info!("controlled shutdown: this broker is fenced"),
        Ok(Err(error)) => tracing::warn!(%error, "controlled shutdown could not fence this broker"),
        Err(_) => tracing::warn!("controlled shutdown timed out; the broker's session will expire"),
    }
}

/// True when `node_id` leads no partition that another live (active) ISR member could lead.
pub fn leaderships_moved(image: &MetadataImage, node_id: i32) -> bool {
    !image.topics.values().any(|topic| {
        topic.partitions.iter().any(|partition| {
            partition.leader == node_id
                && partition.leader != NO_LEADER
                && partition
                    .isr
                    .iter()
                    .any(|id| *id != node_id && image.is_active_broker(*id))
        })
    })
}
