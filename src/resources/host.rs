//! `{host}://...` resources: the host alias as the URI scheme.
//!
//! Grammar of what follows `{host}://` (the Python original's views):
//!
//! | rest | view |
//! |---|---|
//! | empty, `/...` or `~...` | a path: `web1://` is `/`, `web1:///etc` is `/etc` |
//! | `docker` | `docker ps -a` |
//! | `docker/{container}/logs` | `docker logs --tail 100 --timestamps` |
//! | `compose` | `docker compose ls -a` (or `docker-compose ls -a`) |
//! | `compose/{project}` | `docker compose -p {project} ps -a` |
//! | `compose/{project}/logs` | `docker compose -p {project} logs --tail 100` |
//! | `zfs` | `zpool list` and `zpool status -x` |
//! | `zfs/snapshots` | `zfs list -t snapshot` |
//! | `zfs/{pool}` | `zpool status {pool}` |
//! | `zfs/{pool}/datasets` | `zfs list -r {pool}` |
//! | `syslog` | `journalctl -n 100`, else `tail -n 100 /var/log/syslog` |
//! | anything else | a path relative to `/`: `web1://var/log` is `/var/log` |
//!
//! Decisions:
//! * Three slashes always mean a path, so `web1:///docker` reads the
//!   directory `/docker` whatever the view keywords are.
//! * A rest whose first segment is a view keyword but which has no view's
//!   shape (`web1://docker/x`) is an error naming the shapes, not a path:
//!   a typo in a view should not silently become a file read, and it keeps
//!   `docker/../x/logs` from ever being anything but an error.
//! * `zfs/snapshots` is the snapshot view, so a pool named `snapshots` is
//!   reachable only through the tool.
//! * Names (container, project, pool) are percent-decoded per segment,
//!   validated against a strict character set, and shell-quoted as well.

use super::{absolute_path, percent_decode, read_path, ResourceError};
use crate::scout::command::shell_quote;
use crate::scout::format::{command_text, render_streams};
use crate::scout::target::shorten;
use crate::scout::Scout;
use crate::ssh::exec::ExecOutcome;
use std::sync::atomic::{AtomicU64, Ordering};

/// What `hosts://list` shows for each host, after `{host}://`.
pub(super) const VIEW_URIS: &[&str] = &["", "docker", "compose", "zfs", "zfs/snapshots", "syslog"];

/// Longest container, project or pool name we pass on.
const MAX_NAME: usize = 128;

/// The first path segments that select a view instead of a path.
const KEYWORDS: &[&str] = &["docker", "compose", "zfs", "syslog"];

#[derive(Debug, PartialEq, Eq)]
enum View {
    Path(String),
    Docker,
    DockerLogs(String),
    Compose,
    ComposeProject(String),
    ComposeLogs(String),
    Zfs,
    ZfsPool(String),
    ZfsDatasets(String),
    ZfsSnapshots,
    Syslog,
}

/// Reads `{host}://{rest}`. `uri` contains `://`.
pub(super) fn read(scout: &Scout, uri: &str) -> Result<String, ResourceError> {
    let (scheme, rest) = uri.split_once("://").unwrap_or((uri, ""));
    if scheme.is_empty() {
        return Err(ResourceError::NotFound(format!(
            "Invalid resource URI '{}': the host (the scheme before '://') is empty",
            shorten(uri)
        )));
    }
    let host = resolve_host(scout, scheme)?;
    match parse_view(&host, rest).map_err(ResourceError::NotFound)? {
        View::Path(path) => read_path(scout, &host, &path),
        view => run_view(scout, &host, &view),
    }
}

/// The configured alias the scheme names. URI schemes are case-insensitive
/// (RFC 3986 §3.1) and some clients lowercase them, so a unique
/// case-insensitive match is accepted when the exact alias is unknown.
fn resolve_host(scout: &Scout, scheme: &str) -> Result<String, ResourceError> {
    let exact = scout.check_host(scheme);
    if exact.is_ok() {
        return Ok(scheme.to_string());
    }
    let folded: Vec<String> = scout
        .inventory
        .names()
        .into_iter()
        .filter(|n| n.eq_ignore_ascii_case(scheme))
        .collect();
    match folded.as_slice() {
        [only] => Ok(only.clone()),
        _ => Err(ResourceError::NotFound(exact.err().unwrap_or_default())),
    }
}

/// [`super::parse_uri`] for `{host}://{rest}`: the view and, for a command view, its script.
pub(super) fn parse_uri(host: &str, rest: &str) -> Result<String, String> {
    let view = parse_view(host, rest)?;
    let plan = plan(host, &view);
    Ok(format!("{view:?} {}", plan.script))
}

/// Whether `{host}://{rest}` names a command view rather than a path.
pub(super) fn is_view(host: &str, rest: &str) -> bool {
    matches!(parse_view(host, rest), Ok(view) if !matches!(view, View::Path(_)))
}

/// Maps what follows `{host}://` to a view; errors are user-facing texts.
fn parse_view(host: &str, rest: &str) -> Result<View, String> {
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with('~') {
        return Ok(View::Path(absolute_path(&percent_decode(rest)?)));
    }
    // One trailing slash is tolerated on views (`web1://docker/`).
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    let keyword = trimmed.split('/').next().unwrap_or_default();
    if !KEYWORDS.contains(&keyword) {
        return Ok(View::Path(absolute_path(&percent_decode(rest)?)));
    }
    // Decode per segment, after splitting, so an escaped '/' inside a name
    // stays inside that name (and is then rejected by validation).
    let segments = trimmed
        .split('/')
        .map(percent_decode)
        .collect::<Result<Vec<_>, _>>()?;
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let view = match s.as_slice() {
        ["docker"] => View::Docker,
        ["docker", c, "logs"] => View::DockerLogs(valid_name(host, NameKind::Container, c)?),
        ["compose"] => View::Compose,
        ["compose", p] => View::ComposeProject(valid_name(host, NameKind::Project, p)?),
        ["compose", p, "logs"] => View::ComposeLogs(valid_name(host, NameKind::Project, p)?),
        ["zfs"] => View::Zfs,
        ["zfs", "snapshots"] => View::ZfsSnapshots,
        ["zfs", p] => View::ZfsPool(valid_name(host, NameKind::Pool, p)?),
        ["zfs", p, "datasets"] => View::ZfsDatasets(valid_name(host, NameKind::Pool, p)?),
        ["syslog"] => View::Syslog,
        _ => return Err(malformed_view(host, keyword, rest)),
    };
    Ok(view)
}

/// Names the shapes a keyword allows, and how to reach a path instead.
fn malformed_view(host: &str, keyword: &str, rest: &str) -> String {
    let shapes: &[&str] = match keyword {
        "docker" => &["docker", "docker/{container}/logs"],
        "compose" => &["compose", "compose/{project}", "compose/{project}/logs"],
        "zfs" => &["zfs", "zfs/{pool}", "zfs/{pool}/datasets", "zfs/snapshots"],
        _ => &["syslog"],
    };
    let expected = shapes
        .iter()
        .map(|s| format!("{host}://{s}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Escaped so control characters cannot garble the message.
    let shown = shorten(
        &rest
            .chars()
            .flat_map(char::escape_debug)
            .collect::<String>(),
    );
    format!(
        "Unknown {keyword} view '{host}://{shown}': expected {expected}. \
         For the path /{shown} use {host}:///{shown}"
    )
}

#[derive(Debug, Clone, Copy)]
enum NameKind {
    Container,
    Project,
    Pool,
}

impl NameKind {
    fn word(self) -> &'static str {
        match self {
            NameKind::Container => "container",
            NameKind::Project => "project",
            NameKind::Pool => "pool",
        }
    }

    /// Docker allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*` for container names and
    /// Compose a subset for projects; zpool names start with a letter and
    /// may hold ':' too (we leave out the spaces zpool also allows).
    fn allows(self, first: bool, c: char) -> bool {
        match (self, first) {
            (NameKind::Pool, true) => c.is_ascii_alphabetic(),
            (NameKind::Pool, false) => {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
            }
            (_, true) => c.is_ascii_alphanumeric(),
            (_, false) => c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
        }
    }

    fn rule(self) -> &'static str {
        match self {
            NameKind::Pool => "a pool name starts with a letter and holds only letters, digits, '_', '.', ':' and '-'",
            _ => "a name starts with a letter or digit and holds only letters, digits, '_', '.' and '-'",
        }
    }

    /// Where the valid names of this kind are listed.
    fn listing(self) -> &'static str {
        match self {
            NameKind::Container => "docker",
            NameKind::Project => "compose",
            NameKind::Pool => "zfs",
        }
    }
}

/// Checks a name before it goes anywhere near a shell (it is quoted too;
/// this is the first of two locks, and gives a clear message).
fn valid_name(host: &str, kind: NameKind, value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.chars().count() <= MAX_NAME
        && value
            .chars()
            .enumerate()
            .all(|(i, c)| kind.allows(i == 0, c));
    if ok {
        return Ok(value.to_string());
    }
    // Escaped so control characters cannot garble the message.
    let shown: String = value.chars().flat_map(char::escape_debug).collect();
    Err(format!(
        "Invalid {} name '{}': {} (at most {MAX_NAME} characters); host '{host}', see {host}://{}",
        kind.word(),
        shorten(&shown),
        kind.rule(),
        kind.listing()
    ))
}

/// One remote command for a view, and what to say when its tool is absent.
struct Plan {
    /// POSIX sh script; `MARKER` stands for the absent-tool marker.
    script: String,
    unavailable: String,
}

const MARKER: &str = "@MARKER@";

/// The script and absent-tool text of a (non-path) view. Tool presence is
/// checked with `command -v` in the same command, saving a round trip.
fn plan(host: &str, view: &View) -> Plan {
    let need =
        |bin: &str| format!("command -v {bin} >/dev/null 2>&1 || {{ echo {MARKER}; exit 0; }}; ");
    let docker = format!(
        "Docker is not available on host '{host}' (no docker command in the remote user's PATH)"
    );
    let compose = format!(
        "Docker Compose is not available on host '{host}' (neither 'docker compose' nor 'docker-compose' works)"
    );
    let zfs = |bin: &str| {
        format!(
            "ZFS is not available on host '{host}' (no {bin} command in the remote user's PATH)"
        )
    };
    // `docker compose` is a plugin: the docker binary may exist without it.
    let detect_compose = format!(
        "if docker compose version >/dev/null 2>&1; then dc='docker compose'; \
         elif command -v docker-compose >/dev/null 2>&1; then dc=docker-compose; \
         else echo {MARKER}; exit 0; fi; "
    );
    let (script, unavailable) = match view {
        View::Docker => (
            format!(
                "{}docker ps -a --format {}",
                need("docker"),
                shell_quote("table {{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Ports}}")
            ),
            docker,
        ),
        // Merged: a container's stderr is part of its log, not a failure,
        // and one stream keeps the lines in order.
        View::DockerLogs(c) => (
            format!(
                "{}docker logs --tail 100 --timestamps {} 2>&1",
                need("docker"),
                shell_quote(c)
            ),
            docker,
        ),
        View::Compose => (format!("{detect_compose}$dc ls -a"), compose),
        View::ComposeProject(p) => (
            format!("{detect_compose}$dc -p {} ps -a", shell_quote(p)),
            compose,
        ),
        View::ComposeLogs(p) => (
            format!(
                "{detect_compose}$dc -p {} logs --tail 100 --no-color 2>&1",
                shell_quote(p)
            ),
            compose,
        ),
        View::Zfs => (
            format!("{}zpool list; echo; zpool status -x", need("zpool")),
            zfs("zpool"),
        ),
        View::ZfsPool(p) => (
            format!("{}zpool status {}", need("zpool"), shell_quote(p)),
            zfs("zpool"),
        ),
        View::ZfsDatasets(p) => (
            format!("{}zfs list -r {}", need("zfs"), shell_quote(p)),
            zfs("zfs"),
        ),
        View::ZfsSnapshots => (
            format!(
                "{}zfs list -t snapshot -o name,used,refer,creation -s creation",
                need("zfs")
            ),
            zfs("zfs"),
        ),
        // journalctl can exist and show nothing (no journal in a container,
        // no permission), so an empty answer falls through to the file.
        View::Syslog => (
            format!(
                "j=$(journalctl -n 100 --no-pager -q 2>/dev/null); \
                 if [ -n \"$j\" ]; then printf '%s\\n' \"$j\"; \
                 elif [ -r /var/log/syslog ]; then tail -n 100 /var/log/syslog; \
                 else echo {MARKER}; fi"
            ),
            "System logs are not available on this host (no journalctl, no /var/log/syslog)"
                .to_string(),
        ),
        View::Path(_) => (String::new(), String::new()),
    };
    Plan {
        script,
        unavailable,
    }
}

/// A marker no tool output will contain by chance: container logs are
/// arbitrary text, so a fixed word could be forged or collide.
fn fresh_marker() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "scout-mcp-unavailable-{nanos:x}-{:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The whole remote command line. The script runs under `sh -c` so its
/// syntax does not depend on the user's login shell; sbin directories are
/// appended because zpool and zfs live there and are missing from many
/// non-root PATHs.
fn command_line(script: &str, marker: &str) -> String {
    let script = format!(
        "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"; {}",
        script.replace(MARKER, &shell_quote(marker))
    );
    format!("sh -c {}", shell_quote(&script))
}

fn run_view(scout: &Scout, host: &str, view: &View) -> Result<String, ResourceError> {
    let plan = plan(host, view);
    let marker = fresh_marker();
    let outcome = scout
        .run_remote(host, &command_line(&plan.script, &marker))
        .map_err(ResourceError::Failed)?;
    let secs = scout.settings.command_timeout.as_secs_f64();
    Ok(render(
        outcome,
        &marker,
        &plan.unavailable,
        scout.settings.max_output_size,
        secs,
    ))
}

/// Like the tool's command output: stdout, `[stderr]`, `[exit code: N]`,
/// and a note when the command was cut off. A failing command is still
/// text (its message is what the reader needs), not a protocol error.
fn render(
    out: ExecOutcome,
    marker: &str,
    unavailable: &str,
    budget: usize,
    timeout_secs: f64,
) -> String {
    let (stdout, stderr, _cut) = render_streams(out.stdout, out.stderr, budget);
    if stdout.lines().any(|l| l.trim_end() == marker) {
        return unavailable.to_string();
    }
    let note = out
        .timed_out
        .then(|| format!("[timed out after {timeout_secs}s: output so far is shown above]"));
    command_text(
        &stdout,
        &stderr,
        out.exit_code,
        out.exit_signal.as_deref(),
        note,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::exec::Capture;
    use std::time::Duration;

    fn view(rest: &str) -> Result<View, String> {
        parse_view("web1", rest)
    }

    #[test]
    fn paths_with_two_or_three_slashes_are_the_same_absolute_path() {
        for rest in ["/var/log/syslog", "var/log/syslog"] {
            assert_eq!(view(rest), Ok(View::Path("/var/log/syslog".into())));
        }
        assert_eq!(view(""), Ok(View::Path("/".into())));
        assert_eq!(view("/"), Ok(View::Path("/".into())));
        assert_eq!(view("~/app"), Ok(View::Path("~/app".into())));
        assert_eq!(view("my%20dir/x"), Ok(View::Path("/my dir/x".into())));
        assert_eq!(view("bogus-view"), Ok(View::Path("/bogus-view".into())));
        assert_eq!(
            view("dockerfiles/x"),
            Ok(View::Path("/dockerfiles/x".into()))
        );
        // Three slashes escape the keywords.
        assert_eq!(view("/docker"), Ok(View::Path("/docker".into())));
        assert_eq!(
            view("/zfs/snapshots"),
            Ok(View::Path("/zfs/snapshots".into()))
        );
        assert!(view("bad%zz").is_err());
    }

    #[test]
    fn views_are_recognised() {
        assert_eq!(view("docker"), Ok(View::Docker));
        assert_eq!(view("docker/"), Ok(View::Docker));
        assert_eq!(
            view("docker/web-1/logs"),
            Ok(View::DockerLogs("web-1".into()))
        );
        assert_eq!(view("compose"), Ok(View::Compose));
        assert_eq!(view("compose/app"), Ok(View::ComposeProject("app".into())));
        assert_eq!(
            view("compose/app/logs"),
            Ok(View::ComposeLogs("app".into()))
        );
        assert_eq!(view("zfs"), Ok(View::Zfs));
        assert_eq!(view("zfs/snapshots"), Ok(View::ZfsSnapshots));
        assert_eq!(view("zfs/tank"), Ok(View::ZfsPool("tank".into())));
        assert_eq!(
            view("zfs/tank/datasets"),
            Ok(View::ZfsDatasets("tank".into()))
        );
        assert_eq!(view("syslog"), Ok(View::Syslog));
    }

    #[test]
    fn malformed_views_name_the_shapes_and_the_path_escape() {
        let e = view("docker/web/stats").unwrap_err();
        assert!(e.contains("web1://docker/{container}/logs"), "{e}");
        assert!(e.contains("web1:///docker/web/stats"), "{e}");
        assert!(view("docker/../x/logs").is_err());
        assert!(view("zfs/tank/datasets/more").is_err());
        assert!(view("syslog/x").is_err());
        assert!(view("compose/a/b").is_err());
    }

    #[test]
    fn names_with_shell_or_path_characters_are_refused() {
        for bad in [
            "$(touch X)",
            "a;b",
            "..",
            "..%2Fx",
            "-rf",
            "a%20b",
            "a'b",
            "%0Aa",
            "",
            "_x",
        ] {
            let e = view(&format!("docker/{bad}/logs")).unwrap_err();
            assert!(e.starts_with("Invalid container name '"), "{bad}: {e}");
            assert!(e.contains("host 'web1'"), "{e}");
        }
        let long = "a".repeat(MAX_NAME + 1);
        assert!(view(&format!("compose/{long}")).is_err());
        assert!(view(&format!("compose/{}", "a".repeat(MAX_NAME))).is_ok());
        let e = view("compose/a;b/logs").unwrap_err();
        assert!(e.starts_with("Invalid project name 'a;b'"), "{e}");
        let e = view("zfs/1tank").unwrap_err();
        assert!(e.starts_with("Invalid pool name '1tank'"), "{e}");
        assert_eq!(
            view("zfs/tank:a_b.c-d"),
            Ok(View::ZfsPool("tank:a_b.c-d".into()))
        );
        assert!(view("docker/a:b/logs").is_err());
        // Control characters are shown escaped, not raw.
        let e = view("docker/a%0Ab/logs").unwrap_err();
        assert!(e.contains("a\\nb") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn names_are_quoted_in_the_scripts_too() {
        let p = plan("web1", &View::DockerLogs("web.1".into()));
        assert!(
            p.script
                .contains("docker logs --tail 100 --timestamps 'web.1'"),
            "{}",
            p.script
        );
        assert!(p
            .unavailable
            .contains("Docker is not available on host 'web1'"));
        let p = plan("web1", &View::ZfsDatasets("tank".into()));
        assert!(p.script.contains("zfs list -r 'tank'"), "{}", p.script);
        let p = plan("web1", &View::ComposeLogs("app".into()));
        assert!(
            p.script.contains("-p 'app' logs --tail 100"),
            "{}",
            p.script
        );
        let line = command_line(&plan("web1", &View::Docker).script, "m-1");
        assert!(line.starts_with("sh -c '"), "{line}");
        assert!(!line.contains(MARKER), "{line}");
    }

    #[test]
    fn markers_differ_between_calls() {
        assert_ne!(fresh_marker(), fresh_marker());
    }

    fn outcome(stdout: &str, stderr: &str, code: Option<i32>) -> ExecOutcome {
        let capture = |s: &str| {
            let mut c = Capture::new(1 << 16);
            c.push(s.as_bytes());
            c
        };
        ExecOutcome {
            stdout: capture(stdout),
            stderr: capture(stderr),
            exit_code: code,
            exit_signal: None,
            timed_out: false,
            cancelled: false,
            pgid: None,
            duration: Duration::from_millis(1),
        }
    }

    #[test]
    fn output_is_rendered_like_the_tool() {
        let r = |o| render(o, "MK", "absent", 1 << 16, 30.0);
        assert_eq!(r(outcome("a\nb\n", "", Some(0))), "a\nb");
        assert_eq!(
            r(outcome("", "Cannot connect\n", Some(1))),
            "[stderr]\nCannot connect\n[exit code: 1]"
        );
        assert_eq!(r(outcome("", "", Some(0))), "(no output)");
        assert_eq!(r(outcome("motd\nMK\n", "", Some(0))), "absent");
        // Only the exact marker counts.
        assert_eq!(r(outcome("MK2\n", "", Some(0))), "MK2");
    }
}
