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

use std::collections::HashMap;
use std::sync::OnceLock;

use kgstore_core::documents::Sha256Digest;
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
    /// The digest's 32 bytes (format 7; the store knows it as their 64 hex digits).
    digest: [u8; 32],
    removed: bool,
}

/// The columns of table `events` an insert gives, in the order [`bind`] binds
/// them: all but `position`, which SQLite assigns (see [`insert`]).
const INSERT_COLUMNS: usize = 11;

/// Rows per `INSERT` statement, largest first: an append's rows go in as few
/// statements as these sizes make (100 rows: three of 32 and four of 1), since
/// SQLite runs one multi-row statement for about four fifths of the CPU of its
/// rows one by one (`docs/benchmarks.md`, "The event store", Session 8). The
/// statements are `INSERT OR FAIL`: a statement that stops at a constraint keeps
/// the rows it inserted before it, which [`insert`] takes back itself, so SQLite
/// keeps no statement journal of the pages a many-row statement changes.
const INSERT_ROWS: [usize; 3] = [32, 8, 1];

/// The statement inserting `rows` rows (one of [`INSERT_ROWS`]), made once.
fn insert_sql(rows: usize) -> &'static str {
    static SQL: OnceLock<[String; INSERT_ROWS.len()]> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        INSERT_ROWS.map(|n| {
            let one = format!("({})", ["?"; INSERT_COLUMNS].join(", "));
            format!(
                "INSERT OR FAIL INTO events (stream, version, id, type, data, metadata, \
                 recorded_at, commit_pos, batch, digest, removed) VALUES {}",
                vec![one.as_str(); n].join(", ")
            )
        })
    });
    INSERT_ROWS
        .iter()
        .position(|&n| n == rows)
        .map_or("", |i| all[i].as_str())
}

/// Binds `r` to the parameters of one row of an insert, the first at `at`.
fn bind(stmt: &mut rusqlite::Statement<'_>, at: usize, r: &Row<'_>) -> Result<()> {
    let version = int(r.version, "event version")?;
    let commit = int(r.commit, "event commit")?;
    let bound = (|| {
        stmt.raw_bind_parameter(at, r.stream)?;
        stmt.raw_bind_parameter(at + 1, version)?;
        stmt.raw_bind_parameter(at + 2, r.id)?;
        stmt.raw_bind_parameter(at + 3, r.event_type)?;
        stmt.raw_bind_parameter(at + 4, r.data)?;
        stmt.raw_bind_parameter(at + 5, r.metadata)?;
        stmt.raw_bind_parameter(at + 6, r.recorded_at)?;
        stmt.raw_bind_parameter(at + 7, commit)?;
        stmt.raw_bind_parameter(at + 8, r.batch)?;
        stmt.raw_bind_parameter(at + 9, &r.digest[..])?;
        stmt.raw_bind_parameter(at + 10, r.removed)
    })();
    bound.map_err(|e| Error::backend("sqlite", format!("binding event '{}': {e}", r.id)))
}

/// Whether an insert failed on `UNIQUE(id)`: an event id already in the log.
fn is_known_id(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, Some(message))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                && message.ends_with("events.id")
    )
}

/// Inserts `rows`, which must continue the log contiguously (checked: the rows'
/// positions one by one, and with `check_head` the first against the head), in as
/// few statements as [`INSERT_ROWS`] allows. SQLite gives each row its position,
/// the largest rowid plus one, which must be the row's own (checked at the end,
/// so a first position other than the head's next fails there too: the store,
/// which read the head in the same transaction, skips the query before): an
/// explicit rowid would make SQLite keep a statement journal for every many-row
/// statement, as it could fail on a rowid that is no integer. With `unless_known`, a row whose id is
/// already in the log makes it answer `false` after taking out the rows inserted
/// before it, so nothing is written; without, that is an error (also after taking
/// them out).
fn insert(
    conn: &Connection,
    ctx: &Ctx,
    rows: &[Row<'_>],
    unless_known: bool,
    check_head: bool,
) -> Result<bool> {
    let Some(first) = rows.first().map(|r| r.position) else {
        return Ok(true);
    };
    if check_head {
        check_next(Some(first), head(conn, ctx)?)?;
    }
    for (r, due) in rows.iter().zip(first..) {
        check_next(Some(r.position), due - 1)?;
    }
    let first_sql = int(first, "event position")?;
    let mut rest = rows;
    for n in INSERT_ROWS {
        if rest.len() < n {
            continue;
        }
        // One statement per size, run for every group of `n` rows (each run
        // rebinds every parameter).
        let mut stmt = conn
            .prepare_cached(insert_sql(n))
            .ctx(ctx, || "preparing an append to table events".into())?;
        while rest.len() >= n {
            let (these, more) = rest.split_at(n);
            for (i, r) in these.iter().enumerate() {
                bind(&mut stmt, 1 + i * INSERT_COLUMNS, r)?;
            }
            let executed = stmt.raw_execute();
            if let Err(e) = &executed
                && e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
                && !conn.is_autocommit()
            {
                // `OR FAIL` keeps the rows a failed statement inserted before the
                // failure (so SQLite needs no statement journal for a statement of
                // many rows): take back every row of this insert, inside the
                // transaction (still open: a constraint does not end it).
                conn.prepare_cached("DELETE FROM events WHERE position >= ?1")
                    .and_then(|mut s| s.execute([first_sql]))
                    .ctx(ctx, || {
                        format!("taking back events appended from position {first} to table events")
                    })?;
                if unless_known && is_known_id(e) {
                    return Ok(false);
                }
            }
            executed.ctx(ctx, || match (these.first(), these.last()) {
                (Some(first), Some(last)) => format!(
                    "appending events at positions {} to {} to table events",
                    first.position, last.position
                ),
                _ => "appending events to table events".to_owned(),
            })?;
            rest = more;
        }
    }
    let last = first + (rows.len() as u64 - 1);
    let given = conn.last_insert_rowid();
    if u64::try_from(given).ok() != Some(last) {
        return Err(Error::backend(
            "sqlite",
            format!("table events gave the event due at position {last} position {given}"),
        ));
    }
    Ok(true)
}

/// Inserts `records` as they are (imports and restores), serialising their data
/// and metadata.
pub(crate) fn append(conn: &Connection, ctx: &Ctx, records: &[LogRecord]) -> Result<()> {
    let mut json = Vec::with_capacity(records.len());
    for r in records {
        let subject = || format!("event '{}' at position {}", r.id, r.position);
        let digest: Sha256Digest = r.digest.parse().map_err(|_| {
            Error::invalid_input(subject(), "its digest is not 64 lower-case hex digits")
        })?;
        json.push((
            to_json(&r.data, subject)?,
            to_json(&r.metadata, subject)?,
            digest.0,
        ));
    }
    let rows: Vec<Row<'_>> = records
        .iter()
        .zip(&json)
        .map(|(r, (data, metadata, digest))| Row {
            position: r.position,
            stream: &r.stream,
            version: r.version,
            id: &r.id,
            event_type: &r.event_type,
            data,
            metadata,
            recorded_at: r.recorded_at.as_micros(),
            commit: r.commit,
            batch: r.batch.as_deref(),
            digest: *digest,
            removed: r.removed,
        })
        .collect();
    insert(conn, ctx, &rows, false, true).map(drop)
}

/// Inserts the store's new events, storing the JSON text it made of them; with
/// `unless_known`, `false` (and nothing inserted) if one of their ids is already in
/// the log.
pub(crate) fn append_new(
    conn: &Connection,
    ctx: &Ctx,
    records: &[NewRecord<'_>],
    unless_known: bool,
) -> Result<bool> {
    // Only where the store could not hand over its text (see `NewRecord::json`).
    let mut owned = Vec::new();
    for r in records.iter().filter(|r| r.json.is_none()) {
        let subject = || format!("event '{}' at position {}", r.id, r.position);
        owned.push((
            to_json(r.data, subject)?,
            to_json(&r.metadata.to_map(), subject)?,
        ));
    }
    let mut owned = owned.iter();
    let mut rows = Vec::with_capacity(records.len());
    for r in records {
        let (data, metadata) = match r.json {
            Some(json) => (json.data, json.metadata),
            None => owned
                .next()
                .map(|(data, metadata)| (data.as_str(), metadata.as_str()))
                .ok_or_else(|| Error::backend("sqlite", "an event's JSON text went missing"))?,
        };
        rows.push(Row {
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
            digest: r.digest_bytes,
            removed: false,
        });
    }
    insert(conn, ctx, &rows, unless_known, false)
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

/// Entries of table `event_state` that the writer connection read or wrote, kept
/// from one write transaction to the next so that an append does not read its
/// stream's state, the change feed's setting and its event types' schemas again
/// (five statements of a 10-event append's fourteen before).
///
/// **Why it cannot go stale.** The entries are those this connection's last
/// committed transaction saw (read, or wrote itself). A write transaction takes
/// the cache when it first touches the state and first reads `PRAGMA
/// data_version`, which changes exactly when *another* connection (of this
/// process or any other) has committed since; then it drops every entry. Every
/// write of this connection to the table (`state_put`, `state_delete`, `clear`)
/// goes through the transaction's copy; the copy goes back to the backend only
/// after a successful `COMMIT`: a rolled-back transaction leaves an empty cache.
/// The backend drops the cache too whenever it replaces the writer connection
/// (`data_version` counts per connection).
#[derive(Debug, Default)]
pub(crate) struct StateCache {
    /// `PRAGMA data_version` when the entries were last known current (`None`:
    /// never).
    last_version: Option<i64>,
    /// Whether this transaction has checked the entries already.
    checked: bool,
    /// By space, then key: the value, or `None` for a key known to be absent.
    entries: HashMap<String, HashMap<String, Option<Value>>>,
    /// How many keys `entries` holds.
    len: usize,
}

/// Keys the cache holds at most; past that it starts afresh (a store with many
/// streams reads the states of those it appends to now).
const STATE_CACHE_KEYS: usize = 4096;

impl StateCache {
    /// Makes the entries current for this transaction (once per transaction):
    /// drops them if another connection committed since they were.
    fn check(&mut self, conn: &Connection, ctx: &Ctx) -> Result<()> {
        if self.checked {
            return Ok(());
        }
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .ctx(ctx, || "reading the data version".into())?;
        if self.last_version != Some(version) {
            self.forget();
        }
        self.last_version = Some(version);
        self.checked = true;
        Ok(())
    }

    /// Drops every entry.
    fn forget(&mut self) {
        self.entries.clear();
        self.len = 0;
    }

    fn get(&self, space: &str, key: &str) -> Option<&Option<Value>> {
        self.entries.get(space)?.get(key)
    }

    fn set(&mut self, space: &str, key: &str, value: Option<Value>) {
        if let Some(known) = self
            .entries
            .get_mut(space)
            .and_then(|keys| keys.get_mut(key))
        {
            *known = value;
            return;
        }
        if self.len >= STATE_CACHE_KEYS {
            self.forget();
        }
        let keys = match self.entries.get_mut(space) {
            Some(keys) => keys,
            None => self.entries.entry(space.to_owned()).or_default(),
        };
        if keys.insert(key.to_owned(), value).is_none() {
            self.len += 1;
        }
    }

    /// The cache as a committed transaction leaves it: current as of that commit.
    pub(crate) fn committed(mut self) -> Self {
        self.checked = false;
        self
    }
}

/// [`state_get`] through the writer's cache.
pub(crate) fn state_get_cached(
    conn: &Connection,
    ctx: &Ctx,
    cache: &mut StateCache,
    space: &str,
    key: &str,
) -> Result<Option<Value>> {
    cache.check(conn, ctx)?;
    if let Some(found) = cache.get(space, key) {
        return Ok(found.clone());
    }
    let value = state_get(conn, ctx, space, key)?;
    cache.set(space, key, value.clone());
    Ok(value)
}

/// [`state_put`] through the writer's cache.
pub(crate) fn state_put_cached(
    conn: &Connection,
    ctx: &Ctx,
    cache: &mut StateCache,
    space: &str,
    key: &str,
    value: &Value,
) -> Result<()> {
    cache.check(conn, ctx)?;
    // (A failed write fails the transaction, which then gives no cache back.)
    state_put(conn, ctx, space, key, value)?;
    cache.set(space, key, Some(value.clone()));
    Ok(())
}

/// [`state_delete`] through the writer's cache.
pub(crate) fn state_delete_cached(
    conn: &Connection,
    ctx: &Ctx,
    cache: &mut StateCache,
    space: &str,
    key: &str,
) -> Result<bool> {
    cache.check(conn, ctx)?;
    let deleted = state_delete(conn, ctx, space, key)?;
    cache.set(space, key, None);
    Ok(deleted)
}

/// [`clear`] through the writer's cache.
pub(crate) fn clear_cached(conn: &Connection, ctx: &Ctx, cache: &mut StateCache) -> Result<()> {
    cache.check(conn, ctx)?;
    cache.forget();
    clear(conn, ctx)
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
