//! grow-memory: a deliberately bad plugin for fastlb's tests. `select`
//! allocates and keeps 64 KiB blocks until an allocation fails; the host's
//! memory limit must refuse the growth (the allocator then aborts, an
//! `unreachable` trap), and the request is served by the fallback.

use fastlb_plugin_sdk::prelude::*;

/// Size of each block `select` allocates and leaks.
pub const BLOCK: usize = 64 << 10;

/// Keeps the table like a real plugin; only `select` misbehaves.
#[derive(Default)]
pub struct GrowMemory {
    table: Table,
    /// Everything `select` allocated: never freed.
    hoard: Vec<Vec<u8>>,
}

impl GrowMemory {
    /// Allocates `blocks` more blocks (without bound when `None`), touching
    /// each so the pages are really used.
    pub fn hoard(&mut self, blocks: Option<usize>) {
        let mut n = 0usize;
        while blocks.is_none_or(|b| n < b) {
            let mut block = vec![0u8; BLOCK];
            block[BLOCK - 1] = n as u8;
            self.hoard.push(std::hint::black_box(block));
            n += 1;
        }
    }
}

impl Plugin for GrowMemory {
    fn info(&mut self, config: &str) -> Result<PluginInfo, String> {
        Config::parse(config)?;
        Ok(PluginInfo::new("grow-memory"))
    }

    fn set_table(&mut self, backends: Vec<Backend>) {
        self.table.set_backends(backends);
    }

    fn set_load(&mut self, loads: Vec<Load>) {
        self.table.set_loads(loads);
    }

    fn select(&mut self, _req: &Request, _attempt: u32) -> Option<u32> {
        self.hoard(None);
        None
    }
}

export_plugin!(GrowMemory);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hoarding_keeps_every_block() {
        let mut p = GrowMemory::default();
        assert_eq!(p.info("{}").unwrap().name, "grow-memory");
        p.hoard(Some(4));
        p.hoard(Some(2));
        assert_eq!(p.hoard.len(), 6);
        assert!(p.hoard.iter().all(|b| b.len() == BLOCK));
    }
}
