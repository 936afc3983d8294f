//! CPU work of the event store's appends and reads beside the raw table's, for
//! instruction counts under callgrind (the shared machine's wall clock is noisy and
//! the VM has no hardware counters):
//!
//! ```text
//! cargo build --release -p kgstore-bench --example events_cpu
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*events_cpu*measured*' \
//!     target/release/examples/events_cpu kg append 100 200
//! ```
//!
//! `SIDE` is `kg` or `raw`; `WHAT` is `append` (`COMMITS` durable commits of `SIZE`
//! events, round-robin over 16 streams, as `kgstore-bench-events` makes them) or
//! `read` (a log of `SIZE` × `COMMITS` events loaded first, outside the count, then
//! read whole, 10,000 a page). Only the function `measured` is counted.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kgstore::Store;
use kgstore::events::{EventRead, ExpectedVersion, ReadOptions};
use kgstore_bench::Backend;
use kgstore_bench::events::{Commit, RawLog, STREAMS, commits};
use kgstore_bench::subject::open_store;

enum Side {
    Kg(Store),
    Raw(RawLog),
}

/// Appends every commit; the raw table borrows the events and hands them back (to
/// be dropped outside the count, as in the benchmark), kgstore takes them by value.
fn append(side: &mut Side, all: Vec<Commit>) -> Result<Vec<Commit>> {
    match side {
        Side::Kg(store) => {
            for c in all {
                store.append(&c.stream, ExpectedVersion::Exact(c.expected), c.events)?;
            }
            Ok(Vec::new())
        }
        Side::Raw(raw) => {
            for c in &all {
                raw.append(&c.stream, c.expected, &c.events)?;
            }
            Ok(all)
        }
    }
}

fn read(side: &Side) -> Result<u64> {
    let (mut sum, mut from) = (0u64, 1u64);
    loop {
        match side {
            Side::Kg(store) => {
                let page = store.read_all(&ReadOptions::forwards(10_000).from(from))?;
                for e in &page.events {
                    sum = sum.wrapping_add(e.position ^ e.version);
                }
                from = page.next;
                if page.at_end {
                    return Ok(sum);
                }
            }
            Side::Raw(raw) => {
                let page = raw.page(from, 10_000)?;
                for e in &page {
                    sum = sum.wrapping_add(e.position ^ e.version);
                }
                match page.last() {
                    Some(last) if page.len() == 10_000 => from = last.position + 1,
                    _ => return Ok(sum),
                }
            }
        }
    }
}

/// The counted part.
#[inline(never)]
fn measured(side: &mut Side, what: &str, all: Vec<Commit>) -> Result<(u64, Vec<Commit>)> {
    if what == "append" {
        Ok((0, append(side, all)?))
    } else {
        Ok((read(side)?, all))
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, side, what, size, n] = args.as_slice() else {
        bail!("usage: events_cpu kg|raw append|read SIZE COMMITS");
    };
    let size: usize = size.parse().context("SIZE")?;
    let n: usize = n.parse().context("COMMITS")?;
    let dir = tempfile::tempdir()?;
    let mut side = match side.as_str() {
        "kg" => Side::Kg(open_store(Backend::Sqlite, &dir.path().join("kg"))?),
        "raw" => Side::Raw(RawLog::open(Path::new(&dir.path().join("raw.db")))?),
        other => bail!("unknown side {other}"),
    };
    let all = commits(0, n, size, &mut [0; STREAMS]);
    let all = if what == "read" {
        append(&mut side, all)?;
        Vec::new()
    } else {
        all
    };
    let started = Instant::now();
    let (sum, left) = measured(&mut side, what, all)?;
    drop(left);
    eprintln!("{:.3} s (checksum {sum})", started.elapsed().as_secs_f64());
    Ok(())
}
