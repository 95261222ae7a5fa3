//! `beam`: file transfers over SFTP (local ↔ remote, remote → remote).

use super::{RunContext, Scout, ScoutRequest, ToolOutput};

/// The original's checks on how the beam parameters combine.
pub(super) fn check_beam_arguments(req: &ScoutRequest) -> Option<String> {
    if req.beam.is_some() && (req.beam_source.is_some() || req.beam_target.is_some()) {
        return Some(
            "Cannot use both 'beam' and 'beam_source/beam_target'. Use 'beam' for local \
             transfers or 'beam_source/beam_target' for remote-to-remote."
                .into(),
        );
    }
    match (&req.beam_source, &req.beam_target) {
        (Some(_), None) => Some("beam_source requires beam_target to be specified.".into()),
        (None, Some(_)) => Some("beam_target requires beam_source to be specified.".into()),
        _ => None,
    }
}

impl Scout {
    pub(super) fn beam_local(
        &self,
        host: &str,
        path: &str,
        local: &str,
        ctx: &RunContext,
    ) -> ToolOutput {
        let _ = (host, path, local, ctx);
        ToolOutput::error("the 'beam' mode is not available in this version of scout-mcp yet")
    }

    pub(super) fn beam_remote(&self, source: &str, target: &str, ctx: &RunContext) -> ToolOutput {
        let _ = (source, target, ctx);
        ToolOutput::error(
            "'beam_source/beam_target' is not available in this version of scout-mcp yet",
        )
    }
}
