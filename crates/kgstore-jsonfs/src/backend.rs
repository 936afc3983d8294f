//! The backend: in-memory indexes over the files, snapshots for readers, one writer.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::{self, ThreadId};

use kgstore_core::events::{EventLogRead, EventLogWrite, LogScan};
use kgstore_core::{
    Backend, Edge, EdgeFilter, EdgeKey, Error, GraphState, Node, NodeFilter, Problem, ReadTxn,
    Result, SchemaTarget, WriteTxn,
};
use serde_json::Value;

use crate::commit::{Change, Disk, Failure};
use crate::docs::{self, DocChange, DocTxn, DocView, Docs};
use crate::files::{self, Content};
use crate::journal::{FileOp, JOURNAL_DIR};
use crate::layout::{self, MARKER, RecoveryReport};
use crate::lock::{self, LockFile};
use crate::names;
use crate::options::JsonFsOptions;
use crate::scan::{self, Finding};
use kgstore_core::documents::DocWrite;

/// The JSON-files backend: one pretty-printed JSON file per node, edge and schema
/// in a folder, with in-memory indexes built at open.
///
/// ```
/// use kgstore_core::{Edge, GraphRead, Node, RelationType, Store};
/// use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::new(JsonFsBackend::open(dir.path().join("kg"), JsonFsOptions::default())?);
/// store.write(|tx| {
///     tx.create_node(Node::new("serde", "crate")?)?;
///     tx.create_node(Node::new("kgstore", "crate")?.with_dependency("serde"))?;
///     tx.create_edge(Edge::new("kgstore", RelationType::DependsOn, "serde")?)?;
///     Ok(())
/// })?;
/// assert!(dir.path().join("kg/nodes").is_dir());
/// drop(store); // releases the folder's lock
///
/// let store = Store::new(JsonFsBackend::open(dir.path().join("kg"), JsonFsOptions::default())?);
/// assert_eq!(store.resolve_dependencies("kgstore")?, ["serde"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonFsBackend {
    root: PathBuf,
    options: JsonFsOptions,
    current: RwLock<GraphState>,
    /// The committed documents (taken and replaced together with `current`, always
    /// after it).
    docs: RwLock<Docs>,
    writer: Mutex<Writer>,
    /// The thread holding the write transaction, so that a check from inside it is
    /// refused instead of waiting for itself.
    write_owner: Mutex<Option<ThreadId>>,
    recovery: RecoveryReport,
    /// Committed journals a read-only open applied in memory only.
    overlay: Vec<FileOp>,
    lock: Option<LockFile>,
}

/// What only the writer touches.
struct Writer {
    /// Shard folders known to exist (relative paths).
    dirs: HashSet<String>,
    /// The next journal's sequence number.
    next_journal: u64,
    /// Why writes are refused, after a commit failed past its commit mark.
    poisoned: Option<String>,
}

impl std::fmt::Debug for JsonFsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonFsBackend")
            .field("root", &self.root)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex whose data is updated by single assignments, so whole after a panic too.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The report of open's refusal of a store whose files are damaged.
fn refuse(root: &Path, findings: &[Finding]) -> Error {
    const SHOWN: usize = 20;
    let fatal: Vec<&Finding> = findings.iter().filter(|f| f.fatal).collect();
    let mut detail = format!(
        "{} problem{} found; the store is not opened rather than have data dropped or misread. \
         Fix or remove these files (Backend::check lists every problem): ",
        fatal.len(),
        if fatal.len() == 1 { "" } else { "s" }
    );
    let listed: Vec<String> = fatal
        .iter()
        .take(SHOWN)
        .map(|f| format!("{}: {}", f.path.display(), f.detail))
        .collect();
    detail.push_str(&listed.join("; "));
    if fatal.len() > SHOWN {
        detail.push_str(&format!("; and {} more", fatal.len() - SHOWN));
    }
    let path = match fatal.as_slice() {
        [one] => one.path.clone(),
        _ => root.to_path_buf(),
    };
    Error::corrupt(path, detail)
}

impl JsonFsBackend {
    /// Opens (or, unless told not to, creates) the store in the folder `path`.
    ///
    /// Takes the folder's lock (exclusive, or shared when read-only), finishes or
    /// discards what a crash interrupted, then reads every file into memory. A store
    /// whose files do not parse, sit where their keys do not say, or break integrity
    /// (edges to missing nodes, missing or cyclic dependencies) is refused with
    /// [`Error::Corrupt`] listing each file and what is wrong with it.
    ///
    /// Errors: [`Error::Locked`] naming the holder's pid if another process holds
    /// the folder (after `lock_timeout`); [`Error::InvalidInput`] for a folder that
    /// holds something else; [`Error::Io`] with the path for I/O failures.
    pub fn open(path: impl AsRef<Path>, options: JsonFsOptions) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        match std::fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::invalid_input(
                    format!("jsonfs store folder {}", root.display()),
                    "is a file, not a folder",
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if options.read_only || !options.create_if_missing {
                    let why = if options.read_only {
                        "no kgstore store here (a read-only open creates nothing)"
                    } else {
                        "no kgstore store here (and creating one was not asked for)"
                    };
                    return Err(Error::io(
                        &root,
                        std::io::Error::new(std::io::ErrorKind::NotFound, why),
                    ));
                }
                // Its name is synced in its parent when the store is created in it.
                crate::fsio::create_dir_all(&root, &options.hooks)
                    .map_err(|e| Error::io(&root, e))?;
            }
            Err(e) => return Err(Error::io(&root, e)),
        }
        let lock = lock::acquire(
            &root,
            !options.read_only,
            options.lock_timeout,
            &options.hooks,
        )?;
        layout::prepare(&root, options.read_only, &options.hooks)?;
        let recovery_span = tracing::info_span!("recovery", store = %root.display()).entered();
        let (mut recovery, overlay) = layout::recover(&root, options.read_only, &options.hooks)?;
        let mut scan = scan::scan(&root, &overlay)?;
        let mut doc_scan = docs::scan(&root, &overlay)?;
        scan.findings.extend(doc_scan.findings);
        scan.dirs.extend(doc_scan.dirs);
        if scan.findings.iter().any(|f| f.fatal) {
            return Err(refuse(&root, &scan.findings));
        }
        // One-document commits whose bytes a crash kept in journal/ (read from there
        // by a read-only open, moved into place by a writable one).
        recovery
            .rolled_forward
            .extend(doc_scan.pending.iter().map(|(from, _)| root.join(from)));
        if options.read_only {
            recovery.left_in_place.extend(scan.temps.iter().cloned());
            recovery
                .left_in_place
                .extend(doc_scan.strays.iter().cloned());
        } else {
            if !doc_scan.pending.is_empty() {
                docs::complete_moves(&root, &doc_scan.pending, &options.hooks)?;
                doc_scan.index = docs::committed(&doc_scan.index);
            }
            layout::remove_temps(&scan.temps, &options.hooks)?;
            recovery.temps_removed.extend(scan.temps.iter().cloned());
            // Staged documents of transactions that never reached their commit mark.
            layout::remove_temps(&doc_scan.strays, &options.hooks)?;
            recovery
                .temps_removed
                .extend(doc_scan.strays.iter().cloned());
            if lock.as_ref().is_some_and(|l| l.unclean) {
                // The last writer died with the store open: names it made in shard
                // folders (a one-file commit's rename) may be visible but not durable.
                let mut dirs: Vec<PathBuf> = scan.dirs.iter().map(|d| root.join(d)).collect();
                dirs.sort();
                let workers = if options.hooks.serial() {
                    1
                } else {
                    files::workers_for(dirs.len(), 8, 16)
                };
                files::parallel_map(&dirs, workers, |dir| files::sync_dir(dir, &options.hooks))
                    .into_iter()
                    .collect::<Result<()>>()?;
                tracing::info!(
                    folders = dirs.len(),
                    "the last writer stopped with the store open: folders synced"
                );
            }
        }
        crate::observe::report_recovery(&recovery);
        drop(recovery_span);
        Ok(Self {
            root,
            options,
            current: RwLock::new(scan.state),
            docs: RwLock::new(doc_scan.index),
            writer: Mutex::new(Writer {
                dirs: scan.dirs,
                next_journal: 1,
                poisoned: None,
            }),
            write_owner: Mutex::new(None),
            recovery,
            overlay,
            lock,
        })
    }

    /// The store's folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The options it was opened with.
    pub fn options(&self) -> &JsonFsOptions {
        &self.options
    }

    /// What opening had to finish or clean up after an earlier crash.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The graph and the documents of one moment (a commit replaces both while
    /// holding both locks, taken in the same order).
    fn snapshot_all(&self) -> (GraphState, Docs) {
        let graph = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let docs = self.docs.read().unwrap_or_else(PoisonError::into_inner);
        (graph.clone(), docs.clone())
    }

    fn doc_view(&self, index: Docs) -> DocView<'_> {
        DocView {
            root: &self.root,
            index,
            current: &self.docs,
        }
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        lock(&self.writer)
    }

    fn poisoned_error(reason: &str) -> Error {
        Error::backend(
            "jsonfs",
            format!(
                "an earlier commit failed after its commit mark ({reason}); the next open \
                 of the store finishes it, and this handle takes no more writes: reopen the store"
            ),
        )
    }
}

impl Backend for JsonFsBackend {
    fn name(&self) -> &str {
        "jsonfs"
    }

    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        let (state, docs) = self.snapshot_all();
        Ok(Box::new(JsonFsRead {
            state,
            docs: self.doc_view(docs),
        }))
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        if self.options.read_only {
            return Err(Error::unsupported(
                format!("writing to {} (opened read-only)", self.root.display()),
                "jsonfs",
            ));
        }
        let writer = match self.writer.try_lock() {
            Ok(writer) => writer,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                let waited = std::time::Instant::now();
                let writer = self.lock_writer();
                kgstore_core::observe::lock_wait(
                    &self.root.display(),
                    Some("another write transaction of this process"),
                    waited.elapsed(),
                    true,
                );
                writer
            }
        };
        if let Some(reason) = &writer.poisoned {
            return Err(Self::poisoned_error(reason));
        }
        *lock(&self.write_owner) = Some(thread::current().id());
        let (base, base_docs) = self.snapshot_all();
        Ok(Box::new(JsonFsWrite {
            backend: self,
            writer,
            state: base.clone(),
            base,
            changed: BTreeSet::new(),
            docs: DocTxn {
                view: self.doc_view(base_docs.clone()),
                changes: Default::default(),
                hooks: &self.options.hooks,
            },
            base_docs,
        }))
    }

    /// Reads every file again and reports what is wrong: files that do not parse,
    /// sit elsewhere than their keys say, or break integrity; stray files and
    /// leftovers of crashes; and any difference between the files and this open
    /// store (a hand edit made while it was open).
    fn check(&self) -> Result<Vec<Problem>> {
        if *lock(&self.write_owner) == Some(thread::current().id()) {
            return Err(Error::Locked {
                resource: format!("{} (check)", self.root.display()),
                holder: Some("this thread's own write transaction (check after it)".into()),
            });
        }
        // Holding the writer keeps commits from changing the files under the scan.
        let writer = self.lock_writer();
        let mut problems = Vec::new();
        if let Some(reason) = &writer.poisoned {
            problems.push(Problem::new(
                self.root.display().to_string(),
                format!("a commit failed after its commit mark ({reason}): reopen the store"),
            ));
        }
        let marker = self.root.join(MARKER);
        match std::fs::read(&marker) {
            Ok(_) => {}
            Err(e) => problems.push(Problem::new(
                marker.display().to_string(),
                format!("the format marker cannot be read: {e}"),
            )),
        }
        let scan = scan::scan(&self.root, &self.overlay)?;
        problems.extend(scan.findings.iter().map(Finding::problem));
        for temp in &scan.temps {
            problems.push(Problem::new(
                temp.display().to_string(),
                "temporary file of an interrupted write (removed at the next open)",
            ));
        }
        let journal = self.root.join(JOURNAL_DIR);
        if let Ok(entries) = std::fs::read_dir(&journal) {
            for entry in entries.flatten() {
                problems.push(Problem::new(
                    entry.path().display().to_string(),
                    "journal file left behind (handled at the next open)",
                ));
            }
        }
        let doc_scan = docs::scan(&self.root, &self.overlay)?;
        problems.extend(doc_scan.findings.iter().map(Finding::problem));
        for stray in &doc_scan.strays {
            problems.push(Problem::new(
                stray.display().to_string(),
                "staged document of an unfinished transaction (removed at the next open)",
            ));
        }
        let (current, current_docs) = self.snapshot_all();
        compare(&self.root, &current, &scan.state, &mut problems)?;
        docs::check(&self.root, &current_docs, &doc_scan.index, &mut problems)?;
        Ok(problems)
    }

    fn durability(&self) -> Option<kgstore_core::Durability> {
        Some(self.options.durability)
    }

    /// Journals replayed and discarded, and temporary files removed, by this handle's
    /// recovery at open.
    fn figures(&self) -> Result<Vec<kgstore_core::BackendFigure>> {
        Ok(crate::observe::figures(&self.recovery))
    }

    /// Nothing to reorganise: every file is always in its final form.
    fn optimize(&self) -> Result<()> {
        Ok(())
    }

    /// Writes a consistent copy of the store, taken from one snapshot while writers
    /// go on, as a new jsonfs store folder at `dest`, which must not exist. The copy is
    /// built under a temporary name beside `dest` and renamed into place when complete.
    fn backup_native(&self, dest: &Path) -> Result<()> {
        let (state, docs) = self.snapshot_all();
        crate::backup::write_copy(&state, &docs, &self.root, dest, &self.options.hooks)
    }
}

/// Differences between the open store's state and what its files hold.
fn compare(
    root: &Path,
    open: &GraphState,
    disk: &GraphState,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let differ = |rel: String, detail: &str| {
        Problem::new(
            root.join(rel).display().to_string(),
            format!("{detail} (edited while the store was open?)"),
        )
    };
    let all_nodes = |s: &GraphState| s.scan_nodes(&NodeFilter::default(), None, usize::MAX);
    let all_edges = |s: &GraphState| s.scan_edges(&EdgeFilter::default(), None, usize::MAX);
    let (a, b) = (all_nodes(open)?, all_nodes(disk)?);
    for (key, x, y) in merge(&a, &b, |n: &Node| n.name.clone()) {
        if let Some(detail) = difference(x, y) {
            problems.push(differ(names::node_path(&key), detail));
        }
    }
    let (a, b) = (all_edges(open)?, all_edges(disk)?);
    for (key, x, y) in merge(&a, &b, Edge::key) {
        if let Some(detail) = difference(x, y) {
            problems.push(differ(names::edge_path(&key), detail));
        }
    }
    let (a, b) = (open.list_schemas()?, disk.list_schemas()?);
    for (key, x, y) in merge(&a, &b, |(t, _): &(SchemaTarget, Value)| t.clone()) {
        if let Some(detail) = difference(x, y) {
            problems.push(differ(names::schema_path(&key), detail));
        }
    }
    let all_events = |s: &GraphState| {
        s.event_state().log_scan(&LogScan {
            from: 1,
            limit: usize::MAX,
            ..LogScan::default()
        })
    };
    let (a, b) = (all_events(open)?, all_events(disk)?);
    for (position, x, y) in merge(&a, &b, |r| r.position) {
        if let Some(detail) = difference(x, y) {
            problems.push(differ(crate::events::event_path(position), detail));
        }
    }
    let entries = |s: &GraphState| -> Vec<(String, String, Value)> {
        s.event_state()
            .state_entries()
            .map(|(space, key, value)| (space.to_owned(), key.to_owned(), value.clone()))
            .collect()
    };
    let (a, b) = (entries(open), entries(disk));
    for ((space, key), x, y) in merge(&a, &b, |(s, k, _)| (s.clone(), k.clone())) {
        if let Some(detail) = difference(x, y) {
            problems.push(differ(crate::events::state_path(&space, &key), detail));
        }
    }
    Ok(())
}

fn difference<T: PartialEq>(open: Option<&T>, disk: Option<&T>) -> Option<&'static str> {
    match (open, disk) {
        (Some(_), None) => Some("the open store holds this entity, but its file is missing"),
        (None, Some(_)) => Some("the file holds an entity the open store does not have"),
        (Some(a), Some(b)) if a != b => Some("the file differs from the open store"),
        _ => None,
    }
}

/// Pairs the items of two lists sorted by `key`.
fn merge<'a, T, K: Ord>(
    a: &'a [T],
    b: &'a [T],
    key: impl Fn(&T) -> K,
) -> Vec<(K, Option<&'a T>, Option<&'a T>)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => key(x).cmp(&key(y)),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                out.push((key(&a[i]), Some(&a[i]), None));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push((key(&b[j]), None, Some(&b[j])));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((key(&a[i]), Some(&a[i]), Some(&b[j])));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// A read transaction: a snapshot of the in-memory indexes.
struct JsonFsRead<'a> {
    state: GraphState,
    docs: DocView<'a>,
}

kgstore_core::delegate_read_txn!(JsonFsRead<'_>, state, events, documents: docs);

/// What a write transaction changed.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Node(String),
    Edge(EdgeKey),
    Schema(SchemaTarget),
    /// The event at a position.
    Event(u64),
    /// An entry of the event store's keyed state: space and key.
    State(String, String),
}

/// The write transaction: a private copy of the state plus the keys it changed,
/// written to the files at commit.
pub(crate) struct JsonFsWrite<'a> {
    backend: &'a JsonFsBackend,
    writer: MutexGuard<'a, Writer>,
    base: GraphState,
    pub(crate) state: GraphState,
    pub(crate) changed: BTreeSet<Key>,
    /// The documents as the transaction has them, and what it changed.
    docs: DocTxn<'a>,
    base_docs: Docs,
}

kgstore_core::delegate_read_txn!(JsonFsWrite<'_>, state, events, documents: docs);

impl Drop for JsonFsWrite<'_> {
    fn drop(&mut self) {
        *lock(&self.backend.write_owner) = None;
    }
}

impl JsonFsWrite<'_> {
    /// Refuses further writes on this handle after a failure past the commit mark,
    /// and returns the commit's error with what happens next added to its message.
    fn poison(&mut self, e: Error, next: &str) -> Error {
        self.writer.poisoned = Some(e.to_string());
        if let Some(lock) = &self.backend.lock {
            lock.leave_as_unclean();
        }
        match e {
            Error::Io { path, source } => Error::io(
                path,
                std::io::Error::new(source.kind(), format!("{source}; {next}")),
            ),
            other => other,
        }
    }

    /// The file change for one changed key, if the file must change.
    fn change(&self, key: &Key) -> Result<Option<Change>> {
        let (rel, now, before) = match key {
            Key::Node(name) => (
                names::node_path(name),
                self.state.get_node(name)?.map(Content::node),
                self.base.contains_node(name)?,
            ),
            Key::Edge(edge) => (
                names::edge_path(edge),
                self.state.get_edge(edge)?.map(Content::edge),
                self.base.contains_edge(edge)?,
            ),
            Key::Schema(target) => (
                names::schema_path(target),
                self.state.get_schema(target)?.map(Content::schema),
                self.base.get_schema(target)?.is_some(),
            ),
            Key::Event(position) => (
                crate::events::event_path(*position),
                self.state
                    .event_state()
                    .record(*position)
                    .cloned()
                    .map(Content::event),
                self.base.event_state().record(*position).is_some(),
            ),
            Key::State(space, key) => (
                crate::events::state_path(space, key),
                self.state
                    .event_state()
                    .state_get(space, key)?
                    .map(|v| Content::state(space, key, v)),
                self.base.event_state().state_get(space, key)?.is_some(),
            ),
        };
        Ok(match (now, before) {
            (None, false) => None,
            (content, _) => Some(Change { rel, content }),
        })
    }
}

impl WriteTxn for JsonFsWrite<'_> {
    fn put_node(&mut self, node: &Node) -> Result<()> {
        self.state.put_node(node.clone());
        self.changed.insert(Key::Node(node.name.clone()));
        Ok(())
    }

    fn delete_node(&mut self, name: &str) -> Result<bool> {
        let existed = self.state.delete_node(name).is_some();
        if existed {
            self.changed.insert(Key::Node(name.to_owned()));
        }
        Ok(existed)
    }

    fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        self.state.put_edge(edge.clone());
        self.changed.insert(Key::Edge(edge.key()));
        Ok(())
    }

    fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        let existed = self.state.delete_edge(key).is_some();
        if existed {
            self.changed.insert(Key::Edge(key.clone()));
        }
        Ok(existed)
    }

    fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        self.state.put_schema(target.clone(), schema.clone());
        self.changed.insert(Key::Schema(target.clone()));
        Ok(())
    }

    fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        let existed = self.state.delete_schema(target).is_some();
        if existed {
            self.changed.insert(Key::Schema(target.clone()));
        }
        Ok(existed)
    }

    fn events_mut(&mut self) -> Option<&mut dyn EventLogWrite> {
        Some(self)
    }

    fn documents_mut(&mut self) -> Option<&mut dyn DocWrite> {
        Some(&mut self.docs)
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let mut this = *self;
        if let Some(reason) = &this.writer.poisoned {
            return Err(JsonFsBackend::poisoned_error(reason));
        }
        let mut changes = Vec::with_capacity(this.changed.len());
        for key in &this.changed {
            changes.extend(this.change(key)?);
        }
        changes.extend(docs::file_changes(&this.docs, &this.base_docs));
        // From here the commit owns the staged files: a failure before its commit
        // mark removes them, one after it leaves them to the next open's recovery.
        let staged = std::mem::take(&mut this.docs.changes);
        if !changes.is_empty() {
            let backend = this.backend;
            let disk = Disk {
                root: &backend.root,
                durability: backend.options.durability,
                hooks: &backend.options.hooks,
            };
            let seq = this.writer.next_journal;
            this.writer.next_journal += 1;
            match disk.apply(changes, &mut this.writer.dirs, seq) {
                Ok(()) => {}
                Err(Failure::Clean(e)) => {
                    for change in staged.values() {
                        if let DocChange::Put(rel) = change {
                            let _ = files::remove(&backend.root.join(rel), &backend.options.hooks);
                        }
                    }
                    return Err(e);
                }
                Err(Failure::Committed(e)) => {
                    return Err(this.poison(
                        e,
                        "the commit had passed its commit mark and completes when the \
                         store is next opened; this handle takes no more writes",
                    ));
                }
                Err(Failure::Unknown(e)) => {
                    return Err(this.poison(
                        e,
                        "whether the commit took effect is known when the store is next \
                         opened (it is then whole or absent); this handle takes no more writes",
                    ));
                }
            }
        }
        let mut graph = this
            .backend
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut docs = this
            .backend
            .docs
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *graph = std::mem::take(&mut this.state);
        *docs = docs::committed(&this.docs.view.index);
        Ok(())
    }
}
