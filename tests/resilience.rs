//! Load, bounds and faults against real sshd: many requests at once, a
//! bounded pool over many hosts, hosts that are silent, closed, restarted,
//! or not who they claim to be.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{closed_port, Fleet, Scout, SilentListener};

/// Sends every request, waits for every answer; the answers in order.
fn call_all(scout: &mut Scout, calls: &[Value], timeout: Duration) -> Vec<Value> {
    let ids: Vec<u64> = calls
        .iter()
        .map(|args| scout.start_request("tools/call", json!({"name": "scout", "arguments": args})))
        .collect();
    ids.iter()
        .map(|&id| scout.wait_response(id, timeout))
        .collect()
}

fn text_of(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
}

#[test]
fn two_hundred_concurrent_calls_over_six_hosts_are_all_answered() {
    let fleet = Fleet::start(6);
    let file = fleet.write_file("load/data.txt", b"payload\n");
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let calls: Vec<Value> = (0..200)
        .map(|i| {
            let host = fleet.alias(i % 6);
            if i % 4 == 0 {
                json!({"target": format!("{host}:/"), "query": format!("echo call-{i}")})
            } else {
                json!({"target": format!("{host}:{}", file.display())})
            }
        })
        .collect();
    let answers = call_all(&mut scout, &calls, Duration::from_secs(120));
    for (i, answer) in answers.iter().enumerate() {
        let expected = if i % 4 == 0 {
            format!("call-{i}")
        } else {
            "payload\n".to_string()
        };
        assert_eq!(text_of(answer), expected, "call {i}: {answer}");
    }
}

#[test]
fn a_host_that_never_speaks_fails_within_the_connect_timeout_while_others_are_served() {
    let fleet = Fleet::start(1);
    let silent = SilentListener::start();
    let config = fleet.ssh_config_with(&[("silent", silent.addr())]);
    let config = config.display().to_string();
    let mut scout = Scout::spawn_with(
        &fleet,
        &[
            ("SCOUT_SSH_CONFIG", config.as_str()),
            ("SCOUT_CONNECT_TIMEOUT", "2"),
        ],
    );
    let started = Instant::now();
    let silent_id = scout.start_request(
        "tools/call",
        json!({"name": "scout", "arguments": {"target": "silent:/etc/hostname"}}),
    );
    // While the silent host hangs, a healthy host answers many times over.
    let healthy = format!("{}:/", fleet.alias(0));
    for i in 0..5 {
        let r = scout.call(json!({"target": healthy, "query": format!("echo ok-{i}")}));
        assert_eq!(r.text, format!("ok-{i}"));
    }
    let answer = scout.wait_response(silent_id, Duration::from_secs(30));
    let elapsed = started.elapsed();
    assert_eq!(answer["result"]["isError"], json!(true), "{answer}");
    let text = text_of(&answer);
    assert!(
        text.contains("silent") && text.contains("timed out"),
        "{text}"
    );
    assert!(
        elapsed < Duration::from_secs(12),
        "gave up after {elapsed:?}"
    );
}

#[test]
fn a_closed_port_fails_fast_with_connection_refused() {
    let fleet = Fleet::start(1);
    let config = fleet.ssh_config_with(&[("closed", closed_port())]);
    let config = config.display().to_string();
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_SSH_CONFIG", config.as_str())]);
    let started = Instant::now();
    let r = scout.call(json!({"target": "closed:/etc"}));
    assert!(r.is_error);
    assert!(
        r.text.contains("closed") && r.text.contains("connection refused"),
        "{}",
        r.text
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A known_hosts file that records another key for every fleet host.
fn known_hosts_with_wrong_keys(fleet: &Fleet) -> std::path::PathBuf {
    let client_pub = std::fs::read_to_string(format!("{}.pub", fleet.client_key_path().display()))
        .expect("client public key");
    let key: Vec<&str> = client_pub.split_whitespace().take(2).collect();
    let path = fleet.data_dir().join("wrong_known_hosts");
    let lines: String = fleet
        .aliases()
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let a = fleet.addr(i);
            format!("[{}]:{} {} {}\n", a.ip(), a.port(), key[0], key[1])
        })
        .collect();
    std::fs::write(&path, lines).expect("write known_hosts");
    path
}

#[test]
fn a_changed_host_key_is_refused_with_its_fingerprint() {
    let fleet = Fleet::start(1);
    let wrong = known_hosts_with_wrong_keys(&fleet).display().to_string();
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_KNOWN_HOSTS", wrong.as_str())]);
    let r = scout.call(json!({"target": format!("{}:/", fleet.alias(0))}));
    assert!(r.is_error);
    assert!(r.text.contains("HOST KEY CHANGED"), "{}", r.text);
    assert!(r.text.contains("SHA256:"), "{}", r.text);
    assert!(r.text.contains(&fleet.alias(0)), "{}", r.text);
    // Not even turning strict checking off accepts a changed key.
    let mut lax = Scout::spawn_with(
        &fleet,
        &[
            ("SCOUT_KNOWN_HOSTS", wrong.as_str()),
            ("SCOUT_STRICT_HOST_KEY_CHECKING", "false"),
        ],
    );
    let r = lax.call(json!({"target": format!("{}:/", fleet.alias(0))}));
    assert!(r.text.contains("HOST KEY CHANGED"), "{}", r.text);
}

#[test]
fn an_unknown_host_key_is_refused_when_strict_and_accepted_when_not() {
    let fleet = Fleet::start(1);
    let empty = fleet.data_dir().join("empty_known_hosts");
    std::fs::write(&empty, "").expect("write");
    let empty = empty.display().to_string();
    let target = json!({"target": format!("{}:/", fleet.alias(0)), "query": "echo in"});
    let mut strict = Scout::spawn_with(&fleet, &[("SCOUT_KNOWN_HOSTS", empty.as_str())]);
    let r = strict.call(target.clone());
    assert!(r.is_error);
    assert!(
        r.text.contains("unknown host key") && r.text.contains("SHA256:"),
        "{}",
        r.text
    );
    let mut lax = Scout::spawn_with(
        &fleet,
        &[
            ("SCOUT_KNOWN_HOSTS", empty.as_str()),
            ("SCOUT_STRICT_HOST_KEY_CHECKING", "false"),
        ],
    );
    assert_eq!(lax.call(target.clone()).text, "in");
    let mut off = Scout::spawn_with(&fleet, &[("SCOUT_KNOWN_HOSTS", "none")]);
    assert_eq!(off.call(target).text, "in");
    assert!(off.stderr_log().contains("HOST KEY CHECKING IS DISABLED"));
}

#[test]
fn a_rejected_key_says_which_methods_were_tried() {
    let fleet = Fleet::start(1);
    let other_key = fleet.data_dir().join("other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let config = std::fs::read_to_string(fleet.ssh_config_path()).expect("config");
    let swapped = config.replace(
        &fleet.client_key_path().display().to_string(),
        &other_key.display().to_string(),
    );
    let path = fleet.data_dir().join("other_config");
    std::fs::write(&path, swapped).expect("write config");
    let path = path.display().to_string();
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_SSH_CONFIG", path.as_str())]);
    let r = scout.call(json!({"target": format!("{}:/", fleet.alias(0))}));
    assert!(r.is_error);
    assert!(r.text.contains("authentication rejected"), "{}", r.text);
    assert!(
        r.text.contains(&other_key.display().to_string()),
        "{}",
        r.text
    );
    assert!(r.text.contains("publickey"), "{}", r.text);
}

#[test]
fn after_sshd_is_killed_and_restarted_the_next_call_succeeds() {
    let mut fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let target = json!({"target": format!("{}:/", fleet.alias(0)), "query": "echo alive"});
    assert_eq!(scout.call(target.clone()).text, "alive");
    fleet.kill_sshd(0);
    let down = scout.call(target.clone());
    assert!(down.is_error, "{}", down.text);
    assert!(down.text.contains(&fleet.alias(0)), "{}", down.text);
    fleet.restart_sshd(0);
    assert_eq!(scout.call(target.clone()).text, "alive");
    // A pooled session killed under our feet is replaced transparently.
    fleet.kill_sshd(0);
    fleet.restart_sshd(0);
    let again = scout.call(json!({"target": format!("{}:/", fleet.alias(0))}));
    assert!(!again.is_error, "{}", again.text);
}

#[test]
fn the_pool_never_holds_more_than_its_bound_across_a_thousand_hosts() {
    let fleet = Fleet::builder().hosts(10).aliases_per_host(100).start();
    let aliases = fleet.aliases();
    assert_eq!(aliases.len(), 1000);
    let mut scout = Scout::spawn_with(
        &fleet,
        &[
            ("SCOUT_MAX_POOL_SIZE", "100"),
            ("SCOUT_WORKERS", "32"),
            ("SCOUT_LOG_LEVEL", "warn"),
        ],
    );
    scout.initialize();
    let done = std::sync::atomic::AtomicBool::new(false);
    let pid = scout.pid();
    let (answered, peak) = std::thread::scope(|scope| {
        // Samples the connection count all along, not only between answers.
        let sampler = scope.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let n = fleet.connections_held_by(pid);
                peak = peak.max(n);
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        });
        let answered = read_every_alias(&mut scout, &aliases, 64);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (answered, sampler.join().expect("sampler"))
    });
    assert_eq!(answered, 1000);
    assert!(peak <= 100, "saw {peak} connections with a bound of 100");
    assert!(peak >= 50, "the pool should actually fill up: peak {peak}");
}

/// Runs `echo ok` on every alias with at most `window` requests in flight;
/// returns how many answered "ok".
fn read_every_alias(scout: &mut Scout, aliases: &[String], window: usize) -> usize {
    let mut in_flight = std::collections::VecDeque::new();
    let mut answered = 0;
    let mut settle = |scout: &mut Scout, (alias, id): (String, u64)| {
        let answer = scout.wait_response(id, Duration::from_secs(120));
        assert_eq!(text_of(&answer), "ok", "{alias}: {answer}");
        answered += 1;
    };
    for alias in aliases {
        let id = scout.start_request(
            "tools/call",
            json!({"name": "scout", "arguments": {"target": format!("{alias}:/"), "query": "echo ok"}}),
        );
        in_flight.push_back((alias.clone(), id));
        if in_flight.len() == window {
            settle(scout, in_flight.pop_front().expect("non-empty"));
        }
    }
    for pending in in_flight {
        settle(scout, pending);
    }
    answered
}
