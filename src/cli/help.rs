//! The help texts, built from the same tables the parser and the
//! settings use, so that they cannot forget an option or a variable.

use super::args::{Topic, CALL_OPTIONS};
use crate::config::VARIABLES;

const CALL_USAGE: &str = "\
scout-mcp call TARGET [OPTIONS]
    Runs one scout tool call, exactly as an MCP client's would run, and prints
    its result. TARGET is host:/path (~ paths work) or hosts. Exit status: 0
    on success, 1 when the result is an error (printed on stderr), 2 on a
    usage error. Ctrl-C cancels and stops the remote command.
";

const HOSTS_USAGE: &str = "\
scout-mcp hosts
    Lists the configured hosts (user@host:port) with an online mark.
";

const CHECK_USAGE: &str = "\
scout-mcp check [HOST...]
    Connects to each host (all configured hosts when none is named), step by
    step: resolve, tcp, handshake, host key, auth, sftp (open the subsystem,
    stat the login directory), exec (run `true`). Prints one line per host
    with each step's time, or the first failing step and why. Hosts are
    checked in parallel (SCOUT_BROADCAST_WIDTH at a time). Exit status 1 if
    any host fails.
";

/// The text for `topic`.
pub fn text(topic: Topic) -> String {
    match topic {
        Topic::Global => global(),
        Topic::Call => format!("USAGE:\n{CALL_USAGE}\nOPTIONS:\n{}", call_options()),
        Topic::Hosts => format!("USAGE:\n{HOSTS_USAGE}"),
        Topic::Check => format!("USAGE:\n{CHECK_USAGE}"),
    }
}

fn global() -> String {
    format!(
        "scout-mcp {}\n\
         Reads files, lists directories and runs commands on the hosts of your ssh\n\
         config, over SSH: an MCP server on stdio, and the same operations for humans.\n\n\
         USAGE:\n\
         scout-mcp\n    \
         Serves MCP on stdin/stdout (what MCP clients run).\n\n\
         {CALL_USAGE}\n{}\n\
         {HOSTS_USAGE}\n\
         {CHECK_USAGE}\n\
         scout-mcp help [COMMAND], scout-mcp COMMAND --help\n    \
         This text, or one command's.\n\n\
         scout-mcp --version\n    \
         The version.\n\n\
         ENVIRONMENT (logs go to stderr; the commands log warnings only unless\n\
         SCOUT_LOG_LEVEL or RUST_LOG says otherwise):\n{}",
        env!("CARGO_PKG_VERSION"),
        call_options(),
        variables()
    )
}

fn call_options() -> String {
    CALL_OPTIONS
        .iter()
        .map(|(name, value, meaning)| {
            let flag = if value.is_empty() {
                name.to_string()
            } else {
                format!("{name} {value}")
            };
            format!("    {flag:<26} {meaning}\n")
        })
        .collect()
}

fn variables() -> String {
    VARIABLES
        .iter()
        .map(|(name, default, meaning)| format!("    {name:<32} {meaning} (default: {default})\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_help_names_every_command_option_and_variable() {
        let help = text(Topic::Global);
        for command in [
            "scout-mcp call",
            "scout-mcp hosts",
            "scout-mcp check",
            "--version",
        ] {
            assert!(help.contains(command), "{command}");
        }
        for (name, ..) in CALL_OPTIONS {
            assert!(help.contains(name), "{name}");
        }
        for (name, ..) in VARIABLES {
            assert!(help.contains(name), "{name}");
        }
    }

    #[test]
    fn call_help_lists_its_options() {
        let help = text(Topic::Call);
        for (name, ..) in CALL_OPTIONS {
            assert!(help.contains(name), "{name}");
        }
        assert!(text(Topic::Check).contains("host key"));
    }
}
