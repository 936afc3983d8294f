//! The committed stores of format versions 1 (`tests/fixtures/v1`, the graph) and 2
//! (`tests/fixtures/v2`, the graph and the event store) must keep opening with the
//! same content, and today's writer must still write exactly the files of the
//! newest: a change of format shows up here and needs a new version and a new
//! fixture.
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
use kgstore_core::{Edge, Node, RelationType, SchemaTarget, Store, Timestamp};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};
use serde_json::json;

use common::{all_files, open};

fn fixture(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}"))
}

/// Writes the fixture's content, with fixed times, into a new store at `path`; with
/// `events`, the event store's part too.
fn write_sample(path: &Path, events: bool) {
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
    if !events {
        return;
    }
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
fn format_v1_fixture_opens_and_is_upgraded() {
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path(), false);
    let copy = tempfile::tempdir().unwrap();
    copy_fixture(1, copy.path());
    // Read-only, it is read as it is.
    let reader = Store::new(
        JsonFsBackend::open(copy.path(), JsonFsOptions::default().read_only(true)).unwrap(),
    );
    assert!(dump(&reader) == dump(&open(fresh.path())));
    assert_eq!(reader.last_position().unwrap(), 0);
    drop(reader);
    let marker = |dir: &Path| std::fs::read_to_string(dir.join("kgstore-jsonfs.json")).unwrap();
    assert!(marker(copy.path()).contains("\"version\": 1"));
    // A writable open marks it version 2 and takes events.
    let store = open(copy.path());
    assert!(dump(&store) == dump(&open(fresh.path())));
    assert_eq!(dump(&store).0.len(), 5);
    assert!(store.check().unwrap().is_ok());
    assert!(marker(copy.path()).contains("\"version\": 2"));
    store
        .append(
            "s",
            ExpectedVersion::NoStream,
            [NewEvent::new("t", json!(1))],
        )
        .unwrap();
    assert_eq!(store.last_position().unwrap(), 1);
}

#[test]
fn format_v2_fixture_opens_with_its_content() {
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path(), true);
    if std::env::var("KGSTORE_WRITE_FIXTURE").is_ok() {
        let _ = std::fs::remove_dir_all(fixture(2));
        for (rel, bytes) in files(fresh.path()) {
            let dest = fixture(2).join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, bytes).unwrap();
        }
    }
    let copy = tempfile::tempdir().unwrap();
    copy_fixture(2, copy.path());
    let store = open(copy.path());
    assert!(dump(&store) == dump(&open(fresh.path())));
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
fn todays_writer_still_writes_format_v2() {
    if std::env::var("KGSTORE_WRITE_FIXTURE").is_ok() {
        return; // the other test is rewriting the fixture
    }
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path(), true);
    let written = files(fresh.path());
    let committed = files(&fixture(2));
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
