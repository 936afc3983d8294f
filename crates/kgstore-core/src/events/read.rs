//! Reading events: a stream or the whole log, forwards or backwards, filtered, a
//! page at a time; written once for the store, a read snapshot and a write
//! transaction ([`EventRead`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::events::backend::{EventLogRead, LogRecord, LogScan};
use crate::events::model::{
    EventMetadata, RecordedEvent, StreamInfo, check_event_type, check_id, check_stream,
};
use crate::events::{batch, group, kv, schema};
use crate::timestamp::Timestamp;

/// Most events one read returns.
pub const MAX_READ_LIMIT: usize = 10_000;

/// How to read: where from, which way, how many, which events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadOptions {
    /// The first position (reading all) or version (reading a stream) to return,
    /// inclusive; `None` is the start (forwards) or the end (backwards).
    pub from: Option<u64>,
    /// Newest first.
    pub backwards: bool,
    /// At most this many events (1 to [`MAX_READ_LIMIT`]).
    pub limit: usize,
    /// Only events of these types (any if empty).
    pub types: Vec<String>,
    /// Only events of streams whose names start with this (reading all).
    pub stream_prefix: Option<String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            from: None,
            backwards: false,
            limit: 100,
            types: Vec::new(),
            stream_prefix: None,
        }
    }
}

impl ReadOptions {
    /// Forwards from the start, `limit` at a time.
    pub fn forwards(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Backwards from the end, `limit` at a time.
    pub fn backwards(limit: usize) -> Self {
        Self {
            limit,
            backwards: true,
            ..Self::default()
        }
    }

    /// Starts at this position or version (inclusive).
    pub fn from(mut self, from: u64) -> Self {
        self.from = Some(from);
        self
    }

    /// Only events of this type (repeat for several).
    pub fn of_type(mut self, event_type: impl Into<String>) -> Self {
        self.types.push(event_type.into());
        self
    }

    /// Only streams whose names start with `prefix`.
    pub fn with_stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream_prefix = Some(prefix.into());
        self
    }

    /// Refuses a limit out of range and malformed filters.
    pub fn check(&self) -> Result<()> {
        if self.limit == 0 || self.limit > MAX_READ_LIMIT {
            return Err(Error::invalid_input(
                "read limit",
                format!("{} is not between 1 and {MAX_READ_LIMIT}", self.limit),
            ));
        }
        for t in &self.types {
            check_event_type(t)?;
        }
        if let Some(prefix) = &self.stream_prefix {
            check_stream(prefix)?;
        }
        Ok(())
    }
}

/// Consecutive events of one page that retention removed: readers are told, never
/// silently moved past them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedRange {
    /// The first removed key (position, or version in a stream read).
    pub first: u64,
    /// The last one.
    pub last: u64,
    /// How many events (fewer than `last - first + 1` when the read was filtered).
    pub count: u64,
}

/// Adds `key` to the runs of removed keys, extending the last run if it is adjacent
/// in the scan.
pub(crate) fn note_removed(runs: &mut Vec<RemovedRange>, key: u64, adjacent: bool) {
    match runs.last_mut() {
        Some(run) if adjacent => {
            run.first = run.first.min(key);
            run.last = run.last.max(key);
            run.count += 1;
        }
        _ => runs.push(RemovedRange {
            first: key,
            last: key,
            count: 1,
        }),
    }
}

/// One page of events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// The events, in the order read.
    pub events: Vec<RecordedEvent>,
    /// Events of the range read that retention removed (or hides by age).
    pub removed: Vec<RemovedRange>,
    /// Where the next page starts (pass it as [`ReadOptions::from`]). Forwards at the
    /// end, it is one past the last position or version there is.
    pub next: u64,
    /// Whether the read reached the end (the start, backwards): a later read from
    /// `next` finds only what is appended meanwhile.
    pub at_end: bool,
    /// The last position of the log (reading all) or the stream's version.
    pub head: u64,
}

/// The age cutoff of every stream that has a maximum age.
pub(crate) fn age_cutoffs(
    r: &dyn EventLogRead,
    now: Timestamp,
) -> Result<BTreeMap<String, Timestamp>> {
    let aged: Vec<(String, u64)> = kv::all(r, kv::AGED, "")?;
    Ok(aged
        .into_iter()
        .map(|(stream, secs)| {
            let micros = i64::try_from(secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
            let cutoff = Timestamp::from_micros(now.as_micros().saturating_sub(micros))
                .unwrap_or(Timestamp::EPOCH);
            (stream, cutoff)
        })
        .collect())
}

/// Whether a record is hidden from readers: removed, or older than its stream keeps.
pub(crate) fn hidden(record: &LogRecord, cutoffs: &BTreeMap<String, Timestamp>) -> bool {
    record.removed
        || cutoffs
            .get(&record.stream)
            .is_some_and(|cutoff| record.recorded_at < *cutoff)
}

/// The user's form of a stored record.
pub(crate) fn recorded(record: LogRecord) -> RecordedEvent {
    RecordedEvent {
        position: record.position,
        stream: record.stream,
        version: record.version,
        id: record.id,
        event_type: record.event_type,
        data: record.data,
        metadata: EventMetadata::from_map(record.metadata),
        recorded_at: record.recorded_at,
        commit: record.commit,
        batch: record.batch,
    }
}

/// A stream's information, or `None` if it never had an event.
pub(crate) fn stream_info(r: &dyn EventLogRead, stream: &str) -> Result<Option<StreamInfo>> {
    kv::get(r, kv::STREAMS, stream)
}

/// One page of a stream (`stream`) or of the whole log.
pub(crate) fn page(
    r: &dyn EventLogRead,
    now: Timestamp,
    stream: Option<&str>,
    options: &ReadOptions,
) -> Result<EventPage> {
    options.check()?;
    let head = match stream {
        Some(name) => {
            check_stream(name)?;
            match stream_info(r, name)? {
                Some(info) if info.deleted => {
                    return Err(Error::StreamDeleted {
                        stream: name.to_owned(),
                    });
                }
                Some(info) => info.version,
                None => 0,
            }
        }
        None => r.log_head()?,
    };
    let from = options
        .from
        .unwrap_or(if options.backwards { head } else { 1 });
    let scan = LogScan {
        stream,
        stream_prefix: options.stream_prefix.as_deref(),
        types: &options.types,
        from,
        backwards: options.backwards,
        limit: options.limit,
        without_digests: true,
    };
    let records = r.log_scan(&scan)?;
    let cutoffs = age_cutoffs(r, now)?;
    let scanned = records.len();
    let last = records.last().map(|rec| scan.key(rec));
    let mut events = Vec::with_capacity(scanned);
    let mut removed = Vec::new();
    let mut previous_removed = false;
    for record in records {
        if hidden(&record, &cutoffs) {
            note_removed(&mut removed, scan.key(&record), previous_removed);
            previous_removed = true;
        } else {
            previous_removed = false;
            events.push(recorded(record));
        }
    }
    let at_end = scanned < options.limit;
    let next = match (options.backwards, last) {
        (false, Some(last)) if !at_end => last + 1,
        (false, last) => (head + 1).max(last.map_or(from, |l| l + 1)),
        (true, Some(last)) => last.saturating_sub(1),
        (true, None) => 0,
    };
    Ok(EventPage {
        events,
        removed,
        next,
        at_end: at_end || (options.backwards && next == 0),
        head,
    })
}

/// The read side of the event store, shared by [`Store`](crate::Store) (each call on
/// a fresh snapshot), [`ReadTx`](crate::ReadTx) and [`WriteTx`](crate::WriteTx)
/// (seeing its own appends).
///
/// Bring it into scope with `use kgstore_core::events::EventRead;`.
pub trait EventRead {
    /// Runs `f` on the underlying event log, with the time reads are judged at;
    /// [`Error::Unsupported`] if the backend keeps no events.
    #[doc(hidden)]
    fn with_events<R>(
        &self,
        f: impl FnOnce(&dyn EventLogRead, Timestamp) -> Result<R>,
    ) -> Result<R>;

    /// One page of a stream's events, by version; [`Error::StreamDeleted`] for a
    /// deleted stream. A stream that never had an event reads as empty.
    fn read_stream(&self, stream: &str, options: &ReadOptions) -> Result<EventPage> {
        self.with_events(|r, now| page(r, now, Some(stream), options))
    }

    /// One page of the whole log, by position.
    fn read_all(&self, options: &ReadOptions) -> Result<EventPage> {
        self.with_events(|r, now| page(r, now, None, options))
    }

    /// The event at a position, unless it does not exist or was removed.
    fn event_at(&self, position: u64) -> Result<Option<RecordedEvent>> {
        self.with_events(|r, now| {
            let scan = LogScan {
                from: position,
                limit: 1,
                without_digests: true,
                ..LogScan::default()
            };
            let cutoffs = age_cutoffs(r, now)?;
            Ok(r.log_scan(&scan)?
                .into_iter()
                .find(|rec| rec.position == position && !hidden(rec, &cutoffs))
                .map(recorded))
        })
    }

    /// The event with this id, unless there is none or it was removed.
    fn event_by_id(&self, id: &str) -> Result<Option<RecordedEvent>> {
        check_id("event id", id)?;
        self.with_events(|r, now| {
            let cutoffs = age_cutoffs(r, now)?;
            Ok(r.log_find_ids(&[id])?
                .into_iter()
                .flatten()
                .find(|rec| !hidden(rec, &cutoffs))
                .map(recorded))
        })
    }

    /// The last position of the log (0 if it is empty).
    fn last_position(&self) -> Result<u64> {
        self.with_events(|r, _| r.log_head())
    }

    /// What the store knows about a stream, or `None` if it never had an event.
    fn stream_info(&self, stream: &str) -> Result<Option<StreamInfo>> {
        check_stream(stream)?;
        self.with_events(|r, _| stream_info(r, stream))
    }

    /// Up to `limit` streams whose names start with `prefix` and sort after `after`, by name.
    fn list_streams(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamInfo>> {
        if limit == 0 || limit > MAX_READ_LIMIT {
            return Err(Error::invalid_input(
                "stream listing limit",
                format!("{limit} is not between 1 and {MAX_READ_LIMIT}"),
            ));
        }
        self.with_events(|r, _| {
            Ok(
                kv::scan::<StreamInfo>(r, kv::STREAMS, prefix, after, limit)?
                    .into_iter()
                    .map(|(_, info)| info)
                    .collect(),
            )
        })
    }

    /// A consumer group's configuration, position and counters;
    /// [`Error::NotFound`] for an unknown group.
    fn group_status(&self, name: &str) -> Result<group::GroupStatus> {
        self.with_events(|r, _| group::status(r, name))
    }

    /// Every consumer group, by name.
    fn list_groups(&self) -> Result<Vec<group::GroupStatus>> {
        self.with_events(group::list)
    }

    /// Up to `limit` dead letters of a group after position `after`, by position.
    fn dead_letters(
        &self,
        group: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<group::DeadLetter>> {
        self.with_events(|r, _| group::dead_letters(r, group, after, limit))
    }

    /// The events of a group delivered and not yet settled, or waiting for a retry, by position.
    fn pending_deliveries(&self, group: &str) -> Result<Vec<group::PendingDelivery>> {
        self.with_events(|r, _| group::pending(r, group))
    }

    /// A batch's progress in every consumer group; [`Error::NotFound`] for an unknown batch.
    fn batch_status(&self, batch: &str) -> Result<batch::BatchStatus> {
        self.with_events(|r, _| batch::status(r, batch))
    }

    /// The schema versions registered for an event type, if any.
    fn event_schema(&self, event_type: &str) -> Result<Option<schema::EventSchema>> {
        check_event_type(event_type)?;
        self.with_events(|r, _| schema::get(r, event_type))
    }

    /// Every event type with a schema, by type.
    fn list_event_schemas(&self) -> Result<Vec<schema::EventSchema>> {
        self.with_events(|r, _| schema::list(r))
    }

    /// Whether the change feed is on.
    fn change_feed_enabled(&self) -> Result<bool> {
        self.with_events(|r, _| crate::events::changefeed::enabled(r))
    }
}
