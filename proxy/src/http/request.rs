//! Request heads: httparse tokenizes, then every RFC 9110/9112 rule httparse
//! does not enforce is checked here, because a proxy that is more lenient
//! than the backend behind it is a request-smuggling hole.

use std::mem::MaybeUninit;

use super::error::{HttpError, Limits};
use super::fields::{
    self, FieldInfo, Header, STACK_HEADERS, Span, URI_CHAR, collect_headers, is_authority, map_httparse_error,
    pct_encodings_valid, scan_fields,
};

/// The request method. Methods are case-sensitive (RFC 9110 §9.1), so `get`
/// is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Trace,
    Patch,
    /// Never in a parsed request (rejected with 405); kept so callers can
    /// describe what they sent upstream.
    Connect,
    /// Any other token; its bytes are at `RequestHead::method_range`.
    Other,
}

impl Method {
    pub fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// Whether a retry on another backend cannot change the outcome
    /// (RFC 9110 §9.2.2): GET HEAD OPTIONS TRACE PUT DELETE.
    pub fn is_idempotent(&self) -> bool {
        matches!(self, Method::Get | Method::Head | Method::Options | Method::Trace | Method::Put | Method::Delete)
    }
}

/// Which of the request-target forms of RFC 9112 §3.2 was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`.
    Origin,
    /// `http://authority/path?query`; forwarded in origin-form with the
    /// authority as Host. `path` is empty or starts with '/' or '?'.
    Absolute { authority: Span, path: Span },
    /// `*`, only with OPTIONS.
    Asterisk,
}

/// How the end of a message body is found (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all.
    None,
    /// Exactly this many bytes. `Length(0)` is kept apart from `None` because
    /// it is forwarded as `Content-Length: 0` (a POST without it may get 411).
    Length(u64),
    /// Chunked transfer coding; decode with `ChunkedDecoder`.
    Chunked,
    /// Responses only: the body runs until the backend closes.
    CloseDelimited,
}

/// A parsed, validated request head. Spans index the buffer passed to
/// [`parse_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    pub method_range: Span,
    /// The request-target as sent.
    pub target: Span,
    pub target_form: TargetForm,
    /// 0 or 1; HTTP/1.2…1.9 are answered as 1.1 (RFC 9110 §6.2).
    pub minor_version: u8,
    pub headers: Vec<Header>,
    /// Bytes of the head including the final CRLF; the body starts here.
    pub head_len: usize,
    pub body: BodyKind,
    /// Where the request is going: the authority of an absolute-form target
    /// (which overrides Host, RFC 9112 §3.2.2), else the Host field value.
    /// `None` only for HTTP/1.0 requests without Host.
    pub host: Option<Span>,
    /// HTTP/1.1: true unless `Connection: close`. HTTP/1.0: only with
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
    /// An Upgrade field and `Connection: upgrade` (never for HTTP/1.0, whose
    /// Upgrade must be ignored, RFC 9110 §7.8).
    pub upgrade: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

impl RequestHead {
    /// The first field named `name` (case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        fields::header(buf, &self.headers, name)
    }

    /// The path and query to send upstream in origin-form.
    pub fn path<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        match self.target_form {
            TargetForm::Absolute { path, .. } => path.get(buf),
            _ => self.target.get(buf),
        }
    }
}

/// Parses and validates a request head at the start of `buf`.
///
/// `Ok(None)`: incomplete, read more and call again with the grown buffer.
/// Size limits are enforced even while incomplete: 414 as soon as the
/// request-target seen so far is longer than `max_uri_length`, 431 as soon
/// as `max_head_size` bytes hold no complete head or `max_headers` is
/// exceeded. Bytes after the head (`head_len..`) are not looked at.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<RequestHead>, HttpError> {
    // Only the first `max_head_size` bytes can hold an acceptable head, so
    // only those are parsed: the work per call stays bounded.
    let max_head = limits.max_head_size.min(u32::MAX as usize);
    let window = &buf[..buf.len().min(max_head)];

    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap.reserve_exact(limits.max_headers);
        &mut heap.spare_capacity_mut()[..limits.max_headers]
    };
    let mut req = httparse::Request::new(&mut []);
    let parsed = match req.parse_with_uninit_headers(window, slots) {
        Ok(httparse::Status::Complete(head_len)) => {
            // On Complete, httparse has filled all three.
            let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
                return Err(HttpError::BadRequest("invalid request line"));
            };
            Parsed {
                method: Span::of(buf, method.as_bytes()),
                target: Span::of(buf, target.as_bytes()),
                minor,
                head_len,
                headers: collect_headers(buf, req.headers, head_len)?,
            }
        }
        Ok(httparse::Status::Partial) => return incomplete(window, buf.len(), limits),
        // httparse knows only HTTP/1.0 and 1.1; other versions need a look.
        Err(httparse::Error::Version) => match parse_other_version(window, limits)? {
            Some(p) => p,
            None => return incomplete(window, buf.len(), limits),
        },
        Err(e) => {
            // A too-long target is the more useful answer if that is also
            // what is wrong.
            check_partial_target(window, limits)?;
            return Err(map_httparse_error(e));
        }
    };
    finish(buf, parsed, limits).map(Some)
}

/// What tokenizing produced, before validation.
struct Parsed {
    method: Span,
    target: Span,
    minor: u8,
    head_len: usize,
    headers: Vec<Header>,
}

fn incomplete(window: &[u8], buf_len: usize, limits: &Limits) -> Result<Option<RequestHead>, HttpError> {
    check_partial_target(window, limits)?;
    if buf_len > window.len() {
        return Err(HttpError::HeadTooLarge);
    }
    Ok(None)
}

/// 414 as soon as the request-target received so far is too long, so a
/// client cannot make us buffer up to `max_head_size` of URI.
fn check_partial_target(window: &[u8], limits: &Limits) -> Result<(), HttpError> {
    let mut i = 0;
    while let Some(b'\r' | b'\n') = window.get(i) {
        i += 1;
    }
    let Some(sp) = window[i..].iter().position(|&b| b == b' ') else {
        return Ok(());
    };
    let rest = &window[i + sp + 1..];
    let len = rest.iter().position(|&b| matches!(b, b' ' | b'\r' | b'\n')).unwrap_or(rest.len());
    if len > limits.max_uri_length {
        return Err(HttpError::UriTooLong);
    }
    Ok(())
}

/// The request line when httparse rejected the version: `HTTP/1.x` with
/// x ≥ 2 is served as 1.1 (RFC 9110 §6.2: a recipient of a higher minor
/// version treats it as the highest it supports), another major is 505,
/// anything else 400. This path is rare, so it may allocate.
fn parse_other_version(window: &[u8], limits: &Limits) -> Result<Option<Parsed>, HttpError> {
    const BAD: HttpError = HttpError::BadRequest("invalid request line");
    let mut i = 0;
    while window[i..].starts_with(b"\r\n") {
        i += 2;
    }
    let Some(sp1) = window[i..].iter().position(|&b| b == b' ') else {
        return Ok(None);
    };
    let method = Span::new(i, i + sp1);
    if !fields::is_token(method.get(window)) {
        return Err(BAD);
    }
    i += sp1 + 1;
    let Some(sp2) = window[i..].iter().position(|&b| b == b' ') else {
        check_partial_target(window, limits)?;
        return Ok(None);
    };
    let target = Span::new(i, i + sp2);
    if target.is_empty() {
        return Err(BAD);
    }
    i += sp2 + 1;
    let version = &window[i..];
    let want = b"HTTP/d.d\r\n";
    for (k, &b) in version.iter().take(want.len()).enumerate() {
        let ok = match want[k] {
            b'd' => b.is_ascii_digit(),
            w => b == w,
        };
        if !ok {
            return Err(BAD);
        }
    }
    if version.len() < 6 {
        return Ok(None);
    }
    if version[5] != b'1' {
        return Err(HttpError::VersionNotSupported);
    }
    if version.len() < want.len() {
        return Ok(None);
    }
    let line_end = i + want.len();
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let (len, parsed) = match httparse::parse_headers(&window[line_end..], &mut slots) {
        Ok(httparse::Status::Complete(c)) => c,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(map_httparse_error(e)),
    };
    let head_len = line_end + len;
    Ok(Some(Parsed { method, target, minor: 1, head_len, headers: collect_headers(window, parsed, head_len)? }))
}

/// Applies the checks httparse does not make and derives framing.
fn finish(buf: &[u8], p: Parsed, limits: &Limits) -> Result<RequestHead, HttpError> {
    // Empty lines before the request line may be ignored (RFC 9112 §2.2),
    // but only CRLF ones.
    if !buf[..p.method.start as usize].chunks(2).all(|c| c == b"\r\n") {
        return Err(HttpError::BadRequest("line not terminated by CRLF"));
    }
    let method = Method::from_bytes(p.method.get(buf));
    if method == Method::Connect {
        return Err(HttpError::MethodNotAllowed);
    }
    if p.target.len() > limits.max_uri_length {
        return Err(HttpError::UriTooLong);
    }
    let target_form = check_target(buf, p.target, method)?;

    let info: FieldInfo = scan_fields(buf, &p.headers)?;
    if p.minor == 1 && info.host_count != 1 {
        return Err(HttpError::BadRequest("HTTP/1.1 needs exactly one Host"));
    }
    if info.host_count > 1 {
        return Err(HttpError::BadRequest("more than one Host"));
    }
    if let Some(host) = info.host
        && !is_authority(host.get(buf))
    {
        return Err(HttpError::BadRequest("invalid Host"));
    }
    if info.te_present && p.minor == 0 {
        // An HTTP/1.0 recipient could not have understood it, so a 1.0
        // message with it is treated as faulty (RFC 9112 §6.1).
        return Err(HttpError::BadRequest("Transfer-Encoding in HTTP/1.0"));
    }
    let body = if info.te_present {
        BodyKind::Chunked
    } else {
        match info.content_length {
            Some(n) => BodyKind::Length(n),
            None => BodyKind::None,
        }
    };
    let host = match target_form {
        TargetForm::Absolute { authority, .. } => Some(authority),
        _ => info.host,
    };
    let keep_alive = if p.minor == 1 { !info.conn_close } else { info.conn_keep_alive && !info.conn_close };
    Ok(RequestHead {
        method,
        method_range: p.method,
        target: p.target,
        target_form,
        minor_version: p.minor,
        headers: p.headers,
        head_len: p.head_len,
        body,
        host,
        keep_alive,
        upgrade: p.minor == 1 && info.upgrade_field && info.conn_upgrade,
        expect_continue: info.expect_continue,
    })
}

/// Classifies and validates the request-target (RFC 9112 §3.2, RFC 3986).
fn check_target(buf: &[u8], target: Span, method: Method) -> Result<TargetForm, HttpError> {
    const BAD: HttpError = HttpError::BadRequest("invalid request-target");
    let t = target.get(buf);
    if !t.iter().all(|&b| URI_CHAR[b as usize]) || !pct_encodings_valid(t) {
        return Err(BAD);
    }
    match t {
        [b'/', ..] => Ok(TargetForm::Origin),
        b"*" if method == Method::Options => Ok(TargetForm::Asterisk),
        b"*" => Err(HttpError::BadRequest("'*' target without OPTIONS")),
        _ => {
            let scheme_len = if t.len() > 7 && t[..7].eq_ignore_ascii_case(b"http://") {
                7
            } else if t.len() > 8 && t[..8].eq_ignore_ascii_case(b"https://") {
                8
            } else {
                // Authority-form is for CONNECT only (rejected earlier).
                return Err(BAD);
            };
            let rest = &t[scheme_len..];
            let auth_len = rest.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(rest.len());
            // is_authority also rejects userinfo, which http(s) URIs must
            // not carry (RFC 9110 §4.2.4).
            if !is_authority(&rest[..auth_len]) {
                return Err(BAD);
            }
            let start = target.start as usize + scheme_len;
            Ok(TargetForm::Absolute {
                authority: Span::new(start, start + auth_len),
                path: Span::new(start + auth_len, target.end as usize),
            })
        }
    }
}
