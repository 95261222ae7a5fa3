//! scout-mcp: an MCP server that reads files, lists directories and runs
//! commands on a fleet of machines over SSH, fast and bounded.
//!
//! Layers, each using only the ones below it:
//! `mcp` (protocol) → `scout` / `resources` (tool logic) → `pool` →
//! `ssh` → `config`. `workers` is the generic bounded executor,
//! `server` wires everything together and `cli` runs the same operations
//! for people (`call`, `hosts`, `check`).

pub mod cancel;
pub mod cli;
pub mod config;
pub mod histogram;
pub mod mcp;
pub mod pool;
pub mod resources;
pub mod scout;
pub mod server;
pub mod ssh;
pub mod warming;
pub mod workers;
