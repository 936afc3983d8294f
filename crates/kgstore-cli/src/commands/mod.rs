//! Running the commands.

mod admin;
mod demo;
mod doc;
mod edge;
mod graph;
mod history;
mod mcp;
mod node;
mod schema;
mod screenplay;
mod transfer;

use std::path::Path;

use anyhow::{Context, Result};
use kgstore::{Error, ReadTx, Store, StoreUrl};

use crate::cli::{Cli, Command};
use crate::output::Output;

/// What every command gets.
pub(crate) struct Ctx<'a> {
    /// The store URL.
    pub(crate) url: &'a str,
    /// Where results go.
    pub(crate) out: &'a mut Output,
    /// Whether to draw progress bars.
    pub(crate) progress: bool,
    /// The revision read commands read at (`--at`).
    pub(crate) at: Option<&'a str>,
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
        let url = StoreUrl::parse(self.url)?;
        if let Some(parent) = file_parent(&url) {
            std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        }
        Ok(kgstore::registry::global().open_url(&url)?)
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
        let mut url = StoreUrl::parse(self.url)?;
        if is_file_backed(&url) {
            if !Path::new(&url.path).exists() {
                return Err(Error::invalid_input(
                    format!("store {}", self.url),
                    "it does not exist; `kgstore init` (or any command that writes) creates it",
                )
                .into());
            }
            url.options.read_only = true;
        }
        Ok(kgstore::registry::global().open_url(&url)?)
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

/// Runs the command `cli` names.
pub(crate) fn execute(cli: &Cli, out: &mut Output, progress: bool) -> Result<()> {
    let mut ctx = Ctx {
        url: &cli.store,
        out,
        progress,
        at: cli.at.as_deref(),
    };
    match &cli.command {
        Command::Init => admin::init(&mut ctx),
        Command::Node(command) => node::run(&mut ctx, command),
        Command::Edge(command) => edge::run(&mut ctx, command),
        Command::Neighbors(args) => graph::neighbors(&mut ctx, args),
        Command::Traverse(args) => graph::traverse(&mut ctx, args),
        Command::Path(args) => graph::path(&mut ctx, args),
        Command::Deps(command) => graph::deps(&mut ctx, command),
        Command::Schema(command) => schema::run(&mut ctx, command),
        Command::Doc(command) => doc::run(&mut ctx, command),
        Command::Screenplay(command) => screenplay::run(&mut ctx, command),
        Command::Import(args) => transfer::import(&mut ctx, args),
        Command::Export(args) => transfer::export(&mut ctx, args),
        Command::Backup(args) => transfer::backup(&mut ctx, args),
        Command::Verify(args) => transfer::verify(&mut ctx, args),
        Command::Restore(args) => transfer::restore(&mut ctx, args),
        Command::Stats => admin::stats(&mut ctx),
        Command::Check => admin::check(&mut ctx),
        Command::Optimize => admin::optimize(&mut ctx),
        Command::Log(args) => history::log(&mut ctx, args),
        Command::Diff(args) => history::diff(&mut ctx, args),
        Command::Demo(args) => demo::run(&mut ctx, args).context("the demo failed"),
        Command::Mcp(args) => mcp::run(&mut ctx, args),
    }
}
