//! The tree and find modes against a real sshd: shape of the output,
//! depth and entry limits, symlink loops, errors, and patterns as data.

mod support;

use serde_json::json;
use std::path::Path;
use support::{Fleet, Scout};

fn target(fleet: &Fleet, path: &Path) -> String {
    format!("{}:{}", fleet.alias(0), path.display())
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// data/proj: README.md, docs/, link -> src, src/{lib/a.rs, main.rs}
fn small_project(fleet: &Fleet) -> std::path::PathBuf {
    fleet.write_file("proj/README.md", b"# hi\n");
    fleet.mkdir("proj/docs");
    fleet.write_file("proj/src/main.rs", b"fn main() {}\n");
    fleet.write_file("proj/src/lib/a.rs", b"\n");
    let proj = fleet.data_dir().join("proj");
    std::os::unix::fs::symlink("src", proj.join("link")).expect("symlink");
    proj
}

#[test]
fn tree_draws_a_nested_structure_like_the_tree_command() {
    let fleet = Fleet::start(1);
    let proj = small_project(&fleet);
    let mut scout = Scout::spawn(&fleet);
    let header = target(&fleet, &proj);
    let result = scout.call(json!({"target": header, "tree": true}));
    assert!(!result.is_error, "{}", result.text);
    let expected = [
        header.as_str(),
        "├── README.md",
        "├── docs/",
        "├── link -> src",
        "└── src/",
        "    ├── lib/",
        "    │   └── a.rs",
        "    └── main.rs",
        "",
        "3 directories, 4 files",
    ];
    assert_eq!(lines(&result.text), expected);
}

#[test]
fn tree_stops_at_the_requested_depth() {
    let fleet = Fleet::start(1);
    let proj = small_project(&fleet);
    let mut scout = Scout::spawn(&fleet);
    let header = target(&fleet, &proj);
    let result = scout.call(json!({"target": header, "tree": true, "depth": 1}));
    assert!(!result.is_error, "{}", result.text);
    let expected = [
        header.as_str(),
        "├── README.md",
        "├── docs/",
        "├── link -> src",
        "└── src/",
        "",
        "2 directories, 2 files",
    ];
    assert_eq!(lines(&result.text), expected);
    let result = scout.call(json!({"target": header, "tree": true, "depth": 2}));
    assert!(
        result.text.contains("    ├── lib/\n    └── main.rs\n"),
        "{}",
        result.text
    );
    assert!(!result.text.contains("a.rs"), "{}", result.text);
}

#[test]
fn tree_cuts_a_large_tree_at_the_entry_limit_and_says_where() {
    let fleet = Fleet::start(1);
    fleet.write_file("big/a/x.txt", b"x");
    let many = fleet.mkdir("big/many");
    for i in 0..2_100 {
        std::fs::write(many.join(format!("f{i:04}")), b"").expect("write");
    }
    let mut scout = Scout::spawn(&fleet);
    let header = target(&fleet, &fleet.data_dir().join("big"));
    let result = scout.call(json!({"target": header, "tree": true}));
    assert!(!result.is_error, "{}", result.text);
    let text = &result.text;
    // Breadth-first: the top level and a/ are complete, many/ is cut.
    assert!(text.contains("├── a/\n│   └── x.txt\n"), "{}", &text[..300]);
    assert!(
        text.contains("└── many/ [not fully listed]\n"),
        "{}",
        &text[..300]
    );
    let shown = text.lines().filter(|l| l.contains("── f")).count();
    assert_eq!(shown, 2_000 - 3, "2,000 entries in all: a/, x.txt, many/");
    assert!(
        text.ends_with(
            "\n2 directories, 1998 files\n[tree cut at 2000 entries: directories marked \
             [not fully listed] have more; ask for a smaller depth or a deeper path]\n"
        ),
        "{}",
        support::tail(text, 300)
    );
}

#[test]
fn a_symlink_loop_is_shown_but_never_followed() {
    let fleet = Fleet::start(1);
    fleet.write_file("looped/dir/file.txt", b"x");
    let root = fleet.data_dir().join("looped");
    std::os::unix::fs::symlink("..", root.join("dir/loop")).expect("symlink");
    let mut scout = Scout::spawn(&fleet);
    let header = target(&fleet, &root);
    let result = scout.call(json!({"target": header, "tree": true, "depth": 10}));
    assert!(!result.is_error, "{}", result.text);
    let expected = [
        header.as_str(),
        "└── dir/",
        "    ├── file.txt",
        "    └── loop -> ..",
        "",
        "1 directory, 2 files",
    ];
    assert_eq!(lines(&result.text), expected);
    // find does not follow it either: one match, not one per trip round the loop.
    let result = scout.call(json!({"target": header, "find": "file.txt", "depth": 10}));
    assert_eq!(result.text, format!("{}/dir/file.txt", root.display()));
}

#[test]
fn an_unreadable_directory_is_marked_and_the_walk_goes_on() {
    let fleet = Fleet::start(1);
    if fleet.remote_user() == "root" {
        return; // root reads everything; nothing to deny
    }
    fleet.write_file("locked/secret/hidden.txt", b"x");
    fleet.write_file("locked/z/open.txt", b"x");
    let root = fleet.data_dir().join("locked");
    std::fs::set_permissions(
        root.join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .expect("chmod");
    let mut scout = Scout::spawn(&fleet);
    let header = target(&fleet, &root);
    let result = scout.call(json!({"target": header, "tree": true}));
    assert!(!result.is_error, "{}", result.text);
    let expected = [
        header.as_str(),
        "├── secret/ [permission denied]",
        "└── z/",
        "    └── open.txt",
        "",
        "2 directories, 1 file",
    ];
    assert_eq!(lines(&result.text), expected);
    let result = scout.call(json!({"target": header, "find": "*.txt"}));
    assert!(!result.is_error, "{}", result.text);
    let text_lines = lines(&result.text);
    assert_eq!(text_lines[0], format!("{}/z/open.txt", root.display()));
    assert!(
        text_lines[1].starts_with("[find reported 1 problem, e.g. ")
            && text_lines[1].contains("secret"),
        "{}",
        result.text
    );
}

#[test]
fn tree_refuses_a_file_and_a_missing_path_naming_host_and_path() {
    let fleet = Fleet::start(1);
    let file = fleet.write_file("plain.txt", b"x");
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let result = scout.call(json!({"target": target(&fleet, &file), "tree": true}));
    assert!(result.is_error);
    assert!(
        result.text.starts_with(&format!(
            "Error: {host}:{} is not a directory",
            file.display()
        )),
        "{}",
        result.text
    );
    let result = scout.call(json!({"target": format!("{host}:/no/such/dir"), "tree": true}));
    assert!(result.is_error);
    assert_eq!(
        result.text,
        format!("Error: Path not found: {host}:/no/such/dir")
    );
}

/// data/logs: a.log, d1/b.log, d1/d2/c.log, d1/d2/d3/d.log, and .txt files beside them.
fn log_tree(fleet: &Fleet) -> std::path::PathBuf {
    for rel in [
        "logs/a.log",
        "logs/a.txt",
        "logs/d1/b.log",
        "logs/d1/d2/c.log",
        "logs/d1/d2/c.log.1",
        "logs/d1/d2/d3/d.log",
    ] {
        fleet.write_file(rel, b"x");
    }
    fleet.data_dir().join("logs")
}

#[test]
fn find_matches_names_at_every_depth_sorted_one_path_per_line() {
    let fleet = Fleet::start(1);
    let root = log_tree(&fleet);
    let mut scout = Scout::spawn(&fleet);
    let result = scout.call(json!({"target": target(&fleet, &root), "find": "*.log"}));
    assert!(!result.is_error, "{}", result.text);
    let r = root.display();
    let expected = [
        format!("{r}/a.log"),
        format!("{r}/d1/b.log"),
        format!("{r}/d1/d2/c.log"),
        format!("{r}/d1/d2/d3/d.log"),
    ];
    assert_eq!(lines(&result.text), expected);
    // find's own glob: character classes work.
    let result = scout.call(json!({"target": target(&fleet, &root), "find": "[ab].*"}));
    assert_eq!(
        lines(&result.text),
        [
            format!("{r}/a.log"),
            format!("{r}/a.txt"),
            format!("{r}/d1/b.log")
        ]
    );
}

#[test]
fn find_depth_excludes_deeper_matches() {
    let fleet = Fleet::start(1);
    let root = log_tree(&fleet);
    let mut scout = Scout::spawn(&fleet);
    let r = root.display();
    let result = scout.call(json!({"target": target(&fleet, &root), "find": "*.log", "depth": 2}));
    assert!(!result.is_error, "{}", result.text);
    assert_eq!(
        lines(&result.text),
        [format!("{r}/a.log"), format!("{r}/d1/b.log")]
    );
    let result = scout.call(json!({"target": target(&fleet, &root), "find": "*.log", "depth": 1}));
    assert_eq!(result.text, format!("{r}/a.log")); // A file target is checked itself, as `find FILE -name P` does.
    let file = root.join("a.log");
    let result = scout.call(json!({"target": target(&fleet, &file), "find": "*.log"}));
    assert_eq!(result.text, format!("{r}/a.log"));
    let result = scout.call(json!({"target": target(&fleet, &file), "find": "*.txt"}));
    assert_eq!(
        result.text,
        format!("No files matching '*.txt' found in {r}/a.log")
    );
}

#[test]
fn find_with_no_match_says_so_plainly() {
    let fleet = Fleet::start(1);
    let root = log_tree(&fleet);
    let mut scout = Scout::spawn(&fleet);
    let result = scout.call(json!({"target": target(&fleet, &root), "find": "*.gz"}));
    assert!(!result.is_error, "{}", result.text);
    assert_eq!(
        result.text,
        format!("No files matching '*.gz' found in {}", root.display())
    );
}

#[test]
fn find_caps_results_with_a_note() {
    let fleet = Fleet::start(1);
    let dir = fleet.mkdir("lots");
    for i in 0..150 {
        std::fs::write(dir.join(format!("f{i:03}.log")), b"").expect("write");
    }
    let mut scout = Scout::spawn(&fleet);
    let result = scout.call(json!({"target": target(&fleet, &dir), "find": "*.log"}));
    assert!(!result.is_error, "{}", result.text);
    let text_lines = lines(&result.text);
    assert_eq!(text_lines.len(), 101, "{}", result.text);
    let mut paths = text_lines[..100].to_vec();
    assert!(paths.iter().all(|p| p.ends_with(".log")));
    paths.sort();
    assert_eq!(paths, text_lines[..100], "results are sorted");
    assert_eq!(
        text_lines[100],
        "[results cut at 100 matches: narrow the pattern, the depth or the path]"
    );
}

#[test]
fn find_on_a_missing_path_names_host_and_path() {
    let fleet = Fleet::start(1);
    let mut scout = Scout::spawn(&fleet);
    let host = fleet.alias(0);
    let result = scout.call(json!({"target": format!("{host}:/no/such/dir"), "find": "*.log"}));
    assert!(result.is_error);
    assert_eq!(
        result.text,
        format!("Error: Path not found: {host}:/no/such/dir")
    );
}

/// The remote user's home directory, where a remote command starts.
fn remote_home(fleet: &Fleet) -> std::path::PathBuf {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let user = fleet.remote_user();
    let line = passwd
        .lines()
        .find(|l| l.split(':').next() == Some(user.as_str()))
        .expect("the remote user in /etc/passwd");
    std::path::PathBuf::from(line.split(':').nth(5).expect("a home field"))
}

#[test]
fn shell_metacharacters_in_a_pattern_are_data() {
    let fleet = Fleet::start(1);
    let dir = fleet.mkdir("meta");
    let odd = fleet.write_file("meta/$(touch X)odd", b"x");
    fleet.write_file("meta/plain", b"x");
    let home = remote_home(&fleet);
    let planted = [home.join("X"), dir.join("X")];
    for p in &planted {
        let _ = std::fs::remove_file(p);
    }
    let mut scout = Scout::spawn(&fleet);
    let result = scout.call(json!({"target": target(&fleet, &dir), "find": "$(touch X)*"}));
    assert!(!result.is_error, "{}", result.text);
    assert_eq!(result.text, odd.display().to_string());
    let result = scout.call(json!({"target": target(&fleet, &dir), "find": "'; touch X; echo '"}));
    assert_eq!(
        result.text,
        format!(
            "No files matching ''; touch X; echo '' found in {}",
            dir.display()
        )
    );
    for p in &planted {
        assert!(!p.exists(), "{} was created: the pattern ran", p.display());
    }
}

#[test]
fn a_path_is_data_for_tree_and_find_too() {
    let fleet = Fleet::start(1);
    fleet.write_file("$(touch Y) -name x/a.log", b"x");
    let dir = fleet.data_dir().join("$(touch Y) -name x");
    let mut scout = Scout::spawn(&fleet);
    let result = scout.call(json!({"target": target(&fleet, &dir), "find": "*.log"}));
    assert!(!result.is_error, "{}", result.text);
    assert_eq!(result.text, format!("{}/a.log", dir.display()));
    let result = scout.call(json!({"target": target(&fleet, &dir), "tree": true}));
    assert!(result.text.contains("└── a.log\n"), "{}", result.text);
    assert!(!remote_home(&fleet).join("Y").exists());
    assert!(!fleet.data_dir().join("Y").exists());
}
