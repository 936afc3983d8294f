//! What a store did, how long it took and what went wrong: `tracing` spans and
//! events, and per-store metrics (counters and latency histograms).
//!
//! kgstore installs no `tracing` subscriber: an application (or the `kgstore` CLI)
//! chooses where logs go. Without one, every span and event costs one relaxed
//! atomic load. What is logged at which level is in `docs/observability.md`; in
//! short, names, keys and payloads appear only at `debug` and `trace`.
//!
//! Each [`Store`](crate::Store) has an [`Observer`] that keeps its [`Metrics`]:
//! atomic counters and fixed-bucket histograms ([`Histogram`]). Reads are counted
//! one by one and one read in [`READ_SAMPLE_EVERY`] is timed (a clock read costs
//! more than a fast read on some machines); every read is timed while a
//! slow-operation threshold is set. Metrics can be turned off per store at any
//! time ([`Observer::set_enabled`]); errors and slow operations are counted anyway.
//!
//! Backends report what only they can see through the free functions here:
//! [`lock_wait`], [`retry`], [`recovery`]. They are attributed to the store whose
//! write transaction (or open, in the facade) is running on the calling thread.

mod histogram;
mod metrics;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::Level;

use histogram::AtomicHistogram;
pub use histogram::Histogram;
pub use metrics::{BackendFigure, FigureKind, Metrics, OpMetrics};

use crate::durability::Durability;
use crate::error::{Error, ErrorKind, Result};
use crate::timestamp::Timestamp;

/// One read in this many is timed for the read latency histogram (every read
/// while a slow-operation threshold is set).
pub const READ_SAMPLE_EVERY: u32 = 32;

/// On a backend without durability (the memory backend, whose commits reach no
/// disk), one write transaction in this many is timed for the write and commit
/// latency histograms (every one while a slow-operation threshold is set). Its
/// writes take about as long as the three clock reads that timing one costs; on
/// every other backend each write transaction is timed.
pub const WRITE_SAMPLE_EVERY: u32 = 32;

/// Stripes of the read counters, so that threads reading at once do not all
/// update one cache line.
const STRIPES: usize = 8;

/// A kind of operation, as named in logs (`op` field) and in slow-operation events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A query on a snapshot.
    Read,
    /// A write transaction.
    Write,
    /// Opening a store.
    Open,
    /// A backup.
    Backup,
    /// Verifying a backup.
    Verify,
    /// A restore.
    Restore,
    /// A check of the store.
    Check,
    /// Reorganising the store.
    Optimize,
    /// Reading a file into the store.
    Import,
    /// Writing the store to a file.
    Export,
}

impl Operation {
    /// The name in logs: `read`, `write`, `open`, `backup`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Open => "open",
            Self::Backup => "backup",
            Self::Verify => "verify",
            Self::Restore => "restore",
            Self::Check => "check",
            Self::Optimize => "optimize",
            Self::Import => "import",
            Self::Export => "export",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Milliseconds as a number for log fields (microsecond precision).
pub fn millis(d: Duration) -> f64 {
    (d.as_nanos() as f64 / 1_000.0).round() / 1_000.0
}

/// The level a failure of this kind is logged at: `error` for what needs attention
/// (I/O, corruption, backend failures), `warn` for a lock not obtained, `info` for
/// refusals of the caller's input (validation, conflicts, not found, …).
pub fn level_of(kind: ErrorKind) -> Level {
    match kind {
        ErrorKind::Io | ErrorKind::Corrupt | ErrorKind::Backend => Level::ERROR,
        ErrorKind::Locked => Level::WARN,
        _ => Level::INFO,
    }
}

/// A `tracing` event at a level chosen at run time.
#[macro_export]
#[doc(hidden)]
macro_rules! event_at {
    ($level:expr, $($rest:tt)*) => {
        match $level {
            ::tracing::Level::ERROR => ::tracing::error!($($rest)*),
            ::tracing::Level::WARN => ::tracing::warn!($($rest)*),
            ::tracing::Level::INFO => ::tracing::info!($($rest)*),
            ::tracing::Level::DEBUG => ::tracing::debug!($($rest)*),
            _ => ::tracing::trace!($($rest)*),
        }
    };
}

/// Logs a failed operation: its kind at the level [`level_of`] gives, with the
/// message (which may name entities) only where it is needed to act (errors and
/// lock failures) and otherwise at `debug`.
pub fn failed(op: Operation, error: &Error) {
    failed_after(op, error, None);
}

/// [`failed`], with the time the operation took.
fn failed_after(op: Operation, error: &Error, elapsed: Option<Duration>) {
    let kind = error.kind();
    let level = level_of(kind);
    let elapsed_ms = elapsed.map(millis);
    if level <= Level::WARN {
        event_at!(level, op = op.as_str(), error_kind = kind.as_str(), error = %error, elapsed_ms, "operation failed");
    } else {
        tracing::info!(
            op = op.as_str(),
            error_kind = kind.as_str(),
            elapsed_ms,
            "operation refused"
        );
        tracing::debug!(op = op.as_str(), error_kind = kind.as_str(), error = %error, "refusal");
    }
}

/// A counter padded to its own cache line.
#[derive(Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

/// Counts and latencies of one kind of operation.
#[derive(Default)]
struct OpRecorder {
    /// Operations recorded without a duration; the timed ones are counted by
    /// `latency` alone, so that recording a timed operation (every write
    /// transaction and commit) takes one locked addition fewer.
    untimed: AtomicU64,
    errors: AtomicU64,
    latency: AtomicHistogram,
}

impl OpRecorder {
    #[inline]
    fn record(&self, elapsed: Option<Duration>, ok: bool) {
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        match elapsed {
            Some(elapsed) => self.latency.record(elapsed),
            None => {
                self.untimed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn snapshot(&self) -> OpMetrics {
        let latency = self.latency.snapshot();
        OpMetrics {
            count: self.untimed.load(Ordering::Relaxed) + latency.count,
            errors: self.errors.load(Ordering::Relaxed),
            latency,
        }
    }

    fn reset(&self) {
        self.untimed.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        self.latency.reset();
    }
}

/// What an [`Observer`]'s clones share.
struct Shared {
    enabled: AtomicBool,
    /// The slow-operation threshold in nanoseconds; 0 when off.
    slow_nanos: AtomicU64,
    reads: [Padded; STRIPES],
    read_errors: AtomicU64,
    read_latency: AtomicHistogram,
    writes: OpRecorder,
    commits: OpRecorder,
    lock_waits: OpRecorder,
    backups: OpRecorder,
    restores: OpRecorder,
    entities_written: AtomicU64,
    slow_operations: AtomicU64,
    retries: AtomicU64,
    recovery_actions: AtomicU64,
    errors_by_kind: Mutex<BTreeMap<&'static str, u64>>,
    since: Mutex<(Timestamp, Instant)>,
}

/// A store's metrics and logging settings. Cheap to clone; clones share everything.
///
/// A [`Store`](crate::Store) makes its own; the facade makes one before opening a
/// backend so that what happens during the open (lock waits, recovery) is counted.
#[derive(Clone)]
pub struct Observer {
    shared: Arc<Shared>,
}

impl Default for Observer {
    fn default() -> Self {
        Self::new(true, None)
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observer")
            .field("enabled", &self.enabled())
            .field("slow_threshold", &self.slow_threshold())
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// The observers of the operations running on this thread, innermost last.
    static CONTEXT: RefCell<Vec<Arc<Shared>>> = const { RefCell::new(Vec::new()) };
    /// This thread's stripe of the read counters.
    static STRIPE: usize = next_stripe();
    /// Reads on this thread since the last timed one.
    static TICK: Cell<u32> = const { Cell::new(0) };
    /// Sampled write transactions on this thread since the last timed one
    /// ([`WRITE_SAMPLE_EVERY`]).
    static WRITE_TICK: Cell<u32> = const { Cell::new(0) };
}

/// Whether the next of a sampled series counted by `tick` is timed: one in `every`,
/// starting with the first.
fn sample(tick: &'static std::thread::LocalKey<Cell<u32>>, every: u32) -> bool {
    tick.try_with(|tick| {
        let n = tick.get();
        tick.set(if n + 1 >= every { 0 } else { n + 1 });
        n == 0
    })
    .unwrap_or(true)
}

fn next_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES
}

/// While alive, reports of backends on this thread ([`lock_wait`], [`retry`],
/// [`recovery`]) count in the observer that made it. Not `Send`: it belongs to the
/// thread it was made on.
#[must_use = "the context ends when the guard is dropped"]
pub struct ContextGuard {
    _thread_bound: PhantomData<*const ()>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| {
            c.borrow_mut().pop();
        });
    }
}

/// Runs `f` on the observer of the innermost operation running on this thread.
fn with_current(f: impl FnOnce(&Shared)) {
    CONTEXT.with(|c| {
        if let Some(shared) = c.borrow().last() {
            f(shared);
        }
    });
}

impl Observer {
    /// An observer keeping metrics (or not) and logging operations slower than
    /// `slow` (none if `None`).
    pub fn new(enabled: bool, slow: Option<Duration>) -> Self {
        let observer = Self {
            shared: Arc::new(Shared {
                enabled: AtomicBool::new(enabled),
                slow_nanos: AtomicU64::new(0),
                reads: Default::default(),
                read_errors: AtomicU64::new(0),
                read_latency: AtomicHistogram::default(),
                writes: OpRecorder::default(),
                commits: OpRecorder::default(),
                lock_waits: OpRecorder::default(),
                backups: OpRecorder::default(),
                restores: OpRecorder::default(),
                entities_written: AtomicU64::new(0),
                slow_operations: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                recovery_actions: AtomicU64::new(0),
                errors_by_kind: Mutex::new(BTreeMap::new()),
                since: Mutex::new((Timestamp::now(), Instant::now())),
            }),
        };
        observer.set_slow_threshold(slow);
        observer
    }

    /// Whether metrics are kept.
    pub fn enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Relaxed)
    }

    /// Turns metrics on or off (at once, for every clone of the store). Off, the store
    /// still counts errors and slow operations and still logs; it keeps no counts or
    /// latencies of successful operations.
    pub fn set_enabled(&self, enabled: bool) {
        self.shared.enabled.store(enabled, Ordering::Relaxed);
    }

    /// The slow-operation threshold, if set.
    pub fn slow_threshold(&self) -> Option<Duration> {
        match self.shared.slow_nanos.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    /// Sets (or, with `None`, clears) the threshold above which an operation is logged
    /// as slow (a `warn` event with its kind and duration) and counted. While it is
    /// set, every read is timed.
    pub fn set_slow_threshold(&self, threshold: Option<Duration>) {
        let nanos = threshold.map_or(0, |t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        self.shared
            .slow_nanos
            .store(nanos.max(u64::from(threshold.is_some())), Ordering::Relaxed);
    }

    /// Makes backends' reports on this thread count in this observer until the guard
    /// is dropped.
    pub fn enter(&self) -> ContextGuard {
        CONTEXT.with(|c| c.borrow_mut().push(Arc::clone(&self.shared)));
        ContextGuard {
            _thread_bound: PhantomData,
        }
    }

    /// The metrics kept so far (without backend figures, which the store adds).
    pub fn metrics(&self, backend: &str) -> Metrics {
        let s = &*self.shared;
        let (since, started) = *s.since.lock().unwrap_or_else(PoisonError::into_inner);
        let count: u64 = s.reads.iter().map(|p| p.0.load(Ordering::Relaxed)).sum();
        Metrics {
            backend: backend.to_owned(),
            enabled: self.enabled(),
            since,
            seconds: started.elapsed().as_secs_f64(),
            runs: 1,
            read_sample_every: if self.slow_threshold().is_some() {
                1
            } else {
                READ_SAMPLE_EVERY
            },
            // The store sets it from its backend ([`Observer::write_sample_every`]).
            write_sample_every: 1,
            reads: OpMetrics {
                count,
                errors: s.read_errors.load(Ordering::Relaxed),
                latency: s.read_latency.snapshot(),
            },
            write_transactions: s.writes.snapshot(),
            commits: s.commits.snapshot(),
            lock_waits: s.lock_waits.snapshot(),
            backups: s.backups.snapshot(),
            restores: s.restores.snapshot(),
            entities_written: s.entities_written.load(Ordering::Relaxed),
            slow_operations: s.slow_operations.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            recovery_actions: s.recovery_actions.load(Ordering::Relaxed),
            errors_by_kind: s
                .errors_by_kind
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            backend_figures: Vec::new(),
        }
    }

    /// Forgets every count and latency; counting starts again now.
    pub fn reset(&self) {
        let s = &*self.shared;
        for stripe in &s.reads {
            stripe.0.store(0, Ordering::Relaxed);
        }
        s.read_errors.store(0, Ordering::Relaxed);
        s.read_latency.reset();
        for op in [
            &s.writes,
            &s.commits,
            &s.lock_waits,
            &s.backups,
            &s.restores,
        ] {
            op.reset();
        }
        for counter in [
            &s.entities_written,
            &s.slow_operations,
            &s.retries,
            &s.recovery_actions,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        s.errors_by_kind
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *s.since.lock().unwrap_or_else(PoisonError::into_inner) =
            (Timestamp::now(), Instant::now());
    }

    /// Counts a failure by its kind.
    fn count_error(&self, kind: ErrorKind) {
        let mut by_kind = self
            .shared
            .errors_by_kind
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *by_kind.entry(kind.as_str()).or_default() += 1;
    }

    /// The threshold in milliseconds if an operation that took `elapsed` is slow, which
    /// is then counted; the caller logs it (one event: its usual end event, raised to
    /// `warn` with the message `slow operation` and a `threshold_ms` field).
    fn slow(&self, elapsed: Duration) -> Option<f64> {
        let threshold = self.shared.slow_nanos.load(Ordering::Relaxed);
        if threshold == 0 || elapsed.as_nanos() <= u128::from(threshold) {
            return None;
        }
        self.shared.slow_operations.fetch_add(1, Ordering::Relaxed);
        Some(millis(Duration::from_nanos(threshold)))
    }

    /// Starts a timed operation of the facade (backup, restore, open, verify, import,
    /// export): [`Timer::finish`] records it (backups and restores in the metrics),
    /// logs its end and failures, and reports it if slow.
    pub fn start(&self, op: Operation) -> Timer<'_> {
        Timer {
            observer: self,
            op,
            started: Instant::now(),
        }
    }

    // ----- the store's own hooks -----

    /// Starts a read: counts it and decides whether to time it.
    #[inline]
    pub(crate) fn read_probe(&self) -> ReadProbe<'_> {
        let slow = self.shared.slow_nanos.load(Ordering::Relaxed) != 0;
        let enabled = self.enabled();
        if !enabled && !slow {
            return ReadProbe {
                observer: self,
                started: None,
                counted: false,
            };
        }
        if enabled {
            STRIPE.with(|&i| self.shared.reads[i].0.fetch_add(1, Ordering::Relaxed));
        }
        let timed = slow || sample(&TICK, READ_SAMPLE_EVERY);
        ReadProbe {
            observer: self,
            started: timed.then(Instant::now),
            counted: enabled,
        }
    }

    /// One in how many write transactions is timed on a backend of `durability`
    /// (1: every one): [`WRITE_SAMPLE_EVERY`] without durability, unless a
    /// slow-operation threshold is set.
    pub(crate) fn write_sample_every(&self, durability: Option<Durability>) -> u32 {
        if durability.is_none() && self.slow_threshold().is_none() {
            WRITE_SAMPLE_EVERY
        } else {
            1
        }
    }

    /// Starts a write transaction's watch (its span, timer and reporting context).
    /// It is timed while metrics are kept or a slow-operation threshold is set; on
    /// a backend without durability, while no threshold is set, one in
    /// [`WRITE_SAMPLE_EVERY`] per thread is (the others are counted without a
    /// duration).
    pub(crate) fn write_watch(
        &self,
        backend: &str,
        durability: Option<Durability>,
    ) -> WriteWatch<'_> {
        let span = tracing::info_span!(
            "write",
            backend,
            durability = durability.map_or("n/a", Durability::as_str),
        )
        .entered();
        let timed = match self.write_sample_every(durability) {
            1 => self.enabled() || self.slow_threshold().is_some(),
            every => self.enabled() && sample(&WRITE_TICK, every),
        };
        WriteWatch {
            observer: self,
            _span: span,
            _context: self.enter(),
            started: timed.then(Instant::now),
            commit_started: None,
            tally: Tally::default(),
            finished: false,
        }
    }
}

/// A running read; [`ReadProbe::finish`] records it.
pub(crate) struct ReadProbe<'a> {
    observer: &'a Observer,
    started: Option<Instant>,
    counted: bool,
}

impl ReadProbe<'_> {
    /// Records the read's outcome; `what` names the query for a slow-read event.
    #[inline]
    pub(crate) fn finish<R>(self, outcome: &Result<R>, what: fn() -> &'static str) {
        if let Err(e) = outcome {
            let s = &self.observer.shared;
            if self.counted {
                s.read_errors.fetch_add(1, Ordering::Relaxed);
            }
            self.observer.count_error(e.kind());
            tracing::debug!(op = "read", query = what(), error_kind = e.kind().as_str(), error = %e, "read failed");
        }
        let Some(started) = self.started else {
            return;
        };
        let elapsed = started.elapsed();
        if self.counted {
            self.observer.shared.read_latency.record(elapsed);
        }
        if let Some(threshold_ms) = self.observer.slow(elapsed) {
            tracing::warn!(
                op = "read",
                query = what(),
                elapsed_ms = millis(elapsed),
                threshold_ms,
                "slow operation"
            );
        }
    }
}

/// The name of a query from the type of the closure it passes to the backend
/// (`…::GraphRead::find_node::{{closure}}` → `find_node`): free at compile time, so
/// that every query, including ones added later, is named in slow-read events.
pub(crate) fn query_name<F>(_: &F) -> fn() -> &'static str {
    fn name<F>() -> &'static str {
        let full = std::any::type_name::<F>();
        let mut path = full;
        while let Some(rest) = path.strip_suffix("::{{closure}}") {
            path = rest;
        }
        // Generic arguments may hold `::` too: cut them off first.
        let path = path.split('<').next().unwrap_or(path);
        path.rsplit("::").next().unwrap_or(full)
    }
    name::<F>
}

/// Entities a write transaction wrote, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) nodes_written: u64,
    pub(crate) nodes_deleted: u64,
    pub(crate) edges_written: u64,
    pub(crate) edges_deleted: u64,
    pub(crate) schemas_changed: u64,
}

impl Tally {
    pub(crate) fn total(&self) -> u64 {
        self.nodes_written
            + self.nodes_deleted
            + self.edges_written
            + self.edges_deleted
            + self.schemas_changed
    }
}

/// The stage of a write transaction that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Taking the writer lock and starting the backend's transaction.
    Begin,
    /// The caller's closure (an operation refused, or the caller gave up).
    Work,
    /// Deferred checks and the backend's commit.
    Commit,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Begin => "begin",
            Self::Work => "work",
            Self::Commit => "commit",
        }
    }
}

/// A running write transaction: its span, its timer, the reporting context.
pub(crate) struct WriteWatch<'a> {
    observer: &'a Observer,
    _span: tracing::span::EnteredSpan,
    _context: ContextGuard,
    started: Option<Instant>,
    commit_started: Option<Instant>,
    tally: Tally,
    finished: bool,
}

impl WriteWatch<'_> {
    /// Passes `outcome` on, recording a failure at `stage`.
    pub(crate) fn check<T>(&mut self, stage: Stage, outcome: Result<T>) -> Result<T> {
        if let Err(e) = &outcome {
            self.fail(stage, e.kind(), Some(e));
        }
        outcome
    }

    /// The closure returned: the commit starts, with what the transaction wrote.
    pub(crate) fn committing(&mut self, tally: Tally) {
        self.tally = tally;
        if self.started.is_some() {
            self.commit_started = Some(Instant::now());
        }
    }

    /// The commit returned `Ok`.
    pub(crate) fn committed(&mut self) {
        self.finished = true;
        let ended = self.started.map(|_| Instant::now());
        let elapsed = self.started.zip(ended).map(|(s, e)| e - s);
        let commit = self.commit_started.zip(ended).map(|(s, e)| e - s);
        let s = &self.observer.shared;
        if self.observer.enabled() {
            s.writes.record(elapsed, true);
            s.commits.record(commit, true);
            s.entities_written
                .fetch_add(self.tally.total(), Ordering::Relaxed);
        }
        let t = self.tally;
        let slow = elapsed.and_then(|e| self.observer.slow(e));
        let (level, message) = match slow {
            Some(_) => (Level::WARN, "slow operation"),
            None => (Level::DEBUG, "transaction committed"),
        };
        event_at!(
            level,
            op = "write",
            nodes_written = t.nodes_written,
            nodes_deleted = t.nodes_deleted,
            edges_written = t.edges_written,
            edges_deleted = t.edges_deleted,
            schemas_changed = t.schemas_changed,
            elapsed_ms = elapsed.map(millis),
            commit_ms = commit.map(millis),
            threshold_ms = slow,
            "{message}"
        );
    }

    fn fail(&mut self, stage: Stage, kind: ErrorKind, error: Option<&Error>) {
        self.finished = true;
        let elapsed = self.started.map(|s| s.elapsed());
        let s = &self.observer.shared;
        if self.observer.enabled() {
            s.writes.record(elapsed, false);
            if stage == Stage::Commit {
                s.commits
                    .record(self.commit_started.map(|c| c.elapsed()), false);
            }
        }
        self.observer.count_error(kind);
        let level = level_of(kind);
        let message = error.map(ToString::to_string).unwrap_or_default();
        if level <= Level::WARN {
            event_at!(level, op = "write", stage = stage.as_str(), error_kind = kind.as_str(), error = %message, elapsed_ms = elapsed.map(millis), "transaction failed");
        } else {
            tracing::info!(
                op = "write",
                stage = stage.as_str(),
                error_kind = kind.as_str(),
                "transaction refused"
            );
            tracing::debug!(op = "write", error_kind = kind.as_str(), error = %message, "refusal");
        }
        if let Some(elapsed) = elapsed {
            // Counted as slow too; the failure's event above already carries its duration.
            self.observer.slow(elapsed);
        }
    }
}

impl Drop for WriteWatch<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Only a panic in the caller's closure ends a transaction without an outcome.
            self.fail(Stage::Work, ErrorKind::Backend, None);
        }
    }
}

/// A running operation of the facade; see [`Observer::start`].
#[must_use = "finish the timer to record the operation"]
pub struct Timer<'a> {
    observer: &'a Observer,
    op: Operation,
    started: Instant,
}

impl Timer<'_> {
    /// Records the operation's outcome and passes it on: backups and restores go into
    /// the metrics; a failure is logged ([`failed`]) and counted by kind; a success is
    /// logged at `info` with its duration; a slow one is reported.
    pub fn finish<T>(self, outcome: Result<T>) -> Result<T> {
        let elapsed = self.started.elapsed();
        let s = &self.observer.shared;
        let recorder = match self.op {
            Operation::Backup => Some(&s.backups),
            Operation::Restore => Some(&s.restores),
            _ => None,
        };
        if let Some(recorder) = recorder
            && (self.observer.enabled() || outcome.is_err())
        {
            recorder.record(Some(elapsed), outcome.is_ok());
        }
        let slow = self.observer.slow(elapsed);
        match (&outcome, slow) {
            (Ok(_), None) => tracing::info!(
                op = self.op.as_str(),
                elapsed_ms = millis(elapsed),
                "{} finished",
                self.op
            ),
            (Ok(_), Some(threshold_ms)) => tracing::warn!(
                op = self.op.as_str(),
                elapsed_ms = millis(elapsed),
                threshold_ms,
                "slow operation"
            ),
            (Err(e), _) => {
                self.observer.count_error(e.kind());
                failed_after(self.op, e, Some(elapsed));
            }
        }
        outcome
    }
}

// ----- reports from backends -----

/// A backend waited `waited` for a lock that `holder` (as well as it can tell: a
/// pid, "another write transaction of this process") held on `resource`;
/// `acquired` is false if it gave up (and will fail with `Locked`). Logged at
/// `info` (`warn` when given up) and counted in the lock waits of the store whose
/// operation runs on this thread.
pub fn lock_wait(
    resource: &dyn fmt::Display,
    holder: Option<&str>,
    waited: Duration,
    acquired: bool,
) {
    let holder = holder.unwrap_or("unknown");
    if acquired {
        tracing::info!(resource = %resource, holder, waited_ms = millis(waited), acquired, "waited for a lock");
    } else {
        tracing::warn!(resource = %resource, holder, waited_ms = millis(waited), acquired, "gave up waiting for a lock");
    }
    with_current(|s| {
        if s.enabled.load(Ordering::Relaxed) || !acquired {
            s.lock_waits.record(Some(waited), acquired);
        }
    });
}

/// A backend tries something again (`attempt` 1 is the first retry) because of
/// `reason`. Logged at `info` and counted.
pub fn retry(what: &str, attempt: u32, reason: &str) {
    tracing::info!(what, attempt, reason, "retrying");
    with_current(|s| {
        s.retries.fetch_add(1, Ordering::Relaxed);
    });
}

/// A backend finished or cleaned up what an interrupted writer left: `action` is
/// one of `journal_replayed`, `journal_discarded`, `temp_removed`,
/// `stale_lock_removed`, `left_for_writer` (a read-only open that may not act), or
/// a backend's own; `path` is the file concerned. Logged at `info` and counted.
pub fn recovery(action: &str, path: &Path) {
    tracing::info!(action, path = %path.display(), "recovery action");
    with_current(|s| {
        s.recovery_actions.fetch_add(1, Ordering::Relaxed);
    });
}

/// Runs `f`, a wait for a lock, and reports it with [`lock_wait`]: for backends to
/// call once the lock's fast path (a `try_lock`) has failed.
pub fn timed_wait<T>(
    resource: &dyn fmt::Display,
    holder: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let started = Instant::now();
    let outcome = f();
    lock_wait(resource, Some(holder), started.elapsed(), outcome.is_ok());
    outcome
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn query_names_come_from_the_closure_type() {
        let f = |x: u32| x + 1;
        let name = query_name(&f)();
        assert_eq!(name, "query_names_come_from_the_closure_type");
        assert_eq!(f(1), 2);
    }

    #[test]
    fn reports_count_only_inside_a_context() {
        let observer = Observer::default();
        retry("nothing", 1, "no context yet");
        assert_eq!(observer.metrics("memory").retries, 0);
        {
            let _inside = observer.enter();
            retry("something", 1, "a test");
            recovery("temp_removed", Path::new("/tmp/x"));
            lock_wait(&"LOCK", Some("pid 1"), Duration::from_millis(3), true);
            lock_wait(&"LOCK", None, Duration::from_millis(9), false);
        }
        retry("nothing", 2, "outside again");
        let m = observer.metrics("memory");
        assert_eq!(m.retries, 1);
        assert_eq!(m.recovery_actions, 1);
        assert_eq!(m.lock_waits.count, 2);
        assert_eq!(m.lock_waits.errors, 1);
        assert!(m.lock_waits.max() >= Duration::from_millis(9));
    }

    /// Timed operations are counted by their histogram, untimed ones apart: the
    /// count holds both, failures are counted, a reset clears all.
    #[test]
    fn op_counts_hold_timed_and_untimed_operations() {
        let op = OpRecorder::default();
        op.record(Some(Duration::from_micros(3)), true);
        op.record(Some(Duration::from_micros(5)), false);
        op.record(None, true);
        op.record(None, false);
        let m = op.snapshot();
        assert_eq!((m.count, m.errors, m.latency.count), (4, 2, 2));
        op.reset();
        let m = op.snapshot();
        assert_eq!((m.count, m.errors, m.latency.count), (0, 0, 0));
    }

    /// Write transactions on a backend without durability are counted every one and
    /// timed one in [`WRITE_SAMPLE_EVERY`] (commits with them); on a durable backend,
    /// or with a slow-operation threshold, every one is timed; off means off.
    #[test]
    fn writes_without_durability_are_sampled_and_durable_ones_all_timed() {
        // A fresh thread: its sampling starts with a timed write.
        std::thread::spawn(|| {
            let observer = Observer::default();
            let write = |durability| {
                let mut watch = observer.write_watch("memory", durability);
                watch.committing(Tally::default());
                watch.committed();
            };
            for _ in 0..(WRITE_SAMPLE_EVERY * 4) {
                write(None);
            }
            let m = observer.metrics("memory");
            let all = u64::from(WRITE_SAMPLE_EVERY * 4);
            assert_eq!(observer.write_sample_every(None), WRITE_SAMPLE_EVERY);
            assert_eq!(m.write_transactions.count, all);
            assert_eq!(m.write_transactions.latency.count, 4);
            assert_eq!((m.commits.count, m.commits.latency.count), (all, 4));
            let durable = Some(Durability::Immediate);
            assert_eq!(observer.write_sample_every(durable), 1);
            for _ in 0..3 {
                write(durable);
            }
            let m = observer.metrics("memory");
            assert_eq!(m.write_transactions.latency.count, 4 + 3);
            observer.set_slow_threshold(Some(Duration::from_secs(60)));
            assert_eq!(observer.write_sample_every(None), 1);
            for _ in 0..3 {
                write(None);
            }
            let m = observer.metrics("memory");
            assert_eq!(m.write_transactions.latency.count, 4 + 3 + 3);
            assert_eq!(m.commits.latency.count, 4 + 3 + 3);
            observer.set_slow_threshold(None);
            observer.set_enabled(false);
            for _ in 0..3 {
                write(None);
                write(durable);
            }
            let m = observer.metrics("memory");
            assert_eq!(m.write_transactions.count, all + 3 + 3);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn reads_are_counted_and_sampled_and_off_means_off() {
        let observer = Observer::default();
        for _ in 0..(READ_SAMPLE_EVERY * 4) {
            observer.read_probe().finish(&Ok(()), || "get");
        }
        let m = observer.metrics("memory");
        assert_eq!(m.reads.count, u64::from(READ_SAMPLE_EVERY * 4));
        assert_eq!(m.reads.latency.count, 4);
        observer.set_enabled(false);
        observer.read_probe().finish(&Ok(()), || "get");
        assert_eq!(observer.metrics("memory").reads.count, m.reads.count);
        observer.set_enabled(true);
        observer.set_slow_threshold(Some(Duration::from_secs(60)));
        for _ in 0..3 {
            observer.read_probe().finish(&Ok(()), || "get");
        }
        let m = observer.metrics("memory");
        assert_eq!(m.read_sample_every, 1);
        assert_eq!(m.reads.latency.count, 4 + 3);
        observer.reset();
        assert_eq!(observer.metrics("memory").reads, OpMetrics::default());
    }

    #[test]
    fn a_zero_threshold_still_counts_as_set() {
        let observer = Observer::new(true, Some(Duration::ZERO));
        assert!(observer.slow_threshold().is_some());
        assert!(observer.slow(Duration::from_micros(5)).is_some());
        assert_eq!(observer.metrics("memory").slow_operations, 1);
        observer.set_slow_threshold(None);
        assert!(observer.slow(Duration::from_secs(5)).is_none());
    }
}
