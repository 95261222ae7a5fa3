//! Adaptive per-host timeouts (SCOUT_ADAPTIVE_TIMEOUTS) against real sshd behind a userspace
//! proxy: once a host's round trips are known, a silent peer fails within a multiple of them
//! instead of the configured timeout, and the error says which timeout it was and why.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{Fleet, ProxiedFleet, Scout, ToolResult, PATIENCE};

/// Reads before the stall: three timed round trips each (stat, open, fstat), well past the
/// eight a host needs before its timeouts adapt.
const WARM_READS: usize = 12;

fn warm_up(scout: &mut Scout, read: &Value) {
    for i in 0..WARM_READS {
        let r = scout.call(read.clone());
        assert!(!r.is_error, "warm-up read {i}: {}", r.text);
        assert_eq!(r.text, "small file\n");
    }
}

/// Sends `read` and waits up to `limit` for its result; returns it and how long it took.
fn timed_read(scout: &mut Scout, read: &Value, limit: Duration) -> (ToolResult, Duration) {
    let started = Instant::now();
    let id = scout.start_request("tools/call", json!({"name": "scout", "arguments": read}));
    let response = scout.wait_response(id, limit);
    let took = started.elapsed();
    let result = response
        .get("result")
        .unwrap_or_else(|| panic!("expected a tool result, got {response}"));
    (ToolResult::from_result(result), took)
}

#[test]
fn a_stalled_host_fails_within_its_adaptive_timeout_not_the_configured_one() {
    let fleet = Fleet::start(1);
    let small = fleet.write_file("adaptive/small.txt", b"small file\n");
    let proxy = fleet.proxy(0);
    let mut scout = Scout::spawn_through(&fleet, &proxy, &[("SCOUT_CONNECT_TIMEOUT", "60")]);
    let read = json!({"target": format!("proxied:{}", small.display())});
    warm_up(&mut scout, &read);

    proxy.stall();
    // Without adaptation: 60 s for the stalled call, 60 s for the retry's handshake.
    let (r, took) = timed_read(&mut scout, &read, Duration::from_secs(130) + PATIENCE);
    assert!(r.is_error, "a silent peer cannot serve a read: {}", r.text);
    assert!(r.text.contains("proxied"), "names the host: {}", r.text);
    assert!(
        r.text.contains("adaptive timeout") && r.text.contains("SCOUT_ADAPTIVE_TIMEOUTS=false"),
        "says the timeout was adaptive and how to turn that off: {}",
        r.text
    );
    assert!(
        r.text.contains("SCOUT_CONNECT_TIMEOUT=60.0 s"),
        "names the configured timeout it replaced: {}",
        r.text
    );
    // A bound no slow machine breaks that still proves adaptation (the configured one is 60 s).
    assert!(took < Duration::from_secs(40), "took {took:?}: {}", r.text);
    // The stalled call itself (before the transparent reconnect) timed out adaptively too.
    assert!(
        scout.wait_for_stderr("cannot stat: timed out: no answer within", PATIENCE),
        "the stalled call's timeout is logged: {}",
        support::tail(&scout.stderr_log(), 2000)
    );
    let log = scout.stderr_log();
    let line = log
        .lines()
        .find(|l| l.contains("cannot stat: timed out"))
        .unwrap_or_default();
    assert!(
        line.contains("adaptive timeout") && line.contains("round trip"),
        "the call's timeout came from round trips: {line}"
    );

    proxy.resume();
    let r = scout.call(read);
    assert!(!r.is_error, "after resume: {}", r.text);
    assert_eq!(r.text, "small file\n");
}

#[test]
fn with_adaptive_timeouts_off_the_error_names_the_configured_timeout() {
    let fleet = Fleet::start(1);
    let small = fleet.write_file("adaptive/small.txt", b"small file\n");
    let proxy = fleet.proxy(0);
    let mut scout = Scout::spawn_through(
        &fleet,
        &proxy,
        &[
            ("SCOUT_CONNECT_TIMEOUT", "3"),
            ("SCOUT_ADAPTIVE_TIMEOUTS", "false"),
        ],
    );
    let read = json!({"target": format!("proxied:{}", small.display())});
    warm_up(&mut scout, &read);

    proxy.stall();
    let (r, took) = timed_read(&mut scout, &read, Duration::from_secs(10) + PATIENCE);
    assert!(r.is_error, "a silent peer cannot serve a read: {}", r.text);
    assert!(r.text.contains("proxied"), "names the host: {}", r.text);
    assert!(
        r.text.contains("no answer within 3.0 s") && r.text.contains("SCOUT_CONNECT_TIMEOUT"),
        "names the configured timeout: {}",
        r.text
    );
    assert!(
        !r.text.contains("adaptive"),
        "adaptation is off: {}",
        r.text
    );
    // The stalled call waited its whole configured timeout (a lower bound, which no slow
    // machine breaks): nothing inside libssh2 cut it short.
    assert!(took >= Duration::from_secs(3), "took {took:?}: {}", r.text);
    proxy.resume();
}
