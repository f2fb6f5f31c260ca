//! Runs the real `fastlb` binary as a child process and waits for its
//! readiness lines on stderr (never a sleep).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::backend::Backend;

/// Bound on start-up: spawn to `fastlb ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The binary under test: `$FASTLB_BIN`, else `target/<profile>/fastlb`
/// next to this test executable's `deps/` directory.
pub fn fastlb_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FASTLB_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("fastlb"))
        .expect("test executable has no target/<profile>/deps parent");
    if !bin.is_file() {
        panic!("{} not found; build it first: cargo build -p fastlb", bin.display());
    }
    bin
}

/// A running fastlb. Dropping it stops the process (SIGTERM, then SIGKILL
/// after 5 s).
pub struct Proxy {
    child: Child,
    /// The first listener's address (the one named by `listener=` when the
    /// log says so).
    pub addr: SocketAddr,
    /// Every `listening … addr=` address, in log order.
    pub addrs: Vec<SocketAddr>,
    log: Arc<Mutex<String>>,
    /// The temp dir holding `lb.toml` and the admin socket (removed on drop).
    pub(super) dir: Option<PathBuf>,
    /// The admin socket, when the test knows it (`from_toml`, `spawn_with_admin`).
    pub(super) admin: Option<PathBuf>,
}

/// Memory figures from /proc/PID/status, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    pub hwm_kib: u64,
    pub rss_kib: u64,
}

enum Event {
    Listening { addr: SocketAddr, named: bool },
    Ready,
}

static DIR_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir, removed by `Proxy`'s drop.
pub fn temp_dir() -> PathBuf {
    let n = DIR_SEQ.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("fastlb-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_event(line: &str) -> Option<Event> {
    if line.contains("fastlb ready") {
        return Some(Event::Ready);
    }
    if !line.contains("listening") {
        return None;
    }
    let addr = line.split_whitespace().find_map(|tok| {
        let v = tok.strip_prefix("addr=")?;
        v.trim_matches(|c: char| c == '"' || c == ',' || c == '}').parse().ok()
    })?;
    Some(Event::Listening { addr, named: line.contains("listener=") })
}

impl Proxy {
    /// `fastlb ARGS…` with RUST_LOG=info; waits for readiness.
    pub fn spawn(args: &[String]) -> Proxy {
        Proxy::spawn_in(args, None)
    }

    fn spawn_in(args: &[String], dir: Option<PathBuf>) -> Proxy {
        let bin = fastlb_bin();
        let mut child = Command::new(&bin)
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("RUST_LOG_STYLE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        thread::spawn(move || {
            // Keeps draining after readiness so the pipe never fills.
            let mut reader = BufReader::new(stderr);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = strip_ansi(&String::from_utf8_lossy(&raw));
                sink.lock().unwrap().push_str(&line);
                if let Some(ev) = parse_event(&line) {
                    let _ = tx.send(ev);
                }
            }
        });
        let mut proxy = Proxy { child, addr: "0.0.0.0:0".parse().unwrap(), addrs: Vec::new(), log, dir, admin: None };
        let started = Instant::now();
        let mut first_named = None;
        loop {
            let left = READY_TIMEOUT.saturating_sub(started.elapsed());
            match rx.recv_timeout(left) {
                Ok(Event::Listening { addr, named }) => {
                    if named && first_named.is_none() {
                        first_named = Some(addr);
                    }
                    proxy.addrs.push(addr);
                }
                Ok(Event::Ready) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("fastlb {args:?}: no `fastlb ready` within {READY_TIMEOUT:?}; stderr:\n{}", proxy.stderr())
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = proxy.child.wait().ok();
                    panic!("fastlb {args:?} exited ({status:?}) before `fastlb ready`; stderr:\n{}", proxy.stderr())
                }
            }
        }
        proxy.addr = first_named
            .or_else(|| proxy.addrs.first().copied())
            .unwrap_or_else(|| panic!("fastlb ready but no `listening … addr=` line; stderr:\n{}", proxy.stderr()));
        proxy
    }

    /// `fastlb --listen 127.0.0.1:0 --backends A,B --workers 1 EXTRA…`
    /// (`--workers` from EXTRA wins).
    pub fn cli(backends: &[&Backend], extra: &[&str]) -> Proxy {
        let list: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
        let mut args: Vec<String> = vec!["--listen".into(), "127.0.0.1:0".into(), "--backends".into(), list.join(",")];
        if !extra.contains(&"--workers") {
            args.extend(["--workers".into(), "1".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Proxy::spawn(&args)
    }

    /// `fastlb -c DIR/lb.toml` with `toml` written to a fresh temp dir. An
    /// admin socket inside that dir is added unless `toml` names one (an
    /// `[admin]` table without `socket` gets the line inserted), so parallel
    /// tests never share the default socket path. [`Proxy::admin_socket`]
    /// tells where it is.
    pub fn from_toml(toml: &str) -> Proxy {
        let dir = temp_dir();
        let default_socket = dir.join("admin.sock");
        let text = with_admin_socket(toml, &default_socket);
        let admin = admin_socket_in(&text);
        let path = dir.join("lb.toml");
        std::fs::write(&path, text).expect("write config");
        let mut proxy = Proxy::spawn_in(&["-c".into(), path.display().to_string()], Some(dir));
        proxy.admin = admin;
        proxy
    }

    /// `fastlb ARGS…` whose admin socket is `socket` (e.g. `demo --admin
    /// SOCKET`); `dir` is removed on drop.
    pub fn spawn_with_admin(args: &[String], socket: PathBuf, dir: PathBuf) -> Proxy {
        let mut proxy = Proxy::spawn_in(args, Some(dir));
        proxy.admin = Some(socket);
        proxy
    }

    /// Everything fastlb wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn mem(&self) -> Mem {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing in {path}"))
        };
        Mem { hwm_kib: field("VmHWM:"), rss_kib: field("VmRSS:") }
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit;
    /// `None` if it is still running then.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: plain syscall on the PID of our own, not yet reaped child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// How the child ended, if it has.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// True while the child has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// `toml` with an admin socket: unchanged when its `[admin]` table names
/// one, else `socket = "DEFAULT"` inserted into (or appended as) `[admin]`.
pub fn with_admin_socket(toml: &str, default: &Path) -> String {
    if admin_socket_in(toml).is_some() {
        return toml.to_string();
    }
    let line = format!("socket = \"{}\"", default.display());
    let mut out = String::with_capacity(toml.len() + line.len() + 16);
    let mut inserted = false;
    for l in toml.lines() {
        out.push_str(l);
        out.push('\n');
        if !inserted && l.trim() == "[admin]" {
            out.push_str(&line);
            out.push('\n');
            inserted = true;
        }
    }
    if !inserted {
        let _ = write!(out, "\n[admin]\n{line}\n");
    }
    out
}

/// The `socket = "…"` value of the `[admin]` table, if any.
pub fn admin_socket_in(toml: &str) -> Option<PathBuf> {
    let mut in_admin = false;
    for l in toml.lines() {
        let l = l.trim();
        if l.starts_with('[') {
            in_admin = l == "[admin]";
            continue;
        }
        if !in_admin {
            continue;
        }
        if let Some((k, v)) = l.split_once('=')
            && k.trim() == "socket"
        {
            return Some(PathBuf::from(v.trim().trim_matches('"')));
        }
    }
    None
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if thread::panicking() {
            // The proxy's own account of a failing test, last 4 KiB.
            let log = self.stderr();
            let tail: String = log.chars().rev().take(4096).collect::<Vec<_>>().into_iter().rev().collect();
            eprintln!("--- fastlb (pid {}) stderr tail ---\n{tail}--- end ---", self.child.id());
        }
        if self.is_running() {
            let pid = self.child.id() as libc::pid_t;
            // SAFETY: plain syscall on the PID of our own, not yet reaped child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && self.is_running() {
                thread::sleep(Duration::from_millis(20));
            }
            if self.is_running() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A `fastlb -c` config for one listener and one pool, rendered in the
/// documented TOML shape.
#[derive(Debug, Clone)]
pub struct Cfg {
    pub workers: usize,
    pub strategy: String,
    /// Extra `key = value` lines for `[[listener]]`.
    pub listener_keys: String,
    /// Sub-tables for the listener (`[listener.limits]`, `[listener.timeouts]`).
    pub listener_tables: String,
    /// Extra `key = value` lines for `[[pool]]`.
    pub pool_keys: String,
    /// Sub-tables for the pool (`[pool.timeouts]`, `[pool.passive]`).
    pub pool_tables: String,
    /// (name, addr, weight, backup)
    pub servers: Vec<(String, SocketAddr, u32, bool)>,
    /// Extra `key = value` lines per server name (`zone = "a"`).
    pub server_keys: Vec<(String, String)>,
    /// Top-level tables after the pool (`[plugins]`).
    pub tables: String,
}

impl Cfg {
    /// One server per backend, named by its id, weight 1.
    pub fn new(strategy: &str, backends: &[&Backend]) -> Cfg {
        Cfg {
            workers: 1,
            strategy: strategy.to_string(),
            listener_keys: String::new(),
            listener_tables: String::new(),
            pool_keys: String::new(),
            pool_tables: String::new(),
            servers: backends.iter().map(|b| (b.id.clone(), b.addr, 1, false)).collect(),
            server_keys: Vec::new(),
            tables: String::new(),
        }
    }

    pub fn workers(mut self, n: usize) -> Cfg {
        self.workers = n;
        self
    }

    /// Appends a server with weight 1.
    pub fn server(mut self, name: &str, addr: SocketAddr) -> Cfg {
        self.servers.push((name.to_string(), addr, 1, false));
        self
    }

    /// Marks the server called `name` as a backup.
    pub fn backup(mut self, name: &str) -> Cfg {
        let s = self.servers.iter_mut().find(|s| s.0 == name).unwrap_or_else(|| panic!("no server {name}"));
        s.3 = true;
        self
    }

    /// Extra `key = value` lines for the server called `name`.
    pub fn server_keys(mut self, name: &str, keys: &str) -> Cfg {
        self.server_keys.push((name.to_string(), keys.to_string()));
        self
    }

    /// `tags = [...]` for the server called `name`.
    pub fn tags(self, name: &str, tags: &[&str]) -> Cfg {
        let list: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
        self.server_keys(name, &format!("tags = [{}]", list.join(", ")))
    }

    /// Top-level tables rendered after the pool, e.g. `[plugins]`.
    pub fn tables(mut self, tables: &str) -> Cfg {
        self.tables.push_str(tables);
        self.tables.push('\n');
        self
    }

    pub fn weights(mut self, weights: &[u32]) -> Cfg {
        for (s, w) in self.servers.iter_mut().zip(weights) {
            s.2 = *w;
        }
        self
    }

    pub fn pool_keys(mut self, keys: &str) -> Cfg {
        self.pool_keys.push_str(keys);
        self.pool_keys.push('\n');
        self
    }

    pub fn pool_tables(mut self, tables: &str) -> Cfg {
        self.pool_tables.push_str(tables);
        self.pool_tables.push('\n');
        self
    }

    pub fn listener_keys(mut self, keys: &str) -> Cfg {
        self.listener_keys.push_str(keys);
        self.listener_keys.push('\n');
        self
    }

    pub fn listener_tables(mut self, tables: &str) -> Cfg {
        self.listener_tables.push_str(tables);
        self.listener_tables.push('\n');
        self
    }

    pub fn render(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "[runtime]\nworkers = {}\n", self.workers);
        let _ = writeln!(t, "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\npool = \"app\"");
        let _ = writeln!(t, "{}\n{}", self.listener_keys, self.listener_tables);
        let _ = writeln!(t, "[[pool]]\nname = \"app\"\nstrategy = \"{}\"", self.strategy);
        let _ = writeln!(t, "{}\n{}", self.pool_keys, self.pool_tables);
        for (name, addr, weight, backup) in &self.servers {
            let _ = writeln!(
                t,
                "[[pool.server]]\nname = \"{name}\"\naddr = \"{addr}\"\nweight = {weight}\nbackup = {backup}"
            );
            for (_, keys) in self.server_keys.iter().filter(|(n, _)| n == name) {
                let _ = writeln!(t, "{keys}");
            }
            t.push('\n');
        }
        t.push_str(&self.tables);
        t
    }

    pub fn start(&self) -> Proxy {
        Proxy::from_toml(&self.render())
    }
}
