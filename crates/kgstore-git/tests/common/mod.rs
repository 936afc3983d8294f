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

    /// A clone made with `home`'s git configuration (e.g. [`lfs_home`]'s, so that
    /// git-lfs smudges the LFS files).
    pub fn clone_with(&self, home: &Path, name: &str) -> PathBuf {
        let work = self.dir.path().join(name);
        git_ok(
            home,
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

    /// A clone of the store's repository, with a work tree.
    pub fn clone_to(&self, name: &str) -> PathBuf {
        self.clone_with(&self.home, name)
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

/// Bytes that do not compress and are not text.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Commits files (path, bytes) into the store's branch through a clone without LFS
/// filters (so the bytes land as they are), and pushes them back.
pub fn push_files(place: &Place, files: &[(&str, &[u8])], message: &str) {
    let work = place.dir.path().join(format!("raw-{}", message.len()));
    if !work.exists() {
        git_ok(
            &place.home,
            place.dir.path(),
            &[
                "-c",
                "filter.lfs.smudge=",
                "-c",
                "filter.lfs.required=false",
                "clone",
                "-q",
                place.repo.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
    }
    for (path, bytes) in files {
        let target = work.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, bytes).unwrap();
        git_ok(
            &place.home,
            &work,
            &[
                "-c",
                "filter.lfs.clean=",
                "-c",
                "filter.lfs.process=",
                "add",
                path,
            ],
        );
    }
    git_ok(&place.home, &work, &["commit", "-qm", message]);
    git_ok(&place.home, &work, &["push", "-q", "origin", "HEAD:main"]);
}

/// A HOME where `git lfs install` has set the global filters, as a user's would be.
pub fn lfs_home(place: &Place) -> std::path::PathBuf {
    let home = place.dir.path().join("lfs-home");
    std::fs::create_dir_all(&home).unwrap();
    git_ok(&home, place.dir.path(), &["lfs", "install", "--skip-repo"]);
    home
}

/// The problems `check` reports, as text.
pub fn problems(store: &Store) -> Vec<String> {
    store
        .check()
        .unwrap()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}
