//! Config parsing: typed values, defaults, and every error kind with its
//! line:column and key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::IntOrStr;
use super::*;

const MINIMAL: &str = r#"
[[listener]]
bind = "127.0.0.1:8000"

[[pool]]
[[pool.server]]
addr = "127.0.0.1:5000"
"#;

fn errors(src: &str) -> Vec<ConfigError> {
    match parse(src, "lb.toml") {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(e) => {
            assert!(!e.errors.is_empty());
            e.errors
        }
    }
}

/// The only error; panics (showing all) when there are more.
fn one_error(src: &str) -> ConfigError {
    let mut errs = errors(src);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.remove(0)
}

/// 1-based line:column of the first occurrence of `needle` in `src`.
fn pos(src: &str, needle: &str) -> (usize, usize) {
    let at = src
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in source"));
    let line = src[..at].matches('\n').count() + 1;
    let col = at - src[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

fn assert_at(e: &ConfigError, src: &str, needle: &str, key: &str) {
    assert_eq!((e.line, e.column), pos(src, needle), "{e}");
    assert_eq!(e.key, key, "{e}");
    assert_eq!(e.origin, "lb.toml");
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

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
[listener.limits]
max_head_size = "32KiB"
max_headers = 50
max_uri_length = 2048
max_connections = 500
[listener.timeouts]
client_header = "5s"
keepalive = "0s"
client_body = "250ms"

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
        },
    };
    let mut tcp = ListenerConfig::http("listener-2", addr("[::1]:9000"), "app");
    tcp.mode = ListenerMode::Tcp;

    let mut a1 = ServerConfig::new("a1", addr("10.0.0.1:80"));
    a1.weight = 0;
    a1.zone = Some("eu-west".into());
    a1.backup = true;
    a1.tags = vec!["canary".into(), "v2".into()];
    let app = PoolConfig {
        name: "app".into(),
        strategy: StrategyKind::WeightedRoundRobin,
        hash_key: HashKey::Header("x-user".into()),
        sticky: Some(StickyConfig::default()),
        retries: 0,
        timeouts: PoolTimeouts {
            connect: secs(1),
            response: secs(120),
        },
        keepalive: KeepaliveConfig {
            max_idle: 0,
            idle_timeout: secs(90),
        },
        passive: PassiveConfig {
            max_fails: 5,
            cooldown: secs(3600),
        },
        servers: vec![a1, ServerConfig::new("server-2", addr("10.0.0.2:80"))],
    };
    let mut api_server = ServerConfig::new("server-1", addr("10.0.1.1:8080"));
    api_server.weight = 256;
    let mut api = PoolConfig::new("api", vec![api_server]);
    api.strategy = StrategyKind::ConsistentHash;
    api.hash_key = HashKey::Cookie("session".into());
    api.sticky = Some(StickyConfig {
        cookie: "SERVERID".into(),
        max_age: Some(secs(3600)),
    });

    let expected = Config {
        runtime: RuntimeConfig {
            workers: 3,
            pin_workers: false,
            log_level: "fastlb=debug".into(),
            access_log: true,
            drain_timeout: secs(60),
        },
        admin: AdminConfig {
            socket: PathBuf::from("/run/fastlb/admin.sock"),
            mode: 0o660,
        },
        listeners: vec![web, tcp],
        pools: vec![app, api],
    };
    assert_eq!(c, expected);
}

#[test]
fn minimal_config_takes_defaults() {
    let c = parse(MINIMAL, "lb.toml").unwrap_or_else(|e| panic!("{e}"));
    let expected = Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: vec![ListenerConfig::http(
            "listener-1",
            addr("127.0.0.1:8000"),
            "pool-1",
        )],
        pools: vec![PoolConfig::new(
            "pool-1",
            vec![ServerConfig::new("server-1", addr("127.0.0.1:5000"))],
        )],
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
    let src = include_str!("../../../examples/lb.toml");
    let c = parse(src, "examples/lb.toml").unwrap_or_else(|e| panic!("{e}"));
    // The example shows defaults, so apart from names and the second
    // server it must equal an all-defaults config.
    let servers = vec![
        ServerConfig::new("s1", addr("127.0.0.1:5000")),
        ServerConfig::new("s2", addr("127.0.0.1:5001")),
    ];
    let expected = Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: vec![ListenerConfig::http("web", addr("127.0.0.1:8000"), "app")],
        pools: vec![PoolConfig::new("app", servers)],
    };
    assert_eq!(c, expected);
}

#[test]
fn sticky_forms() {
    let with = |sticky: &str| {
        let src = MINIMAL.replace("[[pool]]\n", &format!("[[pool]]\n{sticky}\n"));
        parse(&src, "lb.toml")
            .unwrap_or_else(|e| panic!("{e}"))
            .pools
            .remove(0)
            .sticky
    };
    assert_eq!(with("sticky = false"), None);
    assert_eq!(with("sticky = true"), Some(StickyConfig::default()));
    assert_eq!(
        with("sticky = { max_age = 30 }"),
        Some(StickyConfig {
            cookie: DEFAULT_STICKY_COOKIE.into(),
            max_age: Some(secs(30))
        })
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
    assert_eq!(
        with("strategy = \"url_hash\"").unwrap().hash_key,
        HashKey::Uri
    );
    assert_eq!(
        with("strategy = \"uri\"\nhash_key = \"path\"")
            .unwrap()
            .hash_key,
        HashKey::Path
    );
    assert_eq!(
        with("strategy = \"ip_hash\"").unwrap().hash_key,
        HashKey::ClientIp
    );
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
        let src = MINIMAL.replace(
            "[[pool]]\n",
            &format!("[[pool]]\nstrategy = \"{}\"\n", kind.name()),
        );
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
fn listener_bind_may_use_port_zero_but_servers_may_not() {
    let src = MINIMAL.replace("127.0.0.1:8000", "127.0.0.1:0");
    assert_eq!(parse(&src, "lb.toml").unwrap().listeners[0].bind.port(), 0);
    let src = MINIMAL.replace("127.0.0.1:5000", "127.0.0.1:0");
    let e = one_error(&src);
    assert_at(&e, &src, "\"127.0.0.1:0\"", "pool[0].server[0].addr");
}

#[test]
fn unknown_key_names_key_and_expected_keys() {
    let src = MINIMAL.replace("addr = ", "weigth = 2\naddr = ");
    let e = one_error(&src);
    assert_at(&e, &src, "weigth", "pool[0].server[0].weigth");
    assert!(e.message.contains("unknown field `weigth`"), "{e}");
    assert!(e.message.contains("`weight`"), "{e}");
}

#[test]
fn unknown_key_in_inline_sticky_table() {
    let src = MINIMAL.replace(
        "[[pool]]\n",
        "[[pool]]\nsticky = { cookie = \"A\", maxage = 3 }\n",
    );
    let e = one_error(&src);
    assert_at(&e, &src, "maxage", "pool[0].sticky.maxage");
    assert!(e.message.contains("`max_age`"), "{e}");
}

#[test]
fn wrong_type_is_reported_at_the_value() {
    let src = MINIMAL.replace("[[pool]]\n", "[[pool]]\nretries = \"two\"\n");
    let e = one_error(&src);
    assert_at(&e, &src, "\"two\"", "pool[0].retries");
    assert!(e.message.contains("expected an integer"), "{e}");
}

#[test]
fn unknown_strategy_lists_valid_names() {
    let src = MINIMAL.replace("[[pool]]\n", "[[pool]]\nstrategy = \"fastest\"\n");
    let e = one_error(&src);
    assert_at(&e, &src, "\"fastest\"", "pool[0].strategy");
    for kind in StrategyKind::ALL {
        assert!(e.message.contains(kind.name()), "{e}");
    }
}

#[test]
fn weight_out_of_range() {
    let src = MINIMAL.replace("addr = ", "weight = 300\naddr = ");
    let e = one_error(&src);
    assert_at(&e, &src, "300", "pool[0].server[0].weight");
    assert_eq!(e.message, "weight 300 is outside 0–256");
    let (line, col) = pos(&src, "300");
    assert_eq!(
        e.to_string(),
        format!("lb.toml:{line}:{col}: pool[0].server[0].weight: weight 300 is outside 0–256")
    );
}

#[test]
fn bad_addresses() {
    for (bad, needle) in [
        ("127.0.0.1", "no port"),
        ("127.0.0.1:99999", "port"),
        (":80", "no host"),
        ("no-such-host.invalid:80", "does not resolve"),
    ] {
        let src = MINIMAL.replace("127.0.0.1:5000", bad);
        let e = one_error(&src);
        assert_at(&e, &src, &format!("\"{bad}\""), "pool[0].server[0].addr");
        assert!(e.message.contains(needle), "{e}");
    }
    let src = MINIMAL.replace("127.0.0.1:8000", "localhost");
    assert_at(&one_error(&src), &src, "\"localhost\"", "listener[0].bind");
}

#[test]
fn missing_required_keys() {
    let src = MINIMAL
        .replace("bind = \"127.0.0.1:8000\"", "")
        .replace("addr = \"127.0.0.1:5000\"", "");
    let errs = errors(&src);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_at(&errs[0], &src, "[[listener]]", "listener[0].bind");
    assert_at(&errs[1], &src, "[[pool.server]]", "pool[0].server[0].addr");
}

#[test]
fn duplicate_names() {
    let src = r#"
[[listener]]
name = "web"
bind = "127.0.0.1:8000"
pool = "app"
[[listener]]
name = "web"
bind = "127.0.0.1:8001"
pool = "app"

[[pool]]
name = "app"
[[pool.server]]
name = "s1"
addr = "127.0.0.1:5000"
[[pool.server]]
name = "s1"
addr = "127.0.0.1:5001"

[[pool]]
name = "app"
[[pool.server]]
addr = "127.0.0.1:5002"
"#;
    let errs = errors(src);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    // Sorted by position: the second listener, the second server, the second pool.
    // 1-based line:column of the n-th (1-based) occurrence of `needle`.
    let nth = |needle: &str, n: usize| {
        let at = src.match_indices(needle).nth(n - 1).unwrap().0;
        (
            src[..at].matches('\n').count() + 1,
            at - src[..at].rfind('\n').unwrap(),
        )
    };
    assert_eq!((errs[0].line, errs[0].column), nth("\"web\"", 2));
    assert_eq!(errs[0].key, "listener[1].name");
    assert!(
        errs[0].message.contains("duplicate listener name \"web\""),
        "{}",
        errs[0]
    );
    assert_eq!((errs[1].line, errs[1].column), nth("\"s1\"", 2));
    assert_eq!(errs[1].key, "pool[0].server[1].name");
    assert_eq!((errs[2].line, errs[2].column), nth("\"app\"", 4));
    assert_eq!(errs[2].key, "pool[1].name");
}

#[test]
fn duplicate_default_names_point_at_the_table() {
    let src = MINIMAL.replace(
        "[[pool.server]]\n",
        "[[pool.server]]\naddr = \"127.0.0.1:5001\"\n[[pool.server]]\nname = \"server-1\"\n",
    );
    let e = one_error(&src);
    assert_at(&e, &src, "\"server-1\"", "pool[0].server[1].name");
}

#[test]
fn duplicate_bind() {
    let src = format!("{MINIMAL}[[listener]]\nbind = \"127.0.0.1:8000\"\n");
    let e = one_error(&src);
    assert_eq!(e.key, "listener[1].bind");
    assert_eq!(e.line, src.lines().count());
}

#[test]
fn missing_pool_reference() {
    let src = MINIMAL.replace("bind = ", "pool = \"ap\"\nbind = ");
    let e = one_error(&src);
    assert_at(&e, &src, "\"ap\"", "listener[0].pool");
    assert!(e.message.contains("\"pool-1\""), "{e}");
}

#[test]
fn pool_may_be_omitted_only_with_one_pool() {
    let src =
        format!("{MINIMAL}[[pool]]\nname = \"b\"\n[[pool.server]]\naddr = \"127.0.0.1:5001\"\n");
    let e = one_error(&src);
    assert_at(&e, &src, "[[listener]]", "listener[0].pool");
}

#[test]
fn bad_durations() {
    for (value, needle) in [
        ("\"10x\"", "unknown unit \"x\""),
        ("\"\"", "empty"),
        ("\"-5s\"", "negative"),
        ("-5", "negative"),
        ("\"1.5s\"", "whole numbers"),
        ("\"10\"", "missing unit"),
        ("\"s\"", "whole number"),
        ("\"0s\"", "greater than zero"),
        ("true", "expected an integer or a string"),
    ] {
        let src = format!(
            "[[listener]]\nbind = \"127.0.0.1:8000\"\n[listener.timeouts]\nclient_header = {value}\n\
             [[pool]]\n[[pool.server]]\naddr = \"127.0.0.1:5000\"\n"
        );
        let e = one_error(&src);
        assert_eq!((e.line, e.column), (4, 17), "{e}");
        assert_eq!(e.key, "listener[0].timeouts.client_header");
        assert!(e.message.contains(needle), "{value}: {e}");
    }
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
    assert_eq!(
        super::values::parse_duration(&IntOrStr::Int(3)),
        Ok(secs(3))
    );
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
fn runtime_ranges() {
    for (v, key) in [
        ("workers = 0", "runtime.workers"),
        ("workers = 1025", "runtime.workers"),
        ("log_level = \"\"", "runtime.log_level"),
    ] {
        let src = format!("[runtime]\n{v}\n{MINIMAL}");
        assert_eq!(one_error(&src).key, key);
    }
    let src = format!("[admin]\nsocket = \"/{}\"\n{MINIMAL}", "x".repeat(120));
    assert_eq!(one_error(&src).key, "admin.socket");
}

#[test]
fn bad_names_and_cookie() {
    let src = MINIMAL.replace(
        "[[pool]]\n",
        "[[pool]]\nname = \"my pool\"\nsticky = { cookie = \"a;b\" }\n",
    );
    let errs = errors(&src);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_at(&errs[0], &src, "\"my pool\"", "pool[0].name");
    assert_at(&errs[1], &src, "\"a;b\"", "pool[0].sticky.cookie");
}

#[test]
fn pool_without_servers() {
    let src = "[[listener]]\nbind = \"127.0.0.1:8000\"\n[[pool]]\nname = \"empty\"\n";
    let e = one_error(src);
    assert_at(&e, src, "[[pool]]", "pool[0].server");
    assert!(e.message.contains("has no servers"), "{e}");
}

#[test]
fn empty_file_needs_listener_and_pool() {
    let errs = errors("");
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs.iter().all(|e| e.line == 0 && e.column == 0));
    let text = ConfigErrors { errors: errs }.to_string();
    assert_eq!(
        text,
        "lb.toml: pool: no [[pool]] defined; at least one is required\n\
         lb.toml: listener: no [[listener]] defined; at least one is required"
    );
}

#[test]
fn syntax_errors_are_all_reported() {
    let src = "[[listener]]\nbind = \"127.0.0.1:8000\nbacklog = 3\n[[pool]\n";
    let errs = errors(src);
    assert!(errs.len() >= 2, "{errs:#?}");
    assert_eq!((errs[0].line, errs[0].column), (2, 23), "{}", errs[0]);
    assert!(errs.iter().any(|e| e.line == 4), "{errs:#?}");
}

#[test]
fn single_syntax_error_location() {
    let src = "[runtime]\nworkers = = 2\n";
    let e = one_error(src);
    assert_eq!((e.line, e.column), (2, 11), "{e}");
}

#[test]
fn many_validation_errors_come_back_together_in_source_order() {
    let src = r#"
[runtime]
workers = 0
drain_timeout = "soon"

[[listener]]
bind = "127.0.0.1"
pool = "nope"

[[pool]]
name = "app"
strategy = "fastest"
[pool.timeouts]
connect = "3 weeks"
[[pool.server]]
addr = "127.0.0.1:5000"
weight = 300
"#;
    let errs = errors(src);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "runtime.workers",
            "runtime.drain_timeout",
            "listener[0].bind",
            "listener[0].pool",
            "pool[0].strategy",
            "pool[0].timeouts.connect",
            "pool[0].server[0].weight",
        ]
    );
    let text = parse(src, "lb.toml").unwrap_err().to_string();
    assert_eq!(text.lines().count(), 7);
    assert!(text.lines().all(|l| l.starts_with("lb.toml:")), "{text}");
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
    assert!(
        e.to_string().starts_with(&format!("{}:", path.display())),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let e = load(&dir.join("missing.toml")).unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert_eq!((e.errors[0].line, e.errors[0].column), (0, 0));
    assert!(e.errors[0].message.starts_with("cannot read config"), "{e}");
}

#[test]
fn columns_count_characters_not_bytes() {
    let src = MINIMAL.replace(
        "[[pool]]\n",
        "[[pool]]\nsticky = { cookie = \"é\", x = 1 }\n",
    );
    let e = one_error(&src);
    assert_eq!((e.line, e.column), (pos(&src, "sticky").0, 26), "{e}");
    assert_eq!(e.key, "pool[0].sticky.x");
}
