//! Consumer groups: competing consumers share a durable position in the log.
//!
//! Every delivery is a lease on one event for one delivery attempt. The consumer
//! settles it with the [`DeliveryToken`] it received: `ack`, or `nack` (retry after
//! a backoff, park in the dead-letter queue, skip), or renews the lease. A token of
//! an attempt that is no longer current — its lease expired, or a later attempt
//! went out — settles nothing ([`AckOutcome::Stale`]): acks are fenced by attempt.
//! An event is dead-lettered after `max_deliveries` attempts (10 by default).
//!
//! State lives in the event store's keyed state and changes only inside write
//! transactions, so a group's checkpoint and counters are exact across crashes and
//! restarts. The checkpoint is derived, never written separately: every event at or
//! below it is settled (acked, skipped or dead-lettered). Dead letters are replayed
//! through a separate queue, so replays never move the checkpoint.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::events::backend::{EventLogRead, EventLogWrite, LogRecord, LogScan};
use crate::events::model::{RecordedEvent, check_event_type, check_group, check_id, check_stream};
use crate::events::read::{EventRead, RemovedRange, age_cutoffs, hidden, note_removed, recorded};
use crate::events::subscribe::WaitSettings;
use crate::events::{batch, kv};
use crate::store::{Store, WriteTx};
use crate::timestamp::Timestamp;
use crate::validate;

/// Where a new group starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// At the first event of the log.
    #[default]
    Beginning,
    /// After the last event there is when the group is created.
    End,
    /// At this position (inclusive).
    Position(u64),
}

/// How long a failed delivery waits before it is retried: `initial_ms`, doubled
/// per attempt up to `max_ms`; with `jitter`, a random time between half and all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backoff {
    /// The wait after the first failure, in milliseconds.
    pub initial_ms: u64,
    /// The longest wait, in milliseconds.
    pub max_ms: u64,
    /// Whether waits are spread randomly (between half and all of the computed wait).
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial_ms: 1_000,
            max_ms: 300_000,
            jitter: true,
        }
    }
}

impl Backoff {
    /// The wait after the `attempt`-th delivery failed (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(62);
        let full = self
            .initial_ms
            .saturating_mul(1u64 << exponent)
            .min(self.max_ms.max(self.initial_ms));
        let ms = if self.jitter && full > 1 {
            full / 2 + fastrand::u64(0..=full - full / 2)
        } else {
            full
        };
        Duration::from_millis(ms)
    }
}

/// Most deliveries one poll hands out.
pub const MAX_POLL: usize = 10_000;

/// A consumer group's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupOptions {
    /// Only events of this stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Only events of streams whose names start with this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_prefix: Option<String>,
    /// Only events of these types (any if empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Where the group starts.
    pub start: StartFrom,
    /// Deliveries of one event before it is dead-lettered (1 to 1000; default 10).
    pub max_deliveries: u32,
    /// How long a delivery's lease lasts, in milliseconds (default 30 s).
    pub lease_ms: u64,
    /// The wait before a failed delivery is retried.
    pub backoff: Backoff,
    /// Most events delivered and not yet settled at once (default 1000).
    pub max_in_flight: u32,
}

impl Default for GroupOptions {
    fn default() -> Self {
        Self {
            stream: None,
            stream_prefix: None,
            types: Vec::new(),
            start: StartFrom::Beginning,
            max_deliveries: 10,
            lease_ms: 30_000,
            backoff: Backoff::default(),
            max_in_flight: 1_000,
        }
    }
}

impl GroupOptions {
    /// Refuses settings out of range.
    pub fn check(&self) -> Result<()> {
        if let Some(stream) = &self.stream {
            check_stream(stream)?;
        }
        if let Some(prefix) = &self.stream_prefix {
            check_stream(prefix)?;
        }
        for t in &self.types {
            check_event_type(t)?;
        }
        let range = |what: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(Error::invalid_input(
                    format!("consumer group {what}"),
                    format!("{value} is not between {min} and {max}"),
                ))
            }
        };
        range("max_deliveries", u64::from(self.max_deliveries), 1, 1_000)?;
        range("lease_ms", self.lease_ms, 1, 24 * 3_600_000)?;
        range("max_in_flight", u64::from(self.max_in_flight), 1, 1_000_000)?;
        range("backoff.max_ms", self.backoff.max_ms, 0, 7 * 24 * 3_600_000)?;
        range(
            "backoff.initial_ms",
            self.backoff.initial_ms,
            0,
            self.backoff.max_ms,
        )?;
        if self.start == StartFrom::Position(0) {
            return Err(Error::invalid_input(
                "consumer group start",
                "positions start at 1",
            ));
        }
        Ok(())
    }

    /// Whether the group receives events of `stream` and `event_type`.
    pub fn matches(&self, stream: &str, event_type: &str) -> bool {
        self.stream.as_deref().is_none_or(|s| s == stream)
            && self
                .stream_prefix
                .as_deref()
                .is_none_or(|p| stream.starts_with(p))
            && (self.types.is_empty() || self.types.iter().any(|t| t == event_type))
    }
}

/// What a group has done, counted exactly (in the transactions that did it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupCounters {
    /// Deliveries handed out (every attempt).
    pub delivered: u64,
    /// Deliveries that were not an event's first.
    pub redelivered: u64,
    /// Events acked (dead-letter replays excluded).
    pub acked: u64,
    /// Nacks asking for a retry.
    pub retried: u64,
    /// Events moved to the dead-letter queue (parked or out of deliveries).
    pub dead_lettered: u64,
    /// Of those, parked by a consumer.
    pub parked: u64,
    /// Events skipped by a consumer.
    pub skipped: u64,
    /// Leases that expired before their delivery was settled.
    pub lease_expired: u64,
    /// Acks, nacks and renewals refused because their attempt was no longer current.
    pub stale: u64,
    /// Dead letters queued for replay.
    pub replay_queued: u64,
    /// Replayed dead letters acked (they leave the dead-letter queue).
    pub replay_acked: u64,
    /// Dead letters purged.
    pub purged: u64,
    /// Events retention removed before the group could receive them.
    pub removed_by_retention: u64,
}

/// A group as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupRecord {
    name: String,
    options: GroupOptions,
    created_at: Timestamp,
    /// The last position the group has looked at.
    cursor: u64,
    in_flight: u64,
    dead_letters: u64,
    replaying: u64,
    counters: GroupCounters,
    /// The latest ranges retention removed before the group received them (at most 20).
    retention_gaps: Vec<RemovedRange>,
}

/// Most retention gaps a group remembers.
const GAPS_KEPT: usize = 20;

/// A group's settings, position and counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group's name.
    pub name: String,
    /// Its settings.
    pub options: GroupOptions,
    /// When it was created.
    pub created_at: Timestamp,
    /// Every event at or below this position is settled for the group.
    pub checkpoint: u64,
    /// The last position the group has looked at.
    pub cursor: u64,
    /// Events after the checkpoint not yet settled, up to the log's end.
    pub lag: u64,
    /// Events delivered or waiting for a retry.
    pub in_flight: u64,
    /// Events in the dead-letter queue.
    pub dead_letters: u64,
    /// Dead letters being replayed.
    pub replaying: u64,
    /// What the group has done.
    pub counters: GroupCounters,
    /// The latest ranges retention removed before the group received them: the group
    /// moved past them, and says so here.
    pub retention_gaps: Vec<RemovedRange>,
}

/// An event delivered (or waiting to be redelivered) to a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingDelivery {
    /// The event's position.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its id.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// Its batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// The current attempt (0 before the first delivery of a replay).
    pub attempt: u32,
    /// Whether a consumer holds it (else it waits for a retry).
    pub leased: bool,
    /// The consumer holding it, or that held it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// When the lease expires, or when the retry is due.
    pub due: Timestamp,
    /// How many deliveries failed (nacked or expired).
    pub failures: u32,
    /// When the first failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure_at: Option<Timestamp>,
    /// When the last failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<Timestamp>,
    /// The last failure's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Whether it is a replay of a dead letter.
    #[serde(default)]
    pub replay: bool,
}

/// Why an event is in the dead-letter queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// Every allowed delivery failed (nacked, or its lease expired).
    MaxDeliveries,
    /// A consumer parked it.
    Parked,
    /// Retention removed the event while it waited for a redelivery.
    Removed,
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MaxDeliveries => "max_deliveries",
            Self::Parked => "parked",
            Self::Removed => "removed",
        })
    }
}

/// An event in a group's dead-letter queue: a pointer to the event (not a copy) and
/// the story of its failures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// The group.
    pub group: String,
    /// The event's position.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its id.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// Its batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// Why it is here.
    pub reason: DeadLetterReason,
    /// The last error a consumer gave (or the reason it parked it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Delivery attempts it had, replays included.
    pub attempts: u32,
    /// When its first delivery failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure_at: Option<Timestamp>,
    /// When its last delivery failed.
    pub last_failure_at: Timestamp,
    /// When it was (last) dead-lettered.
    pub dead_lettered_at: Timestamp,
    /// How many times it was replayed and failed again.
    pub replays: u32,
    /// Whether a replay of it is under way.
    pub replaying: bool,
}

/// What settles one delivery: the group, the event's position and the attempt.
/// Printed as `group/position/attempt` (with `/replay` for a dead-letter replay).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeliveryToken {
    /// The group.
    pub group: String,
    /// The event's position.
    pub position: u64,
    /// The attempt it was delivered in.
    pub attempt: u32,
    /// Whether it is a dead-letter replay.
    #[serde(default)]
    pub replay: bool,
}

impl fmt::Display for DeliveryToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.group, self.position, self.attempt)?;
        if self.replay {
            f.write_str("/replay")?;
        }
        Ok(())
    }
}

impl FromStr for DeliveryToken {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_input(
                format!("delivery token '{}'", validate::shorten(s)),
                "expected GROUP/POSITION/ATTEMPT or GROUP/POSITION/ATTEMPT/replay",
            )
        };
        let parts: Vec<&str> = s.split('/').collect();
        let (group, position, attempt, replay) = match parts.as_slice() {
            [g, p, a] => (g, p, a, false),
            [g, p, a, "replay"] => (g, p, a, true),
            _ => return Err(bad()),
        };
        check_group(group)?;
        Ok(Self {
            group: (*group).to_owned(),
            position: position.parse().map_err(|_| bad())?,
            attempt: attempt.parse().map_err(|_| bad())?,
            replay,
        })
    }
}

/// One event handed to a consumer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event.
    pub event: RecordedEvent,
    /// What settles this delivery.
    pub token: DeliveryToken,
    /// The attempt (1 for the first delivery).
    pub attempt: u32,
    /// When the lease ends: settle (or renew) before.
    pub lease_expires_at: Timestamp,
    /// Whether it is a replay of a dead letter.
    pub replay: bool,
}

/// What a consumer asks for a delivery it could not handle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nack {
    /// Deliver it again after the backoff, or after `after_ms` if longer (dead-lettered
    /// if it was the last allowed attempt).
    Retry {
        /// The least wait, in milliseconds.
        #[serde(default)]
        after_ms: Option<u64>,
    },
    /// Move it to the dead-letter queue now.
    Park,
    /// Settle it without handling it.
    Skip,
}

/// What settling a delivery did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum AckOutcome {
    /// Acked: settled for the group.
    Acked,
    /// Will be delivered again, not before this time.
    Retrying {
        /// When.
        not_before: Timestamp,
    },
    /// Moved to the dead-letter queue.
    DeadLettered {
        /// Why.
        reason: DeadLetterReason,
    },
    /// Skipped: settled without handling.
    Skipped,
    /// The lease was extended.
    Renewed {
        /// Until when.
        lease_expires_at: Timestamp,
    },
    /// Nothing was done: the attempt is no longer current.
    Stale {
        /// Why, in words.
        reason: String,
    },
}

/// Why a value is not a group record kgstore writes, if it is not.
pub(crate) fn record_problem(value: &serde_json::Value) -> Option<String> {
    serde_json::from_value::<GroupRecord>(value.clone())
        .err()
        .map(|e| e.to_string())
}

fn not_found(group: &str) -> Error {
    Error::not_found(format!("consumer group '{}'", validate::shorten(group)))
}

fn load(r: &dyn EventLogRead, group: &str) -> Result<GroupRecord> {
    check_group(group)?;
    kv::get(r, kv::GROUPS, group)?.ok_or_else(|| not_found(group))
}

fn save(w: &mut dyn EventLogWrite, record: &GroupRecord) -> Result<()> {
    kv::put(w, kv::GROUPS, &record.name, record)
}

/// The derived checkpoint: one below the oldest unsettled event, or the cursor.
fn checkpoint(r: &dyn EventLogRead, record: &GroupRecord) -> Result<u64> {
    let first = r.state_scan(kv::PENDING, &format!("{}/", record.name), None, 1)?;
    Ok(match first.first().and_then(|(k, _)| kv::position_of(k)) {
        Some(position) => position.saturating_sub(1).min(record.cursor),
        None => record.cursor,
    })
}

fn status_of(r: &dyn EventLogRead, record: GroupRecord) -> Result<GroupStatus> {
    let checkpoint = checkpoint(r, &record)?;
    let head = r.log_head()?;
    Ok(GroupStatus {
        checkpoint,
        lag: head.saturating_sub(checkpoint),
        cursor: record.cursor,
        in_flight: record.in_flight,
        dead_letters: record.dead_letters,
        replaying: record.replaying,
        counters: record.counters,
        retention_gaps: record.retention_gaps,
        name: record.name,
        options: record.options,
        created_at: record.created_at,
    })
}

pub(crate) fn status(r: &dyn EventLogRead, group: &str) -> Result<GroupStatus> {
    let record = load(r, group)?;
    status_of(r, record)
}

pub(crate) fn list(r: &dyn EventLogRead, _now: Timestamp) -> Result<Vec<GroupStatus>> {
    kv::all::<GroupRecord>(r, kv::GROUPS, "")?
        .into_iter()
        .map(|(_, record)| status_of(r, record))
        .collect()
}

/// Every group with its options, the position it starts at and its checkpoint, for batch tracking.
pub(crate) fn all_options(r: &dyn EventLogRead) -> Result<Vec<(String, GroupOptions, u64, u64)>> {
    kv::all::<GroupRecord>(r, kv::GROUPS, "")?
        .into_iter()
        .map(|(_, g)| {
            let start = match g.options.start {
                StartFrom::Position(p) => p,
                _ => 1,
            };
            let checkpoint = checkpoint(r, &g)?;
            Ok((g.name, g.options, start, checkpoint))
        })
        .collect()
}

pub(crate) fn dead_letters(
    r: &dyn EventLogRead,
    group: &str,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<DeadLetter>> {
    load(r, group)?;
    if limit == 0 || limit > MAX_POLL {
        return Err(Error::invalid_input(
            "dead-letter listing limit",
            format!("{limit} is not between 1 and {MAX_POLL}"),
        ));
    }
    let after = after.map(|p| kv::group_key(group, p));
    Ok(
        kv::scan::<DeadLetter>(r, kv::DEAD, &format!("{group}/"), after.as_deref(), limit)?
            .into_iter()
            .map(|(_, d)| d)
            .collect(),
    )
}

pub(crate) fn pending(r: &dyn EventLogRead, group: &str) -> Result<Vec<PendingDelivery>> {
    load(r, group)?;
    let prefix = format!("{group}/");
    let mut out: Vec<PendingDelivery> = kv::all(r, kv::PENDING, &prefix)?
        .into_iter()
        .chain(kv::all(r, kv::REPLAYS, &prefix)?)
        .map(|(_, p)| p)
        .collect();
    out.sort_by_key(|p| (p.replay, p.position));
    Ok(out)
}

/// When the group next has something to hand out without a new event: the earliest
/// lease expiry or retry time.
pub(crate) fn next_due(r: &dyn EventLogRead, group: &str) -> Result<Option<Timestamp>> {
    let first = r.state_scan(kv::DUE, &format!("{group}/"), None, 1)?;
    Ok(first
        .first()
        .and_then(|(key, _)| parse_due(key))
        .map(|(t, _, _)| t))
}

fn space(replay: bool) -> &'static str {
    if replay { kv::REPLAYS } else { kv::PENDING }
}

fn due_key(group: &str, entry: &PendingDelivery) -> String {
    format!(
        "{group}/{}/{}{}",
        kv::time(entry.due),
        if entry.replay { 'r' } else { 'l' },
        kv::num(entry.position)
    )
}

/// `(time, replay, position)` of a due key.
fn parse_due(key: &str) -> Option<(Timestamp, bool, u64)> {
    let mut parts = key.rsplitn(3, '/');
    let entry = parts.next()?;
    let time = parts.next()?;
    let (replay, position) = match entry.split_at_checked(1)? {
        ("l", p) => (false, p),
        ("r", p) => (true, p),
        _ => return None,
    };
    let micros: i64 = time.parse().ok()?;
    Some((
        Timestamp::from_micros(micros).ok()?,
        replay,
        position.parse().ok()?,
    ))
}

fn after(now: Timestamp, duration: Duration) -> Timestamp {
    let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
    Timestamp::from_micros(now.as_micros().saturating_add(micros)).unwrap_or(now)
}

/// The writes of one group operation, on the group's record.
struct Op<'w> {
    w: &'w mut dyn EventLogWrite,
    record: GroupRecord,
    now: Timestamp,
}

impl Op<'_> {
    fn group(&self) -> &str {
        &self.record.name
    }

    fn put_entry(&mut self, entry: &PendingDelivery) -> Result<()> {
        let key = kv::group_key(&self.record.name, entry.position);
        kv::put(self.w, space(entry.replay), &key, entry)?;
        let due = due_key(&self.record.name, entry);
        self.w.state_put(kv::DUE, &due, &kv::marker())
    }

    fn drop_entry(&mut self, entry: &PendingDelivery) -> Result<()> {
        let key = kv::group_key(&self.record.name, entry.position);
        self.w.state_delete(space(entry.replay), &key)?;
        let due = due_key(&self.record.name, entry);
        self.w.state_delete(kv::DUE, &due)?;
        Ok(())
    }

    fn batch(
        &mut self,
        entry: &PendingDelivery,
        f: impl FnOnce(&mut batch::BatchCounts),
    ) -> Result<()> {
        match &entry.batch {
            Some(b) => batch::bump(self.w, &self.record.name, b, f),
            None => Ok(()),
        }
    }

    /// Hands an entry out as its next attempt.
    fn deliver(&mut self, mut entry: PendingDelivery, consumer: &str) -> Result<Option<Delivery>> {
        let scan = LogScan {
            from: entry.position,
            limit: 1,
            without_digests: true,
            ..LogScan::default()
        };
        let record = self
            .w
            .log_scan(&scan)?
            .into_iter()
            .find(|r| r.position == entry.position);
        let cutoffs = age_cutoffs(self.w, self.now)?;
        let Some(record) = record.filter(|r| !hidden(r, &cutoffs)) else {
            let error = "retention removed the event before it could be delivered again".to_owned();
            self.dead_letter(entry, DeadLetterReason::Removed, Some(error))?;
            return Ok(None);
        };
        self.drop_entry(&entry)?;
        entry.attempt += 1;
        entry.leased = true;
        entry.consumer = Some(consumer.to_owned());
        entry.due = after(
            self.now,
            Duration::from_millis(self.record.options.lease_ms),
        );
        self.put_entry(&entry)?;
        self.record.counters.delivered += 1;
        if entry.attempt > 1 {
            self.record.counters.redelivered += 1;
        }
        if entry.attempt == 1 && !entry.replay {
            self.batch(&entry, |c| c.delivered += 1)?;
        }
        Ok(Some(Delivery {
            event: recorded(record),
            token: DeliveryToken {
                group: self.record.name.clone(),
                position: entry.position,
                attempt: entry.attempt,
                replay: entry.replay,
            },
            attempt: entry.attempt,
            lease_expires_at: entry.due,
            replay: entry.replay,
        }))
    }

    /// Notes a failed delivery on its entry.
    fn fail(&mut self, entry: &mut PendingDelivery, error: String) -> Result<()> {
        entry.failures += 1;
        entry.first_failure_at.get_or_insert(self.now);
        entry.last_failure_at = Some(self.now);
        entry.last_error = Some(error);
        if entry.failures == 1 && !entry.replay {
            self.batch(entry, |c| c.failed += 1)?;
        }
        Ok(())
    }

    /// Moves an entry to the dead-letter queue.
    fn dead_letter(
        &mut self,
        entry: PendingDelivery,
        reason: DeadLetterReason,
        error: Option<String>,
    ) -> Result<()> {
        self.drop_entry(&entry)?;
        let key = kv::group_key(&self.record.name, entry.position);
        if entry.replay {
            // Back where it came from, with one more failed replay.
            let mut letter: DeadLetter = kv::get(self.w, kv::DEAD, &key)?.ok_or_else(|| {
                Error::corrupt(
                    format!("event store state {}/{key}", kv::DEAD),
                    "a replay's dead letter is missing",
                )
            })?;
            letter.replays += 1;
            letter.replaying = false;
            letter.attempts = letter.attempts.saturating_add(entry.attempt);
            letter.reason = reason;
            letter.error = error.or(entry.last_error);
            letter.last_failure_at = self.now;
            letter.dead_lettered_at = self.now;
            kv::put(self.w, kv::DEAD, &key, &letter)?;
            self.record.replaying = self.record.replaying.saturating_sub(1);
            return Ok(());
        }
        let letter = DeadLetter {
            group: self.record.name.clone(),
            position: entry.position,
            stream: entry.stream.clone(),
            version: entry.version,
            event_id: entry.event_id.clone(),
            event_type: entry.event_type.clone(),
            batch: entry.batch.clone(),
            reason,
            error: error.or(entry.last_error.clone()),
            attempts: entry.attempt,
            first_failure_at: entry.first_failure_at.or(Some(self.now)),
            last_failure_at: self.now,
            dead_lettered_at: self.now,
            replays: 0,
            replaying: false,
        };
        kv::put(self.w, kv::DEAD, &key, &letter)?;
        self.record.in_flight = self.record.in_flight.saturating_sub(1);
        self.record.dead_letters += 1;
        self.record.counters.dead_lettered += 1;
        if reason == DeadLetterReason::Parked {
            self.record.counters.parked += 1;
        }
        self.batch(&entry, |c| c.dead_lettered += 1)
    }

    /// Entries whose lease expired or whose retry is due, handed out (or
    /// dead-lettered when out of attempts).
    fn due_entries(&mut self, consumer: &str, max: usize, out: &mut Vec<Delivery>) -> Result<()> {
        let prefix = format!("{}/", self.record.name);
        while out.len() < max {
            let page =
                self.w
                    .state_scan(kv::DUE, &prefix, None, (max - out.len()).min(kv::PAGE))?;
            if page.is_empty() {
                return Ok(());
            }
            let mut progressed = false;
            for (key, _) in page {
                let Some((time, replay, position)) = parse_due(&key) else {
                    return Err(Error::corrupt(
                        format!("event store state {}/{key}", kv::DUE),
                        "not a due-index key kgstore wrote",
                    ));
                };
                if time > self.now {
                    return Ok(());
                }
                let entry_key = kv::group_key(&self.record.name, position);
                let Some(mut entry) =
                    kv::get::<PendingDelivery>(self.w, space(replay), &entry_key)?
                else {
                    // An index entry without its entry: drop it.
                    self.w.state_delete(kv::DUE, &key)?;
                    progressed = true;
                    continue;
                };
                progressed = true;
                if entry.leased {
                    self.record.counters.lease_expired += 1;
                    let holder = entry.consumer.clone().unwrap_or_default();
                    let error = format!(
                        "the lease of attempt {} expired (consumer '{}' did not settle it in time)",
                        entry.attempt,
                        validate::shorten(&holder)
                    );
                    self.fail(&mut entry, error)?;
                }
                if entry.attempt >= self.record.options.max_deliveries {
                    self.dead_letter(entry, DeadLetterReason::MaxDeliveries, None)?;
                    continue;
                }
                if let Some(delivery) = self.deliver(entry, consumer)? {
                    out.push(delivery);
                    if out.len() >= max {
                        return Ok(());
                    }
                }
            }
            if !progressed {
                return Ok(());
            }
        }
        Ok(())
    }

    /// New events after the cursor.
    fn new_events(&mut self, consumer: &str, max: usize, out: &mut Vec<Delivery>) -> Result<()> {
        let head = self.w.log_head()?;
        let options = self.record.options.clone();
        while out.len() < max && self.record.cursor < head {
            let room = (max - out.len()).min(
                usize::try_from(
                    u64::from(options.max_in_flight).saturating_sub(self.record.in_flight),
                )
                .unwrap_or(0),
            );
            if room == 0 {
                return Ok(());
            }
            // A single stream is read as a prefix (then matched exactly), so that
            // the scan still runs by position.
            let scan = LogScan {
                stream: None,
                stream_prefix: options
                    .stream
                    .as_deref()
                    .or(options.stream_prefix.as_deref()),
                types: &options.types,
                from: self.record.cursor + 1,
                backwards: false,
                limit: room,
                without_digests: true,
            };
            let records: Vec<LogRecord> = self.w.log_scan(&scan)?.into_iter().collect();
            let cutoffs = age_cutoffs(self.w, self.now)?;
            let full = records.len() == room;
            let mut previous_removed = false;
            for record in records {
                self.record.cursor = record.position;
                if !options.matches(&record.stream, &record.event_type) {
                    previous_removed = false;
                    continue;
                }
                if hidden(&record, &cutoffs) {
                    self.record.counters.removed_by_retention += 1;
                    note_removed(
                        &mut self.record.retention_gaps,
                        record.position,
                        previous_removed,
                    );
                    let excess = self.record.retention_gaps.len().saturating_sub(GAPS_KEPT);
                    self.record.retention_gaps.drain(..excess);
                    previous_removed = true;
                    continue;
                }
                previous_removed = false;
                let entry = PendingDelivery {
                    position: record.position,
                    stream: record.stream.clone(),
                    version: record.version,
                    event_id: record.id.clone(),
                    event_type: record.event_type.clone(),
                    batch: record.batch.clone(),
                    attempt: 0,
                    leased: false,
                    consumer: None,
                    due: self.now,
                    failures: 0,
                    first_failure_at: None,
                    last_failure_at: None,
                    last_error: None,
                    replay: false,
                };
                self.record.in_flight += 1;
                if let Some(delivery) = self.deliver(entry, consumer)? {
                    out.push(delivery);
                }
            }
            if !full {
                self.record.cursor = head;
            }
        }
        Ok(())
    }

    /// The current entry of a token's delivery, or why the token is stale.
    fn current(
        &mut self,
        token: &DeliveryToken,
    ) -> Result<std::result::Result<PendingDelivery, String>> {
        let key = kv::group_key(&token.group, token.position);
        let Some(entry) = kv::get::<PendingDelivery>(self.w, space(token.replay), &key)? else {
            return Ok(Err(format!(
                "no delivery of position {} is outstanding in group '{}' (settled, \
                 dead-lettered, or never delivered)",
                token.position, token.group
            )));
        };
        if entry.attempt != token.attempt {
            return Ok(Err(format!(
                "attempt {} of position {} was superseded by attempt {}",
                token.attempt, token.position, entry.attempt
            )));
        }
        if !entry.leased {
            return Ok(Err(format!(
                "the lease of attempt {} of position {} ended; the event waits for redelivery",
                token.attempt, token.position
            )));
        }
        if entry.due <= self.now {
            return Ok(Err(format!(
                "the lease of attempt {} of position {} expired at {}",
                token.attempt, token.position, entry.due
            )));
        }
        Ok(Ok(entry))
    }

    fn stale(&mut self, reason: String) -> AckOutcome {
        self.record.counters.stale += 1;
        AckOutcome::Stale { reason }
    }

    fn ack(&mut self, token: &DeliveryToken) -> Result<AckOutcome> {
        let entry = match self.current(token)? {
            Ok(entry) => entry,
            Err(reason) => return Ok(self.stale(reason)),
        };
        self.drop_entry(&entry)?;
        if entry.replay {
            let key = kv::group_key(self.group(), entry.position);
            self.w.state_delete(kv::DEAD, &key)?;
            self.record.replaying = self.record.replaying.saturating_sub(1);
            self.record.dead_letters = self.record.dead_letters.saturating_sub(1);
            self.record.counters.replay_acked += 1;
            self.batch(&entry, |c| {
                c.dead_lettered = c.dead_lettered.saturating_sub(1);
                c.acked += 1;
            })?;
        } else {
            self.record.in_flight = self.record.in_flight.saturating_sub(1);
            self.record.counters.acked += 1;
            self.batch(&entry, |c| c.acked += 1)?;
        }
        Ok(AckOutcome::Acked)
    }

    fn nack(&mut self, token: &DeliveryToken, nack: &Nack, error: &str) -> Result<AckOutcome> {
        let mut entry = match self.current(token)? {
            Ok(entry) => entry,
            Err(reason) => return Ok(self.stale(reason)),
        };
        match nack {
            Nack::Retry { after_ms } => {
                self.fail(&mut entry, error.to_owned())?;
                self.record.counters.retried += 1;
                if entry.attempt >= self.record.options.max_deliveries {
                    self.dead_letter(entry, DeadLetterReason::MaxDeliveries, None)?;
                    return Ok(AckOutcome::DeadLettered {
                        reason: DeadLetterReason::MaxDeliveries,
                    });
                }
                self.drop_entry(&entry)?;
                let wait = self
                    .record
                    .options
                    .backoff
                    .delay(entry.failures)
                    .max(Duration::from_millis(after_ms.unwrap_or(0)));
                entry.leased = false;
                entry.due = after(self.now, wait);
                self.put_entry(&entry)?;
                Ok(AckOutcome::Retrying {
                    not_before: entry.due,
                })
            }
            Nack::Park => {
                self.fail(&mut entry, error.to_owned())?;
                self.dead_letter(entry, DeadLetterReason::Parked, Some(error.to_owned()))?;
                Ok(AckOutcome::DeadLettered {
                    reason: DeadLetterReason::Parked,
                })
            }
            Nack::Skip => {
                self.drop_entry(&entry)?;
                self.record.counters.skipped += 1;
                if entry.replay {
                    let key = kv::group_key(self.group(), entry.position);
                    self.w.state_delete(kv::DEAD, &key)?;
                    self.record.replaying = self.record.replaying.saturating_sub(1);
                    self.record.dead_letters = self.record.dead_letters.saturating_sub(1);
                    self.batch(&entry, |c| {
                        c.dead_lettered = c.dead_lettered.saturating_sub(1);
                        c.skipped += 1;
                    })?;
                } else {
                    self.record.in_flight = self.record.in_flight.saturating_sub(1);
                    self.batch(&entry, |c| c.skipped += 1)?;
                }
                Ok(AckOutcome::Skipped)
            }
        }
    }

    fn renew(&mut self, token: &DeliveryToken) -> Result<AckOutcome> {
        let mut entry = match self.current(token)? {
            Ok(entry) => entry,
            Err(reason) => return Ok(self.stale(reason)),
        };
        self.drop_entry(&entry)?;
        entry.due = after(
            self.now,
            Duration::from_millis(self.record.options.lease_ms),
        );
        self.put_entry(&entry)?;
        Ok(AckOutcome::Renewed {
            lease_expires_at: entry.due,
        })
    }

    /// Queues up to `limit` dead letters in `from..=to` for replay; how many.
    fn replay(&mut self, from: u64, to: u64, limit: usize) -> Result<u64> {
        let prefix = format!("{}/", self.record.name);
        let mut after_key = from.checked_sub(1).map(|p| kv::group_key(self.group(), p));
        let mut queued = 0u64;
        loop {
            let page: Vec<(String, DeadLetter)> =
                kv::scan(self.w, kv::DEAD, &prefix, after_key.as_deref(), kv::PAGE)?;
            let full = page.len() == kv::PAGE;
            after_key = page.last().map(|(k, _)| k.clone());
            for (key, mut letter) in page {
                if letter.position > to || queued as usize >= limit {
                    return Ok(queued);
                }
                if letter.replaying {
                    continue;
                }
                letter.replaying = true;
                kv::put(self.w, kv::DEAD, &key, &letter)?;
                let entry = PendingDelivery {
                    position: letter.position,
                    stream: letter.stream,
                    version: letter.version,
                    event_id: letter.event_id,
                    event_type: letter.event_type,
                    batch: letter.batch,
                    attempt: 0,
                    leased: false,
                    consumer: None,
                    due: self.now,
                    failures: 0,
                    first_failure_at: None,
                    last_failure_at: None,
                    last_error: None,
                    replay: true,
                };
                self.put_entry(&entry)?;
                self.record.replaying += 1;
                self.record.counters.replay_queued += 1;
                queued += 1;
            }
            if !full {
                return Ok(queued);
            }
        }
    }

    /// Removes the dead letters in `from..=to` (and their replays); how many.
    fn purge(&mut self, from: u64, to: u64) -> Result<u64> {
        let prefix = format!("{}/", self.record.name);
        let after_key = from.checked_sub(1).map(|p| kv::group_key(self.group(), p));
        let letters: Vec<(String, DeadLetter)> = kv::all::<DeadLetter>(self.w, kv::DEAD, &prefix)?
            .into_iter()
            .filter(|(k, _)| after_key.as_ref().is_none_or(|a| k > a))
            .take_while(|(_, d)| d.position <= to)
            .collect();
        for (key, letter) in &letters {
            self.w.state_delete(kv::DEAD, key)?;
            if letter.replaying {
                if let Some(entry) = kv::get::<PendingDelivery>(self.w, kv::REPLAYS, key)? {
                    self.drop_entry(&entry)?;
                }
                self.record.replaying = self.record.replaying.saturating_sub(1);
            }
        }
        let n = letters.len() as u64;
        self.record.dead_letters = self.record.dead_letters.saturating_sub(n);
        self.record.counters.purged += n;
        Ok(n)
    }
}

impl WriteTx<'_> {
    /// Runs a group operation on the group's record in this transaction.
    fn group_op<R>(&mut self, group: &str, f: impl FnOnce(&mut Op<'_>) -> Result<R>) -> Result<R> {
        let record = self.with_events(|r, _| load(r, group))?;
        let now = self.now();
        self.ev_write(|w| {
            let mut op = Op { w, record, now };
            let result = f(&mut op)?;
            save(op.w, &op.record)?;
            Ok(result)
        })
    }

    /// Creates a consumer group; [`Error::AlreadyExists`] if the name is taken.
    pub fn create_group(&mut self, name: &str, options: GroupOptions) -> Result<GroupStatus> {
        check_group(name)?;
        options.check()?;
        let (exists, head) = self.with_events(|r, _| {
            Ok((
                kv::get::<GroupRecord>(r, kv::GROUPS, name)?.is_some(),
                r.log_head()?,
            ))
        })?;
        if exists {
            return Err(Error::AlreadyExists {
                entity: format!("consumer group '{name}'"),
            });
        }
        let cursor = match options.start {
            StartFrom::Beginning => 0,
            StartFrom::End => head,
            StartFrom::Position(p) => p - 1,
        };
        let record = GroupRecord {
            name: name.to_owned(),
            options,
            created_at: self.now(),
            cursor,
            in_flight: 0,
            dead_letters: 0,
            replaying: 0,
            counters: GroupCounters::default(),
            retention_gaps: Vec::new(),
        };
        self.ev_write(|w| save(w, &record))?;
        self.with_events(|r, _| status_of(r, record))
    }

    /// Changes a group's settings (its filters and start excepted): leases, delivery
    /// limits and backoff apply to deliveries from now on.
    pub fn update_group(&mut self, name: &str, options: GroupOptions) -> Result<GroupStatus> {
        options.check()?;
        let updated = self.group_op(name, |op| {
            let old = &op.record.options;
            if old.stream != options.stream
                || old.stream_prefix != options.stream_prefix
                || old.types != options.types
                || old.start != options.start
            {
                return Err(Error::invalid_input(
                    format!("settings of consumer group '{name}'"),
                    "its stream, prefix, types and start cannot change (create another group)",
                ));
            }
            op.record.options = options;
            Ok(op.record.clone())
        })?;
        self.with_events(|r, _| status_of(r, updated))
    }

    /// Deletes a consumer group with its deliveries, dead letters and batch progress;
    /// whether it existed.
    pub fn delete_group(&mut self, name: &str) -> Result<bool> {
        check_group(name)?;
        let exists =
            self.with_events(|r, _| Ok(kv::get::<GroupRecord>(r, kv::GROUPS, name)?.is_some()))?;
        if !exists {
            return Ok(false);
        }
        let prefix = format!("{name}/");
        self.ev_write(|w| {
            for space in [
                kv::PENDING,
                kv::REPLAYS,
                kv::DUE,
                kv::DEAD,
                kv::BATCH_GROUPS,
            ] {
                kv::delete_all(w, space, &prefix)?;
            }
            w.state_delete(kv::GROUPS, name)?;
            Ok(true)
        })
    }

    /// Hands up to `max` events to `consumer`: deliveries whose lease expired or whose
    /// retry is due first, then dead-letter replays, then new events. Each comes with
    /// a lease of the group's `lease_ms`; an event out of attempts goes to the
    /// dead-letter queue instead.
    pub fn poll(&mut self, group: &str, consumer: &str, max: usize) -> Result<Vec<Delivery>> {
        check_id("consumer id", consumer)?;
        if max == 0 || max > MAX_POLL {
            return Err(Error::invalid_input(
                "poll size",
                format!("{max} is not between 1 and {MAX_POLL}"),
            ));
        }
        self.group_op(group, |op| {
            let mut out = Vec::new();
            op.due_entries(consumer, max, &mut out)?;
            op.new_events(consumer, max, &mut out)?;
            Ok(out)
        })
    }

    /// Acks a delivery: settled for the group. A token whose attempt is no longer
    /// current (its lease expired, a later attempt went out) does nothing and says
    /// why ([`AckOutcome::Stale`]).
    pub fn ack(&mut self, token: &DeliveryToken) -> Result<AckOutcome> {
        self.events.wake = true;
        self.group_op(&token.group, |op| op.ack(token))
    }

    /// Nacks a delivery with the consumer's `error`; fenced like [`WriteTx::ack`].
    pub fn nack(&mut self, token: &DeliveryToken, nack: &Nack, error: &str) -> Result<AckOutcome> {
        self.events.wake = true;
        self.group_op(&token.group, |op| op.nack(token, nack, error))
    }

    /// Extends a delivery's lease by the group's `lease_ms` from now; fenced like
    /// [`WriteTx::ack`].
    pub fn renew(&mut self, token: &DeliveryToken) -> Result<AckOutcome> {
        self.group_op(&token.group, |op| op.renew(token))
    }

    /// Queues up to `limit` of the group's dead letters at positions `from..=to` for
    /// redelivery; how many. Replays go through their own queue: the group's
    /// checkpoint does not move. An acked replay leaves the dead-letter queue; a
    /// failed one returns to it. See [`Store::replay_dead_letters`] for a whole range
    /// in bounded chunks.
    pub fn replay_dead_letters(
        &mut self,
        group: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<u64> {
        if limit == 0 {
            return Err(Error::invalid_input("replay chunk", "must be at least 1"));
        }
        self.events.wake = true;
        self.group_op(group, |op| op.replay(from, to, limit))
    }

    /// Removes the group's dead letters at positions `from..=to`; how many.
    pub fn purge_dead_letters(&mut self, group: &str, from: u64, to: u64) -> Result<u64> {
        self.events.wake = true;
        self.group_op(group, |op| op.purge(from, to))
    }
}

impl Store {
    /// Creates a consumer group in its own transaction; see [`WriteTx::create_group`].
    pub fn create_group(&self, name: &str, options: GroupOptions) -> Result<GroupStatus> {
        self.write(|tx| tx.create_group(name, options))
    }

    /// Changes a group's settings in its own transaction; see [`WriteTx::update_group`].
    pub fn update_group(&self, name: &str, options: GroupOptions) -> Result<GroupStatus> {
        self.write(|tx| tx.update_group(name, options))
    }

    /// Deletes a consumer group in its own transaction; see [`WriteTx::delete_group`].
    pub fn delete_group(&self, name: &str) -> Result<bool> {
        self.write(|tx| tx.delete_group(name))
    }

    /// A consumer of a group, named `id` (shown as the holder of its leases).
    pub fn consumer(&self, group: &str, id: &str) -> Result<Consumer> {
        check_id("consumer id", id)?;
        self.group_status(group)?;
        Ok(Consumer {
            store: self.clone(),
            group: group.to_owned(),
            id: id.to_owned(),
            wait: WaitSettings::default(),
        })
    }

    /// Acks a delivery in its own transaction; see [`WriteTx::ack`].
    pub fn ack(&self, token: &DeliveryToken) -> Result<AckOutcome> {
        self.write(|tx| tx.ack(token))
    }

    /// Nacks a delivery in its own transaction; see [`WriteTx::nack`].
    pub fn nack(&self, token: &DeliveryToken, nack: &Nack, error: &str) -> Result<AckOutcome> {
        self.write(|tx| tx.nack(token, nack, error))
    }

    /// Renews a delivery's lease in its own transaction; see [`WriteTx::renew`].
    pub fn renew(&self, token: &DeliveryToken) -> Result<AckOutcome> {
        self.write(|tx| tx.renew(token))
    }

    /// Queues every dead letter of `from..=to` for replay, `chunk` per transaction
    /// so that memory and transaction size stay bounded however many there are; how
    /// many were queued. A crash between chunks leaves the rest in the dead-letter
    /// queue, untouched.
    pub fn replay_dead_letters(
        &self,
        group: &str,
        from: u64,
        to: u64,
        chunk: usize,
    ) -> Result<u64> {
        let mut total = 0;
        loop {
            let queued = self.write(|tx| tx.replay_dead_letters(group, from, to, chunk))?;
            total += queued;
            if (queued as usize) < chunk {
                return Ok(total);
            }
        }
    }

    /// Removes dead letters in its own transaction; see [`WriteTx::purge_dead_letters`].
    pub fn purge_dead_letters(&self, group: &str, from: u64, to: u64) -> Result<u64> {
        self.write(|tx| tx.purge_dead_letters(group, from, to))
    }
}

/// A member of a consumer group: polls, settles, and waits for work without
/// spinning (see [`WaitSettings`]).
#[derive(Clone, Debug)]
pub struct Consumer {
    store: Store,
    group: String,
    id: String,
    wait: WaitSettings,
}

impl Consumer {
    /// The consumer's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Sets how idle waits poll for other processes' work.
    pub fn with_wait(mut self, wait: WaitSettings) -> Self {
        self.wait = wait;
        self
    }

    /// Up to `max` deliveries now (possibly none); see [`WriteTx::poll`].
    pub fn poll(&self, max: usize) -> Result<Vec<Delivery>> {
        self.store.write(|tx| tx.poll(&self.group, &self.id, max))
    }

    /// Up to `max` deliveries, waiting up to `timeout` for the first: woken at once by
    /// appends of this process, and by other processes' within the wait settings'
    /// poll interval. Only cheap reads run while idle.
    pub fn poll_wait(&self, max: usize, timeout: Duration) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + timeout;
        let hub = self.store.hub();
        let mut interval = self.wait.min_interval;
        loop {
            let generation = hub.generation();
            let deliveries = self.poll(max)?;
            if !deliveries.is_empty() {
                return Ok(deliveries);
            }
            // Idle: read (never write) until something is due or new events arrive.
            loop {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(Vec::new());
                }
                let (due, behind) = self.store.with_events(|r, _| {
                    let record = load(r, &self.group)?;
                    Ok((next_due(r, &self.group)?, r.log_head()? > record.cursor))
                })?;
                let due_in = due.map(|t| {
                    let micros = t.as_micros().saturating_sub(Timestamp::now().as_micros());
                    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
                });
                if behind || due_in.is_some_and(|d| d.is_zero()) {
                    break;
                }
                let mut wait = interval.min(deadline - now);
                if let Some(d) = due_in {
                    wait = wait.min(d);
                }
                if hub.wait(generation, wait) {
                    interval = self.wait.min_interval;
                    break;
                }
                interval = (interval * 2).min(self.wait.max_interval);
            }
        }
    }

    /// Acks a delivery; see [`WriteTx::ack`].
    pub fn ack(&self, delivery: &Delivery) -> Result<AckOutcome> {
        self.store.ack(&delivery.token)
    }

    /// Nacks a delivery; see [`WriteTx::nack`].
    pub fn nack(&self, delivery: &Delivery, nack: &Nack, error: &str) -> Result<AckOutcome> {
        self.store.nack(&delivery.token, nack, error)
    }

    /// Renews a delivery's lease; see [`WriteTx::renew`].
    pub fn renew(&self, delivery: &Delivery) -> Result<AckOutcome> {
        self.store.renew(&delivery.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for token in [
            DeliveryToken {
                group: "billing.v2".into(),
                position: 17,
                attempt: 3,
                replay: false,
            },
            DeliveryToken {
                group: "g".into(),
                position: 1,
                attempt: 1,
                replay: true,
            },
        ] {
            assert_eq!(token.to_string().parse::<DeliveryToken>().unwrap(), token);
        }
        assert!("g/x/1".parse::<DeliveryToken>().is_err());
        assert!("g/1".parse::<DeliveryToken>().is_err());
        assert!("bad group/1/1".parse::<DeliveryToken>().is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_range() {
        let b = Backoff {
            initial_ms: 100,
            max_ms: 1000,
            jitter: false,
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(3), Duration::from_millis(400));
        assert_eq!(b.delay(30), Duration::from_millis(1000));
        let j = Backoff { jitter: true, ..b };
        for attempt in 1..8 {
            let d = j.delay(attempt);
            let full = b.delay(attempt);
            assert!(d >= full / 2 && d <= full, "{d:?} vs {full:?}");
        }
    }

    #[test]
    fn due_keys_parse_back() {
        let entry = PendingDelivery {
            position: 42,
            stream: "s".into(),
            version: 1,
            event_id: "e".into(),
            event_type: "t".into(),
            batch: None,
            attempt: 1,
            leased: true,
            consumer: None,
            due: Timestamp::from_micros(1_700_000_000_000_000).unwrap(),
            failures: 0,
            first_failure_at: None,
            last_failure_at: None,
            last_error: None,
            replay: true,
        };
        let key = due_key("g", &entry);
        assert_eq!(parse_due(&key), Some((entry.due, true, 42)));
        assert_eq!(kv::position_of(&key), Some(42));
    }
}
