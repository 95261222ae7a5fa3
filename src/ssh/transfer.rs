//! Streaming file transfers over SFTP, for beam: local → remote,
//! remote → local and remote → remote, in fixed-size chunks (constant
//! memory whatever the file size), each written to a temporary name beside
//! the destination and renamed into place only once complete.
//!
//! Knows nothing of pools or MCP: callers hand in sessions, a deadline and
//! a progress callback.

use super::error::{from_io, from_ssh2, ErrorKind, SshError};
use super::session::SshSession;
use sha2::{Digest, Sha256};
use ssh2::{FileStat, OpenFlags, OpenType, RenameFlags};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Bytes moved per read/write. Large enough for libssh2 to keep several
/// SFTP requests in flight (it pipelines within one call), small enough
/// that memory stays flat.
pub const CHUNK: usize = 256 * 1024;

/// Permission bits carried from source to destination. Set-id and sticky
/// bits are dropped on purpose, as `cp` without `-p` does: copying a file
/// must not mint a set-uid binary owned by whoever runs scout-mcp.
const MODE_BITS: u32 = 0o777;

/// Which end of a transfer an error happened at, so that the caller
/// blames (and, if needed, discards) the right session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

#[derive(Debug)]
pub struct TransferError {
    pub side: Side,
    pub error: SshError,
    /// Nothing was created at the destination yet: repeating the whole
    /// transfer on a fresh session is harmless.
    pub retry_safe: bool,
    /// A remote temporary file that could not be removed here (its session
    /// was lost); the caller should remove it over a fresh session.
    pub leftover: Option<String>,
}

impl TransferError {
    fn new(side: Side, error: SshError) -> Self {
        TransferError {
            side,
            error,
            retry_safe: true,
            leftover: None,
        }
    }
}

/// What a finished transfer moved.
#[derive(Debug, Clone)]
pub struct Done {
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the bytes written.
    pub sha256: String,
}

/// A remote file to copy from.
#[derive(Debug, Clone, Copy)]
pub struct RemoteSource {
    pub size: Option<u64>,
    pub mode: u32,
}

/// Called with the number of bytes moved so far, after each chunk;
/// returns false to stop the transfer (the request was cancelled).
pub type Progress<'a> = &'a mut dyn FnMut(u64) -> bool;

fn remote_error(kind: ErrorKind, message: String) -> SshError {
    SshError::new(kind, message)
}

fn is_not_found(e: &ssh2::Error) -> bool {
    // SSH_FX_NO_SUCH_FILE, SSH_FX_NO_SUCH_PATH
    matches!(
        e.code(),
        ssh2::ErrorCode::SFTP(2) | ssh2::ErrorCode::SFTP(10)
    )
}

fn is_permission_denied(e: &ssh2::Error) -> bool {
    matches!(e.code(), ssh2::ErrorCode::SFTP(3))
}

fn is_dir(stat: &FileStat) -> bool {
    stat.perm.is_some_and(|p| p & 0o170000 == 0o040000)
}

fn is_regular(stat: &FileStat) -> bool {
    stat.perm.is_some_and(|p| p & 0o170000 == 0o100000)
}

/// Splits a remote path into its directory and file name, the way the
/// server will resolve them ("a.txt" lives in ".", "/a.txt" in "/").
pub fn split_remote(path: &str) -> (String, String) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/".to_string(), name.to_string()),
        Some((dir, name)) => (dir.to_string(), name.to_string()),
        None => (".".to_string(), path.to_string()),
    }
}

/// A fresh name beside `name` that no other transfer (of this or another
/// scout-mcp process) will pick: dot-prefixed so that directory listings
/// and globs skip it, with a `.part` suffix that says what it is.
pub fn temp_name(name: &str, suffix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Mix the clock and a counter so that two names made in the same
    // nanosecond still differ; uniqueness, not secrecy, is the point
    // (the file is created exclusively anyway).
    let random =
        (nanos ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    // Keep the whole name under the usual 255-byte limit.
    let mut end = name.len().min(100);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        ".{}.scout-{}-{:08x}.{suffix}",
        &name[..end],
        std::process::id(),
        random as u32
    )
}

fn join(dir: &str, name: &str) -> String {
    super::sftp::join(dir, name)
}

/// Stats a remote file to copy from: it must exist and be a regular file.
pub fn remote_source(
    sess: &mut SshSession,
    path: &str,
    deadline: Instant,
) -> Result<RemoteSource, SshError> {
    sess.set_call_timeout(Some(deadline));
    let host = sess.label().to_string();
    let sftp = sess.sftp()?;
    let stat = sftp.stat(Path::new(path)).map_err(|e| {
        if is_not_found(&e) {
            remote_error(
                ErrorKind::Remote,
                format!("Source not found: {host}:{path}"),
            )
        } else {
            from_ssh2(&format!("{host}:{path}: cannot stat the source"), &e)
        }
    })?;
    if is_dir(&stat) {
        return Err(remote_error(
            ErrorKind::Remote,
            format!(
                "Cannot beam a directory: {host}:{path} is a directory; beam transfers single files"
            ),
        ));
    }
    if !is_regular(&stat) {
        return Err(remote_error(
            ErrorKind::Remote,
            format!("Cannot beam {host}:{path}: not a regular file"),
        ));
    }
    Ok(RemoteSource {
        size: stat.size,
        mode: stat.perm.unwrap_or(0o644) & MODE_BITS,
    })
}

/// Checks a remote destination before anything is written: the path must
/// not be a directory and its parent directory must exist. Whether the
/// directory is writable shows when the temporary file is created.
pub fn remote_destination(
    sess: &mut SshSession,
    path: &str,
    deadline: Instant,
) -> Result<(), SshError> {
    sess.set_call_timeout(Some(deadline));
    let host = sess.label().to_string();
    let (dir, name) = split_remote(path);
    let sftp = sess.sftp()?;
    if name.is_empty() || name == "." || name == ".." {
        return Err(remote_error(
            ErrorKind::Remote,
            format!(
                "Destination {host}:{path} names a directory; give the full path of the file to write"
            ),
        ));
    }
    match sftp.stat(Path::new(&dir)) {
        Ok(stat) if is_dir(&stat) => {}
        Ok(_) => {
            return Err(remote_error(
                ErrorKind::Remote,
                format!("Destination directory {host}:{dir} is not a directory"),
            ))
        }
        Err(e) if is_not_found(&e) => {
            return Err(remote_error(
                ErrorKind::Remote,
                format!("Destination directory {host}:{dir} does not exist"),
            ))
        }
        Err(e) => return Err(from_ssh2(&format!("{host}:{dir}: cannot stat"), &e)),
    }
    match sftp.stat(Path::new(path)) {
        Ok(stat) if is_dir(&stat) => Err(remote_error(
            ErrorKind::Remote,
            format!(
                "Destination {host}:{path} is a directory; give the full path of the file to write"
            ),
        )),
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(from_ssh2(&format!("{host}:{path}: cannot stat"), &e)),
    }
}

/// Checks a local destination the same way.
pub fn local_destination(path: &Path) -> Result<(), String> {
    let shown = path.display();
    if path.file_name().is_none() {
        return Err(format!(
            "Local destination {shown} names a directory; give the full path of the file to write"
        ));
    }
    let dir = local_parent(path);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "Local directory {} is not a directory",
                dir.display()
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("Local directory {} does not exist", dir.display()))
        }
        Err(e) => return Err(format!("Local directory {}: {e}", dir.display())),
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(format!(
            "Local destination {shown} is a directory; give the full path of the file to write"
        )),
        _ => Ok(()),
    }
}

fn local_parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Fails once the transfer's overall deadline has passed. Checked between
/// chunks, when no request is in flight, so the session stays usable (the
/// error kind is deliberately not a session-breaking one) and the
/// temporary file can still be removed on it.
fn check_deadline(deadline: Instant, started: Instant, what: &str) -> Result<(), SshError> {
    if Instant::now() >= deadline {
        return Err(SshError::new(
            ErrorKind::Remote,
            format!(
                "{what}: the transfer did not finish in time (gave up after {:.0}s)",
                started.elapsed().as_secs_f64()
            ),
        ));
    }
    Ok(())
}

/// Reads a remote file chunk by chunk under the transfer's deadline,
/// re-arming the per-call timeout before each read.
fn remote_reader<'a>(
    sess: &'a SshSession,
    file: &'a mut ssh2::File,
    deadline: Instant,
    started: Instant,
    ctx: &'a str,
) -> impl FnMut(&mut [u8]) -> Result<usize, TransferError> + 'a {
    move |buf: &mut [u8]| {
        check_deadline(deadline, started, ctx).map_err(|e| TransferError::new(Side::Source, e))?;
        sess.set_call_timeout(Some(deadline));
        file.read(buf).map_err(|e| {
            TransferError::new(Side::Source, from_io(&format!("{ctx}: read failed"), &e))
        })
    }
}

/// Reads until `buf` is full or the source ends, so that every write but
/// the last is a whole chunk (libssh2 pipelines within one write call).
fn fill(
    read: &mut dyn FnMut(&mut [u8]) -> Result<usize, TransferError>,
    buf: &mut [u8],
) -> Result<usize, TransferError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = read(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// The copy loop shared by every direction: one buffer, hashed as it goes.
fn pump(
    read: &mut dyn FnMut(&mut [u8]) -> Result<usize, TransferError>,
    write: &mut dyn FnMut(&[u8]) -> Result<(), TransferError>,
    progress: Progress,
) -> Result<Done, TransferError> {
    let mut buf = vec![0u8; CHUNK];
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    loop {
        let n = fill(read, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        write(&buf[..n])?;
        bytes += n as u64;
        if !progress(bytes) {
            // Between chunks nothing is in flight: the session stays
            // usable, so the failure path can remove the temporary file.
            return Err(TransferError::new(
                Side::Destination,
                SshError::new(ErrorKind::Remote, "the transfer was cancelled"),
            ));
        }
    }
    Ok(Done {
        bytes,
        sha256: hex(&hasher.finalize()),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A remote temporary file being written. Knows how to put itself in
/// place, or to go away.
struct RemoteTemp {
    host: String,
    dir: String,
    path: String,
    target: String,
}

impl RemoteTemp {
    /// Creates the temporary file exclusively, with `mode`.
    fn create(
        sess: &mut SshSession,
        target: &str,
        mode: u32,
    ) -> Result<(RemoteTemp, ssh2::File), TransferError> {
        let host = sess.label().to_string();
        let (dir, name) = split_remote(target);
        let path = join(&dir, &temp_name(&name, "part"));
        let sftp = sess
            .sftp()
            .map_err(|e| TransferError::new(Side::Destination, e))?;
        let file = sftp
            .open_mode(
                Path::new(&path),
                OpenFlags::WRITE | OpenFlags::EXCLUSIVE,
                mode as i32,
                OpenType::File,
            )
            .map_err(|e| {
                let error = if is_permission_denied(&e) {
                    remote_error(
                        ErrorKind::Remote,
                        format!("Cannot write to {host}:{dir}: permission denied"),
                    )
                } else {
                    from_ssh2(&format!("{host}:{dir}: cannot create a file"), &e)
                };
                TransferError::new(Side::Destination, error)
            })?;
        Ok((
            RemoteTemp {
                host,
                dir,
                path,
                target: target.to_string(),
            },
            file,
        ))
    }

    /// Turns a failure after the temporary file exists into the error to
    /// report, removing the file first when the session still works.
    fn fail(&self, sess: &mut SshSession, mut failure: TransferError) -> TransferError {
        failure.retry_safe = false;
        let session_ok = !(failure.side == Side::Destination && failure.error.breaks_session());
        if session_ok {
            sess.set_call_timeout(None);
            let removed = sess
                .sftp()
                .map(|sftp| sftp.unlink(Path::new(&self.path)).is_ok())
                .unwrap_or(false);
            if removed {
                return failure;
            }
        }
        log::warn!(
            "{}:{}: temporary file not removed yet after a failed transfer",
            self.host,
            self.path
        );
        failure.leftover = Some(self.path.clone());
        failure
    }

    /// Applies the mode (open's mode is subject to the server's umask),
    /// flushes and closes the file, then renames it over the target.
    fn commit(
        &self,
        sess: &mut SshSession,
        mut file: ssh2::File,
        mode: u32,
        deadline: Instant,
    ) -> Result<(), TransferError> {
        let dest = |e: SshError| TransferError::new(Side::Destination, e);
        let ctx = format!("{}:{}", self.host, self.target);
        sess.set_bulk_call_timeout(Some(deadline));
        let stat = FileStat {
            size: None,
            uid: None,
            gid: None,
            perm: Some(mode),
            atime: None,
            mtime: None,
        };
        file.setstat(stat)
            .map_err(|e| dest(from_ssh2(&format!("{ctx}: cannot set the mode"), &e)))?;
        // fsync@openssh.com: data on disk before the rename makes it
        // visible. Servers without the extension still get a correct
        // (if less crash-proof) transfer, so a refusal is not an error.
        if let Err(e) = file.fsync() {
            log::debug!("{ctx}: fsync not done ({e})");
        }
        // close reports late write errors (quota, NFS), so it is checked.
        file.close()
            .map_err(|e| dest(from_ssh2(&format!("{ctx}: closing the file failed"), &e)))?;
        self.rename_into_place(sess).map_err(dest)
    }

    /// OpenSSH speaks SFTP v3, where libssh2 sends no rename flags and
    /// the server refuses to rename over an existing file; the atomic
    /// posix-rename@openssh.com extension exists in libssh2 but neither
    /// the ssh2 crate nor libssh2-sys 0.3 exposes it. So: a plain rename
    /// first (atomic and enough for a new file), and for an existing
    /// target, move it aside, move ours in, drop the old one — restoring
    /// it if the second step fails. The target is never half-written; it
    /// is missing for the moment between the two renames.
    fn rename_into_place(&self, sess: &mut SshSession) -> Result<(), SshError> {
        let host = &self.host;
        let target = &self.target;
        let sftp = sess.sftp()?;
        let flags = Some(RenameFlags::OVERWRITE | RenameFlags::ATOMIC | RenameFlags::NATIVE);
        let tmp = Path::new(&self.path);
        let dst = Path::new(target);
        let first = match sftp.rename(tmp, dst, flags) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match sftp.lstat(dst) {
            Ok(stat) if !is_dir(&stat) => {}
            _ => {
                return Err(from_ssh2(
                    &format!("{host}:{target}: cannot rename the new file into place"),
                    &first,
                ))
            }
        }
        log::debug!("{host}:{target}: plain rename refused ({first}); replacing via a backup name");
        let (_, name) = split_remote(target);
        let backup = join(&self.dir, &temp_name(&name, "old"));
        sftp.rename(dst, Path::new(&backup), flags).map_err(|e| {
            from_ssh2(
                &format!("{host}:{target}: cannot move the existing file aside"),
                &e,
            )
        })?;
        if let Err(e) = sftp.rename(tmp, dst, flags) {
            let restored = sftp.rename(Path::new(&backup), dst, flags).is_ok();
            let mut err = from_ssh2(
                &format!("{host}:{target}: cannot rename the new file into place"),
                &e,
            );
            if !restored {
                err.message
                    .push_str(&format!("; the previous file is kept as {host}:{backup}"));
            }
            return Err(err);
        }
        if let Err(e) = sftp.unlink(Path::new(&backup)) {
            log::warn!("{host}:{backup}: cannot remove the replaced file: {e}");
        }
        Ok(())
    }
}

/// Uploads `src` (opened by the caller, read from its current position)
/// to `dst` on `sess`'s host, with `mode`.
pub fn upload(
    sess: &mut SshSession,
    src: &mut std::fs::File,
    local_name: &str,
    mode: u32,
    dst: &str,
    deadline: Instant,
    progress: Progress,
) -> Result<Done, TransferError> {
    let started = Instant::now();
    sess.set_call_timeout(Some(deadline));
    let (temp, mut file) = RemoteTemp::create(sess, dst, mode & MODE_BITS)?;
    let ctx = format!("{}:{}", temp.host, temp.path);
    let result = {
        let s: &SshSession = sess;
        let mut read = |buf: &mut [u8]| {
            src.read(buf).map_err(|e| {
                TransferError::new(
                    Side::Source,
                    SshError::new(
                        ErrorKind::Remote,
                        format!("reading {local_name} failed: {e}"),
                    ),
                )
            })
        };
        let mut write = |chunk: &[u8]| {
            check_deadline(deadline, started, &ctx)
                .map_err(|e| TransferError::new(Side::Destination, e))?;
            s.set_bulk_call_timeout(Some(deadline));
            file.write_all(chunk).map_err(|e| {
                TransferError::new(
                    Side::Destination,
                    from_io(&format!("{ctx}: write failed"), &e),
                )
            })
        };
        pump(&mut read, &mut write, progress)
    };
    let done = match result {
        Ok(done) => done,
        Err(e) => {
            drop(file);
            return Err(temp.fail(sess, e));
        }
    };
    match temp.commit(sess, file, mode & MODE_BITS, deadline) {
        Ok(()) => Ok(done),
        Err(e) => Err(temp.fail(sess, e)),
    }
}

/// A local temporary file, removed on drop unless it was put in place.
struct LocalTemp {
    path: PathBuf,
    committed: bool,
}

impl Drop for LocalTemp {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = std::fs::remove_file(&self.path) {
                log::warn!("cannot remove {}: {e}", self.path.display());
            }
        }
    }
}

fn local_error(message: String) -> TransferError {
    // Local failures say nothing about the remote session: a kind that
    // does not discard it.
    TransferError::new(Side::Destination, SshError::new(ErrorKind::Remote, message))
}

/// Downloads `src` from `sess`'s host to the local path `dst`, with the
/// source's mode.
pub fn download(
    sess: &mut SshSession,
    src: &str,
    source: RemoteSource,
    dst: &Path,
    deadline: Instant,
    progress: Progress,
) -> Result<Done, TransferError> {
    let started = Instant::now();
    let host = sess.label().to_string();
    let src_ctx = format!("{host}:{src}");
    sess.set_call_timeout(Some(deadline));
    let mut remote = sess
        .sftp()
        .and_then(|sftp| {
            sftp.open(Path::new(src))
                .map_err(|e| from_ssh2(&format!("{src_ctx}: cannot open"), &e))
        })
        .map_err(|e| TransferError::new(Side::Source, e))?;
    let dir = local_parent(dst);
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp_path = dir.join(temp_name(&name, "part"));
    let mode = source.mode & MODE_BITS;
    let mut local = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp_path)
        .map_err(|e| {
            let message = if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    "Cannot write to local directory {}: permission denied",
                    dir.display()
                )
            } else {
                format!(
                    "Cannot create a file in local directory {}: {e}",
                    dir.display()
                )
            };
            local_error(message)
        })?;
    // From here on, any return removes the temporary file.
    let mut guard = LocalTemp {
        path: tmp_path,
        committed: false,
    };
    let not_first = |mut e: TransferError| {
        e.retry_safe = false;
        e
    };
    let tmp_shown = guard.path.display().to_string();
    let done = {
        let s: &SshSession = sess;
        let mut read = remote_reader(s, &mut remote, deadline, started, &src_ctx);
        let mut write = |chunk: &[u8]| {
            local
                .write_all(chunk)
                .map_err(|e| local_error(format!("writing {tmp_shown} failed: {e}")))
        };
        pump(&mut read, &mut write, progress).map_err(not_first)?
    };
    drop(remote);
    // The mode again, explicitly: open's mode was filtered by our umask.
    local
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| local.sync_all())
        .map_err(|e| not_first(local_error(format!("finishing {tmp_shown} failed: {e}"))))?;
    drop(local);
    std::fs::rename(&guard.path, dst).map_err(|e| {
        not_first(local_error(format!(
            "cannot rename {tmp_shown} to {}: {e}",
            dst.display()
        )))
    })?;
    guard.committed = true;
    Ok(done)
}

/// The sessions of a remote-to-remote transfer: one when both ends are
/// the same host (two file handles on one SFTP channel), else two.
pub enum Ends<'a> {
    Same(&'a mut SshSession),
    Two {
        source: &'a mut SshSession,
        destination: &'a mut SshSession,
    },
}

impl Ends<'_> {
    fn source(&mut self) -> &mut SshSession {
        match self {
            Ends::Same(s) => s,
            Ends::Two { source, .. } => source,
        }
    }

    fn destination(&mut self) -> &mut SshSession {
        match self {
            Ends::Same(s) => s,
            Ends::Two { destination, .. } => destination,
        }
    }

    fn both(&self) -> (&SshSession, &SshSession) {
        match self {
            Ends::Same(s) => (s, s),
            Ends::Two {
                source,
                destination,
            } => (source, destination),
        }
    }
}

/// Streams `src` on one host to `dst` on another (or the same) host,
/// chunk by chunk through this process.
pub fn relay(
    ends: &mut Ends,
    src: &str,
    source: RemoteSource,
    dst: &str,
    deadline: Instant,
    progress: Progress,
) -> Result<Done, TransferError> {
    let started = Instant::now();
    let src_sess = ends.source();
    let src_ctx = format!("{}:{src}", src_sess.label());
    src_sess.set_call_timeout(Some(deadline));
    let mut remote_src = src_sess
        .sftp()
        .and_then(|sftp| {
            sftp.open(Path::new(src))
                .map_err(|e| from_ssh2(&format!("{src_ctx}: cannot open"), &e))
        })
        .map_err(|e| TransferError::new(Side::Source, e))?;
    let mode = source.mode & MODE_BITS;
    let dst_sess = ends.destination();
    dst_sess.set_call_timeout(Some(deadline));
    let (temp, mut file) = RemoteTemp::create(dst_sess, dst, mode)?;
    let dst_ctx = format!("{}:{}", temp.host, temp.path);
    let result = {
        let (s, d) = ends.both();
        let mut read = remote_reader(s, &mut remote_src, deadline, started, &src_ctx);
        let mut write = |chunk: &[u8]| {
            d.set_bulk_call_timeout(Some(deadline));
            file.write_all(chunk).map_err(|e| {
                TransferError::new(
                    Side::Destination,
                    from_io(&format!("{dst_ctx}: write failed"), &e),
                )
            })
        };
        pump(&mut read, &mut write, progress)
    };
    drop(remote_src);
    let done = match result {
        Ok(done) => done,
        Err(mut e) => {
            drop(file);
            // With one session for both ends, a broken source is a broken
            // destination too: the temporary file waits for a fresh one.
            if matches!(ends, Ends::Same(_)) {
                e.side = Side::Destination;
            }
            return Err(temp.fail(ends.destination(), e));
        }
    };
    match temp.commit(ends.destination(), file, mode, deadline) {
        Ok(()) => Ok(done),
        Err(e) => Err(temp.fail(ends.destination(), e)),
    }
}

/// Removes a temporary file left by a failed transfer, on a fresh session.
pub fn remove(sess: &mut SshSession, path: &str, deadline: Instant) -> Result<(), SshError> {
    sess.set_call_timeout(Some(deadline));
    let ctx = format!("{}:{path}: cannot remove", sess.label());
    let sftp = sess.sftp()?;
    sftp.unlink(Path::new(path))
        .map_err(|e| from_ssh2(&ctx, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_split_into_directory_and_name() {
        assert_eq!(split_remote("/srv/a.txt"), ("/srv".into(), "a.txt".into()));
        assert_eq!(split_remote("/a.txt"), ("/".into(), "a.txt".into()));
        assert_eq!(split_remote("a.txt"), (".".into(), "a.txt".into()));
        assert_eq!(split_remote("d/a.txt"), ("d".into(), "a.txt".into()));
        assert_eq!(split_remote("/srv/"), ("/srv".into(), "".into()));
    }

    #[test]
    fn temp_names_are_hidden_distinct_and_bounded() {
        let a = temp_name("a.txt", "part");
        let b = temp_name("a.txt", "part");
        assert_ne!(a, b);
        assert!(
            a.starts_with(".a.txt.scout-") && a.ends_with(".part"),
            "{a}"
        );
        let long = "é".repeat(200);
        assert!(temp_name(&long, "part").len() < 140);
    }

    #[test]
    fn the_pump_hashes_what_it_moves_in_bounded_chunks() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 17)).map(|i| (i % 251) as u8).collect();
        let mut src = &data[..];
        let mut out = Vec::new();
        let mut largest = 0;
        let mut seen = Vec::new();
        let done = pump(
            &mut |buf: &mut [u8]| {
                let n = buf.len().min(1000);
                Ok(src.read(&mut buf[..n]).unwrap_or(0))
            },
            &mut |chunk: &[u8]| {
                largest = largest.max(chunk.len());
                out.extend_from_slice(chunk);
                Ok(())
            },
            &mut |n| {
                seen.push(n);
                true
            },
        )
        .map_err(|e| e.error.message)
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, data);
        assert_eq!(done.bytes, data.len() as u64);
        assert_eq!(largest, CHUNK);
        assert_eq!(
            seen,
            vec![CHUNK as u64, 2 * CHUNK as u64, data.len() as u64]
        );
        assert_eq!(done.sha256, hex(&Sha256::digest(&data)));
        // FIPS 180-4 example "abc".
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
