//! Fault injection: named points between the steps of a write, and every
//! file-system step itself, where tests make the process abort or a step fail.
//!
//! Every mutating file-system call of this crate (creating, writing and syncing a
//! file, renaming, removing, creating and syncing a folder, writing the lock file)
//! goes through one thin layer that names the step with an `FsOp`. A `Fault`
//! acts either at a [`FaultPoint`] (between steps) or at the N-th step of one kind
//! or of any kind, once or from then on (`Fault::sticky`), and records the trace
//! of steps so that a test can enumerate every step of a commit.
//!
//! The hooks act only in builds with the cargo feature `fault-injection`, which
//! only this crate's tests enable; otherwise [`JsonFsOptions::with_fault`] does not
//! exist, `Fault` does not either, and every hook is an empty inline function.
//!
//! [`JsonFsOptions::with_fault`]: crate::JsonFsOptions

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A point between two steps of a commit or of recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// A writer holds the store's lock and has written its pid into it; nothing of
    /// its transaction is written yet.
    LockTaken,
    /// An entity's temporary file is written, not yet synced.
    TempWritten,
    /// An entity's temporary file is synced, not yet renamed.
    TempSynced,
    /// The journal's temporary file is written, not yet synced.
    JournalWritten,
    /// The journal's temporary file is synced, not yet renamed to its committed name.
    JournalSynced,
    /// A one-file commit's record is written (`journal/<g>.pending`); its file is
    /// not renamed into place yet.
    PendingWritten,
    /// The journal is renamed to its committed name; its folder is not yet synced.
    JournalRenamed,
    /// The journal is durable: the transaction is committed, nothing applied yet.
    JournalCommitted,
    /// One entity file of the transaction is renamed (or removed) into place.
    Renamed,
    /// Every file is in place and their folders are synced; the journal (or a
    /// one-file commit's record) is still in `journal/`.
    FoldersSynced,
    /// A one-file commit's record is moved into the log; its generation is not
    /// published yet.
    Recorded,
    /// The generation file names the transaction: other processes see it.
    Published,
    /// The journal is moved into the log, `journal/` not yet synced.
    JournalRemoved,
    /// Recovery has rolled one file of a committed journal forward.
    RecoveryApplied,
    /// Recovery has removed one stray temporary file.
    CleanupRemoved,
}

impl FaultPoint {
    /// Every point, in the order a commit passes them (recovery's last).
    pub const ALL: [FaultPoint; 15] = [
        Self::LockTaken,
        Self::TempWritten,
        Self::TempSynced,
        Self::JournalWritten,
        Self::JournalSynced,
        Self::PendingWritten,
        Self::JournalRenamed,
        Self::JournalCommitted,
        Self::Renamed,
        Self::FoldersSynced,
        Self::Recorded,
        Self::Published,
        Self::JournalRemoved,
        Self::RecoveryApplied,
        Self::CleanupRemoved,
    ];

    /// The point's name, as parsed by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LockTaken => "lock-taken",
            Self::TempWritten => "temp-written",
            Self::TempSynced => "temp-synced",
            Self::JournalWritten => "journal-written",
            Self::JournalSynced => "journal-synced",
            Self::PendingWritten => "pending-written",
            Self::JournalRenamed => "journal-renamed",
            Self::JournalCommitted => "journal-committed",
            Self::Renamed => "renamed",
            Self::FoldersSynced => "folders-synced",
            Self::Recorded => "recorded",
            Self::Published => "published",
            Self::JournalRemoved => "journal-removed",
            Self::RecoveryApplied => "recovery-applied",
            Self::CleanupRemoved => "cleanup-removed",
        }
    }
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultPoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown fault point '{s}'"))
    }
}

#[cfg(feature = "fault-injection")]
pub use ops::FsOp;
#[cfg(not(feature = "fault-injection"))]
pub(crate) use ops::FsOp;

/// The steps' names: public in test builds only, so that without the feature the
/// crate's API is what it was before the layer existed.
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
mod ops {
    use std::fmt;

    /// One kind of mutating file-system step: what the thin layer names each call.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum FsOp {
        /// Create a new file (a temporary file, `create_new`).
        CreateFile,
        /// Write a file's content (a temporary file's, or a journal's).
        WriteFile,
        /// `fsync` a file.
        SyncFile,
        /// Rename a file over another (a temporary file into place, a journal to its
        /// committed name or into the log, a backup folder into place).
        Rename,
        /// Remove a file (a deleted entity, a discarded journal, a temporary file, an
        /// old record of the log).
        RemoveFile,
        /// Create a folder (a store, its data folders, a new shard folder).
        CreateDir,
        /// `fsync` a folder, so that names created, renamed or removed in it are durable.
        SyncDir,
        /// Write the writer's pid into the lock file when it takes the lock, or
        /// clear it when it lets go after a transaction that left nothing behind.
        WriteLock,
        /// Rewrite the generation file: publish a commit to the other processes.
        Publish,
        /// `syncfs` the file system of the store: make every staged file of a large
        /// commit durable at once (Linux).
        SyncFs,
    }

    impl FsOp {
        /// Every kind of step.
        pub const ALL: [FsOp; 10] = [
            Self::CreateFile,
            Self::WriteFile,
            Self::SyncFile,
            Self::Rename,
            Self::RemoveFile,
            Self::CreateDir,
            Self::SyncDir,
            Self::WriteLock,
            Self::Publish,
            Self::SyncFs,
        ];

        /// The step's name.
        pub fn as_str(self) -> &'static str {
            match self {
                Self::CreateFile => "create-file",
                Self::WriteFile => "write-file",
                Self::SyncFile => "sync-file",
                Self::Rename => "rename",
                Self::RemoveFile => "remove-file",
                Self::CreateDir => "create-dir",
                Self::SyncDir => "sync-dir",
                Self::WriteLock => "write-lock",
                Self::Publish => "publish",
                Self::SyncFs => "sync-fs",
            }
        }

        /// Whether the step is an `fsync`.
        pub fn is_sync(self) -> bool {
            matches!(self, Self::SyncFile | Self::SyncDir | Self::SyncFs)
        }
    }

    impl fmt::Display for FsOp {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.as_str())
        }
    }
}

/// One file-system step as recorded in a `Fault`'s trace.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What kind of step.
    pub op: FsOp,
    /// The file or folder it acts on (for a rename, the destination).
    pub path: std::path::PathBuf,
    /// Whether the fault made this step fail (or abort).
    pub injected: bool,
}

#[cfg(feature = "fault-injection")]
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.path.display())?;
        if self.injected {
            f.write_str(" (injected)")?;
        }
        Ok(())
    }
}

/// The `errno` of an I/O error (`EIO` on Linux and macOS).
#[cfg(feature = "fault-injection")]
pub const EIO: i32 = 5;
/// The `errno` of "no space left on device" (`ENOSPC` on Linux and macOS).
#[cfg(feature = "fault-injection")]
pub const ENOSPC: i32 = 28;

/// What happens at the point or step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// `std::process::abort()`: the process dies there, as under SIGKILL.
    Abort,
    /// The step fails with an I/O error of this kind (`StorageFull` for a full disk);
    /// its message says it was injected.
    Fail(std::io::ErrorKind),
    /// The step fails with the operating system's error of this number, exactly as
    /// the system reports it (`EIO`, `ENOSPC`; test builds only).
    #[cfg(feature = "fault-injection")]
    Os(i32),
}

#[cfg(feature = "fault-injection")]
pub use armed::Fault;

#[cfg(feature = "fault-injection")]
mod armed {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};

    use super::{FaultAction, FaultPoint, FsOp, Step};

    /// Where a fault acts.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Target {
        /// At a named point between steps.
        Point(FaultPoint),
        /// At a file-system step of this kind, or of any kind.
        Op(Option<FsOp>),
        /// Nowhere: the fault only records the trace.
        Nowhere,
    }

    #[derive(Debug, Default)]
    struct Shared {
        remaining: AtomicI64,
        cleared: AtomicBool,
        /// A late failure decided at a step, to be reported once it is done.
        pending: AtomicBool,
        fired: AtomicBool,
        trace: Mutex<Vec<Step>>,
    }

    /// A fault: at the `skip + 1`-th time the process passes its point or step, do
    /// its action (and, if sticky, at every matching one after it, until cleared).
    ///
    /// Clones share their state: a test keeps one to read the trace and to
    /// [`clear`](Fault::clear) the fault while the store holds the other.
    #[derive(Clone, Debug)]
    pub struct Fault {
        target: Target,
        action: FaultAction,
        sticky: bool,
        late: bool,
        shared: Arc<Shared>,
    }

    impl Fault {
        fn with_target(target: Target, action: FaultAction) -> Self {
            Self {
                target,
                action,
                sticky: false,
                late: false,
                shared: Arc::new(Shared::default()),
            }
        }

        /// A fault acting the first time `point` is passed.
        pub fn new(point: FaultPoint, action: FaultAction) -> Self {
            Self::with_target(Target::Point(point), action)
        }

        /// A fault acting at the first file-system step of kind `op`.
        pub fn on_op(op: FsOp, action: FaultAction) -> Self {
            Self::with_target(Target::Op(Some(op)), action)
        }

        /// A fault acting at the first file-system step of any kind (with
        /// [`after`](Self::after): at the N-th step of a trace).
        pub fn on_step(action: FaultAction) -> Self {
            Self::with_target(Target::Op(None), action)
        }

        /// A fault that never acts and only records the trace of steps.
        pub fn trace_only() -> Self {
            Self::with_target(Target::Nowhere, FaultAction::Abort)
        }

        /// Lets the point or step pass `skip` times before acting.
        pub fn after(self, skip: u32) -> Self {
            self.shared
                .remaining
                .store(i64::from(skip), Ordering::SeqCst);
            self
        }

        /// Acts at every matching point or step from the first one on, not once
        /// (a disk that stays full, a device that stays broken), until cleared.
        pub fn sticky(mut self) -> Self {
            self.sticky = true;
            self
        }

        /// Acts after the step is done instead of before (file-system steps only):
        /// the step takes effect and still reports the error, as a rename or an
        /// `fsync` whose outcome the system could not confirm does.
        pub fn late(mut self) -> Self {
            self.late = true;
            self
        }

        /// Stops acting from now on (the disk has space again); the trace goes on.
        pub fn clear(&self) {
            self.shared.cleared.store(true, Ordering::SeqCst);
        }

        /// Whether the fault has acted at least once.
        pub fn fired(&self) -> bool {
            self.shared.fired.load(Ordering::SeqCst)
        }

        /// Every file-system step passed since the fault was made, in order.
        pub fn trace(&self) -> Vec<Step> {
            self.shared
                .trace
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }

        /// Whether this is an armed fault that counts its target's passes.
        fn matches(&self, point: Option<FaultPoint>, op: Option<FsOp>) -> bool {
            match (self.target, point, op) {
                (Target::Point(p), Some(q), _) => p == q,
                (Target::Op(None), _, Some(_)) => true,
                (Target::Op(Some(o)), _, Some(p)) => o == p,
                _ => false,
            }
        }

        /// Whether the fault acts now at a matching pass.
        fn turn(&self) -> bool {
            if self.shared.cleared.load(Ordering::SeqCst) {
                return false;
            }
            if self.sticky && self.fired() {
                return true;
            }
            let left = self.shared.remaining.fetch_sub(1, Ordering::SeqCst);
            left == 0
        }

        fn act(&self, what: &dyn std::fmt::Display) -> std::io::Result<()> {
            self.shared.fired.store(true, Ordering::SeqCst);
            match self.action {
                FaultAction::Abort => std::process::abort(),
                FaultAction::Fail(kind) => Err(std::io::Error::new(
                    kind,
                    format!("injected fault at {what}"),
                )),
                FaultAction::Os(code) => Err(std::io::Error::from_raw_os_error(code)),
            }
        }

        /// Runs the fault if this is its point and its turn.
        pub(crate) fn hit(&self, point: FaultPoint) -> std::io::Result<()> {
            if self.matches(Some(point), None) && self.turn() {
                return self.act(&point);
            }
            Ok(())
        }

        /// Records a file-system step, and fails it if it is the fault's turn.
        pub(crate) fn step(&self, op: FsOp, path: &Path) -> std::io::Result<()> {
            let inject = self.matches(None, Some(op)) && self.turn();
            self.shared
                .trace
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Step {
                    op,
                    path: path.to_path_buf(),
                    injected: inject,
                });
            if inject {
                if self.late {
                    self.shared.pending.store(true, Ordering::SeqCst);
                    return Ok(());
                }
                return self.act(&format_args!("{op} {}", path.display()));
            }
            Ok(())
        }

        /// After a file-system step, with its outcome: a late failure decided at it
        /// replaces a success (and is dropped if the step failed by itself).
        pub(crate) fn done<T>(
            &self,
            op: FsOp,
            path: &Path,
            outcome: std::io::Result<T>,
        ) -> std::io::Result<T> {
            let late = self.shared.pending.swap(false, Ordering::SeqCst);
            match outcome {
                Ok(_) if late => {
                    self.act(&format_args!("{op} {} (after it was done)", path.display()))?;
                    outcome
                }
                outcome => outcome,
            }
        }
    }
}

/// The hook the write path calls between its steps and at each file-system step.
#[derive(Clone, Debug, Default)]
pub(crate) struct Hooks {
    #[cfg(feature = "fault-injection")]
    pub(crate) fault: Option<Fault>,
}

impl Hooks {
    /// Passes `point`: acts if a fault is set there (test builds only).
    #[inline]
    pub(crate) fn at(&self, point: FaultPoint) -> std::io::Result<()> {
        #[cfg(feature = "fault-injection")]
        if let Some(fault) = &self.fault {
            return fault.hit(point);
        }
        let _ = point;
        Ok(())
    }

    /// Announces the file-system step `op` on `path`: records it and fails it if a
    /// fault says so (test builds only).
    #[inline]
    pub(crate) fn step(&self, op: FsOp, path: &Path) -> std::io::Result<()> {
        #[cfg(feature = "fault-injection")]
        if let Some(fault) = &self.fault {
            return fault.step(op, path);
        }
        let _ = (op, path);
        Ok(())
    }

    /// Passes on the outcome of the step `op` on `path`, failing it after the fact
    /// if a late fault says so (test builds only).
    #[inline]
    pub(crate) fn done<T>(
        &self,
        op: FsOp,
        path: &Path,
        outcome: std::io::Result<T>,
    ) -> std::io::Result<T> {
        #[cfg(feature = "fault-injection")]
        if let Some(fault) = &self.fault {
            return fault.done(op, path, outcome);
        }
        let _ = (op, path);
        outcome
    }

    /// Whether file work must run on one thread, in a reproducible order: when a
    /// fault is set, so that the N-th step of a trace is the same step every run.
    #[inline]
    pub(crate) fn serial(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        if self.fault.is_some() {
            return true;
        }
        false
    }
}
