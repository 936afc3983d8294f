//! The SQLite backend's own figures for `Store::metrics`: page-cache hits, misses
//! and writes of its connections, waits for SQLite's lock, and the sizes of the
//! database file and its write-ahead log.
//!
//! The page-cache counters come from `sqlite3_db_status`, which rusqlite does not
//! wrap: the one `unsafe` call of the crate, below. A connection's counters are
//! collected (and reset) when figures are read, for the connections idle at that
//! moment, and when the pool closes one; so counts of a connection busy in a
//! transaction appear at the next reading.

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use kgstore_core::BackendFigure;
use rusqlite::Connection;

thread_local! {
    /// Calls of the busy handler on this thread (SQLite calls it on the thread that
    /// waits), so that a caller can tell whether a statement waited for the lock.
    static BUSY_CALLS: Cell<u64> = const { Cell::new(0) };
}

/// Notes one call of the busy handler on this thread.
pub(crate) fn note_busy() {
    BUSY_CALLS.with(|c| c.set(c.get().wrapping_add(1)));
}

/// How many times the busy handler ran on this thread so far.
pub(crate) fn busy_calls() -> u64 {
    BUSY_CALLS.with(Cell::get)
}

/// Counters the backend keeps.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    cache_writes: AtomicU64,
    /// Write transactions that waited for another connection's (or process's) lock.
    pub(crate) lock_waits: AtomicU64,
    /// Writer connections replaced by a fresh one after a write that grew FTS5's
    /// in-memory table of pending terms (see `SqliteBackend::release_writer`).
    pub(crate) writer_renewals: AtomicU64,
    /// Replacements that failed to open the fresh connection (the old one was kept).
    pub(crate) writer_renewal_failures: AtomicU64,
    /// Searches that first indexed a long list of waiting nodes in a write
    /// transaction of their own (see `SqliteBackend::catch_up_search`).
    pub(crate) search_catch_ups: AtomicU64,
    /// Reader connections opened (none was idle in the pool).
    pub(crate) reader_opens: AtomicU64,
}

impl Counters {
    /// Adds a connection's page-cache counters since the last collection, and resets them.
    pub(crate) fn collect(&self, conn: &Connection) {
        for (op, counter) in [
            (rusqlite::ffi::SQLITE_DBSTATUS_CACHE_HIT, &self.cache_hits),
            (
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_MISS,
                &self.cache_misses,
            ),
            (
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_WRITE,
                &self.cache_writes,
            ),
        ] {
            counter.fetch_add(db_status(conn, op), Ordering::Relaxed);
        }
    }

    /// The figures, with the file sizes read now.
    pub(crate) fn figures(&self, path: &Path) -> Vec<BackendFigure> {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        vec![
            BackendFigure::counter(
                "page_cache_hits",
                self.cache_hits.load(Ordering::Relaxed),
                "pages found in the connections' page caches",
            ),
            BackendFigure::counter(
                "page_cache_misses",
                self.cache_misses.load(Ordering::Relaxed),
                "pages read from the file (or the OS cache) into a page cache",
            ),
            BackendFigure::counter(
                "page_cache_writes",
                self.cache_writes.load(Ordering::Relaxed),
                "pages written from the writer's cache to the write-ahead log",
            ),
            BackendFigure::counter(
                "lock_waits",
                self.lock_waits.load(Ordering::Relaxed),
                "write transactions that waited for SQLite's lock (another connection or process)",
            ),
            BackendFigure::counter(
                "writer_renewals",
                self.writer_renewals.load(Ordering::Relaxed),
                "writer connections replaced after a large write, to free the search \
                 index's grown in-memory table of pending terms",
            ),
            BackendFigure::counter(
                "writer_renewal_failures",
                self.writer_renewal_failures.load(Ordering::Relaxed),
                "replacements of the writer connection that could not open a new one \
                 (the old one was kept, and replaced at a later write)",
            ),
            BackendFigure::counter(
                "search_catch_ups",
                self.search_catch_ups.load(Ordering::Relaxed),
                "searches that first indexed a long list of nodes written without being \
                 indexed (a load), in a write transaction of their own",
            ),
            BackendFigure::counter(
                "reader_opens",
                self.reader_opens.load(Ordering::Relaxed),
                "reader connections opened because none was idle in the pool \
                 (it keeps up to `reader_pool_size`)",
            ),
            BackendFigure::gauge("db_bytes", size(path), "size of the database file"),
            BackendFigure::gauge(
                "wal_bytes",
                size(Path::new(&wal)),
                "size of the write-ahead log (cut back at checkpoints past 64 MiB)",
            ),
        ]
    }
}

/// One of `sqlite3_db_status`'s counters of `conn`, reset to zero as it is read.
#[allow(unsafe_code)]
fn db_status(conn: &Connection, op: i32) -> u64 {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: `handle` is the live database handle of `conn`, which outlives the call.
    // `Connection` is not `Sync`, so no other thread uses it meanwhile (the
    // connections are opened with SQLITE_OPEN_NO_MUTEX). The two out-pointers point
    // at local integers. SQLite only reads the handle's pager statistics.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(conn.handle(), op, &mut current, &mut highwater, 1)
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        u64::try_from(current).unwrap_or(0)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn page_cache_counters_count_and_reset_when_collected() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 2000) INSERT INTO t SELECT randomblob(100) FROM c;",
        )
        .unwrap();
        let counters = Counters::default();
        for _ in 0..3 {
            let _: i64 = conn
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap();
        }
        counters.collect(&conn);
        let hits = counters.cache_hits.load(Ordering::Relaxed);
        assert!(hits > 10, "expected page-cache hits, got {hits}");
        counters.collect(&conn);
        assert_eq!(
            counters.cache_hits.load(Ordering::Relaxed),
            hits,
            "reset on read"
        );
    }
}
