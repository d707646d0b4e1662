//! One partition's replication state: its role per the image the logs were reconciled with,
//! and, on the leader, what each follower has proven durable (Kafka's `Partition` and
//! `Replica` state). Pure state and rules; `partitions.rs` owns the locking and the watches.
//!
//! Quill's rule: a follower sends its next fetch offset only after what it appended is
//! fsynced (per its flush policy), so a follower's fetch offset proves durability on that
//! follower. The leader's high watermark is the minimum over the ISR of what each member has
//! made durable, the leader's own durable end included, so acks=all and consumers see only
//! data that survives the loss of every ISR member but one.

use std::collections::BTreeMap;

/// What this broker is for the partition, per the reconciled image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower {
        leader: i32,
    },
    /// No live leader (its broker is fenced): nobody may write.
    Offline,
}

/// The leader's view of one follower (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's last fetch offset in this leader epoch: everything below is durable on
    /// it. -1 until it fetches from this leader.
    pub durable_end_offset: i64,
    /// Last time (ms) the follower was known to have everything the leader had.
    pub last_caught_up_ms: i64,
    /// The leader's log end offset and the time of the follower's previous fetch (Kafka's
    /// `lastFetchLeaderLogEndOffset` / `lastFetchTimeMs`).
    last_fetch_leader_end_offset: i64,
    last_fetch_ms: i64,
}

impl FollowerState {
    fn new(now_ms: i64, in_sync: bool) -> FollowerState {
        FollowerState {
            durable_end_offset: -1,
            // An ISR member starts caught up, so it is not dropped before its first fetch.
            last_caught_up_ms: if in_sync { now_ms } else { 0 },
            last_fetch_leader_end_offset: -1,
            last_fetch_ms: 0,
        }
    }
}

/// The replication state of one hosted partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    node_id: i32,
    pub role: Role,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    /// The ISR committed in the image.
    pub isr: Vec<i32>,
    /// An ISR this leader asked the controller for (AlterPartition) and has not yet seen
    /// committed. The high watermark counts every member of either ISR (KIP-497's maximal
    /// ISR), so neither an addition nor a removal can move it past what a member may lack.
    pub pending_isr: Option<Vec<i32>>,
    /// Followers (never this broker), keyed by node id; only replicas of the partition.
    followers: BTreeMap<i32, FollowerState>,
    /// This broker's durable end offset (what its own log has made durable).
    pub local_durable_end_offset: i64,
    /// The leader's high watermark as the last fetch response said (followers only).
    leader_high_watermark: i64,
    /// The log end offset when this broker became leader: a follower rejoins the ISR only
    /// once it has reached it (it then holds everything of earlier epochs this leader has).
    pub leader_epoch_start_offset: i64,
}

/// What the image says about the partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl ReplicaState {
    pub fn new(node_id: i32, local_durable_end_offset: i64) -> ReplicaState {
        ReplicaState {
            node_id,
            role: Role::Offline,
            leader_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            pending_isr: None,
            followers: BTreeMap::new(),
            local_durable_end_offset,
            leader_high_watermark: -1,
            leader_epoch_start_offset: 0,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// Applies the image's view. Returns true when the role or the leader epoch changed (a
    /// new leadership: followers start over, a follower truncates before fetching again).
    pub fn apply_assignment(&mut self, assignment: &Assignment, now_ms: i64) -> bool {
        let role = if assignment.leader == self.node_id {
            Role::Leader
        } else if assignment.leader < 0 {
            Role::Offline
        } else {
            Role::Follower {
                leader: assignment.leader,
            }
        };
        let new_leadership = role != self.role || assignment.leader_epoch != self.leader_epoch;
        self.role = role;
        self.leader_epoch = assignment.leader_epoch;
        self.replicas.clone_from(&assignment.replicas);
        if self.pending_isr.as_ref() == Some(&assignment.isr) || new_leadership {
            self.pending_isr = None;
        }
        self.isr.clone_from(&assignment.isr);
        let node_id = self.node_id;
        if new_leadership {
            // Kafka resets every follower when a leader is elected: nothing it reported to an
            // earlier leader counts for this one.
            self.followers = assignment
                .replicas
                .iter()
                .filter(|replica| **replica != node_id)
                .map(|replica| {
                    let in_sync = assignment.isr.contains(replica);
                    (*replica, FollowerState::new(now_ms, in_sync))
                })
                .collect();
            self.leader_high_watermark = -1;
        } else {
            self.followers
                .retain(|id, _| assignment.replicas.contains(id));
            for replica in &assignment.replicas {
                if *replica != node_id {
                    self.followers
                        .entry(*replica)
                        .or_insert_with(|| FollowerState::new(now_ms, false));
                }
            }
        }
        new_leadership
    }

    /// The leader's state of follower `replica`; `None` if it is not a replica.
    pub fn follower(&self, replica: i32) -> Option<&FollowerState> {
        self.followers.get(&replica)
    }

    /// Records a replica Fetch (the leader's `updateFollowerFetchState`): `fetch_offset` is
    /// durable on the follower; `leader_end_offset` is this leader's log end when the fetch
    /// arrived. False when `replica` is not a follower of this partition.
    pub fn record_follower_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        leader_end_offset: i64,
        now_ms: i64,
    ) -> bool {
        let Some(follower) = self.followers.get_mut(&replica) else {
            return false;
        };
        // Kafka's rule: caught up now if the fetch reaches the leader's end; caught up as of
        // the previous fetch if it reaches what the leader had then.
        if fetch_offset >= leader_end_offset {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= follower.last_fetch_leader_end_offset {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(follower.last_fetch_ms);
        }
        follower.durable_end_offset = fetch_offset;
        follower.last_fetch_leader_end_offset = leader_end_offset;
        follower.last_fetch_ms = now_ms;
        true
    }

    /// Records the leader's high watermark from a fetch response (followers only).
    pub fn record_leader_high_watermark(&mut self, high_watermark: i64) {
        self.leader_high_watermark = high_watermark;
    }

    /// The ISR the high watermark waits for: the committed one and any pending change.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut members = self.isr.clone();
        if let Some(pending) = &self.pending_isr {
            for member in pending {
                if !members.contains(member) {
                    members.push(*member);
                }
            }
        }
        members
    }

    /// The high watermark this state supports, or `None` when it cannot say (offline). The
    /// caller only ever moves the published one forward.
    pub fn high_watermark(&self) -> Option<i64> {
        match self.role {
            Role::Leader => {
                let mut high_watermark = self.local_durable_end_offset;
                for member in self.maximal_isr() {
                    if member == self.node_id {
                        continue;
                    }
                    // A member that has not fetched yet in this epoch holds it back (-1).
                    let durable = self
                        .followers
                        .get(&member)
                        .map_or(-1, |follower| follower.durable_end_offset);
                    high_watermark = high_watermark.min(durable);
                }
                Some(high_watermark)
            }
            Role::Follower { .. } if self.leader_high_watermark >= 0 => Some(
                self.leader_high_watermark
                    .min(self.local_durable_end_offset),
            ),
            Role::Follower { .. } | Role::Offline => None,
        }
    }

    /// ISR members (not this leader) not caught up for longer than `lag_max_ms`: Kafka's
    /// `getOutOfSyncReplicas` for `replica.lag.time.max.ms`.
    pub fn out_of_sync_followers(&self, now_ms: i64, lag_max_ms: i64) -> Vec<i32> {
        if !self.is_leader() {
            return Vec::new();
        }
        self.isr
            .iter()
            .copied()
            .filter(|member| *member != self.node_id)
            .filter(|member| {
                self.followers.get(member).is_none_or(|follower| {
                    now_ms.saturating_sub(follower.last_caught_up_ms) > lag_max_ms
                })
            })
            .collect()
    }

    /// Followers outside the ISR that have caught up to `high_watermark` and to the start of
    /// this leader's epoch (Kafka's `isFollowerInSync`): they may rejoin.
    pub fn caught_up_outside_isr(&self, high_watermark: i64) -> Vec<i32> {
        if !self.is_leader() {
            return Vec::new();
        }
        self.followers
            .iter()
            .filter(|(id, follower)| {
                !self.isr.contains(id)
                    && follower.durable_end_offset >= high_watermark
                    && follower.durable_end_offset >= self.leader_epoch_start_offset
            })
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(leader: i32, epoch: i32, isr: &[i32]) -> Assignment {
        Assignment {
            leader,
            leader_epoch: epoch,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn an_unreplicated_leader_follows_its_own_durable_end() {
        let mut state = ReplicaState::new(1, 10);
        state.apply_assignment(
            &Assignment {
                leader: 1,
                leader_epoch: 0,
                replicas: vec![1],
                isr: vec![1],
            },
            0,
        );
        assert_eq!(state.high_watermark(), Some(10));
        state.local_durable_end_offset = 15;
        assert_eq!(state.high_watermark(), Some(15));
    }

    #[test]
    fn the_high_watermark_is_the_minimum_durable_end_over_the_isr() {
        let mut state = ReplicaState::new(1, 100);
        assert!(state.apply_assignment(&assignment(1, 3, &[1, 2, 3]), 0));
        // Nobody fetched in this epoch yet.
        assert_eq!(state.high_watermark(), Some(-1));
        assert!(state.record_follower_fetch(2, 80, 100, 1));
        assert_eq!(state.high_watermark(), Some(-1));
        assert!(state.record_follower_fetch(3, 90, 100, 1));
        assert_eq!(state.high_watermark(), Some(80));
        assert!(state.record_follower_fetch(2, 100, 100, 2));
        assert_eq!(state.high_watermark(), Some(90));
        // A replica outside the ISR does not hold it back.
        state.apply_assignment(&assignment(1, 3, &[1, 2]), 3);
        assert_eq!(state.high_watermark(), Some(100));
        // Not a replica: refused.
        assert!(!state.record_follower_fetch(7, 100, 100, 3));
    }

    #[test]
    fn a_pending_isr_change_counts_until_committed() {
        let mut state = ReplicaState::new(1, 100);
        state.apply_assignment(&assignment(1, 1, &[1, 2]), 0);
        state.record_follower_fetch(2, 100, 100, 1);
        state.record_follower_fetch(3, 50, 100, 1);
        assert_eq!(state.high_watermark(), Some(100));
        // Adding 3 is pending: it already counts.
        state.pending_isr = Some(vec![1, 2, 3]);
        assert_eq!(state.high_watermark(), Some(50));
        // Committed: the pending change is done.
        state.apply_assignment(&assignment(1, 1, &[1, 2, 3]), 2);
        assert_eq!(state.pending_isr, None);
        // Removing 3 is pending: it still counts.
        state.pending_isr = Some(vec![1, 2]);
        assert_eq!(state.high_watermark(), Some(50));
        state.apply_assignment(&assignment(1, 1, &[1, 2]), 3);
        assert_eq!(state.high_watermark(), Some(100));
    }

    #[test]
    fn a_new_leader_epoch_forgets_what_followers_reported() {
        let mut state = ReplicaState::new(1, 100);
        state.apply_assignment(&assignment(1, 1, &[1, 2]), 0);
        state.record_follower_fetch(2, 100, 100, 1);
        assert_eq!(state.high_watermark(), Some(100));
        assert!(state.apply_assignment(&assignment(1, 2, &[1, 2]), 2));
        assert_eq!(state.high_watermark(), Some(-1));
        // Same epoch again: nothing new.
        assert!(!state.apply_assignment(&assignment(1, 2, &[1, 2]), 3));
    }

    #[test]
    fn followers_take_the_leaders_high_watermark_capped_by_their_durable_end() {
        let mut state = ReplicaState::new(2, 40);
        assert!(state.apply_assignment(&assignment(1, 1, &[1, 2]), 0));
        assert_eq!(state.role, Role::Follower { leader: 1 });
        assert_eq!(state.high_watermark(), None);
        state.record_leader_high_watermark(60);
        assert_eq!(state.high_watermark(), Some(40));
        state.record_leader_high_watermark(30);
        assert_eq!(state.high_watermark(), Some(30));
        state.apply_assignment(&assignment(-1, 2, &[2]), 1);
        assert_eq!(state.role, Role::Offline);
        assert_eq!(state.high_watermark(), None);
    }

    #[test]
    fn lagging_followers_leave_and_caught_up_ones_may_rejoin() {
        let mut state = ReplicaState::new(1, 100);
        state.apply_assignment(&assignment(1, 1, &[1, 2, 3]), 1_000);
        // 2 keeps up; 3 fetches but stays behind.
        state.record_follower_fetch(2, 100, 100, 20_000);
        state.record_follower_fetch(3, 50, 100, 20_000);
        state.record_follower_fetch(3, 60, 110, 25_000);
        assert_eq!(
            state.out_of_sync_followers(30_000, 30_000),
            Vec::<i32>::new()
        );
        assert_eq!(state.out_of_sync_followers(31_001, 30_000), vec![3]);
        // Reaching what the leader had at the previous fetch counts as caught up then.
        state.record_follower_fetch(3, 110, 120, 32_000);
        assert_eq!(
            state.out_of_sync_followers(50_000, 30_000),
            Vec::<i32>::new()
        );
        state.apply_assignment(&assignment(1, 1, &[1, 2]), 33_000);
        assert_eq!(state.caught_up_outside_isr(100), vec![3]);
        assert_eq!(state.caught_up_outside_isr(111), Vec::<i32>::new());
    }
}
