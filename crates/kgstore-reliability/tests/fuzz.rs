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
fn fuzz_fountain() {
    drive("fountain", 1);
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
            "ops_vs_memory",
            "fountain"
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

/// Every field of every line of a small backup set to each surprising value,
/// with a matching manifest: what verify accepts must restore everywhere.
#[test]
fn backup_line_edits_sweep() {
    use kgstore::backup;
    use kgstore::{Edge, Node, RelationType, SchemaTarget, Store};
    use serde_json::{Value, json};

    let store = Store::memory();
    store
        .write(|tx| {
            tx.set_schema(
                SchemaTarget::NodeType("t".into()),
                json!({"type": "object", "properties": {"k": {"type": "integer"}}}),
            )?;
            tx.create_node(Node::new("n0", "t")?.with_attribute("k", json!(1)))?;
            tx.create_node(Node::new("n1", "t")?.with_dependency("n0").with_tag("a"))?;
            tx.create_edge(Edge::new("n0", RelationType::Calls, "n1")?.with_confidence(0.5))?;
            Ok(())
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b");
    backup::backup(&store, &path).unwrap();
    let read = |file: &str| std::fs::read_to_string(path.join(file)).unwrap();
    let (nodes, edges, schemas) = (
        read(backup::NODES_FILE),
        read(backup::EDGES_FILE),
        read(backup::SCHEMAS_FILE),
    );
    const POINTERS: &[&str] = &[
        "/name",
        "/node_type",
        "/dependencies",
        "/observations",
        "/attributes",
        "/attributes/k",
        "/from",
        "/to",
        "/relation_type",
        "/metadata/version",
        "/metadata/weight",
        "/metadata/confidence",
        "/metadata/tags",
        "/metadata/status",
        "/metadata/author",
        "/metadata/created_at",
        "/metadata/bidirectional",
    ];
    const VALUES: &[&str] = &[
        r#"["n0"]"#,
        r#"["n1"]"#,
        r#"["n0","n0"]"#,
        r#"["missing"]"#,
        "0",
        "-1",
        "1e308",
        "18446744073709551615",
        "2",
        "0.5",
        "null",
        r#"["b","a","a"]"#,
        r#"[""]"#,
        r#""1970-01-01T00:00:00.000000Z""#,
        r#""9999-12-31T23:59:59.999999Z""#,
        r#""n1""#,
        r#""n0""#,
        r#""""#,
        r#""Bad Type""#,
        r#""calls""#,
        r#""x_y""#,
        "{}",
        "[]",
        r#""x""#,
        r#"{"k":"text"}"#,
        "true",
        r#""\u0000""#,
    ];
    let mut cases = 0;
    for (file, text) in [("nodes", &nodes), ("edges", &edges)] {
        let lines: Vec<&str> = text.lines().collect();
        for at in 0..lines.len() {
            for pointer in POINTERS {
                for value in VALUES {
                    let mut line: Value = serde_json::from_str(lines[at]).unwrap();
                    let replacement: Value = serde_json::from_str(value).unwrap();
                    match line.pointer_mut(pointer) {
                        Some(slot) => *slot = replacement,
                        None => {
                            let (parent, key) = pointer.rsplit_once('/').unwrap();
                            match line.pointer_mut(parent) {
                                Some(Value::Object(map)) => {
                                    map.insert(key.to_owned(), replacement);
                                }
                                _ => continue,
                            }
                        }
                    }
                    let mut edited = lines.clone();
                    let new_line = line.to_string();
                    edited[at] = &new_line;
                    let edited = edited.join("\n") + "\n";
                    let (n, e) = if file == "nodes" {
                        (edited.as_str(), edges.as_str())
                    } else {
                        (nodes.as_str(), edited.as_str())
                    };
                    let input = fuzz::assemble_backup_input(
                        fuzz::FIX_MANIFEST,
                        b"",
                        n.as_bytes(),
                        e.as_bytes(),
                        schemas.as_bytes(),
                    );
                    if let Err(finding) = fuzz::backup_dir(&input) {
                        panic!("{file} line {at}, {pointer} = {value}: {finding}");
                    }
                    cases += 1;
                }
            }
        }
    }
    eprintln!("backup line edits: {cases} cases");
}
