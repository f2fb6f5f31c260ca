//! A fake HAProxy-style agent: accepts a connection, writes its current
//! line of words (`drain`, `ready`, `50%` …) and closes.

use std::io::Write;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

#[derive(Default)]
struct Shared {
    word: Mutex<String>,
    hits: AtomicUsize,
    stopped: AtomicBool,
}

pub struct Agent {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    listener_fd: i32,
}

impl Agent {
    /// An agent on `ip:port` answering `word`.
    pub fn start(ip: IpAddr, port: u16, word: &str) -> std::io::Result<Agent> {
        let listener = TcpListener::bind((ip, port))?;
        let addr = listener.local_addr()?;
        let listener_fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let shared = Arc::new(Shared { word: Mutex::new(word.to_string()), ..Shared::default() });
        let sh = shared.clone();
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if sh.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = stream else { continue };
                let line = format!("{}\n", sh.word.lock().unwrap());
                let _ = s.write_all(line.as_bytes());
                let _ = s.shutdown(Shutdown::Both);
                sh.hits.fetch_add(1, Ordering::SeqCst);
            }
        });
        Ok(Agent { addr, shared, acceptor: Mutex::new(Some(acceptor)), listener_fd })
    }

    /// What the agent answers from now on.
    pub fn set(&self, word: &str) {
        *self.shared.word.lock().unwrap() = word.to_string();
    }

    /// Connections answered so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Closes the listener: the agent becomes unreachable. Idempotent.
    pub fn stop(&self) {
        let Some(acceptor) = self.acceptor.lock().unwrap().take() else { return };
        self.shared.stopped.store(true, Ordering::SeqCst);
        // SAFETY: the fd belongs to the listener the acceptor still owns; this
        // only wakes its accept(2), the acceptor then drops it.
        unsafe { libc::shutdown(self.listener_fd, libc::SHUT_RDWR) };
        let _ = acceptor.join();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One agent per IP, all on the same port (a pool has one agent port, on
/// each server's own IP). Retries with a new port when one IP has it taken.
pub fn agents_on_shared_port(ips: &[IpAddr], word: &str) -> (u16, Vec<Agent>) {
    for _ in 0..50 {
        let first = Agent::start(ips[0], 0, word).expect("bind agent");
        let port = first.addr.port();
        let mut agents = vec![first];
        for ip in &ips[1..] {
            match Agent::start(*ip, port, word) {
                Ok(a) => agents.push(a),
                Err(_) => break,
            }
        }
        if agents.len() == ips.len() {
            return (port, agents);
        }
    }
    panic!("no port free on all of {ips:?} for agents");
}
