//! `metrics://pool`: the pool's and the requests' figures as JSON, and
//! the same figures as a few log lines for shutdown.
//!
//! Everything here reads atomics and takes bookkeeping locks for a
//! moment; nothing touches the network. The JSON keys are a contract
//! (the benchmark reads them): add keys freely, never rename or drop one.

use crate::histogram::Summary;
use crate::pool::{HostStats, Latencies, MetricsSnapshot};
use crate::scout::stats::RequestSnapshot;
use crate::scout::Scout;
use crate::ssh::HostLatency;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub const URI: &str = "metrics://pool";

/// Hosts listed at most; the rest are only counted, so that a fleet of
/// thousands does not make the resource huge.
pub const MAX_HOSTS: usize = 1000;

/// The request queue's figures, which live with whoever runs requests
/// (the MCP executor); zero when there is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queued: usize,
    pub running: usize,
}

/// Every figure the resource shows, taken at one moment.
#[derive(Debug, Clone)]
pub struct Figures {
    pub live: usize,
    pub bound: usize,
    pub closing: usize,
    pub counters: MetricsSnapshot,
    pub latencies: Latencies,
    /// Sorted by host name.
    pub hosts: Vec<HostStats>,
    /// Round-trip estimates and the call timeouts derived from them, by host.
    pub latency: HashMap<String, HostLatency>,
    pub requests: RequestSnapshot,
    pub queue: QueueStats,
}

impl Figures {
    pub fn collect(scout: &Scout, queue: QueueStats) -> Figures {
        let pool = &scout.pool;
        Figures {
            live: pool.live(),
            bound: pool.max_size(),
            closing: pool.closing(),
            counters: pool.metrics(),
            latencies: pool.latencies(),
            hosts: pool.host_stats(),
            latency: pool
                .manager()
                .latency_snapshot()
                .into_iter()
                .map(|l| (l.host.clone(), l))
                .collect(),
            requests: scout.stats.snapshot(),
            queue,
        }
    }
}

/// The resource's text.
pub fn text(scout: &Scout, queue: QueueStats) -> String {
    let value = to_json(&Figures::collect(scout, queue));
    serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn busy(h: &HostStats) -> usize {
    h.live.saturating_sub(h.idle + h.connecting)
}

fn ms(us: u64) -> f64 {
    // Three decimals: microsecond resolution, no float noise.
    us as f64 / 1000.0
}

fn seconds(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn us_json(s: &Summary) -> Value {
    json!({"count": s.count, "p50": s.p50_us, "p95": s.p95_us, "p99": s.p99_us, "max": s.max_us})
}

fn ms_json(s: &Summary) -> Value {
    json!({"count": s.count, "p50": ms(s.p50_us), "p95": ms(s.p95_us),
           "p99": ms(s.p99_us), "max": ms(s.max_us)})
}

pub fn to_json(f: &Figures) -> Value {
    let sum = |field: fn(&HostStats) -> usize| f.hosts.iter().map(field).sum::<usize>();
    let c = &f.counters;
    let mut out = json!({
        "uptime_s": seconds(f.requests.uptime),
        "pool": {
            "live": f.live, "bound": f.bound, "peak_live": c.peak_live,
            "idle": sum(|h| h.idle), "busy": sum(busy), "connecting": sum(|h| h.connecting),
            "closing": f.closing, "hosts_known": f.hosts.len()
        },
        "counters": {
            "checkouts": c.checkouts, "hits": c.hits, "misses": c.misses,
            "connects": c.connects, "connect_failures": c.connect_failures,
            "reconnects": c.reconnects, "evictions": c.evictions, "discarded": c.discarded,
            "reaped": c.reaped, "capacity_waits": c.capacity_waits,
            "checkout_timeouts": c.checkout_timeouts, "warmed": c.warmed,
            "health_checks": c.health_checks, "health_failures": c.health_failures
        },
        "connect_ms": ms_json(&f.latencies.connect),
        "checkout_us": us_json(&f.latencies.checkout),
        "lock_wait_us": us_json(&f.latencies.lock_wait),
        "requests": {
            "queued": f.queue.queued, "running": f.queue.running,
            "rejected": f.requests.rejected, "by_mode": by_mode_json(&f.requests)
        },
        "hosts": f.hosts.iter().take(MAX_HOSTS).map(|h| host_json(h, f.latency.get(&h.host)))
            .collect::<Vec<_>>()
    });
    if f.hosts.len() > MAX_HOSTS {
        out["hosts_omitted"] = json!(f.hosts.len() - MAX_HOSTS);
    }
    out
}

fn by_mode_json(r: &RequestSnapshot) -> Value {
    let modes: Map<String, Value> = r
        .by_mode
        .iter()
        .map(|m| {
            let s = &m.latency;
            let v = json!({"count": s.count, "errors": m.errors, "p50_ms": ms(s.p50_us),
                           "p95_ms": ms(s.p95_us), "p99_ms": ms(s.p99_us), "max_ms": ms(s.max_us)});
            (m.mode.name().to_string(), v)
        })
        .collect();
    Value::Object(modes)
}

fn host_json(h: &HostStats, latency: Option<&HostLatency>) -> Value {
    let mut v = json!({"host": h.host, "live": h.live, "idle": h.idle, "busy": busy(h),
                       "connecting": h.connecting, "waiters": h.waiters});
    if let Some(l) = latency {
        v["rtt_samples"] = json!(l.samples);
        v["rtt_ms"] = json!(ms(u64::from(l.srtt_us)));
        v["call_timeout_ms"] = json!(l.timeout_ms);
        v["call_timeout_adaptive"] = json!(l.adaptive);
    }
    v
}

/// The figures in two human-readable lines, for the log at shutdown.
pub fn summary(f: &Figures) -> String {
    let c = &f.counters;
    let l = &f.latencies;
    let pool = format!(
        "pool: live {}/{} (peak {}), checkouts {} ({} hits, {} misses, {} timeouts), \
         connects {} ({} failed, {} reconnects), connect p50 {:.1} ms p95 {:.1} ms, \
         warm checkout p50 {} µs p99 {} µs, lock wait p99 {} µs max {} µs, \
         evictions {}, reaped {}, discarded {}, capacity waits {}, warmed {}, \
         health checks {} ({} failed)",
        f.live,
        f.bound,
        c.peak_live,
        c.checkouts,
        c.hits,
        c.misses,
        c.checkout_timeouts,
        c.connects,
        c.connect_failures,
        c.reconnects,
        ms(l.connect.p50_us),
        ms(l.connect.p95_us),
        l.checkout.p50_us,
        l.checkout.p99_us,
        l.lock_wait.p99_us,
        l.lock_wait.max_us,
        c.evictions,
        c.reaped,
        c.discarded,
        c.capacity_waits,
        c.warmed,
        c.health_checks,
        c.health_failures,
    );
    let modes: Vec<String> = f
        .requests
        .by_mode
        .iter()
        .filter(|m| m.latency.count > 0)
        .map(|m| {
            let s = &m.latency;
            format!(
                "{} {} (p50 {:.1} ms, p95 {:.1} ms, {} errors)",
                m.mode.name(),
                s.count,
                ms(s.p50_us),
                ms(s.p95_us),
                m.errors
            )
        })
        .collect();
    let modes = if modes.is_empty() {
        "none".to_string()
    } else {
        modes.join(", ")
    };
    format!(
        "{pool}\nrequests: {modes}; rejected {}",
        f.requests.rejected
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scout::stats::RequestStats;
    use crate::scout::Mode;
    use std::time::Duration;

    fn host(name: &str, live: usize, idle: usize, connecting: usize) -> HostStats {
        HostStats {
            host: name.to_string(),
            live,
            idle,
            connecting,
            waiters: 0,
        }
    }

    fn figures(hosts: Vec<HostStats>) -> Figures {
        let stats = RequestStats::default();
        stats.record(Mode::Read, Duration::from_micros(600), false);
        stats.record(Mode::Read, Duration::from_micros(1234), true);
        stats.rejected();
        Figures {
            live: 3,
            bound: 100,
            closing: 1,
            counters: MetricsSnapshot {
                checkouts: 10,
                hits: 7,
                misses: 3,
                peak_live: 5,
                ..Default::default()
            },
            latencies: Latencies::default(),
            hosts,
            latency: HashMap::from([(
                "b".to_string(),
                HostLatency {
                    host: "b".into(),
                    samples: 9,
                    srtt_us: 250,
                    rttvar_us: 40,
                    timeout_ms: 2000,
                    adaptive: true,
                },
            )]),
            requests: stats.snapshot(),
            queue: QueueStats {
                queued: 2,
                running: 1,
            },
        }
    }

    #[test]
    fn the_json_has_every_key_of_the_contract() {
        let v = to_json(&figures(vec![host("a", 2, 1, 0), host("b", 1, 0, 1)]));
        let keys = |path: &str, want: &[&str]| {
            let obj = v.pointer(path).and_then(Value::as_object);
            let obj = obj.unwrap_or_else(|| panic!("{path} missing in {v}"));
            for k in want {
                assert!(obj.contains_key(*k), "{path}/{k} missing in {v}");
            }
        };
        keys("", &["uptime_s", "pool", "counters", "requests", "hosts"]);
        let pool_keys = [
            "live",
            "bound",
            "peak_live",
            "idle",
            "busy",
            "connecting",
            "closing",
            "hosts_known",
        ];
        keys("/pool", &pool_keys);
        let counters = [
            "checkouts",
            "hits",
            "misses",
            "connects",
            "connect_failures",
            "reconnects",
            "evictions",
            "discarded",
            "reaped",
            "capacity_waits",
            "checkout_timeouts",
        ];
        keys("/counters", &counters);
        for h in ["/connect_ms", "/checkout_us", "/lock_wait_us"] {
            keys(h, &["count", "p50", "p95", "p99", "max"]);
        }
        keys("/requests", &["queued", "running", "rejected", "by_mode"]);
        for m in Mode::ALL {
            let path = format!("/requests/by_mode/{}", m.name());
            keys(
                &path,
                &["count", "errors", "p50_ms", "p95_ms", "p99_ms", "max_ms"],
            );
        }
        assert_eq!(v["pool"]["idle"], json!(1));
        assert_eq!(v["pool"]["busy"], json!(1));
        assert_eq!(v["pool"]["connecting"], json!(1));
        assert_eq!(v["pool"]["hosts_known"], json!(2));
        assert_eq!(v["requests"]["queued"], json!(2));
        assert_eq!(v["requests"]["rejected"], json!(1));
        let read = &v["requests"]["by_mode"]["read"];
        assert_eq!(
            (read["count"].clone(), read["errors"].clone()),
            (json!(2), json!(1))
        );
        assert!(read["max_ms"].is_f64(), "ms are floats: {read}");
        assert_eq!(read["max_ms"], json!(1.234));
        assert!(v["checkout_us"]["p50"].is_u64(), "µs are integers");
        assert_eq!(
            v["hosts"][0],
            json!({"host": "a", "live": 2, "idle": 1, "busy": 1, "connecting": 0, "waiters": 0})
        );
        assert!(v.get("hosts_omitted").is_none());
        // Latency figures appear for hosts that have them.
        assert_eq!(v["hosts"][1]["rtt_ms"], json!(0.25));
        assert_eq!(v["hosts"][1]["call_timeout_ms"], json!(2000));
        assert_eq!(v["hosts"][1]["call_timeout_adaptive"], json!(true));
    }

    #[test]
    fn the_host_list_is_capped() {
        let hosts = (0..MAX_HOSTS + 5)
            .map(|i| host(&format!("h{i:05}"), 1, 1, 0))
            .collect();
        let v = to_json(&figures(hosts));
        assert_eq!(v["hosts"].as_array().map(Vec::len), Some(MAX_HOSTS));
        assert_eq!(v["hosts_omitted"], json!(5));
        assert_eq!(v["pool"]["hosts_known"], json!(MAX_HOSTS + 5));
        assert_eq!(
            v["pool"]["idle"],
            json!(MAX_HOSTS + 5),
            "sums cover all hosts"
        );
    }

    #[test]
    fn the_summary_names_the_headline_figures() {
        let text = summary(&figures(vec![]));
        assert!(text.contains("live 3/100 (peak 5)"), "{text}");
        assert!(text.contains("checkouts 10 (7 hits, 3 misses"), "{text}");
        assert!(text.contains("read 2 (p50"), "{text}");
        assert!(!text.contains("command"), "idle modes left out: {text}");
        assert!(text.ends_with("rejected 1"), "{text}");
    }
}
