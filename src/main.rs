//! Entry point: parse the command line, then serve MCP (no arguments)
//! or run a command for humans.

use scout_mcp::cli::{self, Command};
use scout_mcp::config::Settings;
use scout_mcp::mcp::log_bridge::BridgeLogger;
use std::process::ExitCode;

/// Logs go to stderr; SCOUT_LOG_LEVEL, then RUST_LOG, then `default`.
fn init_logging(default: &str) {
    let filter = std::env::var("SCOUT_LOG_LEVEL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default.to_string());
    let logger = env_logger::Builder::new()
        .parse_filters(&filter)
        .target(env_logger::Target::Stderr)
        .build();
    let level = logger.filter();
    // Fails only if a logger is already set, which nothing here does.
    let _ = BridgeLogger::install(logger, level);
}

/// Keeps glibc from handing big buffers (a 1 MiB file, its JSON) back to
/// the kernel after every request, only to fault the same pages in again
/// for the next one: with its defaults a 1 MiB read spent about a third of
/// the server's time in page faults. Memory kept is bounded by what the
/// bounded workers can hold at once, which the process needs anyway.
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse(&args) {
        Ok(Command::Serve) => serve(),
        Ok(command) => {
            init_logging(cli::DEFAULT_LOG_LEVEL);
            cli::run(command)
        }
        Err(e) => {
            eprint!("{}", cli::usage_error(&e));
            ExitCode::from(2)
        }
    }
}

fn serve() -> ExitCode {
    init_logging("info");
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scout-mcp: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = scout_mcp::server::serve(settings) {
        eprintln!("scout-mcp: {e}");
        return ExitCode::FAILURE;
    }
    // The stdin reader may still be blocked after a signal: leave now.
    std::process::exit(0);
}
