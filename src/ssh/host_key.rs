//! Host key verification against an OpenSSH known_hosts file.
//!
//! libssh2's known-hosts engine does the matching (hashed `|1|` entries,
//! `[host]:port` entries, host patterns). We feed it the file line by
//! line so that one line it cannot parse (a new key type, a marker)
//! does not make every host unknown, and we honour `@revoked` ourselves.

use super::error::{ErrorKind, SshError};
use ssh2::{CheckResult, HashType, KnownHostFileKind, KnownHosts, Session};
use std::path::{Path, PathBuf};

/// How host keys are checked.
#[derive(Debug, Clone)]
pub struct HostKeyPolicy {
    /// `None` disables checking entirely (SCOUT_KNOWN_HOSTS=none).
    pub known_hosts: Option<PathBuf>,
    /// Refuse hosts whose key is not recorded. A changed key is refused
    /// whatever this says.
    pub strict: bool,
}

/// Who we are talking to, for the messages.
pub struct Peer<'a> {
    pub alias: &'a str,
    pub hostname: &'a str,
    pub port: u16,
}

impl Peer<'_> {
    fn describe(&self) -> String {
        format!("{} ({}:{})", self.alias, self.hostname, self.port)
    }

    /// The name OpenSSH writes for this host in known_hosts.
    fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.hostname.to_string()
        } else {
            format!("[{}]:{}", self.hostname, self.port)
        }
    }
}

impl HostKeyPolicy {
    /// Checks the key the server presented during the handshake.
    pub fn verify(&self, session: &Session, peer: &Peer) -> Result<(), SshError> {
        let Some(file) = &self.known_hosts else {
            return Ok(());
        };
        let (key, key_type) = session.host_key().ok_or_else(|| {
            SshError::new(
                ErrorKind::Handshake,
                format!("{}: the server presented no host key", peer.describe()),
            )
        })?;
        let type_name = key_type_name(key_type);
        let fingerprint = fingerprint(session);
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(SshError::new(
                    ErrorKind::Config,
                    format!("cannot read known_hosts file {}: {e}", file.display()),
                ))
            }
        };
        if is_revoked(&text, key) {
            return Err(SshError::new(
                ErrorKind::HostKeyChanged,
                format!(
                    "{}: the host key {fingerprint} is marked @revoked in {}; refusing to connect",
                    peer.describe(),
                    file.display()
                ),
            ));
        }
        let mut known = session.known_hosts().map_err(|e| {
            SshError::new(ErrorKind::Config, format!("known_hosts: {}", e.message()))
        })?;
        load_known_hosts(&mut known, &text, file);
        match known.check_port(peer.hostname, peer.port, key) {
            CheckResult::Match => Ok(()),
            CheckResult::Mismatch => Err(SshError::new(
                ErrorKind::HostKeyChanged,
                format!(
                    "{}: HOST KEY CHANGED: the server presented {type_name} key {fingerprint}, \
                     which differs from the key recorded in {}. This may be a man-in-the-middle \
                     attack, or the host was reinstalled. If the change is expected, remove the old \
                     entry with: ssh-keygen -R '{}' -f {}",
                    peer.describe(),
                    file.display(),
                    peer.known_hosts_name(),
                    file.display()
                ),
            )),
            CheckResult::NotFound if !self.strict => {
                log::warn!(
                    "{}: host key {type_name} {fingerprint} is not in {}; accepting it because \
                     SCOUT_STRICT_HOST_KEY_CHECKING=false",
                    peer.describe(),
                    file.display()
                );
                Ok(())
            }
            CheckResult::NotFound => Err(SshError::new(
                ErrorKind::HostKeyUnknown,
                format!(
                    "{}: unknown host key: {type_name} {fingerprint} is not in {}. Verify the \
                     fingerprint, then add it (e.g. ssh-keyscan -p {} {} >> {})",
                    peer.describe(),
                    file.display(),
                    peer.port,
                    peer.hostname,
                    file.display()
                ),
            )),
            CheckResult::Failure => Err(SshError::new(
                ErrorKind::Config,
                format!("{}: could not check the host key against {}", peer.describe(), file.display()),
            )),
        }
    }
}

/// Feeds `text` (a known_hosts file read from `file`) to libssh2 line by line, skipping
/// blank lines, comments and `@` marker lines (see [`is_revoked`]); a line libssh2 cannot
/// parse is logged and skipped. Returns how many lines libssh2 accepted.
pub fn load_known_hosts(known: &mut KnownHosts, text: &str, file: &Path) -> usize {
    let mut accepted = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        match known.read_str(line, KnownHostFileKind::OpenSSH) {
            Ok(()) => accepted += 1,
            Err(e) => log::debug!(
                "{}: skipping a known_hosts line: {}",
                file.display(),
                e.message()
            ),
        }
    }
    accepted
}

/// `SHA256:<base64>` as printed by `ssh-keygen -l`.
pub fn fingerprint(session: &Session) -> String {
    match session.host_key_hash(HashType::Sha256) {
        Some(hash) => format!("SHA256:{}", base64_unpadded(hash)),
        None => "(no fingerprint)".to_string(),
    }
}

fn key_type_name(t: ssh2::HostKeyType) -> &'static str {
    use ssh2::HostKeyType::*;
    match t {
        Rsa => "ssh-rsa",
        Dss => "ssh-dss",
        Ecdsa256 => "ecdsa-sha2-nistp256",
        Ecdsa384 => "ecdsa-sha2-nistp384",
        Ecdsa521 => "ecdsa-sha2-nistp521",
        Ed25519 => "ssh-ed25519",
        Unknown => "unknown-type",
    }
}

/// Whether a `@revoked` line lists exactly this key.
pub fn is_revoked(text: &str, key: &[u8]) -> bool {
    let encoded = base64_padded(key);
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("@revoked"))
        .any(|l| l.split_whitespace().any(|field| field == encoded))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_unpadded(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn base64_padded(bytes: &[u8]) -> String {
    let mut s = base64_unpadded(bytes);
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64_padded(input.as_bytes()), expected, "{input:?}");
            assert_eq!(
                base64_unpadded(input.as_bytes()),
                expected.trim_end_matches('=')
            );
        }
    }

    #[test]
    fn a_revoked_line_matches_only_its_own_key() {
        let text = "@revoked * ssh-ed25519 Zm9vYmFy\nhost ssh-ed25519 Zm9v\n";
        assert!(is_revoked(text, b"foobar"));
        assert!(!is_revoked(text, b"foo"));
    }

    #[test]
    fn known_hosts_names_follow_openssh() {
        let p = Peer {
            alias: "a",
            hostname: "10.0.0.1",
            port: 22,
        };
        assert_eq!(p.known_hosts_name(), "10.0.0.1");
        let p = Peer {
            alias: "a",
            hostname: "10.0.0.1",
            port: 2222,
        };
        assert_eq!(p.known_hosts_name(), "[10.0.0.1]:2222");
    }
}
