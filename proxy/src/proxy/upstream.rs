//! The per-core upstream keep-alive pool. Owned by one core (plain
//! `RefCell` in `WorkerCtx`), never shared: no lock, no atomics.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use compio::net::TcpStream;

use super::fixed::Sock;
use super::timer;
use crate::balance::table;

/// Parked at least this long, a connection is probed before it is reused.
/// Backends close idle keep-alive connections after seconds (nginx 75 s,
/// Apache 5 s), so a connection back in use within a second almost never
/// meets a close; under load every connection is.
const PROBE_AFTER: Duration = Duration::from_secs(1);

/// An idle upstream connection and when it went idle.
struct Idle {
    stream: Sock,
    since: Instant,
}

/// Idle upstream connections of one core, per backend address.
#[derive(Default)]
pub struct UpstreamPool {
    idle: HashMap<SocketAddr, VecDeque<Idle>, BuildHasherDefault<AddrHasher>>,
}

/// The pool's hash of backend addresses: the project's key hash (FNV-1a,
/// then [`mix64`](crate::balance::mix64) so the map's bucket and tag bits
/// both vary). The keys come from the configuration, not from clients, so an
/// unkeyed hash is safe here; the default SipHash cost ~290 instructions
/// per lookup, two lookups per request.
struct AddrHasher(u64);

impl Default for AddrHasher {
    fn default() -> Self {
        AddrHasher(table::FNV1A_START)
    }
}

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = table::fnv1a_more(self.0, bytes);
    }

    fn finish(&self) -> u64 {
        crate::balance::mix64(self.0)
    }
}

impl UpstreamPool {
    /// Takes the most recently used live connection to `addr` (LIFO keeps
    /// the working set small and warm). Connections idle longer than
    /// `idle_timeout` are dropped here. A connection is probed before reuse
    /// (a non-blocking peek: the backend may have closed it at its own
    /// keep-alive timeout) when `must_probe` (the request could not be
    /// replayed if the connection turned out closed: not idempotent) or when
    /// it was parked for `PROBE_AFTER` or longer. Otherwise it is used as is,
    /// which saves a syscall per request under load: an idempotent request
    /// that meets a connection the backend just closed gets nothing back,
    /// and `forward` replays it once on a new connection.
    pub fn take(&mut self, addr: SocketAddr, idle_timeout: Duration, must_probe: bool) -> Option<Sock> {
        let q = self.idle.get_mut(&addr)?;
        let now = timer::now();
        while let Some(c) = q.pop_back() {
            let age = now.saturating_duration_since(c.since);
            let probe = must_probe || age >= PROBE_AFTER;
            if age < idle_timeout && (!probe || still_open(&c.stream)) {
                return Some(c.stream);
            }
        }
        None
    }

    /// Returns a connection after a complete exchange; drops the oldest when
    /// `max_idle` are already parked for that address. A connection parked
    /// for the first time is registered in the ring's file table (see
    /// `fixed`): it is going to be reused.
    pub fn put(&mut self, addr: SocketAddr, mut stream: Sock, max_idle: usize) {
        if max_idle == 0 {
            return;
        }
        stream.register();
        let q = self.idle.entry(addr).or_default();
        if q.len() >= max_idle {
            q.pop_front();
        }
        q.push_back(Idle { stream, since: timer::now() });
    }

    /// Drops connections idle longer than `idle_timeout` (periodic sweep, so
    /// connections to servers no longer used do not linger).
    pub fn sweep(&mut self, idle_timeout: Duration) {
        self.idle.retain(|_, q| {
            let now = timer::now();
            q.retain(|c| now.saturating_duration_since(c.since) < idle_timeout);
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
pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Sock> {
    match timer::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            s.set_nodelay(true)?;
            super::splice::set_nonblocking(s.as_raw_fd());
            Ok(Sock::new(s))
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn addr_hashes_tell_ports_and_families_apart() {
        let build = BuildHasherDefault::<AddrHasher>::default();
        let mut seen = HashSet::new();
        let mut buckets = [0u32; 64];
        for port in 1..=2_000u16 {
            for ip in ["10.0.0.1", "10.0.0.2", "::1", "2001:db8::1"] {
                let h = build.hash_one(SocketAddr::new(ip.parse().unwrap(), port));
                assert!(seen.insert(h), "collision at {ip}:{port}");
                buckets[(h % 64) as usize] += 1;
            }
        }
        // 8,000 keys over 64 buckets: ~125 each; the low bits are spread.
        assert!(buckets.iter().all(|&n| (60..200).contains(&n)), "{buckets:?}");
    }
}
