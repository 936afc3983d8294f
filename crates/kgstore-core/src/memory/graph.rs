//! [`GraphState`]: the whole graph in persistent maps keyed by interned integer ids.
//!
//! Every name a node or an edge end carries is interned once into a number (its
//! *id*), and every relation type too. A persistent vector indexed by id holds
//! each id's name and its edges both ways: out as `(relation, to) → (to's name,
//! content)`, in as `(relation, from) → from's name` (see [`Adjacency`]; the
//! other end's name is kept in the list, inline when short, see [`Name`]). So
//! reading a node's edges is one hash lookup of its name, one descent of the
//! vector and a walk of a short list, with no string compared and no other
//! node's entry visited on the way. Ids are numbers only: the orders of
//! the contract (by name) come from an ordered set of the names, and a node's
//! edges are sorted by name after they are read.
//!
//! Every map is persistent (`imbl`): cloning the state shares all of it, which is
//! what makes read snapshots and copy-on-write transactions cheap. The id tables
//! are part of the state too, so a rolled-back transaction leaves no name behind,
//! and a name is given up (its id reused) once no node and no edge carries it.

use std::borrow::Cow;
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use imbl::shared_ptr::DefaultSharedPtr;
use imbl::{GenericHashMap, OrdMap, OrdSet, Vector};
use serde_json::{Map, Value};

use crate::algo::{Reach, ReachOptions, TraverseOptions, Visit};
use crate::backend::{Problem, ReadTxn};
use crate::error::Result;
use crate::events::EventState;
use crate::filter::{Direction, EdgeFilter, NodeFilter};
use crate::model::{Edge, EdgeKey, EdgeMetadata, Node, NodeMetadata, RelationType};
use crate::schema::SchemaTarget;
use crate::search::{SearchIndex, TermMatches, TermQuery};
use crate::timestamp::Timestamp;

use super::adjacency::{Adjacency, End};
use super::name::Name;

/// An interned node name's number.
pub(super) type Id = usize;
/// An interned relation type's number.
pub(super) type Rel = usize;
/// An edge as numbers: `(from, relation, to)`.
type Key = (Id, Rel, Id);
/// A persistent hash map with a fast hasher (seeded per process, so names chosen
/// to collide cannot be prepared in advance).
type HashMap<K, V> = GenericHashMap<K, V, foldhash::fast::RandomState, DefaultSharedPtr>;
/// How many edges [`Graph::put_edges`] groups at a time (its gathered keys and
/// incoming entries take 80 bytes an edge: 80 MiB at most; a few in tests, so
/// that batches are put slice by slice).
const PUT_SLICE: usize = if cfg!(test) { 7 } else { 1 << 20 };

/// Up to how many outgoing edges [`Graph::collect_edges`] puts in order by keys
/// on the stack (a node with more takes the general path).
const KEYED: usize = 16;

/// A set of ids while a traversal runs.
type IdSet = foldhash::HashSet<Id>;
/// An edge as borrowed parts: from, relation, to, content.
type EdgeParts<'a> = (&'a str, &'a RelationType, &'a str, &'a EdgeData);

/// What an id stands for: a name in use, with the edges leaving and arriving
/// at it, or nothing (a free id).
#[derive(Clone, Default)]
struct IdEntry {
    name: Option<Arc<str>>,
    /// Edges leaving, by `(relation, to)`, with `to`'s name and their content.
    out: Adjacency<OutEdge>,
    /// Edges arriving, by `(relation, from)`, with `from`'s name (their content
    /// is in `from`'s `out`).
    inc: Adjacency<Name>,
}

/// An edge in its source's list: the target's name (see [`Name`]) and the
/// edge's content.
#[derive(Clone)]
struct OutEdge {
    to: Name,
    data: EdgeData,
}

/// What a name's entry holds: its id, and the node of that name if there is one
/// (a name can be an edge's end without a node, in a state that a backend fills
/// from damaged files, say; the store itself never writes such an edge).
#[derive(Clone)]
struct Slot {
    id: Id,
    node: Option<Arc<NodeData>>,
}

/// A node's content without its name (the name is its slot's key): the type
/// shared with every node of that type, the attributes as a sorted list (a
/// two-entry map costs a 632-byte tree node; the list, its two entries), and the
/// rarely set parts behind one pointer only when set.
#[derive(Clone)]
struct NodeData {
    node_type: Arc<str>,
    attributes: Box<[(String, Value)]>,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: u64,
    extra: Option<Box<NodeExtra>>,
}

/// The parts of a node that many nodes leave empty.
#[derive(Clone)]
struct NodeExtra {
    observations: Vec<String>,
    dependencies: Vec<String>,
    author: Option<String>,
    source: Option<String>,
    tags: Vec<String>,
    status: Option<String>,
}

impl NodeData {
    /// The node's content (moved when the node is owned, copied when borrowed);
    /// `node_type` is the shared copy of its type.
    fn of(node: Cow<'_, Node>, node_type: Arc<str>) -> Self {
        let meta = &node.metadata;
        let (created_at, updated_at, version) = (meta.created_at, meta.updated_at, meta.version);
        let plain = node.observations.is_empty()
            && node.dependencies.is_empty()
            && meta.author.is_none()
            && meta.source.is_none()
            && meta.tags.is_empty()
            && meta.status.is_none();
        let (attributes, extra) = match node {
            // A single put copies the attributes into a list allocated once at
            // their size (collecting a map's iterator allocates room for four,
            // then shrinks). An owned node (a bulk build) keeps the collect: sized
            // lists there left two-hop reads after the load 8-15 % slower on the
            // wall clock (the allocations' layout; `docs/benchmarks.md`, session 11).
            Cow::Borrowed(node) => (
                exact(
                    node.attributes.len(),
                    node.attributes
                        .iter()
                        .map(|(key, value)| (key.clone(), value.clone())),
                ),
                (!plain).then(|| {
                    let meta = &node.metadata;
                    Box::new(NodeExtra {
                        observations: node.observations.clone(),
                        dependencies: node.dependencies.clone(),
                        author: meta.author.clone(),
                        source: meta.source.clone(),
                        tags: meta.tags.clone(),
                        status: meta.status.clone(),
                    })
                }),
            ),
            Cow::Owned(node) => {
                let Node {
                    attributes,
                    observations,
                    dependencies,
                    metadata: meta,
                    ..
                } = node;
                (
                    attributes.into_iter().collect(),
                    (!plain).then(|| {
                        Box::new(NodeExtra {
                            observations,
                            dependencies,
                            author: meta.author,
                            source: meta.source,
                            tags: meta.tags,
                            status: meta.status,
                        })
                    }),
                )
            }
        };
        Self {
            node_type,
            attributes,
            created_at,
            updated_at,
            version,
            extra,
        }
    }

    /// The whole node, named `name` (inlined: the node is then built where the
    /// caller keeps it, not built and copied, ~240 bytes).
    #[inline(always)]
    fn node(&self, name: &str) -> Node {
        let mut attributes = Map::new();
        for (key, value) in &*self.attributes {
            attributes.insert(key.clone(), value.clone());
        }
        let mut node = Node {
            name: name.to_owned(),
            node_type: String::from(&*self.node_type),
            observations: Vec::new(),
            attributes,
            dependencies: Vec::new(),
            metadata: NodeMetadata {
                created_at: self.created_at,
                updated_at: self.updated_at,
                version: self.version,
                ..NodeMetadata::default()
            },
        };
        if let Some(x) = &self.extra {
            node.observations.clone_from(&x.observations);
            node.dependencies.clone_from(&x.dependencies);
            let meta = &mut node.metadata;
            meta.author.clone_from(&x.author);
            meta.source.clone_from(&x.source);
            meta.tags.clone_from(&x.tags);
            meta.status.clone_from(&x.status);
        }
        node
    }

    fn dependencies(&self) -> &[String] {
        self.extra.as_ref().map_or(&[], |x| &x.dependencies)
    }
}

/// The `len` items of `items` as a boxed slice, allocated once at their size.
fn exact<T>(len: usize, items: impl IntoIterator<Item = T>) -> Box<[T]> {
    let mut list = Vec::with_capacity(len);
    list.extend(items);
    list.into_boxed_slice()
}

/// A node as a [`GraphState`] keeps it, made before it is put
/// ([`GraphState::prepare_node`]).
#[derive(Clone)]
pub(super) struct PreparedNode {
    name: Arc<str>,
    data: NodeData,
    /// Whether `data`'s type is the state's shared copy already (it was in use
    /// when the node was made ready): node types are never given up, so a later
    /// version of the state shares the same copy and the put need not look it up.
    shared_type: bool,
}

/// An edge's content without its key: what nearly every edge has inline, the
/// rest (attributes, confidence, direction, source) shared behind one pointer
/// only when set.
#[derive(Clone)]
struct EdgeData {
    created_at: Timestamp,
    updated_at: Timestamp,
    version: u64,
    weight: f64,
    extra: Option<Arc<EdgeExtra>>,
}

/// The parts of an edge's content that most edges leave at their defaults.
struct EdgeExtra {
    attributes: Map<String, Value>,
    confidence: Option<f64>,
    bidirectional: bool,
    source: Option<String>,
}

impl EdgeData {
    /// The edge's content (copied).
    fn of(edge: &Edge) -> Self {
        let meta = &edge.metadata;
        let plain = Self::plain(&edge.attributes, meta);
        Self::with(
            meta,
            (!plain).then(|| (edge.attributes.clone(), meta.source.clone())),
        )
    }

    /// The edge's content, its attributes and source moved.
    fn from_owned(edge: Edge) -> Self {
        let Edge {
            attributes,
            mut metadata,
            ..
        } = edge;
        let plain = Self::plain(&attributes, &metadata);
        let extra = (!plain).then(|| (attributes, metadata.source.take()));
        Self::with(&metadata, extra)
    }

    /// Whether an edge with these parts keeps nothing behind [`EdgeData::extra`].
    fn plain(attributes: &Map<String, Value>, meta: &EdgeMetadata) -> bool {
        attributes.is_empty()
            && meta.confidence.is_none()
            && !meta.bidirectional
            && meta.source.is_none()
    }

    /// The content of an edge with `meta`, and `extra` (attributes and source)
    /// when it is not plain.
    fn with(meta: &EdgeMetadata, extra: Option<(Map<String, Value>, Option<String>)>) -> Self {
        Self {
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            version: meta.version,
            weight: meta.weight,
            extra: extra.map(|(attributes, source)| {
                Arc::new(EdgeExtra {
                    attributes,
                    confidence: meta.confidence,
                    bidirectional: meta.bidirectional,
                    source,
                })
            }),
        }
    }

    fn bidirectional(&self) -> bool {
        self.extra.as_ref().is_some_and(|x| x.bidirectional)
    }

    /// The whole edge, with its key's parts.
    fn edge(&self, from: String, relation_type: RelationType, to: String) -> Edge {
        let (attributes, confidence, bidirectional, source) = match self.extra.as_deref() {
            Some(x) => (
                x.attributes.clone(),
                x.confidence,
                x.bidirectional,
                x.source.clone(),
            ),
            None => (Map::new(), None, false, None),
        };
        Edge {
            from,
            relation_type,
            to,
            attributes,
            metadata: EdgeMetadata {
                created_at: self.created_at,
                updated_at: self.updated_at,
                version: self.version,
                weight: self.weight,
                confidence,
                bidirectional,
                source,
            },
        }
    }
}

/// A relation type with its rank: its place among the relation types in use,
/// in name order. Comparing two relations' ranks compares their names, so the
/// edges of a node are put in the contract's order by comparing numbers first
/// (the names only for edges of one relation).
#[derive(Clone)]
struct Ranked {
    relation: RelationType,
    rank: usize,
}

/// An edge as borrowed parts while a node's edges are put in order: from, the
/// relation's rank (see [`Ranked`]), relation, to, content.
#[derive(Clone, Copy)]
struct Part<'a> {
    from: &'a str,
    rank: usize,
    relation: &'a RelationType,
    to: &'a str,
    data: &'a EdgeData,
}

/// An edge's key parts in the contract's order: from, relation name, to.
fn key_order(edge: &Edge) -> (&str, &str, &str) {
    (&edge.from, edge.relation_type.as_str(), &edge.to)
}

/// The data of a [`GraphState`], shared by its clones until one of them writes.
#[derive(Clone, Default)]
struct Graph {
    /// Every name in use (by a node or an edge end), with its id and its node:
    /// point lookups hash, and never compare more than one name.
    names: HashMap<Name, Slot>,
    /// The same names in order, for scans: built by the first scan that needs
    /// it (on the version of the state it scans) and kept current by every
    /// write from then on, so that a state nobody scans in name order (a store
    /// loaded and then read by name, written one node at a time) pays neither
    /// its memory nor an ordered insert, with its string compares, per name.
    ordered: OnceLock<OrdSet<Name>>,
    /// What each id stands for: its name and its edges both ways (no name: a
    /// free id, listed in `free`).
    by_id: Vector<IdEntry>,
    /// Ids given up, to be reused.
    free: Vector<Id>,
    /// How many names have a node.
    node_count: usize,
    /// Every node type in use so far, each stored once and shared by its nodes
    /// (never given up: there are few).
    node_types: HashMap<Arc<str>, ()>,
    /// Every relation type in use so far, with its id (never given up: there are few).
    relations: OrdMap<RelationType, Rel>,
    /// Each relation id's type and rank (see [`Ranked`]): a plain list, copied
    /// whole when a relation type is first used (rare), so that reading an
    /// edge's relation is one index, not a descent of a persistent vector.
    relation_by_id: Arc<Vec<Ranked>>,
    /// How many edges there are.
    edge_count: usize,
    /// How many edges are bidirectional (while none is, an outgoing traversal
    /// need not look at incoming edges).
    bidirectional_edges: usize,
    /// `(dependency, dependent)` for every dependency link.
    dependents: OrdSet<(String, String)>,
    schemas: OrdMap<SchemaTarget, Value>,
    /// The event log and the event store's keyed state.
    events: EventState,
    /// The full-text index of the nodes, built by the first search that needs
    /// it (on the version of the state it searches) and kept current by every
    /// write from then on: a state nobody searches pays neither its memory nor
    /// its upkeep on each put.
    search: OnceLock<SearchIndex>,
}

/// A whole graph in persistent maps, with the indexes the [`ReadTxn`] contract
/// needs. Cloning is cheap (structure is shared), which is what makes snapshots
/// and copy-on-write transactions cheap.
///
/// The memory backend is this state behind a lock. Backends that keep their
/// indexes in memory (such as the JSON-files backend) reuse it: it implements
/// [`ReadTxn`], and [`delegate_read_txn!`](crate::delegate_read_txn) forwards a
/// transaction type's reads to a field holding one.
///
/// The maps sit behind one shared pointer: a clone (a read snapshot, a write
/// transaction's starting point) costs one reference count, and the first write
/// to a shared state copies that pointer's content (the maps' roots) once.
#[derive(Clone, Default)]
pub struct GraphState {
    graph: Arc<Graph>,
}

impl GraphState {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// A state holding exactly `nodes`, `edges` and `schemas`, built at once
    /// from them rather than one insert at a time: the same state as putting the
    /// nodes, then the edges, then the schemas one by one (of two with one key,
    /// the later is kept), in a fraction of the time. Each table is filled once
    /// from sorted input: the names are sorted and numbered, every node's edges
    /// (both ways) are grouped and sorted as numbers, and each list is made in
    /// one go. For states loaded whole: a restore into an empty store, a backend
    /// reading its files or a snapshot of them.
    pub fn build(
        nodes: Vec<Node>,
        edges: Vec<Edge>,
        schemas: impl IntoIterator<Item = (SchemaTarget, Value)>,
    ) -> Self {
        Self {
            graph: Arc::new(Graph::build(nodes, edges, schemas)),
        }
    }

    /// This state with `nodes` and then `edges` put, the same as putting them one
    /// by one (of two with one name or key, the later is kept). A state that holds
    /// no name (no node, no edge; a new store, or one a bulk import starts from) is
    /// built at once as by [`GraphState::build`], keeping its schemas and events;
    /// any other takes them one at a time.
    pub fn load(self, nodes: Vec<Node>, edges: Vec<Edge>) -> Self {
        if !self.graph.names.is_empty() {
            let mut state = self;
            for node in nodes {
                state.put_node(node);
            }
            state.put_edges(&edges);
            return state;
        }
        let mut old = Arc::unwrap_or_clone(self.graph);
        let schemas = std::mem::take(&mut old.schemas);
        let mut graph = Graph::build(nodes, edges, schemas);
        graph.events = std::mem::take(&mut old.events);
        Self {
            graph: Arc::new(graph),
        }
    }

    fn graph_mut(&mut self) -> &mut Graph {
        Arc::make_mut(&mut self.graph)
    }

    /// Inserts or replaces a node, keeping the dependents and search indexes
    /// current; its attributes are moved, not copied.
    pub fn put_node(&mut self, node: Node) {
        self.graph_mut().put_node(Cow::Owned(node));
    }

    /// [`GraphState::put_node`] from a borrowed node: copies only what is kept
    /// (not the name or the type, when they are stored already).
    pub fn put_node_ref(&mut self, node: &Node) {
        self.graph_mut().put_node(Cow::Borrowed(node));
    }

    /// The nodes a traversal with `options` reaches from the node of `id`, level by
    /// level, each level sorted by name ([`ReadTxn::traverse`]).
    fn visits_from(&self, id: Id, options: &TraverseOptions) -> Vec<Visit> {
        let wanted = self.graph.wanted(&options.relations);
        let levels = self
            .graph
            .levels(id, options.direction, wanted.as_deref(), options.max_depth);
        let mut visits = Vec::new();
        for (depth, level) in (1..).zip(levels) {
            visits.extend(
                self.graph
                    .sorted_names(level)
                    .into_iter()
                    .map(|name| Visit { name, depth }),
            );
        }
        visits
    }

    /// `node` made ready to be put (its content copied as this state keeps
    /// it), so that a write can hold it back and put it later with
    /// [`GraphState::put_prepared`] without another copy.
    pub(super) fn prepare_node(&self, node: &Node) -> PreparedNode {
        self.prepare(Cow::Borrowed(node))
    }

    /// [`GraphState::prepare_node`] for an owned node: its content moved, not copied.
    pub(super) fn prepare_owned(&self, node: Node) -> PreparedNode {
        self.prepare(Cow::Owned(node))
    }

    /// The node as this state keeps it, its type shared when the state has it.
    fn prepare(&self, node: Cow<'_, Node>) -> PreparedNode {
        let shared = self
            .graph
            .node_types
            .get_key_value(node.node_type.as_str())
            .map(|(t, ())| Arc::clone(t));
        let shared_type = shared.is_some();
        let node_type = shared.unwrap_or_else(|| Arc::from(node.node_type.as_str()));
        PreparedNode {
            name: Arc::from(node.name.as_str()),
            data: NodeData::of(node, node_type),
            shared_type,
        }
    }

    /// Puts a node made ready by [`GraphState::prepare_node`] (on this state or
    /// an earlier version of it), as [`GraphState::put_node`] puts the node.
    pub(super) fn put_prepared(&mut self, node: PreparedNode) {
        self.graph_mut().put_prepared(node);
    }

    /// Removes a node (not its edges); the removed node.
    pub fn delete_node(&mut self, name: &str) -> Option<Node> {
        // Nothing to copy the state for when there is no such node.
        self.graph.node_id(name)?;
        self.graph_mut().delete_node(name)
    }

    /// Inserts or replaces an edge, keeping the incoming index current.
    pub fn put_edge(&mut self, edge: Edge) {
        self.put_edge_ref(&edge);
    }

    /// [`GraphState::put_edge`] from a borrowed edge: copies only what is kept
    /// (not the names or the relation, when they are stored already).
    pub fn put_edge_ref(&mut self, edge: &Edge) {
        self.graph_mut().put_edge(edge);
    }

    /// Inserts or replaces many edges, as [`GraphState::put_edge_ref`] one after
    /// the other; each node's list in each direction is copied once per batch
    /// (per slice of a large one), not once per edge.
    pub fn put_edges(&mut self, edges: &[Edge]) {
        self.graph_mut().put_edges(edges);
    }

    /// Removes an edge; the removed edge.
    pub fn delete_edge(&mut self, key: &EdgeKey) -> Option<Edge> {
        let found = self.graph.key_ids(key);
        if found.is_none_or(|(from, rel, to)| self.graph.edge_data(from, rel, to).is_none()) {
            return None;
        }
        self.graph_mut().delete_edge(key)
    }

    /// Registers or replaces a schema.
    pub fn put_schema(&mut self, target: SchemaTarget, schema: Value) {
        self.graph_mut().put_schema(target, schema);
    }

    /// Removes a schema; the removed schema.
    pub fn delete_schema(&mut self, target: &SchemaTarget) -> Option<Value> {
        self.graph_mut().delete_schema(target)
    }

    /// The event log and keyed state.
    pub fn event_state(&self) -> &EventState {
        self.graph.event_state()
    }

    /// The event log and keyed state, to change.
    pub fn event_state_mut(&mut self) -> &mut EventState {
        self.graph_mut().event_state_mut()
    }

    /// Problems with the indexes: each must agree with the data it is derived from.
    pub fn check_indexes(&self) -> Vec<Problem> {
        self.graph.check_indexes()
    }
}

impl Graph {
    // ----- ids -----

    fn id(&self, name: &str) -> Option<Id> {
        self.names.get(name.as_bytes()).map(|slot| slot.id)
    }

    fn name(&self, id: Id) -> Option<&str> {
        self.by_id.get(id)?.name.as_deref()
    }

    /// `name` (the name of `id`) as an edge list keeps it.
    fn end_name(&self, id: Id, name: &str) -> Name {
        Name::new(name, || {
            self.by_id
                .get(id)
                .and_then(|e| e.name.clone())
                .unwrap_or_else(|| Arc::from(name))
        })
    }

    fn relation_id(&self, relation: &RelationType) -> Option<Rel> {
        self.relations.get(relation).copied()
    }

    fn node_data(&self, name: &str) -> Option<&Arc<NodeData>> {
        self.names.get(name.as_bytes())?.node.as_ref()
    }

    /// The id of `name`, giving it one (with no node) if it has none.
    fn intern(&mut self, name: &str) -> Id {
        if let Some(id) = self.id(name) {
            return id;
        }
        self.add_name(Arc::from(name), None)
    }

    /// Adds a name that is not in use yet; its new id.
    fn add_name(&mut self, name: Arc<str>, node: Option<Arc<NodeData>>) -> Id {
        let id = self.new_id(Arc::clone(&name));
        let key = Name::new(&name, || Arc::clone(&name));
        if let Some(ordered) = self.ordered.get_mut() {
            ordered.insert(key.clone());
        }
        self.names.insert(key, Slot { id, node });
        id
    }

    fn new_id(&mut self, name: Arc<str>) -> Id {
        match self.free.pop_back() {
            Some(id) => {
                self.by_id.set(
                    id,
                    IdEntry {
                        name: Some(name),
                        ..IdEntry::default()
                    },
                );
                id
            }
            None => {
                self.by_id.push_back(IdEntry {
                    name: Some(name),
                    ..IdEntry::default()
                });
                self.by_id.len() - 1
            }
        }
    }

    fn intern_relation(&mut self, relation: &RelationType) -> Rel {
        if let Some(rel) = self.relation_id(relation) {
            return rel;
        }
        let rel = self.relation_by_id.len();
        self.relations.insert(relation.clone(), rel);
        let table = Arc::make_mut(&mut self.relation_by_id);
        table.push(Ranked {
            relation: relation.clone(),
            rank: 0,
        });
        // The ranks after this one move up by one: number them again (few).
        for (rank, &id) in self.relations.values().enumerate() {
            if let Some(entry) = table.get_mut(id) {
                entry.rank = rank;
            }
        }
        rel
    }

    fn has_edges(&self, id: Id) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|e| !e.out.is_empty() || !e.inc.is_empty())
    }

    /// Gives up the name with this id if nothing carries it any more.
    fn release(&mut self, id: Id) {
        let Some(name) = self.by_id.get(id).and_then(|e| e.name.clone()) else {
            return;
        };
        let unused = self
            .names
            .get(name.as_bytes())
            .is_some_and(|slot| slot.node.is_none());
        if unused && !self.has_edges(id) {
            self.names.remove(name.as_bytes());
            if let Some(ordered) = self.ordered.get_mut() {
                ordered.remove(name.as_bytes());
            }
            self.by_id.set(id, IdEntry::default());
            self.free.push_back(id);
        }
    }

    // ----- edges as numbers -----

    /// The edges touching `id` (named `name`) in `direction` with a relation in
    /// `wanted` (any if `None`), each made by `make` from its parts (from,
    /// relation, to, content), in key order; a self-loop once. The parts are put
    /// in order before anything is made (borrowed, compared by relation rank
    /// before any name), so that sorting moves a few words per edge and
    /// compares numbers, not the edges `make` builds.
    fn collect_edges<'a, T>(
        &'a self,
        id: Id,
        name: &'a str,
        direction: Direction,
        wanted: Option<&[Rel]>,
        make: impl Fn(EdgeParts<'a>) -> T,
    ) -> Vec<T> {
        let rel_ok = |rel: &Rel| wanted.is_none_or(|w| w.contains(rel));
        let Some(entry) = self.by_id.get(id) else {
            return Vec::new();
        };
        if direction == Direction::Out
            && let Some(list) = entry.out.as_slice()
            && list.len() <= KEYED
        {
            return self.out_of_list(list, name, wanted, make);
        }
        let ranked = |rel: Rel| self.relation_by_id.get(rel);
        let mut parts: Vec<Part<'a>> = Vec::with_capacity(match direction {
            Direction::Out => entry.out.len(),
            Direction::In => entry.inc.len(),
            Direction::Both => entry.out.len() + entry.inc.len(),
        });
        if direction != Direction::In {
            parts.extend(
                entry
                    .out
                    .iter()
                    .filter(|((rel, _), _)| rel_ok(rel))
                    .filter_map(|(&(rel, _), out)| {
                        let r = ranked(rel)?;
                        Some(Part {
                            from: name,
                            rank: r.rank,
                            relation: &r.relation,
                            to: out.to.as_str(),
                            data: &out.data,
                        })
                    }),
            );
        }
        if direction != Direction::Out {
            let skip_loops = direction == Direction::Both;
            parts.extend(
                entry
                    .inc
                    .iter()
                    .filter(|&(&(rel, from), _)| rel_ok(&rel) && !(skip_loops && from == id))
                    .filter_map(|(&(rel, from), from_name)| {
                        let r = ranked(rel)?;
                        Some(Part {
                            from: from_name.as_str(),
                            rank: r.rank,
                            relation: &r.relation,
                            to: name,
                            data: self.edge_data(from, rel, id)?,
                        })
                    }),
            );
        }
        // Key order; the node's own name is the same on one side, so compare the rest.
        match direction {
            Direction::Out => {
                parts.sort_unstable_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.to.cmp(b.to)));
            }
            Direction::In => {
                parts.sort_unstable_by(|a, b| a.from.cmp(b.from).then(a.rank.cmp(&b.rank)));
            }
            Direction::Both => parts.sort_unstable_by(|a, b| {
                a.from
                    .cmp(b.from)
                    .then(a.rank.cmp(&b.rank))
                    .then_with(|| a.to.cmp(b.to))
            }),
        }
        parts
            .into_iter()
            .map(|p| make((p.from, p.relation, p.to, p.data)))
            .collect()
    }

    /// [`Graph::collect_edges`] for the outgoing edges of a short list (at most
    /// [`KEYED`]; the common read): the wanted entries' sort keys are made on the
    /// stack (relation rank, then the target's name prefix as integers, see
    /// [`Name::prefix`], its bytes only on a tie), put in key order, and the
    /// edges made in that order straight into a result of their exact size. No
    /// parts are gathered in a vector of their own, and a sort compares integers,
    /// not `str`s through `memcmp`.
    fn out_of_list<'a, T>(
        &'a self,
        list: &'a [(End, OutEdge)],
        from: &'a str,
        wanted: Option<&[Rel]>,
        make: impl Fn(EdgeParts<'a>) -> T,
    ) -> Vec<T> {
        let ranks = &*self.relation_by_id;
        // (relation rank, the target's name prefix, position in `list`).
        let mut keys = [(0usize, 0u128, 0u64, 0u8); KEYED];
        let mut n = 0;
        for (i, ((rel, _), out)) in list.iter().enumerate() {
            if wanted.is_none_or(|w| w.contains(rel))
                && let (Some(key), Ok(i)) = (keys.get_mut(n), u8::try_from(i))
            {
                // Relation ids always have a rank; an edge of one without is
                // skipped below, as the general path skips it.
                let rank = ranks.get(*rel).map_or(0, |r| r.rank);
                let (high, low) = out.to.prefix();
                *key = (rank, high, low, i);
                n += 1;
            }
        }
        let keys = &mut keys[..n];
        let name = |i: u8| list[usize::from(i)].1.to.as_bytes();
        keys.sort_unstable_by(|a, b| {
            (a.0, a.1, a.2)
                .cmp(&(b.0, b.1, b.2))
                .then_with(|| name(a.3).cmp(name(b.3)))
        });
        let mut edges = Vec::with_capacity(n);
        for &(_, _, _, i) in &*keys {
            let ((rel, _), out) = &list[usize::from(i)];
            if let Some(r) = ranks.get(*rel) {
                edges.push(make((from, &r.relation, out.to.as_str(), &out.data)));
            }
        }
        edges
    }

    /// Calls `each` with the id at the other end of every edge a traversal
    /// follows from `id` in one hop (see [`crate::algo::hop`]): the edges in
    /// `direction`, and bidirectional edges the other way.
    fn hop_ids(
        &self,
        id: Id,
        direction: Direction,
        wanted: Option<&[Rel]>,
        mut each: impl FnMut(Id),
    ) {
        let rel_ok = |rel: &Rel| wanted.is_none_or(|w| w.contains(rel));
        let Some(entry) = self.by_id.get(id) else {
            return;
        };
        for (&(rel, to), out) in entry.out.iter() {
            let follow = match direction {
                Direction::Out | Direction::Both => true,
                Direction::In => to == id || out.data.bidirectional(),
            };
            if follow && rel_ok(&rel) {
                each(to);
            }
        }
        if direction == Direction::Out && self.bidirectional_edges == 0 {
            return;
        }
        for (&(rel, from), _) in entry.inc.iter() {
            if from == id || !rel_ok(&rel) {
                continue;
            }
            let follow = match direction {
                Direction::In | Direction::Both => true,
                Direction::Out => self
                    .edge_data(from, rel, id)
                    .is_some_and(EdgeData::bidirectional),
            };
            if follow {
                each(from);
            }
        }
    }

    /// The ids 1 to `hops` hops from `start` (not `start`), level by level.
    fn levels(
        &self,
        start: Id,
        direction: Direction,
        wanted: Option<&[Rel]>,
        hops: usize,
    ) -> Vec<Vec<Id>> {
        let mut seen: IdSet = IdSet::default();
        seen.insert(start);
        let mut levels: Vec<Vec<Id>> = Vec::new();
        let mut frontier = vec![start];
        for _ in 0..hops {
            let mut next = Vec::new();
            for &id in &frontier {
                self.hop_ids(id, direction, wanted, |to| {
                    if seen.insert(to) {
                        next.push(to);
                    }
                });
            }
            if next.is_empty() {
                break;
            }
            frontier.clone_from(&next);
            levels.push(next);
        }
        levels
    }

    /// The ids at the end of walks of exactly `hops` edges from `start`.
    fn walk_ends(
        &self,
        start: Id,
        direction: Direction,
        wanted: Option<&[Rel]>,
        hops: usize,
    ) -> IdSet {
        let mut frontier = IdSet::default();
        frontier.insert(start);
        for _ in 0..hops {
            let mut next = IdSet::default();
            for &id in &frontier {
                self.hop_ids(id, direction, wanted, |to| {
                    next.insert(to);
                });
            }
            frontier = next;
            if frontier.is_empty() {
                break;
            }
        }
        frontier
    }

    /// The names of `ids`, sorted.
    fn sorted_names(&self, ids: impl IntoIterator<Item = Id>) -> Vec<String> {
        let mut names: Vec<String> = ids
            .into_iter()
            .filter_map(|id| self.name(id).map(str::to_owned))
            .collect();
        names.sort_unstable();
        names
    }

    /// The edges of `id` (named `name`), as [`ReadTxn::edges_of`] lists them.
    fn edges_at(
        &self,
        id: Id,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Vec<Edge> {
        let wanted = self.wanted(relations);
        self.collect_edges(
            id,
            name,
            direction,
            wanted.as_deref(),
            |(from, rel, to, data)| data.edge(from.to_owned(), rel.clone(), to.to_owned()),
        )
    }

    /// The id of `name` if a node has it.
    fn node_id(&self, name: &str) -> Option<Id> {
        let slot = self.names.get(name.as_bytes())?;
        slot.node.as_ref().map(|_| slot.id)
    }

    /// The ids `options` reaches from the node `start`; `None` if there is no such node.
    fn reach_ids(&self, start: &str, options: &ReachOptions) -> Option<Vec<Id>> {
        let id = self.node_id(start)?;
        let wanted = self.wanted(&options.relations);
        let wanted = wanted.as_deref();
        Some(match options.reach {
            Reach::Within => self
                .levels(id, options.direction, wanted, options.hops)
                .into_iter()
                .flatten()
                .collect(),
            Reach::Exactly => self
                .walk_ends(id, options.direction, wanted, options.hops)
                .into_iter()
                .collect(),
        })
    }

    // ----- building at once -----

    /// See [`GraphState::build`].
    fn build(
        mut nodes: Vec<Node>,
        edges: Vec<Edge>,
        schemas: impl IntoIterator<Item = (SchemaTarget, Value)>,
    ) -> Self {
        let mut graph = Graph::default();
        // Nodes by name, the later of two with one name kept (a stable sort keeps
        // their order).
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut kept: Vec<Node> = Vec::with_capacity(nodes.len());
        for node in nodes {
            match kept.last_mut() {
                Some(last) if last.name == node.name => *last = node,
                _ => kept.push(node),
            }
        }
        let nodes = kept;
        // Ids: the nodes' names in order, then edge ends that name no node.
        let mut names: Vec<Arc<str>> = nodes.iter().map(|n| Arc::from(n.name.as_str())).collect();
        let mut index: foldhash::HashMap<Arc<str>, Id> = foldhash::HashMap::default();
        index.reserve(names.len());
        for (id, name) in names.iter().enumerate() {
            index.insert(Arc::clone(name), id);
        }
        let mut id_of = |name: &str, names: &mut Vec<Arc<str>>| -> Id {
            if let Some(&id) = index.get(name) {
                return id;
            }
            let shared: Arc<str> = Arc::from(name);
            names.push(Arc::clone(&shared));
            index.insert(shared, names.len() - 1);
            names.len() - 1
        };
        // Relations numbered in name order, so that edges given in key order
        // (a load, a snapshot) are in order as numbers too.
        let mut relations: foldhash::HashMap<&str, &RelationType> = foldhash::HashMap::default();
        for edge in &edges {
            relations
                .entry(edge.relation_type.as_str())
                .or_insert(&edge.relation_type);
        }
        let mut relations: Vec<&RelationType> = relations.into_values().collect();
        relations.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        // Each relation's id by its name (looked up once an edge, by hash).
        let rels: foldhash::HashMap<String, Rel> = relations
            .into_iter()
            .map(|r| (r.as_str().to_owned(), graph.intern_relation(r)))
            .collect();
        // Edges as numbers, sorted by key as numbers; of two with one key the later.
        // Edges given in key order (a restore, a snapshot) come by source: a source
        // just numbered is not looked up again (its name compared with the last).
        let mut numbered: Vec<(Key, EdgeData)> = Vec::with_capacity(edges.len());
        let mut last_from: Option<(String, Id)> = None;
        for mut edge in edges {
            let from = match &last_from {
                Some((name, id)) if *name == edge.from => *id,
                _ => {
                    let id = id_of(&edge.from, &mut names);
                    last_from = Some((std::mem::take(&mut edge.from), id));
                    id
                }
            };
            let to = id_of(&edge.to, &mut names);
            let rel = rels
                .get(edge.relation_type.as_str())
                .copied()
                .unwrap_or_default();
            numbered.push(((from, rel, to), EdgeData::from_owned(edge)));
        }
        // In strict key order already (a restore, a snapshot): no repeat to drop,
        // and the list is kept as it is, not copied.
        let edges = if numbered.is_sorted_by(|(a, _), (b, _)| a < b) {
            numbered
        } else {
            numbered.sort_by_key(|(key, _)| *key);
            let mut edges: Vec<(Key, EdgeData)> = Vec::with_capacity(numbered.len());
            for (key, data) in numbered {
                match edges.last_mut() {
                    Some((last, kept)) if *last == key => *kept = data,
                    _ => edges.push((key, data)),
                }
            }
            edges
        };
        let end = |id: Id| Name::new(&names[id], || Arc::clone(&names[id]));
        // Incoming lists: (to, relation, from), grouped by `to`.
        let mut incoming: Vec<Key> = edges.iter().map(|&((f, r, t), _)| (t, r, f)).collect();
        incoming.sort_unstable();
        let mut entries: Vec<IdEntry> = names
            .iter()
            .map(|name| IdEntry {
                name: Some(Arc::clone(name)),
                ..IdEntry::default()
            })
            .collect();
        let mut rest = incoming.as_slice();
        while let Some(&(to, _, _)) = rest.first() {
            let len = rest.iter().take_while(|k| k.0 == to).count();
            let (run, tail) = rest.split_at(len);
            rest = tail;
            entries[to].inc = Adjacency::from_sorted(
                run.iter()
                    .map(|&(_, rel, from)| ((rel, from), end(from)))
                    .collect(),
            );
        }
        graph.edge_count = edges.len();
        graph.bidirectional_edges = edges.iter().filter(|(_, d)| d.bidirectional()).count();
        let mut edges = edges.into_iter().peekable();
        while let Some(((from, _, _), _)) = edges.peek() {
            let from = *from;
            let mut list: Vec<((Rel, Id), OutEdge)> = Vec::new();
            while let Some(((_, rel, to), data)) = edges.next_if(|((f, _, _), _)| *f == from) {
                list.push(((rel, to), OutEdge { to: end(to), data }));
            }
            entries[from].out = Adjacency::from_sorted(list);
        }
        // Names, their nodes and the indexes over nodes.
        graph.node_count = nodes.len();
        let mut slots: Vec<Option<Arc<NodeData>>> = Vec::with_capacity(names.len());
        for node in nodes {
            for dep in &node.dependencies {
                graph.dependents.insert((dep.clone(), node.name.clone()));
            }
            let node_type = graph.intern_type(&node.node_type, None);
            slots.push(Some(Arc::new(NodeData::of(Cow::Owned(node), node_type))));
        }
        slots.resize(names.len(), None);
        for (id, node) in slots.into_iter().enumerate() {
            graph.names.insert(end(id), Slot { id, node });
        }
        graph.by_id = entries.into_iter().collect();
        graph.schemas = schemas.into_iter().collect();
        graph
    }

    // ----- writes -----

    /// Inserts or replaces a node, keeping the dependents and search indexes current.
    fn put_node(&mut self, node: Cow<'_, Node>) {
        let node_type = self.intern_type(&node.node_type, None);
        let name: Arc<str> = Arc::from(node.name.as_str());
        let data = NodeData::of(node, node_type);
        self.place(name, data);
    }

    /// [`Graph::put_node`] with a node made ready beforehand ([`PreparedNode`]).
    fn put_prepared(&mut self, node: PreparedNode) {
        let PreparedNode {
            name,
            mut data,
            shared_type,
        } = node;
        // Its type's shared copy, unless it was made with it (a new type keeps
        // the copy it was made with).
        if !shared_type {
            data.node_type = self.intern_type(&data.node_type, Some(&data.node_type));
        }
        self.place(name, data);
    }

    /// Puts `data` as the node `name`, in place of the node of that name if
    /// there is one, keeping the dependents and search indexes current. The
    /// name table is written first, with the id a new name would get: a new
    /// name (a node created) then costs one descent of the table, not a
    /// failed lookup and then an insert; a name in use gets its own id back.
    fn place(&mut self, name: Arc<str>, data: NodeData) {
        let data = Arc::new(data);
        let key = Name::new(&name, || Arc::clone(&name));
        let new_id = self.free.back().copied().unwrap_or(self.by_id.len());
        let slot = Slot {
            id: new_id,
            node: Some(Arc::clone(&data)),
        };
        let ordered_key = self.ordered.get().is_some().then(|| key.clone());
        match self.names.insert(key, slot) {
            None => {
                let id = self.new_id(Arc::clone(&name));
                if id != new_id
                    && let Some(slot) = self.names.get_mut(name.as_bytes())
                {
                    slot.id = id;
                }
                if let (Some(ordered), Some(key)) = (self.ordered.get_mut(), ordered_key) {
                    ordered.insert(key);
                }
                self.node_count += 1;
            }
            Some(old) => {
                if let Some(slot) = self.names.get_mut(name.as_bytes()) {
                    slot.id = old.id;
                }
                match &old.node {
                    Some(old) => self.forget_node(&name, old),
                    None => self.node_count += 1,
                }
            }
        }
        for dep in data.dependencies() {
            self.dependents.insert((dep.clone(), String::from(&*name)));
        }
        if self.search.get().is_some() {
            let whole = data.node(&name);
            if let Some(index) = self.search.get_mut() {
                index.insert(&whole);
            }
        }
    }

    /// The shared copy of a node type's name; a new type keeps `made` when given
    /// (the copy a prepared node was made with), instead of another.
    fn intern_type(&mut self, node_type: &str, made: Option<&Arc<str>>) -> Arc<str> {
        if let Some((shared, ())) = self.node_types.get_key_value(node_type) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = made.map_or_else(|| Arc::from(node_type), Arc::clone);
        self.node_types.insert(Arc::clone(&shared), ());
        shared
    }

    /// Takes a node that is being replaced or removed out of the dependents and
    /// search indexes.
    fn forget_node(&mut self, name: &str, old: &NodeData) {
        for dep in old.dependencies() {
            self.dependents.remove(&(dep.clone(), name.to_owned()));
        }
        if let Some(index) = self.search.get_mut() {
            index.remove(&old.node(name));
        }
    }

    /// Removes a node (not its edges); the removed node.
    fn delete_node(&mut self, name: &str) -> Option<Node> {
        let slot = self.names.get_mut(name.as_bytes())?;
        let old = slot.node.take()?;
        let id = slot.id;
        self.node_count -= 1;
        self.forget_node(name, &old);
        self.release(id);
        Some(old.node(name))
    }

    /// Inserts or replaces an edge, keeping the incoming index current.
    fn put_edge(&mut self, edge: &Edge) {
        let from = self.intern(&edge.from);
        self.put_edge_from(from, edge);
    }

    /// Inserts or replaces many edges, as [`Graph::put_edge`] one after the
    /// other, [`PUT_SLICE`] edges at a time: the slice's ids are handed out in
    /// the edges' order, its edges grouped by source and by target, and each
    /// node's list in each direction copied once ([`Adjacency::merge`]) rather
    /// than once per edge. One by one, a node with five edges had its list made
    /// five times and four copies freed, and a load left the allocator tens of
    /// thousands of scattered free blocks to sort on its next requests.
    fn put_edges(&mut self, edges: &[Edge]) {
        for slice in edges.chunks(PUT_SLICE) {
            self.put_edge_slice(slice);
        }
    }

    /// [`Graph::put_edges`] for one slice.
    fn put_edge_slice(&mut self, edges: &[Edge]) {
        // `(from, (relation, to), index)`, ids made in the order one-by-one
        // puts make them: from, to, relation.
        let mut keyed: Vec<(Id, End, usize)> = Vec::with_capacity(edges.len());
        for (i, edge) in edges.iter().enumerate() {
            let from = self.intern(&edge.from);
            let to = self.intern(&edge.to);
            let rel = self.intern_relation(&edge.relation_type);
            keyed.push((from, (rel, to), i));
        }
        keyed.sort_unstable();
        // Of two puts of one key, the later one is kept.
        keyed.dedup_by(|later, kept| {
            let same = later.0 == kept.0 && later.1 == kept.1;
            if same {
                kept.2 = later.2;
            }
            same
        });
        let mut incoming: Vec<(Id, End, Name)> = Vec::new();
        let mut rest = keyed.as_slice();
        while let Some(&(from, _, first)) = rest.first() {
            let len = rest.iter().take_while(|k| k.0 == from).count();
            let (run, tail) = rest.split_at(len);
            rest = tail;
            let from_name = self.end_name(from, &edges[first].from);
            let mut list: Vec<(End, OutEdge)> = Vec::with_capacity(run.len());
            for &(_, (rel, to), i) in run {
                let edge = &edges[i];
                let data = EdgeData::of(edge);
                let replaced = self
                    .by_id
                    .get(from)
                    .and_then(|e| e.out.get(&(rel, to)))
                    .map(|old| old.data.bidirectional());
                self.bidirectional_edges += usize::from(data.bidirectional());
                match replaced {
                    Some(old) => self.bidirectional_edges -= usize::from(old),
                    None => {
                        self.edge_count += 1;
                        incoming.push((to, (rel, from), from_name.clone()));
                    }
                }
                let out = OutEdge {
                    to: self.end_name(to, &edge.to),
                    data,
                };
                list.push(((rel, to), out));
            }
            if let Some(entry) = self.by_id.get_mut(from) {
                entry.out.merge(list);
            }
        }
        // Each `(to, (relation, from))` is there once (the keys were deduplicated).
        incoming.sort_unstable_by_key(|(to, end, _)| (*to, *end));
        let mut incoming = incoming.into_iter().peekable();
        while let Some((to, end, name)) = incoming.next() {
            let mut list = vec![(end, name)];
            while let Some((_, end, name)) = incoming.next_if(|(t, _, _)| *t == to) {
                list.push((end, name));
            }
            if let Some(entry) = self.by_id.get_mut(to) {
                entry.inc.merge(list);
            }
        }
    }

    /// [`Graph::put_edge`] for an edge leaving `from` (its source's id).
    fn put_edge_from(&mut self, from: Id, edge: &Edge) {
        let to = self.intern(&edge.to);
        let rel = self.intern_relation(&edge.relation_type);
        let data = EdgeData::of(edge);
        self.bidirectional_edges += usize::from(data.bidirectional());
        let to_name = self.end_name(to, &edge.to);
        let Some(entry) = self.by_id.get_mut(from) else {
            return;
        };
        let out = OutEdge { to: to_name, data };
        match entry.out.insert((rel, to), out) {
            Some(old) => self.bidirectional_edges -= usize::from(old.data.bidirectional()),
            None => {
                self.edge_count += 1;
                let from_name = self.end_name(from, &edge.from);
                if let Some(entry) = self.by_id.get_mut(to) {
                    entry.inc.insert((rel, from), from_name);
                }
            }
        }
    }

    /// Removes an edge; the removed edge.
    fn delete_edge(&mut self, key: &EdgeKey) -> Option<Edge> {
        let (from, rel, to) = self.key_ids(key)?;
        let data = self.by_id.get_mut(from)?.out.remove(&(rel, to))?.data;
        if let Some(entry) = self.by_id.get_mut(to) {
            entry.inc.remove(&(rel, from));
        }
        self.edge_count -= 1;
        self.bidirectional_edges -= usize::from(data.bidirectional());
        self.release(from);
        self.release(to);
        Some(data.edge(key.from.clone(), key.relation_type.clone(), key.to.clone()))
    }

    /// The content of the edge `from -[rel]-> to`.
    fn edge_data(&self, from: Id, rel: Rel, to: Id) -> Option<&EdgeData> {
        self.by_id
            .get(from)?
            .out
            .get(&(rel, to))
            .map(|out| &out.data)
    }

    fn key_ids(&self, key: &EdgeKey) -> Option<Key> {
        Some((
            self.id(&key.from)?,
            self.relation_id(&key.relation_type)?,
            self.id(&key.to)?,
        ))
    }

    /// Registers or replaces a schema.
    fn put_schema(&mut self, target: SchemaTarget, schema: Value) {
        self.schemas.insert(target, schema);
    }

    /// Removes a schema; the removed schema.
    fn delete_schema(&mut self, target: &SchemaTarget) -> Option<Value> {
        self.schemas.remove(target)
    }

    /// The event log and keyed state.
    fn event_state(&self) -> &EventState {
        &self.events
    }

    /// The event log and keyed state, to change.
    fn event_state_mut(&mut self) -> &mut EventState {
        &mut self.events
    }

    /// Problems with the indexes: each must agree with the data it is derived from.
    fn check_indexes(&self) -> Vec<Problem> {
        let mut problems = self.events.check();
        let edges: Vec<(Key, &EdgeData)> = self.all_edges().collect();
        let incoming: usize = self.by_id.iter().map(|e| e.inc.len()).sum();
        let agrees = incoming == edges.len()
            && edges.len() == self.edge_count
            && edges.iter().all(|&((from, rel, to), _)| {
                self.by_id
                    .get(to)
                    .and_then(|e| e.inc.get(&(rel, from)))
                    .is_some_and(|kept| Some(kept.as_str()) == self.name(from))
                    && self
                        .by_id
                        .get(from)
                        .and_then(|e| e.out.get(&(rel, to)))
                        .is_some_and(|out| Some(out.to.as_str()) == self.name(to))
            });
        if !agrees {
            problems.push(Problem::new(
                "in-memory incoming-edge index",
                "does not match the edges",
            ));
        }
        let names_agree = self.names.iter().all(|(name, slot)| {
            self.by_id.get(slot.id).and_then(|e| e.name.as_deref()) == Some(&**name)
        }) && self.ordered.get().is_none_or(|ordered| {
            ordered.len() == self.names.len()
                && ordered
                    .iter()
                    .all(|name| self.names.contains_key(name.as_bytes()))
        }) && self.by_id.iter().filter(|e| e.name.is_some()).count()
            == self.names.len()
            && self.by_id.iter().filter(|e| e.name.is_none()).count() == self.free.len();
        let ids_known = edges.iter().all(|&((from, rel, to), _)| {
            [from, to].iter().all(|&id| self.name(id).is_some()) && rel < self.relation_by_id.len()
        });
        let relations_agree = self.relations.len() == self.relation_by_id.len()
            && self
                .relations
                .iter()
                .enumerate()
                .all(|(rank, (relation, &rel))| {
                    self.relation_by_id
                        .get(rel)
                        .is_some_and(|r| r.relation == *relation && r.rank == rank)
                });
        if !(names_agree && ids_known && relations_agree) {
            problems.push(Problem::new(
                "in-memory name and relation ids",
                "do not match the names and edges",
            ));
        }
        let bidirectional = edges.iter().filter(|(_, d)| d.bidirectional()).count();
        if bidirectional != self.bidirectional_edges {
            problems.push(Problem::new(
                "in-memory edge counts",
                format!(
                    "count {} bidirectional edges where there are {bidirectional}",
                    self.bidirectional_edges
                ),
            ));
        }
        let unused = self
            .names
            .values()
            .filter(|slot| slot.node.is_none() && !self.has_edges(slot.id))
            .count();
        let nodes = self.names.values().filter(|s| s.node.is_some()).count();
        if unused > 0 || nodes != self.node_count {
            problems.push(Problem::new(
                "in-memory name table",
                format!(
                    "holds {unused} names nothing uses and counts {} nodes where there are {nodes}",
                    self.node_count
                ),
            ));
        }
        let nodes: Vec<Node> = self.nodes().collect();
        let dependents: OrdSet<(String, String)> = nodes
            .iter()
            .flat_map(|n| n.dependencies.iter().map(|d| (d.clone(), n.name.clone())))
            .collect();
        if dependents != self.dependents {
            problems.push(Problem::new(
                "in-memory dependents index",
                "does not match the dependencies",
            ));
        }
        if self
            .search
            .get()
            .is_some_and(|index| *index != SearchIndex::build(&nodes))
        {
            problems.push(Problem::new(
                "in-memory search index",
                "does not match the nodes",
            ));
        }
        problems
    }

    /// The full-text index, built now if no search has needed it yet.
    fn search_index(&self) -> &SearchIndex {
        self.search
            .get_or_init(|| SearchIndex::build(&self.nodes().collect::<Vec<_>>()))
    }

    /// The names in use in order, built now if no scan has needed them yet.
    fn ordered(&self) -> &OrdSet<Name> {
        self.ordered.get_or_init(|| {
            let mut names: Vec<Name> = self.names.keys().cloned().collect();
            names.sort_unstable();
            names.into_iter().collect()
        })
    }

    /// Every edge as numbers with its content, in id order.
    fn all_edges(&self) -> impl Iterator<Item = (Key, &EdgeData)> + '_ {
        self.by_id.iter().enumerate().flat_map(|(from, entry)| {
            entry
                .out
                .iter()
                .map(move |(&(rel, to), out)| ((from, rel, to), &out.data))
        })
    }

    /// Every name in use with its slot, by name, from `start` on.
    fn slots_from<'a>(
        &'a self,
        start: Bound<&str>,
    ) -> impl Iterator<Item = (&'a Name, &'a Slot)> + 'a {
        self.ordered()
            .range::<_, [u8]>((start.map(str::as_bytes), Bound::Unbounded))
            .filter_map(|name| Some((name, self.names.get(name.as_bytes())?)))
    }

    /// Every name in use with its slot, by name.
    fn slots(&self) -> impl Iterator<Item = (&Name, &Slot)> + '_ {
        self.slots_from(Bound::Unbounded)
    }

    /// Every node, by name.
    fn nodes(&self) -> impl Iterator<Item = Node> + '_ {
        self.slots()
            .filter_map(|(name, slot)| Some(slot.node.as_deref()?.node(name)))
    }

    /// The relation ids of `relations`, `None` for any relation; relations
    /// never used have no id and match nothing.
    fn wanted(&self, relations: &[RelationType]) -> Option<Vec<Rel>> {
        (!relations.is_empty()).then(|| {
            relations
                .iter()
                .filter_map(|r| self.relation_id(r))
                .collect()
        })
    }
}

impl ReadTxn for GraphState {
    fn get_node(&self, name: &str) -> Result<Option<Node>> {
        Ok(self.graph.node_data(name).map(|data| data.node(name)))
    }

    fn get_edge(&self, key: &EdgeKey) -> Result<Option<Edge>> {
        Ok(self
            .graph
            .key_ids(key)
            .and_then(|(from, rel, to)| self.graph.edge_data(from, rel, to))
            .map(|data| data.edge(key.from.clone(), key.relation_type.clone(), key.to.clone())))
    }

    fn scan_nodes(
        &self,
        filter: &NodeFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Node>> {
        let start = match (after, filter.name_prefix.as_deref()) {
            (Some(a), Some(p)) if p > a => Bound::Included(p),
            (Some(a), _) => Bound::Excluded(a),
            (None, Some(p)) => Bound::Included(p),
            (None, None) => Bound::Unbounded,
        };
        let prefix = filter.name_prefix.as_deref().unwrap_or("");
        Ok(self
            .graph
            .slots_from(start)
            .take_while(|(name, _)| name.starts_with(prefix))
            .filter_map(|(name, slot)| Some(slot.node.as_deref()?.node(name)))
            .filter(|node| filter.matches(node))
            .take(limit)
            .collect())
    }

    fn scan_edges(
        &self,
        filter: &EdgeFilter,
        after: Option<&EdgeKey>,
        limit: usize,
    ) -> Result<Vec<Edge>> {
        let start = match (after, filter.from.as_deref()) {
            (Some(a), Some(f)) if f > a.from.as_str() => f,
            (Some(a), _) => a.from.as_str(),
            (None, Some(f)) => f,
            (None, None) => "",
        };
        let after = after.map(|a| (a.from.as_str(), a.relation_type.as_str(), a.to.as_str()));
        let mut out = Vec::new();
        for (name, slot) in self.graph.slots_from(Bound::Included(start)) {
            if out.len() >= limit || filter.from.as_deref().is_some_and(|f| f != &**name) {
                break;
            }
            out.extend(
                self.graph
                    .edges_at(slot.id, name, Direction::Out, &[])
                    .into_iter()
                    .filter(|edge| after.is_none_or(|a| key_order(edge) > a))
                    .filter(|edge| filter.matches(edge))
                    .take(limit - out.len()),
            );
        }
        Ok(out)
    }

    fn edges_of(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Result<Vec<Edge>> {
        Ok(self
            .graph
            .id(name)
            .map(|id| self.graph.edges_at(id, name, direction, relations))
            .unwrap_or_default())
    }

    fn edges_of_node(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Result<Option<Vec<Edge>>> {
        Ok(self
            .graph
            .node_id(name)
            .map(|id| self.graph.edges_at(id, name, direction, relations)))
    }

    fn neighbour_names(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Result<Option<Vec<String>>> {
        let Some(id) = self.graph.node_id(name) else {
            return Ok(None);
        };
        let wanted = self.graph.wanted(relations);
        Ok(Some(self.graph.collect_edges(
            id,
            name,
            direction,
            wanted.as_deref(),
            |(from, _, to, _)| if from == name { to } else { from }.to_owned(),
        )))
    }

    fn reach(&self, start: &str, options: &ReachOptions) -> Result<Option<Vec<String>>> {
        Ok(self
            .graph
            .reach_ids(start, options)
            .map(|ids| self.graph.sorted_names(ids)))
    }

    fn reach_count(&self, start: &str, options: &ReachOptions) -> Result<Option<u64>> {
        Ok(self
            .graph
            .reach_ids(start, options)
            .map(|ids| ids.len() as u64))
    }

    fn traverse_node(&self, start: &str, options: &TraverseOptions) -> Result<Option<Vec<Visit>>> {
        Ok(self
            .graph
            .node_id(start)
            .map(|id| self.visits_from(id, options)))
    }

    fn traverse(&self, start: &str, options: &TraverseOptions) -> Result<Vec<Visit>> {
        Ok(self
            .graph
            .id(start)
            .map(|id| self.visits_from(id, options))
            .unwrap_or_default())
    }

    fn dependents_of(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .graph
            .dependents
            .range((name.to_owned(), String::new())..)
            .take_while(|(dep, _)| dep == name)
            .map(|(_, dependent)| dependent.clone())
            .collect())
    }

    fn count_nodes(&self) -> Result<u64> {
        Ok(self.graph.node_count as u64)
    }

    fn count_edges(&self) -> Result<u64> {
        Ok(self.graph.edge_count as u64)
    }

    fn get_schema(&self, target: &SchemaTarget) -> Result<Option<Value>> {
        Ok(self.graph.schemas.get(target).cloned())
    }

    fn has_schemas(&self) -> Result<bool> {
        Ok(!self.graph.schemas.is_empty())
    }

    fn list_schemas(&self) -> Result<Vec<(SchemaTarget, Value)>> {
        Ok(self
            .graph
            .schemas
            .iter()
            .map(|(t, s)| (t.clone(), s.clone()))
            .collect())
    }

    fn contains_node(&self, name: &str) -> Result<bool> {
        Ok(self.graph.node_data(name).is_some())
    }

    fn contains_edge(&self, key: &EdgeKey) -> Result<bool> {
        Ok(self
            .graph
            .key_ids(key)
            .is_some_and(|(from, rel, to)| self.graph.edge_data(from, rel, to).is_some()))
    }

    fn search_terms(&self, terms: &TermQuery) -> Result<TermMatches<'_>> {
        Ok(self.graph.search_index().terms(terms))
    }

    fn search_infix(&self, fragment: &str) -> Result<Vec<String>> {
        Ok(self.graph.search_index().infix(fragment))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::search::SearchQuery;
    use crate::{GraphRead, Store};
    use std::collections::{BTreeMap, BTreeSet};

    /// A text of 0-30 characters, some of them two, three or four bytes long,
    /// so that texts fall on both sides of the 22 bytes a [`Name`] keeps inline.
    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(
            proptest::sample::select(vec!['a', 'z', '0', ' ', 'é', '€', '😀']),
            0..30,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    /// An attribute value: short and long texts, numbers, booleans, null, and
    /// arrays and objects holding texts.
    fn value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            4 => text().prop_map(Value::String),
            2 => any::<i64>().prop_map(Value::from),
            1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            1 => any::<bool>().prop_map(Value::Bool),
            1 => Just(Value::Null),
            1 => proptest::collection::vec(text().prop_map(Value::String), 0..3).prop_map(Value::Array),
            1 => proptest::collection::btree_map(text(), text().prop_map(Value::String), 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    }

    /// A stored node: 0-5 attributes, and sometimes the rarely set parts.
    fn stored_node() -> impl proptest::strategy::Strategy<Value = Node> {
        use proptest::prelude::*;
        (
            proptest::collection::btree_map(text(), value(), 0..6),
            proptest::option::of((text(), 1..5u64)),
            1..1_000_000_000_000i64,
        )
            .prop_map(|(attributes, extra, micros)| {
                let mut node = Node::new("n", "thing").unwrap();
                node.attributes = attributes.into_iter().collect();
                node.metadata.created_at = Timestamp::from_micros(micros).unwrap();
                node.metadata.updated_at = Timestamp::from_micros(micros + 1).unwrap();
                node.metadata.version = 1;
                if let Some((text, version)) = extra {
                    node.observations.push(text.clone());
                    node.metadata.author = Some(text);
                    node.metadata.version = version;
                }
                node
            })
    }

    proptest::proptest! {
        /// A node reads back exactly as it was put, whichever way it went in
        /// (copied from a borrowed node, moved from an owned one, made ready and
        /// put later, or in a state built at once): the stored form loses nothing.
        #[test]
        fn a_node_reads_back_as_it_was_put(nodes in proptest::collection::vec(stored_node(), 1..6)) {
            let named: Vec<Node> = nodes
                .into_iter()
                .enumerate()
                .map(|(i, mut node)| {
                    node.name = format!("node {i}");
                    node
                })
                .collect();
            let mut by_ref = GraphState::new();
            let mut owned = GraphState::new();
            let mut prepared = GraphState::new();
            for node in &named {
                by_ref.put_node_ref(node);
                owned.put_node(node.clone());
                let ready = prepared.prepare_node(node);
                prepared.put_prepared(ready);
            }
            let built = GraphState::build(named.clone(), Vec::new(), Vec::new());
            for node in &named {
                for state in [&by_ref, &owned, &prepared, &built] {
                    let got = state.get_node(&node.name).unwrap();
                    proptest::prop_assert_eq!(got.as_ref(), Some(node));
                }
            }
        }
    }

    /// A seeded linear congruential generator: `next(n)` is below `n`.
    fn lcg(seed: u64) -> impl FnMut(u64) -> usize {
        let mut rng = seed;
        move |n| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((rng >> 33) % n) as usize
        }
    }

    fn hits(r: &impl GraphRead, text: &str) -> Vec<String> {
        let page = r.search(&SearchQuery::new(text)).unwrap();
        let mut names: Vec<String> = page.items.into_iter().map(|h| h.name).collect();
        names.sort();
        names
    }

    /// The search index is built by the first search and kept current from then
    /// on; a snapshot taken before a write never sees it, built or not.
    #[test]
    fn the_search_index_built_on_first_search_follows_every_later_write() {
        let store = Store::memory();
        store
            .create_node(
                Node::new("alpha", "drink")
                    .unwrap()
                    .with_observation("green tea"),
            )
            .unwrap();
        let before = store.read().unwrap();
        store
            .create_node(
                Node::new("beta", "drink")
                    .unwrap()
                    .with_observation("black tea"),
            )
            .unwrap();
        assert_eq!(hits(&store, "tea"), ["alpha", "beta"]);
        assert_eq!(hits(&before, "tea"), ["alpha"]);
        store
            .update_node(
                Node::new("beta", "drink")
                    .unwrap()
                    .with_observation("coffee"),
                None,
            )
            .unwrap();
        store
            .create_node(
                Node::new("gamma", "drink")
                    .unwrap()
                    .with_observation("mint tea"),
            )
            .unwrap();
        assert_eq!(hits(&store, "tea"), ["alpha", "gamma"]);
        assert_eq!(hits(&store, "coffee"), ["beta"]);
        store
            .delete_node("alpha", crate::OnDependents::Refuse)
            .unwrap();
        assert_eq!(hits(&store, "tea"), ["gamma"]);
        assert_eq!(hits(&before, "tea"), ["alpha"]);
        assert!(store.check().unwrap().is_ok());
    }

    fn scanned(state: &GraphState) -> Vec<String> {
        state
            .scan_nodes(&NodeFilter::default(), None, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect()
    }

    /// The names in order are built by the first scan and kept current from
    /// then on (names added by nodes and by edge ends, names given up); a state
    /// never scanned keeps none, and a snapshot scans as it was, built or not.
    #[test]
    fn the_ordered_names_built_on_first_scan_follow_every_later_write() {
        let node = |name: &str| Node::new(name, "thing").unwrap();
        let edge = |a: &str, b: &str| Edge::new(a, RelationType::Calls, b).unwrap();
        let mut state = GraphState::new();
        for name in ["m", "b", "x"] {
            state.put_node(node(name));
        }
        let unscanned = state.clone();
        // The write gives `state` a version of its own.
        state.put_node(node("y"));
        assert!(state.graph.ordered.get().is_none(), "no scan, no order");
        assert_eq!(scanned(&state), ["b", "m", "x", "y"]);
        assert!(state.graph.ordered.get().is_some());
        assert!(
            unscanned.graph.ordered.get().is_none(),
            "an earlier version is not touched"
        );
        let before = state.clone();
        state.put_node(node("a"));
        state.put_edge(edge("a", "ghost"));
        assert!(state.delete_node("m").is_some());
        state.put_prepared(state.prepare_node(&node("c")));
        assert_eq!(scanned(&state), ["a", "b", "c", "x", "y"]);
        assert_eq!(
            state
                .scan_nodes(&NodeFilter::default(), Some("b"), 2)
                .unwrap()
                .into_iter()
                .map(|n| n.name)
                .collect::<Vec<_>>(),
            ["c", "x"]
        );
        assert!(state.check_indexes().is_empty());
        assert!(state.delete_edge(&edge("a", "ghost").key()).is_some());
        assert_eq!(
            state.graph.ordered.get().unwrap().len(),
            5,
            "ghost given up"
        );
        assert!(state.check_indexes().is_empty());
        assert_eq!(scanned(&before), ["b", "m", "x", "y"]);
        // The version from before the first scan builds its own, as it was.
        assert_eq!(scanned(&unscanned), ["b", "m", "x"]);
        assert!(unscanned.check_indexes().is_empty());
        // A state built at once scans the same, built on demand too.
        let built = GraphState::build(vec![node("z"), node("c")], vec![edge("c", "d")], Vec::new());
        assert!(built.graph.ordered.get().is_none());
        assert_eq!(scanned(&built), ["c", "z"]);
        assert_eq!(built.graph.ordered.get().unwrap().len(), 3);
        assert!(built.check_indexes().is_empty());
    }

    /// Names are given up when nothing carries them, their ids reused, and a
    /// snapshot keeps the names and edges it saw.
    #[test]
    fn ids_of_names_nothing_carries_are_reused_without_touching_snapshots() {
        let mut state = GraphState::new();
        let node = |name: &str| Node::new(name, "thing").unwrap();
        let edge = |a: &str, b: &str| Edge::new(a, RelationType::Calls, b).unwrap();
        state.put_node(node("a"));
        state.put_node(node("b"));
        state.put_edge(edge("a", "b"));
        // An edge whose end has no node (a damaged store's files can hold one).
        state.put_edge(edge("a", "ghost"));
        let snapshot = state.clone();
        assert_eq!(state.graph.by_id.len(), 3);
        assert!(state.delete_edge(&edge("a", "ghost").key()).is_some());
        assert!(state.graph.id("ghost").is_none(), "nothing carries it");
        state.put_node(node("c"));
        assert_eq!(state.graph.by_id.len(), 3, "c took ghost's id");
        assert!(state.check_indexes().is_empty());
        assert_eq!(
            snapshot
                .edges_of("a", Direction::Out, &[])
                .unwrap()
                .iter()
                .map(|e| e.to.as_str())
                .collect::<Vec<_>>(),
            ["b", "ghost"]
        );
        assert_eq!(snapshot.get_node("c").unwrap(), None);
        assert!(snapshot.check_indexes().is_empty());
        // Deleting a node keeps its name while an edge still names it.
        assert!(state.delete_node("b").is_some());
        assert_eq!(state.count_nodes().unwrap(), 2);
        assert_eq!(state.edges_of("b", Direction::In, &[]).unwrap().len(), 1);
        assert!(state.check_indexes().is_empty());
    }

    /// A state built at once is the state of the same puts one by one: the
    /// same lists both ways, nodes, counts, dependents and schemas, with
    /// repeated names and keys (the later kept), edge ends without a node, hubs
    /// past the list size, bidirectional edges, names kept inline and shared,
    /// and indexes that agree; and it takes writes as any state does.
    #[test]
    fn a_state_built_at_once_is_the_state_of_the_same_puts() {
        let names: Vec<String> = (0..90)
            .map(|i| match i % 3 {
                0 => format!("n{i}"),
                1 => format!("a long name that no list keeps inline {i}"),
                _ => format!("{}{i:02}", "é".repeat(10)),
            })
            .collect();
        let relations = [RelationType::Calls, RelationType::DependsOn];
        let mut next = lcg(5);
        let mut nodes: Vec<Node> = Vec::new();
        for (i, name) in names.iter().enumerate().take(80) {
            let mut node = Node::new(name.as_str(), if i % 2 == 0 { "even" } else { "odd" })
                .unwrap()
                .with_attribute("i", serde_json::json!(i));
            if i > 0 && i % 7 == 0 {
                node = node.with_dependency(names[i - 1].as_str());
            }
            nodes.push(node);
        }
        // A repeated name: the later node wins.
        nodes.push(Node::new(names[3].as_str(), "again").unwrap());
        let mut edges: Vec<Edge> = Vec::new();
        for _ in 0..600 {
            // Edges from the first name make a hub; names past 80 have no node.
            let from = if next(4) == 0 { 0 } else { next(90) };
            let mut edge = Edge::new(
                names[from].as_str(),
                relations[next(2)].clone(),
                names[next(90)].as_str(),
            )
            .unwrap()
            .with_weight(next(100) as f64);
            if next(6) == 0 {
                edge = edge.bidirectional();
            }
            edges.push(edge);
        }
        let schema = serde_json::json!({"type": "object"});
        let schemas = vec![(SchemaTarget::NodeType("even".into()), schema.clone())];
        let mut single = GraphState::new();
        for node in &nodes {
            single.put_node_ref(node);
        }
        for edge in &edges {
            single.put_edge_ref(edge);
        }
        single.put_schema(SchemaTarget::NodeType("even".into()), schema);
        let mut built = GraphState::build(nodes.clone(), edges.clone(), schemas);
        let check = |built: &GraphState, single: &GraphState| {
            assert!(
                built.check_indexes().is_empty(),
                "{:?}",
                built.check_indexes()
            );
            assert_eq!(all_lists(built, &names), all_lists(single, &names));
            let all = NodeFilter::default();
            assert_eq!(
                built.scan_nodes(&all, None, usize::MAX).unwrap(),
                single.scan_nodes(&all, None, usize::MAX).unwrap()
            );
            let all = EdgeFilter::default();
            assert_eq!(
                built.scan_edges(&all, None, usize::MAX).unwrap(),
                single.scan_edges(&all, None, usize::MAX).unwrap()
            );
            assert_eq!(built.count_nodes().unwrap(), single.count_nodes().unwrap());
            assert_eq!(built.count_edges().unwrap(), single.count_edges().unwrap());
            assert_eq!(built.graph.dependents, single.graph.dependents);
            assert_eq!(
                built.graph.bidirectional_edges,
                single.graph.bidirectional_edges
            );
            assert_eq!(
                built.list_schemas().unwrap(),
                single.list_schemas().unwrap()
            );
            for name in &names {
                let options = ReachOptions::default();
                assert_eq!(
                    built.reach(name, &options).unwrap(),
                    single.reach(name, &options).unwrap()
                );
            }
        };
        assert!(matches!(
            built
                .graph
                .by_id
                .get(built.graph.id(&names[0]).unwrap())
                .unwrap()
                .out,
            Adjacency::Large(_)
        ));
        check(&built, &single);
        // Edges between nodes in key order without repeats, as a restore gives
        // them: built as they come (no sort, no copy), each source looked up once.
        let with_node: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let ordered: BTreeMap<(String, String, String), Edge> = edges
            .iter()
            .filter(|e| with_node.contains(e.from.as_str()) && with_node.contains(e.to.as_str()))
            .map(|e| {
                let (from, relation, to) = key_order(e);
                (
                    (from.to_owned(), relation.to_owned(), to.to_owned()),
                    e.clone(),
                )
            })
            .collect();
        let ordered: Vec<Edge> = ordered.into_values().collect();
        assert!(ordered.len() > 300, "{}", ordered.len());
        let in_order = GraphState::build(nodes.clone(), ordered.clone(), Vec::new());
        let mut one_by_one = GraphState::new();
        for node in &nodes {
            one_by_one.put_node_ref(node);
        }
        for edge in &ordered {
            one_by_one.put_edge_ref(edge);
        }
        assert!(in_order.check_indexes().is_empty());
        assert_eq!(all_lists(&in_order, &names), all_lists(&one_by_one, &names));
        let all = EdgeFilter::default();
        assert_eq!(
            in_order.scan_edges(&all, None, usize::MAX).unwrap(),
            one_by_one.scan_edges(&all, None, usize::MAX).unwrap()
        );
        // Writes after the build: deletions that give names up, new puts.
        for state in [&mut built, &mut single] {
            for edge in edges.iter().step_by(4) {
                state.delete_edge(&edge.key());
            }
            state.delete_node(&names[5]);
            state.put_node(Node::new("late", "odd").unwrap());
            state.put_edge(Edge::new("late", RelationType::Calls, names[1].as_str()).unwrap());
        }
        check(&built, &single);
    }

    /// Every edge both ways from every name, as `edges_of` lists them.
    fn all_lists(state: &GraphState, names: &[String]) -> Vec<Vec<Edge>> {
        let mut lists = Vec::new();
        for name in names {
            for direction in [Direction::Out, Direction::In, Direction::Both] {
                lists.push(state.edges_of(name, direction, &[]).unwrap());
            }
        }
        lists
    }

    /// A batch of edges (`put_edges`: runs by source, a fresh source's list
    /// built at once) leaves exactly the state of putting them one by one:
    /// repeated keys in one batch (the later wins), self-loops, sources that
    /// already had edges, bidirectional edges, names kept inline and names too
    /// long for that (shared), multi-byte names at the inline limit.
    #[test]
    fn a_batch_of_edges_is_the_same_as_putting_them_one_by_one() {
        let names: Vec<String> = (0..24)
            .map(|i| match i % 4 {
                0 => format!("n{i}"),
                1 => format!("{}{i:02}", "x".repeat(20)), // 22 bytes: inline
                2 => format!("{}{i:02}", "é".repeat(11)), // 24 bytes: shared
                _ => format!("a long name that no list keeps inline {i}"),
            })
            .collect();
        let relations = [
            RelationType::Calls,
            RelationType::parse("rel_b").unwrap(),
            RelationType::DependsOn,
        ];
        let mut next = lcg(11);
        let mut batched = GraphState::new();
        let mut single = GraphState::new();
        for name in names.iter().step_by(2) {
            batched.put_node(Node::new(name.as_str(), "thing").unwrap());
            single.put_node(Node::new(name.as_str(), "thing").unwrap());
        }
        for round in 0..12 {
            let mut batch: Vec<Edge> = (0..40)
                .map(|_| {
                    let mut edge = Edge::new(
                        names[next(24)].as_str(),
                        relations[next(3)].clone(),
                        names[next(24)].as_str(),
                    )
                    .unwrap()
                    .with_weight(next(100) as f64);
                    if next(5) == 0 {
                        edge = edge.bidirectional();
                    }
                    edge
                })
                .collect();
            // Loads give each source's edges together, or in any order.
            if round % 2 == 0 {
                batch.sort_by(|a, b| a.from.cmp(&b.from));
            }
            batched.put_edges(&batch);
            for edge in &batch {
                single.put_edge_ref(edge);
            }
            assert!(batched.check_indexes().is_empty(), "round {round}");
            assert_eq!(all_lists(&batched, &names), all_lists(&single, &names));
            assert_eq!(
                batched.count_edges().unwrap(),
                single.count_edges().unwrap()
            );
            assert_eq!(
                batched.graph.bidirectional_edges,
                single.graph.bidirectional_edges
            );
            // Some of them go again, so later rounds find sources with edges.
            for key in batch.iter().step_by(3).map(Edge::key) {
                batched.delete_edge(&key);
                single.delete_edge(&key);
            }
        }
    }

    /// Edges are listed in key order (by names: from, relation, to) whatever
    /// order their relations were first used in (relation ids, and so ranks,
    /// handed out as `zeta`, `calls`, `mid`, `alpha`, ... come), and
    /// `neighbour_names` follows the same order; checked against a plain
    /// model that sorts whole keys, after every batch of puts and deletes.
    #[test]
    fn edges_come_in_key_order_whatever_order_relations_were_first_used_in() {
        let names: Vec<String> = ["b", "a", "c10", "c9", "zz", "m"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let relations: Vec<RelationType> = ["zeta", "calls", "mid", "alpha", "depends_on", "beta"]
            .iter()
            .map(|r| RelationType::parse(r).unwrap())
            .collect();
        let mut next = lcg(5);
        let mut state = GraphState::new();
        for name in &names {
            state.put_node(Node::new(name.as_str(), "thing").unwrap());
        }
        let mut model: std::collections::BTreeSet<(String, String, String)> = Default::default();
        for round in 0..8 {
            // Relations come into use a few at a time, out of name order.
            let in_use = (round + 2).min(relations.len());
            for _ in 0..12 {
                let (from, rel, to) = (next(6), next(in_use as u64), next(6));
                let edge = Edge::new(
                    names[from].as_str(),
                    relations[rel].clone(),
                    names[to].as_str(),
                )
                .unwrap();
                model.insert((
                    edge.from.clone(),
                    edge.relation_type.as_str().to_owned(),
                    edge.to.clone(),
                ));
                state.put_edge(edge);
            }
            for _ in 0..3 {
                if let Some(key) = model.iter().nth(next(model.len() as u64)).cloned() {
                    model.remove(&key);
                    let key = EdgeKey {
                        from: key.0,
                        relation_type: RelationType::parse(&key.1).unwrap(),
                        to: key.2,
                    };
                    state.delete_edge(&key);
                }
            }
            assert!(state.check_indexes().is_empty(), "round {round}");
            for name in &names {
                for direction in [Direction::Out, Direction::In, Direction::Both] {
                    let want: Vec<(String, String, String)> = model
                        .iter()
                        .filter(|(f, _, t)| match direction {
                            Direction::Out => f == name,
                            Direction::In => t == name,
                            Direction::Both => f == name || t == name,
                        })
                        .cloned()
                        .collect();
                    let got: Vec<(String, String, String)> = state
                        .edges_of(name, direction, &[])
                        .unwrap()
                        .into_iter()
                        .map(|e| (e.from, e.relation_type.as_str().to_owned(), e.to))
                        .collect();
                    assert_eq!(got, want, "round {round}, {name} {direction:?}");
                    let others: Vec<String> = want
                        .iter()
                        .map(|(f, _, t)| if f == name { t } else { f }.clone())
                        .collect();
                    assert_eq!(
                        state.neighbour_names(name, direction, &[]).unwrap(),
                        Some(others),
                        "round {round}, {name} {direction:?}"
                    );
                    // One relation asked for: the same order, filtered.
                    let one = &relations[round % in_use];
                    let want_one: Vec<_> = want
                        .iter()
                        .filter(|(_, r, _)| r == one.as_str())
                        .cloned()
                        .collect();
                    let got_one: Vec<_> = state
                        .edges_of(name, direction, std::slice::from_ref(one))
                        .unwrap()
                        .into_iter()
                        .map(|e| (e.from, e.relation_type.as_str().to_owned(), e.to))
                        .collect();
                    assert_eq!(got_one, want_one, "round {round}, {name} {direction:?}");
                }
            }
        }
    }

    /// Relations first used out of name order, targets numbered in name order
    /// (built at once) and not (the "n1…" put one at a time), a node with edges
    /// of ten relations: every node's outgoing edges come out in key order.
    #[test]
    fn outgoing_edges_come_in_key_order_whatever_order_targets_were_numbered_in() {
        let mut names: Vec<String> = (0..12).map(|i| format!("n{i}")).collect();
        let nodes = names
            .iter()
            .map(|n| Node::new(n.as_str(), "thing").unwrap())
            .collect();
        let mut state = GraphState::build(nodes, Vec::new(), Vec::new());
        for i in [100, 20, 1000, 3] {
            let name = format!("n1{i}");
            state.put_node(Node::new(name.as_str(), "thing").unwrap());
            names.push(name);
        }
        let relations: Vec<RelationType> = [
            "r9",
            "zeta",
            "calls",
            "mid",
            "alpha",
            "depends_on",
            "beta",
            "r10",
            "r11",
            "omega",
        ]
        .iter()
        .map(|r| RelationType::parse(r).unwrap())
        .collect();
        let mut next = lcg(11);
        let mut model: std::collections::BTreeSet<(String, String, String)> = Default::default();
        let mut put = |state: &mut GraphState, from: &str, rel: &RelationType, to: &str| {
            model.insert((from.to_owned(), rel.as_str().to_owned(), to.to_owned()));
            state.put_edge(Edge::new(from, rel.clone(), to).unwrap());
        };
        for _ in 0..300 {
            let (from, rel, to) = (next(11), next(6), next(names.len() as u64));
            put(&mut state, &names[from], &relations[rel], &names[to]);
        }
        // n11: one edge of every relation.
        for rel in &relations {
            put(&mut state, "n11", rel, "n3");
        }
        for name in &names {
            for wanted in [None, Some(&relations[2]), Some(&relations[0])] {
                let want: Vec<(String, String, String)> = model
                    .iter()
                    .filter(|(f, r, _)| f == name && wanted.is_none_or(|w| w.as_str() == r))
                    .cloned()
                    .collect();
                let got: Vec<(String, String, String)> = state
                    .edges_of(
                        name,
                        Direction::Out,
                        wanted.map(std::slice::from_ref).unwrap_or(&[]),
                    )
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.from, e.relation_type.as_str().to_owned(), e.to))
                    .collect();
                assert_eq!(got, want, "{name} {wanted:?}");
            }
        }
    }

    /// Outgoing edges read through the short-list path (at most [`KEYED`] edges,
    /// sorted by integer keys made from the first 22 bytes of each target's name)
    /// agree with the model's key order and with the general path's answer
    /// (both directions, from which the outgoing half is taken) for targets whose
    /// names tie on those 22 bytes, end at or around them, hold multibyte
    /// characters, and for lists growing past [`KEYED`] and past the list size
    /// into a map, with and without a relation filter; every edge whole (its
    /// content as `get_edge` gives it).
    #[test]
    fn short_outgoing_lists_read_by_keys_agree_with_the_model_and_the_general_path() {
        let a = "a".repeat(22);
        let p = "p".repeat(30);
        let targets: Vec<String> = vec![
            "n1".into(),
            "n10".into(),
            "n2".into(),
            "a".repeat(21),
            a.clone(),
            "a".repeat(23),
            format!("{a}b"),
            format!("{a}a"),
            format!("{}b", "a".repeat(21)),
            "é".repeat(11),
            "é".repeat(12),
            "ü€😀".into(),
            format!("{p}1"),
            format!("{p}0"),
            "p".repeat(22),
            "p".repeat(21),
            "a b".into(),
            "Z".into(),
        ];
        let relations: Vec<RelationType> = ["zeta", "calls", "alpha", "depends_on"]
            .iter()
            .map(|r| RelationType::parse(r).unwrap())
            .collect();
        let sources = ["hub", "s1", "s2"];
        let mut state = GraphState::new();
        for name in targets.iter().map(String::as_str).chain(sources) {
            state.put_node(Node::new(name, "thing").unwrap());
        }
        let mut next = lcg(5);
        let mut model: std::collections::BTreeMap<(String, String, String), f64> =
            Default::default();
        let key_of = |e: &Edge| {
            (
                e.from.clone(),
                e.relation_type.as_str().to_owned(),
                e.to.clone(),
            )
        };
        let check =
            |state: &GraphState,
             model: &std::collections::BTreeMap<(String, String, String), f64>| {
                for from in sources {
                    for wanted in [None, Some(&relations[1]), Some(&relations[3])] {
                        let filter = wanted.map(std::slice::from_ref).unwrap_or(&[]);
                        let want: Vec<((String, String, String), f64)> = model
                            .iter()
                            .filter(|((f, r, _), _)| {
                                f == from && wanted.is_none_or(|w| w.as_str() == r)
                            })
                            .map(|(k, w)| (k.clone(), *w))
                            .collect();
                        let got = state.edges_of(from, Direction::Out, filter).unwrap();
                        let listed: Vec<((String, String, String), f64)> =
                            got.iter().map(|e| (key_of(e), e.metadata.weight)).collect();
                        assert_eq!(listed, want, "{from} {wanted:?}");
                        // The general path: both directions, the edges leaving `from`.
                        let general: Vec<Edge> = state
                            .edges_of(from, Direction::Both, filter)
                            .unwrap()
                            .into_iter()
                            .filter(|e| e.from == from)
                            .collect();
                        assert_eq!(got, general, "{from} {wanted:?}");
                        for edge in &got {
                            assert_eq!(Some(edge), state.get_edge(&edge.key()).unwrap().as_ref());
                        }
                        let names = state.neighbour_names(from, Direction::Out, filter).unwrap();
                        let tos: Vec<String> = got.iter().map(|e| e.to.clone()).collect();
                        assert_eq!(names, Some(tos));
                    }
                }
            };
        // Edges one at a time: the hub's list grows past KEYED and past the list
        // size into a map (targets × relations = 72 ends, a map past 64: checked
        // below); s1 and s2 grow past KEYED more slowly (the short path is read
        // by the early checks).
        for step in 0..400 {
            let from = sources[if step % 4 == 0 { 1 + next(2) } else { 0 }];
            let to = &targets[next(targets.len() as u64)];
            let rel = &relations[next(relations.len() as u64)];
            let weight = next(1000) as f64;
            state.put_edge(
                Edge::new(from, rel.clone(), to.as_str())
                    .unwrap()
                    .with_weight(weight),
            );
            model.insert(
                (from.to_owned(), rel.as_str().to_owned(), to.clone()),
                weight,
            );
            if step % 5 == 0 {
                check(&state, &model);
            }
        }
        check(&state, &model);
        let hub = model.keys().filter(|(f, _, _)| f == "hub").count();
        assert!(hub > 64, "the hub's list never became a map ({hub} ends)");
    }

    /// The state keeps one copy of each custom relation's name and hands out
    /// clones of it: reading edges allocates no relation name (every edge of the
    /// peers workload has a custom relation).
    #[test]
    fn edges_read_share_the_states_one_copy_of_a_custom_relation() {
        let shared = |r: &RelationType| match r {
            RelationType::Custom(name) => Arc::clone(name),
            other => panic!("not custom: {other:?}"),
        };
        let mut state = GraphState::new();
        for name in ["a", "b", "c"] {
            state.put_node(Node::new(name, "thing").unwrap());
        }
        // Each edge brings its own copy of the name; the state keeps the first.
        for to in ["b", "c"] {
            let rel = RelationType::parse("rel0").unwrap();
            state.put_edge(Edge::new("a", rel, to).unwrap());
        }
        let first = state.edges_of("a", Direction::Out, &[]).unwrap();
        let again = state.edges_of("b", Direction::In, &[]).unwrap();
        let kept = shared(&first[0].relation_type);
        assert!(Arc::ptr_eq(&kept, &shared(&first[1].relation_type)));
        assert!(Arc::ptr_eq(&kept, &shared(&again[0].relation_type)));
        assert_eq!(first.len(), 2);
        assert_eq!(kept.as_ref(), "rel0");
    }
}
