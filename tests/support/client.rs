//! A raw HTTP/1.1 client: write any bytes, read framed responses. Every
//! read has a timeout, so a proxy that stalls fails the test instead of
//! hanging it.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use super::wire::{Head, Wire};

/// Longest wait for any single read or write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub head: Head,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.get(name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The backend id that answered (`x-backend`), or "" when absent.
    pub fn backend(&self) -> &str {
        self.header("x-backend").unwrap_or_default()
    }

    /// Has `connection: close`.
    pub fn says_close(&self) -> bool {
        self.head.has_token("connection", "close")
    }

    /// How the body was framed on the wire.
    pub fn is_chunked(&self) -> bool {
        self.head.is_chunked()
    }
}

/// Whether a response to `method` with `status` has a body at all.
pub fn has_body(method: &str, status: u16) -> bool {
    !(method.eq_ignore_ascii_case("HEAD") || (100..200).contains(&status) || status == 204 || status == 304)
}

pub struct Client {
    pub wire: Wire,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream =
            TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap_or_else(|e| panic!("connect to proxy {addr}: {e}"));
        Client::from_stream(stream)
    }

    /// Like `connect`, but a refused or timed-out connect is returned.
    pub fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).map(Client::from_stream)
    }

    /// Connects from a chosen local address (e.g. 127.0.0.7), for ip_hash.
    pub fn connect_from(local: IpAddr, addr: SocketAddr) -> Client {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        sock.bind(&SocketAddr::new(local, 0).into()).unwrap_or_else(|e| panic!("bind client to {local}: {e}"));
        sock.connect_timeout(&addr.into(), IO_TIMEOUT).unwrap_or_else(|e| panic!("connect {local} -> {addr}: {e}"));
        Client::from_stream(sock.into())
    }

    fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { wire: Wire::new(stream) }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.wire.write_all(bytes).unwrap_or_else(|e| panic!("write to proxy: {e}"));
    }

    /// Like `send`, but a failure (the proxy already closed) is returned.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.write_all(bytes)
    }

    /// The next response head, body not read. Err on EOF/timeout/garbage.
    pub fn try_read_head(&mut self) -> io::Result<Response> {
        let head = self
            .wire
            .read_head()?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "proxy closed before any response byte"))?;
        let mut parts = head.start_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_string();
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| super::wire::invalid(format!("bad status line {:?}", head.start_line)))?;
        Ok(Response { version, status, head, body: Vec::new(), trailers: Vec::new() })
    }

    /// Streams the body of `resp` (a response to `method`) into `sink`.
    pub fn read_body_with(&mut self, resp: &mut Response, method: &str, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        if !has_body(method, resp.status) {
            return Ok(());
        }
        if resp.head.is_chunked() {
            resp.trailers = self.wire.read_chunked_with(sink)?;
        } else if let Some(n) = resp.head.content_length() {
            self.wire.read_n_with(n, sink)?;
        } else {
            self.wire.read_to_end_with(sink)?;
        }
        Ok(())
    }

    /// One complete response (1xx included) to a request with `method`.
    pub fn try_read_response_to(&mut self, method: &str) -> io::Result<Response> {
        let mut resp = self.try_read_head()?;
        let mut body = Vec::new();
        self.read_body_with(&mut resp, method, &mut |b| body.extend_from_slice(b))?;
        resp.body = body;
        Ok(resp)
    }

    pub fn read_response_to(&mut self, method: &str) -> Response {
        self.try_read_response_to(method).unwrap_or_else(|e| panic!("reading a response to {method}: {e}"))
    }

    /// One complete response to a request that is not HEAD.
    pub fn read_response(&mut self) -> Response {
        self.read_response_to("GET")
    }

    pub fn try_read_response(&mut self) -> io::Result<Response> {
        self.try_read_response_to("GET")
    }

    /// Sends a request with `Host: test` and optional body (Content-Length
    /// added when non-empty or for POST/PUT) and reads the answer.
    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.send(&request_bytes(method, path, headers, body));
        self.read_response_to(method)
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// True when the proxy closes the connection within 5 s (EOF or reset).
    pub fn is_closed(&mut self) -> bool {
        self.wire.closed_within(Duration::from_secs(5))
    }
}

pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: test\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One GET on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Client::connect(addr).get(path)
}

/// One GET with extra headers on a fresh connection.
pub fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    Client::connect(addr).request("GET", path, headers, b"")
}
