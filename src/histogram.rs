//! A latency histogram that threads update with relaxed atomics.
//!
//! Recording is a handful of atomic adds, no lock and no allocation, so
//! it can sit on the request path. Buckets are log-linear over
//! microseconds: exact below 16 µs, then 16 buckets per power of two, so
//! a reported percentile is within about 6 % of the true value. The
//! range tops out at 2^40 µs (about 12 days); larger values land in the
//! last bucket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two (and the exact range below it).
const SUB: u64 = 16;
const SUB_BITS: u32 = 4;
/// Powers of two covered above the exact range: 2^4 .. 2^40 µs.
const OCTAVES: usize = 36;
const BUCKETS: usize = SUB as usize + OCTAVES * SUB as usize;

pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

/// Percentiles of a histogram at one moment, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

fn bucket_of(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros(); // >= SUB_BITS
    let sub = (us >> (octave - SUB_BITS)) & (SUB - 1);
    let index = SUB as usize + (octave - SUB_BITS) as usize * SUB as usize + sub as usize;
    index.min(BUCKETS - 1)
}

/// The middle of a bucket's range: the value a percentile reports.
fn bucket_value(index: usize) -> u64 {
    if index < SUB as usize {
        return index as u64;
    }
    let rel = index - SUB as usize;
    let octave = (rel / SUB as usize) as u32 + SUB_BITS;
    let sub = (rel % SUB as usize) as u64;
    let width = 1u64 << (octave - SUB_BITS);
    (1u64 << octave) + sub * width + width / 2
}

impl Histogram {
    pub fn record(&self, elapsed: Duration) {
        self.record_us(elapsed.as_micros().min(u64::MAX as u128) as u64);
    }

    pub fn record_us(&self, us: u64) {
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Percentiles over everything recorded so far. Concurrent records
    /// may or may not be included; the result is consistent enough for
    /// monitoring.
    pub fn summary(&self) -> Summary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Summary::default();
        }
        let max_us = self.max_us.load(Ordering::Relaxed);
        let at = |q: f64| percentile(&counts, total, q).min(max_us);
        Summary {
            count: total,
            mean_us: self.sum_us.load(Ordering::Relaxed) as f64 / total as f64,
            p50_us: at(0.50),
            p95_us: at(0.95),
            p99_us: at(0.99),
            max_us,
        }
    }
}

fn percentile(counts: &[u64], total: u64, q: f64) -> u64 {
    // The rank of the q-th value, 1-based, never 0.
    let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (index, &n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bucket_value(index);
        }
    }
    bucket_value(counts.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_sixteen_and_ordered_above() {
        for us in 0..16 {
            assert_eq!(bucket_value(bucket_of(us)), us);
        }
        let mut last = 0;
        for us in [16, 17, 31, 32, 100, 1_000, 65_535, 1 << 30] {
            let b = bucket_of(us);
            assert!(b >= last, "{us}");
            last = b;
        }
    }

    #[test]
    fn a_bucket_reports_within_its_precision() {
        for us in [
            16u64,
            20,
            33,
            100,
            999,
            1_000,
            12_345,
            1_000_000,
            987_654_321,
        ] {
            let got = bucket_value(bucket_of(us)) as f64;
            let error = (got - us as f64).abs() / us as f64;
            assert!(error <= 1.0 / 16.0, "{us} reported as {got}");
        }
    }

    #[test]
    fn huge_values_land_in_the_last_bucket() {
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        let h = Histogram::default();
        h.record(Duration::from_secs(u64::MAX / 2));
        assert_eq!(h.count(), 1);
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let h = Histogram::default();
        // 1..=1000 µs, one each.
        for us in 1..=1000 {
            h.record_us(us);
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        let near = |got: u64, want: f64| ((got as f64 - want).abs() / want) <= 1.0 / 16.0;
        assert!(near(s.p50_us, 500.0), "{s:?}");
        assert!(near(s.p95_us, 950.0), "{s:?}");
        assert!(near(s.p99_us, 990.0), "{s:?}");
        assert_eq!(s.max_us, 1000);
        assert!((s.mean_us - 500.5).abs() < 1e-9);
    }

    #[test]
    fn a_percentile_never_exceeds_the_maximum() {
        let h = Histogram::default();
        h.record_us(17);
        let s = h.summary();
        assert_eq!((s.p50_us, s.p99_us, s.max_us), (17, 17, 17));
    }

    #[test]
    fn empty_is_all_zero() {
        assert_eq!(Histogram::default().summary(), Summary::default());
    }
}
