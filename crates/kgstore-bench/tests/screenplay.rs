//! The screenplay benchmark at a tiny size, so it keeps working: every row
//! checks its answer against kgstore's (the SQL queries count the same rows, the
//! re-imports change what they should), and a mismatch fails the run.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

#[test]
fn the_screenplay_benchmark_runs_and_agrees() {
    let out = Command::new(env!("CARGO_BIN_EXE_kgstore-bench-screenplay"))
        .args(["--scenes", "30", "--rounds", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "hand-written rusqlite import",
        "sqlite-relaxed",
        "who appears with whom",
        "dialogue search",
    ] {
        assert!(stdout.contains(row), "{row} missing:\n{stdout}");
    }
}
