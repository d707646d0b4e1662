//! The metadata state machine under openraft: committed entries are applied with the pure
//! [`crate::apply_entry`]; snapshots are the existing image snapshot format
//! (`storage::snapshot`), so a snapshot is replayed through the same validating code as the log.
//!
//! The image lives in memory; what is durable is the latest snapshot (`quorum.snapshot`: a
//! frame with openraft's snapshot meta, then the image snapshot frame). On restart the image is
//! the snapshot's, and openraft re-applies the committed log entries after it.
//!
//! Invariant: `image.offset` is the Raft index of the last applied entry. Blank (leader no-op)
//! and membership entries change nothing but the offset; a normal entry that fails validation
//! is applied as a no-op too, identically on every node, and its proposer is told why.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use quill_fs::Fs;
use tokio::sync::watch;

use super::log_store::{create_dir_durably, DurableSnapshot};
use super::{ApplyOutcome, MetaRaftConfig, NodeId};
use crate::storage::frame::{self, FrameRead};
use crate::storage::snapshot::{decode_snapshot, encode_snapshot, MAX_SNAPSHOT_BYTES};
use crate::{apply_entry, MetaError, MetadataImage};

pub const SNAPSHOT_FILE: &str = "quorum.snapshot";
/// openraft's snapshot meta (log id, membership, id) is small; bound what is read.
const MAX_SNAPSHOT_META_BYTES: usize = 1024 * 1024;

type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// The latest snapshot: openraft's meta plus the framed image snapshot bytes.
#[derive(Clone)]
struct StoredSnapshot {
    meta: Meta,
    data: Vec<u8>,
}

struct Shared {
    fs: Fs,
    dir: PathBuf,
    current: Mutex<Option<StoredSnapshot>>,
    /// How far the durable snapshot reaches, for the log store's purges.
    durable: Arc<DurableSnapshot>,
}

impl Shared {
    fn current(&self) -> Option<StoredSnapshot> {
        match self.current.lock() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Writes the snapshot file atomically, then makes it the current snapshot — unless the
    /// current one is as new or newer: openraft builds a snapshot in a task of its own, so a
    /// build started before a newer snapshot was installed can finish after it (and the log
    /// may already be purged up to the newer one; replacing it would lose the entries in
    /// between, as the simulation found). Persists are serialized by the lock.
    fn persist(&self, snapshot: StoredSnapshot) -> std::result::Result<(), MetaError> {
        let mut current = match self.current.lock() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        if current
            .as_ref()
            .is_some_and(|current| current.meta.last_log_id >= snapshot.meta.last_log_id)
        {
            return Ok(());
        }
        let meta = serde_json::to_vec(&snapshot.meta)
            .map_err(|error| MetaError::Corrupt(format!("cannot encode snapshot meta: {error}")))?;
        let mut bytes = frame::encode_frame(&meta)?;
        bytes.extend_from_slice(&snapshot.data);
        self.fs.write_atomically(&self.dir, SNAPSHOT_FILE, &bytes)?;
        self.durable
            .set(snapshot.meta.last_log_id.map(|id| id.index));
        *current = Some(snapshot);
        Ok(())
    }
}

pub struct StateMachine {
    cluster_id: String,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    publisher: watch::Sender<Arc<MetadataImage>>,
    shared: Arc<Shared>,
}

impl StateMachine {
    /// Loads the latest snapshot from `dir` (if any).
    pub fn open(fs: &Fs, dir: &Path, cluster_id: &str) -> std::result::Result<Self, MetaError> {
        create_dir_durably(fs, dir)?;
        fs.remove_file_if_exists(&dir.join(format!("{SNAPSHOT_FILE}.tmp")))?;
        let stored = read_snapshot_file(fs, &dir.join(SNAPSHOT_FILE))?;
        let (image, last_applied, membership) = match &stored {
            Some(stored) => (
                decode_image(stored, cluster_id)?,
                stored.meta.last_log_id,
                stored.meta.last_membership.clone(),
            ),
            None => (
                MetadataImage::empty(cluster_id),
                None,
                StoredMembership::default(),
            ),
        };
        let image = Arc::new(image);
        let (publisher, _) = watch::channel(Arc::clone(&image));
        Ok(StateMachine {
            cluster_id: cluster_id.to_string(),
            image,
            last_applied,
            membership,
            publisher,
            shared: Arc::new(Shared {
                fs: fs.clone(),
                dir: dir.to_path_buf(),
                durable: {
                    let durable = Arc::new(DurableSnapshot::default());
                    durable.set(
                        stored
                            .as_ref()
                            .and_then(|s| s.meta.last_log_id.map(|id| id.index)),
                    );
                    durable
                },
                current: Mutex::new(stored),
            }),
        })
    }

    /// How far the durable snapshot reaches (the log store purges behind it only).
    pub fn durable_snapshot(&self) -> Arc<DurableSnapshot> {
        Arc::clone(&self.shared.durable)
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.publisher.subscribe()
    }

    fn publish(&self) {
        self.publisher.send_replace(Arc::clone(&self.image));
    }
}

/// Writes `image` as the current snapshot with `meta` (a migration's starting point).
pub(crate) fn write_snapshot(
    fs: &Fs,
    dir: &Path,
    meta: Meta,
    image: &MetadataImage,
) -> std::result::Result<(), MetaError> {
    create_dir_durably(fs, dir)?;
    let shared = Shared {
        fs: fs.clone(),
        dir: dir.to_path_buf(),
        current: Mutex::new(None),
        durable: Arc::default(),
    };
    shared.persist(StoredSnapshot {
        meta,
        data: encode_snapshot(image)?,
    })
}

fn decode_image(
    stored: &StoredSnapshot,
    cluster_id: &str,
) -> std::result::Result<MetadataImage, MetaError> {
    let image = decode_snapshot(&stored.data, cluster_id)?;
    let expected = stored.meta.last_log_id.map(|id| id.index).unwrap_or(0);
    if image.offset != expected {
        return Err(MetaError::Corrupt(format!(
            "snapshot image is at index {}, its meta says {expected}",
            image.offset
        )));
    }
    Ok(image)
}

fn read_snapshot_file(
    fs: &Fs,
    path: &Path,
) -> std::result::Result<Option<StoredSnapshot>, MetaError> {
    if !fs.exists(path) {
        return Ok(None);
    }
    if fs.file_len(path)? > (MAX_SNAPSHOT_BYTES + MAX_SNAPSHOT_META_BYTES) as u64 {
        return Err(MetaError::Corrupt(format!(
            "{} is too large",
            path.display()
        )));
    }
    let bytes = fs.read(path)?;
    let mut reader = bytes.as_slice();
    let meta = match frame::read_frame(&mut reader, MAX_SNAPSHOT_META_BYTES)? {
        FrameRead::Frame(meta) => meta,
        FrameRead::End | FrameRead::Invalid(_) => {
            return Err(MetaError::Corrupt(format!(
                "{} has no valid meta frame",
                path.display()
            )))
        }
    };
    let meta: Meta = serde_json::from_slice(&meta)
        .map_err(|error| MetaError::Corrupt(format!("undecodable snapshot meta: {error}")))?;
    Ok(Some(StoredSnapshot {
        meta,
        data: reader.to_vec(),
    }))
}

fn to_snapshot(stored: StoredSnapshot) -> Snapshot<MetaRaftConfig> {
    Snapshot {
        meta: stored.meta,
        snapshot: Box::new(Cursor::new(stored.data)),
    }
}

/// Applies one committed entry's payload to `image` (a new image; `image` is untouched).
fn apply_payload(
    image: &MetadataImage,
    index: u64,
    payload: &EntryPayload<MetaRaftConfig>,
) -> (MetadataImage, ApplyOutcome) {
    if let EntryPayload::Normal(entry) = payload {
        match apply_entry(image, index, &entry.records) {
            Ok(next) => return (next, ApplyOutcome::Applied),
            Err(error) => {
                let mut next = image.clone();
                next.offset = index;
                let outcome = ApplyOutcome::Rejected {
                    error_code: error.kafka_error_code(),
                    message: error.to_string(),
                };
                return (next, outcome);
            }
        }
    }
    let mut next = image.clone();
    next.offset = index;
    (next, ApplyOutcome::Applied)
}

impl RaftStateMachine<MetaRaftConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(
        Option<LogId<NodeId>>,
        StoredMembership<NodeId, openraft::BasicNode>,
    )> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyOutcome>>
    where
        I: IntoIterator<Item = openraft::Entry<MetaRaftConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut outcomes = Vec::new();
        let mut image = Arc::clone(&self.image);
        for entry in entries {
            let index = entry.log_id.index;
            if index <= image.offset && self.last_applied.is_some() {
                // openraft never re-applies; a repeat means our bookkeeping is wrong.
                let error = MetaError::Corrupt(format!(
                    "entry {index} applied twice (image at {})",
                    image.offset
                ));
                return Err(StorageIOError::apply(entry.log_id, AnyError::new(&error)).into());
            }
            if let EntryPayload::Membership(membership) = &entry.payload {
                self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
            }
            let (next, outcome) = apply_payload(&image, index, &entry.payload);
            image = Arc::new(next);
            self.last_applied = Some(entry.log_id);
            outcomes.push(outcome);
        }
        self.image = image;
        // Published before openraft answers the proposer, so an acknowledged change is visible.
        self.publish();
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            image: Arc::clone(&self.image),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            shared: Arc::clone(&self.shared),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let signature = meta.signature();
        // Decoding checks and rebuilds the whole image, and persisting writes and fsyncs it:
        // both on the blocking pool (see `on_blocking_pool`).
        let (shared, cluster_id) = (Arc::clone(&self.shared), self.cluster_id.clone());
        let installed = super::runtime::run_blocking(move || {
            let image = decode_image(&stored, &cluster_id).map_err(SnapshotFailure::Decode)?;
            shared.persist(stored).map_err(SnapshotFailure::Write)?;
            Ok(image)
        })
        .await
        .unwrap_or_else(|error| {
            Err(SnapshotFailure::Write(MetaError::Corrupt(
                error.to_string(),
            )))
        })
        .map_err(|failure| match failure {
            SnapshotFailure::Decode(error) => {
                StorageIOError::read_snapshot(Some(signature), AnyError::new(&error))
            }
            SnapshotFailure::Write(error) => {
                StorageIOError::write_snapshot(Some(signature), AnyError::new(&error))
            }
        })?;
        self.image = Arc::new(installed);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<MetaRaftConfig>>> {
        Ok(self.shared.current().map(to_snapshot))
    }
}

/// Why installing a received snapshot failed.
enum SnapshotFailure {
    Decode(MetaError),
    Write(MetaError),
}

/// Builds a snapshot of the image as of `get_snapshot_builder` (openraft runs it off the apply
/// path), persists it, and makes it current.
pub struct SnapshotBuilder {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    shared: Arc<Shared>,
}

impl RaftSnapshotBuilder<MetaRaftConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<MetaRaftConfig>> {
        let snapshot_id = match self.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, self.image.offset),
            None => "empty".to_string(),
        };
        let meta = Meta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        // Encoding the whole image and writing + fsyncing it: on the blocking pool.
        let (image, shared) = (Arc::clone(&self.image), Arc::clone(&self.shared));
        let signature = meta.signature();
        let built = super::runtime::run_blocking(move || {
            let stored = StoredSnapshot {
                meta,
                data: encode_snapshot(&image)?,
            };
            shared.persist(stored.clone())?;
            Ok(stored)
        })
        .await
        .unwrap_or_else(|error| Err(MetaError::Corrupt(error)))
        .map_err(|error| StorageIOError::write_snapshot(Some(signature), AnyError::new(&error)))?;
        Ok(to_snapshot(built))
    }
}
