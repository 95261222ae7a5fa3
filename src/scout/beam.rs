//! `beam`: file transfers over SFTP (local ↔ remote, remote → remote).
//!
//! The streaming, temporary files and renames live in
//! [`crate::ssh::transfer`]; this module decides the direction, checks the
//! arguments, picks sessions and deadlines, and words the result.

use super::target::{self, Target};
use super::{OpError, OpResult, RunContext, Scout, ScoutRequest, ToolOutput};
use crate::pool::Use;
use crate::ssh::transfer::{self, Done, Ends, Side, TransferError};
use crate::ssh::{ErrorKind, SshError};
use serde_json::json;
use std::io::Seek;
use std::path::Path;
use std::time::{Duration, Instant};

/// The slowest rate a healthy transfer is expected to keep up, used to
/// size its overall deadline. A stalled connection is caught much sooner
/// by the per-call timeout; this only stops a transfer that trickles on.
const MIN_RATE: u64 = 1 << 20;

/// At most this often a progress notification, plus a first and a last.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The original's checks on how the beam parameters combine.
pub(super) fn check_beam_arguments(req: &ScoutRequest) -> Option<String> {
    if req.beam.is_some() && (req.beam_source.is_some() || req.beam_target.is_some()) {
        return Some(
            "Cannot use both 'beam' and 'beam_source/beam_target'. Use 'beam' for local \
             transfers or 'beam_source/beam_target' for remote-to-remote."
                .into(),
        );
    }
    match (&req.beam_source, &req.beam_target) {
        (Some(_), None) => Some("beam_source requires beam_target to be specified.".into()),
        (None, Some(_)) => Some("beam_target requires beam_source to be specified.".into()),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Upload,
    Download,
    RemoteToRemote,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
            Direction::RemoteToRemote => "remote_to_remote",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Direction::Upload => "Uploaded",
            Direction::Download => "Downloaded",
            Direction::RemoteToRemote => "Transferred",
        }
    }
}

/// Throttled progress notifications for one transfer.
struct Meter<'a> {
    ctx: &'a RunContext,
    total: Option<u64>,
    message: String,
    last: Option<Instant>,
}

impl<'a> Meter<'a> {
    fn new(ctx: &'a RunContext, message: String) -> Self {
        Meter {
            ctx,
            total: None,
            message,
            last: None,
        }
    }

    fn start(&mut self, total: Option<u64>) {
        self.total = total;
        self.last = Some(Instant::now());
        self.ctx.report(0, total, &self.message);
    }

    /// Reports progress now and then; false once the request is cancelled.
    fn tick(&mut self, done: u64) -> bool {
        if self.last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
            self.last = Some(Instant::now());
            self.report(done);
        }
        !self.ctx.cancel.is_cancelled()
    }

    fn report(&self, done: u64) {
        // A file that grew while it was copied must not report done > total.
        let total = self.total.map(|t| t.max(done));
        self.ctx.report(done, total, &self.message);
    }
}

/// Keeps a transfer failure's temporary file name for cleanup, and turns
/// it into what `with_session` expects.
fn op_error(e: TransferError, leftover: &mut Option<String>) -> OpError {
    if e.leftover.is_some() {
        *leftover = e.leftover;
    }
    OpError {
        error: e.error,
        retry_safe: e.retry_safe,
    }
}

impl Scout {
    /// Overall deadline of a transfer of `size` bytes: ten command
    /// timeouts (5 minutes by default) plus one second per MiB, so that
    /// no healthy transfer is cut off while a stuck one still ends.
    /// Each libssh2 call is bounded separately by the I/O timeout.
    fn transfer_deadline(&self, size: Option<u64>) -> Instant {
        let base = self.settings.command_timeout.saturating_mul(10);
        let per_size = Duration::from_secs(size.unwrap_or(0) / MIN_RATE);
        Instant::now() + base + per_size
    }

    /// Deadline for the checks before a transfer (stat source, target).
    fn setup_deadline(&self) -> Instant {
        Instant::now() + self.settings.command_timeout
    }

    /// `beam` with a `host:/path` target: upload when the local file
    /// exists, else download (the original's rule).
    pub(super) fn beam_local(
        &self,
        host: &str,
        path: &str,
        local: &str,
        ctx: &RunContext,
    ) -> ToolOutput {
        let local = local.trim();
        if local.is_empty() {
            return ToolOutput::error("beam: the local path is empty");
        }
        let local_path = Path::new(local);
        let result = match std::fs::metadata(local_path) {
            Ok(meta) => self.upload(host, path, local, &meta, ctx),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.download(host, path, local, ctx)
            }
            Err(e) => Err(format!("Cannot access local path {local}: {e}")),
        };
        result.unwrap_or_else(ToolOutput::error)
    }

    fn upload(
        &self,
        host: &str,
        path: &str,
        local: &str,
        meta: &std::fs::Metadata,
        ctx: &RunContext,
    ) -> OpResult<ToolOutput> {
        use std::os::unix::fs::PermissionsExt;
        if meta.is_dir() {
            return Err(format!(
                "Cannot beam a directory: {local} is a directory; beam transfers single files"
            ));
        }
        if !meta.is_file() {
            return Err(format!("Cannot beam {local}: not a regular file"));
        }
        let mut file = std::fs::File::open(local)
            .map_err(|e| format!("Cannot read local file {local}: {e}"))?;
        let mode = meta.permissions().mode();
        let size = meta.len();
        let destination = format!("{host}:{path}");
        let mut meter = Meter::new(ctx, format!("Uploading {local} → {destination}"));
        let mut leftover = None;
        let started = Instant::now();
        let result = self.with_session_for(host, Use::Bulk, |sess| {
            transfer::remote_destination(sess, path, self.setup_deadline())?;
            // A retry starts over from the first byte.
            file.rewind().map_err(|e| {
                OpError::from(SshError::new(
                    ErrorKind::Remote,
                    format!("Cannot read local file {local}: {e}"),
                ))
            })?;
            meter.start(Some(size));
            let deadline = self.transfer_deadline(Some(size));
            transfer::upload(sess, &mut file, local, mode, path, deadline, &mut |n| {
                meter.tick(n)
            })
            .map_err(|e| op_error(e, &mut leftover))
        });
        let done = self.settle(host, result, leftover)?;
        meter.report(done.bytes);
        Ok(report(
            Direction::Upload,
            local,
            &destination,
            &done,
            started.elapsed(),
        ))
    }

    fn download(
        &self,
        host: &str,
        path: &str,
        local: &str,
        ctx: &RunContext,
    ) -> OpResult<ToolOutput> {
        if local.ends_with('/') {
            // Path would drop the slash and write a file named like the
            // directory the caller meant.
            return Err(format!(
                "Local destination {local} names a directory; give the full path of the file to write"
            ));
        }
        let local_path = Path::new(local);
        transfer::local_destination(local_path)?;
        let source = format!("{host}:{path}");
        let mut meter = Meter::new(ctx, format!("Downloading {source} → {local}"));
        let started = Instant::now();
        let result = self.with_session_for(host, Use::Bulk, |sess| {
            let remote =
                transfer::remote_source(sess, path, self.setup_deadline()).map_err(|mut e| {
                    if e.message.starts_with("Source not found") {
                        // The rule that made this a download is not obvious.
                        e.message.push_str(&format!(
                            " (the local path {local} does not exist, so beam downloads)"
                        ));
                    }
                    OpError::from(e)
                })?;
            meter.start(remote.size);
            let deadline = self.transfer_deadline(remote.size);
            transfer::download(sess, path, remote, local_path, deadline, &mut |n| {
                meter.tick(n)
            })
            .map_err(|e| op_error(e, &mut None))
        });
        // A local temporary file is always removed on the spot.
        let done = self.settle(host, result, None)?;
        meter.report(done.bytes);
        Ok(report(
            Direction::Download,
            &source,
            local,
            &done,
            started.elapsed(),
        ))
    }

    /// `beam_source` + `beam_target`: streams a file from one host to
    /// another (or to another path on the same host) through this process.
    pub(super) fn beam_remote(&self, source: &str, target: &str, ctx: &RunContext) -> ToolOutput {
        self.beam_remote_inner(source, target, ctx)
            .unwrap_or_else(ToolOutput::error)
    }

    fn beam_remote_inner(
        &self,
        source: &str,
        target: &str,
        ctx: &RunContext,
    ) -> OpResult<ToolOutput> {
        let (src_host, src_path) = self.remote_end(source, "source", "beam_source")?;
        let (dst_host, dst_path) = self.remote_end(target, "target", "beam_target")?;
        let src_shown = format!("{src_host}:{src_path}");
        let dst_shown = format!("{dst_host}:{dst_path}");
        let mut meter = Meter::new(ctx, format!("Transferring {src_shown} → {dst_shown}"));
        let mut leftover = None;
        let started = Instant::now();
        let result = if src_host == dst_host {
            // One session serves both ends (two handles on its SFTP
            // channel): a second checkout of the same host would wait for
            // itself when SCOUT_MAX_CONNECTIONS_PER_HOST is 1.
            self.with_session_for(&src_host, Use::Bulk, |sess| {
                let remote = transfer::remote_source(sess, &src_path, self.setup_deadline())?;
                transfer::remote_destination(sess, &dst_path, self.setup_deadline())?;
                meter.start(remote.size);
                let deadline = self.transfer_deadline(remote.size);
                transfer::relay(
                    &mut Ends::Same(sess),
                    &src_path,
                    remote,
                    &dst_path,
                    deadline,
                    &mut |n| meter.tick(n),
                )
                .map_err(|e| op_error(e, &mut leftover))
            })
        } else {
            self.with_session_for(&src_host, Use::Bulk, |src| {
                let remote = transfer::remote_source(src, &src_path, self.setup_deadline())?;
                // The destination session is checked out while the source
                // one is held; the pool's checkout deadline bounds the wait.
                let inner = self.with_session_for(&dst_host, Use::Bulk, |dst| {
                    transfer::remote_destination(dst, &dst_path, self.setup_deadline())?;
                    meter.start(remote.size);
                    let deadline = self.transfer_deadline(remote.size);
                    let mut ends = Ends::Two {
                        source: &mut *src,
                        destination: dst,
                    };
                    match transfer::relay(
                        &mut ends,
                        &src_path,
                        remote,
                        &dst_path,
                        deadline,
                        &mut |n| meter.tick(n),
                    ) {
                        Ok(done) => Ok(Ok(done)),
                        // The destination session is fine: hand the
                        // failure to the outer call, which owns the source.
                        Err(e) if e.side == Side::Source => Ok(Err(op_error(e, &mut leftover))),
                        Err(e) => Err(op_error(e, &mut leftover)),
                    }
                });
                match inner {
                    Ok(outcome) => outcome,
                    // A destination failure says nothing about the source
                    // session: a kind that keeps it, and no retry.
                    Err(message) => Err(OpError {
                        error: SshError::new(ErrorKind::Remote, message),
                        retry_safe: false,
                    }),
                }
            })
        };
        let done = self.settle(&dst_host, result, leftover)?;
        meter.report(done.bytes);
        Ok(report(
            Direction::RemoteToRemote,
            &src_shown,
            &dst_shown,
            &done,
            started.elapsed(),
        ))
    }

    /// Parses one end of a remote-to-remote transfer and checks its host.
    fn remote_end(&self, raw: &str, which: &str, param: &str) -> OpResult<(String, String)> {
        match target::parse(raw).map_err(|e| format!("{param}: {e}"))? {
            Target::Hosts => Err(format!("{param} must be host:/path, not 'hosts'")),
            Target::Path { host, path } => {
                self.check_host(&host)
                    .map_err(|e| e.replacen("Unknown host", &format!("Unknown {which} host"), 1))?;
                Ok((host, path))
            }
        }
    }

    /// After a failed transfer whose temporary file could not be removed on
    /// its own (broken) session, removes it over a fresh one, so that a
    /// failure leaves nothing behind whenever the host can be reached.
    /// A quick check-out (one remove): the clean-up must not wait behind
    /// other transfers to the same host.
    fn settle(
        &self,
        host: &str,
        result: OpResult<Done>,
        leftover: Option<String>,
    ) -> OpResult<Done> {
        let message = match result {
            Ok(done) => return Ok(done),
            Err(message) => message,
        };
        let Some(tmp) = leftover else {
            return Err(message);
        };
        let deadline = self.setup_deadline();
        let removed = self.with_session(host, |sess| {
            transfer::remove(sess, &tmp, deadline).map_err(OpError::from)
        });
        match removed {
            Ok(()) => Err(message),
            Err(e) => {
                log::warn!("{host}:{tmp}: temporary file left behind: {e}");
                Err(format!(
                    "{message} (the temporary file {host}:{tmp} could not be removed)"
                ))
            }
        }
    }
}

/// `1.23 KB` below a MiB, then MB and GB, like the original's `N KB`.
fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1 << 20 {
        format!("{:.2} KB", b / 1024.0)
    } else if bytes < 1 << 30 {
        format!("{:.2} MB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GB", b / (1024.0 * 1024.0 * 1024.0))
    }
}

fn report(
    direction: Direction,
    source: &str,
    destination: &str,
    done: &Done,
    elapsed: Duration,
) -> ToolOutput {
    let text = format!(
        "✓ {} {source} → {destination}\n  Size: {} ({} bytes) in {:.2}s\n  SHA-256: {}",
        direction.verb(),
        human_size(done.bytes),
        done.bytes,
        elapsed.as_secs_f64(),
        done.sha256
    );
    let mut out = ToolOutput::ok(text);
    out.structured = Some(json!({
        "direction": direction.name(),
        "source": source,
        "destination": destination,
        "bytes": done.bytes,
        "duration_ms": elapsed.as_millis() as u64,
        "sha256": done.sha256,
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_original() {
        assert_eq!(human_size(12637), "12.34 KB");
        assert_eq!(human_size(0), "0.00 KB");
        assert_eq!(human_size(20 << 20), "20.00 MB");
        assert_eq!(human_size(3 << 30), "3.00 GB");
    }

    #[test]
    fn the_report_has_text_and_structure() {
        let done = Done {
            bytes: 12637,
            sha256: "ab".repeat(32),
        };
        let out = report(
            Direction::Upload,
            "/tmp/a.txt",
            "web1:/srv/a.txt",
            &done,
            Duration::from_millis(50),
        );
        assert_eq!(
            out.text,
            format!(
                "✓ Uploaded /tmp/a.txt → web1:/srv/a.txt\n  Size: 12.34 KB (12637 bytes) in 0.05s\n  SHA-256: {}",
                "ab".repeat(32)
            )
        );
        let s = out.structured.unwrap_or_default();
        assert_eq!(s["direction"], "upload");
        assert_eq!(s["bytes"], 12637);
        assert_eq!(s["duration_ms"], 50);
    }
}
