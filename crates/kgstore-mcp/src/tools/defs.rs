//! The tools' definitions: the official memory server's, verbatim, plus
//! kgstore's optional additions, plus the extra tools.

use serde_json::{Map, Value, json};

/// The official server's `tools/list` (`@modelcontextprotocol/server-memory`
/// 2026.8.31), one tool per line, exactly as it sends it.
const OFFICIAL: &str = include_str!("official.json");

/// The longest query `search_nodes` takes (the official server's `main` says so too).
pub const MAX_QUERY_CHARS: u64 = 2048;

/// The largest page a tool answers with.
pub const MAX_LIMIT: u64 = 10_000;

/// The nine official tools with kgstore's additions: `maxLength` on the search
/// query (as on the official `main`), and `limit`, `cursor` and `namesOnly` on
/// the three reading tools, whose answers gain an optional `nextCursor` and, for
/// names-only answers, entities without observations. Every addition is
/// optional, so a client written for the official server calls these unchanged
/// and a result the official server would give validates against them.
pub fn memory_tools(default_limit: usize) -> Result<Vec<Value>, kgstore::Error> {
    let mut tools: Vec<Value> = serde_json::from_str(OFFICIAL).map_err(|e| {
        kgstore::Error::invalid_input("the official tool list (official.json)", e.to_string())
    })?;
    for tool in &mut tools {
        let name = tool["name"].as_str().unwrap_or_default().to_owned();
        if name == "search_nodes" {
            tool["inputSchema"]["properties"]["query"]["maxLength"] = json!(MAX_QUERY_CHARS);
        }
        if matches!(name.as_str(), "read_graph" | "search_nodes" | "open_nodes") {
            add_paging(tool, default_limit);
        }
    }
    Ok(tools)
}

fn add_paging(tool: &mut Value, default_limit: usize) {
    if let Some(properties) = tool["inputSchema"]["properties"].as_object_mut() {
        properties.insert(
            "limit".into(),
            json!({
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "description": format!("kgstore: at most this many entities (default {default_limit}); the answer's nextCursor continues")
            }),
        );
        properties.insert(
            "cursor".into(),
            json!({
                "type": "string",
                "description": "kgstore: the nextCursor of the previous answer, to get the next page"
            }),
        );
        properties.insert(
            "namesOnly".into(),
            json!({
                "type": "boolean",
                "description": "kgstore: leave observations out, answering with names and types only"
            }),
        );
    }
    let output = &mut tool["outputSchema"];
    if let Some(properties) = output["properties"].as_object_mut() {
        properties.insert(
            "nextCursor".into(),
            json!({
                "type": "string",
                "description": "kgstore: there is more; pass this as cursor to get the next page"
            }),
        );
    }
    output["properties"]["entities"]["items"]["required"] = json!(["name", "entityType"]);
}

fn relation_schema(described: bool) -> Value {
    let (from, to, kind) = if described {
        (
            "The name of the entity where the relation starts",
            "The name of the entity where the relation ends",
            "The type of the relation",
        )
    } else {
        ("", "", "")
    };
    let mut properties = Map::new();
    for (key, description) in [("from", from), ("to", to), ("relationType", kind)] {
        let mut p = Map::new();
        p.insert("type".into(), json!("string"));
        if !description.is_empty() {
            p.insert("description".into(), json!(description));
        }
        properties.insert(key.into(), Value::Object(p));
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": ["from", "to", "relationType"],
        "additionalProperties": false
    })
}

fn read_only() -> Value {
    json!({"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false})
}

const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// The extra tools offered with `--extra-tools`: traversal, shortest paths and counts.
pub fn extra_tools() -> Vec<Value> {
    let direction = json!({
        "type": "string",
        "enum": ["out", "in", "both"],
        "description": "Follow relations from the entity (out), to it (in) or both ways (default both)"
    });
    let relation_types = json!({
        "type": "array",
        "items": {"type": "string"},
        "description": "Follow only relations of these types (all if absent)"
    });
    vec![
        json!({
            "name": "traverse",
            "title": "Traverse",
            "description": "Find the entities within some hops of an entity, with the relations between them (kgstore)",
            "inputSchema": {
                "$schema": DRAFT_07,
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The entity to start from"},
                    "depth": {"type": "integer", "minimum": 1, "maximum": 10, "description": "How many hops (default 1: the neighbours)"},
                    "direction": direction,
                    "relationTypes": relation_types,
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": "At most this many entities (default 100), nearest first"}
                },
                "required": ["name"]
            },
            "annotations": read_only(),
            "outputSchema": {
                "$schema": DRAFT_07,
                "type": "object",
                "properties": {
                    "entities": {"type": "array", "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "entityType": {"type": "string"},
                            "depth": {"type": "integer", "description": "Hops from the start"}
                        },
                        "required": ["name", "entityType", "depth"],
                        "additionalProperties": false
                    }},
                    "relations": {"type": "array", "items": relation_schema(false)},
                    "truncated": {"type": "boolean", "description": "More entities are within reach than the limit allowed"}
                },
                "required": ["entities", "relations", "truncated"],
                "additionalProperties": false
            }
        }),
        json!({
            "name": "shortest_path",
            "title": "Shortest Path",
            "description": "Find a shortest chain of relations between two entities (kgstore)",
            "inputSchema": {
                "$schema": DRAFT_07,
                "type": "object",
                "properties": {
                    "from": {"type": "string", "description": "The entity where the path starts"},
                    "to": {"type": "string", "description": "The entity where the path ends"},
                    "direction": direction,
                    "relationTypes": relation_types,
                    "maxHops": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Give up on longer paths"}
                },
                "required": ["from", "to"]
            },
            "annotations": read_only(),
            "outputSchema": {
                "$schema": DRAFT_07,
                "type": "object",
                "properties": {
                    "found": {"type": "boolean"},
                    "path": {"type": "array", "items": {"type": "string"}, "description": "The entities from start to end"},
                    "relations": {"type": "array", "items": relation_schema(false), "description": "The relations followed, as stored"}
                },
                "required": ["found", "path", "relations"],
                "additionalProperties": false
            }
        }),
        json!({
            "name": "graph_stats",
            "title": "Graph Statistics",
            "description": "Count the entities and relations, by type (kgstore; types as identifiers: lower case, other characters as _)",
            "inputSchema": {"$schema": DRAFT_07, "type": "object", "properties": {}},
            "annotations": read_only(),
            "outputSchema": {
                "$schema": DRAFT_07,
                "type": "object",
                "properties": {
                    "entities": {"type": "integer"},
                    "relations": {"type": "integer"},
                    "entityTypes": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "relationTypes": {"type": "object", "additionalProperties": {"type": "integer"}}
                },
                "required": ["entities", "relations", "entityTypes", "relationTypes"],
                "additionalProperties": false
            }
        }),
    ]
}

/// The tool as a revision knows it: fields a revision does not define are left
/// out (annotations before 2025-03-26, titles and output schemas before
/// 2025-06-18, execution hints outside 2025-11-25).
pub fn for_revision(tool: &Value, revision: crate::Revision) -> Value {
    let mut tool = tool.clone();
    if let Some(fields) = tool.as_object_mut() {
        if !revision.has_annotations() {
            fields.remove("annotations");
        }
        if !revision.has_structured_output() {
            fields.remove("title");
            fields.remove("outputSchema");
        }
        if revision.has_task_hints() {
            fields
                .entry("execution")
                .or_insert_with(|| json!({"taskSupport": "forbidden"}));
        } else {
            fields.remove("execution");
        }
    }
    tool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_list_is_read_whole() {
        let official: Vec<Value> = serde_json::from_str(OFFICIAL).unwrap();
        let names: Vec<&str> = official
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "create_entities",
                "create_relations",
                "add_observations",
                "delete_entities",
                "delete_observations",
                "delete_relations",
                "read_graph",
                "search_nodes",
                "open_nodes"
            ]
        );
        assert_eq!(memory_tools(200).unwrap().len(), 9);
    }

    #[test]
    fn additions_are_optional_and_keep_the_official_fields() {
        let official: Vec<Value> = serde_json::from_str(OFFICIAL).unwrap();
        for (ours, theirs) in memory_tools(200).unwrap().iter().zip(&official) {
            for key in ["name", "title", "description", "annotations", "execution"] {
                assert_eq!(ours[key], theirs[key], "{key} of {}", theirs["name"]);
            }
            assert_eq!(
                ours["inputSchema"]["required"],
                theirs["inputSchema"]["required"]
            );
            assert_eq!(
                ours["outputSchema"]["required"],
                theirs["outputSchema"]["required"]
            );
            for (key, value) in theirs["inputSchema"]["properties"].as_object().unwrap() {
                let mine = &ours["inputSchema"]["properties"][key];
                for (k, v) in value.as_object().unwrap() {
                    assert_eq!(&mine[k], v, "{}.{key}.{k}", theirs["name"]);
                }
            }
        }
    }
}
