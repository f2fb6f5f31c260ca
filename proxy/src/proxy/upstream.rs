//! The per-core upstream keep-alive pool. Owned by one core (plain
//! `RefCell` in `WorkerCtx`), never shared: no lock, no atomics.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use compio::net::TcpStream;

/// An idle upstream connection and when it went idle.
struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// Idle upstream connections of one core, per backend address.
#[derive(Default)]
pub struct UpstreamPool {
    idle: HashMap<SocketAddr, VecDeque<Idle>>,
}

impl UpstreamPool {
    /// Takes the most recently used live connection to `addr` (LIFO keeps
    /// the working set small and warm). Connections idle longer than
    /// `idle_timeout`, or that the backend closed (or wrote to) while idle,
    /// are dropped here, so a reused connection is one that was open right
    /// before the request was written.
    pub fn take(&mut self, addr: SocketAddr, idle_timeout: Duration) -> Option<TcpStream> {
        let q = self.idle.get_mut(&addr)?;
        while let Some(c) = q.pop_back() {
            if c.since.elapsed() < idle_timeout && still_open(&c.stream) {
                return Some(c.stream);
            }
        }
        None
    }

    /// Returns a connection after a complete exchange; drops the oldest when
    /// `max_idle` are already parked for that address.
    pub fn put(&mut self, addr: SocketAddr, stream: TcpStream, max_idle: usize) {
        if max_idle == 0 {
            return;
        }
        let q = self.idle.entry(addr).or_default();
        if q.len() >= max_idle {
            q.pop_front();
        }
        q.push_back(Idle { stream, since: Instant::now() });
    }

    /// Drops connections idle longer than `idle_timeout` (periodic sweep, so
    /// connections to servers no longer used do not linger).
    pub fn sweep(&mut self, idle_timeout: Duration) {
        self.idle.retain(|_, q| {
            q.retain(|c| c.since.elapsed() < idle_timeout);
            !q.is_empty()
        });
    }

    /// Idle connections held now.
    pub fn len(&self) -> usize {
        self.idle.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// True when the peer has neither closed the connection nor sent anything
/// unsolicited: a non-blocking one-byte peek returns EAGAIN.
fn still_open(stream: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: valid fd owned by `stream`, valid 1-byte buffer.
    let n = unsafe { libc::recv(stream.as_raw_fd(), b.as_mut_ptr().cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// Connects to a backend within `timeout`, with TCP_NODELAY.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    match compio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            s.set_nodelay(true)?;
            Ok(s)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}
