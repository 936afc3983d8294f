//! The nine tools of the official memory server, each one kgstore transaction.
//!
//! Semantics follow the official server's `main` where it is stricter than its
//! release (relations need both entities; repeats within one call are skipped;
//! deletions report what they did not find), and kgstore's model elsewhere:
//! names follow kgstore's rules, answers come a page at a time in name order
//! (`search_nodes`: in rank order, by kgstore's ranked full-text search).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;

use kgstore::formats::{entity_node, relation_edge, relation_type_of};
use kgstore::{
    Cursor, Direction, Edge, EdgeKey, Error, GraphRead, Node, NodeFilter, OnDependents,
    PageRequest, SearchQuery, Store, validate,
};
use serde::{Deserialize, Serialize};
use serde_json::Map;

use super::Outcome;
use crate::mapping::{EntityIn, EntityOut, GraphOut, RelationIn, RelationOut};

#[derive(Deserialize)]
pub(super) struct CreateEntities {
    entities: Vec<EntityIn>,
}

#[derive(Deserialize)]
pub(super) struct CreateRelations {
    relations: Vec<RelationIn>,
}

#[derive(Deserialize)]
pub(super) struct ObservationsIn {
    #[serde(rename = "entityName")]
    entity_name: String,
    contents: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct AddObservations {
    observations: Vec<ObservationsIn>,
}

#[derive(Deserialize)]
pub(super) struct DeleteEntities {
    #[serde(rename = "entityNames")]
    entity_names: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct DeletionIn {
    #[serde(rename = "entityName")]
    entity_name: String,
    observations: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct DeleteObservations {
    deletions: Vec<DeletionIn>,
}

#[derive(Deserialize)]
pub(super) struct DeleteRelations {
    relations: Vec<RelationIn>,
}

/// kgstore's additions to the reading tools.
#[derive(Deserialize)]
pub(super) struct Paging {
    limit: Option<usize>,
    cursor: Option<String>,
    #[serde(rename = "namesOnly", default)]
    names_only: bool,
}

impl Paging {
    fn request(&self, default_limit: usize) -> Result<PageRequest, Error> {
        let cursor = self.cursor.as_deref().map(Cursor::from_str).transpose()?;
        Ok(PageRequest::first(self.limit.unwrap_or(default_limit)).after(cursor))
    }

    /// A ranked search for `text` with this page size and cursor.
    fn search(&self, text: String, default_limit: usize) -> Result<SearchQuery, Error> {
        let page = self.request(default_limit)?;
        Ok(SearchQuery::new(text).limit(page.limit).after(page.cursor))
    }
}

#[derive(Deserialize)]
pub(super) struct ReadGraph {
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Deserialize)]
pub(super) struct SearchNodes {
    query: String,
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Deserialize)]
pub(super) struct OpenNodes {
    names: Vec<String>,
    #[serde(flatten)]
    paging: Paging,
}

/// Whether a name could be a node's: a name outside kgstore's rules names nothing.
fn could_exist(name: &str) -> bool {
    validate::name(name).is_ok()
}

fn find(tx: &impl GraphRead, name: &str) -> Result<Option<Node>, Error> {
    if could_exist(name) {
        tx.find_node(name)
    } else {
        Ok(None)
    }
}

pub(super) fn create_entities(store: &Store, args: CreateEntities) -> Result<Outcome, Error> {
    let created = store.write(|tx| {
        let mut seen = HashSet::new();
        let mut created = Vec::new();
        let mut nodes = Vec::new();
        for entity in &args.entities {
            if !seen.insert(entity.name.as_str()) {
                continue;
            }
            let node = entity_node(
                entity.name.clone(),
                &entity.entity_type,
                entity.observations.clone(),
                Map::new(),
            )?;
            if tx.contains_node(&entity.name)? {
                continue;
            }
            nodes.push(node);
            created.push(EntityOut::echo(entity));
        }
        tx.create_nodes(nodes)?;
        Ok(created)
    })?;
    let changed = !created.is_empty();
    #[derive(Serialize)]
    struct Structured<'a> {
        entities: &'a [EntityOut<'a>],
    }
    Outcome::json(&created, &Structured { entities: &created }, changed)
}

/// Two spellings of one relation type that kgstore cannot hold side by side.
fn spelling_clash(relation: &RelationIn, held: &str, identifier: &str) -> Error {
    Error::invalid_input(
        format!(
            "relation {} -[{}]-> {}",
            relation.from, relation.relation_type, relation.to
        ),
        format!(
            "kgstore keeps one relation per (from, type, to) with the type as an identifier, and \
             '{held}' between these entities already has the identifier '{identifier}'"
        ),
    )
}

pub(super) fn create_relations(store: &Store, args: CreateRelations) -> Result<Outcome, Error> {
    let created = store.write(|tx| {
        let mut batch: BTreeMap<EdgeKey, &str> = BTreeMap::new();
        let mut created = Vec::new();
        let mut edges = Vec::new();
        for relation in &args.relations {
            for end in [&relation.from, &relation.to] {
                if find(tx, end)?.is_none() {
                    return Err(Error::node_not_found(end.as_str()));
                }
            }
            let edge = relation_edge(
                relation.from.clone(),
                &relation.relation_type,
                relation.to.clone(),
                Map::new(),
            )?;
            let key = edge.key();
            let held = match batch.get(&key) {
                Some(spelled) => Some((*spelled).to_owned()),
                None => tx.find_edge(&key)?.map(|e| relation_type_of(&e).to_owned()),
            };
            match held {
                Some(spelled) if spelled == relation.relation_type => continue,
                Some(spelled) => {
                    return Err(spelling_clash(
                        relation,
                        &spelled,
                        key.relation_type.as_str(),
                    ));
                }
                None => {}
            }
            batch.insert(key, &relation.relation_type);
            edges.push(edge);
            created.push(RelationOut::echo(relation));
        }
        tx.create_edges(edges)?;
        Ok(created)
    })?;
    let changed = !created.is_empty();
    #[derive(Serialize)]
    struct Structured<'a> {
        relations: &'a [RelationOut<'a>],
    }
    Outcome::json(
        &created,
        &Structured {
            relations: &created,
        },
        changed,
    )
}

#[derive(Serialize)]
struct Added<'a> {
    #[serde(rename = "entityName")]
    entity_name: &'a str,
    #[serde(rename = "addedObservations")]
    added_observations: Vec<String>,
}

pub(super) fn add_observations(store: &Store, args: AddObservations) -> Result<Outcome, Error> {
    let results = store.write(|tx| {
        let mut results = Vec::new();
        for item in &args.observations {
            let Some(mut node) = find(tx, &item.entity_name)? else {
                return Err(Error::node_not_found(item.entity_name.as_str()));
            };
            let mut added = Vec::new();
            for content in &item.contents {
                if !node.observations.contains(content) {
                    node.observations.push(content.clone());
                    added.push(content.clone());
                }
            }
            if !added.is_empty() {
                tx.update_node(node, None)?;
            }
            results.push(Added {
                entity_name: &item.entity_name,
                added_observations: added,
            });
        }
        Ok(results)
    })?;
    let changed = results.iter().any(|r| !r.added_observations.is_empty());
    #[derive(Serialize)]
    struct Structured<'a> {
        results: &'a [Added<'a>],
    }
    Outcome::json(&results, &Structured { results: &results }, changed)
}

pub(super) fn delete_entities(store: &Store, args: DeleteEntities) -> Result<Outcome, Error> {
    let names = &args.entity_names;
    let (deleted, not_found) = store.write(|tx| {
        let mut present = BTreeSet::new();
        for name in names {
            if find(tx, name)?.is_some() {
                present.insert(name.as_str());
            }
        }
        for name in &present {
            // A node other kgstore users made a dependency of others is detached
            // from them, as its relations are removed: the entity goes, the rest stays.
            tx.delete_node(name, OnDependents::Detach)?;
        }
        let deleted = names
            .iter()
            .filter(|n| present.contains(n.as_str()))
            .count();
        let not_found: Vec<&str> = names
            .iter()
            .filter(|n| !present.contains(n.as_str()))
            .map(String::as_str)
            .collect();
        Ok((deleted, not_found))
    })?;
    let message = if not_found.is_empty() {
        "Entities deleted successfully".to_owned()
    } else {
        format!(
            "Deleted {deleted} of {} entities. Not found: {}",
            names.len(),
            not_found.join(", ")
        )
    };
    Ok(Outcome::message(message, deleted > 0))
}

pub(super) fn delete_observations(
    store: &Store,
    args: DeleteObservations,
) -> Result<Outcome, Error> {
    let (deleted, missing) = store.write(|tx| {
        let mut deleted = 0;
        let mut missing = Vec::new();
        for item in &args.deletions {
            let Some(mut node) = find(tx, &item.entity_name)? else {
                missing.push(item.entity_name.as_str());
                continue;
            };
            // Counted by what was asked: an observation stored twice is one found.
            let found = item
                .observations
                .iter()
                .filter(|o| node.observations.contains(o))
                .count();
            if found > 0 {
                deleted += found;
                node.observations.retain(|o| !item.observations.contains(o));
                tx.update_node(node, None)?;
            }
        }
        Ok((deleted, missing))
    })?;
    let requested: usize = args.deletions.iter().map(|d| d.observations.len()).sum();
    let message = if deleted == requested {
        "Observations deleted successfully".to_owned()
    } else {
        let mut message = format!("Deleted {deleted} of {requested} observations.");
        if !missing.is_empty() {
            message.push_str(&format!(" Entities not found: {}", missing.join(", ")));
        }
        message
    };
    Ok(Outcome::message(message, deleted > 0))
}

pub(super) fn delete_relations(store: &Store, args: DeleteRelations) -> Result<Outcome, Error> {
    let deleted = store.write(|tx| {
        let mut deleted = 0;
        for relation in &args.relations {
            if !could_exist(&relation.from) || !could_exist(&relation.to) {
                continue;
            }
            let key = relation_edge(
                relation.from.clone(),
                &relation.relation_type,
                relation.to.clone(),
                Map::new(),
            )?
            .key();
            // Only the relation as spelled: another spelling with the same
            // identifier is another relation to the client.
            let matches = tx
                .find_edge(&key)?
                .is_some_and(|e| relation_type_of(&e) == relation.relation_type);
            if matches {
                tx.delete_edge(&key)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    })?;
    let requested = args.relations.len();
    let message = if deleted == requested {
        "Relations deleted successfully".to_owned()
    } else {
        format!("Deleted {deleted} of {requested} relations. The rest matched nothing.")
    };
    Ok(Outcome::message(message, deleted > 0))
}

/// The edges touching any of `nodes` (at least one end among them), by key.
fn edges_touching(reader: &impl GraphRead, nodes: &[Node]) -> Result<Vec<Edge>, Error> {
    let mut edges = BTreeMap::new();
    for node in nodes {
        for edge in reader.edges_of(&node.name, Direction::Both, &[])? {
            edges.entry(edge.key()).or_insert(edge);
        }
    }
    Ok(edges.into_values().collect())
}

fn graph_answer(
    nodes: &[Node],
    edges: &[Edge],
    names_only: bool,
    next: Option<Cursor>,
) -> Result<Outcome, Error> {
    let answer = GraphOut::of(nodes, edges, names_only, next.map(|c| c.to_string()));
    Outcome::json(&answer, &answer, false)
}

pub(super) fn read_graph(
    store: &Store,
    args: ReadGraph,
    default_limit: usize,
) -> Result<Outcome, Error> {
    let request = args.paging.request(default_limit)?;
    let snapshot = store.read()?;
    let page = snapshot.list_nodes(&NodeFilter::default(), &request)?;
    // Each relation once over all pages: with the page that holds its source.
    let mut edges = Vec::new();
    for node in &page.items {
        edges.extend(snapshot.edges_of(&node.name, Direction::Out, &[])?);
    }
    graph_answer(
        &page.items,
        &edges,
        args.paging.names_only,
        page.next_cursor,
    )
}

/// `search_nodes`: kgstore's ranked full-text search (`GraphRead::search`),
/// whose hits always include the official server's substring matches; the
/// entities come in rank order, the best first.
pub(super) fn search_nodes(
    store: &Store,
    args: SearchNodes,
    default_limit: usize,
) -> Result<Outcome, Error> {
    let query = args.paging.search(args.query, default_limit)?;
    let snapshot = store.read()?;
    let page = snapshot.search(&query)?;
    let nodes = page
        .items
        .iter()
        .map(|hit| snapshot.get_node(&hit.name))
        .collect::<Result<Vec<Node>, Error>>()?;
    let edges = edges_touching(&snapshot, &nodes)?;
    graph_answer(&nodes, &edges, args.paging.names_only, page.next_cursor)
}

pub(super) fn open_nodes(
    store: &Store,
    args: OpenNodes,
    default_limit: usize,
) -> Result<Outcome, Error> {
    let request = args.paging.request(default_limit)?;
    request.check()?;
    let after = request.cursor.as_ref().map(Cursor::node_name).transpose()?;
    let snapshot = store.read()?;
    let wanted: BTreeSet<&str> = args.names.iter().map(String::as_str).collect();
    let mut nodes = Vec::new();
    let mut next = None;
    for name in wanted
        .into_iter()
        .filter(|n| after.as_deref().is_none_or(|a| *n > a))
    {
        let Some(node) = find(&snapshot, name)? else {
            continue;
        };
        if nodes.len() == request.limit {
            next = nodes.last().map(|n: &Node| Cursor::after_node(&n.name));
            break;
        }
        nodes.push(node);
    }
    let edges = edges_touching(&snapshot, &nodes)?;
    graph_answer(&nodes, &edges, args.paging.names_only, next)
}

/// The whole graph from one snapshot, as `{entities, relations}` rendered like
/// the official server's resource (every entity and relation, no paging).
pub(super) fn whole_graph(store: &Store) -> Result<String, Error> {
    let snapshot = store.read()?;
    let mut nodes = Vec::new();
    let mut page = PageRequest::first(kgstore::filter::MAX_PAGE_LIMIT);
    loop {
        let got = snapshot.list_nodes(&NodeFilter::default(), &page)?;
        nodes.extend(got.items);
        match got.next_cursor {
            Some(c) => page = page.after(Some(c)),
            None => break,
        }
    }
    let mut edges = Vec::new();
    let mut page = PageRequest::first(kgstore::filter::MAX_PAGE_LIMIT);
    loop {
        let got = snapshot.list_edges(&kgstore::EdgeFilter::default(), &page)?;
        edges.extend(got.items);
        match got.next_cursor {
            Some(c) => page = page.after(Some(c)),
            None => break,
        }
    }
    super::pretty(&GraphOut::of(&nodes, &edges, false, None))
}
