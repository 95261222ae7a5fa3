//! The `scout` tool as MCP clients see it: name, description, schema,
//! and the translation of its arguments.

use crate::scout::{ScoutRequest, ToolOutput};
use serde::Deserialize;
use serde_json::{json, Value};

pub const TOOL_NAME: &str = "scout";

const DESCRIPTION: &str = "\
Scout remote files and directories over SSH, on the hosts of the user's ssh config.

The target is 'hosts' or 'host:/path' (~ paths work). Modes, one example each:
- scout(target=\"hosts\"): list hosts with user@host:port and an online mark
- scout(target=\"web1:/var/log/app.log\"): read a file
- scout(target=\"web1:/etc/nginx\"): list a directory (ls -la style)
- scout(target=\"web1:/etc/nginx\", tree=true, depth=2): directory tree
- scout(target=\"web1:~/code\", query=\"rg 'TODO' -t py\"): run a shell command in that directory
- scout(target=\"web1:/var/log\", find=\"*.log\", depth=2): find files by name
- scout(target=\"web1:/etc/nginx.conf\", diff=\"web2:/etc/nginx.conf\"): compare two files
- scout(target=\"web1:/etc/hosts\", diff_content=\"127.0.0.1 localhost\\n\"): compare with text
- scout(targets=[\"web1:/etc/os-release\", \"web2:/etc/os-release\"]): read on many hosts at once
- scout(targets=[\"web1:/srv\", \"web2:/srv\"], query=\"df -h .\"): run on many hosts at once
- scout(target=\"web1:/tmp/report.csv\", beam=\"/tmp/report.csv\"): upload if the local file exists, else download
- scout(beam_source=\"web1:/srv/a.tar\", beam_target=\"web2:/srv/a.tar\"): copy between hosts

Files are read over SFTP and capped (SCOUT_MAX_FILE_SIZE); commands run with a timeout \
(SCOUT_COMMAND_TIMEOUT) and report stdout, [stderr] and [exit code: N]; results are capped \
at SCOUT_MAX_OUTPUT_SIZE keeping head and tail.";

/// The `tools/list` entry.
pub fn definition() -> Value {
    json!({
        "name": TOOL_NAME,
        "title": "Scout (SSH files and commands)",
        "description": DESCRIPTION,
        "inputSchema": {
            "type": "object",
            "properties": {
                "target": {"type": "string", "description": "'hosts' to list hosts, or 'host:/path'"},
                "query": {"type": "string", "description": "Shell command to run in the target directory"},
                "tree": {"type": "boolean", "description": "Show a directory tree instead of a listing"},
                "find": {"type": "string", "description": "Glob pattern of file names to find under the target"},
                "depth": {"type": "integer", "minimum": 1, "maximum": 10, "description": "Maximum depth for tree and find"},
                "diff": {"type": "string", "description": "Another 'host:/path' to compare the target file with"},
                "diff_content": {"type": "string", "description": "Expected content to compare the target file with"},
                "targets": {"type": "array", "items": {"type": "string"}, "description": "Several 'host:/path' targets for a broadcast read or command"},
                "beam": {"type": "string", "description": "Local path: upload if it exists, otherwise download the target to it"},
                "beam_source": {"type": "string", "description": "Source 'host:/path' of a remote-to-remote transfer"},
                "beam_target": {"type": "string", "description": "Destination 'host:/path' of a remote-to-remote transfer"}
            },
            "additionalProperties": false
        },
        "outputSchema": output_schema(),
        "annotations": {
            "title": "Scout (SSH files and commands)",
            "readOnlyHint": false,
            "destructiveHint": true,
            "idempotentHint": false,
            "openWorldHint": true
        }
    })
}

/// Reads `tools/call` arguments; the error names the offending field.
pub fn parse_arguments(arguments: Option<&Value>) -> Result<ScoutRequest, String> {
    let args = match arguments {
        None | Some(Value::Null) => return Err("missing arguments: 'target' is required".into()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err("'arguments' must be an object".into()),
    };
    let req = ScoutRequest::deserialize(args).map_err(|e| format!("invalid arguments: {e}"))?;
    if let Some(d) = req.depth {
        if !(1..=10).contains(&d) {
            return Err(format!(
                "invalid arguments: 'depth' must be between 1 and 10, got {d}"
            ));
        }
    }
    let has_mode =
        !req.target.trim().is_empty() || req.targets.is_some() || req.beam_source.is_some();
    if !has_mode {
        return Err("missing 'target': give 'hosts' or 'host:/path'".into());
    }
    Ok(req)
}

/// What `structuredContent` holds. The tool has many modes, so every
/// field is optional: commands fill the command fields, broadcasts
/// `succeeded`/`total`/`results`, transfers the transfer fields, and the
/// other modes give their text as `text`.
fn output_schema() -> Value {
    let string = json!({"type": "string"});
    json!({
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "The result as text, for modes without structured fields"},
            "host": string, "path": string, "command": string,
            "stdout": string, "stderr": string,
            "exit_code": {"type": ["integer", "null"]},
            "exit_signal": {"type": ["string", "null"]},
            "timed_out": {"type": "boolean"},
            "truncated": {"type": "boolean"},
            "duration_ms": {"type": "integer", "minimum": 0},
            "succeeded": {"type": "integer", "minimum": 0},
            "total": {"type": "integer", "minimum": 0},
            "results": {"type": "array", "items": {"type": "object"}},
            "direction": string, "source": string, "destination": string,
            "bytes": {"type": "integer", "minimum": 0},
            "sha256": string
        }
    })
}

/// The `tools/call` result for an output. With an output schema
/// declared, every result carries `structuredContent`.
pub fn result(output: ToolOutput) -> Value {
    let structured = output
        .structured
        .unwrap_or_else(|| json!({"text": output.text}));
    json!({
        "content": [{"type": "text", "text": output.text}],
        "structuredContent": structured,
        "isError": output.is_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_originals_arguments() {
        let req = parse_arguments(Some(&json!({"target": "web1:/etc", "query": "ls"}))).unwrap();
        assert_eq!(req.target, "web1:/etc");
        assert_eq!(req.query.as_deref(), Some("ls"));
    }

    #[test]
    fn rejects_wrong_types_unknown_fields_and_bad_depth() {
        for (args, expect) in [
            (json!({"target": 5}), "invalid type"),
            (json!({"target": "a:/", "bogus": 1}), "bogus"),
            (json!({"target": "a:/", "depth": 0}), "between 1 and 10"),
            (json!({"target": "a:/", "depth": 11}), "between 1 and 10"),
            (json!({"target": "a:/", "depth": -1}), "invalid value"),
            (json!({}), "missing 'target'"),
            (json!("a:/"), "must be an object"),
        ] {
            let err = parse_arguments(Some(&args)).expect_err(&args.to_string());
            assert!(err.contains(expect), "{args}: {err}");
        }
        assert!(parse_arguments(None).is_err());
    }

    #[test]
    fn every_result_carries_structured_content() {
        let r = result(ToolOutput::ok("plain"));
        assert_eq!(r["structuredContent"], json!({"text": "plain"}));
        assert!(definition()["outputSchema"]["properties"]["exit_code"].is_object());
    }

    #[test]
    fn the_schema_lists_every_parameter_of_the_original() {
        let def = definition();
        let props = def["inputSchema"]["properties"].as_object().unwrap();
        for name in [
            "target",
            "query",
            "tree",
            "find",
            "depth",
            "diff",
            "diff_content",
            "targets",
            "beam",
            "beam_source",
            "beam_target",
        ] {
            assert!(props.contains_key(name), "{name}");
        }
    }
}
