//! header-affinity: every request of a tenant goes to the same backend.
//!
//! The tenant is the value of a request header (`plugin_config.header`,
//! default `x-tenant`). `select` maps it over the usable backends with
//! weighted rendezvous hashing, so a backend going down moves only its own
//! tenants, and a retry goes to the tenant's next choice. The sticky hook
//! answers `hash(tenant)` so the host's consistent hash keeps the tenant in
//! place too. Requests without the header are spread by the host's request
//! hash (the pool's `hash_key`, the client IP by default).
//!
//! `plugin_config`: `header` (string, default `"x-tenant"`).

use fastlb_plugin_sdk::prelude::*;

/// The strategy's state: the header to read and the pool.
#[derive(Default)]
pub struct HeaderAffinity {
    /// Lower-case header name.
    header: String,
    table: Table,
}

impl Plugin for HeaderAffinity {
    fn info(&mut self, config: &str) -> Result<PluginInfo, String> {
        let config = Config::parse(config)?;
        self.header = config.str_or("header", "x-tenant")?.trim().to_ascii_lowercase();
        if self.header.is_empty() {
            return Err("plugin_config.header: expected a header name, found an empty string".into());
        }
        Ok(PluginInfo::new("header-affinity").with_header(&self.header).with_sticky())
    }

    fn set_table(&mut self, backends: Vec<Backend>) {
        self.table.set_backends(backends);
    }

    fn set_load(&mut self, _loads: Vec<Load>) {}

    fn select(&mut self, req: &Request, attempt: u32) -> Option<u32> {
        let key = tenant_key(req.header(&self.header)).unwrap_or(req.hash);
        self.table.usable().rendezvous(key, attempt)
    }

    fn sticky_lookup(&mut self, req: &Request) -> Decision {
        match tenant_key(req.header(&self.header)) {
            Some(key) => Decision::Hash(key),
            None => Decision::None,
        }
    }
}

export_plugin!(HeaderAffinity);

/// The hash a tenant maps by; `None` without a (non-blank) tenant.
pub fn tenant_key(value: Option<&str>) -> Option<u64> {
    let tenant = value?.trim();
    (!tenant.is_empty()).then(|| hash_str(tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(index: u32, healthy: bool) -> Backend {
        Backend {
            index,
            id: format!("app/s{index}"),
            name: format!("s{index}"),
            weight: 100,
            zone: None,
            backup: false,
            tags: Vec::new(),
            healthy,
            draining: false,
        }
    }

    fn request(header: &str, tenant: Option<&str>, hash: u64) -> Request {
        Request {
            method: Method::Get,
            client_ip: ClientIp::V4(0x0a00_0001),
            hash,
            host: None,
            path: None,
            headers: tenant.map(|t| (header.to_string(), t.to_string())).into_iter().collect(),
            cookie: None,
        }
    }

    fn plugin(config: &str, up: &[bool]) -> HeaderAffinity {
        let mut p = HeaderAffinity::default();
        p.info(config).unwrap();
        p.set_table(up.iter().enumerate().map(|(i, &h)| backend(i as u32, h)).collect());
        p
    }

    #[test]
    fn config_and_info() {
        let mut p = HeaderAffinity::default();
        let info = p.info("{}").unwrap();
        assert_eq!(info.wants_headers, ["x-tenant"]);
        assert!(info.sticky);
        let info = p.info(r#"{"header":"X-Org"}"#).unwrap();
        assert_eq!(info.wants_headers, ["x-org"]);
        assert!(p.info(r#"{"header":""}"#).is_err());
        assert!(p.info(r#"{"header":3}"#).unwrap_err().contains("plugin_config.header"));
    }

    #[test]
    fn a_tenant_always_lands_on_the_same_backend() {
        let mut p = plugin("{}", &[true; 5]);
        for t in 0..50 {
            let tenant = format!("tenant-{t}");
            let first = p.select(&request("x-tenant", Some(&tenant), 0), 0).unwrap();
            for hash in 1..20 {
                assert_eq!(p.select(&request("x-tenant", Some(&tenant), hash), 0), Some(first));
            }
        }
    }

    #[test]
    fn tenants_spread_and_only_a_lost_backends_tenants_move() {
        let mut all = plugin(r#"{"header":"x-org"}"#, &[true; 4]);
        let mut one_down = plugin(r#"{"header":"x-org"}"#, &[true, true, false, true]);
        let mut per = [0u32; 4];
        for t in 0..4_000 {
            let req = request("x-org", Some(&format!("org{t}")), 0);
            let before = all.select(&req, 0).unwrap();
            let after = one_down.select(&req, 0).unwrap();
            per[before as usize] += 1;
            assert_ne!(after, 2);
            if before != 2 {
                assert_eq!(before, after);
            }
        }
        assert!(per.iter().all(|&n| (800..1200).contains(&n)), "{per:?}");
    }

    #[test]
    fn a_retry_goes_elsewhere() {
        let mut p = plugin("{}", &[true; 3]);
        let req = request("x-tenant", Some("acme"), 0);
        let first = p.select(&req, 0).unwrap();
        assert_ne!(p.select(&req, 1).unwrap(), first);
    }

    #[test]
    fn no_tenant_spreads_by_the_request_hash() {
        let mut p = plugin("{}", &[true; 3]);
        let mut seen = [false; 3];
        for hash in 0..100 {
            seen[p.select(&request("x-tenant", None, hash), 0).unwrap() as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert_eq!(p.select(&request("x-tenant", Some("  "), 7), 0), p.select(&request("x-tenant", None, 7), 0));
    }

    #[test]
    fn sticky_by_tenant_hash() {
        let mut p = plugin("{}", &[true; 3]);
        assert!(matches!(
            p.sticky_lookup(&request("x-tenant", Some("acme"), 1)),
            Decision::Hash(h) if h == hash_str("acme")
        ));
        assert!(matches!(p.sticky_lookup(&request("x-tenant", None, 1)), Decision::None));
        assert!(p.on_response(&request("x-tenant", Some("acme"), 1), 0).is_none());
    }

    #[test]
    fn nothing_usable_gives_none() {
        let mut p = plugin("{}", &[false, false]);
        assert_eq!(p.select(&request("x-tenant", Some("acme"), 0), 0), None);
    }
}
