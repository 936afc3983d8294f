//! Opening files: what is a kgstore store, which format versions open, and
//! what happens to files that are something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{assert_error, error_of, options, raw, store, temp_db};
use kgstore_core::events::{EventRead, ExpectedVersion, GroupOptions, Nack, NewEvent, ReadOptions};
use kgstore_core::{
    Direction, DocumentQuery, DocumentRead, Edge, EdgeFilter, ErrorKind, GraphRead, Node,
    OnDependents, PageRequest, ReachOptions, RelationType, SearchQuery, TraverseOptions,
};
use kgstore_sqlite::SqliteBackend;
use kgstore_sqlite::schema::{
    APPLICATION_ID, COMPACT_EDGES_SINCE, EDGE_FLAGS_SINCE, EVENTS_SINCE, FORMAT_VERSION,
    NAMED_EDGES_SINCE, NARROW_EVENTS_SINCE, PENDING_TERMS_SINCE, STALE_FROM_SINCE,
    STALE_SEARCH_SINCE, TYPE_COUNTS_SINCE,
};
use serde_json::json;

fn open(path: &Path) -> kgstore_core::Result<SqliteBackend> {
    SqliteBackend::open(path, options())
}

#[test]
fn a_file_that_is_not_sqlite_is_corrupt_and_left_alone() {
    let (_dir, path) = temp_db();
    let text = "name,type\nserde,crate\n".repeat(100);
    std::fs::write(&path, &text).unwrap();
    let err = error_of(open(&path));
    assert_error(
        &err,
        ErrorKind::Corrupt,
        &[&path.display().to_string(), "not a SQLite database"],
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn another_applications_database_is_corrupt_and_left_alone() {
    let (_dir, path) = temp_db();
    let conn = raw(&path);
    conn.execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ann');")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let err = error_of(open(&path));
    assert_error(
        &err,
        ErrorKind::Corrupt,
        &["not a kgstore store", "without kgstore's application_id"],
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file was changed"
    );

    let conn = raw(&path);
    conn.execute_batch("PRAGMA application_id = 1234").unwrap();
    drop(conn);
    let err = error_of(open(&path));
    assert_error(
        &err,
        ErrorKind::Corrupt,
        &["another application", "0x000004d2"],
    );
}

#[test]
fn a_newer_format_is_refused_with_the_versions() {
    let (_dir, path) = temp_db();
    drop(store(&path));
    raw(&path)
        .execute_batch(&format!("PRAGMA user_version = {}", FORMAT_VERSION + 1))
        .unwrap();
    for read_only in [false, true] {
        let err = error_of(SqliteBackend::open(&path, options().read_only(read_only)));
        assert_error(
            &err,
            ErrorKind::Corrupt,
            &[
                &format!("format version {} is newer", FORMAT_VERSION + 1),
                &format!("up to {FORMAT_VERSION}"),
                "newer kgstore",
            ],
        );
    }
}

#[test]
fn a_new_store_is_marked_with_the_application_id_and_format_version() {
    let (_dir, path) = temp_db();
    drop(store(&path));
    let conn = raw(&path);
    let app: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (app, version, mode.as_str()),
        (APPLICATION_ID, FORMAT_VERSION, "wal")
    );
}

#[test]
fn an_empty_file_becomes_a_store_unless_opened_read_only() {
    let (_dir, path) = temp_db();
    std::fs::write(&path, b"").unwrap();
    let err = error_of(SqliteBackend::open(&path, options().read_only(true)));
    assert_error(&err, ErrorKind::Corrupt, &["an empty database"]);
    let s = store(&path);
    s.create_node(Node::new("a", "thing").unwrap()).unwrap();
    assert_eq!(s.count_nodes().unwrap(), 1);
}

#[test]
fn missing_files_are_created_with_their_folders_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep").join("er").join("kg.db");
    let err = error_of(SqliteBackend::open(
        &path,
        options().create_if_missing(false),
    ));
    assert_error(&err, ErrorKind::Io, &["kg.db", "no kgstore store here"]);
    let err = error_of(SqliteBackend::open(&path, options().read_only(true)));
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(!path.exists());
    drop(store(&path));
    assert!(path.exists());
    // Opening an existing store does not need create_if_missing.
    drop(SqliteBackend::open(&path, options().create_if_missing(false)).unwrap());
}

#[test]
fn a_folder_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let err = error_of(open(dir.path()));
    // Said plainly (it was SQLite's "unable to open database file"), as the
    // JSON-files backend says a file is not a folder.
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("is a folder, not a file"), "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn concurrent_opens_of_a_new_file_make_one_store() {
    let (_dir, path) = temp_db();
    for s in open_at_once(&path, 4) {
        s.upsert_node(Node::new("shared", "thing").unwrap())
            .unwrap();
    }
    assert_eq!(store(&path).count_nodes().unwrap(), 1);
}

/// A committed store of format `version`, made by this crate when that format
/// was current, so later versions are tested to still open it. The fixture of
/// the current format is recreated (only when the format changes) with
/// `KGSTORE_WRITE_FIXTURES=1`.
fn fixture(version: i64) -> std::path::PathBuf {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/format-{version}.db"));
    if version == FORMAT_VERSION && std::env::var_os("KGSTORE_WRITE_FIXTURES").is_some() {
        write_fixture(&path);
    }
    path
}

/// A copy of the fixture of format `version` in a temporary folder.
fn copy_of(version: i64) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = temp_db();
    std::fs::copy(fixture(version), &path).unwrap();
    (dir, path)
}

fn open_store(path: &Path, read_only: bool) -> kgstore_core::Store {
    kgstore_core::Store::new(
        SqliteBackend::open(path, options().read_only(read_only).verify_on_open(true)).unwrap(),
    )
}

/// Format 1: a small store made by this crate before documents and search.
#[test]
fn the_format_1_fixture_still_opens_and_is_migrated() {
    let (_dir, path) = copy_of(1);
    let s = open_store(&path, false);
    check_graph(&s);
    check_search(&s);
    assert_eq!(
        user_version(&path),
        FORMAT_VERSION,
        "a writable open migrates"
    );
    assert_eq!(indexed_nodes(&path), 3, "the migration indexes every node");
    assert_eq!(s.count_documents().unwrap(), 0);
    s.write_document("notes/after-migration.md", "# new")
        .unwrap();
    assert!(s.check().unwrap().is_ok());
    s.create_node(
        Node::new("new", "thing")
            .unwrap()
            .with_observation("fresh serialization"),
    )
    .unwrap();
    assert_eq!(
        s.search(&SearchQuery::new("fresh")).unwrap().items[0].name,
        "new"
    );
    drop(s);
    let s = store(&path);
    assert_eq!(
        s.read_document("notes/after-migration.md").unwrap(),
        b"# new"
    );
    assert!(s.check().unwrap().is_ok());
}

/// A read-only open leaves an older file exactly as it is: no migration, no
/// documents, and search reads every node (the same answers as after migration).
#[test]
fn the_format_1_fixture_opens_read_only_unchanged() {
    let (_dir, path) = copy_of(1);
    let before = std::fs::read(&path).unwrap();
    let s = open_store(&path, true);
    check_graph(&s);
    check_search(&s);
    assert_eq!(s.count_documents().unwrap(), 0);
    assert!(!s.document_exists("a").unwrap());
    assert!(
        s.list_documents(&DocumentQuery::default())
            .unwrap()
            .documents
            .is_empty()
    );
    let read_only_hits = s.search(&SearchQuery::new("serde").limit(10)).unwrap();
    let report = s.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    drop(s);
    assert_eq!(user_version(&path), 1);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let s = open_store(&path, false);
    assert_eq!(
        s.search(&SearchQuery::new("serde").limit(10)).unwrap(),
        read_only_hits
    );
}

#[test]
fn concurrent_opens_of_a_format_1_store_migrate_it_once() {
    let (_dir, path) = copy_of(1);
    for s in open_at_once(&path, 4) {
        assert!(s.check().unwrap().is_ok());
        check_graph(&s);
    }
    assert_eq!(user_version(&path), FORMAT_VERSION);
    assert_eq!(indexed_nodes(&path), 3);
}

/// Format 2: graph and documents (one kept in its row, one in chunks), no search
/// index. Read-only it stays as it is; writable it gains the index.
#[test]
fn the_format_2_fixture_still_opens_and_is_migrated() {
    let (_dir, path) = copy_of(2);
    let before = std::fs::read(&path).unwrap();
    let s = open_store(&path, true);
    check_graph(&s);
    check_documents(&s);
    check_search(&s);
    assert!(s.check().unwrap().is_ok());
    drop(s);
    assert_eq!(user_version(&path), 2);
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let s = open_store(&path, false);
    assert_eq!(user_version(&path), FORMAT_VERSION);
    assert_eq!(indexed_nodes(&path), 3);
    check_graph(&s);
    check_documents(&s);
    check_search(&s);
    assert!(s.check().unwrap().is_ok());
    appends_after_migration(&s);
}

/// Format 3 (current): graph, documents and the search index.
#[test]
fn the_format_3_fixture_still_opens() {
    let (_dir, path) = copy_of(3);
    for read_only in [true, false] {
        let s = open_store(&path, read_only);
        check_graph(&s);
        check_documents(&s);
        check_search(&s);
        assert_eq!(
            s.last_position().unwrap(),
            0,
            "no event store before format 4"
        );
        assert!(s.check().unwrap().is_ok());
        if read_only {
            drop(s);
            assert_eq!(user_version(&path), 3);
        } else {
            assert_eq!(user_version(&path), FORMAT_VERSION);
            appends_after_migration(&s);
        }
    }
}

/// Format 4: graph, documents, the search index and the event store
/// (events, a consumer group with a dead letter, an event schema, the change feed
/// holding the documents' changes); its edges move into format 5's table.
#[test]
fn the_format_4_fixture_still_opens() {
    check_event_store_fixture(EVENTS_SINCE);
}

/// Format 5: the same content, edges in their key's order.
#[test]
fn the_format_5_fixture_still_opens() {
    check_event_store_fixture(COMPACT_EDGES_SINCE);
}

/// Format 6: the same content, its search terms waiting in
/// `search_terms_pending` (fewer than a thousand).
#[test]
fn the_format_6_fixture_still_opens() {
    let pending: i64 = raw(&fixture(PENDING_TERMS_SINCE))
        .query_row("SELECT count(*) FROM search_terms_pending", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(pending > 0, "the fixture's terms wait");
    check_event_store_fixture(PENDING_TERMS_SINCE);
}

/// Format 7: the same content, the events' digests as 32-byte blobs
/// and no index on event types.
#[test]
fn the_format_7_fixture_still_opens() {
    let conn = raw(&fixture(NARROW_EVENTS_SINCE));
    let digests: Vec<(String, i64)> = conn
        .prepare("SELECT typeof(digest), length(digest) FROM events")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(!digests.is_empty());
    assert!(
        digests.iter().all(|d| *d == ("blob".to_owned(), 32)),
        "{digests:?}"
    );
    drop(conn);
    check_event_store_fixture(NARROW_EVENTS_SINCE);
}

/// The digests and the log's order of a format-6 file across the rebuild of
/// format 7: every digest becomes the 32 bytes its hex spelled, the type index
/// goes, and type-filtered reads, retries and conflicts answer as before.
#[test]
fn format_7_keeps_the_digests_of_an_older_log() {
    let (_dir, path) = copy_of(PENDING_TERMS_SINCE);
    let before: Vec<(i64, String)> = raw(&path)
        .prepare("SELECT position, digest FROM events ORDER BY position")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(before.iter().all(|(_, d)| d.len() == 64));
    let s = open_store(&path, false);
    let conn = raw(&path);
    let after: Vec<(i64, String)> = conn
        .prepare("SELECT position, lower(hex(digest)) FROM events ORDER BY position")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(after, before);
    let type_index: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'events_by_type'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(type_index, 0);
    let paid = s
        .read_all(&ReadOptions::forwards(10).of_type("order.paid"))
        .unwrap();
    assert_eq!(paid.events.len(), 1);
    assert_eq!(paid.events[0].id, "o1-paid");
    // The same id with other data is still told apart from a retry.
    let err = s
        .append(
            "orders",
            ExpectedVersion::Any,
            [NewEvent::new("order.placed", json!({"order": 2})).with_id("o1-placed")],
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(s.check().unwrap().is_ok());
}

/// Format 8: the same content, its nodes listed in `search_stale`
/// (written, not indexed yet): searched from their rows, read-only too, and
/// indexed when a writable handle brings the index up to date.
#[test]
fn the_format_8_fixture_still_opens() {
    let listed: i64 = raw(&fixture(STALE_SEARCH_SINCE))
        .query_row("SELECT count(*) FROM search_stale", [], |r| r.get(0))
        .unwrap();
    assert_eq!(listed, 3, "the fixture's nodes wait to be indexed");
    assert_eq!(indexed_nodes(&fixture(STALE_SEARCH_SINCE)), 0);
    check_event_store_fixture(STALE_SEARCH_SINCE);
    let (_dir, path) = copy_of(STALE_SEARCH_SINCE);
    let s = open_store(&path, false);
    s.optimize().unwrap();
    assert_eq!(indexed_nodes(&path), 3);
    check_search(&s);
    assert!(s.check().unwrap().is_ok());
}

/// Format 9: the same content, each edge row carrying its ends' names
/// (which the migration from format 8 joins in from `names`).
#[test]
fn the_format_9_fixture_still_opens() {
    let names = |path: &Path| -> Vec<(String, String, String)> {
        let conn = raw(path);
        let mut stmt = conn
            .prepare("SELECT from_name, rel, to_name FROM edges ORDER BY from_id, rel, to_id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let expected = vec![(
        "kgstore".to_owned(),
        "depends_on".to_owned(),
        "serde_json".to_owned(),
    )];
    assert_eq!(names(&fixture(NAMED_EDGES_SINCE)), expected);
    check_event_store_fixture(NAMED_EDGES_SINCE);
    // Format 8's edges, migrated: the same names, and `check` agrees with them.
    let (_dir, path) = copy_of(STALE_SEARCH_SINCE);
    let s = open_store(&path, false);
    assert_eq!(names(&path), expected);
    assert!(s.check().unwrap().is_ok());
}

/// Format 10: the same content, the nodes counted by type in
/// `node_type_counts` and no index of nodes by type.
#[test]
fn the_format_10_fixture_still_opens() {
    assert_eq!(
        type_counts(&fixture(TYPE_COUNTS_SINCE)),
        [("crate".to_owned(), 3)]
    );
    check_event_store_fixture(TYPE_COUNTS_SINCE);
}

/// Migrating to format 10 counts the nodes already stored by type, drops the
/// index by type, and the counts then follow every write, its own reads inside
/// a transaction included; a read-only open of an older file counts its rows.
#[test]
fn format_10_counts_the_nodes_of_an_older_file_by_type() {
    let (_dir, path) = copy_of(STALE_SEARCH_SINCE);
    let before = std::fs::read(&path).unwrap();
    let s = open_store(&path, true);
    assert_eq!(s.count_nodes().unwrap(), 3);
    assert_eq!(s.stats().unwrap().node_types["crate"], 3);
    drop(s);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "read-only changed it"
    );
    let s = open_store(&path, false);
    assert_eq!(type_counts(&path), [("crate".to_owned(), 3)]);
    let index: i64 = raw(&path)
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'nodes_by_type'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 0);
    s.write(|tx| {
        tx.create_node(Node::new("tokio", "runtime")?)?;
        let mut json = tx.get_node("serde_json")?;
        json.node_type = "runtime".to_owned();
        tx.update_node(json, None)?;
        assert_eq!(tx.count_nodes()?, 4);
        assert_eq!(tx.stats()?.node_types["runtime"], 2);
        tx.delete_node("tokio", OnDependents::Refuse)?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        type_counts(&path),
        [("crate".to_owned(), 2), ("runtime".to_owned(), 1)]
    );
    s.delete_node("serde_json", OnDependents::Detach).unwrap();
    assert_eq!(type_counts(&path), [("crate".to_owned(), 2)]);
    assert_eq!(s.count_nodes().unwrap(), 2);
    assert!(s.check().unwrap().is_ok());
    drop(s);
    // A count that disagrees with the rows is found.
    raw(&path)
        .execute_batch("UPDATE node_type_counts SET nodes = 5")
        .unwrap();
    let report = store(&path).check().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.to_string().contains("node_type_counts")),
        "{report:?}"
    );
}

/// Format 11: the same content, its first node listed in
/// `search_stale` and the other two covered by `search_stale_from` (as a load's
/// nodes are): searched from their rows, read-only too, and indexed when a
/// writable handle brings the index up to date.
#[test]
fn the_format_11_fixture_still_opens() {
    assert_eq!(stale_marks(&fixture(STALE_FROM_SINCE)), (1, Some(2)));
    assert_eq!(indexed_nodes(&fixture(STALE_FROM_SINCE)), 0);
    check_event_store_fixture(STALE_FROM_SINCE);
    let (_dir, path) = copy_of(STALE_FROM_SINCE);
    let s = open_store(&path, false);
    s.optimize().unwrap();
    assert_eq!(indexed_nodes(&path), 3);
    assert_eq!(stale_marks(&path), (0, None));
    check_search(&s);
    assert!(s.check().unwrap().is_ok());
}

/// Migrating format 10 to 11 adds an empty `search_stale_from` and keeps the
/// listed nodes; a load after it lists its nodes with one row, and a search
/// and `check` read both; a read-only open of the older file reads its list.
#[test]
fn format_11_adds_the_load_marker_to_an_older_file() {
    let (_dir, path) = copy_of(TYPE_COUNTS_SINCE);
    let listed = stale_marks(&path).0;
    let s = open_store(&path, true);
    check_search(&s);
    assert!(s.check().unwrap().is_ok());
    drop(s);
    let s = open_store(&path, false);
    assert_eq!(user_version(&path), FORMAT_VERSION);
    assert_eq!(stale_marks(&path), (listed, None));
    s.create_nodes((0..300).map(|i| {
        Node::new(format!("loaded{i}"), "crate")
            .unwrap()
            .with_observation(format!("loaded serialization {i}"))
    }))
    .unwrap();
    let (rows, from) = stale_marks(&path);
    assert_eq!(rows, listed);
    let first: i64 = raw(&path)
        .query_row("SELECT id FROM names WHERE name = 'loaded0'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(from, Some(first));
    let hits = s
        .search(&SearchQuery::new("serialization").limit(400))
        .unwrap();
    assert_eq!(hits.items.len(), 301);
    assert!(s.check().unwrap().is_ok());
    s.optimize().unwrap();
    assert_eq!(stale_marks(&path), (0, None));
    assert_eq!(
        s.search(&SearchQuery::new("serialization").limit(400))
            .unwrap(),
        hits
    );
}

/// Format 12 (current): the same content, the edge rows' `bidirectional` column
/// replaced by `flags`, the default-content edge marked plain (2).
#[test]
fn the_format_12_fixture_still_opens() {
    assert_eq!(
        edge_flags(&fixture(EDGE_FLAGS_SINCE)),
        [("kgstore".to_owned(), "serde_json".to_owned(), 2)]
    );
    check_event_store_fixture(EDGE_FLAGS_SINCE);
}

/// Migrating format 11 to 12 turns column `bidirectional` into `flags`: 1 for a
/// bidirectional edge, 2 for one whose content is the default one, 0 for the
/// rest. Every edge reads the same before (read-only, the older file as it is)
/// and after, and after writes that change whether it is plain; the traversal's
/// step backwards along bidirectional edges finds the same nodes; `check` finds
/// a flag that disagrees with its row.
#[test]
fn format_12_flags_the_edges_of_an_older_file() {
    let (_dir, path) = copy_of(STALE_FROM_SINCE);
    // Two edges with content of their own, written as format 11 holds them: one
    // bidirectional, one not.
    raw(&path)
        .execute_batch(
            r#"INSERT INTO edges(from_id, rel, to_id, to_name, from_name, weight, confidence,
                   bidirectional, source, created_at, updated_at, version, attributes)
               SELECT f.id, 'depends_on', t.id, t.name, f.name, 0.5, 0.25, 1, 'Cargo.toml',
                   1700000000000000, 1700000000000001, 2, '{"optional":true}'
               FROM names f, names t WHERE f.name = 'serde_json' AND t.name = 'serde';
               INSERT INTO edges(from_id, rel, to_id, to_name, from_name, weight, confidence,
                   bidirectional, source, created_at, updated_at, version, attributes)
               SELECT f.id, 'references', t.id, t.name, f.name, 2.0, NULL, 0, NULL,
                   1700000000000000, 1700000000000000, 1, '{"line":3}'
               FROM names f, names t WHERE f.name = 'serde' AND t.name = 'kgstore';"#,
        )
        .unwrap();
    let edges = |s: &kgstore_core::Store| {
        ["kgstore", "serde_json", "serde"].map(|n| {
            (
                s.edges_of(n, Direction::Out, &[]).unwrap(),
                s.edges_of(n, Direction::Both, &[]).unwrap(),
                s.list_edges(&EdgeFilter::default(), &PageRequest::first(10))
                    .unwrap()
                    .items,
                s.traverse(n, &TraverseOptions::depth(3)).unwrap(),
                s.reach_count(n, &ReachOptions::exactly(2)).unwrap(),
            )
        })
    };
    let s = open_store(&path, true);
    let before = edges(&s);
    let own = s
        .get_edge(
            &Edge::new("serde_json", RelationType::DependsOn, "serde")
                .unwrap()
                .key(),
        )
        .unwrap();
    assert_eq!(before[1].0, std::slice::from_ref(&own));
    assert_eq!(own.metadata.weight, 0.5);
    assert_eq!(own.metadata.confidence, Some(0.25));
    assert!(own.metadata.bidirectional);
    assert_eq!(own.metadata.source.as_deref(), Some("Cargo.toml"));
    assert_eq!(own.metadata.version, 2);
    assert_eq!(own.attributes["optional"], json!(true));
    assert_eq!(before[2].0[0].attributes["line"], json!(3));
    // Backwards along the bidirectional edge, serde reaches serde_json in one hop
    // (and so kgstore, then serde again, in two).
    assert!(
        before[2]
            .3
            .iter()
            .any(|v| v.name == "serde_json" && v.depth == 1),
        "{:?}",
        before[2].3
    );
    assert_eq!(before[2].4, 2);
    drop(s);
    let s = open_store(&path, false);
    assert_eq!(user_version(&path), FORMAT_VERSION);
    assert_eq!(
        edge_flags(&path),
        [
            ("kgstore".to_owned(), "serde_json".to_owned(), 2),
            ("serde".to_owned(), "kgstore".to_owned(), 0),
            ("serde_json".to_owned(), "serde".to_owned(), 1),
        ]
    );
    assert_eq!(edges(&s), before);
    assert!(s.check().unwrap().is_ok());
    // An update gives the plain edge content of its own; a new edge is plain.
    let mut edge = s
        .get_edge(
            &Edge::new("kgstore", RelationType::DependsOn, "serde_json")
                .unwrap()
                .key(),
        )
        .unwrap();
    edge.attributes.insert("pinned".into(), json!("1.0"));
    let updated = s.update_edge(edge, None).unwrap();
    let created = s
        .create_edge(Edge::new("kgstore", RelationType::References, "serde").unwrap())
        .unwrap();
    let mut all = s.edges_of("kgstore", Direction::Out, &[]).unwrap();
    all.sort_by_key(|e| e.to.clone());
    assert_eq!(all, [created, updated]);
    assert!(s.check().unwrap().is_ok());
    assert_eq!(
        edge_flags(&path),
        [
            ("kgstore".to_owned(), "serde".to_owned(), 2),
            ("kgstore".to_owned(), "serde_json".to_owned(), 0),
            ("serde".to_owned(), "kgstore".to_owned(), 0),
            ("serde_json".to_owned(), "serde".to_owned(), 1),
        ]
    );
    drop(s);
    // A flag that claims the default content of an edge that has its own, and one
    // with a bit that means nothing, are found.
    for (rel, flags) in [("references", 2), ("depends_on", 5)] {
        let (_dir, copy) = temp_db();
        std::fs::copy(&path, &copy).unwrap();
        raw(&copy)
            .execute(
                "UPDATE edges SET flags = ?2 WHERE rel = ?1 AND from_name = 'serde'
                    OR rel = ?1 AND from_name = 'serde_json'",
                rusqlite::params![rel, flags],
            )
            .unwrap();
        let report = store(&copy).check().unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.to_string().contains("column flags")),
            "{report:?}"
        );
    }
}

/// Each edge's ends and its `flags`, in key order.
fn edge_flags(path: &Path) -> Vec<(String, String, i64)> {
    raw(path)
        .prepare("SELECT from_name, to_name, flags FROM edges ORDER BY from_name, to_name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// The rows of `search_stale` and the id of `search_stale_from`'s row, if any.
fn stale_marks(path: &Path) -> (i64, Option<i64>) {
    let conn = raw(path);
    let rows = conn
        .query_row("SELECT count(*) FROM search_stale", [], |r| r.get(0))
        .unwrap();
    let from = conn
        .query_row("SELECT first FROM search_stale_from", [], |r| r.get(0))
        .ok();
    (rows, from)
}

/// The rows of `node_type_counts`, in type order.
fn type_counts(path: &Path) -> Vec<(String, i64)> {
    raw(path)
        .prepare("SELECT node_type, nodes FROM node_type_counts ORDER BY node_type")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// A fixture of format 4 or later, read-only (as it is) and then writable
/// (migrated to the current format, then written to).
fn check_event_store_fixture(version: i64) {
    let (_dir, path) = copy_of(version);
    for read_only in [true, false] {
        let s = open_store(&path, read_only);
        check_graph(&s);
        check_documents(&s);
        check_search(&s);
        let page = s.read_stream("orders", &ReadOptions::forwards(10)).unwrap();
        assert_eq!(page.events.len(), 2);
        assert_eq!(page.events[1].data, json!({"order": 1, "total": 9.5}));
        assert_eq!(
            page.events[0].metadata.correlation_id.as_deref(),
            Some("c-1")
        );
        let status = s.group_status("billing").unwrap();
        assert_eq!((status.checkpoint, status.dead_letters), (2, 1));
        assert!(s.change_feed_enabled().unwrap());
        let changes = s
            .read_stream(
                kgstore_core::events::CHANGES_STREAM,
                &ReadOptions::forwards(100),
            )
            .unwrap();
        assert!(
            changes
                .events
                .iter()
                .any(|e| e.event_type == "document.created" && e.data["key"] == "blobs/scene-1.bin"),
            "the change feed holds the documents' changes"
        );
        assert_eq!(
            s.event_schema("order.placed")
                .unwrap()
                .unwrap()
                .versions
                .len(),
            1
        );
        assert!(s.check().unwrap().is_ok());
        if !read_only {
            // A retry of a fixture's append is still recognised.
            let again = s
                .append("orders", ExpectedVersion::Any, [placed()])
                .unwrap();
            assert!(again.duplicate);
            // The migrated edges take writes and answer every kind of edge read.
            s.create_edge(
                Edge::new("serde", RelationType::References, "serde_json")
                    .unwrap()
                    .bidirectional(),
            )
            .unwrap();
            assert_eq!(
                s.neighbour_names("serde_json", kgstore_core::Direction::In, &[])
                    .unwrap(),
                ["kgstore", "serde"]
            );
            let within = kgstore_core::ReachOptions::within(2);
            assert_eq!(s.reach("serde_json", &within).unwrap(), ["serde"]);
            assert!(s.check().unwrap().is_ok());
        } else {
            assert_eq!(user_version(&path), version);
        }
    }
    assert_eq!(user_version(&path), FORMAT_VERSION);
}

/// A migrated store takes events, documents and nodes in one transaction.
fn appends_after_migration(s: &kgstore_core::Store) {
    s.write(|tx| {
        tx.write_document("notes/after-migration-events.md", "# events")?;
        tx.append(
            "upgraded",
            ExpectedVersion::NoStream,
            [NewEvent::new("t", json!(1))],
        )
    })
    .unwrap();
    assert_eq!(s.last_position().unwrap(), 1);
    assert!(s.check().unwrap().is_ok());
}

fn placed() -> NewEvent {
    NewEvent::new("order.placed", json!({"order": 1}))
        .with_id("o1-placed")
        .with_correlation_id("c-1")
}

/// `n` stores opened writable on `path` by `n` threads at once.
fn open_at_once(path: &Path, n: usize) -> Vec<kgstore_core::Store> {
    let backends: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| SqliteBackend::open(path, options())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    backends
        .into_iter()
        .map(|b| kgstore_core::Store::new(b.unwrap()))
        .collect()
}

fn big_content() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

fn user_version(path: &Path) -> i64 {
    raw(path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// The nodes in the search index's figures.
fn indexed_nodes(path: &Path) -> i64 {
    raw(path)
        .query_row("SELECT count(*) FROM search_docs", [], |r| r.get(0))
        .unwrap()
}

fn check_documents(s: &kgstore_core::Store) {
    let pilot = s.get_document("scripts/pilot.fountain").unwrap();
    assert_eq!(pilot.content, b"INT. HOUSE - DAY\n");
    assert_eq!(pilot.meta.content_type, "text/vnd.fountain; charset=utf-8");
    let big = s.get_document("blobs/scene-1.bin").unwrap();
    assert_eq!(big.content, big_content());
    assert_eq!(big.meta.size, big_content().len() as u64);
    assert!(big.meta.size > kgstore_sqlite::DOCUMENT_CHUNK as u64);
    assert_eq!(
        big.meta.sha256,
        kgstore_core::documents::Sha256Digest::of(&big_content())
    );
}

fn check_search(s: &kgstore_core::Store) {
    let hits = s
        .search(&SearchQuery::new("Serialisation serial"))
        .unwrap()
        .items;
    assert_eq!(hits[0].name, "serde");
    let hits = s.search(&SearchQuery::new("apache")).unwrap().items;
    assert_eq!(hits[0].name, "serde");
    let hits = s.search(&SearchQuery::new("json")).unwrap().items;
    assert_eq!(hits[0].name, "serde_json");
    // Inside a word: found through the recorded (or waiting) terms.
    let hits = s.search(&SearchQuery::new("rializ")).unwrap().items;
    assert_eq!(hits[0].name, "serde");
}

fn check_graph(s: &kgstore_core::Store) {
    assert_eq!(s.count_nodes().unwrap(), 3);
    let serde = s.get_node("serde").unwrap();
    assert_eq!(serde.observations, ["A serialization framework"]);
    assert_eq!(serde.metadata.tags, ["popular"]);
    assert_eq!(serde.attributes["license"], "MIT OR Apache-2.0");
    assert_eq!(
        s.resolve_dependencies("kgstore").unwrap(),
        ["serde", "serde_json"]
    );
    assert_eq!(
        s.edges_of("kgstore", kgstore_core::Direction::Out, &[])
            .unwrap()[0]
            .key(),
        Edge::new("kgstore", RelationType::DependsOn, "serde_json")
            .unwrap()
            .key()
    );
}

fn write_fixture(fixture: &Path) {
    let _ = std::fs::remove_file(fixture);
    std::fs::create_dir_all(fixture.parent().unwrap()).unwrap();
    let s = store(fixture);
    s.create_group("billing", GroupOptions::default()).unwrap();
    s.set_event_schema("order.placed", json!({"type": "object"}), None)
        .unwrap();
    s.set_change_feed(true).unwrap();
    s.write(|tx| {
        tx.create_node(
            Node::new("serde", "crate")?
                .with_observation("A serialization framework")
                .with_attribute("license", serde_json::json!("MIT OR Apache-2.0"))
                .with_tag("popular"),
        )?;
        tx.create_node(Node::new("serde_json", "crate")?.with_dependency("serde"))?;
        tx.create_node(Node::new("kgstore", "crate")?.with_dependency("serde_json"))?;
        tx.create_edge(Edge::new("kgstore", RelationType::DependsOn, "serde_json")?)?;
        tx.set_schema(
            kgstore_core::SchemaTarget::NodeType("crate".into()),
            serde_json::json!({"type": "object"}),
        )?;
        tx.write_document("scripts/pilot.fountain", "INT. HOUSE - DAY\n")?;
        tx.write_document_from(
            "blobs/scene-1.bin",
            big_content().as_slice(),
            &kgstore_core::WriteOptions::new(),
        )?;
        tx.append(
            "orders",
            ExpectedVersion::NoStream,
            [
                placed(),
                NewEvent::new("order.paid", json!({"order": 1, "total": 9.5})).with_id("o1-paid"),
            ],
        )?;
        Ok(())
    })
    .unwrap();
    let c = s.consumer("billing", "fixture").unwrap();
    let d = c.poll(2).unwrap();
    c.ack(&d[0]).unwrap();
    c.nack(&d[1], &Nack::Park, "kept for the fixture").unwrap();
    drop((c, s));
    // Format 11: the last two nodes wait under `search_stale_from`, as a load's
    // nodes do (a load needs 256 nodes; these are the rows its commit writes).
    raw(fixture)
        .execute_batch(
            "INSERT INTO search_stale_from(id, first)
               SELECT 1, id FROM names WHERE name = 'serde_json';
             DELETE FROM search_stale WHERE id >= (SELECT first FROM search_stale_from);",
        )
        .unwrap();
    // Fold the log into the file so the fixture is one self-contained file.
    raw(fixture)
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE; VACUUM;")
        .unwrap();
}
