//! Benchmarks the JSON-files backend against the floor of a bare durable file write
//! measured in the same run.
//!
//! ```text
//! cargo run --release -p kgstore-jsonfs --example bench -- --nodes 100000 --commits 1000
//! ```
//!
//! Options: `--nodes N` (bulk load size, 100000), `--commits N` (single commits, 1000),
//! `--dir PATH` (where to work; a new temporary folder by default, removed at the end).

mod floor;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kgstore_core::{GraphRead, Node, Store};
use kgstore_jsonfs::{Durability, JsonFsBackend, JsonFsOptions};
use serde_json::json;

struct Args {
    nodes: usize,
    commits: usize,
    dir: Option<PathBuf>,
}

fn args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        nodes: 100_000,
        commits: 1000,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => args.nodes = value.parse()?,
            "--commits" => args.commits = value.parse()?,
            "--dir" => args.dir = Some(value.into()),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(args)
}

fn node(i: usize) -> Result<Node, kgstore_core::Error> {
    Ok(Node::new(format!("node-{i:07}"), "thing")?
        .with_observation("A node written by the benchmark, of a typical size.")
        .with_attribute("index", json!(i))
        .with_tag("bench"))
}

fn open(path: &Path, durability: Durability) -> Result<Store, kgstore_core::Error> {
    let options = JsonFsOptions::default().durability(durability);
    Ok(Store::new(JsonFsBackend::open(path, options)?))
}

fn per_op(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1e6 / n.max(1) as f64
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = args()?;
    let temp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("kgstore-jsonfs bench in {} ({cores} cores)", dir.display());

    // Single durable commits, interleaved with the floor in rounds so that both see
    // the same disk weather.
    let payload = kgstore_core::serde_json::to_vec_pretty(&node(0)?)?;
    let rounds = 10;
    let per_round = args.commits.div_ceil(rounds);
    let (mut floor_time, mut immediate, mut relaxed) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let strict = open(&dir.join("commits-immediate"), Durability::Immediate)?;
    let loose = open(&dir.join("commits-relaxed"), Durability::Relaxed)?;
    for round in 0..rounds {
        floor_time += floor::measure(&dir.join("floor"), &payload, per_round)?;
        let started = Instant::now();
        for i in 0..per_round {
            strict.create_node(node(round * per_round + i)?)?;
        }
        immediate += started.elapsed();
        let started = Instant::now();
        for i in 0..per_round {
            loose.create_node(node(round * per_round + i)?)?;
        }
        relaxed += started.elapsed();
    }
    let n = rounds * per_round;
    let floor_us = per_op(floor_time, n);
    let immediate_us = per_op(immediate, n);
    let relaxed_us = per_op(relaxed, n);
    println!("floor (temp write + fsync + rename + folder fsync): {floor_us:9.1} µs/op");
    println!(
        "single commit, immediate:                           {immediate_us:9.1} µs/op  {:.2}× the floor's throughput",
        floor_us / immediate_us
    );
    println!(
        "single commit, relaxed:                             {relaxed_us:9.1} µs/op  {:.2}× the floor's throughput",
        floor_us / relaxed_us
    );
    drop((strict, loose));

    // Bulk load in one transaction.
    let bulk = dir.join("bulk");
    let store = open(&bulk, Durability::Immediate)?;
    let nodes = (0..args.nodes).map(node).collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    store.create_nodes(nodes)?;
    let load = started.elapsed();
    println!(
        "bulk load of {} nodes in one transaction:          {:9.2} s      {:.0} nodes/s",
        args.nodes,
        load.as_secs_f64(),
        args.nodes as f64 / load.as_secs_f64()
    );
    drop(store);

    // Open to first read.
    let started = Instant::now();
    let store = open(&bulk, Durability::Immediate)?;
    let first = store.get_node("node-0000000")?;
    let opened = started.elapsed();
    println!(
        "open of that store to the first read:               {:9.2} s      ({} nodes, first {:?})",
        opened.as_secs_f64(),
        store.count_nodes()?,
        first.name
    );
    Ok(())
}
