//! File-system steps with the syncs a durable commit needs: temporary file, write,
//! `fsync`, rename, folder `fsync`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kgstore_core::{Error, Result};

/// Temporary files of this process start with this (git's own `tmp_` prefix, which
/// `git prune` also clears), so a crash's leftovers are recognised and removed.
pub(crate) const TEMP_PREFIX: &str = "tmp_kgstore_";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary file name in `dir`.
pub(crate) fn temp_path(dir: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{TEMP_PREFIX}{}_{n}", std::process::id()))
}

/// Syncs a folder so the names created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    let outcome = File::open(dir).and_then(|d| d.sync_all());
    // Elsewhere folders cannot be opened for syncing; renames are journaled by NTFS.
    #[cfg(not(unix))]
    let outcome: io::Result<()> = Ok(());
    outcome.map_err(|e| Error::io(dir, e))
}

/// Creates `dir` if missing (not following a symlink in its place); whether it was made.
pub(crate) fn ensure_dir(dir: &Path) -> Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
            if meta.is_dir() {
                Ok(false)
            } else {
                Err(Error::io(
                    dir,
                    io::Error::other("expected a folder, found a file or a symbolic link"),
                ))
            }
        }
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Writes `bytes` to a new temporary file in `dir`, synced when `sync`; its path.
/// On failure the file is removed.
pub(crate) fn write_temp(dir: &Path, bytes: &[u8], sync: bool) -> Result<PathBuf> {
    let path = temp_path(dir);
    let outcome = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        Ok(())
    })();
    match outcome {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = fs::remove_file(&path);
            Err(Error::io(&path, e))
        }
    }
}

/// Renames `from` to `to` (replacing it).
pub(crate) fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| {
        let _ = fs::remove_file(from);
        Error::io(to, e)
    })
}

/// Reads a whole file; `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}
