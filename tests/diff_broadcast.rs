//! diff, diff_content, broadcast and the restricted command modes against
//! a real multi-host fleet.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{closed_port, Fleet, Scout, SilentListener};

#[test]
fn diff_of_two_hosts_is_a_unified_diff_naming_both() {
    let fleet = Fleet::start(2);
    let a = fleet.write_file("cmp/a.conf", b"port 80\nuser www\nworkers 4\nlog on\n");
    let b = fleet.write_file("cmp/b.conf", b"port 80\nuser www\nworkers 8\nlog on\n");
    let mut scout = Scout::spawn(&fleet);
    let (h0, h1) = (fleet.alias(0), fleet.alias(1));
    let r = scout.call(json!({
        "target": format!("{h0}:{}", a.display()),
        "diff": format!("{h1}:{}", b.display())
    }));
    assert!(!r.is_error, "{}", r.text);
    let expected = format!(
        "--- {h0}:{}\n+++ {h1}:{}\n@@ -1,4 +1,4 @@\n port 80\n user www\n-workers 4\n+workers 8\n log on\n",
        a.display(),
        b.display()
    );
    assert_eq!(r.text, expected);
    let same = scout.call(json!({
        "target": format!("{h0}:{}", a.display()),
        "diff": format!("{h1}:{}", a.display())
    }));
    assert_eq!(
        same.text,
        format!(
            "Files are identical:\n  {h0}:{}\n  {h1}:{}",
            a.display(),
            a.display()
        )
    );
}

#[test]
fn diff_against_a_missing_file_or_unknown_host_says_which() {
    let fleet = Fleet::start(1);
    let a = fleet.write_file("cmp/a.txt", b"x\n");
    let mut scout = Scout::spawn(&fleet);
    let h0 = fleet.alias(0);
    let r = scout.call(
        json!({"target": format!("{h0}:{}", a.display()), "diff": format!("{h0}:/no/such/file")}),
    );
    assert!(r.is_error);
    assert!(
        r.text
            .contains(&format!("Path not found: {h0}:/no/such/file")),
        "{}",
        r.text
    );
    let r =
        scout.call(json!({"target": format!("{h0}:{}", a.display()), "diff": "ghost:/etc/hosts"}));
    assert!(
        r.is_error && r.text.contains("Unknown host 'ghost'"),
        "{}",
        r.text
    );
    let dir = a.parent().unwrap().display().to_string();
    let r = scout
        .call(json!({"target": format!("{h0}:{dir}"), "diff": format!("{h0}:{}", a.display())}));
    assert!(
        r.is_error && r.text.contains("is a directory"),
        "{}",
        r.text
    );
}

#[test]
fn diff_content_compares_against_given_text() {
    let fleet = Fleet::start(1);
    let f = fleet.write_file("expect/hosts", b"127.0.0.1 localhost\n");
    let mut scout = Scout::spawn(&fleet);
    let target = format!("{}:{}", fleet.alias(0), f.display());
    let same = scout.call(json!({"target": target, "diff_content": "127.0.0.1 localhost\n"}));
    assert_eq!(
        same.text,
        format!("File matches expected content: {}", f.display())
    );
    let other = scout.call(json!({"target": target, "diff_content": "127.0.0.1 example\n"}));
    assert!(!other.is_error);
    assert!(
        other
            .text
            .contains("-127.0.0.1 localhost\n+127.0.0.1 example"),
        "{}",
        other.text
    );
    assert!(
        other.text.contains("+++ expected content"),
        "{}",
        other.text
    );
}

#[test]
fn a_truncated_side_is_reported_in_the_diff() {
    let fleet = Fleet::start(1);
    let f = fleet.write_file("big/a.txt", &b"line\n".repeat(1000));
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_MAX_FILE_SIZE", "100")]);
    let r = scout.call(
        json!({"target": format!("{}:{}", fleet.alias(0), f.display()), "diff_content": "line\n"}),
    );
    assert!(r.text.contains("was truncated"), "{}", r.text);
}

#[test]
fn broadcast_reads_every_target_and_counts_successes() {
    let fleet = Fleet::start(3);
    let f = fleet.write_file("bc/id.txt", b"same file\n");
    let mut scout = Scout::spawn(&fleet);
    let mut targets: Vec<String> = (0..3)
        .map(|i| format!("{}:{}", fleet.alias(i), f.display()))
        .collect();
    targets.push("ghost:/etc/hostname".into());
    let r = scout.call(json!({"targets": targets}));
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.text.matches("same file").count(), 3, "{}", r.text);
    assert!(
        r.text.contains("═══ ghost:/etc/hostname [FAILED]"),
        "{}",
        r.text
    );
    assert!(r.text.contains("Unknown host 'ghost'"), "{}", r.text);
    assert!(
        r.text.ends_with("─── 3/4 hosts succeeded ───"),
        "{}",
        r.text
    );
    let s = r.structured.expect("structured");
    assert_eq!(s["total"], json!(4));
    assert_eq!(s["results"][3]["success"], json!(false));
}

#[test]
fn broadcast_commands_show_output_and_exit_codes_of_failed_hosts() {
    let fleet = Fleet::start(2);
    let mut scout = Scout::spawn(&fleet);
    let targets: Vec<String> = (0..2).map(|i| format!("{}:/", fleet.alias(i))).collect();
    let r = scout.call(json!({"targets": targets, "query": "echo from-$(hostname -I 2>/dev/null | wc -c); test -e /nonexistent"}));
    assert!(r.is_error, "every host failed (exit 1): {}", r.text);
    assert_eq!(r.text.matches("[exit code: 1]").count(), 2, "{}", r.text);
    assert!(r.text.contains("─── 0/2 hosts succeeded ───"), "{}", r.text);
    let s = r.structured.expect("structured");
    assert_eq!(s["results"][0]["exit_code"], json!(1));
}

#[test]
fn one_dead_host_costs_only_its_own_timeout_in_a_broadcast() {
    let fleet = Fleet::start(3);
    let silent = SilentListener::start();
    let config = fleet.ssh_config_with(&[("silent", silent.addr()), ("closed", closed_port())]);
    let config = config.display().to_string();
    let mut scout = Scout::spawn_with(
        &fleet,
        &[
            ("SCOUT_SSH_CONFIG", config.as_str()),
            ("SCOUT_CONNECT_TIMEOUT", "2"),
        ],
    );
    let mut targets: Vec<String> = (0..3).map(|i| format!("{}:/", fleet.alias(i))).collect();
    targets.push("silent:/".into());
    targets.push("closed:/".into());
    let started = Instant::now();
    let r = scout.call(json!({"targets": targets, "query": "echo up"}));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.text.matches("\nup\n").count(), 3, "{}", r.text);
    assert!(r.text.contains("─── 3/5 hosts succeeded ───"), "{}", r.text);
    assert!(r.text.contains("connection refused"), "{}", r.text);
}

#[test]
fn a_malformed_broadcast_target_fails_the_call_up_front() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let r = scout.call(json!({"targets": [format!("{}:/", fleet.alias(0)), "nocolon"]}));
    assert!(r.is_error);
    assert!(
        r.text.contains("Error parsing target 'nocolon'"),
        "{}",
        r.text
    );
}

#[test]
fn restricted_mode_runs_only_listed_programs_as_plain_words() {
    let fleet = Fleet::start(1);
    let dir = fleet.mkdir("restricted");
    fleet.write_file("restricted/app.log", b"ok\nERROR one\nERROR two\n");
    let marker = dir.join("pwned");
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_COMMAND_ALLOWLIST", "grep,tail,find")]);
    let target = format!("{}:{}", fleet.alias(0), dir.display());
    let ok = scout.call(json!({"target": target, "query": "grep -c ERROR app.log"}));
    assert_eq!(ok.text, "2");
    for (query, why) in [
        ("tail app.log | sh", "shell operator"),
        ("touch pwned", "not in SCOUT_COMMAND_ALLOWLIST"),
        ("find . -exec touch pwned ;", "shell operator"),
        ("find . -name x -exec touch pwned +", "runs programs"),
        ("grep x $(touch pwned)", "shell operator"),
    ] {
        let r = scout.call(json!({"target": target, "query": query}));
        assert!(r.is_error, "{query}: {}", r.text);
        assert!(r.text.contains(why), "{query}: {}", r.text);
    }
    let quoted = scout.call(json!({"target": target, "query": "grep -c '$(touch pwned)' app.log"}));
    assert_eq!(quoted.text, "0\n[exit code: 1]");
    assert!(!marker.exists(), "restricted mode let a command through");
}

#[test]
fn read_only_mode_refuses_uploads() {
    let fleet = Fleet::start(1);
    let local = fleet.write_file("ro/local.txt", b"data\n");
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_READ_ONLY", "true")]);
    let dest = fleet.data_dir().join("ro/uploaded.txt");
    let r = scout.call(json!({
        "target": format!("{}:{}", fleet.alias(0), dest.display()),
        "beam": local.display().to_string()
    }));
    assert!(
        r.is_error && r.text.contains("SCOUT_READ_ONLY"),
        "{}",
        r.text
    );
    assert!(!dest.exists());
    let r = scout.call(json!({
        "beam_source": format!("{}:{}", fleet.alias(0), local.display()),
        "beam_target": format!("{}:{}", fleet.alias(0), dest.display())
    }));
    assert!(
        r.is_error && r.text.contains("SCOUT_READ_ONLY"),
        "{}",
        r.text
    );
    assert!(!dest.exists());
}
