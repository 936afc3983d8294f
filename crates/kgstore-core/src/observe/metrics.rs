//! The figures a store keeps about itself, read as a plain [`Metrics`] struct.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::histogram::Histogram;
use crate::timestamp::Timestamp;

/// Counts and latencies of one kind of operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpMetrics {
    /// How many operations ran (failed ones included).
    pub count: u64,
    /// How many of them failed.
    pub errors: u64,
    /// Their durations. For reads, and for writes and commits on a backend without
    /// durability, this is a sample (see [`Metrics::read_sample_every`] and
    /// [`Metrics::write_sample_every`]); `latency.count` says how many were timed.
    pub latency: Histogram,
}

impl OpMetrics {
    /// The median duration (of the timed operations).
    pub fn p50(&self) -> Duration {
        self.latency.quantile(0.50)
    }

    /// The 99th percentile duration.
    pub fn p99(&self) -> Duration {
        self.latency.quantile(0.99)
    }

    /// The longest duration.
    pub fn max(&self) -> Duration {
        self.latency.max()
    }

    /// Adds `other` to these.
    pub fn merge(&mut self, other: &OpMetrics) {
        self.count = self.count.saturating_add(other.count);
        self.errors = self.errors.saturating_add(other.errors);
        self.latency.merge(&other.latency);
    }
}

/// Whether a backend figure counts events (and adds up across runs and processes)
/// or measures a state (and only its latest value means anything).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureKind {
    /// Counts events since the store was opened (or the figures were reset).
    Counter,
    /// Measures the state now (a file's size, a number of files).
    Gauge,
}

/// One figure a backend keeps about itself (SQLite's page-cache hits, the size of
/// its write-ahead log; journals the JSON-files backend replayed; loose objects in a
/// git repository), from [`Backend::figures`](crate::Backend::figures).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendFigure {
    /// A short snake_case name, with its unit as a suffix where it has one (`wal_bytes`).
    pub name: String,
    /// The value.
    pub value: u64,
    /// Counter or gauge.
    pub kind: FigureKind,
    /// What it means, in one line.
    pub help: String,
}

impl BackendFigure {
    /// A counter.
    pub fn counter(name: &str, value: u64, help: &str) -> Self {
        Self {
            name: name.to_owned(),
            value,
            kind: FigureKind::Counter,
            help: help.to_owned(),
        }
    }

    /// A gauge.
    pub fn gauge(name: &str, value: u64, help: &str) -> Self {
        Self {
            kind: FigureKind::Gauge,
            ..Self::counter(name, value, help)
        }
    }
}

/// A store's performance figures since it was opened or its metrics were last reset
/// ([`Store::metrics`](crate::Store::metrics)). Plain data: it serializes to JSON and
/// merges with the figures of other runs ([`Metrics::merge`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The backend's name.
    pub backend: String,
    /// Whether the store was keeping metrics when they were read (turned off, only
    /// errors and slow operations are still counted).
    pub enabled: bool,
    /// When counting started (the open, or the last reset).
    pub since: Timestamp,
    /// Seconds covered (for merged figures: the sum over the runs).
    pub seconds: f64,
    /// How many runs (store handles) the figures cover: 1, or more once merged.
    pub runs: u64,
    /// One in how many reads is timed for the read latencies (1: every read).
    pub read_sample_every: u32,
    /// One in how many write transactions is timed for the write and commit
    /// latencies (1: every one; see [`WRITE_SAMPLE_EVERY`](crate::observe::WRITE_SAMPLE_EVERY)).
    /// Figures recorded before it existed timed every one.
    #[serde(default = "every_one")]
    pub write_sample_every: u32,
    /// Queries: each call on the store or on a read transaction (a get, a listing,
    /// a traversal, …), including taking its snapshot.
    pub reads: OpMetrics,
    /// Write transactions, from asking for the writer lock to the end of the commit
    /// (including the caller's own work inside the transaction).
    pub write_transactions: OpMetrics,
    /// Commits: the part of a write transaction from its closure's return to the
    /// backend's durable acknowledgement (deferred checks included).
    pub commits: OpMetrics,
    /// Waits for a lock another writer held (of this process or another), as the
    /// backends report them: only waits that happened, not uncontended acquisitions.
    /// A wait that ended in `Locked` counts as an error.
    pub lock_waits: OpMetrics,
    /// Backups taken of the store.
    pub backups: OpMetrics,
    /// Restores into the store.
    pub restores: OpMetrics,
    /// Entities written by committed transactions (created, updated or deleted).
    pub entities_written: u64,
    /// Operations slower than the slow-operation threshold.
    pub slow_operations: u64,
    /// Attempts a backend repeated (a branch lock held by another git process, say).
    pub retries: u64,
    /// Recovery actions at open or before a write (journals replayed or discarded,
    /// temporary files removed, stale locks cleared).
    pub recovery_actions: u64,
    /// Failed operations by error kind (`validation`, `io`, `locked`, …).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The backend's own figures (empty for backends that keep none).
    pub backend_figures: Vec<BackendFigure>,
}

/// The sampling of figures that predate [`Metrics::write_sample_every`]: every write timed.
fn every_one() -> u32 {
    1
}

impl Metrics {
    /// Adds another run's figures to these: counters and histograms add up, backend
    /// counters add up and backend gauges take `other`'s value (the later run's).
    pub fn merge(&mut self, other: &Metrics) {
        if self.runs == 0 {
            self.backend = other.backend.clone();
            self.since = other.since;
            self.read_sample_every = other.read_sample_every;
            self.write_sample_every = other.write_sample_every;
        }
        self.since = self.since.min(other.since);
        self.enabled = other.enabled;
        self.seconds += other.seconds;
        self.runs = self.runs.saturating_add(other.runs);
        for (mine, theirs) in [
            (&mut self.reads, &other.reads),
            (&mut self.write_transactions, &other.write_transactions),
            (&mut self.commits, &other.commits),
            (&mut self.lock_waits, &other.lock_waits),
            (&mut self.backups, &other.backups),
            (&mut self.restores, &other.restores),
        ] {
            mine.merge(theirs);
        }
        for (mine, theirs) in [
            (&mut self.entities_written, other.entities_written),
            (&mut self.slow_operations, other.slow_operations),
            (&mut self.retries, other.retries),
            (&mut self.recovery_actions, other.recovery_actions),
        ] {
            *mine = mine.saturating_add(theirs);
        }
        for (kind, n) in &other.errors_by_kind {
            let entry = self.errors_by_kind.entry(kind.clone()).or_default();
            *entry = entry.saturating_add(*n);
        }
        for figure in &other.backend_figures {
            match self
                .backend_figures
                .iter_mut()
                .find(|f| f.name == figure.name)
            {
                Some(mine) if figure.kind == FigureKind::Counter => {
                    mine.value = mine.value.saturating_add(figure.value);
                }
                Some(mine) => mine.value = figure.value,
                None => self.backend_figures.push(figure.clone()),
            }
        }
    }

    /// The figure of the backend with this name.
    pub fn backend_figure(&self, name: &str) -> Option<u64> {
        self.backend_figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn merging_adds_counters_and_keeps_the_latest_gauges() {
        let mut one = Metrics {
            runs: 1,
            backend: "sqlite".into(),
            entities_written: 3,
            errors_by_kind: [("io".to_owned(), 1)].into(),
            backend_figures: vec![
                BackendFigure::counter("hits", 10, "h"),
                BackendFigure::gauge("wal_bytes", 100, "w"),
            ],
            ..Metrics::default()
        };
        one.reads.count = 5;
        let mut two = one.clone();
        two.backend_figures[1].value = 7;
        two.errors_by_kind.insert("locked".into(), 2);
        let mut total = Metrics::default();
        total.merge(&one);
        total.merge(&two);
        assert_eq!(total.runs, 2);
        assert_eq!(total.backend, "sqlite");
        assert_eq!(total.reads.count, 10);
        assert_eq!(total.entities_written, 6);
        assert_eq!(total.errors_by_kind["io"], 2);
        assert_eq!(total.errors_by_kind["locked"], 2);
        assert_eq!(total.backend_figure("hits"), Some(20));
        assert_eq!(total.backend_figure("wal_bytes"), Some(7));
        let text = serde_json::to_string(&total).unwrap();
        assert_eq!(serde_json::from_str::<Metrics>(&text).unwrap(), total);
    }
}
