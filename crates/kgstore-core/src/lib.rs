//! The core of kgstore, an embeddable knowledge-graph store: the graph model,
//! its semantics written once above a small backend contract, the graph
//! algorithms, the in-memory reference backend and the shared behaviour suite.
//!
//! Most applications depend on the `kgstore` facade crate, which re-exports all
//! of this and opens persistent stores by URL.
//!
//! ```
//! use kgstore_core::{Edge, ErrorKind, GraphRead, Node, RelationType, Store};
//! use serde_json::json;
//!
//! let store = Store::memory();
//!
//! // Nodes and edges in one transaction: all of it is committed, or none.
//! store.write(|tx| {
//!     tx.create_node(Node::new("serde", "crate")?.with_attribute("license", json!("MIT")))?;
//!     tx.create_node(Node::new("serde_json", "crate")?.with_dependency("serde"))?;
//!     tx.create_node(Node::new("kgstore", "crate")?.with_dependency("serde_json"))?;
//!     tx.create_edge(Edge::new("kgstore", RelationType::DependsOn, "serde_json")?)?;
//!     Ok(())
//! })?;
//!
//! // Invalid input is refused with every violation and where it is.
//! let err = store.create_node(Node {
//!     node_type: "Not A Type".into(),
//!     ..Node::new("bad", "crate")?
//! }).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Validation);
//! assert!(err.to_string().contains("/node_type"), "{err}");
//!
//! // Dependencies resolve in build order, dependencies first.
//! assert_eq!(store.resolve_dependencies("kgstore")?, ["serde", "serde_json"]);
//! assert_eq!(store.dependents("serde")?, ["serde_json", "kgstore"]);
//! # Ok::<(), kgstore_core::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod algo;
pub mod backend;
pub mod documents;
pub mod durability;
pub mod entity_file;
pub mod error;
pub mod events;
pub mod filter;
pub mod history;
pub mod memory;
pub mod model;
pub mod names;
pub mod observe;
pub mod schema;
pub mod search;
mod store;
pub mod timestamp;
pub mod validate;

#[cfg(feature = "test-suite")]
pub mod suite;

pub use algo::{Path, PathOptions, Reach, ReachOptions, Stats, TraverseOptions, Visit};
pub use backend::{Backend, Problem, ReadTxn, Severity, WriteTxn};
pub use documents::{
    Document, DocumentMeta, DocumentPage, DocumentQuery, DocumentRead, DocumentReader,
    DocumentWrite, Precondition, WriteOptions,
};
pub use durability::Durability;
pub use error::{Error, ErrorKind, Result, Violation};
pub use filter::{AttrEq, Cursor, Direction, EdgeFilter, NodeFilter, Page, PageRequest};
pub use history::{Change, Diff, EntityKey, LogQuery, Revision, Signature};
pub use memory::{GraphState, MemoryBackend};
pub use model::{Edge, EdgeKey, EdgeMetadata, Node, NodeMetadata, RelationType};
pub use observe::{BackendFigure, FigureKind, Histogram, Metrics, Observer, OpMetrics, Operation};
pub use schema::{CompiledSchema, SchemaTarget};
pub use search::{MatchKind, SearchField, SearchHit, SearchQuery};
pub use store::{
    BulkImport, CheckReport, DeleteReport, GraphRead, OnDependents, ReadTx, SideReadTx, Store,
    WriteTx, check_changes,
};
pub use timestamp::{Timestamp, TimestampWriter};

/// The JSON crate kgstore's attributes and schemas are made of.
pub use serde_json;

/// The names most programs need: `use kgstore_core::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Direction, DocumentQuery, DocumentRead, Edge, EdgeFilter, EdgeKey, Error, ErrorKind,
        GraphRead, Node, NodeFilter, OnDependents, PageRequest, PathOptions, ReachOptions,
        RelationType, Result, SchemaTarget, SearchQuery, Store, TraverseOptions,
    };
}
