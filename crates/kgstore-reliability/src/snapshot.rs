//! A store's whole content in a form that compares across backends and runs:
//! every node, edge and schema as JSON, and every event of the log, without the
//! timestamps the store stamps (and without the random ids of change-feed events).

use std::collections::BTreeMap;
use std::fmt;

use kgstore::documents::Sha256Digest;
use kgstore::events::EventRead;
use kgstore::events::import::{export_records, export_state};
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
    /// Every event of the log (removed ones too): its position, and its JSON without
    /// its time, and without its id for the change feed's (random) ids.
    pub events: Vec<(u64, String)>,
    /// Every stream's version and last position.
    pub streams: BTreeMap<String, String>,
}

/// An event's JSON text without what differs between runs of the same workload.
fn event_text(record: &kgstore::events::LogRecord) -> Result<String> {
    if record.removed {
        // What stays of a removed event (cheap: most of a long log is removed).
        return Ok(format!(
            "removed {} v{} commit {}",
            record.stream, record.version, record.commit
        ));
    }
    let mut value = to_json(record)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("recorded_at");
        if record.stream == kgstore::events::CHANGES_STREAM {
            map.remove("id");
            map.remove("digest");
        }
    }
    for side in ["old", "new"] {
        if let Some(entity) = value.pointer_mut(&format!("/data/{side}")) {
            remove_timestamps(entity);
            // A document's metadata holds its times at the top.
            if let Some(meta) = entity.as_object_mut()
                && record.event_type.starts_with("document.")
            {
                meta.remove("created_at");
                meta.remove("updated_at");
            }
        }
    }
    Ok(value.to_string())
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
    pub fn of_reader(reader: &(impl GraphRead + EventRead + DocumentRead)) -> Result<Self> {
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
        let events = reader.with_events(|r, _| {
            let mut records = Vec::new();
            let mut from = 1;
            loop {
                let page = export_records(r, from)?;
                let Some(last) = page.last().map(|r| r.position) else {
                    break;
                };
                records.extend(page);
                from = last + 1;
            }
            let streams = export_state(r)?
                .into_iter()
                .filter(|(space, _, _)| space == "streams")
                .map(|(_, key, value)| {
                    let field = |name: &str| value.get(name).cloned().unwrap_or(Value::Null);
                    let text = format!(
                        "version {} last {} deleted {} removed_before {}",
                        field("version"),
                        field("last_position"),
                        field("deleted"),
                        field("removed_before")
                    );
                    (key, text)
                })
                .collect::<BTreeMap<String, String>>();
            Ok((records, streams))
        });
        match events {
            Ok((records, streams)) => {
                snapshot.events = records
                    .iter()
                    .map(|r| Ok((r.position, event_text(r)?)))
                    .collect::<Result<_>>()?;
                snapshot.streams = streams;
            }
            // A backend without events has none to compare.
            Err(e) if e.kind() == kgstore::ErrorKind::Unsupported => {}
            Err(e) => return Err(e),
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

    /// The positions of the log, in the order read.
    fn positions(&self) -> Vec<u64> {
        self.events.iter().map(|(p, _)| *p).collect()
    }

    /// What differs from `other`, briefly, for failure messages.
    pub fn diff(&self, other: &Snapshot) -> String {
        let mut out = Vec::new();
        diff_maps("node", &self.nodes, &other.nodes, &mut out);
        diff_maps("edge", &self.edges, &other.edges, &mut out);
        diff_maps("schema", &self.schemas, &other.schemas, &mut out);
        diff_maps("stream", &self.streams, &other.streams, &mut out);
        let numbered = |events: &[(u64, String)]| -> BTreeMap<String, String> {
            events
                .iter()
                .map(|(p, e)| (format!("#{p}"), e.clone()))
                .collect()
        };
        diff_maps(
            "event",
            &numbered(&self.events),
            &numbered(&other.events),
            &mut out,
        );
        diff_maps("document", &self.documents, &other.documents, &mut out);
        let more = out.len().saturating_sub(12);
        out.truncate(12);
        if more > 0 {
            out.push(format!("… and {more} more differences"));
        }
        out.join("\n  ")
    }

    /// The nodes whose names start with `prefix` and the edges that leave them
    /// (a [`Lane`]'s part of a store), the documents whose keys start with it and
    /// the streams whose names do, without the schemas and the log.
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
            // The log interleaves the lanes' commits (and the change feed records
            // both): only the lane's own stream, by version, is its part, without
            // its last position in the shared log.
            events: Vec::new(),
            streams: self
                .streams
                .iter()
                .filter(|(stream, _)| stream.starts_with(prefix))
                .map(|(k, v)| (k.clone(), without_last_position(v)))
                .collect(),
        }
    }

    /// The workload's own invariants: the event log's positions run from 1 without
    /// a gap; the counters, if present, are all there, non-negative and sum to
    /// [`COUNTER_TOTAL`]. Empty when they hold.
    pub fn workload_problems(&self) -> Vec<String> {
        self.lane_problems(Lane::SOLE)
    }

    /// [`workload_problems`](Self::workload_problems) for the counters of `lane` (and
    /// the whole log, which the lanes share).
    pub fn lane_problems(&self, lane: Lane) -> Vec<String> {
        let mut problems = Vec::new();
        let positions = self.positions();
        if positions
            .iter()
            .zip(1u64..)
            .any(|(p, expected)| *p != expected)
        {
            problems.push(format!(
                "the event log is not contiguous from 1: positions {positions:?}"
            ));
        }
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

/// A stream's text (see [`Snapshot::streams`]) without its `last N` position.
fn without_last_position(text: &str) -> String {
    let mut words = text.split(' ');
    let mut out = Vec::new();
    while let Some(word) = words.next() {
        if word == "last" {
            words.next();
        } else {
            out.push(word);
        }
    }
    out.join(" ")
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
            "{} nodes, {} edges, {} schemas, {} documents, {} events",
            self.nodes.len(),
            self.edges.len(),
            self.schemas.len(),
            self.documents.len(),
            self.events.len()
        )
    }
}
