//! The [`Store`]: kgstore's semantics, written once above any [`Backend`].

mod check;
mod import;
mod read;
mod write;

use std::cell::RefCell;
use std::fmt;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;

pub use check::{CheckReport, check_changes};
pub use import::BulkImport;
pub use read::{GraphRead, ReadTx, SideReadTx};
pub(crate) use write::BackendTxn;
pub use write::{DeleteReport, OnDependents, WriteTx};

use crate::backend::{Backend, ReadTxn};
use crate::error::{Error, Result};
use crate::history::{Diff, EntityKey, LogQuery, Revision};
use crate::memory::MemoryBackend;
use crate::model::{Edge, EdgeKey, Node};
use crate::observe::{self, Metrics, Observer, Operation, Stage};
use crate::schema::{SchemaCache, SchemaTarget};

/// A handle on a knowledge graph kept by some [`Backend`].
///
/// Cheap to clone and safe to share between threads; every clone is the same
/// store. Queries come from [`GraphRead`]: called on the store, each runs on a
/// fresh snapshot; for several queries on one snapshot use [`Store::read`].
/// Writes happen in [`Store::write`] transactions; the single-operation methods
/// (`create_node`, …) are one-operation transactions.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Box<dyn Backend>,
    schemas: SchemaCache,
    /// Wakes subscribers of this process when a commit appended events.
    events: crate::events::EventHub,
    /// Metrics and logging settings.
    observer: Observer,
    /// The backend's counters at the last reset of the metrics.
    figures_at_reset: Mutex<Vec<observe::BackendFigure>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend.name())
            .finish()
    }
}

impl Store {
    /// A store over `backend`.
    pub fn new(backend: impl Backend + 'static) -> Self {
        Self::from_boxed(Box::new(backend))
    }

    /// A store over a boxed backend (as a registry of backends produces them).
    pub fn from_boxed(backend: Box<dyn Backend>) -> Self {
        Self::with_observer(backend, Observer::default())
    }

    /// A store over a boxed backend that keeps its metrics in `observer` (which may
    /// already hold what happened while the backend was opened).
    pub fn with_observer(backend: Box<dyn Backend>, observer: Observer) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                schemas: SchemaCache::default(),
                events: crate::events::EventHub::default(),
                observer,
                figures_at_reset: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A new, empty in-memory store.
    pub fn memory() -> Self {
        Self::new(MemoryBackend::new())
    }

    /// The backend's name: `memory`, `sqlite`, `jsonfs`, ….
    pub fn backend_name(&self) -> &str {
        self.inner.backend.name()
    }

    /// The backend itself.
    pub fn backend(&self) -> &dyn Backend {
        &*self.inner.backend
    }

    /// A read transaction: all its queries see one consistent snapshot.
    pub fn read(&self) -> Result<ReadTx<'_>> {
        Ok(ReadTx {
            txn: self.inner.backend.begin_read()?,
            backend: self.inner.backend.name(),
            observer: &self.inner.observer,
        })
    }

    /// A read transaction, and with it, where the backend can open one at once
    /// ([`Backend::begin_read_pair`]), a second read transaction on exactly the same
    /// snapshot for another thread: a backup scans nodes on the first and edges on
    /// the second side by side. `None` for the second: read everything on the first.
    pub fn read_pair(&self) -> Result<(ReadTx<'_>, Option<SideReadTx<'_>>)> {
        let (txn, second) = self.inner.backend.begin_read_pair()?;
        let observer = &self.inner.observer;
        let read = ReadTx {
            txn,
            backend: self.inner.backend.name(),
            observer,
        };
        Ok((read, second.map(|txn| SideReadTx { txn, observer })))
    }

    /// A read transaction on the store as it was at `revision`, on a backend that keeps
    /// history (the git backend: a commit id or any revision expression git
    /// understands, such as `main~3`); others refuse with [`Error::Unsupported`].
    pub fn read_at(&self, revision: &str) -> Result<ReadTx<'_>> {
        Ok(ReadTx {
            txn: self.inner.backend.read_at(revision)?,
            backend: self.inner.backend.name(),
            observer: &self.inner.observer,
        })
    }

    /// The store's revisions, newest first, as `query` narrows them (a backend that
    /// keeps history; others refuse with [`Error::Unsupported`]).
    pub fn log(&self, query: &LogQuery) -> Result<Vec<Revision>> {
        match &query.key {
            Some(EntityKey::Node(name)) => read::check_name(name)?,
            Some(EntityKey::Document(key)) => crate::documents::key::check_key(key)?,
            _ => {}
        }
        self.inner.backend.log(query)
    }

    /// What changed from revision `from` to revision `to`: nodes, edges, schemas and
    /// documents added, changed and removed (see [`history::diff`](crate::history::diff)).
    pub fn diff(&self, from: &str, to: &str) -> Result<Diff> {
        let a = self.inner.backend.read_at(from)?;
        let b = self.inner.backend.read_at(to)?;
        crate::history::diff(&*a, &*b)
    }

    /// Runs `f` in a write transaction: committed if `f` returns `Ok`, rolled back if it
    /// returns `Err` or panics. Writers take turns; a write started inside another on
    /// the same thread is refused with [`Error::Locked`] instead of deadlocking.
    ///
    /// ```
    /// use kgstore_core::{GraphRead, Node, Store};
    ///
    /// let store = Store::memory();
    /// let count = store.write(|tx| {
    ///     tx.create_node(Node::new("a", "thing")?)?;
    ///     tx.create_node(Node::new("b", "thing")?.with_dependency("a"))?;
    ///     tx.count_nodes() // sees its own writes
    /// })?;
    /// assert_eq!(count, 2);
    /// # Ok::<(), kgstore_core::Error>(())
    /// ```
    pub fn write<T>(&self, f: impl FnOnce(&mut WriteTx<'_>) -> Result<T>) -> Result<T> {
        let backend = &*self.inner.backend;
        let mut watch = self
            .inner
            .observer
            .write_watch(backend.name(), backend.durability());
        let _writer = watch.check(Stage::Begin, WriterMark::enter(&self.inner))?;
        // The backend runs the transaction (on the stack, where it can): the
        // stage reached tells a failure to begin from one of the work or the commit.
        let mut stage = Stage::Begin;
        let mut f = Some(f);
        let mut value = None;
        let mut appended = false;
        let outcome = backend.write_with(&mut |txn| {
            let f = f.take().ok_or_else(|| {
                Error::backend(backend.name(), "the backend ran a transaction's work twice")
            })?;
            // With the change feed on, the backend transaction is wrapped to record changes.
            let (txn, feed) = crate::events::changefeed::attach(BackendTxn::Lent(txn))?;
            let mut tx = WriteTx::new(txn, feed, backend.name(), &self.inner.schemas);
            stage = Stage::Work;
            value = Some(f(&mut tx)?);
            stage = Stage::Commit;
            watch.committing(tx.tally);
            appended = tx.commit()?;
            Ok(())
        });
        watch.check(stage, outcome)?;
        let value = value.ok_or_else(|| {
            Error::backend(
                backend.name(),
                "the backend committed without running the work",
            )
        })?;
        watch.committed();
        if appended {
            self.inner.events.notify();
        }
        Ok(value)
    }

    /// The notifier that wakes this process's event subscribers after a commit.
    pub(crate) fn hub(&self) -> &crate::events::EventHub {
        &self.inner.events
    }

    /// What the store has done since it was opened or [`Store::reset_metrics`]:
    /// counts and latency histograms of reads, write transactions, commits, lock
    /// waits, backups and restores; errors by kind; and the backend's own figures
    /// (see `docs/observability.md`). Cheap: a few hundred atomic loads, and whatever
    /// the backend's figures cost (SQLite and git look at files).
    ///
    /// ```
    /// use kgstore_core::{GraphRead, Node, Store};
    ///
    /// let store = Store::memory();
    /// store.create_node(Node::new("a", "thing")?)?;
    /// assert!(store.find_node("a")?.is_some());
    /// let metrics = store.metrics();
    /// assert_eq!(metrics.write_transactions.count, 1);
    /// assert_eq!(metrics.entities_written, 1);
    /// assert_eq!(metrics.reads.count, 1);
    /// assert!(metrics.commits.max() > std::time::Duration::ZERO);
    /// # Ok::<(), kgstore_core::Error>(())
    /// ```
    pub fn metrics(&self) -> Metrics {
        let mut metrics = self.inner.observer.metrics(self.backend_name());
        metrics.write_sample_every = self
            .inner
            .observer
            .write_sample_every(self.inner.backend.durability());
        match self.inner.backend.figures() {
            Ok(mut figures) => {
                let at_reset = lock(&self.inner.figures_at_reset);
                for figure in &mut figures {
                    if figure.kind == observe::FigureKind::Counter
                        && let Some(base) = at_reset.iter().find(|f| f.name == figure.name)
                    {
                        figure.value = figure.value.saturating_sub(base.value);
                    }
                }
                metrics.backend_figures = figures;
            }
            Err(e) => {
                tracing::debug!(error_kind = e.kind().as_str(), error = %e, "backend figures unavailable");
            }
        }
        metrics
    }

    /// Starts the metrics again from zero (the backend's counters too).
    pub fn reset_metrics(&self) {
        self.inner.observer.reset();
        if let Ok(figures) = self.inner.backend.figures() {
            *lock(&self.inner.figures_at_reset) = figures;
        }
    }

    /// Where the store keeps its metrics and logging settings: turn metrics off or
    /// on ([`Observer::set_enabled`]), set the slow-operation threshold
    /// ([`Observer::set_slow_threshold`]).
    pub fn observer(&self) -> &Observer {
        &self.inner.observer
    }

    /// Creates a node in its own transaction; see [`WriteTx::create_node`].
    pub fn create_node(&self, node: Node) -> Result<Node> {
        let mut node = node;
        self.write(|tx| tx.create_node_in(&mut node))?;
        Ok(node)
    }

    /// Creates many nodes in one transaction; see [`WriteTx::create_nodes`].
    pub fn create_nodes(&self, nodes: impl IntoIterator<Item = Node>) -> Result<usize> {
        self.write(|tx| tx.create_nodes(nodes))
    }

    /// Updates a node in its own transaction; see [`WriteTx::update_node`].
    pub fn update_node(&self, node: Node, expected_version: Option<u64>) -> Result<Node> {
        self.write(|tx| tx.update_node(node, expected_version))
    }

    /// Creates or updates a node in its own transaction; see [`WriteTx::upsert_node`].
    pub fn upsert_node(&self, node: Node) -> Result<Node> {
        self.write(|tx| tx.upsert_node(node))
    }

    /// Deletes a node in its own transaction; see [`WriteTx::delete_node`].
    pub fn delete_node(&self, name: &str, on_dependents: OnDependents) -> Result<DeleteReport> {
        self.write(|tx| tx.delete_node(name, on_dependents))
    }

    /// Creates an edge in its own transaction; see [`WriteTx::create_edge`].
    pub fn create_edge(&self, edge: Edge) -> Result<Edge> {
        self.write(|tx| tx.create_edge(edge))
    }

    /// Creates many edges in one transaction; see [`WriteTx::create_edges`].
    pub fn create_edges(&self, edges: impl IntoIterator<Item = Edge>) -> Result<usize> {
        self.write(|tx| tx.create_edges(edges))
    }

    /// Updates an edge in its own transaction; see [`WriteTx::update_edge`].
    pub fn update_edge(&self, edge: Edge, expected_version: Option<u64>) -> Result<Edge> {
        self.write(|tx| tx.update_edge(edge, expected_version))
    }

    /// Creates or updates an edge in its own transaction; see [`WriteTx::upsert_edge`].
    pub fn upsert_edge(&self, edge: Edge) -> Result<Edge> {
        self.write(|tx| tx.upsert_edge(edge))
    }

    /// Deletes an edge in its own transaction; see [`WriteTx::delete_edge`].
    pub fn delete_edge(&self, key: &EdgeKey) -> Result<Edge> {
        self.write(|tx| tx.delete_edge(key))
    }

    /// Registers a schema in its own transaction; see [`WriteTx::set_schema`].
    pub fn set_schema(&self, target: SchemaTarget, schema: Value) -> Result<()> {
        self.write(|tx| tx.set_schema(target, schema))
    }

    /// Removes a schema in its own transaction; see [`WriteTx::remove_schema`].
    pub fn remove_schema(&self, target: &SchemaTarget) -> Result<bool> {
        self.write(|tx| tx.remove_schema(target))
    }

    /// Checks the backend's storage (where it can) and kgstore's own invariants:
    /// every field valid, every edge endpoint and dependency present, no dependency
    /// cycle, attributes valid against their schemas, indexes agreeing with the data.
    pub fn check(&self) -> Result<CheckReport> {
        let _span = tracing::info_span!("check", backend = self.backend_name()).entered();
        let timer = self.inner.observer.start(Operation::Check);
        let outcome = (|| {
            let (backend_checked, mut problems) = match self.inner.backend.check() {
                Ok(problems) => (true, problems),
                Err(e) if e.kind() == crate::ErrorKind::Unsupported => (false, Vec::new()),
                Err(e) => return Err(e),
            };
            let txn = self.inner.backend.begin_read()?;
            let mut report = check::invariants(&*txn, &self.inner.schemas)?;
            report.backend_checked = backend_checked;
            problems.append(&mut report.problems);
            report.problems = problems;
            Ok(report)
        })();
        if let Ok(report) = &outcome {
            let level = if report.is_ok() {
                tracing::Level::INFO
            } else {
                tracing::Level::WARN
            };
            crate::event_at!(
                level,
                problems = report.problems.len(),
                backend_checked = report.backend_checked,
                "check done"
            );
        }
        timer.finish(outcome)
    }

    /// Reorganises the backend's storage for speed and size, where it can.
    pub fn optimize(&self) -> Result<()> {
        let _span = tracing::info_span!("optimize", backend = self.backend_name()).entered();
        let timer = self.inner.observer.start(Operation::Optimize);
        timer.finish(self.inner.backend.optimize())
    }

    /// Copies the store with the backend's native mechanism, where it has one.
    pub fn backup_native(&self, dest: &FsPath) -> Result<()> {
        self.inner.backend.backup_native(dest)
    }
}

impl Store {
    /// Runs a store-level read (one call, one snapshot taken at its first read:
    /// [`Backend::begin_call`]), counted in the metrics as the query `what`.
    #[inline]
    pub(crate) fn call<R>(
        &self,
        what: fn() -> &'static str,
        f: impl FnOnce(&dyn ReadTxn) -> Result<R>,
    ) -> Result<R> {
        self.call_on(what, |b| b.begin_call(), f)
    }

    /// [`Store::call`] on the transaction `begin` starts.
    #[inline]
    pub(crate) fn call_on<'s, R>(
        &'s self,
        what: fn() -> &'static str,
        begin: impl FnOnce(&'s dyn Backend) -> Result<Box<dyn ReadTxn + 's>>,
        f: impl FnOnce(&dyn ReadTxn) -> Result<R>,
    ) -> Result<R> {
        let probe = self.inner.observer.read_probe();
        let outcome = begin(&*self.inner.backend).and_then(|txn| f(&*txn));
        probe.finish(&outcome, what);
        outcome
    }
}

impl GraphRead for Store {
    #[inline]
    fn with_reader<R>(&self, f: impl FnOnce(&dyn ReadTxn) -> Result<R>) -> Result<R> {
        self.call(observe::query_name(&f), f)
    }

    /// On the backend's one-read transaction ([`Backend::read_one`]: on the stack where
    /// the backend can), counted as [`Store::call`] counts.
    #[inline]
    fn with_one_read<R>(&self, f: impl FnOnce(&dyn ReadTxn) -> Result<R>) -> Result<R> {
        let backend = &*self.inner.backend;
        let what = observe::query_name(&f);
        let probe = self.inner.observer.read_probe();
        let mut f = Some(f);
        let mut answer = None;
        let begun = backend.read_one(&mut |txn| {
            if let Some(f) = f.take() {
                answer.get_or_insert_with(|| f(txn));
            }
        });
        // The answer is recorded where it lies and moved out once (a `Node` is ~240
        // bytes; each move is a copy).
        let outcome = answer.get_or_insert_with(|| {
            begun.and_then(|()| {
                Err(Error::backend(
                    backend.name(),
                    "the backend answered a read without running it",
                ))
            })
        });
        probe.finish(outcome, what);
        answer.unwrap_or_else(|| Err(Error::backend(backend.name(), "a read's answer was lost")))
    }
}

thread_local! {
    /// The stores this thread is inside a [`Store::write`] of (each by the address
    /// of the part its clones share), to refuse a nested write that would deadlock.
    static WRITING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks the current thread as inside a write of one store until dropped (also
/// when unwinding). Kept per thread, so that marking takes no lock and no hash.
struct WriterMark {
    store: usize,
}

impl WriterMark {
    fn enter(inner: &Inner) -> Result<Self> {
        let store = std::ptr::from_ref(inner).addr();
        // A thread whose locals are gone (a write from a thread-local's destructor)
        // cannot be inside another write of the store.
        let nested = WRITING
            .try_with(|writing| {
                let mut writing = writing.borrow_mut();
                let nested = writing.contains(&store);
                if !nested {
                    writing.push(store);
                }
                nested
            })
            .unwrap_or(false);
        if nested {
            return Err(Error::Locked {
                resource: "the store's write transaction".into(),
                holder: Some(
                    "this same thread (a write inside a write would wait for itself)".into(),
                ),
            });
        }
        Ok(Self { store })
    }
}

impl Drop for WriterMark {
    fn drop(&mut self) {
        let _gone = WRITING.try_with(|writing| {
            let mut writing = writing.borrow_mut();
            if let Some(at) = writing.iter().rposition(|&s| s == self.store) {
                writing.swap_remove(at);
            }
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded sets are updated in single calls, so a poisoned lock holds whole data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
