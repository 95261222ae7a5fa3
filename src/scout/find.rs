//! `find`: file names matching a glob under the target.
//!
//! This runs the remote `find` rather than walking over SFTP. Measured on
//! loopback with ~2,100 files in 212 directories, 5 levels deep (median of
//! 9 warm runs, release build): a search that must cover the whole tree
//! took ~83–103 ms as an SFTP walk (opendir + readdir + close per
//! directory, each a round trip, none pipelined by libssh2) and ~5–6 ms as
//! one remote `find`; the gap grows with latency. Every argument is
//! shell-quoted, so the path and the pattern stay data.

use super::command::exec_on;
use super::command::shell_quote;
use super::walk;
use super::{Scout, ToolOutput};
use crate::ssh::exec::{self, ExecOutcome};
use std::time::Instant;

impl Scout {
    pub(super) fn find(&self, host: &str, path: &str, pattern: &str, depth: u32) -> ToolOutput {
        if let Err(e) = check_pattern(pattern) {
            return ToolOutput::error(format!("{host}:{path}: {e}"));
        }
        let timeout = self.settings.command_timeout;
        let max_output = self.settings.max_output_size;
        let root = find_root(path);
        let limit = self.settings.max_find_results;
        let result = self.with_session(host, |sess| {
            let deadline = Instant::now() + timeout;
            // Stat first over SFTP (~0.1 ms): a missing path becomes
            // "Path not found: host:path" without parsing find's
            // localised stderr, and a file target is told from a directory.
            let stat = walk::stat_root(sess, host, path, deadline)?;
            let command = find_command(&root, stat.is_dir(), pattern, depth, limit);
            let command = exec::with_pid_report(&command);
            let control = exec::ExecControl::default();
            exec_on(sess, &command, max_output, deadline, &control)
        });
        match result {
            Ok(outcome) => {
                self.stop_if_cut_off(host, &outcome);
                let found = parse(outcome, &root, path, limit);
                let secs = timeout.as_secs();
                ToolOutput::ok(render(path, pattern, found, secs))
            }
            Err(e) => ToolOutput::error(e),
        }
    }
}

/// Refuses patterns that cannot mean what the user wants. `*`, `?`,
/// `[...]` classes and `\` escapes are all find's own `-name` glob
/// (fnmatch), so they behave exactly as in `find -name`.
fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("'find' pattern is empty".to_string());
    }
    if pattern.contains('\0') {
        return Err("'find' pattern contains a NUL byte".to_string());
    }
    if pattern.contains('/') {
        // find -name never matches a '/', it would silently find nothing.
        return Err(format!(
            "'find' matches file names, not paths; '{pattern}' contains '/'"
        ));
    }
    Ok(())
}

/// The start point as find gets it. `~` and `~/x` become paths relative
/// to the login directory, where the command starts (the same rule the
/// SFTP stat uses). A relative path gets `./` in front: find takes an
/// argument starting with `-`, `!` or `(` as an expression, and GNU find
/// does not accept `--` before its start points.
fn find_root(path: &str) -> String {
    let p = walk::sftp_path(path);
    if p.starts_with('/') || p == "." {
        p
    } else {
        format!("./{p}")
    }
}

/// `find -H ROOT [-mindepth 1] -maxdepth D -name PATTERN`, NUL-separated
/// and turned into lines by `tr` (a newline inside a name becomes `?`,
/// so it cannot forge a result), cut after one more result than is
/// shown: `head` exiting stops find early on a huge tree.
fn find_command(root: &str, is_dir: bool, pattern: &str, depth: u32, limit: usize) -> String {
    // -H follows the start point when it is a symlink (as the stat did),
    // never the links below it, so a link loop is not walked.
    // -mindepth 1: entries *under* a directory, not the directory itself;
    // a file target is checked itself, as `find FILE -name P` does.
    let mindepth = if is_dir { " -mindepth 1" } else { "" };
    format!(
        "find -H {}{mindepth} -maxdepth {depth} -name {} -print0 | tr '\\n\\0' '?\\n' | head -n {}",
        shell_quote(root),
        shell_quote(pattern),
        limit + 1
    )
}

/// What one find run produced, paths as the user wrote the target.
#[derive(Debug, Default, PartialEq)]
struct Found {
    paths: Vec<String>,
    /// More than `limit` matches (or output cut).
    cut: bool,
    limit: usize,
    timed_out: bool,
    /// Lines find wrote to stderr (unreadable directories, ...).
    problems: Vec<String>,
}

fn parse(outcome: ExecOutcome, root: &str, display: &str, limit: usize) -> Found {
    let (head, tail, dropped) = outcome.stdout.into_parts();
    let mut bytes = head;
    if dropped == 0 {
        bytes.extend_from_slice(&tail);
    } else if let Some(end) = bytes.iter().rposition(|&b| b == b'\n') {
        // Only whole lines of the head; the middle is gone.
        bytes.truncate(end + 1);
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut paths: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| map_back(l, root, display))
        .collect();
    let cut = dropped > 0 || paths.len() > limit;
    paths.truncate(limit);
    paths.sort();
    let (eh, et, _) = outcome.stderr.into_parts();
    let mut err = eh;
    err.extend_from_slice(&et);
    let problems = String::from_utf8_lossy(&err)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    Found {
        paths,
        cut,
        limit,
        timed_out: outcome.timed_out,
        problems,
    }
}

/// `./code/a.log` (find's view of `~/code`) back to `~/code/a.log`.
fn map_back(line: &str, root: &str, display: &str) -> String {
    match line.strip_prefix(root) {
        Some(rest) if display.ends_with('/') => {
            format!("{display}{}", rest.trim_start_matches('/'))
        }
        Some(rest) => format!("{display}{rest}"),
        None => line.to_string(),
    }
}

/// Sorted matches, one per line, with notes on anything left out.
fn render(path: &str, pattern: &str, found: Found, timeout_secs: u64) -> String {
    let mut out = if found.paths.is_empty() {
        format!("No files matching '{pattern}' found in {path}")
    } else {
        let lines: Vec<_> = found.paths.iter().map(|p| walk::printable(p)).collect();
        lines.join("\n")
    };
    if found.cut {
        out.push_str(&format!(
            "\n[results cut at {} matches: narrow the pattern, the depth or the path]",
            found.limit
        ));
    }
    if found.timed_out {
        out.push_str(&format!(
            "\n[search stopped at the {timeout_secs}s time limit: matches further down may be missing]"
        ));
    }
    if let Some(first) = found.problems.first() {
        let n = found.problems.len();
        out.push_str(&format!(
            "\n[find reported {n} problem{}, e.g. {}]",
            if n == 1 { "" } else { "s" },
            walk::printable(first)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_that_cannot_match_are_refused() {
        assert!(check_pattern("*.log").is_ok());
        assert!(check_pattern("app-[0-9].log").is_ok());
        assert!(check_pattern("$(touch X)*").is_ok());
        assert!(check_pattern("").is_err());
        assert!(check_pattern("a\0b").is_err());
        assert!(check_pattern("logs/*.log")
            .unwrap_err()
            .contains("names, not paths"));
    }

    #[test]
    fn roots_cannot_be_read_as_expressions() {
        assert_eq!(find_root("/var/log"), "/var/log");
        assert_eq!(find_root("~"), ".");
        assert_eq!(find_root("~/code"), "./code");
        assert_eq!(find_root("-delete"), "./-delete");
        assert_eq!(find_root("!"), "./!");
    }

    #[test]
    fn every_argument_is_quoted() {
        assert_eq!(
            find_command("/srv/it's", true, "$(touch X)*", 3, 100),
            "find -H '/srv/it'\\''s' -mindepth 1 -maxdepth 3 -name '$(touch X)*' -print0 \
             | tr '\\n\\0' '?\\n' | head -n 101"
        );
        assert!(!find_command("/f.log", false, "*.log", 5, 100).contains("-mindepth"));
    }

    #[test]
    fn paths_come_back_as_the_user_wrote_them() {
        assert_eq!(map_back("./code/a.log", "./code", "~/code"), "~/code/a.log");
        assert_eq!(map_back("./a.log", ".", "~"), "~/a.log");
        assert_eq!(map_back("./a.log", ".", "~/"), "~/a.log");
        assert_eq!(map_back("/x/a.log", "/x/", "/x/"), "/x/a.log");
        assert_eq!(map_back("/x/a", "/x", "/x"), "/x/a");
    }

    #[test]
    fn rendering_notes_what_was_left_out() {
        let none = Found::default();
        assert_eq!(
            render("/srv", "*.log", none, 30),
            "No files matching '*.log' found in /srv"
        );
        let found = Found {
            paths: vec!["/srv/a.log".into(), "/srv/b\n.log".into()],
            cut: true,
            limit: 100,
            timed_out: true,
            problems: vec!["find: '/srv/x': Permission denied".into()],
        };
        let text = render("/srv", "*.log", found, 30);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "/srv/a.log");
        assert_eq!(lines[1], "/srv/b?.log");
        assert!(lines[2].starts_with("[results cut at 100 matches"));
        assert!(lines[3].contains("30s time limit"));
        assert_eq!(
            lines[4],
            "[find reported 1 problem, e.g. find: '/srv/x': Permission denied]"
        );
    }
}
