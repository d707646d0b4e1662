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
//! A controller-only node (`process.roles=controller`) sends no heartbeat but makes the same
//! decisions while it is the active controller (`run_controller`). Every step is a metadata change planned by quill-meta (`partition_change`) and validated by
//! its state machine; elections honour `unclean.leader.election.enable` (the topic's, else the
//! cluster-wide dynamic default, else the controller's static setting). A new active
//! controller starts every broker's session afresh, so a change of controller never fences a
//! live broker.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quill_meta::{MetaError, MetadataImage, MetadataRecord, NO_LEADER};

use crate::config::BrokerConfig;
use crate::metadata::MetadataService;
use crate::state::BrokerState;

/// How long a controlled shutdown waits for its fencing to commit.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The controller's static `unclean.leader.election.enable` (false unless set).
fn static_unclean_election(config: &BrokerConfig) -> bool {
    config
        .topic_defaults
        .get(quill_meta::partition_change::UNCLEAN_LEADER_ELECTION_ENABLE)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// Heartbeats, and on the active controller the liveness decisions, until shutdown.
pub async fn run(state: Arc<BrokerState>) {
    let settings = &state.config.cluster;
    let interval = Duration::from_millis(settings.heartbeat_interval_ms);
    let mut sessions = Sessions::new(
        Duration::from_millis(settings.session_timeout_ms),
        static_unclean_election(&state.config),
    );
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
        // Committed only while this node still leads: a controller cut off from the others
        // sees every session expire, and its decision must not survive its term.
        sessions
            .round(&state.metadata, |records| {
                state.change_metadata_as_controller(records)
            })
            .await;
    }
}

/// A controller-only node's part (`process.roles=controller`): it is no broker and sends no
/// heartbeat, but while it is the active controller it makes the liveness decisions.
pub async fn run_controller(
    metadata: Arc<MetadataService>,
    config: BrokerConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let settings = &config.cluster;
    let mut sessions = Sessions::new(
        Duration::from_millis(settings.session_timeout_ms),
        static_unclean_election(&config),
    );
    let mut ticker = tokio::time::interval(Duration::from_millis(settings.heartbeat_interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        // Liveness records create no partitions: proposed as they are, only while leading.
        sessions
            .round(&metadata, |records| metadata.propose_as_controller(records))
            .await;
    }
}

/// The active controller's view of the brokers' sessions.
struct Sessions {
    session: Duration,
    /// The controller's static `unclean.leader.election.enable`.
    unclean_election: bool,
    /// When this node last became the active controller (`None` while it is not).
    leading_since: Option<Instant>,
    /// When this controller first saw each fenced broker fenced: only a heartbeat after that
    /// unfences it (one sent just before a controlled shutdown must not).
    fenced_seen: HashMap<i32, Instant>,
}

/// One liveness decision of the active controller.
struct LivenessChange {
    records: Vec<MetadataRecord>,
    node_id: i32,
    what: &'static str,
    /// The broker's session ran out (worth a warning, unlike the other changes).
    expired: bool,
}

impl Sessions {
    fn new(session: Duration, unclean_election: bool) -> Sessions {
        Sessions {
            session,
            unclean_election,
            leading_since: None,
            fenced_seen: HashMap::new(),
        }
    }

    /// One round: nothing unless this node is the active controller; then at most one
    /// liveness change, made with `change`.
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
        let Some(next) = self.next_change(metadata, since) else {
            return;
        };
        let (node_id, what) = (next.node_id, next.what);
        match change(next.records).await {
            Ok(_) if next.expired => tracing::warn!(
                node_id,
                session_timeout_ms = self.session.as_millis(),
                "{what}"
            ),
            Ok(_) => tracing::info!(node_id, "{what}"),
            Err(error) => tracing::debug!(%error, node_id, "liveness change not committed"),
        }
    }

    /// The first liveness change due. One change per round: the next round plans from the
    /// image this one produced.
    fn next_change(
        &mut self,
        metadata: &MetadataService,
        leading_since: Instant,
    ) -> Option<LivenessChange> {
        let image = metadata.image();
        self.fenced_seen
            .retain(|node_id, _| image.brokers.get(node_id).is_some_and(|b| b.fenced));
        let heartbeats = metadata.heartbeats();
        let unclean = self.unclean_election;
        for broker in image.brokers.values() {
            let node_id = broker.node_id;
            let last_heard = heartbeats.last(node_id);
            let wants_shut_down = heartbeats.wants_shut_down(node_id);
            let (records, what, expired) = if broker.fenced {
                let seen = *self.fenced_seen.entry(node_id).or_insert_with(Instant::now);
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
                let session_start =
                    last_heard.map_or(leading_since, |heard| heard.max(leading_since));
                if session_start.elapsed() >= self.session {
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
            if !records.is_empty() {
                return Some(LivenessChange {
                    records,
                    node_id,
                    what,
                    expired,
                });
            }
        }
        None
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
    let records =
        quill_meta::plan_fence_broker(&image, node_id, static_unclean_election(&state.config));
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
