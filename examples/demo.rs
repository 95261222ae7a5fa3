//! `make demo`: a throwaway sshd fleet on loopback, the real scout-mcp
//! binary, and a scripted MCP session printed exchange by exchange.
//!
//! It reuses the integration tests' harness, so what you see here is what
//! the tests exercise.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use support::{Fleet, Scout};

fn show(label: &str, request: &Value, response: &Value) {
    println!("\n=== {label}");
    println!("→ {request}");
    let pretty = serde_json::to_string_pretty(response).unwrap_or_default();
    let text = response["result"]["content"][0]["text"].as_str();
    match text {
        // Tool results: show the text the model would read, as text.
        Some(t) => {
            println!("← isError={} text:", response["result"]["isError"]);
            for line in t.lines() {
                println!("    {line}");
            }
        }
        None => println!("← {pretty}"),
    }
}

fn exchange(scout: &mut Scout, label: &str, method: &str, params: Value) -> Value {
    let request = json!({"method": method, "params": params});
    let response = scout.request(method, params);
    show(label, &request, &response);
    response
}

fn main() {
    println!("Starting a fleet of 3 sshd hosts on loopback (real OpenSSH, throwaway keys)…");
    let fleet = Fleet::start(3);
    let app = fleet.write_file(
        "app/app.log",
        b"2026-11-26 10:00:01 INFO started\n2026-11-26 10:00:02 ERROR disk almost full\n\
          2026-11-26 10:00:03 INFO request served\n2026-11-26 10:00:04 ERROR upstream timeout\n",
    );
    fleet.write_file("app/config.toml", b"[server]\nport = 8080\n");
    let dir = app
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    for i in 0..3 {
        println!("  {} -> {}", fleet.alias(i), fleet.addr(i));
    }
    println!("ssh config: {}", fleet.ssh_config_path().display());
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);

    exchange(
        &mut scout,
        "initialize",
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "demo", "version": "1"}}),
    );
    scout.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let tools = scout.request("tools/list", json!({}));
    println!(
        "\n=== tools/list\n← one tool: {}",
        tools["result"]["tools"][0]["name"]
    );
    let call = |args: Value| json!({"name": "scout", "arguments": args});
    exchange(
        &mut scout,
        "the hosts",
        "tools/call",
        call(json!({"target": "hosts"})),
    );
    exchange(
        &mut scout,
        "read a file",
        "tools/call",
        call(json!({"target": format!("{host}:{}", app.display())})),
    );
    exchange(
        &mut scout,
        "list a directory",
        "tools/call",
        call(json!({"target": format!("{host}:{dir}")})),
    );
    exchange(
        &mut scout,
        "run a command (a pipeline, in the target directory)",
        "tools/call",
        call(
            json!({"target": format!("{host}:{dir}"), "query": "grep ERROR app.log | wc -l; uname -s"}),
        ),
    );
    exchange(
        &mut scout,
        "a failing command",
        "tools/call",
        call(json!({"target": format!("{}:/", fleet.alias(1)), "query": "ls /nonexistent"})),
    );
    exchange(
        &mut scout,
        "a resource",
        "resources/read",
        json!({"uri": format!("scout://{}{}", fleet.alias(2), app.display())}),
    );
    scout.close_stdin();
    let status = scout.wait_exit(std::time::Duration::from_secs(10));
    println!("\nstdin closed; scout-mcp exited with {status:?}. The fleet is torn down now.");
}
