//! SIGKILL at random moments, against every persistent backend by URL.
//!
//! `KGSTORE_CRASH_CYCLES` (default 200 per backend, a quarter of it for the
//! relaxed runs), `KGSTORE_CRASH_SEED` (replays a run; printed at the start and
//! on failure), `KGSTORE_CRASH_MAX_DELAY_MS` (default 30) and
//! `KGSTORE_CRASH_DIR` size and place a run. See docs/reliability.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::thread;

use kgstore_reliability::crash::{CrashReport, Harness};

/// Every persistent backend, by URL template (`{dir}` is a fresh folder): a new
/// backend is one more line here.
const DURABLE: &[&str] = &["sqlite://{dir}/kg.db", "json://{dir}/kg"];

/// The same with relaxed durability, where only atomicity is checked.
const RELAXED: &[&str] = &[
    "sqlite://{dir}/kg.db?durability=relaxed",
    "json://{dir}/kg?durability=relaxed",
];

const DEFAULT_CYCLES: u64 = 200;

fn harness(template: &str) -> Harness {
    Harness::from_env(
        template,
        env!("CARGO_BIN_EXE_kgstore-crash-child"),
        DEFAULT_CYCLES,
    )
}

/// Runs every harness on its own thread; panics with every failure.
fn run_all(harnesses: Vec<Harness>) -> Vec<CrashReport> {
    let runs: Vec<_> = harnesses
        .into_iter()
        .map(|h| {
            eprintln!("{}: seed {} ({} cycles)", h.url_template, h.seed, h.cycles);
            thread::spawn(move || (h.url_template.clone(), h.cycles, h.run()))
        })
        .collect();
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for run in runs {
        let (url, cycles, outcome) = run.join().unwrap();
        match outcome {
            Ok(report) => {
                eprintln!("{url}: {report}");
                assert_eq!(report.cycles, cycles);
                reports.push(report);
            }
            Err(failure) => failures.push(failure.to_string()),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    reports
}

#[test]
fn sigkill_loses_no_acknowledged_transaction_on_any_backend() {
    for report in run_all(DURABLE.iter().map(|t| harness(t)).collect()) {
        assert_eq!(report.lost, 0);
        assert!(report.acknowledged > 0, "{report}");
    }
}

/// The workload without its events on JSON files, so that its notes (one
/// document written alone) take the one-document commit of format 5 (metadata
/// staged beside the bytes, no journal): killed at random moments, it loses no
/// acknowledged transaction either. Half as many cycles.
#[test]
fn sigkill_loses_no_acknowledged_one_document_commit_on_json_files() {
    let h = harness("json://{dir}/kg");
    let cycles = h.cycles.div_ceil(2);
    for report in run_all(vec![h.cycles(cycles).without_events()]) {
        assert_eq!(report.lost, 0);
        assert!(report.acknowledged > 0, "{report}");
    }
}

/// Two writer processes share each store; either is killed at a random moment, the
/// other must commit on at once, then it is killed too: every acknowledged
/// transaction of both is there whole, the node both increment counts exactly the
/// transactions present, `check` finds nothing wrong and the next write succeeds.
/// Half as many cycles as the single-writer run (each starts two writers).
#[test]
fn sigkill_of_either_of_two_writers_loses_nothing_of_either_on_any_backend() {
    for report in run_all(
        DURABLE
            .iter()
            .map(|t| {
                let h = harness(t);
                let cycles = h.cycles.div_ceil(2);
                h.cycles(cycles).two_writers()
            })
            .collect(),
    ) {
        assert_eq!(report.lost, 0);
        assert!(report.acknowledged > 0, "{report}");
    }
}

#[test]
fn sigkill_with_relaxed_durability_shows_no_partial_transaction() {
    run_all(
        RELAXED
            .iter()
            .map(|t| {
                let h = harness(t);
                let cycles = h.cycles.div_ceil(4);
                h.cycles(cycles).atomic_only()
            })
            .collect(),
    );
}

/// The git backend under the same kills, in a folder this test keeps so that the real
/// `git fsck --strict` can judge the repository afterwards (skipped loudly without git).
#[test]
fn sigkill_on_git_loses_nothing_and_git_fsck_accepts_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let durable = harness("git://{dir}/kg.git");
    let relaxed_harness = harness("git://{dir}/relaxed.git?durability=relaxed");
    let relaxed_cycles = relaxed_harness.cycles.div_ceil(4);
    let relaxed = relaxed_harness.cycles(relaxed_cycles).atomic_only();
    for (h, atomic_only) in [(durable, false), (relaxed, true)] {
        eprintln!("{}: seed {} ({} cycles)", h.url_template, h.seed, h.cycles);
        let report = h.run_in(dir.path()).unwrap_or_else(|f| panic!("{f}"));
        eprintln!("{}: {report}", h.url_template);
        assert_eq!(report.cycles, h.cycles);
        if !atomic_only {
            assert_eq!(report.lost, 0);
            assert!(report.acknowledged > 0, "{report}");
        }
    }
    let git = std::process::Command::new("git").arg("--version").output();
    if !git.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "\n!!!!! SKIPPED the git fsck part: `git` is not installed (.ci/run installs it) !!!!!\n"
        );
        return;
    }
    for repo in ["kg.git", "relaxed.git"] {
        let out = std::process::Command::new("git")
            .args(["fsck", "--strict", "--no-dangling"])
            .current_dir(dir.path().join(repo))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "git fsck --strict on {repo}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
