//! out-of-range: a deliberately bad plugin for fastlb's tests. `select`
//! answers an index past the last backend of the pool; the host must count
//! the bad answer and serve the request with the fallback.

use fastlb_plugin_sdk::prelude::*;

/// Remembers how many backends the pool has, to answer just past them.
#[derive(Default)]
pub struct OutOfRange {
    backends: u32,
}

impl Plugin for OutOfRange {
    fn info(&mut self, config: &str) -> Result<PluginInfo, String> {
        Config::parse(config)?;
        Ok(PluginInfo::new("out-of-range"))
    }

    fn set_table(&mut self, backends: Vec<Backend>) {
        self.backends = backends.len() as u32;
    }

    fn set_load(&mut self, _loads: Vec<Load>) {}

    fn select(&mut self, _req: &Request, attempt: u32) -> Option<u32> {
        Some(self.backends + attempt)
    }
}

export_plugin!(OutOfRange);

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(index: u32) -> Backend {
        Backend {
            index,
            id: format!("app/s{index}"),
            name: format!("s{index}"),
            weight: 100,
            zone: None,
            backup: false,
            tags: Vec::new(),
            healthy: true,
            draining: false,
        }
    }

    #[test]
    fn answers_past_the_last_backend() {
        let mut p = OutOfRange::default();
        p.info("{}").unwrap();
        p.set_table((0..3).map(backend).collect());
        let req = Request {
            method: Method::Get,
            client_ip: ClientIp::V4(0x7f00_0001),
            hash: 1,
            host: None,
            path: None,
            headers: Vec::new(),
            cookie: None,
        };
        for attempt in 0..3 {
            assert!(p.select(&req, attempt).unwrap() >= 3);
        }
    }
}
