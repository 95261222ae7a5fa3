//! The MCP stdio server as a client sees it: handshake, method routing,
//! errors for broken input, backpressure, shutdown.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{Fleet, Scout};

fn no_fleet_env(dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        (
            "SCOUT_SSH_CONFIG".into(),
            dir.join("missing_config").display().to_string(),
        ),
        (
            "SCOUT_KNOWN_HOSTS".into(),
            dir.join("missing_known_hosts").display().to_string(),
        ),
        ("HOME".into(), dir.display().to_string()),
    ]
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("scout-protocol-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn initialize_negotiates_the_version_and_announces_tools_and_resources() {
    let mut scout = Scout::spawn_env(&no_fleet_env(&temp_dir("init")));
    let current = scout.initialize();
    assert_eq!(current["protocolVersion"], json!("2025-11-25"));
    assert_eq!(current["serverInfo"]["name"], json!("scout-mcp"));
    assert!(current["capabilities"]["tools"].is_object());
    assert!(current["capabilities"]["resources"].is_object());
    for older in ["2025-06-18", "2025-03-26", "2024-11-05"] {
        let r = scout.request("initialize", json!({"protocolVersion": older, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}));
        assert_eq!(r["result"]["protocolVersion"], json!(older));
    }
    let tools = scout.request("tools/list", json!({}));
    let tool = &tools["result"]["tools"][0];
    assert_eq!(tool["name"], json!("scout"));
    assert!(tool["inputSchema"]["properties"]["target"].is_object());
    assert_eq!(scout.request("ping", json!({}))["result"], json!({}));
}

#[test]
fn unknown_methods_get_method_not_found_even_before_initialize() {
    let mut scout = Scout::spawn_env(&no_fleet_env(&temp_dir("unknown")));
    let r = scout.request("tools/frobnicate", json!({}));
    assert_eq!(r["error"]["code"], json!(-32601), "{r}");
}

#[test]
fn garbage_gets_parse_errors_and_the_server_keeps_serving() {
    let mut scout = Scout::spawn_env(&no_fleet_env(&temp_dir("garbage")));
    for line in [
        "this is not json",
        "{\"jsonrpc\": \"2.0\", \"id\": 1, ",
        "\u{1}\u{2}",
    ] {
        scout.send_line(line);
        let reply = scout
            .recv(Duration::from_secs(10))
            .expect("an answer to garbage");
        assert_eq!(reply["error"]["code"], json!(-32700), "{line:?}: {reply}");
        assert_eq!(reply["id"], Value::Null);
    }
    for (line, code) in [
        ("[1, 2, 3]", -32600),
        ("42", -32600),
        (r#"{"jsonrpc": "1.0", "id": 5, "method": "ping"}"#, -32600),
        (
            r#"{"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}"#,
            -32600,
        ),
    ] {
        scout.send_line(line);
        let reply = scout
            .recv(Duration::from_secs(10))
            .expect("an answer to an invalid request");
        assert_eq!(reply["error"]["code"], json!(code), "{line}: {reply}");
    }
    assert_eq!(scout.request("ping", json!({}))["result"], json!({}));
}

#[test]
fn wrong_tool_parameters_get_invalid_params() {
    let mut scout = Scout::spawn_env(&no_fleet_env(&temp_dir("params")));
    for params in [
        json!({"name": "scout"}),
        json!({"name": "scout", "arguments": {"target": 42}}),
        json!({"name": "scout", "arguments": {"target": "a:/", "depth": 99}}),
        json!({"name": "scout", "arguments": {"target": "a:/", "no_such_param": true}}),
        json!({"name": "not-a-tool", "arguments": {}}),
    ] {
        let r = scout.request("tools/call", params.clone());
        assert_eq!(r["error"]["code"], json!(-32602), "{params}: {r}");
    }
    let r = scout.request("resources/read", json!({}));
    assert_eq!(r["error"]["code"], json!(-32602), "{r}");
}

#[test]
fn a_full_queue_answers_server_busy_at_once_instead_of_piling_up() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_WORKERS", "1"), ("SCOUT_QUEUE_SIZE", "1")]);
    let target = format!("{}:/", fleet.alias(0));
    let ids: Vec<u64> = (0..6)
        .map(|_| {
            scout.start_request(
                "tools/call",
                json!({"name": "scout", "arguments": {"target": target, "query": "sleep 1; echo done"}}),
            )
        })
        .collect();
    let answers: Vec<Value> = ids
        .iter()
        .map(|&id| scout.wait_response(id, Duration::from_secs(60)))
        .collect();
    let busy = answers
        .iter()
        .filter(|a| a["error"]["code"] == json!(-32000))
        .count();
    let done = answers
        .iter()
        .filter(|a| a["result"]["content"][0]["text"] == json!("done"))
        .count();
    assert_eq!(busy + done, 6, "{answers:?}");
    assert!(
        busy >= 3,
        "one runs, one waits, the rest are refused: {answers:?}"
    );
    let message = answers
        .iter()
        .find(|a| a["error"]["code"] == json!(-32000))
        .and_then(|a| a["error"]["message"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("busy"), "{message}");
}

#[test]
fn end_of_input_exits_zero_promptly() {
    let mut scout = Scout::spawn_env(&no_fleet_env(&temp_dir("eof")));
    scout.initialize();
    let started = Instant::now();
    scout.close_stdin();
    let status = scout
        .wait_exit(Duration::from_secs(10))
        .expect("exits after stdin closes");
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn answers_already_computed_are_delivered_before_exit() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let id = scout.start_request(
        "tools/call",
        json!({"name": "scout", "arguments": {"target": format!("{}:/", fleet.alias(0)), "query": "sleep 0.3; echo late"}}),
    );
    scout.close_stdin();
    let answer = scout.wait_response(id, Duration::from_secs(20));
    assert_eq!(
        answer["result"]["content"][0]["text"],
        json!("late"),
        "{answer}"
    );
    assert!(scout
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .success());
}

#[test]
fn a_bad_setting_stops_the_server_with_a_clear_message() {
    let mut env = no_fleet_env(&temp_dir("badenv"));
    env.push(("SCOUT_MAX_POOL_SIZE".into(), "lots".into()));
    let mut scout = Scout::spawn_env(&env);
    let status = scout
        .wait_exit(Duration::from_secs(10))
        .expect("exits at once");
    assert!(!status.success());
    let log = scout.stderr_log();
    assert!(
        log.contains("SCOUT_MAX_POOL_SIZE") && log.contains("lots"),
        "{log}"
    );
}

#[test]
fn help_and_version_describe_the_binary() {
    let bin = env!("CARGO_BIN_EXE_scout-mcp");
    let help = std::process::Command::new(bin)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for var in [
        "SCOUT_SSH_CONFIG",
        "SCOUT_MAX_POOL_SIZE",
        "SCOUT_WORKERS",
        "SCOUT_COMMAND_TIMEOUT",
    ] {
        assert!(text.contains(var), "--help lacks {var}");
    }
    let version = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .expect("run --version");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("scout-mcp "));
}

fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

#[test]
fn the_stateless_era_is_served_without_a_handshake() {
    let mut scout = Scout::spawn_env(&no_fleet_env(&temp_dir("stateless")));
    let discover = scout.request("server/discover", json!({"_meta": stateless_meta()}));
    let result = &discover["result"];
    assert_eq!(result["resultType"], json!("complete"), "{discover}");
    let versions = result["supportedVersions"]
        .as_array()
        .expect("supportedVersions");
    assert!(versions.contains(&json!("2026-07-28")) && versions.contains(&json!("2025-11-25")));
    assert_eq!(result["serverInfo"]["name"], json!("scout-mcp"));
    // No initialize first: each request carries its version.
    let tools = scout.request("tools/list", json!({"_meta": stateless_meta()}));
    assert_eq!(tools["result"]["resultType"], json!("complete"));
    assert_eq!(tools["result"]["tools"][0]["name"], json!("scout"));
    let call = scout.request(
        "tools/call",
        json!({"name": "scout", "arguments": {"target": "hosts"}, "_meta": stateless_meta()}),
    );
    assert_eq!(call["result"]["resultType"], json!("complete"), "{call}");
    // ping and logging/setLevel are gone from this revision.
    let ping = scout.request("ping", json!({"_meta": stateless_meta()}));
    assert_eq!(ping["error"]["code"], json!(-32601));
    // Handshake-era results carry no resultType.
    let legacy = scout.request("tools/list", json!({}));
    assert!(legacy["result"].get("resultType").is_none());
}

#[test]
fn an_unsupported_version_in_meta_gets_the_supported_list() {
    let mut scout = Scout::spawn_env(&no_fleet_env(&temp_dir("badversion")));
    let r = scout.request(
        "tools/list",
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": {}}}),
    );
    assert_eq!(r["error"]["code"], json!(-32022), "{r}");
    let supported = r["error"]["data"]["supported"]
        .as_array()
        .expect("supported list");
    assert!(supported.contains(&json!("2026-07-28")));
}

#[test]
fn an_initialize_asking_for_the_stateless_revision_gets_the_newest_handshake_one() {
    let mut scout = Scout::spawn_env(&no_fleet_env(&temp_dir("initmodern")));
    let r = scout.request("initialize", json!({"protocolVersion": "2026-07-28", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}));
    assert_eq!(r["result"]["protocolVersion"], json!("2025-11-25"));
}

#[test]
fn after_set_level_the_client_gets_log_messages() {
    let dir = temp_dir("logmsg");
    let closed = support::closed_port();
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "Host gone\n  HostName {}\n  Port {}\n",
            closed.ip(),
            closed.port()
        ),
    )
    .expect("write config");
    let mut env = no_fleet_env(&dir);
    env[0].1 = config.display().to_string();
    let mut scout = Scout::spawn_env(&env);
    scout.initialize();
    // Before setLevel nothing is forwarded.
    let quiet = scout.request(
        "tools/call",
        json!({"name": "scout", "arguments": {"target": "gone:/"}}),
    );
    assert_eq!(quiet["result"]["isError"], json!(true));
    assert!(scout.recv(Duration::from_millis(300)).is_none());
    let set = scout.request("logging/setLevel", json!({"level": "warning"}));
    assert_eq!(set["result"], json!({}));
    let id = scout.start_request(
        "tools/call",
        json!({"name": "scout", "arguments": {"target": "gone:/"}}),
    );
    let mut messages = Vec::new();
    loop {
        let m = scout.recv(Duration::from_secs(20)).expect("a message");
        if m["id"] == json!(id) {
            break;
        }
        messages.push(m);
    }
    let warning = messages
        .iter()
        .find(|m| m["method"] == json!("notifications/message"))
        .unwrap_or_else(|| panic!("no log message among {messages:?}"));
    assert_eq!(warning["params"]["level"], json!("warning"));
    assert!(warning["params"]["data"]
        .as_str()
        .unwrap_or("")
        .contains("connection refused"));
}
