//! Real servers from Debian packages, started per test on free ports:
//! `redis-server` and PostgreSQL. Each is killed by PID on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::proxy::temp_dir;
use super::wait_until;

/// A port that was free a moment ago on 127.0.0.1 (bind to 0, release).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// `name` on PATH, if installed.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn stop_child(child: &mut Child, sig: libc::c_int) {
    if matches!(child.try_wait(), Ok(None)) {
        // SAFETY: plain syscall on the PID of our own, not yet reaped child.
        unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        if !wait_until(Duration::from_secs(10), || !matches!(child.try_wait(), Ok(None))) {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
}

/// A `redis-server` on 127.0.0.1, no persistence.
pub struct Redis {
    pub addr: SocketAddr,
    child: Child,
}

impl Redis {
    /// None when redis-server is not installed.
    pub fn start() -> Option<Redis> {
        let bin = which("redis-server")?;
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--daemonize", "no", "--protected-mode", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut r = Redis { addr: SocketAddr::from(([127, 0, 0, 1], port)), child };
            if wait_until(Duration::from_secs(10), || r.ping() || !r.is_running()) && r.is_running() {
                return Some(r);
            }
            // Port taken by someone else in the meantime: try another.
        }
        panic!("redis-server did not start in 5 attempts");
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// PING answered +PONG, directly (not through fastlb).
    pub fn ping(&self) -> bool {
        resp_ping(self.addr)
    }

    /// Stops the server (SIGTERM, then SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        stop_child(&mut self.child, libc::SIGTERM);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One `PING` on a fresh connection to `addr`; true on `+PONG`.
pub fn resp_ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// A PostgreSQL cluster in a temp dir, trust auth, listening on 127.0.0.1.
pub struct Postgres {
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

/// The newest `/usr/lib/postgresql/*/bin`, if PostgreSQL is installed.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        let v = d.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok());
        v.unwrap_or(0)
    });
    dirs.pop()
}

/// (uid, gid) of the `postgres` user, when running as root (PostgreSQL
/// refuses to run as root); None when not root.
fn postgres_ids() -> Option<(u32, u32)> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let line = passwd.lines().find(|l| l.starts_with("postgres:")).expect("running as root but no postgres user");
    let f: Vec<&str> = line.split(':').collect();
    Some((f[2].parse().unwrap(), f[3].parse().unwrap()))
}

fn as_postgres(cmd: &mut Command, ids: Option<(u32, u32)>) -> &mut Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = ids {
        cmd.uid(uid).gid(gid).env("HOME", "/tmp");
    }
    cmd
}

impl Postgres {
    /// None when PostgreSQL is not installed. As root it runs as the
    /// `postgres` user (setuid in the child, so the PID is postgres' own).
    pub fn start() -> Option<Postgres> {
        let bin = postgres_bin_dir()?;
        let ids = postgres_ids();
        let dir = temp_dir();
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown pg dir");
        }
        let data = dir.join("data");
        let out = as_postgres(Command::new(bin.join("initdb")).arg("-D").arg(&data), ids)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        for _ in 0..5 {
            let port = free_port();
            let mut child = as_postgres(Command::new(bin.join("postgres")).arg("-D").arg(&data), ids)
                .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .arg("-k")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn postgres");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let up = wait_until(Duration::from_secs(30), || {
                TcpStream::connect(addr).is_ok() || !matches!(child.try_wait(), Ok(None))
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return Some(Postgres { addr, child, dir });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("postgres did not start in 5 attempts (data dir {})", data.display());
    }

    /// The socket/data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: fast shutdown (disconnects clients, no checkpoint wait).
        stop_child(&mut self.child, libc::SIGINT);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
