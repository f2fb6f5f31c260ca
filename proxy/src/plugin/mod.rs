//! WASM policy plugins: the host side of the `wit/fastlb.wit` contract.
//!
//! - [`engine`]: the process's one wasmtime `Engine` (Cranelift, component
//!   model without async, epoch interruption, pooling allocator) and the
//!   epoch ticker thread.
//! - [`host`]: the generated bindings, per-store host state (memory limiter,
//!   rate-limited `log` import).
//! - [`plan`]: the alias table a plugin's `planner.plan` becomes, which
//!   first tries are drawn from without a call.
//! - [`registry`]: compiled plugins published with arc-swap, the directory
//!   watcher, and the admin-facing `list`/`reload_now`/`set_enabled`.
//! - [`strategy`]: [`WasmStrategy`], a plugin as a `balance::Strategy`, with
//!   its per-core instance ([`CorePlugin`]), fallback and circuit breaker.
//!
//! Wiring: the control side makes one [`PluginRegistry`] (`PluginRegistry::new`
//! then `spawn_watcher`) and hands an `Arc` of it to each core; a core keeps
//! a [`CorePlugins`] and, per table generation, asks it for the strategy of
//! each pool with a plugin (`CorePlugins::strategy`), using `balance::build`
//! for the others.

pub mod engine;
pub mod host;
pub mod plan;
pub mod registry;
pub mod strategy;
#[cfg(test)]
mod tests;

pub use registry::{CompiledPlugin, PluginRegistry, PluginSet, PluginStat, PluginState, PluginStats, PluginWatcher};
pub use strategy::{CorePlugin, CorePlugins, StickyCookie, StickyDecision, WasmStrategy};
