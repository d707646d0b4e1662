//! ISR maintenance on the leader (Kafka's `Partition.maybeShrinkIsr` / `maybeExpandIsr`): a
//! follower that has not caught up with the leader's log end for `replica.lag.time.max.ms`
//! leaves the ISR; a follower that reaches the high watermark (and the start of this leader's
//! epoch) rejoins. Both go to the controller through `BrokerState::alter_partition` (Kafka's
//! AlterPartition: applied only at the leader and partition epochs it was planned against);
//! until the image commits it, the proposed ISR counts as pending and the high watermark waits
//! for the members of both (KIP-497's maximal ISR), so it never passes what a member may lack.

use std::sync::Arc;
use std::time::Duration;

use crate::partitions::Partition;
use crate::state::BrokerState;

/// The shortest pause between two checks, whatever `replica.lag.time.max.ms` is.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(100);

static ISR_WARNINGS: crate::rate_limit::WarnLimiter =
    crate::rate_limit::WarnLimiter::new(crate::rate_limit::WARNING_INTERVAL);

/// Runs until shutdown: checks every led partition each `replica.lag.time.max.ms / 2` (Kafka's
/// isr-expiration period) and whenever a follower's fetch may let it rejoin.
pub async fn run(state: Arc<BrokerState>) {
    let lag_max_ms = state.config.cluster.replica_lag_time_max_ms;
    let interval = Duration::from_millis(lag_max_ms / 2).max(MIN_CHECK_INTERVAL);
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = state.isr_check.notified() => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
        if !state.is_caught_up() {
            continue;
        }
        let lag_max_ms = i64::try_from(lag_max_ms).unwrap_or(i64::MAX);
        for partition in state.partitions.all() {
            maintain(&state, &partition, lag_max_ms).await;
        }
    }
}

/// Proposes the ISR change one partition needs, if any.
async fn maintain(state: &BrokerState, partition: &Arc<Partition>, lag_max_ms: i64) {
    let replica_state = partition.replica_state();
    if !replica_state.is_leader() || replica_state.pending_isr.is_some() {
        return;
    }
    let now_ms = crate::clock::monotonic_ms();
    let image = state.image();
    let leaving = replica_state.out_of_sync_followers(now_ms, lag_max_ms);
    let high_watermark = partition.offsets().high_watermark;
    let joining: Vec<i32> = replica_state
        .caught_up_outside_isr(high_watermark)
        .into_iter()
        .filter(|id| image.is_active_broker(*id))
        .collect();
    if leaving.is_empty() && joining.is_empty() {
        return;
    }
    let mut isr: Vec<i32> = replica_state
        .isr
        .iter()
        .copied()
        .filter(|id| !leaving.contains(id))
        .collect();
    isr.extend(joining.iter().copied());
    let Some(info) = image
        .topic(&partition.topic)
        .filter(|topic| topic.topic_id == partition.topic_id)
        .and_then(|topic| topic.partition(partition.partition))
    else {
        return;
    };
    if info.leader_epoch != replica_state.leader_epoch {
        return; // the image moved on; the next check sees the new leadership
    }
    tracing::info!(topic = %partition.topic, partition = partition.partition, ?leaving, ?joining, from = ?replica_state.isr, to = ?isr, "changing the ISR");
    partition.set_pending_isr(Some(isr.clone()));
    let outcome = state
        .alter_partition(
            partition.topic_id,
            partition.partition,
            info.leader_epoch,
            info.partition_epoch,
            isr,
        )
        .await;
    // Applied or refused, the image now says what the ISR is: nothing is pending any more.
    partition.set_pending_isr(None);
    match outcome {
        Ok(_) => state
            .metrics
            .isr_changes
            .committed(leaving.len(), joining.len()),
        Err(error) => {
            state.metrics.isr_changes.failed();
            crate::warn_limited!(ISR_WARNINGS, topic = %partition.topic, partition = partition.partition, %error, "ISR change refused");
        }
    }
}
