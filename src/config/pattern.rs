//! Shell-style `*` / `?` matching as used by OpenSSH host patterns.

/// Matches `text` against a glob with `*` (any run, including empty) and `?` (one character).
///
/// Case-sensitive; callers that want OpenSSH's case-insensitive host matching lowercase both
/// sides first. Iterative with a single backtrack point, so the worst case is
/// O(pattern × text) rather than exponential for patterns like `*a*a*a*b`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where to resume after the most recent `*`: (pattern index after it, text index it covers to).
    let mut resume: Option<(usize, usize)> = None;
    while ti < t.len() {
        if let Some(step) = step(p, pi, t, ti) {
            match step {
                Step::Star => resume = Some((pi + 1, ti)),
                Step::Advance(len) => ti += len,
            }
            pi += 1;
            continue;
        }
        // Only an earlier `*` can rescue a mismatch: let it swallow one more character.
        let Some((rp, rt)) = resume else {
            return false;
        };
        let next = rt + char_len(t[rt]);
        resume = Some((rp, next));
        pi = rp;
        ti = next;
    }
    p[pi..].iter().all(|&b| b == b'*')
}

enum Step {
    Star,
    Advance(usize),
}

fn step(p: &[u8], pi: usize, t: &[u8], ti: usize) -> Option<Step> {
    match p.get(pi)? {
        b'*' => Some(Step::Star),
        // `?` is one character, not one byte, so it must not split a UTF-8 sequence.
        b'?' => Some(Step::Advance(char_len(t[ti]))),
        &c if c == t[ti] => Some(Step::Advance(1)),
        _ => None,
    }
}

/// Length of the UTF-8 sequence starting with `lead` (text comes from a `&str`, so it is valid).
fn char_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// True when `s` contains a glob metacharacter.
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn literal() {
        assert!(glob_match("web1", "web1"));
        assert!(!glob_match("web1", "web12"));
        assert!(!glob_match("web12", "web1"));
        assert!(!glob_match("Web1", "web1"));
    }

    #[test]
    fn empty_pattern_and_text() {
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(!glob_match("a", ""));
        assert!(glob_match("*", ""));
        assert!(glob_match("**", ""));
        assert!(!glob_match("?", ""));
    }

    #[test]
    fn question_mark() {
        assert!(glob_match("web?", "web1"));
        assert!(!glob_match("web?", "web"));
        assert!(!glob_match("web?", "web12"));
        assert!(glob_match("??", "ab"));
        assert!(glob_match("h?st", "hést"));
        assert!(glob_match("?", "é"));
    }

    #[test]
    fn star() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("web*", "web"));
        assert!(glob_match("web*", "web-01"));
        assert!(glob_match("*.example.com", "a.example.com"));
        assert!(!glob_match("*.example.com", "example.com"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(!glob_match("a*b*c", "acb"));
        assert!(glob_match("*é*", "caféine"));
    }

    #[test]
    fn consecutive_stars() {
        assert!(glob_match("a**b", "ab"));
        assert!(glob_match("a***b", "aXYZb"));
        assert!(glob_match("***", "x"));
        assert!(!glob_match("a**b", "a"));
    }

    #[test]
    fn star_backtracking() {
        assert!(glob_match("*ab", "aab"));
        assert!(glob_match("*aab", "aaab"));
        assert!(glob_match("a*?", "ab"));
        assert!(!glob_match("a*?", "a"));
        assert!(glob_match("*?*", "x"));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let text = "a".repeat(20_000);
        let start = Instant::now();
        assert!(!glob_match("*a*a*a*a*a*a*a*a*b", &text));
        assert!(glob_match("*a*a*a*a*a*a*a*a*", &text));
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn wildcard_detection() {
        assert!(has_wildcard("web*"));
        assert!(has_wildcard("web?"));
        assert!(!has_wildcard("web1"));
    }
}
