//! Configs that parse: every key's typed value, defaults, value syntax.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::raw::IntOrStr;

#[test]
fn full_config_sets_every_value() {
    let src = r#"
[runtime]
workers = 3
pin_workers = false
log_level = "fastlb=debug"
access_log = true
drain_timeout = "1m"

[admin]
socket = "/run/fastlb/admin.sock"
mode = "0660"

[[listener]]
name = "web"
bind = "127.0.0.1:8000"
mode = "http"
pool = "api"
forward_headers = false
backlog = 128
status_path = "/proxy/status"
[listener.limits]
max_head_size = "32KiB"
max_headers = 50
max_uri_length = 2048
max_connections = 500
[listener.timeouts]
client_header = "5s"
keepalive = "0s"
client_body = "250ms"
tunnel = "2h"

[[listener]]
bind = "[::1]:9000"
mode = "tcp"
pool = "app"

[[pool]]
name = "app"
strategy = "wrr"
hash_key = "header:X-User"
sticky = true
retries = 0
[pool.timeouts]
connect = 1
response = "2m"
[pool.keepalive]
max_idle = 0
idle_timeout = "90s"
[pool.passive]
max_fails = 5
cooldown = "1h"
[pool.health]
type = "http"
interval = "5s"
fastinterval = "500ms"
timeout = "2s"
fall = 4
rise = 1
port = 8081
method = "HEAD"
path = "/ready?full=1"
host = "app.local:8080"
expect_status = [200, 204, "300-302"]
body_contains = "ok"
[pool.agent]
port = 9999
interval = "10s"
timeout = "250ms"
send = "status\n"
[pool.outlier]
consecutive_5xx = 0
consecutive_errors = 7
base_ejection = "30s"
max_ejection = "10m"
max_ejection_percent = 100
[[pool.server]]
name = "a1"
addr = "10.0.0.1:80"
weight = 0
zone = "eu-west"
backup = true
tags = ["canary", "v2"]
[[pool.server]]
addr = "10.0.0.2:80"

[[pool]]
name = "api"
strategy = "consistent_hash"
hash_key = "cookie:session"
fail_open = true
slowstart = "30s"
zones = ["eu-west", "eu-east"]
zone_failover_threshold = 0.25
health = { type = "pgsql", user = "probe", database = "app" }
[pool.sticky]
cookie = "SERVERID"
max_age = "1h"
[[pool.server]]
addr = "10.0.1.1:8080"
weight = 256
"#;
    let c = parse(src, "lb.toml").unwrap_or_else(|e| panic!("{e}"));

    let web = ListenerConfig {
        name: "web".into(),
        bind: addr("127.0.0.1:8000"),
        mode: ListenerMode::Http,
        pool: "api".into(),
        forward_headers: false,
        backlog: 128,
        limits: ListenerLimits {
            max_head_size: 32 * 1024,
            max_headers: 50,
            max_uri_length: 2048,
            max_connections: 500,
        },
        timeouts: ListenerTimeouts {
            client_header: secs(5),
            keepalive: Duration::ZERO,
            client_body: Duration::from_millis(250),
            tunnel: secs(7200),
        },
        status_path: Some("/proxy/status".into()),
    };
    let mut tcp = ListenerConfig::http("listener-2", addr("[::1]:9000"), "app");
    tcp.mode = ListenerMode::Tcp;

    let mut a1 = ServerConfig::new("a1", addr("10.0.0.1:80"));
    a1.weight = 0;
    a1.zone = Some("eu-west".into());
    a1.backup = true;
    a1.tags = vec!["canary".into(), "v2".into()];
    let app = PoolConfig {
        plugin: None,
        name: "app".into(),
        strategy: StrategyKind::WeightedRoundRobin,
        hash_key: HashKey::Header("x-user".into()),
        sticky: Some(StickyConfig::default()),
        retries: 0,
        timeouts: PoolTimeouts { connect: secs(1), response: secs(120) },
        keepalive: KeepaliveConfig { max_idle: 0, idle_timeout: secs(90) },
        passive: PassiveConfig { max_fails: 5, cooldown: secs(3600) },
        health: Some(HealthCheckConfig {
            kind: HealthCheckKind::Http {
                method: "HEAD".into(),
                path: "/ready?full=1".into(),
                host: Some("app.local:8080".into()),
                expect_status: vec![(200, 200), (204, 204), (300, 302)],
                body_contains: Some("ok".into()),
            },
            interval: secs(5),
            fastinterval: Duration::from_millis(500),
            timeout: secs(2),
            fall: 4,
            rise: 1,
            port: Some(8081),
        }),
        agent: Some(AgentCheckConfig {
            port: 9999,
            interval: secs(10),
            timeout: Duration::from_millis(250),
            send: "status\n".into(),
        }),
        outlier: OutlierConfig {
            consecutive_5xx: 0,
            consecutive_errors: 7,
            base_ejection: secs(30),
            max_ejection: secs(600),
            max_ejection_percent: 100,
        },
        fail_open: false,
        slowstart: Duration::ZERO,
        zones: Vec::new(),
        zone_failover_threshold: 0.5,
        servers: vec![a1, ServerConfig::new("server-2", addr("10.0.0.2:80"))],
    };
    let mut api_server = ServerConfig::new("server-1", addr("10.0.1.1:8080"));
    api_server.weight = 256;
    let mut api = PoolConfig::new("api", vec![api_server]);
    api.strategy = StrategyKind::ConsistentHash;
    api.hash_key = HashKey::Cookie("session".into());
    api.sticky = Some(StickyConfig { cookie: "SERVERID".into(), max_age: Some(secs(3600)) });
    api.fail_open = true;
    api.slowstart = secs(30);
    api.zones = vec!["eu-west".into(), "eu-east".into()];
    api.zone_failover_threshold = 0.25;
    api.health = Some(HealthCheckConfig {
        kind: HealthCheckKind::Pgsql { user: "probe".into(), database: Some("app".into()) },
        interval: secs(3),
        fastinterval: secs(3),
        timeout: secs(1),
        fall: 3,
        rise: 2,
        port: None,
    });

    let expected = Config {
        runtime: RuntimeConfig {
            workers: 3,
            pin_workers: false,
            log_level: "fastlb=debug".into(),
            access_log: true,
            drain_timeout: secs(60),
        },
        admin: AdminConfig { socket: PathBuf::from("/run/fastlb/admin.sock"), mode: 0o660 },
        listeners: vec![web, tcp],
        pools: vec![app, api],
        plugins: Default::default(),
    };
    assert_eq!(c, expected);
}

#[test]
fn minimal_config_takes_defaults() {
    let c = parse(MINIMAL, "lb.toml").unwrap_or_else(|e| panic!("{e}"));
    let expected = Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: vec![ListenerConfig::http("listener-1", addr("127.0.0.1:8000"), "pool-1")],
        pools: vec![PoolConfig::new("pool-1", vec![ServerConfig::new("server-1", addr("127.0.0.1:5000"))])],
        plugins: Default::default(),
    };
    assert_eq!(c, expected);
    assert_eq!(c.admin.socket, PathBuf::from(DEFAULT_ADMIN_SOCKET));
    assert_eq!(c.listeners[0].backlog, 4096);
    assert!(c.listeners[0].forward_headers);
    assert_eq!(c.pools[0].retries, 2);
    assert_eq!(c.pools[0].sticky, None);
}

#[test]
fn example_file_parses_with_documented_defaults() {
    let src = include_str!("../../../../examples/lb.toml");
    let c = parse(src, "examples/lb.toml").unwrap_or_else(|e| panic!("{e}"));
    // The example shows defaults, so apart from names and the second
    // server it must equal an all-defaults config.
    let servers =
        vec![ServerConfig::new("s1", addr("127.0.0.1:5000")), ServerConfig::new("s2", addr("127.0.0.1:5001"))];
    let expected = Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: vec![ListenerConfig::http("web", addr("127.0.0.1:8000"), "app")],
        pools: vec![PoolConfig::new("app", servers)],
        plugins: Default::default(),
    };
    assert_eq!(c, expected);
}

/// The example's commented-out `[pool.health]` and `[pool.agent]` blocks
/// are complete: uncommented (one `# ` level), they parse as documented.
#[test]
fn example_check_blocks_parse_when_uncommented() {
    let src = include_str!("../../../../examples/lb.toml");
    let mut out = String::new();
    let mut in_block = false;
    for line in src.lines() {
        if line == "# [pool.health]" || line == "# [pool.agent]" {
            in_block = true;
        } else if !line.starts_with('#') {
            in_block = false;
        }
        out.push_str(if in_block { line.strip_prefix("# ").unwrap_or(line) } else { line });
        out.push('\n');
    }
    let c = parse(&out, "examples/lb.toml").unwrap_or_else(|e| panic!("{e}\n{out}"));
    let health = c.pools[0].health.clone().expect("health");
    assert_eq!(
        health,
        HealthCheckConfig {
            kind: HealthCheckKind::Http {
                method: "GET".into(),
                path: "/health".into(),
                host: Some("app.local".into()),
                expect_status: vec![(200, 399)],
                body_contains: Some("ok".into()),
            },
            interval: secs(3),
            fastinterval: secs(3),
            timeout: secs(1),
            fall: 3,
            rise: 2,
            port: Some(8081),
        }
    );
    let agent = AgentCheckConfig { port: 9999, interval: secs(5), timeout: secs(1), send: String::new() };
    assert_eq!(c.pools[0].agent, Some(agent));
}

#[test]
fn sticky_forms() {
    let with = |sticky: &str| {
        let src = MINIMAL.replace("[[pool]]\n", &format!("[[pool]]\n{sticky}\n"));
        parse(&src, "lb.toml").unwrap_or_else(|e| panic!("{e}")).pools.remove(0).sticky
    };
    assert_eq!(with("sticky = false"), None);
    assert_eq!(with("sticky = true"), Some(StickyConfig::default()));
    assert_eq!(
        with("sticky = { max_age = 30 }"),
        Some(StickyConfig { cookie: DEFAULT_STICKY_COOKIE.into(), max_age: Some(secs(30)) })
    );
}

#[test]
fn hash_key_forms_and_strategy_defaults() {
    let with = |lines: &str| {
        let src = MINIMAL.replace("[[pool]]\n", &format!("[[pool]]\n{lines}\n"));
        parse(&src, "lb.toml").map(|mut c| c.pools.remove(0))
    };
    assert_eq!(with("hash_key = \"path\"").unwrap().hash_key, HashKey::Path);
    assert_eq!(with("hash_key = \"uri\"").unwrap().hash_key, HashKey::Uri);
    assert_eq!(with("strategy = \"url_hash\"").unwrap().hash_key, HashKey::Uri);
    assert_eq!(with("strategy = \"uri\"\nhash_key = \"path\"").unwrap().hash_key, HashKey::Path);
    assert_eq!(with("strategy = \"ip_hash\"").unwrap().hash_key, HashKey::ClientIp);
    for bad in [
        "hash_key = \"header:\"",
        "hash_key = \"cookie:a b\"",
        "hash_key = \"body\"",
        "strategy = \"ip_hash\"\nhash_key = \"path\"",
    ] {
        let e = with(bad).unwrap_err();
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].key, "pool[0].hash_key");
    }
}

#[test]
fn every_strategy_name_is_accepted() {
    for kind in StrategyKind::ALL {
        let src = MINIMAL.replace("[[pool]]\n", &format!("[[pool]]\nstrategy = \"{}\"\n", kind.name()));
        assert_eq!(parse(&src, "lb.toml").unwrap().pools[0].strategy, kind);
    }
}

#[test]
fn host_names_resolve_once() {
    let src = MINIMAL.replace("127.0.0.1:5000", "localhost:5000");
    let c = parse(&src, "lb.toml").unwrap_or_else(|e| panic!("{e}"));
    let a = c.pools[0].servers[0].addr;
    assert!(a.ip().is_loopback() && a.port() == 5000, "{a}");
}

#[test]
fn duration_syntax() {
    let d = |s: &str| raw_duration(s);
    assert_eq!(d("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(d("10s"), Ok(secs(10)));
    assert_eq!(d("2m"), Ok(secs(120)));
    assert_eq!(d("1h"), Ok(secs(3600)));
    assert_eq!(d(" 7s "), Ok(secs(7)));
    assert!(d("5 s").is_err());
    assert!(d("99999999999999999999s").is_err());
    assert!(d("9999999999999999h").is_err());
    assert_eq!(super::values::parse_duration(&IntOrStr::Int(3)), Ok(secs(3)));
}

fn raw_duration(s: &str) -> Result<Duration, String> {
    super::values::parse_duration(&IntOrStr::Str(s.into()))
}

#[test]
fn size_syntax() {
    let s = |v: &str| super::values::parse_size(&IntOrStr::Str(v.into()));
    assert_eq!(s("512"), Ok(512));
    assert_eq!(s("512B"), Ok(512));
    assert_eq!(s("64KiB"), Ok(65536));
    assert_eq!(s("1MiB"), Ok(1 << 20));
    assert!(s("64KB").is_err());
    assert!(s("KiB").is_err());
    let src = MINIMAL.replace("bind = ", "limits = { max_head_size = \"1GiB\" }\nbind = ");
    let e = one_error(&src);
    assert_at(&e, &src, "\"1GiB\"", "listener[0].limits.max_head_size");
}

#[test]
fn admin_mode_forms() {
    let mode = |v: &str| {
        let src = format!("[admin]\nmode = {v}\n{MINIMAL}");
        parse(&src, "lb.toml").map(|c| c.admin.mode)
    };
    assert_eq!(mode("\"0600\""), Ok(0o600));
    assert_eq!(mode("\"640\""), Ok(0o640));
    assert_eq!(mode("0o660"), Ok(0o660));
    assert_eq!(mode("384"), Ok(0o600));
    for bad in ["600", "\"0800\"", "\"\"", "-1"] {
        let e = mode(bad).unwrap_err();
        assert_eq!(e.errors[0].key, "admin.mode", "{bad}: {e}");
    }
}

#[test]
fn load_reads_files_and_reports_io_errors() {
    let dir = std::env::temp_dir().join(format!("fastlb-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lb.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    assert_eq!(load(&path).unwrap().pools[0].servers.len(), 1);
    std::fs::write(&path, MINIMAL.replace("addr = ", "weight = 300\naddr = ")).unwrap();
    let e = load(&path).unwrap_err();
    assert!(e.to_string().starts_with(&format!("{}:", path.display())), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();

    let e = load(&dir.join("missing.toml")).unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert_eq!((e.errors[0].line, e.errors[0].column), (0, 0));
    assert!(e.errors[0].message.starts_with("cannot read config"), "{e}");
}
