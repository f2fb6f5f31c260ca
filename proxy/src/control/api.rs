//! What the admin socket (and the listener status page) can ask of the
//! control side, as plain serialisable snapshots. `Control` implements
//! [`ControlApi`]; the admin module formats the answers as text or JSON.

use serde::Serialize;

/// Why a command changed nothing. The message is one line for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

/// `show info`
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub version: String,
    pub pid: u32,
    pub uptime_s: u64,
    pub workers: usize,
    /// Config file, if started with `-c`.
    pub config_path: Option<String>,
    /// Bumped on every table swap (health change, admin command, reload).
    pub generation: u64,
    /// Bumped on every successful reload.
    pub config_generation: u64,
    pub connections_total: u64,
    pub connections_open: u64,
    pub requests_total: u64,
    pub errors_total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// One server in `show stat` / `show health` / `show pools`.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStat {
    /// `pool/server`
    pub key: String,
    pub pool: String,
    pub name: String,
    pub addr: String,
    /// "up", "down", "drain", "maint", "ejected" (outlier), "cooldown"
    pub state: String,
    /// Why it is in that state ("health check: HTTP 503", "admin", "agent: drain", …)
    pub reason: String,
    pub weight_configured: u16,
    pub weight_effective: u16,
    pub backup: bool,
    pub zone: Option<String>,
    pub tags: Vec<String>,
    /// Requests in flight now, all cores.
    pub active: u32,
    pub requests: u64,
    /// Responses by class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub responses: [u64; 5],
    pub connect_errors: u64,
    pub errors: u64,
    pub retries: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub ewma_latency_us: u64,
    /// e.g. "ok: HTTP 200", "failed: connect refused"; None without checks.
    pub last_check: Option<String>,
    pub last_check_duration_ms: Option<f64>,
    pub seconds_in_state: u64,
    /// Was added with `add server` (not in the config file).
    pub runtime_added: bool,
}

/// One pool in `show pools` / `show stat`.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStat {
    pub name: String,
    pub strategy: String,
    pub sticky: bool,
    pub sticky_cookie: Option<String>,
    pub health_check: Option<String>,
    pub fail_open: bool,
    /// All servers unhealthy and fail_open: health is being ignored.
    pub panic: bool,
    pub servers: Vec<ServerStat>,
}

/// `show workers`
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStat {
    pub core: usize,
    pub connections_open: u64,
    pub connections_total: u64,
    pub requests: u64,
    pub errors: u64,
}

/// `show events`: one state change.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// RFC 3339 UTC.
    pub time: String,
    /// Seconds since the Unix epoch (for sorting and scripts).
    pub unix: f64,
    /// `pool/server`
    pub server: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// The commands the admin socket maps its lines onto.
pub trait ControlApi: Send + Sync {
    fn info(&self) -> Info;
    fn pools(&self) -> Vec<PoolStat>;
    fn workers(&self) -> Vec<WorkerStat>;
    /// The newest `n` events, oldest first.
    fn events(&self, n: usize) -> Vec<Event>;
    /// `enable server P/S`: admin state back to up (clears drain/maint).
    fn enable_server(&self, key: &str) -> Result<String, CommandError>;
    /// `disable server P/S`: maintenance, no traffic at all.
    fn disable_server(&self, key: &str) -> Result<String, CommandError>;
    /// `drain server P/S`: no new clients; sticky clients and open requests finish.
    fn drain_server(&self, key: &str) -> Result<String, CommandError>;
    /// `set weight P/S W` (0–256).
    fn set_weight(&self, key: &str, weight: u16) -> Result<String, CommandError>;
    /// `add server P/S ADDR [weight W] [backup]`
    fn add_server(&self, key: &str, addr: &str, weight: Option<u16>, backup: bool) -> Result<String, CommandError>;
    /// `del server P/S`: refused while it has requests in flight unless drained or disabled.
    fn del_server(&self, key: &str) -> Result<String, CommandError>;
    /// `reload`: re-read the config file; on error nothing changes.
    fn reload(&self) -> Result<String, CommandError>;
    /// `show plugins`: the loaded WASM plugins (empty without `[plugins] dir`).
    fn plugins(&self) -> Vec<crate::plugin::PluginStat>;
    /// `reload plugins`: rescan the plugins directory now.
    fn reload_plugins(&self) -> Result<String, CommandError>;
    /// `enable plugin NAME` / `disable plugin NAME`.
    fn set_plugin_enabled(&self, name: &str, enabled: bool) -> Result<String, CommandError>;
}

/// What an agent check's line of words said (HAProxy agent-check
/// semantics: the health words and the admin words are separate settings,
/// so `up ready 80%` sets all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentReport {
    /// The last health word: `up` → true; `down`, `fail`, `stopped` → false.
    pub health: Option<bool>,
    /// The last admin word (`drain`, `maint`, `ready`), if any.
    pub state: Option<AgentState>,
    /// `N%`: effective weight relative to the configured one.
    pub weight_pct: Option<u32>,
}

/// Admin words an agent may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    /// Admin drain.
    Drain,
    /// Admin maintenance.
    Maint,
    /// Leaves drain or maint (the only word that does).
    Ready,
}

/// What the health checker tells the control side. Called from the health
/// thread; implementations may lock (this is not the data path).
pub trait HealthSink: Send + Sync {
    /// Every finished active check, for `show stat`'s last-check columns.
    fn check_result(&self, key: &str, ok: bool, detail: &str, duration: std::time::Duration);
    /// `fall` failures or `rise` successes in a row: the server's health changes.
    fn health_changed(&self, key: &str, up: bool, reason: &str);
    /// An agent answered. An unreachable agent is not reported (changes nothing).
    fn agent_report(&self, key: &str, report: AgentReport);
}
