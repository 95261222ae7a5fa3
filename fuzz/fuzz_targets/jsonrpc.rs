//! JSON-RPC line handling: the stdio framing (`transport::read_line`) over arbitrary bytes,
//! each line through `jsonrpc::parse`, and a `tools/call`'s arguments through
//! `tools::parse_arguments`, as `dispatch` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scout_mcp::mcp::jsonrpc::{self, Incoming};
use scout_mcp::mcp::tools;
use scout_mcp::mcp::transport::{self, Line};
use std::io::BufReader;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the reader's buffer size and the line limit, so lines that
    // span reads and the too-long path are both reached.
    let Some((&knob, input)) = data.split_first() else {
        return;
    };
    let capacity = 1 + usize::from(knob & 0x0f);
    let max = if knob & 0x80 != 0 {
        8 + usize::from(knob & 0x70)
    } else {
        transport::MAX_LINE
    };
    let mut reader = BufReader::with_capacity(capacity, input);
    let mut total = 0usize;
    while let Some(line) = transport::read_line(&mut reader, max).expect("reading a slice") {
        match line {
            Line::Message(bytes) => {
                assert!(bytes.len() <= max, "a message longer than the limit");
                assert!(!bytes.contains(&b'\n'), "a message with a newline");
                total += bytes.len() + 1;
                handle(&bytes);
            }
            Line::TooLong(n) => {
                assert!(n > max, "TooLong({n}) within the limit {max}");
                total += n + 1;
            }
        }
        assert!(total <= input.len() + 1, "more bytes read than given");
    }
    // The whole input, unframed, as one message too.
    handle(input);
});

fn handle(line: &[u8]) {
    match jsonrpc::parse(line) {
        Ok(Incoming::Request { params, .. } | Incoming::Notification { params, .. }) => {
            let _ = tools::parse_arguments(params.get("arguments"));
            let _ = tools::parse_arguments(Some(&params));
        }
        Ok(Incoming::Response) => {}
        Err(rejection) => {
            // The id we answer with must itself be a valid JSON-RPC id.
            assert!(
                rejection.id.is_null() || rejection.id.is_string() || rejection.id.is_number(),
                "{:?}",
                rejection.id
            );
            let _ = jsonrpc::error(&rejection.id, rejection.code, &rejection.message);
        }
    }
}
