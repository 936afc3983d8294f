//! `kgstore-bench-commit-profile`: single durable commits on an already loaded
//! SQLite store, in a process of their own, for profilers (`perf record`,
//! `valgrind --tool=callgrind`) and for counting write-ahead-log frames.
//!
//! ```text
//! kgstore-bench-commit-profile load   PATH NODES          # the benchmark's data, bulk loaded
//! kgstore-bench-commit-profile commit PATH COMMITS [FIRST] # that many one-node commits
//! kgstore-bench-commit-profile both   PATH NODES COMMITS   # load, then commit in one process
//! ```
//!
//! `both` is what `kgstore-bench --phase commit` does (the commits on the handle
//! that loaded); `commit` opens the store first. Each prints the commits per
//! second and the backend's figures (pages written to the log, its size).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kgstore::sqlite::{SqliteBackend, SqliteOptions};
use kgstore::{Durability, Node, Store};
use kgstore_bench::data::NODE_TYPES;
use kgstore_bench::{Dataset, Workload};
use serde_json::json;

fn open(path: &Path) -> Result<Store> {
    let options = SqliteOptions::default().durability(Durability::Immediate);
    Ok(Store::new(SqliteBackend::open(path, options)?))
}

fn load(store: &Store, nodes: usize) -> Result<()> {
    let data = Dataset::generate(&Workload::new(nodes))?;
    let started = Instant::now();
    store.create_nodes(data.nodes)?;
    store.create_edges(data.edges)?;
    eprintln!("loaded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `count` one-node durable commits of nodes `profile{first}`…, shaped like the
/// benchmark's commit nodes.
fn commits(store: &Store, first: usize, count: usize) -> Result<()> {
    let nodes = (first..first + count)
        .map(|i| {
            Ok(
                Node::new(format!("profile{i}"), NODE_TYPES[i % NODE_TYPES.len()])?
                    .with_observation(format!("Observation {i}, written by the benchmark."))
                    .with_observation("a few searchable words about the node".to_owned())
                    .with_attribute("index", json!(i))
                    .with_attribute("score", json!(i % 1000))
                    .with_attribute("label", json!(format!("item {i}")))
                    .with_attribute("active", json!(i.is_multiple_of(3))),
            )
        })
        .collect::<kgstore::Result<Vec<_>>>()?;
    store.reset_metrics();
    let (cpu0, faults0) = (cpu_ns(), faults());
    let started = Instant::now();
    for node in nodes {
        store.create_node(node)?;
    }
    let secs = started.elapsed().as_secs_f64();
    let (cpu, faulted) = (cpu_ns() - cpu0, faults() - faults0);
    println!(
        "{count} commits in {:.3} s: {:.0} commits/s, {:.1} µs each, {:.1} µs of CPU each, \
         {:.1} page faults each",
        secs,
        count as f64 / secs,
        secs * 1e6 / count as f64,
        cpu as f64 / 1e3 / count as f64,
        faulted as f64 / count as f64,
    );
    for figure in store.metrics().backend_figures {
        println!("  {} = {}", figure.name, figure.value);
    }
    Ok(())
}

/// The CPU time of this thread so far, in nanoseconds (0 where unknown).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The page faults (minor and major) of this process so far (0 where unknown).
fn faults() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // The fields after the command's closing parenthesis: minflt is the 10th
    // field of the line (8th after it), majflt the 12th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    [7, 9]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum()
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T> {
    args.get(i)
        .with_context(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| anyhow::anyhow!("{what} is not a number"))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = Path::new(args.get(2).context("usage: load|commit|both PATH …")?);
    match args.get(1).map(String::as_str) {
        Some("load") => load(&open(path)?, arg(&args, 3, "NODES")?),
        Some("commit") => {
            let first = if args.len() > 4 {
                arg(&args, 4, "FIRST")?
            } else {
                0
            };
            commits(&open(path)?, first, arg(&args, 3, "COMMITS")?)
        }
        Some("both") => {
            let store = open(path)?;
            load(&store, arg(&args, 3, "NODES")?)?;
            for figure in store.metrics().backend_figures {
                println!("  after the load: {} = {}", figure.name, figure.value);
            }
            let count = arg(&args, 4, "COMMITS")?;
            // `KGSTORE_PROFILE_WAIT=SECS`: time to attach a profiler to the commits.
            if let Some(secs) = std::env::var_os("KGSTORE_PROFILE_WAIT") {
                eprintln!("pid {} commits in {secs:?} s", std::process::id());
                let secs: u64 = secs.to_string_lossy().parse().unwrap_or(5);
                std::thread::sleep(std::time::Duration::from_secs(secs));
            }
            commits(&store, 0, count)?;
            // The second batch shows whether the first paid for something once.
            commits(&store, count, count)
        }
        _ => bail!("usage: load|commit|both PATH …"),
    }
}
