//! What a user does by hand: OpenSSH's `ssh` with a ControlMaster, so every operation after
//! the first rides an already authenticated connection (one new channel, one remote process).

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Fleet, TempDir};

/// How long one `ssh` invocation may take.
const LIMIT: Duration = Duration::from_secs(30);

/// A ControlMaster to one host, in its own temp ControlPath. Stopped on drop with
/// `ssh -O exit`, and by PID if it outlives that.
pub struct Master {
    args: Vec<String>,
    alias: String,
    pid: Option<u32>,
    _dir: TempDir,
}

impl Master {
    pub fn start(fleet: &Fleet, alias: &str) -> Result<Master, String> {
        let dir = TempDir::new("scout-bench-cm");
        let mut args = fleet.openssh_args();
        args.extend([
            "-o".to_string(),
            "ControlMaster=auto".to_string(),
            "-o".to_string(),
            format!("ControlPath={}", dir.path().join("cm-%C").display()),
            "-o".to_string(),
            "ControlPersist=300".to_string(),
        ]);
        let mut master = Master {
            args,
            alias: alias.to_string(),
            pid: None,
            _dir: dir,
        };
        master.open()?;
        let check = run_timed(master.command(&["-O", "check"]), LIMIT)?.1;
        // "Master running (pid=1234)"
        let said = String::from_utf8_lossy(&check.stderr).to_string();
        master.pid = said
            .split("pid=")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|pid| pid.parse().ok());
        if master.pid.is_none() {
            return Err(format!(
                "ssh -O check {alias}: no master running ({})",
                said.trim()
            ));
        }
        Ok(master)
    }

    /// The first `ssh` becomes the master and persists in the background. It keeps the stdio
    /// it was given, so it gets none: a pipe would never reach end-of-file.
    fn open(&self) -> Result<(), String> {
        let mut command = self.command(&["true"]);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run ssh to {}: {e}", self.alias))?;
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!("ssh {} (opening the master): {status}", self.alias))
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(format!("ssh {}: {e}", self.alias)),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("ssh {}: no master within {LIMIT:?}", self.alias))
    }

    /// Runs `remote` on the host through the master; the wall time of the whole `ssh`.
    pub fn run(&self, remote: &str) -> Result<Duration, String> {
        let (took, out) = run_timed(self.command(&[remote]), LIMIT)?;
        if !out.status.success() {
            return Err(format!(
                "ssh {} {remote:?}: {} ({})",
                self.alias,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(took)
    }

    pub fn latency(&self, remote: &str, samples: usize) -> Result<Vec<Duration>, String> {
        self.run(remote)?;
        (0..samples).map(|_| self.run(remote)).collect()
    }

    /// `total` runs of `remote` from `threads` threads at once; the wall time.
    pub fn throughput(
        &self,
        remote: &str,
        threads: usize,
        total: usize,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.max(1))
                .map(|t| {
                    scope.spawn(move || {
                        (t..total)
                            .step_by(threads.max(1))
                            .try_for_each(|_| self.run(remote).map(|_| ()))
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("an ssh thread panicked".to_string()))
            })
        })?;
        Ok(started.elapsed())
    }

    fn command(&self, tail: &[&str]) -> Command {
        let mut command = Command::new("ssh");
        command.args(&self.args);
        // Options such as -O go before the destination; the remote command after it.
        if tail.first() == Some(&"-O") {
            command.args(tail).arg(&self.alias);
        } else {
            command.arg(&self.alias).args(tail);
        }
        command
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = run_timed(self.command(&["-O", "exit"]), Duration::from_secs(10));
        let Some(pid) = self.pid else { return };
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if alive(pid) {
            // SAFETY: kill(2) on a pid we started (the master we asked to exit).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

/// Runs `command` with stdin empty; its wall time and output. Killed by PID after `limit`.
pub fn run_timed(mut command: Command, limit: Duration) -> Result<(Duration, Output), String> {
    let shown = format!("{command:?}");
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let pid = child.id();
    let (sender, done) = mpsc::channel();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // The waiting happens on a thread so that this one can give up at the limit.
    thread::spawn(move || {
        // stderr is small (errors only); reading stdout first cannot block on it.
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut out);
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut err);
        }
        let status = child.wait();
        let _ = sender.send(status.map(|status| Output {
            status,
            stdout: out,
            stderr: err,
        }));
    });
    match done.recv_timeout(limit) {
        Ok(Ok(out)) => Ok((started.elapsed(), out)),
        Ok(Err(e)) => Err(format!("{shown}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid; it is not reaped yet (the thread
            // waiting on it has not returned), so the pid cannot have been reused.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            Err(format!("{shown}: no answer within {limit:?}, killed"))
        }
    }
}
