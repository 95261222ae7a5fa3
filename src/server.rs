//! Wiring: configuration → pool → scout → workers → stdio, and shutdown.

use crate::config::{Inventory, KnownHosts, Settings, SshConfig};
use crate::mcp::dispatch::{Dispatcher, InFlight};
use crate::mcp::transport::{self, Line};
use crate::pool::ssh::SshManager;
use crate::pool::{Pool, PoolConfig, PoolError, PoolThreads};
use crate::resources::metrics::{self, Figures, QueueStats};
use crate::scout::Scout;
use crate::ssh::{ConnectOptions, HostKeyPolicy};
use crate::warming;
use crate::workers::Executor;
use std::io::BufReader;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After cancelling what outlived the grace period: time for remote
/// processes to be terminated.
const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// Why the server stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    EndOfInput,
    Signal,
}

/// The pool and the scout operations, built from settings.
pub struct Core {
    pub scout: Arc<Scout>,
    pub pool_threads: PoolThreads,
}

/// Loads the ssh config and builds the pool and scout. No network I/O.
pub fn build_core(settings: Settings) -> Result<Core, String> {
    let ssh_config = SshConfig::load(&settings.ssh_config).map_err(|e| e.to_string())?;
    let inventory = Arc::new(Inventory::new(
        ssh_config,
        settings.allowlist.as_deref(),
        &settings.blocklist,
    ));
    log::info!(
        "{} hosts from {}",
        inventory.len(),
        settings.ssh_config.display()
    );
    let manager = SshManager::new(Arc::clone(&inventory), connect_options(&settings));
    let (pool, pool_threads) =
        Pool::new(manager, pool_config(&settings)).map_err(|e| e.to_string())?;
    count_jump_sessions(&pool);
    let width = settings.broadcast_width;
    let settings = Arc::new(settings);
    let scout = Scout::new(settings, inventory, pool, width).map_err(|e| e.to_string())?;
    Ok(Core {
        scout: Arc::new(scout),
        pool_threads,
    })
}

/// ProxyJump sessions are opened by the SSH manager, not checked out of
/// the pool, yet they are connections like any other: each holds a place
/// under SCOUT_MAX_POOL_SIZE while it is open.
fn count_jump_sessions(pool: &Pool<SshManager>) {
    let Some(jumps) = pool.manager().jumps() else {
        return;
    };
    let weak = pool.downgrade();
    let bound = pool.max_size();
    jumps.count_in(move |deadline| {
        let pool = weak.upgrade().ok_or("the server is shutting down")?;
        match pool.lease(deadline) {
            Ok(lease) => Ok(Box::new(lease) as crate::ssh::tunnel::Place),
            Err(PoolError::Closed) => Err("the server is shutting down".into()),
            Err(_) => Err(format!(
                "every one of the SCOUT_MAX_POOL_SIZE={bound} connections is busy"
            )),
        }
    });
}

fn pool_config(s: &Settings) -> PoolConfig {
    PoolConfig {
        max_size: s.max_pool_size,
        max_per_host: s.max_connections_per_host,
        max_handshakes_per_host: s.max_handshakes_per_host,
        idle_timeout: s.idle_timeout,
        health_check_every: s.health_check_interval,
    }
}

/// Starts warming the hosts of SCOUT_WARM_HOSTS in the background.
fn start_warming(scout: &Scout) {
    let settings = &scout.settings;
    if settings.warm_hosts.is_empty() {
        return;
    }
    let (hosts, unknown) = warming::resolve(&scout.inventory.names(), &settings.warm_hosts);
    if !unknown.is_empty() {
        log::warn!(
            "SCOUT_WARM_HOSTS: no host in {} matches {}",
            settings.ssh_config.display(),
            unknown.join(", ")
        );
    }
    // A lower broadcast width says the network or the hosts want fewer
    // connects at once; warming honours it.
    let width = warming::MAX_WIDTH.min(settings.broadcast_width);
    // TCP connect, then handshake + auth, each within the connect timeout.
    let budget = settings.connect_timeout * 2;
    warming::spawn(scout.pool.clone(), hosts, width, budget);
}

/// How sessions are opened, from the settings (also used by `scout-mcp check`).
pub fn connect_options(s: &Settings) -> ConnectOptions {
    let known_hosts = match &s.known_hosts {
        KnownHosts::File(p) => Some(p.clone()),
        KnownHosts::Disabled => {
            log::warn!(
                "HOST KEY CHECKING IS DISABLED (SCOUT_KNOWN_HOSTS=none): any server can \
                 impersonate your hosts"
            );
            None
        }
    };
    let ssh_dir = crate::config::home_dir().join(".ssh");
    ConnectOptions {
        connect_timeout: s.connect_timeout,
        io_timeout: s.connect_timeout,
        host_keys: HostKeyPolicy {
            known_hosts,
            strict: s.strict_host_key_checking,
        },
        agent_socket: std::env::var_os("SSH_AUTH_SOCK")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from),
        default_keys: ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|k| ssh_dir.join(k))
            .collect(),
        adaptive_timeouts: s.adaptive_timeouts,
        latencies: Arc::new(crate::ssh::Latencies::new()),
        // Filled in by SshManager, which knows the inventory.
        jumps: None,
    }
}

/// Serves MCP on stdin/stdout until end of input or a signal.
pub fn serve(settings: Settings) -> Result<(), String> {
    let grace = settings.shutdown_grace;
    let executor = Executor::new(
        settings.workers,
        settings.quick_workers,
        settings.queue_size,
    );
    let executor = Arc::new(executor.map_err(|e| e.to_string())?);
    let core = build_core(settings)?;
    let (outbox, _writer) =
        transport::start_writer(std::io::stdout()).map_err(|e| e.to_string())?;
    crate::mcp::log_bridge::connect(outbox.clone());
    let in_flight = InFlight::default();
    let dispatcher = Dispatcher::new(
        Arc::clone(&core.scout),
        Arc::clone(&executor),
        outbox.clone(),
        in_flight.clone(),
    );
    start_warming(&core.scout);
    let stop = wait_for_stop(dispatcher)?;
    log::info!(
        "stopping ({stop:?}); {} requests in flight",
        in_flight.len()
    );
    if !executor.shutdown(Instant::now() + grace) {
        // Cancelled commands stop their remote processes; give that a
        // bounded moment before exiting anyway.
        let n = in_flight.cancel_all();
        log::warn!("{n} requests still running after the {grace:?} grace period; cancelling them");
        if !executor.shutdown(Instant::now() + CANCEL_GRACE) {
            log::warn!(
                "requests did not stop within {CANCEL_GRACE:?} of cancellation; exiting anyway"
            );
        }
    }
    let figures = Figures::collect(&core.scout, QueueStats::default());
    for line in metrics::summary(&figures).lines() {
        log::info!("at exit: {line}");
    }
    let pool = core.scout.pool.clone();
    core.pool_threads.shutdown(pool, Duration::from_secs(2));
    // Answers already produced are written before exit; a client that
    // stopped reading cannot hold us beyond a short wait.
    let flush_deadline = Instant::now() + Duration::from_secs(1);
    while outbox.pending() > 0 && Instant::now() < flush_deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Reads stdin on its own thread and returns when input ends or a
/// signal arrives. On a signal the reader may stay blocked in read();
/// the process exits without waiting for it.
fn wait_for_stop(dispatcher: Dispatcher) -> Result<Stop, String> {
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<Stop>(2);
    let signal_tx = stop_tx.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = signal_tx.try_send(Stop::Signal);
    }) {
        log::warn!("cannot install the signal handler: {e}");
    }
    std::thread::Builder::new()
        .name("stdin-reader".into())
        .spawn(move || {
            read_input(&dispatcher);
            let _ = stop_tx.try_send(Stop::EndOfInput);
        })
        .map_err(|e| e.to_string())?;
    Ok(stop_rx.recv().unwrap_or(Stop::EndOfInput))
}

fn read_input(dispatcher: &Dispatcher) {
    let stdin = std::io::stdin();
    let mut input = BufReader::with_capacity(64 * 1024, stdin.lock());
    loop {
        match transport::read_line(&mut input, transport::MAX_LINE) {
            Ok(Some(Line::Message(line))) => dispatcher.handle_line(&line),
            Ok(Some(Line::TooLong(size))) => dispatcher.too_long(size),
            Ok(None) => return,
            Err(e) => {
                log::error!("cannot read stdin: {e}");
                return;
            }
        }
    }
}
