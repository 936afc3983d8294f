//! `kgstore screenplay …` from the shell: import, re-import, queries with
//! `--json`, export byte for byte, embeddings through JSON Lines, and bad input
//! giving one clear line and changing nothing.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::Kg;

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/screenplay")
}

#[test]
fn screenplay_commands_from_the_shell() {
    let kg = Kg::sqlite();
    let demo = demo_dir();
    let demo = demo.to_str().unwrap();
    let first = kg.json_of(&["screenplay", "import", demo]);
    assert_eq!(first["scripts"].as_array().unwrap().len(), 3);
    assert_eq!(first["documents_written"], 3);
    let again = kg.json_of(&["screenplay", "import", demo]);
    assert_eq!(
        (
            again["nodes_created"].clone(),
            again["nodes_updated"].clone()
        ),
        (json!(0), json!(0))
    );
    assert!(
        kg.run(&["screenplay", "import", demo])
            .ok()
            .contains("nothing changed")
    );

    let rows = kg.json_of(&[
        "screenplay",
        "scenes",
        "--character",
        "mara",
        "--time",
        "night",
        "--episode",
        "2-3",
    ]);
    let keys: Vec<(u64, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["episode"].as_u64().unwrap(),
                r["ordinal"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [(2, 2), (2, 4), (3, 3), (3, 4)]);
    let ext = kg.json_of(&["screenplay", "scenes", "--int-ext", "ext", "--season", "1"]);
    assert_eq!(ext.as_array().unwrap().len(), 6);
    let cast = kg.json_of(&["screenplay", "characters", "--series", "The Night Desk"]);
    assert_eq!(cast[0]["name"], "MARA");
    assert_eq!(cast[0]["speeches"], 13);
    let with = kg.json_of(&["screenplay", "with", "teo"]);
    assert_eq!(with[0], json!({"a": "TEO", "b": "MARA", "scenes": 6}));
    let nell = kg.json_of(&["screenplay", "character", "NELL"]);
    assert_eq!(nell.as_array().unwrap().len(), 5);
    let hits = kg.json_of(&["screenplay", "search", "fence"]);
    assert_eq!(hits.as_array().unwrap().len(), 2);

    // Export, to stdout and to a file, byte for byte.
    let file = "S01E02 - The Tape.fountain";
    let original = std::fs::read(demo_dir().join(file)).unwrap();
    let out = kg
        .command(&["screenplay", "export", file])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, original);
    let target = kg.path("copy.fountain");
    kg.run(&[
        "screenplay",
        "export",
        file,
        "--out",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read(&target).unwrap(), original);
    let scene = kg.run(&["screenplay", "scene", &format!("{file}#3")]);
    assert!(scene.ok().starts_with("EXT. LIGHTHOUSE - NIGHT"));

    // Embeddings: the pending list, vectors back in, similar scenes.
    let pending = kg.run(&["screenplay", "embed", "--pending"]);
    let lines: Vec<Value> = pending
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 13);
    let jsonl: String = lines
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let v: Vec<f32> = (0..4)
                .map(|d| ((i * 7 + d * 3) % 11) as f32 + 1.0)
                .collect();
            json!({"sha256": p["sha256"], "vector": v}).to_string() + "\n"
        })
        .collect();
    let vectors = kg.path("vectors.jsonl");
    std::fs::write(&vectors, &jsonl).unwrap();
    let stored = kg.json_of(&["screenplay", "embed", "--from", vectors.to_str().unwrap()]);
    assert_eq!(stored["written"], 13);
    let stored = kg.json_of(&["screenplay", "embed", "--from", vectors.to_str().unwrap()]);
    assert_eq!(
        (stored["written"].clone(), stored["unchanged"].clone()),
        (json!(0), json!(13))
    );
    let similar = kg.json_of(&["screenplay", "similar", &format!("{file}#1"), "--top", "3"]);
    let similar = similar.as_array().unwrap();
    assert_eq!(similar.len(), 3);
    assert!(similar[0]["score"].as_f64().unwrap() >= similar[2]["score"].as_f64().unwrap());
}

#[test]
fn a_script_without_season_or_episode_shows_no_made_up_episode() {
    let kg = Kg::sqlite();
    let file = kg.path("pilot.fountain");
    std::fs::write(&file, "Title: Pilot\n\nINT. ROOM - DAY\n\nBOB\nHi.\n").unwrap();
    kg.run(&["screenplay", "import", file.to_str().unwrap()])
        .ok();
    let scenes = kg.run(&["screenplay", "scenes"]).ok().to_owned();
    let row = scenes.lines().nth(1).unwrap();
    // Neither a season nor an episode: a dash, not "-x00".
    assert!(row.starts_with("-  "), "{scenes}");
    assert!(!scenes.contains("x00"), "{scenes}");
    let hits = kg.run(&["screenplay", "search", "hi"]).ok().to_owned();
    assert!(!hits.contains("x00"), "{hits}");
}

#[test]
fn bad_screenplay_input_is_one_clear_line_and_changes_nothing() {
    let kg = Kg::sqlite();
    let demo = demo_dir();
    kg.run(&["screenplay", "import", demo.to_str().unwrap()])
        .ok();
    let before = kg.run(&["export"]).ok().to_owned();
    let good = kg.path("good.fountain");
    std::fs::write(
        &good,
        "Title: The Night Desk\n\nINT. NEW - DAY\n\nBOB\nHi.\n",
    )
    .unwrap();
    let bad = kg.path("bad.fountain");
    std::fs::write(&bad, b"INT. A - DAY\n\n\xc3(\n").unwrap();
    let binary = kg.path("tool.fountain");
    std::fs::write(&binary, b"\x7fELF\x00\x00\x01").unwrap();
    let (good, bad, binary) = (
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        binary.to_str().unwrap(),
    );
    kg.run(&["screenplay", "import", good, bad])
        .fails(2, "byte offset 14");
    kg.run(&["screenplay", "import", good, binary])
        .fails(2, "NUL");
    kg.run(&["screenplay", "import", kg.path("missing").to_str().unwrap()])
        .fails(1, "missing");
    kg.run(&["screenplay", "scenes", "--episode", "x"])
        .fails(2, "not a number");
    kg.run(&["screenplay", "scenes", "--series", "Nope"])
        .fails(2, "the-night-desk");
    kg.run(&["screenplay", "character", "NOBODY"])
        .fails(2, "does not speak");
    kg.run(&["screenplay", "export", "nope.fountain"])
        .fails(3, "not found");
    kg.run(&["screenplay", "similar", "S01E01 - Dead Air.fountain#1"])
        .fails(2, "no embedding");
    assert_eq!(kg.run(&["export"]).ok(), before);
}
