//! One active check or agent query against one server, on the health
//! thread's compio runtime. Every probe opens a fresh connection, is bounded
//! as a whole by the check's timeout, and reads a bounded number of bytes, so
//! a slow or hostile backend cannot hold the checker or its memory.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::TcpStream;

use crate::config::{AgentCheckConfig, HealthCheckConfig, HealthCheckKind};
use crate::control::{AgentReport, AgentState};

/// Longest HTTP status line accepted.
const MAX_STATUS_LINE: usize = 1024;
/// Largest HTTP response head read while looking for the body.
const MAX_HTTP_HEAD: usize = 16 * 1024;
/// Body bytes searched for `body_contains`; a match further in is not found.
pub const MAX_HTTP_BODY: usize = 64 * 1024;
/// Longest Redis reply line read.
const MAX_REDIS_LINE: usize = 512;
/// Longest agent line read; words after it are ignored.
pub const MAX_AGENT_LINE: usize = 1024;
/// Longest piece of a backend's reply quoted in a detail string.
const MAX_QUOTED: usize = 80;
/// Read size per receive.
const CHUNK: usize = 4096;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub ok: bool,
    /// One line for the operator: "HTTP 200", "connect: Connection refused",
    /// "timeout after 1s", "+PONG", "pgsql: auth request", …
    pub detail: String,
    /// Wall time from connect to verdict.
    pub duration: Duration,
}

/// Where the active check of a server at `server` connects: the check's
/// `port` override on the server's IP, else the server's own address.
pub fn check_addr(server: SocketAddr, cfg: &HealthCheckConfig) -> SocketAddr {
    match cfg.port {
        Some(port) => SocketAddr::new(server.ip(), port),
        None => server,
    }
}

/// Runs one check of kind `kind` against `addr` (see [`check_addr`]),
/// failing it when it takes longer than `timeout` in total.
pub async fn probe(kind: &HealthCheckKind, addr: SocketAddr, timeout: Duration) -> ProbeOutcome {
    let start = Instant::now();
    let run = async {
        match kind {
            HealthCheckKind::Http { method, path, host, expect_status, body_contains } => {
                let host = host.clone().unwrap_or_else(|| addr.to_string());
                let req =
                    HttpProbe { method, path, host: &host, expect_status, body_contains: body_contains.as_deref() };
                http(addr, req).await
            }
            HealthCheckKind::Tcp => Conn::connect(addr).await.map(|_| (true, "connected".to_owned())),
            HealthCheckKind::Redis => redis(addr).await,
            HealthCheckKind::Pgsql { user, database } => pgsql(addr, user, database.as_deref().unwrap_or(user)).await,
        }
    };
    let (ok, detail) = match compio::time::timeout(timeout, run).await {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(detail)) => (false, detail),
        Err(_) => (false, format!("timeout after {timeout:?}")),
    };
    ProbeOutcome { ok, detail, duration: start.elapsed() }
}

/// A probe's answer: healthy or not, and why.
type Verdict = (bool, String);
/// A probe that could not reach a verdict on the reply (I/O error, garbage):
/// the check failed, for this reason.
type Failed = String;

/// The fields of an HTTP check, borrowed from its config.
struct HttpProbe<'a> {
    method: &'a str,
    path: &'a str,
    host: &'a str,
    expect_status: &'a [(u16, u16)],
    body_contains: Option<&'a str>,
}

/// Sends the request with `Connection: close` (so the body ends at EOF even
/// without framing) and judges the status line and, if asked, the body.
/// The body is searched as raw bytes: a chunked body whose chunk boundary
/// splits the searched text does not match (health endpoints rarely chunk).
async fn http(addr: SocketAddr, p: HttpProbe<'_>) -> Result<Verdict, Failed> {
    let mut conn = Conn::connect(addr).await?;
    let req = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: fastlb-health\r\nConnection: close\r\n\r\n",
        p.method, p.path, p.host
    );
    conn.send(req.into_bytes()).await?;
    let mut buf = Vec::new();
    let line_end = conn.read_until(&mut buf, b"\r\n", MAX_STATUS_LINE, "http").await?;
    let status = parse_status_line(&buf[..line_end])
        .ok_or_else(|| format!("http: bad status line \"{}\"", quote(&buf[..line_end])))?;
    let detail = format!("HTTP {status}");
    if !p.expect_status.iter().any(|&(lo, hi)| (lo..=hi).contains(&status)) {
        return Ok((false, detail));
    }
    let Some(needle) = p.body_contains else { return Ok((true, detail)) };
    let body_start = conn.read_until(&mut buf, b"\r\n\r\n", MAX_HTTP_HEAD, "http").await? + 4;
    loop {
        let body = &buf[body_start..];
        let body = &body[..body.len().min(MAX_HTTP_BODY)];
        if find(body, needle.as_bytes()).is_some() {
            return Ok((true, detail));
        }
        if body.len() >= MAX_HTTP_BODY || conn.recv(&mut buf).await? == 0 {
            return Ok((false, format!("{detail}, body lacks \"{needle}\"")));
        }
    }
}

/// `HTTP/1.x NNN reason` → NNN.
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !code.iter().all(u8::is_ascii_digit) || rest.get(5).is_some_and(|&b| b != b' ') {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Sends `PING` as a RESP array (understood by every Redis since 1.2 and by
/// its forks) and wants `+PONG`. A server that needs AUTH answers `-NOAUTH…`
/// and fails the check: configure a TCP check for those.
async fn redis(addr: SocketAddr) -> Result<Verdict, Failed> {
    let mut conn = Conn::connect(addr).await?;
    conn.send(b"*1\r\n$4\r\nPING\r\n".to_vec()).await?;
    let mut buf = Vec::new();
    let end = conn.read_until(&mut buf, b"\r\n", MAX_REDIS_LINE, "redis").await?;
    let line = &buf[..end];
    Ok((line.starts_with(b"+PONG"), quote(line)))
}

/// Protocol 3.0 in a StartupMessage.
const PG_PROTOCOL_3_0: i32 = 3 << 16;

/// Sends a StartupMessage and judges only the first message back: any valid
/// backend message opening a reply (authentication request, error, notice,
/// protocol negotiation) with a sane length means a live server. An error
/// ("database does not exist", "too many clients") still counts as alive,
/// as documented on [`HealthCheckKind::Pgsql`]. The connection is then
/// dropped before authenticating.
async fn pgsql(addr: SocketAddr, user: &str, database: &str) -> Result<Verdict, Failed> {
    let mut conn = Conn::connect(addr).await?;
    conn.send(pg_startup(user, database)).await?;
    let mut buf = Vec::new();
    while buf.len() < 5 {
        if conn.recv(&mut buf).await? == 0 {
            return Err("pgsql: connection closed without a reply".into());
        }
    }
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    // Length counts itself; an authentication request also carries its type.
    let (min_len, what) = match buf[0] {
        b'R' => (8, "auth request"),
        b'E' => (4, "error"),
        b'N' => (4, "notice"),
        b'v' => (12, "protocol version negotiation"),
        _ => return Ok((false, format!("pgsql: unexpected reply \"{}\"", quote(&buf[..5])))),
    };
    if !(min_len..=64 * 1024).contains(&len) {
        return Ok((false, format!("pgsql: bad {what} length {len}")));
    }
    if buf[0] == b'E' {
        // Quote the server's message when it came in the same segment.
        if let Some(msg) = pg_error_message(&buf[5..buf.len().min(len as usize + 1)]) {
            return Ok((true, format!("pgsql: error: {msg}")));
        }
    }
    Ok((true, format!("pgsql: {what}")))
}

/// Int32 length, Int32 protocol, then `name\0value\0` pairs and a final `\0`.
fn pg_startup(user: &str, database: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&PG_PROTOCOL_3_0.to_be_bytes());
    for (k, v) in [("user", user), ("database", database), ("application_name", "fastlb-health")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// The `M` (message) field of an ErrorResponse body, if complete.
fn pg_error_message(mut fields: &[u8]) -> Option<String> {
    while let Some((&code, rest)) = fields.split_first() {
        if code == 0 {
            return None;
        }
        let end = rest.iter().position(|&b| b == 0)?;
        if code == b'M' {
            return Some(quote(&rest[..end]));
        }
        fields = &rest[end + 1..];
    }
    None
}

/// Queries the agent on `ip:cfg.port`: sends `cfg.send` if set, reads one
/// line (up to [`MAX_AGENT_LINE`] bytes, or until the agent closes) and
/// parses it with [`parse_agent_line`]. `None` when the agent cannot be
/// reached, fails, or does not answer within `cfg.timeout`: an unreachable
/// agent changes nothing (HAProxy behaves the same).
pub async fn agent(ip: IpAddr, cfg: &AgentCheckConfig) -> Option<AgentReport> {
    let addr = SocketAddr::new(ip, cfg.port);
    let run = async {
        let mut conn = Conn::connect(addr).await?;
        if !cfg.send.is_empty() {
            conn.send(cfg.send.as_bytes().to_vec()).await?;
        }
        let mut buf = Vec::new();
        while !buf.contains(&b'\n') && buf.len() < MAX_AGENT_LINE {
            match conn.recv(&mut buf).await {
                Ok(0) => break,
                Ok(_) => {}
                // A reset right after the answer still leaves the answer.
                Err(_) if !buf.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        Ok::<_, Failed>(buf)
    };
    let buf = compio::time::timeout(cfg.timeout, run).await.ok()?.ok()?;
    let line = &buf[..buf.len().min(MAX_AGENT_LINE)];
    Some(parse_agent_line(&String::from_utf8_lossy(line)))
}

/// Parses an agent's line with HAProxy's rules: words separated by spaces,
/// tabs or commas, case-insensitive, in any order, up to the first line end:
/// - `up`; `down`, `fail`, `stopped` (all three mean down, as in HAProxy);
///   `drain`; `maint`; `ready`: the last one wins (what [`AgentReport`] holds).
/// - `N%`: weight relative to the configured one, clamped to 0–256 %.
/// - `#` starts a free-text description (after `down` in HAProxy); ignored.
/// - anything else (`maxconn:N`, unknown words) is ignored, so a garbage
///   line reports nothing.
pub fn parse_agent_line(line: &str) -> AgentReport {
    let line = line.split(['\n', '#']).next().unwrap_or("");
    let mut report = AgentReport::default();
    for word in line.split([' ', '\t', ',', '\r']).filter(|w| !w.is_empty()) {
        let word = word.to_ascii_lowercase();
        let state = match word.as_str() {
            "up" => {
                report.health = Some(true);
                continue;
            }
            "down" | "fail" | "stopped" => {
                report.health = Some(false);
                continue;
            }
            "drain" => AgentState::Drain,
            "maint" => AgentState::Maint,
            "ready" => AgentState::Ready,
            _ => {
                if let Some(pct) = parse_percent(&word) {
                    report.weight_pct = Some(pct);
                }
                continue;
            }
        };
        report.state = Some(state);
    }
    report
}

/// `75%` → 75; values above 256 clamp to 256 (HAProxy's weight ceiling).
fn parse_percent(word: &str) -> Option<u32> {
    let digits = word.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits, so the only parse failure is overflow: clamp that too.
    Some(digits.parse::<u64>().unwrap_or(u64::MAX).min(256) as u32)
}

/// A probe's connection, with its reusable receive buffer.
struct Conn {
    stream: TcpStream,
    chunk: Vec<u8>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Result<Conn, Failed> {
        let stream = TcpStream::connect(addr).await.map_err(|e| io_detail("connect", &e))?;
        Ok(Conn { stream, chunk: Vec::with_capacity(CHUNK) })
    }

    async fn send(&mut self, data: Vec<u8>) -> Result<(), Failed> {
        let BufResult(res, _) = self.stream.write_all(data).await;
        res.map_err(|e| io_detail("send", &e))
    }

    /// Appends what arrives next to `buf`; `Ok(0)` at EOF.
    async fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize, Failed> {
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.clear();
        let BufResult(res, chunk) = self.stream.append(chunk).await;
        self.chunk = chunk;
        let n = res.map_err(|e| io_detail("recv", &e))?;
        buf.extend_from_slice(&self.chunk[..n]);
        Ok(n)
    }

    /// Reads until `buf` contains `delim` within its first `limit` bytes;
    /// returns the delimiter's offset.
    async fn read_until(&mut self, buf: &mut Vec<u8>, delim: &[u8], limit: usize, what: &str) -> Result<usize, Failed> {
        loop {
            if let Some(i) = find(&buf[..buf.len().min(limit)], delim) {
                return Ok(i);
            }
            if buf.len() >= limit {
                return Err(format!("{what}: no end of reply within {limit} bytes"));
            }
            if self.recv(buf).await? == 0 {
                return Err(if buf.is_empty() {
                    format!("{what}: connection closed without a reply")
                } else {
                    format!("{what}: truncated reply \"{}\"", quote(buf))
                });
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `stage: message` without the `(os error N)` suffix std adds.
fn io_detail(stage: &str, e: &io::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" (os error").next().unwrap_or(&msg);
    format!("{stage}: {msg}")
}

/// A backend's bytes, made printable and short enough for one status line.
fn quote(bytes: &[u8]) -> String {
    let short = &bytes[..bytes.len().min(MAX_QUOTED)];
    let mut s = String::with_capacity(short.len());
    for c in String::from_utf8_lossy(short).chars() {
        if c.is_control() {
            s.extend(c.escape_default());
        } else {
            s.push(c);
        }
    }
    if short.len() < bytes.len() {
        s.push('…');
    }
    s
}
