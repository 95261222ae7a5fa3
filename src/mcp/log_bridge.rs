//! Log records to the client as `notifications/message`, once the client
//! asked for them with `logging/setLevel` (handshake era). Everything is
//! still logged to stderr as configured; the client gets a copy of the
//! records at or above its level.

use super::jsonrpc;
use super::transport::Outbox;
use log::{Level, LevelFilter, Log, Metadata, Record};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The client's level as a `LevelFilter` number; 0 (Off) until set.
static CLIENT_LEVEL: AtomicUsize = AtomicUsize::new(0);
static OUTBOX: OnceLock<Outbox> = OnceLock::new();
/// What stderr gets, so that raising the client's level never lowers it.
static STDERR_LEVEL: AtomicUsize = AtomicUsize::new(0);

/// A logger that writes to `inner` (stderr) and copies to the client.
pub struct BridgeLogger<L: Log> {
    inner: L,
}

impl<L: Log + 'static> BridgeLogger<L> {
    pub fn install(inner: L, stderr_level: LevelFilter) -> Result<(), log::SetLoggerError> {
        STDERR_LEVEL.store(stderr_level as usize, Ordering::SeqCst);
        log::set_boxed_logger(Box::new(BridgeLogger { inner }))?;
        log::set_max_level(stderr_level);
        Ok(())
    }
}

/// Where client copies go; set once the writer thread runs.
pub fn connect(outbox: Outbox) {
    let _ = OUTBOX.set(outbox);
}

/// `logging/setLevel`: from now on the client gets records at `level`
/// and above.
pub fn set_client_level(level: LevelFilter) {
    CLIENT_LEVEL.store(level as usize, Ordering::SeqCst);
    let stderr = STDERR_LEVEL.load(Ordering::SeqCst);
    log::set_max_level(filter_from(stderr.max(level as usize)));
}

fn filter_from(n: usize) -> LevelFilter {
    [
        LevelFilter::Off,
        LevelFilter::Error,
        LevelFilter::Warn,
        LevelFilter::Info,
        LevelFilter::Debug,
        LevelFilter::Trace,
    ]
    .get(n)
    .copied()
    .unwrap_or(LevelFilter::Trace)
}

/// MCP's syslog-style names for our levels.
fn mcp_level(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug | Level::Trace => "debug",
    }
}

impl<L: Log> Log for BridgeLogger<L> {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.enabled(metadata)
            || (metadata.level() as usize) <= CLIENT_LEVEL.load(Ordering::Relaxed)
    }

    fn log(&self, record: &Record) {
        if self.inner.enabled(record.metadata()) {
            self.inner.log(record);
        }
        if (record.level() as usize) > CLIENT_LEVEL.load(Ordering::Relaxed) {
            return;
        }
        if let Some(out) = OUTBOX.get() {
            let params = json!({
                "level": mcp_level(record.level()),
                "logger": record.target(),
                "data": record.args().to_string(),
            });
            out.send(jsonrpc::notification("notifications/message", params));
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_onto_mcp_names_and_back() {
        assert_eq!(mcp_level(Level::Warn), "warning");
        assert_eq!(filter_from(LevelFilter::Info as usize), LevelFilter::Info);
        assert_eq!(filter_from(99), LevelFilter::Trace);
    }
}
