//! `fastlb demo`: built-in backends plus a balancer, nothing else needed.

mod support;

use support::{Proxy, get};

fn demo() -> Proxy {
    let args: Vec<String> = ["demo", "--nodes", "3", "--port", "0"].iter().map(|s| s.to_string()).collect();
    Proxy::spawn(&args)
}

#[test]
fn demo_spreads_requests_over_its_nodes() {
    let proxy = demo();
    let bodies: Vec<String> = (0..30)
        .map(|i| {
            let r = get(proxy.addr, "/");
            assert_eq!(r.status, 200, "demo request {i}: {r:?}");
            r.text()
        })
        .collect();
    for node in ["server-1", "server-2", "server-3"] {
        assert!(
            bodies.iter().any(|b| b.contains(node)),
            "no response from {node} in 30 requests to {}; first body: {:?}",
            proxy.addr,
            bodies[0]
        );
    }
}

#[test]
fn demo_health_is_json() {
    let proxy = demo();
    let r = get(proxy.addr, "/health");
    assert_eq!(r.status, 200, "{r:?}");
    let v: serde_json::Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("/health is not JSON ({e}): {:?}", r.text()));
    assert_eq!(v["status"], "healthy", "{v}");
    assert!(!v["server_id"].is_null(), "/health has no server_id: {v}");
}
