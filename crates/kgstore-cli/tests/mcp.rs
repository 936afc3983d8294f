//! `kgstore mcp` as MCP clients meet it: a real process on stdio, several at
//! once on one store, the official TypeScript SDK as its client, and the
//! official memory server (`@modelcontextprotocol/server-memory` from npm) as
//! the reference it is compared with, call by call.
//!
//! The npm packages are installed by `.ci/run` (`npm ci` of `tests/mcp/package.json`
//! into `target/mcp-npm`, or `$KGSTORE_MCP_NPM_DIR`); without them the tests
//! that need them say so loudly and skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should panic

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_kgstore");
const WAIT: Duration = Duration::from_secs(60);

/// A server process on stdio; lines it prints arrive on a channel.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: i64,
    /// Notifications seen while waiting for answers.
    notifications: Vec<Value>,
}

impl Peer {
    fn spawn(mut command: Command) -> Peer {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            stdin: child.stdin.take(),
            child,
            lines,
            next_id: 0,
            notifications: Vec::new(),
        }
    }

    fn kgstore(url: &str, extra: &[&str]) -> Peer {
        let mut command = Command::new(BIN);
        command.args(["--store", url, "mcp"]).args(extra);
        Peer::spawn(command)
    }

    fn write(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn next_message(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no answer from the server: {e}"));
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {line}"))
    }

    /// Sends a request and waits for its answer.
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.write(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        self.answer(id)
    }

    fn answer(&mut self, id: i64) -> Value {
        loop {
            let message = self.next_message();
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
            assert!(
                message.get("method").is_some(),
                "an answer to another request: {message}"
            );
            self.notifications.push(message);
        }
    }

    fn initialize(&mut self, revision: &str) -> Value {
        let answer = self.request(
            "initialize",
            json!({"protocolVersion": revision, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
        );
        self.write(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        answer
    }

    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let answer = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        answer["result"].clone()
    }

    /// Closes stdin and waits for the process to end.
    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        // Whatever was still printed must be protocol messages too.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
            serde_json::from_str::<Value>(&line)
                .unwrap_or_else(|e| panic!("non-JSON on stdout ({e}): {line}"));
        }
        status
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("kg.db").display())
}

fn names(graph: &Value) -> Vec<String> {
    let mut names: Vec<String> = graph["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Four requests (one not JSON, one failing call) sent to `kgstore <args> mcp
/// <mcp_args>` on a SQLite store in `dir`; returns the output once stdin closed.
fn serve_four_requests(dir: &Path, args: &[&str], mcp_args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["--store", &sqlite_url(dir)])
        .args(args)
        .arg("mcp")
        .args(mcp_args)
        .env_remove("KGSTORE_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(
                concat!(
                    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#, "\n",
                    "not json\n",
                    r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create_entities","arguments":{"entities":[{"name":"A","entityType":"t","observations":[]}]}}}"#, "\n",
                    r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add_observations","arguments":{"observations":[{"entityName":"Nobody","contents":["x"]}]}}}"#, "\n",
                ).as_bytes(),
            )?;
            drop(stdin);
            child.wait_with_output()
        })
        .unwrap()
}

/// Asserts that stdout holds exactly the four JSON-RPC answers and nothing else.
fn assert_pure_protocol(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let messages: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} on stdout")))
        .collect();
    assert_eq!(messages.len(), 4, "{stdout}");
    assert!(messages.iter().all(|m| m["jsonrpc"] == "2.0"), "{stdout}");
}

#[test]
fn stdout_carries_only_the_protocol_and_the_log_goes_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mcp.log");
    let log_arg = log.to_str().unwrap();
    let output = serve_four_requests(
        dir.path(),
        &[],
        &["--log-level", "debug", "--log-file", log_arg],
    );
    assert_pure_protocol(&output);
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The command line's JSON-lines log, which `kgstore log-review` reads.
    let log = std::fs::read_to_string(&log).unwrap();
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["fields"]["message"].as_str())
        .collect();
    for wanted in ["serving on stdio", "not JSON", "tool call"] {
        assert!(
            messages.iter().any(|m| m.contains(wanted)),
            "{wanted:?} in {log}"
        );
    }
    // The store's own spans reach the same log: the create_entities call is a
    // write transaction.
    assert!(
        events.iter().any(|e| e["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s["name"] == "write"))),
        "a write span in {log}"
    );
}

#[test]
fn with_vv_the_log_goes_to_stderr_and_stdout_stays_pure_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let output = serve_four_requests(dir.path(), &["-vv"], &[]);
    assert_pure_protocol(&output);
    let stderr = String::from_utf8(output.stderr).unwrap();
    // -vv is debug for kgstore's crates, the server's and the store's alike.
    for wanted in [
        "serving on stdio",
        "not JSON",
        "tool call",
        "DEBUG",
        "write",
    ] {
        assert!(stderr.contains(wanted), "{wanted:?} in {stderr}");
    }
    assert!(
        !stderr.contains("jsonrpc"),
        "no protocol on stderr: {stderr}"
    );
}

#[test]
fn the_default_log_level_is_info_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let output = serve_four_requests(dir.path(), &[], &[]);
    assert_pure_protocol(&output);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("serving on stdio"), "{stderr}");
    assert!(!stderr.contains("DEBUG"), "{stderr}");
}

#[test]
fn a_store_that_cannot_be_opened_is_one_line_on_stderr_and_a_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args([
            "--store",
            &format!("sqlite://{}", dir.path().display()),
            "mcp",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
}

#[test]
fn bad_server_options_are_refused_before_the_store_is_opened_or_created() {
    for flags in [
        ["--default-limit", "0"],
        ["--default-limit", "10001"],
        ["--max-request-bytes", "0"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(BIN)
            .args(["--store", &sqlite_url(dir.path()), "mcp"])
            .args(flags)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{flags:?}: {stderr}");
        assert!(stderr.starts_with("error: invalid"), "{stderr}");
        // Refused before the store was opened: nothing was created.
        assert!(!dir.path().join("kg.db").exists(), "{flags:?}");
    }
}

#[test]
fn a_hundred_pipelined_creates_over_stdio_keep_a_hundred_entities() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = Peer::kgstore(&sqlite_url(dir.path()), &[]);
    peer.initialize("2025-11-25");
    // All hundred written before reading any answer.
    for i in 1..=100 {
        peer.write(
            &json!({"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/call", "params": {"name": "create_entities",
                "arguments": {"entities": [{"name": format!("e{i:03}"), "entityType": "thing", "observations": []}]}}})
            .to_string(),
        );
    }
    for i in 1..=100 {
        let answer = peer.answer(1000 + i);
        assert_eq!(
            answer["result"]["structuredContent"]["entities"][0]["name"],
            format!("e{i:03}")
        );
    }
    let graph = peer.call("read_graph", json!({"limit": 1000}));
    assert_eq!(names(&graph["structuredContent"]).len(), 100);
    assert!(peer.finish().success());
}

#[test]
fn two_server_processes_on_one_sqlite_store_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    two_server_processes_lose_nothing(&sqlite_url(dir.path()));
}

/// Each server keeps its store open between calls; the JSON-files backend's
/// writers take turns per transaction, so neither locks the other out (issue 17).
#[test]
fn two_server_processes_on_one_json_store_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    two_server_processes_lose_nothing(&format!("json://{}", dir.path().join("kg").display()));
}

/// Two servers on `url` write at once; all their 400 changes are kept.
fn two_server_processes_lose_nothing(url: &str) {
    let mut setup = Peer::kgstore(url, &[]);
    setup.initialize("2025-11-25");
    setup.call(
        "create_entities",
        json!({"entities": [{"name": "shared", "entityType": "log", "observations": []}]}),
    );
    assert!(setup.finish().success());

    let mut peers = [Peer::kgstore(url, &[]), Peer::kgstore(url, &[])];
    for peer in &mut peers {
        peer.initialize("2025-11-25");
    }
    // Both write at once, without waiting: new entities, and observations on one
    // shared entity (a read-modify-write the official server loses across processes).
    for i in 0..100 {
        for (p, peer) in peers.iter_mut().enumerate() {
            let create = json!({"jsonrpc": "2.0", "id": 10_000 + i, "method": "tools/call", "params": {"name": "create_entities",
                "arguments": {"entities": [{"name": format!("p{p}-{i:03}"), "entityType": "thing", "observations": []}]}}});
            let observe = json!({"jsonrpc": "2.0", "id": 20_000 + i, "method": "tools/call", "params": {"name": "add_observations",
                "arguments": {"observations": [{"entityName": "shared", "contents": [format!("from {p}: {i}")]}]}}});
            peer.write(&create.to_string());
            peer.write(&observe.to_string());
        }
    }
    for peer in &mut peers {
        for i in 0..100 {
            for id in [10_000 + i, 20_000 + i] {
                let answer = peer.answer(id);
                assert_eq!(answer["result"].get("isError"), None, "{answer}");
            }
        }
    }
    let graph = peers[0].call("read_graph", json!({"limit": 1000}));
    let graph = &graph["structuredContent"];
    assert_eq!(names(graph).len(), 201);
    let shared = graph["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "shared")
        .unwrap();
    assert_eq!(shared["observations"].as_array().unwrap().len(), 200);
    for peer in peers {
        assert!(peer.finish().success());
    }
}

#[test]
fn a_failed_call_changes_nothing_and_the_next_call_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = Peer::kgstore(&sqlite_url(dir.path()), &[]);
    peer.initialize("2025-11-25");
    peer.call(
        "create_entities",
        json!({"entities": [{"name": "A", "entityType": "t", "observations": ["1"]}]}),
    );
    let before = peer.call("read_graph", json!({}));
    for (tool, args) in [
        (
            "create_entities",
            json!({"entities": [{"name": "B", "entityType": "t", "observations": []}, {"name": "", "entityType": "t", "observations": []}]}),
        ),
        (
            "create_relations",
            json!({"relations": [{"from": "A", "to": "A", "relationType": "self"}, {"from": "A", "to": "Z", "relationType": "r"}]}),
        ),
        (
            "add_observations",
            json!({"observations": [{"entityName": "A", "contents": ["2"]}, {"entityName": "Z", "contents": ["3"]}]}),
        ),
        ("create_entities", json!({"entities": "not a list"})),
    ] {
        let result = peer.call(tool, args);
        assert_eq!(result["isError"], true, "{result}");
        assert_eq!(
            peer.call("read_graph", json!({})),
            before,
            "after a failed {tool}"
        );
    }
    let result = peer.call(
        "add_observations",
        json!({"observations": [{"entityName": "A", "contents": ["2"]}]}),
    );
    assert_eq!(
        result["structuredContent"]["results"][0]["addedObservations"],
        json!(["2"])
    );
    assert!(peer.finish().success());
}

/// Where `.ci/run` installed the npm packages, if it did, and node.
fn npm_dir(what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("KGSTORE_MCP_NPM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/mcp-npm"));
    let installed = dir
        .join("node_modules/@modelcontextprotocol/server-memory/dist/index.js")
        .exists()
        && dir
            .join("node_modules/@modelcontextprotocol/sdk/package.json")
            .exists();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if installed && node {
        return Some(dir);
    }
    eprintln!(
        "\n=====================================================================\n\
         SKIPPED {what}: it needs node and the npm packages of\n\
         crates/kgstore-cli/tests/mcp/package.json installed in {}\n\
         (node found: {node}; packages found: {installed}). `.ci/run` installs them:\n\
         mkdir -p target/mcp-npm && cp crates/kgstore-cli/tests/mcp/package*.json target/mcp-npm/ \
         && (cd target/mcp-npm && npm ci)\n\
         =====================================================================\n",
        dir.display()
    );
    None
}

#[test]
fn the_official_typescript_sdk_connects_lists_the_tools_and_calls_each() {
    let Some(npm) = npm_dir("the TypeScript SDK client test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.mjs");
    let output = Command::new("node")
        .arg(&script)
        .env("MCP_NPM_DIR", &npm)
        .env("KGSTORE_BIN", BIN)
        .env("KGSTORE_URL", sqlite_url(dir.path()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the client failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["server"]["name"], "kgstore");
    assert!(
        report["instructions"]
            .as_str()
            .unwrap()
            .contains("nextCursor")
    );
    assert_eq!(
        report["tools"],
        json!([
            "create_entities",
            "create_relations",
            "add_observations",
            "delete_entities",
            "delete_observations",
            "delete_relations",
            "read_graph",
            "search_nodes",
            "open_nodes",
            "traverse",
            "shortest_path",
            "graph_stats"
        ])
    );
    let results = report["results"].as_array().unwrap();
    let called: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(called.len(), 12, "every tool was called");
    let by_step = |i: usize| &results[i];
    assert_eq!(
        by_step(0)["structured"]["entities"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        by_step(1)["structured"]["relations"][0]["relationType"],
        "knows well"
    );
    assert_eq!(by_step(4)["structured"]["entities"][0]["name"], "Alice");
    assert_eq!(
        by_step(5)["structured"]["relations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        by_step(6)["structured"]["entities"],
        json!([{"name": "Alice", "entityType": "person"}])
    );
    assert!(by_step(6)["structured"]["nextCursor"].is_string());
    assert_eq!(by_step(8)["structured"]["path"], json!(["Alice", "Bob"]));
    assert_eq!(by_step(12)["isError"], true);
    assert_eq!(by_step(12)["text"], "Entity with name Nobody not found");
    for r in results.iter().filter(|r| r["isError"] == false) {
        let text: Value = serde_json::from_str(r["text"].as_str().unwrap()).unwrap_or(Value::Null);
        if !text.is_null() {
            // The text block holds the structured content (create_* and add_observations: its one list).
            let structured = &r["structured"];
            let only = structured
                .as_object()
                .filter(|o| o.len() == 1)
                .and_then(|o| o.values().next());
            assert!(&text == structured || Some(&text) == only, "{r}");
        }
    }
    assert_eq!(report["resources"], json!(["memory://knowledge-graph"]));
    assert_eq!(names(&report["resource"]), ["Alice"]);
}

/// What a step is expected to give on both servers.
enum Expect {
    /// The same structured result and error flag (entities and relations compared in
    /// name order: kgstore answers in name order, or rank order for `search_nodes`, the
    /// official server in insertion order).
    Same,
    /// A difference docs/mcp.md documents as kgstore's improvement; the check says what kgstore gives.
    Better(&'static str, fn(&Value, &Value)),
}

/// A graph answer with its lists sorted, so that two servers' orders compare equal.
fn normalized(result: &Value) -> Value {
    let mut value = if result.get("isError") == Some(&json!(true)) {
        json!({"isError": true, "text": result["content"][0]["text"]})
    } else {
        result["structuredContent"].clone()
    };
    for key in ["entities", "relations"] {
        if let Some(list) = value.get_mut(key).and_then(Value::as_array_mut) {
            list.sort_by_key(|v| v.to_string());
        }
    }
    value
}

#[test]
fn the_same_calls_give_the_same_results_as_the_official_memory_server() {
    let Some(npm) = npm_dir("the differential test against @modelcontextprotocol/server-memory")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut official = Command::new("node");
    official
        .arg(npm.join("node_modules/@modelcontextprotocol/server-memory/dist/index.js"))
        .env("MEMORY_FILE_PATH", dir.path().join("memory.jsonl"));
    let mut theirs = Peer::spawn(official);
    let mut ours = Peer::kgstore(&sqlite_url(dir.path()), &[]);
    let their_init = theirs.initialize("2025-11-25");
    let our_init = ours.initialize("2025-11-25");
    assert_eq!(
        their_init["result"]["protocolVersion"],
        our_init["result"]["protocolVersion"]
    );

    // The tool list: every official field, as the running official server sends it.
    let their_tools = theirs.request("tools/list", json!({}))["result"]["tools"].clone();
    let our_tools = ours.request("tools/list", json!({}))["result"]["tools"].clone();
    assert_eq!(
        their_tools.as_array().unwrap().len(),
        our_tools.as_array().unwrap().len()
    );
    for (t, o) in their_tools
        .as_array()
        .unwrap()
        .iter()
        .zip(our_tools.as_array().unwrap())
    {
        for key in ["name", "title", "description", "annotations", "execution"] {
            assert_eq!(t[key], o[key], "{key} of {}", t["name"]);
        }
        for (schema, list) in [
            ("inputSchema", "properties"),
            ("outputSchema", "properties"),
        ] {
            for (property, definition) in t[schema][list].as_object().unwrap() {
                for (k, v) in definition.as_object().unwrap() {
                    if k != "items" {
                        assert_eq!(
                            &o[schema][list][property][k], v,
                            "{}.{schema}.{property}.{k}",
                            t["name"]
                        );
                    }
                }
            }
            assert_eq!(
                t[schema]["required"], o[schema]["required"],
                "{}.{schema}",
                t["name"]
            );
        }
    }
    let their_resources = theirs.request("resources/list", json!({}))["result"].clone();
    let our_resources = ours.request("resources/list", json!({}))["result"].clone();
    assert_eq!(their_resources, our_resources);

    let entity =
        |n: &str, t: &str, o: &[&str]| json!({"name": n, "entityType": t, "observations": o});
    let relation = |f: &str, t: &str, r: &str| json!({"from": f, "to": t, "relationType": r});
    let steps: Vec<(&str, Value, Expect)> = vec![
        (
            "create_entities",
            json!({"entities": [entity("Alice_Smith", "person", &["likes tea", "works at Anthropic"]), entity("Bob", "Person", &["drinks coffee"]), entity("Café Lumière", "Coffee Shop", &[])]}),
            Expect::Same,
        ),
        (
            "create_entities",
            json!({"entities": [entity("Alice_Smith", "robot", &["x"]), entity("Dan", "person", &[])]}),
            Expect::Same,
        ),
        (
            "create_relations",
            json!({"relations": [relation("Alice_Smith", "Bob", "knows"), relation("Bob", "Café Lumière", "works at")]}),
            Expect::Same,
        ),
        (
            "create_relations",
            json!({"relations": [relation("Alice_Smith", "Bob", "knows"), relation("Dan", "Alice_Smith", "Is Friend Of")]}),
            Expect::Same,
        ),
        (
            "add_observations",
            json!({"observations": [{"entityName": "Alice_Smith", "contents": ["likes tea", "plays chess"]}, {"entityName": "Dan", "contents": ["new"]}]}),
            Expect::Same,
        ),
        (
            "add_observations",
            json!({"observations": [{"entityName": "Nobody", "contents": ["x"]}]}),
            Expect::Same,
        ),
        ("search_nodes", json!({"query": "tea"}), Expect::Same),
        ("search_nodes", json!({"query": "PERSON"}), Expect::Same),
        ("search_nodes", json!({"query": "coffee"}), Expect::Same),
        ("search_nodes", json!({"query": "Café"}), Expect::Same),
        ("search_nodes", json!({"query": ""}), Expect::Same),
        (
            "search_nodes",
            json!({"query": "Alice tea"}),
            Expect::Better(
                "ranked search finds words apart and in any order (the substring search finds nothing)",
                |ours, theirs| {
                    assert_eq!(theirs["entities"], json!([]));
                    assert_eq!(ours["entities"][0]["name"], "Alice_Smith");
                },
            ),
        ),
        (
            "search_nodes",
            json!({"query": "cafe lumiere"}),
            Expect::Better("ranked search folds accents", |ours, theirs| {
                assert_eq!(theirs["entities"], json!([]));
                assert_eq!(names(ours), ["Café Lumière"]);
            }),
        ),
        (
            "search_nodes",
            json!({"query": "drinks tea"}),
            Expect::Better(
                "ranked search answers every entity holding a query word, the best first",
                |ours, theirs| {
                    assert_eq!(theirs["entities"], json!([]));
                    let found = names(ours);
                    assert_eq!(found, ["Alice_Smith", "Bob"]);
                },
            ),
        ),
        ("search_nodes", json!({"query": "ffee"}), Expect::Same),
        ("search_nodes", json!({"query": "ICE_SM"}), Expect::Same),
        (
            "open_nodes",
            json!({"names": ["Bob", "Nobody", "Café Lumière"]}),
            Expect::Same,
        ),
        ("read_graph", json!({}), Expect::Same),
        (
            "delete_observations",
            json!({"deletions": [{"entityName": "Alice_Smith", "observations": ["plays chess"]}]}),
            Expect::Same,
        ),
        (
            "delete_relations",
            json!({"relations": [relation("Dan", "Alice_Smith", "Is Friend Of")]}),
            Expect::Same,
        ),
        (
            "delete_entities",
            json!({"entityNames": ["Bob"]}),
            Expect::Same,
        ),
        ("read_graph", json!({}), Expect::Same),
        (
            "delete_relations",
            json!({"relations": [relation("Alice_Smith", "Dan", "knows")]}),
            Expect::Better(
                "deletions say what matched nothing (as the official server's main branch does)",
                |ours, theirs| {
                    assert_eq!(theirs["message"], "Relations deleted successfully");
                    assert_eq!(
                        ours["message"],
                        "Deleted 0 of 1 relations. The rest matched nothing."
                    );
                },
            ),
        ),
        (
            "delete_entities",
            json!({"entityNames": ["Nobody"]}),
            Expect::Better(
                "deletions say what they did not find (as the official server's main branch does)",
                |ours, theirs| {
                    assert_eq!(theirs["message"], "Entities deleted successfully");
                    assert_eq!(
                        ours["message"],
                        "Deleted 0 of 1 entities. Not found: Nobody"
                    );
                },
            ),
        ),
        (
            "create_relations",
            json!({"relations": [relation("Alice_Smith", "Nobody", "knows")]}),
            Expect::Better(
                "a relation needs both entities (the official release stores a dangling one)",
                |ours, theirs| {
                    assert_eq!(theirs["relations"].as_array().unwrap().len(), 1);
                    assert_eq!(ours["isError"], true);
                    assert_eq!(ours["text"], "Entity with name Nobody not found");
                },
            ),
        ),
        (
            "create_entities",
            json!({"entities": [entity("Eve", "person", &[]), entity("Eve", "person", &["again"])]}),
            Expect::Better(
                "a name repeated in one call is created once (the official release stores it twice)",
                |ours, theirs| {
                    assert_eq!(theirs["entities"].as_array().unwrap().len(), 2);
                    assert_eq!(ours["entities"].as_array().unwrap().len(), 1);
                },
            ),
        ),
        (
            "create_entities",
            json!({"entities": [entity("", "person", &[])]}),
            Expect::Better(
                "names follow kgstore's rules (1-512 bytes, no control characters)",
                |ours, theirs| {
                    assert_eq!(theirs["entities"].as_array().unwrap().len(), 1);
                    assert_eq!(ours["isError"], true);
                },
            ),
        ),
    ];
    for (i, (tool, args, expect)) in steps.iter().enumerate() {
        let their = normalized(&theirs.call(tool, args.clone()));
        let our = normalized(&ours.call(tool, args.clone()));
        match expect {
            Expect::Same => assert_eq!(our, their, "step {i}: {tool} {args}"),
            Expect::Better(why, check) => {
                assert_ne!(
                    our, their,
                    "step {i} ({why}) no longer differs: update docs/mcp.md"
                );
                check(&our, &their);
            }
        }
    }
    // In the end the graphs differ by exactly the steps above that kgstore refused.
    let their_graph = normalized(&theirs.call("read_graph", json!({})));
    let our_graph = normalized(&ours.call("read_graph", json!({})));
    let mut expected = their_graph.clone();
    let entities = expected["entities"].as_array_mut().unwrap();
    entities.retain(|e| e["name"] != "" && !(e["name"] == "Eve" && e["observations"] != json!([])));
    expected["relations"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["to"] != "Nobody");
    assert_eq!(our_graph, expected);
    // So does the resource.
    let their_text = theirs.request("resources/read", json!({"uri": "memory://knowledge-graph"}))["result"]["contents"][0]["text"].clone();
    let our_text = ours.request("resources/read", json!({"uri": "memory://knowledge-graph"}))["result"]["contents"][0]["text"].clone();
    let parse = |t: &Value| {
        normalized(
            &json!({"structuredContent": serde_json::from_str::<Value>(t.as_str().unwrap()).unwrap()}),
        )
    };
    assert_eq!(parse(&our_text), expected);
    assert_ne!(parse(&their_text), expected);
    assert!(theirs.finish().success());
    assert!(ours.finish().success());
}

#[test]
fn started_in_a_terminal_it_says_on_stderr_what_it_waits_for_and_serves_on() {
    // A pseudo-terminal on stdin, from util-linux `script` (stdout and stderr go
    // to files): one line on stderr says what the server waits for, stdout holds
    // only the answer to the request typed, and the server stops at Ctrl-D (the
    // end of script's input).
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED: no `script` (util-linux) for a pseudo-terminal; the decision is \
             unit-tested in src/commands/mcp.rs"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let command = format!("'{BIN}' --store '{url}' mcp --log-level warn >out.txt 2>err.txt");
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .env_remove("KGSTORE_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            concat!(
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
                "\n"
            )
            .as_bytes(),
        )
        .unwrap();
    drop(stdin);
    // A deadline, so a `script` that does not pass its input's end on as Ctrl-D fails
    // the test instead of hanging it (no bound on the time it takes otherwise).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kgstore mcp under `script` did not stop at the end of its input; stderr: {:?}",
                std::fs::read_to_string(dir.path().join("err.txt"))
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
    let stderr = std::fs::read_to_string(dir.path().join("err.txt")).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("kgstore mcp: serving ")
            && lines[0].contains(&url)
            && lines[0].contains("docs/mcp.md"),
        "{stderr}"
    );
    let stdout = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
    let answers: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} on stdout")))
        .collect();
    assert_eq!(answers.len(), 1, "{stdout}");
    assert_eq!(answers[0]["id"], 1, "{stdout}");
    assert!(answers[0]["result"]["serverInfo"].is_object(), "{stdout}");
}
