//! One client connection: read a head, hand it to `forward`, repeat while
//! the connection is kept alive. Pipelined requests are served in order
//! because bytes after one request stay in the buffer for the next.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use compio::net::TcpStream;

use super::forward::{self, After};
use super::io::{ReadError, read_some};
use super::{ListenerCtx, WorkerCtx, timer};
use crate::config::ListenerTimeouts;
use crate::http::{self, RequestHead};
use crate::stats::CoreStats;

/// Initial capacity of a client's read buffer; it grows up to the head limit.
const HEAD_BUF: usize = 4096;

/// Keeps the per-core open-connection gauge right on every exit path.
struct OpenGuard<'a>(&'a CoreStats);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

pub async fn serve_client(ctx: Rc<WorkerCtx>, lctx: Rc<ListenerCtx>, stream: TcpStream, peer: SocketAddr) {
    CoreStats::add(&ctx.stats.open, 1);
    let _open = OpenGuard(&ctx.stats);
    let mut buf = BytesMut::with_capacity(HEAD_BUF);
    let mut first = true;
    loop {
        let (timeouts, limits) = {
            let ct = ctx.table();
            let l = ct.listener(&lctx);
            (l.timeouts.clone(), http::Limits::from(&l.limits))
        };
        let head = match read_head(&timeouts, &limits, &stream, &mut buf, first).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(status) => {
                CoreStats::add(&ctx.stats.errors, 1);
                forward::send_error(&stream, status).await;
                return;
            }
        };
        first = false;
        CoreStats::add(&ctx.stats.requests, 1);
        ctx.in_flight.set(ctx.in_flight.get() + 1);
        let after = forward::handle(&ctx, &lctx, &stream, peer, &mut buf, head).await;
        ctx.in_flight.set(ctx.in_flight.get() - 1);
        if matches!(after, After::Close) || ctx.draining.get() {
            return;
        }
    }
}

/// Reads until `buf` holds a complete request head. `Ok(None)`: the client
/// closed or stayed idle past its timeout (close silently). `Err(status)`:
/// answer with that status and close.
async fn read_head(
    t: &ListenerTimeouts,
    limits: &http::Limits,
    stream: &TcpStream,
    buf: &mut BytesMut,
    first: bool,
) -> Result<Option<RequestHead>, u16> {
    let now = timer::now();
    // A new connection gets the header timeout; an idle keep-alive one the
    // keep-alive timeout until its next request starts.
    let idle_deadline = now + if first { t.client_header } else { t.keepalive };
    let mut head_deadline = None;
    loop {
        if !buf.is_empty() {
            match http::parse_request(buf, limits) {
                Ok(Some(head)) => return Ok(Some(head)),
                Ok(None) => {}
                Err(e) => return Err(e.status()),
            }
            head_deadline.get_or_insert_with(|| timer::now() + t.client_header);
        }
        let deadline = head_deadline.unwrap_or(idle_deadline);
        // Decided before the read: a timed-out read takes the buffer with it.
        let started = head_deadline.is_some();
        match read_some(stream, buf, HEAD_BUF, deadline).await {
            Ok(0) | Err(ReadError::Io(_)) => return Ok(None),
            Ok(_) => {}
            Err(ReadError::TimedOut) if started => return Err(408),
            Err(ReadError::TimedOut) => return Ok(None),
        }
    }
}
