//! A userspace TCP proxy in front of one fleet host, with faults switchable at runtime:
//! latency (a delay line), throttling, a silent (half-open) peer, clean closes (FIN), resets
//! (RST) and refused connects.
//! `tc netem` is not available here (DESIGN.md §3), so this is how tests inject network faults.
//!
//! Each connection is served by two threads, one per direction. Sockets carry short read and
//! write timeouts so every thread notices a fault switch, or the proxy's drop, within
//! [`TICK`]. The proxy serves at most [`MAX_CONNECTIONS`] connections at once and stops on
//! its own after [`MAX_LIFETIME`], so a forgotten one cannot run forever.

use std::collections::VecDeque;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::fleet::Fleet;
use super::net::loopback_ips;
use super::poll;

/// Connections served at once; more are closed as soon as they are accepted.
const MAX_CONNECTIONS: usize = 256;

/// The proxy stops forwarding and accepting after this long.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// How often a waiting thread looks at the fault switches.
const TICK: Duration = Duration::from_millis(20);

/// Bytes read at once in one direction (one "chunk" for [`Proxy::delay`]).
const CHUNK: usize = 16 * 1024;

/// Bytes a delay line holds per direction before it stops reading: what a 10 ms line carries
/// at ~3 GB/s, so it bounds memory without limiting any bandwidth seen here.
const MAX_IN_LINE: usize = 32 << 20;

/// The shortest read timeout a delay line asks for (the kernel rejects zero).
const MIN_WAIT: Duration = Duration::from_micros(50);

/// How a connection is to end.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ending {
    /// Keep forwarding.
    None,
    /// Close both sides cleanly (FIN).
    Fin,
    /// Close both sides with RST (SO_LINGER 0).
    Rst,
}

/// One proxied connection: the client's socket and the upstream one, shared by both
/// direction threads (one fd each, so closing them really closes the connection).
struct Conn {
    client: TcpStream,
    upstream: TcpStream,
    ending: Mutex<Ending>,
    /// Direction threads still running (0, 1 or 2).
    running: AtomicUsize,
}

impl Conn {
    fn ending(&self) -> Ending {
        *self.ending.lock().expect("ending lock")
    }
}

struct Shared {
    upstream: SocketAddr,
    stop: AtomicBool,
    stalled: AtomicBool,
    refuse: AtomicBool,
    delay_us: AtomicU64,
    latency_us: AtomicU64,
    conns: Mutex<Vec<Arc<Conn>>>,
    accepted: AtomicUsize,
    /// Bytes forwarded so far, both directions, all connections.
    forwarded: AtomicU64,
    started: Instant,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.started.elapsed() > MAX_LIFETIME
    }
}

/// A TCP proxy on its own loopback address in front of `upstream`. Stopped on drop: every
/// connection is closed and every thread has ended when `drop` returns.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let ip = loopback_ips(1)[0];
        let listener = TcpListener::bind((ip, 0))
            .unwrap_or_else(|e| panic!("cannot bind a proxy on {ip}:0: {e}"));
        let addr = listener.local_addr().expect("local address of the proxy");
        let shared = Arc::new(Shared {
            upstream,
            stop: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            delay_us: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            conns: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            forwarded: AtomicU64::new(0),
            started: Instant::now(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(listener, addr, &shared))
        };
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted and forwarded so far (refused ones not counted).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Bytes forwarded so far, both directions, all connections.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.prune();
        self.shared.conns.lock().expect("conns lock").len()
    }

    /// Waits this long before forwarding each chunk, in each direction (zero: no delay). The
    /// forwarding thread itself sleeps, so this throttles bandwidth (one chunk per `delay`) as
    /// well as adding latency: what a test wants to make a big transfer slow. For latency
    /// alone, as over a WAN, see [`Proxy::latency`].
    pub fn delay(&self, delay: Duration) {
        self.shared
            .delay_us
            .store(delay.as_micros() as u64, Ordering::SeqCst);
    }

    /// Adds `one_way` latency in each direction without limiting bandwidth, like a WAN link:
    /// every chunk is stamped when it arrives and sent on at arrival + `one_way`, while later
    /// chunks keep arriving behind it (zero: forward at once). Applies to bytes read from now on.
    pub fn latency(&self, one_way: Duration) {
        self.shared
            .latency_us
            .store(one_way.as_micros() as u64, Ordering::SeqCst);
    }

    /// Stops forwarding in both directions, keeping every socket open: the peers see a silent,
    /// half-open connection. New connections are still accepted (and stay silent).
    pub fn stall(&self) {
        self.shared.stalled.store(true, Ordering::SeqCst);
    }

    /// Forwards again, including what was held back while stalled.
    pub fn resume(&self) {
        self.shared.stalled.store(false, Ordering::SeqCst);
    }

    /// Closes every current connection cleanly (FIN to both peers); returns once they are
    /// closed. New connections are served as usual.
    pub fn cut(&self) {
        self.end_all(Ending::Fin);
    }

    /// Closes every current connection with RST (SO_LINGER 0) to both peers; returns once they
    /// are closed. New connections are served as usual.
    pub fn reset(&self) {
        self.end_all(Ending::Rst);
    }

    /// While true, the listening socket is closed: connects are refused (RST to the SYN).
    /// Current connections are left alone.
    pub fn refuse_new(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
        // The acceptor closes or reopens the listener within a tick; wait for it so the
        // caller's next connect sees the new state.
        thread::sleep(TICK * 3);
    }

    fn end_all(&self, ending: Ending) {
        let conns: Vec<Arc<Conn>> = self.shared.conns.lock().expect("conns lock").clone();
        for conn in &conns {
            *conn.ending.lock().expect("ending lock") = ending;
            // Wakes readers at once; sends nothing to the peers (Linux).
            let _ = conn.client.shutdown(Shutdown::Read);
            let _ = conn.upstream.shutdown(Shutdown::Read);
        }
        let closed = poll(Duration::from_secs(10), Duration::from_millis(2), || {
            conns
                .iter()
                .all(|c| c.running.load(Ordering::SeqCst) == 0)
                .then_some(())
        });
        assert!(
            closed.is_some(),
            "proxy {}: connections did not close within 10 s",
            self.addr
        );
        // The last handle on each socket goes with the connection list.
        drop(conns);
        self.prune();
    }

    fn prune(&self) {
        self.shared
            .conns
            .lock()
            .expect("conns lock")
            .retain(|c| c.running.load(Ordering::SeqCst) > 0);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            // The acceptor joins every direction thread before it returns.
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, addr: SocketAddr, shared: &Arc<Shared>) {
    let mut listener = Some(listener);
    let mut threads: Vec<thread::JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        threads.retain(|t| !t.is_finished());
        let refuse = shared.refuse.load(Ordering::SeqCst);
        if refuse && listener.is_some() {
            listener = None;
        } else if !refuse && listener.is_none() {
            // Same address and port: std sets SO_REUSEADDR, and the address is ours alone.
            listener = TcpListener::bind(addr).ok();
        }
        let Some(l) = &listener else {
            thread::sleep(TICK);
            continue;
        };
        l.set_nonblocking(true)
            .expect("non-blocking proxy listener");
        let Ok((client, _)) = l.accept() else {
            thread::sleep(Duration::from_millis(2));
            continue;
        };
        let live = shared.conns.lock().expect("conns lock").len();
        if live >= MAX_CONNECTIONS {
            drop(client);
            continue;
        }
        let Ok(upstream) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))
        else {
            drop(client);
            continue;
        };
        let setup = [&client, &upstream].iter().all(|s| {
            s.set_nonblocking(false).is_ok()
                && s.set_nodelay(true).is_ok()
                && s.set_read_timeout(Some(TICK)).is_ok()
                && s.set_write_timeout(Some(TICK)).is_ok()
        });
        if !setup {
            continue;
        }
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let conn = Arc::new(Conn {
            client,
            upstream,
            ending: Mutex::new(Ending::None),
            running: AtomicUsize::new(2),
        });
        {
            let mut conns = shared.conns.lock().expect("conns lock");
            conns.retain(|c| c.running.load(Ordering::SeqCst) > 0);
            conns.push(Arc::clone(&conn));
        }
        for to_upstream in [true, false] {
            let conn = Arc::clone(&conn);
            let shared = Arc::clone(shared);
            threads.push(thread::spawn(move || {
                forward(&conn, &shared, to_upstream);
                finish(&conn);
            }));
        }
    }
    // Stopping: end every connection, then wait for its threads.
    for conn in shared.conns.lock().expect("conns lock").iter() {
        let mut ending = conn.ending.lock().expect("ending lock");
        if *ending == Ending::None {
            *ending = Ending::Fin;
        }
        let _ = conn.client.shutdown(Shutdown::Read);
        let _ = conn.upstream.shutdown(Shutdown::Read);
    }
    for t in threads {
        let _ = t.join();
    }
    shared.conns.lock().expect("conns lock").clear();
}

/// Chunks read but not yet sent, each with the moment it is due (a delay line).
#[derive(Default)]
struct Line {
    chunks: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
}

impl Line {
    fn push(&mut self, due: Instant, chunk: &[u8]) {
        self.bytes += chunk.len();
        self.chunks.push_back((due, chunk.to_vec()));
    }

    fn next_due(&self) -> Option<Instant> {
        self.chunks.front().map(|(due, _)| *due)
    }

    /// Sends every chunk whose time has come; false if the connection is to end.
    fn send_due(&mut self, conn: &Conn, shared: &Shared, to: &TcpStream) -> bool {
        while let Some((due, chunk)) = self.chunks.front() {
            if *due > Instant::now() {
                break;
            }
            if !send(conn, shared, to, chunk) {
                return false;
            }
            self.bytes -= chunk.len();
            self.chunks.pop_front();
        }
        true
    }

    /// How long a read may block before the next chunk is due.
    fn read_wait(&self) -> Duration {
        match self.next_due() {
            Some(due) => due
                .saturating_duration_since(Instant::now())
                .clamp(MIN_WAIT, TICK),
            None => TICK,
        }
    }
}

/// Copies one direction until EOF, an error, or an ending is asked for.
fn forward(conn: &Conn, shared: &Shared, to_upstream: bool) {
    let (mut from, to) = if to_upstream {
        (&conn.client, &conn.upstream)
    } else {
        (&conn.upstream, &conn.client)
    };
    let mut buf = vec![0u8; CHUNK];
    let mut line = Line::default();
    let mut read_timeout = TICK;
    loop {
        if conn.ending() != Ending::None || shared.stopping() {
            return;
        }
        if shared.stalled.load(Ordering::SeqCst) {
            thread::sleep(TICK);
            continue;
        }
        if !line.send_due(conn, shared, to) {
            return;
        }
        if line.bytes >= MAX_IN_LINE {
            thread::sleep(line.read_wait());
            continue;
        }
        // Wake up in time for the next due chunk, not a whole tick later.
        let wait = line.read_wait();
        if wait != read_timeout && from.set_read_timeout(Some(wait)).is_ok() {
            read_timeout = wait;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => {
                // The sender closed its side: deliver what is still on the line, then pass
                // the FIN on and keep the other direction.
                if drain_line(&mut line, conn, shared, to) && conn.ending() == Ending::None {
                    let _ = to.shutdown(Shutdown::Write);
                }
                return;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let latency = Duration::from_micros(shared.latency_us.load(Ordering::SeqCst));
        if !latency.is_zero() || !line.chunks.is_empty() {
            // Queued behind earlier chunks even at zero latency, so bytes stay in order.
            line.push(Instant::now() + latency, &buf[..n]);
            continue;
        }
        let delay = Duration::from_micros(shared.delay_us.load(Ordering::SeqCst));
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        if !send(conn, shared, to, &buf[..n]) {
            return;
        }
    }
}

/// Sends everything left on the line as it falls due (bounded by the latency); false if the
/// connection is to end first.
fn drain_line(line: &mut Line, conn: &Conn, shared: &Shared, to: &TcpStream) -> bool {
    while let Some(due) = line.next_due() {
        if conn.ending() != Ending::None || shared.stopping() {
            return false;
        }
        thread::sleep(due.saturating_duration_since(Instant::now()));
        if !line.send_due(conn, shared, to) {
            return false;
        }
    }
    true
}

/// Writes all of `bytes` to `to`, holding off while stalled; false if the connection is to
/// end or the write fails.
fn send(conn: &Conn, shared: &Shared, mut to: &TcpStream, bytes: &[u8]) -> bool {
    let mut sent = 0;
    while sent < bytes.len() {
        if conn.ending() != Ending::None || shared.stopping() {
            return false;
        }
        if shared.stalled.load(Ordering::SeqCst) {
            thread::sleep(TICK);
            continue;
        }
        match to.write(&bytes[sent..]) {
            Ok(0) => return false,
            Ok(k) => {
                sent += k;
                shared.forwarded.fetch_add(k as u64, Ordering::SeqCst);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Run by each direction thread as it ends: the last one closes the connection the way it was
/// asked to (the sockets themselves close when the last handle on them drops).
fn finish(conn: &Conn) {
    if conn.running.fetch_sub(1, Ordering::SeqCst) != 1 {
        // The other direction still runs: it ends when its peer closes, or on an ending.
        return;
    }
    match conn.ending() {
        Ending::Rst => {
            set_linger_zero(&conn.client);
            set_linger_zero(&conn.upstream);
            // With SO_LINGER 0, the close (when the last handle drops) sends RST.
        }
        Ending::Fin | Ending::None => {
            let _ = conn.client.shutdown(Shutdown::Both);
            let _ = conn.upstream.shutdown(Shutdown::Both);
        }
    }
}

/// SO_LINGER {on, 0}: closing the socket discards unsent data and sends RST.
fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized, initialised option value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_LINGER) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// Client files for reaching fleet hosts through proxies.
pub trait ProxiedFleet {
    /// A proxy in front of host `host`.
    fn proxy(&self, host: usize) -> Proxy;

    /// SCOUT_SSH_CONFIG and SCOUT_KNOWN_HOSTS for the fleet's hosts plus `proxied` (alias,
    /// proxy address): the config has a block per alias, and known_hosts the fleet's host key
    /// under each proxy address too (every fleet host has the same key).
    fn env_with_proxies(&self, proxied: &[(&str, SocketAddr)]) -> Vec<(String, String)>;
}

impl ProxiedFleet for Fleet {
    fn proxy(&self, host: usize) -> Proxy {
        Proxy::start(self.addr(host))
    }

    fn env_with_proxies(&self, proxied: &[(&str, SocketAddr)]) -> Vec<(String, String)> {
        let config = self.ssh_config_with(proxied);
        let known = fs::read_to_string(self.known_hosts_path()).expect("read known_hosts");
        let key = known
            .lines()
            .next()
            .and_then(|line| line.split_once(' '))
            .map(|(_, key)| key.to_string())
            .expect("a known_hosts line: [ip]:port type key");
        let mut text = known.clone();
        for (_, addr) in proxied {
            text += &format!("[{}]:{} {key}\n", addr.ip(), addr.port());
        }
        let path: PathBuf = config.with_extension("known_hosts");
        fs::write(&path, text).expect("write the proxied known_hosts");
        vec![
            ("SCOUT_SSH_CONFIG".to_string(), config.display().to_string()),
            ("SCOUT_KNOWN_HOSTS".to_string(), path.display().to_string()),
        ]
    }
}
