//! Consumer groups over the classic protocol: coordinator lookup, membership (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup), committed offsets, and the admin calls behind
//! `quill group …` (list, describe, delete, offsets).
//!
//! Membership is eager: before rejoining, a member commits (with auto-commit) and gives up every
//! partition, then reports no owned partitions. That is safe with every assignor, including
//! `cooperative-sticky` in a group whose other members are cooperative Java clients (the
//! leader-side withholding in [`crate::assignor::cooperative_sticky`] protects their
//! partitions; ours were already released).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
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
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
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

#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    pub group_id: String,
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
}

/// This member's place in the current generation.
#[derive(Debug, Clone)]
struct Membership {
    coordinator: i32,
    member_id: String,
    generation: i32,
    assignment: Vec<TopicPartition>,
}

/// A consumer that shares its topics' partitions with the other members of a group.
pub struct GroupConsumer {
    client: Client,
    config: GroupConsumerConfig,
    topics: Vec<String>,
    consumer: Consumer,
    member_id: String,
    membership: Option<Membership>,
    rejoin_needed: Arc<AtomicBool>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    last_commit: Instant,
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
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
            rejoin_needed: Arc::new(AtomicBool::new(false)),
            heartbeat: None,
            last_commit: Instant::now(),
        }
    }

    /// The partitions assigned in the current generation.
    pub fn assignment(&self) -> &[TopicPartition] {
        self.membership
            .as_ref()
            .map_or(&[], |membership| membership.assignment.as_slice())
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation(&self) -> Option<i32> {
        self.membership
            .as_ref()
            .map(|membership| membership.generation)
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

    /// Commits the positions of the assigned partitions (everything returned by `poll` so far).
    pub async fn commit(&mut self) -> Result<()> {
        let Some(membership) = self.membership.clone() else {
            return Ok(());
        };
        let offsets: BTreeMap<TopicPartition, i64> = membership
            .assignment
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
        commit_offsets(
            &connection,
            &self.config.group_id,
            membership.generation,
            &membership.member_id,
            &offsets,
        )
        .await
    }

    /// Commits (with auto-commit) and leaves the group, so the others rebalance at once instead
    /// of waiting for this member's session to time out.
    pub async fn close(mut self) -> Result<()> {
        if self.config.auto_commit {
            self.commit_or_flag_rejoin().await?;
        }
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        let Some(membership) = self.membership.take() else {
            return Ok(());
        };
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

    async fn commit_or_flag_rejoin(&mut self) -> Result<()> {
        match self.commit().await {
            Err(error) if needs_rejoin(&error) => {
                self.rejoin_needed.store(true, Ordering::Release);
                Ok(())
            }
            other => other,
        }
    }

    async fn ensure_member(&mut self) -> Result<()> {
        let rejoin = self.rejoin_needed.swap(false, Ordering::AcqRel);
        if self.membership.is_some() && !rejoin {
            return Ok(());
        }
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        self.membership = None;
        let mut attempts = 0;
        let membership = loop {
            attempts += 1;
            match self.join_and_sync().await {
                Ok(membership) => break membership,
                Err(error) if attempts < MAX_JOIN_ATTEMPTS && is_retriable_group_error(&error) => {
                    tracing::debug!(group = %self.config.group_id, %error, "rejoining");
                    if error.kafka_error() == Some(ResponseError::UnknownMemberId) {
                        self.member_id.clear();
                    }
                    tokio::time::sleep(COORDINATOR_RETRY_BACKOFF).await;
                }
                Err(error) => return Err(error),
            }
        };
        self.start_from_committed(&membership).await?;
        self.heartbeat = Some(tokio::spawn(heartbeat_loop(
            self.client.clone(),
            self.config.group_id.clone(),
            membership.clone(),
            self.config.heartbeat_interval,
            self.rejoin_needed.clone(),
        )));
        self.membership = Some(membership);
        self.last_commit = Instant::now();
        Ok(())
    }

    async fn join_and_sync(&mut self) -> Result<Membership> {
        let coordinator = find_coordinator(&self.client, &self.config.group_id).await?;
        let connection = self.client.coordinator_connection(coordinator).await?;
        let metadata = assignor::encode_subscription(&Subscription {
            topics: self.topics.clone(),
            owned_partitions: Vec::new(),
        })?;
        let join = loop {
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(&self.config.group_id))
                .with_session_timeout_ms(millis(self.config.session_timeout))
                .with_rebalance_timeout_ms(millis(self.config.rebalance_timeout))
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE_CONSUMER))
                .with_protocols(
                    self.config
                        .assignors
                        .iter()
                        .map(|name| {
                            JoinGroupRequestProtocol::default()
                                .with_name(StrBytes::from_string(name.clone()))
                                .with_metadata(metadata.clone())
                        })
                        .collect(),
                );
            let (_, response) = connection
                .call(&request, 9, self.config.rebalance_timeout)
                .await?;
            // KIP-394: the first join only obtains a member id.
            if response.error_code == ResponseError::MemberIdRequired.code() {
                self.member_id = response.member_id.to_string();
                continue;
            }
            check_code(
                response.error_code,
                || format!("join group `{}`", self.config.group_id),
                None,
            )?;
            break response;
        };
        self.member_id = join.member_id.to_string();
        let protocol = join
            .protocol_name
            .map(|name| name.to_string())
            .unwrap_or_default();
        let assignments = if join.leader == join.member_id {
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
        let assignment = assignor::decode_assignment(sync.assignment)?;
        tracing::debug!(group = %self.config.group_id, generation = join.generation_id, ?assignment, "joined");
        Ok(Membership {
            coordinator,
            member_id: self.member_id.clone(),
            generation: join.generation_id,
            assignment,
        })
    }

    /// The leader's half of a rebalance: read every member's subscription, look up the
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

    /// Starts each assigned partition at its committed offset, or per `auto.offset.reset`.
    async fn start_from_committed(&mut self, membership: &Membership) -> Result<()> {
        let connection = self
            .client
            .coordinator_connection(membership.coordinator)
            .await?;
        let committed = fetch_committed_offsets(
            &connection,
            &self.config.group_id,
            Some(&membership.assignment),
        )
        .await?;
        let reset = match self.config.consumer.offset_reset {
            OffsetReset::Earliest => Some(OffsetSpec::Earliest),
            OffsetReset::Latest => Some(OffsetSpec::Latest),
            OffsetReset::Fail => None,
        };
        let mut starts = Vec::new();
        for partition in &membership.assignment {
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
        self.consumer.assign(starts).await
    }
}

/// Sends heartbeats until the coordinator says the group is rebalancing (or forgot us); then
/// flags a rejoin for the next poll and stops.
async fn heartbeat_loop(
    client: Client,
    group: String,
    membership: Membership,
    interval: Duration,
    rejoin_needed: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(interval).await;
        let request = HeartbeatRequest::default()
            .with_group_id(group_id(&group))
            .with_generation_id(membership.generation)
            .with_member_id(StrBytes::from_string(membership.member_id.clone()));
        let response = match client.coordinator_connection(membership.coordinator).await {
            Ok(connection) => connection.call(&request, 4, Duration::ZERO).await,
            Err(error) => Err(error),
        };
        match response {
            Ok((_, response)) if response.error_code == 0 => {}
            Ok((_, response)) => {
                tracing::debug!(%group, code = response.error_code, "heartbeat asks for a rejoin");
                rejoin_needed.store(true, Ordering::Release);
                return;
            }
            Err(error) => tracing::debug!(%group, %error, "heartbeat failed; retrying"),
        }
    }
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
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
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
    fn defaults_follow_the_java_client() {
        let config = GroupConsumerConfig::new("g");
        assert_eq!(config.assignors, ["range", "cooperative-sticky"]);
        assert_eq!(config.session_timeout, Duration::from_secs(45));
        assert_eq!(config.heartbeat_interval, Duration::from_secs(3));
        assert!(config.auto_commit);
    }
}
