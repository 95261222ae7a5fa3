//! Reads through a ProxyJump: a jump sshd and a target sshd on the loopback of a network
//! namespace the bench creates (as the ProxyJump tests do), reached through a forwarder, so
//! the target is reachable only through the jump host. Needs root (`ip netns`).

use serde_json::{json, Value};
use std::fs;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::report::{failed, Row, Section};
use crate::stats::{ms, Latency};
use crate::support::{Forwarder, Netns, NsSshd};
use crate::Bench;

/// Ports on the namespace's own loopback: nothing else lives there.
const JUMP_PORT: u16 = 2201;
const TARGET_PORT: u16 = 2202;

/// The namespace, its daemons and the client files; all torn down on drop.
struct Lab {
    // Drop order: the way in first, then the daemons, then the namespace.
    _forwarder: Forwarder,
    _daemons: Vec<NsSshd>,
    _ns: std::sync::Arc<Netns>,
    env: Vec<(String, String)>,
}

impl Lab {
    fn start(b: &Bench) -> Lab {
        let ns = std::sync::Arc::new(Netns::create());
        let host_key = b.fleet.dir().join("host_key");
        let daemons = vec![
            NsSshd::start(&ns, &b.fleet, JUMP_PORT, &host_key),
            NsSshd::start(&ns, &b.fleet, TARGET_PORT, &host_key),
        ];
        let forwarder = Forwarder::start(&ns, JUMP_PORT);
        let dir = b.fleet.dir();
        let user = b.fleet.remote_user();
        let key = b.fleet.client_key_path();
        let jump = forwarder.addr();
        let block = |alias: &str, ip: &str, port: u16, via: &str| {
            format!(
                "Host {alias}\n  HostName {ip}\n  Port {port}\n  User {user}\n  \
                 IdentityFile {}\n  IdentitiesOnly yes\n  ProxyJump {via}\n\n",
                key.display()
            )
        };
        let config = block("jump", &jump.ip().to_string(), jump.port(), "none")
            + &block("behind", "127.0.0.1", TARGET_PORT, "jump");
        let config_path = dir.join("bench_jump_config");
        fs::write(&config_path, config).expect("write the ProxyJump ssh config");
        let public = fs::read_to_string(dir.join("host_key.pub")).expect("read host_key.pub");
        let public: Vec<&str> = public.split_whitespace().take(2).collect();
        let known = format!(
            "[{}]:{} {key}\n[127.0.0.1]:{TARGET_PORT} {key}\n",
            jump.ip(),
            jump.port(),
            key = public.join(" ")
        );
        let known_path = dir.join("bench_jump_known_hosts");
        fs::write(&known_path, known).expect("write the ProxyJump known_hosts");
        let env = b.env(&[
            ("SCOUT_SSH_CONFIG", &config_path.display().to_string()),
            ("SCOUT_KNOWN_HOSTS", &known_path.display().to_string()),
        ]);
        Lab {
            _forwarder: forwarder,
            _daemons: daemons,
            _ns: ns,
            env,
        }
    }
}

pub fn run(b: &Bench) -> Section {
    let lab = Lab::start(b);
    let small = json!({"target": format!("behind:{}", b.small.display())});
    let big = json!({"target": format!("behind:{}", b.big.display())});
    let rows = vec![
        first_call(&lab, &small),
        latency_row(
            &lab,
            "small read (60 B): p50 / p95",
            &small,
            b.pick(30, 300),
            None,
        ),
        latency_row(
            &lab,
            "1 MiB read: throughput at p50",
            &big,
            b.pick(5, 50),
            Some(crate::BIG),
        ),
    ];
    Section {
        title: "Through a ProxyJump (jump host and target in a network namespace, one hop)".into(),
        rows,
    }
}

/// A fresh server's first call: connect and authenticate to the jump host, open the tunnel,
/// connect and authenticate to the target through it, start SFTP, read.
fn first_call(lab: &Lab, call: &Value) -> Row {
    let row = Row::new("first call through the jump host (both connects + SFTP + read)");
    let measured = Client::spawn(&lab.env).and_then(|mut client| {
        client.initialize()?;
        let started = Instant::now();
        let run = client.pipelined(
            std::slice::from_ref(call),
            1,
            false,
            Duration::from_secs(60),
        )?;
        match run.first_error {
            Some(why) => Err(why),
            None => Ok(started.elapsed()),
        }
    });
    match measured {
        Ok(t) => row.scout(format!("{:.2} ms", ms(t))),
        Err(e) => row.scout(failed(&e)),
    }
}

fn latency_row(lab: &Lab, name: &str, call: &Value, samples: usize, bytes: Option<usize>) -> Row {
    let row = Row::new(format!("through the jump host, {name}"));
    let measured = Client::spawn(&lab.env).and_then(|mut client| {
        client.initialize()?;
        let calls = vec![call.clone(); samples + 1];
        let run = client.pipelined(&calls, 1, false, Duration::from_secs(300))?;
        if let Some(why) = run.first_error {
            return Err(why);
        }
        // The first call pays the connects.
        Latency::of(&run.latencies[1..]).ok_or_else(|| "no samples".to_string())
    });
    match (measured, bytes) {
        (Ok(l), None) => row.scout(format!(
            "{:.3} / {:.3} ms (n={})",
            ms(l.p50),
            ms(l.p95),
            l.samples
        )),
        (Ok(l), Some(bytes)) => row.scout(format!(
            "{:.0} MB/s (p50 {:.2} ms, p95 {:.2} ms, n={})",
            bytes as f64 / l.p50.as_secs_f64() / 1e6,
            ms(l.p50),
            ms(l.p95),
            l.samples
        )),
        (Err(e), _) => row.scout(failed(&e)),
    }
}
