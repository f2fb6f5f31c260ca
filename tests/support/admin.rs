//! The admin side of a running [`Proxy`]: `fastlb ctl` against its socket,
//! the JSON snapshots (`show stat json` …), config rewrites and SIGHUP.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::proxy::{Proxy, fastlb_bin, with_admin_socket};
use super::wait_until;

/// Longest a single `fastlb ctl` run may take before the test fails.
const CTL_TIMEOUT: Duration = Duration::from_secs(20);

/// `fastlb ctl -s SOCKET ARGS…`, with `stdin` piped in when given.
/// Returns (exit code, stdout, stderr); a run longer than 20 s is killed
/// and fails the test.
pub fn run_ctl(socket: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let bin = fastlb_bin();
    let mut child = Command::new(&bin)
        .arg("ctl")
        .arg("-s")
        .arg(socket)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {} ctl: {e}", bin.display()));
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        let text = text.to_string();
        // Closing stdin (end of this thread) is the end of the script.
        thread::spawn(move || {
            let _ = w.write_all(text.as_bytes());
        });
    }
    let reader = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut out = Vec::new();
            let _ = r.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if started.elapsed() > CTL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    let Some(status) = status else {
        panic!("`fastlb ctl {args:?}` still running after {CTL_TIMEOUT:?}; stdout {stdout:?} stderr {stderr:?}");
    };
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// The pools of a `show stat json` / `show pools json` answer: an array of
/// pools at top level, under `pools`, or an object keyed by pool name.
pub fn pools_of(v: &Value) -> Vec<Value> {
    let is_pool = |p: &Value| p.get("servers").is_some_and(Value::is_array);
    if let Some(a) = v.as_array()
        && a.iter().all(is_pool)
    {
        return a.clone();
    }
    if let Some(p) = v.get("pools") {
        return pools_of(p);
    }
    if let Some(m) = v.as_object()
        && !m.is_empty()
        && m.values().all(is_pool)
    {
        return m.values().cloned().collect();
    }
    panic!("no pools array in {v}");
}

/// Every server of every pool in a `show stat json` answer.
pub fn servers_of(v: &Value) -> Vec<Value> {
    pools_of(v).iter().flat_map(|p| p["servers"].as_array().cloned().unwrap_or_default()).collect()
}

/// A JSON number as u64 (panics naming `what` otherwise).
pub fn num(v: &Value, what: &str) -> u64 {
    v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)).unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

impl Proxy {
    /// The admin socket path (panics when the test did not set one up).
    pub fn admin_socket(&self) -> &Path {
        self.admin.as_deref().expect("this Proxy has no known admin socket (use from_toml or spawn_with_admin)")
    }

    /// DIR/lb.toml, the file `from_toml` started fastlb with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.as_ref().expect("this Proxy has no temp dir").join("lb.toml")
    }

    /// `fastlb ctl -s SOCKET ARGS…` → (exit code, stdout, stderr).
    pub fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        run_ctl(self.admin_socket(), args, None)
    }

    /// `fastlb ctl -s SOCKET < script`.
    pub fn ctl_stdin(&self, script: &str) -> (i32, String, String) {
        run_ctl(self.admin_socket(), &[], Some(script))
    }

    /// Runs a command that must succeed (exit 0); returns its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ctl(args);
        assert_eq!(code, 0, "`fastlb ctl {}` exit {code}; stdout {out:?} stderr {err:?}", args.join(" "));
        assert!(!out.lines().any(|l| l.starts_with("error:")), "`{}` answered an error: {out:?}", args.join(" "));
        out
    }

    /// Runs a command that must be refused: exit 1 and an `error: …` line.
    /// Returns stdout and stderr joined.
    pub fn ctl_err(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ctl(args);
        let all = format!("{out}{err}");
        assert_eq!(code, 1, "`fastlb ctl {}` should be refused (exit 1): exit {code}, {all:?}", args.join(" "));
        assert!(
            all.lines().any(|l| l.trim_start().starts_with("error:")),
            "`{}` refused without an `error:` line: {all:?}",
            args.join(" ")
        );
        all
    }

    /// `ARGS… json`, parsed.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut full = args.to_vec();
        full.push("json");
        let out = self.ctl_ok(&full);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("`{}` is not JSON ({e}): {out:?}", full.join(" ")))
    }

    /// `show stat json`
    pub fn stat(&self) -> Value {
        self.ctl_json(&["show", "stat"])
    }

    /// The pools of `show stat json`.
    pub fn pools(&self) -> Vec<Value> {
        pools_of(&self.stat())
    }

    /// The pool called `name` in `show stat json`.
    pub fn pool(&self, name: &str) -> Value {
        let pools = self.pools();
        pools
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no pool {name} in show stat: {pools:?}"))
    }

    /// The server `POOL/NAME` in `show stat json`, if listed.
    pub fn try_server(&self, key: &str) -> Option<Value> {
        servers_of(&self.stat()).into_iter().find(|s| s["key"] == key)
    }

    /// The server `POOL/NAME` in `show stat json` (panics when absent).
    pub fn server(&self, key: &str) -> Value {
        self.try_server(key).unwrap_or_else(|| panic!("no server {key} in show stat: {}", self.stat()))
    }

    /// `state` of server `POOL/NAME`.
    pub fn state(&self, key: &str) -> String {
        self.server(key)["state"].as_str().unwrap_or_default().to_string()
    }

    /// Waits up to `limit` for server `key` to reach `state`; panics with
    /// its stat line and the event log otherwise.
    pub fn expect_state(&self, key: &str, state: &str, limit: Duration) {
        if !wait_until(limit, || self.state(key) == state) {
            panic!(
                "{key} did not become {state:?} within {limit:?}: {}\nevents: {}",
                self.server(key),
                self.ctl_json(&["show", "events"])
            );
        }
    }

    /// `show events json`.
    pub fn events(&self) -> Vec<Value> {
        let v = self.ctl_json(&["show", "events"]);
        let a = v.as_array().or_else(|| v.get("events").and_then(Value::as_array));
        a.cloned().unwrap_or_else(|| panic!("show events json is not an array: {v}"))
    }

    /// `show info json`.
    pub fn info(&self) -> Value {
        self.ctl_json(&["show", "info"])
    }

    /// Replaces DIR/lb.toml with `toml`, keeping the admin socket line
    /// (unless `toml` names its own socket).
    pub fn rewrite_config(&self, toml: &str) {
        let text = match &self.admin {
            Some(sock) => with_admin_socket(toml, sock),
            None => toml.to_string(),
        };
        std::fs::write(self.config_path(), text).expect("rewrite config");
    }

    /// Sends SIGHUP (reload).
    pub fn sighup(&self) {
        // SAFETY: plain syscall on the PID of our own, not yet reaped child.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGHUP) };
        assert_eq!(rc, 0, "kill(SIGHUP) failed");
    }
}
