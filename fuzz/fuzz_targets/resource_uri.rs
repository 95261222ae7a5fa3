//! Resource URI parsing (`scout://{host}/{path}` and the `{host}://...` views), without an
//! inventory or any SSH.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    let _ = scout_mcp::resources::parse_uri(uri);
});
