//! The server's own view of its pool, from the `metrics://pool` resource. A server without
//! that resource gives `Err`, which the table shows as "n/a".

use crate::client::Client;
use serde_json::Value;

pub struct Pool {
    pub checkout_p50_us: Option<f64>,
    pub lock_wait_p99_us: Option<f64>,
    pub peak_live: Option<u64>,
    pub bound: Option<u64>,
}

pub fn read(client: &mut Client) -> Result<Pool, String> {
    let text = client.resource("metrics://pool").map_err(|why| {
        eprintln!("bench: metrics://pool: {why}");
        "n/a (this server has no metrics://pool)".to_string()
    })?;
    let m: Value = serde_json::from_str(&text)
        .map_err(|e| format!("n/a (metrics://pool is not JSON: {e})"))?;
    Ok(Pool {
        checkout_p50_us: m["checkout_us"]["p50"].as_f64(),
        lock_wait_p99_us: m["lock_wait_us"]["p99"].as_f64(),
        peak_live: m["pool"]["peak_live"].as_u64(),
        bound: m["pool"]["bound"].as_u64(),
    })
}
