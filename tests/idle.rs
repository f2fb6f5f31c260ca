//! Idle keep-alive client connections cost little memory: no read buffer is
//! pinned while a connection waits for its next request, and the request's
//! forwarding state is not kept with it.

mod support;

use support::{Backend, Client, Proxy};

const CONNS: usize = 2_000;
/// RSS per idle connection, after one request each. BENCHMARKS.md measures
/// ~1 KB for a release build (10,000 connections); a connection that kept a
/// 4 KiB read buffer, or its forwarding state inline, costs 5–7 KB.
const MAX_BYTES_PER_CONN: u64 = 3 * 1024;

/// Lets this process hold a few thousand sockets (fastlb raises its own).
fn raise_nofile() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit on a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

#[test]
fn idle_keepalive_connections_hold_no_read_buffer() {
    raise_nofile();
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    // Warm-up: spare buffers, the provided-buffer ring and the upstream pool
    // are not charged to the idle connections.
    {
        let mut warm: Vec<Client> = (0..64).map(|_| Client::connect(proxy.addr)).collect();
        for _ in 0..5 {
            for c in &mut warm {
                assert_eq!(c.get("/").status, 200);
            }
        }
    }
    let before = proxy.mem().rss_kib;
    let mut conns = Vec::with_capacity(CONNS);
    for i in 0..CONNS {
        let mut c = Client::connect(proxy.addr);
        let r = c.get("/");
        assert_eq!(r.status, 200, "connection {i}: {r:?}");
        conns.push(c);
    }
    let after = proxy.mem().rss_kib;
    let per_conn = after.saturating_sub(before) * 1024 / CONNS as u64;
    eprintln!("{CONNS} idle connections: VmRSS {before} -> {after} KiB, {per_conn} B each");
    assert!(
        per_conn < MAX_BYTES_PER_CONN,
        "{per_conn} B of RSS per idle keep-alive connection (limit {MAX_BYTES_PER_CONN}): VmRSS {before} -> {after} KiB"
    );
    // They are all still open and served.
    for (i, c) in conns.iter_mut().enumerate().step_by(97) {
        assert_eq!(c.get("/").status, 200, "idle connection {i} no longer served");
    }
}
