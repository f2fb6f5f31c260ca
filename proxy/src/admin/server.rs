//! The `fastlb-admin` thread: binds the admin Unix socket and answers
//! command lines (framing in [`crate::admin`]). Its own compio runtime, not a
//! data-path core, so the control calls it makes may lock and build tables.

use std::cell::Cell;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use compio::BufResult;
use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::{UnixListener, UnixStream};
use futures_channel::oneshot;
use socket2::{Domain, SockAddr, Socket, Type};

use super::{MAX_LINE, Reply, frame, respond};
use crate::config::AdminConfig;
use crate::control::ControlApi;

/// Admin connections served at once; more are answered with an error and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// A connection that neither sends a line nor takes its answer for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Binds `cfg.socket` with `cfg.mode` and serves it on a new "fastlb-admin"
/// thread until `stop` fires (or its sender is dropped); the socket file is
/// removed then.
///
/// Fails, before any thread starts, when the path is a live socket ("in use
/// by another process"), is not a socket, or cannot be bound. A stale socket
/// file (nothing accepts on it) is replaced.
pub fn spawn_admin(
    cfg: &AdminConfig,
    api: Arc<dyn ControlApi>,
    stop: oneshot::Receiver<()>,
) -> io::Result<JoinHandle<()>> {
    let (listener, file) = bind(&cfg.socket, cfg.mode)?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("fastlb-admin".into())
        .spawn(move || admin_main(listener, file, api, stop, ready_tx))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(io::Error::new(e.kind(), format!("admin socket {}: {e}", cfg.socket.display())))
        }
        Err(_) => {
            let _ = handle.join();
            Err(io::Error::other("admin thread exited during start-up"))
        }
    }
}

/// The bound socket file; removed on drop if the path still names it (and
/// not a socket someone else has since put there).
struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn in_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("admin socket {}: {e}", path.display()))
}

/// Clears a stale socket file, binds, applies `mode`, and only then listens:
/// until listen(2) every connect is refused, so the socket is never usable
/// with the wider permissions the umask gave it at bind(2).
fn bind(path: &Path, mode: u32) -> io::Result<(StdUnixListener, SocketFile)> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("admin socket {} exists and is not a socket; remove it or set [admin] socket", path.display()),
            ));
        }
        Ok(_) => match StdUnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("admin socket {} is in use by another process", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing stale admin socket");
                std::fs::remove_file(path).map_err(|e| in_path(path, e))?;
            }
            Err(e) => return Err(in_path(path, e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(in_path(path, e)),
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    let addr = SockAddr::unix(path).map_err(|e| in_path(path, e))?;
    socket.bind(&addr).map_err(|e| in_path(path, e))?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| in_path(path, e))?;
    let file = SocketFile { path: path.to_path_buf(), id: (meta.dev(), meta.ino()) };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777)).map_err(|e| in_path(path, e))?;
    socket.listen(64).map_err(|e| in_path(path, e))?;
    Ok((socket.into(), file))
}

fn admin_main(
    listener: StdUnixListener,
    file: SocketFile,
    api: Arc<dyn ControlApi>,
    stop: oneshot::Receiver<()>,
    ready: mpsc::Sender<io::Result<()>>,
) {
    let rt = match compio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let path = file.path.clone();
    rt.block_on(async move {
        let listener = match UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        tracing::info!(path = %path.display(), "admin socket listening");
        let _ = ready.send(Ok(()));
        let accept = compio::runtime::spawn(accept_loop(listener, api));
        let _ = stop.await;
        drop(accept);
    });
    // Open connections are dropped with the runtime, before the file goes.
    drop(rt);
    drop(file);
}

async fn accept_loop(listener: UnixListener, api: Arc<dyn ControlApi>) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("admin socket accept: {e}");
                compio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.get() >= MAX_CONNECTIONS {
            let answer = frame(&format!("error: too many admin connections (max {MAX_CONNECTIONS})"));
            compio::runtime::spawn(async move {
                let _ = write_all(&stream, answer.into_bytes()).await;
            })
            .detach();
            continue;
        }
        open.set(open.get() + 1);
        let (open, api) = (Rc::clone(&open), Arc::clone(&api));
        compio::runtime::spawn(async move {
            serve_conn(&stream, &*api).await;
            open.set(open.get() - 1);
        })
        .detach();
    }
}

/// Answers lines until EOF, `quit`, an over-long line, an I/O error or
/// [`IDLE_TIMEOUT`]. Pipelined lines that arrive together get their answers
/// in one write.
async fn serve_conn(stream: &UnixStream, api: &dyn ControlApi) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let mut out = String::new();
        let mut close = false;
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            if end > MAX_LINE {
                out.push_str(&too_long());
                close = true;
                break;
            }
            match answer_line(api, &line[..end]) {
                Some(answer) => out.push_str(&answer),
                None => {
                    close = true;
                    break;
                }
            }
        }
        if !close && buf.len() > MAX_LINE {
            out.push_str(&too_long());
            close = true;
        }
        if !out.is_empty() && write_all(stream, out.into_bytes()).await.is_err() {
            return;
        }
        if close {
            return;
        }
        buf.reserve(1024);
        let mut s = stream;
        let read = compio::time::timeout(IDLE_TIMEOUT, s.append(buf)).await;
        let Ok(BufResult(res, b)) = read else { return };
        buf = b;
        match res {
            Ok(0) => {
                // EOF: a last line without '\n' still gets its answer.
                if !buf.is_empty()
                    && let Some(answer) = answer_line(api, &buf)
                {
                    let _ = write_all(stream, answer.into_bytes()).await;
                }
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// The framed answer to one line, or `None` to close (`quit`).
fn answer_line(api: &dyn ControlApi, line: &[u8]) -> Option<String> {
    let Ok(line) = std::str::from_utf8(line) else {
        return Some(frame("error: command is not UTF-8"));
    };
    match respond(api, line.trim_end_matches('\r')) {
        Reply::Answer(a) => Some(frame(&a)),
        Reply::Close => None,
    }
}

fn too_long() -> String {
    frame(&format!("error: line too long (max {MAX_LINE} bytes); closing"))
}

async fn write_all(stream: &UnixStream, data: Vec<u8>) -> io::Result<()> {
    let mut s = stream;
    match compio::time::timeout(IDLE_TIMEOUT, s.write_all(data)).await {
        Ok(BufResult(res, _)) => res,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "admin write timed out")),
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
