//! `kgstore stats --perf` and `kgstore log-review`.

use std::fs::File;
use std::io::BufReader;
use std::time::Duration;

use anyhow::Result;
use kgstore::{Error, Metrics, OpMetrics};
use serde_json::{Value, json};

use super::Ctx;
use crate::cli::{LogReviewArgs, StatsArgs};
use crate::log_review;
use crate::output::Output;
use crate::perf_record;

/// A duration for people: ns, µs, ms or s with three significant digits.
pub(crate) fn human_duration(d: Duration) -> String {
    let nanos = d.as_nanos() as f64;
    let (value, unit) = if nanos < 1e3 {
        (nanos, "ns")
    } else if nanos < 1e6 {
        (nanos / 1e3, "µs")
    } else if nanos < 1e9 {
        (nanos / 1e6, "ms")
    } else {
        (nanos / 1e9, "s")
    };
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.decimals$} {unit}")
}

fn millis(d: Duration) -> f64 {
    kgstore::observe::millis(d)
}

/// The kinds of operation a store keeps figures of, with their names in tables.
fn operations(m: &Metrics) -> [(&'static str, &OpMetrics); 6] {
    [
        ("reads", &m.reads),
        ("write transactions", &m.write_transactions),
        ("commits", &m.commits),
        ("lock waits", &m.lock_waits),
        ("backups", &m.backups),
        ("restores", &m.restores),
    ]
}

/// Prints a store's metrics for people: the operations' table, the counters, errors
/// by kind and the backend's figures. Shared with the demo.
pub(crate) fn print_metrics(out: &mut Output, m: &Metrics) -> Result<()> {
    let rows: Vec<Vec<String>> = operations(m)
        .into_iter()
        .map(|(name, op)| {
            let timed = op.latency.count > 0;
            let cell = |d: Duration| {
                if timed {
                    human_duration(d)
                } else {
                    "-".to_owned()
                }
            };
            vec![
                name.to_owned(),
                op.count.to_string(),
                op.errors.to_string(),
                cell(op.p50()),
                cell(op.p99()),
                cell(op.max()),
            ]
        })
        .collect();
    out.table(
        &["OPERATION", "COUNT", "ERRORS", "P50", "P99", "MAX"],
        &rows,
    )?;
    if m.read_sample_every > 1 {
        out.line(&format!(
            "(read latencies from 1 read in {} timed; {} timed in all)",
            m.read_sample_every, m.reads.latency.count
        ))?;
    }
    if m.write_sample_every > 1 {
        out.line(&format!(
            "(write and commit latencies from 1 write transaction in {} timed; {} timed in all)",
            m.write_sample_every, m.write_transactions.latency.count
        ))?;
    }
    out.line(&format!(
        "entities written {}, slow operations {}, retries {}, recovery actions {}",
        m.entities_written, m.slow_operations, m.retries, m.recovery_actions
    ))?;
    if !m.errors_by_kind.is_empty() {
        let listed: Vec<String> = m
            .errors_by_kind
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        out.line(&format!("errors by kind: {}", listed.join(", ")))?;
    }
    if !m.backend_figures.is_empty() {
        let rows: Vec<Vec<String>> = m
            .backend_figures
            .iter()
            .map(|f| vec![f.name.clone(), f.value.to_string(), f.help.clone()])
            .collect();
        out.table(&["BACKEND FIGURE", "VALUE", "MEANING"], &rows)?;
    }
    Ok(())
}

/// A few lines on a store's figures: each kind of operation that ran, errors, and the
/// backend's figures (for the demo).
pub(crate) fn metrics_summary(m: &Metrics) -> Vec<String> {
    let mut lines: Vec<String> = operations(m)
        .into_iter()
        .filter(|(_, op)| op.count > 0)
        .map(|(name, op)| {
            let latency = if op.latency.count > 0 {
                format!(
                    ": p50 {}, p99 {}, max {}",
                    human_duration(op.p50()),
                    human_duration(op.p99()),
                    human_duration(op.max())
                )
            } else {
                String::new()
            };
            format!("{name} {}{latency}", op.count)
        })
        .collect();
    lines.push(format!(
        "entities written {}, errors {}, slow operations {}",
        m.entities_written,
        m.errors_by_kind.values().sum::<u64>(),
        m.slow_operations
    ));
    if !m.backend_figures.is_empty() {
        let figures: Vec<String> = m
            .backend_figures
            .iter()
            .map(|f| format!("{} {}", f.name, f.value))
            .collect();
        lines.push(format!("{}: {}", m.backend, figures.join(", ")));
    }
    lines
}

/// The figures with their quantiles spelled out, for `--json`.
fn metrics_json(m: &Metrics) -> Value {
    let summary: serde_json::Map<String, Value> = operations(m)
        .into_iter()
        .map(|(name, op)| {
            (
                name.replace(' ', "_"),
                json!({
                    "count": op.count,
                    "errors": op.errors,
                    "timed": op.latency.count,
                    "p50_ms": millis(op.p50()),
                    "p99_ms": millis(op.p99()),
                    "max_ms": millis(op.max()),
                }),
            )
        })
        .collect();
    json!({"summary": summary, "metrics": m})
}

/// `kgstore stats --perf [--reset]`.
pub(crate) fn stats(ctx: &mut Ctx<'_>, args: &StatsArgs) -> Result<()> {
    let url = ctx.parse_url()?;
    let store = ctx.open_existing()?;
    // The record is shown (and reset) whether or not this run adds to it.
    let record = perf_record::path_for(&url);
    let recording = perf_record::enabled();
    let mut total = match &record {
        Some(path) => perf_record::load(path)?.unwrap_or_default(),
        None => Metrics::default(),
    };
    total.merge(&store.metrics());
    if ctx.out.json() {
        let mut value = metrics_json(&total);
        value["store"] = json!(ctx.url);
        value["record"] = json!(record);
        value["reset"] = json!(args.reset);
        ctx.out.value(&value)?;
    } else {
        let over = match &record {
            Some(path) if recording => format!(
                "{} run(s) recorded in {} (this one included)",
                total.runs,
                path.display()
            ),
            Some(path) => format!(
                "{} run(s) recorded in {} and this one, which is not ({}=off)",
                total.runs.saturating_sub(1),
                path.display(),
                perf_record::PERF_ENV
            ),
            None => "this run only (no record is kept for this store)".to_owned(),
        };
        ctx.out.line(&format!(
            "performance of {} ({} backend): {over}, since {}",
            ctx.url, total.backend, total.since
        ))?;
        print_metrics(ctx.out, &total)?;
    }
    if args.reset {
        if let Some(path) = &record {
            perf_record::clear(path)?;
        }
        store.reset_metrics();
        ctx.record.set(false);
        if !ctx.out.json() {
            ctx.out.line("performance figures reset")?;
        }
    }
    Ok(())
}

/// `kgstore log-review PATH [--top N]`.
pub(crate) fn log_review(ctx: &mut Ctx<'_>, args: &LogReviewArgs) -> Result<()> {
    let file = File::open(&args.path).map_err(|e| Error::io(&args.path, e))?;
    let review =
        log_review::review(BufReader::new(file), args.top).map_err(|e| Error::io(&args.path, e))?;
    let out = &mut *ctx.out;
    if out.json() {
        return out.value(&review);
    }
    let levels: Vec<String> = review
        .by_level
        .iter()
        .map(|(level, n)| format!("{level} {n}"))
        .collect();
    out.line(&format!(
        "{}: {} event(s){} from {} to {}; {}",
        args.path.display(),
        review.events,
        match review.skipped {
            0 => String::new(),
            n => format!(" ({n} line(s) that are not log events skipped)"),
        },
        review.first_at.as_deref().unwrap_or("-"),
        review.last_at.as_deref().unwrap_or("-"),
        if levels.is_empty() {
            "no events".to_owned()
        } else {
            levels.join(", ")
        }
    ))?;

    out.line("")?;
    if review.errors.is_empty() {
        out.line("errors: none")?;
    } else {
        out.line("errors by kind:")?;
        let rows: Vec<Vec<String>> = review
            .errors
            .iter()
            .map(|e| {
                let ops: Vec<String> = e.by_op.iter().map(|(op, n)| format!("{op} {n}")).collect();
                vec![
                    e.kind.clone(),
                    e.count.to_string(),
                    ops.join(", "),
                    e.last_at.clone().unwrap_or_default(),
                    e.last_error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.table(
            &["KIND", "COUNT", "OPERATIONS", "LAST SEEN", "LAST MESSAGE"],
            &rows,
        )?;
    }

    out.line("")?;
    out.line(&format!(
        "slow operations (over the slow_ms threshold): {}",
        review.slow_operations
    ))?;
    if !review.slowest.is_empty() {
        out.line(&format!("the {} slowest operations:", review.slowest.len()))?;
        let rows: Vec<Vec<String>> = review
            .slowest
            .iter()
            .map(|t| {
                vec![
                    format!("{:.3}", t.elapsed_ms),
                    t.op.clone(),
                    t.at.clone().unwrap_or_default(),
                    t.message.clone(),
                    t.spans.clone(),
                    t.detail.clone(),
                ]
            })
            .collect();
        out.table(&["MS", "OP", "ENDED", "EVENT", "SPANS", "DETAIL"], &rows)?;
    }

    out.line("")?;
    let locks = &review.locks;
    if locks.waits == 0 {
        out.line("lock contention: none")?;
    } else {
        out.line(&format!(
            "lock contention: {} wait(s), {} given up, {:.3} ms in all, longest {:.3} ms",
            locks.waits, locks.gave_up, locks.total_ms, locks.max_ms
        ))?;
        let rows: Vec<Vec<String>> = locks
            .by_holder
            .iter()
            .map(|(holder, h)| {
                vec![
                    holder.clone(),
                    h.waits.to_string(),
                    format!("{:.3}", h.total_ms),
                    format!("{:.3}", h.max_ms),
                ]
            })
            .collect();
        out.table(&["HOLDER", "WAITS", "TOTAL MS", "MAX MS"], &rows)?;
    }
    if !review.recovery.is_empty() {
        let listed: Vec<String> = review
            .recovery
            .iter()
            .map(|(action, n)| format!("{action} {n}"))
            .collect();
        out.line("")?;
        out.line(&format!("recovery actions: {}", listed.join(", ")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_nanos(750)), "750 ns");
        assert_eq!(human_duration(Duration::from_micros(12)), "12.0 µs");
        assert_eq!(human_duration(Duration::from_micros(1500)), "1.50 ms");
        assert_eq!(human_duration(Duration::from_secs(250)), "250 s");
    }
}
