//! `kgstore-bench-mp`: several processes on one store.
//!
//! - **commits** with 1, 2 and 4 writer processes, each creating nodes one
//!   transaction at a time (one-file commits on `json://`) in a store of 2,000
//!   nodes (`--prefill`), beside the bare durable-write floor measured in the same folder just
//!   before (as many commits, one process): total commits per second;
//! - **reads while another process commits**: one process reads nodes by name, a
//!   transaction each, on a long-lived handle, for a fixed time, first alone (the
//!   baseline) and then while a writer process commits without pause: reads per
//!   second, and the writer's commits meanwhile.
//!
//! ```text
//! cargo run --release -p kgstore-bench --bin kgstore-bench-mp -- --dir /some/disk/folder
//! ```
//!
//! The processes are this binary again (`kgstore-bench-mp child …`); they start,
//! open the store, say `READY`, and begin together on the word `GO`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use kgstore::{GraphRead, Node, Store};
use serde_json::json;

use crate::floor;

/// The command line.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "kgstore-bench-mp",
    about = "kgstore with several processes on one store"
)]
pub struct MpArgs {
    /// The backends: `sqlite`, `jsonfs`.
    #[arg(long, value_delimiter = ',', default_values_t = ["sqlite".to_owned(), "jsonfs".to_owned()])]
    pub backend: Vec<String>,
    /// Where the stores go (a new folder inside, removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Commits per writer process in the commit phases.
    #[arg(long, default_value_t = 200)]
    pub commits: u64,
    /// Writer processes of the commit phases.
    #[arg(long, value_delimiter = ',', default_values_t = [1u64, 2, 4])]
    pub writers: Vec<u64>,
    /// Nodes in a commit phase's store before its writers start (and, on
    /// `json://`, its shard folders), as in a store in use.
    #[arg(long, default_value_t = 2000)]
    pub prefill: u64,
    /// Nodes in the store the reader reads.
    #[arg(long, default_value_t = 10_000)]
    pub nodes: u64,
    /// How long the reader reads in each read phase, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub read_ms: u64,
}

/// One measured figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// `sqlite`, `jsonfs`, or `fsync-floor`.
    pub backend: String,
    /// `commits-1-writer`, …, `reads-alone`, `reads-while-committing`.
    pub phase: String,
    /// Operations done.
    pub ops: u64,
    /// Seconds taken.
    pub secs: f64,
    /// The baseline's throughput (the floor for commits, reads alone for reads).
    pub baseline_per_sec: Option<f64>,
    /// What else happened meanwhile (the writer's commits during the reads).
    pub note: String,
}

impl Figure {
    /// Operations per second.
    pub fn per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }

    /// Throughput ÷ the baseline's.
    pub fn ratio(&self) -> Option<f64> {
        self.baseline_per_sec.map(|b| self.per_sec() / b)
    }

    /// The figure as one JSON line.
    pub fn to_json_line(&self) -> String {
        json!({
            "backend": self.backend,
            "phase": self.phase,
            "ops": self.ops,
            "secs": self.secs,
            "ops_per_sec": self.per_sec(),
            "ratio_to_baseline": self.ratio(),
            "note": self.note,
        })
        .to_string()
    }
}

fn url_for(backend: &str, dir: &Path) -> Result<String> {
    Ok(match backend {
        "sqlite" => format!("sqlite://{}/kg.db", dir.display()),
        "jsonfs" => format!("json://{}/kg", dir.display()),
        other => bail!("unknown backend {other:?} (sqlite, jsonfs)"),
    })
}

/// A child process of this binary, started and waiting for `GO`.
struct Worker {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Worker {
    fn start(args: &[String]) -> Result<Self> {
        let exe = std::env::current_exe().context("finding this binary")?;
        let mut child = Command::new(exe)
            .arg("child")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a child process")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut worker = Worker {
            child,
            lines: BufReader::new(stdout).lines(),
        };
        let ready = worker.line()?;
        if ready != "READY" {
            bail!("a child said {ready:?}");
        }
        Ok(worker)
    }

    fn line(&mut self) -> Result<String> {
        self.lines
            .next()
            .ok_or_else(|| anyhow!("a child ended early"))?
            .context("reading a child's output")
    }

    fn say(&mut self, word: &str) -> Result<()> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("no stdin"))?;
        writeln!(stdin, "{word}")?;
        stdin.flush()?;
        Ok(())
    }

    /// The child's last line, `OPS SECS`.
    fn result(mut self) -> Result<(u64, f64)> {
        let line = self.line()?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("a child failed ({status}): {line}");
        }
        let (ops, secs) = line
            .split_once(' ')
            .ok_or_else(|| anyhow!("a child said {line:?}"))?;
        Ok((ops.parse()?, secs.parse()?))
    }
}

/// The next line the parent says.
fn next_word() -> Result<String> {
    let mut line = String::new();
    if std::io::stdin()
        .read_line(&mut line)
        .context("reading stdin")?
        == 0
    {
        bail!("the parent is gone");
    }
    Ok(line.trim().to_owned())
}

/// A child's life: `child write URL PREFIX N` creates N nodes (or, with N = 0,
/// as many as it can until its stdin says `STOP`); `child read URL NODES MS` gets
/// random nodes for MS milliseconds. Both print `READY`, wait for `GO`, and end
/// with `OPS SECS`.
pub fn child(args: &[String]) -> Result<()> {
    match args {
        [mode, url, prefix, n] if mode == "write" => {
            let store = kgstore::open(url)?;
            let n: u64 = n.parse()?;
            println!("READY");
            next_word()?;
            // With N = 0 a thread waits for STOP while this one commits.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            if n == 0 {
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    let _ = next_word();
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                });
            }
            let started = Instant::now();
            let mut done = 0;
            while (n == 0 && !stop.load(std::sync::atomic::Ordering::SeqCst)) || (n > 0 && done < n)
            {
                store.create_node(Node::new(format!("{prefix}{done}"), "written")?)?;
                done += 1;
            }
            println!("{done} {}", started.elapsed().as_secs_f64());
        }
        [mode, url, nodes, ms] if mode == "read" => {
            let store = kgstore::open(url)?;
            let nodes: u64 = nodes.parse()?;
            let window = Duration::from_millis(ms.parse()?);
            // Warm the handle: every node once.
            for i in 0..nodes {
                store.get_node(&format!("n{i}"))?;
            }
            println!("READY");
            next_word()?;
            let started = Instant::now();
            let mut done = 0u64;
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            while started.elapsed() < window {
                for _ in 0..64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    store.get_node(&format!("n{}", x % nodes))?;
                }
                done += 64;
            }
            println!("{done} {}", started.elapsed().as_secs_f64());
        }
        _ => bail!("usage: kgstore-bench-mp child write URL PREFIX N | read URL NODES MS"),
    }
    Ok(())
}

/// Runs every phase on every backend; `on_figure` sees each figure as it comes.
pub fn run(args: &MpArgs, on_figure: &mut dyn FnMut(&Figure)) -> Result<Vec<Figure>> {
    let base = match &args.dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("kgstore-bench-mp-")
            .tempdir_in(dir)?,
        None => tempfile::Builder::new()
            .prefix("kgstore-bench-mp-")
            .tempdir()?,
    };
    let mut figures = Vec::new();
    let mut push = |figure: Figure, figures: &mut Vec<Figure>| {
        on_figure(&figure);
        figures.push(figure);
    };
    let mut floor_round = 0;
    for backend in &args.backend {
        for &writers in &args.writers {
            let dir = base.path().join(format!("{backend}-{writers}w"));
            std::fs::create_dir_all(&dir)?;
            let url = url_for(backend, &dir)?;
            // A store that already has nodes (and, on `json://`, its shard folders),
            // as a store in use does.
            let store = kgstore::open(&url)?;
            store.write(|tx| {
                for i in 0..args.prefill {
                    tx.create_node(Node::new(format!("pre{i}"), "prefill")?)?;
                }
                Ok(())
            })?;
            drop(store);
            // The floor, in the same folder, just before: what as many durable
            // one-file commits cost at least.
            let ops = writers * args.commits;
            let floor_secs = floor::measure(
                &base.path().join("floor"),
                &[b'x'; 300],
                floor_round,
                ops as usize,
            )?
            .as_secs_f64();
            floor_round += ops as usize;
            let floor_per_sec = ops as f64 / floor_secs.max(1e-9);
            let phase = format!(
                "commits-{writers}-writer{}",
                if writers == 1 { "" } else { "s" }
            );
            push(
                Figure {
                    backend: "fsync-floor".into(),
                    phase: phase.clone(),
                    ops,
                    secs: floor_secs,
                    baseline_per_sec: None,
                    note: format!("before {backend}: temp write + fsync + rename + folder fsync"),
                },
                &mut figures,
            );
            let mut workers = (0..writers)
                .map(|w| {
                    Worker::start(&[
                        "write".into(),
                        url.clone(),
                        format!("w{w}-"),
                        args.commits.to_string(),
                    ])
                })
                .collect::<Result<Vec<_>>>()?;
            let started = Instant::now();
            for worker in &mut workers {
                worker.say("GO")?;
            }
            let mut done = 0;
            for worker in workers {
                done += worker.result()?.0;
            }
            let secs = started.elapsed().as_secs_f64();
            let stored = kgstore::open(&url)?.count_nodes()?;
            if stored != done + args.prefill {
                bail!(
                    "{backend}: {done} commits acknowledged, {} nodes stored",
                    stored - args.prefill
                );
            }
            push(
                Figure {
                    backend: backend.clone(),
                    phase,
                    ops: done,
                    secs,
                    baseline_per_sec: Some(floor_per_sec),
                    note: format!("{writers} process(es) × {} one-node commits", args.commits),
                },
                &mut figures,
            );
        }
        let dir = base.path().join(format!("{backend}-reads"));
        std::fs::create_dir_all(&dir)?;
        let url = url_for(backend, &dir)?;
        let store: Store = kgstore::open(&url)?;
        store.write(|tx| {
            for i in 0..args.nodes {
                tx.create_node(Node::new(format!("n{i}"), "read")?)?;
            }
            Ok(())
        })?;
        drop(store);
        let read = |writer: Option<&mut Worker>| -> Result<(u64, f64)> {
            let mut reader = Worker::start(&[
                "read".into(),
                url.clone(),
                args.nodes.to_string(),
                args.read_ms.to_string(),
            ])?;
            if let Some(writer) = writer {
                writer.say("GO")?;
            }
            reader.say("GO")?;
            reader.result()
        };
        let (alone_ops, alone_secs) = read(None)?;
        let alone_per_sec = alone_ops as f64 / alone_secs.max(1e-9);
        push(
            Figure {
                backend: backend.clone(),
                phase: "reads-alone".into(),
                ops: alone_ops,
                secs: alone_secs,
                baseline_per_sec: None,
                note: "get by name, one transaction each, long-lived handle".into(),
            },
            &mut figures,
        );
        let mut writer = Worker::start(&["write".into(), url.clone(), "c".into(), "0".into()])?;
        let (ops, secs) = read(Some(&mut writer))?;
        writer.say("STOP")?;
        let (commits, commit_secs) = writer.result()?;
        push(
            Figure {
                backend: backend.clone(),
                phase: "reads-while-committing".into(),
                ops,
                secs,
                baseline_per_sec: Some(alone_per_sec),
                note: format!(
                    "another process committed {commits} one-node transactions ({:.0}/s)",
                    commits as f64 / commit_secs.max(1e-9)
                ),
            },
            &mut figures,
        );
    }
    Ok(figures)
}

/// The figures as a table.
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| backend | phase | ops | secs | ops/s | ratio | note |\n| --- | --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    for f in figures {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.0} | {} | {} |\n",
            f.backend,
            f.phase,
            f.ops,
            f.secs,
            f.per_sec(),
            f.ratio().map_or("".into(), |r| format!("{r:.2}")),
            f.note
        ));
    }
    out
}

/// The binary's entry: `child …` runs a child, anything else the benchmark.
pub fn main_entry() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let outcome = if argv.get(1).map(String::as_str) == Some("child") {
        child(&argv[2..])
    } else {
        let args = MpArgs::parse();
        eprintln!("kgstore-bench-mp: {}", crate::describe_machine());
        run(&args, &mut |f| println!("{}", f.to_json_line())).map(|figures| {
            println!();
            println!("kgstore-bench-mp, {}", crate::describe_machine());
            print!("{}", table(&figures));
        })
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kgstore-bench-mp: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
