//! GraphML export, readable by Gephi, yEd and NetworkX.
//!
//! Nodes are identified by their names. Structured values (observations,
//! attributes, dependencies, tags) are written as JSON text in string data, so
//! nothing is lost. XML cannot hold the characters U+FFFE and U+FFFF at all:
//! inside JSON text they are written as `\ufffe` escapes (exact); in plain
//! strings they become U+FFFD, and a node whose name holds one gets the id
//! `kgstore-node-N` (its `label` keeps the rest of the name).

use std::fmt::Write as _;
use std::io::Write;

use kgstore_core::{EdgeFilter, GraphRead, NodeFilter, Operation, PageRequest, Result, Store};
use serde_json::Value;

use super::Report;
use super::native::output_error;
use crate::progress::{Phase, Progress};

/// Node data keys: (id, name, type).
const NODE_KEYS: [(&str, &str, &str); 10] = [
    ("label", "label", "string"),
    ("node_type", "node_type", "string"),
    ("observations", "observations", "string"),
    ("attributes", "attributes", "string"),
    ("dependencies", "dependencies", "string"),
    ("tags", "tags", "string"),
    ("status", "status", "string"),
    ("version", "version", "long"),
    ("created_at", "created_at", "string"),
    ("updated_at", "updated_at", "string"),
];

/// Edge data keys.
const EDGE_KEYS: [(&str, &str, &str); 6] = [
    ("relation_type", "relation_type", "string"),
    ("weight", "weight", "double"),
    ("confidence", "confidence", "double"),
    ("bidirectional", "bidirectional", "boolean"),
    ("edge_attributes", "attributes", "string"),
    ("edge_version", "version", "long"),
];

fn xml_char_ok(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes text for an XML attribute or element; characters XML cannot hold become U+FFFD.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if xml_char_ok(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// JSON text of a value with U+FFFE/U+FFFF escaped, so the XML stays valid and exact.
fn json_text(value: &impl serde::Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    text.replace('\u{FFFE}', "\\ufffe")
        .replace('\u{FFFF}', "\\uffff")
}

/// The GraphML id of a node.
fn node_id(name: &str, index: u64) -> String {
    if name.chars().all(xml_char_ok) {
        name.to_owned()
    } else {
        format!("kgstore-node-{index}")
    }
}

/// Exports the whole store as GraphML, from one snapshot.
pub fn export_graphml(
    store: &Store,
    out: impl Write,
    progress: impl FnMut(Progress),
) -> Result<Report> {
    super::observed(store, Operation::Export, "graphml", || {
        write_graphml(store, out, progress)
    })
}

/// The export itself (see [`export_graphml`]).
fn write_graphml(
    store: &Store,
    mut out: impl Write,
    mut progress: impl FnMut(Progress),
) -> Result<Report> {
    let snapshot = store.read()?;
    let mut report = Report::default();
    let mut head = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" ",
        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ",
        "xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n"
    ));
    for (id, name, kind) in NODE_KEYS {
        let _ = writeln!(
            head,
            "  <key id=\"{id}\" for=\"node\" attr.name=\"{name}\" attr.type=\"{kind}\"/>"
        );
    }
    for (id, name, kind) in EDGE_KEYS {
        let _ = writeln!(
            head,
            "  <key id=\"{id}\" for=\"edge\" attr.name=\"{name}\" attr.type=\"{kind}\"/>"
        );
    }
    head.push_str("  <graph id=\"kgstore\" edgedefault=\"directed\">\n");
    out.write_all(head.as_bytes()).map_err(output_error)?;

    // Names whose id is not the name itself, for the edges.
    let mut renamed = std::collections::HashMap::new();
    let total = snapshot.count_nodes()?;
    let mut page = PageRequest::first(1000);
    loop {
        let got = snapshot.list_nodes(&NodeFilter::default(), &page)?;
        let mut chunk = String::new();
        for node in &got.items {
            let id = node_id(&node.name, report.nodes);
            if id != node.name {
                renamed.insert(node.name.clone(), id.clone());
            }
            let meta = &node.metadata;
            let _ = write!(chunk, "    <node id=\"{}\">", xml(&id));
            let mut data = |key: &str, value: &str| {
                let _ = write!(chunk, "<data key=\"{key}\">{}</data>", xml(value));
            };
            data("label", &node.name);
            data("node_type", &node.node_type);
            data("observations", &json_text(&node.observations));
            data(
                "attributes",
                &json_text(&Value::Object(node.attributes.clone())),
            );
            data("dependencies", &json_text(&node.dependencies));
            data("tags", &json_text(&meta.tags));
            if let Some(status) = &meta.status {
                data("status", status);
            }
            data("version", &meta.version.to_string());
            data("created_at", &meta.created_at.to_string());
            data("updated_at", &meta.updated_at.to_string());
            chunk.push_str("</node>\n");
            report.nodes += 1;
        }
        out.write_all(chunk.as_bytes()).map_err(output_error)?;
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
    let id_of = |name: &str| {
        renamed
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    };
    let total = snapshot.count_edges()?;
    let mut page = PageRequest::first(1000);
    loop {
        let got = snapshot.list_edges(&EdgeFilter::default(), &page)?;
        let mut chunk = String::new();
        for edge in &got.items {
            let meta = &edge.metadata;
            let _ = write!(
                chunk,
                "    <edge id=\"e{}\" source=\"{}\" target=\"{}\">",
                report.edges,
                xml(&id_of(&edge.from)),
                xml(&id_of(&edge.to))
            );
            let mut data = |key: &str, value: &str| {
                let _ = write!(chunk, "<data key=\"{key}\">{}</data>", xml(value));
            };
            data("relation_type", edge.relation_type.as_str());
            data("weight", &json_text(&meta.weight));
            if let Some(confidence) = meta.confidence {
                data("confidence", &json_text(&confidence));
            }
            data(
                "bidirectional",
                if meta.bidirectional { "true" } else { "false" },
            );
            data(
                "edge_attributes",
                &json_text(&Value::Object(edge.attributes.clone())),
            );
            data("edge_version", &meta.version.to_string());
            chunk.push_str("</edge>\n");
            report.edges += 1;
        }
        out.write_all(chunk.as_bytes()).map_err(output_error)?;
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
    out.write_all(b"  </graph>\n</graphml>\n")
        .map_err(output_error)?;
    out.flush().map_err(output_error)?;
    Ok(report)
}
