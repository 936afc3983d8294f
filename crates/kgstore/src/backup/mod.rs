//! Backups: a backend-neutral folder of JSON Lines that `verify` checks and
//! `restore` loads into any store — which also makes it the way to migrate a
//! store from one backend to another.
//!
//! The format is described in `docs/backup-format.md`.
//!
//! ```
//! use kgstore::backup::{self, RestoreMode};
//! use kgstore::{GraphRead, Node};
//!
//! let dir = tempfile::tempdir()?;
//! let source = kgstore::open("memory://")?;
//! source.create_node(Node::new("a", "thing")?)?;
//! let manifest = backup::backup(&source, &dir.path().join("b1"))?;
//! assert_eq!(manifest.counts.nodes, 1);
//! assert!(backup::verify(&dir.path().join("b1"))?.is_ok());
//! let target = kgstore::open("memory://")?;
//! backup::restore_into(&dir.path().join("b1"), &target, RestoreMode::Empty)?;
//! assert_eq!(target.get_node("a")?, source.get_node("a")?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod documents;
mod events;
mod files;
mod restore;
mod verify;

use std::fs;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;

use kgstore_core::{Error, GraphRead, Result, SchemaTarget, SideReadTx, Store, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use documents::{DOCUMENTS_FILE, VALUES_DIR};
pub use events::{EVENT_STATE_FILE, EVENTS_FILE, StateLine};
pub use restore::{
    RestoreMode, RestoreReport, check_restorable, restore, restore_into, restore_with,
};
pub use verify::{VerifyReport, check_folder, verify, verify_with};

pub use crate::progress::{Phase, Progress};

use files::{HashingWriter, Syncs, sync_dir, write_atomically};

/// The `format` every manifest names.
pub const FORMAT: &str = "kgstore-backup";
/// The version of the format this kgstore writes and the newest it reads. Each
/// version added a kind of data ([`DOCUMENTS_SINCE`], [`EVENTS_SINCE`]); backups of
/// every earlier version still verify and restore.
pub const FORMAT_VERSION: u32 = EVENTS_SINCE;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";
/// One node per line, by name.
pub const NODES_FILE: &str = "nodes.jsonl";
/// One edge per line, by key.
pub const EDGES_FILE: &str = "edges.jsonl";
/// Every schema, as a JSON array.
pub const SCHEMAS_FILE: &str = "schemas.json";

/// The format version that added documents (`documents.jsonl`, `values/`).
pub const DOCUMENTS_SINCE: u32 = 2;
/// The format version that added the event store (`events.jsonl`,
/// `event_state.jsonl`).
pub const EVENTS_SINCE: u32 = 3;

/// The data files of a backup of the current format, in the order they are written
/// and listed (the value files of documents are listed after [`DOCUMENTS_FILE`]).
pub const DATA_FILES: [&str; 6] = [
    NODES_FILE,
    EDGES_FILE,
    SCHEMAS_FILE,
    DOCUMENTS_FILE,
    EVENTS_FILE,
    EVENT_STATE_FILE,
];

/// The data files a backup of format `version` must list.
pub fn data_files(version: u32) -> Vec<&'static str> {
    DATA_FILES
        .into_iter()
        .filter(|name| match *name {
            DOCUMENTS_FILE => version >= DOCUMENTS_SINCE,
            EVENTS_FILE | EVENT_STATE_FILE => version >= EVENTS_SINCE,
            _ => true,
        })
        .collect()
}

/// Items written between two progress reports.
const PAGE: u64 = 1000;

/// What a backup holds and how to check it: the last file written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`FORMAT_VERSION`] for backups written by this kgstore.
    pub format_version: u32,
    /// The version of kgstore that wrote it.
    pub kgstore_version: String,
    /// The backend the store was kept on (`memory`, `sqlite`, `jsonfs`, …).
    pub source_backend: String,
    /// When the backup's snapshot was taken.
    pub created_at: Timestamp,
    /// How many of each thing it holds.
    pub counts: Counts,
    /// Every data file with its size and SHA-256.
    pub files: Vec<FileEntry>,
}

/// How many nodes, edges, schemas, events and event-store entries a backup holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Nodes.
    pub nodes: u64,
    /// Edges.
    pub edges: u64,
    /// Schemas.
    pub schemas: u64,
    /// Documents (format version 2 on; 0 in an older manifest).
    #[serde(default)]
    pub documents: u64,
    /// Events (format version 3 on; removed ones included).
    #[serde(default)]
    pub events: u64,
    /// Entries of the event store's state (format version 3 on).
    #[serde(default)]
    pub event_state: u64,
}

/// A data file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its name inside the backup folder.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its bytes, in lower-case hex.
    pub sha256: String,
}

/// One entry of `schemas.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaEntry {
    /// What the schema applies to.
    pub target: SchemaTarget,
    /// The JSON Schema document.
    pub schema: Value,
}

/// Backs `store` up into the folder `dest`, which must not exist yet.
pub fn backup(store: &Store, dest: &Path) -> Result<Manifest> {
    backup_with(store, dest, |_| {})
}

/// Backs `store` up into `dest`, reporting progress.
///
/// Everything comes from one read snapshot, so writers may go on meanwhile and
/// the backup still shows the store at one instant. Memory use does not grow
/// with the store: nodes and edges are streamed one at a time, each file from
/// one ordered scan of the snapshot. The data files
/// are written into a temporary sibling folder, synced, and the folder renamed
/// into place; the manifest is written last, so an interrupted backup never
/// leaves a folder that verifies.
pub fn backup_with(store: &Store, dest: &Path, progress: impl FnMut(Progress)) -> Result<Manifest> {
    let _span =
        tracing::info_span!("backup", backend = store.backend_name(), dest = %dest.display())
            .entered();
    let timer = store.observer().start(kgstore_core::Operation::Backup);
    let outcome = write_backup(store, dest, progress);
    if let Ok(manifest) = &outcome {
        tracing::info!(
            nodes = manifest.counts.nodes,
            edges = manifest.counts.edges,
            schemas = manifest.counts.schemas,
            "backup written"
        );
    }
    timer.finish(outcome)
}

/// The backup itself (see [`backup_with`]).
fn write_backup(
    store: &Store,
    dest: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<Manifest> {
    if dest.exists() {
        return Err(Error::AlreadyExists {
            entity: format!("backup folder {}{}", dest.display(), existing_hint(dest)),
        });
    }
    let name = dest.file_name().ok_or_else(|| {
        Error::invalid_input(
            format!("backup folder {}", dest.display()),
            "it names no folder",
        )
    })?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let partial = parent.join(format!(".{}.partial", name.to_string_lossy()));
    if partial.exists() {
        // An earlier attempt at this very backup died; what it left is ours to remove.
        fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    }
    fs::create_dir(&partial).map_err(|e| Error::io(&partial, e))?;
    // Removed on every way out before the rename: an error, and a panic unwinding
    // through here (a progress callback's, say) too.
    let mut guard = PartialFolder(Some(partial.clone()));
    let (counts, files) = write_data_files(store, &partial, &mut progress)?;
    sync_dir(&partial)?;
    fs::rename(&partial, dest).map_err(|e| Error::io(dest, e))?;
    guard.0 = None;
    sync_dir(&parent)?;
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        kgstore_version: env!("CARGO_PKG_VERSION").to_owned(),
        source_backend: store.backend_name().to_owned(),
        created_at: Timestamp::now(),
        counts,
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::backend("backup", format!("cannot encode the manifest: {e}")))?;
    write_atomically(&dest.join(MANIFEST_FILE), &text)?;
    Ok(manifest)
}

/// What stands at an existing backup destination, for its error: a backup (no
/// hint), one cut short before its manifest (which may be removed), or something
/// of the user's own — a folder of their backups, an empty folder, a file — which
/// the hint must not tell them to remove.
fn existing_hint(dest: &Path) -> &'static str {
    if dest.join(MANIFEST_FILE).exists() {
        return "";
    }
    if !dest.is_dir() {
        return " (it is a file; a backup creates its own folder: name one that does not \
                 exist yet)";
    }
    let Ok(entries) = fs::read_dir(dest) else {
        return "";
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let ours = |name: &String| {
        DATA_FILES.contains(&name.as_str())
            || name == VALUES_DIR
            || *name == format!(".{MANIFEST_FILE}.tmp")
    };
    if names.is_empty() {
        " (it is empty; a backup creates its own folder: remove the empty one, or name \
         one that does not exist yet)"
    } else if names.iter().all(ours) {
        " (it holds a backup's files but no manifest: an interrupted backup; remove it to \
         retry)"
    } else {
        " (not a backup: it holds other files; a backup creates its own folder: name one \
         that does not exist yet, such as a new folder inside it)"
    }
}

/// Writes file `name` in `folder`, one line per JSON text that `scan` hands to
/// the line writer it is given, reporting `phase` progress every [`PAGE`] items
/// and at the end, its sync started among `syncs`; how many lines, and the
/// file's entry.
fn write_lines(
    folder: &Path,
    name: &str,
    phase: Phase,
    total: u64,
    syncs: &mut Syncs,
    progress: &mut dyn FnMut(Progress),
    scan: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
) -> Result<(u64, FileEntry)> {
    let (done, out) = scan_lines(folder, name, scan, |done| {
        progress(Progress { phase, done, total });
    })?;
    progress(Progress { phase, done, total });
    Ok((done, out.finish(syncs)?))
}

/// Writes file `name` in `folder`, one line per JSON text that `scan` hands to
/// the line writer it is given, calling `page` with the count every [`PAGE`]
/// lines; how many lines, and the writer to finish.
fn scan_lines(
    folder: &Path,
    name: &str,
    scan: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
    mut page: impl FnMut(u64),
) -> Result<(u64, HashingWriter)> {
    // The graph files are nearly all of a backup's bytes: hashed and written on
    // a thread of their own while the scan produces the next lines.
    let mut out = HashingWriter::create_beside(folder, name)?;
    let mut done = 0u64;
    scan(&mut |text: &[u8]| {
        out.write_line(text)?;
        done += 1;
        if done.is_multiple_of(PAGE) {
            page(done);
        }
        Ok(())
    })?;
    Ok((done, out))
}

/// Which scan of a side-by-side backup failed first ([`side_by_side`]).
const RUNNING: u8 = 0;
/// The node scan failed first.
const NODES_FAILED: u8 = 1;
/// The edge scan failed (or its thread panicked) first.
const EDGES_FAILED: u8 = 2;

/// Marks its side's scan failed (the value it holds) if its thread unwinds, so
/// that the other side's scan stops: the edge thread's, and the calling thread's
/// around the node scan (a panicking progress callback, say), which the scope
/// would otherwise wait on while the edges are scanned to the end.
struct PanicHalts<'a>(&'a AtomicU8, u8);

impl Drop for PanicHalts<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self
                .0
                .compare_exchange(RUNNING, self.1, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
}

/// Writes `nodes.jsonl` with `nodes` on this thread while a scoped thread writes
/// `edges.jsonl` from `twin`, a read on the same snapshot; the edges' progress is
/// reported once the nodes' is done (the phases in their order), as the edges
/// come. The first side to fail stops the other at its next line (`nodes` is
/// given the test, to make per line); the first failure comes back once both
/// have ended, not the other side's "stopped".
fn side_by_side(
    folder: &Path,
    total_edges: u64,
    syncs: &mut Syncs,
    progress: &mut dyn FnMut(Progress),
    twin: SideReadTx<'_>,
    nodes: impl FnOnce(
        &mut Syncs,
        &mut dyn FnMut(Progress),
        &dyn Fn() -> Result<()>,
    ) -> Result<(u64, FileEntry)>,
) -> Result<((u64, FileEntry), (u64, FileEntry))> {
    let halt = AtomicU8::new(RUNNING);
    std::thread::scope(|s| {
        let (report, reports) = mpsc::channel::<u64>();
        let halt = &halt;
        let edges = s.spawn(move || -> Result<(u64, HashingWriter)> {
            let _panic = PanicHalts(halt, EDGES_FAILED);
            let scan = |line: &mut dyn FnMut(&[u8]) -> Result<()>| {
                twin.each_edge_json(|text: &[u8]| {
                    if halt.load(Ordering::SeqCst) != RUNNING {
                        return Err(Error::backend("backup", "stopped: the node scan failed"));
                    }
                    line(text)
                })
            };
            scan_lines(folder, EDGES_FILE, scan, |done| {
                // A report is only dropped when the receiver is gone (the
                // calling thread unwound): the backup fails then anyway.
                let _ = report.send(done);
            })
            .inspect_err(|_| {
                let _ = halt.compare_exchange(
                    RUNNING,
                    EDGES_FAILED,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            })
        });
        let go_on = || {
            if halt.load(Ordering::SeqCst) == RUNNING {
                Ok(())
            } else {
                Err(Error::backend("backup", "stopped: the edge scan failed"))
            }
        };
        let panic = PanicHalts(halt, NODES_FAILED);
        let nodes = nodes(syncs, progress, &go_on).inspect_err(|_| {
            let _ =
                halt.compare_exchange(RUNNING, NODES_FAILED, Ordering::SeqCst, Ordering::SeqCst);
        });
        if nodes.is_ok() {
            // Ends when the edges' thread does (and drops its sender).
            for done in reports {
                progress(Progress {
                    phase: Phase::Edges,
                    done,
                    total: total_edges,
                });
            }
        }
        drop(panic);
        let edges = edges
            .join()
            .map_err(|_| Error::backend("backup", "the thread writing the edges' lines panicked"))
            .and_then(|edges| edges);
        let (nodes, (done, out)) = match (nodes, edges) {
            (Ok(nodes), Ok(edges)) => (nodes, edges),
            (Err(nodes), Err(edges)) => {
                return Err(if halt.load(Ordering::SeqCst) == EDGES_FAILED {
                    edges
                } else {
                    nodes
                });
            }
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
        };
        progress(Progress {
            phase: Phase::Edges,
            done,
            total: total_edges,
        });
        Ok((nodes, (done, out.finish(syncs)?)))
    })
}

/// Writes the data files from one snapshot; their counts and entries.
fn write_data_files(
    store: &Store,
    folder: &Path,
    progress: &mut impl FnMut(Progress),
) -> Result<(Counts, Vec<FileEntry>)> {
    // A second read on the same snapshot, where the backend has one, scans the
    // edges on another thread while this one scans the nodes.
    let (snapshot, twin) = store.read_pair()?;
    let total_nodes = snapshot.count_nodes()?;
    let total_edges = snapshot.count_edges()?;
    let mut counts = Counts::default();
    let mut entries = Vec::new();
    // Each file's sync runs beside the work after it; all are waited for at the end.
    let mut syncs = Syncs::default();

    // One ordered scan per file, each node or edge handed over as its JSON text
    // (`GraphRead::each_node_json`), progress every PAGE items.
    // `go_on` fails once the other side's scan has (side by side): checked per line.
    let nodes =
        |syncs: &mut Syncs, progress: &mut dyn FnMut(Progress), go_on: &dyn Fn() -> Result<()>| {
            write_lines(
                folder,
                NODES_FILE,
                Phase::Nodes,
                total_nodes,
                syncs,
                progress,
                |line| {
                    snapshot.each_node_json(|text: &[u8]| {
                        go_on()?;
                        line(text)
                    })
                },
            )
        };
    let ((nodes, nodes_entry), (edges, edges_entry)) = match twin {
        Some(twin) => side_by_side(folder, total_edges, &mut syncs, progress, twin, nodes)?,
        None => {
            let nodes = nodes(&mut syncs, progress, &|| Ok(()))?;
            let edges = write_lines(
                folder,
                EDGES_FILE,
                Phase::Edges,
                total_edges,
                &mut syncs,
                progress,
                |line| snapshot.each_edge_json(line),
            )?;
            (nodes, edges)
        }
    };
    counts.nodes = nodes;
    entries.push(nodes_entry);
    counts.edges = edges;
    entries.push(edges_entry);

    let schemas: Vec<SchemaEntry> = snapshot
        .list_schemas()?
        .into_iter()
        .map(|(target, schema)| SchemaEntry { target, schema })
        .collect();
    counts.schemas = schemas.len() as u64;
    let mut out = HashingWriter::create(folder, SCHEMAS_FILE)?;
    out.write_pretty(&schemas)?;
    entries.push(out.finish(&mut syncs)?);
    progress(Progress {
        phase: Phase::Schemas,
        done: counts.schemas,
        total: counts.schemas,
    });

    let (documents, document_files) = documents::write(&snapshot, folder, &mut syncs, progress)?;
    counts.documents = documents;
    entries.extend(document_files);

    events::write(
        &snapshot,
        folder,
        &mut counts,
        &mut entries,
        &mut syncs,
        progress,
    )?;

    if counts.nodes != total_nodes || counts.edges != total_edges {
        return Err(Error::backend(
            store.backend_name(),
            format!(
                "the snapshot counted {total_nodes} nodes and {total_edges} edges but listed {} and {}",
                counts.nodes, counts.edges
            ),
        ));
    }
    syncs.wait()?;
    Ok((counts, entries))
}

/// Reads and parses a backup's manifest, refusing other formats and newer versions.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = fs::read(&path).map_err(|e| Error::io(&path, e))?;
    parse_manifest(&path, &text)
}

fn parse_manifest(path: &Path, text: &[u8]) -> Result<Manifest> {
    #[derive(Deserialize)]
    struct Head {
        format: String,
        format_version: u32,
    }
    let head: Head = serde_json::from_slice(text)
        .map_err(|e| Error::corrupt(path, format!("not a backup manifest: {e}")))?;
    if head.format != FORMAT {
        return Err(Error::corrupt(
            path,
            format!("format '{}' is not '{FORMAT}'", head.format),
        ));
    }
    if head.format_version > FORMAT_VERSION {
        return Err(Error::corrupt(
            path,
            format!(
                "format version {} was written by a newer kgstore; this one reads up to version {FORMAT_VERSION}",
                head.format_version
            ),
        ));
    }
    serde_json::from_slice(text)
        .map_err(|e| Error::corrupt(path, format!("malformed manifest: {e}")))
}

/// A backup's `.NAME.partial` folder, removed when dropped unless taken: so no way
/// out of a backup before its rename (an error, a panic) leaves it behind.
struct PartialFolder(Option<PathBuf>);

impl Drop for PartialFolder {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Best effort: what cannot be removed now, the next backup to the same
            // place removes before it starts.
            let _ = fs::remove_dir_all(path);
        }
    }
}
