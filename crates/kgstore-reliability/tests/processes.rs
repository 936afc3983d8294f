//! Several processes on one store, on every persistent backend by URL:
//! - four processes increment one counter 500 times each with optimistic
//!   concurrency (read the version, update stating it, retry on `Conflict`): the
//!   counter ends at exactly 2,000;
//! - a reader process reads the store in a loop while a writer process commits
//!   1,000 transactions of several nodes and an edge each: it never sees a
//!   transaction partly, never sees the store go back, and ends seeing the last;
//! - a reader process reads a node and a document from one snapshot in a loop while
//!   a writer process commits transactions that change both together: they never
//!   disagree (a document replaced after the snapshot is refused with `Conflict`,
//!   never read with the newer bytes).
//!
//! `KGSTORE_MP_INCREMENTS` (500 per process) and `KGSTORE_MP_TRANSACTIONS` (1,000)
//! size a run; the stores go where the crash harness puts them (`/dev/shm` when
//! there is one, or `KGSTORE_CRASH_DIR`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kgstore::{
    DocumentRead, Edge, EdgeKey, ErrorKind, GraphRead, Node, NodeFilter, PageRequest, RelationType,
};
use kgstore_reliability::crash::base_dir;
use kgstore_reliability::rng::env_u64;
use serde_json::json;

const URLS: &[&str] = &["sqlite://{dir}/kg.db", "json://{dir}/kg"];
const MODE: &str = "KGSTORE_MP_CHILD";
/// Nodes every transaction of the reader test updates together.
const MEMBERS: u64 = 4;
/// Processes of the increment test.
const PROCESSES: u64 = 4;

fn increments() -> u64 {
    env_u64("KGSTORE_MP_INCREMENTS", 500)
}

fn transactions() -> u64 {
    env_u64("KGSTORE_MP_TRANSACTIONS", 1000)
}

fn doc_transactions() -> u64 {
    env_u64("KGSTORE_MP_DOC_TRANSACTIONS", 300)
}

/// The document the node-and-document test rewrites.
const SCENE: &str = "scenes/current.fountain";

/// The document's bytes at transaction `i` (sizes vary, so that a torn or mixed
/// read shows).
fn scene(i: u64) -> Vec<u8> {
    format!("INT. HOUSE - TAKE {i}\n")
        .repeat(1 + (i % 7) as usize * 300)
        .into_bytes()
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// Runs this test binary's `child` test in a new process, in `mode`, on `url`.
fn spawn(mode: &str, url: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(MODE, mode)
        .env("KGSTORE_MP_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The line a child printed that starts with `prefix`.
fn answer(child: std::process::Child, prefix: &str) -> String {
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "a child failed: {text}");
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {text:?}"))
        .to_owned()
}

fn member(k: u64) -> String {
    format!("m{k}")
}

fn link() -> EdgeKey {
    EdgeKey::new(member(0), RelationType::Calls, member(1))
}

/// The child's modes: `increment` and `commit` write, `read` reads.
#[test]
fn child() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let url = var("KGSTORE_MP_URL");
    let store = kgstore::open(&url).unwrap();
    match mode.as_str() {
        "increment" => {
            let mut conflicts = 0u64;
            for _ in 0..increments() {
                loop {
                    let mut node = store.get_node("counter").unwrap();
                    let version = node.metadata.version;
                    let value = node.attributes["value"].as_u64().unwrap();
                    node.attributes.insert("value".into(), json!(value + 1));
                    match store.update_node(node, Some(version)) {
                        Ok(_) => break,
                        Err(e) if e.kind() == ErrorKind::Conflict => conflicts += 1,
                        Err(e) => panic!("an increment failed: {e}"),
                    }
                }
            }
            println!("DONE {conflicts}");
        }
        "commit" => {
            for i in 1..=transactions() {
                store
                    .write(|tx| {
                        for k in 0..MEMBERS {
                            let mut node = tx.get_node(&member(k))?;
                            node.attributes.insert("tx".into(), json!(i));
                            tx.update_node(node, None)?;
                        }
                        let mut edge = tx.get_edge(&link())?;
                        edge.attributes.insert("tx".into(), json!(i));
                        tx.update_edge(edge, None)?;
                        tx.create_node(Node::new(format!("t{i}"), "marker")?)?;
                        tx.delete_node(&format!("t{}", i - 1), kgstore::OnDependents::Refuse)?;
                        Ok(())
                    })
                    .unwrap();
            }
            println!("DONE");
        }
        "read" => {
            let last = transactions();
            let deadline = Instant::now() + Duration::from_secs(300);
            let (mut scans, mut fresh, mut seen_max, mut distinct) = (0u64, 0u64, 0u64, 0u64);
            whole(&store);
            println!("READY");
            loop {
                // Mostly the long-lived handle; every 5th read a fresh open, which
                // reads every file while the writer goes on.
                let opened;
                let reader = if scans % 5 == 4 {
                    fresh += 1;
                    opened = kgstore::open(&url).unwrap();
                    &opened
                } else {
                    &store
                };
                let seen = whole(reader);
                scans += 1;
                assert!(
                    seen >= seen_max,
                    "the store went back from {seen_max} to {seen} (read {scans}, fresh: {})",
                    scans % 5 == 0
                );
                if seen > seen_max {
                    distinct += 1;
                }
                seen_max = seen;
                if seen == last {
                    break;
                }
                assert!(Instant::now() < deadline, "never saw transaction {last}");
            }
            println!("SAW {seen_max} scans={scans} fresh={fresh} distinct={distinct}");
        }
        "doc-commit" => {
            for i in 1..=doc_transactions() {
                store
                    .write(|tx| {
                        let mut node = tx.get_node("scene")?;
                        node.attributes.insert("tx".into(), json!(i));
                        tx.update_node(node, None)?;
                        tx.write_document(SCENE, scene(i))?;
                        Ok(())
                    })
                    .unwrap();
            }
            println!("DONE");
        }
        "doc-read" => {
            let last = doc_transactions();
            let deadline = Instant::now() + Duration::from_secs(300);
            let (mut reads, mut replaced, mut seen_max) = (0u64, 0u64, 0u64);
            println!("READY");
            loop {
                let read = store.read().unwrap();
                let i = read.get_node("scene").unwrap().attributes["tx"]
                    .as_u64()
                    .unwrap();
                let meta = read.stat_document(SCENE).unwrap();
                assert_eq!(
                    meta.size,
                    scene(i).len() as u64,
                    "the document's metadata is not that of transaction {i}"
                );
                match read.read_document(SCENE) {
                    Ok(bytes) => assert!(
                        bytes == scene(i),
                        "the node is at transaction {i}, its document is not ({} bytes)",
                        bytes.len()
                    ),
                    // Replaced by a later transaction after this snapshot: refused.
                    Err(e) if e.kind() == ErrorKind::Conflict => replaced += 1,
                    Err(e) => panic!("reading the document failed: {e}"),
                }
                reads += 1;
                assert!(i >= seen_max, "the store went back from {seen_max} to {i}");
                seen_max = i;
                if i == last {
                    break;
                }
                assert!(Instant::now() < deadline, "never saw transaction {last}");
            }
            println!("SAW {seen_max} reads={reads} replaced={replaced}");
        }
        other => panic!("unknown mode {other}"),
    }
}

/// Reads the whole store from one snapshot, checks that it shows one transaction
/// whole, and returns which.
fn whole(store: &kgstore::Store) -> u64 {
    let read = store.read().unwrap();
    let page = read
        .list_nodes(&NodeFilter::default(), &PageRequest::first(1000))
        .unwrap();
    let tx_of = |name: &str| {
        page.items
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("{name} is missing"))
            .attributes["tx"]
            .as_u64()
            .unwrap()
    };
    let i = tx_of(&member(0));
    for k in 1..MEMBERS {
        assert_eq!(
            tx_of(&member(k)),
            i,
            "a transaction partly visible: {:?}",
            page.items
        );
    }
    let edge = read.get_edge(&link()).unwrap();
    assert_eq!(
        edge.attributes["tx"],
        json!(i),
        "the edge is not at transaction {i}"
    );
    let markers: Vec<&str> = page
        .items
        .iter()
        .filter(|n| n.node_type == "marker")
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(markers, [format!("t{i}")], "at transaction {i}");
    i
}

/// Starts a reader process in `read_mode`; once it has read once, a writer process
/// in `commit_mode`, which commits `last` transactions; returns the reader's `SAW …`
/// line when both are done, after checking that the reader saw the last one.
fn read_while_committing(url: &str, read_mode: &str, commit_mode: &str, last: u64) -> String {
    let started = Instant::now();
    let mut reader = spawn(read_mode, url);
    let mut lines = BufReader::new(reader.stdout.take().unwrap()).lines();
    // The reader has its store open and has read once: now the writer starts.
    assert!(
        lines.by_ref().map(Result::unwrap).any(|l| l == "READY"),
        "the reader never got ready"
    );
    let writer = spawn(commit_mode, url);
    answer(writer, "DONE");
    // Read to the end: a closed pipe would fail the reader's last words.
    let said: Vec<String> = lines.map(Result::unwrap).collect();
    let saw = said
        .iter()
        .find(|l| l.starts_with("SAW "))
        .unwrap_or_else(|| panic!("the reader said {said:?}"))
        .clone();
    assert!(reader.wait().unwrap().success(), "the reader failed");
    eprintln!(
        "{url}: {last} {commit_mode} transactions in {:.2?}; reader: {saw}",
        started.elapsed()
    );
    assert!(saw.starts_with(&format!("SAW {last} ")), "{saw}");
    saw
}

/// A new store at `template` (a URL whose `{dir}` is a new temporary folder): its
/// folder (removed when dropped), its URL, and a handle on it.
fn new_store(template: &str) -> (tempfile::TempDir, String, kgstore::Store) {
    let dir = tempfile::Builder::new()
        .prefix("kgstore-mp-")
        .tempdir_in(base_dir())
        .unwrap();
    let url = template.replace("{dir}", &dir.path().display().to_string());
    let store = kgstore::open(&url).unwrap();
    (dir, url, store)
}

#[test]
fn four_processes_incrementing_one_counter_optimistically_lose_nothing_on_any_backend() {
    for template in URLS {
        let (_dir, url, store) = new_store(template);
        store
            .create_node(
                Node::new("counter", "counter")
                    .unwrap()
                    .with_attribute("value", json!(0)),
            )
            .unwrap();
        let started = Instant::now();
        let children: Vec<_> = (0..PROCESSES).map(|_| spawn("increment", &url)).collect();
        let conflicts: u64 = children
            .into_iter()
            .map(|c| answer(c, "DONE ")["DONE ".len()..].parse::<u64>().unwrap())
            .sum();
        let node = store.get_node("counter").unwrap();
        let expected = PROCESSES * increments();
        eprintln!(
            "{url}: {expected} increments by {PROCESSES} processes in {:.2?}, {conflicts} conflicts retried",
            started.elapsed()
        );
        assert_eq!(node.attributes["value"], json!(expected), "{url}");
        assert_eq!(node.metadata.version, expected + 1, "{url}");
        assert!(store.check().unwrap().is_ok());
    }
}

#[test]
fn a_reader_process_never_sees_a_partial_transaction_and_ends_seeing_the_last() {
    for template in URLS {
        let (_dir, url, store) = new_store(template);
        store
            .write(|tx| {
                for k in 0..MEMBERS {
                    tx.create_node(Node::new(member(k), "member")?.with_attribute("tx", json!(0)))?;
                }
                tx.create_edge(
                    Edge::new(member(0), RelationType::Calls, member(1))?
                        .with_attribute("tx", json!(0)),
                )?;
                tx.create_node(Node::new("t0", "marker")?)?;
                Ok(())
            })
            .unwrap();
        let saw = read_while_committing(&url, "read", "commit", transactions());
        // It read while the writer committed: it saw states between the first and the last.
        let distinct: u64 = saw.rsplit("distinct=").next().unwrap().parse().unwrap();
        assert!(
            distinct > 2,
            "the reader saw no transaction in between: {saw}"
        );
        assert_eq!(whole(&store), transactions());
    }
}

#[test]
fn a_reader_process_never_sees_a_node_and_its_document_disagree() {
    for template in URLS {
        let (_dir, url, store) = new_store(template);
        store
            .write(|tx| {
                tx.create_node(Node::new("scene", "scene")?.with_attribute("tx", json!(0)))?;
                tx.write_document(SCENE, scene(0))?;
                Ok(())
            })
            .unwrap();
        read_while_committing(&url, "doc-read", "doc-commit", doc_transactions());
        assert_eq!(
            store.read_document(SCENE).unwrap(),
            scene(doc_transactions())
        );
        assert!(store.check().unwrap().is_ok());
    }
}
