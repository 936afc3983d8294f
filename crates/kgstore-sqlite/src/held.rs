//! Reader connections kept by a thread with the statements of the hot reads
//! prepared on them ([`HeldReader`]): a read snapshot on such a connection finds
//! its statements by the address of their fixed text, without rusqlite's statement
//! cache (which trims the text, hashes it to take the statement out and again to
//! put it back, and allocates its key: about 1,200 instructions a statement, nine
//! statements a start of the peers workload's two-hop).
//!
//! A `rusqlite::Statement` borrows its connection and is not `Send`, so statements
//! cannot live in the backend's pool (the backend is shared between threads) without
//! `unsafe`: a thread keeps at most one held reader per backend, in a thread-local
//! list, and takes it for a read snapshot of its own ([`SqliteBackend::begin_read`]
//! and the like; a pair of snapshots, whose second may go to another thread, reads
//! on pooled connections as before). The backend's drop closes the held reader of
//! the thread that drops it; a held reader kept by another thread is closed when
//! that thread next takes a held reader of any backend, or ends (the drop then
//! checkpoints the write-ahead log into the database file, so the file alone holds
//! every commit: `SqliteBackend`'s `Drop`).
//!
//! [`SqliteBackend::begin_read`]: kgstore_core::Backend::begin_read

use std::cell::{OnceCell, RefCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use rusqlite::{Connection, PrepFlags, Statement};

/// How many statements a held reader keeps at most (the hot reads use about ten
/// texts; one past the bound is prepared and finalized at each use instead).
const MAX_HELD: usize = 24;

/// The statements kept on one connection, by the address and length of their
/// `'static` text (a fixed text's bytes never change, so the address names it; a
/// `const` text used in two places may have two addresses, and two statements).
/// Slots are filled in turn and never emptied: a statement stays where it is
/// (no move in or out of a list), and a read within a read of another text may
/// fill the next slot while the first is in use.
pub(crate) struct Held<'c> {
    slots: [OnceCell<Slot<'c>>; MAX_HELD],
}

/// One kept statement and its text's key.
struct Slot<'c> {
    key: (usize, usize),
    stmt: RefCell<Statement<'c>>,
}

self_cell::self_cell!(
    /// A reader connection with the statements prepared on it, finalized before it
    /// closes (the statements are dropped first).
    pub(crate) struct HeldReader {
        owner: Connection,
        #[not_covariant]
        dependent: Held,
    }
);

/// The key of a fixed text: its address and length (a `'static` text's bytes never
/// change; the length tells a text from another that begins at its address).
fn key(sql: &'static str) -> (usize, usize) {
    (sql.as_ptr() as usize, sql.len())
}

impl HeldReader {
    /// A held reader over `conn`, with no statement prepared yet.
    pub(crate) fn hold(conn: Connection) -> Self {
        Self::new(conn, |_| Held {
            slots: std::array::from_fn(|_| OnceCell::new()),
        })
    }

    /// The connection.
    pub(crate) fn conn(&self) -> &Connection {
        self.borrow_owner()
    }

    /// Runs `f` on the statement of the fixed text `sql`, prepared at its first use
    /// and kept; the statement is reset when `f` returns (rusqlite resets it when
    /// its rows are dropped, whether `f` read them all, stopped early or failed).
    /// A statement in use (a read within a read of the same text), or one past
    /// [`MAX_HELD`] texts, is prepared for this use alone.
    pub(crate) fn with_statement<R, E>(
        &self,
        sql: &'static str,
        failed: impl Fn(rusqlite::Error) -> E + Copy,
        f: impl FnOnce(&mut Statement<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.with_dependent(|conn, held| {
            let k = key(sql);
            let mut free = None;
            for cell in &held.slots {
                match cell.get() {
                    Some(slot) if slot.key == k => {
                        if let Ok(mut stmt) = slot.stmt.try_borrow_mut() {
                            return f(&mut stmt);
                        }
                        break;
                    }
                    Some(_) => {}
                    None => {
                        free = Some(cell);
                        break;
                    }
                }
            }
            // As rusqlite's cache prepares: a statement kept for long takes its
            // memory from the heap, not the connection's lookaside slots (with
            // them, a cursor's memory was allocated at each run: +1,300
            // instructions a start of the two-hop in `sqlite3VdbeExec`).
            let prepare = || {
                conn.prepare_with_flags(sql, PrepFlags::SQLITE_PREPARE_PERSISTENT)
                    .map_err(failed)
            };
            let mut stmt = prepare()?;
            let Some(cell) = free else {
                return f(&mut stmt);
            };
            let slot = cell.get_or_init(|| Slot {
                key: k,
                stmt: RefCell::new(stmt),
            });
            match slot.stmt.try_borrow_mut() {
                Ok(mut stmt) if slot.key == k => f(&mut stmt),
                // Not reached: the slot was empty until now, and is this text's.
                _ => f(&mut prepare()?),
            }
        })
    }

    /// How many statements it keeps (for tests).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.with_dependent(|_, held| held.slots.iter().filter(|c| c.get().is_some()).count())
    }
}

/// One backend's share of held readers: its identity in the thread-local lists
/// and how many threads hold one of its connections now.
#[derive(Debug)]
pub(crate) struct Holders {
    id: u64,
    /// The number of threads' entries of the backend (a held reader, or one taken
    /// by a snapshot); an entry keeps a `Weak` to it, lets go of its count when it
    /// is removed, and is removed once the backend is gone.
    count: Arc<AtomicUsize>,
}

impl Default for Holders {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            count: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// A thread's entry for one backend: its held reader, or `None` while a snapshot
/// of this thread reads on it.
struct Entry {
    id: u64,
    count: Weak<AtomicUsize>,
    reader: Option<HeldReader>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        // Its statements first, then its connection (the cell drops them in that order).
        drop(self.reader.take());
        if let Some(count) = self.count.upgrade() {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    /// This thread's entries, at most one per backend.
    static KEPT: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

impl Holders {
    /// How many threads hold a connection of the backend now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// This thread's held reader of the backend, for a snapshot: the one it keeps,
    /// or a new one over `open()`'s connection when it keeps none and fewer than
    /// `cap` threads hold one. `None` when its held reader is taken already (a
    /// snapshot within a snapshot reads on a pooled connection), when `cap` threads
    /// hold one, or while the thread ends. Entries of backends gone are removed
    /// (their connections closed) first.
    pub(crate) fn take(
        &self,
        cap: usize,
        open: impl FnOnce() -> kgstore_core::Result<Connection>,
    ) -> kgstore_core::Result<Option<HeldReader>> {
        KEPT.try_with(|kept| {
            let Ok(mut kept) = kept.try_borrow_mut() else {
                return Ok(None);
            };
            kept.retain(|e| e.count.strong_count() > 0);
            if let Some(entry) = kept.iter_mut().find(|e| e.id == self.id) {
                return Ok(entry.reader.take());
            }
            if self.count() >= cap {
                return Ok(None);
            }
            let reader = HeldReader::hold(open()?);
            self.count.fetch_add(1, Ordering::Relaxed);
            kept.push(Entry {
                id: self.id,
                count: Arc::downgrade(&self.count),
                reader: None,
            });
            Ok(Some(reader))
        })
        .unwrap_or(Ok(None))
    }

    /// Gives a held reader taken by [`Holders::take`] back to this thread; one that
    /// is not `clean` (its transaction could not be ended) is closed, and the
    /// thread's entry with it.
    pub(crate) fn give_back(&self, reader: HeldReader, clean: bool) {
        let mut reader = Some(reader);
        let _ = KEPT.try_with(|kept| {
            if let Ok(mut kept) = kept.try_borrow_mut()
                && let Some(i) = kept.iter().position(|e| e.id == self.id)
            {
                if clean {
                    kept[i].reader = reader.take();
                } else {
                    kept.swap_remove(i);
                }
            }
        });
        // Not given back (not clean, or the thread is ending): closed here.
        drop(reader);
    }

    /// Closes this thread's held reader of the backend (the backend's drop).
    pub(crate) fn close_here(&self) {
        let _ = KEPT.try_with(|kept| {
            if let Ok(mut kept) = kept.try_borrow_mut() {
                kept.retain(|e| e.id != self.id);
            }
        });
    }

    /// How many statements this thread's idle held reader of the backend keeps
    /// (`None`: it keeps none idle).
    #[cfg(test)]
    pub(crate) fn idle_statements(&self) -> Option<usize> {
        KEPT.with(|kept| {
            kept.borrow()
                .iter()
                .find(|e| e.id == self.id)
                .and_then(|e| e.reader.as_ref())
                .map(HeldReader::held)
        })
    }

    /// Runs `f` on this thread's idle held reader of the backend, if any.
    pub(crate) fn with_idle(&self, f: impl FnOnce(&Connection)) {
        let _ = KEPT.try_with(|kept| {
            if let Ok(kept) = kept.try_borrow()
                && let Some(reader) = kept
                    .iter()
                    .find(|e| e.id == self.id)
                    .and_then(|e| e.reader.as_ref())
            {
                f(reader.conn());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Statics: one address each (a `const` text may have one per place of use,
    // each a statement of its own).
    static COUNT: &str = "SELECT count(*) FROM t";
    static ALL: &str = "SELECT x FROM t ORDER BY x";

    fn reader() -> HeldReader {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        HeldReader::hold(conn)
    }

    fn count(reader: &HeldReader) -> i64 {
        reader
            .with_statement(COUNT, |e| e, |s| s.query_row([], |r| r.get(0)))
            .unwrap()
    }

    #[test]
    fn a_statement_is_prepared_once_and_kept() {
        let reader = reader();
        assert_eq!(reader.held(), 0);
        assert_eq!(count(&reader), 3);
        assert_eq!(reader.held(), 1);
        reader
            .conn()
            .execute("INSERT INTO t VALUES (4)", [])
            .unwrap();
        assert_eq!(count(&reader), 4);
        assert_eq!(reader.held(), 1);
        // Another text at another address is another statement.
        let other: &'static str = "SELECT count(*) FROM t WHERE x > 1";
        let n: i64 = reader
            .with_statement(other, |e| e, |s| s.query_row([], |r| r.get(0)))
            .unwrap();
        assert_eq!((n, reader.held()), (3, 2));
    }

    #[test]
    fn a_statement_stopped_early_or_failed_is_reset() {
        let reader = reader();
        // One row of three read, then stopped.
        let first: i64 = reader
            .with_statement(ALL, |e| e, |s| s.query_row([], |r| r.get(0)))
            .unwrap();
        assert_eq!(first, 1);
        assert!(!reader.conn().is_busy());
        // Failed after its first row.
        let failed: rusqlite::Result<()> = reader.with_statement(
            ALL,
            |e| e,
            |s| {
                let mut rows = s.query([])?;
                rows.next()?;
                Err(rusqlite::Error::InvalidQuery)
            },
        );
        assert!(failed.is_err());
        assert!(!reader.conn().is_busy());
        // And it reads from its first row again.
        let again: Vec<i64> = reader
            .with_statement(ALL, |e| e, |s| s.query_map([], |r| r.get(0))?.collect())
            .unwrap();
        assert_eq!(again, [1, 2, 3]);
        assert_eq!(reader.held(), 1);
    }

    #[test]
    fn a_statement_in_use_is_prepared_afresh_for_a_read_within() {
        let reader = reader();
        let pairs: Vec<(i64, i64)> = reader
            .with_statement(
                ALL,
                |e| e,
                |outer| {
                    let mut rows = outer.query([])?;
                    let mut pairs = Vec::new();
                    while let Some(row) = rows.next()? {
                        let x: i64 = row.get(0)?;
                        let inner: i64 =
                            reader.with_statement(ALL, |e| e, |s| s.query_row([], |r| r.get(0)))?;
                        pairs.push((x, inner));
                    }
                    Ok(pairs)
                },
            )
            .unwrap();
        assert_eq!(pairs, [(1, 1), (2, 1), (3, 1)]);
        // The inner one was kept, the outer one is its text's second: not kept.
        assert_eq!(reader.held(), 1);
        assert!(!reader.conn().is_busy());
    }

    #[test]
    fn past_the_bound_a_statement_is_used_and_not_kept() {
        let reader = reader();
        let texts: Vec<&'static str> = (0..=MAX_HELD)
            .map(|i| &*Box::leak(format!("SELECT count(*) + {i} FROM t").into_boxed_str()))
            .collect();
        for (i, text) in texts.iter().enumerate() {
            let n: i64 = reader
                .with_statement(text, |e| e, |s| s.query_row([], |r| r.get(0)))
                .unwrap();
            assert_eq!(n, 3 + i64::try_from(i).unwrap());
        }
        assert_eq!(reader.held(), MAX_HELD);
    }

    #[test]
    fn a_schema_change_by_another_connection_re_prepares_a_kept_statement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        let reader = HeldReader::hold(Connection::open(&path).unwrap());
        let all = |reader: &HeldReader| -> Vec<i64> {
            reader
                .with_statement(ALL, |e| e, |s| s.query_map([], |r| r.get(0))?.collect())
                .unwrap()
        };
        assert_eq!(all(&reader), [1, 2, 3]);
        // Another connection changes the schema: an index the plan may use, a new
        // table, a rebuilt file.
        writer
            .execute_batch(
                "CREATE INDEX t_x ON t(x); CREATE TABLE u(y); INSERT INTO t VALUES (0); VACUUM;",
            )
            .unwrap();
        assert_eq!(all(&reader), [0, 1, 2, 3]);
        writer
            .execute_batch("DROP INDEX t_x; DROP TABLE u; DELETE FROM t WHERE x = 2;")
            .unwrap();
        assert_eq!(all(&reader), [0, 1, 3]);
        assert_eq!(reader.held(), 1);
    }
}
