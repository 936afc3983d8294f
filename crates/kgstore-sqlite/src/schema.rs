//! The on-disk format: tables, indexes, the format version, and how every
//! connection is configured.
//!
//! Names are kept once, in `names`; everything else refers to a name by its
//! integer row id. A name stays in `names` while a node, an edge end or a
//! dependency refers to it (a transaction may name a node before creating it),
//! and is swept at commit once nothing does.

use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Ctx, SqlResult};
use crate::options::SqliteOptions;

/// `PRAGMA application_id` of every kgstore store: the bytes `KGST`.
pub const APPLICATION_ID: i64 = 0x4B47_5354;

/// `PRAGMA user_version` of the format this crate writes; it reads every earlier
/// one too, and migrates a file to this one when it opens it writable.
///
/// The versions, each with what it added (named in one place: [`DOCUMENTS_SINCE`],
/// `search::SEARCH_VERSION`, [`EVENTS_SINCE`], [`COMPACT_EDGES_SINCE`],
/// [`PENDING_TERMS_SINCE`], [`NARROW_EVENTS_SINCE`], [`STALE_SEARCH_SINCE`],
/// [`NAMED_EDGES_SINCE`], [`TYPE_COUNTS_SINCE`], [`STALE_FROM_SINCE`],
/// [`EDGE_FLAGS_SINCE`]): 1, the
/// graph; 2, the documents' tables; 3, the search index (`search_*` tables, FTS5);
/// 4, the event store (`events`, `event_state`); 5, edges kept in their key's
/// order (a `WITHOUT ROWID` table) with only the indexes queries use; 6, new
/// search terms recorded in a small table first (`search_terms_pending`); 7, the
/// event log's digests as 32-byte blobs and no index on event types; 8, written
/// nodes indexed for search later, in batches (`search_stale`); 9, edge rows
/// carrying their ends' names (`to_name`, `from_name`); 10, the number of
/// nodes of each type kept in `node_type_counts` instead of an index by type; 11, a
/// load's nodes waiting to be indexed for search listed by one row
/// (`search_stale_from`); 12, the edge rows' `bidirectional` column replaced by
/// `flags`, which also marks the rows whose content is the default one. Opened
/// read-only, an older file is read as it is: it holds no documents before 2,
/// searching reads every node before 3, its event log is empty before 4, and its
/// edges are read through its own indexes before 5 (the same answers), all its
/// terms are in `search_terms` before 6, its events' digests are hex text
/// (beside its index on event types) before 7, every node is indexed at its
/// write before 8, its edges' names are looked up in `names` before 9, and its
/// nodes are counted through their index by type before 10, and its waiting
/// nodes are all listed in `search_stale` before 11, and its edges' whole content
/// is read before 12.
pub const FORMAT_VERSION: i64 = EDGE_FLAGS_SINCE;

/// The oldest format version this crate opens.
pub const OLDEST_FORMAT_VERSION: i64 = 1;

/// The format version that added the documents' tables.
pub const DOCUMENTS_SINCE: i64 = 2;
/// The format version that added the event store's tables.
pub const EVENTS_SINCE: i64 = 4;
/// The format version that keeps edges in a `WITHOUT ROWID` table keyed by
/// `(from_id, rel, to_id)` and drops the indexes no query uses ([`COMPACT_EDGES_DDL`]).
pub const COMPACT_EDGES_SINCE: i64 = 5;
/// The format version that records new search terms in a small table first
/// (`search_terms_pending`, filled into `search_terms` a thousand at a time).
pub const PENDING_TERMS_SINCE: i64 = crate::search::PENDING_TERMS_SINCE;
/// The format version whose event log keeps each digest as 32 bytes instead of 64
/// hex characters and has no `(type, position)` index ([`NARROW_EVENTS_DDL`]).
pub const NARROW_EVENTS_SINCE: i64 = 7;
/// The format version that indexes written nodes for search later, in batches
/// (table `search_stale`, [`crate::search::STALE_DDL`]).
pub const STALE_SEARCH_SINCE: i64 = crate::search::STALE_SINCE;
/// The format version whose edge rows carry the names of their ends
/// ([`NAMED_EDGES_DDL`]).
pub const NAMED_EDGES_SINCE: i64 = 9;
/// The format version that keeps the number of nodes of each type in table
/// `node_type_counts` and has no index of nodes by type ([`TYPE_COUNTS_DDL`]).
pub const TYPE_COUNTS_SINCE: i64 = 10;
/// The format version that lists a load's nodes waiting to be indexed for search
/// with one row (table `search_stale_from`, [`crate::search::STALE_FROM_DDL`]).
pub const STALE_FROM_SINCE: i64 = crate::search::STALE_FROM_SINCE;
/// The format version whose edge rows keep column `flags` (bidirectional, and
/// whether their content is the default one) instead of `bidirectional`
/// ([`EDGE_FLAGS_DDL`]).
pub const EDGE_FLAGS_SINCE: i64 = 12;

/// What one format version adds to the one before.
pub(crate) struct Migration {
    /// The format version it takes a file to.
    pub(crate) to: i64,
    /// Its tables and indexes (and their first rows), in SQLite's SQL.
    pub(crate) ddl: &'static str,
    /// What fills them from the data a migrated file already holds; `None` when
    /// they start empty.
    pub(crate) fill: Option<fn(&Connection, &Ctx) -> kgstore_core::Result<()>>,
}

/// What each format version adds to the one before, in order: version 1 is
/// [`DDL`]; then the documents' tables, the search index (filled from the nodes
/// already stored) and the event store's tables. A new store runs every step's
/// `ddl`; a writable open of an older file runs the steps it lacks (`ddl`, then
/// `fill`) in one transaction, then sets its `user_version`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        to: DOCUMENTS_SINCE,
        ddl: crate::documents::DOCUMENTS_DDL,
        fill: None,
    },
    Migration {
        to: crate::search::SEARCH_VERSION,
        ddl: crate::search::SEARCH_DDL,
        fill: Some(crate::search::rebuild),
    },
    Migration {
        to: EVENTS_SINCE,
        ddl: EVENTS_DDL,
        fill: None,
    },
    Migration {
        to: COMPACT_EDGES_SINCE,
        ddl: COMPACT_EDGES_DDL,
        fill: None,
    },
    Migration {
        to: PENDING_TERMS_SINCE,
        ddl: crate::search::PENDING_TERMS_DDL,
        fill: None,
    },
    Migration {
        to: NARROW_EVENTS_SINCE,
        ddl: NARROW_EVENTS_DDL,
        fill: None,
    },
    Migration {
        to: STALE_SEARCH_SINCE,
        ddl: crate::search::STALE_DDL,
        fill: None,
    },
    Migration {
        to: NAMED_EDGES_SINCE,
        ddl: NAMED_EDGES_DDL,
        fill: None,
    },
    Migration {
        to: TYPE_COUNTS_SINCE,
        ddl: TYPE_COUNTS_DDL,
        fill: None,
    },
    Migration {
        to: STALE_FROM_SINCE,
        ddl: crate::search::STALE_FROM_DDL,
        fill: None,
    },
    Migration {
        to: EDGE_FLAGS_SINCE,
        ddl: EDGE_FLAGS_DDL,
        fill: None,
    },
];

/// The tables and indexes of the graph (format version 1), in SQLite's SQL; a
/// new store has these and every [`MIGRATIONS`] step's.
///
/// Every table is `STRICT`. Text sorts with SQLite's `BINARY` collation, which
/// compares UTF-8 bytes exactly as Rust's `str` does, so `ORDER BY name` is
/// kgstore's order. JSON columns hold `serde_json`'s compact text.
pub const DDL: &str = "
CREATE TABLE names (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE nodes (
    id           INTEGER PRIMARY KEY REFERENCES names(id),
    node_type    TEXT NOT NULL,
    status       TEXT,
    author       TEXT,
    source       TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    observations TEXT NOT NULL,
    attributes   TEXT NOT NULL,
    tags         TEXT NOT NULL,
    dependencies TEXT NOT NULL
) STRICT;
CREATE INDEX nodes_by_type ON nodes(node_type);
CREATE INDEX nodes_by_status ON nodes(status) WHERE status IS NOT NULL;
CREATE INDEX nodes_by_updated ON nodes(updated_at);

CREATE TABLE node_tags (
    node_id INTEGER NOT NULL REFERENCES nodes(id),
    tag     TEXT NOT NULL,
    PRIMARY KEY (node_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX node_tags_by_tag ON node_tags(tag, node_id);

CREATE TABLE node_deps (
    node_id INTEGER NOT NULL REFERENCES nodes(id),
    dep_id  INTEGER NOT NULL REFERENCES names(id),
    PRIMARY KEY (node_id, dep_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX node_deps_by_dep ON node_deps(dep_id, node_id);

CREATE TABLE edges (
    id            INTEGER PRIMARY KEY,
    from_id       INTEGER NOT NULL REFERENCES names(id),
    rel           TEXT NOT NULL,
    to_id         INTEGER NOT NULL REFERENCES names(id),
    weight        REAL NOT NULL,
    confidence    REAL,
    bidirectional INTEGER NOT NULL,
    source        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    attributes    TEXT NOT NULL,
    UNIQUE (from_id, rel, to_id)
) STRICT;
CREATE INDEX edges_by_to ON edges(to_id, rel, from_id);
CREATE INDEX edges_by_rel ON edges(rel);
CREATE INDEX edges_by_weight ON edges(weight);

CREATE TABLE schemas (
    target   TEXT PRIMARY KEY,
    document TEXT NOT NULL
) STRICT, WITHOUT ROWID;
";

/// The secondary indexes of table `edges` from format 12 on (a macro, to be
/// `concat!`ed): [`EDGE_FLAGS_DDL`] creates them, and a bulk load into a table
/// smaller than itself drops them and builds them again at its end (`write.rs`).
/// `edges_by_to` carries the `from` end's name, so that the names at the other end
/// of a node's arriving edges are read from it alone; `edges_bidirectional_by_to`
/// holds the bidirectional edges only (bit [`FLAG_BIDIRECTIONAL`] of `flags`).
macro_rules! edge_indexes {
    () => {
        concat!(
            $crate::schema::edges_by_to_index!(),
            "\nCREATE INDEX edges_bidirectional_by_to ON edges(to_id, rel, from_id) WHERE flags & 1;\n"
        )
    };
}
pub(crate) use edge_indexes;

/// The first of [`edge_indexes`], `edges_by_to`, alone (a macro, to be
/// `concat!`ed; the same statement, so the schema's text is the same whichever
/// built it): a large edge write into a table smaller than itself builds this one
/// again at its end and keeps the partial index, which holds only bidirectional
/// edges (`write.rs`).
macro_rules! edges_by_to_index {
    () => {
        "CREATE INDEX edges_by_to ON edges(to_id, rel, from_id, from_name);"
    };
}
pub(crate) use edges_by_to_index;

/// Format version 5: the edges move, in key order, into a table keyed by
/// `(from_id, rel, to_id)` itself (`WITHOUT ROWID`: one B-tree holds the rows in
/// the order `edges_of` and listings read them, no row id and no separate unique
/// index), with one more index, by the other end, and a partial one holding only
/// the bidirectional edges, by their `to` end: a traversal's step backwards along
/// outgoing edges looks there, and finds nothing at once in a store without
/// bidirectional edges (it costs the other edges' inserts nothing). (Backwards
/// along incoming edges, SQLite's planner prefers the table's own key range to a
/// partial index by `from`, so there is none.)
/// The indexes that no query used go: `edges_by_rel` and `edges_by_weight`
/// (listings walk names in order and filter; statistics group by scanning),
/// `nodes_by_status` and `nodes_by_updated` (likewise); `nodes_by_type` stays
/// (statistics and `count(*)` read it instead of the rows).
/// Measured in `docs/benchmarks.md` (issue 18). Its two indexes are format 5's
/// own, spelled out here: format 9 replaces them with its own, and format 12 with
/// [`edge_indexes`].
pub const COMPACT_EDGES_DDL: &str = "
DROP INDEX nodes_by_status;
DROP INDEX nodes_by_updated;
CREATE TABLE edges_by_key (
    from_id       INTEGER NOT NULL REFERENCES names(id),
    rel           TEXT NOT NULL,
    to_id         INTEGER NOT NULL REFERENCES names(id),
    weight        REAL NOT NULL,
    confidence    REAL,
    bidirectional INTEGER NOT NULL,
    source        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    attributes    TEXT NOT NULL,
    PRIMARY KEY (from_id, rel, to_id)
) STRICT, WITHOUT ROWID;
INSERT INTO edges_by_key SELECT from_id, rel, to_id, weight, confidence, bidirectional, source,
    created_at, updated_at, version, attributes FROM edges ORDER BY from_id, rel, to_id;
DROP TABLE edges;
ALTER TABLE edges_by_key RENAME TO edges;
CREATE INDEX edges_by_to ON edges(to_id, rel, from_id);
CREATE INDEX edges_bidirectional_by_to ON edges(to_id, rel, from_id) WHERE bidirectional;
";

/// Format version 9: each edge row carries the names of its ends, `to_name` and
/// `from_name` (names never change while an edge refers to them: they are written
/// with the edge and `check` compares them with `names`), and `edges_by_to` covers
/// `from_name`. A node's edges are then one range of the table (leaving) or of
/// `edges_by_to` (arriving, names only) with no lookup in `names` per edge. The
/// table is rebuilt in key order from format 8's, the names joined in once; its
/// indexes are format 9's own, spelled out here (format 12 replaces them with
/// [`edge_indexes`]). It touches the edge tables only.
pub const NAMED_EDGES_DDL: &str = "
CREATE TABLE edges_named (
    from_id       INTEGER NOT NULL REFERENCES names(id),
    rel           TEXT NOT NULL,
    to_id         INTEGER NOT NULL REFERENCES names(id),
    to_name       TEXT NOT NULL,
    from_name     TEXT NOT NULL,
    weight        REAL NOT NULL,
    confidence    REAL,
    bidirectional INTEGER NOT NULL,
    source        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    attributes    TEXT NOT NULL,
    PRIMARY KEY (from_id, rel, to_id)
) STRICT, WITHOUT ROWID;
INSERT INTO edges_named SELECT e.from_id, e.rel, e.to_id, t.name, f.name, e.weight,
    e.confidence, e.bidirectional, e.source, e.created_at, e.updated_at, e.version, e.attributes
    FROM edges e JOIN names f ON f.id = e.from_id JOIN names t ON t.id = e.to_id
    ORDER BY e.from_id, e.rel, e.to_id;
DROP TABLE edges;
ALTER TABLE edges_named RENAME TO edges;
CREATE INDEX edges_by_to ON edges(to_id, rel, from_id, from_name);
CREATE INDEX edges_bidirectional_by_to ON edges(to_id, rel, from_id) WHERE bidirectional;
";

/// The statement dropping the indexes [`edge_indexes`] creates.
pub(crate) const DROP_EDGE_INDEXES: &str =
    "DROP INDEX edges_by_to; DROP INDEX edges_bidirectional_by_to;";

/// The statement dropping `edges_by_to` alone ([`edges_by_to_index`]).
pub(crate) const DROP_EDGES_BY_TO: &str = "DROP INDEX edges_by_to;";

/// Bit of column `flags` (format 12 on): the edge is bidirectional.
pub(crate) const FLAG_BIDIRECTIONAL: i64 = 1;
/// Bit of column `flags` (format 12 on): the edge's content is the default one
/// but for its weight (`plain_edge_sql!`), so that reads of a node's edges take
/// only its weight and creation time.
pub(crate) const FLAG_PLAIN: i64 = 2;

/// Whether an edge's content is the default one but for its weight, in SQL over
/// the content columns of table `edges` other than `bidirectional`/`flags` (a
/// macro, to be `concat!`ed; `1` or `0`): no confidence, no source, updated when
/// created, version 1, no attributes. (Not bidirectional too: the callers add it
/// in their format's column. The weight is left out: weighted graphs give nearly
/// every edge one of its own.) `write.rs` decides the same in Rust
/// (`edge_flags`); `check` compares bit [`FLAG_PLAIN`] with it.
macro_rules! plain_edge_sql {
    () => {
        "(confidence IS NULL AND source IS NULL AND updated_at = created_at \
         AND version = 1 AND attributes = '{}')"
    };
}
pub(crate) use plain_edge_sql;

/// Format 12 (edge side only): column `bidirectional` of table `edges` becomes
/// `flags`, a set of bits: [`FLAG_BIDIRECTIONAL`] (`1`), what `bidirectional`
/// said, and [`FLAG_PLAIN`] (`2`), set when the edge's content is the default one
/// but for its weight (not bidirectional and `plain_edge_sql!`), which nearly
/// every edge's is. A read of a node's edges then decodes five cells of such a row
/// (its relation, its other end's name, its weight, flags and creation time; four
/// since `codec::PLAIN_EDGE_TAIL` reads flags and creation time as one cell)
/// instead of eleven. The mark is carried in the existing column rather than a
/// new one: a `WITHOUT ROWID` table of 14 columns takes every seek off SQLite's
/// fast key comparator (13 at most), which cost edge loads 6.5 % (session 11,
/// `docs/benchmarks.md`). The table is rebuilt in key order from format 11's,
/// with the indexes of [`edge_indexes`] (the partial one now on `flags & 1`). It
/// touches the edge tables only.
pub const EDGE_FLAGS_DDL: &str = concat!(
    "
CREATE TABLE edges_flagged (
    from_id       INTEGER NOT NULL REFERENCES names(id),
    rel           TEXT NOT NULL,
    to_id         INTEGER NOT NULL REFERENCES names(id),
    to_name       TEXT NOT NULL,
    from_name     TEXT NOT NULL,
    weight        REAL NOT NULL,
    confidence    REAL,
    flags         INTEGER NOT NULL,
    source        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    attributes    TEXT NOT NULL,
    PRIMARY KEY (from_id, rel, to_id)
) STRICT, WITHOUT ROWID;
INSERT INTO edges_flagged SELECT from_id, rel, to_id, to_name, from_name, weight, confidence,
    CASE WHEN bidirectional THEN 1 WHEN ",
    plain_edge_sql!(),
    " THEN 2 ELSE 0 END,
    source, created_at, updated_at, version, attributes FROM edges ORDER BY from_id, rel, to_id;
DROP TABLE edges;
ALTER TABLE edges_flagged RENAME TO edges;
",
    edge_indexes!()
);

/// The event store's tables (format version 2): the log, one row per event
/// position (a removed event keeps its row with `removed = 1`, `data` `null` and
/// `metadata` `{}`), and the keyed state of streams, consumer groups, dead letters,
/// batches, schemas and settings, one JSON value per `(space, key)`.
pub const EVENTS_DDL: &str = "
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,
    stream      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    commit_pos  INTEGER NOT NULL,
    batch       TEXT,
    digest      TEXT NOT NULL,
    removed     INTEGER NOT NULL,
    UNIQUE (stream, version)
) STRICT;
CREATE INDEX events_by_type ON events(type, position);

CREATE TABLE event_state (
    space TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (space, key)
) STRICT, WITHOUT ROWID;
";

/// Format 7's event log (see `docs/design.md`, "SQLite format 7"): the table of
/// [`EVENTS_DDL`] rebuilt with `digest` as the SHA-256's 32 bytes (`unhex` of the
/// 64 lower-case hex digits kgstore wrote; the store still reads and writes them
/// as hex) and without the index on `(type, position)`, which cost every append a
/// fourth B-tree insert: type-filtered reads run along the positions instead.
pub const NARROW_EVENTS_DDL: &str = "
CREATE TABLE events_narrow (
    position    INTEGER PRIMARY KEY,
    stream      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    commit_pos  INTEGER NOT NULL,
    batch       TEXT,
    digest      BLOB NOT NULL,
    removed     INTEGER NOT NULL,
    UNIQUE (stream, version)
) STRICT;
INSERT INTO events_narrow SELECT position, stream, version, id, type, data, metadata,
    recorded_at, commit_pos, batch, unhex(digest), removed FROM events ORDER BY position;
DROP TABLE events;
ALTER TABLE events_narrow RENAME TO events;
";

/// Format 10 (node side only): the index `nodes_by_type` goes, and the number of
/// nodes of each type is kept in `node_type_counts` (one row per type that has
/// nodes), filled here from the rows a migrated file holds.
///
/// The index cost every node insert a B-tree insert of its own (a fifth of
/// the SQL work of a load, measured in `docs/benchmarks.md`), and only
/// `count_nodes` and the statistics read it: listings filter by type while they
/// walk names in order. The writer adds up each transaction's changes per type
/// in memory and writes them, one row per type, before the transaction reads its
/// counts and at commit (`write.rs`, `TypeCounts`); `check` compares the table
/// with the rows.
pub const TYPE_COUNTS_DDL: &str = "
DROP INDEX nodes_by_type;
CREATE TABLE node_type_counts (
    node_type TEXT PRIMARY KEY,
    nodes     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO node_type_counts(node_type, nodes)
    SELECT node_type, count(*) FROM nodes GROUP BY node_type;
";

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The one connection that writes.
    Writer,
    /// A pooled connection that only reads (`PRAGMA query_only`).
    Reader,
}

/// The page cache of every connection, in KiB (readers had 16 MiB before format 5;
/// pages read through the memory map do not count against it).
const CACHE_KIB: i64 = 32_768;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 96;

/// The size the writer cuts a grown write-ahead log back to
/// (`PRAGMA journal_size_limit`; see also `SqliteBackend::cut_back_log`).
pub(crate) const WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Opens and configures a connection to the store's file.
pub(crate) fn connect(
    ctx: &Ctx,
    options: &SqliteOptions,
    role: Role,
    create: bool,
) -> kgstore_core::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if options.read_only {
        flags |= OpenFlags::SQLITE_OPEN_READ_ONLY;
    } else {
        flags |= OpenFlags::SQLITE_OPEN_READ_WRITE;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
    }
    let mut conn =
        Connection::open_with_flags(&ctx.path, flags).ctx(ctx, || "opening the file".into())?;
    conn.busy_handler(Some(busy_handler(options.lock_timeout)))
        .ctx(ctx, || "setting the busy handler".into())?;
    let doing = || "configuring the connection".to_owned();
    // Nothing stored in the file may run code or change the schema behind our back:
    // kgstore's schema has no triggers and no views, and uses no SQL functions.
    for (config, on) in [
        (DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true),
        (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, true),
        (DbConfig::SQLITE_DBCONFIG_DQS_DML, false),
        (DbConfig::SQLITE_DBCONFIG_DQS_DDL, false),
        // Plans do not depend on bound values: the bundled SQLite has STAT4, which
        // otherwise makes a cached statement re-prepare whenever a parameter is
        // rebound (rusqlite clears bindings each time a statement goes back to the cache).
        (DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true),
    ] {
        conn.set_db_config(config, on).ctx(ctx, doing)?;
    }
    let mut pragmas = format!(
        "PRAGMA synchronous = {};
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = {};
         PRAGMA mmap_size = {};",
        crate::options::synchronous(options.durability),
        -CACHE_KIB,
        options.mmap_size,
    );
    if options.verify_on_open {
        pragmas.push_str("PRAGMA cell_size_check = ON;");
    }
    match role {
        // After a checkpoint, a log grown past 64 MiB by a big transaction is cut back.
        Role::Writer => {
            pragmas.push_str(&format!("PRAGMA journal_size_limit = {WAL_LIMIT_BYTES};"));
        }
        Role::Reader => pragmas.push_str("PRAGMA query_only = ON;"),
    }
    conn.execute_batch(&pragmas).ctx(ctx, doing)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Waits for a lock in short sleeps (finer than SQLite's own 100 ms steps, so
/// that processes sharing a file take turns promptly) until `timeout` has passed.
pub(crate) fn busy_handler(timeout: Duration) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut started = Instant::now();
    move |count| {
        crate::perf::note_busy();
        if count == 0 {
            started = Instant::now();
        }
        let waited = started.elapsed();
        let Some(left) = timeout.checked_sub(waited).filter(|l| !l.is_zero()) else {
            return false;
        };
        let step = match count {
            0..=15 => Duration::from_micros(500),
            16..=63 => Duration::from_millis(2),
            _ => Duration::from_millis(5),
        };
        std::thread::sleep(step.min(left));
        true
    }
}

/// What a file turned out to be.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    /// An empty database: nothing in it yet.
    Empty,
    /// A kgstore store of this format version.
    Kgstore(i64),
    /// Something else, described.
    Foreign(String),
}

fn identify(conn: &Connection, ctx: &Ctx) -> kgstore_core::Result<Identity> {
    let doing = || "reading the file's header".to_owned();
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .ctx(ctx, doing)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .ctx(ctx, doing)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .ctx(ctx, doing)?;
    Ok(if app_id == APPLICATION_ID {
        Identity::Kgstore(version)
    } else if app_id != 0 {
        Identity::Foreign(format!(
            "a SQLite database of another application (application_id {app_id:#010x}, \
             kgstore's is {APPLICATION_ID:#010x})"
        ))
    } else if objects == 0 && version == 0 {
        Identity::Empty
    } else {
        Identity::Foreign(format!(
            "a SQLite database with {objects} tables and indexes but without kgstore's \
             application_id"
        ))
    })
}

/// Checks that the file is a kgstore store this version can read, creating the
/// schema in an empty file, or migrating an older format, when `writable`; the
/// file's format version from then on.
pub(crate) fn prepare(conn: &Connection, ctx: &Ctx, writable: bool) -> kgstore_core::Result<i64> {
    let (empty, mut version) = match identify(conn, ctx)? {
        Identity::Kgstore(version) => {
            check_version(ctx, version)?;
            (false, version)
        }
        Identity::Foreign(what) => {
            return Err(ctx.corrupt(format!("not a kgstore store: {what}")));
        }
        Identity::Empty if !writable => {
            return Err(ctx.corrupt(
                "not a kgstore store: an empty database (open it writable to create a store)",
            ));
        }
        Identity::Empty => (true, FORMAT_VERSION),
    };
    if writable {
        // Only now that the file is known to be ours (or empty) may it be changed.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .ctx(ctx, || "switching to write-ahead logging".into())?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(kgstore_core::Error::backend(
                "sqlite",
                format!(
                    "switching {} to write-ahead logging failed: the journal mode stayed {mode}",
                    ctx.path.display()
                ),
            ));
        }
        if empty {
            create_if_empty(conn, ctx)?;
        } else if version < FORMAT_VERSION {
            version = migrate(conn, ctx)?;
        }
    }
    Ok(version)
}

/// Brings an older file to [`FORMAT_VERSION`] in one `BEGIN IMMEDIATE`
/// transaction, unless another connection or process did it first; the version
/// it ends at.
fn migrate(conn: &Connection, ctx: &Ctx) -> kgstore_core::Result<i64> {
    let doing = || "migrating the file to the current format".to_owned();
    conn.execute_batch("BEGIN IMMEDIATE").ctx(ctx, doing)?;
    let outcome = (|| {
        let from = match identify(conn, ctx)? {
            Identity::Kgstore(version) => version,
            Identity::Empty | Identity::Foreign(_) => {
                return Err(ctx.corrupt("the file changed while it was being opened"));
            }
        };
        check_version(ctx, from)?;
        for step in MIGRATIONS.iter().filter(|step| step.to > from) {
            let doing = || {
                format!(
                    "migrating the file from format version {from} to {}",
                    step.to
                )
            };
            conn.execute_batch(step.ddl).ctx(ctx, doing)?;
            if let Some(fill) = step.fill {
                fill(conn, ctx)?;
            }
        }
        conn.execute_batch(&format!("PRAGMA user_version = {FORMAT_VERSION};"))
            .ctx(ctx, doing)?;
        Ok(FORMAT_VERSION)
    })();
    match outcome {
        Ok(version) => conn
            .execute_batch("COMMIT")
            .ctx(ctx, doing)
            .map(|()| version),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn check_version(ctx: &Ctx, version: i64) -> kgstore_core::Result<()> {
    if version > FORMAT_VERSION {
        Err(ctx.corrupt(format!(
            "format version {version} is newer than this kgstore supports (up to \
             {FORMAT_VERSION}); open it with a newer kgstore"
        )))
    } else if version < OLDEST_FORMAT_VERSION {
        Err(ctx.corrupt(format!("unknown kgstore format version {version}")))
    } else {
        Ok(())
    }
}

/// Creates the schema, unless another connection or process did it first.
fn create_if_empty(conn: &Connection, ctx: &Ctx) -> kgstore_core::Result<()> {
    let doing = || "creating kgstore's tables".to_owned();
    conn.execute_batch("BEGIN IMMEDIATE").ctx(ctx, doing)?;
    let outcome = (|| {
        match identify(conn, ctx)? {
            Identity::Empty => {}
            Identity::Kgstore(version) => return check_version(ctx, version),
            Identity::Foreign(what) => {
                return Err(ctx.corrupt(format!("not a kgstore store: {what}")));
            }
        }
        create_schema(conn, FORMAT_VERSION).ctx(ctx, doing)?;
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {FORMAT_VERSION};"
        ))
        .ctx(ctx, doing)?;
        Ok(())
    })();
    match outcome {
        Ok(()) => conn.execute_batch("COMMIT").ctx(ctx, doing),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// One entry of `sqlite_schema`: type, name, table, SQL.
pub(crate) type SchemaObject = (String, String, String, Option<String>);

/// The schema objects (type, name, table, SQL) a store of format `version` has,
/// as SQLite records them, to compare a file's schema with.
pub(crate) fn expected_objects(version: i64) -> rusqlite::Result<Vec<SchemaObject>> {
    let conn = Connection::open_in_memory()?;
    create_schema(&conn, version)?;
    schema_objects(&conn)
}

/// Creates the tables and indexes of format `version` in an empty database: [`DDL`]
/// and every [`MIGRATIONS`] step's up to `version`.
pub fn create_schema(conn: &Connection, version: i64) -> rusqlite::Result<()> {
    conn.execute_batch(DDL)?;
    for step in MIGRATIONS.iter().filter(|step| step.to <= version) {
        conn.execute_batch(step.ddl)?;
    }
    Ok(())
}

/// The schema objects of a database, but SQLite's own statistics tables.
pub(crate) fn schema_objects(conn: &Connection) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema
         WHERE name NOT LIKE 'sqlite\\_stat%' ESCAPE '\\' ORDER BY type, name",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}
