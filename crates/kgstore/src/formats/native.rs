//! kgstore's own JSON Lines: the lines of a backup, in one stream.
//!
//! Each line is a schema (`{"target": …, "schema": …}`), a node (has `name`) or an
//! edge (has `from`), in the JSON forms of `docs/model.md`. Exports write the
//! schemas, then the nodes by name, then the edges by key, from one snapshot.

use std::io::{BufRead, Write};

use kgstore_core::{
    Edge, EdgeFilter, Error, GraphRead, Node, NodeFilter, Operation, PageRequest, Result, Store,
};
use serde_json::Value;

use super::{ImportOptions, Lines, Report, bad_line, run_import};
use crate::backup::SchemaEntry;
use crate::progress::{Phase, Progress};

/// Imports native JSON Lines; timestamps and versions in the lines are kept
/// (lines without metadata, or of version 0, are created as new).
pub fn import_jsonl(
    store: &Store,
    input: impl BufRead,
    total_bytes: u64,
    options: ImportOptions,
    mut progress: impl FnMut(Progress),
) -> Result<Report> {
    let mut lines = Lines::new(input, total_bytes);
    run_import(
        store,
        "jsonl",
        &mut lines,
        options,
        &mut progress,
        |tx, relations, number, line, report| {
            let value: Value = serde_json::from_str(line)
                .map_err(|e| bad_line(number, format!("is not JSON: {e}")))?;
            let object = value
                .as_object()
                .ok_or_else(|| bad_line(number, "is not a JSON object"))?;
            if object.contains_key("target") {
                let entry: SchemaEntry = serde_json::from_value(value)
                    .map_err(|e| bad_line(number, format!("is not a schema line: {e}")))?;
                tx.set_schema(entry.target, entry.schema)?;
                report.schemas += 1;
            } else if object.contains_key("from") {
                let edge: Edge = serde_json::from_value(value)
                    .map_err(|e| bad_line(number, format!("is not an edge: {e}")))?;
                let kept = relations.unseen_end(&edge).then(|| edge.key());
                tx.import_edge(edge)?;
                if let Some(key) = kept {
                    relations.written(tx, key, number)?;
                }
                report.edges += 1;
            } else if object.contains_key("name") {
                let node: Node = serde_json::from_value(value)
                    .map_err(|e| bad_line(number, format!("is not a node: {e}")))?;
                relations.node(&node.name);
                tx.import_node(node)?;
                report.nodes += 1;
            } else {
                return Err(bad_line(
                    number,
                    "is neither a schema (target), an edge (from) nor a node (name)",
                ));
            }
            Ok(())
        },
    )
}

/// Exports the whole store as native JSON Lines, from one snapshot.
pub fn export_jsonl(
    store: &Store,
    out: impl Write,
    progress: impl FnMut(Progress),
) -> Result<Report> {
    super::observed(store, Operation::Export, "jsonl", || {
        write_jsonl(store, out, progress)
    })
}

/// The export itself (see [`export_jsonl`]).
fn write_jsonl(
    store: &Store,
    mut out: impl Write,
    mut progress: impl FnMut(Progress),
) -> Result<Report> {
    let snapshot = store.read()?;
    let mut report = Report::default();
    for (target, schema) in snapshot.list_schemas()? {
        write_line(&mut out, &SchemaEntry { target, schema })?;
        report.schemas += 1;
    }
    let total = snapshot.count_nodes()?;
    let mut page = PageRequest::first(1000);
    loop {
        let got = snapshot.list_nodes(&NodeFilter::default(), &page)?;
        for node in &got.items {
            write_line(&mut out, node)?;
            report.nodes += 1;
        }
        progress(Progress {
            phase: Phase::Nodes,
            done: report.nodes,
            total,
        });
        match got.next_cursor {
            Some(c) => page = page.after(Some(c)),
            None => break,
        }
    }
    let total = snapshot.count_edges()?;
    let mut page = PageRequest::first(1000);
    loop {
        let got = snapshot.list_edges(&EdgeFilter::default(), &page)?;
        for edge in &got.items {
            write_line(&mut out, edge)?;
            report.edges += 1;
        }
        progress(Progress {
            phase: Phase::Edges,
            done: report.edges,
            total,
        });
        match got.next_cursor {
            Some(c) => page = page.after(Some(c)),
            None => break,
        }
    }
    out.flush().map_err(output_error)?;
    Ok(report)
}

/// Writes a value as one compact JSON line.
pub(crate) fn write_line(out: &mut impl Write, value: &impl serde::Serialize) -> Result<()> {
    let mut bytes =
        serde_json::to_vec(value).map_err(|e| Error::backend("export", e.to_string()))?;
    bytes.push(b'\n');
    out.write_all(&bytes).map_err(output_error)
}

/// An error writing the export's output.
pub(crate) fn output_error(e: std::io::Error) -> Error {
    Error::io("the export output", e)
}
