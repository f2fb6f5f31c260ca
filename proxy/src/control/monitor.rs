//! The monitor thread: advances slow-start ramps and records outlier
//! ejections (which the data path applies itself, lock-free, through the
//! per-server cooldown atomics) as events.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use super::Control;
use crate::balance::table::now_ms;

/// How often the monitor looks.
const TICK: Duration = Duration::from_millis(200);

/// Starts the monitor; it stops when `stop` is dropped or sent to.
pub fn spawn_monitor(control: Arc<Control>, stop: mpsc::Receiver<()>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("fastlb-monitor".into()).spawn(move || {
        let mut ejected: HashMap<String, bool> = HashMap::new();
        while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(TICK) {
            control.tick();
            let table = control.shared.table.load_full();
            let now = now_ms();
            for s in table.pools.iter().flat_map(|p| p.servers.iter()) {
                let live = &s.stats.live;
                let until = live.cooldown_until_ms.load(Ordering::Relaxed);
                let cooling = until > now;
                // A server that stayed in for max_ejection since its last
                // ejection starts over at the base ejection time.
                let calm =
                    table.pools.iter().find(|p| s.key.starts_with(&*p.name)).map(|p| p.config.outlier.max_ejection);
                if let Some(calm) = calm
                    && !cooling
                    && now > until + calm.as_millis() as u64
                    && live.ejections.load(Ordering::Relaxed) != 0
                {
                    live.ejections.store(0, Ordering::Relaxed);
                }
                let was = ejected.insert(s.key.to_string(), cooling).unwrap_or(false);
                if cooling != was {
                    control.ejection_event(&s.key, cooling);
                }
            }
        }
    })
}
