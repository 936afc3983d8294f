//! The committed stores of every format version must keep opening with the same
//! content: `tests/fixtures/v1` (graph only), `v2` (with documents), `v3` (the
//! commit log of several processes; its files are those of v2 but the marker), `v4`
//! (the event store: v3's files plus `events/`), `v5` (one-document commits stage
//! their metadata in `journal/`, which a store at rest does not hold: v4's files
//! but the marker), `v6` (a large commit's journal records its staged puts
//! without their content, in `journal/` too: v5's files but the marker).
//! Today's writer must still write exactly the files of the current version: a
//! change of format shows up here and needs a new version and a new fixture.
//!
//! `KGSTORE_WRITE_FIXTURE=1 cargo test -p kgstore-jsonfs --test fixture` rewrites
//! the current version's fixture.
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

fn fixture(version: u64) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}"))
}

fn current() -> PathBuf {
    fixture(kgstore_jsonfs::VERSION)
}

/// The documents of the fixtures since v2, with fixed times: a script, a hostile key,
/// binary bytes, an empty document.
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

/// Writes the fixture's content, with fixed times, into a new store at `path`.
fn write_sample(path: &Path) {
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
}

/// The format version that added the event store.
const EVENTS_SINCE: u64 = 4;

/// The event store of the fixtures since v4: a consumer group with an acked and a
/// parked delivery, an event schema, a batch, hostile stream names.
fn write_events(path: &Path) {
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

/// The event store `write_events` wrote, read back (a retry of its append is
/// recognised).
fn check_events(store: &Store) {
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
}

/// Event-store files hold the times of their transactions: replaced for comparisons.
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

/// The regular files of a store, relative, without what its `.gitignore` keeps out
/// of version control (the lock file, `journal/` with the commit log).
fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    all_files(root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            (rel, bytes)
        })
        .filter(|(rel, _)| rel != "LOCK" && !rel.starts_with("journal/"))
        .collect()
}

fn copy_fixture(version: u64, to: &Path) {
    for (rel, bytes) in files(&fixture(version)) {
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

fn documents(store: &Store) -> Vec<kgstore_core::DocumentMeta> {
    store
        .list_documents(&DocumentQuery::default())
        .unwrap()
        .documents
}

#[test]
fn the_fixture_of_every_format_version_opens_with_its_content() {
    let fresh_dir = tempfile::tempdir().unwrap();
    write_sample(fresh_dir.path());
    write_documents(fresh_dir.path());
    write_events(fresh_dir.path());
    if std::env::var("KGSTORE_WRITE_FIXTURE").is_ok() {
        let _ = std::fs::remove_dir_all(current());
        for (rel, bytes) in files(fresh_dir.path()) {
            let dest = current().join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, bytes).unwrap();
        }
    }
    let fresh = open(fresh_dir.path());
    let expected = dump(&fresh);
    let with_documents = documents(&fresh);
    assert_eq!(with_documents.len(), 4);
    for version in kgstore_jsonfs::OLDEST_VERSION..=kgstore_jsonfs::VERSION {
        // Version 1 predates documents.
        let expected_documents = if version == 1 {
            Vec::new()
        } else {
            with_documents.clone()
        };
        let copy = tempfile::tempdir().unwrap();
        copy_fixture(version, copy.path());
        // Read-only: as it is, nothing written.
        let before = files(copy.path());
        let read_only = Store::new(
            JsonFsBackend::open(copy.path(), JsonFsOptions::default().read_only(true)).unwrap(),
        );
        assert!(dump(&read_only) == expected, "v{version}");
        assert_eq!(documents(&read_only), expected_documents, "v{version}");
        if version >= EVENTS_SINCE {
            check_events(&read_only);
        } else {
            assert_eq!(read_only.last_position().unwrap(), 0, "v{version}");
        }
        for meta in &expected_documents {
            assert_eq!(
                read_only.read_document(&meta.key).unwrap(),
                fresh.read_document(&meta.key).unwrap(),
                "v{version}: {}",
                meta.key
            );
        }
        drop(read_only);
        assert!(
            files(copy.path()) == before,
            "v{version}: a read-only open wrote"
        );
        // Writable: upgraded to the current version, same content, and it takes writes.
        let store = open(copy.path());
        assert!(dump(&store) == expected, "v{version}");
        assert_eq!(dump(&store).0.len(), 5);
        assert_eq!(documents(&store), expected_documents, "v{version}");
        assert!(store.check().unwrap().is_ok(), "v{version}");
        let marker = std::fs::read_to_string(copy.path().join(kgstore_jsonfs::MARKER)).unwrap();
        assert!(
            marker.contains(&format!("\"version\": {}", kgstore_jsonfs::VERSION)),
            "v{version}: {marker}"
        );
        store
            .create_node(Node::new("later", "crate").unwrap())
            .unwrap();
        store.write_document("after/upgrade.txt", "x").unwrap();
        let head = store.last_position().unwrap();
        let appended = store
            .append(
                "after-upgrade",
                ExpectedVersion::NoStream,
                [NewEvent::new("t", json!(1))],
            )
            .unwrap();
        assert_eq!(appended.positions, [head + 1], "v{version}");
        if version >= EVENTS_SINCE {
            check_events(&store);
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
        drop(store);
        let reopened = open(copy.path());
        assert_eq!(dump(&reopened).0.len(), 6);
        assert_eq!(reopened.read_document("after/upgrade.txt").unwrap(), b"x");
        if version >= 2 {
            assert_eq!(
                std::fs::read(copy.path().join("documents/scripts/pilot.fountain")).unwrap(),
                b"INT. HOUSE - DAY\n"
            );
        }
    }
}

#[test]
fn todays_writer_still_writes_the_current_format() {
    if std::env::var("KGSTORE_WRITE_FIXTURE").is_ok() {
        return; // the other test is rewriting the fixture
    }
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path());
    write_documents(fresh.path());
    write_events(fresh.path());
    let written = files(fresh.path());
    let committed = files(&current());
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>();
    assert_eq!(names(&written), names(&committed));
    for ((rel, a), (_, b)) in written.iter().zip(&committed) {
        if rel.starts_with("events/") {
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

#[test]
fn each_version_differs_from_the_one_before_only_in_what_it_added() {
    let v2 = files(&fixture(2));
    let v3 = files(&fixture(3));
    let without_marker = |f: &[(String, Vec<u8>)]| -> Vec<(String, Vec<u8>)> {
        f.iter()
            .filter(|(rel, _)| rel != kgstore_jsonfs::MARKER)
            .cloned()
            .collect()
    };
    assert!(without_marker(&v2) == without_marker(&v3));
    // Version 4 adds the event store's files.
    let without_events = |f: &[(String, Vec<u8>)]| -> Vec<(String, Vec<u8>)> {
        f.iter()
            .filter(|(rel, _)| rel != kgstore_jsonfs::MARKER && !rel.starts_with("events/"))
            .cloned()
            .collect()
    };
    assert!(without_events(&files(&fixture(4))) == without_marker(&v3));
    // Version 5 changes only how a one-document commit passes through `journal/`.
    assert!(without_marker(&files(&fixture(5))) == without_marker(&files(&fixture(4))));
    // Version 6 changes only what a large commit's journal holds.
    assert!(without_marker(&files(&fixture(6))) == without_marker(&files(&fixture(5))));
    // Version 1 holds the same graph, without the documents.
    let graph_only = |f: &[(String, Vec<u8>)]| -> Vec<(String, Vec<u8>)> {
        f.iter()
            .filter(|(rel, _)| {
                rel != kgstore_jsonfs::MARKER
                    && !rel.starts_with("documents/")
                    && !rel.starts_with("docmeta/")
            })
            .cloned()
            .collect()
    };
    assert!(graph_only(&files(&fixture(1))) == graph_only(&v2));
}
