//! Issue 3 keys: `[pool.health]`, `[pool.agent]`, `[pool.outlier]`, pool
//! zones/fail_open/slowstart, `status_path` and `timeouts.tunnel`; valid
//! values and every invalid one with its line:column and key.

use super::*;

/// MINIMAL with `lines` at the end of the `[[pool]]` table (before its server).
fn pool_src(lines: &str) -> String {
    MINIMAL.replace("[[pool.server]]\n", &format!("{lines}\n[[pool.server]]\n"))
}

fn pool(lines: &str) -> PoolConfig {
    parse(&pool_src(lines), "lb.toml").unwrap_or_else(|e| panic!("{lines}:\n{e}")).pools.remove(0)
}

fn health(lines: &str) -> HealthCheckConfig {
    pool(&format!("[pool.health]\n{lines}")).health.expect("health check")
}

/// Asserts `e` points at the value of the source line `line` (`key = value`).
fn assert_value(e: &ConfigError, src: &str, line: &str, key: &str) {
    let at = src.find(&format!("\n{line}\n")).unwrap_or_else(|| panic!("{line:?} not a line of the source")) + 1;
    let value = line.find('=').map_or(0, |i| i + 1 + line[i + 1..].len() - line[i + 1..].trim_start().len());
    let lineno = src[..at].matches('\n').count() + 1;
    assert_eq!((e.line, e.column), (lineno, value + 1), "{line}: {e}");
    assert_eq!(e.key, key, "{line}: {e}");
}

/// Each `(lines, bad line, key, message part)` yields exactly that one error.
fn assert_pool_errors(table: &str, cases: &[(&str, &str, &str)]) {
    for &(line, key, needle) in cases {
        let src = pool_src(&format!("{table}{line}"));
        let e = one_error(&src);
        assert_value(&e, &src, line, key);
        assert!(e.message.contains(needle), "{line}: {e}");
    }
}

#[test]
fn health_type_defaults() {
    let h = health("type = \"tcp\"");
    assert_eq!(
        h,
        HealthCheckConfig {
            kind: HealthCheckKind::Tcp,
            interval: secs(3),
            fastinterval: secs(3),
            timeout: secs(1),
            fall: 3,
            rise: 2,
            port: None,
        }
    );
    assert_eq!(health("type = \"redis\"").kind, HealthCheckKind::Redis);
    assert_eq!(
        health("type = \"http\"").kind,
        HealthCheckKind::Http {
            method: "GET".into(),
            path: "/health".into(),
            host: None,
            expect_status: vec![(200, 399)],
            body_contains: None,
        }
    );
    assert_eq!(health("type = \"pgsql\"").kind, HealthCheckKind::Pgsql { user: "fastlb".into(), database: None });
    assert_eq!(pool("").health, None);
    // An inline table works as well.
    assert_eq!(pool("health = { type = \"redis\", port = 6379 }").health.unwrap().port, Some(6379));
}

#[test]
fn health_fastinterval_defaults_to_interval() {
    let h = health("type = \"tcp\"\ninterval = \"7s\"");
    assert_eq!((h.interval, h.fastinterval), (secs(7), secs(7)));
    let h = health("type = \"tcp\"\ninterval = \"7s\"\nfastinterval = \"1s\"\nport = 65535");
    assert_eq!((h.interval, h.fastinterval, h.port), (secs(7), secs(1), Some(65535)));
}

#[test]
fn expect_status_forms() {
    let expect = |v: &str| match health(&format!("type = \"http\"\nexpect_status = {v}")).kind {
        HealthCheckKind::Http { expect_status, .. } => expect_status,
        other => panic!("{other:?}"),
    };
    assert_eq!(expect("200"), [(200, 200)]);
    assert_eq!(expect("\"204\""), [(204, 204)]);
    assert_eq!(expect("\"200-399\""), [(200, 399)]);
    assert_eq!(expect("\"100-599\""), [(100, 599)]);
    assert_eq!(expect("\"301-301\""), [(301, 301)]);
    assert_eq!(expect("[200, 204, \"300-302\"]"), [(200, 200), (204, 204), (300, 302)]);
}

#[test]
fn expect_status_errors() {
    let t = "[pool.health]\ntype = \"http\"\n";
    assert_pool_errors(
        t,
        &[
            ("expect_status = 99", "pool[0].health.expect_status", "status 99 is outside 100–599"),
            ("expect_status = \"600\"", "pool[0].health.expect_status", "status 600 is outside 100–599"),
            ("expect_status = \"399-200\"", "pool[0].health.expect_status", "399 is above 200"),
            ("expect_status = \"2xx\"", "pool[0].health.expect_status", "bad status \"2xx\""),
            ("expect_status = \"200-\"", "pool[0].health.expect_status", "bad status"),
            ("expect_status = []", "pool[0].health.expect_status", "empty"),
            ("expect_status = true", "pool[0].health.expect_status", "a status (200), a range"),
        ],
    );
    // Array items are reported one by one, at the item.
    let src = pool_src(&format!("{t}expect_status = [200, \"abc\", 700]"));
    let errs = errors(&src);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_at(&errs[0], &src, "\"abc\"", "pool[0].health.expect_status[1]");
    assert_at(&errs[1], &src, "700", "pool[0].health.expect_status[2]");
}

#[test]
fn health_bad_values() {
    let t = "[pool.health]\ntype = \"http\"\n";
    assert_pool_errors(
        t,
        &[
            ("interval = \"0s\"", "pool[0].health.interval", "greater than zero"),
            ("interval = \"3x\"", "pool[0].health.interval", "unknown unit"),
            ("fastinterval = 0", "pool[0].health.fastinterval", "greater than zero"),
            ("timeout = \"0ms\"", "pool[0].health.timeout", "greater than zero"),
            ("fall = 0", "pool[0].health.fall", "fall 0 is outside 1–"),
            ("rise = -1", "pool[0].health.rise", "rise -1 is outside 1–"),
            ("port = 0", "pool[0].health.port", "port 0 is outside 1–65535"),
            ("port = 65536", "pool[0].health.port", "port 65536 is outside 1–65535"),
            ("method = \"GE T\"", "pool[0].health.method", "not an HTTP method"),
            ("method = \"\"", "pool[0].health.method", "not an HTTP method"),
            ("path = \"health\"", "pool[0].health.path", "must start with '/'"),
            ("path = \"/a b\"", "pool[0].health.path", "must start with '/'"),
            ("path = \"/%zz\"", "pool[0].health.path", "%XX"),
            ("path = \"/a#frag\"", "pool[0].health.path", "must start with '/'"),
            ("host = \"a b\"", "pool[0].health.host", "not a valid Host"),
            ("host = \"\"", "pool[0].health.host", "not a valid Host"),
            ("host = \"a/b\"", "pool[0].health.host", "not a valid Host"),
            ("body_contains = \"\"", "pool[0].health.body_contains", "empty"),
        ],
    );
    let t = "[pool.health]\ntype = \"pgsql\"\n";
    assert_pool_errors(
        t,
        &[
            ("user = \"\"", "pool[0].health.user", "non-empty"),
            ("database = \"a\\u0000b\"", "pool[0].health.database", "NUL"),
        ],
    );
    // Valid forms of the same keys.
    let h = health("type = \"http\"\nmethod = \"OPTIONS\"\npath = \"/a%20b/c;v=1?x=1&y=/z\"\nhost = \"[::1]:8080\"");
    assert!(matches!(h.kind, HealthCheckKind::Http { ref path, .. } if path == "/a%20b/c;v=1?x=1&y=/z"), "{h:?}");
}

#[test]
fn health_type_is_required_and_known() {
    let src = pool_src("[pool.health]\ninterval = \"1s\"");
    let e = one_error(&src);
    assert_at(&e, &src, "[pool.health]", "pool[0].health.type");
    assert!(e.message.contains("missing required key `type`"), "{e}");

    let src = pool_src("[pool.health]\ntype = \"udp\"");
    let e = one_error(&src);
    assert_at(&e, &src, "\"udp\"", "pool[0].health.type");
    assert!(e.message.contains("\"http\", \"tcp\", \"redis\" or \"pgsql\""), "{e}");

    let src = pool_src("[pool.health]\ntype = \"tcp\"\nexpect = 200");
    let e = one_error(&src);
    assert_at(&e, &src, "expect", "pool[0].health.expect");
    assert!(e.message.contains("unknown field `expect`"), "{e}");
}

#[test]
fn http_keys_under_other_types_are_errors_naming_the_key() {
    let http_keys = "method = \"GET\"\npath = \"/health\"\nhost = \"app.local\"\nexpect_status = \"200\"\n\
                     body_contains = \"ok\"";
    for kind in ["tcp", "redis", "pgsql"] {
        let src = pool_src(&format!("[pool.health]\ntype = \"{kind}\"\n{http_keys}"));
        let errs = errors(&src);
        assert_eq!(errs.len(), 5, "{errs:#?}");
        for (e, (key, value)) in errs.iter().zip([
            ("method", "\"GET\""),
            ("path", "\"/health\""),
            ("host", "\"app.local\""),
            ("expect_status", "\"200\""),
            ("body_contains", "\"ok\""),
        ]) {
            assert_value(e, &src, &format!("{key} = {value}"), &format!("pool[0].health.{key}"));
            assert_eq!(e.message, format!("`{key}` applies only to type = \"http\", not to type = \"{kind}\""));
        }
    }
    for kind in ["http", "tcp", "redis"] {
        let src = pool_src(&format!("[pool.health]\ntype = \"{kind}\"\nuser = \"u\"\ndatabase = \"d\""));
        let errs = errors(&src);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert_value(&errs[0], &src, "user = \"u\"", "pool[0].health.user");
        assert_value(&errs[1], &src, "database = \"d\"", "pool[0].health.database");
        assert!(errs[0].message.contains("only to type = \"pgsql\""), "{}", errs[0]);
    }
}

#[test]
fn agent_values() {
    let a = pool("[pool.agent]\nport = 9999").agent.unwrap();
    assert_eq!(a, AgentCheckConfig { port: 9999, interval: secs(5), timeout: secs(1), send: String::new() });
    // TOML's own escapes apply; a literal string keeps the backslash.
    assert_eq!(pool("[pool.agent]\nport = 1\nsend = \"status\\r\\n\"").agent.unwrap().send, "status\r\n");
    assert_eq!(pool("[pool.agent]\nport = 1\nsend = 'a\\n'").agent.unwrap().send, "a\\n");
    assert_eq!(pool("").agent, None);

    let src = pool_src("[pool.agent]\ninterval = \"1s\"");
    let e = one_error(&src);
    assert_at(&e, &src, "[pool.agent]", "pool[0].agent.port");
    assert!(e.message.contains("missing required key `port`"), "{e}");
    assert_pool_errors(
        "[pool.agent]\nport = 9999\n",
        &[
            ("interval = \"0s\"", "pool[0].agent.interval", "greater than zero"),
            ("timeout = 0", "pool[0].agent.timeout", "greater than zero"),
            ("send = 1", "pool[0].agent.send", "expected a string"),
        ],
    );
    assert_pool_errors(
        "[pool.agent]\n",
        &[
            ("port = 0", "pool[0].agent.port", "port 0 is outside 1–65535"),
            ("port = 70000", "pool[0].agent.port", "port 70000 is outside 1–65535"),
        ],
    );
}

#[test]
fn outlier_defaults_are_seeded_by_passive() {
    assert_eq!(pool("").outlier, OutlierConfig::default());
    let o = pool("[pool.passive]\nmax_fails = 5\ncooldown = \"1m\"").outlier;
    assert_eq!(
        o,
        OutlierConfig { consecutive_errors: 5, base_ejection: secs(60), max_ejection: secs(300), ..Default::default() }
    );
    // A cooldown above the default cap raises the cap instead of failing.
    let o = pool("[pool.passive]\ncooldown = \"1h\"").outlier;
    assert_eq!((o.base_ejection, o.max_ejection), (secs(3600), secs(3600)));
    // [pool.outlier] wins over [pool.passive].
    let o = pool(
        "[pool.passive]\nmax_fails = 5\ncooldown = \"1m\"\n[pool.outlier]\nconsecutive_5xx = 0\n\
         consecutive_errors = 2\nbase_ejection = \"5s\"\nmax_ejection = \"5s\"\nmax_ejection_percent = 0",
    )
    .outlier;
    assert_eq!(
        o,
        OutlierConfig {
            consecutive_5xx: 0,
            consecutive_errors: 2,
            base_ejection: secs(5),
            max_ejection: secs(5),
            max_ejection_percent: 0,
        }
    );
    let p = pool("[pool.passive]\nmax_fails = 5\ncooldown = \"1m\"");
    assert_eq!(p.passive, PassiveConfig { max_fails: 5, cooldown: secs(60) });
}

#[test]
fn outlier_bad_values() {
    assert_pool_errors(
        "[pool.outlier]\n",
        &[
            ("consecutive_5xx = -1", "pool[0].outlier.consecutive_5xx", "outside 0–"),
            ("consecutive_errors = 0", "pool[0].outlier.consecutive_errors", "outside 1–"),
            ("base_ejection = \"soon\"", "pool[0].outlier.base_ejection", "bad duration"),
            ("max_ejection = \"5s\"", "pool[0].outlier.max_ejection", "max_ejection 5s is below base_ejection 10s"),
            ("max_ejection_percent = 101", "pool[0].outlier.max_ejection_percent", "outside 0–100"),
        ],
    );
    // The base may come from [pool.passive].
    let src = pool_src("[pool.passive]\ncooldown = \"1m\"\n[pool.outlier]\nmax_ejection = \"30s\"");
    let e = one_error(&src);
    assert_value(&e, &src, "max_ejection = \"30s\"", "pool[0].outlier.max_ejection");
}

#[test]
fn pool_zone_and_failover_values() {
    let p =
        pool("fail_open = true\nslowstart = \"1m\"\nzones = [\"eu-west\", \"eu-east\"]\nzone_failover_threshold = 1");
    assert!(p.fail_open);
    assert_eq!(p.slowstart, secs(60));
    assert_eq!(p.zones, ["eu-west", "eu-east"]);
    assert_eq!(p.zone_failover_threshold, 1.0);
    assert_eq!(pool("zone_failover_threshold = 0").zone_failover_threshold, 0.0);
    assert_eq!(pool("zone_failover_threshold = 0.75").zone_failover_threshold, 0.75);
    let p = pool("");
    assert_eq!((p.fail_open, p.slowstart, p.zones.len(), p.zone_failover_threshold), (false, secs(0), 0, 0.5));
    // A server zone that `zones` does not list is fine: it goes last.
    let src = pool_src("zones = [\"a\"]").replace("addr = ", "zone = \"b\"\naddr = ");
    assert_eq!(parse(&src, "lb.toml").unwrap().pools[0].servers[0].zone.as_deref(), Some("b"));
}

#[test]
fn pool_zone_and_failover_errors() {
    assert_pool_errors(
        "",
        &[
            ("slowstart = \"-1s\"", "pool[0].slowstart", "negative"),
            ("fail_open = 1", "pool[0].fail_open", "expected true or false"),
            ("zone_failover_threshold = 1.5", "pool[0].zone_failover_threshold", "1.5 is outside 0.0–1.0"),
            ("zone_failover_threshold = -0.1", "pool[0].zone_failover_threshold", "outside 0.0–1.0"),
            ("zone_failover_threshold = nan", "pool[0].zone_failover_threshold", "outside 0.0–1.0"),
            ("zone_failover_threshold = \"half\"", "pool[0].zone_failover_threshold", "expected"),
            ("zones = \"eu\"", "pool[0].zones", "expected an array"),
        ],
    );
    let src = pool_src("zones = [\"a\", \"b c\", \"a\", \"\"]");
    let errs = errors(&src);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert_at(&errs[0], &src, "\"b c\"", "pool[0].zones[1]");
    let (line, col) = pos(&src, "\"a\", \"\"");
    assert_eq!((errs[1].line, errs[1].column, errs[1].key.as_str()), (line, col, "pool[0].zones[2]"));
    assert!(errs[1].message.contains("duplicate zone \"a\"; zones[0]"), "{}", errs[1]);
    assert_at(&errs[2], &src, "\"\"]", "pool[0].zones[3]");
}

#[test]
fn listener_status_path_and_tunnel() {
    let listener = |lines: &str| {
        let src = MINIMAL.replace("bind = ", &format!("{lines}\nbind = "));
        parse(&src, "lb.toml").unwrap_or_else(|e| panic!("{e}")).listeners.remove(0)
    };
    let l = listener("status_path = \"/proxy/status\"\ntimeouts = { tunnel = \"30m\" }");
    assert_eq!(l.status_path.as_deref(), Some("/proxy/status"));
    assert_eq!(l.timeouts.tunnel, secs(1800));
    let l = listener("");
    assert_eq!((l.status_path, l.timeouts.tunnel), (None, secs(3600)));
    assert_eq!(listener("status_path = \"/\"").status_path.as_deref(), Some("/"));

    for (line, key, needle) in [
        ("status_path = \"proxy/status\"", "listener[0].status_path", "must be a path starting with '/'"),
        ("status_path = \"/status?full\"", "listener[0].status_path", "no query"),
        ("status_path = \"/a b\"", "listener[0].status_path", "starting with '/'"),
        ("status_path = \"\"", "listener[0].status_path", "starting with '/'"),
        ("mode = \"tcp\"\nstatus_path = \"/s\"", "listener[0].status_path", "needs mode = \"http\""),
    ] {
        let src = MINIMAL.replace("bind = ", &format!("{line}\nbind = "));
        let e = one_error(&src);
        assert_value(&e, &src, line.rsplit('\n').next().unwrap(), key);
        assert!(e.message.contains(needle), "{line}: {e}");
    }
    for (value, needle) in [("\"0s\"", "greater than zero"), ("\"1d\"", "unknown unit")] {
        let src = MINIMAL.replace("[[pool]]", &format!("[listener.timeouts]\ntunnel = {value}\n\n[[pool]]"));
        let e = one_error(&src);
        assert_value(&e, &src, &format!("tunnel = {value}"), "listener[0].timeouts.tunnel");
        assert!(e.message.contains(needle), "{value}: {e}");
    }
}
