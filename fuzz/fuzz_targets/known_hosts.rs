//! The known_hosts reader: the real `load_known_hosts` (libssh2's parser, line by line, as
//! `HostKeyPolicy::verify` uses it) on a fresh, unconnected session, a lookup in what was
//! loaded, and `is_revoked`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scout_mcp::ssh::host_key::{is_revoked, load_known_hosts};
use ssh2::Session;
use std::path::Path;

/// An ed25519 public key blob (the base64 of `AAAAC3NzaC1lZDI1NTE5AAAAI...` decoded).
const KEY: &[u8] = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20\
\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\
\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let session = Session::new().expect("a libssh2 session");
    let mut known = session.known_hosts().expect("a known-hosts collection");
    let loaded = load_known_hosts(&mut known, text, Path::new("/nonexistent/known_hosts"));
    assert!(loaded <= text.lines().count());
    for (host, port) in [("web1", 22), ("10.0.0.1", 2222), ("web1.example.com", 22)] {
        let _ = known.check_port(host, port, KEY);
    }
    // Everything loaded can be listed back.
    if let Ok(hosts) = known.hosts() {
        for h in hosts {
            let _ = (h.name(), h.key());
        }
    }
    let _ = is_revoked(text, KEY);
    let _ = is_revoked(text, data);
});
