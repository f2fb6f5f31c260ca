//! Fake backends: plain std threads on 127.0.0.1:0. `start*` returns only
//! after the listener is bound, so a test can use the address at once.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::wire::{Head, Wire};
use super::ws;

/// How a backend answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Real HTTP/1.1 with the endpoints listed on [`Backend`].
    Normal,
    /// Reads the request, answers bytes that are not HTTP.
    Invalid,
    /// Reads the request, sends half a status line, closes.
    CloseMidHead,
    /// Reads the request, sends a head with Content-Length 1000 and 10 body bytes, closes.
    CloseMidBody,
    /// Reads head and body, closes without answering.
    ReadBodyThenClose,
    /// Reads the request and never answers (until stopped).
    NeverAnswer,
    /// Reads the request, writes these exact bytes, closes.
    Raw(&'static str),
}

/// One request as the backend saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub head: Head,
    /// The decoded body when it was at most 1 MiB, else empty.
    pub body: Vec<u8>,
    pub body_len: u64,
}

impl Recorded {
    pub fn path(&self) -> &str {
        self.head.start_line.split(' ').nth(1).unwrap_or_default()
    }
}

/// Shared between the backend handle and its threads.
#[derive(Default)]
struct Shared {
    conns: AtomicUsize,
    requests: AtomicUsize,
    stopped: AtomicBool,
    log: Mutex<Vec<Recorded>>,
    open: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
}

/// A fake HTTP/1.1 server. In `Mode::Normal` it answers:
/// - `/echo-headers`: the received head verbatim as body;
/// - `/echo-body`: the received (decoded) body;
/// - `/upload`: the number of body bytes received, as decimal text, with
///   `x-pattern-ok: true|false` telling whether they followed [`pattern_byte`];
/// - `/download/N`: N bytes of [`pattern_byte`], generated while sending;
/// - `/trickle/N`: the same, in 32 KiB writes 2 ms apart (a reader that
///   keeps up has to wait for the backend);
/// - `/chunked`: a chunked body (`CHUNKED_BODY`) with a trailer `x-checksum: 42`;
/// - `/status/NNN`: that status (204/304 without body);
/// - `/hop`: a response carrying hop-by-hop fields that must not reach the client;
/// - `/delay/MS`: 200 after waiting MS milliseconds;
/// - `/close-after`: 200 with `connection: close`, then the backend closes;
/// - a request with `Upgrade: websocket`: 101 then a frame echo;
/// - anything else: 200 with body = id.
///
/// Every response carries `x-backend: ID` and `x-path: PATH`.
pub struct Backend {
    pub id: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    listener_fd: i32,
}

pub const CHUNKED_BODY: &str = "hello, chunked world";

/// Byte `i` of every generated upload/download stream.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// A buffer whose length is a multiple of 251, so writing it repeatedly
/// continues the pattern.
pub fn pattern_block() -> Vec<u8> {
    (0..251u64 * 256).map(pattern_byte).collect()
}

impl Backend {
    pub fn start(id: &str) -> Backend {
        Backend::spawn(id, Mode::Normal, Duration::ZERO, "127.0.0.1:0")
    }

    /// A normal backend that waits `delay` before each response.
    pub fn slow(id: &str, delay: Duration) -> Backend {
        Backend::spawn(id, Mode::Normal, delay, "127.0.0.1:0")
    }

    pub fn with_mode(id: &str, mode: Mode) -> Backend {
        Backend::spawn(id, mode, Duration::ZERO, "127.0.0.1:0")
    }

    /// A normal backend on a given address (e.g. a dead backend's old port).
    pub fn start_on(id: &str, addr: SocketAddr) -> Backend {
        Backend::spawn(id, Mode::Normal, Duration::ZERO, &addr.to_string())
    }

    fn spawn(id: &str, mode: Mode, delay: Duration, bind: &str) -> Backend {
        let listener = TcpListener::bind(bind).expect("bind fake backend");
        let addr = listener.local_addr().unwrap();
        let listener_fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let shared = Arc::new(Shared::default());
        let (sh, bid) = (shared.clone(), id.to_string());
        let acceptor = thread::Builder::new()
            .name(format!("backend-{id}"))
            .spawn(move || accept_loop(listener, sh, bid, mode, delay))
            .expect("spawn backend thread");
        Backend { id: id.to_string(), addr, shared, acceptor: Mutex::new(Some(acceptor)), listener_fd }
    }

    /// Connections accepted so far.
    pub fn conns(&self) -> usize {
        self.shared.conns.load(Ordering::SeqCst)
    }

    /// Request heads received so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Every request received so far.
    pub fn log(&self) -> Vec<Recorded> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The most recent request (panics when none arrived).
    pub fn last(&self) -> Recorded {
        self.log().pop().unwrap_or_else(|| panic!("backend {} received no request", self.id))
    }

    /// Closes every open connection (as a backend does at its keep-alive
    /// timeout) and keeps accepting new ones. Returns how many it closed.
    pub fn close_open_conns(&self) -> usize {
        let mut open = self.shared.open.lock().unwrap();
        let n = open.len();
        for (_, s) in open.drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
        n
    }

    /// Simulates a dead backend: closes the listener (new connects are
    /// refused once this returns) and every open connection. Idempotent.
    pub fn stop(&self) {
        let Some(acceptor) = self.acceptor.lock().unwrap().take() else {
            return;
        };
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the blocked accept(2); the acceptor then drops the listener.
        // SAFETY: the fd belongs to the listener the acceptor still owns
        // (it only closes it after this wakes it up).
        unsafe { libc::shutdown(self.listener_fd, libc::SHUT_RDWR) };
        acceptor.join().expect("backend acceptor panicked");
        for (_, s) in self.shared.open.lock().unwrap().drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, id: String, mode: Mode, delay: Duration) {
    loop {
        let Ok((stream, _)) = listener.accept() else {
            break;
        };
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        shared.conns.fetch_add(1, Ordering::SeqCst);
        let key = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            shared.open.lock().unwrap().insert(key, clone);
        }
        let (sh, id) = (shared.clone(), id.clone());
        thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
            let _ = stream.set_nodelay(true);
            let _ = serve(Wire::new(stream), &sh, &id, mode, delay);
            sh.open.lock().unwrap().remove(&key);
        });
    }
}

/// Reads a body per the head's framing, keeping at most 1 MiB of it.
fn read_body(wire: &mut Wire, head: &Head) -> io::Result<(Vec<u8>, u64, bool)> {
    let mut kept = Vec::new();
    let mut len = 0u64;
    let mut pattern_ok = true;
    let mut sink = |b: &[u8]| {
        if pattern_ok {
            pattern_ok = b.iter().enumerate().all(|(i, &byte)| byte == pattern_byte(len + i as u64));
        }
        len += b.len() as u64;
        if kept.len() + b.len() <= 1 << 20 {
            kept.extend_from_slice(b);
        }
    };
    if head.is_chunked() {
        wire.read_chunked_with(&mut sink)?;
    } else if let Some(n) = head.content_length() {
        wire.read_n_with(n, &mut sink)?;
    }
    if len > 1 << 20 {
        kept.clear();
    }
    Ok((kept, len, pattern_ok))
}

fn serve(mut wire: Wire, sh: &Shared, id: &str, mode: Mode, delay: Duration) -> io::Result<()> {
    while let Some(head) = wire.read_head()? {
        sh.requests.fetch_add(1, Ordering::SeqCst);
        let mut parts = head.start_line.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let http10 = head.start_line.ends_with("HTTP/1.0");
        if head.get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            wire.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = read_body(&mut wire, &head);
        let (body, body_len, pattern_ok) = match body {
            Ok(b) => b,
            Err(e) => {
                // Record what arrived, then drop the connection: a broken body
                // is the proxy's fault and the test will see it.
                sh.log.lock().unwrap().push(Recorded { head, body: Vec::new(), body_len: 0 });
                return Err(e);
            }
        };
        sh.log.lock().unwrap().push(Recorded { head: head.clone(), body: body.clone(), body_len });
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        match mode {
            Mode::Normal => {}
            Mode::Invalid => {
                wire.write_all(b"THIS IS NOT HTTP\r\n\r\n")?;
                return Ok(());
            }
            Mode::CloseMidHead => {
                wire.write_all(b"HTTP/1.1 200 O")?;
                return Ok(());
            }
            Mode::CloseMidBody => {
                let msg = format!("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nx-backend: {id}\r\n\r\n0123456789");
                wire.write_all(msg.as_bytes())?;
                return Ok(());
            }
            Mode::ReadBodyThenClose => return Ok(()),
            Mode::Raw(bytes) => {
                wire.write_all(bytes.as_bytes())?;
                return Ok(());
            }
            Mode::NeverAnswer => {
                // Hold the connection until the peer or stop() closes it.
                let _ = wire.stream.set_read_timeout(None);
                let _ = wire.read_to_end_with(&mut |_| {});
                return Ok(());
            }
        }
        if head.has_token("upgrade", "websocket") {
            return ws::serve_echo(wire, &head, id);
        }
        let close = head.has_token("connection", "close") || (http10 && !head.has_token("connection", "keep-alive"));
        let conn_field = if close { "connection: close\r\n" } else { "" };
        let common = format!("x-backend: {id}\r\nx-path: {path}\r\n{conn_field}");
        let is_head = method == "HEAD";
        let simple = |status: &str, body: &[u8], extra: &str| {
            let mut out =
                format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n{common}{extra}\r\n", body.len()).into_bytes();
            if !is_head {
                out.extend_from_slice(body);
            }
            out
        };
        if path == "/echo-headers" {
            wire.write_all(&simple("200 OK", &head.raw, ""))?;
        } else if path == "/echo-body" {
            wire.write_all(&simple("200 OK", &body, ""))?;
        } else if path == "/upload" {
            let extra = format!("x-pattern-ok: {pattern_ok}\r\n");
            wire.write_all(&simple("200 OK", body_len.to_string().as_bytes(), &extra))?;
        } else if let Some((n, pause)) = path
            .strip_prefix("/download/")
            .map(|n| (n, None))
            .or_else(|| path.strip_prefix("/trickle/").map(|n| (n, Some(Duration::from_millis(2)))))
        {
            let n: u64 = n.parse().map_err(|_| super::wire::invalid("bad /download/N or /trickle/N"))?;
            let h = format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n{common}\r\n");
            wire.write_all(h.as_bytes())?;
            if !is_head {
                let block = pattern_block();
                // A trickle writes 32 KiB (a multiple of 251 bytes, so the pattern continues) at a time.
                let step = if pause.is_some() { 251 * 130 } else { block.len() };
                let mut left = n;
                while left > 0 {
                    let take = left.min(step as u64) as usize;
                    wire.write_all(&block[..take])?;
                    left -= take as u64;
                    if let Some(p) = pause {
                        thread::sleep(p);
                    }
                }
            }
        } else if path == "/chunked" {
            let mut out =
                format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n{common}\r\n");
            if !is_head {
                let (a, b) = CHUNKED_BODY.split_at(7);
                out.push_str(&format!("{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n", a.len(), b.len()));
                out.push_str("0\r\nx-checksum: 42\r\n\r\n");
            }
            wire.write_all(out.as_bytes())?;
        } else if let Some(code) = path.strip_prefix("/status/") {
            let code: u16 = code.parse().map_err(|_| super::wire::invalid("bad /status/N"))?;
            let reason = match code {
                204 => "No Content",
                304 => "Not Modified",
                _ => "Whatever",
            };
            let out = if code == 204 || code == 304 {
                // 304 may carry the representation's length; no body follows.
                let cl = if code == 304 { "content-length: 5\r\netag: \"x\"\r\n" } else { "" };
                format!("HTTP/1.1 {code} {reason}\r\n{cl}{common}\r\n").into_bytes()
            } else {
                simple(&format!("{code} {reason}"), id.as_bytes(), "")
            };
            wire.write_all(&out)?;
        } else if let Some(ms) = path.strip_prefix("/delay/") {
            let ms: u64 = ms.parse().map_err(|_| super::wire::invalid("bad /delay/MS"))?;
            thread::sleep(Duration::from_millis(ms));
            wire.write_all(&simple("200 OK", id.as_bytes(), ""))?;
        } else if path == "/close-after" {
            wire.write_all(&simple("200 OK", id.as_bytes(), "connection: close\r\n"))?;
            return Ok(());
        } else if path == "/hop" {
            let extra = "connection: keep-alive, x-backend-secret\r\nx-backend-secret: 1\r\nkeep-alive: timeout=5\r\nx-kept: yes\r\n";
            wire.write_all(&simple("200 OK", id.as_bytes(), extra))?;
        } else {
            wire.write_all(&simple("200 OK", id.as_bytes(), ""))?;
        }
        if close {
            return Ok(());
        }
    }
    Ok(())
}
