//! Appending: validation, limits, expected versions, durable idempotency, schema
//! validation, position assignment, stream bookkeeping, batches and retention.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, Violation};
use crate::events::backend::{EventLogRead, LogRecord, RecordJson};
use crate::events::model::{
    Append, AppendOptions, AppendResult, ExpectedVersion, MAX_APPEND_BYTES, MAX_EVENT_BYTES,
    MAX_EVENTS_PER_APPEND, NewEvent, StreamAppended, StreamInfo, check_event_type, check_id,
    check_stream, check_user_stream, random_id,
};
use crate::events::read::{EventRead, stream_info};
use crate::events::{batch, kv, retention, schema};
use crate::store::WriteTx;
use crate::validate;

/// Deepest nesting of arrays and objects in an event's data or metadata.
pub const MAX_EVENT_DEPTH: usize = 64;

/// An event checked and ready to be given a position.
struct Prepared {
    stream_index: usize,
    /// Its index among its stream's events in the append.
    index: usize,
    id: String,
    event_type: String,
    data: Value,
    metadata: Map<String, Value>,
    digest: String,
    /// Its data and metadata as the compact JSON the digest was computed from.
    json: RecordJson,
}

fn depth_ok(value: &Value, remaining: usize) -> bool {
    match value {
        Value::Array(items) => remaining > 0 && items.iter().all(|c| depth_ok(c, remaining - 1)),
        Value::Object(map) => remaining > 0 && map.values().all(|c| depth_ok(c, remaining - 1)),
        _ => true,
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

/// Compact JSON with object keys sorted, so equal values give equal bytes. When
/// [`maps_are_sorted`], it is also exactly what `serde_json::to_string` gives.
fn canonical(value: &Value) -> Result<String> {
    let encode = |v: &Value| serde_json::to_string(v).map_err(|e| Error::backend("events", e));
    if maps_are_sorted() {
        encode(value)
    } else {
        let mut sorted = value.clone();
        sorted.sort_all_objects();
        encode(&sorted)
    }
}

/// [`canonical`] of an object given as its map (no copy when keys are kept sorted).
fn canonical_map(map: &Map<String, Value>) -> Result<String> {
    if maps_are_sorted() {
        serde_json::to_string(map).map_err(|e| Error::backend("events", e))
    } else {
        canonical(&Value::Object(map.clone()))
    }
}

/// Lower-case hexadecimal of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The digest that tells a retry of an event from another event under the same id,
/// with the canonical JSON of data and metadata it was computed from (serialised
/// once: their lengths are the event's size, and a backend may store the text).
pub(crate) fn digest(
    stream: &str,
    event_type: &str,
    data: &Value,
    metadata: &Map<String, Value>,
) -> Result<(String, RecordJson)> {
    let json = RecordJson {
        data: canonical(data)?,
        metadata: canonical_map(metadata)?,
    };
    let mut hasher = Sha256::new();
    for part in [
        stream.as_bytes(),
        event_type.as_bytes(),
        json.data.as_bytes(),
        json.metadata.as_bytes(),
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    Ok((hex(&hasher.finalize()), json))
}

fn subject(stream: &str, index: usize) -> String {
    format!("event {index} of stream '{}'", validate::shorten(stream))
}

/// Checks every event of an append, collecting every violation; gives them ids and digests.
fn prepare(appends: &mut [Append], system: bool) -> Result<Vec<Prepared>> {
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
    for append in appends.iter() {
        if system {
            check_stream(&append.stream)?;
        } else {
            check_user_stream(&append.stream)?;
        }
        if !seen_streams.insert(append.stream.as_str()) {
            return Err(Error::invalid_input(
                format!("append to stream '{}'", validate::shorten(&append.stream)),
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
    let mut violations = Vec::new();
    let mut prepared = Vec::with_capacity(total);
    let mut ids = HashSet::with_capacity(total);
    let mut bytes = 0usize;
    for (stream_index, append) in appends.iter_mut().enumerate() {
        let stream = append.stream.as_str();
        for (i, event) in std::mem::take(&mut append.events).into_iter().enumerate() {
            let mut bad = |pointer: &str, message: String| {
                violations.push(Violation::new(subject(stream, i), pointer, message));
            };
            if let Err(Error::InvalidInput { reason, .. }) = check_event_type(&event.event_type) {
                bad("/type", reason);
            }
            let id = event.id.unwrap_or_else(random_id);
            if let Err(Error::InvalidInput { reason, .. }) = check_id("event id", &id) {
                bad("/id", reason);
            } else if !ids.insert(id.clone()) {
                bad(
                    "/id",
                    format!(
                        "'{}' is given to two events of this append",
                        validate::shorten(&id)
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
            let data_ok = depth_ok(&event.data, MAX_EVENT_DEPTH);
            if !data_ok {
                bad(
                    "/data",
                    format!("nests more than {MAX_EVENT_DEPTH} levels deep"),
                );
            }
            let metadata = event.metadata.into_map();
            if !metadata.values().all(|v| depth_ok(v, MAX_EVENT_DEPTH - 1)) {
                bad(
                    "/metadata",
                    format!("nests more than {MAX_EVENT_DEPTH} levels deep"),
                );
                continue;
            }
            if !data_ok {
                continue;
            }
            let (digest, json) = digest(stream, &event.event_type, &event.data, &metadata)?;
            let size = json.data.len() + json.metadata.len();
            if !system && size > MAX_EVENT_BYTES {
                bad(
                    "",
                    format!(
                        "its data and metadata take {size} bytes as JSON; at most {MAX_EVENT_BYTES} are allowed"
                    ),
                );
            }
            bytes = bytes.saturating_add(size);
            prepared.push(Prepared {
                stream_index,
                index: i,
                id,
                event_type: event.event_type,
                data: event.data,
                metadata,
                digest,
                json,
            });
        }
    }
    if !violations.is_empty() {
        return Err(Error::Validation { violations });
    }
    if !system && bytes > MAX_APPEND_BYTES {
        return Err(Error::invalid_input(
            "append",
            format!(
                "its events take {bytes} bytes as JSON; at most {MAX_APPEND_BYTES} are allowed"
            ),
        ));
    }
    Ok(prepared)
}

/// What an idempotency lookup found.
enum Retry {
    /// No event id was used before: append.
    New,
    /// Every event was appended before, identically: the original result.
    Duplicate(AppendResult),
}

/// Finds out whether the append is a retry, refusing reused ids with other content.
fn idempotency(r: &dyn EventLogRead, appends: &[Append], prepared: &[Prepared]) -> Result<Retry> {
    let ids: Vec<&str> = prepared.iter().map(|p| p.id.as_str()).collect();
    let found = r.log_find_ids(&ids)?;
    let known = found.iter().filter(|f| f.is_some()).count();
    if known == 0 {
        return Ok(Retry::New);
    }
    for (event, earlier) in prepared.iter().zip(&found) {
        if let Some(earlier) = earlier {
            let stream = &appends[event.stream_index].stream;
            if earlier.stream != *stream || earlier.digest != event.digest {
                return Err(Error::DuplicateEvent {
                    id: event.id.clone(),
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
            id: event.id.clone(),
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
                stream: append.stream.clone(),
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

    /// [`WriteTx::append_all`]; `system` allows kgstore's own streams (`$changes`).
    pub(crate) fn append_checked(
        &mut self,
        mut appends: Vec<Append>,
        options: &AppendOptions,
        system: bool,
    ) -> Result<AppendResult> {
        if let Some(batch) = &options.batch {
            check_id("batch id", batch)?;
        }
        // The events move into `prepared`; `appends` keeps the streams and expectations.
        let prepared = prepare(&mut appends, system)?;
        let appends = appends.as_slice();
        let now = self.now();
        let types: Vec<String> = prepared
            .iter()
            .map(|p| p.event_type.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let validators = self.event_validators(&types)?;
        let checked = self.with_events(|r, _| {
            if let Retry::Duplicate(result) = idempotency(r, appends, &prepared)? {
                return Ok(Checked::Duplicate(result));
            }
            let mut infos = Vec::with_capacity(appends.len());
            for append in appends {
                let info = stream_info(r, &append.stream)?;
                if info.as_ref().is_some_and(|i| i.deleted) {
                    return Err(Error::StreamDeleted {
                        stream: append.stream.clone(),
                    });
                }
                let version = info.as_ref().map_or(0, |i| i.version);
                if !append.expected.accepts(version) {
                    return Err(Error::WrongExpectedVersion {
                        stream: append.stream.clone(),
                        expected: expected_text(append.expected),
                        actual: version,
                    });
                }
                infos.push(info);
            }
            Ok(Checked::New {
                infos,
                head: r.log_head()?,
            })
        })?;
        let (infos, head) = match checked {
            Checked::Duplicate(result) => return Ok(result),
            Checked::New { infos, head } => (infos, head),
        };
        let mut violations = Vec::new();
        for event in &prepared {
            if let Some(Some(validator)) = validators.get(&event.event_type) {
                let stream = &appends[event.stream_index].stream;
                violations.extend(schema::violations(
                    validator,
                    &subject(stream, event.index),
                    &event.data,
                ));
            }
        }
        if !violations.is_empty() {
            return Err(Error::Validation { violations });
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
        let mut records = Vec::with_capacity(prepared.len());
        let mut json = Vec::with_capacity(prepared.len());
        for (offset, event) in (0u64..).zip(prepared) {
            let version = &mut versions[event.stream_index];
            *version += 1;
            let at = records.len();
            let span = &mut spans[event.stream_index];
            *span = Some(span.map_or((at, at), |(first, _)| (first, at)));
            records.push(LogRecord {
                position: first + offset,
                stream: appends[event.stream_index].stream.clone(),
                version: *version,
                id: event.id,
                event_type: event.event_type,
                data: event.data,
                metadata: event.metadata,
                recorded_at: now,
                commit,
                batch: options.batch.clone(),
                digest: event.digest,
                removed: false,
            });
            json.push(event.json);
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
                stream: append.stream.clone(),
                first_version: first.version,
                last_version: last.version,
                first_position: first.position,
                last_position: last.position,
            });
            let mut info = info.unwrap_or_else(|| StreamInfo {
                stream: append.stream.clone(),
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
        self.ev_write(|w| {
            // The canonical text is the stored text only when maps keep keys sorted;
            // otherwise the backend serialises the values itself, in their own order.
            if maps_are_sorted() {
                w.log_append_json(&records, &json)?;
            } else {
                w.log_append(&records)?;
            }
            for info in &mut updated {
                retention::enforce(w, info, now)?;
                kv::put(w, kv::STREAMS, &info.stream, info)?;
            }
            if let Some(batch) = &options.batch {
                batch::record_append(w, batch, &records, now)?;
            }
            Ok(())
        })?;
        self.events.wake = true;
        Ok(result)
    }

    /// The compiled schema of each event type that has one (cached per transaction).
    fn event_validators(
        &mut self,
        types: &[String],
    ) -> Result<HashMap<String, Option<schema::Validator>>> {
        let mut out = HashMap::with_capacity(types.len());
        for t in types {
            if let Some(found) = self.events.validators.get(t) {
                out.insert(t.clone(), found.clone());
                continue;
            }
            let compiled = self.with_events(|r, _| schema::latest_validator(r, t))?;
            self.events.validators.insert(t.clone(), compiled.clone());
            out.insert(t.clone(), compiled);
        }
        Ok(out)
    }
}

/// What the read-only part of an append found.
enum Checked {
    Duplicate(AppendResult),
    New {
        infos: Vec<Option<StreamInfo>>,
        head: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digests_ignore_key_order_and_see_every_field() {
        let a = json!({"x": 1, "y": [1, 2]});
        let b: Value = serde_json::from_str(r#"{"y":[1,2],"x":1}"#).unwrap();
        let m = Map::new();
        let (da, ja) = digest("s", "t", &a, &m).unwrap();
        let (db, jb) = digest("s", "t", &b, &m).unwrap();
        assert_eq!(da, db);
        assert_eq!(ja, jb);
        // The text handed to backends is what they would have serialised themselves.
        assert_eq!(ja.data, serde_json::to_string(&a).unwrap());
        assert_eq!(ja.metadata, "{}");
        assert_ne!(
            digest("s", "t", &a, &m).unwrap().0,
            digest("s2", "t", &a, &m).unwrap().0
        );
        assert_ne!(
            digest("s", "t", &a, &m).unwrap().0,
            digest("s", "t2", &a, &m).unwrap().0
        );
        // Lengths are part of the digest: moving bytes between fields changes it.
        assert_ne!(
            digest("ab", "c", &a, &m).unwrap().0,
            digest("a", "bc", &a, &m).unwrap().0
        );
    }
}
