//! The store's folder: its format marker, creation, and recovery after a crash.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use kgstore_core::{Error, Result};
use serde_json::{Value, json};

use crate::docs::{self, DOCMETA, DOCUMENTS};
use crate::fault::{FaultPoint, Hooks};
use crate::files::{self, ensure_dir, is_temp, parent, sync_dir};
use crate::journal::{self, COMMITTED, FileOp, JOURNAL_DIR};
use crate::lock::LOCK_FILE;
use crate::names::{EDGES, NODES, SCHEMAS};

/// The format marker's file name.
pub const MARKER: &str = "kgstore-jsonfs.json";
/// The format's name in the marker.
pub const FORMAT: &str = "kgstore-jsonfs";
/// The format version this build writes (and the newest it reads). Each version
/// added a kind of data; an older store is read as it is and marked with this
/// version by its first writable open (once the new folders exist), so that an
/// older kgstore does not take a store holding newer data, or a journal naming its
/// files, for its own. The versions, each with what it added:
///
/// | version | added |
/// |---------|-------|
/// | 1 | the graph (`nodes/`, `edges/`, `schemas/`) |
/// | 2 | documents (`documents/`, `docmeta/`) |
/// | 3 | the event store (`events/`) |
pub const VERSION: u64 = 3;
/// What a store's own `.gitignore` keeps out of version control.
const GITIGNORE: &str = "# Written by kgstore-jsonfs: the lock, unfinished commits and temporary files.\nLOCK\njournal/\n.tmp-*\n";

/// Every folder of a store, parents first.
pub const FOLDERS: [&str; 11] = [
    NODES,
    EDGES,
    SCHEMAS,
    "schemas/node_type",
    "schemas/relation_type",
    crate::events::EVENTS,
    crate::events::LOG,
    crate::events::STATE,
    JOURNAL_DIR,
    DOCUMENTS,
    DOCMETA,
];

/// What opening a store cleaned up after an earlier crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Committed journals whose transactions were completed, and staged bytes of
    /// one-document commits moved into place after their commit mark (for a
    /// read-only open: applied in memory only, and left on disk for the next
    /// writable open).
    pub rolled_forward: Vec<PathBuf>,
    /// Journals that had not reached their commit mark, removed with no effect.
    pub discarded: Vec<PathBuf>,
    /// Stray temporary files of interrupted writes, removed.
    pub temps_removed: Vec<PathBuf>,
    /// Leftovers a read-only open found but may not remove.
    pub left_in_place: Vec<PathBuf>,
}

impl RecoveryReport {
    /// Whether the store was found closed cleanly.
    pub fn is_clean(&self) -> bool {
        self.rolled_forward.is_empty()
            && self.discarded.is_empty()
            && self.temps_removed.is_empty()
            && self.left_in_place.is_empty()
    }
}

impl std::fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_clean() {
            return f.write_str("clean");
        }
        let mut parts = Vec::new();
        for (what, paths) in [
            ("rolled forward", &self.rolled_forward),
            ("discarded uncommitted journal", &self.discarded),
            ("removed temporary file", &self.temps_removed),
            ("left in place (read-only)", &self.left_in_place),
        ] {
            for path in paths {
                parts.push(format!("{what} {}", path.display()));
            }
        }
        f.write_str(&parts.join("; "))
    }
}

fn not_a_store(root: &Path, reason: &str) -> Error {
    Error::invalid_input(
        format!("jsonfs store folder {}", root.display()),
        format!("{reason} (a store has a {MARKER} format marker)"),
    )
}

/// Checks the format marker, creating a new store in a blank folder; a writable open
/// also re-creates missing data folders (git does not keep empty folders) and syncs
/// the store's folder, its data folders and `journal/`: an earlier process that
/// crashed, or wrote with relaxed durability, may have left names in them (the
/// marker, a shard folder, a journal's removal) that are visible but not yet
/// durable, and this process's commits must not be built on names a power cut
/// could still undo.
pub fn prepare(root: &Path, read_only: bool, hooks: &Hooks) -> Result<()> {
    let marker = root.join(MARKER);
    let older = match fs::read(&marker) {
        Ok(bytes) => check_marker(&marker, &bytes)? < VERSION,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if read_only {
                return Err(not_a_store(root, "has no store to read"));
            }
            if !is_blank(root)? {
                return Err(not_a_store(
                    root,
                    "is not empty and holds no kgstore-jsonfs store",
                ));
            }
            // The folder's own name first: it may have been made by an earlier
            // attempt that failed before syncing it, and is synced here every time.
            if let Some(parent) = root.parent() {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                sync_dir(parent, hooks)?;
            }
            return create(root, hooks);
        }
        Err(e) => return Err(Error::io(&marker, e)),
    };
    if !read_only {
        for folder in FOLDERS {
            ensure_dir(&root.join(folder), hooks)?;
        }
        sync_dir(root, hooks)?;
        for folder in FOLDERS {
            sync_dir(&root.join(folder), hooks)?;
        }
        if older {
            write_marker(root, hooks)?;
        }
    }
    Ok(())
}

fn write_marker(root: &Path, hooks: &Hooks) -> Result<()> {
    let marker = files::render(&json!({ "format": FORMAT, "version": VERSION }))?;
    files::write_atomic(&root.join(MARKER), &marker, hooks)
}

/// Checks the format marker; the version it names.
fn check_marker(path: &Path, bytes: &[u8]) -> Result<u64> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::corrupt(path, format!("the format marker does not parse: {e}")))?;
    if value.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(Error::corrupt(
            path,
            format!("the format marker does not name the {FORMAT} format"),
        ));
    }
    match value.get("version").and_then(Value::as_u64) {
        Some(version @ 1..=VERSION) => Ok(version),
        Some(newer) if newer > VERSION => Err(Error::unsupported(
            format!("format version {newer} (this build reads version {VERSION})"),
            "jsonfs",
        )),
        _ => Err(Error::corrupt(
            path,
            "the format marker has no valid version",
        )),
    }
}

/// Whether a folder holds nothing but what an interrupted creation leaves.
fn is_blank(root: &Path) -> Result<bool> {
    fn blank(dir: &Path, top: bool) -> std::io::Result<bool> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ok = if entry.file_type()?.is_dir() {
                blank(&entry.path(), false)?
            } else {
                is_temp(&name) || (top && (name == LOCK_FILE || name == ".gitignore"))
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }
    blank(root, true).map_err(|e| Error::io(root, e))
}

/// Creates an empty store in `root`: folders, `.gitignore`, then the marker, whose
/// rename is the moment the store exists.
pub fn create(root: &Path, hooks: &Hooks) -> Result<()> {
    for folder in FOLDERS {
        ensure_dir(&root.join(folder), hooks)?;
    }
    sync_dir(&root.join(SCHEMAS), hooks)?;
    files::write_atomic(&root.join(".gitignore"), GITIGNORE.as_bytes(), hooks)?;
    write_marker(root, hooks)
}

/// Finishes or discards what a crash interrupted: rolls every committed journal
/// forward (in memory only, returned as an overlay, when read-only) and removes
/// uncommitted ones. Stray temporary files in the data folders are removed later,
/// by the scan that finds them.
pub fn recover(
    root: &Path,
    read_only: bool,
    hooks: &Hooks,
) -> Result<(RecoveryReport, Vec<FileOp>)> {
    let mut report = RecoveryReport::default();
    let mut overlay = Vec::new();
    let dir = root.join(JOURNAL_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((report, overlay)),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut committed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_temp(&name) {
            if read_only {
                report.left_in_place.push(entry.path());
            } else {
                files::remove(&entry.path(), hooks)?;
                report.discarded.push(entry.path());
            }
        } else if let Some(seq) = name
            .strip_suffix(COMMITTED)
            .and_then(|s| s.parse::<u64>().ok())
        {
            committed.push((seq, entry.path()));
        }
    }
    if !report.discarded.is_empty() {
        sync_dir(&dir, hooks)?;
    }
    committed.sort();
    for (_, path) in committed {
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let ops = journal::decode(&bytes).map_err(|detail| {
            Error::corrupt(
                &path,
                format!(
                    "a committed journal {detail}; it cannot be rolled forward safely, \
                     so the store is not opened (restore it from a backup)"
                ),
            )
        })?;
        if read_only {
            overlay.extend(ops);
            report.rolled_forward.push(path.clone());
            report.left_in_place.push(path);
        } else {
            roll_forward(root, &ops, hooks)?;
            files::remove(&path, hooks)?;
            sync_dir(&dir, hooks)?;
            report.rolled_forward.push(path);
        }
    }
    Ok((report, overlay))
}

/// Applies a committed journal's operations to the files, durably whatever the
/// durability setting. Idempotent, so a crash here only means doing it again.
fn roll_forward(root: &Path, ops: &[FileOp], hooks: &Hooks) -> Result<()> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for op in ops {
        let path = root.join(&op.rel);
        let dir = parent(&path).to_path_buf();
        let document = op.rel.starts_with(DOCUMENTS);
        match (&op.content, &op.from) {
            (Some(content), _) => {
                if ensure_dir(&dir, hooks)? {
                    dirs.push(parent(&dir).to_path_buf());
                }
                let temp = files::write_temp_at(&dir, content, hooks, None)?;
                files::rename(&temp, &path, hooks)?;
            }
            (None, Some(from)) => {
                // Not there any more: moved by the interrupted commit, or an earlier
                // roll-forward (the open then checks the document's size).
                let staged = root.join(from);
                if files::exists(&staged) == Some(true) {
                    dirs.extend(docs::ensure_doc_dirs(root, &dir, hooks)?);
                    docs::clear_empty_dir_at(&path, hooks)?;
                    files::rename(&staged, &path, hooks)?;
                    dirs.push(root.join(JOURNAL_DIR));
                }
            }
            (None, None) => {
                files::remove(&path, hooks)?;
                if document {
                    dirs.extend(docs::prune_doc_dirs(root, &dir, hooks)?);
                }
            }
        }
        dirs.push(dir);
        hooks
            .at(FaultPoint::RecoveryApplied)
            .map_err(|e| Error::io(&path, e))?;
    }
    let documents = root.join(DOCUMENTS);
    dirs.retain(|d| !d.starts_with(&documents) || d.is_dir());
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        sync_dir(&dir, hooks)?;
    }
    Ok(())
}

/// Removes stray temporary files found by a scan, passing `CleanupRemoved` after each.
pub fn remove_temps(temps: &[PathBuf], hooks: &Hooks) -> Result<()> {
    let mut dirs: Vec<&Path> = Vec::new();
    for temp in temps {
        files::remove(temp, hooks)?;
        hooks
            .at(FaultPoint::CleanupRemoved)
            .map_err(|e| Error::io(temp, e))?;
        dirs.push(parent(temp));
    }
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        sync_dir(dir, hooks)?;
    }
    Ok(())
}
