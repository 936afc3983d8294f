//! The SQLite baseline: kgstore's own schema driven by hand-written rusqlite, as
//! a careful application without kgstore would (WAL, `synchronous = FULL`, a
//! statement cache, stable plans, one transaction per bulk load), decoding rows
//! into the same structs. Its figures are what the SQLite backend is compared with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kgstore::search::text::attribute_texts;
use kgstore::sqlite::schema::{
    APPLICATION_ID, COMPACT_EDGES_DDL, DDL, NAMED_EDGES_DDL, OLDEST_FORMAT_VERSION, TYPE_COUNTS_DDL,
};
use kgstore::{Edge, EdgeMetadata, Node, NodeMetadata, RelationType, Timestamp};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// One connection on a file with kgstore's schema.
pub struct RawStore {
    conn: Connection,
    path: PathBuf,
    /// Whether the file also has [`FTS_DDL`]'s full-text table, filled as nodes are inserted.
    fts: bool,
}

/// The full-text table an application would add by hand: FTS5 with its own
/// Unicode tokenizer (accents removed), no stored copy of the text (as
/// kgstore's), a node's name, type, observations and attribute texts as columns,
/// its rowid the node's.
pub const FTS_DDL: &str = "CREATE VIRTUAL TABLE search USING fts5(name, type, observations, \
     attributes, tokenize = 'unicode61 remove_diacritics 2', content = '', contentless_delete = 1);";

/// The hand-written ranked query: FTS5's `bm25()` with kgstore's field weights,
/// the best 20, their names.
const FTS_QUERY: &str = "SELECT k.name FROM (SELECT rowid AS id, \
     bm25(search, 5.0, 2.0, 1.0, 1.0) AS rank FROM search WHERE search MATCH ?1 \
     ORDER BY rank LIMIT ?2) s JOIN names k ON k.id = s.id ORDER BY s.rank";

const INSERT_FTS: &str =
    "INSERT INTO search(rowid, name, type, observations, attributes) VALUES (?1, ?2, ?3, ?4, ?5)";

const GET_NODE: &str = "SELECT k.name, n.node_type, n.status, n.author, n.source, n.created_at, \
     n.updated_at, n.version, n.observations, n.attributes, n.tags, n.dependencies \
     FROM names k JOIN nodes n ON n.id = k.id WHERE k.name = ?1";

const LIST_OF_TYPE: &str = "SELECT k.name, n.node_type, n.status, n.author, n.source, \
     n.created_at, n.updated_at, n.version, n.observations, n.attributes, n.tags, n.dependencies \
     FROM names k CROSS JOIN nodes n ON n.id = k.id \
     WHERE k.name > ?1 AND n.node_type = ?2 ORDER BY k.name LIMIT ?3";

const OUT_EDGES: &str = "SELECT e.from_name, e.rel, e.to_name, e.weight, e.confidence, \
     e.bidirectional, e.source, e.created_at, e.updated_at, e.version, e.attributes \
     FROM edges e WHERE e.from_id = (SELECT id FROM names WHERE name = ?1) \
     ORDER BY e.rel, e.to_name";

const OUT_NAMES: &str = "SELECT e.to_name FROM edges e \
     WHERE e.from_id = (SELECT id FROM names WHERE name = ?1) ORDER BY e.rel, e.to_name";

/// The distinct ends of the two-edge walks along outgoing edges only (the baseline
/// before session 13, kept as the `raw-sqlite-out-only` row): 0 for a missing
/// start, and no walk back along a bidirectional edge.
const TWO_HOP_COUNT: &str = "SELECT count(DISTINCT e2.to_id) FROM edges e1 \
     JOIN edges e2 ON e2.from_id = e1.to_id \
     WHERE e1.from_id = (SELECT id FROM names WHERE name = ?1)";

/// `reach_count`'s answer by hand: the distinct ends of the two-step walks, each
/// step out along an edge or back along a bidirectional one (their partial index,
/// `edges_bidirectional_by_to`), from the start's row; no row for a missing start.
const TWO_HOP_WALK_COUNT: &str = "WITH s(id) AS (SELECT n.id FROM names k \
         JOIN nodes n ON n.id = k.id WHERE k.name = ?1) \
     SELECT (SELECT count(DISTINCT id) FROM ( \
         SELECT e2.to_id AS id FROM edges e1 JOIN edges e2 ON e2.from_id = e1.to_id \
             WHERE e1.from_id = s.id \
         UNION ALL SELECT e2.from_id FROM edges e1 \
             JOIN edges e2 ON e2.to_id = e1.to_id AND e2.bidirectional \
             WHERE e1.from_id = s.id \
         UNION ALL SELECT e2.to_id FROM edges e1 JOIN edges e2 ON e2.from_id = e1.from_id \
             WHERE e1.to_id = s.id AND e1.bidirectional \
         UNION ALL SELECT e2.from_id FROM edges e1 \
             JOIN edges e2 ON e2.to_id = e1.from_id AND e2.bidirectional \
             WHERE e1.to_id = s.id AND e1.bidirectional)) \
     FROM s";

const WITHIN_TWO_COUNT: &str = "WITH s(id) AS (SELECT id FROM names WHERE name = ?1) \
     SELECT count(*) FROM ( \
         SELECT e.to_id AS id FROM s JOIN edges e ON e.from_id = s.id \
         UNION \
         SELECT e2.to_id FROM s JOIN edges e1 ON e1.from_id = s.id \
             JOIN edges e2 ON e2.from_id = e1.to_id) \
     WHERE id != (SELECT id FROM s)";

/// The closure of a node's dependencies, a row per member and dependency (the
/// baseline before session 13, kept as the `raw-sqlite-any-order` row): no row
/// for the start, so a missing start and a start without dependencies both give
/// no rows, and `UNION` drops the start from its own closure (a cycle through it).
const DEPENDENCY_CLOSURE: &str = "WITH RECURSIVE closure(id) AS ( \
         SELECT dep_id FROM node_deps WHERE node_id = (SELECT id FROM names WHERE name = ?1) \
         UNION \
         SELECT d.dep_id FROM closure c JOIN node_deps d ON d.node_id = c.id) \
     SELECT c.id, k.name, d.dep_id FROM closure c JOIN names k ON k.id = c.id \
     LEFT JOIN node_deps d ON d.node_id = c.id";

/// [`DEPENDENCY_CLOSURE`] after the start's own row (`id, NULL, NULL`; none when
/// there is no such node): what a user needs to tell a missing start from a start
/// without dependencies, and to see a cycle through the start.
const DEPENDENCY_CLOSURE_WITH_START: &str = "WITH RECURSIVE closure(id) AS ( \
         SELECT dep_id FROM node_deps WHERE node_id = (SELECT id FROM names WHERE name = ?1) \
         UNION \
         SELECT d.dep_id FROM closure c JOIN node_deps d ON d.node_id = c.id) \
     SELECT n.id, NULL, NULL FROM names k JOIN nodes n ON n.id = k.id WHERE k.name = ?1 \
     UNION ALL \
     SELECT c.id, k.name, d.dep_id FROM closure c JOIN names k ON k.id = c.id \
     LEFT JOIN node_deps d ON d.node_id = c.id";

const INSERT_NAME: &str = "INSERT INTO names(name) VALUES (?1)";
const INSERT_NODE: &str = "INSERT INTO nodes(id, node_type, status, author, source, created_at, \
     updated_at, version, observations, attributes, tags, dependencies) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
const INSERT_DEP: &str =
    "INSERT INTO node_deps(node_id, dep_id) VALUES (?1, (SELECT id FROM names WHERE name = ?2))";
const INSERT_EDGE: &str = "INSERT INTO edges(from_id, rel, to_id, weight, confidence, \
     bidirectional, source, created_at, updated_at, version, attributes, to_name, from_name) \
     VALUES ((SELECT id FROM names WHERE name = ?1), ?2, (SELECT id FROM names WHERE name = ?3), \
     ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?3, ?1)";

const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;";

/// Opens a connection configured as any careful rusqlite user of this schema
/// would: the pragmas, a statement cache, and stable plans (with the bundled
/// SQLite's STAT4, a cached statement whose plan could depend on a bound value is
/// otherwise re-prepared every time it is reused).
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    conn.execute_batch(PRAGMAS)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

/// The columns of [`GET_NODE`] and [`LIST_OF_TYPE`] into a node.
fn node_from_row(r: &rusqlite::Row<'_>) -> Result<Node> {
    let obs: String = r.get(8)?;
    let attrs: String = r.get(9)?;
    let tags: String = r.get(10)?;
    let deps: String = r.get(11)?;
    Ok(Node {
        name: r.get(0)?,
        node_type: r.get(1)?,
        observations: serde_json::from_str(&obs)?,
        attributes: serde_json::from_str(&attrs)?,
        dependencies: serde_json::from_str(&deps)?,
        metadata: NodeMetadata {
            created_at: Timestamp::from_micros(r.get(5)?)?,
            updated_at: Timestamp::from_micros(r.get(6)?)?,
            version: u64::try_from(r.get::<_, i64>(7)?)?,
            author: r.get(3)?,
            source: r.get(4)?,
            tags: serde_json::from_str(&tags)?,
            status: r.get(2)?,
        },
    })
}

impl RawStore {
    /// Creates a new file with kgstore's graph schema (format 1: no search
    /// tables), and with `fts` the hand-written full-text table too.
    pub fn create(path: &Path, fts: bool) -> Result<Self> {
        let conn = connect(path)?;
        // The graph's tables as kgstore's current format has them (format 1's, with
        // format 5's edges and indexes, format 9's names in each edge row and
        // format 10's node counts by type instead of an index by type), without the
        // documents', search's and events' tables.
        conn.execute_batch(&format!(
            "{DDL}
             {COMPACT_EDGES_DDL}
             {NAMED_EDGES_DDL}
             {TYPE_COUNTS_DDL}
             PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = {OLDEST_FORMAT_VERSION};"
        ))?;
        if fts {
            conn.execute_batch(FTS_DDL)?;
        }
        Ok(Self {
            conn,
            path: path.to_owned(),
            fts,
        })
    }

    /// Opens the file again (as after a restart).
    pub fn open(path: &Path) -> Result<Self> {
        let conn = connect(path)?;
        let fts = conn
            .prepare("SELECT 1 FROM sqlite_schema WHERE name = 'search'")?
            .exists([])?;
        Ok(Self {
            conn,
            path: path.to_owned(),
            fts,
        })
    }

    /// The names of the best `limit` nodes for `query` by the hand-written FTS5
    /// query: its words quoted and joined by OR, the last one a prefix.
    pub fn fts_search(&self, query: &str, limit: usize) -> Result<Vec<String>> {
        let words: Vec<String> = query
            .split_whitespace()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let mut expression = words.join(" OR ");
        expression.push('*');
        let mut stmt = self.conn.prepare_cached(FTS_QUERY)?;
        let names = stmt
            .query_map(params![expression, i64::try_from(limit)?], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(names)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn insert_node(conn: &Connection, node: &Node, now: i64, fts: bool) -> Result<()> {
        conn.prepare_cached(INSERT_NAME)?.execute([&node.name])?;
        let id = conn.last_insert_rowid();
        if fts {
            let attributes: Vec<_> = attribute_texts(&node.attributes);
            conn.prepare_cached(INSERT_FTS)?.execute(params![
                id,
                node.name,
                node.node_type,
                node.observations.join("\n"),
                attributes.join(" "),
            ])?;
        }
        conn.prepare_cached(INSERT_NODE)?.execute(params![
            id,
            node.node_type,
            node.metadata.status,
            node.metadata.author,
            node.metadata.source,
            now,
            now,
            1,
            serde_json::to_string(&node.observations)?,
            serde_json::to_string(&node.attributes)?,
            serde_json::to_string(&node.metadata.tags)?,
            serde_json::to_string(&node.dependencies)?,
        ])?;
        if !node.dependencies.is_empty() {
            let mut insert = conn.prepare_cached(INSERT_DEP)?;
            for dep in &node.dependencies {
                insert.execute(params![id, dep])?;
            }
        }
        Ok(())
    }

    /// Inserts every node in one transaction; dependencies must come first.
    pub fn load_nodes(&mut self, nodes: &[Node]) -> Result<()> {
        let now = Timestamp::now().as_micros();
        let tx = self.conn.transaction()?;
        let mut by_type: HashMap<&str, i64> = HashMap::new();
        for node in nodes {
            Self::insert_node(&tx, node, now, self.fts)?;
            *by_type.entry(node.node_type.as_str()).or_default() += 1;
        }
        for (node_type, n) in by_type {
            Self::count_type(&tx, node_type, n)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds `n` nodes of a type to table `node_type_counts`.
    fn count_type(conn: &Connection, node_type: &str, n: i64) -> Result<()> {
        conn.prepare_cached(
            "INSERT INTO node_type_counts(node_type, nodes) VALUES (?1, ?2) \
             ON CONFLICT(node_type) DO UPDATE SET nodes = nodes + excluded.nodes",
        )?
        .execute(params![node_type, n])?;
        Ok(())
    }

    /// Inserts every edge in one transaction.
    pub fn load_edges(&mut self, edges: &[Edge]) -> Result<()> {
        let now = Timestamp::now().as_micros();
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(INSERT_EDGE)?;
            for e in edges {
                insert.execute(params![
                    e.from,
                    e.relation_type.as_str(),
                    e.to,
                    e.metadata.weight,
                    e.metadata.confidence,
                    e.metadata.bidirectional,
                    e.metadata.source,
                    now,
                    now,
                    1,
                    serde_json::to_string(&e.attributes)?,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// One node in its own durable transaction.
    pub fn commit_node(&mut self, node: &Node) -> Result<()> {
        let now = Timestamp::now().as_micros();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::insert_node(&tx, node, now, self.fts)?;
        Self::count_type(&tx, &node.node_type, 1)?;
        tx.commit()?;
        Ok(())
    }

    /// The node with this name.
    pub fn get_node(&self, name: &str) -> Result<Option<Node>> {
        let mut stmt = self.conn.prepare_cached(GET_NODE)?;
        let mut rows = stmt.query([name])?;
        rows.next()?.map(node_from_row).transpose()
    }

    /// The edges leaving a node, by key.
    pub fn out_edges(&self, name: &str) -> Result<Vec<Edge>> {
        let mut stmt = self.conn.prepare_cached(OUT_EDGES)?;
        let mut rows = stmt.query([name])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let rel: String = r.get(1)?;
            let attributes: String = r.get(10)?;
            out.push(Edge {
                from: r.get(0)?,
                relation_type: RelationType::parse(&rel)?,
                to: r.get(2)?,
                attributes: serde_json::from_str(&attributes)?,
                metadata: EdgeMetadata {
                    created_at: Timestamp::from_micros(r.get(7)?)?,
                    updated_at: Timestamp::from_micros(r.get(8)?)?,
                    version: u64::try_from(r.get::<_, i64>(9)?)?,
                    weight: r.get(3)?,
                    confidence: r.get(4)?,
                    bidirectional: r.get(5)?,
                    source: r.get(6)?,
                },
            });
        }
        Ok(out)
    }

    /// The names at the end of the edges leaving a node, by key.
    pub fn out_names(&self, name: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(OUT_NAMES)?;
        let names = stmt
            .query_map([name], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(names)
    }

    /// `reach_count`'s answer (exactly two hops) by one query: how many distinct
    /// nodes end the two-step walks from `name`, each step out along an edge or back
    /// along a bidirectional one; an error for a missing start.
    pub fn two_hop_count(&self, name: &str) -> Result<u64> {
        let mut stmt = self.conn.prepare_cached(TWO_HOP_WALK_COUNT)?;
        let n: Option<i64> = stmt.query_row([name], |r| r.get(0)).optional()?;
        let n = n.with_context(|| format!("node {name:?} does not exist"))?;
        Ok(u64::try_from(n)?)
    }

    /// The baseline before session 13 (the `raw-sqlite-out-only` row): how many
    /// distinct nodes end the two-edge walks along outgoing edges only; 0 for a
    /// missing start.
    pub fn two_hop_count_out_only(&self, name: &str) -> Result<u64> {
        self.count_of(TWO_HOP_COUNT, name)
    }

    /// How many other nodes are one or two outgoing hops from `name`, by one query.
    pub fn within_two_count(&self, name: &str) -> Result<u64> {
        self.count_of(WITHIN_TWO_COUNT, name)
    }

    fn count_of(&self, sql: &str, name: &str) -> Result<u64> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let n: i64 = stmt.query_row([name], |r| r.get(0))?;
        Ok(u64::try_from(n)?)
    }

    /// kgstore's answer, by hand: the transitive dependencies of `name` in the
    /// smallest topological order by name (dependencies first; at each step the
    /// smallest name whose dependencies are all listed), an error for a missing
    /// start or a cycle. One statement ([`DEPENDENCY_CLOSURE_WITH_START`]), then
    /// Kahn's algorithm over the members numbered in name order with a heap of the
    /// ready ones.
    pub fn resolve_dependencies(&self, name: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(DEPENDENCY_CLOSURE_WITH_START)?;
        let mut rows = stmt.query([name])?;
        let mut start = None;
        let mut members: Vec<(i64, String)> = Vec::new();
        let mut links: Vec<(i64, i64)> = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if r.get_ref(1)? == rusqlite::types::ValueRef::Null {
                start = Some(id);
                continue;
            }
            // A member's rows come together: its name once.
            if members.last().is_none_or(|(last, _)| *last != id) {
                members.push((id, r.get(1)?));
            }
            if let Some(dep) = r.get::<_, Option<i64>>(2)? {
                links.push((id, dep));
            }
        }
        let start = start.with_context(|| format!("node {name:?} does not exist"))?;
        if members.iter().any(|(id, _)| *id == start) {
            anyhow::bail!("{name:?} depends on itself");
        }
        members.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        let index: HashMap<i64, usize> = members
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        // Each member's dependents, and how many dependencies each waits for.
        let mut waiting = vec![0usize; members.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
        for (member, dep) in &links {
            if let (Some(&m), Some(&d)) = (index.get(member), index.get(dep)) {
                waiting[m] += 1;
                dependents[d].push(m);
            }
        }
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..members.len())
            .filter(|&m| waiting[m] == 0)
            .map(std::cmp::Reverse)
            .collect();
        let mut order = Vec::with_capacity(members.len());
        while let Some(std::cmp::Reverse(next)) = ready.pop() {
            order.push(next);
            for &dependent in &dependents[next] {
                waiting[dependent] -= 1;
                if waiting[dependent] == 0 {
                    ready.push(std::cmp::Reverse(dependent));
                }
            }
        }
        if order.len() < members.len() {
            anyhow::bail!("the dependencies of {name:?} hold a cycle");
        }
        let mut names: Vec<Option<String>> = members.into_iter().map(|(_, n)| Some(n)).collect();
        Ok(order.into_iter().filter_map(|i| names[i].take()).collect())
    }

    /// The baseline before session 13 (the `raw-sqlite-any-order` row): some
    /// topological order of the transitive dependencies of `name`, by a depth-first
    /// walk in id order ([`DEPENDENCY_CLOSURE`]). Unlike kgstore and
    /// [`RawStore::resolve_dependencies`], it returns an empty list for a missing
    /// start, hides a cycle through the start, and its order is not kgstore's.
    pub fn resolve_dependencies_any_order(&self, name: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(DEPENDENCY_CLOSURE)?;
        let mut rows = stmt.query([name])?;
        let mut members: HashMap<i64, (String, Vec<i64>)> = HashMap::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let entry = members
                .entry(id)
                .or_insert_with(|| (String::new(), Vec::new()));
            if entry.0.is_empty() {
                entry.0 = r.get(1)?;
            }
            if let Some(dep) = r.get::<_, Option<i64>>(2)? {
                entry.1.push(dep);
            }
        }
        let mut ids: Vec<i64> = members.keys().copied().collect();
        ids.sort_unstable();
        let mut done = std::collections::HashSet::with_capacity(ids.len());
        let mut order = Vec::with_capacity(ids.len());
        for id in ids {
            // Iterative post-order: a node after every dependency it has.
            let mut stack = vec![(id, false)];
            while let Some((at, expanded)) = stack.pop() {
                if expanded {
                    if let Some((name, _)) = members.get(&at) {
                        order.push(name.clone());
                    }
                    continue;
                }
                if !done.insert(at) {
                    continue;
                }
                stack.push((at, true));
                if let Some((_, deps)) = members.get(&at) {
                    stack.extend(
                        deps.iter()
                            .filter(|d| !done.contains(*d))
                            .map(|d| (*d, false)),
                    );
                }
            }
        }
        Ok(order)
    }

    /// One page of the nodes of `node_type` after `after`, by name.
    pub fn list_of_type(&self, node_type: &str, after: &str, limit: usize) -> Result<Vec<Node>> {
        let mut stmt = self.conn.prepare_cached(LIST_OF_TYPE)?;
        let mut rows = stmt.query(params![after, node_type, i64::try_from(limit)?])?;
        let mut out = Vec::with_capacity(limit);
        while let Some(r) = rows.next()? {
            out.push(node_from_row(r)?);
        }
        Ok(out)
    }

    /// How many nodes and edges the file holds.
    pub fn counts(&self) -> Result<(u64, u64)> {
        count_rows(&self.conn)
    }
}

/// Nodes and edges in a database with kgstore's schema.
pub fn count_rows(conn: &Connection) -> Result<(u64, u64)> {
    let nodes: i64 = conn.query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))?;
    let edges: i64 = conn.query_row("SELECT count(*) FROM edges", [], |r| r.get(0))?;
    Ok((u64::try_from(nodes)?, u64::try_from(edges)?))
}

/// Copies every page of `source` into `dest` with SQLite's online backup API,
/// in one step.
fn copy_pages(source: &Connection, dest: &mut Connection) -> Result<()> {
    let backup = Backup::new(source, dest)?;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            other => anyhow::bail!("the online backup stopped: {other:?}"),
        }
    }
}

/// Copies the database at `source` into a new file `dest` with SQLite's online
/// backup API (what `sqlite3 .backup` does).
pub fn native_backup(source: &Path, dest: &Path) -> Result<()> {
    let conn = Connection::open(source)?;
    let mut copy = Connection::open(dest)?;
    copy_pages(&conn, &mut copy)
        .with_context(|| format!("backing {} up to {}", source.display(), dest.display()))
}

/// Loads the copy at `source` into a new database `dest` with the backup API in
/// the other direction (what `sqlite3 .restore` does).
pub fn native_restore(source: &Path, dest: &Path) -> Result<Connection> {
    let copy = Connection::open(source)?;
    let mut conn = Connection::open(dest)?;
    copy_pages(&copy, &mut conn)
        .with_context(|| format!("restoring {} into {}", source.display(), dest.display()))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use kgstore::{GraphRead, Store};

    use super::*;

    /// Nodes created in an order other than their names' (ids not in name order):
    /// `c`, `b`, `a` without dependencies, `d` on `c`, `top` on all of them.
    fn nodes() -> Vec<Node> {
        let mut nodes: Vec<Node> = ["c", "b", "a"]
            .iter()
            .map(|n| Node::new(*n, "thing").unwrap())
            .collect();
        nodes.push(Node::new("d", "thing").unwrap().with_dependency("c"));
        let mut top = Node::new("top", "thing").unwrap();
        for dep in ["d", "a", "b", "c"] {
            top = top.with_dependency(dep);
        }
        nodes.push(top);
        nodes
    }

    #[test]
    fn the_resolve_baseline_gives_kgstores_answers_and_the_old_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = RawStore::create(&dir.path().join("raw.db"), false).unwrap();
        raw.load_nodes(&nodes()).unwrap();
        let store = Store::memory();
        for node in nodes() {
            store.create_node(node).unwrap();
        }
        for name in ["a", "b", "c", "d", "top"] {
            let kgstore = store.resolve_dependencies(name).unwrap();
            assert_eq!(raw.resolve_dependencies(name).unwrap(), kgstore, "{name}");
            // The old baseline finds the same members, in an order of its own.
            let mut old = raw.resolve_dependencies_any_order(name).unwrap();
            old.sort();
            let mut members = kgstore.clone();
            members.sort();
            assert_eq!(old, members, "{name}");
        }
        assert_eq!(
            store.resolve_dependencies("top").unwrap(),
            ["a", "b", "c", "d"]
        );
        // What the old baseline skipped: the smallest order by name (its walk goes
        // by id, `c` was created first) and a missing start (an empty list).
        assert_eq!(
            raw.resolve_dependencies_any_order("top").unwrap(),
            ["c", "b", "a", "d"]
        );
        assert!(store.resolve_dependencies("ghost").is_err());
        assert!(raw.resolve_dependencies("ghost").is_err());
        assert!(
            raw.resolve_dependencies_any_order("ghost")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_two_hop_baseline_gives_kgstores_answers_and_the_old_one_does_not() {
        use kgstore::{ReachOptions, RelationType::Calls};
        let dir = tempfile::tempdir().unwrap();
        let mut raw = RawStore::create(&dir.path().join("raw.db"), false).unwrap();
        let store = Store::memory();
        let nodes: Vec<Node> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| Node::new(*n, "thing").unwrap())
            .collect();
        raw.load_nodes(&nodes).unwrap();
        let edge = |from: &str, to: &str| Edge::new(from, Calls, to).unwrap();
        let edges = vec![
            edge("a", "b"),
            edge("b", "c"),
            edge("d", "a").bidirectional(),
            edge("e", "b").bidirectional(),
            edge("c", "d"),
        ];
        raw.load_edges(&edges).unwrap();
        for node in nodes {
            store.create_node(node).unwrap();
        }
        store.create_edges(edges).unwrap();
        let two = ReachOptions::exactly(2);
        for name in ["a", "b", "c", "d", "e"] {
            assert_eq!(
                raw.two_hop_count(name).unwrap(),
                store.reach_count(name, &two).unwrap(),
                "{name}"
            );
        }
        // What the old baseline skipped: walks back along bidirectional edges
        // (from a: c, out and out; e, out then back along e <-> b; a itself, back
        // along d <-> a and out of d) and a missing start (0).
        assert_eq!(store.reach_count("a", &two).unwrap(), 3);
        assert_eq!(raw.two_hop_count_out_only("a").unwrap(), 1);
        assert!(store.reach_count("ghost", &two).is_err());
        assert!(raw.two_hop_count("ghost").is_err());
        assert_eq!(raw.two_hop_count_out_only("ghost").unwrap(), 0);
        // Each step back finds the bidirectional edges by their partial index.
        let plan: Vec<String> = raw
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {TWO_HOP_WALK_COUNT}"))
            .unwrap()
            .query_map(["a"], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let partial = plan
            .iter()
            .filter(|l| l.contains("edges_bidirectional_by_to (to_id=?"))
            .count();
        assert_eq!(partial, 4, "{plan:#?}");
        assert!(plan.iter().all(|l| !l.starts_with("SCAN e")), "{plan:#?}");
    }
}
