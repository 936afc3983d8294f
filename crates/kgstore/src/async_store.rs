//! [`AsyncStore`]: the store's operations as async functions (feature `tokio`).
//!
//! Every call runs the blocking store operation on tokio's blocking thread pool,
//! so async tasks never stall the runtime on disk I/O or on waiting for the
//! writer lock. Many tasks may call one `AsyncStore` at once; writes still take
//! turns, reads run in parallel on their own snapshots.

use std::path::PathBuf;

use kgstore_core::{
    CheckReport, DeleteReport, Direction, Edge, EdgeFilter, EdgeKey, Error, GraphRead, Node,
    NodeFilter, OnDependents, Page, PageRequest, Path, PathOptions, ReachOptions, ReadTx,
    RelationType, Result, SchemaTarget, SearchHit, SearchQuery, Stats, Store, TraverseOptions,
    Visit, WriteTx,
};
use serde_json::Value;

use crate::backup::{self, Manifest, RestoreMode, RestoreReport, VerifyReport};

/// A [`Store`] for async callers. Cheap to clone; clones share the store.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use kgstore::{AsyncStore, Node};
///
/// let store = AsyncStore::open("memory://").await?;
/// store.create_node(Node::new("a", "thing")?).await?;
/// let n = store.write(|tx| tx.create_node(Node::new("b", "thing")?.with_dependency("a"))).await?;
/// assert_eq!(n.metadata.version, 1);
/// assert_eq!(store.resolve_dependencies("b").await?, ["a"]);
/// # Ok::<(), kgstore::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct AsyncStore {
    store: Store,
}

/// Runs `f` on the blocking pool; a panic in `f` is resumed in the caller.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::backend(
            "tokio",
            format!("the blocking task did not finish: {e}"),
        )),
    }
}

/// Runs `f` with a clone of the store on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let store = store.clone();
    off_runtime(move || f(&store)).await
}

/// Async twins of store methods that take owned arguments.
macro_rules! async_methods {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty => |$s:ident| $body:expr; )*) => {
        $(
            $(#[$doc])*
            pub async fn $name(&self, $($arg: $ty),*) -> Result<$out> {
                blocking(&self.store, move |$s| $body).await
            }
        )*
    };
}

impl AsyncStore {
    /// Wraps a store.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Opens a store by URL through the process-wide registry.
    pub async fn open(url: &str) -> Result<Self> {
        let url = url.to_owned();
        Ok(Self {
            store: off_runtime(move || crate::open(&url)).await?,
        })
    }

    /// The blocking store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `f` with a clone of the store on the blocking pool.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        blocking(&self.store, f).await
    }

    /// Runs `f` in a write transaction (see [`Store::write`]).
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        blocking(&self.store, move |s| s.write(f)).await
    }

    /// Runs `f` on one read snapshot (see [`Store::read`]).
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReadTx<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        blocking(&self.store, move |s| f(&s.read()?)).await
    }

    async_methods! {
        /// See [`GraphRead::get_node`].
        fn get_node(name: impl Into<String> + Send + 'static) -> Node => |s| s.get_node(&name.into());
        /// See [`GraphRead::find_node`].
        fn find_node(name: impl Into<String> + Send + 'static) -> Option<Node> => |s| s.find_node(&name.into());
        /// See [`GraphRead::get_edge`].
        fn get_edge(key: EdgeKey) -> Edge => |s| s.get_edge(&key);
        /// See [`GraphRead::list_nodes`].
        fn list_nodes(filter: NodeFilter, page: PageRequest) -> Page<Node> => |s| s.list_nodes(&filter, &page);
        /// See [`GraphRead::list_edges`].
        fn list_edges(filter: EdgeFilter, page: PageRequest) -> Page<Edge> => |s| s.list_edges(&filter, &page);
        /// See [`GraphRead::search`].
        fn search(query: SearchQuery) -> Page<SearchHit> => |s| s.search(&query);
        /// See [`GraphRead::edges_of`].
        fn edges_of(name: impl Into<String> + Send + 'static, direction: Direction, relations: Vec<RelationType>) -> Vec<Edge>
            => |s| s.edges_of(&name.into(), direction, &relations);
        /// See [`GraphRead::neighbour_names`].
        fn neighbour_names(name: impl Into<String> + Send + 'static, direction: Direction, relations: Vec<RelationType>) -> Vec<String>
            => |s| s.neighbour_names(&name.into(), direction, &relations);
        /// See [`GraphRead::reach`].
        fn reach(start: impl Into<String> + Send + 'static, options: ReachOptions) -> Vec<String>
            => |s| s.reach(&start.into(), &options);
        /// See [`GraphRead::reach_count`].
        fn reach_count(start: impl Into<String> + Send + 'static, options: ReachOptions) -> u64
            => |s| s.reach_count(&start.into(), &options);
        /// See [`GraphRead::traverse`].
        fn traverse(start: impl Into<String> + Send + 'static, options: TraverseOptions) -> Vec<Visit>
            => |s| s.traverse(&start.into(), &options);
        /// See [`GraphRead::shortest_path`].
        fn shortest_path(from: impl Into<String> + Send + 'static, to: impl Into<String> + Send + 'static, options: PathOptions) -> Option<Path>
            => |s| s.shortest_path(&from.into(), &to.into(), &options);
        /// See [`GraphRead::resolve_dependencies`].
        fn resolve_dependencies(name: impl Into<String> + Send + 'static) -> Vec<String> => |s| s.resolve_dependencies(&name.into());
        /// See [`GraphRead::dependents`].
        fn dependents(name: impl Into<String> + Send + 'static) -> Vec<String> => |s| s.dependents(&name.into());
        /// See [`GraphRead::get_schema`].
        fn get_schema(target: SchemaTarget) -> Option<Value> => |s| s.get_schema(&target);
        /// See [`GraphRead::list_schemas`].
        fn list_schemas() -> Vec<(SchemaTarget, Value)> => |s| s.list_schemas();
        /// See [`GraphRead::stats`].
        fn stats() -> Stats => |s| s.stats();
        /// See [`GraphRead::count_nodes`].
        fn count_nodes() -> u64 => |s| s.count_nodes();
        /// See [`GraphRead::count_edges`].
        fn count_edges() -> u64 => |s| s.count_edges();
        /// See [`Store::create_node`].
        fn create_node(node: Node) -> Node => |s| s.create_node(node);
        /// See [`Store::create_nodes`].
        fn create_nodes(nodes: Vec<Node>) -> usize => |s| s.create_nodes(nodes);
        /// See [`Store::update_node`].
        fn update_node(node: Node, expected_version: Option<u64>) -> Node => |s| s.update_node(node, expected_version);
        /// See [`Store::upsert_node`].
        fn upsert_node(node: Node) -> Node => |s| s.upsert_node(node);
        /// See [`Store::delete_node`].
        fn delete_node(name: impl Into<String> + Send + 'static, on_dependents: OnDependents) -> DeleteReport
            => |s| s.delete_node(&name.into(), on_dependents);
        /// See [`Store::create_edge`].
        fn create_edge(edge: Edge) -> Edge => |s| s.create_edge(edge);
        /// See [`Store::create_edges`].
        fn create_edges(edges: Vec<Edge>) -> usize => |s| s.create_edges(edges);
        /// See [`Store::update_edge`].
        fn update_edge(edge: Edge, expected_version: Option<u64>) -> Edge => |s| s.update_edge(edge, expected_version);
        /// See [`Store::upsert_edge`].
        fn upsert_edge(edge: Edge) -> Edge => |s| s.upsert_edge(edge);
        /// See [`Store::delete_edge`].
        fn delete_edge(key: EdgeKey) -> Edge => |s| s.delete_edge(&key);
        /// See [`Store::set_schema`].
        fn set_schema(target: SchemaTarget, schema: Value) -> () => |s| s.set_schema(target, schema);
        /// See [`Store::remove_schema`].
        fn remove_schema(target: SchemaTarget) -> bool => |s| s.remove_schema(&target);
        /// See [`Store::check`].
        fn check() -> CheckReport => |s| s.check();
        /// See [`Store::optimize`].
        fn optimize() -> () => |s| s.optimize();
        /// See [`backup::backup`].
        fn backup(dest: impl Into<PathBuf> + Send + 'static) -> Manifest => |s| backup::backup(s, &dest.into());
        /// See [`backup::restore_into`].
        fn restore(dir: impl Into<PathBuf> + Send + 'static, mode: RestoreMode) -> RestoreReport
            => |s| backup::restore_into(&dir.into(), s, mode);
    }

    /// See [`backup::verify`].
    pub async fn verify(dir: impl Into<PathBuf> + Send + 'static) -> Result<VerifyReport> {
        let dir = dir.into();
        off_runtime(move || backup::verify(&dir)).await
    }
}

impl From<Store> for AsyncStore {
    fn from(store: Store) -> Self {
        Self::new(store)
    }
}
