//! An in-memory [`ControlApi`] for the admin tests: fixed snapshots, and
//! every mutating call recorded so a test can check what reached the control.

use std::sync::Mutex;

use crate::control::{CommandError, ControlApi, Event, Info, PoolStat, ServerStat, WorkerStat};

#[derive(Default)]
pub struct FakeControl {
    /// Mutating calls, e.g. `"set_weight web/s1 7"`.
    pub calls: Mutex<Vec<String>>,
}

impl FakeControl {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    /// Keys the fake knows; anything else is the control side's error.
    fn known(&self, key: &str) -> Result<(), CommandError> {
        if self.pools().iter().flat_map(|p| &p.servers).any(|s| s.key == key) {
            Ok(())
        } else {
            Err(CommandError(format!("no server '{key}'")))
        }
    }
}

pub fn server(pool: &str, name: &str, addr: &str, state: &str) -> ServerStat {
    ServerStat {
        key: format!("{pool}/{name}"),
        pool: pool.into(),
        name: name.into(),
        addr: addr.into(),
        state: state.into(),
        reason: if state == "up" { String::new() } else { "health check: HTTP 503".into() },
        weight_configured: 10,
        weight_effective: if state == "up" { 10 } else { 0 },
        backup: false,
        zone: None,
        tags: vec![],
        active: 3,
        requests: 1234,
        responses: [0, 1200, 10, 20, 4],
        connect_errors: 2,
        errors: 6,
        retries: 1,
        bytes_in: 2048,
        bytes_out: 5 * 1024 * 1024,
        ewma_latency_us: 1500,
        last_check: Some("ok: HTTP 200".into()),
        last_check_duration_ms: Some(1.25),
        seconds_in_state: 3725,
        runtime_added: false,
    }
}

impl ControlApi for FakeControl {
    fn info(&self) -> Info {
        Info {
            version: "0.1.0".into(),
            pid: 4242,
            uptime_s: 90,
            workers: 2,
            config_path: Some("lb.toml".into()),
            generation: 5,
            config_generation: 1,
            connections_total: 100,
            connections_open: 4,
            requests_total: 2468,
            errors_total: 12,
            bytes_in: 4096,
            bytes_out: 8192,
        }
    }

    fn pools(&self) -> Vec<PoolStat> {
        let mut down = server("web", "s2", "10.0.0.2:80", "down");
        down.last_check = Some("failed: HTTP 503".into());
        vec![
            PoolStat {
                name: "web".into(),
                strategy: "round_robin".into(),
                sticky: true,
                sticky_cookie: Some("FASTLB_SERVER".into()),
                health_check: Some("http GET /health".into()),
                fail_open: false,
                panic: false,
                servers: vec![server("web", "s1", "10.0.0.1:80", "up"), down],
            },
            PoolStat {
                name: "api".into(),
                strategy: "least_connections".into(),
                sticky: false,
                sticky_cookie: None,
                health_check: None,
                fail_open: true,
                panic: false,
                servers: vec![server("api", "a1", "api-1.internal:8080", "up")],
            },
        ]
    }

    fn workers(&self) -> Vec<WorkerStat> {
        (0..2)
            .map(|core| WorkerStat { core, connections_open: 2, connections_total: 50, requests: 1234, errors: 6 })
            .collect()
    }

    fn events(&self, n: usize) -> Vec<Event> {
        let all = [
            Event {
                time: "2025-01-01T00:00:00Z".into(),
                unix: 1_735_689_600.0,
                server: "web/s2".into(),
                from: "up".into(),
                to: "down".into(),
                reason: "health check: HTTP 503".into(),
            },
            Event {
                time: "2025-01-01T00:01:00Z".into(),
                unix: 1_735_689_660.0,
                server: "web/s1".into(),
                from: "up".into(),
                to: "drain".into(),
                reason: "admin".into(),
            },
        ];
        all[all.len().saturating_sub(n)..].to_vec()
    }

    fn enable_server(&self, key: &str) -> Result<String, CommandError> {
        self.known(key)?;
        self.record(format!("enable {key}"));
        Ok(format!("{key}: enabled"))
    }

    fn disable_server(&self, key: &str) -> Result<String, CommandError> {
        self.known(key)?;
        self.record(format!("disable {key}"));
        Ok(format!("{key}: disabled (maint)"))
    }

    fn drain_server(&self, key: &str) -> Result<String, CommandError> {
        self.known(key)?;
        self.record(format!("drain {key}"));
        Ok(format!("{key}: draining"))
    }

    fn set_weight(&self, key: &str, weight: u16) -> Result<String, CommandError> {
        self.known(key)?;
        self.record(format!("set_weight {key} {weight}"));
        Ok(format!("{key}: weight {weight}"))
    }

    fn add_server(&self, key: &str, addr: &str, weight: Option<u16>, backup: bool) -> Result<String, CommandError> {
        if self.known(key).is_ok() {
            return Err(CommandError(format!("server '{key}' already exists")));
        }
        self.record(format!("add {key} {addr} {weight:?} {backup}"));
        Ok(format!("{key}: added"))
    }

    fn del_server(&self, key: &str) -> Result<String, CommandError> {
        self.known(key)?;
        self.record(format!("del {key}"));
        Ok(format!("{key}: deleted"))
    }

    fn reload(&self) -> Result<String, CommandError> {
        self.record("reload".into());
        Ok("reloaded lb.toml (generation 2)".into())
    }

    fn plugins(&self) -> Vec<crate::plugin::PluginStat> {
        Vec::new()
    }

    fn reload_plugins(&self) -> Result<String, CommandError> {
        self.record("reload plugins".into());
        Ok("plugins rescanned".into())
    }

    fn set_plugin_enabled(&self, name: &str, enabled: bool) -> Result<String, CommandError> {
        self.record(format!("{} plugin {name}", if enabled { "enable" } else { "disable" }));
        Ok(format!("plugin {name} {}", if enabled { "enabled" } else { "disabled" }))
    }
}
