//! Weighted random and power of two choices (P2C).

use std::cmp::Ordering;

use super::{Rng, WeightIndex, cmp_load, weighted_random};
use crate::balance::{Pick, Pool, Strategy};

/// Weighted random: each eligible server with probability weight / total
/// eligible weight. O(log n) per pick while most servers are eligible.
#[derive(Debug)]
pub struct Random {
    tiers: [WeightIndex; 2],
    rng: Rng,
}

impl Random {
    /// Lays out both tiers' weights, with a freshly seeded [`Rng`].
    pub fn new(pool: &Pool) -> Self {
        Random::with_rng(pool, Rng::new())
    }

    /// With a given generator (deterministic tests).
    pub fn with_rng(pool: &Pool, rng: Rng) -> Self {
        Random { tiers: WeightIndex::tiers(pool), rng }
    }
}

impl Strategy for Random {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        weighted_random(pool, &self.tiers, &self.rng, pick.eligible)
    }
}

/// Power of two choices: draws two distinct eligible servers (weighted
/// random) and takes the one with the lower `active / weight`, the first
/// drawn on a tie. Nearly as even as least connections at O(log n), and
/// without the herd effect of every core picking the same least-loaded
/// server between counter updates.
#[derive(Debug)]
pub struct PowerOfTwo {
    tiers: [WeightIndex; 2],
    rng: Rng,
}

impl PowerOfTwo {
    /// Lays out both tiers' weights, with a freshly seeded [`Rng`].
    pub fn new(pool: &Pool) -> Self {
        PowerOfTwo::with_rng(pool, Rng::new())
    }

    /// With a given generator (deterministic tests).
    pub fn with_rng(pool: &Pool, rng: Rng) -> Self {
        PowerOfTwo { tiers: WeightIndex::tiers(pool), rng }
    }
}

impl Strategy for PowerOfTwo {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        let a = weighted_random(pool, &self.tiers, &self.rng, pick.eligible)?;
        let other = |i: usize| i != a && (pick.eligible)(i);
        let Some(b) = weighted_random(pool, &self.tiers, &self.rng, &other) else {
            return Some(a);
        };
        let (sa, sb) = (&pool.servers[a], &pool.servers[b]);
        match cmp_load(sb.active().into(), sb.weight, sa.active().into(), sa.weight) {
            Ordering::Less => Some(b),
            _ => Some(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testkit::{counts, eligible_all, fixture, set_active};
    use crate::config::StrategyKind;

    fn within(got: u32, want: f64, tolerance: f64) -> bool {
        (f64::from(got) - want).abs() <= want * tolerance
    }

    #[test]
    fn random_is_weighted() {
        let t = fixture(StrategyKind::Random, &[1, 2, 7]);
        let pool = &t.pools[0];
        let r = Random::with_rng(pool, Rng::with_seed(1));
        let picks: Vec<_> = (0..20_000).map(|_| r.select(pool, &eligible_all(0)).unwrap()).collect();
        let c = counts(&picks, 3);
        for (got, want) in c.iter().zip([2_000.0, 4_000.0, 14_000.0]) {
            assert!(within(*got, want, 0.06), "{c:?}");
        }
    }

    #[test]
    fn random_stays_weighted_among_eligible_when_most_are_out() {
        let t = fixture(StrategyKind::Random, &[1; 40]);
        let pool = &t.pools[0];
        let r = Random::with_rng(pool, Rng::with_seed(2));
        // Only 3 of 40 eligible: draws mostly miss, the scan fallback decides.
        let few = |i: usize| i.is_multiple_of(15);
        let pick = Pick { hash: 0, attempt: 0, eligible: &few, request: None };
        let picks: Vec<_> = (0..9_000).map(|_| r.select(pool, &pick).unwrap()).collect();
        let c = counts(&picks, 40);
        for i in [0, 15, 30] {
            assert!(within(c[i], 3_000.0, 0.08), "{c:?}");
        }
        assert_eq!(c.iter().sum::<u32>(), 9_000);
    }

    #[test]
    fn p2c_is_weighted_when_idle() {
        let t = fixture(StrategyKind::PowerOfTwo, &[1, 3]);
        let pool = &t.pools[0];
        let p = PowerOfTwo::with_rng(pool, Rng::with_seed(3));
        let picks: Vec<_> = (0..20_000).map(|_| p.select(pool, &eligible_all(0)).unwrap()).collect();
        let c = counts(&picks, 2);
        assert!(within(c[0], 5_000.0, 0.06) && within(c[1], 15_000.0, 0.06), "{c:?}");
    }

    #[test]
    fn p2c_avoids_the_loaded_server() {
        let t = fixture(StrategyKind::PowerOfTwo, &[1, 1, 1, 1]);
        let pool = &t.pools[0];
        let p = PowerOfTwo::with_rng(pool, Rng::with_seed(4));
        set_active(&t, 2, 50);
        let picks: Vec<_> = (0..4_000).map(|_| p.select(pool, &eligible_all(0)).unwrap()).collect();
        let c = counts(&picks, 4);
        // Server 2 only wins when drawn twice, which distinct draws forbid.
        assert_eq!(c[2], 0, "{c:?}");
        for i in [0, 1, 3] {
            assert!(within(c[i], 4_000.0 / 3.0, 0.1), "{c:?}");
        }
    }

    #[test]
    fn p2c_with_one_eligible_server_returns_it() {
        let t = fixture(StrategyKind::PowerOfTwo, &[1, 1]);
        let pool = &t.pools[0];
        let p = PowerOfTwo::with_rng(pool, Rng::with_seed(5));
        let only1 = |i: usize| i == 1;
        let pick = Pick { hash: 0, attempt: 0, eligible: &only1, request: None };
        assert_eq!(p.select(pool, &pick), Some(1));
    }
}
