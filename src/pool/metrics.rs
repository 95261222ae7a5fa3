//! Pool counters and latency histograms kept with relaxed atomics: cheap
//! on the hot path and good enough for monitoring (they are not used for
//! decisions).

use crate::histogram::{Histogram, Summary};
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Metrics {
    checkouts: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    checkout_timeouts: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    reconnects: AtomicU64,
    evictions: AtomicU64,
    discarded: AtomicU64,
    reaped: AtomicU64,
    capacity_waits: AtomicU64,
    warmed: AtomicU64,
    health_checks: AtomicU64,
    health_failures: AtomicU64,
    peak_live: AtomicU64,
    connect: Histogram,
    checkout: Histogram,
    lock_wait: Histogram,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Check-outs asked for; `hits + misses` of them succeeded, the rest
    /// timed out or failed to connect.
    pub checkouts: u64,
    /// Check-outs served by an idle connection.
    pub hits: u64,
    /// Check-outs served by opening a new connection.
    pub misses: u64,
    /// Check-outs that found no connection before their deadline.
    pub checkout_timeouts: u64,
    /// Connections opened successfully.
    pub connects: u64,
    pub connect_failures: u64,
    /// Operations retried on a fresh connection because a pooled one was
    /// found dead.
    pub reconnects: u64,
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
    /// The most connections that were live at once.
    pub peak_live: u64,
}

/// Latency distributions at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latencies {
    /// Successful connects (TCP + handshake + auth).
    pub connect: Summary,
    /// Warm check-outs (hits), from `get` entry to return.
    pub checkout: Summary,
    /// Per check-out, the time spent blocked acquiring the shard and
    /// slot locks.
    pub lock_wait: Summary,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn hit(&self) {
        bump(&self.hits)
    }
    /// A connect succeeded, for a check-out or for warming.
    pub fn connected(&self, took: Duration) {
        bump(&self.connects);
        self.connect.record(took);
    }
    /// A check-out was served by a connection opened for it.
    pub fn missed(&self) {
        bump(&self.misses)
    }
    pub fn connect_failed(&self) {
        bump(&self.connect_failures)
    }
    pub fn reconnected(&self) {
        bump(&self.reconnects)
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
    /// `live` connections exist now (just reserved under the bound).
    pub fn live_reached(&self, live: usize) {
        self.peak_live.fetch_max(live as u64, Ordering::Relaxed);
    }

    /// Accounts for one finished check-out that began at `entered`.
    pub fn checked_out(&self, entered: Instant, outcome: Outcome, lock_wait: LockWait) {
        bump(&self.checkouts);
        self.lock_wait.record_us(lock_wait.us);
        match outcome {
            Outcome::Hit => self.checkout.record(entered.elapsed()),
            Outcome::Timeout => bump(&self.checkout_timeouts),
            Outcome::Other => {}
        }
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            checkouts: get(&self.checkouts),
            hits: get(&self.hits),
            misses: get(&self.misses),
            checkout_timeouts: get(&self.checkout_timeouts),
            connects: get(&self.connects),
            connect_failures: get(&self.connect_failures),
            reconnects: get(&self.reconnects),
            evictions: get(&self.evictions),
            discarded: get(&self.discarded),
            reaped: get(&self.reaped),
            capacity_waits: get(&self.capacity_waits),
            warmed: get(&self.warmed),
            health_checks: get(&self.health_checks),
            health_failures: get(&self.health_failures),
            peak_live: get(&self.peak_live),
        }
    }

    pub fn latencies(&self) -> Latencies {
        Latencies {
            connect: self.connect.summary(),
            checkout: self.checkout.summary(),
            lock_wait: self.lock_wait.summary(),
        }
    }
}

/// How a check-out ended, as far as the histograms care.
pub enum Outcome {
    /// Served from the idle list.
    Hit,
    Timeout,
    /// A new connection, a failed connect, or shutdown.
    Other,
}

/// Lock wait accumulated over one check-out.
///
/// An uncontended lock is taken with `try_lock` and costs no clock read;
/// only a lock that must block is timed. So the common case adds nothing
/// but the final histogram update, and a contended one is measured
/// exactly.
#[derive(Default, Clone, Copy)]
pub struct LockWait {
    us: u64,
}

impl LockWait {
    pub fn lock<'a, T>(&mut self, mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
        if let Some(guard) = mutex.try_lock() {
            return guard;
        }
        let start = Instant::now();
        let guard = mutex.lock();
        // A wait that blocked counts as at least 1 µs, so that contention
        // shows even when the holder let go within the same microsecond.
        let us = start.elapsed().as_micros().clamp(1, u64::MAX as u128) as u64;
        self.us = self.us.saturating_add(us);
        guard
    }

    #[cfg(test)]
    pub fn micros(&self) -> u64 {
        self.us
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_uncontended_lock_adds_no_wait() {
        let m = Mutex::new(());
        let mut w = LockWait::default();
        drop(w.lock(&m));
        drop(w.lock(&m));
        assert_eq!(w.micros(), 0);
    }

    #[test]
    fn a_contended_lock_is_timed() {
        // The waiter may (rarely) be scheduled only after the lock was
        // released; some of a few rounds surely find it held.
        let m = Arc::new(Mutex::new(()));
        let waited = (0..20).find_map(|_| {
            let held = m.lock();
            let m2 = Arc::clone(&m);
            let waiter = std::thread::spawn(move || {
                let mut w = LockWait::default();
                drop(w.lock(&m2));
                w.micros()
            });
            std::thread::sleep(Duration::from_millis(20));
            drop(held);
            Some(waiter.join().unwrap()).filter(|&us| us > 0)
        });
        assert!(waited.is_some(), "no blocked acquisition was timed");
    }

    #[test]
    fn a_checkout_is_counted_once_with_its_outcome() {
        let m = Metrics::default();
        let now = Instant::now();
        m.checked_out(now, Outcome::Hit, LockWait::default());
        m.checked_out(now, Outcome::Timeout, LockWait::default());
        m.checked_out(now, Outcome::Other, LockWait::default());
        let s = m.snapshot();
        assert_eq!((s.checkouts, s.checkout_timeouts), (3, 1));
        let l = m.latencies();
        assert_eq!((l.checkout.count, l.lock_wait.count), (1, 3));
        m.live_reached(4);
        m.live_reached(2);
        assert_eq!(m.snapshot().peak_live, 4);
    }
}
