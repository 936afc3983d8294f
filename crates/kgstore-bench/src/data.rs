//! The workload's data and queries: generated from a seed by a small
//! self-contained generator, so every backend and baseline gets the same.

use std::collections::HashSet;

use kgstore::{Edge, Node, RelationType};
use serde_json::{Map, Value, json};

/// SplitMix64: a tiny, fast, well-mixed 64-bit generator; enough for test data.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound.max(1) as u64) as usize
    }
}

/// The ten node types, drawn at random per node.
pub const NODE_TYPES: [&str; 10] = [
    "person",
    "place",
    "organisation",
    "event",
    "concept",
    "document",
    "project",
    "tool",
    "topic",
    "dataset",
];

/// The node type whose nodes the listing phase pages through.
pub const LISTED_TYPE: &str = "concept";

/// The five relation types of the generated edges.
pub fn relations() -> [RelationType; 5] {
    [
        RelationType::Calls,
        RelationType::References,
        RelationType::Contains,
        RelationType::DependsOn,
        RelationType::RelatesTo,
    ]
}

/// Nodes of the dependency DAG come in groups of this many consecutive indexes;
/// a node depends only on earlier nodes of its own group, so resolutions stay small.
pub const DEP_GROUP: usize = 100;

/// The size of the workload: how many nodes and how many of each query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Nodes (`n0`, `n1`, …); edges are 5 × as many.
    pub nodes: usize,
    /// Random gets by name.
    pub gets: usize,
    /// Out-neighbour queries.
    pub neighbours: usize,
    /// Two-hop counts.
    pub two_hops: usize,
    /// Dependency resolutions.
    pub resolutions: usize,
    /// Single durable commits.
    pub commits: usize,
    /// Ranked searches (and as many substring filters).
    pub searches: usize,
    /// Rounds of each read-only phase (the best counts).
    pub rounds: usize,
    /// Page size of the listing phase.
    pub page_size: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Workload {
    /// The standard workload for `nodes` nodes: 100,000 gets, 20,000 out-neighbour
    /// queries, 2,000 two-hop counts, 2,000 resolutions, 500 commits, pages of 1,000;
    /// 400 searches; read-only phases run 3 rounds.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            gets: 100_000,
            neighbours: 20_000,
            two_hops: 2_000,
            resolutions: 2_000,
            commits: 500,
            searches: 400,
            rounds: 3,
            page_size: 1_000,
            seed: 0x6B67_7374_6F72_6531,
        }
    }

    /// How many edges the data has: 5 × nodes (fewer only if the graph is too small).
    pub fn edge_count(&self) -> usize {
        let possible = self.nodes.saturating_mul(self.nodes.saturating_sub(1)) * 5;
        (self.nodes * 5).min(possible)
    }

    /// How many of the first nodes form the dependency DAG: a tenth, at least 100.
    pub fn dag_size(&self) -> usize {
        (self.nodes / 10).max(self.nodes.min(DEP_GROUP))
    }
}

/// The data and the query arguments of one run.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The nodes, in index order (dependencies before their dependents).
    pub nodes: Vec<Node>,
    /// The edges: distinct keys, no self-loops.
    pub edges: Vec<Edge>,
    /// Names to get.
    pub get_names: Vec<String>,
    /// Names whose out-neighbours to list.
    pub neighbour_names: Vec<String>,
    /// Names to count two-hop neighbourhoods from.
    pub two_hop_names: Vec<String>,
    /// Names (in the DAG) whose dependencies to resolve.
    pub resolve_names: Vec<String>,
    /// Nodes created one per durable commit.
    pub commit_nodes: Vec<Node>,
    /// Texts to search for (see [`Vocabulary::queries`]).
    pub search_queries: Vec<String>,
}

/// The name of node `i`.
pub fn node_name(i: usize) -> String {
    format!("n{i}")
}

/// The `index` attribute of a node the workload made (the checksums add them up).
pub fn index_of(attributes: &Map<String, Value>) -> u64 {
    attributes.get("index").and_then(Value::as_u64).unwrap_or(0)
}

/// Distinct words of the searchable text.
pub const VOCABULARY: usize = 20_000;

/// Syllables the vocabulary's words are made of.
const SYLLABLES: [&str; 20] = [
    "ka", "lo", "mi", "ren", "tus", "ba", "the", "or", "in", "ga", "ve", "sol", "ar", "qu", "ni",
    "pe", "do", "ul", "ras", "ti",
];

/// The searchable text's words, drawn with Zipf's law (the word of rank r with
/// probability ∝ 1/r), as in natural text; one word in 40 is written with an
/// accent (`é` for its first `e`) and searched for without.
#[derive(Clone, Debug)]
pub struct Vocabulary {
    words: Vec<String>,
    cdf: Vec<f64>,
}

impl Default for Vocabulary {
    fn default() -> Self {
        Self::new()
    }
}

impl Vocabulary {
    /// The [`VOCABULARY`] words and their distribution.
    pub fn new() -> Self {
        let words: Vec<String> = (0..VOCABULARY)
            .map(|i| {
                let (mut word, mut x) = (String::new(), i + SYLLABLES.len());
                while x > 0 {
                    word.push_str(SYLLABLES[x % SYLLABLES.len()]);
                    x /= SYLLABLES.len();
                }
                word
            })
            .collect();
        let total: f64 = (1..=VOCABULARY).map(|r| 1.0 / r as f64).sum();
        let mut acc = 0.0;
        let cdf = (1..=VOCABULARY)
            .map(|r| {
                acc += 1.0 / r as f64 / total;
                acc
            })
            .collect();
        Self { words, cdf }
    }

    /// The word of rank `rank` (0 is the most frequent), as queries write it.
    pub fn word(&self, rank: usize) -> &str {
        &self.words[rank.min(VOCABULARY - 1)]
    }

    /// A word drawn from the distribution, as documents write it.
    fn draw(&self, rng: &mut SplitMix64) -> String {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let rank = self.cdf.partition_point(|c| *c < u).min(VOCABULARY - 1);
        let word = self.word(rank);
        if rank % 40 == 7 {
            word.replacen('e', "é", 1)
        } else {
            word.to_owned()
        }
    }

    /// A sentence of 6 to 14 words.
    pub fn sentence(&self, rng: &mut SplitMix64) -> String {
        let words: Vec<String> = (0..6 + rng.below(9)).map(|_| self.draw(rng)).collect();
        let mut text = words.join(" ");
        text.push('.');
        text
    }

    /// Search queries in four equal parts: one frequent word (ranks 5–100, many
    /// hits); two words, one medium and one rare (few hits); one rare word
    /// (ranks 5,000–20,000, a handful of hits, so the page is topped up with
    /// substring matches inside words); the first four letters of a medium word
    /// (a prefix).
    pub fn queries(&self, count: usize, rng: &mut SplitMix64) -> Vec<String> {
        (0..count)
            .map(|i| match i % 4 {
                0 => self.word(5 + rng.below(95)).to_owned(),
                1 => format!(
                    "{} {}",
                    self.word(100 + rng.below(1900)),
                    self.word(2000 + rng.below(18_000))
                ),
                2 => self.word(5000 + rng.below(15_000)).to_owned(),
                _ => self.word(50 + rng.below(950)).chars().take(4).collect(),
            })
            .collect()
    }
}

fn node(
    name: String,
    i: usize,
    rng: &mut SplitMix64,
    text: &mut SplitMix64,
    vocabulary: &Vocabulary,
) -> kgstore::Result<Node> {
    let node_type = NODE_TYPES[rng.below(NODE_TYPES.len())];
    Ok(Node::new(name, node_type)?
        .with_observation(format!("Observation {i}, written by the benchmark."))
        .with_observation(vocabulary.sentence(text))
        .with_attribute("index", json!(i))
        .with_attribute("score", json!(rng.below(1000)))
        .with_attribute("label", json!(format!("item {i}")))
        .with_attribute("active", json!(i.is_multiple_of(3))))
}

impl Dataset {
    /// Generates the data of `workload`; the same workload gives the same data.
    pub fn generate(workload: &Workload) -> kgstore::Result<Self> {
        let n = workload.nodes;
        let mut rng = SplitMix64::new(workload.seed);
        // The searchable text has its own generator, so the rest of the data does
        // not depend on it.
        let mut text = SplitMix64::new(workload.seed ^ 0x7365_6172_6368);
        let vocabulary = Vocabulary::new();
        let dag = workload.dag_size();
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mut node = node(node_name(i), i, &mut rng, &mut text, &vocabulary)?;
            if i < dag {
                let start = i / DEP_GROUP * DEP_GROUP;
                if i > start {
                    let mut deps: Vec<usize> = (0..rng.below(4))
                        .map(|_| start + rng.below(i - start))
                        .collect();
                    deps.sort_unstable();
                    deps.dedup();
                    node.dependencies = deps.into_iter().map(node_name).collect();
                }
            }
            nodes.push(node);
        }

        let relations = relations();
        let wanted = workload.edge_count();
        let mut seen = HashSet::with_capacity(wanted);
        let mut edges = Vec::with_capacity(wanted);
        while edges.len() < wanted {
            let from = rng.below(n);
            let to = rng.below(n);
            let rel = rng.below(relations.len());
            let weight = rng.below(100) as f64 / 10.0;
            if from == to || !seen.insert((from, rel, to)) {
                continue; // duplicates and self-loops are skipped
            }
            edges.push(
                Edge::new(node_name(from), relations[rel].clone(), node_name(to))?
                    .with_weight(weight),
            );
        }

        let mut pick = |count: usize, range: usize| -> Vec<String> {
            (0..count).map(|_| node_name(rng.below(range))).collect()
        };
        let get_names = pick(workload.gets, n);
        let neighbour_names = pick(workload.neighbours, n);
        let two_hop_names = pick(workload.two_hops, n);
        let resolve_names = pick(workload.resolutions, dag);
        let commit_nodes = (0..workload.commits)
            .map(|i| {
                node(
                    format!("commit{i}"),
                    n + i,
                    &mut rng,
                    &mut text,
                    &vocabulary,
                )
            })
            .collect::<kgstore::Result<_>>()?;
        let search_queries = vocabulary.queries(workload.searches, &mut text);
        Ok(Self {
            nodes,
            edges,
            get_names,
            neighbour_names,
            two_hop_names,
            resolve_names,
            commit_nodes,
            search_queries,
        })
    }

    /// How many nodes of [`LISTED_TYPE`] there are (what the listing phase must find).
    pub fn listed_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.node_type == LISTED_TYPE)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let w = Workload {
            gets: 10,
            ..Workload::new(200)
        };
        let (a, b) = (
            Dataset::generate(&w).unwrap(),
            Dataset::generate(&w).unwrap(),
        );
        assert_eq!(a.nodes, b.nodes);
        assert_eq!(a.edges, b.edges);
        assert_eq!(a.get_names, b.get_names);
        assert_eq!(a.edges.len(), 1000);
        assert!(a.nodes.iter().any(|n| !n.dependencies.is_empty()));
    }
}
