//! What a reload may change while fastlb runs. Listener sockets, worker
//! threads, the admin socket and the plugin engine (`[plugins]`: its folder,
//! time and memory bounds size the engine's pooling allocator) are set up
//! once at start; everything the workers only read from the config (pools,
//! servers, strategies, checks, timeouts, limits, headers, log settings,
//! drain time, and a pool's plugin and `plugin_config`) can be swapped in.

use std::fmt::Debug;

use super::types::{Config, ListenerMode};

/// Every change from `old` to `new` that cannot be applied without a
/// restart, one message each, naming the key (`runtime.workers`,
/// `listener[web].bind`, …). Empty means `new` can be applied live.
/// Listeners are matched by name.
pub fn live_change_errors(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut changed = |key: &str, old: &dyn Debug, new: &dyn Debug| {
        out.push(format!("{key}: {old:?} → {new:?} cannot change live; restart fastlb to apply it"));
    };
    if old.runtime.workers != new.runtime.workers {
        changed("runtime.workers", &old.runtime.workers, &new.runtime.workers);
    }
    if old.runtime.pin_workers != new.runtime.pin_workers {
        changed("runtime.pin_workers", &old.runtime.pin_workers, &new.runtime.pin_workers);
    }
    if old.admin.socket != new.admin.socket {
        changed("admin.socket", &old.admin.socket, &new.admin.socket);
    }
    if old.admin.mode != new.admin.mode {
        changed("admin.mode", &Octal(old.admin.mode), &Octal(new.admin.mode));
    }
    let (op, np) = (&old.plugins, &new.plugins);
    if op.dir != np.dir {
        changed("plugins.dir", &op.dir, &np.dir);
    }
    if op.poll_interval != np.poll_interval {
        changed("plugins.poll_interval", &op.poll_interval, &np.poll_interval);
    }
    if op.call_timeout != np.call_timeout {
        changed("plugins.call_timeout", &op.call_timeout, &np.call_timeout);
    }
    if op.memory_limit != np.memory_limit {
        changed("plugins.memory_limit", &op.memory_limit, &np.memory_limit);
    }
    if op.max_failures != np.max_failures {
        changed("plugins.max_failures", &op.max_failures, &np.max_failures);
    }
    for o in &old.listeners {
        let Some(n) = new.listeners.iter().find(|n| n.name == o.name) else {
            continue;
        };
        let key = |field: &str| format!("listener[{}].{field}", o.name);
        if o.bind != n.bind {
            changed(&key("bind"), &o.bind, &n.bind);
        }
        if o.mode != n.mode {
            changed(&key("mode"), &mode_name(o.mode), &mode_name(n.mode));
        }
        if o.backlog != n.backlog {
            changed(&key("backlog"), &o.backlog, &n.backlog);
        }
    }
    for o in old.listeners.iter().filter(|o| !new.listeners.iter().any(|n| n.name == o.name)) {
        out.push(format!("listener \"{}\" was removed; removing a listener needs a restart", o.name));
    }
    for n in new.listeners.iter().filter(|n| !old.listeners.iter().any(|o| o.name == n.name)) {
        out.push(format!("listener \"{}\" was added; adding a listener needs a restart", n.name));
    }
    out
}

fn mode_name(m: ListenerMode) -> &'static str {
    match m {
        ListenerMode::Http => "http",
        ListenerMode::Tcp => "tcp",
    }
}

/// Shows a file mode as `0o600`.
struct Octal(u32);

impl Debug for Octal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#o}", self.0)
    }
}
