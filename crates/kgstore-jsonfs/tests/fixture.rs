//! The committed stores of format version 1 (`tests/fixtures/v1`, before documents)
//! and 2 (`tests/fixtures/v2`, with documents) must keep opening with the same
//! content, and today's writer must still write exactly the files of the newest: a
//! change of format shows up here and needs a new version and a new fixture.
//!
//! `KGSTORE_WRITE_FIXTURE=1 cargo test -p kgstore-jsonfs --test fixture` rewrites v2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use kgstore_core::suite::dump;
use kgstore_core::{
    DocumentQuery, DocumentRead, Edge, Node, RelationType, SchemaTarget, Store, Timestamp,
};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};
use serde_json::json;

use common::{all_files, open};

fn fixture_v1() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2")
}

/// The documents of the v2 fixture, with fixed times: a script, a hostile key,
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

fn copy_fixture(from: &Path, to: &Path) {
    for (rel, bytes) in files(from) {
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

#[test]
fn format_v1_fixture_opens_with_its_content_and_becomes_v2() {
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path());
    let copy = tempfile::tempdir().unwrap();
    copy_fixture(&fixture_v1(), copy.path());
    let read_only = Store::new(
        JsonFsBackend::open(copy.path(), JsonFsOptions::default().read_only(true)).unwrap(),
    );
    assert!(dump(&read_only) == dump(&open(fresh.path())));
    assert_eq!(read_only.count_documents().unwrap(), 0);
    drop(read_only);
    let marker = copy.path().join("kgstore-jsonfs.json");
    assert!(
        std::fs::read_to_string(&marker)
            .unwrap()
            .contains("\"version\": 1")
    );
    let store = open(copy.path());
    assert!(dump(&store) == dump(&open(fresh.path())));
    assert_eq!(dump(&store).0.len(), 5);
    assert!(store.check().unwrap().is_ok());
    assert!(
        std::fs::read_to_string(&marker)
            .unwrap()
            .contains("\"version\": 2")
    );
    store.write_document("after/upgrade.txt", "x").unwrap();
}

#[test]
fn format_v2_fixture_opens_with_its_content() {
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path());
    write_documents(fresh.path());
    if std::env::var("KGSTORE_WRITE_FIXTURE").is_ok() {
        let _ = std::fs::remove_dir_all(fixture());
        for (rel, bytes) in files(fresh.path()) {
            let dest = fixture().join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, bytes).unwrap();
        }
    }
    let copy = tempfile::tempdir().unwrap();
    copy_fixture(&fixture(), copy.path());
    let store = open(copy.path());
    let fresh = open(fresh.path());
    assert!(dump(&store) == dump(&fresh));
    assert_eq!(dump(&store).0.len(), 5);
    let keys = |s: &Store| {
        let page = s.list_documents(&DocumentQuery::default()).unwrap();
        page.documents
    };
    assert_eq!(keys(&store), keys(&fresh));
    assert_eq!(keys(&store).len(), 4);
    for meta in keys(&fresh) {
        assert_eq!(
            store.read_document(&meta.key).unwrap(),
            fresh.read_document(&meta.key).unwrap()
        );
    }
    assert_eq!(
        std::fs::read(copy.path().join("documents/scripts/pilot.fountain")).unwrap(),
        b"INT. HOUSE - DAY\n"
    );
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn todays_writer_still_writes_format_v2() {
    if std::env::var("KGSTORE_WRITE_FIXTURE").is_ok() {
        return; // the other test is rewriting the fixture
    }
    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path());
    write_documents(fresh.path());
    let written = files(fresh.path());
    let committed = files(&fixture());
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>();
    assert_eq!(names(&written), names(&committed));
    for ((rel, a), (_, b)) in written.iter().zip(&committed) {
        assert!(a == b, "{rel} differs from the committed fixture");
    }
}
