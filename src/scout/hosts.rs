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
        let marks: Vec<Mark> = self.fanout.install(|| {
            names
                .par_iter()
                .map(|name| self.mark(name, timeout))
                .collect()
        });
        let mut lines = vec!["Available hosts:".to_string()];
        for (name, mark) in names.iter().zip(marks) {
            let Some(host) = self.inventory.get(name) else {
                continue;
            };
            let (icon, word) = match &mark {
                Mark::Online => ("✓", "online".to_string()),
                Mark::Offline => ("✗", "offline".to_string()),
                Mark::Behind(jump) => ("?", format!("via {jump}, not probed")),
            };
            lines.push(format!(
                "  [{icon}] {name} ({word}) -> {}@{}:{}",
                host.user, host.hostname, host.port
            ));
        }
        lines.join("\n")
    }

    /// A host with a pooled connection is online without asking again. A
    /// host behind a ProxyJump is not probed: a TCP probe from here says
    /// nothing about it, and a real connect through the jump host is more
    /// than a host list should cost.
    fn mark(&self, name: &str, timeout: Duration) -> Mark {
        if self.pool.has_live(&name.to_string()) {
            return Mark::Online;
        }
        match self.inventory.get(name) {
            Some(host) => match &host.proxy_jump {
                Some(jump) => Mark::Behind(jump.clone()),
                None if ssh::probe(&host, timeout) => Mark::Online,
                None => Mark::Offline,
            },
            None => Mark::Offline,
        }
    }
}

enum Mark {
    Online,
    Offline,
    /// Behind these jump hosts, and not probed.
    Behind(String),
}
