//! JSON-RPC 2.0 messages, one per line (MCP's stdio transport).

use serde_json::{json, Map, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined: every worker is busy and the queue is full.
pub const SERVER_BUSY: i64 = -32000;
/// MCP 2026-07-28: the request's protocol version is not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// MCP: the resource does not exist.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// An incoming message.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// A reply to something we sent; we send no requests yet.
    Response,
}

/// A message we must answer with an error, and the id to answer with
/// (null when it could not be read).
#[derive(Debug, PartialEq)]
pub struct Rejection {
    pub id: Value,
    pub code: i64,
    pub message: String,
}

/// Parses one line.
pub fn parse(line: &[u8]) -> Result<Incoming, Rejection> {
    let value: Value = serde_json::from_slice(line).map_err(|e| Rejection {
        id: Value::Null,
        code: PARSE_ERROR,
        message: format!("Parse error: {e}"),
    })?;
    let Value::Object(obj) = value else {
        let what = if value.is_array() {
            "batches are not supported; send one JSON-RPC object per line"
        } else {
            "a JSON-RPC message must be a JSON object"
        };
        return Err(invalid(Value::Null, what));
    };
    classify(obj)
}

fn invalid(id: Value, why: &str) -> Rejection {
    Rejection {
        id,
        code: INVALID_REQUEST,
        message: format!("Invalid request: {why}"),
    }
}

fn classify(mut obj: Map<String, Value>) -> Result<Incoming, Rejection> {
    let id = obj.remove("id");
    let id_for_errors = id.clone().filter(valid_id).unwrap_or(Value::Null);
    if obj.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid(id_for_errors, "\"jsonrpc\" must be \"2.0\""));
    }
    if let Some(id) = &id {
        if !valid_id(id) {
            return Err(invalid(
                Value::Null,
                "\"id\" must be a string or an integer",
            ));
        }
    }
    let params = obj.remove("params").unwrap_or(Value::Null);
    if !(params.is_null() || params.is_object() || params.is_array()) {
        return Err(invalid(id_for_errors, "\"params\" must be an object"));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => return Err(invalid(id_for_errors, "\"method\" must be a string")),
        None if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) => {
            return Ok(Incoming::Response)
        }
        None => return Err(invalid(id_for_errors, "\"method\" is missing")),
    };
    Ok(match id {
        Some(id) => Incoming::Request { id, method, params },
        None => Incoming::Notification { method, params },
    })
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.as_i64().is_some() || id.as_u64().is_some()
}

pub fn response(id: &Value, result: Value) -> String {
    encode(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

pub fn error(id: &Value, code: i64, message: &str) -> String {
    encode(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
}

pub fn error_with_data(id: &Value, code: i64, message: &str, data: Value) -> String {
    encode(
        &json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message, "data": data}}),
    )
}

pub fn notification(method: &str, params: Value) -> String {
    encode(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
}

/// One message as a JSON line's text. `serde_json::to_string` writes
/// straight into a byte buffer; `Value`'s `Display` (`.to_string()`) goes
/// through `fmt::Write` a piece at a time, which costs about twice as much
/// on a 1 MiB file.
fn encode(message: &Value) -> String {
    // A Value has string keys only, so serialising it cannot fail.
    serde_json::to_string(message).unwrap_or_else(|e| {
        format!(r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32603,"message":"cannot encode the answer: {e}"}}}}"#)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(line: &str) -> i64 {
        parse(line.as_bytes()).expect_err(line).code
    }

    #[test]
    fn reads_requests_notifications_and_responses() {
        let req = parse(br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).unwrap();
        assert_eq!(
            req,
            Incoming::Request {
                id: json!(7),
                method: "ping".into(),
                params: Value::Null
            }
        );
        let note = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(note, Incoming::Notification { .. }));
        let resp = parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(resp, Incoming::Response);
    }

    #[test]
    fn rejects_broken_messages_with_the_right_code() {
        assert_eq!(code_of("not json"), PARSE_ERROR);
        assert_eq!(code_of("{\"jsonrpc\":\"2.0\""), PARSE_ERROR);
        assert_eq!(code_of("[1,2]"), INVALID_REQUEST);
        assert_eq!(code_of("42"), INVALID_REQUEST);
        assert_eq!(code_of(r#"{"id":1,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(
            code_of(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":5}"#),
            INVALID_REQUEST
        );
        assert_eq!(code_of(r#"{"jsonrpc":"2.0","id":1}"#), INVALID_REQUEST);
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#),
            INVALID_REQUEST
        );
    }

    #[test]
    fn an_invalid_request_keeps_its_id_when_it_is_readable() {
        let r = parse(br#"{"jsonrpc":"1.0","id":"abc","method":"ping"}"#).unwrap_err();
        assert_eq!(r.id, json!("abc"));
    }

    #[test]
    fn non_utf8_is_a_parse_error() {
        assert_eq!(parse(b"{\"a\":\"\xff\"}").unwrap_err().code, PARSE_ERROR);
    }
}
