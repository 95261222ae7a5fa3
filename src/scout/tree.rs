//! `tree`: a directory tree of the target, shaped like the `tree` command's
//! output, from an SFTP walk (no remote process, so nothing in a path is
//! ever interpreted by a shell).

use super::walk::{self, Kind, Limits, Listing, Node, Stop, Walk};
use super::{OpError, Scout, ToolOutput};
use crate::ssh::{ErrorKind, SshError};
use std::fmt::Write;
use std::time::Instant;

/// Entries shown at most. Enough to see the shape of a project; a tree
/// larger than this is better explored with a smaller depth or a deeper
/// path, and the note says so.
pub const MAX_TREE_ENTRIES: usize = 2_000;

impl Scout {
    pub(super) fn tree(&self, host: &str, path: &str, depth: u32) -> ToolOutput {
        let timeout = self.settings.command_timeout;
        let result = self.with_session(host, |sess| {
            let start = Instant::now();
            let deadline = start + timeout;
            let stat = walk::stat_root(sess, host, path, deadline)?;
            if !stat.is_dir() {
                return Err(OpError::from(SshError::new(
                    ErrorKind::Remote,
                    format!(
                        "{host}:{path} is not a directory; tree shows directories \
                         (read the path without 'tree' to see the file)"
                    ),
                )));
            }
            let limits = Limits {
                max_depth: depth,
                max_entries: MAX_TREE_ENTRIES,
                // A quarter of the budget is kept to send what was found.
                soft_deadline: start + timeout * 3 / 4,
                deadline,
            };
            Ok(walk::walk(sess, path, limits)?)
        });
        match result {
            Ok(walk) => ToolOutput::ok(render(&format!("{host}:{path}"), &walk)),
            Err(e) => ToolOutput::error(e),
        }
    }
}

/// The walk as `tree -F` would print it, under `header`.
pub fn render(header: &str, walk: &Walk) -> String {
    let mut out = String::new();
    out.push_str(&walk::printable(header));
    if let Some(note) = listing_note(&walk.nodes[0].listing) {
        let _ = write!(out, " {note}");
    }
    out.push('\n');
    let mut counts = Counts::default();
    let mut stack: Vec<(usize, String, bool)> = Vec::new();
    // Depth-first, in name order: push children in reverse so the first
    // pops first. Each frame carries the prefix its line is drawn with.
    for (i, &c) in walk.nodes[0].children.iter().enumerate().rev() {
        let last = i + 1 == walk.nodes[0].children.len();
        stack.push((c, String::new(), last));
    }
    while let Some((index, prefix, last)) = stack.pop() {
        let node = &walk.nodes[index];
        out.push_str(&line(&prefix, last, node));
        out.push('\n');
        counts.add(node);
        let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
        let n = node.children.len();
        for (i, &c) in node.children.iter().enumerate().rev() {
            stack.push((c, child_prefix.clone(), i + 1 == n));
        }
    }
    let _ = writeln!(out, "\n{}", counts.summary());
    match walk.stopped {
        Some(Stop::EntryLimit) => {
            let _ = writeln!(
                out,
                "[tree cut at {MAX_TREE_ENTRIES} entries: directories marked [not fully listed] \
                 have more; ask for a smaller depth or a deeper path]"
            );
        }
        Some(Stop::Deadline) => {
            out.push_str(
                "[tree stopped at the time limit: directories marked [not fully listed] have more]\n",
            );
        }
        None => {}
    }
    out
}

/// One entry's line: `│   ├── name/`, `└── link -> target`, ...
pub fn line(prefix: &str, last: bool, node: &Node) -> String {
    let branch = if last { "└── " } else { "├── " };
    let name = walk::printable(&node.name);
    let mut s = format!("{prefix}{branch}{name}");
    match &node.kind {
        Kind::Dir => s.push('/'),
        Kind::Symlink(Some(target)) => {
            let _ = write!(s, " -> {}", walk::printable(target));
        }
        Kind::Symlink(None) => s.push_str(" -> [unreadable link]"),
        Kind::File => {}
    }
    if let Some(note) = listing_note(&node.listing) {
        let _ = write!(s, " {note}");
    }
    s
}

fn listing_note(listing: &Listing) -> Option<String> {
    match listing {
        Listing::NotAsked | Listing::Done => None,
        Listing::Incomplete => Some("[not fully listed]".to_string()),
        Listing::Failed(reason) => Some(format!("[{reason}]")),
    }
}

/// `tree`'s summary counts. Symlinks are counted as files whatever they
/// point to: they are not followed, so what they point to is not known.
#[derive(Default)]
struct Counts {
    dirs: usize,
    files: usize,
}

impl Counts {
    fn add(&mut self, node: &Node) {
        match node.kind {
            Kind::Dir => self.dirs += 1,
            Kind::File | Kind::Symlink(_) => self.files += 1,
        }
    }

    fn summary(&self) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{}, {}",
            plural(self.dirs, "directory", "directories"),
            plural(self.files, "file", "files")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, depth: u32, kind: Kind, children: Vec<usize>) -> Node {
        Node {
            name: name.to_string(),
            path: name.to_string(),
            depth,
            kind,
            children,
            listing: Listing::Done,
        }
    }

    #[test]
    fn lines_have_tree_prefixes_and_marks() {
        let dir = node("src", 1, Kind::Dir, vec![]);
        assert_eq!(line("", false, &dir), "├── src/");
        let link = node("loop", 2, Kind::Symlink(Some("..".into())), vec![]);
        assert_eq!(line("│   ", true, &link), "│   └── loop -> ..");
        let mut denied = node("secret", 1, Kind::Dir, vec![]);
        denied.listing = Listing::Failed("permission denied".into());
        assert_eq!(
            line("    ", true, &denied),
            "    └── secret/ [permission denied]"
        );
    }

    #[test]
    fn a_small_walk_renders_like_tree() {
        // root/{a/{x.txt, y/}, b.txt, l -> a}
        let nodes = vec![
            node("root", 0, Kind::Dir, vec![1, 2, 3]),
            node("a", 1, Kind::Dir, vec![4, 5]),
            node("b.txt", 1, Kind::File, vec![]),
            node("l", 1, Kind::Symlink(Some("a".into())), vec![]),
            node("x.txt", 2, Kind::File, vec![]),
            node("y", 2, Kind::Dir, vec![]),
        ];
        let walk = Walk {
            nodes,
            stopped: None,
        };
        let expected = [
            "h:/root",
            "├── a/",
            "│   ├── x.txt",
            "│   └── y/",
            "├── b.txt",
            "└── l -> a",
            "",
            "2 directories, 3 files",
        ];
        let text = render("h:/root", &walk);
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn an_empty_directory_and_singular_counts() {
        let walk = Walk {
            nodes: vec![node("r", 0, Kind::Dir, vec![])],
            stopped: None,
        };
        assert_eq!(render("h:/r", &walk), "h:/r\n\n0 directories, 0 files\n");
        let mut c = Counts::default();
        c.add(&node("d", 1, Kind::Dir, vec![]));
        c.add(&node("f", 1, Kind::File, vec![]));
        assert_eq!(c.summary(), "1 directory, 1 file");
    }

    #[test]
    fn a_cut_walk_says_so() {
        let mut nodes = vec![
            node("r", 0, Kind::Dir, vec![1]),
            node("d", 1, Kind::Dir, vec![]),
        ];
        nodes[1].listing = Listing::Incomplete;
        let walk = Walk {
            nodes,
            stopped: Some(Stop::EntryLimit),
        };
        let text = render("h:/r", &walk);
        assert!(text.contains("└── d/ [not fully listed]"), "{text}");
        assert!(text.contains("[tree cut at 2000 entries"), "{text}");
    }
}
