//! Full-text search on SQLite: FTS5 finds the nodes holding a query's terms,
//! kgstore-core scores them.
//!
//! Core's tokeniser decides the tokens (folded, split, cut): each field is
//! written into the FTS5 table `search_fts` as those tokens separated by single
//! spaces, and FTS5's `ascii` tokenizer, which splits only at ASCII
//! non-alphanumerics and leaves every other byte alone, reads exactly those
//! tokens back. So the terms FTS5 holds are core's terms, and the `fts5vocab`
//! table `search_vocab` (one row per occurrence: term, node row, column) gives
//! the per-field term frequencies BM25F needs. `search_docs` keeps each node's
//! type and per-field token counts, `search_totals` the corpus figures, and
//! `search_terms` every term ever indexed with an FTS5 trigram index over it,
//! so that the terms holding a fragment inside them (where a one-word query
//! can be a substring of a node without being a token prefix) are found
//! without reading every term; stale terms only cost a look, and `optimize`
//! drops them. From format 6, a term new to the store first waits in
//! `search_terms_pending` (read whole by fragment queries) until a thousand
//! have gathered, and then they move together ([`PENDING_TERMS_DDL`]). From
//! format 8 a write only lists the node in `search_stale`, and the listed nodes
//! are indexed in batches ([`STALE_DDL`]); searches read them from their rows
//! meanwhile ([`Stale`]). From format 11 a load lists its new nodes with one row
//! of `search_stale_from` instead of one row each ([`STALE_FROM_DDL`]). Every table
//! is written by the backend's own write path inside the store's transaction,
//! so the index commits and rolls back with the data. No triggers: kgstore
//! connections run with triggers disabled.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use kgstore_core::search::text::{DocTokens, FIELDS, Inside, TRUNCATED};
use kgstore_core::search::{CorpusStats, DocKey, DocMatch, TermMatches, TermQuery, term_freqs};
use kgstore_core::{Node, NodeFilter, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::Value;

use crate::codec::{NODE_COLUMNS, node_from_row, node_subject};
use crate::error::{Ctx, SqlResult};
use crate::read::{Q, prefix_upper_bound};

/// The format version that added the search index.
pub(crate) const SEARCH_VERSION: i64 = 3;

/// The format version that records a store's new terms in `search_terms_pending`
/// first ([`PENDING_TERMS_DDL`]).
pub(crate) const PENDING_TERMS_SINCE: i64 = 6;

/// Format version 6: terms new to the store wait in a small table, keyed by the
/// term itself, until [`PENDING_TERMS_MAX`] of them have gathered or a write
/// brings that many at once; then they move to `search_terms` and its trigram
/// index together. Recorded one commit at a time, each new term cost a row of
/// `search_terms`, an entry of its unique index (at a random page) and a new
/// FTS5 segment of the trigram table: 7.5 of the 15.6 WAL frames a single-node
/// commit wrote for the search index (`tests/wal.rs`). Queries for a fragment
/// inside terms read the waiting terms whole (at most `PENDING_TERMS_MAX`).
pub const PENDING_TERMS_DDL: &str = "
CREATE TABLE search_terms_pending (
    term TEXT PRIMARY KEY,
    cut  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
";

/// How many new terms wait in `search_terms_pending` at most.
pub(crate) const PENDING_TERMS_MAX: usize = 1_024;

/// The format version that indexes nodes for search after their write, in
/// batches ([`STALE_DDL`]).
pub(crate) const STALE_SINCE: i64 = 8;

/// Format version 7: a node write records only that the node's search entry is
/// out of date, as a row of `search_stale` (its row id), and the search index
/// (`search_fts`, `search_docs`, `search_totals`, new terms) is brought up to
/// date for all such nodes at once ([`catch_up`]): by the commit that takes the
/// list to [`STALE_BATCH`] rows by writes of fewer nodes, before a write
/// transaction searches, by a search of a writable handle that finds a long list
/// (in a write transaction of its own, before its snapshot), and by `optimize`.
/// Until then searches score the listed nodes from their rows, with core's
/// tokeniser ([`Stale`]), so every search sees every committed write, on any
/// handle, with the same scores. A deleted node leaves the index at once (its
/// `search_docs` row refers to its `nodes` row).
///
/// The invariant: every node that is not listed has an up-to-date entry, and
/// every entry is that of an existing node.
pub const STALE_DDL: &str = "
CREATE TABLE search_stale (
    id INTEGER PRIMARY KEY
) STRICT;
";

/// How many listed nodes the commit of a small write brings up to date at once
/// (see [`after_writes`]); a search of a writable handle that finds at least
/// this many brings the index up to date first.
pub(crate) const STALE_BATCH: usize = 256;

/// The format version that lists a load's new nodes as waiting to be indexed
/// with one row of `search_stale_from` ([`STALE_FROM_DDL`]).
pub(crate) const STALE_FROM_SINCE: i64 = 11;

/// Format version 11: the nodes waiting to be indexed are those listed in
/// `search_stale` **and** every node whose row id is at least `first` of the one
/// row of `search_stale_from`, when it has one.
///
/// A load's new nodes take the name ids above every id `names` held
/// ([`SearchWrites::note_fresh`]), so every node row from the first of them on
/// is one the load wrote: the commit of a transaction that wrote
/// [`STALE_BATCH`] or more such nodes records that id (or keeps a smaller one
/// already there) instead of one `search_stale` row per node, which was 1,680
/// instructions a node of a 100,000-node load (`docs/benchmarks.md`, session 11).
/// Later writes of nodes at or above it list nothing more; nodes below it are
/// listed in `search_stale` as before, which holds no row at or above it (`check`
/// says so otherwise). A catch-up indexes both and empties both. Marking a node
/// that does not need it would only cost a catch-up's work, never an answer: the
/// invariant stays that every node not waiting has an up-to-date entry.
pub const STALE_FROM_DDL: &str = "
CREATE TABLE search_stale_from (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    first INTEGER NOT NULL
) STRICT;
";

/// The search tables and their initial rows (format version 3).
pub const SEARCH_DDL: &str = "
CREATE TABLE search_docs (
    id        INTEGER PRIMARY KEY REFERENCES nodes(id),
    node_type TEXT NOT NULL,
    name_len  INTEGER NOT NULL,
    type_len  INTEGER NOT NULL,
    obs_len   INTEGER NOT NULL,
    attr_len  INTEGER NOT NULL
) STRICT;

CREATE TABLE search_totals (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    nodes    INTEGER NOT NULL,
    name_len INTEGER NOT NULL,
    type_len INTEGER NOT NULL,
    obs_len  INTEGER NOT NULL,
    attr_len INTEGER NOT NULL
) STRICT;
INSERT INTO search_totals VALUES (1, 0, 0, 0, 0, 0);

CREATE TABLE search_terms (
    id   INTEGER PRIMARY KEY,
    term TEXT NOT NULL UNIQUE,
    cut  INTEGER NOT NULL
) STRICT;
CREATE INDEX search_terms_cut ON search_terms(id) WHERE cut;
CREATE VIRTUAL TABLE search_terms_trigrams USING fts5(
    term, content = 'search_terms', content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1', detail = none, columnsize = 0
);

CREATE VIRTUAL TABLE search_fts USING fts5(
    name, type, observations, attributes,
    tokenize = 'ascii', content = '', contentless_delete = 1
);
CREATE VIRTUAL TABLE search_vocab USING fts5vocab(search_fts, instance);
INSERT INTO search_fts(search_fts, rank) VALUES ('hashsize', 8388608);
INSERT INTO search_terms_trigrams(search_terms_trigrams, rank) VALUES ('hashsize', 8388608);
";

/// What a write transaction keeps between writes: the terms it has already
/// recorded in `search_terms`, and the changes of the two FTS5 tables not yet
/// handed to FTS5.
///
/// FTS5 gathers new rows in memory and writes them out as one segment, but it
/// writes out what it holds whenever a statement of the transaction opens a
/// statement savepoint, as kgstore's upserts and multi-row inserts do. Written
/// as they come, a bulk load's rows would become thousands of tiny segments to
/// merge. So the changes wait here, per row, and go to FTS5 together: before
/// the transaction reads its own search index, and at commit.
#[derive(Default)]
pub(crate) struct SearchWrites {
    /// Node rows written in this transaction and not yet listed in `search_stale`
    /// (a row written twice is here twice; sorted and deduplicated when listed:
    /// pushing is a tenth of a `BTreeSet` insert's instructions).
    stale: Vec<i64>,
    /// The first name id a batch of new nodes took while `names` held none as
    /// large (format 11): every node row from it on was written by this
    /// transaction (and is in `stale`) until the marks are written.
    fresh: Option<i64>,
    recorded: HashSet<String>,
    rows: BTreeMap<i64, RowChange>,
    /// Terms this transaction met first, for `search_terms` and its trigrams.
    terms: Vec<String>,
    /// Set when handing the changes over failed part way: the commit is refused.
    failed: bool,
    /// Whether new terms go straight to `search_terms` (a rebuild, which also
    /// runs on files older than `search_terms_pending`), never waiting there.
    direct: bool,
    /// An upper bound of the entries FTS5's in-memory tables of pending terms
    /// have held in this transaction (see [`SearchWrites::grew_fts5_hash`]).
    entries: usize,
}

/// Entries of FTS5's table of pending terms above which [`SearchWrites::grew_fts5_hash`]
/// says the writer connection should be replaced.
///
/// FTS5 keeps the terms written and not yet flushed in a hash table per FTS5
/// table and connection, whose slot array doubles whenever it is half full and
/// never shrinks; every later flush, which every commit does, sorts the terms by
/// visiting every slot, and clears the array with `memset`. After a bulk load of
/// 100,000 nodes that was about 65 % of each later single-node commit (a profile
/// of the peers workload: `fts5IndexFlush`, `fts5HashEntrySort`, `memset`). The
/// table starts with 1,024 slots; at 4,096 entries it has 8,192 (64 KiB), and each
/// commit's cost of walking it is still a few microseconds.
pub(crate) const HASH_ENTRIES_RENEWED: usize = 4_096;

/// What happens to one row of `search_fts`.
#[derive(Default)]
struct RowChange {
    /// Its entry from before the transaction (or before the last hand-over) goes.
    delete_old: bool,
    /// Its new tokens, field by field.
    insert: Option<[String; FIELDS]>,
}

impl SearchWrites {
    /// Hands the waiting changes to FTS5: removals first, then new rows in
    /// rowid order, so FTS5 keeps them in memory until the commit.
    pub(crate) fn flush(&mut self, conn: &Connection, ctx: &Ctx) -> Result<()> {
        if self.failed {
            return Err(kgstore_core::Error::backend(
                "sqlite",
                format!(
                    "an earlier write to the search index of {} failed part way; \
                     this transaction cannot commit",
                    ctx.path.display()
                ),
            ));
        }
        if self.rows.is_empty() && self.terms.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let terms = std::mem::take(&mut self.terms);
        // Each term handed over is an entry of `search_fts`'s table (at most once
        // per distinct term), and a new term's trigrams entries of the trigram table's.
        self.entries = self.entries.saturating_add(
            terms
                .iter()
                .map(|t| 1 + t.chars().count().saturating_sub(2))
                .sum(),
        );
        let outcome = (|| {
            let doing = || "writing the search index (table search_fts)".to_owned();
            let mut delete = conn
                .prepare_cached("DELETE FROM search_fts WHERE rowid = ?1")
                .ctx(ctx, doing)?;
            for (id, _) in rows.iter().filter(|(_, c)| c.delete_old) {
                delete.execute([id]).ctx(ctx, doing)?;
            }
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO search_fts(rowid, name, type, observations, attributes) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .ctx(ctx, doing)?;
            for (id, change) in &rows {
                if let Some([a, b, c, d]) = &change.insert {
                    insert.execute(params![id, a, b, c, d]).ctx(ctx, doing)?;
                }
            }
            if !terms.is_empty() {
                record_terms(conn, ctx, &terms, self.direct)?;
            }
            Ok(())
        })();
        if outcome.is_err() {
            self.failed = true;
        }
        outcome
    }
}

impl SearchWrites {
    /// Writes whose new terms go straight to `search_terms` ([`rebuild`]).
    fn direct() -> Self {
        Self {
            direct: true,
            ..Self::default()
        }
    }

    /// Whether this transaction's writes may have grown FTS5's in-memory tables of
    /// pending terms past [`HASH_ENTRIES_RENEWED`] entries, so that the writer
    /// connection is best replaced by a fresh one (which has small tables again).
    pub(crate) fn grew_fts5_hash(&self) -> bool {
        self.entries >= HASH_ENTRIES_RENEWED
    }
}

impl SearchWrites {
    /// Notes that node row `id` was written: its search entry is out of date.
    pub(crate) fn mark(&mut self, id: i64) {
        self.stale.push(id);
    }

    /// Notes that a batch of new nodes takes name ids from `first` on, and that
    /// `names` held no id as large before it: every node row from the first such
    /// id on is one this transaction writes (marked with [`SearchWrites::mark`]).
    pub(crate) fn note_fresh(&mut self, first: i64) {
        self.fresh.get_or_insert(first);
    }
}

/// What a commit did about the nodes waiting to be indexed ([`after_writes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backlog {
    /// Fewer than [`STALE_BATCH`] wait (or none).
    Short,
    /// The commit brought the index up to date.
    CaughtUp,
    /// At least [`STALE_BATCH`] wait, left by writes of that many nodes or more
    /// (a load): the next search of a writable handle, a write transaction's
    /// search or `optimize` indexes them.
    Long,
}

/// Lists the transaction's written nodes as waiting to be indexed; how many were
/// not waiting yet (those `search_stale_from` covered already are not counted
/// unless the transaction created them: a commit then never takes a load it did
/// not write for a batch of its own to index).
///
/// A transaction that created [`STALE_BATCH`] nodes or more under fresh ids
/// ([`SearchWrites::note_fresh`]) records the first of them in
/// `search_stale_from` (or keeps a smaller id there); the nodes below the row's
/// id go to `search_stale` one row each.
fn write_marks(conn: &Connection, ctx: &Ctx, writes: &mut SearchWrites) -> Result<usize> {
    let fresh = writes.fresh.take();
    if writes.stale.is_empty() {
        return Ok(0);
    }
    let doing = || "listing written nodes in table search_stale".to_owned();
    let mut ids = std::mem::take(&mut writes.stale);
    ids.sort_unstable();
    ids.dedup();
    let mut from = stale_from(conn, ctx)?;
    let mut added = 0;
    if let Some(first) = fresh {
        let created = ids.len() - ids.partition_point(|id| *id < first);
        if created >= STALE_BATCH && from.is_none_or(|f| first < f) {
            set_stale_from(conn, ctx, first)?;
            from = Some(first);
        }
        if from.is_some_and(|f| f <= first) {
            added += created;
        }
    }
    let listed = match from {
        Some(f) => &ids[..ids.partition_point(|id| *id < f)],
        None => &ids[..],
    };
    // A load's ids go MARKS_PER_STATEMENT to a statement (a tenth of a load's
    // time went to one statement per id).
    let mut chunks = listed.chunks_exact(MARKS_PER_STATEMENT);
    if chunks.len() > 0 {
        let mut stmt = conn.prepare_cached(marks_sql()).ctx(ctx, doing)?;
        for chunk in &mut chunks {
            added += stmt.execute(params_from_iter(chunk)).ctx(ctx, doing)?;
        }
    }
    let mut stmt = conn
        .prepare_cached("INSERT OR IGNORE INTO search_stale(id) VALUES (?1)")
        .ctx(ctx, doing)?;
    for id in chunks.remainder() {
        added += stmt.execute([id]).ctx(ctx, doing)?;
    }
    Ok(added)
}

/// The id from which every node row waits to be indexed (`search_stale_from`), if any.
fn stale_from(conn: &Connection, ctx: &Ctx) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT first FROM search_stale_from WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .ctx(ctx, || "reading table search_stale_from".into())
}

/// Records that every node row from `first` on waits to be indexed, and drops
/// the rows of `search_stale` that this covers (none but after a deletion took
/// the largest ids back).
fn set_stale_from(conn: &Connection, ctx: &Ctx, first: i64) -> Result<()> {
    let doing = || "recording waiting nodes in table search_stale_from".to_owned();
    conn.prepare_cached("INSERT OR REPLACE INTO search_stale_from(id, first) VALUES (1, ?1)")
        .and_then(|mut s| s.execute([first]))
        .and_then(|_| {
            conn.prepare_cached("DELETE FROM search_stale WHERE id >= ?1")?
                .execute([first])
        })
        .ctx(ctx, doing)
        .map(drop)
}

/// Ids listed by one statement of [`write_marks`].
const MARKS_PER_STATEMENT: usize = 128;

/// `INSERT OR IGNORE` of [`MARKS_PER_STATEMENT`] ids into `search_stale`.
fn marks_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let values = vec!["(?)"; MARKS_PER_STATEMENT].join(", ");
        format!("INSERT OR IGNORE INTO search_stale(id) VALUES {values}")
    })
}

/// Whether at least `n` nodes (`n` ≤ [`STALE_BATCH`] and a little more) wait to
/// be indexed: the rows of `search_stale` (reads at most `n`), or a row of
/// `search_stale_from`, which counts as a long list without reading the nodes
/// it covers (the commit that wrote it covered [`STALE_BATCH`] new nodes or
/// more; should deletions have taken most of them since, a catch-up comes a
/// little early, which costs only its own short work).
fn stale_at_least(conn: &Connection, ctx: &Ctx, n: usize) -> Result<bool> {
    let doing = || "counting the rows of table search_stale".to_owned();
    if conn
        .prepare_cached("SELECT 1 FROM search_stale_from")
        .and_then(|mut s| s.exists([]))
        .ctx(ctx, doing)?
    {
        return Ok(true);
    }
    let offset = i64::try_from(n.saturating_sub(1)).unwrap_or(i64::MAX);
    conn.prepare_cached("SELECT 1 FROM search_stale LIMIT 1 OFFSET ?1")
        .and_then(|mut s| s.exists([offset]))
        .ctx(ctx, doing)
}

/// Whether a handle should bring a long list up to date before it searches:
/// [`STALE_BATCH`] rows or more wait.
pub(crate) fn backlog_is_long(conn: &Connection, ctx: &Ctx) -> Result<bool> {
    stale_at_least(conn, ctx, STALE_BATCH)
}

/// The connection's `PRAGMA data_version`: it changes when another connection
/// commits.
pub(crate) fn data_version(conn: &Connection, ctx: &Ctx) -> Result<i64> {
    conn.prepare_cached("PRAGMA data_version")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .ctx(ctx, || "reading PRAGMA data_version".into())
}

/// At commit: lists the transaction's written nodes, then brings the index up
/// to date if these writes took the list from under [`STALE_BATCH`] rows to that
/// many or more — small writes are indexed [`STALE_BATCH`] at a time, in one FTS5
/// segment instead of one per commit. A transaction that itself listed that many
/// (a load) leaves them for later ([`Backlog::Long`]): indexing them at its
/// commit is the cost deferring saves it, and the next search (or `optimize`)
/// does it in one batch; a later small write does not either, so its commit
/// never pays for a load.
///
/// `long`: the caller knows the list held [`STALE_BATCH`] rows or more before
/// these writes (they cannot have crossed the mark): it is not read.
pub(crate) fn after_writes(
    conn: &Connection,
    ctx: &Ctx,
    writes: &mut SearchWrites,
    long: bool,
) -> Result<Backlog> {
    let added = write_marks(conn, ctx, writes)?;
    if long {
        return Ok(Backlog::Long);
    }
    if added == 0 || !stale_at_least(conn, ctx, STALE_BATCH)? {
        return Ok(Backlog::Short);
    }
    if added >= STALE_BATCH {
        return Ok(Backlog::Long);
    }
    // Before these writes the list held fewer than STALE_BATCH rows.
    if !stale_at_least(conn, ctx, STALE_BATCH.saturating_add(added))? {
        catch_up(conn, ctx, writes)?;
        return Ok(Backlog::CaughtUp);
    }
    Ok(Backlog::Long)
}

/// Brings the search entries of every waiting node (listed in `search_stale`, or
/// covered by `search_stale_from`) up to date (in the caller's write transaction)
/// and empties both. Also lists the
/// transaction's own written nodes first. The rows go to FTS5 together (`flush`).
pub(crate) fn catch_up(conn: &Connection, ctx: &Ctx, writes: &mut SearchWrites) -> Result<()> {
    write_marks(conn, ctx, writes)?;
    let doing = || "indexing the nodes listed in table search_stale".to_owned();
    let mut delta = Delta::default();
    let mut after = i64::MIN;
    const PAGE: i64 = 1_024;
    let nodes_sql = format!(
        "SELECT {NODE_COLUMNS} FROM json_each(?1) j CROSS JOIN nodes n ON n.id = j.value \
         JOIN names k ON k.id = n.id"
    );
    loop {
        let ids: Vec<i64> = conn
            .prepare_cached(
                "SELECT id FROM search_stale WHERE id > ?1 UNION SELECT id FROM nodes \
                 WHERE id > ?1 AND id >= (SELECT first FROM search_stale_from WHERE id = 1) \
                 ORDER BY id LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![after, PAGE], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()
            })
            .ctx(ctx, doing)?;
        let Some(last) = ids.last().copied() else {
            break;
        };
        for id in &ids {
            unindex_node(conn, ctx, writes, &mut delta, *id)?;
        }
        let mut stmt = conn.prepare_cached(&nodes_sql).ctx(ctx, doing)?;
        let mut rows = stmt.query([id_array(&ids)]).ctx(ctx, doing)?;
        while let Some(row) = rows.next().ctx(ctx, doing)? {
            let id: i64 = row.get(0).ctx(ctx, doing)?;
            let node = node_from_row(row, ctx)?;
            index_node(conn, ctx, writes, &mut delta, id, &node)?;
        }
        drop(rows);
        drop(stmt);
        if ids.len() < PAGE as usize {
            break;
        }
        after = last;
    }
    conn.prepare_cached("DELETE FROM search_stale")
        .and_then(|mut s| s.execute([]))
        .and_then(|_| {
            conn.prepare_cached("DELETE FROM search_stale_from")?
                .execute([])
        })
        .ctx(ctx, doing)?;
    apply(conn, ctx, delta)?;
    writes.flush(conn, ctx)
}

/// The nodes whose search entries are out of date, as a search sees them: read
/// from their rows and tokenised by core, so that searches see every write
/// before the index is brought up to date. The rows are streamed: a search holds
/// only the listed nodes that match it.
pub(crate) struct Stale {
    /// The listed rows (whether or not a node still has them).
    ids: HashSet<i64>,
    /// From format 11: every node row from this id on waits too (`search_stale_from`).
    from: Option<i64>,
    /// How many nodes `from` covers.
    covered: usize,
}

impl Stale {
    /// The waiting rows of the reading transaction's snapshot (none before format 8).
    pub(crate) fn read(q: &Q<'_>, version: i64) -> Result<Self> {
        if !defers_indexing(version) {
            return Ok(Self {
                ids: HashSet::new(),
                from: None,
                covered: 0,
            });
        }
        let doing = || "reading table search_stale".to_owned();
        let ids = q
            .rows("SELECT id FROM search_stale", [], doing, |r| {
                r.get(0).ctx(q.ctx, doing)
            })?
            .into_iter()
            .collect();
        let (mut from, mut covered) = (None, 0);
        if has_stale_from(version) {
            let doing = || "reading table search_stale_from".to_owned();
            if let Some((first, count)) = q.one(
                "SELECT f.first, (SELECT count(*) FROM nodes n WHERE n.id >= f.first) \
                 FROM search_stale_from f WHERE f.id = 1",
                [],
                doing,
                |r| {
                    let first: i64 = r.get(0).ctx(q.ctx, doing)?;
                    let count: i64 = r.get(1).ctx(q.ctx, doing)?;
                    Ok((first, count))
                },
            )? {
                from = Some(first);
                covered = usize::try_from(count).unwrap_or(usize::MAX);
            }
        }
        Ok(Self { ids, from, covered })
    }

    /// How many rows are listed, and nodes covered.
    pub(crate) fn len(&self) -> usize {
        self.ids.len().saturating_add(self.covered)
    }

    /// Whether no row is listed and no node covered.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `id`'s entry in the index is out of date (to be ignored).
    fn holds(&self, id: i64) -> bool {
        self.from.is_some_and(|first| id >= first) || self.ids.contains(&id)
    }

    /// Calls `each` with every listed node that exists, its row id and its tokens.
    fn for_each(
        &self,
        q: &Q<'_>,
        mut each: impl FnMut(i64, &Node, &DocTokens) -> Result<()>,
    ) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        if !self.ids.is_empty() {
            let sql = format!(
                "SELECT {NODE_COLUMNS} FROM search_stale s CROSS JOIN nodes n ON n.id = s.id \
                 JOIN names k ON k.id = n.id"
            );
            each_node(q, &sql, [], &mut each)?;
        }
        if let Some(first) = self.from {
            let sql = format!(
                "SELECT {NODE_COLUMNS} FROM nodes n JOIN names k ON k.id = n.id WHERE n.id >= ?1"
            );
            each_node(q, &sql, [first], &mut each)?;
        }
        Ok(())
    }

    /// The corpus figures of the index, corrected: the listed nodes' entries
    /// taken out, `count` nodes of `tokens` tokens (their current content) put in.
    fn correct(
        &self,
        q: &Q<'_>,
        corpus: CorpusStats,
        count: u64,
        tokens: [u64; FIELDS],
    ) -> Result<CorpusStats> {
        let doing = || "reading table search_docs".to_owned();
        // The entries' count and summed field lengths of the rows a query selects.
        let sums = |from: &str, params: &[&dyn rusqlite::ToSql]| -> Result<[i64; 5]> {
            let sql = format!(
                "SELECT count(*), coalesce(sum(name_len), 0), coalesce(sum(type_len), 0), \
                 coalesce(sum(obs_len), 0), coalesce(sum(attr_len), 0) FROM {from}"
            );
            Ok(q.one(&sql, params, doing, |r| {
                let mut v = [0i64; 5];
                for (i, x) in v.iter_mut().enumerate() {
                    *x = r.get(i).ctx(q.ctx, doing)?;
                }
                Ok(v)
            })?
            .unwrap_or_default())
        };
        let mut old = sums(
            "search_stale s CROSS JOIN search_docs d ON d.id = s.id",
            &[],
        )?;
        if let Some(first) = self.from {
            let covered = sums("search_docs WHERE id >= ?1", &[&first])?;
            for (o, c) in old.iter_mut().zip(covered) {
                *o = o.saturating_add(c);
            }
        }
        let fix = |total: u64, old: i64, new: u64| -> Result<u64> {
            total
                .checked_sub(u64::try_from(old).unwrap_or(u64::MAX))
                .and_then(|t| t.checked_add(new))
                .ok_or_else(|| {
                    q.ctx.corrupt(
                        "table search_totals holds less than the rows of table search_docs; \
                         `kgstore optimize` rebuilds the index",
                    )
                })
        };
        let mut out = CorpusStats {
            nodes: fix(corpus.nodes, old[0], count)?,
            tokens: [0; FIELDS],
        };
        for (f, total) in out.tokens.iter_mut().enumerate() {
            *total = fix(corpus.tokens[f], old[f + 1], tokens[f])?;
        }
        Ok(out)
    }
}

/// Calls `each` with every node `sql` reads (its columns [`NODE_COLUMNS`]), its
/// row id and its tokens.
fn each_node(
    q: &Q<'_>,
    sql: &str,
    params: impl rusqlite::Params,
    each: &mut impl FnMut(i64, &Node, &DocTokens) -> Result<()>,
) -> Result<()> {
    let doing = || "reading the nodes waiting to be indexed".to_owned();
    let mut stmt = q.conn.prepare_cached(sql).ctx(q.ctx, doing)?;
    let mut rows = stmt.query(params).ctx(q.ctx, doing)?;
    while let Some(row) = rows.next().ctx(q.ctx, doing)? {
        let id: i64 = row.get(0).ctx(q.ctx, doing)?;
        let node = node_from_row(row, q.ctx)?;
        let doc = DocTokens::of(&node);
        each(id, &node, &doc)?;
    }
    Ok(())
}

/// Records terms that may be new to the store (each once): in
/// `search_terms_pending` while it holds fewer than [`PENDING_TERMS_MAX`] with
/// them, else (or when `direct`) in `search_terms` and its trigram index, together
/// with the terms waiting.
fn record_terms(conn: &Connection, ctx: &Ctx, terms: &[String], direct: bool) -> Result<()> {
    let doing = || "recording new terms in table search_terms".to_owned();
    if !direct {
        let waiting: i64 = conn
            .prepare_cached("SELECT count(*) FROM search_terms_pending")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .ctx(ctx, doing)?;
        if usize::try_from(waiting)
            .unwrap_or(usize::MAX)
            .saturating_add(terms.len())
            < PENDING_TERMS_MAX
        {
            let mut known = conn
                .prepare_cached("SELECT 1 FROM search_terms WHERE term = ?1")
                .ctx(ctx, doing)?;
            let mut wait = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO search_terms_pending(term, cut) VALUES (?1, ?2)",
                )
                .ctx(ctx, doing)?;
            for term in terms {
                if !known.exists([term]).ctx(ctx, doing)? {
                    wait.execute(params![term, term.ends_with(TRUNCATED)])
                        .ctx(ctx, doing)?;
                }
            }
            return Ok(());
        }
    }
    let last: i64 = conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM search_terms")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .ctx(ctx, doing)?;
    if !direct {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO search_terms(term, cut) \
             SELECT term, cut FROM search_terms_pending",
        )
        .and_then(|mut s| s.execute([]))
        .and_then(|_| {
            conn.prepare_cached("DELETE FROM search_terms_pending")?
                .execute([])
        })
        .ctx(ctx, doing)?;
    }
    let mut record = conn
        .prepare_cached("INSERT OR IGNORE INTO search_terms(term, cut) VALUES (?1, ?2)")
        .ctx(ctx, doing)?;
    for term in terms {
        record
            .execute(params![term, term.ends_with(TRUNCATED)])
            .ctx(ctx, doing)?;
    }
    conn.prepare_cached(
        "INSERT INTO search_terms_trigrams(rowid, term) \
         SELECT id, term FROM search_terms WHERE id > ?1",
    )
    .and_then(|mut s| s.execute([last]))
    .ctx(ctx, doing)?;
    Ok(())
}

/// A change of the corpus figures.
#[derive(Clone, Copy, Default)]
pub(crate) struct Delta {
    nodes: i64,
    tokens: [i64; FIELDS],
}

impl Delta {
    fn add(&mut self, sign: i64, lengths: &[i64; FIELDS]) {
        self.nodes += sign;
        for (t, l) in self.tokens.iter_mut().zip(lengths) {
            *t += sign * l;
        }
    }
}

fn lengths_of(doc: &DocTokens) -> [i64; FIELDS] {
    doc.lengths().map(i64::from)
}

/// Indexes a node under row `id` (which must not be indexed); adds to `delta`.
pub(crate) fn index_node(
    conn: &Connection,
    ctx: &Ctx,
    writes: &mut SearchWrites,
    delta: &mut Delta,
    id: i64,
    node: &Node,
) -> Result<()> {
    let doing = || format!("indexing {} for search", node_subject(&node.name));
    let doc = DocTokens::of(node);
    let lengths = lengths_of(&doc);
    writes.rows.entry(id).or_default().insert =
        Some([doc.joined(0), doc.joined(1), doc.joined(2), doc.joined(3)]);
    conn.prepare_cached("INSERT INTO search_docs VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .and_then(|mut s| {
            s.execute(params![
                id,
                node.node_type,
                lengths[0],
                lengths[1],
                lengths[2],
                lengths[3]
            ])
        })
        .ctx(ctx, doing)?;
    for (term, _) in doc.term_counts() {
        if !writes.recorded.contains(term) {
            writes.recorded.insert(term.to_owned());
            writes.terms.push(term.to_owned());
        }
    }
    delta.add(1, &lengths);
    Ok(())
}

/// Removes row `id` from the index, if it is there; subtracts from `delta`.
pub(crate) fn unindex_node(
    conn: &Connection,
    ctx: &Ctx,
    writes: &mut SearchWrites,
    delta: &mut Delta,
    id: i64,
) -> Result<()> {
    let doing = || format!("removing row {id} from the search index");
    let old: Option<[i64; FIELDS]> = conn
        .prepare_cached(
            "DELETE FROM search_docs WHERE id = ?1 \
             RETURNING name_len, type_len, obs_len, attr_len",
        )
        .and_then(|mut s| {
            let mut rows = s.query([id])?;
            match rows.next()? {
                Some(r) => Ok(Some([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])),
                None => Ok(None),
            }
        })
        .ctx(ctx, doing)?;
    if let Some(lengths) = old {
        match writes.rows.get_mut(&id) {
            // Its entry has not reached FTS5: it never needs to.
            Some(change) if !change.delete_old => {
                writes.rows.remove(&id);
            }
            Some(change) => change.insert = None,
            None => {
                writes.rows.insert(
                    id,
                    RowChange {
                        delete_old: true,
                        insert: None,
                    },
                );
            }
        }
        delta.add(-1, &lengths);
    }
    Ok(())
}

/// Applies a change of the corpus figures.
pub(crate) fn apply(conn: &Connection, ctx: &Ctx, delta: Delta) -> Result<()> {
    if delta.nodes == 0 && delta.tokens == [0; FIELDS] {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE search_totals SET nodes = nodes + ?1, name_len = name_len + ?2, \
         type_len = type_len + ?3, obs_len = obs_len + ?4, attr_len = attr_len + ?5 \
         WHERE id = 1",
    )
    .and_then(|mut s| {
        s.execute(params![
            delta.nodes,
            delta.tokens[0],
            delta.tokens[1],
            delta.tokens[2],
            delta.tokens[3]
        ])
    })
    .ctx(ctx, || {
        "updating the search figures in table search_totals".into()
    })?;
    Ok(())
}

/// Empties the index and indexes every node again (a migration, a repair).
pub(crate) fn rebuild(conn: &Connection, ctx: &Ctx) -> Result<()> {
    conn.execute_batch(
        "DELETE FROM search_fts; DELETE FROM search_docs; \
         INSERT INTO search_terms_trigrams(search_terms_trigrams) VALUES ('delete-all'); \
         DELETE FROM search_terms; \
         UPDATE search_totals SET nodes = 0, name_len = 0, type_len = 0, obs_len = 0, \
         attr_len = 0 WHERE id = 1;",
    )
    .ctx(ctx, || "emptying the search index".into())?;
    let q = Q {
        conn,
        ctx,
        held: None,
    };
    // (Also the fill of format 3 on older files, before `search_terms_pending` exists.)
    let mut writes = SearchWrites::direct();
    let mut delta = Delta::default();
    let mut after: Option<String> = None;
    const PAGE: usize = 1024;
    loop {
        let nodes = q.scan_nodes(&NodeFilter::default(), after.as_deref(), PAGE)?;
        for node in &nodes {
            let id = q.node_id(&node.name)?.ok_or_else(|| {
                ctx.corrupt(format!("{} has no row id", node_subject(&node.name)))
            })?;
            index_node(conn, ctx, &mut writes, &mut delta, id, node)?;
        }
        if nodes.len() < PAGE {
            break;
        }
        after = nodes.last().map(|n| n.name.clone());
    }
    writes.flush(conn, ctx)?;
    apply(conn, ctx, delta)
}

/// Maintenance, in the writer's transaction: rebuilds an index that disagrees
/// with the nodes (written by an older kgstore, say), or else drops the terms
/// no node holds any more from `search_terms`; then merges FTS5's segments.
pub(crate) fn optimize(conn: &Connection, ctx: &Ctx) -> Result<()> {
    // The listed nodes are indexed first, so that the check below sees an index
    // that should agree with every node.
    catch_up(conn, ctx, &mut SearchWrites::default())?;
    // The waiting terms join the others (the trigram index is rebuilt below).
    conn.execute_batch(
        "INSERT OR IGNORE INTO search_terms(term, cut) SELECT term, cut FROM search_terms_pending; \
         DELETE FROM search_terms_pending;",
    )
    .ctx(ctx, || {
        "moving the terms of table search_terms_pending to table search_terms".into()
    })?;
    if problems(conn, ctx, STALE_FROM_SINCE)?.is_empty() {
        conn.execute_batch(
            "DELETE FROM search_terms WHERE NOT EXISTS \
             (SELECT 1 FROM search_vocab v WHERE v.term = search_terms.term); \
             INSERT INTO search_terms_trigrams(search_terms_trigrams) VALUES ('rebuild');",
        )
        .ctx(ctx, || {
            "dropping unused terms from table search_terms".into()
        })?;
    } else {
        rebuild(conn, ctx)?;
    }
    conn.execute_batch(
        "INSERT INTO search_fts(search_fts) VALUES ('optimize'); \
         INSERT INTO search_terms_trigrams(search_terms_trigrams) VALUES ('optimize');",
    )
    .ctx(ctx, || "merging the search index's segments".into())
}

/// The corpus figures.
fn totals(q: &Q<'_>) -> Result<CorpusStats> {
    let doing = || "reading table search_totals".to_owned();
    let row: Option<[i64; 5]> = q
        .conn
        .prepare_cached(
            "SELECT nodes, name_len, type_len, obs_len, attr_len FROM search_totals WHERE id = 1",
        )
        .and_then(|mut s| {
            let mut rows = s.query([])?;
            match rows.next()? {
                Some(r) => Ok(Some([
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                ])),
                None => Ok(None),
            }
        })
        .ctx(q.ctx, doing)?;
    let [nodes, a, b, c, d] = row.ok_or_else(|| q.ctx.corrupt("table search_totals is empty"))?;
    let count = |v: i64| {
        u64::try_from(v).map_err(|_| q.ctx.corrupt(format!("table search_totals holds {v}")))
    };
    Ok(CorpusStats {
        nodes: count(nodes)?,
        tokens: [count(a)?, count(b)?, count(c)?, count(d)?],
    })
}

/// The field a column of `search_fts` holds.
fn field_of(column: &[u8]) -> Option<usize> {
    match column.first() {
        Some(b'n') => Some(0),
        Some(b't') => Some(1),
        Some(b'o') => Some(2),
        Some(b'a') => Some(3),
        _ => None,
    }
}

/// A JSON array of row ids, to bind as one parameter.
fn id_array(ids: &[i64]) -> String {
    Value::Array(ids.iter().map(|i| Value::from(*i)).collect()).to_string()
}

/// A hasher for row ids: SipHash, the standard one, was about 7% of [`terms`]
/// in a profile of the benchmark's queries, most of which read thousands of rows
/// (and a tenth of a short traversal's instructions, `Q::traverse_node`).
#[derive(Default)]
pub(crate) struct RowIdHasher(u64);

/// A set of row ids, hashed cheaply ([`RowIdHasher`]).
pub(crate) type IdSet = HashSet<i64, std::hash::BuildHasherDefault<RowIdHasher>>;
/// A map from row ids, hashed cheaply ([`RowIdHasher`]).
pub(crate) type IdMap<V> = HashMap<i64, V, std::hash::BuildHasherDefault<RowIdHasher>>;

impl std::hash::Hasher for RowIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i64(&mut self, n: i64) {
        // Fibonacci hashing: the high bits, which hashbrown uses, mix every bit of n.
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A term's occurrences, each with its node's figures: the occurrences of the
/// term itself (`?1` the term).
///
/// The node's row is `d.id`, not `v.doc`: each `fts5vocab` column read is a call
/// into FTS5, and `d.id` is the joined row's key (NULL if `search_docs` lacks it).
/// The four lengths come in two columns, two 32-bit halves each ([`halves`]):
/// a column read through rusqlite costs about as much as the SQL arithmetic
/// of every row.
const OCCURRENCES_EXACT: &str = "SELECT d.id, v.col, d.node_type, d.name_len | (d.type_len << 32), \
     d.obs_len | (d.attr_len << 32) FROM search_vocab v LEFT JOIN search_docs d ON d.id = v.doc \
     WHERE v.term = ?1";

/// The occurrences of the terms longer than a prefix, up to the bound `?2`
/// (`?1` the prefix followed by NUL, which no token holds: the smallest string
/// after the prefix, so FTS5 starts after the prefix's own occurrences).
const OCCURRENCES_LONGER: &str = "SELECT d.id, v.col, d.node_type, d.name_len | (d.type_len << 32), \
     d.obs_len | (d.attr_len << 32) FROM search_vocab v LEFT JOIN search_docs d ON d.id = v.doc \
     WHERE v.term >= ?1 AND v.term < ?2";

/// [`OCCURRENCES_LONGER`] for a prefix without an upper bound.
const OCCURRENCES_LONGER_ALL: &str = "SELECT d.id, v.col, d.node_type, d.name_len | (d.type_len << 32), \
     d.obs_len | (d.attr_len << 32) FROM search_vocab v LEFT JOIN search_docs d ON d.id = v.doc \
     WHERE v.term >= ?1";

/// The two 32-bit halves of a pair of lengths read as `low | (high << 32)`
/// (each length is at most `u32::MAX`: they are written from `u32`s).
fn halves(pair: i64) -> [u32; 2] {
    let bits = pair.cast_unsigned();
    [(bits & 0xFFFF_FFFF) as u32, (bits >> 32) as u32]
}

/// One shared copy of each node type met in a query's matches.
#[derive(Default)]
struct Types(HashSet<Arc<str>>);

impl Types {
    fn get(&mut self, node_type: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(node_type) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(node_type);
        self.0.insert(Arc::clone(&shared));
        shared
    }
}

/// Where each node row met so far is in a [`TermMatches`].
type Slots = IdMap<usize>;

/// [`kgstore_core::ReadTxn::search_terms`] from the FTS5 index.
///
/// Every occurrence is a row (FTS5 gives no per-node, per-column count through
/// SQL), so the work per row is kept small: no term column is read (a prefix's
/// own occurrences and the longer terms' come from two statements, so which one
/// a row came from says whether it is exact), the node's row comes from the
/// join, and its figures are read once per node.
///
/// `stale`: the nodes listed in `search_stale` (format 8), scored from their rows.
pub(crate) fn terms(q: &Q<'_>, terms: &TermQuery, stale: &Stale) -> Result<TermMatches<'static>> {
    let mut found = Found {
        out: TermMatches::new(totals(q)?, terms.len()),
        slot: Slots::default(),
        types: Types::default(),
        stale,
    };
    for (i, term) in terms.terms().iter().enumerate() {
        found.read(q, i, true, OCCURRENCES_EXACT, &[term])?;
        if terms.is_prefix(i) {
            let after = format!("{term}\0");
            match prefix_upper_bound(term) {
                Some(bound) => found.read(q, i, false, OCCURRENCES_LONGER, &[&after, &bound])?,
                None => found.read(q, i, false, OCCURRENCES_LONGER_ALL, &[&after])?,
            }
        }
    }
    if !stale.is_empty() {
        let Found { out, types, .. } = &mut found;
        let (mut count, mut tokens) = (0u64, [0u64; FIELDS]);
        stale.for_each(q, |id, node, doc| {
            let lengths = doc.lengths();
            count += 1;
            for (t, l) in tokens.iter_mut().zip(lengths) {
                *t += u64::from(l);
            }
            if let Some(tf) = term_freqs(doc, terms) {
                let at = out.push(DocMatch {
                    key: DocKey::Row(id),
                    node_type: Cow::Owned(types.get(&node.node_type)),
                    lengths,
                });
                for (i, freq) in tf.into_iter().enumerate() {
                    if let Some(slot) = out.freq_mut(at, i / FIELDS, i % FIELDS) {
                        *slot = freq;
                    }
                }
            }
            Ok(())
        })?;
        out.corpus = stale.correct(q, std::mem::take(&mut out.corpus), count, tokens)?;
    }
    Ok(found.out)
}

/// The matches of a query as they are read.
struct Found<'s> {
    out: TermMatches<'static>,
    /// Where each node row met so far is in `out`.
    slot: Slots,
    types: Types,
    /// The nodes not indexed yet: their rows in the index are skipped.
    stale: &'s Stale,
}

impl Found<'_> {
    /// Adds the occurrences one of the `OCCURRENCES_*` statements reads for
    /// term `i` (`exact`: whether they are of the term itself), skipping the
    /// rows of the stale nodes (scored from their rows by [`terms`]).
    fn read(
        &mut self,
        q: &Q<'_>,
        i: usize,
        exact: bool,
        sql: &str,
        params: &[&String],
    ) -> Result<()> {
        let Self {
            out,
            slot,
            types,
            stale,
        } = self;
        let doing = || "reading the search index (tables search_vocab, search_docs)".to_owned();
        let mut stmt = q.conn.prepare_cached(sql).ctx(q.ctx, doing)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .ctx(q.ctx, doing)?;
        // A node's occurrences of one term come one after another.
        let mut last: Option<(i64, usize)> = None;
        while let Some(row) = rows.next().ctx(q.ctx, doing)? {
            let doc = match row.get_ref(0).ctx(q.ctx, doing)? {
                ValueRef::Integer(doc) => doc,
                _ => {
                    return Err(q.ctx.corrupt(
                        "the search index names a node row which table search_docs does not \
                     have; `kgstore optimize` rebuilds the index",
                    ));
                }
            };
            if stale.holds(doc) {
                continue;
            }
            let column = row
                .get_ref(1)
                .and_then(|v| Ok(v.as_bytes()?))
                .ctx(q.ctx, doing)?;
            let field = field_of(column)
                .ok_or_else(|| q.ctx.corrupt("table search_fts has an unknown column"))?;
            let at = match last {
                Some((d, at)) if d == doc => at,
                _ => match slot.entry(doc) {
                    Entry::Occupied(seen) => *seen.get(),
                    Entry::Vacant(new) => {
                        let node_type = row
                            .get_ref(2)
                            .and_then(|v| Ok(types.get(v.as_str()?)))
                            .ctx(q.ctx, doing)?;
                        let pair = |i| row.get_ref(i).and_then(|v| Ok(v.as_i64()?));
                        let [name, kind] = halves(pair(3).ctx(q.ctx, doing)?);
                        let [obs, attr] = halves(pair(4).ctx(q.ctx, doing)?);
                        *new.insert(out.push(DocMatch {
                            key: DocKey::Row(doc),
                            node_type: Cow::Owned(node_type),
                            lengths: [name, kind, obs, attr],
                        }))
                    }
                },
            };
            last = Some((doc, at));
            if let Some(freq) = out.freq_mut(at, i, field) {
                if exact {
                    freq.exact = freq.exact.saturating_add(1);
                } else {
                    freq.longer = freq.longer.saturating_add(1);
                }
            }
        }
        Ok(())
    }
}

/// [`kgstore_core::ReadTxn::search_names`]: the names of node rows, in the order asked.
pub(crate) fn names(q: &Q<'_>, rows: &[i64]) -> Result<Vec<String>> {
    let doing = || "reading names of search hits from table names".to_owned();
    let mut stmt = q
        .conn
        .prepare_cached(
            "SELECT j.key, k.name FROM json_each(?1) j JOIN names k ON k.id = j.value \
             ORDER BY j.key",
        )
        .ctx(q.ctx, doing)?;
    let found: Vec<(i64, String)> = stmt
        .query_map([id_array(rows)], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .ctx(q.ctx, doing)?;
    if found.len() != rows.len() {
        return Err(q.ctx.corrupt(format!(
            "{} rows of the search index have no name in table names",
            rows.len() - found.len()
        )));
    }
    Ok(found.into_iter().map(|(_, name)| name).collect())
}

/// [`kgstore_core::ReadTxn::search_infix`]: nodes holding a term that contains
/// `fragment` after its first character, or a cut term.
///
/// `version`: the file's format version (`search_terms_pending` from 6 on);
/// `stale`: the listed nodes, read from their rows.
pub(crate) fn infix(q: &Q<'_>, fragment: &str, version: i64, stale: &Stale) -> Result<Vec<String>> {
    let pending = has_pending_terms(version);
    let doing = || "looking up terms in table search_terms".to_owned();
    let inside = Inside::new(fragment);
    // The trigram index finds the terms holding all of a fragment's trigrams
    // (a superset of those holding the fragment, which `inside` then checks);
    // fragments shorter than three characters are looked for in every term. Cut
    // terms may hold it in what was cut. (Two statements: as one UNION, SQLite
    // 3.54 plans the trigram match a hundred times slower.)
    let found = |sql: &str, param: Option<String>| -> Result<Vec<String>> {
        let mut stmt = q.conn.prepare_cached(sql).ctx(q.ctx, doing)?;
        stmt.query_map(rusqlite::params_from_iter(param.iter()), |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .ctx(q.ctx, doing)
    };
    let chars: Vec<char> = fragment.chars().collect();
    let mut terms = if chars.len() >= 3 {
        let trigrams: Vec<String> = chars
            .windows(3)
            .map(|w| format!("\"{}\"", w.iter().collect::<String>().replace('"', "\"\"")))
            .collect();
        found(
            "SELECT t.term FROM search_terms_trigrams f JOIN search_terms t ON t.id = f.rowid \
             WHERE search_terms_trigrams MATCH ?1",
            Some(trigrams.join(" AND ")),
        )?
    } else {
        found(
            "SELECT term FROM search_terms WHERE instr(substr(term, 2), ?1) > 0",
            Some(fragment.to_owned()),
        )?
    };
    terms.extend(found("SELECT term FROM search_terms WHERE cut", None)?);
    if pending {
        terms.extend(found("SELECT term FROM search_terms_pending", None)?);
    }
    terms.retain(|term| inside.holds(term));
    let doing = || "reading the search index (table search_vocab)".to_owned();
    let mut ids: HashSet<i64> = HashSet::new();
    let mut stmt = q
        .conn
        .prepare_cached("SELECT DISTINCT doc FROM search_vocab WHERE term = ?1")
        .ctx(q.ctx, doing)?;
    for term in &terms {
        let rows = stmt
            .query_map([term], |r| r.get::<_, i64>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
            .ctx(q.ctx, doing)?;
        ids.extend(rows.into_iter().filter(|id| !stale.holds(*id)));
    }
    drop(stmt);
    stale.for_each(q, |id, _, doc| {
        if doc.fields.iter().flatten().any(|token| inside.holds(token)) {
            ids.insert(id);
        }
        Ok(())
    })?;
    let ids: Vec<i64> = ids.into_iter().collect();
    names(q, &ids)
}

/// Problems with the search index: rows it lacks or has too many of, figures
/// that do not add up, lengths and types that differ from the nodes'.
///
/// The nodes listed in `search_stale` (format 8 and later), or covered by
/// `search_stale_from` (format 11), are not yet expected to have an entry, or one
/// that matches their content; no listed row may be covered too.
///
/// `version`: the file's format version.
pub(crate) fn problems(
    conn: &Connection,
    ctx: &Ctx,
    version: i64,
) -> Result<Vec<(String, String)>> {
    let pending = has_pending_terms(version);
    let listed_stale = if has_stale_from(version) {
        " AND NOT EXISTS (SELECT 1 FROM search_stale s WHERE s.id = n.id) \
         AND NOT EXISTS (SELECT 1 FROM search_stale_from f WHERE n.id >= f.first)"
    } else if version >= STALE_SINCE {
        " AND NOT EXISTS (SELECT 1 FROM search_stale s WHERE s.id = n.id)"
    } else {
        ""
    };
    let mut out = Vec::new();
    let doing = || "checking the search index".to_owned();
    let listed = |sql: &str| -> Result<Vec<(String, String)>> {
        let mut stmt = conn.prepare(sql).ctx(ctx, doing)?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .ctx(ctx, doing)
    };
    out.extend(listed(&format!(
        "SELECT 'node ' || quote(k.name), 'is not in the search index (table search_docs)'
         FROM nodes n JOIN names k ON k.id = n.id
         WHERE NOT EXISTS (SELECT 1 FROM search_docs d WHERE d.id = n.id){listed_stale} LIMIT 100"
    ))?);
    if has_stale_from(version) {
        // A node both listed and covered would be counted twice by a search's figures.
        out.extend(listed(
            "SELECT 'table search_stale, row ' || s.id,
                    'is also covered by table search_stale_from (every node from row '
                    || f.first || ' on waits to be indexed)'
             FROM search_stale s JOIN search_stale_from f ON s.id >= f.first LIMIT 100",
        )?);
    }
    out.extend(listed(
        "SELECT 'table search_docs, row ' || d.id, 'indexes a node that does not exist'
         FROM search_docs d WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = d.id) LIMIT 100",
    )?);
    out.extend(listed(
        "SELECT 'table search_totals', 'its figures are not the sums of table search_docs'
         FROM search_totals t WHERE t.id = 1 AND (
             t.nodes != (SELECT count(*) FROM search_docs)
             OR t.name_len != (SELECT coalesce(sum(name_len), 0) FROM search_docs)
             OR t.type_len != (SELECT coalesce(sum(type_len), 0) FROM search_docs)
             OR t.obs_len != (SELECT coalesce(sum(obs_len), 0) FROM search_docs)
             OR t.attr_len != (SELECT coalesce(sum(attr_len), 0) FROM search_docs))",
    )?);
    out.extend(listed(if pending {
        "SELECT 'search_vocab term ' || quote(v.term),
                    'is missing from tables search_terms and search_terms_pending'
             FROM (SELECT DISTINCT term FROM search_vocab) v
             WHERE NOT EXISTS (SELECT 1 FROM search_terms t WHERE t.term = v.term)
               AND NOT EXISTS (SELECT 1 FROM search_terms_pending p WHERE p.term = v.term)
             LIMIT 100"
    } else {
        "SELECT 'search_vocab term ' || quote(v.term), 'is missing from table search_terms'
             FROM (SELECT DISTINCT term FROM search_vocab) v
             WHERE NOT EXISTS (SELECT 1 FROM search_terms t WHERE t.term = v.term) LIMIT 100"
    })?);
    // (FTS5's own structure is verified by `PRAGMA integrity_check`.)
    // Each node's figures against what its content gives.
    let q = Q {
        conn,
        ctx,
        held: None,
    };
    let mut after: Option<String> = None;
    loop {
        let nodes = q.scan_nodes(&NodeFilter::default(), after.as_deref(), 1024)?;
        for node in &nodes {
            let doc = DocTokens::of(node);
            let want = lengths_of(&doc);
            let got: Option<(String, [i64; FIELDS])> = conn
                .prepare_cached(&format!(
                    "SELECT d.node_type, d.name_len, d.type_len, d.obs_len, d.attr_len \
                     FROM names k JOIN search_docs d ON d.id = k.id CROSS JOIN nodes n \
                     ON n.id = k.id WHERE k.name = ?1{listed_stale}"
                ))
                .and_then(|mut s| {
                    let mut rows = s.query([&node.name])?;
                    match rows.next()? {
                        Some(r) => Ok(Some((
                            r.get(0)?,
                            [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
                        ))),
                        None => Ok(None),
                    }
                })
                .ctx(ctx, doing)?;
            if let Some((node_type, lengths)) = got
                && (node_type != node.node_type || lengths != want)
                && out.len() < 200
            {
                out.push((
                    node_subject(&node.name),
                    "its search index entry (type, token counts) differs from its content".into(),
                ));
            }
        }
        if nodes.len() < 1024 {
            break;
        }
        after = nodes.last().map(|n| n.name.clone());
    }
    Ok(out)
}

/// Makes FTS5 on this connection read the index's current structure. A pooled
/// connection's FTS5 keeps the structure it last read, and `PRAGMA
/// integrity_check` checks FTS5 tables with that cached structure without
/// looking for changes other connections made since (queries do look); a
/// query first makes the check see the snapshot it runs on.
pub(crate) fn refresh(conn: &Connection, ctx: &Ctx) -> Result<()> {
    for table in ["search_fts", "search_terms_trigrams"] {
        conn.prepare(&format!(
            "SELECT 1 FROM {table} WHERE {table} MATCH '\"\"' LIMIT 1"
        ))
        .and_then(|mut s| s.exists([]))
        .ctx(ctx, || format!("reading the search index (table {table})"))?;
    }
    Ok(())
}

/// Whether a file of this format version has the search tables.
pub(crate) fn indexed(version: i64) -> bool {
    version >= SEARCH_VERSION
}

/// Whether a file of this format version has table `search_terms_pending`.
pub(crate) fn has_pending_terms(version: i64) -> bool {
    version >= PENDING_TERMS_SINCE
}

/// Whether a file of this format version indexes written nodes later (table `search_stale`).
pub(crate) fn defers_indexing(version: i64) -> bool {
    version >= STALE_SINCE
}

/// Whether a file of this format version has table `search_stale_from`.
pub(crate) fn has_stale_from(version: i64) -> bool {
    version >= STALE_FROM_SINCE
}
