//! A plugin as a [`Strategy`]: the per-core side of the host.
//!
//! Each core holds one [`CorePlugin`] per pool that uses a plugin (via
//! [`CorePlugins`]); it owns that core's `Store` and instance, made from the
//! registry's shared pre-instance. Every call is bounded by the epoch
//! deadline and the memory limiter; a trap or timeout drops the instance
//! (the next call makes a new one), a bad answer is counted, and in every
//! case the pool's built-in fallback serves the request. `max_failures`
//! consecutive failures on a core open the circuit breaker for every core.
//!
//! A plugin that exports `planner` is asked for a plan after every
//! `set-table` and `set-load`; while it has one, first tries are drawn from
//! it ([`Plan`]) and `select` is only called for retries and for draws the
//! host's checks refuse.
//!
//! Nothing here takes a lock or allocates per request beyond what the
//! component ABI needs: the request record is reused between calls.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime::{Store, Trap};

use super::host::{
    Backend, ClientIp, Decision, HostState, Load, Method, Planner, PluginHost, Request, Sticky, client_ip_of, method_of,
};
use super::plan::Plan;
use super::registry::{CompiledPlugin, CoreSlot, PluginRegistry, PluginState, TIME_EVERY};
use crate::balance::strategies::Rng;
use crate::balance::table::{AdminState, Pool, Table, now_ms};
use crate::balance::{Pick, RequestView, Strategy};

/// How often load figures are pushed to a plugin while it is called.
pub const LOAD_PERIOD_MS: u64 = 100;

/// The clock is read for a due `set-load` on one call in this many.
const LOAD_POLL_EVERY: u64 = 16;

/// What a plugin's `sticky.lookup` decided, checked by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickyDecision {
    /// No stickiness (also: not a sticky plugin, or the call failed).
    None,
    /// This server index of the pool (in range; usability is the caller's check).
    Pin(usize),
    /// Map this key with the host's consistent hash.
    Hash(u64),
}

/// A cookie a sticky plugin wants set on the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyCookie {
    pub name: String,
    pub value: String,
    /// Max-Age in seconds; `None` = session cookie.
    pub max_age: Option<u32>,
}

/// What a plugin asked for in `plugin-info`.
struct Wants {
    host: bool,
    path: bool,
    /// Lower-case header names.
    headers: Vec<String>,
    cookie: Option<String>,
    sticky: bool,
}

/// A live instance on this core.
struct Live {
    store: Store<HostState>,
    plugin: PluginHost,
    sticky: Sticky,
    /// `planner.plan`, if the plugin exports it.
    planner: Option<Planner>,
    /// Its latest answer (empty: none, call `select`).
    plan: Plan,
    wants: Wants,
    /// Token of the strategy whose table was pushed last (0: none yet).
    table_token: u64,
    /// When load figures were pushed last (`now_ms`), 0: never.
    load_ms: u64,
}

/// Why a call failed.
enum Failure {
    /// Trapped (including a failed instantiation): the instance is dropped.
    Trap(String),
    /// Interrupted at the deadline: the instance is dropped.
    Timeout,
    /// Answered something the host cannot use.
    BadAnswer(String),
}

/// The per-request calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Select,
    /// `sticky.lookup`: only for plugins that asked for the sticky hooks.
    Lookup,
    /// `sticky.on-response`: likewise.
    OnResponse,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Select => "select",
            Call::Lookup => "sticky lookup",
            Call::OnResponse => "sticky on-response",
        }
    }
}

/// Per-core mutable state of one plugin slot.
struct CoreState {
    /// Registry generation last looked at.
    seen_generation: u64,
    compiled: Option<Arc<CompiledPlugin>>,
    live: Option<Live>,
    /// Consecutive failures on this core.
    failures: u32,
    /// Calls so far on this core (for sampling which are timed).
    calls: u64,
    last_warn: Option<Instant>,
    /// The request record, reused between calls (its strings keep their capacity).
    req: Request,
    spare_headers: Vec<(String, String)>,
    loads: Vec<Load>,
    /// Draws from the plan.
    rng: Rng,
}

/// One core's instance of one plugin for one pool (pools differ in
/// `plugin_config` and backends, so they do not share an instance).
/// Lives across table generations; owned by the worker (`Rc`).
pub struct CorePlugin {
    registry: Arc<PluginRegistry>,
    name: String,
    config_json: String,
    core: usize,
    /// Token of the newest [`WasmStrategy`]: older ones (in-flight requests
    /// on a previous table) use their fallback rather than re-pushing their table.
    latest_token: Cell<u64>,
    state: RefCell<CoreState>,
}

impl CorePlugin {
    /// A slot for plugin `name` with the pool's `plugin_config` JSON, on `core`.
    /// Instantiates lazily.
    pub fn new(registry: Arc<PluginRegistry>, name: &str, config_json: &str, core: usize) -> CorePlugin {
        CorePlugin {
            registry,
            name: name.to_string(),
            config_json: config_json.to_string(),
            core,
            latest_token: Cell::new(0),
            state: RefCell::new(CoreState {
                seen_generation: u64::MAX,
                compiled: None,
                live: None,
                failures: 0,
                calls: 0,
                last_warn: None,
                req: empty_request(),
                spare_headers: Vec::new(),
                loads: Vec::new(),
                rng: Rng::new(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this slot serves plugin `name` with `config_json` (if not, a
    /// reload changed the pool's plugin: make a new slot).
    pub fn matches(&self, name: &str, config_json: &str) -> bool {
        self.name == name && self.config_json == config_json
    }

    /// Whether the plugin in force asked for the sticky hooks (instantiates
    /// it if needed, so the answer is known before the first request).
    fn is_sticky(&self, pool: &Pool, token: u64) -> bool {
        let Ok(mut st) = self.state.try_borrow_mut() else { return false };
        self.ready(&mut st, pool, token, false) && st.live.as_ref().is_some_and(|l| l.wants.sticky)
    }

    /// Makes the instance serve `pool` with the strategy of `token`: checks
    /// the registry for a new version, instantiates and `init`s if needed,
    /// pushes the table and (every [`LOAD_PERIOD_MS`]) the load. False: use
    /// the fallback.
    ///
    /// `poll_load`: whether to look at the clock for a due `set-load` (the
    /// per-request path does so on one call in [`LOAD_POLL_EVERY`]).
    fn ready(&self, st: &mut CoreState, pool: &Pool, token: u64, poll_load: bool) -> bool {
        let generation = self.registry.generation();
        if generation != st.seen_generation {
            st.seen_generation = generation;
            let current = self.registry.get(&self.name);
            let same = match (&current, &st.compiled) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                st.compiled = current;
                st.live = None;
                st.failures = 0;
            }
        }
        // Borrowed, not cloned: an Arc clone per call would bounce its
        // count between the cores.
        let Some(compiled) = st.compiled.as_ref() else { return false };
        if compiled.stats.state() != PluginState::Enabled || token < self.latest_token.get() {
            return false;
        }
        if st.live.is_none() {
            match self.instantiate(compiled) {
                Ok(live) => st.live = Some(live),
                Err(Some(f)) => {
                    self.fail(st, f);
                    return false;
                }
                Err(None) => return false,
            }
        }
        let limits = self.registry.limits();
        let live = st.live.as_mut().expect("instantiated above");
        let mut pushed = false;
        if live.table_token != token {
            let backends = backends_of(pool);
            live.store.set_epoch_deadline(limits.setup_ticks);
            if let Err(e) = live.plugin.fastlb_lb_strategy().call_set_table(&mut live.store, &backends) {
                self.fail(st, failure_of(e, "set-table"));
                return false;
            }
            live.table_token = token;
            live.load_ms = 0;
            pushed = true;
        }
        let now = if live.load_ms == 0 || poll_load { now_ms() } else { 0 };
        if live.load_ms == 0 || now.saturating_sub(live.load_ms) >= LOAD_PERIOD_MS {
            live.load_ms = now.max(1);
            st.loads.clear();
            st.loads.extend(pool.servers.iter().enumerate().map(|(i, s)| Load {
                index: i as u32,
                active: s.active(),
                ewma_us: s.ewma_us(),
            }));
            live.store.set_epoch_deadline(limits.setup_ticks);
            if let Err(e) = live.plugin.fastlb_lb_strategy().call_set_load(&mut live.store, &st.loads) {
                self.fail(st, failure_of(e, "set-load"));
                return false;
            }
            pushed = true;
        }
        if pushed && live.planner.is_some() {
            return self.replan(st, pool.servers.len());
        }
        true
    }

    /// Asks the plugin for a plan of `servers` shares (after a push) and
    /// builds its alias table. False: the call failed (counted, instance
    /// dropped on a trap); a bad plan is counted and leaves none, so
    /// `select` serves.
    fn replan(&self, st: &mut CoreState, servers: usize) -> bool {
        let Some(live) = st.live.as_mut() else { return false };
        let Some(planner) = &live.planner else { return true };
        live.plan = Plan::default();
        live.store.set_epoch_deadline(self.registry.limits().setup_ticks);
        match planner.call_plan(&mut live.store) {
            Ok(weights) if weights.is_empty() || weights.len() == servers => {
                live.plan = Plan::build(&weights);
                true
            }
            Ok(weights) => {
                self.fail(st, Failure::BadAnswer(format!("plan has {} shares for {servers} backends", weights.len())));
                true
            }
            Err(e) => {
                self.fail(st, failure_of(e, "plan"));
                false
            }
        }
    }

    /// The first try of a request drawn from the plugin's plan, without a
    /// call. `None`: no plan now (not ready, none given), so call `select`.
    fn draw(&self, pool: &Pool, token: u64) -> Option<usize> {
        let Ok(mut st) = self.state.try_borrow_mut() else { return None };
        let st = &mut *st;
        st.calls += 1;
        if !self.ready(st, pool, token, st.calls % LOAD_POLL_EVERY == 0) {
            return None;
        }
        let i = st.live.as_ref()?.plan.draw(st.rng.next_u64())?;
        if let Some(compiled) = &st.compiled {
            bump(&compiled.stats.core(self.core).planned);
        }
        Some(i)
    }

    /// A new instance with `init` done. `Err(None)`: `init` refused the
    /// config (the plugin is marked failed, not counted as a trap).
    fn instantiate(&self, compiled: &CompiledPlugin) -> Result<Live, Option<Failure>> {
        let limits = self.registry.limits();
        let mut store = Store::new(
            self.registry.engine(),
            HostState::new(Arc::clone(&compiled.name), limits.memory_limit, Arc::clone(&compiled.stats)),
        );
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(limits.setup_ticks);
        compiled.stats.instantiations.fetch_add(1, Ordering::Relaxed);
        let (plugin, sticky, planner) = compiled
            .instantiate(&mut store)
            .map_err(|e| Some(Failure::Trap(format!("instantiation failed: {e:#}"))))?;
        store.set_epoch_deadline(limits.setup_ticks);
        let info = match plugin.fastlb_lb_strategy().call_init(&mut store, &self.config_json) {
            Ok(Ok(info)) => info,
            Ok(Err(reason)) => {
                let msg = format!("init rejected the config {}: {reason}", self.config_json);
                tracing::warn!(target: "fastlb::plugin", plugin = %self.name, "{msg}");
                compiled.stats.set_error(msg);
                compiled.stats.set_state(PluginState::Failed);
                return Err(None);
            }
            Err(e) => return Err(Some(failure_of(e, "init"))),
        };
        let wants = Wants {
            host: info.wants_host,
            path: info.wants_path,
            headers: info.wants_headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
            cookie: info.wants_cookie,
            sticky: info.sticky,
        };
        Ok(Live { store, plugin, sticky, planner, plan: Plan::default(), wants, table_token: 0, load_ms: 0 })
    }

    /// Counts a failure; drops the instance after a trap or timeout; opens
    /// the circuit breaker after `max_failures` in a row.
    fn fail(&self, st: &mut CoreState, failure: Failure) {
        let Some(compiled) = st.compiled.clone() else { return };
        let stats = &compiled.stats;
        let slot = stats.core(self.core);
        let reason = match failure {
            Failure::Trap(msg) => {
                bump(&slot.traps);
                st.live = None;
                msg
            }
            Failure::Timeout => {
                bump(&slot.timeouts);
                st.live = None;
                "call timed out".to_string()
            }
            Failure::BadAnswer(msg) => {
                bump(&slot.errors);
                msg
            }
        };
        st.failures += 1;
        let max = self.registry.limits().max_failures;
        if st.failures >= max {
            st.failures = 0;
            let msg =
                format!("circuit breaker open after {max} consecutive failures on core {}; last: {reason}", self.core);
            tracing::warn!(target: "fastlb::plugin", plugin = %self.name, "{msg}");
            stats.set_error(msg);
            stats.set_state(PluginState::Disabled);
            return;
        }
        // One line per second per core: a plugin failing on every other
        // request must not flood the log.
        let now = Instant::now();
        if st.last_warn.is_none_or(|t| now.duration_since(t).as_secs() >= 1) {
            st.last_warn = Some(now);
            tracing::warn!(target: "fastlb::plugin", plugin = %self.name, core = self.core, "plugin call failed, fallback used: {reason}");
        }
        stats.set_error(reason);
    }

    /// Runs one per-request call (`select`, `lookup`, `on-response`) with
    /// the request record filled, the deadline set and the stats counted.
    /// `None`: the fallback serves (not ready, or the call failed).
    fn call<R>(
        &self,
        pool: &Pool,
        token: u64,
        view: Option<&RequestView<'_>>,
        hash: u64,
        what: Call,
        f: impl FnOnce(&PluginHost, &Sticky, &mut Store<HostState>, &Request) -> wasmtime::Result<R>,
    ) -> Option<R> {
        let Ok(mut st) = self.state.try_borrow_mut() else { return None };
        let st = &mut *st;
        st.calls += 1;
        if !self.ready(st, pool, token, st.calls % LOAD_POLL_EVERY == 0) {
            return None;
        }
        let live = st.live.as_mut()?;
        if what != Call::Select && !live.wants.sticky {
            return None;
        }
        fill_request(&mut st.req, &mut st.spare_headers, &live.wants, view, hash);
        live.store.set_epoch_deadline(self.registry.limits().call_ticks);
        let started = (st.calls % TIME_EVERY == 0).then(Instant::now);
        let result = f(&live.plugin, &live.sticky, &mut live.store, &st.req);
        if let Some(compiled) = &st.compiled {
            let slot: &CoreSlot = compiled.stats.core(self.core);
            if let Some(t) = started {
                bump(&slot.timed);
                slot.total_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            bump(&slot.calls);
        }
        match result {
            Ok(r) => Some(r),
            Err(e) => {
                self.fail(st, failure_of(e, what.name()));
                None
            }
        }
    }

    /// Counts a bad answer (after a successful call).
    fn bad_answer(&self, msg: String) {
        if let Ok(mut st) = self.state.try_borrow_mut() {
            self.fail(&mut st, Failure::BadAnswer(msg));
        }
    }

    /// A successful, usable answer: the failure streak ends.
    #[inline]
    fn succeeded(&self) {
        if let Ok(mut st) = self.state.try_borrow_mut() {
            st.failures = 0;
        }
    }

    fn next_token(&self) -> u64 {
        let t = self.latest_token.get() + 1;
        self.latest_token.set(t);
        t
    }
}

/// Adds one to a counter of this core's [`CoreSlot`] (single writer: see
/// [`table::bump`](crate::balance::table::bump)).
#[inline]
fn bump(c: &std::sync::atomic::AtomicU64) {
    crate::balance::table::bump(c, 1);
}

/// Classifies a call error: the epoch deadline is a timeout, anything else a trap.
fn failure_of(e: wasmtime::Error, what: &str) -> Failure {
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        Failure::Timeout
    } else {
        Failure::Trap(format!("{what} trapped: {e:#}"))
    }
}

/// The pool's backends as `set-table` sends them.
fn backends_of(pool: &Pool) -> Vec<Backend> {
    let now = now_ms();
    pool.servers
        .iter()
        .enumerate()
        .map(|(i, s)| Backend {
            index: i as u32,
            id: s.key.to_string(),
            name: s.name.to_string(),
            weight: u32::from(s.weight),
            zone: s.zone.as_deref().map(str::to_string),
            backup: s.backup,
            tags: s.tags.to_vec(),
            healthy: s.usable(now, false),
            draining: s.state == AdminState::Drain,
        })
        .collect()
}

fn empty_request() -> Request {
    Request {
        method: Method::Other,
        client_ip: ClientIp::V4(0),
        hash: 0,
        host: None,
        path: None,
        headers: Vec::new(),
        cookie: None,
    }
}

/// Refills `req` for one call, reusing its strings' capacity. Only the
/// strings the plugin asked for are set.
fn fill_request(
    req: &mut Request,
    spare: &mut Vec<(String, String)>,
    wants: &Wants,
    view: Option<&RequestView<'_>>,
    hash: u64,
) {
    req.hash = hash;
    spare.append(&mut req.headers);
    let Some(v) = view else {
        req.method = Method::Other;
        req.client_ip = ClientIp::V4(0);
        req.host = None;
        req.path = None;
        req.cookie = None;
        return;
    };
    req.method = method_of(v.method);
    req.client_ip = client_ip_of(v.client_ip);
    set_opt(&mut req.host, if wants.host { v.host } else { None });
    set_opt(&mut req.path, wants.path.then_some(v.path));
    for name in &wants.headers {
        if let Some(value) = v.fields.header(name) {
            let (mut n, mut val) = spare.pop().unwrap_or_default();
            set_str(&mut n, name.as_bytes());
            set_str(&mut val, value);
            req.headers.push((n, val));
        }
    }
    set_opt(&mut req.cookie, wants.cookie.as_deref().and_then(|c| v.fields.cookie(c)));
}

fn set_opt(slot: &mut Option<String>, value: Option<&[u8]>) {
    match value {
        Some(b) => set_str(slot.get_or_insert_with(String::new), b),
        None => *slot = None,
    }
}

/// `s = bytes` as UTF-8 (invalid sequences replaced), keeping `s`'s capacity.
fn set_str(s: &mut String, bytes: &[u8]) {
    s.clear();
    match std::str::from_utf8(bytes) {
        Ok(v) => s.push_str(v),
        Err(_) => s.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// A plugin strategy for one pool on one core and one table generation.
pub struct WasmStrategy {
    core: Rc<CorePlugin>,
    token: u64,
    fallback: Box<dyn Strategy>,
}

impl WasmStrategy {
    /// Built where the data path builds a strategy (per core per table
    /// generation); pushes the pool's table to the plugin now (instantiating
    /// it on first use). `fallback` is the pool's built-in strategy.
    pub fn new(core: Rc<CorePlugin>, pool: &Pool, fallback: Box<dyn Strategy>) -> WasmStrategy {
        let token = core.next_token();
        if let Ok(mut st) = core.state.try_borrow_mut() {
            core.ready(&mut st, pool, token, false);
        }
        WasmStrategy { core, token, fallback }
    }

    /// The pool's built-in strategy, which serves whatever the plugin does not.
    pub fn fallback(&self) -> &dyn Strategy {
        &*self.fallback
    }

    /// The core slot this strategy calls.
    pub fn core_plugin(&self) -> &Rc<CorePlugin> {
        &self.core
    }

    /// Whether the plugin asked for the sticky hooks (`plugin-info.sticky`).
    /// False while it is not serving (disabled, removed, failing).
    pub fn is_sticky(&self, pool: &Pool) -> bool {
        self.core.is_sticky(pool, self.token)
    }

    /// The plugin's sticky decision for a request (call before `choose`).
    /// `Pin` is range-checked here; whether that server is usable is the
    /// caller's check (as for a sticky cookie). `None` for a plugin that is
    /// not sticky and on any failure.
    pub fn sticky_lookup(&self, pool: &Pool, req: Option<&RequestView<'_>>, hash: u64) -> StickyDecision {
        let decision = self
            .core
            .call(pool, self.token, req, hash, Call::Lookup, |_, sticky, store, r| sticky.call_lookup(store, r));
        match decision {
            Some(Decision::None) | None => StickyDecision::None,
            Some(Decision::Hash(h)) => {
                self.core.succeeded();
                StickyDecision::Hash(h)
            }
            Some(Decision::Pin(i)) if (i as usize) < pool.servers.len() => {
                self.core.succeeded();
                StickyDecision::Pin(i as usize)
            }
            Some(Decision::Pin(i)) => {
                self.core.bad_answer(format!("sticky lookup pinned index {i} of {}", pool.servers.len()));
                StickyDecision::None
            }
        }
    }

    /// The cookie a sticky plugin wants set on the response once `backend`
    /// is chosen. `None` for a plugin that is not sticky and on any failure.
    pub fn on_response(
        &self,
        pool: &Pool,
        req: Option<&RequestView<'_>>,
        hash: u64,
        backend: usize,
    ) -> Option<StickyCookie> {
        let cookie = self.core.call(pool, self.token, req, hash, Call::OnResponse, |_, sticky, store, r| {
            sticky.call_on_response(store, r, backend as u32)
        })??;
        if cookie.name.is_empty()
            || !cookie.name.bytes().all(is_token_byte)
            || !cookie.value.bytes().all(is_cookie_byte)
        {
            self.core.bad_answer(format!("on-response: invalid cookie {:?}={:?}", cookie.name, cookie.value));
            return None;
        }
        self.core.succeeded();
        Some(StickyCookie { name: cookie.name, value: cookie.value, max_age: cookie.max_age })
    }
}

/// RFC 6265 cookie-name (an RFC 9110 token).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6265 cookie-octet: no controls, whitespace, DQUOTE, comma, semicolon, backslash.
fn is_cookie_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

impl Strategy for WasmStrategy {
    fn select(&self, pool: &Pool, pick: &Pick<'_>) -> Option<usize> {
        // A plan serves first tries that the host's checks accept; a retry,
        // or a draw they refuse (the plan is as old as the last push), asks
        // the plugin.
        if pick.attempt == 0
            && let Some(i) = self.core.draw(pool, self.token)
            && (pick.eligible)(i)
        {
            return Some(i);
        }
        let answer = self.core.call(pool, self.token, pick.request, pick.hash, Call::Select, |plugin, _, store, r| {
            plugin.fastlb_lb_strategy().call_select(store, r, pick.attempt)
        });
        match answer {
            Some(Some(i)) if (i as usize) < pool.servers.len() => {
                let i = i as usize;
                if (pick.eligible)(i) {
                    self.core.succeeded();
                    return Some(i);
                }
                // In range but not eligible for this attempt (tried
                // already, not in the tier asked for, out since the
                // table was pushed): counted, but not a breaker failure,
                // since the plugin cannot see every reason.
                if let Some(c) = self.core.state.try_borrow().ok().and_then(|st| st.compiled.clone()) {
                    bump(&c.stats.core(self.core.core).errors);
                }
            }
            Some(Some(i)) => self.core.bad_answer(format!("select answered index {i} of {}", pool.servers.len())),
            Some(None) => self.core.succeeded(),
            None => {}
        }
        self.fallback.select(pool, pick)
    }
}

/// The plugin slots of one core, by pool name: what a worker keeps across
/// table generations so that instances survive table swaps.
pub struct CorePlugins {
    registry: Arc<PluginRegistry>,
    core: usize,
    slots: RefCell<HashMap<Arc<str>, Rc<CorePlugin>>>,
}

impl CorePlugins {
    pub fn new(registry: Arc<PluginRegistry>, core: usize) -> CorePlugins {
        CorePlugins { registry, core, slots: RefCell::new(HashMap::new()) }
    }

    /// The plugin strategy for `pool` (its `strategy = "plugin:NAME"`),
    /// with the pool's built-in as fallback; `None` for a pool without a
    /// plugin (use `balance::build`). Call once per core per table generation.
    pub fn strategy(&self, pool: &Pool) -> Option<WasmStrategy> {
        let p = pool.config.plugin.as_ref()?;
        let slot = {
            let mut slots = self.slots.borrow_mut();
            match slots.get(&pool.name) {
                Some(s) if s.matches(&p.name, &p.config_json) => Rc::clone(s),
                _ => {
                    if self.core == 0 && self.registry.get(&p.name).is_none() {
                        tracing::warn!(target: "fastlb::plugin", pool = %pool.name, plugin = %p.name,
                            "the pool's plugin is not loaded; its fallback serves until it is");
                    }
                    let s = Rc::new(CorePlugin::new(Arc::clone(&self.registry), &p.name, &p.config_json, self.core));
                    slots.insert(Arc::clone(&pool.name), Rc::clone(&s));
                    s
                }
            }
        };
        Some(WasmStrategy::new(slot, pool, crate::balance::build(pool)))
    }

    /// Drops the slots of pools that `table` no longer has (or that no
    /// longer use a plugin), freeing their instances.
    pub fn prune(&self, table: &Table) {
        self.slots
            .borrow_mut()
            .retain(|name, _| table.pools.iter().any(|p| p.name == *name && p.config.plugin.is_some()));
    }
}
