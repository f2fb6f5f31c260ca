//! Bindings for the `plugin` world (`wit/fastlb.wit`) and the host side of
//! one instance: its store data (memory limiter, name, log rate limiter) and
//! the `log` import.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, Func, HasSelf, Instance, Lift, Linker, Lower, TypedFunc,
};
use wasmtime::{Engine, ResourceLimiter, Store};

use super::registry::PluginStats;

// The host's view of world `plugin`: `log` and `strategy` through bindgen;
// `sticky` by hand ([`StickyIndices`]), because wasmtime 48's bindgen emits a
// local named after each export function and `sticky.lookup` shadows its
// `lookup` helper (the generated code does not compile); `planner` by hand
// ([`PlannerIndex`]) because it is optional, which bindgen's exports are not.
wasmtime::component::bindgen!({
    path: "../wit",
    inline: "
        package fastlb:host;
        world plugin-host {
            import fastlb:lb/log@0.1.0;
            export fastlb:lb/strategy@0.1.0;
        }
    ",
});

pub use self::fastlb::lb::log::Level;
pub use self::fastlb::lb::types::{Backend, ClientIp, Load, Method, PluginInfo, Request, SetCookie};

/// The `sticky` interface's `decision` variant.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(variant)]
pub enum Decision {
    #[component(name = "none")]
    None,
    #[component(name = "pin")]
    Pin(u32),
    #[component(name = "hash")]
    Hash(u64),
}

/// Name of the exported `sticky` instance.
pub const STICKY: &str = "fastlb:lb/sticky@0.1.0";

/// Where the `sticky` functions are in a component: looked up once per
/// compiled plugin.
#[derive(Clone)]
pub struct StickyIndices {
    lookup: ComponentExportIndex,
    on_response: ComponentExportIndex,
}

impl StickyIndices {
    /// Finds the exports (their types are checked by [`StickyIndices::load`]).
    pub fn new(component: &Component) -> wasmtime::Result<StickyIndices> {
        let instance = component
            .get_export_index(None, STICKY)
            .ok_or_else(|| wasmtime::format_err!("no exported instance named `{STICKY}`"))?;
        let func = |name: &str| {
            component
                .get_export_index(Some(&instance), name)
                .ok_or_else(|| wasmtime::format_err!("instance export `{STICKY}` does not have export `{name}`"))
        };
        Ok(StickyIndices { lookup: func("lookup")?, on_response: func("on-response")? })
    }

    /// The functions of one instance, type-checked.
    pub fn load(&self, store: &mut Store<HostState>, instance: &Instance) -> wasmtime::Result<Sticky> {
        let lookup = *instance.get_typed_func::<(&Request,), (Decision,)>(&mut *store, &self.lookup)?.func();
        let on_response =
            *instance.get_typed_func::<(&Request, u32), (Option<SetCookie>,)>(&mut *store, &self.on_response)?.func();
        Ok(Sticky { lookup, on_response })
    }
}

/// The `sticky` functions of one instance.
pub struct Sticky {
    lookup: Func,
    on_response: Func,
}

impl Sticky {
    pub fn call_lookup(&self, store: &mut Store<HostState>, req: &Request) -> wasmtime::Result<Decision> {
        // SAFETY: `StickyIndices::load` checked this function's type against
        // exactly these parameter and result types.
        let f = unsafe { TypedFunc::<(&Request,), (Decision,)>::new_unchecked(self.lookup) };
        Ok(f.call(store, (req,))?.0)
    }

    pub fn call_on_response(
        &self,
        store: &mut Store<HostState>,
        req: &Request,
        backend: u32,
    ) -> wasmtime::Result<Option<SetCookie>> {
        // SAFETY: as in `call_lookup`.
        let f = unsafe { TypedFunc::<(&Request, u32), (Option<SetCookie>,)>::new_unchecked(self.on_response) };
        Ok(f.call(store, (req, backend))?.0)
    }
}

/// Name of the exported `planner` instance (optional: components built
/// before it existed do not have it).
pub const PLANNER: &str = "fastlb:lb/planner@0.1.0";

/// Where `planner.plan` is in a component, if it exports one: looked up
/// once per compiled plugin.
#[derive(Clone)]
pub struct PlannerIndex(Option<ComponentExportIndex>);

impl PlannerIndex {
    /// Finds the export; a component without the `planner` instance has
    /// none, one whose `planner` lacks `plan` does not implement the world.
    pub fn new(component: &Component) -> wasmtime::Result<PlannerIndex> {
        let Some(instance) = component.get_export_index(None, PLANNER) else { return Ok(PlannerIndex(None)) };
        let plan = component
            .get_export_index(Some(&instance), "plan")
            .ok_or_else(|| wasmtime::format_err!("instance export `{PLANNER}` does not have export `plan`"))?;
        Ok(PlannerIndex(Some(plan)))
    }

    /// The `plan` function of one instance, type-checked, if the component has one.
    pub fn load(&self, store: &mut Store<HostState>, instance: &Instance) -> wasmtime::Result<Option<Planner>> {
        let Some(index) = &self.0 else { return Ok(None) };
        let plan = *instance.get_typed_func::<(), (Vec<u32>,)>(store, index)?.func();
        Ok(Some(Planner { plan }))
    }
}

/// The `planner.plan` function of one instance.
pub struct Planner {
    plan: Func,
}

impl Planner {
    pub fn call_plan(&self, store: &mut Store<HostState>) -> wasmtime::Result<Vec<u32>> {
        // SAFETY: `PlannerIndex::load` checked this function's type against
        // exactly these parameter and result types.
        let f = unsafe { TypedFunc::<(), (Vec<u32>,)>::new_unchecked(self.plan) };
        Ok(f.call(store, ())?.0)
    }
}

/// Log lines one instance may write per second; the rest are counted and
/// reported in one line when the next second starts.
pub const LOG_LINES_PER_SEC: u32 = 10;

/// The data of one plugin `Store`.
pub struct HostState {
    /// Plugin name, for log lines.
    pub name: Arc<str>,
    pub limits: MemoryLimiter,
    log: LogBudget,
}

impl HostState {
    /// State for one instance of a plugin whose memory may grow to
    /// `memory_limit` bytes; growth is reported to `stats`.
    pub fn new(name: Arc<str>, memory_limit: usize, stats: Arc<PluginStats>) -> HostState {
        HostState { name, limits: MemoryLimiter::new(memory_limit, stats), log: LogBudget::default() }
    }
}

/// Bounds the linear memory (and tables) of one instance. Growth past the
/// limit fails (`memory.grow` returns -1), it does not trap: a plugin may
/// cope, and one that aborts on it traps as any other.
pub struct MemoryLimiter {
    /// Bytes one linear memory may grow to.
    memory_limit: usize,
    /// Where growth is reported (`peak_memory`, `memory_denied`); growth is
    /// rare, so a shared atomic costs nothing here.
    stats: Arc<PluginStats>,
}

/// Table elements one instance may have (function tables of plugins are small).
const TABLE_ELEMENTS: usize = 10_000;

impl MemoryLimiter {
    pub fn new(memory_limit: usize, stats: Arc<PluginStats>) -> MemoryLimiter {
        MemoryLimiter { memory_limit, stats }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit || maximum.is_some_and(|m| desired > m) {
            self.stats.memory_denied.fetch_add(1, Ordering::Relaxed);
            return Ok(false);
        }
        self.stats.peak_memory.fetch_max(desired as u64, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS && maximum.is_none_or(|m| desired <= m))
    }
}

/// A per-instance log budget: [`LOG_LINES_PER_SEC`] lines per second.
#[derive(Default)]
struct LogBudget {
    window: Option<Instant>,
    used: u32,
    dropped: u64,
}

impl LogBudget {
    /// Whether one more line may be written now; when a new window opens
    /// after lines were dropped, returns how many were.
    fn take(&mut self, now: Instant) -> (bool, u64) {
        let mut dropped = 0;
        if self.window.is_none_or(|w| now.duration_since(w).as_secs() >= 1) {
            self.window = Some(now);
            self.used = 0;
            dropped = std::mem::take(&mut self.dropped);
        }
        if self.used < LOG_LINES_PER_SEC {
            self.used += 1;
            (true, dropped)
        } else {
            self.dropped += 1;
            (false, dropped)
        }
    }
}

impl self::fastlb::lb::log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let (ok, dropped) = self.log.take(Instant::now());
        let plugin = &*self.name;
        if dropped > 0 {
            tracing::warn!(target: "fastlb::plugin", plugin, dropped, "plugin log lines dropped (rate limit)");
        }
        if !ok {
            return;
        }
        match level {
            Level::Error => tracing::error!(target: "fastlb::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "fastlb::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "fastlb::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "fastlb::plugin", plugin, "{message}"),
        }
    }
}

impl self::fastlb::lb::types::Host for HostState {}

/// The linker every plugin is instantiated with: the `log` import only.
pub fn linker(engine: &Engine) -> Result<Linker<HostState>, String> {
    let mut linker = Linker::new(engine);
    PluginHost::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(|e| format!("cannot link the plugin imports: {e}"))?;
    Ok(linker)
}

/// The method of a request from its token, as the WIT enum (read by the
/// HTTP parser's own token table).
pub fn method_of(token: &[u8]) -> Method {
    use crate::http::Method as H;
    match H::from_bytes(token) {
        H::Get => Method::Get,
        H::Head => Method::Head,
        H::Post => Method::Post,
        H::Put => Method::Put,
        H::Delete => Method::Delete,
        H::Options => Method::Options,
        H::Trace => Method::Trace,
        H::Patch => Method::Patch,
        H::Connect | H::Other => Method::Other,
    }
}

/// The client address as the WIT variant (IPv4-mapped IPv6 as IPv4).
pub fn client_ip_of(ip: std::net::IpAddr) -> ClientIp {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => ClientIp::V4(u32::from(v4)),
        std::net::IpAddr::V6(v6) => {
            let n = u128::from(v6);
            ClientIp::V6(((n >> 64) as u64, n as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_budget_allows_ten_per_second_and_reports_drops() {
        let mut b = LogBudget::default();
        let t0 = Instant::now();
        for _ in 0..LOG_LINES_PER_SEC {
            assert_eq!(b.take(t0), (true, 0));
        }
        assert_eq!(b.take(t0), (false, 0));
        assert_eq!(b.take(t0), (false, 0));
        assert_eq!(b.take(t0 + std::time::Duration::from_secs(1)), (true, 2));
    }

    #[test]
    fn client_ip_packs_v4_and_maps_v4_in_v6() {
        let v4: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        assert!(matches!(client_ip_of(v4), ClientIp::V4(0x0a01_0203)));
        let mapped: std::net::IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(matches!(client_ip_of(mapped), ClientIp::V4(0x0a01_0203)));
        let v6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        assert!(matches!(client_ip_of(v6), ClientIp::V6((0x2001_0db8_0000_0000, 1))));
    }

    #[test]
    fn limiter_refuses_growth_past_the_limit() {
        let stats = Arc::new(PluginStats::new(1));
        let mut l = MemoryLimiter::new(2 << 16, Arc::clone(&stats));
        assert!(l.memory_growing(0, 2 << 16, None).unwrap());
        assert!(!l.memory_growing(2 << 16, 3 << 16, None).unwrap());
        assert_eq!(stats.peak_memory.load(Ordering::Relaxed), 2 << 16);
        assert_eq!(stats.memory_denied.load(Ordering::Relaxed), 1);
    }
}
