//! `[[pool]]` tables and their servers → [`PoolConfig`].

use std::ops::Range;
use std::time::Duration;

use serde_spanned::Spanned;

use super::{Cx, NO_ADDR};
use crate::config::raw;
use crate::config::types::*;
use crate::config::values::{is_name, is_token, parse_addr, parse_hash_key};

impl Cx {
    /// Returns the pool and where its name is.
    /// `plugins_on`: `[plugins] dir` is set, so `strategy = "plugin:NAME"` may be used.
    pub(super) fn pool(&mut self, i: usize, p: Spanned<raw::Pool>, plugins_on: bool) -> (PoolConfig, Range<usize>) {
        let header = p.span();
        let p = p.into_inner();
        let at = format!("pool[{i}]");
        let k = |field: &str| format!("{at}.{field}");
        let (name, name_span) = self.name(p.name, &at, header.clone(), format!("pool-{}", i + 1));
        let mut out = PoolConfig::new(&name, Vec::new());

        self.pool_strategy(p.strategy, p.fallback, p.plugin_config, &at, plugins_on, &mut out);
        out.hash_key = self.hash_key(p.hash_key, k("hash_key"), out.strategy);
        out.sticky = match p.sticky.map(Spanned::into_inner) {
            None | Some(raw::Sticky::Enabled(false)) => None,
            Some(raw::Sticky::Enabled(true)) => Some(StickyConfig::default()),
            Some(raw::Sticky::Table(t)) => Some(self.sticky(t, &at)),
        };
        out.retries = self.int(p.retries, k("retries"), 0..=100, out.retries);

        let (t, d) = (p.timeouts.unwrap_or_default(), out.timeouts.clone());
        out.timeouts = PoolTimeouts {
            connect: self.positive_duration(t.connect, k("timeouts.connect"), d.connect),
            response: self.positive_duration(t.response, k("timeouts.response"), d.response),
        };
        let (ka, d) = (p.keepalive.unwrap_or_default(), out.keepalive.clone());
        out.keepalive = KeepaliveConfig {
            max_idle: self.int(ka.max_idle, k("keepalive.max_idle"), 0..=1_000_000, d.max_idle),
            idle_timeout: self.duration(ka.idle_timeout, k("keepalive.idle_timeout"), d.idle_timeout),
        };
        let (ps, d) = (p.passive.unwrap_or_default(), out.passive.clone());
        out.passive = PassiveConfig {
            max_fails: self.int(ps.max_fails, k("passive.max_fails"), 1..=1_000_000, d.max_fails),
            cooldown: self.duration(ps.cooldown, k("passive.cooldown"), d.cooldown),
        };
        out.health = p.health.and_then(|h| self.health(h, &at));
        out.agent = p.agent.map(|a| self.agent(a, &at));
        out.outlier = self.outlier(p.outlier.unwrap_or_default(), &at, &out.passive);
        out.fail_open = p.fail_open.unwrap_or(out.fail_open);
        out.slowstart = self.duration(p.slowstart, k("slowstart"), out.slowstart);
        out.zones = self.zones(p.zones, &at);
        if let Some(t) = p.zone_failover_threshold {
            let v = *t.get_ref();
            if (0.0..=1.0).contains(&v) {
                out.zone_failover_threshold = v;
            } else {
                let msg = format!("zone_failover_threshold {v} is outside 0.0–1.0");
                self.issue(Some(t.span()), k("zone_failover_threshold"), msg);
            }
        }

        if p.servers.is_empty() {
            let msg = format!("pool \"{name}\" has no servers; add a [[pool.server]]");
            self.issue(Some(header), k("server"), msg);
        }
        let mut name_spans = Vec::new();
        for (j, s) in p.servers.into_iter().enumerate() {
            let (server, span) = self.server(j, s, &at);
            out.servers.push(server);
            name_spans.push(span);
        }
        self.unique(out.servers.iter().map(|s| &s.name), &k("server"), &name_spans);
        (out, name_span)
    }

    /// `hash_key`, checked against what `ip_hash`/`url_hash` imply.
    fn hash_key(&mut self, h: Option<Spanned<String>>, key: String, strategy: StrategyKind) -> HashKey {
        let Some(h) = h else {
            // url_hash hashes the request target unless told to use the path only.
            return if strategy == StrategyKind::UrlHash { HashKey::Uri } else { HashKey::ClientIp };
        };
        let parsed = match parse_hash_key(h.get_ref()) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.issue(Some(h.span()), key, e);
                return HashKey::ClientIp;
            }
        };
        let clash = match strategy {
            StrategyKind::IpHash if parsed != HashKey::ClientIp => Some("ip_hash always hashes client_ip"),
            StrategyKind::UrlHash if !matches!(parsed, HashKey::Path | HashKey::Uri) => {
                Some("url_hash hashes \"uri\" or \"path\"")
            }
            _ => None,
        };
        if let Some(why) = clash {
            let msg = format!("hash_key \"{}\" conflicts with the strategy: {why}; use consistent_hash", h.get_ref());
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
                let msg = format!("\"{}\" is not a valid cookie name (letters, digits, !#$%&'*+-.^_`|~)", c.get_ref());
                self.issue(Some(c.span()), format!("{at}.sticky.cookie"), msg);
            }
        }
        if let Some(m) = t.max_age {
            let key = format!("{at}.sticky.max_age");
            out.max_age = Some(self.positive_duration(Some(m), key, Duration::from_secs(1)));
        }
        out
    }

    /// `zones`: unique names, in priority order.
    fn zones(&mut self, zones: Vec<Spanned<String>>, at: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (n, z) in zones.into_iter().enumerate() {
            let key = format!("{at}.zones[{n}]");
            if !is_name(z.get_ref()) {
                let msg = format!("zone \"{}\" must be 1–64 letters, digits, '-', '_' or '.'", z.get_ref());
                self.issue(Some(z.span()), key, msg);
            } else if let Some(first) = out.iter().position(|o| o == z.get_ref()) {
                let msg = format!("duplicate zone \"{}\"; zones[{first}] already lists it", z.get_ref());
                self.issue(Some(z.span()), key, msg);
            }
            // Kept even when bad, so later indices in messages stay right.
            out.push(z.into_inner());
        }
        out
    }

    /// Returns the server and where its name is.
    fn server(&mut self, j: usize, s: Spanned<raw::Server>, pool_at: &str) -> (ServerConfig, Range<usize>) {
        let header = s.span();
        let s = s.into_inner();
        let at = format!("{pool_at}.server[{j}]");
        let k = |field: &str| format!("{at}.{field}");
        let (name, name_span) = self.name(s.name, &at, header.clone(), format!("server-{}", j + 1));
        let addr = match s.addr {
            Some(a) => parse_addr(a.get_ref(), false).unwrap_or_else(|e| {
                self.issue(Some(a.span()), k("addr"), e);
                NO_ADDR
            }),
            None => {
                self.issue(Some(header), k("addr"), "missing required key `addr` (IP:port or host:port)");
                NO_ADDR
            }
        };
        let mut out = ServerConfig::new(&name, addr);
        out.weight = self.int(s.weight, k("weight"), 0..=256, out.weight);
        if let Some(z) = s.zone {
            if z.get_ref().trim().is_empty() {
                self.issue(Some(z.span()), k("zone"), "zone is empty; omit the key for no zone");
            } else {
                out.zone = Some(z.into_inner());
            }
        }
        out.backup = s.backup.unwrap_or(out.backup);
        for (n, tag) in s.tags.into_iter().enumerate() {
            if tag.get_ref().trim().is_empty() {
                self.issue(Some(tag.span()), k(&format!("tags[{n}]")), "tag is empty");
            } else {
                out.tags.push(tag.into_inner());
            }
        }
        (out, name_span)
    }
}
