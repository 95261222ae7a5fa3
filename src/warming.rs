//! Connection warming (SCOUT_WARM_HOSTS): at start, a background thread
//! opens one connection to each listed host, so that the first request to
//! it skips the handshake. Best effort and never in the way: nothing waits
//! for it, the pool only lets it use room nobody else needs, and a
//! failure is a log line.

use crate::config::pattern::glob_match;
use crate::pool::{Manager, Pool, PoolError};
use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Hosts connected at once while warming. Warming competes with the first
/// real requests for CPU (a handshake costs ~10 ms of client and server
/// CPU each) and for sshd's MaxStartups, so it stays narrower than a
/// broadcast; 8 in flight still hides per-host latency (100 hosts at
/// 100 ms round trips warm in about 6 s).
pub const MAX_WIDTH: usize = 8;

/// The inventory names matched by `patterns` (globs, ignoring ASCII case
/// as the allowlist does), in inventory order, and the patterns that match
/// no name.
pub fn resolve(names: &[String], patterns: &[String]) -> (Vec<String>, Vec<String>) {
    let lower: Vec<String> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
    let matches = |p: &str, name: &str| glob_match(p, &name.to_ascii_lowercase());
    let hosts = names
        .iter()
        .filter(|n| lower.iter().any(|p| matches(p, n)))
        .cloned()
        .collect();
    let unknown = patterns
        .iter()
        .zip(&lower)
        .filter(|(_, p)| !names.iter().any(|n| matches(p, n)))
        .map(|(original, _)| original.clone())
        .collect();
    (hosts, unknown)
}

/// Starts warming `hosts` on a detached thread and returns at once. Each
/// connect gives up after `budget`; the thread stops taking hosts when the
/// pool closes, and shutdown never waits for it.
pub fn spawn<M>(pool: Pool<M>, hosts: Vec<M::Key>, width: usize, budget: Duration)
where
    M: Manager,
    M::Error: Display,
{
    if hosts.is_empty() {
        return;
    }
    let started = thread::Builder::new()
        .name("pool-warmer".into())
        .spawn(move || {
            warm_all(&pool, &hosts, width, budget);
        });
    if let Err(e) = started {
        log::warn!("cannot start the warming thread, hosts will connect on first use: {e}");
    }
}

/// Warms `hosts`, at most `width` at a time; returns how many connections
/// it opened.
pub fn warm_all<M>(pool: &Pool<M>, hosts: &[M::Key], width: usize, budget: Duration) -> usize
where
    M: Manager,
    M::Error: Display,
{
    let began = Instant::now();
    log::info!("warming {} hosts, {} at a time", hosts.len(), width);
    let next = AtomicUsize::new(0);
    let warmed = AtomicUsize::new(0);
    let width = width.clamp(1, hosts.len().max(1));
    thread::scope(|scope| {
        for i in 0..width {
            let worker = || warm_next(pool, hosts, &next, &warmed, budget);
            let started = thread::Builder::new()
                .name(format!("pool-warmer-{i}"))
                .spawn_scoped(scope, worker);
            if let Err(e) = started {
                log::warn!("warming with {i} threads instead of {width}: {e}");
                break;
            }
        }
    });
    let warmed = warmed.into_inner();
    log::info!(
        "warming finished: {warmed} of {} hosts connected in {} ms",
        hosts.len(),
        began.elapsed().as_millis()
    );
    warmed
}

/// Takes hosts off the shared list until it is empty or the pool closes.
fn warm_next<M>(
    pool: &Pool<M>,
    hosts: &[M::Key],
    next: &AtomicUsize,
    warmed: &AtomicUsize,
    budget: Duration,
) where
    M: Manager,
    M::Error: Display,
{
    while let Some(host) = hosts.get(next.fetch_add(1, Ordering::Relaxed)) {
        match pool.warm(host, Instant::now() + budget) {
            Ok(true) => {
                warmed.fetch_add(1, Ordering::Relaxed);
                log::debug!("{host}: warmed");
            }
            Ok(false) => log::debug!(
                "{host}: not warmed: it already has a connection, or the pool is at its bound"
            ),
            Err(PoolError::Closed) => return,
            Err(e) => log::warn!("{host}: warming failed, it will connect on first use: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::PoolConfig;
    use std::sync::Arc;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patterns_select_names_and_unmatched_ones_are_reported() {
        let names = strings(&["db1", "web1", "Web2", "bastion"]);
        let (hosts, unknown) = resolve(&names, &strings(&["WEB*", "db1", "nope", "x?"]));
        assert_eq!(hosts, strings(&["db1", "web1", "Web2"]));
        assert_eq!(unknown, strings(&["nope", "x?"]));
    }

    #[test]
    fn a_star_selects_every_name_once() {
        let names = strings(&["a", "b"]);
        let (hosts, unknown) = resolve(&names, &strings(&["*", "a"]));
        assert_eq!(hosts, names);
        assert!(unknown.is_empty());
    }

    /// Counts the connects running at once.
    #[derive(Default)]
    struct Slow {
        now: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Manager for Arc<Slow> {
        type Key = String;
        type Conn = ();
        type Error = String;

        fn connect(&self, key: &String, _deadline: Instant) -> Result<(), String> {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(n, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(10));
            self.now.fetch_sub(1, Ordering::SeqCst);
            if key.starts_with("down") {
                return Err(format!("{key}: connection refused"));
            }
            Ok(())
        }
        fn is_alive(&self, _conn: &mut ()) -> bool {
            true
        }
        fn close(&self, _conn: ()) {}
    }

    fn pool(max_size: usize) -> (Pool<Arc<Slow>>, Arc<Slow>) {
        let slow = Arc::new(Slow::default());
        let config = PoolConfig {
            max_size,
            max_per_host: 4,
            max_handshakes_per_host: 2,
            idle_timeout: Duration::from_secs(60),
            health_check_every: Duration::from_secs(60),
        };
        let (pool, _threads) = Pool::new(Arc::clone(&slow), config).unwrap();
        (pool, slow)
    }

    #[test]
    fn every_host_is_warmed_a_few_at_a_time_and_failures_are_skipped() {
        let (pool, slow) = pool(100);
        let hosts: Vec<String> = (0..20)
            .map(|i| format!("h{i}"))
            .chain(["down".into()])
            .collect();
        assert_eq!(warm_all(&pool, &hosts, 3, Duration::from_secs(5)), 20);
        assert_eq!(pool.live(), 20);
        assert!(slow.peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(pool.metrics().warmed, 20);
    }

    #[test]
    fn warming_stops_at_the_pool_bound() {
        let (pool, _slow) = pool(5);
        let hosts: Vec<String> = (0..20).map(|i| format!("h{i}")).collect();
        assert_eq!(warm_all(&pool, &hosts, 4, Duration::from_secs(5)), 5);
        assert_eq!(pool.live(), 5);
        assert_eq!(pool.metrics().evictions, 0);
    }

    #[test]
    fn a_closed_pool_is_not_warmed() {
        let (pool, slow) = pool(100);
        pool.close();
        let hosts: Vec<String> = (0..20).map(|i| format!("h{i}")).collect();
        assert_eq!(warm_all(&pool, &hosts, 4, Duration::from_secs(5)), 0);
        assert_eq!(slow.peak.load(Ordering::SeqCst), 0);
    }
}
