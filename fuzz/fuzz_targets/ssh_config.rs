//! The ssh config parser: `SshConfig::parse`, then `aliases` and `resolve` of each alias.
//!
//! `Include` takes absolute paths, `~` and globs, so it could read any file on the fuzzing
//! machine (and make runs depend on it): every line that mentions "include" in any ASCII
//! case is dropped before parsing, and the origin is under /nonexistent so even a missed
//! relative include resolves to nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scout_mcp::config::SshConfig;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let text: String = raw
        .split_inclusive('\n')
        .filter(|line| !line.to_ascii_lowercase().contains("include"))
        .collect();
    let Ok(config) = SshConfig::parse(&text, Path::new("/nonexistent/scout-fuzz/config")) else {
        return;
    };
    let aliases = config.aliases();
    for alias in aliases.iter().take(64) {
        let host = config.resolve(alias);
        assert_eq!(&host.alias, alias);
        assert!(host.port > 0);
    }
    let _ = config.resolve("not-an-alias-in-the-input");
});
