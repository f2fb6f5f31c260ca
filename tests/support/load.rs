//! A steady, bounded request loop (wrk-style, in miniature) that records
//! every failed request, for "zero failed requests while …" tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::client::{Client, request_bytes};
use super::wait_until;

/// Each loop thread stops after this long even if nobody calls `finish`.
const MAX_RUN: Duration = Duration::from_secs(90);
/// … or after this many requests.
const MAX_REQUESTS: usize = 200_000;
/// Pause between two requests of one thread: keeps a dozen parallel tests
/// from starving each other on a small machine (pacing, not synchronisation).
const PACE: Duration = Duration::from_millis(1);

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    done: AtomicUsize,
    failures: Mutex<Vec<String>>,
    by_backend: Mutex<BTreeMap<String, usize>>,
    /// (completion time, `x-backend`) of every successful response, in
    /// completion order.
    timeline: Mutex<Vec<(Instant, String)>>,
}

/// Keep-alive clients GETting one path in a loop until [`Load::finish`].
pub struct Load {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// What a finished load saw.
#[derive(Debug)]
pub struct LoadReport {
    pub done: usize,
    /// One line per failed request (non-200 status or I/O error).
    pub failures: Vec<String>,
    /// Responses per `x-backend`.
    pub by_backend: BTreeMap<String, usize>,
}

impl LoadReport {
    /// Panics listing the first failures when there was any.
    pub fn assert_no_failures(&self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} requests failed, first: {:#?}",
            self.failures.len(),
            self.done,
            &self.failures[..self.failures.len().min(5)]
        );
    }
}

impl Load {
    /// `threads` clients on keep-alive connections to `addr`, GET `path`.
    pub fn start(addr: SocketAddr, threads: usize, path: &str) -> Load {
        let shared = Arc::new(Shared::default());
        let threads = (0..threads)
            .map(|t| {
                let (sh, path) = (shared.clone(), path.to_string());
                thread::Builder::new()
                    .name(format!("load-{t}"))
                    .spawn(move || run(addr, t, &path, &sh))
                    .expect("spawn load thread")
            })
            .collect();
        Load { shared, threads }
    }

    /// Requests completed so far (failed ones included).
    pub fn done(&self) -> usize {
        self.shared.done.load(Ordering::SeqCst)
    }

    /// (completion time, `x-backend`) of every successful response so far,
    /// in completion order.
    pub fn timeline(&self) -> Vec<(Instant, String)> {
        self.shared.timeline.lock().unwrap().clone()
    }

    /// Failed requests so far.
    pub fn failures(&self) -> Vec<String> {
        self.shared.failures.lock().unwrap().clone()
    }

    /// Waits up to `limit` for `n` more requests to complete; false if
    /// they did not.
    pub fn advance(&self, n: usize, limit: Duration) -> bool {
        let target = self.done() + n;
        wait_until(limit, || self.done() >= target)
    }

    /// Stops the loop and returns what it saw.
    pub fn finish(mut self) -> LoadReport {
        self.shared.stop.store(true, Ordering::SeqCst);
        let mut failures = Vec::new();
        for h in std::mem::take(&mut self.threads) {
            if h.join().is_err() {
                failures.push("a load thread panicked".to_string());
            }
        }
        failures.extend(self.shared.failures.lock().unwrap().drain(..));
        LoadReport {
            done: self.shared.done.load(Ordering::SeqCst),
            failures,
            by_backend: self.shared.by_backend.lock().unwrap().clone(),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn run(addr: SocketAddr, t: usize, path: &str, sh: &Shared) {
    let started = Instant::now();
    let req = request_bytes("GET", path, &[], b"");
    let mut client: Option<Client> = None;
    for i in 0..MAX_REQUESTS {
        if sh.stop.load(Ordering::SeqCst) || started.elapsed() > MAX_RUN {
            return;
        }
        let c = match client.take() {
            Some(c) => c,
            None => match Client::try_connect(addr) {
                Ok(c) => c,
                Err(e) => {
                    sh.failures.lock().unwrap().push(format!("thread {t} request {i}: connect: {e}"));
                    sh.done.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
            },
        };
        let mut c = c;
        match c.try_send(&req).and_then(|()| c.try_read_response()) {
            Ok(r) if r.status == 200 => {
                *sh.by_backend.lock().unwrap().entry(r.backend().to_string()).or_insert(0) += 1;
                sh.timeline.lock().unwrap().push((Instant::now(), r.backend().to_string()));
                if !r.says_close() {
                    client = Some(c);
                }
            }
            Ok(r) => {
                let msg = format!("thread {t} request {i}: {} {:?}", r.status, r.text());
                sh.failures.lock().unwrap().push(msg);
            }
            Err(e) => sh.failures.lock().unwrap().push(format!("thread {t} request {i}: {e}")),
        }
        sh.done.fetch_add(1, Ordering::SeqCst);
        thread::sleep(PACE);
    }
}
