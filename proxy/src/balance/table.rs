//! The backend table: an immutable snapshot of pools and servers, published
//! with arc-swap. Live counters hang off each server by `Arc`, keyed by the
//! server's stable key (`pool/server`), so a new table built from the old one
//! keeps them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use crossbeam_utils::CachePadded;

use crate::config::{Config, HashKey, PoolConfig, ServerConfig, StickyConfig, StrategyKind};

/// Administrative state of a server (set by admin commands; health later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Takes traffic.
    Up,
    /// No new clients; sticky clients still served.
    Drain,
    /// No traffic at all.
    Maint,
}

/// Counters that must be global to be correct: read by strategies on every
/// core. Each on its own cache line so cores updating different servers do
/// not contend.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Requests in flight to this server, across all cores.
    pub active: CachePadded<AtomicU32>,
    /// EWMA of response time (head received) in microseconds; 0 = no sample yet.
    pub ewma_us: CachePadded<AtomicU64>,
    /// Consecutive connect failures (passive check); reset on success.
    pub consecutive_fails: CachePadded<AtomicU32>,
    /// While `now_ms() < cooldown_until_ms`, the server is out of rotation.
    pub cooldown_until_ms: CachePadded<AtomicU64>,
    /// Consecutive 5xx responses (outlier detection); reset by any other.
    pub consecutive_5xx: CachePadded<AtomicU32>,
    /// Ejections so far: each lasts `base_ejection` × this, capped.
    pub ejections: CachePadded<AtomicU32>,
}

/// Reported-only counters for one server on one core. Written only by that
/// core (relaxed, uncontended), summed across cores when read.
#[derive(Debug, Default)]
pub struct CoreCounters {
    pub requests: AtomicU64,
    /// Responses by class: index 0 = 1xx … 4 = 5xx.
    pub responses: [AtomicU64; 5],
    pub connect_errors: AtomicU64,
    pub errors: AtomicU64,
    pub retries: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Upstream connections opened by this core.
    pub conns_opened: AtomicU64,
}

/// Everything live about one server: survives table swaps.
#[derive(Debug)]
pub struct ServerStats {
    pub live: LiveCounters,
    pub per_core: Box<[CachePadded<CoreCounters>]>,
}

impl ServerStats {
    pub fn new(cores: usize) -> Self {
        ServerStats {
            live: LiveCounters::default(),
            per_core: (0..cores.max(1)).map(|_| CachePadded::new(CoreCounters::default())).collect(),
        }
    }

    /// This core's slot (core indices wrap, so a stray index cannot panic).
    #[inline]
    pub fn core(&self, core: usize) -> &CoreCounters {
        &self.per_core[core % self.per_core.len()]
    }

    /// Sum of one reported counter over all cores.
    pub fn sum(&self, f: impl Fn(&CoreCounters) -> &AtomicU64) -> u64 {
        self.per_core.iter().map(|c| f(c).load(Ordering::Relaxed)).sum()
    }

    /// Records one response time sample (EWMA, α = 1/8, like NGINX's upstream_response_time smoothing).
    pub fn record_latency(&self, us: u64) {
        let old = self.live.ewma_us.load(Ordering::Relaxed);
        let new = if old == 0 { us.max(1) } else { (old * 7 + us) / 8 };
        self.live.ewma_us.store(new.max(1), Ordering::Relaxed);
    }
}

/// Adds `n` to a counter of the one core that owns the slot. Only that core
/// writes it, so a plain load and store do: a locked read-modify-write costs
/// ~20 cycles and drains the store buffer, and a request bumps five such
/// counters. Readers (the admin side) only load.
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// One server in a snapshot.
#[derive(Debug)]
pub struct Server {
    /// Stable key `pool/server`: used in logs, admin and as the counter key.
    pub key: Arc<str>,
    pub name: Arc<str>,
    pub addr: SocketAddr,
    /// Effective weight 0–256 (what strategies use): the configured or
    /// admin-set weight, scaled by an agent's `N%` and by slow start.
    pub weight: u16,
    /// The weight from the config or `set weight` (before agent and slow start).
    pub configured_weight: u16,
    pub zone: Option<Arc<str>>,
    pub backup: bool,
    pub tags: Arc<[String]>,
    pub state: AdminState,
    /// Marked down by a health check or agent (cleared for the whole pool in
    /// fail-open panic mode).
    pub down: bool,
    /// Zone priority group: 0 is preferred; see `Pool::max_tier`.
    pub tier: u8,
    /// Opaque sticky-cookie value for this server (a hash of `key`; never the address).
    pub cookie: Arc<str>,
    pub stats: Arc<ServerStats>,
}

impl Server {
    /// Usable for a request: admin state allows it and it is not cooling down.
    /// `sticky` requests may use Drain servers and weight-0 servers.
    #[inline]
    pub fn usable(&self, now_ms: u64, sticky: bool) -> bool {
        let admin_ok = match self.state {
            AdminState::Up => sticky || self.weight > 0,
            AdminState::Drain => sticky,
            AdminState::Maint => false,
        };
        admin_ok && !self.down && self.stats.live.cooldown_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    #[inline]
    pub fn active(&self) -> u32 {
        self.stats.live.active.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn ewma_us(&self) -> u64 {
        self.stats.live.ewma_us.load(Ordering::Relaxed)
    }
}

/// One pool in a snapshot.
#[derive(Debug)]
pub struct Pool {
    pub config: Arc<PoolConfig>,
    pub name: Arc<str>,
    pub strategy: StrategyKind,
    pub hash_key: HashKey,
    pub sticky: Option<StickyConfig>,
    /// All servers, primaries and backups, in config order.
    pub servers: Vec<Server>,
    /// Highest zone tier that takes new traffic now: groups are added in
    /// `zones` order while the healthy share of the groups before is below
    /// the pool's `zone_failover_threshold`.
    pub max_tier: u8,
    /// Fail-open panic mode: no server was healthy, so health is ignored.
    pub panic: bool,
}

impl Pool {
    /// Index of the server whose sticky cookie value is `value`.
    pub fn server_by_cookie(&self, value: &[u8]) -> Option<usize> {
        self.servers.iter().position(|s| s.cookie.as_bytes() == value)
    }
}

/// The immutable snapshot the data path reads.
#[derive(Debug)]
pub struct Table {
    /// Bumped on every swap; cores rebuild per-core strategy state when it changes.
    pub generation: u64,
    /// The effective config this table was built from (listener settings,
    /// runtime switches such as `access_log`): what a reload changes live.
    pub config: Arc<Config>,
    pub pools: Vec<Pool>,
}

impl Table {
    pub fn pool(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| &*p.name == name)
    }

    /// Builds a table from config alone (every server up, as configured).
    pub fn build(config: &Config, cores: usize, prev: Option<&Table>, generation: u64) -> Table {
        Table::build_with(config, cores, prev, generation, &|_| None)
    }

    /// Builds a table from config with runtime state layered over it by
    /// `overlay` (keyed by `pool/server`), reusing the live stats of servers
    /// whose key exists in `prev` (so counters survive reloads and swaps).
    pub fn build_with(
        config: &Config,
        cores: usize,
        prev: Option<&Table>,
        generation: u64,
        overlay: &dyn Fn(&str) -> Option<ServerOverlay>,
    ) -> Table {
        let mut old: HashMap<&str, &Arc<ServerStats>> = HashMap::new();
        if let Some(prev) = prev {
            for p in &prev.pools {
                for s in &p.servers {
                    old.insert(&s.key, &s.stats);
                }
            }
        }
        let pools = config
            .pools
            .iter()
            .map(|pc| Pool {
                config: Arc::new(pc.clone()),
                name: pc.name.as_str().into(),
                strategy: pc.strategy,
                hash_key: pc.hash_key.clone(),
                sticky: pc.sticky.clone(),
                servers: pc
                    .servers
                    .iter()
                    .map(|sc| {
                        let key = format!("{}/{}", pc.name, sc.name);
                        let stats = old
                            .get(key.as_str())
                            .map(|s| Arc::clone(s))
                            .unwrap_or_else(|| Arc::new(ServerStats::new(cores)));
                        let mut s = new_server(key, sc, stats, tier_of(pc, sc));
                        if let Some(o) = overlay(&s.key) {
                            s.state = o.state;
                            s.weight = o.weight;
                            s.configured_weight = o.configured_weight;
                            s.down = o.down;
                        }
                        s
                    })
                    .collect(),
                max_tier: 0,
                panic: false,
            })
            .map(finish_pool)
            .collect();
        Table { generation, config: Arc::new(config.clone()), pools }
    }
}

/// Runtime state of one server that the control side layers over its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOverlay {
    pub state: AdminState,
    pub weight: u16,
    pub configured_weight: u16,
    pub down: bool,
}

/// Zone group of a server: its zone's position in `pool.zones`; servers
/// with an unlisted or no zone come last.
fn tier_of(pc: &PoolConfig, sc: &ServerConfig) -> u8 {
    let pos = sc.zone.as_ref().and_then(|z| pc.zones.iter().position(|x| x == z));
    pos.unwrap_or(pc.zones.len()).min(u8::MAX as usize) as u8
}

/// Derives the pool-wide routing state from its servers: fail-open panic
/// mode, and how many zone groups take traffic.
fn finish_pool(mut pool: Pool) -> Pool {
    let healthy = |s: &Server| !s.down && s.state != AdminState::Maint;
    if pool.config.fail_open && !pool.servers.iter().any(healthy) {
        pool.panic = true;
        for s in &mut pool.servers {
            s.down = false;
        }
    }
    let last = pool.config.zones.len() as u8;
    let threshold = pool.config.zone_failover_threshold;
    let (mut total, mut up) = (0usize, 0usize);
    pool.max_tier = last;
    for tier in 0..=last {
        for s in pool.servers.iter().filter(|s| !s.backup && s.tier == tier) {
            total += 1;
            up += healthy(s) as usize;
        }
        if total > 0 && up as f64 >= threshold * total as f64 {
            pool.max_tier = tier;
            break;
        }
    }
    pool
}

fn new_server(key: String, sc: &ServerConfig, stats: Arc<ServerStats>, tier: u8) -> Server {
    Server {
        cookie: cookie_value(&key).into(),
        key: key.into(),
        name: sc.name.as_str().into(),
        addr: sc.addr,
        weight: sc.weight,
        configured_weight: sc.weight,
        zone: sc.zone.as_deref().map(Into::into),
        backup: sc.backup,
        tags: sc.tags.clone().into(),
        state: AdminState::Up,
        down: false,
        tier,
        stats,
    }
}

/// Sticky cookie value: 16 hex digits of a 64-bit FNV-1a hash of the server
/// key. Stable across restarts and reloads, reveals no address.
pub fn cookie_value(key: &str) -> String {
    format!("{:016x}", fnv1a(key.as_bytes()))
}

/// FNV-1a's starting state (its 64-bit offset basis).
pub const FNV1A_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bit: the cheap, stable hash used for keys and cookies.
#[inline]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_more(FNV1A_START, bytes)
}

/// Continues an FNV-1a hash `h` over more bytes (for a `Hasher`, fed in parts).
#[inline]
pub fn fnv1a_more(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Milliseconds on a process-wide monotonic clock (for cooldowns).
pub fn now_ms() -> u64 {
    ms_at(Instant::now())
}

/// [`now_ms`] at `t` (the data path passes its event loop's clock, read
/// once per turn, instead of reading the clock again).
pub fn ms_at(t: Instant) -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    t.saturating_duration_since(*START.get_or_init(Instant::now)).as_millis() as u64
}

/// The published table. Control-side writers swap; cores load.
pub type SharedTable = Arc<ArcSwap<Table>>;
