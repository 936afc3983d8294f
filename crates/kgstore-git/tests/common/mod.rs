//! Helpers shared by the git backend's tests: the real `git` and `git lfs` programs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kgstore_core::Store;
use kgstore_git::{GitBackend, GitOptions};

/// Whether `git` runs; if not, says loudly that the test is skipped.
pub fn have_git(test: &str) -> bool {
    let ok = Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "\n!!!!! SKIPPED {test}: `git` is not installed (.ci/run installs it with apt-get) !!!!!\n"
        );
    }
    ok
}

/// Whether `git lfs` runs; if not, says loudly that the test is skipped.
pub fn have_git_lfs(test: &str) -> bool {
    if !have_git(test) {
        return false;
    }
    let ok = Command::new("git")
        .args(["lfs", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "\n!!!!! SKIPPED {test}: `git lfs` is not installed (.ci/run installs git-lfs with apt-get) !!!!!\n"
        );
    }
    ok
}

/// A `git` command isolated from the user's configuration, with `home` as HOME.
pub fn git(home: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Other Person")
        .env("GIT_AUTHOR_EMAIL", "other@example.org")
        .env("GIT_COMMITTER_NAME", "Other Person")
        .env("GIT_COMMITTER_EMAIL", "other@example.org")
        .args(args)
        .output()
        .expect("git runs")
}

/// Runs git and insists on success; its standard output.
pub fn git_ok(home: &Path, dir: &Path, args: &[&str]) -> String {
    let out = git(home, dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A temporary folder with a store path and a HOME for git.
pub struct Place {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub home: PathBuf,
}

impl Place {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("kg.git");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        Self { dir, repo, home }
    }

    pub fn open(&self) -> Store {
        Store::new(GitBackend::open(&self.repo, GitOptions::default()).unwrap())
    }

    pub fn open_with(&self, options: GitOptions) -> Store {
        Store::new(GitBackend::open(&self.repo, options).unwrap())
    }

    /// A clone of the store's repository, with a work tree.
    pub fn clone_to(&self, name: &str) -> PathBuf {
        let work = self.dir.path().join(name);
        git_ok(
            &self.home,
            self.dir.path(),
            &[
                "clone",
                "-q",
                self.repo.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
        work
    }

    /// `git fsck --strict` on the store's repository must be clean.
    pub fn fsck(&self) {
        let out = git(
            &self.home,
            &self.repo,
            &["fsck", "--strict", "--no-dangling"],
        );
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "git fsck --strict: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
