//! Several processes sharing one file: optimistic read-modify-write increments
//! from four processes add up exactly, and nothing but `Conflict` is ever seen.
//! And a subscriber waiting for another handle's appends sleeps while idle.
//!
//! The children are this test binary run again on its ignored child test. Set
//! `KGSTORE_LONG_TESTS=1` for 5,000 increments per process instead of 500.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::temp_db;
use kgstore_core::{ErrorKind, GraphRead, Node, Store};
use kgstore_sqlite::{SqliteBackend, SqliteOptions};
use serde_json::json;

const PROCESSES: u64 = 4;

fn increments() -> u64 {
    if std::env::var_os("KGSTORE_LONG_TESTS").is_some() {
        5_000
    } else {
        500
    }
}

/// Default options: durable commits, the default lock timeout.
fn open(path: &Path) -> Store {
    Store::new(SqliteBackend::open(path, SqliteOptions::default()).unwrap())
}

/// Child mode: wait for "go" on stdin, then increment the counter, retrying on
/// conflicts; any other error fails the child.
#[test]
#[ignore = "child process of four_processes_increment_one_counter_exactly"]
fn child_incrementing_the_counter() {
    let Some(path) = std::env::var_os("KGSTORE_TEST_COUNTER_DB") else {
        return;
    };
    let count: u64 = std::env::var("KGSTORE_TEST_INCREMENTS")
        .unwrap()
        .parse()
        .unwrap();
    let store = open(Path::new(&path));
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let mut conflicts = 0u64;
    for _ in 0..count {
        loop {
            let mut node = store
                .get_node("counter")
                .unwrap_or_else(|e| panic!("read failed: {e}"));
            let n = node.attributes["n"].as_u64().unwrap();
            let version = node.metadata.version;
            node.attributes.insert("n".into(), json!(n + 1));
            match store.update_node(node, Some(version)) {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::Conflict => conflicts += 1,
                Err(e) => panic!("only conflicts may happen, got {:?}: {e}", e.kind()),
            }
        }
    }
    println!("KGSTORE-CHILD-DONE conflicts={conflicts}");
}

#[test]
fn four_processes_increment_one_counter_exactly() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    store
        .create_node(
            Node::new("counter", "thing")
                .unwrap()
                .with_attribute("n", json!(0)),
        )
        .unwrap();
    let per_process = increments();
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "child_incrementing_the_counter",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("KGSTORE_TEST_COUNTER_DB", &path)
                .env("KGSTORE_TEST_INCREMENTS", per_process.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Start them together.
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let mut conflicts = 0u64;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "a child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let done = BufReader::new(output.stdout.as_slice())
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split("KGSTORE-CHILD-DONE conflicts=")
                    .nth(1)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("a child did not finish its increments:\n{stdout}"));
        conflicts += done.trim().parse::<u64>().unwrap();
    }
    let counter = store.get_node("counter").unwrap();
    assert_eq!(counter.attributes["n"], json!(PROCESSES * per_process));
    assert_eq!(counter.metadata.version, 1 + PROCESSES * per_process);
    eprintln!(
        "{} increments by {PROCESSES} processes, {conflicts} conflicts retried",
        PROCESSES * per_process
    );
    assert!(store.check().unwrap().is_ok());
}

/// CPU time this thread has used, in clock ticks (`/proc/thread-self/stat`: user
/// and system time, fields 14 and 15).
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A catch-up subscription waiting with nothing to read sleeps between its checks
/// of the log's head (it does not spin a core), and still sees an append made
/// through another handle on the file — one that cannot wake it, as another process
/// could not.
#[test]
fn an_idle_subscriber_does_not_spin_and_sees_another_handles_append() {
    use kgstore_core::events::{ExpectedVersion, NewEvent, SubscriptionOptions};
    use std::time::{Duration, Instant};

    let (_dir, path) = temp_db();
    let reader = open(&path);
    reader
        .append(
            "ticks",
            ExpectedVersion::NoStream,
            [NewEvent::new("tick", json!(1))],
        )
        .unwrap();
    let mut subscription = reader
        .subscribe(SubscriptionOptions::all().after(1))
        .unwrap();
    // Idle for 1.5 s: the default wait checks the head ~20 times a second.
    let before = thread_cpu_ticks();
    let started = Instant::now();
    let page = subscription.next_page(Duration::from_millis(1500)).unwrap();
    assert!(page.events.is_empty(), "{page:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let used = thread_cpu_ticks() - before;
    // Clock ticks are 10 ms: a spinning wait would use about 150 of them.
    assert!(used < 30, "an idle wait of 1.5 s used {used} ticks of CPU");

    // Another handle (its own connection and waiters, as another process has)
    // appends while the subscriber waits: the head check finds it.
    let other = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        open(&path)
            .append(
                "ticks",
                ExpectedVersion::Exact(1),
                [NewEvent::new("tick", json!(2))],
            )
            .unwrap();
    });
    let page = subscription.next_page(Duration::from_secs(30)).unwrap();
    other.join().unwrap();
    let positions: Vec<u64> = page.events.iter().map(|e| e.position).collect();
    assert_eq!(positions, [2]);
}
