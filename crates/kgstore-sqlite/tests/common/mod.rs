//! Helpers shared by the SQLite backend's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use kgstore_core::{Error, ErrorKind, Store};
use kgstore_sqlite::{Durability, SqliteBackend, SqliteOptions};

/// Relaxed durability: these tests are about behaviour, not power cuts.
pub fn options() -> SqliteOptions {
    SqliteOptions::default().durability(Durability::Relaxed)
}

/// A store on `path` with [`options`].
pub fn store(path: &Path) -> Store {
    Store::new(SqliteBackend::open(path, options()).unwrap())
}

/// A fresh folder and the path of a store file inside it.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kg.db");
    (dir, path)
}

/// The error of an outcome that must fail.
pub fn error_of<T: std::fmt::Debug>(outcome: Result<T, Error>) -> Error {
    match outcome {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(e) => e,
    }
}

/// Asserts the error's kind and that its message holds every `parts`.
pub fn assert_error(err: &Error, kind: ErrorKind, parts: &[&str]) {
    assert_eq!(err.kind(), kind, "{err}");
    let text = err.to_string();
    for part in parts {
        assert!(text.contains(part), "{text:?} lacks {part:?}");
    }
    assert!(!text.contains("database is locked"), "{text}");
}

/// A plain rusqlite connection on the store's file, for looking behind kgstore's back.
pub fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}
