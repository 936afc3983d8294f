//! The extra tools (`--extra-tools`): what kgstore's graph queries add to the
//! memory server's nine. Each reads one snapshot.

use std::collections::{BTreeMap, BTreeSet};

use kgstore::formats::{entity_type_of, relation_type_from};
use kgstore::{
    Direction, Edge, Error, GraphRead, PathOptions, RelationType, Store, TraverseOptions,
};
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::mapping::RelationOut;

/// The traversal's default number of entities.
const TRAVERSE_LIMIT: usize = 100;

fn direction(text: Option<&str>) -> Result<Direction, Error> {
    text.unwrap_or("both").parse()
}

fn relation_types(spelled: &[String]) -> Result<Vec<RelationType>, Error> {
    spelled.iter().map(|s| relation_type_from(s)).collect()
}

#[derive(Deserialize)]
pub(super) struct Traverse {
    name: String,
    depth: Option<usize>,
    direction: Option<String>,
    #[serde(rename = "relationTypes", default)]
    relation_types: Vec<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct Reached<'a> {
    name: &'a str,
    #[serde(rename = "entityType")]
    entity_type: &'a str,
    depth: usize,
}

pub(super) fn traverse(store: &Store, args: Traverse) -> Result<Outcome, Error> {
    let snapshot = store.read()?;
    let options = TraverseOptions {
        direction: direction(args.direction.as_deref())?,
        relations: relation_types(&args.relation_types)?,
        max_depth: args.depth.unwrap_or(1),
    };
    let mut visits = snapshot.traverse(&args.name, &options)?;
    let limit = args.limit.unwrap_or(TRAVERSE_LIMIT);
    let truncated = visits.len() > limit;
    visits.truncate(limit);
    let mut nodes = Vec::with_capacity(visits.len());
    for visit in &visits {
        nodes.push((snapshot.get_node(&visit.name)?, visit.depth));
    }
    let inside: BTreeSet<&str> = std::iter::once(args.name.as_str())
        .chain(visits.iter().map(|v| v.name.as_str()))
        .collect();
    let mut edges: BTreeMap<_, Edge> = BTreeMap::new();
    for name in &inside {
        for edge in snapshot.edges_of(name, Direction::Both, &options.relations)? {
            if inside.contains(edge.from.as_str()) && inside.contains(edge.to.as_str()) {
                edges.entry(edge.key()).or_insert(edge);
            }
        }
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        entities: Vec<Reached<'a>>,
        relations: Vec<RelationOut<'a>>,
        truncated: bool,
    }
    let answer = Answer {
        entities: nodes
            .iter()
            .map(|(node, depth)| Reached {
                name: &node.name,
                entity_type: entity_type_of(node),
                depth: *depth,
            })
            .collect(),
        relations: edges.values().map(RelationOut::of).collect(),
        truncated,
    };
    Outcome::json(&answer, &answer, false)
}

#[derive(Deserialize)]
pub(super) struct ShortestPath {
    from: String,
    to: String,
    direction: Option<String>,
    #[serde(rename = "relationTypes", default)]
    relation_types: Vec<String>,
    #[serde(rename = "maxHops")]
    max_hops: Option<usize>,
}

pub(super) fn shortest_path(store: &Store, args: ShortestPath) -> Result<Outcome, Error> {
    let snapshot = store.read()?;
    let options = PathOptions {
        direction: direction(args.direction.as_deref())?,
        relations: relation_types(&args.relation_types)?,
        weighted: false,
        max_depth: args.max_hops,
    };
    let path = snapshot.shortest_path(&args.from, &args.to, &options)?;
    let mut edges = Vec::new();
    if let Some(path) = &path {
        for key in &path.edges {
            edges.push(snapshot.get_edge(key)?);
        }
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        found: bool,
        path: &'a [String],
        relations: Vec<RelationOut<'a>>,
    }
    let answer = Answer {
        found: path.is_some(),
        path: path.as_ref().map_or(&[][..], |p| p.nodes.as_slice()),
        relations: edges.iter().map(RelationOut::of).collect(),
    };
    Outcome::json(&answer, &answer, false)
}

pub(super) fn graph_stats(store: &Store) -> Result<Outcome, Error> {
    let stats = store.stats()?;
    #[derive(Serialize)]
    struct Answer<'a> {
        entities: u64,
        relations: u64,
        #[serde(rename = "entityTypes")]
        entity_types: &'a BTreeMap<String, u64>,
        #[serde(rename = "relationTypes")]
        relation_types: &'a BTreeMap<String, u64>,
    }
    let answer = Answer {
        entities: stats.nodes,
        relations: stats.edges,
        entity_types: &stats.node_types,
        relation_types: &stats.relation_types,
    };
    Outcome::json(&answer, &answer, false)
}
