//! Proves the test fixture itself (tests/support) with OpenSSH's own client: every host answers
//! with its known host key as the remote user, the data dir is usable over ssh and sftp,
//! connections are counted, a killed daemon cuts its clients off and comes back on the same
//! address, and no process outlives its fleet. Nothing here involves scout-mcp.

mod support;

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use support::{closed_port, is_alive, poll, run_bounded, Fleet, SilentListener, PATIENCE};

/// Runs `command` on `alias` with OpenSSH's ssh; returns its stdout, or panics with its stderr.
fn ssh(fleet: &Fleet, alias: &str, command: &str) -> String {
    let out = run_bounded(fleet.ssh_command(alias).arg(command), PATIENCE);
    assert!(
        out.status.success(),
        "expected `ssh {alias} {command:?}` to succeed; it exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("ssh output is UTF-8")
}

/// Waits until exactly `n` TCP connections to the fleet are established.
fn wait_for_connections(fleet: &Fleet, n: usize) {
    let reached = poll(PATIENCE, Duration::from_millis(10), || {
        (fleet.established_connections() == n).then_some(())
    });
    assert!(
        reached.is_some(),
        "expected {n} established connections to the fleet within {PATIENCE:?}; there are {}",
        fleet.established_connections()
    );
}

/// An OpenSSH client running a remote command; killed and reaped on drop.
struct Session {
    child: Child,
}

impl Session {
    /// Runs `cat` on `alias`: the session, and its connection, last until stdin closes.
    fn open(fleet: &Fleet, alias: &str) -> Session {
        Session::run(fleet, alias, "cat")
    }

    fn run(fleet: &Fleet, alias: &str, command: &str) -> Session {
        let child = fleet
            .ssh_command(alias)
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start OpenSSH's ssh");
        Session { child }
    }

    /// The first line the remote command prints.
    fn first_line(&mut self) -> String {
        let stdout = self.child.stdout.take().expect("piped stdout");
        let (sender, line) = mpsc::channel();
        // A thread reads, so that a silent remote command fails the test instead of hanging it.
        thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(stdout).read_line(&mut first);
            let _ = sender.send(first);
        });
        line.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!("expected a line from the remote command within {PATIENCE:?}")
        })
    }

    /// Closes stdin, so that `cat` and then ssh finish.
    fn close(&mut self) -> ExitStatus {
        drop(self.child.stdin.take());
        self.wait_exit()
    }

    fn wait_exit(&mut self) -> ExitStatus {
        poll(PATIENCE, Duration::from_millis(10), || {
            self.child.try_wait().expect("check whether ssh exited")
        })
        .unwrap_or_else(|| panic!("expected ssh to exit within {PATIENCE:?}; it is still running"))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_host_answers_as_the_remote_user_with_its_known_host_key() {
    // 17 hosts take two daemons: the 17th address is served by the second one.
    let fleet = Fleet::start(17);
    assert_eq!(fleet.daemon_count(), 2);
    let ips: HashSet<_> = (0..17).map(|i| fleet.addr(i).ip()).collect();
    assert_eq!(ips.len(), 17, "every host has an address of its own");
    // StrictHostKeyChecking=yes: each connection proves that address's known_hosts line.
    // The clients run at once, as scout-mcp's would.
    let answers: Vec<(String, String)> = thread::scope(|scope| {
        let fleet = &fleet;
        let clients: Vec<_> = fleet
            .aliases()
            .into_iter()
            .map(|alias| scope.spawn(move || (ssh(fleet, &alias, "echo hi; id -un"), alias)))
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("an ssh client thread"))
            .collect()
    });
    for (answer, alias) in answers {
        assert_eq!(
            answer,
            format!("hi\n{}\n", fleet.remote_user()),
            "answer from {alias}"
        );
    }
}

#[test]
fn the_data_dir_is_readable_and_writable_over_ssh_and_sftp() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("a/b/hello.txt", b"hello\n");
    let empty = fleet.mkdir("empty");
    let data = fleet.data_dir();
    assert_eq!(
        ssh(&fleet, "host0", &format!("cat {}", file.display())),
        "hello\n"
    );

    // The remote user owns what the fixture made, so it may change it.
    ssh(
        &fleet,
        "host0",
        &format!(
            "echo more >> {} && touch {}/new && mkdir {}/a/b/c",
            file.display(),
            empty.display(),
            data.display()
        ),
    );
    assert_eq!(
        fs::read_to_string(&file).expect("read back"),
        "hello\nmore\n"
    );
    assert!(empty.join("new").exists() && data.join("a/b/c").is_dir());

    // The sftp subsystem serves the same files.
    let batch = fleet.dir().join("sftp-batch");
    let copy = fleet.dir().join("hello-copy.txt");
    let commands = format!(
        "ls -1 {}/a/b\nget {} {}\n",
        data.display(),
        file.display(),
        copy.display()
    );
    fs::write(&batch, commands).expect("write the sftp batch file");
    let out = run_bounded(
        Command::new("sftp")
            .args(fleet.openssh_args())
            .arg("-b")
            .arg(&batch)
            .arg("host0"),
        PATIENCE,
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listing.contains("hello.txt"),
        "expected sftp to list and fetch hello.txt; it exited {}.\nstdout: {listing}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(&copy).expect("read the sftp copy"),
        "hello\nmore\n"
    );
}

#[test]
fn established_connections_count_open_sessions() {
    let fleet = Fleet::start(2);
    assert_eq!(fleet.established_connections(), 0);
    let mut first = Session::open(&fleet, "host0");
    let second = Session::open(&fleet, "host1");
    wait_for_connections(&fleet, 2);
    assert!(
        first.close().success(),
        "a session closed by its client ends cleanly"
    );
    wait_for_connections(&fleet, 1);
    drop(second);
    wait_for_connections(&fleet, 0);
}

#[test]
fn a_killed_sshd_cuts_its_clients_off_and_restarts_on_the_same_address() {
    let mut fleet = Fleet::start(1);
    let mut session = Session::open(&fleet, "host0");
    wait_for_connections(&fleet, 1);
    let listener = fleet.sshd_pid(0).expect("sshd 0 is running");

    fleet.kill_sshd(0);
    assert!(
        !is_alive(listener),
        "sshd's listener is gone after kill_sshd"
    );
    assert_eq!(fleet.sshd_pid(0), None);
    assert_eq!(
        fleet.established_connections(),
        0,
        "its connections died with it"
    );
    // The client learns that its connection died, rather than hanging.
    assert!(
        !session.wait_exit().success(),
        "ssh reports the lost connection as a failure"
    );
    let refused = TcpStream::connect_timeout(&fleet.addr(0), PATIENCE)
        .expect_err("nothing listens on a killed sshd's address");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);

    fleet.restart_sshd(0);
    // Same address and port, same host key: the client's known_hosts still matches.
    assert_eq!(ssh(&fleet, "host0", "echo back"), "back\n");
    assert_ne!(fleet.sshd_pid(0), Some(listener));
}

#[test]
fn no_process_outlives_its_fleet() {
    let fleet = Fleet::start(1);
    let listener = fleet.sshd_pid(0).expect("sshd 0 is running");
    // A remote command whose connection dies keeps running: sshd does not stop it.
    let mut session = Session::run(&fleet, "host0", "echo $$; exec sleep 600");
    let remote: u32 = session
        .first_line()
        .trim()
        .parse()
        .expect("the remote shell's pid");
    drop(session);
    // Give sshd a moment to notice the client is gone and let go of the command, so that
    // the fleet has to find it outside sshd's process tree.
    poll(Duration::from_secs(5), Duration::from_millis(10), || {
        (!ancestors(remote).contains(&listener)).then_some(())
    });

    drop(fleet);
    assert!(!is_alive(listener), "sshd stopped with its fleet");
    let gone = poll(PATIENCE, Duration::from_millis(10), || {
        (!is_alive(remote)).then_some(())
    });
    assert!(
        gone.is_some(),
        "the orphaned remote command {remote} stopped with the fleet"
    );
}

/// The parent, grandparent, ... of `pid`, as far as /proc tells.
fn ancestors(pid: u32) -> Vec<u32> {
    let parent = |pid: u32| -> Option<u32> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    // Bounded: a process tree is never deeper than this on a test machine.
    std::iter::successors(parent(pid), |&p| parent(p))
        .take_while(|&p| p != 0)
        .take(100)
        .collect()
}

#[test]
fn fault_helpers_accept_silently_or_refuse() {
    let silent = SilentListener::start();
    let mut stream =
        TcpStream::connect_timeout(&silent.addr(), PATIENCE).expect("the silent host accepts TCP");
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("set a read timeout");
    // Nothing arrives, so the read times out. (A signal may cut the wait short: wait again.)
    let mut byte = [0u8; 1];
    let heard = (0..10).find_map(|_| match stream.read(&mut byte) {
        Err(e) if e.kind() == ErrorKind::Interrupted => None,
        other => Some(other),
    });
    match heard {
        Some(Err(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected the silent host to send nothing; read gave {other:?}"),
    }

    let closed = closed_port();
    let refused = TcpStream::connect_timeout(&closed, PATIENCE)
        .expect_err("nothing listens on closed_port()");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);

    // Extra hosts go into a config of their own, beside the fleet's hosts, same user and key.
    let fleet = Fleet::start(1);
    let config = fleet.ssh_config_with(&[("silent", silent.addr()), ("closed", closed)]);
    for (alias, addr) in [
        ("host0", fleet.addr(0)),
        ("silent", silent.addr()),
        ("closed", closed),
    ] {
        // ssh -G prints the settings it would connect with, without connecting.
        let out = run_bounded(
            Command::new("ssh")
                .arg("-G")
                .arg("-F")
                .arg(&config)
                .arg(alias),
            PATIENCE,
        );
        let settings = String::from_utf8_lossy(&out.stdout);
        let has = |line: String| settings.lines().any(|l| l == line);
        assert!(
            has(format!("hostname {}", addr.ip()))
                && has(format!("port {}", addr.port()))
                && has(format!("user {}", fleet.remote_user())),
            "expected {alias} to reach {addr} as {}; ssh -G says:\n{settings}",
            fleet.remote_user()
        );
    }
    // An SSH client gets no banner from the silent host and gives up.
    let out = run_bounded(
        Command::new("ssh").arg("-F").arg(&config).args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=1",
            "silent",
            "true",
        ]),
        PATIENCE,
    );
    assert!(
        !out.status.success(),
        "expected ssh to the silent host to fail"
    );
}

#[test]
fn builder_options_reach_sshd_and_extra_aliases_share_addresses() {
    let fleet = Fleet::builder()
        .hosts(2)
        .aliases_per_host(3)
        .sshd_option("MaxSessions", "2")
        .start();
    assert_eq!(
        fleet.aliases(),
        ["host0", "host1", "host2", "host3", "host4", "host5"]
    );
    // Alias 5 names host 1: same address and port, so the same known_hosts line serves it.
    assert_eq!(fleet.host_of_alias(5), 1);
    assert_eq!(ssh(&fleet, "host5", "echo five"), "five\n");

    // sshd -T prints the settings sshd runs with: the builder's value replaced the default.
    let out = run_bounded(
        Command::new("/usr/sbin/sshd")
            .arg("-T")
            .arg("-f")
            .arg(fleet.sshd_config_path(0)),
        PATIENCE,
    );
    let settings = String::from_utf8_lossy(&out.stdout);
    assert!(
        settings.lines().any(|l| l == "maxsessions 2"),
        "expected sshd -T to report maxsessions 2; it said ({}):\n{settings}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
