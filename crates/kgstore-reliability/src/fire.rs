//! Consumer groups under fire: separate consumer processes share one group on a
//! store named by URL, nack at random, park, abandon leases, and one of them is
//! killed with SIGKILL mid-work and replaced. Afterwards:
//!
//! - every event was acked exactly once by the group, or is in the dead-letter
//!   queue with its reason and error (an ack the killed consumer had sent when it
//!   died is "in doubt": it may have committed or not, and then someone else acked
//!   the redelivery — never both);
//! - the group's checkpoint is the last event, nothing is in flight;
//! - replaying the dead-letter queue (in bounded chunks) delivers each parked
//!   event once;
//! - after closing and reopening the store, the counters are exactly those the
//!   consumers' outcomes add up to.
//!
//! `KGSTORE_FIRE_EVENTS` sets the number of events (10,000 by default: about 15 s
//! on SQLite in `/dev/shm`), `KGSTORE_FIRE_SEED` replays a run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use kgstore::events::{
    AckOutcome, Append, AppendOptions, Backoff, EventRead, ExpectedVersion, GroupOptions, Nack,
    NewEvent,
};
use kgstore::{ErrorKind, Store};
use serde_json::json;

use crate::rng::{Rng, env_u64};

/// Sets the number of events.
pub const EVENTS_VAR: &str = "KGSTORE_FIRE_EVENTS";
/// Replays a run.
pub const SEED_VAR: &str = "KGSTORE_FIRE_SEED";
/// The group the consumers share.
pub const GROUP: &str = "fire";
/// Consumers at a time.
pub const CONSUMERS: usize = 3;
/// The group's lease.
const LEASE_MS: u64 = 600;
/// How long a whole run may take before it is called stuck.
const PATIENCE: Duration = Duration::from_secs(1800);

/// What a run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FireReport {
    /// Events appended.
    pub events: u64,
    /// Acks that settled an event (lines of the consumers).
    pub acked: u64,
    /// In-doubt acks of the killed consumer that had committed.
    pub in_doubt_committed: u64,
    /// Events in the dead-letter queue at the end.
    pub dead_lettered: u64,
    /// Acks refused as stale (their lease had expired, or a later attempt was out).
    pub stale: u64,
    /// Leases that expired.
    pub lease_expired: u64,
    /// Redeliveries.
    pub redelivered: u64,
    /// Dead letters replayed and acked.
    pub replayed: u64,
    /// Consumer processes started.
    pub processes: u64,
    /// How long it took.
    pub elapsed: Duration,
}

impl std::fmt::Display for FireReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events: {} acked ({} by a killed consumer's in-doubt ack), {} dead-lettered and \
             replayed once each ({} replayed), {} stale acks refused, {} leases expired, {} \
             redeliveries, {} consumer processes, {:.1?}",
            self.events,
            self.acked + self.in_doubt_committed,
            self.in_doubt_committed,
            self.dead_lettered,
            self.replayed,
            self.stale,
            self.lease_expired,
            self.redelivered,
            self.processes,
            self.elapsed
        )
    }
}

/// The consumer's whole life: `kgstore-fire-child URL ID SEED` opens the store and
/// works the group until it is done, printing `ACKING p` before each ack and
/// `ACKED p` after an ack that settled the event.
pub fn child_main(args: &[String], out: &mut impl Write) -> Result<(), String> {
    let [url, id, seed] = args else {
        return Err("usage: kgstore-fire-child URL ID SEED".into());
    };
    let seed: u64 = seed.parse().map_err(|_| format!("bad seed {seed:?}"))?;
    let store = kgstore::open(url).map_err(|e| format!("cannot open {url}: {e}"))?;
    let consumer = store
        .consumer(GROUP, id)
        .map_err(|e| format!("no consumer: {e}"))?;
    let mut rng = Rng::new(seed);
    let mut say = |line: String| -> Result<(), String> {
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())
    };
    say("READY".into())?;
    let fail = |e: kgstore::Error| format!("consumer {id}: {e}");
    loop {
        let deliveries = consumer
            .poll_wait(5, Duration::from_millis(300))
            .map_err(fail)?;
        if deliveries.is_empty() {
            let status = store.group_status(GROUP).map_err(fail)?;
            let head = store.last_position().map_err(fail)?;
            if status.checkpoint >= head && status.in_flight == 0 {
                return Ok(());
            }
            continue;
        }
        for d in deliveries {
            let p = d.event.position;
            match rng.below(100) {
                0..=7 => {
                    consumer
                        .nack(&d, &Nack::Retry { after_ms: None }, "random failure")
                        .map_err(fail)?;
                }
                8..=9 => {
                    consumer
                        .nack(&d, &Nack::Park, "parked at random")
                        .map_err(fail)?;
                }
                10..=12 => {} // abandoned: its lease expires
                13 if rng.chance(1, 4) => {
                    // Too slow: the ack comes after the lease ended and settles nothing.
                    std::thread::sleep(Duration::from_millis(LEASE_MS + 200));
                    say(format!("ACKING {p}"))?;
                    match consumer.ack(&d).map_err(fail)? {
                        AckOutcome::Acked => say(format!("ACKED {p}"))?,
                        _ => say(format!("STALE {p}"))?,
                    }
                }
                _ => {
                    say(format!("ACKING {p}"))?;
                    match consumer.ack(&d).map_err(fail)? {
                        AckOutcome::Acked => say(format!("ACKED {p}"))?,
                        _ => say(format!("STALE {p}"))?,
                    }
                }
            }
        }
    }
}

/// One consumer process and its output.
struct Consumer {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(binary: &PathBuf, url: &str, id: &str, seed: u64) -> Result<Consumer, String> {
    let mut child = Command::new(binary)
        .args([url, id, &seed.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().ok_or("the consumer has no stdout")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(Consumer {
        child,
        lines: rx,
        seen: Vec::new(),
    })
}

impl Consumer {
    /// Takes what the consumer printed so far; whether its output has ended.
    fn drain(&mut self) -> bool {
        loop {
            match self.lines.try_recv() {
                Ok(line) => self.seen.push(line),
                Err(mpsc::TryRecvError::Empty) => return false,
                Err(mpsc::TryRecvError::Disconnected) => return true,
            }
        }
    }

    fn acked(&self) -> usize {
        self.seen.iter().filter(|l| l.starts_with("ACKED ")).count()
    }
}

/// Positions of the lines that start with `prefix`.
fn positions(lines: &[String], prefix: &str) -> Result<Vec<u64>, String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|p| p.parse().map_err(|_| format!("bad line {prefix}{p}")))
        .collect()
}

/// Runs the scenario on the store at `url` with consumer processes of `binary`.
pub fn run(url: &str, binary: impl Into<PathBuf>) -> Result<FireReport, String> {
    let binary = binary.into();
    let started = Instant::now();
    let events = env_u64(EVENTS_VAR, 10_000);
    let seed = Rng::seed_from_env(SEED_VAR);
    let mut rng = Rng::new(seed);
    let at = |what: &str, e: kgstore::Error| format!("{what} (seed {seed}): {e}");
    let mut report = FireReport {
        events,
        ..FireReport::default()
    };
    {
        let store = kgstore::open(url).map_err(|e| at("open", e))?;
        store
            .create_group(
                GROUP,
                GroupOptions {
                    lease_ms: LEASE_MS,
                    max_deliveries: 5,
                    backoff: Backoff {
                        initial_ms: 5,
                        max_ms: 50,
                        jitter: true,
                    },
                    ..GroupOptions::default()
                },
            )
            .map_err(|e| at("create the group", e))?;
        let mut next = 1;
        while next <= events {
            let last = (next + 499).min(events);
            let batch: Vec<NewEvent> = (next..=last)
                .map(|i| NewEvent::new("fire.event", json!({"i": i})).with_id(format!("e{i}")))
                .collect();
            store
                .append_all(
                    vec![Append::new(
                        format!("fire-{}", next % 7),
                        ExpectedVersion::Any,
                        batch,
                    )],
                    &AppendOptions {
                        batch: Some("fire".into()),
                    },
                )
                .map_err(|e| at("append", e))?;
            next = last + 1;
        }
    }
    // Three consumers; the first is killed once it has settled a tenth of the
    // events (or so), and a fourth takes its place.
    let mut consumers: Vec<Consumer> = (0..CONSUMERS)
        .map(|i| spawn(&binary, url, &format!("c{i}"), rng.next_u64()))
        .collect::<Result<_, _>>()?;
    report.processes = CONSUMERS as u64;
    let kill_after = (events / 10).max(1) as usize + rng.index(events as usize / 20 + 1);
    let mut killed: Option<Vec<String>> = None;
    loop {
        if started.elapsed() > PATIENCE {
            return Err(format!(
                "the consumers did not finish in {PATIENCE:?} (seed {seed})"
            ));
        }
        let mut all_ended = true;
        for consumer in &mut consumers {
            all_ended &= consumer.drain();
        }
        if killed.is_none() && consumers[0].acked() >= kill_after {
            let mut victim = consumers.remove(0);
            // `Child::kill` is SIGKILL on Unix.
            victim
                .child
                .kill()
                .map_err(|e| format!("cannot kill: {e}"))?;
            let _ = victim.child.wait();
            // Its reader ends once the pipe is closed.
            loop {
                match victim.lines.recv_timeout(Duration::from_secs(30)) {
                    Ok(line) => victim.seen.push(line),
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => {
                        return Err("a killed consumer's output never closed".into());
                    }
                }
            }
            killed = Some(std::mem::take(&mut victim.seen));
            consumers.push(spawn(&binary, url, "c3", rng.next_u64())?);
            report.processes += 1;
            continue;
        }
        if all_ended {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut lines: Vec<String> = Vec::new();
    for consumer in &mut consumers {
        let status = consumer
            .child
            .wait()
            .map_err(|e| format!("cannot wait for a consumer: {e}"))?;
        if !status.success() {
            return Err(format!("a consumer failed ({status}) (seed {seed})"));
        }
        lines.append(&mut consumer.seen);
    }
    let killed = killed.ok_or("the consumer to kill never acked enough")?;
    check(url, &lines, &killed, seed, &mut report)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The checks after the consumers are done.
fn check(
    url: &str,
    lines: &[String],
    killed: &[String],
    seed: u64,
    report: &mut FireReport,
) -> Result<(), String> {
    let at = |what: &str, e: kgstore::Error| format!("{what} (seed {seed}): {e}");
    let mut acks: BTreeMap<u64, u32> = BTreeMap::new();
    for p in positions(lines, "ACKED ")?
        .into_iter()
        .chain(positions(killed, "ACKED ")?)
    {
        *acks.entry(p).or_default() += 1;
    }
    // An ack the killed consumer sent but did not live to report.
    let killed_acked: BTreeSet<u64> = positions(killed, "ACKED ")?.into_iter().collect();
    let killed_stale: BTreeSet<u64> = positions(killed, "STALE ")?.into_iter().collect();
    let in_doubt: Vec<u64> = positions(killed, "ACKING ")?
        .into_iter()
        .filter(|p| !killed_acked.contains(p) && !killed_stale.contains(p))
        .collect();
    if in_doubt.len() > 1 {
        return Err(format!("more than one ack in doubt: {in_doubt:?}"));
    }
    let store = kgstore::open(url).map_err(|e| at("reopen", e))?;
    let dead: BTreeMap<u64, kgstore::events::DeadLetter> = store
        .dead_letters(GROUP, None, 10_000)
        .map_err(|e| at("list dead letters", e))?
        .into_iter()
        .map(|d| (d.position, d))
        .collect();
    for p in 1..=report.events {
        let times = acks.get(&p).copied().unwrap_or(0);
        let in_dlq = dead.contains_key(&p);
        match (times, in_dlq) {
            (1, false) | (0, true) => {}
            (0, false) if in_doubt.contains(&p) => report.in_doubt_committed += 1,
            _ => {
                return Err(format!(
                    "event {p}: acked {times} times, dead-lettered {in_dlq} (seed {seed})"
                ));
            }
        }
    }
    for letter in dead.values() {
        if letter.error.as_deref().is_none_or(str::is_empty) || letter.attempts == 0 {
            return Err(format!("dead letter without its story: {letter:?}"));
        }
    }
    report.acked = acks.values().map(|n| u64::from(*n)).sum();
    report.dead_lettered = dead.len() as u64;
    let status = store.group_status(GROUP).map_err(|e| at("status", e))?;
    if status.checkpoint != report.events || status.in_flight != 0 {
        return Err(format!("the group did not finish: {status:?}"));
    }
    let counters = status.counters;
    if counters.acked != report.acked + report.in_doubt_committed
        || counters.dead_lettered != report.dead_lettered
        || status.dead_letters != report.dead_lettered
    {
        return Err(format!(
            "counters {counters:?} do not add up to {} acks and {} dead letters",
            report.acked + report.in_doubt_committed,
            report.dead_lettered
        ));
    }
    report.stale = counters.stale;
    report.lease_expired = counters.lease_expired;
    report.redelivered = counters.redelivered;
    let batch = store.batch_status("fire").map_err(|e| at("batch", e))?;
    if !batch.complete(Some(GROUP)) {
        return Err(format!("the batch is not settled: {batch:?}"));
    }
    // Replaying the dead-letter queue delivers each parked event once.
    store
        .replay_dead_letters(GROUP, 1, report.events, 16)
        .map_err(|e| at("replay", e))?;
    let replayer = store
        .consumer(GROUP, "replayer")
        .map_err(|e| at("consumer", e))?;
    let mut replayed: Vec<u64> = Vec::new();
    loop {
        let deliveries = replayer.poll(5).map_err(|e| at("poll", e))?;
        if deliveries.is_empty() {
            break;
        }
        for d in deliveries {
            if !d.replay || d.attempt != 1 {
                return Err(format!("a replay came as {d:?}"));
            }
            match replayer.ack(&d).map_err(|e| at("ack", e))? {
                AckOutcome::Acked => replayed.push(d.event.position),
                other => return Err(format!("a replay's ack was {other:?}")),
            }
        }
    }
    let unique: BTreeSet<u64> = replayed.iter().copied().collect();
    if unique.len() != replayed.len() || unique != dead.keys().copied().collect() {
        return Err(format!(
            "the replay delivered {replayed:?}, the dead letters were {:?}",
            dead.keys().collect::<Vec<_>>()
        ));
    }
    report.replayed = replayed.len() as u64;
    let before = store.group_status(GROUP).map_err(|e| at("status", e))?;
    drop(replayer);
    drop(store);
    // Counters survive a restart exactly.
    let store: Store = kgstore::open(url).map_err(|e| at("reopen", e))?;
    let after = store.group_status(GROUP).map_err(|e| at("status", e))?;
    if after != before
        || after.counters.replay_acked != report.dead_lettered
        || after.dead_letters != 0
        || after.checkpoint != report.events
    {
        return Err(format!(
            "after a restart the group reads {after:?}, before it was {before:?}"
        ));
    }
    match store.check() {
        Ok(check) if check.is_ok() => Ok(()),
        Ok(check) => Err(format!("check found problems: {:?}", check.problems)),
        Err(e) if e.kind() == ErrorKind::Unsupported => Ok(()),
        Err(e) => Err(at("check", e)),
    }
}
