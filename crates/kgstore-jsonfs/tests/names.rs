//! File names from keys: the encoding reverses, cannot escape the store's folder,
//! cannot collide when a file system folds case or normalizes Unicode, and keeps
//! every path component short; hostile names are stored and read back intact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeSet, HashSet};
use std::path::{Component, Path};

use kgstore_core::{Edge, EdgeKey, GraphRead, Node, RelationType, Store};
use kgstore_jsonfs::names::{
    HASHED_PREFIX, MAX_STEM, decode_edge_stem, decode_name, decode_node_stem, edge_path, edge_stem,
    encode_name, is_hashed, node_path, node_stem,
};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};
use proptest::prelude::*;

use common::{all_files, open};

/// Longest file name component the layout can produce (hashed stem plus `.json`).
const MAX_COMPONENT: usize = HASHED_PREFIX + 1 + 64 + ".json".len();

/// Whether a path component is safe on every common file system.
fn assert_safe_component(part: &str) {
    assert!(!part.is_empty());
    assert!(part.len() <= MAX_COMPONENT, "{} bytes: {part}", part.len());
    assert!(!part.starts_with('.'), "{part}");
    assert!(
        part.bytes().all(|b| matches!(b,
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'^' | b'%' | b',' | b'~')),
        "{part}"
    );
    // Folding case changes nothing, so no two names can meet when it is folded.
    assert_eq!(part.to_lowercase(), part);
    assert_eq!(part.to_uppercase().to_lowercase(), part);
    let base = part.split('.').next().unwrap();
    let devices = ["con", "prn", "aux", "nul"];
    assert!(!devices.contains(&base), "{part}");
    assert!(
        !(base.len() == 4
            && (base.starts_with("com") || base.starts_with("lpt"))
            && base.as_bytes()[3].is_ascii_digit()),
        "{part}"
    );
}

fn assert_safe_path(rel: &str) {
    let path = Path::new(rel);
    assert!(
        path.components().all(|c| matches!(c, Component::Normal(_))),
        "{rel}"
    );
    for part in rel.split('/') {
        assert_safe_component(part);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_reverses_encoding(name in any::<String>()) {
        let encoded = encode_name(&name);
        prop_assert_eq!(decode_name(&encoded), Some(name.clone()));
        let stem = node_stem(&name);
        if is_hashed(&stem) {
            prop_assert!(encoded.len() > MAX_STEM);
            prop_assert_eq!(decode_node_stem(&stem), None);
        } else {
            prop_assert_eq!(decode_node_stem(&stem), Some(name.clone()));
        }
        assert_safe_path(&node_path(&name));
    }

    #[test]
    fn long_names_stay_short_and_safe(name in "\\PC{100,512}") {
        assert_safe_path(&node_path(&name));
        let key = EdgeKey::new(name.clone(), RelationType::Calls, name.clone());
        assert_safe_path(&edge_path(&key));
    }

    #[test]
    fn edge_stems_reverse_when_short(from in "\\PC{1,40}", to in "\\PC{1,40}", custom in "[a-z][a-z0-9_]{0,20}") {
        let key = EdgeKey::new(from, RelationType::parse(&custom).unwrap(), to);
        let stem = edge_stem(&key);
        assert_safe_path(&edge_path(&key));
        if !is_hashed(&stem) {
            prop_assert_eq!(decode_edge_stem(&stem), Some(key));
        }
    }

    #[test]
    fn distinct_names_get_distinct_files_even_folded(a in "[a-zA-Zß.é ]{1,6}", b in "[a-zA-Zß.é ]{1,6}") {
        // Case twins, Unicode twins and the like: different names, different paths,
        // also after folding case (which leaves the paths unchanged).
        if a != b {
            prop_assert_ne!(node_path(&a).to_lowercase(), node_path(&b).to_lowercase());
        }
    }

    #[test]
    fn hashed_names_do_not_collide(a in "\\PC{190,300}", b in "\\PC{190,300}") {
        if a != b {
            prop_assert_ne!(node_stem(&a), node_stem(&b));
        }
    }
}

/// Names that have broken file-based stores: traversal, separators, reserved names,
/// case and Unicode twins, control characters, very long names.
fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "..",
        ".",
        "../",
        "../../etc/passwd",
        "/etc/passwd",
        "/",
        "a/b",
        "a\\b",
        "..\\..\\x",
        "C:\\Windows",
        "C:",
        "name:stream",
        ".git",
        ".GIT",
        ".gitignore",
        "LOCK",
        "nodes",
        "journal",
        "kgstore-jsonfs.json",
        ".tmp-1-1",
        "CON",
        "con",
        "Con",
        "nul.txt",
        "NUL",
        "COM1",
        "com1.json",
        "LPT9",
        "aux",
        "PRN.x",
        "a",
        "A",
        "straße",
        "STRASSE",
        "strasse",
        "\u{e9}",
        "e\u{301}",
        "\u{c5}",
        "\u{212b}",
        "A\u{30a}",
        "\u{fb01}",
        "fi",
        "\u{130}",
        "i",
        "I",
        " leading",
        "trailing ",
        "trailing.",
        "..hidden",
        "%",
        "%2e",
        "%41",
        "^a",
        "~",
        "a,b,c",
        "x,calls,y",
        "*?<>|\"",
        "\u{202e}gnp.exe",
        "\u{200d}",
        "\u{feff}bom",
        "\u{ff23}\u{ff2f}\u{ff2e}",
        "日本語の名前",
        "🦀 crab",
        "tab\tname",
        "new\nline",
        "nul\0byte",
        "bell\u{7}",
        "del\u{7f}",
        "esc\u{1b}[31m",
        "\u{85}next line",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("x".repeat(512));
    names.push("X".repeat(512));
    names.push("é".repeat(256));
    names.push("/".repeat(512));
    names.push(format!("{}a", "é".repeat(255)));
    names.push(format!("{}b", "é".repeat(255)));
    names
}

#[test]
fn hostile_names_are_stored_and_read_back_intact_inside_the_folder() {
    let names = hostile_names();
    assert!(names.len() >= 40, "{}", names.len());
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    // Raw backend writes, so that names the store's rules refuse (control
    // characters) still prove the encoding; edges join every name to the next.
    {
        let backend = JsonFsBackend::open(&root, JsonFsOptions::default()).unwrap();
        let store = Store::new(backend);
        let mut txn = store.backend().begin_write().unwrap();
        for name in &names {
            txn.put_node(&Node {
                name: name.clone(),
                ..Node::new("n", "thing").unwrap()
            })
            .unwrap();
        }
        for pair in names.windows(2) {
            let edge = Edge {
                from: pair[0].clone(),
                to: pair[1].clone(),
                ..Edge::new("a", RelationType::RelatesTo, "b").unwrap()
            };
            txn.put_edge(&edge).unwrap();
        }
        txn.commit().unwrap();
    }
    // Read back raw too, after a reopen: the store refuses lookups of invalid names.
    let store = open(&root);
    let read = store.backend().begin_read().unwrap();
    assert_eq!(read.count_nodes().unwrap(), names.len() as u64);
    assert_eq!(read.count_edges().unwrap(), names.len() as u64 - 1);
    for name in &names {
        let node = read.get_node(name).unwrap();
        assert_eq!(node.map(|n| n.name).as_ref(), Some(name));
    }
    for pair in names.windows(2) {
        let key = EdgeKey::new(pair[0].clone(), RelationType::RelatesTo, pair[1].clone());
        assert!(read.get_edge(&key).unwrap().is_some(), "{key}");
    }
    drop(read);
    // Every file is inside the store's folder, one per entity, where its key says.
    let files = all_files(&root);
    let entity_files: BTreeSet<_> = files
        .iter()
        .filter(|p| p.starts_with(root.join("nodes")) || p.starts_with(root.join("edges")))
        .collect();
    assert_eq!(entity_files.len(), 2 * names.len() - 1);
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap().to_str().unwrap();
        if rel.starts_with("nodes/") || rel.starts_with("edges/") {
            assert_safe_path(rel);
        }
    }
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, ["store"]);
    assert!(store.backend().check().unwrap().is_empty());
}

#[test]
fn valid_hostile_names_pass_through_the_store_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let names: Vec<String> = hostile_names()
        .into_iter()
        .filter(|n| kgstore_core::validate::name(n).is_ok())
        .collect();
    assert!(names.len() >= 40, "{}", names.len());
    store
        .create_nodes(names.iter().map(|n| Node::new(n.clone(), "thing").unwrap()))
        .unwrap();
    drop(store);
    let store = open(dir.path());
    for name in &names {
        assert_eq!(&store.get_node(name).unwrap().name, name);
    }
    assert!(store.check().unwrap().is_ok());
}
