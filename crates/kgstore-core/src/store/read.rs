//! Queries, written once for the store, a read snapshot and a write transaction.

use serde_json::Value;

use crate::algo::{Path, PathOptions, ReachOptions, Stats, TraverseOptions, Visit};
use crate::backend::ReadTxn;
use crate::error::{Error, Result};
use crate::filter::{Cursor, Direction, EdgeFilter, NodeFilter, Page, PageRequest};
use crate::model::{Edge, EdgeKey, Node, RelationType};
use crate::schema::SchemaTarget;
use crate::search::{self, SearchHit, SearchQuery};
use crate::validate;

/// Refuses a malformed name given to a lookup. A name of printable ASCII is let
/// through at once; any other gets [`validate::name`]'s whole check.
#[inline]
pub(crate) fn check_name(name: &str) -> Result<()> {
    if validate::is_printable_ascii_name(name) {
        return Ok(());
    }
    check_name_closely(name)
}

/// [`check_name`] for a name that is not printable ASCII.
#[inline(never)]
fn check_name_closely(name: &str) -> Result<()> {
    validate::name(name).map_err(|reason| {
        Error::invalid_input(format!("node name '{}'", validate::shorten(name)), reason)
    })
}

/// Refuses a reach of zero hops, as traversals refuse a depth of zero.
fn check_hops(options: &ReachOptions) -> Result<()> {
    if options.hops == 0 {
        return Err(Error::invalid_input("reach hops", "must be at least 1"));
    }
    Ok(())
}

fn check_key(key: &EdgeKey) -> Result<()> {
    check_name(&key.from)?;
    check_name(&key.to)?;
    key.relation_type.check().map_err(|reason| {
        Error::invalid_input(format!("relation type '{}'", key.relation_type), reason)
    })
}

/// The read side of kgstore, shared by [`Store`](crate::Store) (each call on a
/// fresh snapshot), [`ReadTx`](crate::ReadTx) (every call on one snapshot) and
/// [`WriteTx`](crate::WriteTx) (seeing its own writes).
///
/// Bring it into scope with `use kgstore_core::GraphRead;` (or the prelude).
pub trait GraphRead {
    /// Runs `f` on the underlying read transaction.
    #[doc(hidden)]
    fn with_reader<R>(&self, f: impl FnOnce(&dyn ReadTxn) -> Result<R>) -> Result<R>;

    /// [`GraphRead::with_reader`] for an `f` that makes exactly one [`ReadTxn`]
    /// method call (a store may then start a lighter transaction: [`Backend::begin_one`]).
    ///
    /// [`Backend::begin_one`]: crate::Backend::begin_one
    #[doc(hidden)]
    fn with_one_read<R>(&self, f: impl FnOnce(&dyn ReadTxn) -> Result<R>) -> Result<R> {
        self.with_reader(f)
    }

    /// The node with this name, or [`Error::NodeNotFound`].
    fn get_node(&self, name: &str) -> Result<Node> {
        self.find_node(name)?
            .ok_or_else(|| Error::node_not_found(name))
    }

    /// The node with this name, if any.
    fn find_node(&self, name: &str) -> Result<Option<Node>> {
        check_name(name)?;
        self.with_one_read(|r| r.get_node(name))
    }

    /// Whether a node with this name exists.
    fn contains_node(&self, name: &str) -> Result<bool> {
        check_name(name)?;
        self.with_reader(|r| r.contains_node(name))
    }

    /// The edge with this key, or [`Error::EdgeNotFound`].
    fn get_edge(&self, key: &EdgeKey) -> Result<Edge> {
        self.find_edge(key)?
            .ok_or_else(|| Error::EdgeNotFound { key: key.clone() })
    }

    /// The edge with this key, if any.
    fn find_edge(&self, key: &EdgeKey) -> Result<Option<Edge>> {
        check_key(key)?;
        self.with_reader(|r| r.get_edge(key))
    }

    /// One page of the nodes matching `filter`, by name.
    fn list_nodes(&self, filter: &NodeFilter, page: &PageRequest) -> Result<Page<Node>> {
        filter.check()?;
        page.check()?;
        let after = page.cursor.as_ref().map(Cursor::node_name).transpose()?;
        let mut items =
            self.with_reader(|r| r.scan_nodes(filter, after.as_deref(), page.limit + 1))?;
        let next_cursor = if items.len() > page.limit {
            items.truncate(page.limit);
            items.last().map(|n| Cursor::after_node(&n.name))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// One page of the edges matching `filter`, by key.
    fn list_edges(&self, filter: &EdgeFilter, page: &PageRequest) -> Result<Page<Edge>> {
        filter.check()?;
        page.check()?;
        let after = page.cursor.as_ref().map(Cursor::edge_key).transpose()?;
        let mut items =
            self.with_reader(|r| r.scan_edges(filter, after.as_ref(), page.limit + 1))?;
        let next_cursor = if items.len() > page.limit {
            items.truncate(page.limit);
            items.last().map(|e| Cursor::after_edge(&e.key()))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Calls `each` with every node, by name, all from one read: what pages of
    /// [`GraphRead::list_nodes`] without a filter give, in one ordered scan
    /// where the backend has one (SQLite), one node in memory at a time. An
    /// error of `each` ends the scan and is returned.
    fn each_node(&self, mut each: impl FnMut(&Node) -> Result<()>) -> Result<()> {
        self.with_reader(|r| r.for_each_node(&mut each))
    }

    /// Calls `each` with every edge, by key, all from one read (see
    /// [`GraphRead::each_node`]).
    fn each_edge(&self, mut each: impl FnMut(&Edge) -> Result<()>) -> Result<()> {
        self.with_reader(|r| r.for_each_edge(&mut each))
    }

    /// Calls `each` with the compact JSON form of every node, by name, all from one
    /// read: the bytes `serde_json` gives for each node [`GraphRead::each_node`]
    /// hands over, written straight from the stored rows where the backend can
    /// (SQLite). What a backup's `nodes.jsonl` holds, line by line.
    fn each_node_json(&self, mut each: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.with_reader(|r| r.for_each_node_json(&mut each))
    }

    /// Calls `each` with the compact JSON form of every edge, by key, all from one
    /// read (see [`GraphRead::each_node_json`]).
    fn each_edge_json(&self, mut each: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.with_reader(|r| r.for_each_edge_json(&mut each))
    }

    /// One page of a ranked full-text search; see [`crate::search`] and `docs/search.md`.
    ///
    /// Hits holding the query's words come first, by BM25F score (highest
    /// first) and then name; after them, by name, every node holding the whole
    /// query as a case-insensitive substring but none of its words. Pass the
    /// page's `next_cursor` back in [`SearchQuery::cursor`] for the next page.
    fn search(&self, query: &SearchQuery) -> Result<Page<SearchHit>> {
        self.with_reader(|r| search::engine::search(r, query))
    }

    /// The edges of a node in a direction, with one of `relations` (any if empty), by key.
    fn edges_of(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Result<Vec<Edge>> {
        check_name(name)?;
        self.with_one_read(|r| {
            r.edges_of_node(name, direction, relations)?
                .ok_or_else(|| Error::node_not_found(name))
        })
    }

    /// The name at the other end of each of the node's edges in a direction, with one
    /// of `relations` (any if empty): one per edge, in [`GraphRead::edges_of`]'s order,
    /// the node's own name for a self-loop. Reads no more than the names.
    fn neighbour_names(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Result<Vec<String>> {
        check_name(name)?;
        self.with_one_read(|r| {
            r.neighbour_names(name, direction, relations)?
                .ok_or_else(|| Error::node_not_found(name))
        })
    }

    /// The nodes `options.hops` hops lead to from `start`, by name: within that many
    /// hops, or at the end of walks of exactly that many edges; see
    /// [`crate::algo::reach`].
    fn reach(&self, start: &str, options: &ReachOptions) -> Result<Vec<String>> {
        check_hops(options)?;
        check_name(start)?;
        self.with_reader(|r| {
            r.reach(start, options)?
                .ok_or_else(|| Error::node_not_found(start))
        })
    }

    /// How many nodes [`GraphRead::reach`] answers with, without naming them.
    fn reach_count(&self, start: &str, options: &ReachOptions) -> Result<u64> {
        check_hops(options)?;
        check_name(start)?;
        self.with_one_read(|r| {
            r.reach_count(start, options)?
                .ok_or_else(|| Error::node_not_found(start))
        })
    }

    /// Every node within `options.max_depth` hops of `start`; see [`crate::algo::traverse`].
    fn traverse(&self, start: &str, options: &TraverseOptions) -> Result<Vec<Visit>> {
        if options.max_depth == 0 {
            return Err(Error::invalid_input(
                "traversal depth",
                "must be at least 1",
            ));
        }
        check_name(start)?;
        self.with_one_read(|r| {
            r.traverse_node(start, options)?
                .ok_or_else(|| Error::node_not_found(start))
        })
    }

    /// A shortest path from `from` to `to`, if any; see [`crate::algo::shortest_path`].
    fn shortest_path(&self, from: &str, to: &str, options: &PathOptions) -> Result<Option<Path>> {
        check_name(from)?;
        check_name(to)?;
        self.with_reader(|r| {
            for name in [from, to] {
                if !r.contains_node(name)? {
                    return Err(Error::node_not_found(name));
                }
            }
            r.shortest_path(from, to, options)
        })
    }

    /// Every node `name` depends on, directly or not, dependencies first.
    fn resolve_dependencies(&self, name: &str) -> Result<Vec<String>> {
        // The backend refuses a missing node itself (`ReadTxn::resolve_dependencies`).
        check_name(name)?;
        self.with_one_read(|r| r.resolve_dependencies(name))
    }

    /// Every node that depends on `name`, directly or not, each after its own dependencies.
    fn dependents(&self, name: &str) -> Result<Vec<String>> {
        check_name(name)?;
        self.with_one_read(|r| r.resolve_dependents(name))
    }

    /// The nodes that list `name` among their dependencies, by name.
    fn direct_dependents(&self, name: &str) -> Result<Vec<String>> {
        self.with_existing(name, |r| r.dependents_of(name))
    }

    /// The schema registered for a target, if any.
    fn get_schema(&self, target: &SchemaTarget) -> Result<Option<Value>> {
        target.check()?;
        self.with_reader(|r| r.get_schema(target))
    }

    /// Every registered schema, by target.
    fn list_schemas(&self) -> Result<Vec<(SchemaTarget, Value)>> {
        self.with_reader(|r| r.list_schemas())
    }

    /// Counts of nodes, edges and schemas, by type.
    fn stats(&self) -> Result<Stats> {
        self.with_reader(|r| r.stats())
    }

    /// How many nodes there are.
    fn count_nodes(&self) -> Result<u64> {
        self.with_reader(|r| r.count_nodes())
    }

    /// How many edges there are.
    fn count_edges(&self) -> Result<u64> {
        self.with_reader(|r| r.count_edges())
    }

    /// Runs `f` after checking that the node exists, in the same snapshot.
    #[doc(hidden)]
    fn with_existing<R>(&self, name: &str, f: impl FnOnce(&dyn ReadTxn) -> Result<R>) -> Result<R> {
        check_name(name)?;
        self.with_reader(|r| {
            if r.contains_node(name)? {
                f(r)
            } else {
                Err(Error::node_not_found(name))
            }
        })
    }
}

/// A read transaction: every query on it sees the same consistent snapshot.
pub struct ReadTx<'s> {
    pub(crate) txn: Box<dyn ReadTxn + 's>,
    /// The backend's name, for errors.
    pub(crate) backend: &'s str,
    /// The store's metrics, where each query is counted.
    pub(crate) observer: &'s crate::observe::Observer,
}

impl GraphRead for ReadTx<'_> {
    #[inline]
    fn with_reader<R>(&self, f: impl FnOnce(&dyn ReadTxn) -> Result<R>) -> Result<R> {
        observed(self.observer, &*self.txn, f)
    }
}

/// Runs `f` on `txn`, counted (and, when sampled, timed) in the store's metrics
/// under the query's name.
#[inline]
fn observed<R>(
    observer: &crate::observe::Observer,
    txn: &dyn ReadTxn,
    f: impl FnOnce(&dyn ReadTxn) -> Result<R>,
) -> Result<R> {
    let what = crate::observe::query_name(&f);
    let probe = observer.read_probe();
    let outcome = f(txn);
    probe.finish(&outcome, what);
    outcome
}

/// The second read transaction of [`Store::read_pair`](crate::Store::read_pair):
/// on exactly the first's snapshot, and free to move to another thread. Its
/// queries are counted in the store's metrics as the first's are.
pub struct SideReadTx<'s> {
    pub(crate) txn: Box<dyn ReadTxn + Send + 's>,
    /// The store's metrics, where each query is counted.
    pub(crate) observer: &'s crate::observe::Observer,
}

impl GraphRead for SideReadTx<'_> {
    #[inline]
    fn with_reader<R>(&self, f: impl FnOnce(&dyn ReadTxn) -> Result<R>) -> Result<R> {
        observed(self.observer, &*self.txn, f)
    }
}
