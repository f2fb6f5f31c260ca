//! trap: a deliberately bad plugin for fastlb's tests. `select` panics,
//! which on wasm32 (`panic = "abort"`) is an `unreachable` trap: the host
//! must count it, drop the instance and serve the request with the fallback.

use fastlb_plugin_sdk::prelude::*;

/// Keeps the table like a real plugin; only `select` misbehaves.
#[derive(Default)]
pub struct Trap {
    table: Table,
}

impl Plugin for Trap {
    fn info(&mut self, config: &str) -> Result<PluginInfo, String> {
        Config::parse(config)?;
        Ok(PluginInfo::new("trap"))
    }

    fn set_table(&mut self, backends: Vec<Backend>) {
        self.table.set_backends(backends);
    }

    fn set_load(&mut self, loads: Vec<Load>) {
        self.table.set_loads(loads);
    }

    fn select(&mut self, req: &Request, _attempt: u32) -> Option<u32> {
        panic!("trap plugin: deliberate panic in select (request hash {})", req.hash)
    }
}

export_plugin!(Trap);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_panics() {
        let mut p = Trap::default();
        assert_eq!(p.info("{}").unwrap().name, "trap");
        let req = Request {
            method: Method::Get,
            client_ip: ClientIp::V4(0x7f00_0001),
            hash: 7,
            host: None,
            path: None,
            headers: Vec::new(),
            cookie: None,
        };
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.select(&req, 0)));
        assert!(caught.is_err());
    }
}
