//! The image snapshot (`journal/log/snapshot`): a store closed by a writable
//! handle reopens from it, and any change since, or any damage, makes the open
//! read every file instead, with exactly the content a full read gives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use kgstore_core::{Edge, GraphRead, Node, RelationType, SchemaTarget, Store};
use kgstore_jsonfs::names::node_path;
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions, LOG_DIR};
use serde_json::json;

use common::{leftovers, state};

fn snapshot_file(path: &Path) -> PathBuf {
    path.join(LOG_DIR).join("snapshot")
}

/// Opens the store; whether it came from the snapshot.
fn open(path: &Path, options: JsonFsOptions) -> (Store, bool) {
    let backend = JsonFsBackend::open(path, options).unwrap();
    let from = backend.opened_from_snapshot();
    (Store::new(backend), from)
}

/// A store with nodes (one with a name long enough to be hashed), edges, a
/// schema, an event and a document, closed.
fn sample(path: &Path) {
    let (store, _) = open(path, JsonFsOptions::default());
    let long = "L".repeat(300);
    store
        .write(|tx| {
            tx.set_schema(
                SchemaTarget::NodeType("crate".into()),
                json!({"type": "object", "properties": {"n": {"type": "integer"}}}),
            )?;
            for i in 0..40 {
                let mut node = Node::new(format!("n{i:02}"), "crate")?
                    .with_attribute("n", json!(i))
                    .with_observation(format!("node number {i}"));
                if i > 0 {
                    node = node.with_dependency(format!("n{:02}", i - 1));
                }
                tx.create_node(node)?;
            }
            tx.create_node(Node::new(long.as_str(), "thing")?)?;
            for i in 0..39 {
                tx.create_edge(
                    Edge::new(
                        format!("n{i:02}"),
                        RelationType::Calls,
                        format!("n{:02}", i + 1),
                    )?
                    .with_weight(f64::from(i) / 7.0),
                )?;
            }
            tx.create_edge(
                Edge::new(long.as_str(), RelationType::DependsOn, "n00")?.bidirectional(),
            )?;
            Ok(())
        })
        .unwrap();
    store
        .append(
            "log",
            kgstore_core::events::ExpectedVersion::Any,
            [kgstore_core::events::NewEvent::new(
                "made",
                json!({"n": 40}),
            )],
        )
        .unwrap();
    store.write_document("notes/readme.md", b"hello").unwrap();
    drop(store);
    assert!(
        snapshot_file(path).is_file(),
        "closing a written store writes its snapshot"
    );
}

/// What a full read of every file gives (the snapshot moved aside meanwhile).
fn full_read(path: &Path) -> common::Dump {
    let file = snapshot_file(path);
    let aside = path.join("snapshot-aside");
    let moved = fs::rename(&file, &aside).is_ok();
    let (store, from) = open(path, JsonFsOptions::default().read_only(true));
    assert!(!from);
    let dump = state(&store);
    drop(store);
    if moved {
        fs::rename(&aside, &file).unwrap();
    }
    dump
}

#[test]
fn a_closed_store_reopens_from_its_snapshot_with_what_every_file_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kg");
    sample(&path);
    let expected = full_read(&path);
    let backend = JsonFsBackend::open(&path, JsonFsOptions::default()).unwrap();
    assert!(backend.opened_from_snapshot());
    assert_eq!(backend.full_reads(), 0);
    let store = Store::new(backend);
    assert_eq!(state(&store), expected);
    assert!(
        store.check().unwrap().is_ok(),
        "{:?}",
        store.check().unwrap()
    );
    assert_eq!(store.resolve_dependencies("n05").unwrap().len(), 5);
    let hits = store
        .search(&kgstore_core::SearchQuery::new("number"))
        .unwrap();
    assert!(hits.items.iter().any(|hit| hit.name == "n07"), "{hits:?}");
    // It takes writes, and its next close writes the snapshot again.
    store
        .create_node(Node::new("later", "crate").unwrap())
        .unwrap();
    drop(store);
    let (store, from) = open(&path, JsonFsOptions::default().read_only(true));
    assert!(from);
    assert!(store.contains_node("later").unwrap());
    assert_eq!(state(&store), full_read(&path));
    assert!(leftovers(&path).is_empty(), "{:?}", leftovers(&path));
}

/// Edits the node file of `name` in place, keeping its size (and, being fast,
/// likely its times' clock tick): a digit of its attribute changes.
fn edit_in_place(path: &Path, name: &str, from: &str, to: &str) {
    let file = path.join(node_path(name));
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(from.len(), to.len());
    let edited = text.replacen(from, to, 1);
    assert_ne!(edited, text);
    // Written over the old bytes, in the same file (as an editor saving in
    // place does): the same inode and size.
    let mut file = fs::OpenOptions::new().write(true).open(&file).unwrap();
    std::io::Write::write_all(&mut file, edited.as_bytes()).unwrap();
}

#[test]
fn hand_edits_while_closed_are_read_as_without_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kg");
    sample(&path);
    // In place, same size, right after the close.
    edit_in_place(&path, "n07", "\"n\": 7", "\"n\": 8");
    let (store, from) = open(&path, JsonFsOptions::default());
    assert!(!from, "an edited file is not hidden by the snapshot");
    assert_eq!(store.get_node("n07").unwrap().attributes["n"], json!(8));
    drop(store);
    // A new node file.
    let (store, from) = open(&path, JsonFsOptions::default());
    assert!(from);
    let other = tempfile::tempdir().unwrap();
    let (scratch, _) = open(&other.path().join("kg"), JsonFsOptions::default());
    scratch
        .create_node(Node::new("by_hand", "crate").unwrap())
        .unwrap();
    drop(scratch);
    drop(store);
    let target = path.join(node_path("by_hand"));
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::copy(other.path().join("kg").join(node_path("by_hand")), &target).unwrap();
    let (store, from) = open(&path, JsonFsOptions::default());
    assert!(!from);
    assert!(store.contains_node("by_hand").unwrap());
    drop(store);
    // A removed file: the node goes, as a full read has it.
    fs::remove_file(&target).unwrap();
    let (store, from) = open(&path, JsonFsOptions::default());
    assert!(!from);
    assert!(!store.contains_node("by_hand").unwrap());
    drop(store);
    // An edit that breaks the store is refused, as without a snapshot.
    let (store, from) = open(&path, JsonFsOptions::default());
    assert!(from);
    drop(store);
    fs::write(path.join(node_path("n03")), "{ not json").unwrap();
    let err = JsonFsBackend::open(&path, JsonFsOptions::default()).unwrap_err();
    assert!(err.to_string().contains("does not parse"), "{err}");
}

#[test]
fn a_hand_edit_while_the_store_is_open_is_not_hidden_by_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kg");
    sample(&path);
    let (store, _) = open(&path, JsonFsOptions::default());
    store
        .update_node(
            Node::new("n09", "crate")
                .unwrap()
                .with_attribute("n", json!(1)),
            None,
        )
        .unwrap();
    // Within a clock tick of the commit's own write of the file, same size.
    edit_in_place(&path, "n09", "\"n\": 1", "\"n\": 2");
    drop(store);
    let (store, _) = open(&path, JsonFsOptions::default());
    assert_eq!(store.get_node("n09").unwrap().attributes["n"], json!(2));
}

#[test]
fn another_handles_commit_makes_the_snapshot_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kg");
    sample(&path);
    let (a, from) = open(&path, JsonFsOptions::default());
    assert!(from);
    let (b, _) = open(&path, JsonFsOptions::default());
    b.create_node(Node::new("from_b", "crate").unwrap())
        .unwrap();
    // `a` applies b's commit from the log: it has not seen b's file, so its
    // close writes no snapshot; b stops without closing (a killed process).
    assert!(a.contains_node("from_b").unwrap());
    drop(a);
    std::mem::forget(b);
    let (store, from) = open(&path, JsonFsOptions::default());
    assert!(!from, "the snapshot is of an older generation");
    assert!(store.contains_node("from_b").unwrap());
    assert_eq!(state(&store), full_read(&path));
}

#[test]
fn a_damaged_truncated_foreign_or_stale_snapshot_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kg");
    sample(&path);
    let expected = full_read(&path);
    let good = fs::read(snapshot_file(&path)).unwrap();
    let check = |bytes: &[u8], what: &str| {
        fs::write(snapshot_file(&path), bytes).unwrap();
        let (store, from) = open(&path, JsonFsOptions::default().read_only(true));
        assert!(!from, "{what}: the snapshot was used");
        assert_eq!(state(&store), expected, "{what}");
    };
    check(&good[..good.len() / 2], "truncated");
    check(&good[..good.len() - 1], "one byte short");
    check(&[], "empty");
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    check(&flipped, "a flipped bit");
    // Another layout version (the checksum made right again).
    let mut foreign = good[..good.len() - 32].to_vec();
    foreign[24] = foreign[24].wrapping_add(1);
    let digest = sha256(&foreign);
    foreign.extend_from_slice(&digest);
    check(&foreign, "another snapshot format");
    // The snapshot of another store (same content, other files).
    let other = tempfile::tempdir().unwrap();
    sample(&other.path().join("kg"));
    let theirs = fs::read(snapshot_file(&other.path().join("kg"))).unwrap();
    check(&theirs, "another store's");
    // Not a file at all.
    fs::remove_file(snapshot_file(&path)).unwrap();
    fs::create_dir(snapshot_file(&path)).unwrap();
    let (store, from) = open(&path, JsonFsOptions::default());
    assert!(!from);
    assert_eq!(state(&store), expected);
    drop(store);
    fs::remove_dir(snapshot_file(&path)).unwrap();
    // And the good one is used again.
    fs::write(snapshot_file(&path), &good).unwrap();
    let (store, from) = open(&path, JsonFsOptions::default().read_only(true));
    assert!(from);
    assert_eq!(state(&store), expected);
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

#[test]
fn a_read_only_handle_uses_the_snapshot_but_never_writes_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kg");
    sample(&path);
    fs::remove_file(snapshot_file(&path)).unwrap();
    let (store, from) = open(&path, JsonFsOptions::default().read_only(true));
    assert!(!from);
    drop(store);
    assert!(!snapshot_file(&path).exists());
    // A writable handle that wrote nothing writes it at close (it read every file).
    let (store, _) = open(&path, JsonFsOptions::default());
    drop(store);
    assert!(snapshot_file(&path).exists());
    let written = fs::metadata(snapshot_file(&path))
        .unwrap()
        .modified()
        .unwrap();
    // Reopened from it, unchanged: not written again.
    let (store, from) = open(&path, JsonFsOptions::default());
    assert!(from);
    drop(store);
    assert_eq!(
        fs::metadata(snapshot_file(&path))
            .unwrap()
            .modified()
            .unwrap(),
        written
    );
}
