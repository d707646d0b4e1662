//! Consumer groups over the classic protocol: coordinator lookup, membership (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup), committed offsets, and the admin calls behind
//! `quill group …` (list, describe, delete, offsets).
//!
//! Two rebalance protocols, chosen like the Java client does
//! ([`GroupConsumerConfig::rebalance_protocol`]): eager (before rejoining, a member commits
//! with auto-commit and gives up every partition) and, when every configured assignor is
//! `cooperative-sticky`, KIP-429's incremental cooperative protocol (the member keeps its
//! partitions while rejoining and reports them as `owned_partitions`; after SyncGroup it revokes
//! only those the leader took away, commits them first, and rejoins at once so the follow-up
//! rebalance hands them over). Partitions that do not move are never revoked, and the
//! JoinGroup/SyncGroup round runs on its own task so `poll` goes on returning their records
//! while the group rebalances.
//!
//! Static membership (KIP-345, `group.instance.id`): JoinGroup v5+ names the instance, close
//! does not send LeaveGroup, and FENCED_INSTANCE_ID is fatal ([`ClientError::FencedInstance`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::topic_name;
use crate::assignor::{self, Subscription};
use crate::client::Client;
use crate::connection::Connection;
use crate::consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, OffsetSpec};
use crate::error::{check_code, ClientError, Result};
use crate::TopicPartition;

const PROTOCOL_TYPE_CONSUMER: &str = "consumer";
/// FindCoordinator v3 is the newest with a single `key` (v4+ batch keys).
const FIND_COORDINATOR_MAX_VERSION: i16 = 3;
/// OffsetFetch v7 is the newest with a single group (v8+ batch groups).
const OFFSET_FETCH_MAX_VERSION: i16 = 7;
/// OffsetCommit v8 is the newest that names topics.
const OFFSET_COMMIT_MAX_VERSION: i16 = 8;
/// Waits between attempts while the coordinator is moving or loading.
const COORDINATOR_RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Join attempts before giving up (each retriable failure backs off first).
const MAX_JOIN_ATTEMPTS: u32 = 50;
/// Rebalances one poll may go through back to back (a cooperative hand-over needs two).
const MAX_REBALANCES_PER_POLL: u32 = 4;
/// JoinGroup v9 is the newest this client speaks (KIP-814 `skip_assignment`).
const JOIN_GROUP_MAX_VERSION: i16 = 9;
/// JoinGroup v5 added `group_instance_id` (KIP-345).
const JOIN_GROUP_STATIC_MIN_VERSION: i16 = 5;

#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    pub group_id: String,
    /// `group.instance.id` (KIP-345): makes this a static member. A static member that
    /// restarts within `session.timeout.ms` gets its partitions back without a rebalance, and
    /// it does not leave the group on close (as the Java client).
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`, sent as the rebalance timeout.
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `partition.assignment.strategy`, by protocol name, preferred first.
    pub assignors: Vec<String>,
    /// `enable.auto.commit`.
    pub auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval: Duration,
    /// Fetch settings and `auto.offset.reset` (used for partitions without a committed offset).
    pub consumer: ConsumerConfig,
}

impl GroupConsumerConfig {
    pub fn new(group_id: impl Into<String>) -> GroupConsumerConfig {
        GroupConsumerConfig {
            group_id: group_id.into(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            assignors: vec![
                assignor::RANGE.to_string(),
                assignor::COOPERATIVE_STICKY.to_string(),
            ],
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            consumer: ConsumerConfig::default(),
        }
    }

    /// Cooperative only when every configured assignor is cooperative, as the Java client
    /// decides: a list that still names an eager assignor (the default `range,
    /// cooperative-sticky`) is the first step of KIP-429's rolling upgrade, and the group may
    /// still pick the eager one.
    pub fn rebalance_protocol(&self) -> RebalanceProtocol {
        let all_cooperative = !self.assignors.is_empty()
            && self
                .assignors
                .iter()
                .all(|name| name == assignor::COOPERATIVE_STICKY);
        if all_cooperative {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }
}

/// How a member hands partitions over in a rebalance (the Java client's `RebalanceProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Give up every partition before rejoining; take the new assignment afterwards.
    Eager,
    /// KIP-429: keep the owned partitions while rejoining (they are reported in the
    /// subscription); give up only those the new assignment takes away, then rejoin at once so
    /// the follow-up rebalance can hand them to their new owner.
    Cooperative,
}

/// What a rebalance did to this member's partitions, in order (the Java client's
/// `ConsumerRebalanceListener` callbacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// Given up in an orderly way, after their positions were committed (with auto-commit).
    Revoked {
        generation: i32,
        partitions: Vec<TopicPartition>,
    },
    /// Added by a completed rebalance. Eager: the whole assignment; cooperative: only the
    /// partitions this member did not own before (possibly none).
    Assigned {
        generation: i32,
        partitions: Vec<TopicPartition>,
    },
    /// Taken away without a commit: the coordinator no longer knew this member (its session
    /// expired or its generation is gone), so another member may own them already.
    Lost { partitions: Vec<TopicPartition> },
}

/// Called with every [`RebalanceEvent`], on the task that polls.
pub type RebalanceListener = Arc<dyn Fn(&RebalanceEvent) + Send + Sync>;

/// What the heartbeat task (or a failed commit) asks of the next poll; a stronger signal
/// replaces a weaker one (`fetch_max`).
const SIGNAL_NONE: u8 = 0;
/// The group is rebalancing: rejoin.
const SIGNAL_REJOIN: u8 = 1;
/// The coordinator forgot this member or its generation: the partitions are lost, rejoin.
const SIGNAL_LOST: u8 = 2;
/// Another consumer took over this member's `group.instance.id`: fatal.
const SIGNAL_FENCED: u8 = 3;

/// This member's place in the current generation.
#[derive(Debug, Clone)]
struct Membership {
    coordinator: i32,
    member_id: String,
    generation: i32,
}

/// A consumer that shares its topics' partitions with the other members of a group.
pub struct GroupConsumer {
    client: Client,
    config: GroupConsumerConfig,
    topics: Vec<String>,
    consumer: Consumer,
    member_id: String,
    membership: Option<Membership>,
    /// The partitions this member owns (sorted). With the cooperative protocol they stay owned
    /// while the member rejoins.
    owned: Vec<TopicPartition>,
    /// The generation that assigned `owned` (reported in the subscription, KIP-792).
    owned_generation: Option<i32>,
    signal: Arc<AtomicU8>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// The JoinGroup/SyncGroup round in flight, if any.
    join: Option<tokio::task::JoinHandle<JoinOutcome>>,
    last_commit: Instant,
    listener: Option<RebalanceListener>,
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.stop_heartbeat();
        if let Some(join) = self.join.take() {
            join.abort();
        }
    }
}

impl GroupConsumer {
    pub fn new(client: Client, config: GroupConsumerConfig, topics: Vec<String>) -> GroupConsumer {
        let consumer = Consumer::new(client.clone(), config.consumer.clone());
        GroupConsumer {
            client,
            config,
            topics,
            consumer,
            member_id: String::new(),
            membership: None,
            owned: Vec::new(),
            owned_generation: None,
            signal: Arc::new(AtomicU8::new(SIGNAL_NONE)),
            heartbeat: None,
            join: None,
            last_commit: Instant::now(),
            listener: None,
        }
    }

    /// Calls `listener` with every change a rebalance makes to this member's partitions.
    pub fn set_rebalance_listener(&mut self, listener: RebalanceListener) {
        self.listener = Some(listener);
    }

    /// The partitions this member owns.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.owned
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation(&self) -> Option<i32> {
        self.membership
            .as_ref()
            .map(|membership| membership.generation)
    }

    pub fn rebalance_protocol(&self) -> RebalanceProtocol {
        self.config.rebalance_protocol()
    }

    /// The next offset to be returned per assigned partition.
    pub fn positions(&self) -> &BTreeMap<TopicPartition, i64> {
        self.consumer.positions()
    }

    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// Moves an assigned partition's position (the next commit stores it).
    pub async fn seek(&mut self, partition: &TopicPartition, spec: OffsetSpec) -> Result<()> {
        self.consumer.seek(partition, spec).await
    }

    /// Joins (or rejoins) the group when needed, commits when auto-commit is due, then returns
    /// the records that arrive within `timeout`.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.ensure_member().await?;
        if self.config.auto_commit && self.last_commit.elapsed() >= self.config.auto_commit_interval
        {
            self.commit_or_flag_rejoin().await?;
        }
        self.consumer.poll(timeout).await
    }

    /// Commits the positions of the owned partitions (everything returned by `poll` so far).
    pub async fn commit(&mut self) -> Result<()> {
        let Some(membership) = self.membership.clone() else {
            return Ok(());
        };
        let owned = self.owned.clone();
        self.commit_partitions(&membership, &owned).await
    }

    /// Commits (with auto-commit) and leaves the group, so the others rebalance at once instead
    /// of waiting for this member's session to time out. A static member does not leave: its
    /// partitions wait for it (up to `session.timeout.ms`) so a restart causes no rebalance.
    pub async fn close(mut self) -> Result<()> {
        self.finish_join_before_close().await?;
        if self.config.auto_commit {
            self.commit_or_flag_rejoin().await?;
        }
        self.stop_heartbeat();
        let Some(membership) = self.membership.take() else {
            return Ok(());
        };
        let owned = std::mem::take(&mut self.owned);
        self.consumer.remove_partitions(&owned);
        self.emit(RebalanceEvent::Revoked {
            generation: membership.generation,
            partitions: owned,
        });
        if self.config.group_instance_id.is_some() {
            return Ok(());
        }
        let connection = self
            .client
            .coordinator_connection(membership.coordinator)
            .await?;
        let version = connection.version_for::<LeaveGroupRequest>(5)?;
        let mut request =
            LeaveGroupRequest::default().with_group_id(group_id(&self.config.group_id));
        if version >= 3 {
            request.members = vec![MemberIdentity::default()
                .with_member_id(StrBytes::from_string(membership.member_id.clone()))];
        } else {
            request.member_id = StrBytes::from_string(membership.member_id.clone());
        }
        let response = connection
            .call_at(&request, version, Duration::ZERO)
            .await?;
        check_code(
            response.error_code,
            || format!("leave group `{}`", self.config.group_id),
            None,
        )
    }

    /// A cooperative member may close while its join round runs: the round is finished first,
    /// so the positions it fetched meanwhile are committed in the generation that knows them.
    async fn finish_join_before_close(&mut self) -> Result<()> {
        let Some(outcome) = self.finished_join(false).await? else {
            return Ok(());
        };
        self.member_id = outcome.member_id;
        match outcome.result {
            Ok((membership, assigned)) => self.become_member(membership, assigned).await,
            Err(error) => {
                tracing::debug!(group = %self.config.group_id, %error, "join failed while closing");
                Ok(())
            }
        }
    }

    fn emit(&self, event: RebalanceEvent) {
        tracing::debug!(group = %self.config.group_id, ?event, "rebalance");
        if let Some(listener) = &self.listener {
            listener(&event);
        }
    }

    fn stop_heartbeat(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }

    /// The error for a member whose `group.instance.id` another consumer took over; other
    /// errors pass through.
    fn fenced_or(&self, error: ClientError) -> ClientError {
        if error.kafka_error() != Some(ResponseError::FencedInstanceId) {
            return error;
        }
        self.fenced_error()
    }

    fn fenced_error(&self) -> ClientError {
        ClientError::FencedInstance {
            group: self.config.group_id.clone(),
            instance_id: self.config.group_instance_id.clone().unwrap_or_default(),
        }
    }

    async fn commit_partitions(
        &mut self,
        membership: &Membership,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let offsets: BTreeMap<TopicPartition, i64> = partitions
            .iter()
            .filter_map(|partition| {
                let position = self.consumer.positions().get(partition)?;
                Some((partition.clone(), *position))
            })
            .collect();
        self.last_commit = Instant::now();
        if offsets.is_empty() {
            return Ok(());
        }
        let connection = self
            .client
            .coordinator_connection(membership.coordinator)
            .await?;
        let member = MemberRef {
            generation: membership.generation,
            member_id: &membership.member_id,
            group_instance_id: self.config.group_instance_id.as_deref(),
        };
        commit_member_offsets(&connection, &self.config.group_id, &member, &offsets)
            .await
            .map_err(|error| self.fenced_or(error))
    }

    async fn commit_or_flag_rejoin(&mut self) -> Result<()> {
        match self.commit().await {
            Err(error) if needs_rejoin(&error) => {
                self.signal.fetch_max(SIGNAL_REJOIN, Ordering::AcqRel);
                Ok(())
            }
            other => other,
        }
    }

    /// A commit made on the way into a rebalance: a rebalance error only means the group moved
    /// on, which the join is about to handle.
    async fn commit_before_rebalance(
        &mut self,
        membership: &Membership,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        match self.commit_partitions(membership, partitions).await {
            Err(error) if needs_rejoin(&error) => {
                tracing::debug!(group = %self.config.group_id, %error, "commit before rebalance");
                Ok(())
            }
            other => other,
        }
    }

    /// Starts a rebalance when one is needed and applies the one that finished. A cooperative
    /// member that owns partitions keeps fetching them while its JoinGroup/SyncGroup round runs
    /// in the background; an eager member (which gave everything up) waits for it.
    async fn ensure_member(&mut self) -> Result<()> {
        // Each round is one rebalance; a cooperative hand-over takes two. More rounds in a row
        // mean the group keeps changing: return to the caller, the next poll goes on.
        for _ in 0..MAX_REBALANCES_PER_POLL {
            if self.join.is_none() && !self.start_join_if_needed().await? {
                return Ok(());
            }
            let keep_fetching = self.rebalance_protocol() == RebalanceProtocol::Cooperative
                && !self.owned.is_empty();
            let Some(outcome) = self.finished_join(keep_fetching).await? else {
                return Ok(());
            };
            self.member_id = outcome.member_id;
            match outcome.result.map_err(|error| self.fenced_or(error)) {
                Ok((membership, assigned)) => self.become_member(membership, assigned).await?,
                Err(error) if is_membership_gone(&error) => {
                    tracing::debug!(group = %self.config.group_id, %error, "partitions lost");
                    // As the Java client: a stale generation keeps the member id (no ghost
                    // member left behind); an unknown member id must be replaced.
                    if error.kafka_error() == Some(ResponseError::UnknownMemberId) {
                        self.member_id.clear();
                    }
                    self.signal.fetch_max(SIGNAL_LOST, Ordering::AcqRel);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Spawns a JoinGroup/SyncGroup round if the member has none or the heartbeat asked for
    /// one; false when nothing needs doing.
    async fn start_join_if_needed(&mut self) -> Result<bool> {
        let signal = self.signal.swap(SIGNAL_NONE, Ordering::AcqRel);
        if self.membership.is_some() && signal == SIGNAL_NONE {
            return Ok(false);
        }
        self.stop_heartbeat();
        match signal {
            SIGNAL_FENCED => return Err(self.fenced_error()),
            SIGNAL_LOST => self.lose_partitions(),
            _ => {}
        }
        self.prepare_rejoin().await?;
        self.membership = None;
        let joiner = Joiner {
            client: self.client.clone(),
            config: self.config.clone(),
            topics: self.topics.clone(),
            owned: self.owned.clone(),
            owned_generation: self.owned_generation,
            member_id: self.member_id.clone(),
        };
        self.join = Some(tokio::spawn(joiner.run()));
        Ok(true)
    }

    /// The outcome of the running join round: waits for it unless `keep_fetching`, in which
    /// case `None` means it is still running.
    async fn finished_join(&mut self, keep_fetching: bool) -> Result<Option<JoinOutcome>> {
        let Some(task) = self.join.as_ref() else {
            return Ok(None);
        };
        if keep_fetching && !task.is_finished() {
            return Ok(None);
        }
        let Some(task) = self.join.take() else {
            return Ok(None);
        };
        task.await
            .map(Some)
            .map_err(|join_error| ClientError::GroupTaskFailed {
                group: self.config.group_id.clone(),
                reason: join_error.to_string(),
            })
    }

    async fn become_member(
        &mut self,
        membership: Membership,
        assigned: Vec<TopicPartition>,
    ) -> Result<()> {
        self.take_assignment(&membership, assigned).await?;
        self.heartbeat = Some(tokio::spawn(heartbeat_loop(
            self.client.clone(),
            self.config.group_id.clone(),
            self.config.group_instance_id.clone(),
            membership.clone(),
            self.config.heartbeat_interval,
            self.signal.clone(),
        )));
        self.membership = Some(membership);
        self.last_commit = Instant::now();
        Ok(())
    }

    /// The coordinator no longer knows this member: its partitions may already be someone
    /// else's, so they are dropped without a commit.
    fn lose_partitions(&mut self) {
        self.membership = None;
        self.owned_generation = None;
        let lost = std::mem::take(&mut self.owned);
        if lost.is_empty() {
            return;
        }
        self.consumer.remove_partitions(&lost);
        self.emit(RebalanceEvent::Lost { partitions: lost });
    }

    /// Before a JoinGroup: commit (with auto-commit); eager members then give up everything.
    async fn prepare_rejoin(&mut self) -> Result<()> {
        if let (true, Some(membership)) = (self.config.auto_commit, self.membership.clone()) {
            let owned = self.owned.clone();
            self.commit_before_rebalance(&membership, &owned).await?;
        }
        if self.rebalance_protocol() == RebalanceProtocol::Cooperative {
            return Ok(());
        }
        let revoked = std::mem::take(&mut self.owned);
        if revoked.is_empty() {
            return Ok(());
        }
        self.consumer.remove_partitions(&revoked);
        let generation = self.generation().unwrap_or(-1);
        self.emit(RebalanceEvent::Revoked {
            generation,
            partitions: revoked,
        });
        Ok(())
    }

    /// Applies the assignment SyncGroup returned. Cooperative: partitions kept are untouched,
    /// partitions taken away are committed and revoked, and a rejoin follows at once so the
    /// leader can hand them to their new owner.
    async fn take_assignment(
        &mut self,
        membership: &Membership,
        mut assigned: Vec<TopicPartition>,
    ) -> Result<()> {
        assigned.sort();
        assigned.dedup();
        let owned: BTreeSet<TopicPartition> = self.owned.iter().cloned().collect();
        let assigned_set: BTreeSet<TopicPartition> = assigned.iter().cloned().collect();
        let revoked: Vec<TopicPartition> = owned.difference(&assigned_set).cloned().collect();
        let added: Vec<TopicPartition> = assigned_set.difference(&owned).cloned().collect();
        if !revoked.is_empty() {
            if self.config.auto_commit {
                self.commit_before_rebalance(membership, &revoked).await?;
            }
            self.consumer.remove_partitions(&revoked);
            self.emit(RebalanceEvent::Revoked {
                generation: membership.generation,
                partitions: revoked,
            });
            self.signal.fetch_max(SIGNAL_REJOIN, Ordering::AcqRel);
        }
        self.owned = assigned;
        self.owned_generation = Some(membership.generation);
        self.start_from_committed(membership, &added).await?;
        self.emit(RebalanceEvent::Assigned {
            generation: membership.generation,
            partitions: added,
        });
        Ok(())
    }

    /// Starts each newly assigned partition at its committed offset, or per
    /// `auto.offset.reset`; the partitions already owned keep their positions.
    async fn start_from_committed(
        &mut self,
        membership: &Membership,
        added: &[TopicPartition],
    ) -> Result<()> {
        if added.is_empty() {
            return Ok(());
        }
        let connection = self
            .client
            .coordinator_connection(membership.coordinator)
            .await?;
        let committed =
            fetch_committed_offsets(&connection, &self.config.group_id, Some(added)).await?;
        let reset = match self.config.consumer.offset_reset {
            OffsetReset::Earliest => Some(OffsetSpec::Earliest),
            OffsetReset::Latest => Some(OffsetSpec::Latest),
            OffsetReset::Fail => None,
        };
        let mut starts = Vec::new();
        for partition in added {
            let spec = match committed.get(partition) {
                Some(&offset) if offset >= 0 => OffsetSpec::Offset(offset),
                _ => reset.ok_or_else(|| {
                    ClientError::InvalidConfig(format!(
                        "{partition} has no committed offset in group `{}` and auto.offset.reset is none",
                        self.config.group_id
                    ))
                })?,
            };
            starts.push((partition.clone(), spec));
        }
        self.consumer.add_partitions(starts).await
    }
}

/// What a background join round ended with, and the member id it left (KIP-394 hands one
/// out on the first join).
struct JoinOutcome {
    member_id: String,
    result: Result<(Membership, Vec<TopicPartition>)>,
}

/// One JoinGroup/SyncGroup round (with retries), run off the polling task so a cooperative
/// member keeps fetching its partitions meanwhile. Holds a snapshot of what the member reports.
struct Joiner {
    client: Client,
    config: GroupConsumerConfig,
    topics: Vec<String>,
    owned: Vec<TopicPartition>,
    owned_generation: Option<i32>,
    member_id: String,
}

impl Joiner {
    async fn run(mut self) -> JoinOutcome {
        let result = self.join_with_retries().await;
        JoinOutcome {
            member_id: self.member_id,
            result,
        }
    }

    /// Retries what may pass (coordinator moving, rebalance in progress); a forgotten member
    /// id or generation goes back to the member, which must drop its partitions first.
    async fn join_with_retries(&mut self) -> Result<(Membership, Vec<TopicPartition>)> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match self.join_and_sync().await {
                Ok(joined) => return Ok(joined),
                Err(error) => error,
            };
            let retriable = is_retriable_group_error(&error) && !is_membership_gone(&error);
            if attempts >= MAX_JOIN_ATTEMPTS || !retriable {
                return Err(error);
            }
            tracing::debug!(group = %self.config.group_id, %error, "rejoining");
            tokio::time::sleep(COORDINATOR_RETRY_BACKOFF).await;
        }
    }

    async fn join_and_sync(&mut self) -> Result<(Membership, Vec<TopicPartition>)> {
        let coordinator = find_coordinator(&self.client, &self.config.group_id).await?;
        let connection = self.client.coordinator_connection(coordinator).await?;
        let join = self.join(&connection).await?;
        self.member_id = join.member_id.to_string();
        let protocol = join
            .protocol_name
            .as_ref()
            .map(|name| name.to_string())
            .unwrap_or_default();
        // KIP-814: a restarted static leader of a stable group must not reassign; the
        // coordinator keeps the current assignment.
        let assignments = if join.leader == join.member_id && !join.skip_assignment {
            let members: Vec<(String, Bytes)> = join
                .members
                .iter()
                .map(|member| (member.member_id.to_string(), member.metadata.clone()))
                .collect();
            self.lead_assignment(&protocol, members).await?
        } else {
            Vec::new()
        };
        let request = SyncGroupRequest::default()
            .with_group_id(group_id(&self.config.group_id))
            .with_generation_id(join.generation_id)
            .with_member_id(join.member_id.clone())
            .with_group_instance_id(self.instance_id())
            .with_protocol_type(Some(StrBytes::from_static_str(PROTOCOL_TYPE_CONSUMER)))
            .with_protocol_name(Some(StrBytes::from_string(protocol.clone())))
            .with_assignments(assignments);
        let (_, sync) = connection
            .call(&request, 5, self.config.rebalance_timeout)
            .await?;
        check_code(
            sync.error_code,
            || format!("sync group `{}`", self.config.group_id),
            None,
        )?;
        let assigned = assignor::decode_assignment(sync.assignment)?;
        let membership = Membership {
            coordinator,
            member_id: join.member_id.to_string(),
            generation: join.generation_id,
        };
        Ok((membership, assigned))
    }

    fn instance_id(&self) -> Option<StrBytes> {
        self.config
            .group_instance_id
            .as_ref()
            .map(|id| StrBytes::from_string(id.clone()))
    }

    /// JoinGroup until the coordinator answers with a generation (KIP-394: the first join of
    /// a dynamic member only obtains its member id).
    async fn join(&mut self, connection: &Connection) -> Result<JoinGroupResponse> {
        let version = connection.version_for::<JoinGroupRequest>(JOIN_GROUP_MAX_VERSION)?;
        if self.config.group_instance_id.is_some() && version < JOIN_GROUP_STATIC_MIN_VERSION {
            return Err(ClientError::InvalidConfig(format!(
                "group.instance.id needs JoinGroup v{JOIN_GROUP_STATIC_MIN_VERSION}+ (KIP-345); {} speaks up to v{version}",
                connection.address()
            )));
        }
        let metadata = assignor::encode_subscription(&Subscription {
            topics: self.topics.clone(),
            owned_partitions: self.owned.clone(),
            generation: self.owned_generation,
        })?;
        let protocols: Vec<JoinGroupRequestProtocol> = self
            .config
            .assignors
            .iter()
            .map(|name| {
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_metadata(metadata.clone())
            })
            .collect();
        loop {
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(&self.config.group_id))
                .with_session_timeout_ms(millis(self.config.session_timeout))
                .with_rebalance_timeout_ms(millis(self.config.rebalance_timeout))
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_group_instance_id(self.instance_id())
                .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE_CONSUMER))
                .with_protocols(protocols.clone());
            let response = connection
                .call_at(&request, version, self.config.rebalance_timeout)
                .await?;
            if response.error_code == ResponseError::MemberIdRequired.code() {
                self.member_id = response.member_id.to_string();
                continue;
            }
            check_code(
                response.error_code,
                || format!("join group `{}`", self.config.group_id),
                None,
            )?;
            return Ok(response);
        }
    }

    /// The leader's part of a rebalance: decode every member's subscription, look up the
    /// partition counts and run the chosen assignor.
    async fn lead_assignment(
        &self,
        protocol: &str,
        members: Vec<(String, Bytes)>,
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let mut subscriptions = BTreeMap::new();
        for (member_id, metadata) in members {
            subscriptions.insert(member_id, assignor::decode_subscription(metadata)?);
        }
        let topics: BTreeSet<String> = subscriptions
            .values()
            .flat_map(|subscription| subscription.topics.iter().cloned())
            .collect();
        let mut partitions_per_topic = BTreeMap::new();
        for topic in topics {
            // A subscribed topic that does not exist (yet) simply has no partitions to assign.
            match self.client.topic_metadata(&topic, false).await {
                Ok(metadata) => {
                    partitions_per_topic.insert(topic, metadata.partitions.len() as i32);
                }
                Err(ClientError::UnknownTopic(_)) => {}
                Err(error) => return Err(error),
            }
        }
        let assignment = assignor::assign(protocol, &subscriptions, &partitions_per_topic)
            .ok_or_else(|| {
                ClientError::InvalidConfig(format!("the group chose unknown assignor `{protocol}`"))
            })?;
        assignment
            .into_iter()
            .map(|(member_id, partitions)| {
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member_id))
                    .with_assignment(assignor::encode_assignment(&partitions)?))
            })
            .collect()
    }
}

/// Sends heartbeats until the coordinator answers with an error; then signals the next poll
/// (rejoin, partitions lost, or fenced) and stops.
async fn heartbeat_loop(
    client: Client,
    group: String,
    group_instance_id: Option<String>,
    membership: Membership,
    interval: Duration,
    signal: Arc<AtomicU8>,
) {
    loop {
        tokio::time::sleep(interval).await;
        let request = HeartbeatRequest::default()
            .with_group_id(group_id(&group))
            .with_generation_id(membership.generation)
            .with_member_id(StrBytes::from_string(membership.member_id.clone()))
            .with_group_instance_id(group_instance_id.clone().map(StrBytes::from_string));
        let response = match client.coordinator_connection(membership.coordinator).await {
            Ok(connection) => connection.call(&request, 4, Duration::ZERO).await,
            Err(error) => Err(error),
        };
        match response {
            Ok((_, response)) if response.error_code == 0 => {}
            Ok((_, response)) => {
                tracing::debug!(%group, code = response.error_code, "heartbeat asks for a rejoin");
                signal.fetch_max(heartbeat_signal(response.error_code), Ordering::AcqRel);
                return;
            }
            Err(error) => tracing::debug!(%group, %error, "heartbeat failed; retrying"),
        }
    }
}

/// What a heartbeat error means for the member.
fn heartbeat_signal(error_code: i16) -> u8 {
    if error_code == ResponseError::FencedInstanceId.code() {
        return SIGNAL_FENCED;
    }
    if error_code == ResponseError::UnknownMemberId.code()
        || error_code == ResponseError::IllegalGeneration.code()
    {
        return SIGNAL_LOST;
    }
    SIGNAL_REJOIN
}

fn needs_rejoin(error: &ClientError) -> bool {
    matches!(
        error.kafka_error(),
        Some(
            ResponseError::RebalanceInProgress
                | ResponseError::IllegalGeneration
                | ResponseError::UnknownMemberId
                | ResponseError::NotCoordinator
                | ResponseError::CoordinatorNotAvailable
        )
    )
}

/// The coordinator no longer knows this member id or generation: its partitions are lost.
fn is_membership_gone(error: &ClientError) -> bool {
    matches!(
        error.kafka_error(),
        Some(ResponseError::UnknownMemberId | ResponseError::IllegalGeneration)
    )
}

fn is_retriable_group_error(error: &ClientError) -> bool {
    error.is_retriable() || needs_rejoin(error)
}

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

/// The broker coordinating `group`.
pub async fn find_coordinator(client: &Client, group: &str) -> Result<i32> {
    let connection = client.any_connection().await?;
    let version = connection.version_for::<FindCoordinatorRequest>(FIND_COORDINATOR_MAX_VERSION)?;
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let response = connection
        .call_at(&request, version, Duration::ZERO)
        .await?;
    check_code(
        response.error_code,
        || format!("find the coordinator of group `{group}`"),
        response.error_message.as_deref(),
    )?;
    let node_id = response.node_id.0;
    // Make sure the coordinator's address is known even if it joined after our last refresh.
    if !client.metadata().brokers.contains_key(&node_id) {
        client.refresh_metadata(Some(&[]), false).await?;
    }
    Ok(node_id)
}

/// Committed offsets of `group` (for `partitions`, or all it has with `None`); -1 means none.
pub async fn fetch_committed_offsets(
    connection: &Connection,
    group: &str,
    partitions: Option<&[TopicPartition]>,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let topics = partitions.map(|partitions| {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for partition in partitions {
            by_topic
                .entry(&partition.topic)
                .or_default()
                .push(partition.partition);
        }
        by_topic
            .into_iter()
            .map(|(topic, indexes)| {
                OffsetFetchRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(indexes)
            })
            .collect()
    });
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(topics);
    let (version, response) = connection
        .call(&request, OFFSET_FETCH_MAX_VERSION, Duration::ZERO)
        .await?;
    if version >= 2 {
        check_code(
            response.error_code,
            || format!("fetch the offsets of group `{group}`"),
            None,
        )?;
    }
    let mut offsets = BTreeMap::new();
    for topic in response.topics {
        for partition in topic.partitions {
            let topic_partition =
                TopicPartition::new(topic.name.0.as_str(), partition.partition_index);
            check_code(
                partition.error_code,
                || format!("fetch the offset of {topic_partition} in group `{group}`"),
                None,
            )?;
            offsets.insert(topic_partition, partition.committed_offset);
        }
    }
    Ok(offsets)
}

/// Commits `offsets` for `group`. A member passes its generation and id; an admin resetting an
/// empty group passes -1 and "".
pub async fn commit_offsets(
    connection: &Connection,
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    let member = MemberRef {
        generation,
        member_id,
        group_instance_id: None,
    };
    commit_member_offsets(connection, group, &member, offsets).await
}

/// Who commits: a member's generation and ids (a static member also names its instance, so a
/// fenced one cannot commit over its successor).
struct MemberRef<'a> {
    generation: i32,
    member_id: &'a str,
    group_instance_id: Option<&'a str>,
}

async fn commit_member_offsets(
    connection: &Connection,
    group: &str,
    member: &MemberRef<'_>,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (partition, offset) in offsets {
        by_topic.entry(&partition.topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(partition.partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::new())),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(member.generation)
        .with_member_id(StrBytes::from_string(member.member_id.to_string()))
        .with_group_instance_id(
            member
                .group_instance_id
                .map(|id| StrBytes::from_string(id.to_string())),
        )
        .with_retention_time_ms(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let (_, response) = connection
        .call(&request, OFFSET_COMMIT_MAX_VERSION, Duration::ZERO)
        .await?;
    for topic in response.topics {
        for partition in topic.partitions {
            check_code(
                partition.error_code,
                || {
                    format!(
                        "commit the offset of {}-{} in group `{group}`",
                        topic.name.0.as_str(),
                        partition.partition_index
                    )
                },
                None,
            )?;
        }
    }
    Ok(())
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// Empty when the broker's ListGroups version does not carry states.
    pub state: String,
}

/// Every group on every broker, sorted by id.
pub async fn list_groups(client: &Client) -> Result<Vec<ListedGroup>> {
    let brokers: Vec<i32> = client.metadata().brokers.keys().copied().collect();
    let mut groups = Vec::new();
    for broker in brokers {
        let connection = client.coordinator_connection(broker).await?;
        let (_, response) = connection
            .call(&ListGroupsRequest::default(), 5, Duration::ZERO)
            .await?;
        check_code(response.error_code, || "list groups".to_string(), None)?;
        groups.extend(response.groups.into_iter().map(|group| ListedGroup {
            group_id: group.group_id.0.to_string(),
            protocol_type: group.protocol_type.to_string(),
            state: group.group_state.to_string(),
        }));
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    groups.dedup_by(|a, b| a.group_id == b.group_id);
    Ok(groups)
}

#[derive(Debug, Clone)]
pub struct GroupMember {
    pub member_id: String,
    /// `group.instance.id` of a static member (DescribeGroups v4+).
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Decoded when the group uses the consumer protocol.
    pub assignment: Vec<TopicPartition>,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    /// The assignor in use.
    pub protocol: String,
    pub members: Vec<GroupMember>,
    pub coordinator: i32,
}

pub async fn describe_group(client: &Client, group: &str) -> Result<GroupDescription> {
    let coordinator = find_coordinator(client, group).await?;
    let connection = client.coordinator_connection(coordinator).await?;
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let (_, response) = connection.call(&request, 5, Duration::ZERO).await?;
    let described = response
        .groups
        .into_iter()
        .find(|described| described.group_id.0.as_str() == group)
        .ok_or_else(|| ClientError::Decode {
            api: "DescribeGroups",
            address: connection.address().to_string(),
            message: format!("no answer for group `{group}`"),
        })?;
    check_code(
        described.error_code,
        || format!("describe group `{group}`"),
        described.error_message.as_deref(),
    )?;
    let consumer_protocol = described.protocol_type.as_str() == PROTOCOL_TYPE_CONSUMER;
    let members = described
        .members
        .into_iter()
        .map(|member| GroupMember {
            member_id: member.member_id.to_string(),
            group_instance_id: member.group_instance_id.map(|id| id.to_string()),
            client_id: member.client_id.to_string(),
            client_host: member.client_host.to_string(),
            assignment: if consumer_protocol {
                assignor::decode_assignment(member.member_assignment).unwrap_or_default()
            } else {
                Vec::new()
            },
        })
        .collect();
    Ok(GroupDescription {
        group_id: group.to_string(),
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        members,
        coordinator,
    })
}

/// Deletes empty groups (and their committed offsets).
pub async fn delete_groups(client: &Client, groups: &[String]) -> Result<()> {
    for group in groups {
        let coordinator = find_coordinator(client, group).await?;
        let connection = client.coordinator_connection(coordinator).await?;
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        let (_, response) = connection.call(&request, 2, Duration::ZERO).await?;
        for result in response.results {
            check_code(
                result.error_code,
                || format!("cannot delete group `{}`", result.group_id.0.as_str()),
                None,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebalance_errors_mean_rejoin_others_do_not() {
        for error in [
            ResponseError::RebalanceInProgress,
            ResponseError::IllegalGeneration,
            ResponseError::UnknownMemberId,
            ResponseError::NotCoordinator,
        ] {
            assert!(
                needs_rejoin(&ClientError::broker("x", error, None)),
                "{error:?}"
            );
        }
        let denied = ClientError::broker("x", ResponseError::GroupAuthorizationFailed, None);
        assert!(!needs_rejoin(&denied));
        assert!(!is_retriable_group_error(&denied));
        let closed = ClientError::ConnectionClosed {
            address: "a".into(),
        };
        assert!(is_retriable_group_error(&closed));
    }

    #[test]
    fn cooperative_only_when_every_assignor_is() {
        let mut config = GroupConsumerConfig::new("g");
        assert_eq!(config.rebalance_protocol(), RebalanceProtocol::Eager);
        config.assignors = vec![assignor::COOPERATIVE_STICKY.to_string()];
        assert_eq!(config.rebalance_protocol(), RebalanceProtocol::Cooperative);
        config.assignors.clear();
        assert_eq!(config.rebalance_protocol(), RebalanceProtocol::Eager);
    }

    #[test]
    fn heartbeat_errors_map_to_the_strongest_signal() {
        assert_eq!(
            heartbeat_signal(ResponseError::RebalanceInProgress.code()),
            SIGNAL_REJOIN
        );
        assert_eq!(
            heartbeat_signal(ResponseError::UnknownMemberId.code()),
            SIGNAL_LOST
        );
        assert_eq!(
            heartbeat_signal(ResponseError::IllegalGeneration.code()),
            SIGNAL_LOST
        );
        assert_eq!(
            heartbeat_signal(ResponseError::FencedInstanceId.code()),
            SIGNAL_FENCED
        );
        let signal = AtomicU8::new(SIGNAL_FENCED);
        signal.fetch_max(SIGNAL_REJOIN, Ordering::AcqRel);
        assert_eq!(signal.load(Ordering::Acquire), SIGNAL_FENCED);
    }

    #[test]
    fn defaults_follow_the_java_client() {
        let config = GroupConsumerConfig::new("g");
        assert_eq!(config.assignors, ["range", "cooperative-sticky"]);
        assert_eq!(config.session_timeout, Duration::from_secs(45));
        assert_eq!(config.heartbeat_interval, Duration::from_secs(3));
        assert!(config.auto_commit);
    }
}
