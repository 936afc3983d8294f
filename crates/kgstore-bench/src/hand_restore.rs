//! The floor of a restore into SQLite: a hand-written loader of a kgstore backup
//! (`nodes.jsonl`, `edges.jsonl`) into a new store's own schema, as a careful
//! application would write it with rusqlite alone — the lines parsed into the same
//! structs on a helper thread (as kgstore's restore does), one transaction,
//! prepared single-row inserts, the edges' two secondary indexes dropped during the
//! load and built at its end, foreign keys off, the store's own pragmas
//! (`synchronous = FULL`, WAL, the same page cache). It checks nothing: no
//! digest, no order, no field rule, no reference, no schema; kgstore's restore
//! must do all of these. Its ratio to SQLite's online backup API is how far a
//! row-by-row load can get at all (`docs/benchmarks.md`, "Session 12").

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use kgstore::{Edge, Node};
use rusqlite::{Connection, params};
use serde::de::DeserializeOwned;

use crate::subject::Measured;

/// Items a helper thread parses before handing them over.
const BATCH: usize = 4096;

const INSERT_NAME: &str = "INSERT INTO names(name) VALUES (?1)";
const INSERT_NODE: &str = "INSERT INTO nodes(id, node_type, status, author, source, created_at, \
     updated_at, version, observations, attributes, tags, dependencies) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
const INSERT_TAG: &str = "INSERT OR IGNORE INTO node_tags(node_id, tag) VALUES (?1, ?2)";
const INSERT_DEP: &str = "INSERT OR IGNORE INTO node_deps(node_id, dep_id) VALUES (?1, ?2)";
const INSERT_EDGE: &str = "INSERT INTO edges(from_id, rel, to_id, weight, confidence, \
     flags, source, created_at, updated_at, version, attributes, to_name, from_name) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
const COUNT_TYPE: &str = "INSERT INTO node_type_counts(node_type, nodes) VALUES (?1, ?2) \
     ON CONFLICT(node_type) DO UPDATE SET nodes = nodes + excluded.nodes";
/// The edges' secondary indexes of kgstore's SQLite format 12 (its
/// `edge_indexes!`), dropped for the load and built again at its end.
const DROP_EDGE_INDEXES: &str = "DROP INDEX edges_by_to; DROP INDEX edges_bidirectional_by_to;";
const CREATE_EDGE_INDEXES: &str = "CREATE INDEX edges_by_to ON edges(to_id, rel, from_id, from_name); \
     CREATE INDEX edges_bidirectional_by_to ON edges(to_id, rel, from_id) WHERE flags & 1;";

/// Loads the backup in `backup` into the empty SQLite store at `dest` (created
/// with kgstore's schema beforehand, outside the timing, as kgstore's restore's
/// target is) and times it. The answer is the number of nodes and edges loaded.
pub fn restore(backup: &Path, dest: &Path) -> Result<Measured> {
    let mut conn = Connection::open(dest)?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768; \
         PRAGMA foreign_keys = OFF;",
    )?;
    // Experiments only: more pragmas for the load (`docs/benchmarks.md`, the
    // `sqlite-hand-restore` baseline). kgstore's 1 GiB memory map is not set.
    if let Some(more) = std::env::var_os("KGSTORE_BENCH_HAND_PRAGMAS") {
        conn.execute_batch(&more.to_string_lossy())?;
    }
    let started = Instant::now();
    let tx = conn.transaction()?;
    tx.execute_batch(DROP_EDGE_INDEXES)?;
    let mut ids: HashMap<String, i64> = HashMap::new();
    let mut by_type: HashMap<String, i64> = HashMap::new();
    let mut deps: Vec<(i64, Vec<String>)> = Vec::new();
    let nodes = stream(&backup.join("nodes.jsonl"), |batch: Vec<Node>| {
        let mut name = tx.prepare_cached(INSERT_NAME)?;
        let mut node = tx.prepare_cached(INSERT_NODE)?;
        let mut tag = tx.prepare_cached(INSERT_TAG)?;
        for n in batch {
            name.execute([&n.name])?;
            let id = tx.last_insert_rowid();
            let m = &n.metadata;
            node.execute(params![
                id,
                n.node_type,
                m.status,
                m.author,
                m.source,
                m.created_at.as_micros(),
                m.updated_at.as_micros(),
                i64::try_from(m.version)?,
                serde_json::to_string(&n.observations)?,
                serde_json::to_string(&n.attributes)?,
                serde_json::to_string(&m.tags)?,
                serde_json::to_string(&n.dependencies)?,
            ])?;
            for t in &m.tags {
                tag.execute(params![id, t])?;
            }
            if let Some(count) = by_type.get_mut(&n.node_type) {
                *count += 1;
            } else {
                by_type.insert(n.node_type.clone(), 1);
            }
            if !n.dependencies.is_empty() {
                deps.push((id, n.dependencies));
            }
            ids.insert(n.name, id);
        }
        Ok(())
    })?;
    {
        let mut dep = tx.prepare_cached(INSERT_DEP)?;
        for (id, names) in &deps {
            for d in names {
                let dep_id = ids
                    .get(d)
                    .with_context(|| format!("dependency {d} missing"))?;
                dep.execute(params![id, dep_id])?;
            }
        }
        let mut count = tx.prepare_cached(COUNT_TYPE)?;
        for (node_type, n) in &by_type {
            count.execute(params![node_type, n])?;
        }
    }
    let id_of = |name: &str| {
        ids.get(name)
            .copied()
            .ok_or_else(|| anyhow!("edge end {name} missing"))
    };
    let edges = stream(&backup.join("edges.jsonl"), |batch: Vec<Edge>| {
        let mut insert = tx.prepare_cached(INSERT_EDGE)?;
        for e in &batch {
            let m = &e.metadata;
            insert.execute(params![
                id_of(&e.from)?,
                e.relation_type.as_str(),
                id_of(&e.to)?,
                m.weight,
                m.confidence,
                flags(e),
                m.source,
                m.created_at.as_micros(),
                m.updated_at.as_micros(),
                i64::try_from(m.version)?,
                serde_json::to_string(&e.attributes)?,
                e.to.as_str(),
                e.from.as_str(),
            ])?;
        }
        Ok(())
    })?;
    tx.execute_batch(CREATE_EDGE_INDEXES)?;
    tx.commit()?;
    let secs = started.elapsed().as_secs_f64();
    let items = nodes + edges;
    Ok(Measured {
        ops: items,
        secs,
        checksum: Some(items),
    })
}

/// The `flags` cell of kgstore's SQLite format 12 for `e`: `1` when it is
/// bidirectional, `2` when its content is the default one but for its weight.
fn flags(e: &Edge) -> i64 {
    let m = &e.metadata;
    if m.bidirectional {
        1
    } else if m.confidence.is_none()
        && m.source.is_none()
        && m.updated_at == m.created_at
        && m.version == 1
        && e.attributes.is_empty()
    {
        2
    } else {
        0
    }
}

/// Parses the JSON Lines file at `path` on a helper thread, handing `load`
/// batches in order; how many items.
fn stream<T: DeserializeOwned + Send>(
    path: &Path,
    mut load: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<u64> {
    let (sender, receiver) = mpsc::sync_channel::<Vec<T>>(4);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || parse_lines(path, &sender));
        let mut count = 0u64;
        let mut loaded = Ok(());
        for batch in &receiver {
            count += batch.len() as u64;
            if let Err(e) = load(batch) {
                loaded = Err(e);
                break;
            }
        }
        drop(receiver);
        let read = reader
            .join()
            .map_err(|_| anyhow!("the reader of {} panicked", path.display()))?;
        loaded?;
        read?;
        Ok(count)
    })
}

/// The helper thread of [`stream`]: parses every line of `path`, sending batches.
fn parse_lines<T: DeserializeOwned>(path: &Path, sender: &mpsc::SyncSender<Vec<T>>) -> Result<()> {
    let mut lines = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut line = String::new();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            break;
        }
        batch.push(serde_json::from_str(&line)?);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if sender.send(full).is_err() {
                // The loader stopped; its error is the one reported.
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        // As above.
        let _ = sender.send(batch);
    }
    Ok(())
}
