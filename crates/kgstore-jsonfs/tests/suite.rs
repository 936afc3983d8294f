//! The shared behaviour suite, run against the JSON-files backend (each test in a
//! fresh folder, reopened where the suite asks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use kgstore_core::Store;
use kgstore_core::suite::Fixture;
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};

fn open(path: &Path) -> Store {
    Store::new(JsonFsBackend::open(path, JsonFsOptions::default()).unwrap())
}

mod jsonfs_suite {
    use super::*;

    kgstore_core::test_suite!(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let again = path.clone();
        Fixture::new(open(&path))
            .with_reopen(move || open(&again))
            .keep(dir)
    });
}
