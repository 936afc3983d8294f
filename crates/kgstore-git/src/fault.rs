//! Test hooks: abort the process, or fail, at a named step of a commit.
//!
//! Under the cargo feature `fault-injection` (only this crate's tests turn it on),
//! [`GitOptions::with_fault`](crate::GitOptions::with_fault) takes a [`Fault`]; without
//! the feature the hook is an empty inline function and this module has no types.

#[cfg(feature = "fault-injection")]
mod enabled {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A named step of a commit.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FaultPoint {
        /// The commit's objects are written and synced; the branch has not moved.
        ObjectsWritten,
        /// The branch's lock file holds the new commit id, synced, not yet renamed.
        RefLocked,
        /// The branch has moved (renamed); its folder is not yet synced.
        RefMoved,
    }

    /// What happens at the point.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Action {
        /// `std::process::abort()`: as sudden as a kill.
        Abort,
        /// The step fails with an I/O error.
        Fail,
    }

    /// A fault at a point, after skipping `after` passes of it.
    #[derive(Clone, Debug)]
    pub struct Fault {
        point: FaultPoint,
        action: Action,
        after: usize,
        seen: Arc<AtomicUsize>,
    }

    impl Fault {
        /// Acts at the first pass of `point`.
        pub fn new(point: FaultPoint, action: Action) -> Self {
            Self {
                point,
                action,
                after: 0,
                seen: Arc::new(AtomicUsize::new(0)),
            }
        }

        /// Skips the first `n` passes.
        pub fn after(mut self, n: usize) -> Self {
            self.after = n;
            self
        }

        pub(crate) fn hit(&self, point: FaultPoint) -> std::io::Result<()> {
            if point != self.point || self.seen.fetch_add(1, Ordering::SeqCst) != self.after {
                return Ok(());
            }
            match self.action {
                Action::Abort => std::process::abort(),
                Action::Fail => Err(std::io::Error::other(format!(
                    "injected fault at {point:?}"
                ))),
            }
        }
    }
}

#[cfg(feature = "fault-injection")]
pub use enabled::{Action, Fault, FaultPoint};

/// Passes a named step (a no-op without the `fault-injection` feature).
#[cfg(feature = "fault-injection")]
pub(crate) fn point(options: &crate::GitOptions, point: FaultPoint) -> std::io::Result<()> {
    match &options.fault {
        Some(fault) => fault.hit(point),
        None => Ok(()),
    }
}

/// The steps, named for [`point`] (kept without the feature so call sites need no cfg).
#[cfg(not(feature = "fault-injection"))]
#[derive(Clone, Copy, Debug)]
pub(crate) enum FaultPoint {
    ObjectsWritten,
    RefLocked,
    RefMoved,
}

/// Passes a named step (a no-op without the `fault-injection` feature).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn point(_options: &crate::GitOptions, _point: FaultPoint) -> std::io::Result<()> {
    Ok(())
}
