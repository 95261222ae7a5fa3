//! Processes: reading the process tree from /proc, killing by PID, and running a command
//! with a deadline.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::poll;

/// What /proc/PID/stat tells about one process.
#[derive(Clone, Copy, Debug)]
pub(super) struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// Exited and waiting for its parent to reap it.
    pub zombie: bool,
    /// Stopped by a signal (SIGSTOP): it runs no code, so it can neither fork nor react.
    pub stopped: bool,
}

/// Every process on the machine. Processes that exit while we look are simply left out.
pub(super) fn processes() -> Vec<Proc> {
    let entries = fs::read_dir("/proc").expect("list /proc to find processes");
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            read_proc(pid)
        })
        .collect()
}

fn read_proc(pid: u32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name comes in parentheses and may itself hold spaces or ')', so the
    // fields we want are counted from the last ')': state, then parent pid.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        zombie: state == "Z" || state == "X",
        stopped: state == "T" || state == "t",
    })
}

/// Whether a process whose command line matches `pattern` (`pgrep -f`) is running: how a
/// test sees the remote side's processes, since the fleet's sshd runs on this machine.
pub fn command_running(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// True while `pid` is running; a process that has exited but is not yet reaped counts as gone.
pub fn is_alive(pid: u32) -> bool {
    read_proc(pid).is_some_and(|p| !p.zombie)
}

/// The processes below `root` (children, grandchildren, ...), from one snapshot of /proc.
pub(super) fn descendants(root: u32) -> Vec<Proc> {
    let mut children: HashMap<u32, Vec<Proc>> = HashMap::new();
    for p in processes() {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut found = Vec::new();
    let mut seen = HashSet::from([root]);
    let mut frontier = vec![root];
    // Each pid enters the frontier at most once, so this ends after at most one visit per process.
    while let Some(pid) = frontier.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            if seen.insert(child.pid) {
                found.push(*child);
                frontier.push(child.pid);
            }
        }
    }
    found
}

/// Sends `signal` ("STOP", "KILL") to each of `pids`; ones that already exited are ignored.
fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    // std can signal only the children it spawned itself; the shell's `kill` builtin signals
    // any PID, and needs nothing beyond /bin/sh installed.
    let result = Command::new("sh")
        .arg("-c")
        .arg(r#"signal=$1; shift; kill -s "$signal" "$@" 2>/dev/null; exit 0"#)
        .arg("signal")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .status();
    if let Err(e) = result {
        panic!("could not run sh to send SIG{signal} to {pids:?}: {e}");
    }
}

/// Kills `root` and every process below it as abruptly as a crash, and returns once none of
/// them runs (false if some still did after 10 s). The caller reaps `root` if it is its child.
///
/// First the whole tree is frozen with SIGSTOP, again and again until /proc shows every
/// member stopped: a process that forks as it is being stopped leaves a running child that
/// needs stopping too. A frozen tree can neither grow nor react, so nothing escapes (a child
/// forked after we looked and orphaned by its parent's death would be out of our reach) and
/// nothing says goodbye (an sshd session process would report its killed command's exit
/// status to the client, instead of the connection just dropping). Then each member gets
/// SIGKILL, and so does every process we froze on the way, even if it has left the tree
/// since: one whose parent was exiting anyway now belongs to init, and would otherwise stay
/// frozen forever. Members whose parent dies with them are reaped by init.
pub(super) fn crash_tree(root: u32) -> bool {
    let members = || {
        let mut tree = descendants(root);
        tree.extend(read_proc(root));
        tree.retain(|p| !p.zombie);
        tree
    };
    // A frozen process cannot exit, so its pid stays its own until we kill it.
    let mut frozen: HashSet<u32> = HashSet::new();
    let all_frozen = poll(Duration::from_secs(10), Duration::from_millis(2), || {
        let moving: Vec<u32> = members()
            .iter()
            .filter(|p| !p.stopped)
            .map(|p| p.pid)
            .collect();
        signal("STOP", &moving);
        frozen.extend(&moving);
        moving.is_empty().then_some(())
    });
    // Whether or not all of it froze, kill what is there, and whatever turns up after.
    let all_dead = poll(Duration::from_secs(10), Duration::from_millis(5), || {
        let mut running: HashSet<u32> = members().iter().map(|p| p.pid).collect();
        running.extend(frozen.iter().copied().filter(|&pid| is_alive(pid)));
        let running: Vec<u32> = running.into_iter().collect();
        signal("KILL", &running);
        running.is_empty().then_some(())
    });
    all_frozen.is_some() && all_dead.is_some()
}

/// Kills each of `pids` the same way (all stopped, then all killed), and returns once none
/// runs (false if some still did after 10 s).
pub(super) fn crash_all(pids: &[u32]) -> bool {
    signal("STOP", pids);
    signal("KILL", pids);
    let gone = poll(Duration::from_secs(10), Duration::from_millis(5), || {
        pids.iter().all(|&pid| !is_alive(pid)).then_some(())
    });
    gone.is_some()
}

/// Processes that sshd started for a connection to one of `servers`, found by the
/// SSH_CONNECTION variable ("client-ip client-port server-ip server-port") that sshd puts in
/// every session's environment. A remote command whose connection died is no longer below
/// sshd in the process tree (it belongs to init then), but it still carries that variable.
pub(super) fn session_processes(servers: &HashSet<SocketAddrV4>) -> Vec<u32> {
    let me = std::process::id();
    processes()
        .into_iter()
        .filter(|p| p.pid != me && !p.zombie)
        .filter(|p| {
            // Other users' environments are unreadable when we are not root: those were not
            // started by our sshd anyway, which runs as us then.
            let Ok(environ) = fs::read(format!("/proc/{}/environ", p.pid)) else {
                return false;
            };
            environ
                .split(|&b| b == 0)
                .find_map(|var| var.strip_prefix(b"SSH_CONNECTION="))
                .and_then(ssh_connection_server)
                .is_some_and(|server| servers.contains(&server))
        })
        .map(|p| p.pid)
        .collect()
}

fn ssh_connection_server(value: &[u8]) -> Option<SocketAddrV4> {
    let value = std::str::from_utf8(value).ok()?;
    let mut fields = value.split_whitespace().skip(2);
    let ip: Ipv4Addr = fields.next()?.parse().ok()?;
    let port: u16 = fields.next()?.parse().ok()?;
    Some(SocketAddrV4::new(ip, port))
}

/// Runs `cmd` to completion with stdin empty and stdout/stderr captured. Panics, after killing
/// it, if it is still running after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
    // Both pipes are drained on their own threads, so a child that writes a lot to one of
    // them never blocks on a full pipe while we wait.
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = poll(limit, Duration::from_millis(5), || {
        child
            .try_wait()
            .unwrap_or_else(|e| panic!("could not check whether {cmd:?} exited: {e}"))
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{cmd:?} was still running after {limit:?}, so it was killed.\n\
             stdout so far: {}\nstderr so far: {}",
            String::from_utf8_lossy(&stdout.wait_done(Duration::from_secs(1))),
            String::from_utf8_lossy(&stderr.wait_done(Duration::from_secs(1))),
        );
    };
    // The pipes reach end-of-file when the child exits, unless it left a process behind that
    // holds them open; then we take what arrived within a few seconds.
    Output {
        status,
        stdout: stdout.wait_done(Duration::from_secs(5)),
        stderr: stderr.wait_done(Duration::from_secs(5)),
    }
}

/// Bytes read from a pipe by a background thread, and whether it has reached end-of-file.
struct Drained {
    bytes: Arc<Mutex<Vec<u8>>>,
    done: thread::JoinHandle<()>,
}

fn drain(mut pipe: impl Read + Send + 'static) -> Drained {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&bytes);
    let done = thread::spawn(move || {
        let mut buf = [0u8; 8192];
        // Ends at end-of-file or on a read error; each round consumes bytes from the pipe.
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            sink.lock()
                .expect("drain buffer lock")
                .extend_from_slice(&buf[..n]);
        }
    });
    Drained { bytes, done }
}

impl Drained {
    /// What was read, after waiting up to `limit` for end-of-file.
    fn wait_done(self, limit: Duration) -> Vec<u8> {
        poll(limit, Duration::from_millis(5), || {
            self.done.is_finished().then_some(())
        });
        let bytes = self.bytes.lock().expect("drain buffer lock");
        bytes.clone()
    }
}
