//! Just enough WebSocket (RFC 6455) for an echo test: the accept-key
//! computation (SHA-1 + base64, written out here), frame encode/decode and
//! the backend's echo loop.

use std::io;

use super::wire::{Head, Wire};

/// The RFC 6455 §1.3 sample key and its accept value (checked against the
/// RFC text and an independent SHA-1 in `tests/harness.rs`).
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

pub fn accept_for(key: &str) -> String {
    base64(&sha1(format!("{key}{GUID}").as_bytes()))
}

pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

pub fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;

/// One complete (FIN) frame; masked when `mask` is given (client → server).
pub fn encode_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A decoded frame: (fin, opcode, was_masked, unmasked payload).
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

pub fn read_frame(wire: &mut Wire) -> io::Result<Frame> {
    let h = wire.read_n(2)?;
    let masked = h[1] & 0x80 != 0;
    let len = match h[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes(wire.read_n(2)?.try_into().unwrap())),
        127 => u64::from_be_bytes(wire.read_n(8)?.try_into().unwrap()),
        n => u64::from(n),
    };
    if len > 16 << 20 {
        return Err(super::wire::invalid("websocket frame too large for a test"));
    }
    let mask = if masked { Some(wire.read_n(4)?) } else { None };
    let mut payload = wire.read_n(len as usize)?;
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Ok(Frame { fin: h[0] & 0x80 != 0, opcode: h[0] & 0x0F, masked, payload })
}

/// Backend side: completes the handshake, then echoes each frame unmasked
/// until a close frame (answered with a close) or EOF.
pub fn serve_echo(mut wire: Wire, head: &Head, id: &str) -> io::Result<()> {
    let key = head.get("sec-websocket-key").unwrap_or_default();
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\nx-backend: {id}\r\n\r\n",
        accept_for(key)
    );
    wire.write_all(resp.as_bytes())?;
    loop {
        let frame = read_frame(&mut wire)?;
        if !frame.masked {
            // RFC 6455 §5.1: a server must close on an unmasked client frame.
            wire.write_all(&encode_frame(OP_CLOSE, &1002u16.to_be_bytes(), None))?;
            return Ok(());
        }
        wire.write_all(&encode_frame(frame.opcode, &frame.payload, None))?;
        if frame.opcode == OP_CLOSE {
            return Ok(());
        }
    }
}
