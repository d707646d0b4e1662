//! The file-system seam of Quill's storage (quill-log's partition logs, quill-meta's metadata
//! store): every file is created, written, synced, renamed, truncated and deleted, and every
//! directory fsynced, through an [`Fs`] handle and the [`File`]s it opens.
//!
//! [`Fs::default()`] is the real file system: each call is the `std::fs` call it names, behind
//! an enum with (in normal builds) a single variant, so the seam costs nothing at run time.
//! With the `sim` feature (tests only), [`sim::SimDisk::mount`] gives an `Fs` over an in-memory
//! disk that can simulate a power loss (everything not covered by a completed fsync is lost,
//! see [`sim`] for the exact model) or a process crash (nothing is lost).
//!
//! The seam is deliberately narrow: only the operations the stores use, with the durability
//! vocabulary of POSIX (`sync_data`, `sync_all`, `sync_dir`).

use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};

#[cfg(feature = "sim")]
pub mod sim;

/// A handle to a file system. Cloning is cheap.
#[derive(Clone, Debug, Default)]
pub struct Fs {
    kind: FsKind,
}

#[derive(Clone, Debug, Default)]
enum FsKind {
    #[default]
    Std,
    #[cfg(feature = "sim")]
    Sim(sim::Mount),
}

/// Which access a [`Fs::open`] asks for; the flags mean what `std::fs::OpenOptions`'s do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    pub read: bool,
    pub write: bool,
    pub append: bool,
    pub create: bool,
    pub truncate: bool,
}

impl OpenOptions {
    /// Read only.
    pub const READ: OpenOptions = OpenOptions {
        read: true,
        write: false,
        append: false,
        create: false,
        truncate: false,
    };

    pub fn to_std(self) -> std::fs::OpenOptions {
        let mut options = std::fs::OpenOptions::new();
        options
            .read(self.read)
            .write(self.write)
            .append(self.append)
            .create(self.create)
            .truncate(self.truncate);
        options
    }
}

impl Fs {
    pub fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        match &self.kind {
            FsKind::Std => std::fs::create_dir_all(path),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => mount.create_dir_all(path),
        }
    }

    pub fn open(&self, path: &Path, options: OpenOptions) -> io::Result<File> {
        let kind = match &self.kind {
            FsKind::Std => FileKind::Std(options.to_std().open(path)?),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => FileKind::Sim(mount.open(path, options)?),
        };
        Ok(File { kind })
    }

    /// The whole content of a file.
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match &self.kind {
            FsKind::Std => std::fs::read(path),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => mount.read(path),
        }
    }

    /// The size of a file, in bytes.
    pub fn file_len(&self, path: &Path) -> io::Result<u64> {
        match &self.kind {
            FsKind::Std => Ok(std::fs::metadata(path)?.len()),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => mount.file_len(path),
        }
    }

    pub fn exists(&self, path: &Path) -> bool {
        match &self.kind {
            FsKind::Std => path.exists(),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => mount.exists(path),
        }
    }

    pub fn is_dir(&self, path: &Path) -> bool {
        match &self.kind {
            FsKind::Std => path.is_dir(),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => mount.is_dir(path),
        }
    }

    /// The paths of the entries of a directory, in no particular order.
    pub fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        match &self.kind {
            FsKind::Std => std::fs::read_dir(path)?
                .map(|entry| entry.map(|e| e.path()))
                .collect(),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => mount.list_dir(path),
        }
    }

    /// Atomically replaces `to` with `from` (durable once the directory is synced).
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match &self.kind {
            FsKind::Std => std::fs::rename(from, to),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => mount.rename(from, to),
        }
    }

    pub fn remove_file(&self, path: &Path) -> io::Result<()> {
        match &self.kind {
            FsKind::Std => std::fs::remove_file(path),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => mount.remove_file(path),
        }
    }

    /// Removes a file; a missing file is not an error.
    pub fn remove_file_if_exists(&self, path: &Path) -> io::Result<()> {
        match self.remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    pub fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        match &self.kind {
            FsKind::Std => std::fs::remove_dir_all(path),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => mount.remove_dir_all(path),
        }
    }

    /// fsyncs a directory: makes the creations, renames and deletions of its entries durable.
    pub fn sync_dir(&self, path: &Path) -> io::Result<()> {
        match &self.kind {
            FsKind::Std => std::fs::File::open(path)?.sync_all(),
            #[cfg(feature = "sim")]
            FsKind::Sim(mount) => mount.sync_dir(path),
        }
    }

    /// Replaces `dir/name` with `bytes` so that after a crash the file holds either the old or
    /// the new content: write `dir/name.tmp`, fsync it, rename it over, fsync the directory.
    pub fn write_atomically(&self, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        let temp_path = dir.join(format!("{name}.tmp"));
        let mut temp = self.open(
            &temp_path,
            OpenOptions {
                write: true,
                create: true,
                truncate: true,
                ..OpenOptions::default()
            },
        )?;
        temp.write_all(bytes)?;
        temp.sync_all()?;
        drop(temp);
        self.rename(&temp_path, &dir.join(name))?;
        self.sync_dir(dir)
    }
}

/// An open file. `Read` and `Write` use the file position (`append` writes at the end), as
/// `std::fs::File` does; `&File` implements both too.
#[derive(Debug)]
pub struct File {
    kind: FileKind,
}

#[derive(Debug)]
enum FileKind {
    Std(std::fs::File),
    #[cfg(feature = "sim")]
    Sim(sim::SimFile),
}

impl File {
    /// The current size in bytes.
    pub fn size_bytes(&self) -> io::Result<u64> {
        match &self.kind {
            FileKind::Std(file) => Ok(file.metadata()?.len()),
            #[cfg(feature = "sim")]
            FileKind::Sim(file) => file.size_bytes(),
        }
    }

    /// Last modification time in ms since the Unix epoch, if the file system keeps one.
    pub fn modified_ms(&self) -> Option<i64> {
        match &self.kind {
            FileKind::Std(file) => {
                let modified = file.metadata().ok()?.modified().ok()?;
                let since_epoch = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
                i64::try_from(since_epoch.as_millis()).ok()
            }
            #[cfg(feature = "sim")]
            FileKind::Sim(_) => None,
        }
    }

    /// Sets the modification time (ms since the Unix epoch; the simulator keeps no times).
    pub fn set_modified_ms(&self, modified_ms: i64) -> io::Result<()> {
        match &self.kind {
            FileKind::Std(file) => {
                let since_epoch =
                    std::time::Duration::from_millis(u64::try_from(modified_ms).unwrap_or(0));
                file.set_modified(std::time::UNIX_EPOCH + since_epoch)
            }
            #[cfg(feature = "sim")]
            FileKind::Sim(_) => Ok(()),
        }
    }

    pub fn set_len(&self, len: u64) -> io::Result<()> {
        match &self.kind {
            FileKind::Std(file) => file.set_len(len),
            #[cfg(feature = "sim")]
            FileKind::Sim(file) => file.set_len(len),
        }
    }

    /// `fdatasync`: the data and the size are durable when it returns.
    pub fn sync_data(&self) -> io::Result<()> {
        match &self.kind {
            FileKind::Std(file) => file.sync_data(),
            #[cfg(feature = "sim")]
            FileKind::Sim(file) => file.sync(),
        }
    }

    /// `fsync`: data, size and the other metadata are durable when it returns (the file's
    /// name is not: that takes [`Fs::sync_dir`]).
    pub fn sync_all(&self) -> io::Result<()> {
        match &self.kind {
            FileKind::Std(file) => file.sync_all(),
            #[cfg(feature = "sim")]
            FileKind::Sim(file) => file.sync(),
        }
    }

    /// Fills `buffer` from `offset` (positional read; the file position does not move).
    pub fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        match &self.kind {
            FileKind::Std(file) => std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset),
            #[cfg(feature = "sim")]
            FileKind::Sim(file) => file.read_exact_at(buffer, offset),
        }
    }

    /// Writes every slice, retrying short writes (`writev` for the real file system).
    pub fn write_all_vectored(&self, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        let mut writer = self;
        while !slices.is_empty() {
            match writer.write_vectored(slices) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote zero bytes")),
                Ok(written) => IoSlice::advance_slices(&mut slices, written),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Takes an exclusive advisory lock (`flock`) held until the file is closed. `Ok(false)`
    /// when another open file holds it.
    pub fn try_lock(&self) -> io::Result<bool> {
        match &self.kind {
            FileKind::Std(file) => match file.try_lock() {
                Ok(()) => Ok(true),
                Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                Err(std::fs::TryLockError::Error(error)) => Err(error),
            },
            #[cfg(feature = "sim")]
            FileKind::Sim(file) => file.try_lock(),
        }
    }
}

impl Read for &File {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match &self.kind {
            FileKind::Std(file) => (&*file).read(buffer),
            #[cfg(feature = "sim")]
            FileKind::Sim(file) => file.read(buffer),
        }
    }
}

impl Write for &File {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match &self.kind {
            FileKind::Std(file) => (&*file).write(bytes),
            #[cfg(feature = "sim")]
            FileKind::Sim(file) => file.write(bytes),
        }
    }

    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        match &self.kind {
            FileKind::Std(file) => (&*file).write_vectored(slices),
            #[cfg(feature = "sim")]
            FileKind::Sim(file) => {
                let mut bytes = Vec::with_capacity(slices.iter().map(|s| s.len()).sum());
                for slice in slices {
                    bytes.extend_from_slice(slice);
                }
                file.write(&bytes)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for File {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buffer)
    }
}

impl Write for File {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        (&*self).write(bytes)
    }

    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(slices)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
