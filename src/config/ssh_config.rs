//! The subset of the OpenSSH client configuration (ssh_config(5)) that scout needs to reach a
//! host: which aliases exist and, per alias, where and as whom to connect.

use crate::config::pattern::{glob_match, has_wildcard};
use crate::config::{expand_tilde_in, home_dir, local_user, ConfigError};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::iter::Peekable;
use std::path::{Path, PathBuf};
use std::str::Chars;
use std::time::Duration;

/// OpenSSH's own limit (READCONF_MAX_DEPTH); deeper nesting is almost always a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// A parsed config: its blocks in file order with includes inlined.
#[derive(Debug, Clone)]
pub struct SshConfig {
    blocks: Vec<Block>,
    aliases: Vec<String>,
    /// Blocks that can only match particular aliases, by lowercased alias, in block order.
    /// Lets a whole inventory resolve in linear rather than quadratic time.
    by_alias: HashMap<String, Vec<usize>>,
    /// Blocks that may match any alias (wildcards, `Match`), in block order.
    generic: Vec<usize>,
    home: PathBuf,
    user: String,
}

/// Everything scout needs to connect to one alias.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    pub alias: String,
    pub hostname: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub identities_only: bool,
    pub proxy_jump: Option<String>,
    pub connect_timeout: Option<Duration>,
}

/// One condition on a block; a block applies when all of its conditions hold.
#[derive(Debug, Clone)]
enum Cond {
    Host(Vec<Pattern>),
    MatchHost {
        negate: bool,
        patterns: Vec<Pattern>,
    },
    /// A `Match` criterion scout cannot evaluate: the block is skipped.
    Never,
}

#[derive(Debug, Clone)]
struct Pattern {
    negated: bool,
    /// Lowercased, because OpenSSH compares host names case-insensitively.
    glob: String,
}

#[derive(Debug, Clone)]
struct Block {
    conds: Vec<Cond>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
enum Entry {
    HostName(String),
    Port(u16),
    User(String),
    IdentityFile(String),
    IdentitiesOnly(bool),
    /// `None` is an explicit `ProxyJump none`, which still counts as the first value.
    ProxyJump(Option<String>),
    ConnectTimeout(Option<Duration>),
}

/// The local facts that `~` and `%` tokens expand to.
#[derive(Debug, Clone)]
struct Context {
    home: PathBuf,
    user: String,
}

impl Context {
    fn current() -> Context {
        Context {
            home: home_dir(),
            user: local_user(),
        }
    }
}

impl SshConfig {
    /// Reads and parses `path`; a missing file is an empty config, as it is for ssh.
    pub fn load(path: &Path) -> Result<SshConfig, ConfigError> {
        let text = read_config(path)?.unwrap_or_default();
        SshConfig::parse(&text, path)
    }

    /// Parses `text` as if read from `origin`, which names it in errors and anchors
    /// relative `Include` paths (they resolve against `origin`'s directory).
    pub fn parse(text: &str, origin: &Path) -> Result<SshConfig, ConfigError> {
        SshConfig::parse_with(text, origin, Context::current())
    }

    fn parse_with(text: &str, origin: &Path, ctx: Context) -> Result<SshConfig, ConfigError> {
        let root = match origin.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut parser = Parser::new(root, ctx.home.clone());
        parser.parse_file(text, origin, &[], 0)?;
        Ok(parser.finish(ctx))
    }

    /// Concrete aliases (Host patterns without wildcards or negation), in file order, once each.
    pub fn aliases(&self) -> Vec<String> {
        self.aliases.clone()
    }

    /// Applies every matching block in order: first value wins, IdentityFile accumulates.
    pub fn resolve(&self, alias: &str) -> HostConfig {
        let key = alias.to_ascii_lowercase();
        let specific = self.by_alias.get(&key).map_or(&[][..], Vec::as_slice);
        let mut acc = Acc::default();
        for idx in merge_sorted(specific, &self.generic) {
            if let Some(block) = self.blocks.get(idx).filter(|b| b.matches(&key)) {
                acc.apply(&block.entries);
            }
        }
        acc.finish(alias, &self.home, &self.user)
    }
}

impl Block {
    fn matches(&self, host: &str) -> bool {
        self.conds.iter().all(|c| c.matches(host))
    }

    /// The aliases this block can match, or `None` when it may match any alias.
    fn only_aliases(&self) -> Option<Vec<&str>> {
        self.conds.iter().find_map(Cond::only_aliases)
    }
}

impl Cond {
    fn matches(&self, host: &str) -> bool {
        match self {
            Cond::Host(patterns) => list_matches(patterns, host),
            Cond::MatchHost { negate, patterns } => list_matches(patterns, host) != *negate,
            Cond::Never => false,
        }
    }

    /// Some(aliases) when this condition can only hold for those literal aliases.
    fn only_aliases(&self) -> Option<Vec<&str>> {
        let patterns = match self {
            Cond::Host(patterns) => patterns,
            Cond::MatchHost {
                negate: false,
                patterns,
            } => patterns,
            Cond::MatchHost { negate: true, .. } => return None,
            Cond::Never => return Some(Vec::new()),
        };
        let positive: Vec<&str> = patterns
            .iter()
            .filter(|p| !p.negated)
            .map(|p| p.glob.as_str())
            .collect();
        positive
            .iter()
            .all(|g| !has_wildcard(g))
            .then_some(positive)
    }
}

/// OpenSSH pattern-list semantics: a negated match vetoes, otherwise any positive match wins.
fn list_matches(patterns: &[Pattern], host: &str) -> bool {
    let mut hit = false;
    for p in patterns.iter().filter(|p| glob_match(&p.glob, host)) {
        if p.negated {
            return false;
        }
        hit = true;
    }
    hit
}

fn pattern_list<'a>(items: impl Iterator<Item = &'a str>) -> Vec<Pattern> {
    items
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('!') {
            Some(rest) => Pattern {
                negated: true,
                glob: rest.to_ascii_lowercase(),
            },
            None => Pattern {
                negated: false,
                glob: s.to_ascii_lowercase(),
            },
        })
        .collect()
}

/// Merges two ascending index lists, dropping duplicates.
fn merge_sorted(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x <= y => {
                i += 1;
                j += usize::from(x == y);
                x
            }
            (_, Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

/// Values gathered while walking the matching blocks; `None` = not yet obtained.
#[derive(Default)]
struct Acc {
    hostname: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity_files: Vec<String>,
    identities_only: Option<bool>,
    proxy_jump: Option<Option<String>>,
    connect_timeout: Option<Option<Duration>>,
}

impl Acc {
    fn apply(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.apply_one(entry);
        }
    }

    fn apply_one(&mut self, entry: &Entry) {
        match entry {
            Entry::HostName(v) => first(&mut self.hostname, v),
            Entry::Port(v) => first(&mut self.port, v),
            Entry::User(v) => first(&mut self.user, v),
            Entry::IdentitiesOnly(v) => first(&mut self.identities_only, v),
            Entry::ProxyJump(v) => first(&mut self.proxy_jump, v),
            Entry::ConnectTimeout(v) => first(&mut self.connect_timeout, v),
            Entry::IdentityFile(v) if v.eq_ignore_ascii_case("none") => self.identity_files.clear(),
            Entry::IdentityFile(v) => self.identity_files.push(v.clone()),
        }
    }

    fn finish(self, alias: &str, home: &Path, local_user: &str) -> HostConfig {
        let hostname = match &self.hostname {
            Some(h) => expand_tokens(h, &[('h', alias)]),
            None => alias.to_string(),
        };
        let port = self.port.unwrap_or(22);
        let user = self.user.unwrap_or_else(|| local_user.to_string());
        let home_str = home.to_string_lossy();
        let port_str = port.to_string();
        let tokens = [
            ('d', home_str.as_ref()),
            ('u', local_user),
            ('h', hostname.as_str()),
            ('r', user.as_str()),
            ('n', alias),
            ('p', port_str.as_str()),
        ];
        let identity_files = expand_identities(&self.identity_files, home, &tokens);
        HostConfig {
            alias: alias.to_string(),
            hostname,
            port,
            user,
            identity_files,
            identities_only: self.identities_only.unwrap_or(false),
            proxy_jump: self.proxy_jump.flatten(),
            connect_timeout: self.connect_timeout.flatten(),
        }
    }
}

fn first<T: Clone>(slot: &mut Option<T>, value: &T) {
    if slot.is_none() {
        *slot = Some(value.clone());
    }
}

/// Expands `~` then `%` tokens (the order ssh uses), keeping the first of any duplicates.
fn expand_identities(raw: &[String], home: &Path, tokens: &[(char, &str)]) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    raw.iter()
        .map(|r| expand_tilde_in(r, home))
        .map(|p| PathBuf::from(expand_tokens(&p.to_string_lossy(), tokens)))
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

/// Replaces `%x` tokens from `table` and `%%` with `%`; unknown tokens are kept as written.
fn expand_tokens(s: &str, table: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match table.iter().find(|(k, _)| *k == t) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

/// Reads a config file: `Ok(None)` when it does not exist, an error naming it otherwise.
fn read_config(path: &Path) -> Result<Option<String>, ConfigError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError(format!(
            "cannot read ssh config {}: {e}",
            path.display()
        ))),
    }
}

/// A line of a file, for error messages.
struct Location<'a> {
    path: &'a Path,
    line: usize,
}

impl Location<'_> {
    fn error(&self, message: impl std::fmt::Display) -> ConfigError {
        ConfigError(format!("{}:{}: {message}", self.path.display(), self.line))
    }
}

/// The block lines are currently added to. `open` is false until its first setting, and
/// again after an `Include` (whose blocks came in between, so order needs a fresh block).
struct Section {
    conds: Vec<Cond>,
    open: bool,
}

struct Parser {
    /// Base for relative `Include` paths: the top-level file's directory, as ~/.ssh is for ssh.
    root: PathBuf,
    home: PathBuf,
    blocks: Vec<Block>,
    aliases: Vec<String>,
    seen_aliases: HashSet<String>,
}

/// Where a file sits in the include tree.
struct Frame<'a> {
    outer: &'a [Cond],
    depth: usize,
}

impl Parser {
    fn new(root: PathBuf, home: PathBuf) -> Parser {
        Parser {
            root,
            home,
            blocks: Vec::new(),
            aliases: Vec::new(),
            seen_aliases: HashSet::new(),
        }
    }

    fn parse_file(
        &mut self,
        text: &str,
        path: &Path,
        outer: &[Cond],
        depth: usize,
    ) -> Result<(), ConfigError> {
        let frame = Frame { outer, depth };
        let mut section = Section {
            conds: outer.to_vec(),
            open: false,
        };
        for (n, line) in text.lines().enumerate() {
            let at = Location { path, line: n + 1 };
            if let Some((keyword, args)) = split_line(line).map_err(|m| at.error(m))? {
                self.directive(keyword, &args, &at, &frame, &mut section)?;
            }
        }
        Ok(())
    }

    fn directive(
        &mut self,
        keyword: &str,
        args: &[String],
        at: &Location,
        frame: &Frame,
        section: &mut Section,
    ) -> Result<(), ConfigError> {
        if args.first().is_none_or(String::is_empty) {
            return Err(at.error(format!("{keyword} needs a value")));
        }
        match keyword.to_ascii_lowercase().as_str() {
            "host" => *section = self.host_section(args, frame.outer),
            "match" => *section = match_section(args, at, frame.outer)?,
            "include" => self.include(args, at, frame, section)?,
            // Other keywords are valid ssh options that scout has no use for.
            other => {
                if let Some(entry) = setting(other, args).map_err(|m| at.error(m))? {
                    self.push(section, entry);
                }
            }
        }
        Ok(())
    }

    fn host_section(&mut self, args: &[String], outer: &[Cond]) -> Section {
        for arg in args {
            if !arg.is_empty() && !arg.starts_with('!') && !has_wildcard(arg) {
                self.add_alias(arg);
            }
        }
        let host = Cond::Host(pattern_list(args.iter().map(String::as_str)));
        Section {
            conds: outer.iter().cloned().chain([host]).collect(),
            open: false,
        }
    }

    fn add_alias(&mut self, alias: &str) {
        if self.seen_aliases.insert(alias.to_string()) {
            self.aliases.push(alias.to_string());
        }
    }

    fn push(&mut self, section: &mut Section, entry: Entry) {
        if !section.open {
            self.blocks.push(Block {
                conds: section.conds.clone(),
                entries: Vec::new(),
            });
            section.open = true;
        }
        if let Some(block) = self.blocks.last_mut() {
            block.entries.push(entry);
        }
    }

    /// Inlines each included file, conditional on the section the `Include` appears in.
    fn include(
        &mut self,
        args: &[String],
        at: &Location,
        frame: &Frame,
        section: &mut Section,
    ) -> Result<(), ConfigError> {
        for arg in args {
            for path in self.include_paths(arg) {
                let Some(text) = read_config(&path).map_err(|e| at.error(e))? else {
                    continue; // ssh skips includes that do not exist.
                };
                if frame.depth >= MAX_INCLUDE_DEPTH {
                    return Err(at.error(format!(
                        "Include nested more than {MAX_INCLUDE_DEPTH} deep (include loop?)"
                    )));
                }
                self.parse_file(&text, &path, &section.conds, frame.depth + 1)?;
            }
        }
        section.open = false;
        Ok(())
    }

    fn include_paths(&self, arg: &str) -> Vec<PathBuf> {
        let path = self.root.join(expand_tilde_in(arg, &self.home));
        if has_wildcard(&path.to_string_lossy()) {
            glob_paths(&path)
        } else {
            vec![path]
        }
    }

    fn finish(self, ctx: Context) -> SshConfig {
        let mut by_alias: HashMap<String, Vec<usize>> = HashMap::new();
        let mut generic = Vec::new();
        for (idx, block) in self.blocks.iter().enumerate() {
            match block.only_aliases() {
                Some(aliases) => index_block(&mut by_alias, aliases, idx),
                None => generic.push(idx),
            }
        }
        SshConfig {
            blocks: self.blocks,
            aliases: self.aliases,
            by_alias,
            generic,
            home: ctx.home,
            user: ctx.user,
        }
    }
}

fn index_block(by_alias: &mut HashMap<String, Vec<usize>>, aliases: Vec<&str>, idx: usize) {
    for alias in aliases {
        let list = by_alias.entry(alias.to_string()).or_default();
        // `Host a a` names the block twice; it must still apply once.
        if list.last() != Some(&idx) {
            list.push(idx);
        }
    }
}

fn match_section(args: &[String], at: &Location, outer: &[Cond]) -> Result<Section, ConfigError> {
    let conds = match_conds(args, at)?;
    Ok(Section {
        conds: outer.iter().cloned().chain(conds).collect(),
        open: false,
    })
}

/// `Match all` and `Match [!]host|originalhost list` (tested against the alias); any other
/// criterion makes the block never apply, since guessing could connect somewhere unintended.
fn match_conds(args: &[String], at: &Location) -> Result<Vec<Cond>, ConfigError> {
    let mut conds = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (negate, name) = match arg.strip_prefix('!') {
            Some(name) => (true, name),
            None => (false, arg.as_str()),
        };
        match name.to_ascii_lowercase().as_str() {
            "all" if negate => conds.push(Cond::Never),
            "all" => {}
            "host" | "originalhost" => {
                let list = rest
                    .next()
                    .ok_or_else(|| at.error(format!("Match {name} needs a pattern list")))?;
                let patterns = pattern_list(list.split(','));
                conds.push(Cond::MatchHost { negate, patterns });
            }
            _ => {
                log::warn!(
                    "{}:{}: Match criterion {arg:?} is not supported; skipping this block",
                    at.path.display(),
                    at.line
                );
                return Ok(vec![Cond::Never]);
            }
        }
    }
    Ok(conds)
}

/// Parses the settings scout uses; `Ok(None)` for every other keyword.
fn setting(keyword: &str, args: &[String]) -> Result<Option<Entry>, String> {
    let entry = match keyword {
        "hostname" => Entry::HostName(single("HostName", args)?.to_string()),
        "port" => Entry::Port(parse_port(single("Port", args)?)?),
        "user" => Entry::User(single("User", args)?.to_string()),
        "identityfile" => Entry::IdentityFile(single("IdentityFile", args)?.to_string()),
        "identitiesonly" => Entry::IdentitiesOnly(parse_yes_no(single("IdentitiesOnly", args)?)?),
        "proxyjump" => Entry::ProxyJump(parse_proxy_jump(single("ProxyJump", args)?)),
        "connecttimeout" => Entry::ConnectTimeout(parse_timeout(single("ConnectTimeout", args)?)?),
        _ => return Ok(None),
    };
    Ok(Some(entry))
}

fn single<'a>(keyword: &str, args: &'a [String]) -> Result<&'a str, String> {
    match args {
        [value] => Ok(value),
        _ => Err(format!(
            "{keyword} takes one value, got {} (quote values that contain spaces)",
            args.len()
        )),
    }
}

fn parse_port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "bad Port {value:?}: expected a number from 1 to 65535"
        )),
    }
}

fn parse_yes_no(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("bad IdentitiesOnly {value:?}: expected yes or no")),
    }
}

fn parse_proxy_jump(value: &str) -> Option<String> {
    (!value.eq_ignore_ascii_case("none")).then(|| value.to_string())
}

/// `none` and `0` mean "no timeout", as they do for ssh.
fn parse_timeout(value: &str) -> Result<Option<Duration>, String> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match parse_time(value) {
        Some(0) => Ok(None),
        Some(secs) => Ok(Some(Duration::from_secs(secs))),
        None => Err(format!(
            "bad ConnectTimeout {value:?}: expected seconds, or a time like 1m30s"
        )),
    }
}

/// ssh's time format: a sequence of numbers, each with an optional s/m/h/d/w unit.
fn parse_time(value: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in value.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(number.unwrap_or(0).checked_mul(10)?.checked_add(d.into())?);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    if value.is_empty() {
        return None;
    }
    total.checked_add(number.unwrap_or(0))
}

/// Splits a line into keyword and arguments; `None` for blank and comment lines.
/// Accepts `Keyword value`, `Keyword=value` and `Keyword = value`, as ssh does.
fn split_line(line: &str) -> Result<Option<(&str, Vec<String>)>, String> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    if keyword.is_empty() {
        return Err("missing keyword before '='".to_string());
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    Ok(Some((keyword, tokenize(rest)?)))
}

/// Splits arguments like ssh's argv_split: quotes group, backslash escapes quotes, backslash
/// and (unquoted) space, and an unquoted `#` at the start of an argument ends the line.
fn tokenize(s: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(args),
            Some(_) => args.push(token(&mut chars)?),
        }
    }
}

fn token(chars: &mut Peekable<Chars>) -> Result<String, String> {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next_if(|c| quote.is_some() || !c.is_whitespace()) {
        match c {
            '\\' => match chars.next_if(|&n| escapable(n, quote)) {
                Some(n) => out.push(n),
                None => out.push('\\'),
            },
            '"' | '\'' if quote.is_none() => quote = Some(c),
            c if quote == Some(c) => quote = None,
            c => out.push(c),
        }
    }
    match quote {
        Some(q) => Err(format!("unterminated {q} quote")),
        None => Ok(out),
    }
}

fn escapable(c: char, quote: Option<char>) -> bool {
    matches!(c, '\\' | '"' | '\'') || (c == ' ' && quote.is_none())
}

/// Expands wildcards in any component of `path` by listing directories, like glob(3):
/// sorted, and a wildcard does not match a leading `.` unless the pattern starts with one.
fn glob_paths(path: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for component in path.components() {
        let part = component.as_os_str().to_string_lossy();
        found = if has_wildcard(&part) {
            found
                .iter()
                .flat_map(|dir| dir_matches(dir, &part))
                .collect()
        } else {
            found.into_iter().map(|p| p.join(component)).collect()
        };
    }
    found.retain(|p| !p.is_dir());
    found.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    found
}

fn dir_matches(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let listing = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    // An unreadable directory matches nothing, as with glob(3) without GLOB_ERR.
    let Ok(entries) = fs::read_dir(listing) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|name| {
            let name = name.to_string_lossy();
            (pattern.starts_with('.') || !name.starts_with('.')) && glob_match(pattern, &name)
        })
        .map(|name| dir.join(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    const ORIGIN: &str = "/nonexistent/scout-test/config";

    fn ctx() -> Context {
        Context {
            home: PathBuf::from("/home/me"),
            user: "me".to_string(),
        }
    }

    fn parse(text: &str) -> SshConfig {
        SshConfig::parse_with(text, Path::new(ORIGIN), ctx()).unwrap()
    }

    fn parse_err(text: &str) -> String {
        SshConfig::parse_with(text, Path::new(ORIGIN), ctx())
            .unwrap_err()
            .to_string()
    }

    fn paths(items: &[&str]) -> Vec<PathBuf> {
        items.iter().map(PathBuf::from).collect()
    }

    /// A scratch directory removed on drop, unique per test and process.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("scout-config-{}-{n}-{name}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            path
        }

        fn load(&self, rel: &str) -> Result<SshConfig, ConfigError> {
            let path = self.0.join(rel);
            let text = read_config(&path)?.unwrap_or_default();
            SshConfig::parse_with(&text, &path, ctx())
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn defaults_for_an_unknown_alias() {
        let host = parse("").resolve("box");
        assert_eq!(
            host,
            HostConfig {
                alias: "box".into(),
                hostname: "box".into(),
                port: 22,
                user: "me".into(),
                identity_files: vec![],
                identities_only: false,
                proxy_jump: None,
                connect_timeout: None,
            }
        );
    }

    #[test]
    fn default_user_is_the_local_user() {
        let config = SshConfig::parse("", Path::new(ORIGIN)).unwrap();
        assert_eq!(config.resolve("x").user, local_user());
    }

    #[test]
    fn every_setting_is_read() {
        let config = parse(
            "Host web1\n  HostName 10.0.0.5\n  Port 2200\n  User deploy\n  IdentityFile /k/id\n  \
             IdentitiesOnly yes\n  ProxyJump bastion\n  ConnectTimeout 7\n",
        );
        let host = config.resolve("web1");
        assert_eq!(host.hostname, "10.0.0.5");
        assert_eq!(host.port, 2200);
        assert_eq!(host.user, "deploy");
        assert_eq!(host.identity_files, paths(&["/k/id"]));
        assert!(host.identities_only);
        assert_eq!(host.proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(host.connect_timeout, Some(Duration::from_secs(7)));
    }

    #[test]
    fn all_aliases_on_a_host_line() {
        let config = parse("Host a b\n  User x\nHost c\n  User y\n");
        assert_eq!(config.aliases(), vec!["a", "b", "c"]);
        assert_eq!(config.resolve("a").user, "x");
        assert_eq!(config.resolve("b").user, "x");
        assert_eq!(config.resolve("c").user, "y");
    }

    #[test]
    fn aliases_skip_patterns_and_duplicates() {
        let config = parse("Host web? *.lan !bad db\nHost db api\nHost * !x\nHost api\n");
        assert_eq!(config.aliases(), vec!["db", "api"]);
    }

    #[test]
    fn wildcard_block_at_the_end_gives_defaults() {
        let config = parse("Host web\n  Port 2222\nHost *\n  User admin\n  Port 22\n");
        let web = config.resolve("web");
        assert_eq!((web.user.as_str(), web.port), ("admin", 2222));
        let other = config.resolve("other");
        assert_eq!((other.user.as_str(), other.port), ("admin", 22));
    }

    #[test]
    fn settings_before_the_first_host_apply_to_all() {
        let config = parse("User global\nHost a\n  User a-user\n");
        assert_eq!(config.resolve("a").user, "global");
        assert_eq!(config.resolve("b").user, "global");
    }

    #[test]
    fn negation_excludes_a_host() {
        let config = parse("Host bastion\n  User jump\nHost * !bastion\n  ProxyJump bastion\n");
        assert_eq!(config.resolve("web").proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(config.resolve("bastion").proxy_jump, None);
    }

    #[test]
    fn negation_only_never_matches() {
        let config = parse("Host !a\n  User nobody-sees-this\n");
        assert_eq!(config.resolve("b").user, "me");
    }

    #[test]
    fn first_value_wins() {
        let config = parse(
            "Host web\n  User first\n  User second\n  HostName one\nHost web\n  HostName two\n  \
             Port 1\nHost *\n  Port 2\n",
        );
        let web = config.resolve("web");
        assert_eq!(web.user, "first");
        assert_eq!(web.hostname, "one");
        assert_eq!(web.port, 1);
    }

    #[test]
    fn explicit_none_still_wins_first() {
        let config = parse(
            "Host a\n  ProxyJump none\n  ConnectTimeout none\nHost *\n  ProxyJump j\n  \
             ConnectTimeout 5\n",
        );
        assert_eq!(config.resolve("a").proxy_jump, None);
        assert_eq!(config.resolve("a").connect_timeout, None);
        assert_eq!(config.resolve("b").proxy_jump.as_deref(), Some("j"));
        assert_eq!(
            config.resolve("b").connect_timeout,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn host_matching_ignores_case() {
        let config = parse("HOST Web\n  USER x\nhost DB*\n  user y\n");
        assert_eq!(config.aliases(), vec!["Web"]);
        assert_eq!(config.resolve("Web").user, "x");
        assert_eq!(config.resolve("web").user, "x");
        assert_eq!(config.resolve("db1").user, "y");
    }

    #[test]
    fn hostname_expands_percent_h() {
        let config = parse("Host web db\n  HostName %h.example.com\nHost odd\n  HostName 100%%\n");
        assert_eq!(config.resolve("web").hostname, "web.example.com");
        assert_eq!(config.resolve("db").hostname, "db.example.com");
        assert_eq!(config.resolve("odd").hostname, "100%");
    }

    #[test]
    fn identity_files_accumulate_in_order_without_duplicates() {
        let config = parse(
            "Host web\n  IdentityFile ~/.ssh/web\n  IdentityFile /keys/shared\nHost *\n  \
             IdentityFile /keys/shared\n  IdentityFile %d/.ssh/web\n  IdentityFile ~/.ssh/id_ed25519\n",
        );
        assert_eq!(
            config.resolve("web").identity_files,
            paths(&[
                "/home/me/.ssh/web",
                "/keys/shared",
                "/home/me/.ssh/id_ed25519"
            ])
        );
    }

    #[test]
    fn identity_file_tokens() {
        let config = parse(
            "Host web\n  HostName web.lan\n  User deploy\n  Port 2022\n  \
             IdentityFile /k/%u-%r@%h:%p-%n-100%%-%z\n  IdentityFile %d/x\n",
        );
        assert_eq!(
            config.resolve("web").identity_files,
            paths(&["/k/me-deploy@web.lan:2022-web-100%-%z", "/home/me/x"])
        );
    }

    #[test]
    fn identity_file_none_clears() {
        let config =
            parse("Host *\n  IdentityFile /a\nHost *\n  IdentityFile none\n  IdentityFile /b\n");
        assert_eq!(config.resolve("x").identity_files, paths(&["/b"]));
    }

    #[test]
    fn quoted_values() {
        let config = parse(
            "Host web\n  IdentityFile \"/keys/my key\"\n  User 'o p'\n  HostName \"a\\\"b\"\n",
        );
        let web = config.resolve("web");
        assert_eq!(web.identity_files, paths(&["/keys/my key"]));
        assert_eq!(web.user, "o p");
        assert_eq!(web.hostname, "a\"b");
    }

    #[test]
    fn quoted_host_patterns() {
        let config = parse("Host \"a\" b\n  User q\n");
        assert_eq!(config.aliases(), vec!["a", "b"]);
        assert_eq!(config.resolve("a").user, "q");
    }

    #[test]
    fn equals_syntax() {
        let config = parse("Host=web\nPort=2201\nUser = ops\n  HostName =h\nIdentityFile= /k\n");
        let web = config.resolve("web");
        assert_eq!(web.port, 2201);
        assert_eq!(web.user, "ops");
        assert_eq!(web.hostname, "h");
        assert_eq!(web.identity_files, paths(&["/k"]));
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let config = parse(
            "# top comment\r\n\r\n   \r\nHost web # trailing\r\n\t# indented comment\r\n  \
             User ops # why\r\n",
        );
        assert_eq!(config.aliases(), vec!["web"]);
        assert_eq!(config.resolve("web").user, "ops");
    }

    #[test]
    fn unknown_keywords_are_ignored() {
        let config = parse("Host web\n  ForwardAgent yes\n  SendEnv LANG LC_*\n  User ops\n");
        assert_eq!(config.resolve("web").user, "ops");
    }

    #[test]
    fn keyword_without_value_is_an_error() {
        let err = parse_err("Host web\n  User\n");
        assert_eq!(err, format!("{ORIGIN}:2: User needs a value"));
        assert!(parse_err("Host\n").starts_with(&format!("{ORIGIN}:1: ")));
        assert!(parse_err("Frobnicate =\n").starts_with(&format!("{ORIGIN}:1: ")));
        assert!(parse_err("Port \"\"\n").starts_with(&format!("{ORIGIN}:1: ")));
    }

    #[test]
    fn bad_port_names_file_and_line() {
        for bad in ["0", "65536", "abc", "-1", "22x"] {
            let err = parse_err(&format!("Host web\n\n  Port {bad}\n"));
            assert_eq!(
                err,
                format!("{ORIGIN}:3: bad Port \"{bad}\": expected a number from 1 to 65535")
            );
        }
        assert_eq!(parse("Port 65535\n").resolve("x").port, 65535);
    }

    #[test]
    fn other_bad_values() {
        assert!(parse_err("IdentitiesOnly maybe\n").contains(":1: bad IdentitiesOnly \"maybe\""));
        assert!(parse_err("ConnectTimeout 5x\n").contains(":1: bad ConnectTimeout \"5x\""));
        assert!(parse_err("User a b\n").contains(":1: User takes one value, got 2"));
        assert!(parse_err("User \"open\n").contains(":1: unterminated \" quote"));
        assert!(parse_err("=x\n").contains(":1: missing keyword"));
    }

    #[test]
    fn identities_only_values() {
        for (v, want) in [("yes", true), ("YES", true), ("true", true), ("no", false)] {
            let config = parse(&format!("IdentitiesOnly {v}\n"));
            assert_eq!(config.resolve("x").identities_only, want, "{v}");
        }
    }

    #[test]
    fn connect_timeout_formats() {
        let timeout = |v: &str| {
            parse(&format!("ConnectTimeout {v}\n"))
                .resolve("x")
                .connect_timeout
        };
        assert_eq!(timeout("10"), Some(Duration::from_secs(10)));
        assert_eq!(timeout("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout("0"), None);
        assert_eq!(timeout("NONE"), None);
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("m"), None);
        assert_eq!(parse_time("99999999999999999999"), None);
    }

    #[test]
    fn proxy_jump_none_is_none() {
        assert_eq!(parse("ProxyJump none\n").resolve("x").proxy_jump, None);
        assert_eq!(
            parse("ProxyJump a@j1:22,j2\n")
                .resolve("x")
                .proxy_jump
                .as_deref(),
            Some("a@j1:22,j2")
        );
    }

    #[test]
    fn match_all_applies_everywhere() {
        let config = parse("Host web\n  Port 1\nMatch all\n  User everyone\n");
        assert_eq!(config.resolve("web").user, "everyone");
        assert_eq!(config.resolve("db").user, "everyone");
        assert_eq!(config.resolve("web").port, 1);
    }

    #[test]
    fn match_host_uses_the_alias() {
        let config = parse(
            "Host web1\n  HostName 10.0.0.1\nMatch host web*,!web3\n  User webber\n\
             Match !host db*\n  Port 2000\nMatch originalhost db1\n  User dba\n",
        );
        assert_eq!(config.resolve("web1").user, "webber");
        assert_eq!(config.resolve("web3").user, "me");
        assert_eq!(config.resolve("web1").port, 2000);
        assert_eq!(config.resolve("db1").port, 22);
        assert_eq!(config.resolve("db1").user, "dba");
    }

    #[test]
    fn match_with_several_criteria_needs_all() {
        let config = parse("Match host a* host *z\n  User both\n");
        assert_eq!(config.resolve("abz").user, "both");
        assert_eq!(config.resolve("ab").user, "me");
    }

    #[test]
    fn unsupported_match_skips_the_block() {
        let config = parse(
            "Match user root\n  User skipped\nMatch host a exec \"true\"\n  Port 9\nMatch !all\n  \
             Port 8\nHost a\n  User kept\n",
        );
        assert_eq!(config.resolve("a").user, "kept");
        assert_eq!(config.resolve("a").port, 22);
    }

    #[test]
    fn match_host_without_patterns_is_an_error() {
        assert!(parse_err("Match host\n").contains(":1: Match host needs a pattern list"));
    }

    #[test]
    fn include_relative_to_the_top_level_directory() {
        let dir = TempDir::new("include-relative");
        dir.write("config", "Include sub/extra\nHost *\n  User late\n");
        dir.write(
            "sub/extra",
            "Host web\n  User from-include\n  Include more\n",
        );
        // Nested relative includes still resolve against the top-level directory.
        dir.write("more", "Port 2022\n");
        let config = dir.load("config").unwrap();
        assert_eq!(config.aliases(), vec!["web"]);
        assert_eq!(config.resolve("web").user, "from-include");
        assert_eq!(config.resolve("web").port, 2022);
        assert_eq!(config.resolve("db").user, "late");
        assert_eq!(config.resolve("db").port, 22);
    }

    #[test]
    fn include_absolute_path() {
        let dir = TempDir::new("include-absolute");
        let extra = dir.write("elsewhere/extra", "Host db\n  Port 5432\n");
        dir.write("config", &format!("Include \"{}\"\n", extra.display()));
        let config = dir.load("config").unwrap();
        assert_eq!(config.resolve("db").port, 5432);
    }

    #[test]
    fn include_tilde_uses_home() {
        let config = parse("Include ~/definitely-not-here-scout/*\n");
        assert!(config.aliases().is_empty());
    }

    #[test]
    fn include_glob_is_sorted_and_skips_hidden_and_directories() {
        let dir = TempDir::new("include-glob");
        dir.write("config", "Include config.d/*\nHost *\n  User fallback\n");
        dir.write("config.d/20-b", "Host b\n  User second\nHost a\n  Port 2\n");
        dir.write("config.d/10-a", "Host a\n  User first\n  Port 1\n");
        dir.write("config.d/.hidden", "Host hidden\n");
        dir.write("config.d/subdir/ignored", "Host ignored\n");
        let config = dir.load("config").unwrap();
        assert_eq!(config.aliases(), vec!["a", "b"]);
        assert_eq!(config.resolve("a").user, "first");
        assert_eq!(config.resolve("a").port, 1);
        assert_eq!(config.resolve("b").user, "second");
    }

    #[test]
    fn include_glob_in_a_directory_component() {
        let dir = TempDir::new("include-dir-glob");
        dir.write("config", "Include hosts-*/conf\n");
        dir.write("hosts-x/conf", "Host x\n");
        dir.write("hosts-y/conf", "Host y\n");
        assert_eq!(dir.load("config").unwrap().aliases(), vec!["x", "y"]);
    }

    #[test]
    fn include_inside_a_host_block_is_conditional() {
        let dir = TempDir::new("include-in-host");
        dir.write(
            "config",
            "Host prod-*\n  Include prod.conf\n  Port 2200\nHost *\n  Port 2300\n",
        );
        dir.write(
            "prod.conf",
            "User produser\nHost *-db\n  IdentityFile /k/db\n",
        );
        let config = dir.load("config").unwrap();
        let api = config.resolve("prod-api");
        assert_eq!((api.user.as_str(), api.port), ("produser", 2200));
        assert!(api.identity_files.is_empty());
        assert_eq!(config.resolve("prod-db").identity_files, paths(&["/k/db"]));
        let dev = config.resolve("dev-db");
        assert_eq!((dev.user.as_str(), dev.port), ("me", 2300));
        assert!(dev.identity_files.is_empty());
    }

    #[test]
    fn missing_include_is_skipped() {
        let dir = TempDir::new("include-missing");
        dir.write(
            "config",
            "Include nothere also-missing/*\nHost a\n  User u\n",
        );
        let config = dir.load("config").unwrap();
        assert_eq!(config.resolve("a").user, "u");
    }

    #[test]
    fn include_loop_is_an_error() {
        let dir = TempDir::new("include-loop");
        dir.write("config", "Host a\nInclude other\n");
        let other = dir.write("other", "# comment\nInclude config\n");
        let err = dir.load("config").unwrap_err().to_string();
        assert!(err.contains("include loop"), "{err}");
        assert!(
            err.starts_with(&format!("{}:2: ", other.display()))
                || err.starts_with(&format!("{}:2: ", dir.0.join("config").display())),
            "{err}"
        );
    }

    #[test]
    fn errors_in_included_files_name_that_file() {
        let dir = TempDir::new("include-error");
        dir.write("config", "Include bad\n");
        let bad = dir.write("bad", "\n\nPort 0\n");
        let err = dir.load("config").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:3: bad Port", bad.display())),
            "{err}"
        );
    }

    #[test]
    fn load_missing_file_is_empty() {
        let dir = TempDir::new("load-missing");
        let config = SshConfig::load(&dir.0.join("nope")).unwrap();
        assert!(config.aliases().is_empty());
    }

    #[test]
    fn load_unreadable_names_the_path() {
        let dir = TempDir::new("load-unreadable");
        let err = SshConfig::load(&dir.0).unwrap_err().to_string();
        assert!(err.contains(&dir.0.display().to_string()), "{err}");
    }

    #[test]
    fn load_reads_a_file() {
        let dir = TempDir::new("load");
        let path = dir.write("config", "Host real\n  Port 2\n");
        let config = SshConfig::load(&path).unwrap();
        assert_eq!(config.aliases(), vec!["real"]);
        assert_eq!(config.resolve("real").port, 2);
    }

    #[test]
    fn indexed_and_generic_blocks_keep_file_order() {
        let config = parse(
            "Host *\n  User star\nHost a\n  User a\n  Port 1\nHost a*\n  Port 2\nHost a a\n  \
             IdentityFile /once\n",
        );
        let a = config.resolve("a");
        assert_eq!((a.user.as_str(), a.port), ("star", 1));
        assert_eq!(a.identity_files, paths(&["/once"]));
    }

    #[test]
    fn merge_sorted_interleaves() {
        assert_eq!(
            merge_sorted(&[1, 4, 6], &[0, 4, 5, 9]),
            vec![0, 1, 4, 5, 6, 9]
        );
        assert_eq!(merge_sorted(&[], &[2]), vec![2]);
        assert_eq!(merge_sorted(&[3], &[]), vec![3]);
    }

    #[test]
    fn tokenizer_rules() {
        let t = |s: &str| tokenize(s).unwrap();
        assert_eq!(t("a  b\tc"), vec!["a", "b", "c"]);
        assert_eq!(t("\"a b\" c"), vec!["a b", "c"]);
        assert_eq!(t("a\\ b"), vec!["a b"]);
        assert_eq!(t("x\"y z\""), vec!["xy z"]);
        assert_eq!(t("a#b # c"), vec!["a#b"]);
        assert_eq!(t("\"#x\""), vec!["#x"]);
        assert_eq!(t("c:\\dir"), vec!["c:\\dir"]);
        assert_eq!(t(""), Vec::<String>::new());
    }

    #[test]
    fn ten_thousand_blocks_parse_and_resolve_quickly() {
        let mut text = String::new();
        for i in 0..10_000 {
            text.push_str(&format!(
                "Host host{i} alt{i}\n  HostName 10.0.{}.{}\n  User u{i}\n  IdentityFile ~/.ssh/k{i}\n",
                i / 256,
                i % 256
            ));
        }
        text.push_str("Host *\n  Port 2222\n  IdentityFile ~/.ssh/default\n");
        let start = Instant::now();
        let config = parse(&text);
        let parsed = start.elapsed();
        let aliases = config.aliases();
        let resolved: Vec<HostConfig> = aliases.iter().map(|a| config.resolve(a)).collect();
        let total = start.elapsed();
        assert_eq!(aliases.len(), 20_000);
        assert_eq!(resolved[19_999].hostname, "10.0.39.15");
        assert_eq!(resolved[19_999].port, 2222);
        assert_eq!(resolved[19_999].identity_files.len(), 2);
        // Generous bounds: debug builds are ~10x slower than the release target of < 100 ms.
        assert!(parsed < Duration::from_secs(2), "parse took {parsed:?}");
        assert!(
            total < Duration::from_secs(4),
            "parse + resolve took {total:?}"
        );
    }
}
