//! Modulo hashing for `ip_hash` and `url_hash`: the request hash (see
//! `balance::request_hash`) picks a point on the tier's weight line.

use super::{WeightIndex, rendezvous, server_ids};
use crate::balance::{Pick, Pool, Strategy, mix64};

/// Rehashes tried before the rendezvous fallback (NGINX's ip_hash tries 20).
const REHASHES: u64 = 20;

/// `pick.hash % total weight` over the tier's servers, weight-proportional.
///
/// When the server found is not eligible, the key is rehashed (a fixed
/// sequence derived from the key) until an eligible server comes up, so only
/// the keys of servers that left move, and they move the same way on every
/// core. After 20 misses per tier, a weighted rendezvous over the eligible
/// servers decides (still deterministic). Changing a weight or the server
/// list remaps most keys; use `consistent_hash` where that matters.
#[derive(Debug)]
pub struct ModuloHash {
    tiers: [WeightIndex; 2],
    /// Hashes of the server keys, for the rendezvous fallback.
    ids: Box<[u64]>,
}

/// `ip_hash`: [`ModuloHash`] over the client address.
pub type IpHash = ModuloHash;
/// `url_hash`: [`ModuloHash`] over the request URI.
pub type UrlHash = ModuloHash;

impl ModuloHash {
    /// Lays out both tiers' weights for `pool`: O(servers).
    pub fn new(pool: &Pool) -> Self {
        ModuloHash { tiers: WeightIndex::tiers(pool), ids: server_ids(pool) }
    }
}

impl Strategy for ModuloHash {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        for tier in &self.tiers {
            if tier.total == 0 {
                continue;
            }
            let mut h = pick.hash;
            for k in 0..REHASHES {
                let i = tier.locate(h % tier.total);
                if (pick.eligible)(i) {
                    return Some(i);
                }
                h = mix64(h ^ (k + 1));
            }
        }
        rendezvous(pool, &self.ids, pick.hash, pick.eligible)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testkit::{counts, eligible_all, fixture, key_hash};
    use crate::config::StrategyKind;

    #[test]
    fn same_key_same_server_and_weighted_spread() {
        let t = fixture(StrategyKind::IpHash, &[1, 3]);
        let pool = &t.pools[0];
        let h = IpHash::new(pool);
        let picks: Vec<_> = (0..8_000).map(|k| h.select(pool, &eligible_all(key_hash(k))).unwrap()).collect();
        for (k, &i) in picks.iter().enumerate().take(100) {
            assert_eq!(h.select(pool, &eligible_all(key_hash(k as u64))), Some(i));
        }
        let c = counts(&picks, 2);
        assert!((1_800..2_200).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn ineligible_server_moves_only_its_own_keys() {
        let t = fixture(StrategyKind::UrlHash, &[1, 2, 1, 1]);
        let pool = &t.pools[0];
        let h = UrlHash::new(pool);
        let not2 = |i: usize| i != 2;
        let without = Pick { hash: 0, attempt: 0, eligible: &not2, request: None };
        let mut moved_to = vec![0u32; 4];
        for k in 0..5_000 {
            let hash = key_hash(k);
            let before = h.select(pool, &eligible_all(hash)).unwrap();
            let after = h.select(pool, &Pick { hash, ..without }).unwrap();
            if before != 2 {
                assert_eq!(before, after, "key {k} moved off a server that stayed");
            } else {
                moved_to[after] += 1;
            }
        }
        // The orphaned keys spread by weight over the rest (1:2:_:1).
        assert!(moved_to[1] > moved_to[0] && moved_to[1] > moved_to[3], "{moved_to:?}");
    }

    #[test]
    fn falls_back_to_rendezvous_when_tables_only_hit_ineligible() {
        let t = fixture(StrategyKind::IpHash, &[1; 64]);
        let pool = &t.pools[0];
        let h = IpHash::new(pool);
        let only7 = |i: usize| i == 7;
        for k in 0..200 {
            let pick = Pick { hash: key_hash(k), attempt: 0, eligible: &only7, request: None };
            assert_eq!(h.select(pool, &pick), Some(7));
        }
    }
}
