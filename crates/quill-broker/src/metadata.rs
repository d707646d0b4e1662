//! The metadata service: the only path by which cluster metadata changes.
//!
//! Architecture invariant: handlers read an immutable `Arc<MetadataImage>`; every change is a
//! batch of `MetadataRecord`s appended through [`MetadataService::append`], which validates it,
//! persists it (fsync) and applies it with quill-meta's state machine. The caller
//! ([`crate::state::BrokerState::change_metadata`]) then reconciles the partition logs with the
//! new image — in that order, one change at a time.

use std::path::Path;
use std::sync::{Arc, Mutex};

use quill_meta::{ImageReader, MetaError, MetadataImage, MetadataRecord, MetadataStore};

/// The durable metadata log (single writer) plus a reader that never waits behind an append.
pub struct MetadataService {
    store: Mutex<MetadataStore>,
    reader: ImageReader,
}

impl MetadataService {
    /// Blocking: opens (or creates) the metadata log under `dir` and replays it.
    pub fn open(dir: &Path) -> Result<MetadataService, MetaError> {
        let store = MetadataStore::open(dir)?;
        let reader = store.reader();
        Ok(MetadataService {
            store: Mutex::new(store),
            reader,
        })
    }

    /// The current image (cheap: clones an `Arc`); everything in it is durable.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.reader.image()
    }

    /// Blocking (fsync): validates, persists and applies one entry atomically.
    pub fn append(&self, records: Vec<MetadataRecord>) -> Result<Arc<MetadataImage>, MetaError> {
        let mut store = self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        store.append(records)
    }
}
