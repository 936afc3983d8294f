//! A handle that refreshes from a sound commit to a tip others pushed must read what a
//! whole load of that tip reads, and refuse what it refuses.
//!
//! Property: start from a sound kgstore commit, push a random sequence of commits made
//! with the real `git` client in a clone (sound and unsound: entity files added,
//! changed, deleted, malformed, at the wrong path, moved between shards, renamed in case
//! only; folders made files and files folders; `.kgstore` made a file or a link;
//! symbolic links; gitlinks; a non-UTF-8 path; an LFS pointer without its object;
//! documents and their metadata; a schema made strict, malformed or removed; the base
//! restored), then compare three handles:
//!
//! * `jump`: open at the base, first read after the last push (one refresh, base → tip);
//! * `step`: open at the base, read after every push (a refresh per push, from the last
//!   sound commit it saw);
//! * `opened`: opened after the last push, with the base remembered as the last sound
//!   commit (`kgstore-verified`): it starts from there and refreshes;
//! * `whole`: opened after the last push with the remembered sound commit removed (the
//!   whole load and the whole check of the tip).
//!
//! What is compared ([`View`]): every node, edge and schema; every document's metadata
//! and bytes (or the kind of error reading them); whether a write is refused; and every
//! problem `check` reports, by kind and location — the location without the commit it
//! is blamed on (a refresh blames the push, a whole load the commit that last changed
//! the file: that difference is the point of refreshing), and a broken reference as the
//! pair (referring entity, missing node) whichever side reports it (a refresh reports a
//! removed node under the node's file, a whole check under the referring file); a
//! dependency cycle by its presence (each reports the first cycle it meets); a schema
//! violation without the "(schema for …)" note a schema's own check adds.
//!
//! `KGSTORE_GIT_REFRESH_CASES` sets the number of cases (default 24, for CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{Place, git_ok, have_git};
use kgstore_core::documents::Sha256Digest;
use kgstore_core::entity_file::{render_edge, render_node};
use kgstore_core::suite::{dump, thing};
use kgstore_core::{
    DocumentMeta, DocumentQuery, DocumentRead, Edge, GraphRead, Node, RelationType, SchemaTarget,
    Store, names,
};
use kgstore_git::{GitBackend, GitOptions};
use proptest::prelude::*;
use serde_json::json;

/// Node names the pushes use: `n0`…`n5` (the base holds `n0`…`n3`).
const NODES: u8 = 6;

fn name(i: u8) -> String {
    format!("n{}", i % NODES)
}

fn node(i: u8, size: Option<u8>) -> Node {
    let n = thing(&name(i));
    match size {
        Some(size) => n.with_attribute("size", json!(size)),
        None => n,
    }
}

fn thing_schema() -> serde_json::Value {
    json!({"type": "object", "properties": {"size": {"type": "integer"}}})
}

/// The base: a sound store with nodes, edges (one from a dependency), a schema and
/// documents (plain, under LFS, at the root), made once and copied for every case.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let repo = dir.path().join("kg.git");
            let store = Store::new(GitBackend::open(&repo, GitOptions::default()).unwrap());
            store
                .set_schema(SchemaTarget::NodeType("thing".into()), thing_schema())
                .unwrap();
            store
                .write(|tx| {
                    tx.create_node(node(0, Some(0)))?;
                    tx.create_node(node(1, Some(1)).with_dependency("n0"))?;
                    tx.create_node(node(2, Some(2)))?;
                    tx.create_node(node(3, None))?;
                    tx.create_edge(Edge::new("n1", RelationType::DependsOn, "n0")?)?;
                    tx.create_edge(Edge::new("n2", RelationType::RelatesTo, "n3")?)?;
                    tx.write_document("notes/d0.txt", "zero\n")?;
                    tx.write_document("README.md", "# base\n")?;
                    tx.write_document("blobs/b.bin", vec![7u8; 300])?;
                    Ok(())
                })
                .unwrap();
            assert!(store.check().unwrap().is_ok());
            (dir, repo)
        })
        .1
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// One change in the clone's work tree.
#[derive(Clone, Debug)]
enum Op {
    /// A sound node file (made or changed).
    PutNode {
        node: u8,
        size: u8,
    },
    /// A node whose `size` breaks the schema.
    BadAttribute {
        node: u8,
    },
    /// Node `node` (made if absent) depends on `on`.
    Depend {
        node: u8,
        on: u8,
    },
    DeleteNode {
        node: u8,
    },
    PutEdge {
        from: u8,
        to: u8,
        depends: bool,
    },
    /// The `pick`-th entity file (nodes, edges, schemas), whatever it is now.
    DeleteFile {
        pick: u8,
    },
    Malformed {
        pick: u8,
    },
    /// Node `node`'s file written at node `at`'s path.
    WrongKey {
        node: u8,
        at: u8,
    },
    /// The shard folder of the `pick`-th entity file made a file.
    FolderToFile {
        pick: u8,
    },
    /// The `pick`-th entity file made a folder (holding a node file).
    FileToFolder {
        pick: u8,
    },
    /// `.kgstore/nodes` made a file.
    KindFolderToFile,
    /// `.kgstore` made a file.
    DataToFile,
    /// `.kgstore` made a symbolic link (to a folder of the same shape).
    DataToLink,
    /// The `pick`-th entity file made a symbolic link to another.
    Symlink {
        pick: u8,
    },
    /// The `pick`-th entity file made a gitlink (a submodule's entry).
    Gitlink {
        pick: u8,
    },
    /// A gitlink where a document could be.
    DocGitlink,
    /// An LFS pointer under `blobs/` whose object is not there.
    LfsPointerWithoutObject,
    /// The `pick`-th entity file renamed to its upper-case spelling.
    CaseRename {
        pick: u8,
    },
    /// The `pick`-th entity file moved to shard `00`.
    ShardMove {
        pick: u8,
    },
    /// A file whose name is not UTF-8, in a shard or among the documents.
    NonUtf8 {
        in_data: bool,
    },
    PutDoc {
        doc: u8,
        size: u8,
    },
    DeleteDoc {
        doc: u8,
    },
    /// The `pick`-th document metadata file overwritten with bytes that do not parse.
    BadDocMeta {
        pick: u8,
    },
    /// The node type's schema made to require `size` (which `n3` lacks).
    StrictSchema,
    MalformedSchema,
    RemoveSchema,
    /// The root `.gitattributes` (the LFS patterns) removed.
    DeleteAttributes,
    /// The root `.gitattributes` given another pattern.
    EditAttributes,
    /// The format marker `.kgstore/kgstore-git.json` removed.
    DeleteMarker,
    /// The `pick`-th entity file made executable.
    Executable {
        pick: u8,
    },
    /// The work tree made the base's again.
    RestoreBase,
}

fn op() -> impl Strategy<Value = Op> {
    let i = || 0u8..NODES;
    let pick = || any::<u8>();
    prop_oneof![
        6 => (i(), any::<u8>()).prop_map(|(node, size)| Op::PutNode { node, size }),
        2 => i().prop_map(|node| Op::BadAttribute { node }),
        3 => (i(), i()).prop_map(|(node, on)| Op::Depend { node, on }),
        4 => i().prop_map(|node| Op::DeleteNode { node }),
        4 => (i(), i(), any::<bool>()).prop_map(|(from, to, depends)| Op::PutEdge { from, to, depends }),
        3 => pick().prop_map(|pick| Op::DeleteFile { pick }),
        2 => pick().prop_map(|pick| Op::Malformed { pick }),
        2 => (i(), i()).prop_map(|(node, at)| Op::WrongKey { node, at }),
        1 => pick().prop_map(|pick| Op::FolderToFile { pick }),
        1 => pick().prop_map(|pick| Op::FileToFolder { pick }),
        1 => Just(Op::KindFolderToFile),
        1 => Just(Op::DataToFile),
        1 => Just(Op::DataToLink),
        1 => pick().prop_map(|pick| Op::Symlink { pick }),
        1 => pick().prop_map(|pick| Op::Gitlink { pick }),
        1 => Just(Op::DocGitlink),
        1 => Just(Op::LfsPointerWithoutObject),
        1 => pick().prop_map(|pick| Op::CaseRename { pick }),
        2 => pick().prop_map(|pick| Op::ShardMove { pick }),
        1 => any::<bool>().prop_map(|in_data| Op::NonUtf8 { in_data }),
        2 => (0u8..3, any::<u8>()).prop_map(|(doc, size)| Op::PutDoc { doc, size }),
        1 => (0u8..3).prop_map(|doc| Op::DeleteDoc { doc }),
        1 => pick().prop_map(|pick| Op::BadDocMeta { pick }),
        1 => Just(Op::StrictSchema),
        1 => Just(Op::MalformedSchema),
        1 => Just(Op::RemoveSchema),
        1 => Just(Op::DeleteAttributes),
        1 => Just(Op::EditAttributes),
        1 => Just(Op::DeleteMarker),
        1 => pick().prop_map(|pick| Op::Executable { pick }),
        2 => Just(Op::RestoreBase),
    ]
}

/// A push: one to three changes, committed and pushed together.
fn pushes() -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(prop::collection::vec(op(), 1..4), 1..6)
}

/// The clone a case pushes from.
struct Work {
    work: PathBuf,
    home: PathBuf,
    base: String,
}

impl Work {
    fn git(&self, args: &[&str]) -> String {
        git_ok(&self.home, &self.work, args)
    }

    fn data(&self) -> PathBuf {
        self.work.join(".kgstore")
    }

    /// The entity files (and whatever stands where they were), sorted.
    fn entity_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => walk(&path, out),
                    Ok(_) => out.push(path),
                    Err(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        // Not through `.kgstore` made a link (git holds the link, not what it leads to).
        if !std::fs::symlink_metadata(self.data()).is_ok_and(|m| m.is_dir()) {
            return out;
        }
        for kind in ["nodes", "edges", "schemas"] {
            walk(&self.data().join(kind), &mut out);
        }
        out.sort();
        out
    }

    fn pick(&self, pick: u8) -> Option<PathBuf> {
        let files = self.entity_files();
        (!files.is_empty()).then(|| files[usize::from(pick) % files.len()].clone())
    }

    /// Writes a file, making its folders (and removing whatever stands in their way).
    fn write(&self, path: &Path, bytes: &[u8]) {
        self.make_parents(path);
        remove(path);
        std::fs::write(path, bytes).unwrap();
    }

    fn make_parents(&self, path: &Path) {
        let mut ancestors: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .take_while(|a| *a != self.work)
            .collect();
        ancestors.reverse();
        for dir in ancestors {
            match std::fs::symlink_metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    std::fs::remove_file(dir).unwrap();
                    std::fs::create_dir(dir).unwrap();
                }
                Err(_) => std::fs::create_dir(dir).unwrap(),
            }
        }
    }

    fn entity_path(&self, rel: &str) -> PathBuf {
        self.data().join(rel)
    }

    /// Applies one change; gitlinks are staged afterwards (`git add -A` would drop them).
    fn apply(&self, op: &Op, gitlinks: &mut Vec<PathBuf>) {
        match op {
            Op::PutNode { node: i, size } => {
                let path = self.entity_path(&names::node_path(&name(*i)));
                self.write(&path, &render_node(&node(*i, Some(*size))).unwrap());
            }
            Op::BadAttribute { node: i } => {
                let path = self.entity_path(&names::node_path(&name(*i)));
                let n = thing(&name(*i)).with_attribute("size", json!("big"));
                self.write(&path, &render_node(&n).unwrap());
            }
            Op::Depend { node: i, on } => {
                let path = self.entity_path(&names::node_path(&name(*i)));
                let current = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Node>(&b).ok())
                    .filter(|n| n.name == name(*i))
                    .unwrap_or_else(|| node(*i, Some(1)));
                let n = current.with_dependency(name(*on));
                self.write(&path, &render_node(&n).unwrap());
            }
            Op::DeleteNode { node: i } => {
                remove(&self.entity_path(&names::node_path(&name(*i))));
            }
            Op::PutEdge { from, to, depends } => {
                let relation = if *depends {
                    RelationType::DependsOn
                } else {
                    RelationType::RelatesTo
                };
                let edge = Edge::new(name(*from), relation, name(*to)).unwrap();
                let path = self.entity_path(&names::edge_path(&edge.key()));
                self.write(&path, &render_edge(&edge).unwrap());
            }
            Op::DeleteFile { pick } => {
                if let Some(path) = self.pick(*pick) {
                    remove(&path);
                }
            }
            Op::Malformed { pick } => {
                if let Some(path) = self.pick(*pick) {
                    self.write(&path, b"{ not json");
                }
            }
            Op::WrongKey { node: i, at } => {
                let path = self.entity_path(&names::node_path(&name(*at)));
                self.write(&path, &render_node(&node(*i, Some(3))).unwrap());
            }
            Op::FolderToFile { pick } => {
                if let Some(path) = self.pick(*pick)
                    && let Some(folder) = path.parent()
                    && folder != self.data()
                {
                    remove(folder);
                    std::fs::write(folder, b"{}").unwrap();
                }
            }
            Op::FileToFolder { pick } => {
                if let Some(path) = self.pick(*pick) {
                    let inner = path.join(names::node_path("n0").rsplit('/').next().unwrap());
                    self.write(&inner, &render_node(&node(0, Some(0))).unwrap());
                }
            }
            Op::KindFolderToFile => {
                let path = self.data().join("nodes");
                remove(&path);
                self.make_parents(&path);
                std::fs::write(&path, b"{}").unwrap();
            }
            Op::DataToFile => {
                remove(&self.data());
                std::fs::write(self.data(), b"{}").unwrap();
            }
            Op::DataToLink => {
                // A link to a copy of the folder: git stores the link, not the files.
                let copy = self.work.join("kgstore-copy");
                if std::fs::symlink_metadata(self.data()).is_ok_and(|m| m.is_dir()) {
                    remove(&copy);
                    std::fs::rename(self.data(), &copy).unwrap();
                } else {
                    remove(&self.data());
                }
                std::os::unix::fs::symlink("kgstore-copy", self.data()).unwrap();
            }
            Op::Symlink { pick } => {
                if let Some(path) = self.pick(*pick) {
                    remove(&path);
                    let target = names::node_path("n0");
                    std::os::unix::fs::symlink(format!("../../{target}"), &path).unwrap();
                }
            }
            Op::Gitlink { pick } => {
                if let Some(path) = self.pick(*pick) {
                    remove(&path);
                    std::fs::create_dir(&path).unwrap();
                    gitlinks.push(path);
                }
            }
            Op::DocGitlink => {
                let path = self.work.join("notes/sub");
                self.make_parents(&path);
                remove(&path);
                std::fs::create_dir(&path).unwrap();
                gitlinks.push(path);
            }
            Op::LfsPointerWithoutObject => {
                let pointer = format!(
                    "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 12\n",
                    "ab".repeat(32)
                );
                self.write(&self.work.join("blobs/missing.bin"), pointer.as_bytes());
            }
            Op::CaseRename { pick } => {
                if let Some(path) = self.pick(*pick) {
                    let file = path.file_name().unwrap().to_string_lossy().to_uppercase();
                    let to = path.with_file_name(file);
                    if to != path {
                        remove(&to);
                        std::fs::rename(&path, &to).unwrap();
                    }
                }
            }
            Op::ShardMove { pick } => {
                if let Some(path) = self.pick(*pick) {
                    let kind_dir = path.parent().and_then(Path::parent).unwrap();
                    if kind_dir != self.data() {
                        let to = kind_dir.join("00").join(path.file_name().unwrap());
                        if to != path {
                            self.make_parents(&to);
                            remove(&to);
                            std::fs::rename(&path, &to).unwrap();
                        }
                    }
                }
            }
            Op::NonUtf8 { in_data } => {
                use std::os::unix::ffi::OsStrExt;
                let file = std::ffi::OsStr::from_bytes(b"caf\xe9.json");
                let path = if *in_data {
                    self.data().join("nodes/00").join(file)
                } else {
                    self.work.join("notes").join(file)
                };
                self.write(&path, &render_node(&node(4, Some(4))).unwrap());
            }
            Op::PutDoc { doc, size } => {
                let path = self.work.join(format!("notes/d{doc}.txt"));
                self.write(&path, format!("doc {doc} {size}\n").as_bytes());
            }
            Op::DeleteDoc { doc } => remove(&self.work.join(format!("notes/d{doc}.txt"))),
            Op::BadDocMeta { pick } => {
                let mut metas = Vec::new();
                if let Ok(shards) = std::fs::read_dir(self.data().join("documents")) {
                    for shard in shards.flatten() {
                        if let Ok(files) = std::fs::read_dir(shard.path()) {
                            metas.extend(files.flatten().map(|f| f.path()));
                        }
                    }
                }
                metas.sort();
                if !metas.is_empty() {
                    let path = metas[usize::from(*pick) % metas.len()].clone();
                    self.write(&path, b"[1, 2");
                }
            }
            Op::StrictSchema => {
                let mut schema = thing_schema();
                schema["required"] = json!(["size"]);
                let path = self.schema_path();
                self.write(&path, &serde_json::to_vec_pretty(&schema).unwrap());
            }
            Op::MalformedSchema => {
                let path = self.schema_path();
                self.write(&path, br#"{"type": 5}"#);
            }
            Op::RemoveSchema => remove(&self.schema_path()),
            Op::DeleteAttributes => remove(&self.work.join(".gitattributes")),
            Op::EditAttributes => self.write(
                &self.work.join(".gitattributes"),
                b"notes/** filter=lfs diff=lfs merge=lfs -text\n",
            ),
            Op::DeleteMarker => remove(&self.data().join("kgstore-git.json")),
            Op::Executable { pick } => {
                use std::os::unix::fs::PermissionsExt;
                if let Some(path) = self.pick(*pick)
                    && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file())
                {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                        .unwrap();
                }
            }
            Op::RestoreBase => {
                self.git(&["read-tree", "-u", "--reset", &self.base]);
            }
        }
    }

    fn schema_path(&self) -> PathBuf {
        self.entity_path(&names::schema_path(&SchemaTarget::NodeType("thing".into())))
    }

    /// Commits the changes and pushes them to the store's branch.
    fn push(&self, ops: &[Op], number: usize) {
        let mut gitlinks = Vec::new();
        for op in ops {
            self.apply(op, &mut gitlinks);
        }
        self.git(&["add", "-A"]);
        if !gitlinks.is_empty() {
            let head = self.git(&["rev-parse", "HEAD"]);
            for path in gitlinks {
                // A later change may have replaced the folder or one above it.
                let real_folders = path
                    .ancestors()
                    .take_while(|a| *a != self.work)
                    .all(|a| std::fs::symlink_metadata(a).is_ok_and(|m| m.is_dir()));
                if !real_folders {
                    continue;
                }
                let rel = path.strip_prefix(&self.work).unwrap().to_str().unwrap();
                self.git(&[
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    &format!("160000,{},{rel}", head.trim()),
                ]);
            }
        }
        self.git(&[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            &format!("push {number}"),
        ]);
        self.git(&["push", "-q", "origin", "HEAD:main"]);
    }
}

impl Work {
    /// Pushes a commit (made with git's plumbing, as a tool might) whose root tree
    /// holds `.kgstore` twice: the clone's own and the base's, in the order given.
    /// The clone itself stays where it was (its index cannot hold such a tree).
    fn push_twice_named_data(&self, base_first: bool, number: usize) {
        let listing = self.git(&["ls-tree", "HEAD"]);
        let base_data = self.git(&["rev-parse", &format!("{}:.kgstore", self.base)]);
        let base_line = format!("040000 tree {}\t.kgstore", base_data.trim());
        let mut lines = Vec::new();
        for line in listing.lines() {
            if line.ends_with("\t.kgstore") {
                if base_first {
                    lines.push(base_line.clone());
                    lines.push(line.to_owned());
                } else {
                    lines.push(line.to_owned());
                    lines.push(base_line.clone());
                }
            } else {
                lines.push(line.to_owned());
            }
        }
        let tree = {
            use std::io::Write;
            let mut child = std::process::Command::new("git")
                .current_dir(&self.work)
                .env("HOME", &self.home)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .args(["mktree"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut text = lines.join("\n");
            text.push('\n');
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        let commit = self.git(&[
            "commit-tree",
            &tree,
            "-p",
            "HEAD",
            "-m",
            &format!("push {number}"),
        ]);
        self.git(&["push", "-q", "origin", &format!("{}:main", commit.trim())]);
    }
}

/// Removes a file, link or folder, if there.
fn remove(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// What a handle shows: see the module's comment for what is compared and how.
#[derive(Debug)]
struct View {
    graph: (Vec<Node>, Vec<Edge>, Vec<(SchemaTarget, serde_json::Value)>),
    /// Each document's metadata, and the SHA-256 of its bytes or the kind of error.
    documents: Vec<(DocumentMeta, Result<String, String>)>,
    refuses_writes: bool,
    problems: BTreeSet<String>,
}

fn view(store: &Store) -> View {
    let graph = dump(store);
    let documents = store
        .list_documents(&DocumentQuery::prefix("").limit(1000))
        .unwrap()
        .documents
        .into_iter()
        .map(|meta| {
            let bytes = store
                .read_document(&meta.key)
                .map(|bytes| Sha256Digest::of(&bytes).to_string())
                .map_err(|e| format!("{:?}", e.kind()));
            (meta, bytes)
        })
        .collect();
    let refuses_writes = match store.write(|tx| tx.count_nodes()) {
        Ok(_) => false,
        Err(e) => {
            assert_eq!(e.kind(), kgstore_core::ErrorKind::Corrupt, "{e}");
            true
        }
    };
    let problems = store
        .check()
        .unwrap()
        .problems
        .iter()
        .map(|p| normalise(&p.location, &p.detail, p.is_note()))
        .collect();
    View {
        graph,
        documents,
        refuses_writes,
        problems,
    }
}

/// What `a` holds that `b` does not, item by item (as text).
fn own<T: std::fmt::Debug>(a: &T, b: &T) -> Vec<String> {
    let lines =
        |x: &T| -> BTreeSet<String> { format!("{x:#?}").lines().map(str::to_owned).collect() };
    let theirs = lines(b);
    let mut mine: Vec<String> = lines(a).difference(&theirs).cloned().collect();
    mine.sort();
    mine
}

/// A problem by kind and location: see the module's comment.
fn normalise(location: &str, detail: &str, note: bool) -> String {
    let note = if note { "note " } else { "" };
    let Some(rest) = location.strip_prefix("commit ") else {
        // Core's invariants and the object checks name no blamed commit.
        return format!("{note}{location}: {detail}");
    };
    let rest = rest.get(12..).unwrap_or(rest);
    let path = match rest.find("\"): ") {
        Some(at) if rest.starts_with(" by ") => &rest[at + 4..],
        _ => rest.strip_prefix(": ").unwrap_or(rest),
    };
    let detail = match detail.rfind(" (schema for ") {
        Some(at) if detail.ends_with(')') => &detail[..at],
        _ => detail,
    };
    if let Some((referring, missing)) = broken_reference(detail) {
        return format!("{note}reference: {referring} needs node '{missing}'");
    }
    if detail.contains(": dependency cycle ") {
        return format!("{note}a dependency cycle");
    }
    format!("{note}{path}: {detail}")
}

/// A broken reference, as (the referring entity, the missing node), from either side.
fn broken_reference(detail: &str) -> Option<(String, String)> {
    let between = |s: &str, a: &str, b: &str| -> Option<String> {
        let start = s.find(a)? + a.len();
        let end = start + s[start..].find(b)?;
        Some(s[start..end].to_owned())
    };
    if detail.starts_with("node '") && detail.contains("': is gone, but ") {
        let missing = between(detail, "node '", "': is gone")?;
        if let Some(edge) = between(detail, "is gone, but edge ", " still refers to it") {
            return Some((format!("edge {edge}"), missing));
        }
        let node = between(detail, "is gone, but node '", "' still depends on it")?;
        return Some((format!("node '{node}'"), missing));
    }
    if detail.starts_with("edge ") && detail.ends_with("' does not exist") {
        let edge = between(detail, "edge ", ": node '")?;
        let missing = between(detail, ": node '", "' does not exist")?;
        return Some((format!("edge {edge}"), missing));
    }
    if detail.starts_with("node '") && detail.ends_with("', which does not exist") {
        let node = between(detail, "node '", "': depends on node '")?;
        let missing = between(detail, "depends on node '", "', which does not exist")?;
        return Some((format!("node '{node}'"), missing));
    }
    None
}

/// Runs one case: the pushes, then the three handles compared.
fn run(pushes: &[Vec<Op>]) -> Result<(), TestCaseError> {
    run_then(pushes, None)
}

/// [`run`], with a last push whose root holds `.kgstore` twice (the base's first, or
/// second), if asked.
fn run_then(pushes: &[Vec<Op>], twice_named: Option<bool>) -> Result<(), TestCaseError> {
    let place = Place::new();
    copy_dir(template(), &place.repo);
    let jump = place.open();
    let step = place.open();
    let work = place.clone_to("work");
    let clone = Work {
        base: git_ok(&place.home, &work, &["rev-parse", "HEAD"])
            .trim()
            .to_owned(),
        work,
        home: place.home.clone(),
    };
    for (number, ops) in pushes.iter().enumerate() {
        clone.push(ops, number + 1);
        drop(step.read().unwrap());
    }
    if let Some(base_first) = twice_named {
        clone.push_twice_named_data(base_first, pushes.len() + 1);
        drop(step.read().unwrap());
    }
    // A store opened now starts from the base, remembered as sound.
    std::fs::write(
        place.repo.join("kgstore-verified"),
        format!("{}\n", clone.base),
    )
    .unwrap();
    let opened = place.open();
    std::fs::remove_file(place.repo.join("kgstore-verified")).unwrap();
    let whole = view(&place.open());
    for (handle, store) in [
        ("one refresh, base to tip", &jump),
        ("a refresh per push", &step),
        ("opened after the pushes", &opened),
    ] {
        let seen = view(store);
        let tip = || git_ok(&place.home, &place.repo, &["ls-tree", "-r", "main"]);
        prop_assert_eq!(
            own(&seen.graph, &whole.graph),
            own(&whole.graph, &seen.graph),
            "{}: the graph (each side's own); tree:\n{}",
            handle,
            tip()
        );
        prop_assert_eq!(
            own(&seen.documents, &whole.documents),
            own(&whole.documents, &seen.documents),
            "{}: the documents (each side's own); tree:\n{}",
            handle,
            tip()
        );
        prop_assert_eq!(
            (
                seen.refuses_writes,
                seen.problems
                    .difference(&whole.problems)
                    .collect::<Vec<_>>()
            ),
            (
                whole.refuses_writes,
                whole
                    .problems
                    .difference(&seen.problems)
                    .collect::<Vec<_>>()
            ),
            "{}: refusal and problems (each side's own); tree:\n{}",
            handle,
            tip()
        );
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("KGSTORE_GIT_REFRESH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

#[test]
fn a_refresh_from_a_sound_commit_reads_and_refuses_what_a_whole_load_of_the_tip_does() {
    if !have_git("a_refresh_from_a_sound_commit_reads_and_refuses_what_a_whole_load_does") {
        return;
    }
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    };
    let twice_named = prop::option::weighted(0.1, any::<bool>());
    proptest!(config, |(pushes in pushes(), twice_named in twice_named)| {
        run_then(&pushes, twice_named)?;
    });
}

/// The module's own normalisation, on the two sides of one broken reference.
#[test]
fn a_broken_reference_is_the_same_whichever_side_reports_it() {
    let from_refresh = normalise(
        "commit 0123456789ab by Other Person (\"push 1\"): .kgstore/nodes/aa/n0.json",
        "node 'n0': is gone, but edge n1 -[depends_on]-> n0 still refers to it",
        false,
    );
    let from_whole = normalise(
        "commit 0123456789ab by kgstore (\"kgstore: nodes\"): .kgstore/edges/bb/x.json",
        "edge n1 -[depends_on]-> n0: node 'n0' does not exist",
        false,
    );
    assert_eq!(from_refresh, from_whole);
    let dependency = normalise(
        "commit 0123456789ab: .kgstore/nodes/aa/n0.json",
        "node 'n0': is gone, but node 'n1' still depends on it",
        false,
    );
    let dependency_whole = normalise(
        "commit 0123456789ab by x (\"y\"): .kgstore/nodes/cc/n1.json",
        "node 'n1': depends on node 'n0', which does not exist",
        false,
    );
    assert_eq!(dependency, dependency_whole);
    assert_ne!(from_refresh, dependency);
}

/// Counter-example: with the attributes file gone (so the LFS patterns are kgstore's
/// default only while the marker is there), a push removing the marker changes how
/// `blobs/` reads, but touched no document: a refresh kept the documents it had.
#[test]
fn regression_removing_the_marker_without_attributes_rereads_the_documents() {
    if !have_git("regression_removing_the_marker_without_attributes_rereads_the_documents") {
        return;
    }
    run(&[vec![Op::DeleteAttributes], vec![Op::DeleteMarker]]).unwrap();
}

/// Counter-example: a document file whose path is not UTF-8 was listed under its
/// path with the bad bytes replaced, a key no file has: its history was never found,
/// so its times were those of whichever commit the documents were read at (a refresh
/// that did not reread them kept older ones than a whole load). It is not a document.
#[test]
fn regression_a_file_whose_path_is_not_utf8_is_not_a_document() {
    if !have_git("regression_a_file_whose_path_is_not_utf8_is_not_a_document") {
        return;
    }
    let place = Place::new();
    copy_dir(template(), &place.repo);
    let work = place.clone_to("work");
    let clone = Work {
        base: String::new(),
        work,
        home: place.home.clone(),
    };
    clone.push(&[Op::NonUtf8 { in_data: false }], 1);
    let store = place.open();
    let keys: Vec<String> = store
        .list_documents(&DocumentQuery::prefix("notes/"))
        .unwrap()
        .documents
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, ["notes/d0.txt"]);
    let problems = common::problems(&store);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("notes/caf")
                && p.contains("is not a document: its path is not UTF-8")),
        "{problems:#?}"
    );
    // Documents' problems never stop writes (the files are the user's).
    store.create_node(thing("after")).unwrap();
    run(&[
        vec![Op::NonUtf8 { in_data: false }],
        vec![Op::PutNode { node: 4, size: 4 }],
    ])
    .unwrap();
}

/// Counter-example: a root tree naming `.kgstore` twice (made with `git mktree`, which
/// allows it, and pushed: a push does not refuse it). The whole load looked the folder
/// up by name and found the first entry, a refresh's diff kept the last: two different
/// graphs. Every reader now sees the first, `check` reports the second, and writes are
/// refused (kgstore's next commit kept both entries).
#[test]
fn regression_a_tree_naming_the_data_folder_twice_reads_the_first_everywhere() {
    if !have_git("regression_a_tree_naming_the_data_folder_twice") {
        return;
    }
    for base_first in [false, true] {
        run_then(
            &[vec![
                Op::DeleteNode { node: 2 },
                Op::PutEdge {
                    from: 4,
                    to: 0,
                    depends: false,
                },
            ]],
            Some(base_first),
        )
        .unwrap();
    }
    let place = Place::new();
    copy_dir(template(), &place.repo);
    let work = place.clone_to("work");
    let clone = Work {
        base: git_ok(&place.home, &work, &["rev-parse", "HEAD"])
            .trim()
            .to_owned(),
        work,
        home: place.home.clone(),
    };
    clone.push_twice_named_data(false, 1);
    let store = place.open();
    let problems = common::problems(&store);
    assert!(
        problems
            .iter()
            .any(|p| p.contains(".kgstore (") && p.contains("second entry of that name")),
        "{problems:#?}"
    );
    // kgstore's next commit would keep both entries: nothing is built on such a tree.
    assert!(
        problems
            .iter()
            .any(|p| p.contains(".kgstore: is named twice in its tree")),
        "{problems:#?}"
    );
    assert_eq!(
        store.create_node(thing("refused")).unwrap_err().kind(),
        kgstore_core::ErrorKind::Corrupt
    );
}
