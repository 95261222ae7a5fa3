//! Diagnosing one host: the steps of [`connect`](super::connect) taken
//! one at a time with the same step functions, then an SFTP round trip
//! and a command, each timed, stopping at the first that fails. This is
//! what `scout-mcp check` reports; a pooled connect would only say
//! "failed" with the cause, not how far it got.

use super::auth::authenticate;
use super::error::{from_io, from_ssh2, ErrorKind, SshError};
use super::host_key::Peer;
use super::latency::Timeout;
use super::session::{
    connect, connect_addrs, connect_budget, handshake_with_retries, millis_until, resolve,
    start_sftp, Link,
};
use super::tunnel::Socket;
use super::{ConnectOptions, SshSession};
use crate::config::HostConfig;
use ssh2::Session;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// One step of reaching a host, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The host is not one scout may use (unknown alias, unsupported setting).
    Config,
    Resolve,
    Tcp,
    /// The SSH handshake (banner, key exchange).
    Handshake,
    /// The server's key against known_hosts.
    HostKey,
    Auth,
    /// The whole connect at once, for hosts reached through ProxyJump,
    /// whose hops cannot be taken apart here.
    Connect,
    /// Opening the SFTP subsystem and a stat of the login directory.
    Sftp,
    /// Running `true` on the remote shell.
    Exec,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Config => "config",
            Step::Resolve => "resolve",
            Step::Tcp => "tcp",
            Step::Handshake => "handshake",
            Step::HostKey => "host key",
            Step::Auth => "auth",
            Step::Connect => "connect",
            Step::Sftp => "sftp",
            Step::Exec => "exec",
        }
    }

    /// The step a whole-connect failure most likely belongs to.
    fn of_error(kind: ErrorKind) -> Step {
        match kind {
            ErrorKind::Resolve => Step::Resolve,
            ErrorKind::Refused => Step::Tcp,
            ErrorKind::HostKeyUnknown | ErrorKind::HostKeyChanged => Step::HostKey,
            ErrorKind::Auth => Step::Auth,
            ErrorKind::Handshake => Step::Handshake,
            ErrorKind::Config => Step::Config,
            _ => Step::Connect,
        }
    }
}

/// How far a check of one host got.
#[derive(Debug)]
pub struct CheckReport {
    pub alias: String,
    /// The ProxyJump the host is reached through, if any.
    pub via: Option<String>,
    /// The steps that passed, in order, with their durations.
    pub passed: Vec<(Step, Duration)>,
    /// The step that failed and why; `None` when every step passed.
    pub failure: Option<(Step, SshError)>,
}

impl CheckReport {
    /// A check that failed before reaching the network.
    pub fn refused(alias: &str, why: impl Into<String>) -> CheckReport {
        CheckReport {
            alias: alias.to_string(),
            via: None,
            passed: Vec::new(),
            failure: Some((Step::Config, SshError::new(ErrorKind::Config, why))),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }

    /// Runs `f` as `step`: records its duration when it succeeds, or the
    /// failure (and nothing after it runs, since the caller stops on `None`).
    fn step<T>(&mut self, step: Step, f: impl FnOnce() -> Result<T, SshError>) -> Option<T> {
        let started = Instant::now();
        match f() {
            Ok(value) => {
                self.passed.push((step, started.elapsed()));
                Some(value)
            }
            Err(e) => {
                self.failure = Some((step, e));
                None
            }
        }
    }
}

/// Checks `host` step by step. Every step is bounded by the connect
/// timeout (the host's ConnectTimeout when lower), the SFTP and exec
/// steps by the per-call timeout, so a check always ends.
pub fn check(host: &HostConfig, opts: &ConnectOptions) -> CheckReport {
    let mut report = CheckReport {
        alias: host.alias.clone(),
        via: host.proxy_jump.clone(),
        passed: Vec::new(),
        failure: None,
    };
    if host.proxy_jump.is_some() {
        if let Some(session) = through_jump(host, opts, &mut report) {
            let fd = session.socket_fd();
            use_session(session.session(), fd, host, opts.io_timeout, &mut report);
            session.disconnect();
        }
    } else if let Some((session, socket)) = direct(host, opts, &mut report) {
        use_session(
            &session,
            socket.as_raw_fd(),
            host,
            opts.io_timeout,
            &mut report,
        );
        session.set_timeout(1000);
        let _ = session.disconnect(None, "check done", None);
    }
    report
}

/// The direct connect of [`connect`], one step at a time, with the
/// configured timeouts (a check has no latency history to adapt to).
fn direct(
    host: &HostConfig,
    opts: &ConnectOptions,
    report: &mut CheckReport,
) -> Option<(Session, Socket)> {
    let configured = connect_budget(host, opts);
    let timeout = Timeout::configured(configured);
    let latency = opts.latencies.host(&host.alias);
    let addrs = report.step(Step::Resolve, || resolve(host, Instant::now() + configured))?;
    let stream = report.step(Step::Tcp, || {
        let deadline = Instant::now() + configured;
        connect_addrs(host, &addrs, deadline, &timeout, Some(&latency))
    })?;
    let peer = Peer {
        alias: &host.alias,
        hostname: &host.hostname,
        port: host.port,
    };
    let ssh_deadline = Instant::now() + configured;
    let link = Link {
        tcp: &timeout,
        setup: &timeout,
        latency: &latency,
    };
    let (session, socket) = report.step(Step::Handshake, || {
        handshake_with_retries(host, &peer, stream, ssh_deadline, &link)
    })?;
    report.step(Step::HostKey, || opts.host_keys.verify(&session, &peer))?;
    session.set_timeout(millis_until(ssh_deadline));
    report.step(Step::Auth, || authenticate(&session, host, opts))?;
    Some((session, socket))
}

/// Hosts behind a ProxyJump go through the normal connect in one step;
/// a failure is attributed to a step by its kind.
fn through_jump(
    host: &HostConfig,
    opts: &ConnectOptions,
    report: &mut CheckReport,
) -> Option<SshSession> {
    // Each hop may take the connect timeout twice (TCP, then SSH).
    let deadline = Instant::now() + connect_budget(host, opts) * 4;
    let started = Instant::now();
    match connect(host, opts, deadline) {
        Ok(session) => {
            report.passed.push((Step::Connect, started.elapsed()));
            Some(session)
        }
        Err(e) => {
            report.failure = Some((Step::of_error(e.kind), e));
            None
        }
    }
}

/// The two things every scout request needs besides a login: SFTP and
/// a remote shell.
fn use_session(
    session: &Session,
    fd: RawFd,
    host: &HostConfig,
    io_timeout: Duration,
    report: &mut CheckReport,
) {
    let alias = &host.alias;
    session.set_timeout(millis_until(Instant::now() + io_timeout));
    let sftp_ok = report.step(Step::Sftp, || {
        let sftp = start_sftp(session, fd, Instant::now() + io_timeout)
            .map_err(|e| from_ssh2(&format!("{alias}: cannot start SFTP"), &e))?;
        sftp.stat(Path::new("."))
            .map_err(|e| from_ssh2(&format!("{alias}: SFTP stat of the login directory"), &e))
    });
    if sftp_ok.is_none() {
        return;
    }
    session.set_timeout(millis_until(Instant::now() + io_timeout));
    report.step(Step::Exec, || run_true(session, alias));
}

/// Output a login shell may print before `true` runs (a banner, a
/// noisy start-up file) that is read and dropped.
const MAX_NOISE: u64 = 1 << 20;

fn run_true(session: &Session, alias: &str) -> Result<(), SshError> {
    let context = format!("{alias}: running `true`");
    let fail = |e: ssh2::Error| from_ssh2(&context, &e);
    let mut channel = session.channel_session().map_err(fail)?;
    channel.exec("true").map_err(fail)?;
    std::io::copy(&mut (&mut channel).take(MAX_NOISE), &mut std::io::sink())
        .map_err(|e| from_io(&context, &e))?;
    channel.wait_close().map_err(fail)?;
    match channel.exit_status().map_err(fail)? {
        0 => Ok(()),
        status => Err(SshError::new(
            ErrorKind::Remote,
            format!(
                "{context}: it exited with status {status}; the account's login shell or its \
                 start-up files may be broken"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_connect_failures_are_attributed_to_their_step() {
        let cases = [
            (ErrorKind::Resolve, Step::Resolve),
            (ErrorKind::Refused, Step::Tcp),
            (ErrorKind::HostKeyChanged, Step::HostKey),
            (ErrorKind::HostKeyUnknown, Step::HostKey),
            (ErrorKind::Auth, Step::Auth),
            (ErrorKind::Handshake, Step::Handshake),
            (ErrorKind::Config, Step::Config),
            (ErrorKind::Timeout, Step::Connect),
            (ErrorKind::Disconnected, Step::Connect),
        ];
        for (kind, step) in cases {
            assert_eq!(Step::of_error(kind), step, "{kind:?}");
        }
    }

    #[test]
    fn a_step_stops_the_check_at_the_first_failure() {
        let mut report = CheckReport::refused("web", "x");
        report.failure = None;
        assert_eq!(report.step(Step::Resolve, || Ok(1)), Some(1));
        let failed: Option<()> = report.step(Step::Tcp, || {
            Err(SshError::new(ErrorKind::Refused, "web: refused"))
        });
        assert!(failed.is_none());
        assert_eq!(report.passed.len(), 1);
        assert_eq!(report.passed[0].0, Step::Resolve);
        assert!(matches!(&report.failure, Some((Step::Tcp, e)) if e.message == "web: refused"));
        assert!(!report.is_ok());
    }
}
