//! Checks of the test harness itself (fake backends + raw client, no
//! proxy), so a failure elsewhere points at fastlb, not at the fakes.

mod support;

use support::ws::{self, OP_TEXT};
use support::{Backend, CHUNKED_BODY, Client, Mode, pattern_block, pattern_byte};

#[test]
fn sha1_and_accept_match_rfc_samples() {
    let hex: String = ws::sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(ws::base64(b"foob"), "Zm9vYg==");
    assert_eq!(ws::accept_for(ws::SAMPLE_KEY), ws::SAMPLE_ACCEPT);
}

#[test]
fn backend_endpoints_frame_correctly() {
    let b = Backend::start("b1");
    let mut c = Client::connect(b.addr);
    let r = c.get("/x");
    assert_eq!((r.status, r.text().as_str(), r.backend()), (200, "b1", "b1"));
    assert!(c.get("/echo-headers").text().starts_with("GET /echo-headers HTTP/1.1\r\n"));
    let r = c.get("/chunked");
    assert_eq!(r.text(), CHUNKED_BODY);
    assert_eq!(r.trailers, vec![("x-checksum".to_string(), "42".to_string())]);
    let r = c.request("HEAD", "/", &[], b"");
    assert!(r.body.is_empty());
    assert_eq!(c.get("/status/304").status, 304);
    let r = c.get("/download/100000");
    assert!(r.body.iter().enumerate().all(|(i, &b)| b == pattern_byte(i as u64)));
    let body = pattern_block();
    let r = c.request("POST", "/upload", &[], &body);
    assert_eq!((r.text(), r.header("x-pattern-ok")), (body.len().to_string(), Some("true")));
    assert_eq!(b.conns(), 1);
    assert_eq!(b.requests(), 7);
}

#[test]
fn backend_websocket_echo() {
    let b = Backend::start("w");
    let mut c = Client::connect(b.addr);
    let key = ws::SAMPLE_KEY;
    c.send(format!("GET /ws HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: {key}\r\nsec-websocket-version: 13\r\n\r\n").as_bytes());
    let r = c.try_read_head().unwrap();
    assert_eq!(r.status, 101);
    assert_eq!(r.header("sec-websocket-accept"), Some(ws::SAMPLE_ACCEPT));
    c.send(&ws::encode_frame(OP_TEXT, b"hi", Some([1, 2, 3, 4])));
    let f = ws::read_frame(&mut c.wire).unwrap();
    assert_eq!((f.opcode, f.masked, f.payload.as_slice()), (OP_TEXT, false, &b"hi"[..]));
}

#[test]
fn stopped_backend_refuses_and_closes() {
    let b = Backend::with_mode("n", Mode::NeverAnswer);
    let mut c = Client::connect(b.addr);
    c.send(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n");
    assert!(support::wait_until(std::time::Duration::from_secs(5), || b.requests() == 1));
    b.stop();
    assert!(c.is_closed());
    assert!(std::net::TcpStream::connect(b.addr).is_err());
}

#[test]
fn agent_fakes_share_a_port_across_loopback_addresses() {
    use std::io::Read;
    let ips: Vec<std::net::IpAddr> = vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
    let (port, agents) = support::agents_on_shared_port(&ips, "up");
    agents[1].set("drain 50%");
    let mut line = String::new();
    std::net::TcpStream::connect((ips[1], port)).unwrap().read_to_string(&mut line).unwrap();
    assert_eq!(line, "drain 50%\n");
    assert_eq!(agents[1].hits(), 1);
    agents[1].stop();
    assert!(std::net::TcpStream::connect((ips[1], port)).is_err(), "stopped agent still reachable");
}

#[test]
fn redis_and_postgres_fixtures_start_and_stop() {
    use support::external::{Postgres, Redis, postgres_bin_dir, which};
    match Redis::start() {
        Some(mut r) => {
            assert!(r.ping());
            r.stop();
            assert!(!r.ping(), "redis still answers after stop");
        }
        None => eprintln!("skipping redis fixture check: redis-server not installed"),
    }
    if postgres_bin_dir().is_none() {
        eprintln!("skipping postgres fixture check: PostgreSQL not installed");
        return;
    }
    let pg = Postgres::start().expect("postgres");
    let psql = which("psql").expect("psql");
    let out = std::process::Command::new(psql)
        .args(["-X", "-h", "127.0.0.1", "-p", &pg.addr.port().to_string(), "-U", "postgres", "-tAc", "select 1"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "{}", String::from_utf8_lossy(&out.stderr));
}
