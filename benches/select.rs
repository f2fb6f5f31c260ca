//! ns per `balance::choose` call for every built-in strategy, at 8 and 1,000
//! backends (one pool, all primaries up, varied in-flight counts and
//! latencies so the least-* strategies compare for real), and what building
//! a strategy costs.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fastlb::balance::{Table, build, choose, mix64};
use fastlb::config::{AdminConfig, Config, PoolConfig, RuntimeConfig, ServerConfig, StrategyKind};

fn table(kind: StrategyKind, n: usize) -> Table {
    let servers = (0..n)
        .map(|i| {
            let addr = SocketAddr::from((Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8), 8080));
            let mut s = ServerConfig::new(&format!("s{i}"), addr);
            s.weight = 1 + (i % 4) as u16;
            s
        })
        .collect();
    let mut pool = PoolConfig::new("p", servers);
    pool.strategy = kind;
    let config = Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: vec![],
        pools: vec![pool],
        plugins: Default::default(),
    };
    let t = Table::build(&config, 1, None, 1);
    for (i, s) in t.pools[0].servers.iter().enumerate() {
        s.stats.live.active.store((i % 7) as u32, Ordering::Relaxed);
        s.stats.live.ewma_us.store(200 + (i % 13) as u64 * 50, Ordering::Relaxed);
    }
    t
}

fn select(c: &mut Criterion) {
    let mut group = c.benchmark_group("choose");
    for n in [8, 1_000] {
        for kind in StrategyKind::ALL {
            let t = table(kind, n);
            let pool = &t.pools[0];
            let strategy = build(pool);
            let mut k = 0u64;
            group.bench_function(BenchmarkId::new(kind.name(), n), |b| {
                b.iter(|| {
                    k += 1;
                    let hash = mix64(k);
                    choose(&*strategy, pool, black_box(hash), 0, 0, 0, None, None)
                })
            });
        }
    }
    group.finish();
}

/// Per-core, per-generation cost of building a strategy; only the hash
/// strategies precompute anything sizeable (Maglev's table).
fn build_strategy(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    for n in [8, 1_000] {
        for kind in [StrategyKind::ConsistentHash, StrategyKind::IpHash] {
            let t = table(kind, n);
            let pool = &t.pools[0];
            group.bench_function(BenchmarkId::new(kind.name(), n), |b| b.iter(|| build(black_box(pool))));
        }
    }
    group.finish();
}

criterion_group!(benches, select, build_strategy);
criterion_main!(benches);
