//! Tool-call throughput of kgstore's MCP server over stdio, beside the official
//! memory server (`@modelcontextprotocol/server-memory`, run by node) on the
//! same calls in the same run.
//!
//! ```text
//! cargo run --release -p kgstore-bench --bin kgstore-bench-mcp -- --calls 2000
//! ```
//!
//! Each server is a child process spoken to over its stdin and stdout, one call
//! at a time (an agent waits for each answer). Four phases of `--calls` calls:
//! `create_entities` (one new entity with two observations per call),
//! `open_nodes` (one name per call), `search_nodes` (an entity's name, which
//! the official server's substring search matches in that entity alone and
//! kgstore's ranked search ranks first among every entity holding the word
//! `entity`) and `search_word` (the name's number, one word only that entity
//! holds). The checksum of a search phase counts the official server's hits
//! among the answers, so it is equal on every server only if kgstore's answers
//! include them. kgstore's server is this binary started again with `--serve URL`,
//! which runs the same `kgstore_mcp` server `kgstore mcp` runs.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};

/// The command line of `kgstore-bench-mcp`.
#[derive(Debug, Parser)]
#[command(
    name = "kgstore-bench-mcp",
    about = "Tool-call throughput of kgstore mcp beside the official memory server"
)]
pub struct Args {
    /// Calls per phase.
    #[arg(long, default_value_t = 2000)]
    pub calls: usize,
    /// kgstore stores to serve, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sqlite,sqlite-relaxed,memory"
    )]
    pub stores: Vec<StoreKind>,
    /// Where `npm ci` installed crates/kgstore-cli/tests/mcp/package.json (default: target/mcp-npm).
    #[arg(long)]
    pub npm_dir: Option<PathBuf>,
    /// Where the stores and the memory file go (a new folder inside it, removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Serve this store URL on stdin/stdout and exit (how the benchmark starts kgstore's server).
    #[arg(long, hide = true)]
    pub serve: Option<String>,
}

/// A kgstore store the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// SQLite with durable commits (the default `kgstore mcp` store).
    Sqlite,
    /// SQLite with `durability=relaxed` (commits survive a process crash, maybe not a power cut).
    SqliteRelaxed,
    /// The in-memory backend.
    Memory,
    /// The JSON-files backend.
    Jsonfs,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "kgstore-sqlite",
            StoreKind::SqliteRelaxed => "kgstore-sqlite-relaxed",
            StoreKind::Memory => "kgstore-memory",
            StoreKind::Jsonfs => "kgstore-jsonfs",
        }
    }

    fn url(self, dir: &Path) -> String {
        match self {
            StoreKind::Sqlite => format!("sqlite://{}", dir.join("kg.db").display()),
            StoreKind::SqliteRelaxed => format!(
                "sqlite://{}?durability=relaxed",
                dir.join("kg-relaxed.db").display()
            ),
            StoreKind::Memory => "memory://".to_owned(),
            StoreKind::Jsonfs => format!("json://{}", dir.join("kg-json").display()),
        }
    }
}

/// One measured phase of one server.
#[derive(Clone, Debug, Serialize)]
pub struct McpRow {
    /// `kgstore-sqlite`, …, or `official-memory-server`.
    pub server: String,
    /// `create_entities`, `open_nodes`, `search_nodes` or `search_word`.
    pub phase: &'static str,
    /// Calls made.
    pub calls: usize,
    /// Wall-clock seconds.
    pub secs: f64,
    /// Calls per second.
    pub calls_per_sec: f64,
    /// This row's throughput ÷ the official server's on the same phase.
    pub ratio_to_official: Option<f64>,
    /// Entities the phase's answers held in all (for searches: those the
    /// official server's substring search returns), the same on every server.
    pub checksum: u64,
    /// Entities the phase's answers held in all (searches: kgstore's ranked
    /// search answers more than the official server, up to a page).
    pub entities: u64,
}

/// A server process spoken to one request at a time.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Peer {
    fn spawn(mut command: Command) -> Result<Peer> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut peer = Peer {
            child,
            stdin,
            stdout,
            next_id: 0,
        };
        peer.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
        )?;
        writeln!(
            peer.stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )?;
        Ok(peer)
    }

    fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let line =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()?;
        let mut answer = String::new();
        loop {
            answer.clear();
            if self.stdout.read_line(&mut answer)? == 0 {
                bail!("the server closed its output");
            }
            let message: Value = serde_json::from_str(&answer)?;
            if message["id"] == id {
                return Ok(message);
            }
        }
    }

    /// Calls a tool; the entities of its structured answer.
    fn call(&mut self, tool: &str, arguments: Value) -> Result<Vec<Value>> {
        let mut answer =
            self.request("tools/call", json!({"name": tool, "arguments": arguments}))?;
        let result = &mut answer["result"];
        if result["isError"] == true || result.is_null() {
            bail!("{tool} failed: {answer}");
        }
        Ok(match result["structuredContent"]["entities"].take() {
            Value::Array(entities) => entities,
            _ => Vec::new(),
        })
    }

    fn finish(mut self) -> Result<()> {
        drop(self.stdin);
        self.child.wait()?;
        Ok(())
    }
}

fn name(i: usize) -> String {
    format!("entity-{i:06}")
}

/// How many of `entities` the official server's `search_nodes` would return for
/// `query`: those whose name, type or an observation holds it, ignoring case.
/// kgstore's ranked search returns more (every entity holding a query word, the
/// best first); this counts what both must return.
fn substring_hits(entities: &[Value], query: &str) -> u64 {
    let query = query.to_lowercase();
    let holds = |v: &Value| {
        v.as_str()
            .is_some_and(|t| t.to_lowercase().contains(&query))
    };
    entities
        .iter()
        .filter(|e| {
            holds(&e["name"])
                || holds(&e["entityType"])
                || e["observations"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(holds))
        })
        .count() as u64
}

/// The three phases on one server; rows without ratios.
fn run_server(server: &str, command: Command, calls: usize) -> Result<Vec<McpRow>> {
    let mut peer = Peer::spawn(command)?;
    let mut rows = Vec::new();
    let mut phase = |phase: &'static str,
                     peer: &mut Peer,
                     f: &dyn Fn(usize) -> (&'static str, Value)|
     -> Result<()> {
        let started = Instant::now();
        let (mut checksum, mut answered) = (0, 0);
        for i in 0..calls {
            let (tool, arguments) = f(i);
            let query = arguments["query"].as_str().map(str::to_owned);
            let entities = peer.call(tool, arguments)?;
            answered += entities.len() as u64;
            checksum += match query {
                Some(query) => substring_hits(&entities, &query),
                None => entities.len() as u64,
            };
        }
        let secs = started.elapsed().as_secs_f64();
        rows.push(McpRow {
            server: server.to_owned(),
            phase,
            calls,
            secs,
            calls_per_sec: calls as f64 / secs,
            ratio_to_official: None,
            checksum,
            entities: answered,
        });
        Ok(())
    };
    phase("create_entities", &mut peer, &|i| {
        (
            "create_entities",
            json!({"entities": [{"name": name(i), "entityType": "thing",
            "observations": [format!("observation {i} of the benchmark"), "a second, shared observation"]}]}),
        )
    })?;
    // A fixed scattered order: 7919 is prime, so this visits every entity once
    // unless --calls is a multiple of it.
    let pick = move |i: usize| name(i * 7919 % calls);
    phase("open_nodes", &mut peer, &|i| {
        ("open_nodes", json!({"names": [pick(i)]}))
    })?;
    phase("search_nodes", &mut peer, &|i| {
        ("search_nodes", json!({"query": pick(i)}))
    })?;
    // The name's number alone: one word that only that entity holds.
    phase("search_word", &mut peer, &|i| {
        (
            "search_nodes",
            json!({"query": format!("{:06}", i * 7919 % calls)}),
        )
    })?;
    peer.finish()?;
    for row in &mut rows {
        println!("{}", serde_json::to_string(row)?);
    }
    Ok(rows)
}

fn official_script(args: &Args) -> Option<PathBuf> {
    let dir = args
        .npm_dir
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/mcp-npm"));
    let script = dir.join("node_modules/@modelcontextprotocol/server-memory/dist/index.js");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (node && script.exists()).then_some(script)
}

fn run(args: &Args) -> Result<bool> {
    if args.calls == 0 {
        bail!("--calls must be at least 1");
    }
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("kgstore-bench-mcp-")
        .tempdir_in(&parent)?;
    let me = std::env::current_exe()?;
    let mut rows = Vec::new();
    match official_script(args) {
        Some(script) => {
            let mut command = Command::new("node");
            command
                .arg(script)
                .env("MEMORY_FILE_PATH", dir.path().join("memory.jsonl"));
            rows.extend(run_server("official-memory-server", command, args.calls)?);
        }
        None => eprintln!(
            "!!!!! the official memory server is not installed (node and `npm ci` in target/mcp-npm, \
             see docs/benchmarks.md): kgstore's figures have nothing to compare with !!!!!"
        ),
    }
    for store in &args.stores {
        let mut command = Command::new(&me);
        command.arg("--serve").arg(store.url(dir.path()));
        rows.extend(run_server(store.name(), command, args.calls)?);
    }
    let official: Vec<(&'static str, f64, u64)> = rows
        .iter()
        .filter(|r| r.server == "official-memory-server")
        .map(|r| (r.phase, r.calls_per_sec, r.checksum))
        .collect();
    let mut agree = true;
    for row in &mut rows {
        if let Some((_, speed, checksum)) = official.iter().find(|(p, ..)| *p == row.phase) {
            row.ratio_to_official = Some(row.calls_per_sec / speed);
            if *checksum != row.checksum {
                eprintln!(
                    "CHECKSUM MISMATCH: {} {} gave {}, the official server {checksum}",
                    row.server, row.phase, row.checksum
                );
                agree = false;
            }
        }
    }
    println!(
        "\n{:<24} {:<16} {:>7} {:>9} {:>10} {:>9} {:>13}",
        "server", "phase", "calls", "secs", "calls/s", "× official", "entities/call"
    );
    for row in &rows {
        let ratio = row
            .ratio_to_official
            .map_or("—".to_owned(), |r| format!("{r:.2}"));
        println!(
            "{:<24} {:<16} {:>7} {:>9.3} {:>10.0} {:>9} {:>13.1}",
            row.server,
            row.phase,
            row.calls,
            row.secs,
            row.calls_per_sec,
            ratio,
            row.entities as f64 / row.calls as f64
        );
    }
    Ok(agree)
}

/// Runs `kgstore-bench-mcp`: 0 when every server agreed, 1 on a checksum
/// mismatch, 2 on an error.
pub fn main_entry() -> ExitCode {
    let args = Args::parse();
    if let Some(url) = &args.serve {
        let served = kgstore::open(url).and_then(|store| {
            kgstore_mcp::serve_stdio(store, kgstore_mcp::ServerOptions::default())
        });
        return match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
