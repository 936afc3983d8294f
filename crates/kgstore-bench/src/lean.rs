//! The lean SQLite baseline: what a user who needs only names, types, attributes
//! and weighted edges would hand-write in 40 lines of rusqlite instead of using
//! kgstore — the schema and settings of the peers benchmark's `raw-sqlite`
//! (`../shared/peers/raw-sqlite`): integer ids, one `WITHOUT ROWID` edge table
//! keyed `(src, rel, dst)`, its `dst` index built once after the bulk load, a
//! 256 MiB page cache and a 1 GiB memory map, `synchronous = FULL` in WAL mode.
//!
//! It keeps less than kgstore (no metadata, observations, tags, dependencies or
//! timestamps) and checks nothing: it is the ceiling kgstore's SQLite backend is
//! measured against, beside the own-schema baseline of [`crate::raw`], which
//! shows what kgstore's schema costs on its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kgstore::{Edge, Node};
use rusqlite::{Connection, params};

use crate::data::index_of;
use crate::subject::{Measured, per_name, timed};

const SCHEMA: &str = "
CREATE TABLE nodes(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    node_type TEXT NOT NULL,
    attrs TEXT NOT NULL
);
CREATE TABLE edges(
    src INTEGER,
    rel TEXT,
    dst INTEGER,
    weight REAL,
    PRIMARY KEY(src, rel, dst)
) WITHOUT ROWID;
";

const GET: &str = "SELECT node_type, attrs FROM nodes WHERE name = ?1";
const OUT: &str = "SELECT dst FROM edges WHERE src = (SELECT id FROM nodes WHERE name = ?1)";
const OUT_NAMES: &str = "SELECT n.name FROM edges e JOIN nodes n ON n.id = e.dst \
     WHERE e.src = (SELECT id FROM nodes WHERE name = ?1)";
const TWO_HOP: &str = "SELECT COUNT(DISTINCT e2.dst) FROM edges e1 JOIN edges e2 \
     ON e2.src = e1.dst WHERE e1.src = (SELECT id FROM nodes WHERE name = ?1)";
const WITHIN_TWO: &str = "WITH s(id) AS (SELECT id FROM nodes WHERE name = ?1) \
     SELECT count(*) FROM ( \
         SELECT e.dst AS id FROM s JOIN edges e ON e.src = s.id \
         UNION \
         SELECT e2.dst FROM s JOIN edges e1 ON e1.src = s.id JOIN edges e2 ON e2.src = e1.dst) \
     WHERE id != (SELECT id FROM s)";
const INSERT_NODE: &str = "INSERT INTO nodes(id, name, node_type, attrs) VALUES (?1, ?2, ?3, ?4)";
const COMMIT_NODE: &str = "INSERT INTO nodes(name, node_type, attrs) VALUES (?1, ?2, ?3)";
const INSERT_EDGE: &str = "INSERT INTO edges(src, rel, dst, weight) VALUES (?1, ?2, ?3, ?4)";

/// Opens with the peers benchmark's settings.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    anyhow::ensure!(mode.eq_ignore_ascii_case("wal"), "journal mode {mode}");
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY;",
    )?;
    let _: i64 = conn.pragma_update_and_check(None, "mmap_size", 1_i64 << 30, |r| r.get(0))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The lean baseline's connection, and the name → id map its loader keeps (the
/// loader assigns the ids, as the peers' loader does).
pub struct LeanSubject {
    conn: Option<Connection>,
    path: PathBuf,
    ids: HashMap<String, i64>,
}

impl LeanSubject {
    /// A new file with the lean schema at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let conn = connect(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Some(conn),
            path: path.to_owned(),
            ids: HashMap::new(),
        })
    }

    fn conn(&self) -> Result<&Connection> {
        self.conn
            .as_ref()
            .context("the lean baseline's connection is closed")
    }

    /// All nodes in one transaction, with explicit integer ids.
    pub fn load_nodes(&mut self, nodes: Vec<Node>) -> Result<Measured> {
        let conn = self.conn.as_mut().context("closed")?;
        let ids = &mut self.ids;
        let mut m = timed(|| {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(INSERT_NODE)?;
                for node in &nodes {
                    let id = i64::try_from(ids.len())?;
                    insert.execute(params![
                        id,
                        node.name,
                        node.node_type,
                        serde_json::to_string(&node.attributes)?
                    ])?;
                    ids.insert(node.name.clone(), id);
                }
            }
            tx.commit()?;
            drop(nodes);
            Ok((ids.len() as u64, None))
        })?;
        m.checksum = Some(self.count("nodes")?);
        Ok(m)
    }

    /// All edges in one transaction by integer id, then the `dst` index, inside
    /// the same timed transaction.
    pub fn load_edges(&mut self, edges: Vec<Edge>) -> Result<Measured> {
        let conn = self.conn.as_mut().context("closed")?;
        let ids = &self.ids;
        let id = |name: &str| ids.get(name).copied().context("an edge to an unknown node");
        let mut m = timed(|| {
            let count = edges.len() as u64;
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(INSERT_EDGE)?;
                for e in &edges {
                    insert.execute(params![
                        id(&e.from)?,
                        e.relation_type.as_str(),
                        id(&e.to)?,
                        e.metadata.weight
                    ])?;
                }
            }
            tx.execute_batch("CREATE INDEX edges_dst ON edges(dst)")?;
            tx.commit()?;
            drop(edges);
            Ok((count, None))
        })?;
        m.checksum = Some(self.count("edges")?);
        Ok(m)
    }

    fn count(&self, table: &str) -> Result<u64> {
        let n: i64 = self
            .conn()?
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        Ok(u64::try_from(n)?)
    }

    /// Gets by name: the type and the attributes, parsed.
    pub fn gets(&mut self, names: &[String]) -> Result<Measured> {
        let conn = self.conn()?;
        per_name(names, |name| {
            let mut stmt = conn.prepare_cached(GET)?;
            let (_node_type, attrs): (String, String) =
                stmt.query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(index_of(&serde_json::from_str(&attrs)?))
        })
    }

    /// The integer ids at the end of a node's outgoing edges.
    pub fn neighbours(&mut self, names: &[String]) -> Result<Measured> {
        let conn = self.conn()?;
        per_name(names, |name| {
            let mut stmt = conn.prepare_cached(OUT)?;
            let ids = stmt
                .query_map([name], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            Ok(ids.len() as u64)
        })
    }

    /// The names at the end of a node's outgoing edges.
    pub fn neighbour_names(&mut self, names: &[String]) -> Result<Measured> {
        let conn = self.conn()?;
        per_name(names, |name| {
            let mut stmt = conn.prepare_cached(OUT_NAMES)?;
            let names = stmt
                .query_map([name], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(names.len() as u64)
        })
    }

    /// The distinct ends of two-edge outgoing walks, one query each.
    pub fn two_hops(&mut self, names: &[String]) -> Result<Measured> {
        self.count_per_name(names, TWO_HOP)
    }

    /// The other nodes within two outgoing hops, one query each.
    pub fn traversals(&mut self, names: &[String]) -> Result<Measured> {
        self.count_per_name(names, WITHIN_TWO)
    }

    fn count_per_name(&mut self, names: &[String], sql: &str) -> Result<Measured> {
        let conn = self.conn()?;
        per_name(names, |name| {
            let n: i64 = conn.prepare_cached(sql)?.query_row([name], |r| r.get(0))?;
            Ok(u64::try_from(n)?)
        })
    }

    /// One node per autocommit `INSERT` (a durable transaction each).
    pub fn commits(&mut self, nodes: &[Node]) -> Result<Measured> {
        let conn = self.conn()?;
        let mut m = timed(|| {
            let mut insert = conn.prepare_cached(COMMIT_NODE)?;
            for node in nodes {
                insert.execute(params![
                    node.name,
                    node.node_type,
                    serde_json::to_string(&node.attributes)?
                ])?;
            }
            Ok((nodes.len() as u64, None))
        })?;
        m.checksum = Some(self.count("nodes")?);
        Ok(m)
    }

    /// Closes the connection and times opening the file again up to the first read.
    pub fn reopen(&mut self, first: &str) -> Result<Measured> {
        self.conn = None;
        let path = self.path.clone();
        let mut reopened = None;
        let m = timed(|| {
            let conn = connect(&path)?;
            let attrs: String = conn.prepare_cached(GET)?.query_row([first], |r| r.get(1))?;
            reopened = Some(conn);
            Ok((1, Some(index_of(&serde_json::from_str(&attrs)?))))
        })?;
        self.conn = reopened;
        Ok(m)
    }
}
