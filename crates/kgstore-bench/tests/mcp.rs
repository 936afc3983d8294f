//! `kgstore-bench-mcp` at a small size: every server answers every call and the
//! servers agree (the official one too, when `.ci/run` installed it). It asserts
//! nothing about time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn the_mcp_benchmark_runs_and_the_servers_agree() {
    let output = Command::new(env!("CARGO_BIN_EXE_kgstore-bench-mcp"))
        .args(["--calls", "25", "--stores", "sqlite,memory,jsonfs"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kgstore_rows = rows
        .iter()
        .filter(|r| r["server"].as_str().unwrap().starts_with("kgstore-"))
        .count();
    assert_eq!(kgstore_rows, 12, "{stdout}");
    for row in &rows {
        assert_eq!(row["checksum"], 25, "{row}");
        assert_eq!(row["calls"], 25);
        // Ranked search answers every entity holding the word "entity" to a
        // name query (the named one first); the official server only the named one.
        let ranked = row["server"] != "official-memory-server" && row["phase"] == "search_nodes";
        assert_eq!(row["entities"], if ranked { 25 * 25 } else { 25 }, "{row}");
    }
}
