//! `tree`: a directory tree of the target.

use super::{Scout, ToolOutput};

impl Scout {
    pub(super) fn tree(&self, host: &str, path: &str, depth: u32) -> ToolOutput {
        let _ = (host, path, depth);
        ToolOutput::error("the 'tree' mode is not available in this version of scout-mcp yet")
    }
}
