//! Configuration: environment settings, the OpenSSH client config, and the resulting inventory.

pub mod pattern;
pub mod settings;
pub mod ssh_config;

pub use settings::{KnownHosts, Settings, VARIABLES};
pub use ssh_config::{HostConfig, SshConfig};

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A configuration problem, already phrased for the person who has to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The user's home directory: `$HOME`, else the password database, else `/`.
pub fn home_dir() -> PathBuf {
    non_empty_env("HOME")
        .or_else(|| passwd_field(|pw| pw.pw_dir))
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// The local user name: `$USER`, else the password database, else `root`.
pub fn local_user() -> String {
    non_empty_env("USER")
        .or_else(|| passwd_field(|pw| pw.pw_name))
        .unwrap_or_else(|| "root".to_string())
}

/// Expands a leading `~` or `~/` with [`home_dir`]; anything else (including `~user`) is kept.
pub fn expand_tilde(s: &str) -> PathBuf {
    expand_tilde_in(s, &home_dir())
}

/// [`expand_tilde`] with an explicit home, so callers that already know it stay consistent.
pub(crate) fn expand_tilde_in(s: &str, home: &Path) -> PathBuf {
    match s.strip_prefix('~') {
        Some("") => home.to_path_buf(),
        Some(rest) if rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(s),
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads one string field of the current user's passwd entry.
///
/// getpwuid_r rather than getpwuid because config may be loaded from any thread.
fn passwd_field(pick: fn(&libc::passwd) -> *const libc::c_char) -> Option<String> {
    let mut size = 1024;
    // Entries larger than 1 MiB are not real; stop growing the buffer there.
    while size <= 1 << 20 {
        match passwd_lookup(size, pick) {
            Err(libc::ERANGE) => size *= 4,
            Err(_) => return None,
            Ok(found) => return found,
        }
    }
    None
}

fn passwd_lookup(
    size: usize,
    pick: fn(&libc::passwd) -> *const libc::c_char,
) -> Result<Option<String>, i32> {
    let mut buf: Vec<libc::c_char> = vec![0; size];
    // SAFETY: passwd is plain C data for which all-zero is a valid (empty) value.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage owned by this frame.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(rc);
    }
    let field = pick(&entry);
    if result.is_null() || field.is_null() {
        return Ok(None);
    }
    // SAFETY: on success the field points to a NUL-terminated string inside `buf`, alive here.
    let value = unsafe { CStr::from_ptr(field) }
        .to_string_lossy()
        .into_owned();
    Ok(Some(value).filter(|v| !v.is_empty()))
}

/// The hosts scout may reach: ssh config aliases after the allow/block lists.
///
/// A host's settings are resolved from the config on first use and kept:
/// start-up stays quick with tens of thousands of hosts, of which a
/// session typically touches a few.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// `None` when built from resolved hosts ([`Inventory::from_hosts`]).
    config: Option<Arc<SshConfig>>,
    hosts: BTreeMap<String, OnceLock<Arc<HostConfig>>>,
}

impl Inventory {
    /// Keeps aliases matching any `allow` entry (all when `None`) and drops those matching any
    /// `block` entry. Entries are glob patterns, matched ignoring ASCII case as ssh does for
    /// host names, so a blocklist cannot be sidestepped by capitalisation.
    pub fn new(config: SshConfig, allow: Option<&[String]>, block: &[String]) -> Inventory {
        let allow = allow.map(lowercase_all);
        let block = lowercase_all(block);
        let hosts = config
            .aliases()
            .into_iter()
            .filter(|alias| admitted(alias, allow.as_deref(), &block))
            .map(|alias| (alias, OnceLock::new()))
            .collect();
        Inventory {
            config: Some(Arc::new(config)),
            hosts,
        }
    }

    /// Builds an inventory directly, keyed by each host's alias.
    pub fn from_hosts(hosts: Vec<HostConfig>) -> Inventory {
        let hosts = hosts
            .into_iter()
            .map(|h| (h.alias.clone(), OnceLock::from(Arc::new(h))))
            .collect();
        Inventory {
            config: None,
            hosts,
        }
    }

    pub fn get(&self, alias: &str) -> Option<Arc<HostConfig>> {
        let cell = self.hosts.get(alias)?;
        if let Some(host) = cell.get() {
            return Some(Arc::clone(host));
        }
        // Only an inventory read from a config has cells left to fill.
        let config = self.config.as_ref()?;
        Some(Arc::clone(
            cell.get_or_init(|| Arc::new(config.resolve(alias))),
        ))
    }

    /// Resolves a jump host named in a ProxyJump, as ssh would: from
    /// the ssh config whether or not the allow/block lists admit it as a
    /// target (they choose what may be reached, not the way there).
    pub fn resolve_hop(&self, name: &str) -> HostConfig {
        if let Some(host) = self.get(name) {
            return HostConfig::clone(&host);
        }
        match &self.config {
            Some(config) => config.resolve(name),
            None => HostConfig {
                alias: name.to_string(),
                hostname: name.to_string(),
                port: 22,
                user: local_user(),
                identity_files: Vec::new(),
                identities_only: false,
                proxy_jump: None,
                connect_timeout: None,
            },
        }
    }

    /// Aliases in sorted order.
    pub fn names(&self) -> Vec<String> {
        self.hosts.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

fn lowercase_all(list: &[String]) -> Vec<String> {
    list.iter().map(|s| s.to_ascii_lowercase()).collect()
}

fn admitted(alias: &str, allow: Option<&[String]>, block: &[String]) -> bool {
    let alias = alias.to_ascii_lowercase();
    let listed = |list: &[String]| list.iter().any(|p| pattern::glob_match(p, &alias));
    allow.is_none_or(listed) && !listed(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn config(text: &str) -> SshConfig {
        SshConfig::parse(text, Path::new("/nonexistent/scout-test/config")).unwrap()
    }

    const FLEET: &str = "Host web1 web2 db1 Bastion\n  User ops\nHost *\n  Port 2222\n";

    #[test]
    fn error_displays_its_message() {
        let err = ConfigError("boom".into());
        assert_eq!(err.to_string(), "boom");
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert_eq!(boxed.to_string(), "boom");
    }

    #[test]
    fn tilde_expansion() {
        let home = Path::new("/home/u");
        assert_eq!(expand_tilde_in("~", home), PathBuf::from("/home/u"));
        assert_eq!(expand_tilde_in("~/", home), PathBuf::from("/home/u"));
        assert_eq!(
            expand_tilde_in("~/.ssh/id", home),
            PathBuf::from("/home/u/.ssh/id")
        );
        assert_eq!(expand_tilde_in("~bob/x", home), PathBuf::from("~bob/x"));
        assert_eq!(expand_tilde_in("/abs/~", home), PathBuf::from("/abs/~"));
        assert_eq!(expand_tilde_in("rel", home), PathBuf::from("rel"));
        assert_eq!(expand_tilde("~/x"), home_dir().join("x"));
    }

    #[test]
    fn home_and_user_are_never_empty() {
        assert!(!home_dir().as_os_str().is_empty());
        assert!(!local_user().is_empty());
    }

    #[test]
    fn passwd_lookup_finds_current_user() {
        // The test runs as some real uid, so the database should know it.
        assert!(passwd_field(|pw| pw.pw_name).is_some());
    }

    #[test]
    fn inventory_without_lists_has_every_alias() {
        let inv = Inventory::new(config(FLEET), None, &[]);
        assert_eq!(inv.names(), strings(&["Bastion", "db1", "web1", "web2"]));
        assert_eq!(inv.len(), 4);
        assert!(!inv.is_empty());
        let web1 = inv.get("web1").unwrap();
        assert_eq!((web1.user.as_str(), web1.port), ("ops", 2222));
        assert!(inv.get("missing").is_none());
    }

    #[test]
    fn allowlist_keeps_only_listed() {
        let allow = strings(&["web*", "db1", "nothere"]);
        let inv = Inventory::new(config(FLEET), Some(&allow), &[]);
        assert_eq!(inv.names(), strings(&["db1", "web1", "web2"]));
    }

    #[test]
    fn blocklist_drops_listed() {
        let block = strings(&["web?"]);
        let inv = Inventory::new(config(FLEET), None, &block);
        assert_eq!(inv.names(), strings(&["Bastion", "db1"]));
    }

    #[test]
    fn block_wins_over_allow() {
        let allow = strings(&["*"]);
        let block = strings(&["web1", "db*"]);
        let inv = Inventory::new(config(FLEET), Some(&allow), &block);
        assert_eq!(inv.names(), strings(&["Bastion", "web2"]));
    }

    #[test]
    fn lists_ignore_case() {
        let block = strings(&["BASTION", "Web1"]);
        let inv = Inventory::new(config(FLEET), None, &block);
        assert_eq!(inv.names(), strings(&["db1", "web2"]));
    }

    #[test]
    fn empty_allowlist_admits_nothing() {
        let inv = Inventory::new(config(FLEET), Some(&[]), &[]);
        assert!(inv.is_empty());
    }

    #[test]
    fn from_hosts_keys_by_alias() {
        let host = |alias: &str| HostConfig {
            alias: alias.into(),
            hostname: format!("{alias}.example"),
            port: 22,
            user: "u".into(),
            identity_files: vec![],
            identities_only: false,
            proxy_jump: None,
            connect_timeout: None,
        };
        let inv = Inventory::from_hosts(vec![host("b"), host("a")]);
        assert_eq!(inv.names(), strings(&["a", "b"]));
        assert_eq!(inv.get("a").unwrap().hostname, "a.example");
    }
}
