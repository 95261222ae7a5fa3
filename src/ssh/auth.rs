//! Public-key authentication in OpenSSH's order: the host's IdentityFiles
//! first (through ssh-agent when it holds the same key, which is how an
//! encrypted key gets used), then the agent's other keys unless
//! IdentitiesOnly, then the default key files when no IdentityFile is
//! named. Keys are counted, because sshd disconnects after MaxAuthTries
//! refusals; every failure says which keys were tried and why they failed.

use super::error::{from_ssh2, ErrorKind, SshError};
use super::keyfile::{self, KeyFile, KeyState};
use super::session::ConnectOptions;
use crate::config::HostConfig;
use ssh2::{Agent, PublicKey, Session};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// sshd's default MaxAuthTries: it disconnects at the sixth refused key,
/// so a seventh is never worth offering.
const MAX_AUTH_TRIES: usize = 6;

/// An unreachable agent is reported once per process, not per connect.
static AGENT_WARNED: AtomicBool = AtomicBool::new(false);

/// Authenticates `session` as the host's user, or says why not.
pub(super) fn authenticate(
    session: &Session,
    host: &HostConfig,
    opts: &ConnectOptions,
) -> Result<(), SshError> {
    let who = format!(
        "{} ({}@{}:{})",
        host.alias, host.user, host.hostname, host.port
    );
    let offered = session
        .auth_methods(&host.user)
        .map(str::to_string)
        .map_err(|e| from_ssh2(&format!("{who}: authentication"), &e))?;
    if session.authenticated() {
        return Ok(());
    }
    if !offered.split(',').any(|m| m == "publickey") {
        return Err(SshError::new(
            ErrorKind::Auth,
            format!(
                "{who}: the server accepts only {offered}; scout-mcp authenticates with keys \
                 (ssh-agent or IdentityFile)"
            ),
        ));
    }
    let named = !host.identity_files.is_empty();
    let paths = if named {
        &host.identity_files
    } else {
        &opts.default_keys
    };
    let files: Vec<KeyFile> = paths.iter().map(|p| keyfile::inspect(p)).collect();
    let agent = opts
        .agent_socket
        .as_deref()
        .map(|socket| open_agent(session, socket));
    let mut entries = Vec::new();
    let (agent, held) = match agent {
        Some(Ok((agent, keys))) => (Some(agent), keys),
        Some(Err(why)) => {
            entries.push(Entry::Note(format!("ssh-agent ({why})")));
            (None, Vec::new())
        }
        None => (None, Vec::new()),
    };
    let plan = plan(&files, &held, named, host.identities_only);
    entries.extend(plan.entries);
    let outcome = run(session, &host.user, agent.as_ref(), &held, entries).map_err(|key| {
        SshError::new(
            ErrorKind::Timeout,
            format!("{who}: authentication timed out while offering key {key}"),
        )
    })?;
    // The agent connection closes as `agent` drops.
    if outcome.accepted {
        return Ok(());
    }
    Err(SshError::new(
        ErrorKind::Auth,
        failure_message(&who, &offered, &plan.locked, &outcome),
    ))
}

/// A key in ssh-agent: its public blob and comment (never private material).
struct HeldKey {
    blob: Vec<u8>,
    comment: String,
    identity: Option<PublicKey>,
}

/// Connects to the agent at `socket` and lists its keys.
fn open_agent(session: &Session, socket: &Path) -> Result<(Agent, Vec<HeldKey>), String> {
    let result = connect_agent(session, socket);
    if let Err(why) = &result {
        let text = format!(
            "ssh-agent not used: SSH_AUTH_SOCK={}: {why}; authenticating with key files only",
            socket.display()
        );
        if AGENT_WARNED.swap(true, Ordering::Relaxed) {
            log::debug!("{text}");
        } else {
            log::warn!("{text}");
        }
    }
    result.map_err(|why| format!("SSH_AUTH_SOCK={}: {why}", socket.display()))
}

fn connect_agent(session: &Session, socket: &Path) -> Result<(Agent, Vec<HeldKey>), String> {
    socket_problem(socket)?;
    let mut agent = session.agent().map_err(|e| e.message().to_string())?;
    agent
        .set_identity_path(socket)
        .map_err(|e| e.message().to_string())?;
    agent.connect().map_err(|e| {
        // libssh2 says only "failed connecting with agent"; the OS says why.
        match std::os::unix::net::UnixStream::connect(socket) {
            Err(os) => format!("cannot connect: {os}"),
            Ok(_) => format!("cannot connect: {}", e.message()),
        }
    })?;
    agent
        .list_identities()
        .map_err(|e| format!("cannot list its keys: {}", e.message()))?;
    let identities = agent
        .identities()
        .map_err(|e| format!("cannot list its keys: {}", e.message()))?;
    let held = identities
        .into_iter()
        .map(|id| HeldKey {
            blob: id.blob().to_vec(),
            comment: id.comment().to_string(),
            identity: Some(id),
        })
        .collect();
    Ok((agent, held))
}

fn socket_problem(socket: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(socket) {
        Ok(m) if m.file_type().is_socket() => Ok(()),
        Ok(_) => Err("not a socket".to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("no such socket (is ssh-agent running?)".to_string())
        }
        Err(e) => Err(format!("cannot reach the socket: {e}")),
    }
}

/// One thing to try, or one thing that could not be tried and why.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// The agent's key number `index`, described by `label`.
    Agent {
        index: usize,
        label: String,
    },
    File(PathBuf),
    Note(String),
}

#[derive(Debug, Default)]
struct Plan {
    entries: Vec<Entry>,
    /// Encrypted key files the agent does not hold.
    locked: Vec<PathBuf>,
}

/// Orders the attempts (see the module comment). `named`: the files are
/// the host's IdentityFiles rather than the default key files.
fn plan(files: &[KeyFile], held: &[HeldKey], named: bool, identities_only: bool) -> Plan {
    let in_agent: Vec<Option<usize>> = files
        .iter()
        .map(|f| {
            let public = f.public.as_deref()?;
            held.iter().position(|k| k.blob == public)
        })
        .collect();
    let file_of = |index: usize| {
        let at = in_agent.iter().position(|&i| i == Some(index))?;
        Some(files[at].path.as_path())
    };
    let mut plan = Plan::default();
    if named {
        plan.add_files(files, &in_agent, true);
    }
    for (index, key) in held.iter().enumerate() {
        let file = file_of(index);
        if (named && file.is_some()) || (identities_only && file.is_none()) {
            continue;
        }
        let label = match file {
            Some(path) => via_agent(path),
            None if key.comment.is_empty() => format!("ssh-agent key #{}", index + 1),
            None => format!("ssh-agent key {}", key.comment),
        };
        plan.entries.push(Entry::Agent { index, label });
    }
    if !named {
        plan.add_files(files, &in_agent, false);
    }
    plan
}

impl Plan {
    /// The files in order: through the agent where it holds them (the
    /// agent part of an unnamed default file was planned with the agent's
    /// keys), else the file itself, else why not.
    fn add_files(&mut self, files: &[KeyFile], in_agent: &[Option<usize>], named: bool) {
        let mut seen = Vec::new();
        for (file, held) in files.iter().zip(in_agent) {
            match held {
                Some(index) if named && !seen.contains(index) => {
                    seen.push(*index);
                    self.entries.push(Entry::Agent {
                        index: *index,
                        label: via_agent(&file.path),
                    });
                }
                Some(_) => {}
                None => self.add_file(file, named),
            }
        }
    }

    fn add_file(&mut self, file: &KeyFile, named: bool) {
        let shown = shown(&file.path);
        match &file.state {
            KeyState::Usable => self.entries.push(Entry::File(file.path.clone())),
            KeyState::Encrypted => {
                self.locked.push(file.path.clone());
                self.entries.push(Entry::Note(format!(
                    "{shown} (passphrase-protected and not in ssh-agent)"
                )));
            }
            // A default key file that is not there was never asked for.
            KeyState::Missing if !named => {}
            KeyState::Missing => self
                .entries
                .push(Entry::Note(format!("{shown} (file not found)"))),
            KeyState::Unreadable(why) => self.entries.push(Entry::Note(format!("{shown} ({why})"))),
        }
    }
}

fn via_agent(path: &Path) -> String {
    format!("{} (via ssh-agent)", shown(path))
}

/// A path as the user would type it: the home directory as `~`.
fn shown(path: &Path) -> String {
    let home = crate::config::home_dir();
    match path.strip_prefix(&home) {
        Ok(rest) if home.components().count() > 1 => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

/// What happened to the planned attempts.
#[derive(Debug, Default)]
struct Outcome {
    accepted: bool,
    /// Every entry, with its result, for the failure message.
    tried: Vec<String>,
    /// Keys offered to the server (a local failure offers nothing).
    offered: usize,
    /// Keys the server refused (it counts them against MaxAuthTries).
    refused: usize,
    /// The server hung up mid-way (MaxAuthTries below ours, most likely).
    closed: bool,
    /// Keys left untried because MAX_AUTH_TRIES were refused.
    left: usize,
}

/// Tries the entries in order until one key is accepted. A timeout is
/// returned as an error (naming the key it happened on); everything else
/// ends up in the outcome.
fn run(
    session: &Session,
    user: &str,
    agent: Option<&Agent>,
    held: &[HeldKey],
    entries: Vec<Entry>,
) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    let total = entries
        .iter()
        .filter(|e| !matches!(e, Entry::Note(_)))
        .count();
    for entry in entries {
        if let Entry::Note(note) = entry {
            outcome.tried.push(note);
            continue;
        }
        if outcome.refused >= MAX_AUTH_TRIES {
            outcome.left = total - outcome.offered;
            break;
        }
        let started = Instant::now();
        let Some((label, result)) = offer(session, user, agent, held, entry) else {
            continue;
        };
        outcome.offered += 1;
        let failure = match result {
            Ok(()) if session.authenticated() => {
                outcome.accepted = true;
                return Ok(outcome);
            }
            Ok(()) => Failure::Refused,
            Err(e) => {
                log::debug!("{user}: {label}: {} ({:?})", e.message(), e.code());
                let budget = Duration::from_millis(u64::from(session.timeout()));
                attempt_failure(&e, started.elapsed(), budget)
            }
        };
        match failure {
            Failure::Timeout => return Err(label),
            Failure::Closed => {
                outcome.closed = true;
                outcome
                    .tried
                    .push(format!("{label} (the server closed the connection)"));
                break;
            }
            Failure::Refused => {
                outcome.refused += 1;
                outcome.tried.push(format!("{label} (rejected)"));
            }
            Failure::Local(why) => outcome.tried.push(format!("{label} ({why})")),
        }
    }
    Ok(outcome)
}

/// Offers one key; None when the agent it needs is not there.
fn offer(
    session: &Session,
    user: &str,
    agent: Option<&Agent>,
    held: &[HeldKey],
    entry: Entry,
) -> Option<(String, Result<(), ssh2::Error>)> {
    match entry {
        Entry::Agent { index, label } => {
            let identity = held.get(index)?.identity.as_ref()?;
            Some((label, agent?.userauth(user, identity)))
        }
        Entry::File(path) => Some((
            shown(&path),
            session.userauth_pubkey_file(user, None, &path, None),
        )),
        Entry::Note(_) => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Timeout,
    /// The transport is gone: sshd disconnects after MaxAuthTries refusals.
    Closed,
    /// The server refused the key (one of its MaxAuthTries).
    Refused,
    /// Nothing reached the server (the key could not be loaded or signed).
    Local(String),
}

/// Classifies a failed key offer that took `elapsed` under a per-call
/// `budget` (0 = none).
fn attempt_failure(e: &ssh2::Error, elapsed: Duration, budget: Duration) -> Failure {
    use super::error::code::*;
    let ssh2::ErrorCode::Session(code) = e.code() else {
        return Failure::Local(e.message().to_string());
    };
    match code {
        TIMEOUT | SOCKET_TIMEOUT => Failure::Timeout,
        SOCKET_NONE | SOCKET_SEND | SOCKET_DISCONNECT | SOCKET_RECV => Failure::Closed,
        AUTHENTICATION_FAILED => Failure::Refused,
        // libssh2 reports a transport failure while it waits for the
        // server's answer (sshd hanging up at MaxAuthTries, or a timeout)
        // under this code too, losing the cause; its message tells.
        PUBLICKEY_UNVERIFIED if e.message().starts_with("Waiting for") => {
            if !budget.is_zero() && elapsed >= budget {
                Failure::Timeout
            } else {
                Failure::Closed
            }
        }
        PUBLICKEY_UNVERIFIED if e.message().starts_with("Callback") => {
            Failure::Local(format!("ssh-agent would not sign with it: {}", e.message()))
        }
        PUBLICKEY_UNVERIFIED => Failure::Refused,
        FILE => Failure::Local(
            "cannot load the key: an unsupported format, or passphrase-protected".to_string(),
        ),
        AGENT_PROTOCOL => {
            Failure::Local(format!("ssh-agent would not sign with it: {}", e.message()))
        }
        _ => Failure::Local(format!("{} (libssh2 error {code})", e.message())),
    }
}

fn failure_message(who: &str, offered: &str, locked: &[PathBuf], outcome: &Outcome) -> String {
    let headline = if let Some(key) = locked.first() {
        let key = shown(key);
        format!(
            "{who}: key {key} is passphrase-protected: add it to ssh-agent (ssh-add {key}); \
             scout-mcp cannot prompt for passphrases"
        )
    } else if outcome.closed {
        format!(
            "{who}: the server closed the connection after {} keys were offered (too many \
             authentication failures: its MaxAuthTries is lower); name the right key with \
             IdentityFile, and set IdentitiesOnly yes to keep ssh-agent's other keys out",
            outcome.offered
        )
    } else if outcome.left > 0 {
        format!(
            "{who}: authentication rejected: stopped after {MAX_AUTH_TRIES} refused keys, \
             {} left untried, since sshd disconnects at MaxAuthTries (6 by default); name the \
             right key with IdentityFile, and set IdentitiesOnly yes to keep ssh-agent's other \
             keys out",
            outcome.left
        )
    } else {
        format!("{who}: authentication rejected")
    };
    let tried = if outcome.tried.is_empty() {
        "no keys: no agent (SSH_AUTH_SOCK), no IdentityFile, no default key file \
         (~/.ssh/id_ed25519, id_ecdsa, id_rsa)"
            .to_string()
    } else {
        outcome.tried.join(", ")
    };
    format!("{headline}; tried {tried}; the server accepts: {offered}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, public: Option<&[u8]>, state: KeyState) -> KeyFile {
        KeyFile {
            path: PathBuf::from(path),
            public: public.map(<[u8]>::to_vec),
            state,
        }
    }

    fn key(blob: &[u8], comment: &str) -> HeldKey {
        HeldKey {
            blob: blob.to_vec(),
            comment: comment.to_string(),
            identity: None,
        }
    }

    fn agent(index: usize, label: &str) -> Entry {
        Entry::Agent {
            index,
            label: label.to_string(),
        }
    }

    #[test]
    fn named_files_go_first_through_the_agent_when_it_holds_them() {
        let files = [
            file("/k/plain", Some(b"P"), KeyState::Usable),
            file("/k/locked", Some(b"L"), KeyState::Encrypted),
        ];
        let held = [key(b"W1", "wrong1"), key(b"L", "/k/locked"), key(b"W2", "")];
        let plan = plan(&files, &held, true, false);
        assert_eq!(
            plan.entries,
            vec![
                Entry::File(PathBuf::from("/k/plain")),
                agent(1, "/k/locked (via ssh-agent)"),
                agent(0, "ssh-agent key wrong1"),
                agent(2, "ssh-agent key #3"),
            ]
        );
        assert!(plan.locked.is_empty());
    }

    #[test]
    fn identities_only_keeps_the_agents_other_keys_out() {
        let files = [file("/k/locked", Some(b"L"), KeyState::Encrypted)];
        let held = [key(b"W", "wrong"), key(b"L", "")];
        let plan = plan(&files, &held, true, true);
        assert_eq!(plan.entries, vec![agent(1, "/k/locked (via ssh-agent)")]);
    }

    #[test]
    fn an_encrypted_key_the_agent_lacks_is_reported_not_tried() {
        let files = [
            file("/k/locked", Some(b"L"), KeyState::Encrypted),
            file("/k/gone", None, KeyState::Missing),
            file(
                "/k/secret",
                None,
                KeyState::Unreadable("cannot read it".into()),
            ),
        ];
        let plan = plan(&files, &[], true, false);
        assert_eq!(plan.locked, vec![PathBuf::from("/k/locked")]);
        assert_eq!(
            plan.entries,
            vec![
                Entry::Note("/k/locked (passphrase-protected and not in ssh-agent)".into()),
                Entry::Note("/k/gone (file not found)".into()),
                Entry::Note("/k/secret (cannot read it)".into()),
            ]
        );
    }

    #[test]
    fn default_files_come_after_the_agent_and_missing_ones_are_not_mentioned() {
        let files = [
            file("/h/.ssh/id_ed25519", Some(b"E"), KeyState::Usable),
            file("/h/.ssh/id_ecdsa", None, KeyState::Missing),
            file("/h/.ssh/id_rsa", Some(b"R"), KeyState::Usable),
        ];
        let held = [key(b"W", "w"), key(b"R", "rsa")];
        let plan = plan(&files, &held, false, false);
        assert_eq!(
            plan.entries,
            vec![
                agent(0, "ssh-agent key w"),
                agent(1, "/h/.ssh/id_rsa (via ssh-agent)"),
                Entry::File(PathBuf::from("/h/.ssh/id_ed25519")),
            ]
        );
        // IdentitiesOnly without IdentityFile: the default files, through
        // the agent where it holds them, and nothing else of the agent's.
        let plan = super::plan(&files, &held, false, true);
        assert_eq!(
            plan.entries,
            vec![
                agent(1, "/h/.ssh/id_rsa (via ssh-agent)"),
                Entry::File(PathBuf::from("/h/.ssh/id_ed25519")),
            ]
        );
    }

    #[test]
    fn the_same_key_named_twice_is_offered_once() {
        let files = [
            file("/k/a", Some(b"A"), KeyState::Usable),
            file("/k/a-again", Some(b"A"), KeyState::Usable),
        ];
        let held = [key(b"A", "a")];
        let plan = plan(&files, &held, true, false);
        assert_eq!(plan.entries, vec![agent(0, "/k/a (via ssh-agent)")]);
    }

    #[test]
    fn a_transport_failure_hidden_under_publickey_unverified_is_told_apart() {
        let err = |code, msg: &'static str| ssh2::Error::new(ssh2::ErrorCode::Session(code), msg);
        let second = Duration::from_secs(1);
        let waiting = err(-19, "Waiting for USERAUTH response");
        assert_eq!(
            attempt_failure(&waiting, second / 10, second),
            Failure::Closed
        );
        assert_eq!(attempt_failure(&waiting, second, second), Failure::Timeout);
        assert_eq!(
            attempt_failure(&waiting, second * 100, Duration::ZERO),
            Failure::Closed
        );
        let refused = err(-18, "Username/PublicKey combination invalid");
        assert_eq!(attempt_failure(&refused, second, second), Failure::Refused);
        let bad_signature = err(-19, "Invalid signature for supplied public key");
        assert_eq!(
            attempt_failure(&bad_signature, second, second),
            Failure::Refused
        );
        assert!(matches!(
            attempt_failure(&err(-19, "Callback returned error"), second, second),
            Failure::Local(_)
        ));
        assert_eq!(
            attempt_failure(&err(-7, "send"), second, second),
            Failure::Closed
        );
        assert_eq!(
            attempt_failure(&err(-9, "timed out"), second, second),
            Failure::Timeout
        );
    }

    #[test]
    fn failure_messages_lead_with_the_cause_a_user_can_fix() {
        let outcome = Outcome {
            tried: vec!["/k/id (passphrase-protected and not in ssh-agent)".into()],
            ..Outcome::default()
        };
        let text = failure_message("web", "publickey", &[PathBuf::from("/k/id")], &outcome);
        assert!(text.starts_with(
            "web: key /k/id is passphrase-protected: add it to ssh-agent (ssh-add /k/id); \
             scout-mcp cannot prompt for passphrases; tried /k/id"
        ));
        let closed = Outcome {
            closed: true,
            offered: 2,
            refused: 1,
            tried: vec![
                "a (rejected)".into(),
                "b (the server closed the connection)".into(),
            ],
            ..Outcome::default()
        };
        let text = failure_message("web", "publickey", &[], &closed);
        assert!(
            text.contains("closed the connection after 2 keys were offered"),
            "{text}"
        );
        assert!(text.contains("MaxAuthTries"), "{text}");
        let capped = Outcome {
            offered: 6,
            refused: 6,
            left: 3,
            tried: vec!["a (rejected)".into()],
            ..Outcome::default()
        };
        let text = failure_message("web", "publickey", &[], &capped);
        assert!(
            text.contains("stopped after 6 refused keys, 3 left untried"),
            "{text}"
        );
        let none = failure_message("web", "publickey", &[], &Outcome::default());
        assert!(none.contains("tried no keys"), "{none}");
    }
}
