//! Publishing backend tables: the cost of `Table::build` reusing the previous
//! table's live stats, and what a core pays to `load()` the current table
//! while the control thread keeps swapping new ones in.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use arc_swap::ArcSwap;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fastlb::balance::Table;
use fastlb::config::{AdminConfig, Config, PoolConfig, RuntimeConfig, ServerConfig};

/// `pools` pools of `per_pool` servers each.
fn config(pools: usize, per_pool: usize) -> Config {
    let pools = (0..pools)
        .map(|p| {
            let servers = (0..per_pool)
                .map(|i| {
                    let addr = SocketAddr::from((Ipv4Addr::new(10, p as u8, (i >> 8) as u8, i as u8), 80));
                    ServerConfig::new(&format!("s{i}"), addr)
                })
                .collect();
            PoolConfig::new(&format!("p{p}"), servers)
        })
        .collect();
    Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: vec![],
        pools,
        plugins: Default::default(),
    }
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("table_build_reusing_prev");
    for (pools, per_pool) in [(1, 8), (4, 250)] {
        let config = config(pools, per_pool);
        let prev = Table::build(&config, 2, None, 1);
        group.bench_function(BenchmarkId::from_parameter(pools * per_pool), |b| {
            b.iter(|| Table::build(black_box(&config), 2, Some(&prev), 2))
        });
    }
    group.finish();
}

/// Runs `background` on its own thread until the benchmark is done.
fn with_background<R>(mut background: impl FnMut() + Send + 'static, bench: impl FnOnce() -> R) -> R {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            background();
        }
    });
    let out = bench();
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("background thread");
    out
}

fn load_and_store(c: &mut Criterion) {
    let config = config(4, 250);
    let a = Arc::new(Table::build(&config, 2, None, 1));
    let b = Arc::new(Table::build(&config, 2, Some(&a), 2));
    let shared = Arc::new(ArcSwap::new(Arc::clone(&a)));
    let mut group = c.benchmark_group("arc_swap");

    group.bench_function("load_no_swaps", |bench| bench.iter(|| black_box(shared.load().generation)));

    // A writer swapping as fast as it can: far harsher than real reloads and
    // health flaps, so this bounds what a request pays.
    let (writer, wa, wb) = (Arc::clone(&shared), Arc::clone(&a), Arc::clone(&b));
    let mut flip = false;
    let writer = move || {
        flip = !flip;
        writer.store(Arc::clone(if flip { &wb } else { &wa }));
    };
    with_background(writer, || {
        group.bench_function("load_during_swaps", |bench| bench.iter(|| black_box(shared.load().generation)))
    });

    let reader = Arc::clone(&shared);
    with_background(
        move || {
            black_box(reader.load().generation);
        },
        || {
            let mut flip = false;
            group.bench_function("store_with_a_reader", |bench| {
                bench.iter(|| {
                    flip = !flip;
                    shared.store(Arc::clone(if flip { &b } else { &a }))
                })
            })
        },
    );
    group.finish();
}

criterion_group!(benches, build, load_and_store);
criterion_main!(benches);
