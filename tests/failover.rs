//! Dead, slow and broken backends: retries, passive health, error statuses.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{Backend, Cfg, Client, Mode, Proxy, Response, get, pattern_block, wait_until};

/// GET / on a fresh connection, expecting an error `status` with
/// `connection: close` and the connection then closed (the contract for
/// every error response).
fn expect_error(proxy: &Proxy, status: u16) -> Response {
    let mut c = Client::connect(proxy.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.try_read_response().unwrap_or_else(|e| panic!("expected {status}, reading failed: {e}"));
    assert_eq!(r.status, status, "{r:?}");
    assert!(r.says_close(), "{status} without `connection: close`: {:?}", r.head.fields);
    assert!(c.is_closed(), "connection left open after {status}");
    r
}

#[test]
fn backend_killed_mid_load_loses_no_requests_and_leaves_rotation() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b])
        .pool_keys("retries = 2")
        .pool_tables("[pool.passive]\nmax_fails = 3\ncooldown = \"60s\"")
        .start();
    let (threads, per_thread) = (4, 500);
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let addr = proxy.addr;
    let load: Vec<_> = (0..threads)
        .map(|t| {
            let (done, failures) = (done.clone(), failures.clone());
            thread::spawn(move || {
                let started = Instant::now();
                let mut c = Client::connect(addr);
                for i in 0..per_thread {
                    if started.elapsed() > Duration::from_secs(30) {
                        failures.lock().unwrap().push(format!("thread {t}: load ran out of time at {i}"));
                        return;
                    }
                    match c
                        .try_send(&support::request_bytes("GET", "/load", &[], b""))
                        .and_then(|()| c.try_read_response())
                    {
                        Ok(r) if r.status == 200 => {
                            if r.says_close() {
                                c = Client::connect(addr);
                            }
                        }
                        Ok(r) => {
                            failures.lock().unwrap().push(format!(
                                "thread {t} request {i}: {} {:?}",
                                r.status,
                                r.text()
                            ));
                            c = Client::connect(addr);
                        }
                        Err(e) => {
                            failures.lock().unwrap().push(format!("thread {t} request {i}: {e}"));
                            c = Client::connect(addr);
                        }
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let half = threads * per_thread / 2;
    assert!(wait_until(Duration::from_secs(30), || done.load(Ordering::SeqCst) >= half), "load never reached half way");
    b.stop();
    let b_served = b.requests();
    for h in load {
        h.join().expect("load thread panicked");
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed client requests, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(b_served > 0 && a.requests() > 0, "both backends should have served before the kill");

    // Out of rotation: something listening on b's old port again gets nothing
    // while the 60 s cooldown lasts.
    let revived = Backend::start_on("b-revived", b.addr);
    for i in 0..50 {
        let r = get(proxy.addr, "/after");
        assert_eq!((r.status, r.backend()), (200, "a"), "request {i} after the kill: {r:?}");
    }
    let leaked: Vec<_> =
        revived.log().into_iter().filter(|r| r.path().starts_with("/after") || r.path().starts_with("/load")).collect();
    assert!(leaked.is_empty(), "dead server still in rotation: it got {} requests", leaked.len());
}

#[test]
fn post_to_a_backend_dying_mid_request_is_502_and_not_replayed() {
    let dying = Backend::with_mode("dying", Mode::ReadBodyThenClose);
    let good = Backend::start("good");
    let proxy = Cfg::new("round_robin", &[&dying, &good]).pool_keys("retries = 2").start();
    let body = pattern_block();
    let mut failed = None;
    for attempt in 0..4 {
        let tag = attempt.to_string();
        let r = Client::connect(proxy.addr).request("POST", "/upload", &[("X-Attempt", &tag)], &body[..1000]);
        match r.status {
            200 => assert_eq!(r.backend(), "good"),
            502 => {
                failed = Some(tag);
                break;
            }
            s => panic!("POST attempt {attempt}: unexpected {s} {r:?}"),
        }
    }
    let tag = failed.expect("no POST got 502 in 4 round-robin attempts over a dying backend");
    let tagged = |b: &Backend| b.log().iter().filter(|r| r.head.get("x-attempt") == Some(tag.as_str())).count();
    assert_eq!(tagged(&dying), 1, "the failed POST was sent to the dying backend {} times", tagged(&dying));
    assert_eq!(dying.last().body_len, 1000, "dying backend did not get the whole body");
    assert_eq!(tagged(&good), 0, "a non-idempotent POST was replayed to another backend");
}

#[test]
fn all_backends_down_is_502() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    a.stop();
    b.stop();
    let proxy = Proxy::cli(&[&a, &b], &[]);
    expect_error(&proxy, 502);
}

#[test]
fn never_answering_backend_is_504() {
    let b = Backend::with_mode("mute", Mode::NeverAnswer);
    let proxy =
        Cfg::new("round_robin", &[&b]).pool_tables("[pool.timeouts]\nconnect = \"3s\"\nresponse = \"1s\"").start();
    expect_error(&proxy, 504);
    assert!(b.requests() >= 1);
}

#[test]
fn invalid_backend_response_is_502() {
    let b = Backend::with_mode("junk", Mode::Invalid);
    let proxy = Proxy::cli(&[&b], &[]);
    expect_error(&proxy, 502);
}

#[test]
fn backend_closing_mid_head_is_502() {
    let b = Backend::with_mode("cut", Mode::CloseMidHead);
    let proxy = Proxy::cli(&[&b], &[]);
    expect_error(&proxy, 502);
}

#[test]
fn backend_response_with_conflicting_content_lengths_is_502() {
    // RFC 9112 §6.3: a proxy MUST discard such a response and send 502.
    let b = Backend::with_mode(
        "smuggler",
        Mode::Raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 12\r\n\r\nhello, world"),
    );
    let proxy = Proxy::cli(&[&b], &[]);
    expect_error(&proxy, 502);
}

#[test]
fn backend_response_with_invalid_content_length_is_502() {
    let b = Backend::with_mode("junk", Mode::Raw("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"));
    let proxy = Proxy::cli(&[&b], &[]);
    expect_error(&proxy, 502);
}

#[test]
fn backend_closing_mid_body_is_not_passed_off_as_complete() {
    let b = Backend::with_mode("cut", Mode::CloseMidBody);
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    match c.try_read_response() {
        // Head already relayed: the client must see the truncation as a close.
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
        Ok(r) => assert_eq!(r.status, 502, "truncated backend response delivered as complete: {r:?}"),
    }
}

#[test]
fn all_servers_weight_zero_is_503() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Cfg::new("round_robin", &[&a, &b]).weights(&[0, 0]).start();
    expect_error(&proxy, 503);
    assert_eq!(a.requests() + b.requests(), 0);
}

#[test]
fn backup_server_only_serves_when_primaries_are_down() {
    let (primary, backup) = (Backend::start("primary"), Backend::start("backup"));
    let mut cfg = Cfg::new("round_robin", &[&primary, &backup]);
    cfg.servers[1].3 = true;
    let proxy = cfg.start();
    for _ in 0..10 {
        assert_eq!(get(proxy.addr, "/").backend(), "primary");
    }
    primary.stop();
    for i in 0..10 {
        let r = get(proxy.addr, "/");
        assert_eq!((r.status, r.backend()), (200, "backup"), "request {i} with the primary down: {r:?}");
    }
}

/// The keep-alive race: the backend closes an idle upstream connection just
/// before fastlb reuses it. A connection parked for under a second is reused
/// without a probe, so an idempotent request meets the closed connection,
/// gets nothing back and must be replayed on a new connection, even with
/// `retries = 0` (it is not a retry: the backend never saw the request).
#[test]
fn get_on_an_upstream_connection_the_backend_just_closed_is_replayed() {
    let a = Backend::start("a");
    let proxy = Cfg::new("round_robin", &[&a]).pool_keys("retries = 0").start();
    let mut c = Client::connect(proxy.addr);
    for round in 0..5 {
        assert_eq!(c.get("/x").status, 200, "round {round}: warm-up");
        let conns = a.conns();
        assert_eq!(a.close_open_conns(), 1, "round {round}: one pooled upstream connection");
        let r = c.get("/x");
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        assert_eq!(r.backend(), "a");
        assert_eq!(a.conns(), conns + 1, "round {round}: the replay used a new connection");
    }
}

/// A request that cannot be replayed (POST) must not be sent on a
/// connection the backend already closed: such a request probes the pooled
/// connection first, whatever its age.
#[test]
fn post_never_goes_out_on_an_upstream_connection_the_backend_closed() {
    let a = Backend::start("a");
    let proxy = Cfg::new("round_robin", &[&a]).pool_keys("retries = 0").start();
    let mut c = Client::connect(proxy.addr);
    for round in 0..5 {
        assert_eq!(c.get("/x").status, 200, "round {round}: warm-up");
        assert_eq!(a.close_open_conns(), 1, "round {round}: one pooled upstream connection");
        // Loopback delivers the FIN before shutdown(2) returns, so the
        // probe sees it.
        let r = c.request("POST", "/echo-body", &[], b"payload");
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        assert_eq!(r.text(), "payload");
    }
}

/// The same for a body large enough to be spliced (backend → pipe →
/// client): the client gets every byte the backend sent, then a close,
/// never a hang and never a complete-looking response.
#[test]
fn backend_closing_mid_spliced_body_closes_the_client_after_the_bytes_it_sent() {
    const SENT: usize = 300 * 1024;
    let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}", 4 << 20, "s".repeat(SENT));
    let b = Backend::with_mode("cut", Mode::Raw(Box::leak(raw.into_boxed_str())));
    let proxy = Proxy::cli(&[&b], &[]);
    let mut c = Client::connect(proxy.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut resp = c.try_read_head().expect("the head is relayed before the body is cut");
    assert_eq!(resp.status, 200);
    let mut got = 0usize;
    let mut intact = true;
    let res = c.read_body_with(&mut resp, "GET", &mut |chunk| {
        got += chunk.len();
        intact &= chunk.iter().all(|&x| x == b's');
    });
    let err = res.expect_err("a 4 MiB body cut at 300 KiB must not read as complete");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(got, SENT, "every byte the backend sent reaches the client");
    assert!(intact, "body bytes corrupted");
}

/// A spliced body that comes in pieces makes the relay wait on the backend
/// (an io_uring poll between splices); the connection then goes back to the
/// pool and must serve the next, small responses at once: nothing the wait
/// left behind (a raised receive low-water mark, say, as an earlier version
/// set) may hold them up until the timeout.
#[test]
fn an_upstream_connection_reused_after_a_trickled_spliced_body_answers_small_requests() {
    const LEN: usize = 1 << 20;
    let a = Backend::start("a");
    let proxy = Cfg::new("round_robin", &[&a]).pool_tables("[pool.timeouts]\nresponse = \"3s\"").start();
    let mut c = Client::connect(proxy.addr);
    let block = pattern_block();
    for round in 0..3 {
        let r = c.get(&format!("/trickle/{LEN}"));
        assert_eq!((r.status, r.body.len()), (200, LEN), "round {round}");
        assert!(r.body.chunks(block.len()).all(|ch| ch == &block[..ch.len()]), "round {round}: body corrupted");
        for i in 0..3 {
            let r = c.get("/small");
            assert_eq!((r.status, r.text().as_str()), (200, "a"), "round {round}, small response {i}");
        }
    }
    assert_eq!(a.conns(), 1, "every request went over the one pooled upstream connection");
}
