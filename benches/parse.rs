//! Throughput of the strict HTTP/1.1 parsers on the data path: request heads
//! (a browser-like one and the smallest valid one) and chunked decoding.
//!
//!     cargo bench --bench parse

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastlb::http::{Chunk, ChunkedDecoder, Limits, parse_request, write_chunk_header};

/// A typical browser navigation request, about 500 bytes.
const BROWSER: &[u8] = b"GET /products/search?q=load+balancer&page=2 HTTP/1.1\r\n\
Host: shop.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://shop.example.com/products\r\n\
Connection: keep-alive\r\n\
Cookie: session=8f14e45fceea167a5a36dedd4bea2543; lb=s2\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Priority: u=0, i\r\n\r\n";

const MINIMAL: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn heads(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("parse_request");
    for (name, head) in [("browser", BROWSER), ("minimal", MINIMAL)] {
        assert!(parse_request(head, &limits).unwrap().is_some());
        g.throughput(Throughput::Bytes(head.len() as u64));
        g.bench_function(name, |b| b.iter(|| parse_request(black_box(head), &limits)));
    }
    g.finish();
}

fn chunked(c: &mut Criterion) {
    // 64 KiB of data in 4 KiB chunks.
    let mut body = Vec::new();
    for i in 0..16u8 {
        write_chunk_header(&mut body, 4096);
        body.extend(std::iter::repeat_n(b'a' + i, 4096));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut g = c.benchmark_group("chunked");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("64KiB_in_4KiB_chunks", |b| {
        b.iter(|| {
            let mut d = ChunkedDecoder::new();
            let mut n = 0usize;
            d.decode(black_box(&body), &mut |c| {
                if let Chunk::Data(x) = c {
                    n += x.len();
                }
            })
            .unwrap();
            assert!(d.is_done());
            n
        })
    });
    g.finish();
}

criterion_group!(benches, heads, chunked);
criterion_main!(benches);
