//! The pool's manager for SSH sessions: hosts come from the inventory.

use super::Manager;
use crate::config::Inventory;
use crate::ssh::{self, ConnectOptions, ErrorKind, SshError, SshSession};
use std::sync::Arc;
use std::time::Instant;

pub struct SshManager {
    inventory: Arc<Inventory>,
    options: ConnectOptions,
}

impl SshManager {
    pub fn new(inventory: Arc<Inventory>, options: ConnectOptions) -> Self {
        SshManager { inventory, options }
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

    fn keepalive(&self, conn: &mut SshSession) -> bool {
        conn.keepalive()
    }

    fn close(&self, conn: SshSession) {
        conn.disconnect();
    }
}
