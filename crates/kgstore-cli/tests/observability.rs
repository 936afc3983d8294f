//! The log as an operator reads it: each test captures what kgstore logs through the
//! command line's own subscriber (`kgstore_cli::logging`, JSON lines into a file, as
//! `--log-file` writes them), asserts the events of one situation, and reads the same
//! file back with `kgstore log-review`'s reviewer:
//! - a recovery at open after a writer was killed with SIGKILL mid-commit;
//! - a lock wait between two processes, naming the holder;
//! - a corrupt backup refused by verify and restore;
//! - a commit failing on a full disk (a real size-limited tmpfs; skipped, loudly, where
//!   mounting is not permitted).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kgstore::backup::{self, RestoreMode};
use kgstore::{ErrorKind, GraphRead, Node, OpenOptions};
use kgstore_cli::log_review::{self, Review};
use kgstore_cli::logging::{LogConfig, LogWriter, subscriber};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kgstore");

/// Runs `f` with the CLI's JSON-file subscriber (every level) as this thread's
/// subscriber; returns its result, the events logged and the file's review.
fn captured<T>(dir: &Path, f: impl FnOnce() -> T) -> (T, Vec<Value>, Review) {
    let log = dir.join("captured.log");
    let config = LogConfig {
        verbosity: 3,
        filter: None,
        writers: vec![LogWriter::JsonFile(log.clone())],
    };
    let dispatch = tracing::Dispatch::new(subscriber(&config).unwrap());
    let value = tracing::dispatcher::with_default(&dispatch, f);
    drop(dispatch);
    let text = fs::read_to_string(&log).unwrap();
    let events = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let review = log_review::review(text.as_bytes(), 20).unwrap();
    (value, events, review)
}

fn field<'a>(event: &'a Value, name: &str) -> Option<&'a Value> {
    event.get("fields")?.get(name)
}

fn message(event: &Value) -> &str {
    field(event, "message")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The names of the spans an event ran in, outermost first.
fn spans(event: &Value) -> Vec<String> {
    event
        .get("spans")
        .and_then(Value::as_array)
        .map(|spans| {
            spans
                .iter()
                .filter_map(|s| s.get("name")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn with_message<'a>(events: &'a [Value], text: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| message(e) == text).collect()
}

/// A native JSON Lines file of `count` nodes with some bulk each.
fn nodes_file(dir: &Path, count: usize) -> PathBuf {
    let path = dir.join(format!("nodes-{count}.jsonl"));
    let mut out = std::io::BufWriter::new(fs::File::create(&path).unwrap());
    for i in 0..count {
        let node = Node::new(format!("n{i:06}"), "thing")
            .unwrap()
            .with_observation("x".repeat(200));
        writeln!(out, "{}", serde_json::to_string(&node).unwrap()).unwrap();
    }
    out.flush().unwrap();
    path
}

/// `kgstore --store URL import FILE` as a child process.
fn spawn_import(url: &str, file: &Path) -> Child {
    Command::new(BIN)
        .args(["--store", url, "import"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("KGSTORE_LOG")
        .spawn()
        .unwrap()
}

/// Waits until `ready` says so, or the child exits, or a minute passes; whether ready.
fn wait_until(child: &mut Child, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

#[test]
fn recovery_at_open_after_a_sigkill_mid_commit_is_logged_action_by_action() {
    let dir = tempfile::tempdir().unwrap();
    let input = nodes_file(dir.path(), 3000);
    // A kill may land before the commit leaves anything behind (or after it cleaned
    // up); a few attempts make sure one finds work for the recovery.
    for attempt in 0..8 {
        let store_dir = dir.path().join(format!("store-{attempt}"));
        let url = format!("json://{}", store_dir.display());
        let mut child = spawn_import(&url, &input);
        let journal = store_dir.join("journal");
        // `journal/` always holds the commit log (`journal/log`); anything else there
        // is a commit at work (staged files, its journal).
        let mid_commit = wait_until(&mut child, || {
            fs::read_dir(&journal)
                .is_ok_and(|mut entries| entries.any(|e| e.is_ok_and(|e| e.file_name() != "log")))
        });
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !mid_commit {
            continue;
        }

        let (store, events, review) = captured(dir.path(), || kgstore::open(&url).unwrap());
        let actions: Vec<&Value> = with_message(&events, "recovery action");
        if actions.is_empty() {
            continue; // the journal was gone by the time the kill landed
        }
        for event in &actions {
            let action = field(event, "action").and_then(Value::as_str).unwrap();
            assert!(
                [
                    "journal_replayed",
                    "transaction_completed",
                    "journal_discarded",
                    "temp_removed"
                ]
                .contains(&action),
                "{event}"
            );
            let path = field(event, "path").and_then(Value::as_str).unwrap();
            assert!(path.starts_with(store_dir.to_str().unwrap()), "{event}");
            assert_eq!(event["level"], "INFO");
            let names = spans(event);
            assert!(
                names.first().map(String::as_str) == Some("open")
                    && names.iter().any(|n| n == "recovery"),
                "recovery runs inside the open's span: {event}"
            );
        }
        eprintln!("attempt {attempt}: recovery actions {:?}", review.recovery);
        let summary = with_message(&events, "recovered what an interrupted writer left");
        assert_eq!(summary.len(), 1, "{events:#?}");
        assert_eq!(summary[0]["level"], "WARN");

        // The metrics agree with the log: the store counted each action, and the
        // backend's figures split them by kind.
        let metrics = store.metrics();
        assert_eq!(metrics.recovery_actions, actions.len() as u64);
        let by_kind = |kind: &str| {
            actions
                .iter()
                .filter(|e| field(e, "action").and_then(Value::as_str) == Some(kind))
                .count() as u64
        };
        assert_eq!(
            metrics.backend_figure("journal_replays"),
            Some(by_kind("journal_replayed"))
        );
        assert_eq!(
            metrics.backend_figure("transactions_completed"),
            Some(by_kind("transaction_completed"))
        );
        assert_eq!(
            metrics.backend_figure("journals_discarded"),
            Some(by_kind("journal_discarded"))
        );
        assert_eq!(
            metrics.backend_figure("temps_removed"),
            Some(by_kind("temp_removed"))
        );
        // The reviewer counts them too; the open that did it is among the operations.
        assert_eq!(review.recovery.values().sum::<u64>(), actions.len() as u64);
        assert!(review.slowest.iter().any(|t| t.op == "open"), "{review:#?}");
        // And the store is whole: all of the import or none of it.
        let count = store.count_nodes().unwrap();
        assert!(count == 0 || count == 3000, "{count} nodes after recovery");
        assert!(store.check().unwrap().is_ok());
        return;
    }
    panic!("no kill in 8 attempts landed while the commit had left something to recover");
}

/// A `kgstore import` child holds the writer lock of the store at `url` (whose lock
/// file is `lock`) while this process opens the store and writes; the wait is logged
/// naming the child, counted in the store's metrics and in the review. `None` if the
/// child's transaction ended before this process reached the lock (the caller tries
/// again).
fn lock_wait_between_processes(dir: &Path, url: &str, lock: &Path, nodes: usize) -> Option<()> {
    let input = nodes_file(dir, nodes);
    let mut child = spawn_import(url, &input);
    let pid = child.id();
    let holding = wait_until(&mut child, || {
        // Holding: `pid N` (a clean release leaves `released by pid N`).
        fs::read_to_string(lock).is_ok_and(|t| t.lines().next() == Some(&format!("pid {pid}")))
    });
    assert!(holding, "the child never held the store's lock");

    let options = OpenOptions::new().lock_timeout(Duration::from_secs(120));
    let (outcome, events, review) = captured(dir, || {
        let store = options.open(url)?;
        store.create_node(Node::new("after the import", "thing")?)?;
        Ok::<_, kgstore::Error>(store)
    });
    let status = child.wait().unwrap();
    assert!(status.success(), "the import failed: {status}");
    let store = outcome.unwrap();
    assert_eq!(store.count_nodes().unwrap(), nodes as u64 + 1);

    let waits = with_message(&events, "waited for a lock");
    let Some(wait) = waits.first() else {
        eprintln!("{url}: the import's transaction ended before this process wrote; again");
        return None;
    };
    let holder = field(wait, "holder").and_then(Value::as_str).unwrap();
    assert!(
        holder.contains(&pid.to_string()),
        "holder {holder:?} is not pid {pid}"
    );
    assert!(field(wait, "waited_ms").and_then(Value::as_f64).unwrap() > 0.0);
    assert_eq!(field(wait, "acquired"), Some(&Value::Bool(true)));
    assert_eq!(
        field(wait, "resource").and_then(Value::as_str),
        Some(lock.to_str().unwrap())
    );
    // Counted in the store's metrics (the wait happened at its open or its write).
    let metrics = store.metrics();
    assert!(metrics.lock_waits.count >= 1, "{metrics:?}");
    assert!(metrics.lock_waits.max() > Duration::ZERO);
    // And in the review's contention table, by holder.
    let by_holder = review
        .locks
        .by_holder
        .iter()
        .find(|(h, _)| h.contains(&pid.to_string()))
        .unwrap_or_else(|| panic!("{review:#?}"));
    assert!(by_holder.1.waits >= 1);
    assert_eq!(review.locks.gave_up, 0);
    Some(())
}

#[test]
fn a_lock_wait_between_two_processes_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    // The JSON-files writer holds its lock for its write transaction (the import's
    // one): the import may commit before this process reaches the lock, so a few
    // attempts (each on a new store, each import twice as long) are allowed, as on git.
    for attempt in 0..5 {
        let store_dir = dir.path().join(format!("store-{attempt}"));
        let url = format!("json://{}", store_dir.display());
        kgstore::open(&url).unwrap(); // the store exists before the child takes it
        let lock = store_dir.join(kgstore::jsonfs::LOCK_FILE);
        if lock_wait_between_processes(dir.path(), &url, &lock, 4000 << attempt).is_some() {
            return;
        }
    }
    panic!("in 5 attempts this process never reached the lock while the import held it");
}

#[test]
fn a_lock_wait_between_two_processes_on_a_git_store_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    // The git writer holds `kgstore.lock` for one transaction only: the open and the
    // write here may come after the import's commit, so a few attempts (each on a
    // new repository) are allowed.
    for attempt in 0..5 {
        let repo = dir.path().join(format!("kg-{attempt}.git"));
        let url = format!("git://{}", repo.display());
        kgstore::open(&url).unwrap();
        let lock = repo.join("kgstore.lock");
        if lock_wait_between_processes(dir.path(), &url, &lock, 4000 << attempt).is_some() {
            return;
        }
    }
    panic!("in 5 attempts this process never reached the lock while the import held it");
}

#[test]
fn a_corrupt_backup_is_refused_with_its_kind_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let source = kgstore::open("memory://").unwrap();
    source
        .write(|tx| {
            tx.create_node(Node::new("a", "thing")?)?;
            tx.create_node(Node::new("b", "thing")?.with_dependency("a"))?;
            Ok(())
        })
        .unwrap();
    let folder = dir.path().join("backup");
    backup::backup(&source, &folder).unwrap();
    assert_eq!(source.metrics().backups.count, 1);
    // One byte changed in the nodes file: its hash no longer matches the manifest.
    let nodes = folder.join("nodes.jsonl");
    let text = fs::read_to_string(&nodes)
        .unwrap()
        .replacen("\"a\"", "\"A\"", 1);
    fs::write(&nodes, text).unwrap();

    let target = kgstore::open("memory://").unwrap();
    let (outcome, events, review) = captured(dir.path(), || {
        backup::restore_into(&folder, &target, RestoreMode::Empty)
    });
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Corrupt);
    assert_eq!(target.count_nodes().unwrap(), 0, "nothing was loaded");

    let refused = with_message(&events, "backup does not verify");
    assert_eq!(refused.len(), 1, "{events:#?}");
    assert_eq!(refused[0]["level"], "ERROR");
    assert_eq!(
        field(refused[0], "error_kind"),
        Some(&Value::from("corrupt"))
    );
    assert_eq!(
        field(refused[0], "first"),
        Some(&Value::from("nodes.jsonl"))
    );
    assert!(spans(refused[0]).ends_with(&["restore".to_owned(), "verify".to_owned()]));
    let failed = with_message(&events, "operation failed");
    assert_eq!(failed.len(), 1, "{events:#?}");
    assert_eq!(field(failed[0], "op"), Some(&Value::from("restore")));
    assert_eq!(
        field(failed[0], "error_kind"),
        Some(&Value::from("corrupt"))
    );
    let error = field(failed[0], "error").and_then(Value::as_str).unwrap();
    assert!(error.contains("nodes.jsonl"), "{error}");

    let metrics = target.metrics();
    assert_eq!((metrics.restores.count, metrics.restores.errors), (1, 1));
    assert_eq!(metrics.errors_by_kind.get("corrupt"), Some(&1));
    let corrupt = review.errors.iter().find(|e| e.kind == "corrupt").unwrap();
    assert_eq!(corrupt.count, 2);
    assert_eq!(corrupt.by_op.get("restore"), Some(&1));
    assert_eq!(corrupt.by_op.get("verify"), Some(&1));
}

/// A tmpfs of `size` mounted on a new folder, unmounted when dropped; `None` (after a
/// loud message) where mounting is not permitted.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match output {
            Ok(o) if o.status.success() => Some(Self { dir }),
            other => {
                eprintln!(
                    "!!!!! SKIPPED: cannot mount a size-limited tmpfs (needs root): {other:?} !!!!!"
                );
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Writes nodes of 64 KiB one transaction at a time until a write fails; the error.
fn fill_until_a_write_fails(store: &kgstore::Store) -> kgstore::Error {
    for i in 0..10_000 {
        let node = Node::new(format!("big-{i}"), "blob")
            .unwrap()
            .with_observation("z".repeat(64 * 1024));
        if let Err(e) = store.create_node(node) {
            return e;
        }
    }
    panic!("10,000 writes of 64 KiB fitted on a tmpfs of 4 MiB");
}

#[test]
fn a_commit_failing_on_a_full_disk_is_logged_as_an_io_error() {
    let Some(disk) = Tmpfs::mount("4m") else {
        return;
    };
    for url in [
        format!("sqlite://{}/kg.db", disk.path().display()),
        format!("json://{}/kg", disk.path().display()),
        format!("git://{}/kg.git", disk.path().display()),
    ] {
        let store = kgstore::open(&url).unwrap();
        let logs = tempfile::tempdir().unwrap();
        let (error, events, review) = captured(logs.path(), || fill_until_a_write_fails(&store));
        eprintln!("{url}: {error}");
        assert_eq!(error.kind(), ErrorKind::Io, "{url}: {error}");
        let text = error.to_string().to_lowercase();
        assert!(
            text.contains("full") || text.contains("space"),
            "{url}: {error}"
        );

        let failed = with_message(&events, "transaction failed");
        assert_eq!(failed.len(), 1, "{url}: {events:#?}");
        let event = failed[0];
        assert_eq!(event["level"], "ERROR");
        assert_eq!(field(event, "op"), Some(&Value::from("write")));
        assert_eq!(field(event, "error_kind"), Some(&Value::from("io")));
        let stage = field(event, "stage").and_then(Value::as_str).unwrap();
        assert!(["work", "commit"].contains(&stage), "{event}");
        assert_eq!(spans(event), ["write"], "{event}");
        let committed = with_message(&events, "transaction committed");
        assert!(
            !committed.is_empty(),
            "the writes before the full disk were logged"
        );

        let metrics = store.metrics();
        assert_eq!(metrics.write_transactions.errors, 1, "{url}");
        assert_eq!(metrics.errors_by_kind.get("io"), Some(&1), "{url}");
        let io = review.errors.iter().find(|e| e.kind == "io").unwrap();
        assert_eq!(io.count, 1);
        assert!(
            io.last_error
                .as_deref()
                .unwrap_or("")
                .to_lowercase()
                .contains("space")
                || io
                    .last_error
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains("full")
        );
        drop(store);
        // Make room for the next backend.
        for entry in fs::read_dir(disk.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                fs::remove_dir_all(&path).unwrap();
            } else {
                fs::remove_file(&path).unwrap();
            }
        }
    }
}

// ----- the command line -----

/// Runs the binary with `args` and extra environment; exit code, stdout, stderr.
fn kgstore(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("KGSTORE_LOG")
        .env_remove("KGSTORE_PERF");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_is_quiet_by_default_and_logs_to_stderr_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let input = nodes_file(dir.path(), 20);
    let input = input.to_str().unwrap();
    let url = |name: &str| format!("sqlite://{}/{name}.db", dir.path().display());

    let (code, quiet_out, quiet_err) = kgstore(&["--store", &url("a"), "import", input], &[]);
    assert_eq!(code, 0, "{quiet_err}");
    assert_eq!(quiet_err, "", "nothing on stderr by default");

    let (code, out, err) = kgstore(&["-v", "--store", &url("b"), "import", input], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, quiet_out, "logging changes nothing on stdout");
    assert!(err.contains("INFO") && err.contains("import done"), "{err}");
    assert!(err.contains("open finished"), "{err}");
    assert!(!err.contains("DEBUG"), "-v is info: {err}");
    assert!(!err.contains("n000001"), "no names at info: {err}");

    let (code, _, err) = kgstore(&["-vv", "--store", &url("c"), "import", input], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("DEBUG") && err.contains("transaction committed"),
        "{err}"
    );
    let (code, _, env_err) = kgstore(
        &["--store", &url("d"), "import", input],
        &[("KGSTORE_LOG", "kgstore_core=debug")],
    );
    assert_eq!(code, 0, "{env_err}");
    assert!(env_err.contains("transaction committed"), "{env_err}");
    assert!(
        !env_err.contains("import done"),
        "only kgstore_core: {env_err}"
    );

    let (code, _, err) = kgstore(
        &["--store", &url("e"), "stats"],
        &[("KGSTORE_LOG", "kgstore=loud")],
    );
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("KGSTORE_LOG"), "{err}");
}

#[test]
fn a_log_file_holds_json_lines_that_log_review_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let input = nodes_file(dir.path(), 30);
    let log = dir.path().join("kg.log");
    let log = log.to_str().unwrap();
    let url = format!("sqlite://{}/kg.db", dir.path().display());
    let backup = dir.path().join("backup");
    let backup = backup.to_str().unwrap();
    for args in [
        vec!["--store", &url, "import", input.to_str().unwrap()],
        vec!["--store", &url, "node", "create", "x", "-t", "thing"],
        vec!["--store", &url, "node", "create", "x", "-t", "thing"],
        vec!["--store", &url, "backup", backup],
    ] {
        let mut args = args;
        args.extend(["--log-file", log]);
        let (code, _, err) = kgstore(&args, &[]);
        assert!(code == 0 || code == 4, "{args:?}: {err}");
        if code == 0 {
            assert_eq!(err, "", "a log file alone keeps stderr quiet");
        }
    }
    let nodes = Path::new(backup).join("nodes.jsonl");
    fs::write(
        &nodes,
        fs::read_to_string(&nodes)
            .unwrap()
            .replace("n000001", "n000002"),
    )
    .unwrap();
    let other = format!("json://{}/restored", dir.path().display());
    let (code, _, _) = kgstore(
        &["--store", &other, "--log-file", log, "restore", backup],
        &[],
    );
    assert_eq!(code, 6);

    let text = fs::read_to_string(log).unwrap();
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        assert!(
            event["fields"].is_object() && event["level"].is_string(),
            "{line}"
        );
        assert!(
            event["level"] != "DEBUG",
            "info unless told otherwise: {line}"
        );
    }

    let (code, out, err) = kgstore(&["log-review", log, "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    let review: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(review["skipped"], 0);
    let kinds: Vec<(&str, u64)> = review["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["count"].as_u64().unwrap()))
        .collect();
    assert!(kinds.contains(&("already_exists", 1)), "{kinds:?}");
    assert!(kinds.contains(&("corrupt", 2)), "{kinds:?}");
    let slowest: Vec<&str> = review["slowest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["op"].as_str().unwrap())
        .collect();
    for op in ["import", "backup", "open"] {
        assert!(slowest.contains(&op), "{op} in {slowest:?}");
    }
    let (code, human, _) = kgstore(&["log-review", log], &[]);
    assert_eq!(code, 0);
    for part in [
        "errors by kind:",
        "corrupt",
        "slowest operations:",
        "lock contention: none",
    ] {
        assert!(human.contains(part), "{part:?} in {human}");
    }
    let (code, _, err) = kgstore(&["log-review", &format!("{log}.missing")], &[]);
    assert_eq!(code, 1);
    assert!(err.contains(".missing"), "{err}");
}

#[test]
fn stats_perf_adds_up_the_runs_on_a_store_and_resets() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/kg.db", dir.path().display());
    let record = dir.path().join("kg.db.perf.json");
    for name in ["a", "b", "c"] {
        let (code, _, err) = kgstore(
            &["--store", &url, "node", "create", name, "-t", "thing"],
            &[],
        );
        assert_eq!(code, 0, "{err}");
    }
    let (code, _, _) = kgstore(&["--store", &url, "node", "get", "a"], &[]);
    assert_eq!(code, 0);
    assert!(record.is_file());

    let (code, out, err) = kgstore(&["--store", &url, "stats", "--perf", "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    let perf: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(perf["metrics"]["runs"], 5, "four earlier runs and this one");
    assert_eq!(perf["summary"]["write_transactions"]["count"], 3);
    assert_eq!(perf["summary"]["commits"]["errors"], 0);
    assert!(perf["summary"]["commits"]["max_ms"].as_f64().unwrap() > 0.0);
    assert!(perf["summary"]["reads"]["count"].as_u64().unwrap() >= 1);
    let figures: Vec<&str> = perf["metrics"]["backend_figures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for name in ["page_cache_hits", "wal_bytes", "db_bytes"] {
        assert!(figures.contains(&name), "{name} in {figures:?}");
    }

    let (code, out, _) = kgstore(&["--store", &url, "stats", "--perf"], &[]);
    assert_eq!(code, 0);
    for part in [
        "write transactions",
        "P99",
        "page_cache_hits",
        "6 run(s) recorded",
    ] {
        assert!(out.contains(part), "{part:?} in {out}");
    }
    let (code, out, _) = kgstore(&["--store", &url, "stats", "--perf", "--reset"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("reset"), "{out}");
    assert!(!record.exists(), "the reset run records nothing");
    let (_, out, _) = kgstore(&["--store", &url, "stats", "--perf", "--json"], &[]);
    let perf: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(perf["metrics"]["runs"], 1);
    assert_eq!(perf["summary"]["write_transactions"]["count"], 0);

    let other = format!("sqlite://{}/other.db", dir.path().display());
    let (code, _, _) = kgstore(
        &["--store", &other, "node", "create", "a", "-t", "thing"],
        &[("KGSTORE_PERF", "off")],
    );
    assert_eq!(code, 0);
    assert!(!dir.path().join("other.db.perf.json").exists());
    let (code, _, err) = kgstore(&["--store", &url, "stats", "--reset"], &[]);
    assert_eq!(code, 2, "--reset needs --perf: {err}");
}

/// A run whose record cannot be written (a full disk; here a file-size limit, which
/// fails the write past 512 bytes the same way, deterministically) leaves the runs
/// recorded before it whole: the record was cut to nothing before the new one was
/// written, so one failed write lost every earlier figure — on a full disk, when the
/// errors it counts matter most.
#[cfg(unix)]
#[test]
fn a_perf_record_that_cannot_be_written_keeps_the_runs_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("json://{}/kg", dir.path().display());
    let record = dir.path().join("kg.perf.json");
    for name in ["a", "b", "c"] {
        let (code, _, err) = kgstore(
            &["--store", &url, "node", "create", name, "-t", "thing"],
            &[],
        );
        assert_eq!(code, 0, "{err}");
    }
    let before = fs::read(&record).unwrap();
    assert!(before.len() > 512, "the record is larger than the limit");

    // A read-only run (it writes nothing but its record) limited to files of 512
    // bytes, SIGXFSZ ignored so that the write fails with EFBIG.
    let out = Command::new("sh")
        .args([
            "-c",
            "ulimit -f 1 && trap '' XFSZ && exec \"$0\" \"$@\"",
            BIN,
            "--store",
            &url,
            "stats",
        ])
        .env_remove("KGSTORE_LOG")
        .env_remove("KGSTORE_PERF")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the record is best effort: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = fs::read(&record).unwrap();
    assert!(
        after == before,
        "a failed write leaves the record as it was: {} bytes, were {}",
        after.len(),
        before.len()
    );

    let (code, out, err) = kgstore(&["--store", &url, "stats", "--perf", "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    let perf: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        perf["metrics"]["runs"], 4,
        "the three runs before the failed one, and this one"
    );
    assert_eq!(perf["summary"]["write_transactions"]["count"], 3);
}

/// A `KGSTORE_LOG` whose targets name none of kgstore's crates (a typo, or a word
/// meant as a level) logs nothing; the run says so on stderr instead of staying
/// silent, and still runs. Only kgstore's crates log, so no other target can match.
#[test]
fn a_log_filter_naming_no_kgstore_crate_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/kg.db", dir.path().display());
    let (code, _, err) = kgstore(&["--store", &url, "init"], &[]);
    assert_eq!(code, 0, "{err}");
    for filter in [
        "kgstroe=debug",
        "verbose",
        "kgstore=info,kgstroe_sqlite=trace",
    ] {
        let (code, out, err) = kgstore(&["--store", &url, "stats"], &[("KGSTORE_LOG", filter)]);
        assert_eq!(code, 0, "{filter}: {err}");
        assert!(out.contains("node(s)"), "{filter}: {out}");
        assert!(
            err.contains("note:") && err.contains("names no kgstore crate"),
            "{filter}: {err}"
        );
        let typo = filter
            .split(',')
            .next_back()
            .unwrap()
            .split('=')
            .next()
            .unwrap();
        assert!(err.contains(&format!("'{typo}'")), "{filter}: {err}");
    }
    for filter in [
        "kgstore=debug",
        "debug",
        "kgstore_sqlite=trace,warn",
        "off",
        "INFO",
    ] {
        let (code, _, err) = kgstore(&["--store", &url, "stats"], &[("KGSTORE_LOG", filter)]);
        assert_eq!(code, 0, "{filter}: {err}");
        assert!(!err.contains("note:"), "{filter}: {err}");
    }
}

/// `KGSTORE_PERF=off` stops a run from adding to the record; it does not hide the
/// record from `stats --perf`, which said "no record is kept for this store" of a
/// store with one, nor make `--reset` a no-op that still said "performance figures
/// reset".
#[test]
fn stats_perf_with_the_record_off_still_shows_and_resets_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/kg.db", dir.path().display());
    let record = dir.path().join("kg.db.perf.json");
    for name in ["a", "b"] {
        let (code, _, err) = kgstore(
            &["--store", &url, "node", "create", name, "-t", "thing"],
            &[],
        );
        assert_eq!(code, 0, "{err}");
    }
    let off = [("KGSTORE_PERF", "off")];
    let (code, out, err) = kgstore(&["--store", &url, "stats", "--perf"], &off);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("no record"), "{out}");
    assert!(out.contains("2 run(s) recorded"), "{out}");
    assert!(out.contains("KGSTORE_PERF=off"), "{out}");
    let (code, out, err) = kgstore(&["--store", &url, "--json", "stats", "--perf"], &off);
    assert_eq!(code, 0, "{err}");
    let perf: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(perf["summary"]["write_transactions"]["count"], 2, "{perf}");
    assert_eq!(perf["record"], Value::from(record.to_str().unwrap()));
    let before = fs::read(&record).unwrap();
    assert!(!before.is_empty());

    let (code, out, err) = kgstore(&["--store", &url, "stats", "--perf", "--reset"], &off);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("reset"), "{out}");
    assert!(!record.exists(), "the record was reset");
}
