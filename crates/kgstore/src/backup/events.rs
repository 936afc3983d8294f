//! The event store's part of a backup (format version 3 on, [`EVENTS_SINCE`](super::EVENTS_SINCE)): the whole log and the
//! keyed state, written from the graph's snapshot, verified, and restored in the
//! same transaction as the graph.
//!
//! * `events.jsonl` — one [`LogRecord`] per line in position order, removed
//!   events included (their identity keeps positions contiguous and retries
//!   idempotent after a restore);
//! * `event_state.jsonl` — one `{"space", "key", "value"}` per line, by space and
//!   key: streams, consumer groups with their deliveries and dead letters, batches,
//!   event schemas, settings.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use kgstore_core::events::import::{
    EXPORT_PAGE, export_records, export_state, record_problem, state_problem,
};
use kgstore_core::events::{EventLogRead, EventRead, LogRecord};
use kgstore_core::{Error, ErrorKind, ReadTx, Result, WriteTx};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::files::{HashingWriter, Syncs};
use super::verify::{VerifyReport, for_each_line};
use super::{Counts, FileEntry, Phase, Progress};

/// The log, one record per line.
pub const EVENTS_FILE: &str = "events.jsonl";
/// The event store's keyed state, one entry per line.
pub const EVENT_STATE_FILE: &str = "event_state.jsonl";

/// One line of `event_state.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateLine {
    /// The space.
    pub space: String,
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
}

/// Runs `f` on the snapshot's event log, or reports that the backend keeps none.
fn with_log<R>(
    snapshot: &ReadTx<'_>,
    f: impl FnOnce(&dyn EventLogRead) -> Result<R>,
) -> Result<Option<R>> {
    match snapshot.with_events(|r, _| f(r)) {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == ErrorKind::Unsupported => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes both files from the snapshot (empty when the backend keeps no events).
pub(crate) fn write(
    snapshot: &ReadTx<'_>,
    folder: &Path,
    counts: &mut Counts,
    entries: &mut Vec<FileEntry>,
    syncs: &mut Syncs,
    progress: &mut impl FnMut(Progress),
) -> Result<()> {
    let total = with_log(snapshot, |r| r.log_head())?.unwrap_or(0);
    let mut out = HashingWriter::create(folder, EVENTS_FILE)?;
    let mut from = 1;
    while from <= total {
        let Some(page) = with_log(snapshot, |r| export_records(r, from))? else {
            break;
        };
        let Some(last) = page.last().map(|r| r.position) else {
            break;
        };
        for record in &page {
            out.write_json_line(record)?;
            counts.events += 1;
        }
        progress(Progress {
            phase: Phase::Events,
            done: counts.events,
            total,
        });
        from = last + 1;
    }
    entries.push(out.finish(syncs)?);
    let state = with_log(snapshot, export_state)?.unwrap_or_default();
    let mut out = HashingWriter::create(folder, EVENT_STATE_FILE)?;
    for (space, key, value) in state {
        out.write_json_line(&StateLine { space, key, value })?;
        counts.event_state += 1;
    }
    entries.push(out.finish(syncs)?);
    if counts.events != total {
        return Err(Error::backend(
            "backup",
            format!(
                "the snapshot's log ends at position {total} but {} events were listed",
                counts.events
            ),
        ));
    }
    Ok(())
}

/// Checks both files: every line parses and follows the rules, positions run from 1
/// without a gap, ids are unique, each stream's versions run from 1, state entries
/// are in order and each is what kgstore writes.
pub(crate) fn verify(
    dir: &Path,
    report: &mut VerifyReport,
    progress: &mut impl FnMut(Progress),
) -> Result<()> {
    let mut ids: HashSet<String> = HashSet::new();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    for_each_line(dir, EVENTS_FILE, report, |number, line, report| {
        let at = format!("{EVENTS_FILE} line {number}");
        let record: LogRecord = match serde_json::from_slice(line) {
            Ok(record) => record,
            Err(e) => return report.problem(at, format!("is not an event: {e}")),
        };
        report.counts.events += 1;
        if record.position != report.counts.events {
            report.problem(
                &at,
                format!(
                    "holds position {} where {} was due: the log must run from 1 without a gap",
                    record.position, report.counts.events
                ),
            );
        }
        if let Some(problem) = record_problem(&record) {
            report.problem(&at, problem);
        }
        if !ids.insert(record.id.clone()) {
            report.problem(&at, format!("event id '{}' is repeated", record.id));
        }
        let version = versions.entry(record.stream.clone()).or_insert(0);
        if record.version != *version + 1 {
            report.problem(
                &at,
                format!(
                    "stream '{}' goes from version {} to {}",
                    record.stream, version, record.version
                ),
            );
        }
        *version = record.version;
        if report.counts.events % EXPORT_PAGE as u64 == 0 {
            progress(Progress {
                phase: Phase::Events,
                done: report.counts.events,
                total: report.counts.events,
            });
        }
    })?;
    let mut previous: Option<(String, String)> = None;
    for_each_line(dir, EVENT_STATE_FILE, report, |number, line, report| {
        let at = format!("{EVENT_STATE_FILE} line {number}");
        let entry: StateLine = match serde_json::from_slice(line) {
            Ok(entry) => entry,
            Err(e) => return report.problem(at, format!("is not an event-store entry: {e}")),
        };
        report.counts.event_state += 1;
        if let Some(problem) = state_problem(&entry.space, &entry.key, &entry.value) {
            report.problem(&at, format!("{}/{}: {problem}", entry.space, entry.key));
        }
        let key = (entry.space, entry.key);
        if previous.as_ref().is_some_and(|p| *p >= key) {
            report.problem(
                &at,
                format!("{}/{} is out of order or repeated", key.0, key.1),
            );
        }
        previous = Some(key);
    })
}

/// Loads both files into the transaction, after emptying its event log. A target
/// that keeps no events can take a backup only if the backup holds none.
pub(crate) fn restore(
    dir: &Path,
    tx: &mut WriteTx<'_>,
    backend: &str,
    counts: &Counts,
    empty_only: bool,
    format_version: u32,
    progress: &mut impl FnMut(Progress),
) -> Result<(u64, u64)> {
    match tx.last_position() {
        Ok(head) => {
            if empty_only && (head > 0 || !tx.list_streams("", None, 1)?.is_empty()) {
                return Err(Error::invalid_input(
                    "restore target",
                    "its event log is not empty; restore into an empty store, or replace its content (`RestoreMode::Replace`; `kgstore restore --replace`)",
                ));
            }
        }
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            if counts.events == 0 && counts.event_state == 0 {
                return Ok((0, 0));
            }
            return Err(Error::unsupported(
                format!(
                    "restoring a backup with {} events and {} event-store entries (the \
                     backend keeps no events)",
                    counts.events, counts.event_state
                ),
                backend,
            ));
        }
        Err(e) => return Err(e),
    }
    tx.replace_event_log()?;
    if format_version < super::EVENTS_SINCE {
        // An older backup holds no events: the restored store has none.
        return Ok((0, 0));
    }
    let mut batch: Vec<LogRecord> = Vec::with_capacity(EXPORT_PAGE);
    let mut events = 0u64;
    super::restore::read_lines(&dir.join(EVENTS_FILE), |line, at| {
        let record: LogRecord =
            serde_json::from_slice(line).map_err(|e| Error::corrupt(at, e.to_string()))?;
        batch.push(record);
        if batch.len() == EXPORT_PAGE {
            tx.import_events(&batch)?;
            events += batch.len() as u64;
            batch.clear();
            progress(Progress {
                phase: Phase::Events,
                done: events,
                total: counts.events,
            });
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        tx.import_events(&batch)?;
        events += batch.len() as u64;
    }
    let mut state = 0u64;
    super::restore::read_lines(&dir.join(EVENT_STATE_FILE), |line, at| {
        let entry: StateLine =
            serde_json::from_slice(line).map_err(|e| Error::corrupt(at, e.to_string()))?;
        tx.import_event_state(&entry.space, &entry.key, &entry.value)?;
        state += 1;
        Ok(())
    })?;
    Ok((events, state))
}
