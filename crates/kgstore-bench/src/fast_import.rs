//! The git backend's baseline for bulk loads: `git fast-import` of the very files the
//! git backend writes for the same nodes and edges (`.kgstore/nodes/…`, rendered by
//! `kgstore::entity_file`), one commit per load, into a bare repository of its own,
//! with `core.fsync=objects,pack-metadata,reference` (the pack — or the loose objects of
//! a load below fast-import's unpack limit — its index and the branch synced, as the git
//! backend syncs its own before acknowledging).
//! Rendering the files is timed too: an application without kgstore would render them
//! as well. The git process's start is timed with it (once per load).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use kgstore::{Edge, Node, entity_file, names};

use crate::subject::{Measured, timed};

/// A bare repository fed by `git fast-import`.
pub struct FastImport {
    repo: PathBuf,
    commits: usize,
}

impl FastImport {
    /// A new bare repository at `repo`.
    pub fn create(repo: &Path) -> Result<Self> {
        let out = Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(repo)
            .output()
            .context("running git (the git-fast-import baseline needs it)")?;
        if !out.status.success() {
            bail!("git init: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Self {
            repo: repo.to_owned(),
            commits: 0,
        })
    }

    /// Imports one file per node in one commit.
    pub fn load_nodes(&mut self, nodes: &[Node]) -> Result<Measured> {
        timed(|| {
            let files = nodes.iter().map(|n| {
                Ok((
                    format!(".kgstore/{}", names::node_path(&n.name)),
                    entity_file::render_node(n)?,
                ))
            });
            Ok((self.import("load nodes", files)?, None))
        })
        .and_then(|m| self.with_files_in(m, "nodes"))
    }

    /// Imports one file per edge in one commit, on top of the nodes'.
    pub fn load_edges(&mut self, edges: &[Edge]) -> Result<Measured> {
        timed(|| {
            let files = edges.iter().map(|e| {
                Ok((
                    format!(".kgstore/{}", names::edge_path(&e.key())),
                    entity_file::render_edge(e)?,
                ))
            });
            Ok((self.import("load edges", files)?, None))
        })
        .and_then(|m| self.with_files_in(m, "edges"))
    }

    /// `m` with the checksum every backend gives for a load: the number of files the
    /// branch now holds under `.kgstore/{folder}/` (counted by `git ls-tree`, untimed).
    fn with_files_in(&self, mut m: Measured, folder: &str) -> Result<Measured> {
        let out = Command::new("git")
            .args(["ls-tree", "-r", "--name-only", "main", "--"])
            .arg(format!(".kgstore/{folder}/"))
            .env("GIT_DIR", &self.repo)
            .output()
            .context("running git ls-tree")?;
        if !out.status.success() {
            bail!("git ls-tree: {}", String::from_utf8_lossy(&out.stderr));
        }
        m.checksum = Some(out.stdout.iter().filter(|b| **b == b'\n').count() as u64);
        Ok(m)
    }

    /// One `git fast-import` run writing one commit of `files`; how many there were.
    fn import(
        &mut self,
        message: &str,
        files: impl Iterator<Item = kgstore::Result<(String, Vec<u8>)>>,
    ) -> Result<u64> {
        let mut child = Command::new("git")
            .args([
                "-c",
                "core.fsync=objects,pack-metadata,reference",
                "-c",
                "core.fsyncMethod=fsync",
                "fast-import",
                "--quiet",
            ])
            .env("GIT_DIR", &self.repo)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running git fast-import")?;
        let stdin = child.stdin.take().context("git fast-import's stdin")?;
        let fed = self.feed(stdin, message, files);
        // Waited for even when feeding failed: its error says more than a broken pipe.
        let done = child.wait_with_output()?;
        if !done.status.success() {
            bail!(
                "git fast-import failed: {}",
                String::from_utf8_lossy(&done.stderr)
            );
        }
        let count = fed?;
        self.commits += 1;
        Ok(count)
    }

    /// Writes the commit's commands to `stdin` and closes it; how many files there were.
    fn feed(
        &self,
        stdin: std::process::ChildStdin,
        message: &str,
        files: impl Iterator<Item = kgstore::Result<(String, Vec<u8>)>>,
    ) -> Result<u64> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdin);
        write!(
            out,
            "commit refs/heads/main\ncommitter bench <bench@localhost> 0 +0000\ndata {}\n{message}\n",
            message.len() + 1
        )?;
        if self.commits > 0 {
            // Continues the branch the previous run wrote.
            out.write_all(b"from refs/heads/main^0\n")?;
        }
        let mut count = 0u64;
        for file in files {
            let (path, bytes) = file?;
            write!(out, "M 100644 inline {path}\ndata {}\n", bytes.len())?;
            out.write_all(&bytes)?;
            out.write_all(b"\n")?;
            count += 1;
        }
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(count)
    }
}
