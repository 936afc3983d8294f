//! Typed access to the event store's keyed state: which spaces exist, how keys are
//! built, and JSON (de)serialisation with errors that name the entry.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::events::backend::{EventLogRead, EventLogWrite};
use crate::timestamp::Timestamp;

/// Streams: key = stream name, value = [`StreamInfo`](crate::events::StreamInfo).
pub const STREAMS: &str = "streams";
/// Streams with a maximum age: key = stream name, value = seconds (read-time filter).
pub const AGED: &str = "aged_streams";
/// Consumer groups: key = group name.
pub const GROUPS: &str = "groups";
/// Delivered or waiting events of a group: key = `group/position`.
pub const PENDING: &str = "pending";
/// Dead-letter replays in flight: key = `group/position`.
pub const REPLAYS: &str = "replays";
/// When each pending entry is next due: key = `group/time/kind position`, value = null.
pub const DUE: &str = "due";
/// The dead-letter queue: key = `group/position`.
pub const DEAD: &str = "dead_letters";
/// Batches: key = batch id.
pub const BATCHES: &str = "batches";
/// A batch's progress in one group: key = `group/batch` (group names hold no `/`).
pub const BATCH_GROUPS: &str = "batch_groups";
/// Event schemas: key = event type.
pub const SCHEMAS: &str = "event_schemas";
/// Store settings: key = setting name.
pub const SETTINGS: &str = "settings";

/// Entries read per page when a whole space (or prefix) is walked.
pub const PAGE: usize = 1024;

/// A number as a key part that sorts like the number.
pub fn num(n: u64) -> String {
    format!("{n:020}")
}

/// A time as a key part that sorts like the time (times before 1970 sort first).
pub fn time(t: Timestamp) -> String {
    num(u64::try_from(t.as_micros()).unwrap_or(0))
}

/// `group/position`.
pub fn group_key(group: &str, position: u64) -> String {
    format!("{group}/{}", num(position))
}

/// The position at the end of a `…/position` key.
pub fn position_of(key: &str) -> Option<u64> {
    key.rsplit('/')
        .next()?
        .trim_start_matches(['l', 'r'])
        .parse()
        .ok()
}

fn damaged(space: &str, key: &str, detail: impl std::fmt::Display) -> Error {
    Error::corrupt(
        format!("event store state {space}/{key}"),
        format!("does not hold what kgstore wrote: {detail}"),
    )
}

/// The value under `key`, decoded.
pub fn get<T: DeserializeOwned>(r: &dyn EventLogRead, space: &str, key: &str) -> Result<Option<T>> {
    match r.state_get(space, key)? {
        None => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| damaged(space, key, e)),
    }
}

/// Stores `value` under `key`.
pub fn put<T: Serialize>(
    w: &mut dyn EventLogWrite,
    space: &str,
    key: &str,
    value: &T,
) -> Result<()> {
    let value = serde_json::to_value(value).map_err(|e| damaged(space, key, e))?;
    w.state_put(space, key, &value)
}

/// Up to `limit` entries under `prefix` after `after`, decoded.
pub fn scan<T: DeserializeOwned>(
    r: &dyn EventLogRead,
    space: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, T)>> {
    r.state_scan(space, prefix, after, limit)?
        .into_iter()
        .map(|(key, value)| match serde_json::from_value(value) {
            Ok(v) => Ok((key, v)),
            Err(e) => Err(damaged(space, &key, e)),
        })
        .collect()
}

/// Every key under `prefix`, a page at a time.
pub fn keys(r: &dyn EventLogRead, space: &str, prefix: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = r.state_scan(space, prefix, after.as_deref(), PAGE)?;
        let full = page.len() == PAGE;
        out.extend(page.into_iter().map(|(k, _)| k));
        if !full {
            return Ok(out);
        }
        after = out.last().cloned();
    }
}

/// Every entry under `prefix`, decoded, a page at a time.
pub fn all<T: DeserializeOwned>(
    r: &dyn EventLogRead,
    space: &str,
    prefix: &str,
) -> Result<Vec<(String, T)>> {
    let mut out: Vec<(String, T)> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page: Vec<(String, T)> = scan(r, space, prefix, after.as_deref(), PAGE)?;
        let full = page.len() == PAGE;
        let last = page.last().map(|(k, _)| k.clone());
        out.extend(page);
        if !full {
            return Ok(out);
        }
        after = last;
    }
}

/// Removes every key under `prefix`; how many.
pub fn delete_all(w: &mut dyn EventLogWrite, space: &str, prefix: &str) -> Result<u64> {
    let keys = keys(w, space, prefix)?;
    for key in &keys {
        w.state_delete(space, key)?;
    }
    Ok(keys.len() as u64)
}

/// A `null` value, for index entries that carry nothing.
pub fn marker() -> Value {
    Value::Null
}
