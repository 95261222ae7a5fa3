//! The scout-mcp binary under test, spoken to as an MCP client would: newline-delimited
//! JSON-RPC 2.0 on its stdin and stdout.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::fleet::Fleet;
use super::proxy::{ProxiedFleet, Proxy};
use super::{poll, tail, PATIENCE};

/// Set this to see scout-mcp's stderr as it is written (it is collected either way).
const ECHO_STDERR_ENV: &str = "SCOUT_TEST_ECHO_STDERR";

/// The protocol version the tests speak (DESIGN.md §2).
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// One line scout-mcp wrote to stdout.
enum Line {
    Message(Value),
    /// stdout must carry nothing but JSON-RPC messages; this is kept for the failure message.
    NotJson(String),
}

/// What the next message from stdout turned out to be.
enum Next {
    Message(Value),
    TimedOut,
    /// stdout reached end-of-file: scout-mcp exited or closed it.
    Closed,
}

/// A running scout-mcp. A reader thread turns each stdout line into a JSON value; another
/// collects stderr. Killed (by pid) and reaped on drop if it is still running.
pub struct Scout {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    /// Messages that arrived while we waited for something else, oldest first.
    buffered: VecDeque<Value>,
    stderr: Arc<Mutex<String>>,
    /// The thread collecting stderr; it finishes at end-of-file, once scout-mcp has exited.
    stderr_reader: thread::JoinHandle<()>,
    next_id: u64,
    /// The method of each request we sent, for failure messages.
    methods: HashMap<u64, String>,
}

/// The result of one `tools/call`.
#[derive(Clone, Debug)]
pub struct ToolResult {
    /// The text of every `text` content item, joined by newlines.
    pub text: String,
    /// The result's `isError` (false when absent).
    pub is_error: bool,
    /// The result's `structuredContent`, if any.
    pub structured: Option<Value>,
    /// The whole `result` object.
    pub raw: Value,
}

impl ToolResult {
    pub fn from_result(result: &Value) -> ToolResult {
        let texts: Vec<&str> = result["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| item["type"] == "text")
            .filter_map(|item| item["text"].as_str())
            .collect();
        ToolResult {
            text: texts.join("\n"),
            is_error: result["isError"].as_bool().unwrap_or(false),
            structured: result.get("structuredContent").cloned(),
            raw: result.clone(),
        }
    }
}

impl Scout {
    /// Starts scout-mcp with the fleet's environment ([`Fleet::env`]).
    pub fn spawn(fleet: &Fleet) -> Scout {
        Scout::spawn_env(&fleet.env())
    }

    /// Starts scout-mcp with the fleet's environment plus `extra_env` (which wins).
    pub fn spawn_with(fleet: &Fleet, extra_env: &[(&str, &str)]) -> Scout {
        let mut env = fleet.env();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Scout::spawn_env(&env)
    }

    /// Starts and initializes scout-mcp with the fleet's hosts, one more alias "proxied"
    /// reached through `proxy`, and `extra` settings (which win).
    pub fn spawn_through(fleet: &Fleet, proxy: &Proxy, extra: &[(&str, &str)]) -> Scout {
        let mut env = fleet.env();
        env.extend(fleet.env_with_proxies(&[("proxied", proxy.addr())]));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut scout = Scout::spawn_env(&env);
        scout.initialize();
        scout
    }

    /// Starts scout-mcp with exactly these SCOUT_* settings: ones from the developer's shell,
    /// and their ssh-agent, are removed so they cannot change what a test sees.
    pub fn spawn_env(env: &[(String, String)]) -> Scout {
        Scout::spawn_command(Command::new(binary()), env)
    }

    /// Like [`Scout::spawn_env`], but runs `command` (say, the static binary under `chroot`).
    pub fn spawn_command(mut command: Command, env: &[(String, String)]) -> Scout {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SCOUT_") {
                command.env_remove(&key);
            }
        }
        command.env_remove("SSH_AUTH_SOCK");
        let mut child = command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));

        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            // Ends at end-of-file (scout-mcp exited) or when the test dropped the receiver.
            while let Ok(1..) = stdout.read_until(b'\n', &mut line) {
                let text = String::from_utf8_lossy(&line);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let parsed = match serde_json::from_str(text) {
                    Ok(message) => Line::Message(message),
                    Err(_) => Line::NotJson(text.to_string()),
                };
                if sender.send(parsed).is_err() {
                    break;
                }
                line.clear();
            }
        });

        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        let echo = std::env::var_os(ECHO_STDERR_ENV).is_some();
        let stderr_reader = thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut line = Vec::new();
            // Ends at end-of-file, when scout-mcp exits. Whole lines, so that a character
            // is never split between two reads.
            while let Ok(1..) = pipe.read_until(b'\n', &mut line) {
                let text = String::from_utf8_lossy(&line);
                if echo {
                    eprint!("{text}");
                }
                sink.lock().expect("stderr buffer lock").push_str(&text);
                line.clear();
            }
        });

        Scout {
            stdin: child.stdin.take(),
            child,
            lines,
            buffered: VecDeque::new(),
            stderr,
            stderr_reader,
            next_id: 1,
            methods: HashMap::new(),
        }
    }

    /// Writes `line` and a newline to scout-mcp's stdin, as is (for malformed-input tests).
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("send_line after close_stdin");
        let written = stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush());
        if let Err(e) = written {
            panic!(
                "cannot write to scout-mcp's stdin ({e}); {}\nthe line: {line}",
                self.describe_state()
            );
        }
    }

    pub fn send(&mut self, message: &Value) {
        self.send_line(&message.to_string());
    }

    /// Sends a request and waits (30 s) for its response, which it returns whole. Messages
    /// that arrive meanwhile are kept for [`Scout::recv`].
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start_request(method, params);
        self.wait_response(id, PATIENCE)
    }

    /// Sends a request with a fresh numeric id and returns the id, without waiting.
    pub fn start_request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.methods.insert(id, method.to_string());
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Waits up to `timeout` for the response to request `id`; panics if none comes.
    pub fn wait_response(&mut self, id: u64, timeout: Duration) -> Value {
        if let Some(pos) = self.buffered.iter().position(|m| is_response_to(m, id)) {
            return self.buffered.remove(pos).expect("position is in range");
        }
        let deadline = Instant::now() + timeout;
        // Each round takes one message off stdout or ends the wait, and the deadline ends it
        // even if scout-mcp keeps writing other messages.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let problem = match self.next_from_stdout(left) {
                Next::Message(m) if is_response_to(&m, id) => return m,
                Next::Message(m) => {
                    self.buffered.push_back(m);
                    if Instant::now() < deadline {
                        continue;
                    }
                    format!("no response within {timeout:?}")
                }
                Next::TimedOut => format!("no response within {timeout:?}"),
                Next::Closed => "scout-mcp closed stdout before responding".to_string(),
            };
            let method = self.methods.get(&id).cloned().unwrap_or_default();
            panic!(
                "expected a response to request {id} ({method}): {problem}; {}",
                self.describe_state()
            );
        }
    }

    /// The next message of any kind (first those kept while waiting for a response), or None
    /// if none arrives within `timeout` or scout-mcp has closed stdout.
    pub fn recv(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(message) = self.buffered.pop_front() {
            return Some(message);
        }
        match self.next_from_stdout(timeout) {
            Next::Message(m) => Some(m),
            Next::TimedOut | Next::Closed => None,
        }
    }

    /// The MCP handshake: `initialize`, then `notifications/initialized`. Returns the result.
    pub fn initialize(&mut self) -> Value {
        let response = self.request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "scout-mcp-tests", "version": "0.0.0"},
            }),
        );
        let Some(result) = response.get("result").cloned() else {
            panic!(
                "expected initialize to succeed, got {response}; {}",
                self.describe_state()
            );
        };
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        result
    }

    /// Calls the `scout` tool with `args`. Tool failures come back as results with
    /// `is_error`; a JSON-RPC error here is a bug, so it panics.
    pub fn call(&mut self, args: Value) -> ToolResult {
        let response = self.request("tools/call", json!({"name": "scout", "arguments": args}));
        if let Some(error) = response.get("error") {
            panic!(
                "expected a tool result from scout {args}, got JSON-RPC error {error}; {}",
                self.describe_state()
            );
        }
        let Some(result) = response.get("result") else {
            panic!(
                "expected a result from scout {args}, got {response}; {}",
                self.describe_state()
            );
        };
        ToolResult::from_result(result)
    }

    /// Closes scout-mcp's stdin, which should make it exit.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Waits up to `timeout` for scout-mcp to exit; None if it is still running. Once it has
    /// exited, [`Scout::stderr_log`] holds all it wrote.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = poll(timeout, Duration::from_millis(10), || {
            self.child
                .try_wait()
                .unwrap_or_else(|e| panic!("cannot check whether scout-mcp exited: {e}"))
        })?;
        // The stderr thread reaches end-of-file right after the exit; a process scout-mcp
        // left behind could hold stderr open, so do not wait for it for long.
        poll(Duration::from_secs(5), Duration::from_millis(2), || {
            self.stderr_reader.is_finished().then_some(())
        });
        Some(status)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything scout-mcp has written to stderr so far. A thread collects it, so while
    /// scout-mcp runs, a line written just before a response may not be here yet: see
    /// [`Scout::wait_for_stderr`]. After [`Scout::wait_exit`] it is complete.
    pub fn stderr_log(&self) -> String {
        self.stderr.lock().expect("stderr buffer lock").clone()
    }

    /// Waits up to `timeout` for `needle` to appear on scout-mcp's stderr; true if it did.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        poll(timeout, Duration::from_millis(10), || {
            self.stderr_log().contains(needle).then_some(())
        })
        .is_some()
    }

    fn next_from_stdout(&mut self, timeout: Duration) -> Next {
        match self.lines.recv_timeout(timeout) {
            Ok(Line::Message(message)) => Next::Message(message),
            Ok(Line::NotJson(line)) => panic!(
                "scout-mcp wrote a line to stdout that is not JSON (stdout must carry only \
                 JSON-RPC messages): {line:?}; {}",
                self.describe_state()
            ),
            Err(RecvTimeoutError::Timeout) => Next::TimedOut,
            Err(RecvTimeoutError::Disconnected) => Next::Closed,
        }
    }

    /// Whether scout-mcp still runs, what it sent that nobody asked for yet, and its last
    /// stderr lines: the context a failure message needs.
    fn describe_state(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!("scout-mcp has exited ({status})"),
            Ok(None) => "scout-mcp is still running".to_string(),
            Err(e) => format!("scout-mcp's state is unknown ({e})"),
        };
        let unclaimed: Vec<String> = self.buffered.iter().map(Value::to_string).collect();
        let unclaimed = unclaimed.join("\n");
        format!(
            "{status}.\nmessages received but not yet claimed: [{}]\nstderr (last 4 KiB):\n{}",
            tail(&unclaimed, 2048),
            tail(&self.stderr_log(), 4096),
        )
    }
}

/// The scout-mcp binary. Integration tests know the one cargo built for them at compile time;
/// elsewhere (the demo example) it is $SCOUT_MCP_BIN, or the binary beside ours in cargo's
/// target dir (target/<profile>/scout-mcp, next to examples/ and deps/).
fn binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_scout-mcp") {
        return PathBuf::from(path);
    }
    if let Some(path) = std::env::var_os("SCOUT_MCP_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the path of the running executable");
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("scout-mcp"));
    match beside {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "cannot find the scout-mcp binary (looked for {beside:?}): build it first \
             (cargo build --release) or set SCOUT_MCP_BIN"
        ),
    }
}

fn is_response_to(message: &Value, id: u64) -> bool {
    // A request from the server may reuse a number as its own id; a response has no method.
    message.get("method").is_none() && message.get("id") == Some(&json!(id))
}

impl Drop for Scout {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- scout-mcp stderr (last 4 KiB):\n{}",
                tail(&self.stderr_log(), 4096)
            );
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
