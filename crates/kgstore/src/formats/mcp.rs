//! The MCP memory server's JSON Lines, so its users can move their memory file
//! into kgstore and back.
//!
//! ```text
//! {"type":"entity","name":"John_Smith","entityType":"person","observations":["Speaks Spanish"]}
//! {"type":"relation","from":"John_Smith","to":"Anthropic","relationType":"works_at"}
//! ```
//!
//! An entity becomes a node: `entityType` becomes its type (made an identifier:
//! lower case, other characters as `_`), a relation becomes an edge whose type is
//! the built-in relation of that name or a custom one. Whatever the identifier
//! does not keep — the original spelling of a type, fields other servers add —
//! is kept under the attribute `mcp`, so exporting gives the same lines back.
//! Repeated entities (which the memory server can leave behind) are merged,
//! repeated relations folded.

use std::collections::HashSet;
use std::io::{BufRead, Write};

use kgstore_core::{
    Edge, EdgeFilter, EdgeKey, GraphRead, Node, NodeFilter, Operation, PageRequest, RelationType,
    Result, Store, validate,
};
use serde::Serialize;
use serde_json::{Map, Value};

use super::native::{output_error, write_line};
use super::{ImportOptions, Lines, Report, bad_line, run_import};
use crate::progress::{Phase, Progress};

/// The attribute holding what an MCP line had that kgstore's fields do not keep.
const MCP_KEY: &str = "mcp";

/// Makes an identifier `[a-z][a-z0-9_]*` (≤ 64 bytes) out of free text.
fn identifier_from(text: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in text.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let mut id = out.trim_matches('_').to_owned();
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        id = if id.is_empty() {
            fallback.to_owned()
        } else {
            format!("{fallback}_{id}")
        };
    }
    id.truncate(validate::MAX_IDENTIFIER_BYTES);
    id.trim_end_matches('_').to_owned()
}

fn take_string(object: &mut Map<String, Value>, key: &str, number: u64) -> Result<String> {
    match object.remove(key) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(bad_line(number, format!("'{key}' is not a string"))),
        None => Err(bad_line(number, format!("has no '{key}'"))),
    }
}

/// The `mcp` attribute: the original type's spelling where it differs, and extra fields.
fn mcp_attribute(
    original_key: &str,
    original: &str,
    normalized: &str,
    extra: Map<String, Value>,
) -> Option<Value> {
    let mut mcp = Map::new();
    if original != normalized {
        mcp.insert(original_key.to_owned(), Value::String(original.to_owned()));
    }
    if !extra.is_empty() {
        mcp.insert("extra".to_owned(), Value::Object(extra));
    }
    (!mcp.is_empty()).then_some(Value::Object(mcp))
}

/// Imports an MCP memory file.
pub fn import_mcp(
    store: &Store,
    input: impl BufRead,
    total_bytes: u64,
    options: ImportOptions,
    mut progress: impl FnMut(Progress),
) -> Result<Report> {
    let mut lines = Lines::new(input, total_bytes);
    let mut entities: HashSet<String> = HashSet::new();
    let mut relations: HashSet<EdgeKey> = HashSet::new();
    run_import(
        store,
        "mcp",
        &mut lines,
        options,
        &mut progress,
        |tx, number, line, report| {
            let value: Value = serde_json::from_str(line)
                .map_err(|e| bad_line(number, format!("is not JSON: {e}")))?;
            let Value::Object(mut object) = value else {
                return Err(bad_line(number, "is not a JSON object"));
            };
            let kind = take_string(&mut object, "type", number)?;
            match kind.as_str() {
                "entity" => {
                    let name = take_string(&mut object, "name", number)?;
                    let entity_type = take_string(&mut object, "entityType", number)?;
                    let observations: Vec<String> = match object.remove("observations") {
                        None => Vec::new(),
                        Some(v) => serde_json::from_value(v).map_err(|_| {
                            bad_line(number, "'observations' is not a list of strings")
                        })?,
                    };
                    let node_type = identifier_from(&entity_type, "entity");
                    if entities.contains(&name) {
                        // A repeated entity: merge its observations into the first.
                        let mut node = tx.get_node(&name)?;
                        if node.node_type != node_type {
                            return Err(bad_line(
                                number,
                                format!(
                                    "entity '{}' appeared before with another entityType",
                                    validate::shorten(&name)
                                ),
                            ));
                        }
                        for o in observations {
                            if !node.observations.contains(&o) {
                                node.observations.push(o);
                            }
                        }
                        tx.update_node(node, None)?;
                        report.merged += 1;
                        return Ok(());
                    }
                    let mut node = Node {
                        observations,
                        ..Node::new(name.clone(), node_type.clone())?
                    };
                    if let Some(mcp) = mcp_attribute("entityType", &entity_type, &node_type, object)
                    {
                        node.attributes.insert(MCP_KEY.to_owned(), mcp);
                    }
                    tx.create_node(node)?;
                    entities.insert(name);
                    report.nodes += 1;
                }
                "relation" => {
                    let from = take_string(&mut object, "from", number)?;
                    let to = take_string(&mut object, "to", number)?;
                    let relation_type = take_string(&mut object, "relationType", number)?;
                    let relation =
                        RelationType::parse(&identifier_from(&relation_type, "relation"))?;
                    let mut edge = Edge::new(from, relation.clone(), to)?;
                    if relations.contains(&edge.key()) {
                        report.merged += 1;
                        return Ok(());
                    }
                    if let Some(mcp) =
                        mcp_attribute("relationType", &relation_type, relation.as_str(), object)
                    {
                        edge.attributes.insert(MCP_KEY.to_owned(), mcp);
                    }
                    relations.insert(edge.key());
                    tx.create_edge(edge)?;
                    report.edges += 1;
                }
                other => {
                    return Err(bad_line(
                        number,
                        format!(
                            "has type '{}', expected entity or relation",
                            validate::shorten(other)
                        ),
                    ));
                }
            }
            Ok(())
        },
    )
}

#[derive(Serialize)]
struct EntityLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    #[serde(rename = "entityType")]
    entity_type: &'a str,
    observations: &'a [String],
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Serialize)]
struct RelationLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    from: &'a str,
    to: &'a str,
    #[serde(rename = "relationType")]
    relation_type: &'a str,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// The original spelling kept under `mcp` (or the identifier) and the extra fields.
fn original<'a>(
    attributes: &'a Map<String, Value>,
    key: &str,
    identifier: &'a str,
) -> (&'a str, Map<String, Value>) {
    let mcp = attributes.get(MCP_KEY).and_then(Value::as_object);
    let spelled = mcp
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or(identifier);
    let extra = mcp
        .and_then(|m| m.get("extra"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    (spelled, extra)
}

/// Exports the store as an MCP memory file: every node as an entity, every edge as
/// a relation. Attributes (other than `mcp`), dependencies and metadata have no
/// place in that format and are left out.
pub fn export_mcp(
    store: &Store,
    out: impl Write,
    progress: impl FnMut(Progress),
) -> Result<Report> {
    super::observed(store, Operation::Export, "mcp", || {
        write_mcp(store, out, progress)
    })
}

/// The export itself (see [`export_mcp`]).
fn write_mcp(
    store: &Store,
    mut out: impl Write,
    mut progress: impl FnMut(Progress),
) -> Result<Report> {
    let snapshot = store.read()?;
    let mut report = Report::default();
    let total = snapshot.count_nodes()?;
    let mut page = PageRequest::first(1000);
    loop {
        let got = snapshot.list_nodes(&NodeFilter::default(), &page)?;
        for node in &got.items {
            let (entity_type, extra) = original(&node.attributes, "entityType", &node.node_type);
            write_line(
                &mut out,
                &EntityLine {
                    kind: "entity",
                    name: &node.name,
                    entity_type,
                    observations: &node.observations,
                    extra,
                },
            )?;
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
            let (relation_type, extra) = original(
                &edge.attributes,
                "relationType",
                edge.relation_type.as_str(),
            );
            write_line(
                &mut out,
                &RelationLine {
                    kind: "relation",
                    from: &edge.from,
                    to: &edge.to,
                    relation_type,
                    extra,
                },
            )?;
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

#[cfg(test)]
mod tests {
    use super::identifier_from;

    #[test]
    fn identifiers_from_free_text() {
        assert_eq!(identifier_from("person", "entity"), "person");
        assert_eq!(identifier_from("Person", "entity"), "person");
        assert_eq!(identifier_from("is part of", "relation"), "is_part_of");
        assert_eq!(identifier_from("  --Works-At--  ", "relation"), "works_at");
        assert_eq!(identifier_from("3d model", "entity"), "entity_3d_model");
        assert_eq!(identifier_from("ünïcödé", "entity"), "n_c_d");
        assert_eq!(identifier_from("", "entity"), "entity");
        assert_eq!(identifier_from("!!!", "entity"), "entity");
        assert_eq!(identifier_from(&"a".repeat(100), "entity").len(), 64);
    }
}
