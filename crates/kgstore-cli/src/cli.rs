//! The command line's grammar.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// The default store when neither `--store` nor `KGSTORE_URL` is given.
pub const DEFAULT_STORE: &str = "sqlite://./data/kgstore.db";

/// kgstore: a knowledge graph of typed nodes and edges, kept safely on disk.
#[derive(Debug, Parser)]
#[command(name = "kgstore", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// The store: sqlite://PATH, json://PATH, git://PATH or memory:// (options as ?key=value).
    #[arg(long, global = true, env = "KGSTORE_URL", default_value = DEFAULT_STORE)]
    pub store: String,

    /// Whether `store` came from `KGSTORE_URL` (set by [`crate::run`] from what
    /// clap saw), so that a refusal of it can name the variable.
    #[arg(skip)]
    pub store_from_env: bool,

    /// Print stable JSON instead of tables (errors too, on stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// Read the store as it was at this revision (git:// stores: a commit id, `main~3`,
    /// a tag); for every command that only reads.
    #[arg(long, global = true, value_name = "REV")]
    pub at: Option<String>,

    /// Log what the store does to stderr: -v info, -vv debug (names and keys too),
    /// -vvv trace. KGSTORE_LOG takes a RUST_LOG-style filter instead.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Also append the log to this file as JSON lines (at info level unless -v or
    /// KGSTORE_LOG say otherwise); `kgstore log-review FILE` summarises it.
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Shown after `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 success, 1 internal or I/O error (or a wait that timed out), \
2 invalid input, 3 not found, 4 conflict (exists, stale version, has dependents, wrong expected \
version, deleted stream, a stale delivery token), 5 locked by another process, 6 corrupt data.";

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the store if it does not exist, and say where it is.
    Init,
    /// Create, read, update, delete and list nodes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Create, read, delete and list edges.
    #[command(subcommand)]
    Edge(EdgeCommand),
    /// Ranked full-text search over names, types, observations and attributes.
    Search(SearchArgs),
    /// The edges of a node and the nodes at their other ends.
    Neighbors(NeighborsArgs),
    /// Every node within some hops of a node.
    Traverse(TraverseArgs),
    /// A shortest path between two nodes.
    Path(PathArgs),
    /// Dependencies: build order and dependents.
    #[command(subcommand)]
    Deps(DepsCommand),
    /// JSON Schemas for attributes of node types and relation types.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Documents: bytes under path-like keys (scripts/pilot.fountain), kept beside the graph.
    #[command(subcommand)]
    Doc(DocCommand),
    /// The event store: streams, reads, tails, consumer groups, dead letters, batches, schemas.
    #[command(subcommand)]
    Events(crate::cli_events::EventsCommand),
    /// The change feed: every graph and document change recorded as an event in `$changes`.
    Changefeed {
        /// on, off or status.
        #[arg(value_enum)]
        action: crate::cli_events::ChangefeedArg,
    },
    /// Fountain screenplays: import, export, queries, embeddings (`screenplay --help`).
    #[command(subcommand)]
    Screenplay(ScreenplayCommand),
    /// Read nodes and edges from a file (jsonl, or an MCP memory file).
    ///
    /// One transaction (or one per --batch-size lines): a refused line stores
    /// nothing and the error names its line, a relation naming a node that does
    /// not exist too (found at commit: `invalid edge A -[knows]-> B (line 2) at /to:
    /// node 'B' does not exist`).
    Import(ImportArgs),
    /// Write the store to a file or stdout (jsonl, mcp, graphml, dot).
    Export(ExportArgs),
    /// Back the store up into a new folder.
    Backup(BackupArgs),
    /// Check a backup folder without loading it.
    Verify(VerifyArgs),
    /// Load a backup into the store.
    Restore(RestoreArgs),
    /// Counts of nodes, edges and schemas, by type; with --perf, performance figures.
    Stats(StatsArgs),
    /// Check the store's storage and invariants.
    Check(CheckArgs),
    /// Reorganise the store for speed and size.
    Optimize,
    /// The store's history (git:// stores), newest first.
    Log(LogArgs),
    /// What changed between two revisions (git:// stores): nodes, edges, schemas, documents.
    Diff(DiffArgs),
    /// A document's bytes at a revision (git:// stores): `kgstore show main~2:scripts/pilot.fountain`.
    Show(ShowArgs),
    /// Summarise a JSON log file (--log-file): errors by kind, slowest operations,
    /// lock contention, recovery.
    LogReview(LogReviewArgs),
    /// Build a knowledge graph of this workspace's crates and show what kgstore does with it.
    Demo(DemoArgs),
    /// Serve the store over MCP on stdin/stdout: the MCP memory server's tools, for AI agents.
    Mcp(McpArgs),
}

/// `check`'s options.
#[derive(Debug, Args, Default)]
pub struct CheckArgs {
    /// Look at a json:// store's files without opening it (read-only: no lock, no
    /// recovery, nothing written): every damaged file with its reason, for a store
    /// an open refuses (its refusal lists the first 20).
    #[arg(long)]
    pub without_opening: bool,
}

/// Node commands.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Create a node.
    Create(NodeCreateArgs),
    /// Show a node.
    Get {
        /// The node's name.
        name: String,
    },
    /// Change a node.
    Update(NodeUpdateArgs),
    /// Delete a node and its edges.
    Delete(NodeDeleteArgs),
    /// List nodes, filtered and a page at a time.
    List(NodeListArgs),
}

/// Attributes as JSON or key=value pairs.
#[derive(Debug, Args, Default)]
pub struct AttrArgs {
    /// An attribute as KEY=VALUE (VALUE is read as JSON if it parses, else as text); repeatable.
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    pub attr: Vec<String>,
    /// All attributes as one JSON object.
    #[arg(long = "attrs", value_name = "JSON")]
    pub attrs: Option<String>,
}

/// `node create`.
#[derive(Debug, Args)]
pub struct NodeCreateArgs {
    /// The node's name (its identity).
    pub name: String,
    /// The node's type: lower-case letters, digits and '_'.
    #[arg(long = "type", short = 't')]
    pub node_type: String,
    /// An observation; repeatable.
    #[arg(long = "observation", short = 'o')]
    pub observations: Vec<String>,
    /// Attributes.
    #[command(flatten)]
    pub attrs: AttrArgs,
    /// A node this one depends on; repeatable.
    #[arg(long = "dep", short = 'd')]
    pub deps: Vec<String>,
    /// A tag; repeatable.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// A status such as active.
    #[arg(long)]
    pub status: Option<String>,
    /// Who wrote it.
    #[arg(long)]
    pub author: Option<String>,
    /// Where it came from.
    #[arg(long)]
    pub source: Option<String>,
}

/// `node update`.
#[derive(Debug, Args)]
pub struct NodeUpdateArgs {
    /// The node's name.
    pub name: String,
    /// A new type.
    #[arg(long = "type", short = 't')]
    pub node_type: Option<String>,
    /// Add an observation; repeatable.
    #[arg(long = "add-observation", short = 'o')]
    pub add_observations: Vec<String>,
    /// Remove all observations before adding.
    #[arg(long)]
    pub clear_observations: bool,
    /// Set attributes (merged into the existing ones; --attrs replaces them all).
    #[command(flatten)]
    pub attrs: AttrArgs,
    /// Remove an attribute; repeatable.
    #[arg(long = "unset-attr", value_name = "KEY")]
    pub unset_attr: Vec<String>,
    /// Add a dependency; repeatable.
    #[arg(long = "add-dep")]
    pub add_deps: Vec<String>,
    /// Remove a dependency; repeatable.
    #[arg(long = "remove-dep")]
    pub remove_deps: Vec<String>,
    /// Add a tag; repeatable.
    #[arg(long = "add-tag")]
    pub add_tags: Vec<String>,
    /// Remove a tag; repeatable.
    #[arg(long = "remove-tag")]
    pub remove_tags: Vec<String>,
    /// A new status.
    #[arg(long)]
    pub status: Option<String>,
    /// Fail with a conflict unless the stored version is this one.
    #[arg(long = "expect-version", value_name = "VERSION")]
    pub expect_version: Option<u64>,
}

/// `node delete`.
#[derive(Debug, Args)]
pub struct NodeDeleteArgs {
    /// The node's name.
    pub name: String,
    /// Remove it from its dependents' dependencies instead of refusing.
    #[arg(long, conflicts_with = "cascade")]
    pub detach: bool,
    /// Delete every node that depends on it too.
    #[arg(long)]
    pub cascade: bool,
}

/// Pagination flags.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// At most this many items.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Continue after the cursor a previous page printed.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// `node list`.
#[derive(Debug, Args)]
pub struct NodeListArgs {
    /// Only nodes of this type; repeatable (any of them).
    #[arg(long = "type", short = 't')]
    pub types: Vec<String>,
    /// Only names starting with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only nodes with this tag; repeatable (all of them).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only nodes with this status.
    #[arg(long)]
    pub status: Option<String>,
    /// Only nodes whose attribute at a JSON pointer equals a value: /attributes/lang=rust; repeatable.
    #[arg(long = "where", value_name = "POINTER=VALUE")]
    pub wheres: Vec<String>,
    /// Only nodes written at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only nodes whose name or an observation contains this, ignoring case.
    #[arg(long)]
    pub text: Option<String>,
    /// Pagination.
    #[command(flatten)]
    pub page: PageArgs,
}

/// `search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The words to look for, in any order, case and accents (the last also as a
    /// prefix); every node holding the whole query as text is found too.
    pub query: String,
    /// Only nodes of this type; repeatable (any of them).
    #[arg(long = "type", short = 't')]
    pub types: Vec<String>,
    /// At most this many hits.
    #[arg(long, default_value_t = kgstore::search::DEFAULT_SEARCH_LIMIT)]
    pub limit: usize,
    /// Continue after the cursor a previous page printed.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// An edge's key on the command line.
#[derive(Debug, Args)]
pub struct EdgeKeyArgs {
    /// The source node.
    pub from: String,
    /// The relation, e.g. depends_on, calls, or a custom identifier.
    pub relation: String,
    /// The target node.
    pub to: String,
}

/// Edge commands.
#[derive(Debug, Subcommand)]
pub enum EdgeCommand {
    /// Create an edge.
    Create(EdgeCreateArgs),
    /// Show an edge.
    Get(EdgeKeyArgs),
    /// Delete an edge.
    Delete(EdgeKeyArgs),
    /// List edges, filtered and a page at a time.
    List(EdgeListArgs),
}

/// `edge create`.
#[derive(Debug, Args)]
pub struct EdgeCreateArgs {
    /// The edge.
    #[command(flatten)]
    pub key: EdgeKeyArgs,
    /// The weight for weighted paths (≥ 0).
    #[arg(long, allow_negative_numbers = true)]
    pub weight: Option<f64>,
    /// How sure the source is, 0 to 1.
    #[arg(long, allow_negative_numbers = true)]
    pub confidence: Option<f64>,
    /// The relation holds both ways.
    #[arg(long)]
    pub bidirectional: bool,
    /// Where it came from.
    #[arg(long)]
    pub source: Option<String>,
    /// Attributes.
    #[command(flatten)]
    pub attrs: AttrArgs,
}

/// `edge list`.
#[derive(Debug, Args)]
pub struct EdgeListArgs {
    /// Only edges from this node.
    #[arg(long)]
    pub from: Option<String>,
    /// Only edges to this node.
    #[arg(long)]
    pub to: Option<String>,
    /// Only this relation; repeatable (any of them).
    #[arg(long = "rel")]
    pub relations: Vec<String>,
    /// Only edges weighing at least this.
    #[arg(long, allow_negative_numbers = true)]
    pub min_weight: Option<f64>,
    /// Only edges whose attribute at a JSON pointer equals a value; repeatable.
    #[arg(long = "where", value_name = "POINTER=VALUE")]
    pub wheres: Vec<String>,
    /// Pagination.
    #[command(flatten)]
    pub page: PageArgs,
}

/// Which way to follow edges.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum DirectionArg {
    /// Outgoing edges (and bidirectional ones arriving).
    #[default]
    Out,
    /// Incoming edges (and bidirectional ones leaving).
    In,
    /// Both.
    Both,
}

/// `neighbors`.
#[derive(Debug, Args)]
pub struct NeighborsArgs {
    /// The node.
    pub name: String,
    /// Which edges.
    #[arg(long, value_enum, default_value_t = DirectionArg::Both)]
    pub direction: DirectionArg,
    /// Only this relation; repeatable.
    #[arg(long = "rel")]
    pub relations: Vec<String>,
}

/// `traverse`.
#[derive(Debug, Args)]
pub struct TraverseArgs {
    /// The start node.
    pub name: String,
    /// How many hops.
    #[arg(long, default_value_t = 2)]
    pub depth: usize,
    /// Which way.
    #[arg(long, value_enum, default_value_t = DirectionArg::Out)]
    pub direction: DirectionArg,
    /// Only this relation; repeatable.
    #[arg(long = "rel")]
    pub relations: Vec<String>,
}

/// `path`.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// Where the path starts.
    pub from: String,
    /// Where it ends.
    pub to: String,
    /// Least total weight instead of fewest hops.
    #[arg(long)]
    pub weighted: bool,
    /// Which way.
    #[arg(long, value_enum, default_value_t = DirectionArg::Out)]
    pub direction: DirectionArg,
    /// Only this relation; repeatable.
    #[arg(long = "rel")]
    pub relations: Vec<String>,
    /// At most this many hops (hop searches only).
    #[arg(long)]
    pub max_depth: Option<usize>,
}

/// Dependency commands.
#[derive(Debug, Subcommand)]
pub enum DepsCommand {
    /// Everything a node depends on, in build order (dependencies first).
    Resolve {
        /// The node.
        name: String,
    },
    /// Everything that depends on a node, in rebuild order.
    Dependents {
        /// The node.
        name: String,
        /// Only the nodes that list it directly.
        #[arg(long)]
        direct: bool,
    },
}

/// What a schema applies to.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SchemaTargetArgs {
    /// A node type.
    #[arg(long)]
    pub node_type: Option<String>,
    /// A relation type.
    #[arg(long)]
    pub relation: Option<String>,
}

/// Schema commands.
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Register (or replace) a schema from a file, or - for stdin.
    Set {
        /// Its target.
        #[command(flatten)]
        target: SchemaTargetArgs,
        /// The JSON Schema file.
        file: PathBuf,
    },
    /// Show a schema.
    Get {
        /// Its target.
        #[command(flatten)]
        target: SchemaTargetArgs,
    },
    /// List every schema.
    List,
    /// Remove a schema.
    Remove {
        /// Its target.
        #[command(flatten)]
        target: SchemaTargetArgs,
    },
}

/// Document commands.
#[derive(Debug, Subcommand)]
pub enum DocCommand {
    /// Write a document from a file or stdin (create, or replace what is there).
    Put(DocPutArgs),
    /// Print a document's bytes as they are (binary-safe), or write them to a file.
    Get(DocGetArgs),
    /// Delete a document.
    Rm(DocRmArgs),
    /// Whether a document exists: exit code 0 if it does, 3 if not.
    Exists {
        /// The document's key.
        key: String,
    },
    /// A document's metadata: size, SHA-256, content type, version, times.
    Stat {
        /// The document's key.
        key: String,
    },
    /// List documents in key order, a page at a time.
    Ls(DocLsArgs),
}

/// `doc put`.
#[derive(Debug, Args)]
pub struct DocPutArgs {
    /// The document's key: path-like, such as scripts/pilot.fountain.
    pub key: String,
    /// The file to read, or - (the default) for stdin; without a FILE, stdin must
    /// not be a terminal (give - to type the bytes).
    pub file: Option<PathBuf>,
    /// Its media type (default: kept from the document it replaces, else guessed from the key's extension).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Fail with a conflict if a document is already stored at the key.
    #[arg(long, conflicts_with = "expect_version")]
    pub create_only: bool,
    /// Fail with a conflict unless the stored version is this one (0: unless none is stored).
    #[arg(long = "expect-version", value_name = "VERSION")]
    pub expect_version: Option<u64>,
}

/// `doc get`.
#[derive(Debug, Args)]
pub struct DocGetArgs {
    /// The document's key.
    pub key: String,
    /// Write the bytes to this file (replaced whole, only once they are all read) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `doc rm`.
#[derive(Debug, Args)]
pub struct DocRmArgs {
    /// The document's key.
    pub key: String,
    /// Succeed even if there is no such document (and say whether there was).
    #[arg(long, short = 'f')]
    pub force: bool,
}

/// `doc ls`.
#[derive(Debug, Args)]
pub struct DocLsArgs {
    /// Only keys starting with this (a folder: end it with /).
    #[arg(default_value = "")]
    pub prefix: String,
    /// List like folders: the documents directly under the prefix and its sub-folders. Only / is offered.
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<char>,
    /// Pagination.
    #[command(flatten)]
    pub page: PageArgs,
}

/// File formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// kgstore's JSON Lines (the lines of a backup).
    Jsonl,
    /// The MCP memory server's JSON Lines.
    Mcp,
    /// GraphML (export only).
    Graphml,
    /// Graphviz DOT (export only).
    Dot,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to read, or - for stdin.
    pub file: PathBuf,
    /// Its format.
    #[arg(long, value_enum, default_value_t = FormatArg::Jsonl)]
    pub format: FormatArg,
    /// Commit every N lines instead of all at once.
    #[arg(long)]
    pub batch_size: Option<usize>,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write (it must not exist); stdout if absent.
    pub file: Option<PathBuf>,
    /// The format.
    #[arg(long, value_enum, default_value_t = FormatArg::Jsonl)]
    pub format: FormatArg,
    /// DOT only: just this node's neighbourhood.
    #[arg(long)]
    pub around: Option<String>,
    /// DOT only: hops around --around (default 1).
    #[arg(long)]
    pub depth: Option<usize>,
}

/// `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The folder to create.
    pub dir: PathBuf,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup folder.
    pub dir: PathBuf,
}

/// `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup folder.
    pub dir: PathBuf,
    /// Replace what the store holds (atomically) instead of requiring it to be empty.
    #[arg(long)]
    pub replace: bool,
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo's stores and files go.
    #[arg(long, default_value = "./data")]
    pub dir: PathBuf,
    /// The Cargo workspace to read (default: the one kgstore was built from, else the current folder).
    #[arg(long)]
    pub manifest_path: Option<PathBuf>,
}

/// `kgstore log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only the revisions that changed this node.
    #[arg(long, value_name = "NAME", conflicts_with = "key")]
    pub node: Option<String>,
    /// Only the revisions that changed this document (its bytes or its metadata).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// At most this many revisions.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// `kgstore stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Performance figures instead: counts and latencies (p50, p99, max) of reads,
    /// write transactions, commits, lock waits and backups over every recorded run of
    /// kgstore on this store, errors by kind, and the backend's own figures.
    #[arg(long)]
    pub perf: bool,
    /// After printing them, clear the recorded performance figures.
    #[arg(long, requires = "perf")]
    pub reset: bool,
}

/// `kgstore log-review`.
#[derive(Debug, Args)]
pub struct LogReviewArgs {
    /// The JSON log file (written with --log-file).
    pub path: PathBuf,
    /// How many of the slowest operations to list.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
}

/// `kgstore show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// REVISION:KEY — a revision git understands (an id, `main~3`, a tag), a colon, a
    /// document's key (split at the first colon, so the key may hold colons).
    #[arg(value_name = "REV:KEY")]
    pub spec: String,
    /// Write the bytes to this file (replaced whole, only once they are all read) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `kgstore diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier revision.
    pub from: String,
    /// The later revision.
    pub to: String,
}

/// How much the MCP server logs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevelArg {
    /// Failures of the server itself.
    Error,
    /// Also refused requests (not JSON, too large).
    Warn,
    /// Also start, handshake and failed tool calls (without their data).
    Info,
    /// Also every request and tool call, with names and other data.
    Debug,
    /// Everything.
    Trace,
}

/// `mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Also offer the tools traverse, shortest_path and graph_stats.
    #[arg(long)]
    pub extra_tools: bool,
    /// Entities per answer of read_graph, search_nodes and open_nodes when a call sets no limit.
    #[arg(long, default_value_t = 200)]
    pub default_limit: usize,
    /// The longest request line accepted, in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// How much to log (to stderr, or with the global --log-file to that file instead,
    /// as JSON lines; stdout carries only the protocol). -v or KGSTORE_LOG override it.
    #[arg(long, value_enum, default_value_t = LogLevelArg::Info)]
    pub log_level: LogLevelArg,
}

/// Screenplay commands: Fountain scripts as series, scripts, scenes, characters
/// and locations (docs/screenplays.md).
#[derive(Debug, Subcommand)]
pub enum ScreenplayCommand {
    /// Import Fountain files or folders of them, in one transaction (only what changed is written).
    Import(SpImportArgs),
    /// Print a script's text, byte for byte as imported.
    Export(SpExportArgs),
    /// Print one scene's text.
    Scene(SpSceneArgs),
    /// The series in the store.
    Series,
    /// Scenes matching every condition given, in story order.
    Scenes(SpScenesArgs),
    /// Characters with their speech, line and scene counts.
    Characters(SpSeriesArg),
    /// A character's scenes across episodes, in order.
    Character(SpCharacterArgs),
    /// Who appears with whom (speaks in the same scenes), or one character's partners.
    With(SpWithArgs),
    /// Speeches whose dialogue holds words of a text, ranked (the store's search over scenes).
    Search(SpSearchArgs),
    /// Store scene embeddings from JSON Lines, or list the scenes still to embed.
    Embed(SpEmbedArgs),
    /// The scenes most similar to one, by exact cosine similarity of their embeddings.
    Similar(SpSimilarArgs),
}

/// The series a screenplay command reads.
#[derive(Debug, Args)]
pub struct SpSeriesArg {
    /// The series (its name or slug); default: the store's only series.
    #[arg(long)]
    pub series: Option<String>,
}

/// `screenplay import`.
#[derive(Debug, Args)]
pub struct SpImportArgs {
    /// Fountain files, or folders whose .fountain files are read.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The series every script belongs to (default: each title page's Title).
    #[arg(long)]
    pub series: Option<String>,
}

/// `screenplay export`.
#[derive(Debug, Args)]
pub struct SpExportArgs {
    /// The script's file name (as imported).
    pub file: String,
    /// The series.
    #[command(flatten)]
    pub series: SpSeriesArg,
    /// Write the text to this file instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// `screenplay scene`.
#[derive(Debug, Args)]
pub struct SpSceneArgs {
    /// The scene: its node name, or FILE#ID.
    pub scene: String,
    /// The series.
    #[command(flatten)]
    pub series: SpSeriesArg,
}

/// `screenplay scenes`.
#[derive(Debug, Args)]
pub struct SpScenesArgs {
    /// The series.
    #[command(flatten)]
    pub series: SpSeriesArg,
    /// A character who speaks in the scene (repeat: all of them do).
    #[arg(long = "character", value_name = "NAME")]
    pub characters: Vec<String>,
    /// The location (case and spacing do not matter).
    #[arg(long)]
    pub location: Option<String>,
    /// The time of day (NIGHT, DAY, DAWN …).
    #[arg(long = "time", value_name = "TIME")]
    pub time_of_day: Option<String>,
    /// INT, EXT, INT/EXT or EST.
    #[arg(long = "int-ext", value_name = "SIDE")]
    pub int_ext: Option<String>,
    /// A season, or a range FROM-TO.
    #[arg(long, value_parser = parse_range, value_name = "N|FROM-TO")]
    pub season: Option<(u32, u32)>,
    /// An episode, or a range FROM-TO.
    #[arg(long, value_parser = parse_range, value_name = "N|FROM-TO")]
    pub episode: Option<(u32, u32)>,
    /// Only this script (its file name).
    #[arg(long)]
    pub file: Option<String>,
}

/// `N` or `FROM-TO`.
fn parse_range(text: &str) -> Result<(u32, u32), String> {
    let number = |t: &str| {
        t.trim()
            .parse::<u32>()
            .map_err(|_| format!("{t:?} is not a number (give N or FROM-TO)"))
    };
    match text.split_once('-') {
        Some((from, to)) => Ok((number(from)?, number(to)?)),
        None => number(text).map(|n| (n, n)),
    }
}

/// `screenplay character`.
#[derive(Debug, Args)]
pub struct SpCharacterArgs {
    /// The character's name (any case; extensions such as (V.O.) left out).
    pub name: String,
    /// The series.
    #[command(flatten)]
    pub series: SpSeriesArg,
}

/// `screenplay with`.
#[derive(Debug, Args)]
pub struct SpWithArgs {
    /// Only this character's partners, most shared scenes first.
    pub name: Option<String>,
    /// The series.
    #[command(flatten)]
    pub series: SpSeriesArg,
}

/// `screenplay search`.
#[derive(Debug, Args)]
pub struct SpSearchArgs {
    /// Words to look for in dialogue (ranked; the last word also as a prefix;
    /// the whole text is also found inside words).
    pub text: String,
    /// Only this character's speeches.
    #[arg(long)]
    pub character: Option<String>,
    /// The series.
    #[command(flatten)]
    pub series: SpSeriesArg,
}

/// `screenplay embed`.
#[derive(Debug, Args)]
pub struct SpEmbedArgs {
    /// JSON Lines of {"sha256": "<scene content hash>", "vector": [f32, …]} (- for stdin).
    #[arg(
        long,
        value_name = "FILE.jsonl",
        required_unless_present = "pending",
        conflicts_with = "pending"
    )]
    pub from: Option<PathBuf>,
    /// Print the scenes with no embedding yet as JSON Lines {"sha256", "scene", "text"}.
    #[arg(long)]
    pub pending: bool,
    /// The embedding model's name (vectors of different models are kept apart).
    #[arg(long, default_value = "default")]
    pub model: String,
    /// The series.
    #[command(flatten)]
    pub series: SpSeriesArg,
}

/// `screenplay similar`.
#[derive(Debug, Args)]
pub struct SpSimilarArgs {
    /// The scene: its node name, or FILE#ID.
    pub scene: String,
    /// How many scenes to list.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// The embedding model's name.
    #[arg(long, default_value = "default")]
    pub model: String,
    /// The series.
    #[command(flatten)]
    pub series: SpSeriesArg,
}
