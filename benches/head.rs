//! Cost of writing the heads the proxy sends on: the request head forwarded
//! upstream (`write_request_head`: origin-form, hop-by-hop fields dropped,
//! framing re-emitted, X-Forwarded-* when on) and the response head for the
//! client (`write_response_head`). Heads are parsed once, outside the timed
//! loop; each iteration clears and refills one output `Vec`, as a connection
//! does. Throughput is bytes of the input head.
//!
//!     cargo bench --bench head

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastlb::http::{
    ForwardOpts, Limits, Method, ResponseOpts, parse_request, parse_response, write_request_head, write_response_head,
};

const MINIMAL: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// A browser navigation request: 12 fields, 545 bytes. `Connection:
/// keep-alive` and `TE: trailers` (hop-by-hop) must not be forwarded.
const BROWSER: &[u8] = b"GET /products/search?q=load+balancer&page=2 HTTP/1.1\r\n\
Host: shop.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://shop.example.com/products\r\n\
Connection: keep-alive\r\n\
Cookie: session=8f14e45fceea167a5a36dedd4bea2543; lb=s2; theme=dark\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
TE: trailers\r\n\r\n";

/// The fields of `BROWSER` the backend must not see.
const BROWSER_HOP_BY_HOP: [&str; 2] = ["Connection: keep-alive\r\n", "TE: trailers\r\n"];

/// What fastlb appends for a client at `CLIENT` with forward headers on.
const FORWARDED: &str = "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: http\r\nX-Real-IP: 203.0.113.7\r\n";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

/// A typical nginx response to a page request.
const NGINX: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.27.3\r\n\
Date: Tue, 14 Jan 2025 10:21:37 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 6120\r\n\
Connection: keep-alive\r\n\r\n";

/// A sticky-session cookie, as `forward` passes it in `ResponseOpts::extra`.
const SET_COOKIE: &[u8] = b"Set-Cookie: FASTLB_SERVER=9c3a61f0b2d4e857; Path=/; HttpOnly\r\n";

fn request_heads(c: &mut Criterion) {
    let limits = Limits::default();
    let plain = ForwardOpts { forward_headers: false, ..ForwardOpts::new(CLIENT) };
    let forward = ForwardOpts::new(CLIENT);
    let browser = std::str::from_utf8(BROWSER).unwrap();
    let browser_out = BROWSER_HOP_BY_HOP.iter().fold(browser.to_string(), |s, hop| s.replacen(hop, "", 1));
    let browser_fwd = format!("{}{FORWARDED}\r\n", browser_out.strip_suffix("\r\n").unwrap());
    let cases = [
        ("minimal", MINIMAL, plain, "GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_string()),
        ("browser", BROWSER, plain, browser_out),
        ("browser_forward_headers", BROWSER, forward, browser_fwd),
    ];

    let mut g = c.benchmark_group("write_request_head");
    let mut out = Vec::with_capacity(4096);
    for (name, input, opts, expected) in cases {
        let head = parse_request(input, &limits).unwrap().unwrap();
        // The bench must time the real rewrite: check its output once.
        out.clear();
        write_request_head(input, &head, &opts, &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(text, expected, "{name}");
        assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("Host: ")), "{name}: Host first");
        assert!(BROWSER_HOP_BY_HOP.iter().all(|hop| !text.contains(hop)), "{name}: hop-by-hop forwarded");
        let again = parse_request(&out, &limits).unwrap().unwrap();
        assert_eq!(again.head_len, out.len(), "{name}");

        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                write_request_head(black_box(input), black_box(&head), &opts, &mut out);
                out.len()
            })
        });
    }
    g.finish();
}

fn response_heads(c: &mut Criterion) {
    let limits = Limits::default();
    let head = parse_response(NGINX, &limits, &Method::Get).unwrap().unwrap();
    let plain = ResponseOpts { client_minor: 1, close: false, extra: b"" };
    let sticky = ResponseOpts { extra: SET_COOKIE, ..plain };
    // Connection goes (a 1.1 client keeps the connection by default) and
    // Content-Length is re-emitted after the end-to-end fields.
    let expected = "HTTP/1.1 200 OK\r\nServer: nginx/1.27.3\r\nDate: Tue, 14 Jan 2025 10:21:37 GMT\r\n\
                    Content-Type: text/html; charset=utf-8\r\nContent-Length: 6120\r\n";
    let cases = [
        ("nginx", plain, format!("{expected}\r\n")),
        ("nginx_set_cookie", sticky, format!("{expected}{}\r\n", std::str::from_utf8(SET_COOKIE).unwrap())),
    ];

    let mut g = c.benchmark_group("write_response_head");
    let mut out = Vec::with_capacity(4096);
    for (name, opts, expected) in cases {
        out.clear();
        write_response_head(NGINX, &head, &opts, &mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected, "{name}");
        let again = parse_response(&out, &limits, &Method::Get).unwrap().unwrap();
        assert_eq!(again.head_len, out.len(), "{name}");

        g.throughput(Throughput::Bytes(NGINX.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                write_response_head(black_box(NGINX), black_box(&head), &opts, &mut out);
                out.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, request_heads, response_heads);
criterion_main!(benches);
