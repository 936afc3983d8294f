//! Named points between the steps of a write, where tests make the process
//! abort or an I/O step fail.
//!
//! The hooks act only in builds with the cargo feature `fault-injection`, which
//! only this crate's tests enable; otherwise [`JsonFsOptions::with_fault`] does not
//! exist and every hook is an empty inline function.
//!
//! [`JsonFsOptions::with_fault`]: crate::JsonFsOptions

use std::fmt;
use std::str::FromStr;

/// A point between two steps of a commit or of recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// An entity's temporary file is written, not yet synced.
    TempWritten,
    /// An entity's temporary file is synced, not yet renamed.
    TempSynced,
    /// The journal's temporary file is written, not yet synced.
    JournalWritten,
    /// The journal's temporary file is synced, not yet renamed to its committed name.
    JournalSynced,
    /// The journal is renamed to its committed name; its folder is not yet synced.
    JournalRenamed,
    /// The journal is durable: the transaction is committed, nothing applied yet.
    JournalCommitted,
    /// One entity file of the transaction is renamed (or removed) into place.
    Renamed,
    /// Every file is in place and their folders are synced; the journal is still there.
    FoldersSynced,
    /// The journal is removed, its folder not yet synced.
    JournalRemoved,
    /// Recovery has rolled one file of a committed journal forward.
    RecoveryApplied,
    /// Recovery has removed one stray temporary file.
    CleanupRemoved,
}

impl FaultPoint {
    /// Every point, in the order a commit passes them (recovery's last).
    pub const ALL: [FaultPoint; 11] = [
        Self::TempWritten,
        Self::TempSynced,
        Self::JournalWritten,
        Self::JournalSynced,
        Self::JournalRenamed,
        Self::JournalCommitted,
        Self::Renamed,
        Self::FoldersSynced,
        Self::JournalRemoved,
        Self::RecoveryApplied,
        Self::CleanupRemoved,
    ];

    /// The point's name, as parsed by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TempWritten => "temp-written",
            Self::TempSynced => "temp-synced",
            Self::JournalWritten => "journal-written",
            Self::JournalSynced => "journal-synced",
            Self::JournalRenamed => "journal-renamed",
            Self::JournalCommitted => "journal-committed",
            Self::Renamed => "renamed",
            Self::FoldersSynced => "folders-synced",
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

/// What happens at the point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// `std::process::abort()`: the process dies there, as under SIGKILL.
    Abort,
    /// The step fails with an I/O error of this kind (`StorageFull` for a full disk).
    Fail(std::io::ErrorKind),
}

/// A fault: at the `skip + 1`-th time the process passes `point`, do `action`.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Debug)]
pub struct Fault {
    point: FaultPoint,
    action: FaultAction,
    remaining: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

#[cfg(feature = "fault-injection")]
impl Fault {
    /// A fault acting the first time `point` is passed.
    pub fn new(point: FaultPoint, action: FaultAction) -> Self {
        Self {
            point,
            action,
            remaining: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0)),
        }
    }

    /// Lets the point pass `skip` times before acting.
    pub fn after(self, skip: u32) -> Self {
        self.remaining
            .store(i64::from(skip), std::sync::atomic::Ordering::SeqCst);
        self
    }

    /// Runs the fault if this is its point and its turn.
    pub(crate) fn hit(&self, point: FaultPoint) -> std::io::Result<()> {
        if point != self.point {
            return Ok(());
        }
        let left = self
            .remaining
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if left != 0 {
            return Ok(());
        }
        match self.action {
            FaultAction::Abort => std::process::abort(),
            FaultAction::Fail(kind) => Err(std::io::Error::new(
                kind,
                format!("injected fault at {point}"),
            )),
        }
    }
}

/// The hook the write path calls between its steps.
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
}
