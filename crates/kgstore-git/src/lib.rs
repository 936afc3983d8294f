//! kgstore's git backend: a knowledge graph kept in a bare git repository, one commit
//! per write transaction, with history (the log of the store and of one entity,
//! reading at any revision, the difference of two revisions) and Git LFS for large
//! files that the real `git lfs` reads.
//!
//! ```text
//! kg.git/                            a bare repository (git clone shows the files)
//!   refs/heads/main                  the store's branch (default `main`)
//!   objects/                         commits, trees, blobs (loose, or packs)
//!   lfs/objects/aa/bb/<oid>          Git LFS objects
//!   kgstore.lock                     the writers' lock (one transaction at a time)
//! tree of each commit:
//!   .gitattributes                   LFS patterns (default `blobs/**`)
//!   .kgstore/kgstore-git.json        format marker
//!   .kgstore/nodes/3f/serde.json     one pretty JSON file per node, edge and schema
//!   .kgstore/edges/a0/kgstore,depends_on,serde.json
//!   .kgstore/schemas/node_type/crate.json
//! ```
//!
//! Objects and the branch are synced before a commit returns; the branch moves only
//! by a strict compare-and-swap; readers read an immutable commit and never wait;
//! writers of several processes take turns. A commit made by someone else (a `git
//! push` into the repository) is picked up by the next transaction and checked; what
//! it broke is reported by `check` with the commit and the path, and writes are
//! refused until it is fixed. See `docs/git.md`.
//!
//! ```
//! use kgstore_core::{GraphRead, Node, Store};
//! use kgstore_git::{GitBackend, GitOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("kg.git");
//! let store = Store::new(GitBackend::open(&path, GitOptions::default())?);
//! store.create_node(Node::new("serde", "crate")?)?;
//! drop(store);
//! let store = Store::new(GitBackend::open(&path, GitOptions::default())?);
//! assert_eq!(store.get_node("serde")?.metadata.version, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod backend;
mod docs;
pub mod fault;
mod fsio;
mod history;
mod init;
mod layout;
pub mod lfs;
mod lock;
mod maintenance;
mod objects;
mod options;
mod pack;
mod perf;
mod refs;
mod tree;
mod write;

pub use backend::GitBackend;
pub use options::{Durability, GitOptions, Identity};
