//! `beam` against a real sshd: uploads, downloads and remote-to-remote
//! transfers over SFTP — content, mode, hash, progress, constant memory —
//! and every way to misuse them, each failure leaving nothing behind.

mod support;

use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Fleet, Scout, TempDir, ToolResult};

fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash from sha256sum")
        .to_string()
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Bytes that are not all alike, so that a misplaced chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// No temporary (`.*.scout-*`) or other unexpected file in `dir`.
fn assert_clean(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "unexpected files in {}", dir.display());
}

fn ok(result: &ToolResult) -> &Value {
    assert!(!result.is_error, "{}", result.text);
    result.structured.as_ref().expect("structuredContent")
}

fn err(result: &ToolResult, needles: &[&str]) {
    assert!(result.is_error, "expected an error, got {}", result.text);
    for needle in needles {
        assert!(
            result.text.contains(needle),
            "{needle:?} missing from {:?}",
            result.text
        );
    }
}

fn target(fleet: &Fleet, alias: usize, path: &Path) -> String {
    format!("{}:{}", fleet.alias(alias), path.display())
}

#[test]
fn an_upload_creates_the_file_with_its_mode_and_reports_its_hash() {
    let fleet = Fleet::start(1);
    let local = TempDir::new("beam-local");
    let src = local.path().join("a.txt");
    let data = pattern(12637);
    fs::write(&src, &data).expect("write");
    set_mode(&src, 0o640);
    let dir = fleet.mkdir("up");
    let dst = dir.join("a.txt");
    let mut scout = Scout::spawn(&fleet);
    let result =
        scout.call(json!({"target": target(&fleet, 0, &dst), "beam": src.display().to_string()}));
    let s = ok(&result);
    let expected = format!(
        "✓ Uploaded {} → {}\n  Size: 12.34 KB (12637 bytes) in ",
        src.display(),
        target(&fleet, 0, &dst)
    );
    assert!(result.text.starts_with(&expected), "{}", result.text);
    let hash = sha256sum(&src);
    assert!(
        result.text.ends_with(&format!("SHA-256: {hash}")),
        "{}",
        result.text
    );
    assert_eq!(s["direction"], "upload");
    assert_eq!(s["source"], src.display().to_string());
    assert_eq!(s["destination"], target(&fleet, 0, &dst));
    assert_eq!(s["bytes"], 12637);
    assert_eq!(s["sha256"], hash);
    assert!(s["duration_ms"].is_u64());
    assert_eq!(fs::read(&dst).expect("read"), data);
    assert_eq!(mode_of(&dst), 0o640);
    assert_clean(&dir, &["a.txt"]);
}

#[test]
fn an_upload_replaces_an_existing_file() {
    let fleet = Fleet::start(1);
    let local = TempDir::new("beam-local");
    let src = local.path().join("new.conf");
    fs::write(&src, b"new contents\n").expect("write");
    set_mode(&src, 0o600);
    let dst = fleet.write_file("up/app.conf", b"old contents that were longer\n");
    let dir = dst.parent().expect("parent").to_path_buf();
    let mut scout = Scout::spawn(&fleet);
    for round in 0..2 {
        let result = scout
            .call(json!({"target": target(&fleet, 0, &dst), "beam": src.display().to_string()}));
        ok(&result);
        assert_eq!(
            fs::read(&dst).expect("read"),
            b"new contents\n",
            "round {round}"
        );
        assert_eq!(mode_of(&dst), 0o600);
        assert_clean(&dir, &["app.conf"]);
    }
}

#[test]
fn a_download_writes_the_local_file_with_the_remote_mode() {
    let fleet = Fleet::start(1);
    let data = pattern(300_000);
    let remote = fleet.write_file("down/r.bin", &data);
    set_mode(&remote, 0o604);
    let local = TempDir::new("beam-local");
    let dst = local.path().join("copy.bin");
    let mut scout = Scout::spawn(&fleet);
    let result = scout
        .call(json!({"target": target(&fleet, 0, &remote), "beam": dst.display().to_string()}));
    let s = ok(&result);
    assert!(
        result.text.starts_with(&format!(
            "✓ Downloaded {} → {}",
            target(&fleet, 0, &remote),
            dst.display()
        )),
        "{}",
        result.text
    );
    assert_eq!(s["direction"], "download");
    assert_eq!(s["sha256"], sha256sum(&remote));
    assert_eq!(fs::read(&dst).expect("read"), data);
    assert_eq!(mode_of(&dst), 0o604);
    assert_clean(local.path(), &["copy.bin"]);
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn twenty_mebibytes_go_up_and_come_back_identical_in_constant_memory() {
    let fleet = Fleet::start(1);
    let local = TempDir::new("beam-local");
    let src = local.path().join("big.bin");
    let data = pattern(20 << 20);
    fs::write(&src, &data).expect("write");
    let dir = fleet.mkdir("big");
    let remote = dir.join("big.bin");
    let back = local.path().join("back.bin");
    let mut scout = Scout::spawn(&fleet);
    // Warm up: a session and an SFTP channel exist before the baseline.
    ok(&scout.call(json!({"target": target(&fleet, 0, &dir), "query": "true"})));
    let before = vm_rss_kib(scout.pid());
    let started = Instant::now();
    let up = scout
        .call(json!({"target": target(&fleet, 0, &remote), "beam": src.display().to_string()}));
    let up_hash = ok(&up)["sha256"].clone();
    let down = scout
        .call(json!({"target": target(&fleet, 0, &remote), "beam": back.display().to_string()}));
    let down_hash = ok(&down)["sha256"].clone();
    let after = vm_rss_kib(scout.pid());
    eprintln!(
        "20 MiB up and down in {:.2}s; VmRSS {before} KiB -> {after} KiB",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(up_hash, sha256sum(&src));
    assert_eq!(up_hash, down_hash);
    assert!(fs::read(&back).expect("read") == data, "the bytes differ");
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "VmRSS grew from {before} KiB to {after} KiB"
    );
    assert!(
        up.text.contains("Size: 20.00 MB (20971520 bytes)"),
        "{}",
        up.text
    );
    assert_clean(&dir, &["big.bin"]);
    assert_clean(local.path(), &["back.bin", "big.bin"]);
}

#[test]
fn remote_to_remote_between_two_hosts_and_on_one_host() {
    let fleet = Fleet::start(2);
    let data = pattern(700_000);
    let src = fleet.write_file("r2r/src.bin", &data);
    set_mode(&src, 0o640);
    let dir = src.parent().expect("parent").to_path_buf();
    let mut scout = Scout::spawn(&fleet);
    let hash = sha256sum(&src);
    for (to, name) in [(1, "other-host.bin"), (0, "same-host.bin")] {
        let dst = dir.join(name);
        let result = scout.call(json!({
            "beam_source": target(&fleet, 0, &src),
            "beam_target": target(&fleet, to, &dst),
        }));
        let s = ok(&result);
        assert!(
            result.text.starts_with(&format!(
                "✓ Transferred {} → {}",
                target(&fleet, 0, &src),
                target(&fleet, to, &dst)
            )),
            "{}",
            result.text
        );
        assert_eq!(s["direction"], "remote_to_remote");
        assert_eq!(s["sha256"], hash);
        assert_eq!(fs::read(&dst).expect("read"), data);
        assert_eq!(mode_of(&dst), 0o640);
    }
    // Over an existing file too.
    let result = scout.call(json!({
        "beam_source": target(&fleet, 1, &dir.join("same-host.bin")),
        "beam_target": target(&fleet, 0, &dir.join("other-host.bin")),
    }));
    ok(&result);
    assert_clean(&dir, &["other-host.bin", "same-host.bin", "src.bin"]);
}

#[test]
fn progress_is_reported_when_the_client_asks_for_it() {
    let fleet = Fleet::start(1);
    let local = TempDir::new("beam-local");
    let src = local.path().join("p.bin");
    let size = 8 << 20;
    fs::write(&src, pattern(size)).expect("write");
    let dir = fleet.mkdir("progress");
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let id = scout.start_request(
        "tools/call",
        json!({
            "name": "scout",
            "arguments": {"target": target(&fleet, 0, &dir.join("p.bin")), "beam": src.display().to_string()},
            "_meta": {"progressToken": "t1"},
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut progress = Vec::new();
    let response = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = scout.recv(left).expect("a message before the deadline");
        if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
            break message;
        }
        if message["method"] == "notifications/progress" {
            assert_eq!(message["params"]["progressToken"], "t1", "{message}");
            assert_eq!(message["params"]["total"], size as u64, "{message}");
            progress.push(message["params"]["progress"].as_u64().expect("progress"));
        }
    };
    let result = ToolResult::from_result(&response["result"]);
    ok(&result);
    assert!(progress.len() >= 2, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert_eq!(progress.last().copied(), Some(size as u64), "{progress:?}");
}

#[test]
fn directories_are_refused_as_source_and_as_destination() {
    let fleet = Fleet::start(1);
    let local = TempDir::new("beam-local");
    let local_dir = local.path().join("adir");
    fs::create_dir(&local_dir).expect("mkdir");
    let file = local.path().join("f.txt");
    fs::write(&file, b"x").expect("write");
    let remote_dir = fleet.mkdir("dirs/sub");
    let remote_file = fleet.write_file("dirs/r.txt", b"r");
    let dirs = fleet.data_dir().join("dirs");
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);

    // Local directory as the upload source.
    let r = scout.call(json!({"target": target(&fleet, 0, &dirs.join("x")), "beam": local_dir.display().to_string()}));
    err(
        &r,
        &["Cannot beam a directory", &local_dir.display().to_string()],
    );
    // Remote directory as the download source.
    let out = local.path().join("out.txt");
    let r = scout
        .call(json!({"target": target(&fleet, 0, &remote_dir), "beam": out.display().to_string()}));
    err(
        &r,
        &[
            "Cannot beam a directory",
            &host,
            &remote_dir.display().to_string(),
        ],
    );
    // Remote directory as the remote-to-remote source.
    let r = scout.call(json!({
        "beam_source": target(&fleet, 0, &remote_dir),
        "beam_target": target(&fleet, 0, &dirs.join("y")),
    }));
    err(
        &r,
        &[
            "Cannot beam a directory",
            &host,
            &remote_dir.display().to_string(),
        ],
    );
    // Remote directory as the destination (upload and remote-to-remote).
    let r = scout.call(
        json!({"target": target(&fleet, 0, &remote_dir), "beam": file.display().to_string()}),
    );
    err(
        &r,
        &["is a directory", &host, &remote_dir.display().to_string()],
    );
    let r = scout.call(json!({
        "beam_source": target(&fleet, 0, &remote_file),
        "beam_target": target(&fleet, 0, &remote_dir),
    }));
    err(
        &r,
        &["is a directory", &host, &remote_dir.display().to_string()],
    );
    assert_clean(&dirs, &["r.txt", "sub"]);
    assert_clean(&remote_dir, &[]);
    assert_clean(local.path(), &["adir", "f.txt"]);
}

#[test]
fn a_missing_parent_directory_is_refused_on_either_side() {
    let fleet = Fleet::start(1);
    let local = TempDir::new("beam-local");
    let file = local.path().join("f.txt");
    fs::write(&file, b"x").expect("write");
    let remote_file = fleet.write_file("p/r.txt", b"r");
    let missing = fleet.data_dir().join("p/nope");
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);

    let r = scout.call(json!({"target": target(&fleet, 0, &missing.join("f.txt")), "beam": file.display().to_string()}));
    err(
        &r,
        &["does not exist", &host, &missing.display().to_string()],
    );
    let r = scout.call(json!({
        "beam_source": target(&fleet, 0, &remote_file),
        "beam_target": target(&fleet, 0, &missing.join("g.txt")),
    }));
    err(
        &r,
        &["does not exist", &host, &missing.display().to_string()],
    );
    let local_missing = local.path().join("nope");
    let r = scout.call(json!({
        "target": target(&fleet, 0, &remote_file),
        "beam": local_missing.join("r.txt").display().to_string(),
    }));
    err(
        &r,
        &["does not exist", &local_missing.display().to_string()],
    );
    let r = scout.call(json!({
        "target": target(&fleet, 0, &remote_file),
        "beam": format!("{}/", local_missing.display()),
    }));
    err(
        &r,
        &["names a directory", &local_missing.display().to_string()],
    );
    assert_clean(&fleet.data_dir().join("p"), &["r.txt"]);
    assert_clean(local.path(), &["f.txt"]);
}

#[test]
fn an_unwritable_destination_is_refused_and_left_untouched() {
    let fleet = Fleet::start(1);
    if fleet.remote_user() == "root" {
        return; // root writes everywhere; nothing to refuse
    }
    let local = TempDir::new("beam-local");
    let file = local.path().join("f.txt");
    fs::write(&file, b"x").expect("write");
    let src = fleet.write_file("w/src.txt", b"s");
    let ro = fleet.mkdir("w/ro");
    set_mode(&ro, 0o555);
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let r = scout.call(
        json!({"target": target(&fleet, 0, &ro.join("f.txt")), "beam": file.display().to_string()}),
    );
    err(&r, &["permission denied", &host, &ro.display().to_string()]);
    let r = scout.call(json!({
        "beam_source": target(&fleet, 0, &src),
        "beam_target": target(&fleet, 0, &ro.join("g.txt")),
    }));
    err(&r, &["permission denied", &host, &ro.display().to_string()]);
    assert_clean(&ro, &[]);
}

#[test]
fn a_missing_remote_source_is_refused_with_the_rule_that_made_it_a_download() {
    let fleet = Fleet::start(2);
    let local = TempDir::new("beam-local");
    let out = local.path().join("out.txt");
    let dir = fleet.mkdir("m");
    let missing = dir.join("ghost.txt");
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let r = scout
        .call(json!({"target": target(&fleet, 0, &missing), "beam": out.display().to_string()}));
    err(
        &r,
        &[
            &format!("Source not found: {host}:{}", missing.display()),
            &out.display().to_string(),
        ],
    );
    let r = scout.call(json!({
        "beam_source": target(&fleet, 0, &missing),
        "beam_target": target(&fleet, 1, &dir.join("copy.txt")),
    }));
    err(
        &r,
        &[&format!("Source not found: {host}:{}", missing.display())],
    );
    assert_clean(local.path(), &[]);
    assert_clean(&dir, &[]);
}

#[test]
fn misused_parameters_get_clear_messages() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let r = scout.call(json!({
        "target": format!("{host}:/tmp/x"),
        "beam": "/tmp/y",
        "beam_source": format!("{host}:/tmp/a"),
        "beam_target": format!("{host}:/tmp/b"),
    }));
    err(
        &r,
        &["Cannot use both 'beam' and 'beam_source/beam_target'"],
    );
    let r = scout.call(json!({"beam_source": format!("{host}:/tmp/a")}));
    err(&r, &["beam_source requires beam_target"]);
    let r = scout.call(json!({"beam_source": "nohost:/a", "beam_target": format!("{host}:/b")}));
    err(&r, &["Unknown source host 'nohost'. Available: ", &host]);
    let r = scout.call(json!({"beam_source": format!("{host}:/a"), "beam_target": "nohost:/b"}));
    err(&r, &["Unknown target host 'nohost'"]);
    let r = scout.call(json!({"target": "hosts", "beam": "/tmp/y"}));
    err(&r, &["beam parameter requires a valid host:/path target"]);
}

#[test]
fn an_empty_file_travels_too() {
    let fleet = Fleet::start(1);
    let local = TempDir::new("beam-local");
    let src = local.path().join("empty");
    fs::write(&src, b"").expect("write");
    let dir = fleet.mkdir("e");
    let mut scout = Scout::spawn(&fleet);
    let r = scout.call(
        json!({"target": target(&fleet, 0, &dir.join("empty")), "beam": src.display().to_string()}),
    );
    let s = ok(&r);
    assert_eq!(
        s["sha256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(fs::read(dir.join("empty")).expect("read"), b"");
}
