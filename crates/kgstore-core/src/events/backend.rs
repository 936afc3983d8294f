//! What a backend does for the event store: an append-only log and a little keyed
//! state. Every rule (expected versions, idempotency, consumer groups, dead letters,
//! schemas, retention, the change feed) is kgstore-core's, written once above these.
//!
//! A backend's read and write transactions hand these out through
//! [`ReadTxn::events`](crate::ReadTxn::events) and
//! [`WriteTxn::events_mut`](crate::WriteTxn::events_mut); one that keeps no events
//! leaves those at their defaults and the store answers
//! [`Error::Unsupported`](crate::Error::Unsupported) naming the backend.
//!
//! **The ordering contract.** The store assigns positions inside the write
//! transaction, as `log_head() + 1, + 2, …`, and a backend must make them visible in
//! that order: a reader that sees position N+1 must also see N. Backends with one
//! writer at a time whose commits become visible atomically (all three built-in
//! ones) meet it by holding the writer lock from `begin_write` to the end of the
//! commit: the head the store reads is then the latest committed one, no other
//! transaction can take the next positions, and a commit shows all of its events at
//! once, after everything committed before it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Result;
use crate::events::model::EventMetadata;
use crate::timestamp::Timestamp;

/// One entry of the log, as a backend stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRecord {
    /// Global position: contiguous from 1.
    pub position: u64,
    /// The stream.
    pub stream: String,
    /// The version within the stream: contiguous from 1.
    pub version: u64,
    /// The event id, unique in the log.
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload (`null` once removed).
    pub data: Value,
    /// The metadata (empty once removed).
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// When its transaction started.
    pub recorded_at: Timestamp,
    /// The position of the first event of its commit.
    pub commit: u64,
    /// Its batch, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// SHA-256 (hex) of what the event was appended with, to tell a retry from a
    /// different event with the same id, also after its payload was removed.
    pub digest: String,
    /// Whether retention removed its payload. Its identity stays, so positions stay
    /// contiguous, readers are told what was removed, and retries stay idempotent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

/// An event being appended, as the store hands it to
/// [`EventLogWrite::log_append_new`]: borrowed from the append (nothing is copied
/// per event on the way to the backend), with the store's position, version,
/// commit and digest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NewRecord<'a> {
    /// Global position: contiguous from 1.
    pub position: u64,
    /// The stream.
    pub stream: &'a str,
    /// The version within the stream: contiguous from 1.
    pub version: u64,
    /// The event id, unique in the log.
    pub id: &'a str,
    /// The event type.
    pub event_type: &'a str,
    /// The payload.
    pub data: &'a Value,
    /// The metadata ([`LogRecord::metadata`] is its [`EventMetadata::to_map`]).
    pub metadata: &'a EventMetadata,
    /// `data` and `metadata` as the compact JSON text the store made of them once
    /// (for the digest and the size limits), for a backend that stores JSON text;
    /// `None` when that text is not what `serde_json::to_string` would give for the
    /// values (serde_json built with `preserve_order`: the store's text has its keys
    /// sorted), where a backend serialises the values itself.
    pub json: Option<RecordJson<'a>>,
    /// When its transaction started.
    pub recorded_at: Timestamp,
    /// The position of the first event of its commit.
    pub commit: u64,
    /// Its batch, if any.
    pub batch: Option<&'a str>,
    /// [`LogRecord::digest`].
    pub digest: &'a str,
    /// The same digest as its 32 bytes, for a backend that stores those.
    pub digest_bytes: [u8; 32],
}

impl NewRecord<'_> {
    /// The record as a backend keeps it (a copy of every part).
    pub fn to_record(&self) -> LogRecord {
        LogRecord {
            position: self.position,
            stream: self.stream.to_owned(),
            version: self.version,
            id: self.id.to_owned(),
            event_type: self.event_type.to_owned(),
            data: self.data.clone(),
            metadata: self.metadata.to_map(),
            recorded_at: self.recorded_at,
            commit: self.commit,
            batch: self.batch.map(str::to_owned),
            digest: self.digest.to_owned(),
            removed: false,
        }
    }
}

/// A new record's `data` and `metadata` as compact JSON text, as
/// `serde_json::to_string` gives it (see [`NewRecord::json`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordJson<'a> {
    /// The record's `data`.
    pub data: &'a str,
    /// The record's `metadata` (an object).
    pub metadata: &'a str,
}

/// A range of the log to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogScan<'a> {
    /// Only this stream; `from` is then a stream version instead of a position.
    pub stream: Option<&'a str>,
    /// Only streams whose names start with this.
    pub stream_prefix: Option<&'a str>,
    /// Only these event types (any if empty).
    pub types: &'a [String],
    /// Where to start, inclusive: forwards the first key `>= from`, backwards the
    /// first key `<= from`.
    pub from: u64,
    /// Newest first.
    pub backwards: bool,
    /// At most this many records (removed ones included).
    pub limit: usize,
    /// The caller does not need the records' digests (it returns events to readers,
    /// who never see them): a backend may leave `digest` empty instead of reading it.
    /// Idempotency checks and exports read them (`false`, the default).
    pub without_digests: bool,
}

impl LogScan<'_> {
    /// Whether a record passes the stream, prefix and type filters (not the range).
    pub fn matches(&self, record: &LogRecord) -> bool {
        self.stream.is_none_or(|s| s == record.stream)
            && self
                .stream_prefix
                .is_none_or(|p| record.stream.starts_with(p))
            && (self.types.is_empty() || self.types.contains(&record.event_type))
    }

    /// The record's key in this scan: its version for a stream scan, else its position.
    pub fn key(&self, record: &LogRecord) -> u64 {
        if self.stream.is_some() {
            record.version
        } else {
            record.position
        }
    }
}

/// Which events of a stream [`EventLogWrite::log_remove`] removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveWhere {
    /// Every event of a version below this one.
    BelowVersion(u64),
    /// Every event recorded before this time.
    RecordedBefore(Timestamp),
}

/// Reads of the event log and the event store's keyed state, on one snapshot.
pub trait EventLogRead {
    /// The last position assigned (0 for an empty log). Never goes down: removed
    /// events keep their positions.
    fn log_head(&self) -> Result<u64>;

    /// Up to `scan.limit` records in key order (removed ones too, flagged).
    fn log_scan(&self, scan: &LogScan<'_>) -> Result<Vec<LogRecord>>;

    /// The records with these event ids, in the order asked (`None` where there is none).
    fn log_find_ids(&self, ids: &[&str]) -> Result<Vec<Option<LogRecord>>>;

    /// The value under `key` in `space`.
    fn state_get(&self, space: &str, key: &str) -> Result<Option<Value>>;

    /// Up to `limit` entries of `space` whose keys start with `prefix` and sort after
    /// `after` (byte order), in key order.
    fn state_scan(
        &self,
        space: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>>;
}

/// Writes to the event log and the keyed state, inside the write transaction.
pub trait EventLogWrite: EventLogRead {
    /// Appends records whose positions continue the log contiguously (the store
    /// assigned them from [`EventLogRead::log_head`]).
    fn log_append(&mut self, records: &[LogRecord]) -> Result<()>;

    /// Appends new events whose positions continue the log contiguously, as the
    /// store's appends hand them over (borrowed, with their JSON text). The default
    /// makes [`LogRecord`]s of them for [`log_append`](Self::log_append); a backend
    /// may store them directly.
    fn log_append_new(&mut self, records: &[NewRecord<'_>]) -> Result<()> {
        let owned: Vec<LogRecord> = records.iter().map(NewRecord::to_record).collect();
        self.log_append(&owned)
    }

    /// [`log_append_new`](Self::log_append_new), unless one of the records' ids is
    /// already in the log: then nothing is written and the answer is `false` (the
    /// store then looks the ids up to tell a retry from a conflict). The store's
    /// appends call this instead of looking every id up first. The default does
    /// that lookup ([`EventLogRead::log_find_ids`]) and then appends; a backend
    /// whose insert refuses a known id anyway (SQLite's `UNIQUE(id)`) may let the
    /// insert find out and undo the records it had written.
    fn log_append_new_unless_known(&mut self, records: &[NewRecord<'_>]) -> Result<bool> {
        let ids: Vec<&str> = records.iter().map(|r| r.id).collect();
        if self.log_find_ids(&ids)?.iter().any(Option::is_some) {
            return Ok(false);
        }
        self.log_append_new(records)?;
        Ok(true)
    }

    /// Removes the payload and metadata of `stream`'s events matching `which` (they
    /// stay as removed records); how many were removed now.
    fn log_remove(&mut self, stream: &str, which: RemoveWhere) -> Result<u64>;

    /// Removes every record and all keyed state (a restore replacing a store's content).
    fn log_clear(&mut self) -> Result<()>;

    /// Sets the value under `key` in `space`.
    fn state_put(&mut self, space: &str, key: &str, value: &Value) -> Result<()>;

    /// Removes `key` from `space`; whether it was there.
    fn state_delete(&mut self, space: &str, key: &str) -> Result<bool>;
}
