//! Latency of single operations on a warm host: scout-mcp against the ssh2 floor and OpenSSH
//! with a ControlMaster, all on the same host in the same run.

use serde_json::{json, Value};
use std::time::Duration;

use crate::client::Client;
use crate::floor::{self, Op};
use crate::openssh::Master;
use crate::report::{failed, Row, Section};
use crate::stats::{ms, Latency};
use crate::Bench;

/// One operation as each contender does it.
struct Case {
    name: &'static str,
    scout: Value,
    scout_fails: bool,
    floor: Op,
    openssh: String,
    /// Bytes moved, for a throughput figure instead of a latency one.
    bytes: Option<usize>,
}

fn cases(b: &Bench) -> Vec<Case> {
    let host = b.fleet.alias(0);
    let at = |p: &std::path::Path| format!("{host}:{}", p.display());
    let q = |p: &std::path::Path| format!("'{}'", p.display());
    vec![
        Case {
            name: "stat (scout: read of a missing path, which is one SFTP stat)",
            scout: json!({"target": at(&b.missing)}),
            scout_fails: true,
            floor: Op::Stat(b.small.clone()),
            openssh: format!("stat -c %s {}", q(&b.small)),
            bytes: None,
        },
        Case {
            name: "read small file (60 B)",
            scout: json!({"target": at(&b.small)}),
            scout_fails: false,
            floor: Op::Read(b.small.clone()),
            openssh: format!("cat {}", q(&b.small)),
            bytes: None,
        },
        Case {
            name: "list dir (20 entries)",
            scout: json!({"target": at(&b.dir20)}),
            scout_fails: false,
            floor: Op::List(b.dir20.clone()),
            openssh: format!("ls -la {}", q(&b.dir20)),
            bytes: None,
        },
        Case {
            name: "command (`echo bench` in the data dir)",
            scout: json!({"target": at(&b.data), "query": crate::COMMAND}),
            scout_fails: false,
            floor: Op::Exec(format!("cd -- {} && {}", q(&b.data), crate::COMMAND)),
            openssh: format!("cd -- {} && {}", q(&b.data), crate::COMMAND),
            bytes: None,
        },
        Case {
            name: "read 1 MiB file",
            scout: json!({"target": at(&b.big)}),
            scout_fails: false,
            floor: Op::Read(b.big.clone()),
            openssh: format!("cat {}", q(&b.big)),
            bytes: Some(crate::BIG),
        },
    ]
}

/// Each case's samples from each contender.
struct Measured {
    scout: Result<Latency, String>,
    floor: Result<Latency, String>,
    openssh: Result<Latency, String>,
}

pub fn run(b: &Bench) -> Section {
    let mut scout = Client::spawn(&b.env(&[]));
    if let Ok(client) = scout.as_mut() {
        if let Err(e) = client.initialize() {
            scout = Err(e);
        }
    }
    let floor_conn = floor::connect(&b.endpoint(0));
    let master = Master::start(&b.fleet, &b.fleet.alias(0));
    let mut rows = Vec::new();
    let mut read_p50 = None;
    for case in cases(b) {
        let samples = if case.bytes.is_some() {
            b.pick(10, 100)
        } else {
            b.pick(30, 1000)
        };
        let mut server_side = None;
        let scout_result = match case.bytes {
            // A server of its own, so that its metrics hold only these reads.
            Some(_) => big_read(b, &case, samples).map(|(l, server)| {
                server_side = server;
                l
            }),
            None => scout
                .as_mut()
                .map_err(|e| e.clone())
                .and_then(|c| scout_latency(c, &case, samples)),
        };
        let m = Measured {
            scout: scout_result,
            floor: floor_conn
                .as_ref()
                .map_err(|e| e.clone())
                .and_then(|c| floor::latency(c, &case.floor, samples))
                .and_then(latency),
            openssh: master
                .as_ref()
                .map_err(|e| e.clone())
                .and_then(|m| m.latency(&case.openssh, samples.min(b.pick(20, 200))))
                .and_then(latency),
        };
        if case.name.starts_with("read small") {
            if let (Ok(s), Ok(f)) = (&m.scout, &m.floor) {
                read_p50 = Some((s.p50, f.p50));
            }
        }
        let mut r = row(&case, &m);
        if let Some(p50) = server_side {
            // The server's own part (metrics://pool: from receipt to the answer built);
            // the rest is JSON encoding, the pipe and the client's JSON parsing.
            r.scout = format!("{}; server part p50 {p50:.2} ms", r.scout);
        }
        rows.push(r);
    }
    rows.push(overhead_row(read_p50));
    Section {
        title: "SSH operations on one warm host (sequential, 1 in flight)".into(),
        rows,
    }
}

fn scout_latency(c: &mut Client, case: &Case, samples: usize) -> Result<Latency, String> {
    let calls = vec![case.scout.clone(); samples + 1];
    let run = c.pipelined(&calls, 1, case.scout_fails, Duration::from_secs(300))?;
    if let Some(why) = run.first_error {
        return Err(format!("{} of {} calls: {why}", run.errors, calls.len()));
    }
    // The first call warms the session up.
    latency(run.latencies[1..].to_vec())
}

/// The big read on a fresh server: its latency as the client sees it, and the server's
/// own p50 for it from `metrics://pool` (None when the server has no such figure).
fn big_read(b: &Bench, case: &Case, samples: usize) -> Result<(Latency, Option<f64>), String> {
    let mut client = Client::spawn(&b.env(&[]))?;
    client.initialize()?;
    let latency = scout_latency(&mut client, case, samples)?;
    let server = client
        .resource("metrics://pool")
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|m| m["requests"]["by_mode"]["read"]["p50_ms"].as_f64());
    Ok((latency, server))
}

fn latency(samples: Vec<Duration>) -> Result<Latency, String> {
    Latency::of(&samples).ok_or_else(|| "no samples".to_string())
}

fn row(case: &Case, m: &Measured) -> Row {
    let show = |r: &Result<Latency, String>| match (r, case.bytes) {
        (Ok(l), None) => format!("{:.3} / {:.3} ms (n={})", ms(l.p50), ms(l.p95), l.samples),
        (Ok(l), Some(bytes)) => format!(
            "{:.0} MB/s (p50 {:.2} ms, p95 {:.2} ms, n={})",
            bytes as f64 / l.p50.as_secs_f64() / 1e6,
            ms(l.p50),
            ms(l.p95),
            l.samples
        ),
        (Err(e), _) => failed(e),
    };
    let metric = match case.bytes {
        None => format!("{}: p50 / p95", case.name),
        Some(_) => format!("{}: throughput at p50", case.name),
    };
    let mut row = Row::new(metric)
        .scout(show(&m.scout))
        .floor(show(&m.floor))
        .openssh(show(&m.openssh));
    let both = m.scout.as_ref().ok().zip(m.floor.as_ref().ok());
    if case.name.starts_with("read small") {
        row = row.target(
            "p50 ≤ floor + 0.3 ms",
            both.map(|(s, f)| s.p50 <= f.p50 + Duration::from_micros(300)),
        );
    } else if case.name.starts_with("command") {
        row = row.target(
            "p50 ≤ floor + 1 ms",
            both.map(|(s, f)| s.p50 <= f.p50 + Duration::from_millis(1)),
        );
    } else if case.bytes.is_some() {
        row = row.python("93 MB/s");
    }
    row
}

fn overhead_row(read_p50: Option<(Duration, Duration)>) -> Row {
    let row = Row::new("SSH operation overhead over the floor (small read, p50)").python("13 %");
    match read_p50 {
        Some((s, f)) => row.scout(format!(
            "{:+.3} ms ({:+.0} %)",
            ms(s) - ms(f),
            (ms(s) / ms(f).max(1e-6) - 1.0) * 100.0
        )),
        None => row.scout(failed("the scout or floor read row failed")),
    }
}
