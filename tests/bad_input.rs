//! Hostile and broken input, every kind, in one table: each gets a
//! precise error, the server keeps serving, and nothing is written where
//! it should not be.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{Fleet, Scout};

/// What a line must produce.
enum Expect {
    /// A JSON-RPC error with this code.
    Code(i64),
    /// A tool result with isError and this text in it.
    ToolError(&'static str),
    /// A successful tool result containing this text.
    ToolOk(&'static str),
    /// No answer at all (a notification).
    Nothing,
}

fn call(args: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "scout", "arguments": args}}).to_string()
}

#[test]
fn every_kind_of_bad_input_gets_a_precise_answer_and_the_server_keeps_serving() {
    let fleet = Fleet::start(1);
    let host = fleet.alias(0);
    let dir = fleet.mkdir("bad");
    let loop_path = dir.join("loop");
    std::os::unix::fs::symlink(&loop_path, &loop_path).expect("self-loop symlink");
    let odd =
        dir.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"caf\xe9.txt"));
    std::fs::write(&odd, b"latin-1 name\n").expect("odd name");
    let sub = fleet.mkdir("bad/sub");
    let huge = "x".repeat(10 << 20);
    let cases: Vec<(&str, String, Expect)> = vec![
        ("not JSON", "{{{".into(), Expect::Code(-32700)),
        (
            "JSON but not an object",
            "\"hello\"".into(),
            Expect::Code(-32600),
        ),
        (
            "a batch",
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]".into(),
            Expect::Code(-32600),
        ),
        (
            "wrong jsonrpc",
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.into(),
            Expect::Code(-32600),
        ),
        (
            "no id, unknown method",
            r#"{"jsonrpc":"2.0","method":"no/such"}"#.into(),
            Expect::Nothing,
        ),
        (
            "a null id",
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#.into(),
            Expect::Code(-32600),
        ),
        (
            "NUL in the target",
            call(json!({"target": format!("{host}:/etc/\u{0}passwd")})),
            Expect::ToolError("NUL byte"),
        ),
        (
            "NUL in the query",
            call(json!({"target": format!("{host}:/"), "query": "echo a\u{0}b"})),
            Expect::ToolError("NUL byte"),
        ),
        (
            "a 10 MB target",
            call(json!({"target": format!("{host}:/{huge}")})),
            Expect::ToolError("the limit is 4096"),
        ),
        (
            "a 10 MB query",
            call(json!({"target": format!("{host}:/"), "query": huge.clone()})),
            Expect::ToolError("the limit is 131072"),
        ),
        (
            "a target without a colon",
            call(json!({"target": "justahost"})),
            Expect::ToolError("Expected 'host:/path'"),
        ),
        (
            "an empty host",
            call(json!({"target": ":/etc"})),
            Expect::ToolError("host cannot be empty"),
        ),
        (
            "an empty path",
            call(json!({"target": format!("{host}:")})),
            Expect::ToolError("path cannot be empty"),
        ),
        (
            "dot-dot is just a path",
            call(json!({"target": format!("{host}:{}/sub/../sub", dir.display())})),
            Expect::ToolOk("(0 entries)"),
        ),
        (
            "a symlink loop",
            call(json!({"target": format!("{host}:{}", loop_path.display())})),
            Expect::ToolError("loop"),
        ),
        (
            "a directory where a file is expected",
            call(json!({"target": format!("{host}:{}", sub.display()), "diff_content": "x"})),
            Expect::ToolError("is a directory"),
        ),
        (
            "a non-UTF-8 file name is listed",
            call(json!({"target": format!("{host}:{}", dir.display())})),
            Expect::ToolOk("caf\u{fffd}.txt"),
        ),
        (
            "a number as the target",
            call(json!({"target": 7})),
            Expect::Code(-32602),
        ),
        (
            "depth out of range",
            call(json!({"target": format!("{host}:/"), "tree": true, "depth": 0})),
            Expect::Code(-32602),
        ),
    ];
    let mut scout = Scout::spawn(&fleet);
    for (what, line, expect) in cases {
        scout.send_line(&line);
        let wait = match expect {
            Expect::Nothing => Duration::from_millis(500),
            _ => Duration::from_secs(30),
        };
        let answer = scout.recv(wait);
        match (expect, answer) {
            (Expect::Nothing, None) => {}
            (Expect::Nothing, Some(a)) => panic!("{what}: expected no answer, got {a}"),
            (_, None) => panic!("{what}: no answer"),
            (Expect::Code(code), Some(a)) => {
                assert_eq!(a["error"]["code"], json!(code), "{what}: {a}")
            }
            (Expect::ToolError(text), Some(a)) => {
                assert_eq!(a["result"]["isError"], json!(true), "{what}: {a}");
                let shown = a["result"]["content"][0]["text"].as_str().unwrap_or("");
                assert!(shown.contains(text), "{what}: {shown}");
                assert!(
                    shown.len() < 2000,
                    "{what}: the error repeats the input ({} bytes)",
                    shown.len()
                );
            }
            (Expect::ToolOk(text), Some(a)) => {
                assert_eq!(a["result"]["isError"], json!(false), "{what}: {a}");
                let shown = a["result"]["content"][0]["text"].as_str().unwrap_or("");
                assert!(shown.contains(text), "{what}: {shown}");
            }
        }
    }
    assert_eq!(scout.request("ping", json!({}))["result"], json!({}));
    let remaining: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(remaining.len(), 3, "nothing new was written: {remaining:?}");
}
