//! Probes and the checker against tiny real servers on 127.0.0.1:0, each
//! served by a std thread (never by the runtime under test).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_channel::oneshot;

use super::probe::{MAX_HTTP_BODY, agent, check_addr, parse_agent_line, probe};
use super::spawn_checker;
use crate::balance::AdminState;
use crate::balance::Table;
use crate::balance::table::ServerOverlay;
use crate::config::{
    AdminConfig, AgentCheckConfig, Config, HealthCheckConfig, HealthCheckKind, PoolConfig, RuntimeConfig, ServerConfig,
};
use crate::control::{AgentReport, AgentState, HealthSink};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const SECOND: Duration = Duration::from_secs(1);

fn block_on<F: Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().expect("compio runtime").block_on(f)
}

/// Serves every connection on its own thread with `handle`.
fn serve(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handle = Arc::clone(&handle);
            std::thread::spawn(move || handle(stream));
        }
    });
    addr
}

/// Reads until `end` has arrived (or EOF), returning what was read.
fn read_until(stream: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(end.len()).any(|w| w == end) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// An HTTP server answering every request with `status` and `body`.
fn http_server(status: u16, body: &'static str) -> SocketAddr {
    serve(move |mut s| {
        read_until(&mut s, b"\r\n\r\n");
        let _ = write!(s, "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    })
}

/// A server that reads the request (one segment), answers `reply` and
/// closes. Reading first makes the close a FIN, not a reset.
fn reply_server(reply: &'static [u8]) -> SocketAddr {
    serve(move |mut s| {
        let _ = s.read(&mut [0u8; 4096]);
        let _ = s.write_all(reply);
    })
}

/// A server that writes `banner` as soon as a client connects, then closes
/// (how agents answer).
fn banner_server(banner: &'static [u8]) -> SocketAddr {
    serve(move |mut s| {
        let _ = s.write_all(banner);
    })
}

/// A port nobody listens on (bound, then released).
fn closed_port() -> SocketAddr {
    TcpListener::bind((LOCALHOST, 0)).unwrap().local_addr().unwrap()
}

/// Accepts and holds connections without ever answering.
fn silent_server() -> SocketAddr {
    serve(|mut s| {
        let mut buf = [0u8; 1024];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    })
}

fn http_kind(body_contains: Option<&str>) -> HealthCheckKind {
    HealthCheckKind::Http {
        method: "GET".into(),
        path: "/health".into(),
        host: None,
        expect_status: vec![(200, 399)],
        body_contains: body_contains.map(Into::into),
    }
}

#[test]
fn http_200_is_ok() {
    let addr = http_server(200, "fine");
    let out = block_on(probe(&http_kind(None), addr, SECOND));
    assert!(out.ok, "{out:?}");
    assert_eq!(out.detail, "HTTP 200");
    assert!(out.duration < SECOND);
}

#[test]
fn http_503_is_not_ok() {
    let addr = http_server(503, "");
    let out = block_on(probe(&http_kind(None), addr, SECOND));
    assert!(!out.ok);
    assert_eq!(out.detail, "HTTP 503");
}

#[test]
fn http_expect_status_ranges_are_inclusive() {
    let addr = http_server(503, "");
    let mut kind = http_kind(None);
    if let HealthCheckKind::Http { expect_status, .. } = &mut kind {
        *expect_status = vec![(200, 200), (500, 503)];
    }
    assert!(block_on(probe(&kind, addr, SECOND)).ok);
}

#[test]
fn http_body_contains() {
    let addr = http_server(200, "status: all good\n");
    let found = block_on(probe(&http_kind(Some("all good")), addr, SECOND));
    assert!(found.ok, "{found:?}");
    let missing = block_on(probe(&http_kind(Some("degraded")), addr, SECOND));
    assert!(!missing.ok);
    assert_eq!(missing.detail, "HTTP 200, body lacks \"degraded\"");
}

#[test]
fn http_body_search_is_bounded() {
    // The text sits past the first 64 KiB of an endless body: not found, and
    // the probe ends without reading the rest.
    let addr = serve(|mut s| {
        read_until(&mut s, b"\r\n\r\n");
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
        let _ = s.write_all(&vec![b'x'; MAX_HTTP_BODY]);
        while s.write_all(b"needle").is_ok() {}
    });
    let out = block_on(probe(&http_kind(Some("needle")), addr, 5 * SECOND));
    assert!(!out.ok, "{out:?}");
    assert!(out.detail.contains("body lacks"), "{out:?}");
}

#[test]
fn http_sends_the_configured_request() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let addr = serve(move |mut s| {
        let head = read_until(&mut s, b"\r\n\r\n");
        let _ = tx.lock().unwrap().send(String::from_utf8_lossy(&head).into_owned());
        let _ = s.write_all(b"HTTP/1.0 204 No Content\r\n\r\n");
    });
    let kind = HealthCheckKind::Http {
        method: "HEAD".into(),
        path: "/ready?deep=1".into(),
        host: Some("api.internal".into()),
        expect_status: vec![(204, 204)],
        body_contains: None,
    };
    let out = block_on(probe(&kind, addr, SECOND));
    assert!(out.ok, "{out:?}");
    let head = rx.recv_timeout(SECOND).unwrap();
    assert_eq!(
        head,
        "HEAD /ready?deep=1 HTTP/1.1\r\nHost: api.internal\r\nUser-Agent: fastlb-health\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn http_garbage_and_early_close_fail() {
    let garbage = block_on(probe(&http_kind(None), reply_server(b"SSH-2.0-OpenSSH\r\n"), SECOND));
    assert!(!garbage.ok);
    assert!(garbage.detail.starts_with("http: bad status line"), "{garbage:?}");
    let closed = block_on(probe(&http_kind(None), reply_server(b""), SECOND));
    assert!(!closed.ok);
    assert_eq!(closed.detail, "http: connection closed without a reply");
}

#[test]
fn connect_refused_is_not_ok() {
    for kind in [http_kind(None), HealthCheckKind::Tcp, HealthCheckKind::Redis] {
        let out = block_on(probe(&kind, closed_port(), SECOND));
        assert!(!out.ok);
        assert_eq!(out.detail, "connect: Connection refused");
    }
}

#[test]
fn silent_server_times_out() {
    let addr = silent_server();
    let timeout = Duration::from_millis(200);
    for kind in [http_kind(None), HealthCheckKind::Redis] {
        let out = block_on(probe(&kind, addr, timeout));
        assert!(!out.ok);
        assert_eq!(out.detail, "timeout after 200ms");
        assert!(out.duration >= timeout && out.duration < 5 * timeout, "{out:?}");
    }
}

#[test]
fn tcp_connect_is_ok() {
    let out = block_on(probe(&HealthCheckKind::Tcp, silent_server(), SECOND));
    assert!(out.ok);
    assert_eq!(out.detail, "connected");
}

#[test]
fn port_override_replaces_the_server_port() {
    let mut cfg = health_cfg(HealthCheckKind::Tcp, Duration::from_secs(1));
    let server: SocketAddr = "10.0.0.1:80".parse().unwrap();
    assert_eq!(check_addr(server, &cfg), server);
    cfg.port = Some(8081);
    assert_eq!(check_addr(server, &cfg), "10.0.0.1:8081".parse().unwrap());
}

#[test]
fn redis_pong_is_ok_and_error_is_not() {
    let ping = serve(|mut s| {
        let req = read_until(&mut s, b"PING\r\n");
        let reply: &[u8] = if req == b"*1\r\n$4\r\nPING\r\n" { b"+PONG\r\n" } else { b"-ERR bad ping\r\n" };
        let _ = s.write_all(reply);
    });
    let out = block_on(probe(&HealthCheckKind::Redis, ping, SECOND));
    assert!(out.ok, "{out:?}");
    assert_eq!(out.detail, "+PONG");

    let err = reply_server(b"-NOAUTH Authentication required.\r\n");
    let out = block_on(probe(&HealthCheckKind::Redis, err, SECOND));
    assert!(!out.ok);
    assert_eq!(out.detail, "-NOAUTH Authentication required.");
}

/// A fake PostgreSQL server: checks the StartupMessage, answers `reply`.
fn pgsql_server(reply: &'static [u8]) -> SocketAddr {
    serve(move |mut s| {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        let expected_params: &[u8] = b"user\0fastlb\0database\0app\0application_name\0fastlb-health\0\0";
        if body[..4] != [0, 3, 0, 0] || &body[4..] != expected_params {
            return;
        }
        let _ = s.write_all(reply);
        // Keep the connection as a server waiting for the password would.
        read_until(&mut s, b"never");
    })
}

fn pgsql_kind() -> HealthCheckKind {
    HealthCheckKind::Pgsql { user: "fastlb".into(), database: Some("app".into()) }
}

#[test]
fn pgsql_auth_request_is_ok() {
    // AuthenticationMD5Password: 'R', length 12, type 5, 4-byte salt.
    let addr = pgsql_server(b"R\0\0\0\x0c\0\0\0\x05salt");
    let out = block_on(probe(&pgsql_kind(), addr, SECOND));
    assert!(out.ok, "{out:?}");
    assert_eq!(out.detail, "pgsql: auth request");
}

#[test]
fn pgsql_error_is_alive_and_quoted() {
    let addr = pgsql_server(b"E\0\0\0\x2bSFATAL\0C3D000\0Mdatabase \"app\" missing\0\0");
    let out = block_on(probe(&pgsql_kind(), addr, SECOND));
    assert!(out.ok, "{out:?}");
    assert_eq!(out.detail, "pgsql: error: database \"app\" missing");
}

#[test]
fn pgsql_garbage_is_not_ok() {
    let http = block_on(probe(&pgsql_kind(), reply_server(b"HTTP/1.1 400 Bad Request\r\n\r\n"), SECOND));
    assert!(!http.ok);
    assert!(http.detail.starts_with("pgsql: unexpected reply"), "{http:?}");
    // Right type, absurd length (e.g. a protocol-2 server's text error).
    let long = block_on(probe(&pgsql_kind(), reply_server(b"EFATAL: bad"), SECOND));
    assert!(!long.ok);
    assert!(long.detail.starts_with("pgsql: bad error length"), "{long:?}");
    let closed = block_on(probe(&pgsql_kind(), reply_server(b""), SECOND));
    assert!(!closed.ok);
    assert_eq!(closed.detail, "pgsql: connection closed without a reply");
}

fn agent_cfg(port: u16) -> AgentCheckConfig {
    AgentCheckConfig { port, interval: Duration::from_millis(50), timeout: SECOND, send: String::new() }
}

fn ask_agent(reply: &'static [u8]) -> Option<AgentReport> {
    let addr = banner_server(reply);
    block_on(agent(addr.ip(), &agent_cfg(addr.port())))
}

fn report(state: Option<AgentState>, weight_pct: Option<u32>) -> Option<AgentReport> {
    Some(AgentReport { health: None, state, weight_pct })
}

fn health(up: bool, state: Option<AgentState>, weight_pct: Option<u32>) -> Option<AgentReport> {
    Some(AgentReport { health: Some(up), state, weight_pct })
}

#[test]
fn agent_lines_over_tcp() {
    assert_eq!(ask_agent(b"up 75%\n"), health(true, None, Some(75)));
    assert_eq!(ask_agent(b"drain\r\n"), report(Some(AgentState::Drain), None));
    assert_eq!(ask_agent(b"MAINT"), report(Some(AgentState::Maint), None));
    assert_eq!(ask_agent(b"ready\n"), report(Some(AgentState::Ready), None));
    assert_eq!(ask_agent(b"down\n"), health(false, None, None));
    assert_eq!(ask_agent(b"50%\n"), report(None, Some(50)));
    assert_eq!(ask_agent(b"\x00\xffhello world\n"), report(None, None));
    assert_eq!(ask_agent(b""), report(None, None));
}

#[test]
fn agent_unreachable_or_silent_is_none() {
    let closed = closed_port();
    assert_eq!(block_on(agent(closed.ip(), &agent_cfg(closed.port()))), None);
    let silent = silent_server();
    let mut cfg = agent_cfg(silent.port());
    cfg.timeout = Duration::from_millis(100);
    assert_eq!(block_on(agent(silent.ip(), &cfg)), None);
}

#[test]
fn agent_sends_its_request_first() {
    let addr = serve(|mut s| {
        let req = read_until(&mut s, b"\n");
        let _ = s.write_all(if req == b"status\n" { b"up 30%\n" } else { b"down\n" });
    });
    let mut cfg = agent_cfg(addr.port());
    cfg.send = "status\n".into();
    assert_eq!(block_on(agent(addr.ip(), &cfg)), health(true, None, Some(30)));
}

#[test]
fn agent_line_parsing() {
    let parse = |s: &str| Some(parse_agent_line(s));
    assert_eq!(parse("Up,Ready\t80%"), health(true, Some(AgentState::Ready), Some(80)));
    assert_eq!(parse("stopped"), health(false, None, None));
    assert_eq!(parse("fail # disk full, drain me"), health(false, None, None));
    assert_eq!(parse("300%"), report(None, Some(256)));
    assert_eq!(parse("99999999999999999999999%"), report(None, Some(256)));
    assert_eq!(parse("0%"), report(None, Some(0)));
    assert_eq!(parse("-5% 1.5% %"), report(None, None));
    assert_eq!(parse("maxconn:30 up"), health(true, None, None));
    assert_eq!(parse("up\ndown"), health(true, None, None));
    assert_eq!(parse("down drain"), health(false, Some(AgentState::Drain), None));
    assert_eq!(parse(""), report(None, None));
}

// ---- the checker thread ----

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Check { key: String, ok: bool, detail: String },
    Changed { key: String, up: bool, reason: String },
    Agent { key: String, report: AgentReport },
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl HealthSink for Recorder {
    fn check_result(&self, key: &str, ok: bool, detail: &str, _duration: Duration) {
        self.0.lock().unwrap().push(Seen::Check { key: key.into(), ok, detail: detail.into() });
    }
    fn health_changed(&self, key: &str, up: bool, reason: &str) {
        self.0.lock().unwrap().push(Seen::Changed { key: key.into(), up, reason: reason.into() });
    }
    fn agent_report(&self, key: &str, report: AgentReport) {
        self.0.lock().unwrap().push(Seen::Agent { key: key.into(), report });
    }
}

impl Recorder {
    fn events(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    fn changes(&self) -> Vec<(String, bool, String)> {
        let events = self.events();
        let changes = events.into_iter().filter_map(|e| match e {
            Seen::Changed { key, up, reason } => Some((key, up, reason)),
            _ => None,
        });
        changes.collect()
    }

    fn checks_of(&self, server: &str) -> usize {
        self.events().iter().filter(|e| matches!(e, Seen::Check { key, .. } if key == server)).count()
    }

    /// Polls (bounded) until `cond` holds.
    fn wait_for(&self, what: &str, cond: impl Fn(&Recorder) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}; saw {:#?}", self.events());
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn health_cfg(kind: HealthCheckKind, interval: Duration) -> HealthCheckConfig {
    HealthCheckConfig { kind, interval, fastinterval: interval, timeout: SECOND, fall: 2, rise: 1, port: None }
}

fn config(pools: Vec<PoolConfig>) -> Config {
    Config {
        runtime: RuntimeConfig::default(),
        admin: AdminConfig::default(),
        listeners: Vec::new(),
        pools,
        plugins: Default::default(),
    }
}

/// A running checker, stopped (and its prompt exit checked) on drop.
struct Harness {
    table: Arc<ArcSwap<Table>>,
    sink: Arc<Recorder>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Harness {
    fn start(table: Table) -> Harness {
        let table = Arc::new(ArcSwap::from_pointee(table));
        let sink = Arc::new(Recorder::default());
        let (stop, stop_rx) = oneshot::channel();
        let thread = spawn_checker(Arc::clone(&table), sink.clone(), stop_rx).expect("health thread");
        assert_eq!(thread.thread().name(), Some("fastlb-health"));
        Harness { table, sink, stop: Some(stop), thread: Some(thread) }
    }

    fn swap(&self, config: &Config, generation: u64) {
        let next = Table::build(config, 1, Some(&self.table.load()), generation);
        self.table.store(Arc::new(next));
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let Some(thread) = self.thread.take() else { return };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !thread.is_finished() {
            assert!(Instant::now() < deadline, "health thread did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
        thread.join().expect("health thread panicked");
    }
}

#[test]
fn checker_reports_down_then_up() {
    let status = Arc::new(AtomicU16::new(200));
    let backend = {
        let status = Arc::clone(&status);
        serve(move |mut s| {
            read_until(&mut s, b"\r\n\r\n");
            let _ = write!(s, "HTTP/1.1 {} X\r\nContent-Length: 0\r\n\r\n", status.load(Ordering::SeqCst));
        })
    };
    let mut pool = PoolConfig::new("web", vec![ServerConfig::new("a", backend)]);
    pool.health = Some(health_cfg(http_kind(None), Duration::from_millis(50)));
    let h = Harness::start(Table::build(&config(vec![pool]), 1, None, 1));

    h.sink.wait_for("two good checks", |r| r.checks_of("web/a") >= 2);
    assert!(h.sink.changes().is_empty(), "a healthy server starts up and stays up");
    status.store(503, Ordering::SeqCst);
    h.sink.wait_for("down", |r| !r.changes().is_empty());
    assert_eq!(h.sink.changes(), [("web/a".into(), false, "http check: HTTP 503 (2 failures)".into())]);
    status.store(200, Ordering::SeqCst);
    h.sink.wait_for("up", |r| r.changes().len() >= 2);
    assert_eq!(h.sink.changes()[1], ("web/a".into(), true, "http check: HTTP 200 (1 success)".into()));
    let last_check = h.sink.events().into_iter().rfind(|e| matches!(e, Seen::Check { .. }));
    assert_eq!(last_check, Some(Seen::Check { key: "web/a".into(), ok: true, detail: "HTTP 200".into() }));
}

#[test]
fn checker_follows_table_swaps() {
    let healthy = serve(|_| {});
    let dead = closed_port();
    let check = health_cfg(HealthCheckKind::Tcp, Duration::from_millis(20));
    let pool = |servers: Vec<ServerConfig>| {
        let mut p = PoolConfig::new("p", servers);
        p.health = Some(check.clone());
        p
    };
    let a = ServerConfig::new("a", dead);
    let b = ServerConfig::new("b", healthy);
    let h = Harness::start(Table::build(&config(vec![pool(vec![a.clone()])]), 1, None, 1));
    h.sink.wait_for("a down", |r| r.changes().len() == 1);

    // A new server gets checked; `a` keeps its state (no second "down").
    h.swap(&config(vec![pool(vec![a.clone(), b.clone()])]), 2);
    h.sink.wait_for("b checked", |r| r.checks_of("p/b") >= 5);
    assert_eq!(h.sink.changes(), [("p/a".into(), false, "tcp check: connect: Connection refused (2 failures)".into())]);

    // A removed server is no longer checked.
    h.swap(&config(vec![pool(vec![b.clone()])]), 3);
    let b_now = h.sink.checks_of("p/b");
    // Twice the reconcile period's worth of b checks: the swap has been seen.
    h.sink.wait_for("swap seen", |r| r.checks_of("p/b") >= b_now + 20);
    let a_then = h.sink.checks_of("p/a");
    h.sink.wait_for("more b checks", |r| r.checks_of("p/b") >= b_now + 30);
    assert_eq!(h.sink.checks_of("p/a"), a_then, "p/a is still being checked after removal");

    // A pool without checks has no tasks at all.
    h.swap(&config(vec![PoolConfig::new("p", vec![b])]), 4);
    let b_now = h.sink.checks_of("p/b");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = h.sink.checks_of("p/b");
        std::thread::sleep(super::checker::RECONCILE_EVERY * 2);
        if h.sink.checks_of("p/b") == before {
            break;
        }
        assert!(Instant::now() < deadline, "p/b still checked without [pool.health]");
    }
    assert!(h.sink.checks_of("p/b") >= b_now);
}

#[test]
fn checker_seeds_state_from_a_down_server() {
    // The control side had marked the server down (e.g. before a reload
    // changed its check): a recovered server must be reported up.
    // In a fail-open pool in panic mode the table clears the down flags; the
    // server must still be reported up.
    let mut pool = PoolConfig::new("p", vec![ServerConfig::new("a", serve(|_| {}))]);
    pool.health = Some(health_cfg(HealthCheckKind::Tcp, Duration::from_millis(20)));
    let mut panicking = pool.clone();
    panicking.name = "q".into();
    panicking.fail_open = true;
    let down = ServerOverlay { state: AdminState::Up, weight: 1, configured_weight: 1, down: true };
    let table = Table::build_with(&config(vec![pool, panicking]), 1, None, 1, &|_| Some(down));
    assert!(table.pools[1].panic && !table.pools[1].servers[0].down);
    let h = Harness::start(table);
    h.sink.wait_for("both up", |r| r.changes().len() >= 2);
    let mut changes = h.sink.changes();
    changes.sort();
    let reason = "tcp check: connected (1 success)".to_owned();
    assert_eq!(changes, [("p/a".into(), true, reason.clone()), ("q/a".into(), true, reason)]);
}

#[test]
fn checker_reports_agent_answers() {
    let agent_addr = banner_server(b"drain 40%\n");
    let mut pool = PoolConfig::new("p", vec![ServerConfig::new("a", "127.0.0.1:1".parse().unwrap())]);
    pool.agent = Some(agent_cfg(agent_addr.port()));
    let h = Harness::start(Table::build(&config(vec![pool]), 1, None, 1));
    h.sink.wait_for("two agent reports", |r| r.events().len() >= 2);
    let expected = Seen::Agent {
        key: "p/a".into(),
        report: AgentReport { health: None, state: Some(AgentState::Drain), weight_pct: Some(40) },
    };
    assert!(h.sink.events().iter().all(|e| *e == expected), "{:?}", h.sink.events());
}

#[test]
fn checker_stops_promptly_with_checks_in_flight() {
    // Checks stuck on a silent server with a long timeout must not delay stop.
    let mut pool = PoolConfig::new("p", vec![ServerConfig::new("a", silent_server())]);
    let mut check = health_cfg(http_kind(None), Duration::from_millis(10));
    check.timeout = Duration::from_secs(60);
    pool.health = Some(check);
    let h = Harness::start(Table::build(&config(vec![pool]), 1, None, 1));
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    drop(h);
    assert!(started.elapsed() < Duration::from_secs(2));
}
