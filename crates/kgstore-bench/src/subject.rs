//! The two kinds of thing a phase runs on: a kgstore store (any backend) and the
//! raw rusqlite baseline. Each phase times only the work itself; opening,
//! closing and checksums happen outside the timed part.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kgstore::backup::{self, RestoreMode};
use kgstore::git::{GitBackend, GitOptions};
use kgstore::jsonfs::{JsonFsBackend, JsonFsOptions};
use kgstore::sqlite::{SqliteBackend, SqliteOptions};
use kgstore::{
    Direction, Durability, Edge, GraphRead, Node, NodeFilter, PageRequest, ReachOptions,
    SearchQuery, Store, TraverseOptions,
};

use crate::Backend;
use crate::data::index_of;
use crate::raw::RawStore;

/// What one phase measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// Operations (or items) done.
    pub ops: u64,
    /// Seconds the timed part took.
    pub secs: f64,
    /// The answer every backend must agree on, if the phase has one.
    pub checksum: Option<u64>,
}

/// Times `f`, which returns the operation count and the checksum.
pub(crate) fn timed(f: impl FnOnce() -> Result<(u64, Option<u64>)>) -> Result<Measured> {
    let started = Instant::now();
    let (ops, checksum) = f()?;
    Ok(Measured {
        ops,
        secs: started.elapsed().as_secs_f64(),
        checksum,
    })
}

/// Times `query` on each name; the checksum adds up what it returns.
pub(crate) fn per_name(
    names: &[String],
    mut query: impl FnMut(&str) -> Result<u64>,
) -> Result<Measured> {
    timed(|| {
        let mut sum = 0;
        for name in names {
            sum += query(name)?;
        }
        Ok((len(names), Some(sum)))
    })
}

fn len(items: &[impl Sized]) -> u64 {
    items.len() as u64
}

/// Hits shown per search, as an agent's page would be.
pub const SEARCH_PAGE: usize = 20;

/// A checksum of a page of names: their number and their bytes, in order.
fn names_checksum<'n>(names: impl Iterator<Item = &'n str>) -> u64 {
    let mut sum: u64 = 0xcbf2_9ce4_8422_2325;
    let mut count = 0;
    for name in names {
        count += 1;
        for b in name.bytes().chain([0]) {
            sum = (sum ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // Small enough for the phase to add thousands of them up.
    (sum >> 40) + count
}

/// A kgstore store on one of the backends, and where it lives.
pub struct KgSubject {
    backend: Backend,
    path: PathBuf,
    store: Option<Store>,
}

/// Opens (creating if needed) a store of `backend` at `path`, with immediate durability.
/// `KGSTORE_BENCH_SQLITE_MMAP=BYTES` sets the SQLite backend's memory map (to
/// measure what it does; the default is the backend's).
pub fn open_store(backend: Backend, path: &Path) -> Result<Store> {
    Ok(match backend {
        Backend::Memory => Store::memory(),
        Backend::Sqlite => {
            let mut options = SqliteOptions::default().durability(Durability::Immediate);
            if let Some(bytes) = std::env::var_os("KGSTORE_BENCH_SQLITE_MMAP") {
                let bytes = bytes.to_string_lossy();
                options = options.mmap_size(
                    bytes
                        .parse()
                        .with_context(|| format!("KGSTORE_BENCH_SQLITE_MMAP={bytes}"))?,
                );
            }
            Store::new(SqliteBackend::open(path, options)?)
        }
        Backend::Jsonfs => Store::new(JsonFsBackend::open(
            path,
            JsonFsOptions::default().durability(Durability::Immediate),
        )?),
        Backend::Git => Store::new(GitBackend::open(
            path,
            GitOptions::default().durability(Durability::Immediate),
        )?),
    })
}

impl KgSubject {
    /// A new, empty store of `backend` at `path` (unused for memory).
    pub fn create(backend: Backend, path: &Path) -> Result<Self> {
        Ok(Self {
            backend,
            path: path.to_owned(),
            store: Some(open_store(backend, path)?),
        })
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn store(&self) -> Result<&Store> {
        self.store.as_ref().context("the store is closed")
    }

    /// Turns the store's metrics on (as opened) or off, for the metrics-cost rounds.
    pub fn set_metrics(&self, on: bool) -> Result<()> {
        self.store()?.observer().set_enabled(on);
        Ok(())
    }

    /// Creates all nodes in one transaction.
    pub fn load_nodes(&mut self, nodes: Vec<Node>) -> Result<Measured> {
        let store = self.store()?;
        let mut m = timed(|| Ok((store.create_nodes(nodes)? as u64, None)))?;
        m.checksum = Some(store.count_nodes()?);
        Ok(m)
    }

    /// Creates all edges in one transaction.
    pub fn load_edges(&mut self, edges: Vec<Edge>) -> Result<Measured> {
        let store = self.store()?;
        let mut m = timed(|| Ok((store.create_edges(edges)? as u64, None)))?;
        m.checksum = Some(store.count_edges()?);
        Ok(m)
    }

    /// Gets each node by name; the checksum adds up their `index` attributes.
    pub fn gets(&mut self, names: &[String]) -> Result<Measured> {
        let store = self.store()?;
        per_name(names, |name| {
            Ok(index_of(&store.get_node(name)?.attributes))
        })
    }

    /// Lists each node's outgoing edges; the checksum adds up their numbers.
    pub fn neighbours(&mut self, names: &[String]) -> Result<Measured> {
        let store = self.store()?;
        per_name(names, |name| {
            Ok(len(&store.edges_of(name, Direction::Out, &[])?))
        })
    }

    /// The names at the other end of each node's outgoing edges (names only).
    pub fn neighbour_names(&mut self, names: &[String]) -> Result<Measured> {
        let store = self.store()?;
        per_name(names, |name| {
            Ok(len(&store.neighbour_names(name, Direction::Out, &[])?))
        })
    }

    /// Counts the distinct ends of each node's two-edge outgoing walks.
    pub fn two_hops(&mut self, names: &[String]) -> Result<Measured> {
        let store = self.store()?;
        let options = ReachOptions::exactly(2);
        per_name(names, |name| Ok(store.reach_count(name, &options)?))
    }

    /// Traverses two outgoing hops from each node; the checksum adds up the visits.
    pub fn traversals(&mut self, names: &[String]) -> Result<Measured> {
        let store = self.store()?;
        let options = TraverseOptions::depth(2);
        per_name(names, |name| Ok(len(&store.traverse(name, &options)?)))
    }

    /// Resolves each node's dependencies; the checksum covers every answer's names
    /// in order ([`names_checksum`]), so a baseline must give the same order.
    pub fn resolutions(&mut self, names: &[String]) -> Result<Measured> {
        let store = self.store()?;
        per_name(names, |name| {
            let order = store.resolve_dependencies(name)?;
            Ok(names_checksum(order.iter().map(String::as_str)))
        })
    }

    /// The first page of a ranked search for each query; the checksum covers every
    /// page's names in order, so backends must rank exactly alike.
    pub fn searches(&mut self, queries: &[String]) -> Result<Measured> {
        let store = self.store()?;
        per_name(queries, |text| {
            let page = store.search(&SearchQuery::new(text).limit(SEARCH_PAGE))?;
            Ok(names_checksum(page.items.iter().map(|h| h.name.as_str())))
        })
    }

    /// The first page of the substring filter (`NodeFilter::text`, what the MCP
    /// memory server does) for each query.
    pub fn substring_filters(&mut self, queries: &[String]) -> Result<Measured> {
        let store = self.store()?;
        per_name(queries, |text| {
            let filter = NodeFilter::default().containing(text);
            let page = store.list_nodes(&filter, &PageRequest::first(SEARCH_PAGE))?;
            Ok(names_checksum(page.items.iter().map(|n| n.name.as_str())))
        })
    }

    /// Pages through every node of `node_type`; the checksum adds up `index + 1`.
    pub fn list(&mut self, node_type: &str, page_size: usize) -> Result<Measured> {
        let store = self.store()?;
        let filter = NodeFilter::default().of_type(node_type);
        timed(|| {
            let (mut count, mut sum) = (0, 0);
            let mut request = PageRequest::first(page_size);
            loop {
                let page = store.list_nodes(&filter, &request)?;
                count += len(&page.items);
                sum += page
                    .items
                    .iter()
                    .map(|n| index_of(&n.attributes) + 1)
                    .sum::<u64>();
                match page.next_cursor {
                    Some(cursor) => request = request.after(Some(cursor)),
                    None => break,
                }
            }
            Ok((count, Some(sum)))
        })
    }

    /// Creates each node in its own durable transaction.
    pub fn commits(&mut self, nodes: Vec<Node>) -> Result<Measured> {
        let store = self.store()?;
        let mut m = timed(|| {
            let count = len(&nodes);
            for node in nodes {
                store.create_node(node)?;
            }
            Ok((count, None))
        })?;
        m.checksum = Some(store.count_nodes()?);
        Ok(m)
    }

    /// Closes the store and times opening it again up to the first read of
    /// `first`; `None` for the memory backend, which keeps nothing to reopen.
    pub fn reopen(&mut self, first: &str) -> Result<Option<Measured>> {
        if self.backend == Backend::Memory {
            return Ok(None);
        }
        self.store = None;
        let (backend, path) = (self.backend, self.path.clone());
        let mut reopened = None;
        let m = timed(|| {
            let store = open_store(backend, &path)?;
            let index = index_of(&store.get_node(first)?.attributes);
            reopened = Some(store);
            Ok((1, Some(index)))
        })?;
        self.store = reopened;
        Ok(Some(m))
    }

    /// Backs the store up into the new folder `dest`; ops are nodes + edges.
    pub fn backup(&mut self, dest: &Path) -> Result<Measured> {
        let store = self.store()?;
        timed(|| {
            let manifest = backup::backup(store, dest)?;
            let items = manifest.counts.nodes + manifest.counts.edges;
            Ok((items, Some(items)))
        })
    }

    /// Restores the backup in `from` into a new store of the same backend at `dest`.
    pub fn restore(&mut self, from: &Path, dest: &Path) -> Result<Measured> {
        let target = open_store(self.backend, dest)?;
        let m = timed(|| {
            let report = backup::restore_into(from, &target, RestoreMode::Empty)?;
            let items = report.nodes + report.edges;
            Ok((items, Some(items)))
        })?;
        if target.count_nodes()? + target.count_edges()? != m.ops {
            bail!(
                "the restored {} store does not hold what was restored",
                self.backend
            );
        }
        Ok(m)
    }
}

/// The raw rusqlite baseline, phase by phase.
pub struct RawSubject {
    raw: Option<RawStore>,
    path: PathBuf,
}

impl RawSubject {
    /// A new file with kgstore's schema at `path` (and with `fts`, a hand-written
    /// FTS5 table filled as nodes are inserted).
    pub fn create(path: &Path, fts: bool) -> Result<Self> {
        Ok(Self {
            raw: Some(RawStore::create(path, fts)?),
            path: path.to_owned(),
        })
    }

    /// The hand-written FTS5 query's best page for each query. Its ranking is
    /// FTS5's, not kgstore's, so there is no checksum to compare.
    pub fn searches(&mut self, queries: &[String]) -> Result<Measured> {
        let raw = self.raw()?;
        let mut m = per_name(queries, |text| Ok(len(&raw.fts_search(text, SEARCH_PAGE)?)))?;
        m.checksum = None;
        Ok(m)
    }

    fn raw(&mut self) -> Result<&mut RawStore> {
        self.raw
            .as_mut()
            .context("the baseline's connection is closed")
    }

    /// All nodes in one transaction.
    pub fn load_nodes(&mut self, nodes: Vec<Node>) -> Result<Measured> {
        let raw = self.raw()?;
        let mut m = timed(|| {
            raw.load_nodes(&nodes)?;
            Ok((len(&nodes), None))
        })?;
        m.checksum = Some(raw.counts()?.0);
        Ok(m)
    }

    /// All edges in one transaction.
    pub fn load_edges(&mut self, edges: Vec<Edge>) -> Result<Measured> {
        let raw = self.raw()?;
        let mut m = timed(|| {
            raw.load_edges(&edges)?;
            Ok((len(&edges), None))
        })?;
        m.checksum = Some(raw.counts()?.1);
        Ok(m)
    }

    /// Gets by name.
    pub fn gets(&mut self, names: &[String]) -> Result<Measured> {
        let raw = self.raw()?;
        per_name(names, |name| {
            let node = raw
                .get_node(name)?
                .with_context(|| format!("no node {name}"))?;
            Ok(index_of(&node.attributes))
        })
    }

    /// Outgoing edges.
    pub fn neighbours(&mut self, names: &[String]) -> Result<Measured> {
        let raw = self.raw()?;
        per_name(names, |name| Ok(len(&raw.out_edges(name)?)))
    }

    /// Names at the end of outgoing edges.
    pub fn neighbour_names(&mut self, names: &[String]) -> Result<Measured> {
        let raw = self.raw()?;
        per_name(names, |name| Ok(len(&raw.out_names(name)?)))
    }

    /// Two-hop counts (distinct ends of two-edge walks), one query each.
    pub fn two_hops(&mut self, names: &[String]) -> Result<Measured> {
        let raw = self.raw()?;
        per_name(names, |name| raw.two_hop_count(name))
    }

    /// Two-hop counts along outgoing edges only (the baseline before session 13);
    /// the workload has no bidirectional edge, so its answers agree.
    pub fn two_hops_out_only(&mut self, names: &[String]) -> Result<Measured> {
        let raw = self.raw()?;
        per_name(names, |name| raw.two_hop_count_out_only(name))
    }

    /// Counts of the other nodes within two hops, one query each.
    pub fn traversals(&mut self, names: &[String]) -> Result<Measured> {
        let raw = self.raw()?;
        per_name(names, |name| raw.within_two_count(name))
    }

    /// Dependency resolutions in kgstore's order; the checksum covers every answer's
    /// names in order, as the store's does.
    pub fn resolutions(&mut self, names: &[String]) -> Result<Measured> {
        let raw = self.raw()?;
        per_name(names, |name| {
            let order = raw.resolve_dependencies(name)?;
            Ok(names_checksum(order.iter().map(String::as_str)))
        })
    }

    /// Dependency resolutions in any topological order (the baseline before
    /// session 13). Its answers are other lists than kgstore's, so it has no
    /// checksum: its lengths, which agree, are checked by a test.
    pub fn resolutions_any_order(&mut self, names: &[String]) -> Result<Measured> {
        let raw = self.raw()?;
        let mut m = per_name(names, |name| {
            Ok(len(&raw.resolve_dependencies_any_order(name)?))
        })?;
        m.checksum = None;
        Ok(m)
    }

    /// Keyset pages through the nodes of a type.
    pub fn list(&mut self, node_type: &str, page_size: usize) -> Result<Measured> {
        let raw = self.raw()?;
        timed(|| {
            let (mut count, mut sum) = (0, 0);
            let mut after = String::new();
            loop {
                let page = raw.list_of_type(node_type, &after, page_size)?;
                count += len(&page);
                sum += page
                    .iter()
                    .map(|n| index_of(&n.attributes) + 1)
                    .sum::<u64>();
                match page.last() {
                    Some(last) if page.len() == page_size => after.clone_from(&last.name),
                    _ => break,
                }
            }
            Ok((count, Some(sum)))
        })
    }

    /// One node per durable transaction.
    pub fn commits(&mut self, nodes: Vec<Node>) -> Result<Measured> {
        let raw = self.raw()?;
        let mut m = timed(|| {
            for node in &nodes {
                raw.commit_node(node)?;
            }
            Ok((len(&nodes), None))
        })?;
        m.checksum = Some(raw.counts()?.0);
        Ok(m)
    }

    /// Closes the connection and times opening the file again up to the first read.
    pub fn reopen(&mut self, first: &str) -> Result<Measured> {
        self.raw = None;
        let path = self.path.clone();
        let mut reopened = None;
        let m = timed(|| {
            let raw = RawStore::open(&path)?;
            let node = raw
                .get_node(first)?
                .with_context(|| format!("no node {first}"))?;
            reopened = Some(raw);
            Ok((1, Some(index_of(&node.attributes))))
        })?;
        self.raw = reopened;
        Ok(m)
    }
}
