//! `scout-mcp check`: hosts checked in parallel, one line each, in the
//! order asked for.

use crate::config::{Inventory, Settings};
use crate::ssh::check::{check, CheckReport};
use crate::ssh::ConnectOptions;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Checks `names` (every host of the inventory when empty), at most
/// `width` at a time, and returns the reports in the order of `names`.
pub fn check_all(
    names: &[String],
    inventory: &Inventory,
    settings: &Settings,
    opts: &ConnectOptions,
    width: usize,
) -> Vec<CheckReport> {
    let next = AtomicUsize::new(0);
    let width = width.clamp(1, names.len().max(1));
    let mut reports: Vec<(usize, CheckReport)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..width)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(name) = names.get(i) else {
                            return done;
                        };
                        done.push((i, check_one(name, inventory, settings, opts)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            // A check that panicked has no line; the count below says so.
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    reports.sort_by_key(|(i, _)| *i);
    let mut reports: Vec<CheckReport> = reports.into_iter().map(|(_, r)| r).collect();
    if reports.len() < names.len() {
        let missing = names.len() - reports.len();
        reports.push(CheckReport::refused(
            "?",
            format!(
                "{missing} checks crashed (a bug in scout-mcp; run with SCOUT_LOG_LEVEL=debug)"
            ),
        ));
    }
    reports
}

fn check_one(
    name: &str,
    inventory: &Inventory,
    settings: &Settings,
    opts: &ConnectOptions,
) -> CheckReport {
    match inventory.get(name) {
        Some(host) => check(&host, opts),
        None => CheckReport::refused(
            name,
            format!(
                "{name}: not a host of {} (or dropped by SCOUT_ALLOWLIST / SCOUT_BLOCKLIST)",
                settings.ssh_config.display()
            ),
        ),
    }
}

/// One line per report, aliases padded to one column.
pub fn table(reports: &[CheckReport]) -> String {
    let width = reports
        .iter()
        .map(|r| r.alias.chars().count())
        .max()
        .unwrap_or(0);
    reports
        .iter()
        .map(|r| format!("{}\n", line(r, width)))
        .collect()
}

/// `web1  ok    resolve 0.1 ms · tcp 0.3 ms · …` or
/// `db2   FAIL  at auth (after resolve 0.1 ms, tcp 0.3 ms, …): why`.
pub fn line(report: &CheckReport, width: usize) -> String {
    let alias = format!("{:<width$}", report.alias);
    let mut steps: Vec<String> = Vec::new();
    if let Some(jump) = &report.via {
        steps.push(format!("via ProxyJump {jump}"));
    }
    steps.extend(
        report
            .passed
            .iter()
            .map(|(step, took)| format!("{} {}", step.name(), duration(*took))),
    );
    match &report.failure {
        None => format!("{alias}  ok    {}", steps.join(" · "))
            .trim_end()
            .to_string(),
        Some((step, error)) => {
            let after = if steps.is_empty() {
                String::new()
            } else {
                format!(" (after {})", steps.join(", "))
            };
            // One line per host, whatever the message holds.
            let why = error
                .message
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            format!("{alias}  FAIL  at {}{after}: {why}", step.name())
        }
    }
}

/// Sub-millisecond precision where loopback and LAN steps live.
fn duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::check::Step;
    use crate::ssh::{ErrorKind, SshError};

    const MS: Duration = Duration::from_millis(1);

    fn report(alias: &str, passed: &[(Step, Duration)]) -> CheckReport {
        CheckReport {
            alias: alias.to_string(),
            via: None,
            passed: passed.to_vec(),
            failure: None,
        }
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(duration(Duration::from_micros(120)), "0.1 ms");
        assert_eq!(duration(Duration::from_micros(3_460)), "3.5 ms");
        assert_eq!(duration(12 * MS), "12 ms");
        assert_eq!(duration(1_250 * MS), "1.2 s");
    }

    #[test]
    fn a_good_host_lists_every_step() {
        let r = report(
            "web1",
            &[
                (Step::Resolve, MS / 10),
                (Step::Tcp, MS / 2),
                (Step::Exec, 3 * MS),
            ],
        );
        assert_eq!(
            line(&r, 6),
            "web1    ok    resolve 0.1 ms · tcp 0.5 ms · exec 3.0 ms"
        );
    }

    #[test]
    fn a_broken_host_names_the_failing_step_in_one_line() {
        let mut r = report("db2", &[(Step::Resolve, MS / 10), (Step::Tcp, MS / 2)]);
        r.via = Some("bastion".into());
        r.failure = Some((
            Step::Auth,
            SshError::new(
                ErrorKind::Auth,
                "db2 (ops@10.0.0.5:22): authentication\nrejected",
            ),
        ));
        let text = line(&r, 3);
        assert_eq!(
            text,
            "db2  FAIL  at auth (after via ProxyJump bastion, resolve 0.1 ms, tcp 0.5 ms): \
             db2 (ops@10.0.0.5:22): authentication rejected"
        );
        let refused = CheckReport::refused("x", "x: not a host");
        assert_eq!(line(&refused, 1), "x  FAIL  at config: x: not a host");
    }

    #[test]
    fn the_table_keeps_the_order_and_aligns_the_aliases() {
        let t = table(&[report("a", &[]), report("longer", &[])]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines, ["a       ok", "longer  ok"]);
    }
}
