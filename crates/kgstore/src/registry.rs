//! The registry of backends by URL scheme, and opening stores through it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use kgstore_core::{Backend, Error, MemoryBackend, Observer, Operation, Result, Store};

use crate::url::{OpenOptions, StoreUrl};

/// Makes a backend for a parsed URL.
pub type Factory = Arc<dyn Fn(&StoreUrl) -> Result<Box<dyn Backend>> + Send + Sync>;

/// Backend factories by URL scheme. [`Registry::default`] knows the built-in
/// schemes; [`Registry::register`] adds an application's own backends.
///
/// ```
/// use kgstore::{MemoryBackend, Registry};
///
/// let mut registry = Registry::default();
/// // A custom scheme: here simply memory stores with a lock timeout.
/// registry.register("scratch", |_url| Ok(Box::new(MemoryBackend::new())))?;
/// let store = registry.open("scratch://anything")?;
/// assert_eq!(store.backend_name(), "memory");
/// # Ok::<(), kgstore::Error>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("schemes", &self.factories.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for Registry {
    /// A registry with the built-in schemes: `memory`, and `sqlite` and `json`
    /// when their cargo features (on by default) are enabled.
    fn default() -> Self {
        let mut registry = Self::empty();
        registry.insert("memory", Arc::new(open_memory));
        #[cfg(feature = "sqlite")]
        registry.insert("sqlite", Arc::new(open_sqlite));
        #[cfg(feature = "json")]
        registry.insert("json", Arc::new(open_json));
        #[cfg(feature = "git")]
        registry.insert("git", Arc::new(open_git));
        registry
    }
}

impl Registry {
    /// A registry that knows no scheme.
    pub fn empty() -> Self {
        Self {
            factories: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) the factory for `scheme` (lower-case letters, digits, `+`, `-`).
    pub fn register(
        &mut self,
        scheme: &str,
        factory: impl Fn(&StoreUrl) -> Result<Box<dyn Backend>> + Send + Sync + 'static,
    ) -> Result<()> {
        StoreUrl::parse(&format!("{scheme}://")).map_err(|_| {
            Error::invalid_input(
                format!("scheme '{scheme}'"),
                "expected lower-case letters, digits, '+' or '-'",
            )
        })?;
        self.insert(scheme, Arc::new(factory));
        Ok(())
    }

    fn insert(&mut self, scheme: &str, factory: Factory) {
        self.factories.insert(scheme.to_owned(), factory);
    }

    /// The schemes this registry can open.
    pub fn schemes(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// Opens the store a URL names.
    pub fn open(&self, url: &str) -> Result<Store> {
        self.open_url(&StoreUrl::parse(url)?)
    }

    /// Opens the store a parsed URL names; with `verify`, refuses one that fails its check.
    pub fn open_url(&self, url: &StoreUrl) -> Result<Store> {
        let factory = self.factories.get(&url.scheme).ok_or_else(|| {
            Error::invalid_input(
                format!("store URL scheme '{}'", url.scheme),
                format!(
                    "no backend is registered for it; known: {}",
                    self.schemes().join(", ")
                ),
            )
        })?;
        let options = &url.options;
        let observer = Observer::new(options.metrics.unwrap_or(true), options.slow_threshold);
        let _span = tracing::info_span!(
            "open",
            scheme = url.scheme.as_str(),
            path = url.path.as_str(),
            read_only = options.read_only
        )
        .entered();
        let timer = observer.start(Operation::Open);
        let opened = {
            // Lock waits and recovery reported while the backend opens count in this store.
            let _context = observer.enter();
            factory(url)
        };
        let store = Store::with_observer(timer.finish(opened)?, observer);
        tracing::debug!(
            backend = store.backend_name(),
            durability = store.backend().durability().map(|d| d.as_str()),
            "store opened"
        );
        if url.options.verify {
            let report = store.check()?;
            if !report.is_ok() {
                let listed: Vec<String> = report
                    .problems
                    .iter()
                    .take(20)
                    .map(ToString::to_string)
                    .collect();
                return Err(Error::corrupt(
                    &url.path,
                    format!(
                        "{} problem(s) found before use: {}",
                        report.problems.len(),
                        listed.join("; ")
                    ),
                ));
            }
        }
        Ok(store)
    }
}

fn open_memory(url: &StoreUrl) -> Result<Box<dyn Backend>> {
    url.options.refuse_extra("memory")?;
    if url.options.read_only {
        return Err(Error::invalid_input(
            "store URL 'memory://?read_only=true'",
            "a new memory store is empty; read-only makes no sense",
        ));
    }
    let backend = match url.options.lock_timeout {
        Some(timeout) => MemoryBackend::new().with_lock_timeout(timeout),
        None => MemoryBackend::new(),
    };
    Ok(Box::new(backend))
}

/// `sqlite://PATH`: the SQLite backend; `reader_pool_size=N` and `mmap_size=BYTES`
/// are also understood.
#[cfg(feature = "sqlite")]
fn open_sqlite(url: &StoreUrl) -> Result<Box<dyn Backend>> {
    use kgstore_sqlite::{SqliteBackend, SqliteOptions};

    let path = url.required_path()?;
    let mut options = url.options.clone();
    let mut sqlite = SqliteOptions::default()
        .durability(options.durability)
        .read_only(options.read_only)
        .create_if_missing(options.creates())
        // SQLite's own pre-use check also turns on `cell_size_check` for the session.
        .verify_on_open(options.verify);
    if let Some(timeout) = options.lock_timeout {
        sqlite = sqlite.lock_timeout(timeout);
    }
    let mut number = |key: &str, expected: &str| -> Result<Option<u64>> {
        options
            .extra
            .remove(key)
            .map(|value| {
                crate::url::parse_digits(&value).ok_or_else(|| {
                    Error::invalid_input(format!("{key} '{value}'"), expected.to_owned())
                })
            })
            .transpose()
    };
    if let Some(size) = number("reader_pool_size", "expected a whole number of connections")? {
        sqlite = sqlite.reader_pool_size(usize::try_from(size).unwrap_or(usize::MAX));
    }
    if let Some(bytes) = number("mmap_size", "expected a whole number of bytes")? {
        sqlite = sqlite.mmap_size(bytes);
    }
    options.refuse_extra("sqlite")?;
    Ok(Box::new(SqliteBackend::open(path, sqlite)?))
}

/// `json://PATH`: the JSON-files backend.
#[cfg(feature = "json")]
fn open_json(url: &StoreUrl) -> Result<Box<dyn Backend>> {
    use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};

    let path = url.required_path()?;
    url.options.refuse_extra("json")?;
    let mut options = JsonFsOptions::default()
        .durability(url.options.durability)
        .read_only(url.options.read_only)
        .create_if_missing(url.options.creates());
    if let Some(timeout) = url.options.lock_timeout {
        options = options.lock_timeout(Some(timeout));
    }
    Ok(Box::new(JsonFsBackend::open(path, options)?))
}

/// `git://PATH`: the git backend; also `branch=NAME`, `author=Name <email>`,
/// `committer=Name <email>`, `lfs_threshold=BYTES`.
#[cfg(feature = "git")]
fn open_git(url: &StoreUrl) -> Result<Box<dyn Backend>> {
    use kgstore_git::{GitBackend, GitOptions, Identity};

    let path = url.required_path()?;
    let mut options = url.options.clone();
    let mut git = GitOptions::default()
        .durability(options.durability)
        .read_only(options.read_only)
        .create_if_missing(options.creates());
    if let Some(timeout) = options.lock_timeout {
        git = git.lock_timeout(timeout);
    }
    if let Some(branch) = options.extra.remove("branch") {
        git = git.branch(branch)?;
    }
    if let Some(author) = options.extra.remove("author") {
        git = git.author(Identity::parse(&author)?);
    }
    if let Some(committer) = options.extra.remove("committer") {
        git = git.committer(Identity::parse(&committer)?);
    }
    if let Some(bytes) = options.extra.remove("lfs_threshold") {
        let bytes: u64 = crate::url::parse_digits(&bytes).ok_or_else(|| {
            Error::invalid_input(
                format!("lfs_threshold '{bytes}'"),
                "expected a number of bytes",
            )
        })?;
        git = git.lfs_threshold(bytes);
    }
    options.refuse_extra("git")?;
    Ok(Box::new(GitBackend::open(path, git)?))
}

static GLOBAL: LazyLock<RwLock<Registry>> = LazyLock::new(|| RwLock::new(Registry::default()));

/// A copy of the process-wide registry that [`open`](crate::open) uses.
pub fn global() -> Registry {
    GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Adds a backend to the process-wide registry, for [`open`](crate::open) and `Store::open`.
pub fn register(
    scheme: &str,
    factory: impl Fn(&StoreUrl) -> Result<Box<dyn Backend>> + Send + Sync + 'static,
) -> Result<()> {
    GLOBAL
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .register(scheme, factory)
}

/// Opens a store by URL through the process-wide registry.
///
/// ```
/// use kgstore::GraphRead;
///
/// let store = kgstore::open("memory://")?;
/// assert_eq!(store.count_nodes()?, 0);
/// # Ok::<(), kgstore::Error>(())
/// ```
pub fn open(url: &str) -> Result<Store> {
    global().open(url)
}

/// `Store::open(url)`: opening by URL as an associated function of the store.
///
/// ```
/// use kgstore::{Open, Store};
///
/// let store = Store::open("memory://")?;
/// # let _ = store;
/// # Ok::<(), kgstore::Error>(())
/// ```
pub trait Open: Sized {
    /// Opens a store by URL through the process-wide registry.
    fn open(url: &str) -> Result<Self>;

    /// Opens a store by URL with options on top of the URL's parameters.
    fn open_with(url: &str, options: &OpenOptions) -> Result<Self>;
}

impl Open for Store {
    fn open(url: &str) -> Result<Self> {
        open(url)
    }

    fn open_with(url: &str, options: &OpenOptions) -> Result<Self> {
        options.open(url)
    }
}
