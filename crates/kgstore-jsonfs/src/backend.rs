//! The backend: an in-memory image of the files, kept current from the commit log,
//! snapshots for readers, and writers taking turns per transaction through the lock.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::{self, ThreadId};
use std::time::Instant;

use kgstore_core::events::{EventLogRead, EventLogWrite, LogScan};
use kgstore_core::memory::{Gate, GateGuard};
use kgstore_core::{
    Backend, Edge, EdgeFilter, EdgeKey, Error, GraphState, Node, NodeFilter, Problem, ReadTxn,
    Result, SchemaTarget, WriteTxn,
};
use serde_json::Value;

use crate::commit::{Change, Disk, Failure};
use crate::docs::{self, DocChange, DocTxn, DocView, Docs};
use crate::files::{self, Content};
use crate::image::{Image, Key};
use crate::journal::FileOp;
use crate::layout::{self, MARKER, Marker, RecoveryReport};
use crate::lock::{Held, LockFile};
use crate::log::{self, Generation, Published, Record};
use crate::names;
use crate::options::JsonFsOptions;
use crate::recovery::Plan;
use crate::scan::{self, Finding, Scan};
use crate::snapshot::{self, Stats};

/// How many times a lock-free read of the whole store is tried before it is done
/// under the lock (when other processes commit faster than the log keeps records).
pub(crate) const LOAD_ATTEMPTS: usize = 5;
use kgstore_core::documents::DocWrite;

/// The JSON-files backend: one pretty-printed JSON file per node, edge and schema
/// in a folder, with in-memory indexes built at open and kept current from the
/// commit log, so that several processes can share the folder.
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
///
/// // A second handle (in this process or another) shares the folder, and sees the
/// // first one's commits at its next transaction.
/// let other = Store::new(JsonFsBackend::open(dir.path().join("kg"), JsonFsOptions::default())?);
/// store.create_node(Node::new("later", "crate")?)?;
/// assert_eq!(other.resolve_dependencies("kgstore")?, ["serde"]);
/// assert!(other.contains_node("later")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonFsBackend {
    root: PathBuf,
    options: JsonFsOptions,
    /// What the files hold, as of the last generation applied.
    current: RwLock<Image>,
    /// One thread at a time brings `current` up to date from the log.
    refresh: Mutex<()>,
    /// The generation file: what other processes published.
    generation: Generation,
    /// The lock file; a read-only handle has it only if it exists (for `check`).
    lock: Option<LockFile>,
    /// The threads of this process take turns here before they wait for the lock.
    gate: Gate,
    /// What only a writer touches.
    writer: Mutex<Writer>,
    /// The thread holding the write transaction, so that a check from inside it is
    /// refused instead of waiting for itself.
    write_owner: Mutex<Option<ThreadId>>,
    /// What this handle recovered after other writers, at open and since.
    recovery: Mutex<RecoveryReport>,
    /// How many times this handle read every file of the store.
    full_reads: AtomicU64,
    /// Whether the open built the image from the snapshot.
    from_snapshot: bool,
    /// The status of the graph's files as the image has them (for the snapshot).
    stats: Mutex<Stats>,
}

/// What only the writer touches.
struct Writer {
    /// Shard folders known to exist with their names synced (relative paths).
    dirs: HashSet<String>,
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
         Fix or remove these files (or restore the store from a backup), then open it again: ",
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
        detail.push_str(&format!(
            "; and {} more: `kgstore check --without-opening` (or `kgstore_jsonfs::inspect`) \
             lists every one without opening the store",
            fatal.len() - SHOWN
        ));
    }
    let path = match fatal.as_slice() {
        [one] => one.path.clone(),
        _ => root.to_path_buf(),
    };
    Error::corrupt(path, detail)
}

/// Reads the whole store without any lock, while other processes may commit: the
/// files, then the records of the last transaction published before the read (if
/// it was still putting its files in place) and of those published meanwhile,
/// applied over the files in order. `None` if the
/// log no longer holds a record needed (pruned meanwhile).
///
/// Why this is whole: a transaction renames no file before its generation is
/// published, and keeps its record in `journal/` from before its publication until
/// every file is in place; so every transaction whose renames the read of the files
/// may have caught half-way is the last one published before the read or one
/// published during it, and is applied whole from its record. And it is not more
/// than other handles see: a transaction not yet published has renamed nothing.
pub(crate) fn load_once(root: &Path, generation: &Generation) -> Result<Option<Scan>> {
    let before = generation.read()?.generation().unwrap_or(0);
    // Whether the last published transaction may still be putting its files in
    // place (or its writer stopped half-way): its record is still in `journal/`.
    // Asked before the files are read: a record that moves into the log during the
    // read belongs to a transaction the read may have caught half-way.
    let before_in_flight = before > 0 && log::in_journal(root, before);
    let files = scan::read_files(root)?;
    let after = generation.read()?.generation().unwrap_or(0);
    if after < before {
        return Ok(None);
    }
    let mut overlay: Vec<FileOp> = Vec::new();
    // A transaction whose record was in the log before the read began is in the
    // files: applying it again would undo a hand edit made since.
    let first = if before_in_flight { before } else { before + 1 };
    for g in first..=after {
        match log::read_record(root, g)? {
            Record::Found(ops) => overlay.extend(ops),
            Record::Damaged | Record::Missing => return Ok(None),
        }
    }
    let mut scan = scan::finish(root, files, &overlay)?;
    // The documents' metadata was read after `after`: a transaction published
    // meanwhile may have renamed some of it, so the read is tried again.
    if generation.read()?.generation().unwrap_or(0) != after {
        return Ok(None);
    }
    scan.state.generation = after;
    Ok(Some(scan))
}

impl JsonFsBackend {
    /// Opens (or, unless told not to, creates) the store in the folder `path`.
    ///
    /// A writable open that finds the store's lock free finishes or discards what
    /// a crashed writer left (and upgrades a store of format version 1); one that
    /// finds it held leaves that to the holder. Then the whole store is read into
    /// memory, without any lock: writers in other processes go on meanwhile, and
    /// what they commit is applied from the commit log. A store whose files do not
    /// parse, sit where their keys do not say, or break integrity (edges to missing
    /// nodes, missing or cyclic dependencies) is refused with [`Error::Corrupt`]
    /// listing each file and what is wrong with it.
    ///
    /// Errors: [`Error::Locked`] naming the holder if a new store must be created
    /// while another process holds the folder's lock beyond `lock_timeout`;
    /// [`Error::InvalidInput`] for a folder that holds something else;
    /// [`Error::Unsupported`] for a newer format; [`Error::Io`] with the path for
    /// I/O failures.
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
        let generation = Generation::new(&root);
        let mut report = RecoveryReport::default();
        let recovery_span = tracing::info_span!("recovery", store = %root.display()).entered();
        let lock = LockFile::open(&root, !options.read_only)?;
        let deadline = options.lock_timeout.map(|t| Instant::now() + t);
        if options.read_only {
            if layout::read_marker(&root)? == Marker::Missing {
                return Err(layout::no_store(&root));
            }
        } else if let Some(lock) = &lock {
            let held = match layout::read_marker(&root)? {
                // A new store is created under the lock: wait for our turn.
                Marker::Missing => Some(lock.acquire(deadline)?),
                // A holder at work recovered what its predecessor left when it took
                // the lock: nothing for this open to do, and no reason to wait.
                Marker::Version(_) => lock.try_acquire()?,
            };
            if let Some(held) = held {
                let held = held.claim(&options.hooks)?;
                layout::prepare(&root, &options.hooks)?;
                let head = recover(&root, &options, &generation, &held, &mut report)?;
                // What a crash left of documents, once every committed transaction is
                // in place: the bytes of a format-2 one-document commit that passed its
                // commit mark (moved into place), staged files of none (removed).
                let documents = docs::scan(&root, &[])?;
                if !documents.pending.is_empty() {
                    docs::complete_moves(&root, &documents.pending, &options.hooks)?;
                    report
                        .rolled_forward
                        .extend(documents.pending.iter().map(|(from, _)| root.join(from)));
                }
                layout::remove_temps(&documents.strays, &options.hooks)?;
                report.temps_removed.extend(documents.strays);
                log::prune_all(&root, head, &options.hooks)?;
                held.release(true, &options.hooks);
            }
        }
        let (mut scan, from_snapshot) = match snapshot::load(&root, &generation) {
            Some(scan) => (scan, true),
            None => (load(&root, &generation, lock.as_ref(), deadline)?, false),
        };
        if scan.findings.iter().any(|f| f.fatal) {
            return Err(refuse(&root, &scan.findings));
        }
        let stats = std::mem::take(&mut scan.stats);
        if options.read_only {
            let plan = Plan::of(&root, &generation)?;
            report.rolled_forward.extend(plan.overlay_paths());
            report.left_in_place.extend(plan.leftovers());
            report.left_in_place.extend(scan.temps.iter().cloned());
            // One-document commits of format 2 whose bytes a crash kept in journal/
            // (read from there), and staged files of no transaction.
            report
                .rolled_forward
                .extend(scan.doc_pending.iter().map(|(from, _)| root.join(from)));
            report.left_in_place.extend(scan.doc_strays.iter().cloned());
        } else if !scan.temps.is_empty() {
            // Temporary files outside `journal/` (left by an interrupted creation,
            // or by an older version): removed while no writer works.
            if let Some(held) = lock
                .as_ref()
                .map(LockFile::try_acquire)
                .transpose()?
                .flatten()
            {
                let present: Vec<PathBuf> = scan
                    .temps
                    .iter()
                    .filter(|t| files::exists(t) == Some(true))
                    .cloned()
                    .collect();
                layout::remove_temps(&present, &options.hooks)?;
                report.temps_removed.extend(present);
                held.release(true, &options.hooks);
            }
        }
        crate::observe::report_recovery(&report);
        drop(recovery_span);
        Ok(Self {
            root,
            options,
            current: RwLock::new(scan.state),
            refresh: Mutex::new(()),
            generation,
            lock,
            gate: Gate::default(),
            writer: Mutex::new(Writer {
                dirs: scan.dirs,
                poisoned: None,
            }),
            write_owner: Mutex::new(None),
            recovery: Mutex::new(report),
            full_reads: AtomicU64::new(u64::from(!from_snapshot)),
            from_snapshot,
            stats: Mutex::new(stats),
        })
    }

    /// Whether the open built this handle's image from the store's snapshot
    /// instead of reading every file (see `docs/jsonfs.md`, "The image snapshot").
    pub fn opened_from_snapshot(&self) -> bool {
        self.from_snapshot
    }

    /// Writes the store's snapshot of this handle's image, if the handle is
    /// writable, knows the status of every file its image came from, is at the
    /// generation the store has published, and the snapshot does not hold it
    /// already; whether it was written. Called when the handle is dropped and by
    /// [`Backend::optimize`].
    pub fn save_snapshot(&self) -> Result<bool> {
        if self.options.read_only || lock(&self.writer).poisoned.is_some() {
            return Ok(false);
        }
        let image = self.image();
        let mut stats = lock(&self.stats);
        snapshot::save(&self.root, &image, &mut stats, &self.options.hooks)
    }

    /// The store's folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The options it was opened with.
    pub fn options(&self) -> &JsonFsOptions {
        &self.options
    }

    /// What this handle had to finish or clean up after other writers that stopped
    /// half-way (crashed, killed, or failed past a commit mark): at open, and before
    /// its own write transactions since.
    pub fn recovery(&self) -> RecoveryReport {
        lock(&self.recovery).clone()
    }

    /// The generation of the commit log this handle's image is at: the number of
    /// the last transaction it has applied (see `docs/jsonfs.md`).
    pub fn generation(&self) -> u64 {
        self.image().generation
    }

    /// How many times this handle has read every file of the store: once at open,
    /// and again only when it fell further behind other processes' commits than
    /// the commit log keeps (otherwise it applies the log's records).
    pub fn full_reads(&self) -> u64 {
        self.full_reads.load(Ordering::Relaxed)
    }

    fn image(&self) -> Image {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn doc_view(&self, index: Docs) -> DocView<'_> {
        DocView {
            root: &self.root,
            index,
            current: &self.current,
        }
    }

    /// Replaces the image with a newer one (never with an older one: a reader's
    /// refresh and this process's writer may race, and both images of one
    /// generation are the same).
    fn install(&self, image: Image) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if image.generation > current.generation {
            *current = image;
        }
    }

    /// Once this handle's commit at `generation` has put its files in place, its
    /// image reads the documents from their own paths instead of the staged files
    /// (snapshots taken before still find them there: a rename keeps a file's
    /// identity). Regression: the image used to say so before the files were moved,
    /// and a read in between found the old file and failed with `Conflict`.
    fn settle_docs(&self, generation: u64) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.generation == generation {
            current.docs = docs::committed(&current.docs);
        }
    }

    /// Brings the image up to the generation other processes published: applies
    /// the log's records since the image's generation, or reads the store again if
    /// the log no longer has them all.
    fn refresh(&self) -> Result<()> {
        let Published::At(head) = self.generation.read()? else {
            // Nothing published, or a generation file a crash left unreadable (the
            // next writer repairs it): nothing to apply.
            return Ok(());
        };
        self.refresh_to(head)
    }

    fn refresh_to(&self, head: u64) -> Result<()> {
        if head <= self.current_generation() {
            return Ok(());
        }
        let _turn = lock(&self.refresh);
        let mut image = self.image();
        if head <= image.generation {
            return Ok(());
        }
        for g in image.generation + 1..=head {
            let applied = match log::read_record(&self.root, g)? {
                Record::Found(ops) => image.apply(&ops).is_ok(),
                Record::Missing | Record::Damaged => false,
            };
            // Another process's files, which this handle has not seen.
            lock(&self.stats).spoil();
            if !applied {
                self.full_reads.fetch_add(1, Ordering::Relaxed);
                let scan = load(
                    &self.root,
                    &self.generation,
                    self.lock.as_ref(),
                    self.deadline(),
                )?;
                if scan.findings.iter().any(|f| f.fatal) {
                    return Err(refuse(&self.root, &scan.findings));
                }
                let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
                if scan.state.generation >= current.generation {
                    *lock(&self.stats) = scan.stats;
                    *current = scan.state;
                }
                return Ok(());
            }
        }
        image.generation = head;
        self.install(image);
        Ok(())
    }

    fn current_generation(&self) -> u64 {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    fn deadline(&self) -> Option<Instant> {
        self.options.lock_timeout.map(|t| Instant::now() + t)
    }

    /// The check while no writer works (the caller holds the lock, if there is one).
    fn check_quiet(&self, held: Option<&Held<'_>>, problems: &mut Vec<Problem>) -> Result<()> {
        self.refresh()?;
        if let (Some(held), Some(lock_file)) = (held, &self.lock)
            && held.unclean
        {
            problems.push(Problem::note(
                lock_file.path().display().to_string(),
                "names a writer that stopped while it held the store (killed, crashed, or a \
                 commit failed past its commit mark): the next write (or writable open) \
                 recovers what it left",
            ));
        }
        let plan = Plan::of(&self.root, &self.generation)?;
        problems.extend(plan.findings());
        let overlay: Vec<FileOp> = plan
            .overlay()
            .into_iter()
            .flat_map(|(_, ops)| ops.iter().cloned())
            .collect();
        let scan = scan::scan(&self.root, &overlay)?;
        report_scan(&scan, problems);
        // What this handle holds, with the transactions committed but not published
        // yet applied as the next writer will publish them.
        let mut expected = self.image();
        for g in plan.unpublished() {
            if g <= expected.generation {
                continue;
            }
            let ops = match plan.overlay().into_iter().find(|(h, _)| *h == g) {
                Some((_, ops)) => ops.to_vec(),
                None => match log::read_record(&self.root, g)? {
                    Record::Found(ops) => ops,
                    Record::Missing | Record::Damaged => continue,
                },
            };
            let _ = expected.apply(&ops);
        }
        compare(&self.root, &expected.graph, &scan.state.graph, problems)?;
        docs::check(&self.root, &expected.docs, &scan.state.docs, problems)
    }

    /// The check while a writer works: the files as a reader reads them, compared
    /// with this handle's image at the same generation. A one-file commit caught
    /// between its rename and its record would show as a difference: a difference
    /// is reported only if it is still there when the check is done again.
    fn check_busy(&self, problems: &mut Vec<Problem>) -> Result<()> {
        if let Some(lock_file) = &self.lock {
            let holder = match lock_file.locked() {
                Error::Locked {
                    holder: Some(holder),
                    ..
                } => holder,
                _ => "another process".into(),
            };
            problems.push(Problem::note(
                lock_file.path().display().to_string(),
                format!(
                    "a writer ({holder}) was at work during the check: its transaction was \
                     checked whole or not at all, and what is in journal/ is its own"
                ),
            ));
        }
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let Some(scan) = (0..LOAD_ATTEMPTS)
                .find_map(|_| load_once(&self.root, &self.generation).transpose())
                .transpose()?
            else {
                return Err(Error::Locked {
                    resource: format!("{} (check)", self.root.display()),
                    holder: Some("writers committing faster than the log keeps records".into()),
                });
            };
            self.refresh()?;
            let mut expected = self.image();
            // This handle's image is ahead of the files read: read them again.
            let mut complete = expected.generation <= scan.state.generation;
            if !complete && attempt < ATTEMPTS {
                continue;
            }
            for g in expected.generation + 1..=scan.state.generation {
                match log::read_record(&self.root, g)? {
                    Record::Found(ops) if expected.apply(&ops).is_ok() => {}
                    _ => complete = false,
                }
            }
            let mut differences = Vec::new();
            if complete {
                compare(
                    &self.root,
                    &expected.graph,
                    &scan.state.graph,
                    &mut differences,
                )?;
                docs::check(
                    &self.root,
                    &expected.docs,
                    &scan.state.docs,
                    &mut differences,
                )?;
            }
            if differences.is_empty() || attempt == ATTEMPTS {
                report_scan(&scan, problems);
                problems.extend(differences);
                return Ok(());
            }
        }
        Ok(())
    }

    fn poisoned_error(reason: &str) -> Error {
        Error::backend(
            "jsonfs",
            format!(
                "an earlier commit failed after its commit mark ({reason}); the next write \
                 or open of the store finishes it, and this handle takes no more writes: \
                 reopen the store"
            ),
        )
    }
}

/// What a scan found, as findings of a check.
fn report_scan(scan: &Scan, problems: &mut Vec<Problem>) {
    problems.extend(scan.findings.iter().map(Finding::problem));
    scan_notes(scan, problems);
}

/// What a scan found that is not damage (leftovers a writable open recovers), as
/// notes of a check.
pub(crate) fn scan_notes(scan: &Scan, problems: &mut Vec<Problem>) {
    for temp in &scan.temps {
        problems.push(Problem::note(
            temp.display().to_string(),
            "temporary file of an interrupted write: the next writable open removes it",
        ));
    }
    for stray in &scan.doc_strays {
        problems.push(Problem::note(
            stray.display().to_string(),
            "staged document (or metadata) of a transaction that never committed: the next \
             writable open removes it",
        ));
    }
    for (from, to) in &scan.doc_pending {
        problems.push(Problem::note(
            from.clone(),
            format!(
                "a file of a committed one-document transaction (its bytes, format 2 or 5, \
                 or its metadata, format 5) that a crash kept from its place: the next \
                 writable open moves it to {to}"
            ),
        ));
    }
}

/// Reads the whole store (see [`load_once`]); when other processes commit faster
/// than the log keeps their records, tries again, and at last reads it under the
/// lock (waiting until `deadline`).
fn load(
    root: &Path,
    generation: &Generation,
    lock: Option<&LockFile>,
    deadline: Option<Instant>,
) -> Result<Scan> {
    for _ in 0..LOAD_ATTEMPTS {
        if let Some(scan) = load_once(root, generation)? {
            return Ok(scan);
        }
    }
    let _held = lock.map(|l| l.acquire(deadline)).transpose()?;
    // No writer works now: the files hold every published transaction but those a
    // writer that stopped half-way left in `journal/`.
    let plan = Plan::of(root, generation)?;
    plan.refuse_damaged()?;
    let overlay: Vec<FileOp> = plan
        .published_overlay()
        .into_iter()
        .flat_map(|(_, ops)| ops.iter().cloned())
        .collect();
    let mut scan = scan::scan(root, &overlay)?;
    scan.state.generation = plan.published_generation();
    Ok(scan)
}

/// Finishes or discards what a writer that stopped half-way left (the caller holds
/// the lock), and, if the last holder died with the store open, syncs every data
/// folder: names it created, renamed or removed may be visible without being
/// durable yet (a crash between a rename and its folder sync, or a writer with
/// `Relaxed` durability), and this writer's commits must not be built on names a
/// power cut could still undo. Returns the published generation.
fn recover(
    root: &Path,
    options: &JsonFsOptions,
    generation: &Generation,
    held: &Held<'_>,
    report: &mut RecoveryReport,
) -> Result<u64> {
    let plan = Plan::of(root, generation)?;
    let head = plan.execute(root, &options.hooks, generation, report)?;
    if held.unclean {
        let mut dirs: Vec<PathBuf> = scan::data_folders(root)?
            .iter()
            .map(|d| root.join(d))
            .collect();
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
    Ok(head)
}

impl Backend for JsonFsBackend {
    fn name(&self) -> &str {
        "jsonfs"
    }

    /// A snapshot of the image, after applying what other processes committed.
    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        self.refresh()?;
        let image = self.image();
        Ok(Box::new(JsonFsRead {
            state: image.graph,
            docs: self.doc_view(image.docs),
        }))
    }

    /// Waits for this process's other writers, then for the store's lock (both up
    /// to `lock_timeout` in all), recovers what a writer that stopped half-way
    /// left, and applies what other processes committed: the transaction starts
    /// from the last committed state.
    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        if self.options.read_only {
            return Err(Error::unsupported(
                format!("writing to {} (opened read-only)", self.root.display()),
                "jsonfs",
            ));
        }
        let deadline = self.deadline();
        let gate = self.gate.enter(
            deadline.map(|d| d.saturating_duration_since(Instant::now())),
            &self.root.join(crate::LOCK_FILE).display().to_string(),
        )?;
        if let Some(reason) = &lock(&self.writer).poisoned {
            return Err(Self::poisoned_error(reason));
        }
        let Some(lock_file) = &self.lock else {
            return Err(Error::backend(
                "jsonfs",
                "a writable handle has no lock file",
            ));
        };
        let held = lock_file.acquire(deadline)?.claim(&self.options.hooks)?;
        let published = self.generation.read()?;
        // The last holder died (or failed past a commit mark), the generation file
        // does not read, or the log holds a transaction it does not name: recover.
        let behind = match published {
            Published::Unreadable => true,
            other => log::has_record(&self.root, other.generation().unwrap_or(0) + 1),
        };
        let head = if held.unclean || behind {
            let _span = tracing::info_span!("recovery", store = %self.root.display()).entered();
            let mut report = RecoveryReport::default();
            let head = recover(
                &self.root,
                &self.options,
                &self.generation,
                &held,
                &mut report,
            );
            crate::observe::report_recovery(&report);
            lock(&self.recovery).append(report);
            head?
        } else {
            published.generation().unwrap_or(0)
        };
        self.refresh_to(head)?;
        let base = self.image();
        if base.generation != head {
            // An image ahead of the published generation (the generation file was
            // replaced?): read the store again, under the lock.
            self.full_reads.fetch_add(1, Ordering::Relaxed);
            let mut scan = scan::scan(&self.root, &[])?;
            if scan.findings.iter().any(|f| f.fatal) {
                return Err(refuse(&self.root, &scan.findings));
            }
            scan.state.generation = head;
            *lock(&self.stats) = std::mem::take(&mut scan.stats);
            *self.current.write().unwrap_or_else(PoisonError::into_inner) = scan.state;
        }
        let base = self.image();
        *lock(&self.write_owner) = Some(thread::current().id());
        Ok(Box::new(JsonFsWrite {
            backend: self,
            _gate: gate,
            held: Some(held),
            state: base.graph.clone(),
            changed: BTreeSet::new(),
            docs: DocTxn {
                view: self.doc_view(base.docs.clone()),
                changes: Default::default(),
                hooks: &self.options.hooks,
            },
            base,
        }))
    }

    /// Reads every file again and reports what is wrong: files that do not parse,
    /// sit elsewhere than their keys say, or break integrity; stray files; any
    /// difference between the files and this open store (a hand edit made while it
    /// was open); and, as notes, what a writer that stopped half-way left and what
    /// the next write will do with it. A check waits for no writer: while one is
    /// at work, the files are read as a reader reads them (its transaction is
    /// applied whole, from the log, or not at all) and what is in `journal/` is its own.
    fn check(&self) -> Result<Vec<Problem>> {
        if *lock(&self.write_owner) == Some(thread::current().id()) {
            return Err(Error::Locked {
                resource: format!("{} (check)", self.root.display()),
                holder: Some("this thread's own write transaction (check after it)".into()),
            });
        }
        let mut problems = Vec::new();
        if let Some(reason) = &lock(&self.writer).poisoned {
            problems.push(Problem::new(
                self.root.display().to_string(),
                format!("a commit failed after its commit mark ({reason}): reopen the store"),
            ));
        }
        let marker = self.root.join(MARKER);
        if let Err(e) = std::fs::read(&marker) {
            problems.push(Problem::new(
                marker.display().to_string(),
                format!("the format marker cannot be read: {e}"),
            ));
        }
        // With the turn of this process and the store's lock, no commit changes the
        // files under the scan, and what is in `journal/` was left by a writer that stopped.
        let quiet = match self.gate.try_enter() {
            Some(gate) => match &self.lock {
                Some(lock_file) => lock_file.try_acquire()?.map(|held| (gate, Some(held))),
                None => Some((gate, None)),
            },
            None => None,
        };
        match quiet {
            Some((_gate, held)) => self.check_quiet(held.as_ref(), &mut problems)?,
            None => self.check_busy(&mut problems)?,
        }
        Ok(problems)
    }

    fn durability(&self) -> Option<kgstore_core::Durability> {
        Some(self.options.durability)
    }

    /// What this handle recovered after interrupted writers (at open and before its
    /// write transactions since), and how it kept up with other processes' commits.
    fn figures(&self) -> Result<Vec<kgstore_core::BackendFigure>> {
        let mut figures = crate::observe::figures(&lock(&self.recovery));
        figures.push(kgstore_core::BackendFigure::counter(
            "full_reads",
            self.full_reads(),
            "reads of every file of the store (once at open; again only when the commit \
             log no longer held what this handle needed)",
        ));
        Ok(figures)
    }

    /// Every file is always in its final form; writes the image snapshot if the
    /// store's is not this handle's image (see [`JsonFsBackend::save_snapshot`]).
    fn optimize(&self) -> Result<()> {
        self.save_snapshot().map(drop)
    }

    /// Writes a consistent copy of the store, taken from one snapshot while writers
    /// go on, as a new jsonfs store folder at `dest`, which must not exist. The copy is
    /// built under a temporary name beside `dest` and renamed into place when complete.
    fn backup_native(&self, dest: &Path) -> Result<()> {
        self.refresh()?;
        let image = self.image();
        crate::backup::write_copy(
            &image.graph,
            &image.docs,
            &self.root,
            dest,
            &self.options.hooks,
        )
    }
}

impl Drop for JsonFsBackend {
    /// Writes the image snapshot (see [`JsonFsBackend::save_snapshot`]); a
    /// failure only means that the next open reads every file.
    fn drop(&mut self) {
        match self.save_snapshot() {
            Ok(written) => {
                tracing::debug!(store = %self.root.display(), written, "image snapshot at close")
            }
            Err(e) => {
                tracing::info!(store = %self.root.display(), error = %e, "the image snapshot was not written")
            }
        }
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

/// The write transaction: a private copy of the state plus the keys it changed,
/// written to the files at commit. It holds this process's turn and the store's
/// lock until it commits or is dropped.
pub(crate) struct JsonFsWrite<'a> {
    backend: &'a JsonFsBackend,
    _gate: GateGuard<'a>,
    /// `None` once let go.
    held: Option<Held<'a>>,
    base: Image,
    pub(crate) state: GraphState,
    pub(crate) changed: BTreeSet<Key>,
    /// The documents as the transaction has them, and what it changed.
    docs: DocTxn<'a>,
}

kgstore_core::delegate_read_txn!(JsonFsWrite<'_>, state, events, documents: docs);

impl Drop for JsonFsWrite<'_> {
    fn drop(&mut self) {
        // Rolled back (or committed, and let go already): nothing was written.
        if let Some(held) = self.held.take() {
            held.release(true, &self.backend.options.hooks);
        }
        *lock(&self.backend.write_owner) = None;
    }
}

impl JsonFsWrite<'_> {
    /// Lets go of the lock; `clean` when nothing is left for the next writer to recover.
    fn release(&mut self, clean: bool) {
        if let Some(held) = self.held.take() {
            held.release(clean, &self.backend.options.hooks);
        }
    }

    /// Refuses further writes on this handle after a failure past the commit mark,
    /// lets go of the lock leaving the pid for the next writer to recover after,
    /// and returns the commit's error with what happens next added to its message.
    fn poison(&mut self, e: Error, next: &str) -> Error {
        lock(&self.backend.writer).poisoned = Some(e.to_string());
        self.release(false);
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
        let (now, before) = match key {
            Key::Node(name) => (
                self.state.get_node(name)?.map(Content::node),
                self.base.graph.contains_node(name)?,
            ),
            Key::Edge(edge) => (
                self.state.get_edge(edge)?.map(Content::edge),
                self.base.graph.contains_edge(edge)?,
            ),
            Key::Schema(target) => (
                self.state.get_schema(target)?.map(Content::schema),
                self.base.graph.get_schema(target)?.is_some(),
            ),
            Key::Event(position) => (
                self.state
                    .event_state()
                    .record(*position)
                    .cloned()
                    .map(Content::event),
                self.base.graph.event_state().record(*position).is_some(),
            ),
            Key::State(space, key) => (
                self.state
                    .event_state()
                    .state_get(space, key)?
                    .map(|v| Content::state(space, key, v)),
                self.base
                    .graph
                    .event_state()
                    .state_get(space, key)?
                    .is_some(),
            ),
        };
        Ok(match (now, before) {
            (None, false) => None,
            (content, _) => Some(Change {
                rel: key.path(),
                content,
            }),
        })
    }
}

const COMMITTED_NEXT: &str = "the commit had passed its commit mark and completes when the \
     store is next opened or written to (by any process); this handle takes no more writes";
const UNKNOWN_NEXT: &str = "whether the commit took effect is known when the store is next \
     opened or written to (it is then whole or absent); this handle takes no more writes";

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

    /// Writes the changed files (see `docs/jsonfs.md`, "Commit protocol"), makes the
    /// new state this handle's image, publishes it to the other processes, and lets
    /// go of the lock.
    fn commit(self: Box<Self>) -> Result<()> {
        let mut this = *self;
        let backend = this.backend;
        if let Some(reason) = &lock(&backend.writer).poisoned {
            return Err(JsonFsBackend::poisoned_error(reason));
        }
        let mut changes = Vec::with_capacity(this.changed.len());
        for key in &this.changed {
            changes.extend(this.change(key)?);
        }
        changes.extend(docs::file_changes(&this.docs, &this.base.docs));
        // From here the commit owns the staged files: a failure before its commit
        // mark removes them, one after it leaves them to the next writer's recovery.
        let staged = std::mem::take(&mut this.docs.changes);
        if changes.is_empty() {
            this.release(true);
            return Ok(());
        }
        let generation = this.base.generation + 1;
        let disk = Disk {
            root: &backend.root,
            durability: backend.options.durability,
            hooks: &backend.options.hooks,
            generation: &backend.generation,
        };
        // The image after the transaction, made before anything is written.
        let mut image = this.base.clone();
        image.graph = std::mem::take(&mut this.state);
        for key in &this.changed {
            let exists = match key {
                Key::Node(name) => image.graph.contains_node(name)?,
                Key::Edge(edge) => image.graph.contains_edge(edge)?,
                Key::Schema(target) => image.graph.get_schema(target)?.is_some(),
                Key::Event(position) => image.graph.event_state().record(*position).is_some(),
                Key::State(space, key) => {
                    image.graph.event_state().state_get(space, key)?.is_some()
                }
            };
            image.wrote(key, exists);
        }
        // Readers of the image find the written documents' bytes in their staged
        // files until `complete` has moved them into place (then `settle_docs`).
        image.wrote_docs(
            this.docs.view.index.clone(),
            staged
                .iter()
                .map(|(key, change)| (key, matches!(change, DocChange::Put(_)))),
        );
        image.generation = generation;
        // The graph's files this commit writes (true) or removes.
        let graph_files: Vec<(String, bool)> = changes
            .iter()
            .filter(|c| snapshot::is_graph_path(&c.rel))
            .map(|c| (c.rel.clone(), c.content.is_some()))
            .collect();
        let mut writer = lock(&backend.writer);
        let committed = match disk.commit(changes, &writer.dirs, generation) {
            Ok(committed) => committed,
            Err(Failure::Clean { error, tidy }) => {
                drop(writer);
                let mut tidy = tidy;
                for change in staged.values() {
                    if let DocChange::Put(rel) = change {
                        // Staged bytes whose staged metadata could not be removed stay
                        // with it: the pair is discarded by the next open, where the
                        // metadata alone could pass for a commit's whose bytes moved.
                        let meta = backend.root.join(docs::staged_meta_of(rel));
                        tidy &= files::exists(&meta) == Some(false)
                            && files::remove(&backend.root.join(rel), &backend.options.hooks)
                                .is_ok();
                    }
                }
                this.release(tidy);
                return Err(error);
            }
            Err(Failure::Committed(e)) => {
                drop(writer);
                return Err(this.poison(e, COMMITTED_NEXT));
            }
            Err(Failure::Unknown(e)) => {
                drop(writer);
                return Err(this.poison(e, UNKNOWN_NEXT));
            }
        };
        // Committed: this handle's readers see the transaction from now on (before
        // other processes do, so that they never read it back from the log).
        backend.install(image);
        let outcome = disk.complete(committed, &mut writer.dirs);
        drop(writer);
        match outcome {
            Ok(()) => {
                backend.settle_docs(generation);
                // The status of each file as this commit left it, for the snapshot:
                // taken on several threads for a large commit (one `lstat` per file),
                // then recorded in order.
                let workers = if backend.options.hooks.serial() {
                    1
                } else {
                    crate::files::workers_for(graph_files.len(), 4096, 8)
                };
                let statuses =
                    crate::files::parallel_map(&graph_files, workers, |(rel, exists)| {
                        exists.then(|| {
                            std::fs::symlink_metadata(backend.root.join(rel))
                                .map(|meta| (meta, snapshot::now_ns()))
                        })
                    });
                let mut stats = lock(&backend.stats);
                for ((rel, _), status) in graph_files.iter().zip(statuses) {
                    match status {
                        Some(Ok((meta, taken))) => stats.record_taken(rel, &meta, taken),
                        Some(Err(_)) => stats.spoil(),
                        None => stats.forget(rel),
                    }
                }
                drop(stats);
                this.release(true);
                Ok(())
            }
            Err(Failure::Clean { error, .. } | Failure::Committed(error)) => {
                Err(this.poison(error, COMMITTED_NEXT))
            }
            Err(Failure::Unknown(e)) => Err(this.poison(e, UNKNOWN_NEXT)),
        }
    }
}
