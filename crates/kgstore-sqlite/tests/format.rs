//! Opening files: what is a kgstore store, which format versions open, and
//! what happens to files that are something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{assert_error, error_of, options, raw, store, temp_db};
use kgstore_core::events::{EventRead, ExpectedVersion, GroupOptions, Nack, NewEvent, ReadOptions};
use kgstore_core::{Edge, ErrorKind, GraphRead, Node, RelationType};
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
        let newer = format!("format version {} is newer", FORMAT_VERSION + 1);
        let supported = format!("up to {FORMAT_VERSION}");
        assert_error(
            &err,
            ErrorKind::Corrupt,
            &[&newer, &supported, "newer kgstore"],
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

/// The format-1 fixture: a small store made by the first version of this crate,
/// committed to the repository, so later versions are tested to still open (and
/// upgrade) it.
#[test]
fn the_format_1_fixture_still_opens_and_is_upgraded() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1.db");
    let (_dir, path) = temp_db();
    std::fs::copy(&fixture, &path).unwrap();
    // A read-only open leaves it at format 1, with an empty event log.
    let reader = SqliteBackend::open(&path, options().read_only(true)).unwrap();
    assert_eq!(reader.format(), 1);
    let r = kgstore_core::Store::new(reader);
    assert_eq!(r.count_nodes().unwrap(), 3);
    assert_eq!(r.last_position().unwrap(), 0);
    assert!(r.check().unwrap().is_ok(), "{:?}", r.check().unwrap());
    drop(r);
    let s = kgstore_core::Store::new(
        SqliteBackend::open(&path, options().verify_on_open(true)).unwrap(),
    );
    check_graph(&s);
    assert!(s.check().unwrap().is_ok());
    let version: i64 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, FORMAT_VERSION);
    s.create_node(Node::new("new", "thing").unwrap()).unwrap();
    s.append(
        "upgraded",
        ExpectedVersion::NoStream,
        [NewEvent::new("t", json!(1))],
    )
    .unwrap();
    assert_eq!(s.last_position().unwrap(), 1);
}

/// The format-2 fixture: the graph of format 1 plus events, a consumer group with
/// a dead letter, a schema and the change feed. Recreate it (only when the format
/// changes) with `KGSTORE_WRITE_FIXTURES=1`.
#[test]
fn the_format_2_fixture_still_opens() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-2.db");
    if std::env::var_os("KGSTORE_WRITE_FIXTURES").is_some() {
        write_fixture(&fixture);
    }
    let (_dir, path) = temp_db();
    std::fs::copy(&fixture, &path).unwrap();
    let s = kgstore_core::Store::new(
        SqliteBackend::open(&path, options().verify_on_open(true)).unwrap(),
    );
    check_graph(&s);
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
