//! Running one command on an exec channel.
//!
//! stdout and stderr are read interleaved in non-blocking mode: reading
//! one stream to its end first deadlocks once the other passes the
//! channel window (DESIGN §3). Both are drained to the end even past the
//! output cap, so the remote command finishes normally; only a bounded
//! head and tail of each is kept.

use super::error::{from_ssh2, ErrorKind, SshError};
use super::session::SshSession;
use std::collections::VecDeque;
use std::io::Read;
use std::time::{Duration, Instant};

const EAGAIN: i32 = -37;

/// The head and tail of a stream whose middle may have been dropped.
#[derive(Debug, Default, Clone)]
pub struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    half: usize,
    total: u64,
}

impl Capture {
    /// Keeps at most `cap` bytes: the first and the last `cap / 2`.
    pub fn new(cap: usize) -> Self {
        Capture {
            half: cap / 2,
            ..Capture::default()
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.half.saturating_sub(self.head.len());
        let take = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..take]);
        bytes = &bytes[take..];
        if bytes.len() >= self.half {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.half..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.half);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Bytes seen in all, kept or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept bytes in order, and how many were dropped between the
    /// head and the tail.
    pub fn into_parts(self) -> (Vec<u8>, Vec<u8>, u64) {
        let kept = (self.head.len() + self.tail.len()) as u64;
        (self.head, self.tail.into(), self.total - kept)
    }
}

/// What a command did.
#[derive(Debug)]
pub struct ExecOutcome {
    pub stdout: Capture,
    pub stderr: Capture,
    /// None when the command was cut off or died without a status.
    pub exit_code: Option<i32>,
    /// The signal that ended the command, e.g. "KILL".
    pub exit_signal: Option<String>,
    pub timed_out: bool,
    pub duration: Duration,
}

/// Runs `command` (interpreted by the remote user's shell) and gathers
/// its output until it exits or `deadline` passes. A timed-out command
/// leaves the session in an unknown state: the caller must discard it.
pub fn run(
    sess: &SshSession,
    command: &str,
    max_output: usize,
    deadline: Instant,
) -> Result<ExecOutcome, SshError> {
    let started = Instant::now();
    let ctx = format!("{}: command", sess.label());
    sess.set_call_timeout(Some(deadline));
    let session = sess.session();
    let mut channel = session.channel_session().map_err(|e| {
        let mut err = from_ssh2(&format!("{}: cannot open a channel", sess.label()), &e);
        if err.kind == ErrorKind::Remote {
            err.kind = ErrorKind::Channel;
        }
        err
    })?;
    channel.exec(command).map_err(|e| from_ssh2(&ctx, &e))?;
    let mut out = ExecOutcome {
        stdout: Capture::new(max_output),
        stderr: Capture::new(max_output),
        exit_code: None,
        exit_signal: None,
        timed_out: false,
        duration: Duration::ZERO,
    };
    session.set_blocking(false);
    let pumped = pump(sess, &mut channel, &mut out, deadline, &ctx)
        .and_then(|()| finish(sess, &mut channel, &mut out, deadline, &ctx));
    session.set_blocking(true);
    pumped?;
    out.duration = started.elapsed();
    Ok(out)
}

/// Reads both streams until the remote side sends EOF.
fn pump(
    sess: &SshSession,
    channel: &mut ssh2::Channel,
    out: &mut ExecOutcome,
    deadline: Instant,
    ctx: &str,
) -> Result<(), SshError> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let got_out = read_some(&mut channel.stream(0), &mut buf, &mut out.stdout, ctx)?;
        let got_err = read_some(&mut channel.stderr(), &mut buf, &mut out.stderr, ctx)?;
        if got_out || got_err {
            continue;
        }
        if channel.eof() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            out.timed_out = true;
            return Ok(());
        }
        wait_socket(sess, deadline);
    }
}

/// Drains what is readable now. Returns whether anything was read.
fn read_some(
    stream: &mut ssh2::Stream,
    buf: &mut [u8],
    into: &mut Capture,
    ctx: &str,
) -> Result<bool, SshError> {
    let mut got = false;
    loop {
        match stream.read(buf) {
            Ok(0) => return Ok(got),
            Ok(n) => {
                into.push(&buf[..n]);
                got = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(got),
            Err(e) => return Err(super::error::from_io(ctx, &e)),
        }
    }
}

/// Waits for the channel to close and collects the exit status.
fn finish(
    sess: &SshSession,
    channel: &mut ssh2::Channel,
    out: &mut ExecOutcome,
    deadline: Instant,
    ctx: &str,
) -> Result<(), SshError> {
    if out.timed_out {
        return Ok(());
    }
    loop {
        match channel.wait_close() {
            Ok(()) => break,
            Err(e) if e.code() == ssh2::ErrorCode::Session(EAGAIN) => {
                if Instant::now() >= deadline {
                    out.timed_out = true;
                    return Ok(());
                }
                wait_socket(sess, deadline);
            }
            Err(e) => return Err(from_ssh2(ctx, &e)),
        }
    }
    // exit-status may be absent when a signal ended the command; 0 then
    // would be a lie, so look at exit-signal first.
    let signal = channel.exit_signal().ok().and_then(|s| s.exit_signal);
    if let Some(sig) = signal {
        out.exit_signal = Some(sig);
    } else {
        out.exit_code = channel.exit_status().ok();
    }
    Ok(())
}

/// Sleeps until the session's socket is ready in the direction libssh2
/// is blocked on, at most 100 ms and never past `deadline`.
fn wait_socket(sess: &SshSession, deadline: Instant) {
    use ssh2::BlockDirections::*;
    let events = match sess.session().block_directions() {
        Outbound => libc::POLLOUT,
        Both => libc::POLLIN | libc::POLLOUT,
        _ => libc::POLLIN,
    };
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_millis(100));
    let mut fd = libc::pollfd {
        fd: sess.socket_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe {
        libc::poll(&mut fd, 1, wait.as_millis() as libc::c_int);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(cap: usize, chunks: &[&[u8]]) -> (Vec<u8>, Vec<u8>, u64) {
        let mut c = Capture::new(cap);
        for chunk in chunks {
            c.push(chunk);
        }
        c.into_parts()
    }

    #[test]
    fn small_output_is_kept_whole() {
        let (head, tail, dropped) = parts(10, &[b"abc", b"de"]);
        assert_eq!([head, tail].concat(), b"abcde");
        assert_eq!(dropped, 0);
    }

    #[test]
    fn large_output_keeps_head_and_tail() {
        let (head, tail, dropped) = parts(6, &[b"0123", b"4567", b"89"]);
        assert_eq!(head, b"012");
        assert_eq!(tail, b"789");
        assert_eq!(dropped, 4);
    }

    #[test]
    fn one_huge_chunk_keeps_its_ends() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let (head, tail, dropped) = parts(100, &[&data]);
        assert_eq!(head, &data[..50]);
        assert_eq!(tail, &data[data.len() - 50..]);
        assert_eq!(dropped, 9_900);
    }

    #[test]
    fn byte_by_byte_matches_one_chunk() {
        let data: Vec<u8> = (0..200u8).collect();
        let mut c = Capture::new(20);
        data.iter().for_each(|b| c.push(&[*b]));
        assert_eq!(c.total(), 200);
        let (head, tail, dropped) = c.into_parts();
        assert_eq!(head, &data[..10]);
        assert_eq!(tail, &data[190..]);
        assert_eq!(dropped, 180);
    }
}
