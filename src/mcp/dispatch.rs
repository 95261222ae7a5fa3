//! Routing MCP methods. Cheap methods are answered on the reader thread;
//! tool calls and resource reads go to the worker pool, or are refused
//! at once with "server busy" when it is saturated.

use super::jsonrpc::{self, Incoming};
use super::tools;
use super::transport::Outbox;
use crate::cancel::CancelToken;
use crate::resources::metrics::QueueStats;
use crate::resources::{self, ResourceError};
use crate::scout::{Mode, RunContext, Scout};
use crate::workers::{Executor, Lane, Rejected};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Handshake-era protocol revisions we speak (via `initialize`), newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Stateless revisions: every request names its version in `_meta`.
pub const STATELESS_VERSIONS: &[&str] = &["2026-07-28"];

/// Where a stateless request names its protocol version (JSON pointer;
/// `~1` is `/`).
const META_VERSION: &str = "/_meta/io.modelcontextprotocol~1protocolVersion";

/// Which protocol era a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    /// initialize / notifications/initialized, then requests.
    Handshake,
    /// 2026-07-28: no handshake, results carry `resultType`.
    Stateless,
}

impl Era {
    fn finish(self, mut result: Value) -> Value {
        if self == Era::Stateless {
            if let Value::Object(map) = &mut result {
                map.insert("resultType".into(), json!("complete"));
            }
        }
        result
    }

    /// Listings and reads are cacheable results in 2026-07-28, which must say how long a
    /// client may keep them. Hosts come and go and files change under us, so: private to
    /// this user, stale at once.
    fn finish_cacheable(self, mut result: Value) -> Value {
        if self == Era::Stateless {
            if let Value::Object(map) = &mut result {
                map.insert("cacheScope".into(), json!("private"));
                map.insert("ttlMs".into(), json!(0));
            }
        }
        self.finish(result)
    }
}

const INSTRUCTIONS: &str = "scout-mcp reaches the SSH hosts of the user's ssh config. \
Call scout with target='hosts' to see them, then 'host:/path' to read a file or list a \
directory, and add query='...' to run a shell command there.";

/// Requests running or queued, by id, with their cancellation tokens.
#[derive(Default, Clone)]
pub struct InFlight(Arc<Mutex<HashMap<String, CancelToken>>>);

impl InFlight {
    /// Registers `id`; false when a request with that id is in flight.
    fn start(&self, id: &Value, token: &CancelToken) -> bool {
        let mut map = self.0.lock();
        let key = id.to_string();
        if map.contains_key(&key) {
            return false;
        }
        map.insert(key, token.clone());
        true
    }

    fn finish(&self, id: &Value) {
        self.0.lock().remove(&id.to_string());
    }

    fn cancel(&self, id: &Value) -> bool {
        match self.0.lock().get(&id.to_string()) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels everything still running (shutdown after the grace period).
    pub fn cancel_all(&self) -> usize {
        let map = self.0.lock();
        map.values().for_each(CancelToken::cancel);
        map.len()
    }

    pub fn len(&self) -> usize {
        self.0.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Dispatcher {
    scout: Arc<Scout>,
    executor: Arc<Executor>,
    out: Outbox,
    in_flight: InFlight,
}

impl Dispatcher {
    pub fn new(
        scout: Arc<Scout>,
        executor: Arc<Executor>,
        out: Outbox,
        in_flight: InFlight,
    ) -> Self {
        Dispatcher {
            scout,
            executor,
            out,
            in_flight,
        }
    }

    /// Handles one input line.
    pub fn handle_line(&self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match jsonrpc::parse(line) {
            Ok(Incoming::Request { id, method, params }) => self.request(id, &method, params),
            Ok(Incoming::Notification { method, params }) => self.notification(&method, &params),
            Ok(Incoming::Response) => {}
            Err(r) => self.out.send(jsonrpc::error(&r.id, r.code, &r.message)),
        }
    }

    fn notification(&self, method: &str, params: &Value) {
        if method != "notifications/cancelled" {
            log::debug!("notification {method}");
            return;
        }
        // Unknown or finished ids are normal (the race is inherent).
        if let Some(id) = params.get("requestId") {
            if self.in_flight.cancel(id) {
                log::info!("request {id} cancelled by the client");
            }
        }
    }

    /// Answers a message that was too large to read.
    pub fn too_long(&self, size: usize) {
        let message = format!(
            "Invalid request: message of {size} bytes exceeds the limit of {} bytes",
            super::transport::MAX_LINE
        );
        self.out.send(jsonrpc::error(
            &Value::Null,
            jsonrpc::INVALID_REQUEST,
            &message,
        ));
    }

    fn request(&self, id: Value, method: &str, params: Value) {
        let era = match params.pointer(META_VERSION) {
            None => Era::Handshake,
            Some(v) if v.as_str().is_some_and(|v| STATELESS_VERSIONS.contains(&v)) => {
                Era::Stateless
            }
            Some(v) => return self.unsupported_version(&id, v),
        };
        let answer = match (method, era) {
            ("server/discover", _) => Ok(discover()),
            ("initialize", Era::Handshake) => Ok(initialize(&params)),
            // Removed from the stateless revision.
            ("initialize" | "ping" | "logging/setLevel", Era::Stateless) => Err((
                jsonrpc::METHOD_NOT_FOUND,
                format!("Method not found: {method} is not part of protocol 2026-07-28"),
            )),
            ("ping", _) => Ok(json!({})),
            ("tools/list", _) => Ok(era.finish_cacheable(json!({"tools": [tools::definition()]}))),
            ("resources/list", _) => resource_list(&params).map(|r| era.finish_cacheable(r)),
            ("resources/templates/list", _) => Ok(era.finish_cacheable(
                json!({"resourceTemplates": listings(resources::TEMPLATES, "uriTemplate")}),
            )),
            ("logging/setLevel", _) => set_level(&params),
            ("tools/call", _) => return self.tool_call(id, &params, era),
            ("resources/read", _) => return self.resource_read(id, &params, era),
            _ => Err((
                jsonrpc::METHOD_NOT_FOUND,
                format!(
                    "Method not found: {}",
                    crate::scout::target::shorten(method)
                ),
            )),
        };
        self.reply(&id, answer.map(|r| era.finish(r)));
    }

    fn unsupported_version(&self, id: &Value, asked: &Value) {
        let supported: Vec<&str> = STATELESS_VERSIONS
            .iter()
            .chain(PROTOCOL_VERSIONS)
            .copied()
            .collect();
        let message = format!("Unsupported protocol version: {asked}");
        self.out.send(jsonrpc::error_with_data(
            id,
            jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
            &message,
            json!({"supported": supported, "requested": asked}),
        ));
    }

    fn reply(&self, id: &Value, answer: Result<Value, (i64, String)>) {
        self.out.send(match answer {
            Ok(result) => jsonrpc::response(id, result),
            Err((code, message)) => jsonrpc::error(id, code, &message),
        });
    }

    fn tool_call(&self, id: Value, params: &Value, era: Era) {
        let received = Instant::now();
        let name = params.get("name").and_then(Value::as_str);
        if name != Some(tools::TOOL_NAME) {
            let shown = name.map_or("(none)".to_string(), crate::scout::target::shorten);
            let message = format!("Unknown tool: {shown}. This server has one tool: scout");
            return self.reply(&id, Err((jsonrpc::INVALID_PARAMS, message)));
        }
        let request = match tools::parse_arguments(params.get("arguments")) {
            Ok(r) => r,
            Err(e) => return self.reply(&id, Err((jsonrpc::INVALID_PARAMS, e))),
        };
        let scout = Arc::clone(&self.scout);
        let ctx = self.run_context(params);
        let cancel = ctx.cancel.clone();
        let mode = request.mode();
        let work = self.timed(mode, received, move || {
            Ok(era.finish(tools::result(scout.run(&request, &ctx))))
        });
        self.submit(id, lane_of(mode), cancel, work);
    }

    /// Progress notifications go out when the request carries a token;
    /// `progress` must increase, so non-increasing reports are dropped.
    fn run_context(&self, params: &Value) -> RunContext {
        let Some(token) = params.pointer("/_meta/progressToken").cloned() else {
            return RunContext::default();
        };
        if !(token.is_string() || token.is_i64() || token.is_u64()) {
            return RunContext::default();
        }
        let out = self.out.clone();
        let last = std::sync::atomic::AtomicU64::new(0);
        let report = move |done: u64, total: Option<u64>, message: &str| {
            let previous = last.fetch_max(done, std::sync::atomic::Ordering::SeqCst);
            if done <= previous && previous != 0 {
                return;
            }
            let mut p = json!({"progressToken": token, "progress": done, "message": message});
            if let Some(t) = total {
                p["total"] = json!(t);
            }
            out.send(jsonrpc::notification("notifications/progress", p));
        };
        RunContext {
            progress: Some(Box::new(report)),
            cancel: CancelToken::new(),
        }
    }

    fn resource_read(&self, id: Value, params: &Value, era: Era) {
        let received = Instant::now();
        let Some(uri) = params
            .get("uri")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            let message = "resources/read needs a string 'uri'".to_string();
            return self.reply(&id, Err((jsonrpc::INVALID_PARAMS, message)));
        };
        if uri == resources::metrics::URI {
            // Answered here, not on a worker: it touches no network, and
            // must work when every worker is busy.
            let text = resources::metrics::text(&self.scout, self.queue_stats());
            return self.reply(&id, Ok(era.finish_cacheable(contents(&uri, text))));
        }
        let scout = Arc::clone(&self.scout);
        let mode = resources::mode_of(&uri);
        let work = self.timed(mode, received, move || {
            match resources::read(&scout, &uri) {
                Ok(text) => Ok(era.finish_cacheable(contents(&uri, text))),
                Err(ResourceError::NotFound(m)) => Err((jsonrpc::RESOURCE_NOT_FOUND, m)),
                Err(ResourceError::Failed(m)) => Err((jsonrpc::INTERNAL_ERROR, m)),
            }
        });
        self.submit(id, lane_of(mode), CancelToken::new(), work);
    }

    pub fn queue_stats(&self) -> QueueStats {
        QueueStats {
            queued: self.executor.queued(),
            running: self.executor.running(),
        }
    }

    /// Wraps `work` so that its latency (from `received`, queue wait
    /// included: what the client sees) and failure are recorded for `mode`.
    fn timed(
        &self,
        mode: Mode,
        received: Instant,
        work: impl FnOnce() -> Result<Value, (i64, String)> + Send + 'static,
    ) -> impl FnOnce() -> Result<Value, (i64, String)> + Send + 'static {
        let scout = Arc::clone(&self.scout);
        move || {
            let answer = work();
            let failed = answer
                .as_ref()
                .map_or(true, |v| v.get("isError") == Some(&Value::Bool(true)));
            scout.stats.record(mode, received.elapsed(), failed);
            answer
        }
    }

    /// Runs `work` on a worker and sends its answer; refuses at once when
    /// every worker is busy and the lane's queue is full.
    fn submit(
        &self,
        id: Value,
        lane: Lane,
        cancel: CancelToken,
        work: impl FnOnce() -> Result<Value, (i64, String)> + Send + 'static,
    ) {
        if !self.in_flight.start(&id, &cancel) {
            let message = format!("Invalid request: a request with id {id} is already in flight");
            return self.reply(&id, Err((jsonrpc::INVALID_REQUEST, message)));
        }
        let out = self.out.clone();
        let in_flight = self.in_flight.clone();
        let reply_id = id.clone();
        let job = Box::new(move || {
            let answer = work();
            in_flight.finish(&reply_id);
            // MCP: a cancelled request gets no response at all.
            if cancel.is_cancelled() {
                return;
            }
            out.send(match answer {
                Ok(result) => jsonrpc::response(&reply_id, result),
                Err((code, m)) => jsonrpc::error(&reply_id, code, &m),
            });
        });
        let rejected = self.executor.try_submit(job, lane);
        if rejected.is_err() {
            self.in_flight.finish(&id);
        }
        match rejected {
            Ok(()) => {}
            Err(Rejected::Busy) => {
                self.scout.stats.rejected();
                let message = format!(
                    "Server busy: {} requests running and {} {} requests queued; retry shortly",
                    self.executor.running(),
                    self.executor.queued_in(lane),
                    lane_words(lane)
                );
                self.reply(&id, Err((jsonrpc::SERVER_BUSY, message)));
            }
            Err(Rejected::Closed) => {
                let message = "Server is shutting down".to_string();
                self.reply(&id, Err((jsonrpc::SERVER_BUSY, message)));
            }
        }
    }
}

/// Commands, broadcasts and transfers may hold a worker for as long as
/// their timeouts allow; they must not keep reads from getting one.
fn lane_of(mode: Mode) -> Lane {
    if mode.is_bulk() {
        Lane::Bulk
    } else {
        Lane::Quick
    }
}

fn lane_words(lane: Lane) -> &'static str {
    match lane {
        Lane::Quick => "quick",
        Lane::Bulk => "command/transfer",
    }
}

fn initialize(params: &Value) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .and_then(|v| PROTOCOL_VERSIONS.iter().find(|&&s| s == v))
        .unwrap_or(&PROTOCOL_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS
    })
}

/// `server/discover`: what `initialize` tells, without a handshake.
fn discover() -> Value {
    let info = server_info();
    let supported: Vec<&str> = STATELESS_VERSIONS
        .iter()
        .chain(PROTOCOL_VERSIONS)
        .copied()
        .collect();
    json!({
        "resultType": "complete",
        "cacheScope": "private",
        "ttlMs": 0,
        "supportedVersions": supported,
        "capabilities": capabilities(),
        "serverInfo": info,
        "instructions": INSTRUCTIONS,
        "_meta": {"io.modelcontextprotocol/serverInfo": info}
    })
}

fn capabilities() -> Value {
    json!({
        "tools": {"listChanged": false},
        "resources": {"subscribe": false, "listChanged": false},
        "logging": {}
    })
}

fn server_info() -> Value {
    json!({
        "name": "scout-mcp",
        "title": "Scout MCP (SSH)",
        "version": env!("CARGO_PKG_VERSION")
    })
}

/// The list is short and fixed, so it always fits one page; a cursor we
/// never handed out is an error, as the spec asks.
fn resource_list(params: &Value) -> Result<Value, (i64, String)> {
    if let Some(cursor) = params.get("cursor") {
        let shown = crate::scout::target::shorten(&cursor.to_string());
        return Err((jsonrpc::INVALID_PARAMS, format!("Invalid cursor: {shown}")));
    }
    Ok(json!({"resources": listings(resources::RESOURCES, "uri")}))
}

fn contents(uri: &str, text: String) -> Value {
    json!({"contents": [{"uri": uri, "mimeType": resources::mime_type(uri), "text": text}]})
}

fn listings(items: &[resources::Listing], key: &str) -> Vec<Value> {
    items
        .iter()
        .map(|l| {
            let mut v = json!({
                "name": l.name,
                "description": l.description,
                "mimeType": resources::mime_type(l.uri)
            });
            v[key] = json!(l.uri);
            v
        })
        .collect()
}

/// `logging/setLevel`: MCP's syslog levels onto the log crate's.
fn set_level(params: &Value) -> Result<Value, (i64, String)> {
    use log::LevelFilter::*;
    let level = params.get("level").and_then(Value::as_str).unwrap_or("");
    let filter = match level {
        "debug" => Debug,
        "info" | "notice" => Info,
        "warning" => Warn,
        "error" | "critical" | "alert" | "emergency" => Error,
        _ => {
            let message = format!(
                "unknown log level '{}'",
                crate::scout::target::shorten(level)
            );
            return Err((jsonrpc::INVALID_PARAMS, message));
        }
    };
    super::log_bridge::set_client_level(filter);
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateless_listings_and_reads_say_how_long_they_may_be_cached() {
        let listing = Era::Stateless.finish_cacheable(json!({"tools": []}));
        assert_eq!(listing["resultType"], json!("complete"));
        assert_eq!(listing["cacheScope"], json!("private"));
        assert_eq!(listing["ttlMs"], json!(0));
        let discovered = discover();
        assert_eq!(discovered["cacheScope"], json!("private"));
        assert_eq!(discovered["ttlMs"], json!(0));
        // Handshake-era results stay as the older revisions define them.
        let legacy = Era::Handshake.finish_cacheable(json!({"tools": []}));
        assert_eq!(legacy, json!({"tools": []}));
    }

    #[test]
    fn negotiates_the_version_the_client_asks_for_when_known() {
        for v in PROTOCOL_VERSIONS {
            let r = initialize(&json!({"protocolVersion": v}));
            assert_eq!(r["protocolVersion"], json!(v));
        }
        let r = initialize(&json!({"protocolVersion": "1999-01-01"}));
        assert_eq!(r["protocolVersion"], json!("2025-11-25"));
        assert_eq!(
            initialize(&json!({}))["protocolVersion"],
            json!("2025-11-25")
        );
    }

    #[test]
    fn set_level_rejects_unknown_levels() {
        assert!(set_level(&json!({"level": "loud"})).is_err());
    }
}
