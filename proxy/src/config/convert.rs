//! `raw::Config` → `Config`: every string is parsed and every number
//! range-checked here, once. Problems are collected, not returned at the
//! first: a value that fails is replaced by its default so the checks that
//! follow still run, and all [`Issue`]s come back together.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::time::Duration;

use serde_spanned::Spanned;

use super::raw::{self, IntOrStr, Issue};
use super::types::*;

/// Linux `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Upper bound for `max_head_size` and `max_uri_length`: heads are buffered whole.
const MAX_HEAD_BYTES: i64 = 16 * 1024 * 1024;

impl TryFrom<raw::Config> for Config {
    type Error = Vec<Issue>;

    /// Validates and converts. Host names in `bind`/`addr` are resolved here
    /// (blocking DNS), once; the first address wins.
    fn try_from(raw: raw::Config) -> Result<Config, Vec<Issue>> {
        let mut cx = Cx::default();
        let runtime = cx.runtime(raw.runtime.unwrap_or_default());
        let admin = cx.admin(raw.admin.unwrap_or_default());

        if raw.pools.is_empty() {
            cx.issue(None, "pool", "no [[pool]] defined; at least one is required");
        }
        let (pools, spans): (Vec<PoolConfig>, Vec<_>) = raw.pools.into_iter().enumerate().map(|(i, p)| cx.pool(i, p)).unzip();
        cx.unique(pools.iter().map(|p| &p.name), "pool", &spans);

        if raw.listeners.is_empty() {
            cx.issue(None, "listener", "no [[listener]] defined; at least one is required");
        }
        let mut listeners = Vec::new();
        let mut name_spans = Vec::new();
        let mut bind_spans = Vec::new();
        for (i, l) in raw.listeners.into_iter().enumerate() {
            let (listener, name_span, bind_span) = cx.listener(i, l, &pools);
            listeners.push(listener);
            name_spans.push(name_span);
            bind_spans.push(bind_span);
        }
        cx.unique(listeners.iter().map(|l| &l.name), "listener", &name_spans);
        cx.unique_binds(&listeners, &bind_spans);

        if cx.issues.is_empty() {
            Ok(Config { runtime, admin, listeners, pools })
        } else {
            Err(cx.issues)
        }
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
        let log_level = match r.log_level {
            Some(s) if s.get_ref().trim().is_empty() => {
                self.issue(Some(s.span()), "runtime.log_level", "log_level is empty; write e.g. \"info\"");
                d.log_level
            }
            Some(s) => s.into_inner(),
            None => d.log_level,
        };
        RuntimeConfig {
            workers: self.int(r.workers, "runtime.workers", "workers", 1..=1024, d.workers),
            pin_workers: r.pin_workers.unwrap_or(d.pin_workers),
            log_level,
            access_log: r.access_log.unwrap_or(d.access_log),
            drain_timeout: self.duration(r.drain_timeout, "runtime.drain_timeout", d.drain_timeout, true),
        }
    }

    fn admin(&mut self, a: raw::Admin) -> AdminConfig {
        let d = AdminConfig::default();
        let socket = match a.socket {
            None => d.socket,
            Some(s) => {
                let len = s.get_ref().len();
                if len == 0 || len > MAX_SOCKET_PATH {
                    let msg = format!("socket path must be 1–{MAX_SOCKET_PATH} bytes long (Unix sockets), not {len}");
                    self.issue(Some(s.span()), "admin.socket", msg);
                }
                PathBuf::from(s.into_inner())
            }
        };
        let mode = match a.mode {
            None => d.mode,
            Some(m) => match parse_mode(m.get_ref()) {
                Ok(mode) => mode,
                Err(e) => {
                    self.issue(Some(m.span()), "admin.mode", e);
                    d.mode
                }
            },
        };
        AdminConfig { socket, mode }
    }

    /// Returns the listener, where its name is, and where its `bind` is.
    fn listener(
        &mut self,
        i: usize,
        l: Spanned<raw::Listener>,
        pools: &[PoolConfig],
    ) -> (ListenerConfig, Range<usize>, Option<Range<usize>>) {
        let header = l.span();
        let l = l.into_inner();
        let at = format!("listener[{i}]");
        let (name, name_span) = self.name(l.name, &at, header.clone(), format!("listener-{}", i + 1));
        let bind_span = l.bind.as_ref().map(Spanned::span);
        let bind = match l.bind {
            None => {
                self.issue(Some(header.clone()), format!("{at}.bind"), "missing required key `bind` (IP:port)");
                SocketAddr::from(([127, 0, 0, 1], 0))
            }
            Some(b) => self.addr(&b, format!("{at}.bind"), true),
        };
        let mode = match l.mode {
            None => ListenerMode::Http,
            Some(m) => match m.get_ref().as_str() {
                "http" => ListenerMode::Http,
                "tcp" => ListenerMode::Tcp,
                other => {
                    self.issue(Some(m.span()), format!("{at}.mode"), format!("unknown mode \"{other}\"; use \"http\" or \"tcp\""));
                    ListenerMode::Http
                }
            },
        };
        let pool = self.pool_ref(l.pool, &at, header, pools);

        let dl = ListenerLimits::default();
        let lim = l.limits.unwrap_or_default();
        let limits = ListenerLimits {
            max_head_size: self.size(lim.max_head_size, &format!("{at}.limits.max_head_size"), 1024, dl.max_head_size),
            max_headers: self.int(lim.max_headers, &format!("{at}.limits.max_headers"), "max_headers", 1..=10_000, dl.max_headers),
            max_uri_length: self.size(lim.max_uri_length, &format!("{at}.limits.max_uri_length"), 1, dl.max_uri_length),
            max_connections: self.int(
                lim.max_connections,
                &format!("{at}.limits.max_connections"),
                "max_connections",
                1..=10_000_000,
                dl.max_connections,
            ),
        };

        let dt = ListenerTimeouts::default();
        let t = l.timeouts.unwrap_or_default();
        let timeouts = ListenerTimeouts {
            client_header: self.duration(t.client_header, &format!("{at}.timeouts.client_header"), dt.client_header, false),
            keepalive: self.duration(t.keepalive, &format!("{at}.timeouts.keepalive"), dt.keepalive, true),
            client_body: self.duration(t.client_body, &format!("{at}.timeouts.client_body"), dt.client_body, false),
        };

        let mut out = ListenerConfig::http(&name, bind, &pool);
        out.mode = mode;
        out.forward_headers = l.forward_headers.unwrap_or(out.forward_headers);
        out.backlog = self.int(l.backlog, &format!("{at}.backlog"), "backlog", 1..=i64::from(i32::MAX), out.backlog);
        out.limits = limits;
        out.timeouts = timeouts;
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

    /// Returns the pool and where its name is.
    fn pool(&mut self, i: usize, p: Spanned<raw::Pool>) -> (PoolConfig, Range<usize>) {
        let header = p.span();
        let p = p.into_inner();
        let at = format!("pool[{i}]");
        let (name, name_span) = self.name(p.name, &at, header.clone(), format!("pool-{}", i + 1));
        let mut out = PoolConfig::new(&name, Vec::new());

        if let Some(s) = &p.strategy {
            match StrategyKind::parse(s.get_ref()) {
                Some(k) => out.strategy = k,
                None => {
                    let valid = StrategyKind::ALL.map(StrategyKind::name).join(", ");
                    let msg = format!("unknown strategy \"{}\"; valid strategies: {valid}", s.get_ref());
                    self.issue(Some(s.span()), format!("{at}.strategy"), msg);
                }
            }
        }
        out.hash_key = self.hash_key(p.hash_key, &at, out.strategy);
        out.sticky = match p.sticky {
            None => None,
            Some(s) => match s.into_inner() {
                raw::Sticky::Enabled(false) => None,
                raw::Sticky::Enabled(true) => Some(StickyConfig::default()),
                raw::Sticky::Table(t) => Some(self.sticky(t, &at)),
            },
        };
        out.retries = self.int(p.retries, &format!("{at}.retries"), "retries", 0..=100, out.retries);

        let t = p.timeouts.unwrap_or_default();
        out.timeouts = PoolTimeouts {
            connect: self.duration(t.connect, &format!("{at}.timeouts.connect"), out.timeouts.connect, false),
            response: self.duration(t.response, &format!("{at}.timeouts.response"), out.timeouts.response, false),
        };
        let k = p.keepalive.unwrap_or_default();
        out.keepalive = KeepaliveConfig {
            max_idle: self.int(k.max_idle, &format!("{at}.keepalive.max_idle"), "max_idle", 0..=1_000_000, out.keepalive.max_idle),
            idle_timeout: self.duration(k.idle_timeout, &format!("{at}.keepalive.idle_timeout"), out.keepalive.idle_timeout, true),
        };
        let ps = p.passive.unwrap_or_default();
        out.passive = PassiveConfig {
            max_fails: self.int(ps.max_fails, &format!("{at}.passive.max_fails"), "max_fails", 1..=1_000_000, out.passive.max_fails),
            cooldown: self.duration(ps.cooldown, &format!("{at}.passive.cooldown"), out.passive.cooldown, true),
        };

        if p.servers.is_empty() {
            self.issue(Some(header), format!("{at}.server"), format!("pool \"{name}\" has no servers; add a [[pool.server]]"));
        }
        let mut name_spans = Vec::new();
        for (j, s) in p.servers.into_iter().enumerate() {
            let (server, span) = self.server(j, s, &at);
            out.servers.push(server);
            name_spans.push(span);
        }
        self.unique(out.servers.iter().map(|s| &s.name), &format!("{at}.server"), &name_spans);
        (out, name_span)
    }

    fn hash_key(&mut self, h: Option<Spanned<String>>, at: &str, strategy: StrategyKind) -> HashKey {
        let key = format!("{at}.hash_key");
        let Some(h) = h else {
            // url_hash hashes the request target unless told to use the path only.
            return if strategy == StrategyKind::UrlHash { HashKey::Uri } else { HashKey::ClientIp };
        };
        let parsed = match parse_hash_key(h.get_ref()) {
            Ok(k) => k,
            Err(e) => {
                self.issue(Some(h.span()), key, e);
                return HashKey::ClientIp;
            }
        };
        let clash = match strategy {
            StrategyKind::IpHash => (parsed != HashKey::ClientIp).then_some("ip_hash always hashes client_ip"),
            StrategyKind::UrlHash => {
                (!matches!(parsed, HashKey::Path | HashKey::Uri)).then_some("url_hash hashes \"uri\" or \"path\"")
            }
            _ => None,
        };
        if let Some(why) = clash {
            let msg = format!("hash_key \"{}\" conflicts with the strategy: {why}; use consistent_hash for other keys", h.get_ref());
            self.issue(Some(h.span()), key, msg);
        }
        parsed
    }

    fn sticky(&mut self, t: raw::StickyTable, at: &str) -> StickyConfig {
        let mut out = StickyConfig::default();
        if let Some(c) = t.cookie {
            if is_token(c.get_ref()) {
                out.cookie = c.into_inner();
            } else {
                let msg = format!("\"{}\" is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)", c.get_ref());
                self.issue(Some(c.span()), format!("{at}.sticky.cookie"), msg);
            }
        }
        if let Some(m) = t.max_age {
            out.max_age = Some(self.duration(Some(m), &format!("{at}.sticky.max_age"), Duration::from_secs(1), false));
        }
        out
    }

    fn server(&mut self, j: usize, s: Spanned<raw::Server>, pool_at: &str) -> (ServerConfig, Range<usize>) {
        let header = s.span();
        let s = s.into_inner();
        let at = format!("{pool_at}.server[{j}]");
        let (name, name_span) = self.name(s.name, &at, header.clone(), format!("server-{}", j + 1));
        let addr = match s.addr {
            None => {
                self.issue(Some(header), format!("{at}.addr"), "missing required key `addr` (IP:port or host:port)");
                SocketAddr::from(([127, 0, 0, 1], 1))
            }
            Some(a) => self.addr(&a, format!("{at}.addr"), false),
        };
        let mut out = ServerConfig::new(&name, addr);
        out.weight = self.int(s.weight, &format!("{at}.weight"), "weight", 0..=256, out.weight);
        out.zone = s.zone.and_then(|z| {
            if z.get_ref().trim().is_empty() {
                self.issue(Some(z.span()), format!("{at}.zone"), "zone is empty; omit the key for no zone");
                None
            } else {
                Some(z.into_inner())
            }
        });
        out.backup = s.backup.unwrap_or(out.backup);
        for (k, tag) in s.tags.into_iter().enumerate() {
            if tag.get_ref().trim().is_empty() {
                self.issue(Some(tag.span()), format!("{at}.tags[{k}]"), "tag is empty");
            } else {
                out.tags.push(tag.into_inner());
            }
        }
        (out, name_span)
    }

    /// A listener/pool/server name, or `default` when omitted. Returns the
    /// span duplicates are reported at (the name, else the table header).
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

    /// Reports every repeat of a name; `spans[i]` locates item `i`.
    fn unique<'a>(&mut self, names: impl Iterator<Item = &'a String>, what: &str, spans: &[Range<usize>]) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, name) in names.enumerate() {
            if let Some(&first) = seen.get(name.as_str()) {
                let noun = what.rsplit('.').next().unwrap_or(what);
                let msg = format!("duplicate {noun} name \"{name}\"; {what}[{first}] already uses it");
                self.issue(spans.get(i).cloned(), format!("{what}[{i}].name"), msg);
            } else {
                seen.insert(name, i);
            }
        }
    }

    /// Two listeners on one address would silently share it (SO_REUSEPORT).
    fn unique_binds(&mut self, listeners: &[ListenerConfig], spans: &[Option<Range<usize>>]) {
        let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
        for (i, l) in listeners.iter().enumerate() {
            if l.bind.port() == 0 {
                continue;
            }
            if let Some(&first) = seen.get(&l.bind) {
                let span = spans.get(i).cloned().flatten();
                let msg = format!("{} is already bound by listener[{first}] (\"{}\")", l.bind, listeners[first].name);
                self.issue(span, format!("listener[{i}].bind"), msg);
            } else {
                seen.insert(l.bind, i);
            }
        }
    }

    fn addr(&mut self, a: &Spanned<String>, key: String, allow_port_zero: bool) -> SocketAddr {
        match parse_addr(a.get_ref(), allow_port_zero) {
            Ok(addr) => addr,
            Err(e) => {
                self.issue(Some(a.span()), key, e);
                SocketAddr::from(([127, 0, 0, 1], 1))
            }
        }
    }

    /// An integer in `range`, converted to the typed field's type.
    fn int<T: TryFrom<i64>>(
        &mut self,
        v: Option<Spanned<i64>>,
        key: &str,
        what: &str,
        range: RangeInclusive<i64>,
        default: T,
    ) -> T {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        match T::try_from(n) {
            Ok(t) if range.contains(&n) => t,
            _ => {
                let msg = format!("{what} {n} is outside {}–{}", range.start(), range.end());
                self.issue(Some(v.span()), key, msg);
                default
            }
        }
    }

    fn duration(&mut self, v: Option<Spanned<IntOrStr>>, key: &str, default: Duration, allow_zero: bool) -> Duration {
        let Some(v) = v else { return default };
        match parse_duration(v.get_ref()) {
            Ok(d) if d.is_zero() && !allow_zero => {
                self.issue(Some(v.span()), key, "duration must be greater than zero");
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.issue(Some(v.span()), key, e);
                default
            }
        }
    }

    fn size(&mut self, v: Option<Spanned<IntOrStr>>, key: &str, min: i64, default: usize) -> usize {
        let Some(v) = v else { return default };
        let what = key.rsplit('.').next().unwrap_or(key);
        match parse_size(v.get_ref()) {
            Ok(n) if (min..=MAX_HEAD_BYTES).contains(&n) => n as usize,
            Ok(n) => {
                self.issue(Some(v.span()), key, format!("{what} {n} is outside {min}–{MAX_HEAD_BYTES} bytes"));
                default
            }
            Err(e) => {
                self.issue(Some(v.span()), key, e);
                default
            }
        }
    }
}

/// `"250ms"`, `"10s"`, `"2m"`, `"1h"`, or an integer number of seconds.
pub(crate) fn parse_duration(v: &IntOrStr) -> Result<Duration, String> {
    let s = match v {
        IntOrStr::Int(n) if *n < 0 => return Err(format!("duration {n} is negative")),
        IntOrStr::Int(n) => return Ok(Duration::from_secs(n.unsigned_abs())),
        IntOrStr::Str(s) => s.trim(),
    };
    let bad = |why: &dyn Display| format!("bad duration \"{s}\": {why}");
    if s.is_empty() {
        return Err("duration is empty; write e.g. \"10s\" or \"250ms\"".into());
    }
    if s.starts_with('-') {
        return Err(bad(&"negative durations are not allowed"));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(bad(&"expected a whole number followed by ms, s, m or h"));
    }
    let n: u64 = num.parse().map_err(|_| bad(&"number too large"))?;
    let secs_per = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "" => return Err(bad(&"missing unit; use ms, s, m or h (or an integer for seconds)")),
        u if u.starts_with('.') => return Err(bad(&"use whole numbers, e.g. \"1500ms\" instead of \"1.5s\"")),
        u => return Err(bad(&format_args!("unknown unit \"{u}\"; use ms, s, m or h"))),
    };
    n.checked_mul(secs_per).map(Duration::from_secs).ok_or_else(|| bad(&"too large"))
}

/// Bytes: an integer, or a whole number with `B`, `KiB` or `MiB`.
pub(crate) fn parse_size(v: &IntOrStr) -> Result<i64, String> {
    let s = match v {
        IntOrStr::Int(n) => return Ok(*n),
        IntOrStr::Str(s) => s.trim(),
    };
    let bad = |why: &str| format!("bad size \"{s}\": {why}");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(bad("expected a whole number of bytes, optionally with B, KiB or MiB"));
    }
    let n: i64 = num.parse().map_err(|_| bad("number too large"))?;
    let mul = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        _ => return Err(bad("unknown unit; use B, KiB or MiB")),
    };
    n.checked_mul(mul).ok_or_else(|| bad("too large"))
}

/// `"0600"`, `"600"`, `"0o600"`, or an integer (write `0o600` in TOML).
fn parse_mode(v: &IntOrStr) -> Result<u32, String> {
    let n = match v {
        IntOrStr::Int(n) => *n,
        IntOrStr::Str(s) => {
            let digits = s.strip_prefix("0o").unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(format!("mode \"{s}\" is not octal digits like \"0600\""));
            }
            i64::from_str_radix(digits, 8).map_err(|_| format!("mode \"{s}\" is too large"))?
        }
    };
    if !(0..=0o777).contains(&n) {
        return Err(format!("mode {n} (octal {n:o}) is outside 0–0o777; write \"0600\" or 0o600"));
    }
    Ok(n as u32)
}

/// `IP:port`, `[v6]:port`, or `host:port` resolved now (first address).
fn parse_addr(s: &str, allow_port_zero: bool) -> Result<SocketAddr, String> {
    let addr = match s.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            let Some((host, port)) = s.rsplit_once(':') else {
                return Err(format!("\"{s}\" has no port; write IP:port or host:port"));
            };
            if host.is_empty() {
                return Err(format!("\"{s}\" has no host; write IP:port or host:port"));
            }
            if port.parse::<u16>().is_err() {
                return Err(format!("\"{s}\": port \"{port}\" is not a number 0–65535"));
            }
            let mut found = (host, port.parse::<u16>().unwrap_or(0))
                .to_socket_addrs()
                .map_err(|e| format!("host \"{host}\" does not resolve: {e}"))?;
            found.next().ok_or_else(|| format!("host \"{host}\" resolves to no address"))?
        }
    };
    if addr.port() == 0 && !allow_port_zero {
        return Err(format!("\"{s}\": port 0 is not a valid server port"));
    }
    Ok(addr)
}

/// `client_ip | path | uri | header:NAME | cookie:NAME`
fn parse_hash_key(s: &str) -> Result<HashKey, String> {
    let named = |name: &str, what: &str, ctor: fn(String) -> HashKey| {
        if is_token(name) {
            Ok(ctor(name.to_owned()))
        } else {
            Err(format!("hash_key \"{s}\": \"{name}\" is not a valid {what} name"))
        }
    };
    match s {
        "client_ip" => Ok(HashKey::ClientIp),
        "path" => Ok(HashKey::Path),
        "uri" => Ok(HashKey::Uri),
        _ => {
            if let Some(h) = s.strip_prefix("header:") {
                named(h, "header", |n| HashKey::Header(n.to_ascii_lowercase()))
            } else if let Some(c) = s.strip_prefix("cookie:") {
                named(c, "cookie", HashKey::Cookie)
            } else {
                Err(format!("unknown hash_key \"{s}\"; use client_ip, path, uri, header:NAME or cookie:NAME"))
            }
        }
    }
}

/// RFC 9110 `token` (also RFC 6265's `cookie-name`).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Names appear in admin commands (`pool/server`) and logs: keep them plain.
fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}
