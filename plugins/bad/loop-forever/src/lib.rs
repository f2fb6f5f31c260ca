//! loop-forever: a deliberately bad plugin for fastlb's tests. `select`
//! never returns; the host's epoch deadline must interrupt it, count a
//! timeout and serve the request with the pool's fallback.

use fastlb_plugin_sdk::prelude::*;

/// No state worth keeping: only `select` misbehaves.
#[derive(Default)]
pub struct LoopForever {
    table: Table,
}

impl Plugin for LoopForever {
    fn info(&mut self, config: &str) -> Result<PluginInfo, String> {
        Config::parse(config)?;
        Ok(PluginInfo::new("loop-forever"))
    }

    fn set_table(&mut self, backends: Vec<Backend>) {
        self.table.set_backends(backends);
    }

    fn set_load(&mut self, loads: Vec<Load>) {
        self.table.set_loads(loads);
    }

    fn select(&mut self, req: &Request, _attempt: u32) -> Option<u32> {
        spin(req.hash)
    }
}

export_plugin!(LoopForever);

/// Spins without end; `black_box` keeps the loop from being optimised away.
pub fn spin(seed: u64) -> ! {
    let mut x = seed;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_table_hooks_behave() {
        let mut p = LoopForever::default();
        assert_eq!(p.info("{}").unwrap().name, "loop-forever");
        assert!(p.info("{").is_err());
        p.set_table(Vec::new());
        p.set_load(Vec::new());
    }
}
