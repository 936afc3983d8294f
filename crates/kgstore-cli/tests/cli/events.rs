//! `kgstore events …` and `kgstore changefeed …` as a user meets them: appends with
//! every expected-version mode and idempotent retries, reads, tails that wait for
//! other processes, consumer groups with acks, nacks and the dead-letter queue,
//! batches, schemas, the change feed, and bad input (exit 2 or 3, nothing appended).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use super::Kg;

/// The positions of a page of events (`--json events read`).
fn positions(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect()
}

/// The whole log, as positions.
fn log(kg: &Kg) -> Vec<u64> {
    positions(&kg.json_of(&["events", "read", "--all", "--limit", "10000"]))
}

#[test]
fn events_append_with_each_expected_version_and_idempotent_retries() {
    let kg = Kg::sqlite();
    let first = kg.json_of(&[
        "events",
        "append",
        "orders",
        r#"{"n":1}"#,
        "-t",
        "placed",
        "--id",
        "o1",
        "--expect",
        "none",
    ]);
    assert_eq!(first["positions"], json!([1]), "{first:#}");
    assert_eq!(first["duplicate"], false);
    // A retry with the same id returns the original position, even with an
    // expectation that would now fail.
    let retry = kg.json_of(&[
        "events",
        "append",
        "orders",
        r#"{"n":1}"#,
        "-t",
        "placed",
        "--id",
        "o1",
        "--expect",
        "none",
    ]);
    assert_eq!(retry["positions"], json!([1]));
    assert_eq!(retry["duplicate"], true);
    assert!(
        kg.run(&[
            "events",
            "append",
            "orders",
            r#"{"n":1}"#,
            "-t",
            "placed",
            "--id",
            "o1"
        ])
        .ok()
        .contains("already appended")
    );
    // The same id with another payload is a conflict.
    kg.run(&[
        "events",
        "append",
        "orders",
        r#"{"n":2}"#,
        "-t",
        "placed",
        "--id",
        "o1",
    ])
    .fails(4, "'o1'");
    // none / exists / exact / any.
    kg.run(&["events", "append", "orders", "{}", "--expect", "none"])
        .fails(4, "'orders'");
    kg.run(&["events", "append", "fresh", "{}", "--expect", "exists"])
        .fails(4, "'fresh'");
    kg.run(&["events", "append", "orders", "{}", "--expect", "exists"])
        .ok();
    kg.run(&["events", "append", "orders", "{}", "--expect", "1"])
        .fails(4, "version 2");
    kg.run(&["events", "append", "orders", "{}", "--expect", "2"])
        .ok();
    kg.run(&["events", "append", "orders", "{}", "--expect", "any"])
        .ok();
    kg.run(&["events", "append", "orders", "{}", "--expect", "maybe"])
        .fails(2, "maybe");
    // Data from stdin, with metadata and a batch.
    let appended: Value = serde_json::from_str(
        kg.run_with_input(
            &[
                "--json",
                "events",
                "append",
                "orders",
                "-",
                "-t",
                "shipped",
                "--correlation-id",
                "c-1",
                "--causation-id",
                "o1",
                "--metadata",
                r#"{"by":"cli"}"#,
                "--batch",
                "b-1",
            ],
            r#"{"to":"Lisbon"}"#,
        )
        .ok(),
    )
    .unwrap();
    assert_eq!(appended["streams"][0]["last_version"], 5);
    let page = kg.json_of(&["events", "read", "orders", "--from", "5"]);
    let event = &page["events"][0];
    assert_eq!(event["data"], json!({"to": "Lisbon"}));
    assert_eq!(event["type"], "shipped");
    assert_eq!(event["metadata"]["correlation_id"], "c-1");
    assert_eq!(event["metadata"]["causation_id"], "o1");
    assert_eq!(event["metadata"]["by"], "cli");
    assert_eq!(event["batch"], "b-1", "{event:#}");
    assert_eq!(log(&kg), vec![1, 2, 3, 4, 5]);
}

#[test]
fn events_read_pages_both_ways_with_filters() {
    let kg = Kg::json();
    for (stream, t) in [("a-1", "x"), ("b-1", "y"), ("a-2", "y"), ("a-1", "x")] {
        kg.run(&["events", "append", stream, "{}", "-t", t]).ok();
    }
    assert_eq!(log(&kg), vec![1, 2, 3, 4]);
    let page = kg.json_of(&["events", "read", "--all", "--limit", "2"]);
    assert_eq!(positions(&page), vec![1, 2]);
    assert_eq!(page["at_end"], false);
    assert_eq!(page["next"], 3);
    let human = kg
        .run(&["events", "read", "--all", "--limit", "2"])
        .ok()
        .to_owned();
    assert!(human.contains("more: --from 3"), "{human}");
    let back = kg.json_of(&["events", "read", "--all", "--backwards", "--limit", "3"]);
    assert_eq!(positions(&back), vec![4, 3, 2]);
    let stream = kg.json_of(&["events", "read", "a-1"]);
    assert_eq!(positions(&stream), vec![1, 4]);
    let typed = kg.json_of(&["events", "read", "--all", "-t", "y"]);
    assert_eq!(positions(&typed), vec![2, 3]);
    let prefixed = kg.json_of(&["events", "read", "--all", "--prefix", "a-"]);
    assert_eq!(positions(&prefixed), vec![1, 3, 4]);
    let streams = kg.json_of(&["events", "streams", "--prefix", "a-"]);
    let names: Vec<&str> = streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a-1", "a-2"]);
    // Reading creates nothing; an unknown stream is an empty page.
    let empty = kg.json_of(&["events", "read", "nobody"]);
    assert!(empty["events"].as_array().unwrap().is_empty());
    kg.run(&["events", "read"]).fails(2, "STREAM");
}

#[test]
fn events_bad_input_is_refused_with_one_line_and_nothing_appended() {
    bad_input_is_refused(&Kg::sqlite());
}

/// The same on a JSON-files store, where stream names could have become paths.
#[test]
fn events_bad_input_on_json_files_is_refused_and_hostile_names_stay_data() {
    let kg = Kg::json();
    bad_input_is_refused(&kg);
    // Names that are valid but hostile as paths are data: stored and read back, and
    // every file they bring is inside the store's event folder.
    let before = files_under(kg.path("").as_path());
    for name in ["../../escape", "CON", "a/b\\c", "Café", "café", ".."] {
        kg.run(&["events", "append", name, r#"{"hostile":true}"#])
            .ok();
        let page = kg.json_of(&["events", "read", name]);
        assert_eq!(
            page["events"].as_array().unwrap().len(),
            1,
            "{name}: {page}"
        );
        assert_eq!(page["events"][0]["stream"], name, "{page}");
    }
    let events = kg.path("kg/events");
    let commit_log = kg.path("kg/journal/log");
    for new in files_under(kg.path("").as_path()).difference(&before) {
        // The commit log's records are named by generation, never by a stream.
        let a_record = new.parent() == Some(commit_log.as_path())
            && new
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()) || n == "generation");
        assert!(
            new.starts_with(&events) || a_record,
            "{} is outside the store's events",
            new.display()
        );
    }
    assert_eq!(log(&kg), (1..=8).collect::<Vec<u64>>());
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.insert(path);
        }
    }
    out
}

/// Malformed JSON, hostile names, oversize data, schema violations and unknown groups:
/// exit 2 or 3, one line, nothing appended.
fn bad_input_is_refused(kg: &Kg) {
    kg.run(&["events", "append", "s", "{}"]).ok();
    // Malformed JSON, as an argument and on stdin.
    kg.run(&["events", "append", "s", r#"{"n":"#])
        .fails(2, "not JSON");
    kg.run_with_input(&["events", "append", "s", "-"], "[1, 2")
        .fails(2, "not JSON");
    kg.run(&["events", "append", "s", "{}", "--metadata", "[1]"])
        .fails(2, "--metadata");
    // Hostile and reserved stream names, bad types and ids.
    kg.run(&["events", "append", "", "{}"])
        .fails(2, "stream name");
    kg.run(&["events", "append", "a\u{7}b", "{}"])
        .fails(2, "stream name");
    kg.run(&["events", "append", &"s".repeat(300), "{}"])
        .fails(2, "stream name");
    kg.run(&["events", "append", "$changes", "{}"])
        .fails(2, "reserved");
    kg.run(&["events", "append", "s", "{}", "-t", "bad type"])
        .fails(2, "type");
    kg.run(&["events", "append", "s", "{}", "--id", ""])
        .fails(2, "id");
    // Oversize data.
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(1 << 20));
    kg.run_with_input(&["events", "append", "s", "-"], &big)
        .fails(2, "bytes");
    // A schema violation names the pointer.
    let schema = kg.path("s.json");
    std::fs::write(
        &schema,
        r#"{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}"#,
    )
    .unwrap();
    kg.run(&[
        "events",
        "schema",
        "set",
        "counted",
        schema.to_str().unwrap(),
    ])
    .ok();
    kg.run(&["events", "append", "s", r#"{"n":"one"}"#, "-t", "counted"])
        .fails(2, "/data/n");
    kg.run(&["events", "append", "s", r#"{"n":1}"#, "-t", "counted"])
        .ok();
    // Unknown things: exit 3.
    kg.run(&["events", "group", "status", "ghost"])
        .fails(3, "'ghost'");
    kg.run(&["events", "poll", "ghost"]).fails(3, "'ghost'");
    kg.run(&["events", "ack", "ghost/1/1"]).fails(3, "'ghost'");
    kg.run(&["events", "dlq", "list", "ghost"])
        .fails(3, "'ghost'");
    kg.run(&["events", "batch", "status", "ghost"])
        .fails(3, "'ghost'");
    kg.run(&["events", "schema", "get", "ghost"])
        .fails(3, "'ghost'");
    kg.run(&["events", "nack", "ghost/1/1", "--park"])
        .fails(3, "'ghost'");
    kg.run(&["events", "dlq", "replay", "ghost"])
        .fails(3, "'ghost'");
    kg.run(&["events", "dlq", "purge", "ghost"])
        .fails(3, "'ghost'");
    kg.run(&["events", "tail", "--group", "ghost", "--max", "1"])
        .fails(3, "'ghost'");
    kg.run(&["events", "ack", "not-a-token"]).fails(2, "token");
    // --json errors are one JSON line.
    let run = kg.run(&["--json", "events", "append", "s", "{oops"]);
    let line = run.fails(2, "not JSON");
    let value: Value = serde_json::from_str(line).unwrap();
    assert_eq!(value["error"]["kind"], "invalid_input");
    assert_eq!(value["error"]["exit_code"], 2);
    // Only the two good appends are there.
    assert_eq!(log(kg), vec![1, 2]);
}

#[test]
fn events_groups_poll_ack_nack_and_the_dead_letter_queue() {
    let kg = Kg::sqlite();
    for i in 1..=4 {
        kg.run(&[
            "events",
            "append",
            "jobs",
            &format!(r#"{{"i":{i}}}"#),
            "-t",
            "job",
        ])
        .ok();
    }
    let created = kg.json_of(&[
        "events",
        "group",
        "create",
        "workers",
        "--max-deliveries",
        "2",
        "--backoff-ms",
        "0",
        "--backoff-max-ms",
        "0",
    ]);
    assert_eq!(created["name"], "workers");
    kg.run(&["events", "group", "create", "workers"])
        .fails(4, "'workers'");
    let polled = kg.json_of(&["events", "poll", "workers", "--max", "4"]);
    let tokens: Vec<String> = polled
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["token"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        tokens,
        ["workers/1/1", "workers/2/1", "workers/3/1", "workers/4/1"]
    );
    assert!(
        kg.run(&["events", "ack", &tokens[0]])
            .ok()
            .contains("acked")
    );
    // A second ack of the same delivery does nothing, and says so: exit 4.
    let run = kg.run(&["--json", "events", "ack", &tokens[0]]);
    let line = run.fails(4, "did nothing");
    let value: Value = serde_json::from_str(line).unwrap();
    assert_eq!(value["error"]["kind"], "stale_delivery");
    let parked = kg.json_of(&["events", "nack", &tokens[1], "--park", "--error", "poison"]);
    assert_eq!(parked["result"]["outcome"], "dead_lettered", "{parked:#}");
    assert_eq!(parked["result"]["reason"], "parked");
    assert!(
        kg.run(&["events", "nack", &tokens[2], "--skip"])
            .ok()
            .contains("skipped")
    );
    let retrying = kg.json_of(&["events", "nack", &tokens[3], "--retry-after", "0"]);
    assert_eq!(retrying["result"]["outcome"], "retrying", "{retrying:#}");
    // The retry comes back as attempt 2; failing it again reaches max_deliveries.
    let again = kg.json_of(&["events", "poll", "workers"]);
    assert_eq!(again[0]["token"], "workers/4/2", "{again:#}");
    let dead = kg.json_of(&["events", "nack", "workers/4/2", "--error", "still broken"]);
    assert_eq!(dead["result"]["reason"], "max_deliveries", "{dead:#}");

    let status = kg.json_of(&["events", "group", "status", "workers"]);
    assert_eq!(status["checkpoint"], 4, "{status:#}");
    assert_eq!(status["dead_letters"], 2);
    assert_eq!(status["counters"]["acked"], 1);
    assert_eq!(status["counters"]["skipped"], 1);
    assert_eq!(status["counters"]["dead_lettered"], 2);
    let human = kg.run(&["events", "group", "list"]).ok().to_owned();
    assert!(human.contains("workers"), "{human}");

    let letters = kg.json_of(&["events", "dlq", "list", "workers"]);
    let letters = letters.as_array().unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0]["position"], 2);
    assert_eq!(letters[0]["error"], "poison");
    assert_eq!(letters[1]["reason"], "max_deliveries");
    assert_eq!(letters[1]["attempts"], 2);
    // Replay one (position 2): delivered again, the checkpoint stays.
    let replayed = kg.json_of(&[
        "events", "dlq", "replay", "workers", "--from", "2", "--to", "2",
    ]);
    assert_eq!(replayed["queued"], 1);
    assert_eq!(
        kg.json_of(&["events", "group", "status", "workers"])["checkpoint"],
        4
    );
    let redelivered = kg.json_of(&["events", "poll", "workers"]);
    let token = redelivered[0]["token"].as_str().unwrap().to_owned();
    assert!(token.ends_with("/replay"), "{token}");
    kg.run(&["events", "ack", &token]).ok();
    // Purge the other; the queue is empty.
    assert_eq!(
        kg.json_of(&["events", "dlq", "purge", "workers"])["purged"],
        1
    );
    assert!(
        kg.json_of(&["events", "dlq", "list", "workers"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let status = kg.json_of(&["events", "group", "status", "workers"]);
    assert_eq!(status["counters"]["replay_acked"], 1, "{status:#}");
    assert_eq!(status["counters"]["purged"], 1);
    kg.run(&["events", "group", "delete", "workers"]).ok();
    kg.run(&["events", "group", "delete", "workers"])
        .fails(3, "'workers'");
}

/// Reads `n` JSON lines of a child's stdout, each within `patience` so a stuck tail fails the
/// test instead of hanging it.
fn lines_within(child: &mut std::process::Child, n: usize, patience: Duration) -> Vec<Value> {
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    (0..n)
        .map(|i| {
            let line = receive
                .recv_timeout(patience)
                .unwrap_or_else(|e| panic!("line {i} of the tail did not come: {e}"));
            serde_json::from_str(&line).unwrap()
        })
        .collect()
}

#[test]
fn events_tail_waits_for_appends_of_other_processes() {
    for kg in [Kg::sqlite(), Kg::json()] {
        kg.run(&["events", "append", "log", r#"{"i":0}"#]).ok();
        // From the next position on: the tail waits for what other processes append.
        let mut tail = kg
            .command(&[
                "--json", "events", "tail", "--all", "--from", "2", "--max", "2", "--idle", "60",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(300));
        let appended = kg.run(&["events", "append", "log", r#"{"i":1}"#]);
        if appended.code == 5 && kg.url.starts_with("json://") {
            // This jsonfs lets no writer in while a reader holds the store.
            tail.kill().unwrap();
            tail.wait().unwrap();
            println!(
                "SKIPPED: a tail of a json:// store while another process appends: this jsonfs \
                 takes a writer only when no reader holds the store ({})",
                appended.stderr.trim()
            );
            continue;
        }
        appended.ok();
        kg.run(&["events", "append", "other", r#"{"i":2}"#]).ok();
        let events = lines_within(&mut tail, 2, Duration::from_secs(60));
        let seen: Vec<(u64, &str)> = events
            .iter()
            .map(|e| {
                (
                    e["position"].as_u64().unwrap(),
                    e["stream"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(seen, vec![(2, "log"), (3, "other")]);
        assert!(tail.wait().unwrap().success());
        // --idle ends a quiet tail; a stream tail from its first version.
        let run = kg.run(&[
            "--json", "events", "tail", "log", "--from", "1", "--idle", "0.2",
        ]);
        let versions: Vec<u64> = run
            .ok()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["version"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(versions, vec![1, 2]);
    }
}

#[test]
fn events_tail_of_a_group_acks_and_a_batch_can_be_waited_for() {
    let kg = Kg::sqlite();
    kg.run(&["events", "group", "create", "mailer", "-t", "mail"])
        .ok();
    for i in 0..3 {
        kg.run(&[
            "events",
            "append",
            "outbox",
            &format!(r#"{{"i":{i}}}"#),
            "-t",
            "mail",
            "--batch",
            "newsletter",
        ])
        .ok();
    }
    kg.run(&["events", "append", "outbox", "{}", "-t", "other"])
        .ok();
    let status = kg.json_of(&["events", "batch", "status", "newsletter"]);
    assert_eq!(status["total"], 3, "{status:#}");
    assert_eq!(status["groups"][0]["complete"], false);
    // Not settled yet: a short wait gives up with exit 1.
    kg.run(&[
        "events",
        "batch",
        "status",
        "newsletter",
        "--wait",
        "--timeout",
        "0.2",
    ])
    .fails(1, "not settled");
    // A waiter in another process, then a consumer that settles the batch.
    let waiter = kg
        .command(&[
            "--json",
            "events",
            "batch",
            "status",
            "newsletter",
            "--wait",
            "--timeout",
            "60",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = kg.run(&[
        "--json", "events", "tail", "--group", "mailer", "--max", "3", "--idle", "30",
    ]);
    let data: Vec<Value> = run
        .ok()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["data"].clone())
        .collect();
    assert_eq!(data, vec![json!({"i":0}), json!({"i":1}), json!({"i":2})]);
    let waited = waiter.wait_with_output().unwrap();
    assert!(waited.status.success(), "{waited:?}");
    let status: Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(status["groups"][0]["acked"], 3, "{status:#}");
    assert_eq!(status["groups"][0]["complete"], true);
    let group = kg.json_of(&["events", "group", "status", "mailer"]);
    assert_eq!(group["counters"]["acked"], 3, "{group:#}");
    // The event of another type is passed over by the group's filter.
    assert!(
        kg.json_of(&["events", "poll", "mailer"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let group = kg.json_of(&["events", "group", "status", "mailer"]);
    assert_eq!(group["checkpoint"], 4, "{group:#}");
    assert_eq!(group["counters"]["delivered"], 3);
}

#[test]
fn events_schemas_set_get_check_with_compatibility_modes() {
    let kg = Kg::sqlite();
    let write = |name: &str, schema: Value| {
        let path = kg.path(name);
        std::fs::write(&path, schema.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let v1 = write(
        "v1.json",
        json!({"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}),
    );
    // Widening (a required property dropped) is backward compatible.
    let wider = write(
        "wider.json",
        json!({"type":"object","properties":{"n":{"type":"integer"}}}),
    );
    // Narrowing (a new required property) is not.
    let narrower = write(
        "narrower.json",
        json!({"type":"object","properties":{"n":{"type":"integer"}},"required":["n","m"]}),
    );
    let set = kg.json_of(&[
        "events", "schema", "set", "reading", &v1, "--mode", "backward",
    ]);
    assert_eq!(set["version"], 1, "{set:#}");
    let again = kg.json_of(&["events", "schema", "set", "reading", &v1]);
    assert_eq!(again["unchanged"], true);
    let check = kg.run(&["events", "schema", "check", "reading", &narrower]);
    check.fails(2, "backward");
    assert!(check.stdout.contains("/required"), "{check:#?}");
    let check = kg.json_of(&["events", "schema", "check", "reading", &wider]);
    assert_eq!(check["version"], 2, "{check:#}");
    // Under forward, the narrowing change is the accepted one.
    kg.run(&[
        "events", "schema", "check", "reading", &narrower, "--mode", "forward",
    ])
    .ok();
    kg.run(&["events", "schema", "set", "reading", &narrower])
        .fails(2, "/required");
    kg.run(&["events", "schema", "set", "reading", &wider]).ok();
    let got = kg.json_of(&["events", "schema", "get", "reading"]);
    assert_eq!(got["versions"].as_array().unwrap().len(), 2, "{got:#}");
    assert_eq!(got["compatibility"], "backward");
    kg.run(&[
        "events", "schema", "set", "reading", &v1, "--mode", "sideways",
    ])
    .fails(2, "sideways");
    let broken = kg.path("broken.json");
    std::fs::write(&broken, "{not json").unwrap();
    kg.run(&[
        "events",
        "schema",
        "set",
        "reading",
        broken.to_str().unwrap(),
    ])
    .fails(2, "not JSON");
    kg.run(&["events", "schema", "set", "reading", "missing.json"])
        .fails(1, "missing.json");
}

#[test]
fn changefeed_on_off_status_records_graph_changes() {
    let kg = Kg::json();
    kg.run(&["init"]).ok();
    assert_eq!(kg.json_of(&["changefeed", "status"])["enabled"], false);
    kg.run(&["node", "create", "before", "-t", "thing"]).ok();
    assert!(
        kg.run(&["changefeed", "on"])
            .ok()
            .contains("the change feed is on")
    );
    kg.run(&["node", "create", "serde", "-t", "crate"]).ok();
    kg.run(&["node", "update", "serde", "--attr", "license=MIT"])
        .ok();
    // A refused write records nothing.
    kg.run(&["node", "create", "serde", "-t", "crate"])
        .fails(4, "'serde'");
    let changes = kg.json_of(&["events", "read", "$changes"]);
    let summary: Vec<(String, Value, Value)> = changes["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["data"]["old_version"].clone(),
                e["data"]["new_version"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("node.created".to_owned(), Value::Null, json!(1)),
            ("node.updated".to_owned(), json!(1), json!(2)),
        ]
    );
    let status = kg.json_of(&["changefeed", "status"]);
    assert_eq!(status["enabled"], true);
    assert_eq!(status["events"], 2);
    kg.run(&["changefeed", "off"]).ok();
    kg.run(&["node", "create", "after", "-t", "thing"]).ok();
    assert_eq!(kg.json_of(&["changefeed", "status"])["events"], 2);
}

#[test]
fn events_on_git_are_refused_naming_the_backend() {
    let kg = Kg::git();
    kg.run(&["init"]).ok();
    kg.run(&["events", "append", "s", "{}"])
        .fails(2, "not supported by the git backend");
    kg.run(&["events", "read", "--all"])
        .fails(2, "not supported by the git backend");
    kg.run(&["changefeed", "on"])
        .fails(2, "not supported by the git backend");
}

/// Retention, stream deletion and group listing and deletion from the command line,
/// each with `--json`; a deleted stream refuses appends (exit 4), an unknown group
/// is not found (exit 3).
#[test]
fn events_retention_delete_stream_and_groups_listed_and_deleted() {
    let kg = Kg::sqlite();
    for i in 1..=5 {
        kg.run(&[
            "events",
            "append",
            "logs",
            &format!(r#"{{"i":{i}}}"#),
            "--id",
            &format!("log-{i}"),
        ])
        .ok();
    }
    // A limit nothing is past yet says so (it said "versions below 1 are removed").
    let line = kg
        .run(&["events", "retention", "logs", "--max-count", "10"])
        .ok()
        .to_owned();
    assert!(line.contains("nothing is removed yet"), "{line}");
    let line = kg
        .run(&["events", "retention", "logs", "--max-count", "3"])
        .ok()
        .to_owned();
    assert!(line.contains("versions below 3 are removed"), "{line}");
    let info = kg.json_of(&["events", "retention", "logs", "--max-count", "2"]);
    assert_eq!(info["retention"]["max_count"], 2, "{info}");
    assert_eq!(info["removed_before"], 4, "{info}");
    let page = kg.json_of(&["events", "read", "logs"]);
    let versions: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [4, 5], "{page}");
    assert_eq!(page["removed"][0]["first"], 1, "{page}");
    assert_eq!(page["removed"][0]["last"], 3, "{page}");
    // A retried append of a removed event is still a duplicate, not a new event.
    let retry = kg.json_of(&["events", "append", "logs", r#"{"i":1}"#, "--id", "log-1"]);
    assert_eq!(retry["duplicate"], true, "{retry}");

    kg.run(&["events", "group", "create", "auditors"]).ok();
    kg.run(&["events", "group", "create", "archivers", "--stream", "logs"])
        .ok();
    let groups = kg.json_of(&["events", "group", "list"]);
    let names: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["archivers", "auditors"], "{groups}");
    let deleted = kg.json_of(&["events", "group", "delete", "auditors"]);
    assert_eq!(deleted["deleted"], true, "{deleted}");
    kg.run(&["events", "group", "delete", "auditors"])
        .fails(3, "'auditors'");
    assert_eq!(
        kg.json_of(&["events", "group", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Deleting with a wrong expectation is refused; with the right one it leaves a
    // tombstone that refuses appends.
    kg.run(&["events", "delete-stream", "logs", "--expect", "4"])
        .fails(4, "logs");
    let gone = kg.json_of(&["events", "delete-stream", "logs", "--expect", "5"]);
    assert_eq!(gone["deleted"], true, "{gone}");
    assert_eq!(gone["version"], 5, "{gone}");
    kg.run(&["events", "append", "logs", "{}"]).fails(4, "logs");
    kg.run(&["events", "retention", "logs", "--max-count", "1"])
        .fails(4, "logs");
    // Nothing was appended: the log still ends at 5, every event of it removed
    // (identities kept, payloads gone) and reported as such.
    let all = kg.json_of(&["events", "read", "--all"]);
    assert_eq!(all["head"], 5, "{all}");
    assert_eq!(all["events"].as_array().unwrap().len(), 0, "{all}");
    assert_eq!(all["removed"][0]["first"], 1, "{all}");
    assert_eq!(all["removed"][0]["last"], 5, "{all}");
}

/// Event data and schemas that are not UTF-8, on stdin or in a file, are bad input
/// (exit 2, as text that is not JSON is), not an I/O failure (exit 1, which a
/// script retries); nothing is appended or registered.
#[test]
fn event_data_and_schemas_that_are_not_utf8_are_bad_input_not_io_errors() {
    let kg = Kg::sqlite();
    kg.run(&["init"]).ok();
    kg.run_with_input(&["events", "append", "orders", "-"], b"{\"n\": \"\xff\"}")
        .fails(2, "invalid event data: is not UTF-8");
    kg.run_with_input(
        &["events", "append", "orders", "{}", "--metadata", "-"],
        b"\xfe",
    )
    .fails(2, "--metadata: is not UTF-8");
    std::fs::write(kg.path("schema.json"), b"{\"title\": \"\xc3\"}").unwrap();
    kg.run(&["events", "schema", "set", "placed", "schema.json"])
        .fails(2, "schema.json: is not UTF-8");
    kg.run_with_input(&["events", "schema", "set", "placed", "-"], b"\xff")
        .fails(2, "is not UTF-8");
    kg.run_with_input(&["schema", "set", "--node-type", "crate", "-"], b"\xff")
        .fails(2, "is not UTF-8");
    kg.run(&["schema", "set", "--node-type", "crate", "schema.json"])
        .fails(2, "schema.json: is not UTF-8");
    assert!(log(&kg).is_empty());
    kg.run(&["events", "schema", "get", "placed"])
        .fails(3, "placed");
}

/// The words of a shell command line as docs write them: `'…'` and `"…"` quote,
/// and a `#` after a space starts a comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                let text = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    text.push(q);
                }
            }
            '#' if word.is_none() => break,
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[test]
fn the_command_sequence_of_docs_events_md_runs_as_shown() {
    // docs/events.md's command list, run in order on a new store, every command
    // succeeding: the batch the wait names exists (it did not: exit 3), and the
    // wait returns once the group has settled it (here: parked), not after 600 s.
    let docs = include_str!("../../../../docs/events.md");
    let section = &docs[docs.find("## The command line").unwrap()..];
    let block = &section[section.find("```console").unwrap() + "```console".len()..];
    let block = &block[..block.find("```").unwrap()];
    let kg = Kg::sqlite();
    std::fs::write(kg.path("schema.json"), r#"{"type":"object"}"#).unwrap();
    let mut ran = Vec::new();
    for line in block.lines().filter_map(|l| l.strip_prefix("$ kgstore ")) {
        let mut args = shell_words(line);
        if args[..2] == ["events", "tail"] {
            continue; // follows until interrupted
        }
        let waits = args.iter().any(|a| a == "--wait");
        if waits {
            // Were the wait to sit, exit 1 after a minute instead of ten.
            args.extend(["--timeout".to_owned(), "60".to_owned()]);
        }
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kg.run(&words).ok().to_owned();
        if waits {
            assert!(out.contains("billing") && out.contains("yes"), "{out}");
        }
        ran.push(args[..2].join(" "));
    }
    assert!(ran.len() >= 14, "{ran:?}");
    assert!(ran.contains(&"events batch".to_owned()), "{ran:?}");
}
