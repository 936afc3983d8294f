//! The fuzz targets on stable Rust: each runs on seeded structured and random
//! inputs for a fixed number of cases.
//!
//! `KGSTORE_FUZZ_CASES` sets the cases of the cheap targets (default 2000); the
//! file-backed ones run a tenth (`backup_dir`) and a fortieth (`ops_vs_memory`)
//! of it. `KGSTORE_FUZZ_SEED` replays a run; the seed is printed on failure and
//! the failing input is written under `target/fuzz-findings/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use kgstore_reliability::fuzz::{self, TARGETS, generate};
use kgstore_reliability::rng::{Rng, env_u64};

const CASES_VAR: &str = "KGSTORE_FUZZ_CASES";
const SEED_VAR: &str = "KGSTORE_FUZZ_SEED";

fn drive(target: &str, divisor: u64) {
    let (index, (_, run)) = TARGETS
        .iter()
        .enumerate()
        .find(|(_, (name, _))| *name == target)
        .unwrap();
    let cases = env_u64(CASES_VAR, 2000).div_ceil(divisor);
    let seed = Rng::seed_from_env(SEED_VAR);
    let mut rng = Rng::derive(seed, index as u64);
    let started = std::time::Instant::now();
    for case in 0..cases {
        let input = generate::input_for(target, &mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&input)));
        let problem = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(finding)) => finding.to_string(),
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                format!("panicked: {text}")
            }
        };
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-findings");
        let file = dir.join(format!("{target}-{seed}-{case}.bin"));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(&file, &input);
        panic!(
            "{target}, case {case} of seed {seed} ({SEED_VAR}={seed} replays it): {problem}\n  \
             input ({} bytes) in {}: {:?}",
            input.len(),
            file.display(),
            String::from_utf8_lossy(&input[..input.len().min(400)])
        );
    }
    eprintln!(
        "{target}: {cases} cases of seed {seed} in {:?}",
        started.elapsed()
    );
}

#[test]
fn fuzz_node_json() {
    drive("node_json", 1);
}

#[test]
fn fuzz_edge_json() {
    drive("edge_json", 1);
}

#[test]
fn fuzz_file_names() {
    drive("file_names", 1);
}

#[test]
fn fuzz_mcp_import() {
    drive("mcp_import", 1);
}

#[test]
fn fuzz_backup_dir() {
    drive("backup_dir", 10);
}

#[test]
fn fuzz_ops_vs_memory() {
    drive("ops_vs_memory", 40);
}

#[test]
fn every_target_is_driven() {
    let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "node_json",
            "edge_json",
            "backup_dir",
            "mcp_import",
            "file_names",
            "ops_vs_memory"
        ]
    );
    // Empty and tiny inputs are fine for every target.
    for (_, run) in TARGETS {
        for input in [&b""[..], b"\0", b"{}", b"\xff"] {
            run(input).unwrap();
        }
    }
    let _ = fuzz::Input::new(b"");
}
