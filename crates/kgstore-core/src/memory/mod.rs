//! The in-memory backend: the reference model every other backend is compared with.
//!
//! The whole graph lives in persistent (structurally shared) ordered maps, so a
//! snapshot is one reference-counted pointer: readers never wait, and a write
//! transaction works on its own cheap copy that replaces the current state at
//! commit. One writer at a time.

mod adjacency;
mod graph;

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend::{Backend, Problem, ReadTxn, WriteTxn};
use crate::documents::{DocWrite, MemoryDocs};
use crate::error::{Error, Result};
use crate::events::EventLogWrite;
use crate::model::{Edge, EdgeKey, Node};
use crate::schema::SchemaTarget;

pub use graph::GraphState;

/// Implements [`ReadTxn`] for a type by forwarding every plain read to one of its
/// fields (a [`GraphState`], say), so that backends keeping their indexes in
/// memory need not repeat the forwarding. With `events`, the reads of the field's
/// event log ([`GraphState::event_state`]) are forwarded too — for a backend that
/// also writes events, through [`WriteTxn::events_mut`](crate::WriteTxn::events_mut);
/// a plain [`GraphState`] keeps no events of its own as a [`ReadTxn`]. With
/// `documents: field`, the type's documents are that field's (a
/// [`DocRead`](crate::documents::DocRead)).
///
/// ```ignore
/// kgstore_core::delegate_read_txn!(MyWriteTxn<'_>, state);
/// kgstore_core::delegate_read_txn!(MyReadTxn, state, events);
/// kgstore_core::delegate_read_txn!(MyWriteTxn<'_>, state, events, documents: docs);
/// ```
#[macro_export]
macro_rules! delegate_read_txn {
    ($ty:ty, $field:ident, events, documents: $docs:ident) => {
        $crate::delegate_read_txn!(@impl $ty, $field,
            fn events(&self) -> Option<&dyn $crate::events::EventLogRead> {
                Some(self.$field.event_state())
            }
            fn documents(&self) -> Option<&dyn $crate::documents::DocRead> {
                Some(&self.$docs)
            }
        );
    };
    ($ty:ty, $field:ident, events) => {
        $crate::delegate_read_txn!(@impl $ty, $field,
            fn events(&self) -> Option<&dyn $crate::events::EventLogRead> {
                Some(self.$field.event_state())
            }
        );
    };
    ($ty:ty, $field:ident, documents: $docs:ident) => {
        $crate::delegate_read_txn!(@impl $ty, $field,
            fn documents(&self) -> Option<&dyn $crate::documents::DocRead> {
                Some(&self.$docs)
            }
        );
    };
    ($ty:ty, $field:ident) => {
        $crate::delegate_read_txn!(@impl $ty, $field,);
    };
    (@impl $ty:ty, $field:ident, $($extra:item)*) => {
        impl $crate::ReadTxn for $ty {
            $($extra)*
            fn get_node(&self, name: &str) -> $crate::Result<Option<$crate::Node>> {
                $crate::ReadTxn::get_node(&self.$field, name)
            }
            fn get_edge(&self, key: &$crate::EdgeKey) -> $crate::Result<Option<$crate::Edge>> {
                $crate::ReadTxn::get_edge(&self.$field, key)
            }
            fn scan_nodes(
                &self,
                filter: &$crate::NodeFilter,
                after: Option<&str>,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::Node>> {
                $crate::ReadTxn::scan_nodes(&self.$field, filter, after, limit)
            }
            fn scan_edges(
                &self,
                filter: &$crate::EdgeFilter,
                after: Option<&$crate::EdgeKey>,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::Edge>> {
                $crate::ReadTxn::scan_edges(&self.$field, filter, after, limit)
            }
            fn edges_of(
                &self,
                name: &str,
                direction: $crate::Direction,
                relations: &[$crate::RelationType],
            ) -> $crate::Result<Vec<$crate::Edge>> {
                $crate::ReadTxn::edges_of(&self.$field, name, direction, relations)
            }
            fn edges_of_node(
                &self,
                name: &str,
                direction: $crate::Direction,
                relations: &[$crate::RelationType],
            ) -> $crate::Result<Option<Vec<$crate::Edge>>> {
                $crate::ReadTxn::edges_of_node(&self.$field, name, direction, relations)
            }
            fn neighbour_names(
                &self,
                name: &str,
                direction: $crate::Direction,
                relations: &[$crate::RelationType],
            ) -> $crate::Result<Option<Vec<String>>> {
                $crate::ReadTxn::neighbour_names(&self.$field, name, direction, relations)
            }
            fn reach(
                &self,
                start: &str,
                options: &$crate::ReachOptions,
            ) -> $crate::Result<Option<Vec<String>>> {
                $crate::ReadTxn::reach(&self.$field, start, options)
            }
            fn reach_count(
                &self,
                start: &str,
                options: &$crate::ReachOptions,
            ) -> $crate::Result<Option<u64>> {
                $crate::ReadTxn::reach_count(&self.$field, start, options)
            }
            fn traverse(
                &self,
                start: &str,
                options: &$crate::TraverseOptions,
            ) -> $crate::Result<Vec<$crate::Visit>> {
                $crate::ReadTxn::traverse(&self.$field, start, options)
            }
            fn dependents_of(&self, name: &str) -> $crate::Result<Vec<String>> {
                $crate::ReadTxn::dependents_of(&self.$field, name)
            }
            fn count_nodes(&self) -> $crate::Result<u64> {
                $crate::ReadTxn::count_nodes(&self.$field)
            }
            fn count_edges(&self) -> $crate::Result<u64> {
                $crate::ReadTxn::count_edges(&self.$field)
            }
            fn get_schema(
                &self,
                target: &$crate::SchemaTarget,
            ) -> $crate::Result<Option<$crate::serde_json::Value>> {
                $crate::ReadTxn::get_schema(&self.$field, target)
            }
            fn list_schemas(
                &self,
            ) -> $crate::Result<Vec<($crate::SchemaTarget, $crate::serde_json::Value)>> {
                $crate::ReadTxn::list_schemas(&self.$field)
            }
            fn contains_node(&self, name: &str) -> $crate::Result<bool> {
                $crate::ReadTxn::contains_node(&self.$field, name)
            }
            fn contains_edge(&self, key: &$crate::EdgeKey) -> $crate::Result<bool> {
                $crate::ReadTxn::contains_edge(&self.$field, key)
            }
            fn search_terms(
                &self,
                terms: &$crate::search::TermQuery,
            ) -> $crate::Result<$crate::search::TermMatches<'_>> {
                $crate::ReadTxn::search_terms(&self.$field, terms)
            }
            fn search_names(&self, rows: &[i64]) -> $crate::Result<Vec<String>> {
                $crate::ReadTxn::search_names(&self.$field, rows)
            }
            fn search_infix(&self, fragment: &str) -> $crate::Result<Vec<String>> {
                $crate::ReadTxn::search_infix(&self.$field, fragment)
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

    /// Leaves; the caller then wakes the waiters.
    pub fn leave(&mut self) {
        self.busy = false;
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
        self.0.lock().leave();
        self.0.freed.notify_all();
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

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        let guard = self.gate.enter(self.lock_timeout, "the memory store")?;
        let MemoryState { graph, docs } = self.snapshot();
        Ok(Box::new(MemoryWrite {
            backend: self,
            state: graph,
            docs,
            _guard: guard,
        }))
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

/// The write transaction: a private copy that replaces the current state at commit.
struct MemoryWrite<'a> {
    backend: &'a MemoryBackend,
    state: GraphState,
    docs: MemoryDocs,
    _guard: GateGuard<'a>,
}

crate::delegate_read_txn!(MemoryRead, state, events, documents: docs);
crate::delegate_read_txn!(MemoryWrite<'_>, state, events, documents: docs);

impl WriteTxn for MemoryWrite<'_> {
    fn put_node(&mut self, node: &Node) -> Result<()> {
        self.state.put_node_ref(node);
        Ok(())
    }

    fn delete_node(&mut self, name: &str) -> Result<bool> {
        Ok(self.state.delete_node(name).is_some())
    }

    fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        self.state.put_edge_ref(edge);
        Ok(())
    }

    fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        Ok(self.state.delete_edge(key).is_some())
    }

    fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        self.state.put_schema(target.clone(), schema.clone());
        Ok(())
    }

    fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        Ok(self.state.delete_schema(target).is_some())
    }

    fn events_mut(&mut self) -> Option<&mut dyn EventLogWrite> {
        Some(self.state.event_state_mut())
    }

    fn documents_mut(&mut self) -> Option<&mut dyn DocWrite> {
        Some(&mut self.docs)
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let MemoryWrite {
            backend,
            state,
            docs,
            _guard,
        } = *self;
        *backend
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = MemoryState { graph: state, docs };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::Arc;

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
