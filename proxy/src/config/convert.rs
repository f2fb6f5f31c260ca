//! `raw::Config` → `Config`: every string is parsed and every number
//! range-checked here, once. Problems are collected, not returned at the
//! first: a value that fails is replaced by its default so the checks that
//! follow still run, and all [`Issue`]s come back together.
//!
//! This file holds the walk over the whole config and the checks shared by
//! every table; `listener.rs`, `pool.rs` and `health.rs` (health, agent and
//! outlier checks of a pool) hold the per-table conversions.

mod health;
mod listener;
mod plugins;
mod pool;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_spanned::Spanned;

use super::raw::{self, IntOrStr, Issue};
use super::types::*;
use super::values::{is_name, parse_duration, parse_mode, parse_size};

/// Linux `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Upper bound for `max_head_size` and `max_uri_length`: heads are buffered whole.
const MAX_HEAD_BYTES: i64 = 16 * 1024 * 1024;
/// Stand-in for an address that failed to parse; never reaches a `Config`.
const NO_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 1);

impl Config {
    /// Validates and converts. Host names in `bind`/`addr` are resolved here
    /// (blocking DNS), once; the first address wins. A relative
    /// `plugins.dir` is resolved against `config_dir` (the config file's
    /// directory; empty for the working directory).
    pub(super) fn from_raw(raw: raw::Config, config_dir: &Path) -> Result<Config, Vec<Issue>> {
        let mut cx = Cx::default();
        let runtime = cx.runtime(raw.runtime.unwrap_or_default());
        let admin = cx.admin(raw.admin.unwrap_or_default());
        // From the key, not its value: a bad `dir` is one error, not one more per plugin pool.
        let plugins_on = raw.plugins.as_ref().is_some_and(|p| p.dir.is_some());
        let plugins = cx.plugins(raw.plugins.unwrap_or_default(), config_dir);

        if raw.pools.is_empty() {
            cx.issue(None, "pool", "no [[pool]] defined; at least one is required");
        }
        let (pools, spans): (Vec<_>, Vec<_>) =
            raw.pools.into_iter().enumerate().map(|(i, p)| cx.pool(i, p, plugins_on)).unzip();
        cx.unique(pools.iter().map(|p| &p.name), "pool", &spans);

        if raw.listeners.is_empty() {
            cx.issue(None, "listener", "no [[listener]] defined; at least one is required");
        }
        let (mut listeners, mut name_spans, mut bind_spans) = (Vec::new(), Vec::new(), Vec::new());
        for (i, l) in raw.listeners.into_iter().enumerate() {
            let (listener, name_span, bind_span) = cx.listener(i, l, &pools);
            listeners.push(listener);
            name_spans.push(name_span);
            bind_spans.push(bind_span);
        }
        cx.unique(listeners.iter().map(|l| &l.name), "listener", &name_spans);
        cx.unique_binds(&listeners, &bind_spans);

        if cx.issues.is_empty() { Ok(Config { runtime, admin, listeners, pools, plugins }) } else { Err(cx.issues) }
    }
}

/// Collects issues while converting.
#[derive(Default)]
struct Cx {
    issues: Vec<Issue>,
}

impl Cx {
    fn issue(&mut self, span: Option<Range<usize>>, key: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue { span, key: key.into(), message: message.into() });
    }

    fn runtime(&mut self, r: raw::Runtime) -> RuntimeConfig {
        let d = RuntimeConfig::default();
        let mut log_level = d.log_level;
        if let Some(s) = r.log_level {
            if s.get_ref().trim().is_empty() {
                self.issue(Some(s.span()), "runtime.log_level", "log_level is empty; write e.g. \"info\"");
            } else {
                log_level = s.into_inner();
            }
        }
        RuntimeConfig {
            workers: self.int(r.workers, "runtime.workers".into(), 1..=1024, d.workers),
            pin_workers: r.pin_workers.unwrap_or(d.pin_workers),
            log_level,
            access_log: r.access_log.unwrap_or(d.access_log),
            drain_timeout: self.duration(r.drain_timeout, "runtime.drain_timeout".into(), d.drain_timeout),
        }
    }

    fn admin(&mut self, a: raw::Admin) -> AdminConfig {
        let mut out = AdminConfig::default();
        if let Some(s) = a.socket {
            let len = s.get_ref().len();
            if len == 0 || len > MAX_SOCKET_PATH {
                let msg = format!("socket path must be 1–{MAX_SOCKET_PATH} bytes long (Unix sockets), not {len}");
                self.issue(Some(s.span()), "admin.socket", msg);
            }
            out.socket = PathBuf::from(s.into_inner());
        }
        if let Some(m) = a.mode {
            match parse_mode(m.get_ref()) {
                Ok(mode) => out.mode = mode,
                Err(e) => self.issue(Some(m.span()), "admin.mode", e),
            }
        }
        out
    }

    /// A listener/pool/server name, or `default` when omitted. Also returns
    /// where duplicates get reported: the name, else the table header.
    fn name(
        &mut self,
        n: Option<Spanned<String>>,
        at: &str,
        header: Range<usize>,
        default: String,
    ) -> (String, Range<usize>) {
        let Some(n) = n else { return (default, header) };
        if !is_name(n.get_ref()) {
            let msg = format!("name \"{}\" must be 1–64 letters, digits, '-', '_' or '.'", n.get_ref());
            self.issue(Some(n.span()), format!("{at}.name"), msg);
        }
        let span = n.span();
        (n.into_inner(), span)
    }

    /// Reports every repeat of a name; `spans[i]` locates item `i` of `what`.
    fn unique<'a>(&mut self, names: impl Iterator<Item = &'a String>, what: &str, spans: &[Range<usize>]) {
        let noun = what.rsplit('.').next().unwrap_or(what);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, name) in names.enumerate() {
            if let Some(&first) = seen.get(name.as_str()) {
                let msg = format!("duplicate {noun} name \"{name}\"; {what}[{first}] already uses it");
                self.issue(spans.get(i).cloned(), format!("{what}[{i}].name"), msg);
            } else {
                seen.insert(name, i);
            }
        }
    }

    /// An integer in `range`, converted to the typed field's type. Messages
    /// name the value by the last segment of `key`.
    fn int<T: TryFrom<i64>>(
        &mut self,
        v: Option<Spanned<i64>>,
        key: String,
        range: RangeInclusive<i64>,
        default: T,
    ) -> T {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        match T::try_from(n) {
            Ok(t) if range.contains(&n) => t,
            _ => {
                let msg = format!("{} {n} is outside {}–{}", last(&key), range.start(), range.end());
                self.issue(Some(v.span()), key, msg);
                default
            }
        }
    }

    /// A duration where 0 is meaningful (drain nothing, no keep-alive, …).
    fn duration(&mut self, v: Option<Spanned<IntOrStr>>, key: String, default: Duration) -> Duration {
        let Some(v) = v else { return default };
        parse_duration(v.get_ref()).unwrap_or_else(|e| {
            self.issue(Some(v.span()), key, e);
            default
        })
    }

    /// A duration that must be > 0 (a zero timeout would fail every request).
    fn positive_duration(&mut self, v: Option<Spanned<IntOrStr>>, key: String, default: Duration) -> Duration {
        let span = v.as_ref().map(Spanned::span);
        let d = self.duration(v, key.clone(), default);
        if d.is_zero() {
            self.issue(span, key, "duration must be greater than zero");
            return default;
        }
        d
    }

    /// A byte size in `range`.
    fn size(&mut self, v: Option<Spanned<IntOrStr>>, key: String, range: RangeInclusive<i64>, default: usize) -> usize {
        let Some(v) = v else { return default };
        let parsed = parse_size(v.get_ref()).and_then(|n| {
            usize::try_from(n)
                .ok()
                .filter(|_| range.contains(&n))
                .ok_or_else(|| format!("{} {n} is outside {}–{} bytes", last(&key), range.start(), range.end()))
        });
        parsed.unwrap_or_else(|e| {
            self.issue(Some(v.span()), key, e);
            default
        })
    }
}

/// `pool[0].server[1].weight` → `weight`
fn last(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}
