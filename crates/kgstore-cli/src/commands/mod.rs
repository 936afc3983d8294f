//! Running the commands.

mod admin;
mod demo;
mod doc;
mod edge;
mod events;
mod graph;
mod history;
mod inspect;
mod mcp;
mod node;
mod perf;
mod schema;
mod screenplay;
mod search;
mod transfer;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kgstore::{Error, ReadTx, Store, StoreUrl};

use crate::cli::{Cli, Command};
use crate::output::Output;

/// What every command gets.
pub(crate) struct Ctx<'a> {
    /// The store URL.
    pub(crate) url: &'a str,
    /// Whether the URL came from `KGSTORE_URL`.
    pub(crate) url_from_env: bool,
    /// Where results go.
    pub(crate) out: &'a mut Output,
    /// Whether to draw progress bars.
    pub(crate) progress: bool,
    /// The revision read commands read at (`--at`).
    pub(crate) at: Option<&'a str>,
    /// The stores this run opened, with their performance records (see `perf_record`).
    pub(crate) opened: RefCell<Vec<(PathBuf, Store)>>,
    /// Whether this run's figures go into the records (not after a reset).
    pub(crate) record: Cell<bool>,
    /// Whether opening a `memory://` store says on stderr that it lives only as
    /// long as the command (not for `mcp`, whose store lives as long as the
    /// server, nor with `--json`); cleared once said.
    pub(crate) memory_note: Cell<bool>,
}

impl Ctx<'_> {
    /// Opens the store for a command that writes: a missing store (and its folder) is created.
    pub(crate) fn open_for_write(&self) -> Result<Store> {
        if let Some(at) = self.at {
            return Err(Error::invalid_input(
                format!("--at {at}"),
                "only commands that read can look at a past revision",
            )
            .into());
        }
        let url = self.parse_url()?;
        if is_file_backed(&url) {
            // Before any folder is created for it.
            url.required_path()?;
        }
        if let Some(parent) = file_parent(&url) {
            std::fs::create_dir_all(&parent).map_err(|e| folder_error(&url.path, &parent, e))?;
        }
        if is_file_backed(&url) && url.options.creates() && !Path::new(&url.path).exists() {
            // A store about to be created in a folder that takes no file (a
            // permission, a read-only file system): said here, as for any file the
            // CLI writes, where the backend would say "unable to open database
            // file" (SQLite) or name a temporary folder (git).
            drop(temp_beside(Path::new(&url.path))?);
        }
        let store = kgstore::registry::global().open_url(&url)?;
        self.opened(&url, &store);
        Ok(store)
    }

    /// The store URL, parsed. An empty one that came from an empty `KGSTORE_URL`
    /// (set, but to nothing) says so: the default applies only when it is unset.
    /// Every command that opens the store parses its URL here.
    pub(crate) fn parse_url(&self) -> Result<StoreUrl> {
        if self.url.is_empty() && self.url_from_env {
            return Err(Error::invalid_input(
                "store URL ''",
                format!(
                    "KGSTORE_URL is set but empty: unset it for the default, {}, or give --store",
                    crate::cli::DEFAULT_STORE
                ),
            )
            .into());
        }
        Ok(StoreUrl::parse(self.url)?)
    }

    /// Notes a store this run opened, to add its figures to its performance record.
    fn opened(&self, url: &StoreUrl, store: &Store) {
        if url.scheme == "memory" && self.memory_note.replace(false) {
            // Said once: a new user's `node create` on memory:// reports success,
            // and the next command finds nothing.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "note: a memory:// store lives only as long as this command: it starts empty \
                 and what the command writes is gone when it ends (sqlite:// or json:// keep \
                 a store; memory:// suits `kgstore mcp`, which keeps it while it serves)"
            );
        }
        if let Some(path) = crate::perf_record::path_for(url) {
            self.opened.borrow_mut().push((path, store.clone()));
        }
    }

    /// Adds the figures of the stores this run opened to their performance records
    /// (best effort: a record that cannot be written is noted in the log only).
    fn record_perf(&self) {
        if !self.record.get() || !crate::perf_record::enabled() {
            return;
        }
        for (path, store) in self.opened.borrow().iter() {
            if let Err(e) = crate::perf_record::add(path, &store.metrics()) {
                tracing::debug!(path = %path.display(), error = %format!("{e:#}"), "performance record not written");
            }
        }
    }

    /// Opens the store for a command that only reads: a missing store is an error, not
    /// created, and a file-backed store is opened read-only, so that readers can share
    /// it and a reader never writes (not even a recovery).
    pub(crate) fn open_existing(&self) -> Result<Store> {
        let store = self.open_existing_store()?;
        match self.at {
            None => Ok(store),
            Some(revision) => Ok(at_revision(&store, revision)?),
        }
    }

    /// Opens the store itself as [`Ctx::open_existing`] does, whatever `--at` says.
    pub(crate) fn open_existing_store(&self) -> Result<Store> {
        let mut url = self.parse_url()?;
        if is_file_backed(&url) {
            url.required_path()?;
            if !Path::new(&url.path).exists() {
                return Err(Error::invalid_input(
                    format!("store {}", self.url),
                    "it does not exist; `kgstore init` (or any command that writes) creates it",
                )
                .into());
            }
            url.options.read_only = true;
        }
        let store = kgstore::registry::global().open_url(&url)?;
        self.opened(&url, &store);
        Ok(store)
    }

    /// A read snapshot of `store`: at the `--at` revision when one is given, so a
    /// backend without history (or without documents at a revision) says so itself.
    pub(crate) fn snapshot<'s>(&self, store: &'s Store) -> Result<ReadTx<'s>> {
        Ok(match self.at {
            Some(revision) => store.read_at(revision)?,
            None => store.read()?,
        })
    }

    /// Opens the store itself, for commands about its history (which name their
    /// revisions as arguments, not with `--at`).
    pub(crate) fn open_history(&self) -> Result<Store> {
        if self.at.is_some() {
            return Err(Error::invalid_input(
                "--at",
                "history commands take their revisions as arguments",
            )
            .into());
        }
        self.open_existing()
    }
}

fn is_file_backed(url: &StoreUrl) -> bool {
    matches!(url.scheme.as_str(), "sqlite" | "json" | "git")
}

/// The store as it was at `revision`, copied into memory, so every read command
/// (export and stats included) reads it as it reads a store.
fn at_revision(store: &Store, revision: &str) -> kgstore::Result<Store> {
    use kgstore::{EdgeFilter, GraphRead, GraphState, MemoryBackend, NodeFilter, PageRequest};
    let snapshot = store.read_at(revision)?;
    let mut state = GraphState::new();
    let mut page = PageRequest::first(10_000);
    loop {
        let got = snapshot.list_nodes(&NodeFilter::default(), &page)?;
        got.items.into_iter().for_each(|n| state.put_node(n));
        match got.next_cursor {
            Some(cursor) => page = page.after(Some(cursor)),
            None => break,
        }
    }
    let mut page = PageRequest::first(10_000);
    loop {
        let got = snapshot.list_edges(&EdgeFilter::default(), &page)?;
        got.items.into_iter().for_each(|e| state.put_edge(e));
        match got.next_cursor {
            Some(cursor) => page = page.after(Some(cursor)),
            None => break,
        }
    }
    for (target, schema) in snapshot.list_schemas()? {
        state.put_schema(target, schema);
    }
    Ok(Store::new(MemoryBackend::from_state(state)))
}

/// The folder a file-backed store lives in, to create before opening.
fn file_parent(url: &StoreUrl) -> Option<std::path::PathBuf> {
    if !is_file_backed(url) || url.path.is_empty() {
        return None;
    }
    Path::new(&url.path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// Why the folder `parent` of the store at `path` could not be created: a part
/// of it that is a file is named as such (create_dir_all says "File exists").
fn folder_error(path: &str, parent: &Path, e: std::io::Error) -> Error {
    let file = parent
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()));
    match file {
        Some(file) => Error::io(
            path,
            std::io::Error::new(
                e.kind(),
                format!("{} is a file, not a folder", file.display()),
            ),
        ),
        None => Error::io(parent, e),
    }
}

/// A temporary file beside `path` (its contents are renamed over `path` once
/// whole). A failure names `path` and why its folder took no file (a missing
/// folder, a permission), never the temporary file's random name.
///
/// The file gets the permissions of the file it replaces, or those any new file
/// gets (0666 less the umask) rather than the temporary file's private 0600: a
/// file the user asked for is theirs to share, as `cp` would make it.
pub(crate) fn temp_beside(path: &Path) -> kgstore::Result<tempfile::NamedTempFile> {
    if path.is_dir() {
        // The rename over it would fail as "Is a directory", or for `.` as "Device
        // or resource busy": the user gave a folder where a file was asked for.
        return Err(Error::invalid_input(
            path.display().to_string(),
            "is a folder: give a file's path (the file is created, or replaced once whole)",
        ));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".kgstore-out-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let temp = builder.tempfile_in(folder).map_err(|e| {
        let why = match std::fs::metadata(folder) {
            Ok(meta) if meta.is_dir() => {
                let cause = e.raw_os_error().map_or_else(
                    || e.kind().to_string(),
                    |code| std::io::Error::from_raw_os_error(code).to_string(),
                );
                format!("cannot create a file in {}: {cause}", folder.display())
            }
            Ok(_) => format!("{} is a file, not a folder", folder.display()),
            Err(m) if m.kind() == std::io::ErrorKind::NotFound => format!(
                "its folder {} does not exist (create it first)",
                folder.display()
            ),
            Err(m) => format!("cannot reach its folder {}: {m}", folder.display()),
        };
        Error::io(path, std::io::Error::new(e.kind(), why))
    })?;
    // The file it replaces keeps its permissions (an executable stays one).
    if let Some(meta) = std::fs::metadata(path)
        .ok()
        .filter(std::fs::Metadata::is_file)
    {
        temp.as_file()
            .set_permissions(meta.permissions())
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(temp)
}

/// An error that only carries an exit code: the command has said everything on
/// stdout (`doc exists` answering "no" with exit code 3).
#[derive(Debug)]
pub(crate) struct Quiet(pub(crate) i32);

impl std::fmt::Display for Quiet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for Quiet {}

pub(crate) use mcp::log_config as mcp_log_config;

/// Runs the command `cli` names.
pub(crate) fn execute(cli: &Cli, out: &mut Output, progress: bool) -> Result<()> {
    let mut ctx = Ctx {
        url: &cli.store,
        url_from_env: cli.store_from_env,
        out,
        progress,
        at: cli.at.as_deref(),
        opened: RefCell::new(Vec::new()),
        record: Cell::new(true),
        memory_note: Cell::new(!cli.json && !matches!(cli.command, Command::Mcp(_))),
    };
    let outcome = run_command(cli, &mut ctx);
    ctx.record_perf();
    // Something not found at a past revision may exist now (or the other way
    // round): the message says which revision was read.
    let revision = match &cli.command {
        Command::Show(args) => args.spec.split_once(':').map(|(revision, _)| revision),
        _ => cli.at.as_deref(),
    };
    outcome.map_err(|e| match revision {
        Some(revision) if crate::exit_code(&e) == crate::EXIT_NOT_FOUND => {
            e.context(format!("at revision {revision}"))
        }
        _ => e,
    })
}

fn run_command(cli: &Cli, ctx: &mut Ctx<'_>) -> Result<()> {
    match &cli.command {
        Command::Init => admin::init(ctx),
        Command::Node(command) => node::run(ctx, command),
        Command::Edge(command) => edge::run(ctx, command),
        Command::Search(args) => search::run(ctx, args),
        Command::Neighbors(args) => graph::neighbors(ctx, args),
        Command::Traverse(args) => graph::traverse(ctx, args),
        Command::Path(args) => graph::path(ctx, args),
        Command::Deps(command) => graph::deps(ctx, command),
        Command::Schema(command) => schema::run(ctx, command),
        Command::Doc(command) => doc::run(ctx, command),
        Command::Events(command) => events::run(ctx, command),
        Command::Changefeed { action } => events::changefeed(ctx, *action),
        Command::Screenplay(command) => screenplay::run(ctx, command),
        Command::Import(args) => transfer::import(ctx, args),
        Command::Export(args) => transfer::export(ctx, args),
        Command::Backup(args) => transfer::backup(ctx, args),
        Command::Verify(args) => transfer::verify(ctx, args),
        Command::Restore(args) => transfer::restore(ctx, args),
        Command::Stats(args) if args.perf => perf::stats(ctx, args),
        Command::Stats(_) => admin::stats(ctx),
        Command::Check(args) if args.without_opening => inspect::check_without_opening(ctx),
        Command::Check(_) => admin::check(ctx),
        Command::Optimize => admin::optimize(ctx),
        Command::Log(args) => history::log(ctx, args),
        Command::Diff(args) => history::diff(ctx, args),
        Command::Show(args) => history::show(ctx, args),
        Command::LogReview(args) => perf::log_review(ctx, args),
        Command::Demo(args) => demo::run(ctx, args).context("the demo failed"),
        Command::Mcp(args) => mcp::run(ctx, args),
    }
}
