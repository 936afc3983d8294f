//! The backend contract: a small, object-safe pair of transaction traits.
//!
//! Backends store and fetch; the [`Store`](crate::Store) above them owns
//! validation, timestamps, versions, integrity and cycle checks, so every
//! backend behaves the same. Composite reads (traversal, dependency
//! resolution, paths, statistics) have default implementations in terms of
//! the plain reads; a backend may override one with a faster native form, and
//! the shared test suite proves the two agree.

use std::path::Path as FsPath;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::algo::{self, PathOptions, ReachOptions, Stats, TraverseOptions, Visit};
use crate::documents::{DocRead, DocWrite};
use crate::durability::Durability;
use crate::error::{Error, Result};
use crate::events::{EventLogRead, EventLogWrite};
use crate::filter::{Direction, EdgeFilter, NodeFilter};
use crate::history::{LogQuery, Revision};
use crate::model::{Edge, EdgeKey, Node, RelationType};
use crate::observe::BackendFigure;
use crate::schema::SchemaTarget;
use crate::search::{self, TermMatches, TermQuery};

/// A storage engine for the graph.
///
/// Implementations must be safe to share between threads. Read transactions
/// see a consistent snapshot; at most one write transaction is open at a time
/// (`begin_write` waits for, or refuses with [`Error::Locked`], a second one).
pub trait Backend: Send + Sync {
    /// A short name for messages: `memory`, `sqlite`, `jsonfs`, ….
    fn name(&self) -> &str;

    /// Starts a read transaction on a consistent snapshot.
    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>>;

    /// Starts a read transaction for one store-level call (`store.get_node`, …), which
    /// reads at once: its snapshot may be taken at its first read rather than now,
    /// since nothing the call could miss happens in between. By default
    /// [`Backend::begin_read`]; override when taking the snapshot early costs work.
    fn begin_call(&self) -> Result<Box<dyn ReadTxn + '_>> {
        self.begin_read()
    }

    /// Starts a read transaction for a store-level call that makes exactly one
    /// [`ReadTxn`] method call (`store.get_node`, `store.edges_of`: one
    /// [`ReadTxn::edges_of_node`], `store.neighbour_names`, `store.read_document`:
    /// one [`DocRead::doc_bytes`], …). That one call must still see one consistent
    /// snapshot, but none is shared with another call, so a backend may answer it
    /// without a transaction of its own when it reads with one statement (one
    /// statement sees one snapshot), and must begin one inside a method that needs
    /// several statements. By default [`Backend::begin_call`].
    fn begin_one(&self) -> Result<Box<dyn ReadTxn + '_>> {
        self.begin_call()
    }

    /// Runs `read` on a read transaction for a store-level call that makes exactly
    /// one [`ReadTxn`] method call, as [`Backend::begin_one`] starts it. A failure
    /// to begin is returned without running `read`; otherwise `read` runs exactly
    /// once (what it reads, and its errors, it keeps). Every one-read call of the
    /// store (`store.get_node`, `store.edges_of`, …) goes through here. By default
    /// [`Backend::begin_one`] and then `read`; a backend may override it to keep the
    /// transaction where it runs instead of behind a pointer (the memory backend
    /// does: a `get_node` then allocates and frees no transaction), as
    /// [`Backend::write_with`] does for writes.
    fn read_one(&self, read: &mut dyn FnMut(&dyn ReadTxn)) -> Result<()> {
        let txn = self.begin_one()?;
        read(&*txn);
        Ok(())
    }

    /// Starts a read transaction on a consistent snapshot together with, when the
    /// backend can open one, a second read transaction on exactly the same
    /// snapshot that may be moved to another thread: for whole scans that run side
    /// by side (a backup lists nodes and edges at once). `None` (the default, and
    /// whenever the second cannot be had without waiting) leaves every read to the
    /// first, as [`Backend::begin_read`] gives it.
    #[allow(clippy::type_complexity)]
    fn begin_read_pair(
        &self,
    ) -> Result<(Box<dyn ReadTxn + '_>, Option<Box<dyn ReadTxn + Send + '_>>)> {
        Ok((self.begin_read()?, None))
    }

    /// Starts the write transaction. Dropping it without [`WriteTxn::commit`] rolls it back.
    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>>;

    /// Runs `work` on a new write transaction and commits it if `work` returns
    /// `Ok`; if `work` fails (or panics) the transaction is rolled back and the
    /// error passed on. A failure to begin is returned without running `work`;
    /// otherwise `work` runs exactly once. Every [`Store::write`](crate::Store::write)
    /// goes through here, and this is its only commit: the store commits nothing
    /// itself (its deferred checks and the change feed's events run inside
    /// `work`, so a failure of theirs rolls back). By default [`Backend::begin_write`] and then
    /// [`WriteTxn::commit`]; a backend may override it to keep the transaction
    /// where it runs instead of behind a pointer (the memory backend does: a
    /// one-node write then allocates and frees no transaction).
    fn write_with(&self, work: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>) -> Result<()> {
        let mut txn = self.begin_write()?;
        work(&mut *txn)?;
        txn.commit()
    }

    /// Checks the backend's own storage (files, pages, indexes) and lists what is
    /// wrong, and, as [notes](Problem::note), what is left over but harmless.
    fn check(&self) -> Result<Vec<Problem>> {
        Err(Error::unsupported("check", self.name()))
    }

    /// Reorganises storage for speed and size (statistics, compaction).
    fn optimize(&self) -> Result<()> {
        Err(Error::unsupported("optimize", self.name()))
    }

    /// Copies the store with the backend's own mechanism to `dest` (a file or folder that
    /// must not exist yet).
    fn backup_native(&self, dest: &FsPath) -> Result<()> {
        let _ = dest;
        Err(Error::unsupported("native backup", self.name()))
    }

    /// Starts a read transaction on the store as it was at `revision` (a backend that
    /// keeps history: a commit id, a branch, `main~3`, …). Backends without history
    /// refuse with [`Error::Unsupported`].
    fn read_at(&self, revision: &str) -> Result<Box<dyn ReadTxn + '_>> {
        let _ = revision;
        Err(Error::unsupported("reading at a revision", self.name()))
    }

    /// The revisions of the store, newest first, as `query` narrows them. Backends
    /// without history refuse with [`Error::Unsupported`].
    fn log(&self, query: &LogQuery) -> Result<Vec<Revision>> {
        let _ = query;
        Err(Error::unsupported("history (log)", self.name()))
    }

    /// How hard commits work to survive a power cut, for logs (`None`: not persistent,
    /// or not said).
    fn durability(&self) -> Option<Durability> {
        None
    }

    /// The backend's own performance figures (SQLite's page-cache hits and the size of
    /// its write-ahead log, say), for [`Store::metrics`](crate::Store::metrics).
    /// Counters count since the backend was opened; the store subtracts their values
    /// at its last reset. None by default.
    fn figures(&self) -> Result<Vec<BackendFigure>> {
        Ok(Vec::new())
    }
}

/// One finding of a check: where, what, and whether it is damage or only a note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Where: `node 'a'`, a file path, a table.
    pub location: String,
    /// What is wrong, or (for a note) what was found and what will happen to it.
    pub detail: String,
    /// Damage ([`Severity::Error`]) or a [`Severity::Note`].
    #[serde(default)]
    pub severity: Severity,
}

/// How serious a finding of a check is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Damage: data that is wrong, missing, unreadable or inconsistent. A store
    /// with such a finding is not healthy.
    #[default]
    Error,
    /// Not damage: something the store takes care of by itself (the leftovers of an
    /// interrupted write that the next writer or writable open recovers), reported
    /// so that the user knows what is there and what will happen to it.
    Note,
}

impl Problem {
    /// Damage at `location`.
    pub fn new(location: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            detail: detail.into(),
            severity: Severity::Error,
        }
    }

    /// A note at `location`: no damage, `detail` says what was found and what the
    /// store will do with it.
    pub fn note(location: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            severity: Severity::Note,
            ..Self::new(location, detail)
        }
    }

    /// Whether this is only a note.
    pub fn is_note(&self) -> bool {
        self.severity == Severity::Note
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.detail)
    }
}

/// Items per page of the default [`ReadTxn::for_each_node`] and
/// [`ReadTxn::for_each_edge`].
const WHOLE_SCAN_PAGE: usize = 1000;

/// Hands every item of a keyset-paged listing to `each`: `page(after)` gives up to
/// [`WHOLE_SCAN_PAGE`] items whose keys sort after `after`, and `key` is an item's
/// key (the defaults of [`ReadTxn::for_each_node`] and [`ReadTxn::for_each_edge`]).
fn each_of_pages<T, K>(
    mut page: impl FnMut(Option<&K>) -> Result<Vec<T>>,
    key: impl Fn(&T) -> K,
    each: &mut dyn FnMut(&T) -> Result<()>,
) -> Result<()> {
    let mut after: Option<K> = None;
    loop {
        let items = page(after.as_ref())?;
        for item in &items {
            each(item)?;
        }
        match items.last() {
            Some(last) if items.len() == WHOLE_SCAN_PAGE => after = Some(key(last)),
            _ => return Ok(()),
        }
    }
}

/// Reads on one consistent snapshot.
///
/// Orders are part of the contract: nodes by name, edges by [`EdgeKey`] (byte
/// order of `from`, then relation name, then `to`), names by byte order.
pub trait ReadTxn {
    /// The node with this name.
    fn get_node(&self, name: &str) -> Result<Option<Node>>;

    /// The edge with this key.
    fn get_edge(&self, key: &EdgeKey) -> Result<Option<Edge>>;

    /// Up to `limit` nodes matching `filter` whose names sort after `after`, by name.
    fn scan_nodes(
        &self,
        filter: &NodeFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Node>>;

    /// Up to `limit` edges matching `filter` whose keys sort after `after`, by key.
    fn scan_edges(
        &self,
        filter: &EdgeFilter,
        after: Option<&EdgeKey>,
        limit: usize,
    ) -> Result<Vec<Edge>>;

    /// Calls `each` with every node, by name: a whole listing, as the pages of
    /// [`ReadTxn::scan_nodes`] give it (the default reads such pages). A backend
    /// may override it with one ordered scan, building one node at a time. An
    /// error of `each` ends the scan and is returned.
    fn for_each_node(&self, each: &mut dyn FnMut(&Node) -> Result<()>) -> Result<()> {
        let all = NodeFilter::default();
        each_of_pages(
            |after: Option<&String>| {
                self.scan_nodes(&all, after.map(String::as_str), WHOLE_SCAN_PAGE)
            },
            |node| node.name.clone(),
            each,
        )
    }

    /// Calls `each` with every edge, by key: a whole listing, as the pages of
    /// [`ReadTxn::scan_edges`] give it (the default reads such pages). A backend
    /// may override it with one ordered scan, building one edge at a time. An
    /// error of `each` ends the scan and is returned.
    fn for_each_edge(&self, each: &mut dyn FnMut(&Edge) -> Result<()>) -> Result<()> {
        let all = EdgeFilter::default();
        each_of_pages(
            |after| self.scan_edges(&all, after, WHOLE_SCAN_PAGE),
            Edge::key,
            each,
        )
    }

    /// Calls `each` with the compact JSON form of every node, by name: exactly the
    /// bytes `serde_json::to_writer` gives for each node [`ReadTxn::for_each_node`]
    /// hands over (the default builds each node and encodes it; a backup writes them
    /// as its lines). A backend may override it to write the text straight from its
    /// rows; the shared suite compares the bytes with the default's.
    fn for_each_node_json(&self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut text = Vec::new();
        self.for_each_node(&mut |node| {
            text.clear();
            serde_json::to_writer(&mut text, node).map_err(|e| {
                Error::backend("json", format!("cannot encode node {}: {e}", node.name))
            })?;
            each(&text)
        })
    }

    /// Calls `each` with the compact JSON form of every edge, by key (see
    /// [`ReadTxn::for_each_node_json`]).
    fn for_each_edge_json(&self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut text = Vec::new();
        self.for_each_edge(&mut |edge| {
            text.clear();
            serde_json::to_writer(&mut text, edge).map_err(|e| {
                Error::backend("json", format!("cannot encode edge {}: {e}", edge.key()))
            })?;
            each(&text)
        })
    }

    /// The edges stored leaving (`Out`), arriving at (`In`) or touching (`Both`, a
    /// self-loop once) the node, with one of `relations` (any if empty), by key.
    /// An unknown node has no edges.
    fn edges_of(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Result<Vec<Edge>>;

    /// The names of the nodes whose `dependencies` list this node, by name.
    fn dependents_of(&self, name: &str) -> Result<Vec<String>>;

    /// How many nodes there are.
    fn count_nodes(&self) -> Result<u64>;

    /// How many edges there are.
    fn count_edges(&self) -> Result<u64>;

    /// The schema registered for a target.
    fn get_schema(&self, target: &SchemaTarget) -> Result<Option<Value>>;

    /// Every registered schema, by target.
    fn list_schemas(&self) -> Result<Vec<(SchemaTarget, Value)>>;

    /// Whether any schema may be registered: `false` lets a write transaction skip
    /// looking up each item's type for a schema. The default answers `true` (look
    /// them up); override where knowing is cheap.
    fn has_schemas(&self) -> Result<bool> {
        Ok(true)
    }

    /// Whether a node exists (override when cheaper than fetching it).
    fn contains_node(&self, name: &str) -> Result<bool> {
        Ok(self.get_node(name)?.is_some())
    }

    /// The index of the first of `names`, in the order given, that is a stored node;
    /// `None` if none is. Override when one query can answer for many names (bulk
    /// creates ask it for every batch).
    fn first_existing_node(&self, names: &[&str]) -> Result<Option<usize>> {
        for (i, name) in names.iter().enumerate() {
            if self.contains_node(name)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// Whether an edge exists (override when cheaper than fetching it).
    fn contains_edge(&self, key: &EdgeKey) -> Result<bool> {
        Ok(self.get_edge(key)?.is_some())
    }

    /// The index of the first of `edges`, in the order given, whose key is a stored
    /// edge; `None` if none is. Override when one query can answer for many keys
    /// (bulk edge creates ask it for every batch).
    fn first_existing_edge(&self, edges: &[Edge]) -> Result<Option<usize>> {
        for (i, edge) in edges.iter().enumerate() {
            if self.contains_edge(&edge.key())? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// The index of the first of `names`, in the order given, that is not a stored
    /// node; `None` if all are. Override when one query can answer for many names
    /// (bulk edge creates ask it for their endpoints).
    fn first_missing_node(&self, names: &[&str]) -> Result<Option<usize>> {
        for (i, name) in names.iter().enumerate() {
            if !self.contains_node(name)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// [`ReadTxn::edges_of`] of a node that exists, `None` when it does not: what the
    /// store's `edges_of` answers with (a missing node is an error there, an empty
    /// list is not). Override when one query tells "no such node" from "no edges".
    fn edges_of_node(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Result<Option<Vec<Edge>>> {
        algo::edges_of_node(self, name, direction, relations)
    }

    /// The name at the other end of each edge [`ReadTxn::edges_of`] lists (one per
    /// edge, in its order; a self-loop gives the node's own name), without reading
    /// the edges' other fields; `None` when the node does not exist. See
    /// [`algo::neighbour_names`], which overrides must equal.
    fn neighbour_names(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Result<Option<Vec<String>>> {
        algo::neighbour_names(self, name, direction, relations)
    }

    /// The nodes `options.hops` hops lead to from `start`, by name; `None` when
    /// `start` does not exist. See [`algo::reach`], which overrides must equal.
    fn reach(&self, start: &str, options: &ReachOptions) -> Result<Option<Vec<String>>> {
        algo::reach(self, start, options)
    }

    /// How many nodes [`ReadTxn::reach`] answers with, without naming them (override
    /// when counting is cheaper than listing); `None` when `start` does not exist.
    fn reach_count(&self, start: &str, options: &ReachOptions) -> Result<Option<u64>> {
        Ok(self
            .reach(start, options)?
            .map(|names| u64::try_from(names.len()).unwrap_or(u64::MAX)))
    }

    /// The transitive dependencies of a node, dependencies first; see
    /// [`algo::resolve_dependencies`] for the exact order. [`Error::NodeNotFound`]
    /// when the node does not exist (the store does not check it first).
    fn resolve_dependencies(&self, name: &str) -> Result<Vec<String>> {
        algo::resolve_dependencies(self, name)
    }

    /// The transitive dependents of a node, each after its own dependencies; see
    /// [`algo::resolve_dependents`]. [`Error::NodeNotFound`] when the node does not
    /// exist, as there.
    fn resolve_dependents(&self, name: &str) -> Result<Vec<String>> {
        algo::resolve_dependents(self, name)
    }

    /// The nodes reachable from `start` within `options.max_depth` hops; see [`algo::traverse`].
    fn traverse(&self, start: &str, options: &TraverseOptions) -> Result<Vec<Visit>> {
        algo::traverse(self, start, options)
    }

    /// [`ReadTxn::traverse`] from a node that exists, `None` when it does not: what
    /// the store's `traverse` answers with (a missing start is an error there).
    /// Override when one query tells "no such node" from "nothing reached"; see
    /// [`algo::traverse_node`], which overrides must equal.
    fn traverse_node(&self, start: &str, options: &TraverseOptions) -> Result<Option<Vec<Visit>>> {
        algo::traverse_node(self, start, options)
    }

    /// A shortest path between two nodes; see [`algo::shortest_path`].
    fn shortest_path(
        &self,
        from: &str,
        to: &str,
        options: &PathOptions,
    ) -> Result<Option<algo::Path>> {
        algo::shortest_path(self, from, to, options)
    }

    /// Counts by node type and relation type; see [`algo::stats`].
    fn stats(&self) -> Result<Stats> {
        algo::stats(self)
    }

    /// The event log and its keyed state on this snapshot, if the backend keeps
    /// events (see [`crate::events::backend`]); `None` by default, which the store
    /// reports as [`Error::Unsupported`] naming the backend.
    fn events(&self) -> Option<&dyn EventLogRead> {
        None
    }

    /// Full-text search's index: the corpus figures and every node holding one of
    /// `terms` (see [`crate::search`]). The default reads and analyses every node;
    /// a backend with an index answers from it.
    fn search_terms(&self, terms: &TermQuery) -> Result<TermMatches<'_>> {
        search::scan_terms(self, terms)
    }

    /// The names of the nodes that [`ReadTxn::search_terms`] reported by
    /// [row](crate::search::DocKey::Row), in the order asked. Only backends that
    /// report rows need it.
    fn search_names(&self, rows: &[i64]) -> Result<Vec<String>> {
        Err(Error::unsupported(
            format!("naming {} search rows", rows.len()),
            "a backend whose search reports nodes by name",
        ))
    }

    /// The names of the nodes holding a token that contains `fragment` after its
    /// first character, or a token cut at the length limit: where a node can hold
    /// a one-word query as a substring without holding it as a token prefix. The
    /// store checks each; more names cost time, never correctness.
    fn search_infix(&self, fragment: &str) -> Result<Vec<String>> {
        search::scan_infix(self, fragment)
    }

    /// The documents on this snapshot; `None` (the default) for a backend that holds
    /// none, for which the store answers document operations with
    /// [`Error::Unsupported`] naming documents and the backend.
    fn documents(&self) -> Option<&dyn DocRead> {
        None
    }
}

/// The write transaction: reads see its own writes; nothing is visible to
/// others, or durable, before [`WriteTxn::commit`] returns `Ok`.
///
/// These are raw writes: the [`Store`](crate::Store) has already validated
/// them and checked integrity.
pub trait WriteTxn: ReadTxn {
    /// Inserts or replaces a node.
    fn put_node(&mut self, node: &Node) -> Result<()>;

    /// Inserts or replaces many nodes (override to batch).
    fn put_nodes(&mut self, nodes: &[Node]) -> Result<()> {
        nodes.iter().try_for_each(|node| self.put_node(node))
    }

    /// Removes a node (not its edges: the store removes those first); whether it existed.
    fn delete_node(&mut self, name: &str) -> Result<bool>;

    /// Inserts or replaces an edge.
    fn put_edge(&mut self, edge: &Edge) -> Result<()>;

    /// Inserts or replaces many edges (override to batch).
    fn put_edges(&mut self, edges: &[Edge]) -> Result<()> {
        edges.iter().try_for_each(|edge| self.put_edge(edge))
    }

    /// Removes an edge; whether it existed.
    fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool>;

    /// [`put_nodes`](Self::put_nodes) with nodes the caller gives up: a backend
    /// that keeps them whole (in memory) may take them without a copy. The
    /// default puts them by reference.
    fn put_owned_nodes(&mut self, nodes: Vec<Node>) -> Result<()> {
        self.put_nodes(&nodes)
    }

    /// [`put_edges`](Self::put_edges) with edges the caller gives up (see
    /// [`put_owned_nodes`](Self::put_owned_nodes)). The default puts them by
    /// reference.
    fn put_owned_edges(&mut self, edges: Vec<Edge>) -> Result<()> {
        self.put_edges(&edges)
    }

    /// A bulk import begins ([`BulkImport`](crate::BulkImport)): the transaction holds
    /// no node and no edge, and until [`bulk_load_end`](Self::bulk_load_end) it is
    /// given only new nodes (`put_nodes`, each name once) and then new edges
    /// (`put_edges`, keys strictly increasing across calls, endpoints among those
    /// nodes). A backend may prepare for that, for example by dropping secondary
    /// indexes to build them again at the end, as long as reads in the transaction
    /// still answer correctly. The default does nothing.
    fn bulk_load_begin(&mut self) -> Result<()> {
        Ok(())
    }

    /// The bulk import begun by [`bulk_load_begin`](Self::bulk_load_begin) ended
    /// (its references were checked); the transaction may go on with any write. A
    /// transaction whose import did not end is never committed. The default does
    /// nothing.
    fn bulk_load_end(&mut self) -> Result<()> {
        Ok(())
    }

    /// Registers or replaces a schema.
    fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()>;

    /// Removes a schema; whether it existed.
    fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool>;

    /// The event log for writing inside this transaction, if the backend keeps events.
    fn events_mut(&mut self) -> Option<&mut dyn EventLogWrite> {
        None
    }

    /// The transaction's document writes; `None` (the default) for a backend that
    /// holds no documents. Must be `Some` exactly when [`ReadTxn::documents`] is.
    fn documents_mut(&mut self) -> Option<&mut dyn DocWrite> {
        None
    }

    /// Describes the transaction for the store's history (a commit message on the git
    /// backend). Backends that keep no history ignore it.
    fn set_message(&mut self, message: &str) -> Result<()> {
        let _ = message;
        Ok(())
    }

    /// Makes every write of the transaction visible and durable, all or nothing.
    fn commit(self: Box<Self>) -> Result<()>;
}
