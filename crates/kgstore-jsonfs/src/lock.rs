//! The lock file that keeps a second writing process out.
//!
//! A writer holds an exclusive lock on `LOCK` (std `File::lock`, `flock(2)` on
//! Unix) for as long as the store is open and writes its pid into the file; a
//! read-only opener holds a shared lock. The operating system drops a lock when
//! its process dies, so a crash never leaves the store locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kgstore_core::{Error, Result, observe};

use crate::fault::Hooks;
use crate::fsio;

/// The lock file's name inside the store's folder.
pub const LOCK_FILE: &str = "LOCK";

/// How often a waiting opener tries the lock again.
const RETRY: Duration = Duration::from_millis(10);

/// A held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct LockFile {
    file: File,
    exclusive: bool,
    /// Whether the file still named a writer when the lock was taken: the last
    /// writer died without closing the store (a crash, a kill), or left it as if.
    pub(crate) unclean: bool,
    /// Keep the pid at release, so that the next writable open treats the store as
    /// closed uncleanly (after a commit failed past its commit mark).
    keep_pid: AtomicBool,
}

impl LockFile {
    /// Makes the release leave the pid in the file, as a crash does: the next
    /// writable open then syncs every folder, whose names this process can no
    /// longer vouch for.
    pub(crate) fn leave_as_unclean(&self) {
        self.keep_pid.store(true, Ordering::SeqCst);
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if self.exclusive && !self.keep_pid.load(Ordering::SeqCst) {
            // Forget the pid so that no stale holder is named later; best effort.
            let _ = self.file.set_len(0);
        }
        // Release the lock explicitly rather than by closing the file: a process
        // forked by another thread of this one (to run a command) shares this open
        // file description until it calls exec, and `flock` locks belong to the open
        // file description, so closing our descriptor alone would leave the store
        // locked for as long as that child keeps its copy. Unlocking through any
        // descriptor releases it for all of them.
        let _ = self.file.unlock();
    }
}

/// Takes the lock of the store at `root`: exclusive for a writer, shared for a reader,
/// waiting up to `timeout`. A reader finds no lock file in a store that was never opened
/// for writing on this machine (a read-only copy, say): it then holds no lock.
pub(crate) fn acquire(
    root: &Path,
    exclusive: bool,
    timeout: Option<Duration>,
    hooks: &Hooks,
) -> Result<Option<LockFile>> {
    let path = root.join(LOCK_FILE);
    let file = if exclusive {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
    } else {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
        {
            Ok(file) => Ok(file),
            // A read-only folder or file: a shared lock needs only a readable file.
            Err(_) => match File::open(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                other => other,
            },
        }
    };
    let mut file = file.map_err(|e| Error::io(&path, e))?;
    let started = Instant::now();
    let deadline = timeout.map(|t| started + t);
    // Who held the lock when this opener first found it taken (for the wait's report).
    let mut waited_for: Option<String> = None;
    loop {
        let attempt = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match attempt {
            Ok(()) => break,
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            Err(TryLockError::WouldBlock) => {
                let now = Instant::now();
                match deadline {
                    Some(deadline) if now < deadline => {
                        if waited_for.is_none() {
                            waited_for = Some(holder_named(&mut file));
                        }
                        std::thread::sleep(RETRY.min(deadline - now));
                    }
                    _ => {
                        let error = locked(&path, &mut file, exclusive);
                        if let Error::Locked { holder, .. } = &error {
                            let waited = now - started;
                            observe::lock_wait(&path.display(), holder.as_deref(), waited, false);
                        }
                        return Err(error);
                    }
                }
            }
        }
    }
    if let Some(holder) = waited_for {
        observe::lock_wait(&path.display(), Some(&holder), started.elapsed(), true);
    }
    let mut unclean = false;
    if exclusive {
        let mut before = String::new();
        unclean = file.read_to_string(&mut before).is_ok() && before.starts_with("pid ");
        let pid = format!("pid {}\n", std::process::id());
        file.seek(SeekFrom::Start(0))
            .and_then(|_| fsio::write_lock(&mut file, &path, pid.as_bytes(), hooks))
            .map_err(|e| Error::io(&path, e))?;
    }
    Ok(Some(LockFile {
        file,
        exclusive,
        unclean,
        keep_pid: AtomicBool::new(false),
    }))
}

/// The holder a lock file names (`pid N`), read from its start; the file's position is
/// left at its start.
fn holder_named(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut text);
    let _ = file.seek(SeekFrom::Start(0));
    let text = text.trim();
    if text.starts_with("pid ") {
        text.to_owned()
    } else {
        "read-only openers or another process".to_owned()
    }
}

/// The `Locked` error, naming the holder as well as it can be known.
fn locked(path: &Path, file: &mut File, exclusive: bool) -> Error {
    // If a shared lock is free, only read-only openers hold the store.
    let readers_only = exclusive && file.try_lock_shared().is_ok();
    if readers_only {
        let _ = file.unlock();
    }
    let holder = if readers_only {
        Some("one or more read-only openers".to_owned())
    } else {
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let text = text.trim();
        if text.starts_with("pid ") {
            Some(text.to_owned())
        } else {
            Some("another process".to_owned())
        }
    };
    Error::Locked {
        resource: path.display().to_string(),
        holder,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A child forked by another thread holds a copy of the lock's descriptor until it
    /// calls exec. CI once saw a reopen fail with `Locked` because dropping the store
    /// only closed our descriptor. A duplicate descriptor stands in for the fork here.
    #[test]
    fn regression_drop_releases_the_lock_while_a_forked_child_holds_a_copy_of_its_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), true, None, &Hooks::default())
            .unwrap()
            .unwrap();
        let forked_copy = held.file.try_clone().unwrap();
        drop(held);
        let again = acquire(dir.path(), true, Some(Duration::ZERO), &Hooks::default());
        assert!(again.is_ok(), "the lock outlived its holder: {again:?}");
        drop(forked_copy);
    }
}
