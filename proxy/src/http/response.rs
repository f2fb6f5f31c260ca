//! Response heads from backends, held to the same rules as requests: a
//! backend that frames ambiguously could desynchronise the client
//! connection as easily as a client could. Every violation is
//! `HttpError::BadRequest(reason)`, which the proxy answers with 502.

use std::mem::MaybeUninit;

use super::error::{HttpError, Limits};
use super::fields::{self, Header, STACK_HEADERS, Span, collect_headers, scan_fields};
use super::request::{BodyKind, Method};

/// A parsed, validated response head. Spans index the buffer passed to
/// [`parse_response`].
///
/// 1xx responses other than 101 are interim: forward them (never to an
/// HTTP/1.0 client, RFC 9110 §15.2) and parse the next head after `head_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// 100–599.
    pub status: u16,
    /// 0 or 1; HTTP/1.2…1.9 count as 1.
    pub minor_version: u8,
    /// The reason phrase as sent (may be empty).
    pub reason: Span,
    pub headers: Vec<Header>,
    /// Bytes of the head including the final CRLF; the body starts here.
    pub head_len: usize,
    /// How the body ends, given the request method and the status
    /// (RFC 9112 §6.3): HEAD, 1xx, 204 and 304 have none whatever the fields
    /// say; then chunked; then Content-Length; else close-delimited.
    pub body: BodyKind,
    /// The Content-Length field value, kept even when `body` is `None`
    /// because for HEAD and 304 it describes the representation and is
    /// forwarded as is.
    pub content_length: Option<u64>,
    /// Whether the backend connection can be reused after this response:
    /// 1.1 unless `Connection: close`, 1.0 only with `Connection:
    /// keep-alive`, and never after a close-delimited body.
    pub keep_alive: bool,
    /// 101 Switching Protocols: the connection becomes a tunnel.
    pub upgrade: bool,
    /// The head may go to an HTTP/1.1 client that keeps its connection
    /// exactly as received: a final `HTTP/1.1` status line with a reason
    /// phrase at the start of the buffer, and only end-to-end fields besides
    /// one canonical Content-Length and `Connection: keep-alive` (which says
    /// what the proxy does with that client anyway, RFC 9110 §7.6.1). The
    /// rewritten head would differ only in where Content-Length stands and
    /// in the whitespace around field values, which it normalises (both
    /// forms are valid HTTP/1.1 and mean the same).
    pub verbatim: bool,
}

impl ResponseHead {
    /// The first field named `name` (case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        fields::header(buf, &self.headers, name)
    }
}

/// Parses and validates a response head at the start of `buf`;
/// `request_method` is the method of the request it answers (HEAD responses
/// have no body). `Ok(None)`: incomplete, read more.
pub fn parse_response(buf: &[u8], limits: &Limits, request_method: &Method) -> Result<Option<ResponseHead>, HttpError> {
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
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, window, slots);
    let (status, minor, head_len, headers) = match parsed {
        Ok(httparse::Status::Complete(head_len)) => {
            let (Some(status), Some(minor)) = (resp.code, resp.version) else {
                return Err(HttpError::BadRequest("invalid status line"));
            };
            let headers = collect_headers(buf, resp.headers, head_len).map_err(upstream)?;
            (status, minor, head_len, headers)
        }
        Ok(httparse::Status::Partial) => return incomplete(window, buf.len()),
        Err(httparse::Error::Version) => match parse_other_version(window, limits)? {
            Some(p) => p,
            None => return incomplete(window, buf.len()),
        },
        Err(e) => return Err(upstream(fields::map_httparse_error(e))),
    };
    finish(buf, status, minor, head_len, headers, request_method).map(Some)
}

/// Any error from a backend is a 502 for the client; keep the reason.
fn upstream(e: HttpError) -> HttpError {
    match e {
        HttpError::BadRequest(r) | HttpError::NotImplemented(r) => HttpError::BadRequest(r),
        HttpError::HeadTooLarge => HttpError::BadRequest("response head too large"),
        HttpError::VersionNotSupported => HttpError::BadRequest("unsupported HTTP version"),
        HttpError::UriTooLong | HttpError::MethodNotAllowed => HttpError::BadRequest("invalid response"),
    }
}

fn incomplete(window: &[u8], buf_len: usize) -> Result<Option<ResponseHead>, HttpError> {
    if buf_len > window.len() {
        return Err(upstream(HttpError::HeadTooLarge));
    }
    Ok(None)
}

/// The status line when httparse rejected the version: `HTTP/1.x` (x ≥ 2)
/// counts as 1.1, anything else is an error. Rare, so it may allocate.
type Tokens = (u16, u8, usize, Vec<Header>);
fn parse_other_version(window: &[u8], limits: &Limits) -> Result<Option<Tokens>, HttpError> {
    const BAD: HttpError = HttpError::BadRequest("invalid status line");
    let mut i = 0;
    while window[i..].starts_with(b"\r\n") {
        i += 2;
    }
    let line = &window[i..];
    // "HTTP/1.x ddd" then " reason" or nothing, then CRLF.
    let want = b"HTTP/1.d ddd";
    for (k, &b) in line.iter().take(want.len()).enumerate() {
        let ok = match want[k] {
            b'd' => b.is_ascii_digit(),
            w => b == w,
        };
        if !ok {
            return Err(BAD);
        }
    }
    let Some(nl) = line.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    if nl < want.len() + 1 || line[nl - 1] != b'\r' {
        return Err(BAD);
    }
    let after_code = &line[want.len()..nl - 1];
    let reason_ok = match after_code {
        [] => true,
        [b' ', reason @ ..] => {
            reason.iter().all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
        }
        _ => false,
    };
    if !reason_ok {
        return Err(BAD);
    }
    let code = &line[9..12];
    let status = code.iter().fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    let line_end = i + nl + 1;
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let (len, parsed) = match httparse::parse_headers(&window[line_end..], &mut slots) {
        Ok(httparse::Status::Complete(c)) => c,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(upstream(fields::map_httparse_error(e))),
    };
    let head_len = line_end + len;
    let headers = collect_headers(window, parsed, head_len).map_err(upstream)?;
    Ok(Some((status, 1, head_len, headers)))
}

fn finish(
    buf: &[u8],
    status: u16,
    minor: u8,
    head_len: usize,
    headers: Vec<Header>,
    request_method: &Method,
) -> Result<ResponseHead, HttpError> {
    // The status line starts after any empty lines; they must be CRLF too.
    let mut line_start = 0;
    while buf[line_start..].starts_with(b"\r\n") {
        line_start += 2;
    }
    if !buf[line_start..].starts_with(b"HTTP/") {
        return Err(HttpError::BadRequest("line not terminated by CRLF"));
    }
    if !(100..=599).contains(&status) {
        return Err(HttpError::BadRequest("status code out of range"));
    }
    let info = scan_fields(buf, &headers).map_err(upstream)?;
    if info.te_present {
        if minor == 0 {
            return Err(HttpError::BadRequest("Transfer-Encoding in HTTP/1.0"));
        }
        // We re-emit the framing ourselves and only understand chunked: a
        // compressing transfer coding could not be passed on faithfully.
        if info.te_other {
            return Err(HttpError::BadRequest("unsupported transfer coding"));
        }
    }
    let no_body = *request_method == Method::Head || (100..200).contains(&status) || status == 204 || status == 304;
    let body = if no_body {
        BodyKind::None
    } else if info.te_present {
        BodyKind::Chunked
    } else if let Some(n) = info.content_length {
        BodyKind::Length(n)
    } else {
        BodyKind::CloseDelimited
    };
    let keep_alive = body != BodyKind::CloseDelimited
        && if minor == 1 { !info.conn_close } else { info.conn_keep_alive && !info.conn_close };
    // "HTTP/1.x SP ddd" is 12 bytes; the reason follows after one SP.
    let nl = buf[line_start..].iter().position(|&b| b == b'\n').map_or(line_start, |p| line_start + p);
    let reason = if nl > line_start + 13 {
        Span::new(line_start + 13, nl - 1)
    } else {
        Span::new(line_start + 12, line_start + 12)
    };
    let verbatim =
        line_start == 0 && buf.starts_with(b"HTTP/1.1 ") && !reason.is_empty() && status >= 200 && !info.rewrite;
    Ok(ResponseHead {
        verbatim,
        status,
        minor_version: minor,
        reason,
        headers,
        head_len,
        body,
        content_length: info.content_length,
        keep_alive,
        upgrade: status == 101,
    })
}
