//! File operations over SFTP: no remote process, paths passed as data.

use super::error::{from_ssh2, SshError};
use super::latency::HostEstimates;
use super::session::SshSession;
use ssh2::FileStat;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

/// One directory entry, with its symlink target when it is a link.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub stat: FileStat,
    pub link_target: Option<String>,
}

/// A file's first bytes, and whether there were more.
#[derive(Debug)]
pub struct FileHead {
    pub bytes: Vec<u8>,
    pub truncated: bool,
    /// The size the server reported, when it reported one.
    pub size: Option<u64>,
}

fn ctx(sess: &SshSession, path: &str, what: &str) -> String {
    format!("{}:{path}: {what}", sess.label())
}

/// Times a request answered in one round trip. Only answers count (a
/// success or an SFTP status such as "no such file"): a timeout or a lost
/// connection says nothing about the round trip.
fn round_trip<T>(
    latency: &HostEstimates,
    request: impl FnOnce() -> Result<T, ssh2::Error>,
) -> Result<T, ssh2::Error> {
    let started = Instant::now();
    let result = request();
    let answered = match &result {
        Ok(_) => true,
        Err(e) => matches!(e.code(), ssh2::ErrorCode::SFTP(_)),
    };
    if answered {
        latency.observe_round_trip(started.elapsed());
    }
    result
}

/// `stat` (following symlinks).
pub fn stat(sess: &mut SshSession, path: &str, deadline: Instant) -> Result<FileStat, SshError> {
    sess.set_call_timeout(Some(deadline));
    let result = stat_once(sess, path);
    result.map_err(|e| sess.explain_timeout(e))
}

fn stat_once(sess: &mut SshSession, path: &str) -> Result<FileStat, SshError> {
    let context = ctx(sess, path, "cannot stat");
    let (sftp, latency) = sess.sftp_timed()?;
    round_trip(latency, || sftp.stat(Path::new(path))).map_err(|e| from_ssh2(&context, &e))
}

/// Reads at most `cap` bytes of a file. `known_size` is the size a
/// `stat` just reported, when the caller has one: it saves an `fstat`
/// round trip, and a read that stops at that size instead of waiting
/// for the server's end-of-file answer saves another.
pub fn read_head(
    sess: &mut SshSession,
    path: &str,
    cap: u64,
    known_size: Option<u64>,
    deadline: Instant,
) -> Result<FileHead, SshError> {
    sess.set_call_timeout(Some(deadline));
    let result = read_head_once(sess, path, cap, known_size);
    result.map_err(|e| sess.explain_timeout(e))
}

fn read_head_once(
    sess: &mut SshSession,
    path: &str,
    cap: u64,
    known_size: Option<u64>,
) -> Result<FileHead, SshError> {
    let open_ctx = ctx(sess, path, "cannot open");
    let read_ctx = ctx(sess, path, "read failed");
    let (sftp, latency) = sess.sftp_timed()?;
    let mut file =
        round_trip(latency, || sftp.open(Path::new(path))).map_err(|e| from_ssh2(&open_ctx, &e))?;
    let size = match known_size {
        Some(s) => Some(s),
        None => round_trip(latency, || file.stat())
            .ok()
            .and_then(|s| s.size),
    };
    // The reads are not timed: libssh2 pipelines them, so one call's
    // time is not one round trip.
    let limit = read_limit(size, cap);
    let mut bytes = Vec::with_capacity(limit.min(16 << 20) as usize);
    (&mut file)
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| super::error::from_io(&read_ctx, &e))?;
    let truncated = match size {
        Some(s) if s > 0 => s > cap,
        _ => bytes.len() as u64 > cap,
    };
    bytes.truncate(cap as usize);
    Ok(FileHead {
        bytes,
        truncated,
        size,
    })
}

/// How many bytes to ask for. With a size known, exactly what will be
/// returned: the file as it was when stat'ed (a file growing meanwhile is
/// read as of then). Without one, or with size 0 (as /proc files report),
/// one byte past the cap, which tells "exactly cap" from "more than cap".
fn read_limit(size: Option<u64>, cap: u64) -> u64 {
    match size {
        Some(s) if s > 0 => s.min(cap),
        _ => cap.saturating_add(1),
    }
}

/// Lists a directory (without `.` and `..`), at most `max_entries`
/// entries, sorted by name. Returns the entries and whether it was cut.
pub fn list(
    sess: &mut SshSession,
    path: &str,
    max_entries: usize,
    deadline: Instant,
) -> Result<(Vec<Entry>, bool), SshError> {
    sess.set_call_timeout(Some(deadline));
    let result = list_once(sess, path, max_entries);
    result.map_err(|e| sess.explain_timeout(e))
}

fn list_once(
    sess: &mut SshSession,
    path: &str,
    max_entries: usize,
) -> Result<(Vec<Entry>, bool), SshError> {
    let context = ctx(sess, path, "cannot list");
    let (sftp, latency) = sess.sftp_timed()?;
    let mut dir = round_trip(latency, || sftp.opendir(Path::new(path)))
        .map_err(|e| from_ssh2(&context, &e))?;
    let mut entries = Vec::new();
    let mut cut = false;
    // readdir is not timed: most calls are answered from entries that
    // arrived with an earlier one.
    loop {
        match dir.readdir() {
            Ok((name, stat)) => {
                let name = name.to_string_lossy().into_owned();
                if name == "." || name == ".." {
                    continue;
                }
                if entries.len() == max_entries {
                    cut = true;
                    break;
                }
                entries.push(Entry {
                    name,
                    stat,
                    link_target: None,
                });
            }
            Err(e) if is_end_of_dir(&e) => break,
            Err(e) => return Err(from_ssh2(&context, &e)),
        }
    }
    drop(dir);
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for entry in entries.iter_mut().filter(|e| is_symlink(&e.stat)) {
        let full = join(path, &entry.name);
        entry.link_target = round_trip(latency, || sftp.readlink(Path::new(&full)))
            .ok()
            .map(|t| t.to_string_lossy().into_owned());
    }
    Ok((entries, cut))
}

fn is_end_of_dir(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(super::error::code::FILE)
}

pub fn is_symlink(stat: &FileStat) -> bool {
    stat.perm.is_some_and(|p| p & 0o170000 == 0o120000)
}

/// Joins a directory and a name the way the remote side will read it.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::read_limit;

    #[test]
    fn a_known_size_is_read_exactly_up_to_the_cap() {
        assert_eq!(read_limit(Some(10), 100), 10);
        assert_eq!(read_limit(Some(100), 100), 100);
        assert_eq!(read_limit(Some(1_000), 100), 100);
    }

    #[test]
    fn an_unknown_or_zero_size_reads_one_byte_past_the_cap() {
        assert_eq!(read_limit(None, 100), 101);
        assert_eq!(read_limit(Some(0), 100), 101);
        assert_eq!(read_limit(None, u64::MAX), u64::MAX);
    }
}
