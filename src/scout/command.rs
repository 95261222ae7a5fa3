//! Running `query` in the target directory through the remote shell.

use super::format;
use super::{OpError, OpResult, Scout, ToolOutput};
use crate::ssh::exec::{self, ExecOutcome};
use serde_json::json;
use std::time::Instant;

impl Scout {
    /// Runs an already shell-safe `command` on `host` (no `cd`) under the
    /// command timeout and output cap: for resources and other callers
    /// that build their own command lines.
    pub fn run_remote(&self, host: &str, command: &str) -> OpResult<ExecOutcome> {
        let timeout = self.settings.command_timeout;
        let max_output = self.settings.max_output_size;
        self.with_session(host, |sess| {
            let deadline = Instant::now() + timeout;
            let outcome = exec::run(sess, command, max_output, deadline).map_err(|e| OpError {
                retry_safe: e.kind == crate::ssh::ErrorKind::Channel
                    || e.kind == crate::ssh::ErrorKind::Disconnected,
                error: e,
            })?;
            if outcome.timed_out {
                sess.poison();
            }
            Ok(outcome)
        })
    }

    pub(super) fn run_command(&self, host: &str, path: &str, query: &str) -> ToolOutput {
        if query.trim().is_empty() {
            return ToolOutput::error(format!("{host}:{path}: 'query' is empty"));
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
        let result = self.run_remote(host, &command);
        match result {
            Ok(outcome) => self.command_output(host, path, query, outcome),
            Err(e) => ToolOutput::error(e),
        }
    }

    fn command_output(&self, host: &str, path: &str, query: &str, out: ExecOutcome) -> ToolOutput {
        let secs = self.settings.command_timeout.as_secs_f64();
        let duration_ms = out.duration.as_millis() as u64;
        let (stdout, stderr, truncated) =
            format::render_streams(out.stdout, out.stderr, self.settings.max_output_size);
        let mut parts = Vec::new();
        if !stdout.is_empty() {
            parts.push(trim_newline(&stdout).to_string());
        }
        if !stderr.is_empty() {
            parts.push(format!("[stderr]\n{}", trim_newline(&stderr)));
        }
        match (&out.exit_code, &out.exit_signal) {
            (Some(code), _) if *code != 0 => parts.push(format!("[exit code: {code}]")),
            (_, Some(sig)) => parts.push(format!("[killed by signal: {sig}]")),
            _ => {}
        }
        if out.timed_out {
            parts.push(format!(
                "[timed out after {secs}s on {host}: output so far is shown above]"
            ));
        }
        let text = if parts.is_empty() {
            "(no output)".to_string()
        } else {
            parts.join("\n")
        };
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

/// Parts are joined with newlines; one trailing newline per part would
/// double them.
fn trim_newline(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
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
