//! The thin file-system layer: every mutating file-system call of this crate goes
//! through one of these functions, which names the step with an [`FsOp`] for the
//! fault hooks (tests only) before doing it.
//!
//! Without the `fault-injection` feature the hook is an empty inline function and
//! each of these is the plain `std` call. With it, a test can record the trace of
//! steps and make any one of them (or every one from then on) fail, as a full disk
//! or a failing device would; an injected failure does not perform the step,
//! except that a failed write leaves half of its bytes behind, as a real short
//! write on a full disk does, and a late one (`Fault::late`) performs the whole
//! step and then reports the error.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::fault::{FsOp, Hooks};

/// Announces the step `op` on `path` to the hooks, does it, and passes its outcome
/// back through them.
fn step<T>(
    hooks: &Hooks,
    op: FsOp,
    path: &Path,
    f: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    hooks.step(op, path)?;
    hooks.done(op, path, f())
}

/// Creates a new file (failing if it exists) for writing.
pub fn create_new(path: &Path, hooks: &Hooks) -> io::Result<File> {
    step(hooks, FsOp::CreateFile, path, || {
        OpenOptions::new().write(true).create_new(true).open(path)
    })
}

/// Writes all of `bytes` to `file` (whose path is `path`).
pub fn write_all(file: &mut File, path: &Path, bytes: &[u8], hooks: &Hooks) -> io::Result<()> {
    if let Err(e) = hooks.step(FsOp::WriteFile, path) {
        // A short write: what a full disk leaves before it refuses the rest.
        let _ = file.write_all(&bytes[..bytes.len() / 2]);
        return Err(e);
    }
    let outcome = file.write_all(bytes);
    hooks.done(FsOp::WriteFile, path, outcome)
}

/// Syncs a file's content and metadata to the disk.
pub fn sync_file(file: &File, path: &Path, hooks: &Hooks) -> io::Result<()> {
    step(hooks, FsOp::SyncFile, path, || file.sync_all())
}

/// Renames `from` over `to`.
pub fn rename(from: &Path, to: &Path, hooks: &Hooks) -> io::Result<()> {
    step(hooks, FsOp::Rename, to, || fs::rename(from, to))
}

/// Removes a file.
pub fn remove_file(path: &Path, hooks: &Hooks) -> io::Result<()> {
    step(hooks, FsOp::RemoveFile, path, || fs::remove_file(path))
}

/// Removes a folder and everything in it (a failed backup's partial copy).
pub fn remove_dir_all(path: &Path, hooks: &Hooks) -> io::Result<()> {
    step(hooks, FsOp::RemoveFile, path, || fs::remove_dir_all(path))
}

/// Removes an empty folder (a documents' folder its last document left).
pub fn remove_dir(path: &Path, hooks: &Hooks) -> io::Result<()> {
    step(hooks, FsOp::RemoveFile, path, || fs::remove_dir(path))
}

/// Syncs a file written earlier (a staged document), by path.
pub fn sync_path(path: &Path, hooks: &Hooks) -> io::Result<()> {
    step(hooks, FsOp::SyncFile, path, || File::open(path)?.sync_all())
}

/// Creates a folder.
pub fn create_dir(path: &Path, hooks: &Hooks) -> io::Result<()> {
    step(hooks, FsOp::CreateDir, path, || fs::create_dir(path))
}

/// Creates a folder and its missing parents.
pub fn create_dir_all(path: &Path, hooks: &Hooks) -> io::Result<()> {
    step(hooks, FsOp::CreateDir, path, || fs::create_dir_all(path))
}

/// Syncs a folder, so that the names created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path, hooks: &Hooks) -> io::Result<()> {
    hooks.step(FsOp::SyncDir, dir)?;
    #[cfg(unix)]
    let outcome = File::open(dir).and_then(|d| d.sync_all());
    // Elsewhere folders cannot be opened for syncing; renames are journaled by NTFS.
    #[cfg(not(unix))]
    let outcome = Ok(());
    hooks.done(FsOp::SyncDir, dir, outcome)
}

/// Replaces the lock file's content with `bytes` (empty: clears it).
pub fn write_lock(file: &File, path: &Path, bytes: &[u8], hooks: &Hooks) -> io::Result<()> {
    step(hooks, FsOp::WriteLock, path, || {
        // Written over the old line, then cut to length: the file never reads empty.
        write_at(file, bytes)?;
        file.set_len(bytes.len() as u64)
    })
}

/// Rewrites the generation file's line in place (creating the file if needed).
pub fn publish(path: &Path, line: &[u8], hooks: &Hooks) -> io::Result<()> {
    step(hooks, FsOp::Publish, path, || {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        write_at(&file, line)
    })
}

/// Writes all of `bytes` at the start of `file`, without moving a shared cursor.
fn write_at(file: &File, bytes: &[u8]) -> io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::write_all_at(file, bytes, 0);
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < bytes.len() {
            done += std::os::windows::fs::FileExt::seek_write(file, &bytes[done..], done as u64)?;
        }
        Ok(())
    }
}
