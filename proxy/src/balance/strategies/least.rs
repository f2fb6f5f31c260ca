//! Least connections and least response time: both read the global live
//! counters (correct across cores) and scan every eligible server.

use std::cell::Cell;

use super::{cmp_load, rotated};
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
    /// Cursor at 0; nothing is precomputed.
    pub fn new(_pool: &Pool) -> Self {
        LeastConnections::default()
    }
}

impl Strategy for LeastConnections {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        // (index, active, weight) of the least loaded so far; each server's
        // counter is read once per pick.
        let mut best: Option<(usize, u128, u16)> = None;
        for i in rotated(pool.servers.len(), self.next.get()) {
            if !(pick.eligible)(i) {
                continue;
            }
            let s = &pool.servers[i];
            let active = u128::from(s.active());
            if best.is_none_or(|(_, ba, bw)| cmp_load(active, s.weight, ba, bw).is_lt()) {
                best = Some((i, active, s.weight));
            }
        }
        let (i, _, _) = best?;
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
    /// Cursor at 0; nothing is precomputed.
    pub fn new(_pool: &Pool) -> Self {
        LeastResponseTime::default()
    }
}

impl Strategy for LeastResponseTime {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        // One pass keeps two leaders: the sampled server with the lowest
        // ewma × (active + 1) / weight, and the unsampled one with the lowest
        // (active + 1) / weight (all unsampled servers share one stand-in
        // latency, so that ratio orders them). The stand-in, the best sample,
        // is only known at the end, where the two leaders meet.
        let mut fastest = u64::MAX;
        let mut sampled: Option<(usize, u128, u16)> = None;
        let mut unsampled: Option<(usize, u128, u16)> = None;
        for i in rotated(pool.servers.len(), self.next.get()) {
            if !(pick.eligible)(i) {
                continue;
            }
            let s = &pool.servers[i];
            let (ewma, queue) = (s.ewma_us(), u128::from(s.active()) + 1);
            let (leader, cost) = if ewma == 0 {
                (&mut unsampled, queue)
            } else {
                fastest = fastest.min(ewma);
                (&mut sampled, u128::from(ewma) * queue)
            };
            if leader.is_none_or(|(_, c, w)| cmp_load(cost, s.weight, c, w).is_lt()) {
                *leader = Some((i, cost, s.weight));
            }
        }
        let (i, _, _) = match (sampled, unsampled) {
            (Some(s), Some(u)) => {
                let probe = u128::from(fastest) * u.1;
                if cmp_load(probe, u.2, s.1, s.2).is_le() { u } else { s }
            }
            (s, u) => s.or(u)?,
        };
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
        let pick = Pick { hash: 0, attempt: 0, eligible: &not2, request: None };
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
        let picks: Vec<_> = (0..400).map(|_| lc.select(pool, &eligible_all(0)).unwrap()).collect();
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
