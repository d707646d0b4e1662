//! The group coordinator: Kafka's classic group protocol over groups, with timers for
//! session, rebalance and sync timeouts, and durability through an [`OffsetsStore`].
//!
//! Concurrency: groups live in one map per `__consumer_offsets` partition (`RwLock`, held only
//! to look up or insert an `Arc`), and each group has its own `Mutex`, held only for in-memory
//! work, never across an `.await`. Rebalances wait on oneshot channels parked in the members;
//! timeouts are tokio timers (one task per armed timer, aborted when superseded), so a thousand
//! members joining one group never block another group. Store appends are *issued* under the
//! group lock (fixing their order in the log) and *awaited* in a spawned task that re-locks the
//! group to apply the result, so a client that disconnects cannot strand a half-done write.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

use crate::api::*;
use crate::config::GroupConfig;
use crate::consumer_protocol::CONSUMER_PROTOCOL_TYPE;
use crate::error::{GroupError, StoreError};
use crate::group::{Group, GroupState, JoinTimer, JoinTimerKind, Member, Timer};
use crate::partitioner::partition_for_group;
use crate::records::{self, OffsetCommitValue, RecordKey};
use crate::store::{BoxFuture, OffsetsStore, StoredRecord};

/// Milliseconds since the Unix epoch, advanced by tokio's clock so paused-time tests see
/// commit and state timestamps move with their timers.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base_wall_ms: i64,
    base_instant: Instant,
}

impl Clock {
    fn new() -> Clock {
        let base_wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
            });
        Clock {
            base_wall_ms,
            base_instant: Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        let elapsed_ms = i64::try_from(self.base_instant.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.base_wall_ms.saturating_add(elapsed_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    NotOwned,
    Loading,
    Owned,
}

struct Slot {
    state: SlotState,
    groups: HashMap<String, Arc<GroupCell>>,
    /// Bumped by every load/unload, so a load that finishes after an unload is discarded.
    epoch: u64,
}

struct GroupCell {
    partition: i32,
    group: Mutex<Group>,
}

impl GroupCell {
    fn lock(&self) -> MutexGuard<'_, Group> {
        self.group
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Shared {
    config: GroupConfig,
    store: Arc<dyn OffsetsStore>,
    clock: Clock,
    slots: Vec<RwLock<Slot>>,
}

/// The coordinator for every group whose `__consumer_offsets` partition this broker leads.
/// Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct GroupCoordinator {
    shared: Arc<Shared>,
}

/// The group being worked on, with what its timers and store completions need to re-find it.
struct Ops<'a> {
    shared: &'a Arc<Shared>,
    cell: &'a Arc<GroupCell>,
}

// ---------------------------------------------------------------------------------------------
// Construction, partitions, loading

impl GroupCoordinator {
    /// A coordinator that owns no partition yet: call [`GroupCoordinator::load_partition`] for
    /// each `__consumer_offsets` partition this broker leads. Must be called inside a tokio
    /// runtime (timers are tokio tasks).
    pub fn new(config: GroupConfig, store: Arc<dyn OffsetsStore>) -> GroupCoordinator {
        let partitions = config.offsets_topic_partitions.max(1);
        let slots = (0..partitions)
            .map(|_| {
                RwLock::new(Slot {
                    state: SlotState::NotOwned,
                    groups: HashMap::new(),
                    epoch: 0,
                })
            })
            .collect();
        GroupCoordinator {
            shared: Arc::new(Shared {
                config,
                store,
                clock: Clock::new(),
                slots,
            }),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.shared.config
    }

    /// The `__consumer_offsets` partition holding `group_id` (for FindCoordinator).
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for_group(group_id, self.shared.config.offsets_topic_partitions)
    }

    /// Loads every partition (a single-node broker leads them all), all of them concurrently:
    /// each is marked loading first, so no request answers NOT_COORDINATOR meanwhile. Returns
    /// the first error; a partition that failed stays loading (see [`Self::load_partition`]).
    pub async fn load_all_partitions(&self) -> Result<(), StoreError> {
        self.begin_loading_all();
        let mut loads = tokio::task::JoinSet::new();
        for partition in 0..self.shared.config.offsets_topic_partitions {
            let coordinator = self.clone();
            loads.spawn(async move { coordinator.load_partition(partition).await });
        }
        let mut first_error = None;
        while let Some(joined) = loads.join_next().await {
            let outcome = joined.unwrap_or_else(|error| Err(StoreError::Failed(error.to_string())));
            if let Err(error) = outcome {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Marks every partition this broker does not coordinate yet as loading, without reading
    /// anything: from now on its groups answer COORDINATOR_LOAD_IN_PROGRESS (which clients
    /// retry) instead of NOT_COORDINATOR (which sends them looking for another coordinator).
    /// The broker calls it before it serves, then loads in the background.
    pub fn begin_loading_all(&self) {
        self.begin_loading(0..self.shared.config.offsets_topic_partitions);
    }

    /// [`Self::begin_loading_all`] for the given partitions only (those this broker leads).
    pub fn begin_loading(&self, partitions: impl IntoIterator<Item = i32>) {
        for partition in partitions {
            if let Some(mut slot) = self.shared.write_slot(partition) {
                if slot.state == SlotState::NotOwned {
                    slot.state = SlotState::Loading;
                    slot.epoch += 1;
                }
            }
        }
    }

    /// Becomes coordinator of `partition`: replays its records into groups and offsets. Requests
    /// for its groups answer COORDINATOR_LOAD_IN_PROGRESS until this completes. If the records
    /// cannot be read the partition stays loading: call this again (the broker retries with
    /// backoff) or [`Self::unload_partition`].
    pub async fn load_partition(&self, partition: i32) -> Result<(), StoreError> {
        let epoch = {
            let Some(mut slot) = self.shared.write_slot(partition) else {
                return Err(StoreError::Failed(format!(
                    "partition {partition} is outside offsets.topic.num.partitions"
                )));
            };
            for cell in std::mem::take(&mut slot.groups).into_values() {
                cell.lock().shut_down();
            }
            slot.state = SlotState::Loading;
            slot.epoch += 1;
            slot.epoch
        };
        let loaded = self.shared.store.read_all_resolved(partition).await?;
        let records = loaded.records;
        let mut groups = replay(&records);
        attach_pending_txn_offsets(&mut groups, loaded.pending);
        let mut cells = Vec::with_capacity(groups.len());
        let Some(mut slot) = self.shared.write_slot(partition) else {
            return Ok(());
        };
        if slot.epoch != epoch || slot.state != SlotState::Loading {
            return Ok(()); // unloaded (or reloaded) meanwhile
        }
        for group in groups {
            let cell = Arc::new(GroupCell {
                partition,
                group: Mutex::new(group),
            });
            let id = cell.lock().id.clone();
            slot.groups.insert(id, cell.clone());
            cells.push(cell);
        }
        slot.state = SlotState::Owned;
        drop(slot);
        // Loaded members must heartbeat within their session timeout, counted from now.
        for cell in &cells {
            let ops = Ops {
                shared: &self.shared,
                cell,
            };
            let mut group = cell.lock();
            let members: Vec<(String, i32)> = group
                .members
                .values()
                .map(|m| (m.member_id.clone(), m.session_timeout_ms))
                .collect();
            for (member_id, session_timeout_ms) in members {
                ops.schedule_heartbeat(&mut group, &member_id, millis(session_timeout_ms));
            }
        }
        // One line per partition is detail (50 of them at every start); the broker logs one
        // line when every partition is loaded.
        tracing::debug!(
            partition,
            groups = cells.len(),
            records = records.len(),
            "loaded __consumer_offsets partition"
        );
        Ok(())
    }

    /// Stops coordinating `partition` (leadership moved or shutdown): parked requests of its
    /// groups answer NOT_COORDINATOR and their timers stop.
    pub fn unload_partition(&self, partition: i32) {
        let Some(mut slot) = self.shared.write_slot(partition) else {
            return;
        };
        slot.state = SlotState::NotOwned;
        slot.epoch += 1;
        let groups = std::mem::take(&mut slot.groups);
        drop(slot);
        for cell in groups.into_values() {
            let mut group = cell.lock();
            group.shut_down();
            group.state = GroupState::Dead;
        }
    }

    /// Unloads every partition.
    pub fn shutdown(&self) {
        for partition in 0..self.shared.config.offsets_topic_partitions {
            self.unload_partition(partition);
        }
    }
}

/// One group's replayed records.
#[derive(Default)]
struct LoadedGroup {
    metadata: Option<(records::GroupMetadataValue, Bytes)>,
    offsets: HashMap<TopicPartition, OffsetCommitValue>,
}

/// Rebuilds groups from a partition's records in log order: the last value per key wins and a
/// tombstone removes the key (Kafka's GroupMetadataManager load). Undecodable records are
/// logged and skipped, never fatal.
fn replay(stored: &[StoredRecord]) -> Vec<Group> {
    let mut loaded: HashMap<String, LoadedGroup> = HashMap::new();
    for record in stored {
        let key = match records::decode_key(&record.key) {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!(%error, "skipping undecodable __consumer_offsets key");
                continue;
            }
        };
        match key {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                let entry = loaded.entry(group).or_default();
                let tp = TopicPartition { topic, partition };
                match record
                    .value
                    .as_deref()
                    .map(records::decode_offset_commit_value)
                {
                    None => {
                        entry.offsets.remove(&tp);
                    }
                    Some(Ok(value)) => {
                        entry.offsets.insert(tp, value);
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "skipping undecodable offset commit value")
                    }
                }
            }
            RecordKey::GroupMetadata { group } => {
                let entry = loaded.entry(group).or_default();
                match record
                    .value
                    .as_ref()
                    .map(|raw| (records::decode_group_metadata_value(raw), raw))
                {
                    None => entry.metadata = None,
                    Some((Ok(value), raw)) => entry.metadata = Some((value, raw.clone())),
                    Some((Err(error), _)) => {
                        tracing::warn!(%error, "skipping undecodable group metadata value")
                    }
                }
            }
            RecordKey::Other(_) => {}
        }
    }
    loaded
        .into_iter()
        .filter(|(_, loaded)| loaded.metadata.is_some() || !loaded.offsets.is_empty())
        .map(|(id, loaded)| {
            let mut group = match &loaded.metadata {
                Some((metadata, raw)) => {
                    let mut group = Group::from_record(id, metadata);
                    group.last_group_record = Some(raw.clone());
                    group
                }
                None => {
                    let mut group = Group::new(id, -1);
                    group.state_timestamp_ms = None;
                    group
                }
            };
            group.offsets = loaded.offsets;
            group
        })
        .collect()
}

impl Shared {
    fn slot(&self, partition: i32) -> Option<RwLockReadGuard<'_, Slot>> {
        let slot = self.slots.get(usize::try_from(partition).ok()?)?;
        Some(slot.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn write_slot(&self, partition: i32) -> Option<RwLockWriteGuard<'_, Slot>> {
        let slot = self.slots.get(usize::try_from(partition).ok()?)?;
        Some(
            slot.write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    fn partition_for(&self, group_id: &str) -> i32 {
        partition_for_group(group_id, self.config.offsets_topic_partitions)
    }

    fn check_slot(state: SlotState) -> Result<(), GroupError> {
        match state {
            SlotState::Owned => Ok(()),
            SlotState::Loading => Err(GroupError::CoordinatorLoadInProgress),
            SlotState::NotOwned => Err(GroupError::NotCoordinator),
        }
    }

    /// The group if it exists; errors if this broker does not (yet) coordinate it.
    fn existing_group(&self, group_id: &str) -> Result<Option<Arc<GroupCell>>, GroupError> {
        let slot = self
            .slot(self.partition_for(group_id))
            .ok_or(GroupError::NotCoordinator)?;
        Shared::check_slot(slot.state)?;
        Ok(slot.groups.get(group_id).cloned())
    }

    fn group_or_create(&self, group_id: &str) -> Result<Arc<GroupCell>, GroupError> {
        if let Some(cell) = self.existing_group(group_id)? {
            return Ok(cell);
        }
        let partition = self.partition_for(group_id);
        let mut slot = self
            .write_slot(partition)
            .ok_or(GroupError::NotCoordinator)?;
        Shared::check_slot(slot.state)?;
        let now_ms = self.clock.now_ms();
        let cell = slot
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(|| {
                Arc::new(GroupCell {
                    partition,
                    group: Mutex::new(Group::new(group_id.to_owned(), now_ms)),
                })
            })
            .clone();
        Ok(cell)
    }

    /// Removes a Dead group from its partition's map (if that very group is still there).
    fn forget_group(&self, cell: &Arc<GroupCell>, group_id: &str) {
        if let Some(mut slot) = self.write_slot(cell.partition) {
            if slot
                .groups
                .get(group_id)
                .is_some_and(|c| Arc::ptr_eq(c, cell))
            {
                slot.groups.remove(group_id);
            }
        }
    }

    fn validate_group_id(&self, group_id: &str, allow_empty: bool) -> Result<(), GroupError> {
        if group_id.is_empty() && !allow_empty {
            return Err(GroupError::InvalidGroupId("the group id is empty".into()));
        }
        if group_id.len() > self.config.max_group_id_bytes {
            return Err(GroupError::InvalidGroupId(format!(
                "{} bytes, above group.id.max.bytes = {}",
                group_id.len(),
                self.config.max_group_id_bytes
            )));
        }
        Ok(())
    }
}

fn millis(ms: i32) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// JoinGroup, SyncGroup, Heartbeat, LeaveGroup

impl GroupCoordinator {
    /// JoinGroup. Completes when the member's rebalance completes (or at once with an error,
    /// MEMBER_ID_REQUIRED, or the current generation for a member that needs no rebalance).
    pub async fn join_group(&self, request: JoinGroupRequest) -> JoinGroupResponse {
        let receiver = match self.start_join(request) {
            Ok(receiver) => receiver,
            Err((error, member_id)) => return JoinGroupResponse::error(error, &member_id),
        };
        receiver
            .await
            .unwrap_or_else(|_| JoinGroupResponse::error(GroupError::NotCoordinator, ""))
    }

    fn start_join(
        &self,
        mut request: JoinGroupRequest,
    ) -> Result<oneshot::Receiver<JoinGroupResponse>, (GroupError, String)> {
        let fail =
            |error: GroupError, request: &JoinGroupRequest| (error, request.member_id.clone());
        self.validate_join(&mut request)
            .map_err(|e| fail(e, &request))?;
        let cell = if request.member_id.is_empty() {
            self.shared.group_or_create(&request.group_id)
        } else {
            match self.shared.existing_group(&request.group_id) {
                Ok(Some(cell)) => Ok(cell),
                Ok(None) => Err(GroupError::UnknownMemberId),
                Err(error) => Err(error),
            }
        }
        .map_err(|e| fail(e, &request))?;
        let (sender, receiver) = oneshot::channel();
        let ops = Ops {
            shared: &self.shared,
            cell: &cell,
        };
        let mut group = cell.lock();
        if request.member_id.is_empty() {
            ops.join_new_member(&mut group, request, sender);
        } else {
            ops.join_existing_member(&mut group, request, sender);
        }
        if group.is(GroupState::PreparingRebalance) {
            ops.try_complete_join(&mut group);
        }
        Ok(receiver)
    }

    fn validate_join(&self, request: &mut JoinGroupRequest) -> Result<(), GroupError> {
        let config = &self.shared.config;
        self.shared.validate_group_id(&request.group_id, false)?;
        if request.session_timeout_ms < config.min_session_timeout_ms
            || request.session_timeout_ms > config.max_session_timeout_ms
        {
            return Err(GroupError::InvalidSessionTimeout {
                session_timeout_ms: request.session_timeout_ms,
                min_ms: config.min_session_timeout_ms,
                max_ms: config.max_session_timeout_ms,
            });
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        if request.protocols.len() > config.max_protocols_per_member {
            return Err(GroupError::InvalidRequest(format!(
                "{} protocols, above group.member.protocols.max = {}",
                request.protocols.len(),
                config.max_protocols_per_member
            )));
        }
        let metadata_bytes: usize = request.protocols.iter().map(|p| p.metadata.len()).sum();
        if metadata_bytes > config.max_member_metadata_bytes {
            return Err(GroupError::InvalidRequest(format!(
                "protocol metadata of {metadata_bytes} bytes, above group.member.metadata.max.bytes = {}",
                config.max_member_metadata_bytes
            )));
        }
        let instance_id_bytes = request.group_instance_id.as_ref().map_or(0, String::len);
        if instance_id_bytes > config.max_group_instance_id_bytes {
            return Err(GroupError::InvalidRequest(format!(
                "group.instance.id of {instance_id_bytes} bytes, above group.instance.id.max.bytes = {}",
                config.max_group_instance_id_bytes
            )));
        }
        if request.client_id.len() > config.max_client_id_bytes
            || request.client_host.len() > config.max_client_id_bytes
        {
            return Err(GroupError::InvalidRequest(format!(
                "client id or host above group.member.client.id.max.bytes = {}",
                config.max_client_id_bytes
            )));
        }
        // Kafka keys protocols by name; a repeated name would be counted twice in selection.
        let mut seen = BTreeSet::new();
        request.protocols.retain(|p| seen.insert(p.name.clone()));
        Ok(())
    }

    /// SyncGroup. Followers wait here until the leader's assignment is stored.
    pub async fn sync_group(&self, request: SyncGroupRequest) -> SyncGroupResponse {
        let receiver = match self.start_sync(request) {
            Ok(receiver) => receiver,
            Err(error) => return SyncGroupResponse::error(error),
        };
        receiver
            .await
            .unwrap_or_else(|_| SyncGroupResponse::error(GroupError::NotCoordinator))
    }

    fn start_sync(
        &self,
        request: SyncGroupRequest,
    ) -> Result<oneshot::Receiver<SyncGroupResponse>, GroupError> {
        self.shared.validate_group_id(&request.group_id, false)?;
        let cell = self
            .shared
            .existing_group(&request.group_id)?
            .ok_or(GroupError::UnknownMemberId)?;
        let ops = Ops {
            shared: &self.shared,
            cell: &cell,
        };
        let mut group = cell.lock();
        ops.validate_member_generation(
            &group,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        )?;
        if request
            .protocol_type
            .as_ref()
            .is_some_and(|t| group.protocol_type.as_ref() != Some(t))
            || request
                .protocol_name
                .as_ref()
                .is_some_and(|n| group.protocol_name.as_ref() != Some(n))
        {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let (sender, receiver) = oneshot::channel();
        match group.state {
            GroupState::Empty | GroupState::Dead => return Err(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => return Err(GroupError::RebalanceInProgress),
            GroupState::CompletingRebalance => ops.sync_completing(&mut group, request, sender),
            GroupState::Stable => {
                ops.remove_pending_sync(&mut group, &request.member_id);
                let assignment = group
                    .members
                    .get(&request.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                let _ = sender.send(group.sync_response(assignment));
                let session_timeout_ms = group
                    .members
                    .get(&request.member_id)
                    .map_or(0, |m| m.session_timeout_ms);
                ops.schedule_heartbeat(&mut group, &request.member_id, millis(session_timeout_ms));
            }
        }
        Ok(receiver)
    }

    /// Heartbeat. Kafka answers NONE while the group's partition is still loading.
    pub fn heartbeat(&self, request: HeartbeatRequest) -> Result<(), GroupError> {
        self.shared.validate_group_id(&request.group_id, false)?;
        let cell = match self.shared.existing_group(&request.group_id) {
            Ok(Some(cell)) => cell,
            Ok(None) => return Err(GroupError::UnknownMemberId),
            Err(GroupError::CoordinatorLoadInProgress) => return Ok(()),
            Err(error) => return Err(error),
        };
        let ops = Ops {
            shared: &self.shared,
            cell: &cell,
        };
        let mut group = cell.lock();
        ops.validate_member_generation(
            &group,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        )?;
        let session_timeout_ms = group
            .members
            .get(&request.member_id)
            .map_or(0, |m| m.session_timeout_ms);
        match group.state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => {
                ops.schedule_heartbeat(&mut group, &request.member_id, millis(session_timeout_ms));
                Ok(())
            }
            GroupState::PreparingRebalance => {
                ops.schedule_heartbeat(&mut group, &request.member_id, millis(session_timeout_ms));
                Err(GroupError::RebalanceInProgress)
            }
        }
    }

    /// LeaveGroup (v0–v2: one member; v3+: a batch by member id or group instance id).
    pub fn leave_group(&self, group_id: &str, leaving: Vec<LeavingMember>) -> LeaveGroupResponse {
        let whole_group_error = |error| LeaveGroupResponse {
            error: Some(error),
            members: Vec::new(),
        };
        if let Err(error) = self.shared.validate_group_id(group_id, false) {
            return whole_group_error(error);
        }
        let cell = match self.shared.existing_group(group_id) {
            Ok(Some(cell)) => cell,
            Ok(None) => {
                return LeaveGroupResponse {
                    error: None,
                    members: leaving
                        .into_iter()
                        .map(|m| LeftMember {
                            member_id: m.member_id,
                            group_instance_id: m.group_instance_id,
                            error: Some(GroupError::UnknownMemberId),
                        })
                        .collect(),
                }
            }
            Err(error) => return whole_group_error(error),
        };
        let ops = Ops {
            shared: &self.shared,
            cell: &cell,
        };
        let mut group = cell.lock();
        if group.is(GroupState::Dead) {
            return whole_group_error(GroupError::CoordinatorNotAvailable);
        }
        let members = leaving
            .into_iter()
            .map(|m| {
                let error = ops.leave_one(&mut group, &m).err();
                LeftMember {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    error,
                }
            })
            .collect();
        LeaveGroupResponse {
            error: None,
            members,
        }
    }
}

impl Ops<'_> {
    fn now_ms(&self) -> i64 {
        self.shared.clock.now_ms()
    }

    fn config(&self) -> &GroupConfig {
        &self.shared.config
    }

    /// Kafka's `doUnknownJoinGroup`/`classicGroupJoinNewMember`.
    fn join_new_member(
        &self,
        group: &mut Group,
        request: JoinGroupRequest,
        sender: oneshot::Sender<JoinGroupResponse>,
    ) {
        let reply = |sender: oneshot::Sender<JoinGroupResponse>, error| {
            let _ = sender.send(JoinGroupResponse::error(error, ""));
        };
        if group.is(GroupState::Dead) {
            return reply(sender, GroupError::CoordinatorNotAvailable);
        }
        if !group.supports_protocols(&request.protocol_type, &request.protocols) {
            return reply(sender, GroupError::InconsistentGroupProtocol);
        }
        let known_static = group
            .static_member_id(request.group_instance_id.as_deref())
            .map(str::to_owned);
        let max_size = self.config().group_max_size;
        if known_static.is_none() && group.members.len() + group.pending_members.len() >= max_size {
            return reply(sender, GroupError::GroupMaxSizeReached(max_size));
        }
        let prefix = request
            .group_instance_id
            .as_deref()
            .unwrap_or(&request.client_id);
        let member_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        match (&request.group_instance_id, known_static) {
            (Some(_), Some(old_member_id)) => {
                self.replace_static_member(group, &old_member_id, member_id, request, sender)
            }
            (Some(_), None) => self.add_member_and_rebalance(group, member_id, request, sender),
            (None, _) if request.require_known_member_id => {
                // KIP-394: hand out the id first, so a client whose JoinGroup times out and
                // retries does not leave a ghost member behind.
                self.add_pending_member(group, &member_id, request.session_timeout_ms);
                let _ = sender.send(JoinGroupResponse::error(
                    GroupError::MemberIdRequired,
                    &member_id,
                ));
            }
            (None, _) => self.add_member_and_rebalance(group, member_id, request, sender),
        }
    }

    /// Kafka's `doCurrentMemberJoinGroup`/`classicGroupJoinExistingMember`.
    fn join_existing_member(
        &self,
        group: &mut Group,
        request: JoinGroupRequest,
        sender: oneshot::Sender<JoinGroupResponse>,
    ) {
        let member_id = request.member_id.clone();
        let reply = |sender: oneshot::Sender<JoinGroupResponse>, error| {
            let _ = sender.send(JoinGroupResponse::error(error, &member_id));
        };
        if group.is(GroupState::Dead) {
            return reply(sender, GroupError::CoordinatorNotAvailable);
        }
        if !group.supports_protocols(&request.protocol_type, &request.protocols) {
            return reply(sender, GroupError::InconsistentGroupProtocol);
        }
        if group.pending_members.contains_key(&member_id) {
            let id = member_id.clone();
            return self.add_member_and_rebalance(group, id, request, sender);
        }
        let instance_id = request.group_instance_id.as_deref();
        if group.is_static_member_fenced(instance_id, &member_id) {
            return reply(sender, GroupError::FencedInstanceId);
        }
        let unknown_instance =
            instance_id.is_some() && group.static_member_id(instance_id).is_none();
        if !group.has_member(&member_id) || unknown_instance {
            return reply(sender, GroupError::UnknownMemberId);
        }
        let matches = group
            .members
            .get(&member_id)
            .is_some_and(|m| m.matches(&request.protocols));
        match group.state {
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(group, request, sender)
            }
            GroupState::CompletingRebalance if matches => {
                // The member lost its JoinGroup response: answer the current generation again.
                let _ = sender.send(group.join_response_for(&member_id, None));
            }
            GroupState::CompletingRebalance => {
                self.update_member_and_rebalance(group, request, sender)
            }
            GroupState::Stable if group.is_leader(&member_id) || !matches => {
                // A leader's JoinGroup forces a rebalance: that is how it reacts to changes that
                // do not show in its metadata (e.g. new partitions of a subscribed topic).
                self.update_member_and_rebalance(group, request, sender)
            }
            GroupState::Stable => {
                let _ = sender.send(group.join_response_for(&member_id, None));
            }
            GroupState::Empty | GroupState::Dead => reply(sender, GroupError::UnknownMemberId),
        }
    }

    fn add_pending_member(&self, group: &mut Group, member_id: &str, session_timeout_ms: i32) {
        let token = group.next_token();
        let deadline = Instant::now() + Duration::from_millis(millis(session_timeout_ms));
        let id = member_id.to_owned();
        let handle = self.spawn_timer(deadline, move |ops, group| {
            if group
                .pending_members
                .get(&id)
                .is_some_and(|t| t.token == token)
            {
                group.pending_members.remove(&id);
                if group.is(GroupState::PreparingRebalance) {
                    ops.try_complete_join(group);
                }
            }
        });
        group
            .pending_members
            .insert(member_id.to_owned(), Timer { token, handle });
    }

    /// Kafka's `addMemberAndRebalance`.
    fn add_member_and_rebalance(
        &self,
        group: &mut Group,
        member_id: String,
        request: JoinGroupRequest,
        sender: oneshot::Sender<JoinGroupResponse>,
    ) {
        if group.is(GroupState::PreparingRebalance) && group.generation_id == 0 {
            group.new_member_added = true;
        }
        let join_seq = group.next_join_seq();
        group.add_member(Member {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            join_waiter: Some(sender),
            sync_waiter: None,
            is_new: true,
            join_seq,
            heartbeat: None,
        });
        // A new member cannot heartbeat until its JoinGroup returns, so it gets a fixed, longer
        // deadline instead of its session timeout (Kafka's NewMemberJoinTimeoutMs).
        self.schedule_heartbeat(group, &member_id, self.config().new_member_join_timeout_ms);
        self.maybe_prepare_rebalance(group, "new member joined");
    }

    /// Kafka's `updateMemberAndRebalance`.
    fn update_member_and_rebalance(
        &self,
        group: &mut Group,
        request: JoinGroupRequest,
        sender: oneshot::Sender<JoinGroupResponse>,
    ) {
        let Some(member) = group.members.get_mut(&request.member_id) else {
            let _ = sender.send(JoinGroupResponse::error(
                GroupError::UnknownMemberId,
                &request.member_id,
            ));
            return;
        };
        member.protocols = request.protocols;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_timeout_ms = request.session_timeout_ms;
        // A JoinGroup superseded by a retry on another connection: tell it to rejoin.
        member.complete_join(JoinGroupResponse::error(
            GroupError::RebalanceInProgress,
            &request.member_id,
        ));
        member.join_waiter = Some(sender);
        self.maybe_prepare_rebalance(group, "member rejoined");
    }

    /// KIP-345: a static member rejoining with an empty member id takes over its old member's
    /// place (Kafka's `updateStaticMemberAndRebalance`). In Stable, if the group's protocol
    /// would not change, it gets the current generation back without a rebalance, and its
    /// SyncGroup returns its old assignment.
    fn replace_static_member(
        &self,
        group: &mut Group,
        old_member_id: &str,
        new_member_id: String,
        request: JoinGroupRequest,
        sender: oneshot::Sender<JoinGroupResponse>,
    ) {
        let Some(mut member) = group.members.remove(old_member_id) else {
            let _ = sender.send(JoinGroupResponse::error(GroupError::UnknownMemberId, ""));
            return;
        };
        // Fence the old incarnation's parked requests at once.
        member.complete_join(JoinGroupResponse::error(
            GroupError::FencedInstanceId,
            old_member_id,
        ));
        member.complete_sync(SyncGroupResponse::error(GroupError::FencedInstanceId));
        let old_protocols = std::mem::replace(&mut member.protocols, request.protocols);
        let old_timeouts = (member.rebalance_timeout_ms, member.session_timeout_ms);
        member.member_id = new_member_id.clone();
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_timeout_ms = request.session_timeout_ms;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.join_waiter = Some(sender);
        group.members.insert(new_member_id.clone(), member);
        let current_leader = group.leader_id.clone();
        if group.is_leader(old_member_id) {
            group.leader_id = Some(new_member_id.clone());
        }
        if let Some(instance_id) = &request.group_instance_id {
            group
                .static_members
                .insert(instance_id.clone(), new_member_id.clone());
        }
        if group.pending_sync.remove(old_member_id) {
            group.pending_sync.insert(new_member_id.clone());
        }
        self.schedule_heartbeat(group, &new_member_id, millis(request.session_timeout_ms));
        match group.state {
            GroupState::Stable if group.select_protocol() == group.protocol_name => {
                self.persist_static_replacement(
                    group,
                    StaticReplacement {
                        old_member_id: old_member_id.to_owned(),
                        new_member_id,
                        instance_id: request.group_instance_id,
                        old_protocols,
                        old_timeouts,
                        current_leader,
                        supports_skip_assignment: request.supports_skip_assignment,
                    },
                );
            }
            GroupState::Stable => {
                self.maybe_prepare_rebalance(group, "static member changed protocols")
            }
            // The leader may have been given the old member id: its assignment would not match.
            GroupState::CompletingRebalance => {
                self.prepare_rebalance(group, "static member rejoined during sync")
            }
            GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::Dead => {
                if let Some(member) = group.members.get_mut(&new_member_id) {
                    member.complete_join(JoinGroupResponse::error(GroupError::UnknownMemberId, ""));
                }
            }
        }
    }

    /// Stores the group with the replaced member id, then answers the static member with the
    /// current generation; on failure reverts the replacement so the old member id stays valid.
    fn persist_static_replacement(&self, group: &mut Group, replacement: StaticReplacement) {
        let record = group.to_record(None);
        self.append_group_then(group, &record, move |ops, group, result| {
            let new_id = replacement.new_member_id.as_str();
            match result {
                Ok(()) => {
                    let response = if replacement.supports_skip_assignment {
                        // KIP-814 (v9+): a restarted static leader learns it leads (and gets the
                        // members, to watch metadata) but is told to skip the assignment, which a
                        // Stable group would never distribute.
                        let mut response = group.join_response_for(new_id, None);
                        response.skip_assignment = group.is_leader(new_id);
                        response
                    } else {
                        // Before v9: answer with the *old* leader id, so a restarted leader does
                        // not believe it leads and compute an assignment for nothing.
                        group.join_response_for(new_id, replacement.current_leader.as_deref())
                    };
                    if let Some(member) = group.members.get_mut(new_id) {
                        member.complete_join(response);
                    }
                }
                Err(error) => {
                    let Some(mut member) = group.members.remove(new_id) else {
                        return;
                    };
                    member.complete_join(JoinGroupResponse::error(error, ""));
                    member.member_id = replacement.old_member_id.clone();
                    member.protocols = replacement.old_protocols;
                    (member.rebalance_timeout_ms, member.session_timeout_ms) =
                        replacement.old_timeouts;
                    let session_timeout_ms = member.session_timeout_ms;
                    group
                        .members
                        .insert(replacement.old_member_id.clone(), member);
                    if group.is_leader(new_id) {
                        group.leader_id = Some(replacement.old_member_id.clone());
                    }
                    if let Some(instance_id) = &replacement.instance_id {
                        group
                            .static_members
                            .insert(instance_id.clone(), replacement.old_member_id.clone());
                    }
                    ops.schedule_heartbeat(
                        group,
                        &replacement.old_member_id,
                        millis(session_timeout_ms),
                    );
                }
            }
        });
    }

    /// Kafka's `validateSyncGroup`/heartbeat checks shared by SyncGroup and Heartbeat.
    fn validate_member_generation(
        &self,
        group: &Group,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        if group.is(GroupState::Dead) {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if group.is_static_member_fenced(group_instance_id, member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if !group.has_member(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if generation_id != group.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    fn sync_completing(
        &self,
        group: &mut Group,
        request: SyncGroupRequest,
        sender: oneshot::Sender<SyncGroupResponse>,
    ) {
        let member_id = request.member_id.clone();
        self.remove_pending_sync(group, &member_id);
        if !group.is_leader(&member_id) {
            if let Some(member) = group.members.get_mut(&member_id) {
                member.sync_waiter = Some(sender);
            }
            return;
        }
        let limit = self.config().max_member_assignment_bytes;
        if let Some((id, assignment)) = request.assignments.iter().find(|(_, a)| a.len() > limit) {
            let _ = sender.send(SyncGroupResponse::error(GroupError::InvalidRequest(format!(
                "assignment of member {id} is {} bytes, above group.member.assignment.max.bytes = {limit}",
                assignment.len()
            ))));
            return;
        }
        if let Some(member) = group.members.get_mut(&member_id) {
            member.sync_waiter = Some(sender);
        }
        // Members the leader left out get an empty assignment; unknown member ids are ignored.
        let mut given: HashMap<String, Bytes> = request.assignments.into_iter().collect();
        let assignments: HashMap<String, Bytes> = group
            .members
            .keys()
            .map(|id| (id.clone(), given.remove(id).unwrap_or_default()))
            .collect();
        let generation_id = group.generation_id;
        let record = group.to_record(Some(&assignments));
        self.append_group_then(group, &record, move |ops, group, result| {
            // Another member may have joined while the record was being written.
            if !group.is(GroupState::CompletingRebalance) || group.generation_id != generation_id {
                return;
            }
            match result {
                Ok(()) => {
                    for (id, assignment) in assignments {
                        if let Some(member) = group.members.get_mut(&id) {
                            member.assignment = assignment;
                        }
                    }
                    ops.propagate_assignment(group, None);
                    let now_ms = ops.now_ms();
                    group.transition_to(GroupState::Stable, now_ms);
                }
                Err(error) => {
                    ops.reset_and_propagate_assignment_error(group, error);
                    ops.maybe_prepare_rebalance(group, "storing the assignment failed");
                }
            }
        });
    }

    fn remove_pending_sync(&self, group: &mut Group, member_id: &str) {
        group.pending_sync.remove(member_id);
        if group.pending_sync.is_empty() {
            if let Some(timer) = group.sync_timer.take() {
                timer.handle.abort();
            }
        }
    }

    /// Answers every parked SyncGroup with the member's assignment (or `error`) and restarts its
    /// session timer: a member awaiting sync is exempt from expiry, so it needs a fresh one.
    fn propagate_assignment(&self, group: &mut Group, error: Option<GroupError>) {
        let ids: Vec<String> = group
            .members
            .values()
            .filter(|m| m.is_awaiting_sync())
            .map(|m| m.member_id.clone())
            .collect();
        for id in ids {
            let response = match &error {
                Some(error) => SyncGroupResponse::error(error.clone()),
                None => {
                    let assignment = group
                        .members
                        .get(&id)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default();
                    group.sync_response(assignment)
                }
            };
            let Some(member) = group.members.get_mut(&id) else {
                continue;
            };
            member.complete_sync(response);
            let session_timeout_ms = member.session_timeout_ms;
            self.schedule_heartbeat(group, &id, millis(session_timeout_ms));
        }
    }

    fn reset_and_propagate_assignment_error(&self, group: &mut Group, error: GroupError) {
        for member in group.members.values_mut() {
            member.assignment = Bytes::new();
        }
        self.propagate_assignment(group, Some(error));
    }

    /// One member of LeaveGroup (Kafka's per-member rules).
    fn leave_one(&self, group: &mut Group, leaving: &LeavingMember) -> Result<(), GroupError> {
        if leaving.member_id.is_empty() {
            let current = group
                .static_member_id(leaving.group_instance_id.as_deref())
                .map(str::to_owned)
                .ok_or(GroupError::UnknownMemberId)?;
            self.remove_member_and_update_group(group, &current, "static member left");
            return Ok(());
        }
        if let Some(timer) = group.pending_members.remove(&leaving.member_id) {
            timer.handle.abort();
            if group.is(GroupState::PreparingRebalance) {
                self.try_complete_join(group);
            }
            return Ok(());
        }
        if group.is_static_member_fenced(leaving.group_instance_id.as_deref(), &leaving.member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if !group.has_member(&leaving.member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        self.remove_member_and_update_group(group, &leaving.member_id, "member left");
        Ok(())
    }

    /// Kafka's `removeMemberAndUpdateGroup`.
    fn remove_member_and_update_group(&self, group: &mut Group, member_id: &str, reason: &str) {
        tracing::info!(group = %group.id, member = member_id, reason, "removing member");
        group.remove_member(member_id);
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(group, reason)
            }
            GroupState::PreparingRebalance => self.try_complete_join(group),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    // -----------------------------------------------------------------------------------------
    // Rebalance machinery

    fn maybe_prepare_rebalance(&self, group: &mut Group, reason: &str) {
        if GroupState::PreparingRebalance.can_follow(group.state) {
            self.prepare_rebalance(group, reason);
        }
    }

    /// Kafka's `prepareRebalance`: cancels a sync in progress (REBALANCE_IN_PROGRESS to parked
    /// SyncGroups) and arms the join timer: the initial delay from Empty, else the rebalance
    /// timeout (completing at once if every member has already rejoined).
    fn prepare_rebalance(&self, group: &mut Group, reason: &str) {
        tracing::info!(group = %group.id, generation = group.generation_id, reason, "preparing rebalance");
        if group.is(GroupState::CompletingRebalance) {
            self.reset_and_propagate_assignment_error(group, GroupError::RebalanceInProgress);
        }
        if let Some(timer) = group.sync_timer.take() {
            timer.handle.abort();
        }
        group.pending_sync.clear();
        let from_empty = group.is(GroupState::Empty);
        let now_ms = self.now_ms();
        if !group.transition_to(GroupState::PreparingRebalance, now_ms) {
            return;
        }
        let rebalance_timeout_ms = group.rebalance_timeout_ms();
        if from_empty {
            let delay_ms = self.config().initial_rebalance_delay_ms;
            let remaining_ms = rebalance_timeout_ms.saturating_sub(delay_ms);
            self.schedule_join_timer(group, JoinTimerKind::Initial { remaining_ms }, delay_ms);
        } else {
            self.schedule_join_timer(group, JoinTimerKind::Rebalance, rebalance_timeout_ms);
            self.try_complete_join(group);
        }
    }

    fn schedule_join_timer(&self, group: &mut Group, kind: JoinTimerKind, delay_ms: u64) {
        if let Some(old) = group.join_timer.take() {
            old.timer.handle.abort();
        }
        let token = group.next_token();
        let deadline = Instant::now() + Duration::from_millis(delay_ms);
        let handle = self.spawn_timer(deadline, move |ops, group| ops.on_join_timer(group, token));
        group.join_timer = Some(JoinTimer {
            timer: Timer { token, handle },
            kind,
        });
    }

    fn on_join_timer(&self, group: &mut Group, token: u64) {
        let Some(join_timer) = group.join_timer.take_if(|t| t.timer.token == token) else {
            return;
        };
        match join_timer.kind {
            JoinTimerKind::Initial { remaining_ms }
                if group.new_member_added && remaining_ms > 0 =>
            {
                // Members are still arriving: wait another delay, within the rebalance timeout.
                group.new_member_added = false;
                let delay_ms = self.config().initial_rebalance_delay_ms.min(remaining_ms);
                let remaining_ms = remaining_ms - delay_ms;
                self.schedule_join_timer(group, JoinTimerKind::Initial { remaining_ms }, delay_ms);
            }
            JoinTimerKind::Initial { .. } | JoinTimerKind::Rebalance => self.complete_join(group),
        }
    }

    /// Completes the join phase early once everyone is in (Kafka's `DelayedJoin.tryComplete`;
    /// the initial delay never completes early).
    fn try_complete_join(&self, group: &mut Group) {
        let initial_delay = matches!(
            group.join_timer.as_ref().map(|t| &t.kind),
            Some(JoinTimerKind::Initial { .. })
        );
        if group.is(GroupState::PreparingRebalance) && !initial_delay && group.all_members_joined()
        {
            self.complete_join(group);
        }
    }

    /// Kafka's `onCompleteJoin`: evicts dynamic members that did not rejoin, starts the next
    /// generation and answers every parked JoinGroup (members' metadata to the leader only).
    fn complete_join(&self, group: &mut Group) {
        if let Some(timer) = group.join_timer.take() {
            timer.timer.handle.abort();
        }
        if !group.is(GroupState::PreparingRebalance) {
            return;
        }
        let missing: Vec<String> = group
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && !m.is_static())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in missing {
            tracing::info!(group = %group.id, member = %member_id, "evicting member that did not rejoin in time");
            group.remove_member(&member_id);
        }
        if !group.elect_joined_leader() && !group.members.is_empty() {
            // Only static members remain and none has rejoined: wait for them (or for their
            // session timeouts to remove them).
            let rebalance_timeout_ms = group.rebalance_timeout_ms();
            self.schedule_join_timer(group, JoinTimerKind::Rebalance, rebalance_timeout_ms);
            return;
        }
        let now_ms = self.now_ms();
        group.generation_id = group.generation_id.wrapping_add(1);
        group.pending_sync.clear();
        if group.members.is_empty() {
            group.protocol_name = None;
            group.subscribed_topics = group.compute_subscribed_topics();
            group.transition_to(GroupState::Empty, now_ms);
            let record = group.to_record(None);
            self.append_group_then(group, &record, |_, group, result| {
                if let Err(error) = result {
                    tracing::warn!(group = %group.id, %error, "storing the empty group failed");
                }
            });
            return;
        }
        group.protocol_name = group.select_protocol();
        group.subscribed_topics = group.compute_subscribed_topics();
        group.transition_to(GroupState::CompletingRebalance, now_ms);
        tracing::info!(group = %group.id, generation = group.generation_id, members = group.members.len(), protocol = group.protocol_name.as_deref().unwrap_or(""), "rebalance completed join phase");
        let mut ids: Vec<(u64, String)> = group
            .members
            .values()
            .map(|m| (m.join_seq, m.member_id.clone()))
            .collect();
        ids.sort_unstable();
        for (_, id) in ids {
            let response = group.join_response_for(&id, None);
            let Some(member) = group.members.get_mut(&id) else {
                continue;
            };
            member.complete_join(response);
            member.is_new = false;
            let session_timeout_ms = member.session_timeout_ms;
            self.schedule_heartbeat(group, &id, millis(session_timeout_ms));
            group.pending_sync.insert(id);
        }
        let rebalance_timeout_ms = group.rebalance_timeout_ms();
        self.schedule_sync_timer(group, rebalance_timeout_ms);
    }

    /// Members that do not send SyncGroup within the rebalance timeout are removed and the
    /// group rebalances (Kafka's pending-sync expiry): otherwise a leader that died between
    /// JoinGroup and SyncGroup would leave the followers waiting forever.
    fn schedule_sync_timer(&self, group: &mut Group, timeout_ms: u64) {
        if let Some(old) = group.sync_timer.take() {
            old.handle.abort();
        }
        let token = group.next_token();
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let handle = self.spawn_timer(deadline, move |ops, group| {
            if group.sync_timer.take_if(|t| t.token == token).is_none() {
                return;
            }
            let in_sync_phase = group.is(GroupState::CompletingRebalance) || group.is(GroupState::Stable);
            if !in_sync_phase || group.pending_sync.is_empty() {
                return;
            }
            let late: Vec<String> = group.pending_sync.drain().collect();
            for member_id in &late {
                tracing::info!(group = %group.id, member = %member_id, "removing member that did not sync in time");
                group.remove_member(member_id);
            }
            ops.prepare_rebalance(group, "members did not sync in time");
        });
        group.sync_timer = Some(Timer { token, handle });
    }

    /// (Re)arms a member's session timer (Kafka's `completeAndScheduleNextHeartbeatExpiration`).
    fn schedule_heartbeat(&self, group: &mut Group, member_id: &str, timeout_ms: u64) {
        let token = group.next_token();
        let Some(member) = group.members.get_mut(member_id) else {
            return;
        };
        member.cancel_heartbeat();
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let id = member_id.to_owned();
        let handle = self.spawn_timer(deadline, move |ops, group| {
            ops.on_heartbeat_expired(group, &id, token)
        });
        member.heartbeat = Some(Timer { token, handle });
    }

    fn on_heartbeat_expired(&self, group: &mut Group, member_id: &str, token: u64) {
        let Some(member) = group.members.get_mut(member_id) else {
            return;
        };
        if member.heartbeat.as_ref().map(|t| t.token) != Some(token) {
            return;
        }
        member.heartbeat = None;
        // Members parked in JoinGroup or SyncGroup cannot heartbeat; the rebalance's own
        // timeouts cover them, and their timer restarts when their request is answered.
        let satisfied = !member.is_new && (member.is_awaiting_join() || member.is_awaiting_sync());
        if satisfied {
            return;
        }
        self.remove_member_and_update_group(group, member_id, "session timeout expired");
    }

    fn spawn_timer<F>(&self, deadline: Instant, on_fire: F) -> AbortHandle
    where
        F: FnOnce(&Ops<'_>, &mut Group) + Send + 'static,
    {
        let shared = self.shared.clone();
        let cell = self.cell.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            let ops = Ops {
                shared: &shared,
                cell: &cell,
            };
            let mut group = cell.lock();
            on_fire(&ops, &mut group);
        });
        task.abort_handle()
    }

    // -----------------------------------------------------------------------------------------
    // Writes

    /// Appends the group's metadata record (ordered now, under the lock) and runs `then` under
    /// the lock once the store reports durability or failure.
    fn append_group_then<F>(&self, group: &mut Group, record: &records::GroupMetadataValue, then: F)
    where
        F: FnOnce(&Ops<'_>, &mut Group, Result<(), GroupError>) + Send + 'static,
    {
        let encoded = records::encode_group_metadata_key(&group.id).and_then(|key| {
            records::encode_group_metadata_value(record).map(|value| StoredRecord {
                key,
                value: Some(value),
            })
        });
        let limit = self.config().max_group_metadata_bytes;
        let encoded = encoded.map_err(|e| e.to_string()).and_then(|record| {
            let size = record.value.as_ref().map_or(0, |v| v.len());
            if size > limit {
                return Err(format!(
                    "group metadata record of {size} bytes exceeds group.metadata.max.bytes = {limit}"
                ));
            }
            Ok(record)
        });
        match encoded {
            Ok(record) => {
                // Remembered once durable: the partition rewrite copies the last *stored* record,
                // never an in-between state (e.g. a generation whose sync has not completed).
                let stored_value = record.value.clone();
                group.pending_group_writes += 1;
                self.append_then(vec![record], move |ops, group, result| {
                    group.pending_group_writes = group.pending_group_writes.saturating_sub(1);
                    if result.is_ok() {
                        group.last_group_record = stored_value;
                    }
                    then(ops, group, result)
                });
            }
            Err(error) => {
                tracing::warn!(group = %group.id, %error, "not storing group metadata");
                let error = GroupError::UnknownServerError(error);
                self.append_then(Vec::new(), move |ops, group, _| {
                    then(ops, group, Err(error))
                });
            }
        }
    }

    /// Issues the append now (fixing its order) and applies its outcome in a task of its own.
    fn append_then<F>(&self, records: Vec<StoredRecord>, then: F)
    where
        F: FnOnce(&Ops<'_>, &mut Group, Result<(), GroupError>) + Send + 'static,
    {
        let append =
            (!records.is_empty()).then(|| self.shared.store.append(self.cell.partition, records));
        let shared = self.shared.clone();
        let cell = self.cell.clone();
        tokio::spawn(async move {
            let result = match append {
                Some(append) => append.await.map_err(GroupError::from),
                None => Ok(()),
            };
            let ops = Ops {
                shared: &shared,
                cell: &cell,
            };
            let mut group = cell.lock();
            then(&ops, &mut group, result);
        });
    }
}

/// What a static member replacement needs to be undone if storing it fails.
struct StaticReplacement {
    old_member_id: String,
    new_member_id: String,
    instance_id: Option<String>,
    old_protocols: Vec<JoinProtocol>,
    old_timeouts: (i32, i32),
    current_leader: Option<String>,
    supports_skip_assignment: bool,
}

// ---------------------------------------------------------------------------------------------
// Offsets

impl GroupCoordinator {
    /// OffsetCommit. Completes once the offsets are durable (or refused). Group-level errors
    /// are reported on every partition, as Kafka does. Partitions of unknown topics must be
    /// answered UNKNOWN_TOPIC_OR_PARTITION by the handler before calling this (Kafka checks
    /// them in KafkaApis, against the metadata cache).
    pub async fn commit_offsets(&self, request: OffsetCommitRequest) -> Vec<PartitionResult> {
        let all_failed = |request: &OffsetCommitRequest, error: GroupError| {
            request
                .partitions
                .iter()
                .map(|p| PartitionResult {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    error: Some(error.clone()),
                })
                .collect()
        };
        match self.start_commit(&request) {
            Ok(receiver) => receiver
                .await
                .unwrap_or_else(|_| all_failed(&request, GroupError::NotCoordinator)),
            Err(error) => all_failed(&request, error),
        }
    }

    fn start_commit(
        &self,
        request: &OffsetCommitRequest,
    ) -> Result<oneshot::Receiver<Vec<PartitionResult>>, GroupError> {
        // Offset APIs accept the empty group id (Kafka's isValidGroupId for them is non-null).
        self.shared.validate_group_id(&request.group_id, true)?;
        let cell = match self.shared.existing_group(&request.group_id)? {
            Some(cell) => cell,
            // A consumer outside group management creates a "simple" group by committing.
            None if request.generation_id < 0 => self.shared.group_or_create(&request.group_id)?,
            // Kafka answers GROUP_ID_NOT_FOUND from OffsetCommit v9; before, ILLEGAL_GENERATION.
            None => return Err(GroupError::IllegalGeneration),
        };
        let ops = Ops {
            shared: &self.shared,
            cell: &cell,
        };
        let mut group = cell.lock();
        ops.validate_offset_commit(&mut group, request)?;
        let (sender, receiver) = oneshot::channel();
        ops.write_offsets(&mut group, request, sender);
        Ok(receiver)
    }

    /// OffsetFetch for one group; `partitions: None` means all of the group's offsets. An
    /// unknown group has no offsets (-1 for each requested partition), as in Kafka.
    /// With `require_stable` (KIP-447), a partition with transactional offsets still pending
    /// answers UNSTABLE_OFFSET_COMMIT (clients retry until the transaction ends).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<TopicPartition>>,
        require_stable: bool,
    ) -> Result<Vec<FetchedOffset>, GroupError> {
        let offsets = self.fetch_committed_offsets(group_id, partitions)?;
        if !require_stable {
            return Ok(offsets);
        }
        let Some(cell) = self.shared.existing_group(group_id)? else {
            return Ok(offsets);
        };
        let group = cell.lock();
        Ok(offsets
            .into_iter()
            .map(|fetched| {
                let tp = TopicPartition::new(fetched.topic.clone(), fetched.partition);
                let unstable = group
                    .pending_txn_offsets
                    .values()
                    .any(|pending| pending.contains_key(&tp));
                if unstable {
                    FetchedOffset {
                        offset: -1,
                        leader_epoch: -1,
                        metadata: String::new(),
                        error: Some(GroupError::UnstableOffsetCommit),
                        ..fetched
                    }
                } else {
                    fetched
                }
            })
            .collect())
    }

    fn fetch_committed_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<FetchedOffset>, GroupError> {
        self.shared.validate_group_id(group_id, true)?;
        let cell = self.shared.existing_group(group_id)?;
        let group = cell.as_ref().map(|cell| cell.lock());
        let fetched = |tp: &TopicPartition, offset: Option<&OffsetCommitValue>| FetchedOffset {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset: offset.map_or(-1, |o| o.offset),
            leader_epoch: offset.map_or(-1, |o| o.leader_epoch),
            metadata: offset.map(|o| o.metadata.clone()).unwrap_or_default(),
            error: None,
        };
        let offsets = match (&group, partitions) {
            (_, Some(partitions)) => partitions
                .iter()
                .map(|tp| fetched(tp, group.as_ref().and_then(|g| g.offsets.get(tp))))
                .collect(),
            (Some(group), None) => group
                .sorted_offsets()
                .into_iter()
                .map(|(tp, offset)| fetched(tp, Some(offset)))
                .collect(),
            (None, None) => Vec::new(),
        };
        Ok(offsets)
    }

    /// OffsetDelete: tombstones the group's offsets for partitions of topics it no longer
    /// consumes. Completes when the tombstones are durable.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<PartitionResult>, GroupError> {
        self.shared.validate_group_id(group_id, true)?;
        let cell = self
            .shared
            .existing_group(group_id)?
            .ok_or(GroupError::GroupIdNotFound)?;
        let ops = Ops {
            shared: &self.shared,
            cell: &cell,
        };
        let receiver = {
            let mut group = cell.lock();
            if group.is(GroupState::Dead) {
                return Err(GroupError::GroupIdNotFound);
            }
            let consumer = group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE);
            if !group.is(GroupState::Empty) && !consumer {
                return Err(GroupError::NonEmptyGroup);
            }
            let mut results = Vec::with_capacity(partitions.len());
            let mut deletable = Vec::new();
            for tp in partitions {
                let error = group
                    .is_subscribed_to_topic(&tp.topic)
                    .then_some(GroupError::GroupSubscribedToTopic);
                if error.is_none() && group.offsets.contains_key(&tp) {
                    deletable.push(tp.clone());
                }
                results.push(PartitionResult {
                    topic: tp.topic,
                    partition: tp.partition,
                    error,
                });
            }
            let (sender, receiver) = oneshot::channel();
            ops.delete_offsets(&mut group, deletable, move |result| {
                let results = match result {
                    Ok(()) => results,
                    Err(error) => results
                        .into_iter()
                        .map(|r| PartitionResult {
                            error: r.error.or_else(|| Some(error.clone())),
                            ..r
                        })
                        .collect(),
                };
                let _ = sender.send(results);
            });
            receiver
        };
        receiver.await.map_err(|_| GroupError::NotCoordinator)
    }

    /// Expires offsets past `offsets.retention.minutes` (Kafka's offsetExpirationCondition) and
    /// deletes groups left Empty without offsets. Returns how many offsets expired.
    pub async fn expire_offsets(&self) -> usize {
        let now_ms = self.shared.clock.now_ms();
        let retention_ms = self.shared.config.offsets_retention_ms;
        let mut expired_total = 0;
        let mut writes = Vec::new();
        for partition in 0..self.shared.config.offsets_topic_partitions {
            let cells: Vec<Arc<GroupCell>> = match self.shared.slot(partition) {
                Some(slot) if slot.state == SlotState::Owned => {
                    slot.groups.values().cloned().collect()
                }
                _ => continue,
            };
            for cell in cells {
                let ops = Ops {
                    shared: &self.shared,
                    cell: &cell,
                };
                let mut group = cell.lock();
                let expired = expired_offsets(&group, now_ms, retention_ms);
                expired_total += expired.len();
                let (sender, receiver) = oneshot::channel();
                ops.delete_offsets(&mut group, expired, move |result| {
                    let _ = sender.send(result);
                });
                writes.push(receiver);
                let removable = group.is(GroupState::Empty)
                    && group.offsets.is_empty()
                    && group.pending_members.is_empty()
                    && group.pending_offset_writes.is_empty();
                if removable {
                    let group_id = group.id.clone();
                    writes.push(ops.delete_group(&mut group));
                    drop(group);
                    self.shared.forget_group(&cell, &group_id);
                }
            }
        }
        for write in writes {
            let _ = write.await;
        }
        expired_total
    }

    /// Runs [`GroupCoordinator::expire_offsets`] every `offsets.retention.check.interval.ms`.
    pub fn spawn_offset_expiration(&self) -> JoinHandle<()> {
        let coordinator = self.clone();
        let period = Duration::from_millis(
            self.shared
                .config
                .offsets_retention_check_interval_ms
                .max(1),
        );
        tokio::spawn(async move {
            let mut interval = tokio::time::interval_at(Instant::now() + period, period);
            loop {
                interval.tick().await;
                let expired = coordinator.expire_offsets().await;
                if expired > 0 {
                    tracing::info!(expired, "expired committed offsets");
                }
            }
        })
    }
}

/// Kafka's `offsetExpirationCondition` + `isOffsetExpired` for one group.
fn expired_offsets(group: &Group, now_ms: i64, retention_ms: i64) -> Vec<TopicPartition> {
    enum Base {
        StateChange(Option<i64>),
        Commit,
    }
    let base = match group.protocol_type.as_deref() {
        // Simple consumers: counted from each commit.
        None => Base::Commit,
        // No members: counted from when the group became Empty.
        Some(_) if group.is(GroupState::Empty) => Base::StateChange(group.state_timestamp_ms),
        // A stable consumer group expires only offsets of topics it no longer subscribes to.
        Some(CONSUMER_PROTOCOL_TYPE)
            if group.is(GroupState::Stable) && group.subscribed_topics.is_some() =>
        {
            Base::Commit
        }
        Some(_) => return Vec::new(),
    };
    group
        .offsets
        .iter()
        .filter(|(tp, _)| !group.pending_offset_writes.contains_key(*tp))
        .filter(|(tp, _)| {
            !(group.is(GroupState::Stable) && group.is_subscribed_to_topic(&tp.topic))
        })
        .filter(|(_, offset)| match offset.expire_timestamp_ms {
            Some(expire_ms) => now_ms >= expire_ms,
            None => {
                let base_ms = match base {
                    Base::StateChange(Some(state_ms)) => state_ms,
                    Base::StateChange(None) | Base::Commit => offset.commit_timestamp_ms,
                };
                now_ms.saturating_sub(base_ms) >= retention_ms
            }
        })
        .map(|(tp, _)| tp.clone())
        .collect()
}

impl Ops<'_> {
    /// Kafka's `ClassicGroup.validateOffsetCommit`.
    fn validate_offset_commit(
        &self,
        group: &mut Group,
        request: &OffsetCommitRequest,
    ) -> Result<(), GroupError> {
        if group.is(GroupState::Dead) {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if request.generation_id < 0 && group.is(GroupState::Empty) {
            return Ok(()); // a simple consumer or an admin tool
        }
        let claims_membership = request.generation_id >= 0
            || !request.member_id.is_empty()
            || request.group_instance_id.is_some();
        if claims_membership {
            if request.group_instance_id.is_some() {
                let existing = group
                    .static_member_id(request.group_instance_id.as_deref())
                    .ok_or(GroupError::UnknownMemberId)?;
                if existing != request.member_id {
                    return Err(GroupError::FencedInstanceId);
                }
            }
            if !group.has_member(&request.member_id) {
                return Err(GroupError::UnknownMemberId);
            }
            if request.generation_id != group.generation_id {
                return Err(GroupError::IllegalGeneration);
            }
        } else if !group.is(GroupState::Empty) {
            return Err(GroupError::UnknownMemberId);
        }
        if group.is(GroupState::CompletingRebalance) {
            // The member has its new generation but not its assignment yet.
            return Err(GroupError::RebalanceInProgress);
        }
        // A commit proves the member is alive, as a heartbeat does.
        if let Some(session_timeout_ms) = group
            .members
            .get(&request.member_id)
            .map(|m| m.session_timeout_ms)
        {
            self.schedule_heartbeat(group, &request.member_id, millis(session_timeout_ms));
        }
        Ok(())
    }

    fn write_offsets(
        &self,
        group: &mut Group,
        request: &OffsetCommitRequest,
        sender: oneshot::Sender<Vec<PartitionResult>>,
    ) {
        let now_ms = self.now_ms();
        let limit = self.config().offset_metadata_max_bytes;
        let expire_timestamp_ms = request
            .retention_time_ms
            .filter(|ms| *ms != -1)
            .map(|ms| now_ms.saturating_add(ms));
        let mut results = Vec::with_capacity(request.partitions.len());
        let mut accepted: Vec<(TopicPartition, OffsetCommitValue)> = Vec::new();
        let mut stored = Vec::new();
        for commit in &request.partitions {
            let metadata = commit.metadata.clone().unwrap_or_default();
            let mut error =
                (metadata.len() > limit).then_some(GroupError::OffsetMetadataTooLarge {
                    size_bytes: metadata.len(),
                    limit_bytes: limit,
                });
            if error.is_none() {
                let value = OffsetCommitValue {
                    offset: commit.offset,
                    leader_epoch: commit.leader_epoch,
                    metadata,
                    commit_timestamp_ms: now_ms,
                    expire_timestamp_ms,
                };
                let encoded =
                    records::encode_offset_commit_key(&group.id, &commit.topic, commit.partition)
                        .and_then(|key| Ok((key, records::encode_offset_commit_value(&value)?)));
                match encoded {
                    Ok((key, encoded_value)) => {
                        stored.push(StoredRecord {
                            key,
                            value: Some(encoded_value),
                        });
                        accepted.push((
                            TopicPartition::new(commit.topic.clone(), commit.partition),
                            value,
                        ));
                    }
                    Err(e) => error = Some(GroupError::InvalidRequest(e.to_string())),
                }
            }
            results.push(PartitionResult {
                topic: commit.topic.clone(),
                partition: commit.partition,
                error,
            });
        }
        if accepted.is_empty() {
            let _ = sender.send(results);
            return;
        }
        let seq = group.next_write_seq;
        group.next_write_seq += 1;
        for (tp, _) in &accepted {
            *group.pending_offset_writes.entry(tp.clone()).or_default() += 1;
        }
        self.append_then(stored, move |_, group, result| {
            for (tp, value) in accepted {
                release_pending(group, &tp);
                let newer =
                    !matches!(group.applied_offset_seq.get(&tp), Some(applied) if *applied >= seq);
                if result.is_ok() && newer && !group.is(GroupState::Dead) {
                    group.applied_offset_seq.insert(tp.clone(), seq);
                    group.offsets.insert(tp, value);
                }
            }
            let results = match result {
                Ok(()) => results,
                Err(error) => results
                    .into_iter()
                    .map(|r| PartitionResult {
                        error: r.error.or_else(|| Some(error.clone())),
                        ..r
                    })
                    .collect(),
            };
            let _ = sender.send(results);
        });
    }

    /// Removes offsets now and writes their tombstones; `done` gets the write's outcome.
    fn delete_offsets<F>(&self, group: &mut Group, partitions: Vec<TopicPartition>, done: F)
    where
        F: FnOnce(Result<(), GroupError>) + Send + 'static,
    {
        let mut tombstones = Vec::with_capacity(partitions.len());
        for tp in &partitions {
            match records::encode_offset_commit_key(&group.id, &tp.topic, tp.partition) {
                Ok(key) => tombstones.push(StoredRecord { key, value: None }),
                Err(error) => tracing::warn!(%error, "cannot encode an offset tombstone key"),
            }
            group.offsets.remove(tp);
            // A commit still in flight must not resurrect the deleted offset in memory.
            let seq = group.next_write_seq;
            group.next_write_seq += 1;
            group.applied_offset_seq.insert(tp.clone(), seq);
        }
        self.append_then(tombstones, move |_, _, result| done(result));
    }

    /// Marks the group Dead and writes tombstones for its metadata and offsets. The receiver
    /// completes when they are durable. The caller removes the group from the map.
    fn delete_group(&self, group: &mut Group) -> oneshot::Receiver<Result<(), GroupError>> {
        let (sender, receiver) = oneshot::channel();
        let mut tombstones = Vec::new();
        for tp in group.offsets.keys() {
            if let Ok(key) = records::encode_offset_commit_key(&group.id, &tp.topic, tp.partition) {
                tombstones.push(StoredRecord { key, value: None });
            }
        }
        if let Ok(key) = records::encode_group_metadata_key(&group.id) {
            tombstones.push(StoredRecord { key, value: None });
        }
        group.shut_down();
        group.offsets.clear();
        let now_ms = self.now_ms();
        group.transition_to(GroupState::Dead, now_ms);
        self.append_then(tombstones, move |_, _, result| {
            let _ = sender.send(result);
        });
        receiver
    }
}

fn release_pending(group: &mut Group, tp: &TopicPartition) {
    if let Some(count) = group.pending_offset_writes.get_mut(tp) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            group.pending_offset_writes.remove(tp);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Admin: ListGroups, DescribeGroups, DeleteGroups

impl GroupCoordinator {
    /// ListGroups. `states_filter` (v4+) matches state names case-insensitively;
    /// `types_filter` (v5+) matches "classic" (all our groups). Empty filters match everything.
    pub fn list_groups(
        &self,
        states_filter: &[String],
        types_filter: &[String],
    ) -> ListGroupsResponse {
        let mut error = None;
        let mut groups = Vec::new();
        let wants_classic = types_filter.is_empty()
            || types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case("classic"));
        for partition in 0..self.shared.config.offsets_topic_partitions {
            let cells: Vec<Arc<GroupCell>> = match self.shared.slot(partition) {
                Some(slot) if slot.state == SlotState::Owned => {
                    slot.groups.values().cloned().collect()
                }
                Some(slot) if slot.state == SlotState::Loading => {
                    error = Some(GroupError::CoordinatorLoadInProgress);
                    continue;
                }
                _ => continue,
            };
            if !wants_classic {
                continue;
            }
            for cell in cells {
                let group = cell.lock();
                if group.is(GroupState::Dead) {
                    continue;
                }
                let state_matches = states_filter.is_empty()
                    || states_filter
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(group.state.as_str()));
                if state_matches {
                    groups.push(ListedGroup {
                        group_id: group.id.clone(),
                        protocol_type: group.protocol_type.clone().unwrap_or_default(),
                        state: group.state,
                        group_type: "classic",
                    });
                }
            }
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        ListGroupsResponse { error, groups }
    }

    /// A read-only view of every loaded group (state and committed offsets) for the broker's
    /// metrics. Copies at most `max_offsets` committed offsets in all; the rest are only
    /// counted (`omitted_offsets`), so a scrape stays bounded whatever clients committed.
    pub fn snapshot_groups(&self, max_offsets: usize) -> GroupsSnapshot {
        let mut snapshot = GroupsSnapshot::default();
        let mut copied = 0usize;
        for partition in 0..self.shared.config.offsets_topic_partitions {
            let cells: Vec<Arc<GroupCell>> = match self.shared.slot(partition) {
                Some(slot) if slot.state == SlotState::Owned => {
                    slot.groups.values().cloned().collect()
                }
                _ => continue,
            };
            for cell in cells {
                let group = cell.lock();
                if group.is(GroupState::Dead) {
                    continue;
                }
                let room = max_offsets.saturating_sub(copied);
                let offsets: Vec<(TopicPartition, i64)> = group
                    .offsets
                    .iter()
                    .take(room)
                    .map(|(tp, committed)| (tp.clone(), committed.offset))
                    .collect();
                copied += offsets.len();
                snapshot.omitted_offsets += group.offsets.len() - offsets.len();
                snapshot.groups.push(GroupSummary {
                    group_id: group.id.clone(),
                    state: group.state,
                    offsets,
                });
            }
        }
        snapshot
    }

    /// DescribeGroups for one group.
    pub fn describe_group(&self, group_id: &str) -> DescribedGroup {
        let missing = |error: Option<GroupError>| DescribedGroup {
            group_id: group_id.to_owned(),
            error,
            state: GroupState::Dead,
            exists: false,
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: Vec::new(),
        };
        if let Err(error) = self.shared.validate_group_id(group_id, true) {
            return missing(Some(error));
        }
        match self.shared.existing_group(group_id) {
            Ok(Some(cell)) => cell.lock().describe(),
            Ok(None) => missing(None),
            Err(error) => missing(Some(error)),
        }
    }

    /// DeleteGroups: only Empty groups (NON_EMPTY_GROUP otherwise); their metadata and offsets
    /// are tombstoned. Completes when the tombstones are durable.
    pub async fn delete_groups(&self, group_ids: Vec<String>) -> Vec<(String, Option<GroupError>)> {
        let mut results = Vec::with_capacity(group_ids.len());
        for group_id in group_ids {
            let error = self.delete_one_group(&group_id).await.err();
            results.push((group_id, error));
        }
        results
    }

    async fn delete_one_group(&self, group_id: &str) -> Result<(), GroupError> {
        self.shared.validate_group_id(group_id, true)?;
        let cell = self
            .shared
            .existing_group(group_id)?
            .ok_or(GroupError::GroupIdNotFound)?;
        let ops = Ops {
            shared: &self.shared,
            cell: &cell,
        };
        let receiver = {
            let mut group = cell.lock();
            match group.state {
                GroupState::Dead => return Err(GroupError::GroupIdNotFound),
                GroupState::Empty => {}
                _ => return Err(GroupError::NonEmptyGroup),
            }
            ops.delete_group(&mut group)
        };
        self.shared.forget_group(&cell, group_id);
        receiver.await.map_err(|_| GroupError::NotCoordinator)?
    }
}

// ---------------------------------------------------------------------------------------------
// Transactional offsets (KIP-98 TxnOffsetCommit, completed by the transaction's marker)

/// A store write issued (its log position fixed), to be awaited for durability.
type StoreWrite = BoxFuture<'static, Result<(), StoreError>>;

/// Puts the records of transactions still open at load time back as pending offsets (groups
/// that have nothing else are created, as a TxnOffsetCommit would have).
fn attach_pending_txn_offsets(groups: &mut Vec<Group>, pending: HashMap<i64, Vec<StoredRecord>>) {
    for (producer_id, stored) in pending {
        for record in stored {
            let Ok(RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            }) = records::decode_key(&record.key)
            else {
                continue;
            };
            let Some(Ok(value)) = record
                .value
                .as_deref()
                .map(records::decode_offset_commit_value)
            else {
                continue;
            };
            let index = match groups.iter().position(|g| g.id == group) {
                Some(index) => index,
                None => {
                    let mut created = Group::new(group, -1);
                    created.state_timestamp_ms = None;
                    groups.push(created);
                    groups.len() - 1
                }
            };
            let Some(target) = groups.get_mut(index) else {
                continue;
            };
            let commit = PartitionCommit {
                topic: topic.clone(),
                partition,
                offset: value.offset,
                leader_epoch: value.leader_epoch,
                metadata: Some(value.metadata),
            };
            target
                .pending_txn_offsets
                .entry(producer_id)
                .or_default()
                .insert(TopicPartition { topic, partition }, commit);
        }
    }
}

impl GroupCoordinator {
    /// TxnOffsetCommit: validates like OffsetCommit, stores the offsets as a transactional batch
    /// of the producer in `__consumer_offsets` (Kafka's format) and, once that is durable, holds
    /// them as pending: invisible to OffsetFetch until the transaction coordinator's COMMIT
    /// marker reaches this group's partition ([`GroupCoordinator::complete_transaction`]). A
    /// restart finds them again through the log (`OffsetsStore::read_all_resolved`).
    pub async fn txn_commit_offsets(
        &self,
        request: TxnOffsetCommitRequest,
    ) -> Vec<PartitionResult> {
        let results_with = |error: Option<GroupError>| {
            request
                .partitions
                .iter()
                .map(|p| PartitionResult {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    error: error.clone(),
                })
                .collect()
        };
        let (cell, write) = match self.store_txn_offsets(&request) {
            Ok(issued) => issued,
            Err(error) => return results_with(Some(error)),
        };
        let written = write.await;
        let mut group = cell.lock();
        group.pending_txn_writes = group.pending_txn_writes.saturating_sub(1);
        if let Err(error) = written {
            tracing::warn!(%error, group = %request.group_id, "storing transactional offsets failed");
            return results_with(Some(GroupError::from(error)));
        }
        let pending = group
            .pending_txn_offsets
            .entry(request.producer_id)
            .or_default();
        for commit in &request.partitions {
            pending.insert(
                TopicPartition::new(commit.topic.clone(), commit.partition),
                commit.clone(),
            );
        }
        results_with(None)
    }

    /// Validates and issues the transactional write under the group's lock (fixing its place
    /// in the log); the caller awaits durability.
    fn store_txn_offsets(
        &self,
        request: &TxnOffsetCommitRequest,
    ) -> Result<(Arc<GroupCell>, StoreWrite), GroupError> {
        self.shared.validate_group_id(&request.group_id, true)?;
        let limit = self.shared.config.offset_metadata_max_bytes;
        if let Some(too_large) = request
            .partitions
            .iter()
            .filter_map(|p| p.metadata.as_ref())
            .find(|metadata| metadata.len() > limit)
        {
            return Err(GroupError::OffsetMetadataTooLarge {
                size_bytes: too_large.len(),
                limit_bytes: limit,
            });
        }
        let cell = self.shared.group_or_create(&request.group_id)?;
        let ops = Ops {
            shared: &self.shared,
            cell: &cell,
        };
        let mut group = cell.lock();
        if group.is(GroupState::Dead) {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        // Kafka checks membership only when the producer sends it (KIP-447, v3+).
        let claims_membership = request.generation_id >= 0
            || !request.member_id.is_empty()
            || request.group_instance_id.is_some();
        if claims_membership {
            let as_commit = OffsetCommitRequest {
                group_id: request.group_id.clone(),
                generation_id: request.generation_id,
                member_id: request.member_id.clone(),
                group_instance_id: request.group_instance_id.clone(),
                retention_time_ms: None,
                partitions: Vec::new(),
            };
            ops.validate_offset_commit(&mut group, &as_commit)?;
        }
        let now_ms = self.shared.clock.now_ms();
        let mut stored = Vec::with_capacity(request.partitions.len());
        for commit in &request.partitions {
            let value = OffsetCommitValue {
                offset: commit.offset,
                leader_epoch: commit.leader_epoch,
                metadata: commit.metadata.clone().unwrap_or_default(),
                commit_timestamp_ms: now_ms,
                expire_timestamp_ms: None,
            };
            let key = records::encode_offset_commit_key(&group.id, &commit.topic, commit.partition)
                .map_err(|e| GroupError::InvalidRequest(e.to_string()))?;
            let value = records::encode_offset_commit_value(&value)
                .map_err(|e| GroupError::InvalidRequest(e.to_string()))?;
            stored.push(StoredRecord {
                key,
                value: Some(value),
            });
        }
        group.pending_txn_writes += 1;
        let write = if stored.is_empty() {
            Box::pin(async { Ok(()) }) as StoreWrite
        } else {
            // Issued under the group's lock so the log order is the decision order.
            self.shared.store.append_transactional(
                cell.partition,
                request.producer_id,
                request.producer_epoch,
                stored,
            )
        };
        drop(group);
        Ok((cell, write))
    }

    /// The transaction of `producer_id` ended and its marker is durable in `offsets_partition`:
    /// on commit its pending offsets there become committed (their records are already in the
    /// log, before the marker), on abort they are dropped. Idempotent (a retried marker finds
    /// nothing pending).
    pub async fn complete_transaction(
        &self,
        offsets_partition: i32,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), GroupError> {
        let cells: Vec<Arc<GroupCell>> = match self.shared.slot(offsets_partition) {
            Some(slot) => slot.groups.values().cloned().collect(),
            None => return Err(GroupError::NotCoordinator),
        };
        let now_ms = self.shared.clock.now_ms();
        for cell in cells {
            let mut group = cell.lock();
            let Some(pending) = group.pending_txn_offsets.remove(&producer_id) else {
                continue;
            };
            if !commit || group.is(GroupState::Dead) {
                continue;
            }
            for (tp, commit) in pending {
                // Newer than any plain commit still in flight: those are before the marker in
                // the log, so replay lets the transaction's offset win as well.
                let seq = group.next_write_seq;
                group.next_write_seq += 1;
                group.applied_offset_seq.insert(tp.clone(), seq);
                group.offsets.insert(
                    tp,
                    OffsetCommitValue {
                        offset: commit.offset,
                        leader_epoch: commit.leader_epoch,
                        metadata: commit.metadata.unwrap_or_default(),
                        commit_timestamp_ms: now_ms,
                        expire_timestamp_ms: None,
                    },
                );
            }
        }
        Ok(())
    }
}
