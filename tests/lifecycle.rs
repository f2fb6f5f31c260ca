//! Process lifecycle and listener modes: graceful shutdown on SIGTERM,
//! `mode = "tcp"` listeners, sticky clients on a weight-0 server.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use support::{Backend, Cfg, Client, wait_until};

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let slow = Backend::slow("slow", Duration::from_millis(1500));
    let mut proxy = Cfg::new("round_robin", &[&slow]).start();
    let addr = proxy.addr;
    let inflight = thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.get("/")
    });
    assert!(wait_until(Duration::from_secs(10), || slow.requests() >= 1), "request never reached the backend");
    let status = proxy.terminate(Duration::from_secs(15)).expect("fastlb did not exit after SIGTERM");
    assert!(status.success(), "exit status {status:?}; stderr:\n{}", proxy.stderr());
    let resp = inflight.join().unwrap();
    assert_eq!(resp.status, 200, "in-flight request cut by shutdown: {resp:?}");
    assert_eq!(resp.text().trim(), "slow");
    assert!(TcpStream::connect(addr).is_err(), "listener still accepting after shutdown");
    assert!(proxy.stderr().contains("draining"), "{}", proxy.stderr());
}

#[test]
fn tcp_listener_relays_bytes_and_balances_per_connection() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).listener_keys("mode = \"tcp\"").start();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Raw bytes: fastlb must not parse them, so a request it would refuse
        // as HTTP (no Host on 1.1) goes through untouched.
        s.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        assert!(text.starts_with("HTTP/1.1 "), "{text}");
        seen.push(text.rsplit("\r\n\r\n").next().unwrap_or_default().trim().to_string());
    }
    assert_eq!(a.conns() + b.conns(), 4, "one upstream connection per client connection");
    assert!(seen.iter().any(|s| s == "a") && seen.iter().any(|s| s == "b"), "not balanced: {seen:?}");
    let logs = a.log().into_iter().chain(b.log());
    assert!(logs.into_iter().all(|r| r.head.get_all("x-forwarded-for").is_empty()), "tcp mode altered the bytes");
}

#[test]
fn weight_zero_server_keeps_its_sticky_clients_only() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let cookie = {
        // Weight 1 everywhere: learn which cookie pins `a`.
        let proxy = Cfg::new("round_robin", &[&a, &b]).pool_keys("sticky = true").start();
        let mut found = None;
        for _ in 0..4 {
            let r = support::get(proxy.addr, "/");
            if r.text().trim() == "a" {
                found = r.head.get_all("set-cookie").iter().find_map(|v| {
                    v.split(';').next().filter(|kv| kv.starts_with("FASTLB_SERVER=")).map(str::to_string)
                });
                break;
            }
        }
        found.expect("no response from a with a cookie")
    };
    // Same names, `a` now weight 0: the cookie value is stable across restarts.
    let proxy = Cfg::new("round_robin", &[&a, &b]).weights(&[0, 1]).pool_keys("sticky = true").start();
    let before = a.requests();
    for _ in 0..6 {
        let r = support::get(proxy.addr, "/");
        assert_eq!(r.text().trim(), "b", "new client sent to weight-0 server");
    }
    assert_eq!(a.requests(), before);
    for _ in 0..3 {
        let r = support::get_with(proxy.addr, "/", &[("Cookie", &cookie)]);
        assert_eq!(r.text().trim(), "a", "sticky client moved off its weight-0 server");
        assert!(r.head.get_all("set-cookie").is_empty(), "cookie re-issued although it was honoured");
    }
}
