//! A store's whole content in a form that compares across backends and runs:
//! every node, edge and schema as JSON, without the timestamps the store stamps.

use std::collections::BTreeMap;
use std::fmt;

use kgstore::documents::Sha256Digest;
use kgstore::{
    DocumentQuery, DocumentRead, EdgeFilter, GraphRead, NodeFilter, PageRequest, Result, Store,
};
use serde_json::Value;

use crate::workload::{COUNTER_TOTAL, COUNTERS, Lane};

/// Items read per page.
const PAGE: usize = 500;

/// A store's content: nodes by name, edges by key, schemas by target, each as
/// JSON with `created_at` and `updated_at` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Nodes by name.
    pub nodes: BTreeMap<String, String>,
    /// Edges by key (`from -[relation]-> to`).
    pub edges: BTreeMap<String, String>,
    /// Schemas by target.
    pub schemas: BTreeMap<String, String>,
    /// Documents by key: version, content type, size and the SHA-256 of the bytes
    /// read back (so a torn or foreign value shows even if its metadata is whole).
    pub documents: BTreeMap<String, String>,
}

/// Removes the store-stamped `created_at` and `updated_at` from an entity's JSON
/// (its `metadata` object).
pub(crate) fn remove_timestamps(value: &mut Value) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("created_at");
        meta.remove("updated_at");
    }
}

/// An entity's JSON text without the store-stamped timestamps.
fn without_timestamps(mut value: Value) -> String {
    remove_timestamps(&mut value);
    value.to_string()
}

fn to_json(value: &impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|e| kgstore::Error::backend("snapshot", format!("cannot encode: {e}")))
}

impl Snapshot {
    /// Reads everything from one read snapshot of `store`.
    pub fn of(store: &Store) -> Result<Self> {
        let read = store.read()?;
        Self::of_reader(&read)
    }

    /// Reads everything through `reader` (a store, a read or a write transaction).
    pub fn of_reader(reader: &(impl GraphRead + DocumentRead)) -> Result<Self> {
        let mut snapshot = Self::default();
        let mut page = PageRequest::first(PAGE);
        loop {
            let got = reader.list_nodes(&NodeFilter::default(), &page)?;
            for node in got.items {
                let name = node.name.clone();
                snapshot
                    .nodes
                    .insert(name, without_timestamps(to_json(&node)?));
            }
            match got.next_cursor {
                Some(cursor) => page = page.after(Some(cursor)),
                None => break,
            }
        }
        let mut page = PageRequest::first(PAGE);
        loop {
            let got = reader.list_edges(&EdgeFilter::default(), &page)?;
            for edge in got.items {
                let key = edge.key().to_string();
                snapshot
                    .edges
                    .insert(key, without_timestamps(to_json(&edge)?));
            }
            match got.next_cursor {
                Some(cursor) => page = page.after(Some(cursor)),
                None => break,
            }
        }
        for (target, schema) in reader.list_schemas()? {
            snapshot
                .schemas
                .insert(target.to_string(), schema.to_string());
        }
        let mut query = DocumentQuery::prefix("").limit(PAGE);
        // A backend without documents has none to compare.
        if !crate::workload::holds_documents(reader)? {
            return Ok(snapshot);
        }
        loop {
            let page = reader.list_documents(&query)?;
            for meta in &page.documents {
                let doc = reader.get_document(&meta.key)?;
                snapshot.documents.insert(
                    meta.key.clone(),
                    format!(
                        "v{} {} {} bytes sha256:{}",
                        doc.meta.version,
                        doc.meta.content_type,
                        doc.meta.size,
                        Sha256Digest::of(&doc.content)
                    ),
                );
            }
            match page.next_cursor {
                Some(cursor) => query = query.after(Some(cursor)),
                None => break,
            }
        }
        Ok(snapshot)
    }

    /// What differs from `other`, briefly, for failure messages.
    pub fn diff(&self, other: &Snapshot) -> String {
        let mut out = Vec::new();
        diff_maps("node", &self.nodes, &other.nodes, &mut out);
        diff_maps("edge", &self.edges, &other.edges, &mut out);
        diff_maps("schema", &self.schemas, &other.schemas, &mut out);
        diff_maps("document", &self.documents, &other.documents, &mut out);
        let more = out.len().saturating_sub(12);
        out.truncate(12);
        if more > 0 {
            out.push(format!("… and {more} more differences"));
        }
        out.join("\n  ")
    }

    /// The nodes whose names start with `prefix` and the edges that leave them
    /// (a [`Lane`]'s part of a store) and the documents whose keys start with it,
    /// without the schemas.
    pub fn lane(&self, prefix: &str) -> Snapshot {
        Snapshot {
            nodes: self
                .nodes
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            edges: self
                .edges
                .iter()
                .filter(|(key, _)| key.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            schemas: BTreeMap::new(),
            documents: self
                .documents
                .iter()
                .filter(|(key, _)| key.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The workload's own invariants: the counters, if present, are all there,
    /// non-negative and sum to [`COUNTER_TOTAL`]. Empty when they hold.
    pub fn workload_problems(&self) -> Vec<String> {
        self.lane_problems(Lane::SOLE)
    }

    /// [`workload_problems`](Self::workload_problems) for the counters of `lane`.
    pub fn lane_problems(&self, lane: Lane) -> Vec<String> {
        let mut problems = Vec::new();
        let values: Vec<Option<i64>> = (0..COUNTERS)
            .map(|i| {
                let text = self.nodes.get(&lane.counter(i))?;
                let node: Value = serde_json::from_str(text).ok()?;
                node.pointer("/attributes/value").and_then(Value::as_i64)
            })
            .collect();
        if values.iter().all(Option::is_none) {
            return problems;
        }
        if values.iter().any(Option::is_none) {
            problems.push(format!("some counters are missing: {values:?}"));
            return problems;
        }
        let values: Vec<i64> = values.into_iter().flatten().collect();
        let sum: i64 = values.iter().sum();
        if sum != COUNTER_TOTAL || values.iter().any(|v| *v < 0) {
            problems.push(format!(
                "counters {values:?} sum to {sum}, not {COUNTER_TOTAL}: a transfer is partly visible"
            ));
        }
        problems
    }
}

fn diff_maps(
    what: &str,
    left: &BTreeMap<String, String>,
    right: &BTreeMap<String, String>,
    out: &mut Vec<String>,
) {
    for (key, value) in left {
        match right.get(key) {
            None => out.push(format!("{what} {key} only on the left")),
            Some(other) if other != value => {
                out.push(format!("{what} {key} differs: {value} vs {other}"));
            }
            Some(_) => {}
        }
    }
    for key in right.keys() {
        if !left.contains_key(key) {
            out.push(format!("{what} {key} only on the right"));
        }
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} nodes, {} edges, {} schemas, {} documents",
            self.nodes.len(),
            self.edges.len(),
            self.schemas.len(),
            self.documents.len()
        )
    }
}
