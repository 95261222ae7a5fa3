//! The integration-test fixture for scout-mcp.
//!
//! Tests run against real OpenSSH servers on loopback, never against mocks (DESIGN.md §4):
//!
//! - [`Fleet`] starts `sshd` daemons that serve any number of logical hosts, each on its own
//!   127.x.y.z address, and writes the ssh config, known_hosts and keys a client needs.
//! - [`Scout`] runs the scout-mcp binary under test and speaks newline-delimited JSON-RPC to it.
//! - [`Proxy`] sits in front of a fleet host and injects network faults (latency, stall,
//!   FIN, RST, refused connects).
//! - [`Agent`] runs a real `ssh-agent` holding the keys a test adds to it.
//! - [`Netns`], [`NsSshd`] and [`Forwarder`] put hosts in a network namespace of the test's
//!   own that only a jump host can reach.
//! - [`SilentListener`] and [`closed_port`] stand in for hosts that fail below SSH.
//!
//! Every process started here is stopped by its PID when its owner is dropped, even when a
//! test panics, and every wait is bounded by a deadline generous enough ([`PATIENCE`]) that a
//! busy machine does not fail a test: only a real hang does.
#![allow(dead_code)] // each test binary uses its own subset of the fixture

mod agent;
mod faults;
mod fleet;
mod net;
mod netns;
mod process;
mod proxy;
mod scout;
mod sshd;
mod temp;
mod user;

use std::thread;
use std::time::{Duration, Instant};

// The fixture's public face; each test binary uses its own part of it.
#[allow(unused_imports)]
pub use agent::Agent;
#[allow(unused_imports)]
pub use faults::{closed_port, SilentListener};
#[allow(unused_imports)]
pub use fleet::{Fleet, FleetBuilder};
#[allow(unused_imports)]
pub use netns::{Forwarder, Netns, NsSshd};
#[allow(unused_imports)]
pub use process::{command_running, is_alive, run_bounded};
#[allow(unused_imports)]
pub use proxy::{ProxiedFleet, Proxy};
#[allow(unused_imports)]
pub use scout::{Scout, ToolResult, PROTOCOL_VERSION};
#[allow(unused_imports)]
pub use temp::TempDir;

/// How long a step that normally takes milliseconds may take before a test gives up.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Calls `check` every `every` until it returns `Some`, or until `limit` has passed (`None`).
/// `check` always runs at least once, and once more at the deadline.
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(every.min(deadline - now));
    }
}

/// Calls `cond` every 20 ms until it holds or `limit` has passed; whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    poll(limit, Duration::from_millis(20), || cond().then_some(())).is_some()
}

/// The last `max` bytes of `text` (on a char boundary), for panic messages that quote logs.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
