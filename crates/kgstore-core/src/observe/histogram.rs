//! A latency histogram with fixed log-linear buckets: recorded with two relaxed
//! atomic additions (and a load for the maximum), read as a plain [`Histogram`]
//! that merges with others and answers quantiles within about 3 %.
//!
//! Bucket layout (values in nanoseconds): values below 16 have a bucket each; above,
//! every power of two is split into 16 equal sub-buckets, so a bucket is at most
//! 1/16 of its lower bound wide. Values from 2^44 ns (about 4.9 hours) up share the
//! last bucket. A quantile is reported as its bucket's midpoint (at most 1/32 off),
//! never above the exact maximum, which is kept separately.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// log2 of the sub-buckets per power of two.
const SUB_BITS: u32 = 4;
/// Sub-buckets per power of two.
const SUB: u64 = 1 << SUB_BITS;
/// The highest power of two with buckets of its own.
const TOP_BIT: u32 = 43;
/// How many buckets there are.
pub(crate) const BUCKETS: usize = ((TOP_BIT - SUB_BITS + 2) as usize) << SUB_BITS;

/// The bucket of a value in nanoseconds.
fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB {
        return nanos as usize;
    }
    let msb = 63 - nanos.leading_zeros();
    if msb > TOP_BIT {
        return BUCKETS - 1;
    }
    let shift = msb - SUB_BITS;
    ((u64::from(shift + 1) << SUB_BITS) + ((nanos >> shift) - SUB)) as usize
}

/// The lowest value of a bucket and its width, in nanoseconds.
fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB {
        return (index, 1);
    }
    let shift = (index >> SUB_BITS) - 1;
    let sub = index & (SUB - 1);
    ((SUB + sub) << shift, 1 << shift)
}

/// The recording side: shared between threads, updated with relaxed atomics.
pub(crate) struct AtomicHistogram {
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl AtomicHistogram {
    /// Adds one value.
    pub(crate) fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(nanos, Ordering::Relaxed);
        if nanos > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(nanos, Ordering::Relaxed);
        }
    }

    /// What it holds now (values recorded meanwhile may or may not be in it).
    pub(crate) fn snapshot(&self) -> Histogram {
        let buckets: Vec<(u16, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let n = b.load(Ordering::Relaxed);
                (n > 0).then_some((i as u16, n))
            })
            .collect();
        Histogram {
            count: buckets.iter().map(|(_, n)| n).sum(),
            sum_ns: self.sum.load(Ordering::Relaxed),
            max_ns: self.max.load(Ordering::Relaxed),
            buckets,
        }
    }

    /// Forgets everything.
    pub(crate) fn reset(&self) {
        for bucket in self.buckets.iter() {
            bucket.store(0, Ordering::Relaxed);
        }
        self.sum.store(0, Ordering::Relaxed);
        self.max.store(0, Ordering::Relaxed);
    }
}

/// A histogram of durations, as read from a store's metrics: how many values, their
/// sum and maximum, and the non-empty buckets. Histograms of the same kind of
/// operation add up with [`Histogram::merge`] (several processes, several runs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum, in nanoseconds.
    pub sum_ns: u64,
    /// The largest, in nanoseconds (exact).
    pub max_ns: u64,
    /// `(bucket index, count)` of every non-empty bucket, by index.
    pub buckets: Vec<(u16, u64)>,
}

impl Histogram {
    /// The value below which a fraction `q` (0 to 1) of the values lie: the midpoint
    /// of the bucket holding it (within about 3 %), never above the maximum.
    /// Zero for an empty histogram.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(index, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let (low, width) = bucket_range(usize::from(index));
                let mid = low + width / 2;
                return Duration::from_nanos(mid.min(self.max_ns));
            }
        }
        self.max()
    }

    /// The largest value.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    /// The sum of the values.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.sum_ns)
    }

    /// The mean value (zero for an empty histogram).
    pub fn mean(&self) -> Duration {
        Duration::from_nanos(self.sum_ns.checked_div(self.count).unwrap_or(0))
    }

    /// Adds `other`'s values to these.
    pub fn merge(&mut self, other: &Histogram) {
        let mut merged: Vec<(u16, u64)> =
            Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(i, n)), Some(&&(j, m))) if i == j => {
                    merged.push((i, n.saturating_add(m)));
                    a.next();
                    b.next();
                }
                (Some(&&(i, n)), Some(&&(j, _))) if i < j => {
                    merged.push((i, n));
                    a.next();
                }
                (_, Some(&&(j, m))) => {
                    merged.push((j, m));
                    b.next();
                }
                (Some(&&(i, n)), None) => {
                    merged.push((i, n));
                    a.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = merged;
        self.count = self.count.saturating_add(other.count);
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_and_stay_narrow() {
        let mut last = 0;
        for nanos in (0..4096).chain((12..44).flat_map(|b| {
            let base = 1u64 << b;
            [base - 1, base, base + 1, base + base / 3]
        })) {
            let index = bucket_of(nanos);
            assert!(index < BUCKETS);
            let (low, width) = bucket_range(index);
            assert!(
                low <= nanos && nanos < low + width,
                "{nanos} not in [{low}, +{width})"
            );
            assert!(
                width == 1 || width * 16 <= low,
                "bucket of {nanos} too wide: {width}"
            );
            if nanos < 4096 {
                assert!(index >= last, "bucket indexes must grow with values");
                last = index;
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_of(1 << 44), BUCKETS - 1);
        assert_eq!(bucket_of((1 << 44) - 1), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_three_percent_and_never_above_the_maximum() {
        let h = AtomicHistogram::default();
        for micros in 1..=10_000u64 {
            h.record(Duration::from_micros(micros));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.max(), Duration::from_millis(10));
        for (q, exact) in [(0.5, 5_000.0), (0.99, 9_900.0), (0.001, 10.0)] {
            let got = s.quantile(q).as_nanos() as f64 / 1000.0;
            assert!(
                (got - exact).abs() / exact <= 0.035,
                "q{q}: {got} µs, exact {exact} µs"
            );
        }
        assert!(s.quantile(1.0) <= s.max());
        assert_eq!(s.mean(), Duration::from_nanos(5_000_500));
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let (a, b, both) = (
            AtomicHistogram::default(),
            AtomicHistogram::default(),
            AtomicHistogram::default(),
        );
        for i in 0..500u64 {
            let d = Duration::from_nanos(i * i * 37 + 3);
            if i % 3 == 0 { &a } else { &b }.record(d);
            both.record(d);
        }
        let mut merged = a.snapshot();
        merged.merge(&b.snapshot());
        assert_eq!(merged, both.snapshot());
        let mut empty = Histogram::default();
        empty.merge(&merged);
        assert_eq!(empty, merged);
    }

    #[test]
    fn reset_empties_and_an_empty_histogram_answers_zero() {
        let h = AtomicHistogram::default();
        h.record(Duration::from_secs(3));
        h.reset();
        let s = h.snapshot();
        assert_eq!(s, Histogram::default());
        assert_eq!(s.quantile(0.99), Duration::ZERO);
        assert_eq!(s.mean(), Duration::ZERO);
    }

    #[test]
    fn serializes_as_plain_json_and_back() {
        let h = AtomicHistogram::default();
        h.record(Duration::from_micros(7));
        let s = h.snapshot();
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Histogram>(&text).unwrap(), s);
    }
}
