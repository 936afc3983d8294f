//! Every read, as SQL over one connection: the plain reads of the
//! [`ReadTxn`](kgstore_core::ReadTxn) contract and the native overrides.
//!
//! SQL text never holds user input: values are bound as parameters, and the
//! only dynamic SQL is the choice of clauses and the number of `?` in an `IN`
//! list, both decided by the shape of a filter, not by its values.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use kgstore_core::algo::{self, Reach, ReachOptions, Stats, TraverseOptions, Visit};
use kgstore_core::{
    Direction, Edge, EdgeFilter, EdgeKey, Error, Node, NodeFilter, RelationType, Result,
    SchemaTarget,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ToSql, params_from_iter};
use serde_json::Value;

use crate::codec::{
    ADJACENT_EDGE_HEAD, JsonRows, NODE_COLUMNS, PLAIN_EDGE_TAIL, PlainRow, adjacent_edge_from_row,
    edge_columns, edge_from_row, edge_tail_columns, node_from_row, node_subject, push_edge,
    push_plain_adjacent_edge,
};
use crate::error::{Ctx, SqlResult};
use crate::held::HeldReader;
use crate::scan::{self, BatchRow, LineWriter, Lines, Sparse};
use crate::schema::{FLAG_PLAIN, TYPE_COUNTS_SINCE};
use crate::search::{IdMap, IdSet};

/// SQL with its parameters, built clause by clause.
struct Sql {
    text: String,
    params: Vec<SqlValue>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            params: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: impl Into<SqlValue>) -> &mut Self {
        self.params.push(value.into());
        self
    }

    /// ` AND column IN (?, ?, …)` with one parameter per value; a long list is
    /// bound as one JSON array instead (SQLite limits the number of parameters).
    fn and_in<'v>(&mut self, column: &str, values: impl IntoIterator<Item = &'v str>) -> &mut Self {
        let values: Vec<&str> = values.into_iter().collect();
        self.text.push_str(" AND ");
        self.text.push_str(column);
        if values.len() > LISTED {
            self.text.push_str(" IN (SELECT value FROM json_each(?))");
            let array = Value::Array(values.iter().map(|v| Value::from(*v)).collect());
            self.params.push(SqlValue::Text(array.to_string()));
            return self;
        }
        self.text.push_str(" IN (");
        for (i, v) in values.iter().enumerate() {
            self.text.push_str(if i == 0 { "?" } else { ", ?" });
            self.params.push(SqlValue::Text((*v).to_owned()));
        }
        self.text.push(')');
        self
    }
}

/// The longest list of values an `IN (…)` lists as parameters; a longer one is
/// bound as one JSON array (SQLite limits the number of parameters).
const LISTED: usize = 32;

/// A limit as SQLite takes it (`-1`: none).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(-1)
}

/// The smallest string greater than every string starting with `prefix`, if any:
/// names with the prefix are exactly those in `[prefix, bound)` in byte order.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Reads on one connection.
#[derive(Clone, Copy)]
pub(crate) struct Q<'a> {
    pub conn: &'a Connection,
    pub ctx: &'a Ctx,
    /// The statements kept with the connection, when it is a thread's held reader
    /// (`conn` is then its connection).
    pub held: Option<&'a HeldReader>,
}

const GET_NODE: &str = "SELECT n.id, k.name, n.node_type, n.status, n.author, n.source, \
     n.created_at, n.updated_at, n.version, n.observations, n.attributes, n.tags, n.dependencies \
     FROM names k JOIN nodes n ON n.id = k.id WHERE k.name = ?1";

const GET_EDGE: &str = "SELECT e.from_id, fk.name, e.rel, tk.name, e.weight, e.confidence, \
     e.flags, e.source, e.created_at, e.updated_at, e.version, e.attributes \
     FROM names fk JOIN edges e ON e.from_id = fk.id JOIN names tk ON tk.id = e.to_id \
     WHERE fk.name = ?1 AND e.rel = ?2 AND tk.name = ?3";

/// [`GET_EDGE`] in a file before format 12 (column `bidirectional` for `flags`).
const GET_EDGE_BEFORE_FLAGS: &str = "SELECT e.from_id, fk.name, e.rel, tk.name, e.weight, \
     e.confidence, e.bidirectional, e.source, e.created_at, e.updated_at, e.version, \
     e.attributes FROM names fk JOIN edges e ON e.from_id = fk.id \
     JOIN names tk ON tk.id = e.to_id WHERE fk.name = ?1 AND e.rel = ?2 AND tk.name = ?3";

/// The common table `root(id)` of the dependency closures: the id of the node named
/// `?1`, no row when there is no such node (a macro, to be `concat!`ed). The closure
/// queries list it first as a row without a name, so one statement tells a node
/// without dependencies from no node.
macro_rules! root_cte {
    () => {
        "root(id) AS (SELECT n.id FROM names k JOIN nodes n ON n.id = k.id WHERE k.name = ?1)"
    };
}
impl<'a> Q<'a> {
    /// Runs `f` on the statement of the fixed text `sql`: the held reader's own
    /// (found by the text's address, [`HeldReader::with_statement`]) when the read
    /// is on one, else from rusqlite's statement cache (found by the text).
    pub(crate) fn with_stmt<R>(
        &self,
        sql: &'static str,
        doing: impl Fn() -> String + Copy,
        f: impl FnOnce(&mut rusqlite::Statement<'_>) -> Result<R>,
    ) -> Result<R> {
        match self.held {
            Some(held) => held.with_statement(sql, |e| self.ctx.error(doing, e), f),
            None => self.with_cached(sql, doing, f),
        }
    }

    /// Runs `f` on the statement of `sql` from rusqlite's statement cache.
    fn with_cached<R>(
        &self,
        sql: &str,
        doing: impl Fn() -> String + Copy,
        f: impl FnOnce(&mut rusqlite::Statement<'_>) -> Result<R>,
    ) -> Result<R> {
        let mut stmt = self.conn.prepare_cached(sql).ctx(self.ctx, doing)?;
        f(&mut stmt)
    }

    /// [`Q::with_stmt`] for a text that may be fixed or built for the call (the
    /// latter always from rusqlite's statement cache).
    fn with_text<R>(
        &self,
        sql: Cow<'static, str>,
        doing: impl Fn() -> String + Copy,
        f: impl FnOnce(&mut rusqlite::Statement<'_>) -> Result<R>,
    ) -> Result<R> {
        match sql {
            Cow::Borrowed(fixed) => self.with_stmt(fixed, doing, f),
            Cow::Owned(built) => self.with_cached(&built, doing, f),
        }
    }

    /// Runs a query and maps each row, stopping at the first error.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        doing: impl Fn() -> String + Copy,
        mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql).ctx(self.ctx, doing)?;
        let mut rows = stmt.query(params).ctx(self.ctx, doing)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().ctx(self.ctx, doing)? {
            out.push(each(row)?);
        }
        Ok(out)
    }

    /// Runs a query returning at most one row.
    pub(crate) fn one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        doing: impl Fn() -> String + Copy,
        each: impl FnOnce(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut stmt = self.conn.prepare_cached(sql).ctx(self.ctx, doing)?;
        let mut rows = stmt.query(params).ctx(self.ctx, doing)?;
        match rows.next().ctx(self.ctx, doing)? {
            Some(row) => each(row).map(Some),
            None => Ok(None),
        }
    }

    fn int(
        &self,
        row: &rusqlite::Row<'_>,
        index: usize,
        doing: impl Fn() -> String + Copy,
    ) -> Result<i64> {
        row.get(index).ctx(self.ctx, doing)
    }

    // ----- the plain reads -----

    pub fn get_node(&self, name: &str) -> Result<Option<Node>> {
        let doing = || format!("reading {} from table nodes", node_subject(name));
        self.with_stmt(GET_NODE, doing, |stmt| {
            stmt.raw_bind_parameter(1, name).ctx(self.ctx, doing)?;
            let mut rows = stmt.raw_query();
            match rows.next().ctx(self.ctx, doing)? {
                Some(row) => node_from_row(row, self.ctx).map(Some),
                None => Ok(None),
            }
        })
    }

    pub fn get_edge(&self, key: &EdgeKey) -> Result<Option<Edge>> {
        let doing = || format!("reading edge {key} from table edges");
        self.one(
            if self.ctx.edge_flags {
                GET_EDGE
            } else {
                GET_EDGE_BEFORE_FLAGS
            },
            [
                key.from.as_str(),
                key.relation_type.as_str(),
                key.to.as_str(),
            ],
            doing,
            |row| edge_from_row(row, self.ctx),
        )
    }

    /// The id of a name, if anything refers to it.
    pub fn name_id(&self, name: &str) -> Result<Option<i64>> {
        let doing = || format!("looking up {} in table names", node_subject(name));
        self.one(
            "SELECT id FROM names WHERE name = ?1",
            [name],
            doing,
            |row| self.int(row, 0, doing),
        )
    }

    /// The id of a node, if it exists.
    pub fn node_id(&self, name: &str) -> Result<Option<i64>> {
        let doing = || format!("looking up {} in table nodes", node_subject(name));
        self.one(
            "SELECT n.id FROM names k JOIN nodes n ON n.id = k.id WHERE k.name = ?1",
            [name],
            doing,
            |row| self.int(row, 0, doing),
        )
    }

    pub fn scan_nodes(
        &self,
        filter: &NodeFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Node>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Attribute equality and the case-insensitive text search are finished here,
        // with the reference semantics, streaming rows so the limit stays exact.
        let finish = !filter.attributes.is_empty() || filter.text.is_some();
        let sql = node_scan_sql(filter, after, if finish { None } else { Some(limit) });
        let doing = || "listing nodes from table nodes".to_owned();
        let mut stmt = self.conn.prepare_cached(&sql.text).ctx(self.ctx, doing)?;
        let mut rows = stmt
            .query(params_from_iter(sql.params.iter()))
            .ctx(self.ctx, doing)?;
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(row) = rows.next().ctx(self.ctx, doing)? else {
                break;
            };
            let node = node_from_row(row, self.ctx)?;
            if !finish || filter.matches(&node) {
                out.push(node);
            }
        }
        Ok(out)
    }

    pub fn scan_edges(
        &self,
        filter: &EdgeFilter,
        after: Option<&EdgeKey>,
        limit: usize,
    ) -> Result<Vec<Edge>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let finish = !filter.attributes.is_empty();
        let sql = edge_scan_sql(
            filter,
            after,
            if finish { None } else { Some(limit) },
            self.ctx.edge_flags,
        );
        let doing = || "listing edges from table edges".to_owned();
        let mut stmt = self.conn.prepare_cached(&sql.text).ctx(self.ctx, doing)?;
        let mut rows = stmt
            .query(params_from_iter(sql.params.iter()))
            .ctx(self.ctx, doing)?;
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(row) = rows.next().ctx(self.ctx, doing)? else {
                break;
            };
            let edge = edge_from_row(row, self.ctx)?;
            if !finish || filter.matches(&edge) {
                out.push(edge);
            }
        }
        Ok(out)
    }

    /// Every node by name with one statement (one pass over `names` in order),
    /// each built and handed to `each` in turn.
    pub fn for_each_node(&self, each: &mut dyn FnMut(&Node) -> Result<()>) -> Result<()> {
        let sql = node_scan_sql(&NodeFilter::default(), None, None);
        self.each_row(&sql, "listing nodes from table nodes", node_from_row, each)
    }

    /// Every edge by key with one statement (one pass over `names` in order and
    /// each name's edges), each built and handed to `each` in turn.
    pub fn for_each_edge(&self, each: &mut dyn FnMut(&Edge) -> Result<()>) -> Result<()> {
        let sql = whole_edge_scan_sql(self.ctx);
        self.each_row(&sql, "listing edges from table edges", edge_from_row, each)
    }

    /// [`Q::for_each_node`] handing over each node's compact JSON, written from
    /// its row without building the node ([`JsonRows`]), on a helper thread
    /// while this one steps the statement ([`scan::two_thread_json_scan`]).
    pub fn for_each_node_json(&self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let sql = node_scan_sql(&NodeFilter::default(), None, None);
        let writer = NodeLines(JsonRows::new(self.ctx));
        self.two_thread_scan(&sql, "listing nodes from table nodes", None, writer, each)
    }

    /// [`Q::for_each_edge`] handing over each edge's compact JSON, written from
    /// its row without building the edge ([`JsonRows`]).
    ///
    /// With the edges' names in their rows (format 9 on), the statement reads
    /// each source's edges in the table's own order, `(rel, to_id)`, without
    /// SQLite sorting them by `to` name (a temporary B-tree per source); the
    /// lines of one source and relation are gathered and handed over in `to`
    /// name order instead ([`EdgeRun`]): the same order as [`Q::for_each_edge`].
    pub fn for_each_edge_json(&self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut rows = JsonRows::new(self.ctx);
        let doing = "listing edges from table edges";
        if !self.ctx.edge_names {
            let sql = whole_edge_scan_sql(self.ctx);
            return self.each_json_row(&sql, doing, |row, out| rows.edge(row, out).map(drop), each);
        }
        let writer = EdgeLines {
            rows,
            run: EdgeRun::default(),
        };
        // A plain edge's line (format 12 on) is its key, weight and creation time
        // in a constant frame: the other cells of its row are not copied.
        let sparse = self.ctx.edge_flags.then_some(PLAIN_EDGE_CELLS);
        self.two_thread_scan(
            &edge_run_scan_sql(self.ctx.edge_flags),
            doing,
            sparse,
            writer,
            each,
        )
    }

    /// Runs `sql` on this thread, `writer` writing its rows' lines on a helper
    /// thread, and hands the lines to `each` in turn.
    fn two_thread_scan(
        &self,
        sql: &Sql,
        doing: &str,
        sparse: Option<Sparse>,
        writer: impl LineWriter,
        each: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        scan::two_thread_json_scan(
            |step| self.scan(sql, doing, |row| step(row)),
            |e| self.ctx.error(|| doing.to_owned(), e),
            sparse,
            writer,
            each,
        )
    }

    /// Runs `sql` and hands each row's compact JSON, written by `write` into one
    /// buffer reused from row to row, to `each` in turn.
    fn each_json_row(
        &self,
        sql: &Sql,
        doing: &str,
        mut write: impl FnMut(&rusqlite::Row<'_>, &mut Vec<u8>) -> Result<()>,
        each: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut text = Vec::with_capacity(512);
        self.scan(sql, doing, |row| {
            text.clear();
            write(row, &mut text)?;
            each(&text)
        })
    }

    /// Runs `sql` and hands each row, built by `build`, to `each` in turn.
    fn each_row<T>(
        &self,
        sql: &Sql,
        doing: &str,
        build: fn(&rusqlite::Row<'_>, &Ctx) -> Result<T>,
        each: &mut dyn FnMut(&T) -> Result<()>,
    ) -> Result<()> {
        self.scan(sql, doing, |row| each(&build(row, self.ctx)?))
    }

    /// Runs `sql` and calls `step` on each row in turn: the one row loop of the
    /// whole scans.
    fn scan(
        &self,
        sql: &Sql,
        doing: &str,
        mut step: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
    ) -> Result<()> {
        let doing = || doing.to_owned();
        let mut stmt = self.conn.prepare_cached(&sql.text).ctx(self.ctx, doing)?;
        let mut rows = stmt
            .query(params_from_iter(sql.params.iter()))
            .ctx(self.ctx, doing)?;
        while let Some(row) = rows.next().ctx(self.ctx, doing)? {
            step(row)?;
        }
        Ok(())
    }

    pub fn edges_of(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Result<Vec<Edge>> {
        Ok(self
            .edges_from(Start::Name, name, direction, relations, None)?
            .unwrap_or_default())
    }

    /// [`Q::edges_of`] of a node that exists, `None` when it does not. With
    /// `ends_are_nodes` (a committed snapshot: every committed edge's ends are
    /// nodes) edges found from the name alone ([`Start::Name`]) are the node's,
    /// without reading its row; only when there are none does a second statement
    /// look the node up ([`Start::Node`]), and then its answer alone is given: each
    /// answer is one statement's, so one snapshot's, outside a transaction too.
    /// Without it (a write transaction, whose deferred checks let an edge name a
    /// node not created yet) one statement looks the node up.
    ///
    /// With `ends` (a read snapshot of several statements, [`EndIds`]) the integer
    /// ids of the names its plain reads gave as the `to` end of edges are kept, and
    /// the outgoing edges of such a name are read from its id ([`Start::Id`]),
    /// without the seek in `names`; when that finds none, the node's statement
    /// answers ([`Start::Node`]).
    pub fn edges_of_node(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
        ends_are_nodes: bool,
        ends: Option<&EndIds>,
    ) -> Result<Option<Vec<Edge>>> {
        let ends = ends.filter(|_| ends_are_nodes && self.ctx.edge_flags);
        if direction == Direction::Out
            && let Some(id) = ends.and_then(|ends| ends.get(name))
        {
            // A read from an id keeps no ids itself: a walk's next hop after it reads
            // from the name again (each kept id costs its read a cell an edge).
            let found = self.edges_from(Start::Id(id), name, direction, relations, None)?;
            if let Some(found) = found.filter(|found| !found.is_empty()) {
                return Ok(Some(found));
            }
            return self.edges_from(Start::Node, name, direction, relations, None);
        }
        name_first(ends_are_nodes, |start| {
            self.edges_from(start, name, direction, relations, ends)
        })
    }

    /// The edges of the start (the name `name`, or its node), by key, in one
    /// statement; `None` when it gives no row at all (from [`Start::Node`]: no such node).
    /// When this thread's last reads found only plain edges ([`plain_reads_expected`]),
    /// the statement reads a plain row's four cells alone ([`Reads::PlainEdges`]);
    /// a row that is not plain ends it, and the whole rows are read instead
    /// (again: one statement's answer is given). A plain read of outgoing edges
    /// keeps the ids of their `to` ends in `ends`, if given.
    fn edges_from(
        &self,
        start: Start,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
        ends: Option<&EndIds>,
    ) -> Result<Option<Vec<Edge>>> {
        let leaving = match direction {
            Direction::Out => Some(true),
            Direction::In => Some(false),
            Direction::Both => None,
        };
        let mut found = None;
        if self.ctx.edge_flags && plain_reads_expected() {
            // A row that is not plain: the whole read below tells the streak.
            let ends = ends.filter(|_| direction == Direction::Out);
            found = self.plain_edges_from(start, name, direction, relations, leaving, ends)?;
        }
        let found = match found {
            Some(found) => found,
            None => {
                let mut all_plain = true;
                let mut edges = Vec::new();
                let any =
                    self.adjacency_rows(Reads::Edges, start, name, direction, relations, |row| {
                        // A `NULL` relation: the row of a node without such edges.
                        if let Some((edge, plain)) =
                            adjacent_edge_from_row(row, self.ctx, name, leaving)?
                        {
                            all_plain &= plain;
                            push_edge(&mut edges, edge);
                        }
                        Ok(true)
                    })?;
                if self.ctx.edge_flags && !edges.is_empty() {
                    plain_reads_saw(all_plain);
                }
                any.then_some(edges)
            }
        };
        let Some(mut edges) = found else {
            return Ok(None);
        };
        // A node's degree of rows, sorted here rather than in a temporary B-tree, by
        // key; one end is the start's in a single direction, so the others decide.
        match direction {
            // The rows come by relation (`ORDER BY e.rel`, [`adjacency_sql`]): each
            // relation's run is sorted by the `to` name, most runs being one edge.
            Direction::Out => {
                for run in edges.chunk_by_mut(|a, b| a.relation_type == b.relation_type) {
                    if run.len() > 1 {
                        run.sort_unstable_by(|a, b| a.to.cmp(&b.to));
                    }
                }
            }
            Direction::In => edges.sort_unstable_by(|a, b| {
                (a.from.as_str(), a.relation_type.as_str())
                    .cmp(&(b.from.as_str(), b.relation_type.as_str()))
            }),
            Direction::Both => edges.sort_unstable_by(|a, b| {
                (a.from.as_str(), a.relation_type.as_str(), a.to.as_str()).cmp(&(
                    b.from.as_str(),
                    b.relation_type.as_str(),
                    b.to.as_str(),
                ))
            }),
        }
        Ok(Some(edges))
    }

    /// [`Q::edges_from`] with [`Reads::PlainEdges`], unsorted: `None` when a row
    /// is not plain (the read stops there), `Some(None)` when no row came. With
    /// `ends` (outgoing edges only), each edge's `to` id is read too and kept there
    /// ([`Reads::PlainEdgesWithIds`]).
    fn plain_edges_from(
        &self,
        start: Start,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
        leaving: Option<bool>,
        ends: Option<&EndIds>,
    ) -> Result<Option<Option<Vec<Edge>>>> {
        let (mut edges, mut plain) = (Vec::new(), true);
        let reads = if ends.is_some() {
            Reads::PlainEdgesWithIds
        } else {
            Reads::PlainEdges
        };
        let doing = || format!("reading the edges of {}", node_subject(name));
        let any = self.adjacency_rows(reads, start, name, direction, relations, |row| {
            match push_plain_adjacent_edge(row, self.ctx, name, leaving, &mut edges)? {
                PlainRow::Absent => {}
                PlainRow::Edge => {
                    if let Some((ends, edge)) = ends.zip(edges.last()) {
                        ends.put(&edge.to, self.int(row, PLAIN_END_ID, doing)?);
                    }
                }
                PlainRow::NotPlain => plain = false,
            }
            Ok(plain)
        })?;
        Ok(plain.then(|| any.then_some(edges)))
    }

    /// Runs the adjacency statement of `reads` from the start and calls `each` with
    /// its rows while it says to go on; whether there was a row.
    fn adjacency_rows(
        &self,
        reads: Reads,
        start: Start,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
        mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<bool>,
    ) -> Result<bool> {
        let text = adjacency_text(
            reads,
            start,
            direction,
            relations.len(),
            self.ctx.edge_names,
            self.ctx.edge_flags,
        );
        let doing = || format!("reading the edges of {}", node_subject(name));
        self.with_text(text, doing, |stmt| {
            bind_adjacency(stmt, start, name, relations).ctx(self.ctx, doing)?;
            let mut rows = stmt.raw_query();
            let mut any = false;
            while let Some(row) = rows.next().ctx(self.ctx, doing)? {
                any = true;
                if !each(row)? {
                    break;
                }
            }
            Ok(any)
        })
    }

    /// The name at the other end of each of a node's edges, in edge-key order, from
    /// the edge indexes and `names` alone (no edge row is read); `None` when the
    /// node does not exist. As [`Q::edges_of_node`] reads: with `ends_are_nodes`, one
    /// statement when the node has such edges, two when not; without, one.
    pub fn neighbour_names(
        &self,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
        ends_are_nodes: bool,
    ) -> Result<Option<Vec<String>>> {
        name_first(ends_are_nodes, |start| {
            self.neighbours_from(start, name, direction, relations)
        })
    }

    /// [`Q::neighbour_names`] from the start (the name, or its node), in one
    /// statement; `None` when it gives no row at all.
    fn neighbours_from(
        &self,
        start: Start,
        name: &str,
        direction: Direction,
        relations: &[RelationType],
    ) -> Result<Option<Vec<String>>> {
        // (whether the edge leaves the node, relation, the other end's name)
        let text = adjacency_text(
            Reads::Neighbours,
            start,
            direction,
            relations.len(),
            self.ctx.edge_names,
            self.ctx.edge_flags,
        );
        let doing = || format!("reading the neighbours of {}", node_subject(name));
        let (any, mut rows) = self.with_text(text, doing, |stmt| {
            bind_adjacency(stmt, start, name, relations).ctx(self.ctx, doing)?;
            let mut found = stmt.raw_query();
            let (mut any, mut rows) = (false, Vec::<(bool, String, String)>::new());
            while let Some(row) = found.next().ctx(self.ctx, doing)? {
                any = true;
                // A `NULL` relation: the row of a node without such edges.
                if let Some(rel) = row.get::<_, Option<String>>(1).ctx(self.ctx, doing)? {
                    rows.push((
                        row.get(0).ctx(self.ctx, doing)?,
                        rel,
                        row.get(2).ctx(self.ctx, doing)?,
                    ));
                }
            }
            Ok((any, rows))
        })?;
        if !any {
            return Ok(None);
        }
        // Edge-key order: (from, relation, to), the node itself at one end.
        fn key<'r>(name: &'r str, row: &'r (bool, String, String)) -> (&'r str, &'r str, &'r str) {
            let (leaving, rel, other) = row;
            if *leaving {
                (name, rel, other)
            } else {
                (other, rel, name)
            }
        }
        rows.sort_unstable_by(|a, b| key(name, a).cmp(&key(name, b)));
        Ok(Some(rows.into_iter().map(|(_, _, other)| other).collect()))
    }

    pub fn dependents_of(&self, name: &str) -> Result<Vec<String>> {
        let doing = || format!("reading the dependents of {}", node_subject(name));
        self.rows(
            "SELECT k.name FROM node_deps d JOIN names k ON k.id = d.node_id \
             WHERE d.dep_id = (SELECT id FROM names WHERE name = ?1) ORDER BY k.name",
            [name],
            doing,
            |row| row.get(0).ctx(self.ctx, doing),
        )
    }

    fn count(&self, sql: &str, what: &str) -> Result<u64> {
        let doing = || format!("counting {what}");
        let n: i64 = self
            .one(sql, [], doing, |row| self.int(row, 0, doing))?
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The number of nodes in a file of this format: the sum of table
    /// `node_type_counts` from format 10 on, the rows of `nodes` before.
    pub fn count_nodes(&self, format: i64) -> Result<u64> {
        if format >= TYPE_COUNTS_SINCE {
            self.count(
                "SELECT coalesce(sum(nodes), 0) FROM node_type_counts",
                "the nodes in table node_type_counts",
            )
        } else {
            self.count("SELECT count(*) FROM nodes", "the rows of table nodes")
        }
    }

    pub fn count_edges(&self) -> Result<u64> {
        self.count("SELECT count(*) FROM edges", "the rows of table edges")
    }

    pub fn get_schema(&self, target: &SchemaTarget) -> Result<Option<Value>> {
        let key = target.key();
        let doing = || format!("reading the schema for {target} from table schemas");
        self.one(
            "SELECT document FROM schemas WHERE target = ?1",
            [key.as_str()],
            doing,
            |row| {
                let text: String = row.get(0).ctx(self.ctx, doing)?;
                serde_json::from_str(&text).map_err(|e| {
                    self.ctx.corrupt(format!(
                        "table schemas, row '{key}', column document: bad JSON: {e}"
                    ))
                })
            },
        )
    }

    pub fn list_schemas(&self) -> Result<Vec<(SchemaTarget, Value)>> {
        let doing = || "listing table schemas".to_owned();
        let mut out = self.rows("SELECT target, document FROM schemas", [], doing, |row| {
            let key: String = row.get(0).ctx(self.ctx, doing)?;
            let text: String = row.get(1).ctx(self.ctx, doing)?;
            let target = SchemaTarget::from_key(&key).map_err(|e| {
                self.ctx
                    .corrupt(format!("table schemas, row '{key}', column target: {e}"))
            })?;
            let document = serde_json::from_str(&text).map_err(|e| {
                self.ctx.corrupt(format!(
                    "table schemas, row '{key}', column document: bad JSON: {e}"
                ))
            })?;
            Ok((target, document))
        })?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    // ----- native overrides -----

    pub fn contains_node(&self, name: &str) -> Result<bool> {
        Ok(self.node_id(name)?.is_some())
    }

    /// The first of `names` (in their order) that is a node, in one query.
    pub fn first_existing_node(&self, names: &[&str]) -> Result<Option<usize>> {
        self.first_of(FIRST_EXISTING_NODE, names, "names in table nodes")
    }

    /// The first of `names` (in their order) that is not a node, in one query.
    pub fn first_missing_node(&self, names: &[&str]) -> Result<Option<usize>> {
        self.first_of(FIRST_MISSING_NODE, names, "names in table nodes")
    }

    /// The first of `edges` (in their order) whose key is a stored edge, in one
    /// query: the keys go in as `[from, relation, to]` arrays.
    pub fn first_existing_edge(&self, edges: &[Edge]) -> Result<Option<usize>> {
        // Into a graph without edges (a bulk load), there is nothing to look for.
        if edges.is_empty() || !self.any_edge()? {
            return Ok(None);
        }
        let triples: Vec<[&str; 3]> = edges
            .iter()
            .map(|e| [e.from.as_str(), e.relation_type.as_str(), e.to.as_str()])
            .collect();
        self.first_of(FIRST_EXISTING_EDGE, &triples, "keys in table edges")
    }

    /// The position `sql` finds among `items`, given to it as one JSON array (SQLite
    /// caps the number of parameters); `None` for none or no items.
    fn first_of<T: serde::Serialize>(
        &self,
        sql: &str,
        items: &[T],
        what: &str,
    ) -> Result<Option<usize>> {
        if items.is_empty() {
            return Ok(None);
        }
        let doing = || format!("looking up {} {what}", items.len());
        let json = serde_json::to_string(items).map_err(|e| Error::backend("sqlite", e))?;
        let found = self.one(sql, [json], doing, |row| self.int(row, 0, doing))?;
        Ok(found.and_then(|i| usize::try_from(i).ok()))
    }

    /// Whether table `edges` has a row (one step into its B-tree).
    fn any_edge(&self) -> Result<bool> {
        let doing = || "looking for any row of table edges".to_owned();
        Ok(self
            .one("SELECT 1 FROM edges LIMIT 1", [], doing, |_| Ok(()))?
            .is_some())
    }

    pub fn contains_edge(&self, key: &EdgeKey) -> Result<bool> {
        let doing = || format!("looking up edge {key} in table edges");
        Ok(self
            .one(
                "SELECT 1 FROM edges WHERE from_id = (SELECT id FROM names WHERE name = ?1) \
                 AND rel = ?2 AND to_id = (SELECT id FROM names WHERE name = ?3)",
                [
                    key.from.as_str(),
                    key.relation_type.as_str(),
                    key.to.as_str(),
                ],
                doing,
                |_| Ok(()),
            )?
            .is_some())
    }

    /// The transitive dependencies by one recursive CTE, ordered by
    /// [`algo::topological_order`]: one statement, which finds the node itself
    /// (its row comes first, without a name); `None` when the closure is not a clean
    /// DAG of existing nodes, for the reference algorithm to report exactly what is
    /// wrong.
    ///
    /// With `members_are_nodes` (a committed snapshot: [`crate::SqliteBackend`]'s
    /// read transactions) the statement does not look each member up in `nodes`:
    /// every commit through the store checks that each dependency names a node
    /// (at once, or at commit when checks are deferred), deleting a node others
    /// depend on is refused, detached or cascaded, imports and restores check their
    /// references, and `check` reports a dependency on a missing node. Inside a write
    /// transaction (`false`) a dependency may name a node not yet created (checks
    /// deferred to commit), so each member is looked up.
    pub fn resolve_dependencies(
        &self,
        name: &str,
        members_are_nodes: bool,
    ) -> Result<Option<Vec<String>>> {
        let doing = || format!("resolving the dependencies of {}", node_subject(name));
        let sql = if members_are_nodes {
            DEPENDENCY_CLOSURE_OF_NODES
        } else {
            DEPENDENCY_CLOSURE_CHECKED
        };
        let mut start: Option<i64> = None;
        let mut all_nodes = true;
        let mut names: Vec<(i64, String)> = Vec::new();
        let mut links: Vec<(i64, i64)> = Vec::new();
        self.rows(sql, [name], doing, |row| {
            let id = self.int(row, 0, doing)?;
            if row.get_ref(1).ctx(self.ctx, doing)? == rusqlite::types::ValueRef::Null {
                // The start's row, which has no name.
                start = Some(id);
                return Ok(());
            }
            // A member's rows (one per dependency) come together: its name is read
            // from the first.
            if names.last().is_none_or(|(last, _)| *last != id) {
                names.push((id, row.get::<_, String>(1).ctx(self.ctx, doing)?));
                if !members_are_nodes && self.int(row, 3, doing)? == 0 {
                    all_nodes = false;
                }
            }
            if let Some(dep) = row.get::<_, Option<i64>>(2).ctx(self.ctx, doing)? {
                links.push((id, dep));
            }
            Ok(())
        })?;
        let start = start.ok_or_else(|| Error::node_not_found(name))?;
        // The start in its own closure is a cycle.
        if !all_nodes || names.iter().any(|(id, _)| *id == start) {
            return Ok(None);
        }
        Ok(order(names, &links))
    }

    /// The transitive dependents by one recursive CTE, one statement as
    /// [`Q::resolve_dependencies`]; `None` as there.
    pub fn resolve_dependents(&self, name: &str) -> Result<Option<Vec<String>>> {
        let doing = || format!("resolving the dependents of {}", node_subject(name));
        let rows = self.rows(
            concat!(
                "WITH RECURSIVE ",
                root_cte!(),
                ", up(id) AS ( \
                 SELECT d.node_id FROM root r JOIN node_deps d ON d.dep_id = r.id \
                 UNION \
                 SELECT d.node_id FROM up u JOIN node_deps d ON d.dep_id = u.id) \
             SELECT id, NULL, NULL FROM root \
             UNION ALL \
             SELECT u.id, k.name, d.dep_id FROM up u JOIN names k ON k.id = u.id \
             LEFT JOIN node_deps d ON d.node_id = u.id AND d.dep_id != (SELECT id FROM root) \
                 AND d.dep_id IN (SELECT id FROM up) \
             WHERE u.id != (SELECT id FROM root)"
            ),
            [name],
            doing,
            |row| {
                Ok((
                    self.int(row, 0, doing)?,
                    row.get::<_, Option<String>>(1).ctx(self.ctx, doing)?,
                    row.get::<_, Option<i64>>(2).ctx(self.ctx, doing)?,
                ))
            },
        )?;
        root_of(name, rows.iter().map(|(id, member, _)| (*id, member)))?;
        let mut names: Vec<(i64, String)> = Vec::new();
        let mut links: Vec<(i64, i64)> = Vec::new();
        for (id, member, dep) in rows {
            let Some(member) = member else { continue };
            names.push((id, member));
            if let Some(dep) = dep {
                links.push((id, dep));
            }
        }
        Ok(order(names, &links))
    }

    /// The one-hop steps from the ids in column `column` of `source` (a `FROM` item
    /// aliased `f`) as `SELECT` arms joined by `compound` (`UNION` for each id once,
    /// `UNION ALL` when the caller removes repeats itself): edges in the asked
    /// direction, and bidirectional edges the other way. `bind` is the source's
    /// parameter, bound once per arm. `CROSS JOIN` keeps the frontier outside: the
    /// planner, which cannot know how small a level is, would otherwise scan the edges.
    /// With `named` (format 9 on) each arm also gives the reached end's name, from the
    /// edge row or `edges_by_to` (the step backwards along bidirectional edges keeps to
    /// their partial index and looks the names it finds up in `names`).
    /// With `flags` (format 12 on) an edge is bidirectional by bit 1 of its column
    /// `flags`, before by its column `bidirectional`.
    #[allow(clippy::too_many_arguments)]
    fn hop_arms(
        sql: &mut Sql,
        direction: Direction,
        relations: &[RelationType],
        source: &str,
        column: &str,
        bind: Option<&str>,
        compound: &str,
        named: bool,
        flags: bool,
    ) {
        for (i, (matched, reached, bidirectional_only)) in hop_steps(direction).iter().enumerate() {
            if i > 0 {
                sql.push(" ").push(compound).push(" ");
            }
            if named {
                let name = reached_name((*matched, *reached, *bidirectional_only), "e");
                sql.push(&format!(
                    "SELECT e.{reached}, {name} FROM {source} f \
                     CROSS JOIN edges e ON e.{matched} = f.{column} WHERE 1"
                ));
            } else {
                sql.push(&format!(
                    "SELECT e.{reached} FROM {source} f \
                     CROSS JOIN edges e ON e.{matched} = f.{column} WHERE 1"
                ));
            }
            if let Some(bind) = bind {
                sql.bind(bind.to_owned());
            }
            if *bidirectional_only {
                sql.push(&format!(" AND e.{}", bidirectional_column(flags)));
            }
            if !relations.is_empty() {
                sql.and_in("e.rel", relations.iter().map(RelationType::as_str));
            }
        }
    }

    /// A breadth-first traversal in SQL over name ids, one set-at-a-time query per
    /// level: the whole frontier's neighbours at once, each node expanded once.
    /// Every id reached, with its smallest depth, in the order reached.
    ///
    /// (A recursive CTE cannot keep a visited set: keyed by `(node, depth)` it
    /// expands a node again at every depth it is reached at, and measured 10–60%
    /// slower than this at depths 1 to 4 on 100,000 nodes and 500,000 edges.)
    fn traverse_ids(
        &self,
        start_id: i64,
        start: &str,
        options: &TraverseOptions,
    ) -> Result<Vec<(i64, usize)>> {
        let reached = self.traverse_levels(Some(start_id), start, options)?;
        Ok(reached
            .into_iter()
            .map(|(id, depth, _)| (id, depth))
            .collect())
    }

    /// [`Q::traverse_ids`] from the start's id, or, without one (`None`), each id
    /// with its name, read from the edges themselves (format 9 on), the first level
    /// finding the start by its name itself (no start: nothing reached) and the
    /// start left out by name. With an id, the names are empty.
    fn traverse_levels(
        &self,
        start_id: Option<i64>,
        start: &str,
        options: &TraverseOptions,
    ) -> Result<Vec<(i64, usize, String)>> {
        let doing = || format!("traversing from {}", node_subject(start));
        let named = start_id.is_none();
        let mut seen: HashSet<i64> = start_id.into_iter().collect();
        let mut frontier: Vec<i64> = start_id.into_iter().collect();
        let mut reached: Vec<(i64, usize, String)> = Vec::new();
        for depth in 1..=options.max_depth {
            let ids = serde_json::to_string(&frontier).map_err(|e| Error::backend("sqlite", e))?;
            let (source, bind) = if depth == 1 && named {
                ("(SELECT id FROM names WHERE name = ?)", start)
            } else {
                ("json_each(?)", ids.as_str())
            };
            let mut sql = Sql::new("");
            Self::hop_arms(
                &mut sql,
                options.direction,
                &options.relations,
                source,
                if depth == 1 && named { "id" } else { "value" },
                Some(bind),
                "UNION",
                named,
                self.ctx.edge_flags,
            );
            let next: Vec<(i64, String)> = self.rows(
                &sql.text,
                params_from_iter(sql.params.iter()),
                doing,
                |row| {
                    let name = if named {
                        row.get(1).ctx(self.ctx, doing)?
                    } else {
                        String::new()
                    };
                    Ok((self.int(row, 0, doing)?, name))
                },
            )?;
            let mut level: Vec<(i64, String)> = next
                .into_iter()
                .filter(|(id, name)| !(named && name == start) && seen.insert(*id))
                .collect();
            if level.is_empty() {
                break;
            }
            level.sort_unstable_by_key(|(id, _)| *id);
            frontier = level.iter().map(|(id, _)| *id).collect();
            reached.extend(level.into_iter().map(|(id, name)| (id, depth, name)));
        }
        Ok(reached)
    }

    /// The names of name ids.
    fn names_by_id(
        &self,
        ids: &[i64],
        doing: impl Fn() -> String + Copy,
    ) -> Result<HashMap<i64, String>> {
        let ids_json = serde_json::to_string(ids).map_err(|e| Error::backend("sqlite", e))?;
        Ok(self
            .rows(
                "SELECT k.id, k.name FROM json_each(?1) j JOIN names k ON k.id = j.value",
                [ids_json],
                doing,
                |row| Ok((self.int(row, 0, doing)?, row.get(1).ctx(self.ctx, doing)?)),
            )?
            .into_iter()
            .collect())
    }

    /// Whether [`Q::traverse_node`] answers with one statement: a traversal of up to
    /// [`TRAVERSE_LEVELS_PER_QUERY`] levels in a file whose edge rows carry the
    /// names of their ends (`edge_names`: format 9 on).
    pub fn traverse_is_one_statement(edge_names: bool, options: &TraverseOptions) -> bool {
        edge_names && (1..=TRAVERSE_LEVELS_PER_QUERY).contains(&options.max_depth)
    }

    /// [`kgstore_core::ReadTxn::traverse_node`] in one statement ([`traverse_sql`]),
    /// which finds the start itself (its first row, at depth 0, says that the node
    /// exists) and gives each node reached with its smallest depth and its name, read
    /// from the edges; `None` when there is no such node. Only when
    /// [`Q::traverse_is_one_statement`] (the caller has checked).
    pub fn traverse_node(
        &self,
        start: &str,
        options: &TraverseOptions,
    ) -> Result<Option<Vec<Visit>>> {
        let doing = || format!("traversing from {}", node_subject(start));
        let sql = shaped_sql(
            Shape::Traverse {
                direction: options.direction,
                relations: options.relations.clone(),
                levels: options.max_depth,
                flags: self.ctx.edge_flags,
            },
            || traverse_sql(options, self.ctx.edge_flags),
        );
        let mut stmt = self.conn.prepare_cached(&sql.text).ctx(self.ctx, doing)?;
        let mut rows = stmt
            .query(params_from_iter(sql.with_start(start)))
            .ctx(self.ctx, doing)?;
        // Each node is kept at its smallest depth. The rows come as the statement
        // lists them (start, first level, second), but nothing depends on it: a
        // second level's end is left unread only when the first level has it.
        let mut start_id: Option<i64> = None;
        let mut first: Vec<(i64, String)> = Vec::new();
        let mut first_ids = IdSet::default();
        let mut later: Vec<(i64, String)> = Vec::new();
        while let Some(row) = rows.next().ctx(self.ctx, doing)? {
            let depth = self.int(row, 0, doing)?;
            let id = self.int(row, 1, doing)?;
            match depth {
                0 => start_id = Some(id),
                1 => {
                    if first_ids.insert(id) {
                        first.push((id, self.text(row, 2, doing)?));
                    }
                }
                _ => {
                    if !first_ids.contains(&id) {
                        later.push((id, self.text(row, 2, doing)?));
                    }
                }
            }
        }
        let Some(start_id) = start_id else {
            return Ok(None);
        };
        let mut seen = IdSet::default();
        seen.insert(start_id);
        let mut visits: Vec<Visit> = Vec::with_capacity(first.len() + later.len());
        for (depth, level) in [(1, first), (2, later)] {
            for (id, name) in level {
                if seen.insert(id) {
                    visits.push(Visit { name, depth });
                }
            }
        }
        visits.sort_unstable_by(|a, b| (a.depth, &a.name).cmp(&(b.depth, &b.name)));
        Ok(Some(visits))
    }

    /// Column `index` of a row as text.
    fn text(
        &self,
        row: &rusqlite::Row<'_>,
        index: usize,
        doing: impl Fn() -> String + Copy,
    ) -> Result<String> {
        row.get(index).ctx(self.ctx, doing)
    }

    /// A breadth-first traversal ([`Q::traverse_ids`]), named: in one statement when
    /// it can be ([`Q::traverse_node`]).
    pub fn traverse(&self, start: &str, options: &TraverseOptions) -> Result<Vec<Visit>> {
        if Self::traverse_is_one_statement(self.ctx.edge_names, options) {
            return Ok(self.traverse_node(start, options)?.unwrap_or_default());
        }
        let mut visits: Vec<Visit> = if self.ctx.edge_names {
            // Each level's names come with its ids, from the edges; the first level
            // looks the start up itself.
            self.traverse_levels(None, start, options)?
                .into_iter()
                .map(|(_, depth, name)| Visit { name, depth })
                .collect()
        } else {
            let Some(start_id) = self.name_id(start)? else {
                return Ok(Vec::new());
            };
            let reached = self.traverse_ids(start_id, start, options)?;
            let doing = || format!("traversing from {}", node_subject(start));
            let ids: Vec<i64> = reached.iter().map(|(id, _)| *id).collect();
            let names = self.names_by_id(&ids, doing)?;
            reached
                .into_iter()
                .filter_map(|(id, depth)| {
                    names.get(&id).map(|name| Visit {
                        name: name.clone(),
                        depth,
                    })
                })
                .collect()
        };
        visits.sort_by(|a, b| (a.depth, &a.name).cmp(&(b.depth, &b.name)));
        Ok(visits)
    }

    /// The ids `options.hops` hops lead to from an existing node (see
    /// [`kgstore_core::Reach`]): within, by the traversal; exactly, by chains of
    /// set-at-a-time levels in one query each ([`exact_reach_sql`]).
    fn reach_ids(&self, start_id: i64, start: &str, options: &ReachOptions) -> Result<Vec<i64>> {
        if options.reach == Reach::Within {
            let reached = self.traverse_ids(start_id, start, &options.traverse_options())?;
            return Ok(reached.into_iter().map(|(id, _)| id).collect());
        }
        let doing = || format!("following walks from {}", node_subject(start));
        let mut frontier = vec![start_id];
        let mut left = options.hops;
        while left > 0 && !frontier.is_empty() {
            let levels = left.min(EXACT_LEVELS_PER_QUERY);
            let ids = serde_json::to_string(&frontier).map_err(|e| Error::backend("sqlite", e))?;
            let sql = exact_reach_sql(
                Frontier::Ids(&ids),
                frontier.len(),
                options,
                levels,
                "SELECT DISTINCT id FROM walk",
                self.ctx.edge_flags,
            );
            frontier = self.rows(
                &sql.text,
                params_from_iter(sql.params.iter()),
                doing,
                |row| self.int(row, 0, doing),
            )?;
            left -= levels;
        }
        Ok(frontier)
    }

    /// [`kgstore_core::ReadTxn::reach`] over name ids, named at the end.
    pub fn reach(&self, start: &str, options: &ReachOptions) -> Result<Option<Vec<String>>> {
        let Some(start_id) = self.node_id(start)? else {
            return Ok(None);
        };
        let ids = self.reach_ids(start_id, start, options)?;
        let doing = || format!("naming the nodes reached from {}", node_subject(start));
        let mut names: Vec<String> = self.names_by_id(&ids, doing)?.into_values().collect();
        names.sort_unstable();
        Ok(Some(names))
    }

    /// Whether [`Q::reach_count`] answers with one statement: a walk of exactly up to
    /// [`EXACT_LEVELS_PER_QUERY`] hops, counted in SQL from the node it looks up itself.
    pub fn reach_count_is_one_statement(options: &ReachOptions) -> bool {
        options.reach == Reach::Exactly && (1..=EXACT_LEVELS_PER_QUERY).contains(&options.hops)
    }

    /// [`kgstore_core::ReadTxn::reach_count`]: one statement when
    /// [`Q::reach_count_is_one_statement`], which also tells whether the node exists
    /// (its first column counts the start's ids: 0 or 1).
    pub fn reach_count(&self, start: &str, options: &ReachOptions) -> Result<Option<u64>> {
        if Self::reach_count_is_one_statement(options) {
            let doing = || format!("counting walks from {}", node_subject(start));
            let flags = self.ctx.edge_flags;
            let sql = shaped_sql(
                Shape::CountWalks {
                    direction: options.direction,
                    relations: options.relations.clone(),
                    levels: options.hops,
                    flags,
                },
                || {
                    if options.hops <= CHAINED_HOPS {
                        walk_count_sql(options, flags)
                    } else {
                        exact_reach_sql(
                            Frontier::Node(""),
                            1,
                            options,
                            options.hops,
                            "SELECT (SELECT count(*) FROM l0), count(DISTINCT id) FROM walk",
                            flags,
                        )
                    }
                },
            );
            if options.hops <= CHAINED_HOPS {
                // One row when the node exists.
                let n = self.one(
                    &sql.text,
                    params_from_iter(sql.with_start(start)),
                    doing,
                    |row| self.int(row, 0, doing),
                )?;
                return Ok(n.map(|n| u64::try_from(n).unwrap_or(0)));
            }
            let (starts, n) = self
                .one(
                    &sql.text,
                    params_from_iter(sql.with_start(start)),
                    doing,
                    |row| Ok((self.int(row, 0, doing)?, self.int(row, 1, doing)?)),
                )?
                .unwrap_or((0, 0));
            return Ok((starts > 0).then(|| u64::try_from(n).unwrap_or(0)));
        }
        let Some(start_id) = self.node_id(start)? else {
            return Ok(None);
        };
        let ids = self.reach_ids(start_id, start, options)?;
        Ok(Some(u64::try_from(ids.len()).unwrap_or(u64::MAX)))
    }

    /// Counts by type from the indexes (nodes: from table `node_type_counts` in a
    /// file of format 10 or later).
    pub fn stats(&self, format: i64) -> Result<Stats> {
        let doing = || "counting nodes and edges by type".to_owned();
        let by_type = |sql: &str| -> Result<BTreeMap<String, u64>> {
            Ok(self
                .rows(sql, [], doing, |row| {
                    let n = self.int(row, 1, doing)?;
                    Ok((
                        row.get(0).ctx(self.ctx, doing)?,
                        u64::try_from(n).unwrap_or(0),
                    ))
                })?
                .into_iter()
                .collect())
        };
        Ok(Stats {
            nodes: self.count_nodes(format)?,
            edges: self.count_edges()?,
            schemas: self.count("SELECT count(*) FROM schemas", "the rows of table schemas")?,
            dependencies: self.count(
                "SELECT count(*) FROM node_deps",
                "the rows of table node_deps",
            )?,
            node_types: by_type(if format >= TYPE_COUNTS_SINCE {
                "SELECT node_type, nodes FROM node_type_counts"
            } else {
                "SELECT node_type, count(*) FROM nodes GROUP BY node_type"
            })?,
            relation_types: by_type("SELECT rel, count(*) FROM edges GROUP BY rel")?,
        })
    }
}

/// Where an adjacency query starts, both found by the query itself from the name
/// bound as `?1`: the id of the name, whether or not a node has it (no rows when
/// the name has no edges), or the node of that name, which each arm joins its edges
/// to with a `LEFT JOIN`: a node without such edges still gives one row, whose
/// relation is `NULL` (never so in a stored edge), so one statement tells a node without edges
/// from no node (no rows at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    Name,
    Node,
    /// The name's id, as the read snapshot found it ([`EndIds`]), bound as `?1`
    /// in the name's place: the edges on the start's side with that id. No
    /// `names` seek; none when the node has no such edges (then the caller reads
    /// from [`Start::Node`]).
    Id(i64),
}

impl Start {
    /// `FROM` the start `sk` (its name row; `sn`, its node row) and the edges `e`
    /// on its `side` (`from_id` or `to_id`), with `on` added to the edges' join.
    /// ([`Start::Id`]'s statement reads no `names` row: [`adjacency_sql`] writes it.)
    fn from(self, side: &str, on: &str) -> String {
        match self {
            Start::Name | Start::Id(_) => {
                format!("FROM names sk JOIN edges e ON e.{side} = sk.id{on}")
            }
            Start::Node => format!(
                "FROM names sk JOIN nodes sn ON sn.id = sk.id \
                 LEFT JOIN edges e ON e.{side} = sn.id{on}"
            ),
        }
    }

    /// How the name at the other end of the edge joins.
    fn join(self) -> &'static str {
        match self {
            Start::Name | Start::Id(_) => "JOIN",
            Start::Node => "LEFT JOIN",
        }
    }
}

/// A node's adjacency read by `read` from a [`Start`]: with `ends_are_nodes` (a
/// committed snapshot) from the name alone first, and from the node's row only when
/// that finds nothing (then its answer alone, one statement's); without, from the
/// node's row at once ([`Q::edges_of_node`]).
fn name_first<T>(
    ends_are_nodes: bool,
    read: impl Fn(Start) -> Result<Option<Vec<T>>>,
) -> Result<Option<Vec<T>>> {
    if ends_are_nodes && let Some(found) = read(Start::Name)?.filter(|found| !found.is_empty()) {
        return Ok(Some(found));
    }
    read(Start::Node)
}

/// Whether this thread reads a node's edges with [`Reads::PlainEdges`] first: after
/// [`PLAIN_STREAK`] whole reads in a row that found only plain edges (as a thread
/// starts), until a read finds one that is not. A store whose edges carry content
/// thus reads whole rows, and pays a plain read that stops early at most once every
/// [`PLAIN_STREAK`] + 1 reads.
fn plain_reads_expected() -> bool {
    PLAIN_READS
        .try_with(|seen| seen.get() >= PLAIN_STREAK)
        .unwrap_or(false)
}

/// Tells [`plain_reads_expected`] whether a read's edges were all plain.
fn plain_reads_saw(all_plain: bool) {
    let _gone = PLAIN_READS.try_with(|seen| {
        seen.set(if all_plain {
            seen.get().saturating_add(1).min(PLAIN_STREAK)
        } else {
            0
        });
    });
}

/// How many whole reads in a row must find only plain edges before a thread reads
/// plain rows first again ([`plain_reads_expected`]).
const PLAIN_STREAK: u32 = 8;

thread_local! {
    /// The whole reads in a row, up to [`PLAIN_STREAK`], that found only plain
    /// edges on this thread.
    static PLAIN_READS: std::cell::Cell<u32> = const { std::cell::Cell::new(PLAIN_STREAK) };
}

/// The column of a [`Reads::PlainEdgesWithIds`] row holding the other end's id:
/// after [`ADJACENT_EDGE_HEAD`]'s three and [`PLAIN_EDGE_TAIL`]'s two.
const PLAIN_END_ID: usize = ADJACENT_EDGE_HEAD + 2;

/// How many names an [`EndIds`] keeps.
const ENDS_KEPT: usize = 32;

/// The integer ids of names that a read snapshot's plain reads of outgoing edges
/// from a name gave as their `to` ends, so that the outgoing edges of such a name
/// (the next hop of a walk, read with `edges_of` one name at a time) are read from
/// its id without the `names` seek ([`Start::Id`]). Ids are a snapshot's: one is
/// kept by each read transaction of several statements (`backend.rs`), never across
/// snapshots, and write transactions have none; within one snapshot a name's id
/// does not change, so a name found here is read from its id alone.
///
/// Each name is kept once (a name many edges end at takes one place, not one per
/// edge). Bounded: up to [`ENDS_KEPT`] names; once full, a new name replaces the
/// oldest kept (first in, first out). A walk reads the ends it found in the order
/// it found them, so the names kept longest are those most likely read already;
/// the newest, its next hops, stay. (Replacing the least recently *read* would
/// keep the names a walk is done with: it reads a name's edges once.) The names
/// are kept in one text one after the other (no allocation per name), found by
/// hash and compared whole; a replaced name's text is left in place and dropped
/// when the text would otherwise grow ([`Kept::compact`]). Both lists are
/// allocated at the first name (a zeroed table of slots cost a `calloc` per
/// snapshot, 1,900 instructions).
#[derive(Default)]
pub(crate) struct EndIds {
    kept: RefCell<Kept>,
}

/// [`EndIds`]' lists: per name its hash, where it is in `names`, and its id; which
/// entry is the oldest once the list is full; and how many bytes of `names` are
/// the text of replaced names.
#[derive(Default)]
struct Kept {
    entries: Vec<(u64, Range<usize>, i64)>,
    names: Vec<u8>,
    oldest: usize,
    dead: usize,
}

impl Kept {
    /// Drops the text of replaced names from `names`: the live names are moved
    /// down in the order they are in the text, their ranges updated.
    fn compact(&mut self) {
        let mut order = [0usize; ENDS_KEPT];
        let count = self.entries.len().min(ENDS_KEPT);
        for (i, slot) in order.iter_mut().enumerate() {
            *slot = i;
        }
        let order = order.get_mut(..count).unwrap_or_default();
        order.sort_unstable_by_key(|&i| self.entries.get(i).map_or(0, |e| e.1.start));
        let mut to = 0;
        for &i in order.iter() {
            if let Some(entry) = self.entries.get_mut(i) {
                let len = entry.1.len();
                self.names.copy_within(entry.1.clone(), to);
                entry.1 = to..to + len;
                to += len;
            }
        }
        self.names.truncate(to);
        self.dead = 0;
    }
}

impl EndIds {
    /// Keeps `id` as the id of `name`: in the place it has if it is kept already,
    /// else in a new one, or in the oldest's once [`ENDS_KEPT`] names are kept.
    fn put(&self, name: &str, id: i64) {
        let Ok(mut kept) = self.kept.try_borrow_mut() else {
            return;
        };
        let kept = &mut *kept;
        let hash = name_hash(name);
        let names = &kept.names;
        if let Some(entry) = kept.entries.iter_mut().find(|(kept_hash, at, _)| {
            *kept_hash == hash && names.get(at.clone()) == Some(name.as_bytes())
        }) {
            entry.2 = id;
            return;
        }
        if kept.entries.capacity() == 0 {
            kept.entries.reserve_exact(ENDS_KEPT);
            kept.names.reserve(ENDS_KEPT * 8);
        }
        let slot = if kept.entries.len() < ENDS_KEPT {
            None
        } else {
            let oldest = kept.oldest;
            kept.oldest = (oldest + 1) % ENDS_KEPT;
            if let Some(entry) = kept.entries.get_mut(oldest) {
                kept.dead += entry.1.len();
                entry.1 = 0..0;
            }
            Some(oldest)
        };
        // The replaced names' text goes before the text grows for them.
        if kept.names.len() + name.len() > kept.names.capacity()
            && kept.dead * 2 >= kept.names.len()
            && kept.dead > 0
        {
            kept.compact();
        }
        let at = kept.names.len();
        kept.names.extend_from_slice(name.as_bytes());
        let entry = (hash, at..kept.names.len(), id);
        match slot.and_then(|slot| kept.entries.get_mut(slot)) {
            Some(place) => *place = entry,
            None => kept.entries.push(entry),
        }
    }

    /// The id kept for `name`, if any.
    fn get(&self, name: &str) -> Option<i64> {
        let hash = name_hash(name);
        let kept = self.kept.try_borrow().ok()?;
        kept.entries
            .iter()
            .find(|(kept_hash, at, _)| {
                *kept_hash == hash && kept.names.get(at.clone()) == Some(name.as_bytes())
            })
            .map(|(_, _, id)| *id)
    }
}

/// A name's 64-bit hash for [`EndIds`] (multiply and rotate over 8 bytes at a
/// time, as `FxHash` does).
fn name_hash(name: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut hash = name.len() as u64;
    for chunk in name.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        if let Some(head) = word.get_mut(..chunk.len()) {
            head.copy_from_slice(chunk);
        }
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    hash
}

/// What an adjacency query reads of each edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reads {
    /// The whole edge, as [`adjacent_edge_from_row`] takes it: whether it leaves
    /// the start, its relation, the name at its other end and its content (the
    /// start's own name is the caller's, not read back).
    Edges,
    /// As [`Reads::Edges`], but of its content only what a plain row has
    /// ([`PLAIN_EDGE_TAIL`], format 12 on), as [`push_plain_adjacent_edge`]
    /// takes it.
    PlainEdges,
    /// As [`Reads::PlainEdges`], then the id of the other end (column
    /// [`PLAIN_END_ID`]), for [`EndIds`].
    PlainEdgesWithIds,
    /// Whether the edge leaves the start (1 or 0), its relation and the name at its
    /// other end: the edge indexes and `names` alone.
    Neighbours,
}

impl Reads {
    /// The columns of the arm over the edges leaving the start (`leaving`) or
    /// arriving at it; the other end's name is `other`; `flags`: the file is of
    /// format 12 or later ([`edge_tail_columns`]).
    fn columns(self, leaving: bool, other: &str, flags: bool) -> String {
        match self {
            Reads::Edges => format!(
                "{}, e.rel, {other}, {}",
                u8::from(leaving),
                edge_tail_columns(flags)
            ),
            Reads::PlainEdges => {
                format!("{}, e.rel, {other}, {PLAIN_EDGE_TAIL}", u8::from(leaving))
            }
            Reads::PlainEdgesWithIds => format!(
                "{}, e.rel, {other}, {PLAIN_EDGE_TAIL}, e.{}",
                u8::from(leaving),
                if leaving { "to_id" } else { "from_id" }
            ),
            Reads::Neighbours => format!("{}, e.rel, {other}", u8::from(leaving)),
        }
    }
}

/// A query over the edges of the start leaving it (`Out`), arriving (`In`) or both
/// (`Both`, a self-loop once), with one of `relations` relations (any if none):
/// one arm per side, joined by `UNION ALL`, each found through its index,
/// unsorted. Its parameters are [`adjacency_params`]: the start's name as `?1`, the
/// relations from `?2` on (or one JSON array of them as `?2`), shared by the arms.
/// With `edge_names` (format 9 on) the other end's name is the edge row's own
/// (`to_name`, or `from_name` in `edges_by_to`); before, it is looked up in `names`.
/// With `edge_flags` (format 12 on) whole edges read column `flags`, before
/// `bidirectional`.
fn adjacency_sql(
    reads: Reads,
    start: Start,
    direction: Direction,
    relations: usize,
    edge_names: bool,
    edge_flags: bool,
) -> String {
    let mut rels = String::new();
    if relations > LISTED {
        rels.push_str(" AND e.rel IN (SELECT value FROM json_each(?2))");
    } else if relations > 0 {
        let listed: Vec<String> = (2..relations + 2).map(|i| format!("?{i}")).collect();
        rels.push_str(" AND e.rel IN (");
        rels.push_str(&listed.join(", "));
        rels.push(')');
    }
    let arm = |leaving: bool, on: &str| {
        let (side, other) = if leaving {
            ("from_id", "to_id")
        } else {
            ("to_id", "from_id")
        };
        if let Start::Id(_) = start {
            // Format 9 on (edge rows carry their ends' names).
            let name = if leaving { "e.to_name" } else { "e.from_name" };
            return format!(
                "SELECT {} FROM edges e WHERE e.{side} = ?1{on}{rels}",
                reads.columns(leaving, name, edge_flags)
            );
        }
        let from = start.from(side, &format!("{on}{rels}"));
        if edge_names {
            let name = if leaving { "e.to_name" } else { "e.from_name" };
            format!(
                "SELECT {} {from} WHERE sk.name = ?1",
                reads.columns(leaving, name, edge_flags)
            )
        } else {
            format!(
                "SELECT {} {from} {} names k ON k.id = e.{other} WHERE sk.name = ?1",
                reads.columns(leaving, "k.name", edge_flags),
                start.join(),
            )
        }
    };
    match direction {
        // By relation: the order of the key's range (`edges` from `from_id`, by
        // `(from_id, rel, to_id)`), so SQLite sorts nothing; [`Q::edges_from`] then
        // orders each relation's run by the other end's name alone.
        Direction::Out => format!("{} ORDER BY e.rel", arm(true, "")),
        Direction::In => arm(false, ""),
        // A self-loop is listed once, with the outgoing edges.
        Direction::Both => format!(
            "{} UNION ALL {}",
            arm(true, ""),
            arm(false, " AND e.from_id != e.to_id")
        ),
    }
}

/// [`adjacency_sql`], built once per shape for the common call without relations
/// (it runs once per `edges_of`: building the text cost more than a tenth of a call).
fn adjacency_text(
    reads: Reads,
    start: Start,
    direction: Direction,
    relations: usize,
    edge_names: bool,
    edge_flags: bool,
) -> Cow<'static, str> {
    static TEXTS: [OnceLock<String>; 144] = [const { OnceLock::new() }; 144];
    if relations > 0 {
        return Cow::Owned(adjacency_sql(
            reads, start, direction, relations, edge_names, edge_flags,
        ));
    }
    // The id of a `Start::Id` is bound, not written: one text serves every id.
    let slot = usize::from(edge_flags) * 72
        + usize::from(edge_names) * 36
        + match reads {
            Reads::Edges => 0,
            Reads::PlainEdges => 9,
            Reads::PlainEdgesWithIds => 18,
            Reads::Neighbours => 27,
        }
        + match start {
            Start::Name => 0,
            Start::Node => 3,
            Start::Id(_) => 6,
        }
        + match direction {
            Direction::Out => 0,
            Direction::In => 1,
            Direction::Both => 2,
        };
    Cow::Borrowed(
        TEXTS[slot]
            .get_or_init(|| adjacency_sql(reads, start, direction, 0, edge_names, edge_flags)),
    )
}

/// Binds the parameters of [`adjacency_sql`] to its statement: the start's name,
/// then the relations (each its own, or one JSON array of them), one by one
/// rather than gathered in a list first (a statement from the cache has none bound).
/// A [`Start::Id`] binds its id in the name's place.
fn bind_adjacency(
    stmt: &mut rusqlite::Statement<'_>,
    start: Start,
    name: &str,
    relations: &[RelationType],
) -> rusqlite::Result<()> {
    match start {
        Start::Id(id) => stmt.raw_bind_parameter(1, id)?,
        Start::Name | Start::Node => stmt.raw_bind_parameter(1, name)?,
    }
    if relations.len() > LISTED {
        let array = Value::Array(relations.iter().map(|r| Value::from(r.as_str())).collect());
        stmt.raw_bind_parameter(2, array.to_string())?;
    } else {
        for (i, relation) in relations.iter().enumerate() {
            stmt.raw_bind_parameter(i + 2, relation.as_str())?;
        }
    }
    Ok(())
}

/// The one-hop steps in `direction`, as traversals take them: (the column matched to
/// the current node, the column reached, whether only bidirectional edges count).
/// Edges in the asked direction, and bidirectional edges the other way.
fn hop_steps(direction: Direction) -> &'static [(&'static str, &'static str, bool); 2] {
    match direction {
        Direction::Out => &[("from_id", "to_id", false), ("to_id", "from_id", true)],
        Direction::In => &[("to_id", "from_id", false), ("from_id", "to_id", true)],
        Direction::Both => &[("from_id", "to_id", false), ("to_id", "from_id", false)],
    }
}

/// The most hops [`walk_count_sql`] counts (longer walks: [`exact_reach_sql`]).
const CHAINED_HOPS: usize = 2;

/// A step of a walk: as [`hop_steps`] gives them.
type Step = (&'static str, &'static str, bool);

/// The name of the node a step over the edge aliased `edge` reaches: the edge
/// row's own (`to_name`, `from_name`), but a step backwards along bidirectional
/// edges keeps to their partial index (which lacks `from_name`) and names the few
/// it finds from `names`.
fn reached_name((matched, reached, bidirectional_only): Step, edge: &str) -> String {
    if bidirectional_only && matched == "to_id" {
        format!("(SELECT kn.name FROM names kn WHERE kn.id = {edge}.from_id)")
    } else if reached == "to_id" {
        format!("{edge}.to_name")
    } else {
        format!("{edge}.from_name")
    }
}

/// The partial index's own condition on a bidirectional edge
/// (`schema::edge_indexes!`): column `flags`' bit from format 12, `bidirectional`
/// before.
fn bidirectional_column(flags: bool) -> &'static str {
    if flags { "flags & 1" } else { "bidirectional" }
}

/// Every walk shape of `hops` steps in `direction` (two steps per hop: out, or back
/// along a bidirectional edge), in order.
fn walk_shapes(direction: Direction, hops: usize) -> Vec<Vec<Step>> {
    let mut walks: Vec<Vec<Step>> = vec![Vec::new()];
    for _ in 0..hops {
        walks = walks
            .into_iter()
            .flat_map(|walk| {
                hop_steps(direction).iter().map(move |step| {
                    let mut longer = walk.clone();
                    longer.push(*step);
                    longer
                })
            })
            .collect();
    }
    walks
}

/// One walk shape as a join of the edge table with itself, `e1` the first step's
/// edge, `e2` the second's: ` FROM {from}edges e1 CROSS JOIN edges e2 ON … WHERE
/// e1.{matched} = {start}` and each step's filters (bidirectional only, relations:
/// bound in the text's order). `CROSS JOIN` keeps the order of the steps. `flags`:
/// the file is of format 12 or later ([`Q::hop_arms`]).
fn push_walk(
    sql: &mut Sql,
    walk: &[Step],
    relations: &[RelationType],
    from: &str,
    start: &str,
    flags: bool,
) {
    sql.push(&format!(" FROM {from}edges e1"));
    for (i, pair) in walk.windows(2).enumerate() {
        let (matched, _, _) = pair[1];
        let (_, before, _) = pair[0];
        sql.push(&format!(
            " CROSS JOIN edges e{next} ON e{next}.{matched} = e{i1}.{before}",
            next = i + 2,
            i1 = i + 1
        ));
    }
    let (matched, _, _) = walk[0];
    sql.push(&format!(" WHERE e1.{matched} = {start}"));
    for (i, (_, _, bidirectional_only)) in walk.iter().enumerate() {
        if *bidirectional_only {
            sql.push(&format!(" AND e{}.{}", i + 1, bidirectional_column(flags)));
        }
        if !relations.is_empty() {
            sql.and_in(
                &format!("e{}.rel", i + 1),
                relations.iter().map(RelationType::as_str),
            );
        }
    }
}

/// How many distinct nodes end the walks of exactly `options.hops` (1 or 2) hops
/// from the node named by the first parameter, as one statement without common
/// tables written out: one row (the count) when the node exists, none when it does
/// not. Each walk shape ([`walk_shapes`]) is one join ([`push_walk`]) from the
/// start's id, a correlated column (looked up once); their ends go into one
/// `count(DISTINCT)`. It expands what [`exact_reach_sql`] expands from one node (its
/// first level keeps repeats), without writing the start or the first level to
/// tables of their own. `flags`: the file is of format 12 or later.
fn walk_count_sql(options: &ReachOptions, flags: bool) -> Sql {
    let mut sql = Sql::new(
        "WITH s(id) AS (SELECT n.id FROM names k JOIN nodes n ON n.id = k.id WHERE k.name = ?1) \
         SELECT (SELECT count(DISTINCT id) FROM (",
    );
    // The start's name, bound per call (`Sql::with_start`).
    sql.bind(SqlValue::Null);
    for (w, walk) in walk_shapes(options.direction, options.hops)
        .iter()
        .enumerate()
    {
        if w > 0 {
            sql.push(" UNION ALL ");
        }
        let (_, reached, _) = walk[walk.len() - 1];
        sql.push(&format!("SELECT e{}.{reached} AS id", walk.len()));
        push_walk(&mut sql, walk, &options.relations, "", "s.id", flags);
    }
    sql.push(")) FROM s");
    sql
}

/// How many levels of an exact reach one query chains (longer walks take several).
const EXACT_LEVELS_PER_QUERY: usize = 8;

/// Where the walks of [`exact_reach_sql`] start, as its level `l0`.
#[derive(Clone, Copy, Debug)]
enum Frontier<'a> {
    /// The ids of a JSON array.
    Ids(&'a str),
    /// The node of this name (no id when there is none).
    Node(&'a str),
}

/// The ends of walks of exactly `levels` hops from the `width` ids of `frontier`,
/// as one statement: level `i + 1` is the one-hop steps from
/// level `i`, and `finish` selects from the last level, named `walk`, which may
/// hold an id more than once (`finish` says `DISTINCT`). A level in between keeps
/// each id once (`UNION`), so that a node reached by several walks is expanded
/// once; the first keeps repeats when it starts from one node (only parallel edges
/// repeat there, and sorting costs more than expanding them). `flags`: the file
/// is of format 12 or later ([`Q::hop_arms`]).
fn exact_reach_sql(
    frontier: Frontier<'_>,
    width: usize,
    options: &ReachOptions,
    levels: usize,
    finish: &str,
    flags: bool,
) -> Sql {
    let mut sql = match frontier {
        Frontier::Ids(ids) => {
            let mut sql = Sql::new("WITH l0(id) AS (SELECT value FROM json_each(?))");
            sql.bind(ids.to_owned());
            sql
        }
        Frontier::Node(name) => {
            let mut sql = Sql::new(
                "WITH l0(id) AS (SELECT n.id FROM names k JOIN nodes n ON n.id = k.id \
                 WHERE k.name = ?)",
            );
            sql.bind(name.to_owned());
            sql
        }
    };
    for level in 1..=levels {
        let last = level == levels;
        let name = if last {
            "walk".to_owned()
        } else {
            format!("l{level}")
        };
        let compound = if last || (level == 1 && width == 1) {
            "UNION ALL"
        } else {
            "UNION"
        };
        sql.push(&format!(", {name}(id) AS ("));
        Q::hop_arms(
            &mut sql,
            options.direction,
            &options.relations,
            &format!("l{}", level - 1),
            "id",
            None,
            compound,
            false,
            flags,
        );
        sql.push(")");
    }
    sql.push(" ").push(finish);
    sql
}

/// How many levels a traversal answers in one statement ([`traverse_sql`], whose
/// walks are not deduplicated between levels: deeper, their number could grow as
/// the paths do); a deeper one takes a statement per level, inside a transaction.
const TRAVERSE_LEVELS_PER_QUERY: usize = 2;

/// What a statement built from a call's options depends on, besides the start's
/// name: the key of [`shaped_sql`]'s cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Shape {
    /// [`traverse_sql`] for these options.
    Traverse {
        direction: Direction,
        relations: Vec<RelationType>,
        levels: usize,
        /// The file is of format 12 or later (column `flags`).
        flags: bool,
    },
    /// [`exact_reach_sql`] counting the ends of walks of `levels` hops from the
    /// node named (as [`Q::reach_count`] does).
    CountWalks {
        direction: Direction,
        relations: Vec<RelationType>,
        levels: usize,
        /// The file is of format 12 or later (column `flags`).
        flags: bool,
    },
}

/// How many shapes [`shaped_sql`] keeps before it starts again (each distinct set
/// of relations asked for is a shape of its own).
const SHAPES_KEPT: usize = 256;

impl Sql {
    /// Its parameters with the start's name as the first (a [`shaped_sql`]
    /// statement's first parameter is the start's name, built as a placeholder).
    fn with_start<'s>(&'s self, start: &'s str) -> impl Iterator<Item = Param<'s>> {
        std::iter::once(Param::Start(start)).chain(self.params.iter().skip(1).map(Param::Built))
    }
}

/// A parameter of a [`shaped_sql`] statement: the call's start, or one built with it.
enum Param<'s> {
    Start(&'s str),
    Built(&'s SqlValue),
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Start(start) => start.to_sql(),
            Param::Built(value) => value.to_sql(),
        }
    }
}

/// The statement of `shape`, built by `build` the first time (its text and its
/// parameters but the first, the start's name: see [`Sql::with_start`]) and kept
/// for the process: the text of a traversal or a count of walks depends only on
/// the shape, and building it (formatting every arm of every level) costs more
/// than SQLite's run of a small one.
fn shaped_sql(shape: Shape, build: impl FnOnce() -> Sql) -> Arc<Sql> {
    static SHAPES: OnceLock<Mutex<HashMap<Shape, Arc<Sql>>>> = OnceLock::new();
    let shapes = SHAPES.get_or_init(Mutex::default);
    // The map holds only complete entries, so one a panicking thread left is sound.
    if let Some(sql) = shapes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&shape)
    {
        return Arc::clone(sql);
    }
    let sql = Arc::new(build());
    let mut shapes = shapes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if shapes.len() >= SHAPES_KEPT {
        shapes.clear();
    }
    shapes.insert(shape, Arc::clone(&sql));
    sql
}

/// The walks of a traversal of `options.max_depth` (1 or 2) levels from the node
/// named by the first parameter, as one statement without common tables written
/// out: first `(0, id, NULL)` for the start (no row when there is no such node),
/// then `(depth, id, name)` at the end of every walk of each shape ([`walk_shapes`],
/// [`push_walk`]) of 1 and of 2 steps, the name read from the last edge (the step
/// back along a bidirectional edge's partial index names the few it finds in
/// `names`). Walks repeat nodes: [`Q::traverse_node`] keeps each at its smallest
/// depth. The second level expands each end of the first (the start and repeats
/// too), which is what a level of [`Q::traverse_levels`] reads at depth 2 at most
/// once more per parallel edge. `flags`: the file is of format 12 or later.
fn traverse_sql(options: &TraverseOptions, flags: bool) -> Sql {
    let mut sql =
        Sql::new("SELECT 0, n.id, NULL FROM names k JOIN nodes n ON n.id = k.id WHERE k.name = ?1");
    // The start's name, bound per call (`Sql::with_start`).
    sql.bind(SqlValue::Null);
    for depth in 1..=options.max_depth {
        for walk in walk_shapes(options.direction, depth) {
            let last = walk.len();
            let (_, reached, _) = walk[last - 1];
            let name = reached_name(walk[last - 1], &format!("e{last}"));
            sql.push(&format!(
                " UNION ALL SELECT {depth}, e{last}.{reached}, {name}"
            ));
            push_walk(
                &mut sql,
                &walk,
                &options.relations,
                "names k CROSS JOIN ",
                "k.id",
                flags,
            );
            // After the walk's `WHERE`: the start by name (`?1`, bound once).
            sql.push(" AND k.name = ?1");
        }
    }
    sql
}

/// Nodes' lines, one per row ([`Q::for_each_node_json`]).
struct NodeLines<'c>(JsonRows<'c>);

impl LineWriter for NodeLines<'_> {
    fn row(&mut self, row: &BatchRow<'_>, lines: &mut Lines) -> Result<()> {
        lines.write(|out| self.0.node(row, out))
    }

    fn finish(&mut self, _lines: &mut Lines) -> Result<()> {
        Ok(())
    }
}

/// The cells of a row of [`edge_run_scan_sql`] (format 12 on) that a plain edge's
/// line needs ([`JsonRows::edge`]): the `from` name, `rel`, `to_name`, `weight`,
/// `flags` and `created_at`; `confidence`, `source`, `updated_at`, `version` and
/// `attributes` hold the default content the flag stands for, and the first
/// column (`NULL` in that scan) is not read.
const PLAIN_EDGE_CELLS: Sparse = Sparse {
    flag: 6,
    bit: FLAG_PLAIN,
    kept: 0b1_0101_1110,
};

/// Edges' lines, one per row, each source's of one relation handed over in `to`
/// name order ([`Q::for_each_edge_json`]).
struct EdgeLines<'c> {
    rows: JsonRows<'c>,
    run: EdgeRun,
}

impl LineWriter for EdgeLines<'_> {
    fn row(&mut self, row: &BatchRow<'_>, lines: &mut Lines) -> Result<()> {
        let run = &mut self.run;
        let mut start = run.lines.len();
        let (from, rel, to) = self.rows.edge(row, &mut run.lines)?;
        if run.items.is_empty() || run.from != from || run.rel != rel {
            run.hand_over(start, &mut |line| {
                lines.push(line);
                Ok(())
            })?;
            // The new line, the run's first, now starts the buffer.
            start = 0;
            run.from.clear();
            run.from.extend_from_slice(from);
            run.rel.clear();
            run.rel.extend_from_slice(rel);
        }
        run.push(to, start);
        Ok(())
    }

    fn finish(&mut self, lines: &mut Lines) -> Result<()> {
        let end = self.run.lines.len();
        self.run.hand_over(end, &mut |line| {
            lines.push(line);
            Ok(())
        })
    }
}

/// The JSON lines of one source's edges of one relation, gathered in the table's
/// order (by `to` id) and handed over in the order of their `to` names
/// ([`Q::for_each_edge_json`]).
#[derive(Default)]
struct EdgeRun {
    /// The source's name.
    from: Vec<u8>,
    /// The relation, as stored.
    rel: Vec<u8>,
    /// The lines, one after the other.
    lines: Vec<u8>,
    /// The `to` names, one after the other.
    names: Vec<u8>,
    /// Each line's `to` name and text: ranges of `names` and `lines`.
    items: Vec<(Range<usize>, Range<usize>)>,
    /// Whether the names came in increasing order so far (no sort needed).
    sorted: bool,
}

impl EdgeRun {
    /// Records the line `lines[start..]` with its `to` name.
    fn push(&mut self, to: &[u8], start: usize) {
        let name = self.names.len()..self.names.len() + to.len();
        if let Some((last, _)) = self.items.last() {
            self.sorted &= self.names[last.clone()] < *to;
        } else {
            self.sorted = true;
        }
        self.names.extend_from_slice(to);
        self.items.push((name, start..self.lines.len()));
    }

    /// Hands the run's lines (those before `lines[end..]`, which belongs to the
    /// next run) to `each` in `to` name order, and keeps only `lines[end..]`.
    fn hand_over(&mut self, end: usize, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if !self.sorted {
            let names = &self.names;
            self.items
                .sort_unstable_by(|(a, _), (b, _)| names[a.clone()].cmp(&names[b.clone()]));
        }
        for (_, line) in &self.items {
            each(&self.lines[line.clone()])?;
        }
        self.items.clear();
        self.names.clear();
        self.lines.copy_within(end.., 0);
        self.lines.truncate(self.lines.len() - end);
        Ok(())
    }
}

/// The query of a node listing: the filters SQL can decide exactly, in name order.
///
/// Names are walked in order from the cursor (`CROSS JOIN` fixes the join order),
/// so a page costs the rows it passes over and a whole listing one pass, instead
/// of sorting every match of an index for each page.
fn node_scan_sql(filter: &NodeFilter, after: Option<&str>, limit: Option<usize>) -> Sql {
    let mut sql = Sql::new(&format!(
        "SELECT {NODE_COLUMNS} FROM names k CROSS JOIN nodes n ON n.id = k.id WHERE k.name > ?"
    ));
    // Names are never empty, so `> ''` is the start of the table.
    sql.bind(after.unwrap_or("").to_owned());
    if let Some(prefix) = filter.name_prefix.as_deref().filter(|p| !p.is_empty()) {
        sql.push(" AND k.name >= ?").bind(prefix.to_owned());
        if let Some(bound) = prefix_upper_bound(prefix) {
            sql.push(" AND k.name < ?").bind(bound);
        }
    }
    if !filter.node_types.is_empty() {
        sql.and_in("n.node_type", filter.node_types.iter().map(String::as_str));
    }
    if let Some(status) = &filter.status {
        sql.push(" AND n.status = ?").bind(status.clone());
    }
    if let Some(since) = filter.updated_since {
        sql.push(" AND n.updated_at >= ?").bind(since.as_micros());
    }
    let tags: std::collections::BTreeSet<&str> = filter.tags.iter().map(String::as_str).collect();
    for tag in tags {
        sql.push(" AND EXISTS (SELECT 1 FROM node_tags t WHERE t.node_id = n.id AND t.tag = ?)")
            .bind(tag.to_owned());
    }
    sql.push(" ORDER BY k.name LIMIT ?")
        .bind(limit.map_or(-1, sql_limit));
    sql
}

/// The query of every edge, in key order: a walk of the names in order and each
/// one's edges, the `to` names sorted within each source and relation. With
/// `edge_names` (format 9 on) the `to` name is the row's own `to_name`, with no
/// lookup in `names` per edge; before, [`edge_scan_sql`]'s join.
fn whole_edge_scan_sql(ctx: &Ctx) -> Sql {
    if !ctx.edge_names {
        return edge_scan_sql(&EdgeFilter::default(), None, None, ctx.edge_flags);
    }
    Sql::new(&format!(
        "SELECT e.from_id, fk.name, e.rel, e.to_name, {} \
         FROM names fk CROSS JOIN edges e ON e.from_id = fk.id \
         ORDER BY fk.name, e.rel, e.to_name",
        edge_tail_columns(ctx.edge_flags)
    ))
}

/// The query of every edge in the table's order within each source, `(rel,
/// to_id)`, the sources in name order (format 9 on): one walk of the names and
/// each one's range of the table, nothing sorted ([`Q::for_each_edge_json`]
/// puts each source's edges of one relation in `to` name order).
///
/// Its first column, the `from` id in [`edge_columns`], is `NULL`: the lines'
/// runs go by the `from` name, and a row is named in messages by it
/// ([`JsonRows::edge`]), so SQLite does not read the id from each row.
fn edge_run_scan_sql(edge_flags: bool) -> Sql {
    Sql::new(&format!(
        "SELECT NULL, fk.name, e.rel, e.to_name, {} \
         FROM names fk CROSS JOIN edges e ON e.from_id = fk.id \
         ORDER BY fk.name, e.rel, e.to_id",
        edge_tail_columns(edge_flags)
    ))
}

/// The query of an edge listing, in key order, in the columns of the file's
/// format ([`edge_columns`]; `edge_flags`: format 12 on).
fn edge_scan_sql(
    filter: &EdgeFilter,
    after: Option<&EdgeKey>,
    limit: Option<usize>,
    edge_flags: bool,
) -> Sql {
    let mut sql = Sql::new(&format!("SELECT {} FROM ", edge_columns(edge_flags)));
    if filter.from.is_none() && filter.to.is_none() {
        // Walk the names in order and each one's edges: pages come in key order
        // without sorting the whole table.
        sql.push(
            "names fk CROSS JOIN edges e ON e.from_id = fk.id \
             JOIN names tk ON tk.id = e.to_id WHERE 1",
        );
    } else {
        // One node's edges, found by index and sorted (a node's degree, not the table).
        sql.push(
            "edges e JOIN names fk ON fk.id = e.from_id \
             JOIN names tk ON tk.id = e.to_id WHERE 1",
        );
    }
    if let Some(from) = &filter.from {
        sql.push(" AND e.from_id = (SELECT id FROM names WHERE name = ?)")
            .bind(from.clone());
    }
    if let Some(to) = &filter.to {
        sql.push(" AND e.to_id = (SELECT id FROM names WHERE name = ?)")
            .bind(to.clone());
    }
    if !filter.relation_types.is_empty() {
        sql.and_in(
            "e.rel",
            filter.relation_types.iter().map(RelationType::as_str),
        );
    }
    if let Some(weight) = filter.min_weight {
        sql.push(" AND e.weight >= ?").bind(weight);
    }
    if let Some(after) = after {
        sql.push(" AND fk.name >= ? AND (fk.name, e.rel, tk.name) > (?, ?, ?)")
            .bind(after.from.clone())
            .bind(after.from.clone())
            .bind(after.relation_type.as_str().to_owned())
            .bind(after.to.clone());
    }
    sql.push(" ORDER BY fk.name, e.rel, tk.name LIMIT ?")
        .bind(limit.map_or(-1, sql_limit));
    sql
}

/// The id of the root from a dependency closure's `(id, name)` rows (the root's is
/// the one without a name); [`Error::NodeNotFound`] when there is none.
fn root_of<'r>(
    name: &str,
    mut rows: impl Iterator<Item = (i64, &'r Option<String>)>,
) -> Result<i64> {
    rows.find(|(_, member)| member.is_none())
        .map(|(id, _)| id)
        .ok_or_else(|| Error::node_not_found(name))
}

/// Orders a closure given as members `(id, name)` and `(member, dependency)` links
/// by id (a member may come more than once) with the reference's topological order ([`algo::topological_indices`]
/// over the members numbered in name order; the names are moved, not copied);
/// `None` if it has a cycle. Links to ids outside the members are left out.
fn order(mut members: Vec<(i64, String)>, links: &[(i64, i64)]) -> Option<Vec<String>> {
    // A member comes once per link of its own: once each, in name order.
    members.sort_unstable_by(|a, b| a.1.cmp(&b.1));
    members.dedup_by_key(|(id, _)| *id);
    let index: IdMap<usize> = members
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut indexed: Vec<(usize, usize)> = links
        .iter()
        .filter_map(|(member, dep)| Some((*index.get(member)?, *index.get(dep)?)))
        .collect();
    let order = algo::topological_indices(members.len(), &mut indexed).ok()?;
    let mut names: Vec<Option<String>> = members.into_iter().map(|(_, name)| Some(name)).collect();
    order.into_iter().map(|i| names[i].take()).collect()
}

/// The dependency closure of the node named `?1` (a macro, to be `concat!`ed with
/// the columns a write transaction adds: whether a member is a node): the start's
/// row first (`id, NULL, NULL`; no row when there is no such node), then a row
/// per member and dependency (`id, name, dependency id`; the dependency NULL for
/// a member without any), a member's rows together. The start is looked up twice
/// rather than kept in a common table, which SQLite would write to a table of its
/// own (two references).
macro_rules! dependency_closure {
    ($start_more:literal, $member_more:literal) => {
        concat!(
            "WITH RECURSIVE closure(id) AS ( \
                 SELECT dep_id FROM node_deps \
                 WHERE node_id = (SELECT id FROM names WHERE name = ?1) \
                 UNION \
                 SELECT d.dep_id FROM closure c JOIN node_deps d ON d.node_id = c.id) \
             SELECT n.id, NULL, NULL",
            $start_more,
            " FROM names k JOIN nodes n ON n.id = k.id WHERE k.name = ?1 \
             UNION ALL \
             SELECT c.id, k.name, d.dep_id",
            $member_more,
            " FROM closure c JOIN names k ON k.id = c.id \
             LEFT JOIN node_deps d ON d.node_id = c.id"
        )
    };
}

/// [`Q::resolve_dependencies`] inside a write transaction: each member looked up in
/// `nodes` (a dependency may name a node not yet created while checks are
/// deferred), the fourth column.
const DEPENDENCY_CLOSURE_CHECKED: &str =
    dependency_closure!(", 1", ", EXISTS (SELECT 1 FROM nodes n WHERE n.id = c.id)");

/// [`Q::resolve_dependencies`] on a committed snapshot, where every dependency is a
/// node: no lookup per member.
const DEPENDENCY_CLOSURE_OF_NODES: &str = dependency_closure!("", "");

/// The position of the first name of a JSON array that is a node: each name is
/// looked up through the unique index on `names`, in the array's order.
const FIRST_EXISTING_NODE: &str = "SELECT j.key FROM json_each(?1) j \
     JOIN names k ON k.name = j.value JOIN nodes n ON n.id = k.id \
     ORDER BY j.key LIMIT 1";

/// The position of the first name of a JSON array that is not a node.
const FIRST_MISSING_NODE: &str = "SELECT j.key FROM json_each(?1) j \
     WHERE NOT EXISTS (SELECT 1 FROM names k JOIN nodes n ON n.id = k.id WHERE k.name = j.value) \
     ORDER BY j.key LIMIT 1";

/// The position of the first `[from, relation, to]` of a JSON array that is a
/// stored edge: both names by the unique index on `names`, the edge by its key.
const FIRST_EXISTING_EDGE: &str = "SELECT j.key FROM json_each(?1) j \
     JOIN names f ON f.name = j.value ->> 0 JOIN names t ON t.name = j.value ->> 2 \
     JOIN edges e ON e.from_id = f.id AND e.rel = j.value ->> 1 AND e.to_id = t.id \
     ORDER BY j.key LIMIT 1";

#[cfg(test)]
mod tests {
    use super::*;

    /// The context of a database of the current format, as the tests' own
    /// in-memory connections are (its path is for messages only).
    fn ctx() -> Ctx {
        Ctx {
            path: "test.db".into(),
            lock_timeout: std::time::Duration::from_secs(1),
            documents: true,
            edge_names: true,
            edge_flags: true,
        }
    }

    #[test]
    fn kept_ids_read_a_name_s_edges_and_the_node_answers_when_there_are_none() {
        let conn = Connection::open_in_memory().unwrap();
        crate::schema::create_schema(&conn, crate::schema::FORMAT_VERSION).unwrap();
        conn.execute_batch(
            "INSERT INTO names(id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'leaf');
             INSERT INTO nodes SELECT id, 't', NULL, NULL, NULL, 5, 5, 1, '[]', '{}', '[]', '[]'
                 FROM names;
             INSERT INTO edges VALUES
                 (1, 'calls', 3, 'c', 'a', 1.5, NULL, 2, NULL, 5, 5, 1, '{}'),
                 (2, 'calls', 3, 'c', 'b', 2.5, NULL, 2, NULL, 5, 5, 1, '{}'),
                 (2, 'uses', 1, 'a', 'b', 1.0, NULL, 2, NULL, 5, 5, 1, '{}');",
        )
        .unwrap();
        let ctx = ctx();
        let q = Q {
            conn: &conn,
            ctx: &ctx,
            held: None,
        };
        let read = |name: &str, ends: &EndIds| {
            q.edges_of_node(name, Direction::Out, &[], true, Some(ends))
                .unwrap()
                .map(|edges| {
                    edges
                        .iter()
                        .map(|e| {
                            format!(
                                "{}-{}-{}:{}",
                                e.from, e.relation_type, e.to, e.metadata.weight
                            )
                        })
                        .collect::<Vec<_>>()
                })
        };
        let ends = EndIds::default();
        // Read from the name, keeping the ids of the `to` ends.
        assert_eq!(read("b", &ends).unwrap(), ["b-calls-c:2.5", "b-uses-a:1"]);
        assert_eq!(ends.get("a"), Some(1));
        assert_eq!(ends.get("c"), Some(3));
        assert_eq!(ends.get("b"), None);
        // From the id, as from the name.
        assert_eq!(read("a", &ends).unwrap(), ["a-calls-c:1.5"]);
        assert_eq!(read("a", &EndIds::default()).unwrap(), ["a-calls-c:1.5"]);
        // A node without outgoing edges (from its id, then its node), and no node.
        ends.put("leaf", 4);
        assert_eq!(read("leaf", &ends).unwrap(), Vec::<String>::new());
        ends.put("gone", 4);
        assert_eq!(read("gone", &ends), None);
        // Only whole names are found; past the bound, a new name replaces the
        // oldest: the four kept first ("c", "a", "leaf", "gone") go, in that order.
        assert_eq!(ends.get("lea"), None);
        assert_eq!(ends.get("leaf2"), None);
        for i in 0..ENDS_KEPT {
            ends.put(&format!("n{i}"), i as i64);
        }
        for gone in ["a", "c", "leaf", "gone"] {
            assert_eq!(ends.get(gone), None, "{gone}");
        }
        assert_eq!(ends.get("n0"), Some(0));
        let last = ENDS_KEPT - 1;
        assert_eq!(ends.get(&format!("n{last}")), Some(last as i64));
        // A name kept already keeps its place: putting it again replaces nothing.
        for _ in 0..2 * ENDS_KEPT {
            ends.put("n0", 7);
        }
        assert_eq!(ends.get("n0"), Some(7));
        assert_eq!(ends.get(&format!("n{last}")), Some(last as i64));
        assert_eq!(ends.get("n1"), Some(1));
        // The next new name replaces the oldest now kept: "n0".
        ends.put("new", 99);
        assert_eq!(ends.get("new"), Some(99));
        assert_eq!(ends.get("n0"), None);
        assert_eq!(ends.get("n1"), Some(1));
    }

    /// Regression: the kept ids held a name once per edge that ended at it and were
    /// emptied whole when full, so a walk over more than [`ENDS_KEPT`] distinct ends
    /// (or one whose hops all end at one shared node) lost the ends it had just
    /// found and read every next hop from its name. Each name is kept once now, and
    /// a new one replaces the oldest: the latest ends stay readable from their ids.
    /// Counted with SQLite's own run counter of each adjacency statement.
    #[test]
    fn regression_a_walk_over_more_ends_than_are_kept_reads_the_latest_from_their_ids() {
        let conn = Connection::open_in_memory().unwrap();
        crate::schema::create_schema(&conn, crate::schema::FORMAT_VERSION).unwrap();
        // `root` calls `c0`…`c39`; each of those calls `leaf` (one shared end).
        let fan = ENDS_KEPT + 8;
        let mut sql =
            String::from("INSERT INTO names(id, name) VALUES (1, 'root'), (2, 'leaf');\n");
        for i in 0..fan {
            let id = i + 3;
            sql.push_str(&format!(
                "INSERT INTO names(id, name) VALUES ({id}, 'c{i:02}');
                 INSERT INTO edges VALUES
                     (1, 'calls', {id}, 'c{i:02}', 'root', 1.0, NULL, 2, NULL, 5, 5, 1, '{{}}'),
                     ({id}, 'calls', 2, 'leaf', 'c{i:02}', 1.0, NULL, 2, NULL, 5, 5, 1, '{{}}');\n"
            ));
        }
        sql.push_str(
            "INSERT INTO nodes SELECT id, 't', NULL, NULL, NULL, 5, 5, 1, '[]', '{}', '[]', '[]'
                 FROM names;",
        );
        conn.execute_batch(&sql).unwrap();
        let ctx = ctx();
        let q = Q {
            conn: &conn,
            ctx: &ctx,
            held: None,
        };
        let runs = |reads: Reads, start: Start| {
            let text = adjacency_text(reads, start, Direction::Out, 0, true, true);
            conn.prepare_cached(&text)
                .unwrap()
                .get_status(rusqlite::StatementStatus::Run)
        };
        let ends = EndIds::default();
        let walked = |name: &str| {
            let edges = q
                .edges_of_node(name, Direction::Out, &[], true, Some(&ends))
                .unwrap()
                .unwrap();
            let alone = q
                .edges_of_node(name, Direction::Out, &[], true, None)
                .unwrap()
                .unwrap();
            assert_eq!(edges, alone, "{name}");
            edges
        };
        let hop = walked("root");
        assert_eq!(hop.len(), fan);
        let by_id_before = runs(Reads::PlainEdges, Start::Id(0));
        let by_name_before = runs(Reads::PlainEdgesWithIds, Start::Name);
        for edge in &hop {
            assert_eq!(walked(&edge.to).len(), 1);
        }
        let by_id = runs(Reads::PlainEdges, Start::Id(0)) - by_id_before;
        let by_name = runs(Reads::PlainEdgesWithIds, Start::Name) - by_name_before;
        assert_eq!(by_id + by_name, i32::try_from(fan).unwrap());
        // The last `ENDS_KEPT` of the fan were kept; the first hop read from its
        // name keeps `leaf`, which replaces the oldest of them; `leaf` is kept
        // once however many hops end at it: every other kept hop reads from its id.
        assert_eq!(by_id, i32::try_from(ENDS_KEPT - 1).unwrap());
        assert_eq!(ends.get("leaf"), Some(2));
    }

    /// A kept list that replaces names over and over finds every name it keeps,
    /// forgets the ones replaced, and its text stays bounded.
    #[test]
    fn kept_ids_replaced_again_and_again_stay_whole_and_bounded() {
        let ends = EndIds::default();
        let name = |i: usize| format!("{i}-{}", "x".repeat(i % 23));
        for i in 0..1000 {
            ends.put(&name(i), i as i64);
            if i % 7 == 0 {
                // Put again: nothing moves.
                ends.put(&name(i), i as i64);
            }
            let first_kept = (i + 1).saturating_sub(ENDS_KEPT);
            for j in first_kept..=i {
                assert_eq!(ends.get(&name(j)), Some(j as i64), "{j} after {i}");
            }
            if first_kept > 0 {
                assert_eq!(ends.get(&name(first_kept - 1)), None, "after {i}");
            }
        }
        let kept = ends.kept.borrow();
        assert_eq!(kept.entries.len(), ENDS_KEPT);
        let longest = (0..1000).map(|i| name(i).len()).max().unwrap();
        assert!(
            kept.names.capacity() <= 4 * ENDS_KEPT * longest,
            "{}",
            kept.names.capacity()
        );
    }

    #[test]
    fn bulk_edge_and_endpoint_probes_search_by_index() {
        let conn = Connection::open_in_memory().unwrap();
        crate::schema::create_schema(&conn, crate::schema::FORMAT_VERSION).unwrap();
        for sql in [FIRST_MISSING_NODE, FIRST_EXISTING_EDGE] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(["[]"], |r| r.get::<_, String>(3))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            let plan = plan.join("\n");
            // Only the array is scanned; every table is searched by an index.
            assert_eq!(plan.matches("SCAN").count(), 1, "{plan}");
            assert!(
                plan.contains("SCAN j") || plan.contains("SCAN json_each"),
                "{plan}"
            );
        }
    }

    #[test]
    fn bulk_existence_looks_names_up_by_index_in_the_given_order() {
        let conn = Connection::open_in_memory().unwrap();
        crate::schema::create_schema(&conn, crate::schema::FORMAT_VERSION).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {FIRST_EXISTING_NODE}"))
            .unwrap()
            .query_map(["[]"], |r| r.get::<_, String>(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("SEARCH k USING"), "{plan}");
        assert!(plan.contains("SEARCH n USING"), "{plan}");
        // Only the array is scanned; the sort is of the (few) names found.
        assert_eq!(plan.matches("SCAN").count(), 1, "{plan}");
    }

    fn plan(sql: &Sql) -> String {
        let conn = Connection::open_in_memory().unwrap();
        crate::schema::create_schema(&conn, crate::schema::FORMAT_VERSION).unwrap();
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text))
            .unwrap();
        let rows = stmt
            .query_map(params_from_iter(sql.params.iter()), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn listings_walk_an_index_in_order_instead_of_sorting_the_table() {
        use kgstore_core::Timestamp;
        let node_filters = [
            NodeFilter::default(),
            NodeFilter::default().of_type("crate").of_type("tool"),
            NodeFilter::default()
                .with_tag("a")
                .with_tag("b")
                .with_status("s"),
            NodeFilter::default()
                .with_name_prefix("se")
                .updated_since(Timestamp::EPOCH),
        ];
        for filter in &node_filters {
            let plan = plan(&node_scan_sql(filter, Some("m"), Some(100)));
            assert!(!plan.contains("TEMP B-TREE"), "{filter:?}:\n{plan}");
            assert!(
                plan.starts_with("SEARCH k USING COVERING INDEX"),
                "{filter:?}:\n{plan}"
            );
        }
        // The whole scan of a backup's edges sorts nothing at all.
        let whole = plan(&edge_run_scan_sql(true));
        assert!(!whole.contains("TEMP B-TREE"), "{whole}");
        assert!(whole.starts_with("SCAN fk USING COVERING INDEX"), "{whole}");
        let key = EdgeKey::new("a", RelationType::Calls, "b");
        for filter in [
            EdgeFilter::default(),
            EdgeFilter::default()
                .of_relation(RelationType::Calls)
                .with_min_weight(1.0),
        ] {
            let plan = plan(&edge_scan_sql(&filter, Some(&key), Some(100), true));
            assert!(
                !plan.contains("TEMP B-TREE FOR ORDER BY"),
                "{filter:?}:\n{plan}"
            );
            assert!(
                plan.starts_with("SEARCH fk USING COVERING INDEX"),
                "{filter:?}:\n{plan}"
            );
        }
    }

    #[test]
    fn neighbours_and_walks_read_indexes_only() {
        for (direction, edge_names) in [Direction::Out, Direction::In, Direction::Both]
            .into_iter()
            .flat_map(|d| [(d, true), (d, false)])
        {
            for (relations, start, reads) in [
                (vec![], Start::Name, Reads::Neighbours),
                (vec![RelationType::Calls], Start::Name, Reads::Edges),
                (vec![], Start::Node, Reads::Edges),
                (vec![], Start::Name, Reads::PlainEdges),
                (vec![RelationType::Calls], Start::Node, Reads::PlainEdges),
                (vec![RelationType::Calls], Start::Node, Reads::Neighbours),
                (
                    vec![RelationType::Calls; LISTED + 1],
                    Start::Node,
                    Reads::Edges,
                ),
                (vec![], Start::Id(7), Reads::PlainEdgesWithIds),
                (vec![RelationType::Calls], Start::Id(7), Reads::Edges),
                (
                    vec![RelationType::Calls; LISTED + 1],
                    Start::Id(7),
                    Reads::PlainEdges,
                ),
            ] {
                if matches!(start, Start::Id(_)) && !edge_names {
                    // From an id: format 9 on only (`EndIds` needs format 12).
                    continue;
                }
                let text =
                    adjacency_text(reads, start, direction, relations.len(), edge_names, true);
                let mut params = vec![match start {
                    Start::Id(id) => SqlValue::Integer(id),
                    Start::Name | Start::Node => SqlValue::Text("a".to_owned()),
                }];
                if relations.len() > LISTED {
                    params.push(SqlValue::Text("[]".to_owned()));
                } else {
                    params.extend(relations.iter().map(|r| SqlValue::Text(r.to_string())));
                }
                let plan = plan(&Sql {
                    text: text.into_owned(),
                    params,
                });
                assert!(!plan.contains("TEMP B-TREE"), "{direction:?}:\n{plan}");
                // Only a long list of relations (a JSON array) is scanned.
                assert_eq!(
                    plan.contains("SCAN"),
                    relations.len() > LISTED,
                    "{direction:?}:\n{plan}"
                );
                assert!(!plan.contains("SCAN e"), "{direction:?}:\n{plan}");
                // Leaving edges are a range of the table's own key, arriving ones
                // a range of the index by `to` (which holds every column of the
                // neighbours, so the table is read only for whole edges).
                let leaving = matches!(direction, Direction::Out | Direction::Both);
                let arriving = matches!(direction, Direction::In | Direction::Both);
                assert_eq!(
                    plan.contains("SEARCH e USING PRIMARY KEY (from_id=?"),
                    leaving,
                    "{direction:?}:\n{plan}"
                );
                // From an id, no `names` row is read for the start.
                assert_eq!(
                    plan.contains("SEARCH sk USING"),
                    !matches!(start, Start::Id(_)),
                    "{direction:?}:\n{plan}"
                );
                let by_to = match reads {
                    Reads::Edges | Reads::PlainEdges | Reads::PlainEdgesWithIds => {
                        "SEARCH e USING INDEX edges_by_to (to_id=?"
                    }
                    Reads::Neighbours => "SEARCH e USING COVERING INDEX edges_by_to (to_id=?",
                };
                assert_eq!(plan.contains(by_to), arriving, "{direction:?}:\n{plan}");
                // From format 9, the other end's name is the edge's own.
                assert_eq!(
                    plan.contains("SEARCH k USING"),
                    !edge_names,
                    "{direction:?}:\n{plan}"
                );
            }
        }
        for (frontier, finish) in [
            (Frontier::Ids("[7]"), "SELECT count(DISTINCT id) FROM walk"),
            (
                Frontier::Node("a"),
                "SELECT (SELECT count(*) FROM l0), count(DISTINCT id) FROM walk",
            ),
        ] {
            let walk = exact_reach_sql(frontier, 1, &ReachOptions::exactly(2), 2, finish, true);
            let plan = plan(&walk);
            // Only the start array is scanned (and the levels, which are small sets).
            assert!(!plan.contains("SCAN e"), "{plan}");
            assert!(!plan.contains("SCAN k"), "{plan}");
            assert!(
                plan.contains("SEARCH e USING PRIMARY KEY (from_id=?)"),
                "{plan}"
            );
            // Steps against an edge's direction look among the bidirectional edges only.
            assert!(
                plan.contains("edges_bidirectional_by_to (to_id=?)"),
                "{plan}"
            );
        }
        // A traversal's named levels: the names come from the edge row, from
        // `edges_by_to` alone, or (backwards along bidirectional edges) from `names`
        // for the few rows of their partial index; never a scan.
        for direction in [Direction::Out, Direction::In, Direction::Both] {
            for (source, column, bind) in [
                ("json_each(?)", "value", "[7]"),
                ("(SELECT id FROM names WHERE name = ?)", "id", "a"),
            ] {
                let mut sql = Sql::new("");
                Q::hop_arms(
                    &mut sql,
                    direction,
                    &[],
                    source,
                    column,
                    Some(bind),
                    "UNION",
                    true,
                    true,
                );
                let plan = plan(&sql);
                assert!(!plan.contains("SCAN e"), "{direction:?}:\n{plan}");
                assert!(!plan.contains("SCAN k"), "{direction:?}:\n{plan}");
                match direction {
                    Direction::Out => assert!(
                        plan.contains("edges_bidirectional_by_to (to_id=?)"),
                        "{plan}"
                    ),
                    Direction::In => assert!(
                        plan.contains("COVERING INDEX edges_by_to (to_id=?)"),
                        "{plan}"
                    ),
                    Direction::Both => assert!(
                        plan.contains("COVERING INDEX edges_by_to (to_id=?)")
                            && plan.contains("PRIMARY KEY (from_id=?)"),
                        "{plan}"
                    ),
                }
            }
        }
    }

    #[test]
    fn walk_counts_and_short_traversals_search_every_step_by_index() {
        for direction in [Direction::Out, Direction::In, Direction::Both] {
            for relations in [vec![], vec![RelationType::Calls]] {
                let mut count = ReachOptions::exactly(2).direction(direction);
                count.relations.clone_from(&relations);
                let traversal = TraverseOptions {
                    direction,
                    relations: relations.clone(),
                    max_depth: 2,
                };
                for mut sql in [walk_count_sql(&count, true), traverse_sql(&traversal, true)] {
                    sql.params[0] = SqlValue::Text("a".into());
                    let plan = plan(&sql);
                    // No table is scanned (only the walks' own union), and no
                    // level is written to a table.
                    assert!(
                        plan.lines()
                            .all(|l| !l.contains("SCAN") || l.contains("SCAN (subquery")),
                        "{direction:?}:\n{plan}"
                    );
                    assert!(!plan.contains("MATERIALIZE"), "{direction:?}:\n{plan}");
                    assert!(plan.contains("PRIMARY KEY (from_id=?"), "{plan}");
                    match direction {
                        // Back along bidirectional edges: their partial index.
                        Direction::Out => assert!(
                            plan.contains("edges_bidirectional_by_to (to_id=?"),
                            "{plan}"
                        ),
                        Direction::In | Direction::Both => {
                            assert!(plan.contains("edges_by_to (to_id=?"), "{plan}")
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn prefix_bounds_cover_exactly_the_prefixed_names() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(
            prefix_upper_bound("x\u{D7FF}").as_deref(),
            Some("x\u{E000}")
        );
        for (prefix, name, inside) in [
            ("50%", "50%_off", true),
            ("50%", "50x", false),
            ("a\u{10FFFF}", "a\u{10FFFF}\u{10FFFF}z", true),
            ("a\u{10FFFF}", "b", false),
            ("é", "éa", true),
            ("é", "f", false),
        ] {
            let bound = prefix_upper_bound(prefix);
            let in_range = name >= prefix && bound.as_deref().is_none_or(|b| name < b);
            assert_eq!(in_range, inside, "{prefix:?} {name:?}");
            assert_eq!(name.starts_with(prefix), inside, "{prefix:?} {name:?}");
        }
    }
}
