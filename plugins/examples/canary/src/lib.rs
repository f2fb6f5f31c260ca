//! canary: send a share of new clients to canary backends, and keep every
//! client on the side it got.
//!
//! A client without the cookie is "new": it goes to the backends tagged
//! `canary` with probability `percent`/100, otherwise to the others. The
//! response then sets the cookie to the side of the backend that served it
//! (`canary` or `stable`), and later requests carrying it are pinned to a
//! backend of that side (the same one for a client, by the host's request
//! hash). When one side has no usable backend, its clients go to the other:
//! availability over the split.
//!
//! `plugin_config`: `percent` (integer 0-100, default 10), `cookie` (default
//! `"fastlb_canary"`), `tag` (default `"canary"`), `max_age` (seconds;
//! default: a session cookie).

use fastlb_plugin_sdk::prelude::*;

/// Which side of the split a client is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Backends carrying the canary tag.
    Canary,
    /// All the others.
    Stable,
}

impl Side {
    /// The side a cookie value names; anything else is a new client.
    pub fn from_cookie(value: Option<&str>) -> Option<Side> {
        match value? {
            "canary" => Some(Side::Canary),
            "stable" => Some(Side::Stable),
            _ => None,
        }
    }

    /// The cookie value for this side.
    pub fn cookie_value(self) -> &'static str {
        match self {
            Side::Canary => "canary",
            Side::Stable => "stable",
        }
    }
}

/// The strategy's state: settings, the pool split in two, a PRNG.
pub struct Canary {
    /// Share of new clients sent to the canary side, 0–100.
    percent: u32,
    cookie: String,
    tag: String,
    max_age: Option<u32>,
    table: Table,
    canary: Group,
    stable: Group,
    rng: Rng,
}

impl Default for Canary {
    fn default() -> Self {
        Canary {
            percent: 10,
            cookie: "fastlb_canary".into(),
            tag: "canary".into(),
            max_age: None,
            table: Table::default(),
            canary: Group::default(),
            stable: Group::default(),
            rng: Rng::default(),
        }
    }
}

impl Canary {
    fn group(&self, side: Side) -> &Group {
        match side {
            Side::Canary => &self.canary,
            Side::Stable => &self.stable,
        }
    }

    /// The group serving `side`: its own, or the other one when it is empty.
    fn serving(&self, side: Side) -> &Group {
        let own = self.group(side);
        if own.is_empty() { self.group(other(side)) } else { own }
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Canary => Side::Stable,
        Side::Stable => Side::Canary,
    }
}

impl Plugin for Canary {
    fn info(&mut self, config: &str) -> Result<PluginInfo, String> {
        let config = Config::parse(config)?;
        self.percent = config.u64_in("percent", 0, 100, 10, "an integer 0-100")? as u32;
        self.cookie = config.str_or("cookie", "fastlb_canary")?.into();
        self.tag = config.str_or("tag", "canary")?.into();
        self.max_age = match config.u64_in("max_age", 0, u64::from(u32::MAX), 0, "seconds (an integer)")? {
            0 => None,
            s => Some(s as u32),
        };
        if self.cookie.is_empty()
            || !self.cookie.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        {
            return Err("plugin_config.cookie: expected a cookie name (visible ASCII, no separators)".into());
        }
        fastlb_plugin_sdk::info!(
            "{}% of new clients to backends tagged '{}', sticky by cookie {}",
            self.percent,
            self.tag,
            self.cookie
        );
        Ok(PluginInfo::new("canary").with_cookie(&self.cookie).with_sticky())
    }

    fn set_table(&mut self, backends: Vec<Backend>) {
        let had = (self.canary.is_empty(), self.stable.is_empty());
        self.table.set_backends(backends);
        self.canary = self.table.group(|b| b.has_tag(&self.tag));
        self.stable = self.table.group(|b| !b.has_tag(&self.tag));
        // Say so when a side empties (or comes back), not on every table change.
        for (side, was_empty, group) in [(Side::Canary, had.0, &self.canary), (Side::Stable, had.1, &self.stable)] {
            if group.is_empty() && (!was_empty || self.table.generation() == 1) {
                fastlb_plugin_sdk::warn!("no usable {} backend: its clients go to the other side", side.cookie_value());
            } else if was_empty && !group.is_empty() && self.table.generation() > 1 {
                fastlb_plugin_sdk::info!("{} backends usable again", side.cookie_value());
            }
        }
    }

    fn set_load(&mut self, _loads: Vec<Load>) {}

    fn select(&mut self, req: &Request, attempt: u32) -> Option<u32> {
        match Side::from_cookie(req.cookie()) {
            // A known client: its backend on its side, another one on a retry.
            Some(side) => self.serving(side).pick(hash2(req.hash, u64::from(attempt))),
            None => {
                self.rng.mix(req.hash ^ u64::from(attempt));
                let side = if self.rng.percent(self.percent) { Side::Canary } else { Side::Stable };
                let r = self.rng.next_u64();
                self.serving(side).pick(r)
            }
        }
    }

    fn sticky_lookup(&mut self, req: &Request) -> Decision {
        let Some(side) = Side::from_cookie(req.cookie()) else { return Decision::None };
        match self.group(side).pick(hash2(req.hash, 0)) {
            Some(index) => Decision::Pin(index),
            // That side has nothing usable: `select` sends the client across.
            None => Decision::None,
        }
    }

    fn on_response(&mut self, req: &Request, backend: u32) -> Option<SetCookie> {
        if Side::from_cookie(req.cookie()).is_some() {
            return None;
        }
        let side = if self.table.backend(backend)?.has_tag(&self.tag) { Side::Canary } else { Side::Stable };
        Some(SetCookie { name: self.cookie.clone(), value: side.cookie_value().into(), max_age: self.max_age })
    }
}

export_plugin!(Canary);

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(index: u32, canary: bool) -> Backend {
        Backend {
            index,
            id: format!("app/s{index}"),
            name: format!("s{index}"),
            weight: 100,
            zone: None,
            backup: false,
            tags: if canary { vec!["canary".into()] } else { Vec::new() },
            healthy: true,
            draining: false,
        }
    }

    fn request(cookie: Option<&str>, hash: u64) -> Request {
        Request {
            method: Method::Get,
            client_ip: ClientIp::V4(0x0a00_0001),
            hash,
            host: None,
            path: None,
            headers: Vec::new(),
            cookie: cookie.map(String::from),
        }
    }

    /// Backends 0–3 stable, 4–5 canary.
    fn plugin(config: &str) -> Canary {
        let mut p = Canary::default();
        p.info(config).unwrap();
        p.set_table((0..6).map(|i| backend(i, i >= 4)).collect());
        p
    }

    fn is_canary(index: u32) -> bool {
        index >= 4
    }

    #[test]
    fn config_defaults_and_errors() {
        let mut p = Canary::default();
        let info = p.info("{}").unwrap();
        assert_eq!(info.wants_cookie.as_deref(), Some("fastlb_canary"));
        assert!(info.sticky);
        assert_eq!((p.percent, p.max_age), (10, None));
        let info = p.info(r#"{"percent":25,"cookie":"cn","tag":"beta","max_age":3600}"#).unwrap();
        assert_eq!(info.wants_cookie.as_deref(), Some("cn"));
        assert_eq!((p.percent, p.tag.as_str(), p.max_age), (25, "beta", Some(3600)));
        let e = p.info(r#"{"percent":150}"#).unwrap_err();
        assert_eq!(e, "plugin_config.percent: expected an integer 0-100, found a number out of range");
        assert!(p.info(r#"{"cookie":"a b"}"#).is_err());
        assert!(p.info(r#"{"cookie":""}"#).is_err());
    }

    #[test]
    fn new_clients_split_by_percent() {
        for percent in [0u32, 10, 50, 100] {
            let mut p = plugin(&format!(r#"{{"percent":{percent}}}"#));
            let n = 20_000;
            let canary = (0..n).filter(|&h| is_canary(p.select(&request(None, h), 0).unwrap())).count();
            let expected = n as f64 * f64::from(percent) / 100.0;
            assert!((canary as f64 - expected).abs() <= n as f64 * 0.015, "{percent}%: {canary} of {n}");
        }
    }

    #[test]
    fn new_clients_get_the_cookie_of_the_side_that_served_them() {
        let mut p = plugin(r#"{"max_age":60}"#);
        let c = p.on_response(&request(None, 1), 5).unwrap();
        assert_eq!((c.name.as_str(), c.value.as_str(), c.max_age), ("fastlb_canary", "canary", Some(60)));
        assert_eq!(p.on_response(&request(Some("garbage"), 1), 0).unwrap().value, "stable");
        assert!(p.on_response(&request(Some("stable"), 1), 5).is_none(), "known clients keep their cookie");
        assert!(p.on_response(&request(None, 1), 99).is_none(), "unknown backend");
    }

    #[test]
    fn clients_with_the_cookie_stay_on_their_side_and_backend() {
        let mut p = plugin("{}");
        for hash in 0..500 {
            let canary = request(Some("canary"), hash);
            let Decision::Pin(pin) = p.sticky_lookup(&canary) else { panic!("no pin") };
            assert!(is_canary(pin));
            assert_eq!(p.select(&canary, 0), Some(pin), "select agrees with the pin");
            let stable = request(Some("stable"), hash);
            let Decision::Pin(pin) = p.sticky_lookup(&stable) else { panic!("no pin") };
            assert!(!is_canary(pin));
            assert!(!is_canary(p.select(&stable, 1).unwrap()), "a retry stays on the side");
        }
        assert!(matches!(p.sticky_lookup(&request(None, 1)), Decision::None));
        assert!(matches!(p.sticky_lookup(&request(Some("other"), 1)), Decision::None));
    }

    #[test]
    fn an_empty_side_sends_its_clients_across() {
        let mut p = Canary::default();
        p.info(r#"{"percent":100}"#).unwrap();
        let mut stable_only: Vec<Backend> = (0..3).map(|i| backend(i, false)).collect();
        p.set_table(stable_only.clone());
        assert!(!is_canary(p.select(&request(None, 3), 0).unwrap()));
        assert!(matches!(p.sticky_lookup(&request(Some("canary"), 3)), Decision::None));
        assert!(p.select(&request(Some("canary"), 3), 0).is_some());
        // A canary that is down counts as absent.
        stable_only.push(Backend { healthy: false, ..backend(4, true) });
        p.set_table(stable_only);
        assert!(!is_canary(p.select(&request(None, 3), 0).unwrap()));
        p.set_table(Vec::new());
        assert_eq!(p.select(&request(None, 3), 0), None);
    }
}
