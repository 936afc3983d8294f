//! SIGKILL at random moments, against every persistent backend by URL.
//!
//! `KGSTORE_CRASH_CYCLES` (default 200 per backend, a quarter of it for the
//! relaxed runs), `KGSTORE_CRASH_SEED` (replays a run; printed at the start and
//! on failure), `KGSTORE_CRASH_MAX_DELAY_MS` (default 30) and
//! `KGSTORE_CRASH_DIR` size and place a run. See docs/reliability.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kgstore::backup;
use kgstore::{Edge, GraphRead, Node, RelationType};
use kgstore_reliability::crash::{ACK, CrashReport, Harness, READY, RESTORE_MODE};
use kgstore_reliability::rng::{Rng, env_u64};
use kgstore_reliability::snapshot::Snapshot;

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

/// Nodes (and as many edges) of the backup the restoring child loads: over the
/// JSON-files backend's large-commit threshold (256 files), so that the restore
/// takes its batched path (staged in a folder of its own, shard folders moved
/// into place whole).
const RESTORED: usize = 1500;

/// A backup of `RESTORED` nodes and edges in `dir`, and what it holds.
fn restore_source(dir: &std::path::Path) -> Snapshot {
    let source = kgstore::open("memory://").unwrap();
    source
        .write(|tx| {
            let mut import = tx.bulk_import()?;
            let nodes = (0..RESTORED)
                .map(|i| Node::new(format!("n{i:05}"), "restored"))
                .collect::<kgstore::Result<Vec<_>>>()?;
            import.nodes(nodes)?;
            let edges = (0..RESTORED)
                .map(|i| {
                    Edge::new(
                        format!("n{i:05}"),
                        RelationType::Calls,
                        format!("n{:05}", (i + 1) % RESTORED),
                    )
                })
                .collect::<kgstore::Result<Vec<_>>>()?;
            import.edges(edges)?;
            import.finish()
        })
        .unwrap();
    backup::backup(&source, dir).unwrap();
    Snapshot::of(&source).unwrap()
}

/// The names a JSON-files store's `journal/` holds that an unfinished commit
/// left: staged files, staging folders, journals and records.
fn json_leftovers(store_dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(store_dir.join("journal")) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with(".tmp-")
                || n.starts_with("bulk-")
                || n.ends_with(".commit")
                || n.ends_with(".pending")
        })
        .collect()
}

/// A restore (into an empty store, of a backup over the large-commit threshold)
/// killed with SIGKILL at a random moment leaves the store empty or holding the
/// whole backup, never part of it, on every persistent backend: after reopening,
/// `check` is clean, nothing of the commit is left in `journal/` (JSON files), and
/// the store takes writes. While the unkilled first restore runs, processes that
/// open the JSON-files store read-only see it empty or whole too.
#[test]
fn sigkill_during_a_restore_leaves_the_store_empty_or_whole_on_any_backend() {
    let seed = Rng::seed_from_env("KGSTORE_CRASH_SEED");
    eprintln!("restore crash test seed {seed} (KGSTORE_CRASH_SEED replays it)");
    let mut rng = Rng::new(seed);
    let scratch = tempfile::tempdir_in(kgstore_reliability::crash::base_dir()).unwrap();
    let backup_dir = scratch.path().join("backup");
    let expected = restore_source(&backup_dir);
    let items = (RESTORED * 2) as u64;
    let cycles = env_u64("KGSTORE_CRASH_CYCLES", DEFAULT_CYCLES)
        .div_ceil(20)
        .max(6);
    for template in DURABLE {
        let mut outcomes: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut span_us: u64 = 0;
        for cycle in 0..=cycles {
            let backend = if template.starts_with("json") {
                "json"
            } else {
                "sqlite"
            };
            let dir = scratch.path().join(format!("{backend}-{cycle}"));
            std::fs::create_dir_all(&dir).unwrap();
            let url = template.replace("{dir}", &dir.display().to_string());
            let mut child = Command::new(env!("CARGO_BIN_EXE_kgstore-crash-child"))
                .args([
                    RESTORE_MODE,
                    url.as_str(),
                    &backup_dir.display().to_string(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let (sender, lines) = mpsc::channel::<String>();
            let stdout = child.stdout.take().unwrap();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
            let ready = lines.recv_timeout(Duration::from_secs(60)).unwrap();
            assert_eq!(ready, READY, "{url}: cycle {cycle}");
            let started = Instant::now();
            if cycle == 0 {
                // Not killed: timed, so that the kills land anywhere in a restore;
                // and watched by read-only openers meanwhile (JSON files).
                let reader_url = format!("{url}?read_only=true");
                let mut seen_by_readers: BTreeMap<u64, u64> = BTreeMap::new();
                let acked = loop {
                    match lines.try_recv() {
                        Ok(line) => break line,
                        Err(mpsc::TryRecvError::Disconnected) => panic!("{url}: the child died"),
                        Err(mpsc::TryRecvError::Empty) => {}
                    }
                    if template.starts_with("json")
                        && let Ok(reader) = kgstore::open(&reader_url)
                    {
                        let held = reader.count_nodes().unwrap() + reader.count_edges().unwrap();
                        assert!(
                            held == 0 || held == items,
                            "{url}: a read-only open during the restore saw {held} of {items} items"
                        );
                        *seen_by_readers.entry(held).or_default() += 1;
                    }
                    thread::sleep(Duration::from_millis(2));
                };
                assert_eq!(acked, format!("{ACK}{items}"), "{url}");
                span_us = u64::try_from(started.elapsed().as_micros())
                    .unwrap()
                    .max(1000);
                eprintln!(
                    "{url}: restore of {items} items took {span_us} µs; read-only opens saw {seen_by_readers:?}"
                );
            } else {
                // Stratified over the unkilled restore's span and a quarter more:
                // cycle `c` kills somewhere in the `c`-th of `cycles` equal slots,
                // so the early kills land inside a restore however long the first
                // one took (read-only openers and a loaded machine stretch it).
                let slot = ((span_us + span_us / 4) / cycles).max(1);
                let delay = slot * (cycle - 1) + rng.below(slot);
                thread::sleep(Duration::from_micros(delay));
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            let acked = cycle == 0
                || lines
                    .recv_timeout(Duration::from_secs(5))
                    .is_ok_and(|l| l.starts_with(ACK));
            let store = kgstore::open(&url)
                .unwrap_or_else(|e| panic!("{url}: reopening after a kill failed: {e}"));
            let check = store.check().unwrap();
            assert!(check.is_ok(), "{url}: cycle {cycle}: {:?}", check.problems);
            if template.starts_with("json") {
                let left = json_leftovers(&dir.join("kg"));
                assert!(left.is_empty(), "{url}: cycle {cycle}: left {left:?}");
            }
            let held = store.count_nodes().unwrap() + store.count_edges().unwrap();
            if held == 0 {
                assert!(
                    !acked,
                    "{url}: cycle {cycle}: an acknowledged restore is missing"
                );
                *outcomes.entry("empty").or_default() += 1;
            } else {
                assert_eq!(
                    Snapshot::of(&store).unwrap(),
                    expected,
                    "{url}: cycle {cycle}"
                );
                *outcomes.entry("whole").or_default() += 1;
            }
            store
                .write(|tx| tx.create_node(Node::new("after", "after")?).map(drop))
                .unwrap();
        }
        eprintln!("{template}: {cycles} killed restores: {outcomes:?}");
        assert!(
            outcomes.get("empty").copied().unwrap_or(0) > 0,
            "{template}: {outcomes:?}"
        );
    }
}
