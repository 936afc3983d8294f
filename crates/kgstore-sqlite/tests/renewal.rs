//! The writer connection is replaced after a write that grew FTS5's in-memory
//! tables of pending terms (issue 18, single durable commits after a bulk load):
//! FTS5's tables only grow, and every later commit walks them whole, so a store
//! that once loaded 100,000 nodes committed single nodes 18 times slower than a
//! lean table. Counted through `Store::metrics`, never timed; and a replacement
//! that cannot open its new connection keeps the old one, losing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{store, temp_db};
use kgstore_core::{GraphRead, Node, SearchQuery, Store};

/// Nodes with distinct words: each adds terms to the search index.
fn node(i: usize) -> Node {
    Node::new(format!("n{i}"), "thing")
        .unwrap()
        .with_observation(format!("word{i} other{i}"))
}

/// More nodes in one transaction than `search::HASH_ENTRIES_RENEWED` entries.
const LARGE: usize = 3_000;

fn renewals(store: &Store) -> (u64, u64) {
    let m = store.metrics();
    (
        m.backend_figure("writer_renewals").unwrap(),
        m.backend_figure("writer_renewal_failures").unwrap(),
    )
}

fn finds(store: &impl GraphRead, word: &str, name: &str) -> bool {
    store
        .search(&SearchQuery::new(word))
        .unwrap()
        .items
        .iter()
        .any(|h| h.name == name)
}

#[test]
fn a_large_write_replaces_the_writer_connection_and_small_ones_do_not() {
    let (_dir, path) = temp_db();
    let store = store(&path);
    store.create_nodes((0..100).map(node)).unwrap();
    for i in 100..110 {
        store.create_node(node(i)).unwrap();
    }
    assert_eq!(renewals(&store), (0, 0), "small writes keep the connection");

    store.create_nodes((110..110 + LARGE).map(node)).unwrap();
    // A load is indexed later (format 8): by the first search, which grows
    // FTS5's tables on the writer connection in a write transaction of its own.
    assert_eq!(
        renewals(&store),
        (0, 0),
        "a load is not indexed at its commit"
    );
    assert!(finds(&store, "word2000", "n2000"));
    assert_eq!(
        renewals(&store),
        (1, 0),
        "indexing the load replaces it once"
    );
    assert_eq!(store.metrics().backend_figure("search_catch_ups"), Some(1));
    for i in 110 + LARGE..120 + LARGE {
        store.create_node(node(i)).unwrap();
    }
    assert_eq!(renewals(&store), (1, 0));

    // A large write that rolls back before its index rows reached FTS5 grew nothing.
    let rolled_back = |search: bool| {
        store.write(|tx| {
            for i in 0..LARGE {
                tx.create_node(node(100_000 + i))?;
            }
            if search {
                // Searching its own writes hands them to FTS5 first.
                assert!(finds(tx, "word100001", "n100001"));
            }
            Err::<(), _>(kgstore_core::Error::invalid_input("the test", "stops here"))
        })
    };
    assert!(rolled_back(false).is_err());
    assert_eq!(renewals(&store), (1, 0));
    // One that searched its own writes grew the tables all the same.
    assert!(rolled_back(true).is_err());
    assert_eq!(renewals(&store), (2, 0));

    // The fresh connections write and search as the old one did.
    store.create_node(node(50_000)).unwrap();
    assert_eq!(store.count_nodes().unwrap(), (121 + LARGE) as u64);
    assert!(finds(&store, "word50000", "n50000"));
    assert!(finds(&store, "other2000", "n2000"));
    assert!(!finds(&store, "word100001", "n100001"));
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn maintenance_replaces_the_writer_connection() {
    let (_dir, path) = temp_db();
    let store = store(&path);
    store.create_nodes((0..10).map(node)).unwrap();
    store.optimize().unwrap();
    assert_eq!(renewals(&store), (1, 0));
}

/// The replacement cannot open its new connection (the file was moved away while
/// the store had it open): the old connection goes on, nothing is lost, and the
/// replacement happens after a later write once the file can be opened again.
#[test]
fn a_failed_replacement_keeps_the_old_connection_and_loses_nothing() {
    let (dir, path) = temp_db();
    let moved = dir.path().join("moved.db");
    let store = store(&path);
    store.create_node(node(0)).unwrap();
    store
        .write(|tx| {
            for i in 1..=LARGE {
                tx.create_node(node(i))?;
            }
            // Searching its own writes indexes them, growing FTS5's tables.
            assert!(finds(tx, "word1500", "n1500"));
            // The commit writes through the connection's open files; opening a
            // new connection at `path` then fails.
            std::fs::rename(&path, &moved).unwrap();
            Ok(())
        })
        .unwrap();
    assert_eq!(renewals(&store), (0, 1));
    std::fs::rename(&moved, &path).unwrap();

    // The kept connection writes; the replacement is due and now succeeds.
    store.create_node(node(LARGE + 1)).unwrap();
    assert_eq!(renewals(&store), (1, 1));
    store.create_node(node(LARGE + 2)).unwrap();
    assert_eq!(renewals(&store), (1, 1));
    drop(store);

    let store = common::store(&path);
    assert_eq!(store.count_nodes().unwrap(), (LARGE + 3) as u64);
    assert!(finds(&store, "word1500", "n1500"));
    assert!(finds(&store, "other3002", &format!("n{}", LARGE + 2)));
    assert!(store.check().unwrap().is_ok());
}

/// Opening a file without a search index (format 1) builds the index on the
/// writer connection: it is replaced after the first write.
#[test]
fn a_migration_that_built_the_search_index_replaces_the_writer_after_the_first_write() {
    let (_dir, path) = temp_db();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1.db"),
        &path,
    )
    .unwrap();
    let store = store(&path);
    assert_eq!(renewals(&store), (0, 0));
    store.create_node(node(1)).unwrap();
    assert_eq!(renewals(&store), (1, 0));
    store.create_node(node(2)).unwrap();
    assert_eq!(renewals(&store), (1, 0));
    assert!(finds(&store, "word2", "n2"));

    // A file that already had one (format 5) gains only a table: nothing to replace.
    let (_dir, path) = temp_db();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-5.db"),
        &path,
    )
    .unwrap();
    let store = common::store(&path);
    store.create_node(node(1)).unwrap();
    assert_eq!(renewals(&store), (0, 0));
}
