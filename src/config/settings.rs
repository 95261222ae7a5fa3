//! Settings read from `SCOUT_*` environment variables.

use crate::config::{expand_tilde_in, home_dir, ConfigError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every documented variable as (name, default, meaning), for `--help` and the README.
#[rustfmt::skip]
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("SCOUT_SSH_CONFIG", "~/.ssh/config", "OpenSSH client config to read hosts from"),
    ("SCOUT_KNOWN_HOSTS", "~/.ssh/known_hosts", "host keys; `none` disables checking (logged loudly)"),
    ("SCOUT_STRICT_HOST_KEY_CHECKING", "true", "unknown or changed key = refuse to connect"),
    ("SCOUT_MAX_FILE_SIZE", "1048576", "bytes returned for one file read"),
    ("SCOUT_MAX_OUTPUT_SIZE", "262144", "bytes of command output returned (at least 1024)"),
    ("SCOUT_COMMAND_TIMEOUT", "30", "seconds per command; on expiry the remote process group is stopped and the output so far returned"),
    ("SCOUT_CONNECT_TIMEOUT", "10", "seconds for TCP connect, and again for handshake + auth; also each SSH call's timeout"),
    ("SCOUT_ADAPTIVE_TIMEOUTS", "true", "shorten a host's timeouts to a multiple of its observed round trip once known (never below 2 s per call, 3 s per TCP connect, 10 s per handshake; never above SCOUT_CONNECT_TIMEOUT)"),
    ("SCOUT_IDLE_TIMEOUT", "60", "seconds an idle pooled session lives"),
    ("SCOUT_HEALTH_CHECK_INTERVAL", "15", "seconds between health checks (one SFTP round trip) of an idle pooled session; a silent peer is dropped"),
    ("SCOUT_MAX_POOL_SIZE", "100", "live SSH connections in total"),
    ("SCOUT_MAX_CONNECTIONS_PER_HOST", "4", "live SSH connections to one host"),
    ("SCOUT_MAX_HANDSHAKES_PER_HOST", "2", "SSH handshakes in progress to one host at once"),
    ("SCOUT_WORKERS", "16", "request concurrency limit (worker threads, 1 to 1024)"),
    ("SCOUT_QUICK_WORKERS", "4", "workers kept for quick requests (reads, listings, finds, diffs); the others take quick requests first, then commands and transfers. 0 to SCOUT_WORKERS-1; by default SCOUT_WORKERS/4, at least 1 (0 when SCOUT_WORKERS=1)"),
    ("SCOUT_QUEUE_SIZE", "256", "requests waiting for a worker, per lane (quick requests; commands and transfers); beyond that, new ones get \"server busy\""),
    ("SCOUT_SHUTDOWN_GRACE", "5", "seconds in-flight requests get to finish on shutdown"),
    ("SCOUT_ALLOWLIST", "unset", "comma-separated host aliases (globs allowed) to keep"),
    ("SCOUT_BLOCKLIST", "unset", "comma-separated host aliases (globs allowed) to drop"),
    ("SCOUT_WARM_HOSTS", "unset", "comma-separated host aliases (globs allowed, `*` = all) to connect to in the background at start, one connection each, within the pool's bound"),
    ("SCOUT_BROADCAST_WIDTH", "128", "targets of broadcasts (and host probes) served in parallel (1 to 1024)"),
    ("SCOUT_MAX_FIND_RESULTS", "100", "paths returned by one find"),
    ("SCOUT_COMMAND_ALLOWLIST", "unset", "comma-separated programs; when set, queries are parsed into words, only these programs run and no shell operators are allowed"),
    ("SCOUT_READ_ONLY", "false", "refuse every write to a remote host (beam uploads, remote-to-remote beams)"),
    ("SCOUT_LOG_LEVEL", "info", "log level for stderr (error, warn, info, debug, trace)"),
];

/// Where host keys are checked, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownHosts {
    File(PathBuf),
    Disabled,
}

/// Validated runtime settings; see [`VARIABLES`] for what each one means.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub ssh_config: PathBuf,
    pub known_hosts: KnownHosts,
    pub strict_host_key_checking: bool,
    pub max_file_size: u64,
    pub max_output_size: usize,
    pub command_timeout: Duration,
    pub connect_timeout: Duration,
    pub adaptive_timeouts: bool,
    pub idle_timeout: Duration,
    pub health_check_interval: Duration,
    pub max_pool_size: usize,
    pub max_connections_per_host: usize,
    pub max_handshakes_per_host: usize,
    pub workers: usize,
    /// Workers that take only quick requests; always fewer than `workers`.
    pub quick_workers: usize,
    pub queue_size: usize,
    pub shutdown_grace: Duration,
    pub allowlist: Option<Vec<String>>,
    pub blocklist: Vec<String>,
    /// Alias patterns to connect to ahead of demand.
    pub warm_hosts: Vec<String>,
    pub broadcast_width: usize,
    pub max_find_results: usize,
    /// Restricted command mode when set: the programs `query` may run.
    pub command_allowlist: Option<Vec<String>>,
    pub read_only: bool,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds settings from any variable source; `HOME` is asked for too, for `~` expansion.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let env = Lookup::new(&get);
        let home = env.value("HOME").map_or_else(home_dir, PathBuf::from);
        let workers = env.count("SCOUT_WORKERS", 16, 1, Some(1024))?;
        Ok(Settings {
            ssh_config: env.path("SCOUT_SSH_CONFIG", &home, ".ssh/config"),
            known_hosts: env.known_hosts(&home),
            strict_host_key_checking: env.boolean("SCOUT_STRICT_HOST_KEY_CHECKING", true)?,
            max_file_size: env.count("SCOUT_MAX_FILE_SIZE", 1_048_576, 1, None)?,
            max_output_size: env.count("SCOUT_MAX_OUTPUT_SIZE", 262_144, 1024, None)?,
            command_timeout: env.seconds("SCOUT_COMMAND_TIMEOUT", 30.0, false)?,
            connect_timeout: env.seconds("SCOUT_CONNECT_TIMEOUT", 10.0, false)?,
            adaptive_timeouts: env.boolean("SCOUT_ADAPTIVE_TIMEOUTS", true)?,
            idle_timeout: env.seconds("SCOUT_IDLE_TIMEOUT", 60.0, false)?,
            health_check_interval: env.seconds("SCOUT_HEALTH_CHECK_INTERVAL", 15.0, false)?,
            max_pool_size: env.count("SCOUT_MAX_POOL_SIZE", 100, 1, None)?,
            max_connections_per_host: env.count("SCOUT_MAX_CONNECTIONS_PER_HOST", 4, 1, None)?,
            max_handshakes_per_host: env.count("SCOUT_MAX_HANDSHAKES_PER_HOST", 2, 1, None)?,
            workers,
            quick_workers: env.quick_workers(workers)?,
            queue_size: env.count("SCOUT_QUEUE_SIZE", 256, 1, None)?,
            shutdown_grace: env.seconds("SCOUT_SHUTDOWN_GRACE", 5.0, true)?,
            allowlist: Some(env.list("SCOUT_ALLOWLIST")).filter(|l| !l.is_empty()),
            blocklist: env.list("SCOUT_BLOCKLIST"),
            warm_hosts: env.list("SCOUT_WARM_HOSTS"),
            broadcast_width: env.count("SCOUT_BROADCAST_WIDTH", 128, 1, Some(1024))?,
            max_find_results: env.count("SCOUT_MAX_FIND_RESULTS", 100, 1, None)?,
            command_allowlist: Some(env.list("SCOUT_COMMAND_ALLOWLIST")).filter(|l| !l.is_empty()),
            read_only: env.boolean("SCOUT_READ_ONLY", false)?,
        })
    }

    /// The settings when no variable is set (home taken from `$HOME`).
    pub fn defaults() -> Settings {
        let home = home_dir();
        Settings {
            ssh_config: home.join(".ssh/config"),
            known_hosts: KnownHosts::File(home.join(".ssh/known_hosts")),
            strict_host_key_checking: true,
            max_file_size: 1_048_576,
            max_output_size: 262_144,
            command_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            adaptive_timeouts: true,
            idle_timeout: Duration::from_secs(60),
            health_check_interval: Duration::from_secs(15),
            max_pool_size: 100,
            max_connections_per_host: 4,
            max_handshakes_per_host: 2,
            workers: 16,
            quick_workers: 4,
            queue_size: 256,
            shutdown_grace: Duration::from_secs(5),
            allowlist: None,
            blocklist: Vec::new(),
            warm_hosts: Vec::new(),
            broadcast_width: 128,
            max_find_results: 100,
            command_allowlist: None,
            read_only: false,
        }
    }
}

/// Typed access to one variable source; an empty (or all-blank) value counts as unset.
struct Lookup<'a, F: Fn(&str) -> Option<String>> {
    get: &'a F,
}

impl<'a, F: Fn(&str) -> Option<String>> Lookup<'a, F> {
    fn new(get: &'a F) -> Self {
        Lookup { get }
    }

    fn value(&self, name: &str) -> Option<String> {
        (self.get)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn path(&self, name: &str, home: &Path, default: &str) -> PathBuf {
        self.value(name)
            .map_or_else(|| home.join(default), |v| expand_tilde_in(&v, home))
    }

    fn known_hosts(&self, home: &Path) -> KnownHosts {
        match self.value("SCOUT_KNOWN_HOSTS") {
            Some(v) if v.eq_ignore_ascii_case("none") => KnownHosts::Disabled,
            Some(v) => KnownHosts::File(expand_tilde_in(&v, home)),
            None => KnownHosts::File(home.join(".ssh/known_hosts")),
        }
    }

    fn boolean(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.value(name) else {
            return Ok(default);
        };
        parse_bool(&v).ok_or_else(|| invalid(name, &v, "true or false (also yes/no, on/off, 1/0)"))
    }

    fn count<T>(&self, name: &str, default: T, min: T, max: Option<T>) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(v) = self.value(name) else {
            return Ok(default);
        };
        match v.parse::<T>() {
            Ok(n) if n >= min && max.is_none_or(|m| n <= m) => Ok(n),
            _ => Err(invalid(name, &v, &count_expectation(min, max))),
        }
    }

    fn seconds(&self, name: &str, default: f64, zero_ok: bool) -> Result<Duration, ConfigError> {
        let v = self.value(name);
        let secs = v.as_deref().map_or(Ok(default), str::parse::<f64>);
        let duration = secs
            .ok()
            .filter(|s| *s > 0.0 || (zero_ok && *s == 0.0))
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
        let op = if zero_ok { ">=" } else { ">" };
        duration.ok_or_else(|| {
            let expected = format!("a number of seconds {op} 0 (fractions allowed)");
            invalid(name, v.as_deref().unwrap_or_default(), &expected)
        })
    }

    /// Must leave at least one worker for commands and transfers.
    fn quick_workers(&self, workers: usize) -> Result<usize, ConfigError> {
        let most = workers - 1;
        let default = (workers / 4).clamp(1, 1024).min(most);
        self.count("SCOUT_QUICK_WORKERS", default, 0, Some(most))
            .map_err(|e| {
                ConfigError(format!(
                    "{e}: fewer than SCOUT_WORKERS={workers}, so that commands and transfers keep at least one worker"
                ))
            })
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.value(name).map_or_else(Vec::new, |v| split_list(&v))
    }
}

fn count_expectation<T: std::fmt::Display>(min: T, max: Option<T>) -> String {
    match max {
        Some(max) => format!("a whole number from {min} to {max}"),
        None => format!("a whole number >= {min}"),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn invalid(name: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError(format!("{name}={value:?}: expected {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

    const HOME: &str = "/home/tester";

    fn with(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("HOME".to_string(), HOME.to_string())])
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    fn err(name: &str, value: &str) -> String {
        with(&[(name, value)]).unwrap_err().to_string()
    }

    #[test]
    fn defaults_match_an_empty_environment() {
        assert_eq!(
            Settings::from_lookup(|_| None).unwrap(),
            Settings::defaults()
        );
    }

    #[test]
    fn every_default() {
        let s = with(&[]).unwrap();
        assert_eq!(s.ssh_config, PathBuf::from("/home/tester/.ssh/config"));
        assert_eq!(
            s.known_hosts,
            KnownHosts::File(PathBuf::from("/home/tester/.ssh/known_hosts"))
        );
        assert!(s.strict_host_key_checking);
        assert_eq!(s.max_file_size, 1_048_576);
        assert_eq!(s.max_output_size, 262_144);
        assert_eq!(s.command_timeout, Duration::from_secs(30));
        assert_eq!(s.connect_timeout, Duration::from_secs(10));
        assert!(s.adaptive_timeouts);
        assert_eq!(s.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.health_check_interval, Duration::from_secs(15));
        assert_eq!(s.max_pool_size, 100);
        assert_eq!(s.max_connections_per_host, 4);
        assert_eq!(s.max_handshakes_per_host, 2);
        assert_eq!(s.workers, 16);
        assert_eq!(s.quick_workers, 4);
        assert_eq!(s.queue_size, 256);
        assert_eq!(s.shutdown_grace, Duration::from_secs(5));
        assert_eq!(s.allowlist, None);
        assert!(s.blocklist.is_empty());
        assert!(s.warm_hosts.is_empty());
    }

    #[test]
    fn documented_defaults_parse_to_the_defaults() {
        let vars: Vec<(&str, &str)> = VARIABLES
            .iter()
            .filter(|(_, default, _)| *default != "unset")
            .map(|(name, default, _)| (*name, *default))
            .collect();
        assert_eq!(with(&vars).unwrap(), with(&[]).unwrap());
    }

    #[test]
    fn every_documented_variable_is_read() {
        let asked = RefCell::new(BTreeSet::new());
        Settings::from_lookup(|k| {
            asked.borrow_mut().insert(k.to_string());
            None
        })
        .unwrap();
        let documented: BTreeSet<String> = VARIABLES
            .iter()
            .map(|(n, _, _)| n.to_string())
            .filter(|n| n != "SCOUT_LOG_LEVEL")
            .chain(["HOME".to_string()])
            .collect();
        assert_eq!(asked.into_inner(), documented);
    }

    #[test]
    fn values_are_read() {
        let s = with(&[
            ("SCOUT_SSH_CONFIG", "/etc/scout/ssh_config"),
            ("SCOUT_KNOWN_HOSTS", "~/kh"),
            ("SCOUT_MAX_FILE_SIZE", "1"),
            ("SCOUT_MAX_OUTPUT_SIZE", "1024"),
            ("SCOUT_COMMAND_TIMEOUT", "0.5"),
            ("SCOUT_CONNECT_TIMEOUT", "2.25"),
            ("SCOUT_IDLE_TIMEOUT", "300"),
            ("SCOUT_HEALTH_CHECK_INTERVAL", "0.5"),
            ("SCOUT_MAX_POOL_SIZE", "7"),
            ("SCOUT_MAX_CONNECTIONS_PER_HOST", "1"),
            ("SCOUT_MAX_HANDSHAKES_PER_HOST", "3"),
            ("SCOUT_WORKERS", "1024"),
            ("SCOUT_QUEUE_SIZE", "1"),
            ("SCOUT_SHUTDOWN_GRACE", "0"),
            ("SCOUT_ADAPTIVE_TIMEOUTS", "false"),
        ])
        .unwrap();
        assert!(!s.adaptive_timeouts);
        assert_eq!(s.ssh_config, PathBuf::from("/etc/scout/ssh_config"));
        assert_eq!(
            s.known_hosts,
            KnownHosts::File(PathBuf::from("/home/tester/kh"))
        );
        assert_eq!((s.max_file_size, s.max_output_size), (1, 1024));
        assert_eq!(s.command_timeout, Duration::from_millis(500));
        assert_eq!(s.connect_timeout, Duration::from_millis(2250));
        assert_eq!(s.idle_timeout, Duration::from_secs(300));
        assert_eq!(s.health_check_interval, Duration::from_millis(500));
        assert_eq!(s.max_pool_size, 7);
        assert_eq!(s.max_connections_per_host, 1);
        assert_eq!(s.max_handshakes_per_host, 3);
        assert_eq!((s.workers, s.queue_size), (1024, 1));
        assert_eq!(s.shutdown_grace, Duration::ZERO);
    }

    #[test]
    fn tilde_paths_expand() {
        let s = with(&[("SCOUT_SSH_CONFIG", "~/cfg")]).unwrap();
        assert_eq!(s.ssh_config, PathBuf::from("/home/tester/cfg"));
        let s = with(&[("SCOUT_KNOWN_HOSTS", "~")]).unwrap();
        assert_eq!(s.known_hosts, KnownHosts::File(PathBuf::from(HOME)));
    }

    #[test]
    fn known_hosts_none_disables() {
        for v in ["none", "NONE", "None", " none "] {
            let s = with(&[("SCOUT_KNOWN_HOSTS", v)]).unwrap();
            assert_eq!(s.known_hosts, KnownHosts::Disabled, "{v}");
        }
    }

    #[test]
    fn booleans() {
        let strict = |v| {
            with(&[("SCOUT_STRICT_HOST_KEY_CHECKING", v)])
                .unwrap()
                .strict_host_key_checking
        };
        for v in ["true", "TRUE", "1", "yes", "Yes", "on", "ON"] {
            assert!(strict(v), "{v}");
        }
        for v in ["false", "False", "0", "no", "NO", "off", "Off"] {
            assert!(!strict(v), "{v}");
        }
    }

    #[test]
    fn empty_values_mean_default() {
        let s = with(&[
            ("SCOUT_WORKERS", ""),
            ("SCOUT_COMMAND_TIMEOUT", "  "),
            ("SCOUT_STRICT_HOST_KEY_CHECKING", ""),
            ("SCOUT_KNOWN_HOSTS", ""),
            ("SCOUT_ALLOWLIST", ""),
        ])
        .unwrap();
        assert_eq!(s, with(&[]).unwrap());
    }

    #[test]
    fn invalid_boolean() {
        assert_eq!(
            err("SCOUT_STRICT_HOST_KEY_CHECKING", "maybe"),
            "SCOUT_STRICT_HOST_KEY_CHECKING=\"maybe\": expected true or false (also yes/no, on/off, 1/0)"
        );
    }

    #[test]
    fn invalid_counts() {
        let cases = [
            ("SCOUT_MAX_POOL_SIZE", "abc", "a whole number >= 1"),
            ("SCOUT_MAX_POOL_SIZE", "0", "a whole number >= 1"),
            ("SCOUT_MAX_POOL_SIZE", "-3", "a whole number >= 1"),
            ("SCOUT_MAX_POOL_SIZE", "1.5", "a whole number >= 1"),
            ("SCOUT_MAX_FILE_SIZE", "0", "a whole number >= 1"),
            (
                "SCOUT_MAX_FILE_SIZE",
                "99999999999999999999999",
                "a whole number >= 1",
            ),
            ("SCOUT_MAX_OUTPUT_SIZE", "1023", "a whole number >= 1024"),
            ("SCOUT_MAX_CONNECTIONS_PER_HOST", "0", "a whole number >= 1"),
            ("SCOUT_MAX_HANDSHAKES_PER_HOST", "x", "a whole number >= 1"),
            ("SCOUT_WORKERS", "0", "a whole number from 1 to 1024"),
            ("SCOUT_WORKERS", "1025", "a whole number from 1 to 1024"),
            ("SCOUT_QUEUE_SIZE", "0", "a whole number >= 1"),
        ];
        for (name, value, expected) in cases {
            assert_eq!(
                err(name, value),
                format!("{name}=\"{value}\": expected {expected}")
            );
        }
    }

    #[test]
    fn invalid_durations() {
        let positive = "a number of seconds > 0 (fractions allowed)";
        let cases = [
            ("SCOUT_COMMAND_TIMEOUT", "0", positive),
            ("SCOUT_COMMAND_TIMEOUT", "-1", positive),
            ("SCOUT_COMMAND_TIMEOUT", "10s", positive),
            ("SCOUT_CONNECT_TIMEOUT", "NaN", positive),
            ("SCOUT_CONNECT_TIMEOUT", "inf", positive),
            ("SCOUT_IDLE_TIMEOUT", "1e400", positive),
            ("SCOUT_IDLE_TIMEOUT", "soon", positive),
            ("SCOUT_HEALTH_CHECK_INTERVAL", "0", positive),
            ("SCOUT_HEALTH_CHECK_INTERVAL", "-15", positive),
        ];
        for (name, value, expected) in cases {
            assert_eq!(
                err(name, value),
                format!("{name}=\"{value}\": expected {expected}")
            );
        }
        assert_eq!(
            err("SCOUT_SHUTDOWN_GRACE", "-0.5"),
            "SCOUT_SHUTDOWN_GRACE=\"-0.5\": expected a number of seconds >= 0 (fractions allowed)"
        );
    }

    #[test]
    fn lists_are_trimmed_and_empties_dropped() {
        let s = with(&[
            ("SCOUT_ALLOWLIST", " web1, web*,,db1 ,"),
            ("SCOUT_BLOCKLIST", "bastion,, "),
            ("SCOUT_WARM_HOSTS", " web*, db1,"),
        ])
        .unwrap();
        assert_eq!(
            s.allowlist,
            Some(vec!["web1".into(), "web*".into(), "db1".into()])
        );
        assert_eq!(s.blocklist, vec!["bastion".to_string()]);
        assert_eq!(s.warm_hosts, vec!["web*".to_string(), "db1".to_string()]);
    }

    #[test]
    fn allowlist_of_only_separators_is_unset() {
        let s = with(&[("SCOUT_ALLOWLIST", " , ,")]).unwrap();
        assert_eq!(s.allowlist, None);
    }

    #[test]
    fn quick_workers_default_to_a_quarter_and_leave_one_for_bulk() {
        let quick = |workers: &str| with(&[("SCOUT_WORKERS", workers)]).unwrap().quick_workers;
        assert_eq!(quick("1"), 0);
        assert_eq!(quick("2"), 1);
        assert_eq!(quick("3"), 1);
        assert_eq!(quick("16"), 4);
        assert_eq!(quick("1024"), 256);
        let s = with(&[("SCOUT_WORKERS", "3"), ("SCOUT_QUICK_WORKERS", "2")]).unwrap();
        assert_eq!(s.quick_workers, 2);
        let s = with(&[("SCOUT_QUICK_WORKERS", "0")]).unwrap();
        assert_eq!(s.quick_workers, 0);
    }

    #[test]
    fn quick_workers_must_be_fewer_than_workers() {
        let why =
            "fewer than SCOUT_WORKERS=4, so that commands and transfers keep at least one worker";
        for value in ["4", "5", "-1", "x"] {
            let e = with(&[("SCOUT_WORKERS", "4"), ("SCOUT_QUICK_WORKERS", value)]).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "SCOUT_QUICK_WORKERS=\"{value}\": expected a whole number from 0 to 3: {why}"
                )
            );
        }
        let e = with(&[("SCOUT_WORKERS", "1"), ("SCOUT_QUICK_WORKERS", "1")]).unwrap_err();
        assert!(e.to_string().contains("from 0 to 0"), "{e}");
    }
}
