//! SSH errors that say what failed, in words a user can act on.

use std::fmt;

/// What went wrong, coarse enough to decide on retries and recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Name resolution failed or timed out.
    Resolve,
    /// Nothing listens there (RST).
    Refused,
    /// A step did not finish before its deadline.
    Timeout,
    /// The server's key is not in known_hosts (strict checking).
    HostKeyUnknown,
    /// The server's key differs from the one in known_hosts.
    HostKeyChanged,
    /// Every authentication method was rejected.
    Auth,
    /// The SSH handshake failed (key exchange, algorithms, banner).
    Handshake,
    /// The connection died: reset, closed, protocol breakage.
    Disconnected,
    /// A file operation failed on the remote side (no such file, ...).
    Remote,
    /// Opening a channel or subsystem was refused.
    Channel,
    /// Our configuration does not allow this.
    Config,
    /// The request was cancelled before this step began; nothing ran.
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct SshError {
    pub kind: ErrorKind,
    pub message: String,
}

impl SshError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SshError {
            kind,
            message: message.into(),
        }
    }

    /// Whether the session this happened on should be thrown away: the
    /// transport is gone or in an unknown state.
    pub fn breaks_session(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Timeout | ErrorKind::Disconnected | ErrorKind::Channel
        )
    }
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SshError {}

/// libssh2 session error codes we treat specially (libssh2.h), in one
/// place for every module of `ssh`.
pub(super) mod code {
    pub const SOCKET_NONE: i32 = -1;
    pub const BANNER_RECV: i32 = -2;
    pub const BANNER_SEND: i32 = -3;
    pub const KEX_FAILURE: i32 = -5;
    pub const SOCKET_SEND: i32 = -7;
    pub const TIMEOUT: i32 = -9;
    pub const SOCKET_DISCONNECT: i32 = -13;
    pub const PROTO: i32 = -14;
    /// Also "no more directory entries" from an SFTP readdir.
    pub const FILE: i32 = -16;
    pub const AUTHENTICATION_FAILED: i32 = -18;
    pub const PUBLICKEY_UNVERIFIED: i32 = -19;
    pub const CHANNEL_FAILURE: i32 = -21;
    pub const SOCKET_TIMEOUT: i32 = -30;
    pub const SFTP_PROTOCOL: i32 = -31;
    /// A non-blocking call would block (LIBSSH2_ERROR_EAGAIN).
    pub const EAGAIN: i32 = -37;
    pub const AGENT_PROTOCOL: i32 = -42;
    pub const SOCKET_RECV: i32 = -43;
}

/// SFTP status codes (draft-ietf-secsh-filexfer-02 and later).
fn sftp_reason(status: i32) -> &'static str {
    match status {
        2 => "no such file or directory",
        3 => "permission denied",
        4 => "the server reported a failure",
        5 => "bad message",
        6 => "no connection",
        7 => "connection lost",
        8 => "operation not supported by the server",
        10 => "no such path",
        11 => "file already exists",
        12 => "write protected",
        14 => "no space left on the remote filesystem",
        15 => "quota exceeded",
        18 => "directory not empty",
        19 => "not a directory",
        20 => "invalid file name",
        21 => "too many levels of symbolic links",
        _ => "SFTP error",
    }
}

/// Turns an ssh2 error into an [`SshError`] whose message starts with
/// `context` (which names the host and, where there is one, the path).
pub fn from_ssh2(context: &str, e: &ssh2::Error) -> SshError {
    match e.code() {
        ssh2::ErrorCode::SFTP(status) => SshError::new(
            ErrorKind::Remote,
            format!("{context}: {}", sftp_reason(status)),
        ),
        ssh2::ErrorCode::Session(c) => session_error(context, c, e.message()),
    }
}

fn session_error(context: &str, c: i32, detail: &str) -> SshError {
    let (kind, what) = match c {
        code::TIMEOUT | code::SOCKET_TIMEOUT => (ErrorKind::Timeout, "timed out".to_string()),
        code::SOCKET_DISCONNECT | code::SOCKET_SEND | code::SOCKET_RECV | code::SOCKET_NONE => (
            ErrorKind::Disconnected,
            format!("connection lost ({detail})"),
        ),
        code::BANNER_RECV | code::BANNER_SEND => (
            ErrorKind::Handshake,
            format!("no SSH banner from the server ({detail}); it may be overloaded (MaxStartups) or not an SSH server"),
        ),
        code::KEX_FAILURE => (
            ErrorKind::Handshake,
            format!(
                "key exchange failed ({detail}); the server may offer only SHA-1 algorithms \
                 (ssh-rsa, diffie-hellman-group*-sha1), which this build refuses (a build made \
                 with LEGACY_SHA1=1 accepts them; README: \"Legacy servers\")"
            ),
        ),
        code::CHANNEL_FAILURE => (
            ErrorKind::Channel,
            format!("the server refused to open a channel ({detail})"),
        ),
        code::PROTO | code::SFTP_PROTOCOL => (
            ErrorKind::Disconnected,
            format!("protocol error ({detail})"),
        ),
        _ => (ErrorKind::Disconnected, format!("{detail} (libssh2 error {c})")),
    };
    SshError::new(kind, format!("{context}: {what}"))
}

/// Turns an I/O error from a channel or socket into an [`SshError`].
pub fn from_io(context: &str, e: &std::io::Error) -> SshError {
    use std::io::ErrorKind as Io;
    let kind = match e.kind() {
        Io::TimedOut | Io::WouldBlock => ErrorKind::Timeout,
        Io::ConnectionRefused => ErrorKind::Refused,
        _ => ErrorKind::Disconnected,
    };
    SshError::new(kind, format!("{context}: {e}"))
}
