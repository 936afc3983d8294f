//! The crash harness: a child process writes the seeded [`workload`](crate::workload)
//! to a store named by URL and acknowledges every commit on stdout; the harness
//! kills it with SIGKILL at random moments, reopens the store, and checks it
//! against the memory backend replaying the same transactions.
//!
//! After every kill the harness checks that
//! - the store opens at once (the dead writer's lock is free) and `check` finds
//!   nothing wrong (the backend's own check where it has one, and kgstore's
//!   invariants);
//! - its content equals the model after some whole number of transactions:
//!   with [`Expect::Durable`], the last acknowledged one or the one after it
//!   (committed, killed before it was acknowledged); with
//!   [`Expect::Atomic`], any of them up to that one (nothing half-applied);
//! - the counters sum to their total;
//! - it takes a write again.
//!
//! At the end it backs the store up, verifies the backup and restores it into a
//! memory store, which must hold the same content.
//!
//! A backend is one more URL: `Harness` takes a template such as
//! `sqlite://{dir}/kg.db` whose `{dir}` is a fresh temporary folder.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use std::{fmt, thread};

use kgstore::backup::{self, RestoreMode};
use kgstore::{ErrorKind, GraphRead, Node, OnDependents, Store};

use crate::rng::{Rng, env_u64};
use crate::snapshot::Snapshot;
use crate::workload;

/// Sets the number of kills per run.
pub const CYCLES_VAR: &str = "KGSTORE_CRASH_CYCLES";
/// Replays a run.
pub const SEED_VAR: &str = "KGSTORE_CRASH_SEED";
/// The longest random wait before a kill, in milliseconds.
pub const MAX_DELAY_VAR: &str = "KGSTORE_CRASH_MAX_DELAY_MS";
/// Overrides the child binary (to run a copy while the build tree changes).
pub const CHILD_VAR: &str = "KGSTORE_CRASH_CHILD";
/// Where the stores go: a folder on the file system to test.
pub const DIR_VAR: &str = "KGSTORE_CRASH_DIR";
/// The default longest wait before a kill.
pub const DEFAULT_MAX_DELAY_MS: u64 = 30;

/// The line the child prints once the store is open.
pub const READY: &str = "READY";
/// The prefix of the line the child prints after each commit returned.
pub const ACK: &str = "ACK ";

/// How long the child and the harness wait for a lock another process holds:
/// a thread of the same test binary may have forked a child that briefly holds
/// a copy of the lock's descriptor until it execs.
const LOCK_WAIT_MS: u64 = 5000;

/// What a run checks about the transactions the child acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Every acknowledged transaction survives (`durability=immediate`, or any
    /// durability for a process crash).
    Durable,
    /// Only atomicity: the store holds the result of some whole number of
    /// transactions, none partly visible. Acknowledged transactions found
    /// missing are counted in [`CrashReport::lost`], not failed.
    Atomic,
}

/// One run of the crash harness against one store URL.
#[derive(Clone, Debug)]
pub struct Harness {
    /// The store URL with `{dir}` where the run's temporary folder goes.
    pub url_template: String,
    /// The child binary (`env!("CARGO_BIN_EXE_kgstore-crash-child")` in tests).
    pub child: PathBuf,
    /// How many times to kill the child.
    pub cycles: u64,
    /// The seed of the workload and of the kill times.
    pub seed: u64,
    /// The longest random wait before a kill.
    pub max_delay: Duration,
    /// What to check.
    pub expect: Expect,
}

/// What a run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Kills.
    pub cycles: u64,
    /// Transactions acknowledged by the children, over all cycles.
    pub acknowledged: u64,
    /// Kills after a commit but before its acknowledgement was read.
    pub committed_unacknowledged: u64,
    /// Kills before the child said it had opened the store (during open or recovery).
    pub killed_while_opening: u64,
    /// Acknowledged transactions found missing (only counted with [`Expect::Atomic`]).
    pub lost: u64,
    /// Transactions in the store at the end.
    pub final_transactions: u64,
    /// The slowest reopen after a kill.
    pub slowest_reopen: Duration,
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} kills, {} acknowledged transactions ({} in the store at the end), \
             {} committed but unacknowledged, {} killed while opening, {} lost, \
             slowest reopen {:?}",
            self.cycles,
            self.acknowledged,
            self.final_transactions,
            self.committed_unacknowledged,
            self.killed_while_opening,
            self.lost,
            self.slowest_reopen
        )
    }
}

/// Why a run failed: the message names the seed that replays it.
#[derive(Debug)]
pub struct CrashFailure(pub String);

impl fmt::Display for CrashFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CrashFailure {}

/// Kills the child when dropped, so a failing harness leaves no writer behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The memory backend replaying the workload: the model of what the store may hold.
///
/// The harness's own probe writes after each kill (see [`takes_writes`]) are part of
/// the store's history — with the change feed on, they are recorded too — so the
/// model replays them at the same points.
struct Model {
    seed: u64,
    /// Whether the store under test keeps events (known at the first check).
    events: Option<bool>,
    store: Store,
    /// Transactions applied to `store`.
    applied: u64,
    /// After how many transactions each probe was written, in order.
    probes: Vec<u64>,
    /// Probes applied to `store`.
    probed: usize,
    /// Whether the store under test holds documents; when it does not (git, until
    /// issue 14), the model's documents are left out of its states.
    documents: bool,
}

impl Model {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            events: None,
            store: Store::memory(),
            applied: 0,
            probes: Vec::new(),
            probed: 0,
            documents: true,
        }
    }

    /// Starts again from an empty store, keeping the probes and what is known of
    /// the store under test.
    fn restart(&mut self) {
        let probes = std::mem::take(&mut self.probes);
        *self = Self {
            probes,
            events: self.events,
            documents: self.documents,
            ..Self::new(self.seed)
        };
    }

    /// The content after transactions `0..n` (replaying from the start if `n` is behind).
    fn state_at(&mut self, n: u64) -> Result<Snapshot, String> {
        if n < self.applied {
            self.restart();
        }
        loop {
            while self.probes.get(self.probed) == Some(&self.applied) {
                takes_writes(&self.store).map_err(|e| format!("the model's probe: {e}"))?;
                self.probed += 1;
            }
            if self.applied == n {
                break;
            }
            self.apply_next()?;
        }
        let mut state =
            Snapshot::of(&self.store).map_err(|e| format!("cannot read the model: {e}"))?;
        if !self.documents {
            state.documents.clear();
        }
        Ok(state)
    }

    /// Notes that the store was probed after `n` transactions.
    fn probe(&mut self, n: u64) {
        self.probes.push(n);
    }

    /// Says whether the store under test keeps events, before the first replay.
    fn set_events(&mut self, events: bool) -> Result<(), String> {
        match self.events {
            Some(known) if known != events => {
                Err(format!("the store kept events: {known}, and now: {events}"))
            }
            _ => {
                self.events = Some(events);
                Ok(())
            }
        }
    }

    fn apply_next(&mut self) -> Result<(), String> {
        let g = self.applied;
        let events = self
            .events
            .ok_or("the model replays before it knows whether the store keeps events")?;
        self.store
            .write(|tx| workload::apply(tx, self.seed, g, events))
            .map_err(|e| format!("the model cannot apply transaction {g}: {e}"))?;
        self.applied += 1;
        Ok(())
    }

    /// The `n <= limit` whose state is `seen`, replaying from the start
    /// (slow: only when a store lost acknowledged transactions).
    fn search(&mut self, seen: &Snapshot, limit: u64) -> Result<Option<u64>, String> {
        self.restart();
        for n in 0..=limit {
            if &self.state_at(n)? == seen {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }
}

impl Harness {
    /// A harness for `url_template` with the CI-sized defaults, overridden by
    /// `KGSTORE_CRASH_CYCLES`, `KGSTORE_CRASH_SEED`, `KGSTORE_CRASH_MAX_DELAY_MS`
    /// and `KGSTORE_CRASH_CHILD` (another child binary).
    pub fn from_env(url_template: &str, child: impl Into<PathBuf>, default_cycles: u64) -> Self {
        Self {
            url_template: url_template.to_owned(),
            child: std::env::var_os(CHILD_VAR).map_or_else(|| child.into(), PathBuf::from),
            cycles: env_u64(CYCLES_VAR, default_cycles),
            seed: Rng::seed_from_env(SEED_VAR),
            max_delay: Duration::from_millis(env_u64(MAX_DELAY_VAR, DEFAULT_MAX_DELAY_MS)),
            expect: Expect::Durable,
        }
    }

    /// The same harness checking only atomicity.
    pub fn atomic_only(mut self) -> Self {
        self.expect = Expect::Atomic;
        self
    }

    /// The same harness with `cycles` kills.
    pub fn cycles(mut self, cycles: u64) -> Self {
        self.cycles = cycles;
        self
    }

    /// Runs the harness in a fresh temporary folder under [`base_dir`].
    pub fn run(&self) -> Result<CrashReport, CrashFailure> {
        let base = base_dir();
        let dir = tempfile::Builder::new()
            .prefix("kgstore-crash-")
            .tempdir_in(&base)
            .map_err(|e| {
                CrashFailure(format!(
                    "cannot make a temporary folder in {}: {e}",
                    base.display()
                ))
            })?;
        self.run_in(dir.path())
    }

    /// Runs the harness with its store in `dir`.
    pub fn run_in(&self, dir: &Path) -> Result<CrashReport, CrashFailure> {
        let url = self
            .url_template
            .replace("{dir}", &dir.display().to_string());
        self.cycles_on(&url).map_err(|reason| {
            CrashFailure(format!(
                "crash harness on {url} ({:?}): {reason}\n  replay with {SEED_VAR}={} {CYCLES_VAR}={} {MAX_DELAY_VAR}={}",
                self.expect,
                self.seed,
                self.cycles,
                self.max_delay.as_millis()
            ))
        })
    }

    fn cycles_on(&self, url: &str) -> Result<CrashReport, String> {
        let mut rng = Rng::new(self.seed);
        let mut model = Model::new(self.seed);
        let mut report = CrashReport::default();
        // Transactions in the store (as the last check found it).
        let mut present: u64 = 0;
        let max_delay_us = u64::try_from(self.max_delay.as_micros()).unwrap_or(u64::MAX);
        for cycle in 0..self.cycles {
            let at = |what: String| format!("cycle {cycle}: {what}");
            // Mostly a random moment after the open; sometimes during the open
            // (recovery), sometimes after the first acknowledgement (so that slow
            // backends, whose commit outlasts the delay, get acknowledged work too).
            let wait = match rng.below(8) {
                0 => Wait::Nothing,
                1 | 2 => Wait::FirstAck,
                _ => Wait::Ready,
            };
            let mut delay_us = rng.below(max_delay_us.saturating_add(1));
            if matches!(wait, Wait::Nothing) {
                // Short enough to land in the child's start or its open.
                delay_us /= 10;
            }
            let delay = Duration::from_micros(delay_us);
            let (acked, was_open) = self.kill_once(url, present, wait, delay).map_err(at)?;
            report.cycles += 1;
            if !was_open {
                report.killed_while_opening += 1;
            }
            // The transactions that must be present: all acknowledged ones.
            let acked_count = acked.map_or(present, |g| g + 1);
            report.acknowledged += acked_count - present;
            let started = Instant::now();
            let store = reopen(url).map_err(at)?;
            report.slowest_reopen = report.slowest_reopen.max(started.elapsed());
            let found = self
                .check_store(&store, &mut model, acked_count)
                .map_err(at)?;
            if found == acked_count + 1 {
                report.committed_unacknowledged += 1;
            } else if found < acked_count {
                report.lost += acked_count - found;
            }
            takes_writes(&store).map_err(at)?;
            model.probe(found);
            drop(store);
            present = found;
        }
        report.final_transactions = present;
        let store = reopen(url)?;
        round_trip_backup(&store, &model.state_at(present)?)?;
        Ok(report)
    }

    /// Starts a child writing from transaction `start`, kills it, and returns the
    /// last transaction it acknowledged and whether it had opened the store.
    fn kill_once(
        &self,
        url: &str,
        start: u64,
        wait: Wait,
        delay: Duration,
    ) -> Result<(Option<u64>, bool), String> {
        let child = Command::new(&self.child)
            .arg(child_url(url))
            .arg(self.seed.to_string())
            .arg(start.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.child.display()))?;
        let mut child = ChildGuard(child);
        let stdout = child.0.stdout.take().ok_or("the child has no stdout")?;
        let lines = read_lines(stdout);
        let mut seen = Vec::new();
        match wait {
            Wait::Nothing => {}
            Wait::Ready => wait_for(&lines, &mut seen, |line| line == READY)?,
            Wait::FirstAck => wait_for(&lines, &mut seen, |line| line.starts_with(ACK))?,
        }
        thread::sleep(delay);
        // `Child::kill` sends SIGKILL on Unix.
        child
            .0
            .kill()
            .map_err(|e| format!("cannot kill the child: {e}"))?;
        let status = child
            .0
            .wait()
            .map_err(|e| format!("cannot wait for the child: {e}"))?;
        // The reader ends when the pipe closes after the child's death.
        loop {
            match lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    return Err("the dead child's stdout never closed".into());
                }
            }
        }
        if status.code().is_some() {
            // Killed by a signal, a process has no exit code: this one stopped by itself.
            return Err(format!(
                "the child stopped by itself ({status}) before the kill; it said {seen:?}"
            ));
        }
        let mut acked = None;
        let mut was_open = false;
        for line in &seen {
            if line == READY {
                was_open = true;
            } else if let Some(g) = line.strip_prefix(ACK) {
                let g: u64 = g
                    .parse()
                    .map_err(|_| format!("the child printed {line:?}"))?;
                let expected = acked.map_or(start, |a: u64| a + 1);
                if g != expected {
                    return Err(format!("acknowledged {g} after {acked:?} (start {start})"));
                }
                acked = Some(g);
            } else {
                return Err(format!("the child said {line:?} (exit status {status})"));
            }
        }
        Ok((acked, was_open))
    }

    /// Checks the reopened store; returns how many transactions it holds.
    fn check_store(
        &self,
        store: &Store,
        model: &mut Model,
        acked_count: u64,
    ) -> Result<u64, String> {
        model.set_events(
            workload::keeps_events(store).map_err(|e| format!("cannot read the log: {e}"))?,
        )?;
        let check = store.check().map_err(|e| format!("check failed: {e}"))?;
        if !check.is_ok() {
            return Err(format!("check found problems: {:?}", check.problems));
        }
        let seen = Snapshot::of(store).map_err(|e| format!("cannot read the store: {e}"))?;
        model.documents = crate::workload::holds_documents(store)
            .map_err(|e| format!("cannot read the store: {e}"))?;
        let problems = seen.workload_problems();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        // The allowed states, most likely first: the acknowledged one, the one after.
        let expected = model.state_at(acked_count)?;
        if seen == expected {
            return Ok(acked_count);
        }
        if model.state_at(acked_count + 1)? == seen {
            return Ok(acked_count + 1);
        }
        if self.expect == Expect::Atomic
            && let Some(n) = model.search(&seen, acked_count)?
        {
            return Ok(n);
        }
        Err(format!(
            "after {acked_count} acknowledged transactions the store ({seen}) matches no allowed state; \
             against the acknowledged state (left: store):\n  {}",
            seen.diff(&expected)
        ))
    }
}

/// Where [`Harness::run`] puts its stores: `KGSTORE_CRASH_DIR` if set, else
/// `/dev/shm` where it is a writable folder, else the system's temporary folder.
///
/// A SIGKILL is a process crash: what a process wrote survives it in the page
/// cache whether or not it was synced, so a RAM file system tests exactly the
/// same guarantee, many times faster than a disk whose `fsync` takes
/// milliseconds. Point `KGSTORE_CRASH_DIR` at a disk to include its timing.
pub fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DIR_VAR) {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = shm
        .metadata()
        .is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The URL the child opens: the template's, waiting for a lock a fork may hold.
fn child_url(url: &str) -> String {
    with_param(url, &format!("lock_timeout_ms={LOCK_WAIT_MS}"))
}

fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

/// Opens the store after a kill; it must open at once (a short wait only covers
/// a sibling test's fork holding a copy of a lock descriptor).
fn reopen(url: &str) -> Result<Store, String> {
    let url = with_param(url, &format!("lock_timeout_ms={LOCK_WAIT_MS}"));
    kgstore::open(&url).map_err(|e| format!("reopening {url} after a kill failed: {e}"))
}

/// The store takes writes at once: a probe node is created and deleted again.
fn takes_writes(store: &Store) -> Result<(), String> {
    let probe = "probe";
    store
        .create_node(Node::new(probe, "probe").map_err(|e| e.to_string())?)
        .map_err(|e| format!("the reopened store refuses a write: {e}"))?;
    store
        .delete_node(probe, OnDependents::Refuse)
        .map_err(|e| format!("the reopened store refuses a deletion: {e}"))?;
    match store.get_node(probe) {
        Err(e) if e.kind() == ErrorKind::NodeNotFound => Ok(()),
        other => Err(format!("the probe node is still there: {other:?}")),
    }
}

/// Backs the store up, verifies the backup, restores it into memory and
/// compares with `expected`.
fn round_trip_backup(store: &Store, expected: &Snapshot) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("backup");
    backup::backup(store, &path).map_err(|e| format!("backup after the last kill failed: {e}"))?;
    let verified = backup::verify(&path).map_err(|e| format!("verify failed: {e}"))?;
    if !verified.is_ok() {
        return Err(format!(
            "the final backup does not verify: {}",
            verified.summary()
        ));
    }
    let memory = Store::memory();
    backup::restore_into(&path, &memory, RestoreMode::Empty)
        .map_err(|e| format!("restore of the final backup failed: {e}"))?;
    let restored = Snapshot::of(&memory).map_err(|e| e.to_string())?;
    if &restored != expected {
        return Err(format!(
            "the restored backup differs from the model:\n  {}",
            restored.diff(expected)
        ));
    }
    Ok(())
}

fn read_lines(stdout: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// When the random delay before a kill starts.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// At once after the start.
    Nothing,
    /// When the child has opened the store.
    Ready,
    /// When the child has acknowledged its first transaction.
    FirstAck,
}

fn wait_for(
    lines: &Receiver<String>,
    seen: &mut Vec<String>,
    wanted: impl Fn(&str) -> bool,
) -> Result<(), String> {
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let found = wanted(&line);
                seen.push(line);
                if found {
                    return Ok(());
                }
            }
            Err(e) => {
                return Err(format!(
                    "the child stopped or stalled: {e} (it said {seen:?})"
                ));
            }
        }
    }
}

/// The child's whole life: `kgstore-crash-child URL SEED START` opens the store,
/// prints [`READY`], then commits transaction `START`, `START + 1`, … of the
/// workload, printing `ACK g` after each commit returned, until it is killed (or
/// has written `max` transactions, a guard against an orphan running forever).
pub fn child_main(args: &[String], out: &mut impl Write) -> Result<(), String> {
    let [url, seed, start] = args else {
        return Err("usage: kgstore-crash-child URL SEED START".into());
    };
    let seed: u64 = seed.parse().map_err(|_| format!("bad seed {seed:?}"))?;
    let start: u64 = start.parse().map_err(|_| format!("bad start {start:?}"))?;
    let store = kgstore::open(url).map_err(|e| format!("cannot open {url}: {e}"))?;
    let events = workload::keeps_events(&store).map_err(|e| format!("cannot read the log: {e}"))?;
    writeln!(out, "{READY}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let max = 100_000;
    for g in start..start + max {
        store
            .write(|tx| workload::apply(tx, seed, g, events))
            .map_err(|e| format!("transaction {g} failed: {e}"))?;
        // A closed pipe means the harness is gone: stop.
        writeln!(out, "{ACK}{g}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}
