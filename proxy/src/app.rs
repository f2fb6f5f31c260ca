//! What the `fastlb` binary does with its parsed arguments: load config,
//! start the workers, wait for a signal, drain. Exit codes: 0 clean stop,
//! 64 bad usage or config (like linkerd2-proxy), 1 start-up failure
//! (`fastlb ctl` has its own: see [`crate::admin::ctl`]).

use std::io::IsTerminal;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use crate::cli::{Cli, Command, DemoArgs, quick_config};
use crate::config::{self, Config, ServerConfig, StickyConfig};
use crate::{admin, demo, runtime};

const EXIT_USAGE: u8 = 64;

pub fn run(cli: Cli) -> ExitCode {
    match &cli.command {
        Some(Command::Check) => check(&cli),
        // No logging set-up: ctl prints answers, not server logs.
        Some(Command::Ctl(args)) => admin::ctl::run(args, cli.config.as_deref()),
        Some(Command::Demo(args)) => match demo_config(args) {
            Ok(config) => serve(config),
            Err(e) => {
                eprintln!("fastlb demo: {e}");
                ExitCode::FAILURE
            }
        },
        None => match load(&cli) {
            Ok(config) => serve(config),
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

fn load(cli: &Cli) -> Result<Config, ExitCode> {
    if let Some(path) = &cli.config {
        if cli.quick.listen.is_some() {
            eprintln!("fastlb: use either -c FILE or --listen/--backends, not both");
            return Err(ExitCode::from(EXIT_USAGE));
        }
        return config::load(path).map_err(|errors| {
            eprintln!("{errors}");
            ExitCode::from(EXIT_USAGE)
        });
    }
    match cli.quick.to_config() {
        Ok(Some(config)) => Ok(config),
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
    if args.sticky_sessions {
        config.pools[0].sticky = Some(StickyConfig::default());
    }
    if let Some(w) = args.workers {
        config.runtime.workers = w.max(1);
    }
    Ok(config)
}

fn serve(config: Config) -> ExitCode {
    init_logging(&config.runtime.log_level);
    // Block the stop signals before any worker exists, so every thread
    // inherits the mask and only `sigwait` below sees them.
    let set = signal_set();
    // SAFETY: valid, initialised sigset; affects this thread (inherited by workers).
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let pools: Vec<String> = config
        .pools
        .iter()
        .map(|p| format!("{} ({}, {} servers)", p.name, p.strategy.name(), p.servers.len()))
        .collect();
    tracing::info!(workers = config.runtime.workers, pools = %pools.join(", "), version = env!("CARGO_PKG_VERSION"), "starting fastlb");
    let running = match runtime::start(config) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("fastlb: {e}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        let mut sig = 0;
        // SAFETY: `set` is initialised; `sig` is a valid out-pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        match sig {
            libc::SIGHUP => tracing::warn!("SIGHUP: live reload is not available in this version; ignored"),
            _ => {
                tracing::info!(signal = sig, "stopping: no new connections, draining in-flight requests");
                running.shutdown();
                tracing::info!("stopped");
                return ExitCode::SUCCESS;
            }
        }
    }
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

/// Logs to stderr; `RUST_LOG` overrides the configured level. Colours only
/// on a terminal. Safe to call twice (the second call does nothing).
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
