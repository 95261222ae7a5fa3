//! Parsing `target` strings: `hosts` or `host:/path`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// List the configured hosts.
    Hosts,
    /// A path on one host. The path may contain colons; only the first
    /// colon separates the host.
    Path { host: String, path: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError(pub String);

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// PATH_MAX on Linux: no remote path can be longer.
pub const MAX_PATH: usize = 4096;

pub fn parse(target: &str) -> Result<Target, TargetError> {
    let target = target.trim();
    if target.eq_ignore_ascii_case("hosts") {
        return Ok(Target::Hosts);
    }
    let Some((host, path)) = target.split_once(':') else {
        return Err(TargetError(format!(
            "Invalid target '{}'. Expected 'host:/path' or 'hosts'",
            shorten(target)
        )));
    };
    let (host, path) = (host.trim(), path.trim());
    if host.is_empty() {
        return Err(TargetError(format!(
            "Invalid target '{}': host cannot be empty",
            shorten(target)
        )));
    }
    if path.is_empty() {
        return Err(TargetError(format!(
            "Invalid target '{}': path cannot be empty",
            shorten(target)
        )));
    }
    if path.len() > MAX_PATH {
        return Err(TargetError(format!(
            "Invalid target on host '{}': the path is {} bytes long; the limit is {MAX_PATH}",
            shorten(host),
            path.len()
        )));
    }
    if path.contains('\0') {
        return Err(TargetError(format!(
            "Invalid target on host '{host}': the path contains a NUL byte"
        )));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TargetError(format!(
            "Invalid target: host '{}' contains whitespace or control characters",
            shorten(host)
        )));
    }
    Ok(Target::Path {
        host: host.to_string(),
        path: path.to_string(),
    })
}

/// Keeps error messages readable when someone sends a megabyte target.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(host: &str, path: &str) -> Target {
        Target::Path {
            host: host.into(),
            path: path.into(),
        }
    }

    #[test]
    fn parses_the_forms_the_original_accepted() {
        assert_eq!(parse("hosts"), Ok(Target::Hosts));
        assert_eq!(parse(" HOSTS "), Ok(Target::Hosts));
        assert_eq!(parse("web1:/var/log"), Ok(path("web1", "/var/log")));
        assert_eq!(parse("web1:~/code"), Ok(path("web1", "~/code")));
        assert_eq!(parse("web1:relative/dir"), Ok(path("web1", "relative/dir")));
        assert_eq!(parse("web1:/a:b:c"), Ok(path("web1", "/a:b:c")));
        assert_eq!(parse(" web1 : /etc "), Ok(path("web1", "/etc")));
    }

    #[test]
    fn rejects_what_cannot_be_a_target() {
        for (input, expect) in [
            ("web1", "Expected 'host:/path' or 'hosts'"),
            ("", "Expected 'host:/path' or 'hosts'"),
            (":/etc", "host cannot be empty"),
            ("web1:", "path cannot be empty"),
            ("web1:  ", "path cannot be empty"),
            ("web1:/a\0b", "NUL byte"),
            ("we b1:/etc", "whitespace"),
            (&format!("h:/{}", "a".repeat(5000)), "the limit is 4096"),
        ] {
            let err = parse(input).expect_err(input);
            assert!(err.0.contains(expect), "{input:?}: {}", err.0);
        }
    }

    #[test]
    fn long_targets_are_shortened_in_errors() {
        let long = "x".repeat(100_000);
        let err = parse(&long).unwrap_err();
        assert!(err.0.len() < 400, "{}", err.0.len());
        assert!(err.0.contains("100000 bytes"));
    }
}
