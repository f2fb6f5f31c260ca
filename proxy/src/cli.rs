//! Command-line interface: `fastlb -c FILE`, `fastlb check -c FILE`,
//! `fastlb demo`, `fastlb ctl`, and the config-less `--listen/--backends` mode.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    AdminConfig, Config, ListenerConfig, PoolConfig, RuntimeConfig, ServerConfig, StickyConfig, StrategyKind,
};

#[derive(Debug, Parser)]
#[command(name = "fastlb", version, about = "A thread-per-core io_uring load balancer for HTTP/1.1")]
pub struct Cli {
    /// Config file (TOML).
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub quick: QuickArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file and exit (non-zero with errors naming key and line:column).
    Check,
    /// Start demo backends and the balancer in front of them.
    Demo(DemoArgs),
    /// Send a command to a running fastlb over its admin socket (`fastlb ctl help`);
    /// without a command, read commands from stdin, one per line.
    Ctl(CtlArgs),
}

/// `fastlb ctl [-s SOCKET] [-j] [COMMAND…]`
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Admin socket (default: `[admin] socket` of -c FILE, else /tmp/fastlb.sock).
    #[arg(short = 's', long = "socket")]
    pub socket: Option<PathBuf>,
    /// Ask for JSON (appends `json` to each command).
    #[arg(short = 'j', long = "json")]
    pub json: bool,
    /// The command, e.g. `show stat`, `drain server web/s1`, `set weight web/s1 50`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub words: Vec<String>,
}

/// Run without a config file: one listener, one pool.
#[derive(Debug, Args)]
pub struct QuickArgs {
    /// Address to listen on, e.g. 127.0.0.1:8000.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Comma-separated backend addresses, e.g. 127.0.0.1:5000,127.0.0.1:5001.
    #[arg(long, value_delimiter = ',')]
    pub backends: Vec<SocketAddr>,
    /// Balancing strategy (round_robin, weighted_round_robin, least_connections,
    /// least_response_time, power_of_two, random, ip_hash, url_hash, consistent_hash).
    #[arg(long, alias = "algorithm", value_parser = parse_strategy)]
    pub strategy: Option<StrategyKind>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Cookie-insert sticky sessions.
    #[arg(long)]
    pub sticky_sessions: bool,
    /// Do not add X-Forwarded-For / X-Forwarded-Proto / X-Real-IP.
    #[arg(long)]
    pub no_forward_headers: bool,
    /// Do not pin worker threads to cores.
    #[arg(long)]
    pub no_pin: bool,
    /// Serve the admin socket at this path (off by default without a config file).
    #[arg(long, value_name = "PATH")]
    pub admin: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Demo backends to start.
    #[arg(long, default_value_t = 2)]
    pub nodes: usize,
    /// Balancing strategy.
    #[arg(long, alias = "strategy", default_value = "round_robin", value_parser = parse_strategy)]
    pub algorithm: StrategyKind,
    /// Cookie-insert sticky sessions.
    #[arg(long)]
    pub sticky_sessions: bool,
    /// Port of the balancer on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Admin socket path (default: fastlb-demo-PID.sock in the temp dir, printed at start-up).
    #[arg(long, value_name = "PATH")]
    pub admin: Option<PathBuf>,
    /// Use this WASM plugin (NAME.wasm) as the strategy; --algorithm is its fallback.
    /// Its folder is watched: a rebuilt file is swapped in live.
    #[arg(long, value_name = "FILE.wasm")]
    pub plugin: Option<PathBuf>,
}

fn parse_strategy(s: &str) -> Result<StrategyKind, String> {
    StrategyKind::parse(s).ok_or_else(|| {
        let names: Vec<&str> = StrategyKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown strategy {s:?}; expected one of {}", names.join(", "))
    })
}

impl QuickArgs {
    /// The config the flags describe, or `None` when `--listen` is absent.
    pub fn to_config(&self) -> Result<Option<Config>, String> {
        let Some(listen) = self.listen else {
            if !self.backends.is_empty() {
                return Err("--backends needs --listen".into());
            }
            return Ok(None);
        };
        if self.backends.is_empty() {
            return Err("--listen needs --backends ADDR[,ADDR…]".into());
        }
        let servers = self
            .backends
            .iter()
            .enumerate()
            .map(|(i, a)| ServerConfig::new(&format!("server-{}", i + 1), *a))
            .collect();
        let mut config = quick_config(listen, servers, self.strategy.unwrap_or(StrategyKind::RoundRobin));
        config.listeners[0].forward_headers = !self.no_forward_headers;
        if self.sticky_sessions {
            config.pools[0].sticky = Some(StickyConfig::default());
        }
        if let Some(w) = self.workers {
            config.runtime.workers = w.max(1);
        }
        config.runtime.pin_workers = !self.no_pin;
        Ok(Some(config))
    }
}

/// A one-listener, one-pool config with every other setting at its default.
pub fn quick_config(listen: SocketAddr, servers: Vec<ServerConfig>, strategy: StrategyKind) -> Config {
    let mut pool = PoolConfig::new("default", servers);
    pool.strategy = strategy;
    Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: vec![ListenerConfig::http("default", listen, "default")],
        pools: vec![pool],
        plugins: Default::default(),
    }
}
