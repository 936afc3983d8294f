//! Helpers shared by the screenplay tests: stores on every backend that holds
//! documents, the demo screenplay, and a snapshot of everything a store holds.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use kgstore::{DocumentQuery, DocumentRead, EdgeFilter, GraphRead, NodeFilter, PageRequest, Store};
use kgstore_screenplay::{ImportOptions, Source, read_sources};
use tempfile::TempDir;

/// A store and the folder that keeps it alive.
pub struct TestStore {
    pub store: Store,
    pub _dir: TempDir,
    pub url: String,
}

/// Every backend: all of them hold documents (git:// since issue 14).
pub const BACKENDS: &[&str] = &["memory", "sqlite", "json", "git"];

pub fn open(backend: &str) -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        "memory" => "memory://".to_owned(),
        "sqlite" => format!("sqlite://{}/kg.db", dir.path().display()),
        "json" => format!("json://{}/kg", dir.path().display()),
        "git" => format!("git://{}/kg.git", dir.path().display()),
        other => panic!("no backend {other}"),
    };
    let store = kgstore::open(&url).unwrap();
    TestStore {
        store,
        _dir: dir,
        url,
    }
}

pub fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/screenplay")
}

pub fn demo_sources() -> Vec<Source> {
    read_sources(&[demo_dir()]).unwrap()
}

pub fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(demo_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn import_demo(store: &Store) {
    let report =
        kgstore_screenplay::import(store, &demo_sources(), &ImportOptions::default()).unwrap();
    assert_eq!(report.scripts.len(), 3);
}

/// Everything a store holds, with versions: nodes, edges and document metadata.
pub fn snapshot(store: &Store) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let page = PageRequest::first(100_000);
    for n in store
        .list_nodes(&NodeFilter::default(), &page)
        .unwrap()
        .items
    {
        out.insert(
            format!("node {}", n.name),
            serde_json::to_string(&n).unwrap(),
        );
    }
    for e in store
        .list_edges(&EdgeFilter::default(), &page)
        .unwrap()
        .items
    {
        let k = e.key();
        out.insert(
            format!("edge {} {} {}", k.from, k.relation_type.as_str(), k.to),
            serde_json::to_string(&e).unwrap(),
        );
    }
    let docs = store
        .list_documents(&DocumentQuery::prefix("").page(PageRequest::first(100_000)))
        .unwrap();
    for d in docs.documents {
        out.insert(format!("doc {}", d.key), serde_json::to_string(&d).unwrap());
    }
    out
}
