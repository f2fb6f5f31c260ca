//! The control side: owns the running config and the runtime state layered
//! over it (admin states, health, agent reports, servers added at run time),
//! rebuilds the backend table on every change and swaps it in. Runs on the
//! control threads (health checker, admin socket, signal handler), never on
//! a data-path core, so it may take a lock.

pub mod api;

pub use api::*;
