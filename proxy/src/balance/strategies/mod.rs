//! The built-in strategies, one small type per algorithm, and the few helpers
//! they share (a per-core RNG, weighted lookup tables, load comparison).
//!
//! Every type is built once per core per table generation from the pool it
//! will serve ([`crate::balance::build`]), so per-core state is a plain
//! `Cell`/`RefCell` and precomputed tables may cost O(servers) or O(table
//! size) to build. `select` must only be called with that same pool; an index
//! the instance does not know is treated as ineligible rather than panicking.
//!
//! Weights: strategies trust `Pick::eligible` for admin state, cooldown, tier
//! and retries. A server `eligible` admits with weight 0 (only a caller that
//! deliberately admits it can do that) is picked only when every eligible
//! server has weight 0.

use std::cell::Cell;
use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use super::{Pool, hash_bytes, mix64};

mod hash;
mod least;
mod maglev;
mod random;
mod round_robin;

pub use hash::{IpHash, ModuloHash, UrlHash};
pub use least::{LeastConnections, LeastResponseTime};
pub use maglev::{ConsistentHash, maglev_size};
pub use random::{PowerOfTwo, Random};
pub use round_robin::{RoundRobin, WeightedRoundRobin};

/// A tiny per-core PRNG (wyrand): one `u64` of state in a `Cell`, no locks,
/// no atomics. Not cryptographic; only spreads load.
#[derive(Debug)]
pub struct Rng(Cell<u64>);

impl Rng {
    /// A generator seeded from a process-wide counter and the clock, so two
    /// instances (two cores, two generations) never share a sequence.
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, AtomicOrdering::Relaxed);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Rng::with_seed(mix64(t ^ mix64(n)))
    }

    /// A generator with a fixed seed (tests and benches).
    pub fn with_seed(seed: u64) -> Self {
        Rng(Cell::new(seed))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&self) -> u64 {
        let s = self.0.get().wrapping_add(0xa076_1d64_78bd_642f);
        self.0.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift: the bias is below
    /// n / 2^64, far under anything a load distribution can show.
    #[inline]
    pub fn below(&self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

/// Servers of one tier (primaries or backups) with weight > 0, laid out as
/// cumulative weights so a number in `0..total` maps to a server in
/// O(log n): the shared core of weighted random and modulo hashing.
#[derive(Debug, Default)]
pub(crate) struct WeightIndex {
    /// Pool indices of the servers in this tier, config order.
    servers: Box<[u32]>,
    /// `ends[k]` = sum of the weights of `servers[..=k]`.
    ends: Box<[u64]>,
    /// Sum of all weights in the tier; 0 when the tier is empty.
    pub(crate) total: u64,
}

impl WeightIndex {
    pub(crate) fn new(pool: &Pool, backup: bool) -> Self {
        let mut servers = Vec::new();
        let mut ends = Vec::new();
        let mut total = 0u64;
        for (i, s) in pool.servers.iter().enumerate() {
            if s.backup == backup && s.weight > 0 {
                total += u64::from(s.weight);
                servers.push(i as u32);
                ends.push(total);
            }
        }
        WeightIndex { servers: servers.into(), ends: ends.into(), total }
    }

    /// Both tiers, primaries first: the order `choose` asks for them.
    pub(crate) fn tiers(pool: &Pool) -> [WeightIndex; 2] {
        [WeightIndex::new(pool, false), WeightIndex::new(pool, true)]
    }

    /// The server owning point `x` (`x < total`).
    #[inline]
    pub(crate) fn locate(&self, x: u64) -> usize {
        let k = self.ends.partition_point(|&e| e <= x);
        self.servers[k] as usize
    }
}

/// Draws that may miss an ineligible server before falling back to a scan:
/// with most servers eligible a draw almost never misses twice.
const RANDOM_TRIES: u32 = 4;

/// Weighted random choice among servers for which `ok` holds.
///
/// Rejection-samples the precomputed tiers first (O(log n) per draw), then
/// falls back to one weighted pass over the eligible servers, so the result
/// is weight-proportional among eligible servers either way.
pub(crate) fn weighted_random(
    pool: &Pool,
    tiers: &[WeightIndex; 2],
    rng: &Rng,
    ok: &dyn Fn(usize) -> bool,
) -> Option<usize> {
    for tier in tiers {
        if tier.total == 0 {
            continue;
        }
        for _ in 0..RANDOM_TRIES {
            let i = tier.locate(rng.below(tier.total));
            if ok(i) {
                return Some(i);
            }
        }
    }
    weighted_scan(pool, ok, rng)
}

/// One weighted random pick over every server `ok` admits, in two passes.
/// Weight-0 servers are picked (uniformly) only when all admitted servers
/// have weight 0.
fn weighted_scan(pool: &Pool, ok: &dyn Fn(usize) -> bool, rng: &Rng) -> Option<usize> {
    let (mut total, mut count) = (0u64, 0u64);
    for (i, s) in pool.servers.iter().enumerate() {
        if ok(i) {
            total += u64::from(s.weight);
            count += 1;
        }
    }
    if count == 0 {
        return None;
    }
    let weighted = total > 0;
    let mut x = rng.below(if weighted { total } else { count });
    for (i, s) in pool.servers.iter().enumerate() {
        if !ok(i) {
            continue;
        }
        let w = if weighted { u64::from(s.weight) } else { 1 };
        if x < w {
            return Some(i);
        }
        x -= w;
    }
    None
}

/// Compares the loads `na / wa` and `nb / wb` without dividing. Weight 0
/// ranks as infinitely loaded (two weight-0 servers compare by `n`).
#[inline]
pub(crate) fn cmp_load(na: u128, wa: u16, nb: u128, wb: u16) -> Ordering {
    match (wa == 0, wb == 0) {
        (true, true) => na.cmp(&nb),
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => (na * u128::from(wb)).cmp(&(nb * u128::from(wa))),
    }
}

/// Indices `0..n` starting at `start % n` and wrapping: scan order for
/// strategies whose per-core cursor spreads ties and skips.
#[inline]
pub(crate) fn rotated(n: usize, start: usize) -> impl Iterator<Item = usize> {
    let start = if n == 0 { 0 } else { start % n };
    (start..n).chain(0..start)
}

/// Stable per-server hashes of the server keys (`pool/server`), so every core
/// and every generation derive the same placement for the same server.
pub(crate) fn server_ids(pool: &Pool) -> Box<[u64]> {
    pool.servers.iter().map(|s| hash_bytes(s.key.as_bytes())).collect()
}

/// Weighted rendezvous (highest random weight) choice among admitted servers:
/// deterministic in `hash`, and a server leaving only moves its own keys.
/// The O(n) last resort of the hash strategies when their tables point only
/// at ineligible servers.
pub(crate) fn rendezvous(pool: &Pool, ids: &[u64], hash: u64, ok: &dyn Fn(usize) -> bool) -> Option<usize> {
    let mut best: Option<(bool, f64, usize)> = None;
    for (i, s) in pool.servers.iter().enumerate() {
        let Some(&id) = ids.get(i) else { break };
        if !ok(i) {
            continue;
        }
        // u in (0, 1]: -ln(u) >= 0, and w / -ln(u) is the standard weighted
        // rendezvous score (larger wins).
        let u = ((mix64(hash ^ id) >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let score = f64::from(s.weight.max(1)) / -u.ln();
        let weighted = s.weight > 0;
        if best.is_none_or(|(bw, bs, _)| (weighted, score) > (bw, bs)) {
            best = Some((weighted, score, i));
        }
    }
    best.map(|(_, _, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_below_stays_in_range_and_spreads() {
        let rng = Rng::with_seed(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[rng.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn two_rngs_differ() {
        assert_ne!(Rng::new().next_u64(), Rng::new().next_u64());
    }

    #[test]
    fn cmp_load_orders_ratios_and_ranks_weight_zero_last() {
        assert_eq!(cmp_load(1, 1, 3, 2), Ordering::Less); // 1 < 1.5
        assert_eq!(cmp_load(2, 2, 1, 1), Ordering::Equal);
        assert_eq!(cmp_load(0, 0, 100, 1), Ordering::Greater);
        assert_eq!(cmp_load(1, 0, 2, 0), Ordering::Less);
    }
}
