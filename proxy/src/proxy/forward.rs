//! Forwarding one request: choose a server, send the head and body, relay
//! the response; retry on another server when RFC 9110 §9.2.2 allows it.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use compio::io::AsyncWrite;

use super::fixed::Sock;
use super::io::{ReadError, read_at_most, read_some, write_all, write_all_timeout, write2_timeout};
use super::splice::{self, SpliceError};
use super::{ListenerCtx, PoolStrategy, WorkerCtx};
use super::{timer, upstream};
use crate::balance::table::{bump, ms_at, now_ms};
use crate::balance::{self, Pool, Server};
use crate::http::{self, BodyKind, Chunk, ChunkedDecoder, HttpError, Method, RequestHead};
use crate::plugin::StickyDecision;

/// What the connection does after a request.
pub enum After {
    KeepAlive,
    Close,
}

/// Limits on a backend's response head (as strict as for requests).
const RESPONSE_LIMITS: http::Limits = http::Limits { max_head_size: 64 * 1024, max_headers: 128, max_uri_length: 0 };

/// Spare room made before a read of a head or a request body.
const RELAY_READ: usize = 16 * 1024;

/// Spare room made before a read of a response body: large reads mean few
/// operations and few, large segments to the client for big bodies (the
/// relay buffers are this big, so it never grows them).
const BODY_READ: usize = super::RELAY_BUF;

/// A response body with at least this much still to come is spliced
/// (backend → pipe → client, no copy); a smaller rest is cheaper to copy
/// than the pipe's extra system calls.
const SPLICE_MIN: u64 = 16 * 1024;

/// Body bytes read with a response head up to this size are copied behind
/// the rewritten head (one small write); larger ones go out by a vectored
/// write without the copy.
const INLINE_BODY: usize = 4096;

/// Answers with an error status, then closes gracefully: shut down our
/// side and drain what the client still sends for a moment, so the
/// response is not destroyed by a reset.
pub async fn send_error(stream: &Sock, status: u16) {
    let resp = http::error_response(status);
    if write_all_timeout(stream, resp, Duration::from_secs(5)).await.is_err() {
        return;
    }
    let mut s = stream.stream();
    let _ = s.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = BytesMut::with_capacity(4096);
    let mut drained = 0;
    while drained < 256 * 1024 {
        sink.clear();
        match read_some(stream, &mut sink, 4096, deadline).await {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
}

/// The request body still to be forwarded, and how it is framed upstream.
enum ReqBody {
    Done,
    Length(u64),
    Chunked(ChunkedDecoder, Reencoder),
}

impl ReqBody {
    fn new(kind: &BodyKind) -> Self {
        match kind {
            BodyKind::Length(n) if *n > 0 => ReqBody::Length(*n),
            BodyKind::Chunked => ReqBody::Chunked(ChunkedDecoder::new(), Reencoder::default()),
            _ => ReqBody::Done,
        }
    }

    fn done(&self) -> bool {
        matches!(self, ReqBody::Done)
    }

    /// Moves the part of `src` that belongs to this body into `out`, framed
    /// for the backend (chunked bodies are decoded and re-encoded, so only
    /// what our strict decoder understood reaches the backend).
    fn pump(&mut self, src: &mut BytesMut, out: &mut Vec<u8>) -> Result<(), HttpError> {
        match self {
            ReqBody::Done => {}
            ReqBody::Length(rem) => {
                let take = (*rem).min(src.len() as u64) as usize;
                out.extend_from_slice(&src[..take]);
                src.advance(take);
                *rem -= take as u64;
                if *rem == 0 {
                    *self = ReqBody::Done;
                }
            }
            ReqBody::Chunked(dec, enc) => {
                let used = dec.decode(src, &mut |c| enc.push(c, out))?;
                src.advance(used);
                if dec.is_done() {
                    *self = ReqBody::Done;
                }
            }
        }
        Ok(())
    }
}

/// Re-encodes decoded chunked-body events in chunked framing. Keeps, across
/// `decode` calls, whether the last chunk line was written already (the
/// trailers follow it and may arrive in several pieces).
#[derive(Default)]
struct Reencoder {
    last_chunk_written: bool,
}

impl Reencoder {
    fn push(&mut self, c: Chunk<'_>, out: &mut Vec<u8>) {
        match c {
            Chunk::Data(d) if !d.is_empty() => {
                http::write_chunk_header(out, d.len());
                out.extend_from_slice(d);
                out.extend_from_slice(http::CRLF);
            }
            Chunk::Data(_) => {}
            Chunk::Trailers(t) => {
                self.last_chunk(out);
                out.extend_from_slice(t);
            }
            Chunk::End => {
                self.last_chunk(out);
                out.extend_from_slice(http::CRLF);
            }
        }
    }

    fn last_chunk(&mut self, out: &mut Vec<u8>) {
        if !self.last_chunk_written {
            self.last_chunk_written = true;
            out.extend_from_slice(http::CHUNK_LAST);
        }
    }
}

/// Appends one decoded event for an HTTP/1.0 client: data only.
fn dechunk(c: Chunk<'_>, out: &mut Vec<u8>) {
    if let Chunk::Data(d) = c {
        out.extend_from_slice(d);
    }
}

/// Counts a request as in flight on a server for the strategies' sake.
pub(super) struct Active<'a>(&'a Server);

impl<'a> Active<'a> {
    pub(super) fn new(s: &'a Server) -> Self {
        s.stats.live.active.fetch_add(1, Ordering::Relaxed);
        Active(s)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.stats.live.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a response exchange ended.
enum Resp {
    /// Nothing reached the client; answer `status`, or retry when allowed.
    Failed { status: u16, retryable: bool },
    /// The response is complete.
    Done { reuse_upstream: bool, close_client: bool, status: u16 },
    /// The response started but could not finish: close the client.
    Broken,
    /// 101 relayed: tunnel both ways.
    Upgraded,
}

/// What `relay_response` needs to know about the request.
struct ReqInfo {
    method: Method,
    client_minor: u8,
    client_keep: bool,
    upgrade: bool,
}

/// Header and cookie lookups over a parsed head, for strategies.
struct Fields<'a> {
    buf: &'a [u8],
    head: &'a RequestHead,
}

impl balance::RequestFields for Fields<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        http::header(self.buf, &self.head.headers, name)
    }

    fn cookie(&self, name: &str) -> Option<&[u8]> {
        http::cookie(self.buf, &self.head.headers, name)
    }
}

/// Serves one parsed request. `buf` holds the head and whatever followed it.
pub async fn handle(
    ctx: &Rc<WorkerCtx>,
    lctx: &ListenerCtx,
    client: &Sock,
    peer: SocketAddr,
    buf: &mut BytesMut,
    head: &RequestHead,
) -> After {
    let ct = ctx.table();
    // Read only for the access log (a clock read per request otherwise).
    let started = ct.table.config.runtime.access_log.then(Instant::now);
    let lconf = ct.listener(lctx);
    if let Some(path) = &lconf.status_path
        && head.path(buf) == path.as_bytes()
        && matches!(head.body, BodyKind::None)
    {
        let body = super::status::page(ctx, &lconf.pool);
        buf.advance(head.head_len);
        return super::status::respond(client, head, body).await;
    }
    let Some(pi) = ct.table.pool(&lconf.pool) else {
        send_error(client, 503).await;
        return After::Close;
    };
    let pool = &ct.table.pools[pi];
    let pool_strategy = &ct.strategies[pi];
    let strategy = pool_strategy.as_strategy();

    let mut sticky = pool
        .sticky
        .as_ref()
        .and_then(|s| http::cookie(buf, &head.headers, &s.cookie))
        .and_then(|v| balance::sticky_lookup(pool, v));
    let info = ReqInfo {
        method: head.method,
        client_minor: head.minor_version,
        client_keep: head.keep_alive && !ctx.draining.get(),
        upgrade: head.upgrade,
    };
    let expect_continue = head.expect_continue && head.minor_version >= 1;

    let mut out = ctx.take_vec();
    let opts = http::ForwardOpts {
        client_ip: peer.ip(),
        forward_headers: lconf.forward_headers,
        upgrade: head.upgrade,
        default_host: None,
    };
    http::write_request_head(buf, head, &opts, &mut out);
    // The head stays readable (for the strategy's request view) while the
    // buffer moves on to the body: splitting shares the allocation.
    let head_buf = buf.split_to(head.head_len).freeze();
    let fields = Fields { buf: &head_buf, head };
    let view = balance::RequestView {
        method: head.method_range.get(&head_buf),
        client_ip: peer.ip(),
        host: head.host.map(|h| h.get(&head_buf)),
        path: head.path(&head_buf),
        fields: &fields,
    };
    let hash = balance::request_hash(pool, &view);
    // A sticky plugin decides stickiness itself (before the strategy runs).
    let sticky_plugin = match pool_strategy {
        PoolStrategy::Wasm(w) if w.is_sticky(pool) => Some(w),
        _ => None,
    };
    if let Some(w) = sticky_plugin {
        match w.sticky_lookup(pool, Some(&view), hash) {
            StickyDecision::Pin(i) => sticky = Some(i),
            StickyDecision::Hash(h) => sticky = balance::rendezvous(pool, h, ms_at(timer::now())).or(sticky),
            StickyDecision::None => {}
        }
    }
    let mut body = ReqBody::new(&head.body);
    if let Err(e) = body.pump(buf, &mut out) {
        send_error(client, e.status()).await;
        return After::Close;
    }
    // A request whose body is all in `out` can be replayed on another server.
    let replayable = body.done();
    let idempotent = info.method.is_idempotent();

    // Response heads are built here, so `out` keeps the request for a retry.
    let mut scratch = ctx.take_vec();
    let retries = pool.config.retries;
    let mut tried = 0u64;
    let mut attempt = 0u32;
    let mut sent_continue = false;
    // After a reused connection failed: the next attempt opens a new one.
    let mut fresh_only = false;
    loop {
        let Some(choice) =
            balance::choose(strategy, pool, hash, attempt, ms_at(timer::now()), tried, sticky, Some(&view))
        else {
            let status = if attempt == 0 { 503 } else { 502 };
            send_error(client, status).await;
            return After::Close;
        };
        if choice.index < 64 {
            tried |= 1 << choice.index;
        }
        let server = &pool.servers[choice.index];
        let core = server.stats.core(ctx.core);
        let _active = Active::new(server);
        if attempt > 0 {
            bump(&core.retries, 1);
        }
        bump(&core.requests, 1);
        let can_retry = attempt < retries;

        let idle = pool.config.keepalive.idle_timeout;
        let pooled = if fresh_only { None } else { ctx.upstreams.borrow_mut().take(server.addr, idle, !idempotent) };
        let reused = pooled.is_some();
        let up = match pooled {
            Some(up) => up,
            None => match connect_chosen(ctx.core, pool, server).await {
                Some(up) => up,
                None if can_retry => {
                    attempt += 1;
                    continue;
                }
                None => {
                    send_error(client, 502).await;
                    return After::Close;
                }
            },
        };

        // The event loop's clock (read once per turn), as nginx and HAProxy
        // time upstream responses: accurate to a loop turn, which is far
        // below what a response-time strategy tells apart, and two clock
        // reads fewer per request.
        let t0 = timer::now();
        let (res, o) = write_all(&up, std::mem::take(&mut *out)).await;
        *out = o;
        if res.is_err() {
            bump(&core.errors, 1);
            // Nothing of it was processed when a reused connection turns out
            // closed: try again on a new connection, without counting it as
            // a retry. A fresh one that fails is retried only if replayable.
            if reused && replayable {
                fresh_only = true;
                untry(&mut tried, choice.index);
                continue;
            }
            if can_retry && replayable && idempotent {
                attempt += 1;
                continue;
            }
            send_error(client, 502).await;
            return After::Close;
        }
        bump(&core.bytes_in, out.len() as u64);
        if expect_continue && !sent_continue && !body.done() {
            sent_continue = true;
            if write_all(client, &b"HTTP/1.1 100 Continue\r\n\r\n"[..]).await.0.is_err() {
                return After::Close;
            }
        }
        if !body.done() {
            match stream_body(lconf.timeouts.client_body, client, &up, buf, &mut body, &mut out).await {
                Ok(n) => bump(&core.bytes_in, n),
                Err(BodyError::Client) => return After::Close,
                Err(BodyError::Bad(e)) => {
                    send_error(client, e.status()).await;
                    return After::Close;
                }
                Err(BodyError::Upstream) => {
                    bump(&core.errors, 1);
                    send_error(client, 502).await;
                    return After::Close;
                }
            }
        }

        let mut extra = sticky_cookie(pool, server, choice.sticky_hit);
        if let Some(c) = sticky_plugin.and_then(|w| w.on_response(pool, Some(&view), hash, choice.index)) {
            push_set_cookie(&mut extra, &c.name, &c.value, c.max_age.map(u64::from));
        }
        let mut ubuf = ctx.take_buf();
        let resp =
            relay_response(ctx, pool, client, &up, &mut ubuf, &mut scratch, &info, extra.as_bytes(), t0, server).await;
        match resp {
            Resp::Failed { status, retryable } => {
                ctx.give_buf(ubuf);
                bump(&core.errors, 1);
                // A request that reached the backend and got no answer may have
                // been processed: only idempotent ones are replayed. A reused
                // connection closed before any byte of a response came back
                // is the keep-alive race (the backend closed it while idle):
                // once, on a new connection, not counted as a retry.
                if retryable && replayable && idempotent && reused && !fresh_only {
                    fresh_only = true;
                    untry(&mut tried, choice.index);
                    continue;
                }
                if retryable && can_retry && replayable && idempotent {
                    attempt += 1;
                    continue;
                }
                send_error(client, status).await;
                return After::Close;
            }
            Resp::Done { reuse_upstream, close_client, status } => {
                ctx.give_buf(ubuf);
                if let Some(started) = started {
                    access_log(peer, &info, server, status, started);
                }
                if reuse_upstream {
                    ctx.upstreams.borrow_mut().put(server.addr, up, pool.config.keepalive.max_idle);
                }
                return if close_client || !info.client_keep { After::Close } else { After::KeepAlive };
            }
            Resp::Broken => {
                bump(&core.errors, 1);
                return After::Close;
            }
            Resp::Upgraded => {
                if let Some(started) = started {
                    access_log(peer, &info, server, 101, started);
                }
                // Boxed: a tunnel's two relays are the largest state here
                // (1.4 KB), and every request's state would be sized for them.
                let (sent, received) = Box::pin(tunnel(client, &up, buf, ubuf, lconf.timeouts.tunnel)).await;
                bump(&core.bytes_in, sent);
                bump(&core.bytes_out, received);
                return After::Close;
            }
        }
    }
}

/// Makes a server eligible again for the next choice (its failure was the
/// pooled connection's, not the server's).
fn untry(tried: &mut u64, index: usize) {
    if index < 64 {
        *tried &= !(1 << index);
    }
}

fn sticky_cookie(pool: &Pool, server: &Server, hit: bool) -> String {
    let mut c = String::new();
    if let Some(s) = &pool.sticky
        && !hit
    {
        push_set_cookie(&mut c, &s.cookie, &server.cookie, s.max_age.map(|a| a.as_secs()));
    }
    c
}

/// Appends a `Set-Cookie` field line (path `/`, HttpOnly, optional Max-Age).
fn push_set_cookie(out: &mut String, name: &str, value: &str, max_age: Option<u64>) {
    use std::fmt::Write;
    let _ = write!(out, "Set-Cookie: {name}={value}; Path=/; HttpOnly");
    if let Some(age) = max_age {
        let _ = write!(out, "; Max-Age={age}");
    }
    out.push_str("\r\n");
}

/// Opens a new connection to `server`, doing the passive-check bookkeeping:
/// a success resets the failure streak, a failure counts towards `max_fails`.
pub(super) async fn connect_chosen(core_idx: usize, pool: &Pool, server: &Server) -> Option<Sock> {
    let core = server.stats.core(core_idx);
    match upstream::connect(server.addr, pool.config.timeouts.connect).await {
        Ok(up) => {
            bump(&core.conns_opened, 1);
            server.stats.live.consecutive_fails.store(0, Ordering::Relaxed);
            Some(up)
        }
        Err(e) => {
            bump(&core.connect_errors, 1);
            passive_failure(pool, server, &e);
            None
        }
    }
}

/// Connect failure bookkeeping: `consecutive_errors` in a row eject the
/// server (outlier detection).
fn passive_failure(pool: &Pool, server: &Server, err: &std::io::Error) {
    let live = &server.stats.live;
    let fails = live.consecutive_fails.fetch_add(1, Ordering::Relaxed) + 1;
    let limit = pool.config.outlier.consecutive_errors;
    if limit > 0 && fails >= limit {
        live.consecutive_fails.store(0, Ordering::Relaxed);
        eject(pool, server, &format!("{fails} connect errors in a row, last: {err}"));
    }
}

/// Outlier detection on responses: `consecutive_5xx` in a row eject.
fn observe_status(pool: &Pool, server: &Server, status: u16) {
    let live = &server.stats.live;
    let limit = pool.config.outlier.consecutive_5xx;
    if status < 500 || limit == 0 {
        // Only store when needed: the common case reads, not writes, the line.
        if live.consecutive_5xx.load(Ordering::Relaxed) != 0 {
            live.consecutive_5xx.store(0, Ordering::Relaxed);
        }
        return;
    }
    let n = live.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
    if n >= limit {
        live.consecutive_5xx.store(0, Ordering::Relaxed);
        eject(pool, server, &format!("{n} 5xx responses in a row"));
    }
}

/// Takes a server out of rotation for `base_ejection` × (ejections so far),
/// at most `max_ejection`, unless that would put more than
/// `max_ejection_percent` of the pool out at once. Lock-free: the control
/// side's monitor notices the cooldown and records the event.
fn eject(pool: &Pool, server: &Server, why: &str) {
    let o = &pool.config.outlier;
    let now = now_ms();
    let live = &server.stats.live;
    if live.cooldown_until_ms.load(Ordering::Relaxed) > now {
        return;
    }
    let out = pool.servers.iter().filter(|s| s.stats.live.cooldown_until_ms.load(Ordering::Relaxed) > now).count();
    if (out + 1) * 100 > pool.servers.len() * o.max_ejection_percent as usize {
        tracing::debug!(server = %server.key, why, "not ejected: max_ejection_percent reached");
        return;
    }
    let n = live.ejections.fetch_add(1, Ordering::Relaxed) + 1;
    let time = (o.base_ejection * n).min(o.max_ejection);
    live.cooldown_until_ms.store(now + time.as_millis() as u64, Ordering::Relaxed);
    tracing::warn!(server = %server.key, why, ejection = ?time, "server ejected (outlier detection)");
}

enum BodyError {
    Client,
    Upstream,
    Bad(HttpError),
}

/// Streams the rest of the request body from the client to the backend.
/// Returns the bytes written upstream.
async fn stream_body(
    client_body_timeout: Duration,
    client: &Sock,
    up: &Sock,
    buf: &mut BytesMut,
    body: &mut ReqBody,
    out: &mut Vec<u8>,
) -> Result<u64, BodyError> {
    let mut sent = 0u64;
    while !body.done() {
        let deadline = timer::now() + client_body_timeout;
        match read_some(client, buf, RELAY_READ, deadline).await {
            Ok(0) | Err(_) => return Err(BodyError::Client),
            Ok(_) => {}
        }
        out.clear();
        body.pump(buf, out).map_err(BodyError::Bad)?;
        if out.is_empty() {
            continue;
        }
        sent += out.len() as u64;
        let (res, o) = write_all(up, std::mem::take(out)).await;
        *out = o;
        res.map_err(|_| BodyError::Upstream)?;
    }
    Ok(sent)
}

/// Reads the backend's response head (relaying 1xx), writes the response
/// head to the client and streams the body with the right framing.
#[allow(clippy::too_many_arguments)]
async fn relay_response(
    ctx: &WorkerCtx,
    pool: &Pool,
    client: &Sock,
    up: &Sock,
    ubuf: &mut BytesMut,
    out: &mut Vec<u8>,
    req: &ReqInfo,
    extra: &[u8],
    t0: Instant,
    server: &Server,
) -> Resp {
    let core = server.stats.core(ctx.core);
    let timeout = pool.config.timeouts.response;
    let write_timeout = timeout.max(Duration::from_secs(5));
    let mut relayed_1xx = false;
    let limits = RESPONSE_LIMITS;
    let mut rh = loop {
        if !ubuf.is_empty() {
            match http::parse_response(ubuf, &limits, &req.method) {
                Ok(Some(rh)) if (100..200).contains(&rh.status) && rh.status != 101 => {
                    // 100/103 interim responses go to HTTP/1.1 clients only.
                    if req.client_minor >= 1 {
                        out.clear();
                        out.extend_from_slice(&ubuf[..rh.head_len]);
                        if flush(client, out, write_timeout).await.is_none() {
                            return Resp::Broken;
                        }
                        relayed_1xx = true;
                    }
                    ubuf.advance(rh.head_len);
                    continue;
                }
                Ok(Some(rh)) => break rh,
                Ok(None) => {}
                Err(_) => {
                    tracing::debug!(server = %server.key, "invalid response from backend");
                    return if relayed_1xx { Resp::Broken } else { Resp::Failed { status: 502, retryable: false } };
                }
            }
        }
        let had_bytes = !ubuf.is_empty();
        // Bounded, so a large body mostly stays in the socket for `splice`.
        match read_at_most(up, ubuf, RELAY_READ, t0 + timeout).await {
            Ok(n) if n > 0 => {}
            Ok(_) | Err(ReadError::Io(_)) => {
                return if relayed_1xx { Resp::Broken } else { Resp::Failed { status: 502, retryable: !had_bytes } };
            }
            Err(ReadError::TimedOut) => {
                return if relayed_1xx { Resp::Broken } else { Resp::Failed { status: 504, retryable: false } };
            }
        }
    };
    server.stats.record_latency(timer::now().saturating_duration_since(t0).as_micros() as u64);
    observe_status(pool, server, rh.status);
    let class = (rh.status / 100).clamp(1, 5) as usize - 1;
    bump(&core.responses[class], 1);

    if rh.status == 101 {
        if !req.upgrade {
            return Resp::Failed { status: 502, retryable: false };
        }
        out.clear();
        http::write_response_head(ubuf, &rh, &http::ResponseOpts { client_minor: 1, close: false, extra }, out);
        ubuf.advance(rh.head_len);
        return if flush(client, out, write_timeout).await.is_some() { Resp::Upgraded } else { Resp::Broken };
    }

    let dechunk_for_10 = req.client_minor == 0 && matches!(rh.body, BodyKind::Chunked);
    let close_client = !req.client_keep || matches!(rh.body, BodyKind::CloseDelimited) || dechunk_for_10;
    out.clear();
    // A head that needs no rewriting (the usual response to a keep-alive
    // HTTP/1.1 client) stays in the read buffer and leaves with the body
    // bytes read with it, in one send from that buffer.
    let verbatim = rh.verbatim
        && req.client_minor == 1
        && !close_client
        && extra.is_empty()
        && matches!(rh.body, BodyKind::Length(_));
    let kept_head = if verbatim {
        rh.head_len
    } else {
        http::write_response_head(
            ubuf,
            &rh,
            &http::ResponseOpts { client_minor: req.client_minor, close: close_client, extra },
            out,
        );
        ubuf.advance(rh.head_len);
        0
    };
    // The field lines are not looked at again (see `http::recycle_headers`).
    http::recycle_headers(std::mem::take(&mut rh.headers));
    let mut reuse = rh.keep_alive;
    let mut relayed = 0u64;

    match rh.body {
        BodyKind::None => {
            if !ubuf.is_empty() {
                reuse = false;
            }
        }
        BodyKind::Length(n) => {
            let mut rem = n;
            let read = ubuf.len() - kept_head;
            let take = rem.min(read as u64) as usize;
            rem -= take as u64;
            if read > take {
                // More than the body: the backend is broken, drop the excess
                // and the connection.
                reuse = false;
                ubuf.truncate(kept_head + take);
            }
            if verbatim {
                match flush(client, ubuf, write_timeout).await {
                    Some(n) => relayed += n,
                    None => return Resp::Broken,
                }
            } else if take <= INLINE_BODY {
                out.extend_from_slice(ubuf);
                ubuf.clear();
            } else {
                // The head and the body bytes read with it leave in one
                // vectored write, the body straight from the read buffer.
                relayed += (out.len() + take) as u64;
                match write2_timeout(client, std::mem::take(out), std::mem::take(ubuf), write_timeout).await {
                    Ok((o, b)) => {
                        *out = o;
                        *ubuf = b;
                    }
                    Err(_) => return Resp::Broken,
                }
                out.clear();
                ubuf.clear();
            }
            if rem >= SPLICE_MIN
                && let Some(pipe) = ctx.take_pipe()
            {
                match flush(client, out, write_timeout).await {
                    Some(n) => relayed += n,
                    None => return Resp::Broken,
                }
                match splice::relay(&pipe, up, client, rem, timeout, write_timeout).await {
                    Ok(()) => {
                        ctx.give_pipe(pipe);
                        relayed += rem;
                        rem = 0;
                    }
                    // Nothing moved: copy instead (the pipe is still empty).
                    Err(SpliceError::Unsupported) => ctx.give_pipe(pipe),
                    Err(_) => return Resp::Broken,
                }
            }
            while rem > 0 {
                // Flush what is pending, then relay straight from the read buffer.
                match flush(client, out, write_timeout).await {
                    Some(n) => relayed += n,
                    None => return Resp::Broken,
                }
                ubuf.clear();
                if !read_body(up, ubuf, timeout).await {
                    return Resp::Broken;
                }
                let take = rem.min(ubuf.len() as u64) as usize;
                if ubuf.len() > take {
                    reuse = false;
                    ubuf.truncate(take);
                }
                rem -= take as u64;
                match flush(client, ubuf, write_timeout).await {
                    Some(n) => relayed += n,
                    None => return Resp::Broken,
                }
            }
        }
        BodyKind::Chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut enc = Reencoder::default();
            loop {
                let res = if dechunk_for_10 {
                    dec.decode(ubuf, &mut |c| dechunk(c, out))
                } else {
                    dec.decode(ubuf, &mut |c| enc.push(c, out))
                };
                let used = match res {
                    Ok(used) => used,
                    Err(_) => return Resp::Broken,
                };
                ubuf.advance(used);
                if dec.is_done() {
                    if !ubuf.is_empty() {
                        reuse = false;
                    }
                    break;
                }
                match flush(client, out, write_timeout).await {
                    Some(n) => relayed += n,
                    None => return Resp::Broken,
                }
                if !read_body(up, ubuf, timeout).await {
                    return Resp::Broken;
                }
            }
        }
        BodyKind::CloseDelimited => {
            // Ends when the backend closes: relay straight from the read buffer.
            reuse = false;
            loop {
                match flush(client, out, write_timeout).await {
                    Some(n) => relayed += n,
                    None => return Resp::Broken,
                }
                match flush(client, ubuf, write_timeout).await {
                    Some(n) => relayed += n,
                    None => return Resp::Broken,
                }
                match read_some(up, ubuf, RELAY_READ, timer::now() + timeout).await {
                    Ok(n) if n > 0 => {}
                    Ok(_) => break,
                    Err(_) => return Resp::Broken,
                }
            }
        }
    }
    match flush(client, out, write_timeout).await {
        Some(n) => relayed += n,
        None => return Resp::Broken,
    }
    bump(&core.bytes_out, relayed);
    Resp::Done { reuse_upstream: reuse, close_client, status: rh.status }
}

/// Writes `out` (a built head and body bytes, or the upstream read buffer
/// relayed as it is) to the client if anything is pending, and leaves it
/// empty for reuse. Returns the bytes written, `None` when the client is
/// gone or stalled past `timeout` (the response is then broken).
async fn flush<B: Pending>(client: &Sock, out: &mut B, timeout: Duration) -> Option<u64> {
    if out.buf_len() == 0 {
        return Some(0);
    }
    let n = out.buf_len() as u64;
    let mut o = write_all_timeout(client, std::mem::take(out), timeout).await.ok()?;
    o.empty();
    *out = o;
    Some(n)
}

/// A buffer [`flush`] sends and hands back emptied.
trait Pending: compio::buf::IoBuf + Default {
    fn empty(&mut self);
}

impl Pending for Vec<u8> {
    fn empty(&mut self) {
        self.clear();
    }
}

impl Pending for BytesMut {
    fn empty(&mut self) {
        self.clear();
    }
}

/// Reads more of a response body from the backend; false at EOF, on error
/// or when it stays silent past `timeout` (the body is then cut short).
async fn read_body(up: &Sock, ubuf: &mut BytesMut, timeout: Duration) -> bool {
    matches!(read_some(up, ubuf, BODY_READ, timer::now() + timeout).await, Ok(n) if n > 0)
}

/// Relays bytes both ways (after a 101, or for a `mode = "tcp"`
/// connection). When one side finishes sending, the other side's write half
/// is shut down (half-close passed on), and the tunnel ends when both
/// directions have, or when neither direction moved a byte for `idle`.
pub(super) async fn tunnel(
    client: &Sock,
    up: &Sock,
    client_rest: &mut BytesMut,
    up_rest: BytesMut,
    idle: Duration,
) -> (u64, u64) {
    // Both directions run in this one task, so a plain Cell is enough.
    let last = std::cell::Cell::new(Instant::now());
    let first = std::mem::take(client_rest);
    futures_util::future::join(relay(client, up, first, &last, idle), relay(up, client, up_rest, &last, idle)).await
}

/// One direction of a tunnel: `from` → `to`, starting with `pending`.
/// Returns the bytes relayed.
async fn relay(from: &Sock, to: &Sock, pending: BytesMut, last: &std::cell::Cell<Instant>, idle: Duration) -> u64 {
    let mut b = pending;
    let mut moved = 0u64;
    loop {
        if !b.is_empty() {
            let (res, back) = write_all(to, b).await;
            if res.is_err() {
                return moved;
            }
            moved += back.len() as u64;
            last.set(Instant::now());
            b = back;
            b.clear();
        }
        match read_some(from, &mut b, RELAY_READ, last.get() + idle).await {
            Ok(n) if n > 0 => last.set(Instant::now()),
            // The other direction kept the tunnel alive: wait again (the
            // timed-out read took the buffer with it).
            Err(ReadError::TimedOut) if last.get() + idle > Instant::now() => b = BytesMut::new(),
            _ => {
                let mut t = to.stream();
                let _ = t.shutdown().await;
                return moved;
            }
        }
    }
}

/// One line per request, when `access_log` is on (the caller checks).
fn access_log(peer: SocketAddr, info: &ReqInfo, server: &Server, status: u16, started: Instant) {
    tracing::info!(
        target: "fastlb::access",
        client = %peer,
        method = ?info.method,
        server = %server.key,
        status,
        us = started.elapsed().as_micros() as u64,
        "request"
    );
}
