//! Temporary directories that clean up after themselves.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::user::running_as_root;

/// Set this to keep every temp dir (a fleet's keys, configs and sshd logs, say) after the
/// test, for diagnosis.
const KEEP_ENV: &str = "SCOUT_TEST_KEEP_TMP";

/// A fresh directory under the system temp dir, readable by everyone (the fleet's remote user
/// must reach into it), removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<temp>/<prefix>-<pid>-<n>-<nanos>`.
    pub fn new(prefix: &str) -> TempDir {
        static CREATED: AtomicUsize = AtomicUsize::new(0);
        let root = temp_root();
        for _ in 0..100 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let n = CREATED.fetch_add(1, Ordering::Relaxed);
            let path = root.join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => {
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
                    return TempDir { path };
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create a temp dir under {}: {e}", root.display()),
            }
        }
        panic!(
            "could not find an unused temp dir name under {} in 100 tries",
            root.display()
        );
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os(KEEP_ENV).is_some() {
            eprintln!(
                "tests/support: {KEEP_ENV} is set; keeping {}",
                self.path.display()
            );
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The system temp dir, unless the remote user could not reach into it (a private TMPDIR
/// while we are root) or its path has blanks (which would need quoting in ssh and sshd
/// configs): then /tmp.
fn temp_root() -> PathBuf {
    let root = std::env::temp_dir();
    let blank = root.to_string_lossy().contains(char::is_whitespace);
    let others_can_enter = root
        .ancestors()
        .all(|dir| fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if blank || (running_as_root() && !others_can_enter) {
        PathBuf::from("/tmp")
    } else {
        root
    }
}
