//! Percentiles and rates over measured samples.

use std::time::Duration;

/// Latency percentiles of one series of samples.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub samples: usize,
    pub p50: Duration,
    pub p95: Duration,
}

impl Latency {
    /// None for an empty series: a row with no samples says "failed", not 0 ms.
    pub fn of(samples: &[Duration]) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort();
        Some(Latency {
            samples: sorted.len(),
            p50: percentile(&sorted, 50.0),
            p95: percentile(&sorted, 95.0),
        })
    }
}

/// Nearest-rank percentile of an ascending, non-empty slice.
pub fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn median(samples: &[Duration]) -> Option<Duration> {
    Latency::of(samples).map(|l| l.p50)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Operations per second: `count` done in `wall`.
pub fn rate(count: usize, wall: Duration) -> f64 {
    count as f64 / wall.as_secs_f64().max(1e-9)
}
