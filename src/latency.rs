//! Latency histograms observed on hot paths (Raft log flushes, applies, every command): counts in
//! fixed buckets kept in atomics, so observing costs a few relaxed additions and no lock. The
//! HTTP `/metrics` endpoint renders them as Prometheus histograms; INFO's averages come from the
//! same sums and counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (a last bucket, +Inf, catches the rest).
pub const BOUNDS_MICROS: [u64; 19] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Buckets of a latency histogram (the last is +Inf).
pub const BUCKETS: usize = BOUNDS_MICROS.len() + 1;

/// The bucket an observation of `micros` falls in.
pub fn bucket_of(micros: u64) -> usize {
    BOUNDS_MICROS.partition_point(|&bound| bound < micros)
}

impl LatencySnapshot {
    /// A histogram from counts per bucket (not cumulative) and the sum of the observations.
    pub fn from_micros(counts: &[u64; BUCKETS], sum_micros: u64) -> LatencySnapshot {
        let buckets: Vec<(f64, u64)> = counts
            .iter()
            .enumerate()
            .map(|(i, &n)| (BOUNDS_MICROS.get(i).map_or(f64::INFINITY, |&us| us as f64 / 1e6), n))
            .collect();
        LatencySnapshot { count: counts.iter().sum(), buckets, sum: sum_micros as f64 / 1e6 }
    }
}

/// One histogram.
#[derive(Debug, Default)]
pub struct Latency {
    /// Observations per bucket (not cumulative); the last is +Inf.
    buckets: [AtomicU64; BUCKETS],
    sum_micros: AtomicU64,
}

/// A histogram's values at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySnapshot {
    /// (upper bound in seconds, observations in that bucket alone); the last bound is +Inf.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    /// Seconds for a latency histogram, the total size for [`Sizes`].
    pub sum: f64,
}

impl Latency {
    pub fn observe(&self, took: Duration) {
        let micros = took.as_micros().min(u64::MAX as u128) as u64;
        self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Microseconds observed so far.
    pub fn sum_micros(&self) -> u64 {
        self.sum_micros.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> LatencySnapshot {
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let bound = BOUNDS_MICROS.get(i).map_or(f64::INFINITY, |&us| us as f64 / 1e6);
                (bound, b.load(Ordering::Relaxed))
            })
            .collect();
        LatencySnapshot { count: buckets.iter().map(|(_, n)| n).sum(), buckets, sum: self.sum_micros() as f64 / 1e6 }
    }

    /// Forgets every observation (CONFIG RESETSTAT).
    pub fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
        self.sum_micros.store(0, Ordering::Relaxed);
    }
}

/// Upper bounds of the buckets of a [`Sizes`] histogram (a last bucket, +Inf, catches the rest).
pub const SIZE_BOUNDS: [u64; 13] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// A histogram of sizes (requests per log entry...), in powers of two.
#[derive(Debug, Default)]
pub struct Sizes {
    buckets: [AtomicU64; SIZE_BOUNDS.len() + 1],
    sum: AtomicU64,
}

impl Sizes {
    pub fn observe(&self, size: u64) {
        let bucket = SIZE_BOUNDS.partition_point(|&bound| bound < size);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(size, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LatencySnapshot {
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (SIZE_BOUNDS.get(i).map_or(f64::INFINITY, |&n| n as f64), b.load(Ordering::Relaxed)))
            .collect();
        LatencySnapshot {
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum: self.sum.load(Ordering::Relaxed) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Latency::default();
        for us in [0, 10, 11, 1_000, 999_999, 10_000_000, 10_000_001, u64::MAX] {
            h.observe(Duration::from_micros(us));
        }
        let s = h.snapshot();
        let at = |bound_us: u64| s.buckets[BOUNDS_MICROS.iter().position(|&b| b == bound_us).unwrap()].1;
        assert_eq!(at(10), 2, "0 and 10 us");
        assert_eq!(at(25), 1, "11 us");
        assert_eq!(at(1_000), 1);
        assert_eq!(at(1_000_000), 1, "999,999 us");
        assert_eq!(at(10_000_000), 1);
        assert_eq!(s.buckets.last().unwrap(), &(f64::INFINITY, 2));
        assert_eq!(s.count, 8);
        h.reset();
        let sizes = Sizes::default();
        for n in [1, 3, 4, 5, 5000] {
            sizes.observe(n);
        }
        let s = sizes.snapshot();
        assert_eq!(&s.buckets[..4], &[(1.0, 1), (2.0, 0), (4.0, 2), (8.0, 1)]);
        assert_eq!(s.buckets.last().unwrap(), &(f64::INFINITY, 1));
        assert_eq!((s.count, s.sum), (5, 5013.0));
        assert_eq!(h.count(), 0);
        assert_eq!(h.sum_micros(), 0);
    }
}
