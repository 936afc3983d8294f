//! The crash workload itself: deterministic, always applicable, bounded, and
//! keeping its counters' sum.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kgstore::{DocumentRead, GraphRead, Store};
use kgstore_reliability::snapshot::Snapshot;
use kgstore_reliability::workload::{self, Kind};

fn run(seed: u64, transactions: u64) -> Vec<Snapshot> {
    let store = Store::memory();
    let mut states = Vec::new();
    for g in 0..transactions {
        store
            .write(|tx| workload::apply(tx, seed, g))
            .unwrap_or_else(|e| panic!("seed {seed}, transaction {g}: {e}"));
        let state = Snapshot::of(&store).unwrap();
        assert!(
            state.workload_problems().is_empty(),
            "{:?}",
            state.workload_problems()
        );
        states.push(state);
    }
    let check = store.check().unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
    // Old groups and solo nodes go: the store's size stays bounded.
    assert!(
        store.count_nodes().unwrap() < 80,
        "{}",
        store.count_nodes().unwrap()
    );
    // Documents come and go with the graph, and stay bounded too.
    let documents = store.count_documents().unwrap();
    assert!((1..60).contains(&documents), "{documents}");
    assert!(
        states
            .iter()
            .any(|s| s.documents.keys().any(|k| k.ends_with("blob.bin")))
    );
    states
}

#[test]
fn the_workload_applies_keeps_its_sum_and_stays_bounded() {
    for seed in [1, 2, 3, 20261201] {
        run(seed, 400);
    }
}

#[test]
fn the_workload_is_deterministic_and_every_transaction_changes_the_store() {
    let (a, b) = (run(7, 60), run(7, 60));
    assert_eq!(a, b);
    for pair in a.windows(2) {
        assert_ne!(pair[0], pair[1]);
    }
    let kinds: Vec<Kind> = (0..200).map(|g| workload::kind(7, g)).collect();
    for kind in [
        Kind::Setup,
        Kind::Group,
        Kind::Solo,
        Kind::Transfer,
        Kind::Note,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} never comes");
    }
}
