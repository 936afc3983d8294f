//! The event log and the event store's keyed state, as SQL over one connection.
//!
//! **Why positions are gap-free and in commit order here.** The store reads the
//! head (`max(position)`) and inserts `head + 1, …` inside the write transaction,
//! which starts with `BEGIN IMMEDIATE`: from then until `COMMIT` this connection
//! holds SQLite's RESERVED lock, so no other connection of any process can write,
//! and the head it read is the latest committed one. Readers run on WAL snapshots
//! that show a transaction entirely or not at all, so a snapshot that shows
//! position N+1 shows N (committed earlier, or in the same commit). A rolled-back
//! transaction leaves no row, and the next one takes the same positions: there are
//! no gaps, not even transient ones.

use kgstore_core::events::{LogRecord, LogScan, NewRecord, RemoveWhere};
use kgstore_core::{Error, Result};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::Value;

use crate::codec::{
    EVENT_COLUMNS, EVENT_COLUMNS_WITHOUT_DIGEST, record_from_row, to_json, version_to_sql,
};
use crate::error::{Ctx, SqlResult};
use crate::read::prefix_upper_bound;

/// A count or position as SQLite stores it.
fn int(n: u64, what: &str) -> Result<i64> {
    version_to_sql(n, || what.to_owned())
}

/// A limit as SQLite takes it (`-1`: none).
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(-1)
}

pub(crate) fn head(conn: &Connection, ctx: &Ctx) -> Result<u64> {
    let head: i64 = conn
        .prepare_cached("SELECT coalesce(max(position), 0) FROM events")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .ctx(ctx, || "reading the last position of table events".into())?;
    u64::try_from(head).map_err(|_| ctx.corrupt(format!("table events: negative position {head}")))
}

pub(crate) fn scan(conn: &Connection, ctx: &Ctx, scan: &LogScan<'_>) -> Result<Vec<LogRecord>> {
    let doing = || "reading table events".to_owned();
    let columns = if scan.without_digests {
        EVENT_COLUMNS_WITHOUT_DIGEST
    } else {
        EVENT_COLUMNS
    };
    let mut sql = format!("SELECT {columns} FROM events WHERE ");
    let mut values: Vec<SqlValue> = Vec::new();
    let key = match scan.stream {
        Some(stream) => {
            sql.push_str("stream = ? AND ");
            values.push(SqlValue::Text(stream.to_owned()));
            "version"
        }
        None => "position",
    };
    sql.push_str(key);
    sql.push_str(if scan.backwards { " <= ?" } else { " >= ?" });
    values.push(SqlValue::Integer(
        i64::try_from(scan.from).unwrap_or(i64::MAX),
    ));
    if let Some(prefix) = scan.stream_prefix {
        sql.push_str(" AND stream >= ?");
        values.push(SqlValue::Text(prefix.to_owned()));
        if let Some(upper) = prefix_upper_bound(prefix) {
            sql.push_str(" AND stream < ?");
            values.push(SqlValue::Text(upper));
        }
    }
    if !scan.types.is_empty() {
        sql.push_str(" AND type IN (");
        for (i, t) in scan.types.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            values.push(SqlValue::Text(t.clone()));
        }
        sql.push(')');
    }
    sql.push_str(&format!(
        " ORDER BY {key} {} LIMIT ?",
        if scan.backwards { "DESC" } else { "ASC" }
    ));
    values.push(SqlValue::Integer(limit(scan.limit)));
    let mut stmt = conn.prepare_cached(&sql).ctx(ctx, doing)?;
    let mut rows = stmt.query(params_from_iter(values)).ctx(ctx, doing)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx(ctx, doing)? {
        out.push(record_from_row(row, ctx)?);
    }
    Ok(out)
}

pub(crate) fn find_ids(
    conn: &Connection,
    ctx: &Ctx,
    ids: &[&str],
) -> Result<Vec<Option<LogRecord>>> {
    let doing = || "looking up event ids in table events".to_owned();
    let mut found: Vec<LogRecord> = Vec::new();
    if let [id] = ids {
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))
            .ctx(ctx, doing)?;
        let mut rows = stmt.query([id]).ctx(ctx, doing)?;
        while let Some(row) = rows.next().ctx(ctx, doing)? {
            found.push(record_from_row(row, ctx)?);
        }
    } else if !ids.is_empty() {
        let list = to_json(ids, || "event ids".into())?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE id IN (SELECT value FROM json_each(?1))"
            ))
            .ctx(ctx, doing)?;
        let mut rows = stmt.query([list]).ctx(ctx, doing)?;
        while let Some(row) = rows.next().ctx(ctx, doing)? {
            found.push(record_from_row(row, ctx)?);
        }
    }
    Ok(ids
        .iter()
        .map(|id| found.iter().find(|r| r.id == *id).cloned())
        .collect())
}

/// One row of table `events` as it is inserted, borrowed.
struct Row<'a> {
    position: u64,
    stream: &'a str,
    version: u64,
    id: &'a str,
    event_type: &'a str,
    data: &'a str,
    metadata: &'a str,
    recorded_at: i64,
    commit: u64,
    batch: Option<&'a str>,
    digest: &'a str,
    removed: bool,
}

/// The insert of rows into table `events`, on one cached statement.
struct Inserter<'c> {
    stmt: rusqlite::CachedStatement<'c>,
    ctx: &'c Ctx,
}

impl<'c> Inserter<'c> {
    /// Starts inserting rows that must continue the log contiguously (checked
    /// against the first row's position).
    fn new(conn: &'c Connection, ctx: &'c Ctx, first: Option<u64>) -> Result<Self> {
        check_next(first, head(conn, ctx)?)?;
        let stmt = conn
            .prepare_cached(
                "INSERT INTO events (position, stream, version, id, type, data, metadata, \
                 recorded_at, commit_pos, batch, digest, removed) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .ctx(ctx, || "preparing an append to table events".into())?;
        Ok(Self { stmt, ctx })
    }

    fn row(&mut self, r: Row<'_>) -> Result<()> {
        self.stmt
            .execute(params![
                int(r.position, "event position")?,
                r.stream,
                int(r.version, "event version")?,
                r.id,
                r.event_type,
                r.data,
                r.metadata,
                r.recorded_at,
                int(r.commit, "event commit")?,
                r.batch,
                r.digest,
                r.removed,
            ])
            .ctx(self.ctx, || {
                format!(
                    "appending event '{}' at position {} to table events",
                    r.id, r.position
                )
            })?;
        Ok(())
    }
}

/// Inserts `records` as they are (imports and restores), serialising their data
/// and metadata.
pub(crate) fn append(conn: &Connection, ctx: &Ctx, records: &[LogRecord]) -> Result<()> {
    let mut insert = Inserter::new(conn, ctx, records.first().map(|r| r.position))?;
    for r in records {
        let subject = || format!("event '{}' at position {}", r.id, r.position);
        insert.row(Row {
            position: r.position,
            stream: &r.stream,
            version: r.version,
            id: &r.id,
            event_type: &r.event_type,
            data: &to_json(&r.data, subject)?,
            metadata: &to_json(&r.metadata, subject)?,
            recorded_at: r.recorded_at.as_micros(),
            commit: r.commit,
            batch: r.batch.as_deref(),
            digest: &r.digest,
            removed: r.removed,
        })?;
    }
    Ok(())
}

/// Inserts the store's new events, storing the JSON text it made of them.
pub(crate) fn append_new(conn: &Connection, ctx: &Ctx, records: &[NewRecord<'_>]) -> Result<()> {
    let mut insert = Inserter::new(conn, ctx, records.first().map(|r| r.position))?;
    for r in records {
        let owned;
        let (data, metadata) = match r.json {
            Some(json) => (json.data, json.metadata),
            None => {
                let subject = || format!("event '{}' at position {}", r.id, r.position);
                owned = (
                    to_json(r.data, subject)?,
                    to_json(&r.metadata.to_map(), subject)?,
                );
                (owned.0.as_str(), owned.1.as_str())
            }
        };
        insert.row(Row {
            position: r.position,
            stream: r.stream,
            version: r.version,
            id: r.id,
            event_type: r.event_type,
            data,
            metadata,
            recorded_at: r.recorded_at.as_micros(),
            commit: r.commit,
            batch: r.batch,
            digest: r.digest,
            removed: false,
        })?;
    }
    Ok(())
}

pub(crate) fn remove(
    conn: &Connection,
    ctx: &Ctx,
    stream: &str,
    which: RemoveWhere,
) -> Result<u64> {
    let doing = || format!("removing events of stream '{stream}' from table events");
    let changed = match which {
        RemoveWhere::BelowVersion(v) => conn
            .prepare_cached(
                "UPDATE events SET data = 'null', metadata = '{}', removed = 1 \
                 WHERE stream = ?1 AND version < ?2 AND removed = 0",
            )
            .and_then(|mut s| s.execute(params![stream, i64::try_from(v).unwrap_or(i64::MAX)])),
        RemoveWhere::RecordedBefore(t) => conn
            .prepare_cached(
                "UPDATE events SET data = 'null', metadata = '{}', removed = 1 \
                 WHERE stream = ?1 AND recorded_at < ?2 AND removed = 0",
            )
            .and_then(|mut s| s.execute(params![stream, t.as_micros()])),
    }
    .ctx(ctx, doing)?;
    Ok(changed as u64)
}

pub(crate) fn clear(conn: &Connection, ctx: &Ctx) -> Result<()> {
    conn.execute_batch("DELETE FROM events; DELETE FROM event_state;")
        .ctx(ctx, || "clearing tables events and event_state".into())
}

fn parse(ctx: &Ctx, space: &str, key: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        ctx.corrupt(format!(
            "table event_state, entry {space}/{key}: bad JSON: {e}"
        ))
    })
}

pub(crate) fn state_get(
    conn: &Connection,
    ctx: &Ctx,
    space: &str,
    key: &str,
) -> Result<Option<Value>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM event_state WHERE space = ?1 AND key = ?2")
        .and_then(|mut s| s.query_row([space, key], |r| r.get(0)).optional())
        .ctx(ctx, || {
            format!("reading {space}/{key} from table event_state")
        })?;
    text.map(|t| parse(ctx, space, key, &t)).transpose()
}

pub(crate) fn state_scan(
    conn: &Connection,
    ctx: &Ctx,
    space: &str,
    prefix: &str,
    after: Option<&str>,
    n: usize,
) -> Result<Vec<(String, Value)>> {
    let doing = || format!("reading {space}/{prefix}… from table event_state");
    let upper = prefix_upper_bound(prefix);
    let start = match after {
        Some(a) if a >= prefix => a,
        _ => prefix,
    };
    let inclusive = after.is_none_or(|a| a < prefix);
    let sql = format!(
        "SELECT key, value FROM event_state WHERE space = ?1 AND key {} ?2{} ORDER BY key LIMIT ?4",
        if inclusive { ">=" } else { ">" },
        if upper.is_some() {
            " AND key < ?3"
        } else {
            " AND ?3 IS NULL"
        },
    );
    let mut stmt = conn.prepare_cached(&sql).ctx(ctx, doing)?;
    let mut rows = stmt
        .query(params![space, start, upper, limit(n)])
        .ctx(ctx, doing)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx(ctx, doing)? {
        let key: String = row.get(0).ctx(ctx, doing)?;
        let text: String = row.get(1).ctx(ctx, doing)?;
        let value = parse(ctx, space, &key, &text)?;
        out.push((key, value));
    }
    Ok(out)
}

pub(crate) fn state_put(
    conn: &Connection,
    ctx: &Ctx,
    space: &str,
    key: &str,
    value: &Value,
) -> Result<()> {
    let text = to_json(value, || format!("event state {space}/{key}"))?;
    conn.prepare_cached(
        "INSERT INTO event_state (space, key, value) VALUES (?1, ?2, ?3) \
         ON CONFLICT (space, key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut s| s.execute([space, key, &text]))
    .ctx(ctx, || {
        format!("writing {space}/{key} into table event_state")
    })?;
    Ok(())
}

pub(crate) fn state_delete(conn: &Connection, ctx: &Ctx, space: &str, key: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM event_state WHERE space = ?1 AND key = ?2")
        .and_then(|mut s| s.execute([space, key]))
        .ctx(ctx, || {
            format!("deleting {space}/{key} from table event_state")
        })?;
    Ok(n > 0)
}

/// Refuses a record that would leave a gap (a bug above, never user input).
fn check_next(first: Option<u64>, head: u64) -> Result<()> {
    match first {
        Some(position) if position != head + 1 => Err(Error::backend(
            "sqlite",
            format!(
                "event position {position} appended where {} was due: the log must stay contiguous",
                head + 1
            ),
        )),
        _ => Ok(()),
    }
}
