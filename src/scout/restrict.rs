//! Restricted command mode (SCOUT_COMMAND_ALLOWLIST): the query is parsed
//! into words like a shell would, but nothing a shell would *do* is
//! allowed — no operators, no substitutions, no redirections — only the
//! listed programs run, and their known ways of running other programs
//! or writing files are refused.

use super::command::shell_quote;

/// Programs that exist to run other programs: listing them would make
/// the allowlist meaningless, so they are refused even when listed.
const RUNNERS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "fish", "env", "xargs", "sudo", "su", "doas", "nice",
    "nohup", "timeout", "watch", "exec", "eval", "command", "builtin", "ssh", "script",
];

/// Arguments that turn a listed program into a way out, per program.
/// An entry ending in `*` matches by prefix.
const ESCAPES: &[(&str, &[&str], &str)] = &[
    (
        "find",
        &[
            "-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint*", "-fls",
        ],
        "runs programs or writes files",
    ),
    (
        "rg",
        &["--pre", "--pre=*", "--pre-glob*"],
        "runs a preprocessor program",
    ),
    (
        "sort",
        &["-o", "-o*", "--output*", "--compress-program*"],
        "writes files or runs programs",
    ),
    ("tree", &["-o", "-o*"], "writes a file"),
    ("sed", &["-i", "-i*", "--in-place*"], "edits files in place"),
    (
        "tar",
        &[
            "--to-command*",
            "--checkpoint-action*",
            "-I",
            "--use-compress-program*",
            "-x",
            "--extract",
            "-c",
            "--create",
        ],
        "runs programs or writes files",
    ),
    (
        "git",
        &["-c", "--exec-path*", "--config-env*"],
        "can run configured programs",
    ),
    ("awk", &["-f", "--file*"], "runs a program file"),
    ("less", &["*"], "is interactive and can run commands"),
];

/// Parses `query` and checks it against `allowlist`. Returns a command
/// line where every word is single-quoted.
pub fn restricted_command(query: &str, allowlist: &[String]) -> Result<String, String> {
    let words = split_words(query)?;
    let program = words.first().ok_or("the query is empty")?;
    if program.contains('/') {
        return Err(format!(
            "restricted mode: '{program}' is a path; give a program name from SCOUT_COMMAND_ALLOWLIST"
        ));
    }
    if !allowlist.iter().any(|a| a == program) {
        return Err(format!(
            "restricted mode: '{program}' is not in SCOUT_COMMAND_ALLOWLIST ({})",
            allowlist.join(", ")
        ));
    }
    if RUNNERS.contains(&program.as_str()) {
        return Err(format!(
            "restricted mode: '{program}' runs other programs, which would bypass the allowlist"
        ));
    }
    check_escapes(program, &words[1..])?;
    if program == "awk"
        && words[1..]
            .iter()
            .any(|w| w.contains("system") || w.contains('|'))
    {
        return Err("restricted mode: awk programs may not call system() or pipes".into());
    }
    if program == "sed"
        && sed_scripts(&words[1..])
            .iter()
            .any(|w| sed_script_writes(w))
    {
        return Err("restricted mode: sed scripts may not use the w or e commands".into());
    }
    Ok(words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" "))
}

fn check_escapes(program: &str, args: &[String]) -> Result<(), String> {
    let Some((_, banned, why)) = ESCAPES.iter().find(|(p, _, _)| *p == program) else {
        return Ok(());
    };
    for arg in args {
        let hit = banned.iter().any(|b| match b.strip_suffix('*') {
            Some(prefix) => arg.starts_with(prefix),
            None => arg == b,
        });
        if hit {
            return Err(format!(
                "restricted mode: '{program} {arg}' is refused: {program} with it {why}"
            ));
        }
    }
    Ok(())
}

/// The script arguments of a sed command line: the values of `-e` /
/// `--expression`, or else the first non-option word.
fn sed_scripts(args: &[String]) -> Vec<&str> {
    let mut scripts = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "-e" || arg == "--expression" {
            scripts.extend(iter.next().map(String::as_str));
        } else if let Some(v) = arg.strip_prefix("--expression=") {
            scripts.push(v);
        } else if let Some(v) = arg.strip_prefix("-e").filter(|v| !v.is_empty()) {
            scripts.push(v);
        } else if !arg.starts_with('-') && scripts.is_empty() {
            scripts.push(arg);
            break;
        }
    }
    scripts
}

/// Whether a sed script uses `w`/`W`/`e` commands or the `w`/`e` flags of
/// `s`: they write files or run commands.
fn sed_script_writes(script: &str) -> bool {
    script.split([';', '\n']).any(|piece| {
        let mut cmd =
            piece.trim_start_matches(|c: char| c.is_ascii_digit() || " ,$!~+".contains(c));
        if let Some(rest) = cmd.strip_prefix('/') {
            cmd = rest
                .split_once('/')
                .map_or("", |(_, after)| after)
                .trim_start();
        }
        match cmd.chars().next() {
            Some('w' | 'W' | 'e') => true,
            Some('s') => {
                let delim = cmd.chars().nth(1).unwrap_or('/');
                let flags = cmd.rsplit(delim).next().unwrap_or("");
                cmd.matches(delim).count() >= 3 && (flags.contains('w') || flags.contains('e'))
            }
            _ => false,
        }
    })
}

/// Splits like a POSIX shell does for words and quotes, and refuses
/// everything else a shell would interpret.
pub fn split_words(query: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err("restricted mode: unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                double_quoted(&mut chars, &mut word)?;
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => return Err("restricted mode: trailing backslash".into()),
                    Some(ch) => word.push(ch),
                }
            }
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '`' | '$' | '\n' | '\r' => {
                return Err(format!(
                    "restricted mode: shell operator '{}' is not allowed; give one program and its arguments",
                    c.escape_default()
                ));
            }
            '*' | '?' | '[' | '{' | '~' if !in_word || word.is_empty() => {
                return Err(format!(
                    "restricted mode: '{c}' would be expanded by a shell; quote it to pass it literally"
                ));
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Inside double quotes a shell still expands `$` and backquotes: refuse
/// them rather than guess what the user meant.
fn double_quoted(chars: &mut std::str::Chars, word: &mut String) -> Result<(), String> {
    loop {
        match chars.next() {
            Some('"') => return Ok(()),
            Some('\\') => match chars.next() {
                Some(ch @ ('"' | '\\' | '$' | '`')) => word.push(ch),
                Some(ch) => {
                    word.push('\\');
                    word.push(ch);
                }
                None => return Err("restricted mode: unterminated double quote".into()),
            },
            Some('$' | '`') => {
                return Err(
                    "restricted mode: '$' and '`' expand inside double quotes; use single quotes"
                        .into(),
                )
            }
            Some(ch) => word.push(ch),
            None => return Err("restricted mode: unterminated double quote".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(list: &str) -> Vec<String> {
        list.split(',').map(str::to_string).collect()
    }

    #[test]
    fn words_are_split_like_a_shell_and_requoted() {
        assert_eq!(
            split_words(r#"grep -rn 'a b' "c d" e\ f"#).unwrap(),
            vec!["grep", "-rn", "a b", "c d", "e f"]
        );
        let cmd = restricted_command("grep -c 'x y' app.log", &allow("grep,tail")).unwrap();
        assert_eq!(cmd, "'grep' '-c' 'x y' 'app.log'");
    }

    #[test]
    fn shell_operators_and_expansions_are_refused() {
        for q in [
            "tail app.log | grep x",
            "tail app.log; rm -rf /",
            "tail app.log && reboot",
            "tail $(whoami)",
            "tail `id`",
            "tail > out",
            "tail < in",
            "tail \"$HOME\"",
            "tail *.log",
            "tail ~/x",
            "tail a\nrm b",
        ] {
            assert!(restricted_command(q, &allow("tail,grep")).is_err(), "{q:?}");
        }
        // Quoted, they are plain data.
        assert!(restricted_command("grep '$(id)' '*.log'", &allow("grep")).is_ok());
    }

    #[test]
    fn only_listed_programs_run_and_runners_never() {
        let err = restricted_command("rm -rf /", &allow("grep")).unwrap_err();
        assert!(
            err.contains("'rm' is not in SCOUT_COMMAND_ALLOWLIST"),
            "{err}"
        );
        let err = restricted_command("/bin/grep x", &allow("grep")).unwrap_err();
        assert!(err.contains("is a path"), "{err}");
        let err = restricted_command("xargs rm", &allow("xargs")).unwrap_err();
        assert!(err.contains("runs other programs"), "{err}");
    }

    #[test]
    fn known_escape_hatches_are_refused_with_the_reason() {
        for (q, list) in [
            ("find . -exec rm {} +", "find"),
            ("find . -execdir id ;", "find"),
            ("find . -delete", "find"),
            ("find . -fprintf out x", "find"),
            ("rg --pre ./evil x", "rg"),
            ("rg --pre=./evil x", "rg"),
            ("sort -o /etc/passwd x", "sort"),
            ("sort --output=/tmp/x x", "sort"),
            ("tree -o out", "tree"),
            ("sed -i s/a/b/ f", "sed"),
            ("sed 's/a/b/w out' f", "sed"),
            ("sed e f", "sed"),
            ("awk 'BEGIN{system(\"id\")}'", "awk"),
        ] {
            let err = restricted_command(q, &allow(list)).expect_err(q);
            assert!(err.contains("restricted mode"), "{q}: {err}");
        }
        assert!(restricted_command("find . -name '*.log' -maxdepth 2", &allow("find")).is_ok());
        assert!(restricted_command("sed -n 1,5p f", &allow("sed")).is_ok());
        assert!(restricted_command("sed s/a/b/g test.txt weird.log", &allow("sed")).is_ok());
        assert!(restricted_command("sed -e '/x/d' -e 's/e/w/' f", &allow("sed")).is_ok());
        assert!(restricted_command("sed '/x/w out' f", &allow("sed")).is_err());
        assert!(restricted_command("sort -n f", &allow("sort")).is_ok());
    }
}
