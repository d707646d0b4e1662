//! Keeps this node's quorum member running across storage errors.
//!
//! openraft stops a member for good on any storage error (a full disk, EIO): without help, one
//! failed metadata write would stop every later metadata change until the process restarts.
//! The supervisor owns what the broker follows for the life of the process (one channel of
//! applied images) and the current member. When the member has stopped, the next proposal, or
//! the background loop with backoff, starts a new member over the same files (the log store
//! has cut back what was not durable) and waits for a leader. While none can run, proposals
//! fail with [`QuorumError::Stopped`] (KAFKA_STORAGE_ERROR) and the last applied image stays
//! readable.
//!
//! Invariant: published images only move forward (`offset` never decreases): every applied
//! entry is committed, and a committed entry survives a member restart.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{LeaderView, MetadataQuorum, QuorumError, QuorumStatus, RaftQuorum};
use crate::{MetadataImage, MetadataRecord};

/// Backoff of the background restarts while the member cannot start (doubling between).
const RESTART_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Starts a member over this node's quorum files (called again after each stop).
pub type StartMember = Box<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<RaftQuorum, QuorumError>> + Send>> + Send + Sync,
>;

/// How a member that does not lead forwards proposals to the one that does.
#[derive(Clone, Debug)]
pub struct Forwarding {
    pub cluster_id: String,
    pub node_id: i32,
    pub max_frame_bytes: usize,
    /// Bounds one forwarded proposal, and the wait until this member has applied it.
    pub timeout: Duration,
}

/// A [`MetadataQuorum`] whose member is restarted in-process after a fatal storage error.
#[derive(Clone)]
pub struct SupervisedQuorum {
    inner: Arc<Inner>,
}

struct Inner {
    start_member: StartMember,
    /// The latest member started (possibly stopped, until a new one replaces it).
    member: Mutex<RaftQuorum>,
    images: Arc<watch::Sender<Arc<MetadataImage>>>,
    /// One restart at a time; a proposal that finds a restart running waits for its result.
    restarting: tokio::sync::Mutex<()>,
    /// How long a proposal waits for a leader after a restart.
    leader_wait: Duration,
    /// `None` for a one-voter quorum (it always leads).
    forwarding: Option<Forwarding>,
    shutting_down: AtomicBool,
    last_failure: Mutex<Option<String>>,
}

impl SupervisedQuorum {
    /// Starts the first member (an error here, such as a corrupt log, is returned: there is no
    /// image to serve) and the background loop that restarts it when it stops.
    pub async fn start(
        start_member: StartMember,
        leader_wait: Duration,
        forwarding: Option<Forwarding>,
    ) -> Result<SupervisedQuorum, QuorumError> {
        let member = start_member().await?;
        let (images, _) = watch::channel(member.image());
        let inner = Arc::new(Inner {
            start_member,
            member: Mutex::new(member.clone()),
            images: Arc::new(images),
            restarting: tokio::sync::Mutex::new(()),
            leader_wait,
            forwarding,
            shutting_down: AtomicBool::new(false),
            last_failure: Mutex::new(None),
        });
        forward_images(&inner.images, &member);
        tokio::spawn(supervise(Arc::downgrade(&inner)));
        Ok(SupervisedQuorum { inner })
    }

    /// Waits (up to `timeout`) until a leader is known and, if it is this node, it has applied
    /// its log; false if not (on a full disk a sole voter cannot vote for itself).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        self.inner
            .current()
            .wait_for_leader(timeout)
            .await
            .is_some()
    }

    /// Stops the member and the restarts (at process shutdown).
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let _restarts_stopped = self.inner.restarting.lock().await;
        if let Err(error) = self.inner.current().shutdown().await {
            tracing::debug!(%error, "metadata quorum member was already stopped");
        }
    }

    /// The controller address of voter `node_id` in the current membership.
    pub fn voter_address(&self, node_id: i32) -> Option<String> {
        self.inner.current().voter_address(node_id)
    }

    /// Why the member last stopped or failed to start, if it is not running now.
    pub fn unavailable_reason(&self) -> Option<String> {
        let member = self.inner.current();
        if !member.is_stopped() {
            return None;
        }
        lock(&self.inner.last_failure)
            .clone()
            .or_else(|| member.stop_reason())
    }

    /// The running member, restarting it first if it stopped, once a leader is known.
    async fn running_member(&self) -> Result<RaftQuorum, QuorumError> {
        let member = self.inner.current();
        let member = if member.is_stopped() {
            restart(&self.inner).await?
        } else {
            member
        };
        member.wait_for_leader(self.inner.leader_wait).await;
        Ok(member)
    }
}

impl Inner {
    fn current(&self) -> RaftQuorum {
        lock(&self.member).clone()
    }

    fn publish(&self, image: Arc<MetadataImage>) {
        publish(&self.images, image);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a plain assignment or clone: a poisoned lock guards whole data.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn publish(images: &watch::Sender<Arc<MetadataImage>>, image: Arc<MetadataImage>) {
    images.send_if_modified(|current| {
        if image.offset > current.offset {
            *current = image;
            true
        } else {
            false
        }
    });
}

/// Copies `member`'s applied images into the supervisor's channel until the member is gone.
fn forward_images(images: &Arc<watch::Sender<Arc<MetadataImage>>>, member: &RaftQuorum) {
    let images = Arc::clone(images);
    let mut applied = member.subscribe();
    tokio::spawn(async move {
        loop {
            let image = Arc::clone(&applied.borrow_and_update());
            publish(&images, image);
            if applied.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Starts a new member unless the current one runs; returns the running member.
async fn restart(inner: &Arc<Inner>) -> Result<RaftQuorum, QuorumError> {
    let _one_at_a_time = inner.restarting.lock().await;
    if inner.shutting_down.load(Ordering::SeqCst) {
        return Err(QuorumError::Stopped("shutting down".to_string()));
    }
    let stopped = inner.current();
    if !stopped.is_stopped() {
        return Ok(stopped); // another caller restarted it meanwhile
    }
    // Release the old member's tasks and files before reopening them.
    let _ = stopped.shutdown().await;
    match (inner.start_member)().await {
        Ok(member) => {
            forward_images(&inner.images, &member);
            inner.publish(member.image());
            *lock(&inner.member) = member.clone();
            *lock(&inner.last_failure) = None;
            tracing::warn!("metadata quorum member restarted; metadata changes resume");
            Ok(member)
        }
        Err(error) => {
            *lock(&inner.last_failure) = Some(error.to_string());
            Err(QuorumError::Stopped(format!(
                "the metadata log is unavailable: {error}"
            )))
        }
    }
}

/// The background loop: waits for the member to stop, then restarts it with backoff.
async fn supervise(inner: std::sync::Weak<Inner>) {
    let mut backoff = RESTART_BACKOFF_FIRST;
    loop {
        let Some(member) = inner.upgrade().map(|inner| inner.current()) else {
            return;
        };
        member.wait_stopped().await;
        let reason = member.stop_reason();
        drop(member);
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if strong.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        if backoff == RESTART_BACKOFF_FIRST {
            tracing::warn!(
                reason = reason.unwrap_or_default(),
                "metadata quorum member stopped; restarting it"
            );
        }
        match restart(&strong).await {
            Ok(_) => backoff = RESTART_BACKOFF_FIRST,
            Err(error) => {
                // One warning per outage (with its cause), not one per retry.
                if backoff == RESTART_BACKOFF_FIRST {
                    tracing::warn!(%error, "metadata quorum member cannot restart; retrying with backoff up to {RESTART_BACKOFF_MAX:?}");
                } else {
                    tracing::debug!(%error, "metadata quorum member restart failed");
                }
                drop(strong);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
            }
        }
    }
}

impl SupervisedQuorum {
    /// Sends `records` to the leader, then waits until this member has applied them, so the
    /// caller sees its change in `image()` as after a local proposal.
    async fn forward(
        &self,
        member: &RaftQuorum,
        leader: i32,
        term: u64,
        records: Vec<MetadataRecord>,
    ) -> Result<u64, QuorumError> {
        let Some(forwarding) = &self.inner.forwarding else {
            return Err(QuorumError::NotLeader {
                leader: Some(leader),
            });
        };
        let address = member.voter_address(leader).ok_or_else(|| {
            QuorumError::Config(format!(
                "the leader {leader} has no address in the membership"
            ))
        })?;
        let forwarded = super::tcp::forward_proposal(
            &forwarding.cluster_id,
            forwarding.node_id,
            leader,
            &address,
            records,
            forwarding.max_frame_bytes,
            forwarding.timeout,
        );
        // A leader that stops answering (paused, partitioned away) is replaced by an election:
        // then the proposal goes to the new leader instead of waiting out the timeout. Should
        // the old leader have appended it after all, the copy that commits second is refused by
        // the state machine (every record is checked against the image it follows).
        let index = tokio::select! {
            forwarded = forwarded => forwarded?,
            now_leading = member.wait_leader_change(
                LeaderView { leader: Some(leader), term },
                forwarding.timeout,
            ) => {
                return Err(QuorumError::NotLeader { leader: now_leading });
            }
        };
        member.wait_applied(index, forwarding.timeout).await?;
        self.inner.publish(member.image());
        Ok(index)
    }
}

impl SupervisedQuorum {
    /// The quorum as its leader sees it: this member's view when it leads, else the view the
    /// leader sends back (over the controller listener), bounded by `timeout`. NotLeader when
    /// no leader is known or it cannot be reached, or when the asked member no longer leads.
    pub async fn describe_at_leader(
        &self,
        timeout: std::time::Duration,
    ) -> Result<QuorumStatus, QuorumError> {
        let member = self.inner.current();
        let local = member.describe();
        let leader = match local.leader_id {
            Some(leader) if leader == member.node_id() => return Ok(local),
            Some(leader) => leader,
            None => return Err(QuorumError::NotLeader { leader: None }),
        };
        let (Some(forwarding), Some(address)) =
            (&self.inner.forwarding, member.voter_address(leader))
        else {
            return Err(QuorumError::NotLeader {
                leader: Some(leader),
            });
        };
        let remote = super::tcp::describe_remote(
            &forwarding.cluster_id,
            forwarding.node_id,
            leader,
            &address,
            forwarding.max_frame_bytes,
            timeout,
        )
        .await?;
        if remote.leader_id == Some(leader) {
            Ok(remote)
        } else {
            Err(QuorumError::NotLeader {
                leader: remote.leader_id,
            })
        }
    }
}

impl SupervisedQuorum {
    /// Proposes a decision this member made as the active controller (fencing a broker whose
    /// session it saw expire): only while it leads, and never retried elsewhere. If it does
    /// not lead, or loses the leadership before the entry commits, the decision is dropped
    /// (NotLeader) rather than forwarded: a deposed leader's view (whose heartbeats it missed
    /// while cut off) must not be committed under its successor's term, as a KRaft
    /// controller's pending writes fail with NOT_CONTROLLER when it resigns.
    pub async fn propose_as_leader(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<u64, QuorumError> {
        let member = self.running_member().await?;
        let leader = member.leader();
        if leader != Some(member.node_id()) {
            return Err(QuorumError::NotLeader { leader });
        }
        self.propose_on(&member, records).await
    }
}

impl MetadataQuorum for SupervisedQuorum {
    async fn propose(&self, records: Vec<MetadataRecord>) -> Result<u64, QuorumError> {
        let Some(forwarding) = &self.inner.forwarding else {
            let member = self.running_member().await?;
            return self.propose_on(&member, records).await;
        };
        // A proposal made while the leader changes (it died, or an election runs) waits for
        // the next leader instead of failing: nothing was appended anywhere yet.
        let deadline = tokio::time::Instant::now() + forwarding.timeout;
        loop {
            let member = self.running_member().await?;
            let view = member.leader_view();
            let leader = view.leader;
            let attempt = match leader {
                Some(leader) if leader != member.node_id() => {
                    self.forward(&member, leader, view.term, records.clone())
                        .await
                }
                _ => self.propose_on(&member, records.clone()).await,
            };
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match attempt {
                Err(QuorumError::NotLeader { .. }) if !remaining.is_zero() => {
                    member.wait_leader_change(view, remaining).await;
                }
                outcome => return outcome,
            }
        }
    }

    fn leader(&self) -> Option<i32> {
        self.inner.current().leader()
    }

    fn voters(&self) -> Vec<i32> {
        self.inner.current().voters()
    }

    fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.inner.images.borrow())
    }

    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.inner.images.subscribe()
    }

    fn describe(&self) -> QuorumStatus {
        self.inner.current().describe()
    }
}

impl SupervisedQuorum {
    /// Proposes on this node's member (which leads, or answers who does).
    async fn propose_on(
        &self,
        member: &RaftQuorum,
        records: Vec<MetadataRecord>,
    ) -> Result<u64, QuorumError> {
        match member.propose(records).await {
            Ok(index) => {
                // The entry is applied: make it visible before answering (the forwarding task
                // may not have run yet).
                self.inner.publish(member.image());
                Ok(index)
            }
            // The member stopped under this proposal: a storage error, answered as one. A write
            // that failed was cut from the log; only if the member stopped for another reason
            // after the entry became durable does the restarted member still apply it (the
            // doubt Kafka's KAFKA_STORAGE_ERROR leaves too).
            Err(QuorumError::Unknown(message)) if member.is_stopped() => {
                Err(QuorumError::Stopped(message))
            }
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use quill_fs::sim::{CrashMode, SimDisk};
    use quill_fs::Fs;

    use super::*;

    const READY: Duration = Duration::from_secs(30);

    fn register(node_id: i32) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            node_id,
            host: format!("h{node_id}"),
            port: 9092,
            rack: None,
            incarnation_id: None,
        }
    }

    fn single_voter(fs: Fs, dir: PathBuf) -> StartMember {
        Box::new(move || {
            let fs = fs.clone();
            let dir = dir.clone();
            Box::pin(async move { RaftQuorum::start_single_voter(&fs, &dir, 1).await })
        })
    }

    fn brokers(quorum: &SupervisedQuorum) -> Vec<i32> {
        quorum.image().brokers.keys().copied().collect()
    }

    fn fresh_disk(dir: &Path) -> (SimDisk, Fs) {
        let disk = SimDisk::new();
        let fs = disk.mount();
        fs.create_dir_all(dir).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        (disk, fs)
    }

    /// Issue 11 with the quorum: a full disk stops the member (openraft treats the failed write
    /// as fatal); changes fail cleanly as storage errors while it lasts, the image stays
    /// readable, and once space returns the next change succeeds without a process restart.
    /// The refused change never appears, not even after a power loss.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_fails_changes_until_space_returns_without_a_restart() {
        let dir = PathBuf::from("/data/__cluster_metadata");
        let (disk, fs) = fresh_disk(&dir);
        let quorum = SupervisedQuorum::start(single_voter(fs, dir.clone()), READY, None)
            .await
            .unwrap();
        assert!(quorum.wait_ready(READY).await);
        quorum.propose(vec![register(1)]).await.unwrap();

        disk.set_full(true);
        for _ in 0..3 {
            let refused = quorum.propose(vec![register(2)]).await.unwrap_err();
            assert_eq!(refused.kafka_error_code(), 56, "{refused}");
        }
        assert_eq!(brokers(&quorum), vec![1]);

        disk.set_full(false);
        let index = quorum.propose(vec![register(3)]).await.unwrap();
        assert!(quorum.image().offset >= index);
        assert_eq!(brokers(&quorum), vec![1, 3]);
        quorum.shutdown().await;

        disk.power_loss(CrashMode::Partial { seed: 7 });
        let fs = disk.mount();
        let reopened = SupervisedQuorum::start(single_voter(fs, dir), READY, None)
            .await
            .unwrap();
        assert!(reopened.wait_ready(READY).await);
        assert_eq!(brokers(&reopened), vec![1, 3]);
        reopened.shutdown().await;
    }

    /// Start-up on a full disk: the sole voter cannot even vote for itself, yet its image holds
    /// every change in its log (all committed); changes work once space returns, restarted by
    /// the background loop or by the next proposal.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_up_on_a_full_disk_serves_the_whole_log_read_only() {
        let dir = PathBuf::from("/data/__cluster_metadata");
        let (disk, fs) = fresh_disk(&dir);
        let quorum = SupervisedQuorum::start(single_voter(fs, dir.clone()), READY, None)
            .await
            .unwrap();
        assert!(quorum.wait_ready(READY).await);
        quorum.propose(vec![register(1)]).await.unwrap();
        quorum.propose(vec![register(2)]).await.unwrap();
        quorum.shutdown().await;
        disk.kill_process();

        disk.set_full(true);
        let fs = disk.mount();
        let quorum = SupervisedQuorum::start(single_voter(fs, dir), READY, None)
            .await
            .unwrap();
        assert_eq!(brokers(&quorum), vec![1, 2]);
        let refused = quorum.propose(vec![register(3)]).await.unwrap_err();
        assert_eq!(refused.kafka_error_code(), 56, "{refused}");
        disk.set_full(false);
        quorum.propose(vec![register(3)]).await.unwrap();
        assert_eq!(brokers(&quorum), vec![1, 2, 3]);
        quorum.shutdown().await;
    }
}
