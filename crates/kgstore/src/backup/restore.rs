//! Loading a verified backup into a store.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;

use kgstore_core::{
    DocumentRead, Edge, Error, GraphRead, Node, NodeFilter, OnDependents, PageRequest, Result,
    Store, WriteTx,
};
use serde::de::DeserializeOwned;

use super::verify::{Scope, VerifyReport, check_folder, verify_scoped};
use super::{
    EDGES_FILE, NODES_FILE, Phase, Progress, SCHEMAS_FILE, SchemaEntry, read_manifest, verify,
    verify_with,
};

/// What to do with what the target store already holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RestoreMode {
    /// The target must be empty (no node, edge or schema); otherwise nothing happens.
    #[default]
    Empty,
    /// Replace the target's whole content, in one transaction: if anything fails,
    /// the old content stays untouched.
    Replace,
}

/// What a restore loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Nodes loaded.
    pub nodes: u64,
    /// Edges loaded.
    pub edges: u64,
    /// Schemas loaded.
    pub schemas: u64,
    /// Documents loaded.
    pub documents: u64,
    /// Events loaded.
    pub events: u64,
    /// Event-store entries loaded.
    pub event_state: u64,
}

/// Restores the backup in `dir` into the store at `url` (created if missing).
pub fn restore(dir: &Path, url: &str, mode: RestoreMode) -> Result<RestoreReport> {
    let store = crate::open(url)?;
    restore_into(dir, &store, mode)
}

/// Restores the backup in `dir` into `store`.
pub fn restore_into(dir: &Path, store: &Store, mode: RestoreMode) -> Result<RestoreReport> {
    restore_with(dir, store, mode, |_| {})
}

/// Restores the backup in `dir` into `store`, reporting progress.
///
/// The backup is verified first and refused (`Corrupt`, listing the problems) if
/// anything is wrong with it. Everything is then loaded in one transaction with
/// timestamps and versions kept, so the store either holds exactly the backup or
/// is left as it was.
pub fn restore_with(
    dir: &Path,
    store: &Store,
    mode: RestoreMode,
    progress: impl FnMut(Progress),
) -> Result<RestoreReport> {
    let _span = tracing::info_span!(
        "restore",
        backend = store.backend_name(),
        from = %dir.display(),
        mode = ?mode
    )
    .entered();
    let timer = store.observer().start(kgstore_core::Operation::Restore);
    let outcome = load(dir, store, mode, progress);
    if let Ok(report) = &outcome {
        tracing::info!(
            nodes = report.nodes,
            edges = report.edges,
            schemas = report.schemas,
            "backup restored"
        );
    }
    timer.finish(outcome)
}

/// The restore itself (see [`restore_with`]).
///
/// Everything but the graph files is verified first. The graph files, which hold
/// nearly all of a large backup, are read once: a helper thread reads, hashes and
/// parses them, and the transaction loads them a batch at a time through a
/// [`BulkImport`](kgstore_core::BulkImport), which validates every node and edge as
/// any import does and checks references in memory. A backup that fails any check
/// on the way (its digest, its order, a field, a reference) rolls the transaction
/// back; the whole backup is then verified, and the restore refused listing every
/// problem, exactly as if it had been verified first.
fn load(
    dir: &Path,
    store: &Store,
    mode: RestoreMode,
    mut progress: impl FnMut(Progress),
) -> Result<RestoreReport> {
    let verified = verify_scoped(dir, Scope::AllButGraph, &mut progress)?;
    let manifest = match verified.manifest.as_ref() {
        Some(manifest) if verified.problems.is_empty() => manifest,
        _ => return Err(refused(dir, &verified)),
    };
    let counts = verified.counts;
    let format_version = manifest.format_version;
    let schemas: Vec<SchemaEntry> = {
        let path = dir.join(SCHEMAS_FILE);
        let text = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&text).map_err(|e| Error::corrupt(&path, e.to_string()))?
    };
    let outcome = store.write(|tx| {
        tx.defer_checks();
        match mode {
            RestoreMode::Empty => {
                if tx.count_nodes()? > 0
                    || tx.count_edges()? > 0
                    || !tx.list_schemas()?.is_empty()
                    || documents_held(tx)? > 0
                {
                    return Err(Error::invalid_input(
                        format!("restore target ({} store)", store.backend_name()),
                        "it is not empty; restore into an empty store, or replace its content (`RestoreMode::Replace`; `kgstore restore --replace`)",
                    ));
                }
            }
            RestoreMode::Replace => {
                clear(tx)?;
                if documents_held(tx)? > 0 {
                    super::documents::clear(tx)?;
                }
            }
        }
        let mut report = RestoreReport::default();
        (report.events, report.event_state) = super::events::restore(
            dir,
            tx,
            store.backend_name(),
            &counts,
            mode == RestoreMode::Empty,
            format_version,
            &mut progress,
        )?;
        for entry in &schemas {
            tx.set_schema(entry.target.clone(), entry.schema.clone())?;
            report.schemas += 1;
        }
        progress(Progress { phase: Phase::Schemas, done: report.schemas, total: counts.schemas });
        let mut import = tx.bulk_import()?;
        report.nodes = stream(dir, NODES_FILE, |a: &Node, b| a.name < b.name, |n| n.metadata.version, |batch, done| {
            import.nodes(batch)?;
            progress(Progress { phase: Phase::Nodes, done, total: counts.nodes });
            Ok(())
        })?;
        report.edges = stream(dir, EDGES_FILE, edge_before, |e| e.metadata.version, |batch, done| {
            import.edges(batch)?;
            progress(Progress { phase: Phase::Edges, done, total: counts.edges });
            Ok(())
        })?;
        import.finish()?;
        if (report.nodes, report.edges) != (counts.nodes, counts.edges) {
            return Err(Error::corrupt(
                dir.join(super::MANIFEST_FILE),
                format!(
                    "counts {} nodes and {} edges, the files hold {} and {}",
                    counts.nodes, counts.edges, report.nodes, report.edges
                ),
            ));
        }
        if counts.documents > 0 {
            report.documents = super::documents::restore(dir, tx, counts.documents, &mut progress)?;
        }
        Ok(report)
    });
    outcome.map_err(|e| {
        // The store is as it was. If the backup is at fault, say everything wrong with it.
        match verify_with(dir, |_| {}) {
            Ok(whole) if !whole.is_ok() => refused(dir, &whole),
            _ => e,
        }
    })
}

/// Refuses what a restore from `dir` would refuse before reading any data file —
/// nothing at the path (`NotFound`), a file (`InvalidInput`), a folder without a
/// readable manifest of this format (`Corrupt`, as the restore says it) — without a
/// store: a caller checks it before opening, and perhaps creating, the store to
/// restore into. What the data files hold the restore checks itself.
pub fn check_restorable(dir: &Path) -> Result<()> {
    check_folder(dir)?;
    if read_manifest(dir).is_ok() {
        return Ok(());
    }
    let report = verify(dir)?;
    if report.is_ok() {
        Ok(())
    } else {
        Err(refused(dir, &report))
    }
}

/// The error of a restore refused because the backup in `dir` does not verify.
fn refused(dir: &Path, report: &VerifyReport) -> Error {
    Error::corrupt(
        dir,
        format!("the backup does not verify: {}", report.summary()),
    )
}

/// Items handed to the transaction at once.
const BATCH: usize = 4096;

/// Whether edge `a` comes before edge `b` in key order (`Edge::key`'s order,
/// without copying the keys).
fn edge_before(a: &Edge, b: &Edge) -> bool {
    (a.from.as_str(), a.relation_type.as_str(), a.to.as_str())
        < (b.from.as_str(), b.relation_type.as_str(), b.to.as_str())
}

/// Reads the JSON Lines file `name` of the backup on a helper thread — parsing
/// each line, checking that lines end in a newline, come in strictly increasing
/// order (`before` of each line and the next) and have a version ≥ 1 — and hands
/// `load` batches in order with the count so far (the file's size and SHA-256 were
/// checked before). How many items.
fn stream<T>(
    dir: &Path,
    name: &str,
    before: fn(&T, &T) -> bool,
    version: fn(&T) -> u64,
    mut load: impl FnMut(Vec<T>, u64) -> Result<()>,
) -> Result<u64>
where
    T: DeserializeOwned + Send,
{
    let path = dir.join(name);
    let (sender, receiver) = mpsc::sync_channel::<Vec<T>>(4);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let outcome = read_batches(&path, name, before, version, &sender);
            drop(sender);
            outcome
        });
        let mut count = 0u64;
        let mut loaded = Ok(());
        for batch in &receiver {
            count += batch.len() as u64;
            if let Err(e) = load(batch, count) {
                loaded = Err(e);
                break;
            }
        }
        // Dropping the receiver stops a reader still sending; an error of the loader
        // comes first, the reader's (which ended the batches early) next.
        drop(receiver);
        let read = reader
            .join()
            .map_err(|_| Error::backend("restore", format!("the reader of {name} panicked")))?;
        loaded?;
        read?;
        Ok(count)
    })
}

/// The reading half of [`stream`].
///
/// Each line is ordered against the one before it, the last of its batch: the
/// last item of a full batch stays behind as the first of the next.
fn read_batches<T: DeserializeOwned>(
    path: &Path,
    name: &str,
    before: fn(&T, &T) -> bool,
    version: fn(&T) -> u64,
    sender: &mpsc::SyncSender<Vec<T>>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut batch = Vec::with_capacity(BATCH + 1);
    each_line(file, path, |line, complete, number| {
        let at = || format!("{name} line {number}");
        if !complete {
            return Err(Error::corrupt(
                at(),
                "is cut off (no final newline): the file is truncated",
            ));
        }
        // The line's UTF-8 checked at once, so that the parser reads it as text
        // instead of checking each string in it (a call per string).
        let text = std::str::from_utf8(line).map_err(|e| Error::corrupt(at(), e.to_string()))?;
        let item: T =
            serde_json::from_str(text).map_err(|e| Error::corrupt(at(), e.to_string()))?;
        if version(&item) == 0 {
            return Err(Error::corrupt(
                at(),
                "has version 0, which nothing stored has",
            ));
        }
        if batch
            .last()
            .is_some_and(|previous| !before(previous, &item))
        {
            return Err(Error::corrupt(at(), "is out of order or repeated"));
        }
        batch.push(item);
        if batch.len() > BATCH
            && let Some(last) = batch.pop()
        {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH + 1));
            batch.push(last);
            // A closed channel: the loader stopped, and its error is the one reported.
            sender
                .send(full)
                .map_err(|_| Error::backend("restore", "stopped"))?;
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        sender
            .send(batch)
            .map_err(|_| Error::backend("restore", "stopped"))?;
    }
    Ok(())
}

/// How many documents the target holds; 0 for a backend that holds none (it can
/// still take a backup without documents).
fn documents_held(tx: &WriteTx<'_>) -> Result<u64> {
    match tx.count_documents() {
        Err(e) if e.kind() == kgstore_core::ErrorKind::Unsupported => Ok(0),
        other => other,
    }
}

/// Deletes every node (with its edges) and every schema, inside a deferred transaction.
fn clear(tx: &mut WriteTx<'_>) -> Result<()> {
    loop {
        let page = tx.list_nodes(&NodeFilter::default(), &PageRequest::first(1000))?;
        if page.items.is_empty() {
            break;
        }
        for node in page.items {
            tx.delete_node(&node.name, OnDependents::Refuse)?;
        }
    }
    for (target, _) in tx.list_schemas()? {
        tx.remove_schema(&target)?;
    }
    Ok(())
}

/// Calls `each` with every line of a file (without its newline) and a location for errors.
pub(crate) fn read_lines(
    path: &Path,
    mut each: impl FnMut(&[u8], String) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    each_line(file, path, |line, _, number| {
        each(line, format!("{} line {number}", path.display()))
    })
}

/// Calls `each` with every line read from `source` (`path`, for errors), without
/// its newline, whether it ended in one, and its number from 1.
fn each_line(
    source: impl Read,
    path: &Path,
    mut each: impl FnMut(&[u8], bool, u64) -> Result<()>,
) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, source);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        match line.strip_suffix(b"\n") {
            Some(body) => each(body, true, number)?,
            None => each(&line, false, number)?,
        }
    }
}
