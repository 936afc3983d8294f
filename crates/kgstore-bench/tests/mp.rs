//! A small run of `kgstore-bench-mp`: every phase runs on both backends, every
//! commit acknowledged is stored (the binary checks), and the figures come out.
//! (No timing is asserted: figures depend on the machine.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::Value;

#[test]
fn every_phase_runs_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kgstore-bench-mp"))
        .args([
            "--commits",
            "5",
            "--writers",
            "1,2",
            "--nodes",
            "50",
            "--read-ms",
            "100",
        ])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |backend: &str, phase: &str| {
        rows.iter()
            .find(|r| r["backend"] == backend && r["phase"] == phase)
            .unwrap_or_else(|| panic!("no {backend} {phase} in {stdout}"))
    };
    find("fsync-floor", "commits-1-writer");
    for backend in ["sqlite", "jsonfs"] {
        assert_eq!(find(backend, "commits-1-writer")["ops"], 5);
        assert_eq!(find(backend, "commits-2-writers")["ops"], 10);
        assert!(find(backend, "commits-2-writers")["ratio_to_baseline"].is_number());
        assert!(find(backend, "reads-alone")["ops"].as_u64().unwrap() > 0);
        let busy = find(backend, "reads-while-committing");
        assert!(busy["ops"].as_u64().unwrap() > 0);
        assert!(
            busy["note"].as_str().unwrap().contains("committed"),
            "{busy}"
        );
    }
    assert!(stdout.contains("| backend | phase |"), "{stdout}");
    // The stores' folder is gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
