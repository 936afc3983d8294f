//! Graphviz DOT export of the whole graph or of a node's neighbourhood.

use std::collections::BTreeSet;
use std::io::Write;

use kgstore_core::{
    Direction, Edge, EdgeFilter, GraphRead, Node, NodeFilter, Operation, PageRequest, ReadTx,
    Result, Store, TraverseOptions,
};

use super::Report;
use super::native::output_error;
use crate::progress::{Phase, Progress};

/// What a DOT export shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DotOptions {
    /// Only this node and the nodes within `depth` hops of it (both directions).
    pub around: Option<String>,
    /// Hops around `around` (default 1).
    pub depth: Option<usize>,
}

/// A DOT quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn node_line(node: &Node) -> String {
    let label = format!("{}\n({})", node.name, node.node_type);
    format!("  {} [label={}];\n", quoted(&node.name), quoted(&label))
}

fn edge_line(edge: &Edge) -> String {
    let both = if edge.metadata.bidirectional {
        ", dir=both"
    } else {
        ""
    };
    format!(
        "  {} -> {} [label={}{both}];\n",
        quoted(&edge.from),
        quoted(&edge.to),
        quoted(edge.relation_type.as_str())
    )
}

/// Exports the graph (or the neighbourhood `options` names) as a Graphviz digraph.
pub fn export_dot(
    store: &Store,
    out: impl Write,
    options: &DotOptions,
    progress: impl FnMut(Progress),
) -> Result<Report> {
    super::observed(store, Operation::Export, "dot", || {
        write_dot(store, out, options, progress)
    })
}

/// The export itself (see [`export_dot`]).
fn write_dot(
    store: &Store,
    mut out: impl Write,
    options: &DotOptions,
    mut progress: impl FnMut(Progress),
) -> Result<Report> {
    let snapshot = store.read()?;
    let mut report = Report::default();
    let mut text = String::from(
        "digraph kgstore {\n  node [shape=box, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    match &options.around {
        Some(center) => neighbourhood(
            &snapshot,
            center,
            options.depth.unwrap_or(1),
            &mut text,
            &mut report,
        )?,
        None => {
            let total = snapshot.count_nodes()?;
            let mut page = PageRequest::first(1000);
            loop {
                let got = snapshot.list_nodes(&NodeFilter::default(), &page)?;
                for node in &got.items {
                    text.push_str(&node_line(node));
                    report.nodes += 1;
                }
                out.write_all(text.as_bytes()).map_err(output_error)?;
                text.clear();
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
                    text.push_str(&edge_line(edge));
                    report.edges += 1;
                }
                out.write_all(text.as_bytes()).map_err(output_error)?;
                text.clear();
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
        }
    }
    text.push_str("}\n");
    out.write_all(text.as_bytes()).map_err(output_error)?;
    out.flush().map_err(output_error)?;
    Ok(report)
}

fn neighbourhood(
    snapshot: &ReadTx<'_>,
    center: &str,
    depth: usize,
    text: &mut String,
    report: &mut Report,
) -> Result<()> {
    let options = TraverseOptions::depth(depth).direction(Direction::Both);
    let mut names: BTreeSet<String> = snapshot
        .traverse(center, &options)?
        .into_iter()
        .map(|v| v.name)
        .collect();
    names.insert(center.to_owned());
    for name in &names {
        let node = snapshot.get_node(name)?;
        let mut line = node_line(&node);
        if name == center {
            line = line.replace("];\n", ", style=bold];\n");
        }
        text.push_str(&line);
        report.nodes += 1;
    }
    for name in &names {
        for edge in snapshot.edges_of(name, Direction::Out, &[])? {
            if names.contains(&edge.to) {
                text.push_str(&edge_line(&edge));
                report.edges += 1;
            }
        }
    }
    Ok(())
}
