//! Broadcast: one read or command on many targets in parallel.

use super::{Scout, ToolOutput};

impl Scout {
    pub(super) fn broadcast(&self, targets: &[String], query: Option<&str>) -> ToolOutput {
        let _ = (targets, query);
        ToolOutput::error("the 'targets' mode is not available in this version of scout-mcp yet")
    }
}
