//! How a SQLite store is opened: [`SqliteOptions`] and [`Durability`].

use std::time::Duration;

pub use kgstore_core::Durability;

/// The value of `PRAGMA synchronous` a durability sets: 2 (FULL) for
/// [`Durability::Immediate`], the write-ahead log flushed at every commit; 1
/// (NORMAL) for [`Durability::Relaxed`], flushed at checkpoints only.
pub(crate) fn synchronous(durability: Durability) -> i64 {
    match durability {
        Durability::Immediate => 2,
        Durability::Relaxed => 1,
    }
}

/// Options for [`SqliteBackend::open`](crate::SqliteBackend::open): a plain
/// struct with builder methods, every field documented with its default.
///
/// ```
/// use std::time::Duration;
/// use kgstore_sqlite::{Durability, SqliteOptions};
///
/// let options = SqliteOptions::default()
///     .durability(Durability::Relaxed)
///     .lock_timeout(Duration::from_secs(2))
///     .reader_pool_size(8);
/// assert!(options.create_if_missing);
/// assert!(!options.read_only);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Whether commits are flushed to the disk (default [`Durability::Immediate`]).
    pub durability: Durability,
    /// Open without writing anything; every write transaction is refused
    /// (default `false`).
    pub read_only: bool,
    /// Create the file, and its parent folders, if it does not exist (default
    /// `true`; ignored when `read_only`).
    pub create_if_missing: bool,
    /// How long to wait for a lock held by another connection or process before
    /// failing with [`Error::Locked`] (default 5 seconds).
    pub lock_timeout: Duration,
    /// Run a full integrity check (SQLite's and kgstore's own tables) before the
    /// store is used, and refuse a damaged file with [`Error::Corrupt`] (default
    /// `false`). Use it for files a restore, a copy or another user produced.
    pub verify_on_open: bool,
    /// How many idle reader connections are kept for reuse (default 4). More
    /// concurrent readers are served by extra connections opened on demand.
    /// Besides these, up to as many threads each keep one reader connection of
    /// their own with its prepared statements (closed with the backend on the
    /// thread that drops it, or when the thread ends or next reads another store):
    /// so up to twice this many reader connections may be open. 0 keeps neither.
    pub reader_pool_size: usize,
    /// How much of the file each connection reads through a memory map instead of
    /// `read` calls (`PRAGMA mmap_size`; default 1 GiB, 0 turns it off). The map
    /// shares the operating system's page cache between connections and
    /// processes; it costs address space, not memory.
    pub mmap_size: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Immediate,
            read_only: false,
            create_if_missing: true,
            lock_timeout: Duration::from_secs(5),
            verify_on_open: false,
            reader_pool_size: 4,
            mmap_size: DEFAULT_MMAP_SIZE,
        }
    }
}

impl SqliteOptions {
    /// The defaults: see each field.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`SqliteOptions::durability`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets [`SqliteOptions::read_only`].
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets [`SqliteOptions::create_if_missing`].
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Sets [`SqliteOptions::lock_timeout`].
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Sets [`SqliteOptions::verify_on_open`].
    pub fn verify_on_open(mut self, verify: bool) -> Self {
        self.verify_on_open = verify;
        self
    }

    /// Sets [`SqliteOptions::reader_pool_size`].
    pub fn reader_pool_size(mut self, size: usize) -> Self {
        self.reader_pool_size = size;
        self
    }

    /// Sets [`SqliteOptions::mmap_size`].
    pub fn mmap_size(mut self, bytes: u64) -> Self {
        self.mmap_size = bytes;
        self
    }
}

/// The default [`SqliteOptions::mmap_size`]: 1 GiB.
pub const DEFAULT_MMAP_SIZE: u64 = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_names_round_trip() {
        for d in [Durability::Immediate, Durability::Relaxed] {
            assert_eq!(d.as_str().parse::<Durability>().unwrap(), d);
        }
        let err = "fast".parse::<Durability>().unwrap_err();
        assert_eq!(err.kind(), kgstore_core::ErrorKind::InvalidInput);
        assert_eq!(Durability::default(), Durability::Immediate);
    }
}
