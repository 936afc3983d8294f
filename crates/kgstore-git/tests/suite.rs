//! The shared behaviour suite, run against the git backend (each test in a fresh bare
//! repository, reopened where the suite asks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use kgstore_core::Store;
use kgstore_core::suite::Fixture;
use kgstore_git::{GitBackend, GitOptions};

fn open(path: &Path) -> Store {
    Store::new(GitBackend::open(path, GitOptions::default()).unwrap())
}

mod git_suite {
    use super::*;

    // The git backend keeps the graph and documents but no event log: the suite checks
    // that it says so and skips the events section.
    kgstore_core::test_suite!(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.git");
        let again = path.clone();
        Fixture::new(open(&path))
            .with_reopen(move || open(&again))
            .keep(dir)
    }, skip: events);
}
