//! Writing heads for the next hop: the forwarded request (origin-form,
//! HTTP/1.1, hop-by-hop fields removed, framing re-emitted, X-Forwarded-*)
//! and the response to the client (version and framing adapted to it), plus
//! the chunk framing the body re-encoder writes.
//!
//! Everything is copied from spans of the parsed buffer; only the fields we
//! own are formatted.

use std::io::Write as _;
use std::net::IpAddr;

use super::error::reason_phrase;
use super::fields::{Header, Name, Span, list_items, name_of};
use super::request::{BodyKind, RequestHead, TargetForm};
use super::response::ResponseHead;

/// The last chunk and an empty trailer section: the end of a chunked body.
pub const CHUNK_END: &[u8] = b"0\r\n\r\n";
/// The last chunk alone. To end a body with trailers write this, then the
/// `Chunk::Trailers` bytes verbatim (each field line ends in CRLF), then
/// [`CRLF`].
pub const CHUNK_LAST: &[u8] = b"0\r\n";
pub const CRLF: &[u8] = b"\r\n";

/// Writes the line that starts a chunk of `len` bytes (`len` > 0): the
/// caller writes the data and then [`CRLF`].
pub fn write_chunk_header(out: &mut Vec<u8>, len: usize) {
    debug_assert!(len > 0, "a zero-size chunk ends the body");
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{len:x}\r\n");
}

/// How the forwarded request is decorated.
#[derive(Debug, Clone, Copy)]
pub struct ForwardOpts<'a> {
    /// Appended to X-Forwarded-For and sent as X-Real-IP.
    pub client_ip: IpAddr,
    /// Whether to add X-Forwarded-For, X-Forwarded-Proto and X-Real-IP.
    pub forward_headers: bool,
    /// Tunnel: keep the Upgrade field and send `Connection: upgrade`.
    /// Only honoured when the request itself asked to upgrade.
    pub upgrade: bool,
    /// Host to send when the request has none (HTTP/1.0 without Host), since
    /// HTTP/1.1 upstream requires one; `None` sends an empty Host.
    pub default_host: Option<&'a [u8]>,
}

impl ForwardOpts<'_> {
    /// X-Forwarded-* on, no upgrade, no default host.
    pub fn new(client_ip: IpAddr) -> Self {
        ForwardOpts { client_ip, forward_headers: true, upgrade: false, default_host: None }
    }
}

/// The names of the fields a `Connection` field lists (RFC 9110 §7.6.1):
/// hop-by-hop by declaration, so never forwarded.
struct ConnectionNames<'b> {
    buf: &'b [u8],
    // Few requests have more than one or two Connection lines; beyond that
    // the whole header list is scanned instead of keeping them all.
    spans: [Span; 4],
    count: usize,
    overflow: bool,
    headers: &'b [Header],
    /// Bit n set: a listed name is n bytes long (bit 63: 63 or longer). Most
    /// `Connection` fields list only `keep-alive` or `close`, so most field
    /// names are ruled out by their length without comparing text.
    lengths: u64,
}

impl<'b> ConnectionNames<'b> {
    fn new(buf: &'b [u8], headers: &'b [Header]) -> Self {
        let mut c =
            ConnectionNames { buf, spans: [Span::default(); 4], count: 0, overflow: false, headers, lengths: 0 };
        for h in headers {
            if h.name.get(buf).eq_ignore_ascii_case(b"connection") {
                for t in list_items(h.value.get(buf)) {
                    c.lengths |= length_bit(t.len());
                }
                if c.count < c.spans.len() {
                    c.spans[c.count] = h.value;
                    c.count += 1;
                } else {
                    c.overflow = true;
                }
            }
        }
        c
    }

    fn lists(&self, name: &[u8]) -> bool {
        if self.lengths & length_bit(name.len()) == 0 {
            return false;
        }
        let hit = |v: Span| list_items(v.get(self.buf)).any(|t| t.eq_ignore_ascii_case(name));
        if self.overflow {
            self.headers
                .iter()
                .filter(|h| h.name.get(self.buf).eq_ignore_ascii_case(b"connection"))
                .any(|h| hit(h.value))
        } else {
            self.spans[..self.count].iter().any(|&v| hit(v))
        }
    }
}

/// The bit of [`ConnectionNames::lengths`] for a name `len` bytes long.
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// What a field line is to the rewriter.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// Framing or connection management we re-emit ourselves, or Host.
    Own,
    Upgrade,
    Xff,
    /// X-Forwarded-Proto and X-Real-IP: replaced when forwarding headers,
    /// so a client cannot spoof them.
    Replaced,
    Other,
}

fn kind(name: &[u8]) -> Kind {
    kind_of(name_of(name))
}

fn kind_of(name: Name) -> Kind {
    // Expect is consumed here: fastlb answers `100 Continue` itself once a
    // backend is connected (as NGINX does), so the backend never waits on it.
    match name {
        Name::Te
        | Name::Host
        | Name::Expect
        | Name::Connection
        | Name::KeepAlive
        | Name::ContentLength
        | Name::ProxyConnection
        | Name::TransferEncoding => Kind::Own,
        Name::Upgrade => Kind::Upgrade,
        Name::XForwardedFor => Kind::Xff,
        Name::XRealIp | Name::XForwardedProto => Kind::Replaced,
        Name::Other => Kind::Other,
    }
}

/// Whether [`write_response_head`] drops or re-emits fields so named for
/// a final response (which the verbatim path relies on: see
/// `ResponseHead::verbatim`).
pub(crate) fn response_rewrites(name: Name) -> bool {
    matches!(kind_of(name), Kind::Own | Kind::Upgrade)
}

fn put_field(out: &mut Vec<u8>, buf: &[u8], h: &Header) {
    // A line already in canonical form (`name: value` CRLF, one space, no
    // trailing whitespace), as nearly all are, is copied in one piece.
    let (name_end, value_start, value_end) = (h.name.end as usize, h.value.start as usize, h.value.end as usize);
    if value_start == name_end + 2
        && buf.get(name_end..value_start) == Some(b": ")
        && buf.get(value_end..value_end + 2) == Some(CRLF)
    {
        out.extend_from_slice(&buf[h.name.start as usize..value_end + 2]);
        return;
    }
    out.extend_from_slice(h.name.get(buf));
    out.extend_from_slice(b": ");
    out.extend_from_slice(h.value.get(buf));
    out.extend_from_slice(CRLF);
}

/// Appends the decimal digits of `n` (what `write!` does, without the
/// formatting machinery: this runs for every response head).
fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends a `Content-Length` field line.
fn put_content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    put_decimal(out, n);
    out.extend_from_slice(CRLF);
}

/// Writes the head to send upstream for `head` (parsed from `buf`):
/// `METHOD origin-form HTTP/1.1`, Host first (the absolute-form authority if
/// any), every end-to-end field in order, the framing field, and
/// X-Forwarded-For/-Proto and X-Real-IP when `opts.forward_headers`.
/// Removed: Connection and the fields it names, Keep-Alive,
/// Proxy-Connection, TE, Transfer-Encoding, Content-Length (re-emitted from
/// `head.body`), Expect (answered by fastlb) and Upgrade unless tunnelling. No Connection field is sent,
/// so the upstream connection stays persistent; a tunnel sends
/// `Connection: upgrade`.
pub fn write_request_head(buf: &[u8], head: &RequestHead, opts: &ForwardOpts, out: &mut Vec<u8>) {
    out.extend_from_slice(head.method_range.get(buf));
    out.push(b' ');
    match head.target_form {
        TargetForm::Absolute { path, .. } => {
            let path = path.get(buf);
            if !path.starts_with(b"/") {
                out.push(b'/');
            }
            out.extend_from_slice(path);
        }
        TargetForm::Origin | TargetForm::Asterisk => out.extend_from_slice(head.target.get(buf)),
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    match head.host {
        Some(h) => out.extend_from_slice(h.get(buf)),
        None => out.extend_from_slice(opts.default_host.unwrap_or_default()),
    }
    out.extend_from_slice(CRLF);

    let tunnel = opts.upgrade && head.upgrade;
    let conn = ConnectionNames::new(buf, &head.headers);
    let mut xff_seen = false;
    for h in &head.headers {
        let name = h.name.get(buf);
        match kind(name) {
            Kind::Own => continue,
            Kind::Upgrade if tunnel => {
                put_field(out, buf, h);
                continue;
            }
            Kind::Upgrade => continue,
            Kind::Xff if opts.forward_headers => {
                // A client may declare its X-Forwarded-For hop-by-hop; then
                // the list starts with us.
                xff_seen |= conn.count == 0 || !conn.lists(name);
                continue;
            }
            Kind::Replaced if opts.forward_headers => continue,
            _ => {}
        }
        if conn.count > 0 && conn.lists(name) {
            continue;
        }
        put_field(out, buf, h);
    }

    match head.body {
        BodyKind::Length(n) => {
            put_content_length(out, n);
        }
        BodyKind::Chunked => {
            // The codings as received (validated: known, chunked last), so a
            // gzip coding under the chunking survives.
            out.extend_from_slice(b"Transfer-Encoding: ");
            let mut first = true;
            for h in &head.headers {
                if h.name.get(buf).eq_ignore_ascii_case(b"transfer-encoding") {
                    for item in list_items(h.value.get(buf)) {
                        if !first {
                            out.extend_from_slice(b", ");
                        }
                        out.extend_from_slice(item);
                        first = false;
                    }
                }
            }
            out.extend_from_slice(CRLF);
        }
        BodyKind::None | BodyKind::CloseDelimited => {}
    }
    if tunnel {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    }
    if opts.forward_headers {
        out.extend_from_slice(b"X-Forwarded-For: ");
        if xff_seen {
            // All incoming lines merged into one list, ours last.
            for h in &head.headers {
                if h.name.get(buf).eq_ignore_ascii_case(b"x-forwarded-for") {
                    for item in list_items(h.value.get(buf)) {
                        out.extend_from_slice(item);
                        out.extend_from_slice(b", ");
                    }
                }
            }
        }
        let _ = write!(out, "{ip}\r\nX-Forwarded-Proto: http\r\nX-Real-IP: {ip}\r\n", ip = opts.client_ip);
    }
    out.extend_from_slice(CRLF);
}

/// How the response is sent to the client.
#[derive(Debug, Clone, Copy)]
pub struct ResponseOpts<'a> {
    /// The client's HTTP minor version (0 or 1).
    pub client_minor: u8,
    /// Close the client connection after this response.
    pub close: bool,
    /// Pre-formatted `Name: value\r\n` lines appended verbatim (e.g. a
    /// sticky-session Set-Cookie).
    pub extra: &'a [u8],
}

/// How the response body travels to the client, and whether the client
/// connection must close after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientFraming {
    /// The body as the client sees it: chunked becomes close-delimited for
    /// HTTP/1.0 clients (they do not know chunked), so the data path strips
    /// the chunk framing and closes.
    pub body: BodyKind,
    /// `opts.close`, or the body ends by closing.
    pub close: bool,
}

/// The framing [`write_response_head`] announces for `head`.
pub fn client_framing(head: &ResponseHead, opts: &ResponseOpts) -> ClientFraming {
    let body = match head.body {
        BodyKind::Chunked if opts.client_minor == 0 => BodyKind::CloseDelimited,
        b => b,
    };
    ClientFraming { body, close: opts.close || body == BodyKind::CloseDelimited }
}

/// Writes the response head for the client: status line in the client's
/// version, end-to-end fields in order, framing per [`client_framing`],
/// `Connection: close` when closing, `Connection: keep-alive` for a 1.0
/// client that keeps the connection, `Connection: upgrade` and the Upgrade
/// field for a 101, then `opts.extra`.
pub fn write_response_head(buf: &[u8], head: &ResponseHead, opts: &ResponseOpts, out: &mut Vec<u8>) {
    let framing = client_framing(head, opts);
    out.extend_from_slice(if opts.client_minor == 0 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
    put_decimal(out, u64::from(head.status));
    out.push(b' ');
    let reason = head.reason.get(buf);
    if reason.is_empty() {
        let r = reason_phrase(head.status);
        if r != "Unknown" {
            out.extend_from_slice(r.as_bytes());
        }
    } else {
        out.extend_from_slice(reason);
    }
    out.extend_from_slice(CRLF);

    let tunnel = head.upgrade && opts.client_minor == 1;
    let conn = ConnectionNames::new(buf, &head.headers);
    for h in &head.headers {
        let name = h.name.get(buf);
        match kind(name) {
            Kind::Own => continue,
            Kind::Upgrade if !tunnel => continue,
            _ => {}
        }
        if conn.count > 0 && !(tunnel && name.eq_ignore_ascii_case(b"upgrade")) && conn.lists(name) {
            continue;
        }
        put_field(out, buf, h);
    }

    match framing.body {
        BodyKind::Length(n) => {
            put_content_length(out, n);
        }
        BodyKind::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        // HEAD and 304 keep the Content-Length of the representation.
        BodyKind::None => {
            if let Some(n) = head.content_length {
                put_content_length(out, n);
            }
        }
        BodyKind::CloseDelimited => {}
    }
    let interim = (100..200).contains(&head.status) && !head.upgrade;
    if tunnel {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if framing.close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if opts.client_minor == 0 && !interim {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(opts.extra);
    out.extend_from_slice(CRLF);
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::http::{Limits, Method, parse_request, parse_response};

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

    fn fwd_unchecked(raw: &str, opts: &ForwardOpts) -> String {
        let buf = raw.as_bytes();
        let head = parse_request(buf, &Limits::default()).unwrap().unwrap();
        let mut out = Vec::new();
        write_request_head(buf, &head, opts, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn fwd(raw: &str, opts: &ForwardOpts) -> String {
        let out = fwd_unchecked(raw, opts);
        // What we send must itself pass our own strict parser.
        let again = parse_request(out.as_bytes(), &Limits::default()).unwrap().unwrap();
        assert_eq!(again.head_len, out.len());
        out
    }

    fn plain() -> ForwardOpts<'static> {
        ForwardOpts { forward_headers: false, ..ForwardOpts::new(IP) }
    }

    #[test]
    fn field_kinds_by_name_in_any_case() {
        let cases: [(&[u8], Kind); 18] = [
            (b"te", Kind::Own),
            (b"Host", Kind::Own),
            (b"EXPECT", Kind::Own),
            (b"Upgrade", Kind::Upgrade),
            (b"X-Real-IP", Kind::Replaced),
            (b"Connection", Kind::Own),
            (b"keep-alive", Kind::Own),
            (b"Content-Length", Kind::Own),
            (b"x-forwarded-for", Kind::Xff),
            (b"Proxy-Connection", Kind::Own),
            (b"Transfer-Encoding", Kind::Own),
            (b"X-Forwarded-Proto", Kind::Replaced),
            // Same lengths as the names above, other names.
            (b"tx", Kind::Other),
            (b"hose", Kind::Other),
            (b"keep-alivf", Kind::Other),
            (b"x-forwarded-prox", Kind::Other),
            (b"transfer-encodinf", Kind::Other),
            (b"", Kind::Other),
        ];
        for (name, want) in cases {
            assert_eq!(kind(name), want, "{}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn decimal_digits_match_the_formatter() {
        for n in [0u64, 7, 10, 200, 404, 65_536, 1 << 20, u64::MAX] {
            let mut out = Vec::new();
            put_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn field_lines_are_normalised_whether_copied_whole_or_rebuilt() {
        // Canonical lines are copied in one piece, the others rebuilt as
        // `name: value`; both give the same form.
        let out = fwd("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB:2\r\nC:   3   \r\nD: \r\nE:\t5\r\n\r\n", &plain());
        assert_eq!(out, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: \r\nE: 5\r\n\r\n");
    }

    #[test]
    fn origin_form_passthrough() {
        let out = fwd("GET /a?b HTTP/1.1\r\nUser-Agent: t\r\nHost: example.com\r\nAccept: */*\r\n\r\n", &plain());
        assert_eq!(out, "GET /a?b HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n");
    }

    #[test]
    fn absolute_form_becomes_origin_form_with_host() {
        let out = fwd("GET http://upstream.example:8080/p?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n", &plain());
        assert_eq!(out, "GET /p?q=1 HTTP/1.1\r\nHost: upstream.example:8080\r\n\r\n");
        let out = fwd("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n", &plain());
        assert!(out.starts_with("GET /?q HTTP/1.1\r\nHost: h\r\n"), "{out}");
        let out = fwd("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &plain());
        assert!(out.starts_with("OPTIONS * HTTP/1.1\r\n"), "{out}");
    }

    #[test]
    fn hop_by_hop_removed() {
        let out = fwd(
            "POST /x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret, te\r\n\
             Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
             X-Secret: 1\r\nx-secret: 2\r\nUpgrade: h2c\r\nContent-Length: 4\r\n\
             Connection: x-other\r\nX-Other: y\r\nX-Kept: z\r\n\r\n",
            &plain(),
        );
        assert_eq!(out, "POST /x HTTP/1.1\r\nHost: h\r\nX-Kept: z\r\nContent-Length: 4\r\n\r\n");
    }

    #[test]
    fn connection_listed_names_of_any_length_are_removed_and_only_those() {
        // Names of 63 bytes and more share one length bit: both long names
        // are compared in full, and only the listed one goes.
        let long = format!("X-{}", "a".repeat(70));
        let long_other = format!("X-{}", "b".repeat(70));
        let out = fwd(
            &format!(
                "GET / HTTP/1.1\r\nHost: h\r\nConnection: {long}, x-ab\r\n{long}: 1\r\n{long_other}: 2\r\n\
                 X-Ab: 3\r\nX-Ac: 4\r\n\r\n"
            ),
            &plain(),
        );
        assert_eq!(out, format!("GET / HTTP/1.1\r\nHost: h\r\n{long_other}: 2\r\nX-Ac: 4\r\n\r\n"));
    }

    #[test]
    fn connection_cannot_strip_host_or_framing() {
        let out = fwd(
            "POST / HTTP/1.1\r\nHost: h\r\nConnection: host, content-length\r\nContent-Length: 2\r\n\r\n",
            &plain(),
        );
        assert_eq!(out, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n");
    }

    #[test]
    fn framing_is_re_emitted() {
        let out = fwd("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7, 7\r\ncontent-length: 7\r\n\r\n", &plain());
        assert_eq!(out, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n");
        let out = fwd(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            &plain(),
        );
        assert_eq!(out, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    }

    #[test]
    fn http10_request_goes_out_as_11_with_host() {
        // An empty Host is what RFC 9110 §7.2 prescribes when there is no
        // authority to name (our own parser is stricter and would refuse it).
        let out = fwd_unchecked("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &plain());
        assert_eq!(out, "GET / HTTP/1.1\r\nHost: \r\n\r\n");
        let opts = ForwardOpts { default_host: Some(b"backend:80"), ..plain() };
        let out = fwd("GET / HTTP/1.0\r\n\r\n", &opts);
        assert_eq!(out, "GET / HTTP/1.1\r\nHost: backend:80\r\n\r\n");
    }

    #[test]
    fn forwarded_headers() {
        let out = fwd(
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n\
             X-Real-IP: 6.6.6.6\r\nx-forwarded-for: 3.3.3.3\r\nX-Forwarded-Proto: https\r\n\r\n",
            &ForwardOpts::new(IP),
        );
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nHost: h\r\n\
             X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 203.0.113.7\r\n\
             X-Forwarded-Proto: http\r\nX-Real-IP: 203.0.113.7\r\n\r\n"
        );
        // Declared hop-by-hop by the client: dropped, the list starts with us.
        let out = fwd(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Forwarded-For\r\n\
             X-Forwarded-For: 1.1.1.1\r\n\r\n",
            &ForwardOpts::new(IP),
        );
        assert!(out.contains("X-Forwarded-For: 203.0.113.7\r\n"), "{out}");
        let v6 = ForwardOpts::new(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let out = fwd("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &v6);
        assert!(out.contains("X-Forwarded-For: ::1\r\n"), "{out}");
        // Without forwarding, incoming X-Forwarded-* pass untouched.
        let out = fwd("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n", &plain());
        assert_eq!(out, "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n");
    }

    #[test]
    fn upgrade_only_when_tunnelling() {
        let raw = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                   Sec-WebSocket-Key: k\r\n\r\n";
        let out = fwd(raw, &plain());
        assert_eq!(out, "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\n\r\n");
        let tunnel = ForwardOpts { upgrade: true, ..plain() };
        let out = fwd(raw, &tunnel);
        assert_eq!(
            out,
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\
             Connection: upgrade\r\n\r\n"
        );
    }

    fn back(raw: &str, method: Method, opts: &ResponseOpts) -> (String, ClientFraming) {
        let buf = raw.as_bytes();
        let head = parse_response(buf, &Limits::default(), &method).unwrap().unwrap();
        let mut out = Vec::new();
        write_response_head(buf, &head, opts, &mut out);
        let again = parse_response(&out, &Limits::default(), &method).unwrap().unwrap();
        assert_eq!(again.head_len, out.len());
        (String::from_utf8(out).unwrap(), client_framing(&head, opts))
    }

    const V11: ResponseOpts<'static> = ResponseOpts { client_minor: 1, close: false, extra: b"" };
    const V10: ResponseOpts<'static> = ResponseOpts { client_minor: 0, close: false, extra: b"" };

    #[test]
    fn response_length_and_hop_by_hop() {
        let (out, f) = back(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\n\
             Keep-Alive: timeout=5\r\nX-Hop: 1\r\nServer: s\r\n\r\n",
            Method::Get,
            &V11,
        );
        assert_eq!(out, "HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(f, ClientFraming { body: BodyKind::Length(5), close: false });
    }

    #[test]
    fn response_chunked_to_11_and_10_clients() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n";
        let (out, f) = back(raw, Method::Get, &V11);
        assert_eq!(out, "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(f, ClientFraming { body: BodyKind::Chunked, close: false });
        // HTTP/1.0 clients get the body de-chunked and delimited by close.
        let (out, f) = back(raw, Method::Get, &V10);
        assert_eq!(out, "HTTP/1.0 200 OK\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n");
        assert_eq!(f, ClientFraming { body: BodyKind::CloseDelimited, close: true });
    }

    #[test]
    fn response_close_delimited_and_keep_alive_for_10() {
        let (out, f) = back("HTTP/1.0 200 OK\r\nServer: s\r\n\r\n", Method::Get, &V11);
        assert_eq!(out, "HTTP/1.1 200 OK\r\nServer: s\r\nConnection: close\r\n\r\n");
        assert!(f.close);
        let (out, f) = back("HTTP/1.1 204 No Content\r\n\r\n", Method::Get, &V10);
        assert_eq!(out, "HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n");
        assert!(!f.close);
        let close = ResponseOpts { close: true, ..V11 };
        let (out, _) = back("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Method::Get, &close);
        assert_eq!(out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn response_head_and_304_keep_content_length() {
        let (out, f) = back(
            "HTTP/1.1 200 OK\r\nContent-Length: 42\r\nTransfer-Encoding: chunked\r\n\r\n"
                .replace("Transfer-Encoding: chunked\r\n", "")
                .as_str(),
            Method::Head,
            &V11,
        );
        assert_eq!(out, "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n");
        assert_eq!(f.body, BodyKind::None);
        let (out, _) = back("HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n", Method::Get, &V11);
        assert_eq!(out, "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n");
    }

    #[test]
    fn response_extra_and_reason() {
        let opts = ResponseOpts { extra: b"Set-Cookie: lb=s1; Path=/\r\n", ..V11 };
        let (out, _) = back("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", Method::Get, &opts);
        assert_eq!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nSet-Cookie: lb=s1; Path=/\r\n\r\n");
    }

    #[test]
    fn response_101_keeps_upgrade() {
        let raw = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Accept: a\r\n\r\n";
        let (out, _) = back(raw, Method::Get, &V11);
        assert_eq!(
            out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\
             Connection: upgrade\r\n\r\n"
        );
        let (out, _) = back("HTTP/1.1 100 Continue\r\n\r\n", Method::Post, &V11);
        assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn chunk_framing() {
        let mut out = Vec::new();
        write_chunk_header(&mut out, 4096);
        write_chunk_header(&mut out, 1);
        assert_eq!(out, b"1000\r\n1\r\n");
        assert_eq!(CHUNK_END, [CHUNK_LAST, CRLF].concat());
    }
}
