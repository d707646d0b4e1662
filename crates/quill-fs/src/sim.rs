//! A simulated disk for tests: an in-memory file system that knows what each fsync made
//! durable, and can lose the rest as a power loss would.
//!
//! # The model
//!
//! It follows what Linux promises on ext4 (`data=ordered`, the default) and XFS, taking the
//! pessimistic side wherever the kernel promises nothing:
//!
//! - A file's data is durable as of its last completed `sync_data` / `sync_all`. Both persist
//!   the size too (`fdatasync` writes the size when it changed, because the data needs it).
//! - A name (a file or directory created, renamed or deleted) is durable only once the
//!   directory holding it is synced ([`crate::Fs::sync_dir`]). Syncing a file never makes its
//!   name durable: ext4 often does so in practice (the file's fsync commits the journal
//!   transaction that holds the name), but nothing promises it. A new directory's name needs its
//!   parent synced.
//! - A power loss ([`SimDisk::power_loss`]) keeps each file's durable content plus, per
//!   [`CrashMode`], either nothing written since ([`CrashMode::LoseUnsynced`]: the worst case
//!   for durability) or a prefix of the later operations in issue order, the last one torn at
//!   any byte ([`CrashMode::Partial`]: write-back had started). A torn append may also leave
//!   its whole length behind as zeros past the written prefix: the size reached the disk before
//!   the data (XFS's classic null bytes; delayed allocation writes pages back in any order).
//! - Name changes are journaled in order, so a power loss keeps a prefix of the unsynced ones
//!   (none under `LoseUnsynced`). Renames are atomic.
//! - A file whose name did not survive is gone with its data, synced or not; so is everything
//!   in a directory whose name did not survive. What survives is then durable.
//! - A process crash ([`SimDisk::kill_process`]) loses nothing: the page cache survives it.
//!   Its files and locks are released.
//!
//! Handles from before a crash (the [`crate::Fs`] from [`SimDisk::mount`] and the files opened
//! through it) fail every later call, as a dead process would. [`SimDisk::power_loss_after`]
//! and [`SimDisk::kill_process_after`] crash inside the n-th later mutating call, so a test
//! can stop a store at every step of an operation (between a file's creation and its
//! directory's fsync, say).
//!
//! Not modelled: I/O errors and full disks, hard links, renaming directories or across
//! directories (refused with `Unsupported`), permissions, timestamps (`modified_ms` is `None`).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::{Fs, FsKind, OpenOptions};

/// What a power loss keeps of the operations not covered by an fsync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Nothing: every unsynced write, size change and name change is lost.
    LoseUnsynced,
    /// Some write-back happened: per file a prefix of its unsynced operations (the last one
    /// possibly torn, or zero-filled), and a prefix of the unsynced name changes, chosen by a
    /// pseudo-random generator from `seed`.
    Partial { seed: u64 },
}

/// The simulated machine's disk. Cloning gives another handle to the same disk.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    state: Arc<Mutex<Disk>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File(u64),
}

#[derive(Debug)]
enum DataChange {
    Write { at: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct Inode {
    /// What a reader sees (the page cache).
    data: Vec<u8>,
    /// What is on the platter as of the last sync.
    durable: Vec<u8>,
    unsynced: Vec<DataChange>,
}

/// One journaled name operation in `dir`: entries set (`Some`) or removed (`None`) together.
#[derive(Debug)]
struct NameChange {
    dir: PathBuf,
    entries: Vec<(PathBuf, Option<Node>)>,
}

#[derive(Debug)]
struct Disk {
    live: BTreeMap<PathBuf, Node>,
    durable: BTreeMap<PathBuf, Node>,
    unsynced_names: Vec<NameChange>,
    inodes: HashMap<u64, Inode>,
    next_id: u64,
    /// Bumped by every crash: handles of an older generation are dead.
    generation: u64,
    /// Inode → the handle holding its lock.
    locks: HashMap<u64, u64>,
    /// Mutating calls left before a scheduled crash: a power loss, or a kill (`None`).
    crash_countdown: Option<(u64, Option<CrashMode>)>,
    mutating_calls: u64,
    bytes_read: u64,
    /// While true every call that needs new space fails with ENOSPC (see `set_full`).
    full: bool,
    hook: HookSlot,
    access_hook: HookSlot,
}

/// Called at every mutating call, before it takes effect, with the disk locked: it must not use
/// the disk. Tests use it to see what else holds (or does not hold) a lock during file work.
pub type MutationHook = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct HookSlot(Option<MutationHook>);

impl std::fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(hook)"
        } else {
            "None"
        })
    }
}

impl Default for Disk {
    fn default() -> Disk {
        let root = BTreeMap::from([(PathBuf::from("/"), Node::Dir)]);
        Disk {
            live: root.clone(),
            durable: root,
            unsynced_names: Vec::new(),
            inodes: HashMap::new(),
            next_id: 1,
            generation: 0,
            locks: HashMap::new(),
            crash_countdown: None,
            mutating_calls: 0,
            bytes_read: 0,
            full: false,
            hook: HookSlot::default(),
            access_hook: HookSlot::default(),
        }
    }
}

fn dead_handle() -> io::Error {
    io::Error::other("simulated crash: this handle belongs to a process that no longer runs")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, what.to_string())
}

impl SimDisk {
    /// An empty disk holding only the (durable) root directory `/`.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A file system handle for the process now running (see the module doc on crashes).
    pub fn mount(&self) -> Fs {
        let generation = self.lock().generation;
        Fs {
            kind: FsKind::Sim(Mount {
                disk: self.clone(),
                generation,
            }),
        }
    }

    /// The process dies: its handles go dead and its locks are released; nothing is lost.
    pub fn kill_process(&self) {
        self.lock().kill_process();
    }

    /// The process dies inside the `(calls + 1)`-th mutating call from now, which fails (and
    /// does nothing), as does everything after it.
    pub fn kill_process_after(&self, calls: u64) {
        self.lock().crash_countdown = Some((calls, None));
    }

    /// The machine loses power now (see the module doc for what survives).
    pub fn power_loss(&self, mode: CrashMode) {
        self.lock().power_loss(mode);
    }

    /// The machine loses power inside the `(calls + 1)`-th mutating call from now (a write, size
    /// change, sync, creation, rename or removal), which fails, as does everything after it.
    pub fn power_loss_after(&self, calls: u64, mode: CrashMode) {
        self.lock().crash_countdown = Some((calls, Some(mode)));
    }

    /// How many crashes (kills and power losses) the disk has seen: a handle mounted before
    /// the count last moved is dead.
    pub fn crashes(&self) -> u64 {
        self.lock().generation
    }

    /// The disk fills up (`true`) or gets space back (`false`). While full, every call that
    /// needs new space (a write, growing a file, creating a file or directory) fails with
    /// ENOSPC and changes nothing; syncs, renames, removals and shrinking still work.
    pub fn set_full(&self, full: bool) {
        self.lock().full = full;
    }

    /// Whether a scheduled crash is still to come.
    pub fn crash_pending(&self) -> bool {
        self.lock().crash_countdown.is_some()
    }

    /// Bytes read from files so far (to bound how much a recovery reads).
    pub fn bytes_read(&self) -> u64 {
        self.lock().bytes_read
    }

    /// Runs `hook` at every mutating call from now on (`None` removes it); see [`MutationHook`].
    pub fn set_mutation_hook(&self, hook: Option<MutationHook>) {
        self.lock().hook = HookSlot(hook);
    }

    /// Runs `hook` at every call that reads or changes the disk from now on — opens, reads,
    /// metadata, writes, syncs (closing a handle is not one) — with the disk locked, as a
    /// [`MutationHook`]; `None` removes it. Tests use it to see which threads touch the disk.
    pub fn set_access_hook(&self, hook: Option<MutationHook>) {
        self.lock().access_hook = HookSlot(hook);
    }

    /// Mutating calls so far, to choose crash points.
    pub fn mutating_calls(&self) -> u64 {
        self.lock().mutating_calls
    }

    /// The content a file would have after a power loss that kept nothing unsynced, or `None`
    /// if its name is not durable.
    pub fn durable_content(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.lock();
        match disk.durable.get(path) {
            Some(Node::File(id)) => disk.inodes.get(id).map(|inode| inode.durable.clone()),
            _ => None,
        }
    }
}

impl Disk {
    /// Counts a mutating call, and fails it if a scheduled power loss is due.
    fn mutate(&mut self) -> io::Result<()> {
        self.mutating_calls += 1;
        if let Some(hook) = &self.hook.0 {
            hook();
        }
        if let Some((remaining, mode)) = self.crash_countdown.as_mut() {
            if *remaining == 0 {
                match *mode {
                    Some(mode) => self.power_loss(mode),
                    None => self.kill_process(),
                }
                return Err(dead_handle());
            }
            *remaining -= 1;
        }
        Ok(())
    }

    /// Fails a call that needs new space while the disk is full (after `mutate` counted it).
    fn allocate(&self) -> io::Result<()> {
        if self.full {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }

    fn kill_process(&mut self) {
        self.generation += 1;
        self.locks.clear();
        self.crash_countdown = None;
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn file_id(&self, path: &Path) -> io::Result<u64> {
        match self.live.get(path) {
            Some(Node::File(id)) => Ok(*id),
            Some(Node::Dir) => Err(io::Error::other(format!(
                "{} is a directory",
                path.display()
            ))),
            None => Err(not_found(path)),
        }
    }

    fn inode(&mut self, id: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&id)
            .ok_or_else(|| io::Error::other("simulated inode vanished"))
    }

    fn parent_dir(&self, path: &Path) -> io::Result<PathBuf> {
        let parent = path.parent().ok_or_else(|| not_found(path))?;
        match self.live.get(parent) {
            Some(Node::Dir) => Ok(parent.to_path_buf()),
            _ => Err(not_found(parent)),
        }
    }

    fn change_names(&mut self, dir: PathBuf, entries: Vec<(PathBuf, Option<Node>)>) {
        for (path, node) in &entries {
            match node {
                Some(node) => self.live.insert(path.clone(), *node),
                None => self.live.remove(path),
            };
        }
        self.unsynced_names.push(NameChange { dir, entries });
    }

    fn power_loss(&mut self, mode: CrashMode) {
        let mut random = match mode {
            CrashMode::LoseUnsynced => None,
            CrashMode::Partial { seed } => Some(SplitMix64(seed)),
        };
        let mut names = self.durable.clone();
        let kept_changes = random
            .as_mut()
            .map_or(0, |r| r.below(self.unsynced_names.len() + 1));
        for change in &self.unsynced_names[..kept_changes] {
            for (path, node) in &change.entries {
                match node {
                    Some(node) => names.insert(path.clone(), *node),
                    None => names.remove(path),
                };
            }
        }
        // Sorted paths list a directory before its entries, so one pass drops orphans.
        let mut survivors: BTreeMap<PathBuf, Node> = BTreeMap::new();
        for (path, node) in names {
            let parent_survived = path
                .parent()
                .is_none_or(|parent| survivors.get(parent) == Some(&Node::Dir));
            if parent_survived {
                survivors.insert(path, node);
            }
        }
        let mut inodes = HashMap::new();
        for node in survivors.values() {
            if let Node::File(id) = node {
                if let Some(inode) = self.inodes.remove(id) {
                    let content = inode.after_power_loss(random.as_mut());
                    inodes.insert(
                        *id,
                        Inode {
                            data: content.clone(),
                            durable: content,
                            unsynced: Vec::new(),
                        },
                    );
                }
            }
        }
        self.inodes = inodes;
        self.live = survivors.clone();
        self.durable = survivors;
        self.unsynced_names.clear();
        self.locks.clear();
        self.crash_countdown = None;
        self.generation += 1;
    }
}

impl Inode {
    fn write(&mut self, at: u64, bytes: &[u8]) {
        apply_write(&mut self.data, at, bytes);
        self.unsynced.push(DataChange::Write {
            at,
            bytes: bytes.to_vec(),
        });
    }

    fn set_len(&mut self, len: u64) {
        self.data.resize(len as usize, 0);
        self.unsynced.push(DataChange::SetLen(len));
    }

    fn sync(&mut self) {
        self.durable.clone_from(&self.data);
        self.unsynced.clear();
    }

    fn after_power_loss(self, random: Option<&mut SplitMix64>) -> Vec<u8> {
        let mut content = self.durable;
        let Some(random) = random else {
            return content;
        };
        let kept = random.below(self.unsynced.len() + 1);
        for change in &self.unsynced[..kept] {
            match change {
                DataChange::Write { at, bytes } => apply_write(&mut content, *at, bytes),
                DataChange::SetLen(len) => content.resize(*len as usize, 0),
            }
        }
        // The first lost operation may have been torn: a size change is atomic, a write is not.
        if let Some(DataChange::Write { at, bytes }) = self.unsynced.get(kept) {
            let written = random.below(bytes.len() + 1);
            apply_write(&mut content, *at, &bytes[..written]);
            let end = *at as usize + bytes.len();
            if random.below(4) == 0 && end > content.len() {
                content.resize(end, 0);
            }
        }
        content
    }
}

fn apply_write(data: &mut Vec<u8>, at: u64, bytes: &[u8]) {
    let at = at as usize;
    let end = at + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[at..end].copy_from_slice(bytes);
}

/// A small deterministic generator (SplitMix64): crash outcomes replay from their seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// One process's view of a [`SimDisk`].
#[derive(Clone, Debug)]
pub(crate) struct Mount {
    disk: SimDisk,
    generation: u64,
}

impl Default for Mount {
    fn default() -> Mount {
        SimDisk::new().mount_inner()
    }
}

impl SimDisk {
    fn mount_inner(&self) -> Mount {
        Mount {
            disk: self.clone(),
            generation: self.lock().generation,
        }
    }
}

impl Mount {
    fn disk(&self) -> io::Result<MutexGuard<'_, Disk>> {
        let disk = self.disk_for_close()?;
        if let Some(hook) = &disk.access_hook.0 {
            hook();
        }
        Ok(disk)
    }

    /// The disk, without running the access hook (closing a handle).
    fn disk_for_close(&self) -> io::Result<MutexGuard<'_, Disk>> {
        let disk = self.disk.lock();
        if disk.generation != self.generation {
            return Err(dead_handle());
        }
        Ok(disk)
    }

    pub(crate) fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk()?;
        let mut missing: Vec<&Path> = path
            .ancestors()
            .take_while(|p| !disk.live.contains_key(*p))
            .collect();
        if let Some(existing) = path.ancestors().find(|p| disk.live.contains_key(*p)) {
            if disk.live.get(existing) != Some(&Node::Dir) {
                return Err(io::Error::other(format!(
                    "{} is not a directory",
                    existing.display()
                )));
            }
        }
        missing.reverse();
        for dir in missing {
            disk.mutate()?;
            disk.allocate()?;
            let parent = disk.parent_dir(dir)?;
            disk.change_names(parent, vec![(dir.to_path_buf(), Some(Node::Dir))]);
        }
        Ok(())
    }

    pub(crate) fn open(&self, path: &Path, options: OpenOptions) -> io::Result<SimFile> {
        let mut disk = self.disk()?;
        let id = match disk.live.get(path) {
            Some(_) => {
                let id = disk.file_id(path)?;
                if options.truncate && (options.write || options.append) {
                    disk.mutate()?;
                    disk.inode(id)?.set_len(0);
                }
                id
            }
            None if options.create => {
                disk.mutate()?;
                disk.allocate()?;
                let parent = disk.parent_dir(path)?;
                let id = disk.new_id();
                disk.inodes.insert(id, Inode::default());
                disk.change_names(parent, vec![(path.to_path_buf(), Some(Node::File(id)))]);
                id
            }
            None => return Err(not_found(path)),
        };
        let handle = disk.new_id();
        Ok(SimFile {
            mount: self.clone(),
            inode: id,
            handle,
            options,
            position: Mutex::new(0),
        })
    }

    pub(crate) fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut disk = self.disk()?;
        let id = disk.file_id(path)?;
        let data = disk.inode(id)?.data.clone();
        disk.bytes_read += data.len() as u64;
        Ok(data)
    }

    pub(crate) fn file_len(&self, path: &Path) -> io::Result<u64> {
        let mut disk = self.disk()?;
        let id = disk.file_id(path)?;
        Ok(disk.inode(id)?.data.len() as u64)
    }

    pub(crate) fn exists(&self, path: &Path) -> bool {
        self.disk().is_ok_and(|disk| disk.live.contains_key(path))
    }

    pub(crate) fn is_dir(&self, path: &Path) -> bool {
        self.disk()
            .is_ok_and(|disk| disk.live.get(path) == Some(&Node::Dir))
    }

    pub(crate) fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let disk = self.disk()?;
        if disk.live.get(path) != Some(&Node::Dir) {
            return Err(not_found(path));
        }
        Ok(disk
            .live
            .keys()
            .filter(|entry| entry.parent() == Some(path))
            .cloned()
            .collect())
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk()?;
        let id = disk.file_id(from)?;
        if from.parent() != to.parent() {
            return Err(unsupported("simulated rename across directories"));
        }
        if disk.live.get(to) == Some(&Node::Dir) {
            return Err(unsupported("simulated rename over a directory"));
        }
        disk.mutate()?;
        let dir = disk.parent_dir(from)?;
        disk.change_names(
            dir,
            vec![
                (from.to_path_buf(), None),
                (to.to_path_buf(), Some(Node::File(id))),
            ],
        );
        Ok(())
    }

    pub(crate) fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk()?;
        disk.file_id(path)?;
        disk.mutate()?;
        let dir = disk.parent_dir(path)?;
        disk.change_names(dir, vec![(path.to_path_buf(), None)]);
        Ok(())
    }

    pub(crate) fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk()?;
        if disk.live.get(path) != Some(&Node::Dir) {
            return Err(not_found(path));
        }
        disk.mutate()?;
        let dir = disk.parent_dir(path)?;
        // The entries inside go with the directory; a power loss that keeps the removal drops
        // them as orphans, one that loses it keeps whichever of them were durable.
        let inside: Vec<PathBuf> = disk
            .live
            .keys()
            .filter(|p| p.starts_with(path) && p.as_path() != path)
            .cloned()
            .collect();
        for entry in inside {
            disk.live.remove(&entry);
        }
        disk.change_names(dir, vec![(path.to_path_buf(), None)]);
        Ok(())
    }

    pub(crate) fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk()?;
        if disk.live.get(path) != Some(&Node::Dir) {
            return Err(not_found(path));
        }
        disk.mutate()?;
        let in_dir = |p: &Path| p.parent() == Some(path);
        disk.durable.retain(|p, _| !in_dir(p));
        let entries: Vec<(PathBuf, Node)> = disk
            .live
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        disk.durable.extend(entries);
        disk.unsynced_names.retain(|change| change.dir != path);
        Ok(())
    }
}

/// An open simulated file.
#[derive(Debug)]
pub(crate) struct SimFile {
    mount: Mount,
    inode: u64,
    handle: u64,
    options: OpenOptions,
    position: Mutex<u64>,
}

impl SimFile {
    fn with_inode<T>(
        &self,
        mutating: bool,
        action: impl FnOnce(&mut Inode) -> io::Result<T>,
    ) -> io::Result<T> {
        self.with_inode_growing(mutating, |_| 0, action)
    }

    /// Like `with_inode`, for a call that grows the file by `growth(inode)` bytes: fails with
    /// ENOSPC on a full disk when that is more than zero.
    fn with_inode_growing<T>(
        &self,
        mutating: bool,
        growth: impl FnOnce(&Inode) -> u64,
        action: impl FnOnce(&mut Inode) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut disk = self.mount.disk()?;
        if mutating {
            disk.mutate()?;
        }
        if growth(disk.inode(self.inode)?) > 0 {
            disk.allocate()?;
        }
        action(disk.inode(self.inode)?)
    }

    fn count_read(&self, bytes: usize) {
        if let Ok(mut disk) = self.mount.disk() {
            disk.bytes_read += bytes as u64;
        }
    }

    fn position(&self) -> MutexGuard<'_, u64> {
        self.position.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn size_bytes(&self) -> io::Result<u64> {
        self.with_inode(false, |inode| Ok(inode.data.len() as u64))
    }

    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        self.with_inode_growing(
            true,
            |inode| len.saturating_sub(inode.data.len() as u64),
            |inode| {
                inode.set_len(len);
                Ok(())
            },
        )
    }

    pub(crate) fn sync(&self) -> io::Result<()> {
        self.with_inode(true, |inode| {
            inode.sync();
            Ok(())
        })
    }

    pub(crate) fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        self.with_inode(false, |inode| {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let source = start
                .checked_add(buffer.len())
                .and_then(|end| inode.data.get(start..end))
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            buffer.copy_from_slice(source);
            Ok(())
        })?;
        self.count_read(buffer.len());
        Ok(())
    }

    pub(crate) fn read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        let mut position = self.position();
        let read = self.with_inode(false, |inode| {
            let start = (*position as usize).min(inode.data.len());
            let available = &inode.data[start..];
            let count = available.len().min(buffer.len());
            buffer[..count].copy_from_slice(&available[..count]);
            Ok(count)
        })?;
        *position += read as u64;
        self.count_read(read);
        Ok(read)
    }

    pub(crate) fn write(&self, bytes: &[u8]) -> io::Result<usize> {
        self.check_writable()?;
        let mut position = self.position();
        let append = self.options.append;
        let written_end = |inode: &Inode| {
            let at = if append {
                inode.data.len() as u64
            } else {
                *position
            };
            at + bytes.len() as u64
        };
        let growth = |inode: &Inode| written_end(inode).saturating_sub(inode.data.len() as u64);
        let at = self.with_inode_growing(true, growth, |inode| {
            let at = if append {
                inode.data.len() as u64
            } else {
                *position
            };
            inode.write(at, bytes);
            Ok(at)
        })?;
        *position = at + bytes.len() as u64;
        Ok(bytes.len())
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.options.write || self.options.append {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file not opened for writing",
            ))
        }
    }

    pub(crate) fn try_lock(&self) -> io::Result<bool> {
        let mut disk = self.mount.disk()?;
        match disk.locks.get(&self.inode) {
            Some(holder) if *holder != self.handle => Ok(false),
            _ => {
                disk.locks.insert(self.inode, self.handle);
                Ok(true)
            }
        }
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        if let Ok(mut disk) = self.mount.disk_for_close() {
            if disk.locks.get(&self.inode) == Some(&self.handle) {
                disk.locks.remove(&self.inode);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write;

    use super::*;

    fn create(fs: &Fs, path: &str) -> crate::File {
        fs.open(
            Path::new(path),
            OpenOptions {
                write: true,
                append: true,
                create: true,
                ..OpenOptions::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn power_loss_keeps_exactly_what_was_synced() {
        let disk = SimDisk::new();
        let fs = disk.mount();
        fs.create_dir_all(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let mut file = create(&fs, "/d/a");
        file.write_all(b"hello").unwrap();
        file.sync_data().unwrap();
        file.write_all(b" world").unwrap();
        // Data synced, but the name is not durable yet.
        disk.power_loss(CrashMode::LoseUnsynced);
        assert!(file.size_bytes().is_err(), "handles die with the machine");
        let fs = disk.mount();
        assert!(!fs.exists(Path::new("/d/a")));
        assert!(fs.is_dir(Path::new("/d")));

        let mut file = create(&fs, "/d/a");
        file.write_all(b"hello").unwrap();
        file.sync_data().unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        file.write_all(b" world").unwrap();
        fs.remove_file(Path::new("/d/a")).unwrap();
        disk.power_loss(CrashMode::LoseUnsynced);
        let fs = disk.mount();
        assert_eq!(fs.read(Path::new("/d/a")).unwrap(), b"hello");
    }

    #[test]
    fn a_directory_needs_its_parent_synced() {
        let disk = SimDisk::new();
        let fs = disk.mount();
        fs.create_dir_all(Path::new("/d/e")).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        let file = create(&fs, "/d/e/a");
        file.sync_data().unwrap();
        fs.sync_dir(Path::new("/d/e")).unwrap();
        disk.power_loss(CrashMode::LoseUnsynced);
        assert!(!disk.mount().exists(Path::new("/d")));
    }

    #[test]
    fn atomic_replace_survives_and_kill_loses_nothing() {
        let disk = SimDisk::new();
        let fs = disk.mount();
        fs.write_atomically(Path::new("/"), "state", b"one")
            .unwrap();
        let mut file = create(&fs, "/log");
        file.write_all(b"unsynced").unwrap();
        disk.kill_process();
        assert!(fs.read(Path::new("/state")).is_err());
        let fs = disk.mount();
        assert_eq!(fs.read(Path::new("/log")).unwrap(), b"unsynced");
        fs.write_atomically(Path::new("/"), "state", b"two")
            .unwrap();
        disk.power_loss(CrashMode::LoseUnsynced);
        let fs = disk.mount();
        assert_eq!(fs.read(Path::new("/state")).unwrap(), b"two");
        // The directory sync of the second replace made the log's name durable, not its data.
        assert_eq!(fs.read(Path::new("/log")).unwrap(), b"");
        assert!(!fs.exists(Path::new("/state.tmp")));
    }

    #[test]
    fn partial_write_back_keeps_a_prefix_in_order() {
        for seed in 0..200 {
            let disk = SimDisk::new();
            let fs = disk.mount();
            let mut file = create(&fs, "/log");
            fs.sync_dir(Path::new("/")).unwrap();
            file.write_all(b"aaaa").unwrap();
            file.sync_data().unwrap();
            file.write_all(b"bbbb").unwrap();
            file.write_all(b"cccc").unwrap();
            disk.power_loss(CrashMode::Partial { seed });
            let content = disk.mount().read(Path::new("/log")).unwrap();
            let expected = b"aaaabbbbcccc";
            let written = content.iter().take_while(|b| **b != 0).count();
            assert!(content.len() <= expected.len(), "{seed}: {content:?}");
            assert_eq!(&content[..written], &expected[..written], "{seed}");
            assert!(content[written..].iter().all(|b| *b == 0), "{seed}");
            assert!(written >= 4, "synced data is never lost");
        }
    }

    #[test]
    fn scheduled_power_loss_fails_the_call_and_everything_after() {
        let disk = SimDisk::new();
        let fs = disk.mount();
        let mut file = create(&fs, "/log");
        disk.power_loss_after(1, CrashMode::LoseUnsynced);
        file.write_all(b"a").unwrap();
        assert!(file.sync_data().is_err());
        assert!(!disk.crash_pending());
        assert!(fs.sync_dir(Path::new("/")).is_err());
        assert!(!disk.mount().exists(Path::new("/log")));
    }

    #[test]
    fn locks_are_exclusive_until_closed_or_killed() {
        let disk = SimDisk::new();
        let fs = disk.mount();
        let first = create(&fs, "/lock");
        let second = create(&fs, "/lock");
        assert!(first.try_lock().unwrap());
        assert!(!second.try_lock().unwrap());
        drop(first);
        assert!(second.try_lock().unwrap());
        disk.kill_process();
        let fs = disk.mount();
        assert!(create(&fs, "/lock").try_lock().unwrap());
    }
}
