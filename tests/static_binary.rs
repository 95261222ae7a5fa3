//! The static binary from `make static`, as it ships to a jump host: copied into an otherwise
//! empty root (only /etc/hosts, /etc/passwd and the ssh files it needs) and run there with
//! `chroot`, it serves a real MCP session against a loopback sshd outside that root.
//!
//! `make test` builds the binary first (the `test` target depends on `static`); run alone,
//! these tests fail with "run make static" rather than skip.

mod support;

use serde_json::json;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Fleet, Scout, TempDir, PATIENCE};

const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The name the root's /etc/hosts gives the fleet host: resolving it needs glibc's NSS,
/// which a static binary carries inside itself.
const HOST_NAME: &str = "old-appliance.internal";

/// Where `make static` leaves the binary: target/x86_64-unknown-linux-gnu/release/scout-mcp
/// under the target dir cargo used (CARGO_TARGET_DIR if it was set).
fn static_binary() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir =
        option_env!("CARGO_TARGET_DIR").map_or(manifest.join("target"), |dir| manifest.join(dir));
    let path = target_dir.join(STATIC_TARGET).join("release/scout-mcp");
    assert!(
        path.is_file(),
        "{} not found: run `make static` first (`make test` does)",
        path.display()
    );
    path
}

/// How an ELF executable is linked, read from its program headers.
#[derive(Debug)]
struct Linking {
    /// PT_INTERP: the dynamic loader the kernel must start first.
    interpreter: Option<String>,
    /// DT_NEEDED entries: shared libraries the loader must find.
    needed: usize,
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;

/// Reads the program headers of a little-endian 64-bit ELF file. A static-pie binary keeps a
/// PT_DYNAMIC segment (for its own relocations) but has no interpreter and needs nothing.
fn elf_linking(elf: &[u8]) -> Result<Linking, String> {
    let u16_at = |at: usize| read::<2>(elf, at).map(u16::from_le_bytes);
    let u32_at = |at: usize| read::<4>(elf, at).map(u32::from_le_bytes);
    let u64_at = |at: usize| read::<8>(elf, at).map(u64::from_le_bytes);
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return Err("not a little-endian 64-bit ELF file".into());
    }
    let table = u64_at(0x20)? as usize;
    let entry_size = usize::from(u16_at(0x36)?);
    let entries = usize::from(u16_at(0x38)?);
    let mut linking = Linking {
        interpreter: None,
        needed: 0,
    };
    for i in 0..entries {
        let header = table + i * entry_size;
        let offset = u64_at(header + 8)? as usize;
        let size = u64_at(header + 32)? as usize;
        let segment = elf
            .get(offset..offset + size)
            .ok_or_else(|| format!("program header {i} points past the end of the file"))?;
        match u32_at(header)? {
            PT_INTERP => {
                let path = segment.split(|&b| b == 0).next().unwrap_or_default();
                linking.interpreter = Some(String::from_utf8_lossy(path).into_owned());
            }
            PT_DYNAMIC => {
                linking.needed += segment
                    .chunks_exact(16)
                    .filter(|entry| entry[..8] == DT_NEEDED.to_le_bytes())
                    .count();
            }
            _ => {}
        }
    }
    Ok(linking)
}

fn read<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], String> {
    bytes
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("truncated ELF file: no {N} bytes at offset {at:#x}"))
}

fn linking_of(path: &Path) -> Linking {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    elf_linking(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_static_binary_has_no_loader_and_needs_no_shared_library() {
    let linking = linking_of(&static_binary());
    assert!(
        linking.interpreter.is_none() && linking.needed == 0,
        "the static binary is dynamically linked: {linking:?}"
    );
}

#[test]
fn the_elf_check_sees_the_ordinary_build_as_dynamic() {
    // The test build of the same program, linked the usual way: proof the check above can fail.
    let linking = linking_of(Path::new(env!("CARGO_BIN_EXE_scout-mcp")));
    assert!(
        linking
            .interpreter
            .as_deref()
            .is_some_and(|p| p.contains("ld-linux"))
            && linking.needed > 0,
        "{linking:?}"
    );
}

/// An empty root holding the binary and what one jump host needs: /etc/hosts naming the fleet
/// host, /etc/passwd, an empty home and the ssh config, known_hosts and key under /ssh.
fn jump_host_root(fleet: &Fleet) -> TempDir {
    let root = TempDir::new("scout-static-root");
    let at = |rel: &str| root.path().join(rel);
    for dir in ["etc", "ssh", "root"] {
        fs::create_dir(at(dir)).unwrap_or_else(|e| panic!("cannot create /{dir}: {e}"));
    }
    let addr = fleet.addr(0);
    let (ip, port) = (addr.ip(), addr.port());
    write(
        &at("etc/hosts"),
        &format!("127.0.0.1 localhost\n{ip} {HOST_NAME}\n"),
        0o644,
    );
    write(
        &at("etc/passwd"),
        "root:x:0:0:root:/root:/bin/false\n",
        0o644,
    );
    let user = fleet.remote_user();
    let block = |alias: &str, host: &str| {
        format!(
            "Host {alias}\n    HostName {host}\n    Port {port}\n    User {user}\n    \
             IdentityFile /ssh/client_key\n    IdentitiesOnly yes\n\n"
        )
    };
    let config = block("by-name", HOST_NAME) + &block("by-ip", &ip.to_string());
    write(&at("ssh/config"), &config, 0o644);
    let public = fs::read_to_string(fleet.dir().join("host_key.pub")).expect("the host key");
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    let key = key.join(" ");
    let known = format!("[{HOST_NAME}]:{port} {key}\n[{ip}]:{port} {key}\n");
    write(&at("ssh/known_hosts"), &known, 0o644);
    let private = fs::read_to_string(fleet.client_key_path()).expect("the client key");
    write(&at("ssh/client_key"), &private, 0o600);
    fs::copy(static_binary(), at("scout-mcp")).expect("copy the static binary into the root");
    root
}

fn write(path: &Path, contents: &str, mode: u32) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

fn chroot_program() -> &'static str {
    ["/usr/sbin/chroot", "/usr/bin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| panic!("chroot not found in /usr/sbin or /usr/bin (coreutils)"))
}

#[test]
fn the_static_binary_serves_a_session_from_an_empty_root() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs the binary under chroot, which needs root (CI runs as root)"
    );
    let fleet = Fleet::start(1);
    let file = fleet.write_file("static/motd", b"served from an empty root\n");
    let root = jump_host_root(&fleet);
    let mut command = Command::new(chroot_program());
    command.env_clear().arg(root.path()).arg("/scout-mcp");
    let env = [
        ("SCOUT_SSH_CONFIG", "/ssh/config"),
        ("SCOUT_KNOWN_HOSTS", "/ssh/known_hosts"),
        ("HOME", "/root"),
        ("SCOUT_LOG_LEVEL", "debug"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let mut scout = Scout::spawn_command(command, &env);

    let init = scout.initialize();
    assert_eq!(init["serverInfo"]["name"], "scout-mcp", "{init}");
    let tools = scout.request("tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"scout"), "tools/list: {tools}");

    for alias in ["by-name", "by-ip"] {
        let r = scout.call(json!({"target": format!("{alias}:{}", file.display())}));
        assert!(!r.is_error, "reading through {alias}: {}", r.text);
        assert!(r.text.contains("served from an empty root"), "{}", r.text);
    }
    let r = scout.call(json!({"target": "by-name:/", "query": "echo ran on $(hostname)"}));
    assert!(!r.is_error, "the command failed: {}", r.text);
    assert!(r.text.contains("ran on"), "{}", r.text);

    scout.close_stdin();
    let status = scout.wait_exit(PATIENCE);
    assert!(
        status.is_some_and(|s| s.success()),
        "scout-mcp did not exit cleanly when stdin closed: {status:?}\n{}",
        scout.stderr_log()
    );
}
