//! `[pool.health]`, `[pool.agent]` and `[pool.outlier]` → the check configs
//! of a [`PoolConfig`].

use std::time::Duration;

use serde_spanned::Spanned;

use super::Cx;
use crate::config::raw::{self, ExpectStatus};
use crate::config::types::*;
use crate::config::values::{is_host, is_origin_form, is_token, parse_status_range};

/// The check types, as spelled in `type`.
const KINDS: [&str; 4] = ["http", "tcp", "redis", "pgsql"];

impl Cx {
    /// `None` when `type` is missing or unknown (already reported).
    pub(super) fn health(&mut self, h: Spanned<raw::Health>, pool_at: &str) -> Option<HealthCheckConfig> {
        let header = h.span();
        let h = h.into_inner();
        let at = format!("{pool_at}.health");
        let k = |field: &str| format!("{at}.{field}");

        let kind = match &h.kind {
            None => {
                let msg = "missing required key `type` (\"http\", \"tcp\", \"redis\" or \"pgsql\")";
                self.issue(Some(header), k("type"), msg);
                None
            }
            Some(t) if KINDS.contains(&t.get_ref().as_str()) => Some(t.get_ref().clone()),
            Some(t) => {
                let msg = format!(
                    "unknown health check type \"{}\"; use \"http\", \"tcp\", \"redis\" or \"pgsql\"",
                    t.get_ref()
                );
                self.issue(Some(t.span()), k("type"), msg);
                None
            }
        };

        // Keys of one check type given for another are mistakes, not no-ops.
        if let Some(kind) = &kind {
            let owned = [
                ("method", h.method.as_ref().map(Spanned::span), "http"),
                ("path", h.path.as_ref().map(Spanned::span), "http"),
                ("host", h.host.as_ref().map(Spanned::span), "http"),
                ("expect_status", h.expect_status.as_ref().map(Spanned::span), "http"),
                ("body_contains", h.body_contains.as_ref().map(Spanned::span), "http"),
                ("user", h.user.as_ref().map(Spanned::span), "pgsql"),
                ("database", h.database.as_ref().map(Spanned::span), "pgsql"),
            ];
            for (key, span, owner) in owned {
                if let Some(span) = span
                    && owner != kind
                {
                    let msg = format!("`{key}` applies only to type = \"{owner}\", not to type = \"{kind}\"");
                    self.issue(Some(span), k(key), msg);
                }
            }
        }

        let interval = self.positive_duration(h.interval, k("interval"), Duration::from_secs(3));
        let fastinterval = self.positive_duration(h.fastinterval, k("fastinterval"), interval);
        let timeout = self.positive_duration(h.timeout, k("timeout"), Duration::from_secs(1));
        let fall = self.int(h.fall, k("fall"), 1..=1_000_000, 3);
        let rise = self.int(h.rise, k("rise"), 1..=1_000_000, 2);
        let port = h.port.map(|p| self.int(Some(p), k("port"), 1..=65535, 1u16));

        let kind = match kind?.as_str() {
            "http" => self.http_check(h.method, h.path, h.host, h.expect_status, h.body_contains, &at),
            "pgsql" => {
                let user = self.pg_name(h.user, k("user")).unwrap_or_else(|| "fastlb".into());
                let database = self.pg_name(h.database, k("database"));
                HealthCheckKind::Pgsql { user, database }
            }
            "redis" => HealthCheckKind::Redis,
            _ => HealthCheckKind::Tcp,
        };
        Some(HealthCheckConfig { kind, interval, fastinterval, timeout, fall, rise, port })
    }

    fn http_check(
        &mut self,
        method: Option<Spanned<String>>,
        path: Option<Spanned<String>>,
        host: Option<Spanned<String>>,
        expect_status: Option<Spanned<ExpectStatus>>,
        body_contains: Option<Spanned<String>>,
        at: &str,
    ) -> HealthCheckKind {
        let k = |field: &str| format!("{at}.{field}");
        let mut out_method = "GET".to_owned();
        if let Some(m) = method {
            if is_token(m.get_ref()) {
                out_method = m.into_inner();
            } else {
                let msg = format!("method \"{}\" is not an HTTP method (a token such as GET or HEAD)", m.get_ref());
                self.issue(Some(m.span()), k("method"), msg);
            }
        }
        let mut out_path = "/health".to_owned();
        if let Some(p) = path {
            if is_origin_form(p.get_ref(), true) {
                out_path = p.into_inner();
            } else {
                let msg = format!(
                    "path \"{}\" must start with '/' and use only URI path and query characters \
                     (%XX escapes for others)",
                    p.get_ref()
                );
                self.issue(Some(p.span()), k("path"), msg);
            }
        }
        let out_host = host.and_then(|h| {
            if is_host(h.get_ref()) {
                Some(h.into_inner())
            } else {
                let msg =
                    format!("host \"{}\" is not a valid Host value (host name or IP, optional :port)", h.get_ref());
                self.issue(Some(h.span()), k("host"), msg);
                None
            }
        });
        let mut expect = vec![(200, 399)];
        if let Some(e) = expect_status {
            let span = e.span();
            match e.into_inner() {
                ExpectStatus::One(v) => match parse_status_range(&v) {
                    Ok(r) => expect = vec![r],
                    Err(msg) => self.issue(Some(span), k("expect_status"), msg),
                },
                ExpectStatus::List(items) if items.is_empty() => {
                    let msg = "expect_status is empty; list at least one status or range";
                    self.issue(Some(span), k("expect_status"), msg);
                }
                ExpectStatus::List(items) => {
                    expect.clear();
                    for (n, item) in items.into_iter().enumerate() {
                        match parse_status_range(item.get_ref()) {
                            Ok(r) => expect.push(r),
                            Err(msg) => self.issue(Some(item.span()), k(&format!("expect_status[{n}]")), msg),
                        }
                    }
                }
            }
        }
        let out_body = body_contains.and_then(|b| {
            if b.get_ref().is_empty() {
                let msg = "body_contains is empty; omit the key to accept any body";
                self.issue(Some(b.span()), k("body_contains"), msg);
                None
            } else {
                Some(b.into_inner())
            }
        });
        HealthCheckKind::Http {
            method: out_method,
            path: out_path,
            host: out_host,
            expect_status: expect,
            body_contains: out_body,
        }
    }

    /// A PostgreSQL user or database name: sent NUL-terminated, so non-empty
    /// and without NUL.
    fn pg_name(&mut self, v: Option<Spanned<String>>, key: String) -> Option<String> {
        let v = v?;
        let s = v.get_ref();
        if s.is_empty() || s.contains('\0') {
            let msg = format!("{} must be non-empty and contain no NUL character", super::last(&key));
            self.issue(Some(v.span()), key, msg);
            return None;
        }
        Some(v.into_inner())
    }

    pub(super) fn agent(&mut self, a: Spanned<raw::Agent>, pool_at: &str) -> AgentCheckConfig {
        let header = a.span();
        let a = a.into_inner();
        let k = |field: &str| format!("{pool_at}.agent.{field}");
        let port = match a.port {
            Some(p) => self.int(Some(p), k("port"), 1..=65535, 1u16),
            None => {
                self.issue(Some(header), k("port"), "missing required key `port` (the agent's TCP port, 1–65535)");
                1
            }
        };
        AgentCheckConfig {
            port,
            interval: self.positive_duration(a.interval, k("interval"), Duration::from_secs(5)),
            timeout: self.positive_duration(a.timeout, k("timeout"), Duration::from_secs(1)),
            send: a.send.unwrap_or_default(),
        }
    }

    /// `[pool.outlier]`; `[pool.passive]` (already converted) seeds the
    /// defaults of `consecutive_errors` and `base_ejection`.
    pub(super) fn outlier(&mut self, o: raw::Outlier, pool_at: &str, passive: &PassiveConfig) -> OutlierConfig {
        let k = |field: &str| format!("{pool_at}.outlier.{field}");
        let d = OutlierConfig::default();
        let base_ejection = self.duration(o.base_ejection, k("base_ejection"), passive.cooldown);
        // Unset, the cap never undercuts the base (a long passive.cooldown
        // seeds a base above the 300 s default).
        let max_ejection = match o.max_ejection {
            None => d.max_ejection.max(base_ejection),
            Some(m) => {
                let span = m.span();
                let max = self.duration(Some(m), k("max_ejection"), base_ejection);
                if max < base_ejection {
                    let msg = format!("max_ejection {max:?} is below base_ejection {base_ejection:?}");
                    self.issue(Some(span), k("max_ejection"), msg);
                    base_ejection
                } else {
                    max
                }
            }
        };
        OutlierConfig {
            consecutive_5xx: self.int(o.consecutive_5xx, k("consecutive_5xx"), 0..=1_000_000, d.consecutive_5xx),
            consecutive_errors: self.int(
                o.consecutive_errors,
                k("consecutive_errors"),
                1..=1_000_000,
                passive.max_fails,
            ),
            base_ejection,
            max_ejection,
            max_ejection_percent: self.int(
                o.max_ejection_percent,
                k("max_ejection_percent"),
                0..=100,
                d.max_ejection_percent,
            ),
        }
    }
}
