//! Small I/O helpers over compio's owned-buffer API, and the data path's
//! own socket operations.
//!
//! Sends and receives on a [`Sock`] are submitted as operations of this
//! module rather than compio's: they use the socket's slot in the ring's
//! file table when it has one (see [`fixed`](super::fixed)), and they are
//! leaner than compio's, which reach the same system call through three
//! more futures (`write_all`, `write`, `Socket::send`; ~300 instructions
//! per write on the request path).

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::driver::{Extra, OpCode, OpEntry, SharedFd, ToSharedFd};
use io_uring::{opcode, types};

use super::fixed::Sock;
use super::timer;

/// Why a read did not produce bytes.
#[derive(Debug)]
pub enum ReadError {
    /// The deadline passed (the buffer went with the cancelled read; the
    /// caller closes the connection anyway).
    TimedOut,
    Io(#[allow(dead_code)] io::Error),
}

/// Builds an io_uring entry for a socket: `$build` is called with
/// `types::Fixed(slot)` when the socket has a slot, else with its descriptor.
macro_rules! on_socket {
    ($fd:expr, $slot:expr, |$t:ident| $build:expr) => {
        match $slot {
            Some(slot) => {
                let $t = types::Fixed(slot);
                $build
            }
            None => {
                let $t = types::Fd($fd.as_raw_fd());
                $build
            }
        }
    };
}

/// A socket's descriptor (held until the operation completes: it keeps the
/// socket open and its descriptor number, its slot, from being reused) and
/// its slot.
struct Target {
    fd: SharedFd<socket2::Socket>,
    slot: Option<u32>,
}

impl Target {
    fn of(sock: &Sock) -> Target {
        Target { fd: sock.to_shared_fd(), slot: sock.slot() }
    }
}

/// One `send(2)` of a whole buffer or slice.
struct SendOp<B> {
    to: Target,
    buf: B,
}

// SAFETY: the entry points into `buf`, which the operation owns (and does
// not move) until it completes.
unsafe impl<B: IoBuf> OpCode for SendOp<B> {
    type Control = ();

    fn create_entry(&mut self, _: &mut ()) -> OpEntry {
        let data = self.buf.as_init();
        let len = data.len().try_into().unwrap_or(u32::MAX);
        on_socket!(self.to.fd, self.to.slot, |t| opcode::Send::new(t, data.as_ptr(), len).build().into())
    }
}

/// One `sendmsg(2)` of two buffers.
struct Send2Op {
    to: Target,
    a: Vec<u8>,
    b: BytesMut,
}

/// The message header and its two parts, next to the operation in the
/// driver (they must stay put until it completes).
struct Send2Control {
    iov: [libc::iovec; 2],
    msg: libc::msghdr,
}

impl Default for Send2Control {
    fn default() -> Self {
        // SAFETY: all-zero is a valid iovec and msghdr (null pointers, zero
        // lengths).
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: the entry points into the control and the two buffers, which
// the operation owns (and the driver does not move) until it completes.
unsafe impl OpCode for Send2Op {
    type Control = Send2Control;

    fn create_entry(&mut self, c: &mut Send2Control) -> OpEntry {
        c.iov = [
            libc::iovec { iov_base: self.a.as_ptr() as *mut _, iov_len: self.a.len() },
            libc::iovec { iov_base: self.b.as_ptr() as *mut _, iov_len: self.b.len() },
        ];
        c.msg.msg_iov = c.iov.as_mut_ptr();
        c.msg.msg_iovlen = 2;
        let msg = &raw const c.msg;
        on_socket!(self.to.fd, self.to.slot, |t| opcode::SendMsg::new(t, msg).build().into())
    }
}

/// One `recv(2)` into the spare capacity of a buffer (at most `max` bytes),
/// which grows by what arrived.
struct RecvOp {
    from: Target,
    buf: BytesMut,
    max: usize,
}

// SAFETY: the entry points into `buf`'s spare capacity, which the operation
// owns (and does not move) until it completes.
unsafe impl OpCode for RecvOp {
    type Control = ();

    fn create_entry(&mut self, _: &mut ()) -> OpEntry {
        let spare = self.buf.spare_capacity_mut();
        let len = spare.len().min(self.max).try_into().unwrap_or(u32::MAX);
        let ptr = spare.as_mut_ptr().cast::<u8>();
        on_socket!(self.from.fd, self.from.slot, |t| opcode::Recv::new(t, ptr, len).build().into())
    }

    unsafe fn set_result(&mut self, _: &mut (), res: &io::Result<usize>, _: &Extra) {
        if let Ok(n) = *res {
            // SAFETY: the kernel wrote `n` bytes at the start of the spare
            // capacity, `n` <= the length it was given.
            unsafe { self.buf.set_len(self.buf.len() + n) };
        }
    }
}

/// Appends at least one byte to `buf` (reserving `min_spare` first, then
/// filling whatever room it has), or returns `Ok(0)` at EOF.
pub async fn read_some(
    sock: &Sock,
    buf: &mut BytesMut,
    min_spare: usize,
    deadline: Instant,
) -> Result<usize, ReadError> {
    buf.reserve(min_spare);
    let room = buf.capacity() - buf.len();
    read_at_most(sock, buf, room, deadline).await
}

/// Appends between 1 and `max` bytes to `buf`, or returns `Ok(0)` at EOF
/// (a bounded [`read_some`]: it leaves the rest in the socket).
pub async fn read_at_most(sock: &Sock, buf: &mut BytesMut, max: usize, deadline: Instant) -> Result<usize, ReadError> {
    buf.reserve(max);
    let op = RecvOp { from: Target::of(sock), buf: std::mem::take(buf), max };
    match timer::timeout_at(deadline, compio::runtime::submit(op)).await {
        Ok(BufResult(res, op)) => {
            *buf = op.buf;
            res.map_err(ReadError::Io)
        }
        Err(_) => Err(ReadError::TimedOut),
    }
}

/// Writes all of `data` and gives the buffer back. Short sends are
/// continued, EINTR is retried, a send of nothing is `WriteZero` (as
/// compio's `write_all`).
pub async fn write_all<B: IoBuf>(sock: &Sock, data: B) -> (io::Result<()>, B) {
    let len = data.buf_len();
    let mut data = data;
    let mut done = 0;
    while done < len {
        let op = SendOp { to: Target::of(sock), buf: data.slice(done..) };
        let BufResult(res, op) = compio::runtime::submit(op).await;
        data = op.buf.into_inner();
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), data),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), data),
        }
    }
    (Ok(()), data)
}

/// Writes all of `data` within `timeout`.
pub async fn write_all_timeout<B: IoBuf>(sock: &Sock, data: B, timeout: Duration) -> io::Result<B> {
    written(timer::timeout(timeout, write_all(sock, data)).await)
}

/// Writes `a` then `b` in one vectored write (more if partial) within
/// `timeout`, and gives both buffers back.
pub async fn write2_timeout(
    sock: &Sock,
    a: Vec<u8>,
    b: BytesMut,
    timeout: Duration,
) -> io::Result<(Vec<u8>, BytesMut)> {
    written(timer::timeout(timeout, write2(sock, a, b)).await)
}

/// The outcome of a whole write run under a deadline; the buffers come back
/// on success. (A plain function, not a wrapping future: that would move the
/// write's future into its own, a copy per write.)
fn written<T>(res: Result<(io::Result<()>, T), timer::Elapsed>) -> io::Result<T> {
    match res {
        Ok((Ok(()), b)) => Ok(b),
        Ok((Err(e), _)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}

/// Writes `a` then `b`: one vectored send, then whatever it left of each.
async fn write2(sock: &Sock, a: Vec<u8>, b: BytesMut) -> (io::Result<()>, (Vec<u8>, BytesMut)) {
    let BufResult(res, op) = compio::runtime::submit(Send2Op { to: Target::of(sock), a, b }).await;
    let Send2Op { a, b, .. } = op;
    let sent = match res {
        Ok(0) if !(a.is_empty() && b.is_empty()) => return (Err(io::ErrorKind::WriteZero.into()), (a, b)),
        Ok(n) => n,
        // Nothing went: the rest below sends both.
        Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
        Err(e) => return (Err(e), (a, b)),
    };
    if sent < a.len() {
        let (res, a_rest) = write_all(sock, a.slice(sent..)).await;
        let a = a_rest.into_inner();
        if res.is_err() {
            return (res, (a, b));
        }
        let (res, b) = write_all(sock, b).await;
        return (res, (a, b));
    }
    let b_sent = sent - a.len();
    if b_sent < b.len() {
        let (res, b_rest) = write_all(sock, b.slice(b_sent..)).await;
        return (res, (a, b_rest.into_inner()));
    }
    (Ok(()), (a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A connected pair: a compio stream whose send buffer is small, and
    /// the std peer that reads it. The stream is in the ring's file table
    /// when `registered` (its operations use the slot), a plain descriptor
    /// otherwise.
    async fn pair(registered: bool) -> (Sock, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = compio::net::TcpStream::connect(addr).await.unwrap();
        let (peer, _) = listener.accept().unwrap();
        socket2::SockRef::from(&stream).set_send_buffer_size(4096).unwrap();
        socket2::SockRef::from(&peer).set_recv_buffer_size(4096).unwrap();
        let mut sock = Sock::new(stream);
        if registered {
            sock.register();
            assert!(sock.slot().is_some(), "a table is registered (`table`)");
        }
        (sock, peer)
    }

    /// Registers a file table on the current runtime.
    fn table() {
        super::super::fixed::init(&compio::runtime::Runtime::current()).unwrap();
    }

    /// Reads `len` bytes slowly (so sends come back short), then returns them.
    fn slow_reader(mut peer: std::net::TcpStream, len: usize) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut got = Vec::with_capacity(len);
            let mut chunk = [0u8; 1000];
            while got.len() < len {
                let n = peer.read(&mut chunk).unwrap();
                assert!(n > 0, "closed after {} of {len} bytes", got.len());
                got.extend_from_slice(&chunk[..n]);
            }
            got
        })
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn two_buffers_arrive_whole_and_in_order_through_short_sends() {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            table();
            // With ~32 KB accepted by the first send here, it stops inside
            // `a` (then the rest of `a` and all of `b` go on their own), or
            // inside `b`; empty parts and sends that take all are covered too.
            let cases = [(60_000, 40_000), (30_000, 70_000), (10, 90_000), (0, 20_000), (20_000, 0)];
            for ((a_len, b_len), registered) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
                let (stream, peer) = pair(registered).await;
                let (a, b) = (pattern(a_len, 1), pattern(b_len, 2));
                let want = [a.clone(), b.clone()].concat();
                let reader = slow_reader(peer, want.len());
                let (a_back, b_back) =
                    write2_timeout(&stream, a, BytesMut::from(&b[..]), Duration::from_secs(30)).await.unwrap();
                assert_eq!((a_back.len(), b_back.len()), (a_len, b_len), "both buffers come back");
                assert!(reader.join().unwrap() == want, "bytes lost or reordered ({a_len} + {b_len})");
            }
        });
    }

    #[test]
    fn write_all_sends_everything_through_short_sends() {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            table();
            for registered in [false, true] {
                let (stream, peer) = pair(registered).await;
                let data = pattern(100_000, 3);
                let reader = slow_reader(peer, data.len());
                let (res, back) = write_all(&stream, data.clone()).await;
                res.unwrap();
                assert_eq!(back.len(), data.len());
                assert!(reader.join().unwrap() == data, "registered: {registered}");
            }
        });
    }

    #[test]
    fn a_write_to_a_closed_peer_fails_and_gives_the_buffers_back() {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            table();
            let (stream, peer) = pair(true).await;
            drop(peer);
            // The first send may still be accepted; a later one meets the reset.
            let mut failed = false;
            for _ in 0..50 {
                let (res, (a, b)) = write2(&stream, pattern(100_000, 4), BytesMut::from(&b"x"[..])).await;
                assert_eq!((a.len(), b.len()), (100_000, 1));
                if res.is_err() {
                    failed = true;
                    break;
                }
            }
            assert!(failed, "writes to a closed peer kept succeeding");
        });
    }
}
