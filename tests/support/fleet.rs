//! A fleet of test hosts: real sshd daemons on loopback, one address per host, and the files a
//! client needs to reach them (ssh config, known_hosts, a key).

use std::collections::HashSet;
use std::fs;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::net::{loopback_ips, socket_inodes, tcp_sockets, ESTABLISHED};
use super::sshd::{default_options, Sshd, MAX_ADDRS_PER_DAEMON, SSHD};
use super::tail;
use super::temp::TempDir;
use super::user::{remote_user, running_as_root, RemoteUser};

/// Builds a [`Fleet`]: `Fleet::builder().hosts(20).sshd_option("MaxSessions", "2").start()`.
#[derive(Clone, Debug)]
pub struct FleetBuilder {
    hosts: usize,
    aliases_per_host: usize,
    sshd_options: Vec<(String, String)>,
    host_key_type: String,
    client_key_passphrase: Option<String>,
}

impl FleetBuilder {
    /// The `ssh-keygen -t` type of the daemons' host key (default "ed25519"); "rsa" for a
    /// server limited to ssh-rsa host key signatures.
    pub fn host_key_type(mut self, key_type: &str) -> Self {
        self.host_key_type = key_type.to_string();
        self
    }

    /// Encrypts the client key (the only authorized one) with `passphrase`, as `ssh-keygen -N`
    /// does: only an ssh-agent holding it can then use it.
    pub fn client_key_passphrase(mut self, passphrase: &str) -> Self {
        self.client_key_passphrase = Some(passphrase.to_string());
        self
    }

    /// How many hosts, each with its own address (default 1).
    pub fn hosts(mut self, hosts: usize) -> Self {
        self.hosts = hosts;
        self
    }

    /// Sets an sshd_config option for every daemon, replacing the fixture's default for that
    /// keyword if it has one (sshd takes the first value it reads, so a second line would be
    /// ignored).
    pub fn sshd_option(mut self, keyword: &str, value: &str) -> Self {
        self.sshd_options
            .push((keyword.to_string(), value.to_string()));
        self
    }

    /// How many ssh config aliases each host gets (default 1). With `k` aliases per host and
    /// `n` hosts, the aliases are host0 .. host{n*k-1}, and alias `j` names host `j % n`: the
    /// first `n` aliases are the hosts' own, and every address still has one known_hosts line.
    pub fn aliases_per_host(mut self, aliases: usize) -> Self {
        self.aliases_per_host = aliases;
        self
    }

    pub fn start(self) -> Fleet {
        assert!(
            self.hosts >= 1,
            "a fleet needs at least one host; asked for 0"
        );
        assert!(
            self.aliases_per_host >= 1,
            "each host needs at least one alias; asked for 0"
        );
        prepare_machine();
        let user = remote_user();
        let dir = TempDir::new("scout-fleet");
        let path = |name: &str| dir.path().join(name);

        // The temp dir must be readable by the remote user, who is not root: sshd reads
        // authorized_keys as that user, and remote commands read the data dir.
        generate_key(
            &path("host_key"),
            &self.host_key_type,
            "scout-mcp test fleet host key",
        );
        keygen(
            &path("client_key"),
            "ed25519",
            "scout-mcp test fleet client key",
            self.client_key_passphrase.as_deref().unwrap_or(""),
        );
        let client_public =
            fs::read_to_string(path("client_key.pub")).expect("read client_key.pub");
        write_file_mode(&path("authorized_keys"), client_public.as_bytes(), 0o644);
        fs::create_dir(path("data")).expect("create the fleet's data dir");
        chown_to(&path("data"), user);
        // HOME for scout-mcp: empty, so no default key or config of the developer's is found.
        fs::create_dir(path("home")).expect("create the fleet's empty home dir");

        let mut options = default_options();
        for (keyword, value) in self.sshd_options {
            match options
                .iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case(&keyword))
            {
                Some(option) => option.1 = value,
                None => options.push((keyword, value)),
            }
        }
        let ips = loopback_ips(self.hosts);
        let daemons = ips
            .chunks(MAX_ADDRS_PER_DAEMON)
            .enumerate()
            .map(|(index, ips)| Sshd::start(index, ips, dir.path(), options.clone()))
            .collect();

        let fleet = Fleet {
            daemons,
            hosts: self.hosts,
            aliases_per_host: self.aliases_per_host,
            user,
            extra_configs: AtomicUsize::new(0),
            dir,
        };
        fleet.write_client_files();
        fleet
    }
}

/// Logical hosts served by real sshd daemons on loopback (up to 16 hosts per daemon), with
/// the client files to reach them, all in a temp dir. Dropping the fleet stops its daemons,
/// the processes serving their connections and the commands those started, then removes the
/// temp dir.
pub struct Fleet {
    // Fields drop in this order: the daemons stop before their files are removed.
    daemons: Vec<Sshd>,
    hosts: usize,
    aliases_per_host: usize,
    user: &'static RemoteUser,
    extra_configs: AtomicUsize,
    dir: TempDir,
}

impl Fleet {
    /// Starts `hosts` hosts, with the default options.
    pub fn start(hosts: usize) -> Fleet {
        Fleet::builder().hosts(hosts).start()
    }

    pub fn builder() -> FleetBuilder {
        FleetBuilder {
            hosts: 1,
            aliases_per_host: 1,
            sshd_options: Vec::new(),
            host_key_type: "ed25519".to_string(),
            client_key_passphrase: None,
        }
    }

    /// How many hosts (addresses) the fleet has.
    pub fn host_count(&self) -> usize {
        self.hosts
    }

    /// The ssh config alias number `i`: "host0", "host1", ... Alias `i` names host
    /// `i % host_count()` (see [`FleetBuilder::aliases_per_host`]).
    pub fn alias(&self, i: usize) -> String {
        let count = self.hosts * self.aliases_per_host;
        assert!(
            i < count,
            "the fleet has {count} aliases; asked for alias {i}"
        );
        format!("host{i}")
    }

    /// Every alias in the ssh config, in order.
    pub fn aliases(&self) -> Vec<String> {
        (0..self.hosts * self.aliases_per_host)
            .map(|i| self.alias(i))
            .collect()
    }

    /// Which host alias `i` names.
    pub fn host_of_alias(&self, i: usize) -> usize {
        i % self.hosts
    }

    /// Address and port of host `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        assert!(
            i < self.hosts,
            "the fleet has {} hosts; asked for host {i}",
            self.hosts
        );
        SocketAddr::V4(self.daemons[i / MAX_ADDRS_PER_DAEMON].addrs()[i % MAX_ADDRS_PER_DAEMON])
    }

    /// How many sshd daemons serve the fleet; host `i` is served by daemon `i / 16`.
    pub fn daemon_count(&self) -> usize {
        self.daemons.len()
    }

    pub fn daemon_of_host(&self, i: usize) -> usize {
        assert!(
            i < self.hosts,
            "the fleet has {} hosts; asked for host {i}",
            self.hosts
        );
        i / MAX_ADDRS_PER_DAEMON
    }

    pub fn ssh_config_path(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// Makes another ed25519 key pair, `name` and `name.pub` in the fleet's dir, without a
    /// passphrase and not authorized on any host: a wrong key.
    pub fn new_key(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        generate_key(&path, "ed25519", &format!("scout-mcp test key {name}"));
        path
    }

    /// The fleet's temp dir (keys, configs, sshd logs, data dir).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A directory on the "remote" side (the same machine), owned by the remote user, for the
    /// files tests read and write over SSH.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The user the fleet's sshd logs clients in as.
    pub fn remote_user(&self) -> String {
        self.user.name.clone()
    }

    /// Writes `contents` to `rel` under the data dir, creating parent directories; all of it
    /// owned by the remote user. Returns the absolute path.
    pub fn write_file(&self, rel: &str, contents: &[u8]) -> PathBuf {
        let path = self.data_path(rel);
        if let Some(parent) = path.parent() {
            self.create_dirs(parent);
        }
        fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        chown_to(&path, self.user);
        path
    }

    /// Creates directory `rel` under the data dir (and its parents), owned by the remote user.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.data_path(rel);
        self.create_dirs(&path);
        path
    }

    /// Environment for scout-mcp: this fleet's ssh config and known_hosts, a HOME with no
    /// keys or config in it, and debug logging.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = |p: PathBuf| p.display().to_string();
        vec![
            ("SCOUT_SSH_CONFIG".to_string(), path(self.ssh_config_path())),
            (
                "SCOUT_KNOWN_HOSTS".to_string(),
                path(self.known_hosts_path()),
            ),
            ("HOME".to_string(), path(self.dir.path().join("home"))),
            ("SCOUT_LOG_LEVEL".to_string(), "debug".to_string()),
        ]
    }

    /// Options that make OpenSSH's `ssh` or `sftp` use this fleet's config and known_hosts,
    /// check host keys strictly and never prompt.
    pub fn openssh_args(&self) -> Vec<String> {
        vec![
            "-F".to_string(),
            self.ssh_config_path().display().to_string(),
            "-o".to_string(),
            format!("UserKnownHostsFile={}", self.known_hosts_path().display()),
            "-o".to_string(),
            "GlobalKnownHostsFile=/dev/null".to_string(),
            "-o".to_string(),
            "StrictHostKeyChecking=yes".to_string(),
            "-o".to_string(),
            "BatchMode=yes".to_string(),
            "-o".to_string(),
            "ConnectTimeout=30".to_string(),
        ]
    }

    /// An OpenSSH `ssh` command to `alias` with [`Fleet::openssh_args`]; add the remote command.
    pub fn ssh_command(&self, alias: &str) -> Command {
        let mut command = Command::new("ssh");
        command.args(self.openssh_args()).arg(alias);
        command
    }

    /// Number of ESTABLISHED TCP connections to any of this fleet's sshd addresses, counted on
    /// the client side: a client socket leaves ESTABLISHED the moment its owner closes it,
    /// whereas the server side lags until the FIN is processed, which would let a count taken
    /// between "old connection closed" and "new one opened" see both.
    pub fn established_connections(&self) -> usize {
        let ours: HashSet<SocketAddrV4> = self
            .daemons
            .iter()
            .flat_map(|d| d.addrs().iter().copied())
            .collect();
        tcp_sockets()
            .iter()
            .filter(|s| s.state == ESTABLISHED && ours.contains(&s.remote))
            .count()
    }

    /// Distinct TCP sockets held open by process `pid` that are ESTABLISHED to this fleet.
    /// Counting sockets a process holds avoids a trap of the plain kernel table: it is read
    /// in pages while connections come and go, so under churn one read can list more sockets
    /// than ever existed at one moment.
    pub fn connections_held_by(&self, pid: u32) -> usize {
        let ours: HashSet<SocketAddrV4> = self
            .daemons
            .iter()
            .flat_map(|d| d.addrs().iter().copied())
            .collect();
        let held = socket_inodes(pid);
        tcp_sockets()
            .iter()
            .filter(|s| {
                s.state == ESTABLISHED && ours.contains(&s.remote) && held.contains(&s.inode)
            })
            .map(|s| s.inode)
            .collect::<HashSet<_>>()
            .len()
    }

    /// SIGKILLs daemon `daemon`, the processes serving its open connections and the commands
    /// they started: its hosts go dark and every client connected to them is cut off.
    pub fn kill_sshd(&mut self, daemon: usize) {
        let sshd = self.daemon_mut(daemon);
        assert!(
            sshd.stop(),
            "kill_sshd({daemon}): some of its processes were still running 10 s after SIGKILL"
        );
    }

    /// Starts daemon `daemon` again on the same addresses and ports (it is stopped first if it
    /// is running), and waits until it listens on all of them.
    pub fn restart_sshd(&mut self, daemon: usize) {
        self.daemon_mut(daemon).restart();
    }

    /// The pid of daemon `daemon`'s listener, if it is running.
    pub fn sshd_pid(&self, daemon: usize) -> Option<u32> {
        self.daemon(daemon).pid()
    }

    /// Everything daemon `daemon` has logged (LogLevel ERROR unless overridden).
    pub fn sshd_log(&self, daemon: usize) -> String {
        self.daemon(daemon).log()
    }

    pub fn sshd_config_path(&self, daemon: usize) -> PathBuf {
        self.daemon(daemon).config_path()
    }

    /// Writes another ssh config: the fleet's hosts plus `extra` hosts (alias, address) with
    /// the same user and key, for tests that mix good hosts with broken ones. known_hosts is
    /// left as it is, so the extra hosts are unknown there.
    pub fn ssh_config_with(&self, extra: &[(&str, SocketAddr)]) -> PathBuf {
        let mut config = self.ssh_config_text();
        for (alias, addr) in extra {
            config += &self.host_block(alias, *addr);
        }
        let n = self.extra_configs.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("ssh_config_with_{n}"));
        write_file_mode(&path, config.as_bytes(), 0o644);
        path
    }

    /// Writes another ssh config: the fleet's hosts, each naming `keys` as its IdentityFiles
    /// (instead of the client key) and saying `IdentitiesOnly` yes or no.
    pub fn ssh_config_with_keys(&self, keys: &[&Path], identities_only: bool) -> PathBuf {
        let mut config = String::from("# scout-mcp test fleet (tests/support), other keys\n\n");
        for (i, alias) in self.aliases().iter().enumerate() {
            let addr = self.addr(self.host_of_alias(i));
            config += &format!(
                "Host {alias}\n    HostName {}\n    Port {}\n    User {}\n",
                addr.ip(),
                addr.port(),
                self.user.name
            );
            for key in keys {
                config += &format!("    IdentityFile {}\n", key.display());
            }
            let only = if identities_only { "yes" } else { "no" };
            config += &format!("    IdentitiesOnly {only}\n\n");
        }
        let n = self.extra_configs.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("ssh_config_with_keys_{n}"));
        write_file_mode(&path, config.as_bytes(), 0o644);
        path
    }

    fn daemon(&self, daemon: usize) -> &Sshd {
        let count = self.daemons.len();
        self.daemons.get(daemon).unwrap_or_else(|| {
            panic!("the fleet has {count} sshd daemons; asked for daemon {daemon}")
        })
    }

    fn daemon_mut(&mut self, daemon: usize) -> &mut Sshd {
        let count = self.daemons.len();
        self.daemons.get_mut(daemon).unwrap_or_else(|| {
            panic!("the fleet has {count} sshd daemons; asked for daemon {daemon}")
        })
    }

    /// Writes the ssh config (a block per alias) and known_hosts (a line per address: every
    /// host shares the fleet's host key, but OpenSSH looks keys up by address and port).
    fn write_client_files(&self) {
        write_file_mode(
            &self.ssh_config_path(),
            self.ssh_config_text().as_bytes(),
            0o644,
        );
        let public =
            fs::read_to_string(self.dir.path().join("host_key.pub")).expect("read host_key.pub");
        // "ssh-ed25519 AAAA... comment": known_hosts wants the type and the key.
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        let key = key.join(" ");
        let known_hosts: String = (0..self.hosts)
            .map(|i| match self.addr(i) {
                SocketAddr::V4(a) => format!("[{}]:{} {key}\n", a.ip(), a.port()),
                SocketAddr::V6(a) => unreachable!("fleet addresses are IPv4, not {a}"),
            })
            .collect();
        write_file_mode(&self.known_hosts_path(), known_hosts.as_bytes(), 0o644);
    }

    fn ssh_config_text(&self) -> String {
        let mut config = String::from("# scout-mcp test fleet (tests/support)\n\n");
        for (i, alias) in self.aliases().iter().enumerate() {
            config += &self.host_block(alias, self.addr(self.host_of_alias(i)));
        }
        config
    }

    fn host_block(&self, alias: &str, addr: SocketAddr) -> String {
        format!(
            "Host {alias}\n    HostName {}\n    Port {}\n    User {}\n    IdentityFile {}\n    IdentitiesOnly yes\n\n",
            addr.ip(),
            addr.port(),
            self.user.name,
            self.client_key_path().display(),
        )
    }

    /// `rel` under the data dir; it must stay inside it.
    fn data_path(&self, rel: &str) -> PathBuf {
        let rel = Path::new(rel);
        assert!(
            rel.components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
            "paths under the data dir must be relative and without '..'; got {rel:?}"
        );
        self.data_dir().join(rel)
    }

    /// Creates `path` and its missing parents, each owned by the remote user.
    fn create_dirs(&self, path: &Path) {
        let missing: Vec<&Path> = path.ancestors().take_while(|p| !p.exists()).collect();
        for dir in missing.into_iter().rev() {
            match fs::create_dir(dir) {
                Ok(()) => chown_to(dir, self.user),
                // Another thread of the same test made it meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => panic!("cannot create {}: {e}", dir.display()),
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- tests/support: the test failed; fleet dir {} (SCOUT_TEST_KEEP_TMP=1 keeps it)",
                self.dir.path().display()
            );
            for (index, sshd) in self.daemons.iter().enumerate() {
                eprintln!(
                    "--- sshd {index} log (last 4 KiB):\n{}",
                    tail(&sshd.log(), 4096)
                );
            }
        }
        // The daemons stop as the fields drop, before the temp dir goes.
    }
}

/// What every fleet needs from the machine: the sshd binary and its privilege-separation dir.
fn prepare_machine() {
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} not found: install openssh-server (`make test` and .ci/run do: apt-get install -y openssh-server)"
    );
    // sshd started as root refuses to run without /run/sshd. Others cannot create it, and
    // their sshd does not need it.
    if running_as_root() {
        fs::create_dir_all("/run/sshd")
            .expect("create /run/sshd, which sshd needs when run as root");
    }
}

fn generate_key(path: &Path, key_type: &str, comment: &str) {
    keygen(path, key_type, comment, "");
}

/// `ssh-keygen` with `passphrase` ("" for none).
fn keygen(path: &Path, key_type: &str, comment: &str, passphrase: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", key_type, "-N", passphrase, "-C", comment, "-f"])
        .arg(path)
        .output()
        .expect("run ssh-keygen (from openssh-client) to make a test key");
    assert!(
        out.status.success(),
        "ssh-keygen could not write {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a file with explicit permissions: OpenSSH refuses a config that others may write,
/// whatever the umask.
fn write_file_mode(path: &Path, contents: &[u8], mode: u32) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

/// Gives `path` to the remote user. Needed only as root: otherwise the remote user is us.
fn chown_to(path: &Path, user: &RemoteUser) {
    if running_as_root() {
        chown(path, Some(user.uid), Some(user.gid))
            .unwrap_or_else(|e| panic!("cannot chown {} to {}: {e}", path.display(), user.name));
    }
}
