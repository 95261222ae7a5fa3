//! Pool bookkeeping against a fake manager: bounds, reuse, eviction,
//! shared failures, reaping. Real SSH is covered by the integration tests.

use super::*;
use std::collections::HashSet;
use std::sync::atomic::AtomicUsize;
use std::sync::Barrier;

/// Counts connections in existence and remembers the highest count seen,
/// so that a test can prove a bound held at every moment.
#[derive(Default)]
struct Fake {
    open: AtomicUsize,
    peak: AtomicUsize,
    connects: AtomicUsize,
    closes: AtomicUsize,
    connect_delay: Duration,
    fail_hosts: Mutex<HashSet<String>>,
    dead: AtomicBool,
    health_checks: AtomicUsize,
    health_fails: AtomicBool,
    health_delay: Duration,
    checking: AtomicUsize,
    checking_peak: AtomicUsize,
}

struct FakeConn {
    host: String,
}

impl Manager for Arc<Fake> {
    type Key = String;
    type Conn = FakeConn;
    type Error = String;

    fn connect(&self, key: &String, _deadline: Instant) -> Result<FakeConn, String> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.connect_delay);
        if self.fail_hosts.lock().contains(key) {
            return Err(format!("{key}: connection refused"));
        }
        let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Ok(FakeConn { host: key.clone() })
    }

    fn is_alive(&self, _conn: &mut FakeConn) -> bool {
        !self.dead.swap(false, Ordering::SeqCst)
    }

    fn check_health(&self, _conn: &mut FakeConn) -> bool {
        self.health_checks.fetch_add(1, Ordering::SeqCst);
        let now = self.checking.fetch_add(1, Ordering::SeqCst) + 1;
        self.checking_peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.health_delay);
        self.checking.fetch_sub(1, Ordering::SeqCst);
        !self.health_fails.load(Ordering::SeqCst)
    }

    fn close(&self, _conn: FakeConn) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

fn config(max_size: usize, per_host: usize) -> PoolConfig {
    PoolConfig {
        max_size,
        max_per_host: per_host,
        max_handshakes_per_host: 2,
        idle_timeout: Duration::from_secs(60),
        health_check_every: Duration::from_secs(60),
    }
}

fn pool_with(fake: Fake, cfg: PoolConfig) -> (Pool<Arc<Fake>>, PoolThreads, Arc<Fake>) {
    let fake = Arc::new(fake);
    let (pool, threads) = Pool::new(Arc::clone(&fake), cfg).unwrap();
    (pool, threads, fake)
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Closing happens on another thread; wait (bounded) until it caught up.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_returned_connection_is_reused() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(10, 4));
    let first = pool.get(&"a".to_string(), soon()).unwrap();
    assert!(!first.was_reused());
    drop(first);
    let second = pool.get(&"a".to_string(), soon()).unwrap();
    assert!(second.was_reused());
    assert_eq!(second.host, "a");
    assert_eq!(fake.connects.load(Ordering::SeqCst), 1);
    assert_eq!(pool.metrics().hits, 1);
}

#[test]
fn a_host_never_gets_more_than_its_limit() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(10, 2));
    let a = "a".to_string();
    let one = pool.get(&a, soon()).unwrap();
    let _two = pool.get(&a, soon()).unwrap();
    let err = pool
        .get(&a, Instant::now() + Duration::from_millis(30))
        .err()
        .expect("a third connection must wait and time out");
    assert!(matches!(err, PoolError::Timeout { .. }), "{err}");
    drop(one);
    let three = pool.get(&a, soon()).unwrap();
    assert!(three.was_reused());
    assert_eq!(fake.connects.load(Ordering::SeqCst), 2);
}

#[test]
fn a_waiter_gets_the_connection_another_request_returns() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(10, 1));
    let held = pool.get(&"a".to_string(), soon()).unwrap();
    let p = pool.clone();
    let waiter =
        std::thread::spawn(move || p.get(&"a".to_string(), soon()).map(|c| c.was_reused()));
    std::thread::sleep(Duration::from_millis(20));
    drop(held);
    assert!(waiter.join().unwrap().unwrap());
}

#[test]
fn at_the_bound_the_least_recently_used_idle_host_is_evicted() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(3, 4));
    for host in ["a", "b", "c"] {
        drop(pool.get(&host.to_string(), soon()).unwrap());
        std::thread::sleep(Duration::from_millis(2));
    }
    // "a" is the least recently used; touch "b" and "c" again.
    drop(pool.get(&"b".to_string(), soon()).unwrap());
    drop(pool.get(&"c".to_string(), soon()).unwrap());
    let d = pool.get(&"d".to_string(), soon()).unwrap();
    assert_eq!(pool.live(), 3);
    assert_eq!(pool.metrics().evictions, 1);
    let stats = pool.host_stats();
    let live_of = |h: &str| stats.iter().find(|s| s.host == h).map_or(0, |s| s.live);
    assert_eq!(live_of("a"), 0, "{stats:?}");
    assert_eq!(live_of("b"), 1);
    drop(d);
    wait_for("the evicted connection to be closed", || {
        fake.closes.load(Ordering::SeqCst) == 1
    });
}

#[test]
fn when_every_connection_is_busy_a_new_host_waits_for_one_to_return() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(1, 4));
    let held = pool.get(&"a".to_string(), soon()).unwrap();
    let p = pool.clone();
    let waiter =
        std::thread::spawn(move || p.get(&"b".to_string(), soon()).map(|c| c.host.clone()));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(pool.live(), 1);
    drop(held);
    assert_eq!(waiter.join().unwrap().unwrap(), "b");
    assert_eq!(pool.live(), 1);
}

#[test]
fn the_global_bound_holds_under_concurrent_cold_connects() {
    let fake = Fake {
        connect_delay: Duration::from_millis(2),
        ..Fake::default()
    };
    let (pool, _t, fake) = pool_with(fake, config(8, 3));
    let threads = 32;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let pool = pool.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..40 {
                    let host = format!("h{}", (t * 7 + i) % 50);
                    let conn = pool.get(&host, soon()).expect("checkout");
                    assert!(pool.live() <= 8);
                    drop(conn);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(pool.live() <= 8);
    // Closes run on another thread, so `open` can only lag behind `live`.
    assert!(
        fake.peak.load(Ordering::SeqCst) <= 8,
        "peak {}",
        fake.peak.load(Ordering::SeqCst)
    );
}

#[test]
fn requests_waiting_on_a_failed_connect_share_its_error() {
    let fake = Fake {
        connect_delay: Duration::from_millis(50),
        ..Fake::default()
    };
    fake.fail_hosts.lock().insert("down".to_string());
    let mut cfg = config(100, 4);
    cfg.max_handshakes_per_host = 1;
    let (pool, _t, fake) = pool_with(fake, cfg);
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || pool.get(&"down".to_string(), soon()).err())
        })
        .collect();
    for h in handles {
        let err = h.join().unwrap().expect("a dead host fails");
        assert!(err.to_string().contains("connection refused"), "{err}");
    }
    // Waiters took the first failure instead of each trying again.
    assert!(fake.connects.load(Ordering::SeqCst) < 10);
    assert_eq!(pool.live(), 0);
}

#[test]
fn a_dead_idle_connection_is_replaced() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(10, 4));
    drop(pool.get(&"a".to_string(), soon()).unwrap());
    fake.dead.store(true, Ordering::SeqCst);
    let conn = pool.get(&"a".to_string(), soon()).unwrap();
    assert!(!conn.was_reused());
    assert_eq!(fake.connects.load(Ordering::SeqCst), 2);
    wait_for("the dead connection's place to be freed", || {
        pool.live() == 1
    });
}

#[test]
fn a_connection_marked_broken_is_closed_not_reused() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(10, 4));
    let mut conn = pool.get(&"a".to_string(), soon()).unwrap();
    conn.mark_broken();
    drop(conn);
    wait_for("the broken connection to be closed", || {
        fake.closes.load(Ordering::SeqCst) == 1 && pool.live() == 0
    });
    assert!(!pool.get(&"a".to_string(), soon()).unwrap().was_reused());
}

#[test]
fn the_reaper_closes_idle_connections_and_forgets_empty_hosts() {
    let mut cfg = config(10, 4);
    cfg.idle_timeout = Duration::from_millis(20);
    let (pool, _t, fake) = pool_with(Fake::default(), cfg);
    drop(pool.get(&"a".to_string(), soon()).unwrap());
    std::thread::sleep(Duration::from_millis(30));
    pool.reap_idle();
    assert!(pool.host_stats().is_empty());
    wait_for("the reaped connection to be closed", || {
        fake.closes.load(Ordering::SeqCst) == 1 && pool.live() == 0
    });
}

#[test]
fn shutdown_closes_idle_connections_and_refuses_new_checkouts() {
    let (pool, threads, fake) = pool_with(Fake::default(), config(10, 4));
    drop(pool.get(&"a".to_string(), soon()).unwrap());
    drop(pool.get(&"b".to_string(), soon()).unwrap());
    threads.shutdown(pool.clone(), Duration::from_secs(5));
    assert_eq!(fake.closes.load(Ordering::SeqCst), 2);
    assert!(matches!(
        pool.get(&"a".to_string(), soon()),
        Err(PoolError::Closed)
    ));
}

/// Tracks how many connects run at the same moment.
struct Concurrency {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Manager for Arc<Concurrency> {
    type Key = String;
    type Conn = ();
    type Error = String;

    fn connect(&self, _key: &String, _deadline: Instant) -> Result<(), String> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
    fn is_alive(&self, _conn: &mut ()) -> bool {
        true
    }
    fn close(&self, _conn: ()) {}
}

#[test]
fn a_cold_host_gets_at_most_two_handshakes_at_once_and_its_per_host_limit() {
    let fake = Arc::new(Concurrency {
        now: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    let (pool, _t) = Pool::new(Arc::clone(&fake), config(100, 4)).unwrap();
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let conn = pool.get(&"cold".to_string(), soon()).expect("checkout");
                std::thread::sleep(Duration::from_millis(20));
                drop(conn);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(fake.peak.load(Ordering::SeqCst), 2, "handshakes in flight");
    assert!(pool.live() <= 4, "per-host limit: {}", pool.live());
}

#[test]
fn idle_connections_get_health_checks_and_failing_ones_are_dropped() {
    let mut cfg = config(10, 4);
    cfg.health_check_every = Duration::from_millis(10);
    let (pool, _t, fake) = pool_with(Fake::default(), cfg);
    drop(pool.get(&"a".to_string(), soon()).unwrap());
    std::thread::sleep(Duration::from_millis(20));
    pool.reap_idle();
    assert_eq!(fake.health_checks.load(Ordering::SeqCst), 1);
    assert!(
        pool.get(&"a".to_string(), soon()).unwrap().was_reused(),
        "kept after a good health check"
    );
    std::thread::sleep(Duration::from_millis(20));
    fake.health_fails.store(true, Ordering::SeqCst);
    pool.reap_idle();
    wait_for("the dead connection to be closed", || {
        fake.closes.load(Ordering::SeqCst) == 1 && pool.live() == 0
    });
}

#[test]
fn warming_opens_one_idle_connection_that_a_later_get_reuses() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(10, 4));
    let a = "a".to_string();
    assert!(pool.warm(&a, soon()).unwrap());
    assert_eq!(pool.live(), 1);
    assert_eq!(pool.metrics().warmed, 1);
    let stats = pool.host_stats();
    assert_eq!((stats[0].live, stats[0].idle), (1, 1), "{stats:?}");
    assert!(pool.get(&a, soon()).unwrap().was_reused());
    assert_eq!(fake.connects.load(Ordering::SeqCst), 1);
}

#[test]
fn warming_a_host_that_has_a_connection_does_nothing() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(10, 4));
    let a = "a".to_string();
    let busy = pool.get(&a, soon()).unwrap();
    assert!(!pool.warm(&a, soon()).unwrap(), "a busy one counts");
    drop(busy);
    assert!(!pool.warm(&a, soon()).unwrap(), "an idle one counts");
    assert_eq!(fake.connects.load(Ordering::SeqCst), 1);
    assert_eq!(pool.metrics().warmed, 0);
}

#[test]
fn warming_at_the_bound_never_evicts_or_waits() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(2, 4));
    drop(pool.get(&"a".to_string(), soon()).unwrap());
    drop(pool.get(&"b".to_string(), soon()).unwrap());
    // An already-passed deadline: warming must not wait for room either.
    assert!(!pool.warm(&"c".to_string(), Instant::now()).unwrap());
    assert_eq!(pool.live(), 2);
    assert_eq!(pool.metrics().evictions, 0);
    assert_eq!(fake.connects.load(Ordering::SeqCst), 2);
    assert!(pool.get(&"a".to_string(), soon()).unwrap().was_reused());
}

#[test]
fn warming_stays_within_the_per_host_limit_and_a_full_host_is_left_alone() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(10, 1));
    let a = "a".to_string();
    assert!(pool.warm(&a, soon()).unwrap());
    assert!(!pool.warm(&a, soon()).unwrap());
    let held = pool.get(&a, soon()).unwrap();
    assert!(held.was_reused());
    assert!(!pool.warm(&a, soon()).unwrap());
    assert_eq!(pool.host_stats()[0].live, 1);
    assert_eq!(fake.connects.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failed_warming_connect_frees_its_place() {
    let fake = Fake::default();
    fake.fail_hosts.lock().insert("down".to_string());
    let (pool, _t, _fake) = pool_with(fake, config(10, 4));
    let err = pool.warm(&"down".to_string(), soon()).unwrap_err();
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert_eq!(pool.live(), 0);
    assert_eq!(pool.metrics().connect_failures, 1);
}

#[test]
fn a_closed_pool_refuses_to_warm() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(10, 4));
    pool.close();
    assert!(matches!(
        pool.warm(&"a".to_string(), soon()),
        Err(PoolError::Closed)
    ));
    assert_eq!(fake.connects.load(Ordering::SeqCst), 0);
}

/// Starts `n` requests to `host` that each hold their connection until
/// all `n` have one (or the wait runs out); returns whether each got one.
fn hold_together(pool: &Pool<Arc<Fake>>, host: &str, n: usize) -> Vec<bool> {
    let holding = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (pool, holding, host) = (pool.clone(), Arc::clone(&holding), host.to_string());
            std::thread::spawn(move || {
                let Ok(conn) = pool.get(&host, Instant::now() + Duration::from_secs(5)) else {
                    return false;
                };
                holding.fetch_add(1, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(5);
                while holding.load(Ordering::SeqCst) < n && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                drop(conn);
                true
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn concurrent_requests_to_a_cold_host_get_a_connection_each_up_to_its_limit() {
    let fake = Fake {
        connect_delay: Duration::from_millis(20),
        ..Fake::default()
    };
    // Handshake cap 2: two of the four wait for a handshake to finish,
    // then start their own.
    let (pool, _t, fake) = pool_with(fake, config(100, 4));
    assert_eq!(hold_together(&pool, "cold", 4), vec![true; 4]);
    assert_eq!(fake.connects.load(Ordering::SeqCst), 4);
    assert_eq!(fake.peak.load(Ordering::SeqCst), 4);
}

#[test]
fn a_request_held_back_by_the_handshake_cap_connects_when_the_handshake_ends() {
    let fake = Fake {
        connect_delay: Duration::from_millis(20),
        ..Fake::default()
    };
    let mut cfg = config(100, 3);
    cfg.max_handshakes_per_host = 1;
    let (pool, _t, fake) = pool_with(fake, cfg);
    assert_eq!(hold_together(&pool, "cold", 3), vec![true; 3]);
    assert_eq!(fake.connects.load(Ordering::SeqCst), 3);
}

#[test]
fn requests_waiting_on_a_warming_connect_all_proceed_when_it_ends() {
    let fake = Fake {
        connect_delay: Duration::from_millis(50),
        ..Fake::default()
    };
    let mut cfg = config(100, 4);
    cfg.max_handshakes_per_host = 1;
    let (pool, _t, fake) = pool_with(fake, cfg);
    let warmer = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.warm(&"a".to_string(), soon()))
    };
    wait_for("the warming connect to start", || {
        pool.host_stats().first().is_some_and(|s| s.connecting == 1)
    });
    // Both wait behind the warming handshake; one takes its connection,
    // the other must connect its own instead of waiting for a return.
    assert_eq!(hold_together(&pool, "a", 2), vec![true; 2]);
    assert!(warmer.join().unwrap().unwrap());
    assert_eq!(fake.connects.load(Ordering::SeqCst), 2);
    assert_eq!(pool.metrics().hits, 1);
}

#[test]
fn a_failed_health_check_drops_the_session_and_the_next_get_connects_anew() {
    let mut cfg = config(10, 4);
    cfg.health_check_every = Duration::from_millis(10);
    let (pool, _t, fake) = pool_with(Fake::default(), cfg);
    let a = "a".to_string();
    drop(pool.get(&a, soon()).unwrap());
    std::thread::sleep(Duration::from_millis(20));
    fake.health_fails.store(true, Ordering::SeqCst);
    pool.reap_idle();
    let m = pool.metrics();
    assert_eq!((m.health_checks, m.health_failures), (1, 1));
    let conn = pool.get(&a, soon()).unwrap();
    assert!(!conn.was_reused());
    assert_eq!(fake.connects.load(Ordering::SeqCst), 2);
    wait_for("the failed session to be closed", || {
        fake.closes.load(Ordering::SeqCst) == 1 && pool.live() == 1
    });
}

#[test]
fn health_checks_are_not_run_once_the_pool_closes() {
    let mut cfg = config(10, 4);
    cfg.health_check_every = Duration::from_millis(10);
    let (pool, _t, fake) = pool_with(Fake::default(), cfg);
    drop(pool.get(&"a".to_string(), soon()).unwrap());
    std::thread::sleep(Duration::from_millis(20));
    let due = {
        let slot = pool.slot(&"a".to_string());
        let idle = slot.state.lock().idle.pop().unwrap();
        vec![(slot, idle)]
    };
    pool.close();
    pool.check_health(due);
    assert_eq!(fake.health_checks.load(Ordering::SeqCst), 0);
    wait_for("the unchecked session to be closed", || {
        fake.closes.load(Ordering::SeqCst) == 1 && pool.live() == 0
    });
}

fn shortly() -> Instant {
    Instant::now() + Duration::from_millis(30)
}

fn waiters_on(pool: &Pool<Arc<Fake>>, host: &str) -> usize {
    let stats = pool.host_stats();
    stats
        .iter()
        .find(|s| s.host == host)
        .map_or(0, |s| s.waiters)
}

#[test]
fn bulk_checkouts_stop_one_short_of_the_host_limit_and_a_quick_one_gets_the_last() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(10, 3));
    let a = "a".to_string();
    let _one = pool.get_for(&a, soon(), Use::Bulk).unwrap();
    let _two = pool.get_for(&a, soon(), Use::Bulk).unwrap();
    let err = pool
        .get_for(&a, shortly(), Use::Bulk)
        .err()
        .expect("a third bulk check-out must wait");
    assert!(matches!(err, PoolError::Timeout { .. }), "{err}");
    let quick = pool.get(&a, soon()).unwrap();
    assert_eq!(pool.live(), 3);
    // An idle connection does not help a bulk request at its limit.
    drop(quick);
    assert!(pool.get_for(&a, shortly(), Use::Bulk).is_err());
    assert!(pool.get(&a, soon()).unwrap().was_reused());
}

#[test]
fn a_returned_bulk_connection_wakes_a_waiting_bulk_request() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(10, 2));
    let a = "a".to_string();
    let bulk = pool.get_for(&a, soon(), Use::Bulk).unwrap();
    let quick = pool.get(&a, soon()).unwrap();
    let (p, key) = (pool.clone(), a.clone());
    let bulk_waiter =
        std::thread::spawn(move || p.get_for(&key, soon(), Use::Bulk).map(|c| c.was_reused()));
    let (p, key) = (pool.clone(), a.clone());
    let quick_deadline = soon();
    let quick_waiter = std::thread::spawn(move || {
        let reused = p.get(&key, quick_deadline).map(|c| c.was_reused());
        // Woken by the return, not by its own deadline (after which it
        // would look again and find the connection anyway).
        (reused, Instant::now() < quick_deadline)
    });
    wait_for("both requests to wait", || waiters_on(&pool, "a") == 2);
    // The quick connection comes back: only the quick waiter may take it,
    // and it must not be left asleep because the bulk one was woken.
    drop(quick);
    let (reused, woken) = quick_waiter.join().unwrap();
    assert!(reused.unwrap() && woken);
    drop(bulk);
    assert!(bulk_waiter.join().unwrap().unwrap());
}

#[test]
fn with_one_connection_per_host_bulk_work_may_take_it() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(10, 1));
    let a = "a".to_string();
    let bulk = pool.get_for(&a, soon(), Use::Bulk).unwrap();
    assert!(
        pool.get(&a, shortly()).is_err(),
        "one connection, and it is busy"
    );
    drop(bulk);
    assert!(pool.get_for(&a, soon(), Use::Bulk).unwrap().was_reused());
}

#[test]
fn a_bulk_claim_is_given_back_on_every_path() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(10, 2));
    let a = "a".to_string();
    // A failed connect.
    fake.fail_hosts.lock().insert(a.clone());
    assert!(matches!(
        pool.get_for(&a, soon(), Use::Bulk),
        Err(PoolError::Connect(_))
    ));
    fake.fail_hosts.lock().clear();
    // A connection marked broken.
    let mut conn = pool.get_for(&a, soon(), Use::Bulk).unwrap();
    conn.mark_broken();
    drop(conn);
    // A dead idle connection found at check-out.
    drop(pool.get_for(&a, soon(), Use::Bulk).unwrap());
    fake.dead.store(true, Ordering::SeqCst);
    let conn = pool.get_for(&a, soon(), Use::Bulk).unwrap();
    assert!(!conn.was_reused());
    drop(conn);
    // After all that, the one bulk place is free again.
    assert!(pool.get_for(&a, shortly(), Use::Bulk).is_ok());
}

#[test]
fn checkouts_are_counted_as_hits_or_misses_with_their_latencies() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(10, 4));
    let a = "a".to_string();
    let first = pool.get(&a, soon()).unwrap();
    let second = pool.get(&a, soon()).unwrap();
    drop((first, second));
    for _ in 0..3 {
        drop(pool.get(&a, soon()).unwrap());
    }
    let m = pool.metrics();
    assert_eq!((m.checkouts, m.hits, m.misses, m.connects), (5, 3, 2, 2));
    let l = pool.latencies();
    assert_eq!(l.connect.count, 2, "one per successful connect");
    assert_eq!(l.checkout.count, 3, "warm check-outs only");
    assert_eq!(l.lock_wait.count, 5, "one per check-out");
}

#[test]
fn a_failed_connect_is_a_checkout_but_neither_hit_nor_miss() {
    let fake = Fake::default();
    fake.fail_hosts.lock().insert("down".to_string());
    let (pool, _t, _fake) = pool_with(fake, config(10, 4));
    assert!(pool.get(&"down".to_string(), soon()).is_err());
    let m = pool.metrics();
    assert_eq!((m.checkouts, m.hits, m.misses), (1, 0, 0));
    assert_eq!((m.connect_failures, m.checkout_timeouts), (1, 0));
    assert_eq!(pool.latencies().connect.count, 0);
}

#[test]
fn peak_live_remembers_the_most_connections_at_once() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(10, 4));
    let held: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|h| pool.get(&h.to_string(), soon()).unwrap())
        .collect();
    drop(held);
    pool.close();
    wait_for("the connections to be closed", || {
        fake.closes.load(Ordering::SeqCst) == 3 && pool.live() == 0
    });
    assert_eq!(pool.metrics().peak_live, 3);
}

#[test]
fn a_checkout_that_times_out_is_counted() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(10, 1));
    let a = "a".to_string();
    let _held = pool.get(&a, soon()).unwrap();
    let err = pool.get(&a, Instant::now() + Duration::from_millis(20));
    assert!(matches!(err, Err(PoolError::Timeout { .. })));
    let m = pool.metrics();
    assert_eq!((m.checkouts, m.checkout_timeouts), (2, 1));
}

#[test]
fn reconnects_are_counted_when_noted() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(10, 4));
    pool.note_reconnect();
    assert_eq!(pool.metrics().reconnects, 1);
}

#[test]
fn lock_wait_is_recorded_when_a_checkout_blocks_on_the_slot_lock() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(10, 4));
    let a = "a".to_string();
    drop(pool.get(&a, soon()).unwrap());
    let slot = pool.slot(&a);
    // Hold the slot lock so that the next check-out must block on it; a
    // few rounds in case a thread is scheduled only after the release.
    let blocked = (0..20).any(|_| {
        let state = slot.state.lock();
        let p = pool.clone();
        let key = a.clone();
        let taker = std::thread::spawn(move || drop(p.get(&key, soon()).unwrap()));
        std::thread::sleep(Duration::from_millis(20));
        drop(state);
        taker.join().unwrap();
        pool.latencies().lock_wait.max_us > 0
    });
    assert!(blocked, "{:?}", pool.latencies().lock_wait);
}

#[test]
fn a_warmed_connection_is_a_connect_but_not_a_miss() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(10, 4));
    let a = "a".to_string();
    assert!(pool.warm(&a, soon()).unwrap());
    drop(pool.get(&a, soon()).unwrap());
    let m = pool.metrics();
    assert_eq!((m.connects, m.misses, m.hits, m.peak_live), (1, 0, 1, 1));
    assert_eq!(pool.latencies().connect.count, 1);
}

#[test]
fn slow_health_checks_run_several_at_once_and_all_sessions_come_back() {
    let fake = Fake {
        health_delay: Duration::from_millis(100),
        ..Fake::default()
    };
    let (pool, _t, fake) = pool_with(fake, config(20, 1));
    let hosts: Vec<String> = (0..6).map(|i| format!("h{i}")).collect();
    let due: DueList<Arc<Fake>> = hosts
        .iter()
        .map(|h| {
            drop(pool.get(h, soon()).unwrap());
            let slot = pool.slot(h);
            let idle = slot.state.lock().idle.pop().unwrap();
            (slot, idle)
        })
        .collect();
    pool.check_health(due);
    assert_eq!(fake.health_checks.load(Ordering::SeqCst), 6);
    assert!(
        fake.checking_peak.load(Ordering::SeqCst) > 1,
        "checks ran one by one"
    );
    // Every session passed and is idle again: the next get is a hit.
    for h in &hosts {
        assert!(pool.get(h, soon()).unwrap().was_reused());
    }
    assert_eq!(fake.connects.load(Ordering::SeqCst), 6);
}

#[test]
fn a_lease_takes_a_place_under_the_bound_until_dropped() {
    let (pool, _t, _fake) = pool_with(Fake::default(), config(2, 2));
    let lease = pool.lease(soon()).unwrap();
    assert_eq!(pool.live(), 1);
    let a = pool.get(&"a".to_string(), soon()).unwrap();
    assert_eq!(pool.live(), 2);
    // At the bound with every connection busy, a lease waits and gives up.
    assert!(matches!(
        pool.lease(shortly()),
        Err(PoolError::Timeout { .. })
    ));
    // A check-out waits too: the lease's place is not free.
    assert!(pool.get(&"b".to_string(), shortly()).is_err());
    drop(lease);
    wait_for("the lease's place to be freed", || pool.live() == 1);
    drop(a);
    assert!(pool.get(&"b".to_string(), soon()).is_ok());
}

#[test]
fn a_lease_at_the_bound_evicts_an_idle_connection() {
    let (pool, _t, fake) = pool_with(Fake::default(), config(1, 1));
    drop(pool.get(&"a".to_string(), soon()).unwrap());
    assert_eq!(pool.live(), 1);
    let lease = pool.lease(soon()).unwrap();
    wait_for("the idle connection to be closed", || {
        fake.closes.load(Ordering::SeqCst) == 1
    });
    assert_eq!(pool.metrics().evictions, 1);
    assert_eq!(pool.live(), 1);
    drop(lease);
    wait_for("the place to be freed", || pool.live() == 0);
}

#[test]
fn a_lease_outliving_its_pool_frees_nothing_and_does_not_panic() {
    let (pool, threads, _fake) = pool_with(Fake::default(), config(2, 2));
    let lease = pool.lease(soon()).unwrap();
    threads.shutdown(pool, Duration::from_secs(1));
    drop(lease);
}
