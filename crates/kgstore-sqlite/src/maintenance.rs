//! `check`, `optimize` and the native backup.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kgstore_core::{Error, Problem, Result};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::backend::{Pooled, SqliteBackend};
use crate::error::{Ctx, SqlResult};
use crate::schema::{self, APPLICATION_ID};

/// How many problems of one kind a check lists.
const LISTED: i64 = 100;

/// Everything wrong with the file: SQLite's own checks, then kgstore's tables.
pub(crate) fn check(backend: &SqliteBackend) -> Result<Vec<Problem>> {
    let ctx = backend.ctx();
    let pooled = Pooled::new(backend)?;
    let conn = pooled.conn()?;
    // One snapshot for every step (the pool ends the transaction on drop).
    conn.execute_batch("BEGIN")
        .ctx(ctx, || "starting the check's read transaction".into())?;
    let file = ctx.path.display().to_string();
    let mut problems = Vec::new();

    let doing = || "checking the file's header".to_owned();
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .ctx(ctx, doing)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .ctx(ctx, doing)?;
    // The format this handle opened: a read-only open leaves an older format as it
    // is; a writable one migrates it.
    let format = backend.format();
    if app_id != APPLICATION_ID || version != format {
        problems.push(Problem::new(
            &file,
            format!(
                "header says application_id {app_id:#010x}, format version {version}; \
                 expected {APPLICATION_ID:#010x}, {format}"
            ),
        ));
    }

    if crate::search::indexed(version) {
        crate::search::refresh(conn, ctx)?;
    }
    let doing = || "running PRAGMA integrity_check".to_owned();
    let found: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect());
    match found.ctx(ctx, doing) {
        Ok(lines) => {
            for line in lines.into_iter().filter(|l| l != "ok") {
                problems.push(Problem::new(&file, format!("integrity check: {line}")));
            }
        }
        // Damage bad enough to stop the check is itself the finding.
        Err(e) if e.kind() == kgstore_core::ErrorKind::Corrupt => {
            problems.push(Problem::new(&file, format!("integrity check stopped: {e}")));
            return Ok(problems);
        }
        Err(e) => return Err(e),
    }

    let doing = || "running PRAGMA foreign_key_check".to_owned();
    let mut stmt = conn.prepare("PRAGMA foreign_key_check").ctx(ctx, doing)?;
    let found: Vec<(String, Option<i64>, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .ctx(ctx, doing)?;
    drop(stmt);
    for (table, row, parent) in found.into_iter().take(LISTED as usize) {
        let row = row.map_or_else(|| "?".to_owned(), |r| r.to_string());
        problems.push(Problem::new(
            format!("table {table}, row {row}"),
            format!("refers to a row of table {parent} that does not exist"),
        ));
    }

    let expected =
        schema::expected_objects(format).ctx(ctx, || "building the expected schema".into())?;
    let actual = schema::schema_objects(conn).ctx(ctx, || "reading the schema".into())?;
    for object in &actual {
        if !expected.contains(object) {
            problems.push(Problem::new(
                format!("{} {}", object.0, object.1),
                "is not part of kgstore's schema, or differs from it",
            ));
        }
    }
    for object in &expected {
        if !actual.iter().any(|a| a.0 == object.0 && a.1 == object.1) {
            problems.push(Problem::new(
                format!("{} {}", object.0, object.1),
                "is missing",
            ));
        }
    }
    if !problems.is_empty() {
        // The tables cannot be trusted enough to check what they say.
        return Ok(problems);
    }

    let documents: &[(&str, &str)] = if ctx.documents { DOC_INVARIANTS } else { &[] };
    let events: &[(&str, &str)] = if format >= schema::EVENTS_SINCE {
        EVENT_INVARIANTS
    } else {
        &[]
    };
    let edge_names: &[(&str, &str)] = if format >= schema::NAMED_EDGES_SINCE {
        EDGE_NAME_INVARIANTS
    } else {
        &[]
    };
    let counts: &[(&str, &str)] = if format >= schema::TYPE_COUNTS_SINCE {
        TYPE_COUNT_INVARIANTS
    } else {
        &[]
    };
    let edge_flags: &[(&str, &str)] = if format >= schema::EDGE_FLAGS_SINCE {
        EDGE_FLAG_INVARIANTS
    } else {
        &[]
    };
    for (sql, detail) in INVARIANTS
        .iter()
        .chain(documents)
        .chain(events)
        .chain(edge_names)
        .chain(counts)
        .chain(edge_flags)
    {
        let doing = || format!("checking that {detail}");
        let mut stmt = conn.prepare(sql).ctx(ctx, doing)?;
        let found: Vec<(i64, String)> = stmt
            .query_map([LISTED], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .ctx(ctx, doing)?;
        for (id, location) in found {
            problems.push(Problem::new(
                format!("{location} (row {id})"),
                format!("breaks the rule that {detail}"),
            ));
        }
    }
    // The search index is checked against the nodes only when they read cleanly.
    if problems.is_empty() && crate::search::indexed(version) {
        for (location, detail) in crate::search::problems(conn, ctx, version)? {
            problems.push(Problem::new(
                location,
                format!("{detail} (`optimize` rebuilds the search index)"),
            ));
        }
    }
    Ok(problems)
}

/// The rules of the documents' tables (format 2 and later).
const DOC_INVARIANTS: &[(&str, &str)] = &[
    (
        "SELECT d.id, 'document ' || quote(d.key) FROM documents d
         WHERE length(d.sha256) != 32 OR typeof(d.sha256) != 'blob' OR d.size < 0
            OR d.size != coalesce(length(d.content),
                  (SELECT coalesce(sum(length(c.data)), 0) FROM document_chunks c WHERE c.doc_id = d.id))
            OR (d.content IS NOT NULL AND EXISTS (SELECT 1 FROM document_chunks c WHERE c.doc_id = d.id))
         LIMIT ?1",
        "a document's size is that of its bytes, kept either in its row or in its chunks",
    ),
    (
        "SELECT c.doc_id, 'chunk ' || c.seq || ' of document ' || quote(d.key)
         FROM document_chunks c JOIN documents d ON d.id = c.doc_id
         WHERE c.seq < 0 OR c.seq >= (SELECT count(*) FROM document_chunks x WHERE x.doc_id = c.doc_id)
         LIMIT ?1",
        "a document's chunks are numbered from 0 without gaps",
    ),
];

/// kgstore's own rules about its tables: each query lists `(row id, where)` of offenders.
const INVARIANTS: &[(&str, &str)] = &[
    (
        "SELECT n.id, 'node ' || quote(k.name) FROM nodes n JOIN names k ON k.id = n.id
         WHERE NOT (json_valid(n.observations) AND json_type(n.observations) = 'array'
                AND json_valid(n.attributes) AND json_type(n.attributes) = 'object'
                AND json_valid(n.tags) AND json_type(n.tags) = 'array'
                AND json_valid(n.dependencies) AND json_type(n.dependencies) = 'array')
         LIMIT ?1",
        "a node's JSON columns hold an array of observations, an object of attributes \
         and arrays of tags and dependencies",
    ),
    (
        "SELECT e.from_id, 'edge ' || quote(f.name) || ' -[' || e.rel || ']-> ' || quote(t.name)
         FROM edges e JOIN names f ON f.id = e.from_id JOIN names t ON t.id = e.to_id
         WHERE NOT (json_valid(e.attributes) AND json_type(e.attributes) = 'object')
         LIMIT ?1",
        "an edge's attributes are a JSON object",
    ),
    (
        "SELECT n.id, 'node ' || quote(k.name) FROM nodes n JOIN names k ON k.id = n.id
         WHERE CASE WHEN json_valid(n.tags) AND json_type(n.tags) = 'array' THEN
             (SELECT count(*) FROM node_tags t WHERE t.node_id = n.id)
                 != (SELECT count(DISTINCT j.value) FROM json_each(n.tags) j)
             OR EXISTS (SELECT 1 FROM json_each(n.tags) j WHERE NOT EXISTS
                 (SELECT 1 FROM node_tags t WHERE t.node_id = n.id AND t.tag = j.value))
             ELSE 0 END
         LIMIT ?1",
        "table node_tags lists exactly each node's tags",
    ),
    (
        "SELECT n.id, 'node ' || quote(k.name) FROM nodes n JOIN names k ON k.id = n.id
         WHERE CASE WHEN json_valid(n.dependencies) AND json_type(n.dependencies) = 'array' THEN
             (SELECT count(*) FROM node_deps d WHERE d.node_id = n.id)
                 != (SELECT count(DISTINCT j.value) FROM json_each(n.dependencies) j)
             OR EXISTS (SELECT 1 FROM json_each(n.dependencies) j WHERE NOT EXISTS
                 (SELECT 1 FROM node_deps d JOIN names dk ON dk.id = d.dep_id
                  WHERE d.node_id = n.id AND dk.name = j.value))
             ELSE 0 END
         LIMIT ?1",
        "table node_deps lists exactly each node's dependencies",
    ),
    (
        "SELECT k.id, 'name ' || quote(k.name) FROM names k
         WHERE NOT EXISTS (SELECT 1 FROM nodes WHERE id = k.id)
           AND NOT EXISTS (SELECT 1 FROM edges WHERE from_id = k.id)
           AND NOT EXISTS (SELECT 1 FROM edges WHERE to_id = k.id)
           AND NOT EXISTS (SELECT 1 FROM node_deps WHERE dep_id = k.id)
         LIMIT ?1",
        "every row of table names is referred to by a node, an edge or a dependency",
    ),
];

/// The rule of format 9's edge rows, in the same form: the names they carry are
/// those their ids have in `names`.
const EDGE_NAME_INVARIANTS: &[(&str, &str)] = &[(
    "SELECT e.from_id, 'edge ' || quote(f.name) || ' -[' || e.rel || ']-> ' || quote(t.name)
     FROM edges e JOIN names f ON f.id = e.from_id JOIN names t ON t.id = e.to_id
     WHERE e.from_name IS NOT f.name OR e.to_name IS NOT t.name
     LIMIT ?1",
    "an edge row's from_name and to_name are the names of its from_id and to_id",
)];

/// The rule of format 12's edge rows, in the same form: column `flags` holds
/// only its two bits, and bit `FLAG_PLAIN` (2) is set exactly when the row's
/// content is the default one but for its weight, which reads of a node's edges
/// then take without reading it.
const EDGE_FLAG_INVARIANTS: &[(&str, &str)] = &[(
    concat!(
        "SELECT e.from_id, 'edge ' || quote(f.name) || ' -[' || e.rel || ']-> ' || quote(t.name)
     FROM edges e JOIN names f ON f.id = e.from_id JOIN names t ON t.id = e.to_id
     WHERE e.flags NOT IN (0, 1, 2)
        OR (e.flags = 2) != (e.flags & 1 = 0 AND ",
        schema::plain_edge_sql!(),
        ")
     LIMIT ?1"
    ),
    "an edge row's column flags is 1 (bidirectional), 2 (plain: its content is the \
     default one but for its weight: not bidirectional, no confidence, no source, \
     updated when created, version 1, no attributes) or 0 (neither)",
)];

/// The rule of table `node_type_counts` (format 10 and later), in the same form:
/// the row id given is the number of nodes of that type.
const TYPE_COUNT_INVARIANTS: &[(&str, &str)] = &[(
    "WITH r(node_type, nodes) AS (SELECT node_type, count(*) FROM nodes GROUP BY node_type)
     SELECT coalesce(r.nodes, 0), 'node type ' || quote(t.node_type) || ' (counted '
            || coalesce(c.nodes, 0) || ')'
     FROM (SELECT node_type FROM r UNION SELECT node_type FROM node_type_counts) t
     LEFT JOIN r ON r.node_type = t.node_type
     LEFT JOIN node_type_counts c ON c.node_type = t.node_type
     WHERE coalesce(r.nodes, 0) != coalesce(c.nodes, 0) OR c.nodes = 0
     LIMIT ?1",
    "table node_type_counts holds the number of nodes of each type that has nodes",
)];

/// The event store's rules about its tables, in the same form.
const EVENT_INVARIANTS: &[(&str, &str)] = &[
    (
        "SELECT coalesce(max(position), 0), 'table events' FROM events
         HAVING count(*) != coalesce(max(position), 0) LIMIT ?1",
        "event positions run from 1 without a gap",
    ),
    (
        "SELECT max(position), 'stream ' || quote(stream) FROM events GROUP BY stream
         HAVING count(*) != max(version) OR min(version) != 1 LIMIT ?1",
        "each stream's versions run from 1 without a gap",
    ),
    (
        "SELECT position, 'event at position ' || position FROM events
         WHERE NOT (json_valid(data) AND json_valid(metadata) AND json_type(metadata) = 'object'
                AND removed IN (0, 1) AND commit_pos BETWEEN 1 AND position)
         LIMIT ?1",
        "an event's data is JSON, its metadata a JSON object, and its commit at or before it",
    ),
    (
        "SELECT 0, 'event state ' || quote(space) || '/' || quote(key) FROM event_state
         WHERE NOT json_valid(value) LIMIT ?1",
        "the event store's state is JSON",
    ),
];

/// Statistics for the query planner, compaction when worthwhile, a truncated log.
pub(crate) fn optimize(backend: &SqliteBackend) -> Result<()> {
    let ctx = backend.ctx();
    let conn = backend.take_writer()?;
    let outcome = optimize_on(&conn, ctx);
    // Rebuilding and merging the search index fill FTS5's tables of pending terms.
    backend.release_writer_after(conn, true);
    outcome
}

fn optimize_on(conn: &Connection, ctx: &Ctx) -> Result<()> {
    let doing = || "maintaining the search index".to_owned();
    conn.execute_batch("BEGIN IMMEDIATE").ctx(ctx, doing)?;
    match crate::search::optimize(conn, ctx) {
        Ok(()) => conn.execute_batch("COMMIT").ctx(ctx, doing)?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    conn.execute_batch("PRAGMA analysis_limit = 1000; ANALYZE;")
        .ctx(ctx, || "running ANALYZE".into())?;
    let doing = || "measuring free space".to_owned();
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .ctx(ctx, doing)?;
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .ctx(ctx, doing)?;
    if free >= 64 && free * 4 >= pages {
        conn.execute_batch("VACUUM")
            .ctx(ctx, || "running VACUUM".into())?;
    }
    // Readers may keep parts of the log in use; then it is truncated next time.
    let (busy, log_frames, checkpointed): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .ctx(ctx, || "checkpointing the write-ahead log".into())?;
    tracing::info!(
        vacuumed = free >= 64 && free * 4 >= pages,
        free_pages = free,
        pages,
        log_frames,
        checkpointed,
        complete = busy == 0,
        "analyzed and checkpointed"
    );
    Ok(())
}

/// Copies the store to `dest` with SQLite's online backup API.
pub(crate) fn backup(backend: &SqliteBackend, dest: &Path) -> Result<()> {
    if dest.symlink_metadata().is_ok() {
        return Err(Error::io(
            dest,
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the backup destination already exists",
            ),
        ));
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let temp = temp_beside(dest);
    let outcome = copy_into(backend, &temp).and_then(|()| publish(&temp, dest));
    if outcome.is_err() {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut path = temp.clone().into_os_string();
            path.push(suffix);
            let _ = fs::remove_file(path);
        }
    }
    outcome
}

fn copy_into(backend: &SqliteBackend, temp: &Path) -> Result<()> {
    let ctx = backend.ctx();
    let dest_ctx = Ctx {
        path: temp.to_path_buf(),
        lock_timeout: ctx.lock_timeout,
        documents: ctx.documents,
        edge_names: ctx.edge_names,
        edge_flags: ctx.edge_flags,
    };
    let pooled = Pooled::new(backend)?;
    let source = pooled.conn()?;
    let mut copy = Connection::open_with_flags(
        temp,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ctx(&dest_ctx, || "creating the backup file".into())?;
    {
        let doing = || "copying the database with the online backup API".to_owned();
        let backup = Backup::new(source, &mut copy).ctx(&dest_ctx, doing)?;
        let started = Instant::now();
        // All pages in one step: one read snapshot of the source, so the copy is
        // consistent while writers go on.
        loop {
            match backup.step(-1).ctx(&dest_ctx, doing)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    if started.elapsed() >= ctx.lock_timeout {
                        return Err(ctx.locked());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {}
            }
        }
    }
    copy.close()
        .map_err(|(_, e)| dest_ctx.error(|| "closing the backup file".into(), e))?;
    let file = fs::File::open(temp).map_err(|e| Error::io(temp, e))?;
    file.sync_all().map_err(|e| Error::io(temp, e))?;
    Ok(())
}

/// Moves the finished copy to `dest` without replacing anything there.
fn publish(temp: &Path, dest: &Path) -> Result<()> {
    match fs::hard_link(temp, dest) {
        Ok(()) => {
            fs::remove_file(temp).map_err(|e| Error::io(temp, e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(Error::io(dest, e)),
        // A file system without hard links: a plain rename.
        Err(_) => fs::rename(temp, dest).map_err(|e| Error::io(dest, e))?,
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Make the new directory entry durable too.
        if let Ok(dir) = fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// A temporary path beside `dest`.
fn temp_beside(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kgstore".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dest.with_file_name(format!(".{name}.partial-{}-{nanos}", std::process::id()))
}
