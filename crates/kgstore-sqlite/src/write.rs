//! Every write, as SQL on the writer connection inside its open transaction.
//!
//! A [`W`] keeps the statements it has used, so a batch (`put_nodes`,
//! `put_edges`) is one loop over already prepared statements.

use std::collections::HashSet;
use std::sync::OnceLock;

use kgstore_core::{Edge, EdgeKey, Error, Node, Result, SchemaTarget};
use rusqlite::config::DbConfig;
use rusqlite::types::ToSql;
use rusqlite::{CachedStatement, Connection, OptionalExtension, params, params_from_iter};
use serde_json::Value;

use crate::codec::{list_to_json, node_subject, to_json, version_to_sql};
use crate::error::{Ctx, SqlResult};
use crate::schema::{FLAG_BIDIRECTIONAL, FLAG_PLAIN};
use crate::search::{self, Delta, SearchWrites};

/// The statements of the write path.
#[derive(Clone, Copy)]
enum S {
    InsertName,
    SelectName,
    NodeType,
    OldDeps,
    DeleteTags,
    DeleteDeps,
    InsertNode,
    UpsertNode,
    InsertTag,
    InsertDep,
    UpsertEdge,
    InsertEdge,
    InsertNames,
    InsertNodes,
    InsertPlainEdge,
    InsertPlainNodes,
}

const STATEMENTS: usize = 16;

fn sql(s: S) -> &'static str {
    match s {
        S::InsertName => "INSERT INTO names(name) VALUES (?1) ON CONFLICT(name) DO NOTHING",
        S::SelectName => "SELECT id FROM names WHERE name = ?1",
        S::NodeType => "SELECT node_type FROM nodes WHERE id = ?1",
        S::OldDeps => "SELECT dep_id FROM node_deps WHERE node_id = ?1",
        S::DeleteTags => "DELETE FROM node_tags WHERE node_id = ?1",
        S::DeleteDeps => "DELETE FROM node_deps WHERE node_id = ?1",
        S::InsertNode => {
            "INSERT INTO nodes(id, node_type, status, author, source, created_at, updated_at, \
             version, observations, attributes, tags, dependencies) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        }
        S::UpsertNode => {
            "INSERT INTO nodes(id, node_type, status, author, source, created_at, updated_at, \
             version, observations, attributes, tags, dependencies) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
             ON CONFLICT(id) DO UPDATE SET node_type = excluded.node_type, \
             status = excluded.status, author = excluded.author, source = excluded.source, \
             created_at = excluded.created_at, updated_at = excluded.updated_at, \
             version = excluded.version, observations = excluded.observations, \
             attributes = excluded.attributes, tags = excluded.tags, \
             dependencies = excluded.dependencies"
        }
        S::InsertTag => "INSERT OR IGNORE INTO node_tags(node_id, tag) VALUES (?1, ?2)",
        S::InsertDep => "INSERT OR IGNORE INTO node_deps(node_id, dep_id) VALUES (?1, ?2)",
        S::UpsertEdge => UPSERT_EDGE,
        S::InsertEdge => INSERT_EDGE,
        // Kept prepared for a whole `put_nodes` (fetched from the connection's
        // cache and given back, with its 384 bindings cleared, once per batch
        // they cost 650 instructions a node).
        S::InsertNames => insert_names_sql(),
        S::InsertNodes => insert_nodes_sql(),
        S::InsertPlainEdge => INSERT_PLAIN_EDGE,
        S::InsertPlainNodes => insert_plain_nodes_sql(),
    }
}

/// Rows per multi-row `INSERT` of a batch.
const BATCH: usize = 32;

/// `INSERT OR IGNORE INTO names(name) VALUES (?1), (?2), …` for a whole batch; a
/// row whose name is taken is left out. SQLite gives each new row the largest
/// row id plus one, so when every row went in (the statement's count of changes
/// says so; no `RETURNING`, which kept each new row in a temporary table and
/// stepped the statement once per row to hand it back) they hold the ids
/// [`W::free_name_ids`] found, in the batch's order. Without an id of its own
/// and with `OR IGNORE` (the names are never NULL), no row can make the
/// statement fail part way, so SQLite keeps no statement journal for it: with
/// ids given (`?1 + k`) it copied every page of `names` and of its index by
/// name that the statement changed (session 11, `docs/benchmarks.md`).
fn insert_names_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let rows: Vec<String> = (0..BATCH).map(|k| format!("(?{})", k + 1)).collect();
        format!(
            "INSERT OR IGNORE INTO names(name) VALUES {}",
            rows.join(", ")
        )
    })
}

/// Columns of `nodes` bound per row of [`insert_nodes_sql`] (all but the id).
const NODE_VALUES: usize = 11;

/// The cells of [`insert_nodes_sql`]'s rows (counted from `node_type`, 0) that
/// hold a list: observations, tags, dependencies.
const LIST_CELLS: [usize; 3] = [7, 9, 10];

/// `INSERT INTO nodes … VALUES (…), …` for a whole batch under consecutive ids:
/// `?1` is the first id, the others follow it, then each row's other columns. A
/// list cell is `coalesce(?n, '[]')`: an empty list (most nodes' observations,
/// tags and dependencies) is bound as NULL, which copies nothing, where its text
/// `[]` was made and then copied by SQLite for every node.
fn insert_nodes_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let rows: Vec<String> = (0..BATCH)
            .map(|k| {
                let cells: Vec<String> = (0..NODE_VALUES)
                    .map(|c| {
                        let n = 2 + k * NODE_VALUES + c;
                        if LIST_CELLS.contains(&c) {
                            format!("coalesce(?{n}, '[]')")
                        } else {
                            format!("?{n}")
                        }
                    })
                    .collect();
                format!("(?1 + {k}, {})", cells.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO nodes(id, node_type, status, author, source, created_at, updated_at, \
             version, observations, attributes, tags, dependencies) VALUES {}",
            rows.join(", ")
        )
    })
}

/// Columns of `nodes` bound per row of [`insert_plain_nodes_sql`]: the type, the
/// creation time, the attributes.
const PLAIN_NODE_VALUES: usize = 3;

/// [`insert_nodes_sql`] for a batch of nodes that are all plain ([`plain_node`]):
/// per row, `?1 + k` the id, then the type, the creation time (also the update
/// time) and the attributes bound; no status, author or source, version 1 and
/// empty lists written as constants. Each node binds three values instead of
/// eleven, and the statement has 97 parameters instead of 353 to clear per batch.
fn insert_plain_nodes_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let rows: Vec<String> = (0..BATCH)
            .map(|k| {
                let n = 2 + k * PLAIN_NODE_VALUES;
                let (node_type, created, attributes) = (n, n + 1, n + 2);
                format!(
                    "(?1 + {k}, ?{node_type}, NULL, NULL, NULL, ?{created}, ?{created}, 1, '[]', \
                     ?{attributes}, '[]', '[]')"
                )
            })
            .collect();
        format!(
            "INSERT INTO nodes(id, node_type, status, author, source, created_at, updated_at, \
             version, observations, attributes, tags, dependencies) VALUES {}",
            rows.join(", ")
        )
    })
}

/// Whether a node's row is written by [`insert_plain_nodes_sql`]: no status,
/// author or source, updated when created, version 1, no observations, tags or
/// dependencies (a load's usual node: a name, a type, attributes).
fn plain_node(node: &Node) -> bool {
    let meta = &node.metadata;
    meta.status.is_none()
        && meta.author.is_none()
        && meta.source.is_none()
        && meta.updated_at == meta.created_at
        && meta.version == 1
        && node.observations.is_empty()
        && meta.tags.is_empty()
        && node.dependencies.is_empty()
}

/// The smallest bulk edge write that builds the edge indexes again at its end
/// (when the table holds no more edges than it writes).
const REBUILD_INDEXES_FROM: usize = 16_384;

/// The smallest `put_nodes` or `put_edges` that runs with SQLite's foreign key
/// checks off ([`W::unchecked`]). Turning them off and on again makes SQLite
/// prepare the connection's statements again when they next run, about the work
/// of checking this many rows.
pub(crate) const UNCHECKED_FROM: usize = 4_096;

/// Names looked up per query when a batch of edges resolves its endpoints.
const NAME_LOOKUP_BATCH: usize = 4096;

/// `INSERT INTO edges … VALUES (…) ON CONFLICT … DO UPDATE …` for one edge. The
/// names of its ends are written with it and stay (the ids, hence the names, are
/// its key).
const UPSERT_EDGE: &str = concat!(
    "INSERT INTO edges(from_id, rel, to_id, weight, confidence, flags, source, \
     created_at, updated_at, version, attributes, to_name, from_name) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ",
    "ON CONFLICT(from_id, rel, to_id) DO UPDATE SET \
     weight = excluded.weight, confidence = excluded.confidence, \
     flags = excluded.flags, source = excluded.source, \
     created_at = excluded.created_at, updated_at = excluded.updated_at, \
     version = excluded.version, attributes = excluded.attributes"
);

/// `INSERT INTO edges … VALUES (…)` for one edge new to the table (a bulk load's:
/// the key's one B-tree seek, no conflict check first).
const INSERT_EDGE: &str = "INSERT INTO edges(from_id, rel, to_id, weight, confidence, flags, \
     source, created_at, updated_at, version, attributes, to_name, from_name) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// [`INSERT_EDGE`] for an edge whose content is the default one but for its
/// weight ([`FLAG_PLAIN`], most edges of a load): the six cells that follow from
/// it are written as constants (no confidence, flags [`FLAG_PLAIN`], no source,
/// updated when created, version 1, attributes `{}`, the text [`to_json`] gives
/// an empty map), so each such edge binds seven values instead of thirteen and
/// serialises no attributes. `?1` from, `?2` relation, `?3` to, `?4` weight,
/// `?5` creation time, `?6` the `to` end's name, `?7` the `from` end's.
const INSERT_PLAIN_EDGE: &str = "INSERT INTO edges(from_id, rel, to_id, weight, confidence, \
     flags, source, created_at, updated_at, version, attributes, to_name, from_name) \
     VALUES (?1, ?2, ?3, ?4, NULL, 2, NULL, ?5, ?5, 1, '{}', ?6, ?7)";
const _: () = assert!(FLAG_PLAIN == 2, "INSERT_PLAIN_EDGE writes flags 2");

/// Column `flags` of an edge's row (format 12): [`FLAG_BIDIRECTIONAL`] when it is
/// bidirectional, [`FLAG_PLAIN`] when its content is the default one but for its
/// weight (the same rule as `schema::plain_edge_sql!`, which `check` compares the
/// bit with): not bidirectional, no confidence, no source, updated when created,
/// version 1, no attributes.
pub(crate) fn edge_flags(edge: &Edge) -> i64 {
    let meta = &edge.metadata;
    if meta.bidirectional {
        FLAG_BIDIRECTIONAL
    } else if meta.confidence.is_none()
        && meta.source.is_none()
        && meta.updated_at == meta.created_at
        && meta.version == 1
        && edge.attributes.is_empty()
    {
        FLAG_PLAIN
    } else {
        0
    }
}

/// What a write transaction keeps while a bulk import runs
/// ([`WriteTxn::bulk_load_begin`](kgstore_core::backend::WriteTxn::bulk_load_begin)):
/// the name ids of the nodes it wrote, so that its edges find their endpoints
/// without a query. The edges' secondary indexes are dropped while it runs and
/// built again, each by one sort, at its end ([`W::bulk_load_end`]).
#[derive(Default)]
pub(crate) struct BulkLoad {
    ids: foldhash::HashMap<String, i64>,
}

/// The changes of a write transaction to the number of nodes of each type
/// (table `node_type_counts`, [`crate::schema::TYPE_COUNTS_DDL`]), added up in
/// memory and written one row per type ([`TypeCounts::write`]): before the
/// transaction counts its nodes, and at commit.
#[derive(Default)]
pub(crate) struct TypeCounts {
    changes: foldhash::HashMap<String, i64>,
    /// Set when writing the changes failed part way: the commit is refused.
    failed: bool,
}

impl TypeCounts {
    /// A node of this type was added (`by` 1) or removed (`by` -1).
    fn add(&mut self, node_type: &str, by: i64) {
        if let Some(n) = self.changes.get_mut(node_type) {
            *n += by;
        } else {
            self.changes.insert(node_type.to_owned(), by);
        }
    }

    /// Writes the changes into `node_type_counts`; a type left without nodes
    /// loses its row.
    pub(crate) fn write(&mut self, conn: &Connection, ctx: &Ctx) -> Result<()> {
        if self.failed {
            return Err(Error::backend(
                "sqlite",
                format!(
                    "an earlier write to table node_type_counts of {} failed part way; \
                     this transaction cannot commit",
                    ctx.path.display()
                ),
            ));
        }
        if self.changes.is_empty() {
            return Ok(());
        }
        self.failed = true;
        let doing = || "counting nodes by type in table node_type_counts".to_owned();
        let mut upsert = conn
            .prepare_cached(
                "INSERT INTO node_type_counts(node_type, nodes) VALUES (?1, ?2) \
                 ON CONFLICT(node_type) DO UPDATE SET nodes = nodes + excluded.nodes",
            )
            .ctx(ctx, doing)?;
        let mut emptied = false;
        for (node_type, by) in self.changes.drain().filter(|(_, by)| *by != 0) {
            upsert.execute(params![node_type, by]).ctx(ctx, doing)?;
            emptied |= by < 0;
        }
        if emptied {
            conn.prepare_cached("DELETE FROM node_type_counts WHERE nodes = 0")
                .and_then(|mut s| s.execute([]))
                .ctx(ctx, doing)?;
        }
        self.failed = false;
        Ok(())
    }
}

/// Deletes a name nothing refers to any more.
const SWEEP_NAME: &str = "DELETE FROM names WHERE id = ?1 \
     AND NOT EXISTS (SELECT 1 FROM nodes WHERE id = ?1) \
     AND NOT EXISTS (SELECT 1 FROM edges WHERE from_id = ?1) \
     AND NOT EXISTS (SELECT 1 FROM edges WHERE to_id = ?1) \
     AND NOT EXISTS (SELECT 1 FROM node_deps WHERE dep_id = ?1)";

/// Writes on the writer connection; `orphans` collects the ids of names that a
/// write may have left unreferenced, swept at commit.
pub(crate) struct W<'a> {
    conn: &'a Connection,
    ctx: &'a Ctx,
    orphans: &'a mut HashSet<i64>,
    search: &'a mut SearchWrites,
    counts: &'a mut TypeCounts,
    /// The bulk load under way, if one is.
    bulk: Option<&'a mut BulkLoad>,
    prepared: [Option<CachedStatement<'a>>; STATEMENTS],
}

impl<'a> W<'a> {
    pub fn new(
        conn: &'a Connection,
        ctx: &'a Ctx,
        orphans: &'a mut HashSet<i64>,
        search: &'a mut SearchWrites,
        counts: &'a mut TypeCounts,
        bulk: Option<&'a mut BulkLoad>,
    ) -> Self {
        Self {
            conn,
            ctx,
            orphans,
            search,
            counts,
            bulk,
            prepared: Default::default(),
        }
    }

    /// Starts a bulk load into a transaction that holds no node and no edge: the
    /// edges' secondary indexes go (built again by [`W::bulk_load_end`]; a rollback
    /// brings them back as they were).
    ///
    /// Foreign keys are not enforced while it runs: core's bulk import has checked
    /// every reference in memory (an edge's endpoints, a dependency, among the
    /// imported names), and the ids it writes are those its own inserts returned,
    /// so each check would be two B-tree seeks per edge that cannot fail.
    /// [`W::bulk_load_end`] enforces them again (as does the fresh connection that
    /// replaces this one after the transaction, committed or rolled back).
    pub fn bulk_load_begin(&mut self) -> Result<()> {
        self.set_foreign_keys(false)?;
        self.conn
            .execute_batch(crate::schema::DROP_EDGE_INDEXES)
            .ctx(self.ctx, || {
                "dropping the indexes of table edges for a bulk load".to_owned()
            })
    }

    /// Ends a bulk load: enforces foreign keys again and builds the edges'
    /// secondary indexes again, each by one sort.
    pub fn bulk_load_end(&mut self) -> Result<()> {
        self.set_foreign_keys(true)?;
        self.conn
            .execute_batch(crate::schema::edge_indexes!())
            .ctx(self.ctx, || {
                "rebuilding the indexes of table edges".to_owned()
            })
    }

    /// Turns SQLite's enforcement of foreign keys on this connection on or off
    /// (`SQLITE_DBCONFIG_ENABLE_FKEY`, which takes effect inside a transaction).
    fn set_foreign_keys(&self, on: bool) -> Result<()> {
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, on)
            .ctx(self.ctx, || {
                format!(
                    "turning foreign key checks {} for a bulk write or load",
                    if on { "back on" } else { "off" }
                )
            })
            .map(drop)
    }

    /// Runs a write of `rows` nodes or edges; from [`UNCHECKED_FROM`] rows on,
    /// with foreign key checks off, back on after it (whether it succeeded or
    /// not). They cannot fail on these writes: every id a node, edge or
    /// dependency row refers to is that of a `names` row the same write looked up
    /// or inserted, and a `node_deps` row follows its node's row. Each check cost
    /// a B-tree seek into `names` per reference, and made every insert open a
    /// statement journal (a statement that may fail a check part way must be
    /// undone alone). A bulk load has them off already. Should turning them on
    /// again fail, the backend replaces the connection after the transaction
    /// ([`W::foreign_keys_on`]).
    fn unchecked(
        &mut self,
        rows: usize,
        write: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        if self.bulk.is_some() || rows < UNCHECKED_FROM {
            return write(self);
        }
        self.set_foreign_keys(false)?;
        let written = write(self);
        let restored = self.set_foreign_keys(true);
        written.and(restored)
    }

    /// Whether SQLite enforces foreign keys on this connection now (`false` also
    /// when it cannot tell): after a write of [`UNCHECKED_FROM`] rows or more, the
    /// backend replaces a connection that was left without them.
    pub fn foreign_keys_on(&self) -> bool {
        self.conn
            .db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY)
            .unwrap_or(false)
    }

    /// Notes the id of a node's name during a bulk load.
    fn note_id(&mut self, name: &str, id: i64) {
        if let Some(bulk) = self.bulk.as_deref_mut() {
            bulk.ids.insert(name.to_owned(), id);
        }
    }

    /// A statement of the write path, prepared on first use.
    fn stmt(&mut self, s: S) -> Result<&mut CachedStatement<'a>> {
        let slot = &mut self.prepared[s as usize];
        if slot.is_none() {
            let prepared = self
                .conn
                .prepare_cached(sql(s))
                .ctx(self.ctx, || "preparing a write".into())?;
            *slot = Some(prepared);
        }
        slot.as_mut()
            .ok_or_else(|| Error::backend("sqlite", "a prepared statement vanished".to_owned()))
    }

    fn exec(
        &mut self,
        s: S,
        params: impl rusqlite::Params,
        doing: impl FnOnce() -> String,
    ) -> Result<usize> {
        let ctx = self.ctx;
        self.stmt(s)?.execute(params).ctx(ctx, doing)
    }

    fn ids(&mut self, s: S, id: i64, doing: impl Fn() -> String + Copy) -> Result<Vec<i64>> {
        let ctx = self.ctx;
        self.stmt(s)?
            .query_map([id], |row| row.get::<_, i64>(0))
            .and_then(|rows| rows.collect())
            .ctx(ctx, doing)
    }

    fn name_id(&mut self, name: &str) -> Result<Option<i64>> {
        let ctx = self.ctx;
        self.stmt(S::SelectName)?
            .query_row([name], |row| row.get(0))
            .optional()
            .ctx(ctx, || {
                format!("looking up {} in table names", node_subject(name))
            })
    }

    /// The id of a name, adding it to `names` if needed; whether it was added.
    /// `likely_new` tries the insert first (one statement for a new name).
    fn intern(&mut self, name: &str, likely_new: bool) -> Result<(i64, bool)> {
        let doing = || format!("recording {} in table names", node_subject(name));
        if !likely_new && let Some(id) = self.name_id(name)? {
            return Ok((id, false));
        }
        if self.exec(S::InsertName, [name], doing)? == 1 {
            return Ok((self.conn.last_insert_rowid(), true));
        }
        let id = self.name_id(name)?.ok_or_else(|| {
            Error::backend(
                "sqlite",
                format!(
                    "{} in {}: the name was neither inserted nor found",
                    doing(),
                    self.ctx.path.display()
                ),
            )
        })?;
        Ok((id, false))
    }

    pub fn put_node(&mut self, node: &Node) -> Result<()> {
        self.put_one(node)
    }

    /// Writes a node's row, index rows and search entry under the id of its name;
    /// `old_type`: the type of the node it replaces, if one had the name.
    fn write_node(&mut self, id: i64, old_type: Option<&str>, node: &Node) -> Result<()> {
        let subject = || node_subject(&node.name);
        let doing = || format!("writing {} into table nodes", subject());
        let existed = old_type.is_some();
        if existed {
            // An update: clear the node's index rows; its old dependencies may now
            // be unreferenced.
            let old = self.ids(S::OldDeps, id, doing)?;
            self.orphans.extend(old);
            self.exec(S::DeleteTags, [id], doing)?;
            self.exec(S::DeleteDeps, [id], doing)?;
        }
        let meta = &node.metadata;
        self.exec(
            if existed {
                S::UpsertNode
            } else {
                S::InsertNode
            },
            params![
                id,
                node.node_type,
                meta.status,
                meta.author,
                meta.source,
                meta.created_at.as_micros(),
                meta.updated_at.as_micros(),
                version_to_sql(meta.version, subject)?,
                list_to_json(&node.observations, subject)?,
                to_json(&node.attributes, subject)?,
                list_to_json(&meta.tags, subject)?,
                list_to_json(&node.dependencies, subject)?,
            ],
            doing,
        )?;
        // Counted once the row is written (a failed statement changed nothing).
        if let Some(old) = old_type {
            self.counts.add(old, -1);
        }
        self.counts.add(&node.node_type, 1);
        // Indexed for search later, with others (`search::STALE_DDL`).
        self.search.mark(id);
        self.note_id(&node.name, id);
        self.write_index_rows(id, node)
    }

    /// The rows of `node_tags` and `node_deps` for a node written without any.
    fn write_index_rows(&mut self, id: i64, node: &Node) -> Result<()> {
        let doing = || {
            format!(
                "indexing {} in tables node_tags and node_deps",
                node_subject(&node.name)
            )
        };
        for tag in &node.metadata.tags {
            self.exec(S::InsertTag, params![id, tag], doing)?;
        }
        for dep in &node.dependencies {
            let (dep_id, _) = self.intern(dep, false)?;
            self.exec(S::InsertDep, params![id, dep_id], doing)?;
        }
        Ok(())
    }

    /// Inserts or replaces many nodes: new ones `BATCH` at a time with multi-row
    /// inserts, the others one by one.
    pub fn put_nodes(&mut self, nodes: &[Node]) -> Result<()> {
        self.unchecked(nodes.len(), |w| w.put_node_batches(nodes))
    }

    fn put_node_batches(&mut self, nodes: &[Node]) -> Result<()> {
        let mut chunks = nodes.chunks_exact(BATCH);
        for chunk in &mut chunks {
            // A name given twice in a batch goes in once: the batch is then written
            // as below, its first node new, the later one an update (the last wins).
            let Some(first) = self.free_name_ids()? else {
                // No room for the batch's ids below SQLite's largest row id.
                chunk.iter().try_for_each(|node| self.put_one(node))?;
                continue;
            };
            // Every id from `first` on is taken by this transaction's writes
            // (`search::STALE_FROM_DDL`).
            self.search.note_fresh(first);
            if self.insert_names(chunk)? == BATCH {
                self.insert_nodes(chunk, first)?;
            } else {
                // A name left out moved the later new names one id down: each
                // name is looked up, and only one at its place's id is known new.
                for (id, node) in (first..).zip(chunk) {
                    if self.name_id(&node.name)? == Some(id) {
                        // Named by this batch's insert: a new node.
                        self.write_node(id, None, node)?;
                    } else {
                        // Already named (an update, or a name referred to before):
                        self.put_one(node)?;
                    }
                }
            }
        }
        chunks
            .remainder()
            .iter()
            .try_for_each(|node| self.put_one(node))
    }

    /// [`W::put_node`] without the batching of [`W::put_nodes`].
    fn put_one(&mut self, node: &Node) -> Result<()> {
        let (id, fresh) = self.intern(&node.name, true)?;
        let old_type = if fresh {
            None
        } else {
            self.node_type(id, &node.name)?
        };
        self.write_node(id, old_type.as_deref(), node)
    }

    /// The type of the node with name id `id`, if there is one.
    fn node_type(&mut self, id: i64, name: &str) -> Result<Option<String>> {
        let ctx = self.ctx;
        self.stmt(S::NodeType)?
            .query_row([id], |row| row.get(0))
            .optional()
            .ctx(ctx, || {
                format!("looking up {} in table nodes", node_subject(name))
            })
    }

    /// The first of [`BATCH`] name ids above every id in `names`, if they all fit
    /// below SQLite's largest row id. (Asked again for every batch: a name the
    /// batch could not take was added by the one-by-one path, under SQLite's own
    /// next id.)
    fn free_name_ids(&mut self) -> Result<Option<i64>> {
        let doing = || "looking up the largest id of table names".to_owned();
        let last: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM names")
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .ctx(self.ctx, doing)?;
        let batch = i64::try_from(BATCH).unwrap_or(i64::MAX);
        Ok(last
            .checked_add(batch)
            .map(|_| last.saturating_add(1))
            .filter(|first| *first > 0))
    }

    /// Adds the names of a batch, leaving out those already in `names`; how many
    /// went in. When all did, they hold the ids [`W::free_name_ids`] gave,
    /// `first`, `first + 1`, … in the batch's order (SQLite's next row id is the
    /// largest plus one); otherwise the caller looks each name up.
    fn insert_names(&mut self, chunk: &[Node]) -> Result<usize> {
        let doing = || format!("recording {BATCH} names in table names");
        let values = chunk.iter().map(|node| &node.name as &dyn ToSql);
        let ctx = self.ctx;
        self.stmt(S::InsertNames)?
            .execute(params_from_iter(values))
            .ctx(ctx, doing)
    }

    /// Inserts a batch of nodes whose names were all new, under the ids `first`,
    /// `first + 1`, … in the batch's order, with one statement.
    fn insert_nodes(&mut self, chunk: &[Node], first: i64) -> Result<()> {
        let doing = || format!("writing {BATCH} nodes into table nodes");
        struct Row<'n> {
            id: i64,
            created: i64,
            updated: i64,
            version: i64,
            attributes: String,
            /// Observations, tags, dependencies: `None` when empty.
            lists: [Option<String>; 3],
            node: &'n Node,
        }
        // An empty list is bound as NULL (see `insert_nodes_sql`).
        fn list<T: serde::Serialize>(
            list: &[T],
            subject: impl FnOnce() -> String,
        ) -> Result<Option<String>> {
            if list.is_empty() {
                Ok(None)
            } else {
                list_to_json(list, subject).map(Some)
            }
        }
        let mut rows = Vec::with_capacity(BATCH);
        for (id, node) in (first..).zip(chunk) {
            let subject = || node_subject(&node.name);
            let meta = &node.metadata;
            rows.push(Row {
                id,
                created: meta.created_at.as_micros(),
                updated: meta.updated_at.as_micros(),
                version: version_to_sql(meta.version, subject)?,
                attributes: to_json(&node.attributes, subject)?,
                lists: [
                    list(&node.observations, subject)?,
                    list(&meta.tags, subject)?,
                    list(&node.dependencies, subject)?,
                ],
                node,
            });
        }
        let plain = chunk.iter().all(plain_node);
        let mut values: Vec<&dyn ToSql> = Vec::with_capacity(BATCH * NODE_VALUES + 1);
        values.push(&first);
        for row in &rows {
            let meta = &row.node.metadata;
            if plain {
                values.extend_from_slice(&[&row.node.node_type, &row.created, &row.attributes]);
            } else {
                values.extend_from_slice(&[
                    &row.node.node_type,
                    &meta.status,
                    &meta.author,
                    &meta.source,
                    &row.created,
                    &row.updated,
                    &row.version,
                    &row.lists[0],
                    &row.attributes,
                    &row.lists[1],
                    &row.lists[2],
                ]);
            }
        }
        let ctx = self.ctx;
        self.stmt(if plain {
            S::InsertPlainNodes
        } else {
            S::InsertNodes
        })?
        .execute(params_from_iter(values))
        .ctx(ctx, doing)?;
        for row in &rows {
            self.counts.add(&row.node.node_type, 1);
            self.write_index_rows(row.id, row.node)?;
            self.search.mark(row.id);
            self.note_id(&row.node.name, row.id);
        }
        Ok(())
    }

    pub fn delete_node(&mut self, name: &str) -> Result<bool> {
        let doing = || format!("deleting {} from table nodes", node_subject(name));
        let Some(id) = self.name_id(name)? else {
            return Ok(false);
        };
        let ctx = self.ctx;
        if !self.stmt(S::NodeType)?.exists([id]).ctx(ctx, doing)? {
            return Ok(false);
        }
        let deps = self.ids(S::OldDeps, id, doing)?;
        self.orphans.extend(deps);
        self.orphans.insert(id);
        self.exec(S::DeleteTags, [id], doing)?;
        self.exec(S::DeleteDeps, [id], doing)?;
        let mut delta = Delta::default();
        search::unindex_node(self.conn, self.ctx, self.search, &mut delta, id)?;
        search::apply(self.conn, self.ctx, delta)?;
        let node_type: String = self
            .conn
            .prepare_cached("DELETE FROM nodes WHERE id = ?1 RETURNING node_type")
            .and_then(|mut s| s.query_row([id], |row| row.get(0)))
            .ctx(ctx, doing)?;
        self.counts.add(&node_type, -1);
        Ok(true)
    }

    pub fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        let (from, _) = self.intern(&edge.from, false)?;
        let (to, _) = self.intern(&edge.to, false)?;
        self.write_edge(edge, from, to, self.bulk.is_some())
    }

    /// Inserts or replaces an edge whose endpoints have these name ids; `new`: its
    /// key is not in the table (a bulk load's edges, or a load into an empty
    /// table), so it is inserted without looking for a row to replace first.
    fn write_edge(&mut self, edge: &Edge, from: i64, to: i64, new: bool) -> Result<()> {
        let subject = || format!("edge {}", edge.key());
        let doing = || format!("writing {} into table edges", subject());
        let meta = &edge.metadata;
        let flags = edge_flags(edge);
        if new && flags == FLAG_PLAIN {
            self.exec(
                S::InsertPlainEdge,
                params![
                    from,
                    edge.relation_type.as_str(),
                    to,
                    meta.weight,
                    meta.created_at.as_micros(),
                    edge.to.as_str(),
                    edge.from.as_str(),
                ],
                doing,
            )?;
            return Ok(());
        }
        self.exec(
            if new { S::InsertEdge } else { S::UpsertEdge },
            params![
                from,
                edge.relation_type.as_str(),
                to,
                meta.weight,
                meta.confidence,
                flags,
                meta.source,
                meta.created_at.as_micros(),
                meta.updated_at.as_micros(),
                version_to_sql(meta.version, subject)?,
                to_json(&edge.attributes, subject)?,
                edge.to.as_str(),
                edge.from.as_str(),
            ],
            doing,
        )?;
        Ok(())
    }

    /// Inserts or replaces many edges: every endpoint's id looked up once (a batch
    /// of names per query), then the edges one prepared single-row upsert each, in
    /// key order (so each B-tree is written from left to right, and no statement
    /// needs a statement journal as a multi-row one does). The sort is stable, so a
    /// key given twice still ends as its last occurrence, as one by one.
    pub fn put_edges(&mut self, edges: &[Edge]) -> Result<()> {
        self.unchecked(edges.len(), |w| w.put_edge_rows(edges))
    }

    /// [`W::put_edges`], with or without foreign key checks.
    fn put_edge_rows(&mut self, edges: &[Edge]) -> Result<()> {
        // The relations ranked in their (byte) order, so that the sort compares
        // integers only; a key given twice keeps its order by the edge's position.
        let mut relations: Vec<&str> = edges
            .iter()
            .map(|e| e.relation_type.as_str())
            .collect::<foldhash::HashSet<&str>>()
            .into_iter()
            .collect();
        relations.sort_unstable();
        let rank: foldhash::HashMap<&str, usize> =
            relations.iter().enumerate().map(|(i, r)| (*r, i)).collect();
        let rank_of = |edge: &Edge| rank.get(edge.relation_type.as_str()).copied().unwrap_or(0);
        let mut order = match self.bulk_order(edges, rank_of) {
            Some(order) => order,
            None => {
                let ids = self.endpoint_ids(edges)?;
                let id = |name: &str| {
                    ids.get(name).copied().ok_or_else(|| {
                        Error::backend(
                            "sqlite",
                            format!("{}: no id was recorded", node_subject(name)),
                        )
                    })
                };
                let mut order = Vec::with_capacity(edges.len());
                for (i, edge) in edges.iter().enumerate() {
                    order.push((id(&edge.from)?, rank_of(edge), id(&edge.to)?, i));
                }
                order
            }
        };
        order.sort_unstable();
        // A load at least as big as the table: the index by the other end is
        // built again at the end by one sort, instead of growing a row at a time
        // in random order (the same index, the same transaction). The partial
        // index of bidirectional edges stays unless the load holds many of them:
        // into it, the other edges cost a test of their flags, where building it
        // again is one more pass over the whole table. A bulk load has dropped
        // both already.
        let stored = if self.bulk.is_none() && edges.len() >= REBUILD_INDEXES_FROM {
            Some(self.edges_up_to(edges.len())?)
        } else {
            None
        };
        let rebuild = stored.is_some_and(|n| n <= edges.len());
        // Into an empty table, keys that are all different are all new: plain
        // inserts (an insert that met a stored key would fail, not replace it).
        let new = self.bulk.is_some()
            || (stored == Some(0)
                && order
                    .windows(2)
                    .all(|w| (w[0].0, w[0].1, w[0].2) != (w[1].0, w[1].1, w[1].2)));
        let doing = || "rebuilding the indexes of table edges".to_owned();
        let indexes = rebuild.then(|| {
            let many_bidirectional = edges
                .iter()
                .filter(|e| e.metadata.bidirectional)
                .nth(REBUILD_INDEXES_FROM - 1)
                .is_some();
            if many_bidirectional {
                (
                    crate::schema::DROP_EDGE_INDEXES,
                    crate::schema::edge_indexes!(),
                )
            } else {
                (
                    crate::schema::DROP_EDGES_BY_TO,
                    crate::schema::edges_by_to_index!(),
                )
            }
        });
        if let Some((drop, _)) = indexes {
            self.conn.execute_batch(drop).ctx(self.ctx, doing)?;
        }
        for (from, _, to, i) in order {
            if let Some(edge) = edges.get(i) {
                self.write_edge(edge, from, to, new)?;
            }
        }
        if let Some((_, create)) = indexes {
            self.conn.execute_batch(create).ctx(self.ctx, doing)?;
        }
        Ok(())
    }

    /// During a bulk load, the edges' rows to write as (from id, relation rank,
    /// to id, position), every endpoint's id taken from the ids the load's node
    /// inserts noted: one lookup per edge for its `to` end and one per source (a
    /// bulk load's edges come by source), with no map of the batch's names built
    /// first (`endpoint_ids`: each lookup into the load's map of every name is a
    /// cache miss on a large load). `None` outside a bulk load, or if an endpoint
    /// is not among the noted names (then the batch is resolved by `endpoint_ids`).
    fn bulk_order(
        &self,
        edges: &[Edge],
        rank_of: impl Fn(&Edge) -> usize,
    ) -> Option<Vec<(i64, usize, i64, usize)>> {
        let noted = &self.bulk.as_deref()?.ids;
        let mut order = Vec::with_capacity(edges.len());
        let mut source: Option<(&str, i64)> = None;
        for (i, edge) in edges.iter().enumerate() {
            let from = match source {
                Some((name, id)) if name == edge.from => id,
                _ => {
                    let id = *noted.get(edge.from.as_str())?;
                    source = Some((edge.from.as_str(), id));
                    id
                }
            };
            let to = *noted.get(edge.to.as_str())?;
            order.push((from, rank_of(edge), to, i));
        }
        Some(order)
    }

    /// The number of edges stored, counted up to `limit` (more is not needed).
    fn edges_up_to(&self, limit: usize) -> Result<usize> {
        let doing = || "counting the rows of table edges".to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM (SELECT 1 FROM edges LIMIT ?1)")
            .and_then(|mut s| s.query_row([limit], |r| r.get(0)))
            .ctx(self.ctx, doing)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The ids of every endpoint of `edges`, each name looked up once, a batch of
    /// names per query; a name not yet in `names` (an edge to a node the
    /// transaction creates later) is added.
    fn endpoint_ids<'e>(&mut self, edges: &'e [Edge]) -> Result<foldhash::HashMap<&'e str, i64>> {
        let mut ids: foldhash::HashMap<&str, i64> = foldhash::HashMap::default();
        let mut wanted: Vec<&str> = Vec::new();
        let noted = self.bulk.as_deref().map(|b| &b.ids);
        for edge in edges {
            for end in [edge.from.as_str(), edge.to.as_str()] {
                if let Some(id) = noted.and_then(|n| n.get(end)) {
                    ids.insert(end, *id);
                } else if !ids.contains_key(end) {
                    ids.insert(end, 0);
                    wanted.push(end);
                }
            }
        }
        for name in &wanted {
            ids.remove(name);
        }
        for chunk in wanted.chunks(NAME_LOOKUP_BATCH) {
            let doing = || format!("looking up {} names in table names", chunk.len());
            let json = serde_json::to_string(chunk).map_err(|e| Error::backend("sqlite", e))?;
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT j.key, k.id FROM json_each(?1) j JOIN names k ON k.name = j.value",
                )
                .ctx(self.ctx, doing)?;
            let found = stmt
                .query_map([json], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .ctx(self.ctx, doing)?;
            for (i, id) in found {
                if let Some(name) = usize::try_from(i).ok().and_then(|i| chunk.get(i)) {
                    ids.insert(name, id);
                }
            }
        }
        for name in wanted {
            if !ids.contains_key(name) {
                let (id, _) = self.intern(name, true)?;
                ids.insert(name, id);
            }
        }
        Ok(ids)
    }

    pub fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        let doing = || format!("deleting edge {key} from table edges");
        let mut stmt = self
            .conn
            .prepare_cached(
                "DELETE FROM edges WHERE from_id = (SELECT id FROM names WHERE name = ?1) \
                 AND rel = ?2 AND to_id = (SELECT id FROM names WHERE name = ?3) \
                 RETURNING from_id, to_id",
            )
            .ctx(self.ctx, doing)?;
        let ends: Vec<(i64, i64)> = stmt
            .query_map(
                [
                    key.from.as_str(),
                    key.relation_type.as_str(),
                    key.to.as_str(),
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .and_then(|rows| rows.collect())
            .ctx(self.ctx, doing)?;
        for (from, to) in &ends {
            self.orphans.insert(*from);
            self.orphans.insert(*to);
        }
        Ok(!ends.is_empty())
    }

    pub fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        let doing = || format!("writing the schema for {target} into table schemas");
        let document = to_json(schema, || format!("schema for {target}"))?;
        self.conn
            .prepare_cached(
                "INSERT INTO schemas(target, document) VALUES (?1, ?2) \
                 ON CONFLICT(target) DO UPDATE SET document = excluded.document",
            )
            .and_then(|mut s| s.execute(params![target.key(), document]))
            .ctx(self.ctx, doing)?;
        Ok(())
    }

    pub fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        let doing = || format!("deleting the schema for {target} from table schemas");
        let deleted = self
            .conn
            .prepare_cached("DELETE FROM schemas WHERE target = ?1")
            .and_then(|mut s| s.execute([target.key()]))
            .ctx(self.ctx, doing)?;
        Ok(deleted > 0)
    }

    /// Deletes the names nothing refers to any more.
    pub fn sweep(&mut self) -> Result<()> {
        let doing = || "removing unreferenced names from table names".to_owned();
        let ids = std::mem::take(self.orphans);
        if ids.is_empty() {
            return Ok(());
        }
        let mut stmt = self.conn.prepare_cached(SWEEP_NAME).ctx(self.ctx, doing)?;
        for id in ids {
            stmt.execute([id]).ctx(self.ctx, doing)?;
        }
        Ok(())
    }
}
