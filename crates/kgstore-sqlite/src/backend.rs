//! [`SqliteBackend`]: one writer connection, a pool of reader connections, and
//! the transaction types over them.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kgstore_core::algo::{self, ReachOptions, Stats, TraverseOptions, Visit};
use kgstore_core::documents::{DocInput, DocRead, DocWrite};
use kgstore_core::events::{
    EventLogRead, EventLogWrite, EventState, LogRecord, LogScan, NewRecord, RemoveWhere,
};
use kgstore_core::memory::Turns;
use kgstore_core::search::{TermMatches, TermQuery};
use kgstore_core::serde_json::Value;
use kgstore_core::{
    Backend, Direction, Edge, EdgeFilter, EdgeKey, Error, Node, NodeFilter, Problem, ReadTxn,
    RelationType, Result, SchemaTarget, WriteTxn,
};
use kgstore_core::{Document, DocumentMeta};
use rusqlite::Connection;
use std::io::Read;
use std::ops::Bound;

use crate::documents::{DocW, doc_read_via_sql};
use crate::error::{Ctx, SqlResult};
use crate::held::{HeldReader, Holders};
use crate::options::SqliteOptions;
use crate::read::{EndIds, Q};
use crate::schema::{self, Role};
use crate::search::SearchWrites;
use crate::write::{BulkLoad, TypeCounts, W};

/// The SQLite backend: a kgstore store in one SQLite file.
///
/// One writer connection takes write transactions in turns (`BEGIN IMMEDIATE`);
/// read transactions run on pooled reader connections, each on one snapshot of
/// the write-ahead log, so readers never wait for the writer nor it for them.
/// Several processes may open the same file: their writers take turns through
/// SQLite's lock, waiting up to [`SqliteOptions::lock_timeout`].
///
/// ```
/// use kgstore_core::{GraphRead, Node, Store};
/// use kgstore_sqlite::{SqliteBackend, SqliteOptions};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::new(SqliteBackend::open(dir.path().join("kg.db"), SqliteOptions::default())?);
/// store.create_node(Node::new("serde", "crate")?)?;
/// store.create_node(Node::new("serde_json", "crate")?.with_dependency("serde"))?;
/// assert_eq!(store.resolve_dependencies("serde_json")?, ["serde"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteBackend {
    ctx: Ctx,
    options: SqliteOptions,
    /// The file's format version (a read-only open leaves a format-1 file as it is).
    format: i64,
    /// Whether the file has the search index (format 3 and later; a read-only
    /// open of an older file searches by reading every node).
    indexed: bool,
    /// Idle reader connections.
    readers: Mutex<Vec<Connection>>,
    /// The writer connection while no write transaction has it.
    writer: Mutex<WriterSlot>,
    writer_free: Condvar,
    /// Set while the writer connection should be replaced by a fresh one at the
    /// end of the next write transaction (a replacement failed, the open
    /// migrated the file, or a bulk load turned its foreign key checks off): see
    /// [`SqliteBackend::release_writer_after`].
    writer_grown: AtomicBool,
    /// The writer connection's cache of table `event_state`, while no write
    /// transaction has it (see [`crate::events::StateCache`]).
    state_cache: Mutex<crate::events::StateCache>,
    /// Set when this handle last saw [`crate::search::STALE_BATCH`] or more nodes
    /// waiting to be indexed for search (a load committed, or the open found
    /// them): its next search first brings the index up to date, in a write
    /// transaction of its own, if no write transaction of this handle is under way.
    search_backlog: AtomicBool,
    /// Figures for `Store::metrics`.
    counters: crate::perf::Counters,
    /// The reader connections threads hold with their statements ([`HeldReader`]).
    holders: Holders,
}

impl Drop for SqliteBackend {
    /// Closes the held reader of the thread that drops the backend (another
    /// thread's is closed when that thread next takes one, of any backend, or ends).
    ///
    /// While another thread still holds one, the writer's close is not the last
    /// connection's, so SQLite would leave the commits in the write-ahead log: the
    /// drop checkpoints the log into the database file first (without waiting), so
    /// the file alone holds every commit once the backend is gone, as it does when
    /// the writer's close is the last.
    fn drop(&mut self) {
        self.holders.close_here();
        if self.holders.count() == 0 || self.options.read_only {
            return;
        }
        let slot = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let mut opened;
        let conn = match slot.conn.as_mut() {
            Some(conn) => conn,
            None => match schema::connect(&self.ctx, &self.options, Role::Writer, false) {
                Ok(conn) => {
                    opened = conn;
                    &mut opened
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no checkpoint at close");
                    return;
                }
            },
        };
        // No busy handler: a checkpoint that would wait is not done (the log then
        // keeps the commits, as SQLite leaves it).
        let outcome = conn.busy_handler(None::<fn(i32) -> bool>).and_then(|()| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
        });
        match outcome {
            Ok(0) => {}
            Ok(_) => tracing::debug!("the write-ahead log was in use at close: not checkpointed"),
            Err(e) => tracing::debug!(error = %e, "no checkpoint at close"),
        }
    }
}

/// The writer connection, and the line of write transactions waiting for it (first
/// come, first served: see [`Turns`]).
struct WriterSlot {
    /// `None` while a transaction holds it, or after it broke (a new one is opened).
    conn: Option<Connection>,
    /// What the commit of the last write transaction on `conn` saw of the nodes
    /// waiting to be indexed: see [`StaleHint`]. Taken with the connection by the
    /// next write transaction; anything else that takes it forgets it.
    stale: StaleHint,
    turns: Turns,
}

/// Rows changed by one write transaction from which its commit cuts back a
/// grown write-ahead log ([`SqliteBackend::cut_back_log`]).
const BIG_WRITE_ROWS: u64 = 10_000;

/// How long [`Backend::begin_read_pair`] waits for the write transactions of
/// this process in line before it, at most, before it begins one read alone.
const PAIR_WAIT: Duration = Duration::from_millis(100);

/// The writer connection's `PRAGMA data_version` when the commit of a write
/// transaction on it left [`crate::search::STALE_BATCH`] or more nodes waiting
/// to be indexed for search (`None`: not known).
///
/// The list only grows until a catch-up empties it, and `data_version` changes
/// when another connection commits (another handle or process, which may have
/// caught up): while it is unchanged, the next commit knows the list is still
/// long without reading it (two probes of 256 rows each, a third of a
/// single-node commit's instructions after a load). Every catch-up on the writer
/// connection itself runs outside the write transaction that keeps this, or
/// forgets it ([`SqliteWrite::before_search`]).
type StaleHint = Option<i64>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are replaced whole, so a panic elsewhere cannot leave them torn.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.ctx.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// The open's first connection, the format version the file had, and the one
    /// it has after [`schema::prepare`] checked, created or migrated it.
    ///
    /// SQLite answers `SQLITE_BUSY` at once, without calling the busy handler,
    /// where waiting could deadlock: while several connections open a new or
    /// older file at the same moment (switching it to write-ahead logging,
    /// creating or migrating the schema), one of them can get that answer. An
    /// open is idempotent, so a busy one is retried from a new connection, with a
    /// short pause, until [`SqliteOptions::lock_timeout`] has passed.
    fn first_connection(
        ctx: &Ctx,
        options: &SqliteOptions,
        role: Role,
        writable: bool,
    ) -> Result<(rusqlite::Connection, i64, i64)> {
        let deadline = Instant::now().checked_add(options.lock_timeout);
        let mut pause = Duration::from_millis(1);
        loop {
            let attempt =
                schema::connect(ctx, options, role, writable && options.create_if_missing)
                    .and_then(|first| {
                        // (A file that cannot be read fails in `prepare`, with the error it names.)
                        let found: i64 = first
                            .query_row("PRAGMA user_version", [], |r| r.get(0))
                            .unwrap_or(0);
                        let format = schema::prepare(&first, ctx, writable)?;
                        Ok((first, found, format))
                    });
            match attempt {
                Err(e)
                    if e.kind() == kgstore_core::ErrorKind::Locked
                        && deadline.is_some_and(|d| Instant::now() < d) =>
                {
                    tracing::debug!(error = %e, "the file was busy at open; trying again");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// Opens the store in the SQLite file at `path`, creating it (and its parent
    /// folders) if it does not exist and [`SqliteOptions::create_if_missing`] is set.
    ///
    /// Fails with [`Error::Corrupt`] for a file that is not a kgstore store (not
    /// SQLite at all, another application's database) or that is of a newer
    /// format, and, with [`SqliteOptions::verify_on_open`], for a damaged one;
    /// with [`Error::Io`] for a file that cannot be opened or does not exist;
    /// with [`Error::Locked`] if another process holds the file longer than the
    /// lock timeout.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut ctx = Ctx {
            path: path.clone(),
            lock_timeout: options.lock_timeout,
            documents: true,
            edge_names: true,
            edge_flags: true,
        };
        let writable = !options.read_only;
        let exists = path.try_exists().map_err(|e| Error::io(&path, e))?;
        if exists && path.is_dir() {
            return Err(Error::invalid_input(
                format!("sqlite store file {}", path.display()),
                "is a folder, not a file: a sqlite:// store is one file, such as \
                 sqlite://./data/kg.db (json:// keeps a store in a folder)",
            ));
        }
        if !exists {
            if !writable || !options.create_if_missing {
                return Err(Error::io(
                    &path,
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        "no kgstore store here (and creating one was not asked for)",
                    ),
                ));
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
        }
        if exists {
            // A log left by a process that died is replayed by SQLite itself as the
            // first connection opens; one in use by another process is simply shared.
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            if let Ok(meta) = std::fs::metadata(&wal)
                && meta.len() > 0
            {
                tracing::debug!(
                    wal_bytes = meta.len(),
                    "write-ahead log present at open (in use by another process, or left \
                     by one that stopped: SQLite replays it)"
                );
            }
        }
        let role = if writable { Role::Writer } else { Role::Reader };
        let (first, found, format) = Self::first_connection(&ctx, &options, role, writable)?;
        // A migration that filled the search index (from a file without one) grew
        // FTS5's tables of pending terms on this connection: the writer is
        // replaced after its first write.
        let migrated = writable && found > 0 && !crate::search::indexed(found);
        let search_backlog = writable
            && crate::search::defers_indexing(format)
            && crate::search::backlog_is_long(&first, &ctx)?;
        ctx.documents = format >= schema::DOCUMENTS_SINCE;
        ctx.edge_names = format >= schema::NAMED_EDGES_SINCE;
        ctx.edge_flags = format >= schema::EDGE_FLAGS_SINCE;
        // The connection that checked (or made) the file becomes the first reader: a
        // store's first read would otherwise open a second connection and parse the
        // schema again (half of a reopen's time to its first read); the first write
        // opens the writer connection. After a migration that grew FTS5's tables it
        // stays the writer, to be replaced after its first write.
        let (writer, readers) = if writable && migrated {
            (Some(first), Vec::new())
        } else {
            if writable {
                run(&first, &ctx, "PRAGMA query_only = ON", || {
                    "making the first connection a reader".into()
                })?;
            }
            (None, vec![first])
        };
        let backend = Self {
            ctx,
            options,
            format,
            indexed: crate::search::indexed(format),
            readers: Mutex::new(readers),
            writer: Mutex::new(WriterSlot {
                conn: writer,
                stale: None,
                turns: Turns::default(),
            }),
            writer_free: Condvar::new(),
            writer_grown: AtomicBool::new(migrated),
            state_cache: Mutex::default(),
            search_backlog: AtomicBool::new(search_backlog),
            counters: crate::perf::Counters::default(),
            holders: Holders::default(),
        };
        if backend.options.verify_on_open {
            let problems = backend.check()?;
            if !problems.is_empty() {
                let listed: Vec<String> =
                    problems.iter().take(5).map(ToString::to_string).collect();
                let more = problems.len().saturating_sub(listed.len());
                let mut detail = format!(
                    "the check before use found {} problem{}: {}",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    listed.join("; ")
                );
                if more > 0 {
                    detail.push_str(&format!("; and {more} more"));
                }
                return Err(backend.ctx.corrupt(detail));
            }
        }
        Ok(backend)
    }

    /// The file's format version as this handle uses it: [`schema::FORMAT_VERSION`]
    /// for a writable open (older files are upgraded), the file's own for a read-only one.
    pub fn format(&self) -> i64 {
        self.format
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.ctx.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }

    pub(crate) fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// A reader connection, from the pool or newly opened (never waits).
    pub(crate) fn reader(&self) -> Result<Connection> {
        if let Some(conn) = lock(&self.readers).pop() {
            return Ok(conn);
        }
        let conn = schema::connect(&self.ctx, &self.options, Role::Reader, false)?;
        self.counters.reader_opens.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    /// Gives a reader connection back to the pool (or closes it if the pool is full).
    /// The held readers of threads are not in it: counted in it, they would leave
    /// the threads beyond [`SqliteOptions::reader_pool_size`] none to reuse.
    pub(crate) fn return_reader(&self, conn: Connection) {
        let mut idle = lock(&self.readers);
        if idle.len() < self.options.reader_pool_size {
            idle.push(conn);
        } else {
            self.counters.collect(&conn);
        }
    }

    /// Takes the writer connection, waiting for another write transaction of this
    /// process at most the lock timeout.
    pub(crate) fn take_writer(&self) -> Result<Connection> {
        self.take_writer_hinted().map(|(conn, _)| conn)
    }

    /// [`SqliteBackend::take_writer`], with what the last commit on the
    /// connection knew of the list of nodes waiting to be indexed.
    fn take_writer_hinted(&self) -> Result<(Connection, StaleHint)> {
        self.take_writer_within(self.options.lock_timeout, true)
    }

    /// The writer connection, in turn after the write transactions of this process
    /// already in line, if it comes within [`PAIR_WAIT`] (and the lock timeout);
    /// `None` otherwise, and on a read-only handle.
    fn writer_soon(&self) -> Result<Option<Connection>> {
        if self.options.read_only {
            return Ok(None);
        }
        match self.take_writer_within(PAIR_WAIT.min(self.options.lock_timeout), false) {
            // Anything but a write transaction that takes the connection forgets the hint.
            Ok((conn, _forgotten)) => Ok(Some(conn)),
            Err(Error::Locked { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The writer connection and its hint, waiting for the write transactions of
    /// this process already in line at most `timeout` (the wait counted in the
    /// metrics when `timed`); opened anew when the last holder dropped it.
    fn take_writer_within(
        &self,
        timeout: Duration,
        timed: bool,
    ) -> Result<(Connection, StaleHint)> {
        if self.options.read_only {
            return Err(Error::unsupported(
                format!("writing to {} (opened read-only)", self.ctx.path.display()),
                "sqlite",
            ));
        }
        let mut slot = lock(&self.writer);
        let ticket = slot.turns.ticket();
        if !slot.turns.enter(ticket) {
            drop(slot);
            slot = if timed {
                let resource = format!("SQLite database {}", self.ctx.path.display());
                kgstore_core::observe::timed_wait(
                    &resource,
                    "another write transaction of this process",
                    || self.wait_for_writer(ticket, timeout),
                )?
            } else {
                self.wait_for_writer(ticket, timeout)?
            };
        }
        let conn = slot.conn.take();
        let hint = slot.stale.take();
        drop(slot);
        match conn {
            Some(conn) => Ok((conn, hint)),
            None => {
                // A new connection: the cache's data version was another's.
                *lock(&self.state_cache) = Default::default();
                schema::connect(&self.ctx, &self.options, Role::Writer, false)
                    .map(|conn| (conn, None))
                    .inspect_err(|_| self.release_writer(None))
            }
        }
    }

    /// Two read transactions on one snapshot ([`Backend::begin_read_pair`]): both
    /// reader connections are taken first; then, holding SQLite's write lock
    /// (`BEGIN IMMEDIATE` on the writer connection, so that no commit of any
    /// connection or process can fall between), each begins its transaction and
    /// takes its snapshot with a first read; then the lock is let go (`ROLLBACK`:
    /// nothing was written). Writers wait for that much alone: two `BEGIN`s and
    /// two reads of the schema cookie. `None` for the second when the writer
    /// connection is not this call's within [`PAIR_WAIT`] (a long write
    /// transaction of this process) or the lock is not had within it either
    /// (another process writing): the first alone is begun then, on the reader
    /// connection it already has (as it began under the lock, if it did), and the
    /// second's goes back to the pool.
    fn read_pair(&self) -> Result<(SqliteRead<'_>, Option<SqliteRead<'_>>)> {
        let first = self.read_txn(false)?;
        if self.options.read_only {
            // No write lock to begin a pair under: no second connection either.
            first.begin_now()?;
            return Ok((first, None));
        }
        let second = self.read_txn(false)?;
        // No writer connection (none could be opened either): the first read alone.
        let Ok(Some(mut writer)) = self.writer_soon() else {
            first.begin_now()?;
            return Ok((first, None));
        };
        // Another process's write lock is waited for as this process's writers are
        // ([`PAIR_WAIT`] at most), not for the lock timeout: the busy handler is
        // shortened for the `BEGIN IMMEDIATE` and given back after.
        let short = PAIR_WAIT.min(self.options.lock_timeout);
        let locked = writer
            .busy_handler(Some(schema::busy_handler(short)))
            .ctx(&self.ctx, || {
                "shortening the wait for the write lock".into()
            })
            .and_then(|()| {
                run(&writer, &self.ctx, "BEGIN IMMEDIATE", || {
                    "holding the write lock while two reads begin".into()
                })
            });
        // Whether the first began under the lock, and then the second.
        let first_begun = locked.and_then(|()| first.begin_now()).is_ok();
        let both_begun = first_begun && second.begin_now().is_ok();
        let released = if writer.is_autocommit() {
            Ok(())
        } else {
            run(&writer, &self.ctx, "ROLLBACK", || {
                "letting go of the write lock".into()
            })
        };
        let restored = writer
            .busy_handler(Some(schema::busy_handler(self.options.lock_timeout)))
            .is_ok();
        let clean = released.is_ok() && writer.is_autocommit() && restored;
        self.release_writer(clean.then_some(writer));
        released?;
        if both_begun {
            return Ok((first, Some(second)));
        }
        // The lock could not be had (or a read did not begin under it): the pair's
        // first read alone, on its own connection. Begun under the lock, it is one
        // snapshot already; otherwise it is begun now (a `BEGIN` that ran before a
        // first read that failed is not run again: the read takes the snapshot).
        drop(second);
        if !first_begun {
            // A `BEGIN` whose snapshot read failed may have been rolled back by
            // SQLite (some errors end the transaction): then it is begun again.
            first.forget_ended_begin()?;
            first.begin_now()?;
        }
        Ok((first, None))
    }

    /// Waits until the write transactions of this process that came before have had
    /// the writer connection, at most `timeout` (the lock timeout for a write
    /// transaction); then holds it (`ticket`'s turn).
    fn wait_for_writer(
        &self,
        ticket: u64,
        timeout: Duration,
    ) -> Result<MutexGuard<'_, WriterSlot>> {
        // A timeout too long to add to the clock means waiting for as long as it takes.
        let deadline = Instant::now().checked_add(timeout);
        let mut slot = lock(&self.writer);
        while !slot.turns.enter(ticket) {
            let left = deadline.map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                slot.turns.abandon(ticket);
                drop(slot);
                self.writer_free.notify_all();
                return Err(Error::Locked {
                    resource: format!("SQLite database {}", self.ctx.path.display()),
                    holder: Some(format!(
                        "another write transaction of this process (waited {} ms)",
                        timeout.as_millis()
                    )),
                });
            }
            slot = match self.writer_free.wait_timeout(slot, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        Ok(slot)
    }

    /// Gives the writer connection back after a transaction whose writes may have
    /// grown FTS5's in-memory tables of pending terms (`grown`), or after any
    /// transaction while an earlier replacement is still due: the connection is
    /// then replaced by a fresh one, with the same settings, whose tables are
    /// small again (FTS5's only grow, and every commit walks them whole; see
    /// `search::HASH_ENTRIES_RENEWED`). The fresh one is opened before the old
    /// one closes: if it cannot be opened, the old connection is given back as
    /// it is (slower commits, nothing lost) and the replacement is tried again
    /// after the next write transaction.
    pub(crate) fn release_writer_after(&self, conn: Connection, grown: bool) {
        self.release_writer_hinted(conn, grown, None);
    }

    /// [`SqliteBackend::release_writer_after`], keeping `hint` with the
    /// connection if it is not replaced.
    fn release_writer_hinted(&self, conn: Connection, grown: bool, hint: StaleHint) {
        let (conn, hint) = if grown || self.writer_grown.load(Ordering::Relaxed) {
            match schema::connect(&self.ctx, &self.options, Role::Writer, false) {
                Ok(fresh) => {
                    self.counters.collect(&conn);
                    drop(conn);
                    // The cache's data version was the old connection's.
                    *lock(&self.state_cache) = Default::default();
                    self.writer_grown.store(false, Ordering::Relaxed);
                    self.counters
                        .writer_renewals
                        .fetch_add(1, Ordering::Relaxed);
                    (fresh, None)
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "could not open a new writer connection to replace one whose search \
                         index tables grew; keeping it (commits stay slower until it is replaced)"
                    );
                    self.writer_grown.store(true, Ordering::Relaxed);
                    self.counters
                        .writer_renewal_failures
                        .fetch_add(1, Ordering::Relaxed);
                    (conn, hint)
                }
            }
        } else {
            (conn, hint)
        };
        let mut slot = lock(&self.writer);
        slot.conn = Some(conn);
        slot.stale = hint;
        slot.turns.leave();
        drop(slot);
        self.writer_free.notify_all();
    }

    /// The writer connection if it is free now and nobody waits for it (never waits).
    fn try_take_writer(&self) -> Option<Connection> {
        if self.options.read_only {
            return None;
        }
        let mut slot = lock(&self.writer);
        if slot.turns.is_busy() || slot.turns.has_waiters() {
            return None;
        }
        let ticket = slot.turns.ticket();
        if !slot.turns.enter(ticket) {
            slot.turns.abandon(ticket);
            return None;
        }
        let conn = slot.conn.take();
        slot.stale = None;
        drop(slot);
        match conn {
            Some(conn) => Some(conn),
            None => match schema::connect(&self.ctx, &self.options, Role::Writer, false) {
                Ok(conn) => Some(conn),
                Err(_) => {
                    self.release_writer(None);
                    None
                }
            },
        }
    }

    /// Before a search on a reader: if this handle saw a long list of nodes
    /// waiting to be indexed, and the writer is free, indexes them in a write
    /// transaction of its own, so that this search (when its snapshot is not
    /// taken yet) and the later ones read the index instead of scoring every
    /// listed node from its row. A failure is logged and left: searches score
    /// the listed nodes themselves, so none of them sees less.
    fn catch_up_search(&self) {
        if !self.search_backlog.load(Ordering::Relaxed) {
            return;
        }
        let Some(conn) = self.try_take_writer() else {
            return;
        };
        let mut writes = SearchWrites::default();
        let outcome = run(&conn, &self.ctx, "BEGIN IMMEDIATE", || {
            "starting a write transaction to index waiting nodes".into()
        })
        .and_then(|()| {
            crate::search::catch_up(&conn, &self.ctx, &mut writes)
                .and_then(|()| run(&conn, &self.ctx, "COMMIT", || "committing".into()))
                .inspect_err(|_| {
                    let _ = conn.execute_batch("ROLLBACK");
                })
        });
        match outcome {
            Ok(()) => {
                self.search_backlog.store(false, Ordering::Relaxed);
                self.counters
                    .search_catch_ups
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(
                error = %e,
                "could not index the nodes waiting for the search index; searches score \
                 them from their rows until a later attempt succeeds"
            ),
        }
        self.release_writer_after(conn, writes.grew_fts5_hash());
    }

    /// After a write transaction that changed [`BIG_WRITE_ROWS`] rows or more (a
    /// load, a restore) left the write-ahead log larger than
    /// [`schema::WAL_LIMIT_BYTES`]: checkpoints the whole log and truncates it,
    /// so that the big write pays for its log. Otherwise the first small commit
    /// after it would: SQLite cuts a grown log back (`journal_size_limit`) at the
    /// first commit after the log restarts, and truncating a file of gigabytes
    /// took that commit 76 ms after a 300,000-node load (more at a million
    /// nodes: a fifth of the time of 500 single commits). Never waits: if a
    /// reader or another process is in the way, the log stays as it is (and the
    /// next small commit cuts it back, as before). What it did is logged; it
    /// cannot fail the commit, which is done.
    fn cut_back_log(&self, conn: &mut Connection) {
        let mut wal = self.ctx.path.as_os_str().to_owned();
        wal.push("-wal");
        let size = std::fs::metadata(Path::new(&wal)).map_or(0, |m| m.len());
        if size <= schema::WAL_LIMIT_BYTES {
            return;
        }
        // No busy handler: a checkpoint that would wait is not done.
        let outcome = conn.busy_handler(None::<fn(i32) -> bool>).and_then(|()| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
        });
        let restored = conn.busy_handler(Some(schema::busy_handler(self.options.lock_timeout)));
        match (outcome, restored) {
            (Ok((busy, frames, copied)), Ok(())) => tracing::debug!(
                wal_bytes = size,
                busy,
                frames,
                copied,
                "checkpointed and truncated the write-ahead log after a large write"
            ),
            (outcome, restored) => tracing::warn!(
                checkpoint = ?outcome.err(),
                busy_handler = ?restored.err(),
                "could not cut back the write-ahead log after a large write"
            ),
        }
    }

    /// Gives the writer connection back (`None` if it broke: the next writer opens a new one).
    pub(crate) fn release_writer(&self, conn: Option<Connection>) {
        let mut slot = lock(&self.writer);
        slot.conn = conn;
        slot.stale = None;
        slot.turns.leave();
        drop(slot);
        self.writer_free.notify_all();
    }

    /// A read transaction on a pooled connection, begun now (`begin`) or by its first
    /// method of several statements.
    fn read_txn(&self, begin: bool) -> Result<SqliteRead<'_>> {
        self.read_txn_on(self.reader()?, begin)
    }

    /// [`SqliteBackend::read_txn`] on the given connection.
    fn read_txn_on<C: Reader>(&self, conn: C, begin: bool) -> Result<SqliteRead<'_, C>> {
        let txn = SqliteRead {
            pooled: Pooled {
                backend: self,
                conn: Some(conn),
            },
            begun: Cell::new(false),
            alone: Cell::new(false),
            ends: EndIds::default(),
        };
        if begin {
            txn.begin()?;
        }
        Ok(txn)
    }

    /// This thread's held reader for a read snapshot of its own ([`HeldReader`]),
    /// if it may have one: not with a pool of no connections, not while a
    /// snapshot of this thread reads on it, not when as many threads as the pool
    /// keeps connections hold one.
    fn held_reader(&self) -> Result<Option<HeldReader>> {
        let cap = self.options.reader_pool_size;
        if cap == 0 {
            return Ok(None);
        }
        self.holders.take(cap, || self.reader())
    }

    /// A snapshot of its own for this thread: on its held reader if it may have
    /// one, on a pooled connection otherwise; begun now (`begin`, and its snapshot
    /// taken too with `now`) or by its first method of several statements.
    fn own_read(&self, begin: bool, now: bool) -> Result<Box<dyn ReadTxn + '_>> {
        fn made<'b, C: Reader + 'b>(
            txn: SqliteRead<'b, C>,
            now: bool,
        ) -> Result<Box<dyn ReadTxn + 'b>>
        where
            SqliteRead<'b, C>: ReadTxn,
        {
            if now {
                txn.begin_now()?;
            }
            Ok(Box::new(txn))
        }
        match self.held_reader()? {
            Some(held) => made(self.read_txn_on(held, begin)?, now),
            None => made(self.read_txn(begin)?, now),
        }
    }

    /// The settings in force on the connections, read back from SQLite.
    pub fn settings(&self) -> Result<Settings> {
        let reader = Pooled::new(self)?;
        let reader_settings = ConnectionSettings::read(reader.conn()?, &self.ctx)?;
        drop(reader);
        let writer = if self.options.read_only {
            None
        } else {
            let conn = self.take_writer()?;
            let settings = ConnectionSettings::read(&conn, &self.ctx);
            self.release_writer(Some(conn));
            Some(settings?)
        };
        Ok(Settings {
            writer,
            reader: reader_settings,
            lock_timeout: self.options.lock_timeout,
        })
    }
}

/// The settings in force, as SQLite reports them ([`SqliteBackend::settings`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// The writer connection's settings (`None` when opened read-only).
    pub writer: Option<ConnectionSettings>,
    /// A reader connection's settings.
    pub reader: ConnectionSettings,
    /// How long lock waits last.
    pub lock_timeout: Duration,
}

/// One connection's settings, read back with `PRAGMA`s.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionSettings {
    /// `PRAGMA journal_mode`: `wal` for a writable store.
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 2 (FULL) for [`Durability::Immediate`](crate::Durability),
    /// 1 (NORMAL) for `Relaxed`.
    pub synchronous: i64,
    /// `PRAGMA foreign_keys`.
    pub foreign_keys: bool,
    /// `PRAGMA trusted_schema` (always off).
    pub trusted_schema: bool,
    /// `PRAGMA query_only` (on for readers).
    pub query_only: bool,
    /// `PRAGMA user_version`: the store's format version.
    pub format_version: i64,
    /// `PRAGMA mmap_size`: how many bytes of the file are read through a memory map.
    pub mmap_size: i64,
}

impl ConnectionSettings {
    fn read(conn: &Connection, ctx: &Ctx) -> Result<Self> {
        let int = |pragma: &str| -> Result<i64> {
            conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
                .ctx(ctx, || format!("reading PRAGMA {pragma}"))
        };
        Ok(Self {
            journal_mode: conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .ctx(ctx, || "reading PRAGMA journal_mode".into())?,
            synchronous: int("synchronous")?,
            foreign_keys: int("foreign_keys")? != 0,
            trusted_schema: int("trusted_schema")? != 0,
            query_only: int("query_only")? != 0,
            format_version: int("user_version")?,
            mmap_size: int("mmap_size")?,
        })
    }
}

/// A reader connection a read snapshot reads on: a pooled one, or this thread's
/// held reader with its statements.
pub(crate) trait Reader {
    /// The connection.
    fn conn(&self) -> &Connection;
    /// Its kept statements, if it is a held reader.
    fn held(&self) -> Option<&HeldReader>;
    /// Ends its read transaction and gives it back (to the pool, or to the thread).
    fn give_back(self, backend: &SqliteBackend);
}

impl Reader for Connection {
    fn conn(&self) -> &Connection {
        self
    }

    fn held(&self) -> Option<&HeldReader> {
        None
    }

    fn give_back(self, backend: &SqliteBackend) {
        if end_read(&self, None) {
            backend.return_reader(self);
        }
    }
}

impl Reader for HeldReader {
    fn conn(&self) -> &Connection {
        HeldReader::conn(self)
    }

    fn held(&self) -> Option<&HeldReader> {
        Some(self)
    }

    fn give_back(self, backend: &SqliteBackend) {
        let clean = end_read(self.conn(), Some(&self));
        backend.holders.give_back(self, clean);
    }
}

/// A reader connection outside any transaction, given back on drop.
pub(crate) struct Pooled<'b, C: Reader = Connection> {
    backend: &'b SqliteBackend,
    conn: Option<C>,
}

impl<'b> Pooled<'b> {
    pub(crate) fn new(backend: &'b SqliteBackend) -> Result<Self> {
        Ok(Self {
            backend,
            conn: Some(backend.reader()?),
        })
    }
}

impl<C: Reader> Pooled<'_, C> {
    pub(crate) fn conn(&self) -> Result<&Connection> {
        self.reader().map(Reader::conn)
    }

    fn reader(&self) -> Result<&C> {
        self.conn.as_ref().ok_or_else(|| gone(&self.backend.ctx))
    }
}

impl<C: Reader> Drop for Pooled<'_, C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.give_back(self.backend);
        }
    }
}

/// Ends any transaction left open on a connection; whether it is clean to reuse.
fn finish(conn: &Connection) -> bool {
    if !conn.is_autocommit() {
        let _ = conn
            .prepare_cached("ROLLBACK")
            .and_then(|mut s| s.execute([]));
    }
    conn.is_autocommit()
}

/// Ends the read transaction left open on a reader connection, if any; whether it
/// is clean to reuse. `COMMIT` rather than [`finish`]'s `ROLLBACK`: a reader
/// (`query_only`) has written nothing, and SQLite's commit of a read transaction
/// only lets its snapshot go, where a rollback also walks the connection's
/// savepoints, virtual tables and cursors. A held reader's `COMMIT` is its own.
fn end_read(conn: &Connection, held: Option<&HeldReader>) -> bool {
    if !conn.is_autocommit() {
        let _ = match held {
            Some(held) => held.with_statement("COMMIT", |e| e, |s| s.execute([])),
            None => conn
                .prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([])),
        };
    }
    // A `COMMIT` refused leaves the transaction open: roll it back instead.
    finish(conn)
}

fn gone(ctx: &Ctx) -> Error {
    Error::backend(
        "sqlite",
        format!(
            "the transaction on {} has already ended",
            ctx.path.display()
        ),
    )
}

fn run(conn: &Connection, ctx: &Ctx, sql: &str, doing: impl FnOnce() -> String) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .ctx(ctx, doing)
}

/// A read transaction on a pooled connection, or on this thread's held reader.
struct SqliteRead<'b, C: Reader = Connection> {
    pooled: Pooled<'b, C>,
    /// Whether its SQL transaction has begun; a one-method read ([`Backend::begin_one`])
    /// begins it only for a method that reads with more than one statement.
    begun: Cell<bool>,
    /// Whether a method has run outside a transaction (a one-method read's one method).
    alone: Cell<bool>,
    /// The ids of names this snapshot's reads of outgoing edges found at their `to`
    /// ends (`Q::edges_of_node`).
    ends: EndIds,
}

/// The write transaction on the writer connection.
struct SqliteWrite<'b> {
    backend: &'b SqliteBackend,
    conn: Option<Connection>,
    /// Names that writes may have left unreferenced, swept at commit.
    orphans: HashSet<i64>,
    /// What the search index's writes keep within the transaction (a `RefCell`:
    /// reads of the search index hand the waiting changes to FTS5 first).
    search: RefCell<SearchWrites>,
    /// The transaction's changes to the number of nodes of each type, written
    /// before it counts its nodes and at commit (a `RefCell`: those reads write them).
    counts: RefCell<TypeCounts>,
    /// The bulk load under way ([`WriteTxn::bulk_load_begin`]), if one is.
    bulk: Option<BulkLoad>,
    /// The writer's cache of table `event_state`, taken from the backend for the
    /// transaction and given back by its commit (a `RefCell`: reads fill it).
    state: RefCell<crate::events::StateCache>,
    /// What the last commit on the connection knew of the nodes waiting to be
    /// indexed ([`StaleHint`]); after this transaction's commit, what it knows.
    stale: Cell<StaleHint>,
    /// The connection's `total_changes` when the transaction began.
    changes_at_begin: u64,
}

impl<C: Reader> SqliteRead<'_, C> {
    /// Reads for a method of several statements: inside the transaction, begun now
    /// if it has not been.
    fn q(&self) -> Result<Q<'_>> {
        if !self.begun.get() && self.alone.get() {
            // Its snapshot would not be the first method's: a misuse of `begin_one`.
            return Err(Error::backend(
                "sqlite",
                "a read begun for one method call was used for a second one".to_owned(),
            ));
        }
        self.begin()?;
        self.reads()
    }

    /// Reads for a method of one statement, which sees one snapshot by itself: outside
    /// a transaction if none has begun.
    fn q_one(&self) -> Result<Q<'_>> {
        if !self.begun.get() {
            self.alone.set(true);
        }
        self.reads()
    }

    /// Begins the SQL transaction if it has not begun: for [`SqliteRead::q`], and
    /// when a method that ran one statement outside a transaction reads everything
    /// again with several (the reference algorithm, when its one statement's answer
    /// needs it); what that statement saw is not used with them.
    fn begin(&self) -> Result<()> {
        if !self.begun.get() {
            let q = self.reads()?;
            q.with_stmt(
                "BEGIN",
                || "starting a read transaction".into(),
                |s| {
                    s.execute([])
                        .ctx(q.ctx, || "starting a read transaction".into())
                },
            )?;
            self.begun.set(true);
        }
        Ok(())
    }

    /// Forgets a `BEGIN` whose transaction SQLite has ended since (the connection
    /// is back in autocommit), so that [`Self::begin`] runs it again. Only for a
    /// read that has read nothing yet: one that has would change snapshots.
    fn forget_ended_begin(&self) -> Result<()> {
        if self.begun.get() && self.reads()?.conn.is_autocommit() {
            self.begun.set(false);
        }
        Ok(())
    }

    /// Begins the SQL transaction and takes its snapshot now: a deferred
    /// transaction takes it at its first read (reading the schema cookie in the
    /// header is the cheapest read there is).
    fn begin_now(&self) -> Result<()> {
        self.begin()?;
        let q = self.reads()?;
        #[cfg(test)]
        tests::snapshot_read_fault(q.conn, q.ctx)?;
        let doing = || "starting a read transaction".to_owned();
        q.with_stmt("PRAGMA schema_version", doing, |s| {
            s.query_row([], |_| Ok(())).ctx(q.ctx, doing)
        })
    }

    fn reads(&self) -> Result<Q<'_>> {
        let reader = self.pooled.reader()?;
        Ok(Q {
            conn: reader.conn(),
            ctx: &self.pooled.backend.ctx,
            held: reader.held(),
        })
    }

    fn indexed(&self) -> bool {
        self.pooled.backend.indexed
    }

    /// The ids of names kept for this snapshot, when it is one of several
    /// statements (ids are a snapshot's; a read outside a transaction has one
    /// statement per method and keeps none).
    fn end_ids(&self) -> Option<&EndIds> {
        self.begun.get().then_some(&self.ends)
    }

    /// A read transaction sees committed states only, which the store's commits
    /// keep free of dangling references (`Q::resolve_dependencies`,
    /// `Q::edges_of_node`, `Q::neighbour_names`).
    #[allow(clippy::unused_self)]
    fn sees_only_commits(&self) -> bool {
        true
    }

    fn format(&self) -> i64 {
        self.pooled.backend.format
    }

    /// The nodes waiting to be indexed, as this snapshot sees them; when they are
    /// many (written by another handle or process), a writable handle indexes
    /// them before its next search.
    fn stale(&self, q: &Q<'_>) -> Result<crate::search::Stale> {
        let stale = crate::search::Stale::read(q, self.format())?;
        let backend = self.pooled.backend;
        if stale.len() >= crate::search::STALE_BATCH && !backend.options.read_only {
            backend.search_backlog.store(true, Ordering::Relaxed);
        }
        Ok(stale)
    }

    /// A read transaction has no counts of its own waiting.
    #[allow(clippy::unnecessary_wraps, clippy::unused_self)]
    fn before_counts(&self) -> Result<()> {
        Ok(())
    }

    /// A read transaction has no writes of its own waiting; the handle may index
    /// a long list of waiting nodes first ([`SqliteBackend::catch_up_search`]).
    fn before_search(&self) -> Result<()> {
        self.pooled.backend.catch_up_search();
        Ok(())
    }
}

impl SqliteWrite<'_> {
    fn q_one(&self) -> Result<Q<'_>> {
        self.q()
    }

    /// Every read of a write transaction is inside it.
    fn begin(&self) -> Result<()> {
        Ok(())
    }

    fn q(&self) -> Result<Q<'_>> {
        Ok(Q {
            conn: self.conn.as_ref().ok_or_else(|| gone(&self.backend.ctx))?,
            ctx: &self.backend.ctx,
            held: None,
        })
    }

    /// After a write of `rows` nodes or edges: one that ran without foreign key
    /// checks ([`crate::write::UNCHECKED_FROM`]) and could not turn them on again
    /// has a fresh writer connection replace this one after the transaction.
    fn renew_if_unchecked(&mut self, rows: usize) -> Result<()> {
        if self.bulk.is_none()
            && rows >= crate::write::UNCHECKED_FROM
            && !self.w()?.foreign_keys_on()
        {
            self.backend.writer_grown.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn w(&mut self) -> Result<W<'_>> {
        Ok(W::new(
            self.conn.as_ref().ok_or_else(|| gone(&self.backend.ctx))?,
            &self.backend.ctx,
            &mut self.orphans,
            self.search.get_mut(),
            self.counts.get_mut(),
            self.bulk.as_mut(),
        ))
    }

    fn indexed(&self) -> bool {
        self.backend.indexed
    }

    /// A write transaction keeps no ids of names for its reads: its own writes
    /// may remove names and create others.
    #[allow(clippy::unused_self)]
    fn end_ids(&self) -> Option<&EndIds> {
        None
    }

    /// A write transaction sees its own writes, which may name a node not yet
    /// created while its checks are deferred to commit.
    #[allow(clippy::unused_self)]
    fn sees_only_commits(&self) -> bool {
        false
    }

    fn format(&self) -> i64 {
        self.backend.format
    }

    /// The nodes waiting to be indexed (none once `before_search` has run).
    fn stale(&self, q: &Q<'_>) -> Result<crate::search::Stale> {
        crate::search::Stale::read(q, self.format())
    }

    /// Writes the transaction's changes to the number of nodes of each type, so
    /// that it counts its own writes.
    fn before_counts(&self) -> Result<()> {
        let conn = self.conn.as_ref().ok_or_else(|| gone(&self.backend.ctx))?;
        let mut counts = self.counts.try_borrow_mut().map_err(|_| {
            Error::backend("sqlite", "the node counts are being written".to_owned())
        })?;
        counts.write(conn, &self.backend.ctx)
    }

    /// Brings the search index up to date for every node waiting (this
    /// transaction's writes and those committed before), so that the search
    /// reads its own writes from the index, and hands the changes to FTS5.
    fn before_search(&self) -> Result<()> {
        let conn = self.conn.as_ref().ok_or_else(|| gone(&self.backend.ctx))?;
        let mut writes = self.search.try_borrow_mut().map_err(|_| {
            Error::backend("sqlite", "the search index is being written".to_owned())
        })?;
        // The list is emptied on this very connection: `data_version` will not say so.
        self.stale.set(None);
        crate::search::catch_up(conn, &self.backend.ctx, &mut writes)
    }
}

impl Drop for SqliteWrite<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Dropped without a commit (or after a failed one): roll back.
            if finish(&conn) {
                let grown = self.search.get_mut().grew_fts5_hash();
                self.backend
                    .release_writer_hinted(conn, grown, self.stale.take());
            } else {
                self.backend.release_writer(None);
            }
        }
    }
}

/// Forwards the [`ReadTxn`] contract to [`Q`], with the native overrides.
macro_rules! read_txn_via_sql {
    ($ty:ty) => {
        impl ReadTxn for $ty {
            fn get_node(&self, name: &str) -> Result<Option<Node>> {
                // One statement.
                self.q_one()?.get_node(name)
            }

            fn get_edge(&self, key: &EdgeKey) -> Result<Option<Edge>> {
                self.q()?.get_edge(key)
            }

            fn scan_nodes(
                &self,
                filter: &NodeFilter,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<Node>> {
                self.q()?.scan_nodes(filter, after, limit)
            }

            fn scan_edges(
                &self,
                filter: &EdgeFilter,
                after: Option<&EdgeKey>,
                limit: usize,
            ) -> Result<Vec<Edge>> {
                self.q()?.scan_edges(filter, after, limit)
            }

            fn for_each_node(&self, each: &mut dyn FnMut(&Node) -> Result<()>) -> Result<()> {
                self.q()?.for_each_node(each)
            }

            fn for_each_edge(&self, each: &mut dyn FnMut(&Edge) -> Result<()>) -> Result<()> {
                self.q()?.for_each_edge(each)
            }
            fn for_each_node_json(&self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
                self.q()?.for_each_node_json(each)
            }
            fn for_each_edge_json(&self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
                self.q()?.for_each_edge_json(each)
            }

            fn edges_of(
                &self,
                name: &str,
                direction: Direction,
                relations: &[RelationType],
            ) -> Result<Vec<Edge>> {
                self.q()?.edges_of(name, direction, relations)
            }

            fn dependents_of(&self, name: &str) -> Result<Vec<String>> {
                self.q()?.dependents_of(name)
            }

            fn count_nodes(&self) -> Result<u64> {
                self.before_counts()?;
                self.q()?.count_nodes(self.format())
            }

            fn count_edges(&self) -> Result<u64> {
                self.q()?.count_edges()
            }

            fn get_schema(&self, target: &SchemaTarget) -> Result<Option<Value>> {
                self.q()?.get_schema(target)
            }

            fn list_schemas(&self) -> Result<Vec<(SchemaTarget, Value)>> {
                self.q()?.list_schemas()
            }

            fn contains_node(&self, name: &str) -> Result<bool> {
                self.q()?.contains_node(name)
            }

            fn first_existing_node(&self, names: &[&str]) -> Result<Option<usize>> {
                self.q()?.first_existing_node(names)
            }

            fn contains_edge(&self, key: &EdgeKey) -> Result<bool> {
                self.q()?.contains_edge(key)
            }

            fn first_existing_edge(&self, edges: &[Edge]) -> Result<Option<usize>> {
                self.q()?.first_existing_edge(edges)
            }

            fn first_missing_node(&self, names: &[&str]) -> Result<Option<usize>> {
                self.q()?.first_missing_node(names)
            }

            fn resolve_dependencies(&self, name: &str) -> Result<Vec<String>> {
                // One statement; the reference reads again, on a snapshot of its own.
                match self
                    .q_one()?
                    .resolve_dependencies(name, self.sees_only_commits())?
                {
                    Some(order) => Ok(order),
                    // Not a clean DAG (mid-transaction): the reference names the problem.
                    None => {
                        self.begin()?;
                        algo::resolve_dependencies(self, name)
                    }
                }
            }

            fn resolve_dependents(&self, name: &str) -> Result<Vec<String>> {
                match self.q_one()?.resolve_dependents(name)? {
                    Some(order) => Ok(order),
                    None => {
                        self.begin()?;
                        algo::resolve_dependents(self, name)
                    }
                }
            }

            fn traverse(&self, start: &str, options: &TraverseOptions) -> Result<Vec<Visit>> {
                self.q()?.traverse(start, options)
            }

            fn traverse_node(
                &self,
                start: &str,
                options: &TraverseOptions,
            ) -> Result<Option<Vec<Visit>>> {
                if Q::traverse_is_one_statement(self.format() >= schema::NAMED_EDGES_SINCE, options)
                {
                    // One statement, which finds the start itself.
                    return self.q_one()?.traverse_node(start, options);
                }
                let q = self.q()?;
                if !q.contains_node(start)? {
                    return Ok(None);
                }
                q.traverse(start, options).map(Some)
            }

            fn edges_of_node(
                &self,
                name: &str,
                direction: Direction,
                relations: &[RelationType],
            ) -> Result<Option<Vec<Edge>>> {
                // One statement (its edges), or two when it has none (`Q::edges_of_node`):
                // the answer is one statement's either way.
                self.q_one()?.edges_of_node(
                    name,
                    direction,
                    relations,
                    self.sees_only_commits(),
                    self.end_ids(),
                )
            }

            fn neighbour_names(
                &self,
                name: &str,
                direction: Direction,
                relations: &[RelationType],
            ) -> Result<Option<Vec<String>>> {
                // One statement, or two as in `edges_of_node`.
                self.q_one()?
                    .neighbour_names(name, direction, relations, self.sees_only_commits())
            }

            fn reach(&self, start: &str, options: &ReachOptions) -> Result<Option<Vec<String>>> {
                self.q()?.reach(start, options)
            }

            fn reach_count(&self, start: &str, options: &ReachOptions) -> Result<Option<u64>> {
                let q = if Q::reach_count_is_one_statement(options) {
                    self.q_one()?
                } else {
                    self.q()?
                };
                q.reach_count(start, options)
            }

            fn stats(&self) -> Result<Stats> {
                self.before_counts()?;
                self.q()?.stats(self.format())
            }

            fn events(&self) -> Option<&dyn EventLogRead> {
                self.event_log()
            }

            fn search_terms(&self, terms: &TermQuery) -> Result<TermMatches<'_>> {
                self.before_search()?;
                if self.indexed() {
                    let q = self.q()?;
                    crate::search::terms(&q, terms, &self.stale(&q)?)
                } else {
                    kgstore_core::search::scan_terms(self, terms)
                }
            }

            fn search_names(&self, rows: &[i64]) -> Result<Vec<String>> {
                crate::search::names(&self.q()?, rows)
            }

            fn search_infix(&self, fragment: &str) -> Result<Vec<String>> {
                self.before_search()?;
                if self.indexed() {
                    let q = self.q()?;
                    crate::search::infix(&q, fragment, self.format(), &self.stale(&q)?)
                } else {
                    kgstore_core::search::scan_infix(self, fragment)
                }
            }

            fn documents(&self) -> Option<&dyn DocRead> {
                Some(self)
            }
        }

        impl EventLogRead for $ty {
            fn log_head(&self) -> Result<u64> {
                let q = self.q()?;
                crate::events::head(q.conn, q.ctx)
            }

            fn log_scan(&self, scan: &LogScan<'_>) -> Result<Vec<LogRecord>> {
                let q = self.q()?;
                crate::events::scan(q.conn, q.ctx, scan)
            }

            fn log_find_ids(&self, ids: &[&str]) -> Result<Vec<Option<LogRecord>>> {
                let q = self.q()?;
                crate::events::find_ids(q.conn, q.ctx, ids)
            }

            fn state_get(&self, space: &str, key: &str) -> Result<Option<Value>> {
                self.state_lookup(space, key)
            }

            fn state_scan(
                &self,
                space: &str,
                prefix: &str,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<(String, Value)>> {
                let q = self.q()?;
                crate::events::state_scan(q.conn, q.ctx, space, prefix, after, limit)
            }
        }
    };
}

read_txn_via_sql!(SqliteRead<'_>);
read_txn_via_sql!(SqliteRead<'_, HeldReader>);
read_txn_via_sql!(SqliteWrite<'_>);

impl<C: Reader> SqliteRead<'_, C> {
    fn state_lookup(&self, space: &str, key: &str) -> Result<Option<Value>> {
        let q = self.q()?;
        crate::events::state_get(q.conn, q.ctx, space, key)
    }
}

impl SqliteWrite<'_> {
    /// Through the writer's cache (see [`crate::events::StateCache`]).
    fn state_lookup(&self, space: &str, key: &str) -> Result<Option<Value>> {
        let q = self.q()?;
        let mut cache = self.state.borrow_mut();
        crate::events::state_get_cached(q.conn, q.ctx, &mut cache, space, key)
    }
}
doc_read_via_sql!(SqliteRead<'_>);
doc_read_via_sql!(SqliteRead<'_, HeldReader>);
doc_read_via_sql!(SqliteWrite<'_>);

impl SqliteWrite<'_> {
    fn docs(&self) -> Result<DocW<'_>> {
        Ok(DocW {
            conn: self.conn.as_ref().ok_or_else(|| gone(&self.backend.ctx))?,
            ctx: &self.backend.ctx,
        })
    }
}

impl DocWrite for SqliteWrite<'_> {
    fn put_doc(&mut self, input: &mut DocInput<'_>) -> Result<()> {
        self.docs()?.put_doc(input)
    }

    fn put_docs(&mut self, inputs: &mut [DocInput<'_>]) -> Result<()> {
        self.docs()?.put_docs(inputs)
    }

    fn delete_doc(&mut self, key: &str) -> Result<bool> {
        self.docs()?.delete_doc(key)
    }
}

/// The event log of a file older than the event store, opened read-only: it has none yet.
fn no_events_yet() -> &'static EventState {
    static EMPTY: std::sync::OnceLock<EventState> = std::sync::OnceLock::new();
    EMPTY.get_or_init(EventState::new)
}

impl<C: Reader> SqliteRead<'_, C>
where
    Self: EventLogRead,
{
    fn event_log(&self) -> Option<&dyn EventLogRead> {
        if self.pooled.backend.format >= schema::EVENTS_SINCE {
            Some(self)
        } else {
            Some(no_events_yet())
        }
    }
}

impl SqliteWrite<'_> {
    fn event_log(&self) -> Option<&dyn EventLogRead> {
        Some(self)
    }
}

impl EventLogWrite for SqliteWrite<'_> {
    fn log_append(&mut self, records: &[LogRecord]) -> Result<()> {
        let q = self.q()?;
        crate::events::append(q.conn, q.ctx, records)
    }

    fn log_append_new(&mut self, records: &[NewRecord<'_>]) -> Result<()> {
        let q = self.q()?;
        crate::events::append_new(q.conn, q.ctx, records, false).map(drop)
    }

    /// The insert finds known ids itself (`UNIQUE(id)`): no lookup first.
    fn log_append_new_unless_known(&mut self, records: &[NewRecord<'_>]) -> Result<bool> {
        let q = self.q()?;
        crate::events::append_new(q.conn, q.ctx, records, true)
    }

    fn log_remove(&mut self, stream: &str, which: RemoveWhere) -> Result<u64> {
        let q = self.q()?;
        crate::events::remove(q.conn, q.ctx, stream, which)
    }

    fn log_clear(&mut self) -> Result<()> {
        let q = self.q()?;
        crate::events::clear_cached(q.conn, q.ctx, &mut self.state.borrow_mut())
    }

    fn state_put(&mut self, space: &str, key: &str, value: &Value) -> Result<()> {
        let q = self.q()?;
        let mut cache = self.state.borrow_mut();
        crate::events::state_put_cached(q.conn, q.ctx, &mut cache, space, key, value)
    }

    fn state_delete(&mut self, space: &str, key: &str) -> Result<bool> {
        let q = self.q()?;
        let mut cache = self.state.borrow_mut();
        crate::events::state_delete_cached(q.conn, q.ctx, &mut cache, space, key)
    }
}

impl WriteTxn for SqliteWrite<'_> {
    fn put_node(&mut self, node: &Node) -> Result<()> {
        self.w()?.put_node(node)
    }

    fn put_nodes(&mut self, nodes: &[Node]) -> Result<()> {
        let written = self.w()?.put_nodes(nodes);
        self.renew_if_unchecked(nodes.len())?;
        written
    }

    fn delete_node(&mut self, name: &str) -> Result<bool> {
        self.w()?.delete_node(name)
    }

    fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        self.w()?.put_edge(edge)
    }

    fn put_edges(&mut self, edges: &[Edge]) -> Result<()> {
        let written = self.w()?.put_edges(edges);
        self.renew_if_unchecked(edges.len())?;
        written
    }

    fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        self.w()?.delete_edge(key)
    }

    fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        self.w()?.put_schema(target, schema)
    }

    fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        self.w()?.delete_schema(target)
    }

    fn events_mut(&mut self) -> Option<&mut dyn EventLogWrite> {
        Some(self)
    }

    fn documents_mut(&mut self) -> Option<&mut dyn DocWrite> {
        Some(self)
    }

    /// Drops the edges' secondary indexes until [`WriteTxn::bulk_load_end`], keeps
    /// the ids of the names the load writes for its edges' endpoints, and checks no
    /// foreign keys until its end (core checked every reference).
    fn bulk_load_begin(&mut self) -> Result<()> {
        if self.bulk.is_none() {
            // The load turns foreign key checks off on this connection: a fresh
            // one replaces it after this transaction, committed or not.
            self.backend.writer_grown.store(true, Ordering::Relaxed);
            self.w()?.bulk_load_begin()?;
            self.bulk = Some(BulkLoad::default());
        }
        Ok(())
    }

    /// Builds the edges' secondary indexes again.
    fn bulk_load_end(&mut self) -> Result<()> {
        if self.bulk.is_some() {
            self.w()?.bulk_load_end()?;
            self.bulk = None;
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        // A load never ended commits with its indexes (core never commits one).
        self.bulk_load_end()?;
        let conn = self.conn.as_ref().ok_or_else(|| gone(&self.backend.ctx))?;
        let ctx = &self.backend.ctx;
        self.counts.get_mut().write(conn, ctx)?;
        // Whether the list of nodes waiting to be indexed is known to be long
        // still: then it is not read ([`StaleHint`]).
        let known = match self.stale.take() {
            Some(version) if crate::search::data_version(conn, ctx)? == version => Some(version),
            _ => None,
        };
        let search = self.search.get_mut();
        let backlog = crate::search::after_writes(conn, ctx, search, known.is_some())?;
        let hint = match (backlog, known) {
            (crate::search::Backlog::Long, Some(version)) => Some(version),
            (crate::search::Backlog::Long, None) => Some(crate::search::data_version(conn, ctx)?),
            _ => None,
        };
        // (Deletions leave the index at once: their changes go to FTS5 now.)
        search.flush(conn, ctx)?;
        self.w()?.sweep()?;
        let conn = self.conn.as_ref().ok_or_else(|| gone(&self.backend.ctx))?;
        run(conn, &self.backend.ctx, "COMMIT", || "committing".into())?;
        *lock(&self.backend.state_cache) = self.state.take().committed();
        self.stale.set(hint);
        if conn.total_changes().saturating_sub(self.changes_at_begin) >= BIG_WRITE_ROWS {
            let backend = self.backend;
            if let Some(conn) = self.conn.as_mut() {
                backend.cut_back_log(conn);
            }
        }
        match backlog {
            crate::search::Backlog::Long => {
                self.backend.search_backlog.store(true, Ordering::Relaxed);
            }
            crate::search::Backlog::CaughtUp => {
                self.backend.search_backlog.store(false, Ordering::Relaxed);
            }
            crate::search::Backlog::Short => {}
        }
        Ok(())
        // Drop gives the connection back.
    }
}

impl Backend for SqliteBackend {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        self.own_read(false, true)
    }

    /// Both on one snapshot, begun while SQLite's write lock is held
    /// ([`SqliteBackend::read_pair`]).
    fn begin_read_pair(
        &self,
    ) -> Result<(Box<dyn ReadTxn + '_>, Option<Box<dyn ReadTxn + Send + '_>>)> {
        let (first, second) = self.read_pair()?;
        Ok((
            Box::new(first),
            second.map(|txn| Box::new(txn) as Box<dyn ReadTxn + Send + '_>),
        ))
    }

    /// A deferred transaction whose snapshot is the call's first query's: one
    /// statement less than `begin_read` on every store-level read.
    fn begin_call(&self) -> Result<Box<dyn ReadTxn + '_>> {
        self.own_read(true, false)
    }

    /// No transaction until the method asks for one: a method of one statement
    /// (`get_node`, a small document's `doc_bytes`) runs without `BEGIN` and
    /// `ROLLBACK`, a sixth of its work; a document kept in chunks, which takes
    /// several statements, begins a transaction first (`Q::doc_bytes`).
    fn begin_one(&self) -> Result<Box<dyn ReadTxn + '_>> {
        self.own_read(false, false)
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        let (conn, stale) = self.take_writer_hinted()?;
        let changes_at_begin = conn.total_changes();
        let txn = SqliteWrite {
            backend: self,
            conn: Some(conn),
            orphans: HashSet::new(),
            search: RefCell::new(SearchWrites::default()),
            counts: RefCell::new(TypeCounts::default()),
            bulk: None,
            state: RefCell::new(std::mem::take(&mut *lock(&self.state_cache))),
            // A rollback gives it back as it came: the list is as it was (a
            // transaction that caught up forgot it, `before_search`).
            stale: Cell::new(stale),
            changes_at_begin,
        };
        let conn = txn.conn.as_ref().ok_or_else(|| gone(&self.ctx))?;
        // Take the write lock now, so the transaction reads the latest commit and
        // cannot fail to upgrade later; waits up to the lock timeout for other processes.
        let (calls, started) = (crate::perf::busy_calls(), Instant::now());
        let begun = run(conn, &self.ctx, "BEGIN IMMEDIATE", || {
            "starting a write transaction".into()
        });
        if crate::perf::busy_calls() != calls {
            self.counters.lock_waits.fetch_add(1, Ordering::Relaxed);
            kgstore_core::observe::lock_wait(
                &format_args!("SQLite database {}", self.ctx.path.display()),
                Some("another connection or process (SQLite does not say which)"),
                started.elapsed(),
                begun.is_ok(),
            );
        }
        begun?;
        Ok(Box::new(txn))
    }

    /// SQLite's `PRAGMA integrity_check` and `foreign_key_check`, the schema
    /// compared with this format's, and the agreement of kgstore's own index
    /// tables with the rows they index.
    fn check(&self) -> Result<Vec<Problem>> {
        crate::maintenance::check(self)
    }

    /// `ANALYZE`, `VACUUM` when a quarter or more of the file is free pages, and a
    /// checkpoint that truncates the write-ahead log.
    fn optimize(&self) -> Result<()> {
        crate::maintenance::optimize(self)
    }

    /// A consistent copy made with SQLite's online backup API while writers go on,
    /// written under a temporary name and moved into place.
    fn backup_native(&self, dest: &Path) -> Result<()> {
        crate::maintenance::backup(self, dest)
    }

    fn durability(&self) -> Option<kgstore_core::Durability> {
        Some(self.options.durability)
    }

    /// Page-cache hits, misses and writes of the connections, waits for SQLite's lock,
    /// and the sizes of the file and its write-ahead log.
    fn figures(&self) -> Result<Vec<kgstore_core::BackendFigure>> {
        for conn in lock(&self.readers).iter() {
            self.counters.collect(conn);
        }
        self.holders.with_idle(|conn| self.counters.collect(conn));
        if let Some(conn) = &lock(&self.writer).conn {
            self.counters.collect(conn);
        }
        Ok(self.counters.figures(&self.ctx.path))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kgstore_core::{GraphRead, Store};

    /// How the next snapshot read of [`SqliteRead::begin_now`] on this thread fails
    /// (a seam for tests only: compiled into no other build).
    #[derive(Clone, Copy, Debug)]
    enum SnapshotReadFault {
        /// As on an I/O error or out of memory, which SQLite answers by rolling the
        /// transaction back: the connection is in autocommit after.
        EndsTheTransaction,
        /// As on an error that leaves the transaction open (`SQLITE_BUSY`, say).
        KeepsTheTransaction,
    }

    thread_local! {
        static SNAPSHOT_READ_FAULT: Cell<Option<SnapshotReadFault>> = const { Cell::new(None) };
    }

    /// Fails once, as [`SNAPSHOT_READ_FAULT`] says, if it is set on this thread.
    pub(super) fn snapshot_read_fault(conn: &Connection, ctx: &Ctx) -> Result<()> {
        let Some(fault) = SNAPSHOT_READ_FAULT.take() else {
            return Ok(());
        };
        if let SnapshotReadFault::EndsTheTransaction = fault {
            run(conn, ctx, "ROLLBACK", || {
                "ending the read as SQLite would".into()
            })?;
        }
        Err(Error::io(
            &ctx.path,
            io::Error::other(format!("injected: {fault:?}")),
        ))
    }

    /// Regression (session 15's review mend, untested until now): a read pair whose
    /// first read's `BEGIN` ran under the write lock but whose snapshot read failed
    /// falls back to that read alone, on the same reader connection. Where SQLite
    /// ended the transaction on the error, the read is begun again (else its
    /// statements would each see the latest commit: no snapshot at all); where the
    /// transaction is still open, it is not (a second `BEGIN` would fail). Either
    /// way the read sees one snapshot, the one taken when the pair returned, and
    /// no third reader is opened (counted with a pool that keeps none idle).
    #[test]
    fn regression_a_pair_whose_snapshot_read_failed_begins_its_one_read_again_if_ended() {
        for fault in [
            SnapshotReadFault::EndsTheTransaction,
            SnapshotReadFault::KeepsTheTransaction,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("kg.db");
            let options = SqliteOptions::default().reader_pool_size(0);
            // Another handle writes.
            let s = Store::new(SqliteBackend::open(&path, options.clone()).unwrap());
            s.create_node(Node::new("a", "thing").unwrap()).unwrap();
            let backend = SqliteBackend::open(&path, options).unwrap();
            // The open may leave a reader idle: a first pair takes it (and closes both).
            drop(backend.begin_read_pair().unwrap());
            let opens = || backend.counters.reader_opens.load(Ordering::Relaxed);
            let before = opens();
            SNAPSHOT_READ_FAULT.set(Some(fault));
            let (first, second) = backend.begin_read_pair().unwrap();
            assert!(
                SNAPSHOT_READ_FAULT.get().is_none(),
                "{fault:?}: not reached"
            );
            assert!(second.is_none(), "{fault:?}");
            assert_eq!(opens() - before, 2, "{fault:?}");
            // A commit after the pair returned is not in its read.
            s.create_node(Node::new("b", "thing").unwrap()).unwrap();
            assert_eq!(first.count_nodes().unwrap(), 1, "{fault:?}");
            assert_eq!(first.get_node("b").unwrap(), None, "{fault:?}");
            drop(first);
            assert_eq!(s.count_nodes().unwrap(), 2, "{fault:?}");
            let (first, second) = backend.begin_read_pair().unwrap();
            assert!(second.is_some(), "{fault:?}");
            assert_eq!(first.count_nodes().unwrap(), 2, "{fault:?}");
        }
    }

    /// A store of three nodes `a → b → c` (relation `calls`), written by a handle of
    /// its own, and the backend under test on the same file.
    fn graph(path: &Path, pool: usize) -> (Store, SqliteBackend) {
        let s = Store::new(SqliteBackend::open(path, SqliteOptions::default()).unwrap());
        for name in ["a", "b", "c"] {
            s.create_node(Node::new(name, "thing").unwrap()).unwrap();
        }
        edge(&s, "a", "b");
        edge(&s, "b", "c");
        let options = SqliteOptions::default().reader_pool_size(pool);
        (s, SqliteBackend::open(path, options).unwrap())
    }

    fn edge(s: &Store, from: &str, to: &str) {
        s.create_edge(
            kgstore_core::Edge::new(from, kgstore_core::RelationType::Calls, to).unwrap(),
        )
        .unwrap();
    }

    /// What a two-hop start of the peers workload reads, on one snapshot.
    fn two_hop(b: &SqliteBackend, start: &str) -> Vec<String> {
        let snapshot = b.begin_read().unwrap();
        let out = |name: &str| {
            snapshot
                .edges_of_node(name, Direction::Out, &[])
                .unwrap()
                .unwrap()
        };
        out(start)
            .iter()
            .flat_map(|edge| out(&edge.to))
            .map(|edge| edge.to)
            .collect()
    }

    fn opens(b: &SqliteBackend) -> u64 {
        b.counters.reader_opens.load(Ordering::Relaxed)
    }

    fn has(read: &dyn ReadTxn, name: &str) -> bool {
        read.get_node(name).unwrap().is_some()
    }

    /// Session 17: a thread's snapshots read on its held reader, whose statements
    /// (`BEGIN`, the snapshot read, the edge and node reads, `COMMIT`) are prepared
    /// once and kept; no connection is opened after the first snapshot; the pool
    /// keeps its own idle connections beside the held reader.
    #[test]
    fn a_thread_s_snapshots_read_on_its_held_reader_and_keep_its_statements() {
        let dir = tempfile::tempdir().unwrap();
        let (_s, b) = graph(&dir.path().join("kg.db"), 2);
        assert_eq!(two_hop(&b, "a"), ["c"]);
        assert_eq!(b.holders.count(), 1);
        let kept = b.holders.idle_statements().unwrap();
        assert!(kept >= 4, "{kept}");
        let before = opens(&b);
        for _ in 0..3 {
            assert_eq!(two_hop(&b, "a"), ["c"]);
            assert!(has(&*b.begin_one().unwrap(), "b"));
            assert!(has(&*b.begin_read().unwrap(), "c"));
            assert!(has(&*b.begin_call().unwrap(), "a"));
        }
        assert_eq!(opens(&b), before);
        assert_eq!(b.holders.count(), 1);
        // The node's read (one statement) added its statement, nothing else did.
        assert_eq!(b.holders.idle_statements().unwrap(), kept + 1);
        // A pair reads on pooled connections, which the pool keeps (two) beside
        // the held reader; a second thread has its own held reader, and a third
        // reads on a pooled connection (two threads hold one already).
        let (first, second) = b.begin_read_pair().unwrap();
        assert!(has(&*first, "a"));
        assert!(has(&*second.unwrap(), "a"));
        drop(first);
        assert_eq!(lock(&b.readers).len(), 2);
        let (stay, stayed) = std::sync::mpsc::channel::<()>();
        let (held, holding) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let b = &b;
            scope.spawn(move || {
                assert_eq!(two_hop(b, "a"), ["c"]);
                held.send(()).unwrap();
                stayed.recv().unwrap();
            });
            holding.recv().unwrap();
            assert_eq!(b.holders.count(), 2);
            scope
                .spawn(|| {
                    assert!(two_hop(b, "b").is_empty());
                    b.holders.idle_statements()
                })
                .join()
                .map(|idle| assert_eq!(idle, None))
                .unwrap();
            assert_eq!(b.holders.count(), 2);
            stay.send(()).unwrap();
        });
    }

    /// Session 17: a snapshot within a snapshot of the same thread reads on a pooled
    /// connection (the held reader is taken), each on its own snapshot; the held
    /// reader is idle again after.
    #[test]
    fn a_snapshot_within_a_snapshot_of_one_thread_reads_on_a_pooled_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (s, b) = graph(&dir.path().join("kg.db"), 4);
        let outer = b.begin_read().unwrap();
        assert!(b.holders.idle_statements().is_none());
        s.create_node(Node::new("d", "thing").unwrap()).unwrap();
        let inner = b.begin_read().unwrap();
        assert!(!has(&*outer, "d"));
        assert!(has(&*inner, "d"));
        assert_eq!(b.holders.count(), 1);
        drop(inner);
        assert!(b.holders.idle_statements().is_none());
        drop(outer);
        assert!(b.holders.idle_statements().is_some());
        assert!(has(&*b.begin_read().unwrap(), "d"));
    }

    /// Session 17: a held reader whose statements were prepared before another
    /// connection changed the schema (a new table and indexes, a `VACUUM`) reads
    /// right after: SQLite prepares them again.
    #[test]
    fn a_held_reader_reads_right_after_another_connection_changes_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kg.db");
        let (s, b) = graph(&path, 4);
        assert_eq!(two_hop(&b, "a"), ["c"]);
        assert!(has(&*b.begin_one().unwrap(), "a"));
        let kept = b.holders.idle_statements().unwrap();
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch(
                "CREATE TABLE extra(x); CREATE INDEX extra_x ON extra(x); \
                 CREATE INDEX edges_extra ON edges(weight); VACUUM;",
            )
            .unwrap();
        edge(&s, "c", "a");
        assert_eq!(two_hop(&b, "b"), ["a"]);
        assert_eq!(two_hop(&b, "a"), ["c"]);
        other
            .execute_batch("DROP INDEX edges_extra; DROP TABLE extra; VACUUM;")
            .unwrap();
        assert_eq!(two_hop(&b, "c"), ["b"]);
        assert!(has(&*b.begin_one().unwrap(), "a"));
        assert_eq!(b.holders.idle_statements().unwrap(), kept);
        assert_eq!(b.holders.count(), 1);
    }

    /// A thread that reads on `b` (taking a held reader), lets go of it and says so
    /// (`read`), then at `go` reads another backend (whose take removes the entries of
    /// backends gone) and says so again, then ends at the next `go`.
    fn outliving_reader(
        b: &std::sync::Arc<SqliteBackend>,
    ) -> (
        std::thread::JoinHandle<()>,
        std::sync::mpsc::Sender<()>,
        std::sync::mpsc::Receiver<()>,
    ) {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (done, read) = std::sync::mpsc::channel::<()>();
        let b = std::sync::Arc::clone(b);
        let thread = std::thread::spawn(move || {
            assert_eq!(two_hop(&b, "a"), ["c"]);
            drop(b);
            done.send(()).unwrap();
            wait.recv().unwrap();
            let other = tempfile::tempdir().unwrap();
            let (t, c) = graph(&other.path().join("other.db"), 4);
            assert_eq!(two_hop(&c, "a"), ["c"]);
            drop((t, c));
            done.send(()).unwrap();
            wait.recv().unwrap();
        });
        (thread, go, read)
    }

    /// Session 17: the backend's drop closes the held reader of the thread that
    /// drops it, and a thread's end closes its own: the last connection's close
    /// then removes the write-ahead log. A thread that outlives the backend keeps
    /// its held reader until it next takes one (of any backend).
    #[test]
    fn held_readers_close_with_the_backend_or_their_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: u8| dir.path().join(format!("kg{n}.db"));
        let wal = |n: u8| dir.path().join(format!("kg{n}.db-wal"));
        // This thread's, closed by the drop.
        let (s, b) = graph(&path(1), 4);
        assert_eq!(two_hop(&b, "a"), ["c"]);
        drop((s, b));
        assert!(!wal(1).exists());
        // Another thread's, closed when it ends.
        // (Joined, not scoped: a scope may end before the thread's locals are dropped.)
        let (s, b) = graph(&path(2), 4);
        let b = std::sync::Arc::new(b);
        let reader = std::sync::Arc::clone(&b);
        std::thread::spawn(move || assert_eq!(two_hop(&reader, "a"), ["c"]))
            .join()
            .unwrap();
        assert_eq!(b.holders.count(), 0);
        drop((s, b));
        assert!(!wal(2).exists());
        // Another thread's that outlives the backend: closed at its next take.
        let (s, b) = graph(&path(3), 4);
        let b = std::sync::Arc::new(b);
        let (thread, go, read) = outliving_reader(&b);
        read.recv().unwrap();
        drop((s, b));
        assert!(wal(3).exists());
        // The log stays, but the drop checkpointed it: the database file alone
        // holds every commit (a copy of it without the log reads them all).
        assert_eq!(std::fs::metadata(wal(3)).unwrap().len(), 0);
        std::fs::copy(path(3), path(4)).unwrap();
        let copy = SqliteBackend::open(path(4), SqliteOptions::default()).unwrap();
        assert!(has(&*copy.begin_one().unwrap(), "a"));
        drop(copy);
        go.send(()).unwrap();
        read.recv().unwrap();
        assert!(!wal(3).exists());
        go.send(()).unwrap();
        thread.join().unwrap();

        // A thread that outlives the backend while the store's files are removed and
        // a new store is made at the same path: its held reader's late close (the
        // last on the old file) must not unlink the new store's log by name. SQLite
        // sees that the file it has open was unlinked (`SQLITE_FCNTL_HAS_MOVED`) and
        // then neither checkpoints nor deletes at close; this pins that down.
        let (s, b) = graph(&path(5), 4);
        let b = std::sync::Arc::new(b);
        let (thread, go, read) = outliving_reader(&b);
        read.recv().unwrap();
        drop((s, b));
        for end in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("kg5.db{end}")));
        }
        let fresh = Store::new(SqliteBackend::open(path(5), SqliteOptions::default()).unwrap());
        fresh
            .create_node(Node::new("new", "thing").unwrap())
            .unwrap();
        go.send(()).unwrap();
        read.recv().unwrap();
        go.send(()).unwrap();
        thread.join().unwrap();
        assert!(wal(5).exists(), "the new store's log was unlinked");
        fresh
            .create_node(Node::new("newer", "thing").unwrap())
            .unwrap();
        drop(fresh);
        let reopened = SqliteBackend::open(path(5), SqliteOptions::default()).unwrap();
        assert!(has(&*reopened.begin_one().unwrap(), "new"));
        assert!(has(&*reopened.begin_one().unwrap(), "newer"));
    }
}
