//! Conveniences on the generated WIT types.

use crate::{Backend, ClientIp, PluginInfo, Request};

impl Request {
    /// The value of a header the plugin asked for in
    /// `PluginInfo::wants_headers` (case-insensitive name), if the request has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The value of the cookie named in `PluginInfo::wants_cookie`, if sent.
    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    /// The client address folded into 64 bits (IPv4 as is, IPv6 hashed):
    /// a per-client key independent of the pool's `hash_key`.
    pub fn client_key(&self) -> u64 {
        match self.client_ip {
            ClientIp::V4(a) => u64::from(a),
            ClientIp::V6((hi, lo)) => crate::rng::hash2(hi, lo),
        }
    }
}

impl Backend {
    /// Carries this tag (exact match).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

impl PluginInfo {
    /// Info with only a name: no strings requested, no sticky calls.
    /// Chain the builders below for more.
    pub fn new(name: impl Into<String>) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            wants_host: false,
            wants_path: false,
            wants_headers: Vec::new(),
            wants_cookie: None,
            sticky: false,
        }
    }

    /// Ask for `request.host`.
    pub fn with_host(mut self) -> PluginInfo {
        self.wants_host = true;
        self
    }

    /// Ask for `request.path`.
    pub fn with_path(mut self) -> PluginInfo {
        self.wants_path = true;
        self
    }

    /// Ask for a header (stored lower-case, as the host reports names).
    pub fn with_header(mut self, name: &str) -> PluginInfo {
        self.wants_headers.push(name.to_ascii_lowercase());
        self
    }

    /// Ask for the value of this cookie.
    pub fn with_cookie(mut self, name: &str) -> PluginInfo {
        self.wants_cookie = Some(name.into());
        self
    }

    /// Have the host call the sticky hooks (`Plugin::sticky_lookup`,
    /// `Plugin::on_response`) for each request.
    pub fn with_sticky(mut self) -> PluginInfo {
        self.sticky = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;

    pub(crate) fn request() -> Request {
        Request {
            method: Method::Get,
            client_ip: ClientIp::V4(0x7f00_0001),
            hash: 1,
            host: None,
            path: None,
            headers: vec![("x-tenant".into(), "acme".into())],
            cookie: Some("c".into()),
        }
    }

    #[test]
    fn request_lookups() {
        let r = request();
        assert_eq!(r.header("X-Tenant"), Some("acme"));
        assert_eq!(r.header("x-other"), None);
        assert_eq!(r.cookie(), Some("c"));
        assert_eq!(r.client_key(), 0x7f00_0001);
        let v6 = Request { client_ip: ClientIp::V6((1, 2)), ..r };
        assert_ne!(v6.client_key(), Request { client_ip: ClientIp::V6((2, 1)), ..v6.clone() }.client_key());
    }

    #[test]
    fn info_builders() {
        let i = PluginInfo::new("p").with_header("X-Tenant").with_cookie("c").with_sticky().with_host().with_path();
        assert_eq!(i.name, "p");
        assert_eq!(i.wants_headers, ["x-tenant"]);
        assert_eq!(i.wants_cookie.as_deref(), Some("c"));
        assert!(i.sticky && i.wants_host && i.wants_path);
        let plain = PluginInfo::new("q");
        assert!(!plain.sticky && plain.wants_headers.is_empty() && plain.wants_cookie.is_none());
    }
}
