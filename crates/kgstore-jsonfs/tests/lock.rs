//! The lock file: one writing process at a time, `Locked` naming the holder,
//! waiting up to a timeout, read-only openers side by side; and one writer at a time
//! inside a process, with readers never waiting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::time::Duration;

use kgstore_core::{ErrorKind, GraphRead, Node, Store};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};

use common::{child_mode, lines, open, spawn_child, var, wait_for};

fn options() -> JsonFsOptions {
    JsonFsOptions::default()
}

#[test]
fn child() {
    if child_mode().as_deref() != Some("hold") {
        return;
    }
    let read_only = var("LOCK_READ_ONLY") == "true";
    let backend = JsonFsBackend::open(var("LOCK_DIR"), options().read_only(read_only)).unwrap();
    println!("READY");
    // Hold the store until the parent closes our stdin.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(backend);
}

#[test]
fn a_second_writer_in_another_process_gets_locked_naming_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(open(&path));
    let mut holder = spawn_child(
        "hold",
        &[
            ("LOCK_DIR", path.display().to_string()),
            ("LOCK_READ_ONLY", "false".into()),
        ],
    );
    let rx = lines(holder.stdout.take().unwrap());
    wait_for(&rx, "READY");

    let err = JsonFsBackend::open(&path, options()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    let expected = format!(
        "{} is locked by pid {}",
        path.join("LOCK").display(),
        holder.id()
    );
    assert_eq!(err.to_string(), expected);
    // Read-only opens are refused too while a writer may be changing the files.
    let err = JsonFsBackend::open(&path, options().read_only(true)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);

    // With a timeout, the opener waits for the holder to go.
    drop(holder.stdin.take());
    let backend =
        JsonFsBackend::open(&path, options().lock_timeout(Some(Duration::from_secs(60)))).unwrap();
    holder.wait().unwrap();
    drop(backend);
}

#[test]
fn a_timeout_that_runs_out_gives_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = JsonFsBackend::open(dir.path(), options()).unwrap();
    let err = JsonFsBackend::open(
        dir.path(),
        options().lock_timeout(Some(Duration::from_millis(50))),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert!(
        err.to_string()
            .ends_with(&format!("by pid {}", std::process::id())),
        "{err}"
    );
    drop(first);
    // Released on drop: the next open needs no wait.
    JsonFsBackend::open(dir.path(), options()).unwrap();
}

#[test]
fn read_only_openers_share_and_keep_writers_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_node(Node::new("a", "thing").unwrap()).unwrap();
    drop(store);

    let reader = spawn_child(
        "hold",
        &[
            ("LOCK_DIR", dir.path().display().to_string()),
            ("LOCK_READ_ONLY", "true".into()),
        ],
    );
    let mut reader = reader;
    let rx = lines(reader.stdout.take().unwrap());
    wait_for(&rx, "READY");

    let here = Store::new(JsonFsBackend::open(dir.path(), options().read_only(true)).unwrap());
    assert!(here.contains_node("a").unwrap());
    let err = here
        .create_node(Node::new("b", "thing").unwrap())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(here.check().unwrap().is_ok());

    let err = JsonFsBackend::open(dir.path(), options()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert!(
        err.to_string()
            .ends_with("by one or more read-only openers"),
        "{err}"
    );
    drop(here);
    drop(reader.stdin.take());
    reader.wait().unwrap();
    open(dir.path())
        .create_node(Node::new("b", "thing").unwrap())
        .unwrap();
}

#[test]
fn read_only_open_needs_an_existing_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = JsonFsBackend::open(&missing, options().read_only(true)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(!missing.exists());
    let err = JsonFsBackend::open(&missing, options().create_if_missing(false)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    let err = JsonFsBackend::open(dir.path(), options().read_only(true)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn writers_in_one_process_take_turns_and_readers_never_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let first = store.clone();
        scope.spawn(move || {
            first
                .write(|tx| {
                    tx.create_node(Node::new("first", "thing")?)?;
                    held_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
                .unwrap();
        });
        held_rx.recv().unwrap();
        // A reader meanwhile sees the last commit at once.
        assert_eq!(store.count_nodes().unwrap(), 0);
        let second = store.clone();
        let waiter = scope.spawn(move || {
            second
                .write(|tx| {
                    // The first writer has committed by the time this one starts.
                    assert!(tx.contains_node("first")?);
                    tx.create_node(Node::new("second", "thing")?)
                })
                .unwrap();
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(!store.contains_node("second").unwrap());
        release_tx.send(()).unwrap();
        waiter.join().unwrap();
    });
    assert_eq!(store.count_nodes().unwrap(), 2);
}
