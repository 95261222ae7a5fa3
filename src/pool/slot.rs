//! One host's corner of the pool: its idle connections and counters.
//!
//! The mutex here guards bookkeeping only. It is never held while a
//! connection is opened, used or closed, so a slow host cannot stall a
//! worker that only wants to look at its counters.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// What a check-out is for. Bulk work (long commands, transfers) may hold
/// at most `max_per_host - 1` of a host's connections, so that quick work
/// (reads, listings) always finds one; with `max_per_host = 1` there is
/// nothing to reserve and bulk may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Quick,
    Bulk,
}

impl Use {
    /// Connections of a host that bulk check-outs may hold at once.
    pub(crate) fn bulk_limit(max_per_host: usize) -> usize {
        max_per_host.saturating_sub(1).max(1)
    }
}

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
    /// Connections held by (or being opened for) bulk check-outs.
    pub bulk_busy: usize,
    /// Counts failed connects so that waiters can tell that the connect
    /// they were waiting for failed, and share its error instead of
    /// queueing up to hammer a dead host one after another.
    pub failures: u64,
    pub last_error: Option<E>,
}

impl<C, E> SlotState<C, E> {
    /// Whether a `purpose` check-out may take one more of the host's
    /// connections (an idle one or a new one).
    pub fn may_claim(&self, purpose: Use, max_per_host: usize) -> bool {
        purpose == Use::Quick || self.bulk_busy < Use::bulk_limit(max_per_host)
    }

    /// Counts a connection taken for `purpose` against the bulk limit.
    pub fn claim(&mut self, purpose: Use) {
        self.bulk_busy += usize::from(purpose == Use::Bulk);
    }
}

pub(crate) struct Slot<C, E> {
    pub state: Mutex<SlotState<C, E>>,
    /// Signalled when a connection is returned, closed, or a connect ends.
    pub ready: Condvar,
    /// Bulk requests among the waiters. Written under the state lock,
    /// read without it by [`Slot::wake_one`].
    pub bulk_waiters: AtomicUsize,
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
                bulk_busy: 0,
                failures: 0,
                last_error: None,
            }),
            ready: Condvar::new(),
            bulk_waiters: AtomicUsize::new(0),
            last_used: AtomicU64::new(now_ms),
        }
    }

    /// Wakes a waiter for one freed connection or place. A bulk waiter
    /// may be unable to use it (the reservation), and waking only that one
    /// would strand a quick waiter that could: with bulk waiters about,
    /// wake everyone and let them sort it out.
    pub fn wake_one(&self) {
        if self.bulk_waiters.load(Ordering::SeqCst) > 0 {
            self.ready.notify_all();
        } else {
            self.ready.notify_one();
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
