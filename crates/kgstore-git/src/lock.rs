//! Writers take turns: one write transaction at a time per repository, across threads
//! (a gate) and processes (an exclusive `flock` on `<repo>/kgstore.lock` held for the
//! transaction), each waiting up to the lock timeout, as SQLite's busy timeout does.
//!
//! The holder writes its pid into the file and clears it when done, so a writer that
//! finds a pid there knows the previous one died inside a transaction: a lock file it
//! left on the branch (`refs/heads/<branch>.lock`) is then stale and may be removed.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kgstore_core::memory::{Gate, GateGuard};
use kgstore_core::{Error, Result, observe};

/// The lock file's name inside the repository.
pub(crate) const LOCK_FILE: &str = "kgstore.lock";

/// How often a waiting writer tries the file lock again.
const RETRY: Duration = Duration::from_millis(2);

/// The writer lock of one open repository.
pub(crate) struct WriterLock {
    path: PathBuf,
    file: File,
    gate: Gate,
}

/// A held writer lock; released when dropped.
pub(crate) struct Held<'a> {
    lock: &'a WriterLock,
    _gate: GateGuard<'a>,
    /// The previous holder died inside a transaction (its pid was still there).
    pub(crate) unclean: bool,
}

impl WriterLock {
    /// Opens (creating) the lock file of the repository at `repo`.
    pub(crate) fn open(repo: &Path) -> Result<Self> {
        let path = repo.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            path,
            file,
            gate: Gate::default(),
        })
    }

    /// Waits up to `timeout` for the lock.
    pub(crate) fn acquire(&self, timeout: Duration) -> Result<Held<'_>> {
        let start = Instant::now();
        let resource = self.path.display().to_string();
        let gate = self.gate.enter(Some(timeout), &resource)?;
        let deadline = start.checked_add(timeout);
        // Who held the file lock when this writer first found it taken.
        let mut waited_for: Option<(Instant, String)> = None;
        loop {
            match self.file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::Error(e)) => return Err(Error::io(&self.path, e)),
                Err(TryLockError::WouldBlock) => {
                    let now = Instant::now();
                    let (since, holder) = waited_for.get_or_insert_with(|| (now, self.holder()));
                    match deadline {
                        Some(deadline) if now >= deadline => {
                            observe::lock_wait(&resource, Some(holder), now - *since, false);
                            return Err(Error::Locked {
                                resource,
                                holder: Some(self.holder()),
                            });
                        }
                        Some(deadline) => std::thread::sleep(RETRY.min(deadline - now)),
                        None => std::thread::sleep(RETRY),
                    }
                }
            }
        }
        if let Some((since, holder)) = &waited_for {
            observe::lock_wait(&resource, Some(holder), since.elapsed(), true);
        }
        let mut file = &self.file;
        let mut before = String::new();
        let unclean = file.seek(SeekFrom::Start(0)).is_ok()
            && file.read_to_string(&mut before).is_ok()
            && before.starts_with("pid ");
        let pid = format!("pid {}\n", std::process::id());
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()));
        if let Err(e) = written {
            let _ = self.file.unlock();
            return Err(Error::io(&self.path, e));
        }
        Ok(Held {
            lock: self,
            _gate: gate,
            unclean,
        })
    }

    /// Who holds the lock, as well as can be told.
    fn holder(&self) -> String {
        let mut text = String::new();
        let mut file = &self.file;
        let _ = file.seek(SeekFrom::Start(0));
        let _ = file.read_to_string(&mut text);
        let text = text.trim();
        if text.starts_with("pid ") {
            format!("a write transaction of {text}")
        } else {
            "another write transaction".to_owned()
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Forget the pid (best effort), then release the lock explicitly: a child forked
        // by another thread may hold a copy of the descriptor until it calls exec.
        let _ = self.lock.file.set_len(0);
        let _ = self.lock.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_writer_waits_then_times_out_and_a_dead_holder_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let a = WriterLock::open(dir.path()).unwrap();
        let b = WriterLock::open(dir.path()).unwrap();
        let held = a.acquire(Duration::ZERO).unwrap();
        assert!(!held.unclean);
        let err = b.acquire(Duration::from_millis(30)).err().unwrap();
        assert_eq!(err.kind(), kgstore_core::ErrorKind::Locked);
        assert!(err.to_string().contains("pid"), "{err}");
        // A holder that dies leaves its pid: its descriptor closes without a release.
        std::mem::forget(held);
        drop(a);
        let again = b.acquire(Duration::ZERO).unwrap();
        assert!(again.unclean);
        drop(again);
        assert!(!b.acquire(Duration::ZERO).unwrap().unclean);
    }
}
