//! The event store's benchmark: durable appends, a long read, consumer-group
//! delivery and cross-process subscription latency, on kgstore's backends beside a
//! hand-written rusqlite append table with the same durability, in the same run.
//!
//! ```text
//! cargo run --release -p kgstore-bench --bin kgstore-bench-events
//! cargo run --release -p kgstore-bench --bin kgstore-bench-events -- --read-events 1000000
//! ```
//!
//! Phases (rows; ratios are to `raw-sqlite` where it has the same work):
//!
//! * `append_1`, `append_10`, `append_100`: `--commits` durable commits of 1, 10
//!   and 100 events each, round-robin over 16 streams, each with an exact expected
//!   version. The raw table checks the version with a `SELECT` and inserts, in a
//!   `BEGIN IMMEDIATE` transaction, WAL and `synchronous = FULL` like the backend.
//!   The commits of both run in alternating chunks so both meet the same disk.
//! * `load_1000`: the read phase's log, appended 1,000 events per commit.
//! * `read_all`: every event of a `--read-events` log, forwards, 10,000 a page,
//!   decoded with data and metadata parsed (best of `--rounds`).
//! * `group_ack_batch` and `group_ack_each`: one consumer of a consumer group
//!   polls 100 deliveries at a time and acks them, all in one transaction or each
//!   in its own (events/s; the raw table has no consumer groups to compare with).
//! * Latency: a child process appends one event every `--latency-gap-ms` (one
//!   durable commit each) while this process follows the log: kgstore's catch-up
//!   subscription (default wait settings, and a 1 ms ceiling) and, for raw SQLite, a
//!   loop that queries for new rows every millisecond. Reported from the end of the
//!   writer's commit to the reader holding the event, p50 / p99 / max. SQLite
//!   only: the JSON-files backend is opened by one process at a time.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use kgstore::Store;
use kgstore::events::{
    EventRead, ExpectedVersion, GroupOptions, NewEvent, ReadOptions, SubscriptionOptions,
    WaitSettings,
};
use rusqlite::{Connection, TransactionBehavior, params};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::report::{self, Row};
use crate::subject::open_store;
use crate::{Backend, describe_machine};

/// Streams the append phases spread their commits over.
pub const STREAMS: usize = 16;
/// Commits per alternating chunk of the append phases.
const CHUNK: usize = 20;
/// Events per page of the read phase (the store's largest page).
const PAGE: usize = 10_000;
/// Events per commit of the read phase's load.
const LOAD_BATCH: usize = 1_000;
/// Deliveries per poll of the group phases.
const POLL: usize = 100;

/// The command line of `kgstore-bench-events`.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "kgstore-bench-events",
    about = "The event store beside a hand-written rusqlite append table, in one run"
)]
pub struct Args {
    /// Backends to run (the raw table runs beside SQLite).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sqlite,memory,jsonfs"
    )]
    pub backend: Vec<Backend>,
    /// Durable commits of each append phase.
    #[arg(long, default_value_t = 200)]
    pub commits: usize,
    /// Events of the read phase's log (the issue's figure is 1,000,000).
    #[arg(long, default_value_t = 100_000)]
    pub read_events: usize,
    /// Events of the read phase's log on the JSON-files backend (one file each).
    #[arg(long, default_value_t = 20_000)]
    pub jsonfs_read_events: usize,
    /// Events of the group phase acked in batches (the one-by-one phase takes a tenth).
    #[arg(long, default_value_t = 20_000)]
    pub group_events: usize,
    /// Events of the group phase on the JSON-files backend (every poll and ack
    /// writes files through the journal).
    #[arg(long, default_value_t = 2_000)]
    pub jsonfs_group_events: usize,
    /// Events of each latency run.
    #[arg(long, default_value_t = 300)]
    pub latency_events: usize,
    /// Milliseconds between the latency writer's appends.
    #[arg(long, default_value_t = 10)]
    pub latency_gap_ms: u64,
    /// Rounds of the read phase; the best counts.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Also write the JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Where the stores go: a new folder inside this one, removed at the end.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Runs as the latency writer: `kg:URL` or `raw:PATH` (how the benchmark
    /// starts its child process).
    #[arg(long, hide = true)]
    pub writer: Option<String>,
}

/// One latency run: what the reader waited for after each of the writer's commits.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyRow {
    /// `sqlite`, `jsonfs` or `raw-sqlite`.
    pub backend: String,
    /// How the reader waits.
    pub reader: String,
    /// Events followed.
    pub events: usize,
    /// Median milliseconds from the writer's commit returning to the reader holding the event.
    pub p50_ms: f64,
    /// 99th percentile of the same.
    pub p99_ms: f64,
    /// The longest.
    pub max_ms: f64,
    /// Median milliseconds from the writer calling append (so including the commit).
    pub p50_from_append_ms: f64,
    /// 99th percentile of the same.
    pub p99_from_append_ms: f64,
}

/// Nanoseconds since the Unix epoch: the clock both processes share.
fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// The `i`th event of the workload.
fn event(i: usize) -> NewEvent {
    const TYPES: [&str; 3] = ["order.placed", "order.paid", "order.shipped"];
    NewEvent::new(
        TYPES[i % TYPES.len()],
        json!({
            "order": i,
            "customer": format!("c-{}", i % 997),
            "amount_cents": (i * 7919) % 100_000,
            "items": [{"sku": format!("sku-{}", i % 113), "qty": 1 + i % 5}],
        }),
    )
    .with_id(format!("evt-{i:010}"))
    .with_correlation_id(format!("checkout-{}", i / 10))
}

/// One commit of an append phase: a stream, its version before, the events.
#[derive(Clone)]
pub struct Commit {
    /// The stream appended to.
    pub stream: String,
    /// The stream's version before the commit.
    pub expected: u64,
    /// The events of the commit.
    pub events: Vec<NewEvent>,
}

/// `commits` commits of `size` events each, numbered from `first`, round-robin over
/// [`STREAMS`] streams whose versions `versions` tracks.
pub fn commits(first: usize, commits: usize, size: usize, versions: &mut [u64]) -> Vec<Commit> {
    (0..commits)
        .map(|c| {
            let s = c % versions.len();
            let expected = versions[s];
            versions[s] += size as u64;
            let start = first + c * size;
            Commit {
                stream: format!("orders-{s}"),
                expected,
                events: (start..start + size).map(event).collect(),
            }
        })
        .collect()
}

/// The hand-written baseline: one append table on rusqlite, as an application
/// without kgstore would keep its events.
pub struct RawLog {
    conn: Connection,
}

const RAW_DDL: &str = "
CREATE TABLE IF NOT EXISTS events (
    position    INTEGER PRIMARY KEY,
    stream      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    UNIQUE (stream, version)
) STRICT;";

const RAW_INSERT: &str = "INSERT INTO events(stream, version, id, type, data, metadata, \
     recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const RAW_PAGE: &str = "SELECT position, stream, version, id, type, data, metadata, recorded_at \
     FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2";

/// An event as the raw baseline reads it back.
#[derive(Debug)]
pub struct RawEvent {
    /// Global position.
    pub position: u64,
    /// Stream.
    pub stream: String,
    /// Version in the stream.
    pub version: u64,
    /// Id.
    pub id: String,
    /// Type.
    pub event_type: String,
    /// Payload.
    pub data: Value,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// Microseconds since the epoch.
    pub recorded_at: i64,
}

impl RawLog {
    /// Opens (creating) the table at `path`: WAL, `synchronous = FULL`, a statement cache.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;",
        )?;
        conn.execute_batch(RAW_DDL)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Self { conn })
    }

    /// Appends `events` to `stream` if its version is `expected`, in one durable
    /// transaction; the position of the last event.
    pub fn append(&mut self, stream: &str, expected: u64, events: &[NewEvent]) -> Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx
            .prepare_cached("SELECT coalesce(max(version), 0) FROM events WHERE stream = ?1")?
            .query_row([stream], |r| r.get(0))?;
        if version as u64 != expected {
            bail!("stream {stream} is at version {version}, expected {expected}");
        }
        let now = now_ns() / 1000;
        {
            let mut insert = tx.prepare_cached(RAW_INSERT)?;
            for (i, e) in events.iter().enumerate() {
                insert.execute(params![
                    stream,
                    version + 1 + i as i64,
                    e.id.as_deref().unwrap_or_default(),
                    e.event_type,
                    serde_json::to_string(&e.data)?,
                    serde_json::to_string(&e.metadata.to_map())?,
                    now as i64,
                ])?;
            }
        }
        let last = tx.last_insert_rowid();
        tx.commit()?;
        Ok(last as u64)
    }

    /// One page of the log from `from`, decoded.
    pub fn page(&self, from: u64, limit: usize) -> Result<Vec<RawEvent>> {
        let mut stmt = self.conn.prepare_cached(RAW_PAGE)?;
        let rows = stmt.query_map(params![from as i64, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?;
        let mut out = Vec::with_capacity(limit);
        for row in rows {
            let (position, stream, version, id, event_type, data, metadata, recorded_at) = row?;
            out.push(RawEvent {
                position: position as u64,
                stream,
                version: version as u64,
                id,
                event_type,
                data: serde_json::from_str(&data)?,
                metadata: serde_json::from_str(&metadata)?,
                recorded_at,
            });
        }
        Ok(out)
    }
}

/// Collects rows and prints them as JSON lines as they come.
struct Out {
    rows: Vec<Row>,
    latencies: Vec<LatencyRow>,
    file: Option<File>,
    started: Instant,
}

impl Out {
    fn line(&mut self, line: String) -> Result<()> {
        println!("{line}");
        if let Some(file) = self.file.as_mut() {
            writeln!(file, "{line}")?;
        }
        Ok(())
    }

    /// Records a subject's row and its baseline's (ops, seconds, checksum).
    fn record(
        &mut self,
        phase: &'static str,
        backend: Backend,
        mine: (u64, f64, Option<u64>),
        raw: Option<(u64, f64, Option<u64>)>,
    ) -> Result<()> {
        let row = |name: &str, (ops, secs, checksum): (u64, f64, Option<u64>)| Row {
            backend: name.to_owned(),
            phase,
            ops,
            secs,
            ops_per_sec: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            ratio_to_baseline: None,
            baseline: None,
            lean_ratio: None,
            target_ratio: None,
            metrics_cost: None,
            peak_rss_bytes: None,
            rss_growth_bytes: None,
            checksum,
        };
        let mut main = row(backend.name(), mine);
        if let Some(raw) = raw {
            let base = row(crate::baseline::RAW_SQLITE, raw);
            if base.ops_per_sec > 0.0 {
                main.ratio_to_baseline = Some(main.ops_per_sec / base.ops_per_sec);
            }
            main.baseline = Some(base.backend.clone());
            main.target_ratio = Some(0.8);
            if base.checksum != main.checksum {
                bail!(
                    "{phase}: {backend} and the raw table disagree: {:?} vs {:?}",
                    main.checksum,
                    base.checksum
                );
            }
            self.line(base.to_json_line())?;
            self.rows.push(base);
        }
        self.line(main.to_json_line())?;
        self.rows.push(main);
        Ok(())
    }

    fn progress(&self, backend: &str, what: &str) {
        eprintln!(
            "  [{:7.1}s] {backend}: {what}",
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// The append phases on one backend (and the raw table beside SQLite).
fn appends(backend: Backend, folder: &Path, args: &Args, out: &mut Out) -> Result<()> {
    let store = open_store(backend, &folder.join("appends"))?;
    let mut raw = match backend {
        Backend::Sqlite => Some(RawLog::open(&folder.join("raw-appends.db"))?),
        _ => None,
    };
    let mut versions = [0u64; STREAMS];
    let mut next_event = 0;
    for (phase, size) in [("append_1", 1), ("append_10", 10), ("append_100", 100)] {
        out.progress(backend.name(), phase);
        let all = commits(next_event, args.commits, size, &mut versions);
        next_event += args.commits * size;
        let (mut mine, mut theirs) = (Duration::ZERO, Duration::ZERO);
        for (chunk_no, chunk) in all.chunks(CHUNK).enumerate() {
            // Both sides borrow the caller's events (dropped after the clock stops).
            let run_mine = |t: &mut Duration| -> Result<()> {
                let started = Instant::now();
                for c in chunk {
                    store.append_borrowed(
                        &c.stream,
                        ExpectedVersion::Exact(c.expected),
                        &c.events,
                    )?;
                }
                *t += started.elapsed();
                Ok(())
            };
            let run_raw = |raw: &mut RawLog, t: &mut Duration| -> Result<()> {
                let started = Instant::now();
                for c in chunk {
                    raw.append(&c.stream, c.expected, &c.events)?;
                }
                *t += started.elapsed();
                Ok(())
            };
            match raw.as_mut() {
                Some(r) if chunk_no % 2 == 0 => {
                    run_raw(r, &mut theirs)?;
                    run_mine(&mut mine)?;
                }
                Some(r) => {
                    run_mine(&mut mine)?;
                    run_raw(r, &mut theirs)?;
                }
                None => run_mine(&mut mine)?,
            }
        }
        let events = (args.commits * size) as u64;
        let head = Some(store.last_position()?);
        let raw_row = match raw.as_ref() {
            Some(r) => {
                let last: i64 =
                    r.conn
                        .query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
                            r.get(0)
                        })?;
                Some((events, theirs.as_secs_f64(), Some(last as u64)))
            }
            None => None,
        };
        out.record(phase, backend, (events, mine.as_secs_f64(), head), raw_row)?;
    }
    Ok(())
}

/// The read phase: a log of `n` events loaded 1,000 per commit, then read whole.
fn reads(backend: Backend, folder: &Path, n: usize, args: &Args, out: &mut Out) -> Result<()> {
    let store = open_store(backend, &folder.join("reads"))?;
    let mut raw = match backend {
        Backend::Sqlite => Some(RawLog::open(&folder.join("raw-reads.db"))?),
        _ => None,
    };
    out.progress(backend.name(), &format!("load_1000 ({n} events)"));
    let mut versions = [0u64; STREAMS];
    let (mut mine, mut theirs) = (Duration::ZERO, Duration::ZERO);
    let mut first = 0;
    while first < n {
        let size = LOAD_BATCH.min(n - first);
        let s = first / LOAD_BATCH % STREAMS;
        let c = Commit {
            stream: format!("orders-{s}"),
            expected: versions[s],
            events: (first..first + size).map(event).collect(),
        };
        versions[s] += size as u64;
        first += size;
        if let Some(r) = raw.as_mut() {
            let started = Instant::now();
            r.append(&c.stream, c.expected, &c.events)?;
            theirs += started.elapsed();
        }
        let started = Instant::now();
        store.append_borrowed(&c.stream, ExpectedVersion::Exact(c.expected), &c.events)?;
        mine += started.elapsed();
    }
    let loaded = n as u64;
    out.record(
        "load_1000",
        backend,
        (loaded, mine.as_secs_f64(), Some(store.last_position()?)),
        raw.as_ref()
            .map(|_| (loaded, theirs.as_secs_f64(), Some(loaded))),
    )?;

    out.progress(backend.name(), "read_all");
    let read_kg = || -> Result<(u64, f64, Option<u64>)> {
        let started = Instant::now();
        let (mut count, mut sum, mut from) = (0u64, 0u64, 1u64);
        loop {
            let page = store.read_all(&ReadOptions::forwards(PAGE).from(from))?;
            for e in &page.events {
                count += 1;
                sum = sum.wrapping_add(e.position ^ e.version);
            }
            from = page.next;
            if page.at_end {
                break;
            }
        }
        Ok((count, started.elapsed().as_secs_f64(), Some(sum)))
    };
    let read_raw = |r: &RawLog| -> Result<(u64, f64, Option<u64>)> {
        let started = Instant::now();
        let (mut count, mut sum, mut from) = (0u64, 0u64, 1u64);
        loop {
            let page = r.page(from, PAGE)?;
            for e in &page {
                count += 1;
                sum = sum.wrapping_add(e.position ^ e.version);
            }
            match page.last() {
                Some(last) if page.len() == PAGE => from = last.position + 1,
                _ => break,
            }
        }
        Ok((count, started.elapsed().as_secs_f64(), Some(sum)))
    };
    let mut best_mine: Option<(u64, f64, Option<u64>)> = None;
    let mut best_raw: Option<(u64, f64, Option<u64>)> = None;
    let keep = |best: &mut Option<(u64, f64, Option<u64>)>, m: (u64, f64, Option<u64>)| {
        if best.is_none_or(|b| m.1 < b.1) {
            *best = Some(m);
        }
    };
    for round in 0..args.rounds.max(1) {
        if let (Some(r), true) = (raw.as_ref(), round % 2 == 0) {
            keep(&mut best_raw, read_raw(r)?);
        }
        keep(&mut best_mine, read_kg()?);
        if let (Some(r), false) = (raw.as_ref(), round % 2 == 0) {
            keep(&mut best_raw, read_raw(r)?);
        }
    }
    let mine = best_mine.context("no round ran")?;
    if mine.0 != loaded {
        bail!("read_all read {} events of {loaded}", mine.0);
    }
    out.record("read_all", backend, mine, best_raw)
}

/// The group phases: one consumer polls and acks, in batches and one by one.
fn groups(backend: Backend, folder: &Path, n: usize, out: &mut Out) -> Result<()> {
    let store = open_store(backend, &folder.join("groups"))?;
    let mut first = 0;
    while first < n {
        let size = LOAD_BATCH.min(n - first);
        store.append(
            "orders",
            ExpectedVersion::Exact(first as u64),
            (first..first + size).map(event),
        )?;
        first += size;
    }
    for (phase, events, batched) in [
        ("group_ack_batch", n, true),
        ("group_ack_each", n / 10, false),
    ] {
        out.progress(backend.name(), phase);
        let group = phase.replace('_', "-");
        store.create_group(&group, GroupOptions::default())?;
        let consumer = store.consumer(&group, "worker-1")?;
        let started = Instant::now();
        let mut acked = 0usize;
        while acked < events {
            let deliveries = consumer.poll(POLL.min(events - acked))?;
            if deliveries.is_empty() {
                bail!("{phase}: the group stopped delivering after {acked} events");
            }
            acked += deliveries.len();
            if batched {
                store.write(|tx| {
                    for d in &deliveries {
                        tx.ack(&d.token)?;
                    }
                    Ok(())
                })?;
            } else {
                for d in &deliveries {
                    consumer.ack(d)?;
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let counted = store.group_status(&group)?.counters.acked;
        out.record(phase, backend, (events as u64, secs, Some(counted)), None)?;
    }
    Ok(())
}

/// The latency writer (the child process): appends one event per commit, then
/// prints `position start_ns end_ns` for each.
fn writer(target: &str, args: &Args) -> Result<()> {
    enum Target {
        Kg(Store),
        Raw(Box<RawLog>),
    }
    let mut target = match target.split_once(':') {
        Some(("kg", url)) => Target::Kg(kgstore::open(url)?),
        Some(("raw", path)) => Target::Raw(Box::new(RawLog::open(Path::new(path))?)),
        _ => bail!("--writer takes kg:URL or raw:PATH"),
    };
    println!("ready");
    std::io::stdout().flush()?;
    // Give the reader time to settle into its idle wait.
    std::thread::sleep(Duration::from_millis(200));
    let mut times = Vec::with_capacity(args.latency_events);
    for i in 0..args.latency_events {
        let e = event(i);
        let start = now_ns();
        let position = match &mut target {
            Target::Kg(store) => {
                let result = store.append("ticks", ExpectedVersion::Exact(i as u64), [e])?;
                result.positions.first().copied().context("no position")?
            }
            Target::Raw(raw) => raw.append("ticks", i as u64, &[e])?,
        };
        times.push((position, start, now_ns()));
        std::thread::sleep(Duration::from_millis(args.latency_gap_ms));
    }
    let mut stdout = std::io::stdout().lock();
    for (position, start, end) in times {
        writeln!(stdout, "{position} {start} {end}")?;
    }
    Ok(())
}

/// How the latency reader follows the log.
enum Reader {
    /// kgstore's subscription with these wait settings.
    Kg(Store, WaitSettings),
    /// A raw loop querying every millisecond.
    Raw(RawLog),
}

/// Runs the writer as a child process on `target` while `reader` follows the log.
fn latency(
    backend: &str,
    label: &str,
    target: String,
    reader: Reader,
    args: &Args,
    out: &mut Out,
) -> Result<()> {
    out.progress(backend, &format!("latency, {label}"));
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("--writer")
        .arg(&target)
        .arg("--latency-events")
        .arg(args.latency_events.to_string())
        .arg("--latency-gap-ms")
        .arg(args.latency_gap_ms.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the writer process")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    match lines.next() {
        Some(Ok(line)) if line == "ready" => {}
        other => bail!("the writer did not start: {other:?}"),
    }
    let n = args.latency_events;
    let mut seen: HashMap<u64, i128> = HashMap::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(60 + n as u64 * args.latency_gap_ms / 100);
    match reader {
        Reader::Kg(store, wait) => {
            let mut sub = store.subscribe(SubscriptionOptions::all().wait(wait))?;
            while seen.len() < n && Instant::now() < deadline {
                let page = sub.next_page(Duration::from_secs(5))?;
                let at = now_ns();
                for e in page.events {
                    seen.insert(e.position, at);
                }
            }
        }
        Reader::Raw(raw) => {
            let mut from = 1;
            while seen.len() < n && Instant::now() < deadline {
                let page = raw.page(from, 100)?;
                let at = now_ns();
                for e in &page {
                    seen.insert(e.position, at);
                    from = e.position + 1;
                }
                if page.is_empty() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    let mut after_commit = Vec::with_capacity(n);
    let mut after_append = Vec::with_capacity(n);
    for line in lines {
        let line = line?;
        let parts: Vec<i128> = line
            .split(' ')
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .with_context(|| format!("the writer's line {line:?}"))?;
        let [position, start, end] = parts[..] else {
            bail!("the writer's line {line:?}");
        };
        let at = *seen
            .get(&(position as u64))
            .with_context(|| format!("position {position} was never seen"))?;
        // A reader can see a commit before the writer's call returns: 0, not negative.
        after_commit.push(((at - end).max(0)) as f64 / 1e6);
        after_append.push(((at - start).max(0)) as f64 / 1e6);
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("the writer failed: {status}");
    }
    if after_commit.len() != n {
        bail!("the writer reported {} appends of {n}", after_commit.len());
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    let row = LatencyRow {
        backend: backend.to_owned(),
        reader: label.to_owned(),
        events: n,
        p50_ms: pct(&mut after_commit, 0.50),
        p99_ms: pct(&mut after_commit, 0.99),
        max_ms: pct(&mut after_commit, 1.0),
        p50_from_append_ms: pct(&mut after_append, 0.50),
        p99_from_append_ms: pct(&mut after_append, 0.99),
    };
    out.line(serde_json::to_string(&row)?)?;
    out.latencies.push(row);
    Ok(())
}

/// The latency runs: SQLite only, the one backend several processes share (the
/// JSON-files backend is opened by one process at a time, memory by nature).
fn latencies(folder: &Path, args: &Args, out: &mut Out) -> Result<()> {
    let waits = [
        ("subscription, wait 1-50 ms", WaitSettings::default()),
        (
            "subscription, wait 1 ms",
            WaitSettings {
                min_interval: Duration::from_millis(1),
                max_interval: Duration::from_millis(1),
            },
        ),
    ];
    for (i, (label, wait)) in waits.into_iter().enumerate() {
        let path = folder.join(format!("latency-{i}.db"));
        let url = format!("sqlite://{}", path.display());
        let store = open_store(Backend::Sqlite, &path)?;
        latency(
            Backend::Sqlite.name(),
            label,
            format!("kg:{url}"),
            Reader::Kg(store, wait),
            args,
            out,
        )?;
    }
    let path = folder.join("raw-latency.db");
    let reader = RawLog::open(&path)?;
    latency(
        crate::baseline::RAW_SQLITE,
        "query every 1 ms",
        format!("raw:{}", path.display()),
        Reader::Raw(reader),
        args,
        out,
    )
}

/// The latency rows as a table.
fn latency_table(rows: &[LatencyRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<11} {:<27} {:>6} {:>8} {:>8} {:>8} {:>13} {:>13}",
        "backend", "reader", "events", "p50 ms", "p99 ms", "max ms", "p50 +commit", "p99 +commit"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<11} {:<27} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>13.2} {:>13.2}",
            r.backend,
            r.reader,
            r.events,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.p50_from_append_ms,
            r.p99_from_append_ms
        );
    }
    s
}

/// Runs every phase on every backend asked for.
pub fn run(args: &Args) -> Result<bool> {
    if args.commits == 0 || args.read_events == 0 || args.group_events < 10 {
        bail!("--commits and --read-events must be at least 1, --group-events at least 10");
    }
    if args.latency_events == 0 {
        bail!("--latency-events must be at least 1");
    }
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)?;
    let work = tempfile::Builder::new()
        .prefix("kgstore-bench-events-")
        .tempdir_in(&parent)?;
    let mut out = Out {
        rows: Vec::new(),
        latencies: Vec::new(),
        file: match &args.json_out {
            Some(p) => Some(File::create(p).with_context(|| format!("creating {}", p.display()))?),
            None => None,
        },
        started: Instant::now(),
    };
    eprintln!("kgstore-bench-events: {}", describe_machine());
    for backend in Backend::ALL
        .into_iter()
        .filter(|b| args.backend.contains(b))
    {
        eprintln!("{backend}:");
        let folder = work.path().join(backend.name());
        std::fs::create_dir_all(&folder)?;
        let n = match backend {
            Backend::Jsonfs => args.jsonfs_read_events.min(args.read_events),
            _ => args.read_events,
        };
        let group_n = match backend {
            Backend::Jsonfs => args.group_events.min(args.jsonfs_group_events),
            _ => args.group_events,
        };
        appends(backend, &folder, args, &mut out)?;
        reads(backend, &folder, n, args, &mut out)?;
        groups(backend, &folder, group_n, &mut out)?;
        if backend == Backend::Sqlite {
            latencies(&folder, args, &mut out)?;
        }
        std::fs::remove_dir_all(&folder)?;
    }
    println!();
    println!("kgstore-bench-events, {}", describe_machine());
    print!("{}", report::table(&out.rows));
    println!();
    print!("{}", latency_table(&out.latencies));
    let short: Vec<&Row> = out
        .rows
        .iter()
        .filter(|r| r.meets_target() == Some(false))
        .collect();
    for r in &short {
        println!(
            "below target: {} {} at {:.2}× raw",
            r.backend,
            r.phase,
            r.ratio_to_baseline.unwrap_or(0.0)
        );
    }
    work.close()?;
    Ok(true)
}

/// The binary: runs the benchmark, or the latency writer when asked to.
pub fn main_entry() -> ExitCode {
    let args = Args::parse();
    let result = match &args.writer {
        Some(target) => writer(target, &args).map(|()| true),
        None => run(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("kgstore-bench-events: {e:#}");
            ExitCode::from(2)
        }
    }
}
