//! Checking a backup folder without loading it into a store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::Path;

use kgstore_core::{
    CompiledSchema, Edge, EdgeKey, Node, Problem, Result, SchemaTarget, algo, validate,
};

use super::files::hash_file;
use super::{
    Counts, DOCUMENTS_FILE, DOCUMENTS_SINCE, EDGES_FILE, EVENT_STATE_FILE, EVENTS_FILE,
    EVENTS_SINCE, MANIFEST_FILE, Manifest, NODES_FILE, Phase, Progress, SCHEMAS_FILE, SchemaEntry,
    VALUES_DIR, data_files, read_manifest,
};

/// Stop listing problems after this many (the count is still reported).
const MAX_PROBLEMS: usize = 1000;

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// The manifest, if it could be read.
    pub manifest: Option<Manifest>,
    /// What the data files actually hold.
    pub counts: Counts,
    /// Everything wrong; empty for a sound backup.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether the backup is sound.
    pub fn is_ok(&self) -> bool {
        self.manifest.is_some() && self.problems.is_empty()
    }

    pub(crate) fn problem(&mut self, location: impl Into<String>, detail: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem::new(location, detail));
        } else if self.problems.len() == MAX_PROBLEMS {
            self.problems.push(Problem::new(
                "backup",
                "more problems were found; only the first are listed",
            ));
        }
    }

    /// The problems as one paragraph, for error messages.
    pub fn summary(&self) -> String {
        let listed: Vec<String> = self
            .problems
            .iter()
            .take(10)
            .map(ToString::to_string)
            .collect();
        let more = self.problems.len().saturating_sub(10);
        let tail = if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        };
        format!(
            "{} problem(s): {}{tail}",
            self.problems.len(),
            listed.join("; ")
        )
    }
}

/// Checks a backup: the manifest, every file's size and SHA-256, no missing or
/// extra file, every line parses and is valid, counts match, every edge's
/// endpoints and every dependency exist, no dependency cycle, attributes valid
/// against the backup's schemas.
///
/// Problems with the backup are reported, not returned as errors; an error means
/// the folder could not be read at all: `NotFound` when it does not exist (a
/// mistyped path is not a corrupt backup), `InvalidInput` when it is not a folder.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    verify_with(dir, |_| {})
}

/// [`verify`], reporting progress.
pub fn verify_with(dir: &Path, progress: impl FnMut(Progress)) -> Result<VerifyReport> {
    verify_scoped(dir, Scope::Whole, progress)
}

/// [`check_backup`] of `scope`, in a `verify` span, logging the outcome.
pub(super) fn verify_scoped(
    dir: &Path,
    scope: Scope,
    progress: impl FnMut(Progress),
) -> Result<VerifyReport> {
    let _span = tracing::info_span!("verify", backup = %dir.display()).entered();
    let started = std::time::Instant::now();
    let outcome = check_backup(dir, scope, progress);
    let elapsed_ms = kgstore_core::observe::millis(started.elapsed());
    match &outcome {
        Ok(report) if report.is_ok() => tracing::info!(
            op = "verify",
            elapsed_ms,
            nodes = report.counts.nodes,
            edges = report.counts.edges,
            "backup verified"
        ),
        // The problems name files of the backup and entities in it: the count and the
        // first problem's file are what a reader of the log needs to act.
        Ok(report) => tracing::error!(
            op = "verify",
            elapsed_ms,
            error_kind = "corrupt",
            problems = report.problems.len(),
            first = report.problems.first().map(|p| p.location.as_str()),
            "backup does not verify"
        ),
        Err(e) => kgstore_core::observe::failed(kgstore_core::Operation::Verify, e),
    }
    outcome
}

/// Refuses a backup path that is no folder: `NotFound` if nothing is there,
/// `InvalidInput` if it is a file. [`verify`] and the restores check this first;
/// a caller can check it before opening (perhaps creating) the store to restore into.
pub fn check_folder(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(kgstore_core::Error::invalid_input(
            format!("backup folder {}", dir.display()),
            "is not a folder: a backup is the folder `kgstore backup` created",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(kgstore_core::Error::not_found(
            format!("backup folder {}", dir.display()),
        )),
        Err(e) => Err(kgstore_core::Error::io(dir, e)),
    }
}

/// What [`check_backup`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// Everything ([`verify`]).
    Whole,
    /// Everything but the graph files' lines, which a restore checks while it loads
    /// them (see `restore.rs`); their counts are not compared either. Every file's
    /// size and digest is checked, so a damaged file is refused before a restore
    /// starts its transaction.
    AllButGraph,
}

/// The checks themselves (see [`verify_with`]).
fn check_backup(
    dir: &Path,
    scope: Scope,
    mut progress: impl FnMut(Progress),
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    check_folder(dir)?;
    let manifest = match read_manifest(dir) {
        Ok(manifest) => manifest,
        Err(e) => {
            let detail = match e {
                kgstore_core::Error::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    "missing: the backup is incomplete or the folder is not a kgstore backup"
                        .to_owned()
                }
                other => other.to_string(),
            };
            report.problem(MANIFEST_FILE, detail);
            return Ok(report);
        }
    };
    check_files(dir, &manifest, &mut report, &mut progress)?;
    let schemas = check_schemas(dir, &mut report);
    if scope == Scope::Whole {
        let graph = check_nodes(dir, &schemas, &mut report, &mut progress)?;
        check_edges(dir, &graph, &schemas, &mut report, &mut progress)?;
        check_dependencies(&graph, &mut report);
    } else {
        report.counts.nodes = manifest.counts.nodes;
        report.counts.edges = manifest.counts.edges;
    }
    if manifest.format_version >= DOCUMENTS_SINCE {
        super::documents::check(dir, &manifest, &mut report)?;
    } else if dir.join(DOCUMENTS_FILE).exists() || dir.join(VALUES_DIR).exists() {
        report.problem(
            MANIFEST_FILE,
            format!(
                "format version {} holds no documents, but documents are in the folder",
                manifest.format_version
            ),
        );
    }
    if manifest.format_version >= EVENTS_SINCE {
        super::events::verify(dir, &mut report, &mut progress)?;
    }
    if report.counts != manifest.counts {
        let (listed, found) = (manifest.counts, report.counts);
        let differing: Vec<String> = [
            ("nodes", NODES_FILE, listed.nodes, found.nodes),
            ("edges", EDGES_FILE, listed.edges, found.edges),
            ("schemas", SCHEMAS_FILE, listed.schemas, found.schemas),
            (
                "documents",
                DOCUMENTS_FILE,
                listed.documents,
                found.documents,
            ),
            ("events", EVENTS_FILE, listed.events, found.events),
            (
                "event_state",
                EVENT_STATE_FILE,
                listed.event_state,
                found.event_state,
            ),
        ]
        .into_iter()
        .filter(|(_, _, listed, found)| listed != found)
        .map(|(what, file, listed, found)| {
            format!("{what}: the manifest says {listed}, {file} holds {found}")
        })
        .collect();
        report.problem(
            MANIFEST_FILE,
            format!("counts do not match the files: {}", differing.join("; ")),
        );
    }
    report.manifest = Some(manifest);
    Ok(report)
}

fn check_files(
    dir: &Path,
    manifest: &Manifest,
    report: &mut VerifyReport,
    progress: &mut impl FnMut(Progress),
) -> Result<()> {
    let listed: HashSet<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    let expected_files = data_files(manifest.format_version);
    let documents = manifest.format_version >= DOCUMENTS_SINCE;
    for expected in &expected_files {
        if !listed.contains(expected) {
            report.problem(MANIFEST_FILE, format!("does not list {expected}"));
        }
    }
    let known = |name: &str| {
        expected_files.contains(&name)
            || (documents && (name == DOCUMENTS_FILE || super::documents::is_value_name(name)))
    };
    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    let mut before = 0;
    for entry in &manifest.files {
        if !known(&entry.name) {
            report.problem(
                MANIFEST_FILE,
                format!(
                    "lists an unexpected file '{}'",
                    validate::shorten(&entry.name)
                ),
            );
            continue;
        }
        let path = dir.join(&entry.name);
        if !path.is_file() {
            report.problem(&entry.name, "is missing");
            continue;
        }
        let (size, sha256) = hash_file(&path, |done| {
            progress(Progress {
                phase: Phase::Bytes,
                done: before + done,
                total,
            });
        })?;
        before += entry.size;
        if size != entry.size {
            report.problem(
                &entry.name,
                format!("is {size} bytes long; the manifest says {}", entry.size),
            );
        } else if sha256 != entry.sha256 {
            report.problem(
                &entry.name,
                "its SHA-256 does not match the manifest: the file was changed or damaged",
            );
        }
    }
    let entries = fs::read_dir(dir).map_err(|e| kgstore_core::Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| kgstore_core::Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if documents && name == VALUES_DIR && entry.path().is_dir() {
            let values = fs::read_dir(entry.path()).map_err(|e| kgstore_core::Error::io(dir, e))?;
            for value in values {
                let value = value.map_err(|e| kgstore_core::Error::io(dir, e))?;
                let name = format!("{VALUES_DIR}/{}", value.file_name().to_string_lossy());
                if !listed.contains(name.as_str()) {
                    report.problem(&name, "is not part of the backup (an extra file)");
                }
            }
            continue;
        }
        if name != MANIFEST_FILE && !listed.contains(name.as_str()) {
            report.problem(&name, "is not part of the backup (an extra file)");
        }
    }
    Ok(())
}

/// Compiled schemas of `schemas.json` (those that compile).
fn check_schemas(dir: &Path, report: &mut VerifyReport) -> HashMap<SchemaTarget, CompiledSchema> {
    let path = dir.join(SCHEMAS_FILE);
    let mut compiled = HashMap::new();
    let Ok(text) = fs::read(&path) else {
        return compiled;
    };
    let entries: Vec<SchemaEntry> = match serde_json::from_slice(&text) {
        Ok(entries) => entries,
        Err(e) => {
            report.problem(SCHEMAS_FILE, format!("does not parse: {e}"));
            return compiled;
        }
    };
    for entry in entries {
        report.counts.schemas += 1;
        match entry
            .target
            .check()
            .and_then(|()| CompiledSchema::compile(&entry.target, &entry.schema))
        {
            Ok(schema) => {
                if compiled.insert(entry.target.clone(), schema).is_some() {
                    report.problem(
                        SCHEMAS_FILE,
                        format!("has two schemas for {}", entry.target),
                    );
                }
            }
            Err(e) => report.problem(SCHEMAS_FILE, e.to_string()),
        }
    }
    compiled
}

/// Each line of a JSON Lines file, with its number; unreadable lines become problems.
/// A missing file has no lines (the manifest check reports it).
pub(crate) fn for_each_line(
    dir: &Path,
    file: &str,
    report: &mut VerifyReport,
    mut each: impl FnMut(usize, &[u8], &mut VerifyReport),
) -> Result<()> {
    let path = dir.join(file);
    let Ok(handle) = File::open(&path) else {
        return Ok(());
    };
    each_line(handle, &path, file, report, |number, line, report| {
        each(number, line, report);
        Ok(())
    })
}

/// Each line of the open JSON Lines `handle` (`file` in `path`), with its number,
/// without its newline; a last line cut off before its newline is a problem.
pub(super) fn each_line(
    handle: File,
    path: &Path,
    file: &str,
    report: &mut VerifyReport,
    mut each: impl FnMut(usize, &[u8], &mut VerifyReport) -> Result<()>,
) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, handle);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| kgstore_core::Error::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            report.problem(
                format!("{file} line {number}"),
                "is cut off (no final newline): the file is truncated",
            );
            continue;
        }
        each(number, &line[..line.len() - 1], report)?;
    }
}

/// Names and dependencies of every node.
type DependencyGraph = BTreeMap<String, Vec<String>>;

fn check_nodes(
    dir: &Path,
    schemas: &HashMap<SchemaTarget, CompiledSchema>,
    report: &mut VerifyReport,
    progress: &mut impl FnMut(Progress),
) -> Result<DependencyGraph> {
    let mut graph = DependencyGraph::new();
    let mut previous: Option<String> = None;
    for_each_line(dir, NODES_FILE, report, |number, line, report| {
        let at = format!("{NODES_FILE} line {number}");
        let node: Node = match serde_json::from_slice(line) {
            Ok(node) => node,
            Err(e) => return report.problem(at, format!("is not a node: {e}")),
        };
        report.counts.nodes += 1;
        for v in validate::node(&node) {
            report.problem(&at, v.to_string());
        }
        if node.metadata.version == 0 {
            report.problem(&at, "has version 0, which no stored node has");
        }
        let meta = &node.metadata;
        let subject = validate::node_subject(&node.name);
        for v in validate::kept_metadata(&subject, meta.version, meta.created_at, meta.updated_at) {
            report.problem(&at, v.to_string());
        }
        if let Some(schema) = schemas.get(&SchemaTarget::NodeType(node.node_type.clone())) {
            for v in schema.violations(&validate::node_subject(&node.name), &node.attributes) {
                report.problem(&at, v.to_string());
            }
        }
        if previous.as_ref().is_some_and(|p| *p >= node.name) {
            report.problem(
                &at,
                format!(
                    "node '{}' is out of order or repeated",
                    validate::shorten(&node.name)
                ),
            );
        }
        previous = Some(node.name.clone());
        if report.counts.nodes % 1000 == 0 {
            progress(Progress {
                phase: Phase::Nodes,
                done: report.counts.nodes,
                total: report.counts.nodes,
            });
        }
        graph.insert(node.name, node.dependencies);
    })?;
    Ok(graph)
}

fn check_edges(
    dir: &Path,
    graph: &DependencyGraph,
    schemas: &HashMap<SchemaTarget, CompiledSchema>,
    report: &mut VerifyReport,
    progress: &mut impl FnMut(Progress),
) -> Result<()> {
    let mut previous: Option<EdgeKey> = None;
    for_each_line(dir, EDGES_FILE, report, |number, line, report| {
        let at = format!("{EDGES_FILE} line {number}");
        let edge: Edge = match serde_json::from_slice(line) {
            Ok(edge) => edge,
            Err(e) => return report.problem(at, format!("is not an edge: {e}")),
        };
        report.counts.edges += 1;
        for v in validate::edge(&edge) {
            report.problem(&at, v.to_string());
        }
        if edge.metadata.version == 0 {
            report.problem(&at, "has version 0, which no stored edge has");
        }
        let key = edge.key();
        let meta = &edge.metadata;
        let subject = format!("edge {key}");
        for v in validate::kept_metadata(&subject, meta.version, meta.created_at, meta.updated_at) {
            report.problem(&at, v.to_string());
        }
        if let Some(schema) = schemas.get(&SchemaTarget::RelationType(edge.relation_type.clone())) {
            for v in schema.violations(&format!("edge {key}"), &edge.attributes) {
                report.problem(&at, v.to_string());
            }
        }
        for end in [&edge.from, &edge.to] {
            if !graph.contains_key(end) {
                report.problem(
                    &at,
                    format!(
                        "edge {key} names node '{}', which the backup does not hold",
                        validate::shorten(end)
                    ),
                );
            }
        }
        if previous.as_ref().is_some_and(|p| *p >= key) {
            report.problem(&at, format!("edge {key} is out of order or repeated"));
        }
        previous = Some(key);
        if report.counts.edges % 1000 == 0 {
            progress(Progress {
                phase: Phase::Edges,
                done: report.counts.edges,
                total: report.counts.edges,
            });
        }
    })
}

fn check_dependencies(graph: &DependencyGraph, report: &mut VerifyReport) {
    for (name, deps) in graph {
        for dep in deps {
            if !graph.contains_key(dep) {
                report.problem(
                    NODES_FILE,
                    format!(
                        "node '{}' depends on '{}', which the backup does not hold",
                        validate::shorten(name),
                        validate::shorten(dep)
                    ),
                );
            }
        }
    }
    let deps_of = |name: &str| Ok(graph.get(name).cloned());
    if let Ok(Some(cycle)) = algo::first_cycle(&deps_of, graph.keys().cloned()) {
        report.problem(
            NODES_FILE,
            format!("dependency cycle {}", cycle.join(" -> ")),
        );
    }
}
