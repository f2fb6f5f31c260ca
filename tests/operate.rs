//! The admin socket (`fastlb ctl`): every command in text and JSON, server
//! state changes under a running request loop, refused commands, the
//! listener status page.

mod support;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use support::{Backend, Cfg, Client, Load, Proxy, get, get_with, num, run_ctl, servers_of, temp_dir, wait_until};

const LIMIT: Duration = Duration::from_secs(10);

/// Requests to `path` a backend received.
fn served(b: &Backend, path: &str) -> usize {
    b.log().iter().filter(|r| r.path() == path).count()
}

/// What a command may not change: the servers and their admin-visible
/// settings (counters and clocks excluded).
fn shape(proxy: &Proxy) -> Vec<String> {
    servers_of(&proxy.stat())
        .iter()
        .map(|s| {
            format!(
                "{} {} {} w={}/{} backup={}",
                s["key"], s["addr"], s["state"], s["weight_configured"], s["weight_effective"], s["backup"]
            )
        })
        .collect()
}

fn cookie_of(r: &support::Response) -> Option<String> {
    r.head.get_all("set-cookie").iter().find_map(|v| {
        v.split(';').next().map(str::trim).filter(|kv| kv.starts_with("FASTLB_SERVER=")).map(str::to_string)
    })
}

#[test]
fn help_lists_the_commands() {
    let a = Backend::start("a");
    let proxy = Cfg::new("round_robin", &[&a]).start();
    let out = proxy.ctl_ok(&["help"]);
    for cmd in ["show info", "show stat", "show events", "enable server", "disable server", "drain server"] {
        assert!(out.contains(cmd), "help does not mention {cmd:?}:\n{out}");
    }
    for cmd in ["set weight", "add server", "del server", "reload", "show workers", "show pools", "show health"] {
        assert!(out.contains(cmd), "help does not mention {cmd:?}:\n{out}");
    }
}

#[test]
fn show_info_text_json_and_totals_grow_with_traffic() {
    let a = Backend::start("a");
    let proxy = Cfg::new("round_robin", &[&a]).start();
    let text = proxy.ctl_ok(&["show", "info"]);
    assert!(text.contains(&proxy.pid().to_string()), "show info text lacks the pid:\n{text}");
    let info = proxy.info();
    assert_eq!(num(&info["pid"], "pid"), u64::from(proxy.pid()), "{info}");
    assert_eq!(info["workers"], 1, "{info}");
    assert!(info["version"].as_str().is_some_and(|v| !v.is_empty()), "{info}");
    let path = proxy.config_path().display().to_string();
    assert_eq!(info["config_path"].as_str(), Some(path.as_str()), "{info}");
    for k in
        ["uptime_s", "generation", "config_generation", "connections_open", "errors_total", "bytes_in", "bytes_out"]
    {
        assert!(info[k].is_number(), "show info json has no number {k}: {info}");
    }
    let (req0, conn0) =
        (num(&info["requests_total"], "requests_total"), num(&info["connections_total"], "connections_total"));
    let mut c = Client::connect(proxy.addr);
    for _ in 0..10 {
        assert_eq!(c.get("/").status, 200);
    }
    drop(c);
    for _ in 0..3 {
        assert_eq!(get(proxy.addr, "/").status, 200);
    }
    assert!(
        wait_until(LIMIT, || {
            let i = proxy.info();
            num(&i["requests_total"], "requests_total") >= req0 + 13
                && num(&i["connections_total"], "connections_total") >= conn0 + 4
        }),
        "totals did not grow by 13 requests / 4 connections: before {req0}/{conn0}, now {}",
        proxy.info()
    );
    assert!(num(&proxy.info()["bytes_out"], "bytes_out") > 0);
    // `-j` is the same as a trailing `json`.
    let (code, out, err) = proxy.ctl(&["-j", "show", "info"]);
    assert_eq!(code, 0, "{out} {err}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("ctl -j show info is not JSON ({e}): {out}"));
    assert_eq!(j["pid"], info["pid"]);
}

#[test]
fn show_stat_text_and_json_count_requests_per_server() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).start();
    let mut c = Client::connect(proxy.addr);
    for _ in 0..10 {
        assert_eq!(c.get("/").status, 200);
    }
    assert_eq!(c.get("/status/404").status, 404);
    let text = proxy.ctl_ok(&["show", "stat"]);
    for needle in ["app/a", "app/b", "up"] {
        assert!(text.contains(needle), "show stat text lacks {needle:?}:\n{text}");
    }
    let pool = proxy.pool("app");
    assert_eq!(pool["strategy"], "round_robin", "{pool}");
    assert_eq!(pool["sticky"], false);
    assert_eq!(pool["panic"], false);
    let servers = pool["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{pool}");
    let sa = proxy.server("app/a");
    assert_eq!((sa["pool"].as_str(), sa["name"].as_str()), (Some("app"), Some("a")), "{sa}");
    assert_eq!(sa["addr"], a.addr.to_string());
    assert_eq!(sa["state"], "up");
    assert_eq!((sa["weight_configured"].as_u64(), sa["weight_effective"].as_u64()), (Some(1), Some(1)), "{sa}");
    assert_eq!(sa["runtime_added"], false);
    assert!(sa["responses"].as_array().is_some_and(|r| r.len() == 5), "{sa}");
    for k in [
        "active",
        "connect_errors",
        "errors",
        "retries",
        "bytes_in",
        "bytes_out",
        "ewma_latency_us",
        "seconds_in_state",
    ] {
        assert!(sa[k].is_number(), "server stat has no number {k}: {sa}");
    }
    let total = |field: &str, i: usize| -> u64 {
        servers_of(&proxy.stat())
            .iter()
            .map(|s| if i == usize::MAX { num(&s[field], field) } else { num(&s[field][i], field) })
            .sum()
    };
    assert!(
        wait_until(LIMIT, || total("requests", usize::MAX) == 11
            && total("responses", 1) == 10
            && total("responses", 3) == 1),
        "11 requests, 10×2xx and 1×4xx expected: {}",
        proxy.stat()
    );
    let sb = proxy.server("app/b");
    assert!(num(&sa["requests"], "requests") > 0 || num(&sb["requests"], "requests") > 0);
    // `show pools` carries the pools with their servers (as objects or names).
    let pools = support::pools_of(&proxy.ctl_json(&["show", "pools"]));
    let app = pools.iter().find(|p| p["name"] == "app").unwrap_or_else(|| panic!("no pool app: {pools:?}"));
    assert_eq!(app["strategy"], "round_robin", "{app}");
    let names: Vec<&str> =
        app["servers"].as_array().unwrap().iter().filter_map(|s| s.as_str().or_else(|| s["name"].as_str())).collect();
    assert_eq!(names, ["a", "b"], "{app}");
    assert!(!proxy.ctl_ok(&["show", "pools"]).trim().is_empty());
}

#[test]
fn show_health_workers_and_events() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b])
        .workers(2)
        .pool_tables("[pool.health]\ntype = \"tcp\"\ninterval = \"100ms\"\nfall = 2\nrise = 2")
        .start();
    for _ in 0..6 {
        assert_eq!(get(proxy.addr, "/").status, 200);
    }
    let health = proxy.ctl_ok(&["show", "health"]);
    assert!(health.contains("app/a") || health.contains('a'), "{health}");
    let hj = proxy.ctl_json(&["show", "health"]);
    assert!(hj.is_array() || hj.is_object(), "{hj}");

    let workers = proxy.ctl_json(&["show", "workers"]);
    let workers = workers.as_array().unwrap_or_else(|| panic!("show workers json is not an array: {workers}"));
    assert_eq!(workers.len(), 2, "{workers:?}");
    let mut cores: Vec<u64> = workers.iter().map(|w| num(&w["core"], "core")).collect();
    cores.sort_unstable();
    cores.dedup();
    assert_eq!(cores.len(), 2, "two workers on the same core: {workers:?}");
    assert!(
        wait_until(LIMIT, || {
            let w = proxy.ctl_json(&["show", "workers"]);
            w.as_array().unwrap().iter().map(|w| num(&w["requests"], "requests")).sum::<u64>() >= 6
        }),
        "show workers requests do not add up to 6: {}",
        proxy.ctl_json(&["show", "workers"])
    );
    assert!(!proxy.ctl_ok(&["show", "workers"]).trim().is_empty());

    proxy.ctl_ok(&["disable", "server", "app/a"]);
    proxy.ctl_ok(&["enable", "server", "app/a"]);
    proxy.ctl_ok(&["disable", "server", "app/b"]);
    let events = proxy.events();
    assert!(events.len() >= 3, "three admin state changes, events: {events:?}");
    let last = events.last().unwrap();
    assert_eq!((last["server"].as_str(), last["to"].as_str()), (Some("app/b"), Some("maint")), "{last}");
    assert_eq!(last["from"], "up", "{last}");
    for e in &events {
        for k in ["time", "unix", "server", "from", "to", "reason"] {
            assert!(!e[k].is_null(), "event without {k}: {e}");
        }
    }
    let one = proxy.ctl_json(&["show", "events", "1"]);
    let one = one.as_array().expect("show events 1 json is not an array");
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0]["server"], "app/b", "show events N must keep the newest: {one:?}");
    let text = proxy.ctl_ok(&["show", "events"]);
    assert!(text.contains("app/b") && text.contains("maint"), "{text}");
}

#[test]
fn disable_takes_a_server_out_and_enable_brings_it_back() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).start();
    let out = proxy.ctl_ok(&["disable", "server", "app/b"]);
    assert!(!out.trim().is_empty(), "disable answered nothing");
    assert_eq!(proxy.state("app/b"), "maint");
    for i in 0..10 {
        let r = get(proxy.addr, "/d");
        assert_eq!((r.status, r.backend()), (200, "a"), "request {i} with b disabled: {r:?}");
    }
    assert_eq!(served(&b, "/d"), 0);
    proxy.ctl_ok(&["enable", "server", "app/b"]);
    assert_eq!(proxy.state("app/b"), "up");
    assert!(wait_until(LIMIT, || get(proxy.addr, "/e").backend() == "b"), "b enabled but gets no traffic");
}

#[test]
fn set_weight_changes_the_share_and_zero_stops_new_traffic() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("weighted_round_robin", &[&a, &b]).start();
    proxy.ctl_ok(&["set", "weight", "app/a", "3"]);
    let sa = proxy.server("app/a");
    assert_eq!(sa["weight_effective"], 3, "{sa}");
    let tally = support::tally(
        (0..40).map(|_| get(proxy.addr, "/w").backend().to_string()).collect::<Vec<_>>().iter().map(String::as_str),
    );
    let (na, nb) = (tally.get("a").copied().unwrap_or(0), tally.get("b").copied().unwrap_or(0));
    assert!(na >= 2 * nb && nb > 0, "weights 3:1 gave {tally:?}");

    proxy.ctl_ok(&["set", "weight", "app/b", "0"]);
    assert_eq!(proxy.server("app/b")["weight_effective"], 0);
    let before = served(&b, "/z");
    for i in 0..10 {
        let r = get(proxy.addr, "/z");
        assert_eq!((r.status, r.backend()), (200, "a"), "request {i} with b at weight 0: {r:?}");
    }
    assert_eq!(served(&b, "/z"), before);
}

#[test]
fn drain_lets_open_requests_finish_and_keeps_sticky_clients() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).pool_keys("sticky = true").start();
    let cookie = (0..4)
        .map(|_| get(proxy.addr, "/"))
        .find(|r| r.backend() == "a")
        .and_then(|r| cookie_of(&r))
        .expect("no response from a with a FASTLB_SERVER cookie");
    let addr = proxy.addr;
    let slow_cookie = cookie.clone();
    let slow = thread::spawn(move || get_with(addr, "/delay/1500", &[("Cookie", &slow_cookie)]));
    assert!(wait_until(LIMIT, || served(&a, "/delay/1500") == 1), "slow request never reached a");
    assert!(
        wait_until(LIMIT, || num(&proxy.server("app/a")["active"], "active") == 1),
        "a slow request in flight but active is {}",
        proxy.server("app/a")
    );
    proxy.ctl_ok(&["drain", "server", "app/a"]);
    assert_eq!(proxy.state("app/a"), "drain");
    for i in 0..10 {
        let r = get(proxy.addr, "/new");
        assert_eq!((r.status, r.backend()), (200, "b"), "new client {i} sent to the draining server: {r:?}");
    }
    for i in 0..3 {
        let r = get_with(proxy.addr, "/sticky", &[("Cookie", &cookie)]);
        assert_eq!((r.status, r.backend()), (200, "a"), "sticky client {i} of a draining server: {r:?}");
    }
    let r = slow.join().unwrap();
    assert_eq!((r.status, r.backend()), (200, "a"), "open request cut by drain: {r:?}");
}

#[test]
fn del_server_is_refused_while_busy_unless_drained() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    // b at weight 0 so the slow request surely lands on a.
    let proxy = Cfg::new("round_robin", &[&a, &b]).weights(&[1, 0]).start();
    let addr = proxy.addr;
    let slow = thread::spawn(move || get(addr, "/delay/2000"));
    assert!(wait_until(LIMIT, || served(&a, "/delay/2000") == 1), "slow request never reached a");
    proxy.ctl_ok(&["set", "weight", "app/b", "1"]);
    let before = shape(&proxy);
    let err = proxy.ctl_err(&["del", "server", "app/a"]);
    assert!(err.contains("app/a") || err.contains("active") || err.contains("flight"), "unclear refusal: {err}");
    assert_eq!(shape(&proxy), before, "a refused del changed something");
    proxy.ctl_ok(&["drain", "server", "app/a"]);
    proxy.ctl_ok(&["del", "server", "app/a"]);
    assert!(proxy.try_server("app/a").is_none(), "app/a still listed after del: {}", proxy.stat());
    let r = slow.join().unwrap();
    assert_eq!((r.status, r.backend()), (200, "a"), "in-flight request of a deleted server: {r:?}");
    for i in 0..6 {
        let r = get(proxy.addr, "/after");
        assert_eq!((r.status, r.backend()), (200, "b"), "request {i} after del: {r:?}");
    }
    // An idle server can go without draining; a disabled one too.
    let c = Backend::start("c");
    proxy.ctl_ok(&["add", "server", "app/c", &c.addr.to_string()]);
    proxy.ctl_ok(&["disable", "server", "app/c"]);
    proxy.ctl_ok(&["del", "server", "app/c"]);
    assert!(proxy.try_server("app/c").is_none());
}

#[test]
fn bad_commands_answer_one_error_line_and_change_nothing() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).start();
    let before = shape(&proxy);
    let bad: &[&[&str]] = &[
        &["frobnicate"],
        &["show"],
        &["show", "nonsense"],
        &["show", "events", "many"],
        &["enable"],
        &["enable", "server"],
        &["enable", "server", "app/nope"],
        &["disable", "server", "nopool/a"],
        &["disable", "server", "app"],
        &["drain", "server", "app/zzz"],
        &["set", "weight", "app/a"],
        &["set", "weight", "app/a", "300"],
        &["set", "weight", "app/a", "-1"],
        &["set", "weight", "app/a", "heavy"],
        &["set", "weight", "app/nope", "2"],
        &["add", "server", "app/c"],
        &["add", "server", "app/c", "not-an-address"],
        &["add", "server", "app/a", "127.0.0.1:1"],
        &["add", "server", "nopool/c", "127.0.0.1:1"],
        &["add", "server", "app/c", "127.0.0.1:1", "weight", "300"],
        &["add", "server", "app/c", "127.0.0.1:1", "sideways"],
        &["del", "server", "app/nope"],
        &["del", "server"],
    ];
    for cmd in bad {
        let all = proxy.ctl_err(cmd);
        let errors = all.lines().filter(|l| l.trim_start().starts_with("error:")).count();
        let (_, stdout, _) = proxy.ctl(cmd);
        let answer: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(errors == 1 && answer.len() <= 1, "`{}` should answer one error line: {all:?}", cmd.join(" "));
        assert_eq!(shape(&proxy), before, "`{}` changed the servers", cmd.join(" "));
    }
    assert!(proxy.try_server("app/c").is_none());
    for _ in 0..4 {
        assert_eq!(get(proxy.addr, "/").status, 200);
    }
}

#[test]
fn admin_socket_has_the_configured_mode() {
    let a = Backend::start("a");
    let proxy = Proxy::from_toml(&format!("{}\n[admin]\nmode = \"0600\"\n", Cfg::new("round_robin", &[&a]).render()));
    let meta = std::fs::metadata(proxy.admin_socket()).expect("admin socket missing");
    assert!(meta.file_type().is_socket(), "{} is not a socket", proxy.admin_socket().display());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode {:o}", meta.permissions().mode() & 0o777);

    // Default is 0600 too; another mode is honoured.
    let proxy = Proxy::from_toml(&format!("{}\n[admin]\nmode = \"0640\"\n", Cfg::new("round_robin", &[&a]).render()));
    let mode = std::fs::metadata(proxy.admin_socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "configured 0640, got {mode:o}");
    let proxy = Cfg::new("round_robin", &[&a]).start();
    let mode = std::fs::metadata(proxy.admin_socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "default mode should be 0600, got {mode:o}");
}

#[test]
fn ctl_reads_a_script_from_stdin() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).start();
    let script = "show info\nset weight app/a 5\ndisable server app/b\nshow stat json\n";
    let (code, out, err) = proxy.ctl_stdin(script);
    assert_eq!(code, 0, "stdout {out:?} stderr {err:?}");
    assert!(out.contains(&proxy.pid().to_string()), "no show info answer in {out:?}");
    assert!(out.contains("\"maint\""), "show stat json after disable not in {out:?}");
    assert_eq!(proxy.state("app/b"), "maint");
    assert_eq!(proxy.server("app/a")["weight_effective"], 5);
}

#[test]
fn ctl_without_a_server_exits_2() {
    let dir = temp_dir();
    let (code, out, err) = run_ctl(&dir.join("nobody.sock"), &["show", "info"], None);
    assert_eq!(code, 2, "stdout {out:?} stderr {err:?}");
    assert!(!err.trim().is_empty(), "no message on stderr");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn added_server_receives_traffic_under_load() {
    let (a, b, c) = (Backend::start("a"), Backend::start("b"), Backend::start("c"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).start();
    let load = Load::start(proxy.addr, 2, "/load");
    assert!(load.advance(30, LIMIT));
    proxy.ctl_ok(&["add", "server", "app/c", &c.addr.to_string()]);
    let sc = proxy.server("app/c");
    assert_eq!(sc["runtime_added"], true, "{sc}");
    assert_eq!(sc["addr"], c.addr.to_string());
    assert!(wait_until(LIMIT, || served(&c, "/load") > 0), "added server got no traffic");
    load.finish().assert_no_failures("add server under load");
}

#[test]
fn added_backup_server_with_weight_waits_for_the_primaries() {
    let (a, c) = (Backend::start("a"), Backend::start("c"));
    let proxy = Cfg::new("round_robin", &[&a]).start();
    proxy.ctl_ok(&["add", "server", "app/c", &c.addr.to_string(), "weight", "5", "backup"]);
    let sc = proxy.server("app/c");
    assert_eq!((sc["weight_configured"].as_u64(), sc["backup"].as_bool()), (Some(5), Some(true)), "{sc}");
    for _ in 0..6 {
        assert_eq!(get(proxy.addr, "/p").backend(), "a");
    }
    proxy.ctl_ok(&["disable", "server", "app/a"]);
    for i in 0..4 {
        let r = get(proxy.addr, "/b");
        assert_eq!((r.status, r.backend()), (200, "c"), "request {i} with the primary disabled: {r:?}");
    }
}

#[test]
fn scale_out_add_two_remove_one_without_failures() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let (c, d) = (Backend::start("c"), Backend::start("d"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).start();
    let load = Load::start(proxy.addr, 3, "/load");
    assert!(load.advance(30, LIMIT));
    proxy.ctl_ok(&["add", "server", "app/c", &c.addr.to_string()]);
    proxy.ctl_ok(&["add", "server", "app/d", &d.addr.to_string()]);
    assert!(wait_until(LIMIT, || served(&c, "/load") > 0 && served(&d, "/load") > 0), "new servers got no traffic");
    proxy.ctl_ok(&["drain", "server", "app/c"]);
    assert!(
        wait_until(LIMIT, || num(&proxy.server("app/c")["active"], "active") == 0),
        "drained c never went idle: {}",
        proxy.server("app/c")
    );
    proxy.ctl_ok(&["del", "server", "app/c"]);
    let c_after = served(&c, "/load");
    assert!(load.advance(200, LIMIT), "load stalled after del");
    assert_eq!(served(&c, "/load"), c_after, "a deleted server still gets traffic");
    assert!(proxy.try_server("app/c").is_none());
    let report = load.finish();
    report.assert_no_failures("scale out by two, in by one");
    assert!(report.by_backend.get("d").copied().unwrap_or(0) > 0, "{:?}", report.by_backend);
}

#[test]
fn status_path_answers_the_status_json() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).listener_keys("status_path = \"/proxy/status\"").start();
    for _ in 0..6 {
        assert_eq!(get(proxy.addr, "/").status, 200);
    }
    let r = get(proxy.addr, "/proxy/status");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("content-type").is_some_and(|t| t.contains("json")), "{r:?}");
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", r.text()));
    assert!(!v["proxy_id"].is_null(), "{v}");
    assert_eq!(v["algorithm"], "round_robin", "{v}");
    assert_eq!(v["sticky_sessions"], false, "{v}");
    assert!(v["uptime"].is_number() || v["uptime"].is_string(), "{v}");
    let urls: Vec<String> = [&a, &b].iter().map(|b| format!("http://{}", b.addr)).collect();
    let active: Vec<&str> =
        v["active_nodes"].as_array().expect("active_nodes").iter().filter_map(Value::as_str).collect();
    for u in &urls {
        assert!(active.contains(&u.as_str()), "{u} not in active_nodes {active:?}");
        let s = &v["node_stats"][u];
        for k in ["connections", "requests", "errors"] {
            assert!(s[k].is_number(), "node_stats[{u}] has no number {k}: {v}");
        }
        assert!(!s["server_id"].is_null(), "{v}");
    }
    let requests: u64 = urls.iter().map(|u| num(&v["node_stats"][u]["requests"], "requests")).sum();
    assert!(requests >= 6, "node_stats count {requests} of 6 requests: {v}");
    assert_eq!(served(&a, "/proxy/status") + served(&b, "/proxy/status"), 0, "status page forwarded to a backend");

    // A disabled server is not active.
    proxy.ctl_ok(&["disable", "server", "app/b"]);
    let v: Value = serde_json::from_slice(&get(proxy.addr, "/proxy/status").body).unwrap();
    let active: Vec<&str> = v["active_nodes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(active, vec![urls[0].as_str()], "{v}");
}

#[test]
fn without_status_path_the_path_is_forwarded() {
    let a = Backend::start("a");
    let proxy = Cfg::new("round_robin", &[&a]).start();
    let r = get(proxy.addr, "/proxy/status");
    assert_eq!((r.status, r.backend()), (200, "a"), "status page on by default: {r:?}");
}
