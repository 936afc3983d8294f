//! Documents on disk: ordinary files a person can read, under names that can
//! never leave the store's folder or meet another key's under case folding or
//! Unicode normalisation; edits made behind the store's back are found.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::path::{Component, Path};

use kgstore_core::suite::{hostile_keys, write_allowed_keys};
use kgstore_core::{DocumentRead, ErrorKind};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};

use common::{all_files, open};

#[test]
fn a_document_is_an_ordinary_file_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write_document("scripts/pilot.fountain", "INT. HOUSE - DAY\n")
        .unwrap();
    store
        .write_document("scripts/s01/e02.fountain", "EXT. SEA - NIGHT\n")
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("documents/scripts/pilot.fountain")).unwrap(),
        b"INT. HOUSE - DAY\n"
    );
    assert!(
        dir.path()
            .join("documents/scripts/s01/e02.fountain")
            .is_file()
    );
    // Its metadata is a small JSON file of its own, outside the documents' folder.
    let metas: Vec<_> = all_files(&dir.path().join("docmeta"));
    assert_eq!(metas.len(), 2);
    let text = std::fs::read_to_string(
        metas
            .iter()
            .find(|p| p.to_string_lossy().contains("pilot"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        text.contains("\"key\": \"scripts/pilot.fountain\""),
        "{text}"
    );
    assert!(text.contains("\"size\": 17"), "{text}");
    // Deleting the last document of a folder removes the folder.
    store.delete_document("scripts/s01/e02.fountain").unwrap();
    assert!(!dir.path().join("documents/scripts/s01").exists());
    assert!(dir.path().join("documents/scripts").is_dir());
}

/// Every allowed hostile key is stored under `documents/` with a safe name, and no
/// two keys share a file, even once names are folded or normalised.
#[test]
fn hostile_keys_stay_inside_and_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = open(&root);
    let written = write_allowed_keys(&store, &hostile_keys());
    assert!(written.len() >= 40, "{}", written.len());
    let files = all_files(&root.join("documents"));
    assert_eq!(files.len(), written.len(), "one file per document");
    let mut folded = HashSet::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap();
        assert!(
            rel.components().all(|c| matches!(c, Component::Normal(_))),
            "{rel:?}"
        );
        for part in rel.iter().skip(1) {
            let part = part.to_string_lossy();
            assert!(!part.starts_with('.') && part.len() <= 255, "{part}");
            assert!(
                part.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'^' | b'%' | b'~')),
                "{part}"
            );
            assert!(!part.ends_with('.'), "{part}");
        }
        assert!(
            folded.insert(rel.to_string_lossy().to_lowercase()),
            "{rel:?} collides"
        );
    }
    for path in all_files(&root) {
        assert!(path.starts_with(&root), "{}", path.display());
    }
    drop(store);
    let store = open(&root);
    for key in &written {
        assert_eq!(store.read_document(key).unwrap(), key.as_bytes(), "{key:?}");
    }
    assert!(store.check().unwrap().is_ok());
}

fn reopen(path: &Path) -> kgstore_core::Result<JsonFsBackend> {
    JsonFsBackend::open(path, JsonFsOptions::default())
}

#[test]
fn a_document_changed_behind_the_stores_back_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.write_document("notes/a.txt", "original").unwrap();
    store.write_document("notes/b.txt", "original").unwrap();
    drop(store);
    let file = dir.path().join("documents/notes/a.txt");
    // The same size, other bytes: `check` hashes every document.
    std::fs::write(&file, "ORIGINAL").unwrap();
    let store = kgstore_core::Store::new(reopen(dir.path()).unwrap());
    // And a read never hands out bytes other than the ones it recorded (the file's
    // identity alone is no proof: an inode number is reused): Corrupt, naming it.
    let err = store.read_document("notes/a.txt").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("notes/a.txt"), "{err}");
    let mut streamed = Vec::new();
    let err = store
        .read_document_to("notes/a.txt", &mut streamed)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(store.read_document("notes/b.txt").unwrap(), b"original");
    let report = store.check().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.location.contains("notes/a.txt") && p.detail.contains("SHA-256")),
        "{:?}",
        report.problems
    );
    drop(store);
    // Another size: the open refuses, naming the file.
    std::fs::write(&file, "longer than before").unwrap();
    let err = reopen(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.to_string().contains("notes/a.txt") && err.to_string().contains("18 bytes"),
        "{err}"
    );
    // Gone: refused too.
    std::fs::remove_file(&file).unwrap();
    let err = reopen(dir.path()).unwrap_err();
    assert!(err.to_string().contains("no file"), "{err}");
    // A stray file in the documents' folder is reported, not fatal.
    std::fs::write(&file, "original").unwrap();
    std::fs::write(dir.path().join("documents/notes/stray.txt"), "?").unwrap();
    let store = kgstore_core::Store::new(reopen(dir.path()).unwrap());
    let report = store.check().unwrap();
    assert!(
        report.problems.iter().any(|p| p.detail.contains("stray")),
        "{:?}",
        report.problems
    );
}

/// What is in `journal/` but the commit log (`journal/log/`).
fn staged_or_journals(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let log = root.join("journal/log");
    all_files(&root.join("journal"))
        .into_iter()
        .filter(|p| !p.starts_with(&log))
        .collect()
}

#[test]
fn a_rolled_back_transaction_leaves_no_staged_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let _ = store.write(|tx| {
        tx.write_document("a", "x")?;
        tx.write_document("a", "y")?;
        tx.write_document("b", vec![1u8; 300_000])?;
        Err::<(), _>(kgstore_core::Error::invalid_input("test", "roll back"))
    });
    assert!(staged_or_journals(dir.path()).is_empty());
    assert!(all_files(&dir.path().join("documents")).is_empty());
    store
        .write(|tx| {
            tx.write_document("c", "x")?;
            tx.write_document("c", "y")?;
            Ok(())
        })
        .unwrap();
    assert!(staged_or_journals(dir.path()).is_empty());
    assert_eq!(store.read_document("c").unwrap(), b"y");
}
