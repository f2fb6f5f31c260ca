//! Tests of the selection wrapper (`choose`), request hashing and sticky
//! lookup, across every built-in strategy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;

use proptest::prelude::*;

use super::testkit::{counts, fixture, fixture_tiers, key_hash};
use super::*;
// Both preludes export a `Strategy`; ours is the one meant unqualified here.
use super::Strategy;
use proptest::strategy::Strategy as _;

const NOW: u64 = 1_000_000;

fn cool_down(t: &Table, i: usize, until_ms: u64) {
    t.pools[0].servers[i].stats.live.cooldown_until_ms.store(until_ms, Ordering::Relaxed);
}

/// `n` picks through `choose` with fresh hashes, no retries, no sticky.
fn picks(t: &Table, n: u64, tried: u64) -> Vec<usize> {
    let pool = &t.pools[0];
    let s = build(pool);
    (0..n).map(|k| choose(&*s, pool, key_hash(k), 0, NOW, tried, None, None).expect("a server").index).collect()
}

#[test]
fn every_strategy_skips_drain_maint_weight_zero_and_cooldown() {
    for kind in StrategyKind::ALL {
        let mut t = fixture(kind, &[1, 1, 1, 0, 1]);
        t.pools[0].servers[0].state = AdminState::Drain;
        t.pools[0].servers[1].state = AdminState::Maint;
        cool_down(&t, 2, NOW + 1);
        let c = counts(&picks(&t, 500, 0), 5);
        assert_eq!(c, [0, 0, 0, 0, 500], "{kind:?}");
        // A cooldown that has expired no longer counts.
        cool_down(&t, 2, NOW);
        let c = counts(&picks(&t, 500, 0), 5);
        assert!(c[2] > 0 && c[4] > 0 && c[..2] == [0, 0], "{kind:?} {c:?}");
    }
}

#[test]
fn every_strategy_uses_backups_only_when_no_primary_is_usable() {
    for kind in StrategyKind::ALL {
        let mut t = fixture_tiers(kind, &[1, 1], &[1, 1]);
        let c = counts(&picks(&t, 400, 0), 4);
        assert_eq!(&c[2..], [0, 0], "{kind:?} {c:?}");
        t.pools[0].servers[0].state = AdminState::Maint;
        let c = counts(&picks(&t, 400, 0), 4);
        assert_eq!(c, [0, 400, 0, 0], "{kind:?}");
        cool_down(&t, 1, NOW + 5);
        let c = counts(&picks(&t, 400, 0), 4);
        assert!(c[..2] == [0, 0] && c[2] > 0 && c[3] > 0, "{kind:?} {c:?}");
        t.pools[0].servers[2].state = AdminState::Maint;
        t.pools[0].servers[3].state = AdminState::Drain;
        let pool = &t.pools[0];
        assert_eq!(choose(&*build(pool), pool, 1, 0, NOW, 0, None, None), None, "{kind:?}");
    }
}

#[test]
fn every_strategy_excludes_tried_servers() {
    for kind in StrategyKind::ALL {
        let t = fixture_tiers(kind, &[1, 1, 1], &[1]);
        let c = counts(&picks(&t, 300, 0b101), 4);
        assert_eq!(c, [0, 300, 0, 0], "{kind:?}");
        // All primaries tried: the retry goes to the backup.
        let c = counts(&picks(&t, 10, 0b111), 4);
        assert_eq!(c, [0, 0, 0, 10], "{kind:?}");
    }
}

#[test]
fn servers_past_index_63_are_never_marked_tried() {
    let t = fixture(StrategyKind::RoundRobin, &[1; 70]);
    let pool = &t.pools[0];
    let s = build(pool);
    let c = choose(&*s, pool, 0, 1, NOW, u64::MAX, None, None).unwrap();
    assert!(c.index >= 64, "{c:?}");
}

#[test]
fn sticky_server_wins_when_usable_even_on_drain_and_weight_zero() {
    let mut t = fixture_tiers(StrategyKind::RoundRobin, &[1, 0, 1], &[1]);
    t.pools[0].servers[2].state = AdminState::Drain;
    let pool = &t.pools[0];
    let s = build(pool);
    for i in 0..4 {
        let c = choose(&*s, pool, 0, 0, NOW, 0, Some(i), None);
        assert_eq!(c, Some(Choice { index: i, sticky_hit: true }), "server {i}");
    }
}

#[test]
fn sticky_server_in_maint_cooldown_tried_or_unknown_is_replaced() {
    let mut t = fixture(StrategyKind::RoundRobin, &[1, 1, 1]);
    t.pools[0].servers[0].state = AdminState::Maint;
    cool_down(&t, 1, NOW + 1);
    let pool = &t.pools[0];
    let s = build(pool);
    let fresh = Some(Choice { index: 2, sticky_hit: false });
    assert_eq!(choose(&*s, pool, 0, 0, NOW, 0, Some(0), None), fresh);
    assert_eq!(choose(&*s, pool, 0, 0, NOW, 0, Some(1), None), fresh);
    assert_eq!(choose(&*s, pool, 0, 0, NOW, 0, Some(99), None), fresh);
    let c = choose(&*s, pool, 0, 1, NOW, 0b100, Some(2), None);
    assert_eq!(c, None, "sticky server tried and nothing else usable");
}

#[test]
fn sticky_lookup_round_trips_cookie_values() {
    let t = fixture(StrategyKind::RoundRobin, &[1, 1, 1]);
    let pool = &t.pools[0];
    for (i, s) in pool.servers.iter().enumerate() {
        assert_eq!(sticky_lookup(pool, s.cookie.as_bytes()), Some(i));
        let quoted = format!("\"{}\"", s.cookie);
        assert_eq!(sticky_lookup(pool, quoted.as_bytes()), Some(i));
    }
    assert_eq!(sticky_lookup(pool, b"0123456789abcdef"), None);
    assert_eq!(sticky_lookup(pool, b""), None);
    assert_eq!(sticky_lookup(pool, b"\""), None);
}

#[test]
fn ip_hash_keeps_each_client_on_one_server() {
    let t = fixture(StrategyKind::IpHash, &[1, 1, 1, 1]);
    let pool = &t.pools[0];
    let s = build(pool);
    let mut seen = [0u32; 4];
    for n in 0..200u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n * 7));
        let h = request_hash(pool, &view(ip, b"/x", &()));
        let first = choose(&*s, pool, h, 0, NOW, 0, None, None).unwrap().index;
        for _ in 0..5 {
            let h = request_hash(pool, &view(ip, b"/other?q", &()));
            assert_eq!(choose(&*s, pool, h, 0, NOW, 0, None, None).unwrap().index, first);
        }
        seen[first] += 1;
    }
    assert!(seen.iter().all(|&c| c > 20), "clients spread: {seen:?}");
}

/// A request view over nothing but a client address, a path and `fields`.
fn view<'a>(client_ip: IpAddr, path: &'a [u8], fields: &'a dyn RequestFields) -> RequestView<'a> {
    RequestView { method: b"GET", client_ip, host: None, path, fields }
}

/// Header `x-user: alice` and cookie `sid=s-42`.
struct AliceFields;

impl RequestFields for AliceFields {
    fn header(&self, name: &str) -> Option<&[u8]> {
        (name == "x-user").then_some(&b"alice"[..])
    }

    fn cookie(&self, name: &str) -> Option<&[u8]> {
        (name == "sid").then_some(&b"s-42"[..])
    }
}

#[test]
fn request_hash_uses_the_key_of_each_strategy() {
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let other_ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    let hash = |t: &Table, ip, uri: &[u8]| request_hash(&t.pools[0], &view(ip, uri, &AliceFields));

    let t = fixture(StrategyKind::IpHash, &[1]);
    assert_eq!(hash(&t, ip, b"/a"), hash(&t, ip, b"/b"));
    assert_ne!(hash(&t, ip, b"/a"), hash(&t, other_ip, b"/a"));
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert_eq!(hash(&t, ip, b"/"), hash(&t, mapped, b"/"));
    assert_ne!(hash(&t, IpAddr::V6(Ipv6Addr::LOCALHOST), b"/"), hash(&t, ip, b"/"));

    let t = fixture(StrategyKind::UrlHash, &[1]);
    assert_eq!(hash(&t, ip, b"/a?x=1"), hash(&t, other_ip, b"/a?x=1"));
    assert_ne!(hash(&t, ip, b"/a?x=1"), hash(&t, ip, b"/a?x=2"));

    let mut t = fixture(StrategyKind::ConsistentHash, &[1]);
    assert_eq!(hash(&t, ip, b"/a"), hash(&t, ip, b"/b"), "default key is the client ip");
    t.pools[0].hash_key = HashKey::Path;
    assert_eq!(hash(&t, ip, b"/a?x=1"), hash(&t, other_ip, b"/a?x=2"));
    assert_ne!(hash(&t, ip, b"/a"), hash(&t, ip, b"/b"));
    t.pools[0].hash_key = HashKey::Uri;
    assert_ne!(hash(&t, ip, b"/a?x=1"), hash(&t, ip, b"/a?x=2"));
    t.pools[0].hash_key = HashKey::Header("x-user".into());
    assert_eq!(hash(&t, ip, b"/a"), hash(&t, other_ip, b"/b"));
    t.pools[0].hash_key = HashKey::Header("x-missing".into());
    assert_eq!(hash(&t, ip, b"/a"), hash_ip(ip));
    t.pools[0].hash_key = HashKey::Cookie("sid".into());
    assert_eq!(hash(&t, ip, b"/a"), hash_bytes(b"s-42"));
    t.pools[0].hash_key = HashKey::Cookie("nope".into());
    assert_eq!(hash(&t, other_ip, b"/a"), hash_ip(other_ip));

    for kind in [StrategyKind::RoundRobin, StrategyKind::LeastConnections] {
        assert_eq!(hash(&fixture(kind, &[1]), ip, b"/a"), 0);
    }

    // A plugin pool (round_robin fallback) still gets its hash_key's hash:
    // it is the plugin's `request.hash`.
    let mut t = fixture(StrategyKind::RoundRobin, &[1]);
    let mut config = (*t.pools[0].config).clone();
    config.plugin = Some(crate::config::PoolPlugin { name: "p".into(), config_json: "{}".into() });
    t.pools[0].config = std::sync::Arc::new(config);
    assert_eq!(hash(&t, ip, b"/a"), hash_ip(ip));
    t.pools[0].hash_key = HashKey::Header("x-user".into());
    assert_eq!(hash(&t, ip, b"/a"), hash_bytes(b"alice"));
}

/// A strategy that ignores eligibility, as a buggy plugin might.
struct AlwaysZero;

impl Strategy for AlwaysZero {
    fn select(&self, _: &Pool, _: &Pick<'_>) -> Option<usize> {
        Some(0)
    }
}

#[test]
fn a_strategy_returning_an_ineligible_server_is_overruled() {
    let mut t = fixture_tiers(StrategyKind::RoundRobin, &[1, 1], &[1]);
    t.pools[0].servers[0].state = AdminState::Maint;
    let pool = &t.pools[0];
    let c = choose(&AlwaysZero, pool, 0, 0, NOW, 0, None, None);
    assert_eq!(c, Some(Choice { index: 1, sticky_hit: false }));
    let c = choose(&AlwaysZero, pool, 0, 0, NOW, 0b10, None, None);
    assert_eq!(c, Some(Choice { index: 2, sticky_hit: false }));
}

/// One server of a random pool: weight, backup, admin state, cooling down.
fn arb_server() -> impl proptest::strategy::Strategy<Value = (u16, bool, AdminState, bool)> {
    let state = prop_oneof![
        4 => Just(AdminState::Up),
        1 => Just(AdminState::Drain),
        1 => Just(AdminState::Maint),
    ];
    (0u16..=4, proptest::bool::weighted(0.25), state, proptest::bool::weighted(0.15))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn choose_never_returns_an_ineligible_server(
        servers in proptest::collection::vec(arb_server(), 1..=24),
        tried in any::<u64>().prop_map(|t| t & t.rotate_left(17)),
        sticky in proptest::option::of(0usize..30),
        kind in proptest::sample::select(StrategyKind::ALL.to_vec()),
    ) {
        let weights: Vec<u16> = servers.iter().map(|s| s.0).collect();
        let mut t = fixture(kind, &weights);
        for (s, spec) in t.pools[0].servers.iter_mut().zip(&servers) {
            s.backup = spec.1;
            s.state = spec.2;
        }
        for (i, spec) in servers.iter().enumerate() {
            cool_down(&t, i, if spec.3 { NOW + 10 } else { 0 });
        }
        let pool = &t.pools[0];
        let untried = |i: usize| i >= 64 || tried & (1 << i) == 0;
        let fresh = |i: usize, backup: bool| {
            let s = &pool.servers[i];
            s.backup == backup && s.usable(NOW, false) && untried(i)
        };
        let any_primary = (0..pool.servers.len()).any(|i| fresh(i, false));
        let any_backup = (0..pool.servers.len()).any(|i| fresh(i, true));
        let sticky_ok = sticky.is_some_and(|i| {
            i < pool.servers.len() && untried(i) && pool.servers[i].usable(NOW, true)
        });
        // Built after the edits, as the data path would for a new generation.
        let s = build(pool);
        for k in 0..50 {
            match choose(&*s, pool, key_hash(k), 0, NOW, tried, sticky, None) {
                Some(Choice { index, sticky_hit: true }) => {
                    prop_assert!(sticky_ok && Some(index) == sticky);
                }
                Some(Choice { index, sticky_hit: false }) => {
                    prop_assert!(!sticky_ok);
                    prop_assert!(fresh(index, false) || (!any_primary && fresh(index, true)));
                }
                None => prop_assert!(!sticky_ok && !any_primary && !any_backup),
            }
        }
    }
}
