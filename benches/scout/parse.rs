//! Config and target parsing through the library, on generated ssh configs.

use scout_mcp::config::{Inventory, SshConfig};
use scout_mcp::scout::target;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::stats::median;

/// An ssh config of `hosts` host blocks, shaped like a real fleet's: a wildcard defaults
/// block at the end, and each host with its own address, user, port and key.
pub fn generated_config(hosts: usize) -> String {
    let mut text = String::with_capacity(hosts * 120);
    for i in 0..hosts {
        text += &format!(
            "Host web{i} web{i}.example.com\n    HostName 10.{}.{}.{}\n    User deploy\n    Port {}\n    IdentityFile ~/.ssh/id_ed25519\n\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            22 + i % 3,
        );
    }
    text += "Host *\n    ServerAliveInterval 30\n    ConnectTimeout 10\n";
    text
}

/// Median times to parse the config and build the inventory from it (what the server does
/// at start-up; a host's settings are resolved on first use), and then to resolve every alias
/// (what listing all hosts costs once).
pub fn config_load(hosts: usize, runs: usize) -> Result<(Duration, Duration), String> {
    let text = generated_config(hosts);
    let origin = Path::new("/bench/ssh_config");
    let mut load_times = Vec::with_capacity(runs);
    let mut resolve_times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let config =
            SshConfig::parse(&text, origin).map_err(|e| format!("parse {hosts} hosts: {e}"))?;
        let inventory = Inventory::new(config, None, &[]);
        load_times.push(t.elapsed());
        // Two aliases per host line.
        if inventory.len() != 2 * hosts {
            return Err(format!(
                "{hosts}-host config gave {} aliases, expected {}",
                inventory.len(),
                2 * hosts
            ));
        }
        let names = inventory.names();
        let t = Instant::now();
        for name in &names {
            black_box(inventory.get(name));
        }
        resolve_times.push(t.elapsed());
        black_box(inventory);
    }
    let load = median(&load_times).ok_or_else(|| "no runs".to_string())?;
    let resolve = median(&resolve_times).ok_or_else(|| "no runs".to_string())?;
    Ok((load, resolve))
}

pub fn targets(count: usize) -> Result<Duration, String> {
    let inputs: Vec<String> = (0..count)
        .map(|i| format!("web{i}:/var/log/app/service-{i}.log"))
        .collect();
    let t = Instant::now();
    for input in &inputs {
        black_box(target::parse(black_box(input)).map_err(|e| format!("{input}: {e}"))?);
    }
    Ok(t.elapsed() / count.max(1) as u32)
}
