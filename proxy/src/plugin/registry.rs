//! Compiled plugins and their hot reload.
//!
//! The control side compiles every `NAME.wasm` of `plugins.dir` into a
//! [`CompiledPlugin`] and publishes the set through arc-swap; cores notice a
//! new set by one relaxed load of [`PluginRegistry::generation`] per call and
//! re-instantiate from the new version between requests. A file that fails
//! to compile or to match the world is logged and the previous version keeps
//! serving; a removed file removes the plugin (its pools use their fallback).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_utils::CachePadded;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store};

use super::engine::{EpochTicker, deadline_ticks, new_engine};
use super::host::{self, HostState, Planner, PlannerIndex, PluginHost, PluginHostIndices, Sticky, StickyIndices};
use crate::config::PluginsConfig;

/// Whether cores call a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum PluginState {
    /// Serving.
    Enabled = 0,
    /// Off: the circuit breaker opened or an admin disabled it. The file
    /// being replaced or `set_enabled(name, true)` turns it back on.
    Disabled = 1,
    /// Its `init` rejected the pool's config or it could not be
    /// instantiated; same remedies as `Disabled`.
    Failed = 2,
}

/// Counters of one plugin version on one core. Written only by that core.
#[derive(Debug, Default)]
pub struct CoreSlot {
    /// `select` calls made into the plugin.
    pub calls: AtomicU64,
    /// First tries drawn from the plugin's plan instead (no call).
    pub planned: AtomicU64,
    /// Answers the host could not use (out of range, not eligible, bad pin).
    pub errors: AtomicU64,
    /// Calls that trapped (timeouts excluded).
    pub traps: AtomicU64,
    /// Calls interrupted at the deadline.
    pub timeouts: AtomicU64,
    /// Of the `select` calls, those that were timed (one in [`TIME_EVERY`]).
    pub timed: AtomicU64,
    /// Nanoseconds spent in the timed calls.
    pub total_ns: AtomicU64,
}

/// Every `TIME_EVERY`-th call is timed: two clock reads on each call would
/// cost more than the bookkeeping they feed.
pub const TIME_EVERY: u64 = 8;

/// Counters and state of one plugin version, shared by the cores.
#[derive(Debug)]
pub struct PluginStats {
    per_core: Box<[CachePadded<CoreSlot>]>,
    state: AtomicU8,
    /// Instances created (first use on each core, and after each trap).
    pub instantiations: AtomicU64,
    /// Largest linear memory any instance grew to, bytes.
    pub peak_memory: AtomicU64,
    /// `memory.grow` requests refused by the memory limit.
    pub memory_denied: AtomicU64,
    /// The latest failure (trap message, init error, what opened the breaker).
    last_error: ArcSwapOption<String>,
}

impl PluginStats {
    pub fn new(cores: usize) -> PluginStats {
        PluginStats {
            per_core: (0..cores.max(1)).map(|_| CachePadded::new(CoreSlot::default())).collect(),
            state: AtomicU8::new(PluginState::Enabled as u8),
            instantiations: AtomicU64::new(0),
            peak_memory: AtomicU64::new(0),
            memory_denied: AtomicU64::new(0),
            last_error: ArcSwapOption::empty(),
        }
    }

    /// This core's slot (indices wrap, so a stray one cannot panic).
    #[inline]
    pub fn core(&self, core: usize) -> &CoreSlot {
        &self.per_core[core % self.per_core.len()]
    }

    #[inline]
    pub fn state(&self) -> PluginState {
        match self.state.load(Ordering::Relaxed) {
            0 => PluginState::Enabled,
            1 => PluginState::Disabled,
            _ => PluginState::Failed,
        }
    }

    pub fn set_state(&self, state: PluginState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// Records a failure reason for `show plugins`.
    pub fn set_error(&self, message: String) {
        self.last_error.store(Some(Arc::new(message)));
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.load().as_deref().cloned()
    }

    fn sum(&self, f: impl Fn(&CoreSlot) -> &AtomicU64) -> u64 {
        self.per_core.iter().map(|c| f(c).load(Ordering::Relaxed)).sum()
    }
}

/// One compiled version of a plugin file.
pub struct CompiledPlugin {
    /// File stem: what a pool names in `strategy = "plugin:NAME"`.
    pub name: Arc<str>,
    pub path: PathBuf,
    /// SHA-256 of the file, hex.
    pub hash: String,
    /// File size in bytes.
    pub size: u64,
    pub loaded_at: SystemTime,
    /// Unique per load within the registry: a replaced file gets a higher one.
    pub generation: u64,
    pub component: Component,
    /// Imports linked: each core instantiates from it.
    pub instance_pre: InstancePre<HostState>,
    /// Where the `strategy` exports are.
    pub indices: PluginHostIndices,
    /// Where the `sticky` exports are.
    pub sticky: StickyIndices,
    /// Where the optional `planner` export is.
    pub planner: PlannerIndex,
    pub stats: Arc<PluginStats>,
}

impl CompiledPlugin {
    /// A new instance in `store` (whose epoch deadline the caller has set),
    /// with its exports found and type-checked.
    pub fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<(PluginHost, Sticky, Option<Planner>)> {
        let instance = self.instance_pre.instantiate(&mut *store)?;
        let plugin = self.indices.load(&mut *store, &instance)?;
        let sticky = self.sticky.load(&mut *store, &instance)?;
        let planner = self.planner.load(store, &instance)?;
        Ok((plugin, sticky, planner))
    }
}

/// The plugins in force, by name.
pub struct PluginSet {
    /// Bumped by every change of the set.
    pub generation: u64,
    pub plugins: BTreeMap<String, Arc<CompiledPlugin>>,
}

/// One row of `show plugins`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStat {
    pub name: String,
    pub file: String,
    pub hash: String,
    pub generation: u64,
    /// RFC 3339, UTC.
    pub loaded_at: String,
    pub calls: u64,
    /// Requests sent where the plugin's plan said, without a call.
    pub planned: u64,
    pub errors: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub instantiations: u64,
    /// Largest linear memory an instance grew to, bytes.
    pub peak_memory: u64,
    /// Memory growth refused by `memory_limit`.
    pub memory_denied: u64,
    /// Mean duration of a `select` call, from sampled calls; 0 before any.
    pub avg_call_ns: u64,
    pub state: PluginState,
    /// The latest failure, if any.
    pub last_error: Option<String>,
}

/// What every core needs to know about calling plugins (from `[plugins]`).
#[derive(Debug, Clone)]
pub struct CallLimits {
    /// Epoch ticks one `select`/sticky call may take.
    pub call_ticks: u64,
    /// Ticks for `init`, `set-table` and `set-load` (lists of every backend).
    pub setup_ticks: u64,
    /// Linear memory one instance may grow to, bytes.
    pub memory_limit: usize,
    /// Consecutive failures on one core that open the circuit breaker.
    pub max_failures: u32,
}

/// What the last scan saw.
#[derive(Default)]
struct ScanState {
    /// Files by name (rejected ones too, so they are not recompiled every poll).
    files: HashMap<String, FileSig>,
    /// Why the directory could not be read, if it could not (logged once).
    dir_error: Option<String>,
}

/// Size and mtime of a file as last scanned, with the hash of its content.
#[derive(Clone, PartialEq)]
struct FileSig {
    len: u64,
    mtime: Option<SystemTime>,
    hash: String,
}

/// The process's plugins: engine, linker, the published set, and the
/// control-side scan state.
pub struct PluginRegistry {
    engine: Engine,
    linker: Linker<HostState>,
    dir: Option<PathBuf>,
    poll_interval: Duration,
    cores: usize,
    limits: CallLimits,
    set: ArcSwap<PluginSet>,
    /// Mirrors `set.generation`: what cores compare per call.
    generation: AtomicU64,
    next_load: AtomicU64,
    /// What the last scan saw. Only the control side (watcher, admin) takes it.
    scanned: Mutex<ScanState>,
    _ticker: EpochTicker,
}

impl PluginRegistry {
    /// Sets up the engine for `cores` workers, starts the epoch ticker, and
    /// loads what `config.dir` holds now (errors are logged, as on reload).
    pub fn new(config: &PluginsConfig, cores: usize) -> Result<Arc<PluginRegistry>, String> {
        let engine = new_engine(cores, config.memory_limit)?;
        let linker = host::linker(&engine)?;
        let call_ticks = deadline_ticks(config.call_timeout);
        let registry = Arc::new(PluginRegistry {
            _ticker: EpochTicker::start(&engine)?,
            engine,
            linker,
            dir: config.dir.clone(),
            poll_interval: config.poll_interval.max(Duration::from_millis(10)),
            cores: cores.max(1),
            limits: CallLimits {
                call_ticks,
                setup_ticks: (call_ticks * 10).max(20),
                memory_limit: config.memory_limit,
                max_failures: config.max_failures.max(1),
            },
            set: ArcSwap::from_pointee(PluginSet { generation: 0, plugins: BTreeMap::new() }),
            generation: AtomicU64::new(0),
            next_load: AtomicU64::new(1),
            scanned: Mutex::new(ScanState::default()),
        });
        if registry.dir.is_some() {
            let report = registry.scan();
            if !report.is_empty() {
                tracing::info!(target: "fastlb::plugin", "{report}");
            }
        }
        Ok(registry)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn limits(&self) -> &CallLimits {
        &self.limits
    }

    pub fn cores(&self) -> usize {
        self.cores
    }

    /// Generation of the published set (one relaxed load; cores compare it per call).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current version of plugin `name`.
    pub fn get(&self, name: &str) -> Option<Arc<CompiledPlugin>> {
        self.set.load().plugins.get(name).cloned()
    }

    /// The published set.
    pub fn snapshot(&self) -> Arc<PluginSet> {
        self.set.load_full()
    }

    /// Compiles `path` (a component, or a core module carrying the world's
    /// component-type section) and checks it against the world.
    pub fn load_file(&self, path: &Path) -> Result<CompiledPlugin, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let generation = self.next_load.fetch_add(1, Ordering::Relaxed);
        self.compile(path, &bytes, &hex_sha256(&bytes), generation)
    }

    /// Adds or replaces a plugin from bytes (not from the directory; for
    /// `fastlb demo --plugin` and tests). The watcher leaves it alone unless
    /// a file of the same name appears.
    pub fn insert_bytes(&self, name: &str, bytes: &[u8]) -> Result<Arc<CompiledPlugin>, String> {
        let generation = self.next_load.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!("{name}.wasm"));
        let plugin = Arc::new(self.compile(&path, bytes, &hex_sha256(bytes), generation)?);
        self.publish(|plugins| {
            plugins.insert(name.to_string(), Arc::clone(&plugin));
        });
        Ok(plugin)
    }

    /// Scans the directory now; returns what changed, one line.
    pub fn reload_now(&self) -> String {
        if self.dir.is_none() {
            return "plugins: no directory configured".into();
        }
        let report = self.scan();
        if report.is_empty() && report.dir_error.is_none() { "plugins: no change".into() } else { report.to_string() }
    }

    /// Turns a plugin on or off on every core. Turning it on closes the
    /// circuit breaker and retries a failed `init`.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<String, String> {
        let plugin = self.get(name).ok_or_else(|| format!("no plugin '{name}'"))?;
        if enabled {
            plugin.stats.set_state(PluginState::Enabled);
            plugin.stats.last_error.store(None);
            Ok(format!("plugin {name} enabled"))
        } else {
            plugin.stats.set_state(PluginState::Disabled);
            plugin.stats.set_error("disabled by admin".into());
            Ok(format!("plugin {name} disabled"))
        }
    }

    /// `show plugins`: one row per plugin, sorted by name.
    pub fn list(&self) -> Vec<PluginStat> {
        self.set
            .load()
            .plugins
            .values()
            .map(|p| {
                let s = &p.stats;
                let (timed, ns) = (s.sum(|c| &c.timed), s.sum(|c| &c.total_ns));
                PluginStat {
                    name: p.name.to_string(),
                    file: p.path.display().to_string(),
                    hash: p.hash.clone(),
                    generation: p.generation,
                    loaded_at: crate::stats::rfc3339(
                        p.loaded_at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default(),
                    ),
                    calls: s.sum(|c| &c.calls),
                    planned: s.sum(|c| &c.planned),
                    errors: s.sum(|c| &c.errors),
                    traps: s.sum(|c| &c.traps),
                    timeouts: s.sum(|c| &c.timeouts),
                    instantiations: s.instantiations.load(Ordering::Relaxed),
                    peak_memory: s.peak_memory.load(Ordering::Relaxed),
                    memory_denied: s.memory_denied.load(Ordering::Relaxed),
                    avg_call_ns: ns.checked_div(timed).unwrap_or(0),
                    state: s.state(),
                    last_error: s.last_error(),
                }
            })
            .collect()
    }

    /// Starts the watcher thread ("fastlb-plugins"), which rescans the
    /// directory every `poll_interval` until the handle is dropped.
    pub fn spawn_watcher(self: &Arc<Self>) -> Result<PluginWatcher, String> {
        let (stop, stopped) = mpsc::channel::<()>();
        let registry = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("fastlb-plugins".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(registry.poll_interval) {
                    let report = registry.scan();
                    if !report.is_empty() {
                        tracing::info!(target: "fastlb::plugin", "{report}");
                    }
                }
            })
            .map_err(|e| format!("cannot start the plugin watcher: {e}"))?;
        Ok(PluginWatcher { stop: Some(stop), thread: Some(thread) })
    }

    /// One pass over the directory: compiles new and changed files, drops
    /// removed ones, publishes the set if anything changed.
    fn scan(&self) -> ScanReport {
        let mut report = ScanReport::default();
        let Some(dir) = &self.dir else { return report };
        let mut state = self.scanned.lock().unwrap_or_else(|e| e.into_inner());
        let files = match wasm_files(dir) {
            Ok(f) => f,
            Err(e) => {
                if state.dir_error.as_ref() != Some(&e) {
                    tracing::warn!(target: "fastlb::plugin", "{e}; plugins stay as they are");
                    state.dir_error = Some(e.clone());
                }
                report.dir_error = Some(e);
                return report;
            }
        };
        state.dir_error = None;
        let scanned = &mut state.files;
        let current = self.set.load_full();
        let mut changes: Vec<(String, Option<Arc<CompiledPlugin>>)> = Vec::new();
        for (name, path) in &files {
            let Ok(meta) = std::fs::metadata(path) else { continue };
            let (len, mtime) = (meta.len(), meta.modified().ok());
            if scanned.get(name).is_some_and(|s| s.len == len && s.mtime == mtime) {
                continue;
            }
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    report.rejected.push((name.clone(), format!("{}: {e}", path.display())));
                    continue;
                }
            };
            let hash = hex_sha256(&bytes);
            let sig = FileSig { len, mtime, hash: hash.clone() };
            let same = scanned.get(name).is_some_and(|s| s.hash == hash);
            scanned.insert(name.clone(), sig);
            if same {
                continue;
            }
            let generation = self.next_load.fetch_add(1, Ordering::Relaxed);
            match self.compile(path, &bytes, &hash, generation) {
                Ok(p) => {
                    report.loaded.push(format!("{name} (generation {generation})"));
                    changes.push((name.clone(), Some(Arc::new(p))));
                }
                Err(e) => {
                    let keeps =
                        if current.plugins.contains_key(name) { "; the previous version keeps serving" } else { "" };
                    tracing::warn!(target: "fastlb::plugin", plugin = %name, "plugin rejected: {e}{keeps}");
                    report.rejected.push((name.clone(), e));
                }
            }
        }
        scanned.retain(|name, _| files.contains_key(name));
        for name in current.plugins.keys() {
            if !files.contains_key(name) && current.plugins[name].path.parent() == Some(dir.as_path()) {
                report.removed.push(name.clone());
                changes.push((name.clone(), None));
            }
        }
        if !changes.is_empty() {
            self.publish(|plugins| {
                for (name, plugin) in changes {
                    match plugin {
                        Some(p) => plugins.insert(name, p),
                        None => plugins.remove(&name),
                    };
                }
            });
        }
        report
    }

    /// Publishes a new set made by `change` from the current one.
    fn publish(&self, change: impl FnOnce(&mut BTreeMap<String, Arc<CompiledPlugin>>)) {
        let old = self.set.load_full();
        let mut plugins = old.plugins.clone();
        change(&mut plugins);
        let generation = old.generation + 1;
        self.set.store(Arc::new(PluginSet { generation, plugins }));
        self.generation.store(generation, Ordering::Release);
    }
}

/// Stops the watcher thread when dropped.
pub struct PluginWatcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What one scan changed.
#[derive(Debug, Default)]
struct ScanReport {
    loaded: Vec<String>,
    rejected: Vec<(String, String)>,
    removed: Vec<String>,
    /// The directory could not be read (logged once by `scan`, not counted
    /// as a change).
    dir_error: Option<String>,
}

impl ScanReport {
    /// Nothing loaded, rejected or removed.
    fn is_empty(&self) -> bool {
        self.loaded.is_empty() && self.rejected.is_empty() && self.removed.is_empty()
    }
}

impl std::fmt::Display for ScanReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(e) = &self.dir_error {
            return write!(f, "plugins: {e}");
        }
        write!(f, "plugins: loaded [{}]", self.loaded.join(", "))?;
        write!(f, "; removed [{}]", self.removed.join(", "))?;
        let rejected: Vec<String> = self.rejected.iter().map(|(n, e)| format!("{n}: {e}")).collect();
        write!(f, "; rejected [{}]", rejected.join("; "))
    }
}

/// `NAME.wasm` regular files of `dir`, by name.
fn wasm_files(dir: &Path) -> Result<BTreeMap<String, PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read plugins dir {}: {e}", dir.display()))?;
    let mut files = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "wasm")
            && entry.file_type().is_ok_and(|t| t.is_file() || t.is_symlink())
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            files.insert(stem.to_string(), path);
        }
    }
    Ok(files)
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `bytes` start like a component (the binary's layer field is 1),
/// as opposed to a core module (layer 0).
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

impl PluginRegistry {
    /// Compiles plugin bytes and checks them against the `plugin` world.
    fn compile(&self, path: &Path, bytes: &[u8], hash: &str, generation: u64) -> Result<CompiledPlugin, String> {
        let file = path.display();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin");
        if bytes.len() < 8 || bytes[..4] != *b"\0asm" {
            return Err(format!("{file}: not a WebAssembly module or component"));
        }
        let started = Instant::now();
        let wrapped;
        let component_bytes = if is_component(bytes) {
            bytes
        } else {
            // wit-component panics on some malformed inputs (a truncated
            // module, say) instead of returning an error: a bad file must
            // never take the watcher down, so the panic becomes a rejection.
            let encode = || wit_component::ComponentEncoder::default().module(bytes)?.validate(true).encode();
            wrapped = std::panic::catch_unwind(encode)
                .map_err(|_| format!("{file}: cannot make a component of this module: the encoder rejected it (corrupt or truncated?)"))?
                .map_err(|e| {
                    format!(
                        "{file}: cannot make a component of this module (is it built against fastlb's wit/?): {e:#}"
                    )
                })?;
            &wrapped[..]
        };
        let component =
            Component::new(&self.engine, component_bytes).map_err(|e| format!("{file}: invalid component: {e:#}"))?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| format!("{file}: imports something fastlb does not provide: {e:#}"))?;
        let wrong_world =
            |e: wasmtime::Error| format!("{file}: does not implement world fastlb:lb/plugin@0.1.0: {e:#}");
        let indices = PluginHostIndices::new(&instance_pre).map_err(wrong_world)?;
        let sticky = StickyIndices::new(&component).map_err(wrong_world)?;
        let planner = PlannerIndex::new(&component).map_err(wrong_world)?;
        let plugin = CompiledPlugin {
            name: name.into(),
            path: path.to_path_buf(),
            hash: hash.to_string(),
            size: bytes.len() as u64,
            loaded_at: SystemTime::now(),
            generation,
            component,
            instance_pre,
            indices,
            sticky,
            planner,
            stats: Arc::new(PluginStats::new(self.cores)),
        };
        // One scratch instance checks what only an instance can: export types,
        // and that the initial memory fits `memory_limit`. No plugin code runs
        // beyond its start functions (bounded by the deadline).
        let mut store = Store::new(
            &self.engine,
            HostState::new(Arc::clone(&plugin.name), self.limits.memory_limit, Arc::new(PluginStats::new(1))),
        );
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.limits.setup_ticks);
        plugin.instantiate(&mut store).map_err(|e| {
            let e = format!("{e:#}");
            if e.contains("memory") {
                format!("{file}: cannot be instantiated within memory_limit ({} bytes): {e}", self.limits.memory_limit)
            } else {
                format!("{file}: does not implement world fastlb:lb/plugin@0.1.0: {e}")
            }
        })?;
        tracing::debug!(target: "fastlb::plugin", plugin = name, ms = started.elapsed().as_millis() as u64, "plugin compiled");
        Ok(plugin)
    }
}
