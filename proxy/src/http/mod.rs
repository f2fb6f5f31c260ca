//! Strict HTTP/1.1 message handling for the data path.
//!
//! - [`request`]: request heads — httparse tokenizes in place, then the
//!   RFC 9110/9112 rules it does not enforce are checked (target syntax,
//!   CRLF-only lines, Host, Content-Length/Transfer-Encoding conflicts).
//! - [`response`]: response heads from backends, same rules, body framing
//!   derived from the request method and status.
//! - [`chunked`]: a streaming, allocation-free chunked decoder.
//! - [`rewrite`]: the forwarded request head and the client response head,
//!   and chunk re-framing.
//! - [`fields`]: byte spans, field lookup (`header`, `cookie`).
//! - [`error`]: [`HttpError`] (status to answer with), [`Limits`], fixed
//!   error responses.
//!
//! Heads hold spans into the read buffer rather than borrowed slices, so the
//! connection keeps owning its `BytesMut` and the forwarded head is written
//! from slices of it.

pub mod chunked;
pub mod error;
pub mod fields;
pub mod request;
pub mod response;
pub mod rewrite;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

pub use chunked::{Chunk, ChunkedDecoder, MAX_CHUNK_LINE, MAX_TRAILERS};
pub use error::{HttpError, Limits, error_response, reason_phrase};
pub use fields::{Header, Span, cookie, header, header_values, list_items, recycle_headers};
pub use request::{BodyKind, Method, RequestHead, TargetForm, parse_request};
pub use response::{ResponseHead, parse_response};
pub use rewrite::{
    CHUNK_END, CHUNK_LAST, CRLF, ClientFraming, ForwardOpts, ResponseOpts, client_framing, write_chunk_header,
    write_request_head, write_response_head,
};
