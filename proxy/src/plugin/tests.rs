//! Plugin host tests. Plugins are built from WAT (`testdata/fixture.wat`)
//! with the world's component-type section embedded, the same shape
//! wit-bindgen gives for wasm32-unknown-unknown, so they go through the real
//! loader (wit-component wrapping, world checks) without a wasm32 toolchain.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::registry::{PluginRegistry, PluginStat, PluginState};
use super::strategy::{CorePlugin, CorePlugins, StickyCookie, StickyDecision, WasmStrategy};
use crate::balance::{Pick, Pool, RequestFields, RequestView, Strategy, Table};
use crate::config::{AdminConfig, Config, PluginsConfig, PoolConfig, PoolPlugin, RuntimeConfig, ServerConfig};

const FIXTURE: &str = include_str!("testdata/fixture.wat");

/// What a fixture plugin does.
struct Spec<'a> {
    select: &'a str,
    wants_path: bool,
    sticky: bool,
    init_fails: bool,
    /// `planner.plan`'s answer; `None`: no `planner` export at all (and
    /// the world without it, as plugins built before it have).
    plan: Option<&'a [u32]>,
}

fn spec(select: &str) -> Spec<'_> {
    Spec { select, wants_path: false, sticky: false, init_fails: false, plan: Some(&[]) }
}

/// The fixture's `planner.plan` export, as a plugin built before the
/// planner existed does not have it.
const PLAN_EXPORT: &str = "(export \"fastlb:lb/planner@0.1.0#plan\")";

/// fastlb's world as plugins built before `planner` declare it.
fn world_without_planner() -> String {
    let wit = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/fastlb.wit")).unwrap();
    assert!(wit.contains("    export planner;\n"));
    wit.replace("    export planner;\n", "")
}

fn resolve_world(wit: &str) -> (wit_parser::Resolve, wit_parser::WorldId) {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = if wit.is_empty() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        resolve.push_dir(&dir).expect("wit/ parses").0
    } else {
        resolve.push_str("other.wit", wit).expect("inline wit parses")
    };
    let world = resolve.select_world(&[pkg], None).expect("one world");
    (resolve, world)
}

/// A core module from WAT with the component-type section of a world
/// (`wit` empty: fastlb's own).
fn embed(wat: &str, wit: &str) -> Vec<u8> {
    let mut bytes = wat::parse_str(wat).expect("fixture WAT is valid");
    let (resolve, world) = resolve_world(wit);
    wit_component::embed_component_metadata(&mut bytes, &resolve, world, wit_component::StringEncoding::UTF8)
        .expect("metadata embeds");
    bytes
}

fn module(s: Spec<'_>) -> Vec<u8> {
    let wat = fixture(&s);
    match s.plan {
        Some(_) => embed(&wat, ""),
        None => embed(&wat.replace(PLAN_EXPORT, ""), &world_without_planner()),
    }
}

/// The fixture's WAT for `s`.
fn fixture(s: &Spec<'_>) -> String {
    let flag = |b: bool| if b { "01" } else { "00" };
    let shares: String =
        s.plan.unwrap_or_default().iter().flat_map(|w| w.to_le_bytes()).map(|b| format!("\\{b:02x}")).collect();
    FIXTURE
        .replace("{PLAN_LEN}", &s.plan.map_or(0, <[u32]>::len).to_string())
        .replace("{PLAN_DATA}", &shares)
        .replace("{SELECT}", s.select)
        .replace("{WANTS_PATH}", flag(s.wants_path))
        .replace("{STICKY}", flag(s.sticky))
        .replace("{INIT}", if s.init_fails { "(i32.const 200)" } else { "(i32.const 64)" })
}

fn fixed(i: i32) -> Vec<u8> {
    module(spec(&format!("(i32.const {i})")))
}

const LOOP: &str = "(block (result i32) (loop $l (br $l)) (i32.const 0))";
const TRAP: &str = "(unreachable)";
/// Grows memory 16 pages at a time until refused, then aborts (as a Rust
/// guest's allocator would).
const HOG: &str =
    "(block (result i32) (loop $g (br_if $g (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (unreachable))";
/// Answers the length of `request.path` (the option's tag at +52, its
/// length at +60), none when the path is absent.
const PATH_LEN: &str = "(if (result i32) (i32.load8_u (i32.add (local.get $args) (i32.const 52))) \
    (then (i32.load (i32.add (local.get $args) (i32.const 60)))) (else (i32.const -1)))";
/// Answers `attempt` (at +88).
const ATTEMPT: &str = "(i32.load (i32.add (local.get $args) (i32.const 88)))";
const LOGS: &str = "(block (result i32) (call $log (i32.const 2) (i32.const 16) (i32.const 7)) (i32.const 1))";

/// The call timeout of tests that are not about timeouts: long enough that
/// a call preempted on a loaded 2-core machine does not time out.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);

fn plugins_config(dir: Option<PathBuf>, max_failures: u32) -> PluginsConfig {
    PluginsConfig {
        dir,
        poll_interval: Duration::from_millis(20),
        call_timeout: CALL_TIMEOUT,
        memory_limit: 1 << 20,
        max_failures,
    }
}

fn registry(max_failures: u32) -> Arc<PluginRegistry> {
    PluginRegistry::new(&plugins_config(None, max_failures), 1).expect("engine")
}

/// One pool "p" of `n` servers (round robin), optionally with a plugin.
fn table(n: usize, plugin: Option<&str>) -> Table {
    let servers = (0..n)
        .map(|i| ServerConfig::new(&format!("s{i}"), SocketAddr::from((Ipv4Addr::LOCALHOST, 10_000 + i as u16))))
        .collect();
    let mut pool = PoolConfig::new("p", servers);
    pool.plugin = plugin.map(|name| PoolPlugin { name: name.into(), config_json: "{}".into() });
    let config = Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: vec![],
        pools: vec![pool],
        plugins: Default::default(),
    };
    Table::build(&config, 1, None, 1)
}

/// The fallback of these tests: the last eligible server, so that its
/// answers are easy to tell from a plugin's.
struct Last;

impl Strategy for Last {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        (0..pool.servers.len()).rev().find(|&i| (pick.eligible)(i))
    }
}

fn all(_: usize) -> bool {
    true
}

fn pick(attempt: u32) -> Pick<'static> {
    Pick { hash: 7, attempt, eligible: &all, request: None }
}

fn strategy(reg: &Arc<PluginRegistry>, name: &str, pool: &Pool) -> WasmStrategy {
    let slot = Rc::new(CorePlugin::new(Arc::clone(reg), name, "{}", 0));
    WasmStrategy::new(slot, pool, Box::new(Last))
}

fn stat(reg: &PluginRegistry, name: &str) -> PluginStat {
    reg.list().into_iter().find(|s| s.name == name).expect("plugin listed")
}

struct NoFields;

impl RequestFields for NoFields {
    fn header(&self, _: &str) -> Option<&[u8]> {
        None
    }
    fn cookie(&self, _: &str) -> Option<&[u8]> {
        None
    }
}

fn view<'a>(path: &'a [u8]) -> RequestView<'a> {
    RequestView {
        method: b"GET",
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        host: Some(b"example.com"),
        path,
        fields: &NoFields,
    }
}

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fastlb-plugins-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn fixed_answer_is_followed() {
    let reg = registry(10);
    reg.insert_bytes("fixed", &fixed(2)).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "fixed", &t.pools[0]);
    for attempt in 0..100 {
        assert_eq!(s.select(&t.pools[0], &pick(attempt)), Some(2));
    }
    let st = stat(&reg, "fixed");
    assert_eq!((st.calls, st.errors, st.traps, st.timeouts, st.instantiations), (100, 0, 0, 0, 1));
    assert_eq!(st.state, PluginState::Enabled);
    assert!(st.avg_call_ns > 0, "sampled calls are timed");
}

#[test]
fn a_component_loads_as_well_as_a_core_module() {
    let reg = registry(10);
    let component =
        wit_component::ComponentEncoder::default().module(&fixed(1)).unwrap().validate(true).encode().unwrap();
    reg.insert_bytes("comp", &component).unwrap();
    let t = table(3, None);
    assert_eq!(strategy(&reg, "comp", &t.pools[0]).select(&t.pools[0], &pick(0)), Some(1));
}

#[test]
fn request_fields_reach_the_plugin_only_when_asked() {
    let reg = registry(10);
    reg.insert_bytes("path", &module(Spec { wants_path: true, ..spec(PATH_LEN) })).unwrap();
    reg.insert_bytes("nopath", &module(spec(PATH_LEN))).unwrap();
    reg.insert_bytes("attempt", &module(spec(ATTEMPT))).unwrap();
    let t = table(8, None);
    let pool = &t.pools[0];
    let v = view(b"/abcd");
    let with_req =
        |s: &WasmStrategy, attempt| s.select(pool, &Pick { hash: 1, attempt, eligible: &all, request: Some(&v) });
    assert_eq!(with_req(&strategy(&reg, "path", pool), 0), Some(5));
    assert_eq!(with_req(&strategy(&reg, "nopath", pool), 0), Some(7), "no path sent: none, the fallback serves");
    assert_eq!(with_req(&strategy(&reg, "attempt", pool), 3), Some(3));
}

#[test]
fn an_endless_loop_times_out_within_a_few_ms() {
    let config = PluginsConfig { call_timeout: Duration::from_millis(2), ..plugins_config(None, 1000) };
    let reg = PluginRegistry::new(&config, 1).expect("engine");
    reg.insert_bytes("loop", &module(spec(LOOP))).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "loop", &t.pools[0]);
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(s.select(&t.pools[0], &pick(0)), Some(3), "fallback serves");
        let took = started.elapsed();
        // 2 ticks of 1 ms, plus re-instantiation; generous for a loaded CI box.
        assert!(took < Duration::from_millis(25), "a timed-out call took {took:?}");
    }
    let st = stat(&reg, "loop");
    assert_eq!((st.timeouts, st.traps, st.errors), (5, 0, 0));
    assert_eq!(st.instantiations, 5, "each timeout drops the instance");
    assert_eq!(st.state, PluginState::Enabled);
}

#[test]
fn a_trap_falls_back_and_reinstantiates() {
    let reg = registry(1000);
    reg.insert_bytes("trap", &module(spec(TRAP))).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "trap", &t.pools[0]);
    for _ in 0..3 {
        assert_eq!(s.select(&t.pools[0], &pick(0)), Some(3));
    }
    let st = stat(&reg, "trap");
    assert_eq!((st.traps, st.timeouts, st.instantiations), (3, 0, 3));
    assert!(st.last_error.unwrap().contains("unreachable"));
}

#[test]
fn unbounded_memory_growth_stops_at_the_limit() {
    let reg = registry(1000);
    reg.insert_bytes("hog", &module(spec(HOG))).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "hog", &t.pools[0]);
    assert_eq!(s.select(&t.pools[0], &pick(0)), Some(3));
    let st = stat(&reg, "hog");
    assert_eq!((st.traps, st.timeouts), (1, 0), "refused growth, then the plugin aborted");
    assert!(st.memory_denied >= 1);
    assert!(st.peak_memory <= 1 << 20, "peak {} over the 1 MiB limit", st.peak_memory);
}

#[test]
fn out_of_range_and_ineligible_answers_use_the_fallback() {
    let reg = registry(1000);
    reg.insert_bytes("far", &fixed(1000)).unwrap();
    reg.insert_bytes("one", &fixed(1)).unwrap();
    let t = table(4, None);
    let pool = &t.pools[0];
    assert_eq!(strategy(&reg, "far", pool).select(pool, &pick(0)), Some(3));
    assert_eq!(stat(&reg, "far").errors, 1);

    let not_one = |i: usize| i != 1;
    let p = Pick { hash: 0, attempt: 1, eligible: &not_one, request: None };
    assert_eq!(strategy(&reg, "one", pool).select(pool, &p), Some(3));
    let st = stat(&reg, "one");
    assert_eq!((st.errors, st.state), (1, PluginState::Enabled));
}

#[test]
fn no_answer_is_not_an_error() {
    let reg = registry(2);
    reg.insert_bytes("none", &fixed(-1)).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "none", &t.pools[0]);
    for _ in 0..10 {
        assert_eq!(s.select(&t.pools[0], &pick(0)), Some(3));
    }
    let st = stat(&reg, "none");
    assert_eq!((st.calls, st.errors, st.state), (10, 0, PluginState::Enabled));
}

#[test]
fn circuit_breaker_opens_and_reenable_closes_it() {
    let reg = registry(3);
    reg.insert_bytes("trap", &module(spec(TRAP))).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "trap", &t.pools[0]);
    for _ in 0..10 {
        assert_eq!(s.select(&t.pools[0], &pick(0)), Some(3));
    }
    let st = stat(&reg, "trap");
    assert_eq!((st.calls, st.traps, st.state), (3, 3, PluginState::Disabled));
    assert!(st.last_error.unwrap().contains("circuit breaker"));

    assert_eq!(reg.set_enabled("trap", true).unwrap(), "plugin trap enabled");
    s.select(&t.pools[0], &pick(0));
    assert_eq!(stat(&reg, "trap").calls, 4, "called again once re-enabled");
    assert!(reg.set_enabled("nosuch", true).is_err());
}

#[test]
fn admin_disable_stops_calls() {
    let reg = registry(3);
    reg.insert_bytes("fixed", &fixed(0)).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "fixed", &t.pools[0]);
    reg.set_enabled("fixed", false).unwrap();
    assert_eq!(s.select(&t.pools[0], &pick(0)), Some(3));
    assert_eq!(stat(&reg, "fixed").calls, 0);
    reg.set_enabled("fixed", true).unwrap();
    assert_eq!(s.select(&t.pools[0], &pick(0)), Some(0));
}

#[test]
fn init_error_marks_the_plugin_failed() {
    let reg = registry(3);
    reg.insert_bytes("picky", &module(Spec { init_fails: true, ..spec("(i32.const 0)") })).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "picky", &t.pools[0]);
    assert_eq!(s.select(&t.pools[0], &pick(0)), Some(3));
    let st = stat(&reg, "picky");
    assert_eq!(st.state, PluginState::Failed);
    assert!(st.last_error.unwrap().contains("bad config"));
}

#[test]
fn sticky_hooks_pass_through_checked() {
    let reg = registry(3);
    reg.insert_bytes("sticky", &module(Spec { sticky: true, ..spec("(i32.const 0)") })).unwrap();
    reg.insert_bytes("plain", &fixed(0)).unwrap();
    let t = table(4, None);
    let pool = &t.pools[0];
    let v = view(b"/");
    let s = strategy(&reg, "sticky", pool);
    assert!(s.is_sticky(pool));
    assert_eq!(s.sticky_lookup(pool, Some(&v), 0xfeed), StickyDecision::Hash(0xfeed));
    assert_eq!(
        s.on_response(pool, Some(&v), 0, 2),
        Some(StickyCookie { name: "sid".into(), value: "v1".into(), max_age: Some(60) })
    );
    let plain = strategy(&reg, "plain", pool);
    assert!(!plain.is_sticky(pool));
    assert_eq!(plain.sticky_lookup(pool, Some(&v), 1), StickyDecision::None);
    assert_eq!(plain.on_response(pool, Some(&v), 1, 0), None);
}

#[test]
fn the_log_import_works() {
    let reg = registry(3);
    reg.insert_bytes("logs", &module(spec(LOGS))).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "logs", &t.pools[0]);
    for _ in 0..50 {
        assert_eq!(s.select(&t.pools[0], &pick(0)), Some(1));
    }
    assert_eq!(stat(&reg, "logs").traps, 0);
}

#[test]
fn a_core_switches_to_a_new_version_between_requests() {
    let reg = registry(3);
    reg.insert_bytes("p", &fixed(1)).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "p", &t.pools[0]);
    assert_eq!(s.select(&t.pools[0], &pick(0)), Some(1));
    let g1 = stat(&reg, "p").generation;
    reg.insert_bytes("p", &fixed(2)).unwrap();
    assert!(stat(&reg, "p").generation > g1);
    assert_eq!(s.select(&t.pools[0], &pick(0)), Some(2));
}

#[test]
fn a_strategy_of_an_older_table_uses_its_fallback() {
    let reg = registry(3);
    reg.insert_bytes("p", &fixed(1)).unwrap();
    let t = table(4, None);
    let slot = Rc::new(CorePlugin::new(Arc::clone(&reg), "p", "{}", 0));
    let old = WasmStrategy::new(Rc::clone(&slot), &t.pools[0], Box::new(Last));
    let new = WasmStrategy::new(slot, &t.pools[0], Box::new(Last));
    assert_eq!(new.select(&t.pools[0], &pick(0)), Some(1));
    assert_eq!(old.select(&t.pools[0], &pick(0)), Some(3));
}

#[test]
fn core_plugins_builds_for_plugin_pools_only() {
    let reg = registry(3);
    reg.insert_bytes("p", &fixed(1)).unwrap();
    let cores = CorePlugins::new(Arc::clone(&reg), 0);
    let with = table(4, Some("p"));
    let s = cores.strategy(&with.pools[0]).expect("a plugin pool");
    assert_eq!(s.select(&with.pools[0], &pick(0)), Some(1));
    assert!(cores.strategy(&table(4, None).pools[0]).is_none());
    // A missing plugin: the pool's built-in serves.
    let missing = table(4, Some("nosuch"));
    let s = cores.strategy(&missing.pools[0]).unwrap();
    assert!(s.select(&missing.pools[0], &pick(0)).is_some());
    cores.prune(&table(4, None));
}

#[test]
fn corrupt_bytes_are_rejected_with_a_clear_reason() {
    let reg = registry(3);
    let e = reg.insert_bytes("junk", b"hello, world").err().unwrap();
    assert!(e.contains("not a WebAssembly module or component"), "{e}");
    let e = reg.insert_bytes("trunc", b"\0asm\x01\0\0\0\x01\xff\xff").err().unwrap();
    assert!(e.contains("cannot make a component"), "{e}");
    // A module built without fastlb's world: an empty component.
    let e = reg.insert_bytes("bare", &wat::parse_str("(module)").unwrap()).err().unwrap();
    assert!(e.contains("does not implement world fastlb:lb/plugin@0.1.0: no exported instance"), "{e}");
    assert!(reg.list().is_empty());
}

#[test]
fn the_wrong_world_is_rejected() {
    let reg = registry(3);
    let other = embed(
        r#"(module (func (export "run") (result i32) (i32.const 1)))"#,
        "package test:other; world other { export run: func() -> u32; }",
    );
    let e = reg.insert_bytes("other", &other).err().unwrap();
    assert!(e.contains("does not implement world fastlb:lb/plugin"), "{e}");

    // Our world, but `select` missing; or `planner` declared without `plan`.
    for (name, export) in [("noselect", "strategy@0.1.0#select"), ("noplan", "planner@0.1.0#plan")] {
        let wat = fixture(&spec("(i32.const 0)")).replace(&format!("(export \"fastlb:lb/{export}\")"), "");
        let e = reg.insert_bytes(name, &embed(&wat, "")).err().unwrap();
        let func = export.rsplit('#').next().unwrap();
        assert!(e.contains(&format!("`{func}`")), "{name}: {e}");
    }
}

#[test]
fn reload_picks_up_new_replaced_corrupt_and_removed_files() {
    let dir = TempDir::new();
    let reg = PluginRegistry::new(&plugins_config(Some(dir.0.clone()), 3), 1).unwrap();
    assert!(reg.list().is_empty());
    let file = dir.0.join("p.wasm");

    std::fs::write(&file, fixed(1)).unwrap();
    let report = reg.reload_now();
    assert!(report.contains("loaded [p (generation"), "{report}");
    let first = stat(&reg, "p");
    assert_eq!(reg.reload_now(), "plugins: no change");

    let t = table(4, None);
    let s = strategy(&reg, "p", &t.pools[0]);
    assert_eq!(s.select(&t.pools[0], &pick(0)), Some(1));

    std::fs::write(&file, fixed(2)).unwrap();
    reg.reload_now();
    let second = stat(&reg, "p");
    assert!(second.generation > first.generation);
    assert_ne!(second.hash, first.hash);
    assert_eq!(s.select(&t.pools[0], &pick(0)), Some(2));

    std::fs::write(&file, b"\0asm\x01\0\0\0garbage").unwrap();
    let report = reg.reload_now();
    assert!(report.contains("rejected [p: "), "{report}");
    let kept = stat(&reg, "p");
    assert_eq!((kept.generation, kept.hash.as_str()), (second.generation, second.hash.as_str()));
    assert_eq!(s.select(&t.pools[0], &pick(0)), Some(2), "the previous version keeps serving");
    assert_eq!(reg.reload_now(), "plugins: no change", "a rejected file is not recompiled every scan");

    std::fs::remove_file(&file).unwrap();
    let report = reg.reload_now();
    assert!(report.contains("removed [p]"), "{report}");
    assert!(reg.list().is_empty());
    assert_eq!(s.select(&t.pools[0], &pick(0)), Some(3), "the fallback serves");
}

#[test]
fn a_missing_directory_is_reported_not_fatal() {
    let dir = TempDir::new();
    let gone = dir.0.join("nope");
    let reg = PluginRegistry::new(&plugins_config(Some(gone), 3), 1).unwrap();
    let report = reg.reload_now();
    assert!(report.starts_with("plugins: cannot read plugins dir"), "{report}");
    assert!(reg.list().is_empty());
}

#[test]
fn the_watcher_loads_a_dropped_in_file() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("a.wasm"), fixed(0)).unwrap();
    let reg = PluginRegistry::new(&plugins_config(Some(dir.0.clone()), 3), 1).unwrap();
    assert_eq!(reg.list().len(), 1, "loaded at start");
    let _watcher = reg.spawn_watcher().unwrap();
    std::fs::write(dir.0.join("b.wasm"), fixed(1)).unwrap();
    std::fs::write(dir.0.join("notes.txt"), "not a plugin").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reg.get("b").is_none() {
        assert!(Instant::now() < deadline, "the watcher did not load b.wasm");
        std::thread::sleep(Duration::from_millis(10));
    }
    let names: Vec<String> = reg.list().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["a", "b"]);
    let row = serde_json::to_value(&reg.list()[0]).unwrap();
    assert_eq!(row["state"], "enabled");
    assert!(row["loaded_at"].as_str().unwrap().ends_with('Z'));
}

/// A plugin answering 0 from `select` and `plan` from `planner.plan`.
fn planned(plan: &[u32]) -> Vec<u8> {
    module(Spec { plan: Some(plan), ..spec("(i32.const 0)") })
}

/// How often each server of a 4-server pool is chosen for `n` first tries
/// when only those `eligible` accepts may take them.
fn first_tries(s: &WasmStrategy, pool: &Pool, n: usize, eligible: &dyn Fn(usize) -> bool) -> [u32; 4] {
    let mut counts = [0u32; 4];
    for _ in 0..n {
        counts[s.select(pool, &Pick { hash: 7, attempt: 0, eligible, request: None }).unwrap()] += 1;
    }
    counts
}

#[test]
fn a_plan_serves_first_tries_without_a_call() {
    let reg = registry(10);
    reg.insert_bytes("plan", &planned(&[0, 1, 3, 0])).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "plan", &t.pools[0]);
    let counts = first_tries(&s, &t.pools[0], 8_000, &all);
    // select would answer 0: none of it came from a call.
    assert_eq!((counts[0], counts[3]), (0, 0), "{counts:?}");
    assert!((5_700..6_300).contains(&counts[2]), "shares 1:3 → {counts:?}");
    let st = stat(&reg, "plan");
    assert_eq!((st.calls, st.planned, st.errors), (0, 8_000, 0));
    // Retries ask the plugin.
    assert_eq!(s.select(&t.pools[0], &pick(1)), Some(0));
    assert_eq!((stat(&reg, "plan").calls, stat(&reg, "plan").planned), (1, 8_000));
}

#[test]
fn a_draw_the_host_refuses_goes_to_select() {
    let reg = registry(10);
    reg.insert_bytes("plan", &planned(&[0, 1, 1, 0])).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "plan", &t.pools[0]);
    let counts = first_tries(&s, &t.pools[0], 1_000, &|i| i != 2);
    assert_eq!(counts[2], 0, "{counts:?}");
    let st = stat(&reg, "plan");
    // Half the draws land on 2: those are the plugin's (it answers 0).
    assert_eq!(u64::from(counts[0]), st.calls, "{counts:?} {st:?}");
    assert!((400..600).contains(&counts[0]), "{counts:?}");
    assert_eq!(st.planned, 1_000, "every first try was drawn");
}

#[test]
fn no_plan_or_a_bad_plan_means_a_call_per_request() {
    let t = table(4, None);
    for (name, plan, errors) in [("empty", &[][..], 0), ("zeros", &[0, 0, 0, 0][..], 0), ("short", &[1, 1, 1][..], 1)] {
        let reg = registry(10);
        reg.insert_bytes(name, &planned(plan)).unwrap();
        let s = strategy(&reg, name, &t.pools[0]);
        for _ in 0..10 {
            assert_eq!(s.select(&t.pools[0], &pick(0)), Some(0), "{name}");
        }
        let st = stat(&reg, name);
        assert_eq!((st.calls, st.planned, st.errors), (10, 0, errors), "{name}");
        assert_eq!(st.state, PluginState::Enabled, "{name}");
    }
}

#[test]
fn a_plugin_built_before_the_planner_still_loads_and_is_called() {
    let reg = registry(10);
    reg.insert_bytes("old", &module(Spec { plan: None, ..spec("(i32.const 1)") })).unwrap();
    let t = table(4, None);
    let s = strategy(&reg, "old", &t.pools[0]);
    for _ in 0..10 {
        assert_eq!(s.select(&t.pools[0], &pick(0)), Some(1));
    }
    assert_eq!((stat(&reg, "old").calls, stat(&reg, "old").planned), (10, 0));
}
