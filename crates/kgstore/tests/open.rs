//! Opening the built-in persistent backends by URL: every common option reaches
//! the backend, bad URLs are refused with a clear error, and data persists.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::time::Duration;

use kgstore::{ErrorKind, GraphRead, Node, Open, OpenOptions, Store};
use kgstore_core::suite::while_writing;

fn urls(dir: &std::path::Path) -> [String; 3] {
    [
        format!("sqlite://{}/kg.db", dir.display()),
        format!("json://{}/kg", dir.display()),
        format!("git://{}/kg.git", dir.display()),
    ]
}

#[test]
fn both_schemes_are_registered_by_default() {
    let schemes = kgstore::Registry::default().schemes().join(",");
    assert_eq!(schemes, "git,json,memory,sqlite");
}

#[test]
fn data_persists_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    for (url, backend) in urls(dir.path()).iter().zip(["sqlite", "jsonfs", "git"]) {
        {
            let store = Store::open(url).unwrap();
            assert_eq!(store.backend_name(), backend);
            store
                .create_node(Node::new("kept", "thing").unwrap())
                .unwrap();
        }
        let store = kgstore::open(url).unwrap();
        assert_eq!(store.get_node("kept").unwrap().name, "kept", "{url}");
    }
}

#[test]
fn read_only_refuses_writes_but_reads() {
    let dir = tempfile::tempdir().unwrap();
    for url in urls(dir.path()) {
        kgstore::open(&url)
            .unwrap()
            .create_node(Node::new("kept", "thing").unwrap())
            .unwrap();
        for store in [
            kgstore::open(&format!("{url}?read_only=true")).unwrap(),
            Store::open_with(&url, &OpenOptions::new().read_only(true)).unwrap(),
        ] {
            assert_eq!(store.count_nodes().unwrap(), 1, "{url}");
            let err = store
                .create_node(Node::new("new", "thing").unwrap())
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{url}: {err}");
        }
    }
}

#[test]
fn create_false_refuses_a_missing_store_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for url in urls(dir.path()) {
        let err = kgstore::open(&format!("{url}?create=false")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{url}: {err}");
        assert!(err.to_string().contains("/kg"), "names the path: {err}");
        eprintln!("{err}");
        let err = Store::open_with(&url, &OpenOptions::new().create_if_missing(false)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{url}: {err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn durability_and_lock_timeout_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    for url in urls(dir.path()) {
        let store = kgstore::open(&format!(
            "{url}?durability=relaxed&lock_timeout_ms=100&verify=true"
        ))
        .unwrap();
        store.create_node(Node::new("n", "thing").unwrap()).unwrap();
    }
}

/// Writers take turns per transaction (issue 17): an open handle keeps nobody out,
/// and `lock_timeout` reaches the JSON-files backend through the facade.
#[test]
fn a_second_json_writer_is_locked_out_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("json://{}/kg", dir.path().display());
    let holder = kgstore::open(&url).unwrap();
    let second = Store::open_with(
        &url,
        &OpenOptions::new().lock_timeout(Duration::from_millis(50)),
    )
    .unwrap();
    second
        .create_node(Node::new("while-open", "thing").unwrap())
        .unwrap();
    while_writing(&holder, Node::new("held", "thing").unwrap(), || {
        let err = second
            .create_node(Node::new("late", "thing").unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
        assert!(
            err.to_string().contains(&std::process::id().to_string()),
            "names the holder: {err}"
        );
    });
    second
        .create_node(Node::new("late", "thing").unwrap())
        .unwrap();
    assert_eq!(holder.count_nodes().unwrap(), 3);
}

#[test]
fn bad_urls_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let [sqlite, json, _] = urls(dir.path());
    for (url, needle) in [
        ("sqlite://".to_owned(), "a path is required"),
        ("json://".to_owned(), "a path is required"),
        (format!("{sqlite}?colour=blue"), "colour"),
        (format!("{json}?reader_pool_size=2"), "reader_pool_size"),
        (format!("{sqlite}?reader_pool_size=many"), "many"),
        (format!("{sqlite}?mmap_size=-1"), "mmap_size '-1'"),
        // Digits only: `u64::from_str` would take a plus sign.
        (format!("{sqlite}?mmap_size=%2B5"), "mmap_size '+5'"),
        (
            format!("{sqlite}?reader_pool_size=+2"),
            "reader_pool_size '+2'",
        ),
        (format!("{sqlite}?durability=fast"), "fast"),
        ("postgres://localhost/kg".to_owned(), "postgres"),
    ] {
        let err = kgstore::open(&url).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url}: {err}");
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
    assert!(kgstore::open(&format!("{sqlite}?reader_pool_size=2")).is_ok());
    assert!(kgstore::open(&format!("{sqlite}?mmap_size=0")).is_ok());
}

#[test]
fn git_urls_take_a_branch_and_commit_identities() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "git://{}/kg.git?branch=kg/data&author=Ada%20Lovelace%20%3Cada@example.org%3E&lfs_threshold=1024",
        dir.path().display()
    );
    let store = kgstore::open(&url).unwrap();
    store.create_node(Node::new("n", "thing").unwrap()).unwrap();
    let log = store.log(&kgstore::LogQuery::new()).unwrap();
    assert_eq!(log[0].author.name, "Ada Lovelace");
    assert!(dir.path().join("kg.git/refs/heads/kg/data").exists());
    for bad in [
        "branch=a..b",
        "author=nobody",
        "lfs_threshold=lots",
        "colour=blue",
    ] {
        let err =
            kgstore::open(&format!("git://{}/other.git?{bad}", dir.path().display())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
    }
    // History is refused clearly by backends that keep none.
    let sqlite = kgstore::open(&format!("sqlite://{}/kg.db", dir.path().display())).unwrap();
    let err = sqlite.log(&kgstore::LogQuery::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("sqlite"), "{err}");
    assert_eq!(
        sqlite.read_at("main").err().unwrap().kind(),
        ErrorKind::Unsupported
    );
}
