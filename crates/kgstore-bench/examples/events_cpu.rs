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
//!
//! `WHAT` = `wal` counts no instructions: after one commit of `SIZE` events to each
//! stream, it makes `COMMITS` more and prints how many write-ahead-log frames (pages)
//! and bytes each commit wrote, from the growth of the `-wal` file (refused if a
//! checkpoint ran meanwhile, which would reuse the file from its start).

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

/// Appends every commit; both sides borrow the events and hand them back (to be
/// dropped outside the count, as in the benchmark). `KG_BY_VALUE=1` makes kgstore
/// take them by value instead (`Store::append`, which drops them), as before
/// session 10.
fn append(side: &mut Side, all: Vec<Commit>) -> Result<Vec<Commit>> {
    match side {
        Side::Kg(store) if std::env::var_os("KG_BY_VALUE").is_some() => {
            for c in all {
                store.append(&c.stream, ExpectedVersion::Exact(c.expected), c.events)?;
            }
            Ok(Vec::new())
        }
        Side::Kg(store) => {
            for c in &all {
                store.append_borrowed(&c.stream, ExpectedVersion::Exact(c.expected), &c.events)?;
            }
            Ok(all)
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

/// The `-wal` file's length and its header's checkpoint sequence and salts (which
/// change when a checkpoint restarts the log), and its page size.
fn wal_state(db: &Path) -> Result<(u64, [u8; 12], u64)> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let bytes = std::fs::read(&wal).with_context(|| format!("reading {}", wal.display()))?;
    let header: [u8; 32] = bytes
        .get(..32)
        .and_then(|h| h.try_into().ok())
        .context("the -wal file has no header")?;
    let mut seq = [0; 12];
    seq.copy_from_slice(&header[12..24]);
    let page = u64::from(u32::from_be_bytes([
        header[8], header[9], header[10], header[11],
    ]));
    Ok((bytes.len() as u64, seq, page))
}

/// Frames and bytes of write-ahead log per commit (see the module's documentation).
fn wal(mut side: Side, db: &Path, size: usize, n: usize) -> Result<()> {
    let mut versions = [0; STREAMS];
    append(&mut side, commits(0, STREAMS, size, &mut versions))?;
    let (before, seq, page) = wal_state(db)?;
    append(&mut side, commits(STREAMS * size, n, size, &mut versions))?;
    let (after, seq_after, _) = wal_state(db)?;
    if seq != seq_after {
        bail!("a checkpoint ran during the {n} commits: give fewer");
    }
    let frames = (after - before) as f64 / (page + 24) as f64;
    println!(
        "{:.2} frames ({:.0} bytes) of write-ahead log per commit of {size} events ({n} commits, {page}-byte pages)",
        frames / n as f64,
        (after - before) as f64 / n as f64
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, side, what, size, n] = args.as_slice() else {
        bail!("usage: events_cpu kg|raw append|read|wal SIZE COMMITS");
    };
    let size: usize = size.parse().context("SIZE")?;
    let n: usize = n.parse().context("COMMITS")?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join(if side == "kg" { "kg" } else { "raw.db" });
    let mut side = match side.as_str() {
        "kg" => Side::Kg(open_store(Backend::Sqlite, &db)?),
        "raw" => Side::Raw(RawLog::open(&db)?),
        other => bail!("unknown side {other}"),
    };
    if what == "wal" {
        return wal(side, &db, size, n);
    }
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
