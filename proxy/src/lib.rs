//! fastlb: a thread-per-core io_uring load balancer for HTTP/1.1 and TCP.
//!
//! Modules, bottom to top (dependencies point down):
//! - [`config`]: TOML config, raw and typed, with errors naming key and line:column.
//! - [`balance`]: the backend table (arc-swap snapshot + live counters), the
//!   `Strategy` trait and the built-in strategies, sticky sessions.
//! - [`http`]: strict HTTP/1.1 head parsing (httparse + RFC 9110/9112 checks),
//!   chunked decoding, head rewriting for forwarding.

pub mod balance;
pub mod config;
pub mod http;
