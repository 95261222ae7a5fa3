//! Multi-host scaling: 1 / 10 / 100 hosts, cold (a fresh server's first contact) and warm
//! (the same calls again), on plain loopback and behind a 10 ms one-way delay line. Two
//! shapes: N reads pipelined at once (one per host), and one broadcast `targets` call.

use serde_json::{json, Value};
use std::time::Duration;

use crate::client::{is_tool_error, tool_text, Client};
use crate::floor::{self, Endpoint, Op};
use crate::report::{failed, Row, Section, Series};
use crate::stats::{median, ms};
use crate::support::{ProxiedFleet, Proxy};
use crate::Bench;

const DELAYS_MS: [u64; 2] = [0, 10];
const LIMIT: Duration = Duration::from_secs(300);
/// SCOUT_WORKERS and SCOUT_BROADCAST_WIDTH defaults: how many first contacts run at once.
const WORKERS: usize = 16;
const BROADCAST_WIDTH: usize = 32;

/// Wall times of a first contact and of the same calls again.
type ColdWarm = (Result<Duration, String>, Result<Duration, String>);

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Reads,
    Broadcast,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Reads => "reads in parallel",
            Shape::Broadcast => "one broadcast read",
        }
    }
    fn width(self) -> usize {
        match self {
            Shape::Reads => WORKERS,
            Shape::Broadcast => BROADCAST_WIDTH,
        }
    }
}

struct Point {
    hosts: usize,
    delay_ms: u64,
    shape: Shape,
    cold: Result<Duration, String>,
    warm: Result<Duration, String>,
    /// ssh2 directly, a session per host, all at once (reads only).
    floor: Option<ColdWarm>,
}

pub fn run(b: &Bench) -> (Section, Vec<Series>) {
    let counts: Vec<usize> = [1, 10, 100]
        .into_iter()
        .filter(|&n| n <= b.fleet.host_count())
        .collect();
    let mut points = Vec::new();
    for delay_ms in DELAYS_MS {
        let most = counts.iter().copied().max().unwrap_or(1);
        let net = network(b, delay_ms, most);
        for &hosts in &counts {
            let targets: Vec<String> = net.aliases[..hosts]
                .iter()
                .map(|a| format!("{a}:{}", b.small.display()))
                .collect();
            for shape in [Shape::Reads, Shape::Broadcast] {
                let (cold, warm) = measure(b, &net.env, &targets, shape);
                let floor =
                    (shape == Shape::Reads).then(|| floor_fan_out(b, &net.endpoints[..hosts]));
                points.push(Point {
                    hosts,
                    delay_ms,
                    shape,
                    cold,
                    warm,
                    floor,
                });
            }
        }
        // The proxies stop here, before the next delay's servers start.
    }
    (section(&points), series(&points))
}

/// How the hosts are reached at one delay.
struct Network {
    env: Vec<(String, String)>,
    aliases: Vec<String>,
    endpoints: Vec<Endpoint>,
    /// The delay lines, which must outlive the runs.
    _proxies: Vec<Proxy>,
}

fn network(b: &Bench, delay_ms: u64, hosts: usize) -> Network {
    let base = [("SCOUT_MAX_POOL_SIZE", "200")];
    if delay_ms == 0 {
        return Network {
            env: b.env(&base),
            aliases: b.fleet.aliases(),
            endpoints: (0..hosts).map(|h| b.endpoint(h)).collect(),
            _proxies: Vec::new(),
        };
    }
    let proxies: Vec<Proxy> = (0..hosts)
        .map(|h| {
            let proxy = b.fleet.proxy(h);
            proxy.latency(Duration::from_millis(delay_ms));
            proxy
        })
        .collect();
    let aliases: Vec<String> = (0..hosts).map(|h| format!("wan{h}")).collect();
    let proxied: Vec<(&str, std::net::SocketAddr)> = aliases
        .iter()
        .zip(&proxies)
        .map(|(a, p)| (a.as_str(), p.addr()))
        .collect();
    let mut env = b.env(&base);
    for (key, value) in b.fleet.env_with_proxies(&proxied) {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    let endpoints = proxies
        .iter()
        .enumerate()
        .map(|(h, p)| Endpoint {
            addr: p.addr(),
            ..b.endpoint(h)
        })
        .collect();
    Network {
        env,
        aliases,
        endpoints,
        _proxies: proxies,
    }
}

/// The floor for N reads at once: ssh2 sessions connected in parallel, a thread per host,
/// each doing what scout-mcp's read does (stat, open, read, close).
fn floor_fan_out(b: &Bench, endpoints: &[Endpoint]) -> ColdWarm {
    let op = Op::StatRead(b.small.clone());
    match floor::cold_fan_out(endpoints, &op) {
        Ok((cold, conns)) => {
            let warm: Result<Vec<Duration>, String> = (0..b.pick(3, 7))
                .map(|_| floor::all_at_once(&conns, &op))
                .collect();
            let warm = warm.and_then(|w| median(&w).ok_or_else(|| "no samples".into()));
            (Ok(cold), warm)
        }
        Err(e) => (Err(e.clone()), Err(e)),
    }
}

/// Cold (first contact of a fresh server) and warm (median of the repeats) wall times.
fn measure(b: &Bench, env: &[(String, String)], targets: &[String], shape: Shape) -> ColdWarm {
    let mut client = match Client::spawn(env).and_then(|mut c| c.initialize().map(|_| c)) {
        Ok(c) => c,
        Err(e) => return (Err(e.clone()), Err(e)),
    };
    let once = |c: &mut Client| match shape {
        Shape::Reads => reads(c, targets),
        Shape::Broadcast => broadcast(c, targets),
    };
    let cold = once(&mut client);
    let warm: Result<Vec<Duration>, String> =
        (0..b.pick(3, 7)).map(|_| once(&mut client)).collect();
    let warm = warm.and_then(|w| median(&w).ok_or_else(|| "no samples".into()));
    (cold, warm)
}

fn reads(c: &mut Client, targets: &[String]) -> Result<Duration, String> {
    let calls: Vec<Value> = targets.iter().map(|t| json!({"target": t})).collect();
    let run = c.pipelined(&calls, calls.len(), false, LIMIT)?;
    match run.first_error {
        Some(why) => Err(format!(
            "{} of {} reads failed: {why}",
            run.errors,
            calls.len()
        )),
        None => Ok(run.wall),
    }
}

fn broadcast(c: &mut Client, targets: &[String]) -> Result<Duration, String> {
    let (took, result) = c.call(&json!({"targets": targets}), LIMIT)?;
    let all = format!("{0}/{0} hosts succeeded", targets.len());
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    if is_tool_error(&result) || !text.contains(&all) {
        return Err(format!("broadcast: {}", tool_text(&result)));
    }
    Ok(took)
}

fn find(points: &[Point], hosts: usize, delay_ms: u64, shape: Shape) -> Option<&Point> {
    points
        .iter()
        .find(|p| p.hosts == hosts && p.delay_ms == delay_ms && p.shape == shape)
}

fn section(points: &[Point]) -> Section {
    let rows = points.iter().map(|p| row(points, p)).collect();
    Section {
        title: "Multi-host scaling: wall time until all answered, cold / warm".into(),
        rows,
    }
}

fn row(points: &[Point], p: &Point) -> Row {
    let show = |r: &Result<Duration, String>| match r {
        Ok(d) => format!("{:.1} ms", ms(*d)),
        Err(e) => failed(e),
    };
    let mut row = Row::new(format!(
        "{} hosts, {}, {} ms one-way",
        p.hosts,
        p.shape.name(),
        p.delay_ms
    ))
    .scout(format!("cold {} / warm {}", show(&p.cold), show(&p.warm)));
    if let Some((cold, warm)) = &p.floor {
        row = row.floor(format!("cold {} / warm {}", show(cold), show(warm)));
    }
    if p.shape == Shape::Reads {
        let planned = match p.hosts {
            1 => "10 ms (planned, mocked)",
            10 => "15 ms (planned, mocked)",
            _ => "20 ms (planned, mocked)",
        };
        row = row.python(planned);
    }
    if p.hosts == 100 && p.delay_ms > 0 {
        row = target(points, p, row);
    }
    row
}

/// 100 hosts behind the delay line: warm broadcast within 3× one warm read on one such
/// host; cold, bounded by handshake waves (hosts / concurrency × one cold host, with 50 %
/// slack) rather than by a lock (which would make it hosts × one cold host).
fn target(points: &[Point], p: &Point, row: Row) -> Row {
    let one = find(points, 1, p.delay_ms, p.shape);
    let waves = p.hosts.div_ceil(p.shape.width());
    let cold_bound = one
        .and_then(|o| o.cold.as_ref().ok())
        .map(|c| c.mul_f64(1.5 * waves as f64));
    let cold_ok = cold_bound
        .zip(p.cold.as_ref().ok())
        .map(|(bound, c)| *c <= bound);
    let bound_text = cold_bound.map_or("n/a".into(), |d| format!("{:.0} ms", ms(d)));
    if p.shape == Shape::Reads {
        return row.target(
            format!("cold ≤ {waves} handshake waves × 1 cold host × 1.5 = {bound_text}"),
            cold_ok,
        );
    }
    let single = find(points, 1, p.delay_ms, Shape::Reads).and_then(|o| o.warm.as_ref().ok());
    let warm_ok = single
        .zip(p.warm.as_ref().ok())
        .map(|(s, w)| *w <= s.mul_f64(3.0));
    let single_text = single.map_or("n/a".into(), |d| format!("{:.1} ms", ms(*d)));
    let met = match (warm_ok, cold_ok) {
        (Some(w), Some(c)) => Some(w && c),
        _ => None,
    };
    row.target(
        format!("warm ≤ 3 × one warm read ({single_text}); cold ≤ {bound_text}"),
        met,
    )
}

fn series(points: &[Point]) -> Vec<Series> {
    let mut out = Vec::new();
    for delay_ms in DELAYS_MS {
        for shape in [Shape::Reads, Shape::Broadcast] {
            for warm in [false, true] {
                let pts: Vec<(usize, f64)> = points
                    .iter()
                    .filter(|p| p.delay_ms == delay_ms && p.shape == shape)
                    .filter_map(|p| {
                        let r = if warm { &p.warm } else { &p.cold };
                        r.as_ref().ok().map(|d| (p.hosts, ms(*d)))
                    })
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                let short = if shape == Shape::Reads {
                    "reads"
                } else {
                    "broadcast"
                };
                let temp = if warm { "warm" } else { "cold" };
                out.push(Series {
                    label: format!("{short}, {temp}, {delay_ms} ms"),
                    points: pts,
                    dashed: false,
                });
            }
        }
    }
    out.push(Series {
        label: "Python original, planned".into(),
        points: vec![(1, 10.0), (10, 15.0), (100, 20.0)],
        dashed: true,
    });
    out
}
