//! The floor fastlb is measured against: a minimal HTTP/1.1 keep-alive relay
//! on compio with the same ring flags as fastlb's workers, and no HTTP work
//! beyond finding the end of a head and its Content-Length. What it costs
//! per request is what loopback TCP and io_uring cost; fastlb's distance to
//! it is the price of its HTTP handling, balancing and bookkeeping.
//!
//! Not a proxy to use: no timeouts, no error answers, GET/HEAD-style
//! requests only (a request body is not relayed), responses must carry
//! Content-Length. Run as a custom proxy in the peer harness:
//!
//! ```sh
//! cargo build --release --example relay_floor
//! PROXIES="nginx fastlb floor" PROXY_CMD_floor="$PWD/target/release/examples/relay_floor \$LISTEN \$BACKENDS" \
//!   ../shared/bench/campaign.sh
//! ```
//!
//! `RECV_MULTI=client` (or `both`) receives from clients (and backends)
//! with one multishot receive per connection into the provided-buffer
//! ring instead of one receive per read: the receive stays armed while the
//! request is away, so the kernel does not re-arm a poll per request.
//!
//! `FIXED=1` registers every socket in the ring's file table at once (slot =
//! descriptor) and sends and receives through its slot, so io_uring takes
//! no file reference per operation (fastlb does this for sockets that carry
//! many requests, see `proxy/src/proxy/fixed.rs`). Not with `RECV_MULTI`.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;

use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::driver::op::{RecvFlags, RecvMulti};
use compio::driver::{ProactorBuilder, SharedFd, ToSharedFd};
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::{TcpListener, TcpStream};
use compio::runtime::{Runtime, RuntimeBuilder, SubmitMultiManaged};
use futures_util::StreamExt;
use socket2::Socket as Socket2;
use std::os::fd::AsRawFd;

struct Relay {
    backends: Vec<SocketAddr>,
    next: Cell<usize>,
    /// Idle upstream connections per backend.
    idle: Vec<RefCell<Vec<Conn>>>,
    multi_client: bool,
    multi_upstream: bool,
}

/// An armed multishot receive: one completion per arrival of bytes.
type MultiRecv = Pin<Box<SubmitMultiManaged<RecvMulti<SharedFd<Socket2>>>>>;

/// A socket and how it is read.
struct Conn {
    s: TcpStream,
    /// Reads with a multishot receive (armed while one is in `rx`).
    multi: bool,
    rx: Option<MultiRecv>,
    /// Slot in the ring's registered-file table (`FIXED=1`).
    fixed: Option<u32>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(slot) = self.fixed {
            let _ = fixed::update(slot, -1);
        }
    }
}

impl Conn {
    fn new(s: TcpStream, multi: bool) -> Self {
        let _ = s.set_nodelay(true);
        let fd = s.as_raw_fd();
        let fixed = (fixed::enabled() && !multi && fixed::update(fd as u32, fd).is_ok()).then_some(fd as u32);
        Conn { s, multi, rx: None, fixed }
    }

    /// The armed multishot receive, armed now if it is not.
    fn multishot(&mut self) -> io::Result<&mut MultiRecv> {
        if self.rx.is_none() {
            let pool = Runtime::with_current(|rt| rt.buffer_pool())?;
            let op = RecvMulti::new(self.s.to_shared_fd(), &pool, 0, RecvFlags::empty())?;
            self.rx = Some(Box::pin(compio::runtime::submit_multi(op).into_managed(pool)));
        }
        Ok(self.rx.as_mut().expect("armed"))
    }

    /// Appends what one receive (or one multishot completion) gives; false
    /// on EOF or error.
    async fn read_more(&mut self, buf: &mut Vec<u8>) -> bool {
        if self.multi {
            loop {
                let Ok(rx) = self.multishot() else { return false };
                match rx.next().await {
                    Some(Ok(Some(b))) if !b.is_empty() => {
                        buf.extend_from_slice(&b);
                        return true;
                    }
                    // The multishot ended (e.g. the ring ran dry): re-arm.
                    None => self.rx = None,
                    Some(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => self.rx = None,
                    _ => return false,
                }
            }
        }
        if buf.capacity() - buf.len() < 2048 {
            buf.reserve(buf.capacity().max(4096));
        }
        if let Some(slot) = self.fixed {
            let BufResult(res, b) = compio::runtime::submit(fixed::Recv { slot, buf: std::mem::take(buf) }).await;
            *buf = b.buf;
            return matches!(res, Ok(n) if n > 0);
        }
        let len = buf.len();
        let cap = buf.capacity();
        let mut r = &self.s;
        let BufResult(res, b) = r.read(std::mem::take(buf).slice(len..cap)).await;
        *buf = b.into_inner();
        matches!(res, Ok(n) if n > 0)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(backends)) = (args.next(), args.next()) else {
        eprintln!("usage: relay_floor LISTEN BACKEND[,BACKEND...]");
        std::process::exit(2);
    };
    let listen: SocketAddr = listen.parse().expect("listen address");
    let backends: Vec<SocketAddr> = backends.split(',').map(|b| b.parse().expect("backend address")).collect();
    let multi = std::env::var("RECV_MULTI").unwrap_or_default();
    let (multi_client, multi_upstream) = (multi == "client" || multi == "both", multi == "both");
    let mut proactor = ProactorBuilder::new();
    proactor.single_issuer(true).defer_taskrun(true).coop_taskrun(true).taskrun_flag(true);
    // Enough ring buffers for a completion per connection in flight.
    proactor.buffer_pool_size(std::num::NonZero::new(2048).expect("non-zero")).buffer_pool_buffer_len(4096);
    let mut builder = RuntimeBuilder::new();
    builder.with_proactor(proactor);
    let rt = builder.build().expect("io_uring runtime");
    if std::env::var("FIXED").is_ok_and(|v| v == "1") {
        rt.register_files(&vec![-1; fixed::SLOTS]).expect("sparse file table");
        fixed::enable(rt.as_raw_fd());
    }
    rt.block_on(async move {
        let idle = backends.iter().map(|_| RefCell::new(Vec::new())).collect();
        let relay = Rc::new(Relay { backends, next: Cell::new(0), idle, multi_client, multi_upstream });
        let listener = TcpListener::bind(listen).await.expect("bind");
        loop {
            let Ok((client, _)) = listener.accept().await else { continue };
            compio::runtime::spawn(serve(Rc::clone(&relay), client)).detach();
        }
    });
}

/// Relays requests from one client until it closes or anything fails.
async fn serve(relay: Rc<Relay>, client: TcpStream) {
    let mut client = Conn::new(client, relay.multi_client);
    let mut req: Vec<u8> = Vec::with_capacity(4096);
    let mut resp: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        let Some(head_len) = read_head(&mut client, &mut req).await else { return };
        let i = relay.next.get();
        relay.next.set((i + 1) % relay.backends.len());
        let pooled = relay.idle[i].borrow_mut().pop();
        let up = match pooled {
            Some(up) => up,
            None => match TcpStream::connect(relay.backends[i]).await {
                Ok(up) => Conn::new(up, relay.multi_upstream),
                Err(_) => return,
            },
        };
        // The head goes as it came (the harness's requests have no body).
        let mut head = std::mem::take(&mut req);
        let rest = head.split_off(head_len);
        let BufResult(res, head) = up.write_all(head).await;
        if res.is_err() {
            return;
        }
        req = head;
        req.clear();
        req.extend_from_slice(&rest);
        resp.clear();
        let mut up = up;
        let Some(total) = read_response(&mut up, &mut resp).await else { return };
        debug_assert_eq!(total, resp.len());
        let BufResult(res, out) = client.write_all(std::mem::take(&mut resp)).await;
        resp = out;
        if res.is_err() {
            return;
        }
        relay.idle[i].borrow_mut().push(up);
    }
}

impl Conn {
    /// Writes all of `data` (through the socket's slot if it has one).
    async fn write_all(&self, data: Vec<u8>) -> BufResult<(), Vec<u8>> {
        let Some(slot) = self.fixed else { return (&self.s).write_all(data).await };
        let mut op = fixed::Send { slot, buf: data, done: 0 };
        while op.done < op.buf.len() {
            let BufResult(res, o) = compio::runtime::submit(op).await;
            op = o;
            match res {
                Ok(n) if n > 0 => op.done += n,
                Ok(_) => return BufResult(Err(io::ErrorKind::WriteZero.into()), op.buf),
                Err(e) => return BufResult(Err(e), op.buf),
            }
        }
        BufResult(Ok(()), op.buf)
    }
}

/// `FIXED=1`: the ring's registered-file table and operations on its slots.
mod fixed {
    use std::cell::Cell;
    use std::io;
    use std::os::fd::RawFd;

    use compio::driver::{OpCode, OpEntry};
    use io_uring::{opcode, types};

    /// Table size: descriptors at or above it stay plain (the harness's
    /// connections stay far below).
    pub const SLOTS: usize = 1000;

    thread_local! {
        static RING: Cell<RawFd> = const { Cell::new(-1) };
    }

    pub fn enable(ring: RawFd) {
        RING.set(ring);
    }

    pub fn enabled() -> bool {
        RING.get() >= 0
    }

    /// `IORING_REGISTER_FILES_UPDATE` of one slot (-1 clears it); fails for
    /// slots beyond the table.
    pub fn update(slot: u32, fd: RawFd) -> io::Result<()> {
        #[repr(C)]
        struct FilesUpdate {
            offset: u32,
            resv: u32,
            fds: u64,
        }
        if slot as usize >= SLOTS {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let fds = [fd];
        let mut arg = FilesUpdate { offset: slot, resv: 0, fds: fds.as_ptr() as u64 };
        // SAFETY: a valid ring descriptor and an update of one slot from a
        // live one-element array, read during the call only.
        let r = unsafe { libc::syscall(libc::SYS_io_uring_register, RING.get(), 6u32, &raw mut arg, 1u32) };
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    /// A receive into the spare capacity of `buf`.
    pub struct Recv {
        pub slot: u32,
        pub buf: Vec<u8>,
    }

    // SAFETY: the entry points into `buf`'s spare capacity, owned by the
    // operation until it completes.
    unsafe impl OpCode for Recv {
        type Control = ();

        fn create_entry(&mut self, _: &mut ()) -> OpEntry {
            let spare = self.buf.spare_capacity_mut();
            let len = spare.len().try_into().unwrap_or(u32::MAX);
            opcode::Recv::new(types::Fixed(self.slot), spare.as_mut_ptr().cast(), len).build().into()
        }

        unsafe fn set_result(&mut self, _: &mut (), res: &io::Result<usize>, _: &compio::driver::Extra) {
            if let Ok(n) = *res {
                // SAFETY: the kernel wrote `n` bytes into the spare capacity.
                unsafe { self.buf.set_len(self.buf.len() + n) };
            }
        }
    }

    /// A send of `buf[done..]`.
    pub struct Send {
        pub slot: u32,
        pub buf: Vec<u8>,
        pub done: usize,
    }

    // SAFETY: the entry points into `buf`, owned by the operation until it
    // completes.
    unsafe impl OpCode for Send {
        type Control = ();

        fn create_entry(&mut self, _: &mut ()) -> OpEntry {
            let rest = &self.buf[self.done..];
            let len = rest.len().try_into().unwrap_or(u32::MAX);
            opcode::Send::new(types::Fixed(self.slot), rest.as_ptr(), len).build().into()
        }
    }
}

/// Reads until `buf` holds a whole head; its length, `None` on EOF/error.
async fn read_head(s: &mut Conn, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(end) = head_end(buf) {
            return Some(end);
        }
        if !s.read_more(buf).await {
            return None;
        }
    }
}

/// Reads one response (head with Content-Length, then the body) into `buf`.
async fn read_response(s: &mut Conn, buf: &mut Vec<u8>) -> Option<usize> {
    let head = read_head(s, buf).await?;
    let total = head + content_length(&buf[..head])?;
    while buf.len() < total {
        if !s.read_more(buf).await {
            return None;
        }
    }
    Some(total)
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn content_length(head: &[u8]) -> Option<usize> {
    const NAME: &[u8] = b"content-length:";
    head.split(|&b| b == b'\n').find_map(|line| {
        if line.len() > NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME) {
            std::str::from_utf8(&line[NAME.len()..]).ok()?.trim().parse().ok()
        } else {
            None
        }
    })
}
