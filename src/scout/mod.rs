//! The scout operations: what the `scout` tool and the resources do,
//! independent of how the request arrived (MCP, CLI).

mod beam;
mod broadcast;
pub mod command;
mod diff;
mod find;
pub mod format;
mod hosts;
pub mod read;
pub mod restrict;
pub mod stats;
pub mod target;
mod tree;
mod walk;

use crate::cancel::CancelToken;
use crate::config::{Inventory, Settings};
use crate::pool::ssh::SshManager;
use crate::pool::{Pool, PoolError, Use};
use crate::ssh::{SshError, SshSession};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use target::Target;

/// The `scout` tool's arguments, with the Python original's names.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoutRequest {
    #[serde(default)]
    pub target: String,
    pub query: Option<String>,
    #[serde(default)]
    pub tree: bool,
    pub find: Option<String>,
    pub depth: Option<u32>,
    pub diff: Option<String>,
    pub diff_content: Option<String>,
    pub targets: Option<Vec<String>>,
    pub beam: Option<String>,
    pub beam_source: Option<String>,
    pub beam_target: Option<String>,
}

/// What a request does, for scheduling and per-mode metrics. Quick modes
/// are a few SFTP round trips; bulk modes run remote commands or move
/// data and may take as long as their timeouts allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Hosts,
    Read,
    Tree,
    Find,
    Diff,
    Command,
    Broadcast,
    Beam,
}

impl Mode {
    pub const ALL: [Mode; 8] = [
        Mode::Hosts,
        Mode::Read,
        Mode::Tree,
        Mode::Find,
        Mode::Diff,
        Mode::Command,
        Mode::Broadcast,
        Mode::Beam,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Hosts => "hosts",
            Mode::Read => "read",
            Mode::Tree => "tree",
            Mode::Find => "find",
            Mode::Diff => "diff",
            Mode::Command => "command",
            Mode::Broadcast => "broadcast",
            Mode::Beam => "beam",
        }
    }

    /// Commands, broadcasts and transfers: work that may hold a worker
    /// and a session for a long time.
    pub fn is_bulk(self) -> bool {
        matches!(self, Mode::Command | Mode::Broadcast | Mode::Beam)
    }
}

impl ScoutRequest {
    /// The mode [`Scout::run`] will pick, in the same order of precedence.
    /// A request that will fail validation still gets a mode (the one its
    /// parameters point at).
    pub fn mode(&self) -> Mode {
        if self.beam_source.is_some() || self.beam_target.is_some() || self.beam.is_some() {
            Mode::Beam
        } else if self.targets.is_some() {
            Mode::Broadcast
        } else if self.target.trim().eq_ignore_ascii_case("hosts") {
            Mode::Hosts
        } else if self.find.is_some() {
            Mode::Find
        } else if self.diff.is_some() || self.diff_content.is_some() {
            Mode::Diff
        } else if self.query.is_some() {
            Mode::Command
        } else if self.tree {
            Mode::Tree
        } else {
            Mode::Read
        }
    }
}

/// What a scout operation produced, ready for a tool result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub text: String,
    pub is_error: bool,
    pub structured: Option<Value>,
}

impl ToolOutput {
    pub fn ok(text: impl Into<String>) -> Self {
        ToolOutput {
            text: text.into(),
            is_error: false,
            structured: None,
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        ToolOutput {
            text: format!("Error: {}", text.into()),
            is_error: true,
            structured: None,
        }
    }
}

/// Why an operation on a host failed, worded for the user.
pub type OpResult<T> = Result<T, String>;

/// An operation's failure, and whether repeating it on a fresh session
/// is safe (nothing was started on the remote side).
pub struct OpError {
    pub error: SshError,
    pub retry_safe: bool,
}

impl From<SshError> for OpError {
    fn from(error: SshError) -> Self {
        OpError {
            error,
            retry_safe: true,
        }
    }
}

pub struct Scout {
    pub settings: Arc<Settings>,
    pub inventory: Arc<Inventory>,
    pub pool: Pool<SshManager>,
    /// Per-mode request latency and errors, recorded by the protocol
    /// layer, which knows when a request arrived.
    pub stats: stats::RequestStats,
    /// Bounded pool for probing many hosts at once; not rayon's global
    /// pool, because its jobs block on the network.
    fanout: rayon::ThreadPool,
}

impl Scout {
    pub fn new(
        settings: Arc<Settings>,
        inventory: Arc<Inventory>,
        pool: Pool<SshManager>,
        fanout_width: usize,
    ) -> std::io::Result<Scout> {
        let fanout = rayon::ThreadPoolBuilder::new()
            .num_threads(fanout_width.max(1))
            .thread_name(|i| format!("fanout-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Scout {
            settings,
            inventory,
            pool,
            stats: stats::RequestStats::default(),
            fanout,
        })
    }

    /// Runs one `scout` tool call. The text of the result never exceeds
    /// `SCOUT_MAX_OUTPUT_SIZE` (plus a short note), except a file read,
    /// whose own limit is `SCOUT_MAX_FILE_SIZE`.
    pub fn run(&self, req: &ScoutRequest, ctx: &RunContext) -> ToolOutput {
        let mut output = self.dispatch(req, ctx);
        output.text = format::cap_text(output.text, self.output_cap(req.mode()));
        output
    }

    fn output_cap(&self, mode: Mode) -> usize {
        let s = &self.settings;
        match mode {
            // Room for the file and its truncation note.
            Mode::Read => s.max_output_size.max(
                usize::try_from(s.max_file_size)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1024),
            ),
            _ => s.max_output_size,
        }
    }

    fn dispatch(&self, req: &ScoutRequest, ctx: &RunContext) -> ToolOutput {
        if let Some(e) = beam::check_beam_arguments(req) {
            return ToolOutput::error(e);
        }
        if let (Some(src), Some(dst)) = (&req.beam_source, &req.beam_target) {
            if self.settings.read_only {
                return ToolOutput::error(format!(
                    "refusing to write {dst}: SCOUT_READ_ONLY is set, remote hosts are not written to"
                ));
            }
            return self.beam_remote(src, dst, ctx);
        }
        if let Some(targets) = &req.targets {
            return self.broadcast(targets, req.query.as_deref(), ctx);
        }
        let target = match target::parse(&req.target) {
            Ok(t) => t,
            Err(e) => return ToolOutput::error(e.0),
        };
        let (host, path) = match target {
            Target::Hosts if req.beam.is_some() => {
                return ToolOutput::error(
                    "beam parameter requires a valid host:/path target, not 'hosts'",
                )
            }
            Target::Hosts => return ToolOutput::ok(self.hosts_text()),
            Target::Path { host, path } => (host, path),
        };
        if let Err(e) = self.check_host(&host) {
            return ToolOutput::error(e);
        }
        self.on_path(&host, &path, req, ctx)
    }

    /// The single-target modes, in the original's order of precedence.
    fn on_path(&self, host: &str, path: &str, req: &ScoutRequest, ctx: &RunContext) -> ToolOutput {
        if let Some(local) = &req.beam {
            // An existing local file means an upload (the original's rule).
            if self.settings.read_only && std::path::Path::new(local).exists() {
                return ToolOutput::error(format!(
                    "refusing to upload {local} to {host}:{path}: SCOUT_READ_ONLY is set"
                ));
            }
            return self.beam_local(host, path, local, ctx);
        }
        if let Some(pattern) = &req.find {
            return self.find(host, path, pattern, req.depth.unwrap_or(5));
        }
        if let Some(other) = &req.diff {
            return self.diff(host, path, other);
        }
        if let Some(expected) = &req.diff_content {
            return self.diff_content(host, path, expected);
        }
        if let Some(q) = &req.query {
            return self.run_command(host, path, q, ctx);
        }
        if req.tree {
            return self.tree(host, path, req.depth.unwrap_or(3));
        }
        self.read_path(host, path)
    }

    /// `Unknown host 'x'. Available: ...` unless the host is configured.
    pub fn check_host(&self, host: &str) -> OpResult<()> {
        if self.inventory.get(host).is_some() {
            return Ok(());
        }
        let names = self.inventory.names();
        const SHOWN: usize = 30;
        let mut available = names
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > SHOWN {
            available.push_str(&format!(", … ({} more)", names.len() - SHOWN));
        }
        if names.is_empty() {
            available = format!("(none: no hosts in {})", self.settings.ssh_config.display());
        }
        Err(format!(
            "Unknown host '{}'. Available: {available}",
            target::shorten(host)
        ))
    }

    /// How long a request may wait for a session: TCP connect plus
    /// handshake, each bounded by the connect timeout, plus some slack
    /// for waiting on a busy host.
    fn checkout_deadline(&self) -> Instant {
        Instant::now() + self.settings.connect_timeout * 2 + Duration::from_secs(1)
    }

    /// Runs `op` on a pooled session to `host`. When a session taken from
    /// the idle list turns out dead, retries once on a fresh one, if the
    /// operation had not started anything remotely.
    pub fn with_session<T>(
        &self,
        host: &str,
        op: impl FnMut(&mut SshSession) -> Result<T, OpError>,
    ) -> OpResult<T> {
        self.with_session_for(host, Use::Quick, op)
    }

    /// [`Scout::with_session`] for work that may hold the session long
    /// (`Use::Bulk`: commands, transfers), which must leave one of the
    /// host's sessions to quick reads.
    pub fn with_session_for<T>(
        &self,
        host: &str,
        purpose: Use,
        mut op: impl FnMut(&mut SshSession) -> Result<T, OpError>,
    ) -> OpResult<T> {
        let key = host.to_string();
        for attempt in 0..2 {
            let mut conn = self
                .pool
                .get_for(&key, self.checkout_deadline(), purpose)
                .map_err(pool_error)?;
            let result = op(&mut conn);
            if conn.is_poisoned() {
                conn.mark_broken();
            }
            match result {
                Ok(v) => return Ok(v),
                Err(failure) => {
                    let broken = failure.error.breaks_session();
                    if broken {
                        conn.mark_broken();
                    }
                    if attempt == 0 && broken && failure.retry_safe && conn.was_reused() {
                        log::info!(
                            "{host}: pooled session was dead ({}); reconnecting",
                            failure.error
                        );
                        self.pool.note_reconnect();
                        continue;
                    }
                    return Err(failure.error.to_string());
                }
            }
        }
        Err(format!("{host}: the connection failed twice in a row"))
    }
}

fn pool_error(e: PoolError<SshError>) -> String {
    e.to_string()
}

/// Receives (done, total, message) as a long operation advances.
pub type ProgressFn = Box<dyn Fn(u64, Option<u64>, &str) + Send + Sync>;

/// Per-request context from the protocol layer.
#[derive(Default)]
pub struct RunContext {
    /// Called with (done, total, message) as long operations advance; set
    /// when the client asked for progress notifications.
    pub progress: Option<ProgressFn>,
    /// Set when the client cancelled the request or the server is
    /// shutting down: work stops and remote processes are terminated.
    pub cancel: CancelToken,
}

impl RunContext {
    pub fn report(&self, done: u64, total: Option<u64>, message: &str) {
        if let Some(p) = &self.progress {
            p(done, total, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: serde_json::Value) -> ScoutRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_mode_follows_the_order_of_precedence_of_run() {
        use serde_json::json;
        let cases = [
            (json!({"target": "hosts"}), Mode::Hosts),
            (json!({"target": " HOSTS "}), Mode::Hosts),
            (json!({"target": "a:/x"}), Mode::Read),
            (json!({"target": "a:/x", "tree": true}), Mode::Tree),
            (
                json!({"target": "a:/x", "tree": true, "query": "ls"}),
                Mode::Command,
            ),
            (
                json!({"target": "a:/x", "query": "ls", "diff": "b:/y"}),
                Mode::Diff,
            ),
            (json!({"target": "a:/x", "diff_content": "z"}), Mode::Diff),
            (
                json!({"target": "a:/x", "find": "*", "diff": "b:/y"}),
                Mode::Find,
            ),
            (
                json!({"target": "a:/x", "find": "*", "beam": "/tmp/f"}),
                Mode::Beam,
            ),
            (
                json!({"beam_source": "a:/x", "beam_target": "b:/y"}),
                Mode::Beam,
            ),
            (json!({"targets": ["a:/x"], "query": "ls"}), Mode::Broadcast),
        ];
        for (json, mode) in cases {
            assert_eq!(req(json.clone()).mode(), mode, "{json}");
        }
        assert!(Mode::Command.is_bulk() && Mode::Beam.is_bulk() && Mode::Broadcast.is_bulk());
        assert!(Mode::ALL.iter().filter(|m| !m.is_bulk()).count() == 5);
    }
}
