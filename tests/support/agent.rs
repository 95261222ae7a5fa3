//! A real `ssh-agent` (from openssh-client) on a socket of its own, for tests of agent
//! authentication. Killed by its PID on drop; a watchdog kills it should the test process die
//! without dropping it.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::process::run_bounded;
use super::sshd::Watchdog;
use super::temp::TempDir;
use super::{wait_until, PATIENCE};

/// The askpass program ssh-add runs for an encrypted key: it prints the passphrase it was
/// given in its environment, so the passphrase never lands in a file.
const ASKPASS: &str = "#!/bin/sh\nprintf '%s\\n' \"$SCOUT_TEST_PASSPHRASE\"\n";

pub struct Agent {
    // Fields drop in this order: the agent stops before its socket's dir is removed.
    child: Option<(Child, Watchdog)>,
    socket: PathBuf,
    dir: TempDir,
}

impl Agent {
    /// Starts `ssh-agent -D -a SOCKET` and waits until its socket exists.
    pub fn start() -> Agent {
        let dir = TempDir::new("scout-agent");
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ssh-agent (install openssh-client): {e}"));
        let watchdog = Watchdog::guard(child.id());
        let agent = Agent {
            child: Some((child, watchdog)),
            socket,
            dir,
        };
        let listening = wait_until(PATIENCE, || {
            fs::metadata(&agent.socket).is_ok_and(|m| m.file_type().is_socket())
        });
        assert!(
            listening,
            "ssh-agent did not create its socket {} within {PATIENCE:?}",
            agent.socket.display()
        );
        agent
    }

    /// The value for SSH_AUTH_SOCK.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `ssh-add KEY` for a key without a passphrase.
    pub fn add(&self, key: &Path) {
        self.ssh_add(key, None);
    }

    /// `ssh-add KEY` for a key encrypted with `passphrase` (given through SSH_ASKPASS).
    pub fn add_encrypted(&self, key: &Path, passphrase: &str) {
        self.ssh_add(key, Some(passphrase));
    }

    /// The keys the agent holds, as `ssh-add -l` lists them (one line each).
    pub fn list(&self) -> Vec<String> {
        let out = run_bounded(
            Command::new("ssh-add")
                .arg("-l")
                .env("SSH_AUTH_SOCK", &self.socket),
            PATIENCE,
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("SHA256:"))
            .map(str::to_string)
            .collect()
    }

    fn ssh_add(&self, key: &Path, passphrase: Option<&str>) {
        let mut command = Command::new("ssh-add");
        command.arg(key).env("SSH_AUTH_SOCK", &self.socket);
        if let Some(passphrase) = passphrase {
            command
                .env("SSH_ASKPASS", self.askpass())
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env("DISPLAY", ":0")
                .env("SCOUT_TEST_PASSPHRASE", passphrase);
        }
        let out = run_bounded(&mut command, PATIENCE);
        assert!(
            out.status.success(),
            "ssh-add {} failed ({}): {}",
            key.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn askpass(&self) -> PathBuf {
        let path = self.dir.path().join("askpass");
        if !path.exists() {
            fs::write(&path, ASKPASS).expect("write the askpass script");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700))
                .expect("make the askpass script executable");
        }
        path
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some((mut child, watchdog)) = self.child.take() {
            // Dismissed first: once the agent is reaped its pid may be reused.
            drop(watchdog);
            let _ = child.kill();
            let exited = wait_until(Duration::from_secs(10), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !exited {
                eprintln!("tests/support: ssh-agent {} would not die", child.id());
            }
        }
    }
}
