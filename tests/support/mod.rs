//! Shared harness for the integration tests (`mod support;` in each file):
//! the `fastlb` child process, fake backends, a raw HTTP client, WebSocket
//! bits. Plain std threads and sockets; readiness is signalled, never slept for.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod agent;
pub mod backend;
pub mod client;
pub mod external;
pub mod load;
pub mod plugins;
pub mod proxy;
pub mod wire;
pub mod ws;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use admin::{num, pools_of, run_ctl, servers_of};
pub use agent::{Agent, agents_on_shared_port};
pub use backend::{Backend, CHUNKED_BODY, Mode, Recorded, pattern_block, pattern_byte};
pub use client::{Client, Response, get, get_with, request_bytes};
pub use load::{Load, LoadReport};
pub use plugins::{PluginDir, UNRELATED_MODULE, field, wasm};
pub use proxy::{Cfg, Mem, Proxy, fastlb_bin, temp_dir};

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns
/// whether it held. For conditions only, never as a plain delay.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Counts responses by the backend that answered.
pub fn tally<'a>(backends: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for b in backends {
        *m.entry(b.to_string()).or_insert(0) += 1;
    }
    m
}
