//! Times `find` (a remote `find`) against `tree` (an SFTP walk) on a
//! deep tree, against a real sshd on loopback. This is the measurement
//! behind keeping a remote `find`: an SFTP walk pays round trips per
//! directory that libssh2 does not overlap.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{Fleet, Scout};

/// A tree of `fanout[0]` dirs, each with `fanout[1]` dirs, ..., with
/// `files` files in every directory (the root too). Names: `dN` / `fN.txt`,
/// and every directory's `f0` is `f0.log`.
fn build_tree(fleet: &Fleet, rel: &str, fanout: &[usize], files: usize) -> (usize, usize) {
    let dir = fleet.mkdir(rel);
    let (mut dirs, mut nfiles) = (0, 0);
    for f in 0..files {
        let name = if f == 0 {
            "f0.log".to_string()
        } else {
            format!("f{f}.txt")
        };
        std::fs::write(dir.join(name), b"x").expect("write");
        nfiles += 1;
    }
    if let Some((&n, rest)) = fanout.split_first() {
        for d in 0..n {
            let (sd, sf) = build_tree(fleet, &format!("{rel}/d{d}"), rest, files);
            dirs += 1 + sd;
            nfiles += sf;
        }
    }
    (dirs, nfiles)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_find(scout: &mut Scout, target: &str, pattern: &str, runs: usize) -> (Duration, String) {
    let args = json!({"target": target, "find": pattern, "depth": 5});
    let warm = scout.call(args.clone());
    assert!(!warm.is_error, "{}", warm.text);
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let r = scout.call(args.clone());
        times.push(t.elapsed());
        assert!(!r.is_error, "{}", r.text);
    }
    (median(times), warm.text)
}

/// Times find (a remote `find`) and tree (an SFTP walk of every directory,
/// the cost an SFTP-walk find would pay) on a tree of ~2,100 files in 212
/// directories, 5 levels deep. Run with
/// `cargo bench --bench find_tree` (a plain program: it prints, asserts nothing).
/// (When find was chosen, this compared an SFTP-walk find with the remote
/// find directly: ~83–103 ms against ~5–6 ms for a whole-tree search.)
fn main() {
    let fleet = Fleet::start(1);
    // 4 + 16 + 64 + 128 = 212 directories below the root, 10 files in each.
    let (dirs, files) = build_tree(&fleet, "bench", &[4, 4, 4, 2], 10);
    // One rare name at the bottom, so a search must cover the whole tree.
    let deep = fleet.data_dir().join("bench/d3/d3/d3/d1");
    std::fs::write(deep.join("needle.conf"), b"x").expect("write");
    eprintln!("tree: {dirs} directories, {} files", files + 1);
    let target = format!(
        "{}:{}",
        fleet.alias(0),
        fleet.data_dir().join("bench").display()
    );
    let mut scout = Scout::spawn_with(&fleet, &[("SCOUT_LOG_LEVEL", "warn")]);
    scout.initialize();
    for pattern in ["needle.*", "*.log"] {
        let (t, text) = time_find(&mut scout, &target, pattern, 9);
        eprintln!(
            "find {pattern:10} median {:7.2} ms  ({} lines)",
            t.as_secs_f64() * 1000.0,
            text.lines().count()
        );
    }
    let args = json!({"target": target, "tree": true, "depth": 5});
    let warm = scout.call(args.clone());
    assert!(!warm.is_error, "{}", warm.text);
    let times = (0..9)
        .map(|_| {
            let t = Instant::now();
            let r = scout.call(args.clone());
            assert!(!r.is_error, "{}", r.text);
            t.elapsed()
        })
        .collect();
    eprintln!(
        "tree (SFTP walk) median {:7.2} ms  ({} lines)",
        median(times).as_secs_f64() * 1000.0,
        warm.text.lines().count()
    );
}
