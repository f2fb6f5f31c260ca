//! Write fastlb balancing strategies and sticky-session rules in Rust, built
//! to a `.wasm` file that fastlb loads, sandboxes and hot-swaps.
//!
//! A plugin is a type that implements [`Plugin`] (and `Default`), handed to
//! [`export_plugin!`]:
//!
//! ```
//! use fastlb_plugin_sdk::prelude::*;
//!
//! /// Weighted random over the usable backends.
//! #[derive(Default)]
//! struct Random {
//!     table: Table,
//!     rng: Rng,
//! }
//!
//! impl Plugin for Random {
//!     fn info(&mut self, _config: &str) -> Result<PluginInfo, String> {
//!         Ok(PluginInfo::new("random"))
//!     }
//!     fn set_table(&mut self, backends: Vec<Backend>) {
//!         self.table.set_backends(backends);
//!     }
//!     fn set_load(&mut self, loads: Vec<Load>) {
//!         self.table.set_loads(loads);
//!     }
//!     fn select(&mut self, req: &Request, _attempt: u32) -> Option<u32> {
//!         self.rng.mix(req.hash);
//!         self.table.usable().random(&mut self.rng)
//!     }
//! }
//!
//! export_plugin!(Random);
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --release --target wasm32-unknown-unknown`
//! (crate-type `cdylib`); the `.wasm` is a core module that carries the
//! `fastlb:lb/plugin` world in a `component-type:…` custom section, which
//! fastlb turns into a component when it loads the file.
//!
//! # Modules
//! - [`bindings`]: what `wit-bindgen` generates from `wit/fastlb.wit`
//!   (the WIT types are re-exported at the crate root).
//! - [`config`]: a small reader for the pool's `plugin_config` JSON.
//! - [`table`]: [`Table`], the plugin's copy of the pool (backends, loads),
//!   and [`Group`], weighted picks and rendezvous hashing over backends.
//! - [`rng`]: [`Rng`], a fast PRNG, and stable 64-bit hashes.
//! - [`log`]: logging through the host (`info!`, `warn!`, … macros).
//! - [`prelude`]: everything a strategy usually needs, for a glob import.

#[allow(missing_docs)]
/// The bindings `wit-bindgen` generates from `wit/fastlb.wit` (world
/// `fastlb:lb/plugin`). Plugins rarely need this module: the types are
/// re-exported at the crate root and [`export_plugin!`] wires the exports.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        // export_plugin! expands in the plugin's crate and calls the
        // generated `export!` from there.
        pub_export_macro: true,
    });
}

pub mod config;
mod ext;
pub mod log;
pub mod rng;
pub mod table;

pub use bindings::exports::fastlb::lb::sticky::Decision;
pub use bindings::fastlb::lb::types::{Backend, ClientIp, Load, Method, PluginInfo, Request, SetCookie};
pub use config::{Config, ConfigError};
pub use rng::Rng;
pub use table::{Group, Table};

/// `use fastlb_plugin_sdk::prelude::*;` brings the trait, the macro, the
/// WIT types and the helpers.
pub mod prelude {
    pub use crate::rng::{hash_str, hash2, mix64};
    pub use crate::{
        Backend, ClientIp, Config, Decision, Group, Load, Method, Plugin, PluginInfo, Request, Rng, SetCookie, Table,
        export_plugin,
    };
}

/// A balancing strategy, with optional sticky-session hooks.
///
/// fastlb runs one instance per worker core, created with `Default` when the
/// host calls `init`; calls on an instance never overlap (a core runs one
/// request's call at a time and the component model forbids re-entry), so
/// methods take `&mut self` and state needs no locks.
///
/// Any panic traps the instance: the host serves that request with the
/// pool's `fallback` strategy and starts a fresh instance.
pub trait Plugin: Default + 'static {
    /// Called once, before anything else, with the pool's `plugin_config`
    /// as compact JSON (`"{}"` when absent; read it with [`Config::parse`]).
    /// Returns what the plugin wants to see of each request; an error
    /// rejects the plugin, and is shown in fastlb's log.
    fn info(&mut self, config: &str) -> Result<PluginInfo, String>;

    /// The pool's backends, after `info` and whenever the table changes.
    /// Usually `self.table.set_backends(backends)` plus any derived state.
    fn set_table(&mut self, backends: Vec<Backend>);

    /// Load figures of every backend, about every 100 ms while traffic flows.
    /// Usually `self.table.set_loads(loads)`.
    fn set_load(&mut self, loads: Vec<Load>);

    /// The backend index for this request, or `None` to let the pool's
    /// fallback strategy decide. `attempt` is 0 on the first try and counts
    /// retries; the host rejects a backend already tried for this request
    /// (answering with it costs a fallback), so vary the answer with it.
    fn select(&mut self, req: &Request, attempt: u32) -> Option<u32>;

    /// Where this request must go, if anywhere in particular; called before
    /// `select` when [`PluginInfo::sticky`] is set. Default: no stickiness.
    fn sticky_lookup(&mut self, req: &Request) -> Decision {
        let _ = req;
        Decision::None
    }

    /// The cookie to set on the response once `backend` was chosen; called
    /// when [`PluginInfo::sticky`] is set. Default: none.
    fn on_response(&mut self, req: &Request, backend: u32) -> Option<SetCookie> {
        let _ = (req, backend);
        None
    }

    /// A plan: each backend's share of new requests until the next
    /// `set_table` or `set_load` (element `i` for backend index `i`, one
    /// per backend of the table; [`Table::plan`] builds it). Called after
    /// each of those. While a plan is in force the host draws first tries
    /// from it and does not call `select` for them (retries still call it).
    ///
    /// Give one only when `select` does not look at the request beyond
    /// chance: its answer must depend only on the pushed table and load.
    /// Default: empty, no plan (`select` is called for every request).
    fn plan(&mut self) -> Vec<u32> {
        Vec::new()
    }
}

/// Exports a [`Plugin`] type as the plugin's `strategy`, `sticky` and
/// `planner` interfaces. Use once, in the plugin's `cdylib` crate:
/// `export_plugin!(MyPlugin);`.
///
/// The exports exist only when building for `wasm32`; on the build machine
/// the macro expands to nothing, so the plugin's logic can be unit-tested
/// with a plain `cargo test`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::exports::fastlb::lb::{planner, sticky, strategy};
            use $crate::{Backend, Decision, Load, Plugin as _, PluginInfo, Request, SetCookie};

            static INSTANCE: $crate::__private::Instance<$plugin> = $crate::__private::Instance::new();

            struct FastlbPluginExports;

            impl strategy::Guest for FastlbPluginExports {
                fn init(config: ::std::string::String) -> ::core::result::Result<PluginInfo, ::std::string::String> {
                    INSTANCE.init(&config)
                }
                fn set_table(backends: ::std::vec::Vec<Backend>) {
                    INSTANCE.with(|p| p.set_table(backends))
                }
                fn set_load(loads: ::std::vec::Vec<Load>) {
                    INSTANCE.with(|p| p.set_load(loads))
                }
                fn select(req: Request, attempt: u32) -> ::core::option::Option<u32> {
                    INSTANCE.with(|p| p.select(&req, attempt))
                }
            }

            impl planner::Guest for FastlbPluginExports {
                fn plan() -> ::std::vec::Vec<u32> {
                    INSTANCE.with(|p| p.plan())
                }
            }

            impl sticky::Guest for FastlbPluginExports {
                fn lookup(req: Request) -> Decision {
                    INSTANCE.with(|p| p.sticky_lookup(&req))
                }
                fn on_response(req: Request, backend: u32) -> ::core::option::Option<SetCookie> {
                    INSTANCE.with(|p| p.on_response(&req, backend))
                }
            }

    $crate::bindings::export!(FastlbPluginExports with_types_in $crate::bindings);
        };
    };
}

/// Support for [`export_plugin!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    use core::cell::RefCell;

    use crate::{Plugin, PluginInfo};

    /// The one plugin instance of this WASM instance, in a `static`.
    ///
    /// A `static` must be `Sync`, and `RefCell` is not. It is sound here
    /// because `Sync` is only implemented where no second thread can exist:
    /// wasm without the `atomics` target feature (what
    /// wasm32-unknown-unknown builds by default) has no threads at all, so
    /// the value is never reached from two threads. Within the one thread,
    /// the `RefCell` turns any overlapping access into a panic (a trap the
    /// host recovers from) rather than aliasing `&mut`; overlap cannot happen
    /// anyway, since the host never re-enters a component instance while one
    /// of its exports is running.
    pub struct Instance<P> {
        cell: RefCell<Option<P>>,
    }

    // SAFETY: see the type's docs: no threads on this target, so no data race.
    #[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
    unsafe impl<P> Sync for Instance<P> {}

    impl<P: Plugin> Instance<P> {
        /// Empty until `init` (or the first other call) creates the plugin.
        #[allow(clippy::new_without_default)]
        pub const fn new() -> Self {
            Instance { cell: RefCell::new(None) }
        }

        /// `strategy.init`: a fresh plugin, configured by `info`.
        pub fn init(&self, config: &str) -> Result<PluginInfo, String> {
            let mut plugin = P::default();
            let info = plugin.info(config)?;
            *self.cell.borrow_mut() = Some(plugin);
            Ok(info)
        }

        /// Runs `f` on the plugin, creating it with `Default` if `init` has
        /// not run (the host always calls `init` first; this keeps a stray
        /// call from trapping).
        pub fn with<R>(&self, f: impl FnOnce(&mut P) -> R) -> R {
            f(self.cell.borrow_mut().get_or_insert_with(P::default))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::__private::Instance;
    use super::*;

    #[derive(Default)]
    struct Counter {
        calls: u32,
        named: String,
    }

    impl Plugin for Counter {
        fn info(&mut self, config: &str) -> Result<PluginInfo, String> {
            let c = Config::parse(config)?;
            self.named = c.str_or("name", "counter")?.into();
            Ok(PluginInfo::new(self.named.clone()))
        }
        fn set_table(&mut self, _: Vec<Backend>) {}
        fn set_load(&mut self, _: Vec<Load>) {}
        fn select(&mut self, _: &Request, _: u32) -> Option<u32> {
            self.calls += 1;
            Some(self.calls)
        }
    }

    fn request() -> Request {
        Request {
            method: Method::Get,
            client_ip: ClientIp::V4(1),
            hash: 0,
            host: None,
            path: None,
            headers: Vec::new(),
            cookie: None,
        }
    }

    #[test]
    fn instance_inits_and_keeps_state() {
        let inst: Instance<Counter> = Instance::new();
        assert_eq!(inst.with(|p| p.select(&request(), 0)), Some(1), "a call before init gets a default plugin");
        assert_eq!(inst.init(r#"{"name":"x"}"#).unwrap().name, "x");
        assert_eq!(inst.with(|p| p.select(&request(), 0)), Some(1), "init starts afresh");
        assert_eq!(inst.with(|p| p.select(&request(), 0)), Some(2));
        assert_eq!(inst.init(r#"{"name":1}"#).unwrap_err(), "plugin_config.name: expected a string, found a number");
    }

    #[test]
    fn sticky_hooks_and_plan_default_to_nothing() {
        let mut c = Counter::default();
        assert!(matches!(c.sticky_lookup(&request()), Decision::None));
        assert!(c.on_response(&request(), 0).is_none());
        assert!(c.plan().is_empty());
    }
}
