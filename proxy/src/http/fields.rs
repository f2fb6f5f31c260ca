//! What requests and responses share: byte spans into the read buffer, header
//! field lines, lookup helpers, and the RFC 9110/9112 checks of the fields that
//! decide framing and connection handling.

use std::ops::Range;

use super::error::HttpError;
use super::rewrite;
use crate::spares::Spares;

/// A byte range into the buffer a head was parsed from. Heads hold spans, not
/// borrowed slices, so the caller keeps ownership of its `BytesMut` (it can
/// keep reading into it, or freeze and slice it) and still gets zero-copy
/// access. `u32` keeps a field line at 8 bytes; heads are limited far below
/// 4 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        debug_assert!(start <= end && end <= u32::MAX as usize);
        Span { start: start as u32, end: end as u32 }
    }

    /// The span of `part`, which must be a sub-slice of `buf`.
    pub(crate) fn of(buf: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        Span::new(start, start + part.len())
    }

    /// The bytes this span covers in `buf` (the buffer it was parsed from).
    pub fn get(self, buf: &[u8]) -> &[u8] {
        &buf[self.range()]
    }

    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// One field line: name and value (value without leading/trailing OWS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub name: Span,
    pub value: Span,
}

/// The value of the first field named `name` (ASCII case-insensitive).
pub fn header<'a>(buf: &'a [u8], headers: &[Header], name: &str) -> Option<&'a [u8]> {
    header_values(buf, headers, name).next()
}

/// The values of every field named `name`, in order.
pub fn header_values<'a, 'h>(
    buf: &'a [u8],
    headers: &'h [Header],
    name: &'h str,
) -> impl Iterator<Item = &'a [u8]> + use<'a, 'h> {
    headers.iter().filter(move |h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes())).map(move |h| h.value.get(buf))
}

/// The value of cookie `name` from the `Cookie` field(s) (`a=1; b=2`), first
/// match. Cookie names are case-sensitive (RFC 6265); the value is returned
/// as sent, including any surrounding double quotes.
pub fn cookie<'a>(buf: &'a [u8], headers: &[Header], name: &str) -> Option<&'a [u8]> {
    header_values(buf, headers, "cookie").find_map(|line| {
        line.split(|&b| b == b';').find_map(|pair| {
            let pair = trim_ows(pair);
            let eq = pair.iter().position(|&b| b == b'=')?;
            (trim_ows(&pair[..eq]) == name.as_bytes()).then(|| trim_ows(&pair[eq + 1..]))
        })
    })
}

/// The elements of a comma-separated field value (RFC 9110 §5.6.1), OWS
/// trimmed; empty elements are skipped as the RFC requires recipients to do.
pub fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows).filter(|s| !s.is_empty())
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Builds a 256-entry membership table at compile time; lookups in the hot
/// loops are then a single load.
const fn table(ranges: &[(u8, u8)]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < ranges.len() {
        let (lo, hi) = ranges[i];
        let mut b = lo as usize;
        while b <= hi as usize {
            t[b] = true;
            b += 1;
        }
        i += 1;
    }
    t
}

/// tchar (RFC 9110 §5.6.2).
pub(crate) static TCHAR: [bool; 256] = table(&[
    (b'0', b'9'),
    (b'A', b'Z'),
    (b'a', b'z'),
    (b'!', b'!'),
    (b'#', b'\''),
    (b'*', b'+'),
    (b'-', b'.'),
    (b'^', b'`'),
    (b'|', b'|'),
    (b'~', b'~'),
]);

/// Characters of RFC 3986 that may appear literally in a request-target:
/// unreserved, sub-delims, ":" "@" "/" "?" and "%" (which must start a
/// pct-encoding, checked separately).
pub(crate) static URI_CHAR: [bool; 256] = table(&[
    (b'0', b'9'),
    (b'A', b'Z'),
    (b'a', b'z'),
    (b'-', b'/'), // - . /
    (b'_', b'_'),
    (b'~', b'~'),
    (b'!', b'!'),
    (b'$', b'$'),
    (b'%', b'%'),
    (b'&', b','), // & ' ( ) * + ,
    (b':', b';'),
    (b'=', b'='),
    (b'?', b'@'),
]);

/// reg-name characters of a host: unreserved / sub-delims ("%" handled apart).
static REG_NAME: [bool; 256] = table(&[
    (b'0', b'9'),
    (b'A', b'Z'),
    (b'a', b'z'),
    (b'-', b'.'),
    (b'_', b'_'),
    (b'~', b'~'),
    (b'!', b'!'),
    (b'$', b'$'),
    (b'&', b','),
    (b';', b';'),
    (b'=', b'='),
]);

pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| TCHAR[b as usize])
}

/// Whether every "%" in `s` starts a pct-encoding ("%" HEXDIG HEXDIG).
pub(crate) fn pct_encodings_valid(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = s[i..].iter().position(|&b| b == b'%') {
        let at = i + p;
        match s.get(at + 1..at + 3) {
            Some([a, b]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => i = at + 3,
            _ => return false,
        }
    }
    true
}

/// Whether `s` is `host [ ":" port ]` (RFC 3986 authority without userinfo,
/// as the Host field and an http(s) URI require, RFC 9110 §4.2.1 and §7.2).
/// An empty host is rejected: a reverse proxy has nothing to route on.
pub(crate) fn is_authority(s: &[u8]) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix(b"[") {
        // IP-literal: the address itself is checked loosely (hex, ':', '.'),
        // enough to keep delimiters and garbage out.
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let addr = &rest[..close];
        if addr.is_empty() || !addr.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return false;
        }
        match &rest[close + 1..] {
            [] => return true,
            [b':', port @ ..] => (&b"x"[..], port),
            _ => return false,
        }
    } else {
        match s.iter().position(|&b| b == b':') {
            Some(c) => (&s[..c], &s[c + 1..]),
            None => (s, &b""[..]),
        }
    };
    !host.is_empty()
        && host.iter().all(|&b| REG_NAME[b as usize] || b == b'%')
        && pct_encodings_valid(host)
        && port.iter().all(u8::is_ascii_digit)
}

/// The field names fastlb itself acts on (framing, connection management,
/// forwarding); every other name is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    Te,
    Host,
    Expect,
    Upgrade,
    XRealIp,
    Connection,
    KeepAlive,
    ContentLength,
    XForwardedFor,
    ProxyConnection,
    TransferEncoding,
    XForwardedProto,
    Other,
}

/// Which [`Name`] a field name is (ASCII case-insensitive). Dispatches on
/// the length first: most names are none of these and are ruled out by one
/// compare at most.
#[inline(always)]
pub(crate) fn name_of(name: &[u8]) -> Name {
    let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
    match name.len() {
        2 if is(b"te") => Name::Te,
        4 if is(b"host") => Name::Host,
        6 if is(b"expect") => Name::Expect,
        7 if is(b"upgrade") => Name::Upgrade,
        9 if is(b"x-real-ip") => Name::XRealIp,
        10 if is(b"connection") => Name::Connection,
        10 if is(b"keep-alive") => Name::KeepAlive,
        14 if is(b"content-length") => Name::ContentLength,
        15 if is(b"x-forwarded-for") => Name::XForwardedFor,
        16 if is(b"proxy-connection") => Name::ProxyConnection,
        17 if is(b"transfer-encoding") => Name::TransferEncoding,
        17 if is(b"x-forwarded-proto") => Name::XForwardedProto,
        _ => Name::Other,
    }
}

/// What the framing and connection-management fields of one head say.
#[derive(Debug, Default)]
pub(crate) struct FieldInfo {
    pub content_length: Option<u64>,
    /// A Transfer-Encoding field was present.
    pub te_present: bool,
    /// Whether the final transfer coding is chunked.
    pub te_chunked_last: bool,
    /// Some coding other than chunked was listed (gzip, deflate, …).
    pub te_other: bool,
    pub host: Option<Span>,
    pub host_count: u32,
    pub conn_close: bool,
    pub conn_keep_alive: bool,
    pub conn_upgrade: bool,
    pub upgrade_field: bool,
    pub expect_continue: bool,
    /// A field a forwarded response head could not keep as it is: one the
    /// response rewrite drops or re-emits (`rewrite::response_rewrites`),
    /// except a Connection field listing only `keep-alive` and a single
    /// Content-Length in canonical form. See `ResponseHead::verbatim`.
    pub rewrite: bool,
}

/// Reads the fields that decide framing. Rejects what would let two parsers
/// disagree about where the message ends: malformed or conflicting
/// Content-Length, chunked applied twice, an unknown coding (501).
pub(crate) fn scan_fields(buf: &[u8], headers: &[Header]) -> Result<FieldInfo, HttpError> {
    let mut info = FieldInfo::default();
    let mut chunked_count = 0u32;
    let mut unknown_coding = false;
    for h in headers {
        let value = h.value.get(buf);
        let name = name_of(h.name.get(buf));
        // Content-Length and Connection pass on as sent unless their values
        // say otherwise (below).
        info.rewrite |= !matches!(name, Name::ContentLength | Name::Connection) && rewrite::response_rewrites(name);
        match name {
            Name::Host => {
                info.host_count += 1;
                if info.host.is_none() {
                    info.host = Some(h.value);
                }
            }
            Name::Expect => {
                info.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
            }
            Name::Upgrade => info.upgrade_field = true,
            Name::Connection => {
                for token in list_items(value) {
                    if token.eq_ignore_ascii_case(b"keep-alive") {
                        info.conn_keep_alive = true;
                        continue;
                    }
                    info.rewrite = true;
                    if token.eq_ignore_ascii_case(b"close") {
                        info.conn_close = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        info.conn_upgrade = true;
                    }
                }
            }
            Name::ContentLength => {
                // RFC 9110 §8.6: a list of identical values (or repeated
                // identical fields) may be treated as one; anything else is
                // unrecoverable. Only a single canonical value (digits, no
                // leading zero) passes on as sent.
                info.rewrite |= info.content_length.is_some()
                    || !value.iter().all(u8::is_ascii_digit)
                    || (value.len() > 1 && value[0] == b'0');
                let mut any = false;
                for item in value.split(|&b| b == b',').map(trim_ows) {
                    let n = parse_decimal(item).ok_or(HttpError::BadRequest("invalid Content-Length"))?;
                    if info.content_length.is_some_and(|prev| prev != n) {
                        return Err(HttpError::BadRequest("conflicting Content-Length"));
                    }
                    info.content_length = Some(n);
                    any = true;
                }
                if !any {
                    return Err(HttpError::BadRequest("invalid Content-Length"));
                }
            }
            Name::TransferEncoding => {
                info.te_present = true;
                for item in list_items(value) {
                    let (coding, params) = match item.iter().position(|&b| b == b';') {
                        Some(p) => (trim_ows(&item[..p]), Some(&item[p + 1..])),
                        None => (item, None),
                    };
                    if !is_token(coding) {
                        return Err(HttpError::BadRequest("invalid Transfer-Encoding"));
                    }
                    info.te_chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                    if info.te_chunked_last {
                        // chunked takes no parameters (RFC 9112 §7.1).
                        if params.is_some() {
                            return Err(HttpError::BadRequest("invalid Transfer-Encoding"));
                        }
                        chunked_count += 1;
                    } else {
                        info.te_other = true;
                        unknown_coding |= !KNOWN_CODINGS.iter().any(|k| coding.eq_ignore_ascii_case(k));
                    }
                }
            }
            _ => {}
        }
    }
    if info.te_present {
        if unknown_coding {
            return Err(HttpError::NotImplemented("unknown transfer coding"));
        }
        if chunked_count > 1 {
            return Err(HttpError::BadRequest("chunked applied more than once"));
        }
        // Also covers a Transfer-Encoding field with an empty value.
        if !info.te_chunked_last {
            return Err(HttpError::BadRequest("final transfer coding is not chunked"));
        }
        if info.content_length.is_some() {
            return Err(HttpError::BadRequest("both Content-Length and Transfer-Encoding"));
        }
    }
    Ok(info)
}

/// Transfer codings of the IANA registry that fastlb can pass through
/// (RFC 9112 §7). "identity" was removed from HTTP/1.1 (RFC 7230 §8.4.1) and
/// counts as unknown.
const KNOWN_CODINGS: [&[u8]; 5] = [b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"];

/// 1*DIGIT as a u64; `None` for empty, non-digits or overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Converts httparse's borrowed field lines into spans and checks what
/// httparse lets through: it accepts a bare LF as a line ending, so every
/// line here must end in CRLF. Each field line starts right after the end of
/// the previous line, so checking the two bytes before each field name, and
/// before and at the final empty line, covers every line of the head.
pub(crate) fn collect_headers(
    buf: &[u8],
    parsed: &[httparse::Header<'_>],
    head_len: usize,
) -> Result<Vec<Header>, HttpError> {
    const BARE_LF: HttpError = HttpError::BadRequest("line not terminated by CRLF");
    if head_len < 2 || &buf[head_len - 2..head_len] != b"\r\n" {
        return Err(BARE_LF);
    }
    let mut out = spare_headers(parsed.len());
    for h in parsed {
        let name = Span::of(buf, h.name.as_bytes());
        let value = Span::of(buf, h.value);
        let line_start = name.start as usize;
        // The start line precedes the first field, so line_start >= 2.
        if &buf[line_start - 2..line_start] != b"\r\n" {
            return Err(BARE_LF);
        }
        out.push(Header { name, value });
    }
    // The final empty line starts at head_len - 2; the line before it (a
    // field or the start line) must also end in CRLF.
    let last = head_len - 2;
    if last < 2 || &buf[last - 2..last] != b"\r\n" {
        return Err(BARE_LF);
    }
    Ok(out)
}

/// How many field lines fit on the stack for httparse; more are allocated.
pub(crate) const STACK_HEADERS: usize = 128;

/// Field-line vectors kept per thread for the next heads parsed there, and
/// the largest one kept (the default header limit's worth).
const SPARE_HEADER_VECS: usize = 64;
const SPARE_HEADER_CAP: usize = 128;

thread_local! {
    static SPARE_HEADERS: Spares<Vec<Header>> = const { Spares::new(SPARE_HEADER_VECS) };
}

/// An empty vector for `n` field lines, a spare one if this thread has one.
fn spare_headers(n: usize) -> Vec<Header> {
    let mut v = SPARE_HEADERS.with(Spares::take).unwrap_or_default();
    v.reserve(n);
    v
}

/// Gives a parsed head's field lines back for the next head parsed on this
/// thread (the data path does, after each request and response head), so a
/// steady stream of requests allocates no field vectors. Large ones, and
/// more than a few dozen, are freed.
pub fn recycle_headers(mut v: Vec<Header>) {
    if v.capacity() > SPARE_HEADER_CAP {
        return;
    }
    v.clear();
    SPARE_HEADERS.with(|spare| spare.give(v));
}

/// Maps an httparse error to ours. Obs-fold and whitespace before the colon
/// surface as `HeaderName` because httparse is configured not to allow them.
pub(crate) fn map_httparse_error(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::HeadTooLarge,
        httparse::Error::HeaderName => {
            HttpError::BadRequest("invalid field name, whitespace before colon, or obs-fold")
        }
        httparse::Error::HeaderValue => HttpError::BadRequest("invalid field value"),
        httparse::Error::NewLine => HttpError::BadRequest("invalid line ending"),
        httparse::Error::Status => HttpError::BadRequest("invalid status line"),
        httparse::Error::Token => HttpError::BadRequest("invalid request line"),
        httparse::Error::Version => HttpError::BadRequest("invalid HTTP version"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(buf: &[u8]) -> Vec<Header> {
        // Minimal splitter for tests: "Name: value\r\n" lines.
        let mut out = Vec::new();
        let mut pos = 0;
        for line in buf.split(|&b| b == b'\n') {
            let end = pos + line.len();
            if let Some(c) = line.iter().position(|&b| b == b':') {
                let v = trim_ows(line[c + 1..].strip_suffix(b"\r").unwrap_or(&line[c + 1..]));
                out.push(Header { name: Span::new(pos, pos + c), value: Span::of(buf, v) });
            }
            pos = end + 1;
        }
        out
    }

    #[test]
    fn header_lookup_is_case_insensitive_first_match() {
        let buf = b"Host: a\r\nX-Test: 1\r\nx-test: 2\r\n";
        let h = hdrs(buf);
        assert_eq!(header(buf, &h, "x-TEST"), Some(&b"1"[..]));
        assert_eq!(header(buf, &h, "host"), Some(&b"a"[..]));
        assert_eq!(header(buf, &h, "missing"), None);
        let all: Vec<_> = header_values(buf, &h, "X-Test").collect();
        assert_eq!(all, [&b"1"[..], &b"2"[..]]);
    }

    #[test]
    fn cookie_lookup() {
        let buf = b"Cookie: a=1; SID=xyz ;b=\r\nCookie: c=3; sid=lower\r\n";
        let h = hdrs(buf);
        assert_eq!(cookie(buf, &h, "a"), Some(&b"1"[..]));
        assert_eq!(cookie(buf, &h, "SID"), Some(&b"xyz"[..]));
        assert_eq!(cookie(buf, &h, "sid"), Some(&b"lower"[..]));
        assert_eq!(cookie(buf, &h, "b"), Some(&b""[..]));
        assert_eq!(cookie(buf, &h, "c"), Some(&b"3"[..]));
        assert_eq!(cookie(buf, &h, "d"), None);
    }

    #[test]
    fn recycled_field_vectors_serve_the_next_head_cleared() {
        use crate::http::{Limits, parse_request};
        let first = parse_request(b"GET / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nX-Two: 2\r\n\r\n", &Limits::default())
            .unwrap()
            .unwrap();
        let ptr = first.headers.as_ptr();
        recycle_headers(first.headers);
        let raw = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n";
        let second = parse_request(raw, &Limits::default()).unwrap().unwrap();
        assert_eq!(second.headers.as_ptr(), ptr, "the recycled vector is reused");
        assert_eq!(second.headers.len(), 1, "and holds only the new head's fields");
        assert_eq!(header(raw, &second.headers, "host"), Some(&b"b"[..]));
        // A vector past the kept size is freed, not kept.
        let kept = || SPARE_HEADERS.with(Spares::len);
        let before = kept();
        recycle_headers(Vec::with_capacity(SPARE_HEADER_CAP + 1));
        assert_eq!(kept(), before);
        recycle_headers(Vec::with_capacity(SPARE_HEADER_CAP));
        assert_eq!(kept(), before + 1);
    }

    #[test]
    fn list_items_skip_empty_elements() {
        let v: Vec<_> = list_items(b" a ,, b,\t c ,").collect();
        assert_eq!(v, [&b"a"[..], &b"b"[..], &b"c"[..]]);
    }

    #[test]
    fn authority_syntax() {
        for ok in [
            &b"example.com"[..],
            b"example.com:8080",
            b"example.com:",
            b"127.0.0.1:80",
            b"[::1]",
            b"[::1]:443",
            b"xn--bcher-kva.example",
            b"a%20b",
        ] {
            assert!(is_authority(ok), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b""[..],
            b":80",
            b"user@host",
            b"host:8x",
            b"host/path",
            b"[::1",
            b"[]",
            b"[::1]x",
            b"a b",
            b"%zz",
            b"h\x80",
        ] {
            assert!(!is_authority(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn decimal_parsing() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b"1 "), None);
    }
}
