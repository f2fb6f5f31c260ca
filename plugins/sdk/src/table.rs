//! The plugin's copy of the pool: the latest backends and load figures,
//! indexed, plus weighted [`Group`]s of backends to pick from.
//!
//! The host pushes the backends once per table generation (`set-table`) and
//! load figures every ~100 ms (`set-load`); a strategy keeps a [`Table`],
//! feeds it from those two hooks and answers `select` from it without any
//! per-request allocation.

use crate::rng::{Rng, hash2};
use crate::{Backend, Load};

/// Backend indices above this are ignored in load figures, so a bogus index
/// cannot make the plugin allocate its whole memory budget.
const MAX_INDEX: u32 = 1 << 16;

/// The latest backends and load figures of a pool, by backend index.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// As the host sent them (in index order, in practice).
    backends: Vec<Backend>,
    /// Backend index → position in `backends` (`u32::MAX`: absent). Dense,
    /// since indices are positions in the pool; beats sorting in code size
    /// and lookup time.
    position: Vec<u32>,
    /// Indexed by backend index; zeros where no figure arrived yet.
    loads: Vec<Load>,
    /// Healthy primaries, or healthy backups when no primary is usable.
    usable: Group,
    /// Bumped by every `set_backends`, so a plugin can rebuild its own
    /// derived state lazily.
    generation: u64,
}

impl Table {
    /// An empty table (no backend is usable until `set_backends`).
    pub fn new() -> Table {
        Table::default()
    }

    /// Replaces the backends (call from `Plugin::set_table`). Backends with
    /// an index of 65536 or more are dropped (a pool is far smaller; this
    /// keeps a bogus index from costing the plugin its memory budget).
    pub fn set_backends(&mut self, mut backends: Vec<Backend>) {
        backends.retain(|b| b.index < MAX_INDEX);
        self.position.clear();
        for (pos, b) in backends.iter().enumerate() {
            let i = b.index as usize;
            if i >= self.position.len() {
                self.position.resize(i + 1, u32::MAX);
            }
            self.position[i] = pos as u32;
        }
        self.backends = backends;
        self.usable = self.group(|_| true);
        self.generation += 1;
    }

    /// Records load figures (call from `Plugin::set_load`). Backends missing
    /// from `loads` keep their previous figures.
    pub fn set_loads(&mut self, loads: Vec<Load>) {
        for l in loads {
            if l.index >= MAX_INDEX {
                continue;
            }
            let i = l.index as usize;
            if i >= self.loads.len() {
                self.loads.resize(i + 1, Load { index: 0, active: 0, ewma_us: 0 });
            }
            self.loads[i] = l;
        }
    }

    /// Every backend of the latest table, in the order the host sent them.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// The backend with this index, if the latest table has it.
    pub fn backend(&self, index: u32) -> Option<&Backend> {
        let pos = *self.position.get(index as usize)?;
        self.backends.get(pos as usize)
    }

    /// The latest load figures of a backend (zeros when none arrived yet:
    /// no requests in flight, `ewma_us` 0 = no sample).
    pub fn load(&self, index: u32) -> Load {
        // Gaps left by `set_loads` hold zeros under another index: report ours.
        let l = self.loads.get(index as usize).copied().unwrap_or(Load { index, active: 0, ewma_us: 0 });
        Load { index, ..l }
    }

    /// The backends that may take new traffic, weighted: healthy primaries,
    /// or the healthy backups when no primary is usable.
    pub fn usable(&self) -> &Group {
        &self.usable
    }

    /// Like [`Table::usable`] restricted to the backends `pred` accepts
    /// (e.g. those tagged "canary"). Allocates: build it in `set_table`, not
    /// per request.
    pub fn group(&self, pred: impl Fn(&Backend) -> bool) -> Group {
        let take = |backup: bool| {
            Group::from_weights(
                self.backends
                    .iter()
                    .filter(|b| b.backup == backup && is_usable(b) && pred(b))
                    .map(|b| (b.index, b.weight)),
            )
        };
        let primaries = take(false);
        if primaries.is_empty() { take(true) } else { primaries }
    }

    /// A plan for the host ([`crate::Plugin::plan`]) from `(index, share)`
    /// pairs such as [`Group::two_choice_shares`] gives: one weight per
    /// backend of the table, in index order, a share of 1 scaled to 2²⁴;
    /// backends missing from `shares` get 0.
    pub fn plan(&self, shares: impl IntoIterator<Item = (u32, f64)>) -> Vec<u32> {
        let len = self.backends.iter().map(|b| b.index as usize + 1).max().unwrap_or(0);
        let mut plan = vec![0; len];
        for (index, share) in shares {
            if let Some(slot) = plan.get_mut(index as usize) {
                *slot = (share.clamp(0.0, 1.0) * PLAN_ONE).round() as u32;
            }
        }
        plan
    }

    /// How many times the backends were replaced.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// The plan weight of a share of 1 ([`Table::plan`]).
const PLAN_ONE: f64 = (1u32 << 24) as f64;

/// May take new traffic: healthy, not draining, some weight.
pub fn is_usable(b: &Backend) -> bool {
    b.healthy && !b.draining && b.weight > 0
}

/// A weighted set of backend indices to pick from. Members with weight 0
/// are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// Member indices, in the order given.
    indices: Vec<u32>,
    /// Their weights.
    weights: Vec<u32>,
    /// Running sums of the weights (inclusive), for weighted picks by binary search.
    cumulative: Vec<u64>,
    /// Every member has the same weight: rendezvous compares raw hashes.
    uniform: bool,
}

impl Group {
    /// A group of `(index, weight)` pairs.
    pub fn from_weights(members: impl IntoIterator<Item = (u32, u32)>) -> Group {
        let mut g = Group { uniform: true, ..Group::default() };
        let mut total = 0u64;
        for (index, weight) in members {
            if weight == 0 {
                continue;
            }
            if g.weights.first().is_some_and(|&w| w != weight) {
                g.uniform = false;
            }
            total += u64::from(weight);
            g.indices.push(index);
            g.weights.push(weight);
            g.cumulative.push(total);
        }
        g
    }

    /// Member indices.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// No member: nothing to pick.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Whether `index` is a member.
    pub fn contains(&self, index: u32) -> bool {
        self.indices.contains(&index)
    }

    /// Sum of the members' weights.
    pub fn total_weight(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The member that the uniform 64-bit value `r` lands on, each member
    /// with probability weight/total. The same `r` always gives the same
    /// member (use a hash to pin a client within the group).
    pub fn pick(&self, r: u64) -> Option<u32> {
        let target = ((u128::from(r) * u128::from(self.total_weight())) >> 64) as u64;
        let at = self.cumulative.partition_point(|&c| c <= target);
        self.indices.get(at).copied()
    }

    /// A weighted random member.
    pub fn random(&self, rng: &mut Rng) -> Option<u32> {
        self.pick(rng.next_u64())
    }

    /// Two weighted random members, distinct when the group has two or more
    /// (for power-of-two-choices); a one-member group gives it twice.
    pub fn random_two(&self, rng: &mut Rng) -> Option<(u32, u32)> {
        let a = self.random(rng)?;
        if self.len() == 1 {
            return Some((a, a));
        }
        // A heavy member can be drawn again; a few redraws keep the weighting,
        // the uniform step after them bounds the cost.
        for _ in 0..4 {
            let b = self.random(rng)?;
            if b != a {
                return Some((a, b));
            }
        }
        let pos = self.indices.iter().position(|&i| i == a).unwrap_or(0);
        let step = 1 + rng.below(self.len() as u32 - 1) as usize;
        Some((a, self.indices[(pos + step) % self.len()]))
    }

    /// Each member's chance to be chosen by power of two choices, as
    /// `(index, probability)` pairs summing to 1: two distinct members are
    /// drawn by weight (the first from the group, the second from the rest),
    /// the one with the lower `key` wins, the first drawn on a tie. That is
    /// `random_two` plus a comparison per request, in closed form (exact for
    /// the draw without replacement that `random_two` approximates), so a
    /// strategy can hand it to the host as a plan. O(n log n).
    pub fn two_choice_shares<K: Ord>(&self, key: impl Fn(u32) -> K) -> Vec<(u32, f64)> {
        let n = self.len();
        if n == 1 {
            return vec![(self.indices[0], 1.0)];
        }
        let total = self.total_weight() as f64;
        // Worst first: the sums over members with a greater key grow as we go.
        let mut order: Vec<(K, usize)> = (0..n).map(|m| (key(self.indices[m]), m)).collect();
        order.sort_by(|a, b| b.0.cmp(&a.0));
        let mut shares = vec![(0, 0.0); n];
        // Over the members with a greater key: Σ w_j, and Σ p_j / (W − w_j)
        // (p_j = w_j / W: drawn first; then i is drawn second with w_i / (W − w_j)).
        let (mut above_w, mut above_h) = (0.0, 0.0);
        let mut at = 0;
        while at < n {
            let end = at + order[at..].iter().take_while(|(k, _)| *k == order[at].0).count();
            let tie_w: f64 = order[at..end].iter().map(|&(_, m)| f64::from(self.weights[m])).sum();
            let mut tie_h = 0.0;
            for &(_, m) in &order[at..end] {
                let w = f64::from(self.weights[m]);
                let (p, rest) = (w / total, total - w);
                // Drawn first, it wins against any greater or equal key;
                // drawn second, only against a greater one.
                shares[m] = (self.indices[m], p * (above_w + tie_w - w) / rest + w * above_h);
                tie_h += p / rest;
            }
            above_w += tie_w;
            above_h += tie_h;
            at = end;
        }
        shares
    }

    /// Weighted rendezvous (highest-random-weight) hashing: the member that
    /// `key` maps to. When a member leaves, only its keys move; when one
    /// joins, it takes a weight-proportional share from every other.
    /// `rank` n gives the (n+1)-th choice instead (wrapping around the group,
    /// and capped at the 8th choice), which is where a retry should go:
    /// `rendezvous(key, attempt)`. Costs one hash per member.
    pub fn rendezvous(&self, key: u64, rank: u32) -> Option<u32> {
        if self.is_empty() {
            return None;
        }
        let rank = rank as usize % self.len();
        // The top `rank + 1` (score, index), best first; ranks are small
        // (retry counts), so insertion into a short array is cheapest.
        let mut top = [(0f64, 0u32); 8];
        let keep = (rank + 1).min(top.len());
        let mut filled = 0;
        for (&index, &weight) in self.indices.iter().zip(&self.weights) {
            let h = hash2(key, u64::from(index));
            let score = if self.uniform { h as f64 } else { weighted_score(h, weight) };
            if filled == keep && score <= top[keep - 1].0 {
                continue;
            }
            let mut at = filled.min(keep - 1);
            while at > 0 && top[at - 1].0 < score {
                top[at] = top[at - 1];
                at -= 1;
            }
            top[at] = (score, index);
            filled = (filled + 1).min(keep);
        }
        Some(top[keep - 1].1)
    }
}

/// `weight / -ln(u)` with `u` uniform in (0, 1) from the hash: the weighted
/// rendezvous score (Schindelhauer & Schomaker), monotonic in `u` for equal
/// weights, so equal weights rank as raw hashes do.
fn weighted_score(h: u64, weight: u32) -> f64 {
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(weight) / -u.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(index: u32, weight: u32) -> Backend {
        Backend {
            index,
            id: format!("pool/s{index}"),
            name: format!("s{index}"),
            weight,
            zone: None,
            backup: false,
            tags: Vec::new(),
            healthy: true,
            draining: false,
        }
    }

    #[test]
    fn table_indexes_backends_and_loads() {
        let mut t = Table::new();
        assert!(t.usable().is_empty());
        t.set_backends(vec![backend(2, 10), backend(0, 10), backend(1, 10), backend(u32::MAX, 10)]);
        assert_eq!(t.generation(), 1);
        assert_eq!(t.backends().iter().map(|b| b.index).collect::<Vec<_>>(), [2, 0, 1]);
        assert_eq!(t.backend(1).unwrap().name, "s1");
        assert_eq!(t.backend(2).unwrap().name, "s2");
        assert!(t.backend(3).is_none());
        assert!(t.backend(u32::MAX).is_none());
        t.set_backends(vec![backend(1, 10)]);
        assert!(t.backend(2).is_none(), "a removed backend is gone");
        assert_eq!(t.usable().indices(), [1]);
        assert_eq!(t.load(1).ewma_us, 0);
        t.set_loads(vec![Load { index: 1, active: 3, ewma_us: 900 }, Load { index: u32::MAX, active: 1, ewma_us: 1 }]);
        assert_eq!((t.load(1).active, t.load(1).ewma_us), (3, 900));
        assert_eq!(t.load(0).active, 0);
        assert_eq!(t.load(0).index, 0);
        t.set_loads(vec![Load { index: 5, active: 2, ewma_us: 7 }]);
        assert_eq!(t.load(4).index, 4, "a gap reports its own index");
        assert_eq!(t.load(u32::MAX).index, u32::MAX);
        // A later partial update keeps the others.
        t.set_loads(vec![Load { index: 0, active: 1, ewma_us: 5 }]);
        assert_eq!(t.load(1).active, 3);
    }

    #[test]
    fn usable_skips_down_draining_and_zero_weight_and_falls_back_to_backups() {
        let mut t = Table::new();
        let mut down = backend(0, 10);
        down.healthy = false;
        let mut draining = backend(1, 10);
        draining.draining = true;
        let zero = backend(2, 0);
        let mut spare = backend(3, 10);
        spare.backup = true;
        t.set_backends(vec![down.clone(), draining.clone(), zero.clone(), spare.clone(), backend(4, 10)]);
        assert_eq!(t.usable().indices(), [4]);
        t.set_backends(vec![down, draining, zero, spare]);
        assert_eq!(t.usable().indices(), [3]);
    }

    #[test]
    fn group_by_tag() {
        let mut t = Table::new();
        let mut c = backend(1, 10);
        c.tags.push("canary".into());
        t.set_backends(vec![backend(0, 10), c, backend(2, 10)]);
        let canary = t.group(|b| b.tags.iter().any(|t| t == "canary"));
        assert_eq!(canary.indices(), [1]);
        assert!(t.group(|_| false).is_empty());
    }

    #[test]
    fn pick_follows_weights() {
        let g = Group::from_weights([(0, 1), (1, 3), (2, 0)]);
        assert_eq!(g.len(), 2);
        assert_eq!(g.total_weight(), 4);
        assert_eq!(g.pick(0), Some(0));
        assert_eq!(g.pick(u64::MAX), Some(1));
        let mut rng = Rng::new(3);
        let mut counts = [0u32; 2];
        for _ in 0..40_000 {
            counts[g.random(&mut rng).unwrap() as usize] += 1;
        }
        assert!((9_000..11_000).contains(&counts[0]), "{counts:?}");
        assert_eq!(Group::default().pick(5), None);
    }

    #[test]
    fn plan_scales_shares_per_index() {
        let mut t = Table::new();
        t.set_backends(vec![backend(0, 10), backend(1, 10), backend(2, 10)]);
        assert_eq!(t.plan([(1, 0.25), (2, 0.75), (9, 1.0)]), [0, 1 << 22, 3 << 22], "index 9 is not in the table");
        assert_eq!(t.plan([(0, 1.5), (1, -1.0)]), [1 << 24, 0, 0], "clamped to 0..=1");
        assert!(Table::new().plan([(0, 1.0)]).is_empty());
    }

    #[test]
    fn two_choice_shares_match_drawing_pairs() {
        let g = Group::from_weights([(0, 100), (1, 200), (2, 300), (3, 400), (4, 0)]);
        let key = |i: u32| [5, 1, 5, 9, 0][i as usize];
        let shares = g.two_choice_shares(key);
        assert_eq!(shares.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 2, 3], "zero weight is no member");
        let sum: f64 = shares.iter().map(|s| s.1).sum();
        assert!((sum - 1.0).abs() < 1e-12, "{shares:?}");
        // Against the pairs themselves: enumerate every ordered pair exactly.
        let w = [100.0, 200.0, 300.0, 400.0];
        let mut want = [0.0; 4];
        for a in 0..4 {
            for b in (0..4).filter(|&b| b != a) {
                let p = w[a] / 1000.0 * w[b] / (1000.0 - w[a]);
                want[if key(b as u32) < key(a as u32) { b } else { a }] += p;
            }
        }
        for (i, &(_, s)) in shares.iter().enumerate() {
            assert!((s - want[i]).abs() < 1e-12, "member {i}: {s} vs {}", want[i]);
        }
        assert_eq!(Group::from_weights([(7, 3)]).two_choice_shares(|_| 0), [(7, 1.0)]);
        assert!(Group::default().two_choice_shares(|_| 0).is_empty());
    }

    #[test]
    fn random_two_is_distinct() {
        let mut rng = Rng::new(9);
        let g = Group::from_weights([(0, 1000), (1, 1), (2, 1)]);
        for _ in 0..1000 {
            let (a, b) = g.random_two(&mut rng).unwrap();
            assert_ne!(a, b);
        }
        let one = Group::from_weights([(5, 1)]);
        assert_eq!(one.random_two(&mut rng), Some((5, 5)));
        assert_eq!(Group::default().random_two(&mut rng), None);
    }

    #[test]
    fn rendezvous_moves_only_the_keys_of_a_removed_member() {
        let all = Group::from_weights((0..10).map(|i| (i, 100)));
        let without3 = Group::from_weights((0..10).filter(|&i| i != 3).map(|i| (i, 100)));
        let mut per = [0u32; 10];
        for key in 0..10_000u64 {
            let before = all.rendezvous(key, 0).unwrap();
            let after = without3.rendezvous(key, 0).unwrap();
            per[before as usize] += 1;
            if before != 3 {
                assert_eq!(before, after, "key {key} moved");
            } else {
                // Its keys go to their second choice.
                assert_eq!(all.rendezvous(key, 1), Some(after));
            }
        }
        for n in per {
            assert!((800..1200).contains(&n), "{per:?}");
        }
    }

    #[test]
    fn rendezvous_ranks_are_distinct_and_weighted() {
        let g = Group::from_weights([(0, 100), (1, 300), (2, 100)]);
        let mut counts = [0u32; 3];
        for key in 0..20_000u64 {
            let first = g.rendezvous(key, 0).unwrap();
            let second = g.rendezvous(key, 1).unwrap();
            let third = g.rendezvous(key, 2).unwrap();
            assert!(first != second && second != third && first != third);
            assert_eq!(g.rendezvous(key, 3), Some(first), "ranks wrap");
            counts[first as usize] += 1;
        }
        // Weight 300 of 500: 60%.
        assert!((11_400..12_600).contains(&counts[1]), "{counts:?}");
        assert_eq!(Group::default().rendezvous(1, 0), None);
    }

    #[test]
    fn uniform_and_weighted_scores_rank_alike() {
        let uniform = Group::from_weights((0..5).map(|i| (i, 7)));
        let mut weighted = Group::from_weights((0..5).map(|i| (i, 7)));
        weighted.uniform = false;
        for key in 0..2000u64 {
            assert_eq!(uniform.rendezvous(key, 0), weighted.rendezvous(key, 0));
        }
    }
}
