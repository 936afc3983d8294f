//! The cost of a store's metrics per read, in nanoseconds: the same cheap query
//! (`contains_node` on the memory backend, the fastest read kgstore has) in short
//! blocks alternating metrics on and off, the fastest block of each counting (on a
//! shared machine, the fastest block is the one nothing else interrupted).
//! The phases of `kgstore-bench --metrics-cost` measure the same on whole workloads;
//! this isolates the per-read figure from a shared machine's noise.
//!
//! ```text
//! cargo run --release -p kgstore-bench --example metrics_overhead [BLOCKS]
//! ```

use kgstore::{GraphRead, Node, Store};

fn main() -> Result<(), kgstore::Error> {
    let blocks: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    const READS: u64 = 20_000;
    let store = Store::memory();
    store.create_node(Node::new("a", "thing")?)?;
    let (mut best_on, mut best_off) = (u128::MAX, u128::MAX);
    let mut found = 0u64;
    for block in 0..blocks {
        for on in if block % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            store.observer().set_enabled(on);
            let start = std::time::Instant::now();
            for _ in 0..READS {
                found += u64::from(store.contains_node("a")?);
            }
            let spent = start.elapsed().as_nanos();
            let best = if on { &mut best_on } else { &mut best_off };
            *best = (*best).min(spent);
        }
    }
    assert_eq!(found, READS * 2 * blocks as u64);
    let per = |n: u128| n as f64 / READS as f64;
    println!(
        "memory contains_node, fastest of {blocks} blocks of {READS}: metrics on {:.1} ns, off {:.1} ns per read; \
         cost {:+.1} ns ({:+.2} %); reads counted {}",
        per(best_on),
        per(best_off),
        per(best_on) - per(best_off),
        (best_on as f64 / best_off as f64 - 1.0) * 100.0,
        store.metrics().reads.count
    );
    Ok(())
}
