//! Entry point: parse the command line, read the configuration, serve.

use scout_mcp::config::{Settings, VARIABLES};
use scout_mcp::mcp::log_bridge::BridgeLogger;
use std::process::ExitCode;

fn usage() -> String {
    let mut text = format!(
        "scout-mcp {}\n\
         An MCP server (stdio) that reads files, lists directories and runs commands\n\
         on the hosts of your ssh config, over SSH.\n\n\
         USAGE:\n    scout-mcp            serve MCP on stdin/stdout (what MCP clients run)\n    \
         scout-mcp --help     this text\n    scout-mcp --version  the version\n\n\
         ENVIRONMENT:\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, default, meaning) in VARIABLES {
        text.push_str(&format!("    {name:<32} {meaning} (default: {default})\n"));
    }
    text
}

fn init_logging() {
    let filter = std::env::var("SCOUT_LOG_LEVEL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
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
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help" | "help") => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("scout-mcp {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("scout-mcp: unknown argument '{other}'\n\n{}", usage());
            return ExitCode::from(2);
        }
    }
    init_logging();
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
