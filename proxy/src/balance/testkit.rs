//! Tiny fakes for the balance unit tests: a one-pool table built the real way
//! (`Table::build` from a `Config`), and helpers to count picks.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;

use super::{Pick, Table};
use crate::config::{AdminConfig, Config, PoolConfig, RuntimeConfig, ServerConfig, StrategyKind};

/// One pool `p` of primaries `s0, s1, …` with these weights.
pub fn fixture(kind: StrategyKind, weights: &[u16]) -> Table {
    fixture_tiers(kind, weights, &[])
}

/// Like [`fixture`], then servers `b0, b1, …` (backups) with these weights.
pub fn fixture_tiers(kind: StrategyKind, weights: &[u16], backups: &[u16]) -> Table {
    let mut specs = Vec::new();
    for (i, &w) in weights.iter().enumerate() {
        specs.push((format!("s{i}"), w, false));
    }
    for (i, &w) in backups.iter().enumerate() {
        specs.push((format!("b{i}"), w, true));
    }
    fixture_servers(kind, &specs)
}

/// One pool `p` of servers given as `(name, weight, backup)`: names matter
/// to the hash strategies, which place servers by their `pool/name` key.
pub fn fixture_servers(kind: StrategyKind, specs: &[(String, u16, bool)]) -> Table {
    let servers = specs.iter().enumerate().map(|(n, (name, w, b))| server(name, n, *w, *b)).collect();
    let mut pool = PoolConfig::new("p", servers);
    pool.strategy = kind;
    let config = Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: vec![],
        pools: vec![pool],
        plugins: Default::default(),
    };
    Table::build(&config, 2, None, 1)
}

fn server(name: &str, n: usize, weight: u16, backup: bool) -> ServerConfig {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 10_000 + n as u16));
    let mut s = ServerConfig::new(name, addr);
    s.weight = weight;
    s.backup = backup;
    s
}

fn all(_: usize) -> bool {
    true
}

/// A pick where every server is eligible.
pub fn eligible_all(hash: u64) -> Pick<'static> {
    Pick { hash, attempt: 0, eligible: &all, request: None }
}

/// Histogram of picked indices.
pub fn counts(picks: &[usize], n: usize) -> Vec<u32> {
    let mut c = vec![0u32; n];
    for &i in picks {
        c[i] += 1;
    }
    c
}

/// Sets the in-flight count of server `i` of pool 0.
pub fn set_active(t: &Table, i: usize, n: u32) {
    t.pools[0].servers[i].stats.live.active.store(n, Ordering::Relaxed);
}

/// Sets the latency EWMA of server `i` of pool 0 (0 = unsampled).
pub fn set_ewma(t: &Table, i: usize, us: u64) {
    t.pools[0].servers[i].stats.live.ewma_us.store(us, Ordering::Relaxed);
}

/// A spread of request hashes for key `k`, as `request_hash` would give.
pub fn key_hash(k: u64) -> u64 {
    super::mix64(k.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995)
}
