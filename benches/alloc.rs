//! Heap allocations per request in steady state, through a real fastlb.
//!
//!     cargo bench --bench alloc
//!
//! A counting global allocator (wrapping `System`; relaxed atomics) counts
//! every `alloc`, `alloc_zeroed` and `realloc` in the process, with the
//! requested size (a `realloc` counts as one allocation of its new size).
//! A demo backend and fastlb (one worker, round robin, as in `e2e`) run in
//! this process; 16 client threads each hold one keep-alive connection and
//! send `GET /` one request at a time, from fixed buffers allocated before
//! they start. Client threads are flagged (thread-local), so what they
//! allocate is counted apart; the table shows it, and it must be 0.
//!
//! Each run: 2,000 warm-up requests, snapshot, 20,000 requests, snapshot.
//! Runs: client → fastlb → backend, then client → backend directly, sending
//! exactly the head fastlb forwards (the demo backend allocates per field
//! line, so the same bytes are needed for the difference to hold). The
//! difference is fastlb's share. fastlb's upstream connections must not
//! change during the measured run (checked: a new one would add a backend
//! thread and its allocations).
//!
//! A 64 KiB response is not measured: `fastlb::demo` backends only answer
//! their id (`server-N\n`) and `/health` JSON.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fastlb::cli::quick_config;
use fastlb::config::{ServerConfig, StrategyKind};
use fastlb::http::{ForwardOpts, Limits, parse_request, write_request_head};

const CONNECTIONS: usize = 16;
const WARMUP: usize = 2_000;
const MEASURED: usize = 20_000;
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
/// Room for any demo response (head and body).
const CLIENT_BUF: usize = 4096;

/// Requested sizes below this are counted one by one; larger ones by power
/// of two.
const EXACT_SIZES: usize = 4096;
const SIZE_SLOTS: usize = EXACT_SIZES + usize::BITS as usize;

/// What everything except the client threads allocates.
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static BY_SIZE: [AtomicU64; SIZE_SLOTS] = [const { AtomicU64::new(0) }; SIZE_SLOTS];
/// What the client threads allocate (should be nothing once they run).
static CLIENT_ALLOCS: AtomicU64 = AtomicU64::new(0);
static CLIENT_BYTES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set by client threads once their buffers exist. `const`, with no
    /// destructor: reading it from the allocator never allocates.
    static CLIENT: Cell<bool> = const { Cell::new(false) };
}

fn size_slot(size: usize) -> usize {
    if size < EXACT_SIZES { size } else { EXACT_SIZES + size.ilog2() as usize }
}

fn record(size: usize) {
    if CLIENT.try_with(Cell::get).unwrap_or(false) {
        CLIENT_ALLOCS.fetch_add(1, Relaxed);
        CLIENT_BYTES.fetch_add(size as u64, Relaxed);
    } else {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(size as u64, Relaxed);
        BY_SIZE[size_slot(size)].fetch_add(1, Relaxed);
    }
}

struct Counting;

// SAFETY: every call is passed on unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counters at one instant. Allocated before a run and filled in place,
/// so taking a snapshot allocates nothing.
struct Snapshot {
    allocs: u64,
    bytes: u64,
    client_allocs: u64,
    client_bytes: u64,
    by_size: Box<[u64; SIZE_SLOTS]>,
}

impl Snapshot {
    fn new() -> Self {
        Snapshot { allocs: 0, bytes: 0, client_allocs: 0, client_bytes: 0, by_size: Box::new([0; SIZE_SLOTS]) }
    }

    fn take(&mut self) {
        self.allocs = ALLOCS.load(Relaxed);
        self.bytes = BYTES.load(Relaxed);
        self.client_allocs = CLIENT_ALLOCS.load(Relaxed);
        self.client_bytes = CLIENT_BYTES.load(Relaxed);
        for (s, c) in self.by_size.iter_mut().zip(&BY_SIZE) {
            *s = c.load(Relaxed);
        }
    }
}

/// Counts over the measured requests of one run.
struct Run {
    allocs: u64,
    bytes: u64,
    client_allocs: u64,
    client_bytes: u64,
    by_size: Vec<u64>,
    elapsed: Duration,
}

/// Sends `request` and reads the whole response into `buf`, allocating
/// nothing: one request in flight, so the response ends the bytes read.
fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut [u8]) {
    stream.write_all(request).unwrap();
    let mut have = 0;
    loop {
        let n = stream.read(&mut buf[have..]).unwrap();
        assert!(n > 0, "connection closed");
        have += n;
        let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = &buf[..end];
        assert!(head.starts_with(b"HTTP/1.1 200 "), "unexpected response");
        let len = head
            .split(|&b| b == b'\n')
            .find_map(|line| {
                let (name, value) = line.split_at_checked(15)?;
                name.eq_ignore_ascii_case(b"content-length:").then(|| {
                    value.iter().filter(|b| b.is_ascii_digit()).fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'))
                })
            })
            .expect("no Content-Length");
        if have >= end + 4 + len {
            assert_eq!(have, end + 4 + len, "bytes after the response");
            return;
        }
    }
}

/// One client thread: connect, warm up, then the measured requests, with
/// the barrier between phases so the main thread can snapshot.
fn client(addr: SocketAddr, request: Arc<[u8]>, barrier: Arc<Barrier>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; CLIENT_BUF];
    CLIENT.set(true);
    for _ in 0..WARMUP / CONNECTIONS {
        exchange(&mut stream, &request, &mut buf);
    }
    barrier.wait(); // warmed up
    barrier.wait(); // counters taken
    for _ in 0..MEASURED / CONNECTIONS {
        exchange(&mut stream, &request, &mut buf);
    }
    barrier.wait(); // done
}

/// Runs the clients against `addr` and counts the measured phase.
/// `between` is called right before and right after the counted window.
fn run(addr: SocketAddr, request: &[u8], mut between: impl FnMut()) -> Run {
    let request: Arc<[u8]> = request.into();
    let barrier = Arc::new(Barrier::new(CONNECTIONS + 1));
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (request, barrier) = (Arc::clone(&request), Arc::clone(&barrier));
            std::thread::spawn(move || client(addr, request, barrier))
        })
        .collect();
    let (mut before, mut after) = (Snapshot::new(), Snapshot::new());
    barrier.wait();
    between();
    before.take();
    let start = Instant::now();
    barrier.wait();
    barrier.wait();
    let elapsed = start.elapsed();
    after.take();
    between();
    for t in threads {
        t.join().unwrap();
    }
    Run {
        allocs: after.allocs - before.allocs,
        bytes: after.bytes - before.bytes,
        client_allocs: after.client_allocs - before.client_allocs,
        client_bytes: after.client_bytes - before.client_bytes,
        by_size: after.by_size.iter().zip(before.by_size.iter()).map(|(a, b)| a - b).collect(),
        elapsed,
    }
}

fn per_request(n: i64) -> f64 {
    n as f64 / MEASURED as f64
}

fn size_label(slot: usize) -> String {
    if slot < EXACT_SIZES {
        format!("{slot} B")
    } else {
        let k = slot - EXACT_SIZES;
        format!("{}..{} B", 1u64 << k, (1u64 << (k + 1)) - 1)
    }
}

fn main() {
    let total = Instant::now();
    let backend = fastlb::demo::start_backend("server-1").unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = quick_config(listen, vec![ServerConfig::new("server-1", backend.addr)], StrategyKind::RoundRobin);
    config.runtime.workers = 1;
    config.runtime.pin_workers = false;
    let running = fastlb::runtime::start(config).unwrap();
    let proxy = running.addr("default").unwrap();

    // What fastlb sends upstream for REQUEST from 127.0.0.1 (listener
    // defaults: forward headers on).
    let head = parse_request(REQUEST, &Limits::default()).unwrap().unwrap();
    let mut forwarded = Vec::new();
    write_request_head(REQUEST, &head, &ForwardOpts::new(proxy.ip()), &mut forwarded);

    let table = Arc::clone(&running.shared.table);
    let conns_opened = || table.load().pools[0].servers[0].stats.core(0).conns_opened.load(Relaxed);
    let mut opened = Vec::with_capacity(2);
    let via = run(proxy, REQUEST, || opened.push(conns_opened()));
    assert_eq!(opened[0], opened[1], "fastlb opened upstream connections during the measured run");
    let direct = run(backend.addr, &forwarded, || {});

    let mut idle_before = Snapshot::new();
    let mut idle_after = Snapshot::new();
    idle_before.take();
    std::thread::sleep(via.elapsed);
    idle_after.take();
    let idle = idle_after.allocs - idle_before.allocs;
    running.shutdown();

    println!(
        "heap allocations per request, steady state: {CONNECTIONS} keep-alive connections, \
         {WARMUP} warm-up + {MEASURED} measured requests, GET / (9-byte body)"
    );
    println!("{:<34} {:>10} {:>10} {:>9}", "", "allocs/req", "bytes/req", "run");
    let row = |name: &str, allocs: i64, bytes: i64, elapsed: Option<Duration>| {
        let run = elapsed.map_or(String::new(), |e| format!("{:.2} s", e.as_secs_f64()));
        println!("{name:<34} {:>10.2} {:>10.1} {run:>9}", per_request(allocs), per_request(bytes));
    };
    row("client -> fastlb -> backend", via.allocs as i64, via.bytes as i64, Some(via.elapsed));
    row("client -> backend", direct.allocs as i64, direct.bytes as i64, Some(direct.elapsed));
    row("fastlb (difference)", via.allocs as i64 - direct.allocs as i64, via.bytes as i64 - direct.bytes as i64, None);
    row(
        "client threads (both runs)",
        (via.client_allocs + direct.client_allocs) as i64,
        (via.client_bytes + direct.client_bytes) as i64,
        None,
    );
    println!("idle process, same duration as the fastlb run: {idle} allocations");
    println!("fastlb allocations by requested size (difference of the runs, per request):");
    for (slot, (v, d)) in via.by_size.iter().zip(&direct.by_size).enumerate() {
        let diff = *v as i64 - *d as i64;
        if per_request(diff).abs() >= 0.01 {
            println!("  {:>14} {:>6.2}", size_label(slot), per_request(diff));
        }
    }
    println!("64 KiB response: skipped (fastlb::demo backends only serve their id and /health)");
    println!("total {:.1} s", total.elapsed().as_secs_f64());
    assert_eq!(via.client_allocs + direct.client_allocs, 0, "client threads allocated per request");
}
