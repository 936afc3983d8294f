//! Several threads at once, and persistence across reopening.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use serde_json::json;

use super::{Fixture, dump, edge, thing, thing_with_deps};
use crate::{ErrorKind, GraphRead, RelationType, SchemaTarget, Store};

/// Threads × increments each, through optimistic updates retried on conflict.
const THREADS: u64 = 4;
const INCREMENTS: u64 = 25;

pub fn concurrent_optimistic_increments_are_exact(f: Fixture) {
    let s = &f.store;
    s.create_node(thing("counter").with_attribute("n", json!(0)))
        .unwrap();
    let conflicts: u64 = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let store: Store = s.clone();
                scope.spawn(move || {
                    let mut conflicts = 0;
                    for _ in 0..INCREMENTS {
                        loop {
                            let mut node = store.get_node("counter").unwrap();
                            let n = node.attributes["n"].as_u64().unwrap();
                            let version = node.metadata.version;
                            node.attributes.insert("n".into(), json!(n + 1));
                            match store.update_node(node, Some(version)) {
                                Ok(_) => break,
                                Err(e) if e.kind() == ErrorKind::Conflict => conflicts += 1,
                                Err(e) => panic!("only conflicts may happen, got: {e}"),
                            }
                        }
                    }
                    conflicts
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let counter = s.get_node("counter").unwrap();
    assert_eq!(counter.attributes["n"], json!(THREADS * INCREMENTS));
    assert_eq!(counter.metadata.version, 1 + THREADS * INCREMENTS);
    // A conflict means another thread committed in between, and each commit can make
    // at most every other thread's attempt fail once: spurious conflicts would break this.
    assert!(
        conflicts <= (THREADS - 1) * THREADS * INCREMENTS,
        "{conflicts}"
    );
}

pub fn readers_see_consistent_snapshots(f: Fixture) {
    let s = &f.store;
    let done = Arc::new(AtomicBool::new(false));
    thread::scope(|scope| {
        let writer = {
            let store = s.clone();
            let done = Arc::clone(&done);
            scope.spawn(move || {
                for i in 0..40 {
                    store
                        .write(|tx| {
                            tx.create_node(thing(&format!("x{i}")))?;
                            tx.create_node(thing_with_deps(&format!("y{i}"), &[&format!("x{i}")]))?;
                            tx.create_edge(edge(
                                &format!("x{i}"),
                                RelationType::Calls,
                                &format!("y{i}"),
                            ))?;
                            Ok(())
                        })
                        .unwrap();
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let store = s.clone();
                let done = Arc::clone(&done);
                scope.spawn(move || {
                    let mut looks = 0;
                    while !done.load(Ordering::SeqCst) || looks < 5 {
                        let snapshot = store.read().unwrap();
                        let nodes = snapshot.count_nodes().unwrap();
                        let edges = snapshot.count_edges().unwrap();
                        assert_eq!(nodes, 2 * edges, "a transaction was seen half-applied");
                        let listed = dump_counts(&snapshot);
                        assert_eq!(
                            listed,
                            (nodes, edges),
                            "counts and listings disagree in one snapshot"
                        );
                        looks += 1;
                    }
                })
            })
            .collect();
        writer.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
    });
    assert_eq!(s.count_nodes().unwrap(), 80);
    assert!(s.check().unwrap().is_ok());
}

fn dump_counts(read: &crate::ReadTx<'_>) -> (u64, u64) {
    let nodes = read
        .list_nodes(&Default::default(), &crate::PageRequest::first(1000))
        .unwrap()
        .items
        .len();
    let edges = read
        .list_edges(&Default::default(), &crate::PageRequest::first(1000))
        .unwrap()
        .items
        .len();
    (nodes as u64, edges as u64)
}

pub fn reopen_keeps_everything(mut f: Fixture) {
    if !f.is_persistent() {
        eprintln!("reopen_keeps_everything: skipped, the backend is not persistent");
        return;
    }
    let s = f.store.clone();
    s.write(|tx| {
        tx.set_schema(
            SchemaTarget::NodeType("thing".into()),
            json!({"type": "object"}),
        )?;
        tx.create_node(
            thing("a")
                .with_observation("kept \0 exactly")
                .with_attribute("x", json!({"y": [1, 2.5, "z"]})),
        )?;
        tx.create_node(
            thing_with_deps("b", &["a"])
                .with_tag("t")
                .with_status("s")
                .with_author("me"),
        )?;
        tx.create_edge(
            edge("a", RelationType::Calls, "b")
                .with_weight(0.25)
                .with_confidence(0.5)
                .bidirectional(),
        )?;
        Ok(())
    })
    .unwrap();
    let b = s.get_node("b").unwrap();
    s.update_node(b, Some(1)).unwrap();
    let before = dump(&s);
    drop(s);
    assert!(f.reopen());
    let after = dump(&f.store);
    assert_eq!(after, before);
    assert_eq!(f.store.get_node("b").unwrap().metadata.version, 2);
    assert_eq!(f.store.resolve_dependencies("b").unwrap(), ["a"]);
    // The reopened store takes writes and keeps enforcing its rules.
    f.store.create_node(thing("c")).unwrap();
    assert_eq!(
        f.store.create_node(thing("a")).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    assert!(f.store.check().unwrap().is_ok());
    assert!(f.reopen());
    assert!(f.store.contains_node("c").unwrap());
}
