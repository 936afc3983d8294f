//! Opening files: what is a kgstore store, which format versions open, and
//! what happens to files that are something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{assert_error, error_of, options, raw, store, temp_db};
use kgstore_core::events::{EventRead, ExpectedVersion, GroupOptions, Nack, NewEvent, ReadOptions};
use kgstore_core::{DocumentQuery, DocumentRead, Edge, ErrorKind, GraphRead, Node, RelationType};
use kgstore_sqlite::SqliteBackend;
use kgstore_sqlite::schema::{APPLICATION_ID, FORMAT_VERSION};
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
    assert!(
        matches!(err.kind(), ErrorKind::Io | ErrorKind::Corrupt),
        "{err}"
    );
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn concurrent_opens_of_a_new_file_make_one_store() {
    let (_dir, path) = temp_db();
    let stores: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| SqliteBackend::open(&path, options())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for s in stores {
        let s = kgstore_core::Store::new(s.unwrap());
        s.upsert_node(Node::new("shared", "thing").unwrap())
            .unwrap();
    }
    assert_eq!(store(&path).count_nodes().unwrap(), 1);
}

/// The format-1 fixture: a small store made by this crate before documents, committed
/// to the repository, so later versions are tested to still open it (and migrate it).
#[test]
fn the_format_1_fixture_still_opens_and_is_migrated() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1.db");
    let (_dir, path) = temp_db();
    std::fs::copy(&fixture, &path).unwrap();
    let s = kgstore_core::Store::new(
        SqliteBackend::open(&path, options().verify_on_open(true)).unwrap(),
    );
    check_graph(&s);
    assert_eq!(
        user_version(&path),
        FORMAT_VERSION,
        "a writable open migrates"
    );
    assert_eq!(s.count_documents().unwrap(), 0);
    assert_eq!(s.last_position().unwrap(), 0);
    s.write_document("notes/after-migration.md", "# new")
        .unwrap();
    s.append(
        "upgraded",
        ExpectedVersion::NoStream,
        [NewEvent::new("t", json!(1))],
    )
    .unwrap();
    assert!(s.check().unwrap().is_ok());
    s.create_node(Node::new("new", "thing").unwrap()).unwrap();
    drop(s);
    let s = store(&path);
    assert_eq!(
        s.read_document("notes/after-migration.md").unwrap(),
        b"# new"
    );
    assert_eq!(s.last_position().unwrap(), 1);
}

/// A read-only open leaves an older file exactly as it is: no migration, no
/// documents, an empty event log.
#[test]
fn the_format_1_fixture_opens_read_only_unchanged() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1.db");
    let (_dir, path) = temp_db();
    std::fs::copy(&fixture, &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let reader = SqliteBackend::open(&path, options().read_only(true)).unwrap();
    assert_eq!(reader.format(), 1);
    let s = kgstore_core::Store::new(reader);
    check_graph(&s);
    assert_eq!(s.count_documents().unwrap(), 0);
    assert!(!s.document_exists("a").unwrap());
    assert!(
        s.list_documents(&DocumentQuery::default())
            .unwrap()
            .documents
            .is_empty()
    );
    assert_eq!(s.last_position().unwrap(), 0);
    let report = s.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    drop(s);
    assert_eq!(user_version(&path), 1);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// The format-2 fixture: graph and documents (one kept in its row, one in chunks),
/// made before the event store. A read-only open reads it as it is, with an empty
/// event log; a writable one migrates it and takes events.
#[test]
fn the_format_2_fixture_still_opens_and_is_migrated() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-2.db");
    let (_dir, path) = temp_db();
    std::fs::copy(&fixture, &path).unwrap();
    let reader = SqliteBackend::open(&path, options().read_only(true)).unwrap();
    assert_eq!(reader.format(), 2);
    let r = kgstore_core::Store::new(reader);
    check_graph(&r);
    check_documents(&r);
    assert_eq!(r.last_position().unwrap(), 0);
    assert!(r.check().unwrap().is_ok(), "{:?}", r.check().unwrap());
    drop(r);
    assert_eq!(user_version(&path), 2);
    let s = kgstore_core::Store::new(
        SqliteBackend::open(&path, options().verify_on_open(true)).unwrap(),
    );
    assert_eq!(user_version(&path), FORMAT_VERSION);
    check_graph(&s);
    check_documents(&s);
    s.write(|tx| {
        tx.write_document("notes/after-migration.md", "# new")?;
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

/// The format-3 fixture: graph, documents and the event store (events, a consumer
/// group with a dead letter, an event schema, the change feed). Recreate it (only
/// when the format changes) with `KGSTORE_WRITE_FIXTURES=1`.
#[test]
fn the_format_3_fixture_still_opens() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-3.db");
    if std::env::var_os("KGSTORE_WRITE_FIXTURES").is_some() {
        write_fixture(&fixture);
    }
    let (_dir, path) = temp_db();
    std::fs::copy(&fixture, &path).unwrap();
    let s = kgstore_core::Store::new(
        SqliteBackend::open(&path, options().verify_on_open(true)).unwrap(),
    );
    check_graph(&s);
    check_documents(&s);
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
    assert_eq!(
        s.event_schema("order.placed")
            .unwrap()
            .unwrap()
            .versions
            .len(),
        1
    );
    // A retry of a fixture's append is still recognised.
    let again = s
        .append("orders", ExpectedVersion::Any, [placed()])
        .unwrap();
    assert!(again.duplicate);
    assert!(s.check().unwrap().is_ok());
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

fn big_content() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

fn user_version(path: &Path) -> i64 {
    raw(path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
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

fn placed() -> NewEvent {
    NewEvent::new("order.placed", json!({"order": 1}))
        .with_id("o1-placed")
        .with_correlation_id("c-1")
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
        tx.append(
            "orders",
            ExpectedVersion::NoStream,
            [
                placed(),
                NewEvent::new("order.paid", json!({"order": 1, "total": 9.5})).with_id("o1-paid"),
            ],
        )?;
        tx.write_document("scripts/pilot.fountain", "INT. HOUSE - DAY\n")?;
        tx.write_document_from(
            "blobs/scene-1.bin",
            big_content().as_slice(),
            &kgstore_core::WriteOptions::new(),
        )?;
        Ok(())
    })
    .unwrap();
    let c = s.consumer("billing", "fixture").unwrap();
    let d = c.poll(2).unwrap();
    c.ack(&d[0]).unwrap();
    c.nack(&d[1], &Nack::Park, "kept for the fixture").unwrap();
    drop((c, s));
    // Fold the log into the file so the fixture is one self-contained file.
    raw(fixture)
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE; VACUUM;")
        .unwrap();
}
