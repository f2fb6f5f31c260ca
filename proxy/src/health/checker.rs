//! The health thread: one compio runtime (not pinned, not a data-path core)
//! running one task per checked server, following the published table.
//!
//! Every [`RECONCILE_EVERY`] it looks at the current table; when it is a new
//! snapshot, servers of pools with `[pool.health]` get an active-check task
//! and servers of pools with `[pool.agent]` an agent task. A task outlives
//! table swaps (health changes, admin commands, reloads) as long as its
//! server key and its pool's check config stay the same, so its fall/rise
//! state is kept; an address change is picked up by the running task. A
//! server that disappears, or whose check config changed, loses its task
//! (a changed config starts a new one with fresh counters).

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use compio::runtime::JoinHandle as Task;
use futures_channel::oneshot;
use futures_util::future::select;

use crate::balance::{SharedTable, Table};
use crate::config::{AgentCheckConfig, HealthCheckConfig};
use crate::control::HealthSink;

use super::probe::{self, check_addr};
use super::{CheckState, kind_name};

/// How often the checker looks for a new table. A new server waits at most
/// this long (plus its jitter) for its first check.
pub const RECONCILE_EVERY: Duration = Duration::from_millis(200);
/// Floor under every check interval, so a zero interval against a port that
/// refuses instantly cannot spin the thread.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Starts the "fastlb-health" thread. It runs until `stop` fires (or its
/// sender is dropped: nobody is left to stop it) and then returns promptly,
/// cancelling every check in flight. Fails if the thread or its io_uring
/// runtime cannot be created.
pub fn spawn_checker(
    table: SharedTable,
    sink: Arc<dyn HealthSink>,
    stop: oneshot::Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    let (ready_tx, ready_rx) = mpsc::sync_channel::<std::io::Result<()>>(1);
    let thread = std::thread::Builder::new().name("fastlb-health".into()).spawn(move || {
        let rt = match compio::runtime::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let _ = ready_tx.send(Ok(()));
        rt.block_on(run(table, sink, stop));
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(std::io::Error::other("health thread exited during start-up"))
        }
    }
}

async fn run(table: SharedTable, sink: Arc<dyn HealthSink>, stop: oneshot::Receiver<()>) {
    let mut checker = Checker::new(table, sink);
    let reconcile = pin!(async {
        loop {
            checker.reconcile();
            compio::time::sleep(RECONCILE_EVERY).await;
        }
    });
    // Either branch ending means stop; the loop never ends by itself.
    let _ = select(reconcile, stop).await;
    // Dropping the checker drops every task handle, which cancels the tasks.
}

/// A running per-server task and what it was started for.
struct Running<C> {
    /// The pool's check config the task runs with; a different one restarts it.
    cfg: C,
    /// The server's current address, updated in place on table swaps.
    addr: Rc<Cell<SocketAddr>>,
    /// Dropping the handle cancels the task.
    _task: Task<()>,
}

struct Checker {
    table: SharedTable,
    sink: Arc<dyn HealthSink>,
    /// The snapshot last reconciled with (held so a new one is told apart
    /// by identity, whatever its generation number).
    seen: Option<Arc<Table>>,
    health: HashMap<Arc<str>, Running<HealthCheckConfig>>,
    agents: HashMap<Arc<str>, Running<AgentCheckConfig>>,
    /// Random per process, so first-check jitter differs between instances
    /// checking the same servers.
    jitter: std::collections::hash_map::RandomState,
}

impl Checker {
    fn new(table: SharedTable, sink: Arc<dyn HealthSink>) -> Self {
        Checker { table, sink, seen: None, health: HashMap::new(), agents: HashMap::new(), jitter: Default::default() }
    }

    /// Brings the task set in line with the current table.
    fn reconcile(&mut self) {
        let table = self.table.load_full();
        if self.seen.as_ref().is_some_and(|seen| Arc::ptr_eq(seen, &table)) {
            return;
        }
        let mut health = HashMap::with_capacity(self.health.len());
        let mut agents = HashMap::with_capacity(self.agents.len());
        for pool in &table.pools {
            for server in &pool.servers {
                if let Some(cfg) = &pool.config.health {
                    let running = match self.health.remove(&server.key) {
                        Some(r) if r.cfg == *cfg => {
                            r.addr.set(server.addr);
                            r
                        }
                        // Seed from the table: a server already marked down
                        // (by an earlier task, before a config change) must
                        // be reported up again once it recovers. Panic mode
                        // clears the down flags, but there every server was
                        // down or in maintenance, so starting down costs at
                        // most a redundant "up" report, never a missed one.
                        _ => self.start_health(&server.key, server.addr, cfg, !(server.down || pool.panic)),
                    };
                    health.insert(Arc::clone(&server.key), running);
                }
                if let Some(cfg) = &pool.config.agent {
                    let running = match self.agents.remove(&server.key) {
                        Some(r) if r.cfg == *cfg => {
                            r.addr.set(server.addr);
                            r
                        }
                        _ => self.start_agent(&server.key, server.addr, cfg),
                    };
                    agents.insert(Arc::clone(&server.key), running);
                }
            }
        }
        // What is left belonged to servers or checks no longer in the table.
        self.health = health;
        self.agents = agents;
        self.seen = Some(table);
    }

    fn start_health(
        &self,
        key: &Arc<str>,
        addr: SocketAddr,
        cfg: &HealthCheckConfig,
        up: bool,
    ) -> Running<HealthCheckConfig> {
        let addr = Rc::new(Cell::new(addr));
        let state = CheckState::with_health(cfg, up);
        let first = self.first_delay(key, cfg.interval);
        let task = health_task(Arc::clone(key), cfg.clone(), Rc::clone(&addr), state, first, Arc::clone(&self.sink));
        Running { cfg: cfg.clone(), addr, _task: compio::runtime::spawn(task) }
    }

    fn start_agent(&self, key: &Arc<str>, addr: SocketAddr, cfg: &AgentCheckConfig) -> Running<AgentCheckConfig> {
        let addr = Rc::new(Cell::new(addr));
        let first = self.first_delay(key, cfg.interval);
        let task = agent_task(Arc::clone(key), cfg.clone(), Rc::clone(&addr), first, Arc::clone(&self.sink));
        Running { cfg: cfg.clone(), addr, _task: compio::runtime::spawn(task) }
    }

    /// A delay in `[0, interval)` derived from the key, so hundreds of
    /// servers added at once (start-up, reload) spread their first checks
    /// over one interval instead of firing together.
    fn first_delay(&self, key: &str, interval: Duration) -> Duration {
        let span = interval.as_nanos().clamp(1, u64::MAX as u128) as u64;
        Duration::from_nanos(self.jitter.hash_one(key) % span)
    }
}

/// Check, report, update the fall/rise state, report a change, wait; forever
/// (until cancelled). The wait counts from the end of a check, so a slow
/// backend is never checked by two probes at once.
async fn health_task(
    key: Arc<str>,
    cfg: HealthCheckConfig,
    addr: Rc<Cell<SocketAddr>>,
    mut state: CheckState,
    first: Duration,
    sink: Arc<dyn HealthSink>,
) {
    compio::time::sleep(first).await;
    let name = kind_name(&cfg.kind);
    loop {
        let out = probe::probe(&cfg.kind, check_addr(addr.get(), &cfg), cfg.timeout).await;
        sink.check_result(&key, out.ok, &out.detail, out.duration);
        if let Some(up) = state.observe(out.ok) {
            let (n, what) = if up {
                (
                    state.consecutive_successes(),
                    if state.consecutive_successes() == 1 { "success" } else { "successes" },
                )
            } else {
                (state.consecutive_failures(), if state.consecutive_failures() == 1 { "failure" } else { "failures" })
            };
            let reason = format!("{name} check: {} ({n} {what})", out.detail);
            if up {
                tracing::info!(server = %key, %reason, "server is up");
            } else {
                tracing::warn!(server = %key, %reason, "server is down");
            }
            sink.health_changed(&key, up, &reason);
        }
        compio::time::sleep(state.next_interval(&cfg).max(MIN_INTERVAL)).await;
    }
}

/// Query the agent, report what it said, wait; forever (until cancelled).
/// An unreachable or silent agent is not reported.
async fn agent_task(
    key: Arc<str>,
    cfg: AgentCheckConfig,
    addr: Rc<Cell<SocketAddr>>,
    first: Duration,
    sink: Arc<dyn HealthSink>,
) {
    compio::time::sleep(first).await;
    loop {
        match probe::agent(addr.get().ip(), &cfg).await {
            Some(report) => sink.agent_report(&key, report),
            None => tracing::debug!(server = %key, port = cfg.port, "agent unreachable"),
        }
        compio::time::sleep(cfg.interval.max(MIN_INTERVAL)).await;
    }
}
