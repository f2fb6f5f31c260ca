//! The errors that end a client exchange, the size limits that trigger some of
//! them, and the small fixed error responses the proxy sends.

use crate::config::ListenerLimits;

/// An error that ends the client exchange with a status, then the connection
/// is closed: after a framing error we no longer know where the next message
/// starts, so keeping the connection would invite request smuggling.
///
/// For responses from a backend every violation is reported as
/// [`HttpError::BadRequest`], which the proxy maps to 502.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// 400: the message breaks RFC 9110/9112; the text says which rule.
    #[error("400 Bad Request: {0}")]
    BadRequest(&'static str),
    /// 414: the request-target is longer than `max_uri_length`.
    #[error("414 URI Too Long")]
    UriTooLong,
    /// 431: the head is larger than `max_head_size` or has more than
    /// `max_headers` field lines.
    #[error("431 Request Header Fields Too Large")]
    HeadTooLarge,
    /// 405: CONNECT (authority-form); fastlb is not a forward proxy.
    #[error("405 Method Not Allowed")]
    MethodNotAllowed,
    /// 501: a transfer coding we do not implement (RFC 9112 §6.1).
    #[error("501 Not Implemented: {0}")]
    NotImplemented(&'static str),
    /// 505: an HTTP major version other than 1.
    #[error("505 HTTP Version Not Supported")]
    VersionNotSupported,
}

impl HttpError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::UriTooLong => 414,
            HttpError::HeadTooLarge => 431,
            HttpError::MethodNotAllowed => 405,
            HttpError::NotImplemented(_) => 501,
            HttpError::VersionNotSupported => 505,
        }
    }

    /// The standard reason phrase of [`HttpError::status`].
    pub fn reason(&self) -> &'static str {
        reason_phrase(self.status())
    }

    /// The complete response to send before closing (see [`error_response`]).
    pub fn response(&self) -> &'static [u8] {
        error_response(self.status())
    }
}

/// Size limits on a head; a copy of the relevant part of
/// [`ListenerLimits`] so the parser does not depend on the whole config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest head (start line + fields + final CRLF) in bytes. Default 64 KiB.
    pub max_head_size: usize,
    /// Most field lines in one head. Default 100.
    pub max_headers: usize,
    /// Longest request-target in bytes. Default 8 KiB.
    pub max_uri_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head_size: 64 * 1024, max_headers: 100, max_uri_length: 8 * 1024 }
    }
}

impl From<&ListenerLimits> for Limits {
    fn from(l: &ListenerLimits) -> Self {
        Limits { max_head_size: l.max_head_size, max_headers: l.max_headers, max_uri_length: l.max_uri_length }
    }
}

/// The reason phrase for the statuses fastlb itself generates, and the
/// common ones it may need to fill in; "Unknown" otherwise.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// One complete error response, e.g.
/// `HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 12\r\nconnection: close\r\n\r\nBad Gateway\n`.
///
/// Statuses outside the fixed set get a 500 Internal Server Error.
pub fn error_response(status: u16) -> &'static [u8] {
    // Built with concat! so sending an error never allocates or formats;
    // the literal lengths are checked by `error_responses_are_well_formed`.
    macro_rules! r {
        ($code:literal, $reason:literal, $len:literal) => {
            concat!(
                "HTTP/1.1 ",
                $code,
                " ",
                $reason,
                "\r\ncontent-type: text/plain\r\ncontent-length: ",
                $len,
                "\r\nconnection: close\r\n\r\n",
                $reason,
                "\n"
            )
            .as_bytes()
        };
    }
    match status {
        400 => r!("400", "Bad Request", "12"),
        403 => r!("403", "Forbidden", "10"),
        404 => r!("404", "Not Found", "10"),
        405 => r!("405", "Method Not Allowed", "19"),
        408 => r!("408", "Request Timeout", "16"),
        411 => r!("411", "Length Required", "16"),
        413 => r!("413", "Content Too Large", "18"),
        414 => r!("414", "URI Too Long", "13"),
        417 => r!("417", "Expectation Failed", "19"),
        429 => r!("429", "Too Many Requests", "18"),
        431 => r!("431", "Request Header Fields Too Large", "32"),
        501 => r!("501", "Not Implemented", "16"),
        502 => r!("502", "Bad Gateway", "12"),
        503 => r!("503", "Service Unavailable", "20"),
        504 => r!("504", "Gateway Timeout", "16"),
        505 => r!("505", "HTTP Version Not Supported", "27"),
        _ => r!("500", "Internal Server Error", "22"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_are_well_formed() {
        for status in [400, 403, 404, 405, 408, 411, 413, 414, 417, 429, 431, 500, 501, 502, 503, 504, 505] {
            let resp = error_response(status);
            let text = std::str::from_utf8(resp).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with(&format!("HTTP/1.1 {status} {}", reason_phrase(status))));
            assert_eq!(body, format!("{}\n", reason_phrase(status)));
            let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().parse().unwrap();
            assert_eq!(len, body.len(), "status {status}");
            assert!(head.ends_with("connection: close"));
        }
        // Anything else falls back to a well-formed 500.
        assert!(error_response(599).starts_with(b"HTTP/1.1 500 "));
    }

    #[test]
    fn limits_from_config() {
        let l = Limits::from(&ListenerLimits::default());
        assert_eq!(l, Limits::default());
    }

    #[test]
    fn statuses_and_reasons() {
        assert_eq!(HttpError::BadRequest("x").status(), 400);
        assert_eq!(HttpError::UriTooLong.status(), 414);
        assert_eq!(HttpError::HeadTooLarge.status(), 431);
        assert_eq!(HttpError::MethodNotAllowed.status(), 405);
        assert_eq!(HttpError::NotImplemented("x").status(), 501);
        assert_eq!(HttpError::VersionNotSupported.status(), 505);
        assert_eq!(HttpError::HeadTooLarge.reason(), "Request Header Fields Too Large");
        assert!(HttpError::UriTooLong.response().starts_with(b"HTTP/1.1 414 URI Too Long\r\n"));
    }
}
