//! A small run of the whole workload: every backend and baseline must compute the
//! same answers. (No timing is asserted: figures depend on the machine.)

use clap::Parser;
use kgstore_bench::{Args, Phase, run};

#[test]
fn every_backend_and_baseline_agree_on_a_small_workload() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let args = Args::try_parse_from([
        "kgstore-bench",
        "--nodes",
        "300",
        "--gets",
        "300",
        "--neighbours",
        "100",
        "--two-hops",
        "50",
        "--resolutions",
        "50",
        "--commits",
        "5",
        "--searches",
        "40",
        "--documents",
        "250",
        "--doc-reads",
        "100",
        "--doc-commits",
        "7",
        "--stream-mib",
        "3",
        "--dir",
        dir_arg,
    ])
    .unwrap();
    let mut seen = 0;
    let report = run(&args, &mut |_| seen += 1).unwrap();
    assert!(report.stores.is_some());
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert_eq!(seen, report.rows.len());

    let row = |backend: &str, phase: Phase| {
        report
            .rows
            .iter()
            .find(|r| r.backend == backend && r.phase == phase.name())
            .unwrap_or_else(|| panic!("no row for {backend} {}", phase.name()))
    };
    for phase in Phase::ALL {
        for backend in ["sqlite", "jsonfs", "git"] {
            row(backend, phase);
        }
        if phase != Phase::Reopen {
            row("memory", phase);
        }
        if phase.is_document() {
            assert!(
                row("jsonfs", phase).ratio_to_baseline.is_some(),
                "{phase:?}"
            );
            row("raw-sqlite-docs", phase);
            row("bare-files", phase);
        }
        // Every SQLite figure has its baseline beside it (the substring filter is
        // itself the comparison for search).
        assert_eq!(
            row("sqlite", phase).ratio_to_baseline.is_some(),
            phase != Phase::SearchSubstring,
            "{phase:?}"
        );
    }
    // The lean hand-written SQLite baseline runs every phase it can express, and its
    // answers are checked with everyone's (the two-hop count and the traversal each
    // against its own definition).
    for phase in [
        Phase::LoadNodes,
        Phase::LoadEdges,
        Phase::Get,
        Phase::Neighbours,
        Phase::NeighbourNames,
        Phase::TwoHop,
        Phase::Traverse,
        Phase::Commit,
        Phase::Reopen,
    ] {
        assert!(
            row("raw-sqlite-lean", phase).checksum.is_some(),
            "{phase:?}"
        );
        assert!(row("sqlite", phase).lean_ratio.is_some(), "{phase:?}");
    }
    // The resolve phase's baseline before session 13 is reported beside the one
    // that gives kgstore's answers; its lists are other ones, so it has no checksum.
    assert!(
        row("raw-sqlite-any-order", Phase::Resolve)
            .checksum
            .is_none()
    );
    assert!(row("raw-sqlite", Phase::Resolve).checksum.is_some());
    // So is the two_hop phase's, whose answers agree here (no bidirectional edge).
    row("raw-sqlite-out-only", Phase::TwoHop);
    assert_ne!(
        row("sqlite", Phase::TwoHop).checksum,
        row("sqlite", Phase::Traverse).checksum,
        "walk ends and traversals count different things"
    );
    assert!(row("jsonfs", Phase::Commit).ratio_to_baseline.is_some());
    row("fsync-floor", Phase::Commit);
    // The git backend: its loads beside `git fast-import` of the same files (whose
    // branch holds as many files as the store nodes and edges), its commits beside
    // the floor; its answers are checked with everyone's (no mismatch above).
    for phase in [Phase::LoadNodes, Phase::LoadEdges, Phase::Commit] {
        assert!(row("git", phase).ratio_to_baseline.is_some(), "{phase:?}");
    }
    assert_eq!(row("git", Phase::LoadNodes).target_ratio, Some(0.5));
    assert_eq!(row("git-fast-import", Phase::LoadNodes).checksum, Some(300));
    assert_eq!(
        row("git-fast-import", Phase::LoadEdges).checksum,
        Some(1500)
    );
    assert_eq!(
        row("git", Phase::Get).checksum,
        row("jsonfs", Phase::Get).checksum
    );
    assert_eq!(row("git", Phase::Commit).checksum, Some(305));
    assert_eq!(
        row("git", Phase::Reopen).checksum,
        row("sqlite", Phase::Reopen).checksum
    );
    assert_eq!(row("git", Phase::Backup).ops, 305 + 1500);
    assert_eq!(row("git", Phase::DocStreamWrite).ops, 3 << 20);
    row("sqlite-backup-api", Phase::Backup);
    row("sqlite-backup-api", Phase::Restore);
    // The restore floor loads the same rows (its answer is checked with everyone's)
    // and is given as a ratio to the backup API, as the SQLite restore is.
    let floor = row("sqlite-hand-restore", Phase::Restore);
    assert_eq!(floor.checksum, Some(305 + 1500));
    assert_eq!(floor.baseline.as_deref(), Some("sqlite-backup-api"));
    assert!(floor.ratio_to_baseline.is_some());
    assert_eq!(row("sqlite", Phase::Restore).target_ratio, Some(0.2));

    // The answers are the workload's, not just equal to each other.
    assert_eq!(row("memory", Phase::LoadNodes).checksum, Some(300));
    assert_eq!(row("raw-sqlite", Phase::LoadEdges).checksum, Some(1500));
    assert_eq!(row("memory", Phase::Commit).checksum, Some(305));
    assert_eq!(row("jsonfs", Phase::Backup).ops, 305 + 1500);
    assert!(row("sqlite", Phase::Resolve).checksum.unwrap() > 0);
    // Ranked search: every backend ranked every query alike (the checksums
    // agree); the hand-written FTS5 baseline and the index alone were measured.
    assert_eq!(row("raw-fts5", Phase::Search).ops, 40);
    assert_eq!(row("raw-fts5", Phase::LoadNodes).checksum, Some(300));
    assert_eq!(
        row("search-index-build", Phase::LoadNodes).checksum,
        Some(300)
    );
    assert_eq!(row("sqlite", Phase::Search).target_ratio, Some(0.8));
    // Documents: 250 loaded, 7 more one at a time, 3 MiB streamed both ways.
    assert_eq!(row("memory", Phase::DocLoad).checksum, Some(250));
    assert_eq!(row("bare-files", Phase::DocCommit).checksum, Some(257));
    assert_eq!(
        row("raw-sqlite-docs", Phase::DocRead).checksum,
        Some(100 * 1024)
    );
    assert_eq!(row("jsonfs", Phase::DocList).ops, 250);
    assert_eq!(row("sqlite", Phase::DocStreamWrite).ops, 3 << 20);
    assert_eq!(
        row("sqlite", Phase::DocStreamRead).checksum,
        row("bare-files", Phase::DocStreamRead).checksum
    );
    assert!(
        row("jsonfs", Phase::DocStreamRead)
            .rss_growth_bytes
            .is_some()
    );
    // Nothing is left behind in --dir.
    let mut report = report;
    report.remove_stores().unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn phases_can_be_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let args = Args::try_parse_from([
        "kgstore-bench",
        "--nodes",
        "50",
        "--backend",
        "memory,sqlite",
        "--phase",
        "get,list",
        "--gets",
        "20",
        "--dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let report = run(&args, &mut |_| {}).unwrap();
    let got = backends_and_phases(&report);
    assert_eq!(
        got,
        [
            ("memory".to_owned(), "get"),
            ("memory".to_owned(), "list"),
            ("raw-sqlite".to_owned(), "get"),
            ("raw-sqlite".to_owned(), "list"),
            ("raw-sqlite-lean".to_owned(), "get"),
            ("sqlite".to_owned(), "get"),
            ("sqlite".to_owned(), "list"),
        ]
    );
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
}

#[test]
fn document_phases_run_without_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let args = Args::try_parse_from([
        "kgstore-bench",
        "--backend",
        "sqlite,jsonfs",
        "--phase",
        "doc_commit,doc_stream_read",
        "--doc-commits",
        "3",
        "--stream-mib",
        "1",
        "--dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let report = run(&args, &mut |_| {}).unwrap();
    let got = backends_and_phases(&report);
    assert_eq!(
        got,
        [
            ("bare-files".to_owned(), "doc_commit"),
            ("bare-files".to_owned(), "doc_stream_read"),
            ("jsonfs".to_owned(), "doc_commit"),
            ("jsonfs".to_owned(), "doc_stream_read"),
            ("raw-sqlite-docs".to_owned(), "doc_commit"),
            ("raw-sqlite-docs".to_owned(), "doc_stream_read"),
            ("sqlite".to_owned(), "doc_commit"),
            ("sqlite".to_owned(), "doc_stream_read"),
        ]
    );
    // No graph was loaded: the load phases ran nowhere.
    assert!(report.all_rows.iter().all(|r| r.phase.starts_with("doc_")));
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
}

/// The (backend, phase) of every reported row, sorted.
fn backends_and_phases(report: &kgstore_bench::Report) -> Vec<(String, &'static str)> {
    let mut got: Vec<(String, &'static str)> = report
        .rows
        .iter()
        .map(|r| (r.backend.clone(), r.phase))
        .collect();
    got.sort();
    got
}

#[test]
fn metrics_cost_runs_each_read_phase_with_metrics_off_too() {
    let dir = tempfile::tempdir().unwrap();
    let args = Args::try_parse_from([
        "kgstore-bench",
        "--nodes",
        "50",
        "--backend",
        "memory,sqlite",
        "--phase",
        "get,commit",
        "--gets",
        "40",
        "--commits",
        "2",
        "--rounds",
        "2",
        "--metrics-cost",
        "--dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let report = run(&args, &mut |_| {}).unwrap();
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    for backend in ["memory", "sqlite"] {
        let on = report
            .rows
            .iter()
            .find(|r| r.backend == backend && r.phase == "get")
            .unwrap();
        let off = report
            .rows
            .iter()
            .find(|r| r.backend == format!("{backend}-metrics-off") && r.phase == "get")
            .unwrap();
        assert_eq!(on.checksum, off.checksum);
        // The cost comes from pairs of slices, on and off back to back (its value
        // depends on the machine; only that it was measured is checked here).
        let cost = on.metrics_cost.unwrap();
        assert!(cost.is_finite() && cost > -1.0, "{cost}");
        // Only read-only phases are measured both ways.
        let commit = report
            .rows
            .iter()
            .find(|r| r.backend == backend && r.phase == "commit")
            .unwrap();
        assert!(commit.metrics_cost.is_none());
    }
    assert!(
        !report
            .rows
            .iter()
            .any(|r| r.backend.ends_with("-metrics-off") && r.phase == "commit")
    );
}
