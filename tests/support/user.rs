//! The account that the test sshd logs clients in as (DESIGN.md §3 and §4).
//!
//! As root, that is a dedicated user, `scout-test`, created once per machine: root's own shell
//! start-up files (pyenv, on the machine the design was measured on) would add ~100 ms to every
//! remote command and make command-path tests and benchmarks measure them. Its shell is
//! /bin/sh (dash), which reads no start-up files for non-interactive commands, as on a real
//! fleet. As anyone else, sshd can only log in the user it runs as, so that is the current user.

use std::fs;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::{poll, PATIENCE};

pub(super) const TEST_USER: &str = "scout-test";

#[derive(Debug)]
pub(super) struct RemoteUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The remote user, created on first use. Test threads that ask at the same time wait for the
/// one that creates it.
pub(super) fn remote_user() -> &'static RemoteUser {
    static USER: OnceLock<RemoteUser> = OnceLock::new();
    USER.get_or_init(|| {
        if running_as_root() {
            ensure_test_user()
        } else {
            current_user()
        }
    })
}

pub(super) fn running_as_root() -> bool {
    effective_uid() == 0
}

fn effective_uid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    // "Uid:	real	effective	saved	filesystem"
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
        .expect("an effective uid on the Uid: line of /proc/self/status")
}

fn ensure_test_user() -> RemoteUser {
    if let Some(user) = lookup_user(TEST_USER).filter(is_unlocked) {
        return user;
    }
    // Test processes that start at the same time must not run useradd at the same time:
    // concurrent useradds here each "succeed", and the last one to write /etc/passwd wins,
    // leaving the others with a uid that no longer exists.
    let _lock = lock_accounts();
    let user = match lookup_user(TEST_USER) {
        Some(user) => user,
        None => {
            // The password field "*" matters: sshd without PAM refuses a locked account ("!").
            run_as_root(
                "useradd",
                &[
                    "--create-home",
                    "--shell",
                    "/bin/sh",
                    "--password",
                    "*",
                    TEST_USER,
                ],
            );
            lookup_user(TEST_USER).unwrap_or_else(|| {
                panic!("useradd succeeded, yet {TEST_USER} is not in /etc/passwd")
            })
        }
    };
    // Someone may have created the account without a password field sshd accepts.
    if !is_unlocked(&user) {
        run_as_root("usermod", &["--password", "*", TEST_USER]);
    }
    user
}

/// An exclusive lock, across processes, on changing accounts. The kernel releases it when the
/// file is closed, however the process ends.
fn lock_accounts() -> fs::File {
    let path = "/tmp/scout-mcp-tests-accounts.lock";
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open the lock file {path}: {e}"));
    let locked = poll(PATIENCE, Duration::from_millis(20), || file.try_lock().ok());
    if locked.is_none() {
        panic!("another process held {path} for {PATIENCE:?}; cannot create {TEST_USER}");
    }
    file
}

/// Whether sshd will let the user in: the password field is "*", not a locked "!...".
fn is_unlocked(user: &RemoteUser) -> bool {
    let shadow = fs::read_to_string("/etc/shadow").expect("read /etc/shadow as root");
    let prefix = format!("{}:", user.name);
    shadow
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .any(|rest| rest.starts_with("*:"))
}

fn run_as_root(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (Debian package passwd): {e}"));
    assert!(
        out.status.success(),
        "expected `{program} {}` to set up the test user; it exited {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn current_user() -> RemoteUser {
    let uid = effective_uid();
    if let Some(user) = passwd_entries().find(|u| u.uid == uid) {
        return user;
    }
    // Not in /etc/passwd (a directory-service account, say): ask id(1).
    RemoteUser {
        name: id(&["-un"]),
        uid,
        gid: id(&["-g"]).parse().expect("id -g prints a number"),
    }
}

fn lookup_user(name: &str) -> Option<RemoteUser> {
    passwd_entries().find(|u| u.name == name)
}

/// The accounts in /etc/passwd ("name:password:uid:gid:gecos:home:shell").
fn passwd_entries() -> impl Iterator<Item = RemoteUser> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let users: Vec<RemoteUser> = passwd
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?.to_string();
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some(RemoteUser { name, uid, gid })
        })
        .collect();
    users.into_iter()
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id")
        .args(args)
        .output()
        .expect("run id(1) to learn who we are");
    assert!(
        out.status.success(),
        "id {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
