//! WASM plugins for the tests: the examples and the deliberately bad
//! plugins of `plugins/`, built from source once per test process
//! (`plugins/build.sh --all`), then copied into each test's own plugins
//! directory the way an operator would (temp name, then rename).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use super::admin::num;
use super::proxy::{Proxy, temp_dir};
use super::wait_until;

/// The guest workspace, `plugins/` next to this suite's Cargo.toml.
pub fn plugins_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins")
}

static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// `plugins/dist/`, with every plugin built from source by this test
/// process (once; later callers wait for the first build and share it).
pub fn dist() -> &'static Path {
    match BUILT.get_or_init(build_all) {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn build_all() -> Result<PathBuf, String> {
    let src = plugins_src();
    // The wasm target is a rustup component; without rustup, the toolchain
    // must already have it (build.sh fails clearly otherwise).
    if Command::new("rustup").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let out = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .output()
            .map_err(|e| format!("rustup target add wasm32-unknown-unknown: {e}"))?;
        if !out.status.success() {
            return Err(describe("rustup target add wasm32-unknown-unknown failed", &out));
        }
    }
    let script = src.join("build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--all")
        .current_dir(&src)
        // build.sh picks its own target dir; the suite's must not leak in.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(describe(&format!("{} --all failed", script.display()), &out));
    }
    Ok(src.join("dist"))
}

/// The bytes of `dist/NAME.wasm` (building first if needed).
pub fn wasm(name: &str) -> Vec<u8> {
    let path = dist().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A valid WebAssembly module that has nothing to do with fastlb's world:
/// the empty core module (magic and version only).
pub const UNRELATED_MODULE: &[u8] = b"\0asm\x01\0\0\0";

/// A test's own plugins directory under the temp dir, removed on drop.
pub struct PluginDir {
    pub path: PathBuf,
}

impl PluginDir {
    pub fn new() -> PluginDir {
        let path = temp_dir().join("plugins");
        std::fs::create_dir_all(&path).expect("create plugins dir");
        PluginDir { path }
    }

    /// A directory holding `dist/PLUGIN.wasm` as `AS.wasm` for each pair.
    pub fn with(files: &[(&str, &str)]) -> PluginDir {
        let dir = PluginDir::new();
        for (plugin, name) in files {
            dir.install(plugin, name);
        }
        dir
    }

    /// `DIR/NAME.wasm`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(format!("{name}.wasm"))
    }

    /// Writes `bytes` as `NAME.wasm`: to a temp name the watcher ignores,
    /// then renamed over the old file (one atomic replacement).
    pub fn write(&self, name: &str, bytes: &[u8]) {
        let tmp = self.path.join(format!(".{name}.wasm.tmp"));
        std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
        let dst = self.file(name);
        std::fs::rename(&tmp, &dst).unwrap_or_else(|e| panic!("rename {} -> {}: {e}", tmp.display(), dst.display()));
    }

    /// Installs the built plugin `plugin` as `NAME.wasm`; returns its bytes.
    pub fn install(&self, plugin: &str, name: &str) -> Vec<u8> {
        let bytes = wasm(plugin);
        self.write(name, &bytes);
        bytes
    }

    /// Deletes `NAME.wasm`.
    pub fn remove(&self, name: &str) {
        let path = self.file(name);
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
    }

    /// The `[plugins]` table for this directory, with extra `key = value` lines.
    pub fn table(&self, keys: &str) -> String {
        format!("[plugins]\ndir = \"{}\"\npoll_interval = \"100ms\"\n{keys}\n", self.path.display())
    }
}

impl Default for PluginDir {
    fn default() -> Self {
        PluginDir::new()
    }
}

impl Drop for PluginDir {
    fn drop(&mut self) {
        // temp_dir() made the parent for this directory alone.
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

/// A counter of a `show plugins json` row.
pub fn field(p: &Value, key: &str) -> u64 {
    num(&p[key], key)
}

impl Proxy {
    /// `show plugins json`: one record per loaded plugin.
    pub fn plugins(&self) -> Vec<Value> {
        let v = self.ctl_json(&["show", "plugins"]);
        v.as_array().cloned().unwrap_or_else(|| panic!("show plugins json is not an array: {v}"))
    }

    /// The `show plugins json` record of plugin `name`, if loaded.
    pub fn plugin(&self, name: &str) -> Option<Value> {
        self.plugins().into_iter().find(|p| p["name"] == name)
    }

    /// Waits up to `limit` for plugin `name` to be listed and satisfy
    /// `cond`; returns its record, or panics with `show plugins` and the log.
    pub fn wait_plugin(&self, name: &str, limit: Duration, mut cond: impl FnMut(&Value) -> bool) -> Value {
        let mut found = None;
        let ok = wait_until(limit, || {
            found = self.plugin(name).filter(|p| cond(p));
            found.is_some()
        });
        if !ok {
            panic!(
                "plugin {name}: expected state not reached within {limit:?}; show plugins: {}\nstderr:\n{}",
                self.ctl_ok(&["show", "plugins"]),
                self.stderr()
            );
        }
        found.expect("set when the wait succeeded")
    }

    /// Waits for plugin `name` to be loaded and enabled; returns its record.
    pub fn wait_plugin_enabled(&self, name: &str) -> Value {
        self.wait_plugin(name, Duration::from_secs(10), |p| p["state"] == "enabled")
    }
}
