//! Running one command on an exec channel.
//!
//! stdout and stderr are read interleaved in non-blocking mode: reading
//! one stream to its end first deadlocks once the other passes the
//! channel window (DESIGN §3). Both are drained to the end even past the
//! output cap, so the remote command finishes normally; only a bounded
//! head and tail of each is kept.

use super::error::code::EAGAIN;
use super::error::{from_ssh2, ErrorKind, SshError};
use super::session::SshSession;
use crate::cancel::CancelToken;
use std::collections::VecDeque;
use std::io::Read;
use std::time::{Duration, Instant};

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

/// Receives (bytes of output so far, last complete line).
pub type OutputFn<'a> = &'a dyn Fn(u64, &str);

/// How a caller steers a running command.
#[derive(Default)]
pub struct ExecControl<'a> {
    /// Checked between reads: a cancelled command stops at once.
    pub cancel: CancelToken,
    /// Called (throttled by the caller) with bytes of output so far and
    /// the last complete line.
    pub on_output: Option<OutputFn<'a>>,
}

/// The first line every command prints: its shell's PID, which is also
/// its process group (sshd starts each session's shell with setsid), so
/// that a cut-off command can be terminated with all its children.
const PID_MARK: u8 = 0x1e;

/// Prefixes `command` with the line that reports its process group.
pub fn with_pid_report(command: &str) -> String {
    format!("{PID_REPORT}{command}")
}

/// What [`with_pid_report`] puts before a command.
const PID_REPORT: &str = "printf '\\036%s\\n' \"$$\"; ";

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
    pub cancelled: bool,
    /// The remote process group, when the command reported it.
    pub pgid: Option<u32>,
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
    run_controlled(sess, command, max_output, deadline, &ExecControl::default())
        .map_err(|f| f.error)
}

/// [`run`] with cancellation and output callbacks. When `command` was
/// built with [`with_pid_report`], the PID line is taken off stdout and
/// returned as `pgid`.
pub fn run_controlled(
    sess: &SshSession,
    command: &str,
    max_output: usize,
    deadline: Instant,
    control: &ExecControl,
) -> Result<ExecOutcome, ExecFailure> {
    let started = Instant::now();
    let ctx = format!("{}: command", sess.label());
    // A request cancelled while it waited for a session must not start:
    // it would be cut off before it could say which processes to stop.
    if control.cancel.is_cancelled() {
        let message = format!("{ctx}: cancelled before it started; nothing ran");
        return Err(ExecFailure::before_start(SshError::new(
            ErrorKind::Cancelled,
            message,
        )));
    }
    sess.set_call_timeout(Some(deadline));
    let session = sess.session();
    let mut channel = open_channel(sess, deadline).map_err(ExecFailure::before_start)?;
    channel.exec(command).map_err(|e| {
        let err = from_ssh2(&ctx, &e);
        // A refused exec ran nothing; a connection lost while waiting for
        // the answer may or may not have started the command.
        if err.kind == ErrorKind::Channel || err.kind == ErrorKind::Remote {
            ExecFailure::before_start(err)
        } else {
            ExecFailure::after_start(err)
        }
    })?;
    let mut out = ExecOutcome {
        stdout: Capture::new(max_output),
        stderr: Capture::new(max_output),
        exit_code: None,
        exit_signal: None,
        timed_out: false,
        cancelled: false,
        pgid: None,
        duration: Duration::ZERO,
    };
    session.set_blocking(false);
    let mut reader = Reader {
        pid: if command.starts_with(PID_REPORT) {
            PidLine::Awaiting(Vec::new())
        } else {
            PidLine::Done
        },
        control,
        last_line: String::new(),
    };
    let pumped = pump(sess, &mut channel, &mut out, &mut reader, deadline, &ctx)
        .and_then(|()| finish(sess, &mut channel, &mut out, deadline, &ctx));
    // A channel whose command still runs must be dropped while the session
    // is non-blocking: a blocking close waits for sshd's CLOSE, which it
    // only sends once the command has exited. The session is discarded
    // afterwards anyway.
    if out.timed_out || out.cancelled || pumped.is_err() {
        drop(channel);
    }
    session.set_blocking(true);
    pumped.map_err(ExecFailure::after_start)?;
    out.duration = started.elapsed();
    Ok(out)
}

/// Why a command failed, and whether it may have run on the remote side
/// (then repeating it is not safe).
#[derive(Debug)]
pub struct ExecFailure {
    pub error: SshError,
    pub may_have_run: bool,
}

impl ExecFailure {
    fn before_start(error: SshError) -> Self {
        ExecFailure {
            error,
            may_have_run: false,
        }
    }

    fn after_start(error: SshError) -> Self {
        ExecFailure {
            error,
            may_have_run: true,
        }
    }
}

/// Opens an exec channel. sshd frees a closed channel's slot a moment
/// after it answers the close, so with `MaxSessions` reached by our own
/// previous channel (plus the SFTP one) an open can be refused briefly:
/// retry a few times before giving up.
fn open_channel(sess: &SshSession, deadline: Instant) -> Result<ssh2::Channel, SshError> {
    let mut pause = Duration::from_millis(10);
    loop {
        let err = match sess.session().channel_session() {
            Ok(channel) => return Ok(channel),
            Err(e) => from_ssh2(&format!("{}: cannot open a channel", sess.label()), &e),
        };
        let refused = err.kind == ErrorKind::Channel || err.kind == ErrorKind::Remote;
        if !refused || pause > Duration::from_millis(160) || Instant::now() + pause >= deadline {
            let mut err = err;
            if err.kind == ErrorKind::Remote {
                err.kind = ErrorKind::Channel;
            }
            return Err(err);
        }
        log::debug!(
            "{}: channel open refused, retrying in {pause:?}",
            sess.label()
        );
        std::thread::sleep(pause);
        pause *= 2;
    }
}

/// How long a command being cut off may still take to report its process
/// group, so that it can be stopped (it is the command's first line).
const PID_GRACE: Duration = Duration::from_secs(2);

/// Where the PID line stands: still being read, or done with.
enum PidLine {
    Awaiting(Vec<u8>),
    Done,
}

/// Stdout handling: PID line first, then capture and progress.
struct Reader<'a, 'b> {
    pid: PidLine,
    control: &'a ExecControl<'b>,
    last_line: String,
}

impl Reader<'_, '_> {
    fn awaiting_pid(&self) -> bool {
        matches!(self.pid, PidLine::Awaiting(_))
    }

    fn stdout(&mut self, bytes: &[u8], out: &mut ExecOutcome) {
        let rest = match &mut self.pid {
            PidLine::Done => bytes,
            PidLine::Awaiting(buf) => {
                buf.extend_from_slice(bytes);
                match take_pid_line(buf) {
                    PidParse::NeedMore => return,
                    PidParse::Found(pgid, consumed) => {
                        out.pgid = Some(pgid);
                        let rest = buf.split_off(consumed);
                        self.pid = PidLine::Done;
                        return self.capture(&rest, out);
                    }
                    PidParse::Absent => {
                        let all = std::mem::take(buf);
                        self.pid = PidLine::Done;
                        return self.capture(&all, out);
                    }
                }
            }
        };
        self.capture(rest, out);
    }

    fn capture(&mut self, bytes: &[u8], out: &mut ExecOutcome) {
        if bytes.is_empty() {
            return;
        }
        out.stdout.push(bytes);
        if let Some(report) = self.control.on_output {
            if let Some(line) = last_complete_line(bytes) {
                self.last_line = line;
            }
            report(out.stdout.total(), &self.last_line);
        }
    }
}

enum PidParse {
    NeedMore,
    /// The process group and how many bytes its line took.
    Found(u32, usize),
    Absent,
}

fn take_pid_line(buf: &[u8]) -> PidParse {
    if buf.first().is_some_and(|&b| b != PID_MARK) {
        return PidParse::Absent;
    }
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > 16 {
            PidParse::Absent
        } else {
            PidParse::NeedMore
        };
    };
    std::str::from_utf8(&buf[1..end])
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(PidParse::Absent, |pid| PidParse::Found(pid, end + 1))
}

fn last_complete_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.strip_suffix('\n')?;
    let line = trimmed.rsplit('\n').next().unwrap_or(trimmed);
    Some(line.chars().take(200).collect())
}

/// Reads both streams until the remote side sends EOF, the deadline
/// passes or the request is cancelled.
fn pump(
    sess: &SshSession,
    channel: &mut ssh2::Channel,
    out: &mut ExecOutcome,
    reader: &mut Reader,
    deadline: Instant,
    ctx: &str,
) -> Result<(), SshError> {
    let mut buf = vec![0u8; 32 * 1024];
    // Set once the command is to be cut off: whether by a cancellation
    // (else by the deadline), and until when to wait for its PID line.
    let mut cut_off: Option<(bool, Instant)> = None;
    loop {
        let got_out = read_some(&mut channel.stream(0), &mut buf, ctx, &mut |b| {
            reader.stdout(b, out)
        })?;
        let got_err = read_some(&mut channel.stderr(), &mut buf, ctx, &mut |b| {
            out.stderr.push(b)
        })?;
        if cut_off.is_none() {
            let cancelled = reader.control.cancel.is_cancelled();
            if cancelled || Instant::now() >= deadline {
                cut_off = Some((cancelled, Instant::now() + PID_GRACE));
            }
        }
        if let Some((cancelled, give_up)) = cut_off {
            // The process group can only be stopped once its PID line has
            // come; a command cut off just as it started sends it at once.
            if !reader.awaiting_pid() || channel.eof() || Instant::now() >= give_up {
                out.cancelled = cancelled;
                out.timed_out = !cancelled;
                return Ok(());
            }
        }
        if got_out || got_err {
            continue;
        }
        if channel.eof() {
            return Ok(());
        }
        sess.wait_socket(cut_off.map_or(deadline, |(_, give_up)| give_up));
    }
}

/// Drains what is readable now into `sink`. Returns whether anything was
/// read.
fn read_some(
    stream: &mut ssh2::Stream,
    buf: &mut [u8],
    ctx: &str,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<bool, SshError> {
    let mut got = false;
    loop {
        match stream.read(buf) {
            Ok(0) => return Ok(got),
            Ok(n) => {
                sink(&buf[..n]);
                got = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(got),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
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
    if out.timed_out || out.cancelled {
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
                sess.wait_socket(deadline);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_line_is_recognised_and_only_it() {
        assert!(matches!(
            take_pid_line(b"\x1e4242\nrest"),
            PidParse::Found(4242, 6)
        ));
        assert!(matches!(take_pid_line(b"\x1e42"), PidParse::NeedMore));
        assert!(matches!(take_pid_line(b"hello\n"), PidParse::Absent));
        assert!(matches!(take_pid_line(b"\x1eabc\n"), PidParse::Absent));
        assert_eq!(with_pid_report("ls"), "printf '\\036%s\\n' \"$$\"; ls");
    }

    #[test]
    fn the_last_complete_line_is_the_progress_message() {
        assert_eq!(last_complete_line(b"a\nb\n").as_deref(), Some("b"));
        assert_eq!(last_complete_line(b"a\npartial"), None);
    }

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
