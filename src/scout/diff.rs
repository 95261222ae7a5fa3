//! `diff` and `diff_content`: unified diffs (3 lines of context) of a
//! remote file against another remote file or against given text.

use super::target::{self, Target};
use super::{format, Scout, ToolOutput};
use crate::ssh::sftp::FileHead;
use similar::TextDiff;

/// One side of a comparison: its label and text, or why it has none.
struct Side {
    label: String,
    text: String,
    truncated: bool,
}

impl Scout {
    pub(super) fn diff(&self, host: &str, path: &str, other: &str) -> ToolOutput {
        let (other_host, other_path) = match target::parse(other) {
            Ok(Target::Path { host, path }) => (host, path),
            Ok(Target::Hosts) => {
                return ToolOutput::error("diff target must be 'host:/path', not 'hosts'")
            }
            Err(e) => return ToolOutput::error(format!("diff target: {}", e.0)),
        };
        if let Err(e) = self.check_host(&other_host) {
            return ToolOutput::error(format!("diff target: {e}"));
        }
        // The two reads are independent: do them at the same time.
        let (left, right) = self.fanout.install(|| {
            rayon::join(
                || self.side(host, path),
                || self.side(&other_host, &other_path),
            )
        });
        match (left, right) {
            (Ok(a), Ok(b)) => compare(&a, &b, "Files are identical"),
            (Err(e), _) | (_, Err(e)) => ToolOutput::error(format!("Diff failed: {e}")),
        }
    }

    pub(super) fn diff_content(&self, host: &str, path: &str, expected: &str) -> ToolOutput {
        let side = match self.side(host, path) {
            Ok(s) => s,
            Err(e) => return ToolOutput::error(format!("Diff failed: {e}")),
        };
        let expected = Side {
            label: "expected content".into(),
            text: expected.to_string(),
            truncated: false,
        };
        if side.text == expected.text && !side.truncated {
            return ToolOutput::ok(format!("File matches expected content: {path}"));
        }
        compare(&side, &expected, "File matches expected content")
    }

    fn side(&self, host: &str, path: &str) -> Result<Side, String> {
        let head: FileHead = self.read_file_head(host, path)?;
        if format::looks_binary(&head.bytes) {
            return Err(format!(
                "{host}:{path} is a binary file; only text files can be compared"
            ));
        }
        Ok(Side {
            label: format!("{host}:{path}"),
            text: String::from_utf8_lossy(&head.bytes).into_owned(),
            truncated: head.truncated,
        })
    }
}

/// The unified diff of two sides, or `<identical>:` naming both.
fn compare(a: &Side, b: &Side, identical: &str) -> ToolOutput {
    let notes = truncation_notes(&[a, b]);
    if a.text == b.text {
        return ToolOutput::ok(format!("{identical}:\n  {}\n  {}{notes}", a.label, b.label));
    }
    let diff = TextDiff::from_lines(&a.text, &b.text);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&a.label, &b.label)
        .to_string();
    ToolOutput::ok(format!("{text}{notes}"))
}

fn truncation_notes(sides: &[&Side]) -> String {
    sides
        .iter()
        .filter(|s| s.truncated)
        .map(|s| {
            format!(
                "\n[note: {} was truncated at SCOUT_MAX_FILE_SIZE; only its beginning was compared]",
                s.label
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(label: &str, text: &str) -> Side {
        Side {
            label: label.into(),
            text: text.into(),
            truncated: false,
        }
    }

    #[test]
    fn identical_sides_name_both() {
        let out = compare(
            &side("a:/x", "same\n"),
            &side("b:/x", "same\n"),
            "Files are identical",
        );
        assert_eq!(out.text, "Files are identical:\n  a:/x\n  b:/x");
    }

    #[test]
    fn differences_are_a_unified_diff_with_host_headers_and_three_lines_of_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        let out = compare(
            &side("a:/x", old),
            &side("b:/y", new),
            "Files are identical",
        );
        let expected = "--- a:/x\n+++ b:/y\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n";
        assert_eq!(out.text, expected);
    }

    #[test]
    fn a_truncated_side_is_mentioned() {
        let mut a = side("a:/x", "x\n");
        a.truncated = true;
        let out = compare(&a, &side("b:/x", "x\n"), "Files are identical");
        assert!(out.text.contains("a:/x was truncated"), "{}", out.text);
    }
}
