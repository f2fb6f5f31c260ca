//! Unit tests for request and response parsing: one test per RFC rule,
//! valid and invalid.

use super::*;

fn lim() -> Limits {
    Limits::default()
}

fn req(s: &[u8]) -> Result<Option<RequestHead>, HttpError> {
    parse_request(s, &lim())
}

fn ok(s: &[u8]) -> RequestHead {
    match req(s) {
        Ok(Some(h)) => h,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(s)),
    }
}

fn err(s: &[u8]) -> HttpError {
    match req(s) {
        Err(e) => e,
        other => panic!("{:?} should fail: {other:?}", String::from_utf8_lossy(s)),
    }
}

fn status(s: &[u8]) -> u16 {
    err(s).status()
}

#[test]
fn minimal_get() {
    let buf = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest";
    let h = ok(buf);
    assert_eq!(h.method, Method::Get);
    assert_eq!(h.method_range.get(buf), b"GET");
    assert_eq!(h.target.get(buf), b"/");
    assert_eq!(h.target_form, TargetForm::Origin);
    assert_eq!(h.minor_version, 1);
    assert_eq!(h.head_len, buf.len() - 4);
    assert_eq!(h.body, BodyKind::None);
    assert_eq!(h.host.unwrap().get(buf), b"x");
    assert!(h.keep_alive && !h.upgrade && !h.expect_continue);
    assert_eq!(h.headers.len(), 1);
    assert_eq!(h.header(buf, "HOST"), Some(&b"x"[..]));
}

#[test]
fn incomplete_heads_return_none() {
    let full = b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n";
    for k in 0..full.len() {
        assert_eq!(req(&full[..k]), Ok(None), "prefix {k}");
    }
    assert_eq!(ok(full).body, BodyKind::Length(3));
}

#[test]
fn leading_empty_lines_are_ignored_only_as_crlf() {
    let buf = b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let h = ok(buf);
    assert_eq!(h.method_range.get(buf), b"GET");
    assert_eq!(status(b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

#[test]
fn methods() {
    for (m, want, idem) in [
        ("GET", Method::Get, true),
        ("HEAD", Method::Head, true),
        ("POST", Method::Post, false),
        ("PUT", Method::Put, true),
        ("DELETE", Method::Delete, true),
        ("OPTIONS", Method::Options, true),
        ("TRACE", Method::Trace, true),
        ("PATCH", Method::Patch, false),
        ("PURGE", Method::Other, false),
        ("get", Method::Other, false),
    ] {
        let h = ok(format!("{m} / HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        assert_eq!(h.method, want);
        assert_eq!(h.method.is_idempotent(), idem, "{m}");
    }
    // Not a token.
    assert_eq!(status(b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status(b"G\x80T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status(b" GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

#[test]
fn connect_is_405() {
    assert_eq!(err(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), HttpError::MethodNotAllowed);
}

#[test]
fn target_forms() {
    let h = ok(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.target_form, TargetForm::Asterisk);
    assert_eq!(status(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    // Authority-form without CONNECT.
    assert_eq!(status(b"GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    // Relative reference.
    assert_eq!(status(b"GET a/b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    // Other schemes are not ours.
    assert_eq!(status(b"GET ftp://h/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

#[test]
fn absolute_form() {
    let buf = b"GET http://Example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n";
    let h = ok(buf);
    let TargetForm::Absolute { authority, path } = h.target_form else { panic!("{:?}", h.target_form) };
    assert_eq!(authority.get(buf), b"Example.com:8080");
    assert_eq!(path.get(buf), b"/p/q?x=1");
    // The authority overrides Host (RFC 9112 §3.2.2).
    assert_eq!(h.host.unwrap().get(buf), b"Example.com:8080");
    assert_eq!(h.path(buf), b"/p/q?x=1");

    let buf = b"GET HTTPS://h?q HTTP/1.1\r\nHost: h\r\n\r\n";
    let TargetForm::Absolute { path, .. } = ok(buf).target_form else { panic!() };
    assert_eq!(path.get(buf), b"?q");
    // Userinfo, empty authority, bad port.
    assert_eq!(status(b"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_eq!(status(b"GET http:/// HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_eq!(status(b"GET http://h:x/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    // Still needs Host in HTTP/1.1.
    assert_eq!(status(b"GET http://h/ HTTP/1.1\r\n\r\n"), 400);
}

#[test]
fn target_characters() {
    let good = b"GET /a-b._~!$&'()*+,;=:@/?q=%2F%aa HTTP/1.1\r\nHost: x\r\n\r\n";
    ok(good);
    for bad in [
        &b"/\x80"[..],
        b"/\"",
        b"/<",
        b"/>",
        b"/\\",
        b"/^",
        b"/`",
        b"/{",
        b"/|",
        b"/}",
        b"/#frag",
        b"/%",
        b"/%2",
        b"/%zz",
        b"/\x7f",
    ] {
        let line = [b"GET ", bad, b" HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
        assert_eq!(status(&line), 400, "{:?}", String::from_utf8_lossy(bad));
    }
    // A space inside the target makes a malformed request line.
    assert_eq!(status(b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status(b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

#[test]
fn uri_too_long() {
    let l = Limits { max_uri_length: 10, ..lim() };
    assert!(parse_request(b"GET /123456789 HTTP/1.1\r\nHost: x\r\n\r\n", &l).is_ok());
    assert_eq!(parse_request(b"GET /1234567890 HTTP/1.1\r\nHost: x\r\n\r\n", &l), Err(HttpError::UriTooLong));
    // Detected before the request line is complete.
    assert_eq!(parse_request(b"GET /1234567890", &l), Err(HttpError::UriTooLong));
    assert_eq!(parse_request(b"GET /123456789", &l), Ok(None));
}

#[test]
fn versions() {
    assert_eq!(ok(b"GET / HTTP/1.0\r\n\r\n").minor_version, 0);
    // Higher 1.x minors are served as 1.1 (and so need Host).
    let buf = b"GET / HTTP/1.7\r\nHost: x\r\nContent-Length: 2\r\n\r\n";
    let h = ok(buf);
    assert_eq!((h.minor_version, h.head_len), (1, buf.len()));
    assert_eq!(h.body, BodyKind::Length(2));
    assert_eq!(status(b"GET / HTTP/1.7\r\n\r\n"), 400);
    assert_eq!(req(b"GET / HTTP/1.7\r\nHost: x\r\n"), Ok(None));
    assert_eq!(req(b"GET / HTTP/1.7"), Ok(None));
    assert_eq!(status(b"GET / HTTP/1.7\nHost: x\r\n\r\n"), 400);
    // Other majors.
    assert_eq!(err(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), HttpError::VersionNotSupported);
    assert_eq!(err(b"GET / HTTP/3"), HttpError::VersionNotSupported);
    assert_eq!(status(b"GET / HTTP/0.9\r\n\r\n"), 505);
    // Malformed.
    for bad in [
        &b"GET / HTTP/1.10\r\nHost: x\r\n\r\n"[..],
        b"GET / HTTP/1.\r\n\r\n",
        b"GET / http/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/x.1\r\n\r\n",
    ] {
        assert_eq!(status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn line_endings_must_be_crlf() {
    for bad in [
        &b"GET / HTTP/1.1\nHost: x\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\nC: d\r\n\r\n",
        b"GET / HTTP/1.0\n\n",
        b"GET / HTTP/1.1\r\nHost: x\rA: b\r\n\r\n",
        b"GET / HTTP/1.1\rHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n",
    ] {
        assert_eq!(status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn field_syntax() {
    let buf = b"GET / HTTP/1.1\r\nHost: x\r\nA:  spaced\t \r\nEmpty:\r\nB: obs\x80text\r\n\r\n";
    let h = ok(buf);
    assert_eq!(h.header(buf, "a"), Some(&b"spaced"[..]));
    assert_eq!(h.header(buf, "empty"), Some(&b""[..]));
    assert_eq!(h.header(buf, "b"), Some(&b"obs\x80text"[..]));
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: x\r\nA : b\r\n\r\n"[..], // space before colon
        b"GET / HTTP/1.1\r\nHost: x\r\nA\t: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", // obs-fold
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\tc\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nA(b: c\r\n\r\n", // name not a token
        b"GET / HTTP/1.1\r\nHost: x\r\n: c\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n", // NUL
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x01c\r\n\r\n", // CTL
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x7fc\r\n\r\n", // DEL
    ] {
        assert_eq!(status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn host_rules() {
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), 400);
    let buf = b"GET / HTTP/1.1\r\nHOST: [::1]:8080\r\n\r\n";
    assert_eq!(ok(buf).host.unwrap().get(buf), b"[::1]:8080");
    // HTTP/1.0 may omit Host.
    assert_eq!(ok(b"GET / HTTP/1.0\r\n\r\n").host, None);
}

#[test]
fn content_length_rules() {
    let cl = |v: &str| req(format!("POST / HTTP/1.1\r\nHost: x\r\n{v}\r\n\r\n").as_bytes());
    assert_eq!(cl("Content-Length: 10").unwrap().unwrap().body, BodyKind::Length(10));
    assert_eq!(cl("Content-Length: 0").unwrap().unwrap().body, BodyKind::Length(0));
    assert_eq!(cl("Content-Length: 5, 5").unwrap().unwrap().body, BodyKind::Length(5));
    assert_eq!(cl("Content-Length: 5\r\ncontent-length: 5").unwrap().unwrap().body, BodyKind::Length(5));
    for bad in [
        "Content-Length: 5, 6",
        "Content-Length: 5\r\nContent-Length: 6",
        "Content-Length: -1",
        "Content-Length: +5",
        "Content-Length: 0x5",
        "Content-Length: 5 5",
        "Content-Length: 5,",
        "Content-Length:",
        "Content-Length: 99999999999999999999",
    ] {
        assert_eq!(cl(bad).unwrap_err().status(), 400, "{bad}");
    }
}

#[test]
fn transfer_encoding_rules() {
    let te = |v: &str| req(format!("POST / HTTP/1.1\r\nHost: x\r\n{v}\r\n\r\n").as_bytes());
    for good in [
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: CHUNKED",
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: deflate,,chunked",
    ] {
        assert_eq!(te(good).unwrap().unwrap().body, BodyKind::Chunked, "{good}");
    }
    for (bad, code) in [
        ("Transfer-Encoding: gzip", 400),
        ("Transfer-Encoding: chunked, gzip", 400),
        ("Transfer-Encoding: chunked, chunked", 400),
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400),
        ("Transfer-Encoding: chunked;q=1", 400),
        ("Transfer-Encoding:", 400),
        ("Transfer-Encoding: \"chunked\"", 400),
        ("Transfer-Encoding: br, chunked", 501),
        ("Transfer-Encoding: identity", 501),
        ("Transfer-Encoding: xchunked", 501),
        ("Transfer-Encoding: chunked\r\nContent-Length: 3", 400),
        ("Content-Length: 3\r\nTransfer-Encoding: chunked", 400),
    ] {
        assert_eq!(te(bad).unwrap_err().status(), code, "{bad}");
    }
    assert_eq!(status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
}

#[test]
fn connection_semantics() {
    let h = |s: &str| ok(format!("GET / HTTP/{s}\r\n\r\n").as_bytes());
    assert!(h("1.1\r\nHost: x").keep_alive);
    assert!(!h("1.1\r\nHost: x\r\nConnection: close").keep_alive);
    assert!(!h("1.1\r\nHost: x\r\nConnection: foo, Close").keep_alive);
    assert!(!h("1.0").keep_alive);
    assert!(h("1.0\r\nConnection: Keep-Alive").keep_alive);
    assert!(!h("1.0\r\nConnection: keep-alive, close").keep_alive);

    assert!(h("1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade").upgrade);
    assert!(!h("1.1\r\nHost: x\r\nUpgrade: websocket").upgrade);
    assert!(!h("1.1\r\nHost: x\r\nConnection: upgrade").upgrade);
    assert!(!h("1.0\r\nUpgrade: websocket\r\nConnection: upgrade").upgrade);

    assert!(h("1.1\r\nHost: x\r\nExpect: 100-Continue").expect_continue);
    assert!(!h("1.1\r\nHost: x\r\nExpect: other").expect_continue);
}

#[test]
fn header_count_limit() {
    let l = Limits { max_headers: 3, ..lim() };
    let three = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n";
    assert!(parse_request(three, &l).unwrap().is_some());
    let four = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(parse_request(four, &l), Err(HttpError::HeadTooLarge));
    // Known before the head is complete.
    assert_eq!(parse_request(&four[..four.len() - 2], &l), Err(HttpError::HeadTooLarge));
    // Also on the higher-minor path, and beyond the stack-allocated slots.
    let four17 = b"GET / HTTP/1.7\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(parse_request(four17, &l), Err(HttpError::HeadTooLarge));
    let many = Limits { max_headers: 300, ..lim() };
    let mut buf = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for k in 0..299 {
        buf.extend_from_slice(format!("X-{k}: v\r\n").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    assert_eq!(parse_request(&buf, &many).unwrap().unwrap().headers.len(), 300);
    let at = buf.len() - 2;
    buf.splice(at..at, b"Y: 1\r\n".iter().copied());
    assert_eq!(parse_request(&buf, &many), Err(HttpError::HeadTooLarge));
}

#[test]
fn head_size_limit() {
    let l = Limits { max_head_size: 40, ..lim() };
    let exact = b"GET / HTTP/1.1\r\nHost: x\r\nA: 12345678\r\n\r\n";
    assert_eq!(exact.len(), 40);
    assert!(parse_request(exact, &l).unwrap().is_some());
    // Bytes after a complete head do not count.
    let mut more = exact.to_vec();
    more.extend_from_slice(b"body body body");
    assert!(parse_request(&more, &l).unwrap().is_some());
    let over = b"GET / HTTP/1.1\r\nHost: x\r\nA: 123456789\r\n\r\n";
    assert_eq!(parse_request(over, &l), Err(HttpError::HeadTooLarge));
    // Incomplete but already past the limit.
    assert_eq!(parse_request(&over[..41], &l), Err(HttpError::HeadTooLarge));
    assert_eq!(parse_request(&over[..40], &l), Ok(None));
}

// ---- responses ----

fn resp(s: &[u8], m: Method) -> Result<Option<ResponseHead>, HttpError> {
    parse_response(s, &lim(), &m)
}

fn rok(s: &[u8], m: Method) -> ResponseHead {
    resp(s, m).unwrap().unwrap()
}

#[test]
fn response_basics() {
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: t\r\n\r\nhello";
    let r = rok(buf, Method::Get);
    assert_eq!((r.status, r.minor_version), (200, 1));
    assert_eq!(r.reason.get(buf), b"OK");
    assert_eq!(r.body, BodyKind::Length(5));
    assert_eq!(r.head_len, buf.len() - 5);
    assert!(r.keep_alive && !r.upgrade);
    assert_eq!(r.header(buf, "server"), Some(&b"t"[..]));
    for k in 0..r.head_len {
        assert_eq!(resp(&buf[..k], Method::Get), Ok(None));
    }
    let buf = b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n";
    assert!(rok(buf, Method::Get).reason.get(buf).is_empty());
    let buf = b"HTTP/1.1 500 Oops  it broke\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(rok(buf, Method::Get).reason.get(buf), b"Oops  it broke");
}

#[test]
fn response_verbatim_only_when_the_rewrite_would_change_nothing_but_order() {
    let yes: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nServer: x\r\nConnection: keep-alive\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive , \r\nContent-Length: 10\r\n\r\n",
        // Close-delimited: the proxy decides by the framing, not this flag.
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n",
    ];
    for buf in yes {
        assert!(rok(buf, Method::Get).verbatim, "{}", String::from_utf8_lossy(buf));
    }
    let no: [&[u8]; 16] = [
        b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.2 200 OK\r\nContent-Length: 5\r\n\r\n",
        b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 05\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, x-a\r\nX-A: 1\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nProxy-Connection: keep-alive\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTE: trailers\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
    ];
    for buf in no {
        assert!(!rok(buf, Method::Get).verbatim, "{}", String::from_utf8_lossy(buf));
    }
}

#[test]
fn response_body_framing() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(rok(chunked, Method::Get).body, BodyKind::Chunked);
    assert_eq!(rok(chunked, Method::Head).body, BodyKind::None);
    let r = rok(b"HTTP/1.1 200 OK\r\n\r\n", Method::Get);
    assert_eq!(r.body, BodyKind::CloseDelimited);
    assert!(!r.keep_alive);
    let head = rok(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", Method::Head);
    assert_eq!((head.body, head.content_length), (BodyKind::None, Some(9)));
    for s in [100u16, 103, 204, 304] {
        let buf = format!("HTTP/1.1 {s} X\r\nContent-Length: 7\r\n\r\n");
        assert_eq!(rok(buf.as_bytes(), Method::Get).body, BodyKind::None, "{s}");
    }
    let up = rok(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", Method::Get);
    assert!(up.upgrade);
    assert_eq!(up.body, BodyKind::None);
}

#[test]
fn response_keep_alive() {
    let ka = |s: &[u8]| rok(s, Method::Get).keep_alive;
    assert!(!ka(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
    assert!(!ka(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(ka(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"));
}

#[test]
fn response_versions() {
    let r = rok(b"HTTP/1.3 200 OK\r\nContent-Length: 1\r\n\r\n", Method::Get);
    assert_eq!((r.minor_version, r.body), (1, BodyKind::Length(1)));
    let buf = b"HTTP/1.3 204\r\nA: b\r\n\r\n";
    let r = rok(buf, Method::Get);
    assert_eq!((r.status, r.head_len), (204, buf.len()));
    assert_eq!(resp(b"HTTP/1.3 200 OK\r\n", Method::Get), Ok(None));
    for bad in [
        &b"HTTP/2.0 200 OK\r\n\r\n"[..],
        b"HTTP/1.3 200 OK\n\r\n",
        b"HTTP/1.3 20 OK\r\n\r\n",
        b"HTTP/1.3 200OK\r\n\r\n",
        b"HTTP/1.3 200 O\x01K\r\n\r\n",
        b"HTTP/1.3 200 OK\r\nA : b\r\n\r\n",
    ] {
        assert!(matches!(resp(bad, Method::Get), Err(HttpError::BadRequest(_))), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn response_violations_are_bad_request() {
    for bad in [
        &b"HTTP/1.1 099 X\r\n\r\n"[..],
        b"HTTP/1.1 600 X\r\n\r\n",
        b"HTTP/1.1 2000 X\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: foo\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: \x00\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n",
        b"\nHTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
    ] {
        assert!(matches!(resp(bad, Method::Get), Err(HttpError::BadRequest(_))), "{:?}", String::from_utf8_lossy(bad));
    }
    let l = Limits { max_head_size: 20, ..lim() };
    assert!(matches!(
        parse_response(b"HTTP/1.1 200 OK\r\nServer: x\r\n", &l, &Method::Get),
        Err(HttpError::BadRequest(_))
    ));
}
