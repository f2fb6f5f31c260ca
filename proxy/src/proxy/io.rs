//! Small I/O helpers over compio's owned-buffer API.

use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::driver::ToSharedFd;
use compio::driver::op::{Send, SendFlags};
use compio::io::{AsyncRead, AsyncWriteExt};
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
    match timer::timeout(timeout, write_all(stream, data)).await {
        Ok((Ok(()), b)) => Ok(b),
        Ok((Err(e), _)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}

/// Writes `a` then `b` in one vectored write (more if partial) within
/// `timeout`, and gives both buffers back.
pub async fn write2_timeout(
    stream: &TcpStream,
    a: Vec<u8>,
    b: BytesMut,
    timeout: Duration,
) -> io::Result<(Vec<u8>, BytesMut)> {
    let mut s = stream;
    within(timeout, s.write_vectored_all((a, (b,)))).await.map(|(a, (b,))| (a, b))
}

/// Runs a whole write within `timeout`; the buffers come back on success.
async fn within<T>(timeout: Duration, write: impl Future<Output = BufResult<(), T>>) -> io::Result<T> {
    match timer::timeout(timeout, write).await {
        Ok(BufResult(Ok(()), b)) => Ok(b),
        Ok(BufResult(Err(e), _)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}
