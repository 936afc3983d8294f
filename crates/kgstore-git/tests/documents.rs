//! Documents on git:// against the real `git` and `git lfs`: each document at its own
//! key in the tree (a clone shows the files byte for byte), in the same commit as the
//! graph's changes; file names that cannot escape the tree or collide; documents
//! changed with plain git read back; large documents and those under the LFS patterns
//! in Git LFS, which the real client reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};

use common::{Place, git, git_ok, have_git, have_git_lfs, lfs_home, noise, problems};
use kgstore_core::suite::{hostile_keys, thing, write_allowed_keys};
use kgstore_core::{DocumentMeta, DocumentRead, ErrorKind, GraphRead};
use kgstore_git::GitOptions;
use unicode_normalization::UnicodeNormalization;

/// Every path of the branch's tree.
fn tree_paths(place: &Place) -> Vec<String> {
    let out = git_ok(
        &place.home,
        &place.repo,
        &["ls-tree", "-r", "-z", "--name-only", "main"],
    );
    out.split('\0')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every file under `dir`, outside `.git`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            assert!(!kind.is_symlink(), "{}", entry.path().display());
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    todo.push(entry.path());
                }
            } else {
                out.push(entry.path());
            }
        }
    }
    out
}

/// The blob of `path` on the branch.
fn blob(place: &Place, path: &str) -> Vec<u8> {
    let out = git(
        &place.home,
        &place.repo,
        &["cat-file", "blob", &format!("main:{path}")],
    );
    assert!(out.status.success(), "{path}");
    out.stdout
}

fn fold(path: &str) -> String {
    path.nfc()
        .collect::<String>()
        .to_lowercase()
        .nfc()
        .collect()
}

#[test]
fn documents_sit_at_their_keys_and_commit_with_the_graph() {
    if !have_git("documents_sit_at_their_keys_and_commit_with_the_graph") {
        return;
    }
    let place = Place::new();
    let store = place.open();
    let binary: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    store
        .write(|tx| {
            tx.set_message("Add the pilot")?;
            tx.create_node(thing("pilot"))?;
            tx.write_document("scripts/pilot.fountain", "INT. HOUSE - DAY\n")?;
            tx.write_document("README.md", "# Show\n")?;
            tx.write_document("notes/ünïcödé.txt", "ü\n")?;
            tx.write_document("data/table.bin", &binary)?;
            Ok(())
        })
        .unwrap();
    // One commit holds the node and the documents.
    let changed = git_ok(
        &place.home,
        &place.repo,
        &["show", "--name-only", "--format=%s", "-z", "main"],
    );
    let changed: BTreeSet<&str> = changed.split(['\0', '\n']).collect();
    for path in [
        "scripts/pilot.fountain",
        "README.md",
        "notes/ünïcödé.txt",
        "data/table.bin",
    ] {
        assert!(changed.contains(path), "{path} not in {changed:?}");
    }
    assert!(changed.contains("Add the pilot"));
    assert!(changed.iter().any(|p| p.starts_with(".kgstore/nodes/")));
    assert_eq!(
        changed
            .iter()
            .filter(|p| p.starts_with(".kgstore/documents/"))
            .count(),
        4
    );
    // A clone shows the files byte for byte.
    let clone = place.clone_to("clone");
    assert_eq!(
        std::fs::read(clone.join("scripts/pilot.fountain")).unwrap(),
        b"INT. HOUSE - DAY\n"
    );
    assert_eq!(std::fs::read(clone.join("README.md")).unwrap(), b"# Show\n");
    assert_eq!(
        std::fs::read(clone.join("notes/ünïcödé.txt")).unwrap(),
        "ü\n".as_bytes()
    );
    assert_eq!(std::fs::read(clone.join("data/table.bin")).unwrap(), binary);
    place.fsck();
    // Metadata survives a reopen; a replace bumps the version and keeps created_at.
    let before = store.stat_document("README.md").unwrap();
    drop(store);
    let store = place.open();
    assert_eq!(store.stat_document("README.md").unwrap(), before);
    let after = store.write_document("README.md", "# Show, v2\n").unwrap();
    assert_eq!(
        (after.version, after.created_at),
        (2, before.created_at),
        "{after:?}"
    );
    // A delete removes the file and its metadata; empty folders go with them.
    store.delete_document("notes/ünïcödé.txt").unwrap();
    let paths = tree_paths(&place);
    assert!(!paths.iter().any(|p| p.starts_with("notes")), "{paths:?}");
    assert_eq!(
        paths
            .iter()
            .filter(|p| p.starts_with(".kgstore/documents/"))
            .count(),
        3
    );
    assert!(store.check().unwrap().is_ok());
    place.fsck();
}

#[test]
fn keys_that_collide_when_folded_get_distinct_file_names() {
    if !have_git("keys_that_collide_when_folded_get_distinct_file_names") {
        return;
    }
    let place = Place::new();
    let store = place.open();
    let nfc = "Caf\u{e9}.txt";
    let nfd = "Cafe\u{301}.txt";
    let keys = [
        "README.md",
        "readme.md",
        "ReadMe.md",
        nfc,
        nfd,
        "caf\u{e9}.txt",
        "Docs/a.txt",
        "docs/b.txt",
        "DOCS/c.txt",
        "docs/B.txt",
    ];
    for key in keys {
        store.write_document(key, key.as_bytes()).unwrap();
    }
    // The first of each family keeps its name; the others are escaped.
    let paths = tree_paths(&place);
    for plain in ["README.md", "Docs/a.txt", nfc] {
        assert!(paths.iter().any(|p| p == plain), "{plain} in {paths:?}");
    }
    let mut folded = HashSet::new();
    for path in &paths {
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
        }
        assert!(folded.insert(fold(path)), "{path} collides when folded");
    }
    // Folders too: every folder name is distinct when folded.
    let folders: BTreeSet<&str> = paths
        .iter()
        .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d))
        .collect();
    let folded_folders: HashSet<String> = folders.iter().map(|f| fold(f)).collect();
    assert_eq!(folders.len(), folded_folders.len(), "{folders:?}");
    drop(store);
    let store = place.open();
    for key in keys {
        assert_eq!(store.read_document(key).unwrap(), key.as_bytes(), "{key}");
    }
    assert_eq!(store.count_documents().unwrap(), keys.len() as u64);
    // A key keeps its file when its twin goes away and comes back.
    store.delete_document("README.md").unwrap();
    store.write_document("README.md", "again").unwrap();
    assert_eq!(store.read_document("readme.md").unwrap(), b"readme.md");
    assert!(store.check().unwrap().is_ok());
    place.fsck();
}

#[test]
fn hostile_keys_round_trip_and_stay_inside_the_tree_and_the_clone() {
    if !have_git("hostile_keys_round_trip_and_stay_inside_the_tree_and_the_clone") {
        return;
    }
    let place = Place::new();
    let store = place.open();
    let keys: Vec<String> = hostile_keys()
        .into_iter()
        .chain(
            [
                "Scripts/..x/Pilot .FOUNTAIN.",
                "GIT~1",
                ".git.",
                ".Git ",
                "a/.gitattributes",
                "a/.gitmodules",
                ".KGSTORE/x",
                "%41",
                "%",
                "trailing space ",
                "star*and?mark[x]",
                "#hash",
                "!bang",
                "\u{200c}.git",
            ]
            .map(str::to_owned),
        )
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    let written = write_allowed_keys(&store, &keys);
    assert!(written.len() >= 50, "{}", written.len());
    let paths = tree_paths(&place);
    let documents: Vec<&String> = paths
        .iter()
        .filter(|p| *p != ".gitattributes" && !p.starts_with(".kgstore/"))
        .collect();
    assert_eq!(documents.len(), written.len(), "one file per document");
    let mut folded = HashSet::new();
    for path in &documents {
        for part in path.split('/') {
            assert!(
                !part.to_ascii_lowercase().starts_with(".git")
                    && fold(part) != ".kgstore"
                    && part != ".."
                    && part.len() <= 255
                    && !part.ends_with(['.', ' '])
                    && !part.contains(['\\', ':', '*', '?', '"', '<', '>', '|']),
                "{path}: {part:?}"
            );
        }
        assert!(folded.insert(fold(path)), "{path} collides");
    }
    place.fsck();
    // A clone holds every document inside its folder, each with its bytes.
    let clone = place.clone_to("clone");
    let files = files_under(&clone);
    assert_eq!(files.len(), paths.len());
    for file in &files {
        let rel = file.strip_prefix(&clone).unwrap();
        assert!(
            rel.components().all(|c| matches!(c, Component::Normal(_))),
            "{rel:?}"
        );
    }
    drop(store);
    let store = place.open();
    for key in &written {
        assert_eq!(store.read_document(key).unwrap(), key.as_bytes(), "{key:?}");
        let path = store_path_of(&place, key);
        assert_eq!(std::fs::read(clone.join(&path)).unwrap(), key.as_bytes());
    }
    assert!(store.check().unwrap().is_ok());
}

/// Where the metadata of `key` says its file is.
fn store_path_of(place: &Place, key: &str) -> String {
    let paths = tree_paths(place);
    for meta_path in paths
        .iter()
        .filter(|p| p.starts_with(".kgstore/documents/"))
    {
        let file: serde_json::Value = serde_json::from_slice(&blob(place, meta_path)).unwrap();
        if file["meta"]["key"] == key {
            return file["path"].as_str().unwrap().to_owned();
        }
    }
    panic!("no metadata for {key:?}");
}

#[test]
fn documents_changed_with_plain_git_are_read_by_kgstore() {
    if !have_git("documents_changed_with_plain_git_are_read_by_kgstore") {
        return;
    }
    let place = Place::new();
    let store = place.open();
    store
        .write_document("scripts/pilot.fountain", "draft 1\n")
        .unwrap();
    store.write_document("notes/keep.txt", "keep\n").unwrap();
    let typed = store
        .write_document_with(
            "notes/typed",
            "typed",
            &kgstore_core::WriteOptions::new().content_type("text/x-custom"),
        )
        .unwrap();
    let clone = place.clone_to("clone");
    std::fs::write(clone.join("scripts/pilot.fountain"), "draft 2, by hand\n").unwrap();
    std::fs::write(clone.join("scripts/new.fountain"), "EXT. FIELD\n").unwrap();
    std::fs::write(clone.join("notes/typed"), "retyped").unwrap();
    git_ok(&place.home, &clone, &["rm", "-q", "notes/keep.txt"]);
    git_ok(&place.home, &clone, &["add", "-A"]);
    git_ok(&place.home, &clone, &["commit", "-qm", "Edit by hand"]);
    git_ok(&place.home, &clone, &["push", "-q", "origin", "HEAD:main"]);

    // The same handle sees the pushed commit.
    let pilot = store.stat_document("scripts/pilot.fountain").unwrap();
    assert_eq!(
        store.read_document("scripts/pilot.fountain").unwrap(),
        b"draft 2, by hand\n"
    );
    assert_eq!(pilot.version, 2);
    assert_eq!(pilot.size, 17);
    assert_eq!(
        pilot.sha256,
        kgstore_core::documents::Sha256Digest::of(b"draft 2, by hand\n")
    );
    assert!(pilot.updated_at >= pilot.created_at);
    let added = store.stat_document("scripts/new.fountain").unwrap();
    assert_eq!(added.version, 1);
    assert_eq!(
        added.content_type,
        kgstore_core::documents::guess_content_type("scripts/new.fountain")
    );
    assert!(!store.document_exists("notes/keep.txt").unwrap());
    let retyped = store.stat_document("notes/typed").unwrap();
    assert_eq!(
        (retyped.content_type.as_str(), retyped.version),
        (typed.content_type.as_str(), 2)
    );
    assert_eq!(problems(&store), Vec::<String>::new());
    // kgstore builds on it, and another handle agrees.
    let v3 = store
        .write_document("scripts/pilot.fountain", "draft 3\n")
        .unwrap();
    assert_eq!(v3.version, 3);
    let other = place.open();
    let seen: Vec<DocumentMeta> = other
        .list_documents(&kgstore_core::DocumentQuery::prefix(""))
        .unwrap()
        .documents;
    let mine: Vec<DocumentMeta> = store
        .list_documents(&kgstore_core::DocumentQuery::prefix(""))
        .unwrap()
        .documents;
    assert_eq!(seen, mine);
    place.fsck();
}

#[test]
fn large_documents_and_those_under_the_lfs_patterns_are_read_by_the_real_git_lfs() {
    if !have_git_lfs(
        "large_documents_and_those_under_the_lfs_patterns_are_read_by_the_real_git_lfs",
    ) {
        return;
    }
    let place = Place::new();
    let store = place.open_with(GitOptions::default().lfs_threshold(64 * 1024));
    let embedding = noise(5000, 1);
    let big = noise(300_000, 2);
    let odd = noise(100_000, 3);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("blobs/scene-1.npy", embedding),
        ("media/take 1.mov", big),
        ("media/odd [1] * ? #x!.bin", odd),
        ("blobs/empty.bin", Vec::new()),
        ("scripts/pilot.fountain", b"INT. HOUSE - DAY\n".to_vec()),
    ];
    store
        .write(|tx| {
            for (key, bytes) in &files {
                tx.write_document(key, bytes)?;
            }
            Ok(())
        })
        .unwrap();
    // Pointers in the tree, objects under lfs/objects, a line per large file.
    for (key, bytes) in &files {
        let stored = blob(&place, &store_path_of(&place, key));
        if key.starts_with("scripts/") || bytes.is_empty() {
            assert_eq!(&stored, bytes, "{key}");
        } else {
            let pointer = kgstore_git::lfs::Pointer::of(bytes);
            assert_eq!(stored, pointer.encode().as_bytes(), "{key}");
        }
    }
    let attributes = String::from_utf8(blob(&place, ".gitattributes")).unwrap();
    assert!(
        attributes.contains("/media/take?1.mov filter=lfs"),
        "{attributes}"
    );
    // Read back (streamed), also after a reopen.
    for (key, bytes) in &files {
        assert_eq!(&store.read_document(key).unwrap(), bytes, "{key}");
    }
    drop(store);
    let store = place.open();
    for (key, bytes) in &files {
        assert_eq!(&store.read_document(key).unwrap(), bytes, "{key}");
    }
    assert_eq!(problems(&store), Vec::<String>::new());
    // The real client agrees.
    let home = lfs_home(&place);
    let fsck = git_ok(&home, &place.repo, &["lfs", "fsck", "main"]);
    assert!(fsck.contains("Git LFS fsck OK"), "{fsck}");
    let listed = git_ok(&home, &place.repo, &["lfs", "ls-files", "-l", "main"]);
    for (key, bytes) in &files {
        if !key.starts_with("scripts/") && !bytes.is_empty() {
            let oid = kgstore_git::lfs::Pointer::of(bytes).oid;
            let path = store_path_of(&place, key);
            assert!(listed.contains(&format!("{oid} - {path}")), "{listed}");
        }
    }
    place.fsck();
    let clone = place.clone_with(&home, "clone");
    for (key, bytes) in &files {
        let path = store_path_of(&place, key);
        assert_eq!(&std::fs::read(clone.join(path)).unwrap(), bytes, "{key}");
    }
    assert!(git_ok(&home, &clone, &["lfs", "fsck"]).contains("OK"));

    // A document edited in the clone with git-lfs and pushed back is read by kgstore.
    let edited = noise(80_000, 9);
    git_ok(&home, &clone, &["lfs", "install", "--local"]);
    std::fs::write(clone.join("blobs/scene-1.npy"), &edited).unwrap();
    git_ok(&home, &clone, &["add", "blobs/scene-1.npy"]);
    git_ok(&home, &clone, &["commit", "-qm", "New embedding"]);
    git_ok(&home, &clone, &["push", "-q", "origin", "HEAD:main"]);
    assert_eq!(store.read_document("blobs/scene-1.npy").unwrap(), edited);
    let meta = store.stat_document("blobs/scene-1.npy").unwrap();
    assert_eq!((meta.size, meta.version), (80_000, 2));
    assert_eq!(problems(&store), Vec::<String>::new());
}

#[test]
fn a_missing_or_damaged_lfs_object_is_an_error_naming_its_oid() {
    let place = Place::new();
    let store = place.open();
    let bytes = noise(4000, 5);
    store.write_document("blobs/a.bin", &bytes).unwrap();
    let oid = kgstore_git::lfs::Pointer::of(&bytes).oid;
    let object = kgstore_git::lfs::LfsObjects::new(&place.repo, false)
        .path(&oid)
        .unwrap();
    // Damaged: same size, other bytes.
    std::fs::write(&object, noise(4000, 6)).unwrap();
    let err = store.read_document("blobs/a.bin").unwrap_err();
    assert!(err.to_string().contains(&oid), "{err}");
    assert!(problems(&store).iter().any(|p| p.contains("blobs/a.bin")));
    // Missing.
    std::fs::remove_file(&object).unwrap();
    let err = store.read_document("blobs/a.bin").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains(&oid), "{err}");
    assert!(problems(&store).iter().any(|p| p.contains("blobs/a.bin")));
    // Writing it again repairs it.
    store.write_document("blobs/a.bin", &bytes).unwrap();
    assert_eq!(store.read_document("blobs/a.bin").unwrap(), bytes);
    assert_eq!(store.count_nodes().unwrap(), 0);
}

#[test]
fn a_documents_history_in_the_library_log_read_at_and_diff() {
    use kgstore_core::{Change, EntityKey, LogQuery};
    let place = Place::new();
    let store = place.open();
    store
        .write_document("scripts/pilot.fountain", "v1")
        .unwrap();
    store.create_node(thing("pilot")).unwrap();
    store
        .write_document("scripts/pilot.fountain", "v2")
        .unwrap();
    // A replace with the same bytes is a new version: it is in the key's log too.
    store
        .write_document("scripts/pilot.fountain", "v2")
        .unwrap();
    store
        .write_document("blobs/take.bin", noise(3000, 1))
        .unwrap();
    let log = store
        .log(&LogQuery::new().key(EntityKey::Document("scripts/pilot.fountain".into())))
        .unwrap();
    let summaries: Vec<&str> = log.iter().map(|r| r.summary()).collect();
    assert_eq!(summaries.len(), 3, "{summaries:?}");
    assert!(
        summaries.iter().all(|s| s.contains("document (1 ")),
        "{summaries:?}"
    );
    let first = &log[2].id;
    let then = store.read_at(first).unwrap();
    assert_eq!(then.read_document("scripts/pilot.fountain").unwrap(), b"v1");
    assert!(!then.document_exists("blobs/take.bin").unwrap());
    assert_eq!(then.count_documents().unwrap(), 1);
    let diff = store.diff(first, "main").unwrap();
    let docs: Vec<(&str, u64)> = diff
        .documents
        .iter()
        .map(|c| match c {
            Change::Added { new } => ("added", new.version),
            Change::Changed { new, .. } => ("changed", new.version),
            Change::Removed { old } => ("removed", old.version),
        })
        .collect();
    assert_eq!(docs, [("added", 1), ("changed", 3)]);
    assert_eq!(diff.nodes.len(), 1);
    // An LFS document at an old revision reads through its pointer.
    store.write_document("blobs/take.bin", "small now").unwrap();
    assert_eq!(
        store
            .read_at("main~1")
            .unwrap()
            .read_document("blobs/take.bin")
            .unwrap(),
        noise(3000, 1)
    );
    let key_log = store
        .log(&LogQuery::new().key(EntityKey::Document("blobs/take.bin".into())))
        .unwrap();
    assert_eq!(key_log.len(), 2);
    store
        .log(&LogQuery::new().key(EntityKey::Document("../x".into())))
        .unwrap_err();
}
