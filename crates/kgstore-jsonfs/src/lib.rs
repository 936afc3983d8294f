//! kgstore's JSON-files backend: a knowledge graph kept as one pretty-printed
//! JSON file per node, edge and schema, in sharded folders that a person can read
//! and diff under git, crash-safe and atomic per transaction.
//!
//! ```text
//! store/
//!   kgstore-jsonfs.json          format marker: {"format": "kgstore-jsonfs", "version": 6}
//!   LOCK                         lock file: a writer's pid while it holds the lock
//!   .gitignore                   keeps LOCK, journal/ and temporary files out of git
//!   nodes/3f/serde.json          one file per node, sharded by a hash of its name
//!   edges/a0/kgstore,depends_on,serde.json
//!   schemas/node_type/crate.json
//!   schemas/relation_type/depends_on.json
//!   events/log/000000000000/00000000000000000001.json   one file per event position
//!   events/state/streams/3f/orders.json                  the event store's keyed state
//!   journal/                     a commit's staged files and journal, while it is applied
//!   journal/log/                 the commit log: what recent transactions changed
//! ```
//!
//! Every write goes to a temporary file, is synced, renamed into place, and the
//! folder synced. A transaction of several files is made atomic by a journal: a
//! crash before its commit mark leaves no trace, a crash after it is rolled forward
//! by the next writer. The whole graph is read into memory at open (in parallel),
//! so reads never touch the disk. Several processes share a store: writers take
//! turns one transaction at a time through a lock file, readers take no lock and
//! never wait, and every handle applies what other processes committed, from the
//! commit log, at its next transaction. See `docs/jsonfs.md` for the format and
//! the protocol.
//!
//! ```
//! use kgstore_core::{GraphRead, Node, Store};
//! use kgstore_jsonfs::{Durability, JsonFsBackend, JsonFsOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let options = JsonFsOptions::default().durability(Durability::Immediate);
//! let store = Store::new(JsonFsBackend::open(dir.path(), options)?);
//! store.create_node(Node::new("serde", "crate")?)?;
//! assert_eq!(store.get_node("serde")?.metadata.version, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod backend;
mod backup;
mod commit;
mod docs;
pub mod events;
pub mod fault;
mod files;
mod fsio;
mod image;
mod inspect;
mod journal;
mod layout;
mod lock;
mod log;
pub mod names;
mod observe;
mod options;
mod recovery;
mod scan;
mod snapshot;

pub use backend::JsonFsBackend;
pub use inspect::{Inspection, inspect};
pub use layout::{FORMAT, MARKER, OLDEST_VERSION, RecoveryReport, VERSION};
pub use lock::LOCK_FILE;
pub use log::{LARGE_RECORD, LOG_DIR, RETAIN, RETAIN_LARGE};
pub use options::{DEFAULT_LOCK_TIMEOUT, Durability, JsonFsOptions};

/// The prefix of every temporary file name; open removes any such file it finds.
pub const TEMP_PREFIX: &str = files::TEMP_PREFIX;
