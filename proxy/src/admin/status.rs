//! The listener `status_path` page: the JSON the old Python balancer served
//! at `/proxy/status`, so its dashboards and scripts keep working.

use serde_json::{Map, Value, json};

use super::format::{is_active, server_url};
use crate::control::ControlApi;

/// The status page body for the listener forwarding to `listener_pool`:
///
/// ```json
/// {"proxy_id": "…", "pool": "web", "algorithm": "round_robin", "sticky_sessions": false,
///  "uptime": 12.0, "active_nodes": ["http://10.0.0.1:80"],
///  "node_stats": {"http://10.0.0.1:80": {"server_id": "s1", "state": "up", "healthy": true,
///                 "connections": 0, "requests": 10, "errors": 0}}}
/// ```
///
/// `active_nodes` lists the servers taking new traffic (state `up`);
/// `node_stats` has every server of the pool, keyed by its URL. An unknown
/// pool gives empty lists, `algorithm: null` and an `error` field.
pub fn status_json(api: &dyn ControlApi, listener_pool: &str, proxy_id: &str) -> String {
    let uptime = api.info().uptime_s as f64;
    let pools = api.pools();
    let Some(pool) = pools.iter().find(|p| p.name == listener_pool) else {
        return json!({
            "proxy_id": proxy_id,
            "pool": listener_pool,
            "algorithm": null,
            "sticky_sessions": false,
            "uptime": uptime,
            "active_nodes": [],
            "node_stats": {},
            "error": format!("pool '{listener_pool}' not found"),
        })
        .to_string();
    };
    let active: Vec<String> = pool.servers.iter().filter(|s| is_active(s)).map(|s| server_url(&s.addr)).collect();
    let mut stats = Map::new();
    for s in &pool.servers {
        let node = json!({
            "server_id": s.name,
            "state": s.state,
            "healthy": is_active(s),
            "connections": s.active,
            "requests": s.requests,
            "errors": s.errors,
        });
        stats.insert(server_url(&s.addr), node);
    }
    json!({
        "proxy_id": proxy_id,
        "pool": pool.name,
        "algorithm": pool.strategy,
        "sticky_sessions": pool.sticky,
        "uptime": uptime,
        "active_nodes": active,
        "node_stats": Value::Object(stats),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::fake::FakeControl;

    #[test]
    fn status_page_shape() {
        let v: Value = serde_json::from_str(&status_json(&FakeControl::default(), "web", "lb-1")).unwrap();
        assert_eq!(v["proxy_id"], "lb-1");
        assert_eq!(v["pool"], "web");
        assert_eq!(v["algorithm"], "round_robin");
        assert_eq!(v["sticky_sessions"], true);
        assert_eq!(v["uptime"].as_f64(), Some(90.0));
        assert_eq!(v["active_nodes"], json!(["http://10.0.0.1:80"]));
        let stats = v["node_stats"].as_object().unwrap();
        assert_eq!(stats.len(), 2);
        let s1 = &stats["http://10.0.0.1:80"];
        assert_eq!(s1["server_id"], "s1");
        assert_eq!(s1["connections"], 3);
        assert_eq!(s1["requests"], 1234);
        assert_eq!(s1["errors"], 6);
        assert_eq!(s1["healthy"], true);
        assert_eq!(stats["http://10.0.0.2:80"]["state"], "down");
        assert_eq!(stats["http://10.0.0.2:80"]["healthy"], false);
    }

    #[test]
    fn status_page_other_pool_and_unknown_pool() {
        let api = FakeControl::default();
        let v: Value = serde_json::from_str(&status_json(&api, "api", "lb-1")).unwrap();
        assert_eq!(v["algorithm"], "least_connections");
        assert_eq!(v["sticky_sessions"], false);
        assert_eq!(v["active_nodes"], json!(["http://api-1.internal:8080"]));

        let v: Value = serde_json::from_str(&status_json(&api, "nope", "lb-1")).unwrap();
        assert_eq!(v["active_nodes"], json!([]));
        assert_eq!(v["node_stats"], json!({}));
        assert_eq!(v["algorithm"], Value::Null);
        assert_eq!(v["error"], "pool 'nope' not found");
    }
}
