//! The Model Context Protocol over stdio: messages, transport, methods.

pub mod dispatch;
pub mod jsonrpc;
pub mod log_bridge;
pub mod tools;
pub mod transport;
