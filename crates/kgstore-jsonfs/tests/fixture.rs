//! The committed stores of format versions 1 (`tests/fixtures/v1`, the graph), 2
//! (`tests/fixtures/v2`, with documents) and 3 (`tests/fixtures/v3`, with documents
//! and the event store) must keep opening with the same content, older ones must be
//! upgraded by a writable open, and today's writer must still write exactly the
//! files of the newest: a change of format shows up here and needs a new version
//! and a new fixture.
//!
//! `KGSTORE_WRITE_FIXTURE=1 cargo test -p kgstore-jsonfs --test fixture` rewrites the
//! newest one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use kgstore_core::events::{
    Append, AppendOptions, EventRead, ExpectedVersion, GroupOptions, Nack, NewEvent, ReadOptions,
};
use kgstore_core::suite::dump;
use kgstore_core::{
    DocumentQuery, DocumentRead, Edge, Node, RelationType, SchemaTarget, Store, Timestamp,
};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};
use serde_json::json;

use common::{all_files, open};

/// The newest format version, whose fixture today's writer must reproduce.
const NEWEST: u32 = 3;

fn fixture(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}"))
}

/// The documents of the v2 and v3 fixtures, with fixed times: a script, a hostile
/// key, binary bytes, an empty document.
fn write_documents(path: &Path) {
    let t = Timestamp::from_micros(1_767_225_600_000_000).unwrap();
    let store = open(path);
    store
        .write(|tx| {
            for (key, content) in [
                ("scripts/pilot.fountain", b"INT. HOUSE - DAY\n".to_vec()),
                ("Scripts/..x/Pilot .FOUNTAIN.", b"hostile key".to_vec()),
                ("blobs/scene-1.bin", (0..=255u8).collect()),
                ("empty", Vec::new()),
            ] {
                let mut meta = Store::memory().write_document(key, &content)?;
                meta.created_at = t;
                meta.updated_at = t;
                meta.version = 3;
                tx.import_document(meta, content.as_slice())?;
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Writes a fixture's content, with fixed times, into a new store at `path`: the
/// graph; from version 2 on the documents; from version 3 on the event store.
fn write_sample(path: &Path, version: u32) {
    let t = Timestamp::from_micros(1_767_225_600_000_000).unwrap();
    let store = open(path);
    store
        .write(|tx| {
            let stamp = |mut node: Node| {
                node.metadata.created_at = t;
                node.metadata.updated_at = t;
                node.metadata.version = 2;
                node
            };
            tx.import_node(stamp(
                Node::new("serde", "crate")?
                    .with_observation("A serialization framework")
                    .with_attribute("license", json!("MIT OR Apache-2.0"))
                    .with_tag("popular")
                    .with_status("active")
                    .with_author("dtolnay")
                    .with_source("https://crates.io/crates/serde"),
            ))?;
            tx.import_node(stamp(
                Node::new("KgStore", "crate")?.with_dependency("serde"),
            ))?;
            tx.import_node(stamp(Node::new("../escape attempt", "hostile")?))?;
            tx.import_node(stamp(Node::new("日本語", "hostile")?))?;
            tx.import_node(stamp(Node::new("long-".repeat(60), "hostile")?))?;
            let mut edge = Edge::new("KgStore", RelationType::DependsOn, "serde")?
                .with_weight(0.25)
                .with_confidence(0.5)
                .bidirectional()
                .with_source("Cargo.toml")
                .with_attribute("optional", json!(false));
            edge.metadata.created_at = t;
            edge.metadata.updated_at = t;
            edge.metadata.version = 1;
            tx.import_edge(edge)?;
            let mut custom = Edge::new("日本語", RelationType::parse("con")?, "../escape attempt")?;
            custom.metadata.created_at = t;
            custom.metadata.updated_at = t;
            custom.metadata.version = 1;
            tx.import_edge(custom)?;
            tx.set_schema(
                SchemaTarget::NodeType("crate".into()),
                json!({"type": "object", "properties": {"license": {"type": "string"}}}),
            )?;
            tx.set_schema(
                SchemaTarget::RelationType(RelationType::DependsOn),
                json!({"type": "object"}),
            )?;
            Ok(())
        })
        .unwrap();
    drop(store);
    if version < 2 {
        return;
    }
    write_documents(path);
    if version < 3 {
        return;
    }
    let store = open(path);
    store
        .create_group("billing", GroupOptions::default())
        .unwrap();
    store
        .set_event_schema("order.placed", json!({"type": "object"}), None)
        .unwrap();
    store
        .append_all(
            vec![
                Append::new(
                    "orders/../../etc",
                    ExpectedVersion::NoStream,
                    [
                        NewEvent::new("order.placed", json!({"order": 1, "lines": ["a", "b"]}))
                            .with_id("o1")
                            .with_correlation_id("checkout-1"),
                    ],
                ),
                Append::new(
                    "Café",
                    ExpectedVersion::NoStream,
                    [NewEvent::new("order.paid", json!(9.5)).with_id("o1-paid")],
                ),
            ],
            &AppendOptions {
                batch: Some("import-1".into()),
            },
        )
        .unwrap();
    let c = store.consumer("billing", "fixture").unwrap();
    let d = c.poll(2).unwrap();
    c.ack(&d[0]).unwrap();
    c.nack(&d[1], &Nack::Park, "kept for the fixture").unwrap();
}

/// Times and random ids would differ between runs: replaced for comparisons.
fn normalized(bytes: &[u8]) -> serde_json::Value {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) if s.parse::<Timestamp>().is_ok() => *s = "<time>".into(),
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            serde_json::Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    walk(&mut value);
    value
}

/// The regular files of a store, relative, without the lock file.
fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    all_files(root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            (rel, bytes)
        })
        .filter(|(rel, _)| rel != "LOCK")
        .collect()
}

fn copy_fixture(version: u32, to: &Path) {
    for (rel, bytes) in files(&fixture(version)) {
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

#[test]
fn format_v1_fixture_opens_with_its_content_and_is_upgraded() {
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path(), 1);
    let copy = tempfile::tempdir().unwrap();
    copy_fixture(1, copy.path());
    // Read-only, it is read as it is.
    let reader = Store::new(
        JsonFsBackend::open(copy.path(), JsonFsOptions::default().read_only(true)).unwrap(),
    );
    assert!(dump(&reader) == dump(&open(fresh.path())));
    assert_eq!(reader.count_documents().unwrap(), 0);
    assert_eq!(reader.last_position().unwrap(), 0);
    drop(reader);
    assert!(marker(copy.path()).contains("\"version\": 1"));
    // A writable open marks it with today's version and takes documents and events.
    let store = open(copy.path());
    assert!(dump(&store) == dump(&open(fresh.path())));
    assert_eq!(dump(&store).0.len(), 5);
    assert!(store.check().unwrap().is_ok());
    assert!(marker(copy.path()).contains(&format!("\"version\": {NEWEST}")));
    store.write_document("after/upgrade.txt", "x").unwrap();
    store
        .append(
            "s",
            ExpectedVersion::NoStream,
            [NewEvent::new("t", json!(1))],
        )
        .unwrap();
    assert_eq!(store.last_position().unwrap(), 1);
}

fn marker(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("kgstore-jsonfs.json")).unwrap()
}

/// The documents of two stores are the same, key, metadata and bytes.
fn same_documents(a: &Store, b: &Store, count: usize) {
    let metas = |s: &Store| {
        s.list_documents(&DocumentQuery::default())
            .unwrap()
            .documents
    };
    assert_eq!(metas(a), metas(b));
    assert_eq!(metas(a).len(), count);
    for meta in metas(b) {
        assert_eq!(
            a.read_document(&meta.key).unwrap(),
            b.read_document(&meta.key).unwrap()
        );
    }
}

#[test]
fn format_v2_fixture_opens_with_its_content_and_is_upgraded() {
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path(), 2);
    let fresh = open(fresh.path());
    let copy = tempfile::tempdir().unwrap();
    copy_fixture(2, copy.path());
    let reader = Store::new(
        JsonFsBackend::open(copy.path(), JsonFsOptions::default().read_only(true)).unwrap(),
    );
    assert!(dump(&reader) == dump(&fresh));
    same_documents(&reader, &fresh, 4);
    assert_eq!(reader.last_position().unwrap(), 0);
    drop(reader);
    assert!(marker(copy.path()).contains("\"version\": 2"));
    let store = open(copy.path());
    assert!(dump(&store) == dump(&fresh));
    assert_eq!(dump(&store).0.len(), 5);
    same_documents(&store, &fresh, 4);
    assert_eq!(
        std::fs::read(copy.path().join("documents/scripts/pilot.fountain")).unwrap(),
        b"INT. HOUSE - DAY\n"
    );
    assert!(store.check().unwrap().is_ok());
    assert!(marker(copy.path()).contains(&format!("\"version\": {NEWEST}")));
    store
        .write(|tx| {
            tx.write_document("after/upgrade.txt", "x")?;
            tx.append(
                "s",
                ExpectedVersion::NoStream,
                [NewEvent::new("t", json!(1))],
            )
        })
        .unwrap();
    assert_eq!(store.last_position().unwrap(), 1);
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn format_v3_fixture_opens_with_its_content() {
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path(), 3);
    if std::env::var("KGSTORE_WRITE_FIXTURE").is_ok() {
        let _ = std::fs::remove_dir_all(fixture(NEWEST));
        for (rel, bytes) in files(fresh.path()) {
            let dest = fixture(NEWEST).join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, bytes).unwrap();
        }
    }
    let copy = tempfile::tempdir().unwrap();
    copy_fixture(3, copy.path());
    let store = open(copy.path());
    let fresh = open(fresh.path());
    assert!(dump(&store) == dump(&fresh));
    assert_eq!(dump(&store).0.len(), 5);
    same_documents(&store, &fresh, 4);
    assert!(store.check().unwrap().is_ok());
    let page = store
        .read_stream("orders/../../etc", &ReadOptions::forwards(10))
        .unwrap();
    assert_eq!(
        page.events[0].data,
        json!({"order": 1, "lines": ["a", "b"]})
    );
    assert_eq!(
        page.events[0].metadata.correlation_id.as_deref(),
        Some("checkout-1")
    );
    let status = store.group_status("billing").unwrap();
    assert_eq!((status.checkpoint, status.dead_letters), (2, 1));
    assert_eq!(store.batch_status("import-1").unwrap().total, 2);
    let again = store
        .append(
            "Café",
            ExpectedVersion::Any,
            [NewEvent::new("order.paid", json!(9.5)).with_id("o1-paid")],
        )
        .unwrap();
    assert!(
        again.duplicate,
        "a retry of the fixture's append is recognised"
    );
}

#[test]
fn todays_writer_still_writes_the_newest_format() {
    if std::env::var("KGSTORE_WRITE_FIXTURE").is_ok() {
        return; // the other test is rewriting the fixture
    }
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path(), NEWEST);
    let written = files(fresh.path());
    let committed = files(&fixture(NEWEST));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>();
    assert_eq!(names(&written), names(&committed));
    for ((rel, a), (_, b)) in written.iter().zip(&committed) {
        if rel.starts_with("events") {
            // Event-store files hold the times of their transactions.
            assert_eq!(
                normalized(a),
                normalized(b),
                "{rel} differs from the committed fixture"
            );
        } else {
            assert!(a == b, "{rel} differs from the committed fixture");
        }
    }
}
