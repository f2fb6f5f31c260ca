//! `fastlb demo`: built-in demo backends, so a newcomer sees traffic spread
//! across servers with nothing else installed. Each backend answers `GET /`
//! with its id (`server-1`, …) and `GET /health` with JSON. They run on
//! plain threads (one per connection): demo scale, off the data-path cores.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A running demo backend.
pub struct DemoBackend {
    pub id: String,
    pub addr: SocketAddr,
    pub connections: Arc<AtomicU64>,
}

/// Starts a demo backend called `id` on 127.0.0.1 with an OS-chosen port.
pub fn start_backend(id: &str) -> io::Result<DemoBackend> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let connections = Arc::new(AtomicU64::new(0));
    let (id_owned, conns) = (id.to_string(), Arc::clone(&connections));
    std::thread::Builder::new().name(format!("demo-{id}")).spawn(move || {
        for stream in listener.incoming().flatten() {
            let (id, conns) = (id_owned.clone(), Arc::clone(&conns));
            let _ = std::thread::Builder::new().spawn(move || {
                conns.fetch_add(1, Ordering::Relaxed);
                let _ = serve(stream, &id, &conns);
                conns.fetch_sub(1, Ordering::Relaxed);
            });
        }
    })?;
    Ok(DemoBackend { id: id.to_string(), addr, connections })
}

fn serve(stream: TcpStream, id: &str, conns: &AtomicU64) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let http10 = line.trim_end().ends_with("HTTP/1.0");
        let mut length = 0u64;
        let mut close = http10;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                if name == "content-length" {
                    length = value.parse().unwrap_or(0);
                } else if name == "connection" {
                    close = value.eq_ignore_ascii_case("close");
                }
            }
        }
        io::copy(&mut (&mut reader).take(length), &mut io::sink())?;
        let (ctype, body) = if path == "/health" {
            let c = conns.load(Ordering::Relaxed);
            ("application/json", format!(r#"{{"status":"healthy","server_id":"{id}","connections":{c}}}"#))
        } else {
            ("text/plain", format!("{id}\n"))
        };
        let conn = if close { "close" } else { "keep-alive" };
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nX-Server-Id: {id}\r\nConnection: {conn}\r\n\r\n{body}",
            body.len()
        )?;
        if close {
            return Ok(());
        }
    }
}
