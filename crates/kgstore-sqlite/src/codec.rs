//! Rows to entities and back.

use std::cell::RefCell;

use kgstore_core::documents::Sha256Digest;
use kgstore_core::events::LogRecord;
use kgstore_core::{
    DocumentMeta, Edge, EdgeMetadata, Error, Node, NodeMetadata, RelationType, Result, Timestamp,
    TimestampWriter, validate,
};
use rusqlite::Row;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

use crate::canonical::{self, Shape, is_canonical};
use crate::error::Ctx;
use crate::schema::{FLAG_BIDIRECTIONAL, FLAG_PLAIN};

/// The columns [`node_from_row`] reads, from `names k JOIN nodes n`.
pub(crate) const NODE_COLUMNS: &str = "n.id, k.name, n.node_type, n.status, n.author, n.source, \
     n.created_at, n.updated_at, n.version, n.observations, n.attributes, n.tags, n.dependencies";

/// The columns [`edge_from_row`] reads, from `edges e`, `names fk` (from) and `names tk` (to),
/// in a file of format 12 or later ([`edge_columns`] picks by format).
/// The first names the row in messages: the id of its `from` name (edges have no
/// row id of their own from format 5 on).
const EDGE_COLUMNS: &str = concat!("e.from_id, fk.name, e.rel, tk.name, ", edge_tail!());

/// [`EDGE_COLUMNS`] in a file before format 12, whose edge rows keep column
/// `bidirectional` where later ones keep `flags`.
const EDGE_COLUMNS_BEFORE_FLAGS: &str = concat!(
    "e.from_id, fk.name, e.rel, tk.name, ",
    edge_tail_before_flags!()
);

/// The columns of [`EDGE_COLUMNS`] after the key: an edge's content (format 12 on).
macro_rules! edge_tail {
    () => {
        "e.weight, e.confidence, e.flags, e.source, e.created_at, e.updated_at, \
         e.version, e.attributes"
    };
}
use edge_tail;

/// `edge_tail!` before format 12: column `bidirectional` in the place of `flags`.
macro_rules! edge_tail_before_flags {
    () => {
        "e.weight, e.confidence, e.bidirectional, e.source, e.created_at, e.updated_at, \
         e.version, e.attributes"
    };
}
use edge_tail_before_flags;

/// The columns [`edge_from_row`] reads (from `edges e`, `names fk` and `names tk`)
/// in a file of format 12 or later (`edge_flags`) or before.
pub(crate) fn edge_columns(edge_flags: bool) -> &'static str {
    if edge_flags {
        EDGE_COLUMNS
    } else {
        EDGE_COLUMNS_BEFORE_FLAGS
    }
}

/// [`edge_columns`] after the key, for queries that give the names themselves.
pub(crate) fn edge_tail_columns(edge_flags: bool) -> &'static str {
    if edge_flags {
        edge_tail!()
    } else {
        edge_tail_before_flags!()
    }
}

/// A row's cells by index: a statement's current row, or a row copied out of it
/// (`scan::RowBatch`) to be read on another thread.
pub(crate) trait Cellular {
    /// The cell at `index`, as `Row::get_ref` gives it.
    fn cell(&self, index: usize) -> rusqlite::Result<ValueRef<'_>>;

    /// Whether every text cell of the row is already known to be UTF-8 (a
    /// batch checked whole, `scan::RowBatch`), so that a reader of bytes need not
    /// check each cell again; `false`: each is checked as it is read.
    fn texts_are_utf8(&self) -> bool {
        false
    }
}

impl Cellular for Row<'_> {
    fn cell(&self, index: usize) -> rusqlite::Result<ValueRef<'_>> {
        self.get_ref(index)
    }
}

/// Reads one column of a row, calling what is wrong with it corruption of that row.
struct Cells<'r, 'c, R: Cellular + ?Sized> {
    row: &'r R,
    ctx: &'c Ctx,
    table: &'static str,
    /// The node whose edge the row is, for rows without an id column (an adjacency
    /// read, [`adjacent_edge_from_row`]); `None`: the first column is the row's id.
    edge_of: Option<&'r str>,
}

impl<'r, R: Cellular + ?Sized> Cells<'r, '_, R> {
    /// The row's first column (its id) names it in messages: read only for one (an
    /// `INTEGER` column of a `STRICT` table, so always an integer); a row of an
    /// adjacency read is named by its node.
    fn bad(&self, column: &str, what: impl std::fmt::Display) -> Error {
        if let Some(node) = self.edge_of {
            return self.ctx.corrupt(format!(
                "table {}, an edge of {}, column {column}: {what}",
                self.table,
                node_subject(node)
            ));
        }
        let id = match self.row.cell(0) {
            Ok(ValueRef::Integer(id)) => id.to_string(),
            // An edge JSON scan does not read the id (`read::PLAIN_EDGE_CELLS`):
            // the edge is named by its source's name, the next column.
            _ if self.table == "edges" => match self.row.cell(1) {
                Ok(ValueRef::Text(name)) => match std::str::from_utf8(name) {
                    Ok(name) => {
                        return self.ctx.corrupt(format!(
                            "table edges, an edge of {}, column {column}: {what}",
                            node_subject(name)
                        ));
                    }
                    Err(_) => "?".to_owned(),
                },
                _ => "?".to_owned(),
            },
            _ => "?".to_owned(),
        };
        self.ctx.corrupt(format!(
            "table {}, row {id}, column {column}: {what}",
            self.table
        ))
    }

    fn text(&self, index: usize, column: &str) -> Result<&'r str> {
        self.as_text(self.row.cell(index), column)
    }

    /// A text column's bytes, checked to be UTF-8 as [`Cells::text`] checks them
    /// unless the row's texts are known to be ([`Cellular::texts_are_utf8`]).
    fn text_bytes(&self, index: usize, column: &str) -> Result<&'r [u8]> {
        match self.row.cell(index) {
            Ok(ValueRef::Text(bytes)) if self.row.texts_are_utf8() => Ok(bytes),
            value => self.as_text(value, column).map(str::as_bytes),
        }
    }

    /// [`Cells::text_bytes`] of a column that may be `NULL`, read once.
    fn opt_text_bytes(&self, index: usize, column: &str) -> Result<Option<&'r [u8]>> {
        match self.row.cell(index) {
            Ok(ValueRef::Null) => Ok(None),
            Ok(ValueRef::Text(bytes)) if self.row.texts_are_utf8() => Ok(Some(bytes)),
            value => self.as_text(value, column).map(|t| Some(t.as_bytes())),
        }
    }

    /// A text column that may be `NULL`, read once, as bytes not yet checked to be
    /// UTF-8 (the caller checks them, or finds them equal to a text that is).
    fn opt_unchecked_text(&self, index: usize, column: &str) -> Result<Option<&'r [u8]>> {
        match self.row.cell(index) {
            Ok(ValueRef::Null) => Ok(None),
            Ok(ValueRef::Text(bytes)) => Ok(Some(bytes)),
            value => self.as_text(value, column).map(|t| Some(t.as_bytes())),
        }
    }

    fn as_text<'v>(&self, value: rusqlite::Result<ValueRef<'v>>, column: &str) -> Result<&'v str> {
        match value {
            Ok(ValueRef::Text(bytes)) => {
                std::str::from_utf8(bytes).map_err(|e| self.bad(column, format!("not UTF-8: {e}")))
            }
            Ok(other) => Err(self.bad(column, format!("{:?} instead of text", other.data_type()))),
            Err(e) => Err(self.bad(column, e)),
        }
    }

    fn string(&self, index: usize, column: &str) -> Result<String> {
        self.text(index, column).map(str::to_owned)
    }

    /// An event's digest as the store knows it, 64 lower-case hex digits: stored as
    /// its 32 bytes from format 7 on, as that text before (a file opened read-only
    /// as it is); the empty text that reads without digests select stays empty.
    fn event_digest(&self, index: usize) -> Result<String> {
        match self.row.cell(index) {
            Ok(ValueRef::Blob(bytes)) => Sha256Digest::from_slice(bytes)
                .map(|d| d.to_hex())
                .ok_or_else(|| self.bad("digest", "not a 32-byte digest")),
            _ => self.string(index, "digest"),
        }
    }

    fn opt_string(&self, index: usize, column: &str) -> Result<Option<String>> {
        match self.row.cell(index) {
            Ok(ValueRef::Null) => Ok(None),
            _ => self.string(index, column).map(Some),
        }
    }

    fn int(&self, index: usize, column: &str) -> Result<i64> {
        match self.row.cell(index) {
            Ok(ValueRef::Integer(i)) => Ok(i),
            Ok(other) => Err(self.bad(
                column,
                format!("{:?} instead of an integer", other.data_type()),
            )),
            Err(e) => Err(self.bad(column, e)),
        }
    }

    /// Whether an edge is bidirectional, from column `flags` (bit
    /// [`FLAG_BIDIRECTIONAL`], format 12 on) or `bidirectional` (before).
    fn bidirectional(&self, index: usize) -> Result<bool> {
        Ok(if self.ctx.edge_flags {
            self.int(index, "flags")? & FLAG_BIDIRECTIONAL != 0
        } else {
            self.int(index, "bidirectional")? != 0
        })
    }

    fn real(&self, index: usize, column: &str) -> Result<f64> {
        match self.row.cell(index) {
            Ok(ValueRef::Real(f)) => Ok(f),
            Ok(ValueRef::Integer(i)) => Ok(i as f64),
            Ok(other) => Err(self.bad(
                column,
                format!("{:?} instead of a number", other.data_type()),
            )),
            Err(e) => Err(self.bad(column, e)),
        }
    }

    fn opt_real(&self, index: usize, column: &str) -> Result<Option<f64>> {
        match self.row.cell(index) {
            Ok(ValueRef::Null) => Ok(None),
            _ => self.real(index, column).map(Some),
        }
    }

    fn time(&self, index: usize, column: &str) -> Result<Timestamp> {
        Timestamp::from_micros(self.int(index, column)?).map_err(|e| self.bad(column, e))
    }

    /// [`Cells::time`] of a column that may be `NULL`, read once.
    fn opt_time(&self, index: usize, column: &str) -> Result<Option<Timestamp>> {
        match self.row.cell(index) {
            Ok(ValueRef::Null) => Ok(None),
            Ok(ValueRef::Integer(i)) => Timestamp::from_micros(i)
                .map(Some)
                .map_err(|e| self.bad(column, e)),
            Ok(other) => Err(self.bad(
                column,
                format!("{:?} instead of an integer", other.data_type()),
            )),
            Err(e) => Err(self.bad(column, e)),
        }
    }

    fn version(&self, index: usize, column: &str) -> Result<u64> {
        let v = self.int(index, column)?;
        u64::try_from(v).map_err(|_| self.bad(column, format!("negative version {v}")))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, index: usize, column: &str) -> Result<T> {
        Self::parse(self.text(index, column)?).map_err(|e| self.bad(column, e))
    }

    fn parse<T: serde::de::DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
        serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))
    }

    /// A JSON list column; the empty list (what most rows hold) without the parser.
    fn json_list(&self, index: usize, column: &str) -> Result<Vec<String>> {
        match self.text(index, column)? {
            "[]" => Ok(Vec::new()),
            text => Self::parse(text).map_err(|e| self.bad(column, e)),
        }
    }

    /// A JSON object column; the empty object without the parser.
    fn json_map(&self, index: usize, column: &str) -> Result<Map<String, Value>> {
        match self.text(index, column)? {
            "{}" => Ok(Map::new()),
            text => Self::parse(text).map_err(|e| self.bad(column, e)),
        }
    }
}

/// The columns [`doc_meta_from_row`] reads, from `documents d` (a macro, to be
/// `concat!`ed into statements).
macro_rules! doc_columns {
    () => {
        "d.id, d.key, d.content_type, d.size, d.sha256, d.created_at, d.updated_at, d.version"
    };
}
pub(crate) use doc_columns;

/// A document's metadata from a row of [`DOC_COLUMNS`]; its row id.
pub(crate) fn doc_meta_from_row(row: &Row<'_>, ctx: &Ctx) -> Result<(i64, DocumentMeta)> {
    let id: i64 = row
        .get(0)
        .map_err(|e| ctx.corrupt(format!("table documents: {e}")))?;
    let c = Cells {
        row,
        ctx,
        table: "documents",
        edge_of: None,
    };
    let size = c.int(3, "size")?;
    let sha256 = match row.get_ref(4) {
        Ok(ValueRef::Blob(bytes)) => Sha256Digest::from_slice(bytes),
        _ => None,
    }
    .ok_or_else(|| c.bad("sha256", "not a 32-byte digest"))?;
    Ok((
        id,
        DocumentMeta {
            key: c.string(1, "key")?,
            content_type: c.string(2, "content_type")?,
            size: u64::try_from(size)
                .map_err(|_| c.bad("size", format!("negative size {size}")))?,
            sha256,
            created_at: c.time(5, "created_at")?,
            updated_at: c.time(6, "updated_at")?,
            version: c.version(7, "version")?,
        },
    ))
}

/// A node from a row of [`NODE_COLUMNS`].
pub(crate) fn node_from_row(row: &Row<'_>, ctx: &Ctx) -> Result<Node> {
    let cells = Cells {
        row,
        ctx,
        table: "nodes",
        edge_of: None,
    };
    Ok(Node {
        name: cells.string(1, "name")?,
        node_type: cells.string(2, "node_type")?,
        observations: cells.json_list(9, "observations")?,
        attributes: cells.json_map(10, "attributes")?,
        dependencies: cells.json_list(12, "dependencies")?,
        metadata: NodeMetadata {
            created_at: cells.time(6, "created_at")?,
            updated_at: cells.time(7, "updated_at")?,
            version: cells.version(8, "version")?,
            author: cells.opt_string(4, "author")?,
            source: cells.opt_string(5, "source")?,
            tags: cells.json_list(11, "tags")?,
            status: cells.opt_string(3, "status")?,
        },
    })
}

/// An edge from a row of [`edge_columns`].
pub(crate) fn edge_from_row(row: &Row<'_>, ctx: &Ctx) -> Result<Edge> {
    let cells = Cells {
        row,
        ctx,
        table: "edges",
        edge_of: None,
    };
    let relation_type = RelationType::parse(cells.text(2, "rel")?)
        .map_err(|e| cells.bad("rel", format!("bad relation type: {e}")))?;
    let from = cells.string(1, "from_id (name)")?;
    let to = cells.string(3, "to_id (name)")?;
    edge_from_cells(&cells, 4, from, relation_type, to)
}

/// The columns of an adjacency read of whole edges ([`adjacent_edge_from_row`]):
/// whether the edge leaves the start (`1`) or arrives at it (`0`), its relation,
/// the name at its other end, then [`edge_tail_columns`]. The start's own name is not
/// read back: the caller has it.
pub(crate) const ADJACENT_EDGE_HEAD: usize = 3;

/// An edge of the node `start` from a row of an adjacency read (columns as
/// [`ADJACENT_EDGE_HEAD`] says), with whether its row was plain ([`FLAG_PLAIN`]),
/// `None` when its relation (never `NULL` in a stored edge) is `NULL`, as in the
/// row a read gives for a node without such edges. The start's end is `start`
/// itself, not a column; `leaving` says whether the edge leaves it when the read
/// has one direction (`None`: the row says).
pub(crate) fn adjacent_edge_from_row(
    row: &Row<'_>,
    ctx: &Ctx,
    start: &str,
    leaving: Option<bool>,
) -> Result<Option<(Edge, bool)>> {
    let cells = adjacent_cells(row, ctx, start);
    let Some(rel) = cells.opt_unchecked_text(1, "rel")? else {
        return Ok(None);
    };
    let (from, relation_type, to) = adjacent_key(&cells, rel, start, leaving)?;
    let at = ADJACENT_EDGE_HEAD;
    if ctx.edge_flags && cells.int(at + 2, "flags")? & FLAG_PLAIN != 0 {
        // The default content but for the weight: of the rest, only the weight and
        // the creation time are read.
        let created_at = cells.time(at + 4, "created_at")?;
        return plain_edge_from_cells(&cells, at, created_at, from, relation_type, to)
            .map(|edge| Some((edge, true)));
    }
    edge_from_cells(&cells, at, from, relation_type, to).map(|edge| Some((edge, false)))
}

/// The columns of a plain adjacency read ([`push_plain_adjacent_edge`]), after
/// the same three as [`ADJACENT_EDGE_HEAD`]'s (format 12 on): what a plain row's
/// edge needs of its content, the weight and the creation time, the second one
/// `NULL` unless the row is plain (bit [`FLAG_PLAIN`], `2`, of `flags`): one cell
/// says both, so a row is read from four cells rather than five.
pub(crate) const PLAIN_EDGE_TAIL: &str = "e.weight, CASE WHEN e.flags & 2 THEN e.created_at END";

// [`PLAIN_EDGE_TAIL`] spells the bit out.
const _: () = assert!(FLAG_PLAIN == 2);

/// What a row of a plain adjacency read gives ([`push_plain_adjacent_edge`]).
pub(crate) enum PlainRow {
    /// The row of a node without such edges (its relation is `NULL`).
    Absent,
    /// A plain row's edge, pushed onto the list.
    Edge,
    /// A row whose content is not the default one: the read has not got it all.
    NotPlain,
}

/// How many edges a list of a node's edges (`read::Q::edges_from`, plain rows or
/// whole) has room for at its first edge: five edges (880 bytes) are a block
/// glibc's per-thread cache hands out, where the growth from four to eight (1,408
/// bytes) went through its slow path (and consolidated its fast bins) for every
/// node with five edges.
const FIRST_EDGES: usize = 5;

/// The edge of the node `start` from a row of a plain adjacency read (the columns
/// of [`ADJACENT_EDGE_HEAD`], then [`PLAIN_EDGE_TAIL`]), as
/// [`adjacent_edge_from_row`] reads one, pushed onto `edges` if its row is plain
/// (built in its place: an edge is 176 bytes, and handing it back by value copied
/// it twice more).
#[inline]
pub(crate) fn push_plain_adjacent_edge(
    row: &Row<'_>,
    ctx: &Ctx,
    start: &str,
    leaving: Option<bool>,
    edges: &mut Vec<Edge>,
) -> Result<PlainRow> {
    let cells = adjacent_cells(row, ctx, start);
    let Some(rel) = cells.opt_unchecked_text(1, "rel")? else {
        return Ok(PlainRow::Absent);
    };
    let at = ADJACENT_EDGE_HEAD;
    // The creation time, `NULL` when the row is not plain ([`PLAIN_EDGE_TAIL`]).
    let Some(created_at) = cells.opt_time(at + 1, "created_at")? else {
        return Ok(PlainRow::NotPlain);
    };
    let (from, relation_type, to) = adjacent_key(&cells, rel, start, leaving)?;
    let weight = cells.real(at, "weight")?;
    push_edge(
        edges,
        plain_edge(weight, created_at, from, relation_type, to),
    );
    Ok(PlainRow::Edge)
}

/// Pushes `edge` onto a list of a node's edges, with room for [`FIRST_EDGES`] at
/// its first.
#[inline]
pub(crate) fn push_edge(edges: &mut Vec<Edge>, edge: Edge) {
    if edges.capacity() == 0 {
        edges.reserve_exact(FIRST_EDGES);
    }
    edges.push(edge);
}

fn adjacent_cells<'r, 'c>(
    row: &'r Row<'r>,
    ctx: &'c Ctx,
    start: &'r str,
) -> Cells<'r, 'c, Row<'r>> {
    Cells {
        row,
        ctx,
        table: "edges",
        edge_of: Some(start),
    }
}

/// The key of an adjacency read's edge (from, relation, to): its relation `rel`
/// (column 1, its bytes not yet checked to be UTF-8), the other end's name at
/// column 2, whether it leaves the start at column 0 unless `leaving` says.
fn adjacent_key(
    cells: &Cells<'_, '_, Row<'_>>,
    rel: &[u8],
    start: &str,
    leaving: Option<bool>,
) -> Result<(String, RelationType, String)> {
    let relation_type = stored_relation(rel).map_err(|e| match e {
        StoredRelation::NotUtf8(e) => cells.bad("rel", format!("not UTF-8: {e}")),
        StoredRelation::Bad(e) => cells.bad("rel", format!("bad relation type: {e}")),
    })?;
    let other = cells.string(2, "the other end's name")?;
    let leaving = match leaving {
        Some(leaving) => leaving,
        None => cells.int(0, "leaving")? != 0,
    };
    Ok(if leaving {
        (start.to_owned(), relation_type, other)
    } else {
        (other, relation_type, start.to_owned())
    })
}

/// How many relation types [`stored_relation`] keeps per thread.
const RELATIONS_KEPT: usize = 8;

/// The relation types [`stored_relation`] parsed last on this thread, with their
/// texts, and the entry the next new one replaces once it is full.
struct Relations {
    kept: Vec<KeptRelation>,
    next: usize,
}

/// A relation type kept by [`stored_relation`], found by its text's length and
/// first eight bytes ([`text_head`]) before its bytes are compared: a graph's
/// relation texts are mostly short and of one length (`calls`, `uses`; the peers
/// workload's five-byte `rel_N`), so a match of length and head is the whole text
/// up to eight bytes, and a longer text alone is compared (session 17: a `memcmp`
/// call per kept relation looked at, three an edge in the peers workload).
struct KeptRelation {
    len: usize,
    head: u64,
    text: Box<str>,
    relation: RelationType,
}

/// The first eight bytes of a text (fewer, then zeros), as one number.
fn text_head(bytes: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    for (to, from) in head.iter_mut().zip(bytes) {
        *to = *from;
    }
    u64::from_le_bytes(head)
}

thread_local! {
    static RELATIONS: RefCell<Relations> = const {
        RefCell::new(Relations {
            kept: Vec::new(),
            next: 0,
        })
    };
}

/// Why [`stored_relation`] refused a stored relation's bytes.
enum StoredRelation {
    /// They are not UTF-8.
    NotUtf8(std::str::Utf8Error),
    /// They are not a relation type (`RelationType::parse`'s error).
    Bad(Error),
}

/// [`RelationType::parse`] of a stored relation's text, remembered per thread
/// for the last [`RELATIONS_KEPT`] texts: a graph's edges share few relations, and
/// a node's edges are read a few at a time, so a text seen before is a clone
/// (a reference count once custom relations are shared) rather than a match against
/// the built-in names, a validation and a copy. What it gives is what `parse`
/// gives (a bad text is not kept). The text comes as the cell's bytes: bytes equal
/// to a kept text are UTF-8 (they are that text's), so only a text not kept is
/// checked (session 15: one UTF-8 check less per edge read).
fn stored_relation(bytes: &[u8]) -> std::result::Result<RelationType, StoredRelation> {
    // A thread whose locals are gone parses every time.
    let head = text_head(bytes);
    let kept = RELATIONS.try_with(|relations| {
        let relations = relations.try_borrow().ok()?;
        relations
            .kept
            .iter()
            .find(|k| {
                k.len == bytes.len()
                    && k.head == head
                    && (bytes.len() <= 8 || k.text.as_bytes() == bytes)
            })
            .map(|k| k.relation.clone())
    });
    if let Ok(Some(relation)) = kept {
        return Ok(relation);
    }
    let text = std::str::from_utf8(bytes).map_err(StoredRelation::NotUtf8)?;
    let relation = RelationType::parse(text).map_err(StoredRelation::Bad)?;
    let _kept = RELATIONS.try_with(|relations| {
        let Ok(mut relations) = relations.try_borrow_mut() else {
            return;
        };
        let entry = KeptRelation {
            len: bytes.len(),
            head,
            text: Box::from(text),
            relation: relation.clone(),
        };
        if relations.kept.len() < RELATIONS_KEPT {
            relations.kept.push(entry);
        } else {
            let at = relations.next;
            if let Some(slot) = relations.kept.get_mut(at) {
                *slot = entry;
            }
            relations.next = (at + 1) % RELATIONS_KEPT;
        }
    });
    Ok(relation)
}

/// An edge whose row's `flags` say its content is the default one but for its
/// weight (format 12's [`FLAG_PLAIN`]): its key, the weight (at column `weight`),
/// its creation time, and otherwise what a new edge has: updated when created,
/// version 1, no confidence, not bidirectional, no source, no attributes.
fn plain_edge_from_cells(
    cells: &Cells<'_, '_, Row<'_>>,
    weight: usize,
    created_at: Timestamp,
    from: String,
    relation_type: RelationType,
    to: String,
) -> Result<Edge> {
    let weight = cells.real(weight, "weight")?;
    Ok(plain_edge(weight, created_at, from, relation_type, to))
}

/// The edge a plain row says (format 12's [`FLAG_PLAIN`]): its key, its weight
/// and creation time, and otherwise what a new edge has.
#[inline]
fn plain_edge(
    weight: f64,
    created_at: Timestamp,
    from: String,
    relation_type: RelationType,
    to: String,
) -> Edge {
    Edge {
        from,
        relation_type,
        to,
        attributes: Map::new(),
        metadata: EdgeMetadata {
            created_at,
            updated_at: created_at,
            version: 1,
            weight,
            confidence: None,
            bidirectional: false,
            source: None,
        },
    }
}

/// An edge from its key and the columns of [`edge_tail_columns`], the first at `at`.
fn edge_from_cells(
    cells: &Cells<'_, '_, Row<'_>>,
    at: usize,
    from: String,
    relation_type: RelationType,
    to: String,
) -> Result<Edge> {
    Ok(Edge {
        from,
        relation_type,
        to,
        attributes: cells.json_map(at + 7, "attributes")?,
        metadata: EdgeMetadata {
            created_at: cells.time(at + 4, "created_at")?,
            updated_at: cells.time(at + 5, "updated_at")?,
            version: cells.version(at + 6, "version")?,
            weight: cells.real(at, "weight")?,
            confidence: cells.opt_real(at + 1, "confidence")?,
            bidirectional: cells.bidirectional(at + 2)?,
            source: cells.opt_string(at + 3, "source")?,
        },
    })
}

/// The columns [`record_from_row`] reads, from `events`.
pub(crate) const EVENT_COLUMNS: &str = "position, stream, version, id, type, data, metadata, \
     recorded_at, commit_pos, batch, digest, removed";
/// [`EVENT_COLUMNS`] with an empty digest, for reads whose caller does not need it
/// (`LogScan::without_digests`): 32 bytes per row less to copy.
pub(crate) const EVENT_COLUMNS_WITHOUT_DIGEST: &str = "position, stream, version, id, type, \
     data, metadata, recorded_at, commit_pos, batch, '', removed";

/// A log record from a row of [`EVENT_COLUMNS`].
pub(crate) fn record_from_row(row: &Row<'_>, ctx: &Ctx) -> Result<LogRecord> {
    let cells = Cells {
        row,
        ctx,
        table: "events",
        edge_of: None,
    };
    Ok(LogRecord {
        position: cells.version(0, "position")?,
        stream: cells.string(1, "stream")?,
        version: cells.version(2, "version")?,
        id: cells.string(3, "id")?,
        event_type: cells.string(4, "type")?,
        data: cells.json(5, "data")?,
        metadata: cells.json(6, "metadata")?,
        recorded_at: cells.time(7, "recorded_at")?,
        commit: cells.version(8, "commit_pos")?,
        batch: cells.opt_string(9, "batch")?,
        digest: cells.event_digest(10)?,
        removed: cells.int(11, "removed")? != 0,
    })
}

/// Serializes a value kept in a JSON column; `subject` names the entity in errors.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(
    value: &T,
    subject: impl FnOnce() -> String,
) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::invalid_input(subject(), format!("cannot be stored as JSON: {e}")))
}

/// [`to_json`] of a list: `[]` without serialising when it is empty (most nodes'
/// observations, tags and dependencies).
pub(crate) fn list_to_json<T: serde::Serialize>(
    list: &[T],
    subject: impl FnOnce() -> String,
) -> Result<String> {
    if list.is_empty() {
        return Ok("[]".to_owned());
    }
    serde_json::to_string(list)
        .map_err(|e| Error::invalid_input(subject(), format!("cannot be stored as JSON: {e}")))
}

/// A version as SQLite stores it.
pub(crate) fn version_to_sql(version: u64, subject: impl FnOnce() -> String) -> Result<i64> {
    i64::try_from(version).map_err(|_| {
        Error::invalid_input(
            subject(),
            format!("version {version} is too large to store"),
        )
    })
}

/// How a node is named in messages.
pub(crate) fn node_subject(name: &str) -> String {
    validate::node_subject(name)
}

/// Writes rows as the compact JSON of the entities they hold, byte for byte what
/// `serde_json` gives for the node or edge [`node_from_row`] or [`edge_from_row`]
/// would build (the shared suite's `json_scans_encode_what_scans_give` compares
/// them), without building it: names, texts and numbers go straight from the
/// row's cells, and a JSON column holding the empty list or object is copied. Any
/// other JSON column is parsed and written again, so that the bytes are
/// `serde_json`'s own whatever text the column holds. Every cell is checked as
/// the entity's reader checks it.
///
/// It remembers what repeats from row to row: the last timestamp's text and
/// date ([`TimestampWriter`]), the texts of recent weights and confidences
/// ([`RealTexts`]); relations are checked through the per-thread parse every
/// edge read uses (`stored_relation`).
pub(crate) struct JsonRows<'c> {
    ctx: &'c Ctx,
    times: TimestampWriter,
    reals: RealTexts,
}

impl<'c> JsonRows<'c> {
    pub(crate) fn new(ctx: &'c Ctx) -> Self {
        Self {
            ctx,
            times: TimestampWriter::new(),
            reals: RealTexts::new(),
        }
    }

    /// A row of [`NODE_COLUMNS`] as the node's JSON, appended to `out`.
    pub(crate) fn node<R: Cellular + ?Sized>(&mut self, row: &R, out: &mut Vec<u8>) -> Result<()> {
        let c = Cells {
            row,
            ctx: self.ctx,
            table: "nodes",
            edge_of: None,
        };
        out.extend_from_slice(b"{\"name\":");
        json_str(out, c.text_bytes(1, "name")?)?;
        out.extend_from_slice(b",\"node_type\":");
        json_str(out, c.text_bytes(2, "node_type")?)?;
        out.extend_from_slice(b",\"observations\":");
        json_list(&c, out, 9, "observations")?;
        out.extend_from_slice(b",\"attributes\":");
        json_map(&c, out, 10, "attributes")?;
        out.extend_from_slice(b",\"dependencies\":");
        json_list(&c, out, 12, "dependencies")?;
        out.extend_from_slice(b",\"metadata\":");
        json_times(&c, &mut self.times, out, 6, Some(7))?;
        out.extend_from_slice(b",\"version\":");
        json_u64(out, c.version(8, "version")?);
        if let Some(author) = c.opt_text_bytes(4, "author")? {
            out.extend_from_slice(b",\"author\":");
            json_str(out, author)?;
        }
        if let Some(source) = c.opt_text_bytes(5, "source")? {
            out.extend_from_slice(b",\"source\":");
            json_str(out, source)?;
        }
        out.extend_from_slice(b",\"tags\":");
        json_list(&c, out, 11, "tags")?;
        if let Some(status) = c.opt_text_bytes(3, "status")? {
            out.extend_from_slice(b",\"status\":");
            json_str(out, status)?;
        }
        out.extend_from_slice(b"}}");
        Ok(())
    }

    /// A row of [`edge_columns`] as the edge's JSON, appended to `out`; its
    /// `from` name, its relation and its `to` name as the row holds them. Its
    /// first column (the `from` id) is not read but to name the row in messages.
    pub(crate) fn edge<'r, R: Cellular + ?Sized>(
        &mut self,
        row: &'r R,
        out: &mut Vec<u8>,
    ) -> Result<(&'r [u8], &'r [u8], &'r [u8])> {
        let c = Cells {
            row,
            ctx: self.ctx,
            table: "edges",
            edge_of: None,
        };
        let from = c.text_bytes(1, "from_id (name)")?;
        let rel = c.text_bytes(2, "rel")?;
        // Parsed once per thread for a text seen before, as every edge read does.
        let relation = stored_relation(rel).map_err(|e| match e {
            StoredRelation::NotUtf8(e) => c.bad("rel", format!("not UTF-8: {e}")),
            StoredRelation::Bad(e) => c.bad("rel", format!("bad relation type: {e}")),
        })?;
        // A valid relation's name is its text (built-in or not); written below as
        // the row holds it.
        if relation.as_str().as_bytes() != rel {
            return Err(c.bad(
                "rel",
                format!(
                    "stored as '{}', read as '{}'",
                    String::from_utf8_lossy(rel),
                    relation.as_str()
                ),
            ));
        }
        let to = c.text_bytes(3, "to_id (name)")?;
        out.extend_from_slice(b"{\"from\":");
        json_str(out, from)?;
        // A relation's name is an identifier: nothing in it to escape.
        out.extend_from_slice(b",\"relation_type\":\"");
        out.extend_from_slice(rel);
        out.extend_from_slice(b"\",\"to\":");
        json_str(out, to)?;
        if self.ctx.edge_flags && c.int(6, "flags")? & FLAG_PLAIN != 0 {
            // The default content but for the weight (format 12's mark, as
            // `plain_edge_from_cells` reads it): only the weight and creation
            // time are read, and a scan may leave the other cells uncopied
            // (`read::PLAIN_EDGE_CELLS`).
            out.extend_from_slice(b",\"attributes\":{},\"metadata\":");
            json_times(&c, &mut self.times, out, 8, None)?;
            out.extend_from_slice(b",\"version\":1,\"weight\":");
            self.reals.write(out, c.real(4, "weight")?)?;
            out.extend_from_slice(b",\"bidirectional\":false}}");
            return Ok((from, rel, to));
        }
        out.extend_from_slice(b",\"attributes\":");
        json_map(&c, out, 11, "attributes")?;
        out.extend_from_slice(b",\"metadata\":");
        json_times(&c, &mut self.times, out, 8, Some(9))?;
        out.extend_from_slice(b",\"version\":");
        json_u64(out, c.version(10, "version")?);
        out.extend_from_slice(b",\"weight\":");
        self.reals.write(out, c.real(4, "weight")?)?;
        if let Some(confidence) = c.opt_real(5, "confidence")? {
            out.extend_from_slice(b",\"confidence\":");
            self.reals.write(out, confidence)?;
        }
        out.extend_from_slice(if c.bidirectional(6)? {
            b",\"bidirectional\":true"
        } else {
            b",\"bidirectional\":false"
        });
        if let Some(source) = c.opt_text_bytes(7, "source")? {
            out.extend_from_slice(b",\"source\":");
            json_str(out, source)?;
        }
        out.extend_from_slice(b"}}");
        Ok((from, rel, to))
    }
}

/// How many `f64` texts [`RealTexts`] keeps.
const REAL_SLOTS: usize = 256;
/// The longest `f64` text [`RealTexts`] keeps (`serde_json` writes at most 24
/// bytes for a finite one, e.g. `-2.2250738585072014e-308`).
const REAL_TEXT_MAX: usize = 24;

/// The JSON texts of recently written `f64` values (an edge's weight and
/// confidence), in [`REAL_SLOTS`] slots chosen by the value's bits: a graph's
/// weights are mostly a few values (the default `1.0`, steps of a scale), so most
/// are copied instead of formatted. A slot holds the last value written that
/// chose it; the text is `serde_json`'s own, kept after it wrote it.
struct RealTexts {
    slots: Vec<RealText>,
}

/// One slot of [`RealTexts`]: a value's bits and its text (`len` 0: empty).
#[derive(Clone, Copy)]
struct RealText {
    bits: u64,
    len: u8,
    text: [u8; REAL_TEXT_MAX],
}

impl RealTexts {
    fn new() -> Self {
        let empty = RealText {
            bits: 0,
            len: 0,
            text: [0; REAL_TEXT_MAX],
        };
        Self {
            slots: vec![empty; REAL_SLOTS],
        }
    }

    /// Appends `value` as `serde_json` writes it.
    fn write(&mut self, out: &mut Vec<u8>, value: f64) -> Result<()> {
        let bits = value.to_bits();
        // The top bits of a multiplicative hash (Fibonacci hashing): 8 of them.
        let at = (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
        if let Some(slot) = self.slots.get(at)
            && slot.len != 0
            && slot.bits == bits
        {
            out.extend_from_slice(&slot.text[..usize::from(slot.len)]);
            return Ok(());
        }
        let start = out.len();
        json_value(out, &value)?;
        let text = &out[start..];
        if let Some(slot) = self.slots.get_mut(at)
            && let Ok(len) = u8::try_from(text.len())
            && (1..=REAL_TEXT_MAX).contains(&text.len())
        {
            slot.bits = bits;
            slot.len = len;
            slot.text[..text.len()].copy_from_slice(text);
        }
        Ok(())
    }
}

/// Appends `value` as `serde_json` writes it.
fn json_value(out: &mut Vec<u8>, value: &impl serde::Serialize) -> Result<()> {
    serde::Serialize::serialize(value, &mut serde_json::Serializer::new(out))
        .map_err(|e| Error::backend("sqlite", format!("cannot encode a row as JSON: {e}")))
}

/// Appends a JSON string as `serde_json` writes it: quoted, with `"`, `\` and the
/// control characters escaped (copied as they are when it has none of them).
/// `text` is UTF-8 (checked by the caller, [`Cells::text_bytes`]).
fn json_str(out: &mut Vec<u8>, text: &[u8]) -> Result<()> {
    if canonical::first_special(text).is_some() {
        let text = std::str::from_utf8(text)
            .map_err(|e| Error::backend("sqlite", format!("a text is not UTF-8: {e}")))?;
        return json_value(out, &text);
    }
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
    Ok(())
}

/// Appends `value`'s decimal digits, as `serde_json` writes an integer (with
/// `itoa`, which `serde_json` uses).
fn json_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// An entity's `created_at` and `updated_at` (columns `created` and `updated`;
/// `None`: updated when created, not read) as the start of its metadata object,
/// `{"created_at":…,"updated_at":…`: the second a copy of the first's text when
/// they are equal (an entity never updated).
fn json_times<R: Cellular + ?Sized>(
    c: &Cells<'_, '_, R>,
    times: &mut TimestampWriter,
    out: &mut Vec<u8>,
    created: usize,
    updated: Option<usize>,
) -> Result<()> {
    let created_at = c.time(created, "created_at")?;
    out.extend_from_slice(b"{\"created_at\":");
    let start = out.len();
    times.write_json(created_at, out);
    let end = out.len();
    out.extend_from_slice(b",\"updated_at\":");
    let updated_at = match updated {
        Some(updated) => c.time(updated, "updated_at")?,
        None => created_at,
    };
    if updated_at == created_at {
        out.extend_from_within(start..end);
    } else {
        times.write_json(updated_at, out);
    }
    Ok(())
}

/// A JSON list column ([`json_column`] as a list of strings).
fn json_list<R: Cellular + ?Sized>(
    c: &Cells<'_, '_, R>,
    out: &mut Vec<u8>,
    index: usize,
    column: &str,
) -> Result<()> {
    json_column(c, out, index, column, Shape::StringList, || {
        c.json_list(index, column)
    })
}

/// A JSON object column ([`json_column`] as an object).
fn json_map<R: Cellular + ?Sized>(
    c: &Cells<'_, '_, R>,
    out: &mut Vec<u8>,
    index: usize,
    column: &str,
) -> Result<()> {
    json_column(c, out, index, column, Shape::Object, || {
        c.json_map(index, column)
    })
}

/// A JSON column of `shape`: its text copied when it is already what
/// `serde_json` writes for the value it holds ([`canonical::is_canonical`]: the
/// empty list or object, and the compact text kgstore stores), otherwise `parse`d
/// as the reader parses it and written again.
fn json_column<R: Cellular + ?Sized, T: serde::Serialize>(
    c: &Cells<'_, '_, R>,
    out: &mut Vec<u8>,
    index: usize,
    column: &str,
    shape: Shape,
    parse: impl FnOnce() -> Result<T>,
) -> Result<()> {
    let text = c.text_bytes(index, column)?;
    if is_canonical(text, shape) {
        out.extend_from_slice(text);
        Ok(())
    } else {
        json_value(out, &parse()?)
    }
}

#[cfg(test)]
mod tests {
    use super::{RealTexts, json_u64, json_value, stored_relation};

    /// Remembered texts of reals are `serde_json`'s, whichever value held the
    /// slot before: many distinct values (every slot taken over and over), the
    /// same values again, the extremes and signed zeros.
    #[test]
    fn reals_are_written_as_serde_json_writes_them_from_memory_or_not() {
        let mut reals = RealTexts::new();
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            0.1,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            5e-324,
            -2.2250738585072014e-308,
            1e21,
            123_456_789.123_456_78,
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            values.push(match i % 3 {
                0 => (state % 100) as f64 / 10.0,
                1 => f64::from_bits(state),
                _ => (state % 1_000_000) as f64 / 7.0,
            });
        }
        for value in values.iter().chain(values.iter().rev()) {
            let (mut ours, mut theirs) = (b"x".to_vec(), b"x".to_vec());
            reals.write(&mut ours, *value).unwrap();
            json_value(&mut theirs, value).unwrap();
            assert_eq!(ours, theirs, "{value:e}");
        }
    }

    #[test]
    fn integers_are_written_as_serde_json_writes_them() {
        for value in [0, 1, 9, 10, 99, 100, 12_345, i64::MAX as u64, u64::MAX] {
            let mut out = b"x".to_vec();
            json_u64(&mut out, value);
            assert_eq!(
                out,
                [
                    b"x".as_slice(),
                    &serde_json::to_vec(&value).unwrap_or_default()
                ]
                .concat()
            );
        }
    }

    /// Session 17: kept relations are found by length and first eight bytes, then
    /// (past eight bytes) by their whole text: texts of one length and head, texts
    /// of one head and another length, and short texts of one length are each
    /// their own relation, read first and again from the kept list.
    #[test]
    fn kept_relations_are_told_apart_by_their_whole_text() {
        let texts = [
            "custom_relation_a",
            "custom_relation_b",
            "custom_relation",
            "custom_r",
            "custom",
            "rel_1",
            "rel_2",
            "calls",
            "uses",
            "a",
        ];
        for round in 0..2 {
            for text in texts {
                let relation = stored_relation(text.as_bytes()).ok().unwrap();
                assert_eq!(relation.as_str(), text, "round {round}");
            }
        }
        assert!(stored_relation(b"rel_1 ").is_err());
    }
}
