//! The event store's vocabulary: new and recorded events, expected versions,
//! stream information, and the rules names and payloads follow.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::timestamp::Timestamp;
use crate::validate;

/// Longest stream name, in bytes of UTF-8.
pub const MAX_STREAM_BYTES: usize = 256;
/// Longest event id, batch id or consumer id, in bytes of UTF-8.
pub const MAX_ID_BYTES: usize = 128;
/// Longest event type or consumer-group name, in bytes.
pub const MAX_TYPE_BYTES: usize = 128;
/// Largest event: its data and metadata as compact JSON, in bytes.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// Most events in one append (all its streams together).
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;
/// Largest append: all its events' data and metadata as compact JSON, in bytes.
pub const MAX_APPEND_BYTES: usize = 64 << 20;
/// Stream names starting with this character belong to kgstore (`$changes`).
pub const SYSTEM_PREFIX: char = '$';
/// The stream the change feed appends to.
pub const CHANGES_STREAM: &str = "$changes";

/// An event to append.
///
/// ```
/// use kgstore_core::events::NewEvent;
/// use serde_json::json;
///
/// let event = NewEvent::new("order.placed", json!({"order": 17, "total": 42.5}))
///     .with_id("order-17-placed")
///     .with_correlation_id("checkout-9");
/// assert_eq!(event.metadata.correlation_id.as_deref(), Some("checkout-9"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// The event's id: what makes a retried append idempotent. The store makes a
    /// random one when none is given (such an append cannot be retried safely).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The event type: a letter, then letters, digits, `_`, `.`, `:` or `-`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload: any JSON value.
    pub data: Value,
    /// Correlation and causation ids and any further metadata.
    #[serde(default)]
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// An event of `event_type` carrying `data`.
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        Self {
            id: None,
            event_type: event_type.into(),
            data,
            metadata: EventMetadata::default(),
        }
    }

    /// Sets the event's id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.metadata.correlation_id = Some(id.into());
        self
    }

    /// Sets the causation id.
    pub fn with_causation_id(mut self, id: impl Into<String>) -> Self {
        self.metadata.causation_id = Some(id.into());
        self
    }

    /// Adds a metadata field.
    pub fn with_metadata(mut self, key: impl Into<String>, value: Value) -> Self {
        self.metadata.extra.insert(key.into(), value);
        self
    }
}

/// An event's metadata. The store adds the time (`recorded_at` of the recorded event).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Ties together the events of one conversation or process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The id of the event or command that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Any further fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl EventMetadata {
    /// The metadata as one JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        self.clone().into_map()
    }

    /// The metadata as one JSON object, without copying it.
    pub fn into_map(self) -> Map<String, Value> {
        let mut map = self.extra;
        if let Some(id) = self.correlation_id {
            map.insert("correlation_id".into(), Value::String(id));
        }
        if let Some(id) = self.causation_id {
            map.insert("causation_id".into(), Value::String(id));
        }
        map
    }

    /// Metadata from a JSON object (as [`EventMetadata::to_map`] writes it).
    pub fn from_map(mut map: Map<String, Value>) -> Self {
        let mut take = |key: &str| match map.remove(key) {
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                // Not a string: kept as an ordinary field rather than lost.
                map.insert(format!("{key}_value"), other);
                None
            }
            None => None,
        };
        let correlation_id = take("correlation_id");
        let causation_id = take("causation_id");
        Self {
            correlation_id,
            causation_id,
            extra: map,
        }
    }
}

/// An event as stored: where it is in the global log and in its stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedEvent {
    /// Its place in the global log: 1 for the first event ever, contiguous, in commit order.
    pub position: u64,
    /// The stream it belongs to.
    pub stream: String,
    /// Its place in its stream: 1 for the stream's first event.
    pub version: u64,
    /// Its id.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its payload.
    pub data: Value,
    /// Its metadata.
    #[serde(default)]
    pub metadata: EventMetadata,
    /// When the transaction that appended it started (the store's clock).
    pub recorded_at: Timestamp,
    /// The position of the first event its transaction appended: the events of one
    /// commit share it.
    pub commit: u64,
    /// The batch it was appended under, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

/// What an append expects of a stream's current version; a mismatch is
/// [`Error::WrongExpectedVersion`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedVersion {
    /// No expectation.
    #[default]
    Any,
    /// The stream has never had an event.
    NoStream,
    /// The stream has at least one event.
    StreamExists,
    /// The stream's last event has exactly this version (`Exact(0)` is `NoStream`).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `version` meets the expectation.
    pub fn accepts(self, version: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => version == 0,
            Self::StreamExists => version > 0,
            Self::Exact(n) => version == n,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("none"),
            Self::StreamExists => f.write_str("exists"),
            Self::Exact(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for ExpectedVersion {
    type Err = Error;

    /// `any`, `none` (or `no_stream`), `exists` (or `stream_exists`), or a version number.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "any" => Ok(Self::Any),
            "none" | "no_stream" => Ok(Self::NoStream),
            "exists" | "stream_exists" => Ok(Self::StreamExists),
            n => n.parse().map(Self::Exact).map_err(|_| {
                Error::invalid_input(
                    format!("expected version '{}'", validate::shorten(s)),
                    "expected any, none, exists or a version number",
                )
            }),
        }
    }
}

/// One stream's part of an atomic append.
#[derive(Clone, Debug, PartialEq)]
pub struct Append {
    /// The stream.
    pub stream: String,
    /// What the stream's version must be.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

impl Append {
    /// Events for one stream.
    pub fn new(
        stream: impl Into<String>,
        expected: ExpectedVersion,
        events: impl IntoIterator<Item = NewEvent>,
    ) -> Self {
        Self {
            stream: stream.into(),
            expected,
            events: events.into_iter().collect(),
        }
    }
}

/// Options of an append.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendOptions {
    /// The batch the events belong to (see [`BatchStatus`](crate::events::BatchStatus)).
    pub batch: Option<String>,
}

/// What an append did to one stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAppended {
    /// The stream.
    pub stream: String,
    /// The version of the first event appended.
    pub first_version: u64,
    /// The version of the last one: the stream's version after the append.
    pub last_version: u64,
    /// The global position of the first event appended.
    pub first_position: u64,
    /// The global position of the last one.
    pub last_position: u64,
}

/// What an append did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// Per stream, in the order given.
    pub streams: Vec<StreamAppended>,
    /// Every event's position, in the order given.
    pub positions: Vec<u64>,
    /// The commit the events belong to (see [`RecordedEvent::commit`]).
    pub commit: u64,
    /// Whether this was a retry of an earlier append: nothing was written, and the
    /// positions are the original ones.
    pub duplicate: bool,
}

/// How long a stream keeps its events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Events older than this many seconds are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_secs: Option<u64>,
    /// Only the newest this many events are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
    /// Events of versions below this one are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate_before: Option<u64>,
}

impl Retention {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.max_age_secs.is_some() || self.max_count.is_some() || self.truncate_before.is_some()
    }

    /// The maximum age as a duration.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age_secs.map(Duration::from_secs)
    }

    /// The lowest version kept by the count and truncation limits, for a stream at `version`.
    pub fn keep_from_version(&self, version: u64) -> u64 {
        let by_count = self
            .max_count
            .map_or(0, |count| version.saturating_sub(count).saturating_add(1));
        by_count.max(self.truncate_before.unwrap_or(0))
    }

    /// The oldest time kept by the age limit, at `now`.
    pub fn keep_since(&self, now: Timestamp) -> Option<Timestamp> {
        let secs = self.max_age_secs?;
        let micros = i64::try_from(secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
        Some(
            Timestamp::from_micros(now.as_micros().saturating_sub(micros))
                .unwrap_or(Timestamp::EPOCH),
        )
    }
}

/// What the store knows about a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamInfo {
    /// The stream's name.
    pub stream: String,
    /// The version of its last event (0: none yet).
    pub version: u64,
    /// The position of its last event.
    pub last_position: u64,
    /// When its first event was appended.
    pub created_at: Timestamp,
    /// When its last event was appended.
    pub updated_at: Timestamp,
    /// Whether it was deleted (a tombstone: it can be neither read nor appended to again).
    #[serde(default)]
    pub deleted: bool,
    /// Its retention limits.
    #[serde(default)]
    pub retention: Retention,
    /// Versions below this one were removed by retention or truncation.
    #[serde(default)]
    pub removed_before: u64,
}

// ----- name rules -----

fn rule(what: impl FnOnce() -> String, outcome: std::result::Result<(), String>) -> Result<()> {
    outcome.map_err(|reason| Error::invalid_input(what(), reason))
}

fn bounded(value: &str, max: usize) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > max {
        return Err(format!(
            "is {} bytes long; at most {max} are allowed",
            value.len()
        ));
    }
    crate::validate::no_control_characters(value)
}

/// A stream name: 1–256 bytes of UTF-8 without control characters. Names starting
/// with `$` belong to kgstore and are refused for appends by applications. Any other
/// text is allowed (`../x`, `CON`, `a/b`, spaces, any script): stream names are data,
/// never file names, on every backend.
pub fn check_stream(stream: &str) -> Result<()> {
    rule(
        || format!("stream name '{}'", validate::shorten(stream)),
        bounded(stream, MAX_STREAM_BYTES),
    )
}

/// A stream an application may append to: [`check_stream`], and no leading `$`.
pub fn check_user_stream(stream: &str) -> Result<()> {
    check_stream(stream)?;
    if stream.starts_with(SYSTEM_PREFIX) {
        return Err(Error::invalid_input(
            format!("stream name '{}'", validate::shorten(stream)),
            "names starting with '$' are reserved for kgstore's own streams",
        ));
    }
    Ok(())
}

/// An event id, batch id or consumer id: 1–128 bytes without control characters.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    rule(
        || format!("{what} '{}'", validate::shorten(id)),
        bounded(id, MAX_ID_BYTES),
    )
}

fn token(value: &str, first: fn(char) -> bool) -> std::result::Result<(), String> {
    let mut chars = value.chars();
    match chars.next() {
        None => return Err("must not be empty".into()),
        Some(c) if !first(c) => return Err(format!("must not start with {c:?}")),
        Some(_) => {}
    }
    if let Some(c) =
        chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
    {
        return Err(format!(
            "may hold only ASCII letters, digits, '_', '.', ':' and '-', not {c:?}"
        ));
    }
    if value.len() > MAX_TYPE_BYTES {
        return Err(format!(
            "is {} bytes long; at most {MAX_TYPE_BYTES} are allowed",
            value.len()
        ));
    }
    Ok(())
}

/// An event type: an ASCII letter, then ASCII letters, digits, `_`, `.`, `:` or `-`,
/// at most 128 bytes (`order.placed`, `OrderPlaced`, `node.created`).
pub fn check_event_type(event_type: &str) -> Result<()> {
    rule(
        || format!("event type '{}'", validate::shorten(event_type)),
        token(event_type, |c| c.is_ascii_alphabetic()),
    )
}

/// A consumer-group name: an ASCII letter or digit, then ASCII letters, digits,
/// `_`, `.`, `:` or `-`, at most 128 bytes.
pub fn check_group(group: &str) -> Result<()> {
    rule(
        || format!("consumer group name '{}'", validate::shorten(group)),
        token(group, |c| c.is_ascii_alphanumeric()),
    )
}

/// A random event id in the form of a UUID (version 4).
pub fn random_id() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_versions_parse_and_accept() {
        assert_eq!(
            "any".parse::<ExpectedVersion>().unwrap(),
            ExpectedVersion::Any
        );
        assert_eq!(
            "none".parse::<ExpectedVersion>().unwrap(),
            ExpectedVersion::NoStream
        );
        assert_eq!(
            "7".parse::<ExpectedVersion>().unwrap(),
            ExpectedVersion::Exact(7)
        );
        assert!("-1".parse::<ExpectedVersion>().is_err());
        assert!(ExpectedVersion::NoStream.accepts(0));
        assert!(!ExpectedVersion::StreamExists.accepts(0));
        assert!(ExpectedVersion::Exact(0).accepts(0));
    }

    #[test]
    fn random_ids_look_like_uuids_and_differ() {
        let a = random_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, random_id());
    }

    #[test]
    fn ids_with_control_characters_are_refused_and_others_kept() {
        for bad in ["a\u{0}b", "tab\t", "del\u{7f}", "c1\u{85}x", "\u{9f}"] {
            assert!(check_id("id", bad).is_err(), "{bad:?}");
        }
        // 0xC2 also leads printable characters (U+00A0–U+00BF).
        for good in [
            "plain-id",
            "caf\u{e9}",
            "nbsp\u{a0}",
            "\u{bf}que?",
            "\u{1F600}",
        ] {
            assert!(check_id("id", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn retention_keeps_the_newest() {
        let r = Retention {
            max_count: Some(3),
            ..Retention::default()
        };
        assert_eq!(r.keep_from_version(10), 8);
        assert_eq!(r.keep_from_version(2), 1);
        let r = Retention {
            max_count: Some(3),
            truncate_before: Some(9),
            ..Retention::default()
        };
        assert_eq!(r.keep_from_version(10), 9);
    }

    #[test]
    fn metadata_round_trips_through_a_map() {
        let meta = EventMetadata {
            correlation_id: Some("c".into()),
            causation_id: None,
            extra: [("k".to_owned(), Value::from(1))].into_iter().collect(),
        };
        assert_eq!(EventMetadata::from_map(meta.to_map()), meta);
    }
}
