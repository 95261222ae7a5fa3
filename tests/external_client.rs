//! scout-mcp as a client this project did not write sees it: the official MCP Python SDK
//! (pinned in tests/external/requirements.txt, installed by `make test-deps` into
//! target/mcp-venv) starts the binary over stdio against a real sshd fleet, in both protocol
//! eras, and lists tools, reads a file, reads `hosts://list` and runs a command. Also: every
//! JSON snippet in the README parses, so a user can paste it into a client config.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::{run_bounded, Fleet, PATIENCE};

const CLIENT_SCRIPT: &str = "tests/external/python_sdk_client.py";
/// The script's exit code when it cannot import the SDK.
const SDK_MISSING: i32 = 3;

fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The interpreter that has the SDK: SCOUT_TEST_PYTHON if set, else the venv `make test-deps`
/// makes. Never a silent skip: without it the test fails and says how to get it.
fn python_with_sdk() -> PathBuf {
    if let Some(python) = std::env::var_os("SCOUT_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = repo_path("target/mcp-venv/bin/python");
    assert!(
        venv.exists(),
        "the external-client test needs the MCP Python SDK in {}, which is missing: run \
         `make test-deps` (it creates the venv from tests/external/requirements.txt), or set \
         SCOUT_TEST_PYTHON to a python that can `import mcp`",
        venv.display()
    );
    venv
}

/// Runs the SDK client script against `target`; one JSON report per protocol era.
fn run_sdk_client(fleet: &Fleet, target: &str) -> Vec<Value> {
    let python = python_with_sdk();
    let mut command = Command::new(&python);
    command
        .arg(repo_path(CLIENT_SCRIPT))
        .arg(env!("CARGO_BIN_EXE_scout-mcp"))
        .arg(target);
    // The script forwards SCOUT_* and SSH_AUTH_SOCK to the server: only the fleet's may count.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SCOUT_") {
            command.env_remove(&key);
        }
    }
    command.env_remove("SSH_AUTH_SOCK").envs(fleet.env());
    // Two sessions, each starting the server and making five requests over loopback.
    let out = run_bounded(&mut command, PATIENCE * 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(SDK_MISSING) {
        panic!(
            "{} cannot import the MCP Python SDK: run `make test-deps`.\n{stderr}",
            python.display()
        );
    }
    assert!(
        out.status.success(),
        "the MCP Python SDK client ({} {CLIENT_SCRIPT} ... {target}) exited {}; its stderr, \
         scout-mcp's log included:\n{}",
        python.display(),
        out.status,
        support::tail(&stderr, 8000)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("the SDK client printed a line that is not JSON ({e}): {line}")
            })
        })
        .collect()
}

fn check_tools(report: &Value) {
    let tools = report["tools"].as_array().expect("tools array");
    let scout = tools
        .iter()
        .find(|t| t["name"] == "scout")
        .unwrap_or_else(|| panic!("no `scout` tool among {tools:?}"));
    let schema = &scout["input_schema"];
    assert_eq!(schema["type"], "object", "{schema}");
    for parameter in ["target", "query", "targets", "tree", "find", "diff", "beam"] {
        assert!(
            schema["properties"][parameter].is_object(),
            "the scout tool's input schema has no `{parameter}`: {schema}"
        );
    }
    assert_eq!(scout["output_schema"]["type"], "object", "{scout}");
}

fn check_session(report: &Value, era: &str, fleet: &Fleet, contents: &str) {
    assert_eq!(report["era"], era, "{report}");
    assert_eq!(report["server_name"], "scout-mcp", "{report}");
    check_tools(report);
    let resources = report["resources"].as_array().expect("resources array");
    assert!(resources.contains(&Value::from("hosts://list")), "{report}");

    assert_eq!(report["read"]["is_error"], false, "{report}");
    assert!(
        report["read"]["text"]
            .as_str()
            .is_some_and(|t| t.contains(contents)),
        "reading the file through call_tool did not return its text: {report}"
    );

    let hosts = &report["hosts_list"][0];
    assert_eq!(hosts["uri"], "hosts://list", "{report}");
    assert!(
        hosts["text"]
            .as_str()
            .is_some_and(|t| t.contains(&fleet.alias(0))),
        "hosts://list does not name the fleet's host {}: {report}",
        fleet.alias(0)
    );

    let command = &report["command"];
    assert_eq!(command["is_error"], false, "{report}");
    let structured = &command["structured"];
    assert_eq!(structured["exit_code"], 0, "{report}");
    assert_eq!(
        structured["stdout"].as_str().map(str::trim),
        Some(contents.len().to_string().as_str()),
        "`wc -c` of the file, as structuredContent.stdout: {report}"
    );
}

#[test]
fn the_official_python_sdk_lists_tools_reads_a_file_and_runs_a_command_in_both_eras() {
    let fleet = Fleet::start(1);
    let contents = "written by the external-client test\nsecond line\n";
    let path = fleet.write_file("external/notes.txt", contents.as_bytes());
    let target = format!("{}:{}", fleet.alias(0), path.display());

    let reports = run_sdk_client(&fleet, &target);
    assert_eq!(reports.len(), 2, "one report per era: {reports:?}");
    check_session(&reports[0], "handshake", &fleet, contents);
    assert_eq!(reports[0]["protocol_version"], "2025-11-25");
    check_session(&reports[1], "modern", &fleet, contents);
    assert_eq!(reports[1]["protocol_version"], "2026-07-28");
}

/// The ```json blocks of a markdown text.
fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim_start() == "```json" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// Whether `variable` is named in the first cell of a table row (the configuration table).
fn in_settings_table(markdown: &str, variable: &str) -> bool {
    markdown.lines().any(|line| {
        line.starts_with('|')
            && line.split('|').nth(1).is_some_and(|cell| {
                cell.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|word| word == variable)
            })
    })
}

#[test]
fn every_json_snippet_in_the_readme_parses_and_names_only_real_settings() {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README.md is readable");
    let blocks = json_blocks(&readme);
    assert!(
        blocks.len() >= 3,
        "expected client config examples in README.md"
    );
    for block in &blocks {
        let config: Value = serde_json::from_str(block).unwrap_or_else(|e| {
            panic!("a ```json block in README.md does not parse ({e}):\n{block}")
        });
        let servers = config["mcpServers"]
            .as_object()
            .or_else(|| config["servers"].as_object())
            .unwrap_or_else(|| panic!("no mcpServers (or servers) object in:\n{block}"));
        for (name, server) in servers {
            let env = server["env"].as_object().into_iter().flatten();
            for (variable, value) in env {
                assert!(value.is_string(), "{name}: env {variable} must be a string");
                if variable.starts_with("SCOUT_") {
                    assert!(
                        in_settings_table(&readme, variable),
                        "{name}: {variable} is not in the README's configuration table"
                    );
                }
            }
        }
    }
}

#[test]
fn json_blocks_are_found_between_fences() {
    let text = "intro\n```json\n{\"a\": 1}\n```\n```sh\nnot json\n```\n```json\n[]\n```\n";
    assert_eq!(json_blocks(text), vec!["{\"a\": 1}\n", "[]\n"]);
}

#[test]
fn settings_are_found_in_the_first_cell_of_a_table_row() {
    let table = "| SCOUT_A / SCOUT_B | x |\n| SCOUT_C (or RUST_LOG) | SCOUT_D |\ntext SCOUT_E\n";
    for present in ["SCOUT_A", "SCOUT_B", "SCOUT_C"] {
        assert!(in_settings_table(table, present), "{present}");
    }
    for absent in ["SCOUT_D", "SCOUT_E", "SCOUT_"] {
        assert!(!in_settings_table(table, absent), "{absent}");
    }
}
