//! The listener's `status_path` page: JSON about the pool it forwards to,
//! in the shape the simple Python balancers' `/proxy/status` had. Rendered
//! by the renderer the binary installs (the admin module's, from control
//! snapshots); not a hot path (it takes the control lock briefly), only an
//! operator's page.

use bytes::BytesMut;

use super::WorkerCtx;
use super::fixed::Sock;
use super::forward::After;
use super::io::write_all;
use crate::http::{Method, RequestHead};

/// The page body, or a one-line error JSON while the control side is not up yet.
pub fn page(ctx: &WorkerCtx, pool: &str) -> String {
    match ctx.shared.status_page.get() {
        Some(render) => render(pool),
        None => r#"{"error":"starting"}"#.to_string(),
    }
}

/// `fastlb@HOST:PID`: names this instance on status pages.
pub fn proxy_id() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: valid buffer and length; gethostname NUL-terminates on success.
    let host = if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".to_string()
    };
    format!("fastlb@{host}:{}", std::process::id())
}

/// Writes the page as a complete response (no body for HEAD).
pub async fn respond(client: &Sock, head: &RequestHead, body: String) -> After {
    let keep = head.keep_alive;
    let mut out = BytesMut::with_capacity(body.len() + 160);
    out.extend_from_slice(
        format!(
            "HTTP/1.{} 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: {}\r\n{}\r\n",
            head.minor_version.min(1),
            body.len(),
            if keep { "" } else { "Connection: close\r\n" }
        )
        .as_bytes(),
    );
    if head.method != Method::Head {
        out.extend_from_slice(body.as_bytes());
    }
    match write_all(client, out).await.0 {
        Ok(()) if keep => After::KeepAlive,
        _ => After::Close,
    }
}
