//! Appending: validation, limits, expected versions, durable idempotency, schema
//! validation, position assignment, stream bookkeeping, batches and retention.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, Violation};
use crate::events::backend::{EventLogRead, LogRecord, NewRecord, RecordJson};
use crate::events::model::{
    Append, AppendOptions, AppendResult, EventMetadata, ExpectedVersion, MAX_APPEND_BYTES,
    MAX_EVENT_BYTES, MAX_EVENTS_PER_APPEND, NewEvent, StreamAppended, StreamInfo, check_event_type,
    check_id, check_stream, check_user_stream, random_id,
};
use crate::events::read::{EventRead, stream_info};
use crate::events::{batch, kv, retention, schema};
use crate::store::WriteTx;
use crate::validate;

/// Deepest nesting of arrays and objects in an event's data or metadata.
pub const MAX_EVENT_DEPTH: usize = 64;

/// An event checked and ready to be given a position, borrowed from its append.
struct Prepared<'a> {
    stream_index: usize,
    /// Its index among its stream's events in the append.
    index: usize,
    event: &'a NewEvent,
    id: &'a str,
    digest: HexDigest,
    /// Its data's and its metadata's compact JSON in [`PreparedAppend::text`]:
    /// `start..mid` and `mid..end`, the text the digest was computed from.
    text: (usize, usize, usize),
}

/// Every event of an append, checked, with their JSON text in one buffer.
struct PreparedAppend<'a> {
    events: Vec<Prepared<'a>>,
    text: String,
}

impl PreparedAppend<'_> {
    fn json(&self, event: &Prepared<'_>) -> RecordJson<'_> {
        let (start, mid, end) = event.text;
        RecordJson {
            data: &self.text[start..mid],
            metadata: &self.text[mid..end],
        }
    }
}

/// A SHA-256 digest, kept inline both as its 32 bytes and as 64 lower-case
/// hexadecimal digits (backends store one or the other).
#[derive(Clone, Copy)]
struct HexDigest {
    bytes: [u8; 32],
    hex: [u8; 64],
}

impl HexDigest {
    fn of(bytes: [u8; 32]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [b'0'; 64];
        for (pair, b) in hex.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        Self { bytes, hex }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and letters are ever written.
        std::str::from_utf8(&self.hex).unwrap_or_default()
    }
}

/// Whether this build's `serde_json` keeps object keys sorted (it does unless some
/// crate turns on its `preserve_order` feature).
fn maps_are_sorted() -> bool {
    static SORTED: OnceLock<bool> = OnceLock::new();
    *SORTED.get_or_init(|| {
        let mut map = Map::new();
        map.insert("b".into(), Value::Null);
        map.insert("a".into(), Value::Null);
        map.keys().next().is_some_and(|k| k == "a")
    })
}

/// A JSON value as canonical text: compact, object keys sorted (whatever order the
/// map keeps them in), so equal values give equal bytes. When [`maps_are_sorted`]
/// it is exactly what `serde_json::to_string` gives. It holds at most `depth`
/// levels of arrays and objects, else serialising it fails: the depth rule is
/// checked in the same walk that writes the text.
struct Canonical<'a> {
    value: &'a Value,
    depth: usize,
}

impl Canonical<'_> {
    fn nested<'v>(&self, value: &'v Value) -> Canonical<'v> {
        Canonical {
            value,
            depth: self.depth.saturating_sub(1),
        }
    }
}

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.value {
            Value::Array(_) | Value::Object(_) if self.depth == 0 => {
                Err(S::Error::custom("nested too deeply"))
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&self.nested(item))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut out = s.serialize_map(Some(map.len()))?;
                if maps_are_sorted() {
                    for (key, value) in map {
                        out.serialize_entry(key, &self.nested(value))?;
                    }
                } else {
                    let mut entries: Vec<_> = map.iter().collect();
                    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    for (key, value) in entries {
                        out.serialize_entry(key, &self.nested(value))?;
                    }
                }
                out.end()
            }
            scalar => scalar.serialize(s),
        }
    }
}

/// An event's metadata as canonical text: the object [`EventMetadata::into_map`]
/// makes (the correlation and causation ids over any extra field of the same
/// name), written without building it. Its values hold at most `depth` levels.
struct CanonicalMetadata<'a> {
    metadata: &'a EventMetadata,
    depth: usize,
}

impl Serialize for CanonicalMetadata<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let m = self.metadata;
        // The two id fields, in key order.
        let ids = [
            ("causation_id", m.causation_id.as_deref()),
            ("correlation_id", m.correlation_id.as_deref()),
        ];
        let ids = ids.iter().filter_map(|(k, v)| v.map(|v| (*k, v)));
        let mut extra: Vec<(&String, &Value)> = m
            .extra
            .iter()
            .filter(|(k, _)| {
                !(k.as_str() == "causation_id" && m.causation_id.is_some()
                    || k.as_str() == "correlation_id" && m.correlation_id.is_some())
            })
            .collect();
        if !maps_are_sorted() {
            extra.sort_unstable_by(|a, b| a.0.cmp(b.0));
        }
        let len = extra.len() + ids.clone().count();
        let mut out = s.serialize_map(Some(len))?;
        let mut ids = ids.peekable();
        for (key, value) in extra {
            while let Some((id_key, id)) = ids.next_if(|(k, _)| *k < key.as_str()) {
                out.serialize_entry(id_key, id)?;
            }
            let value = Canonical {
                value,
                depth: self.depth,
            };
            out.serialize_entry(key, &value)?;
        }
        for (id_key, id) in ids {
            out.serialize_entry(id_key, id)?;
        }
        out.end()
    }
}

/// Writes a [`Canonical`] or [`CanonicalMetadata`] to `out`; `false` (and `out` as
/// it was) if it nests too deeply, the one way they fail (JSON values always
/// serialise, and writing to a vector cannot fail).
fn write_canonical(out: &mut Vec<u8>, value: &impl Serialize) -> bool {
    let start = out.len();
    match serde_json::to_writer(&mut *out, value) {
        Ok(()) => true,
        Err(_) => {
            out.truncate(start);
            false
        }
    }
}

/// The digest that tells a retry of an event from another event under the same id:
/// SHA-256 over the stream, the type and the canonical JSON of data and metadata,
/// each preceded by its length.
fn digest(stream: &str, event_type: &str, data: &[u8], metadata: &[u8]) -> HexDigest {
    let mut hasher = Sha256::new();
    for part in [stream.as_bytes(), event_type.as_bytes(), data, metadata] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    HexDigest::of(hasher.finalize().into())
}

fn subject(stream: &str, index: usize) -> String {
    format!("event {index} of stream '{}'", validate::shorten(stream))
}

/// One stream's part of an append, borrowed from the caller (an [`Append`], or the
/// events of [`WriteTx::append_borrowed`]): the events stay where they are, and
/// are neither copied nor dropped by the append.
#[derive(Clone, Copy)]
struct Part<'a> {
    stream: &'a str,
    expected: ExpectedVersion,
    events: &'a [NewEvent],
}

impl<'a> Part<'a> {
    fn of(append: &'a Append) -> Self {
        Part {
            stream: &append.stream,
            expected: append.expected,
            events: &append.events,
        }
    }
}

/// The rules an append as a whole follows: some events, not too many, valid stream
/// names, each named once, expected versions in range.
fn check_parts(appends: &[Part<'_>], system: bool) -> Result<()> {
    let total: usize = appends.iter().map(|a| a.events.len()).sum();
    if appends.is_empty() || total == 0 {
        return Err(Error::invalid_input("append", "holds no events"));
    }
    if total > MAX_EVENTS_PER_APPEND {
        return Err(Error::invalid_input(
            "append",
            format!("holds {total} events; at most {MAX_EVENTS_PER_APPEND} are allowed"),
        ));
    }
    let mut seen_streams = HashSet::new();
    for append in appends {
        if system {
            check_stream(append.stream)?;
        } else {
            check_user_stream(append.stream)?;
        }
        if !seen_streams.insert(append.stream) {
            return Err(Error::invalid_input(
                format!("append to stream '{}'", validate::shorten(append.stream)),
                "names the stream twice; give all of its events in one part",
            ));
        }
        if let ExpectedVersion::Exact(n) = append.expected
            && n > validate::MAX_VERSION
        {
            return Err(Error::invalid_input(
                "expected version",
                format!(
                    "{n} is beyond the largest version {}",
                    validate::MAX_VERSION
                ),
            ));
        }
    }
    Ok(())
}

/// A random id for every event without one, in the order of the append's events
/// (an empty string, which allocates nothing, for each event with an id).
fn new_ids(appends: &[Part<'_>]) -> Vec<String> {
    appends
        .iter()
        .flat_map(|a| a.events)
        .map(|e| match e.id {
            Some(_) => String::new(),
            None => random_id(),
        })
        .collect()
}

/// Checks every event of an append (after [`check_parts`]), collecting every
/// violation; writes their JSON text once and digests it. Events without an id
/// take theirs from `new_ids` ([`new_ids`]).
fn prepare<'a>(
    appends: &[Part<'a>],
    new_ids: &'a [String],
    system: bool,
) -> Result<PreparedAppend<'a>> {
    let total: usize = appends.iter().map(|a| a.events.len()).sum();
    let mut violations = Vec::new();
    let mut prepared = Vec::with_capacity(total);
    let mut ids = HashSet::with_capacity_and_hasher(total, foldhash::fast::RandomState::default());
    let mut text = Vec::new();
    let mut new_ids = new_ids.iter();
    for (stream_index, append) in appends.iter().enumerate() {
        let stream = append.stream;
        for (i, event) in append.events.iter().enumerate() {
            let new_id = new_ids.next().map_or("", String::as_str);
            let mut bad = |pointer: &str, message: String| {
                violations.push(Violation::new(subject(stream, i), pointer, message));
            };
            if let Err(Error::InvalidInput { reason, .. }) = check_event_type(&event.event_type) {
                bad("/type", reason);
            }
            let id = event.id.as_deref().unwrap_or(new_id);
            if let Err(Error::InvalidInput { reason, .. }) = check_id("event id", id) {
                bad("/id", reason);
            } else if !ids.insert(id) {
                bad(
                    "/id",
                    format!(
                        "'{}' is given to two events of this append",
                        validate::shorten(id)
                    ),
                );
            }
            for (pointer, value) in [
                ("/metadata/correlation_id", &event.metadata.correlation_id),
                ("/metadata/causation_id", &event.metadata.causation_id),
            ] {
                if let Some(value) = value
                    && let Err(Error::InvalidInput { reason, .. }) = check_id("id", value)
                {
                    bad(pointer, reason);
                }
            }
            let start = text.len();
            let data = Canonical {
                value: &event.data,
                depth: MAX_EVENT_DEPTH,
            };
            let data_ok = write_canonical(&mut text, &data);
            if !data_ok {
                bad(
                    "/data",
                    format!("nests more than {MAX_EVENT_DEPTH} levels deep"),
                );
            }
            let mid = text.len();
            let metadata = CanonicalMetadata {
                metadata: &event.metadata,
                depth: MAX_EVENT_DEPTH - 1,
            };
            if !write_canonical(&mut text, &metadata) {
                bad(
                    "/metadata",
                    format!("nests more than {MAX_EVENT_DEPTH} levels deep"),
                );
                continue;
            }
            if !data_ok {
                continue;
            }
            let end = text.len();
            let size = end - start;
            if !system && size > MAX_EVENT_BYTES {
                bad(
                    "",
                    format!(
                        "its data and metadata take {size} bytes as JSON; at most {MAX_EVENT_BYTES} are allowed"
                    ),
                );
            }
            prepared.push(Prepared {
                stream_index,
                index: i,
                event,
                id,
                digest: digest(
                    stream,
                    &event.event_type,
                    &text[start..mid],
                    &text[mid..end],
                ),
                text: (start, mid, end),
            });
        }
    }
    if !violations.is_empty() {
        return Err(Error::Validation { violations });
    }
    let bytes = text.len();
    if !system && bytes > MAX_APPEND_BYTES {
        return Err(Error::invalid_input(
            "append",
            format!(
                "its events take {bytes} bytes as JSON; at most {MAX_APPEND_BYTES} are allowed"
            ),
        ));
    }
    let text = String::from_utf8(text)
        .map_err(|e| Error::backend("events", format!("event JSON is not UTF-8: {e}")))?;
    Ok(PreparedAppend {
        events: prepared,
        text,
    })
}

/// What an idempotency lookup found.
enum Retry {
    /// No event id was used before: append.
    New,
    /// Every event was appended before, identically: the original result.
    Duplicate(AppendResult),
}

/// Finds out whether the append is a retry, refusing reused ids with other content.
fn idempotency(
    r: &dyn EventLogRead,
    appends: &[Part<'_>],
    prepared: &[Prepared<'_>],
) -> Result<Retry> {
    let ids: Vec<&str> = prepared.iter().map(|p| p.id).collect();
    let found = r.log_find_ids(&ids)?;
    let known = found.iter().filter(|f| f.is_some()).count();
    if known == 0 {
        return Ok(Retry::New);
    }
    for (event, earlier) in prepared.iter().zip(&found) {
        if let Some(earlier) = earlier {
            let stream = appends[event.stream_index].stream;
            if earlier.stream != stream || earlier.digest != event.digest.as_str() {
                return Err(Error::DuplicateEvent {
                    id: event.id.to_owned(),
                    detail: format!(
                        "was used at position {} (stream '{}', type '{}') for an event with \
                         another stream, type, data or metadata",
                        earlier.position,
                        validate::shorten(&earlier.stream),
                        earlier.event_type
                    ),
                });
            }
        }
    }
    if known < prepared.len() {
        let (event, earlier) = prepared
            .iter()
            .zip(&found)
            .find_map(|(e, f)| f.as_ref().map(|f| (e, f)))
            .ok_or_else(|| Error::backend("events", "an id lookup changed under the append"))?;
        return Err(Error::DuplicateEvent {
            id: event.id.to_owned(),
            detail: format!(
                "was appended before (position {}), but {} other events of this append were \
                 not: a retry must repeat the original append whole",
                earlier.position,
                prepared.len() - known
            ),
        });
    }
    let records: Vec<&LogRecord> = found.iter().flatten().collect();
    let mut streams = Vec::with_capacity(appends.len());
    for (index, append) in appends.iter().enumerate() {
        let mine: Vec<&&LogRecord> = prepared
            .iter()
            .zip(&records)
            .filter(|(p, _)| p.stream_index == index)
            .map(|(_, r)| r)
            .collect();
        let first = mine.iter().min_by_key(|r| r.position);
        let last = mine.iter().max_by_key(|r| r.position);
        if let (Some(first), Some(last)) = (first, last) {
            streams.push(StreamAppended {
                stream: append.stream.to_owned(),
                first_version: first.version,
                last_version: last.version,
                first_position: first.position,
                last_position: last.position,
            });
        }
    }
    Ok(Retry::Duplicate(AppendResult {
        positions: records.iter().map(|r| r.position).collect(),
        commit: records.iter().map(|r| r.commit).min().unwrap_or(0),
        streams,
        duplicate: true,
    }))
}

fn expected_text(expected: ExpectedVersion) -> String {
    match expected {
        ExpectedVersion::Any => "any version".into(),
        ExpectedVersion::NoStream => "no stream (version 0)".into(),
        ExpectedVersion::StreamExists => "an existing stream".into(),
        ExpectedVersion::Exact(n) => format!("version {n}"),
    }
}

impl WriteTx<'_> {
    /// Appends events to one stream, checking `expected` against its version; see
    /// [`WriteTx::append_all`].
    ///
    /// ```
    /// use kgstore_core::events::{ExpectedVersion, NewEvent};
    /// use kgstore_core::{Node, Store};
    /// use serde_json::json;
    ///
    /// let store = Store::memory();
    /// let result = store.write(|tx| {
    ///     tx.create_node(Node::new("order-17", "order")?)?; // the graph and the log
    ///     tx.append(                                       // in one transaction
    ///         "orders",
    ///         ExpectedVersion::NoStream,
    ///         [NewEvent::new("order.placed", json!({"order": 17})).with_id("o17")],
    ///     )
    /// })?;
    /// assert_eq!(result.positions, [1]);
    /// // A retry with the same id returns the original position and writes nothing.
    /// let again = store.append(
    ///     "orders",
    ///     ExpectedVersion::NoStream,
    ///     [NewEvent::new("order.placed", json!({"order": 17})).with_id("o17")],
    /// )?;
    /// assert!(again.duplicate);
    /// assert_eq!(again.positions, [1]);
    /// # Ok::<(), kgstore_core::Error>(())
    /// ```
    pub fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: impl IntoIterator<Item = NewEvent>,
    ) -> Result<AppendResult> {
        self.append_all(
            vec![Append::new(stream, expected, events)],
            &AppendOptions::default(),
        )
    }

    /// Appends events to several streams at once, all or nothing.
    ///
    /// * Each stream's expected version is checked; a mismatch is
    ///   [`Error::WrongExpectedVersion`], a deleted stream [`Error::StreamDeleted`].
    /// * Event ids make retries idempotent, durably: if every event's id was appended
    ///   before with the same stream, type, data and metadata, nothing is written and
    ///   the original positions come back (`duplicate: true`), whatever the expected
    ///   versions say. An id used before for something else, or a retry that mixes old
    ///   and new events, is [`Error::DuplicateEvent`].
    /// * Event types with a schema have their data validated; every violation is
    ///   listed (pointers under `/data`).
    /// * Positions are assigned here, inside the transaction: contiguous, in commit
    ///   order.
    pub fn append_all(
        &mut self,
        appends: Vec<Append>,
        options: &AppendOptions,
    ) -> Result<AppendResult> {
        self.append_checked(appends, options, false)
    }

    /// Appends events to one stream that the caller keeps (this borrows them, where
    /// [`WriteTx::append`] takes them over): otherwise the same as
    /// [`WriteTx::append`]. Events without an id are given one for this append
    /// alone, so a retry of such events appends them again.
    ///
    /// ```
    /// use kgstore_core::events::{ExpectedVersion, NewEvent};
    /// use kgstore_core::Store;
    /// use serde_json::json;
    ///
    /// let store = Store::memory();
    /// let events = [NewEvent::new("order.placed", json!({"order": 17})).with_id("o17")];
    /// let first = store.write(|tx| tx.append_borrowed("orders", ExpectedVersion::NoStream, &events))?;
    /// // The events are still the caller's: a retry sends the same ones.
    /// let again = store.write(|tx| tx.append_borrowed("orders", ExpectedVersion::NoStream, &events))?;
    /// assert!(again.duplicate);
    /// assert_eq!(again.positions, first.positions);
    /// # Ok::<(), kgstore_core::Error>(())
    /// ```
    pub fn append_borrowed(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult> {
        let part = Part {
            stream,
            expected,
            events,
        };
        self.append_parts(&[part], &AppendOptions::default(), false)
    }

    /// [`WriteTx::append_all`]; `system` allows kgstore's own streams (`$changes`).
    pub(crate) fn append_checked(
        &mut self,
        appends: Vec<Append>,
        options: &AppendOptions,
        system: bool,
    ) -> Result<AppendResult> {
        let parts: Vec<Part<'_>> = appends.iter().map(Part::of).collect();
        self.append_parts(&parts, options, system)
    }

    /// Appends the parts, which stay the caller's: everything here borrows them,
    /// down to the backend's insert.
    fn append_parts(
        &mut self,
        appends: &[Part<'_>],
        options: &AppendOptions,
        system: bool,
    ) -> Result<AppendResult> {
        if let Some(batch) = &options.batch {
            check_id("batch id", batch)?;
        }
        check_parts(appends, system)?;
        let new_ids = new_ids(appends);
        let prepared = prepare(appends, &new_ids, system)?;
        let now = self.now();
        let mut types: Vec<&str> = prepared
            .events
            .iter()
            .map(|p| p.event.event_type.as_str())
            .collect();
        types.sort_unstable();
        types.dedup();
        let validators = self.event_validators(&types)?;
        // The ids are not looked up first: the insert tells whether one is known
        // (`log_append_new_unless_known`), and so does any refusal below, since a
        // retry returns the original result whatever the expected versions or
        // schemas say now (`retried`).
        let checked = self.with_events(|r, _| {
            let mut infos = Vec::with_capacity(appends.len());
            for append in appends {
                let info = stream_info(r, append.stream)?;
                if info.as_ref().is_some_and(|i| i.deleted) {
                    return Err(Error::StreamDeleted {
                        stream: append.stream.to_owned(),
                    });
                }
                let version = info.as_ref().map_or(0, |i| i.version);
                if !append.expected.accepts(version) {
                    return Err(Error::WrongExpectedVersion {
                        stream: append.stream.to_owned(),
                        expected: expected_text(append.expected),
                        actual: version,
                    });
                }
                infos.push(info);
            }
            Ok((infos, r.log_head()?))
        });
        let (infos, head) = match checked {
            Ok(checked) => checked,
            Err(refused) => return self.retried(appends, &prepared.events, refused),
        };
        let mut violations = Vec::new();
        for event in &prepared.events {
            if let Some(Some(validator)) = validators.get(event.event.event_type.as_str()) {
                let stream = appends[event.stream_index].stream;
                violations.extend(schema::violations(
                    validator,
                    &subject(stream, event.index),
                    &event.event.data,
                ));
            }
        }
        if !violations.is_empty() {
            return self.retried(appends, &prepared.events, Error::Validation { violations });
        }

        // Positions, versions and the records.
        let first = head + 1;
        let commit = *self.events.commit.get_or_insert(first);
        let mut versions: Vec<u64> = infos
            .iter()
            .map(|i| i.as_ref().map_or(0, |i| i.version))
            .collect();
        // Each stream's first and last record, by index into `records`.
        let mut spans: Vec<Option<(usize, usize)>> = vec![None; appends.len()];
        let mut records = Vec::with_capacity(prepared.events.len());
        // The canonical text is what serde_json writes only when maps keep keys
        // sorted; otherwise backends serialise the values themselves, in their order.
        let plain_json = maps_are_sorted();
        let batch = options.batch.as_deref();
        for (offset, event) in (0u64..).zip(&prepared.events) {
            let version = &mut versions[event.stream_index];
            *version += 1;
            let at = records.len();
            let span = &mut spans[event.stream_index];
            *span = Some(span.map_or((at, at), |(first, _)| (first, at)));
            records.push(NewRecord {
                position: first + offset,
                stream: appends[event.stream_index].stream,
                version: *version,
                id: event.id,
                event_type: &event.event.event_type,
                data: &event.event.data,
                metadata: &event.event.metadata,
                json: plain_json.then(|| prepared.json(event)),
                recorded_at: now,
                commit,
                batch,
                digest: event.digest.as_str(),
                digest_bytes: event.digest.bytes,
            });
        }
        let mut streams = Vec::with_capacity(appends.len());
        let mut updated = Vec::with_capacity(appends.len());
        for ((append, info), (span, version)) in appends
            .iter()
            .zip(infos)
            .zip(spans.into_iter().zip(versions))
        {
            let Some((first, last)) = span.map(|(f, l)| (&records[f], &records[l])) else {
                continue;
            };
            streams.push(StreamAppended {
                stream: append.stream.to_owned(),
                first_version: first.version,
                last_version: last.version,
                first_position: first.position,
                last_position: last.position,
            });
            let mut info = info.unwrap_or_else(|| StreamInfo {
                stream: append.stream.to_owned(),
                version: 0,
                last_position: 0,
                created_at: now,
                updated_at: now,
                deleted: false,
                retention: Default::default(),
                removed_before: 0,
            });
            info.version = version;
            info.last_position = last.position;
            info.updated_at = now;
            updated.push(info);
        }
        let result = AppendResult {
            positions: records.iter().map(|r| r.position).collect(),
            commit,
            streams,
            duplicate: false,
        };
        let appended = self.ev_write(|w| {
            if !w.log_append_new_unless_known(&records)? {
                return Ok(false);
            }
            for info in &mut updated {
                retention::enforce(w, info, now)?;
                kv::put(w, kv::STREAMS, &info.stream, info)?;
            }
            if let Some(batch) = batch {
                batch::record_append(w, batch, &records, now)?;
            }
            Ok(true)
        })?;
        if !appended {
            let missing = Error::backend(
                "events",
                "the log refused an event id as known, but a lookup of the ids found none",
            );
            return self.retried(appends, &prepared.events, missing);
        }
        self.events.wake = true;
        Ok(result)
    }

    /// What a refused append answers: if it is a retry (every id appended before,
    /// identically), the original result; if it reuses an id for something else,
    /// [`Error::DuplicateEvent`]; else `refused`, the reason it was refused.
    fn retried(
        &self,
        appends: &[Part<'_>],
        prepared: &[Prepared<'_>],
        refused: Error,
    ) -> Result<AppendResult> {
        match self.with_events(|r, _| idempotency(r, appends, prepared))? {
            Retry::Duplicate(result) => Ok(result),
            Retry::New => Err(refused),
        }
    }

    /// The compiled schema of each event type that has one (cached per transaction).
    fn event_validators<'t>(
        &mut self,
        types: &[&'t str],
    ) -> Result<HashMap<&'t str, Option<schema::Validator>>> {
        let mut out = HashMap::with_capacity(types.len());
        for &t in types {
            if let Some(found) = self.events.validators.as_ref().and_then(|v| v.get(t)) {
                out.insert(t, found.clone());
                continue;
            }
            let compiled = self.with_events(|r, _| schema::latest_validator(r, t))?;
            self.events
                .validators
                .get_or_insert_default()
                .insert(t.to_owned(), compiled.clone());
            out.insert(t, compiled);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(value: &impl Serialize) -> Option<String> {
        let mut out = Vec::new();
        write_canonical(&mut out, value).then(|| String::from_utf8(out).unwrap())
    }

    fn data_text(value: &Value) -> Option<String> {
        text(&Canonical {
            value,
            depth: MAX_EVENT_DEPTH,
        })
    }

    fn metadata_text(metadata: &EventMetadata) -> Option<String> {
        text(&CanonicalMetadata {
            metadata,
            depth: MAX_EVENT_DEPTH - 1,
        })
    }

    fn digest_of(stream: &str, event_type: &str, data: &Value, meta: &EventMetadata) -> String {
        let (data, meta) = (data_text(data).unwrap(), metadata_text(meta).unwrap());
        digest(stream, event_type, data.as_bytes(), meta.as_bytes())
            .as_str()
            .to_owned()
    }

    #[test]
    fn digests_ignore_key_order_and_see_every_field() {
        let a = json!({"x": 1, "y": [1, 2]});
        let b: Value = serde_json::from_str(r#"{"y":[1,2],"x":1}"#).unwrap();
        let m = EventMetadata::default();
        assert_eq!(digest_of("s", "t", &a, &m), digest_of("s", "t", &b, &m));
        // The text handed to backends is what they would have serialised themselves.
        assert_eq!(data_text(&a).unwrap(), serde_json::to_string(&a).unwrap());
        assert_eq!(metadata_text(&m).unwrap(), "{}");
        assert_ne!(digest_of("s", "t", &a, &m), digest_of("s2", "t", &a, &m));
        assert_ne!(digest_of("s", "t", &a, &m), digest_of("s", "t2", &a, &m));
        let with_id = EventMetadata {
            correlation_id: Some("c".into()),
            ..EventMetadata::default()
        };
        assert_ne!(
            digest_of("s", "t", &a, &m),
            digest_of("s", "t", &a, &with_id)
        );
        // Lengths are part of the digest: moving bytes between fields changes it.
        assert_ne!(digest_of("ab", "c", &a, &m), digest_of("a", "bc", &a, &m));
    }

    #[test]
    fn digests_are_those_stored_by_earlier_versions() {
        // SHA-256 over the length-prefixed stream, type, data and metadata text,
        // computed outside kgstore: stored digests keep matching retries.
        let meta = EventMetadata {
            correlation_id: Some("c-1".into()),
            causation_id: None,
            extra: [("a".to_owned(), json!(true))].into_iter().collect(),
        };
        assert_eq!(
            digest_of(
                "orders",
                "order.placed",
                &json!({"y": [1, 2], "x": 1}),
                &meta
            ),
            "73cfe9fdbb3a8126f3460c164aa8aa38688cca4408d93e01764a1951aa6883f5"
        );
    }

    #[test]
    fn metadata_text_is_that_of_its_map() {
        let extra = |keys: &[&str]| -> Map<String, Value> {
            keys.iter()
                .enumerate()
                .map(|(i, k)| ((*k).to_owned(), json!({"n": i, "k": [k]})))
                .collect()
        };
        let cases = [
            EventMetadata::default(),
            EventMetadata {
                correlation_id: Some("corr".into()),
                causation_id: Some("cause".into()),
                extra: extra(&["a", "causation", "cb", "co", "correlation_idz", "z", "é"]),
            },
            EventMetadata {
                correlation_id: None,
                causation_id: Some("cause".into()),
                extra: extra(&["correlation_id", "zz"]),
            },
            // An extra field of an id's name gives way to the id, as in the map.
            EventMetadata {
                correlation_id: Some("corr".into()),
                causation_id: None,
                extra: extra(&["causation_id", "correlation_id"]),
            },
        ];
        for meta in cases {
            assert_eq!(
                metadata_text(&meta).unwrap(),
                serde_json::to_string(&meta.to_map()).unwrap(),
                "{meta:?}"
            );
        }
    }

    #[test]
    fn depth_is_checked_while_writing() {
        let nest = |levels: usize| {
            let mut value = json!(1);
            for i in 0..levels {
                value = if i % 2 == 0 {
                    json!([value])
                } else {
                    json!({ "k": value })
                };
            }
            value
        };
        assert!(data_text(&nest(MAX_EVENT_DEPTH)).is_some());
        assert!(data_text(&nest(MAX_EVENT_DEPTH + 1)).is_none());
        // Metadata is an object itself: its values may nest one level less.
        let meta = |levels| EventMetadata {
            extra: [("m".to_owned(), nest(levels))].into_iter().collect(),
            ..EventMetadata::default()
        };
        assert!(metadata_text(&meta(MAX_EVENT_DEPTH - 1)).is_some());
        assert!(metadata_text(&meta(MAX_EVENT_DEPTH)).is_none());
    }
}
