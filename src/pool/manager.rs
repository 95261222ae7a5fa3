//! What the pool needs to know about the connections it keeps.
//!
//! The pool itself is generic so that its bookkeeping (bounds, LRU
//! eviction, waiting) can be unit-tested without a network; the SSH
//! implementation lives in `pool::ssh`.

use std::fmt::Display;
use std::hash::Hash;
use std::time::Instant;

/// Creates, checks and closes connections for one kind of key (a host).
pub trait Manager: Send + Sync + 'static {
    /// Identifies a host; connections are pooled per key.
    type Key: Clone + Eq + Hash + Display + Send + Sync + 'static;
    /// One connection, handed out exclusively.
    type Conn: Send + 'static;
    /// Why a connect failed. Cloned to every request that waited on it.
    type Error: Clone + Send + 'static;

    /// Opens a new connection; must give up by `deadline`.
    fn connect(&self, key: &Self::Key, deadline: Instant) -> Result<Self::Conn, Self::Error>;

    /// A cheap check, without a network round trip, that an idle
    /// connection is still usable.
    fn is_alive(&self, conn: &mut Self::Conn) -> bool;

    /// Finds out, with a network round trip under a short timeout,
    /// whether an idle connection still works; the traffic also keeps it
    /// alive in NAT tables. Unlike [`Manager::is_alive`] this catches a
    /// peer that vanished without closing the connection. Called by the
    /// reaper with no lock held. Returns false when the connection should
    /// be dropped.
    fn check_health(&self, _conn: &mut Self::Conn) -> bool {
        true
    }

    /// Closes a connection. Runs on the pool's closer thread because a
    /// polite disconnect may block for a while.
    fn close(&self, conn: Self::Conn);
}
