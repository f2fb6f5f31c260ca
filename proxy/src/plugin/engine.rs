//! The one wasmtime `Engine` of the process and its epoch ticker.
//!
//! Components are compiled on the control side (the plugin watcher), never on
//! a data-path core: the `parallel-compilation` feature is off, so a compile
//! runs on the calling thread only. Every call into a plugin is bounded by
//! epoch interruption; the ticker thread advances the epoch every
//! [`EPOCH_TICK`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the ticker advances the epoch: the unit of `call_timeout`.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Plugin instances one core may hold at once (one per pool that uses a
/// plugin), before the pooling allocator refuses more. Instances beyond it
/// fail to instantiate and their pools use the fallback.
pub const INSTANCES_PER_CORE: u32 = 16;

/// Instance slots kept for the control side (load-time checks) and for the
/// overlap while a core replaces an instance.
const SPARE_INSTANCES: u32 = 16;

/// Builds the process's engine: Cranelift, component model without async,
/// epoch interruption, and a pooling allocator sized for `cores` workers
/// whose plugin memories may grow to `memory_limit` bytes.
pub fn new_engine(cores: usize, memory_limit: usize) -> Result<Engine, String> {
    let slots = (cores.max(1) as u32).saturating_mul(INSTANCES_PER_CORE).saturating_add(SPARE_INSTANCES);
    // Whole wasm pages: a limit that is not a page multiple would only be
    // rounded down by `memory.grow` anyway.
    let memory_limit = memory_limit.max(1 << 16).div_ceil(1 << 16) << 16;

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        // A core module wrapped by wit-component is up to three core
        // instances (the module, an indirect-call shim and its fixup).
        .max_core_instances_per_component(8)
        .total_core_instances(slots.saturating_mul(4))
        .max_memories_per_component(2)
        .max_memories_per_module(1)
        .total_memories(slots)
        .max_memory_size(memory_limit)
        .max_tables_per_component(4)
        .max_tables_per_module(1)
        .total_tables(slots.saturating_mul(2))
        .table_elements(10_000)
        // Keep a few pages resident between instances: re-instantiation after
        // a trap then costs no page faults for the first stack and data.
        .linear_memory_keep_resident(64 << 10);

    match Engine::new(&config(InstanceAllocationStrategy::Pooling(pool))) {
        Ok(engine) => Ok(engine),
        // The pool reserves its address space up front (guard regions per
        // memory): an address-space limit (`ulimit -v`, valgrind) refuses
        // it. Allocating per instance works there, a little slower.
        Err(pooling) => {
            tracing::warn!(error = %pooling, "WASM pooling allocator unavailable, allocating plugin instances on demand");
            Engine::new(&config(InstanceAllocationStrategy::OnDemand))
                .map_err(|e| format!("cannot set up the WASM engine: {e} (pooling allocator: {pooling})"))
        }
    }
}

fn config(strategy: InstanceAllocationStrategy) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        // The async machinery makes every call ~3× slower; nothing here needs it.
        .concurrency_support(false)
        .epoch_interruption(true)
        // Backtraces are collected on every trap; a trapping plugin is
        // reported by its trap code, so skip the stack walk.
        .wasm_backtrace_max_frames(None)
        .allocation_strategy(strategy);
    config
}

/// The epoch ticker thread ("fastlb-epoch"): advances the engine's epoch
/// every [`EPOCH_TICK`] until stopped (explicitly or by drop).
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the thread.
    pub fn start(engine: &Engine) -> Result<EpochTicker, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.clone(), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("fastlb-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| format!("cannot start the epoch ticker: {e}"))?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }

    /// Stops the thread and waits for it (at most one tick).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Epoch ticks to allow one call that should take at most `timeout`: whole
/// milliseconds rounded up, and at least 2 so that a call is never
/// interrupted merely for starting just before a tick.
pub fn deadline_ticks(timeout: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    (timeout.as_nanos().div_ceil(tick) as u64).max(2)
}
