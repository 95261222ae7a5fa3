//! ProxyJump against real sshd: the target listens on the loopback of a network namespace the
//! test creates, so only the jump host (an sshd in the same namespace, reached through a
//! forwarder that counts its connections) can reach it.

mod support;

use serde_json::json;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use support::{closed_port, run_bounded, Fleet, Forwarder, Netns, NsSshd, Scout, PATIENCE};

/// Ports on the namespace's own loopback: nothing else lives there.
const JUMP_PORT: u16 = 2201;
const TARGET_PORT: u16 = 2202;
const IMPOSTOR_PORT: u16 = 2203;
const CLOSED_PORT: u16 = 2299;

/// Hosts in a namespace: a jump sshd, a target, an impostor target (a host key that
/// known_hosts does not list for it), and the client files that reach them.
struct Lab {
    // Drop order: the client side first, then the daemons, then the namespace and the files.
    forwarder: Forwarder,
    _daemons: Vec<NsSshd>,
    _ns: Arc<Netns>,
    fleet: Fleet,
}

impl Lab {
    fn start() -> Lab {
        let fleet = Fleet::start(1);
        let ns = Arc::new(Netns::create());
        let host_key = fleet.dir().join("host_key");
        let other_key = fleet.dir().join("impostor_key");
        keygen(&other_key);
        let daemons = vec![
            NsSshd::start(&ns, &fleet, JUMP_PORT, &host_key),
            NsSshd::start(&ns, &fleet, TARGET_PORT, &host_key),
            NsSshd::start(&ns, &fleet, IMPOSTOR_PORT, &other_key),
        ];
        let forwarder = Forwarder::start(&ns, JUMP_PORT);
        let lab = Lab {
            forwarder,
            _daemons: daemons,
            _ns: ns,
            fleet,
        };
        lab.write_client_files();
        lab
    }

    fn write_client_files(&self) {
        let dir = self.fleet.dir();
        let user = self.fleet.remote_user();
        let key = self.fleet.client_key_path();
        let jump = self.forwarder.addr();
        let down = closed_port();
        let block = |alias: &str, ip: &str, port: u16, jump: &str| {
            format!(
                "Host {alias}\n  HostName {ip}\n  Port {port}\n  User {user}\n  \
                 IdentityFile {}\n  IdentitiesOnly yes\n  ProxyJump {jump}\n\n",
                key.display()
            )
        };
        let mut config = String::new();
        config += &block("jump", &jump.ip().to_string(), jump.port(), "none");
        config += &block("down", &down.ip().to_string(), down.port(), "none");
        // The jump sshd seen from inside the namespace: a second hop.
        config += &block("inner", "127.0.0.1", JUMP_PORT, "none");
        config += &block("target", "127.0.0.1", TARGET_PORT, "jump");
        config += &block("target-b", "127.0.0.1", TARGET_PORT, "jump");
        config += &block("twohop", "127.0.0.1", TARGET_PORT, "jump,inner");
        config += &block("impostor", "127.0.0.1", IMPOSTOR_PORT, "jump");
        config += &block("nowhere", "127.0.0.1", CLOSED_PORT, "jump");
        config += &block("behind-down", "127.0.0.1", TARGET_PORT, "down");
        fs::write(dir.join("jump_config"), config).expect("write the ssh config");
        let public = fs::read_to_string(dir.join("host_key.pub")).expect("read host_key.pub");
        let public: Vec<&str> = public.split_whitespace().take(2).collect();
        let public = public.join(" ");
        let known: String = [
            format!("[{}]:{}", jump.ip(), jump.port()),
            format!("[127.0.0.1]:{JUMP_PORT}"),
            format!("[127.0.0.1]:{TARGET_PORT}"),
            // The impostor's real key is another: this line is what it claims to be.
            format!("[127.0.0.1]:{IMPOSTOR_PORT}"),
        ]
        .iter()
        .map(|host| format!("{host} {public}\n"))
        .collect();
        fs::write(dir.join("jump_known_hosts"), known).expect("write known_hosts");
    }

    fn scout(&self) -> Scout {
        let dir = self.fleet.dir().display().to_string();
        let mut scout = Scout::spawn_with(
            &self.fleet,
            &[
                ("SCOUT_SSH_CONFIG", &format!("{dir}/jump_config")),
                ("SCOUT_KNOWN_HOSTS", &format!("{dir}/jump_known_hosts")),
                ("SCOUT_CONNECT_TIMEOUT", "10"),
            ],
        );
        scout.initialize();
        scout
    }
}

fn keygen(path: &Path) {
    let out = run_bounded(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "impostor", "-f"])
            .arg(path),
        PATIENCE,
    );
    assert!(out.status.success(), "ssh-keygen failed: {out:?}");
}

#[test]
fn reads_and_runs_commands_on_a_host_only_the_jump_host_can_reach() {
    let lab = Lab::start();
    let file = lab
        .fleet
        .write_file("jump/hello.txt", b"hello through the jump\n");
    let mut scout = lab.scout();

    let read = scout.call(json!({"target": format!("target:{}", file.display())}));
    assert!(!read.is_error, "{}", read.text);
    assert_eq!(read.text, "hello through the jump\n");

    let run = scout.call(json!({"target": "target:/", "query": "echo ran-behind-the-jump"}));
    assert!(!run.is_error, "{}", run.text);
    assert!(run.text.contains("ran-behind-the-jump"), "{}", run.text);

    // The target is not reachable without the jump host: its address is the namespace's
    // loopback, where the test's namespace has no such listener (or a different one).
    let direct: SocketAddr = ([127, 0, 0, 1], TARGET_PORT).into();
    let banner = std::net::TcpStream::connect_timeout(&direct, PATIENCE)
        .ok()
        .and_then(|mut s| {
            use std::io::Read;
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .ok()?;
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).ok()?;
            Some(buf)
        });
    assert_ne!(
        banner,
        Some(*b"SSH-"),
        "the target must not be reachable directly"
    );
}

#[test]
fn a_two_hop_chain_reaches_the_target() {
    let lab = Lab::start();
    let file = lab.fleet.write_file("jump/two.txt", b"two hops\n");
    let mut scout = lab.scout();
    let read = scout.call(json!({"target": format!("twohop:{}", file.display())}));
    assert!(!read.is_error, "{}", read.text);
    assert_eq!(read.text, "two hops\n");
    let run = scout.call(json!({"target": "twohop:/", "query": "echo second-hop"}));
    assert!(run.text.contains("second-hop"), "{}", run.text);
}

#[test]
fn requests_to_hosts_behind_one_jump_host_share_its_session() {
    let lab = Lab::start();
    let file = lab.fleet.write_file("jump/shared.txt", b"shared\n");
    let mut scout = lab.scout();
    for round in 0..3 {
        for host in ["target", "target-b"] {
            let read = scout.call(json!({"target": format!("{host}:{}", file.display())}));
            assert_eq!(read.text, "shared\n", "round {round}, {host}");
        }
        let run = scout.call(json!({"target": "target-b:/", "query": "echo hi"}));
        assert!(run.text.contains("hi"), "round {round}: {}", run.text);
    }
    // Two targets, two pooled sessions, one TCP connection to the jump host.
    assert_eq!(lab.forwarder.connections(), 1);
}

#[test]
fn a_wrong_host_key_behind_the_jump_host_is_refused_naming_the_target() {
    let lab = Lab::start();
    let mut scout = lab.scout();
    let result = scout.call(json!({"target": "impostor:/", "query": "echo should-not-run"}));
    assert!(result.is_error, "{}", result.text);
    assert!(
        result
            .text
            .contains("impostor: via jump jump: impostor (127.0.0.1"),
        "{}",
        result.text
    );
    assert!(
        result.text.to_lowercase().contains("host key"),
        "{}",
        result.text
    );
    assert!(!result.text.contains("should-not-run"), "{}", result.text);
    // The jump host itself was fine and stays usable.
    let ok = scout.call(json!({"target": "target:/", "query": "echo still-fine"}));
    assert!(ok.text.contains("still-fine"), "{}", ok.text);
}

#[test]
fn an_unreachable_next_hop_fails_naming_the_jump_and_the_address() {
    let lab = Lab::start();
    let mut scout = lab.scout();
    let result = scout.call(json!({"target": "nowhere:/", "query": "echo x"}));
    assert!(result.is_error, "{}", result.text);
    let text = &result.text;
    assert!(text.contains("nowhere: via jump jump"), "{text}");
    assert!(
        text.contains(&format!(
            "cannot reach 127.0.0.1:{CLOSED_PORT} from the jump host"
        )),
        "{text}"
    );
}

#[test]
fn a_jump_host_that_is_down_fails_naming_the_jump_host() {
    let lab = Lab::start();
    let mut scout = lab.scout();
    let result = scout.call(json!({"target": "behind-down:/", "query": "echo x"}));
    assert!(result.is_error, "{}", result.text);
    let text = &result.text;
    assert!(text.contains("behind-down: via jump down"), "{text}");
    assert!(text.contains("refused"), "{text}");
}

#[test]
fn a_dead_jump_session_is_replaced_by_a_new_one() {
    let lab = Lab::start();
    let mut scout = lab.scout();
    let first = scout.call(json!({"target": "target:/", "query": "echo before"}));
    assert!(first.text.contains("before"), "{}", first.text);
    lab.forwarder.cut_all();
    // The pooled session through the dead jump session may fail once (it cannot know yet);
    // within a few tries a new jump session carries the request.
    let recovered = (0..5).any(|_| {
        scout
            .call(json!({"target": "target:/", "query": "echo after"}))
            .text
            .contains("after")
    });
    assert!(recovered, "{}", scout.stderr_log());
    assert_eq!(lab.forwarder.connections(), 2);
}

#[test]
fn check_goes_through_the_jump_host_and_names_the_failing_hop() {
    let lab = Lab::start();
    let dir = lab.fleet.dir().display().to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_scout-mcp"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SCOUT_") {
            command.env_remove(&key);
        }
    }
    command
        .env_remove("SSH_AUTH_SOCK")
        .envs(lab.fleet.env())
        .env("SCOUT_SSH_CONFIG", format!("{dir}/jump_config"))
        .env("SCOUT_KNOWN_HOSTS", format!("{dir}/jump_known_hosts"))
        .args(["check", "target", "nowhere"]);
    let out = run_bounded(&mut command, PATIENCE);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let line = |host: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(host))
            .unwrap_or_else(|| panic!("no line for {host} in\n{text}"))
            .to_string()
    };
    let target = line("target");
    assert!(target.contains("ok"), "{target}");
    assert!(target.contains("via ProxyJump jump"), "{target}");
    let nowhere = line("nowhere");
    assert!(nowhere.contains("FAIL"), "{nowhere}");
    assert!(
        nowhere.contains("jump"),
        "the failing hop is named: {nowhere}"
    );
}

/// `metrics://pool` as JSON.
fn pool_metrics(scout: &mut Scout) -> serde_json::Value {
    let read = scout.request("resources/read", json!({"uri": "metrics://pool"}));
    let text = read["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no metrics text: {read}"));
    serde_json::from_str(text).expect("metrics://pool is JSON")
}

#[test]
fn jump_sessions_count_against_the_pool_bound() {
    let lab = Lab::start();
    let file = lab.fleet.write_file("jump/counted.txt", b"counted\n");
    let target = json!({"target": format!("target:{}", file.display())});

    let mut scout = lab.scout();
    assert_eq!(scout.call(target.clone()).text, "counted\n");
    // The target's session and the jump session under it.
    assert_eq!(pool_metrics(&mut scout)["pool"]["live"], json!(2));

    // With room for one connection only, the jump session has none: a clear
    // error, not a second connection past the bound.
    let dir = lab.fleet.dir().display().to_string();
    let mut tight = Scout::spawn_with(
        &lab.fleet,
        &[
            ("SCOUT_SSH_CONFIG", &format!("{dir}/jump_config")),
            ("SCOUT_KNOWN_HOSTS", &format!("{dir}/jump_known_hosts")),
            ("SCOUT_CONNECT_TIMEOUT", "1"),
            ("SCOUT_MAX_POOL_SIZE", "1"),
        ],
    );
    tight.initialize();
    let r = tight.call(target);
    assert!(r.is_error, "{}", r.text);
    assert!(
        r.text.contains("no room for a jump session") && r.text.contains("SCOUT_MAX_POOL_SIZE=1"),
        "{}",
        r.text
    );
    assert_eq!(
        lab.forwarder.connections(),
        1,
        "only the first server reached the jump host"
    );
}

#[test]
fn the_host_list_marks_hosts_behind_a_jump_host_as_not_probed_until_connected() {
    let lab = Lab::start();
    let file = lab.fleet.write_file("jump/listed.txt", b"listed\n");
    let mut scout = lab.scout();
    let line = |text: &str, alias: &str| {
        text.lines()
            .find(|l| l.contains(&format!("] {alias} (")))
            .unwrap_or_else(|| panic!("no line for {alias} in\n{text}"))
            .to_string()
    };
    let before = scout.call(json!({"target": "hosts"})).text;
    assert!(
        line(&before, "target").contains("[?] target (via jump, not probed)"),
        "{before}"
    );
    assert!(
        line(&before, "jump").contains("[✓] jump (online)"),
        "{before}"
    );
    assert_eq!(
        scout
            .call(json!({"target": format!("target:{}", file.display())}))
            .text,
        "listed\n"
    );
    let after = scout.call(json!({"target": "hosts"})).text;
    assert!(
        line(&after, "target").contains("[✓] target (online)"),
        "{after}"
    );
}
