//! Read-only opening, connection settings, and locks held by other connections
//! and processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{assert_error, error_of, options, raw, store, temp_db};
use kgstore_core::{Backend, ErrorKind, GraphRead, Node, Store};
use kgstore_sqlite::{Durability, SqliteBackend};

fn thing(name: &str) -> Node {
    Node::new(name, "thing").unwrap()
}

#[test]
fn read_only_opens_read_and_refuse_every_write_clearly() {
    let (dir, path) = temp_db();
    store(&path).create_node(thing("a")).unwrap();
    let backend = SqliteBackend::open(&path, options().read_only(true)).unwrap();
    assert!(backend.settings().unwrap().writer.is_none());
    let s = Store::new(backend);
    assert_eq!(s.get_node("a").unwrap().name, "a");
    let err = error_of(s.create_node(thing("b")));
    assert_error(
        &err,
        ErrorKind::Unsupported,
        &[
            "writing to",
            &path.display().to_string(),
            "opened read-only",
            "sqlite",
        ],
    );
    assert_eq!(error_of(s.optimize()).kind(), ErrorKind::Unsupported);
    // Reading and copying still work.
    assert!(s.check().unwrap().is_ok());
    let copy = dir.path().join("copy.db");
    s.backup_native(&copy).unwrap();
    assert!(store(&copy).contains_node("a").unwrap());
    // A writer elsewhere is seen by the read-only store's next snapshot.
    store(&path).create_node(thing("c")).unwrap();
    assert!(s.contains_node("c").unwrap());
}

#[test]
fn durability_and_safety_settings_are_in_force() {
    let (_dir, path) = temp_db();
    for (durability, synchronous) in [(Durability::Immediate, 2), (Durability::Relaxed, 1)] {
        let backend = SqliteBackend::open(
            &path,
            options()
                .durability(durability)
                .lock_timeout(Duration::from_millis(1234)),
        )
        .unwrap();
        let settings = backend.settings().unwrap();
        let writer = settings.writer.clone().unwrap();
        assert_eq!(writer.journal_mode, "wal");
        assert_eq!(writer.synchronous, synchronous, "{durability}");
        assert!(writer.foreign_keys);
        assert!(!writer.trusted_schema);
        assert!(!writer.query_only);
        assert_eq!(
            writer.format_version,
            kgstore_sqlite::schema::FORMAT_VERSION
        );
        assert_eq!(settings.reader.synchronous, synchronous);
        assert!(settings.reader.query_only);
        assert!(!settings.reader.trusted_schema);
        assert_eq!(settings.lock_timeout, Duration::from_millis(1234));
        // Every connection reads through a memory map of the default size.
        assert_eq!(writer.mmap_size, 1 << 30);
        assert_eq!(settings.reader.mmap_size, 1 << 30);
    }
    let unmapped = SqliteBackend::open(&path, options().mmap_size(0)).unwrap();
    assert_eq!(unmapped.settings().unwrap().reader.mmap_size, 0);
    drop(unmapped);
    assert_eq!(
        SqliteBackend::open(&path, options())
            .unwrap()
            .options()
            .durability,
        Durability::Relaxed
    );
    assert_eq!(
        kgstore_sqlite::SqliteOptions::default().durability,
        Durability::Immediate
    );
}

#[test]
fn a_lock_held_by_another_connection_gives_locked_naming_the_file() {
    let (_dir, path) = temp_db();
    let s = Store::new(
        SqliteBackend::open(&path, options().lock_timeout(Duration::from_millis(150))).unwrap(),
    );
    s.create_node(thing("a")).unwrap();
    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = error_of(s.create_node(thing("b")));
    assert_error(
        &err,
        ErrorKind::Locked,
        &[
            &path.display().to_string(),
            "another connection or process",
            "150 ms",
        ],
    );
    // Readers are not blocked by the writer elsewhere.
    assert_eq!(s.count_nodes().unwrap(), 1);
    other.execute_batch("ROLLBACK").unwrap();
    s.create_node(thing("b")).unwrap();
    assert_eq!(s.count_nodes().unwrap(), 2);
}

#[test]
fn two_stores_on_one_file_take_turns_and_see_each_others_commits() {
    let (_dir, path) = temp_db();
    let first = store(&path);
    let second = Store::new(
        SqliteBackend::open(&path, options().lock_timeout(Duration::from_millis(100))).unwrap(),
    );
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let first = &first;
        let holder = scope.spawn(move || {
            first
                .write(|tx| {
                    tx.create_node(thing("from first"))?;
                    held_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
                .unwrap();
        });
        held_rx.recv().unwrap();
        assert_eq!(
            error_of(second.create_node(thing("from second"))).kind(),
            ErrorKind::Locked
        );
        assert!(
            !second.contains_node("from first").unwrap(),
            "uncommitted work is invisible"
        );
        release_tx.send(()).unwrap();
        holder.join().unwrap();
    });
    second.create_node(thing("from second")).unwrap();
    assert!(second.contains_node("from first").unwrap());
    assert!(first.contains_node("from second").unwrap());
}

#[test]
fn a_second_writer_of_the_same_process_waits_then_gives_up() {
    let (_dir, path) = temp_db();
    let s = Store::new(
        SqliteBackend::open(&path, options().lock_timeout(Duration::from_millis(80))).unwrap(),
    );
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let holder = {
            let s = s.clone();
            scope.spawn(move || {
                s.write(|tx| {
                    tx.create_node(thing("holder"))?;
                    held_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
                .unwrap();
            })
        };
        held_rx.recv().unwrap();
        let err = error_of(s.create_node(thing("waiter")));
        assert_error(
            &err,
            ErrorKind::Locked,
            &["another write transaction of this process", "80 ms"],
        );
        release_tx.send(()).unwrap();
        holder.join().unwrap();
    });
    s.create_node(thing("waiter")).unwrap();
    assert_eq!(s.count_nodes().unwrap(), 2);
}

#[test]
fn a_write_transaction_dropped_without_commit_rolls_back_and_frees_the_writer() {
    let (_dir, path) = temp_db();
    let backend = SqliteBackend::open(&path, options()).unwrap();
    {
        let mut txn = backend.begin_write().unwrap();
        txn.put_node(&thing("gone")).unwrap();
        assert!(txn.contains_node("gone").unwrap());
    }
    let read = backend.begin_read().unwrap();
    assert!(!read.contains_node("gone").unwrap());
    drop(read);
    let mut txn = backend.begin_write().unwrap();
    txn.put_node(&thing("kept")).unwrap();
    txn.commit().unwrap();
    assert!(backend.begin_read().unwrap().contains_node("kept").unwrap());
}

#[test]
fn a_read_snapshot_is_taken_when_the_transaction_begins() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    let elsewhere = store(&path);
    s.create_node(thing("before")).unwrap();
    let snapshot = s.read().unwrap();
    // Nothing read yet on the snapshot; a commit from another connection follows.
    elsewhere.create_node(thing("after")).unwrap();
    assert!(!snapshot.contains_node("after").unwrap());
    assert_eq!(snapshot.count_nodes().unwrap(), 1);
    drop(snapshot);
    assert!(s.contains_node("after").unwrap());
}

#[test]
fn a_one_method_read_holds_no_snapshot_after_its_statement_and_refuses_a_second_method() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    s.create_node(thing("a")).unwrap();
    let backend = s.backend();
    // Whether a reader's snapshot keeps a full checkpoint from emptying the log.
    let checkpoint_blocked = || {
        raw(&path)
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
            != 0
    };
    // A store-level call's transaction keeps its snapshot until it ends …
    let call = backend.begin_call().unwrap();
    assert_eq!(call.get_node("a").unwrap().unwrap().name, "a");
    s.create_node(thing("b")).unwrap();
    assert!(checkpoint_blocked());
    assert!(call.get_node("b").unwrap().is_none());
    drop(call);
    // … a one-method read's one statement is its own snapshot, ended with it.
    let one = backend.begin_one().unwrap();
    assert_eq!(one.get_node("b").unwrap().unwrap().name, "b");
    s.create_node(thing("c")).unwrap();
    assert!(!checkpoint_blocked());
    // A second method would read another snapshot: refused.
    let err = error_of(one.count_nodes());
    assert_error(&err, ErrorKind::Backend, &["one method call"]);
    drop(one);
    // A method of several statements (or any but the one-statement ones) begins the
    // transaction first; others may follow it on its snapshot.
    let one = backend.begin_one().unwrap();
    assert_eq!(one.count_nodes().unwrap(), 3);
    s.create_node(thing("d")).unwrap();
    assert!(one.get_node("d").unwrap().is_none());
    drop(one);
    assert_eq!(s.get_node("d").unwrap().name, "d");
}

#[test]
fn edge_neighbour_and_dependency_reads_are_one_statement_each() {
    use kgstore_core::{Direction, Edge, ReachOptions, RelationType};
    let (_dir, path) = temp_db();
    let s = store(&path);
    s.create_nodes(vec![
        thing("a"),
        thing("b").with_dependency("a"),
        thing("lone"),
    ])
    .unwrap();
    s.create_edge(Edge::new("a", RelationType::Calls, "b").unwrap())
        .unwrap();
    let backend = s.backend();
    let checkpoint_blocked = || {
        raw(&path)
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
            != 0
    };
    let mut n = 0;
    // Each method, on a one-method read, holds no snapshot after its one statement.
    let mut after_one = |read: Box<dyn kgstore_core::ReadTxn + '_>| {
        n += 1;
        s.create_node(thing(&format!("later{n}"))).unwrap();
        assert!(!checkpoint_blocked());
        drop(read);
    };
    for direction in [Direction::Out, Direction::In, Direction::Both] {
        let one = backend.begin_one().unwrap();
        let edges = one.edges_of_node("a", direction, &[]).unwrap().unwrap();
        assert_eq!(edges.len(), usize::from(direction != Direction::In));
        after_one(one);
        // A node without such edges, and no node: told apart by the one statement.
        let one = backend.begin_one().unwrap();
        assert_eq!(
            one.edges_of_node("lone", direction, &[]).unwrap(),
            Some(vec![])
        );
        after_one(one);
        let one = backend.begin_one().unwrap();
        assert_eq!(one.edges_of_node("ghost", direction, &[]).unwrap(), None);
        after_one(one);
        let one = backend.begin_one().unwrap();
        let names = one
            .neighbour_names("b", direction, &[RelationType::Calls])
            .unwrap();
        let expected: Vec<String> = match direction {
            Direction::Out => vec![],
            _ => vec!["a".into()],
        };
        assert_eq!(names, Some(expected));
        after_one(one);
        let one = backend.begin_one().unwrap();
        assert_eq!(one.neighbour_names("ghost", direction, &[]).unwrap(), None);
        after_one(one);
    }
    // Walks of exactly one hop: `a` reaches `b`; counted with the start's lookup.
    for (start, expected) in [("a", Some(1)), ("lone", Some(0)), ("ghost", None)] {
        let one = backend.begin_one().unwrap();
        let count = one.reach_count(start, &ReachOptions::exactly(1)).unwrap();
        assert_eq!(count, expected, "{start}");
        after_one(one);
    }
    let one = backend.begin_one().unwrap();
    assert_eq!(one.resolve_dependencies("b").unwrap(), ["a"]);
    after_one(one);
    let one = backend.begin_one().unwrap();
    assert_eq!(one.resolve_dependents("a").unwrap(), ["b"]);
    after_one(one);
    let one = backend.begin_one().unwrap();
    assert!(one.resolve_dependencies("lone").unwrap().is_empty());
    after_one(one);
    for resolved in [
        backend.begin_one().unwrap().resolve_dependencies("ghost"),
        backend.begin_one().unwrap().resolve_dependents("ghost"),
    ] {
        assert_eq!(error_of(resolved).kind(), ErrorKind::NodeNotFound);
    }
}

#[test]
fn a_one_method_resolution_whose_statement_needs_the_reference_reads_on_its_own_snapshot() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    s.create_nodes(vec![thing("a"), thing("b").with_dependency("a")])
        .unwrap();
    // A dependency row the nodes' own lists do not hold (a damaged file): the closure
    // statement sees a cycle, so the reference algorithm resolves from the nodes.
    raw(&path)
        .execute(
            "INSERT INTO node_deps (node_id, dep_id) SELECT a.id, b.id FROM names a, names b \
             WHERE a.name = 'a' AND b.name = 'b'",
            [],
        )
        .unwrap();
    let one = s.backend().begin_one().unwrap();
    assert_eq!(one.resolve_dependencies("b").unwrap(), ["a"]);
    // The reference read inside a transaction, still open: it holds a snapshot.
    s.create_node(thing("later")).unwrap();
    let checkpoint_blocked = raw(&path)
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
        != 0;
    assert!(checkpoint_blocked);
    drop(one);
    assert_eq!(s.resolve_dependencies("b").unwrap(), ["a"]);
}

#[test]
fn a_snapshot_s_end_ends_its_read_transaction_before_its_connection_is_pooled() {
    let (_dir, path) = temp_db();
    // One pooled reader: every snapshot below reads on the same connection.
    let s = Store::new(SqliteBackend::open(&path, options().reader_pool_size(1)).unwrap());
    s.create_node(thing("a")).unwrap();
    // Without waiting for the reader: a blocked checkpoint answers at once.
    let checkpoint_blocked = || {
        let conn = raw(&path);
        conn.busy_timeout(Duration::ZERO).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
            != 0
    };
    for round in 0..3 {
        let snapshot = s.read().unwrap();
        let edges = snapshot.edges_of("a", kgstore_core::Direction::Out, &[]);
        assert!(edges.unwrap().is_empty());
        s.create_node(thing(&format!("n{round}"))).unwrap();
        // The open snapshot holds its start in the log …
        assert!(checkpoint_blocked());
        assert!(!snapshot.contains_node(&format!("n{round}")).unwrap());
        drop(snapshot);
        // … and lets it go when dropped (its `COMMIT`), so the pooled connection's
        // next snapshot starts anew and sees the commit.
        assert!(!checkpoint_blocked());
        let next = s.read().unwrap();
        assert!(next.contains_node(&format!("n{round}")).unwrap());
    }
}

#[test]
fn many_snapshots_at_once_do_not_wait_for_the_pool() {
    let (_dir, path) = temp_db();
    let s = Store::new(SqliteBackend::open(&path, options().reader_pool_size(1)).unwrap());
    s.create_node(thing("a")).unwrap();
    let snapshots: Vec<_> = (0..10).map(|_| s.read().unwrap()).collect();
    for snapshot in &snapshots {
        assert!(snapshot.contains_node("a").unwrap());
    }
}

/// Child mode of the cross-process lock test: hold a write transaction until
/// stdin closes. Run by `a_lock_held_by_another_process_gives_locked`.
#[test]
#[ignore = "child process of a_lock_held_by_another_process_gives_locked"]
fn child_holding_the_write_lock() {
    let Some(path) = std::env::var_os("KGSTORE_TEST_HOLD_LOCK") else {
        return;
    };
    let s = store(std::path::Path::new(&path));
    s.write(|tx| {
        tx.create_node(thing("from the child"))?;
        println!("KGSTORE-CHILD-HOLDS-THE-LOCK");
        std::io::stdout().flush().unwrap();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_lock_held_by_another_process_gives_locked() {
    let (_dir, path) = temp_db();
    let s = Store::new(
        SqliteBackend::open(&path, options().lock_timeout(Duration::from_millis(200))).unwrap(),
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_holding_the_write_lock",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KGSTORE_TEST_HOLD_LOCK", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("KGSTORE-CHILD-HOLDS-THE-LOCK")),
        "the child never took the lock"
    );
    let err = error_of(s.create_node(thing("from the parent")));
    assert_error(
        &err,
        ErrorKind::Locked,
        &[&path.display().to_string(), "200 ms"],
    );
    assert!(!s.contains_node("from the child").unwrap());
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    s.create_node(thing("from the parent")).unwrap();
    assert!(s.contains_node("from the child").unwrap());
}

#[test]
fn an_endless_lock_timeout_is_accepted() {
    let (_dir, path) = temp_db();
    let s = Store::new(SqliteBackend::open(&path, options().lock_timeout(Duration::MAX)).unwrap());
    s.create_node(thing("a")).unwrap();
    assert_eq!(s.count_nodes().unwrap(), 1);
}

/// A document kept in chunks is streamed without the connection's memory map
/// (pages read through the map stay in the resident set while the pooled
/// connection lives: a streamed value would grow it by its size), and the map is
/// back once the reader is dropped, for the connection's next reads.
#[test]
fn a_streamed_chunked_document_gives_its_connection_its_memory_map_back() {
    use std::io::Read;
    let (_dir, path) = temp_db();
    let value: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    store(&path)
        .write_document("big.bin", value.clone())
        .unwrap();
    let backend = SqliteBackend::open(&path, options()).unwrap();
    {
        let txn = backend.begin_read().unwrap();
        let docs = txn.documents().unwrap();
        let meta = docs.doc_meta("big.bin").unwrap().unwrap();
        let mut read = Vec::new();
        docs.open_doc(&meta)
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert!(read == value);
    }
    // The pool hands the same connection out again.
    assert_eq!(backend.settings().unwrap().reader.mmap_size, 1 << 30);
}
