//! One client connection: read a head, hand it to `forward`, repeat while
//! the connection is kept alive. Pipelined requests are served in order
//! because bytes after one request stay in the buffer for the next.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use compio::driver::op::{RecvFlags, RecvManaged, ResultTakeBuffer};
use compio::driver::{AsFd, ToSharedFd};
use compio::net::TcpStream;

use super::fixed::Sock;
use super::forward::{self, After};
use super::io::{ReadError, read_some};
use super::{ListenerCtx, WorkerCtx, timer};
use crate::http::{self, RequestHead};
use crate::stats::CoreStats;

/// Initial capacity of a client's read buffer; it grows up to the head limit.
pub const HEAD_BUF: usize = 4096;

/// Keeps the per-core open-connection gauge right on every exit path.
struct OpenGuard<'a>(&'a CoreStats);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        CoreStats::sub(&self.0.open, 1);
    }
}

/// Serves one client connection until it closes. This future is an idle
/// keep-alive connection's task, so its size is most of what one costs:
/// written as a function returning an `async move` block because an
/// `async fn` stores its arguments twice in its future (as given and as
/// moved into the body), 64 B more per connection here.
#[allow(clippy::manual_async_fn)]
pub fn serve_client(
    ctx: Rc<WorkerCtx>,
    lctx: Rc<ListenerCtx>,
    mut stream: Sock,
    peer: SocketAddr,
) -> impl Future<Output = ()> {
    async move {
        CoreStats::add(&ctx.stats.open, 1);
        let _open = OpenGuard(&ctx.stats);
        // No buffer until bytes arrive: see `recv_idle`.
        let mut buf = BytesMut::new();
        // Requests begun on this connection (counting stops at 3).
        let mut begun = 0u8;
        loop {
            let idle = {
                let ct = ctx.table();
                let t = &ct.listener(&lctx).timeouts;
                if begun == 0 { t.client_header } else { t.keepalive }
            };
            if buf.is_empty() && !recv_idle(&ctx, &stream, &mut buf, timer::now() + idle).await {
                return;
            }
            if begun < 3 {
                begun += 1;
                if begun == 3 {
                    // A third request: a connection kept this long usually
                    // carries many more, worth a slot in the ring's file
                    // table (see `fixed`; registering and clearing it cost a
                    // system call each, which connections that serve one or
                    // two requests are spared).
                    stream.register();
                }
            }
            // On the heap: a request's state lives there only while the request
            // is in progress, so an idle connection's future stays small
            // (inline, the forwarding state would make every connection ~2.1 KB),
            // in a block the core reuses (see `slab`).
            if let After::Close =
                ctx.request_blocks.pin_with(|| serve_request(&ctx, &lctx, &stream, peer, &mut buf)).await
            {
                return;
            }
            if ctx.draining.get() {
                return;
            }
            if buf.is_empty() {
                // Nothing pipelined: the buffer goes back to the core while the
                // connection idles.
                ctx.give_head_buf(std::mem::take(&mut buf));
            }
        }
    }
}

/// Serves the request whose first bytes are in `buf`: reads the rest of
/// its head if needed, then forwards it (or answers the error).
async fn serve_request(
    ctx: &Rc<WorkerCtx>,
    lctx: &ListenerCtx,
    stream: &Sock,
    peer: SocketAddr,
    buf: &mut BytesMut,
) -> After {
    let (limits, header_timeout) = {
        let ct = ctx.table();
        let l = ct.listener(lctx);
        (http::Limits::from(&l.limits), l.timeouts.client_header)
    };
    let head = match http::parse_request(buf, &limits) {
        Ok(Some(head)) => Ok(Some(head)),
        Ok(None) => read_head(header_timeout, &limits, stream, buf).await,
        Err(e) => Err(e.status()),
    };
    let head = match head {
        Ok(Some(head)) => head,
        Ok(None) => return After::Close,
        Err(status) => {
            CoreStats::add(&ctx.stats.errors, 1);
            forward::send_error(stream, status).await;
            return After::Close;
        }
    };
    CoreStats::add(&ctx.stats.requests, 1);
    ctx.in_flight.set(ctx.in_flight.get() + 1);
    let after = forward::handle(ctx, lctx, stream, peer, buf, &head).await;
    // The field-line vector serves the next head parsed on this core.
    http::recycle_headers(head.headers);
    ctx.in_flight.set(ctx.in_flight.get() - 1);
    after
}

/// Waits for a client's first bytes of a request without a buffer of its
/// own: the receive takes a buffer from the core's provided-buffer ring
/// when bytes arrive (an io_uring receive with a buffer of its own would
/// hold it for as long as the client idles), and they are copied into a
/// read buffer from the core's spares at once. Should the ring be empty or
/// unavailable, it reads into a buffer of its own. False: the client closed,
/// failed or stayed silent past `deadline`.
#[allow(clippy::manual_async_fn)]
fn recv_idle(ctx: &WorkerCtx, stream: &Sock, buf: &mut BytesMut, deadline: Instant) -> impl Future<Output = bool> {
    async move {
        // The operation is submitted directly (compio's `read_managed` wraps it
        // in two more futures): this future is most of what an idle connection
        // costs. Nothing but the submitted operation is held across the wait:
        // the operation is made, and its result taken apart, outside any `match`
        // that spans an `await` (a matched value's storage stays reserved in
        // the future until the end of the `match`: 80 B here), and this is an
        // `async move` block rather than an `async fn` (see `serve_client`).
        let Some(op) = idle_recv_op(stream) else { return recv_own(ctx, stream, buf, deadline).await };
        let Ok(res) = timer::timeout_at(deadline, compio::runtime::submit(op)).await else { return false };
        // SAFETY: the length is the kernel's, for the buffer it selected.
        match unsafe { res.take_buffer() } {
            Ok(Some(lent)) if !lent.is_empty() => {
                *buf = ctx.take_head_buf();
                buf.extend_from_slice(&lent);
                return true;
            }
            Ok(_) => return false,
            // No buffer in the ring (ENOBUFS).
            Err(_) => {}
        }
        recv_own(ctx, stream, buf, deadline).await
    }
}

/// A receive into the core's provided-buffer ring, `None` if the runtime
/// has no ring.
fn idle_recv_op(stream: &TcpStream) -> Option<RecvManaged<impl AsFd + 'static>> {
    let pool = compio::runtime::Runtime::with_current(|rt| rt.buffer_pool()).ok()?;
    RecvManaged::new(stream.to_shared_fd(), &pool, super::IDLE_RECV_LEN, RecvFlags::empty()).ok()
}

/// [`recv_idle`] without the ring: reads into a buffer of the connection's
/// own (boxed: it is rare, and inline it would grow every idle connection).
async fn recv_own(ctx: &WorkerCtx, stream: &Sock, buf: &mut BytesMut, deadline: Instant) -> bool {
    *buf = ctx.take_head_buf();
    matches!(Box::pin(read_some(stream, buf, HEAD_BUF, deadline)).await, Ok(n) if n > 0)
}

/// Reads the rest of a request head whose first bytes are in `buf`, for at
/// most `header_timeout`. `Ok(None)`: the client closed (close silently).
/// `Err(status)`: answer with that status and close (408 on the timeout).
async fn read_head(
    header_timeout: Duration,
    limits: &http::Limits,
    stream: &Sock,
    buf: &mut BytesMut,
) -> Result<Option<RequestHead>, u16> {
    let deadline = timer::now() + header_timeout;
    loop {
        match read_some(stream, buf, HEAD_BUF, deadline).await {
            Ok(0) | Err(ReadError::Io(_)) => return Ok(None),
            Ok(_) => {}
            Err(ReadError::TimedOut) => return Err(408),
        }
        match http::parse_request(buf, limits) {
            Ok(Some(head)) => return Ok(Some(head)),
            Ok(None) => {}
            Err(e) => return Err(e.status()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Size of the future an async function returns, without calling it.
    fn future_size<A, B, C, D, F>(_: fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn an_idle_connection_future_stays_small() {
        // Every idle keep-alive connection is one such task: 464 B before
        // its arguments stopped being stored twice and its receive stopped
        // keeping matched values (see `serve_client` and `recv_idle`); 8 B
        // more since the socket carries its slot in the ring's file table.
        let idle = future_size::<&'static WorkerCtx, &'static Sock, &'static mut BytesMut, Instant, _>(|c, s, b, d| {
            recv_idle(c, s, b, d)
        });
        let conn = future_size::<Rc<WorkerCtx>, Rc<ListenerCtx>, Sock, SocketAddr, _>(serve_client);
        assert!(idle <= 176, "recv_idle future: {idle} B");
        assert!(conn <= 296, "serve_client future: {conn} B");
    }
}
