//! The physical floor: the same operations done directly with ssh2 on warm sessions, with no
//! MCP, JSON, worker queue or pool in between.

use ssh2::{Session, Sftp};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Every libssh2 call gives up after this long, so no floor step can hang.
const CALL_TIMEOUT_MS: u32 = 30_000;

/// Room for the largest file the bench reads, plus the byte that finds EOF. Reading into a
/// buffer this big from the start lets libssh2 ask for the whole file at once, as scout-mcp
/// does; an empty Vec would first probe with a tiny read (one more round trip).
const READ_ROOM: usize = crate::BIG + 1;

/// Where and as whom the floor connects.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub user: String,
    pub key: PathBuf,
}

/// One operation, as scout-mcp would do it.
#[derive(Clone)]
pub enum Op {
    Stat(PathBuf),
    Read(PathBuf),
    List(PathBuf),
    Exec(String),
    /// What scout-mcp's read does: stat the path, then open, read and close it.
    StatRead(PathBuf),
}

/// A warm session with its SFTP channel, like one pooled by scout-mcp.
pub struct Conn {
    addr: SocketAddr,
    sess: Session,
    sftp: Sftp,
    buf: Mutex<Vec<u8>>,
}

pub fn connect(ep: &Endpoint) -> Result<Conn, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("floor {}: {what}: {e}", ep.addr);
    let tcp = TcpStream::connect_timeout(&ep.addr, Duration::from_secs(10))
        .map_err(|e| fail("TCP connect", &e))?;
    // Without it every round trip waits for a delayed ACK (DESIGN §3).
    tcp.set_nodelay(true).map_err(|e| fail("TCP_NODELAY", &e))?;
    let mut sess = Session::new().map_err(|e| fail("new session", &e))?;
    sess.set_timeout(CALL_TIMEOUT_MS);
    sess.set_tcp_stream(tcp);
    sess.handshake().map_err(|e| fail("handshake", &e))?;
    sess.userauth_pubkey_file(&ep.user, None, &ep.key, None)
        .map_err(|e| fail(&format!("auth as {}", ep.user), &e))?;
    let sftp = sess.sftp().map_err(|e| fail("sftp subsystem", &e))?;
    Ok(Conn {
        addr: ep.addr,
        sess,
        sftp,
        buf: Mutex::new(Vec::with_capacity(READ_ROOM)),
    })
}

impl Conn {
    pub fn run(&self, op: &Op) -> Result<(), String> {
        match op {
            Op::Stat(path) => self.stat(path),
            Op::Read(path) => self.read(path).map(|_| ()),
            Op::List(path) => self.list(path),
            Op::Exec(command) => self.exec(command).map(|_| ()),
            Op::StatRead(path) => self.stat(path).and_then(|()| self.read(path).map(|_| ())),
        }
    }

    fn stat(&self, path: &Path) -> Result<(), String> {
        self.sftp
            .stat(path)
            .map(|_| ())
            .map_err(|e| self.fail("stat", path, &e))
    }

    /// open + read to EOF + close: what a small-file read costs.
    pub fn read(&self, path: &Path) -> Result<usize, String> {
        let mut file = self
            .sftp
            .open(path)
            .map_err(|e| self.fail("open", path, &e))?;
        // Each session is used by one thread at a time: the lock is never contended.
        let mut bytes = self
            .buf
            .lock()
            .map_err(|_| format!("floor {}: read buffer poisoned", self.addr))?;
        bytes.clear();
        (&mut file)
            .take(READ_ROOM as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| self.fail("read", path, &e))?;
        Ok(bytes.len())
    }

    fn list(&self, path: &Path) -> Result<(), String> {
        self.sftp
            .readdir(path)
            .map(|_| ())
            .map_err(|e| self.fail("readdir", path, &e))
    }

    fn exec(&self, command: &str) -> Result<String, String> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            format!("floor {}: exec {command:?}: {what}: {e}", self.addr)
        };
        let mut channel = self
            .sess
            .channel_session()
            .map_err(|e| fail("channel open", &e))?;
        channel.exec(command).map_err(|e| fail("exec", &e))?;
        let mut out = String::new();
        channel
            .read_to_string(&mut out)
            .map_err(|e| fail("read stdout", &e))?;
        channel.wait_close().map_err(|e| fail("close", &e))?;
        match channel.exit_status() {
            Ok(0) => Ok(out),
            Ok(code) => Err(format!("floor {}: {command:?} exited {code}", self.addr)),
            Err(e) => Err(fail("exit status", &e)),
        }
    }

    fn fail(&self, what: &str, path: &Path, e: &dyn std::fmt::Display) -> String {
        format!("floor {}: {what} {}: {e}", self.addr, path.display())
    }
}

/// `samples` sequential runs of `op` on one warm session (after one untimed run).
pub fn latency(conn: &Conn, op: &Op, samples: usize) -> Result<Vec<Duration>, String> {
    conn.run(op)?;
    (0..samples)
        .map(|_| {
            let t = Instant::now();
            conn.run(op).map(|()| t.elapsed())
        })
        .collect()
}

/// `total` operations over one session per endpoint, one thread per session, all started
/// together once every session is up. Returns the wall time of the operations alone.
pub fn throughput(
    endpoints: &[Endpoint],
    op_for: impl Fn(usize) -> Op,
    total: usize,
) -> Result<Duration, String> {
    let conns = endpoints
        .iter()
        .map(connect)
        .collect::<Result<Vec<_>, _>>()?;
    let sessions = conns.len().max(1);
    let barrier = Arc::new(Barrier::new(sessions + 1));
    let threads: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let ops: Vec<Op> = (i..total).step_by(sessions).map(&op_for).collect();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                ops.iter().try_for_each(|op| conn.run(op))
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut outcome = Ok(());
    for t in threads {
        let done = t
            .join()
            .unwrap_or_else(|_| Err("a floor thread panicked".to_string()));
        if outcome.is_ok() {
            outcome = done;
        }
    }
    outcome.map(|()| started.elapsed())
}

/// One session per endpoint, connected at once (a thread each), then `op` on each: the
/// wall time of the whole (cold) and the sessions, for warm rounds with [`all_at_once`].
pub fn cold_fan_out(endpoints: &[Endpoint], op: &Op) -> Result<(Duration, Vec<Conn>), String> {
    let started = Instant::now();
    let conns = thread::scope(|scope| {
        let threads: Vec<_> = endpoints
            .iter()
            .map(|ep| {
                scope.spawn(move || {
                    let conn = connect(ep)?;
                    conn.run(op).map(|()| conn)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err("a floor thread panicked".to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    Ok((started.elapsed(), conns))
}

/// `op` on every session at once, a thread each; the wall time until all are done.
pub fn all_at_once(conns: &[Conn], op: &Op) -> Result<Duration, String> {
    let started = Instant::now();
    thread::scope(|scope| {
        let threads: Vec<_> = conns
            .iter()
            .map(|conn| scope.spawn(move || conn.run(op)))
            .collect();
        threads.into_iter().try_for_each(|t| {
            t.join()
                .unwrap_or_else(|_| Err("a floor thread panicked".to_string()))
        })
    })?;
    Ok(started.elapsed())
}
