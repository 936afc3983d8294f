//! Graph algorithms written once over [`ReadTxn`]: dependency resolution,
//! traversal, shortest paths and statistics.
//!
//! Each result has a fully specified order, so that a backend's native
//! override can be checked for equality with these reference versions.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::backend::ReadTxn;
use crate::error::{Error, Result};
use crate::filter::{Direction, EdgeFilter, NodeFilter};
use crate::model::{Edge, EdgeKey, RelationType};
use crate::validate;

/// Page size used when algorithms scan whole tables.
const SCAN_PAGE: usize = 1024;

/// Options of a k-hop traversal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraverseOptions {
    /// Which way to follow edges; bidirectional edges are followed both ways.
    pub direction: Direction,
    /// Follow only these relations (all if empty).
    pub relations: Vec<RelationType>,
    /// How many hops at most (at least 1).
    pub max_depth: usize,
}

impl Default for TraverseOptions {
    fn default() -> Self {
        Self {
            direction: Direction::Out,
            relations: Vec::new(),
            max_depth: 1,
        }
    }
}

impl TraverseOptions {
    /// Traverses up to `max_depth` hops along outgoing edges.
    pub fn depth(max_depth: usize) -> Self {
        Self {
            max_depth,
            ..Self::default()
        }
    }

    /// Sets the direction.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Adds a relation to follow.
    pub fn relation(mut self, relation: RelationType) -> Self {
        self.relations.push(relation);
        self
    }
}

/// Which nodes a k-hop [reach](reach) answers with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// Every node 1 to `hops` hops away, the start excluded: the nodes
    /// [`traverse`] visits.
    #[default]
    Within,
    /// Every node at the end of a walk of exactly `hops` edges. A walk may repeat
    /// nodes, so the start and nodes nearer than `hops` count when a walk of that
    /// length ends there ("the distinct endpoints of two-edge walks").
    Exactly,
}

/// Options of a k-hop reach: the nodes, or their number, that `hops` hops lead to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReachOptions {
    /// Which way to follow edges; bidirectional edges are followed both ways (as
    /// [`traverse`] follows them).
    pub direction: Direction,
    /// Follow only these relations (all if empty).
    pub relations: Vec<RelationType>,
    /// How many hops (at least 1).
    pub hops: usize,
    /// Within `hops` hops, or at the end of walks of exactly `hops` edges.
    pub reach: Reach,
}

impl Default for ReachOptions {
    fn default() -> Self {
        Self {
            direction: Direction::Out,
            relations: Vec::new(),
            hops: 1,
            reach: Reach::Within,
        }
    }
}

impl ReachOptions {
    /// Every node within `hops` hops along outgoing edges.
    pub fn within(hops: usize) -> Self {
        Self {
            hops,
            ..Self::default()
        }
    }

    /// Every node at the end of a walk of exactly `hops` outgoing edges.
    pub fn exactly(hops: usize) -> Self {
        Self {
            hops,
            reach: Reach::Exactly,
            ..Self::default()
        }
    }

    /// Sets the direction.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Adds a relation to follow.
    pub fn relation(mut self, relation: RelationType) -> Self {
        self.relations.push(relation);
        self
    }

    /// The same walk as traversal options (direction, relations, `hops` as the depth).
    pub fn traverse_options(&self) -> TraverseOptions {
        TraverseOptions {
            direction: self.direction,
            relations: self.relations.clone(),
            max_depth: self.hops,
        }
    }
}

/// A node reached by a traversal, at its smallest distance from the start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// The node's name.
    pub name: String,
    /// Hops from the start (≥ 1).
    pub depth: usize,
}

/// Options of a shortest-path search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathOptions {
    /// Which way to follow edges; bidirectional edges are followed both ways.
    pub direction: Direction,
    /// Follow only these relations (all if empty).
    pub relations: Vec<RelationType>,
    /// Minimise the sum of edge weights instead of the number of hops.
    pub weighted: bool,
    /// Give up on paths longer than this many hops (hop searches only).
    pub max_depth: Option<usize>,
}

impl Default for PathOptions {
    fn default() -> Self {
        Self {
            direction: Direction::Out,
            relations: Vec::new(),
            weighted: false,
            max_depth: None,
        }
    }
}

impl PathOptions {
    /// Fewest hops along outgoing edges.
    pub fn hops() -> Self {
        Self::default()
    }

    /// Least total weight along outgoing edges.
    pub fn weighted() -> Self {
        Self {
            weighted: true,
            ..Self::default()
        }
    }

    /// Sets the direction.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Adds a relation to follow.
    pub fn relation(mut self, relation: RelationType) -> Self {
        self.relations.push(relation);
        self
    }
}

/// A path between two nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Path {
    /// The nodes from start to end, both included.
    pub nodes: Vec<String>,
    /// The edges followed, as stored (a bidirectional or incoming edge may point backwards).
    pub edges: Vec<EdgeKey>,
    /// Number of hops, or the sum of weights for a weighted search.
    pub cost: f64,
}

/// Counts of what a store holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Number of nodes.
    pub nodes: u64,
    /// Number of edges.
    pub edges: u64,
    /// Number of registered schemas.
    pub schemas: u64,
    /// Number of dependency links (sum of the lengths of every node's `dependencies`).
    pub dependencies: u64,
    /// Nodes per node type.
    pub node_types: BTreeMap<String, u64>,
    /// Edges per relation type.
    pub relation_types: BTreeMap<String, u64>,
}

/// The neighbours reachable in one hop, with the edge used, as traversals see them:
/// edges in the asked direction, plus bidirectional edges the other way. By edge key.
pub fn hop<T: ReadTxn + ?Sized>(
    txn: &T,
    name: &str,
    direction: Direction,
    relations: &[RelationType],
) -> Result<Vec<(Edge, String)>> {
    let edges = txn.edges_of(name, Direction::Both, relations)?;
    let mut out = Vec::with_capacity(edges.len());
    for edge in edges {
        let follow = match direction {
            Direction::Both => true,
            Direction::Out => edge.from == name || edge.metadata.bidirectional,
            Direction::In => edge.to == name || edge.metadata.bidirectional,
        };
        if follow {
            let next = if edge.from == name {
                edge.to.clone()
            } else {
                edge.from.clone()
            };
            out.push((edge, next));
        }
    }
    Ok(out)
}

/// The name at the other end of each edge [`ReadTxn::edges_of`] lists, one per
/// edge and in its order (a self-loop gives the node's own name); `None` when the
/// node does not exist. The reference for [`ReadTxn::neighbour_names`].
pub fn neighbour_names<T: ReadTxn + ?Sized>(
    txn: &T,
    name: &str,
    direction: Direction,
    relations: &[RelationType],
) -> Result<Option<Vec<String>>> {
    let Some(edges) = edges_of_node(txn, name, direction, relations)? else {
        return Ok(None);
    };
    Ok(Some(
        edges
            .into_iter()
            .map(|edge| {
                if edge.from == name {
                    edge.to
                } else {
                    edge.from
                }
            })
            .collect(),
    ))
}

/// [`ReadTxn::edges_of`] for a node that exists; `None` when it does not. The
/// reference for [`ReadTxn::edges_of_node`].
pub fn edges_of_node<T: ReadTxn + ?Sized>(
    txn: &T,
    name: &str,
    direction: Direction,
    relations: &[RelationType],
) -> Result<Option<Vec<Edge>>> {
    if !txn.contains_node(name)? {
        return Ok(None);
    }
    txn.edges_of(name, direction, relations).map(Some)
}

/// The nodes `options.hops` hops lead to from `start` (see [`Reach`]), by name;
/// `None` when `start` does not exist. Hops follow [`hop`], as traversals do. Zero
/// hops reach nothing within, and exactly the start. The reference for
/// [`ReadTxn::reach`].
pub fn reach<T: ReadTxn + ?Sized>(
    txn: &T,
    start: &str,
    options: &ReachOptions,
) -> Result<Option<Vec<String>>> {
    if !txn.contains_node(start)? {
        return Ok(None);
    }
    let names = match options.reach {
        Reach::Within => {
            let mut names: Vec<String> = traverse(txn, start, &options.traverse_options())?
                .into_iter()
                .map(|visit| visit.name)
                .collect();
            names.sort_unstable();
            names
        }
        Reach::Exactly => {
            let mut frontier: BTreeSet<String> = BTreeSet::from([start.to_owned()]);
            for _ in 0..options.hops {
                let mut next = BTreeSet::new();
                for name in &frontier {
                    for (_, neighbour) in hop(txn, name, options.direction, &options.relations)? {
                        next.insert(neighbour);
                    }
                }
                frontier = next;
                if frontier.is_empty() {
                    break;
                }
            }
            frontier.into_iter().collect()
        }
    };
    Ok(Some(names))
}

/// Breadth-first traversal: every node within `max_depth` hops of `start` (not
/// `start` itself), at its smallest depth, ordered by depth then name.
pub fn traverse<T: ReadTxn + ?Sized>(
    txn: &T,
    start: &str,
    options: &TraverseOptions,
) -> Result<Vec<Visit>> {
    let mut seen: BTreeSet<String> = BTreeSet::from([start.to_owned()]);
    let mut frontier = vec![start.to_owned()];
    let mut out = Vec::new();
    for depth in 1..=options.max_depth {
        let mut next = BTreeSet::new();
        for name in &frontier {
            for (_, neighbour) in hop(txn, name, options.direction, &options.relations)? {
                if !seen.contains(&neighbour) {
                    next.insert(neighbour);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        for name in &next {
            seen.insert(name.clone());
            out.push(Visit {
                name: name.clone(),
                depth,
            });
        }
        frontier = next.into_iter().collect();
    }
    Ok(out)
}

/// [`ReadTxn::traverse`] from a node that exists; `None` when `start` does not
/// exist. The reference for [`ReadTxn::traverse_node`].
pub fn traverse_node<T: ReadTxn + ?Sized>(
    txn: &T,
    start: &str,
    options: &TraverseOptions,
) -> Result<Option<Vec<Visit>>> {
    if !txn.contains_node(start)? {
        return Ok(None);
    }
    txn.traverse(start, options).map(Some)
}

/// A shortest path from `from` to `to`, or `None` if there is none.
///
/// Unweighted: breadth-first, level by level in name order, neighbours in edge-key
/// order, first discovery wins. Weighted: Dijkstra over edge weights, ties broken
/// by name. A path from a node to itself is that node alone, at cost 0.
pub fn shortest_path<T: ReadTxn + ?Sized>(
    txn: &T,
    from: &str,
    to: &str,
    options: &PathOptions,
) -> Result<Option<Path>> {
    if from == to {
        return Ok(Some(Path {
            nodes: vec![from.to_owned()],
            edges: Vec::new(),
            cost: 0.0,
        }));
    }
    // Each reached node's predecessor and the edge used.
    let mut parent: HashMap<String, (String, EdgeKey)> = HashMap::new();
    if options.weighted {
        if options.max_depth.is_some() {
            return Err(Error::invalid_input(
                "path options",
                "a hop limit cannot be combined with a weighted search",
            ));
        }
        let mut best: HashMap<String, f64> = HashMap::from([(from.to_owned(), 0.0)]);
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut heap = BinaryHeap::from([Reverse((Cost(0.0), from.to_owned()))]);
        while let Some(Reverse((Cost(cost), name))) = heap.pop() {
            if !done.insert(name.clone()) {
                continue;
            }
            if name == to {
                return Ok(Some(build_path(&parent, from, to, cost)));
            }
            for (edge, next) in hop(txn, &name, options.direction, &options.relations)? {
                if done.contains(&next) {
                    continue;
                }
                let candidate = cost + edge.metadata.weight;
                if best.get(&next).is_none_or(|&known| candidate < known) {
                    best.insert(next.clone(), candidate);
                    parent.insert(next.clone(), (name.clone(), edge.key()));
                    heap.push(Reverse((Cost(candidate), next)));
                }
            }
        }
        return Ok(None);
    }
    let max_depth = options.max_depth.unwrap_or(usize::MAX);
    let mut seen: BTreeSet<String> = BTreeSet::from([from.to_owned()]);
    let mut frontier = vec![from.to_owned()];
    let mut depth = 0;
    while !frontier.is_empty() && depth < max_depth {
        depth += 1;
        let mut next = BTreeSet::new();
        for name in &frontier {
            for (edge, neighbour) in hop(txn, name, options.direction, &options.relations)? {
                if seen.insert(neighbour.clone()) {
                    parent.insert(neighbour.clone(), (name.clone(), edge.key()));
                    if neighbour == to {
                        return Ok(Some(build_path(&parent, from, to, depth as f64)));
                    }
                    next.insert(neighbour);
                }
            }
        }
        frontier = next.into_iter().collect();
    }
    Ok(None)
}

fn build_path(
    parent: &HashMap<String, (String, EdgeKey)>,
    from: &str,
    to: &str,
    cost: f64,
) -> Path {
    let mut nodes = vec![to.to_owned()];
    let mut edges = Vec::new();
    let mut at = to.to_owned();
    while at != from {
        match parent.get(&at) {
            Some((previous, key)) => {
                edges.push(key.clone());
                nodes.push(previous.clone());
                at = previous.clone();
            }
            None => break,
        }
    }
    nodes.reverse();
    edges.reverse();
    Path { nodes, edges, cost }
}

/// A finite, non-negative cost with a total order.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cost(f64);

impl Eq for Cost {}

impl PartialOrd for Cost {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cost {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The dependencies of a node (empty for an unknown node).
fn dependencies<T: ReadTxn + ?Sized>(txn: &T, name: &str) -> Result<Option<Vec<String>>> {
    Ok(txn.get_node(name)?.map(|node| node.dependencies))
}

/// The transitive dependencies of `name` (not `name` itself), dependencies first.
///
/// The order is the lexicographically smallest topological order: at each step,
/// the smallest name whose own dependencies are all already listed.
pub fn resolve_dependencies<T: ReadTxn + ?Sized>(txn: &T, name: &str) -> Result<Vec<String>> {
    let root = dependencies(txn, name)?.ok_or_else(|| Error::node_not_found(name))?;
    // Collect the closure with each member's dependencies.
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stack: Vec<(String, String)> =
        root.iter().map(|d| (d.clone(), name.to_owned())).collect();
    while let Some((current, referrer)) = stack.pop() {
        if graph.contains_key(&current) {
            continue;
        }
        let deps = dependencies(txn, &current)?.ok_or_else(|| Error::NodeNotFound {
            name: current.clone(),
            referenced_by: Some(validate::node_subject(&referrer)),
        })?;
        for dep in &deps {
            if !graph.contains_key(dep) {
                stack.push((dep.clone(), current.clone()));
            }
        }
        graph.insert(current, deps);
    }
    if graph.contains_key(name) {
        return Err(Error::DependencyCycle {
            cycle: find_cycle(&graph, name),
        });
    }
    topological_order(&graph)
}

/// The transitive dependents of `name` (not `name` itself), each after those of its
/// dependencies that are in the set; lexicographically smallest such order.
pub fn resolve_dependents<T: ReadTxn + ?Sized>(txn: &T, name: &str) -> Result<Vec<String>> {
    if !txn.contains_node(name)? {
        return Err(Error::node_not_found(name));
    }
    let mut members: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::from([name.to_owned()]);
    while let Some(current) = queue.pop_front() {
        for dependent in txn.dependents_of(&current)? {
            if dependent != name && members.insert(dependent.clone()) {
                queue.push_back(dependent);
            }
        }
    }
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for member in &members {
        let deps = dependencies(txn, member)?.unwrap_or_default();
        graph.insert(
            member.clone(),
            deps.into_iter().filter(|d| members.contains(d)).collect(),
        );
    }
    topological_order(&graph)
}

/// Kahn's algorithm, smallest ready name first. Dependencies outside `graph`'s keys
/// count as already done.
pub fn topological_order(graph: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>> {
    // The map's keys are in name order: their positions are the members' indexes.
    let index: HashMap<&str, usize> = graph
        .keys()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let mut links = Vec::new();
    for (member, deps) in graph.values().enumerate() {
        links.extend(
            deps.iter()
                .filter_map(|d| index.get(d.as_str()))
                .map(|&dep| (member, dep)),
        );
    }
    let names: Vec<&String> = graph.keys().collect();
    match topological_indices(graph.len(), &mut links) {
        Ok(order) => Ok(order.into_iter().map(|i| names[i].clone()).collect()),
        Err(stuck) => Err(Error::DependencyCycle {
            cycle: find_cycle(graph, names[stuck]),
        }),
    }
}

/// Kahn's algorithm over members `0..members` numbered in name order (so the
/// smallest ready index is the smallest ready name): `links` are `(member,
/// dependency)` pairs between them, repeats allowed (they are sorted and
/// deduplicated here). The members in the order of [`topological_order`], or, when
/// some wait on a cycle, `Err` with the smallest of those.
pub fn topological_indices(
    members: usize,
    links: &mut Vec<(usize, usize)>,
) -> std::result::Result<Vec<usize>, usize> {
    // By dependency, so each member's dependents are one run of `links`.
    links.sort_unstable_by_key(|&(member, dep)| (dep, member));
    links.dedup();
    let mut waiting = vec![0usize; members];
    let mut first = vec![links.len(); members + 1];
    for (i, &(member, dep)) in links.iter().enumerate().rev() {
        waiting[member] += 1;
        first[dep] = i;
    }
    // A member without dependents starts where the next one's run does.
    for dep in (0..members).rev() {
        first[dep] = first[dep].min(first[dep + 1]);
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..members)
        .filter(|&m| waiting[m] == 0)
        .map(Reverse)
        .collect();
    let mut out = Vec::with_capacity(members);
    while let Some(Reverse(next)) = ready.pop() {
        out.push(next);
        for &(dependent, _) in &links[first[next]..first[next + 1]] {
            waiting[dependent] -= 1;
            if waiting[dependent] == 0 {
                ready.push(Reverse(dependent));
            }
        }
    }
    if out.len() < members {
        return Err((0..members).find(|&m| waiting[m] > 0).unwrap_or(0));
    }
    Ok(out)
}

/// A cycle through the dependency graph reachable from `start`, first node repeated last.
fn find_cycle(graph: &BTreeMap<String, Vec<String>>, start: &str) -> Vec<String> {
    let lookup = |name: &str| -> Result<Option<Vec<String>>> { Ok(graph.get(name).cloned()) };
    first_cycle(&lookup, [start.to_owned()])
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The first dependency cycle reachable from `starts`, as `a -> … -> a`, found by
/// depth-first search over `deps_of` (which gives `None` for unknown nodes).
pub fn first_cycle<F>(
    deps_of: &F,
    starts: impl IntoIterator<Item = String>,
) -> Result<Option<Vec<String>>>
where
    F: Fn(&str) -> Result<Option<Vec<String>>>,
{
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: HashMap<String, Mark> = HashMap::new();
    for start in starts {
        if marks.contains_key(&start) {
            continue;
        }
        // Path of (node, its dependencies, next index to visit).
        let mut path: Vec<(String, Vec<String>, usize)> = Vec::new();
        marks.insert(start.clone(), Mark::Open);
        let deps = deps_of(&start)?.unwrap_or_default();
        path.push((start, deps, 0));
        while let Some((_, deps, index)) = path.last_mut() {
            if let Some(dep) = deps.get(*index).cloned() {
                *index += 1;
                match marks.get(&dep) {
                    Some(Mark::Open) => {
                        let at = path.iter().position(|(n, _, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[at..].iter().map(|(n, _, _)| n.clone()).collect();
                        cycle.push(dep);
                        return Ok(Some(cycle));
                    }
                    Some(Mark::Done) => {}
                    None => {
                        let next_deps = deps_of(&dep)?.unwrap_or_default();
                        marks.insert(dep.clone(), Mark::Open);
                        path.push((dep, next_deps, 0));
                    }
                }
            } else if let Some((done, _, _)) = path.pop() {
                marks.insert(done, Mark::Done);
            }
        }
    }
    Ok(None)
}

/// A dependency path from `start` to `target` (both included), if `start` depends
/// on `target` directly or transitively.
pub fn dependency_path<T: ReadTxn + ?Sized>(
    txn: &T,
    start: &str,
    target: &str,
) -> Result<Option<Vec<String>>> {
    let mut parent: HashMap<String, String> = HashMap::new();
    let mut stack = vec![start.to_owned()];
    let mut seen: BTreeSet<String> = BTreeSet::from([start.to_owned()]);
    while let Some(current) = stack.pop() {
        if current == target {
            let mut path = vec![current.clone()];
            let mut at = current;
            while let Some(previous) = parent.get(&at) {
                path.push(previous.clone());
                at = previous.clone();
            }
            path.reverse();
            return Ok(Some(path));
        }
        for dep in dependencies(txn, &current)?.unwrap_or_default() {
            if seen.insert(dep.clone()) {
                parent.insert(dep.clone(), current.clone());
                stack.push(dep);
            }
        }
    }
    Ok(None)
}

/// Counts everything by scanning; backends with indexes override it.
pub fn stats<T: ReadTxn + ?Sized>(txn: &T) -> Result<Stats> {
    let mut stats = Stats {
        schemas: txn.list_schemas()?.len() as u64,
        ..Stats::default()
    };
    let mut after: Option<String> = None;
    loop {
        let page = txn.scan_nodes(&NodeFilter::default(), after.as_deref(), SCAN_PAGE)?;
        for node in &page {
            stats.nodes += 1;
            stats.dependencies += node.dependencies.len() as u64;
            *stats.node_types.entry(node.node_type.clone()).or_default() += 1;
        }
        match page.last() {
            Some(last) if page.len() == SCAN_PAGE => after = Some(last.name.clone()),
            _ => break,
        }
    }
    let mut after: Option<EdgeKey> = None;
    loop {
        let page = txn.scan_edges(&EdgeFilter::default(), after.as_ref(), SCAN_PAGE)?;
        for edge in &page {
            stats.edges += 1;
            *stats
                .relation_types
                .entry(edge.relation_type.to_string())
                .or_default() += 1;
        }
        match page.last() {
            Some(last) if page.len() == SCAN_PAGE => after = Some(last.key()),
            _ => break,
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(n, deps)| {
                (
                    (*n).to_owned(),
                    deps.iter().map(|d| (*d).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn topological_order_is_smallest_first() {
        let g = graph(&[
            ("d", &["b", "c"]),
            ("b", &["a"]),
            ("c", &["a"]),
            ("a", &[]),
            ("z", &[]),
        ]);
        assert_eq!(topological_order(&g).unwrap(), ["a", "b", "c", "d", "z"]);
    }

    #[test]
    fn topological_indices_take_repeats_and_name_the_smallest_stuck_member() {
        // 3 depends on 1 and 2 (1 twice), 1 and 2 on 0, 4 on nothing.
        let mut links = vec![(3, 1), (3, 2), (1, 0), (3, 1), (2, 0)];
        assert_eq!(topological_indices(5, &mut links), Ok(vec![0, 1, 2, 3, 4]));
        // Smallest ready first, not the order of the links: 0 waits for 2.
        let mut links = vec![(0, 2), (1, 2)];
        assert_eq!(topological_indices(3, &mut links), Ok(vec![2, 0, 1]));
        assert_eq!(topological_indices(0, &mut Vec::new()), Ok(vec![]));
        // 1 -> 2 -> 1, and 3 behind them; 0 is free.
        let mut links = vec![(3, 1), (2, 1), (1, 2)];
        assert_eq!(topological_indices(4, &mut links), Err(1));
        // A member depending on itself.
        assert_eq!(topological_indices(2, &mut vec![(1, 1)]), Err(1));
    }

    #[test]
    fn the_cycle_reported_does_not_depend_on_hash_map_order() {
        // z is stuck behind the cycle too; every run must name the same cycle.
        let g = graph(&[("z", &["y"]), ("y", &["x"]), ("x", &["y"])]);
        for _ in 0..20 {
            match topological_order(&g).unwrap_err() {
                Error::DependencyCycle { cycle } => assert_eq!(cycle, ["x", "y", "x"]),
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn cycles_are_named() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        let err = topological_order(&g).unwrap_err();
        match err {
            Error::DependencyCycle { cycle } => {
                assert_eq!(cycle.first(), cycle.last());
                assert_eq!(cycle.len(), 4);
            }
            other => panic!("{other}"),
        }
    }
}
