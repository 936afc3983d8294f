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
//! With [`Harness::two_writers`], two children share the store, each writing its
//! own [`Lane`] of the workload and, in every transaction, incrementing one node
//! both share ([`SHARED`]); at a random moment one of them is killed, the other
//! must go on committing (at once: the dead writer's lock is free, and what it
//! left is recovered by the survivor's next transaction), then it is killed too.
//! Each lane must hold its last acknowledged transaction (or the one after), and
//! the shared node must count exactly the transactions present: an update lost
//! between the writers, or counted twice, shows there.
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
use kgstore::{ErrorKind, GraphRead, Node, OnDependents, Store, WriteTx};
use serde_json::{Value, json};

use crate::rng::{Rng, env_u64};
use crate::snapshot::Snapshot;
use crate::workload::{self, Lane};

/// Sets the number of kills per run.
pub const CYCLES_VAR: &str = "KGSTORE_CRASH_CYCLES";
/// Replays a run.
pub const SEED_VAR: &str = "KGSTORE_CRASH_SEED";
/// The longest random wait before a kill, in milliseconds.
pub const MAX_DELAY_VAR: &str = "KGSTORE_CRASH_MAX_DELAY_MS";
/// Set to `off` in a child's environment: the workload leaves its events out
/// ([`Harness::without_events`]).
pub const EVENTS_VAR: &str = "KGSTORE_CRASH_EVENTS";
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

/// How long each of two writers waits for the other's lock. SQLite's lock has no
/// queue: a process committing back to back can keep one that polls for the lock
/// out for longer than 5 s on a loaded machine (seen in CI at a two-writer open),
/// which is SQLite's behaviour, not a crash's. The survivor's progress after a
/// kill is still required within [`SURVIVOR_STALL`], and the reopen after the
/// kills waits [`LOCK_WAIT_MS`] only.
const TWO_WRITERS_LOCK_WAIT_MS: u64 = 60_000;

/// How long the survivor of a kill may take for its next two acknowledgements.
const SURVIVOR_STALL: Duration = Duration::from_secs(60);

/// The lanes of the two writers of [`Harness::two_writers`].
pub const LANES: [Lane; 2] = [Lane("a-"), Lane("b-")];
/// The node that every transaction of the two-writer scenario increments,
/// whichever writer commits it (attribute `count`).
pub const SHARED: &str = "shared";

/// The seed of a lane's workload.
fn lane_seed(seed: u64, lane: usize) -> u64 {
    seed.wrapping_add(lane as u64)
}

/// Increments the [`SHARED`] node (creating it at 1), stating the version it read.
pub fn bump_shared(tx: &mut WriteTx<'_>) -> kgstore::Result<()> {
    match tx.find_node(SHARED)? {
        Some(mut node) => {
            let version = node.metadata.version;
            let count = node
                .attributes
                .get("count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            node.attributes.insert("count".into(), json!(count + 1));
            tx.update_node(node, Some(version))?;
        }
        None => {
            tx.create_node(Node::new(SHARED, "shared")?.with_attribute("count", json!(1)))?;
        }
    }
    Ok(())
}

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
    /// How many writers share the store: 1, or 2 ([`Harness::two_writers`]).
    pub writers: usize,
    /// Whether the workload appends its events ([`Harness::without_events`]).
    pub events: bool,
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
    /// Two writers: the longest a survivor took, from the other's kill, to
    /// acknowledge two more transactions.
    pub slowest_survivor: Duration,
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
        )?;
        if !self.slowest_survivor.is_zero() {
            write!(f, ", slowest survivor {:?}", self.slowest_survivor)?;
        }
        Ok(())
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
    /// Whether the store under test keeps events (known at the first check); when it
    /// does not (git), the model's events are left out of its states.
    events: Option<bool>,
    lane: Lane,
    store: Store,
    /// Transactions applied to `store`.
    applied: u64,
    /// After how many transactions each probe was written, in order.
    probes: Vec<u64>,
    /// Probes applied to `store`.
    probed: usize,
    /// Whether the store under test holds documents; when it does not, the model's
    /// documents are left out of its states.
    documents: bool,
}

impl Model {
    fn new(seed: u64) -> Self {
        Self::lane(seed, Lane::SOLE)
    }

    fn lane(seed: u64, lane: Lane) -> Self {
        Self {
            seed,
            events: None,
            lane,
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
            ..Self::lane(self.seed, self.lane)
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
        if self.events == Some(false) {
            state.events.clear();
            state.streams.clear();
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
        if self.events.is_none() {
            return Err("the model replays before it knows whether the store keeps events".into());
        }
        self.store
            .write(|tx| self.lane.apply(tx, self.seed, g))
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
            writers: 1,
            events: true,
        }
    }

    /// The same harness with the workload's events left out (one writer), so that
    /// a note is one document written alone: the JSON-files backend's
    /// one-document commit.
    pub fn without_events(mut self) -> Self {
        self.events = false;
        self
    }

    /// The same harness with two writers sharing the store.
    pub fn two_writers(mut self) -> Self {
        self.writers = 2;
        self
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
        if self.writers == 2 {
            return self.two_writer_cycles_on(url);
        }
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

    /// Starts a child writing from transaction `start` (of `lane`, if given).
    fn start(&self, url: &str, start: u64, lane: Option<Lane>) -> Result<Running, String> {
        let wait = if lane.is_some() {
            TWO_WRITERS_LOCK_WAIT_MS
        } else {
            LOCK_WAIT_MS
        };
        let mut command = Command::new(&self.child);
        command
            .arg(with_param(url, &format!("lock_timeout_ms={wait}")))
            .arg(self.seed.to_string())
            .arg(start.to_string());
        if !self.events {
            command.env(EVENTS_VAR, "off");
        }
        if let Some(lane) = lane {
            command.arg(lane.prefix());
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.child.display()))?;
        let mut child = ChildGuard(child);
        let stdout = child.0.stdout.take().ok_or("the child has no stdout")?;
        Ok(Running {
            child,
            lines: read_lines(stdout),
            seen: Vec::new(),
            start,
        })
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
        let mut child = self.start(url, start, None)?;
        match wait {
            Wait::Nothing => {}
            Wait::Ready => child.wait_for(|line| line == READY)?,
            Wait::FirstAck => child.wait_for(|line| line.starts_with(ACK))?,
        }
        thread::sleep(delay);
        child.kill()?;
        child.acknowledged()
    }

    /// Two writers, one killed at a random moment, the other going on, then killed.
    fn two_writer_cycles_on(&self, url: &str) -> Result<CrashReport, String> {
        let mut rng = Rng::new(self.seed);
        let mut models = [0, 1].map(|l| Model::lane(lane_seed(self.seed, l), LANES[l]));
        let mut report = CrashReport::default();
        let mut present = [0u64; 2];
        let max_delay_us = u64::try_from(self.max_delay.as_micros()).unwrap_or(u64::MAX);
        for cycle in 0..self.cycles {
            let at = |what: String| format!("cycle {cycle}: {what}");
            let mut children = [
                self.start(url, present[0], Some(LANES[0])).map_err(at)?,
                self.start(url, present[1], Some(LANES[1])).map_err(at)?,
            ];
            let victim = usize::from(rng.chance(1, 2));
            let survivor = 1 - victim;
            match rng.below(8) {
                0 => {}
                1 | 2 => children[victim]
                    .wait_for(|line| line.starts_with(ACK))
                    .map_err(at)?,
                _ => {
                    for child in &mut children {
                        child.wait_for(|line| line == READY).map_err(at)?;
                    }
                }
            }
            thread::sleep(Duration::from_micros(
                rng.below(max_delay_us.saturating_add(1)),
            ));
            children[victim].kill().map_err(at)?;
            // The survivor commits on at once: two more acknowledgements (the second
            // of a transaction that began after the first was printed).
            let killed = Instant::now();
            children[survivor].take_pending();
            let acks_before = children[survivor].acks();
            children[survivor]
                .wait_for_acks(acks_before + 2, SURVIVOR_STALL)
                .map_err(|e| at(format!("the survivor stalled after the other's kill: {e}")))?;
            report.slowest_survivor = report.slowest_survivor.max(killed.elapsed());
            thread::sleep(Duration::from_micros(rng.below(max_delay_us / 2 + 1)));
            children[survivor].kill().map_err(at)?;
            let mut acked_counts = [0u64; 2];
            for (l, child) in children.iter_mut().enumerate() {
                let (acked, was_open) = child.acknowledged().map_err(at)?;
                if !was_open {
                    report.killed_while_opening += 1;
                }
                acked_counts[l] = acked.map_or(present[l], |g| g + 1);
                report.acknowledged += acked_counts[l] - present[l];
            }
            report.cycles += 1;
            let started = Instant::now();
            let store = reopen(url).map_err(at)?;
            report.slowest_reopen = report.slowest_reopen.max(started.elapsed());
            let found = check_lanes(&store, &mut models, acked_counts).map_err(at)?;
            for l in 0..2 {
                if found[l] == acked_counts[l] + 1 {
                    report.committed_unacknowledged += 1;
                }
            }
            takes_writes(&store).map_err(at)?;
            drop(store);
            present = found;
        }
        report.final_transactions = present[0] + present[1];
        Ok(report)
    }

    /// Checks the reopened store; returns how many transactions it holds.
    fn check_store(
        &self,
        store: &Store,
        model: &mut Model,
        acked_count: u64,
    ) -> Result<u64, String> {
        model.set_events(
            self.events
                && workload::keeps_events(store)
                    .map_err(|e| format!("cannot read the log: {e}"))?,
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

/// Checks a store the two writers shared; returns how many transactions of each
/// lane it holds.
fn check_lanes(
    store: &Store,
    models: &mut [Model; 2],
    acked: [u64; 2],
) -> Result<[u64; 2], String> {
    let check = store.check().map_err(|e| format!("check failed: {e}"))?;
    if !check.is_ok() {
        return Err(format!("check found problems: {:?}", check.problems));
    }
    let seen = Snapshot::of(store).map_err(|e| format!("cannot read the store: {e}"))?;
    let events = workload::keeps_events(store).map_err(|e| format!("cannot read the log: {e}"))?;
    for model in models.iter_mut() {
        model.set_events(events)?;
    }
    let mut found = [0u64; 2];
    let mut schemas = std::collections::BTreeMap::new();
    for (l, model) in models.iter_mut().enumerate() {
        let lane = LANES[l];
        let problems = seen.lane_problems(lane);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let mine = seen.lane(lane.prefix());
        let mut matched = None;
        for n in [acked[l], acked[l] + 1] {
            let expected = model.state_at(n)?;
            if expected.lane(lane.prefix()) == mine {
                schemas.extend(expected.schemas.clone());
                matched = Some(n);
                break;
            }
        }
        found[l] = match matched {
            Some(n) => n,
            None => {
                let expected = model.state_at(acked[l])?.lane(lane.prefix());
                return Err(format!(
                    "lane {}: after {} acknowledged transactions the store's part ({mine}) \
                     matches no allowed state; against the acknowledged state (left: store):\n  {}",
                    lane.prefix(),
                    acked[l],
                    mine.diff(&expected)
                ));
            }
        };
    }
    if seen.schemas != schemas {
        return Err(format!(
            "the schemas {:?} are not the lanes' {:?}",
            seen.schemas, schemas
        ));
    }
    let total = found[0] + found[1];
    let shared = seen.nodes.get(SHARED).map(|text| {
        let node: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        (
            node.pointer("/attributes/count").and_then(Value::as_u64),
            node.pointer("/metadata/version").and_then(Value::as_u64),
        )
    });
    let expected = (total > 0).then_some((Some(total), Some(total)));
    if shared != expected {
        return Err(format!(
            "the shared node holds (count, version) {shared:?}, the lanes hold {found:?} \
             transactions: an update was lost or counted twice"
        ));
    }
    let others: Vec<&String> = seen
        .nodes
        .keys()
        .filter(|name| {
            name.as_str() != SHARED && !LANES.iter().any(|lane| name.starts_with(lane.prefix()))
        })
        .collect();
    if !others.is_empty() {
        return Err(format!("nodes of no lane: {others:?}"));
    }
    Ok(found)
}

/// A running child and what it has said.
struct Running {
    child: ChildGuard,
    lines: Receiver<String>,
    seen: Vec<String>,
    start: u64,
}

impl Running {
    /// Waits until the child says a line that `wanted` accepts.
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool) -> Result<(), String> {
        wait_for(&self.lines, &mut self.seen, wanted)
    }

    /// Takes the lines said so far.
    fn take_pending(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// How many acknowledgements were seen.
    fn acks(&self) -> usize {
        self.seen.iter().filter(|l| l.starts_with(ACK)).count()
    }

    /// Waits until `n` acknowledgements were seen.
    fn wait_for_acks(&mut self, n: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while self.acks() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => return Err(format!("{e} (it said {:?})", self.seen)),
            }
        }
        Ok(())
    }

    /// Kills the child with SIGKILL, and reads everything it printed.
    fn kill(&mut self) -> Result<(), String> {
        // `Child::kill` sends SIGKILL on Unix.
        self.child
            .0
            .kill()
            .map_err(|e| format!("cannot kill the child: {e}"))?;
        let status = self
            .child
            .0
            .wait()
            .map_err(|e| format!("cannot wait for the child: {e}"))?;
        // The reader ends when the pipe closes after the child's death.
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    return Err("the dead child's stdout never closed".into());
                }
            }
        }
        if status.code().is_some() {
            // Killed by a signal, a process has no exit code: this one stopped by itself.
            return Err(format!(
                "the child stopped by itself ({status}) before the kill; it said {:?}",
                self.seen
            ));
        }
        Ok(())
    }

    /// The last transaction the (killed) child acknowledged, and whether it had
    /// opened the store.
    fn acknowledged(&self) -> Result<(Option<u64>, bool), String> {
        let mut acked = None;
        let mut was_open = false;
        for line in &self.seen {
            if line == READY {
                was_open = true;
            } else if let Some(g) = line.strip_prefix(ACK) {
                let g: u64 = g
                    .parse()
                    .map_err(|_| format!("the child printed {line:?}"))?;
                let expected = acked.map_or(self.start, |a: u64| a + 1);
                if g != expected {
                    return Err(format!(
                        "acknowledged {g} after {acked:?} (start {})",
                        self.start
                    ));
                }
                acked = Some(g);
            } else {
                return Err(format!("the child said {line:?}"));
            }
        }
        Ok((acked, was_open))
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

/// The child's whole life: `kgstore-crash-child URL SEED START [LANE]` opens the
/// store, prints [`READY`], then commits transaction `START`, `START + 1`, … of the
/// workload (of one of [`LANES`], each transaction also incrementing [`SHARED`]),
/// printing `ACK g` after each commit returned, until it is killed (or has written
/// `max` transactions, a guard against an orphan running forever).
/// `kgstore-crash-child restore URL BACKUP_DIR` restores a backup instead
/// ([`RESTORE_MODE`]).
pub fn child_main(args: &[String], out: &mut impl Write) -> Result<(), String> {
    if let [mode, url, backup_dir] = args
        && mode == RESTORE_MODE
    {
        return restore_child(url, Path::new(backup_dir), out);
    }
    let (url, seed, start, lane) = match args {
        [url, seed, start] => (url, seed, start, None),
        [url, seed, start, prefix] => {
            let lane = LANES
                .iter()
                .position(|l| l.prefix() == prefix)
                .ok_or_else(|| format!("no lane {prefix:?}"))?;
            (url, seed, start, Some(lane))
        }
        _ => {
            return Err(
                "usage: kgstore-crash-child URL SEED START [LANE] | restore URL BACKUP_DIR".into(),
            );
        }
    };
    let seed: u64 = seed.parse().map_err(|_| format!("bad seed {seed:?}"))?;
    let start: u64 = start.parse().map_err(|_| format!("bad start {start:?}"))?;
    let store = kgstore::open(url).map_err(|e| format!("cannot open {url}: {e}"))?;
    writeln!(out, "{READY}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let max = 100_000;
    let events = std::env::var(EVENTS_VAR).map_or(true, |v| v != "off");
    for g in start..start + max {
        match lane {
            None if !events => store.write(|tx| workload::apply_without_events(tx, seed, g)),
            None => store.write(|tx| workload::apply(tx, seed, g)),
            Some(l) => store.write(|tx| {
                LANES[l].apply(tx, lane_seed(seed, l), g)?;
                bump_shared(tx)
            }),
        }
        .map_err(|e| format!("transaction {g} failed: {e}"))?;
        // A closed pipe means the harness is gone: stop.
        writeln!(out, "{ACK}{g}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The first argument of a restoring child: `kgstore-crash-child restore URL BACKUP_DIR`.
pub const RESTORE_MODE: &str = "restore";

/// The restoring child: opens (creating) the store at `url`, prints [`READY`],
/// restores the backup in `backup_dir` into it (which must be empty), and prints
/// [`ACK`] followed by the items restored once the restore returned.
fn restore_child(url: &str, backup_dir: &Path, out: &mut impl Write) -> Result<(), String> {
    let store = kgstore::open(url).map_err(|e| format!("cannot open {url}: {e}"))?;
    writeln!(out, "{READY}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let report = backup::restore_into(backup_dir, &store, RestoreMode::Empty)
        .map_err(|e| format!("the restore failed: {e}"))?;
    writeln!(out, "{ACK}{}", report.nodes + report.edges).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}
