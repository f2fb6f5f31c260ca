//! Logging through the host's `log` import: each line lands in fastlb's log
//! tagged with the plugin's name (the host rate-limits it).
//!
//! ```
//! let backends = 3;
//! fastlb_plugin_sdk::info!("table has {backends} backends");
//! fastlb_plugin_sdk::log::warn("no canary backend");
//! ```
//!
//! Formatting costs code size: `{}` of strings and integers is cheap, but
//! `{:?}` of a string pulls Unicode escaping tables (~8 KB) into the `.wasm`.
//!
//! Off wasm32 (unit tests of plugin logic on the build machine) the lines go
//! to stderr, since there is no host to call.

pub use crate::bindings::fastlb::lb::log::Level;

/// Writes one line at `level`.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::fastlb::lb::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    std::eprintln!("[plugin {level:?}] {message}");
}

/// Logs at error level.
pub fn error(message: &str) {
    write(Level::Error, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// `error!("fmt", args…)`: formats and logs at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)*)) };
}

/// `warn!("fmt", args…)`: formats and logs at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)*)) };
}

/// `info!("fmt", args…)`: formats and logs at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)*)) };
}

/// `debug!("fmt", args…)`: formats and logs at debug level. Formatting
/// costs even when the host filters debug out: keep it off the per-request path.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)*)) };
}
