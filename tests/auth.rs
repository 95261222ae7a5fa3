//! Authentication users actually have (issue 6, item 4), against real sshd and a real
//! ssh-agent: an encrypted key used through the agent, the message when no agent holds it,
//! the IdentityFile tried before the agent's other keys (sshd's MaxAuthTries), IdentitiesOnly,
//! and an agent socket that is not there.

mod support;

use serde_json::json;
use std::path::Path;
use std::process::Command;
use support::{run_bounded, Agent, Fleet, Scout, ToolResult, PATIENCE};

const PASSPHRASE: &str = "correct horse battery staple";

/// Reads `rel` (written on the fleet beforehand) from `alias`.
fn read(scout: &mut Scout, fleet: &Fleet, alias: &str, rel: &str) -> ToolResult {
    let path = fleet.data_dir().join(rel);
    scout.call(json!({"target": format!("{alias}:{}", path.display())}))
}

fn assert_read(result: &ToolResult, expected: &str, scout: &Scout) {
    assert!(
        !result.is_error && result.text.contains(expected),
        "expected the file's contents, got: {}\n--- scout-mcp stderr ---\n{}",
        result.text,
        support::tail(&scout.stderr_log(), 4096)
    );
}

fn spawn(fleet: &Fleet, config: Option<&Path>, agent: Option<&Path>) -> Scout {
    let mut env = fleet.env();
    if let Some(config) = config {
        env.push(("SCOUT_SSH_CONFIG".into(), config.display().to_string()));
    }
    if let Some(agent) = agent {
        env.push(("SSH_AUTH_SOCK".into(), agent.display().to_string()));
    }
    let mut scout = Scout::spawn_env(&env);
    scout.initialize();
    scout
}

/// The SHA256 fingerprint of a key, as sshd logs it.
fn fingerprint(key: &Path) -> String {
    let out = run_bounded(Command::new("ssh-keygen").arg("-lf").arg(key), PATIENCE);
    assert!(out.status.success(), "ssh-keygen -lf {}", key.display());
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|f| f.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint in {text:?}"))
        .to_string()
}

/// The sshd log lines about refused public keys.
fn refused_keys(fleet: &Fleet) -> Vec<String> {
    fleet
        .sshd_log(0)
        .lines()
        .filter(|l| l.contains("Failed publickey"))
        .map(str::to_string)
        .collect()
}

#[test]
fn an_encrypted_identity_file_held_by_ssh_agent_logs_in() {
    let fleet = Fleet::builder().client_key_passphrase(PASSPHRASE).start();
    fleet.write_file("hello.txt", b"through the agent\n");
    let agent = Agent::start();
    agent.add_encrypted(&fleet.client_key_path(), PASSPHRASE);
    assert_eq!(
        agent.list().len(),
        1,
        "the agent should hold the client key"
    );

    let mut scout = spawn(&fleet, None, Some(agent.socket()));
    let result = read(&mut scout, &fleet, "host0", "hello.txt");
    assert_read(&result, "through the agent", &scout);
    assert!(!scout.stderr_log().contains(PASSPHRASE));
}

#[test]
fn an_encrypted_identity_file_without_an_agent_says_to_add_it_to_ssh_agent() {
    let fleet = Fleet::builder().client_key_passphrase(PASSPHRASE).start();
    fleet.write_file("hello.txt", b"unreachable\n");
    let key = fleet.client_key_path().display().to_string();
    // No agent at all, then an agent that holds some other key: neither can use the file.
    let other = Agent::start();
    other.add(&fleet.new_key("other"));
    for agent in [None, Some(other.socket())] {
        let mut scout = spawn(&fleet, None, agent);
        let result = read(&mut scout, &fleet, "host0", "hello.txt");
        assert!(result.is_error, "expected a failure, got {}", result.text);
        let expected = format!(
            "host0 ({}@{}:{}): key {key} is passphrase-protected: add it to ssh-agent \
             (ssh-add {key}); scout-mcp cannot prompt for passphrases",
            fleet.remote_user(),
            fleet.addr(0).ip(),
            fleet.addr(0).port()
        );
        assert!(
            result.text.contains(&expected),
            "expected {expected:?} in {:?}",
            result.text
        );
        assert!(!result.text.contains("libssh2 error"), "{}", result.text);
        assert!(!result.text.contains(PASSPHRASE));
    }
}

#[test]
fn the_identity_file_goes_before_the_agents_keys_so_max_auth_tries_is_not_reached() {
    // sshd hangs up at the second refused key: five wrong keys first would never get there.
    let fleet = Fleet::builder().sshd_option("MaxAuthTries", "2").start();
    fleet.write_file("hello.txt", b"first try\n");
    let agent = Agent::start();
    for i in 0..5 {
        agent.add(&fleet.new_key(&format!("wrong{i}")));
    }
    assert_eq!(agent.list().len(), 5);
    let config = fleet.ssh_config_with_keys(&[&fleet.client_key_path()], false);

    let mut scout = spawn(&fleet, Some(&config), Some(agent.socket()));
    let result = read(&mut scout, &fleet, "host0", "hello.txt");
    assert_read(&result, "first try", &scout);
}

#[test]
fn too_many_wrong_keys_end_in_a_message_that_names_max_auth_tries() {
    let fleet = Fleet::builder().sshd_option("MaxAuthTries", "2").start();
    fleet.write_file("hello.txt", b"never read\n");
    let agent = Agent::start();
    for i in 0..3 {
        agent.add(&fleet.new_key(&format!("wrong{i}")));
    }
    let named = fleet.new_key("named-but-wrong");
    let config = fleet.ssh_config_with_keys(&[&named], false);

    let mut scout = spawn(&fleet, Some(&config), Some(agent.socket()));
    let result = read(&mut scout, &fleet, "host0", "hello.txt");
    assert!(result.is_error, "expected a failure, got {}", result.text);
    assert!(
        result
            .text
            .contains("the server closed the connection after 2 keys were offered")
            && result.text.contains("MaxAuthTries")
            && result.text.contains("IdentitiesOnly yes"),
        "expected the MaxAuthTries explanation, got {:?}",
        result.text
    );
    // The named file went first.
    let first = result.text.split("; tried ").nth(1).unwrap_or_default();
    assert!(
        first.starts_with(&format!("{} (rejected)", named.display())),
        "expected the IdentityFile to be tried first: {:?}",
        result.text
    );
}

#[test]
fn identities_only_never_offers_the_agents_other_keys() {
    let fleet = Fleet::builder().sshd_option("LogLevel", "VERBOSE").start();
    fleet.write_file("hello.txt", b"only the file\n");
    let agent = Agent::start();
    let wrong = fleet.new_key("wrong");
    agent.add(&wrong);

    // The right IdentityFile: accepted, and the agent's key was never shown to the server.
    let right = fleet.ssh_config_with_keys(&[&fleet.client_key_path()], true);
    let mut scout = spawn(&fleet, Some(&right), Some(agent.socket()));
    assert_read(
        &read(&mut scout, &fleet, "host0", "hello.txt"),
        "only the file",
        &scout,
    );
    assert_eq!(refused_keys(&fleet), Vec::<String>::new());
    drop(scout);

    // A wrong IdentityFile and the right key in the agent: IdentitiesOnly keeps the agent's
    // key out, so the login fails, offering only the named file.
    let agent_key = Agent::start();
    agent_key.add(&fleet.client_key_path());
    let only_wrong = fleet.ssh_config_with_keys(&[&wrong], true);
    let mut scout = spawn(&fleet, Some(&only_wrong), Some(agent_key.socket()));
    let result = read(&mut scout, &fleet, "host0", "hello.txt");
    assert!(
        result.is_error,
        "IdentitiesOnly let the agent's key in: {}",
        result.text
    );
    assert!(
        result
            .text
            .contains(&format!("tried {} (rejected);", wrong.display())),
        "expected only the named file to be tried: {:?}",
        result.text
    );
    let refused = refused_keys(&fleet);
    assert!(
        refused.len() == 1 && refused[0].contains(&fingerprint(&wrong)),
        "expected sshd to see only the named wrong key, saw: {refused:#?}"
    );
}

#[test]
fn an_unreachable_agent_is_reported_once_and_key_files_still_work() {
    let fleet = Fleet::start(2);
    fleet.write_file("hello.txt", b"no agent needed\n");
    let missing = fleet.dir().join("no-such-agent.sock");

    let mut scout = spawn(&fleet, None, Some(&missing));
    for alias in ["host0", "host1"] {
        let result = read(&mut scout, &fleet, alias, "hello.txt");
        assert_read(&result, "no agent needed", &scout);
    }
    let needle = format!("SSH_AUTH_SOCK={}", missing.display());
    let warnings: Vec<String> = scout
        .stderr_log()
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains(&needle))
        .map(str::to_string)
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "expected one warning naming {needle}, got: {warnings:#?}"
    );
    assert!(warnings[0].contains("no such socket"), "{}", warnings[0]);
}
