//! Round robin (plain cursor) and NGINX's smooth weighted round robin.

use std::cell::Cell;

use super::rotated;
use crate::balance::{Pick, Pool, Strategy};

/// Plain round robin over the eligible servers; weights are ignored (weight 0
/// is already excluded by eligibility). The cursor is per core, so each core
/// rotates on its own and together they still spread evenly.
#[derive(Debug, Default)]
pub struct RoundRobin {
    /// Index to try first on the next pick.
    next: Cell<usize>,
}

impl RoundRobin {
    /// Cursor at 0; nothing is precomputed.
    pub fn new(_pool: &Pool) -> Self {
        RoundRobin::default()
    }
}

impl Strategy for RoundRobin {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        // Usually the first index tried is eligible: O(1) per pick.
        let i = rotated(pool.servers.len(), self.next.get()).find(|&i| (pick.eligible)(i))?;
        self.next.set(i + 1);
        Some(i)
    }
}

/// NGINX's smooth weighted round robin: each pick adds every eligible
/// server's weight to its current weight, takes the largest, and subtracts
/// the eligible total from it. Weights 3:1 give `a a b a`, interleaved
/// rather than in bursts. O(servers) per pick, like NGINX.
#[derive(Debug)]
pub struct WeightedRoundRobin {
    /// Current weight per server index (per core).
    current: Box<[Cell<i64>]>,
}

impl WeightedRoundRobin {
    /// All current weights at 0 (NGINX's start state).
    pub fn new(pool: &Pool) -> Self {
        WeightedRoundRobin { current: pool.servers.iter().map(|_| Cell::new(0)).collect() }
    }
}

impl Strategy for WeightedRoundRobin {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        debug_assert_eq!(pool.servers.len(), self.current.len(), "strategy built for another pool");
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (i, (s, cur)) in pool.servers.iter().zip(self.current.iter()).enumerate() {
            if !(pick.eligible)(i) {
                continue;
            }
            let w = i64::from(s.weight);
            let c = cur.get() + w;
            cur.set(c);
            total += w;
            if best.is_none_or(|(_, b)| c > b) {
                best = Some((i, c));
            }
        }
        let (i, c) = best?;
        self.current[i].set(c - total);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testkit::{counts, eligible_all, fixture};
    use crate::config::StrategyKind;

    #[test]
    fn round_robin_rotates_and_skips_ineligible() {
        let t = fixture(StrategyKind::RoundRobin, &[1, 5, 1]);
        let pool = &t.pools[0];
        let rr = RoundRobin::new(pool);
        let got: Vec<_> = (0..6).map(|_| rr.select(pool, &eligible_all(0)).unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2]);
        let not1 = |i: usize| i != 1;
        let pick = Pick { hash: 0, attempt: 0, eligible: &not1, request: None };
        let got: Vec<_> = (0..4).map(|_| rr.select(pool, &pick).unwrap()).collect();
        assert_eq!(got, [0, 2, 0, 2]);
    }

    #[test]
    fn weighted_round_robin_three_to_one_is_exact_and_smooth() {
        let t = fixture(StrategyKind::WeightedRoundRobin, &[3, 1]);
        let pool = &t.pools[0];
        let wrr = WeightedRoundRobin::new(pool);
        let picks: Vec<_> = (0..1000).map(|_| wrr.select(pool, &eligible_all(0)).unwrap()).collect();
        assert_eq!(counts(&picks, 2), [750, 250]);
        // Smooth: the light server never waits more than 3 picks.
        assert_eq!(&picks[..8], &[0, 0, 1, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn weighted_round_robin_redistributes_when_one_is_out() {
        let t = fixture(StrategyKind::WeightedRoundRobin, &[2, 5, 1]);
        let pool = &t.pools[0];
        let wrr = WeightedRoundRobin::new(pool);
        let not1 = |i: usize| i != 1;
        let pick = Pick { hash: 0, attempt: 0, eligible: &not1, request: None };
        let picks: Vec<_> = (0..300).map(|_| wrr.select(pool, &pick).unwrap()).collect();
        assert_eq!(counts(&picks, 3), [200, 0, 100]);
    }
}
