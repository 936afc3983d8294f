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
//!
//! The mapping itself ([`entity_node`], [`relation_edge`], [`entity_type_of`],
//! [`relation_type_of`]) is public: `kgstore mcp` (the `kgstore-mcp` crate)
//! maps the memory server's tool calls through the same functions, so a file
//! imported here and the same data written through the server are one store.

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

/// The node an MCP entity becomes: `entity_type` made an identifier (lower case,
/// other characters as `_`) with its original spelling kept under the attribute
/// `mcp` where the two differ, and `extra` fields (which other servers add to
/// their lines) kept there too. The memory file importer and `kgstore mcp` both
/// map entities through this function, so they agree.
///
/// ```
/// use kgstore::formats::{entity_node, entity_type_of};
///
/// let node = entity_node("Alice", "Person", vec!["likes tea".into()], Default::default())?;
/// assert_eq!(node.node_type, "person");
/// assert_eq!(entity_type_of(&node), "Person");
/// # Ok::<(), kgstore::Error>(())
/// ```
pub fn entity_node(
    name: impl Into<String>,
    entity_type: &str,
    observations: Vec<String>,
    extra: Map<String, Value>,
) -> Result<Node> {
    let node_type = identifier_from(entity_type, "entity");
    let mut node = Node {
        observations,
        ..Node::new(name, node_type.clone())?
    };
    if let Some(mcp) = mcp_attribute("entityType", entity_type, &node_type, extra) {
        node.attributes.insert(MCP_KEY.to_owned(), mcp);
    }
    Ok(node)
}

/// The edge an MCP relation becomes: `relation_type` made an identifier (a
/// built-in relation where it names one), its original spelling kept under the
/// attribute `mcp` where the two differ, with `extra` fields beside it.
///
/// Two spellings with one identifier (`"works at"`, `"works_at"`) give the same
/// edge key: kgstore holds one relation per (from, identifier, to).
pub fn relation_edge(
    from: impl Into<String>,
    relation_type: &str,
    to: impl Into<String>,
    extra: Map<String, Value>,
) -> Result<Edge> {
    let relation = relation_type_from(relation_type)?;
    let mut edge = Edge::new(from, relation.clone(), to)?;
    if let Some(mcp) = mcp_attribute("relationType", relation_type, relation.as_str(), extra) {
        edge.attributes.insert(MCP_KEY.to_owned(), mcp);
    }
    Ok(edge)
}

/// The relation type an MCP relation type becomes: its identifier, a built-in
/// relation where it names one (`"Depends on"` is [`RelationType::DependsOn`]).
pub fn relation_type_from(relation_type: &str) -> Result<RelationType> {
    RelationType::parse(&identifier_from(relation_type, "relation"))
}

/// A node's entity type as the MCP server spelled it (its node type if it came from elsewhere).
pub fn entity_type_of(node: &Node) -> &str {
    original(&node.attributes, "entityType", &node.node_type).0
}

/// An edge's relation type as the MCP server spelled it (its identifier if it came from elsewhere).
pub fn relation_type_of(edge: &Edge) -> &str {
    original(
        &edge.attributes,
        "relationType",
        edge.relation_type.as_str(),
    )
    .0
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
        |tx, refs, number, line, report| {
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
                    if entities.contains(&name) {
                        // A repeated entity: merge its observations into the first.
                        let mut node = tx.get_node(&name)?;
                        if node.node_type != identifier_from(&entity_type, "entity") {
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
                    tx.create_node(entity_node(
                        name.clone(),
                        &entity_type,
                        observations,
                        object,
                    )?)?;
                    refs.node(&name);
                    entities.insert(name);
                    report.nodes += 1;
                }
                "relation" => {
                    let from = take_string(&mut object, "from", number)?;
                    let to = take_string(&mut object, "to", number)?;
                    let relation_type = take_string(&mut object, "relationType", number)?;
                    let edge = relation_edge(from, &relation_type, to, object)?;
                    if relations.contains(&edge.key()) {
                        report.merged += 1;
                        return Ok(());
                    }
                    let kept = refs.unseen_end(&edge).then(|| edge.key());
                    relations.insert(edge.key());
                    tx.create_edge(edge)?;
                    if let Some(key) = kept {
                        refs.written(tx, key, number)?;
                    }
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
