//! fastlb: a thread-per-core io_uring load balancer for HTTP/1.1.
//!
//! Modules, bottom to top (dependencies point down):
//! - [`config`]: TOML config, raw and typed, with errors naming key and line:column.
//! - [`stats`]: per-core reported counters.
//! - [`balance`]: the backend table (arc-swap snapshot + live counters), the
//!   `Strategy` trait and the built-in strategies, sticky sessions.
//! - [`plugin`]: the WASM plugin host: one engine, compiled plugins hot
//!   reloaded from a watched directory, a plugin as a `Strategy` with a
//!   per-core sandboxed instance, fallback and circuit breaker.
//! - [`health`]: active health checks (HTTP, TCP, Redis, PostgreSQL) and
//!   agent checks on their own thread, reported to the control side.
//! - [`http`]: strict HTTP/1.1 head parsing (httparse + RFC 9110/9112 checks),
//!   chunked decoding, head rewriting for forwarding.
//! - [`proxy`]: the data path of one core: accept, parse, choose, forward,
//!   stream (large bodies spliced), retry; the per-core upstream keep-alive
//!   pool and the per-core timer wheel for I/O deadlines.
//! - [`runtime`]: one pinned thread per core, each with its own io_uring
//!   runtime and SO_REUSEPORT listener; start-up and graceful shutdown.
//! - [`control`]: the control side's contract (`ControlApi`) and snapshots.
//! - [`admin`]: the admin Unix socket (line protocol, text/JSON answers, its
//!   server thread), the listener status page, and `fastlb ctl`.
//! - [`demo`]: built-in demo backends for `fastlb demo`.
//! - [`cli`], [`app`]: argument parsing and what the binary does with it.

pub mod admin;
pub mod app;
pub mod balance;
pub mod cli;
pub mod config;
pub mod control;
pub mod demo;
pub mod health;
pub mod http;
pub mod plugin;
pub mod proxy;
pub mod runtime;
mod spares;
pub mod stats;
