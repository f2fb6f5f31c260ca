//! Typed configuration: what the rest of fastlb consumes. Built once from the
//! raw TOML structs (see `raw.rs`); nothing downstream parses strings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default admin socket path, shared by `fastlb -c` and `fastlb ctl`.
pub const DEFAULT_ADMIN_SOCKET: &str = "/tmp/fastlb.sock";
/// Default sticky cookie name (like HAProxy's `cookie SERVERID insert`).
pub const DEFAULT_STICKY_COOKIE: &str = "FASTLB_SERVER";

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub runtime: RuntimeConfig,
    pub admin: AdminConfig,
    pub listeners: Vec<ListenerConfig>,
    pub pools: Vec<PoolConfig>,
    pub plugins: PluginsConfig,
}

/// `[plugins]`: WASM policy plugins, loaded from a watched directory.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginsConfig {
    /// Directory watched for `NAME.wasm` files; a pool uses one with
    /// `strategy = "plugin:NAME"`. Default: none (plugins off).
    pub dir: Option<PathBuf>,
    /// How often the directory is checked for new, changed or removed files. Default 500 ms.
    pub poll_interval: Duration,
    /// Longest a single plugin call may run before it is interrupted and the
    /// fallback serves. Default 2 ms (epoch ticks of 1 ms).
    pub call_timeout: Duration,
    /// Linear memory one plugin instance may grow to. Default 4 MiB.
    pub memory_limit: usize,
    /// Consecutive failed calls (traps, timeouts, bad answers) on one core
    /// that disable a plugin until it is replaced or re-enabled. Default 10.
    pub max_failures: u32,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: None,
            poll_interval: Duration::from_millis(500),
            call_timeout: Duration::from_millis(2),
            memory_limit: 4 << 20,
            max_failures: 10,
        }
    }
}

/// A pool's WASM strategy: `strategy = "plugin:NAME"`.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolPlugin {
    /// File stem in `plugins.dir` (`NAME.wasm`).
    pub name: String,
    /// The pool's `plugin_config` table rendered as JSON, passed to the
    /// plugin's `init` ("{}" when absent).
    pub config_json: String,
}

/// `[runtime]`
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// Worker threads, one per core. Default: every core the process may use.
    pub workers: usize,
    /// Pin each worker to one core. Default: true.
    pub pin_workers: bool,
    /// Log filter (`info`, `fastlb=debug`, …); `RUST_LOG` overrides. Default `info`.
    pub log_level: String,
    /// One log line per request when true. Default: false.
    pub access_log: bool,
    /// How long in-flight requests may take to finish on SIGTERM/SIGINT. Default 10 s.
    pub drain_timeout: Duration,
}

/// `[admin]`
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// Unix socket path. Default [`DEFAULT_ADMIN_SOCKET`].
    pub socket: PathBuf,
    /// File mode of the socket. Default 0o600.
    pub mode: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerMode {
    Http,
    Tcp,
}

/// `[[listener]]`
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    pub name: String,
    pub bind: SocketAddr,
    pub mode: ListenerMode,
    /// Name of the `[[pool]]` this listener forwards to (validated to exist).
    pub pool: String,
    /// Add X-Forwarded-For/-Proto and X-Real-IP. Default true.
    pub forward_headers: bool,
    /// listen(2) backlog. Default 4096.
    pub backlog: u32,
    pub limits: ListenerLimits,
    pub timeouts: ListenerTimeouts,
    /// Path answered by fastlb itself with the status JSON (`proxy_id`,
    /// `active_nodes`, `node_stats`, …), e.g. "/proxy/status". Default: none.
    pub status_path: Option<String>,
}

/// `[listener.limits]`
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerLimits {
    /// Largest request head (request line + fields). Default 64 KiB; larger → 431.
    pub max_head_size: usize,
    /// Most header fields in one head. Default 100; more → 431.
    pub max_headers: usize,
    /// Longest request-target. Default 8 KiB; longer → 414.
    pub max_uri_length: usize,
    /// Open client connections per worker core. Default 10,000.
    pub max_connections: usize,
}

/// `[listener.timeouts]`
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerTimeouts {
    /// Time a client has to send a complete head once it started one. Default 10 s → 408.
    pub client_header: Duration,
    /// How long an idle keep-alive client connection stays open. Default 60 s.
    pub keepalive: Duration,
    /// Longest pause while reading a request body from the client. Default 60 s.
    pub client_body: Duration,
    /// Idle timeout of a byte tunnel: `mode = "tcp"` connections and
    /// WebSocket/Upgrade tunnels close after this long without traffic in
    /// either direction. Default 1 h.
    pub tunnel: Duration,
}

/// The built-in balancing strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    RoundRobin,
    WeightedRoundRobin,
    LeastConnections,
    LeastResponseTime,
    PowerOfTwo,
    Random,
    IpHash,
    UrlHash,
    ConsistentHash,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 9] = [
        StrategyKind::RoundRobin,
        StrategyKind::WeightedRoundRobin,
        StrategyKind::LeastConnections,
        StrategyKind::LeastResponseTime,
        StrategyKind::PowerOfTwo,
        StrategyKind::Random,
        StrategyKind::IpHash,
        StrategyKind::UrlHash,
        StrategyKind::ConsistentHash,
    ];

    /// The config spelling (`round_robin`, …).
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::RoundRobin => "round_robin",
            StrategyKind::WeightedRoundRobin => "weighted_round_robin",
            StrategyKind::LeastConnections => "least_connections",
            StrategyKind::LeastResponseTime => "least_response_time",
            StrategyKind::PowerOfTwo => "power_of_two",
            StrategyKind::Random => "random",
            StrategyKind::IpHash => "ip_hash",
            StrategyKind::UrlHash => "url_hash",
            StrategyKind::ConsistentHash => "consistent_hash",
        }
    }

    /// Parses a config spelling; also accepts the short aliases the demo CLI
    /// of the balancers this replaces used (`rr`, `wrr`, `lc`, `p2c`, …).
    pub fn parse(s: &str) -> Option<StrategyKind> {
        let k = match s {
            "round_robin" | "roundrobin" | "rr" => StrategyKind::RoundRobin,
            "weighted_round_robin" | "weighted" | "wrr" => StrategyKind::WeightedRoundRobin,
            "least_connections" | "leastconn" | "lc" => StrategyKind::LeastConnections,
            "least_response_time" | "lrt" => StrategyKind::LeastResponseTime,
            "power_of_two" | "p2c" => StrategyKind::PowerOfTwo,
            "random" => StrategyKind::Random,
            "ip_hash" | "source" => StrategyKind::IpHash,
            "url_hash" | "uri" => StrategyKind::UrlHash,
            "consistent_hash" | "maglev" | "ring_hash" => StrategyKind::ConsistentHash,
            _ => return None,
        };
        Some(k)
    }
}

/// What `hash_key` hashes for `consistent_hash` (and what `ip_hash`/`url_hash` imply).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashKey {
    /// `"client_ip"` (default)
    ClientIp,
    /// `"path"`: the request path without the query.
    Path,
    /// `"uri"`: path and query.
    Uri,
    /// `"header:NAME"`: the first value of that header (case-insensitive name).
    Header(String),
    /// `"cookie:NAME"`: the value of that cookie.
    Cookie(String),
}

/// `sticky = true` or `[pool.sticky]`: cookie-insert sticky sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct StickyConfig {
    /// Cookie name. Default [`DEFAULT_STICKY_COOKIE`].
    pub cookie: String,
    /// `Max-Age` of the cookie; `None` (default) makes it a session cookie.
    pub max_age: Option<Duration>,
}

/// `[pool.timeouts]`
#[derive(Debug, Clone, PartialEq)]
pub struct PoolTimeouts {
    /// TCP connect to a backend. Default 3 s.
    pub connect: Duration,
    /// Longest wait for (each part of) a backend's response. Default 30 s → 504.
    pub response: Duration,
}

/// `[pool.keepalive]`: the per-core upstream connection pool.
#[derive(Debug, Clone, PartialEq)]
pub struct KeepaliveConfig {
    /// Idle upstream connections kept per core and server. Default 128.
    pub max_idle: usize,
    /// Idle connections older than this are closed. Default 60 s.
    pub idle_timeout: Duration,
}

/// `[pool.passive]`: passive health check on live traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct PassiveConfig {
    /// Consecutive connect failures that take a server out of rotation. Default 3.
    pub max_fails: u32,
    /// How long it stays out. Default 10 s.
    pub cooldown: Duration,
}

/// `[[pool]]`
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub name: String,
    /// The built-in strategy; with a plugin, the fallback that serves any
    /// request the plugin fails on (`fallback = …`). Default round_robin.
    pub strategy: StrategyKind,
    /// `strategy = "plugin:NAME"`: a WASM strategy. Default: none.
    pub plugin: Option<PoolPlugin>,
    /// Default client_ip.
    pub hash_key: HashKey,
    /// Default: off.
    pub sticky: Option<StickyConfig>,
    /// Extra attempts on other servers (RFC 9110 §9.2.2 rules). Default 2.
    pub retries: u32,
    pub timeouts: PoolTimeouts,
    pub keepalive: KeepaliveConfig,
    pub passive: PassiveConfig,
    /// `[pool.health]`: active health check. Default: none (servers count as up).
    pub health: Option<HealthCheckConfig>,
    /// `[pool.agent]`: HAProxy-style agent check. Default: none.
    pub agent: Option<AgentCheckConfig>,
    /// `[pool.outlier]`: passive outlier detection on live traffic.
    pub outlier: OutlierConfig,
    /// When no server is usable: true = panic mode, use them all (ignoring
    /// health); false (default) = 503.
    pub fail_open: bool,
    /// A server coming back (health up, enabled, ready) ramps its effective
    /// weight from ~0 to full over this long. Default 0 (off).
    pub slowstart: Duration,
    /// Priority order of server zones for cross-zone failover: traffic goes
    /// to the first group; the next group is added while the healthy share of
    /// the groups before it is below `zone_failover_threshold`. Servers whose
    /// zone is not listed form a last group. Default: empty (one group).
    pub zones: Vec<String>,
    /// Healthy share (0.0–1.0) under which the next zone group is added. Default 0.5.
    pub zone_failover_threshold: f64,
    pub servers: Vec<ServerConfig>,
}

/// What an active health check sends and expects.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthCheckKind {
    /// HTTP/1.1 request; healthy when the status is expected and, if set,
    /// the body contains `body_contains`.
    Http {
        /// Default "GET".
        method: String,
        /// Default "/health".
        path: String,
        /// Host header; default the server's address.
        host: Option<String>,
        /// Accepted statuses as inclusive ranges. Default 200–399.
        expect_status: Vec<(u16, u16)>,
        /// Default: none.
        body_contains: Option<String>,
    },
    /// TCP connect succeeds.
    Tcp,
    /// Redis `PING` answered `+PONG`.
    Redis,
    /// PostgreSQL startup message answered with any valid backend message
    /// (authentication request, error, …).
    Pgsql {
        /// Default "fastlb".
        user: String,
        /// Default: same as user.
        database: Option<String>,
    },
}

/// `[pool.health]`, with HAProxy's meaning for fall and rise.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckConfig {
    pub kind: HealthCheckKind,
    /// Time between checks of a stable server. Default 3 s.
    pub interval: Duration,
    /// Time between checks while a server is changing state (some but not
    /// yet `fall`/`rise` results in a row). Default: `interval`.
    pub fastinterval: Duration,
    /// A check not answered within this fails. Default 1 s.
    pub timeout: Duration,
    /// Consecutive failures that mark an up server down. Default 3.
    pub fall: u32,
    /// Consecutive successes that mark a down server up. Default 2.
    pub rise: u32,
    /// Port to check instead of the server's own. Default: the server's.
    pub port: Option<u16>,
}

/// `[pool.agent]`: a TCP port on each backend answering a line of words
/// (`up`, `down`, `drain`, `maint`, `ready`, `N%`).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentCheckConfig {
    /// Agent port on the server's IP. Required.
    pub port: u16,
    /// Default 5 s.
    pub interval: Duration,
    /// Default 1 s.
    pub timeout: Duration,
    /// Sent to the agent after connecting (e.g. "status\n"). Default: nothing.
    pub send: String,
}

/// `[pool.outlier]`: consecutive 5xx or connect errors on live traffic eject
/// a server for `base_ejection` × (number of ejections so far), capped at
/// `max_ejection`, never more than `max_ejection_percent` of the pool at once.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierConfig {
    /// Consecutive 5xx responses that eject. 0 = off. Default 5.
    pub consecutive_5xx: u32,
    /// Consecutive connect errors that eject (replaces `[pool.passive]`
    /// max_fails when set). Default: `passive.max_fails`.
    pub consecutive_errors: u32,
    /// Default 10 s (`passive.cooldown`).
    pub base_ejection: Duration,
    /// Default 300 s.
    pub max_ejection: Duration,
    /// Default 50.
    pub max_ejection_percent: u8,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_5xx: 5,
            consecutive_errors: 3,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
            max_ejection_percent: 50,
        }
    }
}

/// `[[pool.server]]`
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Unique within its pool; the server is addressed as `pool/name`.
    pub name: String,
    pub addr: SocketAddr,
    /// 0–256, default 1. 0 = no new traffic except sticky clients.
    pub weight: u16,
    pub zone: Option<String>,
    /// Only used when no primary server is usable. Default false.
    pub backup: bool,
    pub tags: Vec<String>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pin_workers: true,
            log_level: "info".into(),
            access_log: false,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { socket: PathBuf::from(DEFAULT_ADMIN_SOCKET), mode: 0o600 }
    }
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits { max_head_size: 64 * 1024, max_headers: 100, max_uri_length: 8 * 1024, max_connections: 10_000 }
    }
}

impl Default for ListenerTimeouts {
    fn default() -> Self {
        ListenerTimeouts {
            client_header: Duration::from_secs(10),
            keepalive: Duration::from_secs(60),
            client_body: Duration::from_secs(60),
            tunnel: Duration::from_secs(3600),
        }
    }
}

impl Default for StickyConfig {
    fn default() -> Self {
        StickyConfig { cookie: DEFAULT_STICKY_COOKIE.into(), max_age: None }
    }
}

impl Default for PoolTimeouts {
    fn default() -> Self {
        PoolTimeouts { connect: Duration::from_secs(3), response: Duration::from_secs(30) }
    }
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig { max_idle: 128, idle_timeout: Duration::from_secs(60) }
    }
}

impl Default for PassiveConfig {
    fn default() -> Self {
        PassiveConfig { max_fails: 3, cooldown: Duration::from_secs(10) }
    }
}

impl ListenerConfig {
    /// An HTTP listener with every default.
    pub fn http(name: &str, bind: SocketAddr, pool: &str) -> Self {
        ListenerConfig {
            name: name.into(),
            bind,
            mode: ListenerMode::Http,
            pool: pool.into(),
            forward_headers: true,
            backlog: 4096,
            limits: ListenerLimits::default(),
            timeouts: ListenerTimeouts::default(),
            status_path: None,
        }
    }
}

impl PoolConfig {
    /// A pool with every default.
    pub fn new(name: &str, servers: Vec<ServerConfig>) -> Self {
        PoolConfig {
            name: name.into(),
            strategy: StrategyKind::RoundRobin,
            plugin: None,
            hash_key: HashKey::ClientIp,
            sticky: None,
            retries: 2,
            timeouts: PoolTimeouts::default(),
            keepalive: KeepaliveConfig::default(),
            passive: PassiveConfig::default(),
            health: None,
            agent: None,
            outlier: OutlierConfig::default(),
            fail_open: false,
            slowstart: Duration::ZERO,
            zones: Vec::new(),
            zone_failover_threshold: 0.5,
            servers,
        }
    }
}

impl ServerConfig {
    /// A server with weight 1 and no zone, tags or backup flag.
    pub fn new(name: &str, addr: SocketAddr) -> Self {
        ServerConfig { name: name.into(), addr, weight: 1, zone: None, backup: false, tags: Vec::new() }
    }
}
