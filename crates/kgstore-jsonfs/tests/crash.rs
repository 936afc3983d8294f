//! Crashing for real: a child process commits transactions and acknowledges each
//! one; the test kills it with SIGKILL at a random moment, reopens the store, and
//! checks that the state is exactly that after the last acknowledged transaction
//! (or the one after it, committed but not yet acknowledged): every acknowledged
//! transaction fully present, none partly visible, every file parsing, no temporary
//! file left, and the lock free at once.
//!
//! `KGSTORE_CRASH_CYCLES` sets the number of kills (200 by default),
//! `KGSTORE_CRASH_SEED` replays a run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use kgstore_core::suite::dump;
use kgstore_core::{Edge, Node, OnDependents, RelationType, Store, WriteTx};
use kgstore_jsonfs::{Durability, JsonFsBackend, JsonFsOptions};
use serde_json::json;

use common::{Rng, child_mode, leftovers, lines, spawn_child, var, wait_for};

/// Transaction `g` of the workload. Three in four transactions (the "groups") write
/// several files through the journal: three nodes (one depending on another), two
/// edges, an update of the long-lived `hub` node, and the deletion of the group four
/// transactions back and of an old single-node transaction. Every fourth writes one
/// new node alone (a one-file commit, without journal).
fn transaction(tx: &mut WriteTx<'_>, g: u64) -> kgstore_core::Result<()> {
    if is_solo(g) {
        tx.create_node(Node::new(format!("solo-{g}"), "solo")?)?;
        return Ok(());
    }
    let name = |part: &str| format!("g{g}-{part}");
    tx.create_node(Node::new(name("a"), "member")?)?;
    tx.create_node(
        Node::new(name("b"), "member")?
            .with_dependency(name("a"))
            .with_observation(format!("written by transaction {g}")),
    )?;
    tx.create_node(Node::new(name("c"), "member")?.with_attribute("g", json!(g)))?;
    tx.create_edge(Edge::new(name("a"), RelationType::Calls, name("b"))?)?;
    tx.create_edge(Edge::new(name("b"), RelationType::Contains, name("c"))?.with_weight(0.5))?;
    tx.upsert_node(Node::new("hub", "hub")?.with_attribute("g", json!(g)))?;
    if g >= 4 {
        let old = g - 4;
        tx.delete_node(&format!("g{old}-a"), OnDependents::Cascade)?;
        tx.delete_node(&format!("g{old}-c"), OnDependents::Refuse)?;
    }
    if g >= 5 && is_solo(g - 5) {
        tx.delete_node(&format!("solo-{}", g - 5), OnDependents::Refuse)?;
    }
    Ok(())
}

fn is_solo(g: u64) -> bool {
    g % 4 == 3
}

/// What the store holds after transactions `0..=last`: node names with the `hub`'s
/// `g` attribute, and edge keys as text.
#[derive(Debug, PartialEq, Eq)]
struct Model {
    nodes: BTreeSet<String>,
    edges: BTreeSet<String>,
    hub: Option<u64>,
}

fn model(last: Option<u64>) -> Model {
    let mut m = Model {
        nodes: BTreeSet::new(),
        edges: BTreeSet::new(),
        hub: None,
    };
    let Some(last) = last else { return m };
    for g in 0..=last {
        if is_solo(g) {
            if g + 5 > last {
                m.nodes.insert(format!("solo-{g}"));
            }
        } else {
            m.hub = Some(g);
            if g + 4 > last {
                for part in ["a", "b", "c"] {
                    m.nodes.insert(format!("g{g}-{part}"));
                }
                m.edges.insert(format!("g{g}-a -[calls]-> g{g}-b"));
                m.edges.insert(format!("g{g}-b -[contains]-> g{g}-c"));
            }
        }
    }
    if m.hub.is_some() {
        m.nodes.insert("hub".into());
    }
    m
}

fn observe(store: &Store) -> Model {
    let (nodes, edges, _) = dump(store);
    let hub = nodes
        .iter()
        .find(|n| n.name == "hub")
        .map(|n| n.attributes["g"].as_u64().unwrap());
    // Every group present must be whole, down to its contents.
    for node in &nodes {
        if let Some(rest) = node.name.strip_suffix("-b") {
            assert_eq!(node.dependencies, [format!("{rest}-a")]);
            assert_eq!(node.observations.len(), 1);
        }
    }
    Model {
        nodes: nodes.into_iter().map(|n| n.name).collect(),
        edges: edges.into_iter().map(|e| e.key().to_string()).collect(),
        hub,
    }
}

#[test]
fn child() {
    if child_mode().as_deref() == Some("bulk") {
        bulk_child();
        return;
    }
    if child_mode().as_deref() != Some("crash") {
        return;
    }
    let dir = var("CRASH_DIR");
    let start: u64 = var("CRASH_START").parse().unwrap();
    let durability: Durability = var("CRASH_DURABILITY").parse().unwrap();
    // A short lock wait: sibling tests in this binary fork children too, and a
    // forked child holds a copy of the parent's lock descriptor until it execs.
    let options = JsonFsOptions::default()
        .durability(durability)
        .lock_timeout(Some(std::time::Duration::from_secs(10)));
    let store = Store::new(JsonFsBackend::open(&dir, options).unwrap());
    println!("READY");
    for g in start.. {
        store.write(|tx| transaction(tx, g)).unwrap();
        println!("ACK {g}");
    }
}

/// Nodes (and as many edges) of the large commit below: a bulk import, as a
/// restore makes, staged in one batch (over the crate's threshold of 256 files).
const BULK: usize = 1500;

/// The store the large commit starts from: a few nodes and an edge, which the
/// commit removes (their files are in shard folders the import writes to).
fn bulk_base(store: &Store) {
    store
        .write(|tx| {
            for i in 0..5 {
                tx.create_node(Node::new(format!("old{i}"), "old")?)?;
            }
            tx.create_edge(Edge::new("old0", RelationType::Calls, "old1")?)?;
            Ok(())
        })
        .unwrap();
}

/// The child of the large-commit test (started through `child`).
fn bulk_child() {
    let dir = var("CRASH_DIR");
    let options = JsonFsOptions::default().lock_timeout(Some(Duration::from_secs(10)));
    let store = Store::new(JsonFsBackend::open(&dir, options).unwrap());
    println!("READY");
    store
        .write(|tx| {
            // What a restore that replaces a store's content does: clear, then import.
            for i in 0..5 {
                tx.delete_node(&format!("old{i}"), OnDependents::Cascade)?;
            }
            let mut import = tx.bulk_import()?;
            let nodes = (0..BULK)
                .map(|i| Node::new(format!("bulk{i:05}"), "bulk"))
                .collect::<kgstore_core::Result<Vec<_>>>()?;
            import.nodes(nodes)?;
            let edges = (0..BULK)
                .map(|i| {
                    Edge::new(
                        format!("bulk{i:05}"),
                        RelationType::Calls,
                        format!("bulk{:05}", (i + 1) % BULK),
                    )
                })
                .collect::<kgstore_core::Result<Vec<_>>>()?;
            import.edges(edges)?;
            import.finish()
        })
        .unwrap();
    println!("ACK");
}

/// A SIGKILL at any moment of a large commit (a restore's that replaces a store's
/// content: removals, then a bulk import staged in one batch, its folders moved
/// into place whole) leaves the store as it was or with the whole commit, every
/// file parsing, nothing left in `journal/`.
#[test]
fn sigkill_during_a_large_commit_leaves_it_absent_or_whole() {
    let seed = Rng::seed();
    eprintln!("crash test seed {seed} (KGSTORE_CRASH_SEED replays it)");
    let mut rng = Rng::new(seed);
    let scratch = tempfile::tempdir().unwrap();
    let mut outcomes: BTreeMap<&'static str, u64> = BTreeMap::new();
    // The first run is not killed: it times the commit, so that the kills land
    // anywhere in it.
    let mut span_us: u64 = 0;
    let cycles = cycles().div_ceil(10).max(6);
    for cycle in 0..=cycles {
        let path = scratch.path().join(format!("store{cycle}"));
        let before = {
            let store = common::open(&path);
            bulk_base(&store);
            observe(&store)
        };
        let mut child = spawn_child("bulk", &[("CRASH_DIR", path.display().to_string())]);
        let rx = lines(child.stdout.take().unwrap());
        wait_for(&rx, "READY");
        let started = std::time::Instant::now();
        if cycle == 0 {
            wait_for(&rx, "ACK");
            span_us = u64::try_from(started.elapsed().as_micros())
                .unwrap()
                .max(1000);
        } else {
            std::thread::sleep(Duration::from_micros(rng.below(span_us + span_us / 4)));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = rx
            .recv_timeout(Duration::from_secs(30))
            .is_ok_and(|l| l == "ACK")
            || cycle == 0;
        let backend = JsonFsBackend::open(&path, JsonFsOptions::default())
            .unwrap_or_else(|e| panic!("reopening after a kill failed: {e}"));
        let store = Store::new(backend);
        let left = leftovers(&path);
        assert!(
            left.is_empty(),
            "cycle {cycle}: left after recovery: {left:?}"
        );
        let check = store.check().unwrap();
        assert!(check.is_ok(), "cycle {cycle}: {:?}", check.problems);
        let seen = observe(&store);
        if seen == before {
            assert!(!acked, "cycle {cycle}: an acknowledged commit is missing");
            *outcomes.entry("absent").or_default() += 1;
        } else {
            assert_eq!(seen.nodes.len(), BULK, "cycle {cycle}");
            assert_eq!(seen.edges.len(), BULK, "cycle {cycle}");
            assert!(seen.nodes.is_disjoint(&before.nodes), "cycle {cycle}");
            *outcomes.entry("whole").or_default() += 1;
        }
        // The store takes writes again, and its next open reads what it holds.
        store
            .write(|tx| tx.create_node(Node::new("after", "after")?).map(drop))
            .unwrap();
        drop(store);
        let reopened = common::open(&path);
        assert_eq!(
            observe(&reopened).nodes.len(),
            seen.nodes.len() + 1,
            "cycle {cycle}"
        );
    }
    eprintln!("large commit: {cycles} kills; {outcomes:?}");
    assert!(
        outcomes.get("absent").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
}

fn cycles() -> u64 {
    std::env::var("KGSTORE_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// Reopens after a kill and returns the last transaction present; panics on a violation.
fn verify(dir: &Path, acked: Option<u64>, stats: &mut BTreeMap<&'static str, u64>) -> Option<u64> {
    // The dead child's lock is free at once; the short wait only covers a sibling
    // test's fork that briefly shares this process's descriptors (see `child`).
    let options = JsonFsOptions::default().lock_timeout(Some(std::time::Duration::from_secs(2)));
    let backend = JsonFsBackend::open(dir, options)
        .unwrap_or_else(|e| panic!("reopening after a kill failed: {e}"));
    let report = backend.recovery().clone();
    *stats.entry("rolled forward").or_default() += report.rolled_forward.len() as u64;
    *stats.entry("discarded journals").or_default() += report.discarded.len() as u64;
    *stats.entry("removed temporary files").or_default() += report.temps_removed.len() as u64;
    let store = Store::new(backend);
    let left = leftovers(dir);
    assert!(left.is_empty(), "left after recovery: {left:?}");
    let check = store.check().unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
    let seen = observe(&store);
    let next = acked.map_or(0, |a| a + 1);
    if seen == model(acked) {
        acked
    } else if seen == model(Some(next)) {
        *stats.entry("committed but unacknowledged").or_default() += 1;
        Some(next)
    } else {
        panic!(
            "after the last acknowledged transaction {acked:?} the store holds {seen:?}, \
             which is neither {:?} nor {:?}",
            model(acked),
            model(Some(next))
        );
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_transaction() {
    kill_and_check(Durability::Immediate, cycles());
}

/// Relaxed durability skips folder syncs, which matters for power cuts only: a
/// process crash must lose nothing acknowledged either.
#[test]
fn sigkill_with_relaxed_durability_loses_no_acknowledged_transaction() {
    kill_and_check(Durability::Relaxed, cycles().div_ceil(4));
}

fn kill_and_check(durability: Durability, cycles: u64) {
    let seed = Rng::seed();
    eprintln!("crash test seed {seed} (KGSTORE_CRASH_SEED replays it)");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut last: Option<u64> = None;
    let mut stats = BTreeMap::new();
    for cycle in 0..cycles {
        let start = last.map_or(0, |l| l + 1);
        let mut child = spawn_child(
            "crash",
            &[
                ("CRASH_DIR", path.display().to_string()),
                ("CRASH_START", start.to_string()),
                ("CRASH_DURABILITY", durability.as_str().to_owned()),
            ],
        );
        let rx = lines(child.stdout.take().unwrap());
        wait_for(&rx, "READY");
        std::thread::sleep(Duration::from_micros(rng.below(60_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut acked = last;
        // The reader thread ends when the pipe closes after the child's death.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            if let Some(g) = line.strip_prefix("ACK ") {
                let g: u64 = g.parse().unwrap();
                assert_eq!(g, acked.map_or(0, |a| a + 1), "acknowledged out of order");
                acked = Some(g);
            }
        }
        *stats.entry("acknowledged").or_default() += acked.map_or(0, |a| a + 1) - start;
        last = verify(&path, acked, &mut stats);
        assert!(last >= acked, "cycle {cycle}");
    }
    eprintln!("{durability:?}: {cycles} kills, 0 violations; {stats:?}");
    // The kills must have landed both between and inside commits, before and after
    // their commit marks.
    for what in ["acknowledged", "rolled forward", "removed temporary files"] {
        assert!(
            stats.get(what).copied().unwrap_or(0) > 0,
            "no {what}: {stats:?}"
        );
    }
}
