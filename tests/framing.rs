//! HTTP/1.1 framing through the proxy: strict rejection of bad input
//! (RFC 9112), smuggling attempts, keep-alive, pipelining, bodies,
//! header rewriting.

mod support;

use std::thread;
use std::time::Duration;

use support::{Backend, CHUNKED_BODY, Cfg, Client, Proxy, Response, wait_until};

/// A proxy (from a config with explicit limits) in front of one normal backend.
fn strict(client_header: &str) -> (Backend, Proxy) {
    let b = Backend::start("b");
    let proxy = Cfg::new("round_robin", &[&b])
        .listener_tables(&format!(
            "[listener.limits]\nmax_head_size = 65536\nmax_headers = 100\nmax_uri_length = 8192\n\
             [listener.timeouts]\nclient_header = \"{client_header}\"\nkeepalive = \"60s\""
        ))
        .start();
    (b, proxy)
}

fn show(raw: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(raw).escape_debug().collect();
    if s.chars().count() > 160 {
        format!("{}… ({} bytes)", s.chars().take(160).collect::<String>(), raw.len())
    } else {
        s
    }
}

/// Sends `raw`, expects one of `statuses` with `connection: close`, then
/// EOF, and nothing at the backend.
fn check_reject(proxy: &Proxy, b: &Backend, raw: &[u8], statuses: &[u16]) -> Response {
    let mut c = Client::connect(proxy.addr);
    // The proxy may answer and close before reading everything; a failed
    // write is fine, the response is what counts.
    let _ = c.try_send(raw);
    let r = c
        .try_read_response()
        .unwrap_or_else(|e| panic!("expected {statuses:?} for {}, but reading the response failed: {e}", show(raw)));
    assert!(
        statuses.contains(&r.status),
        "expected {statuses:?} for {}, got {} {:?}",
        show(raw),
        r.status,
        r.head.start_line
    );
    assert!(r.says_close(), "a {} rejection must carry `connection: close`: {:?}", r.status, r.head.fields);
    assert!(c.is_closed(), "proxy kept the connection open after {} for {}", r.status, show(raw));
    assert_eq!(b.requests(), 0, "rejected request {} reached the backend: {:?}", show(raw), b.log());
    r
}

fn expect_reject(raw: &[u8], status: u16) {
    let (b, proxy) = strict("10s");
    check_reject(&proxy, &b, raw, &[status]);
}

#[test]
fn malformed_request_line_is_400() {
    expect_reject(b"GET / HTTP/1.1 junk\r\nHost: a\r\n\r\n", 400);
}

#[test]
fn request_line_without_version_is_400() {
    expect_reject(b"GET /\r\nHost: a\r\n\r\n", 400);
}

#[test]
fn malformed_header_name_is_400() {
    expect_reject(b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400);
}

#[test]
fn header_without_colon_is_400() {
    expect_reject(b"GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n", 400);
}

#[test]
fn whitespace_before_colon_is_400() {
    // RFC 9112 §5.1: a server MUST reject this (classic TE obfuscation).
    expect_reject(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400);
}

#[test]
fn oversized_head_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 70_000));
    raw.extend_from_slice(b"\r\n\r\n");
    expect_reject(&raw, 431);
}

#[test]
fn too_many_headers_is_431() {
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..150 {
        raw.push_str(&format!("X-H{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    expect_reject(raw.as_bytes(), 431);
}

#[test]
fn long_target_is_414() {
    let raw = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(9000));
    expect_reject(raw.as_bytes(), 414);
}

#[test]
fn content_length_with_transfer_encoding_is_400() {
    expect_reject(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn differing_content_lengths_are_400() {
    expect_reject(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400);
}

#[test]
fn differing_content_length_list_is_400() {
    expect_reject(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", 400);
}

#[test]
fn transfer_encoding_not_ending_in_chunked_is_400() {
    expect_reject(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400);
}

#[test]
fn unknown_coding_before_chunked_is_501() {
    expect_reject(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n", 501);
}

/// A bad chunk may be found after the head went upstream: 400 or a plain
/// close are both fine, a success never is.
fn expect_bad_chunk_rejected(body: &[u8]) {
    let (b, proxy) = strict("10s");
    let mut c = Client::connect(proxy.addr);
    let mut raw = b"POST /echo-body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(body);
    let _ = c.try_send(&raw);
    match c.try_read_response() {
        Ok(r) => {
            assert_eq!(r.status, 400, "bad chunk {}: got {:?}", show(body), r.head.start_line);
            assert!(r.says_close(), "400 without connection: close");
            assert!(c.is_closed(), "connection left open after a bad chunk");
        }
        Err(e) => assert!(
            matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset),
            "bad chunk {}: neither 400 nor a close, but {e}",
            show(body)
        ),
    }
    assert!(b.log().iter().all(|r| r.body.is_empty()), "backend got a body from a bad chunk: {:?}", b.log());
}

#[test]
fn non_hex_chunk_size_is_rejected() {
    expect_bad_chunk_rejected(b"zz\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn overflowing_chunk_size_is_rejected() {
    expect_bad_chunk_rejected(b"1ffffffffffffffff\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn obs_fold_is_400() {
    expect_reject(b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n  continued\r\n\r\n", 400);
}

#[test]
fn bare_cr_in_header_is_400() {
    expect_reject(b"GET / HTTP/1.1\r\nHost: a\r\nX-Cr: a\rb\r\n\r\n", 400);
}

#[test]
fn nul_in_header_is_400() {
    expect_reject(b"GET / HTTP/1.1\r\nHost: a\r\nX-Nul: a\0b\r\n\r\n", 400);
}

#[test]
fn connect_is_405() {
    expect_reject(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405);
}

#[test]
fn http2_request_line_is_505() {
    expect_reject(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
}

#[test]
fn missing_host_is_400() {
    expect_reject(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400);
}

#[test]
fn two_hosts_are_400() {
    expect_reject(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

#[test]
fn target_with_high_byte_is_400() {
    expect_reject(b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

#[test]
fn target_with_angle_bracket_is_400() {
    expect_reject(b"GET /<script> HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

#[test]
fn slow_client_head_is_408() {
    let (b, proxy) = strict("1s");
    let mut c = Client::connect(proxy.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n");
    let r = c.try_read_response().unwrap_or_else(|e| panic!("expected 408 within 10 s of a stalled head: {e}"));
    assert_eq!(r.status, 408, "{:?}", r.head.start_line);
    assert!(r.says_close(), "408 without connection: close");
    assert!(c.is_closed(), "connection left open after 408");
    assert_eq!(b.requests(), 0);
}

/// After a smuggling attempt, the backend must never have seen the hidden
/// request. Polls briefly in case the proxy forwards late.
fn assert_not_smuggled(b: &Backend) {
    wait_until(Duration::from_millis(300), || b.requests() >= 2);
    let log = b.log();
    assert!(log.len() <= 1, "one client message reached the backend as {} requests: {log:?}", log.len());
    assert!(log.iter().all(|r| !r.path().contains("smuggled")), "hidden request reached the backend: {log:?}");
}

#[test]
fn cl_te_smuggling_never_reaches_backend() {
    let (b, proxy) = strict("10s");
    let mut c = Client::connect(proxy.addr);
    let _ = c.try_send(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
          GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let first = c.try_read_response();
    if let Ok(r) = &first {
        assert_ne!(r.status, 200, "CL+TE message answered 200");
    }
    assert_not_smuggled(&b);
}

#[test]
fn te_cl_smuggling_never_reaches_backend() {
    let (b, proxy) = strict("10s");
    let hidden = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n",
        hidden.len()
    );
    let mut c = Client::connect(proxy.addr);
    let _ = c.try_send(raw.as_bytes());
    if let Ok(r) = c.try_read_response() {
        assert_ne!(r.status, 200, "TE+CL message answered 200");
    }
    assert_not_smuggled(&b);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    let mut raw = Vec::new();
    for i in 0..6 {
        if i == 3 {
            raw.extend_from_slice(b"POST /echo-body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nthree");
        } else {
            raw.extend_from_slice(format!("GET /p/{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        }
    }
    c.send(&raw);
    for i in 0..6 {
        let r = c.read_response();
        assert_eq!(r.status, 200, "pipelined response {i}: {r:?}");
        if i == 3 {
            assert_eq!(r.text(), "three", "pipelined POST answered out of order");
        } else {
            assert_eq!(r.header("x-path"), Some(format!("/p/{i}").as_str()), "response {i} out of order");
        }
    }
}

#[test]
fn pipelined_responses_keep_request_order_not_completion_order() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    c.send(b"GET /delay/300 HTTP/1.1\r\nHost: a\r\n\r\nGET /p/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /p/2 HTTP/1.1\r\nHost: a\r\n\r\n");
    for path in ["/delay/300", "/p/1", "/p/2"] {
        let r = c.read_response();
        assert_eq!((r.status, r.header("x-path")), (200, Some(path)), "pipelined responses reordered: {r:?}");
    }
}

#[test]
fn a_hundred_pipelined_requests_in_one_write() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    let raw: String =
        (0..100).map(|i| format!("GET /p/{i} HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n", "p".repeat(200))).collect();
    c.send(raw.as_bytes());
    for i in 0..100 {
        let r = c.read_response();
        assert_eq!((r.status, r.header("x-path")), (200, Some(format!("/p/{i}").as_str())), "pipelined response {i}");
    }
}

#[test]
fn head_sent_one_byte_at_a_time_is_parsed() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    for byte in b"POST /echo-body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" {
        c.send(&[*byte]);
    }
    let r = c.read_response();
    assert_eq!((r.status, r.text().as_str()), (200, "hello"), "{r:?}");
}

#[test]
fn chunked_body_followed_by_a_pipelined_request() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    c.send(
        b"POST /echo-body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
          GET /second HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let first = c.read_response();
    assert_eq!((first.status, first.text().as_str()), (200, "abc"), "{first:?}");
    let second = c.read_response();
    assert_eq!((second.status, second.header("x-path")), (200, Some("/second")), "{second:?}");
}

#[test]
fn backend_closing_after_each_response_does_not_break_keepalive() {
    // The upstream pool must not reuse a connection the backend closed.
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    for i in 0..20 {
        let path = if i % 2 == 0 { "/close-after" } else { "/" };
        let r = c.get(path);
        assert_eq!(r.status, 200, "request {i} ({path}): {r:?}");
        assert!(!r.says_close(), "backend's `connection: close` leaked to the client: {:?}", r.head.fields);
    }
}

#[test]
fn idle_keepalive_connection_is_closed_silently() {
    let b = Backend::start("b");
    let proxy = Cfg::new("round_robin", &[&b]).listener_tables("[listener.timeouts]\nkeepalive = \"1s\"").start();
    let mut c = Client::connect(proxy.addr);
    assert_eq!(c.get("/").status, 200);
    // No 408 for a client that never started another request.
    let closed = c.wire.closed_within(Duration::from_secs(8));
    assert!(closed, "idle keep-alive connection not closed silently within 8 s of a 1 s keepalive timeout");
}

#[test]
fn client_connection_close_is_honoured() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    let r = c.request("GET", "/", &[("Connection", "close")], b"");
    assert_eq!(r.status, 200);
    assert!(r.says_close(), "response to `Connection: close` lacks it: {:?}", r.head.fields);
    assert!(c.is_closed(), "proxy kept the connection open after `Connection: close`");
}

#[test]
fn keepalive_reuses_backend_connections() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let addr = proxy.addr;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in 0..50 {
                    let r = c.get("/");
                    assert_eq!(r.status, 200, "request {i}: {r:?}");
                    assert!(!r.says_close(), "proxy closed a keep-alive client connection: {r:?}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread panicked");
    }
    assert_eq!(b.requests(), 200);
    assert!(b.conns() <= 8, "200 requests over 4 client connections used {} backend connections", b.conns());
}

#[test]
fn head_responses_have_no_body() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    for path in ["/", "/chunked", "/download/5000"] {
        let r = c.request("HEAD", path, &[], b"");
        assert_eq!(r.status, 200, "HEAD {path}: {r:?}");
        // Any stray body byte would corrupt the next response on this connection.
        let next = c.get("/after-head");
        assert_eq!((next.status, next.header("x-path")), (200, Some("/after-head")), "after HEAD {path}: {next:?}");
    }
}

#[test]
fn status_204_and_304_have_no_body() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    for code in [204, 304] {
        let r = c.get(&format!("/status/{code}"));
        assert_eq!(r.status, code);
        assert!(!r.is_chunked(), "{code} forwarded with chunked framing");
        let next = c.get("/after");
        assert_eq!((next.status, next.text().as_str()), (200, "b"), "after {code}: {next:?}");
    }
}

#[test]
fn chunked_request_is_reframed_to_backend() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    c.send(
        b"POST /echo-body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!((r.status, r.text().as_str()), (200, "hello, world"), "{r:?}");
    let seen = b.last();
    assert!(seen.head.is_chunked(), "backend did not get a chunked body: {:?}", seen.head.fields);
    assert!(seen.head.get("content-length").is_none(), "chunked body forwarded with a Content-Length too");
    assert_eq!(c.get("/next").status, 200, "connection unusable after a chunked request");
}

#[test]
fn chunked_response_with_trailers_reaches_http11_client() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    let r = c.get("/chunked");
    assert_eq!((r.status, r.text().as_str()), (200, CHUNKED_BODY), "{r:?}");
    assert!(r.is_chunked(), "expected chunked framing to an HTTP/1.1 client: {:?}", r.head.fields);
    assert!(
        r.trailers.iter().any(|(n, v)| n == "x-checksum" && v == "42"),
        "trailer x-checksum not relayed: {:?}",
        r.trailers
    );
    assert_eq!(c.get("/next").status, 200, "connection unusable after a chunked response");
}

#[test]
fn http10_client_gets_unchunked_response() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    c.send(b"GET /chunked HTTP/1.0\r\nHost: a\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert!(r.head.get("transfer-encoding").is_none(), "chunked sent to an HTTP/1.0 client: {:?}", r.head.fields);
    assert_eq!(r.text(), CHUNKED_BODY);
    assert!(c.is_closed(), "HTTP/1.0 connection without keep-alive left open");
}

#[test]
fn expect_100_continue_works() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.try_read_head().unwrap_or_else(|e| panic!("no 100 Continue before the body was sent: {e}"));
    assert_eq!(interim.status, 100, "expected 100 Continue first: {:?}", interim.head.start_line);
    c.send(b"hello world");
    let r = c.read_response();
    assert_eq!((r.status, r.text().as_str()), (200, "11"), "{r:?}");
}

#[test]
fn hop_by_hop_request_headers_are_removed() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let r = support::get_with(
        proxy.addr,
        "/echo-headers",
        &[("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5"), ("X-Normal", "yes")],
    );
    assert_eq!(r.status, 200);
    let seen = b.last().head;
    assert!(seen.get("x-secret").is_none(), "field named in Connection was forwarded: {:?}", seen.fields);
    assert!(seen.get("keep-alive").is_none(), "Keep-Alive was forwarded: {:?}", seen.fields);
    assert!(!seen.has_token("connection", "x-secret"), "client Connection options forwarded: {:?}", seen.fields);
    assert_eq!(seen.get("x-normal"), Some("yes"), "end-to-end field lost");
}

#[test]
fn hop_by_hop_response_headers_are_removed() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let r = support::get(proxy.addr, "/hop");
    assert_eq!(r.status, 200);
    assert!(
        r.header("x-backend-secret").is_none(),
        "field named in backend Connection reached the client: {:?}",
        r.head.fields
    );
    assert!(r.header("keep-alive").is_none(), "backend Keep-Alive reached the client: {:?}", r.head.fields);
    assert!(!r.head.has_token("connection", "x-backend-secret"));
    assert_eq!(r.header("x-kept"), Some("yes"), "end-to-end field lost");
}

/// A response head that needs no rewriting reaches an HTTP/1.1 keep-alive
/// client byte for byte (field order, case and the backend's `Connection:
/// keep-alive` included); any one thing the rewrite must change sends it
/// through the rewrite instead.
#[test]
fn a_plain_response_head_passes_byte_for_byte_and_others_are_rewritten() {
    const PLAIN: &str =
        "HTTP/1.1 200 OK\r\nServer: raw\r\ncontent-length: 5\r\nConnection: keep-alive\r\nX-Order: 1\r\n\r\nhello";
    let cases: [(&'static str, &[u8], &str); 6] = [
        // (backend response, request, head the client must see)
        (PLAIN, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", PLAIN.strip_suffix("hello").unwrap()),
        // An HTTP/1.0 client gets a 1.0 status line and, not asking for
        // keep-alive, `Connection: close`.
        (
            PLAIN,
            b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            "HTTP/1.0 200 OK\r\nServer: raw\r\nX-Order: 1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
        ),
        // A client closing gets `Connection: close`.
        (
            PLAIN,
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 200 OK\r\nServer: raw\r\nX-Order: 1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
        ),
        // A Content-Length not in canonical form is re-emitted.
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 05\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        ),
        // Any other Connection option, and what it names, go.
        (
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nContent-Length: 5\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        ),
        // An empty reason phrase gets the standard one.
        (
            "HTTP/1.1 200\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        ),
    ];
    for (raw, request, want) in cases {
        let b = Backend::with_mode("raw", support::Mode::Raw(raw));
        let proxy = Proxy::cli(&[&b], &["--no-forward-headers"]);
        let mut c = Client::connect(proxy.addr);
        c.send(request);
        let r = c.read_response();
        assert_eq!(show(&r.head.raw), show(want.as_bytes()), "backend sent {}", show(raw.as_bytes()));
        assert_eq!(r.text(), "hello");
    }
}

#[test]
fn forwarded_headers_are_added() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    support::get_with(proxy.addr, "/echo-headers", &[("X-Forwarded-For", "203.0.113.9")]);
    let seen = b.last().head;
    assert_eq!(seen.get_all("x-forwarded-for").join(", "), "203.0.113.9, 127.0.0.1", "{:?}", seen.fields);
    support::get_with(
        proxy.addr,
        "/echo-headers",
        &[("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "10.1.1.1")],
    );
    let seen = b.last().head;
    assert_eq!(
        seen.get_all("x-forwarded-for").join(", "),
        "203.0.113.9, 10.1.1.1, 127.0.0.1",
        "two client XFF fields: {:?}",
        seen.fields
    );
    support::get_with(proxy.addr, "/echo-headers", &[("X-Forwarded-For", "203.0.113.9")]);
    let seen = b.last().head;
    assert_eq!(seen.get("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(seen.get("x-forwarded-proto"), Some("http"));
    support::get(proxy.addr, "/echo-headers");
    assert_eq!(b.last().head.get_all("x-forwarded-for"), vec!["127.0.0.1"]);
}

#[test]
fn no_forward_headers_flag_leaves_them_alone() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &["--no-forward-headers"]);
    support::get_with(proxy.addr, "/echo-headers", &[("X-Forwarded-For", "203.0.113.9")]);
    let seen = b.last().head;
    assert_eq!(seen.get_all("x-forwarded-for"), vec!["203.0.113.9"], "{:?}", seen.fields);
    assert!(seen.get("x-real-ip").is_none() && seen.get("x-forwarded-proto").is_none(), "{:?}", seen.fields);
}

#[test]
fn absolute_form_target_is_rewritten_to_origin_form() {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    c.send(b"GET http://example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    let seen = b.last().head;
    assert_eq!(seen.start_line, "GET /x?y=1 HTTP/1.1");
    assert_eq!(seen.get_all("host"), vec!["example.com"]);
}

#[test]
fn absolute_form_authority_wins_over_a_different_host() {
    // RFC 9112 §3.2.2: the authority replaces Host. Rejecting is also safe;
    // forwarding the conflicting Host is not.
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    c.send(b"GET http://example.com/x HTTP/1.1\r\nHost: wrong.example\r\n\r\n");
    let r = c.read_response();
    if r.status == 400 {
        assert_eq!(b.requests(), 0);
    } else {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(b.last().head.get_all("host"), vec!["example.com"]);
    }
}

/// Clients that keep their connection for several requests are used through
/// the worker ring's registered-file table, one slot per descriptor number
/// (see `proxy/src/proxy/fixed.rs`). Connections come and go here so their
/// descriptor numbers, and slots, are reused: every response must still
/// reach the client that asked for it, a client that half-closes must see
/// the proxy close (a slot left set would keep the proxy's socket open),
/// and one that vanishes mid-request must not disturb the next ones.
#[test]
fn long_keep_alive_connections_that_come_and_go_get_only_their_own_responses() {
    let b = Backend::start("b");
    let proxy = Cfg::new("round_robin", &[&b]).workers(1).start();
    for round in 0..12 {
        let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(proxy.addr)).collect();
        // Interleaved across the clients, five requests each: from the third
        // on, each client's socket has a slot.
        for k in 0..5 {
            for (i, c) in clients.iter_mut().enumerate() {
                let path = format!("/r{round}/c{i}/k{k}");
                let r = c.get(&path);
                assert_eq!(r.status, 200, "{path}");
                assert_eq!(r.header("x-path"), Some(path.as_str()), "a response reached another client");
            }
        }
        // One half-closes and must see the proxy close; one leaves with a
        // request in flight; the others just go.
        let mut last = clients.pop().unwrap();
        last.wire.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(last.is_closed(), "round {round}: the proxy kept a half-closed client's connection open");
        let mut gone = clients.pop().unwrap();
        gone.send(&support::request_bytes("GET", "/delay/50", &[], b""));
        drop(gone);
        drop(clients);
    }
    // The proxy serves on, and the backend saw every request exactly once:
    // 12 rounds × 4 clients × 5 requests, plus the 12 abandoned ones (each
    // reaches the backend whether or not its client is still there).
    let mut c = Client::connect(proxy.addr);
    assert_eq!(c.get("/after").header("x-path"), Some("/after"));
    let want = 12 * 4 * 5 + 12 + 1;
    assert!(wait_until(Duration::from_secs(10), || b.requests() == want), "backend saw {} of {want}", b.requests());
}
