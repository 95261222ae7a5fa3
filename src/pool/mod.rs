//! A bounded, sharded pool of connections keyed by host.
//!
//! Shape: a fixed number of shards, each a `parking_lot::Mutex` over an
//! LRU map from host to that host's [`Slot`]. A check-out takes a shard
//! lock just long enough to find the slot, then the slot's own lock just
//! long enough to pop an idle connection or reserve the right to open
//! one. No lock is held while connecting, using or closing a connection.
//!
//! Bounds:
//! * `max_size` connections in total (idle + busy + connecting). At the
//!   bound, an idle connection of the least recently used other host is
//!   evicted; when every connection is busy the request waits for one to
//!   come back, until its deadline.
//! * `max_per_host` connections per host, `max_handshakes_per_host`
//!   connects in flight per host (sshd drops unauthenticated connections
//!   beyond `MaxStartups`).
//! * Bulk check-outs ([`Use::Bulk`]: long commands, transfers) hold at
//!   most `max_per_host - 1` of a host's connections, so a quick one
//!   never waits behind them.
//!
//! Idle connections older than `idle_timeout` are closed by a reaper
//! thread, which also health-checks idle connections (a round trip, with
//! no lock held) and drops those whose peer has gone; all closing happens
//! on a closer thread, off the request path. [`Pool::warm`] opens a
//! connection ahead of demand, only into room nobody else needs.

mod manager;
mod metrics;
mod slot;
pub mod ssh;

pub use manager::Manager;
pub use metrics::{Latencies, MetricsSnapshot};
pub use slot::{HostStats, Use};

use crossbeam_channel::{Receiver, Sender};
use lru::LruCache;
use metrics::{LockWait, Metrics, Outcome};
use parking_lot::{Condvar, Mutex};
use slot::{Idle, Slot};
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

/// Idle connections health-checked at once by the reaper.
const HEALTH_CHECK_THREADS: usize = 8;

/// Takes the idle connections whose health check is due.
fn take_due<C>(idle: &mut Vec<Idle<C>>, every: Duration) -> Vec<Idle<C>> {
    let (due, keep): (Vec<_>, Vec<_>) = idle.drain(..).partition(|i| i.checked.elapsed() >= every);
    *idle = keep;
    due
}

/// Limits and timeouts of a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub max_size: usize,
    pub max_per_host: usize,
    pub max_handshakes_per_host: usize,
    pub idle_timeout: Duration,
    /// An idle connection is health-checked this long after its last use
    /// or check. The check's traffic also keeps NAT entries and sshd's
    /// ClientAliveInterval happy.
    pub health_check_every: Duration,
}

/// Why a check-out failed.
#[derive(Debug, Clone)]
pub enum PoolError<E> {
    /// Opening a connection failed (possibly one this request waited on).
    Connect(E),
    /// No connection became available before the deadline.
    Timeout { host: String },
    /// The pool is shutting down.
    Closed,
}

impl<E: fmt::Display> fmt::Display for PoolError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Connect(e) => write!(f, "{e}"),
            PoolError::Timeout { host } => write!(
                f,
                "{host}: no SSH connection became free before the deadline \
                 (all connections to it are busy, or the one kept for quick \
                 reads is all that is left to a command or transfer, or the \
                 pool is at its bound)"
            ),
            PoolError::Closed => write!(f, "the server is shutting down"),
        }
    }
}

type SlotOf<M> = Slot<<M as Manager>::Conn, <M as Manager>::Error>;
type DueList<M> = Vec<(Arc<SlotOf<M>>, Idle<<M as Manager>::Conn>)>;
type Shard<M> = Mutex<LruCache<<M as Manager>::Key, Arc<SlotOf<M>>>>;

struct Inner<M: Manager> {
    manager: M,
    config: PoolConfig,
    shards: Box<[Shard<M>]>,
    hasher: RandomState,
    epoch: Instant,
    /// Connections in existence, being opened or being closed, across all
    /// hosts. A closing connection still holds its socket, so it counts
    /// until the closer thread is done with it.
    live: AtomicUsize,
    /// Connections handed to the closer thread and not yet closed.
    closing: AtomicUsize,
    /// Requests waiting for room under `max_size`; lets returns skip the
    /// capacity condvar when nobody waits.
    capacity_waiters: AtomicUsize,
    capacity_lock: Mutex<()>,
    capacity: Condvar,
    /// `None` tells the closer thread to stop.
    closer: Sender<Option<M::Conn>>,
    closed: AtomicBool,
    metrics: Metrics,
}

/// The pool. Cheap to clone; clones share everything.
pub struct Pool<M: Manager> {
    inner: Arc<Inner<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// A handle on a pool that does not keep it alive, for what the pool
/// itself holds (e.g. through its manager).
pub struct WeakPool<M: Manager> {
    inner: std::sync::Weak<Inner<M>>,
}

impl<M: Manager> WeakPool<M> {
    pub fn upgrade(&self) -> Option<Pool<M>> {
        self.inner.upgrade().map(|inner| Pool { inner })
    }
}

/// Threads that close and reap connections; joined by [`Pool::shutdown`].
pub struct PoolThreads {
    closer: Option<JoinHandle<()>>,
    reaper: Option<JoinHandle<()>>,
    stop_reaper: Sender<()>,
}

impl<M: Manager> Pool<M> {
    /// Creates the pool and starts its closer and reaper threads.
    pub fn new(manager: M, config: PoolConfig) -> std::io::Result<(Self, PoolThreads)> {
        let (closer_tx, closer_rx) = crossbeam_channel::unbounded();
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(LruCache::unbounded()))
            .collect();
        let pool = Pool {
            inner: Arc::new(Inner {
                manager,
                config,
                shards,
                hasher: RandomState::new(),
                epoch: Instant::now(),
                live: AtomicUsize::new(0),
                closing: AtomicUsize::new(0),
                capacity_waiters: AtomicUsize::new(0),
                capacity_lock: Mutex::new(()),
                capacity: Condvar::new(),
                closer: closer_tx,
                closed: AtomicBool::new(false),
                metrics: Metrics::default(),
            }),
        };
        let threads = pool.start_threads(closer_rx)?;
        Ok((pool, threads))
    }

    fn start_threads(&self, closer_rx: Receiver<Option<M::Conn>>) -> std::io::Result<PoolThreads> {
        let closer_pool = self.clone();
        let closer = std::thread::Builder::new()
            .name("pool-closer".into())
            .spawn(move || {
                while let Ok(Some(conn)) = closer_rx.recv() {
                    closer_pool.inner.manager.close(conn);
                    closer_pool.inner.closing.fetch_sub(1, Ordering::SeqCst);
                    closer_pool.release_capacity();
                }
            })?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let reaper_pool = self.clone();
        let period = self.reaper_period();
        let reaper = std::thread::Builder::new()
            .name("pool-reaper".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stop_rx.recv_timeout(period)
                {
                    reaper_pool.reap_idle();
                }
            })?;
        Ok(PoolThreads {
            closer: Some(closer),
            reaper: Some(reaper),
            stop_reaper: stop_tx,
        })
    }

    /// How often the reaper looks: often enough for both the idle timeout
    /// and the health-check interval, at most 20 times a second and at
    /// least every 5 s.
    fn reaper_period(&self) -> Duration {
        let cfg = &self.inner.config;
        (cfg.idle_timeout / 4)
            .min(cfg.health_check_every / 2)
            .clamp(Duration::from_millis(50), Duration::from_secs(5))
    }

    /// Checks out a connection to `key` for quick work, opening one if
    /// needed, waiting at most until `deadline`.
    pub fn get(&self, key: &M::Key, deadline: Instant) -> Result<Pooled<M>, PoolError<M::Error>> {
        self.get_for(key, deadline, Use::Quick)
    }

    /// [`Pool::get`] for `purpose`: a bulk check-out waits rather than
    /// take a host's last connection (see [`Use`]).
    pub fn get_for(
        &self,
        key: &M::Key,
        deadline: Instant,
        purpose: Use,
    ) -> Result<Pooled<M>, PoolError<M::Error>> {
        let entered = Instant::now();
        let mut lock_wait = LockWait::default();
        let result = self.check_out(key, deadline, purpose, &mut lock_wait);
        let outcome = match &result {
            Ok(pooled) if pooled.reused => Outcome::Hit,
            Err(PoolError::Timeout { .. }) => Outcome::Timeout,
            _ => Outcome::Other,
        };
        self.inner.metrics.checked_out(entered, outcome, lock_wait);
        result
    }

    fn check_out(
        &self,
        key: &M::Key,
        deadline: Instant,
        purpose: Use,
        lock_wait: &mut LockWait,
    ) -> Result<Pooled<M>, PoolError<M::Error>> {
        loop {
            if self.inner.closed.load(Ordering::Acquire) {
                return Err(PoolError::Closed);
            }
            let slot = self.slot_timed(key, lock_wait);
            match self.try_take(key, &slot, deadline, purpose, lock_wait)? {
                Some(pooled) => return Ok(pooled),
                None => continue,
            }
        }
    }

    /// One round of the check-out loop. `Ok(None)` means "look again":
    /// something changed (a dead idle connection was dropped, room was
    /// made, a waiter was woken).
    fn try_take(
        &self,
        key: &M::Key,
        slot: &Arc<SlotOf<M>>,
        deadline: Instant,
        purpose: Use,
        lock_wait: &mut LockWait,
    ) -> Result<Option<Pooled<M>>, PoolError<M::Error>> {
        let inner = &self.inner;
        let mut state = lock_wait.lock(&slot.state);
        let allowed = state.may_claim(purpose, inner.config.max_per_host);
        if let Some(idle) = allowed.then(|| state.idle.pop()).flatten() {
            state.claim(purpose);
            drop(state);
            return Ok(self.check_idle(slot, idle.conn, purpose));
        }
        let cfg = &inner.config;
        if allowed
            && state.live < cfg.max_per_host
            && state.connecting < cfg.max_handshakes_per_host
        {
            if self.try_reserve() {
                state.live += 1;
                state.connecting += 1;
                state.claim(purpose);
                drop(state);
                return self.open(key, slot, deadline, purpose).map(Some);
            }
            drop(state);
            // A connection already being closed will free a place; only
            // evict when none is on its way out.
            if self.inner.closing.load(Ordering::SeqCst) == 0 {
                self.evict_one_idle(Some(slot));
            }
            self.wait_for_capacity(key, deadline)?;
            return Ok(None);
        }
        let failures_before = state.failures;
        let bulk = usize::from(purpose == Use::Bulk);
        state.waiters += 1;
        slot.bulk_waiters.fetch_add(bulk, Ordering::SeqCst);
        let timed_out = slot.ready.wait_until(&mut state, deadline).timed_out();
        slot.bulk_waiters.fetch_sub(bulk, Ordering::SeqCst);
        state.waiters -= 1;
        if state.idle.is_empty() || !state.may_claim(purpose, self.inner.config.max_per_host) {
            // Share a failed connect's error only when the host has no
            // established connection: then it is down, and trying again at
            // once would only hammer it. A host with connections up (busy
            // ones) merely refused one more, e.g. sshd dropping a connect
            // past MaxStartups: wait for one of them, or connect anew.
            let established = state.live - state.connecting;
            if state.failures != failures_before && established == 0 {
                if let Some(e) = state.last_error.clone() {
                    return Err(PoolError::Connect(e));
                }
            }
            if timed_out {
                return Err(self.timeout_error(key));
            }
        }
        Ok(None)
    }

    /// Gives back a bulk claim whose connection is going away or back.
    fn release_bulk(&self, slot: &Arc<SlotOf<M>>) {
        slot.state.lock().bulk_busy -= 1;
    }

    fn check_idle(
        &self,
        slot: &Arc<SlotOf<M>>,
        mut conn: M::Conn,
        purpose: Use,
    ) -> Option<Pooled<M>> {
        if self.inner.manager.is_alive(&mut conn) {
            self.inner.metrics.hit();
            slot.touch(self.now_ms());
            return Some(self.guard(slot, conn, true, purpose));
        }
        if purpose == Use::Bulk {
            self.release_bulk(slot);
        }
        self.inner.metrics.discarded();
        self.forget(slot, conn);
        None
    }

    fn open(
        &self,
        key: &M::Key,
        slot: &Arc<SlotOf<M>>,
        deadline: Instant,
        purpose: Use,
    ) -> Result<Pooled<M>, PoolError<M::Error>> {
        let started = Instant::now();
        let result = self.inner.manager.connect(key, deadline);
        let took = started.elapsed();
        let mut state = slot.state.lock();
        state.connecting -= 1;
        match result {
            Ok(conn) => {
                drop(state);
                // A finished handshake may let a waiter start its own.
                slot.ready.notify_all();
                self.inner.metrics.connected(took);
                self.inner.metrics.missed();
                slot.touch(self.now_ms());
                Ok(self.guard(slot, conn, false, purpose))
            }
            Err(e) => {
                state.bulk_busy -= usize::from(purpose == Use::Bulk);
                Err(self.connect_failed(slot, state, e))
            }
        }
    }

    /// Gives back a failed connect's place and records its error for the
    /// requests that waited on it (see `try_take`).
    fn connect_failed(
        &self,
        slot: &SlotOf<M>,
        mut state: parking_lot::MutexGuard<'_, slot::SlotState<M::Conn, M::Error>>,
        e: M::Error,
    ) -> PoolError<M::Error> {
        state.live -= 1;
        state.failures += 1;
        state.last_error = Some(e.clone());
        drop(state);
        slot.ready.notify_all();
        self.inner.metrics.connect_failed();
        self.release_capacity();
        PoolError::Connect(e)
    }

    fn guard(&self, slot: &Arc<SlotOf<M>>, conn: M::Conn, reused: bool, purpose: Use) -> Pooled<M> {
        Pooled {
            conn: Some(conn),
            slot: Arc::clone(slot),
            pool: self.clone(),
            broken: false,
            reused,
            bulk: purpose == Use::Bulk,
        }
    }

    /// Finds or creates the slot of `key`, marking it recently used.
    fn slot(&self, key: &M::Key) -> Arc<SlotOf<M>> {
        self.slot_timed(key, &mut LockWait::default())
    }

    /// [`Pool::slot`], adding the time spent blocked on the shard lock
    /// to `lock_wait`.
    fn slot_timed(&self, key: &M::Key, lock_wait: &mut LockWait) -> Arc<SlotOf<M>> {
        let shard = &self.inner.shards[self.shard_of(key)];
        let mut map = lock_wait.lock(shard);
        if let Some(slot) = map.get(key) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(Slot::new(self.now_ms()));
        map.put(key.clone(), Arc::clone(&slot));
        slot
    }

    fn shard_of(&self, key: &M::Key) -> usize {
        (self.inner.hasher.hash_one(key) as usize) % SHARDS
    }

    fn now_ms(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }

    /// Takes one unit of the global bound, if any is left.
    fn try_reserve(&self) -> bool {
        let max = self.inner.config.max_size;
        let reserved = self
            .inner
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            });
        if let Ok(before) = reserved {
            self.inner.metrics.live_reached(before + 1);
        }
        reserved.is_ok()
    }

    fn release_capacity(&self) {
        self.inner.live.fetch_sub(1, Ordering::SeqCst);
        self.wake_capacity_waiters();
    }

    fn wake_capacity_waiters(&self) {
        if self.inner.capacity_waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.inner.capacity_lock.lock();
            self.inner.capacity.notify_all();
        }
    }

    /// Waits until a connection is closed or returned idle anywhere (an
    /// idle one can be evicted), or the deadline passes.
    fn wait_for_capacity(
        &self,
        key: &M::Key,
        deadline: Instant,
    ) -> Result<(), PoolError<M::Error>> {
        let inner = &self.inner;
        inner.metrics.capacity_wait();
        inner.capacity_waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = inner.capacity_lock.lock();
        let full = inner.live.load(Ordering::SeqCst) >= inner.config.max_size;
        let must_wait = full && (inner.closing.load(Ordering::SeqCst) > 0 || !self.any_idle());
        let timed_out = must_wait && inner.capacity.wait_until(&mut guard, deadline).timed_out();
        drop(guard);
        inner.capacity_waiters.fetch_sub(1, Ordering::SeqCst);
        if timed_out && Instant::now() >= deadline {
            return Err(self.timeout_error(key));
        }
        Ok(())
    }

    fn any_idle(&self) -> bool {
        self.inner.shards.iter().any(|shard| {
            shard
                .lock()
                .iter()
                .any(|(_, slot)| !slot.state.lock().idle.is_empty())
        })
    }

    fn timeout_error(&self, key: &M::Key) -> PoolError<M::Error> {
        PoolError::Timeout {
            host: key.to_string(),
        }
    }

    /// Closes the oldest idle connection of the least recently used host
    /// other than `except`. Returns whether one was closed.
    fn evict_one_idle(&self, except: Option<&Arc<SlotOf<M>>>) -> bool {
        let mut victim: Option<Arc<SlotOf<M>>> = None;
        for shard in self.inner.shards.iter() {
            let map = shard.lock();
            // Least recently used first: the first host with an idle
            // connection is this shard's candidate.
            let candidate = map.iter().rev().map(|(_, s)| s).find(|s| {
                except.is_none_or(|e| !Arc::ptr_eq(s, e)) && !s.state.lock().idle.is_empty()
            });
            if let Some(c) = candidate {
                if victim
                    .as_ref()
                    .is_none_or(|v| c.last_used() < v.last_used())
                {
                    victim = Some(Arc::clone(c));
                }
            }
        }
        let Some(victim) = victim else {
            return false;
        };
        let mut state = victim.state.lock();
        if state.idle.is_empty() {
            // Someone took it meanwhile; the caller simply looks again.
            return true;
        }
        let oldest = state.idle.remove(0);
        state.live -= 1;
        drop(state);
        victim.wake_one();
        self.inner.metrics.evicted();
        self.send_to_closer(oldest.conn);
        true
    }

    /// Drops a connection that will not come back, freeing its place.
    fn forget(&self, slot: &Arc<SlotOf<M>>, conn: M::Conn) {
        {
            let mut state = slot.state.lock();
            state.live -= 1;
        }
        slot.wake_one();
        self.send_to_closer(conn);
    }

    /// Hands a connection to the closer thread; its place in the global
    /// bound is freed when the close is done.
    fn send_to_closer(&self, conn: M::Conn) {
        self.inner.closing.fetch_add(1, Ordering::SeqCst);
        if self.inner.closer.send(Some(conn)).is_err() {
            // The closer has stopped (shutdown): dropping closes it.
            self.inner.closing.fetch_sub(1, Ordering::SeqCst);
            self.release_capacity();
        }
    }

    fn check_in(&self, slot: &Arc<SlotOf<M>>, conn: M::Conn) {
        if self.inner.closed.load(Ordering::Acquire) {
            self.forget(slot, conn);
            return;
        }
        slot.touch(self.now_ms());
        let now = Instant::now();
        slot.state.lock().idle.push(Idle {
            conn,
            since: now,
            checked: now,
        });
        slot.wake_one();
        self.wake_capacity_waiters();
    }

    /// Closes idle connections older than the idle timeout, health-checks
    /// those due for it, and forgets hosts that have no connections and
    /// nobody waiting.
    pub fn reap_idle(&self) {
        let timeout = self.inner.config.idle_timeout;
        let mut expired = Vec::new();
        let mut due = Vec::new();
        for shard in self.inner.shards.iter() {
            let mut map = shard.lock();
            let mut empty = Vec::new();
            for (key, slot) in map.iter() {
                let mut state = slot.state.lock();
                let before = state.idle.len();
                // Oldest at the bottom of the stack.
                let keep_from = state
                    .idle
                    .iter()
                    .position(|i| i.since.elapsed() < timeout)
                    .unwrap_or(before);
                expired.extend(state.idle.drain(..keep_from).map(|i| i.conn));
                state.live -= keep_from;
                due.extend(
                    take_due(&mut state.idle, self.inner.config.health_check_every)
                        .into_iter()
                        .map(|i| (Arc::clone(slot), i)),
                );
                let unused = state.live == 0 && state.waiters == 0;
                if unused && Arc::strong_count(slot) == 1 {
                    empty.push(key.clone());
                }
            }
            for key in empty {
                map.pop(&key);
            }
        }
        self.retire(expired, |m, n| m.reaped(n));
        self.check_health(due);
    }

    /// Health-checks connections taken off the idle lists, with no lock
    /// held, and puts back those that passed. While out, a connection
    /// still counts as live, so no bound can be exceeded. Once the pool
    /// closes the rest are dropped unchecked, so shutdown waits for one
    /// round of checks at most.
    fn check_health(&self, due: DueList<M>) {
        // A silent peer costs its check's full timeout: check a few at once
        // so that a handful of dead hosts cannot stall the reaper for long.
        let threads = due.len().min(HEALTH_CHECK_THREADS);
        if threads <= 1 {
            due.into_iter()
                .for_each(|(slot, idle)| self.check_one(slot, idle));
            return;
        }
        let queue = Mutex::new(due.into_iter());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    // A separate statement: in `while let` the guard would
                    // live through the check and serialise the threads.
                    let next = queue.lock().next();
                    let Some((slot, idle)) = next else { break };
                    self.check_one(slot, idle);
                });
            }
        });
    }

    fn check_one(&self, slot: Arc<SlotOf<M>>, mut idle: Idle<M::Conn>) {
        if self.inner.closed.load(Ordering::Acquire) {
            self.forget(&slot, idle.conn);
            return;
        }
        self.inner.metrics.health_checked();
        if self.inner.manager.check_health(&mut idle.conn) {
            idle.checked = Instant::now();
            self.put_back_idle(&slot, idle);
        } else {
            self.inner.metrics.health_failed();
            self.inner.metrics.discarded();
            self.forget(&slot, idle.conn);
        }
    }

    /// Returns a checked connection to its host's idle list, in order of
    /// last use, unless the pool closed meanwhile: `close` drains a slot
    /// after setting the flag, so looking under the slot lock cannot
    /// leave a connection behind.
    fn put_back_idle(&self, slot: &Arc<SlotOf<M>>, idle: Idle<M::Conn>) {
        let mut state = slot.state.lock();
        if self.inner.closed.load(Ordering::Acquire) {
            drop(state);
            self.forget(slot, idle.conn);
            return;
        }
        let at = state.idle.partition_point(|i| i.since <= idle.since);
        state.idle.insert(at, idle);
        drop(state);
        slot.wake_one();
        self.wake_capacity_waiters();
    }

    fn retire(&self, conns: Vec<M::Conn>, count: impl Fn(&Metrics, usize)) {
        if conns.is_empty() {
            return;
        }
        count(&self.inner.metrics, conns.len());
        for conn in conns {
            self.send_to_closer(conn);
        }
    }

    /// The manager, for figures it keeps itself (e.g. per-host latency).
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    pub fn downgrade(&self) -> WeakPool<M> {
        WeakPool {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Takes one place under the global bound for a connection the pool
    /// does not hand out itself (a ProxyJump session, which carries the
    /// tunnels of many pooled sessions at once), so that the bound counts
    /// it too. Makes room the way a check-out does: by evicting another
    /// host's idle connection, else by waiting, until `deadline`. The place
    /// is given back when the lease is dropped.
    pub fn lease(&self, deadline: Instant) -> Result<Lease, PoolError<M::Error>> {
        loop {
            if self.inner.closed.load(Ordering::Acquire) {
                return Err(PoolError::Closed);
            }
            if self.try_reserve() {
                let inner = Arc::downgrade(&self.inner);
                let release = move || {
                    if let Some(inner) = inner.upgrade() {
                        Pool { inner }.release_capacity();
                    }
                };
                return Ok(Lease {
                    release: Some(Box::new(release)),
                });
            }
            if self.inner.closing.load(Ordering::SeqCst) == 0 && self.evict_one_idle(None) {
                continue;
            }
            let inner = &self.inner;
            inner.capacity_waiters.fetch_add(1, Ordering::SeqCst);
            let mut guard = inner.capacity_lock.lock();
            let full = inner.live.load(Ordering::SeqCst) >= inner.config.max_size;
            let timed_out = full && inner.capacity.wait_until(&mut guard, deadline).timed_out();
            drop(guard);
            inner.capacity_waiters.fetch_sub(1, Ordering::SeqCst);
            if timed_out || Instant::now() >= deadline {
                return Err(PoolError::Timeout {
                    host: "(a ProxyJump session)".into(),
                });
            }
        }
    }

    /// Live connections across all hosts (idle, busy and connecting).
    pub fn live(&self) -> usize {
        self.inner.live.load(Ordering::SeqCst)
    }

    pub fn max_size(&self) -> usize {
        self.inner.config.max_size
    }

    /// Connections handed to the closer thread and not yet closed.
    pub fn closing(&self) -> usize {
        self.inner.closing.load(Ordering::SeqCst)
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    pub fn latencies(&self) -> Latencies {
        self.inner.metrics.latencies()
    }

    /// Records that a caller retried an operation on a fresh connection
    /// because the pooled one it got was dead.
    pub fn note_reconnect(&self) {
        self.inner.metrics.reconnected();
    }

    /// Per-host counts, for hosts the pool currently knows.
    pub fn host_stats(&self) -> Vec<HostStats> {
        let mut out = Vec::new();
        for shard in self.inner.shards.iter() {
            for (key, slot) in shard.lock().iter() {
                let s = slot.state.lock();
                out.push(HostStats {
                    host: key.to_string(),
                    live: s.live,
                    idle: s.idle.len(),
                    connecting: s.connecting,
                    waiters: s.waiters,
                });
            }
        }
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }

    /// Whether `key` has a live connection right now (used to skip
    /// probing hosts we are obviously connected to).
    pub fn has_live(&self, key: &M::Key) -> bool {
        let shard = &self.inner.shards[self.shard_of(key)];
        let map = shard.lock();
        map.peek(key).is_some_and(|s| s.state.lock().live > 0)
    }

    /// Stops handing out connections and closes every idle one. Busy
    /// connections are closed as they come back.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let mut idle = Vec::new();
        for shard in self.inner.shards.iter() {
            for (_, slot) in shard.lock().iter() {
                let mut state = slot.state.lock();
                let n = state.idle.len();
                idle.extend(state.idle.drain(..).map(|i| i.conn));
                state.live -= n;
                drop(state);
                slot.ready.notify_all();
            }
        }
        self.retire(idle, |m, n| (0..n).for_each(|_| m.discarded()));
    }
}

/// Warming: connections opened ahead of demand, only into room that is
/// free right now, so that warming can never cost a request anything.
impl<M: Manager> Pool<M> {
    /// Opens one connection to `key` and keeps it idle, unless the host
    /// already has one (idle, busy or being opened) or the pool is at its
    /// bound: warming never evicts, never waits for capacity and stays
    /// within the per-host and handshake caps. Returns whether it opened
    /// a connection.
    pub fn warm(&self, key: &M::Key, deadline: Instant) -> Result<bool, PoolError<M::Error>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PoolError::Closed);
        }
        let slot = self.slot(key);
        if !self.reserve_for_warming(&slot) {
            return Ok(false);
        }
        let started = Instant::now();
        let result = self.inner.manager.connect(key, deadline);
        let mut state = slot.state.lock();
        state.connecting -= 1;
        match result {
            Ok(conn) => {
                drop(state);
                self.inner.metrics.connected(started.elapsed());
                self.inner.metrics.warmed();
                self.check_in(&slot, conn);
                // Requests held back by the handshake cap may start their
                // own connects now, not only the one that takes this.
                slot.ready.notify_all();
                Ok(true)
            }
            Err(e) => Err(self.connect_failed(&slot, state, e)),
        }
    }

    /// Takes a place for a warming connect if the host has no connection
    /// at all and the global bound has room without evicting anyone. With
    /// none live, one connect is within any per-host and handshake cap.
    fn reserve_for_warming(&self, slot: &Arc<SlotOf<M>>) -> bool {
        let mut state = slot.state.lock();
        if state.live > 0 || !self.try_reserve() {
            return false;
        }
        state.live += 1;
        state.connecting += 1;
        true
    }

    /// Whether the pool has been closed (shutdown has begun).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

impl PoolThreads {
    /// Stops the reaper and waits (up to `grace`) for pending closes.
    pub fn shutdown<M: Manager>(mut self, pool: Pool<M>, grace: Duration) {
        pool.close();
        let _ = self.stop_reaper.send(());
        if let Some(h) = self.reaper.take() {
            let _ = h.join();
        }
        // The closer drains what is queued before the stop marker; wait
        // for it only as long as we may, since a disconnect can block.
        let _ = pool.inner.closer.send(None);
        if let Some(h) = self.closer.take() {
            let deadline = Instant::now() + grace;
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// A place under the pool's global bound, held by something other than
/// a pooled connection (see [`Pool::lease`]); freed on drop. Holds the
/// pool weakly: what holds a lease may itself live in the pool.
pub struct Lease {
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lease")
    }
}

/// A checked-out connection. Returns to the pool when dropped, unless it
/// was marked broken, in which case it is closed.
pub struct Pooled<M: Manager> {
    conn: Option<M::Conn>,
    slot: Arc<SlotOf<M>>,
    pool: Pool<M>,
    broken: bool,
    reused: bool,
    /// Counts against the host's bulk limit until dropped.
    bulk: bool,
}

impl<M: Manager> Pooled<M> {
    /// Marks the connection as unusable: it is closed instead of reused.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether this connection came from the idle list (and so may have
    /// died while idle) rather than being opened for this request.
    pub fn was_reused(&self) -> bool {
        self.reused
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Conn;
    fn deref(&self) -> &M::Conn {
        // Present from construction until drop.
        self.conn
            .as_ref()
            .expect("pooled connection present until drop")
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Conn {
        self.conn
            .as_mut()
            .expect("pooled connection present until drop")
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // Before the check-in, whose wake-up then finds the claim gone.
        if self.bulk {
            self.pool.release_bulk(&self.slot);
        }
        if self.broken {
            self.pool.inner.metrics.discarded();
            self.pool.forget(&self.slot, conn);
        } else {
            self.pool.check_in(&self.slot, conn);
        }
    }
}

#[cfg(test)]
mod tests;
