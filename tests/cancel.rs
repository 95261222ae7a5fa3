//! Cancellation, timeouts that stop remote work, progress, and shutdown
//! with work in flight — against a real sshd on this machine, so the test
//! can look for the remote processes itself.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{command_running, wait_until, Fleet, Scout};

/// A `sleep` with a duration no other process uses, so that `pgrep -f`
/// finds exactly the processes a test started.
fn unique_sleep(tag: u32) -> String {
    format!("sleep 9{}.{}", std::process::id() % 1000, tag)
}

fn tool_call(target: &str, query: &str) -> Value {
    json!({"name": "scout", "arguments": {"target": target, "query": query}})
}

#[test]
fn a_cancelled_command_stops_with_its_children_and_gets_no_response() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let (parent, child) = (unique_sleep(1), unique_sleep(2));
    let query = format!("{child} & {parent}; wait");
    let id = scout.start_request(
        "tools/call",
        tool_call(&format!("{}:/", fleet.alias(0)), &query),
    );
    assert!(wait_until(Duration::from_secs(20), || command_running(
        &parent
    ) && command_running(
        &child
    )));
    scout.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "test"}}));
    assert!(
        wait_until(Duration::from_secs(2), || !command_running(&parent)
            && !command_running(&child)),
        "remote processes survived the cancel by 2 s"
    );
    // No response for the cancelled id; the server keeps serving.
    let next = scout.call(json!({"target": format!("{}:/", fleet.alias(0)), "query": "echo next"}));
    assert_eq!(next.text, "next");
    while let Some(message) = scout.recv(Duration::from_millis(300)) {
        assert_ne!(
            message["id"],
            json!(id),
            "a cancelled request was answered: {message}"
        );
    }
}

#[test]
fn a_timed_out_command_is_terminated_on_the_remote_side() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_COMMAND_TIMEOUT", "1")]);
    let sleeper = unique_sleep(3);
    let r = scout.call(json!({"target": format!("{}:/", fleet.alias(0)), "query": format!("echo begun; {sleeper}")}));
    assert!(
        r.is_error && r.text.contains("timed out") && r.text.contains("begun"),
        "{}",
        r.text
    );
    assert!(
        wait_until(Duration::from_secs(2), || !command_running(&sleeper)),
        "the timed-out command still runs 2 s later"
    );
}

#[test]
fn long_commands_report_progress_when_asked() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let mut params = tool_call(
        &format!("{}:/", fleet.alias(0)),
        "for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.3; done",
    );
    params["_meta"] = json!({"progressToken": "p-1"});
    let id = scout.start_request("tools/call", params);
    let mut progress = Vec::new();
    let response = loop {
        let message = scout.recv(Duration::from_secs(30)).expect("a message");
        if message["id"] == json!(id) {
            break message;
        }
        if message["method"] == json!("notifications/progress") {
            assert_eq!(message["params"]["progressToken"], json!("p-1"));
            progress.push(message["params"].clone());
        }
    };
    assert!(response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .contains("line-6"));
    assert!(progress.len() >= 2, "{progress:?}");
    let values: Vec<f64> = progress
        .iter()
        .map(|p| p["progress"].as_f64().unwrap_or(0.0))
        .collect();
    assert!(
        values.windows(2).all(|w| w[1] > w[0]),
        "strictly increasing: {values:?}"
    );
    assert!(progress
        .iter()
        .any(|p| p["message"].as_str().unwrap_or("").starts_with("line-")));
}

#[test]
fn a_second_request_with_an_id_in_flight_is_refused() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let call = tool_call(&format!("{}:/", fleet.alias(0)), "sleep 0.5; echo first");
    scout.send(&json!({"jsonrpc": "2.0", "id": "dup", "method": "tools/call", "params": call}));
    scout.send(&json!({"jsonrpc": "2.0", "id": "dup", "method": "tools/call", "params": call}));
    let first = scout.recv(Duration::from_secs(20)).expect("an answer");
    assert_eq!(first["error"]["code"], json!(-32600), "{first}");
    let second = scout
        .recv(Duration::from_secs(20))
        .expect("the real answer");
    assert_eq!(
        second["result"]["content"][0]["text"],
        json!("first"),
        "{second}"
    );
}

#[test]
fn sigterm_with_work_in_flight_exits_zero_within_the_grace_period_and_stops_remote_work() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_SHUTDOWN_GRACE", "1")]);
    let sleeper = unique_sleep(4);
    scout.start_request(
        "tools/call",
        tool_call(&format!("{}:/", fleet.alias(0)), &sleeper),
    );
    assert!(wait_until(Duration::from_secs(20), || command_running(
        &sleeper
    )));
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &scout.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = scout
        .wait_exit(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(exit.success(), "{exit:?}\n{}", scout.stderr_log());
    // Grace (1 s) + cancellation (bounded at 3 s) + slack.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(2), || !command_running(&sleeper)),
        "a command outlived the server's shutdown"
    );
}

#[test]
fn a_cancelled_transfer_leaves_no_partial_file() {
    let fleet = Fleet::start(1);
    let big = fleet.write_file("big/blob.bin", &vec![7u8; 64 << 20]);
    let local_dir = fleet.mkdir("downloads");
    let local = local_dir.join("blob.bin");
    let mut scout = Scout::spawn(&fleet);
    let mut params = json!({"name": "scout", "arguments": {
        "target": format!("{}:{}", fleet.alias(0), big.display()),
        "beam": local.display().to_string()
    }});
    params["_meta"] = json!({"progressToken": "dl"});
    let id = scout.start_request("tools/call", params);
    // Cancel once the transfer has visibly started.
    loop {
        let message = scout
            .recv(Duration::from_secs(30))
            .expect("progress before the end");
        assert_ne!(
            message["id"],
            json!(id),
            "finished before it could be cancelled: {message}"
        );
        if message["method"] == json!("notifications/progress") {
            break;
        }
    }
    scout.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id}}));
    let leftovers = || {
        std::fs::read_dir(&local_dir)
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(10), || leftovers() == 0),
        "files left in the download directory: {:?}",
        std::fs::read_dir(&local_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    let next = scout
        .call(json!({"target": format!("{}:/", fleet.alias(0)), "query": "echo still-serving"}));
    assert_eq!(next.text, "still-serving");
}

/// Cancels `ids` back to back, as a client that gives up on several calls does.
fn cancel_all(scout: &mut Scout, ids: &[u64]) {
    for id in ids {
        scout.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "test"}}));
    }
}

#[test]
fn commands_cancelled_while_queued_for_a_session_never_outlive_the_cancel() {
    // Two sessions per host, so commands may hold one: the second and third
    // wait for it. Cancelling all three at once frees the first's session
    // while the others are already cancelled: they must not start then (a
    // command cut off before it reports its process group cannot be stopped).
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_MAX_CONNECTIONS_PER_HOST", "2")]);
    let sleepers = [unique_sleep(61), unique_sleep(62), unique_sleep(63)];
    let target = format!("{}:/", fleet.alias(0));
    let ids: Vec<u64> = sleepers
        .iter()
        .map(|s| scout.start_request("tools/call", tool_call(&target, s)))
        .collect();
    assert!(wait_until(Duration::from_secs(20), || command_running(
        &sleepers[0]
    )));
    cancel_all(&mut scout, &ids);
    for sleeper in &sleepers {
        assert!(
            wait_until(Duration::from_secs(10), || !command_running(sleeper)),
            "{sleeper} outlived its cancellation"
        );
    }
    // Nothing started late either.
    std::thread::sleep(Duration::from_millis(500));
    for sleeper in &sleepers {
        assert!(
            !command_running(sleeper),
            "{sleeper} started after its cancellation"
        );
    }
    let next = scout.call(json!({"target": target, "query": "echo next"}));
    assert_eq!(next.text, "next");
}
