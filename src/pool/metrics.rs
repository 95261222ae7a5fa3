//! Pool counters kept with relaxed atomics: cheap on the hot path and
//! good enough for monitoring (they are not used for decisions).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    hits: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    evictions: AtomicU64,
    discarded: AtomicU64,
    reaped: AtomicU64,
    capacity_waits: AtomicU64,
    warmed: AtomicU64,
    health_checks: AtomicU64,
    health_failures: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Check-outs served by an idle connection.
    pub hits: u64,
    /// Connections opened successfully.
    pub connects: u64,
    pub connect_failures: u64,
    /// Idle connections closed to make room for another host.
    pub evictions: u64,
    /// Connections dropped because they were broken or found dead.
    pub discarded: u64,
    /// Idle connections closed by the reaper after the idle timeout.
    pub reaped: u64,
    /// Check-outs that had to wait for room under the global bound.
    pub capacity_waits: u64,
    /// Of `connects`, those opened ahead of demand by warming.
    pub warmed: u64,
    /// Health checks of idle connections (a round trip each).
    pub health_checks: u64,
    /// Health checks that failed; each dropped its connection (also in `discarded`).
    pub health_failures: u64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn hit(&self) {
        bump(&self.hits)
    }
    pub fn connected(&self) {
        bump(&self.connects)
    }
    pub fn connect_failed(&self) {
        bump(&self.connect_failures)
    }
    pub fn evicted(&self) {
        bump(&self.evictions)
    }
    pub fn discarded(&self) {
        bump(&self.discarded)
    }
    pub fn reaped(&self, n: usize) {
        self.reaped.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn capacity_wait(&self) {
        bump(&self.capacity_waits)
    }
    pub fn warmed(&self) {
        bump(&self.warmed)
    }
    pub fn health_checked(&self) {
        bump(&self.health_checks)
    }
    pub fn health_failed(&self) {
        bump(&self.health_failures)
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            hits: get(&self.hits),
            connects: get(&self.connects),
            connect_failures: get(&self.connect_failures),
            evictions: get(&self.evictions),
            discarded: get(&self.discarded),
            reaped: get(&self.reaped),
            capacity_waits: get(&self.capacity_waits),
            warmed: get(&self.warmed),
            health_checks: get(&self.health_checks),
            health_failures: get(&self.health_failures),
        }
    }
}
