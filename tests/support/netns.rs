//! A network namespace of the test's own, sshd daemons inside it, and a forwarder that lets
//! the test's namespace reach one of them: hosts that only a jump host can reach.
//!
//! Only the namespace's own loopback is used inside it. The way in touches no interface
//! outside the namespace: a listener on a 127.x address of the test's namespace whose
//! per-connection threads `setns` into the namespace and connect there. It counts the
//! connections it carried, i.e. the TCP connections made to the jump host.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::net::loopback_ips;
use super::process::{crash_tree, run_bounded};
use super::sshd::{default_options, SSHD};
use super::{wait_until, Fleet, PATIENCE};

static CREATED: AtomicUsize = AtomicUsize::new(0);

/// A network namespace with its loopback up; deleted on drop.
pub struct Netns {
    name: String,
    file: File,
}

impl Netns {
    pub fn create() -> Netns {
        let n = CREATED.fetch_add(1, Ordering::SeqCst);
        let name = format!("scout-jump-{}-{n}", std::process::id());
        let ip = |args: &[&str]| {
            let out = run_bounded(Command::new("ip").args(args), PATIENCE);
            assert!(
                out.status.success(),
                "ip {}: {} (is iproute2 installed, and are we root?)",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&["netns", "add", &name]);
        // From here on, drop deletes it, even if the next step panics.
        let file = File::open(format!("/run/netns/{name}"))
            .unwrap_or_else(|e| panic!("cannot open /run/netns/{name}: {e}"));
        let ns = Netns { name, file };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the calling thread (only it) into the namespace.
    fn enter(&self) -> std::io::Result<()> {
        // SAFETY: a plain syscall on an fd we own; it affects this thread only.
        let rc = unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Connects to `port` on the namespace's loopback from a helper thread inside it.
    pub fn connect(self: &Arc<Self>, port: u16) -> std::io::Result<TcpStream> {
        let ns = Arc::clone(self);
        thread::spawn(move || {
            ns.enter()?;
            TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), PATIENCE)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("connect thread panicked")))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = run_bounded(
            Command::new("ip").args(["netns", "del", &self.name]),
            PATIENCE,
        );
        if !out.status.success() {
            eprintln!(
                "tests/support: could not delete network namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// An sshd listening on 127.0.0.1:`port` inside a namespace, with the fleet's keys and user.
/// Stopped, with every process it started, on drop.
pub struct NsSshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl NsSshd {
    /// `host_key`: the private host key file to serve (the fleet's own is `dir/host_key`).
    pub fn start(ns: &Arc<Netns>, fleet: &Fleet, port: u16, host_key: &Path) -> NsSshd {
        let dir = fleet.dir();
        let conf = dir.join(format!("ns-sshd-{port}.conf"));
        let log = dir.join(format!("ns-sshd-{port}.log"));
        let mut text = format!(
            "ListenAddress 127.0.0.1:{port}\nHostKey {}\nPidFile {}/ns-sshd-{port}.pid\n\
             AuthorizedKeysFile {}/authorized_keys\nAllowTcpForwarding yes\n",
            host_key.display(),
            dir.display(),
            dir.display()
        );
        for (key, value) in default_options() {
            text += &format!("{key} {value}\n");
        }
        fs::write(&conf, text).unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
        let out = File::create(&log).expect("create the namespace sshd log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), SSHD, "-D", "-e", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("duplicate the log handle"))
            .stderr(out)
            .spawn()
            .expect("start sshd in the namespace");
        let sshd = NsSshd { child, port, log };
        let up = wait_until(PATIENCE, || ns.connect(port).is_ok());
        assert!(
            up,
            "sshd in {} never listened on 127.0.0.1:{port}: {}",
            ns.name(),
            sshd.log()
        );
        sshd
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NsSshd {
    fn drop(&mut self) {
        // `ip netns exec` execs sshd: the child's pid is sshd's.
        crash_tree(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forwards connections made to a 127.x address of the test's namespace to a port on the
/// loopback of a namespace, counting them. Stops on drop, closing what it carries.
pub struct Forwarder {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Forwarder {
    pub fn start(ns: &Arc<Netns>, port: u16) -> Forwarder {
        let ip = loopback_ips(1)[0];
        let listener = TcpListener::bind((ip, 0)).expect("bind the forwarder");
        let addr = listener.local_addr().expect("forwarder address");
        listener
            .set_nonblocking(true)
            .expect("make the forwarder non-blocking");
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (ns, accepted, stop, streams) = (
                Arc::clone(ns),
                Arc::clone(&accepted),
                Arc::clone(&stop),
                Arc::clone(&streams),
            );
            thread::spawn(move || accept_loop(listener, &ns, port, &accepted, &stop, &streams))
        };
        Forwarder {
            addr,
            accepted,
            stop,
            streams,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Cuts every connection carried so far (the jump host "goes away" under its clients).
    pub fn cut_all(&self) {
        for s in self.streams.lock().expect("forwarder streams").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut_all();
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    ns: &Arc<Netns>,
    port: u16,
    accepted: &AtomicUsize,
    stop: &AtomicBool,
    streams: &Mutex<Vec<TcpStream>>,
) {
    // Bounded: a forgotten forwarder stops by itself.
    let end = Instant::now() + Duration::from_secs(30 * 60);
    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(_) => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nonblocking(false);
        let Ok(server) = ns.connect(port) else {
            continue; // dropping the client tells it the jump host is unreachable
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let mut held = streams.lock().expect("forwarder streams");
        for s in [&client, &server] {
            if let Ok(clone) = s.try_clone() {
                held.push(clone);
            }
        }
        drop(held);
        copy_both(client, server);
    }
}

/// Acknowledges what was just read, as scout-mcp's tunnel pump does on its jump socket:
/// the jump sshd leaves Nagle on, so with our delayed ACKs the forwarder (not scout-mcp)
/// would be the hop that stalls bulk reads by ~40 ms, a delay no real client sees.
fn ack_now(stream: &TcpStream) {
    let on: libc::c_int = 1;
    // SAFETY: the stream is open and the value a live c_int of the size passed.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Copies bytes both ways on two threads; each ends when its source closes.
fn copy_both(a: TcpStream, b: TcpStream) {
    let pairs = [
        (a.try_clone(), b.try_clone()),
        (b.try_clone(), a.try_clone()),
    ];
    for (from, to) in pairs {
        let (Ok(mut from), Ok(mut to)) = (from, to) else {
            continue;
        };
        thread::spawn(move || {
            let mut buf = [0u8; 32 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                ack_now(&from);
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}
