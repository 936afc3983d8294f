//! The change feed: when a store turns it on, every committed change of a node, an
//! edge, a schema or a document is appended to the stream `$changes` in the same
//! transaction, with the old and the new version. A transaction that rolls back leaves nothing,
//! and one that commits leaves exactly its changes, also across crashes, because the
//! events are part of the commit.
//!
//! Changes are recorded below the store's semantics, at the backend transaction:
//! every raw write passes through a [`Recorder`], so no path of the store (cascading
//! deletes, detached dependents, imports, restores, document batches and streams) can
//! change the graph or the documents unseen.
//!
//! | event type       | data                                                       |
//! |------------------|------------------------------------------------------------|
//! | `node.created`   | `{"key": NAME, "old_version": null, "new_version": 1, "old": null, "new": NODE}` |
//! | `node.updated`   | `{"key": NAME, "old_version": 1, "new_version": 2, "old": NODE, "new": NODE}` |
//! | `node.deleted`   | `{"key": NAME, "old_version": 2, "new_version": null, "old": NODE, "new": null}` |
//! | `edge.*`         | the same with `"key": {"from", "relation_type", "to"}` and edges |
//! | `schema.set`, `schema.removed` | `"key": TARGET`, the schema documents, no versions |
//! | `document.*`     | `"key": KEY`, versions, and the document's metadata (content type, size, SHA-256, times, version) as `old`/`new`: never its bytes |

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::algo::{self, PathOptions, Stats, TraverseOptions, Visit};
use crate::backend::{ReadTxn, WriteTxn};
use crate::documents::{DocInput, DocRead, DocWrite, Document, DocumentMeta};
use crate::error::{Error, Result};
use crate::events::backend::{EventLogRead, EventLogWrite};
use crate::events::kv;
use crate::events::model::{Append, AppendOptions, CHANGES_STREAM, ExpectedVersion, NewEvent};
use crate::events::read::EventRead;
use crate::filter::{Direction, EdgeFilter, NodeFilter};
use crate::model::{Edge, EdgeKey, Node, RelationType};
use crate::schema::SchemaTarget;
use crate::store::{BackendTxn, Store, WriteTx};

/// The event types the change feed appends.
pub const CHANGE_TYPES: [&str; 11] = [
    "node.created",
    "node.updated",
    "node.deleted",
    "edge.created",
    "edge.updated",
    "edge.deleted",
    "schema.set",
    "schema.removed",
    "document.created",
    "document.updated",
    "document.deleted",
];

/// The setting's key.
const SETTING: &str = "change_feed";

#[derive(Serialize, Deserialize)]
struct Setting {
    enabled: bool,
}

/// Whether the change feed is on.
pub(crate) fn enabled(r: &dyn EventLogRead) -> Result<bool> {
    Ok(kv::get::<Setting>(r, kv::SETTINGS, SETTING)?.is_some_and(|s| s.enabled))
}

/// Whether the change feed is on, and how far it has come.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeFeedStatus {
    /// Whether changes are recorded.
    pub enabled: bool,
    /// How many changes `$changes` holds (its version).
    pub events: u64,
    /// The position of the last change.
    pub last_position: u64,
}

/// One recorded change.
#[derive(Clone, Debug)]
enum Change {
    Node(Option<Node>, Option<Node>),
    Edge(Option<Edge>, Option<Edge>),
    Schema(SchemaTarget, Option<Value>, Option<Value>),
    Document(String, Option<DocumentMeta>, Option<DocumentMeta>),
}

/// The changes of one transaction, shared between the recorder and the transaction.
#[derive(Clone, Default)]
pub(crate) struct Recorded(Arc<Mutex<Vec<Change>>>);

impl Recorded {
    fn push(&self, change: Change) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(change);
    }

    fn take(&self) -> Vec<Change> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Wraps the backend transaction in a [`Recorder`] when the change feed is on.
pub(crate) fn attach<'s>(txn: BackendTxn<'s>) -> Result<(BackendTxn<'s>, Option<Recorded>)> {
    let on = match txn.events() {
        Some(log) => enabled(log)?,
        None => false,
    };
    if !on {
        return Ok((txn, None));
    }
    let recorded = Recorded::default();
    let recorder = Recorder {
        inner: txn,
        recorded: recorded.clone(),
    };
    Ok((BackendTxn::Recorded(Box::new(recorder)), Some(recorded)))
}

fn versions<T>(old: &Option<T>, new: &Option<T>, version: impl Fn(&T) -> u64) -> (Value, Value) {
    (
        old.as_ref().map_or(Value::Null, |o| json!(version(o))),
        new.as_ref().map_or(Value::Null, |n| json!(version(n))),
    )
}

fn verb(old: bool, new: bool) -> &'static str {
    match (old, new) {
        (false, _) => "created",
        (true, true) => "updated",
        (true, false) => "deleted",
    }
}

/// The event recording one change.
fn event(change: Change) -> Result<NewEvent> {
    let (event_type, data) = match change {
        Change::Node(old, new) => {
            let (ov, nv) = versions(&old, &new, |n| n.metadata.version);
            let key = old.as_ref().or(new.as_ref()).map(|n| n.name.clone());
            (
                format!("node.{}", verb(old.is_some(), new.is_some())),
                json!({"key": key, "old_version": ov, "new_version": nv,
                       "old": to_json(&old)?, "new": to_json(&new)?}),
            )
        }
        Change::Edge(old, new) => {
            let (ov, nv) = versions(&old, &new, |e| e.metadata.version);
            let key = old
                .as_ref()
                .or(new.as_ref())
                .map(|e| json!({"from": e.from, "relation_type": e.relation_type, "to": e.to}));
            (
                format!("edge.{}", verb(old.is_some(), new.is_some())),
                json!({"key": key, "old_version": ov, "new_version": nv,
                       "old": to_json(&old)?, "new": to_json(&new)?}),
            )
        }
        Change::Schema(target, old, new) => (
            if new.is_some() {
                "schema.set".to_owned()
            } else {
                "schema.removed".to_owned()
            },
            json!({"key": target, "old_version": null, "new_version": null, "old": old, "new": new}),
        ),
        Change::Document(key, old, new) => {
            let (ov, nv) = versions(&old, &new, |m| m.version);
            (
                format!("document.{}", verb(old.is_some(), new.is_some())),
                json!({"key": key, "old_version": ov, "new_version": nv,
                       "old": to_json(&old)?, "new": to_json(&new)?}),
            )
        }
    };
    Ok(NewEvent::new(event_type, data))
}

fn to_json<T: Serialize>(value: &Option<T>) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| crate::Error::backend("change feed", e))
}

/// Appends the transaction's recorded changes to `$changes`.
pub(crate) fn flush(tx: &mut WriteTx<'_>) -> Result<()> {
    let Some(recorded) = tx.events.feed.clone() else {
        return Ok(());
    };
    let changes = recorded.take();
    if changes.is_empty() {
        return Ok(());
    }
    // Appends are limited per call; a huge transaction is recorded in several.
    let mut events = changes
        .into_iter()
        .map(event)
        .collect::<Result<Vec<NewEvent>>>()?;
    while !events.is_empty() {
        let rest = events.split_off(
            events
                .len()
                .min(crate::events::model::MAX_EVENTS_PER_APPEND),
        );
        let append = Append {
            stream: CHANGES_STREAM.to_owned(),
            expected: ExpectedVersion::Any,
            events,
        };
        tx.append_checked(vec![append], &AppendOptions::default(), true)?;
        events = rest;
    }
    Ok(())
}

impl WriteTx<'_> {
    /// Turns the change feed on or off, from the next transaction on.
    pub fn set_change_feed(&mut self, enabled: bool) -> Result<()> {
        self.with_events(|_, _| Ok(()))?;
        self.ev_write(|w| kv::put(w, kv::SETTINGS, SETTING, &Setting { enabled }))
    }
}

impl Store {
    /// Turns the change feed on or off; see [`WriteTx::set_change_feed`].
    pub fn set_change_feed(&self, enabled: bool) -> Result<()> {
        self.write(|tx| tx.set_change_feed(enabled))
    }

    /// Whether the change feed is on and how many changes it holds.
    pub fn change_feed_status(&self) -> Result<ChangeFeedStatus> {
        self.with_events(|r, _| {
            let info = crate::events::read::stream_info(r, CHANGES_STREAM)?;
            Ok(ChangeFeedStatus {
                enabled: enabled(r)?,
                events: info.as_ref().map_or(0, |i| i.version),
                last_position: info.as_ref().map_or(0, |i| i.last_position),
            })
        })
    }
}

/// A backend write transaction that records every graph change it passes on.
pub struct Recorder<'s> {
    inner: BackendTxn<'s>,
    recorded: Recorded,
}

impl ReadTxn for Recorder<'_> {
    fn get_node(&self, name: &str) -> Result<Option<Node>> {
        self.inner.get_node(name)
    }
    fn get_edge(&self, key: &EdgeKey) -> Result<Option<Edge>> {
        self.inner.get_edge(key)
    }
    fn scan_nodes(&self, f: &NodeFilter, after: Option<&str>, limit: usize) -> Result<Vec<Node>> {
        self.inner.scan_nodes(f, after, limit)
    }
    fn scan_edges(
        &self,
        f: &EdgeFilter,
        after: Option<&EdgeKey>,
        limit: usize,
    ) -> Result<Vec<Edge>> {
        self.inner.scan_edges(f, after, limit)
    }
    fn for_each_node(&self, each: &mut dyn FnMut(&Node) -> Result<()>) -> Result<()> {
        self.inner.for_each_node(each)
    }
    fn for_each_edge(&self, each: &mut dyn FnMut(&Edge) -> Result<()>) -> Result<()> {
        self.inner.for_each_edge(each)
    }
    fn for_each_node_json(&self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.inner.for_each_node_json(each)
    }
    fn for_each_edge_json(&self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.inner.for_each_edge_json(each)
    }
    fn edges_of(&self, name: &str, d: Direction, r: &[RelationType]) -> Result<Vec<Edge>> {
        self.inner.edges_of(name, d, r)
    }
    fn dependents_of(&self, name: &str) -> Result<Vec<String>> {
        self.inner.dependents_of(name)
    }
    fn count_nodes(&self) -> Result<u64> {
        self.inner.count_nodes()
    }
    fn count_edges(&self) -> Result<u64> {
        self.inner.count_edges()
    }
    fn get_schema(&self, target: &SchemaTarget) -> Result<Option<Value>> {
        self.inner.get_schema(target)
    }
    fn list_schemas(&self) -> Result<Vec<(SchemaTarget, Value)>> {
        self.inner.list_schemas()
    }
    fn has_schemas(&self) -> Result<bool> {
        self.inner.has_schemas()
    }
    fn contains_node(&self, name: &str) -> Result<bool> {
        self.inner.contains_node(name)
    }
    fn first_existing_node(&self, names: &[&str]) -> Result<Option<usize>> {
        self.inner.first_existing_node(names)
    }
    fn contains_edge(&self, key: &EdgeKey) -> Result<bool> {
        self.inner.contains_edge(key)
    }
    fn first_existing_edge(&self, edges: &[Edge]) -> Result<Option<usize>> {
        self.inner.first_existing_edge(edges)
    }
    fn first_missing_node(&self, names: &[&str]) -> Result<Option<usize>> {
        self.inner.first_missing_node(names)
    }
    fn resolve_dependencies(&self, name: &str) -> Result<Vec<String>> {
        self.inner.resolve_dependencies(name)
    }
    fn resolve_dependents(&self, name: &str) -> Result<Vec<String>> {
        self.inner.resolve_dependents(name)
    }
    fn traverse(&self, start: &str, options: &TraverseOptions) -> Result<Vec<Visit>> {
        self.inner.traverse(start, options)
    }
    fn traverse_node(&self, start: &str, options: &TraverseOptions) -> Result<Option<Vec<Visit>>> {
        self.inner.traverse_node(start, options)
    }
    fn edges_of_node(
        &self,
        name: &str,
        d: Direction,
        r: &[RelationType],
    ) -> Result<Option<Vec<Edge>>> {
        self.inner.edges_of_node(name, d, r)
    }
    fn neighbour_names(
        &self,
        name: &str,
        d: Direction,
        r: &[RelationType],
    ) -> Result<Option<Vec<String>>> {
        self.inner.neighbour_names(name, d, r)
    }
    fn reach(&self, start: &str, options: &algo::ReachOptions) -> Result<Option<Vec<String>>> {
        self.inner.reach(start, options)
    }
    fn reach_count(&self, start: &str, options: &algo::ReachOptions) -> Result<Option<u64>> {
        self.inner.reach_count(start, options)
    }
    fn shortest_path(&self, from: &str, to: &str, o: &PathOptions) -> Result<Option<algo::Path>> {
        self.inner.shortest_path(from, to, o)
    }
    fn stats(&self) -> Result<Stats> {
        self.inner.stats()
    }
    fn events(&self) -> Option<&dyn EventLogRead> {
        self.inner.events()
    }
    fn documents(&self) -> Option<&dyn DocRead> {
        self.inner.documents()
    }
    fn search_terms(
        &self,
        terms: &crate::search::TermQuery,
    ) -> Result<crate::search::TermMatches<'_>> {
        self.inner.search_terms(terms)
    }
    fn search_names(&self, rows: &[i64]) -> Result<Vec<String>> {
        self.inner.search_names(rows)
    }
    fn search_infix(&self, fragment: &str) -> Result<Vec<String>> {
        self.inner.search_infix(fragment)
    }
}

impl Recorder<'_> {
    /// The documents as the transaction has them.
    fn docs(&self) -> Result<&dyn DocRead> {
        self.inner
            .documents()
            .ok_or_else(|| Error::unsupported("documents", "change feed"))
    }

    fn docs_mut(&mut self) -> Result<&mut dyn DocWrite> {
        self.inner
            .documents_mut()
            .ok_or_else(|| Error::unsupported("documents", "change feed"))
    }
}

/// Document reads go straight to the backend (the recorder only watches writes).
impl DocRead for Recorder<'_> {
    fn doc_meta(&self, key: &str) -> Result<Option<DocumentMeta>> {
        self.docs()?.doc_meta(key)
    }
    fn scan_docs(
        &self,
        prefix: &str,
        from: std::ops::Bound<&str>,
        limit: usize,
    ) -> Result<Vec<DocumentMeta>> {
        self.docs()?.scan_docs(prefix, from, limit)
    }
    fn open_doc(&self, meta: &DocumentMeta) -> Result<Box<dyn std::io::Read + '_>> {
        self.docs()?.open_doc(meta)
    }
    fn read_doc(&self, meta: &DocumentMeta) -> Result<Vec<u8>> {
        self.docs()?.read_doc(meta)
    }
    fn get_doc(&self, key: &str) -> Result<Option<Document>> {
        self.docs()?.get_doc(key)
    }
    fn doc_bytes(&self, key: &str) -> Result<Option<(u64, Vec<u8>)>> {
        self.docs()?.doc_bytes(key)
    }
    fn docs_meta(&self, keys: &[&str]) -> Result<Vec<Option<DocumentMeta>>> {
        self.docs()?.docs_meta(keys)
    }
    fn first_tree_conflict(&self, keys: &[&str]) -> Result<Option<(String, String)>> {
        self.docs()?.first_tree_conflict(keys)
    }
    fn contains_doc(&self, key: &str) -> Result<bool> {
        self.docs()?.contains_doc(key)
    }
    fn count_docs(&self) -> Result<u64> {
        self.docs()?.count_docs()
    }
    fn tree_conflict(&self, key: &str) -> Result<Option<String>> {
        self.docs()?.tree_conflict(key)
    }
}

/// Document writes are recorded with the metadata before and after (never the bytes).
impl DocWrite for Recorder<'_> {
    fn put_doc(&mut self, input: &mut DocInput<'_>) -> Result<()> {
        let key = input.key().to_owned();
        let old = self.docs()?.doc_meta(&key)?;
        self.docs_mut()?.put_doc(input)?;
        let new = input.finish()?.clone();
        self.recorded.push(Change::Document(key, old, Some(new)));
        Ok(())
    }

    fn put_docs(&mut self, inputs: &mut [DocInput<'_>]) -> Result<()> {
        let olds = {
            let keys: Vec<&str> = inputs.iter().map(DocInput::key).collect();
            self.docs()?.docs_meta(&keys)?
        };
        self.docs_mut()?.put_docs(inputs)?;
        for (old, input) in olds.into_iter().zip(inputs.iter_mut()) {
            let new = input.finish()?.clone();
            self.recorded
                .push(Change::Document(new.key.clone(), old, Some(new)));
        }
        Ok(())
    }

    fn delete_doc(&mut self, key: &str) -> Result<bool> {
        let old = self.docs()?.doc_meta(key)?;
        let existed = self.docs_mut()?.delete_doc(key)?;
        if existed {
            self.recorded
                .push(Change::Document(key.to_owned(), old, None));
        }
        Ok(existed)
    }
}

impl WriteTxn for Recorder<'_> {
    fn bulk_load_begin(&mut self) -> Result<()> {
        self.inner.bulk_load_begin()
    }

    fn bulk_load_end(&mut self) -> Result<()> {
        self.inner.bulk_load_end()
    }

    fn put_node(&mut self, node: &Node) -> Result<()> {
        let old = self.inner.get_node(&node.name)?;
        self.inner.put_node(node)?;
        self.recorded.push(Change::Node(old, Some(node.clone())));
        Ok(())
    }

    fn put_nodes(&mut self, nodes: &[Node]) -> Result<()> {
        let olds = nodes
            .iter()
            .map(|n| self.inner.get_node(&n.name))
            .collect::<Result<Vec<_>>>()?;
        self.inner.put_nodes(nodes)?;
        for (old, node) in olds.into_iter().zip(nodes) {
            self.recorded.push(Change::Node(old, Some(node.clone())));
        }
        Ok(())
    }

    fn delete_node(&mut self, name: &str) -> Result<bool> {
        let old = self.inner.get_node(name)?;
        let existed = self.inner.delete_node(name)?;
        if existed {
            self.recorded.push(Change::Node(old, None));
        }
        Ok(existed)
    }

    fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        let old = self.inner.get_edge(&edge.key())?;
        self.inner.put_edge(edge)?;
        self.recorded.push(Change::Edge(old, Some(edge.clone())));
        Ok(())
    }

    fn put_edges(&mut self, edges: &[Edge]) -> Result<()> {
        let olds = edges
            .iter()
            .map(|e| self.inner.get_edge(&e.key()))
            .collect::<Result<Vec<_>>>()?;
        self.inner.put_edges(edges)?;
        for (old, edge) in olds.into_iter().zip(edges) {
            self.recorded.push(Change::Edge(old, Some(edge.clone())));
        }
        Ok(())
    }

    fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        let old = self.inner.get_edge(key)?;
        let existed = self.inner.delete_edge(key)?;
        if existed {
            self.recorded.push(Change::Edge(old, None));
        }
        Ok(existed)
    }

    fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        let old = self.inner.get_schema(target)?;
        self.inner.put_schema(target, schema)?;
        self.recorded
            .push(Change::Schema(target.clone(), old, Some(schema.clone())));
        Ok(())
    }

    fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        let old = self.inner.get_schema(target)?;
        let existed = self.inner.delete_schema(target)?;
        if existed {
            self.recorded
                .push(Change::Schema(target.clone(), old, None));
        }
        Ok(existed)
    }

    fn events_mut(&mut self) -> Option<&mut dyn EventLogWrite> {
        self.inner.events_mut()
    }

    fn documents_mut(&mut self) -> Option<&mut dyn DocWrite> {
        self.inner.documents_mut()?;
        Some(self)
    }

    fn set_message(&mut self, message: &str) -> Result<()> {
        self.inner.set_message(message)
    }

    /// Never called: the transaction it records is lent by
    /// [`Backend::write_with`](crate::Backend::write_with), which commits it (and
    /// the recorded changes with it). Refused rather than committing nothing.
    fn commit(self: Box<Self>) -> Result<()> {
        Err(Error::backend(
            "change feed",
            "the recorder commits nothing itself: Backend::write_with commits the transaction it records",
        ))
    }
}
