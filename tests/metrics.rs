//! `metrics://pool` against a real sshd: the figures move with real
//! requests, the JSON keeps its contract, and the figures are logged at
//! shutdown.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{Fleet, Scout};

fn read_metrics(scout: &mut Scout) -> (Value, Value) {
    let response = scout.request("resources/read", json!({"uri": "metrics://pool"}));
    let content = response["result"]["contents"][0].clone();
    let text = content["text"].as_str().unwrap_or_else(|| {
        panic!("metrics://pool gave no text: {response}");
    });
    let figures: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("metrics://pool is not JSON ({e}): {text}"));
    (content, figures)
}

#[test]
fn reads_show_up_in_the_pool_and_request_figures() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("m/a.txt", b"metrics\n");
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_MAX_POOL_SIZE", "37")]);
    scout.initialize();
    let host = fleet.alias(0);
    for _ in 0..2 {
        let r = scout.call(json!({"target": format!("{host}:{}", file.display())}));
        assert!(!r.is_error, "{}", r.text);
    }
    let (content, m) = read_metrics(&mut scout);
    assert_eq!(content["mimeType"], json!("application/json"), "{content}");
    assert_eq!(content["uri"], json!("metrics://pool"));
    let counter = |name: &str| m["counters"][name].as_u64().unwrap_or(0);
    assert!(counter("misses") >= 1, "{m}");
    assert!(counter("hits") >= 1, "{m}");
    assert!(counter("checkouts") >= 2, "{m}");
    assert!(m["connect_ms"]["count"].as_u64() >= Some(1), "{m}");
    assert!(m["checkout_us"]["count"].as_u64() >= Some(1), "{m}");
    assert!(
        m["requests"]["by_mode"]["read"]["count"].as_u64() >= Some(2),
        "{m}"
    );
    assert_eq!(m["requests"]["by_mode"]["read"]["errors"], json!(0), "{m}");
    assert_eq!(m["requests"]["by_mode"]["beam"]["count"], json!(0), "{m}");
    assert_eq!(m["pool"]["bound"], json!(37), "{m}");
    assert!(m["pool"]["live"].as_u64() >= Some(1), "{m}");
    let hosts = m["hosts"].as_array().cloned().unwrap_or_default();
    let listed = hosts.iter().find(|h| h["host"] == json!(host));
    let listed = listed.unwrap_or_else(|| panic!("{host} not in {m}"));
    assert!(listed["live"].as_u64() >= Some(1), "{m}");

    let list = scout.request("resources/list", json!({}));
    let resources = list["result"]["resources"].as_array().cloned();
    let metrics = resources
        .unwrap_or_default()
        .into_iter()
        .find(|r| r["uri"] == json!("metrics://pool"));
    let metrics = metrics.unwrap_or_else(|| panic!("metrics://pool not listed: {list}"));
    assert_eq!(metrics["mimeType"], json!("application/json"));
}

#[test]
fn a_failed_read_counts_as_an_error_of_its_mode() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let r = scout.call(json!({"target": format!("{}:/no/such/file", fleet.alias(0))}));
    assert!(r.is_error, "{}", r.text);
    let (_, m) = read_metrics(&mut scout);
    assert_eq!(m["requests"]["by_mode"]["read"]["errors"], json!(1), "{m}");
}

#[test]
fn the_figures_are_logged_when_stdin_closes() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("m/b.txt", b"bye\n");
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_LOG_LEVEL", "info")]);
    scout.initialize();
    let r = scout.call(json!({"target": format!("{}:{}", fleet.alias(0), file.display())}));
    assert!(!r.is_error, "{}", r.text);
    scout.close_stdin();
    let status = scout.wait_exit(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = scout.stderr_log();
    let pool_line = log.lines().find(|l| l.contains("at exit: pool: live"));
    let pool_line = pool_line.unwrap_or_else(|| panic!("no pool line in\n{log}"));
    assert!(pool_line.contains("1 misses"), "{pool_line}");
    let requests = log
        .lines()
        .find(|l| l.contains("at exit: requests: read 1"));
    assert!(requests.is_some(), "no requests line in\n{log}");
}
