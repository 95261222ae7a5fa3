//! Network and server faults against real sshd (issue 4, item 4): a peer that goes silent
//! mid-transfer or while a session idles in the pool, connections reset mid-command, a daemon
//! killed during a broadcast, servers that limit sessions and unauthenticated connections, and
//! a server that offers only SHA-1 algorithms. Faults on the wire come from a userspace TCP
//! proxy (tests/support/proxy.rs) in front of a fleet host.
//!
//! Every test asserts an outcome within a bound generous enough for a slow machine: a fault
//! must turn into a clear error naming the host (or a success), never a hang, and the next
//! call after the fault is gone must succeed.

mod support;

use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{poll, run_bounded, Fleet, ProxiedFleet, Scout, ToolResult, PATIENCE};

/// The connect timeout the proxy tests run with; it is also the per-call libssh2 timeout.
const CONNECT_TIMEOUT: u64 = 2;

/// How long a fault may take to surface as an error: connect timeout × 3 (a stalled call,
/// then the one transparent retry's connect), plus slack for a busy machine.
fn fault_bound() -> Duration {
    Duration::from_secs(CONNECT_TIMEOUT * 3) + Duration::from_secs(4)
}

fn start_call(scout: &mut Scout, args: Value) -> u64 {
    scout.start_request("tools/call", json!({"name": "scout", "arguments": args}))
}

fn wait_call(scout: &mut Scout, id: u64, timeout: Duration) -> ToolResult {
    let response = scout.wait_response(id, timeout);
    let result = response
        .get("result")
        .unwrap_or_else(|| panic!("expected a tool result, got {response}"));
    ToolResult::from_result(result)
}

/// A text file of `size` bytes: numbered lines, so nothing about it is binary.
fn big_text(size: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity(size + 64);
    let mut i = 0u64;
    while text.len() < size {
        text.extend_from_slice(
            format!("line {i:012} of a large file for fault tests\n").as_bytes(),
        );
        i += 1;
    }
    text.truncate(size);
    text
}

#[test]
fn a_stall_mid_read_fails_within_the_io_timeout_and_the_next_call_succeeds() {
    let fleet = Fleet::start(1);
    let size = 20 << 20;
    let big = fleet.write_file("faults/big.txt", &big_text(size));
    let small = fleet.write_file("faults/small.txt", b"small file\n");
    let proxy = fleet.proxy(0);
    let timeout = CONNECT_TIMEOUT.to_string();
    let mut scout = Scout::spawn_through(
        &fleet,
        &proxy,
        &[
            ("SCOUT_CONNECT_TIMEOUT", &timeout),
            // The whole file is read, and the command timeout is not what stops it.
            ("SCOUT_MAX_FILE_SIZE", "33554432"),
            ("SCOUT_COMMAND_TIMEOUT", "120"),
        ],
    );
    // WAN-like latency per 16 KiB chunk: 20 MiB take seconds, so the stall lands mid-read.
    proxy.delay(Duration::from_millis(2));
    let id = start_call(
        &mut scout,
        json!({"target": format!("proxied:{}", big.display())}),
    );
    let started = poll(PATIENCE, Duration::from_millis(5), || {
        (proxy.forwarded() > 1 << 20).then_some(())
    });
    assert!(
        started.is_some(),
        "the read never got going through the proxy"
    );
    proxy.stall();
    let stalled_at = Instant::now();
    let at_stall = proxy.forwarded();
    let r = wait_call(&mut scout, id, fault_bound() + PATIENCE);
    let took = stalled_at.elapsed();
    assert!(
        at_stall < size as u64,
        "the transfer had finished ({at_stall} bytes) before the stall"
    );
    assert!(
        r.is_error,
        "a stalled read must fail, got: {}",
        support::tail(&r.text, 500)
    );
    assert!(
        r.text.contains("proxied"),
        "the error names the host: {}",
        r.text
    );
    assert!(
        took < fault_bound(),
        "the stalled read took {took:?} to fail (bound {:?}): {}",
        fault_bound(),
        r.text
    );

    proxy.delay(Duration::ZERO);
    proxy.resume();
    let before = proxy.accepted();
    let r = scout.call(json!({"target": format!("proxied:{}", small.display())}));
    assert!(!r.is_error, "after resume: {}", r.text);
    assert_eq!(r.text, "small file\n");
    assert_eq!(
        proxy.accepted(),
        before + 1,
        "the call after the stall runs on a fresh session"
    );
}

#[test]
fn a_reset_mid_command_fails_naming_the_host_and_the_pool_recovers() {
    let fleet = Fleet::start(1);
    let proxy = fleet.proxy(0);
    let timeout = CONNECT_TIMEOUT.to_string();
    let mut scout = Scout::spawn_through(&fleet, &proxy, &[("SCOUT_CONNECT_TIMEOUT", &timeout)]);
    // The command leaves a mark once it runs: the reset must hit a running
    // command, however long the connect took on a busy machine.
    let mark = std::env::temp_dir().join(format!("scout-reset-mark-{}", std::process::id()));
    let _ = std::fs::remove_file(&mark);
    let started = Instant::now();
    let id = start_call(
        &mut scout,
        json!({"target": "proxied:/", "query": format!("touch {}; sleep 2; echo done", mark.display())}),
    );
    let running = poll(PATIENCE, Duration::from_millis(5), || {
        mark.exists().then_some(())
    });
    let _ = std::fs::remove_file(&mark);
    assert!(
        running.is_some(),
        "the command never started through the proxy"
    );
    proxy.reset();
    let r = wait_call(&mut scout, id, PATIENCE);
    assert!(r.is_error, "a reset command must fail, got: {}", r.text);
    assert!(
        r.text.contains("proxied"),
        "the error names the host: {}",
        r.text
    );
    assert!(!r.text.contains("done"), "{}", r.text);
    assert!(
        started.elapsed() < fault_bound(),
        "took {:?}",
        started.elapsed()
    );

    let r = scout.call(json!({"target": "proxied:/", "query": "echo recovered"}));
    assert!(!r.is_error, "after the reset: {}", r.text);
    assert_eq!(r.text, "recovered");
}

#[test]
fn a_command_reset_on_a_reused_session_is_not_run_twice() {
    let fleet = Fleet::start(1);
    let proxy = fleet.proxy(0);
    let timeout = CONNECT_TIMEOUT.to_string();
    let mut scout = Scout::spawn_through(&fleet, &proxy, &[("SCOUT_CONNECT_TIMEOUT", &timeout)]);
    // Warm the pool: the next command runs on a reused session.
    assert_eq!(
        scout
            .call(json!({"target": "proxied:/", "query": "echo warm"}))
            .text,
        "warm"
    );
    let marks = fleet.data_dir().join("runs");
    let query = format!("echo run >> {}; sleep 2; echo done", marks.display());
    let id = start_call(&mut scout, json!({"target": "proxied:/", "query": query}));
    let ran = poll(PATIENCE, Duration::from_millis(5), || {
        marks.exists().then_some(())
    });
    assert!(ran.is_some(), "the command never started");
    std::thread::sleep(Duration::from_millis(200));
    proxy.reset();
    let r = wait_call(&mut scout, id, PATIENCE);
    let runs = std::fs::read_to_string(&marks).unwrap_or_default();
    assert_eq!(
        runs.lines().count(),
        1,
        "a command cut off after it started must not be run again; result: {}",
        r.text
    );
    assert!(r.is_error, "{}", r.text);
}

#[test]
fn a_daemon_killed_during_a_broadcast_fails_only_its_hosts() {
    // 16 addresses per daemon: hosts 0..=15 on daemon 0, hosts 16..=19 on daemon 1.
    let mut fleet = Fleet::start(20);
    assert_eq!(fleet.daemon_count(), 2);
    let hosts: Vec<usize> = (10..20).collect();
    let doomed: Vec<usize> = hosts
        .iter()
        .copied()
        .filter(|&h| fleet.daemon_of_host(h) == 1)
        .collect();
    assert_eq!(doomed.len(), 4);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let targets: Vec<String> = hosts
        .iter()
        .map(|&h| format!("{}:/", fleet.alias(h)))
        .collect();
    let id = start_call(
        &mut scout,
        json!({"targets": targets, "query": "sleep 2; echo ok"}),
    );
    // Every host connected, so every command is about to run or running: kill daemon 1.
    let pid = scout.pid();
    let all = poll(PATIENCE, Duration::from_millis(5), || {
        (fleet.connections_held_by(pid) >= hosts.len()).then_some(())
    });
    assert!(
        all.is_some(),
        "the broadcast never connected to all 10 hosts"
    );
    std::thread::sleep(Duration::from_millis(300));
    fleet.kill_sshd(1);
    let r = wait_call(&mut scout, id, PATIENCE);
    let footer = r.text.lines().last().unwrap_or_default().to_string();
    assert_eq!(footer, "─── 6/10 hosts succeeded ───", "{}", r.text);
    assert!(
        !r.is_error,
        "a partly failed broadcast is not an error of the call"
    );
    let structured = r.structured.expect("structuredContent");
    assert_eq!(structured["succeeded"], json!(6));
    assert_eq!(structured["total"], json!(10));
    for entry in structured["results"].as_array().expect("results") {
        let host = entry["host"].as_str().expect("host");
        let index: usize = host.trim_start_matches("host").parse().expect("host index");
        if doomed.contains(&index) {
            assert_eq!(entry["success"], json!(false), "{entry}");
            let error = entry["error"].as_str().unwrap_or_default();
            assert!(error.contains(host), "the error names the host: {entry}");
        } else {
            assert_eq!(entry["success"], json!(true), "{entry}");
            assert!(entry.to_string().contains("ok"), "{entry}");
        }
    }
}

/// 50 requests at once (reads and commands) on one host; returns the answers in order.
fn fifty_at_once(fleet: &Fleet, extra: &[(&str, &str)]) -> Vec<(Value, ToolResult)> {
    let file = fleet.write_file("load/data.txt", b"payload\n");
    let mut env: Vec<(&str, &str)> = vec![
        ("SCOUT_WORKERS", "16"),
        ("SCOUT_MAX_CONNECTIONS_PER_HOST", "8"),
        ("SCOUT_MAX_HANDSHAKES_PER_HOST", "8"),
    ];
    env.extend_from_slice(extra);
    let mut scout = Scout::spawn_with(fleet, &env);
    scout.initialize();
    let host = fleet.alias(0);
    let calls: Vec<Value> = (0..50)
        .map(|i| {
            if i % 2 == 0 {
                json!({"target": format!("{host}:/"), "query": format!("echo call-{i}")})
            } else {
                json!({"target": format!("{host}:{}", file.display())})
            }
        })
        .collect();
    let ids: Vec<u64> = calls
        .iter()
        .map(|c| start_call(&mut scout, c.clone()))
        .collect();
    calls
        .into_iter()
        .zip(ids)
        .map(|(call, id)| {
            let r = wait_call(&mut scout, id, Duration::from_secs(120));
            (call, r)
        })
        .collect()
}

fn assert_all_answered(answers: &[(Value, ToolResult)]) {
    let failures: Vec<String> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, (call, r))| {
            let expected = if i % 2 == 0 {
                format!("call-{i}")
            } else {
                "payload\n".to_string()
            };
            (r.is_error || r.text != expected).then(|| format!("{call}: {}", r.text))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of 50 calls failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn max_sessions_two_serves_fifty_concurrent_requests() {
    // One SFTP channel kept open per session plus one exec channel at a time: two channels.
    // The log at VERBOSE shows sshd's "no more sessions" when a channel open is refused.
    let fleet = Fleet::builder()
        .sshd_option("MaxSessions", "2")
        .sshd_option("LogLevel", "VERBOSE")
        .start();
    assert_all_answered(&fifty_at_once(&fleet, &[]));
    let log = fleet.sshd_log(0);
    assert!(
        !log.to_lowercase().contains("maxsessions"),
        "sshd refused a channel: {log}"
    );
}

#[test]
fn a_low_max_startups_serves_fifty_concurrent_requests() {
    // Beyond 2 unauthenticated connections at once, sshd drops every new one.
    let fleet = Fleet::builder()
        .sshd_option("MaxStartups", "2:100:2")
        .sshd_option("LogLevel", "INFO")
        .start();
    let answers = fifty_at_once(&fleet, &[]);
    let log = fleet.sshd_log(0);
    assert_all_answered(&answers);
    // The fault really happened: sshd dropped connections, and scout-mcp retried them.
    assert!(
        log.contains("past MaxStartups"),
        "sshd never dropped a connection; the test did not provoke MaxStartups:\n{}",
        support::tail(&log, 2000)
    );
}

#[test]
fn a_sha1_only_server_is_refused_with_a_message_that_says_so() {
    let fleet = Fleet::builder()
        .host_key_type("rsa")
        .sshd_option("HostKeyAlgorithms", "ssh-rsa")
        .sshd_option("KexAlgorithms", "diffie-hellman-group14-sha1")
        .start();
    // OpenSSH talks to it when allowed SHA-1: the server is sound, only its algorithms differ.
    let out = run_bounded(
        Command::new("ssh")
            .args(fleet.openssh_args())
            .args(["-o", "HostKeyAlgorithms=ssh-rsa"])
            .args(["-o", "KexAlgorithms=diffie-hellman-group14-sha1"])
            .arg(fleet.alias(0))
            .arg("echo in"),
        PATIENCE,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "in",
        "OpenSSH with SHA-1 allowed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut scout = Scout::spawn(&fleet);
    let started = Instant::now();
    let r = scout.call(json!({"target": format!("{}:/", fleet.alias(0)), "query": "echo in"}));
    assert!(r.is_error, "expected a refusal, got: {}", r.text);
    assert!(r.text.contains(&fleet.alias(0)), "{}", r.text);
    // libssh2 fails the key exchange (-5, "Unable to exchange encryption keys").
    assert!(
        r.text.contains("key exchange failed") && r.text.contains("SHA-1"),
        "the message says why: {}",
        r.text
    );
    assert!(started.elapsed() < PATIENCE, "{:?}", started.elapsed());
}

#[test]
fn a_half_open_pooled_session_fails_within_the_bound_then_recovers() {
    let fleet = Fleet::start(1);
    let small = fleet.write_file("faults/small.txt", b"small file\n");
    let proxy = fleet.proxy(0);
    let timeout = CONNECT_TIMEOUT.to_string();
    let mut scout = Scout::spawn_through(&fleet, &proxy, &[("SCOUT_CONNECT_TIMEOUT", &timeout)]);
    let read = json!({"target": format!("proxied:{}", small.display())});
    assert_eq!(scout.call(read.clone()).text, "small file\n");
    // The session idles in the pool; the peer goes silent without closing anything.
    proxy.stall();
    let started = Instant::now();
    let id = start_call(&mut scout, read.clone());
    let r = wait_call(&mut scout, id, fault_bound() + PATIENCE);
    let took = started.elapsed();
    assert!(r.is_error, "a silent peer cannot serve a read: {}", r.text);
    assert!(
        r.text.contains("proxied"),
        "the error names the host: {}",
        r.text
    );
    assert!(
        r.text.contains("timed out"),
        "the error says it timed out: {}",
        r.text
    );
    assert!(
        took < fault_bound(),
        "a half-open session took {took:?} to fail (bound {:?})",
        fault_bound()
    );
    proxy.resume();
    let r = scout.call(read);
    assert!(!r.is_error, "after resume: {}", r.text);
    assert_eq!(r.text, "small file\n");
}
