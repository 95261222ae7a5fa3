//! One sshd daemon of a fleet: its config file, its process, and a watchdog that stops it
//! should the test process die without dropping it.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::net::{free_port, listening_by};
use super::process::{crash_all, crash_tree, session_processes};
use super::{poll, PATIENCE};

/// sshd insists on being started by absolute path (it re-executes itself per connection).
pub(super) const SSHD: &str = "/usr/sbin/sshd";

/// sshd accepts at most 16 ListenAddress lines.
pub(super) const MAX_ADDRS_PER_DAEMON: usize = 16;

/// Starting fails now and then for a reason a retry cures (another process took a port).
const START_ATTEMPTS: usize = 5;

/// The sshd_config lines every daemon gets, before the fleet's own overrides (DESIGN.md §4).
pub(super) fn default_options() -> Vec<(String, String)> {
    let mut options = vec![
        // No PAM: sshd needs nothing from the machine's login configuration.
        ("UsePAM", "no"),
        // The temp dir and keys belong to root, not to the user logging in.
        ("StrictModes", "no"),
        ("PermitRootLogin", "yes"),
        ("PasswordAuthentication", "no"),
        ("KbdInteractiveAuthentication", "no"),
        ("Subsystem", "sftp internal-sftp"),
        // Tests open many connections at once; the default (10:30:100) drops some of them.
        ("MaxStartups", "200:30:400"),
        ("MaxSessions", "10"),
    ];
    // ERROR keeps the log to what went wrong; set SCOUT_TEST_SSHD_LOG_LEVEL=VERBOSE (or
    // DEBUG3) to see every connection and authentication in the logs a failing test prints.
    let log_level = std::env::var("SCOUT_TEST_SSHD_LOG_LEVEL").unwrap_or_else(|_| "ERROR".into());
    options.push(("LogLevel", &log_level));
    // OpenSSH 9.8 and later shut out a source address that fails to log in or drops
    // connections early. Every test connects from 127.0.0.1, and some fail on purpose.
    if sshd_version() >= (9, 8) {
        options.push(("PerSourcePenalties", "no"));
    }
    options
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// OpenSSH's (major, minor) version, from `sshd -V` ("OpenSSH_9.2p1 ..."; older versions
/// print it before the usage text they answer an unknown option with).
fn sshd_version() -> (u32, u32) {
    static VERSION: OnceLock<(u32, u32)> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let out = Command::new(SSHD)
            .arg("-V")
            .output()
            .unwrap_or_else(|e| panic!("could not run {SSHD} -V: {e}"));
        let text = String::from_utf8_lossy(&out.stderr);
        let version = text.split("OpenSSH_").nth(1).unwrap_or_default();
        let mut numbers = version.split(|c: char| !c.is_ascii_digit());
        let major = numbers.next().and_then(|n| n.parse().ok());
        let minor = numbers.next().and_then(|n| n.parse().ok());
        match (major, minor) {
            (Some(major), Some(minor)) => (major, minor),
            _ => panic!("cannot read OpenSSH's version from `{SSHD} -V`: {text:?}"),
        }
    })
}

/// One sshd, listening on up to 16 addresses. Stopped (with all it started) when dropped.
pub(super) struct Sshd {
    index: usize,
    addrs: Vec<SocketAddrV4>,
    /// The fleet's temp dir, where the keys are and the config, log and pid file go.
    dir: PathBuf,
    options: Vec<(String, String)>,
    running: Option<Running>,
    starts: usize,
}

struct Running {
    child: Child,
    watchdog: Watchdog,
}

impl Sshd {
    /// Starts a daemon serving each of `ips` on a free port of its own. When sshd cannot
    /// start (another process took a port meanwhile), it tries again on new ports.
    pub fn start(
        index: usize,
        ips: &[Ipv4Addr],
        dir: &Path,
        options: Vec<(String, String)>,
    ) -> Sshd {
        assert!(
            (1..=MAX_ADDRS_PER_DAEMON).contains(&ips.len()),
            "one sshd serves 1 to {MAX_ADDRS_PER_DAEMON} addresses, not {}",
            ips.len()
        );
        let mut sshd = Sshd {
            index,
            addrs: Vec::new(),
            dir: dir.to_path_buf(),
            options,
            running: None,
            starts: 0,
        };
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            sshd.addrs = ips
                .iter()
                .map(|&ip| SocketAddrV4::new(ip, free_port(ip)))
                .collect();
            match sshd.launch() {
                Ok(()) => return sshd,
                Err(why) => failures.push(format!("attempt {attempt}: {why}")),
            }
        }
        panic!("{}", sshd.failure_report("start", &failures));
    }

    /// Starts the daemon again on the same addresses and ports (stopping it first if it runs).
    pub fn restart(&mut self) {
        self.stop();
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            match self.launch() {
                Ok(()) => return,
                Err(why) => failures.push(format!("attempt {attempt}: {why}")),
            }
            // The ports are fixed now (clients know them), so all we can do is wait for
            // whoever holds one to let go.
            thread::sleep(Duration::from_millis(200));
        }
        panic!("{}", self.failure_report("restart", &failures));
    }

    /// Kills the daemon, every process serving its connections and every command those
    /// started, then reaps it. Returns false if some process refused to die within 10 s.
    pub fn stop(&mut self) -> bool {
        let mut all_gone = true;
        if let Some(Running {
            mut child,
            watchdog,
        }) = self.running.take()
        {
            // Dismiss the watchdog first: once sshd is reaped, its pid may belong to
            // another process, which the watchdog must never be told to kill.
            drop(watchdog);
            all_gone = crash_tree(child.id());
            let _ = child.kill(); // in case it survived crash_tree; fails if it is dead
            let _ = child.wait();
        }
        // A remote command whose connection died earlier is no longer below sshd.
        let ours: HashSet<SocketAddrV4> = self.addrs.iter().copied().collect();
        crash_all(&session_processes(&ours)) && all_gone
    }

    pub fn addrs(&self) -> &[SocketAddrV4] {
        &self.addrs
    }

    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.child.id())
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join(format!("sshd-{}.conf", self.index))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("sshd-{}.log", self.index))
    }

    /// Everything this daemon logged, over all its starts.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn config_text(&self) -> String {
        let dir = self.dir.display();
        let mut text = format!(
            "# sshd {} of a scout-mcp test fleet (tests/support)\n",
            self.index
        );
        for addr in &self.addrs {
            text += &format!("ListenAddress {addr}\n");
        }
        text += &format!("HostKey {dir}/host_key\n");
        text += &format!("PidFile {dir}/sshd-{}.pid\n", self.index);
        text += &format!("AuthorizedKeysFile {dir}/authorized_keys\n");
        for (key, value) in &self.options {
            text += &format!("{key} {value}\n");
        }
        text
    }

    /// Writes the config, starts sshd and waits until it listens on every address.
    fn launch(&mut self) -> Result<(), String> {
        fs::write(self.config_path(), self.config_text())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", self.config_path().display()));
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log_path().display()));
        writeln!(
            log,
            "--- tests/support: start {} of sshd {} on {:?}",
            self.starts, self.index, self.addrs
        )
        .expect("write to the sshd log");
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicate the sshd log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SSHD} (is openssh-server installed?): {e}"));
        let watchdog = Watchdog::guard(child.id());
        self.running = Some(Running { child, watchdog });
        let outcome = self.wait_until_listening(log_start);
        if outcome.is_err() {
            self.stop();
        }
        outcome
    }

    /// Waits until sshd holds a listening socket on each of its addresses. Fails early if it
    /// exits or reports that it could not bind one of them.
    fn wait_until_listening(&mut self, log_start: u64) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let child = &mut self.running.as_mut().expect("sshd was just started").child;
            if let Some(status) = child.try_wait().expect("check whether sshd exited") {
                return Err(format!("sshd exited ({status}) before it was listening"));
            }
            let pid = child.id();
            // sshd keeps running when it can bind only some of its addresses.
            let log = read_from(&self.log_path(), log_start);
            if let Some(line) = log
                .lines()
                // "Bind to port N on A failed: ..."; at LogLevel DEBUG1 sshd also logs
                // "debug1: Bind to port N on A." before every successful bind.
                .find(|l| {
                    (l.contains("Bind to port") && l.contains("failed"))
                        || l.contains("Cannot bind")
                })
            {
                return Err(format!("sshd could not bind an address: {line}"));
            }
            let listening = listening_by(pid, &self.addrs);
            if listening.len() == self.addrs.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let missing: Vec<_> = self
                    .addrs
                    .iter()
                    .filter(|a| !listening.contains(a))
                    .collect();
                return Err(format!(
                    "after {PATIENCE:?} sshd was still not listening on {missing:?}"
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn failure_report(&self, what: &str, failures: &[String]) -> String {
        format!(
            "could not {what} sshd {} ({SSHD} -D -e -f {}):\n{}\n--- config ---\n{}--- log ({}) ---\n{}",
            self.index,
            self.config_path().display(),
            failures.join("\n"),
            self.config_text(),
            self.log_path().display(),
            self.log(),
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if !self.stop() {
            eprintln!(
                "tests/support: some processes of sshd {} would not die within 10 s",
                self.index
            );
        }
    }
}

/// What was appended to the file at `path` after byte `offset`.
fn read_from(path: &Path, offset: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// A `sh` process that SIGKILLs one sshd (or ssh-agent) if this test process dies without
/// dropping it (killed by a signal, say), so that no daemon outlives its test run. It waits for
/// a line on a pipe from us: "stop" means we are stopping the daemon ourselves; end-of-file
/// without it means the test process is gone, since the kernel closes our end of the pipe
/// however we die.
pub(super) struct Watchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    pub(super) fn guard(pid: u32) -> Watchdog {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"read -r word; [ "$word" = stop ] || kill -s KILL "$1" 2>/dev/null"#)
            .arg("sshd-watchdog")
            .arg(pid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sh as the sshd watchdog");
        let pipe = child.stdin.take();
        Watchdog { child, pipe }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(b"stop\n");
        }
        let exited = poll(Duration::from_secs(5), Duration::from_millis(2), || {
            self.child.try_wait().ok().flatten()
        });
        if exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
