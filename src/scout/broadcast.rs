//! Broadcast: one read or one command on many targets at once.
//!
//! Targets run in parallel on the scout's dedicated, bounded rayon pool
//! (SCOUT_BROADCAST_WIDTH), each under its own connect and command
//! deadlines, so a dead host costs only its own timeout.

use super::read::PathContent;
use super::target::{self, Target};
use super::{format, RunContext, Scout, ToolOutput};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::time::Instant;

/// More targets than this in one call is almost certainly a mistake.
const MAX_TARGETS: usize = 1000;

/// What one target produced.
struct Outcome {
    host: String,
    path: String,
    success: bool,
    /// The text shown under the target's header.
    text: String,
    detail: Value,
}

impl Scout {
    pub(super) fn broadcast(
        &self,
        targets: &[String],
        query: Option<&str>,
        ctx: &RunContext,
    ) -> ToolOutput {
        if targets.is_empty() {
            return ToolOutput::error("'targets' is empty: give at least one 'host:/path'");
        }
        if targets.len() > MAX_TARGETS {
            return ToolOutput::error(format!(
                "{} targets in one broadcast; at most {MAX_TARGETS} are allowed",
                targets.len()
            ));
        }
        let parsed = match parse_all(targets) {
            Ok(p) => p,
            Err(e) => return ToolOutput::error(e),
        };
        // Each target's share of the output limit, so every host shows up.
        let share = (self.settings.max_output_size / parsed.len()).max(2048);
        let outcomes: Vec<Outcome> = self.fanout.install(|| {
            parsed
                .par_iter()
                .map(|(host, path)| self.one_target(host, path, query, share, ctx))
                .collect()
        });
        render(&outcomes)
    }

    fn one_target(
        &self,
        host: &str,
        path: &str,
        query: Option<&str>,
        share: usize,
        ctx: &RunContext,
    ) -> Outcome {
        let started = Instant::now();
        let mut outcome = match (self.check_host(host), query) {
            (Err(e), _) => failed(host, path, e),
            (Ok(()), Some(q)) => self.command_target(host, path, q, ctx),
            (Ok(()), None) => match self.read_path_text(host, path) {
                Ok(PathContent::File(t) | PathContent::Directory(t)) => Outcome {
                    host: host.into(),
                    path: path.into(),
                    success: true,
                    detail: json!({"output": t}),
                    text: t,
                },
                Err(e) => failed(host, path, e),
            },
        };
        outcome.text = format::cap_text(outcome.text, share);
        outcome.detail["duration_ms"] = json!(started.elapsed().as_millis() as u64);
        outcome
    }

    fn command_target(&self, host: &str, path: &str, query: &str, ctx: &RunContext) -> Outcome {
        // Per-host progress would interleave meaninglessly: cancel only.
        let quiet = RunContext {
            progress: None,
            cancel: ctx.cancel.clone(),
        };
        let output = self.run_command(host, path, query, &quiet);
        let detail = output.structured.clone().unwrap_or_else(|| json!({}));
        let exit_ok = detail["exit_code"] == json!(0);
        let success = !output.is_error && exit_ok;
        let mut detail = detail;
        if output.structured.is_none() {
            detail["error"] = json!(output.text.trim_start_matches("Error: "));
        }
        Outcome {
            host: host.into(),
            path: path.into(),
            success,
            text: output.text,
            detail,
        }
    }
}

fn parse_all(targets: &[String]) -> Result<Vec<(String, String)>, String> {
    targets
        .iter()
        .map(|t| match target::parse(t) {
            Ok(Target::Path { host, path }) => Ok((host, path)),
            Ok(Target::Hosts) => Err("broadcast targets must be 'host:/path', not 'hosts'".into()),
            Err(e) => Err(format!(
                "Error parsing target '{}': {}",
                target::shorten(t),
                e.0
            )),
        })
        .collect()
}

fn failed(host: &str, path: &str, error: String) -> Outcome {
    Outcome {
        host: host.into(),
        path: path.into(),
        success: false,
        text: format!("Error: {error}"),
        detail: json!({"error": error}),
    }
}

/// The original's layout: a `═══ host:path` header per target, its
/// output, and a `─── k/n hosts succeeded ───` footer.
fn render(outcomes: &[Outcome]) -> ToolOutput {
    let mut lines = Vec::new();
    for o in outcomes {
        let mut header = format!("═══ {}:{} ", o.host, o.path);
        let width = header.chars().count();
        if o.success {
            header.push_str(&"═".repeat(60usize.saturating_sub(width).max(3)));
        } else {
            header.push_str("[FAILED] ");
            header.push_str(&"═".repeat(51usize.saturating_sub(width).max(3)));
        }
        lines.push(header);
        lines.push(o.text.clone());
        lines.push(String::new());
    }
    let ok = outcomes.iter().filter(|o| o.success).count();
    lines.push(format!("─── {ok}/{} hosts succeeded ───", outcomes.len()));
    let results: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            let mut entry = o.detail.clone();
            entry["target"] = json!(format!("{}:{}", o.host, o.path));
            entry["host"] = json!(o.host);
            entry["path"] = json!(o.path);
            entry["success"] = json!(o.success);
            entry
        })
        .collect();
    ToolOutput {
        text: lines.join("\n"),
        // The call worked even if some hosts failed; only all failing is
        // an error of the call.
        is_error: ok == 0,
        structured: Some(json!({
            "succeeded": ok,
            "total": outcomes.len(),
            "results": results,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(host: &str, success: bool, text: &str) -> Outcome {
        Outcome {
            host: host.into(),
            path: "/etc/hostname".into(),
            success,
            text: text.into(),
            detail: json!({}),
        }
    }

    #[test]
    fn renders_headers_bodies_and_the_footer() {
        let out = render(&[
            outcome("web1", true, "one"),
            outcome("web2", false, "Error: down"),
        ]);
        let lines: Vec<&str> = out.text.lines().collect();
        assert!(
            lines[0].starts_with("═══ web1:/etc/hostname ═"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], "one");
        assert!(
            lines[3].starts_with("═══ web2:/etc/hostname [FAILED] ═"),
            "{}",
            lines[3]
        );
        assert_eq!(lines[4], "Error: down");
        assert_eq!(*lines.last().unwrap(), "─── 1/2 hosts succeeded ───");
        assert!(!out.is_error);
        let s = out.structured.unwrap();
        assert_eq!(s["results"][1]["success"], json!(false));
        assert_eq!(s["succeeded"], json!(1));
    }

    #[test]
    fn a_bad_target_fails_the_whole_call_before_anything_runs() {
        let err = parse_all(&["web1:/a".into(), "nocolon".into()]).unwrap_err();
        assert!(err.contains("Error parsing target 'nocolon'"), "{err}");
        assert!(parse_all(&["hosts".into()]).is_err());
    }
}
