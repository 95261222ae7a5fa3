//! `diff` and `diff_content`: unified diffs of remote files.

use super::{Scout, ToolOutput};

impl Scout {
    pub(super) fn diff(&self, host: &str, path: &str, other: &str) -> ToolOutput {
        let _ = (host, path, other);
        ToolOutput::error("the 'diff' mode is not available in this version of scout-mcp yet")
    }

    pub(super) fn diff_content(&self, host: &str, path: &str, expected: &str) -> ToolOutput {
        let _ = (host, path, expected);
        ToolOutput::error(
            "the 'diff_content' mode is not available in this version of scout-mcp yet",
        )
    }
}
