//! The data path of one worker core: accept loop, client connections
//! (`conn`: idle ones hold no buffer), forwarding with retries (`forward`),
//! zero-copy relay of large bodies (`splice`), the per-core upstream pool
//! (`upstream`), deadline timers (`timer`) and the sockets of the data path
//! with their slots in the ring's registered-file table (`fixed`), on which
//! `io` submits its own send and receive operations. BENCHMARKS.md has what
//! each costs and why it is built this way.
//!
//! Everything here runs on one core's compio runtime: state is `Rc`/`Cell`/
//! `RefCell`; the only shared things are the arc-swapped backend table and
//! the atomic counters hanging off it.

mod conn;
pub(crate) mod fixed;
mod forward;
mod io;
mod slab;
pub(crate) mod splice;
pub mod status;
mod tcp;
pub mod timer;
pub mod upstream;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::Cache;
use bytes::BytesMut;
use compio::net::TcpListener;
use futures_channel::oneshot;

use crate::balance::{self, Strategy, Table};
use crate::config::{ListenerConfig, ListenerMode};
use crate::plugin::{CorePlugins, WasmStrategy};
use crate::runtime::Shared;
use crate::spares::Spares;
use crate::stats::CoreStats;
use upstream::UpstreamPool;

/// The table as one core sees it: the shared snapshot plus this core's
/// strategy instances (per-core state such as round-robin cursors).
pub struct CoreTable {
    pub table: Arc<Table>,
    pub strategies: Vec<PoolStrategy>,
}

/// A pool's strategy on this core: built in, or a WASM plugin (which also
/// offers sticky hooks).
pub enum PoolStrategy {
    Builtin(Box<dyn Strategy>),
    Wasm(WasmStrategy),
}

impl PoolStrategy {
    pub fn as_strategy(&self) -> &dyn Strategy {
        match self {
            PoolStrategy::Builtin(s) => &**s,
            PoolStrategy::Wasm(w) => w,
        }
    }
}

/// Per-core context, shared by the tasks of one core through `Rc`.
pub struct WorkerCtx {
    pub core: usize,
    pub shared: Arc<Shared>,
    pub stats: Arc<CoreStats>,
    cache: RefCell<Cache<Arc<arc_swap::ArcSwap<Table>>, Arc<Table>>>,
    current: RefCell<Rc<CoreTable>>,
    pub upstreams: RefCell<UpstreamPool>,
    /// Requests between head parsed and response finished on this core.
    pub in_flight: Cell<usize>,
    /// Set once shutdown starts: responses then carry `Connection: close`.
    pub draining: Cell<bool>,
    /// Spare relay buffers, so a request does not allocate one.
    bufs: Spares<BytesMut>,
    /// Spare client read buffers: a connection holds one only while a
    /// request is in progress (or pipelined bytes wait).
    head_bufs: Spares<BytesMut>,
    /// Spare vectors for forwarded heads and response heads.
    vecs: Spares<Vec<u8>>,
    /// Spare pipes for spliced body relays.
    pipes: Spares<splice::Pipe>,
    /// Heap blocks for request futures (see `slab`).
    pub request_blocks: slab::Blocks,
    /// This core's plugin instances, when plugins are configured.
    plugins: Option<CorePlugins>,
}

/// Buffers in each core's provided-buffer ring (see `conn`): enough for
/// every completion of one busy event-loop turn; when the ring runs dry a
/// read falls back to the connection's own buffer.
pub const IDLE_RECV_BUFS: u16 = 256;
/// Size of a provided buffer: a typical request head fits in one.
pub const IDLE_RECV_LEN: usize = 4096;
/// Initial capacity of a spare head vector, and how many a core keeps.
const SPARE_VEC: usize = 1024;
const SPARE_VECS: usize = 256;
/// Pipes kept per core for spliced relays (two descriptors each).
const SPARE_PIPES: usize = 64;
/// Client read buffers kept per core for reuse.
const SPARE_HEAD_BUFS: usize = 256;
/// Relay buffers kept per core for reuse.
const SPARE_RELAY_BUFS: usize = 64;
/// Request-future blocks kept per core for reuse (~2.1 KB each).
const SPARE_REQUEST_BLOCKS: usize = 64;

/// Size of a relay buffer (response heads and bodies). nginx relays up to
/// 8 × 16 KiB per turn; one 128 KiB read does the same in one operation.
const RELAY_BUF: usize = 128 * 1024;

impl WorkerCtx {
    pub fn new(core: usize, shared: Arc<Shared>) -> Rc<Self> {
        let cache = Cache::new(Arc::clone(&shared.table));
        let table = shared.table.load_full();
        let plugins = shared.plugins.as_ref().map(|r| CorePlugins::new(Arc::clone(r), core));
        let current = Rc::new(core_table(table, plugins.as_ref()));
        Rc::new(WorkerCtx {
            plugins,
            core,
            stats: Arc::clone(&shared.cores[core]),
            shared,
            cache: RefCell::new(cache),
            current: RefCell::new(current),
            upstreams: RefCell::new(UpstreamPool::default()),
            in_flight: Cell::new(0),
            draining: Cell::new(false),
            bufs: Spares::new(SPARE_RELAY_BUFS),
            head_bufs: Spares::new(SPARE_HEAD_BUFS),
            pipes: Spares::new(SPARE_PIPES),
            vecs: Spares::new(SPARE_VECS),
            request_blocks: slab::Blocks::new(SPARE_REQUEST_BLOCKS),
        })
    }

    /// The current table for this core: one pointer comparison unless the
    /// table was swapped, in which case per-core strategies are rebuilt.
    pub fn table(&self) -> Rc<CoreTable> {
        let mut cache = self.cache.borrow_mut();
        let latest = cache.load();
        let mut current = self.current.borrow_mut();
        if !Arc::ptr_eq(latest, &current.table) {
            *current = Rc::new(core_table(Arc::clone(latest), self.plugins.as_ref()));
        }
        Rc::clone(&current)
    }

    pub fn take_buf(&self) -> BytesMut {
        self.bufs.take().unwrap_or_else(|| BytesMut::with_capacity(RELAY_BUF))
    }

    pub fn give_buf(&self, buf: BytesMut) {
        // A buffer that grew (a big head) is not worth keeping.
        self.bufs.give_emptied(buf, RELAY_BUF * 2);
    }

    /// A client read buffer with room for a head.
    pub fn take_head_buf(&self) -> BytesMut {
        let mut b = self.head_bufs.take().unwrap_or_default();
        b.reserve(conn::HEAD_BUF);
        b
    }

    /// Takes back an empty client read buffer (one that grew past the usual
    /// head size is dropped instead).
    pub fn give_head_buf(&self, buf: BytesMut) {
        self.head_bufs.give_emptied(buf, conn::HEAD_BUF * 4);
    }

    /// An empty vector for a head, given back to this core when dropped.
    pub fn take_vec(&self) -> SpareVec<'_> {
        let v = self.vecs.take().unwrap_or_else(|| Vec::with_capacity(SPARE_VEC));
        SpareVec { ctx: self, v }
    }

    /// A pipe for a spliced relay (`None` if none can be made: out of
    /// descriptors, say; the relay then copies).
    pub fn take_pipe(&self) -> Option<splice::Pipe> {
        self.pipes.take().or_else(|| splice::Pipe::new().ok())
    }

    /// Takes back a pipe a relay emptied.
    pub fn give_pipe(&self, pipe: splice::Pipe) {
        self.pipes.give(pipe);
    }
}

/// Moves an empty buffer's start back to the beginning of its allocation.
///
/// `clear` leaves the start where the last `advance` (past a response head)
/// put it, and a read rewinds only once less than its reserve is left: each
/// request on a spare relay buffer would read its response a head further
/// in, and over a few thousand requests every page of every spare buffer
/// would become resident although a small response touches one (measured:
/// ~150 B of RSS per small request, most of what a request added to an idle
/// connection's cost). Head buffers could creep the same way once they grew
/// past the size `take_head_buf` reserves. Asking an empty buffer for one
/// byte more than it has reclaims the room before its start; no copy, no
/// allocation.
fn rewind(buf: &mut BytesMut) {
    debug_assert!(buf.is_empty());
    let _ = buf.try_reclaim(buf.capacity() + 1);
}

impl Spares<BytesMut> {
    /// Keeps `buf` emptied and rewound (see [`rewind`]) unless its whole
    /// allocation is larger than `max_capacity`.
    fn give_emptied(&self, mut buf: BytesMut, max_capacity: usize) {
        buf.clear();
        rewind(&mut buf);
        if buf.capacity() <= max_capacity {
            self.give(buf);
        }
    }
}

/// A head-sized vector on loan from the core's spares (see
/// [`WorkerCtx::take_vec`]); it goes back, emptied, when dropped, unless it
/// grew large.
pub struct SpareVec<'a> {
    ctx: &'a WorkerCtx,
    v: Vec<u8>,
}

impl std::ops::Deref for SpareVec<'_> {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.v
    }
}

impl std::ops::DerefMut for SpareVec<'_> {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.v
    }
}

impl Drop for SpareVec<'_> {
    fn drop(&mut self) {
        let mut v = std::mem::take(&mut self.v);
        if v.capacity() <= SPARE_VEC * 4 {
            v.clear();
            self.ctx.vecs.give(v);
        }
    }
}

fn core_table(table: Arc<Table>, plugins: Option<&CorePlugins>) -> CoreTable {
    if let Some(p) = plugins {
        p.prune(&table);
    }
    let strategies = table
        .pools
        .iter()
        .map(|pool| match plugins.and_then(|p| p.strategy(pool)) {
            Some(w) => PoolStrategy::Wasm(w),
            None => PoolStrategy::Builtin(balance::build(pool)),
        })
        .collect();
    CoreTable { table, strategies }
}

/// Which listener a connection came in on. Its settings are read from the
/// current table's config per request, so a reload changes them live.
pub struct ListenerCtx {
    /// Index into `Table::config.listeners` (listeners cannot be added or
    /// removed by a reload, so the index is stable).
    pub index: usize,
    pub name: String,
    pub mode: ListenerMode,
}

impl CoreTable {
    /// The current settings of listener `l`.
    pub fn listener(&self, l: &ListenerCtx) -> &ListenerConfig {
        &self.table.config.listeners[l.index]
    }
}

/// Runs one core's listeners until `stop` fires, then drains.
pub async fn serve(ctx: Rc<WorkerCtx>, listeners: Vec<(ListenerConfig, TcpListener)>, stop: oneshot::Receiver<()>) {
    let mut accept_tasks = Vec::new();
    for (index, (config, listener)) in listeners.into_iter().enumerate() {
        let lctx = Rc::new(ListenerCtx { index, name: config.name.clone(), mode: config.mode });
        accept_tasks.push(compio::runtime::spawn(accept_loop(Rc::clone(&ctx), lctx, listener)));
    }
    let sweeper = compio::runtime::spawn(sweep_loop(Rc::clone(&ctx)));
    let _ = stop.await;
    // Stop accepting: dropping the tasks cancels the accepts and closes the sockets.
    drop(accept_tasks);
    drop(sweeper);
    ctx.draining.set(true);
    let deadline = Instant::now() + ctx.table().table.config.runtime.drain_timeout;
    while ctx.in_flight.get() > 0 && Instant::now() < deadline {
        timer::sleep(Duration::from_millis(20)).await;
    }
    if ctx.in_flight.get() > 0 {
        tracing::warn!(
            core = ctx.core,
            in_flight = ctx.in_flight.get(),
            "drain timeout: closing requests still in flight"
        );
    }
}

async fn accept_loop(ctx: Rc<WorkerCtx>, lctx: Rc<ListenerCtx>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE/ENFILE/ECONNABORTED: keep serving, back off briefly on fd exhaustion.
                tracing::warn!(listener = %lctx.name, error = %e, "accept failed");
                timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        CoreStats::add(&ctx.stats.accepted, 1);
        let open = CoreStats::get(&ctx.stats.open);
        let max = ctx.table().listener(&lctx).limits.max_connections;
        if open as usize >= max {
            CoreStats::add(&ctx.stats.refused, 1);
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        // For splice(2), which follows the socket's own blocking flag.
        splice::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&stream));
        let (c, l) = (Rc::clone(&ctx), Rc::clone(&lctx));
        match lctx.mode {
            ListenerMode::Http => {
                compio::runtime::spawn(conn::serve_client(c, l, fixed::Sock::new(stream), peer)).detach()
            }
            ListenerMode::Tcp => compio::runtime::spawn(tcp::serve_tcp(c, l, stream, peer)).detach(),
        }
    }
}

async fn sweep_loop(ctx: Rc<WorkerCtx>) {
    loop {
        timer::sleep(Duration::from_secs(1)).await;
        let table = ctx.table();
        let idle = table.table.pools.iter().map(|p| p.config.keepalive.idle_timeout).max();
        if let Some(idle) = idle {
            ctx.upstreams.borrow_mut().sweep(idle);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Buf;

    use super::*;

    #[test]
    fn a_rewound_buffer_reads_from_its_first_byte_again() {
        let mut b = BytesMut::with_capacity(RELAY_BUF);
        let start = b.as_ptr();
        b.extend_from_slice(&[b'x'; 150]);
        b.advance(150);
        b.clear();
        assert_eq!(b.capacity(), RELAY_BUF - 150);
        rewind(&mut b);
        assert_eq!((b.as_ptr(), b.capacity()), (start, RELAY_BUF));
        // At the start already: nothing changes.
        rewind(&mut b);
        assert_eq!((b.as_ptr(), b.capacity()), (start, RELAY_BUF));
    }
}
