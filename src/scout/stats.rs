//! Request latency and errors per mode, and requests refused as "server
//! busy". Relaxed atomics only: recording sits on every request's path.

use super::Mode;
use crate::histogram::{Histogram, Summary};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
struct ModeStats {
    latency: Histogram,
    errors: AtomicU64,
}

pub struct RequestStats {
    started: Instant,
    /// Indexed like [`Mode::ALL`].
    by_mode: [ModeStats; Mode::ALL.len()],
    rejected: AtomicU64,
}

/// One mode's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModeSnapshot {
    pub mode: Mode,
    pub latency: Summary,
    pub errors: u64,
}

/// Every mode's figures (in [`Mode::ALL`] order) at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSnapshot {
    pub uptime: Duration,
    pub rejected: u64,
    pub by_mode: Vec<ModeSnapshot>,
}

impl Default for RequestStats {
    fn default() -> Self {
        RequestStats {
            started: Instant::now(),
            by_mode: Default::default(),
            rejected: AtomicU64::new(0),
        }
    }
}

fn index_of(mode: Mode) -> usize {
    // Eight entries; cheaper to scan than to keep a second table in sync.
    Mode::ALL.iter().position(|&m| m == mode).unwrap_or(0)
}

impl RequestStats {
    /// A request of `mode` was answered `elapsed` after it arrived.
    pub fn record(&self, mode: Mode, elapsed: Duration, error: bool) {
        let stats = &self.by_mode[index_of(mode)];
        stats.latency.record(elapsed);
        if error {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request was refused because every worker was busy and the queue
    /// was full.
    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RequestSnapshot {
        let by_mode = Mode::ALL
            .iter()
            .zip(self.by_mode.iter())
            .map(|(&mode, s)| ModeSnapshot {
                mode,
                latency: s.latency.summary(),
                errors: s.errors.load(Ordering::Relaxed),
            })
            .collect();
        RequestSnapshot {
            uptime: self.started.elapsed(),
            rejected: self.rejected.load(Ordering::Relaxed),
            by_mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_keeps_its_own_figures() {
        let stats = RequestStats::default();
        for (i, &mode) in Mode::ALL.iter().enumerate() {
            for _ in 0..=i {
                stats.record(mode, Duration::from_micros(100 * (i as u64 + 1)), false);
            }
        }
        stats.record(Mode::Command, Duration::from_millis(5), true);
        stats.rejected();
        let snap = stats.snapshot();
        assert_eq!(snap.rejected, 1);
        assert_eq!(snap.by_mode.len(), Mode::ALL.len());
        for (i, m) in snap.by_mode.iter().enumerate() {
            assert_eq!(m.mode, Mode::ALL[i]);
            let extra = u64::from(m.mode == Mode::Command);
            assert_eq!(m.latency.count, i as u64 + 1 + extra, "{m:?}");
            assert_eq!(m.errors, extra, "{m:?}");
        }
        let read = &snap.by_mode[index_of(Mode::Read)];
        assert_eq!(read.latency.max_us, 200);
    }
}
