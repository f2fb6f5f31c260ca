//! Read-only views of the running state for the admin socket and the
//! listener status page: counters summed over cores, states from the
//! control side's runtime records.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Control, Info, PoolStat, ServerStat, WorkerStat};
use crate::balance::table::now_ms;
use crate::balance::{AdminState, Server};
use crate::config::HealthCheckKind;
use crate::stats::CoreStats;

pub(super) fn info(c: &Control) -> Info {
    let shared = &c.shared;
    let table = shared.table.load();
    let sum = |f: fn(&CoreStats) -> u64| shared.cores.iter().map(|s| f(s)).sum::<u64>();
    let servers = || table.pools.iter().flat_map(|p| p.servers.iter());
    let inner = c.lock();
    Info {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        uptime_s: shared.started.elapsed().as_secs(),
        workers: shared.cores.len(),
        config_path: c.config_path.as_ref().map(|p| p.display().to_string()),
        generation: table.generation,
        config_generation: inner.config_generation,
        connections_total: sum(|s| CoreStats::get(&s.accepted)),
        connections_open: sum(|s| CoreStats::get(&s.open)),
        requests_total: sum(|s| CoreStats::get(&s.requests)),
        errors_total: sum(|s| CoreStats::get(&s.errors)),
        bytes_in: servers().map(|s| s.stats.sum(|c| &c.bytes_in)).sum(),
        bytes_out: servers().map(|s| s.stats.sum(|c| &c.bytes_out)).sum(),
    }
}

pub(super) fn workers(c: &Control) -> Vec<WorkerStat> {
    c.shared
        .cores
        .iter()
        .enumerate()
        .map(|(core, s)| WorkerStat {
            core,
            connections_open: CoreStats::get(&s.open),
            connections_total: CoreStats::get(&s.accepted),
            requests: CoreStats::get(&s.requests),
            errors: CoreStats::get(&s.errors),
        })
        .collect()
}

pub(super) fn pools(c: &Control) -> Vec<PoolStat> {
    let table = c.shared.table.load_full();
    let inner = c.lock();
    let now = Instant::now();
    let now_ms = now_ms();
    let added: std::collections::HashSet<String> = inner.added.iter().map(|(p, s)| format!("{p}/{}", s.name)).collect();
    table
        .pools
        .iter()
        .map(|pool| PoolStat {
            name: pool.name.to_string(),
            strategy: pool.strategy.name().to_string(),
            sticky: pool.sticky.is_some(),
            sticky_cookie: pool.sticky.as_ref().map(|s| s.cookie.clone()),
            health_check: pool.config.health.as_ref().map(|h| check_name(&h.kind).to_string()),
            fail_open: pool.config.fail_open,
            panic: pool.panic,
            servers: pool
                .servers
                .iter()
                .map(|s| {
                    let rt = inner.servers.get(&*s.key);
                    let cooling = s.stats.live.cooldown_until_ms.load(Ordering::Relaxed) > now_ms;
                    let (state, reason) = state_of(s, cooling, rt);
                    server_stat(s, state, reason, rt, now, added.contains(&*s.key))
                })
                .collect(),
        })
        .collect()
}

/// The state shown for a server: from the control side's records where it
/// has them (in fail-open panic mode the table clears `down` so traffic
/// flows, but the server is still down).
fn state_of(s: &Server, cooling: bool, rt: Option<&super::ServerRt>) -> (&'static str, String) {
    let reason = rt.map_or("configured", |r| r.reason.as_str()).to_string();
    let down = rt.map_or(s.down, |r| r.down());
    match s.state {
        AdminState::Maint => ("maint", reason),
        _ if down => ("down", reason),
        _ if cooling => ("ejected", "outlier detection: consecutive errors on live traffic".into()),
        AdminState::Drain => ("drain", reason),
        AdminState::Up => ("up", reason),
    }
}

fn server_stat(
    s: &Server,
    state: &str,
    reason: String,
    rt: Option<&super::ServerRt>,
    now: Instant,
    runtime_added: bool,
) -> ServerStat {
    let sum = |f: fn(&crate::balance::table::CoreCounters) -> &std::sync::atomic::AtomicU64| s.stats.sum(f);
    ServerStat {
        key: s.key.to_string(),
        pool: s.key.split('/').next().unwrap_or_default().to_string(),
        name: s.name.to_string(),
        addr: s.addr.to_string(),
        state: state.to_string(),
        reason,
        weight_configured: s.configured_weight,
        weight_effective: s.weight,
        backup: s.backup,
        zone: s.zone.as_deref().map(str::to_string),
        tags: s.tags.to_vec(),
        active: s.active(),
        requests: sum(|c| &c.requests),
        responses: [
            sum(|c| &c.responses[0]),
            sum(|c| &c.responses[1]),
            sum(|c| &c.responses[2]),
            sum(|c| &c.responses[3]),
            sum(|c| &c.responses[4]),
        ],
        connect_errors: sum(|c| &c.connect_errors),
        errors: sum(|c| &c.errors),
        retries: sum(|c| &c.retries),
        bytes_in: sum(|c| &c.bytes_in),
        bytes_out: sum(|c| &c.bytes_out),
        ewma_latency_us: s.ewma_us(),
        last_check: rt
            .and_then(|r| r.last_check.as_ref())
            .map(|(ok, d, _)| format!("{}: {d}", if *ok { "ok" } else { "failed" })),
        last_check_duration_ms: rt.and_then(|r| r.last_check.as_ref()).map(|(_, _, d)| d.as_secs_f64() * 1000.0),
        seconds_in_state: rt.map_or(0, |r| now.saturating_duration_since(r.since).as_secs()),
        runtime_added,
    }
}

fn check_name(kind: &HealthCheckKind) -> &'static str {
    match kind {
        HealthCheckKind::Http { .. } => "http",
        HealthCheckKind::Tcp => "tcp",
        HealthCheckKind::Redis => "redis",
        HealthCheckKind::Pgsql { .. } => "pgsql",
    }
}
