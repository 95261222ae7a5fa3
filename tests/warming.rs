//! Connection warming (SCOUT_WARM_HOSTS) and the reaper's health checks,
//! against real sshd: warming connects in the background without a tool
//! call and without holding up `initialize` or shutdown; a health check
//! finds a session whose peer went silent before a request does.

mod support;

use serde_json::json;
use std::time::Duration;
use support::{poll, tail, Fleet, ProxiedFleet, Scout, SilentListener, PATIENCE};

fn held(fleet: &Fleet, scout: &Scout) -> usize {
    fleet.connections_held_by(scout.pid())
}

#[test]
fn listed_hosts_are_connected_after_initialize_without_any_call() {
    let fleet = Fleet::start(3);
    let file = fleet.write_file("warm/data.txt", b"warm\n");
    let warm = format!("{},{}", fleet.alias(0), fleet.alias(1));
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_WARM_HOSTS", warm.as_str())]);
    scout.initialize();
    let both = poll(PATIENCE, Duration::from_millis(20), || {
        (held(&fleet, &scout) == 2).then_some(())
    });
    assert!(
        both.is_some(),
        "expected 2 warmed connections, the server holds {}; stderr: {}",
        held(&fleet, &scout),
        tail(&scout.stderr_log(), 3000)
    );
    assert!(scout.wait_for_stderr("warming finished: 2 of 2 hosts", PATIENCE));
    // The first read of a warmed host uses the warm connection.
    let read = scout.call(json!({"target": format!("{}:{}", fleet.alias(0), file.display())}));
    assert_eq!(read.text, "warm\n", "{:?}", read.raw);
    assert_eq!(held(&fleet, &scout), 2, "a warmed host connected again");
}

#[test]
fn a_blackholed_host_delays_neither_initialize_nor_other_hosts_nor_shutdown() {
    let fleet = Fleet::start(1);
    let silent = SilentListener::start();
    let config = fleet.ssh_config_with(&[("silent", silent.addr())]);
    let config = config.display().to_string();
    let warm = format!("silent,ghost*,{}", fleet.alias(0));
    // A connect to the silent host can only give up after a minute:
    // anything that waited for it would outlast the waits below.
    let mut scout = Scout::spawn_with(
        &fleet,
        &[
            ("SCOUT_SSH_CONFIG", config.as_str()),
            ("SCOUT_CONNECT_TIMEOUT", "60"),
            ("SCOUT_WARM_HOSTS", warm.as_str()),
        ],
    );
    scout.initialize();
    assert!(
        scout.wait_for_stderr("warming 2 hosts", PATIENCE),
        "{}",
        tail(&scout.stderr_log(), 3000)
    );
    let healthy = poll(PATIENCE, Duration::from_millis(20), || {
        (held(&fleet, &scout) == 1).then_some(())
    });
    assert!(healthy.is_some(), "the healthy host was not warmed");
    let log = scout.stderr_log();
    assert!(
        log.contains("SCOUT_WARM_HOSTS: no host") && log.contains("ghost*"),
        "no warning about the unknown name: {}",
        tail(&log, 3000)
    );
    assert!(
        !log.contains("warming finished"),
        "warming of the silent host ended early: {}",
        tail(&log, 3000)
    );
    let r = scout.call(json!({"target": format!("{}:/", fleet.alias(0)), "query": "echo up"}));
    assert_eq!(r.text, "up", "{:?}", r.raw);
    scout.close_stdin();
    let status = scout.wait_exit(PATIENCE);
    assert!(
        status.is_some_and(|s| s.success()),
        "scout-mcp did not exit cleanly while warming a silent host: {status:?}; {}",
        tail(&scout.stderr_log(), 3000)
    );
}

#[test]
fn a_session_whose_peer_went_silent_is_dropped_by_the_health_check() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("health/data.txt", b"fine\n");
    let proxy = fleet.proxy(0);
    let mut env = fleet.env();
    env.extend(fleet.env_with_proxies(&[("proxied", proxy.addr())]));
    env.push(("SCOUT_HEALTH_CHECK_INTERVAL".into(), "1".into()));
    let mut scout = Scout::spawn_env(&env);
    scout.initialize();
    let target = format!("proxied:{}", file.display());
    assert_eq!(scout.call(json!({"target": target})).text, "fine\n");
    assert_eq!(proxy.accepted(), 1);
    proxy.stall();
    assert!(
        scout.wait_for_stderr("failed its health check", PATIENCE),
        "the stalled session was not dropped by a health check: {}",
        tail(&scout.stderr_log(), 3000)
    );
    proxy.resume();
    let read = scout.call(json!({"target": target}));
    assert_eq!(read.text, "fine\n", "{:?}", read.raw);
    assert_eq!(proxy.accepted(), 2, "the next read did not connect anew");
    // The request never met the dead session itself.
    assert!(
        !scout.stderr_log().contains("pooled session was dead"),
        "{}",
        tail(&scout.stderr_log(), 3000)
    );
}
