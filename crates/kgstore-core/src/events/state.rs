//! [`EventState`]: the event log and keyed state in persistent maps, for the memory
//! backend and for backends that keep their indexes in memory (the JSON-files one).

use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;
use serde_json::Value;

use crate::backend::Problem;
use crate::error::{Error, Result};
use crate::events::backend::{
    EventLogRead, EventLogWrite, LogRecord, LogScan, NewRecord, RemoveWhere,
};

/// The event log and the keyed state in persistent ordered maps: cloning is cheap,
/// which makes snapshots and copy-on-write transactions cheap.
#[derive(Clone, Default)]
pub struct EventState {
    log: OrdMap<u64, Arc<LogRecord>>,
    /// `(stream, version)` → position.
    streams: OrdMap<(String, u64), u64>,
    /// Event id → position.
    ids: OrdMap<String, u64>,
    /// `(space, key)` → value.
    state: OrdMap<(String, String), Value>,
}

impl EventState {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the log and the state are empty.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty() && self.state.is_empty()
    }

    /// The record at a position.
    pub fn record(&self, position: u64) -> Option<&LogRecord> {
        self.log.get(&position).map(|r| &**r)
    }

    /// Inserts or replaces a record as it is (loading stored files, applying another
    /// process's commit), keeping the indexes current. Unlike
    /// [`EventLogWrite::log_append`] it does not require the next position.
    pub fn put_record(&mut self, record: LogRecord) {
        if let Some(old) = self.log.get(&record.position).cloned() {
            self.streams.remove(&(old.stream.clone(), old.version));
            self.ids.remove(&old.id);
        }
        self.streams
            .insert((record.stream.clone(), record.version), record.position);
        self.ids.insert(record.id.clone(), record.position);
        self.log.insert(record.position, Arc::new(record));
    }

    /// Takes the record at a position out, with its index entries (applying another
    /// process's commit that removed its file: a restore that replaced the log with
    /// a shorter one).
    pub fn remove_record(&mut self, position: u64) {
        if let Some(old) = self.log.remove(&position) {
            self.streams.remove(&(old.stream.clone(), old.version));
            self.ids.remove(&old.id);
        }
    }

    /// Refuses positions that do not continue the log contiguously (a bug above,
    /// never user input).
    fn check_next(&self, positions: impl Iterator<Item = u64>) -> Result<()> {
        for (next, position) in (self.log_head()? + 1..).zip(positions) {
            if position != next {
                return Err(Error::backend(
                    "events",
                    format!(
                        "event position {position} appended where {next} was due: the log must stay contiguous"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Every state entry, by space and key.
    pub fn state_entries(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.state
            .iter()
            .map(|((space, key), value)| (space.as_str(), key.as_str(), value))
    }

    /// Every record, by position.
    pub fn records(&self) -> impl Iterator<Item = &LogRecord> {
        self.log.values().map(|r| &**r)
    }

    /// Removes the payload of `stream`'s events matching `which` (see
    /// [`EventLogWrite::log_remove`]); the positions removed now.
    pub fn remove_matching(&mut self, stream: &str, which: RemoveWhere) -> Vec<u64> {
        let positions: Vec<u64> = self
            .streams
            .range((stream.to_owned(), 0)..)
            .take_while(|((s, _), _)| s == stream)
            .map(|(_, p)| *p)
            .collect();
        let mut removed = Vec::new();
        for position in positions {
            let Some(record) = self.log.get(&position) else {
                continue;
            };
            let hit = match which {
                RemoveWhere::BelowVersion(v) => record.version < v,
                RemoveWhere::RecordedBefore(t) => record.recorded_at < t,
            };
            if hit && !record.removed {
                let mut record = LogRecord::clone(record);
                strip(&mut record);
                self.log.insert(position, Arc::new(record));
                removed.push(position);
            }
        }
        removed
    }

    /// Problems with the log: gaps, and indexes that disagree with the records.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (expected, (position, record)) in (1u64..).zip(self.log.iter()) {
            if *position != expected || record.position != *position {
                problems.push(Problem::new(
                    format!("event log at position {expected}"),
                    format!("holds position {position} (the log must be contiguous from 1)"),
                ));
                break;
            }
        }
        let streams_agree = self.streams.len() == self.log.len()
            && self.streams.iter().all(|((stream, version), position)| {
                self.log
                    .get(position)
                    .is_some_and(|r| r.stream == *stream && r.version == *version)
            });
        let ids_agree = self.ids.len() == self.log.len()
            && self
                .ids
                .iter()
                .all(|(id, position)| self.log.get(position).is_some_and(|r| r.id == *id));
        if !streams_agree || !ids_agree {
            problems.push(Problem::new(
                "in-memory event indexes",
                "do not match the event log",
            ));
        }
        problems
    }
}

impl EventLogRead for EventState {
    fn log_head(&self) -> Result<u64> {
        Ok(self.log.get_max().map_or(0, |(p, _)| *p))
    }

    fn log_scan(&self, scan: &LogScan<'_>) -> Result<Vec<LogRecord>> {
        let mut out = Vec::new();
        if scan.limit == 0 {
            return Ok(out);
        }
        let mut push = |record: &Arc<LogRecord>| {
            if scan.matches(record) {
                out.push(LogRecord::clone(record));
            }
            out.len() < scan.limit
        };
        match scan.stream {
            Some(stream) => {
                let key = |v: u64| (stream.to_owned(), v);
                let positions: Box<dyn Iterator<Item = (&(String, u64), &u64)>> = if scan.backwards
                {
                    Box::new(
                        self.streams
                            .range((Bound::Included(key(0)), Bound::Included(key(scan.from))))
                            .rev(),
                    )
                } else {
                    Box::new(
                        self.streams
                            .range((Bound::Included(key(scan.from)), Bound::Unbounded))
                            .take_while(|((s, _), _)| s == stream),
                    )
                };
                for (_, position) in positions {
                    if let Some(record) = self.log.get(position)
                        && !push(record)
                    {
                        break;
                    }
                }
            }
            None => {
                let records: Box<dyn Iterator<Item = (&u64, &Arc<LogRecord>)>> = if scan.backwards {
                    Box::new(self.log.range(..=scan.from).rev())
                } else {
                    Box::new(self.log.range(scan.from..))
                };
                for (_, record) in records {
                    if !push(record) {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn log_find_ids(&self, ids: &[&str]) -> Result<Vec<Option<LogRecord>>> {
        Ok(ids
            .iter()
            .map(|id| {
                self.ids
                    .get(*id)
                    .and_then(|p| self.log.get(p))
                    .map(|r| LogRecord::clone(r))
            })
            .collect())
    }

    fn state_get(&self, space: &str, key: &str) -> Result<Option<Value>> {
        // Nothing to build the key for (every write transaction asks for the
        // change feed's setting; most stores keep no state).
        if self.state.is_empty() {
            return Ok(None);
        }
        Ok(self.state.get(&(space.to_owned(), key.to_owned())).cloned())
    }

    fn state_scan(
        &self,
        space: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>> {
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded((space.to_owned(), a.to_owned())),
            _ => Bound::Included((space.to_owned(), prefix.to_owned())),
        };
        Ok(self
            .state
            .range((start, Bound::Unbounded))
            .take_while(|((s, k), _)| s == space && k.starts_with(prefix))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl EventLogWrite for EventState {
    fn log_append(&mut self, records: &[LogRecord]) -> Result<()> {
        self.check_next(records.iter().map(|r| r.position))?;
        for record in records {
            self.put_record(record.clone());
        }
        Ok(())
    }

    fn log_append_new(&mut self, records: &[NewRecord<'_>]) -> Result<()> {
        self.check_next(records.iter().map(|r| r.position))?;
        for record in records {
            self.put_record(record.to_record());
        }
        Ok(())
    }

    fn log_remove(&mut self, stream: &str, which: RemoveWhere) -> Result<u64> {
        Ok(self.remove_matching(stream, which).len() as u64)
    }

    fn log_clear(&mut self) -> Result<()> {
        *self = Self::default();
        Ok(())
    }

    fn state_put(&mut self, space: &str, key: &str, value: &Value) -> Result<()> {
        self.state
            .insert((space.to_owned(), key.to_owned()), value.clone());
        Ok(())
    }

    fn state_delete(&mut self, space: &str, key: &str) -> Result<bool> {
        Ok(self
            .state
            .remove(&(space.to_owned(), key.to_owned()))
            .is_some())
    }
}

/// Drops a record's payload and metadata, keeping its identity.
pub fn strip(record: &mut LogRecord) {
    record.data = Value::Null;
    record.metadata.clear();
    record.removed = true;
}
