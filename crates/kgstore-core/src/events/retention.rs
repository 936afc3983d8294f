//! Retention: how long streams keep their events, truncation, and deletion
//! (tombstones). Removal keeps each event's identity (see
//! [`LogRecord::removed`](crate::events::LogRecord::removed)), so positions stay
//! contiguous, readers and consumer groups are told what was removed, and retries of
//! removed events stay idempotent.

use crate::error::{Error, Result};
use crate::events::backend::{EventLogWrite, RemoveWhere};
use crate::events::kv;
use crate::events::model::{ExpectedVersion, Retention, SYSTEM_PREFIX, StreamInfo, check_stream};
use crate::events::read::{EventRead, stream_info};
use crate::store::{Store, WriteTx};
use crate::timestamp::Timestamp;
use crate::validate;

/// Applies a stream's limits now; how many events were removed. Writes nothing
/// for a stream without limits.
pub(crate) fn enforce(
    w: &mut dyn EventLogWrite,
    info: &mut StreamInfo,
    now: Timestamp,
) -> Result<u64> {
    if !info.retention.is_set() {
        return Ok(0);
    }
    let mut removed = 0;
    let keep_from = info.retention.keep_from_version(info.version);
    if keep_from > info.removed_before {
        removed += w.log_remove(&info.stream, RemoveWhere::BelowVersion(keep_from))?;
        info.removed_before = keep_from;
    }
    if let Some(cutoff) = info.retention.keep_since(now) {
        removed += w.log_remove(&info.stream, RemoveWhere::RecordedBefore(cutoff))?;
    }
    Ok(removed)
}

/// Keeps the index of streams with a maximum age (which reads consult) current.
fn index_age(w: &mut dyn EventLogWrite, info: &StreamInfo) -> Result<()> {
    match info.retention.max_age_secs {
        Some(secs) => w.state_put(kv::AGED, &info.stream, &secs.into()),
        None => w.state_delete(kv::AGED, &info.stream).map(drop),
    }
}

fn blank(stream: &str, now: Timestamp) -> StreamInfo {
    StreamInfo {
        stream: stream.to_owned(),
        version: 0,
        last_position: 0,
        created_at: now,
        updated_at: now,
        deleted: false,
        retention: Retention::default(),
        removed_before: 0,
    }
}

impl WriteTx<'_> {
    /// Sets a stream's retention limits (replacing earlier ones) and applies them at
    /// once. A stream need not have events yet. Limits apply to `$changes` too.
    pub fn set_retention(&mut self, stream: &str, retention: Retention) -> Result<StreamInfo> {
        check_stream(stream)?;
        if retention.max_count == Some(0) {
            return Err(Error::invalid_input(
                "retention max_count",
                "must be at least 1 (delete the stream to remove everything)",
            ));
        }
        let now = self.now();
        let info = self.with_events(|r, _| stream_info(r, stream))?;
        if info.as_ref().is_some_and(|i| i.deleted) {
            return Err(Error::StreamDeleted {
                stream: stream.to_owned(),
            });
        }
        let mut info = info.unwrap_or_else(|| blank(stream, now));
        info.retention = retention;
        self.events.wake = true;
        self.ev_write(|w| {
            enforce(w, &mut info, now)?;
            index_age(w, &info)?;
            kv::put(w, kv::STREAMS, stream, &info)?;
            Ok(info)
        })
    }

    /// Removes a stream's events below `version` (keeping later limits); the stream's
    /// `truncate_before` only ever rises.
    pub fn truncate_stream(&mut self, stream: &str, before_version: u64) -> Result<StreamInfo> {
        check_stream(stream)?;
        let mut retention = self
            .with_events(|r, _| stream_info(r, stream))?
            .map(|i| i.retention)
            .unwrap_or_default();
        retention.truncate_before =
            Some(retention.truncate_before.unwrap_or(0).max(before_version));
        self.set_retention(stream, retention)
    }

    /// Deletes a stream for good (a tombstone): its events are removed, and it can be
    /// neither read nor appended to again. `expected` is checked like an append's.
    /// kgstore's own streams cannot be deleted.
    pub fn delete_stream(&mut self, stream: &str, expected: ExpectedVersion) -> Result<StreamInfo> {
        check_stream(stream)?;
        if stream.starts_with(SYSTEM_PREFIX) {
            return Err(Error::invalid_input(
                format!("stream '{}'", validate::shorten(stream)),
                "kgstore's own streams cannot be deleted (set a retention limit instead)",
            ));
        }
        let now = self.now();
        let info = self.with_events(|r, _| stream_info(r, stream))?;
        if info.as_ref().is_some_and(|i| i.deleted) {
            return Err(Error::StreamDeleted {
                stream: stream.to_owned(),
            });
        }
        let version = info.as_ref().map_or(0, |i| i.version);
        if !expected.accepts(version) {
            return Err(Error::WrongExpectedVersion {
                stream: stream.to_owned(),
                expected: expected.to_string(),
                actual: version,
            });
        }
        let mut info = info.unwrap_or_else(|| blank(stream, now));
        info.deleted = true;
        info.updated_at = now;
        info.removed_before = info.version + 1;
        self.events.wake = true;
        self.ev_write(|w| {
            w.log_remove(stream, RemoveWhere::BelowVersion(u64::MAX))?;
            w.state_delete(kv::AGED, stream)?;
            kv::put(w, kv::STREAMS, stream, &info)?;
            Ok(info)
        })
    }

    /// Applies every stream's maximum age now (reads already hide older events);
    /// how many events were removed.
    pub fn apply_retention(&mut self) -> Result<u64> {
        let now = self.now();
        let aged: Vec<(String, u64)> = self.with_events(|r, _| kv::all(r, kv::AGED, ""))?;
        let mut infos = Vec::with_capacity(aged.len());
        for (stream, _) in &aged {
            if let Some(info) = self.with_events(|r, _| stream_info(r, stream))? {
                infos.push(info);
            }
        }
        self.ev_write(|w| {
            let mut removed = 0;
            for info in &mut infos {
                removed += enforce(w, info, now)?;
                kv::put(w, kv::STREAMS, &info.stream.clone(), info)?;
            }
            Ok(removed)
        })
    }
}

impl Store {
    /// Sets a stream's retention in its own transaction; see [`WriteTx::set_retention`].
    pub fn set_retention(&self, stream: &str, retention: Retention) -> Result<StreamInfo> {
        self.write(|tx| tx.set_retention(stream, retention))
    }

    /// Truncates a stream in its own transaction; see [`WriteTx::truncate_stream`].
    pub fn truncate_stream(&self, stream: &str, before_version: u64) -> Result<StreamInfo> {
        self.write(|tx| tx.truncate_stream(stream, before_version))
    }

    /// Deletes a stream in its own transaction; see [`WriteTx::delete_stream`].
    pub fn delete_stream(&self, stream: &str, expected: ExpectedVersion) -> Result<StreamInfo> {
        self.write(|tx| tx.delete_stream(stream, expected))
    }

    /// Applies maximum ages in its own transaction; see [`WriteTx::apply_retention`].
    pub fn apply_retention(&self) -> Result<u64> {
        self.write(|tx| tx.apply_retention())
    }

    /// Whether the stream exists and is not deleted.
    pub fn stream_exists(&self, stream: &str) -> Result<bool> {
        Ok(self
            .stream_info(stream)?
            .is_some_and(|i| !i.deleted && i.version > 0))
    }
}
