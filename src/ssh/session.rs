//! Opening an SSH session: resolve, TCP connect, handshake, host key
//! check, authentication — each step under a deadline.

use super::auth::authenticate;
use super::error::{from_ssh2, ErrorKind, SshError};
use super::host_key::{HostKeyPolicy, Peer};
use super::jump::Jumps;
use super::latency::{HostEstimates, Latencies, Timeout};
use super::tunnel::{Carrier, Socket};
use crate::config::HostConfig;
use ssh2::{Session, Sftp};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a connect needs besides the host itself.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Budget for the TCP connect, and again for handshake + auth.
    pub connect_timeout: Duration,
    /// Budget for each later libssh2 call (an SFTP request, a channel open).
    pub io_timeout: Duration,
    pub host_keys: HostKeyPolicy,
    /// The ssh-agent socket (SSH_AUTH_SOCK), if there is one.
    pub agent_socket: Option<PathBuf>,
    /// Tried when a host names no IdentityFile, as OpenSSH does.
    pub default_keys: Vec<PathBuf>,
    /// Derive per-host timeouts from observed latency (SCOUT_ADAPTIVE_TIMEOUTS).
    pub adaptive_timeouts: bool,
    /// Observed latency per host; kept whether or not timeouts adapt.
    pub latencies: Arc<Latencies>,
    /// Jump sessions shared by the hosts behind them, and how hop names
    /// resolve. `None`: each ProxyJump connect gets jump sessions of its
    /// own, and hop names are taken literally (no ssh config).
    pub jumps: Option<Arc<Jumps>>,
}

impl ConnectOptions {
    /// Each tracked host's round-trip estimate and per-call timeout, for metrics.
    pub fn latency_snapshot(&self) -> Vec<super::latency::HostLatency> {
        self.latencies
            .snapshot(self.io_timeout, self.adaptive_timeouts)
    }
}

/// A connected, authenticated session with its lazily opened SFTP handle.
pub struct SshSession {
    // Field order matters: the SFTP handle must be shut down before the
    // session it lives on.
    sftp: Option<Sftp>,
    session: Session,
    /// A second handle on the session's socket, for liveness checks and
    /// for waiting on it while the session is in non-blocking mode.
    socket: Socket,
    label: String,
    io_timeout: Duration,
    /// This host's latency estimates: fed by single-request round trips,
    /// read by every call timeout.
    latency: Arc<HostEstimates>,
    adaptive: bool,
    /// The per-call timeout last applied, to explain a timeout error.
    applied: parking_lot::Mutex<Timeout>,
    /// Set when an operation left the session in an unknown state.
    poisoned: bool,
    /// The jump session this one's socket is tunnelled through, kept
    /// alive while this session lives. Last, so it goes after `session`.
    _tunnel: Option<Arc<Carrier>>,
}

impl SshSession {
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The alias this session was opened for, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn socket_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }

    /// The SFTP channel of this session, opened on first use and kept.
    pub fn sftp(&mut self) -> Result<&Sftp, SshError> {
        if self.sftp.is_none() {
            let sftp = self.start_sftp().map_err(|e| {
                let mut err = from_ssh2(&format!("{}: cannot start SFTP", self.label), &e);
                if err.kind == ErrorKind::Remote {
                    err.kind = ErrorKind::Channel;
                }
                err
            })?;
            self.sftp = Some(sftp);
        }
        // Set just above.
        self.sftp
            .as_ref()
            .ok_or_else(|| SshError::new(ErrorKind::Channel, "SFTP unavailable"))
    }

    fn start_sftp(&self) -> Result<Sftp, ssh2::Error> {
        let budget = self.applied.lock().budget;
        start_sftp(&self.session, self.socket_fd(), Instant::now() + budget)
    }

    /// Sleeps until the session's socket is ready in the direction libssh2
    /// is blocked on, at most 100 ms and never past `deadline` (for calls
    /// driven in non-blocking mode).
    pub fn wait_socket(&self, deadline: Instant) {
        wait_socket(&self.session, self.socket_fd(), deadline);
    }

    /// Applies the per-call libssh2 timeout for calls that wait for one
    /// answer (adaptive when enabled), shortened to fit `deadline`.
    pub fn set_call_timeout(&self, deadline: Option<Instant>) {
        let timeout = if self.adaptive {
            self.latency.call_timeout(self.io_timeout)
        } else {
            Timeout::configured(self.io_timeout)
        };
        self.apply(timeout, deadline);
    }

    /// Applies the configured per-call timeout, for calls whose duration
    /// depends on bandwidth or the remote disk rather than on latency
    /// (writing a chunk of a transfer, fsync, the close that follows).
    pub fn set_bulk_call_timeout(&self, deadline: Option<Instant>) {
        self.apply(Timeout::configured(self.io_timeout), deadline);
    }

    fn apply(&self, timeout: Timeout, deadline: Option<Instant>) {
        let timeout = match deadline {
            Some(d) => timeout.within(d.saturating_duration_since(Instant::now())),
            None => timeout,
        };
        self.session.set_timeout(millis(timeout.budget));
        *self.applied.lock() = timeout;
    }

    /// Adds to a timeout error how long was waited and why that long.
    pub fn explain_timeout(&self, mut err: SshError) -> SshError {
        if err.kind == ErrorKind::Timeout {
            err.message = format!("{}: {}", err.message, self.applied.lock().describe());
        }
        err
    }

    /// This host's latency estimates, to time single-request round trips
    /// while the SFTP handle is borrowed.
    pub fn sftp_timed(&mut self) -> Result<(&Sftp, &HostEstimates), SshError> {
        self.sftp()?;
        let sftp = self
            .sftp
            .as_ref()
            .ok_or_else(|| SshError::new(ErrorKind::Channel, "SFTP unavailable"))?;
        Ok((sftp, &self.latency))
    }

    /// Whether the server is still there, judged without a round trip:
    /// a closed or reset socket shows up as EOF or an error on peek.
    pub fn is_alive(&self) -> bool {
        let mut byte = [0u8; 1];
        match self.socket.peek(&mut byte) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }

    /// Proves with one SFTP round trip (opening the SFTP channel first if
    /// the session has none) that the server still answers, each call
    /// bounded by `timeout`; the usual call timeout is restored after. A
    /// socket peek cannot tell a peer that vanished without a FIN or RST
    /// from one with nothing to say; only an unanswered request can.
    pub fn check_health(&mut self, timeout: Duration) -> Result<(), SshError> {
        if !self.is_alive() {
            return Err(SshError::new(
                ErrorKind::Disconnected,
                format!("{}: the server closed the connection", self.label),
            ));
        }
        self.session.set_timeout(millis(timeout));
        let result = self.stat_home();
        self.set_call_timeout(None);
        result
    }

    fn stat_home(&mut self) -> Result<(), SshError> {
        let label = self.label.clone();
        let (sftp, latency) = self.sftp_timed()?;
        let started = Instant::now();
        match sftp.stat(std::path::Path::new(".")) {
            // A status reply (say, the home directory is missing) is
            // still an answer: the connection works. Either way it is a
            // fresh round-trip sample for the adaptive timeouts.
            Ok(_) => {
                latency.observe_round_trip(started.elapsed());
                Ok(())
            }
            Err(e) if matches!(e.code(), ssh2::ErrorCode::SFTP(_)) => {
                latency.observe_round_trip(started.elapsed());
                Ok(())
            }
            Err(e) => Err(from_ssh2(
                &format!("{label}: health check (SFTP stat of the login directory)"),
                &e,
            )),
        }
    }

    /// Marks the session as unfit for reuse (e.g. a command was cut off
    /// mid-stream); the pool closes it instead of keeping it.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Says goodbye politely, within a short timeout.
    pub fn disconnect(mut self) {
        self.session.set_timeout(1000);
        self.sftp.take();
        let _ = self.session.disconnect(None, "closing", None);
    }
}

/// Opens a session to `host`, giving up at `deadline` at the latest.
pub fn connect(
    host: &HostConfig,
    opts: &ConnectOptions,
    deadline: Instant,
) -> Result<SshSession, SshError> {
    if host.proxy_jump.is_some() {
        return super::jump::connect(host, opts, deadline);
    }
    connect_direct(host, opts, deadline)
}

/// Opens a session straight to `host` over TCP, ignoring its ProxyJump
/// (the first hop of a jump chain is reached this way).
pub(crate) fn connect_direct(
    host: &HostConfig,
    opts: &ConnectOptions,
    deadline: Instant,
) -> Result<SshSession, SshError> {
    let peer = peer_of(host);
    let configured = connect_budget(host, opts);
    let latency = opts.latencies.host(&host.alias);
    let (tcp, setup) = if opts.adaptive_timeouts {
        (
            latency.connect_timeout(configured),
            latency.setup_timeout(configured),
        )
    } else {
        (
            Timeout::configured(configured),
            Timeout::configured(configured),
        )
    };
    // Name resolution keeps the configured budget: a resolver's retries
    // have nothing to do with this host's round trips.
    let tcp_deadline = deadline.min(Instant::now() + configured);
    let stream = open_tcp(host, tcp_deadline, &tcp, Some(&latency))?;
    let started = Instant::now();
    let setup = setup.within(deadline.saturating_duration_since(started));
    let ssh_deadline = started + setup.budget;
    let link = Link {
        tcp: &tcp,
        setup: &setup,
        latency: &latency,
    };
    let (session, socket) = handshake_with_retries(host, &peer, stream, ssh_deadline, &link)?;
    opts.host_keys.verify(&session, &peer)?;
    session.set_timeout(millis_until(ssh_deadline));
    authenticate(&session, host, opts).map_err(|mut e| {
        if e.kind == ErrorKind::Timeout {
            e.message = format!("{}: {}", e.message, setup.describe());
        }
        e
    })?;
    latency.observe_setup(started.elapsed());
    Ok(ready_session(session, socket, host, opts, latency, None))
}

/// Opens a session to `host` over `stream`, a tunnel through `carrier`
/// (see `jump`): handshake, host key check against `host`'s own name and
/// port, authentication, each before `deadline`. No handshake retries: a
/// tunnel is not a listening port under a connect storm.
pub(crate) fn connect_tunneled(
    host: &HostConfig,
    opts: &ConnectOptions,
    stream: UnixStream,
    carrier: Arc<Carrier>,
    deadline: Instant,
) -> Result<SshSession, SshError> {
    let peer = peer_of(host);
    let configured = connect_budget(host, opts);
    let latency = opts.latencies.host(&host.alias);
    let started = Instant::now();
    let setup = Timeout::configured(configured).within(deadline.saturating_duration_since(started));
    let ssh_deadline = started + setup.budget;
    let socket = stream.try_clone().map_err(|e| {
        SshError::new(
            ErrorKind::Disconnected,
            format!("{}: cannot use the tunnel socket: {e}", host.alias),
        )
    })?;
    let session = handshake(stream, &peer, ssh_deadline, &setup).map_err(|e| e.error)?;
    opts.host_keys.verify(&session, &peer)?;
    session.set_timeout(millis_until(ssh_deadline));
    authenticate(&session, host, opts)?;
    latency.observe_setup(started.elapsed());
    let socket = Socket::Unix(socket);
    Ok(ready_session(
        session,
        socket,
        host,
        opts,
        latency,
        Some(carrier),
    ))
}

fn peer_of(host: &HostConfig) -> Peer<'_> {
    Peer {
        alias: &host.alias,
        hostname: &host.hostname,
        port: host.port,
    }
}

/// SCOUT_CONNECT_TIMEOUT, or the host's own ConnectTimeout when shorter.
pub(super) fn connect_budget(host: &HostConfig, opts: &ConnectOptions) -> Duration {
    host.connect_timeout
        .map_or(opts.connect_timeout, |t| t.min(opts.connect_timeout))
}

/// An authenticated session, ready for the pool.
fn ready_session(
    session: Session,
    socket: Socket,
    host: &HostConfig,
    opts: &ConnectOptions,
    latency: Arc<HostEstimates>,
    tunnel: Option<Arc<Carrier>>,
) -> SshSession {
    // No keepalive interval outside keepalive(): while one is set, libssh2
    // ends every blocking wait at the next keepalive time (at most 2 s) with
    // a timeout error, whatever the call's own timeout.
    session.set_keepalive(false, 0);
    SshSession {
        sftp: None,
        session,
        socket,
        label: host.alias.clone(),
        io_timeout: opts.io_timeout,
        latency,
        adaptive: opts.adaptive_timeouts,
        applied: parking_lot::Mutex::new(Timeout::configured(opts.io_timeout)),
        poisoned: false,
        _tunnel: tunnel,
    }
}

/// The budgets of one connect and where its round trips are recorded.
pub(super) struct Link<'a> {
    pub(super) tcp: &'a Timeout,
    pub(super) setup: &'a Timeout,
    pub(super) latency: &'a HostEstimates,
}

fn millis(d: Duration) -> u32 {
    // libssh2 treats 0 as "no timeout": never pass it.
    d.as_millis().clamp(1, u128::from(u32::MAX)) as u32
}

pub(super) fn millis_until(deadline: Instant) -> u32 {
    millis(deadline.saturating_duration_since(Instant::now()))
}

/// Resolves `host` and connects to its addresses in turn, each attempt
/// within `attempt` and all of it before `deadline`.
fn open_tcp(
    host: &HostConfig,
    deadline: Instant,
    attempt: &Timeout,
    latency: Option<&HostEstimates>,
) -> Result<TcpStream, SshError> {
    let addrs = resolve(host, deadline)?;
    connect_addrs(host, &addrs, deadline, attempt, latency)
}

/// Connects to `addrs` in turn (`host` names them in errors). A
/// connect's time is one round trip (SYN, SYN-ACK): it is recorded in
/// `latency`.
pub(super) fn connect_addrs(
    host: &HostConfig,
    addrs: &[SocketAddr],
    deadline: Instant,
    attempt: &Timeout,
    latency: Option<&HostEstimates>,
) -> Result<TcpStream, SshError> {
    let mut last = None;
    let mut waited = *attempt;
    for addr in addrs {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        waited = attempt.within(remaining);
        let started = Instant::now();
        match TcpStream::connect_timeout(addr, waited.budget) {
            Ok(stream) => {
                if let Some(latency) = latency {
                    latency.observe_round_trip(started.elapsed());
                }
                // Without it every request/response turn waits ~40 ms for
                // delayed ACKs (DESIGN §3).
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some((*addr, e)),
        }
    }
    let mut err = tcp_error(host, last);
    if err.kind == ErrorKind::Timeout {
        err.message = format!("{}: {}", err.message, waited.describe());
    }
    Err(err)
}

fn tcp_error(host: &HostConfig, last: Option<(SocketAddr, std::io::Error)>) -> SshError {
    let who = format!("{} ({}:{})", host.alias, host.hostname, host.port);
    match last {
        Some((addr, e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => SshError::new(
            ErrorKind::Refused,
            format!("{who}: connection refused at {addr}: is sshd running on that port?"),
        ),
        Some((addr, e)) if e.kind() == std::io::ErrorKind::TimedOut => SshError::new(
            ErrorKind::Timeout,
            format!("{who}: TCP connect to {addr} timed out"),
        ),
        Some((addr, e)) => SshError::new(
            ErrorKind::Disconnected,
            format!("{who}: cannot connect to {addr}: {e}"),
        ),
        None => SshError::new(ErrorKind::Timeout, format!("{who}: TCP connect timed out")),
    }
}

/// Resolves the host name. getaddrinfo has no timeout of its own, so a
/// name (not an IP literal) is resolved on a helper thread that we stop
/// waiting for at the deadline.
pub(super) fn resolve(host: &HostConfig, deadline: Instant) -> Result<Vec<SocketAddr>, SshError> {
    if let Ok(ip) = host.hostname.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, host.port)]);
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let name = (host.hostname.clone(), host.port);
    let spawned = std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let _ = tx.send(name.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
        });
    let who = format!("{} ({})", host.alias, host.hostname);
    if let Err(e) = spawned {
        return Err(SshError::new(
            ErrorKind::Resolve,
            format!("{who}: cannot resolve: {e}"),
        ));
    }
    match rx.recv_deadline(deadline) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(SshError::new(
            ErrorKind::Resolve,
            format!("{who}: the name resolves to no address"),
        )),
        Ok(Err(e)) => Err(SshError::new(
            ErrorKind::Resolve,
            format!("{who}: cannot resolve the host name: {e}"),
        )),
        Err(_) => Err(SshError::new(
            ErrorKind::Timeout,
            format!("{who}: resolving the host name timed out"),
        )),
    }
}

/// Handshakes attempted at most per connect, counting the first.
const HANDSHAKE_ATTEMPTS: u32 = 6;

/// Runs the SSH handshake on `stream`. When the server drops the
/// connection before the handshake completes (sshd past `MaxStartups`
/// closes new connections at once), waits a little and tries again on a
/// new TCP connection, a few times and never past `deadline`. Nothing has
/// been authenticated yet, so a retry cannot look like a login failure
/// to the server (OpenSSH penalises those); timeouts, refusals and
/// key-exchange failures are not retried.
pub(super) fn handshake_with_retries(
    host: &HostConfig,
    peer: &Peer,
    mut stream: TcpStream,
    deadline: Instant,
    link: &Link,
) -> Result<(Session, Socket), SshError> {
    let mut attempt = 1;
    loop {
        let socket = stream
            .try_clone()
            .map_err(|e| SshError::new(ErrorKind::Disconnected, format!("{}: {e}", host.alias)))?;
        let err = match handshake(stream, peer, deadline, link.setup) {
            Ok(session) => return Ok((session, Socket::Tcp(socket))),
            Err(HandshakeError { error, dropped }) if dropped => error,
            Err(HandshakeError { error, .. }) => return Err(error),
        };
        drop(socket);
        let pause = backoff(attempt);
        if attempt >= HANDSHAKE_ATTEMPTS || Instant::now() + pause >= deadline {
            return Err(err);
        }
        log::debug!("{err}; retrying in {pause:?} (attempt {attempt} of {HANDSHAKE_ATTEMPTS})");
        std::thread::sleep(pause);
        attempt += 1;
        stream = open_tcp(host, deadline, link.tcp, Some(link.latency))?;
    }
}

/// 50, 100, 200, 400, 800 ms, plus up to half as much again of jitter, so that
/// connects refused together do not come back together.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64 << (attempt - 1).min(6);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jitter = u64::from(nanos.wrapping_mul(0x9e37_79b9)) % (base / 2 + 1);
    Duration::from_millis(base + jitter)
}

struct HandshakeError {
    error: SshError,
    /// The server closed or reset the connection before the handshake
    /// completed: worth another try.
    dropped: bool,
}

fn handshake<S: AsRawFd + 'static>(
    stream: S,
    peer: &Peer,
    deadline: Instant,
    budget: &Timeout,
) -> Result<Session, HandshakeError> {
    let who = format!("{} ({}:{})", peer.alias, peer.hostname, peer.port);
    let mut session = Session::new().map_err(|e| HandshakeError {
        error: from_ssh2(&who, &e),
        dropped: false,
    })?;
    #[cfg(feature = "legacy-sha1")]
    super::legacy::allow_sha1(&session, &who).map_err(|error| HandshakeError {
        error,
        dropped: false,
    })?;
    session.set_tcp_stream(stream);
    session.set_timeout(millis_until(deadline));
    session.handshake().map_err(|e| {
        let mut err = from_ssh2(&format!("{who}: SSH handshake failed"), &e);
        if err.kind == ErrorKind::Timeout {
            err.message = format!(
                "{who}: SSH handshake timed out: the port accepts TCP but the server did not \
                 complete the SSH handshake in time: {}",
                budget.describe()
            );
        }
        let dropped = dropped_before_handshake(&e);
        if dropped {
            err.message = format!(
                "{who}: SSH handshake failed: the server closed the connection before the \
                 handshake completed ({}); it may be overloaded (sshd MaxStartups) or not an \
                 SSH server",
                e.message()
            );
        }
        HandshakeError {
            dropped,
            error: err,
        }
    })?;
    Ok(session)
}

/// Whether a handshake failed because the connection was closed or reset
/// under it (libssh2 banner and socket errors), not because of a timeout
/// or a disagreement about algorithms.
fn dropped_before_handshake(e: &ssh2::Error) -> bool {
    use super::error::code::*;
    matches!(
        e.code(),
        ssh2::ErrorCode::Session(
            SOCKET_NONE | BANNER_RECV | BANNER_SEND | SOCKET_SEND | SOCKET_DISCONNECT | SOCKET_RECV
        )
    )
}

/// Whether the host accepts TCP connections on its SSH port within
/// `timeout` (no SSH traffic: a cheap "online" mark).
pub fn probe(host: &HostConfig, timeout: Duration) -> bool {
    open_tcp(
        host,
        Instant::now() + timeout,
        &Timeout::configured(timeout),
        None,
    )
    .is_ok()
}

/// Starts the SFTP subsystem on `session` (whose socket is `fd`). sshd
/// answers the channel open and the subsystem request in separate small
/// segments before it turns Nagle off for the session, so with our
/// delayed ACKs each answer waited ~40 ms (measured: 45 ms for the whole
/// start on loopback). Driving the start non-blocking and asking the
/// kernel to ACK at once before each wait makes it ~2 ms.
pub(super) fn start_sftp(
    session: &Session,
    fd: std::os::fd::RawFd,
    deadline: Instant,
) -> Result<Sftp, ssh2::Error> {
    use super::error::code::{EAGAIN, TIMEOUT};
    session.set_blocking(false);
    let result = loop {
        // Not a TCP socket (behind a ProxyJump): nothing to do.
        quick_ack(fd);
        match session.sftp() {
            Err(e) if e.code() == ssh2::ErrorCode::Session(EAGAIN) => {
                if Instant::now() >= deadline {
                    let timeout = ssh2::ErrorCode::Session(TIMEOUT);
                    break Err(ssh2::Error::new(timeout, "timed out starting SFTP"));
                }
                wait_socket(session, fd, deadline);
            }
            other => break other,
        }
    };
    session.set_blocking(true);
    result
}

/// Sleeps until `fd` is ready in the direction libssh2 is blocked on, at
/// most 100 ms and never past `deadline`.
pub(super) fn wait_socket(session: &Session, fd: std::os::fd::RawFd, deadline: Instant) {
    use ssh2::BlockDirections::*;
    let events = match session.block_directions() {
        Outbound => libc::POLLOUT,
        Both => libc::POLLIN | libc::POLLOUT,
        _ => libc::POLLIN,
    };
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_millis(100));
    let mut pollfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe {
        libc::poll(&mut pollfd, 1, wait.as_millis() as libc::c_int);
    }
}

/// Asks the kernel to acknowledge what arrives on `fd` at once rather
/// than after the delayed-ACK timer (up to 40 ms). sshd keeps Nagle on
/// until a session starts a command or subsystem, and for good in a
/// session that only forwards (a ProxyJump), so it holds each small packet
/// until the previous one is acknowledged. Linux clears the option again
/// by itself, so callers set it before every wait that matters. False when
/// the socket does not take it (a tunnel's socket pair).
pub(super) fn quick_ack(fd: std::os::fd::RawFd) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: the option value is a live c_int of the size passed; a bad
    // fd only makes the call fail.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}
