//! The fall/rise machine of one server's active check, with HAProxy's
//! meaning: an up server goes down after `fall` failed checks in a row, a
//! down server comes back after `rise` successful checks in a row. A single
//! contrary result resets the streak, so a flapping server stays where it is.

use std::time::Duration;

use crate::config::HealthCheckConfig;

/// Check state of one server. Starts up (HAProxy's default initial state),
/// so a fresh server takes traffic until `fall` checks have failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckState {
    /// Health as last concluded (what the control side was told, or its
    /// assumed initial state).
    up: bool,
    /// Failures in a row, reset by any success.
    fails: u32,
    /// Successes in a row, reset by any failure.
    oks: u32,
    /// Failures in a row that take an up server down (at least 1).
    fall: u32,
    /// Successes in a row that bring a down server up (at least 1).
    rise: u32,
}

impl CheckState {
    /// A server assumed up, with the thresholds of `cfg`.
    pub fn new(cfg: &HealthCheckConfig) -> Self {
        CheckState::with_health(cfg, true)
    }

    /// A server whose current health is already known (e.g. the table says
    /// it is down), so the next transition reported is the right one.
    pub fn with_health(cfg: &HealthCheckConfig, up: bool) -> Self {
        // 0 would mean "change on no evidence"; treat it as 1.
        CheckState { up, fails: 0, oks: 0, fall: cfg.fall.max(1), rise: cfg.rise.max(1) }
    }

    /// Records one check result; returns the new health when it changed.
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.fails = 0;
            self.oks = self.oks.saturating_add(1);
            if !self.up && self.oks >= self.rise {
                self.up = true;
                return Some(true);
            }
        } else {
            self.oks = 0;
            self.fails = self.fails.saturating_add(1);
            if self.up && self.fails >= self.fall {
                self.up = false;
                return Some(false);
            }
        }
        None
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Failures in a row so far (named in the reason of a down transition).
    pub fn consecutive_failures(&self) -> u32 {
        self.fails
    }

    /// Successes in a row so far (named in the reason of an up transition).
    pub fn consecutive_successes(&self) -> u32 {
        self.oks
    }

    /// True while the streak points away from the current health but has not
    /// reached `fall` (up server failing) or `rise` (down server succeeding).
    pub fn in_transition(&self) -> bool {
        (self.up && self.fails > 0) || (!self.up && self.oks > 0)
    }

    /// Time until the next check: `fastinterval` while the state is in
    /// transition or down (so a failing server is confirmed down, and a
    /// recovered one is back, quickly), else `interval`. HAProxy has a
    /// separate `downinter`; fastlb uses `fastinterval` for both.
    pub fn next_interval(&self, cfg: &HealthCheckConfig) -> Duration {
        if self.in_transition() || !self.up { cfg.fastinterval } else { cfg.interval }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HealthCheckKind;

    fn cfg(fall: u32, rise: u32) -> HealthCheckConfig {
        HealthCheckConfig {
            kind: HealthCheckKind::Tcp,
            interval: Duration::from_secs(3),
            fastinterval: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
            fall,
            rise,
            port: None,
        }
    }

    /// Feeds `results` ("o" = ok, "x" = fail) and returns the transitions.
    fn run(state: &mut CheckState, results: &str) -> Vec<Option<bool>> {
        results.chars().map(|c| state.observe(c == 'o')).collect()
    }

    #[test]
    fn starts_up_with_normal_interval() {
        let c = cfg(3, 2);
        let s = CheckState::new(&c);
        assert!(s.is_up());
        assert!(!s.in_transition());
        assert_eq!(s.next_interval(&c), c.interval);
    }

    #[test]
    fn fall_three_needs_three_failures_in_a_row() {
        let c = cfg(3, 2);
        let mut s = CheckState::new(&c);
        assert_eq!(run(&mut s, "xx"), [None, None]);
        assert!(s.is_up());
        assert!(s.in_transition());
        assert_eq!(s.next_interval(&c), c.fastinterval);
        assert_eq!(s.observe(false), Some(false));
        assert!(!s.is_up());
        assert_eq!(s.consecutive_failures(), 3);
        // Further failures change nothing; a down server is checked fast.
        assert_eq!(run(&mut s, "xxx"), [None, None, None]);
        assert_eq!(s.next_interval(&c), c.fastinterval);
    }

    #[test]
    fn rise_two_needs_two_successes_in_a_row() {
        let c = cfg(3, 2);
        let mut s = CheckState::with_health(&c, false);
        assert_eq!(s.observe(true), None);
        assert!(s.in_transition());
        assert_eq!(s.next_interval(&c), c.fastinterval);
        assert_eq!(s.observe(true), Some(true));
        assert!(s.is_up());
        assert_eq!(s.consecutive_successes(), 2);
        assert!(!s.in_transition());
        assert_eq!(s.next_interval(&c), c.interval);
        assert_eq!(run(&mut s, "ooo"), [None, None, None]);
    }

    #[test]
    fn a_success_resets_the_failure_streak() {
        let c = cfg(3, 2);
        let mut s = CheckState::new(&c);
        assert_eq!(run(&mut s, "xxoxxoxx"), [None; 8]);
        assert!(s.is_up());
        assert_eq!(s.consecutive_failures(), 2);
        assert_eq!(s.observe(false), Some(false));
    }

    #[test]
    fn a_failure_resets_the_success_streak() {
        let c = cfg(3, 2);
        let mut s = CheckState::with_health(&c, false);
        assert_eq!(run(&mut s, "oxoxox"), [None; 6]);
        assert!(!s.is_up());
        assert_eq!(run(&mut s, "oo"), [None, Some(true)]);
    }

    #[test]
    fn flapping_server_stays_where_it_is() {
        let c = cfg(3, 2);
        let mut up = CheckState::new(&c);
        assert!(run(&mut up, &"xo".repeat(50)).iter().all(Option::is_none));
        assert!(up.is_up());
        let mut down = CheckState::with_health(&c, false);
        assert!(run(&mut down, &"ox".repeat(50)).iter().all(Option::is_none));
        assert!(!down.is_up());
    }

    #[test]
    fn full_cycle_reports_each_transition_once() {
        let c = cfg(3, 2);
        let mut s = CheckState::new(&c);
        let got = run(&mut s, "oxxxxoxooxxoxxx");
        let transitions: Vec<(usize, bool)> = got.iter().enumerate().filter_map(|(i, t)| t.map(|up| (i, up))).collect();
        assert_eq!(transitions, [(3, false), (8, true), (14, false)]);
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let c = cfg(0, 0);
        let mut s = CheckState::new(&c);
        assert_eq!(s.observe(false), Some(false));
        assert_eq!(s.observe(true), Some(true));
    }

    #[test]
    fn fall_one_rise_one_follows_every_result() {
        let c = cfg(1, 1);
        let mut s = CheckState::new(&c);
        assert_eq!(run(&mut s, "oxxoo"), [None, Some(false), None, Some(true), None]);
    }
}
