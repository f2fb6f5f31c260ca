//! Per-core reported counters (not per server: those live in
//! `balance::table::ServerStats`). Each core writes only its own struct
//! (relaxed, uncontended cache lines); the admin side sums them.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// Counters of one worker core.
#[derive(Debug, Default)]
pub struct CoreStats {
    /// Client connections accepted.
    pub accepted: CachePadded<AtomicU64>,
    /// Client connections open now (gauge; written by this core only).
    pub open: AtomicU64,
    /// Client connections refused because the core was at max_connections.
    pub refused: AtomicU64,
    /// Requests parsed.
    pub requests: AtomicU64,
    /// Requests answered by fastlb itself with an error status (4xx/5xx).
    pub errors: AtomicU64,
}

impl CoreStats {
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
