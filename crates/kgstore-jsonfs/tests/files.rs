//! The files themselves: their exact format, hand edits, what `check` and `open`
//! report about damaged or stray files, and the cleanup of crash leftovers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use kgstore_core::suite::while_writing;
use kgstore_core::{
    Edge, EdgeKey, ErrorKind, GraphRead, Node, RelationType, SchemaTarget, Store, Timestamp,
};
use kgstore_jsonfs::names::{edge_path, node_path, schema_path};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};
use serde_json::json;

use common::{leftovers, open};

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros).unwrap()
}

/// A small store written with fixed timestamps.
fn sample(path: &Path) -> Store {
    let store = open(path);
    store
        .write(|tx| {
            let mut node = Node::new("serde", "crate")?
                .with_observation("A serialization framework")
                .with_attribute("zeta", json!(1))
                .with_attribute("alpha", json!({"y": [true, null], "b": 2.5}))
                .with_tag("popular");
            node.metadata.created_at = at(1_700_000_000_000_000);
            node.metadata.updated_at = at(1_700_000_000_000_001);
            node.metadata.version = 3;
            tx.import_node(node)?;
            let mut kg = Node::new("kgstore", "crate")?.with_dependency("serde");
            kg.metadata.created_at = at(1_700_000_000_000_000);
            kg.metadata.updated_at = at(1_700_000_000_000_000);
            kg.metadata.version = 1;
            tx.import_node(kg)?;
            let mut edge = Edge::new("kgstore", RelationType::DependsOn, "serde")?
                .with_weight(0.1)
                .with_attribute("since", json!("0.1"));
            edge.metadata.created_at = at(1_700_000_000_000_000);
            edge.metadata.updated_at = at(1_700_000_000_000_000);
            edge.metadata.version = 1;
            tx.import_edge(edge)?;
            tx.set_schema(
                SchemaTarget::NodeType("crate".into()),
                json!({"type": "object", "properties": {"zeta": {"type": "integer"}}}),
            )?;
            Ok(())
        })
        .unwrap();
    store
}

fn file(path: &Path, rel: &str) -> String {
    fs::read_to_string(path.join(rel)).unwrap()
}

#[test]
fn node_and_edge_files_are_pretty_with_stable_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let _store = sample(dir.path());
    assert_eq!(node_path("serde"), "nodes/8b/serde.json");
    assert_eq!(
        file(dir.path(), &node_path("serde")),
        r#"{
  "name": "serde",
  "node_type": "crate",
  "observations": [
    "A serialization framework"
  ],
  "attributes": {
    "alpha": {
      "b": 2.5,
      "y": [
        true,
        null
      ]
    },
    "zeta": 1
  },
  "dependencies": [],
  "metadata": {
    "created_at": "2023-11-14T22:13:20.000000Z",
    "updated_at": "2023-11-14T22:13:20.000001Z",
    "version": 3,
    "tags": [
      "popular"
    ]
  }
}
"#
    );
    let key = EdgeKey::new("kgstore", RelationType::DependsOn, "serde");
    assert!(edge_path(&key).ends_with("/kgstore,depends_on,serde.json"));
    assert_eq!(
        file(dir.path(), &edge_path(&key)),
        r#"{
  "from": "kgstore",
  "relation_type": "depends_on",
  "to": "serde",
  "attributes": {
    "since": "0.1"
  },
  "metadata": {
    "created_at": "2023-11-14T22:13:20.000000Z",
    "updated_at": "2023-11-14T22:13:20.000000Z",
    "version": 1,
    "weight": 0.1,
    "bidirectional": false
  }
}
"#
    );
    assert_eq!(
        file(
            dir.path(),
            &schema_path(&SchemaTarget::NodeType("crate".into()))
        ),
        "{\n  \"properties\": {\n    \"zeta\": {\n      \"type\": \"integer\"\n    }\n  },\n  \"type\": \"object\"\n}\n"
    );
    assert_eq!(
        file(dir.path(), "kgstore-jsonfs.json"),
        format!(
            "{{\n  \"format\": \"kgstore-jsonfs\",\n  \"version\": {}\n}}\n",
            kgstore_jsonfs::VERSION
        )
    );
}

#[test]
fn an_update_changes_only_the_lines_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample(dir.path());
    let before = file(dir.path(), &node_path("serde"));
    let node = store.get_node("serde").unwrap().with_observation("Fast");
    store.update_node(node, Some(3)).unwrap();
    let after = file(dir.path(), &node_path("serde"));
    // One observation added (a line, and a comma on the one before it), the time and
    // the version changed: three lines out, four in, nothing else.
    assert_eq!(line_diff(&before, &after), (3, 4));
}

/// Lines removed and added between two texts (by longest common subsequence).
fn line_diff(a: &str, b: &str) -> (usize, usize) {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    (a.len() - lcs[0][0], b.len() - lcs[0][0])
}

#[test]
fn a_hand_edit_that_parses_is_read_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let rel = node_path("serde");
    let text = file(dir.path(), &rel).replace("A serialization framework", "Edited by hand");
    fs::write(dir.path().join(&rel), text).unwrap();
    let store = open(dir.path());
    assert_eq!(
        store.get_node("serde").unwrap().observations,
        ["Edited by hand"]
    );
    assert!(store.check().unwrap().is_ok());
}

/// Opening must fail with `Corrupt`, naming `rel` and saying `reason`.
fn refused(path: &Path, rel: &str, reason: &str) {
    let err = JsonFsBackend::open(path, JsonFsOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    let text = err.to_string();
    assert!(text.contains(&*path.join(rel).to_string_lossy()), "{text}");
    assert!(text.contains(reason), "{text}");
    // What to do, in terms a command-line user can act on (the store cannot be
    // opened, so no method of an open store can be the advice).
    assert!(
        text.contains(
            "Fix or remove these files (or restore the store from a backup), then open it again"
        ),
        "{text}"
    );
}

#[test]
fn a_file_that_no_longer_parses_is_refused_with_its_path_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let rel = node_path("serde");
    let text = file(dir.path(), &rel).replace("\"zeta\": 1", "\"zeta\": 1,");
    fs::write(dir.path().join(&rel), text).unwrap();
    refused(
        dir.path(),
        &rel,
        "does not parse as a node: trailing comma at line 16",
    );
    // A read-only open refuses it too, and the file is left as it was.
    let err =
        JsonFsBackend::open(dir.path(), JsonFsOptions::default().read_only(true)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
}

#[test]
fn an_unknown_field_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let rel = node_path("kgstore");
    let text = file(dir.path(), &rel).replace("\"name\"", "\"colour\": 1,\n  \"name\"");
    fs::write(dir.path().join(&rel), text).unwrap();
    refused(dir.path(), &rel, "unknown field `colour`");
}

#[test]
fn a_file_not_where_its_key_says_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    // A copy under another name would make two files claim one node.
    let copy = "nodes/8b/serde-copy.json";
    fs::copy(dir.path().join(node_path("serde")), dir.path().join(copy)).unwrap();
    refused(dir.path(), copy, "whose file is nodes/8b/serde.json");
}

#[test]
fn an_edge_to_a_deleted_node_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    fs::remove_file(dir.path().join(node_path("serde"))).unwrap();
    let edge = edge_path(&EdgeKey::new("kgstore", RelationType::DependsOn, "serde"));
    refused(dir.path(), &edge, "its 'to' node 'serde' does not exist");
    // The dependency is reported too, on the dependent's file.
    let err = JsonFsBackend::open(dir.path(), JsonFsOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("depends on node 'serde', which does not exist"),
        "{err}"
    );
}

#[test]
fn a_dependency_cycle_made_by_hand_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let rel = node_path("serde");
    let text =
        file(dir.path(), &rel).replace("\"dependencies\": []", "\"dependencies\": [\"kgstore\"]");
    fs::write(dir.path().join(&rel), text).unwrap();
    let err = JsonFsBackend::open(dir.path(), JsonFsOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains("dependency cycle"), "{err}");
}

#[test]
fn check_reports_hand_edits_made_while_open_and_stray_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample(dir.path());
    assert!(store.check().unwrap().is_ok());
    let rel = node_path("serde");
    fs::write(dir.path().join(&rel), "{ not json").unwrap();
    fs::write(dir.path().join("nodes/notes.txt"), "a note").unwrap();
    let report = store.check().unwrap();
    let found: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let joined = found.join("\n");
    assert!(
        joined.contains(&format!(
            "{}: does not parse as a node",
            dir.path().join(&rel).display()
        )),
        "{joined}"
    );
    assert!(
        joined.contains("notes.txt: is not a file or folder this store writes (stray)"),
        "{joined}"
    );
    assert!(
        joined.contains("the open store holds this entity, but its file is missing"),
        "{joined}"
    );
    // A stray file alone does not keep the store from opening.
    drop(store);
    fs::remove_file(dir.path().join(&rel)).unwrap();
    let err = JsonFsBackend::open(dir.path(), JsonFsOptions::default()).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Corrupt,
        "the missing node breaks integrity"
    );
    drop(sample(&dir.path().join("fresh")));
    fs::write(dir.path().join("fresh/nodes/notes.txt"), "a note").unwrap();
    let store = open(&dir.path().join("fresh"));
    assert_eq!(store.check().unwrap().problems.len(), 1);
}

#[test]
fn check_inside_a_write_transaction_is_refused_instead_of_waiting_for_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample(dir.path());
    store
        .write(|tx| {
            tx.create_node(Node::new("inside", "crate")?)?;
            let err = store.check().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
            Ok(())
        })
        .unwrap();
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn crash_leftovers_are_cleaned_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let stray = dir.path().join("nodes/8b/.tmp-1-1");
    fs::write(&stray, "half a fi").unwrap();
    let beside_marker = dir.path().join(".tmp-1-3");
    fs::write(&beside_marker, "{\"format\"").unwrap();
    let half_journal = dir.path().join("journal/.tmp-1-2.journal");
    fs::write(
        &half_journal,
        "kgstore-jsonfs journal 1\nput nodes/8b/x.json 10\n{",
    )
    .unwrap();
    let backend = JsonFsBackend::open(dir.path(), JsonFsOptions::default()).unwrap();
    let report = backend.recovery().clone();
    assert_eq!(report.temps_removed, [beside_marker, stray]);
    assert_eq!(report.discarded, [half_journal]);
    assert!(
        report.to_string().contains("removed temporary file"),
        "{report}"
    );
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
    assert!(Store::new(backend).check().unwrap().is_ok());
}

#[test]
fn a_damaged_committed_journal_refuses_the_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let journal = dir.path().join("journal/00000000000000000001.commit");
    fs::write(
        &journal,
        "kgstore-jsonfs journal 1\ndel nodes/8b/serde.json\nend 1 sha256:00\n",
    )
    .unwrap();
    let err = JsonFsBackend::open(dir.path(), JsonFsOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(dir.path().join(node_path("serde")).exists());
}

/// Leaves a committed journal in `path` (a process that died right after its commit mark).
fn committed_journal(path: &Path) {
    let mut child = common::spawn_child("commit", &[("FILES_DIR", path.display().to_string())]);
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6));
}

#[test]
fn child() {
    if common::child_mode().as_deref() != Some("commit") {
        return;
    }
    use kgstore_jsonfs::fault::{Fault, FaultAction, FaultPoint};
    let options = JsonFsOptions::default()
        .with_fault(Fault::new(FaultPoint::JournalCommitted, FaultAction::Abort));
    let store = Store::new(JsonFsBackend::open(common::var("FILES_DIR"), options).unwrap());
    store
        .write(|tx| {
            tx.create_node(Node::new("late", "crate")?.with_dependency("serde"))?;
            tx.create_edge(Edge::new("late", RelationType::Calls, "serde")?)?;
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_handle_kept_open_recovers_after_a_writer_that_died_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    // Open before the other writer dies: its open had nothing to recover.
    let store = open(dir.path());
    assert_eq!(store.metrics().backend_figure("journal_replays"), Some(0));
    // None (it opened from the snapshot the sample's close wrote) or one.
    let reads_at_open = store.metrics().backend_figure("full_reads");
    committed_journal(dir.path());
    // Its next write takes the lock, finds the dead writer's pid, rolls the
    // committed journal forward, then writes.
    store
        .create_node(Node::new("after", "crate").unwrap())
        .unwrap();
    assert!(store.contains_node("late").unwrap());
    assert!(dir.path().join(node_path("late")).exists());
    let m = store.metrics();
    assert_eq!(m.backend_figure("journal_replays"), Some(1), "{m:?}");
    assert_eq!(m.backend_figure("full_reads"), reads_at_open, "{m:?}");
    assert!(m.recovery_actions >= 1, "{m:?}");
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn a_read_only_open_applies_a_committed_journal_in_memory_only() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    committed_journal(dir.path());
    let backend =
        JsonFsBackend::open(dir.path(), JsonFsOptions::default().read_only(true)).unwrap();
    assert_eq!(backend.recovery().rolled_forward.len(), 1);
    assert!(!backend.recovery().left_in_place.is_empty());
    let store = Store::new(backend);
    assert!(store.contains_node("late").unwrap());
    assert_eq!(store.count_edges().unwrap(), 2);
    assert!(
        !dir.path().join(node_path("late")).exists(),
        "read-only wrote"
    );
    drop(store);
    // The next writable open rolls it forward on disk.
    let store = open(dir.path());
    assert!(dir.path().join(node_path("late")).exists());
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn a_store_cloned_by_git_without_empty_folders_opens() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    // Git keeps neither ignored files (the lock, `journal/` with the log) nor empty folders.
    for gone in ["journal", "LOCK", "schemas/relation_type"] {
        let path = dir.path().join(gone);
        if path.is_dir() {
            fs::remove_dir_all(path).unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
    }
    let ro = Store::new(
        JsonFsBackend::open(dir.path(), JsonFsOptions::default().read_only(true)).unwrap(),
    );
    assert_eq!(ro.count_nodes().unwrap(), 2);
    drop(ro);
    let store = open(dir.path());
    assert!(dir.path().join("journal").is_dir());
    store
        .create_node(Node::new("more", "crate").unwrap())
        .unwrap();
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn folders_that_are_not_stores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("thesis.tex"), "precious").unwrap();
    let err = JsonFsBackend::open(dir.path(), JsonFsOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(!dir.path().join("nodes").exists());
    let file = dir.path().join("thesis.tex");
    let err = JsonFsBackend::open(&file, JsonFsOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let newer = tempfile::tempdir().unwrap();
    drop(open(newer.path()));
    fs::write(
        newer.path().join("kgstore-jsonfs.json"),
        format!(
            r#"{{"format": "kgstore-jsonfs", "version": {}}}"#,
            kgstore_jsonfs::VERSION + 1
        ),
    )
    .unwrap();
    let err = JsonFsBackend::open(newer.path(), JsonFsOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

#[test]
fn native_backup_is_a_store_that_opens_with_the_same_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample(&dir.path().join("store"));
    let dest = dir.path().join("copy");
    store.backup_native(&dest).unwrap();
    let copy = open(&dest);
    assert!(kgstore_core::suite::dump(&copy) == kgstore_core::suite::dump(&store));
    assert!(copy.check().unwrap().is_ok());
    let err = store.backup_native(&dest).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no partial folder is left beside the copy"
    );
    store.optimize().unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Numbers read back bit for bit from the files they were written to.
    #[test]
    fn floats_read_back_exactly(weight in 0.0f64..1e300, value in proptest::num::f64::NORMAL) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.write(|tx| {
            tx.create_node(Node::new("a", "thing")?.with_attribute("x", json!(value)))?;
            tx.create_edge(Edge::new("a", RelationType::Calls, "a")?.with_weight(weight))?;
            Ok(())
        }).unwrap();
        let before = kgstore_core::suite::dump(&store);
        drop(store);
        let after = kgstore_core::suite::dump(&open(dir.path()));
        proptest::prop_assert!(before == after);
    }
}

#[test]
fn check_waits_for_no_writer_and_notes_one_at_work() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let writer = open(dir.path());
    // Another handle: its own lock descriptor, as another process has.
    let checker = Store::new(
        JsonFsBackend::open(
            dir.path(),
            JsonFsOptions::default().lock_timeout(Some(std::time::Duration::ZERO)),
        )
        .unwrap(),
    );
    while_writing(&writer, Node::new("during", "crate").unwrap(), || {
        let report = checker.check().unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        let notes: Vec<String> = report.notes().map(ToString::to_string).collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("a writer (pid "), "{notes:?}");
    });
    // With no writer at work: no note, and the other handle's commit is seen.
    let report = checker.check().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(checker.contains_node("during").unwrap());
}
