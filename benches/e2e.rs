//! End-to-end: requests per second through a real fastlb (one worker, its
//! own io_uring runtime) to a demo backend on loopback, over one keep-alive
//! client connection. Latency-bound by design (one request in flight); the
//! peer harness in ../shared/bench measures throughput and CPU per request.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastlb::cli::quick_config;
use fastlb::config::{ServerConfig, StrategyKind};

fn request(stream: &mut TcpStream, buf: &mut [u8]) {
    stream.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n").unwrap();
    // Demo backend bodies are "server-N\n"; the head ends with CRLFCRLF and
    // Content-Length is small, so read until the body is complete.
    let mut have = 0;
    loop {
        let n = stream.read(&mut buf[have..]).unwrap();
        assert!(n > 0, "proxy closed the connection");
        have += n;
        let data = &buf[..have];
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&data[..end]).unwrap().to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap();
            if have >= end + 4 + len {
                return;
            }
        }
    }
}

fn e2e(c: &mut Criterion) {
    let backend = fastlb::demo::start_backend("server-1").unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = quick_config(listen, vec![ServerConfig::new("server-1", backend.addr)], StrategyKind::RoundRobin);
    config.runtime.workers = 1;
    config.runtime.pin_workers = false;
    let running = fastlb::runtime::start(config).unwrap();
    let addr = running.addr("default").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_keepalive_1conn", |b| b.iter(|| request(&mut stream, &mut buf)));
    g.finish();
    drop(stream);
    running.shutdown();
}

criterion_group!(benches, e2e);
criterion_main!(benches);
