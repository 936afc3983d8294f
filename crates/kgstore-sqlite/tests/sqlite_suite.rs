//! The shared behaviour suite, run against the SQLite backend.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

use kgstore_core::Store;
use kgstore_core::suite::Fixture;
use kgstore_sqlite::{Durability, SqliteBackend, SqliteOptions};

/// A store on a file; relaxed durability keeps the suite quick (it tests semantics,
/// not power cuts).
fn open(path: &Path) -> Store {
    let options = SqliteOptions::default().durability(Durability::Relaxed);
    Store::new(SqliteBackend::open(path, options).expect("open the test store"))
}

mod sqlite_suite {
    use super::*;

    kgstore_core::test_suite!(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kg.db");
        let again = path.clone();
        Fixture::new(open(&path))
            .with_reopen(move || open(&again))
            .keep(dir)
    });
}
