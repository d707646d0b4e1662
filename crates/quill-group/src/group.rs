//! One group's state: members, generation, protocol, offsets, and the pure rules of Kafka's
//! classic protocol that need no timers or I/O (protocol selection, transitions, records).
//! The coordinator (`coordinator.rs`) drives it under the group's lock.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::api::{
    DescribedGroup, DescribedMember, JoinGroupMember, JoinGroupResponse, JoinProtocol,
    SyncGroupResponse, TopicPartition,
};
use crate::consumer_protocol::{subscribed_topics, CONSUMER_PROTOCOL_TYPE};
use crate::error::GroupError;
use crate::records::{GroupMetadataValue, MemberMetadataValue, OffsetCommitValue};

/// The classic group states (Kafka's `ClassicGroupState`).
///
/// ```text
/// Empty ──join──► PreparingRebalance ──all rejoined / timeout──► CompletingRebalance ──leader sync stored──► Stable
///   ▲                 │   ▲                                              │                                   │
///   └──no member left─┘   └──────── join / leave / expiry / sync timeout ┴───────────────────────────────────┘
/// Empty ──DeleteGroups / offsets expired──► Dead        (any state ──partition unloaded──► Dead)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups/ListGroups.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Kafka's `validPreviousStates`: the only states each state may be entered from.
    pub fn can_follow(self, previous: GroupState) -> bool {
        use GroupState::*;
        match self {
            Empty => previous == PreparingRebalance,
            PreparingRebalance => matches!(previous, Stable | CompletingRebalance | Empty),
            CompletingRebalance => previous == PreparingRebalance,
            Stable => previous == CompletingRebalance,
            Dead => true,
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A committed offset as held in memory (the decoded `OffsetCommitValue`).
pub(crate) type CommittedOffset = OffsetCommitValue;

pub(crate) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<JoinProtocol>,
    pub assignment: Bytes,
    pub join_waiter: Option<oneshot::Sender<JoinGroupResponse>>,
    pub sync_waiter: Option<oneshot::Sender<SyncGroupResponse>>,
    /// Joined in the current rebalance for the first time (Kafka's `isNew`): such a member has no
    /// heartbeat to rely on, so its JoinGroup expires after `new_member_join_timeout_ms`.
    pub is_new: bool,
    /// Order of joining, to pick a successor leader deterministically.
    pub join_seq: u64,
    pub heartbeat: Option<Timer>,
}

impl Member {
    pub fn is_awaiting_join(&self) -> bool {
        self.join_waiter.is_some()
    }

    pub fn is_awaiting_sync(&self) -> bool {
        self.sync_waiter.is_some()
    }

    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    pub fn metadata_for(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|name| self.protocols.iter().find(|p| p.name == name))
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Kafka's `matches`: the same protocols with the same metadata in the same order.
    pub fn matches(&self, protocols: &[JoinProtocol]) -> bool {
        self.protocols == protocols
    }

    /// Kafka's `vote`: the member's most preferred protocol among the candidates.
    fn vote<'a>(&'a self, candidates: &HashSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }

    pub fn complete_join(&mut self, response: JoinGroupResponse) {
        if let Some(waiter) = self.join_waiter.take() {
            let _ = waiter.send(response);
        }
    }

    pub fn complete_sync(&mut self, response: SyncGroupResponse) {
        if let Some(waiter) = self.sync_waiter.take() {
            let _ = waiter.send(response);
        }
    }

    pub fn cancel_heartbeat(&mut self) {
        if let Some(timer) = self.heartbeat.take() {
            timer.handle.abort();
        }
    }
}

/// A scheduled timer task; `token` tells a firing task whether it is still the current one
/// (an aborted task may already be waiting for the group lock).
pub(crate) struct Timer {
    pub token: u64,
    pub handle: AbortHandle,
}

pub(crate) enum JoinTimerKind {
    /// Kafka's `InitialDelayedJoin`: only completes on expiry, and is extended while new
    /// members keep arriving, until `remaining_ms` is used up.
    Initial { remaining_ms: u64 },
    /// Kafka's `DelayedJoin`: completes as soon as every known member has rejoined, or on
    /// expiry of the rebalance timeout.
    Rebalance,
}

pub(crate) struct JoinTimer {
    pub timer: Timer,
    pub kind: JoinTimerKind,
}

pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    pub state_timestamp_ms: Option<i64>,
    /// `None` for groups only used to store offsets (simple consumers).
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: HashMap<String, Member>,
    /// Members told MEMBER_ID_REQUIRED that have not rejoined yet, with their expiry timers.
    pub pending_members: HashMap<String, Timer>,
    /// group.instance.id → member id.
    pub static_members: HashMap<String, String>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: HashSet<String>,
    pub new_member_added: bool,
    pub subscribed_topics: Option<BTreeSet<String>>,
    pub join_timer: Option<JoinTimer>,
    pub sync_timer: Option<Timer>,
    next_token: u64,
    next_join_seq: u64,
    pub offsets: HashMap<TopicPartition, CommittedOffset>,
    /// Offset writes appended but not yet durable, per partition (such offsets do not expire).
    pub pending_offset_writes: HashMap<TopicPartition, usize>,
    /// The write sequence last applied per partition, so a slower completion of an older write
    /// never overwrites a newer one (the store keeps the same order, see `OffsetsStore`).
    pub applied_offset_seq: HashMap<TopicPartition, u64>,
    pub next_write_seq: u64,
    /// GroupMetadata appends in flight.
    pub pending_group_writes: usize,
    /// The value of the last GroupMetadata record known durable (as stored or loaded).
    pub last_group_record: Option<Bytes>,
    /// TxnOffsetCommit offsets per producer id, invisible to OffsetFetch until the producer's
    /// transaction commits (then written as ordinary commits) or aborts (then dropped).
    pub pending_txn_offsets: HashMap<i64, HashMap<TopicPartition, crate::api::PartitionCommit>>,
    /// TxnOffsetCommit appends in flight (not yet durable).
    pub pending_txn_writes: usize,
}

impl Group {
    pub fn new(id: String, now_ms: i64) -> Group {
        Group {
            id,
            state: GroupState::Empty,
            state_timestamp_ms: Some(now_ms),
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: HashMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            pending_sync: HashSet::new(),
            new_member_added: false,
            subscribed_topics: None,
            join_timer: None,
            sync_timer: None,
            next_token: 0,
            next_join_seq: 0,
            offsets: HashMap::new(),
            pending_offset_writes: HashMap::new(),
            applied_offset_seq: HashMap::new(),
            next_write_seq: 1,
            pending_group_writes: 0,
            last_group_record: None,
            pending_txn_offsets: HashMap::new(),
            pending_txn_writes: 0,
        }
    }

    pub fn next_token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    pub fn next_join_seq(&mut self) -> u64 {
        self.next_join_seq += 1;
        self.next_join_seq
    }

    pub fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    /// Moves to `next` if Kafka allows it from the current state. An invalid transition is a
    /// coordinator bug: it is logged and refused rather than panicking.
    pub fn transition_to(&mut self, next: GroupState, now_ms: i64) -> bool {
        if !next.can_follow(self.state) {
            tracing::error!(group = %self.id, from = %self.state, to = %next, "invalid group state transition refused");
            return false;
        }
        self.state = next;
        self.state_timestamp_ms = Some(now_ms);
        true
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    pub fn static_member_id(&self, group_instance_id: Option<&str>) -> Option<&str> {
        group_instance_id
            .and_then(|id| self.static_members.get(id))
            .map(String::as_str)
    }

    /// Kafka's `isStaticMemberFenced`: the instance id is registered to another member id.
    pub fn is_static_member_fenced(
        &self,
        group_instance_id: Option<&str>,
        member_id: &str,
    ) -> bool {
        self.static_member_id(group_instance_id)
            .is_some_and(|existing| existing != member_id)
    }

    pub fn awaiting_join_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.is_awaiting_join())
            .count()
    }

    /// Kafka's `hasAllMembersJoined`.
    pub fn all_members_joined(&self) -> bool {
        self.members.len() == self.awaiting_join_count() && self.pending_members.is_empty()
    }

    /// The largest rebalance timeout of the members (Kafka's `rebalanceTimeoutMs`).
    pub fn rebalance_timeout_ms(&self) -> u64 {
        self.members
            .values()
            .map(|m| u64::try_from(m.rebalance_timeout_ms).unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    /// Protocol name → how many members support it.
    fn protocol_support(&self) -> HashMap<&str, usize> {
        let mut support: HashMap<&str, usize> = HashMap::new();
        for member in self.members.values() {
            for protocol in &member.protocols {
                *support.entry(protocol.name.as_str()).or_default() += 1;
            }
        }
        support
    }

    /// Kafka's `supportsProtocols`: an empty group accepts any non-empty protocol type and
    /// protocol list; otherwise the type must match and one of the protocols must be supported
    /// by every current member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[JoinProtocol]) -> bool {
        if self.is(GroupState::Empty) {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let support = self.protocol_support();
        let members = self.members.len();
        protocols
            .iter()
            .any(|p| support.get(p.name.as_str()).copied().unwrap_or(0) == members)
    }

    /// Kafka's `selectProtocol` (ClassicGroup.selectProtocol): the candidates are the protocols
    /// every member supports; each member votes for its most preferred candidate; the protocol
    /// with most votes wins. Kafka breaks ties by hash-map order (unspecified); we break them by
    /// the leader's preference order so the choice is deterministic.
    pub fn select_protocol(&self) -> Option<String> {
        let members = self.members.len();
        if members == 0 {
            return None;
        }
        let candidates: HashSet<&str> = self
            .protocol_support()
            .into_iter()
            .filter(|(_, count)| *count == members)
            .map(|(name, _)| name)
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for member in self.members.values() {
            if let Some(choice) = member.vote(&candidates) {
                *votes.entry(choice).or_default() += 1;
            }
        }
        let most = votes.values().copied().max()?;
        let leader_order = self
            .leader_id
            .as_deref()
            .and_then(|leader| self.members.get(leader))
            .or_else(|| self.members.values().min_by_key(|m| m.join_seq))?;
        leader_order
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| votes.get(name) == Some(&most))
            .map(str::to_owned)
    }

    /// Kafka's `computeSubscribedTopics`: known only for protocol type "consumer" with parsable
    /// subscriptions.
    pub fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(subscribed_topics(&member.metadata_for(Some(protocol)))?);
        }
        Some(topics)
    }

    /// Kafka's `isSubscribedToTopic`: when unknown, a "consumer" group counts as subscribed.
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE),
        }
    }

    /// Adds a member (Kafka's `add`): the first member fixes the protocol type, and becomes
    /// leader if there is none.
    pub fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        if let Some(instance_id) = &member.group_instance_id {
            self.static_members
                .insert(instance_id.clone(), member.member_id.clone());
        }
        if let Some(timer) = self.pending_members.remove(&member.member_id) {
            timer.handle.abort();
        }
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member (Kafka's `remove`), answering its parked requests with
    /// UNKNOWN_MEMBER_ID and electing the earliest-joined remaining member if it led.
    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let mut member = self.members.remove(member_id)?;
        member.cancel_heartbeat();
        member.complete_join(JoinGroupResponse::error(GroupError::UnknownMemberId, ""));
        member.complete_sync(SyncGroupResponse::error(GroupError::UnknownMemberId));
        if let Some(instance_id) = &member.group_instance_id {
            if self.static_members.get(instance_id).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance_id);
            }
        }
        self.pending_sync.remove(member_id);
        if self.is_leader(member_id) {
            self.leader_id = self
                .members
                .values()
                .min_by_key(|m| m.join_seq)
                .map(|m| m.member_id.clone());
        }
        Some(member)
    }

    /// Kafka's `maybeElectNewJoinedLeader`: keeps the leader if it rejoined, else picks a member
    /// that did. False if nobody rejoined.
    pub fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.as_deref() else {
            return false;
        };
        if self
            .members
            .get(leader)
            .is_some_and(Member::is_awaiting_join)
        {
            return true;
        }
        let successor = self
            .members
            .values()
            .filter(|m| m.is_awaiting_join())
            .min_by_key(|m| m.join_seq)
            .map(|m| m.member_id.clone());
        match successor {
            Some(successor) => {
                self.leader_id = Some(successor);
                true
            }
            None => false,
        }
    }

    /// The JoinGroup answer for `member_id` in the current generation (members only for the
    /// leader, Kafka's `currentMemberMetadata`).
    pub fn join_response_for(
        &self,
        member_id: &str,
        leader_override: Option<&str>,
    ) -> JoinGroupResponse {
        let members = if self.is_leader(member_id) && leader_override.is_none() {
            let mut members: Vec<&Member> = self.members.values().collect();
            members.sort_by_key(|m| m.join_seq);
            members
                .into_iter()
                .map(|m| JoinGroupMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(self.protocol_name.as_deref()),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinGroupResponse {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: leader_override
                .map(str::to_owned)
                .or_else(|| self.leader_id.clone())
                .unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members,
        }
    }

    pub fn sync_response(&self, assignment: Bytes) -> SyncGroupResponse {
        SyncGroupResponse {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// The GroupMetadata record value, with `assignments` overriding members' current ones
    /// (the leader's SyncGroup stores the new assignment before propagating it).
    pub fn to_record(&self, assignments: Option<&HashMap<String, Bytes>>) -> GroupMetadataValue {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.join_seq);
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms.unwrap_or(-1),
            members: members
                .into_iter()
                .map(|m| MemberMetadataValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(self.protocol_name.as_deref()),
                    assignment: assignments
                        .and_then(|a| a.get(&m.member_id).cloned())
                        .unwrap_or_else(|| m.assignment.clone()),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its replayed records (Kafka's `loadGroup`): Stable with its
    /// members if it has any, else Empty.
    pub fn from_record(id: String, value: &GroupMetadataValue) -> Group {
        let mut group = Group::new(id, value.current_state_timestamp_ms);
        group.state_timestamp_ms =
            (value.current_state_timestamp_ms >= 0).then_some(value.current_state_timestamp_ms);
        group.protocol_type =
            (!value.protocol_type.is_empty()).then(|| value.protocol_type.clone());
        group.generation_id = value.generation;
        group.protocol_name = value.protocol.clone();
        group.leader_id = value.leader.clone();
        for stored in &value.members {
            let join_seq = group.next_join_seq();
            let protocols = match &value.protocol {
                Some(name) => vec![JoinProtocol {
                    name: name.clone(),
                    metadata: stored.subscription.clone(),
                }],
                None => Vec::new(),
            };
            if let Some(instance_id) = &stored.group_instance_id {
                group
                    .static_members
                    .insert(instance_id.clone(), stored.member_id.clone());
            }
            group.members.insert(
                stored.member_id.clone(),
                Member {
                    member_id: stored.member_id.clone(),
                    group_instance_id: stored.group_instance_id.clone(),
                    client_id: stored.client_id.clone(),
                    client_host: stored.client_host.clone(),
                    rebalance_timeout_ms: stored.rebalance_timeout_ms,
                    session_timeout_ms: stored.session_timeout_ms,
                    protocol_type: value.protocol_type.clone(),
                    protocols,
                    assignment: stored.assignment.clone(),
                    join_waiter: None,
                    sync_waiter: None,
                    is_new: false,
                    join_seq,
                    heartbeat: None,
                },
            );
        }
        group.state = if group.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        if group
            .leader_id
            .as_ref()
            .is_some_and(|l| !group.members.contains_key(l))
        {
            group.leader_id = group
                .members
                .values()
                .min_by_key(|m| m.join_seq)
                .map(|m| m.member_id.clone());
        }
        group.subscribed_topics = group.compute_subscribed_topics();
        group
    }

    /// DescribeGroups' view (Kafka's `summary`): metadata and assignments only when Stable.
    pub fn describe(&self) -> DescribedGroup {
        let stable = self.is(GroupState::Stable);
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.join_seq);
        DescribedGroup {
            group_id: self.id.clone(),
            error: None,
            state: self.state,
            exists: !self.is(GroupState::Dead),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable {
                self.protocol_name.clone().unwrap_or_default()
            } else {
                String::new()
            },
            members: members
                .into_iter()
                .map(|m| DescribedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata_for(self.protocol_name.as_deref())
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    /// Offsets sorted by partition, for deterministic output.
    pub fn sorted_offsets(&self) -> BTreeMap<&TopicPartition, &CommittedOffset> {
        self.offsets.iter().collect()
    }

    /// Cancels every timer and drops every parked request (their futures answer
    /// NOT_COORDINATOR): the group is being unloaded or deleted.
    pub fn shut_down(&mut self) {
        if let Some(join_timer) = self.join_timer.take() {
            join_timer.timer.handle.abort();
        }
        if let Some(timer) = self.sync_timer.take() {
            timer.handle.abort();
        }
        for (_, timer) in self.pending_members.drain() {
            timer.handle.abort();
        }
        for member in self.members.values_mut() {
            member.cancel_heartbeat();
            member.join_waiter = None;
            member.sync_waiter = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, seq: u64, protocols: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/h".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|name| JoinProtocol {
                    name: (*name).into(),
                    metadata: Bytes::from(name.as_bytes().to_vec()),
                })
                .collect(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            is_new: false,
            join_seq: seq,
            heartbeat: None,
        }
    }

    #[test]
    fn transitions_follow_kafkas_valid_previous_states() {
        use GroupState::*;
        let all = [Empty, PreparingRebalance, CompletingRebalance, Stable, Dead];
        let allowed = [
            (Empty, PreparingRebalance),
            (PreparingRebalance, CompletingRebalance),
            (PreparingRebalance, Empty),
            (CompletingRebalance, Stable),
            (CompletingRebalance, PreparingRebalance),
            (Stable, PreparingRebalance),
        ];
        for from in all {
            for to in all {
                let expected = to == Dead || allowed.contains(&(from, to));
                assert_eq!(to.can_follow(from), expected, "{from} → {to}");
                let mut group = Group::new("g".into(), 0);
                group.state = from;
                assert_eq!(group.transition_to(to, 5), expected);
                assert_eq!(group.state, if expected { to } else { from });
            }
        }
    }

    #[test]
    fn protocol_selection_is_by_vote_with_leader_tie_break() {
        let mut group = Group::new("g".into(), 0);
        group.state = GroupState::PreparingRebalance;
        group.add_member(member("a", 1, &["range", "roundrobin"]));
        group.add_member(member("b", 2, &["roundrobin", "range"]));
        group.add_member(member("c", 3, &["roundrobin", "range", "sticky"]));
        // Two votes for roundrobin against one for range, though the leader prefers range.
        assert_eq!(group.select_protocol().as_deref(), Some("roundrobin"));
        group.remove_member("c");
        // One vote each: the leader's (a's) first choice wins the tie.
        assert_eq!(group.select_protocol().as_deref(), Some("range"));
        // "sticky" is supported by nobody now, and "x" by one member only: not candidates.
        group.add_member(member("d", 4, &["x", "range", "roundrobin"]));
        assert_eq!(group.select_protocol().as_deref(), Some("range"));
    }

    #[test]
    fn supports_protocols_rules() {
        let mut group = Group::new("g".into(), 0);
        let protocols = |names: &[&str]| -> Vec<JoinProtocol> {
            names
                .iter()
                .map(|n| JoinProtocol {
                    name: (*n).into(),
                    metadata: Bytes::new(),
                })
                .collect()
        };
        assert!(group.supports_protocols("consumer", &protocols(&["range"])));
        assert!(!group.supports_protocols("", &protocols(&["range"])));
        assert!(!group.supports_protocols("consumer", &[]));
        group.add_member(member("a", 1, &["range", "sticky"]));
        group.state = GroupState::Stable;
        assert!(group.supports_protocols("consumer", &protocols(&["sticky"])));
        assert!(!group.supports_protocols("consumer", &protocols(&["roundrobin"])));
        assert!(!group.supports_protocols("connect", &protocols(&["range"])));
    }

    #[test]
    fn leader_moves_to_earliest_member_and_static_ids_are_forgotten() {
        let mut group = Group::new("g".into(), 0);
        let mut a = member("a", 1, &["range"]);
        a.group_instance_id = Some("i-a".into());
        group.add_member(a);
        group.add_member(member("c", 3, &["range"]));
        group.add_member(member("b", 2, &["range"]));
        assert!(group.is_leader("a"));
        assert!(group.is_static_member_fenced(Some("i-a"), "zzz"));
        assert!(!group.is_static_member_fenced(Some("i-a"), "a"));
        assert!(!group.is_static_member_fenced(Some("unknown"), "a"));
        group.remove_member("a");
        assert!(group.is_leader("b"));
        assert_eq!(group.static_member_id(Some("i-a")), None);
    }

    #[test]
    fn subscribed_topics_follow_kafkas_rules() {
        let mut group = Group::new("g".into(), 0);
        assert!(!group.is_subscribed_to_topic("t"), "simple group");
        let mut m = member("a", 1, &["range"]);
        m.protocols[0].metadata =
            Bytes::from(crate::consumer_protocol::encode_subscription(&["t1", "t2"]));
        group.add_member(m);
        group.protocol_name = Some("range".into());
        group.subscribed_topics = group.compute_subscribed_topics();
        assert!(group.is_subscribed_to_topic("t1"));
        assert!(!group.is_subscribed_to_topic("t3"));
        // Unparsable metadata: unknown, and a consumer group then counts as subscribed.
        group.members.get_mut("a").unwrap().protocols[0].metadata = Bytes::from_static(&[1]);
        group.subscribed_topics = group.compute_subscribed_topics();
        assert!(group.is_subscribed_to_topic("t3"));
    }
}
