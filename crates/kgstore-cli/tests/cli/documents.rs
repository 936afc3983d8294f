//! `kgstore doc …`: documents from the shell, binary-safe, with `--json`, exit
//! codes, hostile keys and the JSON store's files.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{BIN, Kg, Run};

/// What a run gave, with stdout as bytes.
struct Raw {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Kg {
    /// Runs with `input` on stdin; stdout kept as bytes.
    fn raw(&self, args: &[&str], input: &[u8]) -> Raw {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        // Written from another thread: a large input would fill the pipe while the
        // child fills stdout.
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let written = stdin.write_all(&input);
            if let Err(e) = written {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
            }
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        Raw {
            code: output.status.code().unwrap_or(-1),
            stdout: output.stdout,
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// `doc get KEY`'s bytes (asserting success).
    fn doc_bytes(&self, key: &str) -> Vec<u8> {
        let got = self.raw(&["doc", "get", "--", key], b"");
        assert_eq!(got.code, 0, "doc get {key:?}: {}", got.stderr);
        assert!(got.stderr.is_empty(), "{}", got.stderr);
        got.stdout
    }

    /// Every key `doc ls --json` lists, following the cursors (`limit` a page).
    fn all_keys(&self, prefix: &str, limit: usize) -> Vec<String> {
        let limit = limit.to_string();
        self.every_page(&["doc", "ls", "--limit", &limit, "--", prefix], "documents")
            .iter()
            .map(|d| d["key"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Every byte value, twice, and bytes that are not UTF-8.
fn binary() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255u8).collect();
    bytes.extend((0..=255u8).rev());
    bytes.extend_from_slice(b"\r\n\0\xff\xfe not utf-8 \xc3\x28");
    bytes
}

fn stores() -> [Kg; 3] {
    [Kg::sqlite(), Kg::json(), Kg::git()]
}

#[test]
fn put_get_stat_exists_rm_round_trip_binary_bytes() {
    for kg in stores() {
        let bytes = binary();
        let file = kg.path("scene.bin");
        std::fs::write(&file, &bytes).unwrap();
        // From a file, with --json: the new metadata.
        let meta = kg.json_of(&["doc", "put", "blobs/scene.bin", file.to_str().unwrap()]);
        assert_eq!(meta["key"], "blobs/scene.bin");
        assert_eq!(meta["size"], bytes.len());
        assert_eq!(meta["version"], 1);
        assert_eq!(meta["content_type"], "application/octet-stream");
        assert_eq!(kg.doc_bytes("blobs/scene.bin"), bytes, "{}", kg.url);
        // From stdin, with a content type; text for people.
        let put = kg.raw(
            &["doc", "put", "scripts/pilot.fountain", "-"],
            b"INT. HOUSE - DAY\n",
        );
        assert_eq!(put.code, 0, "{}", put.stderr);
        let said = String::from_utf8(put.stdout).unwrap();
        assert!(
            said.contains("version 1") && said.contains("17 bytes"),
            "{said}"
        );
        let replaced = kg.raw(
            &[
                "doc",
                "put",
                "scripts/pilot.fountain",
                "--content-type",
                "text/plain",
            ],
            b"EXT. SEA - NIGHT\n",
        );
        assert_eq!(replaced.code, 0, "{}", replaced.stderr);
        assert_eq!(
            kg.doc_bytes("scripts/pilot.fountain"),
            b"EXT. SEA - NIGHT\n"
        );
        // stat: text and JSON.
        let stat = kg.json_of(&["doc", "stat", "scripts/pilot.fountain"]);
        assert_eq!(stat["version"], 2);
        assert_eq!(stat["content_type"], "text/plain");
        assert_eq!(stat["size"], 17);
        assert_eq!(stat["sha256"].as_str().unwrap().len(), 64);
        let text = kg.run(&["doc", "stat", "scripts/pilot.fountain"]);
        assert!(
            text.ok().contains("text/plain") && text.ok().contains("version  2"),
            "{text:?}"
        );
        // get --json: text as text, other bytes as base64.
        let got = kg.json_of(&["doc", "get", "scripts/pilot.fountain"]);
        assert_eq!(got["content"], "EXT. SEA - NIGHT\n");
        assert_eq!(got["version"], 2);
        let got = kg.json_of(&["doc", "get", "blobs/scene.bin"]);
        assert!(got.get("content").is_none());
        assert_eq!(
            got["content_base64"].as_str().unwrap().len(),
            bytes.len().div_ceil(3) * 4
        );
        // get --out: the file holds the bytes; nothing on stdout.
        let out = kg.path("copy.bin");
        let run = kg.run(&[
            "doc",
            "get",
            "blobs/scene.bin",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(run.ok(), "");
        assert_eq!(std::fs::read(&out).unwrap(), bytes);
        // exists: 0 or 3, an answer on stdout and nothing on stderr.
        let yes = kg.run(&["doc", "exists", "blobs/scene.bin"]);
        assert!(yes.ok().contains("exists"));
        let no = kg.run(&["doc", "exists", "blobs/ghost"]);
        assert_eq!((no.code, no.stderr.as_str()), (3, ""), "{no:?}");
        let no = kg.run(&["--json", "doc", "exists", "blobs"]);
        assert_eq!(no.code, 3);
        let answer: Value = serde_json::from_str(&no.stdout).unwrap();
        assert_eq!(answer["exists"], false);
        // rm: the deleted metadata; then it is gone; --force says whether there was one.
        let gone = kg.json_of(&["doc", "rm", "blobs/scene.bin"]);
        assert_eq!(gone["key"], "blobs/scene.bin");
        kg.run(&["doc", "get", "blobs/scene.bin"])
            .fails(3, "blobs/scene.bin");
        kg.run(&["doc", "rm", "blobs/scene.bin"])
            .fails(3, "blobs/scene.bin");
        kg.run(&["doc", "stat", "blobs/scene.bin"])
            .fails(3, "blobs/scene.bin");
        let forced = kg.json_of(&["doc", "rm", "--force", "blobs/scene.bin"]);
        assert_eq!(forced["deleted"], false);
        let forced = kg.json_of(&["doc", "rm", "-f", "scripts/pilot.fountain"]);
        assert_eq!(forced["deleted"], true);
        assert!(kg.all_keys("", 10).is_empty());
    }
}

#[test]
fn preconditions_conflict_with_exit_code_4_and_change_nothing() {
    let kg = Kg::sqlite();
    let put = |args: &[&str], input: &[u8]| {
        let mut all = vec!["doc", "put"];
        all.extend_from_slice(args);
        kg.raw(&all, input)
    };
    assert_eq!(put(&["a.txt", "--create-only"], b"one").code, 0);
    let again = put(&["a.txt", "--create-only"], b"two");
    assert_eq!(again.code, 4, "{}", again.stderr);
    assert!(again.stderr.contains("a.txt"), "{}", again.stderr);
    let stale = put(&["a.txt", "--expect-version", "7"], b"two");
    assert_eq!(stale.code, 4, "{}", stale.stderr);
    let absent = put(&["a.txt", "--expect-version", "0"], b"two");
    assert_eq!(absent.code, 4, "{}", absent.stderr);
    assert_eq!(kg.doc_bytes("a.txt"), b"one");
    assert_eq!(put(&["a.txt", "--expect-version", "1"], b"two").code, 0);
    assert_eq!(put(&["b.txt", "--expect-version", "0"], b"bee").code, 0);
    assert_eq!(kg.doc_bytes("a.txt"), b"two");
    // Both flags at once is a usage error; so is a folder where the file goes.
    let both = put(&["a.txt", "--create-only", "--expect-version", "1"], b"x");
    assert_eq!(both.code, 2, "{}", both.stderr);
    let folder = kg.dir.path().to_str().unwrap().to_owned();
    let run = kg.run(&["doc", "put", "c.txt", &folder]);
    run.fails(2, "folder");
    kg.run(&["doc", "put", "c.txt", "no-such-file"])
        .fails(1, "no-such-file");
    // The file-tree rule: a document is never a folder of documents too.
    kg.run(&["doc", "put", "a.txt/inner", "/dev/null"])
        .fails(4, "a.txt");
    // A bad content type is invalid input.
    let bad = put(&["d.txt", "--content-type", "not a type"], b"x");
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert_eq!(kg.all_keys("", 10), ["a.txt", "b.txt"]);
    assert_eq!(kg.doc_bytes("a.txt"), b"two");
}

#[test]
fn listings_page_with_cursors_and_folders() {
    for kg in stores() {
        let mut keys: Vec<String> = (0..23)
            .map(|i| format!("scripts/s{:02}.fountain", i))
            .collect();
        keys.extend(
            [
                "scripts/s01/e01.fountain",
                "scripts/s01/e02.fountain",
                "scripts/zz/x",
                "notes.md",
                "scriptsx",
            ]
            .map(String::from),
        );
        for key in &keys {
            let run = kg.raw(&["doc", "put", key], key.as_bytes());
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
        keys.sort();
        // Pages of 5 cover every key once, in byte order.
        assert_eq!(kg.all_keys("", 5), keys);
        let scripts: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with("scripts/"))
            .cloned()
            .collect();
        assert_eq!(kg.all_keys("scripts/", 4), scripts);
        // The delimiter: documents directly in the folder and its sub-folders.
        let page = kg.json_of(&[
            "doc",
            "ls",
            "scripts/",
            "--delimiter",
            "/",
            "--limit",
            "1000",
        ]);
        assert_eq!(
            page["folders"],
            serde_json::json!(["scripts/s01/", "scripts/zz/"])
        );
        assert_eq!(page["documents"].as_array().unwrap().len(), 23);
        let top = kg.json_of(&["doc", "ls", "--delimiter", "/"]);
        assert_eq!(top["folders"], serde_json::json!(["scripts/"]));
        assert_eq!(top["documents"][0]["key"], "notes.md");
        // For people: a table with folders in place, and where the next page starts.
        let text = kg.run(&["doc", "ls", "scripts/", "--delimiter", "/", "--limit", "3"]);
        let text = text.ok();
        assert!(text.starts_with("KEY"), "{text}");
        assert!(
            text.contains("scripts/s00.fountain") && text.contains("next page: --cursor"),
            "{text}"
        );
        let text = kg.run(&["doc", "ls", "scripts/s01", "--delimiter", "/"]);
        assert!(
            text.ok().contains("scripts/s01/  ") && text.ok().contains("folder"),
            "{text:?}"
        );
        // Bad arguments.
        kg.run(&["doc", "ls", "--delimiter", ","])
            .fails(2, "delimiter");
        kg.run(&["doc", "ls", "--cursor", "zzz"]).fails(2, "cursor");
        kg.run(&["doc", "ls", "--limit", "0"]).fails(2, "limit");
    }
}

/// The keys the issue names, and more, each refused with the rule.
fn forbidden_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "a/../b",
        "/abs",
        "a//b",
        "a/",
        "./a",
        "..",
        ".",
        "../x",
        "a/./b",
        "/",
        ".kgstore/x",
        ".kgstore",
        "a\nb",
        "tab\there",
        "bell\u{7}",
        "del\u{7f}",
    ]
    .map(String::from)
    .to_vec();
    keys.push("k".repeat(1025));
    keys.push(format!("a/{}", "s".repeat(256)));
    keys
}

/// Every file below `dir` (relative paths), sorted; SQLite's `-wal` and `-shm`
/// files, which come and go with connections, left out.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out.retain(|f| !f.ends_with("-wal") && !f.ends_with("-shm"));
    out.sort();
    out
}

#[test]
fn hostile_keys_exit_2_naming_the_rule_and_change_nothing() {
    for kg in stores() {
        assert_eq!(kg.raw(&["doc", "put", "keep"], b"kept").code, 0);
        let before = files_below(kg.dir.path());
        let file = kg.path("input.txt");
        std::fs::write(&file, "x").unwrap();
        for key in forbidden_keys() {
            let commands: [Vec<&str>; 6] = [
                vec!["doc", "put", "--", &key, file.to_str().unwrap()],
                vec!["doc", "get", "--", &key],
                vec!["doc", "stat", "--", &key],
                vec!["doc", "exists", "--", &key],
                vec!["doc", "rm", "--", &key],
                vec!["doc", "rm", "-f", "--", &key],
            ];
            for args in commands {
                let run: Run = kg.run(&args);
                let line = run.fails(2, "document key");
                assert!(!line.contains('\n'));
            }
            let run = kg.run(&["--json", "doc", "put", "--", &key, file.to_str().unwrap()]);
            let line = run.fails(2, "invalid_input");
            let error: Value = serde_json::from_str(line).unwrap();
            assert_eq!(error["error"]["exit_code"], 2);
        }
        // On a store that does not exist yet, a refused write creates nothing.
        let fresh = kg.path("fresh.db");
        let mut put = Command::new(env!("CARGO_BIN_EXE_kgstore"));
        put.env_remove("KGSTORE_URL")
            .arg("--store")
            .arg(format!("sqlite://{}", fresh.display()))
            .args(["doc", "put", "--", "a//b", file.to_str().unwrap()]);
        super::collect(put.output().unwrap()).fails(2, "document key");
        assert!(!fresh.exists());
        // A listing's prefix follows the same rules, but may end in '/'.
        kg.run(&["doc", "ls", "--", "a/../"]).fails(2, "..");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(files_below(kg.dir.path()), before, "{}", kg.url);
        assert_eq!(kg.all_keys("", 10), ["keep"]);
        assert_eq!(kg.doc_bytes("keep"), b"kept");
    }
}

#[test]
fn allowed_odd_keys_round_trip_inside_the_json_store() {
    let kg = Kg::json();
    let keys = [
        "..x/y".into(),
        "CON".into(),
        "con.txt".into(),
        ".git/config".into(),
        ".gitignore".into(),
        "a\\b".into(),
        "C:\\Windows".into(),
        "Caf\u{e9}".into(),
        "Cafe\u{301}".into(),
        "caf\u{e9}".into(),
        "CAF\u{c9}".into(),
        "-starts-with-dash".into(),
        "spaces and 'quotes'".into(),
        "日本語/テキスト.txt".into(),
        "s".repeat(255),
        format!("{}/{}", "a".repeat(255), "b".repeat(255)),
    ];
    for key in &keys {
        let run = kg.raw(&["doc", "put", "--", key], key.as_bytes());
        assert_eq!(run.code, 0, "{key:?}: {}", run.stderr);
    }
    for key in &keys {
        assert_eq!(kg.doc_bytes(key), key.as_bytes(), "{key:?}");
    }
    let mut sorted = keys.to_vec();
    sorted.sort();
    assert_eq!(kg.all_keys("", 7), sorted);
    // Every file is inside the store's folder; none escaped next to it.
    let mut outside = files_below(kg.dir.path());
    outside.retain(|f| !f.starts_with("kg"));
    assert!(outside.is_empty(), "{outside:?}");
    // Case and normalisation twins are four documents, not one.
    let twins = ["Caf\u{e9}", "Cafe\u{301}", "caf\u{e9}", "CAF\u{c9}"];
    let distinct: std::collections::BTreeSet<Vec<u8>> =
        twins.iter().map(|k| kg.doc_bytes(k)).collect();
    assert_eq!(distinct.len(), 4);
}

#[test]
fn a_large_value_streams_through_stdin_and_stdout() {
    let kg = Kg::json();
    // 24 MiB of a pattern that is not periodic in 256 KiB chunks.
    let bytes: Vec<u8> = (0..24u64 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let put = kg.raw(&["--json", "doc", "put", "big/value.bin"], &bytes);
    assert_eq!(put.code, 0, "{}", put.stderr);
    let meta: Value = serde_json::from_slice(&put.stdout).unwrap();
    assert_eq!(meta["size"], bytes.len());
    assert!(kg.doc_bytes("big/value.bin") == bytes, "the bytes differ");
    // The JSON store keeps it as an ordinary file.
    let file = kg.path("kg/documents/big/value.bin");
    assert_eq!(std::fs::metadata(file).unwrap().len(), bytes.len() as u64);
}

/// `text` quoted for `sh -c`: in single quotes, each `'` as `'\''`.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn put_without_a_file_from_a_terminal_says_so_instead_of_waiting() {
    // `script` (util-linux) gives the command a terminal for stdin; it runs the
    // command through `sh -c`, so every path is quoted (this folder's name has
    // spaces and a quote in it).
    let dir = tempfile::Builder::new()
        .prefix("kg tty 'quoted' $HOME ")
        .tempdir()
        .unwrap();
    let url = format!("sqlite://{}/kg.db", dir.path().display());
    let command = format!(
        "{} --store {} doc put notes/a.txt",
        sh_quote(BIN),
        sh_quote(&url)
    );
    let output = match Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .env_remove("KGSTORE_URL")
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "\n!!!!! SKIPPED put_without_a_file_from_a_terminal_says_so_instead_of_waiting: \
                 `script` (util-linux) is not installed, so there is no terminal to test with \
                 (.ci/run installs it: Debian's bsdutils) !!!!!\n"
            );
            return;
        }
        Err(e) => panic!("running `script`: {e}"),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{text}{errors}");
    assert!(text.contains("stdin is a terminal"), "{text}{errors}");
    // Refused before the store was opened: nothing was written (before, the
    // command waited for the terminal's input, holding the write transaction).
    assert!(!dir.path().join("kg.db").exists());
    // A pipe still works without a FILE, in the same folder.
    let kg = Kg { dir, url };
    assert_eq!(kg.raw(&["doc", "put", "notes/a.txt"], b"piped").code, 0);
    assert_eq!(kg.run(&["doc", "get", "notes/a.txt"]).ok(), "piped");
}

#[test]
fn get_out_replaces_the_file_only_when_the_read_succeeds() {
    let kg = Kg::sqlite();
    assert_eq!(kg.raw(&["doc", "put", "a"], b"new bytes").code, 0);
    let out = kg.path("out.txt");
    std::fs::write(&out, "precious").unwrap();
    kg.run(&["doc", "get", "ghost", "--out", out.to_str().unwrap()])
        .fails(3, "ghost");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let meta = kg.json_of(&["doc", "get", "a", "-o", out.to_str().unwrap()]);
    assert_eq!(meta["size"], 9);
    assert_eq!(std::fs::read(&out).unwrap(), b"new bytes");
    // Into a folder that does not exist: the error names the file asked for and
    // its missing folder, not the temporary file it would have written first.
    let nowhere = kg.path("no-such-folder").join("out.bin");
    let line = kg
        .run(&["doc", "get", "a", "--out", nowhere.to_str().unwrap()])
        .fails(1, "out.bin")
        .to_owned();
    assert!(line.contains("no-such-folder does not exist"), "{line}");
    assert!(!line.contains(".kgstore-out-"), "{line}");
    // Into a "folder" that is a file: said as such, not as a missing folder.
    let under_a_file = out.join("out.bin");
    let line = kg
        .run(&["doc", "get", "a", "--out", under_a_file.to_str().unwrap()])
        .fails(1, "out.bin")
        .to_owned();
    assert!(line.contains("is a file, not a folder"), "{line}");
    // Onto a folder (`--out .`, `--out backups`, a mistake a user makes): said as
    // such (exit 2), not as "Device or resource busy" or "Is a directory" from the
    // rename of a temporary file over it.
    for folder in [kg.dir.path().to_path_buf(), std::path::PathBuf::from(".")] {
        let line = kg
            .run(&["doc", "get", "a", "--out", folder.to_str().unwrap()])
            .fails(2, "is a folder")
            .to_owned();
        assert!(line.contains("a file's path"), "{line}");
    }
    // No temporary file left beside it.
    assert_eq!(
        files_below(kg.dir.path())
            .iter()
            .filter(|f| f.contains(".kgstore-out-"))
            .count(),
        0
    );
}

#[cfg(unix)]
#[test]
fn regression_get_out_writes_a_file_others_may_read_not_a_private_temp_file() {
    // The file was the temporary file renamed: 0600, whatever the umask, and a
    // file it replaced lost its mode (an executable was one no more).
    use std::os::unix::fs::PermissionsExt;
    let kg = Kg::sqlite();
    assert_eq!(kg.raw(&["doc", "put", "a"], b"bytes").code, 0);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    // Run under a known umask (the shell's `umask`; the test process cannot set its own).
    let get_out = |umask: &str, out: &Path| {
        let command = format!(
            "umask {umask} && exec {} --store {} doc get a --out {}",
            sh_quote(BIN),
            sh_quote(&kg.url),
            sh_quote(out.to_str().unwrap())
        );
        let status = Command::new("sh")
            .args(["-c", &command])
            .env_remove("KGSTORE_URL")
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(out).unwrap(), b"bytes");
    };
    let new = kg.path("new.bin");
    get_out("022", &new);
    assert_eq!(mode(&new), 0o644);
    let private = kg.path("private.bin");
    get_out("077", &private);
    assert_eq!(mode(&private), 0o600);
    // A file replaced keeps its mode, whatever the umask.
    let tool = kg.path("tool.sh");
    std::fs::write(&tool, "old").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o751)).unwrap();
    get_out("077", &tool);
    assert_eq!(mode(&tool), 0o751);
}

#[test]
fn reading_a_missing_store_and_at_on_a_store_without_history() {
    // A read of a store that does not exist creates nothing.
    let kg = Kg::sqlite();
    kg.run(&["doc", "get", "a"]).fails(2, "does not exist");
    kg.run(&["doc", "ls"]).fails(2, "does not exist");
    assert!(!kg.path("kg.db").exists());
    // --at is for history; a store without history says so.
    let kg = Kg::sqlite();
    assert_eq!(kg.raw(&["doc", "put", "a"], b"x").code, 0);
    kg.run(&["--at", "main~1", "doc", "get", "a"])
        .fails(2, "sqlite");
    kg.run(&["--at", "main~1", "doc", "put", "a", "/dev/null"])
        .fails(2, "--at");
}

#[test]
fn documents_and_the_graph_in_one_backup() {
    let kg = Kg::sqlite().with_crates();
    assert_eq!(
        kg.raw(&["doc", "put", "notes/serde.md"], b"# serde\n").code,
        0
    );
    assert_eq!(kg.raw(&["doc", "put", "bin/x"], &binary()).code, 0);
    let backup = kg.path("backup");
    kg.run(&["backup", backup.to_str().unwrap()]).ok();
    let verified = kg.json_of(&["verify", backup.to_str().unwrap()]);
    assert_eq!(verified["counts"]["documents"], 2, "{verified}");
    let json_url = format!("json://{}", kg.path("restored").display());
    let mut restore = Command::new(env!("CARGO_BIN_EXE_kgstore"));
    restore
        .args(["--store", &json_url, "restore", backup.to_str().unwrap()])
        .env_remove("KGSTORE_URL");
    assert!(restore.status().unwrap().success());
    let restored = Kg {
        dir: tempfile::tempdir().unwrap(),
        url: json_url,
    };
    assert_eq!(restored.doc_bytes("bin/x"), binary());
    assert_eq!(restored.doc_bytes("notes/serde.md"), b"# serde\n");
    assert_eq!(
        restored.json_of(&["doc", "stat", "bin/x"]),
        kg.json_of(&["doc", "stat", "bin/x"])
    );
}

#[test]
fn git_document_history_log_key_show_doc_get_at_and_diff() {
    let kg = Kg::git();
    let put = |key: &str, bytes: &[u8]| {
        let got = kg.raw(&["doc", "put", key], bytes);
        assert_eq!(got.code, 0, "{}", got.stderr);
    };
    put("scripts/pilot.fountain", b"draft 1\n");
    put("notes/a.txt", b"a");
    put("scripts/pilot.fountain", b"draft 2\n");
    kg.run(&["doc", "rm", "notes/a.txt"]).ok();
    assert_eq!(kg.json_of(&["log"]).as_array().unwrap().len(), 5);
    let log = kg.json_of(&["log", "--key", "scripts/pilot.fountain"]);
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2, "{log:#?}");
    let first = log[1]["id"].as_str().unwrap();
    // `show REV:KEY` and `doc get --at REV` give the bytes of then.
    let shown = kg.raw(&["show", &format!("{first}:scripts/pilot.fountain")], b"");
    assert_eq!(
        (shown.code, shown.stdout.as_slice()),
        (0, &b"draft 1\n"[..])
    );
    assert_eq!(kg.doc_bytes("scripts/pilot.fountain"), b"draft 2\n");
    let then = kg.raw(&["--at", "main~1", "doc", "get", "notes/a.txt"], b"");
    assert_eq!((then.code, then.stdout.as_slice()), (0, &b"a"[..]));
    let out = kg.path("then.txt");
    kg.run(&["show", "main~1:notes/a.txt", "--out", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&out).unwrap(), b"a");
    assert_eq!(
        kg.json_of(&["--at", "main~1", "doc", "stat", "notes/a.txt"])["version"],
        1
    );
    kg.run(&["doc", "get", "notes/a.txt"])
        .fails(3, "notes/a.txt");
    // Not found at a revision says which revision: the key may exist now or then.
    kg.run(&["show", "main:notes/a.txt"])
        .fails(3, "at revision main: document 'notes/a.txt' not found");
    kg.run(&["--at", "main~4", "doc", "get", "scripts/pilot.fountain"])
        .fails(
            3,
            "at revision main~4: document 'scripts/pilot.fountain' not found",
        );
    kg.run(&["--at", "main~1", "node", "get", "serde"])
        .fails(3, "at revision main~1: node 'serde' not found");
    kg.run(&["show", "scripts"]).fails(2, "REVISION:KEY");
    kg.run(&["show", "no-such-rev:scripts/pilot.fountain"])
        .fails(2, "no-such-rev");
    kg.run(&["--at", "main", "show", "main:scripts/pilot.fountain"])
        .fails(2, "--at");
    kg.run(&["log", "--key", "../x"]).fails(2, "..");
    // diff lists documents added, changed and removed.
    let diff = kg.json_of(&["diff", first, "main"]);
    let docs = diff["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 1, "{diff:#}");
    assert_eq!(docs[0]["change"], "changed");
    assert_eq!(docs[0]["new"]["version"], 2);
    let diff = kg.json_of(&["diff", "main~2", "main"]);
    let changes: Vec<(&str, &str)> = diff["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let meta = if c["change"] == "removed" {
                &c["old"]
            } else {
                &c["new"]
            };
            (c["change"].as_str().unwrap(), meta["key"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("removed", "notes/a.txt"),
            ("changed", "scripts/pilot.fountain")
        ]
    );
    let human = kg.run(&["diff", "main~2", "main"]).ok().to_owned();
    assert!(
        human.contains("document") && human.contains("notes/a.txt"),
        "{human}"
    );
}
