//! SIGKILL at random moments, against every persistent backend by URL.
//!
//! `KGSTORE_CRASH_CYCLES` (default 200 per backend, a quarter of it for the
//! relaxed runs), `KGSTORE_CRASH_SEED` (replays a run; printed on failure) and
//! `KGSTORE_CRASH_MAX_DELAY_MS` (default 30) size a run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kgstore_reliability::crash::{CrashReport, Harness};

/// Every persistent backend, by URL template: a new backend is one more line.
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

fn run(harness: &Harness) -> CrashReport {
    eprintln!(
        "{}: seed {} ({} cycles)",
        harness.url_template, harness.seed, harness.cycles
    );
    let report = harness.run().unwrap_or_else(|failure| panic!("{failure}"));
    eprintln!("{}: {report}", harness.url_template);
    assert_eq!(report.cycles, harness.cycles);
    report
}

#[test]
fn sigkill_sqlite_loses_no_acknowledged_transaction() {
    let report = run(&harness(DURABLE[0]));
    assert_eq!(report.lost, 0);
    assert!(report.acknowledged > 0, "{report}");
}

#[test]
fn sigkill_json_loses_no_acknowledged_transaction() {
    let report = run(&harness(DURABLE[1]));
    assert_eq!(report.lost, 0);
    assert!(report.acknowledged > 0, "{report}");
}

#[test]
fn sigkill_with_relaxed_durability_shows_no_partial_transaction() {
    for template in RELAXED {
        let h = harness(template);
        let cycles = h.cycles.div_ceil(4);
        run(&h.cycles(cycles).atomic_only());
    }
}
