//! The in-memory backend: the reference model every other backend is compared with.
//!
//! The whole graph lives in persistent (structurally shared) ordered maps, so a
//! snapshot is one reference-counted pointer: readers never wait, and a write
//! transaction works on its own cheap copy that replaces the current state at
//! commit. One writer at a time.

mod adjacency;
mod graph;
mod name;

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend::{Backend, Problem, ReadTxn, WriteTxn};
use crate::documents::{DocWrite, MemoryDocs};
use crate::error::{Error, Result};
use crate::events::EventLogWrite;
use crate::model::{Edge, EdgeKey, Node};
use crate::schema::SchemaTarget;

pub use graph::GraphState;
use graph::PreparedNode;

/// Implements [`ReadTxn`] for a type by forwarding every plain read to one of its
/// fields (a [`GraphState`], say), so that backends keeping their indexes in
/// memory need not repeat the forwarding. With `events`, the reads of the field's
/// event log ([`GraphState::event_state`]) are forwarded too — for a backend that
/// also writes events, through [`WriteTxn::events_mut`](crate::WriteTxn::events_mut);
/// a plain [`GraphState`] keeps no events of its own as a [`ReadTxn`]. With
/// `documents: field`, the type's documents are that field's (a
/// [`DocRead`](crate::documents::DocRead)). Instead of a field, `fn method` forwards
/// to what `self.method()` returns (a `&GraphState` made on demand, say); then
/// `schemas: fn other` sends the reads of the schemas and the events to what
/// `self.other()` returns instead (a state that holds them already while the
/// nodes and edges are still being gathered, say).
///
/// ```ignore
/// kgstore_core::delegate_read_txn!(MyWriteTxn<'_>, state);
/// kgstore_core::delegate_read_txn!(MyReadTxn, state, events);
/// kgstore_core::delegate_read_txn!(MyWriteTxn<'_>, state, events, documents: docs);
/// kgstore_core::delegate_read_txn!(MyWriteTxn<'_>, fn view, events, documents: docs);
/// kgstore_core::delegate_read_txn!(MyWriteTxn<'_>, fn view, schemas: fn settled, events);
/// ```
#[macro_export]
macro_rules! delegate_read_txn {
    ($ty:ty, fn $method:ident, schemas: fn $settled:ident $($rest:tt)*) => {
        $crate::delegate_read_txn!(@arms $ty, [this => this.$method(), this.$settled()] $($rest)*);
    };
    ($ty:ty, fn $method:ident $($rest:tt)*) => {
        $crate::delegate_read_txn!(@arms $ty, [this => this.$method(), this.$method()] $($rest)*);
    };
    ($ty:ty, $field:ident $($rest:tt)*) => {
        $crate::delegate_read_txn!(@arms $ty, [this => &this.$field, &this.$field] $($rest)*);
    };
    (@arms $ty:ty, [$this:ident => $get:expr, $settled:expr], events, documents: $docs:ident) => {
        $crate::delegate_read_txn!(@impl $ty, [$this => $get, $settled],
            fn events(&self) -> Option<&dyn $crate::events::EventLogRead> {
                let $this = self;
                Some(($settled).event_state())
            }
            fn documents(&self) -> Option<&dyn $crate::documents::DocRead> {
                Some(&self.$docs)
            }
        );
    };
    (@arms $ty:ty, [$this:ident => $get:expr, $settled:expr], events) => {
        $crate::delegate_read_txn!(@impl $ty, [$this => $get, $settled],
            fn events(&self) -> Option<&dyn $crate::events::EventLogRead> {
                let $this = self;
                Some(($settled).event_state())
            }
        );
    };
    (@arms $ty:ty, [$this:ident => $get:expr, $settled:expr], documents: $docs:ident) => {
        $crate::delegate_read_txn!(@impl $ty, [$this => $get, $settled],
            fn documents(&self) -> Option<&dyn $crate::documents::DocRead> {
                Some(&self.$docs)
            }
        );
    };
    (@arms $ty:ty, [$this:ident => $get:expr, $settled:expr]) => {
        $crate::delegate_read_txn!(@impl $ty, [$this => $get, $settled],);
    };
    (@impl $ty:ty, [$this:ident => $get:expr, $settled:expr], $($extra:item)*) => {
        impl $crate::ReadTxn for $ty {
            $($extra)*
            fn get_node(&self, name: &str) -> $crate::Result<Option<$crate::Node>> {
                $crate::ReadTxn::get_node({ let $this = self; $get }, name)
            }
            fn get_edge(&self, key: &$crate::EdgeKey) -> $crate::Result<Option<$crate::Edge>> {
                $crate::ReadTxn::get_edge({ let $this = self; $get }, key)
            }
            fn scan_nodes(
                &self,
                filter: &$crate::NodeFilter,
                after: Option<&str>,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::Node>> {
                $crate::ReadTxn::scan_nodes({ let $this = self; $get }, filter, after, limit)
            }
            fn scan_edges(
                &self,
                filter: &$crate::EdgeFilter,
                after: Option<&$crate::EdgeKey>,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::Edge>> {
                $crate::ReadTxn::scan_edges({ let $this = self; $get }, filter, after, limit)
            }
            fn edges_of(
                &self,
                name: &str,
                direction: $crate::Direction,
                relations: &[$crate::RelationType],
            ) -> $crate::Result<Vec<$crate::Edge>> {
                $crate::ReadTxn::edges_of({ let $this = self; $get }, name, direction, relations)
            }
            fn edges_of_node(
                &self,
                name: &str,
                direction: $crate::Direction,
                relations: &[$crate::RelationType],
            ) -> $crate::Result<Option<Vec<$crate::Edge>>> {
                $crate::ReadTxn::edges_of_node({ let $this = self; $get }, name, direction, relations)
            }
            fn neighbour_names(
                &self,
                name: &str,
                direction: $crate::Direction,
                relations: &[$crate::RelationType],
            ) -> $crate::Result<Option<Vec<String>>> {
                $crate::ReadTxn::neighbour_names({ let $this = self; $get }, name, direction, relations)
            }
            fn reach(
                &self,
                start: &str,
                options: &$crate::ReachOptions,
            ) -> $crate::Result<Option<Vec<String>>> {
                $crate::ReadTxn::reach({ let $this = self; $get }, start, options)
            }
            fn reach_count(
                &self,
                start: &str,
                options: &$crate::ReachOptions,
            ) -> $crate::Result<Option<u64>> {
                $crate::ReadTxn::reach_count({ let $this = self; $get }, start, options)
            }
            fn traverse(
                &self,
                start: &str,
                options: &$crate::TraverseOptions,
            ) -> $crate::Result<Vec<$crate::Visit>> {
                $crate::ReadTxn::traverse({ let $this = self; $get }, start, options)
            }
            fn traverse_node(
                &self,
                start: &str,
                options: &$crate::TraverseOptions,
            ) -> $crate::Result<Option<Vec<$crate::Visit>>> {
                $crate::ReadTxn::traverse_node({ let $this = self; $get }, start, options)
            }
            fn dependents_of(&self, name: &str) -> $crate::Result<Vec<String>> {
                $crate::ReadTxn::dependents_of({ let $this = self; $get }, name)
            }
            fn count_nodes(&self) -> $crate::Result<u64> {
                $crate::ReadTxn::count_nodes({ let $this = self; $get })
            }
            fn count_edges(&self) -> $crate::Result<u64> {
                $crate::ReadTxn::count_edges({ let $this = self; $get })
            }
            fn get_schema(
                &self,
                target: &$crate::SchemaTarget,
            ) -> $crate::Result<Option<$crate::serde_json::Value>> {
                $crate::ReadTxn::get_schema({ let $this = self; $settled }, target)
            }
            fn list_schemas(
                &self,
            ) -> $crate::Result<Vec<($crate::SchemaTarget, $crate::serde_json::Value)>> {
                $crate::ReadTxn::list_schemas({ let $this = self; $settled })
            }
            fn has_schemas(&self) -> $crate::Result<bool> {
                $crate::ReadTxn::has_schemas({ let $this = self; $settled })
            }
            fn contains_node(&self, name: &str) -> $crate::Result<bool> {
                $crate::ReadTxn::contains_node({ let $this = self; $get }, name)
            }
            fn contains_edge(&self, key: &$crate::EdgeKey) -> $crate::Result<bool> {
                $crate::ReadTxn::contains_edge({ let $this = self; $get }, key)
            }
            fn search_terms(
                &self,
                terms: &$crate::search::TermQuery,
            ) -> $crate::Result<$crate::search::TermMatches<'_>> {
                $crate::ReadTxn::search_terms({ let $this = self; $get }, terms)
            }
            fn search_names(&self, rows: &[i64]) -> $crate::Result<Vec<String>> {
                $crate::ReadTxn::search_names({ let $this = self; $get }, rows)
            }
            fn search_infix(&self, fragment: &str) -> $crate::Result<Vec<String>> {
                $crate::ReadTxn::search_infix({ let $this = self; $get }, fragment)
            }
        }
    };
}

/// First come, first served admission of one holder at a time, as tickets: waiters
/// enter in the order they arrived, so a thread that leaves and asks again at once
/// cannot overtake those already waiting. An unfair lock lets it, and under load a
/// waiter can then lose every race for seconds and fail with its lock timeout while
/// the others go on (it made `backup_while_writers_commit_is_one_instant_on_sqlite`
/// flaky). Kept under the caller's mutex; whoever makes it free or gives up a ticket
/// wakes every waiter (each checks whether it is its turn).
#[derive(Debug, Default)]
pub struct Turns {
    busy: bool,
    next: u64,
    serving: u64,
    /// Tickets of waiters that gave up (timed out) before their turn.
    abandoned: std::collections::BTreeSet<u64>,
}

impl Turns {
    /// Takes a place in line.
    pub fn ticket(&mut self) -> u64 {
        let ticket = self.next;
        self.next += 1;
        ticket
    }

    /// Whether the holder of `ticket` may enter now: nobody is inside and it is its turn.
    pub fn may_enter(&self, ticket: u64) -> bool {
        !self.busy && self.serving == ticket
    }

    /// Enters with `ticket`; `false` (and nothing changes) if it is not its turn.
    pub fn enter(&mut self, ticket: u64) -> bool {
        if !self.may_enter(ticket) {
            return false;
        }
        self.busy = true;
        self.serving += 1;
        self.skip_abandoned();
        true
    }

    /// Whether someone is inside.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Leaves; the caller then wakes the waiters (if [`Turns::has_waiters`]).
    pub fn leave(&mut self) {
        self.busy = false;
    }

    /// Whether a ticket was taken that has not had its turn yet (its holder waits,
    /// or gave up and is still to be skipped).
    pub fn has_waiters(&self) -> bool {
        self.next > self.serving
    }

    /// Gives up `ticket` (its waiter timed out); the caller then wakes the waiters,
    /// as the next one's turn may have come.
    pub fn abandon(&mut self, ticket: u64) {
        if ticket >= self.serving {
            self.abandoned.insert(ticket);
        }
        self.skip_abandoned();
    }

    fn skip_abandoned(&mut self) {
        while self.abandoned.remove(&self.serving) {
            self.serving += 1;
        }
    }
}

/// Admits one writer at a time, in one process, in the order they came (see
/// [`Turns`]); others wait (up to a timeout).
/// The memory backend's writer gate, also used by backends that need the same: the
/// JSON-files and git backends put one in front of their cross-process lock, so
/// that the threads of one process queue here and only one of them waits for the
/// other processes.
///
/// ```
/// use std::time::Duration;
/// use kgstore_core::{ErrorKind, memory::Gate};
///
/// let gate = Gate::default();
/// let first = gate.enter(None, "the store")?;
/// let err = gate.enter(Some(Duration::from_millis(10)), "the store").err().unwrap();
/// assert_eq!(err.kind(), ErrorKind::Locked);
/// assert!(gate.try_enter().is_none());
/// drop(first);
/// let _second = gate.enter(Some(Duration::ZERO), "the store")?;
/// assert!(gate.try_enter().is_none());
/// # Ok::<(), kgstore_core::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Gate {
    turns: Mutex<Turns>,
    freed: Condvar,
}

/// A writer admitted by a [`Gate`]; the next one is let in when it is dropped.
#[derive(Debug)]
pub struct GateGuard<'a>(&'a Gate);

impl Gate {
    fn lock(&self) -> MutexGuard<'_, Turns> {
        self.turns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits (up to `timeout`; for ever if `None`) until every writer that came
    /// before has been in and left, then enters. On timeout: [`Error::Locked`]
    /// naming `resource`.
    pub fn enter(&self, timeout: Option<Duration>, resource: &str) -> Result<GateGuard<'_>> {
        let mut turns = self.lock();
        let ticket = turns.ticket();
        if turns.enter(ticket) {
            return Ok(GateGuard(self));
        }
        drop(turns);
        crate::observe::timed_wait(
            &resource,
            "another write transaction of this process",
            || self.wait(ticket, timeout, resource),
        )
    }

    /// The slow path of [`Gate::enter`]: waits for `ticket`'s turn.
    fn wait(
        &self,
        ticket: u64,
        timeout: Option<Duration>,
        resource: &str,
    ) -> Result<GateGuard<'_>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut turns = self.lock();
        while !turns.enter(ticket) {
            turns = match deadline {
                None => self
                    .freed
                    .wait(turns)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        turns.abandon(ticket);
                        drop(turns);
                        self.freed.notify_all();
                        return Err(Error::Locked {
                            resource: resource.into(),
                            holder: Some("another write transaction".into()),
                        });
                    }
                    self.freed
                        .wait_timeout(turns, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        Ok(GateGuard(self))
    }

    /// Enters if no other writer is inside or waiting; `None` otherwise.
    pub fn try_enter(&self) -> Option<GateGuard<'_>> {
        let mut turns = self.lock();
        let ticket = turns.ticket();
        if turns.enter(ticket) {
            return Some(GateGuard(self));
        }
        turns.abandon(ticket);
        None
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        let mut turns = self.0.lock();
        turns.leave();
        let waiting = turns.has_waiters();
        drop(turns);
        // Waking costs a system call: only when someone waits.
        if waiting {
            self.0.freed.notify_all();
        }
    }
}

/// Everything the memory backend holds: the graph and the documents.
#[derive(Clone, Default)]
struct MemoryState {
    graph: GraphState,
    docs: MemoryDocs,
}

/// The in-memory backend. Not persistent; the reference for every other backend.
#[derive(Default)]
pub struct MemoryBackend {
    current: RwLock<MemoryState>,
    gate: Gate,
    lock_timeout: Option<Duration>,
}

impl MemoryBackend {
    /// An empty memory backend whose writers wait for each other as long as needed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A memory backend holding `state` (a snapshot copied out of another store, say).
    pub fn from_state(state: GraphState) -> Self {
        Self {
            current: RwLock::new(MemoryState {
                graph: state,
                docs: MemoryDocs::default(),
            }),
            ..Self::default()
        }
    }

    /// Makes a writer that waits longer than `timeout` for another fail with [`Error::Locked`].
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// A write transaction: waits for its turn, starts from the committed state.
    fn write_txn(&self) -> Result<MemoryWrite<'_>> {
        let guard = self.gate.enter(self.lock_timeout, "the memory store")?;
        let MemoryState { graph, docs } = self.snapshot();
        Ok(MemoryWrite {
            backend: self,
            state: graph,
            docs,
            own: false,
            pending: Held::default(),
            view: OnceLock::new(),
            bulk: None,
            _guard: guard,
        })
    }

    /// The committed state (a cheap, structure-sharing copy).
    fn snapshot(&self) -> MemoryState {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        let MemoryState { graph, docs } = self.snapshot();
        Ok(Box::new(MemoryRead { state: graph, docs }))
    }

    /// Two reads of one snapshot: the state is persistent, so the second is a
    /// clone (shared, not copied).
    fn begin_read_pair(
        &self,
    ) -> Result<(Box<dyn ReadTxn + '_>, Option<Box<dyn ReadTxn + Send + '_>>)> {
        let MemoryState { graph, docs } = self.snapshot();
        let second = MemoryRead {
            state: graph.clone(),
            docs: docs.clone(),
        };
        Ok((
            Box::new(MemoryRead { state: graph, docs }),
            Some(Box::new(second)),
        ))
    }

    /// The snapshot is kept on the stack, not boxed.
    fn read_one(&self, read: &mut dyn FnMut(&dyn ReadTxn)) -> Result<()> {
        let MemoryState { graph, docs } = self.snapshot();
        read(&MemoryRead { state: graph, docs });
        Ok(())
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        Ok(Box::new(self.write_txn()?))
    }

    /// The transaction is kept on the stack, not boxed.
    fn write_with(&self, work: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>) -> Result<()> {
        let mut txn = self.write_txn()?;
        work(&mut txn)?;
        txn.finish()
    }

    /// Checks that the incoming-edge and dependents indexes agree with the data.
    fn check(&self) -> Result<Vec<Problem>> {
        Ok(self.snapshot().graph.check_indexes())
    }

    /// Nothing to reorganise in memory.
    fn optimize(&self) -> Result<()> {
        Ok(())
    }
}

/// A snapshot: the state as of the transaction's start.
struct MemoryRead {
    state: GraphState,
    docs: MemoryDocs,
}

/// Writes a transaction holds back instead of applying them to its copy of the
/// state: up to this many, the commit applies them to the committed state itself
/// under the lock (in place, when no snapshot shares it). Past it, the
/// transaction copies as it writes. Readers wait for at most this many puts.
const PENDING_LIMIT: usize = 64;

/// A write held back (see [`MemoryWrite`]).
#[derive(Clone)]
enum Op {
    /// A node put, made ready as the state keeps it (copied once when put by
    /// reference, moved when owned): narrower than a whole [`Node`], so a held
    /// write is cheaper to move about.
    PutPrepared(PreparedNode),
    DeleteNode(String),
    PutEdge(Edge),
    DeleteEdge(EdgeKey),
    PutSchema(SchemaTarget, Value),
    DeleteSchema(SchemaTarget),
}

impl Op {
    fn apply(self, state: &mut GraphState) {
        match self {
            Op::PutPrepared(node) => state.put_prepared(node),
            Op::DeleteNode(name) => {
                state.delete_node(&name);
            }
            Op::PutEdge(edge) => state.put_edge_ref(&edge),
            Op::DeleteEdge(key) => {
                state.delete_edge(&key);
            }
            Op::PutSchema(target, schema) => state.put_schema(target, schema),
            Op::DeleteSchema(target) => {
                state.delete_schema(&target);
            }
        }
    }
}

/// Writes held back by a [`MemoryWrite`], in order: a first write that puts a
/// node in place, every other in a list, so that a one-node transaction (a
/// single `create_node`) allocates no list and frees none (a first push
/// allocates room for four `Op`s, each as wide as an [`Edge`]) and carries a
/// [`PreparedNode`], not a whole `Op`, in the transaction it moves about.
#[derive(Default)]
struct Held {
    /// The first write, when it puts a node (then it comes before `rest`).
    first: Option<PreparedNode>,
    /// The writes after `first`, or all of them if the first put no node.
    rest: Vec<Op>,
}

impl Held {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    fn push(&mut self, op: Op) {
        match op {
            Op::PutPrepared(node) if self.is_empty() => self.first = Some(node),
            op => self.rest.push(op),
        }
    }

    /// Applies the writes to `state`, in order.
    fn apply(self, state: &mut GraphState) {
        if let Some(node) = self.first {
            state.put_prepared(node);
        }
        for op in self.rest {
            op.apply(state);
        }
    }

    /// Applies copies of the writes to `state`, in order (they stay held).
    fn apply_copies(&self, state: &mut GraphState) {
        if let Some(node) = &self.first {
            state.put_prepared(node.clone());
        }
        for op in &self.rest {
            op.clone().apply(state);
        }
    }
}

/// The write transaction.
///
/// It starts from the committed state, shared (a snapshot). A small transaction
/// holds its writes back in `pending` and the commit applies them to the
/// committed state under the lock: when no reader holds a snapshot, the
/// persistent maps are then changed in place, where writing to the shared copy
/// would copy the path to every entry it touches (and the commit would free the
/// old paths). A read that must see the held-back writes makes the transaction's
/// own copy with them applied (`view`), and from then on, or past
/// [`PENDING_LIMIT`] writes, or when the events or documents are written, the
/// transaction writes to its own copy (`own`), which the commit installs whole.
struct MemoryWrite<'a> {
    backend: &'a MemoryBackend,
    /// The committed state as the transaction found it; once `own`, the
    /// transaction's copy with all its writes.
    state: GraphState,
    docs: MemoryDocs,
    /// Whether `state` is the transaction's own copy.
    own: bool,
    /// Writes not applied to `state` yet (never once `own`).
    pending: Held,
    /// `state` with `pending` (or `bulk`) applied, made by the first read that needs it.
    view: OnceLock<GraphState>,
    /// A bulk import's nodes and edges, collected until it ends (see [`Loaded`]);
    /// behind a pointer, as most transactions are no bulk import.
    bulk: Option<Box<Loaded>>,
    _guard: GateGuard<'a>,
}

/// The nodes and edges of a bulk import
/// ([`WriteTxn::bulk_load_begin`]), collected as they come and put into the
/// transaction's own copy of the state (empty of nodes and edges) at once when
/// it ends, by [`GraphState::load`]: each table is then built once from sorted
/// input instead of one persistent-map insert per item. Any other write or
/// edge put after a read that had to see them ends the collecting early
/// (putting what was collected), so that every write and read stays what it
/// would be without it.
#[derive(Default)]
struct Loaded {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

impl MemoryWrite<'_> {
    /// What the transaction's reads see: its state with every write applied.
    fn view(&self) -> &GraphState {
        if let Some(bulk) = &self.bulk {
            if bulk.nodes.is_empty() && bulk.edges.is_empty() {
                return &self.state;
            }
            // A read in the middle of a bulk import (the store makes none on the
            // graph): the collected items put into a copy.
            return self.view.get_or_init(|| {
                self.state
                    .clone()
                    .load(bulk.nodes.clone(), bulk.edges.clone())
            });
        }
        if self.pending.is_empty() {
            return &self.state;
        }
        self.view.get_or_init(|| {
            let mut view = self.state.clone();
            self.pending.apply_copies(&mut view);
            view
        })
    }

    /// What reads of the schemas and the events see: they never wait for the
    /// items a bulk import collects (which are only nodes and edges).
    fn settled(&self) -> &GraphState {
        if self.bulk.is_some() {
            &self.state
        } else {
            self.view()
        }
    }

    /// Puts the items a bulk import collected into the transaction's own copy
    /// and stops collecting.
    fn settle(&mut self) {
        if let Some(loaded) = self.bulk.take() {
            let Loaded { nodes, edges } = *loaded;
            // A read's copy has them already.
            self.state = match self.view.take() {
                Some(view) => view,
                None => std::mem::take(&mut self.state).load(nodes, edges),
            };
        }
    }

    /// Where a bulk import's put goes: its collection, unless a read saw what it
    /// holds (then it is put now, and so is everything after).
    fn collecting(&mut self) -> Option<&mut Loaded> {
        if self.view.get().is_some() {
            self.settle();
        }
        self.bulk.as_deref_mut()
    }

    /// The transaction's own copy of the state, with every write applied.
    fn own_state(&mut self) -> &mut GraphState {
        self.settle();
        if !self.own {
            match self.view.take() {
                Some(view) => self.state = view,
                None => {
                    std::mem::take(&mut self.pending).apply(&mut self.state);
                }
            }
            self.pending = Held::default();
            self.own = true;
        }
        &mut self.state
    }

    /// Applies `op` to the transaction's own copy, or holds it back.
    fn write(&mut self, op: Op) {
        self.settle();
        if self.own || self.view.get().is_some() || self.pending.len() >= PENDING_LIMIT {
            op.apply(self.own_state());
        } else {
            self.pending.push(op);
        }
    }
}

crate::delegate_read_txn!(MemoryRead, state, events, documents: docs);
crate::delegate_read_txn!(MemoryWrite<'_>, fn view, schemas: fn settled, events, documents: docs);

impl WriteTxn for MemoryWrite<'_> {
    fn put_node(&mut self, node: &Node) -> Result<()> {
        if let Some(bulk) = self.collecting() {
            bulk.nodes.push(node.clone());
        } else if self.own {
            self.state.put_node_ref(node);
        } else {
            let node = self.state.prepare_node(node);
            self.write(Op::PutPrepared(node));
        }
        Ok(())
    }

    fn put_nodes(&mut self, nodes: &[Node]) -> Result<()> {
        if let Some(bulk) = self.collecting() {
            bulk.nodes.extend_from_slice(nodes);
            return Ok(());
        }
        nodes.iter().try_for_each(|node| self.put_node(node))
    }

    /// Collected as given during a bulk load; otherwise moved into the state
    /// (or held back) without a copy.
    fn put_owned_nodes(&mut self, nodes: Vec<Node>) -> Result<()> {
        if let Some(bulk) = self.collecting() {
            bulk.nodes.extend(nodes);
            return Ok(());
        }
        if !self.own && self.pending.len() + nodes.len() <= PENDING_LIMIT {
            for node in nodes {
                let node = self.state.prepare_owned(node);
                self.write(Op::PutPrepared(node));
            }
            return Ok(());
        }
        let state = self.own_state();
        nodes.into_iter().for_each(|node| state.put_node(node));
        Ok(())
    }

    fn delete_node(&mut self, name: &str) -> Result<bool> {
        if !self.view().contains_node(name)? {
            return Ok(false);
        }
        self.write(Op::DeleteNode(name.to_owned()));
        Ok(true)
    }

    fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        if let Some(bulk) = self.collecting() {
            bulk.edges.push(edge.clone());
        } else if self.own {
            self.state.put_edge_ref(edge);
        } else {
            self.write(Op::PutEdge(edge.clone()));
        }
        Ok(())
    }

    /// A batch that would pass [`PENDING_LIMIT`] goes to the transaction's own
    /// copy at once, in one [`GraphState::put_edges`].
    fn put_edges(&mut self, edges: &[Edge]) -> Result<()> {
        if let Some(bulk) = self.collecting() {
            bulk.edges.extend_from_slice(edges);
            return Ok(());
        }
        if !self.own && self.pending.len() + edges.len() <= PENDING_LIMIT {
            return edges.iter().try_for_each(|edge| self.put_edge(edge));
        }
        self.own_state().put_edges(edges);
        Ok(())
    }

    /// Collected as given during a bulk load.
    fn put_owned_edges(&mut self, edges: Vec<Edge>) -> Result<()> {
        if let Some(bulk) = self.collecting() {
            bulk.edges.extend(edges);
            return Ok(());
        }
        self.put_edges(&edges)
    }

    /// Starts collecting the import's nodes and edges (see [`Loaded`]), on the
    /// transaction's own copy of the state.
    fn bulk_load_begin(&mut self) -> Result<()> {
        self.own_state();
        self.bulk = Some(Box::default());
        Ok(())
    }

    /// Builds the state with the collected nodes and edges at once.
    fn bulk_load_end(&mut self) -> Result<()> {
        self.settle();
        Ok(())
    }

    fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        if !self.view().contains_edge(key)? {
            return Ok(false);
        }
        self.write(Op::DeleteEdge(key.clone()));
        Ok(true)
    }

    fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        self.write(Op::PutSchema(target.clone(), schema.clone()));
        Ok(())
    }

    fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        if self.view().get_schema(target)?.is_none() {
            return Ok(false);
        }
        self.write(Op::DeleteSchema(target.clone()));
        Ok(true)
    }

    fn events_mut(&mut self) -> Option<&mut dyn EventLogWrite> {
        Some(self.own_state().event_state_mut())
    }

    fn documents_mut(&mut self) -> Option<&mut dyn DocWrite> {
        Some(&mut self.docs)
    }

    fn commit(self: Box<Self>) -> Result<()> {
        (*self).finish()
    }
}

impl MemoryWrite<'_> {
    /// Commits: installs the transaction's state, or applies its held-back
    /// writes to the committed state.
    fn finish(mut self) -> Result<()> {
        self.settle();
        let MemoryWrite {
            backend,
            state,
            docs,
            own,
            pending,
            view,
            bulk: _,
            _guard,
        } = self;
        if own || pending.is_empty() {
            install(backend, state, docs);
            return Ok(());
        }
        if let Some(view) = view.into_inner() {
            // A read made the copy with the writes already.
            install(backend, view, docs);
            return Ok(());
        }
        // Let go of the transaction's share of the committed state first, so that
        // the writes below change it in place unless a snapshot holds it.
        drop(state);
        let mut current = backend
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        pending.apply(&mut current.graph);
        let old_docs = std::mem::replace(&mut current.docs, docs);
        drop(current);
        // The documents' old version goes outside the lock.
        drop(old_docs);
        Ok(())
    }
}

/// Makes `graph` and `docs` the committed state.
fn install(backend: &MemoryBackend, graph: GraphState, docs: MemoryDocs) {
    let old = std::mem::replace(
        &mut *backend
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner),
        MemoryState { graph, docs },
    );
    // The old state is freed (or its last share given up) outside the lock.
    drop(old);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::Arc;

    fn node(name: &str, n: u64) -> Node {
        let mut node = Node::new(name, "thing").unwrap();
        node.attributes.insert("n".into(), n.into());
        node
    }

    fn names(txn: &dyn ReadTxn) -> Vec<(String, Value)> {
        txn.scan_nodes(&crate::NodeFilter::default(), None, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|n| (n.name, n.attributes["n"].clone()))
            .collect()
    }

    /// Every way a write transaction holds its writes (held back and applied in
    /// place at commit; a copy made by a read that must see them; its own copy past
    /// the limit or once events are written) reads its own writes, commits exactly
    /// them, rolls back to nothing, and leaves snapshots as they were, checked
    /// against a plain state that applies every write at once.
    #[test]
    fn held_back_writes_read_commit_and_roll_back_like_direct_ones() {
        let backend = MemoryBackend::new();
        let mut model = GraphState::new();
        let mut rng = 7u64;
        let mut next = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rng >> 33
        };
        for round in 0..60u64 {
            let before = backend.begin_read().unwrap();
            let seen = names(&*before);
            let mut txn = backend.begin_write().unwrap();
            let mut expected = model.clone();
            // Small rounds stay held back; every fifth passes the limit.
            let writes = if round % 5 == 4 {
                PENDING_LIMIT as u64 + 10
            } else {
                next() % 6 + 1
            };
            for w in 0..writes {
                let name = format!("n{:02}", next() % 40);
                match next() % 4 {
                    0 => {
                        let existed = expected.delete_node(&name).is_some();
                        assert_eq!(txn.delete_node(&name).unwrap(), existed);
                    }
                    1 if round % 7 == 3 => {
                        // A read in between: it sees the writes so far.
                        assert_eq!(names(&*txn), names(&expected));
                    }
                    _ => {
                        let node = node(&name, round * 1000 + w);
                        expected.put_node_ref(&node);
                        txn.put_node(&node).unwrap();
                    }
                }
                if round % 11 == 10 && w == 0 {
                    txn.events_mut().unwrap();
                }
            }
            if round % 3 == 0 {
                assert_eq!(names(&*txn), names(&expected));
            }
            if round % 6 == 5 {
                drop(txn);
            } else {
                txn.commit().unwrap();
                model = expected;
            }
            assert_eq!(names(&*before), seen, "a snapshot never changes");
            let after = backend.begin_read().unwrap();
            assert_eq!(names(&*after), names(&model), "round {round}");
        }
        assert!(backend.check().unwrap().is_empty());
    }

    fn edge(from: &str, to: &str, n: u64) -> Edge {
        let mut edge = Edge::new(from, crate::RelationType::Calls, to).unwrap();
        edge.attributes.insert("n".into(), n.into());
        edge
    }

    fn everything(txn: &dyn ReadTxn) -> (Vec<Node>, Vec<Edge>, Vec<(SchemaTarget, Value)>) {
        (
            txn.scan_nodes(&crate::NodeFilter::default(), None, usize::MAX)
                .unwrap(),
            txn.scan_edges(&crate::EdgeFilter::default(), None, usize::MAX)
                .unwrap(),
            txn.list_schemas().unwrap(),
        )
    }

    /// A bulk load collects its nodes and edges and builds the state at its end;
    /// whatever comes in between (a read of the graph, of the schemas, of the
    /// events; another kind of write; no end at all before the commit) sees and
    /// keeps exactly what putting them one by one gives, and a rollback leaves
    /// nothing.
    #[test]
    fn a_bulk_load_reads_and_commits_like_puts_one_by_one() {
        let schema = (
            SchemaTarget::NodeType("thing".into()),
            serde_json::json!({}),
        );
        for case in 0..6 {
            let backend = MemoryBackend::new();
            let mut setup = backend.begin_write().unwrap();
            setup.put_schema(&schema.0, &schema.1).unwrap();
            // A graph emptied again: its relation and ids stay interned.
            setup.put_node(&node("gone", 0)).unwrap();
            setup.put_edge(&edge("gone", "gone", 0)).unwrap();
            setup.delete_edge(&edge("gone", "gone", 0).key()).unwrap();
            setup.delete_node("gone").unwrap();
            setup.commit().unwrap();
            let snapshot = backend.begin_read().unwrap();
            let mut expected = GraphState::new();
            expected.put_schema(schema.0.clone(), schema.1.clone());
            let mut txn = backend.begin_write().unwrap();
            txn.bulk_load_begin().unwrap();
            assert_eq!(txn.list_schemas().unwrap(), vec![schema.clone()]);
            let nodes: Vec<Node> = (0..300).map(|i| node(&format!("n{i:03}"), i)).collect();
            let edges: Vec<Edge> = (0..300)
                .flat_map(|i| [(i, (i * 7) % 300), (i, (i * 13 + 1) % 300)])
                .map(|(f, t)| edge(&format!("n{f:03}"), &format!("n{t:03}"), f + t))
                .collect();
            for (i, chunk) in nodes.chunks(100).enumerate() {
                txn.put_nodes(chunk).unwrap();
                chunk.iter().for_each(|n| expected.put_node_ref(n));
                if case == 1 && i == 1 {
                    assert_eq!(everything(&*txn), everything(&expected));
                }
            }
            assert_eq!(txn.get_schema(&schema.0).unwrap(), Some(schema.1.clone()));
            for (i, chunk) in edges.chunks(150).enumerate() {
                txn.put_edges(chunk).unwrap();
                expected.put_edges(chunk);
                if case == 2 && i == 0 {
                    assert_eq!(txn.count_edges().unwrap(), 150);
                    assert_eq!(everything(&*txn), everything(&expected));
                }
                if case == 3 && i == 1 {
                    txn.put_node(&node("n005", 99)).unwrap();
                    expected.put_node_ref(&node("n005", 99));
                }
            }
            if case == 4 {
                txn.events_mut().unwrap();
            }
            if case != 5 {
                txn.bulk_load_end().unwrap();
            }
            assert_eq!(everything(&*txn), everything(&expected), "case {case}");
            if case == 0 {
                drop(txn);
                let after = backend.begin_read().unwrap();
                assert_eq!(after.count_nodes().unwrap(), 0);
                continue;
            }
            txn.commit().unwrap();
            assert_eq!(
                snapshot.count_nodes().unwrap(),
                0,
                "a snapshot never changes"
            );
            let after = backend.begin_read().unwrap();
            assert_eq!(everything(&*after), everything(&expected), "case {case}");
            assert!(backend.check().unwrap().is_empty(), "case {case}");
            // And the store goes on as usual.
            let mut more = backend.begin_write().unwrap();
            more.delete_edge(&edges[0].key()).unwrap();
            more.put_edge(&edge("n001", "new", 1)).unwrap();
            more.commit().unwrap();
            expected.delete_edge(&edges[0].key());
            expected.put_edge(edge("n001", "new", 1));
            let after = backend.begin_read().unwrap();
            assert_eq!(everything(&*after), everything(&expected), "case {case}");
            assert!(backend.check().unwrap().is_empty(), "case {case}");
        }
    }

    /// Regression: the writer gates admitted whoever grabbed the mutex first, so a
    /// writer that left and asked again at once overtook those waiting, and under
    /// load one waited past its lock timeout (a flaky backup-while-writing test).
    #[test]
    fn regression_turns_admit_in_arrival_order_and_skip_abandoned_tickets() {
        let mut turns = Turns::default();
        let a = turns.ticket();
        assert!(turns.enter(a));
        let b = turns.ticket();
        assert!(!turns.enter(b), "one holder at a time");
        turns.leave();
        let a_again = turns.ticket();
        assert!(
            !turns.enter(a_again),
            "the one that left does not overtake b"
        );
        assert!(turns.enter(b));
        turns.leave();
        assert!(turns.enter(a_again));
        // A waiter that gives up before its turn does not hold up those behind it.
        let c = turns.ticket();
        let d = turns.ticket();
        turns.abandon(c);
        assert!(!turns.enter(d), "still busy");
        turns.leave();
        assert!(turns.enter(d));
        turns.leave();
        // Giving up when it is already one's turn passes it on too.
        let e = turns.ticket();
        let f = turns.ticket();
        turns.abandon(e);
        assert!(turns.enter(f));
    }

    #[test]
    fn a_gate_lets_a_waiting_writer_in_before_one_that_comes_back() {
        let gate = Arc::new(Gate::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = gate.enter(None, "test").unwrap();
        let waiter = {
            let (gate, order) = (Arc::clone(&gate), Arc::clone(&order));
            std::thread::spawn(move || {
                let _inside = gate.enter(None, "test").unwrap();
                order.lock().unwrap().push("waiter");
            })
        };
        // Until the waiter has its ticket, the gate's next ticket is 1.
        while gate.lock().next < 2 {
            std::thread::yield_now();
        }
        drop(first);
        let again = gate.enter(None, "test").unwrap();
        order.lock().unwrap().push("came back");
        drop(again);
        waiter.join().unwrap();
        assert_eq!(*order.lock().unwrap(), ["waiter", "came back"]);
    }
}
