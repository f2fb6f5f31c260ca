//! `[plugins]` and a pool's plugin keys: forms that parse, and each invalid
//! value with its line:column and key.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;

/// `MINIMAL` with `plugins` before it and `pool` lines in its `[[pool]]`.
fn src_with(plugins: &str, pool: &str) -> String {
    format!("{plugins}\n{}", MINIMAL.replace("[[pool]]\n", &format!("[[pool]]\n{pool}\n")))
}

const DIR: &str = "[plugins]\ndir = \"/nonexistent/fastlb-plugins\"";

fn pool_with(pool: &str) -> PoolConfig {
    parse(&src_with(DIR, pool), "lb.toml").unwrap_or_else(|e| panic!("{pool}:\n{e}")).pools.remove(0)
}

#[test]
fn plugins_default_off() {
    let c = parse(MINIMAL, "lb.toml").unwrap();
    assert_eq!(c.plugins, PluginsConfig::default());
    assert_eq!(c.plugins.dir, None);
    assert_eq!(c.pools[0].plugin, None);
    // An empty table is still off.
    assert_eq!(parse(&src_with("[plugins]", ""), "lb.toml").unwrap().plugins, PluginsConfig::default());
}

#[test]
fn every_plugins_key() {
    let src = src_with(
        "[plugins]\ndir = \"/srv/fastlb/plugins\"\npoll_interval = \"2s\"\ncall_timeout = \"10ms\"\n\
         memory_limit = \"16MiB\"\nmax_failures = 3",
        "",
    );
    let c = parse(&src, "lb.toml").unwrap_or_else(|e| panic!("{e}"));
    let expected = PluginsConfig {
        dir: Some(PathBuf::from("/srv/fastlb/plugins")),
        poll_interval: secs(2),
        call_timeout: Duration::from_millis(10),
        memory_limit: 16 << 20,
        max_failures: 3,
    };
    assert_eq!(c.plugins, expected);

    // The bounds themselves are accepted.
    let bounds = |lines: &str| parse(&src_with(&format!("[plugins]\n{lines}"), ""), "lb.toml").map(|c| c.plugins);
    let p = bounds("call_timeout = \"1ms\"\nmemory_limit = \"64KiB\"\nmax_failures = 1").unwrap();
    assert_eq!((p.call_timeout, p.memory_limit, p.max_failures), (Duration::from_millis(1), 65536, 1));
    let p = bounds("call_timeout = 10\nmemory_limit = \"4GiB\"\npoll_interval = \"1ms\"").unwrap();
    assert_eq!((p.call_timeout, p.memory_limit, p.poll_interval), (secs(10), 4 << 30, Duration::from_millis(1)));
    assert_eq!(bounds("memory_limit = 1048576").unwrap().memory_limit, 1 << 20);
}

#[test]
fn relative_dir_is_resolved_against_the_config_files_directory() {
    let dir = |origin: &str, value: &str| {
        let src = src_with(&format!("[plugins]\ndir = \"{value}\""), "");
        parse(&src, origin).unwrap_or_else(|e| panic!("{e}")).plugins.dir.unwrap()
    };
    assert_eq!(dir("/etc/fastlb/lb.toml", "plugins"), Path::new("/etc/fastlb/plugins"));
    assert_eq!(dir("/etc/fastlb/lb.toml", "../wasm"), Path::new("/etc/fastlb/../wasm"));
    assert_eq!(dir("conf/lb.toml", "plugins"), Path::new("conf/plugins"));
    // A bare file name: relative to the working directory, like the file.
    assert_eq!(dir("lb.toml", "plugins"), Path::new("plugins"));
    // Absolute paths stay.
    assert_eq!(dir("/etc/fastlb/lb.toml", "/var/lib/plugins"), Path::new("/var/lib/plugins"));

    // An existing directory is fine.
    let manifest = env!("CARGO_MANIFEST_DIR");
    assert_eq!(dir(&format!("{manifest}/lb.toml"), "src"), Path::new(manifest).join("src"));

    // `load` resolves against the file's directory.
    let tmp = std::env::temp_dir().join(format!("fastlb-plugins-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let path = tmp.join("lb.toml");
    std::fs::write(&path, src_with("[plugins]\ndir = \"wasm\"", "strategy = \"plugin:p\"")).unwrap();
    let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.plugins.dir, Some(tmp.join("wasm")));
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn dir_that_is_a_file() {
    let origin = format!("{}/lb.toml", env!("CARGO_MANIFEST_DIR"));
    let src = src_with("[plugins]\ndir = \"Cargo.toml\"", "");
    let e = parse(&src, &origin).unwrap_err();
    assert_eq!(e.errors.len(), 1, "{e}");
    let e = &e.errors[0];
    assert_eq!((e.line, e.column), pos(&src, "\"Cargo.toml\""), "{e}");
    assert_eq!(e.key, "plugins.dir");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    assert_eq!(e.message, format!("\"{}\" exists and is not a directory", file.display()));
}

#[test]
fn bad_plugins_values() {
    for (line, needle, msg) in [
        ("dir = \"\"", "\"\"", "dir is empty"),
        ("dir = 5", "5", "expected a string"),
        ("poll_interval = \"0s\"", "\"0s\"", "greater than zero"),
        ("poll_interval = \"often\"", "\"often\"", "bad duration"),
        ("call_timeout = \"0ms\"", "\"0ms\"", "call_timeout 0ns is outside 1ms–10s"),
        ("call_timeout = \"11s\"", "\"11s\"", "call_timeout 11s is outside 1ms–10s"),
        ("call_timeout = -1", "-1", "negative"),
        ("memory_limit = \"32KiB\"", "\"32KiB\"", "memory_limit 32768 is outside 65536–4294967296 bytes"),
        ("memory_limit = \"5GiB\"", "\"5GiB\"", "outside"),
        ("memory_limit = \"4MB\"", "\"4MB\"", "unknown unit"),
        ("memory_limit = 65535", "65535", "outside"),
        ("max_failures = 0", "0", "max_failures 0 is outside 1–4294967295"),
        ("max_failures = 4294967296", "4294967296", "outside"),
        ("max_failure = 3", "max_failure", "unknown field `max_failure`"),
    ] {
        let src = src_with(&format!("[plugins]\n{line}"), "");
        let e = one_error(&src);
        let key = format!("plugins.{}", line.split(' ').next().unwrap());
        // [plugins] comes first, so the needle's first occurrence is the value.
        assert_at(&e, &src, needle, &key);
        assert!(e.message.contains(msg), "{line}: {e}");
    }
}

#[test]
fn pool_plugin_forms() {
    let p = pool_with("strategy = \"plugin:least-latency\"");
    assert_eq!(p.plugin, Some(PoolPlugin { name: "least-latency".into(), config_json: "{}".into() }));
    assert_eq!(p.strategy, StrategyKind::RoundRobin, "default fallback");
    assert_eq!(p.hash_key, HashKey::ClientIp);

    let p = pool_with(
        "strategy = \"plugin:canary_v2.1\"\nfallback = \"lc\"\nhash_key = \"header:X-Tenant\"\n\
         plugin_config = { percent = 10, header = \"x-tenant\" }",
    );
    assert_eq!(p.plugin.as_ref().unwrap().name, "canary_v2.1");
    assert_eq!(p.strategy, StrategyKind::LeastConnections);
    assert_eq!(p.hash_key, HashKey::Header("x-tenant".into()), "hash_key still applies");
    let json: serde_json::Value = serde_json::from_str(&p.plugin.unwrap().config_json).unwrap();
    assert_eq!(json, json!({ "percent": 10, "header": "x-tenant" }));

    // Compact, nested, every TOML type; datetimes become strings.
    let p = pool_with(
        "strategy = \"plugin:p\"\nfallback = \"url_hash\"\n[pool.plugin_config]\nratio = 0.25\non = true\n\
         since = 2024-05-01T10:00:00Z\nday = 2024-05-01\nlist = [1, \"two\", [3], { four = 4 }]\n\
         [pool.plugin_config.tiers.gold]\nweight = 3\n",
    );
    assert_eq!(p.strategy, StrategyKind::UrlHash);
    assert_eq!(p.hash_key, HashKey::Uri, "the fallback's default hash_key");
    let config_json = p.plugin.unwrap().config_json;
    assert!(!config_json.contains(' ') && !config_json.contains('\n'), "{config_json}");
    let json: serde_json::Value = serde_json::from_str(&config_json).unwrap();
    assert_eq!(
        json,
        json!({
            "ratio": 0.25,
            "on": true,
            "since": "2024-05-01T10:00:00Z",
            "day": "2024-05-01",
            "list": [1, "two", [3], { "four": 4 }],
            "tiers": { "gold": { "weight": 3 } },
        })
    );
    assert_eq!(
        pool_with("strategy = \"plugin:p\"\nplugin_config = { a = { b = [1] } }").plugin.unwrap().config_json,
        r#"{"a":{"b":[1]}}"#
    );
    assert_eq!(pool_with("strategy = \"plugin:p\"\nplugin_config = {}").plugin.unwrap().config_json, "{}");

    // A 64-character name is the longest.
    let long = "n".repeat(64);
    assert_eq!(pool_with(&format!("strategy = \"plugin:{long}\"")).plugin.unwrap().name, long);
}

#[test]
fn bad_pool_plugin_values() {
    let long = format!("\"plugin:{}\"", "n".repeat(65));
    for (plugins, pool, needle, key, msg) in [
        (DIR, "strategy = \"plugin:\"", "\"plugin:\"", "strategy", "plugin name \"\" must be 1–64"),
        (DIR, "strategy = \"plugin:a/b\"", "\"plugin:a/b\"", "strategy", "must be 1–64 letters"),
        (DIR, &format!("strategy = {long}"), &long, "strategy", "must be 1–64 letters"),
        (DIR, "strategy = \"Plugin:x\"", "\"Plugin:x\"", "strategy", "or plugin:NAME"),
        ("", "strategy = \"plugin:x\"", "\"plugin:x\"", "strategy", "plugins need [plugins] dir"),
        ("[plugins]\nmax_failures = 2", "strategy = \"plugin:x\"", "\"plugin:x\"", "strategy", "[plugins] dir"),
        (DIR, "fallback = \"rr\"", "\"rr\"", "fallback", "fallback is only valid with strategy = \"plugin:NAME\""),
        (DIR, "strategy = \"lc\"\nfallback = \"rr\"", "\"rr\"", "fallback", "only valid with"),
        (DIR, "plugin_config = {}", "{}", "plugin_config", "plugin_config is only valid with"),
        (DIR, "strategy = \"random\"\nplugin_config = { a = 1 }", "{ a", "plugin_config", "only valid with"),
        (DIR, "strategy = \"plugin:x\"\nfallback = \"fastest\"", "\"fastest\"", "fallback", "not a built-in strategy"),
        (
            DIR,
            "strategy = \"plugin:x\"\nfallback = \"plugin:y\"",
            "\"plugin:y\"",
            "fallback",
            "not a built-in strategy",
        ),
        (DIR, "strategy = \"plugin:x\"\nplugin_config = 5", "5", "plugin_config", "invalid type"),
        (DIR, "strategy = \"plugin:x\"\nplugin_config = { a = [1, nan] }", "{ a", "plugin_config.a[1]", "NaN"),
        (DIR, "strategy = \"plugin:x\"\nplugin_config = { b = { c = inf } }", "{ b", "plugin_config.b.c", "inf"),
        (DIR, "strategy = \"plugin:x\"\nhash_key = \"cookie:\"", "\"cookie:\"", "hash_key", "not a valid cookie"),
    ] {
        let src = src_with(plugins, pool);
        let e = one_error(&src);
        assert_at(&e, &src, needle, &format!("pool[0].{key}"));
        assert!(e.message.contains(msg), "{pool}: {e}");
    }
    // Every built-in fallback is listed.
    let e = one_error(&src_with(DIR, "strategy = \"plugin:x\"\nfallback = \"fastest\""));
    for kind in StrategyKind::ALL {
        assert!(e.message.contains(kind.name()), "{e}");
    }
}

#[test]
fn bad_dir_is_reported_once_not_again_per_plugin_pool() {
    let src = src_with("[plugins]\ndir = \"\"", "strategy = \"plugin:x\"");
    assert_at(&one_error(&src), &src, "\"\"", "plugins.dir");
}

#[test]
fn plugin_errors_come_with_the_others() {
    let src =
        src_with("[plugins]\ncall_timeout = \"1h\"", "strategy = \"plugin:x\"\nfallback = \"nope\"\nretries = -1");
    let keys: Vec<String> = errors(&src).into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["plugins.call_timeout", "pool[0].strategy", "pool[0].fallback", "pool[0].retries"]);
}

/// The example's commented `[plugins]` block and pool plugin keys are
/// complete: uncommented (with a plugin strategy), they parse to the defaults.
#[test]
fn example_plugin_keys_parse_when_uncommented() {
    let src = include_str!("../../../../examples/lb.toml");
    let mut out = String::new();
    let mut in_block = false;
    for line in src.lines() {
        if line == "# [plugins]" {
            in_block = true;
        } else if !line.starts_with('#') {
            in_block = false;
        }
        let line = match line {
            "strategy = \"round_robin\"" => "strategy = \"plugin:least-latency\"",
            l if in_block || l.starts_with("# fallback = ") || l.starts_with("# plugin_config = ") => &l[2..],
            l => l,
        };
        out.push_str(line);
        out.push('\n');
    }
    let c = parse(&out, "examples/lb.toml").unwrap_or_else(|e| panic!("{e}\n{out}"));
    let expected = PluginsConfig { dir: Some(PathBuf::from("examples/plugins")), ..PluginsConfig::default() };
    assert_eq!(c.plugins, expected);
    assert_eq!(c.pools[0].plugin, Some(PoolPlugin { name: "least-latency".into(), config_json: "{}".into() }));
    assert_eq!(c.pools[0].strategy, StrategyKind::RoundRobin);
}
