//! Restricted mode (SCOUT_COMMAND_ALLOWLIST): `split_words` and `restricted_command`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scout_mcp::scout::restrict::{restricted_command, split_words};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let allow: Vec<String> = [
        "grep", "rg", "tail", "find", "sed", "awk", "sort", "tar", "git", "ls", "sh",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let words = split_words(query);
    match restricted_command(query, &allow) {
        Ok(line) => {
            let words = words.expect("an accepted query splits into words");
            assert!(!words.is_empty());
            assert!(allow.contains(&words[0]) && words[0] != "sh");
            // Every word is single-quoted: the line splits back into the same words.
            assert_eq!(split_words(&line).as_ref(), Ok(&words), "{line}");
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
