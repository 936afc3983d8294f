//! The tools: their definitions, argument checking, and calls, each one kgstore
//! transaction.

mod defs;
mod extra;
mod memory;

use std::time::Instant;

use kgstore::{Error, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use defs::{MAX_LIMIT, MAX_QUERY_CHARS, for_revision};

/// What a tool call gave: the text block, the structured value, whether it failed
/// and whether it changed the store.
#[derive(Debug)]
pub struct Outcome {
    /// The text block (the official server's `JSON.stringify(result, null, 2)`,
    /// or a message).
    pub text: String,
    /// `structuredContent`; `None` for errors.
    pub structured: Option<Value>,
    /// Whether the call failed (`isError`).
    pub is_error: bool,
    /// Whether the call committed a change.
    pub changed: bool,
}

impl Outcome {
    /// A failed call: nothing changed.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            structured: None,
            is_error: true,
            changed: false,
        }
    }

    /// An answer whose text is `text_value` rendered like `JSON.stringify(v, null, 2)`.
    fn json(
        text_value: &impl Serialize,
        structured: &impl Serialize,
        changed: bool,
    ) -> Result<Self, Error> {
        Ok(Self {
            text: pretty(text_value)?,
            structured: Some(to_value(structured)?),
            is_error: false,
            changed,
        })
    }

    /// An answer whose text is a message and whose structure is `{success, message}`.
    fn message(message: String, changed: bool) -> Self {
        Self {
            structured: Some(json!({"success": true, "message": message})),
            text: message,
            is_error: false,
            changed,
        }
    }

    /// The `CallToolResult` for a revision (structured content from 2025-06-18 on).
    pub fn to_result(&self, structured_output: bool) -> Value {
        let mut result = json!({"content": [{"type": "text", "text": self.text}]});
        if structured_output && let Some(structured) = &self.structured {
            result["structuredContent"] = structured.clone();
        }
        if self.is_error {
            result["isError"] = json!(true);
        }
        result
    }
}

fn internal(what: &str, e: serde_json::Error) -> Error {
    Error::invalid_input(what.to_owned(), e.to_string())
}

/// `JSON.stringify(value, null, 2)`: serde_json's pretty printer indents by two
/// spaces, escapes the same characters and keeps the structs' field order.
fn pretty(value: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string_pretty(value).map_err(|e| internal("answer", e))
}

fn to_value(value: &impl Serialize) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| internal("answer", e))
}

/// The whole graph as the resource `memory://knowledge-graph` gives it: every
/// entity and relation from one snapshot, rendered like the official server's.
pub fn whole_graph(store: &Store) -> Result<String, Error> {
    memory::whole_graph(store)
}

/// The text a failed call answers with: the official server's wording where it
/// has one, kgstore's message (which names the thing and the rule) otherwise.
pub fn error_text(error: &Error) -> String {
    match error {
        Error::NodeNotFound { name, .. } => format!("Entity with name {name} not found"),
        other => other.to_string(),
    }
}

struct Tool {
    definition: Value,
    validator: jsonschema::Validator,
}

/// The tools a server offers, in `tools/list` order.
pub struct Tools {
    tools: Vec<Tool>,
    default_limit: usize,
}

impl Tools {
    /// The nine memory tools, and the extra ones if asked for.
    pub fn new(extra_tools: bool, default_limit: usize) -> Result<Self, Error> {
        let mut definitions = defs::memory_tools(default_limit)?;
        if extra_tools {
            definitions.extend(defs::extra_tools());
        }
        let tools = definitions
            .into_iter()
            .map(|definition| {
                let validator =
                    jsonschema::validator_for(&definition["inputSchema"]).map_err(|e| {
                        Error::invalid_input(
                            format!("input schema of tool {}", definition["name"]),
                            e.to_string(),
                        )
                    })?;
                Ok(Tool {
                    definition,
                    validator,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            tools,
            default_limit,
        })
    }

    /// The definitions, in order.
    pub fn definitions(&self) -> impl Iterator<Item = &Value> {
        self.tools.iter().map(|t| &t.definition)
    }

    /// Whether a tool of this name is offered.
    pub fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    fn find(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.definition["name"] == name)
    }

    /// Calls a tool (which must exist) with its arguments: they are checked against
    /// its input schema first, every violation named; then the call runs as one
    /// kgstore transaction.
    pub fn call(&self, store: &Store, name: &str, arguments: &Value) -> Outcome {
        let Some(tool) = self.find(name) else {
            return Outcome::error(format!("Tool {name} not found"));
        };
        let problems: Vec<String> = tool
            .validator
            .iter_errors(arguments)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{e} at {at}")
                }
            })
            .collect();
        if !problems.is_empty() {
            return Outcome::error(format!(
                "Input validation error: Invalid arguments for tool {name}: {}",
                problems.join("; ")
            ));
        }
        let started = Instant::now();
        let outcome = self.dispatch(store, name, arguments);
        let outcome = outcome.unwrap_or_else(|e| Outcome::error(error_text(&e)));
        tracing::debug!(
            tool = name,
            is_error = outcome.is_error,
            micros = started.elapsed().as_micros() as u64,
            "tool call"
        );
        outcome
    }

    fn dispatch(&self, store: &Store, name: &str, arguments: &Value) -> Result<Outcome, Error> {
        let limit = self.default_limit;
        match name {
            "create_entities" => memory::create_entities(store, args(arguments)?),
            "create_relations" => memory::create_relations(store, args(arguments)?),
            "add_observations" => memory::add_observations(store, args(arguments)?),
            "delete_entities" => memory::delete_entities(store, args(arguments)?),
            "delete_observations" => memory::delete_observations(store, args(arguments)?),
            "delete_relations" => memory::delete_relations(store, args(arguments)?),
            "read_graph" => memory::read_graph(store, args(arguments)?, limit),
            "search_nodes" => memory::search_nodes(store, args(arguments)?, limit),
            "open_nodes" => memory::open_nodes(store, args(arguments)?, limit),
            "traverse" => extra::traverse(store, args(arguments)?),
            "shortest_path" => extra::shortest_path(store, args(arguments)?),
            "graph_stats" => extra::graph_stats(store),
            other => Ok(Outcome::error(format!("Tool {other} not found"))),
        }
    }
}

/// The arguments as a tool's parameter struct (after the schema check, this only
/// fails on what JSON Schema cannot say, such as a number too large for memory).
fn args<T: DeserializeOwned>(arguments: &Value) -> Result<T, Error> {
    T::deserialize(arguments).map_err(|e| Error::invalid_input("arguments", e.to_string()))
}
