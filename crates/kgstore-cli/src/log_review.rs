//! `kgstore log-review`: a summary of a JSON log file (`--log-file`): errors by kind,
//! the slowest operations with their spans, lock contention, recovery actions.
//!
//! It reads the fields kgstore's events carry (`docs/observability.md`):
//! `error_kind` on failures, `op` and `elapsed_ms` at the end of operations,
//! `waited_ms`, `holder` and `acquired` on lock waits, `action` on recovery.
//! Lines that are not JSON events are counted and skipped, so a file that other
//! programs also write to (or one cut short by a crash) can still be reviewed.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::Serialize;
use serde_json::{Map, Value};

/// The failures of one error kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ErrorSummary {
    /// The error kind (`io`, `locked`, `validation`, …).
    pub kind: String,
    /// How many events reported it.
    pub count: u64,
    /// How many of them per operation (`write`, `restore`, …).
    pub by_op: BTreeMap<String, u64>,
    /// When it was last seen.
    pub last_at: Option<String>,
    /// The last message logged with it (present at `warn` and `error`, or at `debug`).
    pub last_error: Option<String>,
}

/// One timed operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimedOp {
    /// When it ended.
    pub at: Option<String>,
    /// `read`, `write`, `backup`, `open`, ….
    pub op: String,
    /// How long it took.
    pub elapsed_ms: f64,
    /// The event's message (`slow operation`, `backup finished`, `operation failed`, …).
    pub message: String,
    /// The spans it ran in, outermost first, with their fields (`open{scheme=sqlite}`).
    pub spans: String,
    /// Its other fields (counts, the query, the error kind).
    pub detail: String,
}

/// Waits for locks.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LockSummary {
    /// Waits reported.
    pub waits: u64,
    /// Of which ended without the lock.
    pub gave_up: u64,
    /// Their total time.
    pub total_ms: f64,
    /// The longest.
    pub max_ms: f64,
    /// Per holder: waits, total and longest milliseconds.
    pub by_holder: BTreeMap<String, HolderSummary>,
}

/// Waits for one holder of a lock.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HolderSummary {
    /// Waits.
    pub waits: u64,
    /// Total milliseconds.
    pub total_ms: f64,
    /// The longest wait.
    pub max_ms: f64,
}

/// What a log file says.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Review {
    /// Lines read.
    pub lines: u64,
    /// Lines that were JSON log events.
    pub events: u64,
    /// Lines that were not (skipped).
    pub skipped: u64,
    /// The first and last event's timestamps.
    pub first_at: Option<String>,
    /// See `first_at`.
    pub last_at: Option<String>,
    /// Events per level.
    pub by_level: BTreeMap<String, u64>,
    /// Failures by error kind, most frequent first.
    pub errors: Vec<ErrorSummary>,
    /// Events of operations over their slow threshold.
    pub slow_operations: u64,
    /// The slowest operations, slowest first.
    pub slowest: Vec<TimedOp>,
    /// Lock contention.
    pub locks: LockSummary,
    /// Recovery actions by kind (`journal_replayed`, `temp_removed`, …).
    pub recovery: BTreeMap<String, u64>,
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// `name{key=value,…}` for one span object of the JSON format.
fn span_label(span: &Map<String, Value>) -> String {
    let name = span.get("name").and_then(Value::as_str).unwrap_or("?");
    let fields: Vec<String> = span
        .iter()
        .filter(|(k, _)| k.as_str() != "name")
        .map(|(k, v)| format!("{k}={}", text(Some(v)).unwrap_or_default()))
        .collect();
    if fields.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", fields.join(","))
    }
}

/// Fields that say what an operation did, for the slowest list.
const DETAIL_SKIP: [&str; 5] = ["message", "op", "elapsed_ms", "threshold_ms", "error"];

/// Reads a JSON log and summarises it, keeping the `top` slowest operations.
pub fn review(input: impl BufRead, top: usize) -> std::io::Result<Review> {
    let mut review = Review::default();
    let mut errors: BTreeMap<String, ErrorSummary> = BTreeMap::new();
    let mut timed: Vec<TimedOp> = Vec::new();
    for line in input.split(b'\n') {
        let line = line?;
        if line.trim_ascii().is_empty() {
            continue;
        }
        review.lines += 1;
        // A line that is not UTF-8 is not an event either (serde_json refuses it).
        let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(&line) else {
            review.skipped += 1;
            continue;
        };
        let Some(Value::Object(fields)) = event.get("fields") else {
            review.skipped += 1;
            continue;
        };
        review.events += 1;
        let at = text(event.get("timestamp"));
        if review.first_at.is_none() {
            review.first_at.clone_from(&at);
        }
        review.last_at.clone_from(&at);
        let level = text(event.get("level")).unwrap_or_else(|| "?".into());
        *review.by_level.entry(level).or_default() += 1;
        let message = text(fields.get("message")).unwrap_or_default();
        let op = text(fields.get("op"));

        if let Some(kind) = text(fields.get("error_kind")) {
            let summary = errors.entry(kind.clone()).or_insert_with(|| ErrorSummary {
                kind,
                ..ErrorSummary::default()
            });
            summary.count += 1;
            *summary
                .by_op
                .entry(op.clone().unwrap_or_else(|| "?".into()))
                .or_default() += 1;
            summary.last_at.clone_from(&at);
            if let Some(error) = text(fields.get("error")) {
                summary.last_error = Some(error);
            }
        }
        if message == "slow operation" {
            review.slow_operations += 1;
        }
        if let (Some(op), Some(elapsed_ms)) = (op, fields.get("elapsed_ms").and_then(Value::as_f64))
        {
            let spans = match event.get("spans") {
                Some(Value::Array(spans)) => spans
                    .iter()
                    .filter_map(Value::as_object)
                    .map(span_label)
                    .collect::<Vec<_>>()
                    .join(" > "),
                _ => String::new(),
            };
            let detail = fields
                .iter()
                .filter(|(k, _)| !DETAIL_SKIP.contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={}", text(Some(v)).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" ");
            timed.push(TimedOp {
                at: at.clone(),
                op,
                elapsed_ms,
                message: message.clone(),
                spans,
                detail,
            });
        }
        if let Some(waited_ms) = fields.get("waited_ms").and_then(Value::as_f64) {
            let locks = &mut review.locks;
            locks.waits += 1;
            if fields.get("acquired").and_then(Value::as_bool) == Some(false) {
                locks.gave_up += 1;
            }
            locks.total_ms += waited_ms;
            locks.max_ms = locks.max_ms.max(waited_ms);
            let holder = text(fields.get("holder")).unwrap_or_else(|| "unknown".into());
            let entry = locks.by_holder.entry(holder).or_default();
            entry.waits += 1;
            entry.total_ms += waited_ms;
            entry.max_ms = entry.max_ms.max(waited_ms);
        }
        if message == "recovery action"
            && let Some(action) = text(fields.get("action"))
        {
            *review.recovery.entry(action).or_default() += 1;
        }
    }
    review.errors = errors.into_values().collect();
    review
        .errors
        .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
    timed.sort_by(|a, b| b.elapsed_ms.total_cmp(&a.elapsed_ms));
    timed.truncate(top);
    review.slowest = timed;
    Ok(review)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LOG: &str = r#"{"timestamp":"2026-12-02T10:00:00Z","level":"INFO","fields":{"message":"open finished","op":"open","elapsed_ms":3.5},"target":"kgstore_core::observe","spans":[{"name":"open","scheme":"sqlite"}]}
not json at all
{"timestamp":"2026-12-02T10:00:01Z","level":"INFO","fields":{"message":"waited for a lock","resource":"/s/LOCK","holder":"pid 7","waited_ms":120.0,"acquired":true}}
{"timestamp":"2026-12-02T10:00:02Z","level":"WARN","fields":{"message":"gave up waiting for a lock","resource":"/s/LOCK","holder":"pid 7","waited_ms":500.0,"acquired":false}}
{"timestamp":"2026-12-02T10:00:02Z","level":"WARN","fields":{"message":"transaction failed","op":"write","stage":"begin","error_kind":"locked","error":"store locked by pid 7","elapsed_ms":500.2},"spans":[{"name":"write","backend":"jsonfs"}]}
{"timestamp":"2026-12-02T10:00:03Z","level":"INFO","fields":{"message":"transaction refused","op":"write","stage":"work","error_kind":"validation"}}
{"timestamp":"2026-12-02T10:00:04Z","level":"WARN","fields":{"message":"slow operation","op":"read","query":"traverse","elapsed_ms":80.25,"threshold_ms":50.0}}
{"timestamp":"2026-12-02T10:00:05Z","level":"INFO","fields":{"message":"recovery action","action":"journal_replayed","path":"/s/journal/1.commit"}}
{"timestamp":"2026-12-02T10:00:06Z","level":"ERROR","fields":{"message":"transaction failed","op":"write","stage":"commit","error_kind":"io","error":"No space left on device","elapsed_ms":9.0}}
"#;

    #[test]
    fn summarises_errors_slow_operations_locks_and_recovery() {
        let r = review(LOG.as_bytes(), 3).unwrap();
        assert_eq!((r.lines, r.events, r.skipped), (9, 8, 1));
        assert_eq!(r.first_at.as_deref(), Some("2026-12-02T10:00:00Z"));
        assert_eq!(r.last_at.as_deref(), Some("2026-12-02T10:00:06Z"));
        let kinds: Vec<(&str, u64)> = r
            .errors
            .iter()
            .map(|e| (e.kind.as_str(), e.count))
            .collect();
        assert_eq!(kinds, [("io", 1), ("locked", 1), ("validation", 1)]);
        assert_eq!(
            r.errors[0].last_error.as_deref(),
            Some("No space left on device")
        );
        assert_eq!(r.errors[1].by_op["write"], 1);
        assert_eq!(r.slow_operations, 1);
        let slowest: Vec<(&str, f64)> = r
            .slowest
            .iter()
            .map(|t| (t.op.as_str(), t.elapsed_ms))
            .collect();
        assert_eq!(slowest, [("write", 500.2), ("read", 80.25), ("write", 9.0)]);
        assert_eq!(r.slowest[0].spans, "write{backend=jsonfs}");
        assert!(
            r.slowest[1].detail.contains("query=traverse"),
            "{:?}",
            r.slowest[1]
        );
        assert_eq!((r.locks.waits, r.locks.gave_up), (2, 1));
        assert_eq!(r.locks.max_ms, 500.0);
        assert_eq!(r.locks.by_holder["pid 7"].waits, 2);
        assert_eq!(r.recovery["journal_replayed"], 1);
        assert_eq!(r.by_level["WARN"], 3);
    }

    /// A line that is not UTF-8 (cut mid-character by a crash, or bytes from
    /// elsewhere in the file) is one more line that is not an event: skipped and
    /// counted, as the module says, not the end of the review with an I/O error.
    #[test]
    fn a_line_that_is_not_utf8_is_skipped_like_any_other() {
        let mut log = LOG.as_bytes().to_vec();
        log.extend_from_slice(
            b"{\"timestamp\":\"2026-12-02T10:00:07Z\",\"fields\":{\"message\":\"caf\xc3",
        );
        log.extend_from_slice(b"\n\xff\xfe binary\n");
        log.extend_from_slice(LOG.lines().next().unwrap().as_bytes());
        log.push(b'\n');
        let r = review(&log[..], 3).unwrap();
        assert_eq!((r.lines, r.events, r.skipped), (12, 9, 3));
    }

    #[test]
    fn an_empty_log_reviews_to_nothing() {
        assert_eq!(review(&b""[..], 10).unwrap(), Review::default());
    }
}
