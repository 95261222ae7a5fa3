//! Per-host resources (`{host}://...`) against a real sshd: paths, the
//! docker / zfs / syslog views (whatever the test machine has installed),
//! name validation before anything reaches a shell, and the listings.

mod support;

use serde_json::{json, Value};
use support::{Fleet, Scout};

/// Reads `uri`; the text on success, the JSON-RPC error otherwise.
fn read(scout: &mut Scout, uri: &str) -> Result<String, Value> {
    let response = scout.request("resources/read", json!({ "uri": uri }));
    if let Some(error) = response.get("error") {
        return Err(error.clone());
    }
    let text = response["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {response}"));
    assert_eq!(response["result"]["contents"][0]["uri"], json!(uri));
    Ok(text.to_string())
}

fn read_ok(scout: &mut Scout, uri: &str) -> String {
    read(scout, uri).unwrap_or_else(|e| panic!("{uri}: expected text, got error {e}"))
}

/// Whether `bin` is on the remote user's PATH (as the views extend it),
/// asked over the same SSH connection the resources use.
fn remote_has(scout: &mut Scout, host: &str, bin: &str) -> bool {
    let query = format!(
        "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"; command -v {bin} >/dev/null && echo yes || echo no"
    );
    let result = scout.call(json!({"target": format!("{host}:/"), "query": query}));
    assert!(!result.is_error, "{}", result.text);
    result.text.trim() == "yes"
}

#[test]
fn host_scheme_reads_files_and_directories_with_two_or_three_slashes() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("res/readme.txt", b"resource body\n");
    let dir = fleet.mkdir("res");
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let host = fleet.alias(0);
    let abs = file.display().to_string();
    let three = read_ok(&mut scout, &format!("{host}://{abs}"));
    assert_eq!(three, "resource body\n");
    let two = read_ok(
        &mut scout,
        &format!("{host}://{}", abs.trim_start_matches('/')),
    );
    assert_eq!(two, "resource body\n");
    let listing = read_ok(&mut scout, &format!("{host}://{}", dir.display()));
    assert!(listing.contains("readme.txt"), "{listing}");
    let root = read_ok(&mut scout, &format!("{host}://"));
    assert!(root.contains("(") && root.contains("entries"), "{root}");
    let missing = read(&mut scout, &format!("{host}:///no/such/file")).unwrap_err();
    assert_eq!(missing["code"], json!(-32002), "{missing}");
}

#[test]
fn syslog_is_log_lines_or_a_clear_not_available_text() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let text = read_ok(&mut scout, &format!("{}://syslog", fleet.alias(0)));
    assert!(!text.is_empty());
    if text.contains("not available") {
        assert_eq!(
            text,
            "System logs are not available on this host (no journalctl, no /var/log/syslog)"
        );
    }
}

#[test]
fn docker_views_say_clearly_when_docker_is_missing_and_show_output_otherwise() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let host = fleet.alias(0);
    let has_docker = remote_has(&mut scout, &host, "docker");
    let expected = format!("Docker is not available on host '{host}'");
    for view in ["docker", "docker/web1/logs"] {
        let text = read_ok(&mut scout, &format!("{host}://{view}"));
        if has_docker {
            // Without a daemon this is docker's own error with its exit
            // code; with one, a table or a log. Either way, text.
            assert!(!text.contains(&expected), "{view}: {text}");
            assert!(!text.is_empty(), "{view}");
        } else {
            assert!(text.starts_with(&expected), "{view}: {text}");
        }
    }
}

#[test]
fn zfs_views_say_clearly_when_zfs_is_missing_and_show_output_otherwise() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let host = fleet.alias(0);
    let has_zpool = remote_has(&mut scout, &host, "zpool");
    let has_zfs = remote_has(&mut scout, &host, "zfs");
    let expected = format!("ZFS is not available on host '{host}'");
    for (view, present) in [
        ("zfs", has_zpool),
        ("zfs/tank", has_zpool),
        ("zfs/tank/datasets", has_zfs),
        ("zfs/snapshots", has_zfs),
    ] {
        let text = read_ok(&mut scout, &format!("{host}://{view}"));
        assert_eq!(!text.starts_with(&expected), present, "{view}: {text}");
    }
}

#[test]
fn compose_views_answer_with_text_whatever_is_installed() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let host = fleet.alias(0);
    let has_docker = remote_has(&mut scout, &host, "docker");
    let has_v1 = remote_has(&mut scout, &host, "docker-compose");
    for view in ["compose", "compose/app", "compose/app/logs"] {
        let text = read_ok(&mut scout, &format!("{host}://{view}"));
        if !has_docker && !has_v1 {
            assert!(
                text.starts_with(&format!("Docker Compose is not available on host '{host}'")),
                "{view}: {text}"
            );
        } else {
            assert!(!text.is_empty(), "{view}");
        }
    }
}

#[test]
fn names_with_shell_characters_are_refused_before_any_shell_sees_them() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let host = fleet.alias(0);
    let home = scout
        .call(json!({"target": format!("{host}:~"), "query": "pwd"}))
        .text;
    let marker = format!("pwned-{}", std::process::id());
    let abs_marker = fleet.data_dir().join(&marker).display().to_string();
    // The absolute marker path is percent-encoded so the whole payload
    // stays one segment and reaches name validation.
    let encoded = format!("%24%28touch%20{}%29", abs_marker.replace('/', "%2F"));
    for (uri, bad) in [
        (
            format!("{host}://docker/$(touch {marker})/logs"),
            "container",
        ),
        (format!("{host}://docker/{encoded}/logs"), "container"),
        (
            format!("{host}://docker/a;touch {marker}/logs"),
            "container",
        ),
        (format!("{host}://docker/..%2Fx/logs"), "container"),
        (
            format!("{host}://docker/`touch {marker}`/logs"),
            "container",
        ),
        (format!("{host}://compose/a;b"), "project"),
        (
            format!("{host}://compose/$(touch {marker})/logs"),
            "project",
        ),
        (format!("{host}://zfs/a'b"), "pool"),
        (format!("{host}://zfs/{encoded}/datasets"), "pool"),
    ] {
        let error = read(&mut scout, &uri).unwrap_err();
        assert_eq!(error["code"], json!(-32002), "{uri}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("Invalid {bad} name '")),
            "{uri}: {message}"
        );
        assert!(message.contains(&format!("host '{host}'")), "{message}");
    }
    // A '/' splits segments, so these are malformed views: still errors.
    for uri in [
        format!("{host}://docker/../x/logs"),
        format!("{host}://docker/$(touch {abs_marker})/logs"),
    ] {
        let error = read(&mut scout, &uri).unwrap_err();
        assert_eq!(error["code"], json!(-32002), "{uri}: {error}");
    }
    for dir in [fleet.data_dir(), std::path::PathBuf::from(home.trim())] {
        assert!(
            !dir.join(&marker).exists(),
            "a name was run as shell text (found in {dir:?})"
        );
    }
}

#[test]
fn an_unknown_host_scheme_is_not_found_and_names_the_host_and_the_known_ones() {
    let fleet = Fleet::start(2);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    for uri in ["ghost://docker", "ghost:///etc/hosts", "ghost://"] {
        let error = read(&mut scout, uri).unwrap_err();
        assert_eq!(error["code"], json!(-32002), "{uri}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert_eq!(
            message,
            format!(
                "Unknown host 'ghost'. Available: {}, {}",
                fleet.alias(0),
                fleet.alias(1)
            )
        );
    }
    let error = read(&mut scout, "no-scheme-here").unwrap_err();
    assert_eq!(error["code"], json!(-32002), "{error}");
    // Schemes are case-insensitive; a client may have upper-cased ours.
    let upper = fleet.alias(0).to_uppercase();
    let root = read_ok(&mut scout, &format!("{upper}:///"));
    assert!(root.contains("entries"), "{root}");
}

#[test]
fn a_keyword_without_a_views_shape_is_an_error_and_three_slashes_reach_the_path() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let host = fleet.alias(0);
    let error = read(&mut scout, &format!("{host}://docker/web/stats")).unwrap_err();
    assert_eq!(error["code"], json!(-32002), "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("{host}://docker/{{container}}/logs")),
        "{message}"
    );
    // Not a keyword: a path, as in the original.
    let error = read(&mut scout, &format!("{host}://bogus-view")).unwrap_err();
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Path not found"),
        "{error}"
    );
}

#[test]
fn templates_list_every_view_and_hosts_list_shows_each_hosts_uris() {
    let fleet = Fleet::start(2);
    let mut scout = Scout::spawn(&fleet);
    scout.initialize();
    let templates = scout.request("resources/templates/list", json!({}));
    let listed: Vec<&Value> = templates["result"]["resourceTemplates"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let uris: Vec<&str> = listed
        .iter()
        .filter_map(|t| t["uriTemplate"].as_str())
        .collect();
    for expected in [
        "scout://{host}/{path}",
        "{host}://{path}",
        "{host}://docker",
        "{host}://docker/{container}/logs",
        "{host}://compose",
        "{host}://compose/{project}",
        "{host}://compose/{project}/logs",
        "{host}://zfs",
        "{host}://zfs/{pool}",
        "{host}://zfs/{pool}/datasets",
        "{host}://zfs/snapshots",
        "{host}://syslog",
    ] {
        assert!(uris.contains(&expected), "{expected} missing in {uris:?}");
    }
    assert_eq!(uris[0], "scout://{host}/{path}");
    for t in &listed {
        assert!(t["name"].as_str().is_some_and(|s| !s.is_empty()), "{t}");
        assert!(
            t["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{t}"
        );
    }
    let resources = scout.request("resources/list", json!({}));
    assert_eq!(
        resources["result"]["resources"],
        json!([{
            "uri": "hosts://list",
            "name": "hosts",
            "description": resources["result"]["resources"][0]["description"],
            "mimeType": "text/plain"
        }, {
            "uri": "metrics://pool",
            "name": "metrics",
            "description": resources["result"]["resources"][1]["description"],
            "mimeType": "application/json"
        }]),
        "resources/list stays static"
    );
    let text = read_ok(&mut scout, "hosts://list");
    assert!(text.starts_with("Available hosts:"), "{text}");
    for host in fleet.aliases() {
        for uri in [
            format!("{host}://"),
            format!("{host}://docker"),
            format!("{host}://compose"),
            format!("{host}://zfs"),
            format!("{host}://syslog"),
        ] {
            assert!(text.contains(&uri), "{uri} missing in\n{text}");
        }
    }
}
