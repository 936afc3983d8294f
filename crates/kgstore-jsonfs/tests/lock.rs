//! The lock file: writers take turns one transaction at a time, across processes
//! and inside one; a writer waits for its turn up to its timeout, then gets
//! `Locked` naming the holder; readers and opens never wait; a handle kept open
//! keeps nobody out between its transactions, and sees the others' commits at its
//! next transaction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, Write};
use std::time::Duration;

use kgstore_core::suite::while_writing;
use kgstore_core::{ErrorKind, GraphRead, Node, Store};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};

use common::{child_mode, lines, open, spawn_child, var, wait_for};

fn options() -> JsonFsOptions {
    JsonFsOptions::default()
}

fn short_wait() -> JsonFsOptions {
    options().lock_timeout(Some(Duration::from_millis(100)))
}

/// The child's modes:
/// - `hold-write`: opens the store, starts a write transaction that creates the
///   node `held`, prints `READY`, and commits when its stdin closes;
/// - `long-lived`: opens the store and keeps it open; for every line `count` on its
///   stdin prints the number of nodes it sees, for every line `write NAME` creates
///   that node and prints `DONE`.
#[test]
fn child() {
    let Some(mode) = child_mode() else { return };
    let store = Store::new(JsonFsBackend::open(var("LOCK_DIR"), options()).unwrap());
    match mode.as_str() {
        "hold-write" => {
            store
                .write(|tx| {
                    tx.create_node(Node::new("held", "thing")?)?;
                    println!("READY");
                    let mut sink = Vec::new();
                    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
                    Ok(())
                })
                .unwrap();
        }
        "long-lived" => {
            println!("READY");
            for line in std::io::stdin().lock().lines() {
                let line = line.unwrap();
                if line == "count" {
                    println!("{}", store.count_nodes().unwrap());
                } else if let Some(name) = line.strip_prefix("write ") {
                    store
                        .create_node(Node::new(name, "thing").unwrap())
                        .unwrap();
                    println!("DONE");
                }
            }
        }
        other => panic!("unknown mode {other}"),
    }
}

#[test]
fn a_writer_waits_for_another_process_transaction_and_gets_locked_naming_its_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    open(&path)
        .create_node(Node::new("before", "thing").unwrap())
        .unwrap();
    let mut holder = spawn_child("hold-write", &[("LOCK_DIR", path.display().to_string())]);
    let rx = lines(holder.stdout.take().unwrap());
    wait_for(&rx, "READY");

    // Opening, reading, and opening read-only need no turn.
    let store = Store::new(JsonFsBackend::open(&path, short_wait()).unwrap());
    assert_eq!(store.count_nodes().unwrap(), 1);
    let reader = Store::new(JsonFsBackend::open(&path, options().read_only(true)).unwrap());
    assert_eq!(reader.count_nodes().unwrap(), 1);
    // A write waits its timeout, then is told who holds the store.
    let err = store
        .create_node(Node::new("mine", "thing").unwrap())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert_eq!(
        err.to_string(),
        format!(
            "{} is locked by pid {}",
            path.join("LOCK").display(),
            holder.id()
        )
    );

    // With a longer timeout the write waits for the holder's commit, and comes after it.
    let patient = Store::new(
        JsonFsBackend::open(&path, options().lock_timeout(Some(Duration::from_secs(60)))).unwrap(),
    );
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            patient.write(|tx| {
                assert!(tx.contains_node("held")?, "the holder committed first");
                tx.create_node(Node::new("mine", "thing")?)
            })
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(holder.stdin.take());
        writer.join().unwrap().unwrap();
    });
    assert!(holder.wait().unwrap().success());
    // Every handle sees both commits at its next transaction.
    for handle in [&store, &reader, &patient] {
        assert_eq!(handle.count_nodes().unwrap(), 3);
    }
}

#[test]
fn a_handle_kept_open_keeps_nobody_out_and_sees_the_others_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(open(&path));
    let mut child = spawn_child("long-lived", &[("LOCK_DIR", path.display().to_string())]);
    let rx = lines(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let mut ask = |line: &str| {
        writeln!(stdin, "{line}").unwrap();
        rx.recv_timeout(Duration::from_secs(60)).unwrap()
    };
    wait_for(&rx, "READY");
    assert_eq!(ask("write theirs"), "DONE");
    // The child keeps the store open; this process writes at once, no wait.
    let store = Store::new(JsonFsBackend::open(&path, options().lock_timeout(None)).unwrap());
    assert!(store.contains_node("theirs").unwrap());
    for i in 0..5 {
        store
            .create_node(Node::new(format!("mine-{i}"), "thing").unwrap())
            .unwrap();
        // The long-lived handle sees each commit at its next transaction.
        assert_eq!(ask("count"), (2 * i + 2).to_string());
        assert_eq!(ask(&format!("write theirs-{i}")), "DONE");
        assert!(store.contains_node(&format!("theirs-{i}")).unwrap());
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn a_timeout_that_runs_out_gives_locked_also_between_handles_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::new(JsonFsBackend::open(dir.path(), options()).unwrap());
    let second = Store::new(JsonFsBackend::open(dir.path(), short_wait()).unwrap());
    while_writing(&first, Node::new("first", "thing").unwrap(), || {
        let err = second
            .create_node(Node::new("second", "thing").unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert!(
            err.to_string()
                .ends_with(&format!("by pid {}", std::process::id())),
            "{err}"
        );
        // Reads of the other handle do not wait.
        assert_eq!(second.count_nodes().unwrap(), 0);
    });
    // Let go at the end of the transaction: the next write needs no wait.
    second
        .create_node(Node::new("second", "thing").unwrap())
        .unwrap();
    assert_eq!(first.count_nodes().unwrap(), 2);
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
fn a_read_only_handle_writes_nothing_and_sees_new_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_node(Node::new("a", "thing").unwrap()).unwrap();
    let reader = Store::new(JsonFsBackend::open(dir.path(), options().read_only(true)).unwrap());
    let err = reader
        .create_node(Node::new("b", "thing").unwrap())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    store.create_node(Node::new("b", "thing").unwrap()).unwrap();
    assert!(reader.contains_node("b").unwrap());
    assert!(reader.check().unwrap().is_ok());
}

#[test]
fn writers_in_one_process_take_turns_and_readers_never_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let waiter = while_writing(&store, Node::new("first", "thing").unwrap(), || {
        // A reader meanwhile sees the last commit at once.
        assert_eq!(store.count_nodes().unwrap(), 0);
        let second = store.clone();
        let waiter = std::thread::spawn(move || {
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
        waiter
    });
    waiter.join().unwrap();
    assert_eq!(store.count_nodes().unwrap(), 2);
}
