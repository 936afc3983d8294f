//! The in-memory search index of a handle kept open while another handle (here
//! in the same process; another process is the same path through the log)
//! commits: the changes it reads from the store at its next transaction update
//! its index as well as its graph.
#![allow(clippy::unwrap_used)]

mod common;

use common::open;
use kgstore_core::{GraphRead, Node, OnDependents, SearchQuery};

#[test]
fn a_handle_kept_open_searches_the_others_commits() {
    let dir = tempfile::tempdir().unwrap();
    let kept = open(dir.path());
    let writer = open(dir.path());
    let names = |store: &kgstore_core::Store, text: &str| -> Vec<String> {
        let page = store.search(&SearchQuery::new(text).limit(50)).unwrap();
        page.items.into_iter().map(|h| h.name).collect()
    };
    assert!(names(&kept, "tea").is_empty());

    writer
        .create_node(
            Node::new("Alice_Smith", "person")
                .unwrap()
                .with_observation("Drinks green tea"),
        )
        .unwrap();
    writer
        .create_node(
            Node::new("Café Lumière", "place")
                .unwrap()
                .with_observation("Serves tea"),
        )
        .unwrap();
    assert_eq!(names(&kept, "alice TEA"), ["Alice_Smith", "Café Lumière"]);
    assert_eq!(names(&kept, "cafe"), ["Café Lumière"]);

    // A replaced node is found by its new words only; a deleted one not at all.
    let mut alice = writer.get_node("Alice_Smith").unwrap();
    alice.observations = vec!["Prefers coffee".into()];
    writer.update_node(alice, None).unwrap();
    writer
        .delete_node("Café Lumière", OnDependents::Refuse)
        .unwrap();
    assert!(names(&kept, "tea").is_empty());
    assert_eq!(names(&kept, "coffee"), ["Alice_Smith"]);

    // The kept handle ranks exactly as the writer and a fresh open do.
    for text in ["alice", "coffee smith", "pre", ""] {
        let fresh = open(dir.path());
        let query = SearchQuery::new(text);
        let mine = kept.search(&query).unwrap();
        assert_eq!(mine, writer.search(&query).unwrap(), "{text:?}");
        assert_eq!(mine, fresh.search(&query).unwrap(), "{text:?}");
    }
    assert!(kept.check().unwrap().is_ok());
}
