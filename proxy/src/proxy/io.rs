//! Small I/O helpers over compio's owned-buffer API.

use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::driver::ToSharedFd;
use compio::driver::op::{Send, SendFlags, SendVectored};
use compio::io::AsyncRead;
use compio::net::TcpStream;

use super::timer;

/// Why a read did not produce bytes.
#[derive(Debug)]
pub enum ReadError {
    /// The deadline passed (the buffer went with the cancelled read; the
    /// caller closes the connection anyway).
    TimedOut,
    Io(#[allow(dead_code)] io::Error),
}

/// Appends at least one byte to `buf` (reserving `min_spare` first, then
/// filling whatever room it has), or returns `Ok(0)` at EOF.
pub async fn read_some(
    stream: &TcpStream,
    buf: &mut BytesMut,
    min_spare: usize,
    deadline: Instant,
) -> Result<usize, ReadError> {
    buf.reserve(min_spare);
    let room = buf.capacity() - buf.len();
    read_at_most(stream, buf, room, deadline).await
}

/// Appends between 1 and `max` bytes to `buf`, or returns `Ok(0)` at EOF
/// (a bounded [`read_some`]: it leaves the rest in the socket).
pub async fn read_at_most(
    stream: &TcpStream,
    buf: &mut BytesMut,
    max: usize,
    deadline: Instant,
) -> Result<usize, ReadError> {
    buf.reserve(max);
    let taken = std::mem::take(buf);
    let len = taken.len();
    let mut s = stream;
    match timer::timeout_at(deadline, s.read(taken.slice(len..len + max))).await {
        Ok(BufResult(res, b)) => {
            *buf = b.into_inner();
            res.map_err(ReadError::Io)
        }
        Err(_) => Err(ReadError::TimedOut),
    }
}

/// Writes all of `data` and gives the buffer back.
///
/// Submits the send operations itself: compio's `write_all` reaches the
/// same operation through three more futures (`write_all`, `write`,
/// `Socket::send`), ~300 instructions per write on the request path.
pub async fn write_all<B: IoBuf>(stream: &TcpStream, data: B) -> (io::Result<()>, B) {
    let len = data.buf_len();
    let mut data = data;
    let mut done = 0;
    while done < len {
        let op = Send::new(stream.to_shared_fd(), data.slice(done..), SendFlags::empty());
        let BufResult(res, op) = compio::runtime::submit(op).await;
        data = op.into_inner().into_inner();
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
pub async fn write_all_timeout<B: IoBuf>(stream: &TcpStream, data: B, timeout: Duration) -> io::Result<B> {
    written(timer::timeout(timeout, write_all(stream, data)).await)
}

/// Writes `a` then `b` in one vectored write (more if partial) within
/// `timeout`, and gives both buffers back.
pub async fn write2_timeout(
    stream: &TcpStream,
    a: Vec<u8>,
    b: BytesMut,
    timeout: Duration,
) -> io::Result<(Vec<u8>, BytesMut)> {
    written(timer::timeout(timeout, write2(stream, a, b)).await)
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
/// Submitted directly, like [`write_all`]: compio's `write_vectored_all`
/// future was the largest part of a request's state (1 KB of its 2.6 KB).
async fn write2(stream: &TcpStream, a: Vec<u8>, b: BytesMut) -> (io::Result<()>, (Vec<u8>, BytesMut)) {
    let op = SendVectored::new(stream.to_shared_fd(), (a, (b,)), SendFlags::empty());
    let BufResult(res, op) = compio::runtime::submit(op).await;
    let (a, (b,)) = op.into_inner();
    let sent = match res {
        Ok(0) if !(a.is_empty() && b.is_empty()) => return (Err(io::ErrorKind::WriteZero.into()), (a, b)),
        Ok(n) => n,
        // Nothing went: the rest below sends both.
        Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
        Err(e) => return (Err(e), (a, b)),
    };
    if sent < a.len() {
        let (res, a_rest) = write_all(stream, a.slice(sent..)).await;
        let a = a_rest.into_inner();
        if res.is_err() {
            return (res, (a, b));
        }
        let (res, b) = write_all(stream, b).await;
        return (res, (a, b));
    }
    let b_sent = sent - a.len();
    if b_sent < b.len() {
        let (res, b_rest) = write_all(stream, b.slice(b_sent..)).await;
        return (res, (a, b_rest.into_inner()));
    }
    (Ok(()), (a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A connected pair: a compio stream whose send buffer is small, and
    /// the std peer that reads it.
    async fn pair() -> (TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (peer, _) = listener.accept().unwrap();
        socket2::SockRef::from(&stream).set_send_buffer_size(4096).unwrap();
        socket2::SockRef::from(&peer).set_recv_buffer_size(4096).unwrap();
        (stream, peer)
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
            // With ~32 KB accepted by the first send here, it stops inside
            // `a` (then the rest of `a` and all of `b` go on their own), or
            // inside `b`; empty parts and sends that take all are covered too.
            for (a_len, b_len) in [(60_000, 40_000), (30_000, 70_000), (10, 90_000), (0, 20_000), (20_000, 0)] {
                let (stream, peer) = pair().await;
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
            let (stream, peer) = pair().await;
            let data = pattern(100_000, 3);
            let reader = slow_reader(peer, data.len());
            let (res, back) = write_all(&stream, data.clone()).await;
            res.unwrap();
            assert_eq!(back.len(), data.len());
            assert!(reader.join().unwrap() == data);
        });
    }

    #[test]
    fn a_write_to_a_closed_peer_fails_and_gives_the_buffers_back() {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let (stream, peer) = pair().await;
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
