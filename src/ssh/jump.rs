//! ProxyJump: reaching a host through one or more jump hosts.
//!
//! The hops follow OpenSSH (ssh(1) `-J`, ssh_config(5) `ProxyJump`):
//! `ProxyJump a,b` for `t` makes ssh run `ssh -J a -W t b`, so the hops
//! are tried in order a, b, then t. Each hop is a `[user@]host[:port]`
//! (or `ssh://…`) whose host is looked up in the ssh config like any
//! alias (HostName, User, Port, IdentityFile…), with a user or port
//! written in the hop winning, as command-line options do for ssh. A
//! hop's own ProxyJump is honoured only for the FIRST hop: the later
//! ones are reached with `-J`, which overrides their configured value.
//! The first hop's ProxyJump is followed recursively (that is what
//! `ssh -W … a` does), up to [`MAX_HOPS`] hops, which also stops loops.
//!
//! Jump sessions are shared: a [`Carrier`] per jump session carries up
//! to [`TUNNELS_PER_JUMP`] tunnels, and every host behind the same hop
//! path uses it. The registry here keeps weak references only: a jump
//! session lives exactly as long as some session runs through it, so it
//! is bounded by the pool (every pooled session holds at most one chain)
//! and closes when the pool's idle timeout closes the last session
//! behind it. A dead jump session is dropped from the registry and the
//! next connect opens a new one.

use super::error::{ErrorKind, SshError};
use super::session::{connect_direct, connect_tunneled, ConnectOptions, SshSession};
use super::tunnel::{Carrier, Place};
use crate::config::HostConfig;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

/// Most hops on the way to one host, counting the first hop's own
/// ProxyJump chain; beyond this it is a loop or a mistake.
pub const MAX_HOPS: usize = 8;

/// Tunnels one jump session carries before another is opened: keeps a
/// busy jump host's traffic on a few TCP connections rather than one.
pub const TUNNELS_PER_JUMP: usize = 16;

/// One hop as written in ProxyJump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Parses a ProxyJump value: comma-separated `[user@]host[:port]` or
/// `ssh://[user@]host[:port]`, IPv6 addresses in brackets.
pub fn parse_chain(value: &str) -> Result<Vec<HopSpec>, String> {
    value.split(',').map(|h| parse_hop(h.trim())).collect()
}

fn parse_hop(text: &str) -> Result<HopSpec, String> {
    let bare = text.strip_prefix("ssh://").unwrap_or(text);
    let bare = bare.strip_suffix('/').unwrap_or(bare);
    let (user, rest) = match bare.rsplit_once('@') {
        Some((user, rest)) if !user.is_empty() => (Some(user.to_string()), rest),
        Some(_) => return Err(format!("empty user name in hop {text:?}")),
        None => (None, bare),
    };
    let (host, port) = split_host_port(rest).ok_or_else(|| format!("bad hop {text:?}"))?;
    if host.is_empty() {
        return Err(format!("empty host in hop {text:?}"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => return Err(format!("bad port {p:?} in hop {text:?}")),
        },
    };
    Ok(HopSpec {
        user,
        host: host.to_string(),
        port,
    })
}

/// "host", "host:22", "[::1]", "[::1]:22".
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match text.split_once(':') {
        Some((host, port)) if !port.contains(':') => Some((host, Some(port))),
        // A bare IPv6 address: no port can be told apart.
        Some(_) => Some((text, None)),
        None => Some((text, None)),
    }
}

/// Looks a hop name up in the ssh config.
pub type Resolver = dyn Fn(&str) -> HostConfig + Send + Sync;

/// The hops to `target`, first to last, each resolved (see module doc).
pub fn plan(target: &HostConfig, resolve: &Resolver) -> Result<Vec<HostConfig>, String> {
    let mut hops = Vec::new();
    if let Some(chain) = &target.proxy_jump {
        expand(chain, resolve, &mut hops, &mut Vec::new())?;
    }
    Ok(hops)
}

/// Appends the hops of `chain` to `out`. `trail` holds the first hops
/// whose own ProxyJump is being expanded, outermost first.
fn expand(
    chain: &str,
    resolve: &Resolver,
    out: &mut Vec<HostConfig>,
    trail: &mut Vec<String>,
) -> Result<(), String> {
    for (i, spec) in parse_chain(chain)?.into_iter().enumerate() {
        let mut hop = resolve(&spec.host);
        if let Some(user) = spec.user {
            hop.user = user;
        }
        if let Some(port) = spec.port {
            hop.port = port;
        }
        let own = hop.proxy_jump.take();
        if let (0, Some(own)) = (i, own) {
            trail.push(hop.alias.clone());
            if out.len() + trail.len() > MAX_HOPS {
                return Err(too_many(trail));
            }
            expand(&own, resolve, out, trail)?;
            trail.pop();
        }
        out.push(hop);
        if out.len() + trail.len() > MAX_HOPS {
            let mut names: Vec<String> = out.iter().map(|h| h.alias.clone()).collect();
            names.extend(trail.iter().rev().cloned());
            return Err(too_many(&names));
        }
    }
    Ok(())
}

fn too_many(names: &[String]) -> String {
    format!(
        "more than {MAX_HOPS} jump hosts ({} ...): is there a ProxyJump loop? (a wildcard \
         Host block that also matches the jump host, say; add `ProxyJump none` to the jump \
         host's own block)",
        names.join(" -> "),
    )
}

/// "bastion (ops@10.0.0.1:22)".
fn describe(hop: &HostConfig) -> String {
    format!("{} ({}@{}:{})", hop.alias, hop.user, hop.hostname, hop.port)
}

/// Identifies a hop path: jump sessions are shared by hosts whose hops
/// are the same users at the same addresses.
fn path_key(hops: &[HostConfig]) -> String {
    let parts: Vec<String> = hops
        .iter()
        .map(|h| format!("{}@{}:{}", h.user, h.hostname, h.port))
        .collect();
    parts.join(" > ")
}

#[derive(Default)]
struct Entry {
    carriers: Vec<Weak<Carrier>>,
    /// A jump session for this path is being opened; others wait for it
    /// rather than each open their own.
    connecting: bool,
}

/// Takes a place under the connection pool's bound for a new jump
/// session, waiting at most until the deadline; the error says why not.
pub type PlaceTaker = dyn Fn(Instant) -> Result<Place, String> + Send + Sync;

/// The registry of jump sessions, shared by all connects.
pub struct Jumps {
    resolve: Box<Resolver>,
    entries: Mutex<HashMap<String, Entry>>,
    changed: Condvar,
    /// Set once the pool exists (it owns the manager that owns this).
    places: OnceLock<Box<PlaceTaker>>,
}

impl std::fmt::Debug for Jumps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jumps").field("live", &self.live()).finish()
    }
}

impl Jumps {
    pub fn new(resolve: impl Fn(&str) -> HostConfig + Send + Sync + 'static) -> Jumps {
        Jumps {
            resolve: Box::new(resolve),
            entries: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
            places: OnceLock::new(),
        }
    }

    /// Makes every jump session opened from now on hold a place under the
    /// connection pool's bound, so that SCOUT_MAX_POOL_SIZE counts them
    /// like any other connection. Later calls are ignored.
    pub fn count_in(
        &self,
        take: impl Fn(Instant) -> Result<Place, String> + Send + Sync + 'static,
    ) {
        let _ = self.places.set(Box::new(take));
    }

    fn take_place(&self, hop: &HostConfig, deadline: Instant) -> Result<Option<Place>, SshError> {
        let Some(take) = self.places.get() else {
            return Ok(None);
        };
        take(deadline).map(Some).map_err(|why| {
            SshError::new(
                ErrorKind::Timeout,
                format!("{}: no room for a jump session: {why}", describe(hop)),
            )
        })
    }

    /// Jump sessions open right now, over all hop paths.
    pub fn live(&self) -> usize {
        let entries = self.entries.lock();
        entries
            .values()
            .flat_map(|e| e.carriers.iter())
            .filter(|c| c.upgrade().is_some_and(|c| c.usable()))
            .count()
    }

    /// A jump session for `hops` with room for one more tunnel: a shared
    /// one if any, else a new one (opening the hops before it first).
    fn carrier(
        &self,
        hops: &[HostConfig],
        opts: &ConnectOptions,
        deadline: Instant,
    ) -> Result<Arc<Carrier>, SshError> {
        let key = path_key(hops);
        {
            let mut entries = self.entries.lock();
            loop {
                let entry = entries.entry(key.clone()).or_default();
                entry
                    .carriers
                    .retain(|c| c.upgrade().is_some_and(|c| c.usable()));
                let shared = entry
                    .carriers
                    .iter()
                    .filter_map(Weak::upgrade)
                    .find(|c| c.tunnels() < TUNNELS_PER_JUMP);
                if let Some(carrier) = shared {
                    return Ok(carrier);
                }
                if !entry.connecting {
                    entry.connecting = true;
                    break;
                }
                if self.changed.wait_until(&mut entries, deadline).timed_out() {
                    let hop = hops.last().map(describe).unwrap_or_default();
                    return Err(SshError::new(
                        ErrorKind::Timeout,
                        format!("{hop}: timed out waiting for the connect to this jump host"),
                    ));
                }
            }
        }
        // No lock held while connecting.
        let result = self.open_carrier(hops, opts, deadline);
        let mut entries = self.entries.lock();
        let entry = entries.entry(key).or_default();
        entry.connecting = false;
        if let Ok(carrier) = &result {
            entry.carriers.push(Arc::downgrade(carrier));
        }
        drop(entries);
        self.changed.notify_all();
        result
    }

    fn open_carrier(
        &self,
        hops: &[HostConfig],
        opts: &ConnectOptions,
        deadline: Instant,
    ) -> Result<Arc<Carrier>, SshError> {
        let (hop, before) = match hops.split_last() {
            Some(split) => split,
            None => {
                return Err(SshError::new(ErrorKind::Config, "an empty jump host chain"));
            }
        };
        let place = self.take_place(hop, deadline)?;
        let session = if before.is_empty() {
            connect_direct(hop, opts, deadline)?
        } else {
            let upstream = self.carrier(before, opts, deadline)?;
            let stream = upstream.open(&hop.hostname, hop.port, deadline)?;
            connect_tunneled(hop, opts, stream, upstream, deadline)?
        };
        log::debug!("{}: jump session open", describe(hop));
        Carrier::start(session, describe(hop), place)
    }
}

/// Opens a session to `target` through the jump hosts of its ProxyJump.
pub fn connect(
    target: &HostConfig,
    opts: &ConnectOptions,
    deadline: Instant,
) -> Result<SshSession, SshError> {
    let own;
    let jumps = match &opts.jumps {
        Some(jumps) => jumps.as_ref(),
        None => {
            own = Jumps::new(literal_hop);
            &own
        }
    };
    let chain = target.proxy_jump.as_deref().unwrap_or_default();
    let hops = plan(target, jumps.resolve.as_ref()).map_err(|why| {
        SshError::new(
            ErrorKind::Config,
            format!("{}: ProxyJump {chain}: {why}", target.alias),
        )
    })?;
    let names: Vec<&str> = hops.iter().map(|h| h.alias.as_str()).collect();
    let via = format!("{}: via jump {}", target.alias, names.join(" -> "));
    let wrap = |e: SshError| SshError::new(e.kind, format!("{via}: {}", e.message));
    let carrier = jumps.carrier(&hops, opts, deadline).map_err(wrap)?;
    let stream = carrier
        .open(&target.hostname, target.port, deadline)
        .map_err(wrap)?;
    connect_tunneled(target, opts, stream, carrier, deadline).map_err(wrap)
}

/// A hop name with no ssh config to look it up in: the name is the
/// address, with ssh's defaults for the rest.
fn literal_hop(name: &str) -> HostConfig {
    HostConfig {
        alias: name.to_string(),
        hostname: name.to_string(),
        port: 22,
        user: crate::config::local_user(),
        identity_files: Vec::new(),
        identities_only: false,
        proxy_jump: None,
        connect_timeout: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(user: Option<&str>, host: &str, port: Option<u16>) -> HopSpec {
        HopSpec {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn parses_hops_in_every_form() {
        assert_eq!(
            parse_chain("a@j1:2222, j2 ,ssh://b@[::1]:22,[fe80::1],ssh://j3/").unwrap(),
            vec![
                hop(Some("a"), "j1", Some(2222)),
                hop(None, "j2", None),
                hop(Some("b"), "::1", Some(22)),
                hop(None, "fe80::1", None),
                hop(None, "j3", None),
            ]
        );
        assert_eq!(
            parse_chain("x@y@h").unwrap(),
            vec![hop(Some("x@y"), "h", None)]
        );
    }

    #[test]
    fn rejects_bad_hops() {
        for bad in ["", "a,,b", "@h", "h:0", "h:port", "u@", "[::1", "[::1]x"] {
            assert!(parse_chain(bad).is_err(), "{bad:?} should be refused");
        }
    }

    /// A config where `bastion` and `inner` are aliases with their own
    /// settings and ProxyJumps.
    fn resolver(name: &str) -> HostConfig {
        let mut h = literal_hop(name);
        match name {
            "bastion" => {
                h.hostname = "10.0.0.1".into();
                h.user = "ops".into();
                h.proxy_jump = Some("outer".into());
            }
            "inner" => {
                h.hostname = "10.1.0.1".into();
                h.port = 2222;
                h.proxy_jump = Some("ignored".into());
            }
            "self" => h.proxy_jump = Some("self".into()),
            _ => {}
        }
        h
    }

    fn target(chain: &str) -> HostConfig {
        let mut t = literal_hop("t");
        t.proxy_jump = Some(chain.into());
        t
    }

    fn aliases(hops: &[HostConfig]) -> Vec<String> {
        hops.iter().map(|h| h.alias.clone()).collect()
    }

    #[test]
    fn first_hop_follows_its_own_proxy_jump_later_hops_do_not() {
        let hops = plan(&target("bastion,inner"), &resolver).unwrap();
        assert_eq!(aliases(&hops), ["outer", "bastion", "inner"]);
        assert_eq!(
            (hops[1].hostname.as_str(), hops[1].user.as_str()),
            ("10.0.0.1", "ops")
        );
        assert_eq!(
            (hops[2].hostname.as_str(), hops[2].port),
            ("10.1.0.1", 2222)
        );
        assert!(hops.iter().all(|h| h.proxy_jump.is_none()));
    }

    #[test]
    fn user_and_port_in_the_hop_override_the_config() {
        let hops = plan(&target("root@bastion:2200"), &resolver).unwrap();
        assert_eq!(aliases(&hops), ["outer", "bastion"]);
        assert_eq!((hops[1].user.as_str(), hops[1].port), ("root", 2200));
        assert_eq!(hops[1].hostname, "10.0.0.1");
    }

    #[test]
    fn a_loop_is_refused_with_the_path_named() {
        let err = plan(&target("self"), &resolver).unwrap_err();
        assert!(
            err.contains("ProxyJump loop") && err.contains("self -> self"),
            "{err}"
        );
        let long = ["h"; MAX_HOPS + 1].join(",");
        assert!(plan(&target(&long), &resolver).is_err());
        let fine = ["h"; MAX_HOPS].join(",");
        assert_eq!(plan(&target(&fine), &resolver).unwrap().len(), MAX_HOPS);
    }

    #[test]
    fn hops_with_the_same_user_and_address_share_a_key() {
        let a = plan(&target("bastion"), &resolver).unwrap();
        let b = plan(&target("ops@10.0.0.1"), &resolver).unwrap();
        assert_eq!(path_key(&a[1..]), path_key(&b));
        assert_ne!(path_key(&a), path_key(&b));
    }
}
