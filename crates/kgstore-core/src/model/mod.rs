//! The graph model: nodes, edges, relation types and their metadata.

mod edge;
mod node;
mod relation;

pub use edge::{Edge, EdgeKey, EdgeMetadata};
pub use node::{Node, NodeMetadata};
pub use relation::RelationType;
