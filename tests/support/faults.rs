//! Hosts that fail below SSH: one that accepts TCP and then never speaks, and an address
//! where nothing listens.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::net::{free_port, loopback_ips};

/// Connections a silent listener keeps open; beyond that it stops accepting, and the kernel's
/// backlog, then unanswered SYNs, keep later clients waiting just the same.
const MAX_HELD: usize = 4096;

/// A silent host stops accepting after this long, so a forgotten one cannot run forever.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// A TCP listener on its own loopback address that accepts connections and never writes a
/// byte: a host that "accepts TCP but never speaks". Connections stay open until it is dropped.
pub struct SilentListener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl SilentListener {
    pub fn start() -> SilentListener {
        let ip = loopback_ips(1)[0];
        let listener = TcpListener::bind((ip, 0))
            .unwrap_or_else(|e| panic!("cannot bind a silent listener on {ip}:0: {e}"));
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener");
        // Non-blocking, so the acceptor thread can notice `stop` between connections.
        listener
            .set_nonblocking(true)
            .expect("make the silent listener non-blocking");
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || hold_connections(&listener, &stop))
        };
        SilentListener {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn hold_connections(listener: &TcpListener, stop: &AtomicBool) {
    let started = Instant::now();
    let mut held: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < MAX_LIFETIME {
        if held.len() < MAX_HELD {
            if let Ok((stream, _peer)) = listener.accept() {
                held.push(stream);
                continue;
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    // Dropping `held` here closes every connection the silent host ever accepted.
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// A loopback address and port with nothing listening: connecting is refused at once.
pub fn closed_port() -> SocketAddr {
    let ip = loopback_ips(1)[0];
    SocketAddr::from((ip, free_port(ip)))
}
