//! The command line for humans: `call`, `hosts` and `check`, on the same
//! code path as the MCP tool (`build_core` + `Scout::run`), so what a
//! person sees here is what an MCP client gets.

pub mod args;
mod check;
mod help;

pub use args::{parse, Command, Topic, UsageError};

use crate::config::{Inventory, Settings, SshConfig};
use crate::scout::{RunContext, ScoutRequest, ToolOutput};
use crate::server::{build_core, connect_options};
use crate::ssh::Jumps;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The log level of the commands when neither SCOUT_LOG_LEVEL nor
/// RUST_LOG is set: their stdout is for people, their stderr for errors.
pub const DEFAULT_LOG_LEVEL: &str = "warn";

/// Exit status of a usage or configuration error.
const USAGE: u8 = 2;
/// Exit status after Ctrl-C, as shells report a SIGINT death.
const INTERRUPTED: u8 = 130;

/// How long closing the pool's sessions may take on the way out.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The help text for `topic`.
pub fn help(topic: Topic) -> String {
    help::text(topic)
}

/// `scout-mcp: message`, then the usage of what was being parsed.
pub fn usage_error(e: &UsageError) -> String {
    format!("scout-mcp: {}\n\n{}", e.message, help::text(e.topic))
}

/// Runs a command other than [`Command::Serve`], which `main` hands to
/// the server.
pub fn run(command: Command) -> ExitCode {
    match command {
        // `main` serves MCP itself; should it ever pass Serve here, help is harmless.
        Command::Serve => print_out(&help::text(Topic::Global)),
        Command::Help(topic) => print_out(&help::text(topic)),
        Command::Version => print_out(&format!("scout-mcp {}\n", env!("CARGO_PKG_VERSION"))),
        Command::Call(call) => with_settings(|s| run_call(&call.request, call.json, s)),
        Command::Hosts => with_settings(|s| {
            let request = ScoutRequest {
                target: "hosts".into(),
                ..ScoutRequest::default()
            };
            run_call(&request, false, s)
        }),
        Command::Check(hosts) => with_settings(|s| run_check(&hosts, &s)),
    }
}

fn with_settings(f: impl FnOnce(Settings) -> ExitCode) -> ExitCode {
    match Settings::from_env() {
        Ok(settings) => f(settings),
        Err(e) => {
            eprintln!("scout-mcp: configuration error: {e}");
            ExitCode::from(USAGE)
        }
    }
}

fn print_out(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    // A closed stdout (`| head`) is not worth a second error.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    ExitCode::SUCCESS
}

fn with_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn run_call(request: &ScoutRequest, json: bool, settings: Settings) -> ExitCode {
    let core = match build_core(settings) {
        Ok(core) => core,
        Err(e) => {
            eprintln!("scout-mcp: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let ctx = RunContext::default();
    let interrupts = cancel_on_ctrl_c(&ctx);
    let output = core.scout.run(request, &ctx);
    core.pool_threads
        .shutdown(core.scout.pool.clone(), CLOSE_GRACE);
    if interrupts.load(Ordering::SeqCst) > 0 {
        eprintln!("{}", output.text.trim_end());
        return ExitCode::from(INTERRUPTED);
    }
    report(output, json)
}

/// Ctrl-C cancels the call (its remote command is stopped, as an MCP
/// cancellation does); a second Ctrl-C leaves at once.
fn cancel_on_ctrl_c(ctx: &RunContext) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let cancel = ctx.cancel.clone();
    let installed = ctrlc::set_handler(move || {
        if seen.fetch_add(1, Ordering::SeqCst) > 0 {
            std::process::exit(i32::from(INTERRUPTED));
        }
        cancel.cancel();
    });
    if let Err(e) = installed {
        log::warn!("cannot install the Ctrl-C handler, Ctrl-C will not stop remote commands: {e}");
    }
    count
}

fn report(output: ToolOutput, json: bool) -> ExitCode {
    if output.is_error {
        eprint!("{}", with_newline(output.text));
        return ExitCode::FAILURE;
    }
    let text = if json {
        let value = output
            .structured
            .unwrap_or_else(|| serde_json::json!({"text": output.text}));
        serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    } else {
        output.text
    };
    print_out(&with_newline(text))
}

fn run_check(names: &[String], settings: &Settings) -> ExitCode {
    let inventory = match SshConfig::load(&settings.ssh_config) {
        Ok(config) => Arc::new(Inventory::new(
            config,
            settings.allowlist.as_deref(),
            &settings.blocklist,
        )),
        Err(e) => {
            eprintln!("scout-mcp: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let names = if names.is_empty() {
        inventory.names()
    } else {
        names.to_vec()
    };
    if names.is_empty() {
        eprintln!(
            "scout-mcp: no hosts to check: {} names none",
            settings.ssh_config.display()
        );
        return ExitCode::FAILURE;
    }
    let mut opts = connect_options(settings);
    // Hop names are aliases of the ssh config, as for the server's pool.
    let hops = Arc::clone(&inventory);
    opts.jumps = Some(Arc::new(Jumps::new(move |name| hops.resolve_hop(name))));
    let reports = check::check_all(
        &names,
        &inventory,
        settings,
        &opts,
        settings.broadcast_width,
    );
    print_out(&check::table(&reports));
    if reports.iter().all(|r| r.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
