//! `kgstore-bench`: a fixed, seeded workload run on every kgstore backend beside
//! baselines measured in the same run — raw rusqlite on kgstore's schema for the
//! SQLite backend, SQLite's online backup API for backup and restore, and a bare
//! durable file write for the single commits of the file backends.
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
pub mod floor;
pub mod mcp;
pub mod raw;
pub mod report;
pub mod subject;

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

pub use data::{Dataset, Workload};
pub use report::Row;
use report::{peak_rss_bytes, reset_peak_rss};
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
}

impl Backend {
    /// Every backend, in the order they run. The allocator keeps much of what a
    /// backend freed, so the later backends' peak resident sets start from the
    /// earlier ones'; SQLite, the leanest, runs first, the JSON-files backend,
    /// whose stores are the slowest to remove, last.
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Memory, Backend::Jsonfs];

    /// The backend's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sqlite => "sqlite",
            Backend::Jsonfs => "jsonfs",
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
    /// The number of nodes within two outgoing hops of a random node.
    #[value(name = "two_hop")]
    TwoHop,
    /// Transitive dependencies of a random node of the dependency DAG.
    #[value(name = "resolve")]
    Resolve,
    /// Every node of one type, filtered and paginated.
    #[value(name = "list")]
    List,
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
}

impl Phase {
    /// Every phase, in the order they run.
    pub const ALL: [Phase; 11] = [
        Phase::LoadNodes,
        Phase::LoadEdges,
        Phase::Get,
        Phase::Neighbours,
        Phase::TwoHop,
        Phase::Resolve,
        Phase::List,
        Phase::Commit,
        Phase::Reopen,
        Phase::Backup,
        Phase::Restore,
    ];

    /// The phase's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::LoadNodes => "load_nodes",
            Phase::LoadEdges => "load_edges",
            Phase::Get => "get",
            Phase::Neighbours => "neighbours",
            Phase::TwoHop => "two_hop",
            Phase::Resolve => "resolve",
            Phase::List => "list",
            Phase::Commit => "commit",
            Phase::Reopen => "reopen",
            Phase::Backup => "backup",
            Phase::Restore => "restore",
        }
    }
}

/// The ratio to its baseline a backend's phase should reach (issue #3 for SQLite;
/// `docs/jsonfs.md` for the JSON-files commits).
pub fn target_ratio(backend: Backend, phase: Phase) -> Option<f64> {
    match (backend, phase) {
        (Backend::Sqlite, Phase::LoadNodes | Phase::Get | Phase::Neighbours) => Some(0.7),
        (Backend::Sqlite, Phase::Commit) => Some(0.9),
        (Backend::Jsonfs, Phase::Commit) => Some(0.5),
        _ => None,
    }
}

/// Single commits per chunk of the interleaved commit phase.
const COMMIT_CHUNK: usize = 50;

/// Baseline names in reports.
pub mod baseline {
    /// Raw rusqlite on kgstore's schema.
    pub const RAW_SQLITE: &str = "raw-sqlite";
    /// SQLite's online backup API on the SQLite backend's own file.
    pub const SQLITE_BACKUP_API: &str = "sqlite-backup-api";
    /// A bare temp write + fsync + rename + folder fsync per commit.
    pub const FSYNC_FLOOR: &str = "fsync-floor";
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
    /// Single durable commits.
    #[arg(long, default_value_t = 500)]
    pub commits: usize,
    /// Rounds of each read-only phase; the best round counts.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seed of the data generator.
    #[arg(long, default_value_t = Workload::new(0).seed)]
    pub seed: u64,
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
    started: Instant,
    report: Report,
    on_row: &'a mut dyn FnMut(&Row),
}

/// The subject of a phase: a closure that measures it (once per round).
type Run<'r> = Box<dyn FnMut() -> Result<Measured> + 'r>;

/// A closure that measures one chunk (by index) of an interleaved phase.
type Chunk<'r> = Box<dyn FnMut(usize) -> Result<Measured> + 'r>;

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

/// Runs one measurement, keeping the highest peak resident set seen in `rss`.
fn measure(run: &mut dyn FnMut() -> Result<Measured>, rss: &mut Option<u64>) -> Result<Measured> {
    reset_peak_rss();
    let m = run()?;
    if let Some(peak) = peak_rss_bytes() {
        *rss = Some(rss.map_or(peak, |r: u64| r.max(peak)));
    }
    Ok(m)
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
    /// round of each.
    fn phase(
        &mut self,
        phase: Phase,
        backend: Backend,
        rounds: usize,
        mut subject: Run<'_>,
        mut baseline: Option<(&'static str, Run<'_>)>,
    ) -> Result<()> {
        self.progress(backend, phase);
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        let (mut rss, mut base_rss) = (None, None);
        let offset = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0);
        for round in 0..rounds.max(1) {
            let baseline_first = (offset + round) % 2 == 0;
            if let (true, Some((_, run))) = (baseline_first, baseline.as_mut()) {
                theirs.push(measure(run, &mut base_rss)?);
            }
            mine.push(measure(&mut subject, &mut rss)?);
            if let (false, Some((_, run))) = (baseline_first, baseline.as_mut()) {
                theirs.push(measure(run, &mut base_rss)?);
            }
        }
        let base = match baseline {
            Some((name, _)) => Some((name, best(&theirs)?, base_rss)),
            None => None,
        };
        self.record(phase, backend, (best(&mine)?, rss), base);
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
    ) -> Result<()> {
        self.progress(backend, phase);
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        let (mut rss, mut base_rss) = (None, None);
        for chunk in 0..chunks {
            let baseline_first = chunk % 2 == 0;
            if let (true, Some((_, run))) = (baseline_first, baseline.as_mut()) {
                theirs.push(measure(&mut || run(chunk), &mut base_rss)?);
            }
            mine.push(measure(&mut || subject(chunk), &mut rss)?);
            if let (false, Some((_, run))) = (baseline_first, baseline.as_mut()) {
                theirs.push(measure(&mut || run(chunk), &mut base_rss)?);
            }
        }
        let base = baseline.map(|(name, _)| (name, total(&theirs), base_rss));
        self.record(phase, backend, (total(&mine), rss), base);
        Ok(())
    }

    fn progress(&self, backend: Backend, phase: Phase) {
        eprintln!(
            "  [{:7.1}s] {backend}: {}",
            self.started.elapsed().as_secs_f64(),
            phase.name()
        );
    }

    fn record(
        &mut self,
        phase: Phase,
        backend: Backend,
        subject: (Measured, Option<u64>),
        baseline: Option<(&'static str, Measured, Option<u64>)>,
    ) {
        let row = |backend: &str, m: Measured, rss: Option<u64>| Row {
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
            target_ratio: None,
            peak_rss_bytes: rss,
            checksum: m.checksum,
        };
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
        self.push(phase, main);
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
    let data = Dataset::generate(&workload)?;
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
        started: Instant::now(),
        report: Report::default(),
        on_row,
    };
    for backend in args.backends() {
        eprintln!("{backend}:");
        let folder = work.path().join(backend.name());
        std::fs::create_dir_all(&folder)?;
        run_backend(backend, &folder, &workload, &data, &mut recorder)
            .with_context(|| format!("the {backend} backend"))?;
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
    };
    let mut kg = KgSubject::create(backend, &store_path)?;
    let mut raw = match backend {
        Backend::Sqlite => Some(RawSubject::create(&folder.join("raw.db"))?),
        _ => None,
    };
    let raw_sqlite = baseline::RAW_SQLITE;
    let rounds = workload.rounds;

    // Each arm: the subject's closure and, for SQLite, the raw baseline's.
    macro_rules! compare {
        ($phase:expr, $rounds:expr, |$s:ident| $kg:expr, |$r:ident| $raw:expr) => {{
            let kg_run: Run<'_> = Box::new(|| {
                let $s = &mut kg;
                $kg
            });
            let base = raw.as_mut().map(|$r| {
                let run: Run<'_> = Box::new(move || $raw);
                (raw_sqlite, run)
            });
            rec.phase($phase, backend, $rounds, kg_run, base)?;
        }};
    }

    compare!(
        Phase::LoadNodes,
        1,
        |s| s.load_nodes(data.nodes.clone()),
        |r| r.load_nodes(data.nodes.clone())
    );
    if rec.phases.iter().all(|p| *p == Phase::LoadNodes) {
        return Ok(());
    }
    compare!(
        Phase::LoadEdges,
        1,
        |s| s.load_edges(data.edges.clone()),
        |r| r.load_edges(data.edges.clone())
    );
    if rec.wants(Phase::Get) {
        compare!(Phase::Get, rounds, |s| s.gets(&data.get_names), |r| r
            .gets(&data.get_names));
    }
    if rec.wants(Phase::Neighbours) {
        compare!(
            Phase::Neighbours,
            rounds,
            |s| s.neighbours(&data.neighbour_names),
            |r| r.neighbours(&data.neighbour_names)
        );
    }
    if rec.wants(Phase::TwoHop) {
        compare!(
            Phase::TwoHop,
            rounds,
            |s| s.two_hops(&data.two_hop_names),
            |r| r.two_hops(&data.two_hop_names)
        );
    }
    if rec.wants(Phase::Resolve) {
        compare!(
            Phase::Resolve,
            rounds,
            |s| s.resolutions(&data.resolve_names),
            |r| r.resolutions(&data.resolve_names)
        );
    }
    if rec.wants(Phase::List) {
        compare!(
            Phase::List,
            rounds,
            |s| s.list(data::LISTED_TYPE, workload.page_size),
            |r| r.list(data::LISTED_TYPE, workload.page_size)
        );
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
            (Backend::Jsonfs, _) => {
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
        rec.interleaved(Phase::Commit, backend, count, kg_run, base)?;
    }
    if rec.wants(Phase::Reopen) && backend != Backend::Memory {
        let first = data::node_name(workload.nodes - 1);
        let first = first.as_str();
        compare!(
            Phase::Reopen,
            1,
            |s| s.reopen(first)?.context("nothing to reopen"),
            |r| r.reopen(first)
        );
    }
    if rec.wants(Phase::Backup) || rec.wants(Phase::Restore) {
        let backup_dir = folder.join("backup");
        let native_copy = folder.join("native-backup.db");
        let source = kg.path().to_owned();
        let kg_run: Run<'_> = Box::new(|| kg.backup(&backup_dir));
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
        rec.phase(Phase::Backup, backend, 1, kg_run, native)?;

        if rec.wants(Phase::Restore) {
            let restored = folder.join(match backend {
                Backend::Jsonfs => "restored",
                _ => "restored.db",
            });
            let native_restored = folder.join("native-restored.db");
            let kg_run: Run<'_> = Box::new(|| kg.restore(&backup_dir, &restored));
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
            rec.phase(Phase::Restore, backend, 1, kg_run, native)?;
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
