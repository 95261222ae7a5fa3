//! What a private key file is, learned without its passphrase: whether it
//! is encrypted, and its public key (to recognise the same key in
//! ssh-agent). Never keeps or returns private key material.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A key file is a few KiB at most; anything larger is not one.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// One IdentityFile (or default key file), as found on disk.
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub path: PathBuf,
    /// The public key blob (SSH wire format), from `PATH.pub` or from the
    /// unencrypted header of an OpenSSH-format private key.
    pub public: Option<Vec<u8>>,
    pub state: KeyState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// Readable and not encrypted (as far as its format tells).
    Usable,
    /// Needs a passphrase, which scout-mcp cannot ask for.
    Encrypted,
    Missing,
    /// Exists but cannot be read; the reason, in words.
    Unreadable(String),
}

/// Looks at `path` (and `path.pub`).
pub fn inspect(path: &Path) -> KeyFile {
    let (state, header_public) = match read_small(path) {
        Ok(text) => {
            let private = parse_private(&text);
            let state = if private.encrypted {
                KeyState::Encrypted
            } else {
                KeyState::Usable
            };
            (state, private.public)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (KeyState::Missing, None),
        Err(e) => (KeyState::Unreadable(read_error(&e)), None),
    };
    let public = header_public.or_else(|| {
        let text = read_small(&pub_path(path)).ok()?;
        parse_public_line(&text)
    });
    KeyFile {
        path: path.to_path_buf(),
        public,
        state,
    }
}

fn pub_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

fn read_small(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    File::open(path)?
        .take(MAX_KEY_FILE)
        .read_to_string(&mut text)?;
    Ok(text)
}

fn read_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "cannot read it: permission denied (check its owner and mode)".to_string()
        }
        std::io::ErrorKind::InvalidData => "cannot read it: not a text key file".to_string(),
        _ => format!("cannot read it: {e}"),
    }
}

/// What the private key text tells without decrypting anything.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Private {
    pub encrypted: bool,
    pub public: Option<Vec<u8>>,
}

const OPENSSH_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const OPENSSH_END: &str = "-----END OPENSSH PRIVATE KEY-----";

/// Reads the OpenSSH format's header (cipher name and public key are
/// stored in the clear) or a PEM file's encryption markers. A format we
/// do not know is reported as not encrypted: libssh2 gets to try it.
pub fn parse_private(text: &str) -> Private {
    if let Some(body) = between(text, OPENSSH_BEGIN, OPENSSH_END) {
        return base64_decode(&body)
            .and_then(|bytes| openssh_header(&bytes))
            .unwrap_or_default();
    }
    // PKCS#1 / SEC1 PEM ("Proc-Type: 4,ENCRYPTED") or encrypted PKCS#8.
    let encrypted = text.contains("Proc-Type: 4,ENCRYPTED")
        || text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----");
    Private {
        encrypted,
        public: None,
    }
}

fn between(text: &str, begin: &str, end: &str) -> Option<String> {
    let start = text.find(begin)? + begin.len();
    let stop = start + text[start..].find(end)?;
    Some(text[start..stop].split_whitespace().collect())
}

/// "openssh-key-v1\0", string cipher, string kdf, string kdf options,
/// uint32 key count, then the public keys (PROTOCOL.key in OpenSSH).
fn openssh_header(bytes: &[u8]) -> Option<Private> {
    let mut rest = bytes.strip_prefix(b"openssh-key-v1\0")?;
    let cipher = take_string(&mut rest)?;
    take_string(&mut rest)?; // kdf name
    take_string(&mut rest)?; // kdf options
    let count = take_u32(&mut rest)?;
    let public = if count >= 1 {
        Some(take_string(&mut rest)?.to_vec())
    } else {
        None
    };
    Some(Private {
        encrypted: cipher != b"none",
        public,
    })
}

fn take_u32(rest: &mut &[u8]) -> Option<u32> {
    let (head, tail) = rest.split_first_chunk::<4>()?;
    *rest = tail;
    Some(u32::from_be_bytes(*head))
}

fn take_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_u32(rest)?).ok()?;
    if len > rest.len() {
        return None;
    }
    let (value, tail) = rest.split_at(len);
    *rest = tail;
    Some(value)
}

/// The key blob of an OpenSSH public key line: "TYPE BASE64 [COMMENT]".
pub fn parse_public_line(text: &str) -> Option<Vec<u8>> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let mut fields = line.split_whitespace();
    let key_type = fields.next()?;
    let blob = base64_decode(fields.next()?)?;
    // The blob starts with its own type name; a mismatch means a garbled line.
    let mut rest = blob.as_slice();
    (take_string(&mut rest)? == key_type.as_bytes()).then_some(blob)
}

/// Standard base64 with optional padding; None on anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let digits = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in digits {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ssh-keygen -t ed25519 -N '' -C test`: a throwaway key made for this test.
    const PLAIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBHZqtaeuXIcRYTFrO7RN5YvsSFpV/0AFhaC2zVTK541wAAAIiMV2h/jFdo
fwAAAAtzc2gtZWQyNTUxOQAAACBHZqtaeuXIcRYTFrO7RN5YvsSFpV/0AFhaC2zVTK541w
AAAEB6jnkdsGWTGaoZunID/u2U3Tfd3Q6AqXdqPEpSfNftjUdmq1p65chxFhMWs7tE3li+
xIWlX/QAWFoLbNVMrnjXAAAABHRlc3QB
-----END OPENSSH PRIVATE KEY-----
";
    const PLAIN_PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEdmq1p65chxFhMWs7tE3li+xIWlX/QAWFoLbNVMrnjX test\n";

    /// The same kind of key with `-N secret`: aes256-ctr + bcrypt.
    const ENCRYPTED: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABAMC1N7OF
Xadu450Daf2XSgAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIDNHLUovjsGukcoK
fNZ7z1NODTWsNtiBmnyg8tAN2t07AAAAkDIIf+8XOqvM/8BCCX3pgC+vYwbxNQe4+8HadH
QN/WnPtx43xcECp+eyx/FFjM5ZGHGXsjx/wTdYWhqoDV+RtZALZdZxayZoBU1CScihq45C
dUkmr69eHRvI0wcb1dvPZZl1sP/3hPNzWgBkGMb5bWXNf3N06zIS7KJHFXU2WKAn1cePDa
4fnfKTUypcLXkMqQ==
-----END OPENSSH PRIVATE KEY-----
";
    const ENCRYPTED_PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDNHLUovjsGukcoKfNZ7z1NODTWsNtiBmnyg8tAN2t07 x\n";

    #[test]
    fn base64_round_trips_known_vectors() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert!(base64_decode("Zm9v!").is_none());
    }

    #[test]
    fn an_unencrypted_openssh_key_yields_its_public_key() {
        let private = parse_private(PLAIN);
        assert!(!private.encrypted);
        assert_eq!(private.public, parse_public_line(PLAIN_PUB));
        assert!(private.public.is_some());
    }

    #[test]
    fn an_encrypted_openssh_key_is_recognised_and_still_yields_its_public_key() {
        let private = parse_private(ENCRYPTED);
        assert!(private.encrypted);
        assert_eq!(private.public, parse_public_line(ENCRYPTED_PUB));
        assert_ne!(private.public, parse_public_line(PLAIN_PUB));
    }

    #[test]
    fn pem_keys_tell_only_whether_they_are_encrypted() {
        let locked = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            parse_private(locked),
            Private {
                encrypted: true,
                public: None
            }
        );
        let pkcs8 =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(parse_private(pkcs8).encrypted);
        let open = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(parse_private(open), Private::default());
    }

    #[test]
    fn a_truncated_openssh_key_is_not_trusted_for_anything() {
        let cut = format!("{OPENSSH_BEGIN}\nb3BlbnNzaC1rZXktdjEAAAAACmFl\n{OPENSSH_END}\n");
        assert_eq!(parse_private(&cut), Private::default());
    }

    #[test]
    fn public_lines_must_be_well_formed() {
        assert!(parse_public_line("# comment\n\n").is_none());
        assert!(parse_public_line("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIND3 x").is_none());
        assert!(parse_public_line("ssh-ed25519 not-base64!").is_none());
    }

    #[test]
    fn inspect_tells_missing_from_present() {
        let dir = std::env::temp_dir().join(format!("scout-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("id_test");
        assert_eq!(inspect(&key).state, KeyState::Missing);
        std::fs::write(&key, ENCRYPTED).unwrap();
        let found = inspect(&key);
        assert_eq!(found.state, KeyState::Encrypted);
        assert_eq!(found.public, parse_public_line(ENCRYPTED_PUB));
        // A .pub file stands in for a private key whose header tells nothing.
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::write(dir.join("id_test.pub"), PLAIN_PUB).unwrap();
        let found = inspect(&key);
        assert_eq!(found.state, KeyState::Usable);
        assert_eq!(found.public, parse_public_line(PLAIN_PUB));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreadable_files_say_why() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(read_error(&denied).contains("permission denied"));
    }
}
