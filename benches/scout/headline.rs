//! The Python original's headline table, measured on real sshd: cold start, warm pool
//! check-out, single- and multi-host throughput, memory, lock wait and the pool bound.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::floor::{self, Endpoint, Op};
use crate::metrics;
use crate::openssh::Master;
use crate::report::{failed, Row, Section};
use crate::stats::{median, ms, rate};
use crate::Bench;

/// Requests in flight in the throughput runs.
const IN_FLIGHT: usize = 64;

/// A long but finite wait for a whole run.
const RUN_LIMIT: Duration = Duration::from_secs(300);

pub fn run(b: &Bench) -> Section {
    let mut rows = cold_start(b);
    rows.extend(single_host(b));
    rows.push(multi_host(b));
    rows.extend(memory(b));
    rows.push(bound(b));
    Section {
        title: "Headline (the Python original's table)".into(),
        rows,
    }
}

fn started(b: &Bench, extra: &[(&str, &str)]) -> Result<(Client, Duration), String> {
    let mut client = Client::spawn(&b.env(extra))?;
    let took = client.initialize()?;
    Ok((client, took))
}

fn read_call(b: &Bench, host: usize) -> Value {
    json!({"target": format!("{}:{}", b.fleet.alias(host), b.small.display())})
}

/// Spawn → initialize answered, and the first call on a host the new server has never
/// reached (TCP + handshake + auth + SFTP + the read), each the median over fresh servers.
fn cold_start(b: &Bench) -> Vec<Row> {
    let spawns = b.pick(3, 11);
    let mut inits = Vec::new();
    let mut firsts = Vec::new();
    let mut error = None;
    for i in 0..spawns {
        match started(b, &[]) {
            Ok((mut client, init)) => {
                inits.push(init);
                let host = i % b.fleet.host_count();
                match client.call_ok(&read_call(b, host), RUN_LIMIT) {
                    Ok(first) => firsts.push(first),
                    Err(e) => error = Some(e),
                }
            }
            Err(e) => error = Some(e),
        }
    }
    let show = |v: &[Duration]| match (median(v), &error) {
        (Some(m), _) => format!("{:.2} ms (median of {})", ms(m), v.len()),
        (None, Some(e)) => failed(e),
        (None, None) => failed("no samples"),
    };
    vec![
        Row::new("cold start: spawn → initialize answered")
            .scout(show(&inits))
            .python("10.47 ms"),
        Row::new("first call on a cold host (connect + auth + SFTP + read)")
            .scout(show(&firsts))
            .floor(floor_connect(b)),
    ]
}

/// The floor for a first call: connect, authenticate, open SFTP and read, with ssh2.
fn floor_connect(b: &Bench) -> String {
    let times: Result<Vec<Duration>, String> = (0..b.pick(3, 11))
        .map(|i| {
            let t = Instant::now();
            let conn = floor::connect(&b.endpoint(i % b.fleet.host_count()))?;
            conn.read(&b.small)?;
            Ok(t.elapsed())
        })
        .collect();
    match times.map(|t| median(&t)) {
        Ok(Some(m)) => format!("{:.2} ms (median)", ms(m)),
        Ok(None) => failed("no samples"),
        Err(e) => failed(&e),
    }
}

/// 64 requests in flight to one host: throughput, the pool's check-out time and lock wait.
fn single_host(b: &Bench) -> Vec<Row> {
    let total = b.pick(500, 20_000);
    let calls = vec![read_call(b, 0); total];
    let measured = started(b, &[]).and_then(|(mut client, _)| {
        // Warm-up: the host's connections are opened before the clock starts.
        client.pipelined(&calls[..IN_FLIGHT * 2], IN_FLIGHT, false, RUN_LIMIT)?;
        let run = client.pipelined(&calls, IN_FLIGHT, false, RUN_LIMIT)?;
        if let Some(why) = run.first_error {
            return Err(format!("{} errors: {why}", run.errors));
        }
        let conns = b.fleet.connections_held_by(client.pid());
        let pool = metrics::read(&mut client);
        Ok((rate(total, run.wall), conns, pool))
    });
    let (scout, floor, openssh, checkout, lock_wait, met) = match measured {
        Ok((rps, conns, pool)) => {
            let eps = vec![b.endpoint(0); conns.max(1)];
            let floor = floor::throughput(&eps, |_| Op::Read(b.small.clone()), total)
                .map(|wall| rate(total, wall));
            let openssh = openssh_throughput(b, conns.max(1));
            let met = floor.as_ref().ok().map(|f| rps >= 2000.0 && rps >= 0.5 * f);
            let (checkout, lock_wait) = pool_cells(pool);
            (
                format!("{rps:.0} req/s ({conns} connections)"),
                show_rate(floor, conns),
                openssh,
                checkout,
                lock_wait,
                met.or(Some(rps >= 2000.0)),
            )
        }
        Err(e) => (
            failed(&e),
            "—".into(),
            "—".into(),
            failed(&e),
            (failed(&e), None),
            None,
        ),
    };
    vec![
        Row::new(format!(
            "single-host throughput: small reads, {IN_FLIGHT} in flight"
        ))
        .scout(scout)
        .floor(floor)
        .openssh(openssh)
        .python("2,186 req/s")
        .target("≥ 2,000 req/s and ≥ 0.5× floor", met),
        Row::new("warm pool check-out (metrics://pool checkout_us p50)")
            .scout(checkout)
            .python("0.02 ms (lookup)"),
        Row::new(format!(
            "lock wait p99, {IN_FLIGHT} concurrent requests to one host (metrics://pool)"
        ))
        .scout(lock_wait.0)
        .python("one global lock")
        .target("< 1 ms", lock_wait.1),
    ]
}

fn pool_cells(pool: Result<metrics::Pool, String>) -> (String, (String, Option<bool>)) {
    match pool {
        Ok(p) => (
            p.checkout_p50_us
                .map_or("n/a (no checkout_us)".into(), micros),
            match p.lock_wait_p99_us {
                Some(us) => (micros(us), Some(us < 1000.0)),
                None => ("n/a (no lock_wait_us)".into(), None),
            },
        ),
        Err(e) => (e.clone(), (e, None)),
    }
}

/// The server's histograms count whole microseconds: 0 means under 1 µs.
fn micros(us: f64) -> String {
    if us < 1.0 {
        "< 1 µs".into()
    } else {
        format!("{us:.0} µs")
    }
}

fn show_rate(r: Result<f64, String>, conns: usize) -> String {
    match r {
        Ok(rps) => format!("{rps:.0} req/s ({conns} sessions)"),
        Err(e) => failed(&e),
    }
}

fn openssh_throughput(b: &Bench, threads: usize) -> String {
    let total = b.pick(40, 200);
    let remote = format!("cat '{}'", b.small.display());
    let done = Master::start(&b.fleet, &b.fleet.alias(0))
        .and_then(|m| m.throughput(&remote, threads, total));
    match done {
        Ok(wall) => format!(
            "{:.0} req/s ({threads} at once, one mux master)",
            rate(total, wall)
        ),
        Err(e) => failed(&e),
    }
}

/// The same load spread over several hosts, against the floor with as many sessions.
fn multi_host(b: &Bench) -> Row {
    let hosts = b.fleet.host_count().min(b.pick(10, 20));
    let total = b.pick(500, 20_000);
    let calls: Vec<Value> = (0..total).map(|i| read_call(b, i % hosts)).collect();
    let measured = started(b, &[]).and_then(|(mut client, _)| {
        client.pipelined(&calls[..hosts * 8], IN_FLIGHT, false, RUN_LIMIT)?;
        let run = client.pipelined(&calls, IN_FLIGHT, false, RUN_LIMIT)?;
        if let Some(why) = run.first_error {
            return Err(format!("{} errors: {why}", run.errors));
        }
        Ok((
            rate(total, run.wall),
            b.fleet.connections_held_by(client.pid()),
        ))
    });
    let row = Row::new(format!(
        "multi-host throughput: small reads over {hosts} hosts, {IN_FLIGHT} in flight"
    ))
    .python("149 req/s (target > 1,000)");
    match measured {
        Ok((rps, conns)) => {
            let eps: Vec<Endpoint> = (0..conns.max(1)).map(|i| b.endpoint(i % hosts)).collect();
            let floor = floor::throughput(&eps, |_| Op::Read(b.small.clone()), total)
                .map(|wall| rate(total, wall));
            row.scout(format!("{rps:.0} req/s ({conns} connections)"))
                .floor(show_rate(floor, conns))
                .target("≥ 2,000 req/s", Some(rps >= 2000.0))
        }
        Err(e) => row.scout(failed(&e)).target("≥ 2,000 req/s", None),
    }
}

/// RSS after initialize, and with one live connection to each of the fleet's hosts.
fn memory(b: &Bench) -> Vec<Row> {
    let hosts = b.fleet.host_count();
    let measured = started(b, &[("SCOUT_MAX_POOL_SIZE", "200")]).and_then(|(mut client, _)| {
        let idle = client.rss_kib().ok_or("cannot read the server's VmRSS")?;
        let calls: Vec<Value> = (0..hosts).map(|h| read_call(b, h)).collect();
        let run = client.pipelined(&calls, hosts, false, RUN_LIMIT)?;
        if let Some(why) = run.first_error {
            return Err(format!("{} errors: {why}", run.errors));
        }
        let live = b.fleet.connections_held_by(client.pid());
        let busy = client.rss_kib().ok_or("cannot read the server's VmRSS")?;
        Ok((idle, busy, live))
    });
    match measured {
        Ok((idle, busy, live)) => {
            let mib = |kib: u64| kib as f64 / 1024.0;
            let per = (busy.saturating_sub(idle)) as f64 / live.max(1) as f64;
            vec![
                Row::new("RSS after initialize").scout(format!("{:.1} MiB", mib(idle))),
                Row::new(format!(
                    "RSS with {live} live connections ({hosts} hosts warmed)"
                ))
                .scout(format!("{:.1} MiB", mib(busy)))
                .target("≤ 40 MB with 100", Some(mib(busy) * 1.048_576 <= 40.0)),
                Row::new("per-connection cost (RSS delta / live connections)")
                    .scout(format!("{per:.0} KiB")),
            ]
        }
        Err(e) => vec![Row::new("RSS with live connections").scout(failed(&e))],
    }
}

/// A bound smaller than the number of hosts: the server's connections, sampled from
/// /proc every few ms during the run, must never exceed it.
fn bound(b: &Bench) -> Row {
    let hosts = b.fleet.host_count();
    let limit = b.pick(5, 20);
    let calls: Vec<Value> = (0..hosts * 3).map(|i| read_call(b, i % hosts)).collect();
    let row = Row::new(format!(
        "pool bound held: SCOUT_MAX_POOL_SIZE={limit}, reads over {hosts} hosts, {IN_FLIGHT} in flight"
    ))
    .python("unbounded pool");
    let limit_text = limit.to_string();
    let measured =
        started(b, &[("SCOUT_MAX_POOL_SIZE", &limit_text)]).and_then(|(mut client, _)| {
            let pid = client.pid();
            let most = AtomicUsize::new(0);
            let done = AtomicBool::new(false);
            let sampling_ends = Instant::now() + RUN_LIMIT + Duration::from_secs(10);
            let run = thread::scope(|scope| {
                scope.spawn(|| {
                    // Ends with the run, and in any case soon after the run's own limit.
                    while !done.load(Ordering::Relaxed) && Instant::now() < sampling_ends {
                        most.fetch_max(b.fleet.connections_held_by(pid), Ordering::Relaxed);
                        thread::sleep(Duration::from_millis(5));
                    }
                });
                let run = client.pipelined(&calls, IN_FLIGHT, false, RUN_LIMIT);
                done.store(true, Ordering::Relaxed);
                run
            })?;
            let pool = metrics::read(&mut client);
            Ok((run, most.into_inner(), pool))
        });
    match measured {
        Ok((run, most, pool)) => {
            let peak = match &pool {
                Ok(metrics::Pool {
                    peak_live: Some(p),
                    bound: Some(bound),
                    ..
                }) => format!("; metrics peak_live {p} of bound {bound}"),
                Ok(_) => "; metrics: n/a".into(),
                Err(e) => format!("; {e}"),
            };
            let peak_ok = match pool {
                Ok(metrics::Pool {
                    peak_live: Some(p),
                    bound: Some(bound),
                    ..
                }) => p <= bound,
                _ => true,
            };
            row.scout(format!(
                "max {most} live (sampled){peak}; {} errors of {}",
                run.errors,
                calls.len()
            ))
            .target(
                format!("≤ {limit} live, no errors"),
                Some(most <= limit && peak_ok && run.errors == 0),
            )
        }
        Err(e) => row
            .scout(failed(&e))
            .target(format!("≤ {limit} live"), None),
    }
}
