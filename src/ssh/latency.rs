//! Per-host round-trip estimates and the timeouts derived from them
//! (SCOUT_ADAPTIVE_TIMEOUTS).
//!
//! The estimator is RFC 6298's (smoothed round trip plus four times its
//! mean deviation) in integer microseconds: three `u32`s per host behind a
//! mutex held for a few nanoseconds. A windowed percentile would need a
//! buffer per host (kilobytes at 10,000 hosts each), while this adapts
//! within a handful of samples, weighs recent ones most and reacts to
//! jitter through the deviation term, which is what a timeout needs.

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Round trips a host must have shown before its timeouts adapt.
pub const MIN_SAMPLES: u32 = 8;
/// A call may take this many round-trip estimates before it times out.
pub const CALL_MULT: u32 = 8;
/// One SFTP call can wait on a slow remote disk, whatever the network does.
pub const CALL_FLOOR: Duration = Duration::from_secs(2);
/// A TCP connect whose first SYN was lost completes after Linux's 1 s
/// retransmission: the floor lets that one loss through.
pub const CONNECT_FLOOR: Duration = Duration::from_secs(3);
/// Handshake + login cost server CPU (key exchange, forking, sometimes a
/// reverse DNS lookup) that round trips do not predict, and a connect
/// storm makes sshd take seconds (MaxStartups). The floor is the default
/// SCOUT_CONNECT_TIMEOUT, so only a larger configured budget is shortened.
pub const SETUP_FLOOR: Duration = Duration::from_secs(10);
/// A handshake may take this many setup estimates.
pub const SETUP_MULT: u32 = 4;
/// Hosts tracked at most; beyond that a host gets an estimator of its own
/// that is not kept (its sessions still learn, nothing accumulates).
pub const MAX_HOSTS: usize = 65_536;
/// Longer observations are clamped: they say "slow", and the arithmetic
/// stays within `u32` microseconds.
const MAX_SAMPLE_US: u32 = 600_000_000;

/// RFC 6298 state for one kind of observation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    pub srtt_us: u32,
    pub rttvar_us: u32,
    pub samples: u32,
}

impl Estimate {
    /// Folds in one observation (RFC 6298 §2: alpha 1/8, beta 1/4).
    pub fn observe(&mut self, sample: Duration) {
        let r = sample.as_micros().min(u128::from(MAX_SAMPLE_US)) as u64;
        if self.samples == 0 {
            self.srtt_us = r as u32;
            self.rttvar_us = (r / 2) as u32;
        } else {
            let srtt = u64::from(self.srtt_us);
            let var = (3 * u64::from(self.rttvar_us) + srtt.abs_diff(r)) / 4;
            self.rttvar_us = var as u32;
            self.srtt_us = ((7 * srtt + r) / 8) as u32;
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The round-trip estimate a timeout is built on: SRTT + 4 × RTTVAR.
    pub fn rto(&self) -> Duration {
        Duration::from_micros(u64::from(self.srtt_us) + 4 * u64::from(self.rttvar_us))
    }
}

/// What a timeout was derived from, for the message when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// SCOUT_CONNECT_TIMEOUT (or the host's smaller ConnectTimeout).
    Configured,
    /// Derived from observations of this host.
    Adaptive {
        mult: u32,
        estimate: Duration,
        samples: u32,
        floor: Duration,
        of: &'static str,
    },
    /// What was left of the request's own deadline.
    Deadline,
}

/// A timeout and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    pub budget: Duration,
    pub basis: Basis,
    /// The configured budget, for the "turn it off" hint.
    pub configured: Duration,
}

impl Timeout {
    pub fn configured(configured: Duration) -> Timeout {
        Timeout {
            budget: configured,
            basis: Basis::Configured,
            configured,
        }
    }

    /// The same timeout cut to `left` when that is shorter.
    pub fn within(self, left: Duration) -> Timeout {
        if left < self.budget {
            Timeout {
                budget: left,
                basis: Basis::Deadline,
                ..self
            }
        } else {
            self
        }
    }

    /// Appended to a timeout error: how long, and why that long.
    pub fn describe(&self) -> String {
        let within = format!("no answer within {}", human(self.budget));
        match self.basis {
            Basis::Configured => format!(
                "{within} (SCOUT_CONNECT_TIMEOUT or the host's ConnectTimeout: {})",
                human(self.configured)
            ),
            Basis::Deadline => format!("{within} (what was left of the request's time)"),
            Basis::Adaptive {
                mult,
                estimate,
                samples,
                floor,
                of,
            } => format!(
                "{within} (adaptive timeout: {mult} × {} {of} estimated from {samples} \
                 observation{}, at least {}; SCOUT_ADAPTIVE_TIMEOUTS=false to use \
                 SCOUT_CONNECT_TIMEOUT={})",
                human(estimate),
                if samples == 1 { "" } else { "s" },
                human(floor),
                human(self.configured)
            ),
        }
    }
}

/// `clamp(mult × estimate, floor, configured)`, adaptive only when the
/// estimate rests on `min_samples` observations and comes out shorter
/// than the configured budget.
pub fn derive(
    est: Estimate,
    min_samples: u32,
    mult: u32,
    floor: Duration,
    configured: Duration,
    of: &'static str,
) -> Timeout {
    if est.samples < min_samples {
        return Timeout::configured(configured);
    }
    let budget = est.rto().saturating_mul(mult).max(floor);
    if budget >= configured {
        return Timeout::configured(configured);
    }
    Timeout {
        budget,
        basis: Basis::Adaptive {
            mult,
            estimate: est.rto(),
            samples: est.samples,
            floor,
            of,
        },
        configured,
    }
}

/// What one host has shown: round trips (TCP connect, single SFTP
/// requests) and session setup (handshake + login) times.
#[derive(Debug, Default)]
pub struct HostEstimates {
    rtt: Mutex<Estimate>,
    setup: Mutex<Estimate>,
}

impl HostEstimates {
    pub fn observe_round_trip(&self, d: Duration) {
        self.rtt.lock().observe(d);
    }

    pub fn observe_setup(&self, d: Duration) {
        self.setup.lock().observe(d);
    }

    pub fn round_trips(&self) -> Estimate {
        *self.rtt.lock()
    }

    /// The per-call libssh2 timeout for this host's sessions.
    pub fn call_timeout(&self, configured: Duration) -> Timeout {
        let est = self.round_trips();
        derive(
            est,
            MIN_SAMPLES,
            CALL_MULT,
            CALL_FLOOR,
            configured,
            "round trip",
        )
    }

    /// The budget of one TCP connect attempt.
    pub fn connect_timeout(&self, configured: Duration) -> Timeout {
        let est = self.round_trips();
        derive(
            est,
            MIN_SAMPLES,
            CALL_MULT,
            CONNECT_FLOOR,
            configured,
            "round trip",
        )
    }

    /// The budget of handshake + login: adaptive once the host's round
    /// trips are known and one setup has been seen.
    pub fn setup_timeout(&self, configured: Duration) -> Timeout {
        if self.round_trips().samples < MIN_SAMPLES {
            return Timeout::configured(configured);
        }
        let est = *self.setup.lock();
        derive(
            est,
            1,
            SETUP_MULT,
            SETUP_FLOOR,
            configured,
            "handshake + login",
        )
    }
}

/// A read-only view of one host, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLatency {
    pub host: String,
    pub samples: u32,
    pub srtt_us: u32,
    pub rttvar_us: u32,
    /// The per-call timeout its sessions get now.
    pub timeout_ms: u64,
    pub adaptive: bool,
}

/// Every host's estimates, shared by the pool's connects and the sessions
/// (which keep an `Arc` to their host's entry and never look it up again).
#[derive(Debug, Default)]
pub struct Latencies {
    hosts: RwLock<HashMap<String, Arc<HostEstimates>>>,
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies::default()
    }

    /// The entry of `host`, created on first use while fewer than
    /// [`MAX_HOSTS`] are tracked.
    pub fn host(&self, host: &str) -> Arc<HostEstimates> {
        if let Some(entry) = self.hosts.read().get(host) {
            return Arc::clone(entry);
        }
        let mut hosts = self.hosts.write();
        if let Some(entry) = hosts.get(host) {
            return Arc::clone(entry);
        }
        let entry = Arc::new(HostEstimates::default());
        if hosts.len() < MAX_HOSTS {
            hosts.insert(host.to_string(), Arc::clone(&entry));
        }
        entry
    }

    pub fn len(&self) -> usize {
        self.hosts.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tracked host, sorted by name, with the per-call timeout its
    /// sessions get under `configured` (and `adaptive` on or off).
    pub fn snapshot(&self, configured: Duration, adaptive: bool) -> Vec<HostLatency> {
        let hosts: Vec<(String, Arc<HostEstimates>)> = self
            .hosts
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        let mut out: Vec<HostLatency> = hosts
            .into_iter()
            .map(|(host, entry)| {
                let est = entry.round_trips();
                let timeout = if adaptive {
                    entry.call_timeout(configured)
                } else {
                    Timeout::configured(configured)
                };
                HostLatency {
                    host,
                    samples: est.samples,
                    srtt_us: est.srtt_us,
                    rttvar_us: est.rttvar_us,
                    timeout_ms: timeout.budget.as_millis() as u64,
                    adaptive: matches!(timeout.basis, Basis::Adaptive { .. }),
                }
            })
            .collect();
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }
}

/// A duration the way a person reads it: "2.0 s", "250 ms", "90 µs".
pub fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} µs", d.as_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn fed(samples: &[Duration]) -> Estimate {
        let mut e = Estimate::default();
        for s in samples {
            e.observe(*s);
        }
        e
    }

    #[test]
    fn first_sample_sets_srtt_and_half_as_variance() {
        let e = fed(&[100 * MS]);
        assert_eq!((e.srtt_us, e.rttvar_us, e.samples), (100_000, 50_000, 1));
        assert_eq!(e.rto(), 300 * MS);
    }

    #[test]
    fn steady_samples_converge_and_the_variance_decays() {
        let e = fed(&[10 * MS; 60]);
        assert_eq!(e.srtt_us, 10_000);
        assert!(e.rttvar_us < 10, "variance left: {} µs", e.rttvar_us);
        assert!(e.rto() < 10 * MS + Duration::from_micros(40));
    }

    #[test]
    fn the_estimate_follows_a_change_of_latency() {
        let mut e = fed(&[MS; 20]);
        for _ in 0..40 {
            e.observe(50 * MS);
        }
        assert!(e.srtt_us > 49_000 && e.srtt_us <= 50_000, "{}", e.srtt_us);
    }

    #[test]
    fn jitter_raises_the_variance() {
        let steady = fed(&[10 * MS; 30]);
        let jittery: Vec<Duration> = (0..30)
            .map(|i| if i % 2 == 0 { MS } else { 19 * MS })
            .collect();
        let jittery = fed(&jittery);
        assert!(jittery.rttvar_us > 5_000, "{}", jittery.rttvar_us);
        assert!(jittery.rto() > steady.rto() * 2);
    }

    #[test]
    fn huge_samples_are_clamped_not_overflowed() {
        let e = fed(&[Duration::from_secs(1_000_000); 10]);
        assert_eq!(e.srtt_us, MAX_SAMPLE_US);
        assert!(e.rto() >= Duration::from_secs(600));
    }

    #[test]
    fn configured_until_enough_samples() {
        let configured = Duration::from_secs(10);
        let e = fed(&[MS; (MIN_SAMPLES - 1) as usize]);
        let t = derive(e, MIN_SAMPLES, 8, CALL_FLOOR, configured, "round trip");
        assert_eq!(t, Timeout::configured(configured));
        let e = fed(&[MS; MIN_SAMPLES as usize]);
        let t = derive(e, MIN_SAMPLES, 8, CALL_FLOOR, configured, "round trip");
        assert!(matches!(t.basis, Basis::Adaptive { .. }), "{t:?}");
    }

    #[test]
    fn the_floor_holds_for_fast_hosts() {
        let e = fed(&[Duration::from_micros(80); 20]);
        let t = derive(e, 8, 8, CALL_FLOOR, Duration::from_secs(60), "round trip");
        assert_eq!(t.budget, CALL_FLOOR);
    }

    #[test]
    fn a_multiple_of_the_estimate_between_floor_and_maximum() {
        let e = fed(&[500 * MS; 40]);
        let t = derive(e, 8, 8, CALL_FLOOR, Duration::from_secs(60), "round trip");
        assert_eq!(t.budget, e.rto() * 8);
        assert!(t.budget > Duration::from_secs(3) && t.budget < Duration::from_secs(5));
    }

    #[test]
    fn never_above_the_configured_maximum() {
        let e = fed(&[Duration::from_secs(5); 20]);
        let t = derive(e, 8, 8, CALL_FLOOR, Duration::from_secs(10), "round trip");
        assert_eq!(t, Timeout::configured(Duration::from_secs(10)));
        // A floor above the configured budget yields the configured budget.
        let fast = fed(&[MS; 20]);
        let t = derive(fast, 8, 8, CALL_FLOOR, Duration::from_secs(1), "round trip");
        assert_eq!(t.budget, Duration::from_secs(1));
    }

    #[test]
    fn setup_adapts_only_for_known_hosts_and_never_below_its_floor() {
        let configured = Duration::from_secs(60);
        let h = HostEstimates::default();
        h.observe_setup(30 * MS);
        assert_eq!(h.setup_timeout(configured), Timeout::configured(configured));
        for _ in 0..MIN_SAMPLES {
            h.observe_round_trip(MS);
        }
        let t = h.setup_timeout(configured);
        assert_eq!(t.budget, SETUP_FLOOR);
        // With the default budget (= the floor) nothing changes.
        let default = Duration::from_secs(10);
        assert_eq!(h.setup_timeout(default), Timeout::configured(default));
        // A host whose logins are slow keeps a budget that fits them.
        let slow = HostEstimates::default();
        for _ in 0..MIN_SAMPLES {
            slow.observe_round_trip(MS);
        }
        slow.observe_setup(Duration::from_secs(4));
        assert_eq!(
            slow.setup_timeout(configured).budget,
            Duration::from_secs(48)
        );
        slow.observe_setup(Duration::from_secs(20));
        assert_eq!(
            slow.setup_timeout(configured),
            Timeout::configured(configured)
        );
    }

    #[test]
    fn the_deadline_cuts_a_timeout_and_says_so() {
        let t = Timeout::configured(Duration::from_secs(10)).within(Duration::from_secs(3));
        assert_eq!(
            (t.budget, t.basis),
            (Duration::from_secs(3), Basis::Deadline)
        );
        let t = Timeout::configured(Duration::from_secs(10)).within(Duration::from_secs(30));
        assert_eq!(t.basis, Basis::Configured);
    }

    #[test]
    fn messages_give_the_numbers() {
        let e = fed(&[250 * MS; 1]);
        let t = derive(e, 1, 8, CALL_FLOOR, Duration::from_secs(60), "round trip");
        let text = t.describe();
        assert!(
            text.starts_with("no answer within 6.0 s (adaptive timeout: 8 × 750 ms round trip"),
            "{text}"
        );
        assert!(
            text.contains("SCOUT_ADAPTIVE_TIMEOUTS=false to use SCOUT_CONNECT_TIMEOUT=60.0 s"),
            "{text}"
        );
        let text = Timeout::configured(Duration::from_secs(3)).describe();
        assert!(
            text.contains("within 3.0 s") && text.contains("SCOUT_CONNECT_TIMEOUT"),
            "{text}"
        );
        assert!(!text.contains("adaptive"), "{text}");
        assert_eq!(human(Duration::from_micros(90)), "90 µs");
    }

    #[test]
    fn the_map_is_bounded_and_shares_entries() {
        let table = Latencies::new();
        let a = table.host("a");
        a.observe_round_trip(MS);
        assert_eq!(table.host("a").round_trips().samples, 1);
        for i in 0..MAX_HOSTS + 10 {
            table.host(&format!("h{i}"));
        }
        assert_eq!(table.len(), MAX_HOSTS);
        // An untracked host still gets a working estimator.
        let extra = table.host("one-too-many");
        extra.observe_round_trip(MS);
        assert_eq!(extra.round_trips().samples, 1);
        assert_eq!(table.len(), MAX_HOSTS);
    }

    #[test]
    fn the_entry_stays_small() {
        assert!(std::mem::size_of::<HostEstimates>() <= 32);
    }

    #[test]
    fn snapshot_reports_each_host_and_its_timeout() {
        let table = Latencies::new();
        for _ in 0..MIN_SAMPLES {
            table.host("web1").observe_round_trip(MS);
        }
        table.host("db1");
        let snap = table.snapshot(Duration::from_secs(10), true);
        assert_eq!(snap.len(), 2);
        assert_eq!((snap[0].host.as_str(), snap[0].samples), ("db1", 0));
        assert_eq!((snap[0].timeout_ms, snap[0].adaptive), (10_000, false));
        assert_eq!((snap[1].host.as_str(), snap[1].srtt_us), ("web1", 1000));
        assert_eq!((snap[1].timeout_ms, snap[1].adaptive), (2_000, true));
        let off = table.snapshot(Duration::from_secs(10), false);
        assert_eq!((off[1].timeout_ms, off[1].adaptive), (10_000, false));
    }
}
