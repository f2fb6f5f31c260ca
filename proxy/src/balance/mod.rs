//! Balancing: the backend table (`table`), the `Strategy` seam and the
//! built-in strategies (`strategies`), sticky sessions. Never imports the
//! data path.
//!
//! Per request the data path calls, in order: [`sticky_lookup`] (when the
//! pool has sticky sessions and the request carries the cookie),
//! [`request_hash`], then [`choose`] once per attempt with the strategy it
//! built with [`build`] for this core and table generation.

pub mod strategies;
pub mod table;
#[cfg(test)]
mod testkit;

use std::net::IpAddr;

use crate::config::{HashKey, StrategyKind};

pub use table::{AdminState, Pool, Server, ServerStats, SharedTable, Table};

/// What a strategy sees of one request. Kept to scalars so the per-request
/// call stays cheap (and so a WASM strategy can get the same view).
pub struct Pick<'a> {
    /// Hash of the pool's key for this request (client IP for `ip_hash`, URI
    /// for `url_hash`, the configured `hash_key` for `consistent_hash`).
    pub hash: u64,
    /// 0 for the first try, then 1, 2, … on retries.
    pub attempt: u32,
    /// Whether server `i` of the pool may take this request now (admin state,
    /// cooldown, tier primary/backup, not already tried by this request).
    pub eligible: &'a dyn Fn(usize) -> bool,
    /// The request itself, for strategies that look beyond the hash (WASM
    /// plugins); `None` where there is no HTTP request (tcp mode, tests).
    pub request: Option<&'a RequestView<'a>>,
}

/// The parts of an HTTP request a strategy may read, borrowed from the
/// connection's buffer (nothing is copied unless a strategy asks).
pub struct RequestView<'a> {
    /// The method token as sent (`GET`, …).
    pub method: &'a [u8],
    pub client_ip: IpAddr,
    /// Host of the request (the absolute-form authority, else the Host field).
    pub host: Option<&'a [u8]>,
    /// Path and query.
    pub path: &'a [u8],
    /// Header and cookie lookups.
    pub fields: &'a dyn RequestFields,
}

/// Header and cookie lookup on a request (a trait object rather than
/// closures so that `RequestView` stays covariant in its lifetime).
pub trait RequestFields {
    /// First value of a header (case-insensitive name).
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// Value of a cookie.
    fn cookie(&self, name: &str) -> Option<&[u8]>;
}

/// No fields at all (a tcp connection has no HTTP head).
impl RequestFields for () {
    fn header(&self, _: &str) -> Option<&[u8]> {
        None
    }

    fn cookie(&self, _: &str) -> Option<&[u8]> {
        None
    }
}

/// A balancing algorithm, instantiated once per core per table generation
/// (so per-core state such as a round-robin cursor is a plain `Cell`).
pub trait Strategy {
    /// Picks an index into `pool.servers` for which `pick.eligible` holds,
    /// or `None` when there is none.
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize>;
}

/// The built-in strategy for `pool.strategy`, with its per-core state fresh.
/// Call once per core per table generation (hash tables are built here).
pub fn build(pool: &Pool) -> Box<dyn Strategy> {
    use strategies::*;
    match pool.strategy {
        StrategyKind::RoundRobin => Box::new(RoundRobin::new(pool)),
        StrategyKind::WeightedRoundRobin => Box::new(WeightedRoundRobin::new(pool)),
        StrategyKind::LeastConnections => Box::new(LeastConnections::new(pool)),
        StrategyKind::LeastResponseTime => Box::new(LeastResponseTime::new(pool)),
        StrategyKind::PowerOfTwo => Box::new(PowerOfTwo::new(pool)),
        StrategyKind::Random => Box::new(Random::new(pool)),
        StrategyKind::IpHash => Box::new(IpHash::new(pool)),
        StrategyKind::UrlHash => Box::new(UrlHash::new(pool)),
        StrategyKind::ConsistentHash => Box::new(ConsistentHash::new(pool)),
    }
}

/// The splitmix64 finalizer: spreads every input bit over all 64 output
/// bits, so `hash % M` and high-bit uses both see well-mixed values.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a followed by [`mix64`]: the request and server-key hash.
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    mix64(table::fnv1a(bytes))
}

/// Hash of a client address. IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a
/// dual-stack listener reports) hashes like the plain IPv4 address.
pub fn hash_ip(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => hash_bytes(&v4.octets()),
        IpAddr::V6(v6) => hash_bytes(&v6.octets()),
    }
}

/// The hash a strategy gets for a request: the client IP for `ip_hash`,
/// path and query for `url_hash`, the pool's `hash_key` for
/// `consistent_hash` and for plugin pools (a plugin's `request.hash`); 0 for
/// the strategies that do not hash. A missing header or cookie falls back to
/// the client IP.
pub fn request_hash(pool: &Pool, req: &RequestView<'_>) -> u64 {
    let by_key = || match &pool.hash_key {
        HashKey::ClientIp => hash_ip(req.client_ip),
        HashKey::Path => {
            let end = req.path.iter().position(|&b| b == b'?').unwrap_or(req.path.len());
            hash_bytes(&req.path[..end])
        }
        HashKey::Uri => hash_bytes(req.path),
        HashKey::Header(name) => req.fields.header(name).map_or_else(|| hash_ip(req.client_ip), hash_bytes),
        HashKey::Cookie(name) => req.fields.cookie(name).map_or_else(|| hash_ip(req.client_ip), hash_bytes),
    };
    match pool.strategy {
        _ if pool.config.plugin.is_some() => by_key(),
        StrategyKind::IpHash => hash_ip(req.client_ip),
        StrategyKind::UrlHash => hash_bytes(req.path),
        StrategyKind::ConsistentHash => by_key(),
        _ => 0,
    }
}

/// The server a sticky cookie value names, if it is one of this pool's
/// (surrounding double quotes are ignored). O(servers): one short compare each.
pub fn sticky_lookup(pool: &Pool, cookie_value: &[u8]) -> Option<usize> {
    let v = match cookie_value {
        [b'"', inner @ .., b'"'] => inner,
        v => v,
    };
    pool.server_by_cookie(v)
}

/// The outcome of [`choose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// Index into `pool.servers`.
    pub index: usize,
    /// The request's sticky cookie named this server and it was used; when
    /// false and the pool is sticky, the response should set a new cookie.
    pub sticky_hit: bool,
}

/// Picks the server for one attempt of a request. No allocation, no lock.
///
/// - `hash`: [`request_hash`] of the request; `attempt`: 0, then 1, 2, … on retries.
/// - `now_ms`: [`table::now_ms`] (cooldowns are compared against it).
/// - `tried`: bit `i` set = server `i` already failed this request; servers
///   at index ≥ 64 are never marked (a retry may land on them again).
/// - `sticky`: server index from a valid sticky cookie ([`sticky_lookup`]).
///
/// The sticky server wins when it is untried and usable for sticky traffic
/// (which includes Drain and weight 0). Otherwise the strategy picks among
/// untried primaries usable for new traffic, and only if there is none among
/// untried backups. `None` when no server can take the request.
// Scalars passed straight through on the hot path; a struct would only be
// built to be taken apart again.
#[allow(clippy::too_many_arguments)]
pub fn choose(
    strategy: &dyn Strategy,
    pool: &Pool,
    hash: u64,
    attempt: u32,
    now_ms: u64,
    tried: u64,
    sticky: Option<usize>,
    request: Option<&RequestView<'_>>,
) -> Option<Choice> {
    let untried = |i: usize| i >= 64 || tried & (1 << i) == 0;
    if let Some(i) = sticky
        && untried(i)
        && pool.servers.get(i).is_some_and(|s| s.usable(now_ms, true))
    {
        return Some(Choice { index: i, sticky_hit: true });
    }
    // Tiers in order: primaries of the zone groups taking traffic, then all
    // primaries (a preferred group whose servers were all tried or are out),
    // then backups.
    for (backup, max_tier) in [(false, pool.max_tier), (false, u8::MAX), (true, u8::MAX)] {
        // The bit test first: it is free, `usable` reads an atomic.
        let eligible = |i: usize| {
            untried(i)
                && pool
                    .servers
                    .get(i)
                    .is_some_and(|s| s.backup == backup && s.tier <= max_tier && s.usable(now_ms, false))
        };
        let pick = Pick { hash, attempt, eligible: &eligible, request };
        let index = match strategy.select(pool, &pick) {
            Some(i) if eligible(i) => Some(i),
            // A strategy that breaks its contract (a plugin, say) must not
            // route to a server in maintenance: take the first eligible one.
            Some(_) => (0..pool.servers.len()).find(|&i| eligible(i)),
            None => None,
        };
        if let Some(index) = index {
            return Some(Choice { index, sticky_hit: false });
        }
    }
    None
}

#[cfg(test)]
mod tests;

/// The primary server, usable for new traffic, that key `h` maps to by
/// rendezvous hashing: stable for a key, and when a server leaves only its
/// keys move. For plugins' `sticky` decisions of the `hash` kind.
pub fn rendezvous(pool: &Pool, h: u64, now_ms: u64) -> Option<usize> {
    pool.servers
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.backup && s.usable(now_ms, false))
        .max_by_key(|(_, s)| mix64(h ^ hash_bytes(s.key.as_bytes())))
        .map(|(i, _)| i)
}
