//! `mode = "tcp"` listeners: choose a server per connection, connect (with
//! the same retry and passive-check rules as HTTP connects) and relay bytes
//! both ways until both sides are done.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;
use compio::net::TcpStream;

use super::fixed::Sock;
use super::forward::{Active, connect_chosen, tunnel};
use super::{ListenerCtx, WorkerCtx};
use crate::balance::table::{bump, now_ms};
use crate::balance::{self};

pub async fn serve_tcp(ctx: Rc<WorkerCtx>, lctx: Rc<ListenerCtx>, client: TcpStream, peer: SocketAddr) {
    // Tunnels stay plain descriptors (see `fixed`: registering pays off
    // for connections that carry many requests).
    let client = Sock::new(client);
    let ct = ctx.table();
    let lconf = ct.listener(&lctx);
    let idle = lconf.timeouts.tunnel;
    let Some(pi) = ct.table.pool(&lconf.pool) else { return };
    let pool = &ct.table.pools[pi];
    let strategy = ct.strategies[pi].as_strategy();
    // Only the client address is known before the first byte.
    let view = balance::RequestView { method: b"", client_ip: peer.ip(), host: None, path: b"", fields: &() };
    let hash = balance::request_hash(pool, &view);
    let mut tried = 0u64;
    let mut attempt = 0u32;
    loop {
        let Some(choice) = balance::choose(strategy, pool, hash, attempt, now_ms(), tried, None, None) else { return };
        if choice.index < 64 {
            tried |= 1 << choice.index;
        }
        let server = &pool.servers[choice.index];
        let _active = Active::new(server);
        let core = server.stats.core(ctx.core);
        bump(&core.requests, 1);
        match connect_chosen(ctx.core, pool, server).await {
            Some(up) => {
                let (sent, received) = tunnel(&client, &up, &mut BytesMut::new(), BytesMut::new(), idle).await;
                bump(&core.bytes_in, sent);
                bump(&core.bytes_out, received);
                return;
            }
            None if attempt < pool.config.retries => {
                bump(&core.retries, 1);
                attempt += 1;
            }
            None => return,
        }
    }
}
