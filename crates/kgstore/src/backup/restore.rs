//! Loading a verified backup into a store.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::Path;

use kgstore_core::{
    DocumentRead, Edge, Error, GraphRead, Node, NodeFilter, OnDependents, PageRequest, Result,
    Store, WriteTx,
};

use super::{EDGES_FILE, NODES_FILE, Phase, Progress, SCHEMAS_FILE, SchemaEntry, verify_with};

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
fn load(
    dir: &Path,
    store: &Store,
    mode: RestoreMode,
    mut progress: impl FnMut(Progress),
) -> Result<RestoreReport> {
    let verified = verify_with(dir, &mut progress)?;
    if !verified.is_ok() {
        return Err(Error::corrupt(
            dir,
            format!("the backup does not verify: {}", verified.summary()),
        ));
    }
    let counts = verified.counts;
    let format_version = verified
        .manifest
        .as_ref()
        .map_or(super::FORMAT_VERSION, |m| m.format_version);
    let schemas: Vec<SchemaEntry> = {
        let path = dir.join(SCHEMAS_FILE);
        let text = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&text).map_err(|e| Error::corrupt(&path, e.to_string()))?
    };
    store.write(|tx| {
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
                        "it is not empty; restore into an empty store or ask to replace its content",
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
        read_lines(&dir.join(NODES_FILE), |line, at| {
            let node: Node = serde_json::from_slice(line).map_err(|e| Error::corrupt(at, e.to_string()))?;
            tx.import_node(node)?;
            report.nodes += 1;
            if report.nodes % 1000 == 0 || report.nodes == counts.nodes {
                progress(Progress { phase: Phase::Nodes, done: report.nodes, total: counts.nodes });
            }
            Ok(())
        })?;
        read_lines(&dir.join(EDGES_FILE), |line, at| {
            let edge: Edge = serde_json::from_slice(line).map_err(|e| Error::corrupt(at, e.to_string()))?;
            tx.import_edge(edge)?;
            report.edges += 1;
            if report.edges % 1000 == 0 || report.edges == counts.edges {
                progress(Progress { phase: Phase::Edges, done: report.edges, total: counts.edges });
            }
            Ok(())
        })?;
        if counts.documents > 0 {
            report.documents = super::documents::restore(dir, tx, counts.documents, &mut progress)?;
        }
        Ok(report)
    })
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
    let mut reader = BufReader::with_capacity(1 << 16, file);
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
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        each(body, format!("{} line {number}", path.display()))?;
    }
}
