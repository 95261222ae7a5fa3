//! Every scout mode of the foundation against a real sshd: hosts, read,
//! list, command, resources — and the ways each of them can be misused.

mod support;

use serde_json::json;
use support::{Fleet, Scout};

#[test]
fn hosts_lists_every_alias_with_its_address_and_an_online_mark() {
    let fleet = Fleet::start(2);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let result = scout.call(json!({"target": "hosts"}));
    assert!(!result.is_error, "{}", result.text);
    assert!(
        result.text.starts_with("Available hosts:"),
        "{}",
        result.text
    );
    for i in 0..2 {
        let addr = fleet.addr(i);
        let line = format!(
            "[✓] {} (online) -> {}@{}:{}",
            fleet.alias(i),
            fleet.remote_user(),
            addr.ip(),
            addr.port()
        );
        assert!(
            result.text.contains(&line),
            "missing {line:?} in\n{}",
            result.text
        );
    }
}

#[test]
fn a_file_is_read_over_sftp() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("notes/hello.txt", b"hello from the fleet\nline two\n");
    let mut scout = Scout::spawn(&fleet);
    let result = scout.call(json!({"target": format!("{}:{}", fleet.alias(0), file.display())}));
    assert!(!result.is_error, "{}", result.text);
    assert_eq!(result.text, "hello from the fleet\nline two\n");
}

#[test]
fn a_large_file_is_cut_at_the_limit_with_the_originals_note() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("big.txt", &vec![b'a'; 5000]);
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_MAX_FILE_SIZE", "1000")]);
    let result = scout.call(json!({"target": format!("{}:{}", fleet.alias(0), file.display())}));
    assert!(!result.is_error, "{}", result.text);
    let body = result
        .text
        .strip_suffix("\n\n[truncated at 1000 bytes]")
        .unwrap_or_else(|| {
            panic!(
                "no truncation note in {:?}",
                support::tail(&result.text, 200)
            )
        });
    assert_eq!(body, "a".repeat(1000));
}

#[test]
fn a_file_of_exactly_the_limit_is_whole_and_files_reporting_size_zero_are_read_to_the_end() {
    let fleet = Fleet::start(1);
    let exact = fleet.write_file("exact.txt", &vec![b'b'; 1000]);
    let empty = fleet.write_file("empty.txt", b"");
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_MAX_FILE_SIZE", "1000")]);
    let target = |p: &std::path::Path| format!("{}:{}", fleet.alias(0), p.display());
    let result = scout.call(json!({"target": target(&exact)}));
    assert_eq!(result.text, "b".repeat(1000), "no truncation note expected");
    let result = scout.call(json!({"target": target(&empty)}));
    assert!(!result.is_error, "{}", result.text);
    assert_eq!(result.text, "");
    // /proc files report size 0 but have contents: read until the end.
    let result = scout.call(json!({"target": format!("{}:/proc/self/status", fleet.alias(0))}));
    assert!(!result.is_error, "{}", result.text);
    assert!(result.text.contains("Name:"), "{}", result.text);
}

#[test]
fn a_file_read_is_limited_by_the_file_size_limit_not_the_output_cap() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("medium.txt", &vec![b'm'; 5000]);
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_MAX_OUTPUT_SIZE", "1024")]);
    let result = scout.call(json!({"target": format!("{}:{}", fleet.alias(0), file.display())}));
    assert_eq!(result.text, "m".repeat(5000));
    // A command's output still obeys the output cap.
    let result = scout.call(json!({
        "target": format!("{}:/", fleet.alias(0)),
        "query": format!("cat {}", file.display())
    }));
    assert!(result.text.contains("bytes omitted"), "{}", result.text);
}

#[test]
fn binary_files_are_described_not_dumped_and_bad_utf8_is_shown_lossily() {
    let fleet = Fleet::start(1);
    let bin = fleet.write_file("blob.bin", &[0x7f, b'E', b'L', b'F', 0, 0, 1, 2, 3]);
    let latin1 = fleet.write_file("latin1.txt", b"caf\xe9 au lait\n");
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let result = scout.call(json!({"target": format!("{host}:{}", bin.display())}));
    assert!(!result.is_error, "{}", result.text);
    assert!(result.text.contains("binary file"), "{}", result.text);
    assert!(result.text.contains("9 bytes"), "{}", result.text);
    let result = scout.call(json!({"target": format!("{host}:{}", latin1.display())}));
    assert_eq!(result.text, "caf\u{fffd} au lait\n");
}

#[test]
fn a_directory_is_listed_like_ls() {
    let fleet = Fleet::start(1);
    fleet.write_file("dir/a.txt", b"12345");
    fleet.mkdir("dir/sub");
    let dir = fleet.data_dir().join("dir");
    std::os::unix::fs::symlink("a.txt", dir.join("link")).expect("symlink");
    let mut scout = Scout::spawn(&fleet);
    let result = scout.call(json!({"target": format!("{}:{}", fleet.alias(0), dir.display())}));
    assert!(!result.is_error, "{}", result.text);
    let lines: Vec<&str> = result.text.lines().collect();
    assert!(lines[0].contains("(3 entries)"), "{}", result.text);
    assert!(
        lines[1].contains(" 5 ") && lines[1].ends_with("a.txt"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with('l') && lines[2].ends_with("link -> a.txt"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with('d') && lines[3].ends_with("sub/"),
        "{}",
        lines[3]
    );
}

#[test]
fn a_missing_path_says_so_with_host_and_path() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let result = scout.call(json!({"target": format!("{host}:/definitely/not/here")}));
    assert!(result.is_error);
    assert_eq!(
        result.text,
        format!("Error: Path not found: {host}:/definitely/not/here")
    );
}

#[test]
fn permission_denied_names_host_path_and_cause() {
    let fleet = Fleet::start(1);
    if fleet.remote_user() == "root" {
        return; // root reads everything; nothing to deny
    }
    let secret = fleet.write_file("secret.txt", b"s3cret");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000))
        .expect("chmod");
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let result = scout.call(json!({"target": format!("{host}:{}", secret.display())}));
    assert!(result.is_error);
    assert!(
        result.text.contains(&host) && result.text.contains("secret.txt"),
        "{}",
        result.text
    );
    assert!(result.text.contains("permission denied"), "{}", result.text);
}

#[test]
fn a_command_reports_stdout_stderr_and_exit_code_in_text_and_structure() {
    let fleet = Fleet::start(1);
    let dir = fleet.mkdir("work");
    let mut scout = Scout::spawn(&fleet);
    let result = scout.call(json!({
        "target": format!("{}:{}", fleet.alias(0), dir.display()),
        "query": "pwd; echo oops >&2; exit 3"
    }));
    assert!(
        !result.is_error,
        "a failing command is a result, not a tool error"
    );
    let dir_text = dir.display().to_string();
    assert_eq!(
        result.text,
        format!("{dir_text}\n[stderr]\noops\n[exit code: 3]")
    );
    let s = result.structured.expect("structuredContent");
    assert_eq!(s["stdout"], json!(format!("{dir_text}\n")));
    assert_eq!(s["stderr"], json!("oops\n"));
    assert_eq!(s["exit_code"], json!(3));
    assert_eq!(s["truncated"], json!(false));
    assert_eq!(s["timed_out"], json!(false));
    assert!(s["duration_ms"].as_u64().is_some());
}

#[test]
fn pipelines_run_through_the_remote_shell_and_tilde_is_expanded_remotely() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let result = scout.call(
        json!({"target": format!("{host}:~"), "query": "printf 'a\\nb\\nc\\n' | grep -c . ; pwd"}),
    );
    assert!(!result.is_error, "{}", result.text);
    let mut lines = result.text.lines();
    assert_eq!(lines.next(), Some("3"));
    let home = lines.next().unwrap_or_default();
    assert!(
        home.starts_with('/') && !home.contains('~'),
        "{}",
        result.text
    );
    let result = scout.call(json!({"target": format!("{host}:/"), "query": "true"}));
    assert_eq!(result.text, "(no output)");
}

#[test]
fn paths_are_data_never_shell_text() {
    let fleet = Fleet::start(1);
    let marker = format!("pwned-{}", std::process::id());
    let evil_file = fleet.write_file(&format!("$(touch {marker})"), b"just data\n");
    let evil_dir = fleet.mkdir(&format!("x'; touch {marker}; '"));
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let home = scout
        .call(json!({"target": format!("{host}:~"), "query": "pwd"}))
        .text;
    let read = scout.call(json!({"target": format!("{host}:{}", evil_file.display())}));
    assert_eq!(read.text, "just data\n");
    let listed = scout.call(json!({"target": format!("{host}:{}", evil_dir.display())}));
    assert!(!listed.is_error, "{}", listed.text);
    let ran =
        scout.call(json!({"target": format!("{host}:{}", evil_dir.display()), "query": "pwd"}));
    assert_eq!(ran.text, evil_dir.display().to_string());
    for dir in [
        fleet.data_dir(),
        evil_dir.clone(),
        std::path::PathBuf::from(home.trim()),
    ] {
        assert!(
            !dir.join(&marker).exists(),
            "a path was run as shell text (found in {dir:?})"
        );
    }
}

#[test]
fn a_command_past_its_timeout_returns_what_it_printed_and_says_it_timed_out() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_COMMAND_TIMEOUT", "1")]);
    let host = fleet.alias(0);
    let started = std::time::Instant::now();
    let result =
        scout.call(json!({"target": format!("{host}:/"), "query": "echo started; sleep 30"}));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(result.is_error);
    assert!(result.text.contains("started"), "{}", result.text);
    assert!(result.text.contains("timed out"), "{}", result.text);
    assert_eq!(
        result.structured.expect("structured")["timed_out"],
        json!(true)
    );
    // The session that was cut off is not reused: the next call works.
    let next = scout.call(json!({"target": format!("{host}:/"), "query": "echo fine"}));
    assert_eq!(next.text, "fine");
}

#[test]
fn megabytes_on_both_streams_neither_deadlock_nor_flood_the_client() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_MAX_OUTPUT_SIZE", "65536")]);
    let result = scout.call(json!({
        "target": format!("{}:/", fleet.alias(0)),
        "query": "head -c 3000000 /dev/zero | tr '\\0' o; head -c 3000000 /dev/zero | tr '\\0' e >&2; echo; echo END"
    }));
    assert!(
        !result.is_error,
        "{}",
        &result.text[..result.text.len().min(300)]
    );
    assert!(
        result.text.len() < 70_000,
        "output is bounded: {}",
        result.text.len()
    );
    assert!(result.text.contains("bytes omitted"));
    assert!(result.text.contains("END"), "the tail of stdout is kept");
    let s = result.structured.expect("structured");
    assert_eq!(s["truncated"], json!(true));
    assert_eq!(s["exit_code"], json!(0));
}

#[test]
fn an_unknown_host_lists_the_available_ones() {
    let fleet = Fleet::start(2);
    let mut scout = Scout::spawn(&fleet);
    let result = scout.call(json!({"target": "nosuchhost:/etc"}));
    assert!(result.is_error);
    let expected = format!(
        "Error: Unknown host 'nosuchhost'. Available: {}, {}",
        fleet.alias(0),
        fleet.alias(1)
    );
    assert_eq!(result.text, expected);
}

#[test]
fn malformed_targets_get_the_originals_messages() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    for (target, expect) in [
        ("nocolon", "Expected 'host:/path' or 'hosts'"),
        (":/etc", "host cannot be empty"),
        ("host0:", "path cannot be empty"),
    ] {
        let result = scout.call(json!({"target": target}));
        assert!(result.is_error, "{target}");
        assert!(result.text.contains(expect), "{target}: {}", result.text);
    }
}

#[test]
fn resources_map_onto_the_same_operations() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("res/readme.txt", b"resource body\n");
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let list = scout.request("resources/list", json!({}));
    assert_eq!(list["result"]["resources"][0]["uri"], json!("hosts://list"));
    let templates = scout.request("resources/templates/list", json!({}));
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        json!("scout://{host}/{path}")
    );
    let host = fleet.alias(0);
    let uri = format!("scout://{host}{}", file.display());
    let read = scout.request("resources/read", json!({"uri": uri}));
    assert_eq!(
        read["result"]["contents"][0]["text"],
        json!("resource body\n"),
        "{read}"
    );
    assert_eq!(read["result"]["contents"][0]["uri"], json!(uri));
    let dir_uri = format!("scout://{host}{}", file.parent().unwrap().display());
    let dir = scout.request("resources/read", json!({"uri": dir_uri}));
    let text = dir["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("readme.txt"), "{dir}");
    let hosts = scout.request("resources/read", json!({"uri": "hosts://list"}));
    assert!(hosts["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .contains(&host));
    let missing = scout.request(
        "resources/read",
        json!({"uri": format!("scout://{host}/no/such/file")}),
    );
    assert_eq!(missing["error"]["code"], json!(-32002), "{missing}");
    let unknown = scout.request("resources/read", json!({"uri": "scout://ghost/etc/hosts"}));
    assert!(unknown["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("Unknown host 'ghost'"));
}

#[test]
fn tilde_paths_are_read_and_listed_from_the_remote_home() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let name = format!("scout-tilde-{}.txt", std::process::id());
    let made = scout.call(
        json!({"target": format!("{host}:~"), "query": format!("printf 'at home\\n' > {name}")}),
    );
    assert!(!made.is_error, "{}", made.text);
    let read = scout.call(json!({"target": format!("{host}:~/{name}")}));
    assert_eq!(read.text, "at home\n");
    let listed = scout.call(json!({"target": format!("{host}:~")}));
    assert!(listed.text.contains(&name), "{}", listed.text);
    scout.call(json!({"target": format!("{host}:~"), "query": format!("rm -f {name}")}));
}
