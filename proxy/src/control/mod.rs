//! The control side: owns the running config and the runtime state layered
//! over it (admin states, health, agent reports, servers added or deleted at
//! run time), rebuilds the backend table on every change and swaps it in.
//! Runs on the control threads (health checker, admin socket, monitor,
//! signal handler), never on a data-path core, so it may take a lock.

pub mod api;
mod monitor;
mod snapshot;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

pub use api::*;
pub use monitor::spawn_monitor;

use crate::balance::table::ServerOverlay;
use crate::balance::{AdminState, Table};
use crate::config::{self, Config, ServerConfig};
use crate::runtime::Shared;
use crate::stats::rfc3339;

/// Events kept for `show events`.
const MAX_EVENTS: usize = 1000;

/// Runtime state of one server, keyed by `pool/server`.
#[derive(Debug, Clone)]
struct ServerRt {
    /// Set by `enable`/`disable`/`drain`.
    admin: AdminState,
    /// Set by `set weight`; `None` = configured weight.
    weight: Option<u16>,
    /// Marked down by the active health check.
    health_down: bool,
    /// Drain or maint reported by the agent (`ready` clears it).
    agent_admin: Option<AdminState>,
    /// `down` reported by the agent (`up` clears it).
    agent_down: bool,
    /// `N%` reported by the agent.
    agent_pct: Option<u32>,
    /// Last active check: ok, detail, duration.
    last_check: Option<(bool, String, Duration)>,
    /// Why the server is in its current state.
    reason: String,
    /// Label of the current state (`up`, `down`, `drain`, `maint`, `ejected`),
    /// compared after every rebuild to record events.
    label: &'static str,
    since: Instant,
    /// When it last became usable: the start of its slow-start ramp.
    up_since: Option<Instant>,
}

impl Default for ServerRt {
    fn default() -> Self {
        ServerRt {
            admin: AdminState::Up,
            weight: None,
            health_down: false,
            agent_admin: None,
            agent_down: false,
            agent_pct: None,
            last_check: None,
            reason: "configured".into(),
            label: "up",
            since: Instant::now(),
            up_since: None,
        }
    }
}

impl ServerRt {
    fn state(&self) -> AdminState {
        match (self.admin, self.agent_admin) {
            (AdminState::Maint, _) | (_, Some(AdminState::Maint)) => AdminState::Maint,
            (AdminState::Drain, _) | (_, Some(AdminState::Drain)) => AdminState::Drain,
            _ => AdminState::Up,
        }
    }

    fn down(&self) -> bool {
        self.health_down || self.agent_down
    }

    fn label(&self) -> &'static str {
        match self.state() {
            AdminState::Maint => "maint",
            _ if self.down() => "down",
            AdminState::Drain => "drain",
            AdminState::Up => "up",
        }
    }

    /// Effective weight: configured or set, scaled by the agent's percentage
    /// and the slow-start ramp (never 0 for a positive weight, so a ramping
    /// server still gets a trickle).
    fn effective_weight(&self, configured: u16, slowstart: Duration, now: Instant) -> u16 {
        let mut w = self.weight.unwrap_or(configured) as f64;
        if let Some(pct) = self.agent_pct {
            w = w * pct as f64 / 100.0;
        }
        if let Some(since) = self.up_since
            && !slowstart.is_zero()
        {
            let f = now.saturating_duration_since(since).as_secs_f64() / slowstart.as_secs_f64();
            if f < 1.0 {
                w *= f.max(0.05);
            }
        }
        let base = self.weight.unwrap_or(configured);
        if base == 0 { 0 } else { (w.round() as u16).clamp(1, 256) }
    }

    /// Still ramping up under slow start.
    fn ramping(&self, slowstart: Duration, now: Instant) -> bool {
        !slowstart.is_zero() && self.up_since.is_some_and(|s| now.saturating_duration_since(s) < slowstart)
    }
}

struct Inner {
    /// The config as loaded (file or command line), without runtime changes.
    config: Config,
    config_generation: u64,
    /// Servers added with `add server` (pool name, server).
    added: Vec<(String, ServerConfig)>,
    /// Config servers removed with `del server` until the next reload.
    deleted: HashSet<String>,
    servers: HashMap<String, ServerRt>,
    events: VecDeque<Event>,
}

/// The control object: one per process.
pub struct Control {
    shared: Arc<Shared>,
    config_path: Option<PathBuf>,
    inner: Mutex<Inner>,
}

impl Control {
    pub fn new(shared: Arc<Shared>, config: Config, config_path: Option<PathBuf>) -> Arc<Control> {
        Arc::new(Control {
            shared,
            config_path,
            inner: Mutex::new(Inner {
                config,
                config_generation: 1,
                added: Vec::new(),
                deleted: HashSet::new(),
                servers: HashMap::new(),
                events: VecDeque::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a plain field store), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The config with runtime additions and deletions applied.
    fn effective_config(inner: &Inner) -> Config {
        let mut config = inner.config.clone();
        for pool in &mut config.pools {
            pool.servers.retain(|s| !inner.deleted.contains(&format!("{}/{}", pool.name, s.name)));
        }
        for (pool, server) in &inner.added {
            if let Some(p) = config.pools.iter_mut().find(|p| &p.name == pool) {
                p.servers.push(server.clone());
            }
        }
        config
    }

    /// Builds the table from config + runtime state, swaps it in, and
    /// records an event for every server whose state label changed.
    fn rebuild(&self, inner: &mut Inner) {
        let config = Control::effective_config(inner);
        let now = Instant::now();
        // State changes first, so a server coming back starts its slow-start
        // ramp in this very table.
        let mut recovered = Vec::new();
        for pool in &config.pools {
            for sc in &pool.servers {
                let key = format!("{}/{}", pool.name, sc.name);
                let rt = inner.servers.entry(key.clone()).or_default();
                let label = rt.label();
                if label == rt.label {
                    continue;
                }
                let from = std::mem::replace(&mut rt.label, label);
                rt.since = now;
                if label == "up" {
                    rt.up_since = Some(now);
                    if from == "down" {
                        recovered.push(key.clone());
                    }
                }
                let reason = rt.reason.clone();
                push_event(&mut inner.events, &key, from, label, &reason);
            }
        }
        let mut overlays = HashMap::new();
        for pool in &config.pools {
            for sc in &pool.servers {
                let key = format!("{}/{}", pool.name, sc.name);
                let rt = &inner.servers[&key];
                let overlay = ServerOverlay {
                    state: rt.state(),
                    weight: rt.effective_weight(sc.weight, pool.slowstart, now),
                    configured_weight: rt.weight.unwrap_or(sc.weight),
                    down: rt.down(),
                };
                overlays.insert(key, overlay);
            }
        }
        let prev = self.shared.table.load_full();
        let cores = self.shared.cores.len();
        let table = Table::build_with(&config, cores, Some(&prev), prev.generation + 1, &|k| overlays.get(k).copied());
        // A server its health check brought back starts clean: the connect
        // errors and ejection that its death caused on live traffic are over.
        for s in table.pools.iter().flat_map(|p| p.servers.iter()).filter(|s| recovered.iter().any(|k| **k == *s.key)) {
            let live = &s.stats.live;
            live.cooldown_until_ms.store(0, Ordering::Relaxed);
            live.consecutive_fails.store(0, Ordering::Relaxed);
            live.consecutive_5xx.store(0, Ordering::Relaxed);
            live.ejections.store(0, Ordering::Relaxed);
        }
        self.shared.table.store(Arc::new(table));
        // Runtime state of servers that no longer exist is forgotten.
        inner.servers.retain(|k, _| overlays.contains_key(k));
    }

    /// Records the start or end of an outlier ejection (seen by the monitor)
    /// as an event, from or to the server's current state.
    pub(crate) fn ejection_event(&self, key: &str, ejected: bool) {
        let mut inner = self.lock();
        let state = inner.servers.get(key).map_or("up", |rt| rt.label);
        let (from, to, why) = if ejected {
            (state, "ejected", "outlier detection: consecutive errors on live traffic")
        } else {
            ("ejected", state, "ejection time over")
        };
        push_event(&mut inner.events, key, from, to, why);
    }

    /// Builds the first table of this control object (applies nothing new,
    /// but starts counting generations and slow start from here).
    pub fn publish(&self) {
        let mut inner = self.lock();
        self.rebuild(&mut inner);
    }

    /// Rebuilds while some server ramps up under slow start, so its weight
    /// grows in steps. Called by the monitor.
    pub(crate) fn tick(&self) {
        let mut inner = self.lock();
        let now = Instant::now();
        // Runtime records exist for exactly the servers of the current table.
        let slowstart = |key: &str| {
            let pool = key.split('/').next().unwrap_or_default();
            inner.config.pools.iter().find(|p| p.name == pool).map_or(Duration::ZERO, |p| p.slowstart)
        };
        let ramping = inner.servers.iter().any(|(key, rt)| rt.ramping(slowstart(key), now));
        if ramping {
            self.rebuild(&mut inner);
        }
    }

    /// Finds the server `pool/name` in the current table: (pool index, server index).
    fn locate(&self, key: &str) -> Result<(Arc<Table>, usize, usize), CommandError> {
        let (pool, name) = split_key(key)?;
        let table = self.shared.table.load_full();
        let pi = table.pool(pool).ok_or_else(|| CommandError(format!("no pool named '{pool}'")))?;
        let si = table.pools[pi]
            .servers
            .iter()
            .position(|s| &*s.name == name)
            .ok_or_else(|| CommandError(format!("no server '{name}' in pool '{pool}'")))?;
        Ok((table, pi, si))
    }

    fn set_admin(&self, key: &str, state: AdminState, verb: &str) -> Result<String, CommandError> {
        self.locate(key)?;
        let mut inner = self.lock();
        let rt = inner.servers.entry(key.to_string()).or_default();
        rt.admin = state;
        if state == AdminState::Up {
            // HAProxy's `enable server` also clears what the agent set.
            rt.agent_admin = None;
        }
        rt.reason = format!("admin: {verb}");
        self.rebuild(&mut inner);
        let now = match state {
            AdminState::Up => "enabled",
            AdminState::Drain => "draining",
            AdminState::Maint => "disabled (maintenance)",
        };
        Ok(format!("server {key} {now}"))
    }
}

fn push_event(events: &mut VecDeque<Event>, server: &str, from: &str, to: &str, reason: &str) {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    if events.len() == MAX_EVENTS {
        events.pop_front();
    }
    tracing::info!(server, from, to, reason, "server state change");
    events.push_back(Event {
        time: rfc3339(now),
        unix: now.as_secs_f64(),
        server: server.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        reason: reason.to_string(),
    });
}

fn split_key(key: &str) -> Result<(&str, &str), CommandError> {
    match key.split_once('/') {
        Some((p, s)) if !p.is_empty() && !s.is_empty() && !s.contains('/') => Ok((p, s)),
        _ => Err(CommandError(format!("'{key}' is not a server: use POOL/SERVER"))),
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl ControlApi for Control {
    fn plugins(&self) -> Vec<crate::plugin::PluginStat> {
        self.shared.plugins.as_ref().map(|r| r.list()).unwrap_or_default()
    }

    fn reload_plugins(&self) -> Result<String, CommandError> {
        Ok(self.registry()?.reload_now())
    }

    fn set_plugin_enabled(&self, name: &str, enabled: bool) -> Result<String, CommandError> {
        self.registry()?.set_enabled(name, enabled).map_err(CommandError)
    }

    fn info(&self) -> Info {
        snapshot::info(self)
    }

    fn pools(&self) -> Vec<PoolStat> {
        snapshot::pools(self)
    }

    fn workers(&self) -> Vec<WorkerStat> {
        snapshot::workers(self)
    }

    fn events(&self, n: usize) -> Vec<Event> {
        let inner = self.lock();
        let skip = inner.events.len().saturating_sub(n);
        inner.events.iter().skip(skip).cloned().collect()
    }

    fn enable_server(&self, key: &str) -> Result<String, CommandError> {
        self.set_admin(key, AdminState::Up, "enable")
    }

    fn disable_server(&self, key: &str) -> Result<String, CommandError> {
        self.set_admin(key, AdminState::Maint, "disable")
    }

    fn drain_server(&self, key: &str) -> Result<String, CommandError> {
        self.set_admin(key, AdminState::Drain, "drain")
    }

    fn set_weight(&self, key: &str, weight: u16) -> Result<String, CommandError> {
        if weight > 256 {
            return Err(CommandError(format!("weight {weight} is outside 0–256")));
        }
        self.locate(key)?;
        let mut inner = self.lock();
        let rt = inner.servers.entry(key.to_string()).or_default();
        rt.weight = Some(weight);
        self.rebuild(&mut inner);
        Ok(format!("server {key} weight set to {weight}"))
    }

    fn add_server(&self, key: &str, addr: &str, weight: Option<u16>, backup: bool) -> Result<String, CommandError> {
        let (pool, name) = split_key(key)?;
        if !valid_name(name) {
            return Err(CommandError(format!("bad server name '{name}': 1–64 of letters, digits, '-', '_', '.'")));
        }
        let weight = weight.unwrap_or(1);
        if weight > 256 {
            return Err(CommandError(format!("weight {weight} is outside 0–256")));
        }
        let addr: SocketAddr = addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .filter(|a| a.port() != 0)
            .ok_or_else(|| CommandError(format!("bad address '{addr}': use IP:PORT or HOST:PORT")))?;
        let mut inner = self.lock();
        let config = Control::effective_config(&inner);
        let Some(p) = config.pools.iter().find(|p| p.name == pool) else {
            return Err(CommandError(format!("no pool named '{pool}'")));
        };
        if p.servers.iter().any(|s| s.name == name) {
            return Err(CommandError(format!("pool '{pool}' already has a server '{name}'")));
        }
        let mut server = ServerConfig::new(name, addr);
        server.weight = weight;
        server.backup = backup;
        inner.added.push((pool.to_string(), server));
        inner.servers.insert(key.to_string(), ServerRt { reason: "admin: add server".into(), ..Default::default() });
        self.rebuild(&mut inner);
        Ok(format!("server {key} added at {addr} (weight {weight}{})", if backup { ", backup" } else { "" }))
    }

    fn del_server(&self, key: &str) -> Result<String, CommandError> {
        let (table, pi, si) = self.locate(key)?;
        let server = &table.pools[pi].servers[si];
        let active = server.active();
        if active > 0 && server.state == AdminState::Up {
            return Err(CommandError(format!(
                "server {key} has {active} request(s) in flight: drain or disable it first"
            )));
        }
        let mut inner = self.lock();
        let before = inner.added.len();
        inner.added.retain(|(p, s)| format!("{p}/{}", s.name) != key);
        if inner.added.len() == before {
            inner.deleted.insert(key.to_string());
        }
        inner.servers.remove(key);
        self.rebuild(&mut inner);
        Ok(format!("server {key} deleted"))
    }

    fn reload(&self) -> Result<String, CommandError> {
        let Some(path) = &self.config_path else {
            return Err(CommandError("no config file to reload: started with --backends or demo (use -c FILE)".into()));
        };
        let new = config::load(path).map_err(|e| CommandError(format!("reload refused, running config kept:\n{e}")))?;
        let mut inner = self.lock();
        let fixed = config::live_change_errors(&inner.config, &new);
        if !fixed.is_empty() {
            return Err(CommandError(format!(
                "reload refused, running config kept: these cannot change without a restart:\n{}",
                fixed.join("\n")
            )));
        }
        let dropped: Vec<String> = inner.added.drain(..).map(|(p, s)| format!("{p}/{}", s.name)).collect();
        inner.deleted.clear();
        inner.config = new;
        inner.config_generation += 1;
        crate::app::set_log_level(&inner.config.runtime.log_level);
        self.rebuild(&mut inner);
        let mut msg = format!("reloaded {} (config generation {})", path.display(), inner.config_generation);
        if !dropped.is_empty() {
            msg.push_str(&format!("; dropped servers added at run time (not in the file): {}", dropped.join(", ")));
        }
        tracing::info!("{msg}");
        Ok(msg)
    }
}

impl Control {
    fn registry(&self) -> Result<&Arc<crate::plugin::PluginRegistry>, CommandError> {
        self.shared
            .plugins
            .as_ref()
            .ok_or_else(|| CommandError("plugins are off: set [plugins] dir in the config".into()))
    }
}

impl HealthSink for Control {
    fn check_result(&self, key: &str, ok: bool, detail: &str, duration: Duration) {
        if let Some(rt) = self.lock().servers.get_mut(key) {
            rt.last_check = Some((ok, detail.to_string(), duration));
        }
    }

    fn health_changed(&self, key: &str, up: bool, reason: &str) {
        let mut inner = self.lock();
        let Some(rt) = inner.servers.get_mut(key) else { return };
        rt.health_down = !up;
        rt.reason = reason.to_string();
        self.rebuild(&mut inner);
    }

    fn agent_report(&self, key: &str, report: AgentReport) {
        let mut inner = self.lock();
        let Some(rt) = inner.servers.get_mut(key) else { return };
        let before = (rt.agent_admin, rt.agent_down, rt.agent_pct);
        if let Some(up) = report.health {
            rt.agent_down = !up;
        }
        match report.state {
            Some(AgentState::Drain) => rt.agent_admin = Some(AdminState::Drain),
            Some(AgentState::Maint) => rt.agent_admin = Some(AdminState::Maint),
            Some(AgentState::Ready) => rt.agent_admin = None,
            None => {}
        }
        if report.weight_pct.is_some() {
            rt.agent_pct = report.weight_pct;
        }
        if before != (rt.agent_admin, rt.agent_down, rt.agent_pct) {
            rt.reason = format!("agent: {}", agent_words(&report));
            self.rebuild(&mut inner);
        }
    }
}

fn agent_words(r: &AgentReport) -> String {
    let mut words = Vec::new();
    if let Some(up) = r.health {
        words.push(if up { "up" } else { "down" }.to_string());
    }
    if let Some(s) = r.state {
        words.push(format!("{s:?}").to_lowercase());
    }
    if let Some(p) = r.weight_pct {
        words.push(format!("{p}%"));
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::rfc3339;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(Duration::from_millis(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(Duration::from_millis(1_795_651_200_123)), "2026-11-26T00:00:00.123Z");
        assert_eq!(rfc3339(Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }
}
