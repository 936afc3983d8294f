//! Entities and relations as the MCP memory server's tools carry them, and how
//! they map onto kgstore's nodes and edges.
//!
//! The mapping is the memory-file importer's (`kgstore::formats::entity_node`
//! and `relation_edge`): an entity's type becomes an identifier with the
//! original spelling kept under the attribute `mcp`, a relation's type likewise,
//! so `kgstore import --format mcp` and this server read and write the same store.

use kgstore::formats::{entity_type_of, relation_type_of};
use kgstore::{Edge, Node};
use serde::{Deserialize, Serialize};

/// An entity as the tools receive it.
#[derive(Clone, Debug, Deserialize)]
pub struct EntityIn {
    /// Its name (the node's name).
    pub name: String,
    /// Its type, as the client spells it.
    #[serde(rename = "entityType")]
    pub entity_type: String,
    /// Its observations.
    pub observations: Vec<String>,
}

/// A relation as the tools receive it.
#[derive(Clone, Debug, Deserialize)]
pub struct RelationIn {
    /// Where it starts.
    pub from: String,
    /// Where it ends.
    pub to: String,
    /// Its type, as the client spells it.
    #[serde(rename = "relationType")]
    pub relation_type: String,
}

/// An entity as the tools answer with it: the official field order, so that the
/// text rendering is the official server's byte for byte.
#[derive(Clone, Debug, Serialize)]
pub struct EntityOut<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its type as the client spelled it.
    #[serde(rename = "entityType")]
    pub entity_type: &'a str,
    /// Its observations; left out of names-only answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observations: Option<&'a [String]>,
}

impl<'a> EntityOut<'a> {
    /// A node as an entity, with or without its observations.
    pub fn of(node: &'a Node, names_only: bool) -> Self {
        Self {
            name: &node.name,
            entity_type: entity_type_of(node),
            observations: (!names_only).then_some(node.observations.as_slice()),
        }
    }

    /// An entity as the client sent it.
    pub fn echo(entity: &'a EntityIn) -> Self {
        Self {
            name: &entity.name,
            entity_type: &entity.entity_type,
            observations: Some(&entity.observations),
        }
    }
}

/// A relation as the tools answer with it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RelationOut<'a> {
    /// Where it starts.
    pub from: &'a str,
    /// Where it ends.
    pub to: &'a str,
    /// Its type as the client spelled it.
    #[serde(rename = "relationType")]
    pub relation_type: &'a str,
}

impl<'a> RelationOut<'a> {
    /// An edge as a relation.
    pub fn of(edge: &'a Edge) -> Self {
        Self {
            from: &edge.from,
            to: &edge.to,
            relation_type: relation_type_of(edge),
        }
    }

    /// A relation as the client sent it.
    pub fn echo(relation: &'a RelationIn) -> Self {
        Self {
            from: &relation.from,
            to: &relation.to,
            relation_type: &relation.relation_type,
        }
    }
}

/// Entities with the relations that touch them: what `read_graph`,
/// `search_nodes` and `open_nodes` answer, with kgstore's page cursor.
#[derive(Debug, Serialize)]
pub struct GraphOut<'a> {
    /// The entities, by name.
    pub entities: Vec<EntityOut<'a>>,
    /// The relations, by (from, type identifier, to).
    pub relations: Vec<RelationOut<'a>>,
    /// Where the next page starts, when there is one.
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<'a> GraphOut<'a> {
    /// The answer for a page of nodes and their edges.
    pub fn of(
        nodes: &'a [Node],
        edges: &'a [Edge],
        names_only: bool,
        next: Option<String>,
    ) -> Self {
        Self {
            entities: nodes.iter().map(|n| EntityOut::of(n, names_only)).collect(),
            relations: edges.iter().map(RelationOut::of).collect(),
            next_cursor: next,
        }
    }
}
