//! Turning file metadata and captured bytes into text for the model.

use crate::ssh::exec::Capture;
use crate::ssh::sftp::Entry;
use std::fmt::Write;

/// `drwxr-xr-x`-style mode string from a full st_mode.
pub fn mode_string(perm: u32) -> String {
    let kind = match perm & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, c)) in bits.iter().enumerate() {
        let set = perm & bit != 0;
        let special = match i {
            2 => perm & 0o4000 != 0,
            5 => perm & 0o2000 != 0,
            8 => perm & 0o1000 != 0,
            _ => false,
        };
        s.push(match (set, special, i) {
            (true, true, 8) => 't',
            (false, true, 8) => 'T',
            (true, true, _) => 's',
            (false, true, _) => 'S',
            (true, false, _) => *c,
            (false, false, _) => '-',
        });
    }
    s
}

/// `YYYY-MM-DD HH:MM` (UTC) from seconds since the epoch.
pub fn timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic
/// Gregorian calendar (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One `ls -la`-like line per entry.
pub fn listing(header: &str, entries: &[Entry], cut: bool, max_bytes: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{header} ({} entries{})",
        entries.len(),
        if cut { ", list cut" } else { "" }
    );
    let width = entries
        .iter()
        .map(|e| e.stat.size.unwrap_or(0).to_string().len())
        .max()
        .unwrap_or(1);
    for (i, e) in entries.iter().enumerate() {
        if out.len() > max_bytes {
            let _ = writeln!(
                out,
                "[... {} more entries not shown: output limit reached]",
                entries.len() - i
            );
            break;
        }
        let _ = write!(
            out,
            "{} {:>5} {:>5} {:>width$} {} {}",
            mode_string(e.stat.perm.unwrap_or(0)),
            e.stat.uid.unwrap_or(0),
            e.stat.gid.unwrap_or(0),
            e.stat.size.unwrap_or(0),
            timestamp(e.stat.mtime.unwrap_or(0)),
            e.name
        );
        if e.stat.is_dir() {
            out.push('/');
        }
        if let Some(t) = &e.link_target {
            let _ = write!(out, " -> {t}");
        }
        out.push('\n');
    }
    if cut {
        out.push_str("[directory listing cut: too many entries]\n");
    }
    out
}

/// Whether bytes look like a binary file: a NUL in the first 8 KiB, as
/// git and grep decide.
pub fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|&b| b == 0)
}

/// Renders two captured streams within `budget` bytes in all, giving
/// stderr at least a quarter when both are large. Returns the texts and
/// whether anything was left out.
pub fn render_streams(stdout: Capture, stderr: Capture, budget: usize) -> (String, String, bool) {
    let (oh, ot, od) = stdout.into_parts();
    let (eh, et, ed) = stderr.into_parts();
    let out_len = oh.len() + ot.len();
    let err_len = eh.len() + et.len();
    let err_budget = err_len.min((budget / 4).max(budget.saturating_sub(out_len)));
    let out_budget = budget.saturating_sub(err_budget);
    let (out, cut_out) = fit(oh, ot, od, out_budget);
    let (err, cut_err) = fit(eh, et, ed, err_budget);
    (out, err, cut_out || cut_err)
}

/// The original's command layout: stdout, then `[stderr]`, then
/// `[exit code: N]` (or the signal), then `note`; `(no output)` if empty.
pub fn command_text(
    stdout: &str,
    stderr: &str,
    exit_code: Option<i32>,
    exit_signal: Option<&str>,
    note: Option<String>,
) -> String {
    let mut parts = Vec::new();
    if !stdout.is_empty() {
        parts.push(trim_newline(stdout).to_string());
    }
    if !stderr.is_empty() {
        parts.push(format!("[stderr]\n{}", trim_newline(stderr)));
    }
    match (exit_code, exit_signal) {
        (Some(code), _) if code != 0 => parts.push(format!("[exit code: {code}]")),
        (_, Some(sig)) => parts.push(format!("[killed by signal: {sig}]")),
        _ => {}
    }
    parts.extend(note);
    if parts.is_empty() {
        "(no output)".to_string()
    } else {
        parts.join("\n")
    }
}

/// Parts are joined with newlines; one trailing newline per part would
/// double them.
fn trim_newline(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

/// Caps a whole tool result at `max` bytes, keeping its head and tail.
pub fn cap_text(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let bytes = text.into_bytes();
    let half = max / 2;
    let head = bytes[..half].to_vec();
    let tail = bytes[bytes.len() - half..].to_vec();
    let dropped = (bytes.len() - 2 * half) as u64;
    fit(head, tail, dropped, max).0
}

/// Joins head and tail, cutting more from the middle to fit `budget`.
fn fit(mut head: Vec<u8>, mut tail: Vec<u8>, mut dropped: u64, budget: usize) -> (String, bool) {
    if head.len() + tail.len() > budget {
        let keep_head = (budget / 2).min(head.len());
        let keep_tail = (budget - keep_head).min(tail.len());
        dropped += (head.len() - keep_head + tail.len() - keep_tail) as u64;
        head.truncate(keep_head);
        tail.drain(..tail.len() - keep_tail);
    }
    if dropped == 0 {
        head.extend_from_slice(&tail);
        return (String::from_utf8_lossy(&head).into_owned(), false);
    }
    let text = format!(
        "{}\n[... {dropped} bytes omitted ...]\n{}",
        String::from_utf8_lossy(&head),
        String::from_utf8_lossy(&tail)
    );
    (text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings_match_ls() {
        assert_eq!(mode_string(0o040755), "drwxr-xr-x");
        assert_eq!(mode_string(0o100644), "-rw-r--r--");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx");
        assert_eq!(mode_string(0o104755), "-rwsr-xr-x");
        assert_eq!(mode_string(0o041777), "drwxrwxrwt");
        assert_eq!(mode_string(0o041776), "drwxrwxrwT");
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0), "1970-01-01 00:00");
        assert_eq!(timestamp(951_782_400), "2000-02-29 00:00");
        assert_eq!(timestamp(1_795_000_000), "2026-11-18 11:06");
    }

    #[test]
    fn binary_is_a_nul_in_the_first_8k() {
        assert!(looks_binary(b"abc\0def"));
        assert!(!looks_binary("héllo".as_bytes()));
        let mut late = vec![b'a'; 9000];
        late.push(0);
        assert!(!looks_binary(&late));
    }

    fn capture(bytes: &[u8], cap: usize) -> Capture {
        let mut c = Capture::new(cap);
        c.push(bytes);
        c
    }

    #[test]
    fn whole_results_are_capped_with_a_note() {
        assert_eq!(cap_text("short".into(), 100), "short");
        let capped = cap_text("x".repeat(10_000), 1000);
        assert_eq!(capped.matches('x').count(), 1000);
        assert!(capped.contains("9000 bytes omitted"));
    }

    #[test]
    fn small_streams_pass_untouched() {
        let (o, e, cut) = render_streams(capture(b"out", 100), capture(b"err", 100), 100);
        assert_eq!((o.as_str(), e.as_str(), cut), ("out", "err", false));
    }

    #[test]
    fn large_streams_fit_the_budget_and_say_so() {
        let big = vec![b'x'; 10_000];
        let (o, e, cut) = render_streams(capture(&big, 4096), capture(&big, 4096), 1000);
        assert!(cut);
        let body = |s: &str| s.bytes().filter(|&b| b == b'x').count();
        assert!(body(&o) + body(&e) <= 1000);
        assert!(body(&e) >= 250, "stderr keeps at least a quarter");
        assert!(o.contains("bytes omitted"));
    }

    #[test]
    fn stderr_alone_may_use_the_whole_budget() {
        let big = vec![b'z'; 5000];
        let (o, e, cut) = render_streams(capture(b"", 8192), capture(&big, 8192), 1000);
        assert!(o.is_empty());
        assert!(cut);
        assert_eq!(e.bytes().filter(|&b| b == b'z').count(), 1000);
    }
}
