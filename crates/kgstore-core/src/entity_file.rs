//! The file form of one entity, shared by the backends that keep one file per
//! node, edge and schema (the JSON-files backend; the git backend under
//! `.kgstore/`): pretty JSON in the forms of `docs/model.md`, at the path
//! [`names`](crate::names) derives from its key.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::{Edge, Node};
use crate::names::{self, EDGES, NODES, decode_schema_path};
use crate::schema::SchemaTarget;
use crate::validate::shorten;

/// One entity read from its file.
#[derive(Clone, Debug, PartialEq)]
pub enum EntityFile {
    /// A node file.
    Node(Node),
    /// An edge file.
    Edge(Edge),
    /// A schema file: its target (from the path) and the schema document.
    Schema(SchemaTarget, Value),
}

/// The pretty JSON of an entity file: two-space indentation, a final newline.
pub fn render(value: &impl Serialize) -> Result<Vec<u8>> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| Error::backend("entity file", e))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Sorts a JSON object's keys at every level. A no-op unless some crate turns on
/// serde_json's `preserve_order`; then it keeps files stable, so diffs stay minimal.
pub fn sort_map(map: &mut Map<String, Value>) {
    map.sort_keys();
    map.values_mut().for_each(Value::sort_all_objects);
}

/// A node's file bytes (attributes sorted by key).
pub fn render_node(node: &Node) -> Result<Vec<u8>> {
    let mut node = node.clone();
    sort_map(&mut node.attributes);
    render(&node)
}

/// An edge's file bytes (attributes sorted by key).
pub fn render_edge(edge: &Edge) -> Result<Vec<u8>> {
    let mut edge = edge.clone();
    sort_map(&mut edge.attributes);
    render(&edge)
}

/// A schema's file bytes (keys sorted at every level).
pub fn render_schema(schema: &Value) -> Result<Vec<u8>> {
    let mut schema = schema.clone();
    schema.sort_all_objects();
    render(&schema)
}

/// Parses the bytes of the entity file found at `rel` (relative to the data root:
/// `nodes/…`, `edges/…`, `schemas/…`) and checks that it sits where its key says.
/// The error is the reason, in words, without the path.
pub fn parse(rel: &str, bytes: &[u8]) -> std::result::Result<EntityFile, String> {
    let (entity, canonical) = if rel.starts_with(NODES) {
        let node: Node =
            serde_json::from_slice(bytes).map_err(|e| format!("does not parse as a node: {e}"))?;
        let canonical = names::node_path(&node.name);
        (EntityFile::Node(node), canonical)
    } else if rel.starts_with(EDGES) {
        let edge: Edge =
            serde_json::from_slice(bytes).map_err(|e| format!("does not parse as an edge: {e}"))?;
        let canonical = names::edge_path(&edge.key());
        (EntityFile::Edge(edge), canonical)
    } else {
        let schema: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("does not parse as JSON: {e}"))?;
        let mut parts = rel.split('/').skip(1);
        let target = match (parts.next(), parts.next()) {
            (Some(kind), Some(file)) => decode_schema_path(kind, file),
            _ => None,
        }
        .ok_or_else(|| {
            "is not named for a node type or relation type (schemas/node_type/NAME.json)".to_owned()
        })?;
        let canonical = names::schema_path(&target);
        (EntityFile::Schema(target, schema), canonical)
    };
    if canonical != rel {
        let what = match &entity {
            EntityFile::Node(n) => format!("node '{}'", shorten(&n.name)),
            EntityFile::Edge(e) => format!("edge {}", e.key()),
            EntityFile::Schema(t, _) => format!("the schema for {t}"),
        };
        return Err(format!(
            "holds {what}, whose file is {canonical}: a file must sit where its key says"
        ));
    }
    Ok(entity)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_file_must_sit_where_its_key_says() {
        let node = Node::new("serde", "crate").unwrap();
        let bytes = render_node(&node).unwrap();
        assert_eq!(
            parse(&names::node_path("serde"), &bytes).unwrap(),
            EntityFile::Node(node)
        );
        let err = parse(&names::node_path("other"), &bytes).unwrap_err();
        assert!(err.contains("must sit where its key says"), "{err}");
        assert!(
            parse("nodes/00/x.json", b"{")
                .unwrap_err()
                .contains("does not parse")
        );
        assert!(parse("schemas/nope.json", b"{}").is_err());
    }
}
