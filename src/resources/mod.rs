//! Resources: URIs mapped onto the same scout operations as the tool.
//!
//! * `hosts://list` — the host list with online marks, and each host's URIs.
//! * `metrics://pool` — pool and request figures as JSON (see [`metrics`]).
//! * `scout://{host}/{path}` — a file's contents or a directory listing.
//! * `{host}://...` — the host alias as the URI scheme: paths and the
//!   docker / compose / zfs / syslog views of the Python original (see
//!   [`host`] for the grammar).
//!
//! `resources/list` stays static (`hosts://list`, `metrics://pool`): concrete per-host
//! URIs would grow with the fleet, so they are advertised as templates and
//! spelled out per host in the `hosts://list` text instead.

mod host;
pub mod metrics;

use crate::scout::read::PathContent;
use crate::scout::{Mode, Scout};

/// A fixed resource or a URI template, as listed to clients.
pub struct Listing {
    pub uri: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

pub const RESOURCES: &[Listing] = &[
    Listing {
        uri: "hosts://list",
        name: "hosts",
        description: "The SSH hosts scout can reach, with user@host:port, an online mark \
                      and the resource URIs of each host",
    },
    Listing {
        uri: metrics::URI,
        name: "metrics",
        description: "Connection pool and request figures as JSON: live/idle/busy \
                      connections per host, hits, misses, connect and lock-wait latency, \
                      request latency per mode, queue depth, rejected requests",
    },
];

/// The MIME type of what reading `uri` returns.
pub fn mime_type(uri: &str) -> &'static str {
    if uri == metrics::URI {
        "application/json"
    } else {
        "text/plain"
    }
}

/// Every template we answer. `scout://{host}/{path}` stays first: it is
/// the oldest and clients (and tests) may rely on its position.
pub const TEMPLATES: &[Listing] = &[
    Listing {
        uri: "scout://{host}/{path}",
        name: "scout-path",
        description:
            "A file's contents or a directory's listing on a host, e.g. scout://web1/var/log/syslog",
    },
    Listing {
        uri: "{host}://{path}",
        name: "host-path",
        description: "A file's contents or a directory's listing, the host alias as scheme: \
                      web1:///var/log/syslog or web1://var/log/syslog. Three slashes always \
                      mean a path, even /docker",
    },
    Listing {
        uri: "{host}://docker",
        name: "host-docker",
        description: "Docker containers on a host (docker ps -a): name, image, status, ports",
    },
    Listing {
        uri: "{host}://docker/{container}/logs",
        name: "host-docker-logs",
        description: "The last 100 log lines of a container, with timestamps (stdout and stderr)",
    },
    Listing {
        uri: "{host}://compose",
        name: "host-compose",
        description: "Docker Compose projects on a host (docker compose ls)",
    },
    Listing {
        uri: "{host}://compose/{project}",
        name: "host-compose-project",
        description: "A Compose project's services and their state (docker compose -p ps -a)",
    },
    Listing {
        uri: "{host}://compose/{project}/logs",
        name: "host-compose-logs",
        description: "The last 100 log lines of each service of a Compose project",
    },
    Listing {
        uri: "{host}://zfs",
        name: "host-zfs",
        description: "ZFS pools on a host (zpool list) and their health (zpool status -x)",
    },
    Listing {
        uri: "{host}://zfs/{pool}",
        name: "host-zfs-pool",
        description: "One ZFS pool's detailed status (zpool status)",
    },
    Listing {
        uri: "{host}://zfs/{pool}/datasets",
        name: "host-zfs-datasets",
        description: "The datasets of a ZFS pool (zfs list -r)",
    },
    Listing {
        uri: "{host}://zfs/snapshots",
        name: "host-zfs-snapshots",
        description: "ZFS snapshots on a host (zfs list -t snapshot)",
    },
    Listing {
        uri: "{host}://syslog",
        name: "host-syslog",
        description: "The last 100 system log lines (journalctl, else /var/log/syslog)",
    },
];

/// Why a resource could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ResourceError {
    /// The URI names nothing we serve (unknown scheme, unknown host, a
    /// malformed view, an invalid container / project / pool name).
    NotFound(String),
    /// The host or path exists but reading failed.
    Failed(String),
}

/// What reading `uri` will do, for scheduling and metrics: the docker /
/// compose / zfs / syslog views run remote commands; everything else is a
/// read (or the host list). Malformed URIs count as reads: they fail fast.
pub fn mode_of(uri: &str) -> Mode {
    if uri == "hosts://list" || uri == metrics::URI {
        return Mode::Hosts;
    }
    if uri.starts_with("scout://") {
        return Mode::Read;
    }
    match uri.split_once("://") {
        Some((host, rest)) if host::is_view(host, rest) => Mode::Command,
        _ => Mode::Read,
    }
}

/// Reads a resource as text.
pub fn read(scout: &Scout, uri: &str) -> Result<String, ResourceError> {
    if uri == "hosts://list" {
        return Ok(hosts_list_text(scout));
    }
    if uri == metrics::URI {
        // No request queue here; the MCP server answers this URI itself
        // with its queue's figures.
        return Ok(metrics::text(scout, metrics::QueueStats::default()));
    }
    if let Some(rest) = uri.strip_prefix("scout://") {
        let (host, path) = split_host_path(rest).map_err(ResourceError::NotFound)?;
        scout.check_host(&host).map_err(ResourceError::NotFound)?;
        return read_path(scout, &host, &path);
    }
    // Anything else with a scheme is `{host}://...`; the reserved schemes
    // above win, so a host aliased `scout` is reached as scout://scout/...
    if uri.contains("://") {
        return host::read(scout, uri);
    }
    Err(ResourceError::NotFound(format!(
        "Unknown resource '{}': expected hosts://list, metrics://pool, scout://{{host}}/{{path}} or \
         {{host}}://{{path}} (see resources/templates/list)",
        crate::scout::target::shorten(uri)
    )))
}

/// The URI grammar alone, with no inventory lookup and no SSH: `scout://` URIs split into
/// host and path, `{host}://` URIs into a view and its remote script. Describes the result
/// in text. For the fuzz target (fuzz/fuzz_targets/resource_uri.rs); `read` uses the same
/// functions.
#[doc(hidden)]
pub fn parse_uri(uri: &str) -> Result<String, String> {
    if let Some(rest) = uri.strip_prefix("scout://") {
        let (host, path) = split_host_path(rest)?;
        return Ok(format!("{host} {path}"));
    }
    let (scheme, rest) = uri.split_once("://").ok_or("no scheme")?;
    host::parse_uri(scheme, rest)
}

/// A file's text or a directory listing; a missing path is NotFound, any
/// other failure (permissions, connection) is Failed.
fn read_path(scout: &Scout, host: &str, path: &str) -> Result<String, ResourceError> {
    match scout.read_path_text(host, path) {
        Ok(PathContent::File(text) | PathContent::Directory(text)) => Ok(text),
        Err(e) if e.starts_with("Path not found") => Err(ResourceError::NotFound(e)),
        Err(e) => Err(ResourceError::Failed(e)),
    }
}

/// The tool's host list, followed by each host's resource URIs, so a
/// client that only lists resources still learns what it can read.
fn hosts_list_text(scout: &Scout) -> String {
    let mut text = scout.hosts_text();
    text.push_str(&host_uris_text(&scout.inventory.names()));
    text
}

/// The per-host URI section of `hosts://list` (empty with no hosts: the
/// host list already says none are configured).
fn host_uris_text(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n\nResources per host (a path after three slashes, e.g. HOST:///etc/hosts; \
         scout://HOST/PATH also works):",
    );
    for name in names {
        let uris = host::VIEW_URIS
            .iter()
            .map(|suffix| format!("{name}://{suffix}"))
            .collect::<Vec<_>>()
            .join("  ");
        out.push_str(&format!("\n  {name}: {uris}"));
    }
    out
}

/// `web1/var/log` → (`web1`, `/var/log`); `web1/~/x` → (`web1`, `~/x`).
fn split_host_path(rest: &str) -> Result<(String, String), String> {
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err("Invalid resource URI: the host is empty (scout://{host}/{path})".into());
    }
    Ok((percent_decode(host)?, absolute_path(&percent_decode(path)?)))
}

/// A URI path is relative to `/` unless it starts with `~`, which the
/// remote side resolves to the user's home, as in the tool's targets.
fn absolute_path(path: &str) -> String {
    if path.starts_with('~') || path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8 without NUL bytes.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("Invalid resource URI: bad escape at byte {i} of '{s}'"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return Err("Invalid resource URI: it contains a NUL byte".into());
    }
    String::from_utf8(out).map_err(|_| "Invalid resource URI: escapes are not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_views_are_bulk_and_paths_are_reads() {
        assert_eq!(mode_of("hosts://list"), Mode::Hosts);
        assert_eq!(mode_of("metrics://pool"), Mode::Hosts);
        assert_eq!(mode_of("scout://web1/docker"), Mode::Read);
        assert_eq!(mode_of("web1:///docker"), Mode::Read);
        assert_eq!(mode_of("web1://etc/hosts"), Mode::Read);
        assert_eq!(mode_of("web1://docker"), Mode::Command);
        assert_eq!(mode_of("web1://zfs/tank/datasets"), Mode::Command);
        assert_eq!(mode_of("web1://syslog"), Mode::Command);
        assert_eq!(mode_of("web1://docker/bad name/logs"), Mode::Read);
        assert_eq!(mode_of("nonsense"), Mode::Read);
    }

    #[test]
    fn splits_host_and_absolute_path() {
        assert_eq!(
            split_host_path("web1/var/log/syslog"),
            Ok(("web1".into(), "/var/log/syslog".into()))
        );
        assert_eq!(split_host_path("web1"), Ok(("web1".into(), "/".into())));
        assert_eq!(
            split_host_path("web1/~/code"),
            Ok(("web1".into(), "~/code".into()))
        );
        assert_eq!(
            split_host_path("web1/my%20file"),
            Ok(("web1".into(), "/my file".into()))
        );
        assert!(split_host_path("/etc").is_err());
    }

    #[test]
    fn rejects_broken_escapes() {
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("a%00b").is_err());
        assert!(percent_decode("%ff").is_err());
        assert_eq!(percent_decode("caf%C3%A9"), Ok("café".into()));
    }

    #[test]
    fn every_template_has_a_name_and_a_description() {
        assert_eq!(TEMPLATES[0].uri, "scout://{host}/{path}");
        for t in TEMPLATES {
            assert!(!t.name.is_empty() && !t.description.is_empty(), "{}", t.uri);
        }
        let mut names: Vec<_> = TEMPLATES.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TEMPLATES.len(), "template names are unique");
    }

    #[test]
    fn host_uris_are_listed_per_host() {
        assert_eq!(host_uris_text(&[]), "");
        let text = host_uris_text(&["web1".into(), "db".into()]);
        assert!(text.contains("\n  web1: web1://  web1://docker"), "{text}");
        assert!(text.contains("db://syslog"), "{text}");
        assert!(text.contains("db://zfs/snapshots"), "{text}");
    }
}
