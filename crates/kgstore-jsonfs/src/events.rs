//! The event store in files: one pretty-printed JSON file per event position, and
//! one per entry of the keyed state, written through the same journal as the
//! graph, so a transaction that changes nodes, appends events and moves a consumer
//! group's state is on disk whole or not at all.
//!
//! ```text
//! events/log/000000000000/00000000000000000001.json   the event at position 1
//! events/log/000000000001/00000000000000001000.json   1,000 events per folder
//! events/state/streams/3f/orders.json                 {"key": "orders", "value": {…}}
//! events/state/groups/a0/billing.json
//! ```
//!
//! Stream names, group names and other keys never become paths as they are: a
//! state file's name is the key in the reversible, case-fold-safe encoding of
//! [`names`](crate::names) (hashed when long, the key kept inside the file), so
//! hostile names (`../x`, `CON`, `Café` and `café`) cannot escape the folder or
//! collide. Event files are named by position only.
//!
//! **Ordering.** Positions are assigned inside the write transaction, which holds
//! the store's writer lock from `begin_write` to the end of its commit; readers see
//! the in-memory state that a commit replaces whole after its files are in place.
//! A reader therefore never sees position N+1 without N.

use kgstore_core::events::{
    EventLogRead, EventLogWrite, EventState, LogRecord, LogScan, NewRecord, RemoveWhere,
};
use kgstore_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::JsonFsWrite;
use crate::image::Key;
use crate::names::{encode_name, fit, shard};

/// The event store's top folder.
pub const EVENTS: &str = "events";
/// The log's folder, below [`EVENTS`].
pub const LOG: &str = "events/log";
/// The keyed state's folder, below [`EVENTS`].
pub const STATE: &str = "events/state";
/// Events per log folder.
const PER_FOLDER: u64 = 1000;
const EXTENSION: &str = ".json";

/// The file of the event at `position`.
pub fn event_path(position: u64) -> String {
    format!(
        "{LOG}/{:012}/{position:020}{EXTENSION}",
        position.saturating_sub(1) / PER_FOLDER
    )
}

/// The file of a state entry.
pub fn state_path(space: &str, key: &str) -> String {
    let stem = fit(encode_name(key));
    format!(
        "{STATE}/{}/{}/{stem}{EXTENSION}",
        encode_name(space),
        shard(&stem)
    )
}

/// What a state file holds: its key (whole, for hashed names) and value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    /// The space the entry is in.
    pub space: String,
    /// The entry's key.
    pub key: String,
    /// Its value.
    pub value: Value,
}

/// The event or state entry whose file is at `rel`, if its name can be decoded (a
/// hashed name cannot: the image remembers those).
pub(crate) fn decode_path(rel: &str) -> Option<Key> {
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        ["events", "log", _, file] => file.strip_suffix(EXTENSION)?.parse().ok().map(Key::Event),
        ["events", "state", space, _, file] => {
            let stem = file.strip_suffix(EXTENSION)?;
            if crate::names::is_hashed(stem) {
                return None;
            }
            Some(Key::State(
                crate::names::decode_name(space)?,
                crate::names::decode_name(stem)?,
            ))
        }
        _ => None,
    }
}

/// Whether a relative path is an event-store file this backend could have written.
pub fn is_event_path(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["events", "log", folder, file] => {
            digits(folder, 12)
                && file
                    .strip_suffix(EXTENSION)
                    .is_some_and(|stem| digits(stem, 20))
        }
        ["events", "state", space, shard, file] => {
            shard.len() == 2
                && shard.bytes().all(|b| b.is_ascii_hexdigit())
                && !space.is_empty()
                && space.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                && file.ends_with(EXTENSION)
                && is_safe_component(file)
        }
        _ => false,
    }
}

/// Whether one file name is made of the name encoding's alphabet, is not empty and
/// does not start with `.`.
fn is_safe_component(part: &str) -> bool {
    !part.is_empty()
        && !part.starts_with('.')
        && part.len() <= crate::names::MAX_STEM + crate::names::HASHED_PREFIX + 8
        && part.bytes().all(|b| {
            matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'^' | b'%' | b',' | b'~')
        })
}

/// An event-store file read from disk.
pub enum EventFile {
    /// A log record.
    Record(LogRecord),
    /// A state entry.
    State(StateFile),
}

/// Parses an event-store file found at `rel`, checking that it sits where its
/// content says.
pub fn parse(rel: &str, bytes: &[u8]) -> std::result::Result<EventFile, String> {
    if rel.starts_with(LOG) {
        let record: LogRecord = serde_json::from_slice(bytes)
            .map_err(|e| format!("does not parse as an event: {e}"))?;
        let canonical = event_path(record.position);
        if canonical != rel {
            return Err(format!(
                "holds the event at position {}, whose file is {canonical}",
                record.position
            ));
        }
        Ok(EventFile::Record(record))
    } else {
        let file: StateFile = serde_json::from_slice(bytes)
            .map_err(|e| format!("does not parse as event-store state: {e}"))?;
        let canonical = state_path(&file.space, &file.key);
        if canonical != rel {
            return Err(format!(
                "holds event-store state {}/{}, whose file is {canonical}",
                file.space, file.key
            ));
        }
        Ok(EventFile::State(file))
    }
}

/// Puts a parsed file into the in-memory state.
pub fn load(state: &mut EventState, file: EventFile) -> Result<()> {
    match file {
        EventFile::Record(record) => {
            state.put_record(record);
            Ok(())
        }
        EventFile::State(f) => state.state_put(&f.space, &f.key, &f.value),
    }
}

/// What the log's files must satisfy: positions from 1 without a gap, unique ids.
pub fn integrity(state: &EventState) -> Vec<String> {
    state.check().into_iter().map(|p| p.to_string()).collect()
}

impl EventLogRead for JsonFsWrite<'_> {
    fn log_head(&self) -> Result<u64> {
        self.state.event_state().log_head()
    }

    fn log_scan(&self, scan: &LogScan<'_>) -> Result<Vec<LogRecord>> {
        self.state.event_state().log_scan(scan)
    }

    fn log_find_ids(&self, ids: &[&str]) -> Result<Vec<Option<LogRecord>>> {
        self.state.event_state().log_find_ids(ids)
    }

    fn state_get(&self, space: &str, key: &str) -> Result<Option<Value>> {
        self.state.event_state().state_get(space, key)
    }

    fn state_scan(
        &self,
        space: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>> {
        self.state
            .event_state()
            .state_scan(space, prefix, after, limit)
    }
}

impl EventLogWrite for JsonFsWrite<'_> {
    fn log_append(&mut self, records: &[LogRecord]) -> Result<()> {
        self.state.event_state_mut().log_append(records)?;
        self.changed
            .extend(records.iter().map(|r| Key::Event(r.position)));
        Ok(())
    }

    fn log_append_new(&mut self, records: &[NewRecord<'_>]) -> Result<()> {
        self.state.event_state_mut().log_append_new(records)?;
        self.changed
            .extend(records.iter().map(|r| Key::Event(r.position)));
        Ok(())
    }

    fn log_remove(&mut self, stream: &str, which: RemoveWhere) -> Result<u64> {
        let removed = self.state.event_state_mut().remove_matching(stream, which);
        let n = removed.len() as u64;
        self.changed.extend(removed.into_iter().map(Key::Event));
        Ok(n)
    }

    fn log_clear(&mut self) -> Result<()> {
        let events = self.state.event_state();
        let positions: Vec<u64> = events.records().map(|r| r.position).collect();
        let entries: Vec<(String, String)> = events
            .state_entries()
            .map(|(s, k, _)| (s.to_owned(), k.to_owned()))
            .collect();
        self.state.event_state_mut().log_clear()?;
        self.changed.extend(positions.into_iter().map(Key::Event));
        self.changed
            .extend(entries.into_iter().map(|(s, k)| Key::State(s, k)));
        Ok(())
    }

    fn state_put(&mut self, space: &str, key: &str, value: &Value) -> Result<()> {
        check_space(space)?;
        self.state.event_state_mut().state_put(space, key, value)?;
        self.changed
            .insert(Key::State(space.to_owned(), key.to_owned()));
        Ok(())
    }

    fn state_delete(&mut self, space: &str, key: &str) -> Result<bool> {
        let existed = self.state.event_state_mut().state_delete(space, key)?;
        if existed {
            self.changed
                .insert(Key::State(space.to_owned(), key.to_owned()));
        }
        Ok(existed)
    }
}

/// The core names its spaces with lower-case words; anything else would be a bug.
fn check_space(space: &str) -> Result<()> {
    if !space.is_empty() && space.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        Ok(())
    } else {
        Err(Error::backend(
            "jsonfs",
            format!("event-store state space {space:?} is not a lower-case word"),
        ))
    }
}
