//! A plugin's plan (`planner.plan` in `wit/fastlb.wit`): per-backend shares
//! of new requests that the host draws first tries from, in O(1) and
//! without entering the sandbox, until the next `set-table` or `set-load`.
//!
//! The draw is Walker's alias method: one column per backend, each holding
//! its own backend with some probability and one other backend ("alias")
//! with the rest. A draw is one random number: its high half chooses the
//! column, its low half decides between the column's two backends. The
//! table is built with integer arithmetic (Vose's method), so a backend's
//! chance is exact to 2⁻³² per column.

/// One column: keep the column's own backend when the draw's low 32 bits
/// are below `keep`, otherwise take `alias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Column {
    keep: u32,
    alias: u32,
}

/// The alias table of one plan; empty: no plan (call `select`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    columns: Vec<Column>,
}

impl Plan {
    /// The table for `weights` (element `i` = backend `i`'s share, any
    /// scale). All zeros or empty: no plan.
    pub fn build(weights: &[u32]) -> Plan {
        let n = weights.len() as u64;
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        if total == 0 {
            return Plan::default();
        }
        // Column heights scaled so that a full column is `total`: backend i
        // needs `w_i × n` of it (fits: weights < 2³², n < 2³²).
        let mut height: Vec<u64> = weights.iter().map(|&w| u64::from(w) * n).collect();
        let mut columns: Vec<Column> = (0..weights.len()).map(|i| Column { keep: u32::MAX, alias: i as u32 }).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..weights.len()).partition(|&i| height[i] < total);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            // Column s keeps its own backend for height[s]/total of the draws
            // and gives the rest to l, whose remaining need shrinks by as much.
            columns[s] = Column { keep: ((u128::from(height[s]) << 32) / u128::from(total)) as u32, alias: l as u32 };
            height[l] -= total - height[s];
            if height[l] < total {
                large.pop();
                small.push(l);
            }
        }
        // What is left is full (exactly, in integers): it keeps its own
        // backend, as initialised.
        Plan { columns }
    }

    /// Whether there is a plan to draw from.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The backend index that the uniform 64-bit `r` lands on; `None`
    /// without a plan.
    #[inline]
    pub fn draw(&self, r: u64) -> Option<usize> {
        let n = self.columns.len() as u64;
        let at = (((r >> 32) * n) >> 32) as usize;
        let c = self.columns.get(at)?;
        Some(if (r as u32) < c.keep || c.alias as usize == at { at } else { c.alias as usize })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::strategies::Rng;

    /// The exact probability of each backend, summed over the columns.
    fn exact(plan: &Plan) -> Vec<f64> {
        let n = plan.columns.len();
        let mut p = vec![0.0; n];
        for (i, c) in plan.columns.iter().enumerate() {
            let keep = if c.alias as usize == i { 1.0 } else { f64::from(c.keep) / 4_294_967_296.0 };
            p[i] += keep / n as f64;
            p[c.alias as usize] += (1.0 - keep) / n as f64;
        }
        p
    }

    #[test]
    fn shares_are_the_weights() {
        for weights in [vec![1, 1], vec![1, 3], vec![5, 0, 1, 10, 0, 7], vec![u32::MAX, 1, 1_000], vec![9]] {
            let plan = Plan::build(&weights);
            let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
            for (i, p) in exact(&plan).into_iter().enumerate() {
                let want = weights[i] as f64 / total as f64;
                assert!((p - want).abs() < 1e-8, "{weights:?}: backend {i} gets {p}, wants {want}");
                if weights[i] == 0 {
                    assert_eq!(p, 0.0, "{weights:?}: a zero share is never drawn");
                }
            }
        }
    }

    #[test]
    fn draws_follow_the_shares() {
        let plan = Plan::build(&[100, 300, 0, 600]);
        let rng = Rng::with_seed(7);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[plan.draw(rng.next_u64()).unwrap()] += 1;
        }
        assert_eq!(counts[2], 0);
        for (i, want) in [(0, 10_000), (1, 30_000), (3, 60_000)] {
            assert!(counts[i].abs_diff(want) < 1_000, "{counts:?}");
        }
    }

    #[test]
    fn no_weight_no_plan() {
        assert!(Plan::build(&[]).is_empty());
        assert!(Plan::build(&[0, 0]).is_empty());
        assert_eq!(Plan::build(&[0, 0]).draw(42), None);
        assert_eq!(Plan::build(&[0, 3]).draw(0), Some(1));
        assert_eq!(Plan::build(&[0, 3]).draw(u64::MAX), Some(1));
    }
}
