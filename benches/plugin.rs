//! ns per `select` through a WASM plugin vs the built-in round robin, at 8
//! and 1,000 backends (both through `balance::choose`, as the data path
//! calls them), and the cost of `set-table` at 1,000 backends.
//!
//! The plugins are the WAT fixtures of the host's tests
//! (`proxy/src/plugin/testdata/fixture.wat`): one answering a fixed index,
//! one doing round robin over the table it was given, and one that gives a
//! plan (`planner.plan`, equal shares), so first tries never call it.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fastlb::balance::{RequestFields, RequestView, Table, build, choose};
use fastlb::config::{AdminConfig, Config, PluginsConfig, PoolConfig, RuntimeConfig, ServerConfig};
use fastlb::plugin::{CorePlugin, PluginRegistry, WasmStrategy};

const FIXTURE: &str = include_str!("../proxy/src/plugin/testdata/fixture.wat");
const FIXED: &str = "(i32.const 3)";
const ROUND_ROBIN: &str = "(if (result i32) (global.get $n) \
    (then (global.set $rr (i32.add (global.get $rr) (i32.const 1))) (i32.rem_u (global.get $rr) (global.get $n))) \
    (else (i32.const -1)))";

/// A plugin core module from the fixture, with the world embedded; its
/// plan gives `plan` backends a share of 1 each (0: no plan).
fn plugin(select: &str, plan: usize) -> Vec<u8> {
    let wat = FIXTURE
        .replace("{PLAN_LEN}", &plan.to_string())
        .replace("{PLAN_DATA}", &"\\01\\00\\00\\00".repeat(plan))
        .replace("{SELECT}", select)
        .replace("{WANTS_PATH}", "00")
        .replace("{STICKY}", "00")
        .replace("{INIT}", "(i32.const 64)");
    let mut bytes = wat::parse_str(&wat).expect("fixture WAT");
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("wit")).expect("wit/");
    let world = resolve.select_world(&[pkg], None).expect("world");
    wit_component::embed_component_metadata(&mut bytes, &resolve, world, wit_component::StringEncoding::UTF8)
        .expect("metadata");
    bytes
}

fn table(n: usize) -> Table {
    let servers = (0..n)
        .map(|i| {
            let addr = SocketAddr::from((Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8), 8080));
            let mut s = ServerConfig::new(&format!("s{i}"), addr);
            s.tags = vec!["web".into()];
            s
        })
        .collect();
    let config = Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: vec![],
        pools: vec![PoolConfig::new("p", servers)],
        plugins: Default::default(),
    };
    Table::build(&config, 1, None, 1)
}

struct Fields;

impl RequestFields for Fields {
    fn header(&self, _: &str) -> Option<&[u8]> {
        None
    }
    fn cookie(&self, _: &str) -> Option<&[u8]> {
        None
    }
}

fn registry() -> Arc<PluginRegistry> {
    let config = PluginsConfig { call_timeout: Duration::from_millis(2), ..PluginsConfig::default() };
    let reg = PluginRegistry::new(&config, 1).expect("engine");
    reg.insert_bytes("fixed", &plugin(FIXED, 0)).expect("fixed loads");
    reg.insert_bytes("rr", &plugin(ROUND_ROBIN, 0)).expect("rr loads");
    for n in SIZES {
        reg.insert_bytes(&format!("planned{n}"), &plugin(FIXED, n)).expect("planned loads");
    }
    reg
}

/// Pool sizes benchmarked.
const SIZES: [usize; 2] = [8, 1_000];

fn select(c: &mut Criterion) {
    let reg = registry();
    let view = RequestView {
        method: b"GET",
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        host: Some(b"example.com"),
        path: b"/index.html",
        fields: &Fields,
    };
    let mut group = c.benchmark_group("plugin_select");
    for n in SIZES {
        let t = table(n);
        let pool = &t.pools[0];
        let builtin = build(pool);
        group.bench_function(BenchmarkId::new("builtin_round_robin", n), |b| {
            b.iter(|| choose(&*builtin, pool, 0, 0, 0, 0, None, Some(black_box(&view))))
        });
        for name in ["fixed", "rr", &format!("planned{n}")] {
            let slot = Rc::new(CorePlugin::new(Arc::clone(&reg), name, "{}", 0));
            let wasm = WasmStrategy::new(slot, pool, build(pool));
            let label = name.trim_end_matches(char::is_numeric);
            group.bench_function(BenchmarkId::new(format!("wasm_{label}"), n), |b| {
                b.iter(|| choose(&wasm, pool, 0, 0, 0, 0, None, Some(black_box(&view))))
            });
        }
    }
    group.finish();
}

fn set_table(c: &mut Criterion) {
    let reg = registry();
    let t = table(1_000);
    let pool = &t.pools[0];
    let slot = Rc::new(CorePlugin::new(Arc::clone(&reg), "rr", "{}", 0));
    let mut group = c.benchmark_group("plugin_set_table");
    // Each new strategy (a new table generation) pushes the whole table.
    group.bench_function(BenchmarkId::new("wasm_rr", 1_000), |b| {
        b.iter(|| WasmStrategy::new(Rc::clone(&slot), pool, build(pool)))
    });
    group.finish();
}

criterion_group!(benches, select, set_table);
criterion_main!(benches);
