//! SSH on libssh2: opening sessions, running commands, SFTP file access.
//! Knows nothing of pools or MCP.

mod auth;
pub mod check;
pub mod error;
pub mod exec;
pub mod host_key;
pub mod jump;
mod keyfile;
pub mod latency;
#[cfg(feature = "legacy-sha1")]
mod legacy;
pub mod session;
pub mod sftp;
pub mod transfer;
pub mod tunnel;

pub use error::{ErrorKind, SshError};
pub use host_key::HostKeyPolicy;
pub use jump::Jumps;
pub use latency::{HostLatency, Latencies};
pub use session::{connect, probe, ConnectOptions, SshSession};
