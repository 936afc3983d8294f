//! File-system steps: temporary files, syncs, renames, and the JSON form of entities.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kgstore_core::entity_file;
use kgstore_core::{Edge, Error, Node, Result};
use serde_json::Value;

use crate::fault::{FaultPoint, Hooks};
use crate::fsio;

/// Every temporary file's name starts with this; open removes any it finds.
pub const TEMP_PREFIX: &str = ".tmp-";

/// The suffix of a temporary file that holds a journal or a log record (rather
/// than an entity file's content): recovery reports those as discarded journals.
pub const JOURNAL_TEMP_SUFFIX: &str = ".journal";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary file name, unique in this process; the pid keeps processes
/// apart, and the lock keeps two writers from ever staging at once.
pub fn temp_name(suffix: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{}-{n}{suffix}", std::process::id())
}

/// Whether a file name is one of our temporary files.
pub fn is_temp(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

/// The name of a large commit's staging folder in `journal/` starts with this
/// (not with [`TEMP_PREFIX`]: a build of format 5 or older would try to remove
/// it as a file, and fail; it leaves it alone as a stray instead).
pub const BULK_PREFIX: &str = "bulk-";

/// A fresh name for a large commit's staging folder in `journal/`.
pub fn bulk_name() -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{BULK_PREFIX}{}-{n}", std::process::id())
}

/// Whether a name in `journal/` is a large commit's staging folder.
pub fn is_bulk_name(name: &str) -> bool {
    name.strip_prefix(BULK_PREFIX).is_some_and(|rest| {
        rest.split_once('-').is_some_and(|(pid, n)| {
            !pid.is_empty()
                && !n.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && n.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

pub use kgstore_core::entity_file::render;

/// What an entity file holds. Fields are written in the order of their struct,
/// JSON objects (attributes, schemas) with their keys sorted.
#[derive(Clone, Debug)]
pub enum Content {
    /// A node file.
    Node(Node),
    /// An edge file.
    Edge(Edge),
    /// A schema file (the schema document itself).
    Schema(Value),
    /// An event at its position.
    Event(Box<kgstore_core::events::LogRecord>),
    /// An entry of the event store's keyed state.
    State(crate::events::StateFile),
    /// A document's metadata file.
    DocMeta(kgstore_core::DocumentMeta),
    /// A document's bytes, already in a staged file (relative path), moved into place.
    Staged(String, crate::docs::FileId),
}

impl Content {
    /// A node's file content.
    pub fn node(node: Node) -> Self {
        Self::Node(node)
    }

    /// An edge's file content.
    pub fn edge(edge: Edge) -> Self {
        Self::Edge(edge)
    }

    /// A schema's file content.
    pub fn schema(schema: Value) -> Self {
        Self::Schema(schema)
    }

    /// An event's file content (JSON objects with their keys sorted).
    pub fn event(mut record: kgstore_core::events::LogRecord) -> Self {
        record.data.sort_all_objects();
        entity_file::sort_map(&mut record.metadata);
        Self::Event(Box::new(record))
    }

    /// A state entry's file content.
    pub fn state(space: &str, key: &str, mut value: Value) -> Self {
        value.sort_all_objects();
        Self::State(crate::events::StateFile {
            space: space.to_owned(),
            key: key.to_owned(),
            value,
        })
    }

    /// The file's bytes.
    pub fn render(&self) -> Result<Vec<u8>> {
        match self {
            Self::Node(node) => entity_file::render_node(node),
            Self::Edge(edge) => entity_file::render_edge(edge),
            Self::Schema(schema) => entity_file::render_schema(schema),
            Self::Event(record) => render(&**record),
            Self::State(entry) => render(entry),
            Self::DocMeta(meta) => render(meta),
            Self::Staged(rel, _) => Err(Error::backend(
                "jsonfs",
                format!("the staged document {rel} is moved into place, not rendered"),
            )),
        }
    }
}

/// Syncs a folder so that the names created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path, hooks: &Hooks) -> Result<()> {
    fsio::sync_dir(dir, hooks).map_err(|e| Error::io(dir, e))
}

/// Creates a folder if missing; whether it was created.
pub fn ensure_dir(dir: &Path, hooks: &Hooks) -> Result<bool> {
    match fsio::create_dir(dir, hooks) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// What a temporary file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temp {
    /// An entity file's new content, staged in `journal/` before its rename into
    /// place: synced, passing `TempWritten` and `TempSynced`.
    Entity,
    /// A multi-file transaction's journal: synced, passing `JournalWritten` and
    /// `JournalSynced`.
    Journal,
    /// A large commit's journal, written while its files are staged: not synced
    /// here (the batch's one `syncfs` makes it durable with them), passing
    /// `JournalWritten` (the batch passes `JournalSynced` after its sync).
    BatchJournal,
    /// A one-file transaction's log record: not synced (it serves the running
    /// processes only; the file it describes is the durable commit).
    Record,
    /// A file recovery rewrites from a journal: synced, at no named point.
    Rewrite,
}

impl Temp {
    fn points(self) -> Option<(FaultPoint, FaultPoint)> {
        match self {
            Self::Entity => Some((FaultPoint::TempWritten, FaultPoint::TempSynced)),
            Self::Journal | Self::BatchJournal => {
                Some((FaultPoint::JournalWritten, FaultPoint::JournalSynced))
            }
            Self::Record | Self::Rewrite => None,
        }
    }

    /// Whether [`write_temp`] syncs the file (a record's and a large commit's
    /// journal are made durable otherwise).
    fn synced(self) -> bool {
        !matches!(self, Self::Record | Self::BatchJournal)
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Journal | Self::BatchJournal | Self::Record => JOURNAL_TEMP_SUFFIX,
            Self::Entity | Self::Rewrite => "",
        }
    }
}

/// Writes `bytes` to a new temporary file in `dir`, and syncs it unless it is a
/// [`Temp::Record`] or a [`Temp::BatchJournal`]. On failure the temporary file is removed (best effort: a later
/// recovery removes what is left), never synced again: after a failed sync its
/// content is not trusted.
pub fn write_temp(dir: &Path, bytes: &[u8], hooks: &Hooks, kind: Temp) -> Result<PathBuf> {
    let path = dir.join(temp_name(kind.suffix()));
    let points = kind.points();
    let mut created = false;
    let outcome = (|| {
        let mut file = fsio::create_new(&path, hooks)?;
        created = true;
        fsio::write_all(&mut file, &path, bytes, hooks)?;
        if let Some((written, _)) = points {
            hooks.at(written)?;
        }
        if !kind.synced() {
            return Ok(());
        }
        fsio::sync_file(&file, &path, hooks)?;
        match points {
            Some((_, synced)) => hooks.at(synced),
            None => Ok(()),
        }
    })();
    match outcome {
        Ok(()) => Ok(path),
        Err(e) => {
            if created {
                let _ = fsio::remove_file(&path, hooks);
            }
            Err(Error::io(&path, e))
        }
    }
}

/// Writes `bytes` to the new file `path`, in a large commit's staging folder,
/// without a sync (the batch's one `syncfs` makes it durable, passing
/// `TempSynced`), passing `TempWritten`. On failure the file is removed (best
/// effort: the staging folder is removed with it).
pub fn write_staged(path: &Path, bytes: &[u8], hooks: &Hooks) -> Result<()> {
    let mut created = false;
    let outcome = (|| {
        let mut file = fsio::create_new(path, hooks)?;
        created = true;
        fsio::write_all(&mut file, path, bytes, hooks)?;
        hooks.at(FaultPoint::TempWritten)
    })();
    outcome.map_err(|e| {
        if created {
            let _ = fsio::remove_file(path, hooks);
        }
        Error::io(path, e)
    })
}

/// Removes a folder and everything in it; whether it was there.
pub fn remove_tree(path: &Path, hooks: &Hooks) -> Result<bool> {
    match fsio::remove_dir_all(path, hooks) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Renames a file into place.
pub fn rename(from: &Path, to: &Path, hooks: &Hooks) -> Result<()> {
    fsio::rename(from, to, hooks).map_err(|e| Error::io(to, e))
}

/// Removes a file; `Ok(false)` if it was not there.
pub fn remove(path: &Path, hooks: &Hooks) -> Result<bool> {
    match fsio::remove_file(path, hooks) {
        Ok(()) => Ok(true),
        // Not there; or a folder on its way became a file (a document's folder that
        // a committed transaction turned into a document): not there either.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Whether a path still exists after a step that failed: `Some(true)` or
/// `Some(false)`, or `None` if even that cannot be told.
pub fn exists(path: &Path) -> Option<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Some(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

/// Writes a small file atomically: temporary file, sync, rename, folder sync.
pub fn write_atomic(path: &Path, bytes: &[u8], hooks: &Hooks) -> Result<()> {
    let dir = parent(path);
    let temp = write_temp(dir, bytes, hooks, Temp::Rewrite)?;
    if let Err(e) = rename(&temp, path, hooks) {
        let _ = fsio::remove_file(&temp, hooks);
        return Err(e);
    }
    sync_dir(dir, hooks)
}

/// A path's folder (the path itself if it has none).
pub fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(path)
}

/// The worker threads worth using for `items` pieces of file work: file systems
/// overlap many syncs, so this may exceed the number of cores.
pub fn workers_for(items: usize, per_worker: usize, max: usize) -> usize {
    items.div_ceil(per_worker.max(1)).clamp(1, max)
}

/// Maps `f` over `items` on up to `workers` scoped threads, keeping the order.
/// Each worker takes the next item when it is done with one, so items of very
/// different cost (a folder of edges holds five times the files of a folder of
/// nodes) do not leave some workers idle while another has most of the work.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if workers <= 1 || items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..workers.min(items.len()))
            .map(|_| scope.spawn(work))
            .collect();
        let mut results = work();
        for handle in handles {
            match handle.join() {
                Ok(done) => results.extend(done),
                // Our closures do not panic; if one did, re-raise it here.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
