//! `consistent_hash`: Maglev hashing (Eisenbud et al., NSDI 2016) with
//! weight-proportional turns.

use super::{rendezvous, server_ids};
use crate::balance::{Pick, Pool, Strategy, mix64};

/// Smallest lookup table: a prime, so every skip visits every slot.
const MIN_SIZE: usize = 65_537;

/// Entries walked past ineligible servers before the rendezvous fallback.
const WALK: usize = 32;

/// No server in this slot (only while building).
const EMPTY: u32 = u32::MAX;

/// Lookup table size for a tier of `servers` servers: the smallest prime
/// ≥ max(65,537, 100 × servers). At least ~100 slots per server keeps the
/// spread within about 1% of the weights and limits how many keys of other
/// servers move when one is added or removed.
pub fn maglev_size(servers: usize) -> usize {
    let mut m = MIN_SIZE.max(servers.saturating_mul(100));
    while !is_prime(m) {
        m += 1;
    }
    m
}

fn is_prime(n: usize) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// Maglev consistent hashing: `pick.hash % M` indexes a table in which each
/// server owns a share of slots proportional to its weight.
///
/// Built once per core per table generation (O(M log M), a few hundred
/// microseconds for M = 65,537); a pick is one table read. Placement depends
/// only on server keys and weights, so every core and every reload agree, and
/// removing one of N equal servers moves about 1/N of the keys. A server that
/// is present but not eligible (drained, cooling down, already tried) gives
/// its keys to the servers in the following slots, so no other key moves.
/// Primaries and backups get separate tables.
#[derive(Debug)]
pub struct ConsistentHash {
    /// Primary table, then backup table; an empty tier has no slots.
    tiers: [Box<[u32]>; 2],
    /// Hashes of the server keys (placement, and the rendezvous fallback).
    ids: Box<[u64]>,
}

impl ConsistentHash {
    /// Builds the Maglev tables of both tiers for `pool` (the costly part).
    pub fn new(pool: &Pool) -> Self {
        let ids = server_ids(pool);
        let tiers = [build_table(pool, &ids, false), build_table(pool, &ids, true)];
        ConsistentHash { tiers, ids }
    }
}

/// One server's walk through the table while it is being filled.
struct Filler {
    index: u32,
    weight: u64,
    /// Next slot of this server's preference permutation.
    pos: usize,
    skip: usize,
    /// Weight banked towards the next turn.
    credit: u64,
}

fn build_table(pool: &Pool, ids: &[u64], backup: bool) -> Box<[u32]> {
    let mut fillers: Vec<Filler> = Vec::new();
    for (i, s) in pool.servers.iter().enumerate() {
        if s.backup == backup && s.weight > 0 {
            fillers.push(Filler { index: i as u32, weight: u64::from(s.weight), pos: 0, skip: 0, credit: 0 });
        }
    }
    if fillers.is_empty() {
        return Box::new([]);
    }
    let m = maglev_size(fillers.len());
    for f in &mut fillers {
        let id = ids[f.index as usize];
        f.pos = (id % m as u64) as usize;
        f.skip = (mix64(id ^ 0x6d61_676c_6576) % (m as u64 - 1)) as usize + 1;
    }
    let max_weight = fillers.iter().map(|f| f.weight).max().unwrap_or(1);
    let mut table = vec![EMPTY; m];
    let mut filled = 0;
    // Rounds: a server of the largest weight takes a turn every round, one of
    // weight w banks w per round and takes a turn per max_weight banked. In a
    // turn it claims the next free slot of its own permutation.
    'rounds: loop {
        for f in &mut fillers {
            f.credit += f.weight;
            if f.credit < max_weight {
                continue;
            }
            f.credit -= max_weight;
            while table[f.pos] != EMPTY {
                f.pos += f.skip;
                if f.pos >= m {
                    f.pos -= m;
                }
            }
            table[f.pos] = f.index;
            filled += 1;
            if filled == m {
                break 'rounds;
            }
        }
    }
    table.into()
}

impl Strategy for ConsistentHash {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        for table in &self.tiers {
            let m = table.len();
            if m == 0 {
                continue;
            }
            let start = (pick.hash % m as u64) as usize;
            for k in 0..WALK {
                let slot = if start + k < m { start + k } else { start + k - m };
                let i = table[slot] as usize;
                if (pick.eligible)(i) {
                    return Some(i);
                }
            }
        }
        rendezvous(pool, &self.ids, pick.hash, pick.eligible)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::balance::Strategy;
    use crate::balance::testkit::{counts, eligible_all, fixture, fixture_servers, key_hash};
    use crate::config::StrategyKind;

    const KEYS: u64 = 4_000;

    #[test]
    fn size_is_prime_and_grows_with_servers() {
        assert_eq!(maglev_size(1), 65_537);
        assert_eq!(maglev_size(655), 65_537);
        let m = maglev_size(1_000);
        assert!(m >= 100_000 && is_prime(m), "{m}");
    }

    #[test]
    fn slots_follow_weights() {
        let t = fixture(StrategyKind::ConsistentHash, &[1, 2, 5]);
        let pool = &t.pools[0];
        let ch = ConsistentHash::new(pool);
        let slots: Vec<usize> = ch.tiers[0].iter().map(|&i| i as usize).collect();
        let c = counts(&slots, 3);
        let m = slots.len() as f64;
        for (got, share) in c.iter().zip([1.0 / 8.0, 2.0 / 8.0, 5.0 / 8.0]) {
            assert!((f64::from(*got) / m - share).abs() < 0.002, "{c:?}");
        }
    }

    #[test]
    fn two_builds_agree() {
        let t = fixture(StrategyKind::ConsistentHash, &[1, 1, 3, 1]);
        let (a, b) = (ConsistentHash::new(&t.pools[0]), ConsistentHash::new(&t.pools[0]));
        assert_eq!(a.tiers, b.tiers);
    }

    fn specs(weights: &[u16]) -> Vec<(String, u16, bool)> {
        weights.iter().enumerate().map(|(i, &w)| (format!("s{i}"), w, false)).collect()
    }

    /// Server name each key maps to.
    fn placement(specs: &[(String, u16, bool)]) -> Vec<String> {
        let t = fixture_servers(StrategyKind::ConsistentHash, specs);
        let pool = &t.pools[0];
        let ch = ConsistentHash::new(pool);
        (0..KEYS)
            .map(|k| {
                let i = ch.select(pool, &eligible_all(key_hash(k))).unwrap();
                pool.servers[i].name.to_string()
            })
            .collect()
    }

    /// Fraction of keys that moved, and fraction that moved although their
    /// server stayed, when server `removed` leaves the config.
    fn disruption(weights: &[u16], removed: usize) -> (f64, f64) {
        let all = specs(weights);
        let mut rest = all.clone();
        rest.remove(removed);
        let (before, after) = (placement(&all), placement(&rest));
        let gone = &all[removed].0;
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let collateral = before.iter().zip(&after).filter(|(b, a)| b != a && *b != gone).count();
        (moved as f64 / KEYS as f64, collateral as f64 / KEYS as f64)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn removing_one_of_n_moves_at_most_1_5_over_n(n in 2usize..=20, r in 0usize..20) {
            let (moved, _) = disruption(&vec![1; n], r % n);
            prop_assert!(moved <= 1.5 / n as f64, "moved {moved} of keys, n = {n}");
        }

        #[test]
        fn removing_a_weighted_server_moves_its_share_plus_little(
            weights in proptest::collection::vec(1u16..=10, 2..=20),
            r in 0usize..20,
        ) {
            let n = weights.len();
            let r = r % n;
            let share = f64::from(weights[r]) / f64::from(weights.iter().sum::<u16>());
            let (moved, collateral) = disruption(&weights, r);
            // The removed server's keys must move; everyone else's may only
            // shift by half a server's worth, the 1.5/N bound for equal weights.
            prop_assert!(collateral <= 0.5 / n as f64, "collateral {collateral}, n = {n}");
            prop_assert!(moved <= share + 0.5 / n as f64 + 0.02, "moved {moved}, share {share}");
        }

        #[test]
        fn an_ineligible_server_moves_only_its_own_keys(
            weights in proptest::collection::vec(1u16..=10, 2..=20),
            r in 0usize..20,
        ) {
            let r = r % weights.len();
            let t = fixture_servers(StrategyKind::ConsistentHash, &specs(&weights));
            let pool = &t.pools[0];
            let ch = ConsistentHash::new(pool);
            let not_r = |i: usize| i != r;
            for k in 0..KEYS {
                let hash = key_hash(k);
                let before = ch.select(pool, &eligible_all(hash)).unwrap();
                let after = ch.select(pool, &Pick { hash, attempt: 0, eligible: &not_r, request: None }).unwrap();
                prop_assert!(after != r);
                if before != r {
                    prop_assert_eq!(before, after);
                }
            }
        }
    }
}
