//! `kgstore_jsonfs::inspect`: a store's folder looked at without opening it —
//! every damaged file of a store an open refuses, read-only, without any lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kgstore_core::{Edge, EdgeKey, ErrorKind, Node, RelationType, Severity, Store};
use kgstore_jsonfs::names::{edge_path, node_path};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions, inspect};

use common::open;

/// More damaged files than an open's refusal lists (20).
const DAMAGED: usize = 27;

/// Every file and folder under `root`: its length, modification time and bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, (u64, SystemTime, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let bytes = if meta.is_dir() {
                stack.push(path.clone());
                Vec::new()
            } else {
                fs::read(&path).unwrap()
            };
            out.insert(path, (meta.len(), meta.modified().unwrap(), bytes));
        }
    }
    out
}

/// A store of `nodes` nodes `n00`, `n01`, … and three more, `h0` calling `h1`
/// calling `h2`, closed.
fn store_of(path: &Path, nodes: usize) {
    let store: Store = open(path);
    store
        .write(|tx| {
            for i in 0..nodes {
                tx.create_node(Node::new(format!("n{i:02}"), "thing")?)?;
            }
            for h in ["h0", "h1", "h2"] {
                tx.create_node(Node::new(h, "thing")?)?;
            }
            tx.create_edge(Edge::new("h0", RelationType::Calls, "h1")?)?;
            tx.create_edge(Edge::new("h1", RelationType::Calls, "h2")?)?;
            Ok(())
        })
        .unwrap();
}

/// Damages the files of nodes `n00`… (they no longer parse) and removes `h2`'s
/// file, which the edge from `h1` names (an integrity break): `DAMAGED` in all.
/// Adds two stray files (in `nodes/` and `journal/`). The paths of the damaged
/// files, sorted.
fn damage(path: &Path) -> Vec<PathBuf> {
    let mut damaged = Vec::new();
    for i in 0..DAMAGED - 1 {
        let file = path.join(node_path(&format!("n{i:02}")));
        fs::write(&file, "{ \"name\": ").unwrap();
        damaged.push(file);
    }
    fs::remove_file(path.join(node_path("h2"))).unwrap();
    damaged.push(path.join(edge_path(&EdgeKey::new("h1", RelationType::Calls, "h2"))));
    fs::write(path.join("nodes/notes.txt"), "mine").unwrap();
    fs::write(path.join("journal/notes.txt"), "mine too").unwrap();
    damaged.sort();
    damaged
}

#[test]
fn every_damaged_file_of_a_refused_store_is_listed_without_opening_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    store_of(&path, DAMAGED + 5);
    let damaged = damage(&path);
    // The open lists 20 and says how to see the rest.
    let refused = JsonFsBackend::open(&path, JsonFsOptions::default()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Corrupt);
    let text = refused.to_string();
    assert!(
        text.contains(&format!("{DAMAGED} problems found")),
        "{text}"
    );
    assert!(
        text.contains(&format!("and {} more", DAMAGED - 20)),
        "{text}"
    );
    assert!(text.contains("kgstore check --without-opening"), "{text}");
    assert!(text.contains("kgstore_jsonfs::inspect"), "{text}");
    let before = tree(&path);
    let found = inspect(&path).unwrap();
    // Every one, by path, with its reason.
    let listed: Vec<PathBuf> = found
        .damaged
        .iter()
        .map(|p| PathBuf::from(&p.location))
        .collect();
    assert_eq!(listed, damaged);
    for problem in &found.damaged {
        assert_eq!(problem.severity, Severity::Error);
        let expected = if problem.location.contains("/edges/") {
            "does not exist"
        } else {
            "does not parse as a node"
        };
        assert!(problem.detail.contains(expected), "{problem}");
    }
    assert!(!found.opens());
    // The strays (one among the nodes, one in journal/) do not keep the store
    // from opening: problems, not damage.
    assert_eq!(found.problems.len(), 2, "{:?}", found.problems);
    assert!(found.problems[0].location.ends_with("journal/notes.txt"));
    assert!(found.problems[1].location.ends_with("nodes/notes.txt"));
    for problem in &found.problems {
        assert!(problem.detail.contains("stray"), "{problem}");
    }
    // Nothing was written, created, removed or touched.
    assert_eq!(tree(&path), before);
    // Once the damaged files are fixed (here: removed, the edge too), it opens.
    for file in &damaged {
        fs::remove_file(file).unwrap();
    }
    fs::remove_file(path.join("nodes/notes.txt")).unwrap();
    let found = inspect(&path).unwrap();
    assert!(found.damaged.is_empty(), "{:?}", found.damaged);
    drop(JsonFsBackend::open(&path, JsonFsOptions::default()).unwrap());
}

#[test]
fn a_healthy_store_is_said_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    store_of(&path, 5);
    let before = tree(&path);
    let found = inspect(&path).unwrap();
    assert!(found.opens() && found.is_ok(), "{found:?}");
    assert!(found.damaged.is_empty() && found.problems.is_empty());
    assert!(found.notes.is_empty(), "{:?}", found.notes);
    assert_eq!(tree(&path), before);
}

/// A folder whose permissions forbid writing (as root, which these tests may run
/// as, they do not stop a write: the tree compared before and after does), and a
/// writer at work in this very process, holding the store's lock: the inspection
/// neither writes nor waits for the lock.
#[test]
fn a_read_only_folder_and_a_writer_at_work_are_inspected_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    store_of(&path, DAMAGED);
    let damaged = damage(&path);
    let before = tree(&path);
    let set_read_only = |read_only: bool| {
        for file in tree(&path).keys().chain([&path]) {
            let mut permissions = fs::metadata(file).unwrap().permissions();
            permissions.set_readonly(read_only);
            fs::set_permissions(file, permissions).unwrap();
        }
    };
    set_read_only(true);
    let found = inspect(&path);
    set_read_only(false);
    let found = found.unwrap();
    assert_eq!(found.damaged.len(), damaged.len());
    assert_eq!(tree(&path), before);

    // A healthy store with a write transaction open (the lock held) in this process.
    let healthy = dir.path().join("healthy");
    store_of(&healthy, 3);
    let store = open(&healthy);
    let inside = store
        .write(|tx| {
            tx.create_node(Node::new("pending", "thing")?)?;
            Ok(inspect(&healthy))
        })
        .unwrap()
        .unwrap();
    assert!(inside.is_ok(), "{inside:?}");
}

#[test]
fn a_folder_without_a_store_or_a_file_in_its_place_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = inspect(&empty).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("has no store to read"), "{err}");
    // Nothing was created in it.
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
    let missing = inspect(dir.path().join("missing")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Io, "{missing}");
    assert!(!dir.path().join("missing").exists());
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let err = inspect(&file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}
