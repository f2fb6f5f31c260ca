//! Active health checks, agent checks, outlier ejection, backup servers,
//! zone failover and fail-open, watched through `show stat json` and
//! `show events json` while requests keep flowing.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use support::{Backend, Cfg, Client, Load, Mode, Proxy, agents_on_shared_port, get, get_with, num, wait_until};

/// Generous bound for a state change that takes fall/rise × 100 ms.
const STATE_LIMIT: Duration = Duration::from_secs(5);
/// Bound for traffic to show up somewhere.
const TRAFFIC_LIMIT: Duration = Duration::from_secs(10);

/// A `[pool.health]` table with 100 ms checks, fall 2, rise 2.
fn health(kind: &str, extra: &str) -> String {
    format!(
        "[pool.health]\ntype = \"{kind}\"\ninterval = \"100ms\"\nfastinterval = \"50ms\"\ntimeout = \"500ms\"\nfall = 2\nrise = 2\n{extra}"
    )
}

fn agent_table(port: u16) -> String {
    format!("[pool.agent]\nport = {port}\ninterval = \"100ms\"\ntimeout = \"500ms\"")
}

/// A backend on a loopback address of its own (127.0.0.N), so that each
/// server can have an agent on the pool's one agent port.
fn backend_at(id: &str, ip: &str) -> Backend {
    Backend::start_on(id, SocketAddr::new(ip.parse().unwrap(), 0))
}

/// Requests to `path` a backend received (health checks excluded).
fn served(b: &Backend, path: &str) -> usize {
    b.log().iter().filter(|r| r.path() == path).count()
}

/// The newest event for `server` going to `to`, waiting up to 5 s for it
/// (some transitions are recorded by a periodic monitor).
fn event_to(proxy: &Proxy, server: &str, to: &str) -> Option<serde_json::Value> {
    let find = || proxy.events().into_iter().rev().find(|e| e["server"] == server && e["to"] == to);
    let mut found = None;
    wait_until(STATE_LIMIT, || {
        found = find();
        found.is_some()
    });
    found
}

fn cookie_of(r: &support::Response) -> Option<String> {
    r.head.get_all("set-cookie").iter().find_map(|v| {
        v.split(';').next().map(str::trim).filter(|kv| kv.starts_with("FASTLB_SERVER=")).map(str::to_string)
    })
}

#[test]
fn killed_backend_goes_down_without_failed_requests_and_returns_after_restart() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).pool_tables(&health("http", "path = \"/health\"")).start();
    proxy.expect_state("app/b", "up", STATE_LIMIT);
    let load = Load::start(proxy.addr, 2, "/load");
    assert!(load.advance(50, TRAFFIC_LIMIT), "load did not start");
    assert!(served(&b, "/load") > 0, "b got no traffic before the kill");

    b.stop();
    proxy.expect_state("app/b", "down", STATE_LIMIT);
    let down =
        event_to(&proxy, "app/b", "down").unwrap_or_else(|| panic!("no event app/b → down: {:?}", proxy.events()));
    assert_eq!(down["from"], "up", "{down}");
    assert!(!down["reason"].as_str().unwrap_or_default().is_empty(), "event without a reason: {down}");
    assert!(down["time"].is_string() && down["unix"].is_number(), "{down}");
    let stat = proxy.server("app/b");
    assert!(stat["last_check"].as_str().is_some_and(|s| !s.is_empty()), "no last_check on a checked server: {stat}");
    assert!(load.failures().is_empty(), "requests failed while b died: {:?}", load.failures());

    let revived = Backend::start_on("b", b.addr);
    proxy.expect_state("app/b", "up", STATE_LIMIT);
    let up = event_to(&proxy, "app/b", "up").expect("no event app/b → up");
    assert_eq!(up["from"], "down", "{up}");
    assert!(
        wait_until(TRAFFIC_LIMIT, || served(&revived, "/load") > 0),
        "b is up again but gets no traffic: {}",
        proxy.server("app/b")
    );
    load.finish().assert_no_failures("kill and restart of b");
}

#[test]
fn http_check_honours_expected_status_and_body_substring() {
    let (alpha, beta) = (Backend::start("alpha"), Backend::start("beta"));
    // Each backend answers `/` with its id: only alpha's body contains "alpha".
    let proxy = Cfg::new("round_robin", &[&alpha, &beta])
        .pool_tables(&health("http", "path = \"/\"\nbody_contains = \"alpha\""))
        .start();
    proxy.expect_state("app/beta", "down", STATE_LIMIT);
    assert_eq!(proxy.state("app/alpha"), "up", "{}", proxy.server("app/alpha"));
    for i in 0..10 {
        let r = get(proxy.addr, "/x");
        assert_eq!((r.status, r.backend()), (200, "alpha"), "request {i}: {r:?}");
    }

    // 404 is fine when the check expects 400-404.
    let other = Backend::start("other");
    let proxy = Cfg::new("round_robin", &[&other])
        .pool_tables(&health("http", "path = \"/status/404\"\nexpect_status = \"400-404\""))
        .start();
    assert!(
        wait_until(STATE_LIMIT, || proxy.server("app/other")["last_check"]
            .as_str()
            .is_some_and(|s| s.starts_with("ok"))),
        "a 404 answer to a check expecting 400-404 is not ok: {}",
        proxy.server("app/other")
    );
    assert_eq!(proxy.state("app/other"), "up");
}

#[test]
fn fail_open_forwards_when_every_server_fails_its_check() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b])
        .pool_keys("fail_open = true")
        .pool_tables(&health("http", "path = \"/status/503\""))
        .start();
    proxy.expect_state("app/a", "down", STATE_LIMIT);
    proxy.expect_state("app/b", "down", STATE_LIMIT);
    assert!(wait_until(STATE_LIMIT, || proxy.pool("app")["panic"] == true), "pool not in panic: {}", proxy.pool("app"));
    assert_eq!(proxy.pool("app")["fail_open"], true);
    for i in 0..10 {
        let r = get(proxy.addr, "/x");
        assert_eq!(r.status, 200, "request {i} in panic mode: {r:?}");
        assert!(["a", "b"].contains(&r.backend()), "{r:?}");
    }
}

#[test]
fn fail_closed_is_503_when_every_server_fails_its_check() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b])
        .pool_keys("fail_open = false")
        .pool_tables(&health("http", "path = \"/status/503\""))
        .start();
    proxy.expect_state("app/a", "down", STATE_LIMIT);
    proxy.expect_state("app/b", "down", STATE_LIMIT);
    assert_eq!(proxy.pool("app")["panic"], false);
    let mut c = Client::connect(proxy.addr);
    c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(served(&a, "/x") + served(&b, "/x"), 0, "a request reached a down server");
}

#[test]
fn agent_drain_keeps_sticky_clients_only_until_ready() {
    let (a, b) = (backend_at("a", "127.0.0.2"), backend_at("b", "127.0.0.3"));
    let ips: Vec<IpAddr> = vec![a.addr.ip(), b.addr.ip()];
    let (port, agents) = agents_on_shared_port(&ips, "up");
    let proxy = Cfg::new("round_robin", &[&a, &b]).pool_keys("sticky = true").pool_tables(&agent_table(port)).start();
    let cookie = (0..4)
        .map(|_| get(proxy.addr, "/"))
        .find(|r| r.backend() == "a")
        .and_then(|r| cookie_of(&r))
        .expect("no response from a with a FASTLB_SERVER cookie in 4 round-robin requests");

    agents[0].set("drain");
    proxy.expect_state("app/a", "drain", STATE_LIMIT);
    let before = served(&a, "/new");
    for i in 0..10 {
        let r = get(proxy.addr, "/new");
        assert_eq!((r.status, r.backend()), (200, "b"), "new client {i} sent to the draining server: {r:?}");
    }
    assert_eq!(served(&a, "/new"), before);
    for i in 0..3 {
        let r = get_with(proxy.addr, "/sticky", &[("Cookie", &cookie)]);
        assert_eq!((r.status, r.backend()), (200, "a"), "sticky client {i} of the draining server: {r:?}");
    }
    let ev = event_to(&proxy, "app/a", "drain").expect("no event app/a → drain");
    assert!(ev["reason"].as_str().unwrap_or_default().contains("agent"), "{ev}");

    agents[0].set("ready");
    proxy.expect_state("app/a", "up", STATE_LIMIT);
    assert!(
        wait_until(TRAFFIC_LIMIT, || get(proxy.addr, "/back").backend() == "a"),
        "a is ready again but gets no new clients"
    );
}

#[test]
fn agent_percentage_scales_the_effective_weight() {
    let a = backend_at("a", "127.0.0.2");
    let (port, agents) = agents_on_shared_port(&[a.addr.ip()], "100%");
    let proxy = Cfg::new("weighted_round_robin", &[&a]).weights(&[4]).pool_tables(&agent_table(port)).start();
    assert!(wait_until(STATE_LIMIT, || agents[0].hits() >= 1), "the agent was never asked");
    agents[0].set("50%");
    assert!(
        wait_until(STATE_LIMIT, || num(&proxy.server("app/a")["weight_effective"], "weight_effective") == 2),
        "agent said 50% of weight 4: {}",
        proxy.server("app/a")
    );
    assert_eq!(proxy.server("app/a")["weight_configured"], 4);
    agents[0].set("up 100%");
    assert!(
        wait_until(STATE_LIMIT, || num(&proxy.server("app/a")["weight_effective"], "weight_effective") == 4),
        "agent said 100%: {}",
        proxy.server("app/a")
    );
}

#[test]
fn unreachable_agent_changes_nothing() {
    let (a, b, c) = (backend_at("a", "127.0.0.2"), backend_at("b", "127.0.0.3"), backend_at("c", "127.0.0.4"));
    // c never has an agent; b's agent is the clock that shows checks ran.
    let (port, agents) = agents_on_shared_port(&[a.addr.ip(), b.addr.ip()], "up");
    let proxy = Cfg::new("round_robin", &[&a, &b, &c]).pool_tables(&agent_table(port)).start();
    agents[0].set("drain");
    proxy.expect_state("app/a", "drain", STATE_LIMIT);
    agents[0].stop();
    let clock = agents[1].hits();
    assert!(wait_until(TRAFFIC_LIMIT, || agents[1].hits() >= clock + 5), "agent checks stopped running");
    assert_eq!(proxy.state("app/a"), "drain", "an unreachable agent changed a's state: {}", proxy.server("app/a"));
    let c_stat = proxy.server("app/c");
    assert_eq!(c_stat["state"], "up", "a server without an agent changed state: {c_stat}");
    assert_eq!(c_stat["weight_effective"], 1, "{c_stat}");
    assert!(wait_until(TRAFFIC_LIMIT, || get(proxy.addr, "/").backend() == "c"), "c gets no traffic");
}

#[test]
fn backup_takes_over_when_all_primaries_are_down_and_hands_back() {
    let (p1, p2, bk) = (Backend::start("p1"), Backend::start("p2"), Backend::start("bk"));
    let proxy = Cfg::new("round_robin", &[&p1, &p2, &bk]).backup("bk").pool_tables(&health("tcp", "")).start();
    for i in 0..10 {
        let r = get(proxy.addr, "/");
        assert!(r.status == 200 && r.backend() != "bk", "request {i} went to the backup: {r:?}");
    }
    assert_eq!(proxy.server("app/bk")["backup"], true);
    let load = Load::start(proxy.addr, 2, "/load");
    assert!(load.advance(20, TRAFFIC_LIMIT));
    assert_eq!(served(&bk, "/load"), 0, "backup served while the primaries were up");

    p1.stop();
    p2.stop();
    proxy.expect_state("app/p1", "down", STATE_LIMIT);
    proxy.expect_state("app/p2", "down", STATE_LIMIT);
    assert!(wait_until(TRAFFIC_LIMIT, || served(&bk, "/load") > 0), "backup never took over");

    let (r1, r2) = (Backend::start_on("p1", p1.addr), Backend::start_on("p2", p2.addr));
    proxy.expect_state("app/p1", "up", STATE_LIMIT);
    proxy.expect_state("app/p2", "up", STATE_LIMIT);
    assert!(
        wait_until(TRAFFIC_LIMIT, || {
            let before = served(&bk, "/load");
            load.advance(30, TRAFFIC_LIMIT) && served(&bk, "/load") == before
        }),
        "backup keeps getting traffic with the primaries back up"
    );
    assert!(served(&r1, "/load") + served(&r2, "/load") > 0, "primaries got nothing after returning");
    load.finish().assert_no_failures("primaries down and back with a backup");
}

#[test]
fn zone_group_fails_over_when_its_healthy_share_drops() {
    let zone_a: Vec<Backend> = (1..=3).map(|i| Backend::start(&format!("a{i}"))).collect();
    let zone_b: Vec<Backend> = (1..=2).map(|i| Backend::start(&format!("b{i}"))).collect();
    let all: Vec<&Backend> = zone_a.iter().chain(&zone_b).collect();
    let mut cfg = Cfg::new("round_robin", &all)
        .pool_keys("zones = [\"a\", \"b\"]\nzone_failover_threshold = 0.5")
        .pool_tables(&health("tcp", ""));
    for b in &all {
        let zone = &b.id[..1];
        cfg = cfg.server_keys(&b.id, &format!("zone = \"{zone}\""));
    }
    let proxy = cfg.start();
    assert_eq!(proxy.server("app/b1")["zone"], "b");
    for i in 0..12 {
        let r = get(proxy.addr, "/");
        assert!(r.status == 200 && r.backend().starts_with('a'), "request {i} left zone a while it is healthy: {r:?}");
    }
    let load = Load::start(proxy.addr, 2, "/load");
    assert!(load.advance(20, TRAFFIC_LIMIT));
    let zone_b_load = || zone_b.iter().map(|b| served(b, "/load")).sum::<usize>();
    assert_eq!(zone_b_load(), 0, "zone b served while zone a was healthy");

    // 1 of 3 healthy is below 0.5: zone b joins.
    zone_a[0].stop();
    zone_a[1].stop();
    proxy.expect_state("app/a1", "down", STATE_LIMIT);
    proxy.expect_state("app/a2", "down", STATE_LIMIT);
    assert!(wait_until(TRAFFIC_LIMIT, || zone_b_load() > 0), "zone b never got traffic: {:?}", proxy.pool("app"));

    let revived: Vec<Backend> = zone_a[..2].iter().map(|b| Backend::start_on(&b.id, b.addr)).collect();
    proxy.expect_state("app/a1", "up", STATE_LIMIT);
    proxy.expect_state("app/a2", "up", STATE_LIMIT);
    assert!(
        wait_until(TRAFFIC_LIMIT, || {
            let before = zone_b_load();
            load.advance(30, TRAFFIC_LIMIT) && zone_b_load() == before
        }),
        "zone b keeps getting traffic with zone a healthy again"
    );
    drop(revived);
    load.finish().assert_no_failures("zone failover and back");
}

/// 500 to everything, closing the connection.
const ALWAYS_500: Mode = Mode::Raw(
    "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 3\r\nx-backend: bad\r\nconnection: close\r\n\r\nbad",
);

const OUTLIER: &str = "[pool.outlier]\nconsecutive_5xx = 5\nconsecutive_errors = 3\nbase_ejection = \"30s\"\nmax_ejection = \"300s\"\nmax_ejection_percent = 50";

#[test]
fn consecutive_5xx_eject_a_server() {
    let (g1, g2) = (Backend::start("g1"), Backend::start("g2"));
    let bad = Backend::with_mode("bad", ALWAYS_500);
    let proxy = Cfg::new("round_robin", &[&g1, &g2, &bad]).pool_tables(OUTLIER).start();
    let mut ejected = false;
    for _ in 0..20 {
        for _ in 0..6 {
            let r = get(proxy.addr, "/x");
            assert!(r.status == 200 || r.status == 500, "{r:?}");
        }
        if proxy.state("app/bad") == "ejected" {
            ejected = true;
            break;
        }
    }
    assert!(ejected, "bad answered 500 to every request but was not ejected: {}", proxy.server("app/bad"));
    let before = bad.requests();
    for i in 0..12 {
        let r = get(proxy.addr, "/after");
        assert_eq!(r.status, 200, "request {i} with bad ejected: {r:?}");
    }
    assert_eq!(bad.requests(), before, "an ejected server got traffic");
    let ev = event_to(&proxy, "app/bad", "ejected")
        .unwrap_or_else(|| panic!("no event app/bad → ejected: {:?}", proxy.events()));
    assert_eq!(ev["from"], "up", "{ev}");
    assert_eq!(proxy.state("app/g1"), "up");
}

#[test]
fn outlier_ejection_never_exceeds_max_ejection_percent() {
    let bad: Vec<Backend> = (1..=4).map(|i| Backend::with_mode(&format!("bad{i}"), ALWAYS_500)).collect();
    let refs: Vec<&Backend> = bad.iter().collect();
    let proxy = Cfg::new("round_robin", &refs).pool_tables(OUTLIER).start();
    let ejected = || {
        let pool = proxy.pool("app");
        pool["servers"].as_array().unwrap().iter().filter(|s| s["state"] == "ejected").count()
    };
    let mut most = 0;
    for _ in 0..30 {
        for _ in 0..4 {
            let r = get(proxy.addr, "/x");
            assert_eq!(r.status, 500, "{r:?}");
        }
        let n = ejected();
        assert!(n <= 2, "{n} of 4 servers ejected with max_ejection_percent = 50: {}", proxy.pool("app"));
        most = most.max(n);
    }
    assert_eq!(most, 2, "4 servers answering only 500: expected 2 (50%) ejected, saw at most {most}");
}

#[test]
fn slowstart_ramps_a_returning_server() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("weighted_round_robin", &[&a, &b])
        .weights(&[10, 10])
        .pool_keys("slowstart = \"60s\"")
        .pool_tables(&health("tcp", ""))
        .start();
    b.stop();
    proxy.expect_state("app/b", "down", STATE_LIMIT);
    let revived = Backend::start_on("b", b.addr);
    proxy.expect_state("app/b", "up", STATE_LIMIT);
    let weight = || num(&proxy.server("app/b")["weight_effective"], "weight_effective");
    assert!(
        wait_until(STATE_LIMIT, || weight() < 10),
        "b came back and kept its full weight although slowstart is 60 s: {}",
        proxy.server("app/b")
    );
    assert_eq!(proxy.server("app/b")["weight_configured"], 10);
    // Seconds into a 60 s ramp, b takes a small share only.
    let tally = support::tally(
        (0..40).map(|_| get(proxy.addr, "/ramp").backend().to_string()).collect::<Vec<_>>().iter().map(String::as_str),
    );
    let (na, nb) = (tally.get("a").copied().unwrap_or(0), tally.get("b").copied().unwrap_or(0));
    assert!(
        nb * 3 < na,
        "b at the start of its slow start got {nb} of 40 requests ({tally:?}): {}",
        proxy.server("app/b")
    );
    assert!(weight() < 10, "{}", proxy.server("app/b"));
    drop(revived);
}
