//! The lock file that makes writers take turns, one write transaction at a time.
//!
//! A writer holds an exclusive lock on `LOCK` (std `File::lock`, `flock(2)` on
//! Unix) from the start of a write transaction to its end, and writes its pid into
//! the file while it holds it (`pid N`). A writer that ends cleanly replaces that
//! line with `released by pid N` before it lets go; one that dies (or whose commit
//! failed past its commit mark) leaves `pid N` there, which tells the next writer to
//! recover what it left. The file is rewritten in place and then cut to length, so
//! it never reads empty between holders, and a waiter can always name the holder it
//! waited for. The operating system drops a lock
//! when its process dies, so a crash never leaves the store locked. Readers take no
//! lock at all.
//!
//! Waiting is done by a helper thread blocked in `File::lock`, so that a waiter is
//! woken the moment the lock is free (polling would lose every race against a
//! process committing in a loop), while the waiting thread itself gives up at its
//! deadline.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use kgstore_core::{Error, Result, observe};

use crate::fault::{FaultPoint, Hooks};
use crate::fsio;

/// The lock file's name inside the store's folder.
pub const LOCK_FILE: &str = "LOCK";

/// How the lock file's line starts while a writer holds it (`pid N`): found when
/// the lock is taken, it means the last holder did not let go cleanly.
const HELD: &str = "pid ";
/// How the line starts after a clean release (`released by pid N`).
const RELEASED: &str = "released by";
/// The holder's name when the file names none.
const UNKNOWN: &str = "another process";

/// A store's lock file, open for the life of a handle.
#[derive(Debug)]
pub(crate) struct LockFile {
    path: PathBuf,
    file: Arc<File>,
    wait: Arc<Wait>,
}

/// The state shared with the helper thread that waits in `File::lock`.
#[derive(Debug, Default)]
struct Wait {
    state: Mutex<WaitState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct WaitState {
    /// A helper thread is blocked in `File::lock`.
    helper: bool,
    /// A thread waits for the helper to get the lock.
    waiting: bool,
    /// The helper got the lock and hands it to the waiting thread.
    handed: bool,
}

impl Wait {
    fn lock(&self) -> MutexGuard<'_, WaitState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The held lock. Dropping it lets go without clearing the pid, as a crash does;
/// [`Held::release`] clears it.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    lock: &'a LockFile,
    /// Whether the file named a writer when the lock was taken: the last holder
    /// died (or failed past a commit mark) and left something to recover.
    pub(crate) unclean: bool,
    /// The file is cleared at release: set when this holder wrote its pid.
    claimed: bool,
}

impl LockFile {
    /// Opens the lock file of the store at `root`, creating it if `create`; `None`
    /// if it does not exist and may not be created (a read-only folder).
    pub(crate) fn open(root: &Path, create: bool) -> Result<Option<Self>> {
        let path = root.join(LOCK_FILE);
        let opened = if create {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        } else {
            match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => Ok(file),
                // A read-only file: a lock needs only a readable descriptor.
                Err(_) => File::open(&path),
            }
        };
        match opened {
            Ok(file) => Ok(Some(Self {
                path,
                file: Arc::new(file),
                wait: Arc::new(Wait::default()),
            })),
            Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// The lock file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn held(&self) -> Result<Held<'_>> {
        let unclean = self.content()?.starts_with(HELD);
        Ok(Held {
            lock: self,
            unclean,
            claimed: false,
        })
    }

    fn content(&self) -> Result<String> {
        let mut text = String::new();
        let mut reader: &File = &self.file;
        std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(0))
            .and_then(|_| reader.read_to_string(&mut text))
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(text)
    }

    /// Takes the lock if it is free; `None` if another holder has it.
    pub(crate) fn try_acquire(&self) -> Result<Option<Held<'_>>> {
        // A helper still blocked from an earlier, abandoned wait will let go of the
        // lock as soon as it gets it: wait for it rather than race it.
        if self.wait.lock().helper {
            return Ok(None);
        }
        match self.file.try_lock() {
            Ok(()) => self.held().map(Some),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(Error::io(&self.path, e)),
        }
    }

    /// Takes the lock, waiting until `deadline` (`None`: not at all) for the holder
    /// to let go; then [`Error::Locked`] naming the holder.
    /// A wait (or a refusal without one) is reported to `observe::lock_wait` with the
    /// holder the file named when it began.
    pub(crate) fn acquire(&self, deadline: Option<Instant>) -> Result<Held<'_>> {
        if let Some(held) = self.try_acquire()? {
            return Ok(held);
        }
        let started = Instant::now();
        let first_seen = self.holder();
        let outcome = self.wait_for(deadline);
        let holder = match &outcome {
            Err(Error::Locked {
                holder: Some(named),
                ..
            }) => named.clone(),
            // Taken: the file still names the last holder, the one waited for (the
            // first reading may have caught a holder between its lock and its pid).
            Ok(_) => Some(self.holder())
                .filter(|h| h != UNKNOWN)
                .unwrap_or(first_seen),
            Err(_) => first_seen,
        };
        let holder = holder.as_str();
        observe::lock_wait(
            &self.path.display(),
            Some(holder),
            started.elapsed(),
            outcome.is_ok(),
        );
        outcome
    }

    /// The slow path of [`LockFile::acquire`]: waits (through the helper thread)
    /// until the lock is handed over or `deadline` passes.
    fn wait_for(&self, deadline: Option<Instant>) -> Result<Held<'_>> {
        let Some(deadline) = deadline else {
            return Err(self.locked());
        };
        let mut state = self.wait.lock();
        if !state.helper {
            let file = Arc::clone(&self.file);
            let wait = Arc::clone(&self.wait);
            state.helper = true;
            std::thread::Builder::new()
                .name("kgstore-jsonfs-lock".into())
                .spawn(move || {
                    let got = file.lock().is_ok();
                    let mut state = wait.lock();
                    state.helper = false;
                    if got && state.waiting {
                        state.handed = true;
                    } else if got {
                        // Nobody waits any more: let go at once.
                        let _ = file.unlock();
                    }
                    wait.changed.notify_all();
                })
                .map_err(|e| Error::io(&self.path, e))?;
        }
        state.waiting = true;
        loop {
            if state.handed {
                state.handed = false;
                state.waiting = false;
                drop(state);
                return match self.held() {
                    Ok(held) => Ok(held),
                    Err(e) => {
                        let _ = self.file.unlock();
                        Err(e)
                    }
                };
            }
            if !state.helper {
                // The helper failed to lock (an I/O error): try once more, directly.
                state.waiting = false;
                drop(state);
                return self.try_acquire()?.ok_or_else(|| self.locked());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.waiting = false;
                drop(state);
                return Err(self.locked());
            }
            state = self
                .wait
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The `Locked` error, naming the holder as well as it can be known.
    pub(crate) fn locked(&self) -> Error {
        Error::Locked {
            resource: self.path.display().to_string(),
            holder: Some(self.holder()),
        }
    }

    /// The holder as well as the file tells it: `pid N` (holding, or letting go
    /// after a clean transaction), or "another process" (a file that names no pid:
    /// a check, or a holder between taking the lock and writing its pid).
    fn holder(&self) -> String {
        let text = self.content().unwrap_or_default();
        let line = text.lines().next().unwrap_or_default().trim();
        let named = line
            .strip_prefix(RELEASED)
            .map_or(line, |pid| pid.trim_start());
        if named.starts_with(HELD) {
            named.to_owned()
        } else {
            UNKNOWN.to_owned()
        }
    }
}

impl Held<'_> {
    /// Writes this process's pid into the lock file: from now on, if this holder
    /// dies or lets go without [`release`](Self::release), the next one recovers.
    /// On failure the lock is let go and nothing was changed.
    pub(crate) fn claim(mut self, hooks: &Hooks) -> Result<Self> {
        let pid = format!("{HELD}{}\n", std::process::id());
        fsio::write_lock(&self.lock.file, &self.lock.path, pid.as_bytes(), hooks)
            .map_err(|e| Error::io(&self.lock.path, e))?;
        self.claimed = true;
        hooks
            .at(FaultPoint::LockTaken)
            .map_err(|e| Error::io(&self.lock.path, e))?;
        Ok(self)
    }

    /// Lets go of the lock: clears the pid if `clean` (the transaction left nothing
    /// to recover), else leaves it for the next holder to find. Clearing is
    /// housekeeping: if it fails, the next holder runs a recovery that finds
    /// nothing to do.
    pub(crate) fn release(mut self, clean: bool, hooks: &Hooks) {
        if clean && self.claimed {
            let line = format!("{RELEASED} {HELD}{}\n", std::process::id());
            let _ = fsio::write_lock(&self.lock.file, &self.lock.path, line.as_bytes(), hooks);
        }
        self.claimed = false;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Release the lock explicitly rather than by closing the file: a process
        // forked by another thread of this one (to run a command) shares this open
        // file description until it calls exec, and `flock` locks belong to the open
        // file description, so closing our descriptor alone would leave the store
        // locked for as long as that child keeps its copy. Unlocking through any
        // descriptor releases it for all of them.
        let _ = self.lock.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    fn soon(ms: u64) -> Option<Instant> {
        Some(Instant::now() + Duration::from_millis(ms))
    }

    /// A child forked by another thread holds a copy of the lock's descriptor until it
    /// calls exec. CI once saw a reopen fail with `Locked` because dropping the store
    /// only closed our descriptor. A duplicate descriptor stands in for the fork here.
    #[test]
    fn regression_drop_releases_the_lock_while_a_forked_child_holds_a_copy_of_its_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::open(dir.path(), true).unwrap().unwrap();
        let held = lock.acquire(None).unwrap();
        let forked_copy = lock.file.try_clone().unwrap();
        drop(held);
        let other = LockFile::open(dir.path(), true).unwrap().unwrap();
        let again = other.acquire(None);
        assert!(again.is_ok(), "the lock outlived its holder: {again:?}");
        drop(forked_copy);
    }

    #[test]
    fn a_waiter_gets_the_lock_when_the_holder_lets_go_and_gives_up_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let first = LockFile::open(dir.path(), true).unwrap().unwrap();
        let second = LockFile::open(dir.path(), true).unwrap().unwrap();
        let held = first
            .acquire(None)
            .unwrap()
            .claim(&Hooks::default())
            .unwrap();
        let err = second.acquire(soon(30)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is locked by pid {}",
                first.path().display(),
                std::process::id()
            )
        );
        // The abandoned helper lets go as soon as it gets the lock: nothing is left held.
        held.release(true, &Hooks::default());
        std::thread::sleep(Duration::from_millis(50));
        let held = first.acquire(soon(5000)).unwrap();
        assert!(!held.unclean);
        // A waiter is handed the lock when it is let go.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| second.acquire(soon(10_000)).map(|h| h.unclean));
            std::thread::sleep(Duration::from_millis(30));
            drop(held);
            assert!(!waiter.join().unwrap().unwrap());
        });
    }

    #[test]
    fn a_holder_that_lets_go_without_release_leaves_its_pid_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::open(dir.path(), true).unwrap().unwrap();
        drop(
            lock.acquire(None)
                .unwrap()
                .claim(&Hooks::default())
                .unwrap(),
        );
        let held = lock.acquire(None).unwrap();
        assert!(held.unclean);
        held.claim(&Hooks::default())
            .unwrap()
            .release(true, &Hooks::default());
        assert!(!lock.acquire(None).unwrap().unclean);
    }

    /// Regression: a waiter that read the file between a holder's clean release and
    /// its letting go once named "another process" (the file was empty then).
    #[test]
    fn the_file_names_the_holder_until_it_has_let_go_and_never_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::open(dir.path(), true).unwrap().unwrap();
        let me = format!("pid {}", std::process::id());
        let held = lock.acquire(None).unwrap();
        assert_eq!(lock.holder(), UNKNOWN, "a new lock file names nobody");
        let held = held.claim(&Hooks::default()).unwrap();
        assert_eq!(lock.holder(), me);
        held.release(true, &Hooks::default());
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text, format!("released by {me}\n"));
        assert_eq!(lock.holder(), me, "the last holder, letting go");
        // The next claim writes over the longer line and cuts it: one line, the new pid.
        let held = lock.acquire(None).unwrap();
        assert!(!held.unclean, "a clean release leaves nothing to recover");
        drop(held.claim(&Hooks::default()).unwrap());
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text, format!("{me}\n"));
        assert!(lock.acquire(None).unwrap().unclean);
    }
}
