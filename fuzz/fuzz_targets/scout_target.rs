//! The `target` parser (`hosts` or `host:/path`). Named scout_target: a directory called
//! `target` would be ignored by the repository's `target/` rule, seeds and all.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scout_mcp::scout::target::{self, Target};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match target::parse(s) {
        Ok(Target::Hosts) => assert!(s.trim().eq_ignore_ascii_case("hosts")),
        Ok(Target::Path { host, path }) => {
            assert!(!host.is_empty() && !path.is_empty());
            assert!(!host.contains(':'), "the first colon separates the host");
            assert!(!path.contains('\0'));
            assert!(!host.chars().any(|c| c.is_whitespace() || c.is_control()));
        }
        Err(e) => assert!(e.0.len() < 1024 + s.len().min(1024), "unbounded error text"),
    }
    let _ = target::shorten(s);
});
