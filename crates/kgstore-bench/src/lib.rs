//! `kgstore-bench`: a fixed, seeded workload run on every kgstore backend beside
//! baselines measured in the same run — raw rusqlite on kgstore's schema and a lean
//! hand-written rusqlite schema (integer ids, as the peers benchmark's) for the
//! SQLite backend, SQLite's online backup API for backup and restore, `git
//! fast-import` of the same files for the git backend's loads, and a bare durable
//! file write for the single commits of the file and git backends.
//!
//! ```text
//! cargo run --release -p kgstore-bench -- --nodes 100000
//! ```
//!
//! Each phase prints one JSON line ([`Row`]); a table follows at the end. The
//! run fails (exit code 1) if backends and baselines disagree on a phase's
//! checksum. What each phase and baseline measures is in `docs/benchmarks.md`.
#![forbid(unsafe_code)]

pub mod data;
pub mod docs;
pub mod events;
pub mod fast_import;
pub mod floor;
pub mod hand_restore;
pub mod lean;
pub mod mcp;
pub mod mp;
pub mod raw;
pub mod report;
pub mod subject;

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

pub use data::{Dataset, Workload};
use docs::{DocData, FileDocs, KgDocs, RawDocs};
use fast_import::FastImport;
use lean::LeanSubject;
pub use report::Row;
use report::{peak_rss_bytes, reset_peak_rss, rss_bytes};
use subject::{KgSubject, Measured, RawSubject};

/// A kgstore backend the workload runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum Backend {
    /// The in-memory reference backend.
    Memory,
    /// The SQLite backend, beside raw rusqlite.
    Sqlite,
    /// The JSON-files backend, beside the bare durable-write floor.
    Jsonfs,
    /// The git backend, beside `git fast-import` (loads) and the durable-write floor.
    Git,
}

impl Backend {
    /// Every backend, in the order they run. The allocator keeps much of what a
    /// backend freed, so the later backends' peak resident sets start from the
    /// earlier ones'; SQLite, the leanest, runs first, the JSON-files backend,
    /// whose stores are the slowest to remove, last.
    pub const ALL: [Backend; 4] = [
        Backend::Sqlite,
        Backend::Memory,
        Backend::Git,
        Backend::Jsonfs,
    ];

    /// The backend's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sqlite => "sqlite",
            Backend::Jsonfs => "jsonfs",
            Backend::Git => "git",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A phase of the workload, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum Phase {
    /// Every node in one transaction.
    #[value(name = "load_nodes")]
    LoadNodes,
    /// Every edge in one transaction.
    #[value(name = "load_edges")]
    LoadEdges,
    /// Random gets by name.
    #[value(name = "get")]
    Get,
    /// Out-neighbour queries: the edges leaving a random node.
    #[value(name = "neighbours")]
    Neighbours,
    /// Names-only out-neighbour queries: the names at the end of the edges leaving
    /// a random node (`neighbour_names`), the same nodes as `neighbours`.
    #[value(name = "neighbour_names")]
    NeighbourNames,
    /// The number of distinct ends of the two-edge outgoing walks from a random node
    /// (`reach_count` exactly 2: the peers workload's two-hop count).
    #[value(name = "two_hop")]
    TwoHop,
    /// A two-hop traversal (`traverse`, depth 2) from the same random nodes: the
    /// nodes within two outgoing hops, each once, the start excluded.
    #[value(name = "traverse")]
    Traverse,
    /// Transitive dependencies of a random node of the dependency DAG.
    #[value(name = "resolve")]
    Resolve,
    /// Every node of one type, filtered and paginated.
    #[value(name = "list")]
    List,
    /// Ranked full-text searches, the first page of 20 each (SQLite's baseline: a
    /// hand-written FTS5 table and `bm25()` query).
    #[value(name = "search")]
    Search,
    /// The same queries through the substring filter (`NodeFilter::text`), the
    /// first page of 20 each: what ranked search replaces.
    #[value(name = "search_substring")]
    SearchSubstring,
    /// One node per durable transaction.
    #[value(name = "commit")]
    Commit,
    /// Closing the store and opening it again, up to the first read.
    #[value(name = "reopen")]
    Reopen,
    /// A backup of the whole store (kgstore's backup format; for SQLite's baseline,
    /// the online backup API).
    #[value(name = "backup")]
    Backup,
    /// Restoring that backup into a new, empty store.
    #[value(name = "restore")]
    Restore,
    /// Small documents written in one transaction (a fresh store).
    #[value(name = "doc_load")]
    DocLoad,
    /// Random reads of those documents.
    #[value(name = "doc_read")]
    DocRead,
    /// Every folder of documents listed by prefix, in keyset pages.
    #[value(name = "doc_list")]
    DocList,
    /// One small document per durable transaction.
    #[value(name = "doc_commit")]
    DocCommit,
    /// One large value written by streaming (ops are bytes).
    #[value(name = "doc_stream_write")]
    DocStreamWrite,
    /// That value read back by streaming (ops are bytes).
    #[value(name = "doc_stream_read")]
    DocStreamRead,
}

impl Phase {
    /// Every phase, in the order they run.
    pub const ALL: [Phase; 21] = [
        Phase::LoadNodes,
        Phase::LoadEdges,
        Phase::Get,
        Phase::Neighbours,
        Phase::NeighbourNames,
        Phase::TwoHop,
        Phase::Traverse,
        Phase::Resolve,
        Phase::List,
        Phase::Search,
        Phase::SearchSubstring,
        Phase::Commit,
        Phase::Reopen,
        Phase::Backup,
        Phase::Restore,
        Phase::DocLoad,
        Phase::DocRead,
        Phase::DocList,
        Phase::DocCommit,
        Phase::DocStreamWrite,
        Phase::DocStreamRead,
    ];

    /// Whether the phase only reads (and runs several rounds).
    pub fn is_read_only(self) -> bool {
        matches!(
            self,
            Phase::Get
                | Phase::Neighbours
                | Phase::NeighbourNames
                | Phase::TwoHop
                | Phase::Traverse
                | Phase::Resolve
                | Phase::List
        )
    }

    /// The phase's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::LoadNodes => "load_nodes",
            Phase::LoadEdges => "load_edges",
            Phase::Get => "get",
            Phase::Neighbours => "neighbours",
            Phase::NeighbourNames => "neighbour_names",
            Phase::TwoHop => "two_hop",
            Phase::Traverse => "traverse",
            Phase::Resolve => "resolve",
            Phase::List => "list",
            Phase::Search => "search",
            Phase::SearchSubstring => "search_substring",
            Phase::Commit => "commit",
            Phase::Reopen => "reopen",
            Phase::Backup => "backup",
            Phase::Restore => "restore",
            Phase::DocLoad => "doc_load",
            Phase::DocRead => "doc_read",
            Phase::DocList => "doc_list",
            Phase::DocCommit => "doc_commit",
            Phase::DocStreamWrite => "doc_stream_write",
            Phase::DocStreamRead => "doc_stream_read",
        }
    }

    /// Whether the phase is about documents (run on a store of their own).
    pub fn is_document(self) -> bool {
        matches!(
            self,
            Phase::DocLoad
                | Phase::DocRead
                | Phase::DocList
                | Phase::DocCommit
                | Phase::DocStreamWrite
                | Phase::DocStreamRead
        )
    }
}

/// The ratio to its baseline a backend's phase should reach (issue #3 for SQLite's
/// graph, issue #12 for documents, issue #16 for SQLite's search, issue #14 for the
/// git backend's loads, issue #18 for SQLite's restore; `docs/jsonfs.md` for the JSON-files
/// commits).
pub fn target_ratio(backend: Backend, phase: Phase) -> Option<f64> {
    match (backend, phase) {
        (Backend::Sqlite, Phase::LoadNodes | Phase::Get | Phase::Neighbours) => Some(0.7),
        (Backend::Sqlite, Phase::Commit) => Some(0.9),
        (Backend::Sqlite, Phase::Search) => Some(0.8),
        (Backend::Sqlite, Phase::Restore) => Some(0.2),
        (Backend::Sqlite, p) if p.is_document() => Some(0.8),
        (Backend::Jsonfs, Phase::Commit | Phase::DocCommit) => Some(0.5),
        (Backend::Git, Phase::LoadNodes | Phase::LoadEdges) => Some(0.5),
        _ => None,
    }
}

/// Single commits per chunk of the interleaved commit phase.
const COMMIT_CHUNK: usize = 50;

/// Baseline names in reports.
pub mod baseline {
    /// Raw rusqlite on kgstore's schema.
    pub const RAW_SQLITE: &str = "raw-sqlite";
    /// Lean hand-written rusqlite: the peers benchmark's minimal schema with integer
    /// ids and its settings (see [`crate::lean`]).
    pub const RAW_SQLITE_LEAN: &str = "raw-sqlite-lean";
    /// The two_hop phase's baseline before session 13: raw rusqlite on kgstore's
    /// schema following outgoing edges only, 0 for a missing start.
    pub const RAW_SQLITE_OUT_ONLY: &str = "raw-sqlite-out-only";
    /// The resolve phase's baseline before session 13: raw rusqlite on kgstore's
    /// schema returning any topological order, an empty list for a missing start,
    /// no cycle check through the start (no checksum: other lists than kgstore's).
    pub const RAW_SQLITE_ANY_ORDER: &str = "raw-sqlite-any-order";
    /// SQLite's online backup API on the SQLite backend's own file.
    pub const SQLITE_BACKUP_API: &str = "sqlite-backup-api";
    /// A hand-written rusqlite loader of a backup into a new store's schema
    /// ([`crate::hand_restore`]): the floor of a row-by-row restore, beside the
    /// online backup API.
    pub const HAND_RESTORE: &str = "sqlite-hand-restore";
    /// A bare temp write + fsync + rename + folder fsync per commit.
    pub const FSYNC_FLOOR: &str = "fsync-floor";
    /// Raw rusqlite on kgstore's schema plus a hand-written FTS5 table and query.
    pub const RAW_FTS5: &str = "raw-fts5";
    /// Building the in-memory search index alone, from the same nodes.
    pub const INDEX_ALONE: &str = "search-index-build";
    /// A hand-written rusqlite table of documents (the same metadata and durability).
    pub const RAW_SQLITE_DOCS: &str = "raw-sqlite-docs";
    /// Bare files: temp write + fsync + rename + folder fsync; reads of the files.
    pub const BARE_FILES: &str = "bare-files";
    /// `git fast-import` of the files the git backend writes, one commit per load.
    pub const GIT_FAST_IMPORT: &str = "git-fast-import";
}

/// The command line.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "kgstore-bench",
    about = "Runs a fixed, seeded workload on kgstore's backends beside raw baselines \
             measured in the same run; one JSON line per phase, then a table."
)]
pub struct Args {
    /// Backends to run (repeat or separate by commas); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub backend: Vec<Backend>,
    /// Phases to report (repeat or separate by commas); all by default. The loads
    /// run whenever a later phase is asked for, as it needs the data.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub phase: Vec<Phase>,
    /// Nodes to generate (edges: 5 × as many).
    #[arg(long, default_value_t = 100_000)]
    pub nodes: usize,
    /// Also write the JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Where the stores go: a new folder inside this one, removed at the end
    /// (default: the system's temporary folder).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Random gets by name.
    #[arg(long, default_value_t = 100_000)]
    pub gets: usize,
    /// Out-neighbour queries.
    #[arg(long, default_value_t = 20_000)]
    pub neighbours: usize,
    /// Two-hop counts.
    #[arg(long, default_value_t = 2_000)]
    pub two_hops: usize,
    /// Dependency resolutions.
    #[arg(long, default_value_t = 2_000)]
    pub resolutions: usize,
    /// Ranked searches (and as many substring filters).
    #[arg(long, default_value_t = 400)]
    pub searches: usize,
    /// Single durable commits.
    #[arg(long, default_value_t = 500)]
    pub commits: usize,
    /// Rounds of each read-only phase; the best round counts.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Also run every round of the read-only phases with the store's metrics turned
    /// off (alternating with the rounds that keep them; the `<backend>-metrics-off`
    /// row), and measure what keeping them costs in pairs of slices, on and off back
    /// to back (`metrics_cost`).
    #[arg(long)]
    pub metrics_cost: bool,
    /// Seed of the data generator.
    #[arg(long, default_value_t = Workload::new(0).seed)]
    pub seed: u64,
    /// Small documents written in one transaction.
    #[arg(long, default_value_t = 10_000)]
    pub documents: usize,
    /// Random document reads.
    #[arg(long, default_value_t = 20_000)]
    pub doc_reads: usize,
    /// Single durable document writes.
    #[arg(long, default_value_t = 500)]
    pub doc_commits: usize,
    /// The size of the value written and read by streaming, in MiB.
    #[arg(long, default_value_t = 256)]
    pub stream_mib: u64,
}

impl Args {
    /// The workload these arguments describe.
    pub fn workload(&self) -> Workload {
        Workload {
            nodes: self.nodes,
            gets: self.gets,
            neighbours: self.neighbours,
            two_hops: self.two_hops,
            resolutions: self.resolutions,
            searches: self.searches,
            commits: self.commits,
            rounds: self.rounds,
            seed: self.seed,
            ..Workload::new(self.nodes)
        }
    }

    fn backends(&self) -> Vec<Backend> {
        if self.backend.is_empty() {
            Backend::ALL.to_vec()
        } else {
            Backend::ALL
                .into_iter()
                .filter(|b| self.backend.contains(b))
                .collect()
        }
    }

    fn phases(&self) -> Vec<Phase> {
        if self.phase.is_empty() {
            Phase::ALL.to_vec()
        } else {
            self.phase.clone()
        }
    }
}

/// A phase on which backends or baselines gave different answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// The phase.
    pub phase: &'static str,
    /// `(backend, checksum)` of every row of the phase.
    pub answers: Vec<(String, u64)>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "phase {}: checksums differ:", self.phase)?;
        for (backend, sum) in &self.answers {
            write!(f, " {backend}={sum}")?;
        }
        Ok(())
    }
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Report {
    /// The rows of the phases asked for, in the order they ran.
    pub rows: Vec<Row>,
    /// Every row measured, including loads that ran only to provide data.
    pub all_rows: Vec<Row>,
    /// Phases whose checksums disagree (none, in a correct build).
    pub mismatches: Vec<Mismatch>,
    /// The folder the stores were made in, removed with everything left in it when
    /// the report is dropped (or [`Report::remove_stores`] is called).
    pub stores: Option<tempfile::TempDir>,
}

impl Report {
    /// Removes the folder the stores were made in.
    pub fn remove_stores(&mut self) -> Result<()> {
        if let Some(dir) = self.stores.take() {
            let path = dir.path().to_owned();
            dir.close()
                .with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(())
    }
}

/// Collects rows, computing ratios and reporting the ones asked for.
struct Recorder<'a> {
    phases: Vec<Phase>,
    /// Whether read-only phases also run with metrics off (`--metrics-cost`).
    metrics_cost: bool,
    started: Instant,
    report: Report,
    on_row: &'a mut dyn FnMut(&Row),
}

/// The subject of a phase: a closure that measures it (once per round).
type Run<'r> = Box<dyn FnMut() -> Result<Measured> + 'r>;

/// Which part of a phase's work to run: `Some((i, n))` is the `i`th of `n` equal
/// slices of its names, `None` all of it.
type Part = Option<(usize, usize)>;

/// A kgstore subject: measures a round (or, with a [`Part`], a slice of one) with
/// the store's metrics on (`true`) or off.
type Toggled<'r> = Box<dyn FnMut(bool, Part) -> Result<Measured> + 'r>;

/// Slices of each round in the paired measurement of `--metrics-cost`.
const COST_SLICES: usize = 50;

/// Pairs per round of the listing (which is not cut into slices) in that measurement.
const LIST_PAIRS: usize = 10;

/// The `i`th of `n` equal slices of `items` (all of them for `None`).
fn slice_of<T>(items: &[T], part: Part) -> &[T] {
    match part {
        Some((i, n)) if n > 0 => {
            let per = items.len().div_ceil(n);
            let start = (i * per).min(items.len());
            &items[start..(start + per).min(items.len())]
        }
        _ => items,
    }
}

/// The median of some ratios (`None` if there are none).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// What a phase's subject runs beside: its baseline (named), and the lean
/// hand-written SQLite baseline, where the phase has them.
type Beside<'r> = (Option<(&'static str, Run<'r>)>, Option<Run<'r>>);

/// A closure that measures one chunk (by index) of an interleaved phase.
type Chunk<'r> = Box<dyn FnMut(usize) -> Result<Measured> + 'r>;

/// This thread's CPU time, where the platform gives it (Linux): unlike the wall
/// clock, it leaves out the time the thread waited while other processes ran.
#[cfg(target_os = "linux")]
pub fn thread_cpu_time() -> Option<Duration> {
    use rustix::time::{ClockId, clock_gettime};
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Some(Duration::new(
        u64::try_from(t.tv_sec).ok()?,
        u32::try_from(t.tv_nsec).ok()?,
    ))
}

/// This thread's CPU time, where the platform gives it (not here).
#[cfg(not(target_os = "linux"))]
pub fn thread_cpu_time() -> Option<Duration> {
    None
}

/// What keeping metrics costs on a read phase, measured in pairs: each round is cut
/// into [`COST_SLICES`] slices of its names (the listing, which has none, runs
/// whole, [`LIST_PAIRS`] times), each slice runs with metrics on and right after
/// with them off, or the other way round (alternately). Each half is timed by the
/// thread's CPU time where there is one (the wall clock elsewhere), so time given to
/// other processes counts in neither. The second half of a pair finds caches the
/// first warmed, so the ratios on ÷ off fall in two groups by order (about w and
/// 1/w for a warming w): the cost is the geometric mean of the two groups' medians,
/// minus one, which cancels the warming and ignores the pairs something else
/// disturbed. Both halves must give the same answer.
fn paired_cost(phase: Phase, rounds: usize, subject: &mut Toggled<'_>) -> Result<Option<f64>> {
    let (slices, pairs) = match phase {
        Phase::List => (1, LIST_PAIRS),
        _ => (COST_SLICES, COST_SLICES),
    };
    let mut half = |on: bool, part: Part| -> Result<(Measured, f64)> {
        let cpu = thread_cpu_time();
        let m = subject(on, part)?;
        let secs = match (cpu, thread_cpu_time()) {
            (Some(before), Some(after)) => after.saturating_sub(before).as_secs_f64(),
            _ => m.secs,
        };
        Ok((m, secs))
    };
    // Ratios of the pairs that ran with metrics on first, and off first.
    let (mut on_first_ratios, mut off_first_ratios) = (Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        for i in 0..pairs {
            let part = Some((i % slices, slices));
            let on_first = (round + i) % 2 == 0;
            let first = half(on_first, part)?;
            let second = half(!on_first, part)?;
            if first.0.ops != second.0.ops || first.0.checksum != second.0.checksum {
                bail!(
                    "{}: metrics on and off gave different answers",
                    phase.name()
                );
            }
            let ((on, on_secs), (_, off_secs)) = if on_first {
                (first, second)
            } else {
                (second, first)
            };
            if on.ops > 0 && off_secs > 0.0 {
                let ratios = if on_first {
                    &mut on_first_ratios
                } else {
                    &mut off_first_ratios
                };
                ratios.push(on_secs / off_secs);
            }
        }
    }
    Ok(match (median(on_first_ratios), median(off_first_ratios)) {
        (Some(a), Some(b)) => Some((a * b).sqrt() - 1.0),
        (one, other) => one.or(other).map(|r| r - 1.0),
    })
}

/// The best of several rounds: the shortest time; every round must give the same answer.
fn best(rounds: &[Measured]) -> Result<Measured> {
    let first = rounds.first().context("no round was run")?;
    if rounds
        .iter()
        .any(|m| m.checksum != first.checksum || m.ops != first.ops)
    {
        bail!("rounds of one phase gave different answers: {rounds:?}");
    }
    let secs = rounds.iter().map(|m| m.secs).fold(f64::INFINITY, f64::min);
    Ok(Measured { secs, ..*first })
}

/// The sum of the chunks of an interleaved phase; the answer is the last chunk's.
fn total(chunks: &[Measured]) -> Measured {
    Measured {
        ops: chunks.iter().map(|m| m.ops).sum(),
        secs: chunks.iter().map(|m| m.secs).sum(),
        checksum: chunks.last().and_then(|m| m.checksum),
    }
}

/// The peak resident set of a phase, and how far it rose above the resident set
/// at the phase's start.
#[derive(Clone, Copy, Debug, Default)]
struct Rss {
    peak: Option<u64>,
    growth: Option<u64>,
}

/// Runs one measurement, keeping the highest peak resident set (and growth) seen in `rss`.
fn measure(run: &mut dyn FnMut() -> Result<Measured>, rss: &mut Rss) -> Result<Measured> {
    reset_peak_rss();
    let start = rss_bytes();
    let m = run()?;
    if let Some(peak) = peak_rss_bytes() {
        rss.peak = Some(rss.peak.map_or(peak, |r| r.max(peak)));
        if let Some(start) = start {
            let growth = peak.saturating_sub(start);
            rss.growth = Some(rss.growth.map_or(growth, |g| g.max(growth)));
        }
    }
    Ok(m)
}

/// A phase's row for `backend`, without a baseline, target or metrics cost.
fn row_of(phase: Phase, backend: &str, m: Measured, rss: Rss) -> Row {
    Row {
        backend: backend.to_owned(),
        phase: phase.name(),
        ops: m.ops,
        secs: m.secs,
        ops_per_sec: if m.secs > 0.0 {
            m.ops as f64 / m.secs
        } else {
            0.0
        },
        ratio_to_baseline: None,
        baseline: None,
        lean_ratio: None,
        target_ratio: None,
        metrics_cost: None,
        peak_rss_bytes: rss.peak,
        rss_growth_bytes: rss.growth,
        checksum: m.checksum,
    }
}

impl Recorder<'_> {
    fn push(&mut self, phase: Phase, row: Row) {
        if self.phases.contains(&phase) {
            (self.on_row)(&row);
            self.report.rows.push(row.clone());
        }
        self.report.all_rows.push(row);
    }

    /// Runs `subject` and its baseline `rounds` times, alternating which goes first
    /// so that neither always meets a warmer or colder machine, and records the best
    /// round of each. With `cost`, every round also runs the subject with its store's
    /// metrics off, right before or after the round with them on (alternately), for
    /// the `-metrics-off` row; and the cost itself is measured in pairs (see
    /// [`Recorder::paired_cost`]).
    fn phase(
        &mut self,
        phase: Phase,
        backend: Backend,
        rounds: usize,
        mut subject: Toggled<'_>,
        beside: Beside<'_>,
        cost: bool,
    ) -> Result<()> {
        let (mut baseline, mut lean) = beside;
        self.progress(backend, phase);
        let (mut mine, mut theirs, mut off) = (Vec::new(), Vec::new(), Vec::new());
        let (mut rss, mut base_rss, mut off_rss) = (Rss::default(), Rss::default(), Rss::default());
        let (mut leans, mut lean_rss) = (Vec::new(), Rss::default());
        let offset = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0);
        for round in 0..rounds.max(1) {
            let baseline_first = (offset + round) % 2 == 0;
            if let (true, Some((_, run))) = (baseline_first, baseline.as_mut()) {
                theirs.push(measure(run, &mut base_rss)?);
            }
            if let (true, Some(run)) = (baseline_first, lean.as_mut()) {
                leans.push(measure(run, &mut lean_rss)?);
            }
            if cost && round % 2 == 1 {
                off.push(measure(&mut || subject(false, None), &mut off_rss)?);
            }
            mine.push(measure(&mut || subject(true, None), &mut rss)?);
            if cost && round % 2 == 0 {
                off.push(measure(&mut || subject(false, None), &mut off_rss)?);
            }
            if let (false, Some(run)) = (baseline_first, lean.as_mut()) {
                leans.push(measure(run, &mut lean_rss)?);
            }
            if let (false, Some((_, run))) = (baseline_first, baseline.as_mut()) {
                theirs.push(measure(run, &mut base_rss)?);
            }
        }
        let base = match baseline {
            Some((name, _)) => Some((name, best(&theirs)?, base_rss)),
            None => None,
        };
        let lean = match lean {
            Some(_) => Some((best(&leans)?, lean_rss)),
            None => None,
        };
        let without = match off.is_empty() {
            true => None,
            false => Some((
                best(&off)?,
                off_rss,
                paired_cost(phase, rounds, &mut subject)?,
            )),
        };
        self.record(phase, backend, (best(&mine)?, rss), base, lean, without);
        Ok(())
    }

    /// Runs `chunks` chunks of a phase, each chunk of the baseline right before or
    /// after the subject's (alternately, so both meet the same disk weather and
    /// neither always goes first), and records the sums.
    fn interleaved(
        &mut self,
        phase: Phase,
        backend: Backend,
        chunks: usize,
        mut subject: Chunk<'_>,
        mut baseline: Option<(&'static str, Chunk<'_>)>,
        mut lean: Option<Chunk<'_>>,
    ) -> Result<()> {
        self.progress(backend, phase);
        let (mut mine, mut theirs, mut leans) = (Vec::new(), Vec::new(), Vec::new());
        let (mut rss, mut base_rss, mut lean_rss) =
            (Rss::default(), Rss::default(), Rss::default());
        for chunk in 0..chunks {
            let baseline_first = chunk % 2 == 0;
            if let (true, Some((_, run))) = (baseline_first, baseline.as_mut()) {
                theirs.push(measure(&mut || run(chunk), &mut base_rss)?);
            }
            if let (true, Some(run)) = (baseline_first, lean.as_mut()) {
                leans.push(measure(&mut || run(chunk), &mut lean_rss)?);
            }
            mine.push(measure(&mut || subject(chunk), &mut rss)?);
            if let (false, Some(run)) = (baseline_first, lean.as_mut()) {
                leans.push(measure(&mut || run(chunk), &mut lean_rss)?);
            }
            if let (false, Some((_, run))) = (baseline_first, baseline.as_mut()) {
                theirs.push(measure(&mut || run(chunk), &mut base_rss)?);
            }
        }
        let base = baseline.map(|(name, _)| (name, total(&theirs), base_rss));
        let lean = lean.map(|_| (total(&leans), lean_rss));
        self.record(phase, backend, (total(&mine), rss), base, lean, None);
        Ok(())
    }

    /// Records one more baseline of a phase measured beside it (no ratio: the
    /// docs compare it with the backend's row).
    fn extra(
        &mut self,
        phase: Phase,
        name: &'static str,
        run: &mut dyn FnMut() -> Result<Measured>,
    ) -> Result<()> {
        let mut rss = Rss::default();
        let m = measure(run, &mut rss)?;
        let row = row_of(phase, name, m, rss);
        self.push(phase, row);
        Ok(())
    }

    /// [`Recorder::extra`] of the best of `rounds` rounds (at least one) of `run`
    /// (a baseline kept from before session 13, beside the one that gives the
    /// store's answer).
    fn extra_best(
        &mut self,
        phase: Phase,
        name: &'static str,
        rounds: usize,
        run: &mut dyn FnMut() -> Result<Measured>,
    ) -> Result<()> {
        self.extra(phase, name, &mut || {
            let runs = (0..rounds.max(1))
                .map(|_| run())
                .collect::<Result<Vec<_>>>()?;
            best(&runs)
        })
    }

    fn progress(&self, backend: Backend, phase: Phase) {
        eprintln!(
            "  [{:7.1}s] {backend}: {}",
            self.started.elapsed().as_secs_f64(),
            phase.name()
        );
    }

    /// Records a phase: the baseline's row, the subject's, and with `metrics_off` (the
    /// subject measured with its store's metrics off, and the paired cost) that row
    /// too, the cost going on the subject's row.
    fn record(
        &mut self,
        phase: Phase,
        backend: Backend,
        subject: (Measured, Rss),
        baseline: Option<(&'static str, Measured, Rss)>,
        lean: Option<(Measured, Rss)>,
        metrics_off: Option<(Measured, Rss, Option<f64>)>,
    ) {
        let row = |backend: &str, m: Measured, rss: Rss| row_of(phase, backend, m, rss);
        let mut main = row(backend.name(), subject.0, subject.1);
        main.target_ratio = target_ratio(backend, phase);
        if let Some((name, measured, rss)) = baseline {
            let base_row = row(name, measured, rss);
            if base_row.ops_per_sec > 0.0 {
                main.ratio_to_baseline = Some(main.ops_per_sec / base_row.ops_per_sec);
            }
            main.baseline = Some(name.to_owned());
            self.push(phase, base_row);
        }
        if let Some((measured, rss)) = lean {
            let lean_row = row(baseline::RAW_SQLITE_LEAN, measured, rss);
            if lean_row.ops_per_sec > 0.0 {
                main.lean_ratio = Some(main.ops_per_sec / lean_row.ops_per_sec);
            }
            self.push(phase, lean_row);
        }
        let cost = metrics_off.as_ref().and_then(|(_, _, cost)| *cost);
        let off =
            metrics_off.map(|(m, rss, _)| row(&format!("{}-metrics-off", backend.name()), m, rss));
        main.metrics_cost = cost;
        self.push(phase, main);
        if let Some(off) = off {
            self.push(phase, off);
        }
    }

    /// Records a second baseline of a phase whose first is SQLite's online backup
    /// API, with its ratio to the API's row of the same run.
    fn beside_api(&mut self, phase: Phase, name: &str, m: Measured, rss: Rss) {
        let mut row = row_of(phase, name, m, rss);
        let api = self
            .report
            .all_rows
            .iter()
            .rev()
            .find(|r| r.phase == phase.name() && r.backend == baseline::SQLITE_BACKUP_API);
        if let Some(api) = api.filter(|a| a.ops_per_sec > 0.0) {
            row.ratio_to_baseline = Some(row.ops_per_sec / api.ops_per_sec);
            row.baseline = Some(baseline::SQLITE_BACKUP_API.to_owned());
        }
        self.push(phase, row);
    }

    fn wants(&self, phase: Phase) -> bool {
        self.phases.contains(&phase)
    }

    fn check_checksums(&mut self) {
        for phase in Phase::ALL {
            let answers: Vec<(String, u64)> = self
                .report
                .all_rows
                .iter()
                .filter(|r| r.phase == phase.name())
                .filter_map(|r| Some((r.backend.clone(), r.checksum?)))
                .collect();
            if answers.windows(2).any(|w| w[0].1 != w[1].1) {
                self.report.mismatches.push(Mismatch {
                    phase: phase.name(),
                    answers,
                });
            }
        }
    }
}

/// Runs the workload `args` describe, calling `on_row` with each reported row as
/// soon as it is measured.
pub fn run(args: &Args, on_row: &mut dyn FnMut(&Row)) -> Result<Report> {
    let workload = args.workload();
    if workload.nodes < 10 {
        bail!("--nodes must be at least 10");
    }
    if workload.page_size == 0 {
        bail!("the page size must be at least 1");
    }
    let graph_wanted = args.phases().iter().any(|p| !p.is_document());
    let docs_wanted = args.phases().iter().any(|p| p.is_document());
    let data = if graph_wanted {
        Dataset::generate(&workload)?
    } else {
        Dataset::generate(&Workload {
            gets: 0,
            neighbours: 0,
            two_hops: 0,
            resolutions: 0,
            commits: 0,
            ..Workload::new(10)
        })?
    };
    let doc_data = DocData::generate(
        if docs_wanted { args.documents } else { 0 },
        args.doc_reads,
        args.doc_commits,
        args.stream_mib,
        args.seed,
    );
    if docs_wanted && args.documents == 0 && args.doc_reads > 0 {
        bail!("--doc-reads needs --documents of at least 1");
    }
    let parent = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir(),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let work = tempfile::Builder::new()
        .prefix("kgstore-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a folder in {}", parent.display()))?;
    let mut recorder = Recorder {
        phases: args.phases(),
        metrics_cost: args.metrics_cost,
        started: Instant::now(),
        report: Report::default(),
        on_row,
    };
    for backend in args.backends() {
        eprintln!("{backend}:");
        let folder = work.path().join(backend.name());
        std::fs::create_dir_all(&folder)?;
        if graph_wanted {
            run_backend(backend, &folder, &workload, &data, &mut recorder)
                .with_context(|| format!("the {backend} backend"))?;
        }
        if docs_wanted {
            run_documents(backend, &folder, workload.rounds, &doc_data, &mut recorder)
                .with_context(|| format!("the {backend} backend's documents"))?;
        }
        if backend != Backend::Jsonfs {
            // Free the disk now; the JSON-files stores' 1.2 million files (at 100,000
            // nodes) take minutes to remove, so they go when the report is dropped.
            std::fs::remove_dir_all(&folder)
                .with_context(|| format!("removing {}", folder.display()))?;
        }
    }
    recorder.check_checksums();
    recorder.report.stores = Some(work);
    Ok(recorder.report)
}

fn run_backend(
    backend: Backend,
    folder: &Path,
    workload: &Workload,
    data: &Dataset,
    rec: &mut Recorder<'_>,
) -> Result<()> {
    let store_path = match backend {
        Backend::Memory => folder.join("unused"),
        Backend::Sqlite => folder.join("kgstore.db"),
        Backend::Jsonfs => folder.join("store"),
        Backend::Git => folder.join("kg.git"),
    };
    let mut kg = KgSubject::create(backend, &store_path)?;
    let mut raw = match backend {
        Backend::Sqlite => Some(RawSubject::create(&folder.join("raw.db"), false)?),
        _ => None,
    };
    // What a user needing only names, types, attributes and edges would hand-write.
    let mut lean = match backend {
        Backend::Sqlite => Some(LeanSubject::create(&folder.join("lean.db"))?),
        _ => None,
    };
    // What an application wanting ranked search would write by hand: the same
    // tables plus an FTS5 table, filled as nodes are loaded.
    let mut raw_fts = match backend {
        Backend::Sqlite => Some(RawSubject::create(&folder.join("raw-fts.db"), true)?),
        _ => None,
    };
    // What an application writing the same files into git would do by hand.
    let mut fast = match backend {
        Backend::Git => Some(FastImport::create(&folder.join("fast-import.git"))?),
        _ => None,
    };
    let raw_sqlite = baseline::RAW_SQLITE;
    let rounds = workload.rounds;

    // Each arm: the subject's closure and, for SQLite, the raw baseline's. Read-only
    // phases (more than one round) also measure the cost of metrics if asked.
    macro_rules! compare {
        ($phase:expr, $rounds:expr, |$s:ident, $p:ident| $kg:expr, |$r:ident| $raw:expr) => {{
            compare!(@run $phase, $rounds, |$s, $p| $kg, |$r| $raw, None)
        }};
        ($phase:expr, $rounds:expr, |$s:ident, $p:ident| $kg:expr, |$r:ident| $raw:expr,
         |$l:ident| $lean:expr) => {{
            let lean_run = lean.as_mut().map(|$l| -> Run<'_> { Box::new(move || $lean) });
            compare!(@run $phase, $rounds, |$s, $p| $kg, |$r| $raw, lean_run)
        }};
        (@run $phase:expr, $rounds:expr, |$s:ident, $p:ident| $kg:expr, |$r:ident| $raw:expr,
         $lean_run:expr) => {{
            let kg_run: Toggled<'_> = Box::new(|metrics, part| {
                let $s = &mut kg;
                let $p = part;
                $s.set_metrics(metrics)?;
                $kg
            });
            let base = raw.as_mut().map(|$r| {
                let run: Run<'_> = Box::new(move || $raw);
                (raw_sqlite, run)
            });
            let cost = rec.metrics_cost && $phase.is_read_only();
            rec.phase($phase, backend, $rounds, kg_run, (base, $lean_run), cost)?;
        }};
    }

    // The loads: beside raw SQLite, or `git fast-import` of the same files (git).
    macro_rules! load {
        ($phase:expr, |$s:ident| $kg:expr, |$r:ident| $raw:expr, |$f:ident| $fast:expr,
         |$l:ident| $lean:expr) => {{
            let kg_run: Toggled<'_> = Box::new(|metrics, _| {
                let $s = &mut kg;
                $s.set_metrics(metrics)?;
                $kg
            });
            let base: Option<(&'static str, Run<'_>)> = match (raw.as_mut(), fast.as_mut()) {
                (Some($r), _) => Some((raw_sqlite, Box::new(move || $raw))),
                (_, Some($f)) => Some((baseline::GIT_FAST_IMPORT, Box::new(move || $fast))),
                _ => None,
            };
            let lean_run = lean
                .as_mut()
                .map(|$l| -> Run<'_> { Box::new(move || $lean) });
            rec.phase($phase, backend, 1, kg_run, (base, lean_run), false)?;
        }};
    }

    load!(
        Phase::LoadNodes,
        |s| s.load_nodes(data.nodes.clone()),
        |r| r.load_nodes(data.nodes.clone()),
        |f| f.load_nodes(&data.nodes),
        |l| l.load_nodes(data.nodes.clone())
    );
    if let Some(r) = raw_fts.as_mut() {
        rec.extra(Phase::LoadNodes, baseline::RAW_FTS5, &mut || {
            r.load_nodes(data.nodes.clone())
        })?;
    }
    if backend == Backend::Memory {
        // The in-memory index's share of the memory backend's load.
        rec.extra(Phase::LoadNodes, baseline::INDEX_ALONE, &mut || {
            let started = std::time::Instant::now();
            let index = kgstore::search::SearchIndex::build(&data.nodes);
            Ok(Measured {
                ops: data.nodes.len() as u64,
                secs: started.elapsed().as_secs_f64(),
                checksum: Some(index.corpus().nodes),
            })
        })?;
    }
    if rec.phases.iter().all(|p| *p == Phase::LoadNodes) {
        return Ok(());
    }
    load!(
        Phase::LoadEdges,
        |s| s.load_edges(data.edges.clone()),
        |r| r.load_edges(data.edges.clone()),
        |f| f.load_edges(&data.edges),
        |l| l.load_edges(data.edges.clone())
    );
    if rec.wants(Phase::Get) {
        compare!(
            Phase::Get,
            rounds,
            |s, p| s.gets(slice_of(&data.get_names, p)),
            |r| r.gets(&data.get_names),
            |l| l.gets(&data.get_names)
        );
    }
    if rec.wants(Phase::Neighbours) {
        compare!(
            Phase::Neighbours,
            rounds,
            |s, p| s.neighbours(slice_of(&data.neighbour_names, p)),
            |r| r.neighbours(&data.neighbour_names),
            |l| l.neighbours(&data.neighbour_names)
        );
    }
    if rec.wants(Phase::NeighbourNames) {
        compare!(
            Phase::NeighbourNames,
            rounds,
            |s, p| s.neighbour_names(slice_of(&data.neighbour_names, p)),
            |r| r.neighbour_names(&data.neighbour_names),
            |l| l.neighbour_names(&data.neighbour_names)
        );
    }
    if rec.wants(Phase::TwoHop) {
        compare!(
            Phase::TwoHop,
            rounds,
            |s, p| s.two_hops(slice_of(&data.two_hop_names, p)),
            |r| r.two_hops(&data.two_hop_names),
            |l| l.two_hops(&data.two_hop_names)
        );
        if let Some(r) = raw.as_mut() {
            rec.extra_best(
                Phase::TwoHop,
                baseline::RAW_SQLITE_OUT_ONLY,
                rounds,
                &mut || r.two_hops_out_only(&data.two_hop_names),
            )?;
        }
    }
    if rec.wants(Phase::Traverse) {
        compare!(
            Phase::Traverse,
            rounds,
            |s, p| s.traversals(slice_of(&data.two_hop_names, p)),
            |r| r.traversals(&data.two_hop_names),
            |l| l.traversals(&data.two_hop_names)
        );
    }
    if rec.wants(Phase::Resolve) {
        compare!(
            Phase::Resolve,
            rounds,
            |s, p| s.resolutions(slice_of(&data.resolve_names, p)),
            |r| r.resolutions(&data.resolve_names)
        );
        if let Some(r) = raw.as_mut() {
            rec.extra_best(
                Phase::Resolve,
                baseline::RAW_SQLITE_ANY_ORDER,
                rounds,
                &mut || r.resolutions_any_order(&data.resolve_names),
            )?;
        }
    }
    if rec.wants(Phase::List) {
        compare!(
            Phase::List,
            rounds,
            |s, _p| s.list(data::LISTED_TYPE, workload.page_size),
            |r| r.list(data::LISTED_TYPE, workload.page_size)
        );
    }
    if rec.wants(Phase::Search) {
        let queries = &data.search_queries;
        let kg_run: Toggled<'_> = Box::new(|metrics, _part| {
            kg.set_metrics(metrics)?;
            kg.searches(queries)
        });
        let base = raw_fts.as_mut().map(|r| {
            let run: Run<'_> = Box::new(move || r.searches(queries));
            (baseline::RAW_FTS5, run)
        });
        rec.phase(Phase::Search, backend, rounds, kg_run, (base, None), false)?;
    }
    if rec.wants(Phase::SearchSubstring) {
        let queries = &data.search_queries;
        let kg_run: Toggled<'_> = Box::new(|metrics, _part| {
            kg.set_metrics(metrics)?;
            kg.substring_filters(queries)
        });
        rec.phase(
            Phase::SearchSubstring,
            backend,
            rounds,
            kg_run,
            (None, None),
            false,
        )?;
    }
    if rec.wants(Phase::Commit) {
        // Commits come in chunks, each baseline chunk beside the subject's, so that
        // both meet the same disk weather.
        let chunks: Vec<&[kgstore::Node]> = data.commit_nodes.chunks(COMMIT_CHUNK).collect();
        let (chunks, count) = (&chunks, chunks.len());
        let kg_run: Chunk<'_> = Box::new(|i| kg.commits(chunks[i].to_vec()));
        let base: Option<(&'static str, Chunk<'_>)> = match (backend, raw.as_mut()) {
            (Backend::Sqlite, Some(r)) => Some((
                baseline::RAW_SQLITE,
                Box::new(|i| r.commits(chunks[i].to_vec())),
            )),
            (Backend::Jsonfs | Backend::Git, _) => {
                // The floor writes a file the size of one committed node's.
                let payload = serde_json::to_vec_pretty(&data.commit_nodes.first())?;
                let floor_dir = folder.join("floor");
                Some((
                    baseline::FSYNC_FLOOR,
                    Box::new(move |i| {
                        let count = chunks[i].len();
                        let elapsed =
                            floor::measure(&floor_dir, &payload, i * COMMIT_CHUNK, count)?;
                        Ok(Measured {
                            ops: count as u64,
                            secs: elapsed.as_secs_f64(),
                            checksum: None,
                        })
                    }),
                ))
            }
            _ => None,
        };
        let lean_run = lean
            .as_mut()
            .map(|l| -> Chunk<'_> { Box::new(|i| l.commits(chunks[i])) });
        rec.interleaved(Phase::Commit, backend, count, kg_run, base, lean_run)?;
    }
    if rec.wants(Phase::Reopen) && backend != Backend::Memory {
        let first = data::node_name(workload.nodes - 1);
        let first = first.as_str();
        compare!(
            Phase::Reopen,
            1,
            |s, _p| s.reopen(first)?.context("nothing to reopen"),
            |r| r.reopen(first),
            |l| l.reopen(first)
        );
    }
    if rec.wants(Phase::Backup) || rec.wants(Phase::Restore) {
        let backup_dir = folder.join("backup");
        let native_copy = folder.join("native-backup.db");
        let source = kg.path().to_owned();
        let kg_run: Toggled<'_> = Box::new(|_, _| kg.backup(&backup_dir));
        let native = (backend == Backend::Sqlite).then(|| {
            let run: Run<'_> = Box::new(|| {
                let started = std::time::Instant::now();
                raw::native_backup(&source, &native_copy)?;
                let secs = started.elapsed().as_secs_f64();
                let (nodes, edges) = raw::count_rows(&rusqlite::Connection::open(&native_copy)?)?;
                Ok(Measured {
                    ops: nodes + edges,
                    secs,
                    checksum: Some(nodes + edges),
                })
            });
            (baseline::SQLITE_BACKUP_API, run)
        });
        rec.phase(Phase::Backup, backend, 1, kg_run, (native, None), false)?;

        if rec.wants(Phase::Restore) {
            let restored = folder.join(match backend {
                Backend::Jsonfs => "restored",
                Backend::Git => "restored.git",
                _ => "restored.db",
            });
            let native_restored = folder.join("native-restored.db");
            let kg_run: Toggled<'_> = Box::new(|_, _| kg.restore(&backup_dir, &restored));
            let native = (backend == Backend::Sqlite).then(|| {
                let run: Run<'_> = Box::new(|| {
                    let started = std::time::Instant::now();
                    let conn = raw::native_restore(&native_copy, &native_restored)?;
                    let secs = started.elapsed().as_secs_f64();
                    let (nodes, edges) = raw::count_rows(&conn)?;
                    Ok(Measured {
                        ops: nodes + edges,
                        secs,
                        checksum: Some(nodes + edges),
                    })
                });
                (baseline::SQLITE_BACKUP_API, run)
            });
            rec.phase(Phase::Restore, backend, 1, kg_run, (native, None), false)?;
            if backend == Backend::Sqlite {
                // The floor: the same rows loaded by hand into a new store's schema.
                let hand = folder.join("hand-restored.db");
                drop(subject::open_store(backend, &hand)?);
                let mut rss = Rss::default();
                let m = measure(&mut || hand_restore::restore(&backup_dir, &hand), &mut rss)?;
                rec.beside_api(Phase::Restore, baseline::HAND_RESTORE, m, rss);
            }
        }
    }
    Ok(())
}

/// The document phases on a fresh store of `backend`, beside a hand-written rusqlite
/// table (SQLite) or bare files (JSON files) measured in the same run.
fn run_documents(
    backend: Backend,
    folder: &Path,
    rounds: usize,
    data: &DocData,
    rec: &mut Recorder<'_>,
) -> Result<()> {
    let store = subject::open_store(
        backend,
        &folder.join(match backend {
            Backend::Sqlite => "docs.db",
            Backend::Git => "docs.git",
            _ => "docs",
        }),
    )?;
    let kg = KgDocs { store: &store };
    let mut raw = match backend {
        Backend::Sqlite => Some(RawDocs::create(&folder.join("raw-docs.db"))?),
        _ => None,
    };
    let mut files = match backend {
        Backend::Jsonfs => Some(FileDocs::create(&folder.join("bare-docs"))?),
        _ => None,
    };

    // Each arm: kgstore's closure and the baseline's (raw SQLite or bare files).
    macro_rules! doc_phase {
        ($phase:expr, $rounds:expr, |$k:ident| $kg:expr, |$b:ident| $base:expr) => {{
            let kg_run: Toggled<'_> = Box::new(|_, _| {
                let $k = &kg;
                $kg
            });
            let base: Option<(&'static str, Run<'_>)> = match (raw.as_mut(), files.as_mut()) {
                (Some($b), _) => Some((baseline::RAW_SQLITE_DOCS, Box::new(move || $base))),
                (_, Some($b)) => Some((baseline::BARE_FILES, Box::new(move || $base))),
                _ => None,
            };
            rec.phase($phase, backend, $rounds, kg_run, (base, None), false)?;
        }};
    }

    if [Phase::DocLoad, Phase::DocRead, Phase::DocList]
        .iter()
        .any(|p| rec.wants(*p))
    {
        doc_phase!(Phase::DocLoad, 1, |k| k.load(data), |b| b.load(data));
    }
    if rec.wants(Phase::DocRead) && !data.reads.is_empty() {
        doc_phase!(Phase::DocRead, rounds, |k| k.reads(data), |b| b.reads(data));
    }
    if rec.wants(Phase::DocList) {
        doc_phase!(Phase::DocList, rounds, |k| k.list(data), |b| b.list(data));
    }
    if rec.wants(Phase::DocCommit) && !data.commits.is_empty() {
        let chunks: Vec<&[(String, Vec<u8>)]> = data.commits.chunks(COMMIT_CHUNK).collect();
        let (chunks, count) = (&chunks, chunks.len());
        let kg_run: Chunk<'_> = Box::new(|i| kg.commits(chunks[i]));
        let base: Option<(&'static str, Chunk<'_>)> = match (raw.as_mut(), files.as_mut()) {
            (Some(r), _) => Some((
                baseline::RAW_SQLITE_DOCS,
                Box::new(|i| r.commits(chunks[i])),
            )),
            (_, Some(f)) => Some((baseline::BARE_FILES, Box::new(|i| f.commits(chunks[i])))),
            _ => None,
        };
        rec.interleaved(Phase::DocCommit, backend, count, kg_run, base, None)?;
    }
    if rec.wants(Phase::DocStreamWrite) || rec.wants(Phase::DocStreamRead) {
        doc_phase!(Phase::DocStreamWrite, 1, |k| k.stream_write(data), |b| b
            .stream_write(data));
        if rec.wants(Phase::DocStreamRead) {
            doc_phase!(Phase::DocStreamRead, rounds, |k| k.stream_read(), |b| b
                .stream_read());
        }
    }
    Ok(())
}

/// The machine and build a run happened on, for the table's heading.
pub fn describe_machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
            let kib: f64 = line
                .trim_start_matches("MemTotal:")
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(format!(", {:.1} GiB", kib / 1048576.0))
        })
        .unwrap_or_default();
    format!(
        "{cores} cores{memory}, SQLite {}, {} build",
        rusqlite::version(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )
}

/// The binary: parses the command line, runs, prints; the exit code says how it went.
pub fn main_entry() -> ExitCode {
    let args = Args::parse();
    match run_cli(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("kgstore-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs with `args`, printing JSON lines, the table and any checksum mismatch;
/// `Ok(false)` when checksums disagree.
pub fn run_cli(args: &Args) -> Result<bool> {
    let workload = args.workload();
    eprintln!(
        "kgstore-bench: {} nodes, {} edges; {}",
        workload.nodes,
        workload.edge_count(),
        describe_machine()
    );
    let mut out = match &args.json_out {
        Some(path) => {
            Some(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => None,
    };
    let mut write_error = None;
    let mut on_row = |row: &Row| {
        let line = row.to_json_line();
        println!("{line}");
        if let Some(file) = out.as_mut()
            && let Err(e) = writeln!(file, "{line}")
        {
            write_error.get_or_insert(e);
        }
    };
    let mut report = run(args, &mut on_row)?;
    if let Some(e) = write_error {
        bail!("writing the JSON lines: {e}");
    }
    println!();
    println!(
        "kgstore-bench, {} nodes, {} edges, {}",
        workload.nodes,
        workload.edge_count(),
        describe_machine()
    );
    print!("{}", report::table(&report.rows));
    let agreed = report.mismatches.is_empty();
    if agreed {
        println!("checksums: every backend and baseline agrees");
    } else {
        for m in &report.mismatches {
            println!("CHECKSUM MISMATCH: {m}");
        }
    }
    std::io::stdout().flush()?;
    if let Some(dir) = &report.stores {
        eprintln!(
            "removing {} (the JSON-files stores hold many files: this can take minutes; \
             interrupting leaves them behind)",
            dir.path().display()
        );
    }
    report.remove_stores()?;
    Ok(agreed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_name_once_in_order() {
        let names: Vec<usize> = (0..103).collect();
        for n in [1, 7, 50, 103, 200] {
            let joined: Vec<usize> = (0..n)
                .flat_map(|i| slice_of(&names, Some((i, n))).iter().copied())
                .collect();
            assert_eq!(joined, names, "{n} slices");
        }
        assert_eq!(slice_of(&names, None), &names[..]);
    }

    #[test]
    fn the_median_ignores_what_is_not_a_number() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
