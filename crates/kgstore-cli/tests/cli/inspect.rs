//! `kgstore check --without-opening`: every damaged file of a json:// store that
//! an open refuses, listed without opening it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Kg;

/// More damaged files than an open's refusal lists (20).
const DAMAGED: usize = 24;

/// Every file and folder under `root`, with its bytes and modification time.
fn tree(root: &Path) -> BTreeMap<PathBuf, (std::time::SystemTime, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let bytes = if meta.is_dir() {
                stack.push(path.clone());
                Vec::new()
            } else {
                std::fs::read(&path).unwrap()
            };
            out.insert(path, (meta.modified().unwrap(), bytes));
        }
    }
    out
}

/// A json:// store of `nodes` nodes, written with an import.
fn json_store(nodes: usize) -> Kg {
    let kg = Kg::json();
    let lines: String = (0..nodes)
        .map(|i| format!("{{\"name\":\"n{i:02}\",\"node_type\":\"thing\"}}\n"))
        .collect();
    kg.run_with_input(&["import", "-"], &lines).ok();
    kg
}

/// The node files of the store, sorted.
fn node_files(kg: &Kg) -> Vec<PathBuf> {
    tree(&kg.path("kg").join("nodes"))
        .into_keys()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

#[test]
fn check_without_opening_lists_every_damaged_file_of_a_refused_store() {
    let kg = json_store(DAMAGED + 3);
    let mut damaged = node_files(&kg);
    damaged.truncate(DAMAGED);
    for file in &damaged {
        std::fs::write(file, "{ \"name\": ").unwrap();
    }
    // Every command opens the store first, `check` too: refused, 20 listed, and
    // the way to see the rest named.
    for args in [&["stats"][..], &["check"]] {
        let line = kg.run(args).fails(6, "and 4 more").to_owned();
        assert!(line.contains("kgstore check --without-opening"), "{line}");
    }
    // The store's folder is read-only (as root, which tests may run as, the
    // permissions stop nothing: the tree compared before and after does).
    let root = kg.path("kg");
    let before = tree(&root);
    let set_read_only = |read_only: bool| {
        for path in tree(&root).keys().chain([&root]) {
            let mut permissions = std::fs::metadata(path).unwrap().permissions();
            permissions.set_readonly(read_only);
            std::fs::set_permissions(path, permissions).unwrap();
        }
    };
    set_read_only(true);
    let run = kg.run(&["check", "--without-opening"]);
    let json = kg.run(&["--json", "check", "--without-opening"]);
    set_read_only(false);
    assert_eq!(tree(&root), before, "nothing written, created or removed");
    run.fails(6, &format!("{DAMAGED} damaged file(s)"));
    let lines: Vec<&str> = run.stdout.lines().collect();
    let listed: Vec<PathBuf> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("damaged: "))
        .map(|l| {
            let (path, reason) = l.split_once(": ").unwrap();
            assert!(reason.contains("does not parse as a node"), "{l}");
            PathBuf::from(path)
        })
        .collect();
    assert_eq!(listed, damaged);
    let summary = lines.last().unwrap();
    assert!(
        summary.contains(&format!(
            "{DAMAGED} damaged file(s): the store is not opened"
        )),
        "{summary}"
    );
    // --json: the same list, and an error line on stderr.
    assert_eq!(json.code, 6, "{json:#?}");
    let value: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["opens"], false);
    let locations: Vec<PathBuf> = value["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p["location"].as_str().unwrap()))
        .collect();
    assert_eq!(locations, damaged);
    // Fixed (removed), the store opens again.
    for file in &damaged {
        std::fs::remove_file(file).unwrap();
    }
    kg.run(&["check"]).ok();
}

#[test]
fn check_without_opening_says_a_healthy_store_opens() {
    let kg = json_store(3);
    let root = kg.path("kg");
    let before = tree(&root);
    let out = kg.run(&["check", "--without-opening"]).ok().to_owned();
    assert!(out.contains("no damaged files: the store opens"), "{out}");
    assert!(!out.contains("damaged: "), "{out}");
    let value = kg.json_of(&["check", "--without-opening"]);
    assert_eq!(value["opens"], true);
    assert_eq!(value["damaged"], Value::Array(Vec::new()));
    assert_eq!(tree(&root), before);
}

#[test]
fn check_without_opening_refuses_other_backends_and_missing_stores() {
    let kg = Kg::sqlite();
    kg.run(&["init"]).ok();
    kg.run(&["check", "--without-opening"])
        .fails(2, "json:// stores only");
    let missing = Kg::json();
    missing
        .run(&["check", "--without-opening"])
        .fails(2, "does not exist");
    assert!(!missing.path("kg").exists());
    let kg = json_store(1);
    kg.run(&["--at", "HEAD", "check", "--without-opening"])
        .fails(2, "--at");
}
