//! The `legacy-sha1` build against real sshd servers that offer only SHA-1 algorithms, and
//! against a modern one, which must still get a modern algorithm.
//!
//! Compiled only with the feature, which also needs libssh2 built with its SHA-1 defines:
//! `make test-legacy` does both (README: "Legacy servers"). The default build's refusal of
//! such servers is tested in tests/faults.rs.
#![cfg(feature = "legacy-sha1")]

mod support;

use serde_json::json;
use support::{wait_until, Fleet, Scout, PATIENCE};

/// A command and a file read through scout-mcp on host 0 of `fleet`, both succeeding.
fn assert_serves(fleet: &Fleet) {
    let file = fleet.write_file("legacy/old.txt", b"an old appliance\n");
    let mut scout = Scout::spawn(fleet);
    scout.initialize();
    let alias = fleet.alias(0);
    let r = scout.call(json!({"target": format!("{alias}:/"), "query": "echo in"}));
    assert!(!r.is_error, "the command failed: {}", r.text);
    assert!(r.text.contains("in"), "{}", r.text);
    let r = scout.call(json!({"target": format!("{alias}:{}", file.display())}));
    assert!(!r.is_error, "the read failed: {}", r.text);
    assert!(r.text.contains("an old appliance"), "{}", r.text);
}

#[test]
fn a_server_with_only_ssh_rsa_group14_sha1_and_hmac_sha1_is_served() {
    let fleet = Fleet::builder()
        .host_key_type("rsa")
        .sshd_option("HostKeyAlgorithms", "ssh-rsa")
        .sshd_option("KexAlgorithms", "diffie-hellman-group14-sha1")
        // A cipher without a built-in MAC, so that the MAC really is hmac-sha1.
        .sshd_option("Ciphers", "aes128-ctr")
        .sshd_option("MACs", "hmac-sha1")
        .start();
    assert_serves(&fleet);
}

#[test]
fn a_server_with_only_group1_sha1_key_exchange_is_served() {
    let fleet = Fleet::builder()
        .host_key_type("rsa")
        .sshd_option("HostKeyAlgorithms", "ssh-rsa")
        .sshd_option("KexAlgorithms", "diffie-hellman-group1-sha1")
        .start();
    assert_serves(&fleet);
}

#[test]
fn a_modern_server_still_negotiates_modern_algorithms() {
    let fleet = Fleet::builder()
        .host_key_type("rsa")
        .sshd_option("LogLevel", "DEBUG1")
        .start();
    assert_serves(&fleet);
    // sshd logs the outcome of each key exchange: "kex: algorithm: X", "kex: host key
    // algorithm: Y", "kex: client->server cipher: C MAC: M compression: none".
    let logged = wait_until(PATIENCE, || {
        fleet.sshd_log(0).contains("kex: host key algorithm")
    });
    let log = fleet.sshd_log(0);
    assert!(logged, "sshd logged no key exchange:\n{log}");
    let chosen: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("kex: algorithm:") || l.contains("kex: host key algorithm:"))
        .collect();
    assert!(!chosen.is_empty(), "{log}");
    for line in &chosen {
        assert!(
            !line.contains("sha1") && !line.split_whitespace().any(|w| w == "ssh-rsa"),
            "a SHA-1 algorithm was chosen although the server offers better: {line}"
        );
    }
    assert!(
        chosen.iter().any(|l| l.contains("rsa-sha2-")),
        "the RSA host key is used with a SHA-2 signature: {chosen:?}"
    );
}
