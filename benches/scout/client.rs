//! A pipelined MCP client for the bench: it keeps N requests in flight over the server's
//! stdin and times each one from the write of its line to the arrival of its response, which
//! a reader thread stamps the moment the line is read.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// stderr kept for failure messages.
const STDERR_TAIL: usize = 2048;

/// One response as it arrived.
struct Arrival {
    id: u64,
    at: Instant,
    message: Value,
}

/// The outcome of a pipelined run.
pub struct Run {
    pub latencies: Vec<Duration>,
    pub wall: Duration,
    /// Responses that were not what the caller expected (a JSON-RPC error, or a tool result
    /// whose isError differs from the expectation).
    pub errors: usize,
    pub first_error: Option<String>,
}

/// A running scout-mcp (the release binary cargo built for this bench). Stopped on drop:
/// stdin closed, then killed by PID if it has not exited within 5 s.
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    arrivals: Receiver<Arrival>,
    stderr: Arc<Mutex<String>>,
    spawned_at: Instant,
    next_id: u64,
}

impl Client {
    /// Starts scout-mcp with exactly `env` as its SCOUT_* settings (ours are removed).
    pub fn spawn(env: &[(String, String)]) -> Result<Client, String> {
        let binary = env!("CARGO_BIN_EXE_scout-mcp");
        let mut command = Command::new(binary);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SCOUT_") {
                command.env_remove(&key);
            }
        }
        command
            .env_remove("SSH_AUTH_SOCK")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawned_at = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {binary}: {e}"))?;
        let (Some(stdout), Some(stderr), Some(stdin)) =
            (child.stdout.take(), child.stderr.take(), child.stdin.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{binary}: its stdio pipes were not set up"));
        };
        let (sender, arrivals) = mpsc::channel();
        thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            // Ends at end-of-file, when the server exits, or when the client is dropped.
            while let Ok(1..) = stdout.read_until(b'\n', &mut line) {
                let at = Instant::now();
                if let Ok(message) = serde_json::from_slice::<Value>(&line) {
                    let id = message.get("id").and_then(Value::as_u64);
                    if let (Some(id), None) = (id, message.get("method")) {
                        if sender.send(Arrival { id, at, message }).is_err() {
                            break;
                        }
                    }
                }
                line.clear();
            }
        });
        let tail = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&tail);
        thread::spawn(move || {
            let mut stderr = BufReader::new(stderr);
            let mut line = String::new();
            while let Ok(1..) = stderr.read_line(&mut line) {
                if let Ok(mut kept) = sink.lock() {
                    kept.push_str(&line);
                    if kept.len() > 2 * STDERR_TAIL {
                        let cut = kept.len() - STDERR_TAIL;
                        let cut = (cut..kept.len())
                            .find(|&i| kept.is_char_boundary(i))
                            .unwrap_or(kept.len());
                        kept.drain(..cut);
                    }
                }
                line.clear();
            }
        });
        Ok(Client {
            child,
            stdin: Some(stdin),
            arrivals,
            stderr: tail,
            spawned_at,
            next_id: 1,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The MCP handshake. Returns the time from spawning the process to the answer.
    pub fn initialize(&mut self) -> Result<Duration, String> {
        let params = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "scout-mcp-bench", "version": "0.0.0"},
        });
        let id = self.start("initialize", params)?;
        let (at, message) = self.wait(id, Duration::from_secs(30))?;
        if message.get("result").is_none() {
            return Err(format!("initialize failed: {message}"));
        }
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(at - self.spawned_at)
    }

    /// One `scout` tool call; its latency and result. A JSON-RPC error is an Err, a tool
    /// error (isError) is a result the caller judges.
    pub fn call(&mut self, args: &Value, limit: Duration) -> Result<(Duration, Value), String> {
        let sent = Instant::now();
        let id = self.start("tools/call", tool_params(args))?;
        let (at, message) = self.wait(id, limit)?;
        match message.get("result") {
            Some(result) => Ok((at - sent, result.clone())),
            None => Err(format!("scout {args}: {}", message["error"])),
        }
    }

    /// A call that must succeed (isError false); its latency.
    pub fn call_ok(&mut self, args: &Value, limit: Duration) -> Result<Duration, String> {
        let (took, result) = self.call(args, limit)?;
        if is_tool_error(&result) {
            return Err(format!("scout {args}: {}", tool_text(&result)));
        }
        Ok(took)
    }

    /// The text of resource `uri`.
    pub fn resource(&mut self, uri: &str) -> Result<String, String> {
        let id = self.start("resources/read", json!({"uri": uri}))?;
        let (_, message) = self.wait(id, Duration::from_secs(30))?;
        message["result"]["contents"][0]["text"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{uri}: {}", message["error"]["message"]))
    }

    /// Sends every call in `calls` with at most `in_flight` outstanding, and times each.
    /// `expect_error` is the isError every result should have. Gives up after `limit`.
    pub fn pipelined(
        &mut self,
        calls: &[Value],
        in_flight: usize,
        expect_error: bool,
        limit: Duration,
    ) -> Result<Run, String> {
        let started = Instant::now();
        let deadline = started + limit;
        let mut sent_at: HashMap<u64, Instant> = HashMap::new();
        let mut next = 0;
        let mut run = Run {
            latencies: Vec::with_capacity(calls.len()),
            wall: Duration::ZERO,
            errors: 0,
            first_error: None,
        };
        while run.latencies.len() < calls.len() {
            while next < calls.len() && sent_at.len() < in_flight.max(1) {
                let at = Instant::now();
                let id = self.start("tools/call", tool_params(&calls[next]))?;
                sent_at.insert(id, at);
                next += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let arrival = self.next_arrival(left).map_err(|why| {
                format!(
                    "{why} ({} of {} calls answered)",
                    run.latencies.len(),
                    calls.len()
                )
            })?;
            let Some(sent) = sent_at.remove(&arrival.id) else {
                continue;
            };
            run.latencies.push(arrival.at - sent);
            if let Some(why) = unexpected(&arrival.message, expect_error) {
                run.errors += 1;
                run.first_error.get_or_insert(why);
            }
        }
        run.wall = started.elapsed();
        Ok(run)
    }

    /// VmRSS of the server, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    fn start(&mut self, method: &str, params: Value) -> Result<u64, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        Ok(id)
    }

    fn send(&mut self, message: &Value) -> Result<(), String> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err("the server's stdin is closed".to_string());
        };
        let mut line = message.to_string();
        line.push('\n');
        if let Err(e) = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
        {
            return Err(format!(
                "cannot write to scout-mcp (pid {}): {e}; its stderr: {}",
                self.pid(),
                self.stderr_tail()
            ));
        }
        Ok(())
    }

    fn wait(&mut self, id: u64, limit: Duration) -> Result<(Instant, Value), String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let arrival = self.next_arrival(left)?;
            if arrival.id == id {
                return Ok((arrival.at, arrival.message));
            }
        }
    }

    fn next_arrival(&self, limit: Duration) -> Result<Arrival, String> {
        match self.arrivals.recv_timeout(limit) {
            Ok(arrival) => Ok(arrival),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "no response from scout-mcp within {limit:?}; its stderr: {}",
                self.stderr_tail()
            )),
            Err(RecvTimeoutError::Disconnected) => Err(format!(
                "scout-mcp closed stdout (exited?); its stderr: {}",
                self.stderr_tail()
            )),
        }
    }

    fn stderr_tail(&self) -> String {
        let kept = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        let kept = kept.trim();
        let start = kept.len().saturating_sub(400);
        let start = (start..kept.len())
            .find(|&i| kept.is_char_boundary(i))
            .unwrap_or(kept.len());
        kept[start..].replace('\n', " | ")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool_params(args: &Value) -> Value {
    json!({"name": "scout", "arguments": args})
}

pub fn is_tool_error(result: &Value) -> bool {
    result["isError"].as_bool().unwrap_or(false)
}

pub fn tool_text(result: &Value) -> String {
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    text.chars().take(300).collect()
}

/// Why a response is not what a run expected, if it is not.
fn unexpected(message: &Value, expect_error: bool) -> Option<String> {
    let Some(result) = message.get("result") else {
        return Some(format!("JSON-RPC error {}", message["error"]));
    };
    (is_tool_error(result) != expect_error).then(|| tool_text(result))
}
