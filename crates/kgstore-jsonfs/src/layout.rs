//! The store's folder: its format marker, creation and upgrade, and what a
//! recovery reports.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use kgstore_core::{Error, Result};
use serde_json::{Value, json};

use crate::docs::{DOCMETA, DOCUMENTS};
use crate::fault::{FaultPoint, Hooks};
use crate::files::{self, ensure_dir, is_temp, parent, sync_dir};
use crate::journal::JOURNAL_DIR;
use crate::lock::LOCK_FILE;
use crate::log::LOG_DIR;
use crate::names::{EDGES, NODES, SCHEMAS};

/// The format marker's file name.
pub const MARKER: &str = "kgstore-jsonfs.json";
/// The format's name in the marker.
pub const FORMAT: &str = "kgstore-jsonfs";
/// The format version this build writes (and the newest it reads). Each version
/// added something; the files of an older version are files of this one, so a
/// writable open upgrades an older store by rewriting the marker once the new
/// folders exist, and an older kgstore then refuses it rather than take a store
/// holding newer data, or a journal naming its files, for its own. The versions:
///
/// | version | added |
/// |---------|-------|
/// | 1 | the graph (`nodes/`, `edges/`, `schemas/`) |
/// | 2 | documents (`documents/`, `docmeta/`) |
/// | 3 | the commit log (`journal/log/`) and the protocol that lets several processes share a store |
/// | 4 | the event store (`events/`) |
/// | 5 | one-document commits stage their metadata beside their bytes (`journal/<pid>-<n>.docmeta`), which an open completes or discards |
/// | 6 | a large commit's journal records its staged puts without their content (`stg`): the files staged in `journal/bulk-<pid>-<n>/` are its redo data, which recovery puts in place |
pub const VERSION: u64 = 6;
/// The oldest format version this build reads.
pub const OLDEST_VERSION: u64 = 1;
/// What a store's own `.gitignore` keeps out of version control.
const GITIGNORE: &str = "# Written by kgstore-jsonfs: the lock, unfinished commits and temporary files.\nLOCK\njournal/\n.tmp-*\n";

/// Every folder of a store, parents first.
pub const FOLDERS: [&str; 12] = [
    NODES,
    EDGES,
    SCHEMAS,
    "schemas/node_type",
    "schemas/relation_type",
    crate::events::EVENTS,
    crate::events::LOG,
    crate::events::STATE,
    JOURNAL_DIR,
    LOG_DIR,
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
    /// One-file transactions that had committed (their file was in place) as their
    /// writer stopped: their records moved into the log.
    pub completed: Vec<PathBuf>,
    /// Journals and records of transactions that never committed, removed with no effect.
    pub discarded: Vec<PathBuf>,
    /// Stray temporary files of interrupted writes, removed.
    pub temps_removed: Vec<PathBuf>,
    /// Leftovers a read-only open found but may not remove.
    pub left_in_place: Vec<PathBuf>,
}

impl RecoveryReport {
    /// Adds what a later recovery did.
    pub(crate) fn append(&mut self, mut later: Self) {
        self.rolled_forward.append(&mut later.rolled_forward);
        self.completed.append(&mut later.completed);
        self.discarded.append(&mut later.discarded);
        self.temps_removed.append(&mut later.temps_removed);
        self.left_in_place.append(&mut later.left_in_place);
    }

    /// Whether the store was found closed cleanly.
    pub fn is_clean(&self) -> bool {
        self.rolled_forward.is_empty()
            && self.completed.is_empty()
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
            ("completed one-file commit", &self.completed),
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

/// Whether a folder holds a store, and of which format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// No marker: no store (yet).
    Missing,
    /// A store of this format version (one this build reads).
    Version(u64),
}

/// Reads the store's format marker: a marker of another format, or of a version
/// this build does not read, is refused.
pub fn read_marker(root: &Path) -> Result<Marker> {
    let marker = root.join(MARKER);
    match fs::read(&marker) {
        Ok(bytes) => check_marker(&marker, &bytes).map(Marker::Version),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Marker::Missing),
        Err(e) => Err(Error::io(&marker, e)),
    }
}

/// The error for a folder without a store, where one is needed.
pub fn no_store(root: &Path) -> Error {
    not_a_store(root, "has no store to read")
}

/// Makes the store ready for writing (the caller holds the lock): creates a new
/// store in a blank folder, upgrades a store of an older format version, re-creates
/// missing folders (git does not keep empty folders) and syncs the store's folder,
/// its data folders and `journal/`: an earlier process that crashed, or wrote with
/// relaxed durability, may have left names in them (the marker, a shard folder, a
/// journal's move) that are visible but not yet durable, and this process's commits
/// must not be built on names a power cut could still undo.
pub fn prepare(root: &Path, hooks: &Hooks) -> Result<()> {
    match read_marker(root)? {
        Marker::Missing => {
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
        Marker::Version(VERSION) => {}
        Marker::Version(_) => {
            // Older files are files of this version: only the marker changes, and
            // only once the folders of documents, the commit log and the event store
            // exist.
            for folder in FOLDERS {
                ensure_dir(&root.join(folder), hooks)?;
            }
            sync_dir(&root.join(JOURNAL_DIR), hooks)?;
            files::write_atomic(&root.join(MARKER), &marker_bytes()?, hooks)?;
        }
    }
    for folder in FOLDERS {
        ensure_dir(&root.join(folder), hooks)?;
    }
    sync_dir(root, hooks)?;
    for folder in FOLDERS {
        sync_dir(&root.join(folder), hooks)?;
    }
    Ok(())
}

fn marker_bytes() -> Result<Vec<u8>> {
    files::render(&json!({ "format": FORMAT, "version": VERSION }))
}

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
        Some(version) if (OLDEST_VERSION..=VERSION).contains(&version) => Ok(version),
        Some(newer) if newer > VERSION => Err(Error::unsupported(
            format!(
                "format version {newer} (this build reads versions {OLDEST_VERSION} to {VERSION})"
            ),
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
    sync_dir(&root.join(JOURNAL_DIR), hooks)?;
    files::write_atomic(&root.join(".gitignore"), GITIGNORE.as_bytes(), hooks)?;
    files::write_atomic(&root.join(MARKER), &marker_bytes()?, hooks)
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
