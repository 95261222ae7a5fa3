//! One host's corner of the pool: its idle connections and counters.
//!
//! The mutex here guards bookkeeping only. It is never held while a
//! connection is opened, used or closed, so a slow host cannot stall a
//! worker that only wants to look at its counters.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub(crate) struct Idle<C> {
    pub conn: C,
    /// When it was last used; the idle timeout counts from here.
    pub since: Instant,
    /// When it was last health-checked; `since` at first.
    pub checked: Instant,
}

pub(crate) struct SlotState<C, E> {
    /// Idle connections, most recently returned on top (it is the one
    /// most likely to still be warm on the server side too).
    pub idle: Vec<Idle<C>>,
    /// Connections that exist or are being opened: idle + busy + connecting.
    pub live: usize,
    /// Handshakes in progress.
    pub connecting: usize,
    /// Requests blocked in `wait_until` for this host.
    pub waiters: usize,
    /// Counts failed connects so that waiters can tell that the connect
    /// they were waiting for failed, and share its error instead of
    /// queueing up to hammer a dead host one after another.
    pub failures: u64,
    pub last_error: Option<E>,
}

pub(crate) struct Slot<C, E> {
    pub state: Mutex<SlotState<C, E>>,
    /// Signalled when a connection is returned, closed, or a connect ends.
    pub ready: Condvar,
    /// Milliseconds since the pool's epoch of the last check-out or
    /// check-in; orders hosts for eviction across shards.
    pub last_used: AtomicU64,
}

impl<C, E> Slot<C, E> {
    pub fn new(now_ms: u64) -> Self {
        Slot {
            state: Mutex::new(SlotState {
                idle: Vec::new(),
                live: 0,
                connecting: 0,
                waiters: 0,
                failures: 0,
                last_error: None,
            }),
            ready: Condvar::new(),
            last_used: AtomicU64::new(now_ms),
        }
    }

    pub fn touch(&self, now_ms: u64) {
        self.last_used.store(now_ms, Ordering::Relaxed);
    }

    pub fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

/// A snapshot of one host's connections, for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStats {
    pub host: String,
    pub live: usize,
    pub idle: usize,
    pub connecting: usize,
    pub waiters: usize,
}
