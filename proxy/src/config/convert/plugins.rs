//! `[plugins]` → [`PluginsConfig`], and a pool's plugin keys (`strategy =
//! "plugin:NAME"`, `fallback`, `plugin_config`) → its strategy and [`PoolPlugin`].

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_spanned::Spanned;

use super::Cx;
use crate::config::raw;
use crate::config::types::*;
use crate::config::values::{is_name, plugin_config_json};

/// `strategy = "plugin:NAME"`
const PLUGIN_PREFIX: &str = "plugin:";
/// Plugin calls are interrupted on 1 ms epoch ticks.
const CALL_TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(1)..=Duration::from_secs(10);
/// Bounds of `memory_limit`: 64 KiB (one WASM page) to 4 GiB (all of wasm32).
const MEMORY_LIMIT: RangeInclusive<i64> = (64 << 10)..=(4 << 30);

impl Cx {
    /// `[plugins]`; `config_dir` anchors a relative `dir`.
    pub(super) fn plugins(&mut self, p: raw::Plugins, config_dir: &Path) -> PluginsConfig {
        let d = PluginsConfig::default();
        let span = p.call_timeout.as_ref().map(Spanned::span);
        let mut call_timeout = self.duration(p.call_timeout, "plugins.call_timeout".into(), d.call_timeout);
        if !CALL_TIMEOUT.contains(&call_timeout) {
            let msg = format!("call_timeout {call_timeout:?} is outside 1ms–10s");
            self.issue(span, "plugins.call_timeout", msg);
            call_timeout = d.call_timeout;
        }
        PluginsConfig {
            dir: p.dir.and_then(|dir| self.plugins_dir(dir, config_dir)),
            poll_interval: self.positive_duration(p.poll_interval, "plugins.poll_interval".into(), d.poll_interval),
            call_timeout,
            memory_limit: self.size(p.memory_limit, "plugins.memory_limit".into(), MEMORY_LIMIT, d.memory_limit),
            max_failures: self.int(p.max_failures, "plugins.max_failures".into(), 1..=u32::MAX.into(), d.max_failures),
        }
    }

    /// Resolved against the config file's directory. It need not exist yet
    /// (the watcher picks it up once created), but it must not be a file.
    fn plugins_dir(&mut self, dir: Spanned<String>, config_dir: &Path) -> Option<PathBuf> {
        if dir.get_ref().is_empty() {
            self.issue(Some(dir.span()), "plugins.dir", "dir is empty; leave it out to turn plugins off");
            return None;
        }
        let path = config_dir.join(dir.get_ref());
        if path.metadata().is_ok_and(|m| !m.is_dir()) {
            let msg = format!("\"{}\" exists and is not a directory", path.display());
            self.issue(Some(dir.span()), "plugins.dir", msg);
        }
        Some(path)
    }

    /// A pool's `strategy`, `fallback` and `plugin_config`: sets
    /// `out.strategy` (the fallback, with a plugin) and `out.plugin`.
    pub(super) fn pool_strategy(
        &mut self,
        strategy: Option<Spanned<String>>,
        fallback: Option<Spanned<String>>,
        plugin_config: Option<Spanned<toml::Table>>,
        at: &str,
        plugins_on: bool,
        out: &mut PoolConfig,
    ) {
        let k = |field: &str| format!("{at}.{field}");
        let Some(s) = &strategy else {
            self.only_with_plugin(fallback.map(|f| f.span()), &k("fallback"));
            self.only_with_plugin(plugin_config.map(|c| c.span()), &k("plugin_config"));
            return;
        };
        let Some(name) = s.get_ref().strip_prefix(PLUGIN_PREFIX) else {
            match StrategyKind::parse(s.get_ref()) {
                Some(kind) => out.strategy = kind,
                None => {
                    let valid = StrategyKind::ALL.map(StrategyKind::name).join(", ");
                    let msg = format!(
                        "unknown strategy \"{}\"; valid strategies: {valid}, or plugin:NAME for a WASM plugin",
                        s.get_ref()
                    );
                    self.issue(Some(s.span()), k("strategy"), msg);
                }
            }
            self.only_with_plugin(fallback.map(|f| f.span()), &k("fallback"));
            self.only_with_plugin(plugin_config.map(|c| c.span()), &k("plugin_config"));
            return;
        };

        if !is_name(name) {
            let msg = format!("plugin name \"{name}\" must be 1–64 letters, digits, '-', '_' or '.'");
            self.issue(Some(s.span()), k("strategy"), msg);
        } else if !plugins_on {
            let msg = format!("strategy \"{}\": plugins need [plugins] dir", s.get_ref());
            self.issue(Some(s.span()), k("strategy"), msg);
        }
        if let Some(f) = fallback {
            match StrategyKind::parse(f.get_ref()) {
                Some(kind) => out.strategy = kind,
                None => {
                    let valid = StrategyKind::ALL.map(StrategyKind::name).join(", ");
                    let msg = format!("fallback \"{}\" is not a built-in strategy; valid: {valid}", f.get_ref());
                    self.issue(Some(f.span()), k("fallback"), msg);
                }
            }
        }
        let mut config_json = "{}".to_owned();
        if let Some(c) = plugin_config {
            match plugin_config_json(c.get_ref()) {
                Ok(json) => config_json = json,
                Err((path, msg)) => self.issue(Some(c.span()), format!("{at}.plugin_config.{path}"), msg),
            }
        }
        out.plugin = Some(PoolPlugin { name: name.to_owned(), config_json });
    }

    fn only_with_plugin(&mut self, span: Option<Range<usize>>, key: &str) {
        if let Some(span) = span {
            let msg = format!("{} is only valid with strategy = \"plugin:NAME\"", super::last(key));
            self.issue(Some(span), key, msg);
        }
    }
}
