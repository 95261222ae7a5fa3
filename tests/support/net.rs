//! Loopback addresses and ports for test hosts, and what the kernel says about TCP sockets.

use std::collections::HashSet;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// Addresses are handed out from 127.0.B.C with B in 0..=254 and C in 2..=254: all on
/// loopback, never 127.0.0.1 (which everything else on the machine uses), never .0/.1/.255.
const PER_BLOCK: u32 = 253;
const SPACE: u32 = 255 * PER_BLOCK;

/// How many addresses this process has handed out so far.
static HANDED_OUT: AtomicU32 = AtomicU32::new(0);

/// `n` loopback addresses, distinct from the last 64,000 this process handed out. Each process
/// starts at its own point of the range (derived from its pid), so test binaries running at the
/// same time rarely share an address; when they do, their ports still differ.
pub(super) fn loopback_ips(n: usize) -> Vec<Ipv4Addr> {
    let n = u32::try_from(n).expect("fewer than 4 billion addresses");
    let start = (u64::from(std::process::id()) * 2_654_435_761 % u64::from(SPACE)) as u32;
    let first = HANDED_OUT.fetch_add(n, Ordering::Relaxed);
    (0..n)
        .map(|k| {
            let index = (start + first.wrapping_add(k) % SPACE) % SPACE;
            let block = u8::try_from(index / PER_BLOCK).expect("block < 255");
            let host = u8::try_from(index % PER_BLOCK + 2).expect("host < 255");
            Ipv4Addr::new(127, 0, block, host)
        })
        .collect()
}

/// A port that nothing listens on at `ip` right now: the kernel picks it when we bind port 0,
/// and it is free again once we drop the listener. Someone else may take it before we use it;
/// callers that start a server on it retry with another port when that happens.
pub(super) fn free_port(ip: Ipv4Addr) -> u16 {
    let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| {
        panic!("cannot bind {ip}:0 to pick a free port: {e} (is 127.0.0.0/8 routed to lo?)")
    });
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

pub(super) const ESTABLISHED: u8 = 0x01;
pub(super) const LISTEN: u8 = 0x0A;

/// One IPv4 TCP socket as listed in /proc/net/tcp.
#[derive(Clone, Copy, Debug)]
pub(super) struct TcpSocket {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub state: u8,
    pub inode: u64,
}

/// All IPv4 TCP sockets of this network namespace.
pub(super) fn tcp_sockets() -> Vec<TcpSocket> {
    let table =
        fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp to list TCP sockets");
    // After a header line, each line reads:
    // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ..."
    table.lines().skip(1).filter_map(parse_tcp_line).collect()
}

fn parse_tcp_line(line: &str) -> Option<TcpSocket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    Some(TcpSocket {
        local: parse_hex_addr(fields.get(1)?)?,
        remote: parse_hex_addr(fields.get(2)?)?,
        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// "0100007F:0016" → 127.0.0.1:22. The kernel prints the address as the hex of a u32 that holds
/// the bytes in network order, read as a native integer; the port is plain hex.
fn parse_hex_addr(text: &str) -> Option<SocketAddrV4> {
    let (ip, port) = text.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port))
}

/// Inodes of the sockets that process `pid` has open (empty if it is gone or not ours).
pub(super) fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| {
        let target = fs::read_link(fd.ok()?.path()).ok()?;
        let target = target.to_str()?;
        target
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// Which of `wanted` have a listening socket held by process `pid`.
pub(super) fn listening_by(pid: u32, wanted: &[SocketAddrV4]) -> HashSet<SocketAddrV4> {
    let inodes = socket_inodes(pid);
    tcp_sockets()
        .into_iter()
        .filter(|s| s.state == LISTEN && inodes.contains(&s.inode) && wanted.contains(&s.local))
        .map(|s| s.local)
        .collect()
}
