//! How a store is opened.

use std::time::Duration;

use crate::fault::Hooks;

pub use kgstore_core::Durability;

/// How long a writer waits for its turn by default: 5 s, as SQLite's busy timeout
/// does in kgstore's SQLite backend.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a commit syncs folders after its renames: with [`Durability::Immediate`]
/// every file and folder a commit touches is synced before it returns; with
/// [`Durability::Relaxed`] file contents are still synced before each rename (no
/// file is ever seen empty or half-written) but folders are not, so a power cut
/// may undo the last commits. See `docs/jsonfs.md`.
pub(crate) fn sync_folders(durability: Durability) -> bool {
    durability == Durability::Immediate
}

/// How [`JsonFsBackend::open`](crate::JsonFsBackend::open) opens a store.
///
/// Every field has a builder method; the defaults are a writable store, created
/// if missing, with [`Durability::Immediate`], whose writers wait up to
/// [`DEFAULT_LOCK_TIMEOUT`] for another writer's transaction to end before failing
/// with [`Error::Locked`](kgstore_core::Error::Locked).
///
/// ```
/// use std::time::Duration;
/// use kgstore_jsonfs::{Durability, JsonFsOptions};
///
/// let options = JsonFsOptions::default()
///     .durability(Durability::Relaxed)
///     .lock_timeout(Some(Duration::from_millis(500)));
/// assert!(!options.read_only);
/// assert!(options.create_if_missing);
/// assert_eq!(JsonFsOptions::default().lock_timeout, Some(Duration::from_secs(5)));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct JsonFsOptions {
    /// How durable a commit is when it returns (URL parameter `durability=relaxed`).
    pub durability: Durability,
    /// Open for reading only: no write is taken and nothing is written to disk, not
    /// even a recovery (URL parameter `read_only=true`). Readers take no lock.
    pub read_only: bool,
    /// Create the folder and an empty store if there is none (ignored when read-only).
    pub create_if_missing: bool,
    /// How long a write transaction waits for its turn (another writer's
    /// transaction, in this process or another, to end): `None` fails at once
    /// (URL parameter `lock_timeout_ms=500`). [`DEFAULT_LOCK_TIMEOUT`] by default.
    pub lock_timeout: Option<Duration>,
    pub(crate) hooks: Hooks,
}

impl Default for JsonFsOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Immediate,
            read_only: false,
            create_if_missing: true,
            lock_timeout: Some(DEFAULT_LOCK_TIMEOUT),
            hooks: Hooks::default(),
        }
    }
}

impl JsonFsOptions {
    /// The defaults: writable, created if missing, immediate durability, writers
    /// waiting up to [`DEFAULT_LOCK_TIMEOUT`] for their turn.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Opens read-only (or not).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Creates a missing store (or refuses to).
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Makes a writer wait up to `timeout` for its turn; `None` fails at once.
    pub fn lock_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Sets a test fault (builds with the `fault-injection` feature only).
    #[cfg(feature = "fault-injection")]
    pub fn with_fault(mut self, fault: crate::fault::Fault) -> Self {
        self.hooks.fault = Some(fault);
        self
    }
}
