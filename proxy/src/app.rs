//! What the `fastlb` binary does with its parsed arguments: load config,
//! start the workers, wait for a signal, drain. Exit codes: 0 clean stop,
//! 64 bad usage or config (like linkerd2-proxy), 1 start-up failure
//! (`fastlb ctl` has its own: see [`crate::admin::ctl`]).

use std::io::IsTerminal;
use std::sync::OnceLock;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use futures_channel::oneshot;

use crate::cli::{Cli, Command, DemoArgs, quick_config};
use crate::config::{self, Config, ServerConfig, StickyConfig};
use crate::control::{Control, ControlApi, HealthSink, spawn_monitor};
use crate::{admin, demo, health, runtime};

const EXIT_USAGE: u8 = 64;

pub fn run(cli: Cli) -> ExitCode {
    if !matches!(cli.command, Some(Command::Check) | Some(Command::Ctl(_))) {
        // Before any thread exists (demo backends start early), so that every
        // thread inherits the mask and only `serve`'s sigwait sees them.
        block_signals();
    }
    match &cli.command {
        Some(Command::Check) => check(&cli),
        // No logging set-up: ctl prints answers, not server logs.
        Some(Command::Ctl(args)) => admin::ctl::run(args, cli.config.as_deref()),
        Some(Command::Demo(args)) => match demo_config(args) {
            Ok(config) => serve(Launch { config, path: None, admin: true }),
            Err(e) => {
                eprintln!("fastlb demo: {e}");
                ExitCode::FAILURE
            }
        },
        None => match load(&cli) {
            Ok(launch) => serve(launch),
            Err(code) => code,
        },
    }
}

fn check(cli: &Cli) -> ExitCode {
    let Some(path) = &cli.config else {
        eprintln!("fastlb check: give the config file with -c FILE");
        return ExitCode::from(EXIT_USAGE);
    };
    match config::load(path) {
        Ok(c) => {
            let servers: usize = c.pools.iter().map(|p| p.servers.len()).sum();
            println!(
                "{}: ok ({} listener(s), {} pool(s), {} server(s))",
                path.display(),
                c.listeners.len(),
                c.pools.len(),
                servers
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn load(cli: &Cli) -> Result<Launch, ExitCode> {
    if let Some(path) = &cli.config {
        if cli.quick.listen.is_some() {
            eprintln!("fastlb: use either -c FILE or --listen/--backends, not both");
            return Err(ExitCode::from(EXIT_USAGE));
        }
        return match config::load(path) {
            Ok(config) => Ok(Launch { config, path: Some(path.clone()), admin: true }),
            Err(errors) => {
                eprintln!("{errors}");
                Err(ExitCode::from(EXIT_USAGE))
            }
        };
    }
    match cli.quick.to_config() {
        Ok(Some(mut config)) => {
            // Without a config file the admin socket is opt-in, so quick
            // instances (scripts, tests) never fight over the default path.
            let admin = cli.quick.admin.clone();
            if let Some(path) = &admin {
                config.admin.socket = path.clone();
            }
            Ok(Launch { config, path: None, admin: admin.is_some() })
        }
        Ok(None) => {
            eprintln!(
                "fastlb: nothing to run. Try `fastlb demo`, `fastlb -c lb.toml`, or `fastlb --listen 127.0.0.1:8000 --backends 127.0.0.1:5000,127.0.0.1:5001` (see --help)"
            );
            Err(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => {
            eprintln!("fastlb: {e}");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

fn demo_config(args: &DemoArgs) -> std::io::Result<Config> {
    init_logging("info");
    let mut servers = Vec::new();
    for i in 1..=args.nodes.max(1) {
        let b = demo::start_backend(&format!("server-{i}"))?;
        tracing::info!(id = %b.id, addr = %b.addr, "demo backend started");
        servers.push(ServerConfig::new(&b.id, b.addr));
    }
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let mut config = quick_config(listen, servers, args.algorithm);
    config.listeners[0].status_path = Some("/proxy/status".into());
    if let Some(file) = &args.plugin {
        // The file's folder is watched, so rebuilding the plugin in place
        // swaps it live; the built-in algorithm is the fallback.
        let (Some(dir), Some(name)) = (file.parent(), file.file_stem().and_then(|s| s.to_str())) else {
            return Err(std::io::Error::other(format!("--plugin {}: not a NAME.wasm file", file.display())));
        };
        if !file.is_file() {
            return Err(std::io::Error::other(format!("--plugin {}: no such file", file.display())));
        }
        let dir = if dir.as_os_str().is_empty() { std::path::Path::new(".") } else { dir };
        config.plugins.dir = Some(dir.to_path_buf());
        config.pools[0].plugin =
            Some(crate::config::PoolPlugin { name: name.to_string(), config_json: "{}".to_string() });
        tracing::info!(plugin = name, dir = %dir.display(), "demo strategy is a WASM plugin (fallback: {})", args.algorithm.name());
    }
    if args.sticky_sessions {
        config.pools[0].sticky = Some(StickyConfig::default());
    }
    if let Some(w) = args.workers {
        config.runtime.workers = w.max(1);
    }
    // One demo per user at a time would be too strict: the default socket
    // is per process, and printed at start-up.
    config.admin.socket = args
        .admin
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("fastlb-demo-{}.sock", std::process::id())));
    Ok(config)
}

/// What to run: the config, where it came from (for `reload`), and
/// whether to serve the admin socket.
pub struct Launch {
    pub config: Config,
    /// The config file, if any: `reload` and SIGHUP re-read it.
    pub path: Option<PathBuf>,
    /// Serve the admin socket at `config.admin.socket`.
    pub admin: bool,
}

/// Control threads running beside the workers, stopped on shutdown.
struct ControlThreads {
    admin: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    health: (oneshot::Sender<()>, JoinHandle<()>),
    monitor: (mpsc::Sender<()>, JoinHandle<()>),
    /// Rescans the plugins directory; stops when dropped.
    plugins: Option<crate::plugin::PluginWatcher>,
}

impl ControlThreads {
    fn start(launch: &Launch, control: &Arc<Control>) -> std::io::Result<ControlThreads> {
        let shared = control.shared();
        let api: Arc<dyn ControlApi> = control.clone();
        let id = crate::proxy::status::proxy_id();
        let page_api = Arc::clone(&api);
        let _ = shared.status_page.set(Box::new(move |pool: &str| admin::status_json(&*page_api, pool, &id)));
        let admin = if launch.admin {
            let (tx, rx) = oneshot::channel();
            Some((tx, admin::spawn_admin(&launch.config.admin, api, rx)?))
        } else {
            None
        };
        let (htx, hrx) = oneshot::channel();
        let health = health::spawn_checker(Arc::clone(&shared.table), control.clone() as Arc<dyn HealthSink>, hrx)?;
        let (mtx, mrx) = mpsc::channel();
        let monitor = spawn_monitor(Arc::clone(control), mrx)?;
        let plugins = match &shared.plugins {
            Some(r) => Some(r.spawn_watcher().map_err(std::io::Error::other)?),
            None => None,
        };
        Ok(ControlThreads { admin, health: (htx, health), monitor: (mtx, monitor), plugins })
    }

    fn stop(self) {
        drop(self.plugins);
        if let Some((tx, t)) = self.admin {
            let _ = tx.send(());
            let _ = t.join();
        }
        let _ = self.health.0.send(());
        let _ = self.health.1.join();
        let _ = self.monitor.0.send(());
        let _ = self.monitor.1.join();
    }
}

fn serve(launch: Launch) -> ExitCode {
    let config = &launch.config;
    init_logging(&config.runtime.log_level);
    let set = signal_set();
    let pools: Vec<String> = config
        .pools
        .iter()
        .map(|p| format!("{} ({}, {} servers)", p.name, p.strategy.name(), p.servers.len()))
        .collect();
    tracing::info!(workers = config.runtime.workers, pools = %pools.join(", "), version = env!("CARGO_PKG_VERSION"), "starting fastlb");
    let running = match runtime::start(config.clone()) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("fastlb: {e}");
            return ExitCode::FAILURE;
        }
    };
    let control = Control::new(Arc::clone(&running.shared), config.clone(), launch.path.clone());
    control.publish();
    let threads = match ControlThreads::start(&launch, &control) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("fastlb: {e}");
            running.shutdown();
            return ExitCode::FAILURE;
        }
    };
    if launch.admin {
        tracing::info!(socket = %config.admin.socket.display(), "admin socket ready (fastlb ctl -s {} help)", config.admin.socket.display());
    }
    tracing::info!("fastlb ready");
    loop {
        let mut sig = 0;
        // SAFETY: `set` is initialised; `sig` is a valid out-pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        match sig {
            libc::SIGHUP => match control.reload() {
                Ok(msg) => tracing::info!("SIGHUP: {msg}"),
                Err(e) => tracing::error!("SIGHUP: {e}"),
            },
            _ => {
                tracing::info!(signal = sig, "stopping: no new connections, draining in-flight requests");
                threads.stop();
                running.shutdown();
                tracing::info!("stopped");
                return ExitCode::SUCCESS;
            }
        }
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and so in
/// every thread it starts afterwards).
fn block_signals() {
    let set = signal_set();
    // SAFETY: valid, initialised sigset; affects this thread only.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set in place.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}

type FilterHandle = tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Set once by `init_logging`; lets a reload change the level.
static LOG_FILTER: OnceLock<FilterHandle> = OnceLock::new();

/// Logs to stderr; `RUST_LOG` overrides the configured level. Colours only
/// on a terminal. Safe to call twice (the second call does nothing).
pub fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    if tracing_subscriber::registry().with(filter).with(fmt).try_init().is_ok() {
        let _ = LOG_FILTER.set(handle);
    }
}

/// Applies a reloaded `log_level` (unless `RUST_LOG` is set, which wins).
pub fn set_log_level(level: &str) {
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    if let Some(handle) = LOG_FILTER.get() {
        let _ = handle.reload(EnvFilter::new(level));
    }
}
