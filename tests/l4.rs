//! `mode = "tcp"` listeners in front of real servers: redis-server behind
//! fastlb with the `redis` check, the `pgsql` check against PostgreSQL,
//! half-close, the tunnel idle timeout, admin commands on a tcp pool.
//! Redis and PostgreSQL come from Debian's packages (`.ci/run` installs
//! them); a test whose binaries are absent says so and returns.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::external::{Postgres, Redis, free_port, postgres_bin_dir, which};
use support::{Backend, Cfg, Mode, Proxy, wait_until};

const STATE_LIMIT: Duration = Duration::from_secs(5);
const IO: Duration = Duration::from_secs(10);

fn health(kind: &str) -> String {
    format!(
        "[pool.health]\ntype = \"{kind}\"\ninterval = \"100ms\"\nfastinterval = \"50ms\"\ntimeout = \"500ms\"\nfall = 2\nrise = 2"
    )
}

/// A tcp listener config over `servers` (name, addr).
fn tcp_cfg(strategy: &str, servers: &[(&str, SocketAddr)]) -> Cfg {
    let mut cfg = Cfg::new(strategy, &[]).listener_keys("mode = \"tcp\"");
    for (name, addr) in servers {
        cfg = cfg.server(name, *addr);
    }
    cfg
}

/// Runs `program ARGS…` with `stdin`, killed after 20 s; (exit code, stdout, stderr).
fn run(program: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    let mut w = child.stdin.take().unwrap();
    let input = stdin.to_string();
    thread::spawn(move || {
        let _ = w.write_all(input.as_bytes());
    });
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{} {args:?} ran longer than 20 s", program.display());
        }
        thread::sleep(Duration::from_millis(5));
    };
    let mut out = String::new();
    let mut err = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (status.code().unwrap_or(-1), out, err)
}

/// `redis-cli -h 127.0.0.1 -p PORT ARGS…` (commands from `stdin` when ARGS is empty).
fn redis_cli(cli: &Path, port: u16, args: &[&str], stdin: &str) -> (i32, String, String) {
    let port = port.to_string();
    let mut full = vec!["-h", "127.0.0.1", "-p", port.as_str()];
    full.extend_from_slice(args);
    run(cli, &full, stdin)
}

#[test]
fn redis_behind_a_tcp_listener_keeps_working_when_an_instance_stops() {
    let (Some(cli), Some(r1)) = (which("redis-cli"), Redis::start()) else {
        eprintln!("skipping redis test: redis-server/redis-cli not installed (Debian package redis-server)");
        return;
    };
    let mut r2 = Redis::start().expect("second redis-server");
    let proxy = tcp_cfg("round_robin", &[("r1", r1.addr), ("r2", r2.addr)]).pool_tables(&health("redis")).start();
    let port = proxy.addr.port();
    proxy.expect_state("app/r1", "up", STATE_LIMIT);
    proxy.expect_state("app/r2", "up", STATE_LIMIT);
    assert!(
        wait_until(STATE_LIMIT, || proxy.server("app/r1")["last_check"].as_str().is_some_and(|s| s.starts_with("ok"))),
        "redis check against a real redis-server is not ok: {}",
        proxy.server("app/r1")
    );

    let ping = |i: usize| {
        let (code, out, err) = redis_cli(&cli, port, &["PING"], "");
        assert_eq!((code, out.trim()), (0, "PONG"), "PING {i} through fastlb: stderr {err:?}");
    };
    for i in 0..4 {
        ping(i);
    }
    // One connection: SET and GET reach the same instance.
    let (code, out, err) = redis_cli(&cli, port, &[], "SET fastlb-key hello\nGET fastlb-key\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["OK", "hello"], "{out:?}");

    r2.stop();
    let started = Instant::now();
    let mut i = 4;
    while proxy.state("app/r2") != "down" {
        assert!(started.elapsed() < STATE_LIMIT, "stopped redis not marked down: {}", proxy.server("app/r2"));
        ping(i);
        i += 1;
    }
    let reason = proxy.server("app/r2")["reason"].as_str().unwrap_or_default().to_string();
    assert!(!reason.is_empty(), "down without a reason");
    for _ in 0..10 {
        ping(i);
        i += 1;
    }
    assert_eq!(proxy.state("app/r1"), "up");
    assert!(r1.ping());
}

#[test]
fn redis_check_marks_a_non_redis_server_down() {
    // An HTTP server never answers `PING\r\n` with +PONG.
    let http = Backend::start("http");
    let proxy = tcp_cfg("round_robin", &[("http", http.addr)]).pool_tables(&health("redis")).start();
    proxy.expect_state("app/http", "down", STATE_LIMIT);
}

#[test]
fn pgsql_check_against_a_real_postgres() {
    if postgres_bin_dir().is_none() {
        eprintln!("skipping pgsql test: no /usr/lib/postgresql/*/bin/initdb (Debian package postgresql)");
        return;
    }
    let pg = Postgres::start().expect("postgres");
    let http = Backend::start("http");
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let proxy = tcp_cfg("round_robin", &[("pg", pg.addr), ("http", http.addr), ("dead", dead)])
        .pool_tables(&health("pgsql"))
        .start();
    proxy.expect_state("app/http", "down", STATE_LIMIT);
    proxy.expect_state("app/dead", "down", STATE_LIMIT);
    assert!(
        wait_until(STATE_LIMIT, || proxy.server("app/pg")["last_check"].as_str().is_some_and(|s| s.starts_with("ok"))),
        "pgsql check against a real PostgreSQL is not ok: {}",
        proxy.server("app/pg")
    );
    assert_eq!(proxy.state("app/pg"), "up");
    let Some(psql) = which("psql").or_else(|| postgres_bin_dir().map(|d| d.join("psql"))) else {
        return;
    };
    let port = proxy.addr.port().to_string();
    for i in 0..3 {
        let args = ["-X", "-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-d", "postgres", "-tAc", "select 40 + 2"];
        let (code, out, err) = run(&psql, &args, "");
        assert_eq!((code, out.trim()), (0, "42"), "psql {i} through fastlb: {err}");
    }
}

/// A raw TCP server answering each connection, once the client has
/// finished sending (EOF), with `got N bytes`.
fn eof_replier() -> (SocketAddr, thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(IO)).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("backend never saw EOF from the client's half-close");
        s.write_all(format!("got {} bytes", got.len()).as_bytes()).unwrap();
        let _ = s.shutdown(Shutdown::Write);
        got
    });
    (addr, h)
}

#[test]
fn half_close_reaches_the_backend_and_its_reply_still_arrives() {
    let (addr, backend) = eof_replier();
    let proxy = tcp_cfg("round_robin", &[("eof", addr)]).start();
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(IO)).unwrap();
    s.write_all(b"hello world").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("reply after half-close");
    assert_eq!(reply, "got 11 bytes");
    assert_eq!(backend.join().unwrap(), b"hello world");
}

#[test]
fn tunnel_idle_timeout_closes_an_idle_tcp_connection() {
    let mute = Backend::with_mode("mute", Mode::NeverAnswer);
    let proxy = tcp_cfg("round_robin", &[("mute", mute.addr)])
        .listener_tables("[listener.timeouts]\ntunnel = \"300ms\"")
        .start();
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(IO)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected bytes from a mute backend: {:?}", &buf[..n]),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("idle tunnel not closed within {IO:?} with tunnel = 300ms: {e}"),
    }
}

/// One raw HTTP exchange through a tcp listener; the answering backend id.
fn tcp_get(proxy: &Proxy, from: Option<IpAddr>) -> String {
    let mut s = match from {
        Some(ip) => support::Client::connect_from(ip, proxy.addr).wire.stream,
        None => TcpStream::connect(proxy.addr).unwrap(),
    };
    s.set_read_timeout(Some(IO)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.rsplit("\r\n\r\n").next().unwrap_or_default().to_string()
}

#[test]
fn admin_commands_and_stats_work_on_a_tcp_pool() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = tcp_cfg("round_robin", &[("a", a.addr), ("b", b.addr)]).start();
    proxy.ctl_ok(&["disable", "server", "app/b"]);
    for i in 0..6 {
        assert_eq!(tcp_get(&proxy, None), "a", "connection {i} with b disabled");
    }
    assert_eq!(b.conns(), 0);
    assert!(
        wait_until(STATE_LIMIT, || support::num(&proxy.server("app/a")["requests"], "requests") >= 6),
        "tcp connections not counted: {}",
        proxy.server("app/a")
    );
    proxy.ctl_ok(&["enable", "server", "app/b"]);
    assert!(wait_until(STATE_LIMIT, || tcp_get(&proxy, None) == "b"), "b enabled but gets no connections");
}

#[test]
fn source_ip_hash_pins_tcp_clients() {
    let (a, b, c) = (Backend::start("a"), Backend::start("b"), Backend::start("c"));
    let proxy = tcp_cfg("ip_hash", &[("a", a.addr), ("b", b.addr), ("c", c.addr)]).start();
    let mut distinct = std::collections::BTreeSet::new();
    for n in 2..14u8 {
        let ip = IpAddr::from([127, 0, 0, n]);
        let first = tcp_get(&proxy, Some(ip));
        for _ in 0..3 {
            assert_eq!(tcp_get(&proxy, Some(ip)), first, "client {ip} moved between servers");
        }
        distinct.insert(first);
    }
    assert!(distinct.len() >= 2, "12 client IPs all hashed to one server: {distinct:?}");
}
