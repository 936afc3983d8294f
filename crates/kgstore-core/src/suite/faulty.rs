//! A backend wrapper that fails on command, to test what the store does when its
//! backend fails mid-transaction.

use std::io::Read;
use std::ops::Bound;
use std::path::Path as FsPath;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::algo::{Path, PathOptions, ReachOptions, Stats, TraverseOptions, Visit};
use crate::backend::{Backend, Problem, ReadTxn, WriteTxn};
use crate::documents::{DocInput, DocRead, DocWrite, DocumentMeta};
use crate::error::{Error, Result};
use crate::events::{EventLogRead, EventLogWrite, LogRecord, LogScan, NewRecord, RemoveWhere};
use crate::filter::{Direction, EdgeFilter, NodeFilter};
use crate::model::{Edge, EdgeKey, Node, RelationType};
use crate::schema::SchemaTarget;

/// Which error an injected fault raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// [`Error::Io`], as a failing disk would.
    Io,
    /// [`Error::Corrupt`], as damaged data would.
    Corrupt,
    /// [`Error::Backend`], as any other backend failure would.
    Backend,
}

/// When the wrapper fails; shared with the test that steers it.
#[derive(Debug)]
pub struct FaultPlan {
    /// Raw writes allowed before every further one fails (`usize::MAX`: never fail).
    writes_left: AtomicUsize,
    fail_commit: AtomicBool,
    fail_reads: AtomicBool,
    /// Edges each whole edge listing hands over before it fails (`usize::MAX`: never).
    edge_fail_budget: AtomicUsize,
    /// Set when an edge listing failed as planned.
    edge_listing_failed: AtomicBool,
    /// Nodes each whole node listing hands over before it waits for an edge
    /// listing to fail (`usize::MAX`: never waits).
    hold_nodes_at: AtomicUsize,
    /// Nodes handed over by whole node listings, in all.
    nodes_listed: AtomicUsize,
    /// Edges each whole edge listing hands over before it waits to be released
    /// (`usize::MAX`: never waits).
    hold_edges_at: AtomicUsize,
    /// Set when an edge listing is waiting at its hold.
    edge_listing_held: AtomicBool,
    /// Set when held edge listings may go on.
    edge_listings_released: AtomicBool,
    /// Edges handed over by whole edge listings, in all.
    edges_handed: AtomicUsize,
    kind: Mutex<FaultKind>,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self {
            writes_left: AtomicUsize::new(usize::MAX),
            fail_commit: AtomicBool::new(false),
            fail_reads: AtomicBool::new(false),
            edge_fail_budget: AtomicUsize::new(usize::MAX),
            edge_listing_failed: AtomicBool::new(false),
            hold_nodes_at: AtomicUsize::new(usize::MAX),
            nodes_listed: AtomicUsize::new(0),
            hold_edges_at: AtomicUsize::new(usize::MAX),
            edge_listing_held: AtomicBool::new(false),
            edge_listings_released: AtomicBool::new(false),
            edges_handed: AtomicUsize::new(0),
            kind: Mutex::new(FaultKind::Io),
        }
    }
}

impl FaultPlan {
    /// Lets `n` more raw writes through, then fails every one after.
    pub fn fail_writes_after(&self, n: usize) {
        self.writes_left.store(n, Ordering::SeqCst);
    }

    /// Makes commits fail (or succeed again).
    pub fn fail_commits(&self, on: bool) {
        self.fail_commit.store(on, Ordering::SeqCst);
    }

    /// Makes node reads fail (or succeed again).
    pub fn fail_reads(&self, on: bool) {
        self.fail_reads.store(on, Ordering::SeqCst);
    }

    /// Makes each whole edge listing (`for_each_edge`, `for_each_edge_json`) fail
    /// after handing over `n` edges (`usize::MAX`: never).
    pub fn fail_edge_listings_after(&self, n: usize) {
        self.edge_fail_budget.store(n, Ordering::SeqCst);
    }

    /// Makes each whole node listing (`for_each_node`, `for_each_node_json`), after
    /// handing over `n` nodes, wait until an edge listing has failed as planned
    /// ([`FaultPlan::fail_edge_listings_after`]), then 20 ms more for that failure
    /// to reach its caller, before going on (at most 10 s in all), then going on
    /// slowly ([`pace`]); `usize::MAX`: never wait. For tests of scans running side
    /// by side: whether the failure of one stops the other.
    pub fn hold_node_listings_at(&self, n: usize) {
        self.hold_nodes_at.store(n, Ordering::SeqCst);
    }

    /// How many nodes whole node listings have handed over since the plan was made
    /// or last [healed](FaultPlan::heal).
    pub fn nodes_listed(&self) -> usize {
        self.nodes_listed.load(Ordering::SeqCst)
    }

    /// Makes each whole edge listing (`for_each_edge`, `for_each_edge_json`), after
    /// handing over `n` edges, say that it is held ([`FaultPlan::edge_listing_held`])
    /// and wait until [`FaultPlan::release_edge_listings`] is called, then 100 ms
    /// more for what the releaser does next to reach the listing's caller, before
    /// going on (at most 10 s in all), then going on slowly ([`pace`]);
    /// `usize::MAX`: never wait. For tests of a scan running beside work that fails
    /// or panics: whether that stops the scan.
    pub fn hold_edge_listings_at(&self, n: usize) {
        self.edge_listings_released.store(false, Ordering::SeqCst);
        self.edge_listing_held.store(false, Ordering::SeqCst);
        self.hold_edges_at.store(n, Ordering::SeqCst);
    }

    /// Whether an edge listing has come to its hold ([`FaultPlan::hold_edge_listings_at`]).
    pub fn edge_listing_held(&self) -> bool {
        self.edge_listing_held.load(Ordering::SeqCst)
    }

    /// Lets held edge listings go on ([`FaultPlan::hold_edge_listings_at`]).
    pub fn release_edge_listings(&self) {
        self.edge_listings_released.store(true, Ordering::SeqCst);
    }

    /// How many edges whole edge listings have handed over since the plan was made
    /// or last [healed](FaultPlan::heal).
    pub fn edges_listed(&self) -> usize {
        self.edges_handed.load(Ordering::SeqCst)
    }

    /// Sets the error raised.
    pub fn raise(&self, kind: FaultKind) {
        *self.kind.lock().unwrap_or_else(PoisonError::into_inner) = kind;
    }

    /// Stops failing.
    pub fn heal(&self) {
        self.fail_writes_after(usize::MAX);
        self.fail_commits(false);
        self.fail_reads(false);
        self.fail_edge_listings_after(usize::MAX);
        self.edge_listing_failed.store(false, Ordering::SeqCst);
        self.hold_node_listings_at(usize::MAX);
        self.nodes_listed.store(0, Ordering::SeqCst);
        self.hold_edge_listings_at(usize::MAX);
        self.edges_handed.store(0, Ordering::SeqCst);
    }

    /// `each` for a whole edge listing: counted, failing once
    /// [`FaultPlan::fail_edge_listings_after`]'s count is handed over, and held as
    /// [`FaultPlan::hold_edge_listings_at`] says.
    fn listing<T: ?Sized>(
        &self,
        each: &mut dyn FnMut(&T) -> Result<()>,
        list: impl FnOnce(&mut dyn FnMut(&T) -> Result<()>) -> Result<()>,
    ) -> Result<()> {
        let mut left = self.edge_fail_budget.load(Ordering::SeqCst);
        let hold = self.hold_edges_at.load(Ordering::SeqCst);
        let mut handed = 0usize;
        list(&mut |item| {
            if left == 0 {
                self.edge_listing_failed.store(true, Ordering::SeqCst);
                return Err(self.error("scan_edges"));
            }
            left = left.saturating_sub(usize::from(left != usize::MAX));
            if handed == hold {
                self.edge_listing_held.store(true, Ordering::SeqCst);
                wait_for(&self.edge_listings_released, 100);
            }
            pace(handed, hold);
            handed += 1;
            self.edges_handed.fetch_add(1, Ordering::SeqCst);
            each(item)
        })
    }

    /// `each` for a whole node listing: counted, and held as
    /// [`FaultPlan::hold_node_listings_at`] says.
    fn node_listing<T: ?Sized>(
        &self,
        each: &mut dyn FnMut(&T) -> Result<()>,
        list: impl FnOnce(&mut dyn FnMut(&T) -> Result<()>) -> Result<()>,
    ) -> Result<()> {
        let hold = self.hold_nodes_at.load(Ordering::SeqCst);
        let mut handed = 0usize;
        list(&mut |item| {
            if handed == hold {
                wait_for(&self.edge_listing_failed, 20);
            }
            pace(handed, hold);
            handed += 1;
            self.nodes_listed.fetch_add(1, Ordering::SeqCst);
            each(item)
        })
    }

    fn error(&self, at: &str) -> Error {
        match *self.kind.lock().unwrap_or_else(PoisonError::into_inner) {
            FaultKind::Io => Error::io(
                format!("/injected/{at}"),
                std::io::Error::other("injected fault"),
            ),
            FaultKind::Corrupt => Error::corrupt(format!("/injected/{at}"), "injected fault"),
            FaultKind::Backend => Error::backend("faulty", format!("injected fault in {at}")),
        }
    }

    fn write(&self, at: &str) -> Result<()> {
        let allowed = self
            .writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                usize::MAX => Some(usize::MAX),
                0 => None,
                n => Some(n - 1),
            })
            .is_ok();
        if allowed { Ok(()) } else { Err(self.error(at)) }
    }

    fn read(&self, at: &str) -> Result<()> {
        if self.fail_reads.load(Ordering::SeqCst) {
            Err(self.error(at))
        } else {
            Ok(())
        }
    }
}

/// Past a hold at `hold`, a listing goes on at one item in 0.1 ms at most (1 ms of
/// sleep every 10 items): a stop that reaches the listing late on a loaded machine
/// (a thread descheduled beyond the hold's grace) still comes thousands of items
/// before its end, so tests bound the items listed without racing the scheduler;
/// a listing that is never stopped still ends, in a second or two.
fn pace(handed: usize, hold: usize) {
    if hold != usize::MAX && handed > hold && (handed - hold).is_multiple_of(10) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Waits until `flag` is set (at most 10 s), then `grace` ms more for what set it
/// to take effect beyond.
fn wait_for(flag: &AtomicBool, grace: u64) {
    let start = std::time::Instant::now();
    let limit = std::time::Duration::from_secs(10);
    while !flag.load(Ordering::SeqCst) && start.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::thread::sleep(std::time::Duration::from_millis(grace));
}

/// Wraps a backend and fails as its [`FaultPlan`] says.
pub struct FaultyBackend<B> {
    inner: B,
    plan: Arc<FaultPlan>,
}

impl<B: Backend> FaultyBackend<B> {
    /// Wraps `inner`; steer it through the returned plan.
    pub fn new(inner: B) -> (Self, Arc<FaultPlan>) {
        let plan = Arc::new(FaultPlan::default());
        (
            Self {
                inner,
                plan: Arc::clone(&plan),
            },
            plan,
        )
    }
}

impl<B: Backend> Backend for FaultyBackend<B> {
    fn name(&self) -> &str {
        "faulty"
    }

    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        Ok(Box::new(Faulty {
            inner: self.inner.begin_read()?,
            plan: &self.plan,
        }))
    }

    /// The inner backend's pair, each failing as the plan says.
    fn begin_read_pair(
        &self,
    ) -> Result<(Box<dyn ReadTxn + '_>, Option<Box<dyn ReadTxn + Send + '_>>)> {
        let (first, second) = self.inner.begin_read_pair()?;
        let second = second.map(|inner| {
            Box::new(Faulty {
                inner,
                plan: &self.plan,
            }) as Box<dyn ReadTxn + Send + '_>
        });
        Ok((
            Box::new(Faulty {
                inner: first,
                plan: &self.plan,
            }),
            second,
        ))
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        Ok(Box::new(Faulty {
            inner: self.inner.begin_write()?,
            plan: &self.plan,
        }))
    }

    fn check(&self) -> Result<Vec<Problem>> {
        self.inner.check()
    }

    fn optimize(&self) -> Result<()> {
        self.inner.optimize()
    }

    fn backup_native(&self, dest: &FsPath) -> Result<()> {
        self.inner.backup_native(dest)
    }
}

struct Faulty<'a, T: ?Sized> {
    inner: Box<T>,
    plan: &'a FaultPlan,
}

macro_rules! forward_reads {
    ($t:ty) => {
        impl ReadTxn for Faulty<'_, $t> {
            fn get_node(&self, name: &str) -> Result<Option<Node>> {
                self.plan.read("get_node")?;
                self.inner.get_node(name)
            }
            fn get_edge(&self, key: &EdgeKey) -> Result<Option<Edge>> {
                self.inner.get_edge(key)
            }
            fn scan_nodes(
                &self,
                filter: &NodeFilter,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<Node>> {
                self.plan.read("scan_nodes")?;
                self.inner.scan_nodes(filter, after, limit)
            }
            fn scan_edges(
                &self,
                filter: &EdgeFilter,
                after: Option<&EdgeKey>,
                limit: usize,
            ) -> Result<Vec<Edge>> {
                self.inner.scan_edges(filter, after, limit)
            }
            fn for_each_node(&self, each: &mut dyn FnMut(&Node) -> Result<()>) -> Result<()> {
                self.plan.read("scan_nodes")?;
                self.plan
                    .node_listing(each, |each| self.inner.for_each_node(each))
            }
            fn for_each_edge(&self, each: &mut dyn FnMut(&Edge) -> Result<()>) -> Result<()> {
                self.plan
                    .listing(each, |each| self.inner.for_each_edge(each))
            }
            fn for_each_node_json(&self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
                self.plan.read("scan_nodes")?;
                self.plan
                    .node_listing(each, |each| self.inner.for_each_node_json(each))
            }
            fn for_each_edge_json(&self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
                self.plan
                    .listing(each, |each| self.inner.for_each_edge_json(each))
            }
            fn edges_of(
                &self,
                name: &str,
                direction: Direction,
                relations: &[RelationType],
            ) -> Result<Vec<Edge>> {
                self.inner.edges_of(name, direction, relations)
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
            fn traverse_node(
                &self,
                start: &str,
                options: &TraverseOptions,
            ) -> Result<Option<Vec<Visit>>> {
                self.inner.traverse_node(start, options)
            }
            fn edges_of_node(
                &self,
                name: &str,
                direction: Direction,
                relations: &[RelationType],
            ) -> Result<Option<Vec<Edge>>> {
                self.inner.edges_of_node(name, direction, relations)
            }
            fn neighbour_names(
                &self,
                name: &str,
                direction: Direction,
                relations: &[RelationType],
            ) -> Result<Option<Vec<String>>> {
                self.inner.neighbour_names(name, direction, relations)
            }
            fn reach(&self, start: &str, options: &ReachOptions) -> Result<Option<Vec<String>>> {
                self.inner.reach(start, options)
            }
            fn reach_count(&self, start: &str, options: &ReachOptions) -> Result<Option<u64>> {
                self.inner.reach_count(start, options)
            }
            fn shortest_path(
                &self,
                from: &str,
                to: &str,
                options: &PathOptions,
            ) -> Result<Option<Path>> {
                self.inner.shortest_path(from, to, options)
            }
            fn stats(&self) -> Result<Stats> {
                self.inner.stats()
            }
            fn events(&self) -> Option<&dyn EventLogRead> {
                self.inner.events()
            }
            fn documents(&self) -> Option<&dyn DocRead> {
                self.inner.documents().map(|_| self as &dyn DocRead)
            }
        }

        /// Document reads go through unharmed (node reads are the ones that fail).
        impl DocRead for Faulty<'_, $t> {
            fn doc_meta(&self, key: &str) -> Result<Option<DocumentMeta>> {
                self.docs()?.doc_meta(key)
            }
            fn scan_docs(
                &self,
                prefix: &str,
                from: Bound<&str>,
                limit: usize,
            ) -> Result<Vec<DocumentMeta>> {
                self.docs()?.scan_docs(prefix, from, limit)
            }
            fn open_doc(&self, meta: &DocumentMeta) -> Result<Box<dyn Read + '_>> {
                self.docs()?.open_doc(meta)
            }
            fn read_doc(&self, meta: &DocumentMeta) -> Result<Vec<u8>> {
                self.docs()?.read_doc(meta)
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

        impl Faulty<'_, $t> {
            fn docs(&self) -> Result<&dyn DocRead> {
                self.inner
                    .documents()
                    .ok_or_else(|| Error::unsupported("documents", "faulty"))
            }
        }
    };
}

forward_reads!(dyn ReadTxn + '_);
forward_reads!(dyn ReadTxn + Send + '_);

/// Document writes fail as the plan says, like the graph's.
impl DocWrite for Faulty<'_, dyn WriteTxn + '_> {
    fn put_doc(&mut self, input: &mut DocInput<'_>) -> Result<()> {
        self.plan.write("put_doc")?;
        self.inner
            .documents_mut()
            .ok_or_else(|| Error::unsupported("documents", "faulty"))?
            .put_doc(input)
    }

    fn delete_doc(&mut self, key: &str) -> Result<bool> {
        self.plan.write("delete_doc")?;
        self.inner
            .documents_mut()
            .ok_or_else(|| Error::unsupported("documents", "faulty"))?
            .delete_doc(key)
    }
}
forward_reads!(dyn WriteTxn + '_);

impl WriteTxn for Faulty<'_, dyn WriteTxn + '_> {
    fn bulk_load_begin(&mut self) -> Result<()> {
        self.inner.bulk_load_begin()
    }

    fn bulk_load_end(&mut self) -> Result<()> {
        self.inner.bulk_load_end()
    }

    fn put_node(&mut self, node: &Node) -> Result<()> {
        self.plan.write("put_node")?;
        self.inner.put_node(node)
    }

    fn put_nodes(&mut self, nodes: &[Node]) -> Result<()> {
        // One fault point per node, so a batch can fail half-way through.
        for node in nodes {
            self.put_node(node)?;
        }
        Ok(())
    }

    fn delete_node(&mut self, name: &str) -> Result<bool> {
        self.plan.write("delete_node")?;
        self.inner.delete_node(name)
    }

    fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        self.plan.write("put_edge")?;
        self.inner.put_edge(edge)
    }

    fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        self.plan.write("delete_edge")?;
        self.inner.delete_edge(key)
    }

    fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        self.plan.write("put_schema")?;
        self.inner.put_schema(target, schema)
    }

    fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        self.plan.write("delete_schema")?;
        self.inner.delete_schema(target)
    }

    fn events_mut(&mut self) -> Option<&mut dyn EventLogWrite> {
        if self.inner.events_mut().is_some() {
            Some(self)
        } else {
            None
        }
    }

    fn documents_mut(&mut self) -> Option<&mut dyn DocWrite> {
        self.inner.documents_mut()?;
        Some(self)
    }

    fn commit(self: Box<Self>) -> Result<()> {
        if self.plan.fail_commit.load(Ordering::SeqCst) {
            return Err(self.plan.error("commit"));
        }
        self.inner.commit()
    }
}

impl Faulty<'_, dyn WriteTxn + '_> {
    fn log(&self) -> Result<&dyn EventLogRead> {
        self.inner
            .events()
            .ok_or_else(|| Error::unsupported("events", "faulty"))
    }

    fn log_mut(&mut self, at: &str) -> Result<&mut dyn EventLogWrite> {
        self.plan.write(at)?;
        self.inner
            .events_mut()
            .ok_or_else(|| Error::unsupported("events", "faulty"))
    }
}

impl EventLogRead for Faulty<'_, dyn WriteTxn + '_> {
    fn log_head(&self) -> Result<u64> {
        self.log()?.log_head()
    }
    fn log_scan(&self, scan: &LogScan<'_>) -> Result<Vec<LogRecord>> {
        self.log()?.log_scan(scan)
    }
    fn log_find_ids(&self, ids: &[&str]) -> Result<Vec<Option<LogRecord>>> {
        self.log()?.log_find_ids(ids)
    }
    fn state_get(&self, space: &str, key: &str) -> Result<Option<Value>> {
        self.log()?.state_get(space, key)
    }
    fn state_scan(
        &self,
        space: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>> {
        self.log()?.state_scan(space, prefix, after, limit)
    }
}

/// Event writes are fault points like the graph's.
impl EventLogWrite for Faulty<'_, dyn WriteTxn + '_> {
    fn log_append(&mut self, records: &[LogRecord]) -> Result<()> {
        self.log_mut("log_append")?.log_append(records)
    }
    fn log_append_new(&mut self, records: &[NewRecord<'_>]) -> Result<()> {
        self.log_mut("log_append")?.log_append_new(records)
    }
    fn log_append_new_unless_known(&mut self, records: &[NewRecord<'_>]) -> Result<bool> {
        self.log_mut("log_append")?
            .log_append_new_unless_known(records)
    }
    fn log_remove(&mut self, stream: &str, which: RemoveWhere) -> Result<u64> {
        self.log_mut("log_remove")?.log_remove(stream, which)
    }
    fn log_clear(&mut self) -> Result<()> {
        self.log_mut("log_clear")?.log_clear()
    }
    fn state_put(&mut self, space: &str, key: &str, value: &Value) -> Result<()> {
        self.log_mut("state_put")?.state_put(space, key, value)
    }
    fn state_delete(&mut self, space: &str, key: &str) -> Result<bool> {
        self.log_mut("state_delete")?.state_delete(space, key)
    }
}
