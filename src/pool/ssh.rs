//! The pool's manager for SSH sessions: hosts come from the inventory.

use super::Manager;
use crate::config::Inventory;
use crate::ssh::{self, ConnectOptions, ErrorKind, Jumps, SshError, SshSession};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an idle session may take to answer a health check. A healthy
/// one answers in well under a millisecond on a LAN and in one round trip
/// on a WAN; the reaper checks sessions one after another, so this also
/// bounds how long one silent host delays the others (and shutdown).
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub struct SshManager {
    inventory: Arc<Inventory>,
    options: ConnectOptions,
}

impl SshManager {
    /// Hosts behind a ProxyJump share jump sessions through a registry
    /// (see `ssh::jump`) that resolves hop names through `inventory`.
    /// Jump sessions are not pool entries: the pool hands a session out
    /// exclusively, while a jump session carries many sessions' tunnels
    /// at once. Each lives only while a pooled session runs through it
    /// (so the idle timeout closes it too) and holds a place under the
    /// pool's bound (`server::count_jump_sessions`).
    pub fn new(inventory: Arc<Inventory>, mut options: ConnectOptions) -> Self {
        if options.jumps.is_none() {
            let hops = Arc::clone(&inventory);
            options.jumps = Some(Arc::new(Jumps::new(move |name| hops.resolve_hop(name))));
        }
        SshManager { inventory, options }
    }

    /// The ProxyJump registry, to make its sessions count in the pool.
    pub fn jumps(&self) -> Option<&Arc<Jumps>> {
        self.options.jumps.as_ref()
    }

    /// Jump sessions open right now.
    pub fn jump_sessions(&self) -> usize {
        self.options.jumps.as_ref().map_or(0, |j| j.live())
    }

    /// Each host's round-trip estimate and per-call timeout (the
    /// estimates connects and sessions share), for metrics.
    pub fn latency_snapshot(&self) -> Vec<crate::ssh::HostLatency> {
        self.options.latency_snapshot()
    }
}

impl Manager for SshManager {
    type Key = String;
    type Conn = SshSession;
    type Error = SshError;

    fn connect(&self, alias: &String, deadline: Instant) -> Result<SshSession, SshError> {
        let host = self
            .inventory
            .get(alias)
            .ok_or_else(|| SshError::new(ErrorKind::Config, format!("Unknown host '{alias}'")))?;
        let started = Instant::now();
        let result = ssh::connect(&host, &self.options, deadline);
        match &result {
            Ok(_) => log::debug!("{alias}: connected in {:?}", started.elapsed()),
            Err(e) => log::warn!("{e}"),
        }
        result
    }

    fn is_alive(&self, conn: &mut SshSession) -> bool {
        conn.is_alive()
    }

    fn check_health(&self, conn: &mut SshSession) -> bool {
        match conn.check_health(HEALTH_CHECK_TIMEOUT) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("idle SSH session failed its health check and is dropped: {e}");
                false
            }
        }
    }

    fn close(&self, conn: SshSession) {
        conn.disconnect();
    }
}
