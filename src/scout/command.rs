//! Running `query` in the target directory through the remote shell.

use super::format;
use super::{OpError, OpResult, RunContext, Scout, ToolOutput};
use crate::pool::Use;
use crate::ssh::exec::{self, ExecControl, ExecOutcome};
use serde_json::json;
use std::time::Instant;

/// Longest command line accepted: far beyond any hand-written command,
/// well below what a remote shell or sshd would choke on.
const MAX_QUERY: usize = 128 * 1024;

impl Scout {
    /// Runs an already shell-safe `command` on `host` (no `cd`) under the
    /// command timeout and output cap: for resources and other callers
    /// that build their own command lines.
    pub fn run_remote(&self, host: &str, command: &str) -> OpResult<ExecOutcome> {
        self.run_remote_controlled(host, command, &ExecControl::default())
    }

    /// [`Scout::run_remote`] that can be cancelled and reports output as
    /// it comes. A command cut off by its timeout or a cancellation is
    /// terminated on the remote side, with its children.
    pub fn run_remote_controlled(
        &self,
        host: &str,
        command: &str,
        control: &ExecControl,
    ) -> OpResult<ExecOutcome> {
        let timeout = self.settings.command_timeout;
        let max_output = self.settings.max_output_size;
        let reporting = exec::with_pid_report(command);
        let outcome = self.with_session_for(host, Use::Bulk, |sess| {
            let deadline = Instant::now() + timeout;
            exec_on(sess, &reporting, max_output, deadline, control)
        })?;
        self.stop_if_cut_off(host, &outcome);
        Ok(outcome)
    }

    /// Terminates the remote process group of a command that was cut off
    /// by its timeout or a cancellation.
    pub(super) fn stop_if_cut_off(&self, host: &str, outcome: &ExecOutcome) {
        if !(outcome.timed_out || outcome.cancelled) {
            return;
        }
        match outcome.pgid {
            Some(pgid) => self.terminate(host, pgid),
            None => log::warn!("{host}: command cut off before it reported its process group"),
        }
    }

    /// Stops a remote process group: TERM, up to a second's grace, then
    /// KILL. Runs on a fresh pooled session, since the command's own is
    /// being discarded. Without this sshd would leave the command running
    /// after its channel closed. A quick check-out: the kill must not wait
    /// behind other commands to the same host.
    fn terminate(&self, host: &str, pgid: u32) {
        // `kill -SIG -PGID` without `--`: dash's kill builtin rejects `--`.
        let script = format!(
            "kill -TERM -{pgid} 2>/dev/null || exit 0; \
             for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 -{pgid} 2>/dev/null || exit 0; sleep 0.1; done; \
             kill -KILL -{pgid} 2>/dev/null; exit 0"
        );
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let result = self.with_session(host, |sess| {
            exec::run(sess, &script, 4096, deadline).map_err(OpError::from)
        });
        match result {
            Ok(_) => log::info!("{host}: terminated remote process group {pgid}"),
            Err(e) => log::warn!("{host}: could not terminate remote process group {pgid}: {e}"),
        }
    }

    pub(super) fn run_command(
        &self,
        host: &str,
        path: &str,
        query: &str,
        ctx: &RunContext,
    ) -> ToolOutput {
        if query.trim().is_empty() {
            return ToolOutput::error(format!("{host}:{path}: 'query' is empty"));
        }
        if query.len() > MAX_QUERY {
            return ToolOutput::error(format!(
                "{host}:{path}: 'query' is {} bytes long; the limit is {MAX_QUERY}",
                query.len()
            ));
        }
        if query.contains('\0') {
            return ToolOutput::error(format!("{host}:{path}: 'query' contains a NUL byte"));
        }
        let words = match &self.settings.command_allowlist {
            Some(allowed) => match super::restrict::restricted_command(query, allowed) {
                Ok(words) => words,
                Err(e) => return ToolOutput::error(format!("{host}:{path}: {e}")),
            },
            None => query.to_string(),
        };
        let command = format!("{} && {words}", cd_prefix(path));
        let progress = OutputProgress::new(ctx);
        let report = |bytes: u64, line: &str| progress.report(bytes, line);
        let control = ExecControl {
            cancel: ctx.cancel.clone(),
            on_output: ctx.progress.as_ref().map(|_| &report as &dyn Fn(u64, &str)),
        };
        match self.run_remote_controlled(host, &command, &control) {
            Ok(outcome) if outcome.cancelled => ToolOutput::error(format!("{host}: cancelled")),
            Ok(outcome) => self.command_output(host, path, query, outcome),
            Err(e) => ToolOutput::error(e),
        }
    }

    fn command_output(&self, host: &str, path: &str, query: &str, out: ExecOutcome) -> ToolOutput {
        let secs = self.settings.command_timeout.as_secs_f64();
        let duration_ms = out.duration.as_millis() as u64;
        let (stdout, stderr, truncated) =
            format::render_streams(out.stdout, out.stderr, self.settings.max_output_size);
        let note = out
            .timed_out
            .then(|| format!("[timed out after {secs}s on {host}: output so far is shown above]"));
        let text = format::command_text(
            &stdout,
            &stderr,
            out.exit_code,
            out.exit_signal.as_deref(),
            note,
        );
        ToolOutput {
            text: if out.timed_out {
                format!("Error: {text}")
            } else {
                text
            },
            is_error: out.timed_out,
            structured: Some(json!({
                "host": host,
                "path": path,
                "command": query,
                "stdout": stdout,
                "stderr": stderr,
                "exit_code": out.exit_code,
                "exit_signal": out.exit_signal,
                "timed_out": out.timed_out,
                "truncated": truncated,
                "duration_ms": duration_ms,
            })),
        }
    }
}

/// Runs a command built with [`exec::with_pid_report`] on `sess`, in the
/// shape `with_session` wants: only a command that never started may be
/// retried, and a session whose channel was abandoned is poisoned.
pub(super) fn exec_on(
    sess: &mut crate::ssh::SshSession,
    command: &str,
    max_output: usize,
    deadline: Instant,
    control: &ExecControl,
) -> Result<ExecOutcome, OpError> {
    let outcome =
        exec::run_controlled(sess, command, max_output, deadline, control).map_err(|f| {
            OpError {
                retry_safe: !f.may_have_run,
                error: f.error,
            }
        })?;
    if outcome.timed_out || outcome.cancelled {
        // Mid-stream: the session is in doubt and must not serve again.
        sess.poison();
    }
    Ok(outcome)
}

/// Progress of a running command: bytes of output so far, with the last
/// line as the message, about twice a second.
struct OutputProgress<'a> {
    ctx: &'a RunContext,
    last: parking_lot::Mutex<Option<Instant>>,
}

impl<'a> OutputProgress<'a> {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(500);

    fn new(ctx: &'a RunContext) -> Self {
        OutputProgress {
            ctx,
            last: parking_lot::Mutex::new(None),
        }
    }

    fn report(&self, bytes: u64, line: &str) {
        let mut last = self.last.lock();
        if last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        self.ctx.report(bytes, None, line);
    }
}

/// `cd` into the target directory. The path is quoted as data; a leading
/// `~` or `~user` is left outside the quotes so the remote shell expands
/// it, as a user typing the path would expect.
pub fn cd_prefix(path: &str) -> String {
    let (tilde, rest) = split_tilde(path);
    match (tilde, rest) {
        (Some(t), "") => format!("cd {t}"),
        (Some(t), rest) => format!("cd {t}/{}", shell_quote(rest)),
        (None, rest) => format!("cd -- {}", shell_quote(rest)),
    }
}

/// Splits `~`, `~/x`, `~user/x` into the tilde prefix and the rest.
fn split_tilde(path: &str) -> (Option<&str>, &str) {
    if !path.starts_with('~') {
        return (None, path);
    }
    let (prefix, rest) = match path.find('/') {
        Some(i) => (&path[..i], path[i + 1..].trim_start_matches('/')),
        None => (path, ""),
    };
    let user_ok = prefix[1..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if user_ok {
        (Some(prefix), rest)
    } else {
        (None, path)
    }
}

/// Single-quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_makes_paths_data() {
        assert_eq!(shell_quote("/var/log"), "'/var/log'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(touch X)"), "'$(touch X)'");
    }

    #[test]
    fn cd_keeps_tilde_for_the_remote_shell() {
        assert_eq!(cd_prefix("/srv/app"), "cd -- '/srv/app'");
        assert_eq!(cd_prefix("~"), "cd ~");
        assert_eq!(cd_prefix("~/code"), "cd ~/'code'");
        assert_eq!(cd_prefix("~deploy/app"), "cd ~deploy/'app'");
        assert_eq!(cd_prefix("~$(x)/app"), "cd -- '~$(x)/app'");
        assert_eq!(cd_prefix("-rf"), "cd -- '-rf'");
    }
}
