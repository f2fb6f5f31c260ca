//! `[[listener]]` tables → [`ListenerConfig`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;

use serde_spanned::Spanned;

use super::{Cx, MAX_HEAD_BYTES, NO_ADDR};
use crate::config::raw;
use crate::config::types::*;
use crate::config::values::{is_origin_form, parse_addr};

impl Cx {
    /// Returns the listener, where its name is, and where its `bind` is.
    pub(super) fn listener(
        &mut self,
        i: usize,
        l: Spanned<raw::Listener>,
        pools: &[PoolConfig],
    ) -> (ListenerConfig, Range<usize>, Option<Range<usize>>) {
        let header = l.span();
        let l = l.into_inner();
        let at = format!("listener[{i}]");
        let k = |field: &str| format!("{at}.{field}");
        let (name, name_span) = self.name(l.name, &at, header.clone(), format!("listener-{}", i + 1));
        // bind_span is kept only for a valid address, for `unique_binds`.
        let (bind, bind_span) = match l.bind {
            Some(b) => match parse_addr(b.get_ref(), true) {
                Ok(addr) => (addr, Some(b.span())),
                Err(e) => {
                    self.issue(Some(b.span()), k("bind"), e);
                    (NO_ADDR, None)
                }
            },
            None => {
                self.issue(Some(header.clone()), k("bind"), "missing required key `bind` (IP:port)");
                (NO_ADDR, None)
            }
        };
        let pool = self.pool_ref(l.pool, &at, header, pools);
        let mut out = ListenerConfig::http(&name, bind, &pool);

        if let Some(m) = l.mode {
            match m.get_ref().as_str() {
                "http" => out.mode = ListenerMode::Http,
                "tcp" => out.mode = ListenerMode::Tcp,
                other => {
                    let msg = format!("unknown mode \"{other}\"; use \"http\" or \"tcp\"");
                    self.issue(Some(m.span()), k("mode"), msg);
                }
            }
        }
        out.forward_headers = l.forward_headers.unwrap_or(out.forward_headers);
        out.backlog = self.int(l.backlog, k("backlog"), 1..=i64::from(i32::MAX), out.backlog);

        let (lim, d) = (l.limits.unwrap_or_default(), out.limits.clone());
        out.limits = ListenerLimits {
            max_head_size: self.size(
                lim.max_head_size,
                k("limits.max_head_size"),
                1024..=MAX_HEAD_BYTES,
                d.max_head_size,
            ),
            max_headers: self.int(lim.max_headers, k("limits.max_headers"), 1..=10_000, d.max_headers),
            max_uri_length: self.size(
                lim.max_uri_length,
                k("limits.max_uri_length"),
                1..=MAX_HEAD_BYTES,
                d.max_uri_length,
            ),
            max_connections: self.int(
                lim.max_connections,
                k("limits.max_connections"),
                1..=10_000_000,
                d.max_connections,
            ),
        };
        let (t, d) = (l.timeouts.unwrap_or_default(), out.timeouts.clone());
        out.timeouts = ListenerTimeouts {
            client_header: self.positive_duration(t.client_header, k("timeouts.client_header"), d.client_header),
            keepalive: self.duration(t.keepalive, k("timeouts.keepalive"), d.keepalive),
            client_body: self.positive_duration(t.client_body, k("timeouts.client_body"), d.client_body),
            tunnel: self.positive_duration(t.tunnel, k("timeouts.tunnel"), d.tunnel),
        };
        if let Some(sp) = l.status_path {
            if !is_origin_form(sp.get_ref(), false) {
                let msg = format!(
                    "status_path \"{}\" must be a path starting with '/' (letters, digits, -._~!$&'()*+,;=:@/ \
                     and %XX escapes; no query)",
                    sp.get_ref()
                );
                self.issue(Some(sp.span()), k("status_path"), msg);
            } else if out.mode == ListenerMode::Tcp {
                let msg = "status_path needs mode = \"http\"; a tcp listener does not read requests";
                self.issue(Some(sp.span()), k("status_path"), msg);
            } else {
                out.status_path = Some(sp.into_inner());
            }
        }
        (out, name_span, bind_span)
    }

    /// The pool a listener forwards to: named, or the only one there is.
    fn pool_ref(&mut self, r: Option<Spanned<String>>, at: &str, header: Range<usize>, pools: &[PoolConfig]) -> String {
        let names = || pools.iter().map(|p| format!("\"{}\"", p.name)).collect::<Vec<_>>().join(", ");
        match r {
            Some(r) => {
                if !pools.is_empty() && !pools.iter().any(|p| &p.name == r.get_ref()) {
                    let msg = format!("pool \"{}\" does not exist; defined pools: {}", r.get_ref(), names());
                    self.issue(Some(r.span()), format!("{at}.pool"), msg);
                }
                r.into_inner()
            }
            None if pools.len() == 1 => pools[0].name.clone(),
            None => {
                // With no pools at all, that is already reported once.
                if !pools.is_empty() {
                    let msg = format!("missing key `pool`: there are {} pools ({}), name one", pools.len(), names());
                    self.issue(Some(header), format!("{at}.pool"), msg);
                }
                String::new()
            }
        }
    }

    /// Two listeners on one address would silently share it (SO_REUSEPORT).
    /// `spans[i]` is `None` where listener `i` has no valid `bind`.
    pub(super) fn unique_binds(&mut self, listeners: &[ListenerConfig], spans: &[Option<Range<usize>>]) {
        let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
        for (i, l) in listeners.iter().enumerate() {
            let Some(Some(span)) = spans.get(i) else {
                continue;
            };
            if l.bind.port() == 0 {
                continue;
            }
            if let Some(&first) = seen.get(&l.bind) {
                let msg = format!("{} is already bound by listener[{first}] (\"{}\")", l.bind, listeners[first].name);
                self.issue(Some(span.clone()), format!("listener[{i}].bind"), msg);
            } else {
                seen.insert(l.bind, i);
            }
        }
    }
}
