//! Import and export: kgstore's native JSON Lines, the MCP memory server's JSON
//! Lines, GraphML (Gephi, yEd, NetworkX) and DOT (Graphviz).
//!
//! Imports run in one transaction with reference checks deferred to its end, so
//! lines may come in any order and a failed import leaves nothing behind; with
//! a batch size, every batch is its own transaction instead. A malformed line is
//! reported with its line number and the reason, and so is a relation naming a
//! node that does not exist, found at commit.

mod dot;
mod graphml;
mod mcp;
mod native;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::BufRead;

use kgstore_core::{Edge, EdgeKey, Error, GraphRead, Operation, Result, Store, WriteTx};

pub use dot::{DotOptions, export_dot};
pub use graphml::export_graphml;
pub use mcp::{
    entity_node, entity_type_of, export_mcp, import_mcp, relation_edge, relation_type_from,
    relation_type_of,
};
pub use native::{export_jsonl, import_jsonl};

use crate::progress::{Phase, Progress};

/// The formats kgstore reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// kgstore's own JSON Lines: schema, node and edge lines as in backups (import and export).
    Jsonl,
    /// The MCP memory server's JSON Lines: entity and relation lines (import and export).
    Mcp,
    /// GraphML, for Gephi, yEd and NetworkX (export).
    GraphMl,
    /// Graphviz DOT (export).
    Dot,
}

impl std::str::FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "jsonl" => Ok(Self::Jsonl),
            "mcp" => Ok(Self::Mcp),
            "graphml" => Ok(Self::GraphMl),
            "dot" => Ok(Self::Dot),
            other => Err(Error::invalid_input(
                format!("format '{other}'"),
                "expected jsonl, mcp, graphml or dot",
            )),
        }
    }
}

/// How an import commits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Commit every this many lines (each batch then stands on its own: references
    /// must resolve within what is committed by the end of the batch). `None`: the
    /// whole import is one transaction.
    pub batch_size: Option<usize>,
}

/// What an import or export handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Nodes (entities) read or written.
    pub nodes: u64,
    /// Edges (relations) read or written.
    pub edges: u64,
    /// Schemas read or written.
    pub schemas: u64,
    /// Repeated lines folded into earlier ones (MCP files may repeat entities and relations).
    pub merged: u64,
}

/// Reads lines, numbering them and reporting bytes read.
pub(crate) struct Lines<R> {
    reader: R,
    number: u64,
    bytes: u64,
    total: u64,
    buffer: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(reader: R, total_bytes: u64) -> Self {
        Self {
            reader,
            number: 0,
            bytes: 0,
            total: total_bytes,
            buffer: Vec::new(),
        }
    }

    /// The next non-blank line as text with its number, or `None` at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<(u64, &str)>> {
        loop {
            self.buffer.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buffer)
                .map_err(|e| {
                    Error::invalid_input(
                        format!("line {} of the input", self.number + 1),
                        e.to_string(),
                    )
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.number += 1;
            self.bytes += n as u64;
            let mut end = self.buffer.len();
            while end > 0 && matches!(self.buffer[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            let blank = match std::str::from_utf8(&self.buffer[..end]) {
                Ok(text) => text.trim().is_empty(),
                Err(_) => return Err(bad_line(self.number, "is not valid UTF-8")),
            };
            if !blank {
                let text = std::str::from_utf8(&self.buffer[..end])
                    .map_err(|_| bad_line(self.number, "is not valid UTF-8"))?;
                return Ok(Some((self.number, text)));
            }
        }
    }

    pub(crate) fn progress(&self) -> Progress {
        Progress {
            phase: Phase::Bytes,
            done: self.bytes,
            total: self.total,
        }
    }
}

/// A malformed line.
pub(crate) fn bad_line(number: u64, reason: impl std::fmt::Display) -> Error {
    Error::invalid_input(format!("line {number}"), reason.to_string())
}

/// Adds the line number to the subjects of a validation error, and to the entity
/// of an `AlreadyExists` (a file imported into a store that holds its nodes).
pub(crate) fn at_line(number: u64, error: Error) -> Error {
    match error {
        Error::Validation { mut violations } => {
            for v in &mut violations {
                v.subject = format!("{} (line {number})", v.subject);
            }
            Error::Validation { violations }
        }
        Error::AlreadyExists { entity } => Error::AlreadyExists {
            entity: format!("{entity} (line {number})"),
        },
        other => other,
    }
}

/// Where the relations of an import came from, so that one naming a node that does
/// not exist — found only at commit, where references are checked — is reported
/// with its line.
///
/// It costs no allocation per line on the usual path: each node's name is kept as
/// a hash, and an edge is kept (its key and line) only when an end is neither a
/// node of the input before it nor one the store holds — a reference forward in
/// the file, or a dangling one.
pub(crate) struct Relations {
    /// A fast hasher, seeded per process (names chosen to collide cannot be
    /// prepared; a collision would only leave a line out of a message).
    hasher: foldhash::fast::RandomState,
    /// Hashes of the names of the nodes read so far.
    nodes: foldhash::HashSet<u64>,
    /// Edges naming a node the input had not given and the store did not hold, with their lines.
    forward: Vec<(EdgeKey, u64)>,
}

impl Relations {
    fn new() -> Self {
        Self {
            hasher: foldhash::fast::RandomState::default(),
            nodes: foldhash::HashSet::default(),
            forward: Vec::new(),
        }
    }

    /// Notes a node read from the input.
    pub(crate) fn node(&mut self, name: &str) {
        self.nodes.insert(self.hasher.hash_one(name));
    }

    /// Whether `edge` names a node not read before it: call
    /// before writing it, and [`Relations::written`] after.
    pub(crate) fn unseen_end(&self, edge: &Edge) -> bool {
        [&edge.from, &edge.to]
            .into_iter()
            .any(|end| !self.nodes.contains(&self.hasher.hash_one(end.as_str())))
    }

    /// Keeps the line of an edge written whose ends were not both read before it
    /// ([`Relations::unseen_end`]) if the store does not hold them either.
    pub(crate) fn written(&mut self, tx: &WriteTx<'_>, key: EdgeKey, number: u64) -> Result<()> {
        let mut held = true;
        for end in [&key.from, &key.to] {
            if !self.nodes.contains(&self.hasher.hash_one(end.as_str())) {
                held &= tx.contains_node(end)?;
            }
        }
        if !held {
            self.forward.push((key, number));
        }
        Ok(())
    }

    /// Adds the line to each violation of a commit's error that is about an edge
    /// kept by [`Relations::written`] (a node it names does not exist).
    fn place(&self, error: Error) -> Error {
        let Error::Validation { mut violations } = error else {
            return error;
        };
        // Only on failure: the subjects of the kept edges, as the commit names them.
        let mut lines: HashMap<String, u64> = HashMap::with_capacity(self.forward.len());
        for (key, number) in &self.forward {
            lines.entry(format!("edge {key}")).or_insert(*number);
        }
        for v in &mut violations {
            if let Some(number) = lines.get(&v.subject) {
                v.subject = format!("{} (line {number})", v.subject);
            }
        }
        Error::Validation { violations }
    }
}

/// Runs an import or export of `format` in its span, timed and logged with what it
/// handled (and reported if slow).
pub(crate) fn observed(
    store: &Store,
    op: Operation,
    format: &'static str,
    run: impl FnOnce() -> Result<Report>,
) -> Result<Report> {
    let backend = store.backend_name();
    let _span = match op {
        Operation::Import => tracing::info_span!("import", format, backend),
        _ => tracing::info_span!("export", format, backend),
    }
    .entered();
    let timer = store.observer().start(op);
    let outcome = run();
    if let Ok(report) = &outcome {
        tracing::info!(
            nodes = report.nodes,
            edges = report.edges,
            schemas = report.schemas,
            merged = report.merged,
            "{} done",
            op.as_str()
        );
    }
    timer.finish(outcome)
}

/// Runs an import's lines through `apply`, committing once or every `batch_size` lines.
pub(crate) fn run_import<R: BufRead>(
    store: &Store,
    format: &'static str,
    lines: &mut Lines<R>,
    options: ImportOptions,
    progress: &mut impl FnMut(Progress),
    mut apply: impl FnMut(&mut WriteTx<'_>, &mut Relations, u64, &str, &mut Report) -> Result<()>,
) -> Result<Report> {
    observed(store, Operation::Import, format, || {
        import_lines(store, lines, options, progress, &mut apply)
    })
}

/// The import itself (see [`run_import`]).
fn import_lines<R: BufRead>(
    store: &Store,
    lines: &mut Lines<R>,
    options: ImportOptions,
    progress: &mut impl FnMut(Progress),
    apply: &mut impl FnMut(&mut WriteTx<'_>, &mut Relations, u64, &str, &mut Report) -> Result<()>,
) -> Result<Report> {
    if options.batch_size == Some(0) {
        return Err(Error::invalid_input("batch size", "must be at least 1"));
    }
    let batch = options.batch_size.unwrap_or(usize::MAX);
    let mut report = Report::default();
    let mut relations = Relations::new();
    loop {
        let more = store
            .write(|tx| {
                tx.defer_checks();
                let mut taken = 0;
                while taken < batch {
                    let Some((number, line)) = lines.next_line()? else {
                        return Ok(false);
                    };
                    apply(tx, &mut relations, number, line, &mut report)
                        .map_err(|e| at_line(number, e))?;
                    taken += 1;
                    if taken % 1000 == 0 {
                        progress(lines.progress());
                    }
                }
                Ok(true)
            })
            .map_err(|e| relations.place(e))?;
        progress(lines.progress());
        if !more {
            return Ok(report);
        }
    }
}
