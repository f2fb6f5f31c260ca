//! Zero-copy relay of large response bodies: backend socket → pipe →
//! client socket with splice(2), so the body's bytes are never copied into
//! user space and back (a copying relay pays two copies per byte; for a
//! 1 MiB body that is most of its CPU).
//!
//! The splices are non-blocking calls made right here on the worker thread
//! (io_uring runs `IORING_OP_SPLICE` on its blocking worker pool, a thread
//! hop per call); when a side is not ready, the task waits for readiness
//! with an io_uring poll, so the core keeps serving everything else.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use compio::driver::ToSharedFd;
use compio::driver::op::{Interest, PollOnce};
use compio::net::TcpStream;

use super::timer;

/// Capacity asked of each pipe (the kernel caps it at
/// `/proc/sys/fs/pipe-max-size`, 1 MiB by default).
const PIPE_SIZE: i32 = 1 << 20;

/// A pipe used to move body bytes between two sockets. It is returned to
/// the core's spares only when empty.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    cap: usize,
}

impl Pipe {
    pub fn new() -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 returned two fresh descriptors we now own.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A bigger pipe moves more per call; the default (64 KiB) is fine too.
        // SAFETY: valid fd, plain fcntl commands.
        let cap = unsafe {
            libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
            libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        if cap <= 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Pipe { read, write, cap: cap as usize })
    }
}

/// How a spliced relay ended early.
#[derive(Debug, PartialEq, Eq)]
pub enum SpliceError {
    /// splice(2) refused these descriptors before anything moved: relay by
    /// copying instead.
    Unsupported,
    /// The backend closed, failed or stalled past the timeout.
    Upstream,
    /// The client is gone or stalled past the timeout.
    Client,
}

/// Moves exactly `len` bytes from `up` to `client` through `pipe`. On `Ok`
/// the pipe is empty again; on an error it may hold bytes and must be
/// dropped, not reused.
pub async fn relay(
    pipe: &Pipe,
    up: &TcpStream,
    client: &TcpStream,
    len: u64,
    read_timeout: Duration,
    write_timeout: Duration,
) -> Result<(), SpliceError> {
    let (up_fd, client_fd) = (up.as_raw_fd(), client.as_raw_fd());
    let mut rem = len;
    let mut in_pipe = 0usize;
    let mut moved_any = false;
    while rem > 0 || in_pipe > 0 {
        let mut read_blocked = false;
        if rem > 0 && in_pipe < pipe.cap {
            let want = rem.min((pipe.cap - in_pipe) as u64) as usize;
            match splice(up_fd, pipe.write.as_raw_fd(), want) {
                Ok(0) => return Err(SpliceError::Upstream),
                Ok(n) => {
                    moved_any = true;
                    rem -= n as u64;
                    in_pipe += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => read_blocked = true,
                Err(e) if !moved_any && e.raw_os_error() == Some(libc::EINVAL) => {
                    return Err(SpliceError::Unsupported);
                }
                Err(_) => return Err(SpliceError::Upstream),
            }
        }
        if in_pipe > 0 {
            match splice(pipe.read.as_raw_fd(), client_fd, in_pipe) {
                Ok(n) => in_pipe -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The client's send buffer is full: wait for room (the
                    // pipe holds what the backend sent meanwhile).
                    if !ready(client, Interest::Writable, timer::now() + write_timeout).await {
                        return Err(SpliceError::Client);
                    }
                }
                Err(_) => return Err(SpliceError::Client),
            }
        } else if read_blocked && !ready(up, Interest::Readable, timer::now() + read_timeout).await {
            return Err(SpliceError::Upstream);
        }
    }
    Ok(())
}

/// Puts a socket in non-blocking mode. compio's io_uring sockets are
/// blocking (io_uring does not need the flag), but splice(2) on a socket
/// follows the socket's own flag (`SPLICE_F_NONBLOCK` only covers the pipe):
/// a blocking one would stall the whole core until the peer sends or reads.
/// io_uring operations on the socket are unaffected.
pub fn set_nonblocking(fd: i32) {
    // SAFETY: plain fcntl on a descriptor the caller owns; F_SETFL only
    // changes the status flags (O_NONBLOCK here).
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
}

fn splice(from: i32, to: i32, len: usize) -> io::Result<usize> {
    // SAFETY: plain descriptors owned by the caller; null offsets (pipes and
    // sockets have none).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// Waits until `stream` is readable or writable (or has an error or hang-up,
/// which the next splice reports), at most until `deadline`.
async fn ready(stream: &TcpStream, interest: Interest, deadline: Instant) -> bool {
    let op = PollOnce::new(stream.to_shared_fd(), interest);
    matches!(timer::timeout_at(deadline, compio::runtime::submit(op)).await, Ok(res) if res.0.is_ok())
}
