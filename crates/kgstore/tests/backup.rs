//! Backup, verify and restore: round trips, consistency under concurrent writers,
//! corruption detection, atomic replacement, interrupted backups, the v1 fixture.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kgstore::backup::{self, Manifest, Phase, RestoreMode};
use kgstore::events::{
    Append, AppendOptions, EventRead, ExpectedVersion, GroupOptions, Nack, NewEvent, ReadOptions,
    Retention,
};
use kgstore::{
    Edge, ErrorKind, GraphRead, Node, OnDependents, RelationType, SchemaTarget, Store, Timestamp,
};
use kgstore_core::suite::faulty::{FaultPlan, FaultyBackend};
use kgstore_core::suite::{dump, scrambled_graph};
use serde_json::json;

fn memory() -> Store {
    kgstore::open("memory://").unwrap()
}

/// A store with schemas, hostile values, dependencies, edges and documents.
fn graph_and_documents() -> Store {
    let s = memory();
    s.set_schema(
        SchemaTarget::NodeType("crate".into()),
        json!({"type": "object", "required": ["version"]}),
    )
    .unwrap();
    s.set_schema(
        SchemaTarget::RelationType(RelationType::DependsOn),
        json!({"type": "object"}),
    )
    .unwrap();
    s.write(|tx| {
        tx.create_node(Node::new("serde", "crate")?.with_attribute("version", json!("1.0")))?;
        tx.create_node(
            Node::new("quote's \"name\" ;--", "crate")?
                .with_attribute("version", json!("0.1"))
                .with_observation("nul \0 and\nnewline and 😀")
                .with_dependency("serde")
                .with_tag("b")
                .with_tag("a"),
        )?;
        tx.create_edge(
            Edge::new("quote's \"name\" ;--", RelationType::DependsOn, "serde")?.with_weight(0.5),
        )?;
        Ok(())
    })
    .unwrap();
    s.write(|tx| {
        tx.write_document("scripts/pilot.fountain", "INT. HOUSE - DAY\n")?;
        tx.write_document("Caf\u{e9}/same bytes", "shared")?;
        tx.write_document("Cafe\u{301}/same bytes", "shared")?;
        tx.write_document("empty", "")?;
        tx.write_document_from(
            "blobs/scene-1.bin",
            &(0..300_000u32)
                .map(|i| (i % 253) as u8)
                .collect::<Vec<u8>>()[..],
            &kgstore::WriteOptions::new().content_type("application/x-embedding"),
        )?;
        Ok(())
    })
    .unwrap();
    s.write_document("scripts/pilot.fountain", "INT. HOUSE - NIGHT\n")
        .unwrap();
    scrambled_graph(&s, 40);
    let node = s.get_node("serde").unwrap();
    s.update_node(node.with_observation("updated"), Some(1))
        .unwrap();
    s
}

/// [`graph_and_documents`] with events of every kind.
fn rich_store() -> Store {
    let s = graph_and_documents();
    add_events(&s);
    s
}

/// Events of every kind of state: streams with hostile names, a batch, removed
/// events, a consumer group with a settled and a dead-lettered delivery, an event
/// schema, and the change feed.
fn add_events(s: &Store) {
    s.set_event_schema("order.placed", json!({"type": "object"}), None)
        .unwrap();
    s.create_group("billing", GroupOptions::default()).unwrap();
    s.append_all(
        vec![
            Append::new(
                "orders",
                ExpectedVersion::NoStream,
                [
                    NewEvent::new("order.placed", json!({"n": 1, "b": [true, null]}))
                        .with_id("o1")
                        .with_correlation_id("corr"),
                    NewEvent::new("order.paid", json!(2.5)).with_id("o1-paid"),
                ],
            ),
            Append::new(
                "Café ../x \"quoted\"",
                ExpectedVersion::NoStream,
                [NewEvent::new("note", json!("nul \0 😀"))
                    .with_metadata("k", json!({"z": 1, "a": 2}))],
            ),
        ],
        &AppendOptions {
            batch: Some("batch-1".into()),
        },
    )
    .unwrap();
    for i in 0..3 {
        s.append(
            "short",
            ExpectedVersion::Any,
            [NewEvent::new("tick", json!(i))],
        )
        .unwrap();
    }
    s.set_retention(
        "short",
        Retention {
            max_count: Some(1),
            ..Retention::default()
        },
    )
    .unwrap();
    let c = s.consumer("billing", "backup-test").unwrap();
    let d = c.poll(2).unwrap();
    c.ack(&d[0]).unwrap();
    c.nack(&d[1], &Nack::Park, "kept").unwrap();
    s.set_change_feed(true).unwrap();
    s.create_node(Node::new("recorded", "thing").unwrap())
        .unwrap();
}

/// Every event and state entry, through a backup's own export.
fn events_of(
    s: &Store,
) -> (
    Vec<kgstore::events::LogRecord>,
    Vec<(String, String, serde_json::Value)>,
) {
    s.read()
        .unwrap()
        .with_events(|r, _| {
            let mut records = Vec::new();
            let mut from = 1;
            loop {
                let page = kgstore::events::import::export_records(r, from)?;
                let Some(last) = page.last().map(|r| r.position) else {
                    break;
                };
                records.extend(page);
                from = last + 1;
            }
            Ok((records, kgstore::events::import::export_state(r)?))
        })
        .unwrap()
}

fn files_of(manifest: &Manifest) -> Vec<(String, String)> {
    manifest
        .files
        .iter()
        .map(|f| (f.name.clone(), f.sha256.clone()))
        .collect()
}

#[test]
fn round_trip_keeps_everything_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let source = rich_store();
    let mut phases = Vec::new();
    let manifest =
        backup::backup_with(&source, &dir.path().join("one"), |p| phases.push(p)).unwrap();
    assert_eq!(manifest.format, backup::FORMAT);
    assert_eq!(manifest.format_version, backup::FORMAT_VERSION);
    assert_eq!(manifest.source_backend, "memory");
    assert_eq!(manifest.counts.events, source.last_position().unwrap());
    assert!(manifest.counts.event_state > 5);
    assert_eq!(manifest.counts.documents, 5);
    // Equal bytes are kept once: five documents, four values.
    let values = manifest
        .files
        .iter()
        .filter(|f| f.name.starts_with("values/"))
        .count();
    assert_eq!(values, 4);
    assert_eq!(manifest.counts.nodes, source.count_nodes().unwrap());
    assert_eq!(manifest.counts.edges, source.count_edges().unwrap());
    assert_eq!(manifest.counts.schemas, 2);
    let last_nodes = phases
        .iter()
        .rev()
        .find(|p| p.phase == Phase::Nodes)
        .unwrap();
    assert_eq!(last_nodes.done, last_nodes.total);
    let report = backup::verify(&dir.path().join("one")).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);

    let target = memory();
    let restored =
        backup::restore_into(&dir.path().join("one"), &target, RestoreMode::Empty).unwrap();
    assert_eq!(restored.nodes, manifest.counts.nodes);
    assert_eq!(
        dump(&target),
        dump(&source),
        "timestamps and versions included"
    );
    assert_eq!(restored.documents, 5);
    assert_eq!(documents(&target), documents(&source));
    assert_eq!(target.get_node("serde").unwrap().metadata.version, 2);
    assert!(target.check().unwrap().is_ok());
    assert_eq!(
        events_of(&target),
        events_of(&source),
        "the event store, state included"
    );
    assert_eq!(restored.events, manifest.counts.events);
    assert_eq!(
        target.group_status("billing").unwrap(),
        source.group_status("billing").unwrap()
    );
    assert!(target.change_feed_enabled().unwrap());
    // A retried append is recognised in the restored store.
    let again = target
        .append(
            "orders",
            ExpectedVersion::Any,
            [
                NewEvent::new("order.placed", json!({"n": 1, "b": [true, null]}))
                    .with_id("o1")
                    .with_correlation_id("corr"),
                NewEvent::new("order.paid", json!(2.5)).with_id("o1-paid"),
            ],
        )
        .unwrap();
    assert!(again.duplicate);
    // The restored store backs up to the same bytes: the format is canonical.
    let again = backup::backup(&target, &dir.path().join("two")).unwrap();
    assert_eq!(files_of(&again), files_of(&manifest));
}

/// Every document with its metadata and bytes.
fn documents(store: &Store) -> Vec<kgstore::Document> {
    use kgstore::DocumentRead;
    let page = store
        .list_documents(&kgstore::DocumentQuery::prefix("").limit(1000))
        .unwrap();
    page.documents
        .iter()
        .map(|m| store.get_document(&m.key).unwrap())
        .collect()
}

fn export(store: &Store) -> Vec<u8> {
    let mut out = Vec::new();
    kgstore::formats::export_jsonl(store, &mut out, |_| {}).unwrap();
    out
}

/// Restore is migration: memory → sqlite → jsonfs → sqlite through backups keeps
/// every byte of the canonical export, timestamps and versions included, and every
/// backup along the way has the same file hashes.
#[test]
fn migration_memory_sqlite_jsonfs_git_sqlite_is_byte_identical() {
    // The git backend keeps no events: this chain carries the graph and documents.
    migrate_through(
        graph_and_documents(),
        &["sqlite", "jsonfs", "git", "sqlite"],
    );
}

#[test]
fn migration_with_events_memory_sqlite_jsonfs_sqlite_is_byte_identical() {
    migrate_through(rich_store(), &["sqlite", "jsonfs", "sqlite"]);
}

/// Issue 12's hostile keys (traversal, separators, reserved names, case and
/// Unicode twins, the longest allowed key and segment): every allowed one, with its
/// own bytes as content, goes through backups and restores into every backend and
/// comes out byte for byte, with the same backup files at every hop.
#[test]
fn every_allowed_hostile_document_key_migrates_byte_for_byte() {
    let source = memory();
    let written =
        kgstore_core::suite::write_allowed_keys(&source, &kgstore_core::suite::hostile_keys());
    assert!(written.len() >= 50, "{}", written.len());
    migrate_through(source, &["sqlite", "jsonfs", "git", "sqlite"]);
}

/// Backs `source` up and restores it through `backends` in turn, each hop backed up
/// again: every store exports, holds and backs up exactly the same.
fn migrate_through(source: Store, backends: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let expected = export(&source);
    let first = backup::backup(&source, &dir.path().join("from-memory")).unwrap();
    let mut from = dir.path().join("from-memory");
    for (i, backend) in backends.iter().enumerate() {
        let url = match *backend {
            "sqlite" => format!("sqlite://{}/hop-{i}.db", dir.path().display()),
            "jsonfs" => format!("json://{}/hop-{i}-json", dir.path().display()),
            _ => format!("git://{}/hop-{i}.git", dir.path().display()),
        };
        let report = backup::restore(&from, &url, RestoreMode::Empty).unwrap();
        assert_eq!(report.nodes, first.counts.nodes, "{url}");
        let store = kgstore::open(&url).unwrap();
        assert_eq!(store.backend_name(), *backend);
        assert!(store.check().unwrap().is_ok(), "{url}");
        assert_eq!(export(&store), expected, "hop {i}: {url}");
        if *backend != "git" {
            assert_eq!(events_of(&store), events_of(&source), "hop {i}: {url}");
        }
        assert_eq!(documents(&store), documents(&source), "hop {i}: {url}");
        from = dir.path().join(format!("hop-{i}"));
        let manifest = backup::backup(&store, &from).unwrap();
        assert_eq!(manifest.source_backend, *backend);
        assert_eq!(files_of(&manifest), files_of(&first), "hop {i}: {url}");
    }
}

/// A replace that fails half-way through a persistent store leaves it as it was,
/// also after reopening the file.
#[test]
fn a_failing_replace_on_sqlite_leaves_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = fresh_backup(dir.path(), "b");
    let db = dir.path().join("target.db");
    let url = format!("sqlite://{}", db.display());
    {
        let s = kgstore::open(&url).unwrap();
        s.create_node(Node::new("precious", "thing").unwrap())
            .unwrap();
    }
    let before = dump(&kgstore::open(&url).unwrap());
    {
        let sqlite =
            kgstore::sqlite::SqliteBackend::open(&db, kgstore::sqlite::SqliteOptions::default())
                .unwrap();
        let (backend, plan) = FaultyBackend::new(sqlite);
        let target = Store::new(backend);
        plan.fail_writes_after(25);
        let err = backup::restore_into(&path, &target, RestoreMode::Replace).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    }
    let reopened = kgstore::open(&url).unwrap();
    assert_eq!(dump(&reopened), before);
    backup::restore_into(&path, &reopened, RestoreMode::Replace).unwrap();
    assert_eq!(dump(&reopened), dump(&rich_store_restored(&path)));
}

#[test]
fn backup_refuses_an_existing_destination() {
    let dir = tempfile::tempdir().unwrap();
    let s = rich_store();
    backup::backup(&s, &dir.path().join("b")).unwrap();
    let err = backup::backup(&s, &dir.path().join("b")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = err.to_string();
    assert!(
        !err.contains("remove it"),
        "a whole backup is not to be removed: {err}"
    );

    // A backup that stopped before its manifest: its files, no manifest.
    let cut = dir.path().join("cut");
    backup::backup(&s, &cut).unwrap();
    fs::remove_file(cut.join("manifest.json")).unwrap();
    let err = backup::backup(&s, &cut).unwrap_err().to_string();
    assert!(
        err.contains("interrupted backup") && err.contains("remove it to retry"),
        "{err}"
    );

    // What a user most often gives: a folder of their own that exists (the folder
    // of their backups, an empty one, a file). It is not an interrupted backup, and
    // the message must not tell them to remove it.
    fs::create_dir(dir.path().join("empty")).unwrap();
    let mine = dir.path().join("mine");
    fs::create_dir(&mine).unwrap();
    fs::write(mine.join("notes.txt"), "keep me").unwrap();
    let file = dir.path().join("file.txt");
    fs::write(&file, "keep me").unwrap();
    for (dest, says) in [
        (dir.path().join("empty"), "it is empty"),
        (dir.path().to_path_buf(), "not a backup"),
        (mine.clone(), "not a backup"),
        (file.clone(), "a file"),
    ] {
        let err = backup::backup(&s, &dest).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        let err = err.to_string();
        assert!(err.contains(says), "{}: {err}", dest.display());
        assert!(!err.contains("interrupted"), "{}: {err}", dest.display());
        assert!(
            err.contains("creates its own folder"),
            "{}: {err}",
            dest.display()
        );
    }
    assert_eq!(
        fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn backup_while_writers_commit_is_one_instant_on_memory() {
    backup_while_writers_commit(memory());
}

#[test]
fn backup_while_writers_commit_is_one_instant_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/kg.db?durability=relaxed", dir.path().display());
    backup_while_writers_commit(kgstore::open(&url).unwrap());
}

#[test]
fn backup_while_writers_commit_is_one_instant_on_jsonfs() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("json://{}/kg?durability=relaxed", dir.path().display());
    backup_while_writers_commit(kgstore::open(&url).unwrap());
}

/// Nodes and edges are written side by side (memory and SQLite open two reads of
/// one snapshot): a failure of either scan, the edges' half-way through, fails the
/// backup and leaves nothing behind; healed, the same store backs up whole, each
/// phase's progress reported in order and complete.
#[test]
fn a_failing_scan_on_either_side_fails_a_side_by_side_backup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kg.db");
    let sqlite = kgstore::sqlite::SqliteBackend::open(
        &db,
        kgstore::sqlite::SqliteOptions::default().durability(kgstore::Durability::Relaxed),
    )
    .unwrap();
    fn faulty(backend: impl kgstore::Backend + 'static) -> (Store, Arc<FaultPlan>) {
        let (backend, plan) = FaultyBackend::new(backend);
        (Store::new(backend), plan)
    }
    // Cases 0 and 2: the edge scan fails half-way; case 1: the node scan fails.
    let cases = [
        faulty(kgstore::MemoryBackend::new()),
        faulty(kgstore::MemoryBackend::new()),
        faulty(sqlite),
    ];
    for (i, (s, plan)) in cases.iter().enumerate() {
        s.create_nodes((0..3000).map(|n| Node::new(format!("n{n:05}"), "thing").unwrap()))
            .unwrap();
        s.create_edges(
            (1..3000)
                .map(|n| Edge::new(format!("n{n:05}"), RelationType::Calls, "n00000").unwrap()),
        )
        .unwrap();
        assert!(s.read_pair().unwrap().1.is_some(), "case {i}");
        let dest = dir.path().join(format!("b{i}"));
        if i == 1 {
            plan.fail_reads(true);
        } else {
            plan.fail_edge_listings_after(1500);
        }
        let err = backup::backup(s, &dest).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "case {i}: {err}");
        assert!(err.to_string().contains("injected"), "case {i}: {err}");
        assert!(!dest.exists(), "case {i}");
        assert!(
            !dir.path().join(format!(".b{i}.partial")).exists(),
            "case {i}"
        );
        plan.heal();
        let mut phases = Vec::new();
        let manifest = backup::backup_with(s, &dest, |p| phases.push(p)).unwrap();
        assert_eq!((manifest.counts.nodes, manifest.counts.edges), (3000, 2999));
        assert!(backup::verify(&dest).unwrap().is_ok(), "case {i}");
        let graph: Vec<Phase> = phases
            .iter()
            .map(|p| p.phase)
            .filter(|p| matches!(p, Phase::Nodes | Phase::Edges))
            .collect();
        let first_edge = graph.iter().position(|p| *p == Phase::Edges).unwrap();
        assert!(
            graph[first_edge..].iter().all(|p| *p == Phase::Edges),
            "case {i}"
        );
        let last = |phase| phases.iter().rev().find(|p| p.phase == phase).unwrap();
        assert_eq!(
            (last(Phase::Nodes).done, last(Phase::Nodes).total),
            (3000, 3000)
        );
        assert_eq!(
            (last(Phase::Edges).done, last(Phase::Edges).total),
            (2999, 2999)
        );
        let target = memory();
        backup::restore_into(&dest, &target, RestoreMode::Empty).unwrap();
        assert_eq!(dump(&target), dump(s), "case {i}");
    }
}

/// An edge scan that fails early stops the node scan running beside it at its
/// next line, rather than letting it list the whole store: the node listing is
/// held after 100 nodes until the edge listing has failed (after 10 edges), and
/// then hands over one more before the backup stops it. The edge scan's error
/// comes back, not the node scan's "stopped", and nothing is left behind.
/// (Before the fix, the node scan went on to list all 20,000.)
#[test]
fn regression_an_edge_scan_failing_early_stops_the_node_scan() {
    let dir = tempfile::tempdir().unwrap();
    const NODES: usize = 20_000;
    let (s, plan) = faulty_star(kgstore::MemoryBackend::new(), NODES);
    plan.fail_edge_listings_after(10);
    plan.hold_node_listings_at(100);
    let dest = dir.path().join("b");
    let err = backup::backup(&s, &dest).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("injected"), "{err}");
    assert!(!err.to_string().contains("stopped"), "{err}");
    let listed = plan.nodes_listed();
    // Usually 101 (the hold at 100 waits for the edge scan's failure, then 20 ms);
    // fewer when the edge scan fails before the node scan reaches the hold (a node
    // thread descheduled at its start: 76 seen under load), more only for a thread
    // descheduled for the whole 20 ms. What is pinned is that it stops early.
    assert!(
        listed < NODES / 2,
        "the node scan listed {listed} of {NODES} nodes"
    );
    assert!(!dest.exists());
    assert!(!dir.path().join(".b.partial").exists());
    plan.heal();
    let manifest = backup::backup(&s, &dest).unwrap();
    assert_eq!(manifest.counts.nodes, NODES as u64);
    assert_eq!(plan.nodes_listed(), NODES);
}

/// A store on `backend` behind a fault plan, with `nodes` nodes `n00000`, `n00001`,
/// … and an edge from each but the first to the first; its reads come in pairs
/// (side-by-side backups).
fn faulty_star(backend: impl kgstore::Backend + 'static, nodes: usize) -> (Store, Arc<FaultPlan>) {
    let (backend, plan) = FaultyBackend::new(backend);
    let s = Store::new(backend);
    s.create_nodes((0..nodes).map(|n| Node::new(format!("n{n:05}"), "thing").unwrap()))
        .unwrap();
    s.create_edges(
        (1..nodes).map(|n| Edge::new(format!("n{n:05}"), RelationType::Calls, "n00000").unwrap()),
    )
    .unwrap();
    assert!(s.read_pair().unwrap().1.is_some());
    (s, plan)
}

/// A panic on the backup's calling thread while the edges are scanned beside it
/// (its progress callback, at the nodes' first report, then at the edges' first)
/// stops the edge scan at its next line, rather than leaving the scope to wait
/// while the edges are listed to the end: the edge listing is held after 2,000
/// edges until the callback's panic unwinds (after the panic hook, which may take
/// long to print a backtrace), then lists one more before the backup stops it. The panic reaches the caller as it was; no backup folder is made, nor is the
/// partial one left behind (its guard removes it as the panic unwinds); the store
/// backs up whole after. On memory and SQLite, the
/// backends with a second read on one snapshot. (Without session 15's mend,
/// `PanicHalts` on the calling thread, the edge scan lists all 19,999 edges.)
#[test]
fn regression_a_panic_on_the_calling_thread_stops_the_edge_scan() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = kgstore::sqlite::SqliteBackend::open(
        dir.path().join("kg.db"),
        kgstore::sqlite::SqliteOptions::default().durability(kgstore::Durability::Relaxed),
    )
    .unwrap();
    a_panic_on_the_calling_thread_stops_the_edge_scan(
        "memory",
        kgstore::MemoryBackend::new(),
        dir.path(),
    );
    a_panic_on_the_calling_thread_stops_the_edge_scan("sqlite", sqlite, dir.path());
}

#[allow(clippy::panic)] // the progress callback's panic is what is tested
fn a_panic_on_the_calling_thread_stops_the_edge_scan(
    name: &str,
    backend: impl kgstore::Backend + 'static,
    dir: &Path,
) {
    const NODES: usize = 20_000;
    const HOLD: usize = 2000;
    let (s, plan) = faulty_star(backend, NODES);
    for phase in [Phase::Nodes, Phase::Edges] {
        let case = format!("{name}, panic at the first {phase:?} report");
        plan.heal();
        plan.hold_edge_listings_at(HOLD);
        let dest = dir.join(format!("b-{name}-{phase:?}"));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            backup::backup_with(&s, &dest, |p| {
                if p.phase == phase {
                    let start = std::time::Instant::now();
                    while !plan.edge_listing_held() && start.elapsed() < Duration::from_secs(10) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    // Released as the panic unwinds this frame, after the hook ran.
                    struct Release<'a>(&'a FaultPlan);
                    impl Drop for Release<'_> {
                        fn drop(&mut self) {
                            self.0.release_edge_listings();
                        }
                    }
                    let _release = Release(&plan);
                    panic!("the progress callback panicked");
                }
            })
        }));
        let payload = outcome.expect_err(&case);
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the progress callback panicked"),
            "{case}"
        );
        let listed = plan.edges_listed();
        // HOLD + 1 but for a thread descheduled for the whole 100 ms the hold waits.
        assert!(
            (HOLD..NODES / 2).contains(&listed),
            "{case}: the edge scan listed {listed} of {} edges",
            NODES - 1
        );
        assert!(!dest.exists(), "{case}");
        let partial = dir.join(format!(".b-{name}-{phase:?}.partial"));
        assert!(
            !partial.exists(),
            "{case}: the partial folder was left behind"
        );
        plan.heal();
        let manifest = backup::backup(&s, &dest).unwrap();
        assert_eq!(
            (manifest.counts.nodes, manifest.counts.edges),
            (NODES as u64, NODES as u64 - 1),
            "{case}"
        );
        assert!(backup::verify(&dest).unwrap().is_ok(), "{case}");
        assert!(!partial.exists(), "{case}");
        assert_eq!(plan.edges_listed(), NODES - 1, "{case}");
    }
}

/// Writers keep `ledger.total == sum of item amounts` and `ledger.count == items`
/// in every transaction; a backup taken meanwhile must restore to a state where
/// both still hold, i.e. the store at one instant.
fn backup_while_writers_commit(s: Store) {
    let dir = tempfile::tempdir().unwrap();
    s.create_node(
        Node::new("ledger", "ledger")
            .unwrap()
            .with_attribute("total", json!(0))
            .with_attribute("count", json!(0)),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    s.write(|tx| {
                        let amount = (t * 1000 + i) % 97 + 1;
                        tx.create_node(
                            Node::new(format!("item-{t}-{i}"), "item")?
                                .with_attribute("amount", json!(amount)),
                        )?;
                        tx.create_edge(Edge::new(
                            "ledger",
                            RelationType::Contains,
                            format!("item-{t}-{i}"),
                        )?)?;
                        let mut ledger = tx.get_node("ledger")?;
                        let total = ledger.attributes["total"].as_u64().unwrap_or(0) + amount;
                        let count = ledger.attributes["count"].as_u64().unwrap_or(0) + 1;
                        ledger.attributes.insert("total".into(), json!(total));
                        ledger.attributes.insert("count".into(), json!(count));
                        tx.update_node(ledger, None)?;
                        Ok(())
                    })
                    .unwrap();
                    i += 1;
                }
                i
            })
        })
        .collect();
    // Let the writers get going, then back up several times while they run.
    while s.count_nodes().unwrap() < 200 {
        std::thread::yield_now();
    }
    let mut checked = 0;
    for round in 0..3 {
        let path = dir.path().join(format!("b{round}"));
        backup::backup(&s, &path).unwrap();
        let target = memory();
        backup::restore_into(&path, &target, RestoreMode::Empty).unwrap();
        let ledger = target.get_node("ledger").unwrap();
        let (nodes, edges, _) = dump(&target);
        let items: Vec<&Node> = nodes.iter().filter(|n| n.node_type == "item").collect();
        let sum: u64 = items
            .iter()
            .map(|n| n.attributes["amount"].as_u64().unwrap())
            .sum();
        assert_eq!(ledger.attributes["total"], json!(sum), "round {round}");
        assert_eq!(
            ledger.attributes["count"],
            json!(items.len()),
            "round {round}"
        );
        assert_eq!(edges.len(), items.len(), "round {round}");
        checked += items.len();
    }
    stop.store(true, Ordering::SeqCst);
    let written: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(
        written as usize * 3 >= checked,
        "the backups saw writes that were made"
    );
}

/// A fresh, verified backup of `rich_store()` in `dir/name`.
fn fresh_backup(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    backup::backup(&rich_store(), &path).unwrap();
    path
}

/// Rewrites the manifest so its sizes and hashes match the files again.
fn reseal(path: &Path) {
    let mut manifest = backup::read_manifest(path).unwrap();
    for entry in &mut manifest.files {
        let bytes = fs::read(path.join(&entry.name)).unwrap();
        entry.size = bytes.len() as u64;
        use sha2::Digest;
        entry.sha256 = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
    }
    fs::write(
        path.join(backup::MANIFEST_FILE),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

/// Changes the manifest's counts and reseals it.
fn recount(path: &Path, change: impl FnOnce(&mut backup::Counts)) {
    let mut manifest = backup::read_manifest(path).unwrap();
    change(&mut manifest.counts);
    fs::write(
        path.join(backup::MANIFEST_FILE),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    reseal(path);
}

/// Something done to a backup folder.
type Damage = Box<dyn Fn(&Path)>;

/// Each damage must be caught by verify, named, and refused by restore with the
/// target left exactly as it was.
#[test]
fn corruption_is_detected_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "flipped byte",
            Box::new(|p: &Path| {
                let mut bytes = fs::read(p.join("nodes.jsonl")).unwrap();
                let at = bytes.len() / 2;
                bytes[at] ^= 0x20;
                fs::write(p.join("nodes.jsonl"), bytes).unwrap();
            }),
            "SHA-256",
        ),
        (
            "truncated file",
            Box::new(|p: &Path| {
                let bytes = fs::read(p.join("edges.jsonl")).unwrap();
                fs::write(p.join("edges.jsonl"), &bytes[..bytes.len() - 10]).unwrap();
            }),
            "bytes long",
        ),
        (
            "missing file",
            Box::new(|p: &Path| fs::remove_file(p.join("schemas.json")).unwrap()),
            "missing",
        ),
        (
            "extra file",
            Box::new(|p: &Path| fs::write(p.join("notes.txt"), "hi").unwrap()),
            "extra file",
        ),
        (
            "dangling edge",
            Box::new(|p: &Path| {
                let mut text = fs::read_to_string(p.join("edges.jsonl")).unwrap();
                let edge = Edge::new("zzz-ghost", RelationType::Calls, "serde").unwrap();
                let mut edge = edge;
                edge.metadata.version = 1;
                text.push_str(&serde_json::to_string(&edge).unwrap());
                text.push('\n');
                fs::write(p.join("edges.jsonl"), text).unwrap();
                recount(p, |c| c.edges += 1);
            }),
            "does not hold",
        ),
        (
            "dependency cycle",
            Box::new(|p: &Path| {
                // serde comes to depend on the node that depends on serde.
                let text: Vec<String> = fs::read_to_string(p.join("nodes.jsonl"))
                    .unwrap()
                    .lines()
                    .map(|line| {
                        if line.starts_with("{\"name\":\"serde\",") {
                            line.replace(
                                "\"dependencies\":[]",
                                "\"dependencies\":[\"quote's \\\"name\\\" ;--\"]",
                            )
                        } else {
                            line.to_owned()
                        }
                    })
                    .collect();
                fs::write(p.join("nodes.jsonl"), text.join("\n") + "\n").unwrap();
                reseal(p);
            }),
            "cycle",
        ),
        (
            "flipped byte of a document's value",
            Box::new(|p: &Path| {
                let manifest = backup::read_manifest(p).unwrap();
                let value = manifest
                    .files
                    .iter()
                    .find(|f| f.name.starts_with("values/"))
                    .unwrap();
                let mut bytes = fs::read(p.join(&value.name)).unwrap();
                bytes[0] ^= 0x01;
                fs::write(p.join(&value.name), bytes).unwrap();
            }),
            "SHA-256",
        ),
        (
            "a document without its value",
            Box::new(|p: &Path| {
                let mut text = fs::read_to_string(p.join("documents.jsonl")).unwrap();
                let line = text.lines().next().unwrap().to_owned();
                let mut meta: kgstore::DocumentMeta = serde_json::from_str(&line).unwrap();
                meta.key = "zz/extra".into();
                meta.sha256 = kgstore::documents::Sha256Digest::of(b"nowhere");
                text.push_str(&serde_json::to_string(&meta).unwrap());
                text.push('\n');
                fs::write(p.join("documents.jsonl"), text).unwrap();
                reseal(p);
            }),
            "are not in the backup",
        ),
        (
            "a document inside a document",
            Box::new(|p: &Path| {
                let mut text = fs::read_to_string(p.join("documents.jsonl")).unwrap();
                let line = text
                    .lines()
                    .find(|l| l.contains("\"empty\""))
                    .unwrap()
                    .to_owned();
                let mut meta: kgstore::DocumentMeta = serde_json::from_str(&line).unwrap();
                meta.key = "empty/inside".into();
                text.push_str(&serde_json::to_string(&meta).unwrap());
                text.push('\n');
                fs::write(p.join("documents.jsonl"), text).unwrap();
                reseal(p);
            }),
            "both a document and a folder",
        ),
        (
            "malformed line",
            Box::new(|p: &Path| {
                let mut text = fs::read_to_string(p.join("nodes.jsonl")).unwrap();
                text.push_str("{\"name\": \n");
                fs::write(p.join("nodes.jsonl"), text).unwrap();
                reseal(p);
            }),
            "line",
        ),
        (
            "future version",
            Box::new(|p: &Path| {
                let text = fs::read_to_string(p.join("manifest.json")).unwrap();
                fs::write(
                    p.join("manifest.json"),
                    text.replace(
                        &format!("\"format_version\": {}", backup::FORMAT_VERSION),
                        &format!("\"format_version\": {}", backup::FORMAT_VERSION + 1),
                    ),
                )
                .unwrap();
            }),
            "newer kgstore",
        ),
        (
            "gap in the log",
            Box::new(|p: &Path| {
                let text = fs::read_to_string(p.join("events.jsonl")).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                let kept: String = lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != 1)
                    .map(|(_, l)| format!("{l}\n"))
                    .collect();
                fs::write(p.join("events.jsonl"), kept).unwrap();
                reseal(p);
            }),
            "without a gap",
        ),
        (
            "repeated event id",
            Box::new(|p: &Path| {
                let text = fs::read_to_string(p.join("events.jsonl")).unwrap();
                fs::write(
                    p.join("events.jsonl"),
                    text.replace("\"o1-paid\"", "\"o1\""),
                )
                .unwrap();
                reseal(p);
            }),
            "is repeated",
        ),
        (
            "forged event-store state",
            Box::new(|p: &Path| {
                let mut text = fs::read_to_string(p.join("event_state.jsonl")).unwrap();
                text.push_str("{\"space\":\"zzz\",\"key\":\"x\",\"value\":1}\n");
                fs::write(p.join("event_state.jsonl"), text).unwrap();
                reseal(p);
            }),
            "not a space of the event store",
        ),
        (
            "no manifest",
            Box::new(|p: &Path| fs::remove_file(p.join("manifest.json")).unwrap()),
            "incomplete",
        ),
        // Resealed damage to the graph files, which restore checks while it loads them.
        (
            "nodes out of order",
            Box::new(|p: &Path| {
                let text = fs::read_to_string(p.join("nodes.jsonl")).unwrap();
                let mut lines: Vec<&str> = text.lines().collect();
                lines.reverse();
                fs::write(p.join("nodes.jsonl"), lines.join("\n") + "\n").unwrap();
                reseal(p);
            }),
            "out of order",
        ),
        (
            "a node of version 0",
            Box::new(|p: &Path| {
                let text = fs::read_to_string(p.join("nodes.jsonl")).unwrap();
                let text = text.replacen("\"version\":1,", "\"version\":0,", 1);
                fs::write(p.join("nodes.jsonl"), text).unwrap();
                reseal(p);
            }),
            "version 0",
        ),
        (
            "attributes against the schema",
            Box::new(|p: &Path| {
                let text = fs::read_to_string(p.join("nodes.jsonl")).unwrap();
                let text =
                    text.replace("\"attributes\":{\"version\":\"1.0\"}", "\"attributes\":{}");
                fs::write(p.join("nodes.jsonl"), text).unwrap();
                reseal(p);
            }),
            "version",
        ),
        (
            "a dependency the backup does not hold",
            Box::new(|p: &Path| {
                let text = fs::read_to_string(p.join("nodes.jsonl")).unwrap();
                let text = text.replace(
                    "\"dependencies\":[\"serde\"]",
                    "\"dependencies\":[\"zz-gone\"]",
                );
                fs::write(p.join("nodes.jsonl"), text).unwrap();
                reseal(p);
            }),
            "does not hold",
        ),
        (
            "a repeated edge",
            Box::new(|p: &Path| {
                let text = fs::read_to_string(p.join("edges.jsonl")).unwrap();
                let first = text.lines().next().unwrap().to_owned();
                fs::write(p.join("edges.jsonl"), format!("{first}\n{text}")).unwrap();
                recount(p, |c| c.edges += 1);
            }),
            "repeated",
        ),
        (
            "counts that do not match",
            Box::new(|p: &Path| {
                recount(p, |c| c.nodes += 1);
            }),
            // The count that differs, by name and file (not `Counts { nodes: … }`).
            "do not match the files: nodes: the manifest says",
        ),
    ];
    for (name, damage, expected) in cases {
        let path = fresh_backup(dir.path(), &name.replace(' ', "_"));
        damage(&path);
        let report = backup::verify(&path).unwrap();
        assert!(!report.is_ok(), "{name}: verify found nothing");
        let text: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|p| p.contains(expected)),
            "{name}: {text:?}"
        );
        // Restore refuses, into an empty store and over an existing one.
        let target = memory();
        target
            .create_node(Node::new("precious", "thing").unwrap())
            .unwrap();
        let before = dump(&target);
        let err = backup::restore_into(&path, &target, RestoreMode::Replace).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{name}: {err}");
        assert!(err.to_string().contains(expected), "{name}: {err}");
        assert_eq!(dump(&target), before, "{name}: the target changed");
        let empty = memory();
        let err = backup::restore_into(&path, &empty, RestoreMode::Empty).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{name}: {err}");
        assert_eq!(
            empty.count_nodes().unwrap(),
            0,
            "{name}: the empty target changed"
        );
    }
}

#[test]
fn a_backup_folder_that_does_not_exist_is_not_found_and_a_file_is_not_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let err = backup::verify(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("backup folder"), "{err}");
    assert!(err.to_string().contains("typo"), "{err}");
    let target = memory();
    let err = backup::restore_into(&missing, &target, RestoreMode::Empty).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!missing.exists());
    let file = dir.path().join("a-file");
    fs::write(&file, b"not a backup").unwrap();
    let err = backup::verify(&file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("not a folder"), "{err}");
    // An empty folder is a folder: a backup that was never finished, reported as
    // a problem (as before).
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let report = backup::verify(&empty).unwrap();
    assert!(!report.is_ok());
}

#[test]
fn restore_into_a_non_empty_store_needs_replace() {
    let dir = tempfile::tempdir().unwrap();
    let path = fresh_backup(dir.path(), "b");
    let target = memory();
    target
        .create_node(Node::new("precious", "thing").unwrap())
        .unwrap();
    let err = backup::restore_into(&path, &target, RestoreMode::Empty).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("not empty"), "{err}");
    // The message names the way to replace it, in the library and the CLI.
    assert!(err.to_string().contains("RestoreMode::Replace"), "{err}");
    assert!(err.to_string().contains("--replace"), "{err}");
    assert_eq!(target.count_nodes().unwrap(), 1);
    backup::restore_into(&path, &target, RestoreMode::Replace).unwrap();
    assert!(!target.contains_node("precious").unwrap());
    assert_eq!(dump(&target), dump(&rich_store_restored(&path)));
}

fn rich_store_restored(path: &Path) -> Store {
    let s = memory();
    backup::restore_into(path, &s, RestoreMode::Empty).unwrap();
    s
}

#[test]
fn a_failing_replace_leaves_the_old_store_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = fresh_backup(dir.path(), "b");
    let (backend, plan) = FaultyBackend::new(kgstore::MemoryBackend::new());
    let target = Store::new(backend);
    target
        .create_node(Node::new("precious", "thing").unwrap())
        .unwrap();
    target
        .create_node(
            Node::new("user", "thing")
                .unwrap()
                .with_dependency("precious"),
        )
        .unwrap();
    let before = dump(&target);
    plan.fail_writes_after(30);
    let err = backup::restore_into(&path, &target, RestoreMode::Replace).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    plan.heal();
    assert_eq!(dump(&target), before);
    target.delete_node("user", OnDependents::Refuse).unwrap();
}

/// The version-3 fixture: a node, a document and the event store, the change feed
/// holding the document's change. `KGSTORE_WRITE_FIXTURES=1` rewrites it (only when
/// the format changes).
#[test]
fn the_version_3_fixture_still_restores() {
    use kgstore::DocumentRead;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backup-v3");
    if std::env::var_os("KGSTORE_WRITE_FIXTURES").is_some() {
        let _ = fs::remove_dir_all(&fixture);
        let s = memory();
        s.create_node(Node::new("serde", "crate").unwrap()).unwrap();
        add_events(&s);
        s.write_document("notes/v3.md", "# events and documents\n")
            .unwrap();
        backup::backup(&s, &fixture).unwrap();
    }
    let report = backup::verify(&fixture).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.manifest.unwrap().format_version, 3);
    let dir = tempfile::tempdir().unwrap();
    let urls = [
        "memory://".to_owned(),
        format!("sqlite://{}/kg.db", dir.path().display()),
        format!("json://{}/kg", dir.path().display()),
    ];
    for url in urls {
        let s = kgstore::open(&url).unwrap();
        let restored = backup::restore_into(&fixture, &s, RestoreMode::Empty).unwrap();
        assert_eq!((restored.nodes, restored.events), (2, 8));
        let page = s.read_stream("orders", &ReadOptions::forwards(10)).unwrap();
        assert_eq!(
            page.events[0].metadata.correlation_id.as_deref(),
            Some("corr")
        );
        let short = s.read_stream("short", &ReadOptions::forwards(10)).unwrap();
        assert_eq!(short.events.len(), 1);
        assert_eq!(short.removed.len(), 1, "removed events stay removed");
        let status = s.group_status("billing").unwrap();
        assert_eq!((status.counters.acked, status.dead_letters), (1, 1));
        assert!(s.change_feed_enabled().unwrap());
        assert_eq!(
            s.read_document("notes/v3.md").unwrap(),
            b"# events and documents\n"
        );
        let changes = s
            .read_stream(kgstore::events::CHANGES_STREAM, &ReadOptions::forwards(10))
            .unwrap();
        let last = changes.events.last().unwrap();
        assert_eq!(last.event_type, "document.created");
        assert_eq!(last.data["key"], "notes/v3.md");
        assert!(s.check().unwrap().is_ok());
    }
}

/// A version-1 backup holds no events: restoring it in place of a store's content
/// empties the store's event log too.
#[test]
fn a_version_1_backup_replaces_the_event_log_too() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backup-v1");
    let s = rich_store();
    assert!(s.last_position().unwrap() > 0);
    backup::restore_into(&fixture, &s, RestoreMode::Replace).unwrap();
    assert_eq!(s.last_position().unwrap(), 0);
    assert!(s.list_groups().unwrap().is_empty());
    assert_eq!(s.count_nodes().unwrap(), 4);
}

#[test]
fn the_version_1_fixture_still_restores() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backup-v1");
    let report = backup::verify(&fixture).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let s = memory();
    let restored = backup::restore_into(&fixture, &s, RestoreMode::Empty).unwrap();
    assert_eq!(
        (restored.nodes, restored.edges, restored.schemas),
        (4, 3, 1)
    );
    let serde = s.get_node("serde").unwrap();
    assert_eq!(serde.metadata.version, 3);
    assert_eq!(
        serde.metadata.created_at,
        Timestamp::parse("2026-01-02T03:04:05.123456Z").unwrap()
    );
    assert_eq!(serde.attributes["license"], json!("MIT OR Apache-2.0"));
    assert_eq!(
        s.resolve_dependencies("kgstore").unwrap(),
        ["serde", "serde_json"]
    );
    let edge = s
        .get_edge(&kgstore::EdgeKey::new(
            "kgstore",
            RelationType::DependsOn,
            "serde_json",
        ))
        .unwrap();
    assert_eq!(edge.metadata.weight, 2.0);
    assert_eq!(
        s.get_node("odd \"name\" ;-- 😀").unwrap().observations,
        ["with\nnewline", "nul \0 byte"]
    );
    assert!(
        s.get_schema(&SchemaTarget::NodeType("crate".into()))
            .unwrap()
            .is_some()
    );
    assert!(s.check().unwrap().is_ok());
}

/// The version-2 fixture: graph and documents (a script, a hostile key, bytes kept
/// once for two keys, an empty document), written by the kgstore that introduced
/// documents; a version-2 backup holds no events, so the restored store has none.
#[test]
fn the_version_2_fixture_still_restores_on_every_backend() {
    use kgstore::DocumentRead;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backup-v2");
    let report = backup::verify(&fixture).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.manifest.unwrap().format_version, 2);
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "memory://".to_owned(),
        format!("sqlite://{}", dir.path().join("kg.db").display()),
        format!("json://{}", dir.path().join("kg").display()),
    ] {
        let s = kgstore::open(&url).unwrap();
        let restored = backup::restore_into(&fixture, &s, RestoreMode::Empty).unwrap();
        assert_eq!((restored.nodes, restored.documents), (1, 4), "{url}");
        let pilot = s.get_document("scripts/pilot.fountain").unwrap();
        assert_eq!(pilot.content, b"INT. HOUSE - DAY\n");
        assert_eq!(pilot.meta.version, 4);
        assert_eq!(
            pilot.meta.created_at,
            Timestamp::parse("2026-01-02T03:04:05.123456Z").unwrap()
        );
        assert_eq!(s.read_document("Cafe\u{301}/a").unwrap(), b"shared");
        assert_eq!(s.read_document("empty").unwrap(), b"");
        assert_eq!(s.last_position().unwrap(), 0);
        assert!(s.check().unwrap().is_ok(), "{url}");
    }
}

/// Child mode for `a_killed_backup_never_verifies`: builds a store and backs it up.
const CHILD_ENV: &str = "KGSTORE_BACKUP_CHILD_DEST";
const CHILD_NODES: u64 = 3000;

fn child_backup(dest: &Path) {
    let s = memory();
    s.create_nodes((0..CHILD_NODES).map(|i| {
        Node::new(format!("n{i:05}"), "thing")
            .unwrap()
            .with_observation("x".repeat(200))
    }))
    .unwrap();
    backup::backup(&s, dest).unwrap();
}

#[test]
fn a_killed_backup_never_verifies() {
    if let Ok(dest) = std::env::var(CHILD_ENV) {
        child_backup(Path::new(&dest));
        return;
    }
    let cycles: u64 = std::env::var("KGSTORE_BACKUP_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let (mut complete, mut interrupted) = (0, 0);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for cycle in 0..cycles {
        let dest = dir.path().join(format!("b{cycle}"));
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "a_killed_backup_never_verifies",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dest)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 150_000));
        let _ = child.kill(); // SIGKILL on Unix
        let _ = child.wait();
        if dest.exists() {
            let report = backup::verify(&dest).unwrap();
            if report.is_ok() {
                // Only a finished backup verifies, and then it is whole.
                assert_eq!(report.counts.nodes, CHILD_NODES, "cycle {cycle}");
                complete += 1;
            }
        }
        let partial = dir.path().join(format!(".b{cycle}.partial"));
        if partial.exists() || (dest.exists() && !dest.join(backup::MANIFEST_FILE).exists()) {
            interrupted += 1;
        }
        if partial.exists() {
            assert!(
                !backup::verify(&partial).unwrap().is_ok(),
                "cycle {cycle}: a partial folder verifies"
            );
        }
    }
    eprintln!(
        "{cycles} killed backups: {complete} had finished, {interrupted} were cut off while writing"
    );
}

/// Child mode for `a_killed_restore_leaves_the_sqlite_store_as_it_was_or_whole`:
/// restores the backup named by this variable into the store named by the next one.
const RESTORE_CHILD_ENV: &str = "KGSTORE_RESTORE_CHILD_BACKUP";
const RESTORE_CHILD_STORE: &str = "KGSTORE_RESTORE_CHILD_STORE";
/// `empty` when the child restores into an empty store (`RestoreMode::Empty`).
const RESTORE_CHILD_MODE: &str = "KGSTORE_RESTORE_CHILD_MODE";
const RESTORE_NODES: usize = 2000;

/// What a killed restore's target held before: a few nodes and one edge.
fn old_content(s: &Store) {
    s.create_nodes((0..3).map(|i| Node::new(format!("old{i}"), "relic").unwrap()))
        .unwrap();
    s.create_edge(Edge::new("old0", RelationType::Calls, "old1").unwrap())
        .unwrap();
}

/// A restore is one SQLite transaction, its bulk import's dropped and rebuilt edge
/// indexes included: killed (SIGKILL) at any moment, the reopened store holds
/// either its old content or the whole backup, with the format's own schema
/// (`check` compares it and runs SQLite's integrity checks). Every other cycle
/// restores into an empty store (`RestoreMode::Empty`), which must then be empty
/// or whole; the others replace the old content (`RestoreMode::Replace`).
#[test]
fn a_killed_restore_leaves_the_sqlite_store_as_it_was_or_whole() {
    if let (Ok(from), Ok(to)) = (
        std::env::var(RESTORE_CHILD_ENV),
        std::env::var(RESTORE_CHILD_STORE),
    ) {
        let s = kgstore::open(&to).unwrap();
        let mode = match std::env::var(RESTORE_CHILD_MODE).as_deref() {
            Ok("empty") => RestoreMode::Empty,
            _ => RestoreMode::Replace,
        };
        backup::restore_into(Path::new(&from), &s, mode).unwrap();
        return;
    }
    let cycles: u64 = std::env::var("KGSTORE_RESTORE_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    let source = memory();
    source
        .create_nodes((0..RESTORE_NODES).map(|i| {
            Node::new(format!("n{i:05}"), "thing")
                .unwrap()
                .with_observation(format!("word{i} shared"))
        }))
        .unwrap();
    source
        .create_edges((0..RESTORE_NODES * 2).map(|i| {
            let edge = Edge::new(
                format!("n{:05}", i % RESTORE_NODES),
                if i < RESTORE_NODES {
                    RelationType::Calls
                } else {
                    RelationType::References
                },
                format!("n{:05}", (i * 7) % RESTORE_NODES),
            )
            .unwrap();
            if i % 3 == 0 {
                edge.bidirectional()
            } else {
                edge
            }
        }))
        .unwrap();
    let from = dir.path().join("backup");
    backup::backup(&source, &from).unwrap();
    let whole = dump(&source);
    let exe = std::env::current_exe().unwrap();
    let (mut untouched, mut restored) = (0, 0);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for cycle in 0..cycles {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("kg{cycle}.db")).display()
        );
        let empty = cycle % 2 == 1;
        let before = {
            let s = kgstore::open(&url).unwrap();
            if !empty {
                old_content(&s);
            }
            dump(&s)
        };
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "a_killed_restore_leaves_the_sqlite_store_as_it_was_or_whole",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RESTORE_CHILD_ENV, &from)
            .env(RESTORE_CHILD_STORE, &url)
            .env(RESTORE_CHILD_MODE, if empty { "empty" } else { "replace" })
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // The last cycle lets the restore finish.
        let wait = if cycle + 1 == cycles {
            u64::MAX
        } else {
            seed % 1_500_000
        };
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() >= Duration::from_micros(wait) {
                let _ = child.kill(); // SIGKILL on Unix
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.wait();
        let s = kgstore::open(&url).unwrap();
        let report = s.check().unwrap();
        assert!(report.is_ok(), "cycle {cycle}: {:?}", report.problems);
        let after = dump(&s);
        if after == before {
            untouched += 1;
        } else {
            assert!(
                after == whole,
                "cycle {cycle}: the store is neither as it was nor whole"
            );
            restored += 1;
        }
    }
    assert!(restored >= 1, "the uninterrupted restore did not finish");
    // Restored or not, a killed restore leaves the store usable: a search there
    // finds what the store holds (checked on the last, finished cycle).
    let last = format!(
        "sqlite://{}",
        dir.path().join(format!("kg{}.db", cycles - 1)).display()
    );
    let s = kgstore::open(&last).unwrap();
    let hits = s.search(&kgstore::SearchQuery::new("word1234")).unwrap();
    assert_eq!(
        hits.items
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>(),
        ["n01234"]
    );
    eprintln!("{cycles} killed restores: {untouched} left the store as it was, {restored} whole");
}

/// A restore leaves its nodes to the search index's catch-up (SQLite lists them in
/// `search_stale`): searches right after it, on the restoring handle and on a new
/// one, find exactly the restored nodes, ranked, and nothing of a replaced store.
#[test]
fn searches_after_a_restore_find_the_restored_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let source = memory();
    source
        .create_nodes((0..500).map(|i| {
            Node::new(format!("n{i:03}"), "thing")
                .unwrap()
                .with_observation(format!("token{i:03} common"))
        }))
        .unwrap();
    let from = dir.path().join("backup");
    backup::backup(&source, &from).unwrap();
    let names = |s: &Store, q: &str| -> Vec<String> {
        let mut found: Vec<String> = s
            .search(&kgstore::SearchQuery::new(q).limit(1000))
            .unwrap()
            .items
            .into_iter()
            .map(|h| h.name)
            .collect();
        found.sort();
        found
    };
    for mode in [RestoreMode::Empty, RestoreMode::Replace] {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("{mode:?}.db")).display()
        );
        let target = kgstore::open(&url).unwrap();
        if mode == RestoreMode::Replace {
            target
                .create_node(
                    Node::new("gone", "relic")
                        .unwrap()
                        .with_observation("token007 relic"),
                )
                .unwrap();
        }
        backup::restore_into(&from, &target, mode).unwrap();
        assert_eq!(names(&target, "token007"), ["n007"], "{mode:?}");
        assert!(names(&target, "relic").is_empty(), "{mode:?}");
        assert_eq!(names(&target, "common").len(), 500, "{mode:?}");
        drop(target);
        let reopened = kgstore::open(&url).unwrap();
        assert_eq!(names(&reopened, "token499"), ["n499"], "{mode:?}");
        assert_eq!(names(&reopened, "common").len(), 500, "{mode:?}");
    }
}

/// Found by fuzzing backups: verify passed metadata that restore then refused (an
/// `updated_at` earlier than `created_at`, a version SQLite cannot hold), so a backup
/// that verified could not be restored. Verify now applies restore's rules.
#[test]
fn regression_verify_refuses_updated_at_earlier_than_created_at() {
    let dir = tempfile::tempdir().unwrap();
    type Edit = fn(&mut serde_json::Value);
    let damages: [(&str, Edit); 3] = [
        ("node", |v| {
            v["metadata"]["updated_at"] = json!("1999-01-01T00:00:00Z");
        }),
        ("edge", |v| {
            v["metadata"]["updated_at"] = json!("1999-01-01T00:00:00Z");
        }),
        ("node", |v| {
            v["metadata"]["version"] = json!(u64::MAX);
        }),
    ];
    for (i, (kind, damage)) in damages.into_iter().enumerate() {
        let path = fresh_backup(dir.path(), &format!("case{i}"));
        let file = path.join(format!("{kind}s.jsonl"));
        let text = fs::read_to_string(&file).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        damage(&mut first);
        lines[0] = serde_json::to_string(&first).unwrap();
        fs::write(&file, lines.join("\n") + "\n").unwrap();
        reseal(&path);
        let report = backup::verify(&path).unwrap();
        let text: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|p| p.contains("/metadata/updated_at") || p.contains("/metadata/version")),
            "case {i}: {text:?}"
        );
        let target = memory();
        let err = backup::restore_into(&path, &target, RestoreMode::Empty).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "case {i}: {err}");
        assert_eq!(target.count_nodes().unwrap(), 0, "case {i}");
    }
}
