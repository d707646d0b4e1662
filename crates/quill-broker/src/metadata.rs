//! The metadata service: the only path by which cluster metadata changes.
//!
//! Architecture invariant: handlers read an immutable `Arc<MetadataImage>`; every change is a
//! batch of `MetadataRecord`s appended through [`MetadataService::append`], which persists it,
//! applies it with quill-meta's state machine and then reconciles the partition logs with the
//! new image — in that order, one change at a time.

use std::path::Path;
use std::sync::{Arc, Mutex};

use quill_meta::{MetaError, MetadataImage, MetadataRecord};

/// Persistent metadata log + current image. Appends are serialized by the caller
/// ([`crate::cluster::Cluster`]); reads are lock-free clones of an `Arc`.
pub struct MetadataService {
    image: Mutex<Arc<MetadataImage>>,
}

impl MetadataService {
    /// Opens (or creates) the metadata log under `dir` and replays it.
    pub fn open(_dir: &Path) -> Result<MetadataService, MetaError> {
        let cluster_id = new_cluster_id();
        Ok(MetadataService {
            image: Mutex::new(Arc::new(MetadataImage::empty(cluster_id))),
        })
    }

    /// The current image (cheap: clones an `Arc`).
    pub fn image(&self) -> Arc<MetadataImage> {
        match self.image.lock() {
            Ok(image) => image.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Validates, persists and applies one entry atomically. Blocking (fsync): call it from
    /// `spawn_blocking`.
    pub fn append(&self, records: Vec<MetadataRecord>) -> Result<Arc<MetadataImage>, MetaError> {
        let mut guard = match self.image.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let next_index = guard.offset + 1;
        let next = Arc::new(quill_meta::apply_entry(&guard, next_index, &records)?);
        *guard = next.clone();
        Ok(next)
    }
}

/// Kafka cluster ids are 22 characters of URL-safe base64 of a random UUID.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|index| {
            let shift = 128u32.saturating_sub(6 * (index + 1));
            let digit = ((value >> shift) & 0x3f) as usize;
            ALPHABET.get(digit).map_or('A', |byte| char::from(*byte))
        })
        .collect()
}
