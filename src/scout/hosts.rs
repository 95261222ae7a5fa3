//! The `hosts` mode: configured hosts with an online mark.

use super::Scout;
use crate::ssh;
use rayon::prelude::*;
use std::time::Duration;

/// A probe never waits longer than this, whatever the connect timeout:
/// listing hosts should feel instant.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Scout {
    pub fn hosts_text(&self) -> String {
        let names = self.inventory.names();
        if names.is_empty() {
            return format!(
                "No SSH hosts configured (looked in {}).",
                self.settings.ssh_config.display()
            );
        }
        let timeout = PROBE_TIMEOUT.min(self.settings.connect_timeout);
        let online: Vec<bool> = self.fanout.install(|| {
            names
                .par_iter()
                .map(|name| self.is_online(name, timeout))
                .collect()
        });
        let mut lines = vec!["Available hosts:".to_string()];
        for (name, up) in names.iter().zip(online) {
            let Some(host) = self.inventory.get(name) else {
                continue;
            };
            let (icon, word) = if up {
                ("✓", "online")
            } else {
                ("✗", "offline")
            };
            lines.push(format!(
                "  [{icon}] {name} ({word}) -> {}@{}:{}",
                host.user, host.hostname, host.port
            ));
        }
        lines.join("\n")
    }

    /// A host with a pooled connection is online without asking again.
    fn is_online(&self, name: &str, timeout: Duration) -> bool {
        if self.pool.has_live(&name.to_string()) {
            return true;
        }
        match self.inventory.get(name) {
            Some(host) if host.proxy_jump.is_none() => ssh::probe(&host, timeout),
            _ => false,
        }
    }
}
