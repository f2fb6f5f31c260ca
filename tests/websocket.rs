//! WebSocket Upgrade through the proxy: 101 relayed, then a byte tunnel.

mod support;

use support::ws::{self, OP_BINARY, OP_CLOSE, OP_TEXT};
use support::{Backend, Client, Proxy};

fn handshake(c: &mut Client, key: &str) {
    c.send(
        format!(
            "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.try_read_head().unwrap_or_else(|e| panic!("no handshake response: {e}"));
    assert_eq!(r.status, 101, "{:?}", r.head);
    assert!(r.head.has_token("upgrade", "websocket"), "101 without Upgrade: websocket: {:?}", r.head.fields);
    assert!(r.head.has_token("connection", "upgrade"), "101 without Connection: upgrade: {:?}", r.head.fields);
    assert_eq!(r.header("sec-websocket-accept"), Some(ws::accept_for(key).as_str()));
}

fn echo(c: &mut Client, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    c.send(&ws::encode_frame(opcode, payload, Some(mask)));
    let f = ws::read_frame(&mut c.wire).unwrap_or_else(|e| panic!("no echo of a {}-byte frame: {e}", payload.len()));
    assert!(f.fin && !f.masked, "server frame flags wrong");
    assert_eq!(f.opcode, opcode);
    assert!(f.payload == payload, "echo of a {}-byte frame differs", payload.len());
}

#[test]
fn upgrade_is_relayed_and_frames_echo_both_ways() {
    let b = Backend::start("ws");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    handshake(&mut c, ws::SAMPLE_KEY);
    let seen = b.last().head;
    assert!(seen.has_token("upgrade", "websocket"), "Upgrade not forwarded: {:?}", seen.fields);
    assert!(seen.has_token("connection", "upgrade"), "Connection: upgrade not forwarded: {:?}", seen.fields);
    echo(&mut c, OP_TEXT, b"hello", [1, 2, 3, 4]);
    echo(&mut c, OP_BINARY, &(0..=255u8).cycle().take(1000).collect::<Vec<_>>(), [9, 8, 7, 6]);
    echo(&mut c, OP_TEXT, "x".repeat(70_000).as_bytes(), [0xAA, 0x55, 0x0F, 0xF0]);
    echo(&mut c, OP_CLOSE, &1000u16.to_be_bytes(), [5, 5, 5, 5]);
    assert!(c.is_closed(), "tunnel not closed after the backend closed");
}

#[test]
fn websocket_tunnel_and_plain_http_coexist() {
    let b = Backend::start("ws");
    let proxy = Proxy::cli(&[&b], &[]);
    let mut tunnel = Client::connect(proxy.addr);
    handshake(&mut tunnel, "x3JJHMbDL1EzLkh9GBhXDw==");
    let mut plain = Client::connect(proxy.addr);
    for i in 0..5 {
        echo(&mut tunnel, OP_TEXT, format!("message {i}").as_bytes(), [i, 1, 2, 3]);
        assert_eq!(plain.get("/").status, 200);
    }
}
