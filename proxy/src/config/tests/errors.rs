//! Configs that fail: each error kind, where it points, and that all of
//! them are reported together.

use super::*;

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
    let src = MINIMAL.replace("[[pool]]\n", "[[pool]]\nsticky = { cookie = \"A\", maxage = 3 }\n");
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
    assert_eq!(e.to_string(), format!("lb.toml:{line}:{col}: pool[0].server[0].weight: weight 300 is outside 0–256"));
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
    let src = MINIMAL.replace("bind = \"127.0.0.1:8000\"", "").replace("addr = \"127.0.0.1:5000\"", "");
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
        (src[..at].matches('\n').count() + 1, at - src[..at].rfind('\n').unwrap())
    };
    assert_eq!((errs[0].line, errs[0].column), nth("\"web\"", 2));
    assert_eq!(errs[0].key, "listener[1].name");
    assert!(errs[0].message.contains("duplicate listener name \"web\""), "{}", errs[0]);
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
    let src = format!("{MINIMAL}[[pool]]\nname = \"b\"\n[[pool.server]]\naddr = \"127.0.0.1:5001\"\n");
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
    let src = MINIMAL.replace("[[pool]]\n", "[[pool]]\nname = \"my pool\"\nsticky = { cookie = \"a;b\" }\n");
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
fn columns_count_characters_not_bytes() {
    let src = MINIMAL.replace("[[pool]]\n", "[[pool]]\nsticky = { cookie = \"é\", x = 1 }\n");
    let e = one_error(&src);
    assert_eq!((e.line, e.column), (pos(&src, "sticky").0, 26), "{e}");
    assert_eq!(e.key, "pool[0].sticky.x");
}

#[test]
fn duplicate_keys_are_named() {
    let src = format!("[runtime]\nworkers = 2\nworkers = 3\n{MINIMAL}");
    let e = one_error(&src);
    assert_eq!((e.line, e.column), (3, 1), "{e}");
    assert_eq!(e.message, "duplicate key `workers`");
}
