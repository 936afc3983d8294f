//! What a run reports: one [`Row`] per phase and backend, as a JSON line and in
//! a table, and the process's peak resident memory.

use std::fmt::Write as _;

use serde::Serialize;

/// One measured phase of one backend or baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// `memory`, `sqlite`, `jsonfs`, `git`, or a baseline: `raw-sqlite`,
    /// `sqlite-backup-api`, `fsync-floor`, `git-fast-import`, …
    pub backend: String,
    /// The phase's name (see [`Phase`](crate::Phase)).
    pub phase: &'static str,
    /// Operations (items, for loads, listings, backups and restores).
    pub ops: u64,
    /// Wall-clock seconds the phase took.
    pub secs: f64,
    /// `ops / secs`.
    pub ops_per_sec: f64,
    /// This row's throughput ÷ its baseline's, measured in the same run.
    pub ratio_to_baseline: Option<f64>,
    /// Which row [`Row::ratio_to_baseline`] compares with.
    pub baseline: Option<String>,
    /// This row's throughput ÷ the lean hand-written SQLite baseline's
    /// (`raw-sqlite-lean`, [`crate::lean`]), measured in the same run: what the
    /// peers comparison asks of the SQLite backend.
    pub lean_ratio: Option<f64>,
    /// The ratio issue #3 asks for, where it asks for one.
    pub target_ratio: Option<f64>,
    /// With `--metrics-cost`: how much longer the phase takes with the store's metrics
    /// on than off, as a fraction (0.012 = 1.2 %), from pairs of slices run on and
    /// off back to back (see `docs/benchmarks.md`).
    pub metrics_cost: Option<f64>,
    /// The process's peak resident set during the phase (VmHWM, Linux only).
    pub peak_rss_bytes: Option<u64>,
    /// How far the peak rose above the resident set at the phase's start (VmHWM −
    /// VmRSS; the streaming phases' memory bound).
    pub rss_growth_bytes: Option<u64>,
    /// The phase's answer (sums of counts, lengths or indexes) that every backend
    /// and baseline must agree on; `None` where there is nothing to compare.
    pub checksum: Option<u64>,
}

impl Row {
    /// The row as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Whether the row meets its target (`None` without a target or a ratio).
    pub fn meets_target(&self) -> Option<bool> {
        Some(self.ratio_to_baseline? >= self.target_ratio?)
    }
}

/// Resets the peak resident set of the process, so the next [`peak_rss_bytes`]
/// covers what happens from now on (Linux ≥ 4.0; elsewhere nothing happens).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident set (VmHWM) of the process, where `/proc` tells it.
pub fn peak_rss_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// The resident set (VmRSS) of the process now, where `/proc` tells it.
pub fn rss_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line
        .trim_start_matches(field)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The rows as a readable table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<20} {:>9} {:>9} {:>13} {:>7} {:<18} {:>6} {:>8} {:>8} {:>9} {:>8} {:>16}",
        "phase",
        "backend",
        "ops",
        "secs",
        "ops/s",
        "ratio",
        "baseline",
        "lean",
        "target",
        "metrics",
        "peak MiB",
        "+MiB",
        "checksum"
    );
    for r in rows {
        let ratio = r
            .ratio_to_baseline
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"));
        let target = match (r.target_ratio, r.meets_target()) {
            (Some(t), Some(true)) => format!("≥{t:.1} ok"),
            (Some(t), _) => format!("≥{t:.1} NO"),
            (None, _) => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<16} {:<20} {:>9} {:>9.3} {:>13} {:>7} {:<18} {:>6} {:>8} {:>8} {:>9} {:>8} {:>16}",
            r.phase,
            r.backend,
            r.ops,
            r.secs,
            thousands(r.ops_per_sec),
            ratio,
            r.baseline.as_deref().unwrap_or("-"),
            r.lean_ratio
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}")),
            target,
            r.metrics_cost
                .map_or_else(|| "-".to_owned(), |c| format!("{:+.1}%", c * 100.0)),
            r.peak_rss_bytes.map_or_else(
                || "-".to_owned(),
                |b| format!("{:.0}", b as f64 / 1048576.0)
            ),
            r.rss_growth_bytes.map_or_else(
                || "-".to_owned(),
                |b| format!("{:.0}", b as f64 / 1048576.0)
            ),
            r.checksum.map_or_else(|| "-".to_owned(), |c| c.to_string()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234567.0), "1,234,567");
    }
}
