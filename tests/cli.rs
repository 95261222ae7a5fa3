//! The command line (`call`, `hosts`, `check`, `--help`) against a real
//! fleet: the binary run as a person would run it, its stdout, stderr and
//! exit status checked.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use support::{closed_port, command_running, run_bounded, wait_until, Fleet, PATIENCE};

/// The binary with exactly `env` as its SCOUT_* settings: the developer's
/// own settings and ssh-agent must not change what a test sees.
fn scout(env: &[(String, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scout-mcp"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SCOUT_") {
            command.env_remove(&key);
        }
    }
    command.env_remove("SSH_AUTH_SOCK").env_remove("RUST_LOG");
    command.envs(env.iter().map(|(k, v)| (k, v))).args(args);
    command
}

fn run(env: &[(String, String)], args: &[&str]) -> Output {
    run_bounded(&mut scout(env, args), PATIENCE)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {out:?}"))
}

/// The fleet's environment with a different ssh config and known_hosts.
fn env_with(fleet: &Fleet, config: &Path, known_hosts: &Path) -> Vec<(String, String)> {
    let mut env = fleet.env();
    env.retain(|(k, _)| k != "SCOUT_SSH_CONFIG" && k != "SCOUT_KNOWN_HOSTS");
    env.push(("SCOUT_SSH_CONFIG".into(), config.display().to_string()));
    env.push((
        "SCOUT_KNOWN_HOSTS".into(),
        known_hosts.display().to_string(),
    ));
    env
}

#[test]
fn call_prints_a_file() {
    let fleet = Fleet::start(1);
    let path = fleet.write_file("notes.txt", b"first line\nsecond line\n");
    let target = format!("{}:{}", fleet.alias(0), path.display());
    let out = run(&fleet.env(), &["call", &target]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("first line\nsecond line"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn call_runs_a_command_and_shows_a_failing_exit_code() {
    let fleet = Fleet::start(1);
    let target = format!("{}:/", fleet.alias(0));
    let out = run(&fleet.env(), &["call", &target, "--query", "echo hi"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "hi");

    let out = run(
        &fleet.env(),
        &["call", &target, "--query", "echo oops >&2; exit 3"],
    );
    let text = stdout(&out);
    assert!(text.contains("[exit code: 3]"), "{text}");
    assert!(text.contains("oops"), "{text}");

    let out = run(
        &fleet.env(),
        &["call", &target, "--query=echo hi", "--json"],
    );
    let value: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("--json printed no JSON ({e}): {}", stdout(&out)));
    assert_eq!(value["stdout"], "hi\n");
    assert_eq!(value["exit_code"], 0);
}

#[test]
fn call_on_an_unknown_host_exits_1_naming_it() {
    let fleet = Fleet::start(1);
    let out = run(&fleet.env(), &["call", "nosuchhost:/etc/hosts"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Unknown host 'nosuchhost'"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn call_broadcasts_to_targets_given_either_way() {
    let fleet = Fleet::start(2);
    let (a, b) = (fleet.alias(0), fleet.alias(1));
    let out = run(
        &fleet.env(),
        &[
            "call",
            "--targets",
            &format!("{a}:/,{b}:/"),
            "--query",
            "echo x",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2/2 hosts succeeded"),
        "{}",
        stdout(&out)
    );
    let out = run(
        &fleet.env(),
        &[
            "call",
            "--targets",
            &format!("{a}:/"),
            "--targets",
            &format!("{b}:/"),
            "--query",
            "echo x",
        ],
    );
    assert!(
        stdout(&out).contains("2/2 hosts succeeded"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn usage_errors_exit_2_with_the_usage() {
    let out = run(&[], &["call", "web:/x", "--bogus"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("unknown option '--bogus' for call"), "{err}");
    assert!(err.contains("--query"), "the usage of call follows: {err}");
    let out = run(&[], &["frobnicate"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("unknown command 'frobnicate'"));
}

#[test]
fn hosts_lists_the_fleet() {
    let fleet = Fleet::start(2);
    let out = run(&fleet.env(), &["hosts"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for alias in fleet.aliases() {
        assert!(text.contains(&format!("{alias} (online)")), "{text}");
    }
}

#[test]
fn help_lists_every_command_and_variable_and_version_prints_it() {
    let out = run(&[], &["--help"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for command in [
        "scout-mcp call",
        "scout-mcp hosts",
        "scout-mcp check",
        "--version",
    ] {
        assert!(text.contains(command), "{command} missing from:\n{text}");
    }
    for (name, ..) in scout_mcp::config::VARIABLES {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let out = run(&[], &["check", "--help"]);
    assert!(stdout(&out).contains("scout-mcp check [HOST...]"));
    let out = run(&[], &["--version"]);
    assert_eq!(
        stdout(&out).trim(),
        format!("scout-mcp {}", env!("CARGO_PKG_VERSION"))
    );
}

/// One line per host, each naming every step and its time.
#[test]
fn check_passes_every_good_host_in_one_line_each() {
    let fleet = Fleet::start(3);
    let out = run(&fleet.env(), &["check"]);
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), fleet.host_count(), "{text}");
    for (line, alias) in lines.iter().zip(fleet.aliases()) {
        assert!(line.starts_with(&alias), "{line}");
        assert!(line.contains(" ok "), "{line}");
        for step in [
            "resolve",
            "tcp",
            "handshake",
            "host key",
            "auth",
            "sftp",
            "exec",
        ] {
            assert!(line.contains(&format!("{step} ")), "{step} missing: {line}");
        }
    }
}

/// A fresh key pair that the fleet does not authorize.
fn stranger_key(dir: &Path) -> PathBuf {
    let key = dir.join("stranger_key");
    let out = run_bounded(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "stranger", "-f"])
            .arg(&key),
        PATIENCE,
    );
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    key
}

/// A host whose port is closed, one whose known_hosts key is wrong and
/// one that offers an unauthorized key each fail at their own step, in one
/// line, in the order asked for; the good host still passes.
#[test]
fn check_pinpoints_the_failing_step_of_each_broken_host() {
    let fleet = Fleet::start(2);
    let dir = fleet.dir().join("cli-check");
    fs::create_dir_all(&dir).expect("create the test dir");
    let closed = closed_port();
    let mut config = fs::read_to_string(fleet.ssh_config_with(&[("closed", closed)]))
        .expect("read the ssh config");
    let addr = fleet.addr(0);
    config += &format!(
        "Host intruder\n    HostName {}\n    Port {}\n    User {}\n    IdentityFile {}\n    \
         IdentitiesOnly yes\n\n",
        addr.ip(),
        addr.port(),
        fleet.remote_user(),
        stranger_key(&dir).display()
    );
    let config_path = dir.join("ssh_config");
    fs::write(&config_path, config).expect("write the ssh config");
    // host1's line carries another key (the client's): a changed host key.
    let known = fs::read_to_string(fleet.known_hosts_path()).expect("read known_hosts");
    let wrong_key = fs::read_to_string(fleet.dir().join("client_key.pub"))
        .expect("read the client's public key");
    let wrong_key: Vec<&str> = wrong_key.split_whitespace().take(2).collect();
    let host1 = format!("[{}]:{}", fleet.addr(1).ip(), fleet.addr(1).port());
    let tampered: String = known
        .lines()
        .map(|l| {
            if l.starts_with(&host1) {
                format!("{host1} {}\n", wrong_key.join(" "))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let known_path = dir.join("known_hosts");
    fs::write(&known_path, tampered).expect("write known_hosts");

    let env = env_with(&fleet, &config_path, &known_path);
    let order = ["intruder", "host0", "closed", "host1", "ghost"];
    let out = run(&env, &[&["check"][..], &order].concat());
    assert_eq!(code(&out), 1, "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), order.len(), "{text}");
    let expect = [
        "FAIL  at auth (after resolve",
        " ok ",
        "FAIL  at tcp (after resolve",
        "FAIL  at host key (after resolve",
        "FAIL  at config: ghost",
    ];
    for ((line, alias), want) in lines.iter().zip(order).zip(expect) {
        assert!(line.starts_with(alias), "{alias}: {line}");
        assert!(line.contains(want), "{alias} should show {want:?}: {line}");
    }
    assert!(lines[0].contains("authentication rejected"), "{}", lines[0]);
    assert!(lines[2].contains("refused"), "{}", lines[2]);
}

/// Stops the child by its PID should the test fail before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ctrl_c_cancels_a_call_and_stops_the_remote_command() {
    let fleet = Fleet::start(1);
    let marker = "sleep 47.4711";
    // Anchored: the CLI's own command line contains the query too, and
    // only the remote `sleep` may count as started.
    let remote = "^sleep 47.4711";
    let target = format!("{}:/", fleet.alias(0));
    let child = scout(&fleet.env(), &["call", &target, "--query", marker])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scout-mcp call");
    let mut running = Running(child);
    assert!(
        wait_until(PATIENCE, || command_running(remote)),
        "the remote command never started"
    );
    let pid = running.0.id().to_string();
    let sent = run_bounded(Command::new("kill").args(["-INT", &pid]), PATIENCE);
    assert!(sent.status.success(), "kill -INT {pid}: {sent:?}");
    let status = support::poll(PATIENCE, Duration::from_millis(20), || {
        running.0.try_wait().ok().flatten()
    })
    .expect("scout-mcp call did not exit after Ctrl-C");
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        wait_until(PATIENCE, || !command_running(remote)),
        "the remote command outlived the cancelled call"
    );
}
