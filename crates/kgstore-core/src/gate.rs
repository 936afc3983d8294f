//! One write transaction at a time inside a process, waiting up to a timeout.
//!
//! The memory backend admits its writers through a [`WriteGate`]; a persistent
//! backend may put one in front of its cross-process lock, so that the threads of
//! one process queue here and only one of them waits for the other processes.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Admits one writer at a time.
///
/// ```
/// use std::time::Duration;
/// use kgstore_core::{ErrorKind, gate::WriteGate};
///
/// let gate = WriteGate::default();
/// let first = gate.enter(None, "the store")?;
/// let err = gate.enter(Some(Duration::from_millis(10)), "the store").err().unwrap();
/// assert_eq!(err.kind(), ErrorKind::Locked);
/// assert!(gate.try_enter().is_none());
/// drop(first);
/// gate.enter(Some(Duration::ZERO), "the store")?;
/// # Ok::<(), kgstore_core::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct WriteGate {
    busy: Mutex<bool>,
    freed: Condvar,
}

/// The admitted writer's turn; the next one is admitted when it is dropped.
#[derive(Debug)]
pub struct GateGuard<'a>(&'a WriteGate);

impl WriteGate {
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the turn if it is free.
    pub fn try_enter(&self) -> Option<GateGuard<'_>> {
        let mut busy = self.lock();
        if *busy {
            return None;
        }
        *busy = true;
        Some(GateGuard(self))
    }

    /// Waits for the turn: as long as needed with `None`, else up to `timeout`, after
    /// which the answer is [`Error::Locked`] naming `resource`.
    pub fn enter(&self, timeout: Option<Duration>, resource: &str) -> Result<GateGuard<'_>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut busy = self.lock();
        while *busy {
            busy = match deadline {
                None => self
                    .freed
                    .wait(busy)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Locked {
                            resource: resource.to_owned(),
                            holder: Some("another write transaction of this process".into()),
                        });
                    }
                    self.freed
                        .wait_timeout(busy, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        *busy = true;
        Ok(GateGuard(self))
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        *self.0.lock() = false;
        self.0.freed.notify_one();
    }
}
