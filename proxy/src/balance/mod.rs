//! Balancing: the backend table (`table`), the `Strategy` seam and the
//! built-in strategies, sticky sessions. Never imports the data path.

pub mod table;

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
}

/// A balancing algorithm, instantiated once per core per table generation
/// (so per-core state such as a round-robin cursor is a plain `Cell`).
pub trait Strategy {
    /// Picks an index into `pool.servers` for which `pick.eligible` holds,
    /// or `None` when there is none.
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize>;
}
