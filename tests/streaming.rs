//! Large bodies stream through the proxy with bounded memory.

mod support;

use support::{Backend, Client, Proxy, pattern_block, pattern_byte};

const MIB: u64 = 1024 * 1024;
/// Allowed growth of the proxy's peak RSS across one large transfer.
const MAX_HWM_GROWTH_KIB: u64 = 16 * 1024;

/// A proxy over one backend, warmed up by one request so start-up
/// allocations are not counted against the transfer.
fn warm_proxy() -> (Backend, Proxy) {
    let b = Backend::start("b");
    let proxy = Proxy::cli(&[&b], &[]);
    assert_eq!(support::get(proxy.addr, "/").status, 200);
    (b, proxy)
}

fn assert_memory_bounded(proxy: &Proxy, before_kib: u64, what: &str) {
    let after = proxy.mem();
    let growth = after.hwm_kib.saturating_sub(before_kib);
    eprintln!("{what}: VmHWM {before_kib} -> {} KiB, VmRSS {} KiB", after.hwm_kib, after.rss_kib);
    assert!(
        growth < MAX_HWM_GROWTH_KIB,
        "{what}: proxy VmHWM grew by {growth} KiB ({before_kib} -> {} KiB; VmRSS now {} KiB)",
        after.hwm_kib,
        after.rss_kib
    );
}

/// Writes `total` pattern bytes, either raw or as chunks of one block each.
fn send_pattern(c: &mut Client, total: u64, chunked: bool) {
    let block = pattern_block();
    let mut left = total;
    while left > 0 {
        let take = left.min(block.len() as u64) as usize;
        if chunked {
            c.send(format!("{take:x}\r\n").as_bytes());
            c.send(&block[..take]);
            c.send(b"\r\n");
        } else {
            c.send(&block[..take]);
        }
        left -= take as u64;
    }
    if chunked {
        c.send(b"0\r\n\r\n");
    }
}

#[test]
fn upload_100_mib_with_content_length() {
    let (b, proxy) = warm_proxy();
    let before = proxy.mem().hwm_kib;
    let total = 100 * MIB;
    let mut c = Client::connect(proxy.addr);
    c.send(format!("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {total}\r\n\r\n").as_bytes());
    send_pattern(&mut c, total, false);
    let r = c.read_response();
    assert_eq!((r.status, r.text()), (200, total.to_string()), "{r:?}");
    assert_eq!(r.header("x-pattern-ok"), Some("true"), "upload bytes corrupted on the way");
    assert_eq!(b.last().body_len, total);
    assert_memory_bounded(&proxy, before, "100 MiB upload");
}

#[test]
fn download_100_mib() {
    let (_b, proxy) = warm_proxy();
    let before = proxy.mem().hwm_kib;
    let total = 100 * MIB;
    let mut c = Client::connect(proxy.addr);
    c.send(format!("GET /download/{total} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    let mut resp = c.try_read_head().expect("download head");
    assert_eq!(resp.status, 200);
    let (mut got, mut intact) = (0u64, true);
    c.read_body_with(&mut resp, "GET", &mut |chunk| {
        if intact {
            intact = chunk.iter().enumerate().all(|(i, &b)| b == pattern_byte(got + i as u64));
        }
        got += chunk.len() as u64;
    })
    .unwrap_or_else(|e| panic!("download broke after {got} bytes: {e}"));
    assert_eq!(got, total);
    assert!(intact, "download bytes corrupted on the way");
    assert_memory_bounded(&proxy, before, "100 MiB download");
}

#[test]
fn chunked_upload_20_mib() {
    let (b, proxy) = warm_proxy();
    let before = proxy.mem().hwm_kib;
    let total = 20 * MIB;
    let mut c = Client::connect(proxy.addr);
    c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    send_pattern(&mut c, total, true);
    let r = c.read_response();
    assert_eq!((r.status, r.text()), (200, total.to_string()), "{r:?}");
    assert_eq!(r.header("x-pattern-ok"), Some("true"), "chunked upload corrupted on the way");
    assert!(b.last().head.is_chunked(), "backend did not get chunked framing");
    assert_memory_bounded(&proxy, before, "20 MiB chunked upload");
}

#[test]
fn slow_reader_does_not_make_the_proxy_buffer() {
    // Backpressure: while the client reads nothing, the proxy must not pull
    // the backend's 200 MiB into memory.
    let (_b, proxy) = warm_proxy();
    let before = proxy.mem().hwm_kib;
    let total = 200 * MIB;
    let mut c = Client::connect(proxy.addr);
    c.send(format!("GET /download/{total} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    let mut resp = c.try_read_head().expect("download head");
    let grew = support::wait_until(std::time::Duration::from_secs(2), || {
        proxy.mem().hwm_kib.saturating_sub(before) >= MAX_HWM_GROWTH_KIB
    });
    assert!(!grew, "proxy buffered a stalled download: VmHWM {before} -> {} KiB", proxy.mem().hwm_kib);
    let mut got = 0u64;
    c.read_body_with(&mut resp, "GET", &mut |chunk| got += chunk.len() as u64)
        .unwrap_or_else(|e| panic!("download broke after {got} bytes: {e}"));
    assert_eq!(got, total);
    assert_memory_bounded(&proxy, before, "200 MiB download to a stalled reader");
}
