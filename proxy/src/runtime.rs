//! Thread-per-core runtime: one pinned OS thread per worker, each with its
//! own compio (io_uring) runtime and its own SO_REUSEPORT listener socket.
//!
//! The control thread (the caller of [`start`]) binds nothing itself except a
//! short probe per address, so a second instance cannot silently share the
//! port through SO_REUSEPORT; it then waits for every worker to report that
//! its listeners are bound, and returns a [`Running`] handle.

use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use compio::driver::ProactorBuilder;
use compio::runtime::RuntimeBuilder;
use futures_channel::oneshot;
use socket2::{Domain, Protocol, Socket, Type};

use crate::balance::Table;
use crate::config::{Config, ListenerConfig};
use crate::proxy::{self, WorkerCtx};
use crate::stats::CoreStats;

/// Why fastlb could not start. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "listener {name}: {addr} is already in use (another fastlb or another server holds it); stop it or choose another bind address"
    )]
    AddrInUse { name: String, addr: SocketAddr },
    #[error("listener {name}: cannot bind {addr}: {source}")]
    Bind { name: String, addr: SocketAddr, source: io::Error },
    #[error(
        "worker {core}: io_uring is unavailable or refused by the kernel ({source}); fastlb needs Linux ≥ 6.1 with io_uring enabled (sysctl kernel.io_uring_disabled=0, not blocked by seccomp in containers)"
    )]
    IoUring { core: usize, source: io::Error },
    #[error("worker {core}: {message}")]
    Worker { core: usize, message: String },
    #[error("listener {name}: pool {pool:?} does not exist")]
    UnknownPool { name: String, pool: String },
}

/// State shared by every worker and the control thread.
pub struct Shared {
    pub config: Arc<Config>,
    pub table: Arc<ArcSwap<Table>>,
    /// Per-core reported counters (connections, requests), summed on read.
    pub cores: Vec<Arc<CoreStats>>,
    pub started: std::time::Instant,
    /// WASM plugins, when `[plugins] dir` is set.
    pub plugins: Option<Arc<crate::plugin::PluginRegistry>>,
    /// Renders a listener's `status_path` page for a pool; set once the
    /// control side is up (the admin module provides it, so the data path
    /// does not depend on admin).
    pub status_page: std::sync::OnceLock<StatusPage>,
}

/// Renders the status page JSON for the named pool.
pub type StatusPage = Box<dyn Fn(&str) -> String + Send + Sync>;

/// A running instance: bound addresses and the means to stop it.
pub struct Running {
    /// `(listener name, bound address)` in config order; port 0 resolved.
    pub listeners: Vec<(String, SocketAddr)>,
    pub shared: Arc<Shared>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    /// Address of the listener called `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    /// Graceful stop: every worker stops accepting, lets in-flight requests
    /// finish (up to the drain timeout), then exits. Blocks until all have.
    pub fn shutdown(mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Blocks until every worker has exited (e.g. after a panic).
    pub fn join(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Starts the workers for `config` and returns once every listener is bound
/// on every worker.
pub fn start(config: Config) -> Result<Running, StartError> {
    let workers = config.runtime.workers.max(1);
    raise_nofile_limit(&config);
    let mut listeners = Vec::new();
    for l in &config.listeners {
        if !config.pools.iter().any(|p| p.name == l.pool) {
            return Err(StartError::UnknownPool { name: l.name.clone(), pool: l.pool.clone() });
        }
        listeners.push((l.name.clone(), probe_bind(l)?));
    }
    let plugins = match config.plugins.dir {
        Some(_) => Some(
            crate::plugin::PluginRegistry::new(&config.plugins, workers)
                .map_err(|message| StartError::Worker { core: 0, message: format!("plugins: {message}") })?,
        ),
        None => None,
    };
    let table = Table::build(&config, workers, None, 1);
    let shared = Arc::new(Shared {
        plugins,
        config: Arc::new(config),
        table: Arc::new(ArcSwap::from_pointee(table)),
        cores: (0..workers).map(|_| Arc::new(CoreStats::default())).collect(),
        started: std::time::Instant::now(),
        status_page: std::sync::OnceLock::new(),
    });
    let cpus = allowed_cpus();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, StartError>>();
    let mut stops = Vec::new();
    let mut threads = Vec::new();
    for core in 0..workers {
        let (stop_tx, stop_rx) = oneshot::channel();
        stops.push(stop_tx);
        let shared = Arc::clone(&shared);
        let addrs: Vec<SocketAddr> = listeners.iter().map(|(_, a)| *a).collect();
        let pin = shared.config.runtime.pin_workers.then(|| cpus[core % cpus.len()]);
        let ready = ready_tx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fastlb-w{core}"))
            .spawn(move || worker_main(core, pin, shared, addrs, ready, stop_rx))
            .map_err(|e| StartError::Worker { core, message: format!("cannot spawn thread: {e}") })?;
        threads.push(thread);
    }
    drop(ready_tx);
    let mut running = Running { listeners, shared, stops, threads };
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                running.stops.drain(..).for_each(|s| {
                    let _ = s.send(());
                });
                running.join();
                return Err(e);
            }
            Err(_) => {
                running.join();
                return Err(StartError::Worker { core: 0, message: "worker exited during start-up".into() });
            }
        }
    }
    for (name, addr) in &running.listeners {
        tracing::info!(listener = %name, addr = %addr, workers, "listening");
    }
    Ok(running)
}

fn worker_main(
    core: usize,
    pin: Option<usize>,
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    ready: mpsc::Sender<Result<usize, StartError>>,
    stop: oneshot::Receiver<()>,
) {
    let mut proactor = ProactorBuilder::new();
    // Without these every completion interrupts the thread with task work:
    // measured here as 30–40% more CPU per request (see README).
    proactor.single_issuer(true).defer_taskrun(true).coop_taskrun(true).taskrun_flag(true);
    // The provided-buffer ring idle client connections receive into: a
    // buffer is lent only when bytes arrive and given back right after they
    // are copied out, so idle keep-alive connections hold none.
    proactor
        .buffer_pool_size(std::num::NonZero::new(crate::proxy::IDLE_RECV_BUFS).expect("non-zero"))
        .buffer_pool_buffer_len(crate::proxy::IDLE_RECV_LEN);
    let mut builder = RuntimeBuilder::new();
    builder.with_proactor(proactor);
    if let Some(cpu) = pin {
        builder.thread_affinity(HashSet::from([cpu]));
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(source) => {
            let _ = ready.send(Err(StartError::IoUring { core, source }));
            return;
        }
    };
    // Sockets that carry many requests are used through this table (see
    // `proxy::fixed`); without it they are used as plain descriptors.
    if let Err(e) = proxy::fixed::init(&rt) {
        tracing::warn!(core, error = %e, "no registered-file table: sockets are used as plain descriptors");
    }
    let config = Arc::clone(&shared.config);
    let mut sockets = Vec::new();
    for (l, addr) in config.listeners.iter().zip(&addrs) {
        match bind_reuseport(*addr, l.backlog) {
            Ok(s) => sockets.push((l.clone(), s)),
            Err(source) => {
                let _ = ready.send(Err(StartError::Bind { name: l.name.clone(), addr: *addr, source }));
                return;
            }
        }
    }
    // The data path's timer wheel turns in this event loop (no ticker task).
    proxy::timer::block_on(&rt, async move {
        let ctx = WorkerCtx::new(core, shared);
        let mut listeners = Vec::new();
        for (l, s) in sockets {
            match compio::net::TcpListener::from_std(s) {
                Ok(listener) => listeners.push((l, listener)),
                Err(e) => {
                    let _ = ready.send(Err(StartError::Worker { core, message: format!("listener: {e}") }));
                    return;
                }
            }
        }
        let _ = ready.send(Ok(core));
        proxy::serve(ctx, listeners, stop).await;
    });
    proxy::fixed::shutdown();
}

/// Binds once without SO_REUSEPORT so an address held by anyone (including
/// another fastlb) is refused, and resolves port 0 to the port every worker
/// will then share.
fn probe_bind(l: &ListenerConfig) -> Result<SocketAddr, StartError> {
    match StdListener::bind(l.bind) {
        Ok(s) => s.local_addr().map_err(|source| StartError::Bind { name: l.name.clone(), addr: l.bind, source }),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            Err(StartError::AddrInUse { name: l.name.clone(), addr: l.bind })
        }
        Err(source) => Err(StartError::Bind { name: l.name.clone(), addr: l.bind, source }),
    }
}

fn bind_reuseport(addr: SocketAddr, backlog: u32) -> io::Result<StdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
}

/// CPUs this process may run on, in order (workers are pinned round-robin over them).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bitmask the kernel fills; size passed matches.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect();
            if !cpus.is_empty() {
                return cpus;
            }
        }
    }
    vec![0]
}

/// Raises the soft RLIMIT_NOFILE so the configured connection limits can be
/// reached: each client connection may hold one upstream connection too.
fn raise_nofile_limit(config: &Config) {
    let per_core: usize = config.listeners.iter().map(|l| l.limits.max_connections).sum();
    let want = (per_core * 2 * config.runtime.workers.max(1) + 1024) as u64;
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        let target = want.min(lim.rlim_max);
        if lim.rlim_cur < target {
            let old = lim.rlim_cur;
            lim.rlim_cur = target;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                tracing::info!(from = old, to = target, "raised open-file limit");
            }
        }
        // Client connections alone past the hard limit: say so; upstream
        // connections beyond it merely fail over to other servers.
        if (per_core * config.runtime.workers.max(1)) as u64 > lim.rlim_max {
            tracing::warn!(
                wanted = want,
                hard_limit = lim.rlim_max,
                "open-file hard limit is below what max_connections needs; raise it (ulimit -Hn) or lower max_connections"
            );
        }
    }
}
