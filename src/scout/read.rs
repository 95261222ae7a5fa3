//! Reading a path: a file's contents or a directory's listing, over SFTP.

use super::{format, walk};
use super::{OpError, OpResult, Scout, ToolOutput};
use crate::ssh::sftp;
use std::time::Instant;

/// Entries listed at most for one directory.
const MAX_ENTRIES: usize = 10_000;

/// What a path turned out to be.
pub enum PathContent {
    File(String),
    Directory(String),
}

impl Scout {
    /// The tool's default mode: cat a file or list a directory.
    pub(super) fn read_path(&self, host: &str, path: &str) -> ToolOutput {
        match self.read_path_text(host, path) {
            Ok(PathContent::File(text) | PathContent::Directory(text)) => ToolOutput::ok(text),
            Err(e) => ToolOutput::error(e),
        }
    }

    /// Stats the path, then reads or lists it, on one pooled session.
    pub fn read_path_text(&self, host: &str, path: &str) -> OpResult<PathContent> {
        let max_file = self.settings.max_file_size;
        let max_output = self.settings.max_output_size;
        let deadline = Instant::now() + self.settings.command_timeout;
        self.with_session(host, |sess| {
            let stat = walk::stat_root(sess, host, path, deadline)?;
            // SFTP does not expand `~`; this is the path it understands.
            let remote = walk::sftp_path(path);
            if stat.is_dir() {
                let (entries, cut) = sftp::list(sess, &remote, MAX_ENTRIES, deadline)?;
                let header = format!("{host}:{path}");
                return Ok(PathContent::Directory(format::listing(
                    &header, &entries, cut, max_output,
                )));
            }
            if !stat.is_file() {
                let mode = format::mode_string(stat.perm.unwrap_or(0));
                return Err(OpError::from(crate::ssh::SshError::new(
                    crate::ssh::ErrorKind::Remote,
                    format!(
                        "{host}:{path}: not a regular file or directory ({mode}); nothing to read"
                    ),
                )));
            }
            let head = sftp::read_head(sess, &remote, max_file, stat.size, deadline)?;
            Ok(PathContent::File(file_text(path, head, max_file)))
        })
    }
}

impl Scout {
    /// A regular file's first `SCOUT_MAX_FILE_SIZE` bytes, for diffs.
    pub(super) fn read_file_head(&self, host: &str, path: &str) -> OpResult<sftp::FileHead> {
        let max_file = self.settings.max_file_size;
        let deadline = Instant::now() + self.settings.command_timeout;
        self.with_session(host, |sess| {
            let stat = walk::stat_root(sess, host, path, deadline)?;
            if !stat.is_file() {
                let what = if stat.is_dir() {
                    "a directory"
                } else {
                    "not a regular file"
                };
                return Err(OpError::from(crate::ssh::SshError::new(
                    crate::ssh::ErrorKind::Remote,
                    format!("{host}:{path} is {what}; only files can be compared"),
                )));
            }
            Ok(sftp::read_head(
                sess,
                &walk::sftp_path(path),
                max_file,
                stat.size,
                deadline,
            )?)
        })
    }
}

fn file_text(path: &str, head: sftp::FileHead, max_file: u64) -> String {
    if format::looks_binary(&head.bytes) {
        let size = head
            .size
            .map_or_else(|| "unknown size".to_string(), |s| format!("{s} bytes"));
        return format!("[binary file: {path} ({size}); not shown as text]");
    }
    // Valid UTF-8 (the usual case) becomes the text without a copy.
    let mut text = String::from_utf8(head.bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    if head.truncated {
        text.push_str(&format!("\n\n[truncated at {max_file} bytes]"));
    }
    text
}
