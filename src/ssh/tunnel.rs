//! Tunnels through a jump host: direct-tcpip channels on one jump
//! session, each pumped into a `UnixStream` pair whose other end a
//! libssh2 session for the next hop (or the target) uses as its socket.
//!
//! ssh2 has no ProxyJump (DESIGN §3). libssh2 needs a socket fd, so a
//! channel cannot be handed to the next session directly; a socket pair
//! plus a pump does it.
//!
//! One pump thread per jump session (a [`Carrier`]), not one per tunnel:
//! libssh2 reads whatever packets arrive for any channel of a session
//! while serving a call for one channel, so a thread polling the jump
//! socket for "its" tunnel can sleep through data another thread already
//! pulled in. A single thread that owns the session after set-up, polls
//! the jump socket and every tunnel's local end, and then tries every
//! tunnel in non-blocking mode cannot miss a wake-up, and it is the only
//! caller of the session, so libssh2's per-session state (a channel open
//! in progress) is never driven from two threads at once.
//!
//! Fairness: each tunnel moves at most one bounded buffer per direction
//! per round, and a tunnel whose reader stalls stops being read, so its
//! channel window fills and the jump server holds back that channel
//! only; the others keep flowing.

use super::error::code::EAGAIN;
use super::error::{from_ssh2, ErrorKind, SshError};
use super::session::quick_ack;
use super::session::SshSession;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use ssh2::{BlockDirections, Channel};
use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes buffered per tunnel and direction: enough for a full SSH packet
/// (32 KiB payload plus framing) so a round never splits one needlessly.
const BUF: usize = 64 * 1024;

/// Rounds run back to back while bytes move, before the pump polls
/// again (with a zero timeout) so new requests and stop are noticed.
const ROUNDS_PER_POLL: usize = 32;

/// Longest sleep of an idle pump. Every event wakes it sooner; this only
/// bounds the wait should a wake-up ever be lost.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// How long a closing tunnel may wait for the jump server to confirm the
/// channel close before it is dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The socket under a session: TCP for a direct connection, one end of a
/// socket pair for a session that runs through a tunnel.
#[derive(Debug)]
pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    pub fn try_clone(&self) -> std::io::Result<Socket> {
        Ok(match self {
            Socket::Tcp(s) => Socket::Tcp(s.try_clone()?),
            Socket::Unix(s) => Socket::Unix(s.try_clone()?),
        })
    }

    /// Looks at the next byte without taking it and without blocking
    /// (`UnixStream::peek` is not stable, so both go through recv(2)).
    pub fn peek(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: the fd is open for as long as `self` lives and `buf` is a
        // valid, writable buffer of the length passed.
        let n = unsafe {
            libc::recv(
                self.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// A request to open a direct-tcpip channel, answered with the socket
/// end the next session should use.
struct Open {
    host: String,
    port: u16,
    deadline: Instant,
    reply: Sender<Result<UnixStream, String>>,
}

/// Something held for as long as a jump session is open: its place under
/// the connection pool's bound (the ssh layer does not know the pool).
pub type Place = Box<dyn std::any::Any + Send + Sync>;

/// A jump session carrying tunnels. Shared (`Arc`) by every session that
/// runs through it; the last one to go stops the pump and closes the
/// jump session. The registry in `jump` keeps only weak references.
pub struct Carrier {
    /// "bastion (ops@10.0.0.1:22)", for messages.
    label: String,
    requests: Sender<Open>,
    wake: UnixStream,
    shared: Arc<Shared>,
}

/// What the pump and the handles share.
struct Shared {
    stop: AtomicBool,
    /// The jump session is gone: no tunnel through it works any more.
    dead: AtomicBool,
    /// A channel open outlived its deadline; libssh2 cannot abandon an
    /// open half-way, so no further opens go to this session.
    retired: AtomicBool,
    tunnels: AtomicUsize,
}

impl Carrier {
    /// Takes over `session` (a connected, authenticated jump session)
    /// and starts its pump thread, which also keeps `place` until the
    /// session is closed.
    pub fn start(
        session: SshSession,
        label: String,
        place: Option<Place>,
    ) -> Result<Arc<Carrier>, SshError> {
        let fail = |e: std::io::Error| {
            SshError::new(
                ErrorKind::Disconnected,
                format!("{label}: cannot start the tunnel pump: {e}"),
            )
        };
        let (wake, wake_rx) = UnixStream::pair().map_err(fail)?;
        wake.set_nonblocking(true).map_err(fail)?;
        wake_rx.set_nonblocking(true).map_err(fail)?;
        let (requests, requests_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            tunnels: AtomicUsize::new(0),
        });
        let pump = Pump {
            session,
            wake: wake_rx,
            requests: requests_rx,
            shared: Arc::clone(&shared),
            tunnels: Vec::new(),
            opening: None,
            opening_begun: false,
            acks_at_once: true,
            label: label.clone(),
            _place: place,
        };
        std::thread::Builder::new()
            .name("jump-pump".into())
            .spawn(move || pump.run())
            .map_err(fail)?;
        Ok(Arc::new(Carrier {
            label,
            requests,
            wake,
            shared,
        }))
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether new tunnels may be opened through this jump session.
    pub fn usable(&self) -> bool {
        !self.shared.dead.load(Ordering::SeqCst) && !self.shared.retired.load(Ordering::SeqCst)
    }

    /// Tunnels open right now.
    pub fn tunnels(&self) -> usize {
        self.shared.tunnels.load(Ordering::SeqCst)
    }

    /// Opens a tunnel to `host:port` as seen from the jump host; the
    /// returned socket carries its bytes.
    pub fn open(&self, host: &str, port: u16, deadline: Instant) -> Result<UnixStream, SshError> {
        let where_ = format!(
            "{}: cannot reach {host}:{port} from the jump host",
            self.label
        );
        if !self.usable() {
            return Err(SshError::new(
                ErrorKind::Disconnected,
                format!("{where_}: the jump session has closed"),
            ));
        }
        let (reply, answer) = crossbeam_channel::bounded(1);
        let request = Open {
            host: host.to_string(),
            port,
            deadline,
            reply,
        };
        if self.requests.send(request).is_err() {
            return Err(SshError::new(
                ErrorKind::Disconnected,
                format!("{where_}: the jump session has closed"),
            ));
        }
        self.poke();
        match answer.recv_deadline(deadline) {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(why)) => Err(SshError::new(
                ErrorKind::Channel,
                format!("{where_}: {why}"),
            )),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(SshError::new(
                ErrorKind::Timeout,
                format!("{where_}: the jump host did not answer the channel open in time"),
            )),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(SshError::new(
                ErrorKind::Disconnected,
                format!("{where_}: the jump session closed"),
            )),
        }
    }

    fn poke(&self) {
        // A full wake pipe already means "look again": ignore WouldBlock.
        let _ = (&self.wake).write(&[1]);
    }
}

impl Drop for Carrier {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.poke();
    }
}

/// A fixed buffer bytes pass through: filled at `end`, drained from `start`.
struct Buf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            data: vec![0; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn has_room(&self) -> bool {
        self.end < self.data.len() || self.start > 0
    }

    fn room(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.data.len() {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.data[self.end..]
    }

    fn filled(&mut self, n: usize) {
        self.end += n;
    }

    fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consumed(&mut self, n: usize) {
        self.start += n;
    }
}

/// One tunnel: a channel on the jump session and the pump's end of the
/// socket pair.
struct Tunnel {
    channel: Channel,
    local: UnixStream,
    to_local: Buf,
    to_remote: Buf,
    /// The session using the tunnel closed its socket.
    local_eof: bool,
    /// The far side closed the channel (sent EOF).
    remote_eof: bool,
    eof_sent: bool,
    local_shut: bool,
    closing_since: Option<Instant>,
}

/// What one step of a tunnel achieved.
#[derive(PartialEq)]
enum Step {
    Moved,
    Idle,
    Done,
}

struct Pump {
    session: SshSession,
    wake: UnixStream,
    requests: Receiver<Open>,
    shared: Arc<Shared>,
    tunnels: Vec<Tunnel>,
    /// The channel open in progress; libssh2 drives one at a time.
    opening: Option<Open>,
    /// libssh2 has begun the open in `opening` (it cannot be dropped now).
    opening_begun: bool,
    /// The jump socket is TCP and takes TCP_QUICKACK (a second hop's is a
    /// socket pair, which does not).
    acks_at_once: bool,
    label: String,
    /// This session's place under the pool's bound, if it has one: freed
    /// when the pump ends, after the session is closed.
    _place: Option<Place>,
}

impl Pump {
    fn run(mut self) {
        self.session.session().set_blocking(false);
        while !self.shared.stop.load(Ordering::SeqCst) {
            let mut moved = false;
            for _ in 0..ROUNDS_PER_POLL {
                let progress = self.round();
                moved |= progress;
                if !progress || self.shared.dead.load(Ordering::SeqCst) {
                    break;
                }
            }
            if self.shared.dead.load(Ordering::SeqCst) {
                break;
            }
            let timeout = if moved {
                Duration::ZERO
            } else {
                self.idle_wait()
            };
            if !self.wait(timeout) {
                self.shared.dead.store(true, Ordering::SeqCst);
                break;
            }
        }
        self.finish();
    }

    /// One pass over requests and tunnels; whether anything happened.
    fn round(&mut self) -> bool {
        let mut progress = self.drive_open();
        let mut i = 0;
        while i < self.tunnels.len() {
            match step(&mut self.tunnels[i]) {
                Step::Moved => progress = true,
                Step::Idle => {}
                Step::Done => {
                    self.tunnels.swap_remove(i);
                    self.shared.tunnels.fetch_sub(1, Ordering::SeqCst);
                    progress = true;
                    continue;
                }
            }
            i += 1;
        }
        if !self.session.is_alive() {
            log::debug!("{}: the jump session closed", self.label);
            self.shared.dead.store(true, Ordering::SeqCst);
        }
        progress
    }

    /// Starts or continues the channel open at the head of the queue.
    fn drive_open(&mut self) -> bool {
        if self.opening.is_none() {
            match self.requests.try_recv() {
                Ok(open) => self.opening = Some(open),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return false,
            }
        }
        let Some(open) = &self.opening else {
            return false;
        };
        let now = Instant::now();
        if open.deadline <= now && !self.opening_begun {
            // Its requester has given up and libssh2 has not begun it.
            self.opening = None;
            return true;
        }
        let result = self
            .session
            .session()
            .channel_direct_tcpip(&open.host, open.port, None);
        match result {
            Err(e) if e.code() == ssh2::ErrorCode::Session(EAGAIN) => {
                self.opening_begun = true;
                if open.deadline <= now && !self.shared.retired.swap(true, Ordering::SeqCst) {
                    log::warn!(
                        "{}: a channel open to {}:{} is unanswered at its deadline; new \
                         tunnels will use another jump session",
                        self.label,
                        open.host,
                        open.port
                    );
                }
                false
            }
            Err(e) => {
                self.opening_begun = false;
                if let Some(open) = self.opening.take() {
                    let _ = open.reply.send(Err(describe_open_failure(&e)));
                }
                true
            }
            Ok(channel) => {
                self.opening_begun = false;
                if let Some(open) = self.opening.take() {
                    self.add_tunnel(channel, open);
                }
                true
            }
        }
    }

    fn add_tunnel(&mut self, channel: Channel, open: Open) {
        let pair = UnixStream::pair().and_then(|(ours, theirs)| {
            ours.set_nonblocking(true)?;
            Ok((ours, theirs))
        });
        let (local, theirs) = match pair {
            Ok(pair) => pair,
            Err(e) => {
                let _ = open
                    .reply
                    .send(Err(format!("cannot create a socket pair: {e}")));
                return;
            }
        };
        // The requester may have given up meanwhile: then the channel
        // just closes again.
        if open.reply.send(Ok(theirs)).is_err() {
            return;
        }
        self.shared.tunnels.fetch_add(1, Ordering::SeqCst);
        self.tunnels.push(Tunnel {
            channel,
            local,
            to_local: Buf::new(),
            to_remote: Buf::new(),
            local_eof: false,
            remote_eof: false,
            eof_sent: false,
            local_shut: false,
            closing_since: None,
        });
    }

    /// How long to sleep when a round moved nothing. libssh2 may have
    /// read packets for one tunnel while serving a call for another; such
    /// data is already off the socket, so poll would not report it.
    fn idle_wait(&self) -> Duration {
        let outbound = matches!(
            self.session.session().block_directions(),
            BlockDirections::Outbound | BlockDirections::Both
        );
        if self.tunnels.iter().any(|t| t.ready(outbound)) {
            return Duration::from_millis(1);
        }
        match &self.opening {
            // The answer to an open may likewise have been read already.
            Some(open) if self.opening_begun => open
                .deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), Duration::from_millis(20)),
            _ => IDLE_POLL,
        }
    }

    /// Sleeps until the jump socket, a tunnel or the wake pipe has
    /// something, or `timeout`. False if poll itself failed.
    fn wait(&mut self, timeout: Duration) -> bool {
        let outbound = matches!(
            self.session.session().block_directions(),
            BlockDirections::Outbound | BlockDirections::Both
        );
        let mut fds = Vec::with_capacity(self.tunnels.len() + 2);
        let jump_events = libc::POLLIN | if outbound { libc::POLLOUT } else { 0 };
        fds.push(pollfd(self.session.socket_fd(), jump_events));
        fds.push(pollfd(self.wake.as_raw_fd(), libc::POLLIN));
        for t in &self.tunnels {
            fds.push(pollfd(t.local.as_raw_fd(), t.interest()));
        }
        // sshd keeps Nagle on for a session that only forwards: without an
        // immediate ACK, a channel's last small packets wait ~40 ms for ours.
        if self.acks_at_once {
            self.acks_at_once = quick_ack(self.session.socket_fd());
        }
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a live, correctly sized array of pollfd.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != IoKind::Interrupted {
                log::warn!("{}: tunnel pump cannot poll: {err}", self.label);
                return false;
            }
        }
        let mut sink = [0u8; 64];
        // Bounded: the pipe holds a few bytes at most per poke.
        for _ in 0..64 {
            if !matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {
                break;
            }
        }
        true
    }

    /// Ends the jump session: pending opens are answered, tunnels closed
    /// (their sessions see end-of-file), then a polite disconnect.
    fn finish(mut self) {
        self.shared.dead.store(true, Ordering::SeqCst);
        let gone = format!("the jump session {} closed", self.label);
        if let Some(open) = self.opening.take() {
            let _ = open.reply.send(Err(gone.clone()));
        }
        while let Ok(open) = self.requests.try_recv() {
            let _ = open.reply.send(Err(gone.clone()));
        }
        self.shared
            .tunnels
            .fetch_sub(self.tunnels.len(), Ordering::SeqCst);
        let session = self.session.session().clone();
        session.set_blocking(true);
        session.set_timeout(1000);
        self.tunnels.clear();
        self.session.disconnect();
        log::debug!("{}: jump session closed", self.label);
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// libssh2 words a refused open as "Channel open failure (connect
/// failed)" or "(administratively prohibited)"; keep its reason.
fn describe_open_failure(e: &ssh2::Error) -> String {
    let message = e.message();
    match message.strip_prefix("Channel open failure") {
        Some(reason) => format!("channel open refused{reason}"),
        None => from_ssh2("channel open", e).message,
    }
}

impl Tunnel {
    /// The poll events the pump waits for on the local end.
    fn interest(&self) -> libc::c_short {
        let mut events = 0;
        if !self.local_eof && self.to_remote.has_room() && self.closing_since.is_none() {
            events |= libc::POLLIN;
        }
        if !self.to_local.is_empty() {
            events |= libc::POLLOUT;
        }
        events
    }

    /// Whether libssh2 holds something for this tunnel that poll cannot
    /// see: queued data or EOF to read, or window to write into.
    fn ready(&self, outbound_blocked: bool) -> bool {
        if self.closing_since.is_some() {
            return false;
        }
        let readable = !self.remote_eof
            && self.to_local.has_room()
            && (self.channel.read_window().available > 0 || self.channel.eof());
        let writable = !outbound_blocked
            && !self.to_remote.is_empty()
            && self.channel.write_window().remaining > 0;
        readable || writable
    }
}

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == IoKind::WouldBlock
}

/// Moves what can be moved in both directions without blocking.
fn step(t: &mut Tunnel) -> Step {
    if let Some(since) = t.closing_since {
        return match t.channel.close() {
            Err(e)
                if e.code() == ssh2::ErrorCode::Session(EAGAIN)
                    && since.elapsed() < CLOSE_GRACE =>
            {
                Step::Idle
            }
            _ => Step::Done,
        };
    }
    let mut moved = pump_in(t);
    moved |= pump_out(t);
    if t.local_eof && t.to_remote.is_empty() && !t.eof_sent {
        match t.channel.send_eof() {
            Err(e) if e.code() == ssh2::ErrorCode::Session(EAGAIN) => {}
            _ => {
                t.eof_sent = true;
                moved = true;
            }
        }
    }
    // The session using the tunnel is gone and has nothing left to say:
    // nobody will read what the far side sends any more.
    if t.local_eof && t.eof_sent {
        t.closing_since = Some(Instant::now());
        return Step::Moved;
    }
    if moved {
        Step::Moved
    } else {
        Step::Idle
    }
}

/// Channel to local socket.
fn pump_in(t: &mut Tunnel) -> bool {
    let mut moved = false;
    if !t.remote_eof && t.to_local.has_room() {
        match t.channel.read(t.to_local.room()) {
            Ok(0) => {
                t.remote_eof = t.channel.eof();
                moved = t.remote_eof;
            }
            Ok(n) => {
                t.to_local.filled(n);
                moved = true;
            }
            Err(e) if would_block(&e) => {}
            Err(_) => {
                t.remote_eof = true;
                moved = true;
            }
        }
    }
    if !t.to_local.is_empty() {
        match (&t.local).write(t.to_local.pending()) {
            Ok(n) => {
                t.to_local.consumed(n);
                moved |= n > 0;
            }
            Err(e) if would_block(&e) => {}
            Err(_) => {
                // The session closed its end: drop what it will never read.
                t.to_local.consumed(t.to_local.pending().len());
                t.local_eof = true;
                moved = true;
            }
        }
    }
    if t.remote_eof && t.to_local.is_empty() && !t.local_shut {
        let _ = t.local.shutdown(Shutdown::Write);
        t.local_shut = true;
        moved = true;
    }
    moved
}

/// Local socket to channel.
fn pump_out(t: &mut Tunnel) -> bool {
    let mut moved = false;
    if !t.local_eof && t.to_remote.has_room() {
        match (&t.local).read(t.to_remote.room()) {
            Ok(0) => {
                t.local_eof = true;
                moved = true;
            }
            Ok(n) => {
                t.to_remote.filled(n);
                moved = true;
            }
            Err(e) if would_block(&e) => {}
            Err(_) => {
                t.local_eof = true;
                moved = true;
            }
        }
    }
    if !t.to_remote.is_empty() {
        match t.channel.write(t.to_remote.pending()) {
            Ok(n) => {
                t.to_remote.consumed(n);
                moved |= n > 0;
            }
            Err(e) if would_block(&e) => {}
            Err(_) => {
                // The far side is gone: what is left can never be delivered.
                t.to_remote.consumed(t.to_remote.pending().len());
                t.remote_eof = true;
                moved = true;
            }
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buf_compacts_when_full_and_partly_drained() {
        let mut b = Buf::new();
        let n = b.room().len();
        assert_eq!(n, BUF);
        b.filled(n);
        assert!(!b.has_room());
        b.consumed(10);
        assert!(b.has_room());
        assert_eq!(b.room().len(), 10);
        assert_eq!(b.pending().len(), BUF - 10);
        b.consumed(BUF - 10);
        assert!(b.is_empty());
        assert_eq!(b.room().len(), BUF);
    }

    #[test]
    fn quick_ack_takes_on_tcp_and_is_refused_by_a_socket_pair() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(quick_ack(tcp.as_raw_fd()));
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(!quick_ack(a.as_raw_fd()));
    }

    #[test]
    fn socket_peek_sees_data_and_eof_without_taking_it() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let sock = Socket::Unix(a);
        let mut byte = [0u8; 1];
        let err = sock.peek(&mut byte).unwrap_err();
        assert_eq!(err.kind(), IoKind::WouldBlock);
        (&b).write_all(b"x").unwrap();
        assert_eq!(sock.peek(&mut byte).unwrap(), 1);
        assert_eq!(sock.peek(&mut byte).unwrap(), 1);
        drop(b);
        // The byte is still there; after it, end-of-file.
        let Socket::Unix(mut a) = sock else {
            unreachable!()
        };
        assert_eq!(a.read(&mut byte).unwrap(), 1);
        let sock = Socket::Unix(a);
        assert_eq!(sock.peek(&mut byte).unwrap(), 0);
    }
}
