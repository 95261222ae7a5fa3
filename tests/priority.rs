//! Request prioritization against a real sshd: a read is answered while
//! long commands hold the workers and sessions they may have — on the
//! same host (the pool keeps one session for quick work) and on other
//! hosts (a worker is kept for quick requests).

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{command_running, wait_until, Fleet, Scout, PATIENCE};

/// Long enough that no command can finish during a test, short of a
/// stalled machine; every test cancels its commands instead of waiting.
const SLEEP_SECS: u32 = 60;

/// A `sleep` no other process uses — nor another test of this binary
/// running at the same time — so that `pgrep -f` finds exactly the
/// process this call is for.
fn unique_sleep() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("sleep {SLEEP_SECS}.{}{n:03}", std::process::id())
}

/// The settings of the brief: two general workers and one kept for quick
/// requests (the default quarter, at least one), two sessions per host.
fn spawn(fleet: &Fleet) -> Scout {
    let mut scout = Scout::spawn_with(
        fleet,
        &[
            ("SCOUT_WORKERS", "3"),
            ("SCOUT_MAX_CONNECTIONS_PER_HOST", "2"),
            ("SCOUT_COMMAND_TIMEOUT", "120"),
        ],
    );
    scout.initialize();
    scout
}

fn start_command(scout: &mut Scout, host: &str, sleeper: &str) -> u64 {
    scout.start_request(
        "tools/call",
        json!({"name": "scout", "arguments": {"target": format!("{host}:/"), "query": sleeper}}),
    )
}

/// Reads a file with `method` and checks the answer came while every
/// command was still running and unanswered.
fn read_while_commands_run(
    scout: &mut Scout,
    method: &str,
    params: Value,
    commands: &[u64],
    sleepers: &[String],
) -> Value {
    let id = scout.start_request(method, params);
    let response = scout.wait_response(id, PATIENCE);
    for sleeper in sleepers {
        assert!(
            command_running(sleeper),
            "{sleeper} ended before the read was answered"
        );
    }
    // Whatever arrived meanwhile (buffered by wait_response) or is waiting.
    while let Some(message) = scout.recv(Duration::from_millis(50)) {
        let answered =
            message.get("method").is_none() && commands.iter().any(|c| message["id"] == json!(c));
        assert!(!answered, "a command finished first: {message}");
    }
    response
}

/// Cancels the commands and waits (bounded) for their remote processes
/// to go, so that nothing outlives the test.
fn cancel_all(scout: &mut Scout, commands: &[u64], sleepers: &[String]) {
    for id in commands {
        scout.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "test over"}}));
    }
    for sleeper in sleepers {
        assert!(
            wait_until(PATIENCE, || !command_running(sleeper)),
            "{sleeper} survived its cancellation"
        );
    }
    // Still serving.
    assert_eq!(scout.request("ping", json!({}))["result"], json!({}));
}

#[test]
fn a_read_is_answered_while_commands_hold_the_same_hosts_sessions() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("notes.txt", b"quick answer\n");
    let mut scout = spawn(&fleet);
    let host = fleet.alias(0);
    let sleepers: Vec<String> = (0..3).map(|_| unique_sleep()).collect();
    let commands: Vec<u64> = sleepers
        .iter()
        .map(|s| start_command(&mut scout, &host, s))
        .collect();
    // The first command runs; the others wait for a worker or for the
    // one session commands may hold (the other is kept for reads).
    assert!(wait_until(PATIENCE, || command_running(&sleepers[0])));
    // Answered after the dispatcher has queued every command.
    assert_eq!(scout.request("ping", json!({}))["result"], json!({}));
    let target = format!("{host}:{}", file.display());
    let args = json!({"name": "scout", "arguments": {"target": target}});
    let read = read_while_commands_run(&mut scout, "tools/call", args, &commands, &sleepers[..1]);
    assert_eq!(
        read["result"]["content"][0]["text"],
        json!("quick answer\n"),
        "{read}"
    );
    cancel_all(&mut scout, &commands, &sleepers);
}

#[test]
fn a_read_is_answered_while_commands_on_other_hosts_hold_every_general_worker() {
    let fleet = Fleet::start(3);
    let file = fleet.write_file("notes.txt", b"still quick\n");
    let mut scout = spawn(&fleet);
    let sleepers: Vec<String> = (0..3).map(|_| unique_sleep()).collect();
    // Two commands take both general workers; the third waits in the
    // bulk queue.
    let hosts = [fleet.alias(1), fleet.alias(2), fleet.alias(1)];
    let commands: Vec<u64> = hosts
        .iter()
        .zip(&sleepers)
        .map(|(h, s)| start_command(&mut scout, h, s))
        .collect();
    assert!(wait_until(PATIENCE, || command_running(&sleepers[0])
        && command_running(&sleepers[1])));
    assert_eq!(scout.request("ping", json!({}))["result"], json!({}));
    let path = file.display();
    let tool =
        json!({"name": "scout", "arguments": {"target": format!("{}:{path}", fleet.alias(0))}});
    let read = read_while_commands_run(&mut scout, "tools/call", tool, &commands, &sleepers[..2]);
    assert_eq!(
        read["result"]["content"][0]["text"],
        json!("still quick\n"),
        "{read}"
    );
    // A resource read takes the quick lane too.
    let uri = format!("scout://{}{path}", fleet.alias(0));
    let resource = read_while_commands_run(
        &mut scout,
        "resources/read",
        json!({"uri": uri}),
        &commands,
        &sleepers[..2],
    );
    assert_eq!(
        resource["result"]["contents"][0]["text"],
        json!("still quick\n"),
        "{resource}"
    );
    cancel_all(&mut scout, &commands, &sleepers);
}
