//! Resources: URIs mapped onto the same scout operations as the tool.
//!
//! * `hosts://list` — the host list with online marks.
//! * `scout://{host}/{path}` — a file's contents or a directory listing.

use crate::scout::read::PathContent;
use crate::scout::Scout;

/// A fixed resource or a URI template, as listed to clients.
pub struct Listing {
    pub uri: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

pub const RESOURCES: &[Listing] = &[Listing {
    uri: "hosts://list",
    name: "hosts",
    description: "The SSH hosts scout can reach, with user@host:port and an online mark",
}];

pub const TEMPLATES: &[Listing] = &[Listing {
    uri: "scout://{host}/{path}",
    name: "scout-path",
    description:
        "A file's contents or a directory's listing on a host, e.g. scout://web1/var/log/syslog",
}];

/// Why a resource could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ResourceError {
    /// The URI names nothing we serve (unknown scheme, unknown host).
    NotFound(String),
    /// The host or path exists but reading failed.
    Failed(String),
}

/// Reads a resource as text.
pub fn read(scout: &Scout, uri: &str) -> Result<String, ResourceError> {
    if uri == "hosts://list" {
        return Ok(scout.hosts_text());
    }
    let Some(rest) = uri.strip_prefix("scout://") else {
        return Err(ResourceError::NotFound(format!(
            "Unknown resource '{}': expected hosts://list or scout://{{host}}/{{path}}",
            crate::scout::target::shorten(uri)
        )));
    };
    let (host, path) = split_host_path(rest).map_err(ResourceError::NotFound)?;
    scout.check_host(&host).map_err(ResourceError::NotFound)?;
    match scout.read_path_text(&host, &path) {
        Ok(PathContent::File(text) | PathContent::Directory(text)) => Ok(text),
        Err(e) if e.starts_with("Path not found") => Err(ResourceError::NotFound(e)),
        Err(e) => Err(ResourceError::Failed(e)),
    }
}

/// `web1/var/log` → (`web1`, `/var/log`); `web1/~/x` → (`web1`, `~/x`).
fn split_host_path(rest: &str) -> Result<(String, String), String> {
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err("Invalid resource URI: the host is empty (scout://{host}/{path})".into());
    }
    let path = percent_decode(path)?;
    let path = if path.starts_with('~') {
        path
    } else {
        format!("/{path}")
    };
    Ok((percent_decode(host)?, path))
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
}
