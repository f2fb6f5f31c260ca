//! Least connections and least response time: both read the global live
//! counters (correct across cores) and scan every eligible server.

use std::cell::Cell;
use std::cmp::Ordering;

use super::{cmp_load, scan_min};
use crate::balance::{Pick, Pool, Strategy};

/// Weighted least connections: the eligible server with the fewest
/// `active()` requests per unit of weight (`active_a * w_b < active_b * w_a`).
///
/// Ties go to the first tied server at or after a per-core cursor that moves
/// past each pick, so equally loaded servers take turns instead of the first
/// one in config order taking every request of a quiet period.
#[derive(Debug, Default)]
pub struct LeastConnections {
    /// Where the next scan starts.
    next: Cell<usize>,
}

impl LeastConnections {
    pub fn new(_pool: &Pool) -> Self {
        LeastConnections::default()
    }
}

impl Strategy for LeastConnections {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        let i = scan_min(pool, pick, self.next.get(), |a, b| {
            cmp_load(a.active().into(), a.weight, b.active().into(), b.weight) == Ordering::Less
        })?;
        self.next.set(i + 1);
        Some(i)
    }
}

/// Least response time: the eligible server with the lowest
/// `ewma_us * (active + 1) / weight`, i.e. expected wait for one more request.
///
/// A server with no latency sample yet (`ewma_us() == 0`, e.g. just added)
/// is scored with the best sampled EWMA in the pool and wins ties against
/// sampled servers, so it gets probed at once but is not flooded while its
/// first responses are in flight. With no samples at all this is weighted
/// least connections. Ties rotate like [`LeastConnections`].
#[derive(Debug, Default)]
pub struct LeastResponseTime {
    /// Where the next scan starts.
    next: Cell<usize>,
}

impl LeastResponseTime {
    pub fn new(_pool: &Pool) -> Self {
        LeastResponseTime::default()
    }
}

impl Strategy for LeastResponseTime {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        // Stand-in latency for unsampled servers: the best eligible sample.
        let fastest = pool
            .servers
            .iter()
            .enumerate()
            .filter(|&(i, s)| s.ewma_us() > 0 && (pick.eligible)(i))
            .map(|(_, s)| s.ewma_us())
            .min()
            .unwrap_or(1);
        let cost = |e: u64, active: u32| u128::from(e) * (u128::from(active) + 1);
        let i = scan_min(pool, pick, self.next.get(), |a, b| {
            let (ea, eb) = (a.ewma_us(), b.ewma_us());
            let ca = cost(if ea == 0 { fastest } else { ea }, a.active());
            let cb = cost(if eb == 0 { fastest } else { eb }, b.active());
            match cmp_load(ca, a.weight, cb, b.weight) {
                Ordering::Less => true,
                Ordering::Equal => ea == 0 && eb != 0,
                Ordering::Greater => false,
            }
        })?;
        self.next.set(i + 1);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testkit::{counts, eligible_all, fixture, set_active, set_ewma};
    use crate::config::StrategyKind;

    #[test]
    fn least_connections_follows_active_counts() {
        let t = fixture(StrategyKind::LeastConnections, &[1, 1, 1]);
        let pool = &t.pools[0];
        let lc = LeastConnections::new(pool);
        set_active(&t, 0, 5);
        set_active(&t, 1, 2);
        set_active(&t, 2, 7);
        for _ in 0..10 {
            assert_eq!(lc.select(pool, &eligible_all(0)), Some(1));
        }
        set_active(&t, 2, 0);
        assert_eq!(lc.select(pool, &eligible_all(0)), Some(2));
        let not2 = |i: usize| i != 2;
        let pick = Pick {
            hash: 0,
            attempt: 0,
            eligible: &not2,
        };
        assert_eq!(lc.select(pool, &pick), Some(1));
    }

    #[test]
    fn least_connections_divides_by_weight() {
        let t = fixture(StrategyKind::LeastConnections, &[1, 4]);
        let pool = &t.pools[0];
        let lc = LeastConnections::new(pool);
        set_active(&t, 0, 2);
        set_active(&t, 1, 7); // 7/4 < 2/1
        assert_eq!(lc.select(pool, &eligible_all(0)), Some(1));
        set_active(&t, 1, 9); // 9/4 > 2/1
        assert_eq!(lc.select(pool, &eligible_all(0)), Some(0));
    }

    #[test]
    fn least_connections_rotates_ties() {
        let t = fixture(StrategyKind::LeastConnections, &[1, 1, 1, 1]);
        let pool = &t.pools[0];
        let lc = LeastConnections::new(pool);
        let picks: Vec<_> = (0..400)
            .map(|_| lc.select(pool, &eligible_all(0)).unwrap())
            .collect();
        assert_eq!(counts(&picks, 4), [100, 100, 100, 100]);
    }

    #[test]
    fn least_response_time_prefers_lower_ewma() {
        let t = fixture(StrategyKind::LeastResponseTime, &[1, 1, 1]);
        let pool = &t.pools[0];
        let lrt = LeastResponseTime::new(pool);
        set_ewma(&t, 0, 900);
        set_ewma(&t, 1, 300);
        set_ewma(&t, 2, 600);
        for _ in 0..5 {
            assert_eq!(lrt.select(pool, &eligible_all(0)), Some(1));
        }
        // Load counts too: 300 µs × 3 in flight is worse than 600 µs × 1.
        set_active(&t, 1, 2);
        assert_eq!(lrt.select(pool, &eligible_all(0)), Some(2));
    }

    #[test]
    fn least_response_time_probes_unsampled_servers_first() {
        let t = fixture(StrategyKind::LeastResponseTime, &[1, 1, 1]);
        let pool = &t.pools[0];
        let lrt = LeastResponseTime::new(pool);
        set_ewma(&t, 0, 100);
        set_ewma(&t, 1, 50);
        assert_eq!(lrt.select(pool, &eligible_all(0)), Some(2));
        // With its probe in flight it no longer beats the fastest idle server.
        set_active(&t, 2, 1);
        assert_eq!(lrt.select(pool, &eligible_all(0)), Some(1));
    }

    #[test]
    fn least_response_time_honours_weight() {
        let t = fixture(StrategyKind::LeastResponseTime, &[1, 3]);
        let pool = &t.pools[0];
        let lrt = LeastResponseTime::new(pool);
        set_ewma(&t, 0, 100);
        set_ewma(&t, 1, 250); // 250/3 < 100/1
        assert_eq!(lrt.select(pool, &eligible_all(0)), Some(1));
    }
}
