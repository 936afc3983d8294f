//! Callgrind bench (not a cargo target; see docs/benchmarks.md, "Session 15:
//! the write timestamp's conversion"): kgstore-core's `whole_micros`
//! (crates/kgstore-core/src/timestamp.rs, copied here as it is private) against
//! the plain `i64::try_from(d.as_micros()).unwrap_or(i64::MAX)`, alone and
//! inside `Timestamp::now`'s body.
//!
//! ```sh
//! rustc --edition 2024 -C opt-level=3 -C debuginfo=line-tables-only -o /tmp/wm whole_micros.rs
//! for m in none whole plain now-whole now-plain; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$m /tmp/wm $m 1000000 2>&1 | grep Collected
//! done
//! ```
use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[inline]
fn whole_micros(d: Duration) -> i64 {
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|secs| secs.checked_mul(1_000_000))
        .and_then(|micros| micros.checked_add(i64::from(d.subsec_micros())))
        .unwrap_or(i64::MAX)
}

#[inline]
fn plain_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

const MIN_MICROS: i64 = -62_135_596_800_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

#[inline(never)]
fn now_whole() -> i64 {
    let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => whole_micros(since),
        Err(before) => whole_micros(before.duration()).saturating_neg(),
    };
    micros.clamp(MIN_MICROS, MAX_MICROS)
}

#[inline(never)]
fn now_plain() -> i64 {
    let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => plain_micros(since),
        Err(before) => plain_micros(before.duration()).saturating_neg(),
    };
    micros.clamp(MIN_MICROS, MAX_MICROS)
}

#[inline(never)]
fn conv_whole(d: Duration) -> i64 { whole_micros(d) }
#[inline(never)]
fn conv_plain(d: Duration) -> i64 { plain_micros(d) }
#[inline(never)]
fn conv_none(d: Duration) -> i64 { d.as_secs() as i64 }

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let n: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let base = Duration::new(1_765_000_000, 123_456_789);
    let mut acc = 0i64;
    for i in 0..n {
        let d = black_box(base + Duration::from_nanos(i * 7919));
        acc = acc.wrapping_add(match mode.as_str() {
            "whole" => conv_whole(d),
            "plain" => conv_plain(d),
            "none" => conv_none(d),
            "now-whole" => now_whole(),
            "now-plain" => now_plain(),
            _ => panic!("mode: whole | plain | none | now-whole | now-plain"),
        });
    }
    println!("{acc}");
}
