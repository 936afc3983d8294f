//! JSON Schemas for the attributes of a node type or a relation type.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result, Violation};
use crate::model::RelationType;
use crate::validate;

/// What a schema applies to: the attributes of every node of a type, or of every
/// edge of a relation type.
///
/// In JSON: `{"node_type": "crate"}` or `{"relation_type": "depends_on"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaTarget {
    /// Nodes of this type.
    NodeType(String),
    /// Edges of this relation type.
    RelationType(RelationType),
}

impl SchemaTarget {
    /// A compact text key, `node_type:NAME` or `relation_type:NAME`, for backends to store.
    pub fn key(&self) -> String {
        match self {
            Self::NodeType(t) => format!("node_type:{t}"),
            Self::RelationType(r) => format!("relation_type:{r}"),
        }
    }

    /// Parses a key written by [`SchemaTarget::key`].
    pub fn from_key(key: &str) -> Result<Self> {
        let target = match key.split_once(':') {
            Some(("node_type", t)) => Self::NodeType(t.to_owned()),
            Some(("relation_type", r)) => Self::RelationType(RelationType::parse(r)?),
            _ => {
                return Err(Error::invalid_input(
                    format!("schema key '{}'", validate::shorten(key)),
                    "expected node_type:NAME or relation_type:NAME",
                ));
            }
        };
        target.check()?;
        Ok(target)
    }

    /// Refuses a target whose type name is not an identifier.
    pub fn check(&self) -> Result<()> {
        let outcome = match self {
            Self::NodeType(t) => validate::identifier(t),
            Self::RelationType(r) => r.check(),
        };
        outcome.map_err(|reason| Error::invalid_input(self.to_string(), reason))
    }
}

impl fmt::Display for SchemaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NodeType(t) => write!(f, "node type '{}'", validate::shorten(t)),
            Self::RelationType(r) => write!(f, "relation type '{r}'"),
        }
    }
}

/// A compiled schema, shared by every transaction that validates against it.
pub(crate) type Compiled = Arc<jsonschema::Validator>;

/// Compiles schemas once per distinct document and keeps them for the store's lifetime.
#[derive(Default)]
pub(crate) struct SchemaCache {
    compiled: Mutex<HashMap<String, Compiled>>,
}

/// How many compiled schemas the cache keeps before it starts afresh.
const CACHE_CAPACITY: usize = 512;

impl SchemaCache {
    /// The compiled form of `schema`, compiling it on first sight.
    pub(crate) fn compile(&self, target: &SchemaTarget, schema: &Value) -> Result<Compiled> {
        let text = schema.to_string();
        if let Some(found) = self.lock().get(&text) {
            return Ok(Arc::clone(found));
        }
        let compiled = Arc::new(compile(target, schema)?);
        let mut cache = self.lock();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(text, Arc::clone(&compiled));
        Ok(compiled)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Compiled>> {
        // The map is only ever inserted into whole, so a panic elsewhere cannot leave it torn.
        self.compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A schema compiled for validation, for tools that check attributes outside a
/// store (backup verification, importers).
#[derive(Clone)]
pub struct CompiledSchema(Compiled);

impl CompiledSchema {
    /// Compiles `schema` for `target`, refusing what is not a valid JSON Schema
    /// (including references to remote documents, which are never fetched).
    pub fn compile(target: &SchemaTarget, schema: &Value) -> Result<Self> {
        Ok(Self(Arc::new(compile(target, schema)?)))
    }

    /// Every violation of the schema by `attributes`, with pointers under `/attributes`.
    pub fn violations(&self, subject: &str, attributes: &Map<String, Value>) -> Vec<Violation> {
        violations(&self.0, subject, attributes)
    }
}

impl fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CompiledSchema")
    }
}

/// Compiles a schema document, refusing what is not a valid JSON Schema.
pub(crate) fn compile(target: &SchemaTarget, schema: &Value) -> Result<jsonschema::Validator> {
    compile_document(|| format!("JSON Schema for {target}"), schema)
}

/// Compiles a schema document; `what` names it in errors.
pub(crate) fn compile_document(
    what: impl Fn() -> String,
    schema: &Value,
) -> Result<jsonschema::Validator> {
    if !(schema.is_object() || schema.is_boolean()) {
        return Err(Error::invalid_input(
            what(),
            "a schema must be a JSON object or a boolean",
        ));
    }
    jsonschema::validator_for(schema).map_err(|e| {
        let at = e.instance_path().as_str();
        let at = if at.is_empty() {
            String::new()
        } else {
            format!(" at {at}")
        };
        Error::invalid_input(what(), format!("{}{at}", clip(&e.to_string())))
    })
}

/// Every violation of `schema` by `attributes`, with pointers under `/attributes`.
pub(crate) fn violations(
    schema: &jsonschema::Validator,
    subject: &str,
    attributes: &Map<String, Value>,
) -> Vec<Violation> {
    let instance = Value::Object(attributes.clone());
    schema
        .iter_errors(&instance)
        .map(|e| {
            Violation::new(
                subject,
                format!("/attributes{}", e.instance_path().as_str()),
                clip(&e.to_string()),
            )
        })
        .collect()
}

/// Cuts a message to a readable length (values quoted in schema errors can be huge).
pub(crate) fn clip(message: &str) -> String {
    const MAX_CHARS: usize = 300;
    if message.chars().count() <= MAX_CHARS {
        return message.to_owned();
    }
    let mut out: String = message.chars().take(MAX_CHARS).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_round_trip() {
        for target in [
            SchemaTarget::NodeType("crate".into()),
            SchemaTarget::RelationType(RelationType::DependsOn),
            SchemaTarget::RelationType(RelationType::Custom("owned_by".into())),
        ] {
            assert_eq!(SchemaTarget::from_key(&target.key()).unwrap(), target);
        }
        assert!(SchemaTarget::from_key("node_type:Bad").is_err());
        assert!(SchemaTarget::from_key("other:x").is_err());
    }

    #[test]
    fn json_form_is_tagged() {
        let t = SchemaTarget::NodeType("crate".into());
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"node_type": "crate"})
        );
    }

    #[test]
    fn violations_carry_pointers() {
        let target = SchemaTarget::NodeType("crate".into());
        let schema = compile(
            &target,
            &json!({"type": "object", "properties": {"v": {"type": "string"}, "n": {"minimum": 0}}, "required": ["v"]}),
        )
        .unwrap();
        let attrs = json!({"n": -1}).as_object().cloned().unwrap();
        let found = violations(&schema, "node 'a'", &attrs);
        let pointers: Vec<&str> = found.iter().map(|v| v.pointer.as_str()).collect();
        assert!(pointers.contains(&"/attributes"), "{found:?}");
        assert!(pointers.contains(&"/attributes/n"), "{found:?}");
    }

    #[test]
    fn bad_schemas_and_remote_references_are_refused() {
        let target = SchemaTarget::NodeType("crate".into());
        assert!(compile(&target, &json!(3)).is_err());
        assert!(compile(&target, &json!({"type": "no-such-type"})).is_err());
        let remote = json!({"$ref": "https://example.com/schema.json"});
        assert_eq!(
            compile(&target, &remote).unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
    }
}
