//! kgstore on SQLite against raw rusqlite on the same schema, in the same run.
//!
//! ```text
//! cargo run --release -p kgstore-sqlite --example bench_vs_raw -- --nodes 100000
//! ```
//!
//! Options: `--nodes N` (100000), `--edges M` (5 × nodes), `--gets G` (100000),
//! `--neighbours Q` (20000), `--commits C` (500), `--rounds R` (5; the best round
//! of each side counts), `--dir PATH` (a temporary folder).
//!
//! Each figure is operations per second for kgstore and for the baseline, and
//! their ratio (kgstore ÷ raw; 1.0 means as fast as raw SQLite).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod raw;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kgstore_core::{Direction, Edge, GraphRead, Node, RelationType, Store};
use kgstore_sqlite::{Durability, SqliteBackend, SqliteOptions};
use raw::RawStore;
use serde_json::json;

struct Args {
    nodes: usize,
    edges: Option<usize>,
    gets: usize,
    neighbours: usize,
    commits: usize,
    rounds: usize,
    dir: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        nodes: 100_000,
        edges: None,
        gets: 100_000,
        neighbours: 20_000,
        commits: 500,
        rounds: 5,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number =
            |v: String| -> usize { v.parse().unwrap_or_else(|_| panic!("bad number {v}")) };
        match flag.as_str() {
            "--nodes" => a.nodes = number(value()),
            "--edges" => a.edges = Some(number(value())),
            "--gets" => a.gets = number(value()),
            "--neighbours" | "--neighbors" => a.neighbours = number(value()),
            "--commits" => a.commits = number(value()),
            "--rounds" => a.rounds = number(value()).max(1),
            "--dir" => a.dir = Some(PathBuf::from(value())),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

/// A small deterministic generator (xorshift64*), so both sides get the same data.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound as u64) as usize
    }
}

fn name(i: usize) -> String {
    format!("node-{i:07}")
}

fn make_node(name: String, i: usize) -> Node {
    Node::new(name, "thing")
        .unwrap()
        .with_observation(format!("observation number {i}"))
        .with_attribute("i", json!(i))
}

fn make_edges(nodes: usize, edges: usize) -> Vec<Edge> {
    let relations = [
        RelationType::Calls,
        RelationType::References,
        RelationType::Contains,
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(edges);
    while out.len() < edges {
        let from = rng.below(nodes);
        let to = rng.below(nodes);
        let rel = rng.below(relations.len());
        if seen.insert((from, rel, to)) {
            out.push(
                Edge::new(name(from), relations[rel].clone(), name(to))
                    .unwrap()
                    .with_weight((rng.below(100) as f64) / 10.0),
            );
        }
    }
    out
}

fn open_store(path: &Path) -> Store {
    let options = SqliteOptions::default().durability(Durability::Immediate);
    Store::new(SqliteBackend::open(path, options).unwrap())
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// Best (shortest) time of each side over the rounds, alternating which goes first.
struct Best {
    kg: Duration,
    raw: Duration,
}

impl Best {
    fn new() -> Self {
        Self {
            kg: Duration::MAX,
            raw: Duration::MAX,
        }
    }

    fn round(
        &mut self,
        round: usize,
        mut kg: impl FnMut() -> Duration,
        mut raw: impl FnMut() -> Duration,
    ) {
        if round.is_multiple_of(2) {
            self.raw = self.raw.min(raw());
            self.kg = self.kg.min(kg());
        } else {
            self.kg = self.kg.min(kg());
            self.raw = self.raw.min(raw());
        }
    }

    fn report(&self, what: &str, ops: usize, target: f64) -> bool {
        let per_sec = |d: Duration| ops as f64 / d.as_secs_f64();
        let (kg, raw) = (per_sec(self.kg), per_sec(self.raw));
        let ratio = kg / raw;
        let verdict = if target == 0.0 {
            "(no target)".to_owned()
        } else if ratio >= target {
            format!("ok, target ≥ {target:.1}")
        } else {
            format!("MISSED, target ≥ {target:.1}")
        };
        println!(
            "{what:<28} kgstore {kg:>12.0} ops/s   raw {raw:>12.0} ops/s   ratio {ratio:>5.2}  {verdict}"
        );
        target == 0.0 || ratio >= target
    }
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn main() {
    let a = args();
    let edges = a.edges.unwrap_or(a.nodes * 5);
    let temp = tempfile::tempdir().unwrap();
    let dir = a.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let kg_path = dir.join("kgstore.db");
    let raw_path = dir.join("raw.db");
    println!(
        "kgstore-sqlite vs raw rusqlite: {} nodes, {edges} edges, {} rounds, {} cores, SQLite {}",
        a.nodes,
        a.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        rusqlite::version()
    );
    let nodes: Vec<Node> = (0..a.nodes).map(|i| make_node(name(i), i)).collect();
    let edge_list = make_edges(a.nodes, edges);
    let mut ok = true;

    // Bulk node load: one transaction each, into a fresh file each round.
    let mut best = Best::new();
    for round in 0..a.rounds {
        remove_db(&kg_path);
        remove_db(&raw_path);
        best.round(
            round,
            || {
                let store = open_store(&kg_path);
                let batch = nodes.clone();
                time(|| {
                    store.create_nodes(batch).unwrap();
                })
            },
            || {
                let mut raw = RawStore::create(&raw_path, 2).unwrap();
                time(|| raw.load_nodes(&nodes).unwrap())
            },
        );
    }
    ok &= best.report("bulk node load", a.nodes, 0.7);

    let store = open_store(&kg_path);
    let mut raw = RawStore::create_or_open(&raw_path);
    let kg_edges = time(|| {
        store.create_edges(edge_list.clone()).unwrap();
    });
    let raw_edges = time(|| raw.load_edges(&edge_list).unwrap());
    Best {
        kg: kg_edges,
        raw: raw_edges,
    }
    .report("bulk edge load (1 round)", edges, 0.0);
    assert_eq!(store.count_edges().unwrap(), edges as u64);

    // Gets by name, in a random order.
    let mut rng = Rng(42);
    let get_names: Vec<String> = (0..a.gets).map(|_| name(rng.below(a.nodes))).collect();
    let sample = &get_names[0];
    let (kg_node, raw_node) = (
        store.get_node(sample).unwrap(),
        raw.get_node(sample).unwrap().unwrap(),
    );
    assert_eq!(
        (&kg_node.name, &kg_node.attributes),
        (&raw_node.name, &raw_node.attributes)
    );
    let mut best = Best::new();
    for round in 0..a.rounds {
        best.round(
            round,
            || {
                time(|| {
                    for n in &get_names {
                        std::hint::black_box(store.get_node(n).unwrap());
                    }
                })
            },
            || {
                time(|| {
                    for n in &get_names {
                        std::hint::black_box(raw.get_node(n).unwrap().unwrap());
                    }
                })
            },
        );
    }
    ok &= best.report("get by name", a.gets, 0.7);

    // Out-neighbours: the edges leaving a node, with their targets.
    let hood_names: Vec<String> = (0..a.neighbours)
        .map(|_| name(rng.below(a.nodes)))
        .collect();
    for n in hood_names.iter().take(50) {
        let kg: Vec<_> = store
            .edges_of(n, Direction::Out, &[])
            .unwrap()
            .iter()
            .map(Edge::key)
            .collect();
        let rw: Vec<_> = raw.out_edges(n).unwrap().iter().map(Edge::key).collect();
        assert_eq!(kg, rw, "{n}");
    }
    let mut best = Best::new();
    for round in 0..a.rounds {
        best.round(
            round,
            || {
                time(|| {
                    for n in &hood_names {
                        std::hint::black_box(store.edges_of(n, Direction::Out, &[]).unwrap());
                    }
                })
            },
            || {
                time(|| {
                    for n in &hood_names {
                        std::hint::black_box(raw.out_edges(n).unwrap());
                    }
                })
            },
        );
    }
    ok &= best.report("out-neighbours", a.neighbours, 0.7);

    // Single durable commits (synchronous = FULL): one node per transaction.
    let mut best = Best::new();
    for round in 0..a.rounds {
        best.round(
            round,
            || {
                time(|| {
                    for i in 0..a.commits {
                        store
                            .create_node(make_node(format!("kg-{round}-{i}"), i))
                            .unwrap();
                    }
                })
            },
            || {
                time(|| {
                    for i in 0..a.commits {
                        raw.commit_node(&make_node(format!("raw-{round}-{i}"), i))
                            .unwrap();
                    }
                })
            },
        );
    }
    ok &= best.report("single durable commits", a.commits, 0.9);

    if !ok {
        println!("at least one target was missed");
        std::process::exit(1);
    }
}
