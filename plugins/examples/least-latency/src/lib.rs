//! least-latency: power of two choices by latency.
//!
//! For each request, two distinct backends are drawn at random from the
//! usable ones, each with probability proportional to its weight, and the one
//! with the lower `ewma_us × (active + 1)` wins: slow or busy backends get
//! less traffic without herding every core onto the single fastest one. A
//! backend with no latency sample yet (`ewma_us` 0) costs 0, so new or idle
//! backends are tried first and get a sample.
//!
//! The figures only change when the host pushes them (about every 100 ms),
//! so each backend's chance to win is fixed between pushes: `plan` hands the
//! host those chances ([`Group::two_choice_shares`]) and the host draws first
//! tries itself, without a call into the plugin per request. `select` still
//! answers retries (and any host that does not use plans).
//!
//! `plugin_config`: none (an empty table or `{}`).

use fastlb_plugin_sdk::prelude::*;

/// The strategy's state: the pool and a PRNG.
#[derive(Default)]
pub struct LeastLatency {
    table: Table,
    rng: Rng,
}

impl Plugin for LeastLatency {
    fn info(&mut self, config: &str) -> Result<PluginInfo, String> {
        // No settings, but a malformed config is still a mistake worth reporting.
        Config::parse(config)?;
        Ok(PluginInfo::new("least-latency"))
    }

    fn set_table(&mut self, backends: Vec<Backend>) {
        self.table.set_backends(backends);
    }

    fn set_load(&mut self, loads: Vec<Load>) {
        self.table.set_loads(loads);
    }

    fn plan(&mut self) -> Vec<u32> {
        let table = &self.table;
        let shares = table.usable().two_choice_shares(|i| {
            let l = table.load(i);
            (cost(l), l.active)
        });
        table.plan(shares)
    }

    fn select(&mut self, req: &Request, attempt: u32) -> Option<u32> {
        // Each core's instance starts from the same seed: the request's hash
        // makes them drift apart, the attempt makes a retry draw a new pair.
        self.rng.mix(req.hash ^ u64::from(attempt));
        let (a, b) = self.table.usable().random_two(&mut self.rng)?;
        Some(lower_cost(self.table.load(a), self.table.load(b)))
    }
}

export_plugin!(LeastLatency);

/// Expected wait on a backend: latency times the queue it would join;
/// 0 for a backend without a latency sample, so it is preferred.
pub fn cost(load: Load) -> u64 {
    load.ewma_us.saturating_mul(u64::from(load.active) + 1)
}

/// The index of the cheaper of two backends (fewer in flight on a tie, then
/// `a`): the lower `(cost, active)`, the order `plan` ranks by.
pub fn lower_cost(a: Load, b: Load) -> u32 {
    if (cost(b), b.active) < (cost(a), a.active) { b.index } else { a.index }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(index: u32, weight: u32) -> Backend {
        Backend {
            index,
            id: format!("app/s{index}"),
            name: format!("s{index}"),
            weight,
            zone: None,
            backup: false,
            tags: Vec::new(),
            healthy: true,
            draining: false,
        }
    }

    fn load(index: u32, active: u32, ewma_us: u64) -> Load {
        Load { index, active, ewma_us }
    }

    fn request(hash: u64) -> Request {
        Request {
            method: Method::Get,
            client_ip: ClientIp::V4(0x7f00_0001),
            hash,
            host: None,
            path: None,
            headers: Vec::new(),
            cookie: None,
        }
    }

    fn plugin(weights: &[u32], loads: &[(u32, u64)]) -> LeastLatency {
        let mut p = LeastLatency::default();
        p.info("{}").unwrap();
        p.set_table(weights.iter().enumerate().map(|(i, &w)| backend(i as u32, w)).collect());
        p.set_load(loads.iter().enumerate().map(|(i, &(active, ewma))| load(i as u32, active, ewma)).collect());
        p
    }

    fn counts(p: &mut LeastLatency, n: usize, requests: u64) -> Vec<u32> {
        let mut counts = vec![0; n];
        for h in 0..requests {
            counts[p.select(&request(h), 0).unwrap() as usize] += 1;
        }
        counts
    }

    #[test]
    fn cost_prefers_fast_idle_and_unsampled() {
        assert_eq!(cost(load(0, 0, 0)), 0);
        assert_eq!(cost(load(0, 3, 100)), 400);
        assert_eq!(cost(load(0, u32::MAX, u64::MAX)), u64::MAX);
        assert_eq!(lower_cost(load(0, 0, 500), load(1, 0, 100)), 1);
        assert_eq!(lower_cost(load(0, 0, 100), load(1, 9, 100)), 0);
        assert_eq!(lower_cost(load(0, 0, 100), load(1, 5, 0)), 1, "unsampled wins");
        assert_eq!(lower_cost(load(0, 2, 0), load(1, 1, 0)), 1, "tie: fewer in flight");
        assert_eq!(lower_cost(load(0, 1, 0), load(1, 1, 0)), 0, "full tie: the first");
    }

    #[test]
    fn a_slow_backend_gets_the_least_traffic() {
        let mut p = plugin(&[100, 100, 100], &[(1, 1_000), (1, 1_000), (1, 50_000)]);
        let c = counts(&mut p, 3, 30_000);
        // The slow one only wins when drawn twice, which P2C never does.
        assert_eq!(c[2], 0, "{c:?}");
        assert!(c[0] > 13_000 && c[1] > 13_000, "{c:?}");
    }

    #[test]
    fn unsampled_backends_are_preferred() {
        let mut p = plugin(&[100, 100, 100], &[(0, 900), (0, 0), (0, 900)]);
        let c = counts(&mut p, 3, 9_000);
        // Backend 1 is in two of the three possible pairs and wins those.
        assert!((5_400..6_600).contains(&c[1]), "{c:?}");
    }

    #[test]
    fn equal_loads_follow_weights() {
        let mut p = plugin(&[100, 300], &[(0, 500), (0, 500)]);
        // Two backends: every pair is {0, 1}, order drawn by weight, first wins ties.
        let c = counts(&mut p, 2, 40_000);
        let share = f64::from(c[1]) / 40_000.0;
        assert!((0.7..0.8).contains(&share), "{c:?}");
        // Zero weight: never chosen.
        let mut p = plugin(&[100, 0, 100], &[(0, 0), (0, 0), (0, 0)]);
        assert_eq!(counts(&mut p, 3, 3_000)[1], 0);
    }

    #[test]
    fn only_usable_backends_and_none_when_there_are_none() {
        let mut p = LeastLatency::default();
        p.info("").unwrap();
        assert_eq!(p.select(&request(1), 0), None, "no table yet");
        let mut down = backend(0, 100);
        down.healthy = false;
        p.set_table(vec![down.clone(), backend(1, 100)]);
        assert!((0..100).all(|h| p.select(&request(h), 0) == Some(1)));
        p.set_table(vec![down]);
        assert_eq!(p.select(&request(1), 0), None);
    }

    #[test]
    fn plan_gives_the_chances_select_has() {
        let loads = [(2, 900), (0, 0), (1, 300), (4, 300), (0, 5_000)];
        let mut p = plugin(&[100, 50, 200, 300, 100], &loads);
        let plan = p.plan();
        assert_eq!(plan.len(), 5);
        let total: u64 = plan.iter().map(|&w| u64::from(w)).sum();
        assert!(total.abs_diff(1 << 24) <= 5, "shares sum to one: {plan:?}");
        let n = 200_000;
        let c = counts(&mut p, 5, n);
        for i in 0..5 {
            let planned = f64::from(plan[i]) / total as f64;
            let drawn = f64::from(c[i]) / n as f64;
            // random_two redraws a repeated first pick a few times only,
            // so select strays from the exact shares by well under 1%.
            assert!(
                (planned - drawn).abs() < 0.01,
                "backend {i}: plan {planned:.4}, select {drawn:.4} ({plan:?} vs {c:?})"
            );
        }
        // The slowest (cost 5,000 × 1) loses every pair; the unsampled one wins every pair it is in.
        assert_eq!(plan[4], 0);
        assert!(plan[1] > 0);
    }

    #[test]
    fn plan_is_empty_without_usable_backends() {
        let mut p = LeastLatency::default();
        p.info("{}").unwrap();
        assert!(p.plan().is_empty(), "no table yet");
        let mut down = backend(0, 100);
        down.healthy = false;
        p.set_table(vec![down, backend(1, 100)]);
        assert_eq!(p.plan(), [0, 1 << 24], "the only usable backend gets everything");
    }

    #[test]
    fn rejects_malformed_config() {
        let mut p = LeastLatency::default();
        assert!(p.info("{").is_err());
        assert_eq!(p.info("{}").unwrap().name, "least-latency");
    }
}
