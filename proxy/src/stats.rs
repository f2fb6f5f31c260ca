//! Per-core reported counters (not per server: those live in
//! `balance::table::ServerStats`). Each core writes only its own struct
//! (relaxed, uncontended cache lines); the admin side sums them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    /// Adds `n` to one of this core's counters (single writer: see
    /// [`bump`](crate::balance::table::bump)).
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        crate::balance::table::bump(c, n);
    }

    /// Takes `n` from one of this core's gauges (single writer, as [`add`](Self::add)).
    #[inline]
    pub fn sub(c: &AtomicU64, n: u64) {
        c.store(c.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
    }

    #[inline]
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from a time since the Unix epoch.
pub fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for dates after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}
