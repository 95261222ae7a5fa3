//! The command line, parsed by hand: a handful of subcommands and long
//! options do not justify a parser crate in a binary meant to be small.

use crate::scout::ScoutRequest;

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// No arguments: serve MCP on stdio (what MCP clients run).
    Serve,
    /// Print this help text and exit 0.
    Help(Topic),
    Version,
    Call(Box<Call>),
    Hosts,
    /// Check these hosts, or every configured host when empty.
    Check(Vec<String>),
}

/// Which help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Global,
    Call,
    Hosts,
    Check,
}

/// `scout-mcp call`: one scout tool call.
#[derive(Debug)]
pub struct Call {
    pub request: ScoutRequest,
    /// Print the structured result as JSON instead of the text.
    pub json: bool,
}

/// A command line that cannot be run: exit status 2, with `topic`'s usage.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
    pub topic: Topic,
}

impl UsageError {
    fn new(topic: Topic, message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            topic,
        }
    }
}

/// The options of `call`: (flag, value name or "" for a switch, meaning).
/// The parser accepts exactly these and the help lists them.
pub const CALL_OPTIONS: &[(&str, &str, &str)] = &[
    ("--query", "COMMAND", "run a shell command in the target directory"),
    ("--tree", "", "show a directory tree instead of a listing"),
    ("--depth", "N", "maximum depth for --tree and --find (1 to 10)"),
    ("--find", "PATTERN", "find files whose names match a glob under the target"),
    ("--diff", "HOST:/PATH", "compare the target file with another file"),
    ("--diff-content", "TEXT", "compare the target file with this text"),
    ("--targets", "T1,T2,…", "several host:/path targets at once (comma-separated or repeated); with --query a broadcast command"),
    ("--beam", "LOCAL", "upload LOCAL to the target if it exists, else download the target to it"),
    ("--beam-source", "HOST:/PATH", "copy from this remote file (with --beam-target)"),
    ("--beam-target", "HOST:/PATH", "copy to this remote file (with --beam-source)"),
    ("--json", "", "print the structured result as JSON instead of the text"),
];

/// The depth the tool accepts (its input schema's bounds).
const DEPTH: std::ops::RangeInclusive<u32> = 1..=10;

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let Some((first, rest)) = args.split_first() else {
        return Ok(Command::Serve);
    };
    match first.as_str() {
        "-h" | "--help" => no_more(rest, Topic::Global, Command::Help(Topic::Global)),
        "help" => help_topic(rest),
        "-V" | "--version" | "version" => no_more(rest, Topic::Global, Command::Version),
        "call" => parse_call(rest),
        "hosts" => parse_hosts(rest),
        "check" => parse_check(rest),
        other if other.starts_with('-') => Err(UsageError::new(
            Topic::Global,
            format!("unknown option '{other}'"),
        )),
        other => Err(UsageError::new(
            Topic::Global,
            format!("unknown command '{other}'; the commands are call, hosts, check and help"),
        )),
    }
}

fn is_help(arg: &str) -> bool {
    matches!(arg, "-h" | "--help")
}

fn no_more(rest: &[String], topic: Topic, command: Command) -> Result<Command, UsageError> {
    match rest.first() {
        None => Ok(command),
        Some(extra) => Err(UsageError::new(
            topic,
            format!("unexpected argument '{extra}'"),
        )),
    }
}

fn help_topic(rest: &[String]) -> Result<Command, UsageError> {
    let topic = match rest.first().map(String::as_str) {
        None => Topic::Global,
        Some("call") => Topic::Call,
        Some("hosts") => Topic::Hosts,
        Some("check") => Topic::Check,
        Some(other) => {
            return Err(UsageError::new(
                Topic::Global,
                format!("no help on '{other}': the commands are call, hosts and check"),
            ))
        }
    };
    no_more(
        rest.get(1..).unwrap_or_default(),
        topic,
        Command::Help(topic),
    )
}

fn parse_hosts(rest: &[String]) -> Result<Command, UsageError> {
    match rest.first() {
        Some(arg) if is_help(arg) => Ok(Command::Help(Topic::Hosts)),
        _ => no_more(rest, Topic::Hosts, Command::Hosts),
    }
}

fn parse_check(rest: &[String]) -> Result<Command, UsageError> {
    let mut hosts = Vec::new();
    let mut options_done = false;
    for arg in rest {
        if options_done {
            hosts.push(arg.clone());
        } else if is_help(arg) {
            return Ok(Command::Help(Topic::Check));
        } else if arg == "--" {
            options_done = true;
        } else if arg.starts_with('-') {
            return Err(UsageError::new(
                Topic::Check,
                format!("unknown option '{arg}' for check, which takes only host names"),
            ));
        } else {
            hosts.push(arg.clone());
        }
    }
    Ok(Command::Check(hosts))
}

/// `--name value` or `--name=value`, as the caller met it.
struct Flag<'a> {
    name: &'a str,
    inline: Option<&'a str>,
}

fn parse_call(rest: &[String]) -> Result<Command, UsageError> {
    let mut call = Call {
        request: ScoutRequest::default(),
        json: false,
    };
    let mut target: Option<String> = None;
    let mut args = rest.iter();
    let mut options_done = false;
    while let Some(arg) = args.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            set_target(&mut target, arg)?;
        } else if is_help(arg) {
            return Ok(Command::Help(Topic::Call));
        } else if arg == "--" {
            options_done = true;
        } else {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (arg.as_str(), None),
            };
            apply(&mut call, Flag { name, inline }, &mut args)?;
        }
    }
    call.request.target = target.unwrap_or_default();
    check_call(&call.request)?;
    Ok(Command::Call(Box::new(call)))
}

fn set_target(target: &mut Option<String>, arg: &str) -> Result<(), UsageError> {
    if let Some(first) = target {
        return Err(UsageError::new(
            Topic::Call,
            format!(
                "unexpected argument '{arg}': call takes one target (already have '{first}'); \
                 use --targets for several, and quote a --query that has spaces"
            ),
        ));
    }
    *target = Some(arg.to_string());
    Ok(())
}

/// Applies one option, taking its value from `args` when not inline.
fn apply<'a>(
    call: &mut Call,
    flag: Flag,
    args: &mut impl Iterator<Item = &'a String>,
) -> Result<(), UsageError> {
    let Some((name, value_name, _)) = CALL_OPTIONS.iter().find(|(n, ..)| *n == flag.name) else {
        return Err(UsageError::new(
            Topic::Call,
            format!("unknown option '{}' for call", flag.name),
        ));
    };
    if value_name.is_empty() {
        if flag.inline.is_some() {
            return Err(UsageError::new(
                Topic::Call,
                format!("{name} takes no value"),
            ));
        }
        return set_switch(call, name);
    }
    let value = match flag.inline {
        Some(v) => v.to_string(),
        None => args.next().cloned().ok_or_else(|| {
            UsageError::new(Topic::Call, format!("{name} needs a value ({value_name})"))
        })?,
    };
    set_value(&mut call.request, name, value)
}

fn set_switch(call: &mut Call, name: &str) -> Result<(), UsageError> {
    let switch = match name {
        "--tree" => &mut call.request.tree,
        _ => &mut call.json,
    };
    if *switch {
        return Err(twice(name));
    }
    *switch = true;
    Ok(())
}

fn set_value(req: &mut ScoutRequest, name: &str, value: String) -> Result<(), UsageError> {
    let slot = match name {
        "--query" => &mut req.query,
        "--find" => &mut req.find,
        "--diff" => &mut req.diff,
        "--diff-content" => &mut req.diff_content,
        "--beam" => &mut req.beam,
        "--beam-source" => &mut req.beam_source,
        "--beam-target" => &mut req.beam_target,
        "--depth" => return set_depth(req, &value),
        _ => return add_targets(req, &value),
    };
    if slot.is_some() {
        return Err(twice(name));
    }
    *slot = Some(value);
    Ok(())
}

fn set_depth(req: &mut ScoutRequest, value: &str) -> Result<(), UsageError> {
    if req.depth.is_some() {
        return Err(twice("--depth"));
    }
    match value.parse::<u32>() {
        Ok(depth) if DEPTH.contains(&depth) => {
            req.depth = Some(depth);
            Ok(())
        }
        _ => Err(UsageError::new(
            Topic::Call,
            format!(
                "--depth wants a whole number from {} to {}, not '{value}'",
                DEPTH.start(),
                DEPTH.end()
            ),
        )),
    }
}

fn add_targets(req: &mut ScoutRequest, value: &str) -> Result<(), UsageError> {
    let new: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if new.is_empty() {
        return Err(UsageError::new(
            Topic::Call,
            format!("--targets got no target in '{value}'; give host:/path,host:/path"),
        ));
    }
    req.targets.get_or_insert_with(Vec::new).extend(new);
    Ok(())
}

fn twice(name: &str) -> UsageError {
    UsageError::new(Topic::Call, format!("{name} given twice"))
}

/// What only the command line can get wrong; the rest (a bad target, a
/// beam without both ends) the tool itself reports, as it does over MCP.
fn check_call(req: &ScoutRequest) -> Result<(), UsageError> {
    let remote_beam = req.beam_source.is_some() || req.beam_target.is_some();
    if req.target.is_empty() && req.targets.is_none() && !remote_beam {
        return Err(UsageError::new(
            Topic::Call,
            "call needs a target: host:/path, or hosts (or --targets, or --beam-source and \
             --beam-target)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Vec<String> {
        line.iter().map(|s| s.to_string()).collect()
    }

    fn call(line: &[&str]) -> Call {
        match parse(&args(line)) {
            Ok(Command::Call(call)) => *call,
            other => panic!("{line:?}: expected a call, got {other:?}"),
        }
    }

    fn usage_error(line: &[&str]) -> UsageError {
        match parse(&args(line)) {
            Err(e) => e,
            Ok(other) => panic!("{line:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn no_arguments_serve_mcp() {
        assert!(matches!(parse(&[]), Ok(Command::Serve)));
    }

    #[test]
    fn help_and_version_in_every_spelling() {
        for (line, topic) in [
            (&["--help"][..], Topic::Global),
            (&["-h"], Topic::Global),
            (&["help"], Topic::Global),
            (&["help", "call"], Topic::Call),
            (&["help", "check"], Topic::Check),
            (&["help", "hosts"], Topic::Hosts),
            (&["call", "--help"], Topic::Call),
            (&["call", "web:/x", "-h"], Topic::Call),
            (&["hosts", "--help"], Topic::Hosts),
            (&["check", "web", "--help"], Topic::Check),
        ] {
            match parse(&args(line)) {
                Ok(Command::Help(t)) => assert_eq!(t, topic, "{line:?}"),
                other => panic!("{line:?}: {other:?}"),
            }
        }
        for line in [&["--version"][..], &["-V"], &["version"]] {
            assert!(
                matches!(parse(&args(line)), Ok(Command::Version)),
                "{line:?}"
            );
        }
    }

    #[test]
    fn a_plain_call_reads_its_target() {
        let c = call(&["call", "web1:/etc/hosts"]);
        assert_eq!(c.request.target, "web1:/etc/hosts");
        assert!(!c.json && !c.request.tree);
        assert!(c.request.query.is_none() && c.request.targets.is_none());
    }

    #[test]
    fn every_value_option_lands_in_its_field() {
        let c = call(&[
            "call",
            "--query",
            "ls -l",
            "web1:/srv",
            "--find=*.log",
            "--depth",
            "4",
            "--diff",
            "web2:/srv/a",
            "--diff-content",
            "-starts with a dash",
            "--beam",
            "/tmp/a",
            "--beam-source",
            "web1:/a",
            "--beam-target=web2:/b",
            "--tree",
            "--json",
        ]);
        let r = &c.request;
        assert_eq!(r.target, "web1:/srv");
        assert_eq!(r.query.as_deref(), Some("ls -l"));
        assert_eq!(r.find.as_deref(), Some("*.log"));
        assert_eq!(r.depth, Some(4));
        assert_eq!(r.diff.as_deref(), Some("web2:/srv/a"));
        assert_eq!(r.diff_content.as_deref(), Some("-starts with a dash"));
        assert_eq!(r.beam.as_deref(), Some("/tmp/a"));
        assert_eq!(r.beam_source.as_deref(), Some("web1:/a"));
        assert_eq!(r.beam_target.as_deref(), Some("web2:/b"));
        assert!(r.tree && c.json);
    }

    #[test]
    fn targets_are_comma_separated_repeated_or_both() {
        let c = call(&[
            "call",
            "--targets",
            "a:/x, b:/y",
            "--targets=c:/z",
            "--targets",
            "d:/w,",
            "--query",
            "uptime",
        ]);
        let expected = ["a:/x", "b:/y", "c:/z", "d:/w"].map(String::from).to_vec();
        assert_eq!(c.request.targets, Some(expected));
        assert_eq!(
            c.request.target, "",
            "no single target needed with --targets"
        );
        let e = usage_error(&["call", "--targets", " , "]);
        assert!(e.message.contains("no target"), "{}", e.message);
    }

    #[test]
    fn a_remote_beam_needs_no_target() {
        let c = call(&["call", "--beam-source", "a:/x", "--beam-target", "b:/x"]);
        assert_eq!(c.request.target, "");
    }

    #[test]
    fn a_query_may_look_like_an_option_and_a_target_may_follow_double_dash() {
        let c = call(&["call", "--query", "--version", "--", "web:/x"]);
        assert_eq!(c.request.query.as_deref(), Some("--version"));
        assert_eq!(c.request.target, "web:/x");
        let c = call(&["call", "--query=a=b", "web:/x"]);
        assert_eq!(c.request.query.as_deref(), Some("a=b"));
    }

    #[test]
    fn bad_call_lines_say_what_is_wrong() {
        for (line, expect) in [
            (&["call"][..], "needs a target"),
            (&["call", "--query", "ls"], "needs a target"),
            (&["call", "a:/x", "b:/y"], "takes one target"),
            (
                &["call", "a:/x", "--bogus"],
                "unknown option '--bogus' for call",
            ),
            (
                &["call", "a:/x", "--query"],
                "--query needs a value (COMMAND)",
            ),
            (&["call", "a:/x", "--tree=yes"], "--tree takes no value"),
            (&["call", "a:/x", "--tree", "--tree"], "--tree given twice"),
            (&["call", "a:/x", "--json", "--json"], "--json given twice"),
            (
                &["call", "a:/x", "--query", "a", "--query=b"],
                "--query given twice",
            ),
            (&["call", "a:/x", "--depth", "0"], "from 1 to 10, not '0'"),
            (&["call", "a:/x", "--depth", "11"], "not '11'"),
            (&["call", "a:/x", "--depth=two"], "not 'two'"),
            (
                &["call", "a:/x", "--depth", "2", "--depth", "3"],
                "--depth given twice",
            ),
        ] {
            let e = usage_error(line);
            assert_eq!(e.topic, Topic::Call, "{line:?}");
            assert!(e.message.contains(expect), "{line:?}: {}", e.message);
        }
    }

    #[test]
    fn bad_top_level_lines_say_what_is_wrong() {
        for (line, topic, expect) in [
            (
                &["frobnicate"][..],
                Topic::Global,
                "unknown command 'frobnicate'",
            ),
            (&["--verbose"], Topic::Global, "unknown option '--verbose'"),
            (&["help", "nope"], Topic::Global, "no help on 'nope'"),
            (
                &["--version", "x"],
                Topic::Global,
                "unexpected argument 'x'",
            ),
            (&["hosts", "web"], Topic::Hosts, "unexpected argument 'web'"),
            (&["check", "--all"], Topic::Check, "unknown option '--all'"),
        ] {
            let e = usage_error(line);
            assert_eq!(e.topic, topic, "{line:?}");
            assert!(e.message.contains(expect), "{line:?}: {}", e.message);
        }
    }

    #[test]
    fn hosts_and_check_take_what_they_should() {
        assert!(matches!(parse(&args(&["hosts"])), Ok(Command::Hosts)));
        match parse(&args(&["check"])) {
            Ok(Command::Check(h)) => assert!(h.is_empty()),
            other => panic!("{other:?}"),
        }
        match parse(&args(&["check", "web1", "db2", "--", "-odd"])) {
            Ok(Command::Check(h)) => assert_eq!(h, ["web1", "db2", "-odd"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_listed_option_is_accepted() {
        for (name, value, _) in CALL_OPTIONS {
            let mut line = vec!["call", "--targets", "a:/x", *name];
            if !value.is_empty() {
                line.push(if *name == "--depth" { "2" } else { "v" });
            }
            let c = call(&line);
            assert!(c.request.targets.is_some(), "{name}");
        }
    }
}
