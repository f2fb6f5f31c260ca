//! Hot reload (`reload` on the admin socket, SIGHUP): applied under a
//! running request loop without a failed request, refused whole when the
//! new file is invalid or changes what cannot change live.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::{Backend, Cfg, Load, Proxy, get, num, temp_dir, wait_until};

const LIMIT: Duration = Duration::from_secs(10);

fn served(b: &Backend, path: &str) -> usize {
    b.log().iter().filter(|r| r.path() == path).count()
}

fn config_generation(proxy: &Proxy) -> u64 {
    num(&proxy.info()["config_generation"], "config_generation")
}

fn requests_of(proxy: &Proxy, key: &str) -> u64 {
    num(&proxy.server(key)["requests"], "requests")
}

#[test]
fn sighup_adds_a_server_from_the_file_under_load_and_counters_continue() {
    let (a, b, c) = (Backend::start("a"), Backend::start("b"), Backend::start("c"));
    let cfg = Cfg::new("round_robin", &[&a, &b]);
    let proxy = cfg.start();
    let load = Load::start(proxy.addr, 2, "/load");
    assert!(load.advance(200, LIMIT), "load did not get going");
    let generation = config_generation(&proxy);

    proxy.rewrite_config(&cfg.server("c", c.addr).render());
    let a_before = requests_of(&proxy, "app/a");
    proxy.sighup();
    assert!(
        wait_until(LIMIT, || config_generation(&proxy) > generation),
        "SIGHUP did not reload; stderr:\n{}",
        proxy.stderr()
    );
    let a_after = requests_of(&proxy, "app/a");
    assert!(a_after >= a_before, "a's request counter went back from {a_before} to {a_after}: reset by reload");
    assert!(wait_until(LIMIT, || served(&c, "/load") > 0), "server added by reload gets no traffic");
    assert_eq!(proxy.server("app/c")["runtime_added"], false);
    assert!(load.advance(100, LIMIT));
    load.finish().assert_no_failures("SIGHUP reload adding a server");
}

#[test]
fn reload_command_applies_a_strategy_change_under_load() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let cfg = Cfg::new("round_robin", &[&a, &b]);
    let proxy = cfg.start();
    let seen: Vec<String> = (0..4).map(|_| get(proxy.addr, "/same").backend().to_string()).collect();
    assert!(seen.iter().any(|s| s == "a") && seen.iter().any(|s| s == "b"), "round robin: {seen:?}");
    let load = Load::start(proxy.addr, 2, "/load");
    assert!(load.advance(50, LIMIT));

    let mut new = cfg.clone();
    new.strategy = "url_hash".into();
    proxy.rewrite_config(&new.render());
    let out = proxy.ctl_ok(&["reload"]);
    assert!(!out.trim().is_empty(), "reload answered nothing");
    assert_eq!(proxy.pool("app")["strategy"], "url_hash");
    let first = get(proxy.addr, "/same").backend().to_string();
    for i in 0..10 {
        let r = get(proxy.addr, "/same");
        assert_eq!((r.status, r.backend()), (200, first.as_str()), "url_hash request {i} moved: {r:?}");
    }
    assert!(load.advance(100, LIMIT));
    load.finish().assert_no_failures("reload changing the strategy");
}

#[test]
fn invalid_config_on_reload_is_refused_with_its_errors_and_the_old_one_serves() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let cfg = Cfg::new("round_robin", &[&a, &b]);
    let mut proxy = cfg.start();
    let load = Load::start(proxy.addr, 2, "/load");
    assert!(load.advance(30, LIMIT));
    let generation = config_generation(&proxy);

    let mut bad = cfg.clone();
    bad.strategy = "bogus_strategy".into();
    proxy.rewrite_config(&bad.render());
    let err = proxy.ctl_err(&["reload"]);
    assert!(err.contains("strategy"), "refusal does not name the key: {err}");
    assert_eq!(proxy.pool("app")["strategy"], "round_robin");
    assert_eq!(config_generation(&proxy), generation, "a refused reload bumped config_generation");

    proxy.rewrite_config(&cfg.clone().pool_keys("no_such_key = 1").render());
    let err = proxy.ctl_err(&["reload"]);
    assert!(err.contains("no_such_key"), "refusal does not name the unknown key: {err}");

    proxy.rewrite_config("this is [not toml");
    proxy.ctl_err(&["reload"]);

    // SIGHUP with a broken file: logged, process keeps serving.
    proxy.sighup();
    assert!(
        wait_until(LIMIT, || proxy.stderr().contains("reload")),
        "SIGHUP with an invalid file left no trace in the log:\n{}",
        proxy.stderr()
    );
    assert!(proxy.is_running(), "fastlb died on SIGHUP with an invalid file");
    assert!(load.advance(50, LIMIT));
    assert_eq!(proxy.servers_count("app"), 2);
    load.finish().assert_no_failures("refused reloads");
}

#[test]
fn reload_refuses_keys_that_cannot_change_live() {
    let a = Backend::start("a");
    let cfg = Cfg::new("round_robin", &[&a]);
    let proxy = cfg.start();
    let base = cfg.render();
    let generation = config_generation(&proxy);

    proxy.rewrite_config(&cfg.clone().workers(2).render());
    let err = proxy.ctl_err(&["reload"]);
    assert!(err.contains("workers"), "refused reload should name `workers`: {err}");

    proxy.rewrite_config(&base.replace("bind = \"127.0.0.1:0\"", "bind = \"127.0.0.2:0\""));
    let err = proxy.ctl_err(&["reload"]);
    assert!(err.contains("bind"), "refused reload should name the listener bind: {err}");

    let other: PathBuf = temp_dir().join("other.sock");
    proxy.rewrite_config(&format!("{base}\n[admin]\nsocket = \"{}\"\n", other.display()));
    let err = proxy.ctl_err(&["reload"]);
    assert!(err.contains("socket"), "refused reload should name the admin socket: {err}");
    assert!(!other.exists(), "a refused reload opened the new admin socket");

    assert_eq!(config_generation(&proxy), generation);
    assert_eq!(proxy.info()["workers"], 1);
    assert_eq!(get(proxy.addr, "/").status, 200);
    let _ = std::fs::remove_dir_all(other.parent().unwrap());
}

#[test]
fn reload_drops_runtime_added_servers_and_says_so() {
    let (a, c) = (Backend::start("a"), Backend::start("c"));
    let proxy = Cfg::new("round_robin", &[&a]).start();
    proxy.ctl_ok(&["add", "server", "app/c", &c.addr.to_string()]);
    assert!(proxy.try_server("app/c").is_some());
    let out = proxy.ctl_ok(&["reload"]);
    assert!(out.contains("app/c"), "reload should say it dropped the runtime-added app/c: {out:?}");
    assert!(proxy.try_server("app/c").is_none(), "runtime-added server survived reload: {}", proxy.stat());
    let before = served(&c, "/x");
    for _ in 0..4 {
        assert_eq!(get(proxy.addr, "/x").backend(), "a");
    }
    assert_eq!(served(&c, "/x"), before);
}

/// `fastlb demo --admin SOCKET --port 0` (2 nodes, 1 worker).
fn demo_with_admin() -> Proxy {
    let dir = temp_dir();
    let sock = dir.join("demo.sock");
    let args: Vec<String> = ["demo", "--nodes", "2", "--port", "0", "--workers", "1", "--admin"]
        .iter()
        .map(|s| s.to_string())
        .chain([sock.display().to_string()])
        .collect();
    Proxy::spawn_with_admin(&args, sock, dir)
}

#[test]
fn demo_serves_the_admin_socket_and_reload_without_a_file_is_an_error() {
    let mut proxy = demo_with_admin();
    let servers = support::servers_of(&proxy.stat());
    assert_eq!(servers.len(), 2, "demo with 2 nodes: {servers:?}");
    assert!(servers.iter().all(|s| s["state"] == "up"), "{servers:?}");
    assert!(proxy.info()["config_path"].is_null(), "demo has no config file: {}", proxy.info());
    let err = proxy.ctl_err(&["reload"]);
    assert!(err.contains("config"), "reload without a config file should say so: {err}");
    proxy.sighup();
    let answers = serve_five(&proxy);
    let exit = proxy.exit_status();
    assert!(
        exit.is_none() && answers.iter().all(|a| a == "200"),
        "after SIGHUP without a config file: exit {exit:?}, answers {answers:?}"
    );
}

#[test]
fn reload_without_a_config_file_is_an_error_in_backends_mode_too() {
    let a = Backend::start("a");
    let dir = temp_dir();
    let sock = dir.join("quick.sock");
    let args: Vec<String> = ["--listen", "127.0.0.1:0", "--backends", &a.addr.to_string(), "--workers", "1", "--admin"]
        .iter()
        .map(|s| s.to_string())
        .chain([sock.display().to_string()])
        .collect();
    let mut proxy = Proxy::spawn_with_admin(&args, sock, dir);
    assert_eq!(support::servers_of(&proxy.stat()).len(), 1);
    proxy.ctl_err(&["reload"]);
    proxy.sighup();
    let answers = serve_five(&proxy);
    let exit = proxy.exit_status();
    assert!(
        exit.is_none() && answers.iter().all(|a| a == "200"),
        "after SIGHUP without a config file: exit {exit:?}, answers {answers:?}"
    );
}

#[test]
fn demo_answers_its_status_page() {
    let proxy = demo_with_admin();
    let r = get(proxy.addr, "/proxy/status");
    assert_eq!(r.status, 200, "demo should answer its status page: {r:?}");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()));
    assert_eq!(v["active_nodes"].as_array().map(Vec::len), Some(2), "{v}");
}

/// Five GETs on fresh connections: each status, or the error.
fn serve_five(proxy: &Proxy) -> Vec<String> {
    (0..5)
        .map(|_| {
            let answer = support::Client::try_connect(proxy.addr).and_then(|mut c| {
                c.try_send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
                c.try_read_response()
            });
            answer.map_or_else(|e| e.to_string(), |r| r.status.to_string())
        })
        .collect()
}

trait ProxyExt {
    fn servers_count(&self, pool: &str) -> usize;
}

impl ProxyExt for Proxy {
    fn servers_count(&self, pool: &str) -> usize {
        self.pool(pool)["servers"].as_array().map_or(0, Vec::len)
    }
}
