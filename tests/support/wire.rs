//! A buffered TCP connection with just enough HTTP/1.1 framing for both the
//! test client and the fake backends: heads, Content-Length, chunked, close.

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// Largest head either side accepts before calling the peer broken.
const MAX_HEAD: usize = 1 << 20;

/// A stream plus the bytes read from it but not consumed yet (pipelining,
/// bytes after a 101, …).
pub struct Wire {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

/// A parsed head: the start line and the fields in arrival order.
#[derive(Debug, Clone)]
pub struct Head {
    pub start_line: String,
    pub fields: Vec<(String, String)>,
    /// The head bytes exactly as received, CRLFCRLF included.
    pub raw: Vec<u8>,
}

impl Head {
    pub fn parse(raw: Vec<u8>) -> io::Result<Head> {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let mut lines = text.split("\r\n");
        let start_line = lines.next().unwrap_or_default().to_string();
        let mut fields = Vec::new();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(invalid(format!("field without colon: {line:?}")));
            };
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        Ok(Head { start_line, fields, raw })
    }

    /// First value of a field (name case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a field, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.fields.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_str()).collect()
    }

    /// True when a comma-separated field (Connection, Transfer-Encoding, …)
    /// lists `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).iter().flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    pub fn is_chunked(&self) -> bool {
        self.has_token("transfer-encoding", "chunked")
    }

    pub fn content_length(&self) -> Option<u64> {
        self.get("content-length").and_then(|v| v.trim().parse().ok())
    }
}

pub fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Wire {
    pub fn new(stream: TcpStream) -> Wire {
        Wire { stream, buf: Vec::with_capacity(16 * 1024), start: 0 }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes into the buffer; Ok(0) on EOF.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Bytes received but not consumed yet.
    pub fn buffered(&self) -> usize {
        self.pending().len()
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads one head. Ok(None) on EOF before any byte of it.
    pub fn read_head(&mut self) -> io::Result<Option<Head>> {
        loop {
            if let Some(end) = find(self.pending(), b"\r\n\r\n") {
                let raw = self.pending()[..end + 4].to_vec();
                self.consume(end + 4);
                return Head::parse(raw).map(Some);
            }
            if self.pending().len() > MAX_HEAD {
                return Err(invalid("head too large"));
            }
            if self.fill()? == 0 {
                if self.pending().is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF inside a head: {:?}", String::from_utf8_lossy(self.pending())),
                ));
            }
        }
    }

    /// Reads one CRLF-terminated line (without the CRLF).
    pub fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(self.pending(), b"\r\n") {
                let line = self.pending()[..end].to_vec();
                self.consume(end + 2);
                return Ok(line);
            }
            if self.pending().len() > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF inside a line"));
            }
        }
    }

    /// Exactly `n` bytes, handed to `sink` piece by piece.
    pub fn read_n_with(&mut self, mut n: u64, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        while n > 0 {
            if self.pending().is_empty() && self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF with {n} body bytes still expected"),
                ));
            }
            let take = self.pending().len().min(usize::try_from(n).unwrap_or(usize::MAX));
            sink(&self.pending()[..take]);
            self.consume(take);
            n -= take as u64;
        }
        Ok(())
    }

    pub fn read_n(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        self.read_n_with(n as u64, &mut |b| out.extend_from_slice(b))?;
        Ok(out)
    }

    /// Everything until EOF.
    pub fn read_to_end_with(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        loop {
            if !self.pending().is_empty() {
                sink(self.pending());
                let n = self.pending().len();
                self.consume(n);
            }
            if self.fill()? == 0 {
                return Ok(());
            }
        }
    }

    /// A chunked body; returns the trailer fields.
    pub fn read_chunked_with(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<Vec<(String, String)>> {
        loop {
            let line = self.read_line()?;
            let line = String::from_utf8_lossy(&line).into_owned();
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size =
                u64::from_str_radix(size_text, 16).map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    let t = self.read_line()?;
                    if t.is_empty() {
                        return Ok(trailers);
                    }
                    let t = String::from_utf8_lossy(&t).into_owned();
                    let (n, v) = t.split_once(':').ok_or_else(|| invalid("bad trailer"))?;
                    trailers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            self.read_n_with(size, sink)?;
            if !self.read_line()?.is_empty() {
                return Err(invalid("chunk data not followed by CRLF"));
            }
        }
    }

    /// Waits up to `wait` for the peer to close. True on EOF or reset; false
    /// when bytes arrive or the wait runs out.
    pub fn closed_within(&mut self, wait: std::time::Duration) -> bool {
        if !self.pending().is_empty() {
            return false;
        }
        let old = self.stream.read_timeout().ok().flatten();
        let _ = self.stream.set_read_timeout(Some(wait));
        let mut byte = [0u8; 1];
        let closed = match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => {
                self.buf.push(byte[0]);
                false
            }
            Err(e) => matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted),
        };
        let _ = self.stream.set_read_timeout(old);
        closed
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
