//! Parse throughput (MB/s) of a generated 1,000-scene series, beside what a
//! user would otherwise do with the same text in the same run: check that it
//! is UTF-8, and split it into lines with a blank-line count (the loop a
//! hand-written, regex-free reader starts with). Then the long-line and
//! many-line scaling that shows the parser is linear.
//!
//! ```text
//! cargo run --release -p kgstore-fountain --example throughput
//! cargo run --release -p kgstore-fountain --example throughput -- --scenes 1000 --rounds 5 --long-mib 100
//! ```
//!
//! Figures of a run are in `docs/benchmarks.md`. Every row reports the best of
//! the rounds; ratios compare with the UTF-8 check measured in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use kgstore_fountain::{parse, print, synthetic};

struct Options {
    scenes: usize,
    rounds: usize,
    long_mib: usize,
}

fn options() -> Options {
    let mut o = Options {
        scenes: 1000,
        rounds: 5,
        long_mib: 100,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--scenes", Some(v)) => o.scenes = v,
            ("--rounds", Some(v)) => o.rounds = v,
            ("--long-mib", Some(v)) => o.long_mib = v,
            _ => {
                eprintln!("usage: throughput [--scenes N] [--rounds R] [--long-mib M]");
                std::process::exit(2);
            }
        }
    }
    o
}

/// The best time of `rounds` runs of `f` over the whole input.
fn best(rounds: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut check = 0;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        check = black_box(f());
        best = best.min(started.elapsed());
    }
    (best, check)
}

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

fn main() {
    let o = options();
    let episodes = 10;
    let per_episode = o.scenes.div_ceil(episodes);
    let series = synthetic::series(episodes, per_episode, 20261205);
    let texts: Vec<Vec<u8>> = series.iter().map(|e| e.text.clone().into_bytes()).collect();
    let bytes: usize = texts.iter().map(Vec::len).sum();
    let scenes: usize = series.iter().map(|e| e.scenes).sum();
    println!(
        "series: {episodes} episodes, {scenes} scenes, {bytes} bytes ({:.2} MB); best of {} rounds",
        bytes as f64 / 1e6,
        o.rounds
    );

    let rows: Vec<(&str, (Duration, usize))> = vec![
        (
            "baseline: UTF-8 check (std::str::from_utf8)",
            best(o.rounds, || {
                texts
                    .iter()
                    .map(|t| std::str::from_utf8(t).map(str::len).unwrap_or(0))
                    .sum()
            }),
        ),
        (
            "baseline: UTF-8 check + split into lines, count blank ones",
            best(o.rounds, || {
                texts
                    .iter()
                    .map(|t| {
                        let s = std::str::from_utf8(t).unwrap_or("");
                        s.lines().filter(|l| l.trim().is_empty()).count() + s.lines().count()
                    })
                    .sum()
            }),
        ),
        (
            "kgstore-fountain: parse (owned copy of the bytes, as import reads files)",
            best(o.rounds, || {
                texts
                    .iter()
                    .map(|t| parse(t.clone()).unwrap().elements().len())
                    .sum()
            }),
        ),
        (
            "kgstore-fountain: parse + scenes + heading parts + speeches + characters",
            best(o.rounds, || {
                texts
                    .iter()
                    .map(|t| {
                        // What an import computes: each scene's parts, text,
                        // speeches, characters and counts once.
                        let script = parse(t.clone()).unwrap();
                        let mut n = 0;
                        for scene in script.scenes() {
                            n += scene.parts().map_or(0, |p| p.location.len());
                            let speeches = scene.speeches();
                            let characters = scene.characters_from(&speeches);
                            n += speeches.len() + scene.counts_with(&characters).actions;
                            n += scene.text().len();
                        }
                        n
                    })
                    .sum()
            }),
        ),
        (
            "kgstore-fountain: to_fountain (byte-identical print of a parsed script)",
            {
                let scripts: Vec<_> = texts.iter().map(|t| parse(t.clone()).unwrap()).collect();
                best(o.rounds, || {
                    scripts.iter().map(|s| s.to_fountain().len()).sum()
                })
            },
        ),
        (
            "kgstore-fountain: print (canonical, verified by parsing back)",
            {
                let docs: Vec<_> = texts
                    .iter()
                    .map(|t| parse(t.clone()).unwrap().document())
                    .collect();
                best(o.rounds, || {
                    docs.iter().map(|d| print(d).unwrap().len()).sum()
                })
            },
        ),
    ];
    let floor = rows[0].1.0;
    println!("{:<80} {:>9} {:>10} {:>8}", "what", "ms", "MB/s", "ratio");
    for (name, (time, _check)) in &rows {
        println!(
            "{name:<80} {:>9.2} {:>10.1} {:>8.3}",
            time.as_secs_f64() * 1e3,
            mb_per_s(bytes, *time),
            floor.as_secs_f64() / time.as_secs_f64()
        );
    }
    let parse_time = rows[2].1.0;
    println!(
        "parse: {:.0} scenes/s; {:.1}x the time of the line split",
        scenes as f64 / parse_time.as_secs_f64(),
        parse_time.as_secs_f64() / rows[1].1.0.as_secs_f64()
    );

    // Linear time: MB/s stays flat as one line, or the number of lines, grows
    // (sizes past the caches; 1 MiB fits in them and runs faster). Beside it,
    // the floor of any parser that keeps the source and a text of it: two
    // copies of the bytes and a UTF-8 check.
    println!("\nscaling (MB/s; flat means linear):");
    let unit = "He walks, *slowly*, [[note]] past the (window) - again ";
    let paragraph = "INT. ROOM - NIGHT\n\nShe waits.\n\nBOB (V.O.)\nHello.\n\n";
    for mib in [8, 32, o.long_mib] {
        let long = unit.repeat((mib << 20) / unit.len());
        let lines = paragraph.repeat((mib << 20) / paragraph.len());
        let rounds = o.rounds.min(3);
        let (t_copy, _) = best(rounds, || {
            let copy = String::from_utf8(long.as_bytes().to_vec()).unwrap_or_default();
            let again = copy.clone();
            copy.len() + again.len()
        });
        let (t_long, _) = best(rounds, || parse(long.as_str()).unwrap().elements().len());
        let (t_lines, _) = best(rounds, || parse(lines.as_str()).unwrap().elements().len());
        println!(
            "  {mib:>4} MiB: one line {:>7.1} (floor: two copies + UTF-8 check {:>7.1}); scenes of short lines {:>7.1}",
            mb_per_s(long.len(), t_long),
            mb_per_s(long.len(), t_copy),
            mb_per_s(lines.len(), t_lines)
        );
    }
}
