//! The baseline: the same schema driven by hand-written rusqlite, as an
//! application without kgstore would (WAL, the same pragmas, cached statements,
//! one transaction per bulk load), decoding rows into the same structs.
//!
//! Self-contained apart from kgstore's model types and DDL, so that a
//! `kgstore-bench` crate can take it over as it is.

use std::path::Path;

use kgstore_core::{Edge, EdgeMetadata, Node, NodeMetadata, RelationType, Timestamp};
use kgstore_sqlite::schema::{APPLICATION_ID, DDL, FORMAT_VERSION};
use rusqlite::{Connection, OptionalExtension, params};

/// A result of the baseline; its errors are rusqlite's or serde_json's.
pub type RawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// One connection on a file with kgstore's schema.
pub struct RawStore {
    conn: Connection,
}

const GET_NODE: &str = "SELECT k.name, n.node_type, n.status, n.author, n.source, n.created_at, \
     n.updated_at, n.version, n.observations, n.attributes, n.tags, n.dependencies \
     FROM names k JOIN nodes n ON n.id = k.id WHERE k.name = ?1";

const OUT_EDGES: &str = "SELECT fk.name, e.rel, tk.name, e.weight, e.confidence, \
     e.bidirectional, e.source, e.created_at, e.updated_at, e.version, e.attributes \
     FROM edges e JOIN names fk ON fk.id = e.from_id JOIN names tk ON tk.id = e.to_id \
     WHERE e.from_id = (SELECT id FROM names WHERE name = ?1) ORDER BY e.rel, tk.name";

const INSERT_NAME: &str = "INSERT INTO names(name) VALUES (?1)";
const INSERT_NODE: &str = "INSERT INTO nodes(id, node_type, status, author, source, created_at, \
     updated_at, version, observations, attributes, tags, dependencies) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
const INSERT_EDGE: &str = "INSERT INTO edges(from_id, rel, to_id, weight, confidence, \
     bidirectional, source, created_at, updated_at, version, attributes) \
     VALUES ((SELECT id FROM names WHERE name = ?1), ?2, (SELECT id FROM names WHERE name = ?3), \
     ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// What any careful rusqlite user of this schema sets: a statement cache, and stable
/// plans (with the bundled SQLite's STAT4, a cached statement whose plan could depend
/// on a bound value is otherwise re-prepared every time it is reused).
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(64);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

impl RawStore {
    /// Creates the file with kgstore's schema; `synchronous` as `PRAGMA synchronous`.
    pub fn create(path: &Path, synchronous: i64) -> RawResult<Self> {
        let conn = Connection::open(path)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -32768;
             {DDL}
             PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = {FORMAT_VERSION};"
        ))?;
        configure(&conn)?;
        Ok(Self { conn })
    }

    /// Opens a file [`RawStore::create`] made, with `synchronous = FULL`.
    pub fn create_or_open(path: &Path) -> Self {
        let conn = Connection::open(path).expect("open the baseline's file");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = 2; PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;",
        )
        .expect("configure the baseline's connection");
        configure(&conn).expect("configure the baseline's connection");
        Self { conn }
    }

    fn insert_node(conn: &Connection, node: &Node, now: i64) -> RawResult<()> {
        conn.prepare_cached(INSERT_NAME)?.execute([&node.name])?;
        let id = conn.last_insert_rowid();
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
        Ok(())
    }

    /// Inserts every node in one transaction (no tags or dependencies expected).
    pub fn load_nodes(&mut self, nodes: &[Node]) -> RawResult<()> {
        let now = Timestamp::now().as_micros();
        let tx = self.conn.transaction()?;
        for node in nodes {
            Self::insert_node(&tx, node, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Inserts every edge in one transaction.
    pub fn load_edges(&mut self, edges: &[Edge]) -> RawResult<()> {
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
    pub fn commit_node(&mut self, node: &Node) -> RawResult<()> {
        let now = Timestamp::now().as_micros();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Self::insert_node(&tx, node, now)?;
        tx.commit()?;
        Ok(())
    }

    /// The node with this name.
    pub fn get_node(&self, name: &str) -> RawResult<Option<Node>> {
        let mut stmt = self.conn.prepare_cached(GET_NODE)?;
        let node = stmt
            .query_row([name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                ))
            })
            .optional()?;
        let Some((
            name,
            node_type,
            status,
            author,
            source,
            created,
            updated,
            version,
            obs,
            attrs,
            tags,
            deps,
        )) = node
        else {
            return Ok(None);
        };
        Ok(Some(Node {
            name,
            node_type,
            observations: serde_json::from_str(&obs)?,
            attributes: serde_json::from_str(&attrs)?,
            dependencies: serde_json::from_str(&deps)?,
            metadata: NodeMetadata {
                created_at: Timestamp::from_micros(created)?,
                updated_at: Timestamp::from_micros(updated)?,
                version: u64::try_from(version)?,
                author,
                source,
                tags: serde_json::from_str(&tags)?,
                status,
            },
        }))
    }

    /// The edges leaving a node, by key.
    pub fn out_edges(&self, name: &str) -> RawResult<Vec<Edge>> {
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
}
