//! A streaming decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! It is a byte-level state machine so any split of the input works and
//! nothing is buffered or allocated: data is handed out as sub-slices of the
//! input. It is strict where leniency lets two parsers disagree about where
//! a body ends: only CRLF ends a line, the size is bounded, and trailer
//! fields are validated like header fields.

use super::error::HttpError;
use super::fields::TCHAR;

/// Longest chunk-size line (size, extensions, CRLF); extensions are
/// skipped, so this only bounds the work spent on them.
pub const MAX_CHUNK_LINE: u32 = 4096;
/// Largest trailer section (field lines with their CRLFs).
pub const MAX_TRAILERS: u32 = 64 * 1024;
/// At most 16 hex digits: every u64 size fits, and a longer run of digits is
/// an overflow attempt.
const MAX_SIZE_DIGITS: u8 = 16;

/// A piece of decoded output, borrowed from the input of one `decode` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Body data.
    Data(&'a [u8]),
    /// Raw, validated trailer field lines, possibly in several pieces.
    /// Concatenated, the pieces are the whole trailer section: each field
    /// line with its CRLF, the final empty line excluded. To forward, write
    /// `CHUNK_LAST`, these bytes, then CRLF.
    Trailers(&'a [u8]),
    /// The body is complete (after the final CRLF).
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of the chunk size.
    Size,
    /// Whitespace after the size; only a ';' may follow (BWS of chunk-ext).
    SizeWs,
    /// Inside chunk extensions, skipped up to CR.
    Ext,
    /// Expecting the LF of the size line.
    SizeLf,
    /// `remaining` bytes of chunk data left.
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// Expecting the LF of the final empty line.
    FinalLf,
    Done,
}

/// Decodes one chunked body. Create one per message.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size being parsed, then the bytes left in the current chunk.
    remaining: u64,
    digits: u8,
    /// Bytes of the current size line so far.
    line_len: u32,
    /// Bytes of the trailer section so far.
    trailer_len: u32,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

fn bad(reason: &'static str) -> HttpError {
    HttpError::BadRequest(reason)
}

/// Bytes allowed in a field value or chunk extension: HTAB, SP, VCHAR,
/// obs-text; no other control characters (so no bare CR or LF).
fn is_text(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder { state: State::Size, remaining: 0, digits: 0, line_len: 0, trailer_len: 0 }
    }

    /// Whether the whole body, trailers included, has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`, handing out data and trailer pieces to `sink`
    /// (and `Chunk::End` once). Returns how many bytes were consumed: all of
    /// `input` unless the body ended inside it, in which case the bytes after
    /// the end belong to the next message. After the end, consumes nothing.
    ///
    /// On error the body is unusable and the connection must be closed;
    /// pieces handed out before the error are not retracted.
    pub fn decode(&mut self, input: &[u8], sink: &mut impl FnMut(Chunk<'_>)) -> Result<usize, HttpError> {
        let mut i = 0;
        // Start of the trailer bytes not yet handed out, within `input`.
        let mut trailer_from: Option<usize> = None;
        while i < input.len() {
            if self.state == State::Data {
                let avail = (input.len() - i) as u64;
                let n = self.remaining.min(avail) as usize;
                sink(Chunk::Data(&input[i..i + n]));
                i += n;
                self.remaining -= n as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = input[i];
            match self.state {
                State::Size | State::SizeWs | State::Ext => {
                    self.line_len += 1;
                    if self.line_len > MAX_CHUNK_LINE {
                        return Err(bad("chunk size line too long"));
                    }
                    self.size_line_byte(b)?;
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(bad("chunk size line not terminated by CRLF"));
                    }
                    self.line_len = 0;
                    self.digits = 0;
                    self.state = if self.remaining == 0 { State::TrailerStart } else { State::Data };
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(bad("chunk data not followed by CRLF"));
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(bad("chunk data not followed by CRLF"));
                    }
                    self.state = State::Size;
                }
                State::TrailerStart if b == b'\r' => {
                    if let Some(from) = trailer_from.take() {
                        sink(Chunk::Trailers(&input[from..i]));
                    }
                    self.state = State::FinalLf;
                }
                State::TrailerStart | State::TrailerName | State::TrailerValue | State::TrailerLf => {
                    self.trailer_len += 1;
                    if self.trailer_len > MAX_TRAILERS {
                        return Err(bad("trailer section too large"));
                    }
                    trailer_from.get_or_insert(i);
                    self.trailer_byte(b)?;
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err(bad("trailer section not terminated by CRLF"));
                    }
                    self.state = State::Done;
                    sink(Chunk::End);
                    return Ok(i + 1);
                }
                State::Done => return Ok(i),
                State::Data => unreachable!("handled above"),
            }
            i += 1;
        }
        if let Some(from) = trailer_from {
            sink(Chunk::Trailers(&input[from..i]));
        }
        Ok(i)
    }

    /// One byte of `chunk-size [ chunk-ext ] CRLF`.
    fn size_line_byte(&mut self, b: u8) -> Result<(), HttpError> {
        match (self.state, b) {
            (State::Size, _) if b.is_ascii_hexdigit() => {
                self.digits += 1;
                if self.digits > MAX_SIZE_DIGITS {
                    return Err(bad("chunk size too large"));
                }
                // At most 16 digits, so this cannot overflow.
                self.remaining = (self.remaining << 4) | u64::from(hex_value(b));
            }
            (State::Size, _) if self.digits == 0 => return Err(bad("missing chunk size")),
            (State::Size, b';') | (State::SizeWs, b';') => self.state = State::Ext,
            (State::Size, b' ' | b'\t') | (State::SizeWs, b' ' | b'\t') => {
                self.state = State::SizeWs;
            }
            (State::Size, b'\r') | (State::Ext, b'\r') => self.state = State::SizeLf,
            (State::Ext, _) if is_text(b) => {}
            _ => return Err(bad("invalid chunk size line")),
        }
        Ok(())
    }

    /// One byte of a trailer field line (`field-name ":" OWS value OWS CRLF`).
    fn trailer_byte(&mut self, b: u8) -> Result<(), HttpError> {
        self.state = match (self.state, b) {
            (State::TrailerStart, _) if TCHAR[b as usize] => State::TrailerName,
            (State::TrailerStart, _) => return Err(bad("invalid trailer field")),
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerName, _) if TCHAR[b as usize] => State::TrailerName,
            (State::TrailerName, _) => return Err(bad("invalid trailer field name")),
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, _) if is_text(b) => State::TrailerValue,
            (State::TrailerValue, _) => return Err(bad("invalid trailer field value")),
            (State::TrailerLf, b'\n') => State::TrailerStart,
            _ => return Err(bad("trailer field not terminated by CRLF")),
        };
        Ok(())
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` in one call: (data, trailers, ended, consumed).
    fn run(input: &[u8]) -> Result<(Vec<u8>, Vec<u8>, bool, usize), HttpError> {
        let mut d = ChunkedDecoder::new();
        let (mut data, mut trailers, mut end) = (Vec::new(), Vec::new(), false);
        let n = d.decode(input, &mut |c| match c {
            Chunk::Data(b) => data.extend_from_slice(b),
            Chunk::Trailers(b) => trailers.extend_from_slice(b),
            Chunk::End => end = true,
        })?;
        assert_eq!(end, d.is_done());
        Ok((data, trailers, end, n))
    }

    #[test]
    fn simple_body_and_trailing_bytes() {
        let input = b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\nGET /";
        let (data, trailers, end, n) = run(input).unwrap();
        assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.");
        assert!(trailers.is_empty());
        assert!(end);
        assert_eq!(&input[n..], b"GET /");
    }

    #[test]
    fn extensions_are_skipped() {
        let input = b"3;name=value;q=\"a;b\"\r\nabc\r\n2 ; x\r\nde\r\n0;last\r\n\r\n";
        let (data, _, end, n) = run(input).unwrap();
        assert_eq!(data, b"abcde");
        assert!(end);
        assert_eq!(n, input.len());
    }

    #[test]
    fn trailers_are_reported_verbatim() {
        let input = b"1\r\na\r\n0\r\nExpires: never\r\nX-Sum:\tabc \r\n\r\n";
        let (data, trailers, end, n) = run(input).unwrap();
        assert_eq!(data, b"a");
        assert_eq!(trailers, b"Expires: never\r\nX-Sum:\tabc \r\n");
        assert!(end);
        assert_eq!(n, input.len());
    }

    #[test]
    fn byte_at_a_time() {
        let input = b"a;x=1\r\n0123456789\r\n0\r\nT: v\r\n\r\n";
        let mut d = ChunkedDecoder::new();
        let (mut data, mut trailers) = (Vec::new(), Vec::new());
        for k in 0..input.len() {
            let n = d
                .decode(&input[k..k + 1], &mut |c| match c {
                    Chunk::Data(b) => data.extend_from_slice(b),
                    Chunk::Trailers(b) => trailers.extend_from_slice(b),
                    Chunk::End => {}
                })
                .unwrap();
            assert_eq!(n, 1);
        }
        assert!(d.is_done());
        assert_eq!(data, b"0123456789");
        assert_eq!(trailers, b"T: v\r\n");
        assert_eq!(d.decode(b"more", &mut |_| {}).unwrap(), 0);
    }

    #[test]
    fn incomplete_body_is_not_done() {
        let (data, _, end, n) = run(b"5\r\nab").unwrap();
        assert_eq!((data.as_slice(), end, n), (&b"ab"[..], false, 5));
    }

    #[test]
    fn strict_line_endings() {
        for input in [
            &b"3\nabc\r\n0\r\n\r\n"[..], // bare LF after size
            b"3\r\nabc\n0\r\n\r\n",      // bare LF after data
            b"3\r\nabcX\r\n0\r\n\r\n",   // data longer than announced
            b"3\rabc\r\n0\r\n\r\n",      // bare CR
            b"0\r\n\n",                  // bare LF final line
            b"0\r\nA: b\n\r\n",          // bare LF in trailers
            b"0\r\nA: b\rc\r\n\r\n",     // bare CR in trailer value
            b"3;ext\n",                  // bare LF after extension
        ] {
            assert!(run(input).is_err(), "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn bad_sizes() {
        assert!(run(b"\r\n").is_err()); // empty size
        assert!(run(b";x\r\n").is_err()); // extension without size
        assert!(run(b"-1\r\n").is_err());
        assert!(run(b"0x10\r\n").is_err());
        assert!(run(b"1 2\r\n").is_err()); // whitespace then digit
        assert!(run(b"1 \r\n").is_err()); // BWS not followed by ';'
        assert!(run(b"FFFFFFFFFFFFFFFF\r\n").is_ok()); // 16 digits: fits
        assert!(run(b"10000000000000000\r\n").is_err()); // 17 digits
        let long_ext = [b"1;".as_slice(), &[b'a'; MAX_CHUNK_LINE as usize]].concat();
        assert!(run(&long_ext).is_err());
    }

    #[test]
    fn bad_trailers() {
        for input in [
            &b"0\r\n folded\r\n\r\n"[..], // obs-fold / leading whitespace
            b"0\r\nA : b\r\n\r\n",        // whitespace before colon
            b"0\r\n: b\r\n\r\n",          // empty name
            b"0\r\nA\r\n\r\n",            // no colon
            b"0\r\nA: \x00\r\n\r\n",      // NUL
        ] {
            assert!(run(input).is_err(), "{:?}", String::from_utf8_lossy(input));
        }
        let mut big = b"0\r\n".to_vec();
        while big.len() < MAX_TRAILERS as usize + 10 {
            big.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(run(&big).is_err());
    }
}
