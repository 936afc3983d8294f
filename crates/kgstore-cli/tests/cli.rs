//! The `kgstore` binary as a user meets it: every command, `--json` output, every
//! format's round trip, exit codes, and bad inputs each giving one clear line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should panic

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "cli/documents.rs"]
mod documents;
#[path = "cli/events.rs"]
mod events;
#[path = "cli/inspect.rs"]
mod inspect;
#[path = "cli/screenplay.rs"]
mod screenplay;

const BIN: &str = env!("CARGO_BIN_EXE_kgstore");

/// What a run of the binary gave.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }

    /// Asserts the exit code and that stderr is one line mentioning `needle`, then
    /// returns that line.
    fn fails(&self, code: i32, needle: &str) -> &str {
        assert_eq!(self.code, code, "exit code: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:#?}");
        assert!(lines[0].starts_with("error: ") || lines[0].starts_with('{'));
        assert!(lines[0].contains(needle), "{needle:?} in {:?}", lines[0]);
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("backtrace"));
        lines[0]
    }
}

/// A scratch folder to run the binary in, with a store URL.
struct Kg {
    dir: tempfile::TempDir,
    url: String,
}

impl Kg {
    /// A SQLite store in a fresh folder.
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/kg.db", dir.path().display());
        Self { dir, url }
    }

    /// A JSON-files store in a fresh folder.
    fn json() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("json://{}/kg", dir.path().display());
        Self { dir, url }
    }

    /// A git store in a fresh folder.
    fn git() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("git://{}/kg.git", dir.path().display());
        Self { dir, url }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .env_remove("KGSTORE_URL")
            .arg("--store")
            .arg(&self.url)
            .args(args);
        cmd
    }

    /// Runs `kgstore --store URL ARGS…`.
    fn run(&self, args: &[&str]) -> Run {
        collect(self.command(args).stdin(Stdio::null()).output().unwrap())
    }

    /// Runs with `input` on stdin.
    fn run_with_input(&self, args: &[&str], input: impl AsRef<[u8]>) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let written = child.stdin.take().unwrap().write_all(input.as_ref());
        // A command that fails before reading all its input (a bad option, say)
        // closes the pipe: that is its answer, not the test's failure.
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        collect(child.wait_with_output().unwrap())
    }

    /// Runs with `--json`.
    fn json_of(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.run(&all).json()
    }

    /// Every element of `field` on every page of a `--json` listing, following
    /// `next_cursor` (the `--cursor` goes before a `--` that ends the options).
    fn every_page(&self, args: &[&str], field: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut full = vec!["--json"];
            let end = args.iter().position(|a| *a == "--").unwrap_or(args.len());
            full.extend_from_slice(&args[..end]);
            if let Some(c) = &cursor {
                full.extend(["--cursor", c.as_str()]);
            }
            full.extend_from_slice(&args[end..]);
            let page = self.run(&full).json();
            all.extend(page[field].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return all,
            }
        }
    }

    /// A small graph: serde ← serde_json ← kgstore, plus tags and attributes.
    fn with_crates(self) -> Self {
        self.run(&[
            "node",
            "create",
            "serde",
            "-t",
            "crate",
            "--attr",
            "lang=rust",
            "--tag",
            "core",
        ])
        .ok();
        self.run(&[
            "node",
            "create",
            "serde_json",
            "-t",
            "crate",
            "-d",
            "serde",
            "--attr",
            "lang=rust",
            "-o",
            "fast JSON",
        ])
        .ok();
        self.run(&[
            "node",
            "create",
            "kgstore",
            "-t",
            "crate",
            "-d",
            "serde_json",
            "--attrs",
            r#"{"lang":"rust","stars":5}"#,
        ])
        .ok();
        self.run(&["node", "create", "jq", "-t", "tool", "--attr", "lang=c"])
            .ok();
        self.run(&[
            "edge",
            "create",
            "serde_json",
            "depends_on",
            "serde",
            "--weight",
            "1",
        ])
        .ok();
        self.run(&[
            "edge",
            "create",
            "kgstore",
            "depends_on",
            "serde_json",
            "--weight",
            "1",
        ])
        .ok();
        self.run(&[
            "edge",
            "create",
            "kgstore",
            "depends_on",
            "serde",
            "--weight",
            "5",
        ])
        .ok();
        self.run(&[
            "edge",
            "create",
            "jq",
            "similar_to",
            "serde_json",
            "--confidence",
            "0.5",
        ])
        .ok();
        self
    }
}

fn collect(output: std::process::Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn names(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn help_and_version_exit_zero_and_list_exit_codes() {
    let kg = Kg::sqlite();
    let help = kg.run(&["--help"]);
    assert!(help.ok().contains("Exit codes: 0 success"), "{help:?}");
    assert!(kg.run(&["--version"]).ok().starts_with("kgstore "));
    let line = kg
        .run(&["no-such-command"])
        .fails(2, "no-such-command")
        .to_owned();
    assert!(line.ends_with("see kgstore --help"), "{line}");
    let line = kg
        .run(&["edge", "create", "a"])
        .fails(2, "<RELATION>")
        .to_owned();
    assert!(line.ends_with("see kgstore edge create --help"), "{line}");
    assert!(
        line.contains("were not provided: <RELATION>, <TO>;"),
        "{line}"
    );
    // A usage line that starts with a required option: the pointer to the help is
    // still a command that runs (`node create --type --help` would want a type).
    let line = kg
        .run(&["node", "create"])
        .fails(2, "--type <NODE_TYPE>")
        .to_owned();
    assert!(line.ends_with("see kgstore node create --help"), "{line}");
    assert!(kg.run(&["node", "create", "--help"]).ok().contains("Usage"));
    let line = kg
        .run(&["node", "create", "x", "--typo"])
        .fails(2, "--typo")
        .to_owned();
    assert!(line.ends_with("see kgstore node create --help"), "{line}");
    let run = kg.run(&["--json", "node", "get"]);
    let value: Value = serde_json::from_str(run.fails(2, "NAME")).unwrap();
    assert_eq!(value["error"]["exit_code"], 2);
}

#[test]
fn tables_align_names_of_wide_and_combining_characters() {
    let kg = Kg::sqlite();
    // Each name with the columns it takes on a terminal: CJK characters take two,
    // a combining accent none.
    let names = [
        ("日本語", 6),
        ("Cafe\u{301}", 4),
        ("plain_ascii", 11),
        ("😀", 2),
    ];
    for (name, _) in names {
        kg.run(&["node", "create", name, "-t", "thing"]).ok();
    }
    let listed = kg.run(&["node", "list"]).ok().to_owned();
    let mut starts = Vec::new();
    for (name, width) in names {
        let line = listed
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {listed}"));
        let gap = line[name.len()..].len() - line[name.len()..].trim_start().len();
        starts.push(width + gap);
    }
    assert!(
        starts.iter().all(|s| *s == starts[0]),
        "{starts:?} in\n{listed}"
    );
}

#[test]
fn init_creates_the_default_store_under_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env_remove("KGSTORE_URL")
        .arg("init")
        .output()
        .unwrap();
    let run = collect(out);
    assert!(run.ok().contains("sqlite://./data/kgstore.db"), "{run:?}");
    assert!(dir.path().join("data/kgstore.db").is_file());
    // KGSTORE_URL picks another store.
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env("KGSTORE_URL", "json://./other")
        .args(["--json", "init"])
        .output()
        .unwrap();
    let value = collect(out).json();
    assert_eq!(value["backend"], "jsonfs", "{value}");
    assert!(dir.path().join("other/kgstore-jsonfs.json").is_file());
}

#[test]
fn a_memory_store_says_it_lives_only_as_long_as_the_command() {
    // Each command starts a new process, so a memory:// store starts empty in each:
    // `node create` succeeded and `node get` then found nothing, unexplained.
    let memory = Kg {
        dir: tempfile::tempdir().unwrap(),
        url: "memory://".to_owned(),
    };
    let note = "note: a memory:// store lives only as long as this command";
    // Said though stderr is a pipe here, not a terminal: it warns of lost data, and a
    // script that logs stderr should see it too (docs/design.md, "The command line
    // meeting a new user").
    let created = memory.run(&["node", "create", "a", "-t", "t"]);
    assert!(created.ok().contains("created node 'a'"), "{created:?}");
    assert_eq!(
        created.stderr.lines().collect::<Vec<_>>().len(),
        1,
        "{created:?}"
    );
    assert!(created.stderr.starts_with(note), "{created:?}");
    let got = memory.run(&["node", "get", "a"]);
    assert_eq!(got.code, 3, "{got:?}");
    assert!(got.stderr.starts_with(note), "{got:?}");
    assert!(got.stderr.contains("error: node 'a' not found"), "{got:?}");
    // Not with --json (stderr holds JSON errors only) nor for `mcp`, whose store
    // lives while it serves.
    let json = memory.run(&["--json", "node", "create", "a", "-t", "t"]);
    json.json();
    assert!(json.stderr.is_empty(), "{json:?}");
    let mcp = memory.run_with_input(&["mcp"], "");
    assert_eq!(mcp.code, 0, "{mcp:?}");
    assert!(!mcp.stderr.contains(note), "{mcp:?}");
    // A store that persists says nothing of the kind.
    let kg = Kg::sqlite();
    let created = kg.run(&["node", "create", "a", "-t", "t"]);
    created.ok();
    assert!(created.stderr.is_empty(), "{created:?}");
}

#[cfg(unix)]
#[test]
fn a_store_in_a_folder_that_takes_no_file_says_why() {
    let kg = Kg::sqlite();
    std::fs::write(kg.path("afile"), "").unwrap();
    // A part of the folder is a file: said as such ("File exists" before).
    for url in [
        "sqlite://./afile/kg.db",
        "json://./afile/sub/kg",
        "git://./afile/kg.git",
    ] {
        let mut under = Command::new(BIN);
        under
            .args(["--store", url, "init"])
            .env_remove("KGSTORE_URL")
            .current_dir(kg.dir.path());
        let run = collect(under.output().unwrap());
        let line = run.fails(1, "./afile is a file, not a folder");
        assert!(line.contains(url.split_once("://").unwrap().1), "{line}");
    }
    // A folder this user may not write in: said as such, not as SQLite's "unable
    // to open database file" nor with git's temporary folder.
    use std::os::unix::fs::PermissionsExt;
    let locked = kg.path("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(locked.join("probe"), "").is_ok() {
        eprintln!(
            "\n!!!!! SKIPPED the read-only folder part of \
             a_store_in_a_folder_that_takes_no_file_says_why: this user (root?) may write \
             in a folder with mode 0555 !!!!!\n"
        );
        return;
    }
    for url in [
        "sqlite://./locked/kg.db",
        "json://./locked/kg",
        "git://./locked/kg.git",
    ] {
        let mut denied = Command::new(BIN);
        denied
            .args(["--store", url, "node", "create", "a", "-t", "t"])
            .env_remove("KGSTORE_URL")
            .current_dir(kg.dir.path());
        let run = collect(denied.output().unwrap());
        let line = run.fails(1, "cannot create a file in ./locked: permission denied");
        assert!(
            !line.contains("partial") && !line.contains("unable to open"),
            "{line}"
        );
    }
    assert_eq!(std::fs::read_dir(&locked).unwrap().count(), 0);
}

#[test]
fn reading_a_store_that_does_not_exist_creates_nothing() {
    let kg = Kg::sqlite();
    kg.run(&["stats"]).fails(2, "does not exist");
    assert!(!kg.path("kg.db").exists());
}

#[test]
fn node_commands_create_get_update_delete_list() {
    for kg in [Kg::sqlite(), Kg::json()] {
        let kg = kg.with_crates();
        let text = kg.run(&["node", "get", "serde_json"]);
        assert!(text.ok().contains("fast JSON") && text.ok().contains("depends on"));
        let node = kg.json_of(&["node", "get", "serde_json"]);
        assert_eq!(node["node_type"], "crate");
        assert_eq!(node["dependencies"], json!(["serde"]));
        assert_eq!(node["attributes"], json!({"lang": "rust"}));
        assert_eq!(node["metadata"]["version"], 1);

        let updated = kg.json_of(&[
            "node",
            "update",
            "serde_json",
            "--attr",
            "stars=9",
            "--unset-attr",
            "lang",
            "--add-tag",
            "json",
            "--add-observation",
            "popular",
            "--expect-version",
            "1",
        ]);
        assert_eq!(updated["metadata"]["version"], 2, "{updated}");
        assert_eq!(updated["attributes"], json!({"stars": 9}));
        assert_eq!(updated["metadata"]["tags"], json!(["json"]));
        assert_eq!(updated["observations"], json!(["fast JSON", "popular"]));
        // A stale version is a conflict and changes nothing.
        kg.run(&[
            "node",
            "update",
            "serde_json",
            "--attr",
            "x=1",
            "--expect-version",
            "1",
        ])
        .fails(4, "version");
        assert_eq!(
            kg.json_of(&["node", "get", "serde_json"])["metadata"]["version"],
            2
        );

        let all = kg.json_of(&["node", "list"]);
        assert_eq!(
            names(&all["items"]),
            ["jq", "kgstore", "serde", "serde_json"]
        );
        assert!(kg.run(&["node", "list"]).ok().contains("NAME"));

        // Deleting a node others depend on is refused; --cascade takes them too.
        kg.run(&["node", "delete", "serde"]).fails(4, "serde_json");
        kg.run(&["node", "delete", "jq"]).ok();
        kg.run(&["node", "get", "jq"]).fails(3, "'jq'");
        kg.run(&["node", "delete", "serde_json", "--detach"]).ok();
        assert_eq!(
            kg.json_of(&["node", "get", "kgstore"])["dependencies"],
            json!([])
        );
        kg.run(&["node", "delete", "serde", "--cascade"]).ok();
        assert_eq!(names(&kg.json_of(&["node", "list"])["items"]), ["kgstore"]);
    }
}

#[test]
fn filters_and_pages_cover_every_node_once() {
    let kg = Kg::sqlite().with_crates();
    let rust = kg.json_of(&["node", "list", "--where", "/attributes/lang=rust"]);
    assert_eq!(names(&rust["items"]), ["kgstore", "serde", "serde_json"]);
    let tools = kg.json_of(&["node", "list", "--type", "tool"]);
    assert_eq!(names(&tools["items"]), ["jq"]);
    let tagged = kg.json_of(&["node", "list", "--tag", "core"]);
    assert_eq!(names(&tagged["items"]), ["serde"]);
    let stars = kg.json_of(&["node", "list", "--where", "/attributes/stars=5"]);
    assert_eq!(
        names(&stars["items"]),
        ["kgstore"],
        "values are read as JSON"
    );
    let texts = kg.json_of(&["node", "list", "--text", "FAST"]);
    assert_eq!(names(&texts["items"]), ["serde_json"]);

    let seen = kg.every_page(&["node", "list", "--limit", "3"], "items");
    assert_eq!(
        names(&json!(seen)),
        ["jq", "kgstore", "serde", "serde_json"]
    );
    kg.run(&["node", "list", "--cursor", "not-hex"])
        .fails(2, "cursor");
    kg.run(&["node", "list", "--where", "attributes/lang"])
        .fails(2, "where");
}

#[test]
fn search_ranks_pages_filters_and_explains_on_both_file_backends() {
    for kg in [Kg::sqlite(), Kg::json()] {
        let kg = kg.with_crates();
        kg.run(&[
            "node",
            "create",
            "Café Lumière",
            "-t",
            "place",
            "-o",
            "Serves tea and crêpes",
        ])
        .ok();
        // Words in any order and case, accents folded, the last word a prefix.
        let hits = kg.json_of(&["search", "JSON fast"]);
        assert_eq!(names(&hits["items"])[0], "serde_json");
        assert_eq!(hits["items"][0]["kind"], "terms");
        assert_eq!(hits["items"][0]["matched"], json!(["name", "observations"]));
        assert!(hits["items"][0]["score"].as_f64().unwrap() > 0.0);
        let hits = kg.json_of(&["search", "cafe crep"]);
        assert_eq!(names(&hits["items"]), ["Café Lumière"]);
        // Types filter; a substring inside a word is found too, after the ranked hits.
        let hits = kg.json_of(&["search", "erde", "--type", "crate"]);
        assert_eq!(names(&hits["items"]), ["serde", "serde_json"]);
        assert_eq!(hits["items"][1]["kind"], "substring");
        assert!(
            kg.json_of(&["search", "erde", "--type", "tool"])["items"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        // Pages of one hit join up to the whole answer.
        let seen = kg.every_page(&["search", "serde", "--limit", "1"], "items");
        assert_eq!(names(&json!(seen)), ["serde", "serde_json"]);
        // The table names the fields; bad input is one line and exit code 2.
        let text = kg.run(&["search", "tea"]).ok().to_owned();
        assert!(
            text.contains("Café Lumière") && text.contains("observations"),
            "{text}"
        );
        assert!(text.contains("no more hits"), "{text}");
        kg.run(&["search", "x", "--limit", "0"]).fails(2, "limit");
        kg.run(&["search", "x", "--type", "Not A Type"])
            .fails(2, "type");
        kg.run(&["search", "x", "--cursor", "n61"])
            .fails(2, "cursor");
    }
}

#[test]
fn edge_commands_create_get_delete_list() {
    for kg in [Kg::sqlite(), Kg::json()] {
        let kg = kg.with_crates();
        let edge = kg.json_of(&["edge", "get", "jq", "similar_to", "serde_json"]);
        assert_eq!(edge["metadata"]["confidence"], 0.5, "{edge}");
        let from = kg.json_of(&["edge", "list", "--from", "kgstore"]);
        assert_eq!(from["items"].as_array().unwrap().len(), 2);
        let heavy = kg.json_of(&["edge", "list", "--min-weight", "2"]);
        assert_eq!(heavy["items"][0]["to"], "serde", "{heavy}");
        let similar = kg.json_of(&["edge", "list", "--rel", "similar_to"]);
        assert_eq!(similar["items"].as_array().unwrap().len(), 1);
        assert!(kg.run(&["edge", "list"]).ok().contains("RELATION"));
        kg.run(&["edge", "create", "jq", "similar_to", "serde_json"])
            .fails(4, "already exists");
        kg.run(&["edge", "delete", "jq", "similar_to", "serde_json"])
            .ok();
        kg.run(&["edge", "get", "jq", "similar_to", "serde_json"])
            .fails(3, "similar_to");
        kg.run(&["edge", "delete", "jq", "similar_to", "serde_json"])
            .fails(3, "jq");
        // Custom relations are identifiers outside the vocabulary.
        kg.run(&["edge", "create", "jq", "inspired_by", "serde"])
            .ok();
        assert_eq!(
            kg.json_of(&["edge", "get", "jq", "inspired_by", "serde"])["relation_type"],
            "inspired_by"
        );
    }
}

#[test]
fn graph_queries_answer_in_text_and_json() {
    let kg = Kg::sqlite().with_crates();
    let out = kg.json_of(&["neighbors", "serde_json", "--direction", "in"]);
    let from: BTreeSet<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(from, BTreeSet::from(["jq", "kgstore"]), "{out}");
    let reach = kg.json_of(&["traverse", "kgstore", "--depth", "1"]);
    assert_eq!(reach.as_array().unwrap().len(), 2, "{reach}");
    let hops = kg.json_of(&["path", "kgstore", "serde"]);
    assert_eq!(hops["nodes"], json!(["kgstore", "serde"]), "{hops}");
    let light = kg.json_of(&["path", "kgstore", "serde", "--weighted"]);
    assert_eq!(
        light["nodes"],
        json!(["kgstore", "serde_json", "serde"]),
        "{light}"
    );
    assert!(
        kg.run(&["path", "kgstore", "serde"])
            .ok()
            .contains("kgstore -> serde")
    );
    assert_eq!(kg.json_of(&["path", "serde", "kgstore"]), Value::Null);
    assert_eq!(
        kg.json_of(&["deps", "resolve", "kgstore"]),
        json!(["serde", "serde_json"])
    );
    assert_eq!(
        kg.json_of(&["deps", "dependents", "serde"]),
        json!(["serde_json", "kgstore"])
    );
    assert_eq!(
        kg.json_of(&["deps", "dependents", "serde", "--direct"]),
        json!(["serde_json"])
    );
    // The count's noun agrees with it.
    let direct = kg.run(&["deps", "dependents", "serde", "--direct"]);
    assert!(
        direct.ok().ends_with("(1 direct dependent of 'serde')\n"),
        "{direct:?}"
    );
    let all = kg.run(&["deps", "dependents", "serde"]);
    assert!(
        all.ok()
            .ends_with("(2 dependents of 'serde', in rebuild order)\n"),
        "{all:?}"
    );
    kg.run(&["deps", "resolve", "nope"]).fails(3, "'nope'");
    kg.run(&["traverse", "nope"]).fails(3, "'nope'");
    // A dependency cycle is refused, naming the cycle.
    kg.run(&["node", "update", "serde", "--add-dep", "kgstore"])
        .fails(2, "kgstore");

    let stats = kg.json_of(&["stats"]);
    assert_eq!(
        (stats["nodes"].as_u64(), stats["edges"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(stats["node_types"], json!({"crate": 3, "tool": 1}));
    assert!(kg.run(&["stats"]).ok().contains("NODE TYPE"));
    let check = kg.json_of(&["check"]);
    assert_eq!(check["problems"], json!([]), "{check}");
    kg.run(&["optimize"]).ok();
}

#[test]
fn schemas_are_set_listed_enforced_and_removed() {
    let kg = Kg::sqlite().with_crates();
    let schema = kg.path("crate.schema.json");
    std::fs::write(
        &schema,
        r#"{"type":"object","required":["lang"],"properties":{"lang":{"type":"string"}}}"#,
    )
    .unwrap();
    let schema = schema.to_str().unwrap();
    kg.run(&["schema", "set", "--node-type", "crate", schema])
        .ok();
    assert_eq!(
        kg.json_of(&["schema", "get", "--node-type", "crate"])["required"],
        json!(["lang"])
    );
    let listed = kg.json_of(&["schema", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let line = kg
        .run(&["node", "create", "bad", "-t", "crate", "--attr", "lang=7"])
        .fails(2, "/attributes/lang")
        .to_owned();
    assert!(line.contains("'bad'"), "{line}");
    kg.run(&["node", "create", "none", "-t", "crate"])
        .fails(2, "lang");
    // Stdin works too; a schema the stored data violates is refused.
    // The refusal says that the schema was not registered and why, before the
    // node that violates it.
    let line = kg
        .run_with_input(
            &["schema", "set", "--node-type", "tool", "-"],
            r#"{"type":"object","required":["homepage"]}"#,
        )
        .fails(2, "jq")
        .to_owned();
    assert!(
        line.starts_with(
            "error: the schema for node type 'tool' was not registered: stored data violates it"
        ),
        "{line}"
    );
    kg.run_with_input(
        &["schema", "set", "--relation", "depends_on", "-"],
        "{not json",
    )
    .fails(2, "JSON");
    kg.run(&["schema", "remove", "--node-type", "crate"]).ok();
    kg.run(&["schema", "get", "--node-type", "crate"])
        .fails(2, "has no schema");
    kg.run(&["node", "create", "none", "-t", "crate"]).ok();
}

#[test]
fn jsonl_export_imports_back_identically() {
    let kg = Kg::sqlite().with_crates();
    let file = kg.path("all.jsonl");
    let file_arg = file.to_str().unwrap();
    let report = kg.json_of(&["export", file_arg]);
    assert_eq!(report["nodes"], 4, "{report}");
    kg.run(&["export", file_arg]).fails(4, "all.jsonl");
    let stdout = kg.run(&["export"]).ok().to_owned();
    assert_eq!(stdout, std::fs::read_to_string(&file).unwrap());

    let other = Kg::json();
    let imported = other.json_of(&["import", file_arg]);
    assert_eq!(
        (imported["nodes"].as_u64(), imported["edges"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(
        other.run(&["export"]).ok(),
        stdout,
        "timestamps and versions kept"
    );
}

#[test]
fn mcp_memory_files_round_trip() {
    let kg = Kg::sqlite();
    let memory = r#"{"type":"entity","name":"John_Smith","entityType":"person","observations":["Speaks fluent Spanish"]}
{"type":"entity","name":"Anthropic","entityType":"Organization","observations":["AI safety company"]}
{"type":"relation","from":"John_Smith","to":"Anthropic","relationType":"works_at"}
{"type":"relation","from":"Anthropic","to":"John_Smith","relationType":"is interested in"}
"#;
    let file = kg.path("memory.jsonl");
    std::fs::write(&file, memory).unwrap();
    let report = kg.json_of(&["import", "--format", "mcp", file.to_str().unwrap()]);
    assert_eq!(
        (report["nodes"].as_u64(), report["edges"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        kg.json_of(&["node", "get", "Anthropic"])["node_type"],
        "organization"
    );
    let relations = kg.json_of(&["edge", "list", "--from", "Anthropic"]);
    assert_eq!(relations["items"][0]["relation_type"], "is_interested_in");
    let back = kg.run(&["export", "--format", "mcp"]).ok().to_owned();
    let as_set = |text: &str| -> BTreeSet<String> {
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string())
            .collect()
    };
    assert_eq!(as_set(&back), as_set(memory));
}

#[test]
fn graphml_and_dot_exports_parse() {
    let kg = Kg::sqlite().with_crates();
    let graphml = kg.run(&["export", "--format", "graphml"]).ok().to_owned();
    let doc = roxmltree::Document::parse(&graphml).unwrap();
    let ids: BTreeSet<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("node"))
        .filter_map(|n| n.attribute("id"))
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from(["jq", "kgstore", "serde", "serde_json"])
    );
    assert_eq!(
        doc.descendants().filter(|n| n.has_tag_name("edge")).count(),
        4
    );
    let dot = kg.run(&["export", "--format", "dot"]).ok().to_owned();
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("\"jq\""));
    let file = kg.path("around.dot");
    kg.run(&[
        "export",
        "--format",
        "dot",
        "--around",
        "serde",
        "--depth",
        "1",
        file.to_str().unwrap(),
    ])
    .ok();
    let around = std::fs::read_to_string(&file).unwrap();
    assert!(
        around.contains("\"serde_json\"") && !around.contains("\"jq\""),
        "{around}"
    );
    kg.run(&["export", "--format", "jsonl", "--around", "serde"])
        .fails(2, "--around");
    // --depth counts hops around --around; alone it would be ignored.
    kg.run(&["export", "--format", "dot", "--depth", "2"])
        .fails(2, "--around");
    kg.run(&["import", "--format", "graphml", "x"])
        .fails(1, "x");
    let exists = kg.path("x.graphml");
    std::fs::write(&exists, "<graphml/>").unwrap();
    kg.run(&["import", "--format", "graphml", exists.to_str().unwrap()])
        .fails(2, "exported, not imported");
}

#[test]
fn backup_verify_restore_and_a_corrupt_backup() {
    let kg = Kg::sqlite().with_crates();
    let backup = kg.path("backup");
    let backup_arg = backup.to_str().unwrap();
    let made = kg.json_of(&["backup", backup_arg]);
    assert_eq!(made["counts"]["nodes"], 4, "{made}");
    assert!(kg.run(&["verify", backup_arg]).ok().contains("is sound"));
    let verified = kg.json_of(&["verify", backup_arg]);
    assert_eq!(verified["problems"], json!([]), "{verified}");

    let other = Kg::json();
    other.run(&["restore", backup_arg]).ok();
    assert_eq!(other.run(&["export"]).ok(), kg.run(&["export"]).ok());
    let line = other
        .run(&["restore", backup_arg])
        .fails(2, "not empty")
        .to_owned();
    assert!(line.contains("--replace"), "{line}");
    other.run(&["node", "create", "extra", "-t", "thing"]).ok();
    other.run(&["restore", "--replace", backup_arg]).ok();
    other.run(&["node", "get", "extra"]).fails(3, "extra");

    // A flipped byte: verify names the file, restore refuses and changes nothing.
    let nodes = backup.join("nodes.jsonl");
    let mut bytes = std::fs::read(&nodes).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&nodes, bytes).unwrap();
    kg.run(&["verify", backup_arg]).fails(6, "nodes.jsonl");
    let before = other.run(&["export"]).ok().to_owned();
    other
        .run(&["restore", "--replace", backup_arg])
        .fails(6, "nodes.jsonl");
    assert_eq!(other.run(&["export"]).ok(), before);
    // A mistyped folder is not found (exit 3), not a corrupt backup (exit 6).
    kg.run(&["verify", kg.path("nowhere").to_str().unwrap()])
        .fails(3, "backup folder");
    other
        .run(&["restore", "--replace", kg.path("nowhere").to_str().unwrap()])
        .fails(3, "nowhere");
    // ... and is refused before the store is opened: none is created for it.
    let fresh = Kg::sqlite();
    fresh
        .run(&["restore", kg.path("nowhere").to_str().unwrap()])
        .fails(3, "nowhere");
    assert!(!fresh.path("kg.db").exists());
    // So is a folder that holds no backup (no manifest: a folder of the user's, an
    // interrupted backup): refused as restore refuses it, with no store created.
    let not_a_backup = kg.path("not-a-backup");
    std::fs::create_dir(&not_a_backup).unwrap();
    std::fs::write(not_a_backup.join("notes.txt"), "mine").unwrap();
    for fresh in [Kg::sqlite(), Kg::json()] {
        fresh
            .run(&["restore", not_a_backup.to_str().unwrap()])
            .fails(6, "manifest.json");
        assert!(!fresh.path("kg.db").exists() && !fresh.path("kg").exists());
    }
}

/// A backup into the folder of the JSON-files store it backs up (`--store
/// json://./kg backup ./kg/today`) is refused: it would be lost or replaced with
/// the store it is meant to outlive, and inside `nodes/` it made `check` report the
/// store damaged (a stray). Beside the store is fine.
#[test]
fn a_backup_inside_the_store_folder_is_refused() {
    let kg = Kg::json().with_crates();
    for inside in [
        kg.path("kg").join("today"),
        kg.path("kg").join("nodes/x/today"),
    ] {
        kg.run(&["backup", inside.to_str().unwrap()])
            .fails(2, "inside the store's own folder");
        assert!(!inside.exists());
    }
    // Through a relative path that leads back into it.
    std::fs::create_dir(kg.path("elsewhere")).unwrap();
    let sneaky = kg.path("elsewhere/../kg/today");
    kg.run(&["backup", sneaky.to_str().unwrap()])
        .fails(2, "inside the store's own folder");
    kg.run(&["check"]).ok();
    let beside = kg.path("kg-backup");
    kg.run(&["backup", beside.to_str().unwrap()]).ok();
    kg.run(&["verify", beside.to_str().unwrap()]).ok();
}

#[test]
fn bad_inputs_give_one_line_and_the_documented_code() {
    let kg = Kg::sqlite().with_crates();
    // Malformed JSON.
    kg.run(&["node", "create", "x", "-t", "thing", "--attrs", "{oops"])
        .fails(2, "--attrs");
    kg.run(&["node", "create", "x", "-t", "thing", "--attrs", "[1]"])
        .fails(2, "object");
    kg.run(&["node", "create", "x", "-t", "thing", "--attr", "novalue"])
        .fails(2, "novalue");
    // Unknown or malformed relation, missing nodes.
    kg.run(&["edge", "create", "jq", "Not-A-Relation", "serde"])
        .fails(2, "Not-A-Relation");
    kg.run(&["edge", "create", "jq", "calls", "ghost"])
        .fails(3, "ghost");
    kg.run(&["node", "get", "ghost"]).fails(3, "ghost");
    // Invalid names and types.
    kg.run(&["node", "create", "", "-t", "thing"])
        .fails(2, "name");
    kg.run(&["node", "create", "x", "-t", "Bad Type"])
        .fails(2, "/node_type");
    let long = "n".repeat(5000);
    kg.run(&["node", "create", &long, "-t", "thing"])
        .fails(2, "name");
    kg.run(&["node", "create", "serde", "-t", "crate"])
        .fails(4, "'serde'");
    kg.run(&["edge", "create", "jq", "calls", "serde", "--weight", "-1"])
        .fails(2, "weight");
    kg.run(&["node", "create", "x", "-t", "thing", "-d", "ghost"])
        .fails(3, "ghost");
    // Bad store URLs.
    let mut bad = Command::new(BIN);
    bad.args(["--store", "nonsense", "stats"])
        .env_remove("KGSTORE_URL");
    collect(bad.output().unwrap()).fails(2, "nonsense");
    let mut bad = Command::new(BIN);
    bad.args(["--store", "sqlite://x.db?colour=blue", "init"])
        .current_dir(kg.dir.path());
    collect(bad.output().unwrap()).fails(2, "colour");
    // An empty KGSTORE_URL is not unset: the error says where the empty URL came from.
    let mut empty = Command::new(BIN);
    empty
        .args(["stats"])
        .env("KGSTORE_URL", "")
        .current_dir(kg.dir.path());
    collect(empty.output().unwrap()).fails(2, "KGSTORE_URL is set but empty");
    // The same for `stats --perf`, which reads the URL for its record too, and in --json.
    for args in [
        &["stats", "--perf"][..],
        &["--json", "stats", "--perf"],
        &["doc", "ls"],
    ] {
        let mut empty = Command::new(BIN);
        empty
            .args(args)
            .env("KGSTORE_URL", "")
            .current_dir(kg.dir.path());
        collect(empty.output().unwrap()).fails(2, "KGSTORE_URL is set but empty");
    }
    // An empty --store is the user's own: the variable is not blamed (set or not).
    for env in [Some(""), None] {
        for args in [&["--store", "", "stats"][..], &["stats", "--store", ""]] {
            let mut given = Command::new(BIN);
            given.args(args).current_dir(kg.dir.path());
            match env {
                Some(value) => given.env("KGSTORE_URL", value),
                None => given.env_remove("KGSTORE_URL"),
            };
            let run = collect(given.output().unwrap());
            let line = run.fails(2, "store URL ''");
            assert!(!line.contains("KGSTORE_URL"), "{line}");
        }
    }
    // No shell reads a store URL: '~' would be a folder named '~' here.
    for url in ["sqlite://~/kg.db", "json://~/kg"] {
        let mut tilde = Command::new(BIN);
        tilde
            .args(["--store", url, "init"])
            .current_dir(kg.dir.path());
        collect(tilde.output().unwrap()).fails(2, "'~' is not expanded");
        let mut tilde = Command::new(BIN);
        tilde
            .args(["--store", url, "stats"])
            .current_dir(kg.dir.path());
        collect(tilde.output().unwrap()).fails(2, "'~' is not expanded");
    }
    // Nor written as %7E: the refusal quotes what was written, and what it decoded to.
    for url in ["sqlite://%7E/kg.db", "json://%7e"] {
        let mut tilde = Command::new(BIN);
        tilde
            .args(["--store", url, "init"])
            .current_dir(kg.dir.path());
        let run = collect(tilde.output().unwrap());
        let line = run.fails(2, "'~' is not expanded");
        assert!(line.contains(&format!("store URL '{url}'")), "{line}");
        assert!(line.contains("decodes to '~"), "{line}");
    }
    assert!(!kg.dir.path().join("~").exists());
    // A '%' that is not an escape is refused, not read as one (`%+1` was the byte 1).
    for (url, says) in [
        ("sqlite://x%+1.db", "'%+1' is not a percent escape"),
        ("sqlite://100%.db", "'%.d' is not a percent escape"),
        ("sqlite://x.db?lock_timeout_ms=+5", "lock_timeout_ms='+5'"),
    ] {
        let mut bad = Command::new(BIN);
        bad.args(["--store", url, "init"])
            .current_dir(kg.dir.path());
        let run = collect(bad.output().unwrap());
        let line = run.fails(2, says);
        assert!(line.contains(&format!("store URL '{url}'")), "{line}");
    }
    // What escapes are for works: a '?' and a '%' in a file name.
    let mut escaped = Command::new(BIN);
    escaped
        .args(["--store", "sqlite://what%3F100%25.db", "init"])
        .current_dir(kg.dir.path());
    collect(escaped.output().unwrap()).ok();
    assert!(kg.dir.path().join("what?100%.db").exists());
    // A malformed import line names its number and leaves nothing behind.
    let before = kg.run(&["export"]).ok().to_owned();
    let input = format!(
        "{}\n{{\"name\":\"broken\"\n",
        r#"{"name":"fresh","node_type":"thing"}"#
    );
    let line = kg
        .run_with_input(&["import", "-"], &input)
        .fails(2, "line 2")
        .to_owned();
    assert!(line.contains("line 2"), "{line}");
    assert_eq!(kg.run(&["export"]).ok(), before);
    // --json errors are one JSON line with kind and exit code.
    let run = kg.run(&["--json", "node", "get", "ghost"]);
    let line = run.fails(3, "ghost");
    let value: Value = serde_json::from_str(line).unwrap();
    assert_eq!(value["error"]["kind"], "node_not_found");
    assert_eq!(value["error"]["exit_code"], 3);
}

/// Starts `kgstore import -` reading its lines from a pipe this test writes to: the
/// import holds one write transaction (and the store's lock) until its input ends.
fn holding_import(kg: &Kg) -> std::process::Child {
    let holder_url = format!("{}?lock_timeout_ms=20000", kg.url);
    Command::new(BIN)
        .current_dir(kg.dir.path())
        .env_remove("KGSTORE_URL")
        .args(["--store", &holder_url, "import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the JSON-files store under `kg` names `pid` as the writer holding it.
fn wait_for_holder(kg: &Kg, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let wanted = format!("pid {pid}");
    while std::fs::read_to_string(kg.path("kg/LOCK"))
        .unwrap_or_default()
        .trim()
        != wanted
    {
        assert!(Instant::now() < deadline, "the import never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `n` native JSON lines of nodes `q{first}`…
fn node_lines(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("{{\"name\":\"q{i}\",\"node_type\":\"question\"}}\n"))
        .collect()
}

/// How many nodes the observation's import writes: 150,000 in the issue that
/// reported it; fewer by default, so that CI stays quick (`KGSTORE_CLI_IMPORT_NODES`).
fn import_size() -> usize {
    std::env::var("KGSTORE_CLI_IMPORT_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

/// Observation 1 of issue 17: while an import runs, `stats` and a read-only
/// `node get` used to fail at once with exit 5. They answer at once, from the last
/// committed state; a write waits its timeout and gets exit 5 naming the importer.
#[test]
fn readers_answer_while_an_import_runs_and_a_writer_gets_exit_5_naming_it() {
    let kg = Kg::json();
    kg.run(&["node", "create", "q0", "-t", "question"]).ok();
    let mut holder = holding_import(&kg);
    let mut input = holder.stdin.take().unwrap();
    let total = import_size();
    input
        .write_all(node_lines(1, total / 2).as_bytes())
        .unwrap();
    input.flush().unwrap();
    wait_for_holder(&kg, holder.id());

    let stats = kg.run(&["--json", "stats"]).json();
    assert_eq!(
        stats["nodes"], 1,
        "the import is not committed yet: {stats}"
    );
    let read_only = format!("{}?read_only=true", kg.url);
    let got = collect(
        Command::new(BIN)
            .current_dir(kg.dir.path())
            .args(["--store", &read_only, "--json", "node", "get", "q0"])
            .output()
            .unwrap(),
    );
    assert_eq!(got.json()["name"], "q0");
    kg.run(&["check"]).ok();
    // A writer waits (here 200 ms), then is told who holds the store.
    let waiting = format!("{}?lock_timeout_ms=200", kg.url);
    let locked = collect(
        Command::new(BIN)
            .current_dir(kg.dir.path())
            .args([
                "--store", &waiting, "node", "create", "late", "-t", "question",
            ])
            .output()
            .unwrap(),
    );
    let line = locked.fails(5, &format!("pid {}", holder.id()));
    // ... and what to do about it.
    assert!(
        line.contains("retry") && line.contains("lock_timeout_ms"),
        "{line}"
    );
    assert!(
        holder.try_wait().unwrap().is_none(),
        "the import ended early"
    );

    input
        .write_all(node_lines(1 + total / 2, total - total / 2).as_bytes())
        .unwrap();
    drop(input);
    let status = holder.wait().unwrap();
    assert!(status.success(), "the import failed");
    let stats = kg.run(&["--json", "stats"]).json();
    assert_eq!(stats["nodes"], total as u64 + 1);
    kg.run(&["node", "create", "late", "-t", "question"]).ok();
}

/// Observation 2 of issue 17: four processes creating 40 nodes each at the same
/// time used to see 141 of 160 creates fail with exit 5 on `json://`. Every one
/// succeeds, on `json://` as on `sqlite://`.
#[test]
fn four_processes_creating_40_nodes_each_all_succeed() {
    for kg in [Kg::json(), Kg::sqlite()] {
        kg.run(&["init"]).ok();
        std::thread::scope(|s| {
            for p in 0..4 {
                let kg = &kg;
                s.spawn(move || {
                    for i in 0..40 {
                        let name = format!("p{p}-n{i}");
                        kg.run(&["node", "create", &name, "-t", "thing"]).ok();
                    }
                });
            }
        });
        let stats = kg.json_of(&["stats"]);
        assert_eq!(stats["nodes"], 160, "{}", kg.url);
        kg.run(&["check"]).ok();
    }
}

/// Observation 3 of issue 17: after a writer was killed with SIGKILL, `check` used
/// to exit 6 ("corrupt data … temporary file of an interrupted write") although the
/// store was whole. It exits 0, telling as notes what is left and what the next
/// write will do; the next write succeeds at once and leaves nothing to note.
#[test]
fn check_after_a_killed_writer_exits_0_with_notes_and_the_next_write_recovers() {
    let kg = Kg::json();
    kg.run(&["node", "create", "q0", "-t", "question"]).ok();
    // Killed while it holds the lock, before writing anything.
    let mut holder = holding_import(&kg);
    wait_for_holder(&kg, holder.id());
    holder.kill().unwrap();
    holder.wait().unwrap();
    let check = kg.run(&["check"]);
    let out = check.ok();
    assert!(out.contains("note: ") && out.contains("LOCK"), "{out}");
    assert!(out.contains("next write"), "{out}");

    // Killed in the middle of its commit: staged files, maybe a journal, are left.
    let mut holder = holding_import(&kg);
    let mut input = holder.stdin.take().unwrap();
    input
        .write_all(node_lines(1, import_size()).as_bytes())
        .unwrap();
    wait_for_holder(&kg, holder.id());
    drop(input);
    let journal = kg.path("kg/journal");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let staged = std::fs::read_dir(&journal)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .count();
        if staged > 0 {
            break;
        }
        assert!(
            holder.try_wait().unwrap().is_none(),
            "the import finished before it could be killed mid-commit"
        );
        assert!(Instant::now() < deadline, "the import never staged a file");
        std::thread::sleep(Duration::from_millis(1));
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    let check = kg.run(&["check"]);
    let out = check.ok();
    let notes: Vec<&str> = out.lines().filter(|l| l.starts_with("note: ")).collect();
    assert!(notes.len() > 1, "{out}");
    assert!(
        notes.iter().all(|n| n.contains("the next write")),
        "every note says what the next write does: {out}"
    );
    assert!(out.contains("no problems"), "{out}");
    // The JSON report marks them as notes.
    let report = kg.json_of(&["check"]);
    let problems = report["problems"].as_array().unwrap();
    assert!(problems.iter().all(|p| p["severity"] == "note"), "{report}");

    // The next write recovers at once; nothing is left to note.
    let before = kg.json_of(&["stats"])["nodes"].as_u64().unwrap();
    kg.run(&["node", "create", "after", "-t", "question"]).ok();
    let out = kg.run(&["check"]).ok().to_owned();
    assert!(!out.contains("note: "), "{out}");
    assert_eq!(
        kg.json_of(&["stats"])["nodes"].as_u64().unwrap(),
        before + 1
    );
    // Damage still exits 6.
    let file = first_json_under(&kg.path("kg/nodes"));
    std::fs::write(&file, b"{ not json").unwrap();
    kg.run(&["check"]).fails(6, "kg");
}

#[test]
fn a_corrupt_store_file_is_refused_with_exit_code_6() {
    let kg = Kg::sqlite();
    std::fs::write(kg.path("kg.db"), b"this is not a database, just text").unwrap();
    kg.run(&["stats"]).fails(6, "kg.db");
    let kg = Kg::json().with_crates();
    let file = first_json_under(&kg.path("kg/nodes"));
    std::fs::write(&file, b"{ not json").unwrap();
    kg.run(&["stats"])
        .fails(6, file.file_name().unwrap().to_str().unwrap());
}

fn first_json_under(dir: &Path) -> PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                return path;
            }
        }
    }
    panic!("no JSON file under {}", dir.display());
}

#[test]
fn the_demo_runs_and_both_stores_agree() {
    let kg = Kg::sqlite();
    let run = kg.run(&["demo", "--dir", kg.path("demo").to_str().unwrap()]);
    let out = run.ok();
    for step in [
        "1. Reading the real dependency graph",
        "2. Storing them in",
        "3. Documents beside the graph",
        "4. Build order of kgstore-cli",
        "5. Who depends on serde",
        "6. The crate farthest from",
        "7. A filtered page",
        "9. The neighbourhood of",
        "10. Backup → verify → restore",
        "byte for byte",
        "8. Ranked search for",
        "A substring\n   match finds 0 crate(s)",
        "rank the search of step 8 identically",
        "11. Integrity check",
        "12. History",
        "13. The same store as an MCP memory server",
        "14. What the SQLite store measured",
        // Four write transactions on the SQLite store (storing the crates and three
        // MCP calls); the last MCP call is refused, so three commits and one error.
        "write transactions 4: p50",
        "commits 3: p50",
        "errors 1,",
        "page_cache_hits",
        "15. Several processes on the JSON-files store: 4 ",
        "16. Events: the change feed on, then graph changes, documents and events in one",
        "node.updated and document.created events to $changes, in the same commit",
        "parked 1 in the dead-letter queue",
        "Replayed 1 dead letter(s), delivered 1 and acked",
        "duplicate = true",
        "17. Screenplays: Fountain scripts as a graph",
        "Importing the same files again: nothing changed, no version moved",
        "1 scene changed",
        "Exported scripts are byte-identical to what was imported: true",
        "Ranked dialogue search for \"Holm ferry\": 9 speeches, the best first:",
        "(2 of 2 words): The ferry's. Holm used it",
        // The git repository's log: the store's creation, the first import and
        // the edit (the unchanged re-import made no commit).
        "The repository's log (3 commits):",
        "kgstore: create the store",
        "screenplay import: S01E01 - Dead Air.fountain (The Night Desk)",
        "screenplay import: 3 scripts",
        "Commits that changed scripts/the-night-desk/S01E01 - Dead Air.fountain: 2",
    ] {
        assert!(out.contains(step), "{step:?} in {out}");
    }
    // The ranked search puts the JSON serialization crate first.
    let ranked = out.split("ranks these first:\n").nth(1).unwrap_or_default();
    let first = ranked.lines().next().unwrap_or_default();
    assert!(first.contains("serde_json"), "{first:?} in {out}");
    assert!(kg.path("demo/demo.db").is_file());
    assert!(kg.path("demo/demo-json/kgstore-jsonfs.json").is_file());
    // Running it again starts over rather than failing on what is there.
    kg.run(&["demo", "--dir", kg.path("demo").to_str().unwrap()])
        .ok();
}

#[test]
fn a_batched_import_keeps_the_batches_before_a_bad_line() {
    let kg = Kg::sqlite();
    let good = |i: usize| format!(r#"{{"name":"n{i}","node_type":"thing"}}"#);
    let input = format!("{}\n{}\n{}\nnot json\n", good(1), good(2), good(3));
    kg.run_with_input(&["import", "--batch-size", "2", "-"], &input)
        .fails(2, "line 4");
    let listed = kg.json_of(&["node", "list"]);
    assert_eq!(
        names(&listed["items"]),
        ["n1", "n2"],
        "the first batch stays"
    );
    kg.run_with_input(&["import", "--batch-size", "0", "-"], &input)
        .fails(2, "batch");
}

/// `run_with_input` wrote the whole input and unwrapped the write: a command
/// that refuses its options before reading stdin closes the pipe, and the write
/// failed with EPIPE now and then (a flaky `a_batched_import_…`).
#[test]
fn regression_input_to_a_command_that_exits_early_is_its_answer() {
    let kg = Kg::sqlite();
    // Far more than a pipe holds, so the write meets the closed pipe every time.
    let input = r#"{"name":"n","node_type":"thing"}"#.repeat(1 << 16) + "\n";
    kg.run_with_input(&["import", "--batch-size", "0", "-"], &input)
        .fails(2, "batch");
}

/// An argument that is not UTF-8 panicked ("internal error"): the usage error's
/// check for `--json` read `std::env::args()`, which panics on such an argument.
#[cfg(unix)]
#[test]
fn regression_an_argument_that_is_not_utf8_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let kg = Kg::sqlite();
    let bad = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let run = collect(kg.command(&["node", "create"]).arg(bad).output().unwrap());
    let line = run.fails(2, "UTF-8");
    assert!(!line.contains("internal error"), "{line}");
    let run = collect(
        kg.command(&["--json", "node", "get"])
            .arg(bad)
            .output()
            .unwrap(),
    );
    let value: Value = serde_json::from_str(run.fails(2, "UTF-8")).unwrap();
    assert_eq!(value["error"]["kind"], "invalid_input");
    assert!(!kg.path("kg.db").exists());
}

/// Random argument lists from the CLI's own vocabulary: whatever they are, the
/// binary answers with a documented exit code and never a panic.
#[test]
fn random_arguments_never_panic() {
    const WORDS: &[&str] = &[
        "node",
        "edge",
        "create",
        "get",
        "update",
        "delete",
        "list",
        "neighbors",
        "traverse",
        "path",
        "deps",
        "resolve",
        "dependents",
        "schema",
        "set",
        "stats",
        "check",
        "export",
        "import",
        "verify",
        "restore",
        "backup",
        "-t",
        "--type",
        "--attr",
        "--attrs",
        "--where",
        "--limit",
        "--cursor",
        "--depth",
        "--weight",
        "--rel",
        "--json",
        "--format",
        "mcp",
        "dot",
        "graphml",
        "a",
        "b",
        "thing",
        "depends_on",
        "k=v",
        "{",
        "{}",
        "[]",
        "/attributes/k=v",
        "-1",
        "0",
        "99999999999999999999",
        "NaN",
        "inf",
        "..",
        "../../etc/passwd",
        "-",
        "",
        " ",
        "é",
        "\u{202e}",
        "--around",
        "--direct",
        "--weighted",
        "--cascade",
        "--replace",
    ];
    let kg = Kg::sqlite();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let cases: usize = std::env::var("KGSTORE_CLI_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    for _ in 0..cases {
        let len = (next() % 7) as usize + 1;
        let args: Vec<&str> = (0..len)
            .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
            .collect();
        let run = kg.run(&args);
        assert!((0..=6).contains(&run.code), "{args:?}: {run:#?}");
        assert!(
            !run.stderr.contains("panicked") && !run.stderr.contains("internal error"),
            "{args:?}: {run:#?}"
        );
        if run.code != 0 {
            assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {run:#?}");
        }
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let kg = Kg::sqlite();
    let lines: String = (0..5000)
        .map(|i| format!("{{\"name\":\"n{i}\",\"node_type\":\"thing\"}}\n"))
        .collect();
    kg.run_with_input(&["import", "-"], &lines).ok();
    for args in [&["export"][..], &["node", "list", "--limit", "5000"]] {
        let mut child = kg
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one byte, then hang up.
        let mut first = [0u8; 1];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn git_history_log_diff_and_reading_at_a_revision() {
    let kg = Kg::git();
    kg.run(&["node", "create", "serde", "-t", "crate"]).ok();
    kg.run(&["node", "create", "serde_json", "-t", "crate", "-d", "serde"])
        .ok();
    kg.run(&["node", "update", "serde", "--attr", "license=MIT"])
        .ok();
    let log = kg.json_of(&["log"]);
    let revisions = log.as_array().unwrap();
    assert_eq!(revisions.len(), 4, "{log:#}");
    assert!(
        revisions[3]["message"]
            .as_str()
            .unwrap()
            .contains("create the store")
    );
    let human = kg.run(&["log", "--limit", "2"]).ok().to_owned();
    assert!(human.contains("kgstore: node (1 updated)"), "{human}");
    assert_eq!(
        kg.json_of(&["log", "--node", "serde"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        kg.json_of(&["log", "--node", "serde_json", "--limit", "5"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Every read command reads at a revision; writes refuse --at.
    let first = revisions[2]["id"].as_str().unwrap();
    assert_eq!(
        kg.json_of(&["--at", first, "node", "list"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        kg.json_of(&["--at", "main~1", "node", "get", "serde"])["attributes"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        kg.json_of(&["node", "get", "serde"])["attributes"]["license"],
        "MIT"
    );
    kg.run(&["--at", first, "node", "get", "serde_json"])
        .fails(3, "serde_json");
    let exported = kg.run(&["--at", "main~1", "export"]).ok().to_owned();
    assert_eq!(exported.lines().count(), 2, "{exported}");
    kg.run(&["--at", "main~1", "deps", "resolve", "serde_json"])
        .ok();
    kg.run(&["--at", "main", "node", "create", "x", "-t", "thing"])
        .fails(2, "--at");
    kg.run(&["--at", "no-such-rev", "node", "list"])
        .fails(2, "no-such-rev");

    // diff
    let diff = kg.json_of(&["diff", first, "main"]);
    let nodes = diff["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{diff:#}");
    assert_eq!(nodes[0]["change"], "changed");
    assert_eq!(nodes[1]["change"], "added");
    let human = kg.run(&["diff", first, "main"]).ok().to_owned();
    assert!(
        human.contains("~") && human.contains("serde_json"),
        "{human}"
    );
    assert!(
        kg.run(&["diff", "main", "main"])
            .ok()
            .contains("no difference")
    );

    // Stores without history say so.
    let sqlite = Kg::sqlite();
    sqlite.run(&["init"]).ok();
    sqlite
        .run(&["log"])
        .fails(2, "not supported by the sqlite backend");
}
