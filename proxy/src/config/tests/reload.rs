//! `live_change_errors`: which differences between two configs need a restart.

use std::path::PathBuf;

use super::*;

fn base() -> Config {
    parse(
        r#"
[runtime]
workers = 2
[[listener]]
name = "web"
bind = "127.0.0.1:8000"
[[listener]]
name = "db"
bind = "127.0.0.1:8001"
mode = "tcp"
[[pool]]
name = "app"
[[pool.server]]
addr = "127.0.0.1:5000"
"#,
        "lb.toml",
    )
    .unwrap()
}

#[test]
fn identical_configs_reload_live() {
    assert_eq!(live_change_errors(&base(), &base()), Vec::<String>::new());
}

#[test]
fn everything_but_sockets_and_threads_changes_live() {
    let old = base();
    let mut new = base();
    new.runtime.log_level = "debug".into();
    new.runtime.access_log = true;
    new.runtime.drain_timeout = secs(1);
    let web = &mut new.listeners[0];
    web.forward_headers = false;
    web.status_path = Some("/proxy/status".into());
    web.limits.max_headers = 10;
    web.timeouts.tunnel = secs(5);
    web.pool = "other".into();
    let app = &mut new.pools[0];
    app.strategy = StrategyKind::LeastConnections;
    app.servers.push(ServerConfig::new("s2", addr("127.0.0.1:5001")));
    app.fail_open = true;
    app.zones = vec!["a".into()];
    app.health = Some(HealthCheckConfig {
        kind: HealthCheckKind::Tcp,
        interval: secs(1),
        fastinterval: secs(1),
        timeout: secs(1),
        fall: 1,
        rise: 1,
        port: None,
    });
    new.pools.push(PoolConfig::new("other", vec![ServerConfig::new("o1", addr("127.0.0.1:6000"))]));
    // Listeners are matched by name, not position.
    new.listeners.reverse();
    assert_eq!(live_change_errors(&old, &new), Vec::<String>::new());
}

#[test]
fn restart_only_changes_are_each_named() {
    let old = base();
    let mut new = base();
    new.runtime.workers = 4;
    new.runtime.pin_workers = false;
    new.admin.socket = PathBuf::from("/run/fastlb.sock");
    new.admin.mode = 0o660;
    new.listeners[0].bind = addr("127.0.0.1:9000");
    new.listeners[0].backlog = 16;
    new.listeners[1].mode = ListenerMode::Http;
    let errs = live_change_errors(&old, &new);
    let keys = [
        "runtime.workers: 2 → 4",
        "runtime.pin_workers: true → false",
        "admin.socket: \"/tmp/fastlb.sock\" → \"/run/fastlb.sock\"",
        "admin.mode: 0o600 → 0o660",
        "listener[web].bind: 127.0.0.1:8000 → 127.0.0.1:9000",
        "listener[web].backlog: 4096 → 16",
        "listener[db].mode: \"tcp\" → \"http\"",
    ];
    assert_eq!(errs.len(), keys.len(), "{errs:#?}");
    for (e, k) in errs.iter().zip(keys) {
        assert!(e.starts_with(k), "{e:?} should start with {k:?}");
        assert!(e.ends_with("cannot change live; restart fastlb to apply it"), "{e}");
    }
}

#[test]
fn added_and_removed_listeners_need_a_restart() {
    let old = base();
    let mut new = base();
    new.listeners.remove(1);
    new.listeners.push(ListenerConfig::http("api", addr("127.0.0.1:8002"), "app"));
    assert_eq!(
        live_change_errors(&old, &new),
        [
            "listener \"db\" was removed; removing a listener needs a restart",
            "listener \"api\" was added; adding a listener needs a restart",
        ]
    );
    // A rename is a removal plus an addition.
    let mut new = base();
    new.listeners[0].name = "www".into();
    let errs = live_change_errors(&old, &new);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with("listener \"web\" was removed"), "{errs:#?}");
    assert!(errs[1].starts_with("listener \"www\" was added"), "{errs:#?}");
}

#[test]
fn a_pools_plugin_changes_live_but_the_plugin_engine_does_not() {
    let mut old = base();
    old.plugins.dir = Some(PathBuf::from("/etc/fastlb/plugins"));
    let mut new = old.clone();
    new.pools[0].plugin = Some(PoolPlugin { name: "canary".into(), config_json: r#"{"percent":10}"#.into() });
    new.pools[0].strategy = StrategyKind::Random;
    assert_eq!(live_change_errors(&old, &new), Vec::<String>::new());
    // And back: the pool on a built-in strategy again.
    assert_eq!(live_change_errors(&new, &old), Vec::<String>::new());
    // The engine's folder and bounds are set at start.
    let mut engine = old.clone();
    engine.plugins = PluginsConfig {
        dir: Some(PathBuf::from("/srv/plugins")),
        poll_interval: secs(5),
        call_timeout: secs(1),
        memory_limit: 64 << 20,
        max_failures: 1,
    };
    let errs = live_change_errors(&old, &engine);
    let keys: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap_or_default()).collect();
    assert_eq!(
        keys,
        [
            "plugins.dir",
            "plugins.poll_interval",
            "plugins.call_timeout",
            "plugins.memory_limit",
            "plugins.max_failures"
        ]
    );
}
