//! kgstore's SQLite backend, the default one: a whole knowledge graph in one
//! SQLite file, ACID, safe to share between processes, close to raw SQLite speed.
//!
//! [`SqliteBackend::open`] gives a backend; [`kgstore_core::Store::new`] puts
//! kgstore's semantics (validation, versions, integrity, cycles) on top of it.
//!
//! ```
//! use kgstore_core::{Edge, GraphRead, Node, RelationType, Store};
//! use kgstore_sqlite::{Durability, SqliteBackend, SqliteOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let options = SqliteOptions::default().durability(Durability::Relaxed);
//! let store = Store::new(SqliteBackend::open(dir.path().join("kg.db"), options)?);
//! store.write(|tx| {
//!     tx.create_node(Node::new("kgstore", "crate")?)?;
//!     tx.create_node(Node::new("rusqlite", "crate")?)?;
//!     tx.create_edge(Edge::new("kgstore", RelationType::DependsOn, "rusqlite")?)?;
//!     Ok(())
//! })?;
//! assert_eq!(store.count_edges()?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The file's format, the connection settings, how processes share a file and
//! what each native override does are described in `docs/sqlite.md`.
// Denied rather than forbidden: `perf::db_status` is the one `unsafe` call (an FFI
// function rusqlite does not wrap), allowed where it is.
#![deny(unsafe_code)]

mod backend;
mod canonical;
mod codec;
mod documents;
mod error;
mod events;
mod held;
mod maintenance;
mod options;
mod perf;
mod read;
mod scan;
pub mod schema;
mod search;
mod write;

pub use backend::{ConnectionSettings, Settings, SqliteBackend};
pub use documents::CHUNK as DOCUMENT_CHUNK;
pub use error::SqliteError;
pub use options::{Durability, SqliteOptions};
