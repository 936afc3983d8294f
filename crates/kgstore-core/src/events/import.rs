//! Moving a whole event store in and out (backups, restores, migrations between
//! backends): every record and every entry of the keyed state, as they are.

use serde_json::Value;

use crate::documents::Sha256Digest;
use crate::error::{Error, Result};
use crate::events::backend::{EventLogRead, LogRecord, LogScan};
use crate::events::group::{DeadLetter, PendingDelivery};
use crate::events::kv;
use crate::events::model::{StreamInfo, check_event_type, check_id, check_stream};
use crate::events::read::EventRead;
use crate::events::schema::EventSchema;
use crate::store::WriteTx;

/// Every space of the keyed state, by name (the order backups list them in).
pub const SPACES: [&str; 11] = [
    kv::AGED,
    kv::BATCH_GROUPS,
    kv::BATCHES,
    kv::DEAD,
    kv::DUE,
    kv::SCHEMAS,
    kv::GROUPS,
    kv::PENDING,
    kv::REPLAYS,
    kv::SETTINGS,
    kv::STREAMS,
];

/// Records per page when the whole log is read.
pub const EXPORT_PAGE: usize = 1000;

/// One page of the whole log from `from` (removed records included), by position.
pub fn export_records(r: &dyn EventLogRead, from: u64) -> Result<Vec<LogRecord>> {
    r.log_scan(&LogScan {
        from,
        limit: EXPORT_PAGE,
        ..LogScan::default()
    })
}

/// Every entry of the keyed state: `(space, key, value)`, by space then key.
pub fn export_state(r: &dyn EventLogRead) -> Result<Vec<(String, String, Value)>> {
    let mut out = Vec::new();
    for space in SPACES {
        for (key, value) in kv::all::<Value>(r, space, "")? {
            out.push((space.to_owned(), key, value));
        }
    }
    Ok(out)
}

/// Why a record cannot be part of a log, if it cannot (backup verification and
/// imports share these rules).
pub fn record_problem(record: &LogRecord) -> Option<String> {
    let reason = |e: Error| match e {
        Error::InvalidInput { what, reason } => format!("{what}: {reason}"),
        other => other.to_string(),
    };
    if let Err(e) = check_stream(&record.stream) {
        return Some(reason(e));
    }
    if let Err(e) = check_id("event id", &record.id) {
        return Some(reason(e));
    }
    if let Err(e) = check_event_type(&record.event_type) {
        return Some(reason(e));
    }
    if let Some(batch) = &record.batch
        && let Err(e) = check_id("batch id", batch)
    {
        return Some(reason(e));
    }
    if record.position == 0 || record.version == 0 {
        return Some("positions and versions start at 1".into());
    }
    if record.commit == 0 || record.commit > record.position {
        return Some(format!(
            "its commit {} is not between 1 and its position {}",
            record.commit, record.position
        ));
    }
    if record.digest.parse::<Sha256Digest>().is_err() {
        return Some("its digest is not 64 lower-case hex digits".into());
    }
    if record.removed && (!record.data.is_null() || !record.metadata.is_empty()) {
        return Some("a removed event still holds data or metadata".into());
    }
    None
}

/// Why a state entry is not one kgstore writes, if it is not.
pub fn state_problem(space: &str, key: &str, value: &Value) -> Option<String> {
    fn decodes<T: serde::de::DeserializeOwned>(value: &Value) -> Option<String> {
        serde_json::from_value::<T>(value.clone())
            .err()
            .map(|e| e.to_string())
    }
    if key.is_empty() {
        return Some("an empty key".into());
    }
    match space {
        kv::STREAMS => decodes::<StreamInfo>(value),
        kv::AGED => decodes::<u64>(value),
        kv::GROUPS => crate::events::group::record_problem(value),
        kv::PENDING | kv::REPLAYS => decodes::<PendingDelivery>(value),
        kv::DUE => (!value.is_null()).then(|| "a due-index entry holds a value".to_owned()),
        kv::DEAD => decodes::<DeadLetter>(value),
        kv::BATCHES => crate::events::batch::record_problem(value),
        kv::BATCH_GROUPS => crate::events::batch::counts_problem(value),
        kv::SCHEMAS => decodes::<EventSchema>(value),
        kv::SETTINGS => (!value.is_object()).then(|| "a setting is not an object".to_owned()),
        other => Some(format!("'{other}' is not a space of the event store")),
    }
}

impl WriteTx<'_> {
    /// Empties the event log and its state, to load another store's (a restore that
    /// replaces a store's content). The change feed records nothing for this
    /// transaction: the log it loads is the record.
    pub fn replace_event_log(&mut self) -> Result<()> {
        self.with_events(|_, _| Ok(()))?;
        self.events.feed = None;
        self.events.validators = None;
        self.events.wake = true;
        self.ev_write(|w| w.log_clear())
    }

    /// Appends records exactly as they were stored elsewhere (restores, migrations):
    /// their positions must continue this log without a gap, ids must be new.
    pub fn import_events(&mut self, records: &[LogRecord]) -> Result<()> {
        let (head, known) = self.with_events(|r, _| {
            let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
            Ok((r.log_head()?, r.log_find_ids(&ids)?))
        })?;
        for ((record, expected), earlier) in records.iter().zip(head + 1..).zip(&known) {
            let subject = || format!("imported event at position {}", record.position);
            if record.position != expected {
                return Err(Error::invalid_input(
                    subject(),
                    format!(
                        "position {expected} was due: a log is imported in order, without gaps"
                    ),
                ));
            }
            if let Some(problem) = record_problem(record) {
                return Err(Error::invalid_input(subject(), problem));
            }
            if let Some(earlier) = earlier {
                return Err(Error::DuplicateEvent {
                    id: record.id.clone(),
                    detail: format!("is already at position {}", earlier.position),
                });
            }
        }
        self.events.wake = true;
        self.ev_write(|w| w.log_append(records))
    }

    /// Sets one entry of the event store's state exactly as it was stored elsewhere.
    pub fn import_event_state(&mut self, space: &str, key: &str, value: &Value) -> Result<()> {
        if let Some(problem) = state_problem(space, key, value) {
            return Err(Error::invalid_input(
                format!("imported event-store state {space}/{key}"),
                problem,
            ));
        }
        self.ev_write(|w| w.state_put(space, key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;

    #[test]
    fn spaces_are_listed_by_name() {
        let mut sorted = super::SPACES;
        sorted.sort_unstable();
        assert_eq!(sorted, super::SPACES);
    }

    #[test]
    fn digests_are_64_lower_case_hex_digits() {
        // Backends may keep the digest as its 32 bytes (SQLite), so only the one
        // spelling that round-trips is taken.
        let record = |digest: String| LogRecord {
            position: 1,
            stream: "s".into(),
            version: 1,
            id: "e1".into(),
            event_type: "t".into(),
            data: Value::Null,
            metadata: serde_json::Map::new(),
            recorded_at: Timestamp::from_micros(0).unwrap(),
            commit: 1,
            batch: None,
            digest,
            removed: false,
        };
        assert_eq!(record_problem(&record("ab".repeat(32))), None);
        for bad in [
            "AB".repeat(32),
            "ab".repeat(31),
            "zz".repeat(32),
            String::new(),
        ] {
            let problem = record_problem(&record(bad.clone())).unwrap_or_default();
            assert!(problem.contains("lower-case hex"), "{bad}: {problem}");
        }
    }
}
